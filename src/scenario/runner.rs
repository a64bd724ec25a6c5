//! Running a scenario: build the lab, start the controller, create the taps through its API,
//! play the timeline, collect what the collectors received and judge the expectations.
//!
//! ```text
//!  setup     Lab::new -> hypervisors (br-int patched to br-phy, controller target) -> collectors
//!            -> `periscope run` (unix/tcp OpenFlow, --api 127.0.0.1:0, --ovsdb when known)
//!            -> switches connected -> VMs (tenant VLAN) -> tap services, tap flows -> settle
//!  timeline  steps in file order; steps sharing `at` run concurrently
//!  finish    pings end or are stopped -> leftover checks -> collectors stopped -> verdicts
//!  cleanup   pings, controller (by pid), then the lab (namespaces, daemons, directory)
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::controller::{supports_ovsdb, ControllerConfig, ControllerProc};
use super::expect::{judge, Facts, Leftovers, ReprogramSample, ServiceFacts, VmFacts};
use super::http;
use super::interrupt::Interrupt;
use super::link::{Endpoint, LinkRelay};
use super::ovs;
use super::report::{collector_record, Outcome, Report, StepRecord};
use super::spec::{
    direction_str, Action, CutMode, Expect, LinkKind, Scenario, Step, StreamSpec, TapSource,
    Transport,
};
use super::traffic::stream::{StreamOutcome, StreamProc, StreamStart};
use super::traffic::{PingOutcome, PingProc};
use crate::lab::nbcluster::NbCluster;
use crate::lab::pki::Pki;
use crate::lab::{
    Collector, ControllerTarget, Hypervisor, HypervisorOptions, Lab, MigrationStep, Vm, VmOptions,
};
use crate::tls::ApiClientTls;

/// How to run scenarios.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The periscope binary started as the controller.
    pub program: PathBuf,
    /// The collector program and its leading arguments; the lab's default when `None`.
    pub collector: Option<(OsString, Vec<OsString>)>,
    /// A directory the controller's and the hypervisors' logs and the captures are copied to.
    pub logs: Option<PathBuf>,
    /// Print progress on stderr.
    pub progress: bool,
    /// The controller's `--log-level`.
    pub log_level: String,
}

/// How long switches get to connect to a (re)started controller.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// First ICMP identifier handed to a ping.
const FIRST_PING_ID: u16 = 0x5100;
/// First tenant VLAN.
const FIRST_VLAN: u16 = 101;
/// First UDP stream id; stream `n` has `FIRST_STREAM_ID + n`.
const FIRST_STREAM_ID: u32 = 0x5053_0000;
/// Stream `n` is received on port `FIRST_STREAM_PORT + n` and sent from `+ 10000`.
const FIRST_STREAM_PORT: u16 = 20_000;
/// How long a migration's destination may take to show as programmed in the API.
const REPROGRAM_WAIT: Duration = Duration::from_secs(5);
/// How long a tapped VM's migration waits, once plugged at the destination, for the controller
/// to have programmed it there before the VM switches (Nova's wait for vif-plugged).
const PLUG_WAIT: Duration = Duration::from_secs(2);

/// What the tap flows say of one interface at one bridge.
struct TappedAt {
    /// Some tap flow copies it, wherever it is.
    tapped: bool,
    /// Some tap flow shows it at the bridge.
    here: bool,
    /// The bridge is programmed: its last reprogramming time.
    ms: Option<f64>,
}

/// Runs a scenario and reports; never panics on a failure of the lab or the controller, which
/// end up in the report instead. Everything it created is gone when it returns.
pub fn run(spec: &Scenario, opts: &RunOptions, stop: &Interrupt) -> Report {
    let t0 = Instant::now();
    let mut report = Report {
        scenario: spec.name.clone(),
        file: spec.path.display().to_string(),
        description: spec.description.clone(),
        outcome: Outcome::Error,
        error: None,
        setup_s: 0.0,
        timeline_s: 0.0,
        total_s: 0.0,
        controller: BTreeMap::new(),
        steps: Vec::new(),
        pings: Vec::new(),
        streams: Vec::new(),
        reprograms: Vec::new(),
        collectors: Vec::new(),
        expectations: Vec::new(),
    };
    let progress = Progress { t0, on: opts.progress };
    progress.say(&format!("scenario {}: {}", spec.name, spec.description));
    let lab = match Lab::new() {
        Ok(l) => l,
        Err(e) => {
            report.error = Some(format!("building the lab: {e}"));
            return report;
        }
    };
    if let Some((p, a)) = &opts.collector {
        lab.set_collector_command(p.clone(), a.clone());
    }
    progress.say(&format!("lab {} in {}", lab.prefix(), lab.dir().display()));
    let mut run = Run::new(spec, opts, stop, lab, progress);
    let setup = run.setup();
    report.setup_s = t0.elapsed().as_secs_f64();
    report.controller = run.controller_facts.clone();
    let mut failure = setup.err().map(|e| format!("setup: {e:#}"));
    let tl0 = Instant::now();
    if failure.is_none() && !stop.is_set() {
        if let Err(e) = run.timeline(tl0) {
            failure = Some(format!("{e:#}"));
        }
    }
    report.timeline_s = tl0.elapsed().as_secs_f64();
    let facts = run.finish(tl0, failure.is_none() && !stop.is_set());
    report.steps = run.take_steps();
    report.pings = facts.pings.values().cloned().collect();
    report.pings.sort_by(|a, b| a.started_s.total_cmp(&b.started_s));
    report.streams = facts.streams.values().cloned().collect();
    report.streams.sort_by(|a, b| a.started_s.total_cmp(&b.started_s));
    report.reprograms = facts.reprograms.clone();
    report.collectors = run
        .collector_ips
        .iter()
        .map(|(name, ip)| {
            let empty = Default::default();
            let cap = facts.captures.get(name).unwrap_or(&empty);
            collector_record(name, &ip.to_string(), cap, &facts)
        })
        .collect();
    if failure.is_none() && !stop.is_set() {
        report.expectations = spec.expects.iter().map(|e| judge(e, &facts)).collect();
    }
    if let Some(dir) = &opts.logs {
        if let Err(e) = run.copy_logs(dir) {
            run.progress.say(&format!("copying logs to {}: {e:#}", dir.display()));
        }
    }
    report.outcome = if stop.is_set() {
        Outcome::Interrupted
    } else if failure.is_some() {
        Outcome::Error
    } else if report.expectations.iter().all(|v| v.passed) {
        Outcome::Passed
    } else {
        Outcome::Failed
    };
    report.error = failure;
    report.total_s = t0.elapsed().as_secs_f64();
    run.progress.say("cleaning up");
    drop(run);
    report
}

/// Progress lines on stderr, stamped with the time since the run started.
#[derive(Clone, Copy)]
struct Progress {
    t0: Instant,
    on: bool,
}

impl Progress {
    fn say(&self, what: &str) {
        if self.on {
            eprintln!("[{:7.2}s] {what}", self.t0.elapsed().as_secs_f64());
        }
    }
}

/// Tap services and flows the controller accepted.
#[derive(Default)]
struct TapState {
    /// Service name -> (id, key).
    services: BTreeMap<String, (u64, u32)>,
    /// Active tap flows, in creation order: (name, id).
    flows: Vec<(String, u64)>,
}

/// A hypervisor's management links through relays the runner owns (for `cut_link`).
#[derive(Default)]
struct Links {
    openflow: Option<LinkRelay>,
    ovsdb: Option<LinkRelay>,
    /// What is cut now.
    cut: Mutex<Option<CutState>>,
}

/// A cut in force.
struct CutState {
    link: LinkKind,
    mode: CutMode,
    /// The OpenFlow connections the controller listed when it was cut.
    peers: BTreeMap<String, String>,
}

/// One run's state. Fields drop in order: traffic, controller, relays, then the lab.
struct Run<'a> {
    pings: Mutex<Vec<PingProc>>,
    streams: Mutex<Vec<StreamProc>>,
    controller: Mutex<Option<ControllerProc>>,
    /// The other instances, with `controllers = N` (the API is called on `controller`).
    standby: Mutex<Vec<ControllerProc>>,
    /// Their clustered northbound database, with `controllers = N`.
    nb_cluster: Option<NbCluster>,
    links: BTreeMap<String, Links>,
    spec: &'a Scenario,
    opts: &'a RunOptions,
    stop: &'a Interrupt,
    progress: Progress,
    ctl_cfg: Option<ControllerConfig>,
    controller_facts: BTreeMap<String, String>,
    finished_pings: Mutex<Vec<PingOutcome>>,
    finished_streams: Mutex<Vec<StreamOutcome>>,
    next_ping_id: AtomicU16,
    next_stream: AtomicU32,
    reprograms: Mutex<Vec<ReprogramSample>>,
    taps: Mutex<TapState>,
    vms: BTreeMap<String, Mutex<Option<Vm>>>,
    vm_facts: Mutex<BTreeMap<String, VmFacts>>,
    hvs: BTreeMap<String, Hypervisor>,
    collectors: BTreeMap<String, Collector>,
    collector_ips: BTreeMap<String, Ipv4Addr>,
    vlans: BTreeMap<String, u16>,
    neighbors: Vec<(Ipv4Addr, String)>,
    steps: Mutex<Vec<StepRecord>>,
    lab: Lab,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

impl<'a> Run<'a> {
    fn new(
        spec: &'a Scenario,
        opts: &'a RunOptions,
        stop: &'a Interrupt,
        lab: Lab,
        progress: Progress,
    ) -> Self {
        let vlans = spec
            .tenants()
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, FIRST_VLAN + i as u16))
            .collect();
        Run {
            pings: Mutex::new(Vec::new()),
            streams: Mutex::new(Vec::new()),
            controller: Mutex::new(None),
            standby: Mutex::new(Vec::new()),
            nb_cluster: None,
            links: BTreeMap::new(),
            spec,
            opts,
            stop,
            progress,
            ctl_cfg: None,
            controller_facts: BTreeMap::new(),
            finished_pings: Mutex::new(Vec::new()),
            finished_streams: Mutex::new(Vec::new()),
            next_ping_id: AtomicU16::new(FIRST_PING_ID),
            next_stream: AtomicU32::new(0),
            reprograms: Mutex::new(Vec::new()),
            taps: Mutex::new(TapState::default()),
            vms: spec.vms.iter().map(|v| (v.name.clone(), Mutex::new(None))).collect(),
            vm_facts: Mutex::new(BTreeMap::new()),
            hvs: BTreeMap::new(),
            collectors: BTreeMap::new(),
            collector_ips: BTreeMap::new(),
            vlans,
            neighbors: Vec::new(),
            steps: Mutex::new(Vec::new()),
            lab,
        }
    }

    fn check_stop(&self) -> anyhow::Result<()> {
        if self.stop.is_set() {
            bail!("interrupted");
        }
        Ok(())
    }

    fn setup(&mut self) -> anyhow::Result<()> {
        let spec = self.spec;
        let of_dir = self.lab.dir().join("controller");
        std::fs::create_dir_all(&of_dir).context("creating the controller directory")?;
        let unix_sock = of_dir.join("of.sock");
        let several = spec.controllers > 1;
        if several
            && (spec.hypervisors.iter().any(|h| h.controller != Transport::Unix)
                || !spec.cut_hypervisors().is_empty()
                || spec.steps.iter().any(|s| s.action == Action::RestartController))
        {
            bail!(
                "controllers = {}: every hypervisor's controller must be \"unix\", with no \
                 cut_link and no restart_controller step",
                spec.controllers
            );
        }
        // Instance i listens on of.sock (the first) or of-<i>.sock.
        let sockets: Vec<PathBuf> = (0..spec.controllers)
            .map(|i| if i == 0 { unix_sock.clone() } else { of_dir.join(format!("of-{i}.sock")) })
            .collect();
        let uses = |t: Transport| spec.hypervisors.iter().any(|h| h.controller == t);
        let tcp_port = if uses(Transport::Tcp) {
            Some(free_port().context("finding a free port for OpenFlow")?)
        } else {
            None
        };
        let ssl = if uses(Transport::Ssl) {
            let port = free_port().context("finding a free port for OpenFlow over TLS")?;
            let pki = Pki::new(&self.lab.dir().join("pki")).context("making the PKI")?;
            let controller = pki.controller("controller")?;
            let switch = pki.switch("switch")?;
            let api = ApiClientTls::load(&pki.controller_ca())?;
            self.progress.say(&format!("PKI made with ovs-pki in {}", pki.dir().display()));
            Some((port, controller, switch, api))
        } else {
            None
        };
        let with_ovsdb = supports_ovsdb(&self.opts.program);
        let mut ovsdb = Vec::new();
        let cut = spec.cut_hypervisors();
        for h in &spec.hypervisors {
            self.check_stop()?;
            let relayed = cut.contains(&h.name.as_str());
            let mut links = Links::default();
            let target = match (h.controller, tcp_port) {
                (Transport::Tcp, Some(p)) if relayed => {
                    let r = LinkRelay::start_tcp((Ipv4Addr::LOCALHOST, p).into())?;
                    let port = r.port();
                    links.openflow = Some(r);
                    ControllerTarget::HostTcp(port)
                }
                (Transport::Tcp, Some(p)) => ControllerTarget::HostTcp(p),
                (Transport::Ssl, _) => match (&ssl, relayed) {
                    (Some((p, ..)), true) => {
                        let r = LinkRelay::start_tcp((Ipv4Addr::LOCALHOST, *p).into())?;
                        let port = r.port();
                        links.openflow = Some(r);
                        ControllerTarget::HostSsl(port)
                    }
                    (Some((p, ..)), false) => ControllerTarget::HostSsl(*p),
                    (None, _) => bail!("no PKI for hypervisor {}", h.name),
                },
                _ if relayed => {
                    let front = of_dir.join(format!("{}-of.sock", h.name));
                    let r = LinkRelay::start(
                        Endpoint::Unix(front.clone()),
                        Endpoint::Unix(unix_sock.clone()),
                    )?;
                    links.openflow = Some(r);
                    ControllerTarget::Unix(front)
                }
                _ => ControllerTarget::Unix(unix_sock.clone()),
            };
            let options =
                sockets[1..].iter().fold(HypervisorOptions::secure().controller(target), |o, s| {
                    o.controller(ControllerTarget::Unix(s.clone()))
                });
            let hv = self
                .lab
                .add_hypervisor(&h.name, options)
                .with_context(|| format!("hypervisor {}", h.name))?;
            ovs::patch_to_underlay(&hv)?;
            ovs::fast_reconnect(&hv)?;
            if let (Transport::Ssl, Some((_, _, switch, _))) = (h.controller, &ssl) {
                hv.set_ssl(&switch.private_key, &switch.certificate, &switch.ca_cert)?;
            }
            if with_ovsdb {
                let remote = match (h.controller, relayed) {
                    (Transport::Unix, false) => hv.db_remote(),
                    (Transport::Tcp, false) => format!("tcp:{}", hv.add_db_tcp_remote()?),
                    (Transport::Unix, true) => {
                        let front = of_dir.join(format!("{}-db.sock", h.name));
                        links.ovsdb = Some(LinkRelay::start(
                            Endpoint::Unix(front.clone()),
                            Endpoint::Unix(hv.db_socket()),
                        )?);
                        format!("unix:{}", front.display())
                    }
                    (Transport::Tcp, true) => {
                        let r = LinkRelay::start_tcp(hv.add_db_tcp_remote()?)?;
                        let remote = format!("tcp:127.0.0.1:{}", r.port());
                        links.ovsdb = Some(r);
                        remote
                    }
                    (Transport::Ssl, false) => format!("ssl:{}", hv.add_db_ssl_remote()?),
                    (Transport::Ssl, true) => {
                        let r = LinkRelay::start_tcp(hv.add_db_ssl_remote()?)?;
                        let remote = format!("ssl:127.0.0.1:{}", r.port());
                        links.ovsdb = Some(r);
                        remote
                    }
                };
                ovsdb.push(remote);
            }
            if relayed {
                self.progress.say(&format!(
                    "hypervisor {}: management links through the runner's relays",
                    h.name
                ));
                self.links.insert(h.name.clone(), links);
            }
            self.neighbors.push((hv.underlay_ip(), hv.underlay_mac().to_string()));
            self.progress.say(&format!(
                "hypervisor {} ({}, dpid {:016x}, controller over {})",
                h.name,
                hv.underlay_ip(),
                hv.dpid(),
                h.controller
            ));
            self.hvs.insert(h.name.clone(), hv);
        }
        for c in &spec.collectors {
            self.check_stop()?;
            let col =
                self.lab.add_collector(&c.name).with_context(|| format!("collector {}", c.name))?;
            self.progress.say(&format!("collector {} listening on {}", c.name, col.ip()));
            self.neighbors.push((col.ip(), col.mac().to_string()));
            self.collector_ips.insert(c.name.clone(), col.ip());
            self.collectors.insert(c.name.clone(), col);
        }
        let mut openflow = Vec::new();
        if spec.hypervisors.iter().any(|h| h.controller == Transport::Unix) {
            openflow.push(format!("punix:{}", unix_sock.display()));
        }
        if let Some(p) = tcp_port {
            openflow.push(format!("ptcp:{p}:127.0.0.1"));
        }
        if let Some((p, ..)) = &ssl {
            openflow.push(format!("pssl:{p}:127.0.0.1"));
        }
        let cfg = ControllerConfig {
            program: self.opts.program.clone(),
            openflow,
            ovsdb,
            log: self.lab.dir().join("controller.log"),
            log_level: self.opts.log_level.clone(),
            data_dir: self.lab.dir().join("controller.data"),
            tls: ssl.map(|(_, controller, _, api)| (controller, api)),
            nb: None,
            leader_election: false,
        };
        self.check_stop()?;
        let cfg = if several { self.start_standbys(cfg, &sockets)? } else { cfg };
        let ctl = ControllerProc::start(&cfg)?;
        self.controller_facts.insert("api".into(), ctl.api.to_string());
        self.controller_facts.insert("openflow".into(), ctl.openflow.join(" "));
        self.controller_facts.insert(
            "ovsdb".into(),
            if with_ovsdb {
                format!("{} remotes", cfg.ovsdb.len())
            } else {
                "not supported yet".into()
            },
        );
        self.progress.say(&format!(
            "controller pid {} api {} openflow {}{}",
            ctl.pid(),
            ctl.api,
            ctl.openflow.join(" "),
            if with_ovsdb { " (with --ovsdb)" } else { " (no --ovsdb yet)" }
        ));
        let api = ctl.api.clone();
        *lock(&self.controller) = Some(ctl);
        self.ctl_cfg = Some(cfg);
        let took = self.wait_switches(&api)?;
        if several {
            let (pid, _) = self.wait_leader(Instant::now())?;
            self.progress.say(&format!("controller pid {pid} leads, MASTER on every bridge"));
        }
        self.progress.say(&format!("{} switches connected after {took:.0} ms", self.hvs.len()));
        for v in spec.vms.iter().filter(|v| v.create) {
            self.check_stop()?;
            self.create_vm(&v.name, None)?;
        }
        // The operator lets each tenant send copies to its own collectors, and nowhere else.
        let mut allowed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for s in &spec.tap_services {
            if let Some(ip) = self.collector_ips.get(&s.collector) {
                allowed.entry(s.tenant.as_str()).or_default().push(format!("{ip}/32"));
            }
        }
        for (tenant, cidrs) in &allowed {
            let body = json!({ "allowed_collectors": cidrs });
            self.api_call("PUT", &format!("/v1/tenants/{tenant}"), Some(&body))?;
        }
        for s in &spec.tap_services {
            self.check_stop()?;
            self.create_service(&s.name)?;
        }
        for f in spec.tap_flows.iter().filter(|f| f.create) {
            self.check_stop()?;
            self.create_flow(&f.name)?;
        }
        if !spec.tap_services.is_empty() || !spec.tap_flows.is_empty() {
            let (services, flows) = {
                let t = lock(&self.taps);
                (t.services.len(), t.flows.len())
            };
            self.progress.say(&format!("{services} tap services, {flows} tap flows created"));
        }
        if !self.stop.sleep(Duration::from_secs_f64(spec.settle_s)) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// The operator's token of the running controller.
    fn token(&self) -> Option<String> {
        lock(&self.controller).as_ref().and_then(|c| c.token.clone())
    }

    /// The API address of the running controller.
    fn api(&self) -> anyhow::Result<http::Endpoint> {
        lock(&self.controller)
            .as_ref()
            .map(|c| c.api.clone())
            .ok_or_else(|| anyhow!("the controller is not running (killed by an earlier step)"))
    }

    /// Waits until every hypervisor's `br-int` is connected and has been read back; returns
    /// how long it took in milliseconds.
    fn wait_switches(&self, api: &http::Endpoint) -> anyhow::Result<f64> {
        self.wait_switches_except(api, &BTreeMap::new())
    }

    /// The connection (`peer`) the controller lists for each connected datapath id.
    fn switch_peers(&self, api: &http::Endpoint) -> BTreeMap<String, String> {
        let Ok((200, Value::Array(list))) =
            http::request_to(api, self.token().as_deref(), "GET", "/v1/switches", None)
        else {
            return BTreeMap::new();
        };
        list.iter()
            .filter_map(|s| {
                let dpid = s.get("dpid")?.as_str()?.to_string();
                Some((dpid, s.get("peer").and_then(Value::as_str).unwrap_or_default().to_string()))
            })
            .collect()
    }

    /// Like [`Run::wait_switches`], but a datapath still on the connection listed in `old`
    /// does not count (it has not reconnected yet).
    fn wait_switches_except(
        &self,
        api: &http::Endpoint,
        old: &BTreeMap<String, String>,
    ) -> anyhow::Result<f64> {
        let start = Instant::now();
        let want: Vec<String> = self.hvs.values().map(|h| format!("{:016x}", h.dpid())).collect();
        let mut missing = want.clone();
        while start.elapsed() < CONNECT_TIMEOUT {
            self.check_stop()?;
            if let Ok((200, Value::Array(list))) =
                http::request_to(api, self.token().as_deref(), "GET", "/v1/switches", None)
            {
                let ready: Vec<&str> = list
                    .iter()
                    .filter(|s| s.get("our_flows").is_none_or_not_null())
                    .filter(|s| {
                        let dpid = s.get("dpid").and_then(Value::as_str).unwrap_or_default();
                        let peer = s.get("peer").and_then(Value::as_str).unwrap_or_default();
                        old.get(dpid).is_none_or_ne(peer)
                    })
                    .filter_map(|s| s.get("dpid").and_then(Value::as_str))
                    .collect();
                missing = want.iter().filter(|d| !ready.contains(&d.as_str())).cloned().collect();
                if missing.is_empty() {
                    return Ok(start.elapsed().as_secs_f64() * 1e3);
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        bail!("switches {missing:?} did not connect to the controller within {CONNECT_TIMEOUT:?}")
    }

    fn vm_options(&self, name: &str) -> anyhow::Result<VmOptions> {
        let v = self.spec.vm(name).ok_or_else(|| anyhow!("no VM {name}"))?;
        let mut o = VmOptions::new(name)
            .iface_id(&self.iface_id(name))
            .vm_uuid(&self.vm_uuid(name))
            .external_id(periscope_topology::DEFAULT_TENANT_KEY, &v.tenant);
        for (k, val) in &v.external_ids {
            o = o.external_id(k, val);
        }
        if let Some(m) = &v.mac {
            o = o.mac(m);
        }
        if let Some((ip, len)) = v.ip {
            o = o.ip(ip, len);
        }
        if let Some(mtu) = v.mtu {
            o = o.mtu(mtu);
        }
        Ok(o)
    }

    fn iface_id(&self, vm: &str) -> String {
        self.spec
            .vm(vm)
            .and_then(|v| v.iface_id.clone())
            .unwrap_or_else(|| format!("{}-{vm}-port", self.lab.prefix()))
    }

    fn vm_uuid(&self, vm: &str) -> String {
        self.spec
            .vm(vm)
            .and_then(|v| v.vm_uuid.clone())
            .unwrap_or_else(|| format!("{}-{vm}-uuid", self.lab.prefix()))
    }

    fn hv(&self, name: &str) -> anyhow::Result<&Hypervisor> {
        self.hvs.get(name).ok_or_else(|| anyhow!("no hypervisor {name}"))
    }

    fn vlan(&self, vm: &str) -> u16 {
        self.spec.vm(vm).and_then(|v| self.vlans.get(&v.tenant)).copied().unwrap_or(FIRST_VLAN)
    }

    fn create_vm(&self, name: &str, on: Option<&str>) -> anyhow::Result<String> {
        let spec = self.spec.vm(name).ok_or_else(|| anyhow!("no VM {name}"))?;
        let hv = self.hv(on.unwrap_or(&spec.hypervisor))?;
        let slot = self.vms.get(name).ok_or_else(|| anyhow!("no VM {name}"))?;
        let vm =
            self.lab.add_vm(hv, self.vm_options(name)?).with_context(|| format!("VM {name}"))?;
        ovs::tag_port(hv, vm.port(), self.vlan(name))?;
        let detail = format!("{} {} on {} port {}", vm.ip(), vm.mac(), hv.name(), vm.port());
        self.progress.say(&format!("VM {name}: {detail}"));
        lock(&self.vm_facts).insert(
            name.to_string(),
            VmFacts { tenant: spec.tenant.clone(), mac: vm.mac().to_string(), ip: vm.ip() },
        );
        *lock(slot) = Some(vm);
        Ok(detail)
    }

    fn api_call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let api = self.api()?;
        let (status, reply) = http::request_to(&api, self.token().as_deref(), method, path, body)?;
        if !(200..300).contains(&status) {
            bail!("{method} {path} answered {status}: {reply}");
        }
        Ok(reply)
    }

    /// Creates a tap service through the API.
    fn create_service(&self, name: &str) -> anyhow::Result<()> {
        let s = self.spec.tap_service(name).ok_or_else(|| anyhow!("no tap service {name}"))?;
        let ip = self
            .collector_ips
            .get(&s.collector)
            .ok_or_else(|| anyhow!("no collector {}", s.collector))?;
        let mut body = json!({
            "name": s.name, "tenant": s.tenant, "encap": s.encap.name(), "remote_ip": ip.to_string(),
        });
        if let Some(k) = s.key {
            body["key"] = json!(k);
        }
        if let Some(n) = s.snaplen {
            body["snaplen"] = json!(n);
        }
        let reply = self.api_call("POST", "/v1/tap_services", Some(&body))?;
        let id = reply
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("tap service reply without id: {reply}"))?;
        let key = reply
            .get("key")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("tap service reply without key: {reply}"))?;
        lock(&self.taps).services.insert(name.to_string(), (id, key as u32));
        self.progress.say(&format!("tap service {name}: id {id}, {} key {key} -> {ip}", s.encap));
        Ok(())
    }

    fn create_flow(&self, name: &str) -> anyhow::Result<String> {
        let f = self.spec.tap_flow(name).ok_or_else(|| anyhow!("no tap flow {name}"))?;
        let service = lock(&self.taps).services.get(&f.service).map(|s| s.0);
        let service =
            service.ok_or_else(|| anyhow!("tap service {} was not created", f.service))?;
        let source = match &f.source {
            TapSource::IfaceId(vm) => json!({ "iface_id": self.iface_id(vm) }),
            TapSource::Vm(vm) => json!({ "vm": self.vm_uuid(vm) }),
            TapSource::Selector(sel) => json!({ "selector": sel }),
        };
        let mut body = json!({
            "name": f.name, "tenant": f.tenant, "tap_service": service, "source": source,
            "direction": direction_str(f.direction),
        });
        if let Some(filter) = &f.filter {
            body["filter"] = filter.clone();
        }
        let reply = self.api_call("POST", "/v1/tap_flows", Some(&body))?;
        let id = reply
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("tap flow reply without id: {reply}"))?;
        lock(&self.taps).flows.push((name.to_string(), id));
        Ok(format!("id {id}"))
    }

    fn delete_flow(&self, name: &str) -> anyhow::Result<String> {
        let id = lock(&self.taps).flows.iter().find(|(n, _)| n == name).map(|x| x.1);
        let id = id.ok_or_else(|| anyhow!("tap flow {name} does not exist"))?;
        self.api_call("DELETE", &format!("/v1/tap_flows/{id}"), None)?;
        lock(&self.taps).flows.retain(|(n, _)| n != name);
        Ok(format!("id {id}"))
    }

    // ---- the timeline ----

    fn timeline(&self, tl0: Instant) -> anyhow::Result<()> {
        let steps: Vec<(usize, &Step)> = self.spec.steps.iter().enumerate().collect();
        let mut i = 0;
        while i < steps.len() {
            let at = steps[i].1.at;
            let mut j = i + 1;
            while at.is_some() && j < steps.len() && steps[j].1.at == at {
                j += 1;
            }
            let group = &steps[i..j];
            if let Some(at) = at {
                let due = tl0 + Duration::from_secs_f64(at);
                if !self.stop.sleep(due.saturating_duration_since(Instant::now())) {
                    bail!("interrupted");
                }
            }
            self.check_stop()?;
            let failed: Vec<String> = if group.len() == 1 {
                self.run_step(tl0, group[0].0, group[0].1).err().into_iter().collect()
            } else {
                thread::scope(|sc| {
                    let handles: Vec<_> = group
                        .iter()
                        .map(|(k, st)| sc.spawn(move || self.run_step(tl0, *k, st)))
                        .collect();
                    handles
                        .into_iter()
                        .filter_map(|h| match h.join() {
                            Ok(r) => r.err(),
                            Err(_) => Some("a step panicked".to_string()),
                        })
                        .collect()
                })
            };
            if !failed.is_empty() {
                bail!("{}", failed.join("; "));
            }
            i = j;
        }
        Ok(())
    }

    /// Runs one step and records it; the error names the step.
    fn run_step(&self, tl0: Instant, index: usize, step: &Step) -> Result<(), String> {
        let started = Instant::now();
        let started_s = started.duration_since(tl0).as_secs_f64();
        let result = self.act(tl0, &step.action);
        let duration_ms = started.elapsed().as_secs_f64() * 1e3;
        let (ok, detail) = match &result {
            Ok(d) => (true, d.clone()),
            Err(e) => (false, format!("{e:#}")),
        };
        self.progress.say(&format!(
            "step {}/{} {}: {} ({duration_ms:.0} ms){}",
            index + 1,
            self.spec.steps.len(),
            step.action.describe(),
            if ok { "ok" } else { "FAILED" },
            if detail.is_empty() { String::new() } else { format!(" {detail}") }
        ));
        lock(&self.steps).push(StepRecord {
            index: index + 1,
            action: step.action.kind(),
            description: step.action.describe(),
            at_s: step.at,
            started_s,
            duration_ms,
            ok,
            detail: detail.clone(),
        });
        if ok {
            Ok(())
        } else {
            Err(format!("step {} ({}) failed: {detail}", index + 1, step.action.describe()))
        }
    }

    fn act(&self, tl0: Instant, a: &Action) -> anyhow::Result<String> {
        match a {
            Action::StartPing(p) => {
                let (netns, from_ip) = {
                    let g = lock(self.vms.get(&p.from).ok_or_else(|| anyhow!("no VM {}", p.from))?);
                    let vm = g.as_ref().ok_or_else(|| anyhow!("VM {} does not exist", p.from))?;
                    (vm.netns().to_string(), vm.ip())
                };
                let to_ip = {
                    let g = lock(self.vms.get(&p.to).ok_or_else(|| anyhow!("no VM {}", p.to))?);
                    g.as_ref().ok_or_else(|| anyhow!("VM {} does not exist", p.to))?.ip()
                };
                let id = self.next_ping_id.fetch_add(1, Ordering::Relaxed);
                let outcome = PingOutcome {
                    name: p.name.clone(),
                    from: p.from.clone(),
                    to: p.to.clone(),
                    from_ip: Some(from_ip),
                    to_ip: Some(to_ip),
                    id,
                    interval_ms: p.interval_ms,
                    started_s: tl0.elapsed().as_secs_f64(),
                    ..PingOutcome::default()
                };
                let proc =
                    PingProc::start(&netns, to_ip, outcome, p.count).context("starting ping")?;
                lock(&self.pings).push(proc);
                Ok(format!("{from_ip} -> {to_ip}, icmp id {id}"))
            }
            Action::StartStream(x) => self.start_stream(tl0, x),
            Action::CutLink { hypervisor, link, mode } => self.cut_link(hypervisor, *link, *mode),
            Action::RestoreLink { hypervisor } => self.restore_link(hypervisor),
            Action::Migrate { vm, to } => {
                let detail = self.migrate(vm, to)?;
                if !self.spec.expects.iter().any(|e| matches!(e, Expect::Reprogram { .. })) {
                    return Ok(detail);
                }
                let sample = self.measure_reprogram(vm, to);
                let more = match (&sample.ms, &sample.error) {
                    (Some(ms), _) => format!(", destination reprogrammed in {ms:.2} ms"),
                    (None, Some(e)) => format!(", reprogramming time unknown: {e}"),
                    (None, None) => String::new(),
                };
                lock(&self.reprograms).push(sample);
                Ok(detail + &more)
            }
            Action::CreateVm { vm, on } => self.create_vm(vm, on.as_deref()),
            Action::DeleteVm { vm } => {
                let mut g = lock(self.vms.get(vm).ok_or_else(|| anyhow!("no VM {vm}"))?);
                let v = g.take().ok_or_else(|| anyhow!("VM {vm} does not exist"))?;
                ovs::unplug(v.hypervisor(), v.port(), v.netns())?;
                Ok(format!("port {} removed from {}", v.port(), v.hypervisor().name()))
            }
            Action::CreateTapFlow { tap_flow } => self.create_flow(tap_flow),
            Action::DeleteTapFlow { tap_flow } => self.delete_flow(tap_flow),
            Action::KillController => {
                let mut g = lock(&self.controller);
                let mut c = g.take().ok_or_else(|| anyhow!("the controller is not running"))?;
                let pid = c.pid();
                c.kill();
                Ok(format!("pid {pid} killed"))
            }
            Action::RestartController => self.restart_controller(),
            Action::KillLeader => self.kill_leader(),
            Action::KillNbLeader => self.kill_nb_leader(),
            Action::RestartOvsdb { hypervisor } => {
                let hv = self.hv(hypervisor)?;
                let start = Instant::now();
                ovs::restart_ovsdb(hv)?;
                Ok(format!("restarted in {:.0} ms", start.elapsed().as_secs_f64() * 1e3))
            }
            Action::RestartVswitchd { hypervisor } => {
                let hv = self.hv(hypervisor)?;
                let neighbors: Vec<(Ipv4Addr, String)> = self
                    .neighbors
                    .iter()
                    .filter(|(ip, _)| *ip != hv.underlay_ip())
                    .cloned()
                    .collect();
                let api = self.api().ok();
                let dpid = format!("{:016x}", hv.dpid());
                let old: BTreeMap<String, String> = api
                    .as_ref()
                    .map(|a| self.switch_peers(a))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(d, _)| *d == dpid)
                    .collect();
                let start = Instant::now();
                ovs::restart_vswitchd(hv, &neighbors)?;
                let restarted = start.elapsed().as_secs_f64() * 1e3;
                match api {
                    Some(api) => {
                        let back = self.wait_switches_except(&api, &old)?;
                        Ok(format!(
                            "restarted in {restarted:.0} ms, switches ready {back:.0} ms later"
                        ))
                    }
                    None => Ok(format!("restarted in {restarted:.0} ms (no controller running)")),
                }
            }
            Action::Wait { seconds } => {
                if !self.stop.sleep(Duration::from_secs_f64(*seconds)) {
                    bail!("interrupted");
                }
                Ok(String::new())
            }
            Action::StopTraffic { ping } => {
                let mut stopped = self.stop_pings(tl0, ping.as_deref());
                stopped.extend(self.stop_streams(tl0, ping.as_deref()));
                Ok(format!("{} stopped", stopped.join(", ")))
            }
        }
    }

    /// Live-migrates a VM the way Nova does; the detail has the phases' times.
    fn migrate(&self, vm: &str, to: &str) -> anyhow::Result<String> {
        let dest = self.hv(to)?.clone();
        let vlan = self.vlan(vm);
        let iface = self.iface_id(vm);
        let mut g = lock(self.vms.get(vm).ok_or_else(|| anyhow!("no VM {vm}"))?);
        let v = g.as_mut().ok_or_else(|| anyhow!("VM {vm} does not exist"))?;
        let from = v.hypervisor().name().to_string();
        let dpid = format!("{:016x}", dest.dpid());
        let ids: Vec<u64> = lock(&self.taps).flows.iter().map(|f| f.1).collect();
        let mut unconfirmed = false;
        let t = v.migrate_with(&dest, |step, _| {
            if step == MigrationStep::Plugged {
                // The new port joins the tenant's VLAN before the VM switches to it.
                let out = dest.vsctl(&[
                    "--bare",
                    "--columns=name",
                    "find",
                    "Interface",
                    &format!("external_ids:iface-id=\"{iface}\""),
                ])?;
                if let Some(port) = out.split_whitespace().next() {
                    dest.vsctl(&["set", "Port", port, &format!("tag={vlan}")])?;
                }
                // As Nova waits for Neutron's vif-plugged before the VM runs at the
                // destination: a tapped VM switches once the controller has programmed it
                // there (or after PLUG_WAIT, which the step's detail then says).
                let start = Instant::now();
                while !self.stop.is_set() {
                    let at = self.programmed_at(&ids, &iface, &dpid);
                    if !at.tapped || at.ms.is_some() {
                        break;
                    }
                    if start.elapsed() >= PLUG_WAIT {
                        unconfirmed = true;
                        break;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            }
            Ok(())
        })?;
        let ms = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1e3;
        Ok(format!(
            "{from} -> {to}: plug {:.0} ms, switch {:.0} ms, unplug {:.0} ms{}",
            ms(t.started, t.plugged),
            ms(t.plugged, t.switched),
            ms(t.switched, t.unplugged),
            if unconfirmed {
                format!(" (switched unconfirmed: the destination was not programmed within {PLUG_WAIT:?})")
            } else {
                String::new()
            }
        ))
    }

    /// What the tap flows' `active` lists say of `iface` at `dpid`.
    fn programmed_at(&self, ids: &[u64], iface: &str, dpid: &str) -> TappedAt {
        let mut at = TappedAt { tapped: false, here: false, ms: None };
        for id in ids {
            let Ok(flow) = self.api_call("GET", &format!("/v1/tap_flows/{id}"), None) else {
                continue;
            };
            for a in flow.get("active").and_then(Value::as_array).into_iter().flatten() {
                if a.get("iface_id").and_then(Value::as_str) != Some(iface) {
                    continue;
                }
                at.tapped = true;
                if a.get("dpid").and_then(Value::as_str) != Some(dpid) {
                    continue;
                }
                at.here = true;
                if a.get("programmed").and_then(Value::as_bool) == Some(true) {
                    if let Some(ms) = a.get("last_reprogram_ms").and_then(Value::as_f64) {
                        at.ms = Some(ms);
                        return at;
                    }
                }
            }
        }
        at
    }

    /// Asks the API how long the destination bridge of a migration took to reprogram: the
    /// tap flows' status lists where each tapped interface is active, whether its bridge is
    /// programmed and its last reprogramming time.
    fn measure_reprogram(&self, vm: &str, to: &str) -> ReprogramSample {
        let mut sample =
            ReprogramSample { vm: vm.to_string(), to: to.to_string(), ms: None, error: None };
        let Ok(dest) = self.hv(to) else {
            sample.error = Some(format!("no hypervisor {to}"));
            return sample;
        };
        let dpid = format!("{:016x}", dest.dpid());
        let iface = self.iface_id(vm);
        let ids: Vec<u64> = lock(&self.taps).flows.iter().map(|f| f.1).collect();
        let start = Instant::now();
        let mut seen_active = false;
        while start.elapsed() < REPROGRAM_WAIT && !self.stop.is_set() {
            let at = self.programmed_at(&ids, &iface, &dpid);
            seen_active |= at.here;
            if at.ms.is_some() {
                sample.ms = at.ms;
                return sample;
            }
            thread::sleep(Duration::from_millis(20));
        }
        sample.error = Some(if ids.is_empty() {
            "no tap flow exists".into()
        } else if seen_active {
            format!("the destination was not programmed within {REPROGRAM_WAIT:?}")
        } else {
            format!("no tap flow showed {vm} active on {to} within {REPROGRAM_WAIT:?}")
        });
        sample
    }

    fn start_stream(&self, tl0: Instant, x: &StreamSpec) -> anyhow::Result<String> {
        let vm = |name: &str| -> anyhow::Result<(String, Ipv4Addr)> {
            let g = lock(self.vms.get(name).ok_or_else(|| anyhow!("no VM {name}"))?);
            let v = g.as_ref().ok_or_else(|| anyhow!("VM {name} does not exist"))?;
            Ok((v.netns().to_string(), v.ip()))
        };
        let (from_ns, from_ip) = vm(&x.from)?;
        let (to_ns, to_ip) = vm(&x.to)?;
        let n = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let dst_port = FIRST_STREAM_PORT.saturating_add(n as u16);
        let src_port = dst_port.saturating_add(10_000);
        let outcome = StreamOutcome {
            from_ip,
            to_ip,
            src_port,
            dst_port,
            id: if x.kind == super::spec::StreamKind::Udp { FIRST_STREAM_ID + n } else { 0 },
            interval_ms: x.interval_ms,
            started_s: tl0.elapsed().as_secs_f64(),
            ..StreamOutcome::new(&x.name, x.kind, &x.from, &x.to)
        };
        let start = StreamStart {
            program: &self.opts.program,
            from_netns: &from_ns,
            to_netns: &to_ns,
            count: x.count,
            size: x.size,
        };
        let proc = StreamProc::start(&start, outcome).context("starting the stream")?;
        lock(&self.streams).push(proc);
        Ok(format!("{from_ip}:{src_port} -> {to_ip}:{dst_port}"))
    }

    fn links(&self, hypervisor: &str) -> anyhow::Result<&Links> {
        self.links
            .get(hypervisor)
            .ok_or_else(|| anyhow!("hypervisor {hypervisor}'s links do not go through a relay"))
    }

    fn cut_link(&self, hypervisor: &str, link: LinkKind, mode: CutMode) -> anyhow::Result<String> {
        let l = self.links(hypervisor)?;
        if link.ovsdb() && l.ovsdb.is_none() {
            bail!("the controller has no OVSDB connection to cut (it runs without --ovsdb)");
        }
        let peers = self.api().ok().map(|a| self.switch_peers(&a)).unwrap_or_default();
        let mut cut = Vec::new();
        if let Some(r) = l.openflow.as_ref().filter(|_| link.openflow()) {
            r.cut(mode);
            cut.push(format!("openflow ({} connections so far)", r.accepted()));
        }
        if let Some(r) = l.ovsdb.as_ref().filter(|_| link.ovsdb()) {
            r.cut(mode);
            cut.push(format!("ovsdb ({} connections so far)", r.accepted()));
        }
        *lock(&l.cut) = Some(CutState { link, mode, peers });
        Ok(format!("{} cut by {}", cut.join(" and "), mode.as_str()))
    }

    fn restore_link(&self, hypervisor: &str) -> anyhow::Result<String> {
        let l = self.links(hypervisor)?;
        let CutState { link, mode, peers } =
            lock(&l.cut).take().ok_or_else(|| anyhow!("{hypervisor}'s link is not cut"))?;
        let start = Instant::now();
        for r in [&l.openflow, &l.ovsdb].into_iter().flatten() {
            r.restore();
        }
        let api = self.api().ok();
        let mut parts = Vec::new();
        if let (true, Some(api)) = (link.openflow(), &api) {
            let hv = self.hv(hypervisor)?;
            let dpid = format!("{:016x}", hv.dpid());
            // After a reset the switch must come back on a new connection.
            let old: BTreeMap<String, String> = match mode {
                CutMode::Reset => peers.into_iter().filter(|(d, _)| *d == dpid).collect(),
                CutMode::Blackhole => BTreeMap::new(),
            };
            let ms = self.wait_switches_except(api, &old)?;
            parts.push(format!("switches ready after {ms:.0} ms"));
        }
        if let (true, Some(api)) = (link.ovsdb(), &api) {
            let want = self.hvs.len() as u64;
            loop {
                self.check_stop()?;
                let n = http::request_to(api, self.token().as_deref(), "GET", "/v1/stats", None)
                    .ok()
                    .and_then(|(_, v)| v.get("hypervisors").and_then(Value::as_u64));
                if n == Some(want) {
                    break;
                }
                if start.elapsed() >= CONNECT_TIMEOUT {
                    bail!("the controller lists {n:?} of {want} hypervisors {CONNECT_TIMEOUT:?} after the restore");
                }
                thread::sleep(Duration::from_millis(50));
            }
            parts.push(format!(
                "all {want} OVSDB connections up after {:.0} ms",
                start.elapsed().as_secs_f64() * 1e3
            ));
        }
        if api.is_none() {
            parts.push("no controller running".into());
        }
        Ok(format!("{} restored: {}", link.as_str(), parts.join(", ")))
    }

    /// With `controllers = N`: starts the northbound cluster and instances 2..N (each on its own
    /// socket, log and data), and returns the first one's configuration, on the cluster too.
    fn start_standbys(
        &mut self,
        first: ControllerConfig,
        sockets: &[PathBuf],
    ) -> anyhow::Result<ControllerConfig> {
        let nb = NbCluster::start(&self.lab.dir().join("nb"), 3)
            .context("starting the 3-member northbound cluster")?;
        let first = ControllerConfig { nb: Some(nb.remotes()), leader_election: true, ..first };
        self.progress.say(&format!("northbound cluster of 3 members: {}", nb.remotes()));
        self.nb_cluster = Some(nb);
        for (i, sock) in sockets.iter().enumerate().skip(1) {
            self.check_stop()?;
            let cfg = ControllerConfig {
                openflow: vec![format!("punix:{}", sock.display())],
                log: self.lab.dir().join(format!("controller-{i}.log")),
                data_dir: self.lab.dir().join(format!("controller-{i}.data")),
                ..first.clone()
            };
            let c = ControllerProc::start(&cfg)?;
            self.progress.say(&format!(
                "controller {} pid {} api http://{}",
                i + 1,
                c.pid(),
                c.api
            ));
            lock(&self.standby).push(c);
        }
        Ok(first)
    }

    /// Every live instance's `GET /v1/cluster`, with its pid.
    fn cluster_views(&self) -> Vec<(u32, Value)> {
        let view = |c: &ControllerProc| {
            let reply = http::request_to(&c.api, c.token.as_deref(), "GET", "/v1/cluster", None);
            (c.pid(), reply.map(|(_, v)| v).unwrap_or(Value::Null))
        };
        let mut out: Vec<(u32, Value)> = lock(&self.controller).iter().map(view).collect();
        out.extend(lock(&self.standby).iter().map(view));
        out
    }

    /// Kills the instance that leads (by pid, SIGKILL) and waits until another is MASTER on
    /// every bridge; the API is called on a survivor from then on.
    fn kill_leader(&self) -> anyhow::Result<String> {
        let n = self.hvs.len();
        let leader = self
            .cluster_views()
            .into_iter()
            .find(|(_, v)| v["standing"] == "leader")
            .map(|(pid, _)| pid)
            .ok_or_else(|| anyhow!("no instance leads"))?;
        let killed_at = Instant::now();
        {
            let mut api = lock(&self.controller);
            let mut standby = lock(&self.standby);
            if api.as_ref().is_some_and(|c| c.pid() == leader) {
                if let Some(mut c) = api.take() {
                    c.kill();
                }
                *api = (!standby.is_empty()).then(|| standby.remove(0));
            } else if let Some(i) = standby.iter().position(|c| c.pid() == leader) {
                standby.remove(i).kill();
            }
        }
        let (pid, v) = self.wait_leader(killed_at)?;
        Ok(format!(
            "leader pid {leader} killed; pid {pid} MASTER on {n} bridges after {:.0} ms (claim \
             {:.1} ms after the lock)",
            killed_at.elapsed().as_secs_f64() * 1e3,
            v["last_claim_ms"].as_f64().unwrap_or(f64::NAN)
        ))
    }

    /// Waits until one instance leads with MASTER confirmed on every bridge, and makes it the
    /// one the API calls go to; its pid and `GET /v1/cluster`.
    fn wait_leader(&self, since: Instant) -> anyhow::Result<(u32, Value)> {
        let n = self.hvs.len() as u64;
        while since.elapsed() < CONNECT_TIMEOUT {
            self.check_stop()?;
            let claimed = self.cluster_views().into_iter().find(|(_, v)| {
                v["standing"] == "leader" && v["switches_master"].as_u64() == Some(n)
            });
            if let Some((pid, v)) = claimed {
                self.call_api_on(pid);
                return Ok((pid, v));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("no instance became MASTER on every bridge within {CONNECT_TIMEOUT:?}")
    }

    /// Makes the instance with `pid` the one the API calls go to (the leader: followers do not
    /// program, so only the leader knows whether a bridge is).
    fn call_api_on(&self, pid: u32) {
        let mut api = lock(&self.controller);
        let mut standby = lock(&self.standby);
        if api.as_ref().is_some_and(|c| c.pid() == pid) {
            return;
        }
        if let Some(i) = standby.iter().position(|c| c.pid() == pid) {
            let leader = standby.remove(i);
            if let Some(old) = api.replace(leader) {
                standby.push(old);
            }
        }
    }

    /// Stops the northbound cluster's leader member and waits until an instance leads again
    /// with MASTER on every bridge.
    fn kill_nb_leader(&self) -> anyhow::Result<String> {
        let nb = self.nb_cluster.as_ref().ok_or_else(|| anyhow!("no northbound cluster"))?;
        let m = nb.leader().ok_or_else(|| anyhow!("the northbound cluster has no leader"))?;
        let start = Instant::now();
        nb.members()[m].stop();
        // The instances notice the member gone at once: give them that moment.
        std::thread::sleep(Duration::from_millis(200));
        let (pid, _) = self.wait_leader(start)?;
        Ok(format!(
            "member {} stopped; pid {pid} leads, MASTER on {} bridges, {:.0} ms later",
            m + 1,
            self.hvs.len(),
            start.elapsed().as_secs_f64() * 1e3
        ))
    }

    fn restart_controller(&self) -> anyhow::Result<String> {
        let cfg =
            self.ctl_cfg.as_ref().ok_or_else(|| anyhow!("the controller was never started"))?;
        let start = Instant::now();
        let mut g = lock(&self.controller);
        let was = match g.take() {
            Some(mut c) => {
                c.stop();
                "stopped"
            }
            None => "was not running",
        };
        let down = start.elapsed().as_secs_f64() * 1e3;
        let c = ControllerProc::start(cfg)?;
        let (api, pid) = (c.api.clone(), c.pid());
        *g = Some(c);
        drop(g);
        let back = self.wait_switches(&api)?;
        // The desired taps live in the northbound database, which outlives the controller:
        // every tap acknowledged before must still be there.
        let (services, flows) = {
            let t = lock(&self.taps);
            (t.services.clone(), t.flows.clone())
        };
        for (name, (id, _)) in &services {
            self.api_call("GET", &format!("/v1/tap_services/{id}"), None)
                .with_context(|| format!("tap service {name} after the restart"))?;
        }
        for (name, id) in &flows {
            self.api_call("GET", &format!("/v1/tap_flows/{id}"), None)
                .with_context(|| format!("tap flow {name} after the restart"))?;
        }
        Ok(format!(
            "{was} in {down:.0} ms, new pid {pid}, switches ready after {back:.0} ms, \
             {} services and {} flows still in the northbound database",
            services.len(),
            flows.len()
        ))
    }

    /// Stops running pings (one, or all); returns their names.
    fn stop_pings(&self, tl0: Instant, only: Option<&str>) -> Vec<String> {
        let procs: Vec<PingProc> = {
            let mut g = lock(&self.pings);
            let (stop, keep): (Vec<PingProc>, Vec<PingProc>) =
                g.drain(..).partition(|p| only.is_none_or_eq(&p.outcome.name));
            *g = keep;
            stop
        };
        let mut names = Vec::new();
        for p in procs {
            let o = p.stop(tl0.elapsed().as_secs_f64());
            names.push(format!("{} ({}/{})", o.name, o.received, o.sent));
            lock(&self.finished_pings).push(o);
        }
        names
    }

    /// Stops running streams (one, or all); returns their names.
    fn stop_streams(&self, tl0: Instant, only: Option<&str>) -> Vec<String> {
        let procs: Vec<StreamProc> = {
            let mut g = lock(&self.streams);
            let (stop, keep): (Vec<StreamProc>, Vec<StreamProc>) =
                g.drain(..).partition(|p| only.is_none_or_eq(&p.outcome.name));
            *g = keep;
            stop
        };
        // Each stop waits for its processes: stop them side by side.
        let outcomes: Vec<StreamOutcome> = thread::scope(|sc| {
            let hs: Vec<_> = procs
                .into_iter()
                .map(|p| sc.spawn(move || p.stop(tl0.elapsed().as_secs_f64())))
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut names = Vec::new();
        for o in outcomes {
            names.push(format!("{} ({}/{})", o.name, o.received, o.sent));
            lock(&self.finished_streams).push(o);
        }
        names
    }

    // ---- the end ----

    /// Lets pings finish (or stops them), checks leftovers, stops the collectors.
    fn finish(&mut self, tl0: Instant, completed: bool) -> Facts {
        if completed {
            let deadline = lock(&self.pings)
                .iter()
                .map(|p| p.deadline)
                .chain(lock(&self.streams).iter().map(|p| p.deadline))
                .max();
            if let Some(d) = deadline {
                let running = lock(&self.pings).len() + lock(&self.streams).len();
                self.progress.say(&format!("waiting for {running} pings and streams to finish"));
                while Instant::now() < d && !self.stop.is_set() {
                    if lock(&self.pings).iter_mut().all(|p| !p.running())
                        && lock(&self.streams).iter_mut().all(|p| !p.running())
                    {
                        break;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        self.stop_pings(tl0, None);
        self.stop_streams(tl0, None);
        let mut facts = Facts::default();
        if completed {
            self.check_leftovers(&mut facts);
            // Copies in flight reach the collectors.
            self.stop.sleep(Duration::from_millis(300));
        }
        for (name, col) in self.collectors.iter_mut() {
            match col.stop() {
                Ok(cap) => {
                    facts.captures.insert(name.clone(), cap);
                }
                Err(e) => self.progress.say(&format!("collector {name}: {e}")),
            }
        }
        let taps = lock(&self.taps);
        for s in &self.spec.tap_services {
            facts.services.insert(
                s.name.clone(),
                ServiceFacts {
                    tenant: s.tenant.clone(),
                    encap: s.encap,
                    collector: s.collector.clone(),
                    key: taps.services.get(&s.name).map(|x| x.1),
                },
            );
        }
        drop(taps);
        facts.vms = lock(&self.vm_facts).clone();
        for p in lock(&self.finished_pings).drain(..) {
            facts.pings.insert(p.name.clone(), p);
        }
        for x in lock(&self.finished_streams).drain(..) {
            facts.streams.insert(x.name.clone(), x);
        }
        facts.reprograms = lock(&self.reprograms).clone();
        if let Some(mut c) = lock(&self.controller).take() {
            facts.stats = http::request_to(&c.api, c.token.as_deref(), "GET", "/v1/stats", None)
                .ok()
                .and_then(|(_, v)| v.get("reprogram_ms").cloned());
            c.stop();
        }
        facts
    }

    fn check_leftovers(&self, facts: &mut Facts) {
        for e in &self.spec.expects {
            let (hv_name, within, flows) = match e {
                Expect::NoLeftoverFlows { hypervisor, within_s } => (hypervisor, within_s, true),
                Expect::NoLeftoverTunnelPorts { hypervisor, within_s } => {
                    (hypervisor, within_s, false)
                }
                _ => continue,
            };
            let Some(hv) = self.hvs.get(hv_name) else { continue };
            let start = Instant::now();
            let result = loop {
                let r = if flows { ovs::leftover_flows(hv) } else { ovs::tunnel_ports(hv) };
                let done = matches!(&r, Ok(v) if v.is_empty());
                if done || start.elapsed().as_secs_f64() >= *within || self.stop.is_set() {
                    break r;
                }
                thread::sleep(Duration::from_millis(200));
            };
            let l = match result {
                Ok(v) => Leftovers::Found(v),
                Err(e) => Leftovers::Unreadable(format!("{e:#}")),
            };
            if flows {
                facts.leftover_flows.insert(hv_name.clone(), l);
            } else {
                facts.leftover_tunnels.insert(hv_name.clone(), l);
            }
        }
    }

    fn take_steps(&self) -> Vec<StepRecord> {
        let mut v = std::mem::take(&mut *lock(&self.steps));
        v.sort_by_key(|s| s.index);
        v
    }

    /// Copies the controller log, each hypervisor's OVS logs and the captures to `dir`.
    fn copy_logs(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let src = self.lab.dir();
        let mut files = vec![(src.join("controller.log"), "controller.log".to_string())];
        for name in self.hvs.keys() {
            for f in ["vswitchd.log", "ovsdb.log"] {
                files.push((src.join(name).join(f), format!("{name}-{f}")));
            }
        }
        for (name, collector) in &self.collectors {
            files.push((src.join(format!("{name}.jsonl")), format!("{name}.jsonl")));
            // The pcap files too: they alone show which UDP or TCP packet a copy carried.
            if let Ok(entries) = std::fs::read_dir(collector.pcap_dir()) {
                std::fs::create_dir_all(dir.join(format!("{name}-pcap")))
                    .with_context(|| format!("creating {}", dir.display()))?;
                for e in entries.flatten() {
                    let to = format!("{name}-pcap/{}", e.file_name().to_string_lossy());
                    files.push((e.path(), to));
                }
            }
        }
        for (from, to) in files {
            if from.exists() {
                std::fs::copy(&from, dir.join(&to))
                    .with_context(|| format!("copying {}", from.display()))?;
            }
        }
        Ok(())
    }
}

/// `Option<&str>` matching helpers.
trait OptExt {
    fn is_none_or_eq(&self, v: &str) -> bool;
}

impl OptExt for Option<&str> {
    fn is_none_or_eq(&self, v: &str) -> bool {
        self.is_none_or(|x| x == v)
    }
}

/// An optional value that is absent or differs.
trait NoneOrNe {
    fn is_none_or_ne(&self, v: &str) -> bool;
}

impl NoneOrNe for Option<&String> {
    fn is_none_or_ne(&self, v: &str) -> bool {
        self.is_none_or(|x| x != v)
    }
}

/// A JSON field that is absent or not `null`.
trait NotNull {
    fn is_none_or_not_null(&self) -> bool;
}

impl NotNull for Option<&Value> {
    fn is_none_or_not_null(&self) -> bool {
        self.is_none_or(|v| !v.is_null())
    }
}
