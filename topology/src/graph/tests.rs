//! The migration story, convergence of OVSDB and OpenFlow, resync, links and queries.

use std::collections::BTreeMap;

use periscope_codec::openflow::{Dpid, MacAddr, PortNo};

use crate::change::{Change, HypervisorSnapshot, PortStatusReason};
use crate::event::{EventKind, Link, Location};
use crate::graph::Topology;
use crate::ids::{Generation, HypervisorId, Millis, RowRef, SwitchPort, Uuid};
use crate::query::Source;
use crate::rows::{BridgeRow, HypervisorInfo, InterfaceRow, OfPort, PortRow};

const DP_A: Dpid = Dpid(0xa);
const DP_B: Dpid = Dpid(0xb);

fn hv(name: &str) -> HypervisorId {
    HypervisorId::from(name)
}

fn vm_iface(uuid: &str, name: &str, iface_id: &str, ofport: Option<u32>) -> InterfaceRow {
    let mut row = InterfaceRow {
        uuid: Uuid::from(uuid),
        name: name.to_owned(),
        ofport: ofport.map(PortNo),
        ..Default::default()
    };
    row.external_ids.insert("iface-id".into(), iface_id.into());
    row.external_ids.insert("attached-mac".into(), "fa:16:3e:00:00:01".into());
    row.external_ids.insert("vm-uuid".into(), "vm-1".into());
    row.external_ids.insert("tenant-id".into(), "tenant-1".into());
    row
}

/// A hypervisor with bridge `br-int` (uuid `<h>-br`, datapath `dpid`) and no ports.
fn add_hypervisor(t: &mut Topology, h: &str, dpid: Dpid, underlay: &str) {
    let info = HypervisorInfo {
        system_id: Some(format!("{h}-system")),
        hostname: Some(h.to_owned()),
        underlay_ips: [underlay.parse().unwrap()].into(),
    };
    let bridge = BridgeRow {
        uuid: Uuid::from(format!("{h}-br")),
        name: "br-int".into(),
        datapath_id: Some(dpid),
        ..Default::default()
    };
    t.apply_batch([
        Change::HypervisorUpserted { hypervisor: hv(h), info },
        Change::BridgeUpserted { hypervisor: hv(h), row: bridge },
    ]);
}

fn bridge_ref(h: &str) -> RowRef {
    RowRef::new(h, format!("{h}-br").as_str())
}

/// The changes of one OVSDB transaction that adds `iface` (in a port of the same name) to `h`'s
/// `br-int`, in the order given by `order` (rows of one update may come in any order).
fn plug_changes(t: &Topology, h: &str, iface: &InterfaceRow) -> Vec<Change> {
    let port_uuid = Uuid::from(format!("{}-port", iface.uuid));
    let port = PortRow {
        uuid: port_uuid.clone(),
        name: iface.name.clone(),
        interfaces: [iface.uuid.clone()].into(),
    };
    let mut bridge = t.bridge(&bridge_ref(h)).unwrap().row.clone();
    bridge.ports.insert(port_uuid);
    vec![
        Change::InterfaceUpserted { hypervisor: hv(h), row: iface.clone() },
        Change::PortUpserted { hypervisor: hv(h), row: port },
        Change::BridgeUpserted { hypervisor: hv(h), row: bridge },
    ]
}

fn unplug_changes(t: &Topology, h: &str, iface: &str) -> Vec<Change> {
    let port_uuid = Uuid::from(format!("{iface}-port"));
    let mut bridge = t.bridge(&bridge_ref(h)).unwrap().row.clone();
    bridge.ports.remove(&port_uuid);
    vec![
        Change::BridgeUpserted { hypervisor: hv(h), row: bridge },
        Change::PortRemoved { hypervisor: hv(h), uuid: port_uuid },
        Change::InterfaceRemoved { hypervisor: hv(h), uuid: Uuid::from(iface) },
    ]
}

fn loc(h: &str, iface: &str, dpid: Dpid, ofport: Option<u32>) -> Location {
    Location {
        hypervisor: hv(h),
        bridge: Uuid::from(format!("{h}-br")),
        interface: Uuid::from(iface),
        dpid: Some(dpid),
        ofport: ofport.map(PortNo),
    }
}

fn kinds(t: &mut Topology, changes: Vec<Change>) -> Vec<EventKind> {
    let before = t.generation();
    let events = t.apply_batch(changes);
    t.check_invariants().unwrap();
    if events.is_empty() {
        assert_eq!(t.generation(), before);
    } else {
        assert_eq!(t.generation(), Generation(before.0 + 1));
        assert!(events.iter().all(|e| e.generation == t.generation()));
    }
    events.into_iter().map(|e| e.kind).collect()
}

/// Two hypervisors, both switches connected, VM port `port-1` on `hv-a` at ofport 5.
fn two_hosts_with_vm() -> Topology {
    let mut t = Topology::default();
    add_hypervisor(&mut t, "hv-a", DP_A, "192.0.2.1");
    add_hypervisor(&mut t, "hv-b", DP_B, "192.0.2.2");
    t.apply_batch([Change::SwitchConnected { dpid: DP_A }, Change::SwitchConnected { dpid: DP_B }]);
    let plug = plug_changes(&t, "hv-a", &vm_iface("a-i1", "tap1", "port-1", Some(5)));
    assert_eq!(
        kinds(&mut t, plug),
        vec![
            EventKind::InterfaceAppeared { location: loc("hv-a", "a-i1", DP_A, Some(5)) },
            EventKind::LocationReady { location: loc("hv-a", "a-i1", DP_A, Some(5)) },
        ]
    );
    t
}

#[test]
fn migration_plug_destination_then_unplug_source_then_ofport() {
    let mut t = two_hosts_with_vm();
    let src = loc("hv-a", "a-i1", DP_A, Some(5));

    // Plug on the destination with the same iface-id; vswitchd has not assigned ofport yet.
    let plug = plug_changes(&t, "hv-b", &vm_iface("b-i1", "tap1", "port-1", None));
    let dst = loc("hv-b", "b-i1", DP_B, None);
    assert_eq!(
        kinds(&mut t, plug),
        vec![
            EventKind::InterfaceAppeared { location: dst.clone() },
            EventKind::MigrationStarted {
                iface_id: "port-1".into(),
                from: vec![src.clone()],
                to: vec![dst.clone()],
            },
        ]
    );
    assert_eq!(t.locations("port-1"), vec![&src, &dst]);
    assert_eq!(t.ready_locations(&Source::IfaceId("port-1".into())), vec![&src]);
    assert_eq!(t.migrations(), vec![("port-1", vec![&src, &dst])]);

    // Unplug from the source.
    let unplug = unplug_changes(&t, "hv-a", "a-i1");
    assert_eq!(
        kinds(&mut t, unplug),
        vec![
            EventKind::InterfaceGone { location: src.clone() },
            EventKind::MigrationFinished {
                iface_id: "port-1".into(),
                from: vec![src],
                to: dst.clone()
            },
        ]
    );

    // OVSDB fills ofport: only the location becomes ready.
    let mut row = vm_iface("b-i1", "tap1", "port-1", Some(9));
    let ready = loc("hv-b", "b-i1", DP_B, Some(9));
    assert_eq!(
        kinds(&mut t, vec![Change::InterfaceUpserted { hypervisor: hv("hv-b"), row: row.clone() }]),
        vec![EventKind::LocationReady { location: ready.clone() }]
    );
    assert_eq!(t.ready_locations(&Source::IfaceId("port-1".into())), vec![&ready]);
    assert_eq!(
        t.interface_at(SwitchPort { dpid: DP_B, port: PortNo(9) }).unwrap().interface_ref(),
        RowRef::new("hv-b", "b-i1")
    );
    assert!(t.interface_at(SwitchPort { dpid: DP_A, port: PortNo(5) }).is_none());

    // The same row again changes nothing and keeps the generation.
    let generation = t.generation();
    assert_eq!(
        kinds(&mut t, vec![Change::InterfaceUpserted { hypervisor: hv("hv-b"), row: row.clone() }]),
        vec![]
    );
    assert_eq!(t.generation(), generation);

    // A change of external_ids is an update, not a move.
    row.external_ids.insert("tenant-id".into(), "tenant-2".into());
    assert_eq!(
        kinds(&mut t, vec![Change::InterfaceUpserted { hypervisor: hv("hv-b"), row }]),
        vec![EventKind::InterfaceUpdated { location: ready }]
    );
    assert_eq!(t.interfaces(&Source::Tenant("tenant-2".into())).len(), 1);
    assert!(t.interfaces(&Source::Tenant("tenant-1".into())).is_empty());
}

#[test]
fn migration_finished_carries_the_destination_bridge_and_ofport() {
    let mut t = two_hosts_with_vm();
    let plug = plug_changes(&t, "hv-b", &vm_iface("b-i1", "tap1", "port-1", None));
    kinds(&mut t, plug);
    // PORT_STATUS from the destination switch tells the ofport before OVSDB does.
    assert_eq!(
        kinds(&mut t, vec![Change::port_added(DP_B, PortNo(3), "tap1")]),
        vec![EventKind::LocationReady { location: loc("hv-b", "b-i1", DP_B, Some(3)) }]
    );
    let unplug = unplug_changes(&t, "hv-a", "a-i1");
    let events = kinds(&mut t, unplug);
    let Some(EventKind::MigrationFinished { to, .. }) = events.last() else {
        panic!("no MigrationFinished in {events:?}");
    };
    assert_eq!((to.bridge_ref(), to.ofport), (bridge_ref("hv-b"), Some(PortNo(3))));
    assert!(t.migrations().is_empty());
}

#[test]
fn moved_within_one_batch_is_one_move() {
    let mut t = two_hosts_with_vm();
    let mut changes = unplug_changes(&t, "hv-a", "a-i1");
    changes.extend(plug_changes(&t, "hv-b", &vm_iface("b-i1", "tap1", "port-1", Some(4))));
    let from = loc("hv-a", "a-i1", DP_A, Some(5));
    let to = loc("hv-b", "b-i1", DP_B, Some(4));
    assert_eq!(
        kinds(&mut t, changes),
        vec![
            EventKind::InterfaceGone { location: from.clone() },
            EventKind::InterfaceAppeared { location: to.clone() },
            EventKind::LocationReady { location: to.clone() },
            EventKind::InterfaceMoved { iface_id: "port-1".into(), from, to },
        ]
    );
}

/// The final state of one hypervisor whose VM port has no `ofport` in OVSDB yet, built with the
/// PORT_STATUS first or last.
fn converge(port_status_first: bool) -> Topology {
    let mut t = Topology::default();
    add_hypervisor(&mut t, "hv-a", DP_A, "192.0.2.1");
    let status =
        vec![Change::SwitchConnected { dpid: DP_A }, Change::port_added(DP_A, PortNo(8), "tap1")];
    let plug = plug_changes(&t, "hv-a", &vm_iface("a-i1", "tap1", "port-1", None));
    if port_status_first {
        kinds(&mut t, status);
        kinds(&mut t, plug);
    } else {
        kinds(&mut t, plug);
        kinds(&mut t, status);
    }
    t
}

#[test]
fn port_status_before_or_after_ovsdb_gives_the_same_graph() {
    let (first, last) = (converge(true), converge(false));
    let strip = |t: &Topology| TopologySnapshotNoGen::from(t);
    assert_eq!(strip(&first), strip(&last));
    for t in [&first, &last] {
        assert_eq!(
            t.ready_locations(&Source::IfaceId("port-1".into())),
            vec![&loc("hv-a", "a-i1", DP_A, Some(8))]
        );
    }

    // Then OVSDB fills the same ofport: the location does not change, so nothing is emitted.
    let mut t = converge(false);
    let row = vm_iface("a-i1", "tap1", "port-1", Some(8));
    assert_eq!(
        kinds(&mut t, vec![Change::InterfaceUpserted { hypervisor: hv("hv-a"), row }]),
        vec![]
    );

    // A disconnected switch's ports are forgotten: the learned ofport goes with them.
    let mut t = converge(true);
    assert_eq!(
        kinds(&mut t, vec![Change::SwitchDisconnected { dpid: DP_A }]),
        vec![
            EventKind::BridgeDisconnected { bridge: bridge_ref("hv-a"), dpid: DP_A },
            EventKind::LocationUnready { location: loc("hv-a", "a-i1", DP_A, Some(8)) },
        ]
    );
}

/// A snapshot with the generation zeroed, since the number of applies differs.
#[derive(Debug, PartialEq)]
struct TopologySnapshotNoGen(crate::snapshot::TopologySnapshot);

impl From<&Topology> for TopologySnapshotNoGen {
    fn from(t: &Topology) -> Self {
        let mut s = t.snapshot();
        s.generation = Generation(0);
        TopologySnapshotNoGen(s)
    }
}

#[test]
fn resync_with_the_same_rows_emits_nothing_and_a_real_change_as_a_diff() {
    let mut t = two_hosts_with_vm();
    let snapshot = |t: &Topology, h: &str| HypervisorSnapshot {
        info: t.hypervisor(&hv(h)).unwrap().clone(),
        bridges: t
            .raw
            .bridges
            .iter()
            .filter(|(r, _)| r.hypervisor == hv(h))
            .map(|(_, b)| b.clone())
            .collect(),
        ports: t
            .raw
            .ports
            .iter()
            .filter(|(r, _, _)| **r == hv(h))
            .map(|(_, _, b)| b.clone())
            .collect(),
        interfaces: t
            .raw
            .interfaces
            .iter()
            .filter(|(r, _, _)| **r == hv(h))
            .map(|(_, _, b)| b.clone())
            .collect(),
    };
    let generation = t.generation();
    let same = snapshot(&t, "hv-a");
    assert_eq!(
        kinds(&mut t, vec![Change::HypervisorReplaced { hypervisor: hv("hv-a"), snapshot: same }]),
        vec![]
    );
    assert_eq!(t.generation(), generation);

    // While disconnected, the VM was re-plugged on hv-a (new rows, same iface-id, new ofport).
    let mut other = t.clone();
    let mut changes = unplug_changes(&other, "hv-a", "a-i1");
    changes.extend(plug_changes(&other, "hv-a", &vm_iface("a-i2", "tap1", "port-1", Some(6))));
    other.apply_batch(changes);
    let resynced = snapshot(&other, "hv-a");
    let events = kinds(
        &mut t,
        vec![Change::HypervisorReplaced { hypervisor: hv("hv-a"), snapshot: resynced }],
    );
    assert_eq!(
        events.last(),
        Some(&EventKind::InterfaceMoved {
            iface_id: "port-1".into(),
            from: loc("hv-a", "a-i1", DP_A, Some(5)),
            to: loc("hv-a", "a-i2", DP_A, Some(6)),
        })
    );
    assert!(!events.iter().any(|e| matches!(e, EventKind::MigrationStarted { .. })));
}

#[test]
fn hypervisor_gone_takes_its_rows_and_links() {
    let mut t = two_hosts_with_vm();
    let mut tunnel = InterfaceRow {
        uuid: "b-vx".into(),
        name: "vx-a".into(),
        kind: "vxlan".into(),
        ..Default::default()
    };
    tunnel.options.insert("remote_ip".into(), "192.0.2.1".into());
    tunnel.options.insert("key".into(), "flow".into());
    let plug = plug_changes(&t, "hv-b", &tunnel);
    let link = Link::Tunnel {
        iface: RowRef::new("hv-b", "b-vx"),
        remote_ip: "192.0.2.1".parse().unwrap(),
        to: hv("hv-a"),
    };
    assert!(kinds(&mut t, plug).contains(&EventKind::LinkUp { link: link.clone() }));
    assert_eq!(t.tunnel_ports(&bridge_ref("hv-b"), "vxlan").len(), 1);
    assert!(t.tunnel_ports(&bridge_ref("hv-b"), "gre").is_empty());

    assert_eq!(
        kinds(&mut t, vec![Change::HypervisorGone { hypervisor: hv("hv-a") }]),
        vec![
            EventKind::BridgeDisconnected { bridge: bridge_ref("hv-a"), dpid: DP_A },
            EventKind::InterfaceGone { location: loc("hv-a", "a-i1", DP_A, Some(5)) },
            EventKind::LinkDown { link },
        ]
    );
    assert!(t.hypervisor(&hv("hv-a")).is_none());
    assert!(t.bridge_by_dpid(DP_A).is_none());
    assert!(t.locations("port-1").is_empty());
}

#[test]
fn bridge_connection_follows_dpid_and_switch() {
    let mut t = Topology::default();
    let mut bridge = BridgeRow { uuid: "br".into(), name: "br-int".into(), ..Default::default() };
    assert_eq!(
        kinds(&mut t, vec![Change::BridgeUpserted { hypervisor: hv("h"), row: bridge.clone() }]),
        vec![]
    );
    assert_eq!(kinds(&mut t, vec![Change::SwitchConnected { dpid: DP_A }]), vec![]);
    bridge.datapath_id = Some(DP_A);
    let br = RowRef::new("h", "br");
    assert_eq!(
        kinds(&mut t, vec![Change::BridgeUpserted { hypervisor: hv("h"), row: bridge.clone() }]),
        vec![EventKind::BridgeConnected { bridge: br.clone(), dpid: DP_A }]
    );
    assert_eq!(t.bridge_by_dpid(DP_A).unwrap().bridge, &br);
    assert!(t.bridge(&br).unwrap().connected);
    assert_eq!(t.hypervisor_of_bridge(&br).unwrap().0, &hv("h"));
    bridge.datapath_id = Some(DP_B);
    assert_eq!(
        kinds(&mut t, vec![Change::BridgeUpserted { hypervisor: hv("h"), row: bridge }]),
        vec![EventKind::BridgeDisconnected { bridge: br.clone(), dpid: DP_A }]
    );
    assert_eq!(
        kinds(&mut t, vec![Change::SwitchConnected { dpid: DP_B }]),
        vec![EventKind::BridgeConnected { bridge: br, dpid: DP_B }]
    );
}

#[test]
fn a_bridge_keeps_its_dpid_while_a_restarted_ovsdb_server_has_forgotten_it() {
    let mut t = Topology::default();
    let bridge = BridgeRow {
        uuid: "br".into(),
        name: "br-int".into(),
        datapath_id: Some(DP_A),
        ..Default::default()
    };
    kinds(&mut t, vec![Change::SwitchConnected { dpid: DP_A }]);
    kinds(&mut t, vec![Change::BridgeUpserted { hypervisor: hv("h"), row: bridge.clone() }]);
    // The resync after an ovsdb-server restart: the same row, `datapath_id` (ephemeral) empty.
    let forgotten = BridgeRow { datapath_id: None, ..bridge };
    let snap = HypervisorSnapshot { bridges: vec![forgotten], ..Default::default() };
    assert_eq!(
        kinds(&mut t, vec![Change::HypervisorReplaced { hypervisor: hv("h"), snapshot: snap }]),
        vec![]
    );
    let br = RowRef::new("h", "br");
    assert!(t.bridge(&br).unwrap().connected);
    assert_eq!(t.bridge_by_dpid(DP_A).unwrap().bridge, &br);
}

#[test]
fn rows_in_any_order_converge_and_orphans_are_not_attached() {
    let mut t = Topology::default();
    add_hypervisor(&mut t, "h", DP_A, "192.0.2.1");
    let mut changes = plug_changes(&t, "h", &vm_iface("i1", "tap1", "port-1", Some(2)));
    changes.reverse();
    let bridge_change = changes.remove(0);
    // Port and interface without the bridge listing the port: not attached.
    assert_eq!(kinds(&mut t, changes), vec![]);
    assert!(t.locations("port-1").is_empty());
    assert_eq!(t.snapshot().unattached_interfaces, vec![RowRef::new("h", "i1")]);
    let events = kinds(&mut t, vec![bridge_change]);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(t.snapshot().unattached_interfaces.is_empty());
}

#[test]
fn patch_ports_naming_each_other_form_a_link() {
    let mut t = Topology::default();
    add_hypervisor(&mut t, "h", DP_A, "192.0.2.1");
    let patch = |uuid: &str, name: &str, peer: &str| {
        let mut row = InterfaceRow {
            uuid: uuid.into(),
            name: name.into(),
            kind: "patch".into(),
            ..Default::default()
        };
        row.options.insert("peer".into(), peer.into());
        row
    };
    let plug = plug_changes(&t, "h", &patch("p1", "patch-int", "patch-tun"));
    assert!(!kinds(&mut t, plug).iter().any(|e| matches!(e, EventKind::LinkUp { .. })));
    let plug = plug_changes(&t, "h", &patch("p2", "patch-tun", "patch-int"));
    let link = Link::Patch { a: RowRef::new("h", "p1"), b: RowRef::new("h", "p2") };
    assert!(kinds(&mut t, plug).contains(&EventKind::LinkUp { link: link.clone() }));
    assert_eq!(t.links(), vec![link.clone()]);
    let repointed = patch("p2", "patch-tun", "elsewhere");
    assert_eq!(
        kinds(&mut t, vec![Change::InterfaceUpserted { hypervisor: hv("h"), row: repointed }]),
        vec![
            EventKind::InterfaceUpdated {
                location: Location { ofport: None, ..loc("h", "p2", DP_A, None) }
            },
            EventKind::LinkDown { link }
        ]
    );
}

#[test]
fn tunnel_link_follows_underlay_addresses() {
    let mut t = Topology::default();
    add_hypervisor(&mut t, "hv-a", DP_A, "192.0.2.1");
    let mut tunnel = InterfaceRow {
        uuid: "vx".into(),
        name: "vx0".into(),
        kind: "geneve".into(),
        ..Default::default()
    };
    tunnel.options.insert("remote_ip".into(), "192.0.2.2".into());
    let plug = plug_changes(&t, "hv-a", &tunnel);
    kinds(&mut t, plug);
    assert!(t.links().is_empty(), "hv-b's address is not known yet");
    let info = HypervisorInfo {
        underlay_ips: ["192.0.2.2".parse().unwrap()].into(),
        ..Default::default()
    };
    let link = Link::Tunnel {
        iface: RowRef::new("hv-a", "vx"),
        remote_ip: "192.0.2.2".parse().unwrap(),
        to: hv("hv-b"),
    };
    assert_eq!(
        kinds(&mut t, vec![Change::HypervisorUpserted { hypervisor: hv("hv-b"), info }]),
        vec![EventKind::LinkUp { link: link.clone() }]
    );
    assert_eq!(
        kinds(
            &mut t,
            vec![Change::HypervisorUpserted {
                hypervisor: hv("hv-b"),
                info: HypervisorInfo::default()
            }]
        ),
        vec![EventKind::LinkDown { link }]
    );
}

#[test]
fn lldp_links_are_seen_refreshed_and_expire() {
    let mut t = Topology::default();
    let a = SwitchPort { dpid: DP_B, port: PortNo(1) };
    let b = SwitchPort { dpid: DP_A, port: PortNo(2) };
    let link = Link::Lldp { a: b, b: a };
    assert_eq!(
        kinds(&mut t, vec![Change::LldpLinkSeen { a, b, at: Millis(0) }]),
        vec![EventKind::LinkUp { link: link.clone() }]
    );
    assert_eq!(kinds(&mut t, vec![Change::LldpLinkSeen { a: b, b: a, at: Millis(50) }]), vec![]);
    assert!(t.expire_lldp(Millis(100), Millis(60)).is_empty());
    let events = t.expire_lldp(Millis(111), Millis(60));
    assert_eq!(
        events.into_iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![EventKind::LinkDown { link: link.clone() }]
    );
    // Seen and expired within one batch: no net change.
    assert_eq!(
        kinds(
            &mut t,
            vec![Change::LldpLinkSeen { a, b, at: Millis(0) }, Change::LldpLinkExpired { a, b }]
        ),
        vec![]
    );
    // A port deleted on the switch takes its LLDP links.
    kinds(
        &mut t,
        vec![
            Change::port_added(DP_A, PortNo(2), "eth0"),
            Change::LldpLinkSeen { a, b, at: Millis(0) },
        ],
    );
    let delete = Change::PortStatus {
        dpid: DP_A,
        reason: PortStatusReason::Delete,
        port: OfPort { port_no: PortNo(2), name: "eth0".into(), live: false },
    };
    assert_eq!(kinds(&mut t, vec![delete]), vec![EventKind::LinkDown { link }]);
}

#[test]
fn sources_select_by_iface_id_vm_tenant_and_external_ids() {
    let mut t = two_hosts_with_vm();
    let mut other = vm_iface("a-i2", "tap2", "port-2", Some(6));
    other.external_ids.insert("vm-uuid".into(), "vm-2".into());
    other.external_ids.insert("role".into(), "db".into());
    let plug = plug_changes(&t, "hv-a", &other);
    kinds(&mut t, plug);
    let names = |s: Source| t.interfaces(&s).iter().map(|i| i.row.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(Source::IfaceId("port-2".into())), vec!["tap2"]);
    assert_eq!(names(Source::VmUuid("vm-1".into())), vec!["tap1"]);
    assert_eq!(names(Source::Tenant("tenant-1".into())), vec!["tap1", "tap2"]);
    let sel = |pairs: &[(&str, &str)]| {
        Source::ExternalIds(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        )
    };
    assert_eq!(names(sel(&[("role", "db")])), vec!["tap2"]);
    assert_eq!(names(sel(&[("tenant-id", "tenant-1"), ("role", "db")])), vec!["tap2"]);
    assert_eq!(names(sel(&[("iface-id", "port-1"), ("role", "db")])), Vec::<String>::new());
    assert_eq!(names(sel(&[])), vec!["tap1", "tap2"]);
    let info = t.interfaces(&Source::IfaceId("port-1".into()))[0];
    assert_eq!(info.mac(), Some(MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1])));
    assert_eq!(
        (info.vm_uuid(), info.tenant(), info.is_ready()),
        (Some("vm-1"), Some("tenant-1"), true)
    );
}

#[test]
fn tenant_key_is_configurable() {
    let mut t = Topology::new(crate::graph::TopologyConfig { tenant_key: "owner".into() });
    add_hypervisor(&mut t, "h", DP_A, "192.0.2.1");
    let mut row = vm_iface("i1", "tap1", "port-1", Some(1));
    row.external_ids.insert("owner".into(), "acme".into());
    let plug = plug_changes(&t, "h", &row);
    kinds(&mut t, plug);
    assert_eq!(t.interfaces(&Source::Tenant("acme".into())).len(), 1);
    assert!(t.interfaces(&Source::Tenant("tenant-1".into())).is_empty());
}

#[test]
fn snapshot_serializes_the_hierarchy() {
    let t = two_hosts_with_vm();
    let json = serde_json::to_value(t.snapshot()).unwrap();
    let iface = &json["hypervisors"][0]["bridges"][0]["ports"][0]["interfaces"][0];
    assert_eq!(json["hypervisors"][0]["id"], "hv-a");
    assert_eq!(json["hypervisors"][0]["hostname"], "hv-a");
    assert_eq!(json["hypervisors"][0]["bridges"][0]["connected"], true);
    assert_eq!(iface["iface_id"], "port-1");
    assert_eq!(iface["type"], "");
    assert_eq!(iface["mac"], "fa:16:3e:00:00:01");
    assert_eq!(iface["ready"], true);
    assert_eq!(iface["ofport"], 5);
}

#[test]
fn ten_thousand_interface_upserts_stay_fast() {
    let mut t = Topology::default();
    add_hypervisor(&mut t, "h", DP_A, "192.0.2.1");
    t.apply(Change::SwitchConnected { dpid: DP_A });
    let n = 10_000;
    let started = std::time::Instant::now();
    let mut bridge = t.bridge(&bridge_ref("h")).unwrap().row.clone();
    for i in 0..n {
        let row = vm_iface(&format!("i{i}"), &format!("tap{i}"), &format!("port-{i}"), Some(i + 1));
        let port = PortRow {
            uuid: Uuid::from(format!("p{i}")),
            name: row.name.clone(),
            interfaces: [row.uuid.clone()].into(),
        };
        bridge.ports.insert(port.uuid.clone());
        t.apply_batch([
            Change::InterfaceUpserted { hypervisor: hv("h"), row },
            Change::PortUpserted { hypervisor: hv("h"), row: port },
        ]);
    }
    // One bridge update listing every port, as after an initial monitor reply.
    let events = t.apply(Change::BridgeUpserted { hypervisor: hv("h"), row: bridge });
    let mut again = 0;
    for i in 0..n {
        let mut row =
            vm_iface(&format!("i{i}"), &format!("tap{i}"), &format!("port-{i}"), Some(i + 1));
        row.external_ids.insert("k".into(), "v".into());
        again += t.apply(Change::InterfaceUpserted { hypervisor: hv("h"), row }).len();
    }
    let elapsed = started.elapsed();
    assert_eq!(events.len(), 2 * n as usize, "appeared + ready for each");
    assert_eq!(again, n as usize, "one update each");
    assert_eq!(t.interfaces(&Source::Tenant("tenant-1".into())).len(), n as usize);
    assert_eq!(
        t.interface_at(SwitchPort { dpid: DP_A, port: PortNo(n) }).unwrap().row.name,
        format!("tap{}", n - 1)
    );
    t.check_invariants().unwrap();
    // Generous even for a debug build on a shared machine; quadratic work would take minutes.
    assert!(elapsed.as_secs() < 20, "20,000 interface upserts took {elapsed:?}");
}

/// The bulk path for a snapshot into a hypervisor with no rows against the general path.
mod fresh_snapshot {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use proptest::sample::{select, subsequence};

    use super::*;

    const NAMES: &[&str] = &["tap0", "tap1", "pa", "pb"];

    fn uuids(prefix: &'static str, n: u8) -> impl Strategy<Value = BTreeSet<Uuid>> {
        let all: Vec<Uuid> = (0..n).map(|i| Uuid::from(format!("{prefix}{i}"))).collect();
        subsequence(all, 0..=n as usize).prop_map(|v| v.into_iter().collect())
    }

    fn bridge() -> impl Strategy<Value = BridgeRow> {
        (0..2u8, proptest::option::of(1..3u64), uuids("p", 4)).prop_map(|(i, dpid, ports)| {
            BridgeRow {
                uuid: Uuid::from(format!("b{i}")),
                name: format!("br{i}"),
                datapath_id: dpid.map(Dpid),
                ports,
            }
        })
    }

    fn port() -> impl Strategy<Value = PortRow> {
        (0..4u8, uuids("i", 5)).prop_map(|(i, interfaces)| PortRow {
            uuid: Uuid::from(format!("p{i}")),
            name: format!("port{i}"),
            interfaces,
        })
    }

    fn iface() -> impl Strategy<Value = InterfaceRow> {
        (
            0..5u8,
            select(NAMES.to_vec()),
            select(vec!["", "internal", "patch", "vxlan"]),
            proptest::option::of(1..4u32),
            proptest::option::of(select(vec!["x", "y", "z"])),
            proptest::option::of(select(NAMES.to_vec())),
            proptest::option::of(select(vec!["192.0.2.1", "192.0.2.2"])),
        )
            .prop_map(|(i, name, kind, ofport, iface_id, peer, remote)| {
                let mut row = InterfaceRow {
                    uuid: Uuid::from(format!("i{i}")),
                    name: name.to_owned(),
                    kind: kind.to_owned(),
                    ofport: ofport.map(PortNo),
                    ..Default::default()
                };
                if let Some(id) = iface_id {
                    row.external_ids.insert("iface-id".into(), id.into());
                    row.external_ids.insert("tenant-id".into(), "t".into());
                }
                if let Some(peer) = peer {
                    row.options.insert("peer".into(), peer.into());
                }
                if let Some(ip) = remote {
                    row.options.insert("remote_ip".into(), ip.into());
                }
                row
            })
    }

    fn snapshot(underlay: &'static str) -> impl Strategy<Value = HypervisorSnapshot> {
        (
            any::<bool>(),
            proptest::collection::vec(bridge(), 1..3),
            proptest::collection::vec(port(), 0..6),
            proptest::collection::vec(iface(), 0..7),
        )
            .prop_map(move |(ip, bridges, ports, interfaces)| HypervisorSnapshot {
                info: HypervisorInfo {
                    underlay_ips: ip.then(|| underlay.parse().unwrap()).into_iter().collect(),
                    ..Default::default()
                },
                bridges,
                ports,
                interfaces,
            })
    }

    /// What is already there: another hypervisor `g` (sharing iface-ids, names and tunnel
    /// addresses with `h`), switches and their ports, and maybe `h`'s facts without rows.
    fn base() -> impl Strategy<Value = Vec<Change>> {
        let ports = proptest::collection::vec((1..4u32, select(NAMES.to_vec())), 0..4);
        (snapshot("192.0.2.1"), any::<bool>(), proptest::option::of(1..3u64), ports).prop_map(
            |(g, h_known, connected, of_ports)| {
                let mut changes =
                    vec![Change::HypervisorReplaced { hypervisor: hv("g"), snapshot: g }];
                if h_known {
                    let info = HypervisorInfo { hostname: Some("h".into()), ..Default::default() };
                    changes.push(Change::HypervisorUpserted { hypervisor: hv("h"), info });
                }
                if let Some(d) = connected {
                    changes.push(Change::SwitchConnected { dpid: Dpid(d) });
                    for (no, name) in of_ports {
                        changes.push(Change::port_added(Dpid(d), PortNo(no), name));
                    }
                }
                changes
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        /// The same snapshot into a hypervisor with no rows, through the bulk path and through
        /// the general one, gives the same raw state, the same indexes and the same events.
        #[test]
        fn bulk_path_equals_general_path(base in base(), snap in snapshot("192.0.2.2")) {
            let mut t = Topology::default();
            for c in base {
                t.apply(c);
            }
            prop_assert!(t.holds_no_rows(&hv("h")));
            let change = Change::HypervisorReplaced { hypervisor: hv("h"), snapshot: snap };
            let mut general = t.clone();
            let mut bulk = t;
            let want = general.apply_each(std::iter::once(change.clone()));
            let got: Vec<EventKind> = bulk.apply(change).into_iter().map(|e| e.kind).collect();
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(&bulk.idx, &general.idx);
            prop_assert_eq!(&bulk.raw.hypervisors, &general.raw.hypervisors);
            prop_assert_eq!(&bulk.raw.bridges, &general.raw.bridges);
            prop_assert_eq!(&bulk.raw.ports, &general.raw.ports);
            prop_assert_eq!(&bulk.raw.interfaces, &general.raw.interfaces);
            prop_assert_eq!(bulk.check_invariants(), Ok(()));
        }
    }
}

#[test]
fn fresh_snapshot_sharing_an_iface_id_starts_a_migration() {
    let snap = |h: &str| {
        let bridge = BridgeRow {
            uuid: Uuid::from(format!("{h}-br")),
            name: "br-int".into(),
            datapath_id: Some(DP_A),
            ports: [Uuid::from(format!("{h}-p"))].into(),
        };
        let port = PortRow {
            uuid: Uuid::from(format!("{h}-p")),
            name: "tap".into(),
            interfaces: [Uuid::from(format!("{h}-i"))].into(),
        };
        HypervisorSnapshot {
            info: HypervisorInfo::default(),
            bridges: vec![bridge],
            ports: vec![port],
            interfaces: vec![vm_iface(&format!("{h}-i"), "tap", "port-1", Some(3))],
        }
    };
    let mut t = Topology::default();
    t.apply(Change::HypervisorReplaced { hypervisor: hv("g"), snapshot: snap("g") });
    let mut general = t.clone();
    let change = Change::HypervisorReplaced { hypervisor: hv("h"), snapshot: snap("h") };
    let want = general.apply_each(std::iter::once(change.clone()));
    let got: Vec<EventKind> = t.apply(change).into_iter().map(|e| e.kind).collect();
    assert!(got.iter().any(|k| matches!(k, EventKind::MigrationStarted { .. })), "{got:?}");
    assert_eq!(got, want);
    assert_eq!(t.idx, general.idx);
}

#[test]
fn a_port_state_change_moves_the_revision_without_an_event() {
    let mut t = two_hosts_with_vm();
    let port = |live| OfPort { port_no: PortNo(40), name: "eth-phys".into(), live };
    t.apply(Change::PortStatus { dpid: DP_A, reason: PortStatusReason::Add, port: port(true) });
    let (generation, revision) = (t.generation(), t.revision());
    // The port goes down: no event, but what is read from the ports changed.
    let down =
        Change::PortStatus { dpid: DP_A, reason: PortStatusReason::Modify, port: port(false) };
    assert!(t.apply(down).is_empty());
    assert_eq!(t.generation(), generation);
    assert_eq!(t.revision(), revision + 1);
    // An apply given nothing changes nothing.
    t.apply_batch(Vec::new());
    assert_eq!(t.revision(), revision + 1);
}
