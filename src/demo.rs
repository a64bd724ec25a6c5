//! `periscope demo`: builds a small real Open vSwitch topology on this machine, starts the
//! controller on it, and shows it at work: a secure bridge forwarding under the controller, a
//! tenant's tap copying a VM's traffic to its collector, and the copies following the VM through
//! a live migration. Everything it creates is removed when it ends.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use crate::lab::controller::ControllerProcess;
use crate::lab::wait_until;
use crate::lab::{
    ControllerTarget, EchoKind, Encap, Hypervisor, HypervisorOptions, Lab, TunnelKey, TunnelKind,
    TunnelRemote, VmOptions,
};
use crate::policy::cookie::{self, Kind};

/// Options of `periscope demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {}

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

/// periscope's flows on br-int whose cookie is of `kind` (all of periscope's with `None`), as
/// an engineer reads them: `ovs-ofctl --no-stats dump-flows` filtered by cookie.
fn flows(hv: &Hypervisor, kind: Option<Kind>) -> anyhow::Result<Vec<String>> {
    let (c, mask) = match kind {
        None => (cookie::MAGIC, cookie::OURS_MASK),
        Some(k) => (cookie::cookie(k, 0).0, cookie::OURS_MASK | 0xff << 40),
    };
    let dump =
        hv.ofctl(&["--no-stats", "dump-flows", "br-int", &format!("cookie={c:#x}/{mask:#x}")])?;
    Ok(dump.lines().filter(|l| l.contains("actions=")).map(|l| l.trim().to_string()).collect())
}

/// Waits until `cond` holds; an error from it counts as "not yet".
fn wait(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    wait_until(what, timeout, || cond().unwrap_or(false))?;
    Ok(())
}

/// Runs the demo; exits non-zero if anything it shows did not work.
pub fn run(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    if let Err(why) = crate::lab::preflight::check() {
        bail!("cannot run the demo: {why}");
    }
    let exe = std::env::current_exe().context("finding the periscope executable")?;
    let lab = Lab::new().context("creating the lab")?;
    // The collector runs as this same binary, so the demo needs nothing else built.
    lab.set_collector_command(&exe, vec!["scenario".into(), "collector".into()]);
    println!(
        "periscope demo (everything below is named {}-*, and removed at the end)",
        lab.prefix()
    );

    step(1, "Two hypervisors, each with its own ovsdb-server and ovs-vswitchd; br-int in fail_mode=secure");
    let sock = lab.dir().join("openflow.sock");
    let opts = || HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone()));
    let hv1 = lab.add_hypervisor("hv1", opts()).context("starting hv1")?;
    let hv2 = lab.add_hypervisor("hv2", opts()).context("starting hv2")?;
    for (a, b) in [(&hv1, &hv2), (&hv2, &hv1)] {
        a.add_tunnel_port(
            &format!("vx-{}", b.name()),
            TunnelKind::Vxlan,
            TunnelRemote::Ip(b.underlay_ip()),
            TunnelKey::Fixed(7),
        )?;
    }
    let mut vm1 = lab.add_vm(&hv1, VmOptions::new("vm1").external_id("tenant-id", "bank-a"))?;
    let vm2 = lab.add_vm(&hv2, VmOptions::new("vm2").external_id("tenant-id", "bank-a"))?;
    let mut col = lab.add_collector("col")?;
    println!(
        "    vm1 {} on hv1, vm2 {} on hv2 (tenant bank-a); the tenant's collector at {}",
        vm1.ip(),
        vm2.ip(),
        col.ip()
    );
    let r = vm2.ping(vm1.ip(), 2, Duration::from_millis(200))?;
    println!("    without a controller: ping vm2 -> vm1: {}/{} replies", r.received, r.sent);

    step(2, "periscope run: OpenFlow 1.3 from both bridges, OVSDB to both hypervisors");
    let mut args = vec![format!("--openflow=punix:{}", sock.display())];
    for hv in [&hv1, &hv2] {
        args.push(format!("--ovsdb={}={}", hv.name(), hv.db_remote()));
    }
    let ctl = ControllerProcess::start(&exe, &args, &lab.dir().join("controller.log"))?;
    println!("    controller pid {}, REST API on http://{}", ctl.pid(), ctl.api());
    wait("the bridges' pipelines", Duration::from_secs(20), || {
        Ok(!flows(&hv1, None)?.is_empty() && !flows(&hv2, None)?.is_empty())
    })?;
    vm2.ping(vm1.ip(), 3, Duration::from_millis(50))?;
    let r = vm2.ping(vm1.ip(), 5, Duration::from_millis(50))?;
    println!("    ping vm2 -> vm1: {}/{} replies", r.received, r.sent);

    step(3, "The tenant asks for a copy of vm1's traffic (REST API)");
    ctl.allow("bank-a", &[&format!("{}/32", col.ip())])?;
    println!("    PUT /v1/tenants/bank-a -> copies may go to {} only", col.ip());
    let svc = json!({"name": "perf", "tenant": "bank-a", "encap": "vxlan", "remote_ip": col.ip().to_string()});
    let (_, svc) = ctl.call("POST", "/v1/tap_services", Some(&svc))?;
    println!("    POST /v1/tap_services -> {svc}");
    let key = svc["key"].as_u64().context("the service's key")? as u32;
    let tf = json!({"name": "vm1", "tenant": "bank-a", "tap_service": svc["id"], "source": {"vm": vm1.vm_uuid()}, "direction": "BOTH"});
    let (_, tf) = ctl.call("POST", "/v1/tap_flows", Some(&tf))?;
    println!(
        "    POST /v1/tap_flows -> id {}, source {}, direction {}",
        tf["id"], tf["source"], tf["direction"]
    );
    wait("the mirror flows on hv1", Duration::from_secs(20), || {
        Ok(flows(&hv1, Some(Kind::Mirror))?.len() >= 2)
    })?;
    println!("    hv1 now holds a tunnel port psc-vx-... and these copy flows:");
    for f in flows(&hv1, None)? {
        println!("      {f}");
    }

    step(4, "Traffic, and a live migration of vm1 to hv2 in the middle of it");
    vm2.ping(vm1.ip(), 2, Duration::from_millis(50))?;
    let pings = 100;
    let run = vm2.ping_start(vm1.ip(), pings, Duration::from_millis(20))?;
    std::thread::sleep(Duration::from_millis(700));
    let t = vm1.migrate(&hv2)?;
    let report = run.wait()?;
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.stop()?;
    println!(
        "    migration: plugged on hv2 in {:?}, VM switched in {:?}, unplugged from hv1 in {:?}",
        t.plugged - t.started,
        t.switched - t.plugged,
        t.unplugged - t.switched
    );
    println!(
        "    ping vm2 -> vm1 during the migration: {}/{} replies",
        report.received, report.sent
    );
    let replied: BTreeSet<u16> = report.replies.iter().map(|r| r.seq as u16).collect();
    let out: BTreeSet<u16> =
        cap.echo_seqs(Encap::Vxlan, key, EchoKind::Reply, vm1.ip()).into_iter().collect();
    let inn: BTreeSet<u16> =
        cap.echo_seqs(Encap::Vxlan, key, EchoKind::Request, vm2.ip()).into_iter().collect();
    let missed = replied.iter().filter(|s| !out.contains(s) || !inn.contains(s)).count();
    println!("    collector, VNI {key}: {} frames; every answered ping copied both ways: {}; duplicates: {}; other keys: {:?}",
        cap.frames.len(), missed == 0, cap.duplicates().len(), cap.foreign_keys(&[(Encap::Vxlan, key)]));
    wait("hv1 cleaned up", Duration::from_secs(10), || {
        Ok(flows(&hv1, Some(Kind::Mirror))?.is_empty())
    })?;
    println!(
        "    hv1 copy flows after the migration: {}; hv2 copy flows: {}",
        flows(&hv1, Some(Kind::Mirror))?.len(),
        flows(&hv2, Some(Kind::Mirror))?.len()
    );
    let (_, status) = ctl.call("GET", &format!("/v1/tap_flows/{}", tf["id"]), None)?;
    println!(
        "    GET /v1/tap_flows/{} -> status {}, active {}",
        tf["id"], status["status"], status["active"]
    );
    if missed != 0 || !cap.duplicates().is_empty() {
        bail!("the copies did not follow the migration cleanly (missed {missed})");
    }

    step(5, "Cleaning up");
    ctl.stop();
    lab.teardown();
    println!("    done: no namespace, process or file of the demo is left");
    Ok(ExitCode::SUCCESS)
}
