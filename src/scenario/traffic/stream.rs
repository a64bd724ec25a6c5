//! UDP streams and TCP transfers between VMs, next to the pings: a generator program
//! (`periscope scenario traffic ...`, hidden) runs in each VM's namespace the way `ping` does,
//! a receiver in the target first, then a sender in the source, and each prints one JSON line
//! saying what it saw when it ends. The runner's [`StreamProc`] owns both processes.
//!
//! ```text
//! udp datagram payload: "PSCU" | stream id u32 | seq u32 (from 1) | send time ns u64 | padding
//! tcp byte stream:      byte i = i mod 251 (the receiver checks every byte)
//! ```
//!
//! Every stream has its own ports (and UDP its own stream id), so collectors tell its copies
//! apart; a sender or a receiver stops when its stdin closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use socket2::{Domain, Socket, Type};

use crate::lab::frame::STREAM_MAGIC;

/// Bytes of the UDP payload header (magic, stream id, seq, send time).
pub const UDP_HEADER: usize = 20;
/// How long a sender tries to connect (the first packets to a new neighbor wait for ARP).
const CONNECT_FOR: Duration = Duration::from_secs(5);
/// How long a process may take to say `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The generator program's modes.
#[derive(Debug, clap::Subcommand)]
pub enum TrafficMode {
    /// Sends `count` UDP datagrams of `size` payload bytes at `rate` per second.
    UdpSend {
        /// Destination.
        #[arg(long)]
        to: SocketAddrV4,
        /// Source port.
        #[arg(long)]
        from_port: u16,
        /// Stream id written in every datagram.
        #[arg(long)]
        id: u32,
        /// Datagrams to send.
        #[arg(long)]
        count: u32,
        /// Datagrams per second.
        #[arg(long)]
        rate: u32,
        /// Payload bytes (at least 20).
        #[arg(long)]
        size: usize,
    },
    /// Receives the datagrams of stream `id` on `port` until stdin closes.
    UdpRecv {
        /// Port.
        #[arg(long)]
        port: u16,
        /// Stream id to count.
        #[arg(long)]
        id: u32,
    },
    /// Connects to `to` from `from_port` and writes `count` messages of `size` bytes, one
    /// every `interval_ms` (0: back to back), then closes.
    TcpSend {
        /// Destination.
        #[arg(long)]
        to: SocketAddrV4,
        /// Source port.
        #[arg(long)]
        from_port: u16,
        /// Messages.
        #[arg(long)]
        count: u32,
        /// Bytes per message.
        #[arg(long)]
        size: usize,
        /// Milliseconds between messages.
        #[arg(long)]
        interval_ms: u64,
    },
    /// Accepts one connection on `port` and reads it to its end (or until stdin closes).
    TcpRecv {
        /// Port.
        #[arg(long)]
        port: u16,
    },
}

/// What a generator process says when it ends (one JSON line on stdout).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndReport {
    /// Datagrams (UDP) or bytes (TCP) sent.
    #[serde(default)]
    pub sent: u64,
    /// Sends that failed (UDP: e.g. while the VM's interface is being replaced).
    #[serde(default)]
    pub send_errors: u64,
    /// Distinct sequence numbers received (UDP), sorted.
    #[serde(default)]
    pub seqs: Vec<u32>,
    /// Datagrams received more than once (UDP).
    #[serde(default)]
    pub duplicates: u64,
    /// Bytes received (TCP).
    #[serde(default)]
    pub bytes: u64,
    /// Every byte received was the one expected (TCP).
    #[serde(default)]
    pub intact: bool,
    /// The peer closed the connection (TCP).
    #[serde(default)]
    pub closed: bool,
    /// Arrival times (first arrival of each datagram; each read of TCP), ns since the epoch.
    #[serde(default)]
    pub times_ns: Vec<u64>,
    /// What went wrong, if something did.
    #[serde(default)]
    pub error: Option<String>,
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Sets the returned flag when stdin reaches its end.
fn stop_on_stdin_eof() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut input = std::io::stdin();
        while matches!(input.read(&mut sink), Ok(n) if n > 0) {}
        s.store(true, Ordering::Relaxed);
    });
    stop
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Runs the generator program; it always prints an [`EndReport`] line, with `error` set when
/// it could not do its work.
pub fn run(mode: &TrafficMode) {
    let stop = stop_on_stdin_eof();
    let report = match mode {
        TrafficMode::UdpSend { to, from_port, id, count, rate, size } => {
            udp_send(*to, *from_port, *id, *count, *rate, *size, &stop)
        }
        TrafficMode::UdpRecv { port, id } => udp_recv(*port, *id, &stop),
        TrafficMode::TcpSend { to, from_port, count, size, interval_ms } => {
            tcp_send(*to, *from_port, *count, *size, *interval_ms, &stop)
        }
        TrafficMode::TcpRecv { port } => tcp_recv(*port, &stop),
    };
    let report = report
        .unwrap_or_else(|e| EndReport { error: Some(format!("{e:#}")), ..EndReport::default() });
    say(&serde_json::to_string(&report).unwrap_or_default());
}

/// Sleeps until `due` or until `stop` is set; false when stopped.
fn pace(due: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        thread::sleep(left.min(Duration::from_millis(20)));
    }
}

fn udp_send(
    to: SocketAddrV4,
    from_port: u16,
    id: u32,
    count: u32,
    rate: u32,
    size: usize,
    stop: &AtomicBool,
) -> anyhow::Result<EndReport> {
    if rate == 0 || size < UDP_HEADER {
        bail!("rate must be positive and size at least {UDP_HEADER}");
    }
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, from_port))
        .with_context(|| format!("binding udp port {from_port}"))?;
    // Connected: Linux then numbers the datagrams' IP ids in sequence, like a TCP socket's.
    sock.connect(to).with_context(|| format!("connecting to {to}"))?;
    say("ready");
    let mut report = EndReport::default();
    let mut buf = vec![0u8; size];
    buf[..4].copy_from_slice(&STREAM_MAGIC);
    buf[4..8].copy_from_slice(&id.to_be_bytes());
    let t0 = Instant::now();
    for seq in 1..=count {
        let due = t0 + Duration::from_secs_f64(f64::from(seq - 1) / f64::from(rate));
        if !pace(due, stop) {
            break;
        }
        buf[8..12].copy_from_slice(&seq.to_be_bytes());
        buf[12..20].copy_from_slice(&now_ns().to_be_bytes());
        match sock.send(&buf) {
            Ok(_) => report.sent += 1,
            Err(_) => report.send_errors += 1,
        }
    }
    Ok(report)
}

fn udp_recv(port: u16, id: u32, stop: &AtomicBool) -> anyhow::Result<EndReport> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))
        .with_context(|| format!("binding udp port {port}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    say("ready");
    let mut report = EndReport::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = sock.recv(&mut buf) else { continue };
        let t = now_ns();
        let d = &buf[..n];
        if n < 12 || d[..4] != STREAM_MAGIC || d[4..8] != id.to_be_bytes() {
            continue;
        }
        let seq = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
        if seen.insert(seq) {
            report.times_ns.push(t);
        } else {
            report.duplicates += 1;
        }
    }
    report.seqs = seen.into_iter().collect();
    Ok(report)
}

/// The byte at offset `i` of every TCP transfer.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

fn connect_from(from_port: u16, to: SocketAddrV4, stop: &AtomicBool) -> anyhow::Result<TcpStream> {
    let start = Instant::now();
    loop {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        sock.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, from_port)).into())
            .with_context(|| format!("binding tcp port {from_port}"))?;
        match sock.connect_timeout(&SocketAddr::V4(to).into(), Duration::from_secs(1)) {
            Ok(()) => return Ok(sock.into()),
            Err(e) if start.elapsed() >= CONNECT_FOR || stop.load(Ordering::Relaxed) => {
                return Err(anyhow!("connecting to {to}: {e}"))
            }
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn tcp_send(
    to: SocketAddrV4,
    from_port: u16,
    count: u32,
    size: usize,
    interval_ms: u64,
    stop: &AtomicBool,
) -> anyhow::Result<EndReport> {
    let mut conn = connect_from(from_port, to, stop)?;
    say("ready");
    let mut report = EndReport::default();
    let t0 = Instant::now();
    let mut msg = vec![0u8; size];
    for n in 0..u64::from(count) {
        if !pace(t0 + Duration::from_millis(interval_ms.saturating_mul(n)), stop) {
            break;
        }
        for (k, b) in msg.iter_mut().enumerate() {
            *b = pattern(report.sent + k as u64);
        }
        conn.write_all(&msg).context("writing")?;
        report.sent += size as u64;
    }
    conn.shutdown(std::net::Shutdown::Write).context("closing")?;
    // Wait for the receiver's close, so the whole exchange (FINs and their ACKs) is on the wire.
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut sink = [0u8; 256];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
    report.closed = true;
    Ok(report)
}

fn tcp_recv(port: u16, stop: &AtomicBool) -> anyhow::Result<EndReport> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .with_context(|| format!("listening on tcp port {port}"))?;
    listener.set_nonblocking(true)?;
    say("ready");
    let mut report = EndReport { intact: true, ..EndReport::default() };
    let mut conn = loop {
        if stop.load(Ordering::Relaxed) {
            report.error = Some("no connection came".into());
            return Ok(report);
        }
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        match conn.read(&mut buf) {
            Ok(0) => {
                report.closed = true;
                break;
            }
            Ok(n) => {
                report.times_ns.push(now_ns());
                let base = report.bytes;
                report.intact &=
                    buf[..n].iter().enumerate().all(|(k, b)| *b == pattern(base + k as u64));
                report.bytes += n as u64;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                report.error = Some(format!("reading: {e}"));
                break;
            }
        }
    }
    Ok(report)
}

/// UDP or TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    /// Datagrams at a rate.
    Udp,
    /// One connection, paced messages.
    Tcp,
}

/// What a finished stream did, as the runner and the assertions see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamOutcome {
    /// The step's name.
    pub name: String,
    /// UDP or TCP.
    pub kind: StreamKind,
    /// Sending VM.
    pub from: String,
    /// Receiving VM.
    pub to: String,
    /// The sender's address.
    pub from_ip: Ipv4Addr,
    /// The receiver's address.
    pub to_ip: Ipv4Addr,
    /// The sender's port.
    pub src_port: u16,
    /// The receiver's port.
    pub dst_port: u16,
    /// The UDP stream id (0 for TCP).
    pub id: u32,
    /// UDP: datagrams sent; TCP: bytes written.
    pub sent: u64,
    /// UDP sends that failed.
    pub send_errors: u64,
    /// UDP: distinct datagrams received; TCP: bytes received.
    pub received: u64,
    /// UDP: the sequence numbers received, sorted.
    #[serde(skip)]
    pub seqs: Vec<u32>,
    /// UDP: datagrams the receiver got more than once (the network duplicated them).
    pub duplicates: u64,
    /// TCP: every byte received was the one sent, and the connection was closed cleanly.
    pub intact: bool,
    /// Arrival times at the receiver, ns since the epoch.
    #[serde(skip)]
    pub times_ns: Vec<u64>,
    /// The receiver's own longest silence between arrivals, in milliseconds.
    pub longest_gap_ms: Option<f64>,
    /// Milliseconds between datagrams (UDP) or messages (TCP).
    pub interval_ms: f64,
    /// Seconds after the timeline start when it started and ended.
    pub started_s: f64,
    /// See `started_s`.
    pub ended_s: f64,
    /// What went wrong, if something did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StreamOutcome {
    /// A stream between two VMs that has not run yet: nothing sent, nothing received, its
    /// addresses, ports and timing left for the caller to fill in.
    pub fn new(name: &str, kind: StreamKind, from: &str, to: &str) -> StreamOutcome {
        StreamOutcome {
            name: name.to_string(),
            kind,
            from: from.to_string(),
            to: to.to_string(),
            from_ip: Ipv4Addr::UNSPECIFIED,
            to_ip: Ipv4Addr::UNSPECIFIED,
            src_port: 0,
            dst_port: 0,
            id: 0,
            sent: 0,
            send_errors: 0,
            received: 0,
            seqs: Vec::new(),
            duplicates: 0,
            intact: true,
            times_ns: Vec::new(),
            longest_gap_ms: None,
            interval_ms: 0.0,
            started_s: 0.0,
            ended_s: 0.0,
            error: None,
        }
    }

    /// UDP sequence numbers in `1..=sent` that never arrived.
    pub fn lost(&self) -> Vec<u32> {
        let sent = u32::try_from(self.sent).unwrap_or(u32::MAX);
        (1..=sent).filter(|s| self.seqs.binary_search(s).is_err()).collect()
    }

    /// Fills in what the sender and the receiver reported.
    pub fn absorb(&mut self, sender: Option<EndReport>, receiver: Option<EndReport>) {
        let mut errors = Vec::new();
        match sender {
            Some(s) => {
                self.sent = s.sent;
                self.send_errors = s.send_errors;
                if self.kind == StreamKind::Tcp && !s.closed {
                    self.intact = false;
                }
                errors.extend(s.error.map(|e| format!("sender: {e}")));
            }
            None => errors.push("sender: no report".into()),
        }
        match receiver {
            Some(r) => {
                self.received = match self.kind {
                    StreamKind::Udp => r.seqs.len() as u64,
                    StreamKind::Tcp => r.bytes,
                };
                self.seqs = r.seqs;
                self.duplicates = r.duplicates;
                if self.kind == StreamKind::Tcp {
                    self.intact &= r.intact && r.closed && r.bytes == self.sent;
                }
                self.times_ns = r.times_ns;
                errors.extend(r.error.map(|e| format!("receiver: {e}")));
            }
            None => {
                self.intact = false;
                errors.push("receiver: no report".into());
            }
        }
        self.longest_gap_ms = self
            .times_ns
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]) as f64 / 1e6)
            .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))));
        self.error = (!errors.is_empty()).then(|| errors.join("; "));
    }
}

/// One generator process: its stdin (closed to stop it) and the thread reading its stdout.
struct Generator {
    child: Child,
    stdin: Option<ChildStdin>,
    end: Option<mpsc::Receiver<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Generator {
    /// Starts `program scenario traffic <args>` in `netns` and waits for its `ready`.
    fn start(program: &Path, netns: &str, args: &[String]) -> anyhow::Result<Generator> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(program)
            .args(["scenario", "traffic"])
            .args(args)
            // Its own process group: a Ctrl-C at the terminal is the runner's to handle.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the traffic generator in {netns}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let (end_tx, end_rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ready" {
                    let _ = ready_tx.send(());
                } else {
                    let _ = end_tx.send(line);
                }
            }
        });
        let mut g = Generator { child, stdin, end: Some(end_rx), reader: Some(reader) };
        if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
            let said = g.finish(Duration::from_millis(500));
            bail!(
                "the traffic generator in {netns} did not get ready: {}",
                said.and_then(|r| r.error).unwrap_or_else(|| "no answer".into())
            );
        }
        Ok(g)
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes its stdin, waits up to `grace` for its report, then kills it if needed.
    fn finish(&mut self, grace: Duration) -> Option<EndReport> {
        drop(self.stdin.take());
        let line = self.end.take().and_then(|rx| rx.recv_timeout(grace).ok());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        line.and_then(|l| serde_json::from_str(&l).ok())
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running stream: the receiver in the target VM, the sender in the source VM; both are
/// stopped and reaped by pid when dropped.
pub struct StreamProc {
    /// What is known so far; counts are filled when it ends.
    pub outcome: StreamOutcome,
    sender: Generator,
    receiver: Generator,
    /// When the sender should be done by itself.
    pub deadline: Instant,
}

/// How a stream is started.
#[derive(Debug, Clone)]
pub struct StreamStart<'a> {
    /// The periscope binary (the generator program).
    pub program: &'a Path,
    /// The sender's namespace.
    pub from_netns: &'a str,
    /// The receiver's namespace.
    pub to_netns: &'a str,
    /// Messages (TCP) or datagrams (UDP).
    pub count: u32,
    /// Payload bytes per datagram or message.
    pub size: usize,
}

impl StreamProc {
    /// Starts the receiver, then the sender.
    pub fn start(s: &StreamStart<'_>, outcome: StreamOutcome) -> anyhow::Result<StreamProc> {
        let to = SocketAddrV4::new(outcome.to_ip, outcome.dst_port);
        let (recv_args, send_args) = match outcome.kind {
            StreamKind::Udp => {
                let rate = (1000.0 / outcome.interval_ms).round().max(1.0) as u32;
                (
                    vec![
                        "udp-recv".into(),
                        format!("--port={}", outcome.dst_port),
                        format!("--id={}", outcome.id),
                    ],
                    vec![
                        "udp-send".into(),
                        format!("--to={to}"),
                        format!("--from-port={}", outcome.src_port),
                        format!("--id={}", outcome.id),
                        format!("--count={}", s.count),
                        format!("--rate={rate}"),
                        format!("--size={}", s.size),
                    ],
                )
            }
            StreamKind::Tcp => (
                vec!["tcp-recv".into(), format!("--port={}", outcome.dst_port)],
                vec![
                    "tcp-send".into(),
                    format!("--to={to}"),
                    format!("--from-port={}", outcome.src_port),
                    format!("--count={}", s.count),
                    format!("--size={}", s.size),
                    format!("--interval-ms={}", outcome.interval_ms.round() as u64),
                ],
            ),
        };
        let receiver = Generator::start(s.program, s.to_netns, &recv_args)?;
        let sender = Generator::start(s.program, s.from_netns, &send_args)?;
        let run = Duration::from_secs_f64(outcome.interval_ms * f64::from(s.count) / 1e3);
        Ok(StreamProc {
            outcome,
            sender,
            receiver,
            deadline: Instant::now() + run + Duration::from_secs(5),
        })
    }

    /// Whether the sender is still sending.
    pub fn running(&mut self) -> bool {
        self.sender.running()
    }

    /// Stops the sender (or lets it finish), lets what is in flight arrive, stops the
    /// receiver, and reads what both saw.
    pub fn stop(mut self, ended_s: f64) -> StreamOutcome {
        let sender = self.sender.finish(Duration::from_secs(6));
        thread::sleep(Duration::from_millis(200));
        let receiver = self.receiver.finish(Duration::from_secs(2));
        let mut o = self.outcome.clone();
        o.ended_s = ended_s;
        o.absorb(sender, receiver);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(kind: StreamKind) -> StreamOutcome {
        StreamOutcome {
            from_ip: Ipv4Addr::new(198, 51, 100, 1),
            to_ip: Ipv4Addr::new(198, 51, 100, 2),
            src_port: 30000,
            dst_port: 20000,
            id: 1,
            interval_ms: 10.0,
            ..StreamOutcome::new("s", kind, "a", "b")
        }
    }

    #[test]
    fn udp_outcome_counts_losses_and_the_receivers_own_silence() {
        let mut o = outcome(StreamKind::Udp);
        let sent = EndReport { sent: 5, ..EndReport::default() };
        let got = EndReport {
            seqs: vec![1, 2, 4, 5],
            times_ns: vec![0, 10_000_000, 40_000_000, 50_000_000],
            ..EndReport::default()
        };
        o.absorb(Some(sent), Some(got));
        assert_eq!((o.sent, o.received, o.lost()), (5, 4, vec![3]));
        assert_eq!(o.longest_gap_ms, Some(30.0));
        assert_eq!(o.error, None);
    }

    #[test]
    fn tcp_outcome_is_intact_only_when_everything_arrived_and_both_closed() {
        let sent = || EndReport { sent: 1000, closed: true, ..EndReport::default() };
        let got = |bytes| EndReport { bytes, intact: true, closed: true, ..EndReport::default() };
        let mut o = outcome(StreamKind::Tcp);
        o.absorb(Some(sent()), Some(got(1000)));
        assert!(o.intact);
        let mut short = outcome(StreamKind::Tcp);
        short.absorb(Some(sent()), Some(got(999)));
        assert!(!short.intact);
        let mut lost = outcome(StreamKind::Tcp);
        lost.absorb(Some(sent()), None);
        assert!(!lost.intact && lost.error.is_some());
    }

    #[test]
    fn the_tcp_pattern_changes_every_byte_and_wraps_at_251() {
        assert_eq!((pattern(0), pattern(250), pattern(251), pattern(252)), (0, 250, 0, 1));
    }

    #[test]
    fn a_generator_report_line_round_trips_and_missing_fields_default() {
        let r = EndReport { sent: 3, seqs: vec![1, 2], ..EndReport::default() };
        let line = serde_json::to_string(&r).expect("serializes");
        assert_eq!(serde_json::from_str::<EndReport>(&line).ok(), Some(r));
        let bare: EndReport = serde_json::from_str("{\"error\":\"x\"}").expect("parses");
        assert_eq!(bare.error.as_deref(), Some("x"));
    }
}
