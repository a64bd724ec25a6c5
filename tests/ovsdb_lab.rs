//! The OVSDB client against real ovsdb-servers of lab hypervisors: the topology it builds, a
//! live migration seen through it, a transaction, and a restart of ovsdb-server.

mod ovsdb_support;

use std::time::Duration;

use ovsdb_support::{Client, State};
use periscope::codec::ovsdb::{Condition, Datum, Function, Mutation, Mutator, Operation, Row};
use periscope::lab::{HypervisorOptions, Lab, VmOptions};
use periscope::ovsdb::{SessionEvent, TxnError};
use periscope::topology::{EventKind, Location};

const WAIT: Duration = Duration::from_secs(20);

/// The (bridge name, dpid) pairs the topology holds for one hypervisor.
fn bridges(st: &State, hv: &str) -> Vec<(String, Option<u64>)> {
    let mut v: Vec<(String, Option<u64>)> = st
        .topology
        .bridges()
        .filter(|b| b.bridge.hypervisor.as_str() == hv)
        .map(|b| (b.row.name.clone(), b.row.datapath_id.map(|d| d.0)))
        .collect();
    v.sort();
    v
}

/// The only location of `iface_id`, once it is ready.
fn ready_location(st: &State, iface_id: &str) -> Option<Location> {
    match st.topology.locations(iface_id)[..] {
        [l] if l.is_ready() => Some(l.clone()),
        _ => None,
    }
}

#[test]
fn hypervisors_over_unix_and_tcp_show_their_bridges_and_vm_interfaces() {
    let lab = Lab::new().expect("lab");
    let hv1 = lab.add_hypervisor("hv1", HypervisorOptions::secure()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", HypervisorOptions::secure()).expect("hv2");
    let hv3 = lab.add_hypervisor("hv3", HypervisorOptions::secure()).expect("hv3");
    let tcp = hv3.add_db_tcp_remote().expect("tcp remote");
    let vm1 = lab.add_vm(&hv1, VmOptions::new("vm1")).expect("vm1");

    let mut client = Client::new();
    let id1 = client.add("hv1", &hv1.db_remote());
    client.add("hv2", &hv2.db_remote());
    client.add("hv3", &format!("tcp:{tcp}"));

    for hv in [&hv1, &hv2, &hv3] {
        let want = client.wait_for(&format!("the bridges of {}", hv.name()), WAIT, |st| {
            let b = bridges(st, hv.name());
            (b.len() == 2 && b[0].1.is_some() && b[1].1.is_some()).then_some(b)
        });
        assert_eq!(want[0].0, "br-int");
        assert_eq!(want[0].1, Some(hv.dpid()), "{} br-int dpid from Bridge.datapath_id", hv.name());
        assert_eq!(want[1].0, "br-phy");
    }
    let ofport = vm1.ofport().expect("ofport");
    let loc = client.wait_for("vm1's interface", WAIT, |st| ready_location(st, vm1.iface_id()));
    assert_eq!(loc.hypervisor.as_str(), "hv1");
    assert_eq!(loc.ofport.map(|p| p.0), Some(ofport));
    assert_eq!(loc.dpid.map(|d| d.0), Some(hv1.dpid()));
    {
        let st = client.state();
        let info = st.topology.interface(&loc.interface_ref()).expect("attached");
        assert_eq!(info.row.name, vm1.port());
        assert_eq!(info.vm_uuid(), Some(vm1.vm_uuid()));
        for hv in ["hv1", "hv2", "hv3"] {
            let connected: Vec<_> = st
                .of(hv)
                .filter_map(|e| match e {
                    SessionEvent::Connected { schema_version, .. } => Some(schema_version.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(connected.len(), 1, "{hv} connected once");
            assert!(connected[0].is_some(), "{hv}: the schema has a version");
        }
    }

    // A transaction through the driver: mark br-int as periscope's, as the architecture asks
    // of every row periscope touches.
    let br_int = Condition::new("name", Function::Eq, Datum::atom("br-int"));
    let mark = Operation::Mutate {
        table: "Bridge".into(),
        conditions: vec![br_int.clone()],
        mutations: vec![Mutation::new(
            "external_ids",
            Mutator::Insert,
            Datum::map([("periscope-owned", "true")]),
        )],
    };
    let reply = client.transact(&id1, vec![mark]).expect("transaction");
    assert_eq!(reply.error(), None, "{reply:?}");
    let got = hv1.vsctl(&["get", "Bridge", "br-int", "external_ids:periscope-owned"]).expect("get");
    assert_eq!(got.trim(), "\"true\"");

    // Refused before sending: fail_mode takes "secure" or "standalone".
    let bad = Operation::Update {
        table: "Bridge".into(),
        conditions: vec![br_int],
        row: Row::from([("fail_mode".into(), Datum::atom("sometimes"))]),
    };
    let e = client.transact(&id1, vec![bad]).unwrap_err();
    assert!(matches!(e, TxnError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("fail_mode"), "{e}");
    let mode = hv1.vsctl(&["get", "Bridge", "br-int", "fail_mode"]).expect("get");
    assert_eq!(mode.trim(), "secure");
}

#[test]
fn migration_is_reported_started_then_finished_at_the_new_bridge_and_port() {
    let lab = Lab::new().expect("lab");
    let hv1 = lab.add_hypervisor("hv1", HypervisorOptions::standalone()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", HypervisorOptions::standalone()).expect("hv2");
    // A VM on hv2 first, so that the migrating VM does not get the same port number there.
    let _other = lab.add_vm(&hv2, VmOptions::new("vm2")).expect("vm2");
    let mut vm1 = lab.add_vm(&hv1, VmOptions::new("vm1")).expect("vm1");

    let mut client = Client::new();
    client.add("hv1", &hv1.db_remote());
    client.add("hv2", &hv2.db_remote());
    let before = client.wait_for("vm1 on hv1", WAIT, |st| ready_location(st, vm1.iface_id()));
    assert_eq!(before.hypervisor.as_str(), "hv1");

    vm1.migrate(&hv2).expect("migrate");
    let new_port = vm1.ofport().expect("ofport on hv2");
    let iface = vm1.iface_id().to_string();
    let (started, finished) = client.wait_for("MigrationFinished", WAIT, |st| {
        let pos = |want_finished: bool| {
            st.topo_events.iter().position(|e| match e {
                EventKind::MigrationStarted { iface_id, .. } => {
                    !want_finished && iface_id == &iface
                }
                EventKind::MigrationFinished { iface_id, .. } => {
                    want_finished && iface_id == &iface
                }
                _ => false,
            })
        };
        Some((pos(false)?, pos(true)?))
    });
    assert!(started < finished, "started at {started}, finished at {finished}");
    let st = client.state();
    let EventKind::MigrationStarted { from, to, .. } = &st.topo_events[started] else {
        unreachable!()
    };
    assert_eq!(from.iter().map(|l| l.hypervisor.as_str()).collect::<Vec<_>>(), ["hv1"]);
    assert_eq!(to.iter().map(|l| l.hypervisor.as_str()).collect::<Vec<_>>(), ["hv2"]);
    let EventKind::MigrationFinished { from, to, .. } = &st.topo_events[finished] else {
        unreachable!()
    };
    assert_eq!(from[0].interface, before.interface, "left the old interface row");
    assert_eq!(to.hypervisor.as_str(), "hv2");
    let br_int_hv2 = st
        .topology
        .bridges()
        .find(|b| b.bridge.hypervisor.as_str() == "hv2" && b.row.name == "br-int")
        .map(|b| b.bridge.uuid.clone())
        .expect("hv2 br-int");
    assert_eq!(to.bridge, br_int_hv2);
    assert_eq!(to.ofport.map(|p| p.0), Some(new_port));
    assert_eq!(to.dpid.map(|d| d.0), Some(hv2.dpid()));
    assert_eq!(st.topology.locations(&iface).len(), 1);
}

/// Reads the pid in `<hv dir>/ovsdb.pid`.
fn ovsdb_pid(dir: &std::path::Path) -> u32 {
    let text = std::fs::read_to_string(dir.join("ovsdb.pid")).expect("pidfile");
    text.trim().parse().expect("pid")
}

#[test]
fn ovsdb_server_killed_and_restarted_is_reconnected_and_resynced() {
    let lab = Lab::new().expect("lab");
    let hv1 = lab.add_hypervisor("hv1", HypervisorOptions::standalone()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", HypervisorOptions::standalone()).expect("hv2");
    let vm1 = lab.add_vm(&hv1, VmOptions::new("vm1")).expect("vm1");

    let mut client = Client::new();
    client.add("hv1", &hv1.db_remote());
    client.add("hv2", &hv2.db_remote());
    let loc = client.wait_for("vm1", WAIT, |st| ready_location(st, vm1.iface_id()));
    client.wait_for("hv2", WAIT, |st| (st.connections("hv2") == 1).then_some(()));
    let topo_before = client.state().topo_events.len();

    let pid = ovsdb_pid(hv1.dir());
    let killed = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    assert!(killed.map(|s| s.success()).unwrap_or(false), "kill -KILL {pid}");
    client.wait_for("hv1's connection to close", WAIT, |st| {
        (!st.closes("hv1").is_empty()).then_some(())
    });
    // Reconnection attempts fail while the server is down, and go on.
    client.wait_for("failed reconnection attempts", WAIT, |st| {
        (st.connect_failures.iter().filter(|(h, _)| h.as_str() == "hv1").count() >= 2).then_some(())
    });
    hv1.restart_ovsdb().expect("restart ovsdb-server");
    client.wait_for("hv1 reconnected", WAIT, |st| (st.connections("hv1") == 2).then_some(()));
    {
        let st = client.state();
        let second = st
            .of("hv1")
            .filter(|e| matches!(e, SessionEvent::Connected { .. }))
            .nth(1)
            .cloned()
            .expect("second Connected");
        let SessionEvent::Connected { resumed, .. } = second else { unreachable!() };
        // A restarted server has no transaction history: a full resync, diffed by the graph.
        assert!(!resumed, "ovsdb-server lost its history when it died");
        let closes = st.closes("hv1");
        assert_eq!(closes[0], "connection closed by ovsdb-server", "{closes:?}");
        assert_eq!(st.connections("hv2"), 1, "hv2 was not disturbed");
        assert!(st.closes("hv2").is_empty());
    }
    // Bridge.datapath_id and Interface.mac_in_use are ephemeral: the restarted server has none
    // until ovs-vswitchd writes them again, so the location may be unready and the row updated
    // for a moment. The interface itself stays where it is.
    let again = client.wait_for("vm1 ready again", WAIT, |st| ready_location(st, vm1.iface_id()));
    assert_eq!(again, loc);
    {
        let st = client.state();
        let seen: Vec<_> = st.topo_events[topo_before..]
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    EventKind::InterfaceAppeared { .. }
                        | EventKind::InterfaceGone { .. }
                        | EventKind::InterfaceMoved { .. }
                        | EventKind::MigrationStarted { .. }
                        | EventKind::MigrationFinished { .. }
                )
            })
            .collect();
        assert!(seen.is_empty(), "the resync made nothing appear, go or move: {seen:?}");
    }

    // The graph follows changes made after the restart.
    let vm2 = lab.add_vm(&hv1, VmOptions::new("vm2")).expect("vm2");
    let port = vm2.ofport().expect("ofport");
    let loc2 = client.wait_for("vm2", WAIT, |st| ready_location(st, vm2.iface_id()));
    assert_eq!((loc2.hypervisor.as_str(), loc2.ofport.map(|p| p.0)), ("hv1", Some(port)));
    hv1.vsctl(&["del-port", "br-int", vm1.port()]).expect("del-port");
    client.wait_for("vm1 gone", WAIT, |st| {
        st.topology.locations(vm1.iface_id()).is_empty().then_some(())
    });
}
