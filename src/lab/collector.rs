//! A mirror collector: the program that receives VXLAN and GRE copies and writes one JSON line
//! per frame, and the [`Collector`] handle that runs it in its own namespace on the underlay.
//!
//! The program listens on UDP 4789 (a plain socket) and on a raw `IPPROTO_GRE` socket (which
//! std cannot open, hence `socket2`). Having both sockets open also keeps the kernel from answering
//! the copies with ICMP port/protocol unreachable. It prints `ready` on stdout once both sockets
//! are open, and stops when its stdin closes (or on SIGTERM, whose default action is fine since
//! each line is flushed as it is written).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};

use super::cmd::{self, Cmd};
use super::frame::{Capture, Frame};
use super::{Endpoint, LabError, LabInner, Result, UNDERLAY_PREFIX_LEN};

/// IP protocol number of GRE.
const IPPROTO_GRE: i32 = 47;
/// How often the receive loops look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
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
    /// Do not open the raw GRE socket.
    #[arg(long)]
    pub no_gre: bool,
}

/// Why the collector program stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// A socket or the output file could not be opened or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> CollectorError {
    let what = what.into();
    move |source| CollectorError::Io { what, source }
}

/// Runs the collector program: opens its sockets, prints `ready`, records frames until stdin
/// closes.
pub fn run(args: &CollectorArgs) -> std::result::Result<(), CollectorError> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = io::stdin();
        // EOF or an error both mean our parent is gone or wants us to stop.
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        flag.store(true, Ordering::Relaxed);
    });
    run_until(args, &stop, || {
        println!("ready");
        let _ = io::stdout().flush();
    })
}

/// Runs the collector until `stop` is set, calling `ready` once its sockets are open.
pub fn run_until(
    args: &CollectorArgs,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> std::result::Result<(), CollectorError> {
    let out = File::create(&args.output)
        .map_err(io_err(format!("creating {}", args.output.display())))?;
    let out = Mutex::new(io::LineWriter::new(out));
    let udp = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, args.vxlan_port))
        .map_err(io_err(format!("binding UDP port {}", args.vxlan_port)))?;
    udp.set_read_timeout(Some(POLL)).map_err(io_err("setting a UDP read timeout"))?;
    let gre = if args.no_gre {
        None
    } else {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_GRE)))
            .map_err(io_err("opening a raw GRE socket"))?;
        s.set_read_timeout(Some(POLL)).map_err(io_err("setting a GRE read timeout"))?;
        Some(s)
    };
    ready();
    let write = |frame: Frame| -> std::result::Result<(), CollectorError> {
        let line = serde_json::to_string(&frame).unwrap_or_default();
        let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(w, "{line}").map_err(io_err(format!("writing {}", args.output.display())))
    };
    thread::scope(|s| {
        let gre_loop = gre.as_ref().map(|sock| {
            s.spawn(|| -> std::result::Result<(), CollectorError> {
                let mut buf = vec![0u8; 65536];
                let mut reader: &Socket = sock;
                while !stop.load(Ordering::Relaxed) {
                    match reader.read(&mut buf) {
                        Ok(n) => {
                            if let Some(f) =
                                buf.get(..n).and_then(|p| Frame::parse_gre(p, now_ns()))
                            {
                                write(f)?;
                            }
                        }
                        Err(e) if is_timeout(&e) => {}
                        Err(e) => return Err(io_err("receiving GRE")(e)),
                    }
                }
                Ok(())
            })
        });
        let mut buf = vec![0u8; 65536];
        let mut result = Ok(());
        while !stop.load(Ordering::Relaxed) {
            match udp.recv_from(&mut buf) {
                Ok((n, SocketAddr::V4(from))) => {
                    if let Some(f) =
                        buf.get(..n).and_then(|p| Frame::parse_vxlan(p, *from.ip(), now_ns()))
                    {
                        if let Err(e) = write(f) {
                            result = Err(e);
                            break;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => {
                    result = Err(io_err("receiving VXLAN")(e));
                    break;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let gre_result = gre_loop.map(|h| h.join().unwrap_or(Ok(()))).unwrap_or(Ok(()));
        result.and(gre_result)
    })
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// A collector of the lab: a namespace on the underlay running the collector program.
pub struct Collector {
    lab: Arc<LabInner>,
    name: String,
    netns: String,
    ip: Ipv4Addr,
    mac: String,
    output: PathBuf,
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
        let cmd = Cmd::in_netns(&self.netns, &program.to_string_lossy())
            .args(leading)
            .arg("--output")
            .arg(&self.output);
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

    /// Everything recorded so far.
    pub fn capture(&self) -> Result<Capture> {
        match std::fs::read_to_string(&self.output) {
            Ok(text) => Ok(Capture::from_json_lines(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Capture::default()),
            Err(source) => {
                Err(LabError::Io { what: format!("reading {}", self.output.display()), source })
            }
        }
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
