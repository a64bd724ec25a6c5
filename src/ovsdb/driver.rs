//! The tokio drivers of OVSDB sessions: one task per hypervisor, which owns the socket and the
//! timer and only moves bytes, events and commands between them and the sans-IO [`Session`].
//!
//! Active remotes (`tcp:`, `ssl:`, `unix:`) are connected by [`spawn_active`], again after every
//! disconnection with a bounded exponential backoff (100 ms doubling to 5 s by default; reset
//! once a connection reaches its monitor). Passive remotes (`ptcp:`, `pssl:`, `punix:`) are
//! served by
//! [`Listener`], which runs one session per accepted connection, named by the hypervisor's
//! `system-id` so that a server reconnecting to us resyncs into the same hypervisor. Every task
//! has its own bounded command queue; events of all tasks go to one bounded queue to the
//! controller, tagged with the hypervisor's id. A slow or dead hypervisor only holds up its own
//! task.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use periscope_codec::ovsdb::{Operation, TransactReply};
use periscope_topology::HypervisorId;
use slog::{debug, info, o, warn, Logger};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::remote::Remote;
use super::session::{LockOp, Phase, RequestId, Session, SessionConfig, SessionEvent, TxnError};
use crate::openflow::listener::listen_tcp;
use crate::tls::{handshake_error, TlsConfig};

/// Capacity of a hypervisor's command queue.
pub const COMMAND_QUEUE: usize = 64;

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 64 << 10;

/// Timers of a driver, and its session's configuration.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The session's timers and limits.
    pub session: SessionConfig,
    /// First delay before reconnecting.
    pub backoff_min: Duration,
    /// Largest delay before reconnecting.
    pub backoff_max: Duration,
    /// Time a connection attempt may take, TLS handshake included.
    pub connect_timeout: Duration,
    /// Key, certificate and CA for `ssl:` and `pssl:` remotes; `None` refuses them.
    pub tls: Option<TlsConfig>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            session: SessionConfig::default(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            tls: None,
        }
    }
}

/// Where the outcome of a transaction goes.
#[derive(Debug)]
pub enum ReplyTo {
    /// To this channel (and not to the event queue).
    Oneshot(oneshot::Sender<Result<TransactReply, TxnError>>),
    /// To the event queue as [`SessionEvent::TxnReply`] (or [`DriverEvent::Refused`]) with
    /// this tag.
    Tag(u64),
}

/// What the controller asks a hypervisor's driver to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Run a transaction on the hypervisor's `Open_vSwitch` database.
    Transact {
        /// The operations, validated against the schema before sending.
        ops: Vec<Operation>,
        /// Where the reply goes.
        reply: ReplyTo,
    },
    /// Lock, steal or unlock a named lock.
    Lock {
        /// What to do.
        op: LockOp,
        /// The lock.
        lock: String,
    },
    /// Forget the hypervisor: close, remove it from the topology, end the task.
    Close,
}

/// What a driver tells the controller, tagged with the hypervisor's id.
#[derive(Debug)]
#[non_exhaustive]
pub enum DriverEvent {
    /// A connection accepted on a passive remote reached its monitor; commands for that
    /// hypervisor go to `commands`. Sent just before its [`SessionEvent::Connected`].
    Accepted {
        /// The peer's address.
        peer: String,
        /// Where to send commands for this hypervisor.
        commands: mpsc::Sender<Command>,
    },
    /// A connection attempt failed; the next one is in `retry_in`.
    ConnectFailed {
        /// The remote.
        remote: String,
        /// Why.
        error: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// A transaction with [`ReplyTo::Tag`] was refused before sending.
    Refused {
        /// The caller's tag.
        tag: u64,
        /// Why.
        error: TxnError,
    },
    /// The session reported something.
    Session(SessionEvent),
}

/// Events of every driver, tagged with the hypervisor.
pub type EventSender = mpsc::Sender<(HypervisorId, DriverEvent)>;

/// A running active driver.
#[derive(Debug)]
pub struct Handle {
    /// The hypervisor's id.
    pub hypervisor: HypervisorId,
    /// Where to send commands.
    pub commands: mpsc::Sender<Command>,
    /// The task; it ends after [`Command::Close`], when every command sender is dropped, or
    /// when the event queue is closed.
    pub task: JoinHandle<()>,
}

/// Why an active driver could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "remote {0} is passive: the controller listens there (use Listener), it cannot connect to it"
)]
pub struct NotActive(pub String);

/// Starts the driver of an active remote (`tcp:`, `ssl:` or `unix:`), named `hypervisor`.
/// An `ssl:` remote without `cfg.tls` fails each attempt with [`DriverEvent::ConnectFailed`].
pub fn spawn_active(
    hypervisor: HypervisorId,
    remote: Remote,
    cfg: DriverConfig,
    events: EventSender,
    log: Logger,
) -> Result<Handle, NotActive> {
    spawn_active_any(hypervisor, vec![remote], cfg, events, log)
}

/// Starts the driver of one database served by several active remotes (the members of a
/// cluster, as `ovs-vsctl --db=tcp:A,tcp:B,tcp:C` takes them): each connection goes to the next
/// remote after the last one, so a member that is gone or refused (not the leader, with
/// [`SessionConfig::leader_only`]) is passed over at once; the backoff grows only once every
/// remote failed in a row.
pub fn spawn_active_any(
    hypervisor: HypervisorId,
    remotes: Vec<Remote>,
    cfg: DriverConfig,
    events: EventSender,
    log: Logger,
) -> Result<Handle, NotActive> {
    if let Some(r) = remotes.iter().find(|r| r.is_passive()) {
        return Err(NotActive(r.to_string()));
    }
    if remotes.is_empty() {
        return Err(NotActive("(no remote)".into()));
    }
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let log = log.new(o!("hypervisor" => hypervisor.to_string()));
    let task = tokio::spawn(run_active(hypervisor.clone(), remotes, cfg, rx, events, log));
    Ok(Handle { hypervisor, commands: tx, task })
}

/// A socket to an ovsdb-server, either kind.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// Why an `ssl:` or `pssl:` remote cannot be used.
fn no_tls(remote: &Remote) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("remote {remote} needs TLS: no private key, certificate and CA certificate given"),
    )
}

async fn connect(remote: &Remote, tls: Option<&TlsConfig>) -> std::io::Result<Box<dyn Conn>> {
    match remote {
        Remote::Tcp(a) => {
            let s = TcpStream::connect(a).await?;
            let _ = s.set_nodelay(true);
            Ok(Box::new(s))
        }
        Remote::Ssl(a) => {
            let tls = tls.ok_or_else(|| no_tls(remote))?;
            let s = TcpStream::connect(a).await?;
            let _ = s.set_nodelay(true);
            // The name is only a formality for rustls: the verifier checks the chain alone.
            let name = tokio_rustls::rustls::pki_types::ServerName::IpAddress(a.ip().into());
            let s = tls
                .connector()
                .connect(name, s)
                .await
                .map_err(|e| handshake_error(&remote.to_string(), e))?;
            Ok(Box::new(s))
        }
        Remote::Unix(p) => Ok(Box::new(UnixStream::connect(p).await?)),
        other => Err(std::io::Error::other(NotActive(other.to_string()))),
    }
}

/// How a connection ended.
enum Ended {
    /// The session closed; reconnect (active) or end (passive).
    Closed,
    /// The controller asked to close for good, or is gone.
    Stop,
}

/// The per-hypervisor state that outlives connections.
struct Driver {
    session: Session,
    session_cfg: SessionConfig,
    events: EventSender,
    commands: mpsc::Receiver<Command>,
    oneshots: HashMap<RequestId, oneshot::Sender<Result<TransactReply, TxnError>>>,
    /// For passive connections: sent just before the first `Connected`.
    accepted: Option<DriverEvent>,
    reached_ready: bool,
    log: Logger,
}

impl Driver {
    /// Forwards the session's events; false if the controller is gone.
    async fn forward(&mut self) -> bool {
        while let Some(ev) = self.session.poll_event() {
            let ev = match ev {
                SessionEvent::TxnReply { id, tag, result } => match self.oneshots.remove(&id) {
                    Some(tx) => {
                        let _ = tx.send(result);
                        continue;
                    }
                    None => SessionEvent::TxnReply { id, tag, result },
                },
                ev => ev,
            };
            match &ev {
                SessionEvent::Connected { hypervisor, resumed, monitor, .. } => {
                    self.reached_ready = true;
                    info!(self.log, "monitoring"; "as" => %hypervisor, "resumed" => resumed,
                        "method" => monitor.name());
                    if let Some(a) = self.accepted.take() {
                        if !self.send(a).await {
                            return false;
                        }
                    }
                }
                SessionEvent::Closed { reason } => {
                    info!(self.log, "connection closed"; "reason" => %reason)
                }
                SessionEvent::Error(e) => warn!(self.log, "{}", e),
                _ => {}
            }
            if !self.send(DriverEvent::Session(ev)).await {
                return false;
            }
        }
        true
    }

    async fn send(&self, ev: DriverEvent) -> bool {
        self.events.send((self.session.hypervisor().clone(), ev)).await.is_ok()
    }

    /// Handles a command; false when the driver must stop.
    async fn command(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            Some(Command::Transact { ops, reply }) => {
                let tag = match &reply {
                    ReplyTo::Tag(t) => *t,
                    ReplyTo::Oneshot(_) => 0,
                };
                match (self.session.transact(&ops, tag), reply) {
                    (Ok(id), ReplyTo::Oneshot(tx)) => {
                        self.oneshots.insert(id, tx);
                    }
                    (Ok(_), ReplyTo::Tag(_)) => {}
                    (Err(e), ReplyTo::Oneshot(tx)) => {
                        let _ = tx.send(Err(e));
                    }
                    (Err(error), ReplyTo::Tag(tag)) => {
                        return self.send(DriverEvent::Refused { tag, error }).await;
                    }
                }
                true
            }
            Some(Command::Lock { op, lock }) => {
                // Not connected: remembered and requested once the monitor is up.
                let _ = self.session.lock(op, &lock);
                true
            }
            Some(Command::Close) | None => {
                self.session.shutdown();
                self.forward().await;
                false
            }
        }
    }

    /// Runs one connection until it ends.
    async fn run_connection(&mut self, mut conn: Box<dyn Conn>) -> Ended {
        self.session.handle_connect(Instant::now());
        self.reached_ready = false;
        let mut buf = vec![0u8; READ_CHUNK];
        let mut out = Vec::new();
        loop {
            out.clear();
            while let Some(m) = self.session.poll_transmit() {
                m.emit(&mut out);
            }
            if !out.is_empty() {
                // A server that stops reading is dead like one that stops answering.
                let limit = self.session_write_limit();
                match tokio::time::timeout(limit, conn.write_all(&out)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => self.session.handle_disconnect(format!("write failed: {e}")),
                    Err(_) => self.session.handle_disconnect("write timed out"),
                }
            }
            if !self.forward().await {
                return Ended::Stop;
            }
            if self.session.phase() == Phase::Disconnected {
                // Whatever was queued before closing (an error reply) is written above.
                let _ = conn.shutdown().await;
                return Ended::Closed;
            }
            let deadline = self.session.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                r = conn.read(&mut buf) => match r {
                    Ok(0) => self.session.handle_disconnect("connection closed by ovsdb-server"),
                    Ok(n) => self.session.handle_input(Instant::now(), &buf[..n]),
                    Err(e) => self.session.handle_disconnect(format!("read failed: {e}")),
                },
                cmd = self.commands.recv() => {
                    if !self.command(cmd).await {
                        let _ = conn.shutdown().await;
                        return Ended::Stop;
                    }
                }
                _ = sleep_until(deadline) => self.session.handle_timeout(Instant::now()),
            }
        }
    }

    fn session_write_limit(&self) -> Duration {
        let c = &self.session_cfg;
        c.echo_interval + c.echo_timeout
    }

    /// Waits `delay` while serving commands; false when the driver must stop.
    async fn pause(&mut self, delay: Duration) -> bool {
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return true,
                cmd = self.commands.recv() => {
                    if !self.command(cmd).await {
                        return false;
                    }
                }
            }
        }
    }
}

async fn run_active(
    hypervisor: HypervisorId,
    remotes: Vec<Remote>,
    cfg: DriverConfig,
    commands: mpsc::Receiver<Command>,
    events: EventSender,
    log: Logger,
) {
    let base_log = log;
    let mut d = Driver {
        session: Session::new(Instant::now(), hypervisor, cfg.session.clone()),
        session_cfg: cfg.session.clone(),
        events,
        commands,
        oneshots: HashMap::new(),
        accepted: None,
        reached_ready: false,
        log: base_log.clone(),
    };
    let mut delay = cfg.backoff_min;
    // Remotes tried in a row without one reaching its monitor.
    let mut failed = 0;
    for remote in remotes.iter().cycle() {
        d.log = base_log.new(o!("remote" => remote.to_string()));
        match tokio::time::timeout(cfg.connect_timeout, connect(remote, cfg.tls.as_ref())).await {
            Ok(Ok(conn)) => {
                debug!(d.log, "connected");
                if let Ended::Stop = d.run_connection(conn).await {
                    return;
                }
                d.oneshots.clear();
                if d.reached_ready {
                    delay = cfg.backoff_min;
                    failed = 0;
                } else {
                    failed += 1;
                }
            }
            result => {
                failed += 1;
                let error = match result {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no connection within {:?}", cfg.connect_timeout),
                };
                debug!(d.log, "connect failed"; "error" => &error, "retry_in" => ?delay);
                let ev = DriverEvent::ConnectFailed {
                    remote: remote.to_string(),
                    error,
                    retry_in: delay,
                };
                if !d.send(ev).await {
                    return;
                }
            }
        }
        // The next member at once while some have not been tried; the backoff after a round.
        if failed > 0 && failed % remotes.len() == 0 || remotes.len() == 1 {
            if !d.pause(delay).await {
                return;
            }
            delay = (delay * 2).min(cfg.backoff_max);
        }
    }
}

/// A bound passive remote (`ptcp:`, `pssl:` or `punix:`), before it accepts.
#[derive(Debug)]
#[non_exhaustive]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// TCP, each connection secured with TLS by [`Listener::serve`] (which needs
    /// [`DriverConfig::tls`]).
    Ssl(TcpListener),
    /// Unix socket, with its path (removed when the listener goes away).
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds a passive remote. A stale unix socket file left by a dead process is replaced.
    pub async fn bind(remote: &Remote) -> std::io::Result<Listener> {
        match remote {
            Remote::PTcp(a) => Ok(Listener::Tcp(listen_tcp(*a)?)),
            Remote::PSsl(a) => Ok(Listener::Ssl(listen_tcp(*a)?)),
            Remote::PUnix(p) => {
                if p.exists() && std::os::unix::net::UnixStream::connect(p).is_err() {
                    std::fs::remove_file(p)?;
                }
                Ok(Listener::Unix(UnixListener::bind(p)?, p.clone()))
            }
            other => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "remote {other} is active: the controller connects there, it cannot listen"
                ),
            )),
        }
    }

    /// The remote ovsdb-servers should connect to (with the real port when 0 was asked for),
    /// as `ovs-vsctl set-manager` takes it.
    pub fn local(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp:{a}"),
                Err(_) => "tcp:?".into(),
            },
            Listener::Ssl(l) => match l.local_addr() {
                Ok(a) => format!("ssl:{a}"),
                Err(_) => "ssl:?".into(),
            },
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    /// Accepts connections until the task is dropped, running one session per connection.
    /// A `pssl:` listener without [`DriverConfig::tls`] logs why and returns at once.
    pub async fn serve(self, cfg: DriverConfig, events: EventSender, log: Logger) {
        if let (Listener::Ssl(_), None) = (&self, &cfg.tls) {
            warn!(log, "not listening"; "error" => %no_tls(&Remote::PSsl(self.addr())));
            return;
        }
        info!(log, "listening for ovsdb-servers"; "on" => self.local());
        let seq = Arc::new(AtomicU64::new(1));
        loop {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let accepted: std::io::Result<(Box<dyn Conn>, String)> = match &self {
                Listener::Tcp(l) => l.accept().await.map(|(s, peer)| {
                    let _ = s.set_nodelay(true);
                    (Box::new(s) as Box<dyn Conn>, format!("tcp:{peer}"))
                }),
                Listener::Ssl(l) => match l.accept().await {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        // The handshake runs in the connection's task: a slow client must
                        // not hold up the others.
                        let peer = format!("ssl:{peer}");
                        let log = log.new(o!("peer" => peer.clone()));
                        let (cfg, events) = (cfg.clone(), events.clone());
                        tokio::spawn(async move {
                            let Some(tls) = cfg.tls.clone() else { return };
                            let hs =
                                tokio::time::timeout(cfg.connect_timeout, tls.acceptor().accept(s));
                            match hs.await {
                                Ok(Ok(s)) => run_passive(Box::new(s), peer, cfg, events, log).await,
                                Ok(Err(e)) => {
                                    warn!(log, "refused"; "error" => %handshake_error(&peer, e))
                                }
                                Err(_) => {
                                    warn!(log, "refused"; "error" => "TLS handshake timed out")
                                }
                            }
                        });
                        continue;
                    }
                    Err(e) => Err(e),
                },
                Listener::Unix(l, p) => l.accept().await.map(|(s, _)| {
                    (Box::new(s) as Box<dyn Conn>, format!("unix:{}#{n}", p.display()))
                }),
            };
            match accepted {
                Ok((conn, peer)) => {
                    let log = log.new(o!("peer" => peer.clone()));
                    tokio::spawn(run_passive(conn, peer, cfg.clone(), events.clone(), log));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    warn!(log, "accept failed"; "error" => %e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Listener {
    /// The bound TCP address (unspecified for a unix socket).
    fn addr(&self) -> std::net::SocketAddr {
        match self {
            Listener::Tcp(l) | Listener::Ssl(l) => {
                l.local_addr().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into())
            }
            Listener::Unix(..) => ([0, 0, 0, 0], 0).into(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn run_passive(
    conn: Box<dyn Conn>,
    peer: String,
    cfg: DriverConfig,
    events: EventSender,
    log: Logger,
) {
    let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let scfg = SessionConfig { name_by_system_id: true, ..cfg.session.clone() };
    let mut d = Driver {
        session: Session::new(Instant::now(), HypervisorId::from(peer.clone()), scfg.clone()),
        session_cfg: scfg,
        events,
        commands,
        oneshots: HashMap::new(),
        accepted: Some(DriverEvent::Accepted { peer, commands: tx }),
        reached_ready: false,
        log,
    };
    // The hypervisor's rows stay in the topology when the connection ends: the server
    // reconnects and its snapshot replaces them. Forgetting it is the controller's call.
    let _ = d.run_connection(conn).await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
