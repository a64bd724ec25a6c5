//! `periscope bench waves` at small scale against a `periscope run` it starts itself: every
//! migration is confirmed on its destination and cleaned from its source, the bridges are
//! programmed at the start and again after the controller's restart, which sends no flow mod
//! (the emulated switches kept their flows).

mod bench_support;

use bench_support::{bench, count};

#[test]
fn every_migration_is_confirmed_and_a_restart_sends_nothing() {
    let args = ["waves", "--hypervisors", "6", "--interfaces", "60", "--tap-flows", "12"];
    let more = ["--migrations", "4", "--rounds", "3", "--timeout-secs", "60"];
    let run = bench("waves", &[&args[..], &more[..]].concat());
    run.assert_ok();
    assert_eq!(run.report["mode"], "waves", "{}", run.report);
    let (r, table) = (run.first(), &run.table);
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
