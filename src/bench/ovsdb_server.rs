//! One emulated hypervisor's ovsdb-server, sans-IO: the `Open_vSwitch` database of one bridge
//! and its VM interfaces, served over RFC 7047 JSON-RPC as far as periscope's client uses it
//! (`list_dbs`, `get_schema`, `monitor_cond_since`/`monitor_cond`, `transact`, `echo`, `lock`),
//! with the real Open vSwitch schema. The bench plugs and unplugs interfaces, which the monitor
//! reports as `update3` (or `update2`) notifications, as ovs-vswitchd's writes would be.
//!
//! Like ovs-vswitchd, it gives every inserted interface an `ofport` at once, and like
//! ovsdb-server it deletes `Port` and `Interface` rows no bridge refers to any more. It keeps no
//! transaction history: a `monitor_cond_since` always gets the whole database.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use periscope_codec::ovsdb::datum::ColumnName;
use periscope_codec::ovsdb::{
    Atom, Datum, Function, Message, Mutator, Notification, Operation, Request, Response, Row,
    RowUpdate2, TableUpdates2, Uuid,
};
use serde_json::{json, Value};

use crate::ovsdb::session::DATABASE;
use crate::ovsdb::translate::{BRIDGE, ENCAP_IP_KEY, INTERFACE, OPEN_VSWITCH, PORT, SYSTEM_ID_KEY};

/// The Open vSwitch 3.1 `vswitch.ovsschema` the repository ships for its tests.
const VSWITCH_SCHEMA: &str = include_str!("../../codec/tests/data/ovsdb/vswitch.ovsschema");

/// The schema as JSON, parsed once for every emulated server.
fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(VSWITCH_SCHEMA).unwrap_or(Value::Null))
}

/// A VM interface as the bench plugs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vif {
    /// `external_ids:iface-id` (the Neutron port).
    pub iface_id: String,
    /// `external_ids:attached-mac`.
    pub mac: [u8; 6],
    /// `external_ids:tenant-id`.
    pub tenant: String,
}

/// A port appearing on or leaving the bridge, for the emulated OpenFlow switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortChange {
    /// An interface got this OpenFlow port number.
    Added(u32, String),
    /// The interface on this port number went.
    Removed(u32, String),
}

/// The emulated database and the monitor of its one client.
#[derive(Debug, Clone)]
pub struct EmulatedOvsdb {
    tables: BTreeMap<&'static str, BTreeMap<Uuid, Row>>,
    bridge: Uuid,
    /// The monitor's id and whether it wants `update3` (`monitor_cond_since`).
    monitor: Option<(Value, bool)>,
    next_uuid: u128,
    next_ofport: u32,
    /// Interface rows by `iface-id`: (port row, interface row, ofport).
    vifs: BTreeMap<String, (Uuid, Uuid, u32)>,
}

fn col(name: &str) -> ColumnName {
    ColumnName::from(name)
}

fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Datum {
    Datum::map(pairs.into_iter().map(|(k, v)| (Atom::string(k), Atom::string(v))))
}

fn mac_text(m: &[u8; 6]) -> String {
    let h: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
    h.join(":")
}

impl EmulatedOvsdb {
    /// Hypervisor `index` (the seed of its row UUIDs) named `system_id`, with one bridge
    /// `br-int` of datapath id `dpid`, tunnel address `encap_ip`.
    pub fn new(index: u32, system_id: &str, dpid: u64, encap_ip: &str) -> Self {
        let mut db = EmulatedOvsdb {
            tables: [OPEN_VSWITCH, BRIDGE, PORT, INTERFACE]
                .into_iter()
                .map(|t| (t, BTreeMap::new()))
                .collect(),
            bridge: Uuid(0),
            monitor: None,
            next_uuid: (u128::from(index) + 1) << 64,
            next_ofport: 1,
            vifs: BTreeMap::new(),
        };
        db.bridge = db.uuid();
        let root = db.uuid();
        let bridge: Row = [
            (col("name"), Datum::atom("br-int")),
            (col("datapath_id"), Datum::atom(format!("{dpid:016x}"))),
            (col("ports"), Datum::empty_set()),
            (col("fail_mode"), Datum::atom("secure")),
        ]
        .into();
        let ovs: Row = [
            (
                col("external_ids"),
                string_map([
                    (SYSTEM_ID_KEY, system_id.to_string()),
                    (ENCAP_IP_KEY, encap_ip.to_string()),
                ]),
            ),
            (col("bridges"), Datum::atom(db.bridge)),
        ]
        .into();
        let id = db.bridge;
        db.table(BRIDGE).insert(id, bridge);
        db.table(OPEN_VSWITCH).insert(root, ovs);
        db
    }

    fn uuid(&mut self) -> Uuid {
        self.next_uuid += 1;
        Uuid(self.next_uuid)
    }

    fn table(&mut self, name: &'static str) -> &mut BTreeMap<Uuid, Row> {
        self.tables.entry(name).or_default()
    }

    /// Forgets the monitor: the connection closed.
    pub fn disconnected(&mut self) {
        self.monitor = None;
    }

    /// The OpenFlow ports of the bridge now: (number, name).
    pub fn ports(&self) -> Vec<(u32, String)> {
        let mut v: Vec<(u32, String)> = self.tables[INTERFACE]
            .values()
            .filter_map(|r| {
                let no = r.get("ofport")?.as_atom()?.as_integer()?;
                let name = r.get("name")?.as_atom()?.as_str()?;
                Some((u32::try_from(no).ok()?, name.to_string()))
            })
            .collect();
        v.sort();
        v
    }

    /// The OpenFlow port of the interface `iface_id`, if plugged.
    pub fn ofport(&self, iface_id: &str) -> Option<u32> {
        self.vifs.get(iface_id).map(|v| v.2)
    }

    /// Plugs a VM interface (a `tap…` port with its `external_ids`, as Nova and os-vif write
    /// them): the monitor's notification, and the port the switch gains. `None` if it is
    /// plugged here already.
    pub fn plug(&mut self, vif: &Vif) -> Option<(Option<Message>, PortChange)> {
        if self.vifs.contains_key(&vif.iface_id) {
            return None;
        }
        let (port, iface) = (self.uuid(), self.uuid());
        let ofport = self.next_ofport;
        self.next_ofport += 1;
        let name = format!("tap{}", &vif.iface_id.chars().take(11).collect::<String>());
        let irow: Row = [
            (col("name"), Datum::atom(name.as_str())),
            (col("ofport"), Datum::atom(i64::from(ofport))),
            (col("mac_in_use"), Datum::atom(mac_text(&vif.mac))),
            (
                col("external_ids"),
                string_map([
                    ("iface-id", vif.iface_id.clone()),
                    ("attached-mac", mac_text(&vif.mac)),
                    ("iface-status", "active".to_string()),
                    ("tenant-id", vif.tenant.clone()),
                ]),
            ),
        ]
        .into();
        let prow: Row =
            [(col("name"), Datum::atom(name.as_str())), (col("interfaces"), Datum::atom(iface))]
                .into();
        let mut updates = TableUpdates2::default();
        self.insert_row(&mut updates, INTERFACE, iface, irow);
        self.insert_row(&mut updates, PORT, port, prow);
        self.toggle_bridge_port(&mut updates, port, true);
        self.vifs.insert(vif.iface_id.clone(), (port, iface, ofport));
        Some((self.notification(updates), PortChange::Added(ofport, name)))
    }

    /// Unplugs the VM interface `iface_id`: the monitor's notification and the port the switch
    /// loses. `None` if it is not plugged here.
    pub fn unplug(&mut self, iface_id: &str) -> Option<(Option<Message>, PortChange)> {
        let (port, _, _) = *self.vifs.get(iface_id)?;
        let mut updates = TableUpdates2::default();
        let gone = self.remove_bridge_port(&mut updates, port);
        let change = gone.into_iter().next()?;
        Some((self.notification(updates), change))
    }

    fn insert_row(&mut self, u: &mut TableUpdates2, table: &'static str, id: Uuid, row: Row) {
        u.tables.entry(table.to_string()).or_default().insert(id, RowUpdate2::Insert(row.clone()));
        self.table(table).insert(id, row);
    }

    fn toggle_bridge_port(&mut self, u: &mut TableUpdates2, port: Uuid, add: bool) {
        let bridge = self.bridge;
        let Some(row) = self.table(BRIDGE).get_mut(&bridge) else { return };
        let mut ports: Vec<Atom> =
            row.get("ports").and_then(Datum::as_set).map(<[Atom]>::to_vec).unwrap_or_default();
        ports.retain(|a| a.as_uuid() != Some(port));
        if add {
            ports.push(Atom::Uuid(port));
        }
        row.insert(col("ports"), Datum::set(ports));
        let diff: Row = [(col("ports"), Datum::atom(port))].into();
        u.tables.entry(BRIDGE.to_string()).or_default().insert(bridge, RowUpdate2::Modify(diff));
    }

    /// Takes `port` off the bridge and deletes it with its interfaces (ovsdb-server's garbage
    /// collection of rows nothing refers to): the ports the switch loses.
    fn remove_bridge_port(&mut self, u: &mut TableUpdates2, port: Uuid) -> Vec<PortChange> {
        self.toggle_bridge_port(u, port, false);
        let Some(prow) = self.table(PORT).remove(&port) else { return Vec::new() };
        u.tables.entry(PORT.to_string()).or_default().insert(port, RowUpdate2::Delete);
        let ifaces: Vec<Uuid> = prow
            .get("interfaces")
            .and_then(Datum::as_set)
            .map(|s| s.iter().filter_map(Atom::as_uuid).collect())
            .unwrap_or_default();
        let mut gone = Vec::new();
        for i in ifaces {
            if let Some(irow) = self.table(INTERFACE).remove(&i) {
                u.tables.entry(INTERFACE.to_string()).or_default().insert(i, RowUpdate2::Delete);
                let no = irow.get("ofport").and_then(Datum::as_atom).and_then(Atom::as_integer);
                let name = irow.get("name").and_then(Datum::as_atom).and_then(Atom::as_str);
                if let (Some(no), Some(name)) = (no, name) {
                    gone.push(PortChange::Removed(no as u32, name.to_string()));
                }
            }
        }
        self.vifs.retain(|_, v| v.0 != port);
        gone
    }

    /// The monitor's notification of `updates` (nothing without a monitor).
    fn notification(&mut self, updates: TableUpdates2) -> Option<Message> {
        let (id, since) = self.monitor.clone()?;
        let txn = self.uuid();
        let params = if since {
            vec![id, Value::String(txn.to_string()), updates.to_json()]
        } else {
            vec![id, updates.to_json()]
        };
        let method = if since { "update3" } else { "update2" };
        Some(Notification { method: method.into(), params }.into())
    }

    /// Handles one request from the controller: the messages to send back (the reply, and the
    /// monitor's notification of a transaction), and the ports the switch gains or loses.
    pub fn handle(&mut self, r: Request, out: &mut Vec<Message>, ports: &mut Vec<PortChange>) {
        let reply = |result| Message::from(Response::ok(r.id.clone(), result));
        match r.method.as_str() {
            "echo" => out.push(r.echo_reply().into()),
            "list_dbs" => out.push(reply(json!([DATABASE]))),
            "get_schema" => out.push(reply(schema().clone())),
            "lock" | "steal" => out.push(reply(json!({"locked": true}))),
            "unlock" => out.push(reply(json!({}))),
            "set_db_change_aware" => out.push(reply(json!({}))),
            "monitor_cond_since" | "monitor_cond" => {
                let since = r.method == "monitor_cond_since";
                self.monitor = Some((r.params.get(1).cloned().unwrap_or(Value::Null), since));
                let mut all = TableUpdates2::default();
                for (t, rows) in &self.tables {
                    let rows = rows.iter().map(|(u, row)| (*u, RowUpdate2::Initial(row.clone())));
                    all.tables.insert(t.to_string(), rows.collect());
                }
                let txn = self.uuid();
                out.push(reply(if since {
                    json!([false, txn.to_string(), all.to_json()])
                } else {
                    all.to_json()
                }));
            }
            "transact" => {
                let (results, updates) = self.transact(&r.params, ports);
                // As ovsdb-server does: the monitor hears of the commit before the client's
                // reply, so the client's replica holds it when the reply arrives.
                if !updates.is_empty() {
                    out.extend(self.notification(updates));
                }
                out.push(reply(Value::Array(results)));
            }
            other => out.push(
                Response {
                    id: r.id.clone(),
                    result: Value::Null,
                    error: Some(json!(format!("unknown method {other:?}"))),
                }
                .into(),
            ),
        }
    }

    /// Runs a transaction's operations in order; an operation that fails stops it (as in
    /// ovsdb-server, the rest are not executed, and what ran stays: the bench needs no
    /// rollback).
    fn transact(
        &mut self,
        params: &[Value],
        ports: &mut Vec<PortChange>,
    ) -> (Vec<Value>, TableUpdates2) {
        let mut results = Vec::new();
        let mut updates = TableUpdates2::default();
        let mut named: BTreeMap<String, Uuid> = BTreeMap::new();
        for p in params.iter().skip(1) {
            let result = match Operation::from_json(p) {
                Ok(op) => self.operation(op, &mut named, &mut updates, ports),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(v) => results.push(v),
                Err(details) => {
                    results.push(json!({"error": "not supported", "details": details}));
                    break;
                }
            }
        }
        (results, updates)
    }

    fn operation(
        &mut self,
        op: Operation,
        named: &mut BTreeMap<String, Uuid>,
        updates: &mut TableUpdates2,
        ports: &mut Vec<PortChange>,
    ) -> Result<Value, String> {
        match op {
            Operation::Insert { table, row, uuid_name } => {
                let t = table_name(&table)?;
                let id = self.uuid();
                if let Some(n) = uuid_name {
                    named.insert(n, id);
                }
                let mut row: Row = row
                    .into_iter()
                    .map(|(c, d)| Ok((c, resolve(d, named)?)))
                    .collect::<Result<_, String>>()?;
                if t == INTERFACE {
                    // ovs-vswitchd's part: the new interface gets its OpenFlow port.
                    let no = self.next_ofport;
                    self.next_ofport += 1;
                    row.insert(col("ofport"), Datum::atom(i64::from(no)));
                    let name = row.get("name").and_then(Datum::as_atom).and_then(Atom::as_str);
                    ports.push(PortChange::Added(no, name.unwrap_or_default().to_string()));
                }
                self.insert_row(updates, t, id, row);
                Ok(json!({"uuid": Atom::Uuid(id).to_json()}))
            }
            Operation::Mutate { table, conditions, mutations } => {
                let t = table_name(&table)?;
                let bridge = self.bridge;
                let hits = conditions.iter().all(|c| {
                    c.column == "_uuid"
                        && c.function == Function::Eq
                        && c.value.as_atom().and_then(Atom::as_uuid) == Some(bridge)
                });
                if t != BRIDGE || !hits {
                    return Ok(json!({"count": 0}));
                }
                for m in mutations {
                    if m.column != "ports" {
                        return Err(format!("mutate of Bridge column {:?}", m.column));
                    }
                    let value = resolve(m.value, named)?;
                    for a in value.as_set().unwrap_or_default() {
                        let Some(port) = a.as_uuid() else { continue };
                        match m.mutator {
                            Mutator::Insert => self.toggle_bridge_port(updates, port, true),
                            Mutator::Delete => ports.extend(self.remove_bridge_port(updates, port)),
                            other => return Err(format!("mutator {other:?} on Bridge ports")),
                        }
                    }
                }
                Ok(json!({"count": 1}))
            }
            Operation::Comment { .. } | Operation::Commit { .. } => Ok(json!({})),
            other => Err(format!("operation {:?}", other.name())),
        }
    }
}

fn table_name(t: &str) -> Result<&'static str, String> {
    [OPEN_VSWITCH, BRIDGE, PORT, INTERFACE]
        .into_iter()
        .find(|n| *n == t)
        .ok_or_else(|| format!("table {t:?}"))
}

/// `["named-uuid", n]` replaced by the row inserted earlier under that name.
fn resolve(d: Datum, named: &BTreeMap<String, Uuid>) -> Result<Datum, String> {
    let one = |a: Atom| match a {
        Atom::NamedUuid(n) => {
            named.get(&n).map(|u| Atom::Uuid(*u)).ok_or_else(|| format!("unknown named-uuid {n:?}"))
        }
        a => Ok(a),
    };
    match d {
        Datum::Set(s) => {
            let atoms: Vec<Atom> = s.into_vec().into_iter().map(one).collect::<Result<_, _>>()?;
            Ok(Datum::set(atoms))
        }
        Datum::Map(m) => {
            let pairs: Vec<(Atom, Atom)> = m
                .into_iter()
                .map(|(k, v)| Ok((one(k)?, one(v)?)))
                .collect::<Result<_, String>>()?;
            Ok(Datum::map(pairs))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use periscope_codec::ovsdb::JsonStream;
    use periscope_topology::{Change, HypervisorId};

    use super::*;
    use crate::northbound::model::TunnelKind;
    use crate::ovsdb::session::{Session, SessionConfig, SessionEvent};
    use crate::policy::tunnels::create_ops;

    /// periscope's own OVSDB session against the emulated server, through the wire format.
    struct Pair {
        session: Session,
        server: EmulatedOvsdb,
        to_server: JsonStream,
        ports: Vec<PortChange>,
    }

    impl Pair {
        fn new() -> Pair {
            let cfg = SessionConfig { name_by_system_id: true, ..SessionConfig::default() };
            let mut session = Session::new(Instant::now(), HypervisorId::from("peer"), cfg);
            session.handle_connect(Instant::now());
            let server = EmulatedOvsdb::new(7, "hv-7", 0x5007, "192.0.2.7");
            let mut p = Pair { session, server, to_server: JsonStream::default(), ports: vec![] };
            p.run();
            p
        }

        /// Carries messages both ways until both sides are quiet.
        fn run(&mut self) {
            loop {
                let mut bytes = Vec::new();
                while let Some(m) = self.session.poll_transmit() {
                    m.emit(&mut bytes);
                }
                if bytes.is_empty() {
                    return;
                }
                self.to_server.push(&bytes).expect("client bytes");
                let mut back = Vec::new();
                while let Ok(Some(m)) = self.to_server.next_message() {
                    let Message::Request(r) = m else { panic!("client sent {m:?}") };
                    let mut out = Vec::new();
                    self.server.handle(r, &mut out, &mut self.ports);
                    for m in out {
                        m.emit(&mut back);
                    }
                }
                self.session.handle_input(Instant::now(), &back);
            }
        }

        fn deliver(&mut self, m: Option<Message>) {
            let mut bytes = Vec::new();
            m.expect("a monitor is up").emit(&mut bytes);
            self.session.handle_input(Instant::now(), &bytes);
            self.run();
        }

        fn events(&mut self) -> Vec<SessionEvent> {
            std::iter::from_fn(|| self.session.poll_event()).collect()
        }
    }

    fn vif(n: u8) -> Vif {
        Vif { iface_id: format!("port-{n}"), mac: [0xfa, 0x16, 0x3e, 0, 0, n], tenant: "t1".into() }
    }

    #[test]
    fn periscope_monitors_the_bridge_and_sees_interfaces_come_and_go() {
        let mut p = Pair::new();
        let ev = p.events();
        let connected = ev.iter().find_map(|e| match e {
            SessionEvent::Connected { system_id, monitor, .. } => {
                Some((system_id.clone(), *monitor))
            }
            _ => None,
        });
        let (system_id, monitor) = connected.expect("connected");
        assert_eq!(system_id.as_deref(), Some("hv-7"));
        assert_eq!(monitor.name(), "monitor_cond_since");
        let snapshot = ev.iter().find_map(|e| match e {
            SessionEvent::Snapshot(Change::HypervisorReplaced { snapshot, .. }) => Some(snapshot),
            _ => None,
        });
        let snap = snapshot.expect("a snapshot");
        assert_eq!(snap.bridges.len(), 1);
        assert_eq!(snap.bridges[0].datapath_id.map(|d| d.0), Some(0x5007));

        let (note, port) = p.server.plug(&vif(1)).expect("plugged");
        assert_eq!(port, PortChange::Added(1, "tapport-1".into()));
        assert!(p.server.plug(&vif(1)).is_none(), "plugged once");
        p.deliver(note);
        let changes: Vec<Change> = p
            .events()
            .into_iter()
            .flat_map(|e| match e {
                SessionEvent::Changes(c) => c,
                _ => vec![],
            })
            .collect();
        let iface = changes.iter().find_map(|c| match c {
            Change::InterfaceUpserted { row, .. } => Some(row),
            _ => None,
        });
        let iface = iface.expect("the interface");
        assert_eq!(iface.ofport.map(|p| p.0), Some(1));
        assert_eq!(iface.external_ids.get("iface-id").map(|v| &**v), Some("port-1"));
        assert_eq!(p.server.ofport("port-1"), Some(1));

        let (note, port) = p.server.unplug("port-1").expect("unplugged");
        assert_eq!(port, PortChange::Removed(1, "tapport-1".into()));
        p.deliver(note);
        let removed = p.events().into_iter().any(|e| match e {
            SessionEvent::Changes(c) => {
                c.iter().any(|c| matches!(c, Change::InterfaceRemoved { .. }))
            }
            _ => false,
        });
        assert!(removed);
        assert!(p.server.ports().is_empty());
    }

    #[test]
    fn periscope_creates_its_tunnel_port_and_removes_it_again() {
        let mut p = Pair::new();
        p.events();
        let bridge = p.server.bridge;
        p.session.transact(&create_ops(bridge, TunnelKind::Vxlan), 9).expect("sent");
        p.run();
        let ev = p.events();
        let ok = ev.iter().any(|e| {
            matches!(e, SessionEvent::TxnReply { tag: 9, result: Ok(r), .. } if r.error().is_none())
        });
        assert!(ok, "{ev:?}");
        let tunnel = ev.iter().find_map(|e| match e {
            SessionEvent::Changes(c) => c.iter().find_map(|c| match c {
                Change::InterfaceUpserted { row, .. } if row.kind == "vxlan" => Some(row.clone()),
                _ => None,
            }),
            _ => None,
        });
        let tunnel = tunnel.expect("the tunnel interface in the monitor");
        assert!(tunnel.ofport.is_some());
        assert!(matches!(&p.ports[..], [PortChange::Added(1, n)] if n.starts_with("psc-vx")));
        let port = p.server.tables[PORT].keys().next().copied().expect("the port row");
        let ops = crate::policy::tunnels::delete_ops(bridge, port);
        p.session.transact(&ops, 10).expect("sent");
        p.run();
        assert!(p.server.ports().is_empty(), "the port and its interface are collected");
        assert!(matches!(&p.ports[..], [_, PortChange::Removed(1, _)]));
    }
}
