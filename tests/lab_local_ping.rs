//! Two VMs on one hypervisor whose `br-int` is a standalone learning switch ping each other.

use std::time::Duration;

use periscope::lab::{HypervisorOptions, Lab, VmOptions};

#[test]
fn two_vms_on_one_standalone_hypervisor_ping_each_other() {
    let lab = Lab::new().expect("lab");
    let hv = lab.add_hypervisor("hv1", HypervisorOptions::standalone()).expect("hypervisor");
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1").external_id("tenant", "t1")).expect("vm1");
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2")).expect("vm2");

    assert!(hv.has_iface_id(vm1.iface_id()).expect("find vm1"), "vm1's port carries its iface-id");
    let tenant =
        hv.vsctl(&["get", "Interface", vm1.port(), "external_ids:tenant"]).expect("external id");
    assert_eq!(tenant.trim(), "t1");
    assert_eq!(
        hv.vsctl(&["get", "Bridge", "br-int", "other_config:datapath-id"]).expect("dpid").trim(),
        format!("\"{:016x}\"", hv.dpid())
    );

    let r = vm1.ping(vm2.ip(), 5, Duration::from_millis(50)).expect("ping");
    assert_eq!((r.sent, r.received), (5, 5), "vm1 -> vm2: {r:?}");
    let r = vm2.ping(vm1.ip(), 5, Duration::from_millis(50)).expect("ping");
    assert_eq!((r.sent, r.received), (5, 5), "vm2 -> vm1: {r:?}");
}
