//! The northbound side of the core: who is calling, what they may read, and the writes on
//! their way to the northbound database.
//!
//! A write is decided by the pure rules ([`crate::northbound::rules`]) on the state the core
//! holds, sent as one transaction, and answered only once the database has committed it and
//! its monitor shows it, so that the caller's next read sees what it wrote. Without a
//! database (in-process use: benchmarks, tests) the state a write leads to is taken at once.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use periscope_codec::openflow::Dpid;
use periscope_codec::ovsdb::{Operation, OvsdbOpError};
use periscope_topology::Source as TopoSource;
use serde_json::{json, Value};
use slog::{debug, info, warn};
use tokio::sync::{mpsc, oneshot};

use super::flows::DumpKind;
use super::leadership::LEADER_LOCK;
use super::Core;
use crate::northbound::api::{ApiCall, ApiReply, ApiRequest};
use crate::northbound::auth::{Caller, TokenHash, Tokens};
use crate::northbound::config::Config;
use crate::northbound::db::{Northbound, Touched};
use crate::northbound::model::Collector;
use crate::northbound::model::{TapFlow, TapService, TapServiceId};
use crate::northbound::rules::{Context, Expect, Outcome, Reserved};
use crate::ovsdb::driver::{Command as OvsdbCommand, DriverEvent, ReplyTo};
use crate::ovsdb::session::SessionEvent as OvsdbEvent;
use crate::policy::desired::{feeding, topology_source};

/// A committed write that the monitor does not show yet is answered anyway after this long.
const VISIBLE_WAIT: Duration = Duration::from_secs(2);
/// A write the database has not answered after this long is answered with an error.
const COMMIT_WAIT: Duration = Duration::from_secs(10);

/// A write sent to the database, waiting for its commit and for the monitor to show it.
struct PendingWrite {
    /// Where the answer goes (none for in-process callers).
    reply: Option<oneshot::Sender<ApiReply>>,
    answer: ApiReply,
    expect: Expect,
    sent: Instant,
    committed: Option<Instant>,
    key: Option<u32>,
    /// The request, to decide again if another writer got in first.
    request: (Caller, ApiCall),
    /// Times it was decided again.
    retries: u32,
}

/// A write that lost a race to another writer, waiting for the state to show the winner.
struct Retry {
    reply: Option<oneshot::Sender<ApiReply>>,
    request: (Caller, ApiCall),
    retries: u32,
    since: Instant,
}

/// A write that keeps losing races is answered with the conflict after this many tries.
const MAX_RETRIES: u32 = 3;
/// A write that lost a race is decided again after this long even without news.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The desired state, the API's credentials and the writes in flight.
pub(crate) struct Front {
    /// The desired state, as last read.
    pub(crate) state: Northbound,
    /// Whether the desired state has been read: nothing is reconciled before.
    pub(crate) ready: bool,
    pub(super) writer: Option<mpsc::Sender<OvsdbCommand>>,
    config: Config,
    pending: HashMap<u64, PendingWrite>,
    retries: Vec<Retry>,
    reserved: Reserved,
    next_tag: u64,
    problems: BTreeSet<String>,
}

impl Front {
    /// The desired state kept in memory only, known from the start.
    pub(crate) fn in_memory() -> Front {
        Front {
            state: Northbound::default(),
            ready: true,
            writer: None,
            config: Config::default(),
            pending: HashMap::new(),
            retries: Vec::new(),
            reserved: Reserved::default(),
            next_tag: 1,
            problems: BTreeSet::new(),
        }
    }
}

/// The answer to a call: now, or once a write is through.
enum Answer {
    Now(ApiReply),
    Later(u64),
    /// Once the switch answers the flow dump with this tag.
    Dump(u64),
}

fn unauthorized() -> ApiReply {
    ApiReply::fail(
        401,
        "unauthorized",
        "a valid token is needed: Authorization: Bearer <token>",
        None,
        Value::Null,
    )
}

fn unavailable(why: impl std::fmt::Display) -> ApiReply {
    ApiReply::fail(503, "unavailable", why, None, Value::Null)
}

fn not_found(what: impl std::fmt::Display) -> ApiReply {
    ApiReply::fail(404, "not_found", format!("{what} not found"), None, Value::Null)
}

fn operator_only() -> ApiReply {
    ApiReply::fail(403, "operator_only", "only the operator may read this", None, Value::Null)
}

/// The reply for an operation the database refused.
fn refused(e: &OvsdbOpError) -> ApiReply {
    let details = e.details.as_deref().unwrap_or("");
    let (code, message) = match e.error.as_str() {
        "constraint violation" => {
            ("conflict", format!("another writer took the same id, key or name: {details}"))
        }
        "referential integrity violation" => ("in_use", format!("still referred to: {details}")),
        "timed out" => (
            "conflict",
            "what this request was checked against changed meanwhile; try again".to_string(),
        ),
        other => ("database", format!("the northbound database refused it: {other}: {details}")),
    };
    ApiReply::fail(409, code, message, None, Value::Null)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Core {
    /// A controller whose desired state lives in the northbound database that `writer`'s
    /// driver monitors; nothing is reconciled until that database has been read.
    pub fn with_northbound(
        log: slog::Logger,
        topology: periscope_topology::TopologyConfig,
        config: Config,
        writer: mpsc::Sender<OvsdbCommand>,
    ) -> Core {
        let mut core = Core::new(log, topology);
        core.nb.ready = false;
        core.nb.writer = Some(writer);
        core.nb.config = config;
        core
    }

    /// Whether the desired state has been read.
    pub fn northbound_ready(&self) -> bool {
        self.nb.ready
    }

    fn tokens(&self) -> Tokens {
        self.nb.config.tokens.merged(&self.nb.state.tokens)
    }

    fn caller(&self, token: Option<&TokenHash>) -> Option<Caller> {
        let t = token?;
        self.nb.config.tokens.caller(t).or_else(|| self.nb.state.tokens.caller(t))
    }

    /// Answers an API request, now or once its write is through.
    pub fn handle_api(&mut self, req: ApiRequest, reply: oneshot::Sender<ApiReply>) {
        let Some(caller) = self.caller(req.token.as_ref()) else {
            let _ = reply.send(if self.nb.ready || req.token.is_none() {
                unauthorized()
            } else {
                unavailable("the northbound database has not been read yet")
            });
            return;
        };
        match self.answer(&caller, req.call) {
            Answer::Now(r) => {
                let _ = reply.send(r);
            }
            Answer::Later(tag) => {
                if let Some(p) = self.nb.pending.get_mut(&tag) {
                    p.reply = Some(reply);
                }
            }
            Answer::Dump(tag) => self.dumps.attach(tag, reply),
        }
    }

    /// Answers a call from inside the process, as `caller`. Meant for a controller without a
    /// database, where every answer is immediate; with one, a write answers 202.
    pub fn handle_api_as(&mut self, caller: &Caller, call: ApiCall) -> ApiReply {
        match self.answer(caller, call) {
            Answer::Now(r) => r,
            Answer::Later(tag) | Answer::Dump(tag) => {
                ApiReply { status: 202, body: json!({ "pending": tag }) }
            }
        }
    }

    fn answer(&mut self, caller: &Caller, call: ApiCall) -> Answer {
        if !self.nb.ready {
            return Answer::Now(unavailable("the northbound database has not been read yet"));
        }
        if call.writes() {
            return self.write(caller, call);
        }
        let dump = match &call {
            ApiCall::SwitchFlows { dpid, ours } => Some((*dpid, DumpKind::Flows { ours: *ours })),
            ApiCall::SwitchDiff(dpid) => Some((*dpid, DumpKind::Diff)),
            ApiCall::SwitchTrace { dpid, packet } => Some((*dpid, DumpKind::Trace(packet.clone()))),
            _ => None,
        };
        if let Some((dpid, kind)) = dump {
            if !caller.is_operator() {
                return Answer::Now(operator_only());
            }
            return match self.start_flow_dump(dpid, kind) {
                Ok(tag) => Answer::Dump(tag),
                Err(r) => Answer::Now(r),
            };
        }
        let taps = &self.nb.state.taps;
        let reply = match call {
            ApiCall::ListServices(q) => {
                ApiReply::ok(Value::Array(q.page(
                    taps.services().filter(|s| caller.may_act_for(&s.tenant)).map(|s| {
                        (s.id.0, s.tenant.clone(), s.name.clone(), self.service_status(s))
                    }),
                )))
            }
            ApiCall::GetService(id) => {
                match taps.service(id).filter(|s| caller.may_act_for(&s.tenant)) {
                    Some(s) => ApiReply::ok(self.service_status(s)),
                    None => not_found(format!("tap service {}", id.0)),
                }
            }
            ApiCall::ListFlows(q) => {
                let flows = q.page(
                    taps.flows()
                        .filter(|f| caller.may_act_for(&f.tenant))
                        .map(|f| (f.id.0, f.tenant.clone(), f.name.clone(), f)),
                );
                ApiReply::ok(Value::Array(flows.into_iter().map(|f| self.flow_status(f)).collect()))
            }
            ApiCall::GetFlow(id) => match taps.flow(id).filter(|f| caller.may_act_for(&f.tenant)) {
                Some(f) => ApiReply::ok(self.flow_status(f)),
                None => not_found(format!("tap flow {}", id.0)),
            },
            ApiCall::Interface(id) => self.interface(caller, &id),
            ApiCall::ListTenants => ApiReply::ok(json!(self
                .nb
                .state
                .tenants
                .values()
                .filter(|t| caller.may_act_for(&t.name))
                .collect::<Vec<_>>())),
            ApiCall::GetTenant(name) => {
                match self.nb.state.tenants.get(&name).filter(|t| caller.may_act_for(&t.name)) {
                    Some(t) => ApiReply::ok(json!(t)),
                    None => not_found(format!("tenant {name}")),
                }
            }
            _ if !caller.is_operator() => operator_only(),
            ApiCall::ListTokens => ApiReply::ok(json!(self.tokens().known().collect::<Vec<_>>())),
            ApiCall::Audit(q) => {
                ApiReply::ok(json!(q.page(self.nb.state.audit.iter().enumerate().map(|(i, a)| (
                    i as u64 + 1,
                    a.tenant.clone().unwrap_or_default(),
                    a.action.clone(),
                    a
                )))))
            }
            ApiCall::Switches => ApiReply::ok(self.switch_list()),
            ApiCall::Topology => ApiReply::ok(json!(self.topology.snapshot())),
            ApiCall::Events { since, limit } => ApiReply::ok(self.events.read(since, limit)),
            ApiCall::GetLog => match &self.log_level {
                Some(c) => {
                    ApiReply::ok(json!({ "level": c.level().as_str().to_ascii_lowercase() }))
                }
                None => unavailable("this controller's log level cannot be read or changed"),
            },
            ApiCall::PutLog(body) => self.put_log(&body),
            ApiCall::Stats => ApiReply::ok(self.stats()),
            ApiCall::Cluster => ApiReply::ok(self.cluster()),
            ApiCall::Metrics => {
                ApiReply::ok(Value::String(self.metrics.render(&self.stats(), &self.switch_list())))
            }
            _ => ApiReply::fail(500, "internal", "unhandled call", None, Value::Null),
        };
        Answer::Now(reply)
    }

    /// `PUT /v1/log`: sets the process logger's level.
    fn put_log(&mut self, body: &Value) -> ApiReply {
        let Some(control) = &self.log_level else {
            return unavailable("this controller's log level cannot be changed");
        };
        let text = body.get("level").and_then(Value::as_str).unwrap_or_default();
        match text.parse::<crate::log::LogLevel>() {
            Ok(l) => {
                let before = control.level();
                control.set(l.0);
                // At warn, so that the change shows whichever way it goes.
                warn!(self.log, "log level changed"; "from" => before.as_str(), "to" => l.0.as_str());
                // Lower case, as `--log-level` takes it.
                ApiReply::ok(json!({ "level": l.0.as_str().to_ascii_lowercase() }))
            }
            Err(e) => ApiReply::fail(400, "bad_value", e, Some("level"), json!({ "value": text })),
        }
    }

    /// The tenant the topology's interfaces with this iface-id say they belong to.
    fn said_tenant(&self, iface_id: &str) -> Option<String> {
        self.topology
            .interfaces(&TopoSource::IfaceId(iface_id.to_string()))
            .into_iter()
            .find_map(|i| i.tenant().map(str::to_string))
    }

    fn interface(&self, caller: &Caller, id: &str) -> ApiReply {
        let registered = self.nb.state.taps.registered_owner(id);
        let said = self.said_tenant(id);
        let owner = registered.map(str::to_string).or(said);
        let locations = self.topology.locations(id);
        let visible =
            owner.as_deref().is_some_and(|o| caller.may_act_for(o)) || caller.is_operator();
        if !visible || (locations.is_empty() && registered.is_none()) {
            return not_found(format!("interface {id:?}"));
        }
        ApiReply::ok(json!({
            "iface_id": id,
            "owner": owner,
            "registered": registered.is_some(),
            "locations": locations,
            "migrations": self.migrations.history(id),
        }))
    }

    fn write(&mut self, caller: &Caller, call: ApiCall) -> Answer {
        let request = (caller.clone(), call.clone());
        let tokens = self.tokens();
        let outcome = {
            let said = |i: &str| self.said_tenant(i);
            let cx = Context {
                nb: &self.nb.state,
                quota: self.nb.config.quota,
                caller,
                now_ms: now_ms(),
                iface_tenant: &said,
                reserved: &self.nb.reserved,
            };
            match call {
                ApiCall::CreateToken(_) if self.nb.writer.is_none() => {
                    Outcome::Reply(unavailable("tokens need the northbound database"))
                }
                call => cx.write(call, &tokens).unwrap_or_else(|| {
                    Outcome::Reply(ApiReply::fail(
                        500,
                        "internal",
                        "not a write",
                        None,
                        Value::Null,
                    ))
                }),
            }
        };
        let w = match outcome {
            Outcome::Reply(r) => return Answer::Now(r),
            Outcome::Write(w) => *w,
        };
        let Some(writer) = &self.nb.writer else {
            // Decided on this very state, with nothing in between: it applies.
            if let Err(e) = self.nb.state.edit(w.edit) {
                return Answer::Now(crate::northbound::rules::store_error(e));
            }
            self.reconcile_all();
            return Answer::Now(w.reply);
        };
        let tag = self.nb.next_tag;
        self.nb.next_tag += 1;
        let mut ops = w.ops;
        ops.push(Operation::Commit { durable: true });
        if let Err(e) = writer.try_send(OvsdbCommand::Transact { ops, reply: ReplyTo::Tag(tag) }) {
            return Answer::Now(unavailable(format!(
                "the northbound database is not keeping up: {e}"
            )));
        }
        if let Some(id) = w.id {
            self.nb.reserved.last_id = self.nb.reserved.last_id.max(id);
        }
        if let Some(k) = w.key {
            self.nb.reserved.keys.insert(k);
        }
        self.nb.pending.insert(
            tag,
            PendingWrite {
                reply: None,
                answer: w.reply,
                expect: w.expect,
                sent: Instant::now(),
                committed: None,
                key: w.key,
                request,
                retries: 0,
            },
        );
        Answer::Later(tag)
    }

    /// Another writer took an id, key or name this write relied on: decide it again once the
    /// state shows the winner (the rules then say what is wrong, or find a free id and key).
    fn retry_write(&mut self, tag: u64, conflict: ApiReply) {
        let Some(p) = self.nb.pending.remove(&tag) else { return };
        if let Some(k) = p.key {
            self.nb.reserved.keys.remove(&k);
        }
        if p.retries >= MAX_RETRIES {
            if let Some(tx) = p.reply {
                let _ = tx.send(conflict);
            }
            return;
        }
        self.nb.retries.push(Retry {
            reply: p.reply,
            request: p.request,
            retries: p.retries + 1,
            since: Instant::now(),
        });
    }

    /// Decides again the writes that lost a race (all, or those waiting long enough).
    fn run_retries(&mut self, all: bool) {
        let (due, wait): (Vec<Retry>, Vec<Retry>) = std::mem::take(&mut self.nb.retries)
            .into_iter()
            .partition(|r| all || r.since.elapsed() >= RETRY_AFTER);
        self.nb.retries = wait;
        for r in due {
            let (caller, call) = r.request;
            match self.write(&caller, call) {
                Answer::Now(reply) => {
                    if let Some(tx) = r.reply {
                        let _ = tx.send(reply);
                    }
                }
                Answer::Later(tag) => {
                    if let Some(p) = self.nb.pending.get_mut(&tag) {
                        p.reply = r.reply;
                        p.retries = r.retries;
                    }
                }
                // A write is never a flow dump.
                Answer::Dump(_) => {}
            }
        }
    }

    fn finish_write(&mut self, tag: u64, reply: Option<ApiReply>) {
        let Some(p) = self.nb.pending.remove(&tag) else { return };
        if let Some(k) = p.key {
            self.nb.reserved.keys.remove(&k);
        }
        if let Some(tx) = p.reply {
            let _ = tx.send(reply.unwrap_or(p.answer));
        }
    }

    /// Answers the committed writes the state now shows.
    fn finish_visible(&mut self) {
        let done: Vec<u64> = self
            .nb
            .pending
            .iter()
            .filter(|(_, p)| p.committed.is_some() && p.expect.met(&self.nb.state))
            .map(|(t, _)| *t)
            .collect();
        for tag in done {
            self.finish_write(tag, None);
        }
    }

    /// Handles an event of the northbound database's driver.
    pub fn handle_nb_event(&mut self, ev: DriverEvent) {
        match ev {
            DriverEvent::Session(OvsdbEvent::Rows(rows)) => {
                let touched = self.nb.state.apply(&rows);
                for p in &self.nb.state.problems {
                    if self.nb.problems.insert(p.clone()) {
                        warn!(self.log, "northbound row skipped"; "problem" => p);
                    }
                }
                let first = !self.nb.ready;
                self.nb.ready = true;
                if first {
                    info!(self.log, "northbound database read";
                        "tap_services" => self.nb.state.taps.services().count(),
                        "tap_flows" => self.nb.state.taps.flows().count(),
                        "tenants" => self.nb.state.tenants.len());
                }
                if first || touched.everything {
                    self.reconcile_all();
                } else if !touched.is_empty() {
                    // Taps no bridge holds a source or collector of (yet) change no plan.
                    let bridges = self.bridges_of(&touched);
                    if !bridges.is_empty() {
                        self.reconcile_bridges(Some(&bridges));
                    }
                }
                self.finish_visible();
                self.run_retries(true);
            }
            DriverEvent::Session(OvsdbEvent::TxnReply { tag, result, .. }) => match result {
                Ok(r) => match r.error() {
                    None => {
                        if let Some(p) = self.nb.pending.get_mut(&tag) {
                            p.committed = Some(Instant::now());
                        }
                        self.finish_visible();
                    }
                    Some((i, e)) => {
                        debug!(self.log, "northbound write refused"; "operation" => i, "error" => ?e);
                        if e.error == "constraint violation" || e.error == "timed out" {
                            self.retry_write(tag, refused(e));
                        } else {
                            self.finish_write(tag, Some(refused(e)));
                        }
                    }
                },
                Err(e) => {
                    self.finish_write(tag, Some(unavailable(format!("northbound database: {e}"))))
                }
            },
            DriverEvent::Refused { tag, error } => {
                self.finish_write(tag, Some(unavailable(format!("northbound database: {error}"))))
            }
            DriverEvent::Session(OvsdbEvent::Connected { monitor, resumed, .. }) => {
                info!(self.log, "northbound database connected"; "monitor" => monitor.name(), "resumed" => resumed)
            }
            DriverEvent::Session(OvsdbEvent::Locked { lock }) if lock == LEADER_LOCK => {
                self.handle_locked()
            }
            DriverEvent::Session(OvsdbEvent::LockWaiting { lock }) if lock == LEADER_LOCK => {
                info!(self.log, "follower: another instance holds the leader lock")
            }
            DriverEvent::Session(OvsdbEvent::Stolen { lock }) if lock == LEADER_LOCK => {
                self.step_down("another instance stole the leader lock");
                self.ask_lock();
            }
            DriverEvent::Session(OvsdbEvent::LockLost { lock }) if lock == LEADER_LOCK => {
                self.step_down("the northbound database connection that held the lock is lost")
            }
            DriverEvent::Session(OvsdbEvent::Closed { reason }) => {
                warn!(self.log, "northbound database connection lost"; "reason" => ?reason);
                self.step_down("the northbound database connection is lost");
                let tags: Vec<u64> = self.nb.pending.keys().copied().collect();
                for tag in tags {
                    self.finish_write(
                        tag,
                        Some(unavailable(
                            "the northbound database connection was lost before the write was confirmed; read back to see whether it was made",
                        )),
                    );
                }
            }
            DriverEvent::ConnectFailed { remote, error, retry_in } => {
                debug!(self.log, "northbound connect failed"; "remote" => remote, "error" => error,
                    "retry_ms" => retry_in.as_millis() as u64)
            }
            other => debug!(self.log, "northbound"; "event" => ?other),
        }
    }

    /// Answers writes that waited too long.
    pub(super) fn northbound_tick(&mut self) {
        if !self.nb.retries.is_empty() {
            self.run_retries(false);
        }
        let now = Instant::now();
        let late: Vec<(u64, bool)> = self
            .nb
            .pending
            .iter()
            .filter_map(|(t, p)| match p.committed {
                Some(c) if now - c > VISIBLE_WAIT => Some((*t, true)),
                None if now - p.sent > COMMIT_WAIT => Some((*t, false)),
                _ => None,
            })
            .collect();
        for (tag, committed) in late {
            if committed {
                warn!(self.log, "a committed northbound write is not visible yet; answering anyway"; "tag" => tag);
                self.finish_write(tag, None);
            } else {
                self.finish_write(
                    tag,
                    Some(unavailable("the northbound database did not answer in time")),
                );
            }
        }
    }

    /// A tap service, with why its copies are held back if they are.
    fn service_status(&self, s: &TapService) -> Value {
        let mut v = json!(s);
        if self.nb.state.taps.is_blocked(s.id) {
            v["blocked"] = json!(match &s.collector {
                Collector::Remote(ip) => format!(
                    "{ip} is outside tenant {}'s allowed collectors: no copy goes there",
                    s.tenant
                ),
                Collector::Iface(id) => format!(
                    "interface {id} is registered to another tenant than {}: no copy goes there",
                    s.tenant
                ),
            });
        }
        v
    }

    /// The bridges whose plan a northbound change may change: where the touched tap flows'
    /// sources are (and the flows of the touched tap services), where their VM collectors
    /// run, where the interfaces whose registration changed are, and those feeding them if
    /// they are VM collectors.
    fn bridges_of(&self, touched: &Touched) -> BTreeSet<Dpid> {
        let taps = &self.nb.state.taps;
        let services: BTreeSet<TapServiceId> = touched.services.iter().map(|s| s.id).collect();
        let flows = touched.flows.iter().chain(services.iter().flat_map(|s| taps.flows_using(*s)));
        let collectors = touched
            .services
            .iter()
            .filter_map(|s| s.collector.iface_id())
            .chain(
                touched
                    .flows
                    .iter()
                    .filter_map(|f| taps.service(f.tap_service)?.collector.iface_id()),
            )
            .chain(touched.interfaces.iter().map(String::as_str))
            .map(|id| TopoSource::IfaceId(id.to_string()));
        let mut bridges: BTreeSet<Dpid> = flows
            .map(|f| topology_source(&f.source))
            .chain(collectors)
            .flat_map(|source| self.topology.interfaces(&source))
            .filter_map(|i| i.location.dpid)
            .collect();
        for id in &touched.interfaces {
            bridges.extend(feeding(&self.topology, taps, id));
        }
        bridges
    }

    /// A tap flow with where it is active now and how long its bridges took to reprogram.
    fn flow_status(&self, f: &TapFlow) -> Value {
        let taps = &self.nb.state.taps;
        let mut active = Vec::new();
        for i in self.topology.interfaces(&topology_source(&f.source)) {
            if taps.tenant_of(i.iface_id(), i.tenant()) != Some(f.tenant.as_str()) {
                continue;
            }
            let l = i.location;
            let sw = l.dpid.and_then(|d| self.by_dpid.get(&d)).and_then(|c| self.switches.get(c));
            active.push(json!({
                "iface_id": i.iface_id(),
                "hypervisor": l.hypervisor.to_string(),
                "dpid": l.dpid.map(|d| d.to_string()),
                "ofport": l.ofport.map(|p| p.0),
                "programmed": sw.is_some_and(|s| s.dirty_since.is_none() && !s.reconciler.busy()),
                "last_reprogram_ms": sw.and_then(|s| s.last_reprogram).map(|d| d.as_secs_f64() * 1e3),
            }));
        }
        let mut v = json!(f);
        if let Some(o) = v.as_object_mut() {
            let status = if taps.is_blocked(f.tap_service) {
                "BLOCKED"
            } else if active.is_empty() {
                "PENDING"
            } else {
                "ACTIVE"
            };
            o.insert("status".into(), json!(status));
            o.insert("active".into(), Value::Array(active));
        }
        v
    }

    /// The connected switches, sorted by dpid: where each is, since when, what it holds.
    fn switch_list(&self) -> Value {
        let mut list: Vec<(Dpid, Value)> = self
            .switches
            .values()
            .filter_map(|s| {
                let dpid = s.dpid?;
                let bridge = self.topology.bridge_by_dpid(dpid);
                let since = s.connected_at.duration_since(std::time::UNIX_EPOCH).ok();
                Some((
                    dpid,
                    json!({
                        "dpid": dpid.to_string(),
                        "peer": s.peer,
                        "hypervisor": bridge.map(|b| b.bridge.hypervisor.to_string()),
                        "bridge": bridge.map(|b| b.row.name.clone()),
                        "connected_since_ms": since.map(|d| d.as_millis() as u64),
                        "role": s.role.name(),
                        "our_flows": s.reconciler.actual().map(|a| a.len()),
                        "programmed": s.dirty_since.is_none() && !s.reconciler.busy(),
                        "last_reprogram_ms": s.last_reprogram.map(|d| d.as_secs_f64() * 1e3),
                        "echo_rtt_ms": s.echo_rtt.map(|d| d.as_secs_f64() * 1e3),
                        "queue_depth": s.commands.max_capacity() - s.commands.capacity(),
                    }),
                ))
            })
            .collect();
        list.sort_by_key(|(d, _)| *d);
        Value::Array(list.into_iter().map(|(_, v)| v).collect())
    }

    /// Counters and reprogramming times.
    fn stats(&self) -> Value {
        let mut ms: Vec<f64> = self.reprograms.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| ms.get(((ms.len() as f64 - 1.0) * p).round() as usize).copied();
        json!({
            "switches": self.by_dpid.len(),
            // Of those, the ones that confirmed their plan: the progress of a reconciliation of
            // many bridges (after a restart, say) reads here.
            "switches_programmed": self
                .by_dpid
                .values()
                .filter_map(|c| self.switches.get(c))
                .filter(|s| s.dirty_since.is_none() && !s.reconciler.busy())
                .count(),
            "hypervisors": self.ovsdb.values().filter(|p| p.connected).count(),
            "tap_services": self.nb.state.taps.services().count(),
            "tap_flows": self.nb.state.taps.flows().count(),
            "tap_flows_active": self
                .nb
                .state
                .taps
                .flows()
                .filter(|f| self.flow_status(f)["status"] == "ACTIVE")
                .count(),
            "tenants": self.nb.state.tenants.len(),
            "tunnel_ports": crate::policy::tunnels::count_ours(&self.topology),
            "northbound_writes_pending": self.nb.pending.len(),
            "cluster": self.cluster(),
            "topology_generation": self.topology.generation().0,
            "queues": self
                .queues
                .iter()
                .filter_map(|(name, probe)| Some((name.to_string(), json!(probe()?))))
                .collect::<serde_json::Map<String, Value>>(),
            "messages": self.metrics.totals(),
            "reprogram_ms": {
                "count": ms.len(),
                "p50": q(0.5),
                "p99": q(0.99),
                "max": ms.last(),
            },
        })
    }
}
