//! The lab's mirror collector: the program that receives VXLAN, GRE and ERSPAN copies and writes
//! one JSON line per frame, and the [`Collector`] handle that runs it in its own namespace on the
//! underlay.
//!
//! The program is the product collector ([`crate::collector`]) with the lab's settings: every
//! address, no pcap files, no summary, `ready` on stdout once its sockets are open, and a stop
//! when its stdin closes (or on SIGINT/SIGTERM). Each line is flushed as it is written.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use crate::collector::CollectorError;

use super::cmd::{self, Cmd};
use super::frame::Capture;
use super::{Endpoint, LabError, LabInner, Result, UNDERLAY_PREFIX_LEN};

/// How long a collector may take to open its sockets.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of the collector program.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectorArgs {
    /// File the frames are written to, one JSON object per line.
    #[arg(long)]
    pub output: PathBuf,
    /// UDP port VXLAN copies arrive on.
    #[arg(long, default_value_t = 4789)]
    pub vxlan_port: u16,
    /// Do not open the raw GRE socket (which receives GRE and ERSPAN copies).
    #[arg(long)]
    pub no_gre: bool,
    /// Directory for one pcap file per key (the UDP and TCP analyses read them).
    #[arg(long)]
    pub pcap_dir: Option<PathBuf>,
}

impl CollectorArgs {
    /// The product collector's configuration for these options.
    pub fn config(&self) -> crate::collector::Config {
        crate::collector::Config {
            listen: Ipv4Addr::UNSPECIFIED,
            vxlan_port: self.vxlan_port,
            gre: !self.no_gre,
            pcap_dir: self.pcap_dir.clone(),
            output: Some(self.output.clone()),
            summary_every: None,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// The key limit of the lab's collector (the product's default); JSON lines are written for
/// every frame whatever its key.
const DEFAULT_MAX_KEYS: usize = 1024;

/// Runs the collector program: opens its sockets, prints `ready`, records frames until stdin
/// closes or SIGINT/SIGTERM arrives.
pub fn run(args: &CollectorArgs) -> std::result::Result<(), CollectorError> {
    let stop = Arc::new(AtomicBool::new(false));
    crate::collector::stop_on_stdin_eof(stop.clone());
    // Without the handlers, the default action of SIGTERM (exit) is fine too: lines are flushed.
    let _ = crate::collector::stop_on_signals(stop.clone());
    run_until(args, &stop, || {
        let mut out = io::stdout().lock();
        let _ = out.write_all(b"ready\n").and_then(|()| out.flush());
    })
}

/// Runs the collector until `stop` is set, calling `ready` once its sockets are open.
pub fn run_until(
    args: &CollectorArgs,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> std::result::Result<(), CollectorError> {
    crate::collector::run_until(&args.config(), stop, |_| ready(), |_| {}).map(|_| ())
}

/// A collector of the lab: a namespace on the underlay running the collector program.
pub struct Collector {
    lab: Arc<LabInner>,
    name: String,
    netns: String,
    ip: Ipv4Addr,
    mac: String,
    output: PathBuf,
    pcap_dir: PathBuf,
    child: Option<u64>,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector").field("name", &self.name).field("ip", &self.ip).finish()
    }
}

impl Collector {
    pub(crate) fn create(lab: &Arc<LabInner>, name: &str) -> Result<Collector> {
        lab.check_name("collector name", name)?;
        let index = lab.next_index();
        if index > 150 {
            return Err(LabError::Invalid {
                field: "collector count",
                value: index.to_string(),
                expected: "at most 150 hypervisors, VMs and collectors per lab",
            });
        }
        let c = Collector {
            lab: lab.clone(),
            name: name.to_string(),
            netns: format!("{}-{name}", lab.prefix),
            ip: Ipv4Addr::new(192, 0, 2, 100 + index as u8),
            mac: format!("02:50:00:00:02:{index:02x}"),
            output: lab.dir.join(format!("{name}.jsonl")),
            pcap_dir: lab.dir.join(format!("{name}-pcap")),
            child: None,
        };
        lab.add_netns(&c.netns)?;
        let fab_end = format!("col{index}");
        Cmd::new("ip")
            .args(["-n", &lab.fabric, "link", "add", &fab_end, "type", "veth"])
            .args(["peer", "name", "eth0", "netns", &c.netns])
            .run()?;
        Cmd::new("ip")
            .args(["-n", &lab.fabric, "link", "set", &fab_end, "master", "br0", "up"])
            .run()?;
        let ns_ip = |args: &[&str]| Cmd::new("ip").args(["-n", &c.netns]).args(args).run();
        ns_ip(&["link", "set", "eth0", "address", &c.mac])?;
        ns_ip(&["addr", "add", &format!("{}/{UNDERLAY_PREFIX_LEN}", c.ip), "dev", "eth0"])?;
        ns_ip(&["link", "set", "eth0", "up"])?;
        lab.add_endpoint(Endpoint { ip: c.ip, mac: c.mac.clone(), vswitchd_ctl: None })?;
        let mut c = c;
        c.start()?;
        Ok(c)
    }

    /// Starts the collector program and waits until it listens.
    fn start(&mut self) -> Result<()> {
        let (program, leading) = self.lab.collector_command()?;
        // A command that names its own pcap directory keeps it; the capture reads it there.
        let given = leading.iter().position(|a| a == "--pcap-dir");
        if let Some(dir) = given.and_then(|i| leading.get(i + 1)) {
            self.pcap_dir = PathBuf::from(dir);
        }
        let mut cmd = Cmd::in_netns(&self.netns, &program.to_string_lossy())
            .args(leading.clone())
            .arg("--output")
            .arg(&self.output);
        if given.is_none() {
            cmd = cmd.arg("--pcap-dir").arg(&self.pcap_dir);
        }
        let mut child: Child = cmd.spawn_group(Stdio::piped(), Stdio::piped(), Stdio::inherit())?;
        let stdout = child.stdout.take();
        let id = self.lab.add_child(&cmd.display(), child);
        self.child = Some(id);
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = stdout {
            thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
        }
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) if line.trim() == "ready" => Ok(()),
            Ok(line) => Err(LabError::Output { command: cmd.display(), output: line }),
            Err(_) => Err(LabError::Timeout { what: cmd.display(), after: READY_TIMEOUT }),
        }
    }

    /// The collector's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its network namespace.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Its underlay address: the tunnel destination for copies.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Its underlay MAC address.
    pub fn mac(&self) -> &str {
        &self.mac
    }

    /// The JSON-lines file it writes.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// The pid of the collector program while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.and_then(|id| self.lab.with_child(id, |c| c.id()))
    }

    /// The directory of its pcap files, one per key.
    pub fn pcap_dir(&self) -> &Path {
        &self.pcap_dir
    }

    /// Everything recorded so far: the frames of the JSON lines, and the UDP and TCP packets
    /// of the pcap files (flushed every second while it runs, completely once it stopped).
    pub fn capture(&self) -> Result<Capture> {
        let mut cap = match std::fs::read_to_string(&self.output) {
            Ok(text) => Capture::from_json_lines(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Capture::default(),
            Err(source) => {
                return Err(LabError::Io {
                    what: format!("reading {}", self.output.display()),
                    source,
                })
            }
        };
        cap.read_pcap_dir(&self.pcap_dir).map_err(|source| LabError::Io {
            what: format!("reading {}", self.pcap_dir.display()),
            source,
        })?;
        Ok(cap)
    }

    /// Waits until the capture satisfies `done`, and returns it; on timeout returns the capture
    /// as it is, so the caller's assertions show what was missing.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&Capture) -> bool) -> Result<Capture> {
        let start = Instant::now();
        loop {
            let c = self.capture()?;
            if done(&c) || start.elapsed() >= timeout {
                return Ok(c);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the collector program (closes its stdin, then kills it by pid if it lingers) and
    /// returns the final capture.
    pub fn stop(&mut self) -> Result<Capture> {
        if let Some(mut child) = self.child.take().and_then(|id| self.lab.take_child(id)) {
            drop(child.stdin.take());
            let exited = cmd::wait_for("the collector to exit", Duration::from_secs(2), || {
                child.try_wait().ok().flatten()
            });
            if exited.is_err() {
                cmd::stop_group(&mut child, Duration::from_secs(1));
            }
        }
        self.capture()
    }
}
