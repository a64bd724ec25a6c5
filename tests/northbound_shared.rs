//! Two controllers share one desired state through a 3-member clustered (Raft)
//! `Periscope_Northbound` database, each connected to a different member: what one writes the
//! other serves; two writers racing for one key, or for a tenant's last quota place, cannot
//! both win; a member going away changes nothing.

use std::time::Duration;

use serde_json::{json, Value};

use periscope::lab::controller::ControllerProcess;
use periscope::lab::nbcluster::NbCluster;
use periscope::lab::{wait_until, Lab};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

fn controller(lab: &Lab, name: &str, nb: &str) -> ControllerProcess {
    let sock = lab.dir().join(format!("{name}-of.sock"));
    let args = [format!("--openflow=punix:{}", sock.display()), format!("--nb={nb}")];
    ControllerProcess::start(PERISCOPE, &args, &lab.dir().join(format!("{name}.log"))).expect(name)
}

fn service(name: &str, ip: &str, key: Option<u64>) -> Value {
    let mut v = json!({"name": name, "tenant": "bank-a", "encap": "gre", "remote_ip": ip});
    if let Some(k) = key {
        v["key"] = json!(k);
    }
    v
}

/// The same request through both controllers at once; the statuses.
fn race(a: &ControllerProcess, b: &ControllerProcess, body_a: Value, body_b: Value) -> Vec<u16> {
    std::thread::scope(|s| {
        let ta = s.spawn(|| a.call("POST", "/v1/tap_services", Some(&body_a)).expect("a").0);
        let tb = s.spawn(|| b.call("POST", "/v1/tap_services", Some(&body_b)).expect("b").0);
        let mut v = vec![ta.join().expect("a"), tb.join().expect("b")];
        v.sort_unstable();
        v
    })
}

#[test]
fn two_controllers_share_a_clustered_northbound_and_cannot_both_win_a_race() {
    let lab = Lab::new().expect("lab");
    let cluster = NbCluster::start(&lab.dir().join("nb"), 3).expect("3 members");
    let [m1, m2, m3] = cluster.members() else { panic!("3 members") };

    let a = controller(&lab, "ctl-a", &m1.remote());
    let b = controller(&lab, "ctl-b", &m2.remote());
    let (s, _) = a
        .call("PUT", "/v1/tenants/bank-a", Some(&json!({"allowed_collectors": ["192.0.2.0/24"]})))
        .expect("put tenant");
    assert_eq!(s, 201);
    let (s, svc) = a
        .call("POST", "/v1/tap_services", Some(&service("perf", "192.0.2.9", None)))
        .expect("create");
    assert_eq!(s, 201, "{svc}");
    // B serves what A wrote.
    let path = format!("/v1/tap_services/{}", svc["id"]);
    wait_until("B to see A's tap service", Duration::from_secs(5), || {
        b.call("GET", &path, None).is_ok_and(|(s, v)| s == 200 && v["key"] == svc["key"])
    })
    .expect("shared state");

    // Both take the same key at once: one wins.
    let statuses = race(
        &a,
        &b,
        service("x1", "192.0.2.10", Some(777)),
        service("x2", "192.0.2.11", Some(777)),
    );
    assert_eq!(statuses, vec![201, 409], "one key, two writers");

    // A member goes away: writes through one controller are still served by the other.
    m3.stop();
    let (s, more) = b
        .call("POST", "/v1/tap_services", Some(&service("after", "192.0.2.12", None)))
        .expect("create");
    assert_eq!(s, 201, "{more}");
    let path = format!("/v1/tap_services/{}", more["id"]);
    wait_until("A to see B's tap service", Duration::from_secs(5), || {
        a.call("GET", &path, None).is_ok_and(|(s, _)| s == 200)
    })
    .expect("still shared with two members");

    // The tenant's quota has one place left: two writers race for it, one wins.
    let (_, list) = a.call("GET", "/v1/tap_services?tenant=bank-a", None).expect("list");
    let have = list.as_array().map_or(0, Vec::len);
    let (s, _) = a
        .call(
            "PUT",
            "/v1/tenants/bank-a",
            Some(&json!({"allowed_collectors": ["192.0.2.0/24"], "max_tap_services": have + 1})),
        )
        .expect("quota");
    assert_eq!(s, 200);
    wait_until("B to see the quota", Duration::from_secs(5), || {
        b.call("GET", "/v1/tenants/bank-a", None)
            .is_ok_and(|(_, t)| t["max_tap_services"].as_u64() == Some(have as u64 + 1))
    })
    .expect("quota shared");
    let statuses =
        race(&a, &b, service("q1", "192.0.2.13", None), service("q2", "192.0.2.14", None));
    assert_eq!(statuses[0], 201, "{statuses:?}");
    assert!([403, 409].contains(&statuses[1]), "the second writer must lose: {statuses:?}");
    let (_, list) = b.call("GET", "/v1/tap_services?tenant=bank-a", None).expect("list");
    wait_until("both to agree on the count", Duration::from_secs(5), || {
        a.call("GET", "/v1/tap_services?tenant=bank-a", None)
            .is_ok_and(|(_, l)| l.as_array().map(Vec::len) == Some(have + 1))
    })
    .expect("one more service, not two");
    assert!(list.as_array().map_or(0, Vec::len) <= have + 1, "{list}");
    drop((a, b));
    drop(cluster);
}
