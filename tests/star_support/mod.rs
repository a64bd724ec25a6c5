//! What the real-OVS tests of copies following migrations share: three hypervisors whose
//! tenants' overlay is a VXLAN star around the third, with periscope as their controller.

use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{
    ControllerTarget, Hypervisor, HypervisorOptions, Lab, TunnelKey, TunnelKind, TunnelRemote,
};
use serde_json::Value;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// Waits for `cond`, or fails the test naming `what`.
pub fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"));
}

/// Whether br-int has a port whose name starts with `prefix` (periscope's tunnel ports are
/// `psc-vx-<bridge>` and `psc-gre-<bridge>`).
pub fn has_port(hv: &Hypervisor, prefix: &str) -> bool {
    hv.vsctl(&["list-ports", "br-int"])
        .map(|p| p.lines().any(|l| l.trim().starts_with(prefix)))
        .unwrap_or(false)
}

/// `POST`s `body` to the API and expects 201.
pub fn post(ctl: &ControllerProcess, path: &str, body: Value) -> Value {
    let (status, v) = ctl.call("POST", path, Some(&body)).expect("api");
    assert_eq!(status, 201, "POST {path} {body}: {v}");
    v
}

/// hv1, hv2 and hv3, secure bridges controlled over a unix socket in the lab's directory. The
/// tenants' own overlay is a VXLAN star around hv3 (key 7), forwarded by NORMAL, its ports with
/// `options:local_ip` (which is how periscope learns a hypervisor's tunnel endpoint here).
pub fn star(lab: &Lab) -> [Hypervisor; 3] {
    let sock = lab.dir().join("of.sock");
    let opts = || HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone()));
    let hvs = ["hv1", "hv2", "hv3"].map(|n| lab.add_hypervisor(n, opts()).expect(n));
    let [hv1, hv2, hv3] = &hvs;
    for (edge, other) in [(hv1, hv3), (hv2, hv3), (hv3, hv1), (hv3, hv2)] {
        let name = format!("vx-{}", other.name());
        edge.add_tunnel_port(
            &name,
            TunnelKind::Vxlan,
            TunnelRemote::Ip(other.underlay_ip()),
            TunnelKey::Fixed(7),
        )
        .expect("tenant tunnel");
    }
    hvs
}

/// periscope controlling the star's bridges and monitoring their databases.
pub fn controller(lab: &Lab, hvs: &[&Hypervisor]) -> ControllerProcess {
    let mut args = vec![format!("--openflow=punix:{}", lab.dir().join("of.sock").display())];
    for hv in hvs {
        args.push(format!("--ovsdb={}={}", hv.name(), hv.db_remote()));
    }
    ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller")
}
