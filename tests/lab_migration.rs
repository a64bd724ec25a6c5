//! Live migration, make-before-break, without a controller: standalone bridges in a star of
//! VXLAN tunnels (hv3 in the middle, so there is no loop); vm3 on hv3 pings vm1 while vm1 moves
//! from hv1 to hv2.

use std::time::Duration;

use periscope::lab::{
    HypervisorOptions, Lab, LabError, MigrationStep, TunnelKey, TunnelKind, TunnelRemote, VmOptions,
};

const PINGS: u32 = 150;

#[test]
fn ping_survives_a_make_before_break_migration() {
    let lab = Lab::new().expect("lab");
    let hv1 = lab.add_hypervisor("hv1", HypervisorOptions::standalone()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", HypervisorOptions::standalone()).expect("hv2");
    let hv3 = lab.add_hypervisor("hv3", HypervisorOptions::standalone()).expect("hv3");
    let key = TunnelKey::Fixed(7);
    for (edge, other) in [(&hv1, &hv3), (&hv2, &hv3), (&hv3, &hv1), (&hv3, &hv2)] {
        let name = format!("vx-{}", other.name());
        edge.add_tunnel_port(&name, TunnelKind::Vxlan, TunnelRemote::Ip(other.underlay_ip()), key)
            .expect("tunnel");
    }
    let mut vm1 = lab.add_vm(&hv1, VmOptions::new("vm1").external_id("tenant", "t1")).expect("vm1");
    let vm3 = lab.add_vm(&hv3, VmOptions::new("vm3")).expect("vm3");

    let warm = vm3.ping(vm1.ip(), 3, Duration::from_millis(50)).expect("warm-up ping");
    assert_eq!(warm.received, 3, "vm3 reaches vm1 before the migration: {warm:?}");

    let run = vm3.ping_start(vm1.ip(), PINGS, Duration::from_millis(20)).expect("ping");
    std::thread::sleep(Duration::from_millis(800));
    let iface = vm1.iface_id().to_string();
    let mut seen = Vec::new();
    let timings = vm1
        .migrate_with(&hv2, |step, vm| {
            let on = (hv1.has_iface_id(&iface)?, hv2.has_iface_id(&iface)?);
            seen.push((step, on));
            if step == MigrationStep::Switched {
                // The VM is on hv2 now; it must keep its tenant tag there.
                let tenant = hv2.vsctl(&["get", "Interface", vm.port(), "external_ids:tenant"])?;
                if tenant.trim() != "t1" {
                    return Err(LabError::Output { command: "tenant".into(), output: tenant });
                }
            }
            Ok(())
        })
        .expect("migrate");
    let report = run.wait().expect("ping result");
    eprintln!(
        "plug {:?}, switch {:?}, unplug {:?}; ping {}/{} lost {:?}",
        timings.plugged - timings.started,
        timings.switched - timings.plugged,
        timings.unplugged - timings.switched,
        report.received,
        report.sent,
        report.lost()
    );

    assert_eq!(
        seen,
        vec![
            (MigrationStep::Plugged, (true, true)),
            (MigrationStep::Switched, (true, true)),
            (MigrationStep::Unplugged, (false, true)),
        ],
        "the port is on both hypervisors between plug and unplug"
    );
    assert_eq!(vm1.hypervisor().name(), "hv2");
    assert_eq!(report.sent, PINGS);
    assert!(
        report.lost().len() <= 5,
        "ping survived with at most 5 losses: lost {:?}",
        report.lost()
    );
    let tail: Vec<u32> = (PINGS - 20..=PINGS).collect();
    assert!(
        tail.iter().all(|s| report.replies.iter().any(|r| r.seq == *s)),
        "the last pings all got replies from the new location: lost {:?}",
        report.lost()
    );
}
