//! A passive remote: ovsdb-server connects to the controller (as after `ovs-vsctl
//! set-manager`), and the hypervisor is named by its system-id.

mod ovsdb_support;

use std::time::Duration;

use ovsdb_support::{Client, ClusteredServer, TempDir};
use periscope::ovsdb::SessionEvent;

#[test]
fn ovsdb_server_connecting_to_us_is_monitored_under_its_system_id() {
    let dir = TempDir::new("passive");
    let server = ClusteredServer::start();
    server.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "external_ids:system-id=sys-42",
        "external_ids:hostname=node42",
    ]);
    server.vsctl(&["add-br", "br-int"]);

    let client = Client::new();
    let path = dir.0.join("manager.sock");
    let local = client.listen(&format!("punix:{}", path.display()));
    assert_eq!(local, format!("unix:{}", path.display()));
    server.appctl(&["ovsdb-server/add-remote", &local]);

    let bridges = client.wait_for("br-int of sys-42", Duration::from_secs(20), |st| {
        let b: Vec<String> = st
            .topology
            .bridges()
            .filter(|b| b.bridge.hypervisor.as_str() == "sys-42")
            .map(|b| b.row.name.clone())
            .collect();
        (!b.is_empty()).then_some(b)
    });
    assert_eq!(bridges, ["br-int"]);
    let st = client.state();
    let info = st.topology.hypervisor(&"sys-42".into()).expect("hypervisor");
    assert_eq!(info.hostname.as_deref(), Some("node42"));
    assert_eq!(st.accepted.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(), ["sys-42"]);
    assert!(st
        .of("sys-42")
        .any(|e| matches!(e, SessionEvent::Connected { system_id: Some(s), .. } if s == "sys-42")));
}
