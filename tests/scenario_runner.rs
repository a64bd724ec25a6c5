//! `periscope scenario` end to end through the real binary: a lab of real Open vSwitch, the
//! controller started by the runner, a timeline, the exit code and the JSON report. Nothing
//! here needs mirror copies (the runner must work before the controller makes them).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// A file in the temp directory named after the test, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(test: &str, ext: &str, text: &str) -> TempFile {
        let p =
            std::env::temp_dir().join(format!("periscope-scn-{}-{test}.{ext}", std::process::id()));
        std::fs::write(&p, text).expect("writing a temp file");
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn periscope(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(PERISCOPE).args(args).output().expect("running periscope")
}

fn run_scenario(test: &str, text: &str) -> (Option<i32>, Value, String) {
    let file = TempFile::new(test, "toml", text);
    let json = TempFile::new(test, "json", "");
    let out = periscope(&[
        "scenario".as_ref(),
        "run".as_ref(),
        file.0.as_os_str(),
        "--json".as_ref(),
        json.0.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json.0).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stdout:\n{stdout}\nstderr:\n{stderr}"));
    (out.status.code(), report, format!("{stdout}\n{stderr}"))
}

const MIGRATION: &str = r#"
description = "two VMs ping through secure bridges driven by periscope run, then one migrates"

[[hypervisor]]
name = "hv1"

[[hypervisor]]
name = "hv2"
controller = "tcp"

[[vm]]
name = "vm1"
hypervisor = "hv1"
tenant = "t1"

[[vm]]
name = "vm2"
hypervisor = "hv2"
tenant = "t1"

[[step]]
at = 0
action = "start_ping"
name = "p"
from = "vm2"
to = "vm1"
interval_ms = 20
count = 100

[[step]]
at = 0.8
action = "migrate"
vm = "vm1"
to = "hv2"

[[expect]]
kind = "ping"
ping = "p"
max_loss = 2

[[expect]]
kind = "no_leftover_flows"
hypervisor = "hv1"

[[expect]]
kind = "no_leftover_tunnel_ports"
hypervisor = "hv1"
"#;

#[test]
fn two_vms_ping_through_the_controller_across_a_migration() {
    let (code, r, out) = run_scenario("migration", MIGRATION);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(r["outcome"], "passed", "{out}");
    assert_eq!(r["error"], Value::Null);
    let steps = r["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s["ok"] == true), "{out}");
    assert_eq!(steps[1]["action"], "migrate");
    assert!(steps[1]["started_s"].as_f64().unwrap_or(0.0) >= 0.8);
    assert!(steps[1]["detail"].as_str().unwrap_or("").contains("hv1 -> hv2"), "{out}");
    let p = &r["pings"][0];
    assert_eq!(p["sent"], 100);
    assert!(p["received"].as_u64().unwrap_or(0) >= 98, "{out}");
    let verdicts = r["expectations"].as_array().expect("expectations");
    assert_eq!(verdicts.len(), 3);
    assert!(verdicts.iter().all(|v| v["passed"] == true), "{out}");
    assert!(r["controller"]["openflow"].as_str().unwrap_or("").contains("tcp:"), "{out}");
    assert!(out.contains("PASSED: 3/3 expectations held"), "{out}");
}

const ISOLATION: &str = r#"
description = "VMs of two tenants cannot reach each other, so a ping expectation fails"

[[hypervisor]]
name = "hv1"

[[vm]]
name = "a"
hypervisor = "hv1"
tenant = "t1"

[[vm]]
name = "b"
hypervisor = "hv1"
tenant = "t2"

[[step]]
action = "start_ping"
from = "a"
to = "b"
interval_ms = 100
count = 3

[[expect]]
kind = "ping"
ping = "ping1"
"#;

#[test]
fn a_failed_expectation_exits_1_and_says_why() {
    let (code, r, out) = run_scenario("isolation", ISOLATION);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["pings"][0]["received"], 0, "{out}");
    assert_eq!(r["expectations"][0]["passed"], false);
    assert!(out.contains("FAIL  ping1 loses <= 0  0/3 replies"), "{out}");
}

#[test]
fn a_bad_file_is_refused_before_anything_is_built() {
    let bad = MIGRATION.replace("vm = \"vm1\"\nto = \"hv2\"", "vm = \"vm7\"\nto = \"hv2\"");
    let file = TempFile::new("bad", "toml", &bad);
    let out = periscope(&["scenario".as_ref(), "run".as_ref(), file.0.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains(&file.0.display().to_string()), "{err}");
    assert!(err.contains("[[step]] #2 (line "), "{err}");
    assert!(err.contains("vm = \"vm7\""), "{err}");
    assert!(!err.contains("lab p"), "nothing may be built: {err}");
}

#[test]
fn list_shows_every_shipped_scenario_with_its_description() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let out = periscope(&["scenario".as_ref(), "list".as_ref(), dir.as_os_str()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".toml").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in names.iter().map(String::as_str) {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(name));
        let line = line.unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
        assert!(line.len() > name.len() + 10, "{line}");
        assert!(!line.contains("invalid"), "{line}");
    }
}
