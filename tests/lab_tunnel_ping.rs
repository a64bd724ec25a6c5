//! Two hypervisors, one VM on each, joined only by a VXLAN tunnel across the underlay.

use std::time::Duration;

use periscope::lab::{HypervisorOptions, Lab, TunnelKey, TunnelKind, TunnelRemote, VmOptions};

#[test]
fn vms_on_two_hypervisors_ping_across_a_vxlan_tunnel() {
    let lab = Lab::new().expect("lab");
    let hv1 = lab.add_hypervisor("hv1", HypervisorOptions::standalone()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", HypervisorOptions::standalone()).expect("hv2");
    let vm1 = lab.add_vm(&hv1, VmOptions::new("vm1")).expect("vm1");
    let vm2 = lab.add_vm(&hv2, VmOptions::new("vm2")).expect("vm2");

    let key = TunnelKey::Fixed(42);
    hv1.add_tunnel_port("vx-hv2", TunnelKind::Vxlan, TunnelRemote::Ip(hv2.underlay_ip()), key)
        .expect("hv1 tunnel");
    hv2.add_tunnel_port("vx-hv1", TunnelKind::Vxlan, TunnelRemote::Ip(hv1.underlay_ip()), key)
        .expect("hv2 tunnel");

    let r = vm1.ping(vm2.ip(), 5, Duration::from_millis(50)).expect("ping");
    assert_eq!((r.sent, r.received), (5, 5), "vm1 -> vm2: {r:?}");
    let r = vm2.ping(vm1.ip(), 5, Duration::from_millis(50)).expect("ping");
    assert_eq!((r.sent, r.received), (5, 5), "vm2 -> vm1: {r:?}");

    // The traffic really crossed the tunnel: hv2 learned vm1's MAC on its VXLAN port.
    let vx = hv2.ofport("vx-hv1").expect("ofport").to_string();
    let fdb = hv2.appctl(&["fdb/show", "br-int"]).expect("fdb/show");
    assert!(
        fdb.lines()
            .any(|l| l.split_whitespace().next() == Some(vx.as_str()) && l.contains(vm1.mac())),
        "hv2 learned vm1 behind the tunnel:\n{fdb}"
    );
}
