//! `periscope collector` as an operator runs it, on loopback (VXLAN only, a free port): copies
//! are split per key into pcap files, keys beyond `--max-keys` and malformed datagrams are
//! reported, and SIGTERM or stdin EOF stop it with a final summary.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use periscope::collector::pcap;

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "periscope-collector-cli-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `periscope collector`, killed by pid if a test fails before it stops.
struct Running {
    child: Child,
    vxlan: SocketAddr,
    stderr: BufReader<ChildStderr>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `periscope collector ARGS` and returns it with its first stderr line (where it listens).
fn spawn(args: &[&OsStr]) -> (Child, BufReader<ChildStderr>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_periscope"))
        .arg("collector")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("periscope collector starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the listening line");
    (child, stderr, line)
}

/// Starts the collector on 127.0.0.1, VXLAN on a free port, and reads that port from stderr.
fn start(extra: &[&str]) -> Running {
    let mut args: Vec<&OsStr> =
        ["--listen", "127.0.0.1", "--vxlan-port", "0", "--no-gre"].map(OsStr::new).to_vec();
    args.extend(extra.iter().map(OsStr::new));
    let (child, stderr, line) = spawn(&args);
    // "periscope collector: vxlan on udp 127.0.0.1:PORT, ..."
    let vxlan = line
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(',').parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Running { child, vxlan, stderr }
}

/// Starts the collector receiving raw GRE on `listen` (VXLAN on a free port, unused), writing
/// pcap files to `pcaps` and JSON lines to `json`, stopped by the end of its stdin.
fn start_raw(listen: Ipv4Addr, pcaps: &Path, json: &Path) -> Running {
    let listen_s = listen.to_string();
    let args = [
        OsStr::new("--listen"),
        OsStr::new(&listen_s),
        OsStr::new("--vxlan-port"),
        OsStr::new("0"),
        OsStr::new("--stdin-stop"),
        OsStr::new("--pcap-dir"),
        pcaps.as_os_str(),
        OsStr::new("--output"),
        json.as_os_str(),
    ];
    let (child, stderr, line) = spawn(&args);
    assert!(line.contains(&format!("gre on raw ip {listen}")), "{line}");
    Running { child, vxlan: "127.0.0.1:0".parse().expect("addr"), stderr }
}

/// Ends the collector's stdin, which stops it, and returns its summary.
fn stop_at_eof(col: &mut Running) -> String {
    drop(col.child.stdin.take());
    let mut stdout = String::new();
    col.child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("stdout");
    assert!(col.child.wait().expect("exits").success());
    stdout
}

fn vxlan(vni: u32, inner_len: usize) -> Vec<u8> {
    let mut p = vec![0x08, 0, 0, 0];
    p.extend_from_slice(&(vni << 8).to_be_bytes());
    // Ethernet 02:51:00:00:00:03 <- 02:51:00:00:00:02, an experimental ethertype, padding.
    p.extend_from_slice(&[0x02, 0x51, 0, 0, 0, 0x03, 0x02, 0x51, 0, 0, 0, 0x02, 0x88, 0xb5]);
    p.resize(8 + inner_len, 0xab);
    p
}

fn wait_for_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0);
        if lines >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{} has {lines} lines, expected {n}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pcap_records(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pcap::parse(&bytes).expect("a pcap file").records.iter().map(|r| r.data.len()).collect()
}

#[test]
fn sigterm_stops_with_a_summary_and_pcap_files_per_key() {
    let tmp = TempDir::new();
    let pcaps = tmp.0.join("pcap");
    let json = tmp.0.join("frames.jsonl");
    let mut col = start(&[
        "--pcap-dir",
        pcaps.to_str().expect("utf-8"),
        "--output",
        json.to_str().expect("utf-8"),
        "--max-keys",
        "2",
        "--summary-every",
        "1",
    ]);
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("sender");
    for (vni, len) in [(100, 60), (200, 1514), (100, 64), (300, 60), (100, 9000)] {
        tx.send_to(&vxlan(vni, len), col.vxlan).expect("send");
    }
    tx.send_to(&[0x08, 0, 0], col.vxlan).expect("send a runt");
    tx.send_to(&vxlan(100, 60)[..15], col.vxlan).expect("send a cut frame");
    wait_for_lines(&json, 5);

    let status =
        Command::new("kill").args(["-TERM", &col.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let mut stdout = String::new();
    col.child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("stdout");
    let exit = col.child.wait().expect("exits");
    let mut stderr = String::new();
    let _ = col.stderr.read_to_string(&mut stderr);
    assert!(exit.success(), "{exit}: {stderr}");

    // The final summary is the last table on stdout.
    let last = stdout.rsplit("encap ").next().expect("a summary");
    let row = |prefix: &str| last.lines().find(|l| l.starts_with(prefix)).map(str::to_string);
    let vx100 = row("vxlan         100").unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        vx100.split_whitespace().skip(2).take(2).collect::<Vec<_>>(),
        ["3", "9124"],
        "{vx100}"
    );
    let vx200 = row("vxlan         200").unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(vx200.split_whitespace().skip(2).take(2).collect::<Vec<_>>(), ["1", "1514"]);
    let other = row("other").unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(other.split_whitespace().skip(2).take(2).collect::<Vec<_>>(), ["1", "60"]);
    assert!(last.contains("malformed vxlan-truncated: 1"), "{stdout}");
    assert!(last.contains("malformed ethernet-truncated: 1"), "{stdout}");
    assert!(last.contains("total: 5 frames under 2 keys and other, 2 malformed"), "{stdout}");

    let mut files: Vec<String> = std::fs::read_dir(&pcaps)
        .expect("pcap dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["vxlan-100.pcap", "vxlan-200.pcap"]);
    assert_eq!(pcap_records(&pcaps.join("vxlan-100.pcap")), [60, 64, 9000]);
    assert_eq!(pcap_records(&pcaps.join("vxlan-200.pcap")), [1514]);
    match Command::new("tcpdump")
        .args(["-nn", "-e", "-r"])
        .arg(pcaps.join("vxlan-100.pcap"))
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            // One line per packet; an unknown ethertype adds an indented hex dump.
            let packets: Vec<&str> =
                text.lines().filter(|l| !l.starts_with(char::is_whitespace)).collect();
            assert_eq!(packets.len(), 3, "{text}");
            assert!(packets.iter().all(|l| l.contains("02:51:00:00:00:02 > 02:51:00:00:00:03")));
            assert!(text.contains("length 9000"), "{text}");
        }
        Err(e) => eprintln!("tcpdump not run ({e}); the byte-level checks passed"),
    }
}

#[test]
fn stdin_eof_stops_it_after_ready() {
    let tmp = TempDir::new();
    let pcaps = tmp.0.join("pcap");
    let json = tmp.0.join("frames.jsonl");
    let mut col = start(&[
        "--pcap-dir",
        pcaps.to_str().expect("utf-8"),
        "--output",
        json.to_str().expect("utf-8"),
        "--stdin-stop",
        "--ready",
    ]);
    let mut stdout = BufReader::new(col.child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready");
    assert_eq!(line, "ready\n");
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("sender");
    tx.send_to(&vxlan(7, 60), col.vxlan).expect("send");
    wait_for_lines(&json, 1);
    drop(col.child.stdin.take());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("stdout");
    let exit = col.child.wait().expect("exits");
    assert!(exit.success(), "{exit}");
    assert!(rest.contains("total: 1 frames under 1 keys, 0 malformed"), "{rest}");
    assert_eq!(pcap_records(&pcaps.join("vxlan-7.pcap")), [60]);
}

/// GRE on loopback: a raw socket of ours sends to 127.0.0.1 and the collector's raw socket,
/// bound to 127.0.0.1, receives. The key is unique to this run, since any raw GRE socket on
/// this host's loopback sees these packets.
#[test]
fn gre_copies_on_loopback_are_split_by_key() {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let tmp = TempDir::new();
    let pcaps = tmp.0.join("pcap");
    let json = tmp.0.join("frames.jsonl");
    let mut col = start_raw(Ipv4Addr::LOCALHOST, &pcaps, &json);

    let key = 0x5000_0000 | (std::process::id() & 0xff_ffff);
    let sender = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(47))).expect("raw");
    let to = SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let mut gre = vec![0x20, 0x00, 0x65, 0x58];
    gre.extend_from_slice(&key.to_be_bytes());
    gre.extend_from_slice(&vxlan(0, 74)[8..]);
    let mut not_ethernet = gre.clone();
    not_ethernet[2..4].copy_from_slice(&[0x08, 0x00]);
    sender.send_to(&not_ethernet, &to).expect("send GRE carrying IPv4");
    for _ in 0..3 {
        sender.send_to(&gre, &to).expect("send GRE");
    }
    // One socket, one queue: once the third copy is written, the first datagram was counted.
    wait_for_lines(&json, 3);
    let stdout = stop_at_eof(&mut col);
    let row = format!("gre    {key:>10}          3          222");
    assert!(stdout.lines().any(|l| l.starts_with(&row)), "{row:?} in\n{stdout}");
    assert!(stdout.contains("malformed gre-protocol: "), "{stdout}");
    assert_eq!(pcap_records(&pcaps.join(format!("gre-{key}.pcap"))), [74, 74, 74]);
}

/// Bytes from hexadecimal digits, whitespace ignored.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_digit(16).expect("a hex digit") as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// ERSPAN on loopback: the GRE header onwards of copies Open vSwitch 3.1 sent (Type II session 7
/// index 5 with an echo request; Type III session 7, hardware ID 3, egress, with an ARP request
/// and an echo request), sent by a raw socket of ours. The collector listens on a loopback
/// address of its own (127.77.x.y from the pid), so that the GRE test's collector, or another
/// run's, sees none of these packets and this one sees none of theirs.
#[test]
fn erspan_copies_on_loopback_are_split_by_version() {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let pid = std::process::id();
    let listen = Ipv4Addr::new(127, 77, (pid >> 8) as u8, pid as u8 | 1);
    let tmp = TempDir::new();
    let pcaps = tmp.0.join("pcap");
    let json = tmp.0.join("frames.jsonl");
    let mut col = start_raw(listen, &pcaps, &json);

    let v1 = hex("1000 88be 0000 0003 1000 0007 0000 0005 0251 0000 0004 0251 0000 0003 0800 4500
                  0054 0fc6 4000 4001 d674 c633 6403 c633 6404 0800 07b6 144e 0001 99d5 146b 0000
                  0000 6be7 0300 0000 0000 1011 1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 2425
                  2627 2829 2a2b 2c2d 2e2f 3031 3233 3435 3637");
    let v2_arp =
        hex("1000 22eb 0000 0000 2000 0007 ddda 164d 0000 0038 ffff ffff ffff 0251 0000 0003
                      0806 0001 0800 0604 0001 0251 0000 0003 c633 6403 0000 0000 0000 c633 6404");
    let v2_echo =
        hex("1000 22eb 0000 0001 2000 0007 ddda 1651 0000 0038 0251 0000 0004 0251 0000 0003
                       0800 4500 0054 438c 4000 4001 a2ae c633 6403 c633 6404 0800 f18f 1563 0001
                       a8d5 146b 0000 0000 67f8 0d00 0000 0000 1011 1213 1415 1617 1819 1a1b 1c1d
                       1e1f 2021 2223 2425 2627 2829 2a2b 2c2d 2e2f 3031 3233 3435 3637");
    let mut type_i = v1.clone();
    type_i[0] = 0x00; // no sequence number: ERSPAN Type I, not decoded
    let mut bad_version = v2_echo.clone();
    bad_version[8] = 0x10; // version 1 under the Type III protocol type

    let sender = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(47))).expect("raw");
    let to = SockAddr::from(SocketAddr::from((listen, 0)));
    for p in [&type_i, &bad_version, &v1, &v2_arp, &v2_echo] {
        sender.send_to(p, &to).expect("send ERSPAN");
    }
    // One socket, one queue: once the third copy is written, the malformed ones were counted.
    wait_for_lines(&json, 3);
    let stdout = stop_at_eof(&mut col);
    for row in [
        "encap            key     frames        bytes",
        "erspan_v1          7          1           98  ",
        "erspan_v2          7          2          140  ",
        "malformed erspan-gre-flags: 1 (last: GRE flags 0x0000 at offset 20: ERSPAN expects 0x1000",
        "malformed erspan-version: 1 (last: ERSPAN version 1 at offset 28: GRE protocol type \
         0x22eb carries version 2)",
        "total: 3 frames under 2 keys, 2 malformed",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(row)), "{row:?} in\n{stdout}");
    }
    assert_eq!(pcap_records(&pcaps.join("erspan_v1-7.pcap")), [98]);
    assert_eq!(pcap_records(&pcaps.join("erspan_v2-7.pcap")), [42, 98]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .expect("json lines")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let meta: Vec<(&str, &serde_json::Value)> =
        lines.iter().map(|v| (v["encap"].as_str().unwrap_or(""), &v["erspan"])).collect();
    assert_eq!(
        meta,
        [
            ("erspan_v1", &serde_json::json!({"index": 5})),
            ("erspan_v2", &serde_json::json!({"direction": "egress", "hw_id": 3})),
            ("erspan_v2", &serde_json::json!({"direction": "egress", "hw_id": 3})),
        ]
    );
}

#[test]
fn bad_options_are_refused_with_the_value_and_what_is_accepted() {
    let out = Command::new(env!("CARGO_BIN_EXE_periscope"))
        .args(["collector", "--listen", "127.0.0.1", "--max-keys", "0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'0'") && err.contains("--max-keys") && err.contains("1..="), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_periscope"))
        .args(["collector", "--listen", "not-an-ip"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-an-ip"));
}
