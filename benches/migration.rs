//! Mirror reprogramming time across live migrations, on real Open vSwitch.
//!
//! Two hypervisors (each its own ovsdb-server and userspace ovs-vswitchd), a tapped VM that
//! migrates back and forth make-before-break, and a second tapped VM on each side so that the
//! tunnel ports exist (as they do in a cloud with taps everywhere). For every migration the
//! controller reports how long the destination bridge took from the topology event (the OVSDB
//! update that put the interface there) to the switch's confirmation of its flows; this prints
//! p50, p99 and max, next to the anchor (OVN: port bound to flows installed, avg 1149 ms, p95
//! 1711 ms, ovn-heater).
//!
//! Then it measures what exact copies cost the VM's own traffic: the VM migrates again while the
//! other VM pings it every 5 ms, first with its tap flow (the VM's first frames at the
//! destination are held while the copies of what it receives move there), then with the tap flow
//! deleted (what the migration costs anyway). The pause is the longest run of lost echoes, times
//! the interval; the difference between the two is periscope's share.
//!
//! Needs root. `cargo bench --bench migration`; `PERISCOPE_BENCH_MIGRATIONS` sets the count of
//! the first part (default 40), `PERISCOPE_BENCH_PAUSES` that of each half of the second
//! (default 20).

use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{
    ControllerTarget, Hypervisor, HypervisorOptions, Lab, TunnelKey, TunnelKind, TunnelRemote, Vm,
    VmOptions,
};
use serde_json::json;

fn main() -> std::process::ExitCode {
    let count = |var: &str, default: usize| -> usize {
        std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let (n, pauses) =
        (count("PERISCOPE_BENCH_MIGRATIONS", 40), count("PERISCOPE_BENCH_PAUSES", 20));
    let exe = env!("CARGO_BIN_EXE_periscope");
    let lab = Lab::new().expect("lab (needs root)");
    let sock = lab.dir().join("of.sock");
    let opts = || HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone()));
    let hv1 = lab.add_hypervisor("hv1", opts()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", opts()).expect("hv2");
    for (a, b) in [(&hv1, &hv2), (&hv2, &hv1)] {
        a.add_tunnel_port(
            &format!("vx-{}", b.name()),
            TunnelKind::Vxlan,
            TunnelRemote::Ip(b.underlay_ip()),
            TunnelKey::Fixed(7),
        )
        .expect("tenant tunnel");
    }
    let tenant = |o: VmOptions| o.external_id("tenant-id", "bank-a").external_id("app", "payments");
    let mut vm = lab.add_vm(&hv1, tenant(VmOptions::new("vm"))).expect("vm");
    let _a = lab.add_vm(&hv1, tenant(VmOptions::new("a"))).expect("a");
    let b = lab.add_vm(&hv2, tenant(VmOptions::new("b"))).expect("b");
    let col = lab.add_collector("col").expect("collector");
    let args = vec![
        format!("--openflow=punix:{}", sock.display()),
        format!("--ovsdb=hv1={}", hv1.db_remote()),
        format!("--ovsdb=hv2={}", hv2.db_remote()),
        "--log-format=json".to_string(),
    ];
    let ctl = ControllerProcess::start(exe, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    ctl.allow("bank-a", &[&format!("{}/32", col.ip())]).expect("bank-a's collectors");
    let (_, svc) = ctl
        .call("POST", "/v1/tap_services", Some(&json!({"name": "c", "tenant": "bank-a", "encap": "vxlan", "remote_ip": col.ip().to_string()})))
        .expect("service");
    let (_, flow) = ctl.call("POST", "/v1/tap_flows", Some(&json!({
        "name": "payments", "tenant": "bank-a", "tap_service": svc["id"], "source": {"selector": {"app": "payments"}}, "direction": "BOTH"
    })))
    .expect("flow");
    std::thread::sleep(Duration::from_secs(2));
    b.ping(vm.ip(), 2, Duration::from_millis(50)).expect("warm-up");

    let (dpid1, dpid2) = (format!("{:016x}", hv1.dpid()), format!("{:016x}", hv2.dpid()));
    let mut dest_ms = Vec::new();
    for i in 0..n {
        let (to, dest) = if i % 2 == 0 { (&hv2, &dpid2) } else { (&hv1, &dpid1) };
        let before = ctl.log().lines().count();
        vm.migrate(to).expect("migrate");
        // Let the destination confirm and the source clean up.
        std::thread::sleep(Duration::from_millis(300));
        let log = ctl.log();
        // The first reprogramming of the destination after the interface appeared there.
        let first = log
            .lines()
            .skip(before)
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| {
                v["msg"] == "bridge reprogrammed" && v["dpid"].as_str() == Some(dest.as_str())
            });
        if let Some(ms) = first.and_then(|v| v["ms"].as_f64()) {
            dest_ms.push(ms);
        }
    }
    dest_ms.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| quantile(&dest_ms, p);
    println!("migrations: {n}, destination reprogrammings measured: {}", dest_ms.len());
    if dest_ms.is_empty() {
        for l in ctl
            .log()
            .lines()
            .filter(|l| l.contains("reprogram") || l.contains("migration"))
            .take(10)
        {
            println!("  {l}");
        }
        // Returning (not exiting) lets the controller and the lab be torn down.
        return std::process::ExitCode::FAILURE;
    }
    let mean = dest_ms.iter().sum::<f64>() / dest_ms.len() as f64;
    println!("{:<34} {:>9} {:>9} {:>9} {:>9}", "", "mean ms", "p50 ms", "p99 ms", "max ms");
    println!(
        "{:<34} {mean:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        "periscope (destination confirmed)",
        q(0.5),
        q(0.99),
        q(1.0)
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "OVN anchor (ovn-heater, 13,750 ports)", "1149", "-", "1711 p95", "-"
    );
    println!("ratio (OVN mean / periscope mean): {:.0}x", 1149.0 / mean);
    println!(
        "{}",
        json!({"migrations": n, "measured": dest_ms.len(), "mean_ms": mean, "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0)})
    );

    // The VM's own traffic across a migration, tapped and then untapped.
    let tapped = pause_per_migration(&mut vm, &b, [&hv1, &hv2], pauses);
    let (status, _) = ctl
        .call("DELETE", &format!("/v1/tap_flows/{}", flow["id"]), None)
        .expect("deleting the tap flow");
    assert_eq!(status, 200, "deleting the tap flow");
    std::thread::sleep(Duration::from_secs(1));
    let untapped = pause_per_migration(&mut vm, &b, [&hv1, &hv2], pauses);
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "pings towards the VM, 5 ms apart", "mean ms", "p50 ms", "p90 ms", "max ms"
    );
    for (name, ms) in [("pause, tapped (exact copies)", &tapped), ("pause, untapped", &untapped)] {
        let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
        let (p50, p90, max) = (quantile(ms, 0.5), quantile(ms, 0.9), quantile(ms, 1.0));
        println!("{name:<34} {mean:>9.1} {p50:>9.1} {p90:>9.1} {max:>9.1}");
    }
    println!("{}", json!({"pause_tapped_ms": tapped, "pause_untapped_ms": untapped}));
    std::process::ExitCode::SUCCESS
}

/// Echoes towards the VM every [`PAUSE_INTERVAL`] while it migrates.
const PAUSE_INTERVAL: Duration = Duration::from_millis(5);

/// Migrates `vm` back and forth `count` times while `peer` pings it, and returns, sorted, each
/// migration's pause: the longest run of lost echoes times the interval.
fn pause_per_migration(vm: &mut Vm, peer: &Vm, hvs: [&Hypervisor; 2], count: usize) -> Vec<f64> {
    let mut pauses = Vec::new();
    for _ in 0..count {
        let to = if vm.hypervisor().name() == hvs[0].name() { hvs[1] } else { hvs[0] };
        // 1.2 s of echoes; the migration starts 300 ms in.
        let run = peer.ping_start(vm.ip(), 240, PAUSE_INTERVAL).expect("ping");
        std::thread::sleep(Duration::from_millis(300));
        vm.migrate(to).expect("migrate");
        let report = run.wait().expect("ping report");
        let lost = report.lost();
        let longest = lost
            .iter()
            .fold((0u32, 0u32, 0u32), |(best, run, prev), s| {
                let run = if prev + 1 == *s { run + 1 } else { 1 };
                (best.max(run), run, *s)
            })
            .0;
        pauses.push(f64::from(longest) * PAUSE_INTERVAL.as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(300));
    }
    pauses.sort_by(|a, b| a.total_cmp(b));
    pauses
}

/// The `p` quantile of sorted values (nearest rank), 0 for none.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
