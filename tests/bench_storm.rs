//! `periscope bench` against a `periscope run` it starts itself (ephemeral loopback port,
//! embedded northbound database, stopped by pid): every emulated switch is handshaken and gets
//! the base pipeline confirmed by a barrier; switch-initiated echo is answered; a controller
//! that is not there is reported as failures, not as figures.

mod bench_support;

use serde_json::Value;

/// Runs `periscope bench ARGS --json FILE`: (exit success, stdout, the first result).
fn bench(name: &str, args: &[&str]) -> (bool, String, Value) {
    let run = bench_support::bench(name, args);
    let first = run.first().clone();
    (run.ok, run.table, first)
}

#[test]
fn storm_of_50_switches_all_get_the_base_pipeline() {
    let (ok, table, r) =
        bench("storm", &["storm", "--switches", "50", "--settle-secs", "1", "--idle-secs", "1"]);
    assert!(ok, "bench failed:\n{table}");
    assert_eq!(r["controller"], "periscope", "{r}");
    assert_eq!(r["handshaken"], 50, "{r}");
    assert_eq!(r["failures"], 0, "{r}");
    // The base pipeline is several flows (one per table at least), then one barrier.
    assert!(r["flow_mods_min"].as_u64().is_some_and(|n| n >= 3), "{r}");
    assert_eq!(r["flow_mods_min"], r["flow_mods_max"], "every switch the same pipeline: {r}");
    let t = &r["totals"];
    assert!(t["barriers"].as_u64().is_some_and(|n| n >= 50), "{r}");
    assert_eq!(t["set_configs"], 50, "{r}");
    // PORT_DESC at handshake and the dump of our flows, per switch.
    assert!(t["multipart_requests"].as_u64().is_some_and(|n| n >= 100), "{r}");
    for k in ["features_p99_ms", "confirmed_p99_ms", "all_handshaken_ms"] {
        assert!(r[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {r}");
    }
    assert!(r["rss_idle_kib"].as_u64().is_some_and(|k| k > 0), "{r}");
    assert!(r["bytes_per_connection"].is_u64(), "{r}");
    assert!(table.contains("handshaken") && table.contains("bytes/connection"), "{table}");
}

#[test]
fn echo_from_the_switches_is_answered() {
    let (ok, table, r) = bench(
        "echo",
        &[
            "echo",
            "--switches",
            "10",
            "--echo-count",
            "5",
            "--settle-secs",
            "0",
            "--idle-secs",
            "0",
        ],
    );
    assert!(ok, "bench failed:\n{table}");
    assert_eq!(r["echo_replies"], 50, "{r}");
    assert!(r["echo_p99_ms"].as_f64().is_some_and(|x| x > 0.0), "{r}");
}

#[test]
fn a_controller_that_is_not_there_is_reported_as_failures() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("tcp:127.0.0.1:{port}");
    let (ok, table, r) = bench(
        "absent",
        &[
            "storm",
            "--switches",
            "3",
            "--controller",
            &addr,
            "--settle-secs",
            "0",
            "--idle-secs",
            "0",
        ],
    );
    assert!(!ok, "a bench with failures must not succeed:\n{table}");
    assert_eq!((r["handshaken"].as_u64(), r["failures"].as_u64()), (Some(0), Some(3)), "{r}");
    assert!(r["first_error"].as_str().is_some_and(|e| e.contains("connecting to")), "{r}");
    assert!(table.contains("first failure"), "{table}");
}
