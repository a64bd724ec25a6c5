//! Property tests: after any sequence of changes every index equals its recomputation, the events
//! are exactly the documented difference between the states before and after, and the order in
//! which independent facts arrive does not matter.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use periscope_codec::openflow::{Dpid, MacAddr, PortNo};
use periscope_topology::{
    BridgeRow, Change, EventKind, HypervisorId, HypervisorInfo, HypervisorSnapshot, InterfaceRow,
    Link, Location, Millis, OfPort, PortRow, PortStatusReason, RowRef, Source, SwitchPort,
    Topology, Uuid,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

const NAMES: &[&str] = &["tap0", "tap1", "tap2", "pa", "pb"];
const IPS: &[&str] = &["192.0.2.1", "192.0.2.2", "flow"];

fn hv() -> impl Strategy<Value = HypervisorId> {
    (0..3u8).prop_map(|i| HypervisorId::from(format!("hv{i}")))
}

fn uuids(prefix: &'static str, n: u8) -> impl Strategy<Value = BTreeSet<Uuid>> {
    let all: Vec<Uuid> = (0..n).map(|i| Uuid::from(format!("{prefix}{i}"))).collect();
    subsequence(all, 0..=n as usize).prop_map(|v| v.into_iter().collect())
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

fn info() -> impl Strategy<Value = HypervisorInfo> {
    (opt(select(vec!["sys-a", "sys-b"])), subsequence(vec!["192.0.2.1", "192.0.2.2"], 0..=2))
        .prop_map(|(sys, ips)| HypervisorInfo {
            system_id: sys.map(str::to_owned),
            hostname: None,
            underlay_ips: ips.into_iter().map(|ip| ip.parse().unwrap()).collect(),
        })
}

fn bridge_row() -> impl Strategy<Value = BridgeRow> {
    (0..3u8, opt(1..4u64), uuids("p", 6)).prop_map(|(i, dpid, ports)| BridgeRow {
        uuid: Uuid::from(format!("b{i}")),
        name: format!("br{i}"),
        datapath_id: dpid.map(Dpid),
        ports,
    })
}

fn port_row() -> impl Strategy<Value = PortRow> {
    (0..6u8, uuids("i", 6)).prop_map(|(i, interfaces)| PortRow {
        uuid: Uuid::from(format!("p{i}")),
        name: format!("port{i}"),
        interfaces,
    })
}

fn iface_row() -> impl Strategy<Value = InterfaceRow> {
    let ids = (
        opt(select(vec!["x", "y"])),
        opt(select(vec!["vm1", "vm2"])),
        opt(select(vec!["t1", "t2"])),
    );
    let opts = (opt(select(NAMES.to_vec())), opt(select(IPS.to_vec())), any::<bool>());
    (
        0..6u8,
        select(NAMES.to_vec()),
        select(vec!["", "internal", "patch", "vxlan", "gre"]),
        opt(1..5u32),
        ids,
        opts,
    )
        .prop_map(|(i, name, kind, ofport, (iface_id, vm, tenant), (peer, remote, mac))| {
            let mut row = InterfaceRow {
                uuid: Uuid::from(format!("i{i}")),
                name: name.to_owned(),
                kind: kind.to_owned(),
                ofport: ofport.map(PortNo),
                mac_in_use: mac.then_some(MacAddr([2, 0, 0, 0, 0, i])),
                ..Default::default()
            };
            let ext = [("iface-id", iface_id), ("vm-uuid", vm), ("tenant-id", tenant)];
            for (k, v) in ext {
                if let Some(v) = v {
                    row.external_ids.insert(k.into(), v.into());
                }
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

fn of_port() -> impl Strategy<Value = OfPort> {
    (1..5u32, select(NAMES.to_vec()), any::<bool>()).prop_map(|(no, name, live)| OfPort {
        port_no: PortNo(no),
        name: name.to_owned(),
        live,
    })
}

fn switch_port() -> impl Strategy<Value = SwitchPort> {
    (1..4u64, 1..5u32).prop_map(|(d, p)| SwitchPort { dpid: Dpid(d), port: PortNo(p) })
}

fn change() -> impl Strategy<Value = Change> {
    let snapshot = (
        info(),
        proptest::collection::vec(bridge_row(), 0..3),
        proptest::collection::vec(port_row(), 0..4),
        proptest::collection::vec(iface_row(), 0..5),
    )
        .prop_map(|(info, bridges, ports, interfaces)| HypervisorSnapshot {
            info,
            bridges,
            ports,
            interfaces,
        });
    let reason =
        select(vec![PortStatusReason::Add, PortStatusReason::Modify, PortStatusReason::Delete]);
    prop_oneof![
        2 => (hv(), info()).prop_map(|(hypervisor, info)| Change::HypervisorUpserted { hypervisor, info }),
        1 => hv().prop_map(|hypervisor| Change::HypervisorGone { hypervisor }),
        2 => (hv(), snapshot).prop_map(|(hypervisor, snapshot)| Change::HypervisorReplaced { hypervisor, snapshot }),
        5 => (hv(), bridge_row()).prop_map(|(hypervisor, row)| Change::BridgeUpserted { hypervisor, row }),
        1 => (hv(), 0..3u8).prop_map(|(hypervisor, i)| Change::BridgeRemoved { hypervisor, uuid: Uuid::from(format!("b{i}")) }),
        6 => (hv(), port_row()).prop_map(|(hypervisor, row)| Change::PortUpserted { hypervisor, row }),
        1 => (hv(), 0..6u8).prop_map(|(hypervisor, i)| Change::PortRemoved { hypervisor, uuid: Uuid::from(format!("p{i}")) }),
        8 => (hv(), iface_row()).prop_map(|(hypervisor, row)| Change::InterfaceUpserted { hypervisor, row }),
        2 => (hv(), 0..6u8).prop_map(|(hypervisor, i)| Change::InterfaceRemoved { hypervisor, uuid: Uuid::from(format!("i{i}")) }),
        2 => (1..4u64).prop_map(|d| Change::SwitchConnected { dpid: Dpid(d) }),
        1 => (1..4u64).prop_map(|d| Change::SwitchDisconnected { dpid: Dpid(d) }),
        1 => (1..4u64, proptest::collection::vec(of_port(), 0..4))
            .prop_map(|(d, ports)| Change::SwitchPortsReplaced { dpid: Dpid(d), ports }),
        4 => (1..4u64, reason, of_port()).prop_map(|(d, reason, port)| Change::PortStatus { dpid: Dpid(d), reason, port }),
        2 => (switch_port(), switch_port(), 0..100u64).prop_map(|(a, b, at)| Change::LldpLinkSeen { a, b, at: Millis(at) }),
        1 => (switch_port(), switch_port()).prop_map(|(a, b)| Change::LldpLinkExpired { a, b }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    One(Change),
    Batch(Vec<Change>),
    Expire(u64, u64),
    /// Change one field of the attached interface `i<n>` of a hypervisor, if there is one.
    Tweak(HypervisorId, u8, u8),
}

/// The upsert of `t`'s attached interface `r` with field number `field` changed.
fn tweak(t: &Topology, r: &RowRef, field: u8) -> Option<Change> {
    let mut row = t.interface(r)?.row.clone();
    let toggle = |m: &mut BTreeMap<Arc<str>, Arc<str>>, k: &str, a: &str, b: &str| {
        let next = if m.get(k).map(|v| &**v) == Some(a) { b } else { a };
        m.insert(k.into(), next.into());
    };
    match field {
        0 => toggle(&mut row.options, "peer", "pa", "pb"),
        1 => toggle(&mut row.options, "remote_ip", "192.0.2.1", "192.0.2.2"),
        2 => toggle(&mut row.external_ids, "tenant-id", "t1", "t2"),
        3 => toggle(&mut row.external_ids, "iface-id", "x", "y"),
        4 => row.ofport = if row.ofport.is_some() { None } else { Some(PortNo(4)) },
        5 => row.name = if row.name == "pa" { "pb".into() } else { "pa".into() },
        _ => {
            row.mac_in_use =
                if row.mac_in_use.is_some() { None } else { Some(MacAddr([2, 0, 0, 0, 0, 9])) }
        }
    }
    Some(Change::InterfaceUpserted { hypervisor: r.hypervisor.clone(), row })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => change().prop_map(Step::One),
        2 => proptest::collection::vec(change(), 1..5).prop_map(Step::Batch),
        1 => (0..200u64, 0..100u64).prop_map(|(now, age)| Step::Expire(now, age)),
        4 => (hv(), 0..6u8, 0..7u8).prop_map(|(h, i, f)| Step::Tweak(h, i, f)),
    ]
}

/// What the events talk about, read through the public queries.
#[derive(Debug, Clone)]
struct Observed {
    attached: BTreeMap<RowRef, (Location, InterfaceRow)>,
    connections: BTreeMap<RowRef, Option<Dpid>>,
    links: BTreeSet<Link>,
}

fn observe(t: &Topology) -> Observed {
    let attached = t
        .interfaces(&Source::ExternalIds(BTreeMap::new()))
        .into_iter()
        .map(|i| (i.interface_ref(), (i.location.clone(), i.row.clone())))
        .collect();
    let connections = t
        .bridges()
        .map(|b| (b.bridge.clone(), b.row.datapath_id.filter(|_| b.connected)))
        .collect();
    Observed { attached, connections, links: t.links().into_iter().collect() }
}

/// A connected switch's ports, the bridge of its dpid, and the interface (with its iface-id)
/// at each port (`None` while the switch is not connected).
type SwitchView = Option<(Vec<OfPort>, Option<RowRef>, Vec<Option<(RowRef, Option<String>)>>)>;

fn switch_view(t: &Topology, dpid: Dpid) -> SwitchView {
    if !t.switch_connected(dpid) {
        return None;
    }
    let ports: Vec<OfPort> = t.ports_of_switch(dpid).cloned().collect();
    let at = ports
        .iter()
        .map(|p| {
            let i = t.interface_at(SwitchPort { dpid, port: p.port_no })?;
            Some((i.interface_ref(), i.iface_id().map(str::to_owned)))
        })
        .collect();
    Some((ports, t.bridge_by_dpid(dpid).map(|b| b.bridge.clone()), at))
}

fn places(o: &Observed) -> BTreeMap<String, Vec<Location>> {
    let mut out: BTreeMap<String, Vec<Location>> = BTreeMap::new();
    for (loc, row) in o.attached.values() {
        if let Some(id) = row.iface_id() {
            out.entry(id.to_owned()).or_default().push(loc.clone());
        }
    }
    out
}

/// The events the documentation promises for `before` -> `after`, sorted.
fn expected(before: &Observed, after: &Observed) -> Vec<EventKind> {
    let mut out = Vec::new();
    let bridges: BTreeSet<&RowRef> =
        before.connections.keys().chain(after.connections.keys()).collect();
    for b in bridges {
        let was = before.connections.get(b).copied().flatten();
        let is = after.connections.get(b).copied().flatten();
        if was != is {
            if let Some(dpid) = was {
                out.push(EventKind::BridgeDisconnected { bridge: b.clone(), dpid });
            }
            if let Some(dpid) = is {
                out.push(EventKind::BridgeConnected { bridge: b.clone(), dpid });
            }
        }
    }
    let rows: BTreeSet<&RowRef> = before.attached.keys().chain(after.attached.keys()).collect();
    for r in rows {
        match (before.attached.get(r), after.attached.get(r)) {
            (None, Some((l, _))) => {
                out.push(EventKind::InterfaceAppeared { location: l.clone() });
                if l.is_ready() {
                    out.push(EventKind::LocationReady { location: l.clone() });
                }
            }
            (Some((l, _)), None) => out.push(EventKind::InterfaceGone { location: l.clone() }),
            (Some((lb, rb)), Some((la, ra))) => {
                let strip = |r: &InterfaceRow| InterfaceRow { ofport: None, ..r.clone() };
                if strip(rb) != strip(ra) {
                    out.push(EventKind::InterfaceUpdated { location: la.clone() });
                }
                if la.is_ready() && (!lb.is_ready() || lb != la) {
                    out.push(EventKind::LocationReady { location: la.clone() });
                } else if lb.is_ready() && !la.is_ready() {
                    out.push(EventKind::LocationUnready { location: lb.clone() });
                }
            }
            (None, None) => {}
        }
    }
    let (pb, pa) = (places(before), places(after));
    let ids: BTreeSet<&String> = pb.keys().chain(pa.keys()).collect();
    let none = Vec::new();
    for id in ids {
        let (b, a) = (pb.get(id).unwrap_or(&none), pa.get(id).unwrap_or(&none));
        let rows = |v: &[Location]| v.iter().map(Location::interface_ref).collect::<BTreeSet<_>>();
        let (rb, ra) = (rows(b), rows(a));
        if rb == ra {
            continue;
        }
        let iface_id = id.clone();
        match (b.len(), a.len()) {
            (1, 1) => out.push(EventKind::InterfaceMoved {
                iface_id,
                from: b[0].clone(),
                to: a[0].clone(),
            }),
            (0 | 1, 2..) => out.push(EventKind::MigrationStarted {
                iface_id,
                from: a.iter().filter(|l| rb.contains(&l.interface_ref())).cloned().collect(),
                to: a.iter().filter(|l| !rb.contains(&l.interface_ref())).cloned().collect(),
            }),
            (2.., 1) => out.push(EventKind::MigrationFinished {
                iface_id,
                from: b.iter().filter(|l| !ra.contains(&l.interface_ref())).cloned().collect(),
                to: a[0].clone(),
            }),
            _ => {}
        }
    }
    for l in after.links.difference(&before.links) {
        out.push(EventKind::LinkUp { link: l.clone() });
    }
    for l in before.links.difference(&after.links) {
        out.push(EventKind::LinkDown { link: l.clone() });
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn indexes_match_recomputation_and_events_match_the_difference(steps in proptest::collection::vec(step(), 1..40)) {
        let mut t = Topology::default();
        for step in steps {
            let before = observe(&t);
            let generation = t.generation();
            let views: Vec<SwitchView> = (1..4).map(|d| switch_view(&t, Dpid(d))).collect();
            let mut named: BTreeSet<Dpid> = match &step {
                Step::One(c) => c.switch().into_iter().collect(),
                Step::Batch(cs) => cs.iter().filter_map(Change::switch).collect(),
                Step::Expire(..) | Step::Tweak(..) => BTreeSet::new(),
            };
            let events = match step {
                Step::One(c) => t.apply(c),
                Step::Batch(cs) => t.apply_batch(cs),
                Step::Expire(now, age) => t.expire_lldp(Millis(now), Millis(age)),
                Step::Tweak(h, i, field) => {
                    match tweak(&t, &RowRef { hypervisor: h, uuid: Uuid::from(format!("i{i}")) }, field) {
                        Some(c) => t.apply(c),
                        None => continue,
                    }
                }
            };
            if let Err(e) = t.check_invariants() {
                return Err(TestCaseError::fail(e));
            }
            let after = observe(&t);
            if events.is_empty() {
                prop_assert_eq!(t.generation(), generation);
            } else {
                prop_assert_eq!(t.generation().0, generation.0 + 1);
                prop_assert!(events.iter().all(|e| e.generation == t.generation()));
            }
            // What a switch looks like changes only under a change or an event naming it.
            named.extend(events.iter().flat_map(|e| e.kind.switches()));
            let ready_before = |r: RowRef| before.attached.get(&r).and_then(|(l, _)| l.switch_port());
            named.extend(events.iter().filter_map(|e| match &e.kind {
                EventKind::InterfaceAppeared { location }
                | EventKind::InterfaceGone { location }
                | EventKind::InterfaceUpdated { location }
                | EventKind::LocationReady { location }
                | EventKind::LocationUnready { location } => {
                    ready_before(location.interface_ref()).map(|sp| sp.dpid)
                }
                _ => None,
            }));
            for (d, before) in (1..4).map(Dpid).zip(views) {
                if !named.contains(&d) {
                    prop_assert_eq!(switch_view(&t, d), before, "{} changed unnamed", d);
                }
            }
            let mut got: Vec<EventKind> = events.into_iter().map(|e| e.kind).collect();
            got.sort();
            prop_assert_eq!(got, expected(&before, &after));
            // Every ready location is findable by its switch port.
            for (r, (loc, _)) in &after.attached {
                if let Some(sp) = loc.switch_port() {
                    prop_assert!(t.interface_at(sp).is_some(), "{} at {} not found", r, sp);
                }
            }
        }
    }

    #[test]
    fn independent_facts_converge_in_any_order(
        (canonical, shuffled) in facts().prop_flat_map(|f| (Just(f.clone()), Just(f).prop_shuffle()))
    ) {
        let run = |changes: Vec<Change>| {
            let mut t = Topology::default();
            for c in changes {
                t.apply(c);
            }
            t
        };
        let (a, b) = (run(canonical), run(shuffled));
        prop_assert!(b.check_invariants().is_ok());
        let (mut sa, mut sb) = (a.snapshot(), b.snapshot());
        sa.generation = Default::default();
        sb.generation = Default::default();
        prop_assert_eq!(sa, sb);
    }
}

/// One hypervisor's rows (each VM port maybe without ofport yet), the switch's connection and its
/// PORT_STATUS messages: each fact once, so any order must reach the same graph.
fn facts() -> impl Strategy<Value = Vec<Change>> {
    proptest::collection::vec((any::<bool>(), any::<bool>()), 1..6).prop_map(|vms| {
        let h = HypervisorId::from("hv");
        let mut out = vec![Change::SwitchConnected { dpid: Dpid(1) }];
        let mut bridge = BridgeRow {
            uuid: "br".into(),
            name: "br-int".into(),
            datapath_id: Some(Dpid(1)),
            ..Default::default()
        };
        for (i, (ovsdb_knows, switch_knows)) in vms.into_iter().enumerate() {
            let no = PortNo(i as u32 + 1);
            let mut row = InterfaceRow {
                uuid: Uuid::from(format!("i{i}")),
                name: format!("tap{i}"),
                ofport: ovsdb_knows.then_some(no),
                ..Default::default()
            };
            row.external_ids.insert("iface-id".into(), format!("port-{i}").into());
            let port = PortRow {
                uuid: Uuid::from(format!("p{i}")),
                name: row.name.clone(),
                interfaces: [row.uuid.clone()].into(),
            };
            bridge.ports.insert(port.uuid.clone());
            if switch_knows {
                out.push(Change::port_added(Dpid(1), no, &row.name));
            }
            out.push(Change::InterfaceUpserted { hypervisor: h.clone(), row });
            out.push(Change::PortUpserted { hypervisor: h.clone(), row: port });
        }
        out.push(Change::BridgeUpserted { hypervisor: h, row: bridge });
        out
    })
}
