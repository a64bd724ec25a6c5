//! Every shipped scenario, run through the real binary against real Open vSwitch, one after
//! the other (they are heavy: several hypervisors each with its own ovsdb-server and
//! ovs-vswitchd). A scenario passes when every one of its expectations held.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// Runs one scenario and returns its outcome and the failed expectations, if any.
fn run(name: &str) -> (String, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("scenarios").join(format!("{name}.toml"));
    let json =
        std::env::temp_dir().join(format!("periscope-scenario-{name}-{}.json", std::process::id()));
    let out = Command::new(PERISCOPE)
        .args(["scenario", "run", "-q", "--json"])
        .arg(&json)
        .arg(&file)
        .output()
        .expect("running periscope scenario");
    let report: Value =
        std::fs::read(&json).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_else(
            || panic!("{name}: no JSON report; stderr:\n{}", String::from_utf8_lossy(&out.stderr)),
        );
    let _ = std::fs::remove_file(&json);
    let failed = report["expectations"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["passed"] != Value::Bool(true))
                .map(|x| format!("{} {}", x["description"], x["detail"]))
                .collect()
        })
        .unwrap_or_default();
    (report["outcome"].as_str().unwrap_or("?").to_string(), failed)
}

#[test]
fn the_shipped_scenarios_pass() {
    let mut bad = Vec::new();
    // One after the other: `large` alone runs eight hypervisors with 40 VMs and ten concurrent
    // migrations on this two-core machine.
    for name in [
        "basic",
        "live-migration",
        "erspan",
        "two-tenants",
        "ping-pong",
        "scale-out",
        "restarts",
        "link-cut",
        "tls",
        "failover",
        "large",
    ] {
        let (outcome, failed) = run(name);
        eprintln!("{name}: {outcome}");
        if outcome != "passed" {
            bad.push(format!("{name}: {outcome}: {failed:#?}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
