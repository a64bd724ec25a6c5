//! Pure translation of replicated Open_vSwitch rows into topology [`Change`]s.
//!
//! The session applies monitor updates to a [`Replica`]; the [`RowChange`]s it reports become
//! upserts and removals here, and a whole replica (the first snapshot, or a resync) becomes one
//! [`Change::HypervisorReplaced`], which the topology diffs so that unchanged rows emit nothing.
//! Column values of an unexpected type read as absent: the replica has already checked them
//! against the schema, so that only happens with a schema that changed a column's type.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use periscope_codec::openflow::MacAddr;
use periscope_codec::ovsdb::{
    Atom, ChangeKind, Datum, Replica, ReplicaError, ReplicaRow, RowChange, TableUpdates2, Uuid,
};
use periscope_topology::{
    ofport_from_ovsdb, parse_datapath_id, BridgeRow, Change, Event, HypervisorId, HypervisorInfo,
    HypervisorSnapshot, InterfaceRow, PortRow, Topology, Uuid as RowUuid,
};

/// The root table: one row describing the hypervisor.
pub const OPEN_VSWITCH: &str = "Open_vSwitch";
/// Bridges.
pub const BRIDGE: &str = "Bridge";
/// Ports of bridges.
pub const PORT: &str = "Port";
/// Interfaces of ports.
pub const INTERFACE: &str = "Interface";
/// OpenFlow controllers of bridges.
pub const CONTROLLER: &str = "Controller";

/// `Open_vSwitch.external_ids` key of the hypervisor's stable identity.
pub const SYSTEM_ID_KEY: &str = "system-id";
/// `Open_vSwitch.external_ids` key of the host name.
pub const HOSTNAME_KEY: &str = "hostname";
/// `Open_vSwitch.external_ids` key where OVN keeps the tunnel endpoint addresses
/// (comma-separated), read as the hypervisor's underlay addresses.
pub const ENCAP_IP_KEY: &str = "ovn-encap-ip";

fn atom<'r>(row: &'r ReplicaRow, column: &str) -> Option<&'r Atom> {
    row.get(column).and_then(Datum::as_atom)
}

fn string<'r>(row: &'r ReplicaRow, column: &str) -> Option<&'r str> {
    atom(row, column)?.as_str()
}

fn integer(row: &ReplicaRow, column: &str) -> Option<i64> {
    match atom(row, column)? {
        Atom::Integer(i) => Some(*i),
        _ => None,
    }
}

/// A string map column; its strings are the replica's, shared.
fn string_map(row: &ReplicaRow, column: &str) -> BTreeMap<Arc<str>, Arc<str>> {
    let Some(pairs) = row.get(column).and_then(Datum::as_map) else {
        return BTreeMap::new();
    };
    // The pairs are sorted by key already: inserting them in order costs less than `collect`,
    // which sorts and deduplicates first.
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        if let (Atom::String(k), Atom::String(v)) = (k, v) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn map_string<'r>(row: &'r ReplicaRow, column: &str, key: &str) -> Option<&'r str> {
    let pairs = row.get(column)?.as_map()?;
    let i = pairs
        .binary_search_by(|(k, _)| match k {
            Atom::String(k) => (**k).cmp(key),
            other => other.cmp(&Atom::from(key)),
        })
        .ok()?;
    pairs[i].1.as_str()
}

fn uuid_set(row: &ReplicaRow, column: &str) -> BTreeSet<RowUuid> {
    let Some(atoms) = row.get(column).and_then(Datum::as_set) else {
        return BTreeSet::new();
    };
    let uuids = atoms.iter().filter_map(|a| match a {
        Atom::Uuid(u) => Some(row_uuid(*u)),
        _ => None,
    });
    // A port's few interfaces go straight into the tree; `collect` first gathers and sorts
    // them in a vector of its own, which pays only for a bridge's many ports.
    if atoms.len() <= 8 {
        let mut out = BTreeSet::new();
        for u in uuids {
            out.insert(u);
        }
        return out;
    }
    uuids.collect()
}

/// `mac_in_use`: the 17 characters `hh:hh:hh:hh:hh:hh` OVS writes are read directly, anything
/// else through `MacAddr`'s parser (which accepts the same and more).
fn mac(s: &str) -> Option<MacAddr> {
    fn hex(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() == 17 {
        let mut out = [0u8; 6];
        let mut ok = true;
        for (i, octet) in out.iter_mut().enumerate() {
            let at = 3 * i;
            match (hex(b[at]), hex(b[at + 1]), i == 5 || b[at + 2] == b':') {
                (Some(hi), Some(lo), true) => *octet = hi << 4 | lo,
                _ => ok = false,
            }
        }
        if ok {
            return Some(MacAddr(out));
        }
    }
    s.parse().ok()
}

/// The topology's form of a row uuid.
pub fn row_uuid(u: Uuid) -> RowUuid {
    RowUuid::from(u)
}

/// `external_ids:system-id` of an `Open_vSwitch` row, if set and not empty.
pub fn system_id(row: &ReplicaRow) -> Option<&str> {
    map_string(row, "external_ids", SYSTEM_ID_KEY).filter(|s| !s.is_empty())
}

/// The hypervisor facts of an `Open_vSwitch` row.
pub fn hypervisor_info(row: &ReplicaRow) -> HypervisorInfo {
    let non_empty = |k| map_string(row, "external_ids", k).filter(|s| !s.is_empty());
    HypervisorInfo {
        system_id: non_empty(SYSTEM_ID_KEY).map(str::to_string),
        hostname: non_empty(HOSTNAME_KEY).map(str::to_string),
        underlay_ips: non_empty(ENCAP_IP_KEY)
            .map(|s| s.split(',').filter_map(|ip| ip.trim().parse().ok()).collect())
            .unwrap_or_default(),
    }
}

/// A `Bridge` row; an unparseable `datapath_id` reads as not yet known.
pub fn bridge_row(uuid: Uuid, row: &ReplicaRow) -> BridgeRow {
    BridgeRow {
        uuid: row_uuid(uuid),
        name: string(row, "name").unwrap_or_default().to_string(),
        datapath_id: string(row, "datapath_id").and_then(|d| parse_datapath_id(d).ok()),
        ports: uuid_set(row, "ports"),
    }
}

/// A `Port` row.
pub fn port_row(uuid: Uuid, row: &ReplicaRow) -> PortRow {
    PortRow {
        uuid: row_uuid(uuid),
        name: string(row, "name").unwrap_or_default().to_string(),
        interfaces: uuid_set(row, "interfaces"),
    }
}

/// An `Interface` row; `ofport` goes through [`ofport_from_ovsdb`].
pub fn interface_row(uuid: Uuid, row: &ReplicaRow) -> InterfaceRow {
    InterfaceRow {
        uuid: row_uuid(uuid),
        name: string(row, "name").unwrap_or_default().to_string(),
        kind: string(row, "type").unwrap_or_default().to_string(),
        ofport: integer(row, "ofport").and_then(ofport_from_ovsdb),
        mac_in_use: string(row, "mac_in_use").and_then(mac),
        external_ids: string_map(row, "external_ids"),
        options: string_map(row, "options"),
    }
}

/// The hypervisor's `Open_vSwitch` row (the table holds one).
pub fn root_row(replica: &Replica) -> Option<&ReplicaRow> {
    replica.table(OPEN_VSWITCH)?.values().next()
}

/// Everything the replica holds about the hypervisor, as one resync.
pub fn snapshot(replica: &Replica) -> HypervisorSnapshot {
    fn rows<T>(replica: &Replica, table: &str, f: fn(Uuid, &ReplicaRow) -> T) -> Vec<T> {
        replica.table(table).map(|t| t.iter().map(|(u, r)| f(*u, r)).collect()).unwrap_or_default()
    }
    HypervisorSnapshot {
        info: root_row(replica).map(hypervisor_info).unwrap_or_default(),
        bridges: rows(replica, BRIDGE, bridge_row),
        ports: rows(replica, PORT, port_row),
        interfaces: rows(replica, INTERFACE, interface_row),
    }
}

/// The replica as a [`Change::HypervisorReplaced`] for `hypervisor`.
pub fn replaced(hypervisor: &HypervisorId, replica: &Replica) -> Change {
    Change::HypervisorReplaced { hypervisor: hypervisor.clone(), snapshot: snapshot(replica) }
}

/// The topology changes for row changes just applied to `replica` (which must already hold the
/// new contents). Modifications of columns the topology does not read (link state, tags,
/// controllers...) give nothing.
pub fn changes(
    hypervisor: &HypervisorId,
    replica: &Replica,
    row_changes: &[RowChange],
) -> Vec<Change> {
    let mut out = Vec::with_capacity(row_changes.len());
    for rc in row_changes {
        if let Some(c) = change(hypervisor, replica, rc) {
            out.push(c);
        }
    }
    out
}

/// Columns the topology reads, per table.
fn read_columns(table: &str) -> &'static [&'static str] {
    match table {
        OPEN_VSWITCH => &["external_ids"],
        BRIDGE => &["name", "datapath_id", "ports"],
        PORT => &["name", "interfaces"],
        INTERFACE => &["name", "type", "ofport", "mac_in_use", "external_ids", "options"],
        _ => &[],
    }
}

fn change(hv: &HypervisorId, replica: &Replica, rc: &RowChange) -> Option<Change> {
    let hypervisor = hv.clone();
    let table = rc.table.as_str();
    match &rc.kind {
        ChangeKind::Deleted { .. } => {
            let uuid = row_uuid(rc.uuid);
            return match table {
                OPEN_VSWITCH => {
                    Some(Change::HypervisorUpserted { hypervisor, info: HypervisorInfo::default() })
                }
                BRIDGE => Some(Change::BridgeRemoved { hypervisor, uuid }),
                PORT => Some(Change::PortRemoved { hypervisor, uuid }),
                INTERFACE => Some(Change::InterfaceRemoved { hypervisor, uuid }),
                _ => None,
            };
        }
        // An upsert only when a column the topology reads changed.
        ChangeKind::Modified { columns, .. } => {
            let read = read_columns(table);
            if !columns.iter().any(|c| read.contains(&&**c)) {
                return None;
            }
        }
        _ => {}
    }
    let row = replica.row(table, rc.uuid)?;
    let u = rc.uuid;
    Some(match table {
        OPEN_VSWITCH => Change::HypervisorUpserted { hypervisor, info: hypervisor_info(row) },
        BRIDGE => Change::BridgeUpserted { hypervisor, row: bridge_row(u, row) },
        PORT => Change::PortUpserted { hypervisor, row: port_row(u, row) },
        INTERFACE => Change::InterfaceUpserted { hypervisor, row: interface_row(u, row) },
        _ => return None,
    })
}

/// The path of a first connection or a resync in one call: replaces the replica's contents with
/// a full monitor reply and applies the result to the topology, which reports only what differs.
pub fn apply_full_state(
    hypervisor: &HypervisorId,
    replica: &mut Replica,
    updates: TableUpdates2,
    topology: &mut Topology,
) -> Result<Vec<Event>, ReplicaError> {
    replica.load(updates)?;
    Ok(topology.apply(replaced(hypervisor, replica)))
}

/// The path of an `update2`/`update3` in one call: applies it to the replica, translates the row
/// changes and applies them to the topology.
pub fn apply_update(
    hypervisor: &HypervisorId,
    replica: &mut Replica,
    updates: TableUpdates2,
    topology: &mut Topology,
) -> Result<Vec<Event>, ReplicaError> {
    let rc = replica.apply_update2(updates)?;
    Ok(topology.apply_batch(changes(hypervisor, replica, &rc)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_codec::openflow::{Dpid, PortNo};
    use periscope_codec::ovsdb::{DatabaseSchema, Row};
    use periscope_topology::{EventKind, TopologyConfig};
    use serde_json::{json, Value};

    const OVS: &str = "00000000-0000-0000-0000-0000000000a0";
    const BR: &str = "00000000-0000-0000-0000-0000000000b1";
    const PT: &str = "00000000-0000-0000-0000-0000000000c1";
    const IF: &str = "00000000-0000-0000-0000-0000000000d1";

    fn schema() -> DatabaseSchema {
        let text = include_str!("../../codec/tests/data/ovsdb/vswitch.ovsschema");
        let v: Value = serde_json::from_str(text).expect("schema JSON");
        DatabaseSchema::from_json(&v).expect("schema")
    }

    fn replica() -> Replica {
        Replica::with_columns(
            &schema(),
            &[
                (OPEN_VSWITCH, Some(&["external_ids", "bridges"])),
                (BRIDGE, Some(&["name", "datapath_id", "ports", "fail_mode"])),
                (PORT, Some(&["name", "interfaces", "tag"])),
                (
                    INTERFACE,
                    Some(&[
                        "name",
                        "type",
                        "ofport",
                        "mac_in_use",
                        "external_ids",
                        "options",
                        "link_state",
                    ]),
                ),
            ],
        )
        .expect("replica")
    }

    fn u(s: &str) -> Uuid {
        s.parse().expect("uuid")
    }

    fn updates(v: Value) -> TableUpdates2 {
        TableUpdates2::from_json(&v).expect("updates")
    }

    fn initial() -> TableUpdates2 {
        updates(json!({
            "Open_vSwitch": {OVS: {"initial": {"external_ids": ["map", [["system-id", "sys-1"], ["hostname", "hv1"], ["ovn-encap-ip", "192.0.2.1"]]], "bridges": ["uuid", BR]}}},
            "Bridge": {BR: {"initial": {"name": "br-int", "datapath_id": "0000000000000e1a", "ports": ["uuid", PT], "fail_mode": "secure"}}},
            "Port": {PT: {"initial": {"name": "vm1", "interfaces": ["uuid", IF], "tag": 5}}},
            "Interface": {IF: {"initial": {"name": "vm1", "ofport": 3, "mac_in_use": "02:00:00:00:00:01",
                "external_ids": ["map", [["iface-id", "port-1"], ["attached-mac", "fa:16:3e:00:00:01"]]],
                "link_state": "up"}}},
        }))
    }

    fn hv() -> HypervisorId {
        HypervisorId::from("hv1")
    }

    #[test]
    fn snapshot_translates_every_table() {
        let mut r = replica();
        r.reset(initial()).expect("reset");
        let s = snapshot(&r);
        assert_eq!(s.info.system_id.as_deref(), Some("sys-1"));
        assert_eq!(s.info.hostname.as_deref(), Some("hv1"));
        assert_eq!(
            s.info.underlay_ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            ["192.0.2.1"]
        );
        assert_eq!(s.bridges.len(), 1);
        assert_eq!(s.bridges[0].name, "br-int");
        assert_eq!(s.bridges[0].datapath_id, Some(Dpid(0xe1a)));
        assert_eq!(s.bridges[0].ports, BTreeSet::from([RowUuid::from(PT)]));
        assert_eq!(s.ports[0].interfaces, BTreeSet::from([RowUuid::from(IF)]));
        let i = &s.interfaces[0];
        assert_eq!((i.name.as_str(), i.kind.as_str(), i.ofport), ("vm1", "", Some(PortNo(3))));
        assert_eq!(i.iface_id(), Some("port-1"));
        assert_eq!(i.mac_in_use, Some(MacAddr([2, 0, 0, 0, 0, 1])));
        assert_eq!(system_id(root_row(&r).expect("root")), Some("sys-1"));

        // Applied to a topology, the snapshot shows the interface where it is.
        let mut t = Topology::new(TopologyConfig::default());
        let ev = t.apply(replaced(&hv(), &r));
        assert!(
            ev.iter().any(|e| matches!(&e.kind, EventKind::LocationReady { location } if location.ofport == Some(PortNo(3)))),
            "{ev:?}"
        );
        // The same snapshot again changes nothing.
        assert!(t.apply(replaced(&hv(), &r)).is_empty());
    }

    #[test]
    fn inserts_modifications_and_deletes_become_upserts_and_removals() {
        let mut r = replica();
        r.reset(initial()).expect("reset");
        let rc = r
            .apply_update2(updates(json!({"Interface": {IF: {"modify": {"ofport": 7}}}})))
            .expect("modify");
        let c = changes(&hv(), &r, &rc);
        let [Change::InterfaceUpserted { row, .. }] = &c[..] else { panic!("{c:?}") };
        assert_eq!(row.ofport, Some(PortNo(7)));

        // Columns the topology does not read change nothing.
        let rc = r
            .apply_update2(updates(json!({
                "Interface": {IF: {"modify": {"link_state": "down"}}},
                "Port": {PT: {"modify": {"tag": 6}}},
                "Bridge": {BR: {"modify": {"fail_mode": "standalone"}}},
            })))
            .expect("modify");
        assert_eq!(rc.len(), 3);
        assert_eq!(changes(&hv(), &r, &rc), vec![]);

        let rc = r
            .apply_update2(updates(json!({"Open_vSwitch": {OVS: {"modify": {"external_ids": ["map", [["hostname", "hv1b"]]]}}}})))
            .expect("modify");
        let c = changes(&hv(), &r, &rc);
        let [Change::HypervisorUpserted { info, .. }] = &c[..] else { panic!("{c:?}") };
        assert_eq!(info.hostname.as_deref(), Some("hv1b"));

        let new_if = "00000000-0000-0000-0000-0000000000d2";
        let rc = r
            .apply_update2(updates(json!({
                "Interface": {IF: {"delete": null}, new_if: {"insert": {"name": "vm2", "type": "internal", "ofport": -1}}},
                "Port": {PT: {"delete": null}},
                "Bridge": {BR: {"modify": {"ports": ["uuid", PT], "datapath_id": "zz"}}},
            })))
            .expect("delete");
        let c = changes(&hv(), &r, &rc);
        assert!(
            c.contains(&Change::InterfaceRemoved { hypervisor: hv(), uuid: IF.into() }),
            "{c:?}"
        );
        assert!(c.contains(&Change::PortRemoved { hypervisor: hv(), uuid: PT.into() }), "{c:?}");
        let up = c.iter().find_map(|c| match c {
            Change::InterfaceUpserted { row, .. } => Some(row),
            _ => None,
        });
        let up = up.expect("inserted interface");
        assert_eq!((up.name.as_str(), up.kind.as_str(), up.ofport), ("vm2", "internal", None));
        let br = c.iter().find_map(|c| match c {
            Change::BridgeUpserted { row, .. } => Some(row),
            _ => None,
        });
        let br = br.expect("bridge upsert");
        assert!(br.ports.is_empty());
        assert_eq!(br.datapath_id, None, "a bad datapath_id reads as unknown");
        assert_eq!(c.len(), 4, "{c:?}");

        let rc = r
            .apply_update2(updates(json!({"Open_vSwitch": {OVS: {"delete": null}}})))
            .expect("delete");
        assert_eq!(
            changes(&hv(), &r, &rc),
            vec![Change::HypervisorUpserted { hypervisor: hv(), info: HypervisorInfo::default() }]
        );
    }

    #[test]
    fn interface_strings_are_the_replicas() {
        let mut r = replica();
        r.load(initial()).expect("load");
        let row = r.row(INTERFACE, u(IF)).expect("interface");
        let i = interface_row(u(IF), row);
        let Some(Datum::Map(pairs)) = row.get("external_ids") else { panic!("{row:?}") };
        for (k, v) in pairs {
            let (Atom::String(k), Atom::String(v)) = (k, v) else { panic!("{k:?}") };
            let (ik, iv) = i.external_ids.get_key_value(&**k).expect("copied");
            assert!(Arc::ptr_eq(k, ik) && Arc::ptr_eq(v, iv), "{k} is shared");
        }
        assert_eq!(i.external_ids.len(), pairs.len());
    }

    #[test]
    fn mac_in_use_reads_as_mac_addr_parses_it() {
        for s in [
            "02:00:00:00:00:01",
            "FA:16:3e:0a:Bb:ff",
            "2:0:0:0:0:1",
            "02:00:00:00:00:0g",
            "02-00-00-00-00-01",
            "02:00:00:00:00:01:",
            "+2:00:00:00:00:01",
            "",
        ] {
            assert_eq!(mac(s), s.parse::<MacAddr>().ok(), "{s:?}");
        }
    }

    #[test]
    fn values_of_unexpected_shape_read_as_absent() {
        let mut row = Row::new();
        row.insert("name".into(), Datum::atom(5));
        row.insert("ofport".into(), Datum::empty_set());
        row.insert("mac_in_use".into(), Datum::atom("not-a-mac"));
        row.insert("external_ids".into(), Datum::map([(1, "x")]));
        let i = interface_row(u(IF), &ReplicaRow::from(row));
        assert_eq!((i.name.as_str(), i.ofport, i.mac_in_use), ("", None, None));
        assert!(i.external_ids.is_empty());
        let info = hypervisor_info(&ReplicaRow::from(Row::new()));
        assert_eq!(info, HypervisorInfo::default());
    }
}
