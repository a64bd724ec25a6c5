//! `periscope bench waves` at small scale against a `periscope run` it starts itself: every
//! migration is confirmed on its destination and cleaned from its source, the bridges are
//! programmed at the start and again after the controller's restart, which sends no flow mod
//! (the emulated switches kept their flows).

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

fn count(r: &Value, k: &str) -> u64 {
    r[k].as_u64().unwrap_or_else(|| panic!("{k}: {r}"))
}

#[test]
fn every_migration_is_confirmed_and_a_restart_sends_nothing() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let json = TempJson(
        std::env::temp_dir()
            .join(format!("periscope-test-bench-waves-{}-{nanos}.json", std::process::id())),
    );
    let out = Command::new(PERISCOPE)
        .args(["bench", "waves", "--hypervisors", "6", "--interfaces", "60", "--tap-flows", "12"])
        .args(["--migrations", "4", "--rounds", "3", "--timeout-secs", "60", "--json"])
        .arg(&json.0)
        .output()
        .expect("running periscope bench");
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let body = std::fs::read_to_string(&json.0)
        .unwrap_or_else(|e| panic!("no JSON ({e}):\n{table}\n{stderr}"));
    let v: Value = serde_json::from_str(&body).expect("JSON parses");
    assert!(out.status.success(), "bench failed:\n{table}\n{stderr}");
    assert_eq!(v["mode"], "waves", "{v}");
    let r = &v["results"][0];
    assert_eq!(r["controller"], "periscope", "{r}");
    assert_eq!((count(r, "hypervisors"), count(r, "interfaces")), (6, 60), "{r}");
    // Twelve migrations in all, each confirmed at both ends.
    assert_eq!((count(r, "installed"), count(r, "cleaned")), (12, 12), "{r}");
    assert_eq!(count(r, "failures"), 0, "{r}");
    assert!(r["first_error"].is_null(), "{r}");
    let p50 = r["install_p50_ms"].as_f64().unwrap_or(-1.0);
    let max = r["install_max_ms"].as_f64().unwrap_or(-1.0);
    assert!(p50 > 0.0 && max >= p50, "{r}");
    // Each of the twelve tap flows needs flows on its VM's bridge.
    assert!(count(r, "initial_flow_mods") >= 12, "{r}");
    assert!(r["initial_program_ms"].as_f64().is_some(), "{r}");
    // The restarted controller read the bridges' flows back: they are what it wants.
    assert!(r["restart_reconciled_ms"].as_f64().is_some(), "{r}");
    assert_eq!(count(r, "restart_flow_mods"), 0, "{r}");
    assert!(count(r, "rss_programmed_kib") > 0, "{r}");
    assert!(table.contains("install p50/p99/max ms"), "{table}");
}
