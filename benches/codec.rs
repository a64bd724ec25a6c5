//! Codec throughput on real Open vSwitch bytes, side by side with os-ken's parser.
//!
//! `cargo bench --bench codec` prints messages/s and bytes/s for each workload, then runs
//! os-ken on the same bytes (when `benches/peers/setup.sh` has made its venv) and prints the
//! ratio. Single-threaded: one core.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bytes::BytesMut;
use periscope_codec::openflow::OfpMessage;

fn read_hex(path: &Path) -> Vec<u8> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
        .collect()
}

fn split(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let n = u16::from_be_bytes([data[2], data[3]]) as usize;
        out.push(data[..n].to_vec());
        data = &data[n..];
    }
    out
}

/// Operations per second: median of `runs` timed runs of `n` operations. With
/// `PERISCOPE_BENCH_ONLY=a,b`, the other workloads are skipped (0), for profiling one with
/// `perf` or callgrind.
fn rate(name: &str, n: u64, runs: usize, mut op: impl FnMut()) -> f64 {
    if std::env::var("PERISCOPE_BENCH_ONLY").is_ok_and(|only| !only.split(',').any(|o| o == name)) {
        return 0.0;
    }
    // `PERISCOPE_BENCH_ITERS=n` runs each workload n times once (for callgrind).
    let (n, runs) = match std::env::var("PERISCOPE_BENCH_ITERS").ok().and_then(|v| v.parse().ok()) {
        Some(iters) => (iters, 1),
        None => (n, runs),
    };
    for _ in 0..n.min(1000) {
        op();
    }
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                op();
            }
            n as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("codec/tests/data");
    let flowmod = read_hex(&data.join("flowmod.hex"));
    let packetin = read_hex(&data.join("packetin.hex"));
    let stats = split(&read_hex(&data.join("flowstats1000.hex")));
    let stats_bytes: usize = stats.iter().map(Vec::len).sum();

    let mut buf = BytesMut::with_capacity(256);
    let parsed_fm = OfpMessage::parse(&flowmod).expect("flowmod vector parses");
    let rows = [
        (
            "flowmod_parse",
            flowmod.len(),
            rate("flowmod_parse", 2_000_000, 9, || {
                black_box(OfpMessage::parse(black_box(&flowmod)).ok());
            }),
        ),
        (
            "flowmod_emit",
            flowmod.len(),
            rate("flowmod_emit", 2_000_000, 9, || {
                buf.clear();
                black_box(&parsed_fm).emit(&mut buf);
                black_box(&buf);
            }),
        ),
        (
            "flowmod_parse_emit",
            flowmod.len(),
            rate("flowmod_parse_emit", 2_000_000, 9, || {
                buf.clear();
                if let Ok(m) = OfpMessage::parse(black_box(&flowmod)) {
                    m.emit(&mut buf);
                }
                black_box(&buf);
            }),
        ),
        (
            "packetin_parse",
            packetin.len(),
            rate("packetin_parse", 2_000_000, 9, || {
                black_box(OfpMessage::parse(black_box(&packetin)).ok());
            }),
        ),
        (
            "flowstats1000_parse",
            stats_bytes,
            rate("flowstats1000_parse", 200, 9, || {
                for s in &stats {
                    black_box(OfpMessage::parse(black_box(s)).ok());
                }
            }),
        ),
    ];

    let peer = peer_rates(&data);
    println!(
        "{:<22} {:>14} {:>12} {:>14} {:>9}",
        "workload", "periscope/s", "MB/s", "os-ken/s", "ratio"
    );
    for (name, bytes, r) in rows {
        let (p, ratio) = match peer.as_ref().and_then(|p| p.get(name)).and_then(|v| v.as_f64()) {
            Some(p) => (format!("{p:.0}"), format!("{:.0}x", r / p)),
            None => ("-".into(), "-".into()),
        };
        println!("{name:<22} {r:>14.0} {:>12.1} {p:>14} {ratio:>9}", r * bytes as f64 / 1e6);
    }
    if peer.is_none() {
        println!("(os-ken not measured: run benches/peers/setup.sh first)");
    }
}

fn peer_rates(data: &Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("PERISCOPE_OSKEN_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|_| root.join("target/peers/osken/bin/python"));
    if !python.exists() {
        return None;
    }
    let out = Command::new(&python)
        .arg(root.join("benches/peers/osken_codec.py"))
        .arg(data)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("os-ken run failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).ok()?;
    // os-ken measures parse + serialize of the FLOW_MOD as one operation.
    if let Some(x) = v.get("flowmod_parse_emit").cloned() {
        v.insert("flowmod_emit".into(), serde_json::Value::Null);
        v.insert("flowmod_parse_emit".into(), x);
    }
    Some(v)
}
