//! periscope's tunnel ports: one flow-based port per kind (VXLAN, GRE, ERSPAN) on each bridge
//! that needs one (`remote_ip=flow`, `key=flow`), marked as periscope's in `external_ids` so that
//! nothing else is ever taken for one, and the OVSDB operations that create and remove them.

use std::collections::{BTreeMap, BTreeSet};

use periscope_codec::ovsdb::{
    Atom, Condition, Datum, Function, Mutation, Mutator, Operation, Row, Uuid,
};
use periscope_topology::rows::InterfaceRow;
use periscope_topology::{InterfaceInfo, RowRef, Topology, Uuid as TopoUuid};

use crate::northbound::model::TunnelKind;

/// The `external_ids` key that marks rows periscope created.
pub const OWNED_KEY: &str = "periscope-owned";

/// The name of periscope's tunnel port of a kind on a bridge: `psc-vx-`, `psc-gre-` or
/// `psc-er-` and the first six hex digits of the bridge row's uuid. Port names are unique
/// across an Open vSwitch database, which may hold several bridges (Mininet's does), and stay
/// within the 15 bytes of an interface name.
pub fn port_name(kind: TunnelKind, bridge: Uuid) -> String {
    let id = format!("{:032x}", bridge.0);
    match kind {
        TunnelKind::Vxlan => format!("psc-vx-{}", &id[..6]),
        TunnelKind::Gre => format!("psc-gre-{}", &id[..6]),
        TunnelKind::Erspan => format!("psc-er-{}", &id[..6]),
    }
}

/// Whether an interface is one of periscope's tunnel ports.
pub fn is_our_tunnel(row: &InterfaceRow) -> bool {
    row.external_ids.get(OWNED_KEY).map(|v| &**v) == Some("true")
        && row.options.get("remote_ip").map(|v| &**v) == Some("flow")
        && row.options.get("key").map(|v| &**v) == Some("flow")
}

/// The kinds of tunnel port periscope makes.
pub const KINDS: [TunnelKind; 3] = [TunnelKind::Vxlan, TunnelKind::Gre, TunnelKind::Erspan];

/// The kind of a tunnel interface, if it is one periscope makes.
pub fn tunnel_kind(row: &InterfaceRow) -> Option<TunnelKind> {
    KINDS.into_iter().find(|k| k.ovs_type() == row.kind.as_str())
}

fn string_map(pairs: &[(&str, &str)]) -> Datum {
    Datum::Map(pairs.iter().map(|(k, v)| (Atom::from(*k), Atom::from(*v))).collect())
}

/// The options of a tunnel port of `kind`: every tunnel parameter comes from the flow. An
/// ERSPAN port also takes its version from the flow, and its local address: Open vSwitch tells
/// tunnel ports apart by these parameters, not by type, and a GRE port and an ERSPAN port that
/// both had `remote_ip=flow key=flow` only would clash (the second is refused).
fn options(kind: TunnelKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        TunnelKind::Vxlan | TunnelKind::Gre => &[("key", "flow"), ("remote_ip", "flow")],
        TunnelKind::Erspan => {
            &[("erspan_ver", "flow"), ("key", "flow"), ("local_ip", "flow"), ("remote_ip", "flow")]
        }
    }
}

/// Adds periscope's tunnel port of `kind` to the bridge row `bridge`.
pub fn create_ops(bridge: Uuid, kind: TunnelKind) -> Vec<Operation> {
    let name = port_name(kind, bridge);
    let owned = string_map(&[(OWNED_KEY, "true")]);
    let mut iface = Row::new();
    iface.insert("name".into(), Datum::atom(name.as_str()));
    iface.insert("type".into(), Datum::atom(kind.ovs_type()));
    iface.insert("options".into(), string_map(options(kind)));
    iface.insert("external_ids".into(), owned.clone());
    let mut port = Row::new();
    port.insert("name".into(), Datum::atom(name.as_str()));
    port.insert("interfaces".into(), Datum::atom(Atom::NamedUuid("iface".into())));
    port.insert("external_ids".into(), owned);
    vec![
        Operation::Insert {
            table: "Interface".into(),
            row: iface,
            uuid_name: Some("iface".into()),
        },
        Operation::Insert { table: "Port".into(), row: port, uuid_name: Some("port".into()) },
        Operation::Mutate {
            table: "Bridge".into(),
            conditions: vec![Condition::new(
                "_uuid",
                Function::Eq,
                Datum::atom(Atom::Uuid(bridge)),
            )],
            mutations: vec![Mutation::new(
                "ports",
                Mutator::Insert,
                Datum::atom(Atom::NamedUuid("port".into())),
            )],
        },
    ]
}

/// Removes the port row `port` from the bridge row `bridge` (OVSDB then deletes the port and
/// its interface, which nothing else references).
pub fn delete_ops(bridge: Uuid, port: Uuid) -> Vec<Operation> {
    vec![Operation::Mutate {
        table: "Bridge".into(),
        conditions: vec![Condition::new("_uuid", Function::Eq, Datum::atom(Atom::Uuid(bridge)))],
        mutations: vec![Mutation::new("ports", Mutator::Delete, Datum::atom(Atom::Uuid(port)))],
    }]
}

/// A change to periscope's tunnel ports on one bridge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TunnelChange {
    /// The bridge needs a tunnel port of this kind.
    Create {
        /// The bridge row.
        bridge: RowRef,
        /// The kind of port.
        kind: TunnelKind,
    },
    /// Nobody on the bridge needs this tunnel port any more.
    Delete {
        /// The bridge row.
        bridge: RowRef,
        /// The kind of port.
        kind: TunnelKind,
        /// The `Port` row to remove.
        port: TopoUuid,
    },
}

impl TunnelChange {
    /// The bridge and kind of port it concerns.
    pub fn key(&self) -> (RowRef, TunnelKind) {
        match self {
            TunnelChange::Create { bridge, kind } | TunnelChange::Delete { bridge, kind, .. } => {
                (bridge.clone(), *kind)
            }
        }
    }

    /// The OVSDB operations that make the change, or why they cannot be built.
    pub fn ops(&self) -> Result<Vec<Operation>, String> {
        let parse = |u: &TopoUuid| match u.bits() {
            Some(bits) => Ok(Uuid(bits)),
            None => u.to_string().parse::<Uuid>().map_err(|_| format!("bad row uuid {u:?}")),
        };
        match self {
            TunnelChange::Create { bridge, kind } => Ok(create_ops(parse(&bridge.uuid)?, *kind)),
            TunnelChange::Delete { bridge, port, .. } => {
                Ok(delete_ops(parse(&bridge.uuid)?, parse(port)?))
            }
        }
    }
}

/// periscope's tunnel ports on a bridge, with their kind.
pub fn our_tunnel_ports<'t>(
    topology: &'t Topology,
    bridge: &'t RowRef,
) -> impl Iterator<Item = (InterfaceInfo<'t>, TunnelKind)> + 't {
    KINDS.into_iter().flat_map(move |kind| {
        topology
            .tunnel_ports(bridge, kind.ovs_type())
            .into_iter()
            .filter(|t| is_our_tunnel(t.row))
            .map(move |t| (t, kind))
    })
}

/// How many tunnel ports periscope has on all bridges.
pub fn count_ours(topology: &Topology) -> usize {
    topology.bridges().map(|b| our_tunnel_ports(topology, b.bridge).count()).sum()
}

/// The tunnel port changes that make every bridge (or each of `only`) hold exactly the tunnel
/// ports its taps need: `needed` maps each bridge to the kinds of port its plan asks for.
pub fn plan_tunnels(
    topology: &Topology,
    needed: &BTreeMap<RowRef, BTreeSet<TunnelKind>>,
    only: Option<&BTreeSet<RowRef>>,
) -> Vec<TunnelChange> {
    let mut out = Vec::new();
    for b in topology.bridges().filter(|b| only.is_none_or(|o| o.contains(b.bridge))) {
        let want = needed.get(b.bridge).cloned().unwrap_or_default();
        let mut have = BTreeSet::new();
        for (t, kind) in our_tunnel_ports(topology, b.bridge) {
            have.insert(kind);
            if !want.contains(&kind) {
                if let Some(port) = topology.port_of_interface(&t.interface_ref()) {
                    out.push(TunnelChange::Delete {
                        bridge: b.bridge.clone(),
                        kind,
                        port: port.uuid.clone(),
                    });
                }
            }
        }
        for kind in want.difference(&have) {
            out.push(TunnelChange::Create { bridge: b.bridge.clone(), kind: *kind });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use periscope_codec::openflow::{Dpid, PortNo};
    use periscope_topology::change::HypervisorSnapshot;
    use periscope_topology::rows::{BridgeRow, InterfaceRow, PortRow};
    use periscope_topology::{Change, HypervisorId, Topology, TopologyConfig, Uuid};

    use super::{plan_tunnels, TunnelChange, TunnelKind, OWNED_KEY};

    /// Two hypervisors' bridges; the first holds periscope's VXLAN port.
    fn two_bridges() -> Topology {
        let mut t = Topology::new(TopologyConfig::default());
        let changes: Vec<Change> = (0..2u64)
            .map(|h| {
                let mut snapshot = HypervisorSnapshot::default();
                let mut bridge = BridgeRow {
                    uuid: Uuid::from(format!("br{h}")),
                    name: "br-int".into(),
                    datapath_id: Some(Dpid(h + 1)),
                    ports: BTreeSet::new(),
                };
                if h == 0 {
                    let i = InterfaceRow {
                        uuid: Uuid::from("vx-i".to_string()),
                        name: "psc-vx".into(),
                        kind: "vxlan".into(),
                        ofport: Some(PortNo(100)),
                        external_ids: [(OWNED_KEY.into(), "true".into())].into(),
                        options: [
                            ("remote_ip".into(), "flow".into()),
                            ("key".into(), "flow".into()),
                        ]
                        .into(),
                        ..Default::default()
                    };
                    let p = PortRow {
                        uuid: Uuid::from("vx-p".to_string()),
                        name: "psc-vx".into(),
                        interfaces: [i.uuid.clone()].into(),
                    };
                    bridge.ports.insert(p.uuid.clone());
                    snapshot.ports.push(p);
                    snapshot.interfaces.push(i);
                }
                snapshot.bridges.push(bridge);
                let hypervisor = HypervisorId::from(format!("hv{h}"));
                Change::HypervisorReplaced { hypervisor, snapshot }
            })
            .collect();
        t.apply_batch(changes);
        t
    }

    #[test]
    fn only_the_bridges_asked_about_are_changed() {
        let t = two_bridges();
        let bridges: Vec<_> = t.bridges().map(|b| b.bridge.clone()).collect();
        let (first, second) = (bridges[0].clone(), bridges[1].clone());
        // The first now wants GRE instead of VXLAN, the second VXLAN.
        let needed = BTreeMap::from([
            (first.clone(), BTreeSet::from([TunnelKind::Gre])),
            (second.clone(), BTreeSet::from([TunnelKind::Vxlan])),
        ]);
        let all = plan_tunnels(&t, &needed, None);
        let of = |c: &TunnelChange| match c {
            TunnelChange::Create { bridge, kind } => (bridge.clone(), *kind, true),
            TunnelChange::Delete { bridge, kind, .. } => (bridge.clone(), *kind, false),
        };
        let all: BTreeSet<_> = all.iter().map(of).collect();
        assert_eq!(
            all,
            BTreeSet::from([
                (first.clone(), TunnelKind::Vxlan, false),
                (first.clone(), TunnelKind::Gre, true),
                (second.clone(), TunnelKind::Vxlan, true),
            ])
        );
        let only_second = plan_tunnels(&t, &needed, Some(&BTreeSet::from([second.clone()])));
        let only_second: BTreeSet<_> = only_second.iter().map(of).collect();
        assert_eq!(only_second, BTreeSet::from([(second, TunnelKind::Vxlan, true)]));
    }
}
