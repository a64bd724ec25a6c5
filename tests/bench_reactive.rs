//! `periscope bench reactive` against a `periscope run --app learning-switch` it starts itself:
//! the emulated switches' packet-ins are answered by flow mods and packet-outs in both modes,
//! and the latency mode times the packet-out that carries each packet-in back.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// A JSON file path unique to this test run, removed when dropped.
struct TempJson(PathBuf);

impl Drop for TempJson {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `periscope bench reactive --mode MODE` on 4 switches of 10 hosts each: (exit success,
/// the table, periscope's result).
fn reactive(mode: &str) -> (bool, String, Value) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let json =
        TempJson(std::env::temp_dir().join(format!(
            "periscope-test-bench-reactive-{mode}-{}-{nanos}.json",
            std::process::id()
        )));
    let out = Command::new(PERISCOPE)
        .args(["bench", "reactive", "--mode", mode, "--switches", "4", "--macs", "10"])
        .args(["--warmup-secs", "1", "--duration-secs", "1", "--timeout-secs", "60", "--json"])
        .arg(&json.0)
        .output()
        .expect("running periscope bench");
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let body = std::fs::read_to_string(&json.0)
        .unwrap_or_else(|e| panic!("no JSON ({e}):\n{table}\n{stderr}"));
    let v: Value = serde_json::from_str(&body).expect("JSON parses");
    assert_eq!(v["mode"], "reactive", "{v}");
    (out.status.success(), table, v["results"][0].clone())
}

fn count(r: &Value, k: &str) -> u64 {
    r[k].as_u64().unwrap_or_else(|| panic!("{k}: {r}"))
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
