//! `periscope demo`: builds a small real Open vSwitch topology on this machine, starts the
//! controller on it, and shows it at work. Everything it creates is removed when it ends.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::lab::controller::ControllerProcess;
use crate::lab::{ControllerTarget, Hypervisor, HypervisorOptions, Lab, VmOptions};

/// Options of `periscope demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {}

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

fn our_flows(hv: &Hypervisor) -> anyhow::Result<Vec<String>> {
    let dump = hv.ofctl(&["dump-flows", "br-int"])?;
    Ok(dump.lines().filter(|l| l.contains("cookie=0x5053")).map(|l| l.trim().to_string()).collect())
}

/// Runs the demo; exits non-zero if anything it shows did not work.
pub fn run(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !nix_root() {
        bail!("the demo builds network namespaces and Open vSwitch instances: run it as root");
    }
    let exe = std::env::current_exe().context("finding the periscope executable")?;
    let lab = Lab::new().context("creating the lab")?;
    println!(
        "periscope demo (everything below is named {}-*, and removed at the end)",
        lab.prefix()
    );

    step(1, "A hypervisor: its own ovsdb-server and ovs-vswitchd (userspace datapath), br-int in fail_mode=secure");
    let sock = lab.dir().join("openflow.sock");
    let hv = lab
        .add_hypervisor(
            "hv1",
            HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone())),
        )
        .context("starting hypervisor hv1")?;
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1").external_id("tenant-id", "bank-a"))?;
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2").external_id("tenant-id", "bank-a"))?;
    println!(
        "    vm1 {} ({}) and vm2 {} ({}) are plugged into br-int",
        vm1.ip(),
        vm1.mac(),
        vm2.ip(),
        vm2.mac()
    );

    step(2, "Without a controller, a secure bridge has no flows and forwards nothing");
    let r = vm1.ping(vm2.ip(), 2, Duration::from_millis(200))?;
    println!("    ping vm1 -> vm2: {}/{} replies", r.received, r.sent);

    step(3, "periscope run: the bridge connects over OpenFlow 1.3 and gets periscope's pipeline");
    let ctl = ControllerProcess::start(
        &exe,
        &[format!("--openflow=punix:{}", sock.display())],
        &lab.dir().join("controller.log"),
    )?;
    println!("    controller pid {}, REST API on http://{}", ctl.pid(), ctl.api());
    let start = Instant::now();
    let flows = loop {
        let f = our_flows(&hv)?;
        if !f.is_empty() {
            break f;
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("the bridge got no flows from the controller; its log:\n{}", ctl.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("    ovs-ofctl dump-flows br-int (periscope's flows, cookie 0x5053...):");
    for f in &flows {
        println!("      {f}");
    }
    let r = vm1.ping(vm2.ip(), 5, Duration::from_millis(50))?;
    println!("    ping vm1 -> vm2: {}/{} replies", r.received, r.sent);
    if r.received != r.sent {
        bail!("forwarding through the controller's pipeline lost packets");
    }
    let (_, switches) = ctl.call("GET", "/v1/switches", None)?;
    println!("    GET /v1/switches -> {switches}");

    step(4, "Cleaning up");
    ctl.stop();
    lab.teardown();
    println!("    done: no namespace, process or file of the demo is left");
    Ok(ExitCode::SUCCESS)
}

fn nix_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
