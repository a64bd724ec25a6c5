//! The product end to end on real Open vSwitch: taps created through the REST API become
//! copies at the tenants' collectors, exactly once per frame, with each tenant's key; the copies
//! follow a VM through a make-before-break live migration; the source is left clean; deleting
//! the taps removes every flow and tunnel port they needed.

use std::collections::BTreeSet;
use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{
    ControllerTarget, EchoKind, Encap, Hypervisor, HypervisorOptions, Lab, MigrationStep, VmOptions,
};
use serde_json::{json, Value};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");
const PINGS: u32 = 150;

fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"));
}

/// periscope's flows on br-int that copy traffic (not the base pipeline).
fn mirror_flows(hv: &Hypervisor) -> Vec<String> {
    let dump = hv.ofctl(&["dump-flows", "br-int"]).unwrap_or_default();
    dump.lines()
        .filter(|l| l.contains("cookie=0x505302") || l.contains("cookie=0x505303"))
        .map(str::to_string)
        .collect()
}

/// Whether br-int has a port whose name starts with `prefix` (periscope's tunnel ports are
/// `psc-vx-<bridge>` and `psc-gre-<bridge>`).
fn has_port(hv: &Hypervisor, prefix: &str) -> bool {
    hv.vsctl(&["list-ports", "br-int"])
        .map(|p| p.lines().any(|l| l.trim().starts_with(prefix)))
        .unwrap_or(false)
}

/// The sequence numbers of the echoes of `kind` from `src` to `dst` copied under tenant a's VXLAN
/// key.
fn echo_seqs(
    cap: &periscope::lab::Capture,
    key: u32,
    kind: EchoKind,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
) -> BTreeSet<u16> {
    cap.frames
        .iter()
        .filter(|f| f.encap == Encap::Vxlan && f.key == Some(key))
        .filter(|f| f.ip_src == Some(src) && f.ip_dst == Some(dst))
        .filter_map(|f| f.icmp.filter(|e| e.kind == kind).map(|e| e.seq))
        .collect()
}

fn post(ctl: &ControllerProcess, path: &str, body: Value) -> Value {
    let (status, v) = ctl.call("POST", path, Some(&body)).expect("api");
    assert_eq!(status, 201, "POST {path} {body}: {v}");
    v
}

#[test]
fn copies_follow_a_live_migration_without_gap_duplicate_or_leak() {
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let opts = || HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone()));
    let hv1 = lab.add_hypervisor("hv1", opts()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", opts()).expect("hv2");
    let hv3 = lab.add_hypervisor("hv3", opts()).expect("hv3");
    // The tenants' own overlay: a VXLAN star around hv3 (key 7), forwarded by NORMAL.
    hv3.add_overlay_star(&[&hv1, &hv2], 7).expect("tenant tunnels");
    let mut vm1 =
        lab.add_vm(&hv1, VmOptions::new("vm1").external_id("tenant-id", "bank-a")).expect("vm1");
    let vm3 =
        lab.add_vm(&hv3, VmOptions::new("vm3").external_id("tenant-id", "bank-a")).expect("vm3");
    // A second pinger on the destination: its requests to vm1 cross the destination bridge on
    // their way to the source while vm1 is present at both, and must not be copied twice.
    let vm2 =
        lab.add_vm(&hv2, VmOptions::new("vm2").external_id("tenant-id", "bank-a")).expect("vm2");
    let vm4 =
        lab.add_vm(&hv1, VmOptions::new("vm4").external_id("tenant-id", "bank-b")).expect("vm4");
    let mut col_a = lab.add_collector("cola").expect("collector a");
    let mut col_b = lab.add_collector("colb").expect("collector b");

    let mut args = vec![format!("--openflow=punix:{}", sock.display())];
    for hv in [&hv1, &hv2, &hv3] {
        args.push(format!("--ovsdb={}={}", hv.name(), hv.db_remote()));
    }
    let ctl = ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    ctl.allow("bank-a", &[&format!("{}/32", col_a.ip())]).expect("bank-a's collectors");
    ctl.allow("bank-b", &[&format!("{}/32", col_b.ip())]).expect("bank-b's collectors");

    let svc_a = post(
        &ctl,
        "/v1/tap_services",
        json!({
            "name": "perf-a", "tenant": "bank-a", "encap": "vxlan", "remote_ip": col_a.ip().to_string()
        }),
    );
    let svc_b = post(
        &ctl,
        "/v1/tap_services",
        json!({
            "name": "perf-b", "tenant": "bank-b", "encap": "gre", "remote_ip": col_b.ip().to_string()
        }),
    );
    let key_a = svc_a["key"].as_u64().expect("key a") as u32;
    let key_b = svc_b["key"].as_u64().expect("key b") as u32;
    assert_ne!(key_a, key_b, "keys are unique across tenants");
    let flow_a = post(
        &ctl,
        "/v1/tap_flows",
        json!({
            "name": "vm1", "tenant": "bank-a", "tap_service": svc_a["id"], "source": {"vm": vm1.vm_uuid()}, "direction": "BOTH"
        }),
    );
    let flow_b = post(
        &ctl,
        "/v1/tap_flows",
        json!({
            "name": "vm4", "tenant": "bank-b", "tap_service": svc_b["id"], "source": {"iface_id": vm4.iface_id()}, "direction": "BOTH"
        }),
    );
    wait_for("mirror flows and tunnel ports on hv1", Duration::from_secs(20), || {
        has_port(&hv1, "psc-vx-") && has_port(&hv1, "psc-gre-") && mirror_flows(&hv1).len() >= 6
    });
    assert!(
        !has_port(&hv2, "psc-vx-") && !has_port(&hv3, "psc-vx-"),
        "tunnel ports only where taps need them"
    );

    // Warm up MAC learning and tunnel neighbours, then start the capture for real.
    assert_eq!(vm3.ping(vm1.ip(), 3, Duration::from_millis(50)).expect("warm-up").received, 3);
    assert_eq!(vm2.ping(vm1.ip(), 3, Duration::from_millis(50)).expect("warm-up").received, 3);
    let run = vm3.ping_start(vm1.ip(), PINGS, Duration::from_millis(20)).expect("ping");
    let run2 = vm2.ping_start(vm1.ip(), PINGS, Duration::from_millis(20)).expect("ping");
    std::thread::sleep(Duration::from_millis(800));
    // As a cloud does (Nova waits for the destination's vif-plugged event), the VM switches to
    // the destination only once the destination is wired: here, once the controller reports
    // the destination programmed for the tap.
    let flow_path = format!("/v1/tap_flows/{}", flow_a["id"]);
    let t = vm1
        .migrate_with(&hv2, |step, _| {
            if step == MigrationStep::Plugged {
                wait_for("the destination programmed", Duration::from_secs(10), || {
                    let status = ctl.call("GET", &flow_path, None).map(|(_, v)| v);
                    status.is_ok_and(|v| {
                        v["active"].as_array().is_some_and(|a| {
                            a.iter().any(|l| l["hypervisor"] == "hv2" && l["programmed"] == true)
                        })
                    })
                });
            }
            Ok(())
        })
        .expect("migrate");
    let report = run.wait().expect("ping report");
    let report2 = run2.wait().expect("ping report");
    // Give the last copies time to arrive.
    std::thread::sleep(Duration::from_millis(300));
    let cap_a = col_a.stop().expect("capture a");
    let cap_b = col_b.stop().expect("capture b");
    eprintln!(
        "migration: plug {:?}, switch {:?}, unplug {:?}; ping {}/{}; copies {:?}",
        t.plugged - t.started,
        t.switched - t.plugged,
        t.unplugged - t.switched,
        report.received,
        report.sent,
        cap_a.count_by_key()
    );
    eprintln!(
        "{}",
        ctl.log()
            .lines()
            .filter(|l| l.contains("migration")
                || l.contains("reprogrammed")
                || l.contains("tunnel"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Every reply vm1 sent to vm3 (as vm3 saw it) was copied as sent by vm1, and every request
    // from vm3 it answered was copied as delivered to it: no gap across the migration.
    let replied: BTreeSet<u16> = report.replies.iter().map(|r| r.seq as u16).collect();
    assert!(
        replied.len() as u32 >= PINGS - 10,
        "the VM's own traffic survived: {:?}",
        report.lost()
    );
    let out_copies = echo_seqs(&cap_a, key_a, EchoKind::Reply, vm1.ip(), vm3.ip());
    let in_copies = echo_seqs(&cap_a, key_a, EchoKind::Request, vm3.ip(), vm1.ip());
    let missing_out: Vec<_> = replied.difference(&out_copies).collect();
    let missing_in: Vec<_> = replied.difference(&in_copies).collect();
    assert!(missing_out.is_empty(), "replies sent by vm1 to vm3 but not copied: {missing_out:?}");
    assert!(
        missing_in.is_empty(),
        "requests from vm3 answered by vm1 but not copied: {missing_in:?}"
    );
    // The same for the pinger on the destination, exactly: its requests cross the destination
    // bridge while vm1 is present at both places.
    let replied2: BTreeSet<u16> = report2.replies.iter().map(|r| r.seq as u16).collect();
    assert!(replied2.len() as u32 >= PINGS - 10, "vm2's pings survived: {:?}", report2.lost());
    let out2 = echo_seqs(&cap_a, key_a, EchoKind::Reply, vm1.ip(), vm2.ip());
    let in2 = echo_seqs(&cap_a, key_a, EchoKind::Request, vm2.ip(), vm1.ip());
    let missing_out2: Vec<_> = replied2.difference(&out2).collect();
    let missing_in2: Vec<_> = replied2.difference(&in2).collect();
    assert!(missing_out2.is_empty(), "replies sent by vm1 to vm2 but not copied: {missing_out2:?}");
    assert!(
        missing_in2.is_empty(),
        "requests from vm2 answered by vm1 but not copied: {missing_in2:?}"
    );
    assert_eq!(cap_a.duplicates().len(), 0, "duplicate copies: {:?}", cap_a.duplicates());
    assert_eq!(
        cap_a.foreign_keys(&[(Encap::Vxlan, key_a)]),
        vec![],
        "only tenant a's key at a's collector"
    );
    // Tenant b's collector never sees tenant a's traffic.
    assert!(
        cap_b.frames.iter().all(|f| f.ip_src != Some(vm1.ip()) && f.ip_dst != Some(vm1.ip())),
        "leak to b"
    );
    assert_eq!(cap_b.foreign_keys(&[(Encap::Gre, key_b)]), vec![]);

    // The source keeps what vm4 (still there) needs and nothing of vm1's.
    wait_for("hv1 cleaned of vm1's tap", Duration::from_secs(10), || !has_port(&hv1, "psc-vx-"));
    assert!(has_port(&hv1, "psc-gre-"), "vm4's tunnel port stays");
    let hv1_flows = mirror_flows(&hv1);
    assert!(
        hv1_flows.iter().all(|l| !l.contains(vm1.mac())),
        "stale flows for vm1 on hv1: {hv1_flows:#?}"
    );
    assert!(has_port(&hv2, "psc-vx-"), "destination has its tunnel port");

    // The tap flow reports where it is active now.
    let (_, status) =
        ctl.call("GET", &format!("/v1/tap_flows/{}", flow_a["id"]), None).expect("status");
    assert_eq!(status["status"], "ACTIVE", "{status}");
    assert_eq!(status["active"][0]["hypervisor"], "hv2", "{status}");

    // Deleting the taps removes every flow and tunnel port they needed, everywhere.
    for (path, id) in [("/v1/tap_flows", &flow_a["id"]), ("/v1/tap_flows", &flow_b["id"])] {
        let (s, v) = ctl.call("DELETE", &format!("{path}/{id}"), None).expect("delete");
        assert_eq!(s, 200, "{v}");
    }
    wait_for("no tunnel port and no mirror flow anywhere", Duration::from_secs(10), || {
        [&hv1, &hv2, &hv3].iter().all(|hv| {
            !has_port(hv, "psc-vx-") && !has_port(hv, "psc-gre-") && mirror_flows(hv).is_empty()
        })
    });
    // The tenants' forwarding still works after all that.
    assert_eq!(vm3.ping(vm1.ip(), 3, Duration::from_millis(50)).expect("ping after").received, 3);
}
