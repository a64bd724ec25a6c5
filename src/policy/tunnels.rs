//! periscope's tunnel ports: one flow-based port per encapsulation on each bridge that needs
//! one (`remote_ip=flow`, `key=flow`), marked as periscope's in `external_ids` so that nothing
//! else is ever taken for one, and the OVSDB operations that create and remove them.

use periscope_codec::ovsdb::{
    Atom, Condition, Datum, Function, Mutation, Mutator, Operation, Row, Uuid,
};
use periscope_topology::rows::InterfaceRow;

use crate::northbound::model::Encap;

/// The `external_ids` key that marks rows periscope created.
pub const OWNED_KEY: &str = "periscope-owned";

/// The name of periscope's tunnel port for an encapsulation.
pub fn port_name(encap: Encap) -> &'static str {
    match encap {
        Encap::Vxlan => "psc-vxlan",
        Encap::Gre => "psc-gre",
    }
}

/// Whether an interface is one of periscope's tunnel ports.
pub fn is_our_tunnel(row: &InterfaceRow) -> bool {
    row.external_ids.get(OWNED_KEY).map(String::as_str) == Some("true")
        && row.options.get("remote_ip").map(String::as_str) == Some("flow")
        && row.options.get("key").map(String::as_str) == Some("flow")
}

/// The encapsulation of a tunnel interface.
pub fn tunnel_encap(row: &InterfaceRow) -> Option<Encap> {
    match row.kind.as_str() {
        "vxlan" => Some(Encap::Vxlan),
        "gre" => Some(Encap::Gre),
        _ => None,
    }
}

fn string_map(pairs: &[(&str, &str)]) -> Datum {
    Datum::Map(
        pairs
            .iter()
            .map(|(k, v)| (Atom::String(k.to_string()), Atom::String(v.to_string())))
            .collect(),
    )
}

/// Adds periscope's tunnel port for `encap` to the bridge row `bridge`.
pub fn create_ops(bridge: Uuid, encap: Encap) -> Vec<Operation> {
    let name = port_name(encap);
    let owned = string_map(&[(OWNED_KEY, "true")]);
    let mut iface = Row::new();
    iface.insert("name".into(), Datum::atom(Atom::String(name.into())));
    iface.insert("type".into(), Datum::atom(Atom::String(encap.ovs_type().into())));
    iface.insert("options".into(), string_map(&[("key", "flow"), ("remote_ip", "flow")]));
    iface.insert("external_ids".into(), owned.clone());
    let mut port = Row::new();
    port.insert("name".into(), Datum::atom(Atom::String(name.into())));
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
