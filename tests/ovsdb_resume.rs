//! Resuming a monitor after a dropped connection, against a clustered ovsdb-server (standalone
//! databases keep no transaction history, so their clients always resync in full).

mod ovsdb_support;

use std::time::Duration;

use ovsdb_support::{Client, ClusteredServer};
use periscope::ovsdb::driver::DriverConfig;
use periscope::ovsdb::{MonitorMethod, SessionEvent};
use periscope::topology::Change;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn reconnection_fetches_only_what_changed_while_disconnected() {
    let server = ClusteredServer::start();
    server.vsctl(&["add-br", "br-int"]);
    server.vsctl(&[
        "add-port",
        "br-int",
        "tap1",
        "--",
        "set",
        "Interface",
        "tap1",
        "external_ids:iface-id=port-1",
    ]);

    // A long first backoff leaves time to change the database while we are away.
    let mut client = Client::with(DriverConfig {
        backoff_min: Duration::from_secs(1),
        ..DriverConfig::default()
    });
    client.add("hv1", &server.remote());
    client.wait_for("port-1 attached", WAIT, |st| {
        (st.topology.locations("port-1").len() == 1).then_some(())
    });

    // A change seen live gives the session an update3 transaction id to resume from (the id
    // in the initial reply predates the server's history).
    server.vsctl(&["set", "Interface", "tap1", "external_ids:attached-mac=fa:16:3e:00:00:01"]);
    client.wait_for("tap1's MAC", WAIT, |st| {
        st.topology
            .locations("port-1")
            .first()
            .and_then(|l| st.topology.interface(&l.interface_ref()))
            .and_then(|i| i.mac())
            .map(|_| ())
    });

    server.appctl(&["ovsdb-server/reconnect"]);
    client.wait_for("the connection to drop", WAIT, |st| {
        (!st.closes("hv1").is_empty()).then_some(())
    });
    server.vsctl(&[
        "add-port",
        "br-int",
        "tap2",
        "--",
        "set",
        "Interface",
        "tap2",
        "external_ids:iface-id=port-2",
    ]);
    client.wait_for("port-2 attached", WAIT, |st| {
        (st.topology.locations("port-2").len() == 1).then_some(())
    });

    let st = client.state();
    let after: Vec<&SessionEvent> = st.of("hv1").collect();
    let connected: Vec<(MonitorMethod, bool)> = after
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Connected { monitor, resumed, .. } => Some((*monitor, *resumed)),
            _ => None,
        })
        .collect();
    assert_eq!(
        connected,
        [(MonitorMethod::CondSince, false), (MonitorMethod::CondSince, true)],
        "full state first, then only the changes"
    );
    let snapshots = after.iter().filter(|e| matches!(e, SessionEvent::Snapshot(_))).count();
    assert_eq!(snapshots, 1, "no second snapshot");
    // What came on resumption: the new port, its interface and the bridge's port list.
    let i = after
        .iter()
        .rposition(|e| matches!(e, SessionEvent::Connected { .. }))
        .expect("second connection");
    let SessionEvent::Changes(changes) = after[i + 1] else { panic!("{:?}", after[i + 1]) };
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::InterfaceUpserted { row, .. } if row.name == "tap2")),
        "{changes:?}"
    );
    assert!(!changes
        .iter()
        .any(|c| matches!(c, Change::InterfaceUpserted { row, .. } if row.name == "tap1")));
    assert_eq!(st.topology.locations("port-1").len(), 1);
}
