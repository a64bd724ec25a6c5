//! `periscope bench`: emulates N OpenFlow 1.3 switches (like cbench) against a controller and
//! measures the connection storm, idle memory and CPU per connection, echo round trips, and
//! the reactive packet-in to flow mod rate (cbench's method); optionally against os-ken (and
//! for the reactive mode faucet) in the same run. `waves` emulates whole hypervisors (an
//! ovsdb-server and a switch each) and times the reprogramming of VMs migrating at once.

pub mod ovsdb_server;
pub mod reactive;
pub mod run;
pub mod switch;
pub mod waves;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::lab::controller::ControllerProcess;
use run::{Order, Progress, ReadyOn, SwitchReport};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// N switches connect at once: time until all are handshaken, then idle memory and CPU.
    Storm,
    /// The storm, then each switch sends `--echo-count` echo requests one after the other.
    Echo,
    /// cbench: packet-ins with varying source MACs to a learning switch (periscope's
    /// `--app learning-switch`, os-ken's `simple_switch_13`, faucet), responses per second.
    Reactive,
    /// Emulated hypervisors (ovsdb-server and switch), tap flows, and waves of VMs migrating
    /// at once: reprogramming time until every destination confirmed, then a restart.
    Waves,
}

/// Options of `periscope bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub mode: Mode,
    /// Emulated switches.
    #[arg(long, default_value_t = 1000)]
    pub switches: usize,
    /// The controller to measure, `tcp:IP:PORT`. Without it, the bench starts `periscope run`
    /// itself on an ephemeral loopback port with an embedded northbound database.
    #[arg(long, value_name = "tcp:IP:PORT")]
    pub controller: Option<String>,
    /// Process id of `--controller`, for its memory and CPU (not measured without it).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Ports per emulated switch.
    #[arg(long, default_value_t = 4)]
    pub ports: u16,
    /// When a switch counts as handshaken.
    #[arg(long, value_enum, default_value = "barrier")]
    pub ready_on: ReadyOn,
    /// Seconds the storm may take before the switches not yet handshaken count as failed.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// Seconds to wait after the storm before measuring idle memory.
    #[arg(long, default_value_t = 2)]
    pub settle_secs: u64,
    /// Seconds over which idle CPU is measured.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
    /// Echo requests per switch in `echo` mode.
    #[arg(long, default_value_t = 10)]
    pub echo_count: u32,
    /// Also measure os-ken in the same run: the path of its `osken-manager` (e.g.
    /// `target/peers/osken/bin/osken-manager`, made by `benches/peers/setup.sh`).
    #[arg(long, value_name = "PATH")]
    pub osken: Option<PathBuf>,
    /// The os-ken application to run: a module name or a file. The default for `storm` and
    /// `echo` installs a table-miss flow and a barrier at features time; for `reactive` it is
    /// os-ken 1.4.1's `simple_switch_13.py`, which `benches/peers/setup.sh` puts in
    /// `target/peers/apps/` (os-ken 3 ships no example apps).
    #[arg(long)]
    pub osken_app: Option<String>,
    /// `reactive`: also measure faucet in the same run: the path of its `faucet` (e.g.
    /// `target/peers/faucet/bin/faucet`, made by `benches/peers/setup.sh`); it execs the
    /// `osken-manager` beside it.
    #[arg(long, value_name = "PATH")]
    pub faucet: Option<PathBuf>,
    /// `reactive`: how the switches send.
    #[arg(id = "reactive_mode", long = "mode", value_enum, default_value = "throughput")]
    pub reactive_mode: reactive::ReactiveMode,
    /// `reactive`: hosts (source MACs) per emulated switch.
    #[arg(long, default_value_t = 1000)]
    pub macs: usize,
    /// `reactive`: seconds of packet-ins before counting starts.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// `reactive`: seconds counted.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// `waves`: emulated hypervisors, one bridge each.
    #[arg(long, default_value_t = 1000)]
    pub hypervisors: usize,
    /// `waves`: VM interfaces, spread evenly over the hypervisors.
    #[arg(long, default_value_t = 50_000)]
    pub interfaces: usize,
    /// `waves`: tap flows, each selecting one VM interface (spread evenly).
    #[arg(long, default_value_t = 10_000)]
    pub tap_flows: usize,
    /// `waves`: VMs that migrate at once in each wave (all tapped).
    #[arg(long, default_value_t = 100)]
    pub migrations: usize,
    /// `waves`: how many waves.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Log level of the `periscope run` the bench starts.
    #[arg(long, default_value = "info")]
    pub controller_log_level: String,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// The figures of one controller.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Which controller.
    pub controller: String,
    /// Switches started.
    pub switches: usize,
    /// What "handshaken" meant.
    pub ready_on: Option<ReadyOn>,
    /// Switches handshaken.
    pub handshaken: usize,
    /// Switches that failed or were not handshaken in time.
    pub failures: usize,
    /// The first failure's reason.
    pub first_error: Option<String>,
    /// From the common start until the last switch was handshaken.
    pub all_handshaken_ms: Option<f64>,
    /// Until the last switch had its first flow mod (comparable across controllers).
    pub all_first_flow_mod_ms: Option<f64>,
    /// Per switch, from the common start: FEATURES_REPLY sent.
    pub features_p50_ms: Option<f64>,
    /// 99th percentile of the above.
    pub features_p99_ms: Option<f64>,
    /// First FLOW_MOD received, median.
    pub first_flow_mod_p50_ms: Option<f64>,
    /// 99th percentile of the above.
    pub first_flow_mod_p99_ms: Option<f64>,
    /// Barrier after the first flow mods answered, median.
    pub confirmed_p50_ms: Option<f64>,
    /// 99th percentile of the above.
    pub confirmed_p99_ms: Option<f64>,
    /// Fewest FLOW_MODs any switch received.
    pub flow_mods_min: u64,
    /// Most FLOW_MODs any switch received.
    pub flow_mods_max: u64,
    /// All messages by kind, summed over the switches.
    pub totals: switch::Counts,
    /// Controller RSS before the switches connected, KiB.
    pub rss_before_kib: Option<u64>,
    /// Controller RSS with all switches connected and idle, KiB.
    pub rss_idle_kib: Option<u64>,
    /// (idle - before) / handshaken switches, bytes.
    pub bytes_per_connection: Option<u64>,
    /// Seconds of idle CPU measurement.
    pub idle_secs: u64,
    /// Controller CPU (user + system) over the idle window, as a share of one core, percent.
    pub idle_cpu_percent: Option<f64>,
    /// Controller-initiated echo requests over the whole run, summed over switches.
    pub controller_echo_requests: u64,
    /// Switch-initiated echo requests answered.
    pub echo_replies: usize,
    /// Median round trip of switch-initiated echo, ms.
    pub echo_p50_ms: Option<f64>,
    /// 99th percentile of the above.
    pub echo_p99_ms: Option<f64>,
}

/// A controller under measurement, stopped by pid when dropped.
#[derive(Default)]
struct Target {
    /// A `periscope run` we started (it stops itself when dropped).
    _periscope: Option<ControllerProcess>,
    /// A Python peer (os-ken, faucet) we started.
    peer: Option<Child>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = &mut self.peer {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `periscope bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.switches == 0 {
        anyhow::bail!("--switches 0: expected at least 1 switch");
    }
    if args.mode == Mode::Waves {
        // A hypervisor holds two connections (OVSDB and OpenFlow).
        let h = args.hypervisors;
        check_fd_limit(&format!("--hypervisors {h} (two connections each)"), 2 * h)?;
    } else {
        check_fd_limit(&format!("--switches {}", args.switches), args.switches)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let dir = std::env::temp_dir().join(format!(
        "periscope-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = if args.mode == Mode::Waves {
        rt.block_on(waves::bench(&args, &dir)).map(|all| {
            waves::print_table(&all);
            let ok = all.iter().all(|f| f.failures == 0 && f.first_error.is_none());
            (serde_json::to_value(&all), ok)
        })
    } else if args.mode == Mode::Reactive {
        rt.block_on(bench_reactive(&args, &dir)).map(|all| {
            reactive::print_table(&all);
            let ok = all.iter().all(|f| f.failures == 0);
            (serde_json::to_value(&all), ok)
        })
    } else {
        rt.block_on(bench_all(&args, &dir)).map(|all| {
            print_table(&all);
            let ok = all.iter().all(|f| f.failures == 0);
            (serde_json::to_value(&all), ok)
        })
    };
    match &result {
        Ok(_) => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(_) => eprintln!("controller logs kept in {}", dir.display()),
    }
    let (all, ok) = result?;
    if let Some(p) = &args.json {
        let body = serde_json::json!({
            "mode": args.mode,
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "results": all?,
        });
        std::fs::write(p, serde_json::to_string_pretty(&body)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Starts `periscope run` (this binary) on an ephemeral loopback port with `extra` arguments.
fn start_periscope(
    args: &BenchArgs,
    dir: &Path,
    extra: &[&str],
) -> anyhow::Result<(ControllerProcess, SocketAddr)> {
    let exe = std::env::current_exe().context("finding the periscope binary")?;
    let mut run_args = vec!["--openflow=ptcp:0:127.0.0.1".to_string()];
    run_args.extend(extra.iter().map(|a| a.to_string()));
    let ctl = ControllerProcess::start_logging(
        exe,
        &run_args,
        &dir.join("periscope.log"),
        &args.controller_log_level,
    )
    .map_err(|e| anyhow::anyhow!("starting periscope run: {e}"))?;
    let of = ctl.openflow().first().cloned().unwrap_or_default();
    let addr = parse_controller(&of).context("the address periscope run printed")?;
    Ok((ctl, addr))
}

/// `reactive`: periscope's learning switch, then the peers, one after the other.
async fn bench_reactive(
    args: &BenchArgs,
    dir: &Path,
) -> anyhow::Result<Vec<reactive::ReactiveFigures>> {
    let plan = reactive::SwitchPlan {
        index: 0,
        ports: args.ports,
        macs: args.macs.max(1),
        mode: args.reactive_mode,
        // simple_switch_13 and faucet send no barrier after their first flows.
        ready_on: ReadyOn::FlowMod,
        vlan: None,
    };
    let window = reactive::Window {
        handshake: Duration::from_secs(args.timeout_secs),
        warmup: Duration::from_secs(args.warmup_secs),
        measure: Duration::from_secs(args.duration_secs.max(1)),
    };
    let mut all = Vec::new();
    match &args.controller {
        Some(c) => {
            let addr = parse_controller(c)?;
            all.push(reactive::measure(c, addr, args.pid, plan, args.switches, window).await);
        }
        None => {
            let (ctl, addr) = start_periscope(args, dir, &["--app", "learning-switch"])?;
            let pid = Some(ctl.pid());
            all.push(reactive::measure("periscope", addr, pid, plan, args.switches, window).await);
        }
    }
    let measure_peer = |name: &'static str,
                        plan: reactive::SwitchPlan,
                        started: anyhow::Result<(Child, SocketAddr)>| async move {
        match started {
            Ok((child, addr)) => {
                let pid = child.id();
                let _target = Target { _periscope: None, peer: Some(child) };
                Some(reactive::measure(name, addr, Some(pid), plan, args.switches, window).await)
            }
            // The peers are a comparison: periscope's figures stand without them.
            Err(e) => {
                eprintln!("{name} skipped: {e:#}");
                None
            }
        }
    };
    if let Some(manager) = &args.osken {
        let app = args.osken_app.as_deref().unwrap_or("target/peers/apps/simple_switch_13.py");
        all.extend(measure_peer("os-ken", plan, start_osken(manager, app, dir).await).await);
    }
    if let Some(faucet) = &args.faucet {
        let started = start_faucet(faucet, args.switches, args.ports, args.macs.max(1), dir).await;
        let tagged = reactive::SwitchPlan { vlan: Some(reactive::FAUCET_VID), ..plan };
        all.extend(measure_peer("faucet", tagged, started).await);
    }
    Ok(all)
}

async fn bench_all(args: &BenchArgs, dir: &Path) -> anyhow::Result<Vec<Figures>> {
    let mut all = Vec::new();
    let (target, addr, pid, name) = match &args.controller {
        Some(c) => (Target::default(), parse_controller(c)?, args.pid, c.clone()),
        None => {
            let (ctl, addr) = start_periscope(args, dir, &[])?;
            let pid = ctl.pid();
            let target = Target { _periscope: Some(ctl), peer: None };
            (target, addr, Some(pid), "periscope".to_string())
        }
    };
    all.push(measure(args, &name, addr, pid, args.ready_on).await);
    drop(target);
    if let Some(manager) = &args.osken {
        let app = args.osken_app.as_deref().unwrap_or("benches/peers/osken_table_miss.py");
        match start_osken(manager, app, dir).await {
            Ok((child, addr)) => {
                let pid = child.id();
                let target = Target { _periscope: None, peer: Some(child) };
                all.push(measure(args, "os-ken", addr, Some(pid), args.ready_on).await);
                drop(target);
            }
            // The peer is a comparison: periscope's figures stand without it.
            Err(e) => eprintln!("os-ken skipped: {e:#}"),
        }
    }
    Ok(all)
}

/// One controller: the storm, idle memory and CPU, and in `echo` mode the echo run.
async fn measure(
    args: &BenchArgs,
    name: &str,
    addr: SocketAddr,
    pid: Option<u32>,
    ready_on: ReadyOn,
) -> Figures {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = pid.and_then(run::rss_kib);
    let (orders_tx, orders) = watch::channel(Order::Serve);
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.switches)
        .map(|i| {
            tokio::spawn(run::switch_task(
                i,
                addr,
                args.ports,
                start,
                ready_on,
                orders.clone(),
                ptx.clone(),
            ))
        })
        .collect();
    drop(ptx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_secs);
    let (mut ready, mut failed) = (0usize, 0usize);
    let mut all_ready = None;
    while ready + failed < args.switches {
        match tokio::time::timeout_at(deadline, prx.recv()).await {
            Ok(Some(Progress::Ready)) => {
                ready += 1;
                if ready == args.switches {
                    all_ready = Some(start.elapsed());
                }
            }
            Ok(Some(Progress::Failed)) => failed += 1,
            Ok(Some(Progress::EchoDone)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let rss_idle = pid.and_then(run::rss_kib);
    let cpu0 = pid.and_then(run::cpu_ticks);
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let cpu1 = pid.and_then(run::cpu_ticks);
    if args.mode == Mode::Echo && args.echo_count > 0 {
        let _ = orders_tx.send(Order::Echo(args.echo_count));
        let mut done = 0;
        let echo_deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_secs);
        while done < ready {
            match tokio::time::timeout_at(echo_deadline, prx.recv()).await {
                Ok(Some(Progress::EchoDone)) => done += 1,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
    let _ = orders_tx.send(Order::Stop);
    let mut reports = Vec::with_capacity(tasks.len());
    for t in tasks {
        reports.push(t.await.unwrap_or_else(|e| SwitchReport {
            error: Some(format!("switch task: {e}")),
            ..SwitchReport::default()
        }));
    }
    let mut f = summarize(name, ready_on, &reports);
    f.all_handshaken_ms = all_ready.map(ms);
    f.rss_before_kib = rss_before;
    f.rss_idle_kib = rss_idle;
    if let (Some(b), Some(a)) = (rss_before, rss_idle) {
        if f.handshaken > 0 {
            f.bytes_per_connection = Some(a.saturating_sub(b) * 1024 / f.handshaken as u64);
        }
    }
    f.idle_secs = args.idle_secs;
    if let (Some(c0), Some(c1)) = (cpu0, cpu1) {
        let secs = (c1.saturating_sub(c0)) as f64 / run::clock_ticks() as f64;
        f.idle_cpu_percent = Some(secs / args.idle_secs.max(1) as f64 * 100.0);
    }
    f
}

/// The per-switch reports folded into figures (memory and CPU are added by the caller).
pub fn summarize(name: &str, ready_on: ReadyOn, reports: &[SwitchReport]) -> Figures {
    let sorted = |pick: &dyn Fn(&SwitchReport) -> Option<Duration>| {
        let mut v: Vec<Duration> = reports.iter().filter_map(pick).collect();
        v.sort();
        v
    };
    let features = sorted(&|r| r.features);
    let first = sorted(&|r| r.first_flow_mod);
    let confirmed = sorted(&|r| r.confirmed);
    let mut echo: Vec<Duration> =
        reports.iter().flat_map(|r| r.echo_rtts.iter().copied()).collect();
    echo.sort();
    let is_ready = |r: &SwitchReport| {
        r.error.is_none()
            && r.features.is_some()
            && match ready_on {
                ReadyOn::Barrier => r.confirmed.is_some(),
                ReadyOn::FlowMod => r.first_flow_mod.is_some(),
            }
    };
    let handshaken = reports.iter().filter(|r| is_ready(r)).count();
    let mut totals = switch::Counts::default();
    for r in reports {
        let c = r.counts;
        totals.flow_mods += c.flow_mods;
        totals.barriers += c.barriers;
        totals.echo_requests += c.echo_requests;
        totals.multipart_requests += c.multipart_requests;
        totals.packet_outs += c.packet_outs;
        totals.set_configs += c.set_configs;
        totals.other += c.other;
    }
    let first_error = reports
        .iter()
        .find_map(|r| r.error.clone())
        .or_else(|| reports.iter().any(|r| !is_ready(r)).then(|| "not handshaken in time".into()));
    Figures {
        controller: name.to_string(),
        switches: reports.len(),
        ready_on: Some(ready_on),
        handshaken,
        failures: reports.len() - handshaken,
        first_error,
        all_first_flow_mod_ms: (first.len() == reports.len())
            .then(|| first.last().map(|d| ms(*d)))
            .flatten(),
        features_p50_ms: run::percentile_ms(&features, 50.0),
        features_p99_ms: run::percentile_ms(&features, 99.0),
        first_flow_mod_p50_ms: run::percentile_ms(&first, 50.0),
        first_flow_mod_p99_ms: run::percentile_ms(&first, 99.0),
        confirmed_p50_ms: run::percentile_ms(&confirmed, 50.0),
        confirmed_p99_ms: run::percentile_ms(&confirmed, 99.0),
        flow_mods_min: reports.iter().map(|r| r.counts.flow_mods).min().unwrap_or(0),
        flow_mods_max: reports.iter().map(|r| r.counts.flow_mods).max().unwrap_or(0),
        controller_echo_requests: totals.echo_requests,
        totals,
        echo_replies: echo.len(),
        echo_p50_ms: run::percentile_ms(&echo, 50.0),
        echo_p99_ms: run::percentile_ms(&echo, 99.0),
        ..Figures::default()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `tcp:IP:PORT` (or a bare `IP:PORT`) as a socket address.
fn parse_controller(s: &str) -> anyhow::Result<SocketAddr> {
    let a = s.strip_prefix("tcp:").unwrap_or(s);
    a.parse().map_err(|_| anyhow::anyhow!("--controller {s:?}: expected tcp:IP:PORT"))
}

/// The emulated connections need one file descriptor each, in this process (and the controller
/// in its own): refuse early with the fix rather than fail half way. `what` names the option.
fn check_fd_limit(what: &str, connections: usize) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(n) if connections + 64 > n => anyhow::bail!(
            "{what} needs about {} open files, but the limit is {n}: \
             raise it with `ulimit -n {}` (the hard limit caps it)",
            connections + 64,
            connections + 1024
        ),
        _ => Ok(()),
    }
}

/// Starts os-ken's manager with `app` on a free loopback port and waits until it accepts.
async fn start_osken(manager: &Path, app: &str, dir: &Path) -> anyhow::Result<(Child, SocketAddr)> {
    start_peer("os-ken", Command::new(manager), "--", &[app], dir).await
}

/// Starts faucet for the emulated switches (its configuration, logs and metrics in `dir`, its
/// Prometheus endpoint on a free loopback port) and waits until it accepts.
async fn start_faucet(
    faucet: &Path,
    switches: usize,
    ports: u16,
    macs: usize,
    dir: &Path,
) -> anyhow::Result<(Child, SocketAddr)> {
    let config = dir.join("faucet.yaml");
    std::fs::write(&config, reactive::faucet_yaml(switches, ports, macs))
        .with_context(|| format!("writing {}", config.display()))?;
    let prometheus = free_port().context("finding a free port for faucet's metrics")?;
    // faucet execs the osken-manager of its own virtual environment, found on PATH.
    let bin = faucet.parent().unwrap_or(Path::new("."));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new(faucet);
    cmd.env("PATH", path)
        .env("FAUCET_CONFIG", &config)
        .env("FAUCET_LOG", dir.join("faucet-app.log"))
        .env("FAUCET_EXCEPTION_LOG", dir.join("faucet-exception.log"))
        .env("FAUCET_PROMETHEUS_ADDR", "127.0.0.1")
        .env("FAUCET_PROMETHEUS_PORT", prometheus.to_string());
    // faucet's own options name os-ken's with a `--ryu-` prefix.
    start_peer("faucet", cmd, "--ryu-", &[], dir).await
}

fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port())
}

/// Starts a Python peer on a free loopback port (its options `ofp-listen-host` and
/// `ofp-tcp-listen-port` spelled with `prefix`), with `args` after the options, and waits until
/// it accepts.
async fn start_peer(
    name: &str,
    mut cmd: Command,
    prefix: &str,
    args: &[&str],
    dir: &Path,
) -> anyhow::Result<(Child, SocketAddr)> {
    let port = free_port().with_context(|| format!("finding a free port for {name}"))?;
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().with_context(|| format!("{name} log"))?;
    let shown = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .arg(format!("{prefix}ofp-listen-host=127.0.0.1"))
        .arg(format!("{prefix}ofp-tcp-listen-port={port}"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("starting {shown}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::bail!("{shown} exited ({status}):\n{tail}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok((child, addr));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    anyhow::bail!("{name} did not listen on {addr} within 30 s (log in {})", log.display())
}

/// One row of the printed table: how to show a figure.
type Cell = Box<dyn Fn(&Figures) -> String>;

fn print_table(all: &[Figures]) {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    let optu = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
    let rows: Vec<(&str, Cell)> = vec![
        ("switches", Box::new(|f: &Figures| f.switches.to_string())),
        ("handshaken", Box::new(|f: &Figures| f.handshaken.to_string())),
        ("failures", Box::new(|f: &Figures| f.failures.to_string())),
        (
            "ready on",
            Box::new(|f: &Figures| format!("{:?}", f.ready_on.unwrap_or(ReadyOn::Barrier))),
        ),
        ("all handshaken ms", Box::new(move |f: &Figures| opt(f.all_handshaken_ms))),
        ("all first flow mod ms", Box::new(move |f: &Figures| opt(f.all_first_flow_mod_ms))),
        (
            "features p50/p99 ms",
            Box::new(move |f: &Figures| {
                format!("{}/{}", opt(f.features_p50_ms), opt(f.features_p99_ms))
            }),
        ),
        (
            "1st flow mod p50/p99 ms",
            Box::new(move |f: &Figures| {
                format!("{}/{}", opt(f.first_flow_mod_p50_ms), opt(f.first_flow_mod_p99_ms))
            }),
        ),
        (
            "confirmed p50/p99 ms",
            Box::new(move |f: &Figures| {
                format!("{}/{}", opt(f.confirmed_p50_ms), opt(f.confirmed_p99_ms))
            }),
        ),
        (
            "flow mods/switch",
            Box::new(|f: &Figures| format!("{}..{}", f.flow_mods_min, f.flow_mods_max)),
        ),
        ("RSS before KiB", Box::new(move |f: &Figures| optu(f.rss_before_kib))),
        ("RSS idle KiB", Box::new(move |f: &Figures| optu(f.rss_idle_kib))),
        ("bytes/connection", Box::new(move |f: &Figures| optu(f.bytes_per_connection))),
        ("idle CPU % of a core", Box::new(move |f: &Figures| opt(f.idle_cpu_percent))),
        ("ctl echo requests", Box::new(|f: &Figures| f.controller_echo_requests.to_string())),
        (
            "echo p50/p99 ms",
            Box::new(move |f: &Figures| {
                format!("{}/{} ({})", opt(f.echo_p50_ms), opt(f.echo_p99_ms), f.echo_replies)
            }),
        ),
    ];
    print!("{:<24}", "");
    for f in all {
        print!(" {:>22}", f.controller);
    }
    println!();
    for (label, cell) in &rows {
        print!("{label:<24}");
        for f in all {
            print!(" {:>22}", cell(f));
        }
        println!();
    }
    if let [p, o] = all {
        if let (Some(a), Some(b)) = (p.all_first_flow_mod_ms, o.all_first_flow_mod_ms) {
            println!(
                "all switches programmed (first flow mod): {} {:.1}x faster than {}",
                p.controller,
                b / a.max(1e-3),
                o.controller
            );
        }
    }
    for f in all {
        if let Some(e) = &f.first_error {
            println!("{}: first failure: {e}", f.controller);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_addresses_name_what_is_expected() {
        assert_eq!(parse_controller("tcp:127.0.0.1:6653").ok(), "127.0.0.1:6653".parse().ok());
        let e = parse_controller("ssl:1.2.3.4:6653").unwrap_err().to_string();
        assert!(e.contains("expected tcp:IP:PORT"), "{e}");
    }

    #[test]
    fn a_switch_without_its_barrier_is_not_handshaken() {
        let ok = SwitchReport {
            features: Some(Duration::from_millis(3)),
            first_flow_mod: Some(Duration::from_millis(4)),
            confirmed: Some(Duration::from_millis(5)),
            ..SwitchReport::default()
        };
        let no_barrier = SwitchReport { confirmed: None, ..ok.clone() };
        let f = summarize("x", ReadyOn::Barrier, &[ok.clone(), no_barrier.clone()]);
        assert_eq!((f.handshaken, f.failures), (1, 1));
        assert_eq!(f.first_error.as_deref(), Some("not handshaken in time"));
        let f = summarize("x", ReadyOn::FlowMod, &[ok, no_barrier]);
        assert_eq!((f.handshaken, f.failures), (2, 0));
        assert_eq!(f.all_first_flow_mod_ms, Some(4.0));
    }
}
