//! A controller-side OVSDB client for tests: drivers on a tokio runtime of their own, a pump
//! that applies every change to a topology and records every event, and polling helpers.

#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use periscope::codec::ovsdb::{Operation, TransactReply};
use periscope::ovsdb::driver::{
    spawn_active, Command, DriverConfig, DriverEvent, Handle, Listener, ReplyTo,
};
use periscope::ovsdb::{Remote, SessionEvent, TxnError};
use periscope::topology::{EventKind, HypervisorId, Topology, TopologyConfig};
use tokio::sync::{mpsc, oneshot};

/// Everything the client has seen.
pub struct State {
    /// The graph built from every change.
    pub topology: Topology,
    /// Every topology event, in order.
    pub topo_events: Vec<EventKind>,
    /// Every session event, in order, with its hypervisor.
    pub events: Vec<(HypervisorId, SessionEvent)>,
    /// Connection failures, with their hypervisor.
    pub connect_failures: Vec<(HypervisorId, String)>,
    /// Command senders of accepted passive connections.
    pub accepted: Vec<(HypervisorId, mpsc::Sender<Command>)>,
}

impl State {
    /// Session events of one hypervisor.
    pub fn of<'s>(&'s self, hv: &'s str) -> impl Iterator<Item = &'s SessionEvent> + 's {
        self.events.iter().filter(move |(h, _)| h.as_str() == hv).map(|(_, e)| e)
    }

    /// Number of `Connected` events of one hypervisor.
    pub fn connections(&self, hv: &str) -> usize {
        self.of(hv).filter(|e| matches!(e, SessionEvent::Connected { .. })).count()
    }

    /// `Closed` reasons of one hypervisor, as text.
    pub fn closes(&self, hv: &str) -> Vec<String> {
        self.of(hv)
            .filter_map(|e| match e {
                SessionEvent::Closed { reason } => Some(reason.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// The client under test.
pub struct Client {
    pub rt: tokio::runtime::Runtime,
    state: Arc<Mutex<State>>,
    events: mpsc::Sender<(HypervisorId, DriverEvent)>,
    pub handles: Vec<Handle>,
    pub cfg: DriverConfig,
}

fn log() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl Client {
    /// A client with default timers, except a short reconnect backoff.
    pub fn new() -> Client {
        let cfg = DriverConfig {
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
            ..DriverConfig::default()
        };
        Client::with(cfg)
    }

    /// A client with these timers.
    pub fn with(cfg: DriverConfig) -> Client {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let state = Arc::new(Mutex::new(State {
            topology: Topology::new(TopologyConfig::default()),
            topo_events: Vec::new(),
            events: Vec::new(),
            connect_failures: Vec::new(),
            accepted: Vec::new(),
        }));
        let (tx, mut rx) = mpsc::channel::<(HypervisorId, DriverEvent)>(1024);
        let s = state.clone();
        rt.spawn(async move {
            while let Some((hv, ev)) = rx.recv().await {
                let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
                match ev {
                    DriverEvent::Session(ev) => {
                        let topo = match &ev {
                            SessionEvent::Snapshot(c) => st.topology.apply(c.clone()),
                            SessionEvent::Changes(cs) => {
                                st.topology.apply_batch(cs.iter().cloned())
                            }
                            _ => Vec::new(),
                        };
                        st.topo_events.extend(topo.into_iter().map(|e| e.kind));
                        st.events.push((hv, ev));
                    }
                    DriverEvent::ConnectFailed { error, .. } => {
                        st.connect_failures.push((hv, error))
                    }
                    DriverEvent::Accepted { commands, .. } => st.accepted.push((hv, commands)),
                    _ => {}
                }
            }
        });
        Client { rt, state, events: tx, handles: Vec::new(), cfg }
    }

    /// Starts a driver for an active remote, named `name`.
    pub fn add(&mut self, name: &str, remote: &str) -> HypervisorId {
        let remote: Remote = remote.parse().expect("remote");
        let _guard = self.rt.enter();
        let h = spawn_active(
            HypervisorId::from(name),
            remote,
            self.cfg.clone(),
            self.events.clone(),
            log(),
        )
        .expect("active remote");
        let id = h.hypervisor.clone();
        self.handles.push(h);
        id
    }

    /// Binds a passive remote and serves it; returns the address servers should connect to.
    pub fn listen(&self, remote: &str) -> String {
        let remote: Remote = remote.parse().expect("remote");
        let l = self.rt.block_on(Listener::bind(&remote)).expect("bind");
        let local = l.local();
        self.rt.spawn(l.serve(self.cfg.clone(), self.events.clone(), log()));
        local
    }

    /// The state, locked.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Polls `check` on the state every 20 ms until it gives `Some`, or panics after `timeout`
    /// naming `what` and showing the events.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check(&self.state()) {
                return v;
            }
            if start.elapsed() > timeout {
                let st = self.state();
                let evs: Vec<String> =
                    st.events.iter().map(|(h, e)| format!("{h}: {}", short(e))).collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}\nsession events:\n{}\nconnect failures: {:?}",
                    evs.join("\n"),
                    st.connect_failures.iter().rev().take(3).collect::<Vec<_>>()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a transaction through the hypervisor's driver and waits for its outcome.
    pub fn transact(
        &self,
        hv: &HypervisorId,
        ops: Vec<Operation>,
    ) -> Result<TransactReply, TxnError> {
        let h = self.handles.iter().find(|h| &h.hypervisor == hv).expect("known hypervisor");
        let (tx, rx) = oneshot::channel();
        self.rt.block_on(async {
            h.commands
                .send(Command::Transact { ops, reply: ReplyTo::Oneshot(tx) })
                .await
                .expect("driver alive");
            tokio::time::timeout(Duration::from_secs(10), rx)
                .await
                .expect("reply in time")
                .expect("reply")
        })
    }
}

/// An event, shortened for failure messages.
fn short(e: &SessionEvent) -> String {
    let s = format!("{e:?}");
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
    }
}

/// A directory of our own under /tmp, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A new empty directory named `periscope-ovsdb-<what>-<pid>-<n>`.
    pub fn new(what: &str) -> TempDir {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::path::PathBuf::from("/tmp")
            .join(format!("periscope-ovsdb-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An ovsdb-server of our own (no ovs-vswitchd) with a single-node clustered Open_vSwitch
/// database, whose transaction history lets clients resume. Stopped by pid on drop.
pub struct ClusteredServer {
    /// Its directory (database, sockets, log).
    pub dir: TempDir,
}

fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program).args(args).output().expect(program);
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl ClusteredServer {
    /// Creates the database and starts the server.
    pub fn start() -> ClusteredServer {
        let dir = TempDir::new("cluster");
        let d = dir.0.display().to_string();
        run(
            "ovsdb-tool",
            &[
                "create-cluster",
                &format!("{d}/conf.db"),
                "/usr/share/openvswitch/vswitch.ovsschema",
                &format!("unix:{d}/raft.sock"),
            ],
        );
        run(
            "ovsdb-server",
            &[
                &format!("{d}/conf.db"),
                &format!("--remote=punix:{d}/db.sock"),
                &format!("--unixctl={d}/ovsdb.ctl"),
                &format!("--pidfile={d}/ovsdb.pid"),
                &format!("--log-file={d}/ovsdb.log"),
                "--detach",
            ],
        );
        let s = ClusteredServer { dir };
        s.vsctl(&["init"]);
        s
    }

    /// `unix:<db socket>`.
    pub fn remote(&self) -> String {
        format!("unix:{}/db.sock", self.dir.0.display())
    }

    /// `ovs-vsctl --no-wait` against it (no ovs-vswitchd runs).
    pub fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db={}", self.remote());
        let mut all = vec![db.as_str(), "--no-wait", "--timeout=10"];
        all.extend_from_slice(args);
        run("ovs-vsctl", &all)
    }

    /// `ovs-appctl -t <ctl>` against it.
    pub fn appctl(&self, args: &[&str]) -> String {
        let ctl = format!("{}/ovsdb.ctl", self.dir.0.display());
        let mut all = vec!["-t", ctl.as_str()];
        all.extend_from_slice(args);
        run("ovs-appctl", &all)
    }
}

impl Drop for ClusteredServer {
    fn drop(&mut self) {
        let pidfile = self.dir.0.join("ovsdb.pid");
        let Some(pid) =
            std::fs::read_to_string(pidfile).ok().and_then(|s| s.trim().parse::<u32>().ok())
        else {
            return;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "ovsdb-server" {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            for _ in 0..100 {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
