//! The northbound API against a real controller and its real embedded ovsdb-server: every
//! authorization rule is tried and must hold (401 without a token, 404 for another tenant's
//! objects, 403 outside the allow-list, over quota or on someone else's interface), keys stay
//! unique across tenants, creation is idempotent by name, the audit trail says who did what,
//! a row written with `ovsdb-client` is acted on like an API call, and everything the API
//! acknowledged is there after `kill -9` and a restart.

use std::process::Command;

use serde_json::{json, Value};

use periscope::lab::controller::{http_json, ControllerProcess};
use periscope::lab::Lab;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

struct Api<'a> {
    ctl: &'a ControllerProcess,
}

impl Api<'_> {
    /// A call with `token` (none: no Authorization header).
    fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        http_json(self.ctl.api(), token, method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn op(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(self.ctl.token(), method, path, body)
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn start(lab: &Lab, sock: &std::path::Path) -> ControllerProcess {
    let log = lab.dir().join("controller.log");
    ControllerProcess::start(PERISCOPE, &[format!("--openflow=punix:{}", sock.display())], &log)
        .expect("controller")
}

#[test]
fn tenants_are_kept_apart_and_what_was_acknowledged_survives_a_crash() {
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let ctl = start(&lab, &sock);
    let api = Api { ctl: &ctl };

    // No token, or a wrong one: 401, and nothing about what exists.
    let (s, v) = api.call(None, "GET", "/v1/tap_services", None);
    assert_eq!((s, code(&v)), (401, "unauthorized"), "{v}");
    let (s, _) = api.call(Some("psc_0000"), "GET", "/v1/tap_services", None);
    assert_eq!(s, 401);
    // The API document is public.
    let (s, doc) = api.call(None, "GET", "/v1/openapi.json", None);
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v1/tap_flows"]["post"].is_object(), "{doc}");

    // The operator sets up two tenants and gives each a token.
    let (s, _) = api.op(
        "PUT",
        "/v1/tenants/bank-a",
        Some(json!({"allowed_collectors": ["192.0.2.0/28"], "max_tap_services": 1})),
    );
    assert_eq!(s, 201);
    let (s, _) =
        api.op("PUT", "/v1/tenants/bank-b", Some(json!({"allowed_collectors": ["192.0.2.16/28"]})));
    assert_eq!(s, 201);
    let (s, ta) = api.op("POST", "/v1/tokens", Some(json!({"name": "a-sdpm", "tenant": "bank-a"})));
    assert_eq!(s, 201, "{ta}");
    let (_, tb) = api.op("POST", "/v1/tokens", Some(json!({"name": "b-sdpm", "tenant": "bank-b"})));
    let (a, b) =
        (ta["token"].as_str().expect("a's token"), tb["token"].as_str().expect("b's token"));
    // Tokens are shown once and never listed.
    let (_, list) = api.op("GET", "/v1/tokens", None);
    assert!(!list.to_string().contains(a), "{list}");

    // A tenant cannot configure tenants, read the audit trail or make tokens.
    let (s, v) = api.call(
        Some(a),
        "PUT",
        "/v1/tenants/bank-a",
        Some(json!({"allowed_collectors": ["0.0.0.0/0"]})),
    );
    assert_eq!((s, code(&v)), (403, "operator_only"));
    assert_eq!(api.call(Some(a), "GET", "/v1/audit", None).0, 403);
    assert_eq!(
        api.call(Some(a), "POST", "/v1/tokens", Some(json!({"name": "x", "role": "operator"}))).0,
        403
    );

    // Collectors only inside the allow-list; the tenant is filled in from the token.
    let svc = json!({"name": "perf", "encap": "vxlan", "remote_ip": "192.0.2.16"});
    let (s, v) = api.call(Some(a), "POST", "/v1/tap_services", Some(svc));
    assert_eq!(
        (s, code(&v), v["error"]["field"].as_str()),
        (403, "collector_not_allowed", Some("remote_ip")),
        "{v}"
    );
    let svc = json!({"name": "perf", "encap": "vxlan", "remote_ip": "192.0.2.9"});
    let (s, sa) = api.call(Some(a), "POST", "/v1/tap_services", Some(svc.clone()));
    assert_eq!(s, 201, "{sa}");
    assert_eq!(sa["tenant"], "bank-a");
    // The same again is the same object; the same name with other content is refused.
    let (s, again) = api.call(Some(a), "POST", "/v1/tap_services", Some(svc));
    assert_eq!((s, &again["id"]), (200, &sa["id"]));
    let (s, v) = api.call(
        Some(a),
        "POST",
        "/v1/tap_services",
        Some(json!({"name": "perf", "encap": "gre", "remote_ip": "192.0.2.9"})),
    );
    assert_eq!((s, code(&v)), (409, "name_taken"));
    // Over quota (one tap service).
    let (s, v) = api.call(
        Some(a),
        "POST",
        "/v1/tap_services",
        Some(json!({"name": "two", "encap": "gre", "remote_ip": "192.0.2.10"})),
    );
    assert_eq!((s, code(&v)), (403, "quota_exceeded"), "{v}");
    // Acting for another tenant is refused.
    let (s, _) = api.call(
        Some(a),
        "POST",
        "/v1/tap_services",
        Some(json!({"name": "x", "tenant": "bank-b", "encap": "gre", "remote_ip": "192.0.2.17"})),
    );
    assert_eq!(s, 403);

    // Keys are unique across tenants, whoever allocates them.
    let key_a = sa["key"].as_u64().expect("key");
    let (s, v) = api.call(
        Some(b),
        "POST",
        "/v1/tap_services",
        Some(json!({"name": "perf", "encap": "vxlan", "remote_ip": "192.0.2.17", "key": key_a})),
    );
    assert_eq!((s, code(&v)), (409, "key_taken"), "{v}");
    let (s, sb) = api.call(
        Some(b),
        "POST",
        "/v1/tap_services",
        Some(json!({"name": "perf", "encap": "vxlan", "remote_ip": "192.0.2.17"})),
    );
    assert_eq!(s, 201, "{sb}");
    assert_ne!(sb["key"], sa["key"]);

    // Another tenant's objects do not exist for b: not listed, 404 to read, delete or use.
    let ida = sa["id"].as_u64().expect("id");
    let (_, listed) = api.call(Some(b), "GET", "/v1/tap_services", None);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(api.call(Some(b), "GET", &format!("/v1/tap_services/{ida}"), None).0, 404);
    assert_eq!(api.call(Some(b), "DELETE", &format!("/v1/tap_services/{ida}"), None).0, 404);
    let steal = json!({"name": "steal", "tap_service": ida, "source": {"selector": {"app": "x"}}, "direction": "BOTH"});
    let (s, v) = api.call(Some(b), "POST", "/v1/tap_flows", Some(steal));
    assert_eq!((s, code(&v)), (404, "not_found"), "{v}");

    // Tap flows on one interface need it to be the tenant's.
    assert_eq!(api.op("PUT", "/v1/interfaces/port-b1", Some(json!({"tenant": "bank-b"}))).0, 201);
    assert_eq!(api.op("PUT", "/v1/interfaces/port-a1", Some(json!({"tenant": "bank-a"}))).0, 201);
    let on = |iface: &str| json!({"name": format!("on-{iface}"), "tap_service": ida, "source": {"iface_id": iface}, "direction": "BOTH"});
    let (s, v) = api.call(Some(a), "POST", "/v1/tap_flows", Some(on("port-b1")));
    assert_eq!((s, code(&v)), (403, "interface_not_owned"), "{v}");
    let (s, v) = api.call(Some(a), "POST", "/v1/tap_flows", Some(on("port-unknown")));
    assert_eq!((s, code(&v)), (403, "interface_not_owned"), "{v}");
    let (s, fa) = api.call(Some(a), "POST", "/v1/tap_flows", Some(on("port-a1")));
    assert_eq!(s, 201, "{fa}");
    // A registered interface is b's to see only when it is b's.
    assert_eq!(api.call(Some(b), "GET", "/v1/interfaces/port-a1", None).0, 404);
    let (s, v) = api.call(Some(a), "GET", "/v1/interfaces/port-a1", None);
    assert_eq!((s, &v["owner"]), (200, &json!("bank-a")));

    // Errors name the field; pagination and filters work.
    let (s, v) = api.call(Some(a), "POST", "/v1/tap_flows", Some(json!({"name": "x", "tap_service": ida, "source": {"vm": "v"}, "direction": "SIDEWAYS"})));
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("direction")), "{v}");
    let (_, page) = api.op("GET", "/v1/tap_services?limit=1", None);
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    let (_, page) = api.op("GET", &format!("/v1/tap_services?marker={ida}"), None);
    assert!(
        page.as_array().is_some_and(|p| p.iter().all(|s| s["id"].as_u64() > Some(ida))),
        "{page}"
    );
    let (s, v) = api.op("GET", "/v1/tap_services?colour=red", None);
    assert_eq!((s, code(&v)), (400, "bad_query"));

    // The audit trail says who did what, with the object before and after.
    let (_, audit) = api.op("GET", "/v1/audit?tenant=bank-a", None);
    let entries = audit.as_array().expect("audit list");
    let created = entries.iter().find(|e| e["action"] == "create tap_service").expect("audited");
    assert_eq!(created["actor"], "a-sdpm");
    assert_eq!(created["after"]["id"], sa["id"]);
    assert_eq!(created["before"], Value::Null);

    // Anything that writes the northbound database is acted on: a tenant written with
    // ovsdb-client, not through the API.
    let nb = format!("unix:{}", lab.dir().join("controller.data/nb.sock").display());
    let txn = json!(["Periscope_Northbound", {"op": "insert", "table": "Tenant",
        "row": {"name": "bank-c", "allowed_collectors": "192.0.2.32/28"}}]);
    let out = Command::new("ovsdb-client")
        .args(["transact", &nb, &txn.to_string()])
        .output()
        .expect("ovsdb-client");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    periscope::lab::wait_until("bank-c to be seen", std::time::Duration::from_secs(5), || {
        api.op("GET", "/v1/tenants/bank-c", None).0 == 200
    })
    .expect("a tenant written with ovsdb-client");

    // kill -9, then start again on the same data: everything acknowledged is there, and the
    // tenants' tokens still work.
    let (ida_flow, idb) = (fa["id"].clone(), sb["id"].clone());
    ctl.kill();
    let ctl = start(&lab, &sock);
    let api = Api { ctl: &ctl };
    let (s, v) = api.call(Some(a), "GET", &format!("/v1/tap_flows/{ida_flow}"), None);
    assert_eq!((s, &v["source"]["iface_id"]), (200, &json!("port-a1")), "{v}");
    let (s, v) = api.call(Some(b), "GET", &format!("/v1/tap_services/{idb}"), None);
    assert_eq!((s, &v["key"]), (200, &sb["key"]));
    let (_, audit) = api.op("GET", "/v1/audit", None);
    assert!(audit.as_array().map(Vec::len) >= Some(8), "{audit}");
    // Deleting through the rules: a service in use stays, then goes with its flows.
    let (s, v) = api.call(Some(a), "DELETE", &format!("/v1/tap_services/{ida}"), None);
    assert_eq!((s, code(&v)), (409, "in_use"), "{v}");
    assert_eq!(api.call(Some(a), "DELETE", &format!("/v1/tap_flows/{ida_flow}"), None).0, 200);
    assert_eq!(api.call(Some(a), "DELETE", &format!("/v1/tap_services/{ida}"), None).0, 200);
    assert_eq!(api.call(Some(a), "GET", &format!("/v1/tap_services/{ida}"), None).0, 404);
    // A revoked token no longer works.
    assert_eq!(api.op("DELETE", "/v1/tokens/b-sdpm", None).0, 200);
    assert_eq!(api.call(Some(b), "GET", "/v1/tap_services", None).0, 401);
}
