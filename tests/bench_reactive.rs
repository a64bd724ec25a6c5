//! `periscope bench reactive` against a `periscope run --app learning-switch` it starts itself:
//! the emulated switches' packet-ins are answered by flow mods and packet-outs in both modes,
//! and the latency mode times the packet-out that carries each packet-in back.

mod bench_support;

use bench_support::{bench, count};
use serde_json::Value;

/// Runs `periscope bench reactive --mode MODE` on 4 switches of 10 hosts each: (exit success,
/// the table, periscope's result).
fn reactive(mode: &str) -> (bool, String, Value) {
    let args = ["reactive", "--mode", mode, "--switches", "4", "--macs", "10"];
    let window = ["--warmup-secs", "1", "--duration-secs", "1", "--timeout-secs", "60"];
    let run = bench(&format!("reactive-{mode}"), &[&args[..], &window[..]].concat());
    assert_eq!(run.report["mode"], "reactive", "{}", run.report);
    let first = run.first().clone();
    (run.ok, run.table, first)
}

#[test]
fn throughput_packet_ins_are_answered_by_flow_mods_and_packet_outs() {
    let (ok, table, r) = reactive("throughput");
    assert!(ok, "bench failed:\n{table}");
    assert_eq!(r["controller"], "periscope", "{r}");
    assert_eq!((count(&r, "handshaken"), count(&r, "failures")), (4, 0), "{r}");
    // Ten hosts per switch are learned in the warm-up: from then on every packet-in gets its
    // flow installed and is sent on.
    assert!(count(&r, "packet_ins") > 0, "{r}");
    assert!(count(&r, "flow_mods") > 0, "{r}");
    assert!(count(&r, "packet_outs") > 0, "{r}");
    assert!(r["responses_per_sec"].as_f64().is_some_and(|x| x > 0.0), "{r}");
    assert!(table.contains("responses/s"), "{table}");
    // The learning switch floods every announcement back: all 40 hosts are known.
    assert_eq!(count(&r, "hosts_learned"), 40, "{r}");
    assert!(r["hosts_learned_per_sec"].as_f64().is_some_and(|x| x > 0.0), "{r}");
}

#[test]
fn latency_mode_times_each_packet_in_to_its_packet_out() {
    let (ok, table, r) = reactive("latency");
    assert!(ok, "bench failed:\n{table}");
    assert_eq!((count(&r, "handshaken"), count(&r, "failures")), (4, 0), "{r}");
    let answered = count(&r, "answered");
    assert!(answered > 0, "{r}");
    // One packet-in outstanding per switch: no more answers than packet-ins sent, give or
    // take the four in flight when the window opened.
    assert!(answered <= count(&r, "packet_ins") + 4, "{r}");
    let p50 = r["latency_p50_us"].as_f64().unwrap_or(0.0);
    let p99 = r["latency_p99_us"].as_f64().unwrap_or(0.0);
    assert!(p50 > 0.0 && p99 >= p50, "{r}");
}
