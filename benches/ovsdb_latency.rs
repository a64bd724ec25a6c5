//! Latency from an OVSDB commit on a real ovsdb-server (Open vSwitch 3.1) to the topology
//! event in periscope's client.
//!
//! `cargo bench --bench ovsdb_latency` starts its own ovsdb-server on a fresh vswitch database
//! in a temp dir (unix socket, no vswitchd) and runs two periscope OVSDB drivers against it on
//! one tokio thread: the *watcher*, whose monitor updates go through translation into a
//! [`Topology`], and the *writer*, which commits. Each round the writer changes the `ofport` of
//! the one VM interface; `t0` is taken just before the `transact` command is handed to the
//! writer's driver, `t1` when the watcher's `Changes` event, applied to the topology, gives the
//! `LocationReady` at the new port. Reports p50/p90/p99/max over 500 commits (after 50 warm-up
//! ones; `PERISCOPE_LATENCY_COMMITS` changes the count) against the target p99 < 5 ms, and the
//! time until the writer saw its own commit's reply, for reference. Everything it starts is
//! stopped by pid and its directory removed, also on panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use periscope::codec::openflow::PortNo;
use periscope::codec::ovsdb::{
    Atom, Condition, Datum, Function, Operation, Row, TransactReply, Uuid,
};
use periscope::ovsdb::driver::{spawn_active, Command, DriverConfig, DriverEvent, Handle, ReplyTo};
use periscope::ovsdb::{Remote, SessionEvent, TxnError};
use periscope::topology::{EventKind, HypervisorId, Topology, TopologyConfig};
use tokio::sync::{mpsc, oneshot};

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const TARGET_P99: Duration = Duration::from_millis(5);
const WARMUP: usize = 50;

/// Our ovsdb-server: killed by pid and its directory removed when dropped, even on panic.
struct Server {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// A fresh database served on `db.sock` in a new temp dir; `None` without Open vSwitch.
    fn start() -> Option<Server> {
        if !Path::new(SCHEMA).exists()
            || Process::new("ovsdb-server").arg("--version").output().is_err()
        {
            return None;
        }
        let nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir()
            .join(format!("periscope-bench-latency-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).expect("create temp dir");
        let mut server = Server { dir, child: None };
        let d = server.dir.clone();
        let st = Process::new("ovsdb-tool")
            .arg("create")
            .arg(d.join("conf.db"))
            .arg(SCHEMA)
            .status()
            .expect("run ovsdb-tool");
        assert!(st.success(), "ovsdb-tool create failed");
        let child = Process::new("ovsdb-server")
            .arg(d.join("conf.db"))
            .arg(format!("--remote=punix:{}", d.join("db.sock").display()))
            .arg(format!("--unixctl={}", d.join("ovsdb.ctl").display()))
            .arg(format!("--log-file={}", d.join("ovsdb.log").display()))
            .arg("--no-chdir")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ovsdb-server");
        server.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.socket().exists() {
            assert!(Instant::now() < deadline, "ovsdb-server did not create its socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(server)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }
}

type Events = mpsc::Receiver<(HypervisorId, DriverEvent)>;

/// A driver on the server's socket, with its own event queue.
fn driver(name: &str, server: &Server) -> (Handle, Events) {
    let (tx, rx) = mpsc::channel(1024);
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let remote = Remote::Unix(server.socket());
    let h = spawn_active(HypervisorId::from(name), remote, DriverConfig::default(), tx, log)
        .expect("unix: is an active remote");
    (h, rx)
}

/// The next session event, failing after 10 s.
async fn next(events: &mut Events) -> SessionEvent {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
        match got.expect("an event within 10 s").expect("the driver is running") {
            (_, DriverEvent::Session(ev)) => return ev,
            (_, DriverEvent::ConnectFailed { error, .. }) => panic!("connect failed: {error}"),
            _ => {}
        }
    }
}

async fn connected(events: &mut Events) {
    loop {
        if let SessionEvent::Connected { .. } = next(events).await {
            return;
        }
    }
}

async fn transact(h: &Handle, ops: Vec<Operation>) -> oneshot::Receiver<TxnResult> {
    let (tx, rx) = oneshot::channel();
    h.commands
        .send(Command::Transact { ops, reply: ReplyTo::Oneshot(tx) })
        .await
        .expect("writer driver running");
    rx
}

type TxnResult = Result<TransactReply, TxnError>;

fn ok(reply: TxnResult) -> TransactReply {
    let reply = reply.expect("transaction sent");
    if let Some((i, e)) = reply.error() {
        panic!("operation {i} failed: {e:?}");
    }
    reply
}

fn named(name: &str) -> Datum {
    Datum::atom(Atom::NamedUuid(name.into()))
}

fn row<const N: usize>(cols: [(&str, Datum); N]) -> Row {
    cols.into_iter().map(|(c, d)| (c.into(), d)).collect()
}

/// One bridge with a known datapath_id, one port and one VM interface (ofport 1).
fn setup_ops() -> Vec<Operation> {
    let ids =
        Datum::map([("iface-id", "periscope-bench-vm"), ("attached-mac", "02:00:00:00:00:01")]);
    vec![
        Operation::Insert {
            table: "Interface".into(),
            row: row([
                ("name", Datum::atom("pbench0")),
                ("ofport", Datum::atom(1)),
                ("external_ids", ids),
            ]),
            uuid_name: Some("i".into()),
        },
        Operation::Insert {
            table: "Port".into(),
            row: row([("name", Datum::atom("pbench0")), ("interfaces", named("i"))]),
            uuid_name: Some("p".into()),
        },
        Operation::Insert {
            table: "Bridge".into(),
            row: row([
                ("name", Datum::atom("br-pbench")),
                ("datapath_id", Datum::atom("00000000000000b1")),
                ("ports", named("p")),
            ]),
            uuid_name: Some("b".into()),
        },
        Operation::Insert {
            table: "Open_vSwitch".into(),
            row: row([("bridges", named("b"))]),
            uuid_name: None,
        },
    ]
}

fn set_ofport(iface: Uuid, ofport: i64) -> Vec<Operation> {
    vec![Operation::Update {
        table: "Interface".into(),
        conditions: vec![Condition::new("_uuid", Function::Eq, Atom::Uuid(iface))],
        row: row([("ofport", Datum::atom(ofport))]),
    }]
}

/// Whether `events` include the interface becoming ready at `ofport`.
fn ready_at(events: &[periscope::topology::Event], ofport: u32) -> bool {
    events.iter().any(|e| {
        matches!(&e.kind, EventKind::LocationReady { location } if location.ofport == Some(PortNo(ofport)))
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

async fn run(server: &Server, commits: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (writer, mut writer_events) = driver("periscope-bench-writer", server);
    connected(&mut writer_events).await;
    // The writer's own monitor updates are not looked at, but its queue must keep moving.
    let drain = tokio::spawn(async move { while writer_events.recv().await.is_some() {} });

    let reply = ok(transact(&writer, setup_ops()).await.await.expect("setup reply"));
    let iface = reply.inserted(0).expect("the interface's uuid");

    let (watcher, mut events) = driver("periscope-bench-watcher", server);
    let hv = watcher.hypervisor.clone();
    let mut topo = Topology::new(TopologyConfig::default());
    loop {
        match next(&mut events).await {
            SessionEvent::Snapshot(change) => {
                let ev = topo.apply(change);
                assert!(ready_at(&ev, 1), "the snapshot shows the VM ready at port 1: {ev:?}");
                break;
            }
            SessionEvent::Closed { reason } => panic!("watcher closed: {reason}"),
            _ => {}
        }
    }

    let mut to_event = Vec::with_capacity(commits);
    let mut to_reply = Vec::with_capacity(commits);
    for round in 0..WARMUP + commits {
        let ofport = 2 + (round % 2) as u32;
        let ops = set_ofport(iface, i64::from(ofport));
        let t0 = Instant::now();
        let reply = transact(&writer, ops).await;
        // When the writer's reply arrives, measured on its own so that it does not wait for us.
        let replied = tokio::spawn(async move {
            let r = reply.await;
            (Instant::now(), r)
        });
        let t1 = loop {
            match next(&mut events).await {
                SessionEvent::Changes(changes) => {
                    let ev = topo.apply_batch(changes);
                    if ready_at(&ev, ofport) {
                        break Instant::now();
                    }
                }
                SessionEvent::Closed { reason } => panic!("watcher closed: {reason}"),
                _ => {}
            }
        };
        let (t_reply, r) = replied.await.expect("reply task");
        ok(r.expect("reply channel"));
        if round >= WARMUP {
            to_event.push(t1 - t0);
            to_reply.push(t_reply - t0);
        }
    }
    assert_eq!(hv.as_str(), "periscope-bench-watcher");

    for h in [&watcher, &writer] {
        let _ = h.commands.send(Command::Close).await;
    }
    for h in [watcher, writer] {
        if tokio::time::timeout(Duration::from_secs(5), h.task).await.is_err() {
            eprintln!("a driver did not stop within 5 s");
        }
    }
    drain.abort();
    (to_event, to_reply)
}

fn main() {
    let commits = std::env::var("PERISCOPE_LATENCY_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(500);
    let Some(server) = Server::start() else {
        println!("ovsdb_latency: skipped (ovsdb-server or {SCHEMA} not installed)");
        return;
    };
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let (mut to_event, mut to_reply) = rt.block_on(run(&server, commits));
    drop(rt);
    drop(server);
    to_event.sort();
    to_reply.sort();

    println!(
        "OVSDB commit -> topology event, real ovsdb-server, {commits} commits \
         (after {WARMUP} warm-up), client on one tokio thread"
    );
    println!("{:<44} {:>10} {:>10} {:>10} {:>10}", "", "p50", "p90", "p99", "max");
    for (name, v) in [
        ("transact sent -> watcher's topology event", &to_event),
        ("transact sent -> writer's reply (reference)", &to_reply),
    ] {
        println!(
            "{name:<44} {:>10} {:>10} {:>10} {:>10}",
            ms(percentile(v, 0.50)),
            ms(percentile(v, 0.90)),
            ms(percentile(v, 0.99)),
            ms(v[v.len() - 1]),
        );
    }
    let p99 = percentile(&to_event, 0.99);
    println!(
        "target: p99 < {} -> {}",
        ms(TARGET_P99),
        if p99 < TARGET_P99 { "met" } else { "MISSED" }
    );
}
