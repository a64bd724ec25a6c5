//! Taps by label and with filters, on real Open vSwitch: a selector tap mirrors VMs created
//! later from their first packet, never another tenant's VM even with the same label, and a
//! filter copies only the frames it selects.

use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{ControllerTarget, EchoKind, Encap, HypervisorOptions, Lab, VmOptions};
use serde_json::{json, Value};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

fn post(ctl: &ControllerProcess, path: &str, body: Value) -> Value {
    let (status, v) = ctl.call("POST", path, Some(&body)).expect("api");
    assert_eq!(status, 201, "POST {path} {body}: {v}");
    v
}

fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"));
}

fn labelled(name: &str, tenant: &str, app: &str) -> VmOptions {
    VmOptions::new(name).external_id("tenant-id", tenant).external_id("app", app)
}

#[test]
fn a_selector_tap_mirrors_new_vms_from_their_first_packet_and_a_filter_selects_frames() {
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let hv = lab
        .add_hypervisor(
            "hv1",
            HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone())),
        )
        .expect("hv1");
    let vm1 = lab.add_vm(&hv, labelled("vm1", "bank-a", "payments")).expect("vm1");
    let web = lab.add_vm(&hv, labelled("web", "bank-a", "web")).expect("web");
    let other = lab.add_vm(&hv, labelled("other", "bank-b", "payments")).expect("other");
    let mut col = lab.add_collector("col").expect("collector");
    let args = vec![
        format!("--openflow=punix:{}", sock.display()),
        format!("--ovsdb=hv1={}", hv.db_remote()),
    ];
    let ctl = ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    ctl.allow("bank-a", &[&format!("{}/32", col.ip())]).expect("bank-a's collectors");

    let svc = post(
        &ctl,
        "/v1/tap_services",
        json!({
            "name": "perf", "tenant": "bank-a", "encap": "gre", "remote_ip": col.ip().to_string(), "key": 4242
        }),
    );
    let udp = post(
        &ctl,
        "/v1/tap_services",
        json!({
            "name": "udp-only", "tenant": "bank-a", "encap": "vxlan", "remote_ip": col.ip().to_string(), "key": 4343
        }),
    );
    post(
        &ctl,
        "/v1/tap_flows",
        json!({
            "name": "payments", "tenant": "bank-a", "tap_service": svc["id"],
            "source": {"selector": {"app": "payments"}}, "direction": "BOTH"
        }),
    );
    post(
        &ctl,
        "/v1/tap_flows",
        json!({
            "name": "udp", "tenant": "bank-a", "tap_service": udp["id"], "source": {"iface_id": vm1.iface_id()},
            "direction": "OUT", "filter": {"ip_proto": 17, "dst_port": 5001}
        }),
    );
    let tunnels = || hv.vsctl(&["list-ports", "br-int"]).unwrap_or_default();
    wait_for("both tunnel ports", Duration::from_secs(20), || {
        let t = tunnels();
        t.contains("psc-gre-") && t.contains("psc-vx-")
    });
    let copy_flows = || {
        let dump = hv.ofctl(&["dump-flows", "br-int"]).unwrap_or_default();
        dump.lines().filter(|l| l.contains("cookie=0x505302")).count()
    };
    // vm1: both directions for the selector, one filtered direction for the UDP tap.
    wait_for("the copy flows", Duration::from_secs(10), || copy_flows() >= 3);

    // Scale-out: a new VM with the label is mirrored from its first echo request.
    let vm2 = lab.add_vm(&hv, labelled("vm2", "bank-a", "payments")).expect("vm2");
    let r = vm2.ping(web.ip(), 5, Duration::from_millis(50)).expect("ping");
    assert_eq!(r.received, 5);
    // vm1 sends UDP to port 5001 (copied by the filter) and to 5002 (not), and pings web.
    for port in ["5001", "5002", "5001"] {
        vm1.exec("bash", &["-c", &format!("echo hello > /dev/udp/{}/{port}", web.ip())])
            .expect("udp");
    }
    assert_eq!(vm1.ping(web.ip(), 3, Duration::from_millis(50)).expect("ping").received, 3);
    assert_eq!(other.ping(web.ip(), 3, Duration::from_millis(50)).expect("ping").received, 3);
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.stop().expect("capture");

    let seqs = cap.echo_seqs(Encap::Gre, 4242, EchoKind::Request, vm2.ip());
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5],
        "vm2 mirrored from its first packet: {:?}",
        cap.count_by_key()
    );
    let replies = cap
        .under(Encap::Gre, 4242)
        .filter(|f| f.ip_src == Some(web.ip()) && f.icmp.is_some_and(|e| e.kind == EchoKind::Reply))
        .count();
    assert_eq!(replies, 8, "web's replies delivered to vm1 (3) and vm2 (5)");
    assert!(
        cap.frames.iter().all(|f| f.ip_src != Some(other.ip()) && f.ip_dst != Some(other.ip())),
        "another tenant's VM with the same label is never mirrored"
    );
    // The filter: only UDP to port 5001 under the VXLAN key, twice; nothing else there.
    let udp_copies: Vec<_> = cap.under(Encap::Vxlan, 4343).collect();
    assert_eq!(udp_copies.len(), 2, "{udp_copies:?}");
    assert!(udp_copies
        .iter()
        .all(|f| f.ip_src == Some(vm1.ip()) && f.ip_dst == Some(web.ip()) && f.icmp.is_none()));
    assert_eq!(cap.foreign_keys(&[(Encap::Gre, 4242), (Encap::Vxlan, 4343)]), vec![]);
}
