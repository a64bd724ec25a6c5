//! `periscope collector`: the reference mirror collector. It receives VXLAN (UDP) copies, and GRE
//! and ERSPAN (Type II and III, over GRE) copies on a raw IP protocol 47 socket, splits them by
//! (encapsulation, key), counts frames and bytes per key,
//! writes one pcap file per key and optionally one JSON line per frame, and prints a summary
//! table periodically and when it stops (SIGINT, SIGTERM, or stdin EOF with `--stdin-stop`).
//!
//! The lab's collector program (`periscope-lab-collector`) is this same code.
//!
//! Bounded: at most `--max-keys` tunnels get a row and a pcap file (the rest are counted as
//! "other"), at most 64 pcap files are open at once, and a receive buffer of 65536 bytes holds
//! any IPv4 datagram whole.

pub mod decap;
pub mod pcap;
pub mod record;
pub mod recorder;
pub mod tally;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};

pub use decap::{Encap, ErspanDirection, ErspanMeta, Malformed, Tunnel};
pub use record::{EchoKind, Frame, IcmpEcho};
pub use recorder::Recorder;
pub use tally::{KeyStats, Tally};

/// IP protocol number of GRE.
const IPPROTO_GRE: i32 = 47;
/// How often the receive loops and the main loop look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// How often pcap files are flushed, so that they can be read while the collector runs.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Receive buffer: any IPv4 datagram fits, so nothing is ever cut.
const RECV_BUF: usize = 65_536;
/// Socket receive buffer asked of the kernel, for bursts of copies.
const SOCKET_RCVBUF: usize = 4 << 20;

/// Options of `periscope collector`.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectorArgs {
    /// Address to receive copies on (the tunnel destination); 0.0.0.0 for every address.
    #[arg(long, value_name = "IP")]
    pub listen: Ipv4Addr,
    /// UDP port VXLAN copies arrive on (0: any free port, printed on stderr).
    #[arg(long, default_value_t = 4789, value_name = "PORT")]
    pub vxlan_port: u16,
    /// Do not open the raw GRE socket, which receives GRE and ERSPAN copies (it needs root or
    /// CAP_NET_RAW).
    #[arg(long)]
    pub no_gre: bool,
    /// Directory for one pcap file per key: `vxlan-<key>.pcap`, `gre-<key>.pcap`,
    /// `erspan_v1-<session>.pcap`, `erspan_v2-<session>.pcap`.
    #[arg(long, value_name = "DIR")]
    pub pcap_dir: Option<PathBuf>,
    /// File for one JSON object per frame.
    #[arg(long, value_name = "FILE.jsonl")]
    pub output: Option<PathBuf>,
    /// Print the summary table every this many seconds (0: only when stopping).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub summary_every: u64,
    /// At most this many distinct (encapsulation, key) get a row and a pcap file; frames of
    /// further keys are counted as "other".
    #[arg(long, default_value_t = 1024, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub max_keys: u32,
    /// Also stop when stdin reaches end of file (for a supervising process).
    #[arg(long)]
    pub stdin_stop: bool,
    /// Print `ready` on stdout once the sockets are open (for a supervising process).
    #[arg(long)]
    pub ready: bool,
}

/// What a collector run does; [`CollectorArgs`] without the process concerns.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the sockets are bound to.
    pub listen: Ipv4Addr,
    /// UDP port for VXLAN (0: any free port).
    pub vxlan_port: u16,
    /// Whether to open the raw GRE socket (GRE and ERSPAN copies).
    pub gre: bool,
    /// Directory for the pcap files.
    pub pcap_dir: Option<PathBuf>,
    /// File for the JSON lines.
    pub output: Option<PathBuf>,
    /// How often to call the summary callback (`None`: never while running).
    pub summary_every: Option<Duration>,
    /// Key limit.
    pub max_keys: usize,
}

impl From<&CollectorArgs> for Config {
    fn from(a: &CollectorArgs) -> Config {
        Config {
            listen: a.listen,
            vxlan_port: a.vxlan_port,
            gre: !a.no_gre,
            pcap_dir: a.pcap_dir.clone(),
            output: a.output.clone(),
            summary_every: (a.summary_every > 0).then(|| Duration::from_secs(a.summary_every)),
            max_keys: a.max_keys as usize,
        }
    }
}

/// Where a running collector listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    /// The VXLAN UDP socket's address (with the actual port when 0 was asked).
    pub vxlan: SocketAddrV4,
    /// The address of the raw GRE socket, if open.
    pub gre: Option<Ipv4Addr>,
}

/// Why the collector stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// A socket or an output file could not be opened or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> CollectorError {
    let what = what.into();
    move |source| CollectorError::Io { what, source }
}

/// Runs `periscope collector` until SIGINT, SIGTERM or (with `--stdin-stop`) stdin EOF, then
/// prints the final summary.
pub fn run(args: CollectorArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone()).context("installing SIGINT/SIGTERM handlers")?;
    if args.stdin_stop {
        stop_on_stdin_eof(stop.clone());
    }
    let config = Config::from(&args);
    let tally = run_until(
        &config,
        &stop,
        |at| {
            eprintln!("{}", listening_line(&config, at));
            if args.ready {
                print_ignoring_errors("ready\n");
            }
        },
        |tally| print_ignoring_errors(&format!("{}\n", tally.summary())),
    )?;
    print_ignoring_errors(&tally.summary().to_string());
    Ok(ExitCode::SUCCESS)
}

fn listening_line(config: &Config, at: &Listening) -> String {
    let mut line = format!("periscope collector: vxlan on udp {}", at.vxlan);
    if let Some(ip) = at.gre {
        line += &format!(", gre on raw ip {ip}");
    }
    if let Some(dir) = &config.pcap_dir {
        line += &format!(", pcap files in {}", dir.display());
    }
    line
}

/// Writes to stdout; a reader that went away (a supervisor that read `ready` and closed the
/// pipe) must not stop the collector.
fn print_ignoring_errors(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Sets `stop` on SIGINT or SIGTERM, from a small current-thread runtime in its own thread.
/// The handlers are installed before this returns.
pub fn stop_on_signals(stop: Arc<AtomicBool>) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    let (mut int, mut term) = {
        let _guard = rt.enter();
        (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?)
    };
    thread::Builder::new().name("collector-signals".into()).spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        stop.store(true, Ordering::Relaxed);
    })?;
    Ok(())
}

/// Sets `stop` when stdin reaches end of file (or fails): the parent is gone or wants us to stop.
pub fn stop_on_stdin_eof(stop: Arc<AtomicBool>) {
    thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        stop.store(true, Ordering::Relaxed);
    });
}

/// Runs a collector until `stop` is set: opens the sockets, calls `ready`, records every
/// datagram, calls `summary` every `config.summary_every`, and returns the final counters.
pub fn run_until(
    config: &Config,
    stop: &AtomicBool,
    ready: impl FnOnce(&Listening),
    mut summary: impl FnMut(&Tally),
) -> Result<Tally, CollectorError> {
    let recorder =
        Recorder::new(config.pcap_dir.as_deref(), config.output.as_deref(), config.max_keys)?;
    let recorder = Mutex::new(recorder);
    let udp = open_udp(config.listen, config.vxlan_port)?;
    let vxlan = match udp.local_addr().map_err(io_err("reading the UDP socket's address"))? {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => SocketAddrV4::new(config.listen, a.port()),
    };
    let gre = if config.gre { Some(open_gre(config.listen)?) } else { None };
    ready(&Listening { vxlan, gre: gre.as_ref().map(|_| config.listen) });

    let result = thread::scope(|s| {
        let vxlan_loop = s.spawn(|| stopping(stop, receive_vxlan(&udp, stop, &recorder)));
        let gre_loop =
            gre.as_ref().map(|sock| s.spawn(|| stopping(stop, receive_gre(sock, stop, &recorder))));
        let mut last_flush = Instant::now();
        let mut last_summary = Instant::now();
        let mut result = Ok(());
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(POLL);
            if last_flush.elapsed() >= FLUSH_EVERY {
                last_flush = Instant::now();
                if let Err(e) = lock(&recorder).flush() {
                    result = Err(e);
                    break;
                }
            }
            if let Some(every) = config.summary_every {
                if last_summary.elapsed() >= every {
                    last_summary = Instant::now();
                    // A copy, so that a slow reader of the summary never holds up receiving.
                    let tally = lock(&recorder).tally().clone();
                    summary(&tally);
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let joined = |h: thread::ScopedJoinHandle<'_, Result<(), CollectorError>>| {
            h.join().unwrap_or_else(|_| {
                Err(CollectorError::Io {
                    what: "a receive loop panicked".into(),
                    source: io::Error::other("panic"),
                })
            })
        };
        let vxlan_result = joined(vxlan_loop);
        let gre_result = gre_loop.map(joined).unwrap_or(Ok(()));
        result.and(vxlan_result).and(gre_result)
    });
    let mut recorder = recorder.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let flushed = recorder.flush();
    result.and(flushed)?;
    Ok(recorder.tally().clone())
}

/// The recorder, also after a panic elsewhere (its counters stay usable).
fn lock(r: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    r.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sets `stop` when a receive loop ends, so that the others end too.
fn stopping(stop: &AtomicBool, r: Result<(), CollectorError>) -> Result<(), CollectorError> {
    stop.store(true, Ordering::Relaxed);
    r
}

fn open_udp(listen: Ipv4Addr, port: u16) -> Result<UdpSocket, CollectorError> {
    let at = SocketAddrV4::new(listen, port);
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(io_err("opening a UDP socket"))?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(SOCKET_RCVBUF);
    s.bind(&SocketAddr::V4(at).into()).map_err(io_err(format!("binding UDP {at}")))?;
    s.set_read_timeout(Some(POLL)).map_err(io_err("setting a UDP read timeout"))?;
    Ok(s.into())
}

fn open_gre(listen: Ipv4Addr) -> Result<Socket, CollectorError> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_GRE)))
        .map_err(io_err("opening a raw GRE socket (needs root or CAP_NET_RAW; or --no-gre)"))?;
    let _ = s.set_recv_buffer_size(SOCKET_RCVBUF);
    s.bind(&SocketAddr::V4(SocketAddrV4::new(listen, 0)).into())
        .map_err(io_err(format!("binding the raw GRE socket to {listen}")))?;
    s.set_read_timeout(Some(POLL)).map_err(io_err("setting a GRE read timeout"))?;
    Ok(s)
}

fn receive_vxlan(
    udp: &UdpSocket,
    stop: &AtomicBool,
    recorder: &Mutex<Recorder>,
) -> Result<(), CollectorError> {
    let mut buf = vec![0u8; RECV_BUF];
    while !stop.load(Ordering::Relaxed) {
        match udp.recv_from(&mut buf) {
            Ok((n, SocketAddr::V4(from))) => {
                let t_ns = now_ns();
                let payload = buf.get(..n).unwrap_or_default();
                lock(recorder).record_vxlan(payload, *from.ip(), t_ns)?;
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(io_err("receiving VXLAN")(e)),
        }
    }
    Ok(())
}

fn receive_gre(
    sock: &Socket,
    stop: &AtomicBool,
    recorder: &Mutex<Recorder>,
) -> Result<(), CollectorError> {
    let mut buf = vec![0u8; RECV_BUF];
    let mut reader: &Socket = sock;
    while !stop.load(Ordering::Relaxed) {
        match reader.read(&mut buf) {
            Ok(n) => {
                let t_ns = now_ns();
                let packet = buf.get(..n).unwrap_or_default();
                lock(recorder).record_gre(packet, t_ns)?;
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(io_err("receiving GRE")(e)),
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::decap::tests::{inner_echo, vxlan};
    use super::recorder::tests::TempDir;
    use super::*;

    /// A collector on loopback (VXLAN only, any free port) receives datagrams end to end and
    /// stops when told, with pcap files and counters to show for it.
    #[test]
    fn collector_on_loopback_records_and_stops() {
        let tmp = TempDir::new();
        let config = Config {
            listen: Ipv4Addr::LOCALHOST,
            vxlan_port: 0,
            gre: false,
            pcap_dir: Some(tmp.0.join("pcap")),
            output: Some(tmp.0.join("frames.jsonl")),
            summary_every: Some(Duration::from_millis(100)),
            max_keys: 8,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (stx, srx) = mpsc::channel();
        let handle = {
            let stop = stop.clone();
            thread::spawn(move || {
                run_until(
                    &config,
                    &stop,
                    |at| tx.send(at.vxlan).unwrap_or(()),
                    |t| {
                        let _ = stx.send(t.frames_total());
                    },
                )
            })
        };
        let at = rx.recv_timeout(Duration::from_secs(5)).expect("ready");
        let tx_sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("sender");
        for _ in 0..3 {
            tx_sock.send_to(&vxlan(100), at).expect("send");
        }
        tx_sock.send_to(&[0x08, 0, 0], at).expect("send a runt");
        let deadline = Instant::now() + Duration::from_secs(5);
        while srx.recv_timeout(Duration::from_secs(1)).map_or(true, |n| n < 3) {
            assert!(Instant::now() < deadline, "the summary never showed 3 frames");
        }
        stop.store(true, Ordering::Relaxed);
        let tally = handle.join().expect("no panic").expect("clean stop");
        let vx = Tunnel { encap: Encap::Vxlan, key: Some(100) };
        assert_eq!(
            tally.get(vx).map(|s| (s.frames, s.bytes)),
            Some((3, 3 * inner_echo().len() as u64))
        );
        assert_eq!(tally.malformed().get("vxlan-truncated").map(|m| m.count), Some(1));
        let bytes = std::fs::read(tmp.0.join("pcap/vxlan-100.pcap")).expect("pcap file");
        assert_eq!(pcap::parse(&bytes).expect("pcap").records.len(), 3);
    }

    #[test]
    fn a_port_in_use_is_an_error_naming_it() {
        let taken = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let config = Config {
            listen: Ipv4Addr::LOCALHOST,
            vxlan_port: port,
            gre: false,
            pcap_dir: None,
            output: None,
            summary_every: None,
            max_keys: 1,
        };
        let e = run_until(&config, &AtomicBool::new(false), |_| {}, |_| {}).expect_err("in use");
        assert!(e.to_string().contains(&format!("binding UDP 127.0.0.1:{port}")), "{e}");
    }
}
