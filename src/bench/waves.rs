//! `periscope bench waves`: migration waves among emulated hypervisors.
//!
//! Each hypervisor is one tokio task holding an emulated ovsdb-server
//! ([`super::ovsdb_server::EmulatedOvsdb`]) and the emulated OpenFlow 1.3 switch of its bridge
//! ([`super::switch::EmulatedSwitch`], keeping its flows). Both connect to the controller, as
//! Open vSwitch does with `set-manager ptcp:` and `set-controller`: one listening OVSDB
//! endpoint serves every hypervisor, which is what makes a thousand practical. VM interfaces
//! are plugged at the start; tap flows select some of them. Then waves of VMs move at once:
//! plugged on the destination with the same `iface-id`, then, once every destination has
//! confirmed, unplugged from the source.
//!
//! A migration's **install** time runs from the destination's OVSDB update leaving the
//! hypervisor to the barrier reply after which its switch holds the flows that copy the new
//! port's frames (the fan-out to the tap services and the copy itself: the destination
//! confirmed its flows); **cleanup** runs from the source's update to the barrier
//! reply after which the source holds none for the old port. Then the controller is restarted
//! against the same hypervisors and northbound database: the time until every bridge is
//! programmed (`/v1/stats`) and no flow mod has come for a second, and how many came.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use periscope_codec::openflow::Message;
use periscope_codec::ovsdb::{JsonStream, Message as JsonMessage, Request};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

use super::ovsdb_server::{EmulatedOvsdb, PortChange, Vif};
use super::run::{percentile_ms, rss_kib};
use super::switch::EmulatedSwitch;
use super::BenchArgs;
use crate::lab::controller::ControllerProcess;
use crate::openflow::framing::{Frame, OfpCodec};
use crate::policy::cookie;

/// Tenants the VMs belong to (each with one tap service).
const TENANTS: usize = 20;
/// How long flow mods must have stopped before a reconciliation counts as over.
const QUIET: Duration = Duration::from_secs(1);
/// ovsdb-server's default inactivity probe.
const PROBE: Duration = Duration::from_secs(5);
/// Threads creating the tap flows: each call waits for its northbound write.
const API_THREADS: usize = 16;
/// How often the controller's `/v1/stats` is read while waiting for it.
const POLL: Duration = Duration::from_millis(100);

/// The controller's two listening endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Endpoints {
    ovsdb: SocketAddr,
    openflow: SocketAddr,
}

/// What the coordinator asks one hypervisor.
#[derive(Debug)]
enum Order {
    /// Plug VM `vm`'s interface and report when the switch holds its flows.
    Plug(usize, Vif),
    /// Unplug VM `vm`'s interface and report when the switch holds none of its flows.
    Unplug(usize, String),
}

/// What a hypervisor reports.
#[derive(Debug)]
enum Report {
    /// VM `vm`'s flows are confirmed on the destination, this long after its update.
    Installed(usize, Duration),
    /// VM `vm`'s flows are confirmed gone from the source.
    Cleaned(usize, Duration),
    /// The hypervisor's connections failed.
    Failed(String),
}

/// Counters every hypervisor adds to.
#[derive(Debug)]
struct Totals {
    epoch: Instant,
    flow_mods: AtomicU64,
    /// When the last flow mod arrived, in microseconds since `epoch`.
    last_flow_mod_us: AtomicU64,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            epoch: Instant::now(),
            flow_mods: AtomicU64::new(0),
            last_flow_mod_us: AtomicU64::new(0),
        }
    }

    fn flow_mod(&self) {
        self.flow_mods.fetch_add(1, Ordering::Relaxed);
        let us = self.epoch.elapsed().as_micros() as u64;
        self.last_flow_mod_us.fetch_max(us, Ordering::Relaxed);
    }

    fn last_flow_mod(&self) -> Option<Instant> {
        let us = self.last_flow_mod_us.load(Ordering::Relaxed);
        (us > 0).then(|| self.epoch + Duration::from_micros(us))
    }
}

/// The figures of one `bench waves` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WavesFigures {
    /// The controller measured.
    pub controller: String,
    /// Emulated hypervisors (one bridge each).
    pub hypervisors: usize,
    /// VM interfaces, spread evenly over them.
    pub interfaces: usize,
    /// Tap flows (each selects one interface).
    pub tap_flows: usize,
    /// VMs moved at once per wave.
    pub concurrent_migrations: usize,
    /// Waves.
    pub waves: usize,
    /// Time to create the tenants, tap services and tap flows through the API.
    pub northbound_setup_ms: f64,
    /// From the hypervisors' start until every bridge was programmed and flow mods stopped.
    pub initial_program_ms: Option<f64>,
    /// Flow mods the bridges received for that.
    pub initial_flow_mods: u64,
    /// Controller VmRSS with everything programmed, KiB.
    pub rss_programmed_kib: Option<u64>,
    /// Controller VmRSS after the waves, KiB.
    pub rss_after_waves_kib: Option<u64>,
    /// Migrations whose destination confirmed its flows.
    pub installed: usize,
    /// Migrations whose source confirmed their removal.
    pub cleaned: usize,
    /// Migrations not confirmed in time (install or cleanup).
    pub failures: usize,
    /// The first failure.
    pub first_error: Option<String>,
    /// Install: OVSDB update to the destination's confirmation, median.
    pub install_p50_ms: Option<f64>,
    /// 99th percentile of the above.
    pub install_p99_ms: Option<f64>,
    /// Largest of the above.
    pub install_max_ms: Option<f64>,
    /// Mean of the above (the OVN anchor is a mean).
    pub install_mean_ms: Option<f64>,
    /// Cleanup: OVSDB update to the source's confirmation, median.
    pub cleanup_p50_ms: Option<f64>,
    /// 99th percentile of the above.
    pub cleanup_p99_ms: Option<f64>,
    /// Largest of the above.
    pub cleanup_max_ms: Option<f64>,
    /// The controller's own per-bridge reprogramming figures (`/v1/stats`) after the waves.
    pub controller_reprogram_ms: Value,
    /// After a restart against the same hypervisors and northbound: from starting the new
    /// process until every bridge was programmed and flow mods stopped.
    pub restart_reconciled_ms: Option<f64>,
    /// Flow mods the bridges received from the restarted controller.
    pub restart_flow_mods: u64,
    /// Controller VmRSS after the restart's reconciliation, KiB.
    pub rss_restarted_kib: Option<u64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// VM `v`'s interface: its home is hypervisor `v % hypervisors`.
fn vif(v: usize) -> Vif {
    let b = (v as u32).to_be_bytes();
    Vif {
        iface_id: format!("vm-{v:06}"),
        mac: [0xfa, 0x16, 0x3e, b[1], b[2], b[3]],
        tenant: format!("tenant-{:02}", v % TENANTS),
    }
}

/// Runs `periscope bench waves`.
pub async fn bench(args: &BenchArgs, dir: &Path) -> anyhow::Result<Vec<WavesFigures>> {
    let n = args.hypervisors.max(1);
    let interfaces = args.interfaces.max(1);
    let taps = args.tap_flows.min(interfaces);
    let m = args.migrations.min(taps);
    if n < 2 {
        anyhow::bail!("--hypervisors {n}: migrations need at least 2");
    }
    let mut f = WavesFigures {
        controller: "periscope".into(),
        hypervisors: n,
        interfaces,
        tap_flows: taps,
        concurrent_migrations: m,
        waves: args.rounds,
        ..WavesFigures::default()
    };
    let log = dir.join("periscope.log");
    let ctl = start_controller(args, &log)?;
    let ctl = Arc::new(ctl);
    // The tapped VMs: evenly spread.
    let tapped: Vec<usize> = (0..taps).map(|k| k * (interfaces / taps.max(1))).collect();
    let t = Instant::now();
    let c = ctl.clone();
    let list = tapped.clone();
    tokio::task::spawn_blocking(move || northbound(&c, &list))
        .await
        .map_err(|e| anyhow::anyhow!("northbound setup: {e}"))??;
    f.northbound_setup_ms = ms(t.elapsed());

    // The hypervisors.
    let started = Instant::now();
    let totals = Arc::new(Totals::new());
    let (endpoints_tx, endpoints) = watch::channel(Some(listening(&ctl)?));
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let mut orders = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for h in 0..n {
        let mut db = EmulatedOvsdb::new(
            h as u32,
            &format!("hv{h:04}"),
            dpid(h),
            &format!("198.18.{}.{}", h / 250, h % 250 + 1),
        );
        for v in (h..interfaces).step_by(n) {
            db.plug(&vif(v));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        orders.push(tx);
        let sw = EmulatedSwitch::new(dpid(h), 0).keeping_flows(&db.ports());
        let hv = Hypervisor { db, sw, endpoints: endpoints.clone(), orders: rx };
        tasks.push(tokio::spawn(hv.run(reports_tx.clone(), totals.clone())));
    }
    drop(reports_tx);
    let pid = ctl.pid();
    let programmed = settle(&ctl, n, taps, &totals, started, args.timeout_secs).await;
    f.initial_program_ms = programmed.map(ms);
    f.initial_flow_mods = totals.flow_mods.load(Ordering::Relaxed);
    f.rss_programmed_kib = rss_kib(pid);
    if programmed.is_none() {
        f.first_error = Some("the bridges were not all programmed in time".into());
    }

    // The waves.
    let mut home: Vec<usize> = (0..interfaces).map(|v| v % n).collect();
    let (mut installs, mut cleanups) = (Vec::new(), Vec::new());
    let deadline = Duration::from_secs(args.timeout_secs);
    for r in 0..args.rounds {
        let moving: Vec<usize> =
            (0..m).map(|i| tapped[(i * (taps / m.max(1)) + r) % taps]).collect();
        let mut plan = Vec::new();
        for &v in &moving {
            let to = (home[v] + 1 + r % (n - 1)) % n;
            plan.push((v, home[v], to));
            let _ = orders[to].send(Order::Plug(v, vif(v)));
        }
        let (got, failed) = collect(&mut reports, &moving, deadline, true).await;
        f.failures += m - got.len();
        f.first_error = f.first_error.take().or(failed);
        installs.extend(got);
        for &(v, from, to) in &plan {
            let _ = orders[from].send(Order::Unplug(v, vif(v).iface_id));
            home[v] = to;
        }
        let (got, failed) = collect(&mut reports, &moving, deadline, false).await;
        f.failures += m - got.len();
        f.first_error = f.first_error.take().or(failed);
        cleanups.extend(got);
    }
    if f.failures > 0 && f.first_error.is_none() {
        f.first_error =
            Some(format!("{} migrations not confirmed within {deadline:?}", f.failures));
    }
    f.installed = installs.len();
    f.cleaned = cleanups.len();
    installs.sort();
    cleanups.sort();
    f.install_p50_ms = percentile_ms(&installs, 50.0);
    f.install_p99_ms = percentile_ms(&installs, 99.0);
    f.install_max_ms = installs.last().map(|d| ms(*d));
    f.install_mean_ms = (!installs.is_empty())
        .then(|| installs.iter().map(|d| ms(*d)).sum::<f64>() / installs.len() as f64);
    f.cleanup_p50_ms = percentile_ms(&cleanups, 50.0);
    f.cleanup_p99_ms = percentile_ms(&cleanups, 99.0);
    f.cleanup_max_ms = cleanups.last().map(|d| ms(*d));
    // The controller finishes what the last wave started (tunnel ports no longer needed)
    // before it is restarted.
    settle(&ctl, n, taps, &totals, Instant::now(), args.timeout_secs).await;
    f.rss_after_waves_kib = rss_kib(pid);
    f.controller_reprogram_ms =
        stats(&ctl).await.map(|s| s["reprogram_ms"].clone()).unwrap_or_default();

    // The restart: same data directory (the embedded northbound database), same hypervisors.
    let _ = endpoints_tx.send(None);
    let ctl = Arc::into_inner(ctl).ok_or_else(|| anyhow::anyhow!("controller still shared"))?;
    ctl.stop();
    let _ = std::fs::rename(&log, dir.join("periscope-before-restart.log"));
    let before = totals.flow_mods.load(Ordering::Relaxed);
    let restart = Instant::now();
    let ctl = start_controller(args, &log)?;
    let _ = endpoints_tx.send(Some(listening(&ctl)?));
    let done = settle(&ctl, n, taps, &totals, restart, args.timeout_secs).await;
    f.restart_reconciled_ms = done.map(ms);
    f.restart_flow_mods = totals.flow_mods.load(Ordering::Relaxed) - before;
    f.rss_restarted_kib = rss_kib(ctl.pid());
    if done.is_none() && f.first_error.is_none() {
        f.first_error = Some("the bridges were not all programmed again after the restart".into());
    }
    let _ = endpoints_tx.send(None);
    drop(orders);
    for t in tasks {
        if let Ok(Some(e)) = t.await {
            f.first_error.get_or_insert(e);
        }
    }
    ctl.stop();
    Ok(vec![f])
}

/// Datapath id of hypervisor `h`'s bridge.
fn dpid(h: usize) -> u64 {
    0x5750_0000_0000_0000 | h as u64
}

/// Starts `periscope run` listening for switches and ovsdb-servers on loopback, its log and
/// data (the embedded northbound database) at `log`.
fn start_controller(args: &BenchArgs, log: &Path) -> anyhow::Result<ControllerProcess> {
    let exe = std::env::current_exe()?;
    let run_args: Vec<String> =
        ["--openflow=ptcp:0:127.0.0.1", "--ovsdb=ptcp:0:127.0.0.1"].map(String::from).to_vec();
    ControllerProcess::start_logging(exe, &run_args, log, &args.controller_log_level)
        .map_err(|e| anyhow::anyhow!("starting periscope run: {e}"))
}

fn listening(ctl: &ControllerProcess) -> anyhow::Result<Endpoints> {
    let first = |v: &[String], what: &str| {
        let a =
            v.first().ok_or_else(|| anyhow::anyhow!("periscope run printed no {what} address"))?;
        super::parse_controller(a)
    };
    Ok(Endpoints {
        ovsdb: first(ctl.ovsdb(), "ovsdb")?,
        openflow: first(ctl.openflow(), "openflow")?,
    })
}

/// The tenants (each may send to 192.0.2.0/24), one tap service each, and a tap flow per VM
/// in `tapped` (its interface registered to its tenant), through the REST API from several
/// threads.
fn northbound(ctl: &ControllerProcess, tapped: &[usize]) -> anyhow::Result<()> {
    let call = |method: &str, path: &str, body: Value| -> anyhow::Result<Value> {
        // A write that raced another thread's is refused as a conflict: try it again.
        for _ in 0..20 {
            match ctl.call(method, path, Some(&body)) {
                Ok((200 | 201, reply)) => return Ok(reply),
                Ok((409, reply)) if reply["error"]["code"] == "conflict" => continue,
                Ok((status, reply)) => anyhow::bail!("{method} {path} {body}: {status} {reply}"),
                Err(e) => anyhow::bail!("{method} {path}: {e}"),
            }
        }
        anyhow::bail!("{method} {path} {body}: still conflicting after 20 tries")
    };
    let mut services = Vec::new();
    for t in 0..TENANTS {
        let tenant = format!("tenant-{t:02}");
        let quota = json!({"allowed_collectors": ["192.0.2.0/24"], "max_tap_flows": tapped.len()});
        call("PUT", &format!("/v1/tenants/{tenant}"), quota)?;
        let spec = json!({
            "name": format!("collector-{t:02}"), "tenant": tenant,
            "encap": if t % 2 == 0 { "vxlan" } else { "gre" },
            "remote_ip": format!("192.0.2.{}", 10 + t),
        });
        let reply = call("POST", "/v1/tap_services", spec)?;
        services
            .push(reply["id"].as_u64().ok_or_else(|| anyhow::anyhow!("no service id: {reply}"))?);
    }
    let chunk = tapped.len().div_ceil(API_THREADS).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = tapped
            .chunks(chunk)
            .map(|part| {
                let (call, services) = (&call, &services);
                s.spawn(move || -> anyhow::Result<()> {
                    for &v in part {
                        // Registered to its tenant: the hypervisors are not connected yet.
                        let owner = json!({"tenant": vif(v).tenant});
                        call("PUT", &format!("/v1/interfaces/{}", vif(v).iface_id), owner)?;
                        let spec = json!({
                            "name": format!("tap-{v:06}"), "tenant": vif(v).tenant,
                            "tap_service": services[v % TENANTS],
                            "source": {"iface_id": vif(v).iface_id}, "direction": "BOTH",
                        });
                        call("POST", "/v1/tap_flows", spec)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("API thread"))?)
    })
}

/// `/v1/stats`, read without holding up the runtime.
async fn stats(ctl: &Arc<ControllerProcess>) -> Option<Value> {
    let c = ctl.clone();
    let r = tokio::task::spawn_blocking(move || c.call("GET", "/v1/stats", None)).await;
    match r {
        Ok(Ok((200, v))) => Some(v),
        _ => None,
    }
}

/// Waits until the controller sees `n` hypervisors and bridges, all programmed, with `taps`
/// tap flows active, and no flow mod arrived for [`QUIET`]: the time from `since` to the later
/// of the last flow mod and the poll that saw everything programmed.
async fn settle(
    ctl: &ControllerProcess,
    n: usize,
    taps: usize,
    totals: &Totals,
    since: Instant,
    timeout_secs: u64,
) -> Option<Duration> {
    let until = Instant::now() + Duration::from_secs(timeout_secs);
    let api = ctl.api();
    let token = ctl.token().map(str::to_string);
    let mut programmed_at = None;
    while Instant::now() < until {
        tokio::time::sleep(POLL).await;
        let token = token.clone();
        let reply = tokio::task::spawn_blocking(move || {
            crate::lab::controller::http_json(api, token.as_deref(), "GET", "/v1/stats", None)
        })
        .await;
        let Ok(Ok((200, s))) = reply else { continue };
        let count = |k: &str| s[k].as_u64().unwrap_or(0) as usize;
        let all = count("hypervisors") == n
            && count("switches") == n
            && count("switches_programmed") == n
            && count("tap_flows_active") == taps;
        if !all {
            programmed_at = None;
            continue;
        }
        let seen = *programmed_at.get_or_insert_with(|| since.elapsed());
        let last = totals.last_flow_mod().filter(|t| *t > since).unwrap_or(since);
        if last.elapsed() >= QUIET {
            return Some(seen.max(last - since));
        }
    }
    None
}

/// Collects the reports of one kind (installs or cleanups) for the VMs `moving` within
/// `deadline`: the times of those confirmed, and the first hypervisor failure meanwhile.
async fn collect(
    reports: &mut mpsc::UnboundedReceiver<Report>,
    moving: &[usize],
    deadline: Duration,
    installs: bool,
) -> (Vec<Duration>, Option<String>) {
    let until = tokio::time::Instant::now() + deadline;
    let mut got: BTreeMap<usize, Duration> = BTreeMap::new();
    let mut failure = None;
    while got.len() < moving.len() {
        match tokio::time::timeout_at(until, reports.recv()).await {
            Ok(Some(Report::Installed(vm, d))) if installs => {
                got.insert(vm, d);
            }
            Ok(Some(Report::Cleaned(vm, d))) if !installs => {
                got.insert(vm, d);
            }
            Ok(Some(Report::Failed(e))) => {
                failure.get_or_insert(e);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    (moving.iter().filter_map(|v| got.get(v).copied()).collect(), failure)
}

/// One emulated hypervisor: its database and its bridge's switch, connected to the controller
/// whenever the coordinator gives its endpoints.
struct Hypervisor {
    db: EmulatedOvsdb,
    sw: EmulatedSwitch,
    endpoints: watch::Receiver<Option<Endpoints>>,
    orders: mpsc::UnboundedReceiver<Order>,
}

/// A migration's side waiting for its switch: (VM, port, update sent at).
type Waiting = Vec<(usize, u32, Instant)>;

impl Hypervisor {
    /// Runs until the coordinator drops its orders: the first error, if any.
    async fn run(
        mut self,
        reports: mpsc::UnboundedSender<Report>,
        totals: Arc<Totals>,
    ) -> Option<String> {
        let mut error = None;
        let (mut installs, mut cleanups): (Waiting, Waiting) = (Vec::new(), Vec::new());
        loop {
            let target = *self.endpoints.borrow_and_update();
            if let Some(e) = target {
                let served = self.serve(e, &reports, &totals, &mut installs, &mut cleanups).await;
                self.db.disconnected();
                self.sw.reconnected();
                match served {
                    Ok(Served::Done) => return error,
                    Ok(Served::Closed) => {}
                    Ok(Served::Silent) => {
                        // As ovsdb-server after an unanswered probe: connect again, soon.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    Err(e) => {
                        let _ = reports.send(Report::Failed(e.clone()));
                        error.get_or_insert(e);
                    }
                }
            }
            tokio::select! {
                changed = self.endpoints.changed() => if changed.is_err() { return error },
                order = self.orders.recv() => match order {
                    // Orders while disconnected change the database; the controller reads it
                    // on the next connection.
                    Some(o) => {
                        let _ = self.order(o, &mut installs, &mut cleanups);
                    }
                    None => return error,
                },
            }
        }
    }

    /// Applies an order: the messages to send (OVSDB notification, PORT_STATUS).
    fn order(&mut self, o: Order, installs: &mut Waiting, cleanups: &mut Waiting) -> Vec<Outgoing> {
        let (vm, done, waiting) = match o {
            Order::Plug(vm, vif) => (vm, self.db.plug(&vif), &mut *installs),
            Order::Unplug(vm, iface) => (vm, self.db.unplug(&iface), &mut *cleanups),
        };
        let Some((note, port)) = done else { return Vec::new() };
        let now = Instant::now();
        let mut out: Vec<Outgoing> = note.into_iter().map(Outgoing::Ovsdb).collect();
        match port {
            PortChange::Added(no, name) => {
                waiting.push((vm, no, now));
                out.push(Outgoing::OpenFlow(self.sw.add_port(no, &name)));
            }
            PortChange::Removed(no, _) => {
                waiting.push((vm, no, now));
                out.extend(self.sw.remove_port(no).map(Outgoing::OpenFlow));
            }
        }
        out
    }

    /// One pair of connections, until the coordinator is done, the endpoints change, the
    /// controller closes, or its OVSDB client stays silent.
    async fn serve(
        &mut self,
        e: Endpoints,
        reports: &mpsc::UnboundedSender<Report>,
        totals: &Totals,
        installs: &mut Waiting,
        cleanups: &mut Waiting,
    ) -> Result<Served, String> {
        let mut ovsdb = TcpStream::connect(e.ovsdb)
            .await
            .map_err(|err| format!("connecting to ovsdb endpoint {}: {err}", e.ovsdb))?;
        let _ = ovsdb.set_nodelay(true);
        let of = TcpStream::connect(e.openflow)
            .await
            .map_err(|err| format!("connecting to openflow endpoint {}: {err}", e.openflow))?;
        let _ = of.set_nodelay(true);
        let mut of = Framed::new(of, OfpCodec);
        of.send(self.sw.hello()).await.map_err(|err| format!("sending HELLO: {err}"))?;
        let mut stream = JsonStream::default();
        let mut buf = vec![0u8; 64 << 10];
        let (mut json_out, mut of_out, mut ports, mut milestones) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // ovsdb-server's inactivity probe: an echo after [`PROBE`] of silence, and a new
        // connection when that goes unanswered as long (a connection the controller's full
        // accept queue dropped is only found so, since the server speaks second).
        let mut heard = Instant::now();
        let mut probed = false;
        let mut probe = tokio::time::interval(PROBE / 5);
        loop {
            tokio::select! {
                _ = probe.tick() => {
                    if heard.elapsed() >= PROBE * 2 && probed {
                        return Ok(Served::Silent);
                    }
                    if heard.elapsed() >= PROBE && !probed {
                        probed = true;
                        let mut bytes = Vec::new();
                        JsonMessage::from(Request::echo(json!("probe"), Vec::new())).emit(&mut bytes);
                        if ovsdb.write_all(&bytes).await.is_err() {
                            return Ok(Served::Closed);
                        }
                    }
                }
                r = ovsdb.read(&mut buf) => {
                    heard = Instant::now();
                    probed = false;
                    let n = match r {
                        Ok(0) => return Ok(Served::Closed),
                        Ok(n) => n,
                        Err(_) => return Ok(Served::Closed),
                    };
                    stream.push(&buf[..n]).map_err(|err| format!("from the controller's OVSDB client: {err}"))?;
                    let mut bytes = Vec::new();
                    loop {
                        match stream.next_message() {
                            Ok(Some(JsonMessage::Request(r))) => {
                                self.db.handle(r, &mut json_out, &mut ports);
                            }
                            // The probe's reply.
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(err) => return Err(format!("from the controller's OVSDB client: {err}")),
                        }
                    }
                    for m in json_out.drain(..) {
                        m.emit(&mut bytes);
                    }
                    for p in ports.drain(..) {
                        match p {
                            PortChange::Added(no, name) => of_out.push(self.sw.add_port(no, &name)),
                            PortChange::Removed(no, _) => of_out.extend(self.sw.remove_port(no)),
                        }
                    }
                    if ovsdb.write_all(&bytes).await.is_err() {
                        return Ok(Served::Closed);
                    }
                }
                frame = of.next() => {
                    let m = match frame {
                        Some(Ok(Frame::Message(m))) => m,
                        Some(Ok(Frame::Malformed { error, .. })) => {
                            return Err(format!("the controller sent a malformed message: {error}"));
                        }
                        Some(Err(_)) | None => return Ok(Served::Closed),
                    };
                    let barrier = matches!(m.msg, Message::BarrierRequest);
                    if matches!(m.msg, Message::FlowMod(_)) {
                        totals.flow_mod();
                    }
                    self.sw.handle(m, &mut of_out, &mut milestones);
                    milestones.clear();
                    if barrier {
                        // The reply goes out below: what the switch holds now is confirmed.
                        let sw = &self.sw;
                        installs.retain(|(vm, port, at)| {
                            let done = copies_ready(sw, *port);
                            if done {
                                let _ = reports.send(Report::Installed(*vm, at.elapsed()));
                            }
                            !done
                        });
                        cleanups.retain(|(vm, port, at)| {
                            let done = sw.flows_on(*port).next().is_none();
                            if done {
                                let _ = reports.send(Report::Cleaned(*vm, at.elapsed()));
                            }
                            !done
                        });
                    }
                }
                order = self.orders.recv() => {
                    let Some(o) = order else { return Ok(Served::Done) };
                    let mut bytes = Vec::new();
                    for out in self.order(o, installs, cleanups) {
                        match out {
                            Outgoing::Ovsdb(m) => m.emit(&mut bytes),
                            Outgoing::OpenFlow(m) => of_out.push(m),
                        }
                    }
                    if ovsdb.write_all(&bytes).await.is_err() {
                        return Ok(Served::Closed);
                    }
                }
                changed = self.endpoints.changed() => {
                    return Ok(if changed.is_err() { Served::Done } else { Served::Closed });
                }
            }
            if !of_out.is_empty() {
                for m in of_out.drain(..) {
                    if of.feed(m).await.is_err() {
                        return Ok(Served::Closed);
                    }
                }
                if of.flush().await.is_err() {
                    return Ok(Served::Closed);
                }
            }
        }
    }
}

/// True when the switch holds what copies the frames of the VM on `port`: its fan-out to the
/// tap services (classify, or probe before the VM's first frame there) and a copy flow.
fn copies_ready(sw: &EmulatedSwitch, port: u32) -> bool {
    let kinds: Vec<u8> =
        sw.flows_on(port).filter_map(|f| cookie::decode(f.cookie)).map(|(k, _)| k).collect();
    let has = |k: cookie::Kind| kinds.contains(&(k as u8));
    has(cookie::Kind::Mirror) && (has(cookie::Kind::Classify) || has(cookie::Kind::Probe))
}

/// How a hypervisor's pair of connections ended.
enum Served {
    /// The coordinator is done.
    Done,
    /// The controller closed, or the coordinator gave other endpoints.
    Closed,
    /// The controller's OVSDB client never answered the probe.
    Silent,
}

/// A message for one of the two connections.
enum Outgoing {
    Ovsdb(JsonMessage),
    OpenFlow(periscope_codec::openflow::OfpMessage),
}

/// The OVN anchor (ovn-heater): port binding to flows installed, mean and p95, ms.
const OVN_MEAN_MS: f64 = 1149.0;
const OVN_P95_MS: f64 = 1711.0;

/// Prints the figures as a table, with the ratio to the OVN anchor.
pub fn print_table(all: &[WavesFigures]) {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    let optu = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
    for f in all {
        let rows = [
            (
                "hypervisors / interfaces / tap flows",
                format!("{} / {} / {}", f.hypervisors, f.interfaces, f.tap_flows),
            ),
            ("migrations at once x waves", format!("{} x {}", f.concurrent_migrations, f.waves)),
            ("northbound setup ms", format!("{:.1}", f.northbound_setup_ms)),
            (
                "initial program ms (flow mods)",
                format!("{} ({})", opt(f.initial_program_ms), f.initial_flow_mods),
            ),
            (
                "installed / cleaned / failures",
                format!("{} / {} / {}", f.installed, f.cleaned, f.failures),
            ),
            (
                "install p50/p99/max ms",
                format!(
                    "{}/{}/{}",
                    opt(f.install_p50_ms),
                    opt(f.install_p99_ms),
                    opt(f.install_max_ms)
                ),
            ),
            ("install mean ms", opt(f.install_mean_ms)),
            (
                "cleanup p50/p99/max ms",
                format!(
                    "{}/{}/{}",
                    opt(f.cleanup_p50_ms),
                    opt(f.cleanup_p99_ms),
                    opt(f.cleanup_max_ms)
                ),
            ),
            ("controller reprogram ms", f.controller_reprogram_ms.to_string()),
            ("RSS programmed KiB", optu(f.rss_programmed_kib)),
            ("RSS after waves KiB", optu(f.rss_after_waves_kib)),
            (
                "restart reconciled ms (flow mods)",
                format!("{} ({})", opt(f.restart_reconciled_ms), f.restart_flow_mods),
            ),
            ("RSS after restart KiB", optu(f.rss_restarted_kib)),
        ];
        println!("{}", f.controller);
        for (label, value) in rows {
            println!("  {label:<36} {value}");
        }
        if let (Some(mean), Some(p99)) = (f.install_mean_ms, f.install_p99_ms) {
            println!(
                "  against OVN (ovn-heater, {OVN_MEAN_MS} ms mean, {OVN_P95_MS} ms p95): mean {:.0}x, p99 vs p95 {:.0}x faster",
                OVN_MEAN_MS / mean.max(1e-3),
                OVN_P95_MS / p99.max(1e-3)
            );
        }
        if let Some(e) = &f.first_error {
            println!("  first failure: {e}");
        }
    }
}
