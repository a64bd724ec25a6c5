//! ERSPAN collectors on real Open vSwitch: one VM tapped towards a GRE, an ERSPAN version 1 and
//! an ERSPAN version 2 collector at once. Each gets every frame once under its own key (the
//! session id for ERSPAN); version 1's index names the VM's port, version 2's direction bit says
//! whether the VM sent the frame or received it; both versions share one ERSPAN port, beside
//! the GRE one, and it goes away with the last ERSPAN tap.

use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{
    ControllerTarget, EchoKind, Encap, ErspanDirection, ErspanMeta, HypervisorOptions, Lab,
    VmOptions,
};
use serde_json::{json, Value};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");
const PINGS: u16 = 5;

fn call(ctl: &ControllerProcess, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    ctl.call(method, path, body.as_ref()).expect("api")
}

fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn erspan_v1_and_v2_copies_carry_session_port_and_direction_beside_gre() {
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let hv = lab
        .add_hypervisor(
            "hv1",
            HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone())),
        )
        .expect("hv1");
    let tenant = |name: &str| VmOptions::new(name).external_id("tenant-id", "bank-a");
    let vm1 = lab.add_vm(&hv, tenant("vm1")).expect("vm1");
    let web = lab.add_vm(&hv, tenant("web")).expect("web");
    let mut col = lab.add_collector("col").expect("collector");
    let args = vec![
        format!("--openflow=punix:{}", sock.display()),
        format!("--ovsdb=hv1={}", hv.db_remote()),
    ];
    let ctl = ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    ctl.allow("bank-a", &[&format!("{}/32", col.ip())]).expect("bank-a's collectors");
    let remote = col.ip().to_string();

    // Bad input first: a session id ERSPAN cannot carry, and ERSPAN towards a VM collector.
    let (s, v) = call(
        &ctl,
        "POST",
        "/v1/tap_services",
        Some(
            json!({"name": "big", "tenant": "bank-a", "encap": "erspan_v1", "remote_ip": remote, "key": 1024}),
        ),
    );
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("key")), "{v}");
    let (s, v) = call(
        &ctl,
        "POST",
        "/v1/tap_services",
        Some(
            json!({"name": "vmcol", "tenant": "bank-a", "encap": "erspan_v2", "collector": {"iface_id": web.iface_id()}}),
        ),
    );
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("encap")), "{v}");

    let service = |name: &str, encap: &str, key: Option<u32>| {
        let mut body =
            json!({"name": name, "tenant": "bank-a", "encap": encap, "remote_ip": remote});
        if let Some(k) = key {
            body["key"] = json!(k);
        }
        let (s, v) = call(&ctl, "POST", "/v1/tap_services", Some(body));
        assert_eq!(s, 201, "{v}");
        v
    };
    let gre = service("gre", "gre", Some(4242));
    let v1 = service("ersp1", "erspan_v1", None);
    let v2 = service("ersp2", "erspan_v2", Some(7));
    let key = |s: &Value| s["key"].as_u64().expect("key") as u32;
    assert!((1..=1023).contains(&key(&v1)), "an allocated session id fits 10 bits: {v1}");
    let mut flows = Vec::new();
    for s in [&gre, &v1, &v2] {
        let (st, f) = call(
            &ctl,
            "POST",
            "/v1/tap_flows",
            Some(json!({"name": s["name"], "tenant": "bank-a", "tap_service": s["id"],
                        "source": {"iface_id": vm1.iface_id()}, "direction": "BOTH"})),
        );
        assert_eq!(st, 201, "{f}");
        flows.push(f);
    }
    let ports = || hv.vsctl(&["list-ports", "br-int"]).unwrap_or_default();
    wait_for("the GRE and the ERSPAN port", Duration::from_secs(20), || {
        let p = ports();
        p.contains("psc-gre-") && p.contains("psc-er-")
    });
    assert_eq!(ports().matches("psc-er-").count(), 1, "one ERSPAN port for both versions");
    let copy_flows = || {
        let dump = hv.ofctl(&["dump-flows", "br-int"]).unwrap_or_default();
        dump.lines().filter(|l| l.contains("cookie=0x505302")).count()
    };
    wait_for("the copy flows", Duration::from_secs(10), || copy_flows() >= 6);

    let r = vm1.ping(web.ip(), u32::from(PINGS), Duration::from_millis(50)).expect("ping");
    assert_eq!(r.received, u32::from(PINGS), "the tenant's own traffic");
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.stop().expect("capture");

    let all: Vec<u16> = (1..=PINGS).collect();
    for (encap, k) in [(Encap::Gre, 4242), (Encap::ErspanV1, key(&v1)), (Encap::ErspanV2, 7)] {
        let sent = cap.echo_seqs(encap, k, EchoKind::Request, vm1.ip());
        assert_eq!(sent, all, "{encap:?} {k}: requests vm1 sent, {:?}", cap.count_by_key());
        let got = cap.echo_seqs(encap, k, EchoKind::Reply, web.ip());
        assert_eq!(got, all, "{encap:?} {k}: replies delivered to vm1");
    }
    assert_eq!(cap.duplicates().len(), 0, "{:?}", cap.duplicates());
    let expected = [(Encap::Gre, 4242), (Encap::ErspanV1, key(&v1)), (Encap::ErspanV2, 7)];
    assert_eq!(cap.foreign_keys(&expected), vec![]);

    // What each ERSPAN copy says besides its session id.
    let ofport = vm1.ofport().expect("vm1's ofport");
    for f in cap.under(Encap::ErspanV1, key(&v1)) {
        assert_eq!(f.erspan, Some(ErspanMeta::V1 { index: ofport }), "{f:?}");
    }
    for f in cap.under(Encap::ErspanV2, 7).filter(|f| f.icmp.is_some()) {
        let sent = f.ip_src == Some(vm1.ip());
        let direction = if sent { ErspanDirection::Ingress } else { ErspanDirection::Egress };
        assert!(
            matches!(f.erspan, Some(ErspanMeta::V2 { direction: d, .. }) if d == direction),
            "{f:?}"
        );
    }
    assert!(cap.under(Encap::Gre, 4242).all(|f| f.erspan.is_none()));

    // The ERSPAN port leaves with the last ERSPAN tap; the GRE one stays for its own.
    for f in &flows[1..] {
        let (s, v) = call(&ctl, "DELETE", &format!("/v1/tap_flows/{}", f["id"]), None);
        assert_eq!(s, 200, "{v}");
    }
    wait_for("the ERSPAN port removed", Duration::from_secs(10), || !ports().contains("psc-er-"));
    assert!(ports().contains("psc-gre-"), "the GRE tap's port stays");
    let (s, v) = call(&ctl, "DELETE", &format!("/v1/tap_flows/{}", flows[0]["id"]), None);
    assert_eq!(s, 200, "{v}");
    wait_for("no tunnel port left", Duration::from_secs(10), || !ports().contains("psc-"));
}
