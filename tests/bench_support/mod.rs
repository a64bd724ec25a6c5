//! Shared by the `periscope bench` tests: run one bench mode with its JSON in a temporary file
//! and read back the first result.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// A JSON file path unique to this test run, removed when dropped.
struct TempJson(PathBuf);

impl TempJson {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        TempJson(
            std::env::temp_dir()
                .join(format!("periscope-test-bench-{name}-{}-{nanos}.json", std::process::id())),
        )
    }
}

impl Drop for TempJson {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What one bench run gave.
pub struct BenchRun {
    /// Whether `periscope bench` exited with success.
    pub ok: bool,
    /// The table it printed.
    pub table: String,
    /// What it printed on standard error.
    pub stderr: String,
    /// The whole JSON report.
    pub report: Value,
}

impl BenchRun {
    /// Panics with what it printed unless it succeeded.
    pub fn assert_ok(&self) {
        assert!(self.ok, "bench failed:\n{}\n{}", self.table, self.stderr);
    }

    /// The first controller's result.
    pub fn first(&self) -> &Value {
        &self.report["results"][0]
    }
}

/// Runs `periscope bench ARGS --json FILE` (`name` makes the file's name unique to the test).
pub fn bench(name: &str, args: &[&str]) -> BenchRun {
    let json = TempJson::new(name);
    let out = Command::new(PERISCOPE)
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json.0)
        .output()
        .expect("running periscope bench");
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let body = std::fs::read_to_string(&json.0)
        .unwrap_or_else(|e| panic!("no JSON ({e}):\n{table}\n{stderr}"));
    let report: Value = serde_json::from_str(&body).expect("JSON parses");
    BenchRun { ok: out.status.success(), table, stderr, report }
}

/// A counter of a result, which must be there.
pub fn count(r: &Value, k: &str) -> u64 {
    r[k].as_u64().unwrap_or_else(|| panic!("{k}: {r}"))
}
