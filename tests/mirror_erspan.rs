//! ERSPAN collectors on real Open vSwitch: one VM tapped towards a GRE, an ERSPAN version 1 and
//! an ERSPAN version 2 collector at once. Each gets every frame once under its own key (the
//! session id for ERSPAN); version 1's index names the VM's port, version 2's direction bit says
//! whether the VM sent the frame or received it; both versions share one ERSPAN port, beside
//! the GRE one, and it goes away with the last ERSPAN tap.

mod mirror_support;

use std::time::Duration;

use mirror_support::{controlled, controller, has_port, post, wait_for};
use periscope::lab::controller::ControllerProcess;
use periscope::lab::{EchoKind, Encap, ErspanDirection, ErspanMeta, Lab, VmOptions};
use serde_json::{json, Value};

const PINGS: u16 = 5;

fn call(ctl: &ControllerProcess, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    ctl.call(method, path, body.as_ref()).expect("api")
}

#[test]
fn erspan_v1_and_v2_copies_carry_session_port_and_direction_beside_gre() {
    let lab = Lab::new().expect("lab");
    let hv = controlled(&lab, "hv1");
    let tenant = |name: &str| VmOptions::new(name).external_id("tenant-id", "bank-a");
    let vm1 = lab.add_vm(&hv, tenant("vm1")).expect("vm1");
    let web = lab.add_vm(&hv, tenant("web")).expect("web");
    let mut col = lab.add_collector("col").expect("collector");
    let ctl = controller(&lab, &[&hv]);
    ctl.allow("bank-a", &[&format!("{}/32", col.ip())]).expect("bank-a's collectors");
    let remote = col.ip().to_string();

    // Bad input first: a session id ERSPAN cannot carry, and ERSPAN towards a VM collector.
    let refused = |body: Value| {
        let (s, v) = call(&ctl, "POST", "/v1/tap_services", Some(body));
        assert_eq!(s, 400, "{v}");
        v["error"]["field"].as_str().unwrap_or("").to_string()
    };
    let big = json!({"name": "big", "tenant": "bank-a", "encap": "erspan_v1", "remote_ip": remote,
                     "key": 1024});
    assert_eq!(refused(big), "key");
    let vm_collector = json!({"name": "vmcol", "tenant": "bank-a", "encap": "erspan_v2",
                              "collector": {"iface_id": web.iface_id()}});
    assert_eq!(refused(vm_collector), "encap");

    let service = |name: &str, encap: &str, key: Option<u32>| {
        let mut body =
            json!({"name": name, "tenant": "bank-a", "encap": encap, "remote_ip": remote});
        if let Some(k) = key {
            body["key"] = json!(k);
        }
        post(&ctl, "/v1/tap_services", body)
    };
    let gre = service("gre", "gre", Some(4242));
    let v1 = service("ersp1", "erspan_v1", None);
    let v2 = service("ersp2", "erspan_v2", Some(7));
    let key = |s: &Value| s["key"].as_u64().expect("key") as u32;
    assert!((1..=1023).contains(&key(&v1)), "an allocated session id fits 10 bits: {v1}");
    let flows: Vec<Value> = [&gre, &v1, &v2]
        .iter()
        .map(|s| {
            let body = json!({"name": s["name"], "tenant": "bank-a", "tap_service": s["id"],
                              "source": {"iface_id": vm1.iface_id()}, "direction": "BOTH"});
            post(&ctl, "/v1/tap_flows", body)
        })
        .collect();
    wait_for("the GRE and the ERSPAN port", Duration::from_secs(20), || {
        has_port(&hv, "psc-gre-") && has_port(&hv, "psc-er-")
    });
    let ports = || hv.vsctl(&["list-ports", "br-int"]).unwrap_or_default();
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

    // The controller's trace, on the flows read back from the switch now, shows the same.
    let packet = format!("in_port={ofport},dl_src={},dl_dst={}", vm1.mac(), web.mac());
    let path = format!("/v1/switches/{:016x}/trace?packet={packet}", hv.dpid());
    let (s, t) = call(&ctl, "GET", &path, None);
    assert_eq!(s, 200, "{t}");
    let mut erspan: Vec<String> = t["trace"]["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o.get("erspan").is_some())
        .map(|o| format!("{} {}", o["tun_id"], o["erspan"]))
        .collect();
    erspan.sort();
    let v1_seen = format!(r#"{} {{"direction":null,"index":{ofport},"version":1}}"#, key(&v1));
    let v2_seen = r#"7 {"direction":0,"index":null,"version":2}"#.to_string();
    let mut want = vec![v1_seen, v2_seen];
    want.sort();
    assert_eq!(erspan, want, "{t}");
    // And the switch holds exactly the flows periscope wants: the ERSPAN fields it wrote back
    // read as sent, so nothing is put again and again.
    let (s, d) = call(&ctl, "GET", &format!("/v1/switches/{:016x}/diff", hv.dpid()), None);
    assert_eq!((s, &d["in_sync"]), (200, &json!(true)), "{d}");

    // The ERSPAN port leaves with the last ERSPAN tap; the GRE one stays for its own.
    for f in &flows[1..] {
        let (s, v) = call(&ctl, "DELETE", &format!("/v1/tap_flows/{}", f["id"]), None);
        assert_eq!(s, 200, "{v}");
    }
    wait_for("the ERSPAN port removed", Duration::from_secs(10), || !has_port(&hv, "psc-er-"));
    assert!(has_port(&hv, "psc-gre-"), "the GRE tap's port stays");
    let (s, v) = call(&ctl, "DELETE", &format!("/v1/tap_flows/{}", flows[0]["id"]), None);
    assert_eq!(s, 200, "{v}");
    wait_for("no tunnel port left", Duration::from_secs(10), || !has_port(&hv, "psc-"));
}
