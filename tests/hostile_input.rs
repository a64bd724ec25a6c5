//! A running controller under malformed input over real sockets, with a real Open vSwitch
//! bridge beside it that must keep forwarding and being programmed: OpenFlow frames whose
//! lengths lie, unknown versions and types, floods of HELLOs and of connections; an OVSDB
//! server sending deeply nested and huge messages; REST calls with huge and deep bodies; and
//! sick switches (silent, half-open, deaf, flooding, refusing our flow mods). Each gets the
//! protocol's error or is closed, with the cause in the log; memory stays bounded; nothing
//! panics. Figures (inputs, connections, memory peak, time) are printed for the README.

mod mirror_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mirror_support::post;
use periscope::bench::run::rss_kib;
use periscope::bench::switch::{EmulatedSwitch, Milestone};
use periscope::codec::openflow::{
    ErrorMsg, ErrorType, Message, OfpMessage, PacketIn, PacketInReason, TableId, Xid,
};
use periscope::lab::controller::ControllerProcess;
use periscope::lab::{ControllerTarget, HypervisorOptions, Lab, VmOptions};
use serde_json::{json, Value};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"));
}

/// The controller's resident memory, sampled every 20 ms while it runs: the peak, in KiB.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssWatch { peak, stop, thread: Some(thread) }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One OpenFlow frame read from `s` within `timeout`: `None` at EOF, reset or timeout.
fn read_frame(s: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(timeout)).ok()?;
    let mut head = [0u8; 8];
    s.read_exact(&mut head).ok()?;
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let mut body = vec![0u8; len.saturating_sub(8)];
    s.read_exact(&mut body).ok()?;
    let mut frame = head.to_vec();
    frame.extend(body);
    Some(frame)
}

/// Frames until one satisfies `pred` (returned), or EOF / `timeout` (`None`).
fn frame_where(
    s: &mut TcpStream,
    timeout: Duration,
    mut pred: impl FnMut(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let until = Instant::now() + timeout;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let f = read_frame(s, left.max(Duration::from_millis(1)))?;
        if pred(&f) {
            return Some(f);
        }
    }
    None
}

/// Whether the controller closes `s` within `timeout` (reads until EOF or reset; at least
/// once, for a deadline already past). `Err` says what was seen instead: still open at the
/// deadline, or an error that is neither.
fn closed_within(s: &mut TcpStream, timeout: Duration) -> Result<(), String> {
    let until = Instant::now() + timeout;
    let mut buf = [0u8; 65536];
    let mut bytes = 0usize;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(10))));
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => bytes += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("read failed after {bytes} B: {e}")),
        }
        if Instant::now() >= until {
            return Err(format!("still open after {timeout:?}, {bytes} B read"));
        }
    }
}

/// An OFPT_ERROR frame's (type, code, xid), if `f` is one.
fn ofp_error(f: &[u8]) -> Option<(u16, u16, u32)> {
    (f.len() >= 12 && f[1] == 1).then(|| {
        (
            u16::from_be_bytes([f[8], f[9]]),
            u16::from_be_bytes([f[10], f[11]]),
            u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
        )
    })
}

const HELLO: [u8; 16] = [4, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x10];

fn echo_request(xid: u32) -> Vec<u8> {
    echo_request_with(xid, &[0xde, 0xad, 0xbe, 0xef])
}

fn echo_request_with(xid: u32, data: &[u8]) -> Vec<u8> {
    OfpMessage::new(Xid(xid), Message::EchoRequest(data.to_vec())).to_vec()
}

/// A raw connection that has sent its HELLO.
fn connect_raw(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(&HELLO).expect("hello");
    s
}

/// How an emulated switch misbehaves once programmed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sickness {
    /// Reads everything and answers nothing: the echo keepalive must find it dead.
    Silent,
    /// Neither reads nor writes: a TCP connection whose peer vanished.
    HalfOpen,
    /// Never reads, and sends echo requests as fast as it can: the controller's answers pile
    /// up until its writes stall.
    Deaf,
    /// Answers everything, and sends PACKET_INs as fast as it can.
    PacketInFlood,
    /// Answers every FLOW_MOD with OFPET_FLOW_MOD_FAILED / OFPFMFC_TABLE_FULL.
    RefusesFlowMods,
}

/// An emulated switch (the bench's) on a blocking socket, with one sickness.
struct SickSwitch {
    dpid: u64,
    flow_mods: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SickSwitch {
    fn start(addr: &str, dpid: u64, sickness: Sickness) -> SickSwitch {
        let mut s = TcpStream::connect(addr).expect("connect");
        let (flow_mods, sent, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (fm, sn, st) = (flow_mods.clone(), sent.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut sw = EmulatedSwitch::new(dpid, 2);
            let _ = s.write_all(&sw.hello().to_vec());
            let mut programmed = false;
            let until = Instant::now() + Duration::from_secs(20);
            // Healthy until the base pipeline is confirmed (the refuser refuses from the start).
            while !programmed && Instant::now() < until && !st.load(Ordering::Relaxed) {
                let Some(f) = read_frame(&mut s, Duration::from_millis(200)) else { continue };
                let Ok(m) = OfpMessage::parse(&f) else { continue };
                if let (Sickness::RefusesFlowMods, Message::FlowMod(_)) = (sickness, &m.msg) {
                    fm.fetch_add(1, Ordering::Relaxed);
                    let _ = s.write_all(&refusal(&f, m.xid).to_vec());
                    continue;
                }
                let is_flow_mod = matches!(m.msg, Message::FlowMod(_));
                let (mut out, mut ms) = (Vec::new(), Vec::new());
                sw.handle(m, &mut out, &mut ms);
                fm.fetch_add(u64::from(is_flow_mod), Ordering::Relaxed);
                for o in out {
                    let _ = s.write_all(&o.to_vec());
                }
                programmed = ms.contains(&Milestone::ProgramConfirmed)
                    || (sickness == Sickness::RefusesFlowMods && fm.load(Ordering::Relaxed) > 0);
            }
            let mut buf = vec![0u8; 65536];
            let flood_until = Instant::now() + Duration::from_secs(4);
            let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
            loop {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                match sickness {
                    Sickness::Silent => {
                        if let Ok(0) = s.read(&mut buf) {
                            return;
                        }
                    }
                    Sickness::HalfOpen => std::thread::sleep(Duration::from_millis(50)),
                    Sickness::Deaf => {
                        // Large echoes, so that the answers fill the socket buffers in a few
                        // MB; once a write blocks, the controller is the one stuck writing.
                        let burst = echo_request_with(7, &[0x5a; 60_000]);
                        if s.write_all(&burst).is_ok() {
                            sn.fetch_add(1, Ordering::Relaxed);
                        } else {
                            while !st.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    Sickness::PacketInFlood => {
                        if Instant::now() < flood_until {
                            let burst: Vec<u8> =
                                (0..256).flat_map(|_| packet_in(dpid).to_vec()).collect();
                            if s.write_all(&burst).is_err() {
                                return;
                            }
                            sn.fetch_add(256, Ordering::Relaxed);
                        }
                        // Keep answering (echo, barriers) so that only the flood is wrong.
                        let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
                        if let Some(f) = read_frame(&mut s, Duration::from_millis(1)) {
                            if let Ok(m) = OfpMessage::parse(&f) {
                                let (mut out, mut ms) = (Vec::new(), Vec::new());
                                sw.handle(m, &mut out, &mut ms);
                                for o in out {
                                    let _ = s.write_all(&o.to_vec());
                                }
                            }
                        }
                    }
                    Sickness::RefusesFlowMods => {
                        let Some(f) = read_frame(&mut s, Duration::from_millis(200)) else {
                            continue;
                        };
                        let Ok(m) = OfpMessage::parse(&f) else { continue };
                        if let Message::FlowMod(_) = m.msg {
                            fm.fetch_add(1, Ordering::Relaxed);
                            let _ = s.write_all(&refusal(&f, m.xid).to_vec());
                        } else {
                            let (mut out, mut ms) = (Vec::new(), Vec::new());
                            sw.handle(m, &mut out, &mut ms);
                            for o in out {
                                let _ = s.write_all(&o.to_vec());
                            }
                        }
                    }
                }
            }
        });
        SickSwitch { dpid, flow_mods, sent, stop, thread: Some(thread) }
    }

    fn dpid(&self) -> String {
        format!("{:016x}", self.dpid)
    }
}

impl Drop for SickSwitch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread notices within its read or write timeout.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn refusal(request: &[u8], xid: Xid) -> OfpMessage {
    OfpMessage::new(
        xid,
        Message::Error(ErrorMsg {
            err_type: ErrorType::FlowModFailed,
            // OFPFMFC_TABLE_FULL.
            code: 1,
            experimenter: None,
            data: request[..request.len().min(64)].to_vec(),
        }),
    )
}

fn packet_in(dpid: u64) -> OfpMessage {
    let mut frame = vec![0xff; 6];
    frame.extend([0x02, 0, 0, 0, 0, dpid as u8, 0x08, 0x06]);
    frame.resize(60, 0);
    OfpMessage::new(
        Xid(0),
        Message::PacketIn(Box::new(PacketIn {
            buffer_id: periscope::codec::openflow::BufferId::NO_BUFFER,
            total_len: 60,
            reason: PacketInReason::NoMatch,
            table_id: TableId(0),
            cookie: periscope::codec::openflow::Cookie(0),
            matches: Default::default(),
            data: frame,
        })),
    )
}

/// The TCP OpenFlow endpoint the controller printed.
fn tcp_endpoint(ctl: &ControllerProcess) -> String {
    ctl.openflow()
        .iter()
        .find_map(|a| a.strip_prefix("tcp:"))
        .expect("a TCP OpenFlow listener")
        .to_string()
}

fn ours(hv: &periscope::lab::Hypervisor) -> usize {
    hv.ofctl(&["dump-flows", "br-int"])
        .map(|d| d.lines().filter(|l| l.contains("cookie=0x5053")).count())
        .unwrap_or(0)
}

/// One fake ovsdb-server connection: reads the controller's first request, sends `attack`
/// in pieces, and says how many bytes it could send and whether the controller then closed.
fn ovsdb_attack(listener: &UnixListener, attack: &[u8]) -> (usize, bool) {
    let mut buf = [0u8; 4096];
    // A connection that waited in the backlog may have been given up on (echo timeout) by
    // the controller already: skip those.
    let mut s = loop {
        let (mut s, _) = listener.accept().expect("the controller connects");
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.read(&mut buf);
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        if !matches!(s.read(&mut buf), Ok(0)) {
            break s;
        }
    };
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let mut sent = 0;
    for chunk in attack.chunks(1 << 20) {
        match s.write_all(chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => break,
        }
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) => break e.kind() == ErrorKind::ConnectionReset,
        }
    };
    (sent, closed)
}

/// A raw HTTP/1.1 exchange with the API: the status line's code, if any came.
fn http_status(api: std::net::SocketAddr, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(api).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let _ = s.write_all(request);
    // Read up to the end of the status line; closing our side first could race the answer.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn post_body(ctl: &ControllerProcess, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        ctl.token().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn malformed_input_gets_the_protocols_error_and_the_bridge_beside_keeps_forwarding() {
    let started = Instant::now();
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let hv = lab
        .add_hypervisor(
            "hv1",
            HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone())),
        )
        .expect("hypervisor");
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1")).expect("vm1");
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2")).expect("vm2");
    let fake_db_path = lab.dir().join("fake-db.sock");
    let fake_db = UnixListener::bind(&fake_db_path).expect("fake ovsdb-server");
    let ctl = ControllerProcess::start(
        PERISCOPE,
        &[
            format!("--openflow=punix:{}", sock.display()),
            "--openflow=ptcp:0:127.0.0.1".into(),
            format!("--ovsdb=hv1={}", hv.db_remote()),
            format!("--ovsdb=liar=unix:{}", fake_db_path.display()),
        ],
        &lab.dir().join("controller.log"),
    )
    .expect("controller");
    let addr = tcp_endpoint(&ctl);
    wait_for("the base pipeline", Duration::from_secs(20), || ours(&hv) >= 3);
    vm1.ping(vm2.ip(), 2, Duration::from_millis(200)).expect("warm-up ping");
    let rss_before = rss_kib(ctl.pid()).expect("VmRSS");
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", ctl.pid())).map_or(0, |d| d.count());
    let fds_before = fds();
    let watch = RssWatch::start(ctl.pid());
    let pings = vm1.ping_start(vm2.ip(), 300, Duration::from_millis(50)).expect("ping");
    let mut inputs = 0u64;
    // API clients that send nothing, or half a request: closed, not held forever.
    let idle_since = Instant::now();
    let mut idle_api = TcpStream::connect(ctl.api()).expect("api");
    let mut slow_api = TcpStream::connect(ctl.api()).expect("api");
    slow_api.write_all(b"GET /v1/switches HTTP/1.1\r\nHost: x\r\n").expect("write");

    // A length below the header size: BAD_REQUEST / BAD_LEN quoting it, then closed (the next
    // message cannot be found).
    let mut s = connect_raw(&addr);
    s.write_all(&[4, 2, 0, 4, 0, 0, 0, 9]).expect("write");
    let e = frame_where(&mut s, Duration::from_secs(5), |f| ofp_error(f).is_some());
    assert_eq!(e.as_deref().and_then(ofp_error), Some((1, 6, 9)), "OFPBRC_BAD_LEN for xid 9");
    let closed = closed_within(&mut s, Duration::from_secs(5));
    assert_eq!(closed, Ok(()), "closed after an unframeable length");
    inputs += 1;

    // A length past what arrives, then EOF: closed, nothing answered for the partial frame.
    let mut s = connect_raw(&addr);
    s.write_all(&[4, 2, 0, 200, 0, 0, 0, 10, 1, 2, 3]).expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let closed = closed_within(&mut s, Duration::from_secs(5));
    assert_eq!(closed, Ok(()), "a truncated frame at EOF closes");
    inputs += 1;

    // The largest length, with a type nobody knows: BAD_TYPE, and the connection goes on.
    let mut s = connect_raw(&addr);
    let mut huge = vec![4u8, 0x63, 0xff, 0xff, 0, 0, 0, 11];
    huge.resize(0xffff, 0xa5);
    s.write_all(&huge).expect("write");
    let e = frame_where(&mut s, Duration::from_secs(5), |f| ofp_error(f).is_some());
    assert_eq!(e.as_deref().and_then(ofp_error), Some((1, 1, 11)), "OFPBRC_BAD_TYPE for xid 11");
    // An unknown version: BAD_VERSION.
    let mut v5 = echo_request(12);
    v5[0] = 0x05;
    s.write_all(&v5).expect("write");
    let e = frame_where(&mut s, Duration::from_secs(5), |f| ofp_error(f).is_some());
    assert_eq!(e.as_deref().and_then(ofp_error), Some((1, 0, 12)), "OFPBRC_BAD_VERSION");
    // A body shorter than its message needs: BAD_LEN, and still alive.
    s.write_all(&[4, 6, 0, 12, 0, 0, 0, 13, 0, 0, 0, 0]).expect("write");
    let e = frame_where(&mut s, Duration::from_secs(5), |f| ofp_error(f).is_some());
    assert_eq!(e.as_deref().and_then(ofp_error), Some((1, 6, 13)), "short FEATURES_REPLY");
    s.write_all(&echo_request(14)).expect("write");
    let r = frame_where(&mut s, Duration::from_secs(5), |f| f[1] == 3);
    assert!(r.is_some_and(|f| f[4..8] == 14u32.to_be_bytes()), "echo answered after all that");
    inputs += 4;

    // A flood of HELLOs on one connection (800 KB): passed on at the limit, the rest dropped
    // and reported; the connection still answers.
    let hellos: Vec<u8> = std::iter::repeat_n(HELLO, 50_000).flatten().collect();
    s.write_all(&hellos).expect("write");
    s.write_all(&echo_request(15)).expect("write");
    let r = frame_where(&mut s, Duration::from_secs(10), |f| f[1] == 3);
    assert!(r.is_some_and(|f| f[4..8] == 15u32.to_be_bytes()), "echo answered after a flood");
    inputs += 50_000;
    drop(s);

    // A flood of connections, each with a HELLO, all held open at once; twice, so that what
    // the second leaves behind shows whether the first leaked or the allocator kept it.
    const CONNECTIONS: usize = 3000;
    let flood = || {
        let t = Instant::now();
        let mut held: Vec<TcpStream> = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            match TcpStream::connect(&addr) {
                Ok(mut c) => {
                    let _ = c.write_all(&HELLO);
                    held.push(c);
                }
                Err(e) => panic!("connection {} refused: {e}", held.len()),
            }
        }
        let connect_time = t.elapsed();
        // Every one of them gets the controller's FEATURES_REQUEST (a handshake each).
        let mut answered = 0;
        for c in held.iter_mut().step_by(100) {
            answered +=
                usize::from(frame_where(c, Duration::from_secs(10), |f| f[1] == 5).is_some());
        }
        assert_eq!(answered, CONNECTIONS / 100, "sampled connections handshaken");
        let (rss_held, fds_held) = (rss_kib(ctl.pid()).unwrap_or(0), fds());
        drop(held);
        wait_for("the flood's sockets closed", Duration::from_secs(10), || fds() <= fds_before + 2);
        (connect_time, fds_held, rss_held, rss_kib(ctl.pid()).unwrap_or(0))
    };
    let (connect_time, fds_flood, rss_flood, rss_first) = flood();
    let (_, _, _, rss_second) = flood();
    inputs += 2 * CONNECTIONS as u64;
    // The first flood's memory is mostly kept by the allocator and reused by the second.
    assert!(
        rss_second.saturating_sub(rss_first) < rss_first.saturating_sub(rss_before) / 2,
        "from {rss_before} KiB, the first flood left {rss_first} KiB and the second {rss_second}"
    );

    // The hostile ovsdb-server: a message nested a million deep, then a 100 MB message, then
    // bytes that are not JSON. Each is refused and the connection closed; the controller
    // reconnects to the next.
    let mut deep = vec![b'['; 1 << 20];
    deep.extend(vec![b']'; 1 << 20]);
    let (_, closed) = ovsdb_attack(&fake_db, &deep);
    assert!(closed, "a message nested 1M deep closes the connection");
    let mut huge = br#"{"id":1,"result":""#.to_vec();
    huge.resize(100 << 20, b'a');
    let (accepted, closed) = ovsdb_attack(&fake_db, &huge);
    assert!(closed, "a 100 MB message closes the connection");
    assert!(accepted < 80 << 20, "the controller stopped reading at its cap, took {accepted} B");
    let (_, closed) = ovsdb_attack(&fake_db, b"GET / HTTP/1.1\r\n\r\n");
    assert!(closed, "bytes that are not JSON close the connection");
    drop(huge);
    inputs += 3;

    // The REST API: a body over the limit, a body nested past serde_json's limit, garbage.
    let big = vec![b' '; 2 << 20];
    assert_eq!(http_status(ctl.api(), &post_body(&ctl, "/v1/tap_services", &big)), Some(413));
    let nested: Vec<u8> = std::iter::repeat_n(b'[', 100_000).collect();
    let status = http_status(ctl.api(), &post_body(&ctl, "/v1/tap_services", &nested));
    assert_eq!(status, Some(400), "a body nested 100,000 deep");
    // Not HTTP at all (a TLS hello): hyper answers 400, or just closes when the bytes and the
    // end of the stream arrive together; either way nothing more.
    let garbage = http_status(ctl.api(), b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert!(matches!(garbage, Some(400) | None), "{garbage:?}");
    inputs += 3;

    // Closed by the API's own timer, with slack for a loaded machine: not held forever.
    let limit = periscope::northbound::api::REQUEST_TIMEOUT + Duration::from_secs(10);
    for (what, c) in [("idle", &mut idle_api), ("half a request", &mut slow_api)] {
        let left = limit.saturating_sub(idle_since.elapsed());
        let closed = closed_within(c, left);
        let after = idle_since.elapsed();
        assert_eq!(closed, Ok(()), "an API connection sending {what}, {after:?} after it opened");
    }
    inputs += 2;

    // The bridge beside: never a lost ping, still connected and programmed.
    let report = pings.wait().expect("ping report");
    let rss_peak = watch.peak();
    drop(watch);
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = rss_kib(ctl.pid()).expect("the controller is still running");
    assert_eq!(report.received, report.sent, "pings lost during the attacks: {:?}", report.lost());
    let (_, switches) = ctl.call("GET", "/v1/switches", None).expect("api");
    assert_eq!(switches.as_array().map(Vec::len), Some(1), "only the real bridge: {switches}");
    assert_eq!(switches[0]["dpid"], format!("{:016x}", hv.dpid()));
    let log = ctl.log();
    assert!(!log.contains("panicked"), "the controller panicked:\n{log}");
    for cause in [
        "unframeable message from peer",
        "switch floods the controller",
        "recursion limit",
        "exceeds the maximum of",
        "expected '{' or '['",
    ] {
        assert!(log.contains(cause), "the log does not say {cause:?}");
    }
    // Memory: the 64 MiB cap of an OVSDB message is the largest thing held; it is released.
    assert!(rss_peak < rss_before + 200 * 1024, "peak {rss_peak} KiB from {rss_before} KiB");
    assert!(
        rss_after < rss_second + 16 * 1024,
        "the OVSDB buffer was not given back: {rss_after} KiB after, {rss_second} KiB before it"
    );
    eprintln!(
        "hostile input: {inputs} inputs; {CONNECTIONS} connections in {connect_time:?} \
         ({fds_flood} descriptors and VmRSS {rss_flood} KiB while held, {rss_first} KiB after, \
         {rss_second} KiB after a second flood); VmRSS {rss_before} KiB before, peak \
         {rss_peak} KiB, {rss_after} KiB after; ping {}/{}; {:?} in all",
        report.received,
        report.sent,
        started.elapsed()
    );
}

#[test]
fn sick_switches_are_isolated_while_real_bridges_are_reprogrammed_through_a_migration() {
    let started = Instant::now();
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let opts = || HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone()));
    let hv1 = lab.add_hypervisor("hv1", opts()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", opts()).expect("hv2");
    let mut vm1 =
        lab.add_vm(&hv1, VmOptions::new("vm1").external_id("tenant-id", "bank-a")).expect("vm1");
    let vm2 = lab.add_vm(&hv2, VmOptions::new("vm2")).expect("vm2");
    let ctl = ControllerProcess::start(
        PERISCOPE,
        &[
            format!("--openflow=punix:{}", sock.display()),
            "--openflow=ptcp:0:127.0.0.1".into(),
            format!("--ovsdb=hv1={}", hv1.db_remote()),
            format!("--ovsdb=hv2={}", hv2.db_remote()),
            "--echo-interval=1".into(),
            "--echo-timeout=2".into(),
        ],
        &lab.dir().join("controller.log"),
    )
    .expect("controller");
    let addr = tcp_endpoint(&ctl);
    ctl.allow("bank-a", &["192.0.2.0/24"]).expect("allow-list");
    let svc = post(
        &ctl,
        "/v1/tap_services",
        json!({"name": "ids", "tenant": "bank-a", "encap": "vxlan", "remote_ip": "192.0.2.200"}),
    );
    post(
        &ctl,
        "/v1/tap_flows",
        json!({"name": "vm1", "tenant": "bank-a", "tap_service": svc["id"],
               "source": {"iface_id": vm1.iface_id()}, "direction": "BOTH"}),
    );
    let copies = |hv: &periscope::lab::Hypervisor| {
        hv.ofctl(&["dump-flows", "br-int"])
            .map(|d| d.lines().filter(|l| l.contains("192.0.2.200")).count())
            .unwrap_or(0)
    };
    wait_for("vm1's copies on hv1", Duration::from_secs(20), || copies(&hv1) >= 2);

    let sick: Vec<(Sickness, SickSwitch)> = [
        Sickness::Silent,
        Sickness::HalfOpen,
        Sickness::Deaf,
        Sickness::PacketInFlood,
        Sickness::RefusesFlowMods,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, k)| (k, SickSwitch::start(&addr, 0x51c0 + i as u64, k)))
    .collect();
    // All of them got in.
    wait_for("the sick switches' handshakes", Duration::from_secs(10), || {
        let (_, s) = ctl.call("GET", "/v1/switches", None).unwrap_or((0, Value::Null));
        s.as_array().is_some_and(|a| a.len() == 2 + sick.len())
    });

    // The migration, while they misbehave.
    let t = Instant::now();
    vm1.migrate(&hv2).expect("migrate");
    wait_for("vm1's copies moved to hv2", Duration::from_secs(10), || {
        copies(&hv2) >= 2 && copies(&hv1) == 0
    });
    let moved = t.elapsed();
    vm1.ping(vm2.ip(), 2, Duration::from_millis(200)).expect("warm-up");
    assert_eq!(vm1.ping(vm2.ip(), 5, Duration::from_millis(50)).expect("ping").received, 5);

    // Each sick switch is found out, by its cause, and dropped; the healthy ones stay.
    let log_says =
        |dpid: &str, cause: &str| ctl.log().lines().any(|l| l.contains(dpid) && l.contains(cause));
    for (kind, sw) in &sick {
        let cause = match kind {
            Sickness::Silent | Sickness::HalfOpen => "echo request unanswered",
            Sickness::Deaf => "peer stopped reading",
            Sickness::PacketInFlood => "switch floods the controller",
            Sickness::RefusesFlowMods => "switch refused a request",
        };
        wait_for(&format!("{kind:?} logged with {cause:?}"), Duration::from_secs(10), || {
            log_says(&sw.dpid(), cause)
        });
    }
    let (_, switches) = ctl.call("GET", "/v1/switches", None).expect("api");
    let connected: Vec<&str> =
        switches.as_array().into_iter().flatten().filter_map(|s| s["dpid"].as_str()).collect();
    for (kind, sw) in &sick {
        let gone = matches!(kind, Sickness::Silent | Sickness::HalfOpen | Sickness::Deaf);
        assert_eq!(!connected.contains(&sw.dpid().as_str()), gone, "{kind:?}: {switches}");
    }
    for hv in [&hv1, &hv2] {
        assert!(connected.contains(&format!("{:016x}", hv.dpid()).as_str()), "{switches}");
    }
    // The refused flow mods are not retried in a loop.
    let refuser = &sick[4].1;
    let refused = refuser.flow_mods.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(refuser.flow_mods.load(Ordering::Relaxed), refused, "refused flow mods resent");
    let flooded = sick[3].1.sent.load(Ordering::Relaxed);
    eprintln!(
        "sick switches: migration reprogrammed in {moved:?} beside them; {flooded} PACKET_INs \
         flooded, {refused} flow mods refused (not retried); {:?} in all",
        started.elapsed()
    );
    drop(sick);
    let log = ctl.log();
    assert!(!log.contains("panicked"), "the controller panicked:\n{log}");
}
