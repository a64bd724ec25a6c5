//! The OVSDB session with one hypervisor's ovsdb-server, sans-IO.
//!
//! The session lives as long as the controller wants the hypervisor, across reconnections: the
//! driver tells it when a connection starts ([`Session::handle_connect`]) and ends
//! ([`Session::handle_disconnect`]), feeds it the bytes received ([`Session::handle_input`]) and
//! the passing of time ([`Session::handle_timeout`]), and sends what [`Session::poll_transmit`]
//! gives. What happened comes out of [`Session::poll_event`].
//!
//! On every connection: `get_schema` of `Open_vSwitch`, then one monitor of the tables and
//! columns the topology reads ([`MONITORED`]), with `monitor_cond_since` from the last
//! transaction id seen, so that a reconnection only fetches what changed; a server without it
//! gets `monitor_cond`, then `monitor` (it answers "unknown method"). Updates go into a
//! [`Replica`] and come out as topology [`Change`]s: one [`Change::HypervisorReplaced`] for a
//! full state (first connection, or a server that lost our transaction), upserts and removals
//! after that. Echo keepalive runs both ways. Anything the server sends that is not OVSDB
//! (malformed JSON, a message over the size limit, unknown methods, values of the wrong type)
//! closes the connection with an error naming what was wrong; the driver then reconnects.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use periscope_codec::ovsdb::jsonrpc::DEFAULT_MAX_MESSAGE;
use periscope_codec::ovsdb::method::parse_lock_reply;
use periscope_codec::ovsdb::operation::{Condition, Function};
use periscope_codec::ovsdb::{
    validate, CondSinceReply, DatabaseSchema, Datum, DecodeError, JsonStream, Message,
    Notification, Operation, Replica, ReplicaError, ReplicaRow, Request, Response, RowChange,
    ServerNotification, TableUpdates, TableUpdates2, TransactReply, Uuid, ValidationError,
};
use periscope_topology::{Change, HypervisorId};
use serde_json::Value;

use super::translate::{self, BRIDGE, CONTROLLER, INTERFACE, OPEN_VSWITCH, PORT};

/// The hypervisor database.
pub const DATABASE: &str = "Open_vSwitch";

/// The id of the session's one monitor.
const MONITOR_ID: &str = "periscope";

/// Tables and columns monitored; a column the server's schema lacks is skipped, a table it
/// lacks is an error unless marked optional.
pub const MONITORED: &[(&str, bool, &[&str])] = &[
    (OPEN_VSWITCH, true, &["external_ids", "other_config", "bridges"]),
    (BRIDGE, true, &["name", "datapath_id", "ports", "external_ids", "controller", "fail_mode"]),
    (PORT, true, &["name", "interfaces", "tag", "external_ids"]),
    (
        INTERFACE,
        true,
        &[
            "name",
            "type",
            "ofport",
            "mac_in_use",
            "external_ids",
            "options",
            "link_state",
            "admin_state",
        ],
    ),
    (CONTROLLER, false, &["target", "is_connected", "role"]),
];

/// A database a session can monitor, and how its rows reach the controller.
#[derive(Debug)]
pub struct Database {
    /// The database's name, checked against the server's schema.
    pub name: &'static str,
    /// Tables and columns monitored, as in [`MONITORED`].
    pub tables: &'static [(&'static str, bool, &'static [&'static str])],
    /// What the session reports of the rows.
    pub rows: RowsAs,
}

/// How a session reports what its monitor replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsAs {
    /// As topology changes ([`SessionEvent::Snapshot`], [`SessionEvent::Changes`]): the
    /// hypervisor database.
    Topology,
    /// As the rows that changed, with their contents now ([`SessionEvent::Rows`]): a small
    /// database whose reader keeps its own typed copy and applies each change to it (the
    /// northbound database).
    Replica,
}

/// Rows of a database read [`RowsAs::Replica`]: every row (a new monitor's snapshot) or those
/// an update changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedRows {
    /// Whether these are every row, replacing whatever the reader held.
    pub full: bool,
    /// Table, row, and its contents now (`None`: deleted), in the order the update gave them.
    pub rows: Vec<(String, Uuid, Option<ReplicaRow>)>,
}

impl ChangedRows {
    /// Every row of `replica`.
    pub fn all(replica: &Replica) -> ChangedRows {
        let rows = replica
            .table_names()
            .flat_map(|t| {
                replica
                    .table(t)
                    .into_iter()
                    .flatten()
                    .map(move |(u, r)| (t.to_string(), *u, Some(r.clone())))
            })
            .collect();
        ChangedRows { full: true, rows }
    }

    /// The rows `changes` touched, as `replica` holds them after the changes.
    pub fn of(replica: &Replica, changes: &[RowChange]) -> ChangedRows {
        let rows = changes
            .iter()
            .map(|c| (c.table.clone(), c.uuid, replica.row(&c.table, c.uuid).cloned()))
            .collect();
        ChangedRows { full: false, rows }
    }
}

/// The hypervisor's `Open_vSwitch` database, read into the topology.
pub static VSWITCH: Database =
    Database { name: DATABASE, tables: MONITORED, rows: RowsAs::Topology };

/// Timers and limits of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The database monitored.
    pub database: &'static Database,
    /// Time without anything received after which we send an echo request.
    pub echo_interval: Duration,
    /// Time after our echo request during which something must arrive, or the peer is dead.
    pub echo_timeout: Duration,
    /// Largest JSON-RPC message accepted from the server, in bytes.
    pub max_message: usize,
    /// Transactions that may await their reply at once; more are refused (backpressure).
    pub max_outstanding: usize,
    /// Name the hypervisor by its `external_ids:system-id` once the first snapshot shows one
    /// (for connections accepted on a passive remote, whose peer address changes).
    pub name_by_system_id: bool,
    /// Use a member of a clustered database only while it is the cluster's leader (as Open
    /// vSwitch's IDL does by default): locks are local to each server, so clients electing a
    /// leader with one must all talk to the same member. Checked in the server's `_Server`
    /// database on connecting and at every echo interval; a standalone database always passes.
    pub leader_only: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            database: &VSWITCH,
            echo_interval: Duration::from_secs(5),
            echo_timeout: Duration::from_secs(10),
            max_message: DEFAULT_MAX_MESSAGE,
            max_outstanding: 1024,
            name_by_system_id: false,
            leader_only: false,
        }
    }
}

/// Where the session is on its current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No connection.
    Disconnected,
    /// Waiting for the schema.
    Schema,
    /// Waiting for the monitor's initial reply.
    Monitor,
    /// Monitoring; transactions may be sent.
    Ready,
}

/// The monitor method a server accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MonitorMethod {
    /// `monitor_cond_since` (Open vSwitch 2.12+): resumable, `update3` notifications.
    CondSince,
    /// `monitor_cond` (Open vSwitch 2.6+): `update2` notifications.
    Cond,
    /// `monitor` (RFC 7047): `update` notifications.
    Plain,
}

impl MonitorMethod {
    /// The JSON-RPC method name.
    pub fn name(self) -> &'static str {
        match self {
            MonitorMethod::CondSince => "monitor_cond_since",
            MonitorMethod::Cond => "monitor_cond",
            MonitorMethod::Plain => "monitor",
        }
    }

    fn fallback(self) -> Option<MonitorMethod> {
        match self {
            MonitorMethod::CondSince => Some(MonitorMethod::Cond),
            MonitorMethod::Cond => Some(MonitorMethod::Plain),
            MonitorMethod::Plain => None,
        }
    }
}

/// The id of a request the session sent (JSON-RPC ids are the numbers the session allocates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a lock request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOp {
    /// `lock`: hold the lock now or when it frees up.
    Lock,
    /// `steal`: take it from its holder.
    Steal,
    /// `unlock`: release it, or stop waiting for it.
    Unlock,
}

/// Something the server sent that is not what OVSDB allows; it closes the connection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Bytes that are not JSON-RPC, a message over the size limit, or a value of the wrong type.
    #[error("invalid message from ovsdb-server: {0}")]
    Decode(#[from] DecodeError),
    /// A request or notification method the session does not know.
    #[error("ovsdb-server sent an unknown {kind} method {method:?}")]
    UnknownMethod {
        /// `request` or `notification`.
        kind: &'static str,
        /// The method.
        method: String,
    },
    /// The server refused a request the session cannot do without.
    #[error("ovsdb-server refused {method}: {error}")]
    Refused {
        /// The method.
        method: &'static str,
        /// The JSON-RPC error, as JSON.
        error: String,
    },
    /// The server's schema lacks something the topology needs.
    #[error("schema of {database} from ovsdb-server: {problem}")]
    Schema {
        /// The database name as sent.
        database: String,
        /// What is missing.
        problem: String,
    },
    /// An update the replica could not apply (a row inserted twice, a modify of an unknown row).
    #[error("update could not be applied: {0}")]
    Update(#[from] ReplicaError),
    /// An update for a monitor the session did not create, or before the monitor's reply.
    #[error("unexpected {method} for monitor {monitor_id}")]
    UnexpectedUpdate {
        /// The notification method.
        method: &'static str,
        /// The monitor id it named.
        monitor_id: String,
    },
    /// The server is a member of a clustered database that is not (or no longer) its leader,
    /// and the session wants the leader ([`SessionConfig::leader_only`]).
    #[error("ovsdb-server is not the leader of clustered database {database}: {why}")]
    NotLeader {
        /// The database.
        database: String,
        /// What `_Server` said.
        why: String,
    },
    /// The server cancelled our monitor (its database went away).
    #[error("ovsdb-server cancelled the monitor")]
    MonitorCanceled,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Nothing arrived within the echo timeout after our echo request.
    EchoTimeout,
    /// The server broke the protocol.
    Protocol(ProtocolError),
    /// The driver lost or closed the connection (socket error, EOF).
    Transport(String),
    /// The controller no longer wants this hypervisor.
    Shutdown,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::EchoTimeout => f.write_str("echo request unanswered: peer is dead"),
            CloseReason::Protocol(e) => write!(f, "{e}"),
            CloseReason::Transport(why) => f.write_str(why),
            CloseReason::Shutdown => f.write_str("closed by the controller"),
        }
    }
}

/// Why a transaction failed or was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TxnError {
    /// Not connected, or the monitor is not up yet.
    #[error("not ready to send transactions (phase {0:?})")]
    NotReady(Phase),
    /// Too many transactions await their replies.
    #[error("too many outstanding transactions ({0})")]
    Busy(usize),
    /// The schema refuses the operations; nothing was sent.
    #[error("transaction refused before sending: {0}")]
    Invalid(#[from] ValidationError),
    /// The connection was lost before the reply; the transaction may or may not have committed.
    #[error("connection lost before the reply ({0})")]
    Disconnected(String),
    /// The server answered with a JSON-RPC error (e.g. unknown database).
    #[error("ovsdb-server refused the transaction: {0}")]
    Rpc(String),
    /// The reply was not a transaction result.
    #[error("malformed transaction reply: {0}")]
    Malformed(DecodeError),
}

/// Something the controller should know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The monitor is up on a new connection; a [`SessionEvent::Snapshot`] follows unless the
    /// session resumed, in which case [`SessionEvent::Changes`] may follow.
    Connected {
        /// The name changes are tagged with.
        hypervisor: HypervisorId,
        /// The `Open_vSwitch` schema version.
        schema_version: Option<String>,
        /// `Open_vSwitch.external_ids:system-id`.
        system_id: Option<String>,
        /// The monitor method the server accepted.
        monitor: MonitorMethod,
        /// True if only changes since the previous connection were fetched.
        resumed: bool,
    },
    /// A full state of the hypervisor: always a [`Change::HypervisorReplaced`].
    Snapshot(Change),
    /// Rows changed.
    Changes(Vec<Change>),
    /// Every row after the monitor's first reply, then the rows each change touched (only
    /// for a database read [`RowsAs::Replica`]).
    Rows(Box<ChangedRows>),
    /// The reply to [`Session::transact`].
    TxnReply {
        /// The request.
        id: RequestId,
        /// The caller's tag.
        tag: u64,
        /// Per-operation results (check [`TransactReply::error`]), or why there are none.
        result: Result<TransactReply, TxnError>,
    },
    /// We hold the lock.
    Locked {
        /// The lock.
        lock: String,
    },
    /// The lock is held by another client; we are queued for it.
    LockWaiting {
        /// The lock.
        lock: String,
    },
    /// Another client stole the lock; we no longer hold nor wait for it.
    Stolen {
        /// The lock.
        lock: String,
    },
    /// The connection ended while we held the lock; it is requested again on reconnection.
    LockLost {
        /// The lock.
        lock: String,
    },
    /// Something odd but harmless (a reply nobody waits for).
    Error(String),
    /// The connection is over; the driver closes the socket (and reconnects, for active
    /// remotes). The hypervisor's rows stay in the topology until it comes back.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

#[derive(Debug, Clone)]
enum Pending {
    Schema,
    Monitor(MonitorMethod),
    Transact {
        tag: u64,
    },
    Lock {
        lock: String,
        op: LockOp,
    },
    Echo,
    /// A look at `_Server.Database`: is this member the cluster's leader?
    ClusterRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockState {
    Requested,
    Held,
}

/// The OVSDB session with one hypervisor.
#[derive(Debug, Clone)]
pub struct Session {
    cfg: SessionConfig,
    hypervisor: HypervisorId,
    phase: Phase,
    stream: JsonStream,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    transacts: usize,
    schema: Option<DatabaseSchema>,
    replica: Option<Replica>,
    method: MonitorMethod,
    /// Transaction to resume from on the next connection.
    resume_from: Option<Uuid>,
    /// The topology has been told about this hypervisor.
    announced: bool,
    locks: BTreeMap<String, LockState>,
    last_rx: Instant,
    /// When we sent an echo request with nothing received since.
    probe: Option<Instant>,
    transmit: VecDeque<Message>,
    events: VecDeque<SessionEvent>,
}

fn error_text(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Object(o) => match (o.get("error"), o.get("details")) {
            (Some(Value::String(e)), Some(Value::String(d))) => format!("{e}: {d}"),
            (Some(Value::String(e)), _) => e.clone(),
            _ => e.to_string(),
        },
        _ => e.to_string(),
    }
}

/// Whether the answer to the `_Server.Database` select says this server may be used by a
/// leader-only client: a standalone database, or the connected leader of a cluster. `Err` says
/// why not.
fn leads_cluster(result: Result<Value, Value>) -> Result<(), String> {
    let v = match result {
        Ok(v) => v,
        // A server too old for `_Server` has no clusters either.
        Err(e) if is_unknown_method(&e) => return Ok(()),
        Err(e) => return Err(format!("_Server refused the select: {}", error_text(&e))),
    };
    let row = v.get(0).and_then(|r| r.get("rows")).and_then(|r| r.get(0));
    let Some(row) = row else {
        return Err(format!("_Server has no row for the database: {v}"));
    };
    match row.get("model").and_then(Value::as_str) {
        Some("clustered") => {}
        Some(_) => return Ok(()),
        None => return Err(format!("_Server row without a model: {row}")),
    }
    let flag = |c: &str| row.get(c).and_then(Value::as_bool).unwrap_or(false);
    match (flag("connected"), flag("leader")) {
        (true, true) => Ok(()),
        (false, _) => Err("the member is not connected to its cluster".into()),
        (true, false) => Err("the member is a follower".into()),
    }
}

fn is_unknown_method(e: &Value) -> bool {
    let text = match e {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("error").and_then(Value::as_str).unwrap_or(""),
        _ => "",
    };
    text == "unknown method"
}

impl Session {
    /// A session for `hypervisor`, not connected yet.
    pub fn new(now: Instant, hypervisor: HypervisorId, cfg: SessionConfig) -> Self {
        Session {
            stream: JsonStream::new(cfg.max_message),
            cfg,
            hypervisor,
            phase: Phase::Disconnected,
            next_id: 1,
            pending: HashMap::new(),
            transacts: 0,
            schema: None,
            replica: None,
            method: MonitorMethod::CondSince,
            resume_from: None,
            announced: false,
            locks: BTreeMap::new(),
            last_rx: now,
            probe: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The name the session tags changes with.
    pub fn hypervisor(&self) -> &HypervisorId {
        &self.hypervisor
    }

    /// The phase of the current connection.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The replicated tables, once a monitor reply arrived.
    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }

    /// The server's schema, once known.
    pub fn schema(&self) -> Option<&DatabaseSchema> {
        self.schema.as_ref()
    }

    /// The transaction id the next connection resumes from.
    pub fn resume_from(&self) -> Option<Uuid> {
        self.resume_from
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Disconnected {
            return None;
        }
        Some(match self.probe {
            Some(sent) => sent + self.cfg.echo_timeout,
            None => self.last_rx + self.cfg.echo_interval,
        })
    }

    /// A connection is up: asks for the schema.
    pub fn handle_connect(&mut self, now: Instant) {
        if self.phase != Phase::Disconnected {
            self.close(CloseReason::Transport(
                "reconnected before the old connection ended".into(),
            ));
        }
        self.stream = JsonStream::new(self.cfg.max_message);
        self.transmit.clear();
        self.phase = Phase::Schema;
        self.last_rx = now;
        self.probe = None;
        if self.cfg.leader_only {
            self.check_cluster_role();
        }
        let id = self.request(Pending::Schema);
        self.transmit.push_back(Request::get_schema(id.into(), self.cfg.database.name).into());
    }

    /// Asks `_Server` whether this member leads the database's cluster; the answer closes the
    /// connection if it does not (requests are answered in order, so nothing is acted on before).
    fn check_cluster_role(&mut self) {
        let id = self.request(Pending::ClusterRole);
        let select = Operation::Select {
            table: "Database".into(),
            conditions: vec![Condition {
                column: "name".into(),
                function: Function::Eq,
                value: Datum::atom(self.cfg.database.name),
            }],
            columns: Some(vec!["model".into(), "leader".into(), "connected".into()]),
        };
        self.transmit.push_back(Request::transact(id.into(), "_Server", &[select]).into());
    }

    /// The connection is gone (EOF, socket error). Pending transactions fail; held locks are
    /// reported lost. Does nothing if the session already closed the connection itself.
    pub fn handle_disconnect(&mut self, why: impl Into<String>) {
        self.close(CloseReason::Transport(why.into()));
    }

    /// The controller no longer wants this hypervisor: closes the connection, and removes the
    /// hypervisor from the topology if it was announced.
    pub fn shutdown(&mut self) {
        if self.announced && self.cfg.database.rows == RowsAs::Topology {
            self.announced = false;
            self.events.push_back(SessionEvent::Changes(vec![Change::HypervisorGone {
                hypervisor: self.hypervisor.clone(),
            }]));
        }
        if self.phase != Phase::Disconnected {
            self.close(CloseReason::Shutdown);
        } else {
            self.events.push_back(SessionEvent::Closed { reason: CloseReason::Shutdown });
        }
    }

    /// Lets time pass: sends an echo request after a silence, and declares the peer dead when
    /// nothing arrives within the timeout after it.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Disconnected {
            return;
        }
        match self.probe {
            Some(sent) if now >= sent + self.cfg.echo_timeout => {
                self.close(CloseReason::EchoTimeout);
            }
            Some(_) => {}
            None if now >= self.last_rx + self.cfg.echo_interval => {
                self.probe = Some(now);
                // One echo at a time: a server that never answers echoes but keeps talking is
                // alive all the same.
                if !self.pending.values().any(|p| matches!(p, Pending::Echo)) {
                    let id = self.request(Pending::Echo);
                    self.transmit.push_back(Request::echo(id.into(), vec![]).into());
                }
                if self.cfg.leader_only
                    && !self.pending.values().any(|p| matches!(p, Pending::ClusterRole))
                {
                    self.check_cluster_role();
                }
            }
            None => {}
        }
    }

    /// Handles bytes received from the server.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.phase == Phase::Disconnected {
            return;
        }
        self.last_rx = now;
        self.probe = None;
        if let Err(e) = self.stream.push(bytes) {
            self.fail(e.into());
            return;
        }
        while self.phase != Phase::Disconnected {
            match self.stream.next_message() {
                Ok(Some(m)) => self.handle_message(m),
                Ok(None) => break,
                Err(e) => self.fail(e.into()),
            }
        }
    }

    /// Sends a transaction, checked against the schema first. The reply comes back as
    /// [`SessionEvent::TxnReply`] with this id and `tag`.
    pub fn transact(&mut self, ops: &[Operation], tag: u64) -> Result<RequestId, TxnError> {
        if self.phase != Phase::Ready {
            return Err(TxnError::NotReady(self.phase));
        }
        if self.transacts >= self.cfg.max_outstanding {
            return Err(TxnError::Busy(self.transacts));
        }
        if let Some(schema) = &self.schema {
            validate(schema, ops)?;
        }
        self.transacts += 1;
        let id = self.request(Pending::Transact { tag });
        self.transmit.push_back(Request::transact(id.into(), self.cfg.database.name, ops).into());
        Ok(RequestId(id))
    }

    /// Asks for, steals or releases a lock. `Lock` and `Steal` are requested again after a
    /// reconnection until `Unlock`.
    pub fn lock(&mut self, op: LockOp, lock: &str) -> Result<RequestId, TxnError> {
        match op {
            LockOp::Unlock => {
                self.locks.remove(lock);
            }
            LockOp::Lock | LockOp::Steal => {
                self.locks.entry(lock.to_string()).or_insert(LockState::Requested);
            }
        }
        if self.phase != Phase::Ready {
            // Sent once the monitor is up.
            return Err(TxnError::NotReady(self.phase));
        }
        Ok(self.send_lock(op, lock))
    }

    fn send_lock(&mut self, op: LockOp, lock: &str) -> RequestId {
        let n = self.request(Pending::Lock { lock: lock.to_string(), op });
        let id = Value::from(n);
        let req = match op {
            LockOp::Lock => Request::lock(id, lock),
            LockOp::Steal => Request::steal(id, lock),
            LockOp::Unlock => Request::unlock(id, lock),
        };
        self.transmit.push_back(req.into());
        RequestId(n)
    }

    fn request(&mut self, p: Pending) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, p);
        id
    }

    fn fail(&mut self, e: ProtocolError) {
        if matches!(e, ProtocolError::Update(_)) {
            // Our copy missed an update: the next connection starts afresh.
            self.resume_from = None;
        }
        self.close(CloseReason::Protocol(e));
    }

    fn close(&mut self, reason: CloseReason) {
        if self.phase == Phase::Disconnected {
            return;
        }
        self.phase = Phase::Disconnected;
        self.probe = None;
        let why = reason.to_string();
        let mut pending: Vec<(u64, Pending)> = self.pending.drain().collect();
        pending.sort_by_key(|(id, _)| *id);
        for (id, p) in pending {
            if let Pending::Transact { tag } = p {
                self.events.push_back(SessionEvent::TxnReply {
                    id: RequestId(id),
                    tag,
                    result: Err(TxnError::Disconnected(why.clone())),
                });
            }
        }
        self.transacts = 0;
        for (lock, state) in self.locks.iter_mut() {
            if *state == LockState::Held {
                self.events.push_back(SessionEvent::LockLost { lock: lock.clone() });
            }
            *state = LockState::Requested;
        }
        self.events.push_back(SessionEvent::Closed { reason });
    }

    fn handle_message(&mut self, m: Message) {
        match m {
            Message::Response(r) => self.handle_response(r),
            Message::Notification(n) => self.handle_notification(n),
            Message::Request(r) if r.method == "echo" => {
                self.transmit.push_back(r.echo_reply().into());
            }
            Message::Request(r) => {
                self.transmit.push_back(
                    Response {
                        id: r.id,
                        result: Value::Null,
                        error: Some("unknown method".into()),
                    }
                    .into(),
                );
                self.fail(ProtocolError::UnknownMethod { kind: "request", method: r.method });
            }
            _ => {}
        }
    }

    fn handle_response(&mut self, r: Response) {
        let Some(p) = r.id.as_u64().and_then(|id| self.pending.remove(&id)) else {
            self.events.push_back(SessionEvent::Error(format!(
                "ovsdb-server answered request {} that is not pending",
                r.id
            )));
            return;
        };
        let id = r.id.as_u64().unwrap_or_default();
        let result = r.into_result();
        match p {
            Pending::Schema => self.on_schema(result),
            Pending::Monitor(method) => self.on_monitor(method, result),
            Pending::Transact { tag } => {
                self.transacts = self.transacts.saturating_sub(1);
                let result = match result {
                    Ok(v) => TransactReply::from_json(&v).map_err(TxnError::Malformed),
                    Err(e) => Err(TxnError::Rpc(error_text(&e))),
                };
                let bad = match &result {
                    Err(TxnError::Malformed(e)) => Some(e.clone()),
                    _ => None,
                };
                self.events.push_back(SessionEvent::TxnReply { id: RequestId(id), tag, result });
                if let Some(e) = bad {
                    self.fail(e.into());
                }
            }
            Pending::Lock { lock, op } => self.on_lock_reply(lock, op, result),
            Pending::Echo => {}
            Pending::ClusterRole => {
                if let Err(why) = leads_cluster(result) {
                    let database = self.cfg.database.name.to_string();
                    self.fail(ProtocolError::NotLeader { database, why });
                }
            }
        }
    }

    fn on_schema(&mut self, result: Result<Value, Value>) {
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                return self
                    .fail(ProtocolError::Refused { method: "get_schema", error: error_text(&e) })
            }
        };
        let schema = match DatabaseSchema::from_json(&v) {
            Ok(s) => s,
            Err(e) => return self.fail(e.into()),
        };
        let schema_error =
            |problem: String| ProtocolError::Schema { database: schema.name.clone(), problem };
        let database = self.cfg.database;
        if schema.name != database.name {
            let e = schema_error(format!("expected database {}", database.name));
            return self.fail(e);
        }
        if self.schema.as_ref() != Some(&schema) || self.replica.is_none() {
            let mut tables: Vec<(&str, Vec<&str>)> = Vec::new();
            for (table, required, columns) in database.tables {
                match schema.table(table) {
                    Some(t) => tables.push((
                        table,
                        columns.iter().copied().filter(|c| t.columns.contains_key(*c)).collect(),
                    )),
                    None if *required => {
                        let e = schema_error(format!("no table {table}"));
                        return self.fail(e);
                    }
                    None => {}
                }
            }
            let spec: Vec<(&str, Option<&[&str]>)> =
                tables.iter().map(|(t, c)| (*t, Some(c.as_slice()))).collect();
            match Replica::with_columns(&schema, &spec) {
                Ok(r) => {
                    // A new schema invalidates our copy: start afresh.
                    self.replica = Some(r);
                    self.resume_from = None;
                }
                Err(e) => return self.fail(e.into()),
            }
            self.schema = Some(schema);
        }
        self.phase = Phase::Monitor;
        self.send_monitor();
    }

    fn send_monitor(&mut self) {
        let Some(replica) = &self.replica else { return };
        let reqs = replica.monitor_requests();
        let method = self.method;
        let resume = self.resume_from;
        let id = Value::from(self.request(Pending::Monitor(method)));
        let mid = Value::from(MONITOR_ID);
        let db = self.cfg.database.name;
        let req = match method {
            MonitorMethod::CondSince => Request::monitor_cond_since(id, db, mid, &reqs, resume),
            MonitorMethod::Cond => Request::monitor_cond(id, db, mid, &reqs),
            MonitorMethod::Plain => Request::monitor(id, db, mid, &reqs),
        };
        self.transmit.push_back(req.into());
    }

    fn on_monitor(&mut self, method: MonitorMethod, result: Result<Value, Value>) {
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                if let (true, Some(next)) = (is_unknown_method(&e), method.fallback()) {
                    self.method = next;
                    self.resume_from = None;
                    return self.send_monitor();
                }
                return self
                    .fail(ProtocolError::Refused { method: method.name(), error: error_text(&e) });
            }
        };
        match self.apply_monitor_reply(method, &v) {
            Ok((full, changes)) => {
                self.phase = Phase::Ready;
                self.announce(method, full, &changes);
                let wanted: Vec<String> = self.locks.keys().cloned().collect();
                for lock in wanted {
                    self.send_lock(LockOp::Lock, &lock);
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// Applies a monitor reply; returns whether it was a full state, and the row changes.
    fn apply_monitor_reply(
        &mut self,
        method: MonitorMethod,
        v: &Value,
    ) -> Result<(bool, Vec<RowChange>), ProtocolError> {
        let Some(replica) = self.replica.as_mut() else {
            return Ok((true, Vec::new()));
        };
        Ok(match method {
            MonitorMethod::CondSince => {
                let reply = CondSinceReply::from_json(v)?;
                let (found, last_txn_id) = (reply.found, reply.last_txn_id);
                let changes = replica.apply_cond_since_reply(reply)?;
                self.resume_from = Some(last_txn_id);
                (!found, changes)
            }
            // A full state: announced as a snapshot, so no row changes are needed.
            MonitorMethod::Cond => {
                replica.load(TableUpdates2::from_json(v)?)?;
                (true, Vec::new())
            }
            MonitorMethod::Plain => (true, replica.reset_from_update(TableUpdates::from_json(v)?)?),
        })
    }

    fn announce(&mut self, method: MonitorMethod, full: bool, changes: &[RowChange]) {
        let Some(replica) = &self.replica else { return };
        let topology = self.cfg.database.rows == RowsAs::Topology;
        let system_id = translate::root_row(replica)
            .filter(|_| topology)
            .and_then(translate::system_id)
            .map(str::to_string);
        if self.cfg.name_by_system_id && !self.announced {
            if let Some(s) = &system_id {
                self.hypervisor = HypervisorId::from(s.clone());
            }
        }
        self.events.push_back(SessionEvent::Connected {
            hypervisor: self.hypervisor.clone(),
            schema_version: self.schema.as_ref().and_then(|s| s.version.clone()),
            system_id,
            monitor: method,
            resumed: !full,
        });
        if !topology {
            self.events.push_back(SessionEvent::Rows(Box::new(ChangedRows::all(replica))));
        } else if full || !self.announced {
            self.events
                .push_back(SessionEvent::Snapshot(translate::replaced(&self.hypervisor, replica)));
        } else {
            let c = translate::changes(&self.hypervisor, replica, changes);
            if !c.is_empty() {
                self.events.push_back(SessionEvent::Changes(c));
            }
        }
        self.announced = true;
    }

    fn on_lock_reply(&mut self, lock: String, op: LockOp, result: Result<Value, Value>) {
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                self.locks.remove(&lock);
                let method = match op {
                    LockOp::Lock => "lock",
                    LockOp::Steal => "steal",
                    LockOp::Unlock => "unlock",
                };
                self.events.push_back(SessionEvent::Error(format!(
                    "ovsdb-server refused {method} {lock:?}: {}",
                    error_text(&e)
                )));
                return;
            }
        };
        if op == LockOp::Unlock || !self.locks.contains_key(&lock) {
            return;
        }
        match parse_lock_reply(&v) {
            Ok(true) => self.set_held(lock),
            Ok(false) => self.events.push_back(SessionEvent::LockWaiting { lock }),
            Err(e) => self.fail(e.into()),
        }
    }

    fn set_held(&mut self, lock: String) {
        if let Some(state) = self.locks.get_mut(&lock) {
            if *state != LockState::Held {
                *state = LockState::Held;
                self.events.push_back(SessionEvent::Locked { lock });
            }
        }
    }

    fn handle_notification(&mut self, n: Notification) {
        let typed = match ServerNotification::from_notification(&n) {
            Ok(t) => t,
            Err(e) => return self.fail(e.into()),
        };
        let applied = match typed {
            ServerNotification::Update { monitor_id, updates } => {
                self.check_monitor("update", &monitor_id).and_then(|r| Ok(r.apply_update(updates)?))
            }
            ServerNotification::Update2 { monitor_id, updates } => self
                .check_monitor("update2", &monitor_id)
                .and_then(|r| Ok(r.apply_update2(updates)?)),
            ServerNotification::Update3 { monitor_id, last_txn_id, updates } => {
                let r = self
                    .check_monitor("update3", &monitor_id)
                    .and_then(|r| Ok(r.apply_update3(last_txn_id, updates)?));
                if r.is_ok() {
                    self.resume_from = Some(last_txn_id);
                }
                r
            }
            ServerNotification::Locked { lock } => {
                self.set_held(lock);
                return;
            }
            ServerNotification::Stolen { lock } => {
                if self.locks.remove(&lock).is_some() {
                    self.events.push_back(SessionEvent::Stolen { lock });
                }
                return;
            }
            ServerNotification::MonitorCanceled { .. } => {
                return self.fail(ProtocolError::MonitorCanceled)
            }
            _ => {
                return self
                    .fail(ProtocolError::UnknownMethod { kind: "notification", method: n.method })
            }
        };
        match applied {
            Ok(rc) => {
                let Some(replica) = &self.replica else { return };
                if self.cfg.database.rows == RowsAs::Replica {
                    if !rc.is_empty() {
                        self.events
                            .push_back(SessionEvent::Rows(Box::new(ChangedRows::of(replica, &rc))));
                    }
                } else {
                    let c = translate::changes(&self.hypervisor, replica, &rc);
                    if !c.is_empty() {
                        self.events.push_back(SessionEvent::Changes(c));
                    }
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// The replica, if `monitor_id` is our monitor and its initial reply has arrived.
    fn check_monitor(
        &mut self,
        method: &'static str,
        monitor_id: &Value,
    ) -> Result<&mut Replica, ProtocolError> {
        let unexpected =
            || ProtocolError::UnexpectedUpdate { method, monitor_id: monitor_id.to_string() };
        if self.phase != Phase::Ready || monitor_id.as_str() != Some(MONITOR_ID) {
            return Err(unexpected());
        }
        self.replica.as_mut().ok_or_else(unexpected)
    }
}

#[cfg(test)]
mod tests;
