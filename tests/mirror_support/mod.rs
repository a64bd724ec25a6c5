//! What the end-to-end mirror tests share: waiting, the API, periscope's ports on a bridge,
//! copies at a collector, a migration timed as a cloud times it, and three hypervisors whose
//! tenants' overlay is a VXLAN star around the third, with periscope as their controller.
// Each test binary uses its own part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{
    Capture, ControllerTarget, EchoKind, Encap, Hypervisor, HypervisorOptions, Lab, MigrationStep,
    MigrationTimings, Vm,
};
use serde_json::Value;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// Waits until `cond` holds, or fails the test naming `what`.
pub fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"));
}

/// Whether br-int has a port whose name starts with `prefix` (periscope's tunnel ports are
/// `psc-vx-<bridge>`, `psc-gre-<bridge>` and `psc-er-<bridge>`).
pub fn has_port(hv: &Hypervisor, prefix: &str) -> bool {
    hv.vsctl(&["list-ports", "br-int"])
        .map(|p| p.lines().any(|l| l.trim().starts_with(prefix)))
        .unwrap_or(false)
}

/// The sequence numbers of the echoes of `kind` from `src` to `dst` copied under VXLAN `key`.
pub fn echo_seqs(
    cap: &Capture,
    key: u32,
    kind: EchoKind,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> BTreeSet<u16> {
    cap.frames
        .iter()
        .filter(|f| f.encap == Encap::Vxlan && f.key == Some(key))
        .filter(|f| f.ip_src == Some(src) && f.ip_dst == Some(dst))
        .filter_map(|f| f.icmp.filter(|e| e.kind == kind).map(|e| e.seq))
        .collect()
}

/// POSTs to the API and expects the object created.
pub fn post(ctl: &ControllerProcess, path: &str, body: Value) -> Value {
    let (status, v) = ctl.call("POST", path, Some(&body)).expect("api");
    assert_eq!(status, 201, "POST {path} {body}: {v}");
    v
}

/// Live-migrates `vm` to `to` the way a cloud does (Nova waits for the destination's
/// vif-plugged event): the VM switches to the destination only once the controller reports the
/// destination programmed for the tap flow `flow`.
pub fn migrate_once_programmed(
    vm: &mut Vm,
    to: &Hypervisor,
    ctl: &ControllerProcess,
    flow: &Value,
) -> MigrationTimings {
    let flow_path = format!("/v1/tap_flows/{}", flow["id"]);
    let dest = to.name().to_string();
    vm.migrate_with(to, |step, _| {
        if step == MigrationStep::Plugged {
            wait_for("the destination programmed", Duration::from_secs(10), || {
                ctl.call("GET", &flow_path, None).is_ok_and(|(_, v)| {
                    v["active"].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|l| l["hypervisor"] == dest.as_str() && l["programmed"] == true)
                    })
                })
            });
        }
        Ok(())
    })
    .expect("migrate")
}

/// hv1, hv2 and hv3, secure bridges controlled over a unix socket in the lab's directory. The
/// tenants' own overlay is a VXLAN star around hv3 (key 7), forwarded by NORMAL, its ports with
/// `options:local_ip` (which is how periscope learns a hypervisor's tunnel endpoint here).
pub fn star(lab: &Lab) -> [Hypervisor; 3] {
    let hvs = ["hv1", "hv2", "hv3"].map(|n| controlled(lab, n));
    let [hv1, hv2, hv3] = &hvs;
    hv3.add_overlay_star(&[hv1, hv2], 7).expect("tenant tunnels");
    hvs
}

/// A hypervisor whose secure bridge is controlled over a unix socket in the lab's directory
/// (the one [`controller`] listens on).
pub fn controlled(lab: &Lab, name: &str) -> Hypervisor {
    let sock = lab.dir().join("of.sock");
    let opts = HypervisorOptions::secure().controller(ControllerTarget::Unix(sock));
    lab.add_hypervisor(name, opts).expect(name)
}

/// periscope controlling the lab's bridges and monitoring the databases of `hvs`.
pub fn controller(lab: &Lab, hvs: &[&Hypervisor]) -> ControllerProcess {
    let mut args = vec![format!("--openflow=punix:{}", lab.dir().join("of.sock").display())];
    for hv in hvs {
        args.push(format!("--ovsdb={}={}", hv.name(), hv.db_remote()));
    }
    ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller")
}
