//! The Tap-as-a-Service surface against a real controller and its real northbound database:
//! a TaaS client's requests (tests/data/taas/) with `X-Auth-Token`, the objects they make seen
//! identically through `/v1` and the other way round, lists, shows, deletions, tap mirrors,
//! tenants kept apart, and refusals in Neutron's error shape naming what was wrong.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

use periscope::lab::controller::ControllerProcess;
use periscope::lab::Lab;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// One request as a TaaS client makes it: the token in `X-Auth-Token`. `(status, body)`.
fn taas(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let payload = body.map(Value::to_string).unwrap_or_default();
    let auth = token.map(|t| format!("X-Auth-Token: {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status: u16 = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    let text = raw.split_once("\r\n\r\n").map_or("", |(_, t)| t);
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    };
    (status, v)
}

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/taas/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The NeutronError's type and message.
fn neutron(v: &Value) -> (&str, &str) {
    let e = &v["NeutronError"];
    assert_eq!(e["detail"], "", "{v}");
    (e["type"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or(""))
}

/// The numeric id of a TaaS id.
fn v1_id(uuid: &Value) -> u64 {
    let s = uuid.as_str().expect("an id");
    u64::from_str_radix(&s.replace('-', "")[16..], 16).expect("a periscope id")
}

/// `expected` with its ids (and the allocated key) taken from `got`.
fn with_ids(mut expected: Value, got: &Value, keys: &[&str]) -> Value {
    for k in keys {
        expected[*k] = got[*k].clone();
    }
    expected
}

#[test]
fn a_taas_client_and_v1_see_the_same_taps() {
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let log = lab.dir().join("controller.log");
    let ctl = ControllerProcess::start(
        PERISCOPE,
        &[format!("--openflow=punix:{}", sock.display())],
        &log,
    )
    .expect("controller");
    let addr = ctl.api();
    let op = |method: &str, path: &str, body: Option<Value>| {
        ctl.call(method, path, body.as_ref()).unwrap_or_else(|e| panic!("{path}: {e}"))
    };

    // The operator: two tenants, their tokens, their ports.
    ctl.allow("bank-t1", &["192.0.2.32/28"]).expect("bank-t1");
    ctl.allow("bank-t2", &["192.0.2.48/28"]).expect("bank-t2");
    let token = |name: &str, tenant: &str| {
        let (s, v) = op("POST", "/v1/tokens", Some(json!({"name": name, "tenant": tenant})));
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().expect("token").to_string()
    };
    let (t1, t2) = (token("t1-taas", "bank-t1"), token("t2-taas", "bank-t2"));
    for port in ["port-t1-web", "port-t1-db"] {
        assert_eq!(
            op("PUT", &format!("/v1/interfaces/{port}"), Some(json!({"tenant": "bank-t1"}))).0,
            201
        );
    }
    let call = |token: &str, method: &str, path: &str, body: Option<Value>| {
        taas(addr, Some(token), method, path, body.as_ref())
    };

    // No token or an unknown one: 401 in Neutron's shape.
    let (s, v) = taas(addr, None, "GET", "/v2.0/taas/tap_services", None);
    assert_eq!((s, neutron(&v).0), (401, "HTTPUnauthorized"), "{v}");
    let (s, v) = taas(addr, Some("psc_not-a-token"), "GET", "/v2.0/taas/tap_flows", None);
    assert_eq!((s, neutron(&v).0), (401, "HTTPUnauthorized"), "{v}");
    // Version discovery needs no token, as in Neutron.
    let (s, v) = taas(addr, None, "GET", "/", None);
    assert_eq!((s, &v["versions"][0]["id"]), (200, &json!("v2.0")), "{v}");
    let bad = json!({"tap_flow": {"direction": "UP"}});
    let (s, v) = taas(addr, None, "POST", "/v2.0/taas/tap_flows", Some(&bad));
    assert_eq!(
        (s, neutron(&v).0),
        (401, "HTTPUnauthorized"),
        "no token, not even what is wrong: {v}"
    );
    let (s, v) = call(&t1, "GET", "/v2.0/extensions", None);
    assert_eq!(s, 200);
    assert!(
        v["extensions"].as_array().is_some_and(|e| e.iter().any(|x| x["alias"] == "taas")),
        "{v}"
    );

    // A tap service made through TaaS, answered in TaaS's shape ...
    let case = data("tap_service_create.json");
    let (s, made) = call(&t1, "POST", "/v2.0/taas/tap_services", Some(case["request"].clone()));
    assert_eq!(s, 201, "{made}");
    let svc = &made["tap_service"];
    assert_eq!(*svc, with_ids(case["response"]["tap_service"].clone(), svc, &["id", "key"]));
    let svc_id = v1_id(&svc["id"]);
    // ... is the same object through /v1.
    let (s, v1) = op("GET", &format!("/v1/tap_services/{svc_id}"), None);
    assert_eq!(s, 200);
    for (k, want) in
        [("name", "ids-east"), ("tenant", "bank-t1"), ("encap", "gre"), ("remote_ip", "192.0.2.33")]
    {
        assert_eq!(v1[k], want, "{v1}");
    }
    assert_eq!(v1["key"], svc["key"]);
    let (s, shown) = call(
        &t1,
        "GET",
        &format!("/v2.0/taas/tap_services/{}", svc["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!((s, &shown["tap_service"]), (200, svc));

    // A tap flow through TaaS on it: seen through /v1 with the same port, direction and VLAN.
    let case = data("tap_flow_create.json");
    let req: Value = serde_json::from_str(
        &case["request"]
            .to_string()
            .replace("50530000-0000-0000-0000-00000000000c", svc["id"].as_str().unwrap_or("")),
    )
    .expect("json");
    let (s, made) = call(&t1, "POST", "/v2.0/taas/tap_flows", Some(req));
    assert_eq!(s, 201, "{made}");
    let flow = made["tap_flow"].clone();
    assert_eq!(
        flow,
        with_ids(case["response"]["tap_flow"].clone(), &flow, &["id", "tap_service_id"])
    );
    assert_eq!(flow["tap_service_id"], svc["id"]);
    let flow_id = v1_id(&flow["id"]);
    let (s, v1) = op("GET", &format!("/v1/tap_flows/{flow_id}"), None);
    assert_eq!(s, 200);
    assert_eq!(
        (&v1["tap_service"], &v1["source"], &v1["direction"], &v1["filter"], &v1["tenant"]),
        (
            &json!(svc_id),
            &json!({"iface_id": "port-t1-web"}),
            &json!("IN"),
            &json!({"vlan": 120}),
            &json!("bank-t1")
        ),
        "{v1}"
    );

    // The other way: a tap service and flow made through /v1 are TaaS objects.
    let (s, v1_svc) = taas_v1(
        &ctl,
        &t1,
        "/v1/tap_services",
        json!({"name": "ids-west", "encap": "vxlan", "remote_ip": "192.0.2.35"}),
    );
    assert_eq!(s, 201, "{v1_svc}");
    let v1_svc_id = v1_svc["id"].as_u64().expect("id");
    let (s, v1_flow) = taas_v1(
        &ctl,
        &t1,
        "/v1/tap_flows",
        json!({"name": "db-out", "tap_service": v1_svc_id,
        "source": {"iface_id": "port-t1-db"}, "direction": "OUT"}),
    );
    assert_eq!(s, 201, "{v1_flow}");
    let (s, list) = call(&t1, "GET", "/v2.0/taas/tap_services", None);
    assert_eq!(s, 200);
    let names: Vec<&str> = list["tap_services"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, vec!["ids-east", "ids-west"], "{list}");
    let west = &list["tap_services"][1];
    assert_eq!(
        (v1_id(&west["id"]), &west["encap"], &west["key"], &west["status"]),
        (v1_svc_id, &json!("vxlan"), &v1_svc["key"], &json!("ACTIVE")),
        "{west}"
    );
    let (s, list) = call(
        &t1,
        "GET",
        &format!("/v2.0/taas/tap_flows?tap_service_id={}", west["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!(s, 200);
    let flows = list["tap_flows"].as_array().expect("list");
    assert_eq!(flows.len(), 1, "{list}");
    assert_eq!(
        (
            &flows[0]["source_port"],
            &flows[0]["direction"],
            &flows[0]["name"],
            &flows[0]["vlan_filter"]
        ),
        (&json!("port-t1-db"), &json!("OUT"), &json!("db-out"), &Value::Null)
    );
    assert_eq!(v1_id(&flows[0]["id"]), v1_flow["id"].as_u64().expect("id"));
    // Fields and pages, as Neutron does them.
    let (s, page) = call(&t1, "GET", "/v2.0/taas/tap_services?limit=1&fields=id&fields=name", None);
    assert_eq!(s, 200);
    assert_eq!(page["tap_services"], json!([{"id": svc["id"], "name": "ids-east"}]), "{page}");
    let next = page["tap_services_links"][0]["href"].as_str().expect("a next link");
    let (_, page) = call(&t1, "GET", next, None);
    assert_eq!(page["tap_services"][0]["name"], "ids-west", "{page}");

    // The other tenant sees none of it, and cannot use it.
    let (s, list) = call(&t2, "GET", "/v2.0/taas/tap_flows", None);
    assert_eq!((s, list), (200, json!({"tap_flows": []})));
    let (s, v) = call(
        &t2,
        "GET",
        &format!("/v2.0/taas/tap_services/{}", svc["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!((s, neutron(&v).0), (404, "TapServiceNotFound"), "{v}");
    let (s, v) = call(
        &t2,
        "DELETE",
        &format!("/v2.0/taas/tap_flows/{}", flow["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!((s, neutron(&v).0), (404, "TapFlowNotFound"), "{v}");
    let steal = json!({"tap_flow": {"name": "steal", "tap_service_id": svc["id"], "source_port": "port-t1-web", "direction": "BOTH"}});
    let (s, v) = call(&t2, "POST", "/v2.0/taas/tap_flows", Some(steal));
    assert_eq!((s, neutron(&v).0), (404, "TapServiceNotFound"), "{v}");
    let (s, v) = call(
        &t2,
        "POST",
        "/v2.0/taas/tap_services",
        Some(
            json!({"tap_service": {"name": "x", "project_id": "bank-t1", "remote_ip": "192.0.2.33"}}),
        ),
    );
    assert_eq!(s, 403, "{v}");
    assert!(neutron(&v).1.contains("project_id"), "{v}");
    // A port of another tenant cannot be tapped.
    let (s, own) = call(
        &t2,
        "POST",
        "/v2.0/taas/tap_services",
        Some(json!({"tap_service": {"name": "c2", "remote_ip": "192.0.2.49"}})),
    );
    assert_eq!(s, 201, "{own}");
    let (s, v) = call(
        &t2,
        "POST",
        "/v2.0/taas/tap_flows",
        Some(json!({"tap_flow": {"name": "peek",
        "tap_service_id": own["tap_service"]["id"], "source_port": "port-t1-web", "direction": "BOTH"}})),
    );
    assert_eq!((s, neutron(&v).0), (403, "HTTPForbidden"), "{v}");
    assert!(neutron(&v).1.contains("source_port"), "{v}");

    // Bad input: the status, the type, and the attribute named.
    for c in data("bad_requests.json")["cases"].as_array().expect("cases") {
        let body: Value = serde_json::from_str(
            &c["body"].to_string().replace("TAP_SERVICE", svc["id"].as_str().unwrap_or("")),
        )
        .expect("json");
        let (s, v) = call(&t1, "POST", c["path"].as_str().unwrap_or(""), Some(body));
        let (ty, msg) = neutron(&v);
        assert_eq!(
            (s, ty),
            (c["status"].as_u64().unwrap_or(0) as u16, c["type"].as_str().unwrap_or("")),
            "{c}: {v}"
        );
        assert!(msg.contains(c["names"].as_str().unwrap_or("?")), "{c}: {msg}");
    }
    // Nothing of it was made.
    let (_, all) = op("GET", "/v1/tap_flows?tenant=bank-t1", None);
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");

    // A collector VM's port (the tenant's own): /v1's collector.iface_id, shown back as port_id.
    let (s, _) = op("PUT", "/v1/interfaces/port-t1-collector", Some(json!({"tenant": "bank-t1"})));
    assert_eq!(s, 201);
    let vm_col = json!({"tap_service": {"name": "vm-collector", "port_id": "port-t1-collector"}});
    let (s, made) = call(&t1, "POST", "/v2.0/taas/tap_services", Some(vm_col));
    assert_eq!(s, 201, "{made}");
    let made = &made["tap_service"];
    assert_eq!(
        (&made["port_id"], &made["remote_ip"], &made["encap"], &made["status"]),
        (&json!("port-t1-collector"), &Value::Null, &json!("gre"), &json!("ACTIVE")),
        "{made}"
    );
    let (s, v1) = op("GET", &format!("/v1/tap_services/{}", v1_id(&made["id"])), None);
    assert_eq!((s, &v1["collector"]), (200, &json!({"iface_id": "port-t1-collector"})), "{v1}");
    let path = format!("/v2.0/taas/tap_services/{}", made["id"].as_str().unwrap_or(""));
    assert_eq!(call(&t1, "DELETE", &path, None).0, 204);

    // A GRE tap mirror: one service per direction, keyed as asked, shown only as the mirror.
    let case = data("tap_mirror_create.json");
    let (s, made) = call(&t1, "POST", "/v2.0/taas/tap_mirrors", Some(case["request"].clone()));
    assert_eq!(s, 201, "{made}");
    let mirror = made["tap_mirror"].clone();
    assert_eq!(mirror, with_ids(case["response"]["tap_mirror"].clone(), &mirror, &["id"]));
    let (s, shown) = call(
        &t1,
        "GET",
        &format!("/v2.0/taas/tap_mirrors/{}", mirror["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!((s, &shown["tap_mirror"]), (200, &mirror));
    let (_, v1_all) = op("GET", "/v1/tap_services?tenant=bank-t1", None);
    let parts: Vec<(Value, Value)> = v1_all
        .as_array()
        .expect("list")
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("db-copy/")))
        .map(|s| (s["name"].clone(), s["key"].clone()))
        .collect();
    assert_eq!(
        parts,
        vec![(json!("db-copy/IN"), json!(4101)), (json!("db-copy/OUT"), json!(4102))]
    );
    let (_, list) = call(&t1, "GET", "/v2.0/taas/tap_services", None);
    assert_eq!(
        list["tap_services"].as_array().map(Vec::len),
        Some(2),
        "mirror parts are not tap services: {list}"
    );
    let (_, list) = call(&t1, "GET", "/v2.0/taas/tap_mirrors", None);
    assert_eq!(list["tap_mirrors"], json!([mirror]));
    // Its keys are taken: a second mirror on one of them is refused whole.
    let again = json!({"tap_mirror": {"name": "db-copy-2", "port_id": "port-t1-db", "directions": {"IN": 4103, "OUT": 4102},
        "remote_ip": "192.0.2.34", "mirror_type": "gre"}});
    let (s, v) = call(&t1, "POST", "/v2.0/taas/tap_mirrors", Some(again));
    assert_eq!((s, neutron(&v).0), (409, "HTTPConflict"), "{v}");
    assert!(neutron(&v).1.contains("directions"), "{v}");
    let (_, v1_all) = op("GET", "/v1/tap_services?name=db-copy-2/IN", None);
    assert_eq!(v1_all, json!([]), "the first part was undone");

    // Deletions: 204, and gone through /v1 too. A tap service goes with its flows, as in TaaS.
    let (s, v) = call(
        &t1,
        "DELETE",
        &format!("/v2.0/taas/tap_flows/{}", flow["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!((s, v), (204, Value::Null));
    assert_eq!(op("GET", &format!("/v1/tap_flows/{flow_id}"), None).0, 404);
    let (s, _) = call(
        &t1,
        "DELETE",
        &format!("/v2.0/taas/tap_services/{}", west["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!(s, 204);
    assert_eq!(op("GET", &format!("/v1/tap_services/{v1_svc_id}"), None).0, 404);
    assert_eq!(op("GET", &format!("/v1/tap_flows/{}", v1_flow["id"]), None).0, 404);
    let (s, _) = call(
        &t1,
        "DELETE",
        &format!("/v2.0/taas/tap_mirrors/{}", mirror["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!(s, 204);
    let (_, left) = op("GET", "/v1/tap_flows?tenant=bank-t1", None);
    assert_eq!(left, json!([]));
    let (_, left) = call(&t1, "GET", "/v2.0/taas/tap_services", None);
    assert_eq!(left["tap_services"].as_array().map(Vec::len), Some(1), "{left}");
    let (s, v) = call(
        &t1,
        "DELETE",
        &format!("/v2.0/taas/tap_mirrors/{}", mirror["id"].as_str().unwrap_or("")),
        None,
    );
    assert_eq!((s, neutron(&v).0), (404, "TapMirrorNotFound"));
    // Who did it is in the audit trail under the TaaS caller's token name.
    let (_, audit) = op("GET", "/v1/audit?tenant=bank-t1", None);
    assert!(
        audit.as_array().is_some_and(|a| a
            .iter()
            .any(|e| e["actor"] == "t1-taas" && e["action"] == "delete tap_flow")),
        "{audit}"
    );
    ctl.stop();
}

/// A `/v1` call with a tenant's token (as `Authorization: Bearer`).
fn taas_v1(ctl: &ControllerProcess, token: &str, path: &str, body: Value) -> (u16, Value) {
    periscope::lab::controller::http_json(ctl.api(), Some(token), "POST", path, Some(&body))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// On real Open vSwitch: a tap flow and two tap mirrors (`gre` and `erspanv1`) made only
/// through TaaS copy VMs' frames to the collector under their keys (a mirror's IN key for frames
/// delivered to the port, its OUT key for frames the port sends; ERSPAN session ids whose index
/// names the port), and the tap flow reads ACTIVE.
#[test]
fn taas_made_taps_copy_traffic_on_real_ovs() {
    use periscope::lab::{ControllerTarget, EchoKind, Encap, HypervisorOptions, VmOptions};

    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let hv = lab
        .add_hypervisor(
            "hv1",
            HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone())),
        )
        .expect("hv1");
    let vm1 =
        lab.add_vm(&hv, VmOptions::new("vm1").external_id("tenant-id", "bank-t1")).expect("vm1");
    let vm2 =
        lab.add_vm(&hv, VmOptions::new("vm2").external_id("tenant-id", "bank-t1")).expect("vm2");
    let vm3 =
        lab.add_vm(&hv, VmOptions::new("vm3").external_id("tenant-id", "bank-t1")).expect("vm3");
    let mut col = lab.add_collector("col").expect("collector");
    let args = vec![
        format!("--openflow=punix:{}", sock.display()),
        format!("--ovsdb=hv1={}", hv.db_remote()),
    ];
    let ctl = ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    ctl.allow("bank-t1", &[&format!("{}/32", col.ip())]).expect("bank-t1's collectors");
    let (s, t) = ctl
        .call("POST", "/v1/tokens", Some(&json!({"name": "t1-ovs", "tenant": "bank-t1"})))
        .expect("api");
    assert_eq!(s, 201, "{t}");
    let token = t["token"].as_str().expect("token").to_string();
    let call = |method: &str, path: &str, body: Option<Value>| {
        taas(ctl.api(), Some(&token), method, path, body.as_ref())
    };

    let (s, svc) = call(
        "POST",
        "/v2.0/taas/tap_services",
        Some(json!({"tap_service": {
        "name": "ovs-collector", "remote_ip": col.ip().to_string(), "encap": "gre", "key": 4545}})),
    );
    assert_eq!(s, 201, "{svc}");
    let (s, flow) = call(
        "POST",
        "/v2.0/taas/tap_flows",
        Some(json!({"tap_flow": {
        "name": "vm1-both", "tap_service_id": svc["tap_service"]["id"], "source_port": vm1.iface_id(),
        "direction": "BOTH"}})),
    );
    assert_eq!(s, 201, "{flow}");
    let mirror = |port: &str, directions: Value, mirror_type: &str| {
        let body = json!({"tap_mirror": {"name": port, "port_id": port, "directions": directions,
                          "remote_ip": col.ip().to_string(), "mirror_type": mirror_type}});
        let (s, m) = call("POST", "/v2.0/taas/tap_mirrors", Some(body));
        assert_eq!(s, 201, "{m}");
        m
    };
    mirror(vm2.iface_id(), json!({"IN": 4601, "OUT": 4602}), "gre");
    let ermirror = mirror(vm3.iface_id(), json!({"IN": 11, "OUT": 12}), "erspanv1");
    assert_eq!(ermirror["tap_mirror"]["mirror_type"], "erspanv1", "{ermirror}");
    let flow_path =
        format!("/v2.0/taas/tap_flows/{}", flow["tap_flow"]["id"].as_str().unwrap_or(""));
    periscope::lab::wait_until("the TaaS tap flow to be ACTIVE", Duration::from_secs(20), || {
        call("GET", &flow_path, None).1["tap_flow"]["status"] == "ACTIVE"
    })
    .unwrap_or_else(|e| panic!("{e}"));
    periscope::lab::wait_until("the copy flows", Duration::from_secs(20), || {
        let dump = hv.ofctl(&["dump-flows", "br-int"]).unwrap_or_default();
        let ports = hv.vsctl(&["list-ports", "br-int"]).unwrap_or_default();
        ports.contains("psc-gre-")
            && ports.contains("psc-er-")
            && dump.lines().filter(|l| l.contains("cookie=0x5053")).count() >= 6
    })
    .unwrap_or_else(|e| panic!("{e}"));

    let r = vm1.ping(vm2.ip(), 5, Duration::from_millis(50)).expect("ping");
    assert_eq!(r.received, 5, "{r:?}");
    let r = vm1.ping(vm3.ip(), 5, Duration::from_millis(50)).expect("ping vm3");
    assert_eq!(r.received, 5, "{r:?}");
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.stop().expect("capture");
    let all = vec![1, 2, 3, 4, 5];
    assert_eq!(
        cap.echo_seqs(Encap::Gre, 4545, EchoKind::Request, vm1.ip()),
        all,
        "{:?}",
        cap.count_by_key()
    );
    assert_eq!(
        cap.echo_seqs(Encap::Gre, 4545, EchoKind::Reply, vm2.ip()),
        all,
        "vm1's IN under the tap flow"
    );
    assert_eq!(
        cap.echo_seqs(Encap::Gre, 4601, EchoKind::Request, vm1.ip()),
        all,
        "delivered to vm2: the mirror's IN key"
    );
    assert_eq!(
        cap.echo_seqs(Encap::Gre, 4602, EchoKind::Reply, vm2.ip()),
        all,
        "sent by vm2: the mirror's OUT key"
    );
    assert!(
        cap.under(Encap::Gre, 4601).all(|f| f.inner_dst == vm2.mac()),
        "IN holds only frames to vm2"
    );
    assert!(
        cap.under(Encap::Gre, 4602).all(|f| f.inner_src == vm2.mac()),
        "OUT holds only frames from vm2"
    );
    // The ERSPAN mirror: its IN and OUT session ids, each copy naming vm3's port.
    assert_eq!(
        cap.echo_seqs(Encap::ErspanV1, 11, EchoKind::Request, vm1.ip()),
        all,
        "delivered to vm3: the ERSPAN mirror's IN session"
    );
    assert_eq!(
        cap.echo_seqs(Encap::ErspanV1, 12, EchoKind::Reply, vm3.ip()),
        all,
        "sent by vm3: the ERSPAN mirror's OUT session"
    );
    let vm3_port = vm3.ofport().expect("vm3's ofport");
    assert!(
        cap.frames
            .iter()
            .filter(|f| f.encap == Encap::ErspanV1)
            .all(|f| f.erspan == Some(periscope::lab::ErspanMeta::V1 { index: vm3_port })),
        "every ERSPAN copy names vm3's port"
    );
    assert_eq!(
        cap.foreign_keys(&[
            (Encap::Gre, 4545),
            (Encap::Gre, 4601),
            (Encap::Gre, 4602),
            (Encap::ErspanV1, 11),
            (Encap::ErspanV1, 12)
        ]),
        vec![]
    );
    assert!(cap.duplicates().is_empty(), "duplicates: {:?}", cap.duplicates());
    ctl.stop();
}
