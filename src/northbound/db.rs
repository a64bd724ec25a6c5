//! The northbound database, `Periscope_Northbound` (schema: `periscope-nb.ovsschema`): where
//! the desired state lives, shared by every controller instance and by anything else that
//! writes it (`ovsdb-client transact` included).
//!
//! [`Northbound::from_replica`] reads the monitored rows into the typed state the controller
//! acts on; the `*_ops` functions write it. Rows that do not make sense (written by hand, or by
//! a newer version) are skipped with a line in [`Northbound::problems`] naming the row and the
//! field, never half-read.
//!
//! The database keeps the rules that two writers could break at once: the indexes make ids,
//! keys and names unique, a tap flow's strong reference keeps its tap service alive, and the
//! writers add `wait` operations for what their checks read (a tenant's allow-list and quota,
//! its current rows), so a transaction built on a stale view fails instead of committing.

use std::collections::BTreeMap;
use std::sync::Arc;

use periscope_codec::ovsdb::{
    Atom, Condition, Datum, Function, Mutation, Mutator, Operation, Replica, ReplicaRow, Row, Uuid,
    WaitUntil,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::auth::{KnownToken, Role, TokenHash, Tokens};
use super::model::{
    Collector, Ipv4Cidr, Source, TapFlow, TapFlowId, TapFlowSpec, TapService, TapServiceId,
    TapServiceSpec,
};
use super::store::{StoreError, Taps};
use crate::ovsdb::session::{ChangedRows, Database, RowsAs};

/// The schema, as shipped.
pub const SCHEMA: &str = include_str!("periscope-nb.ovsschema");
/// The database's name.
pub const NAME: &str = "Periscope_Northbound";

/// Table names.
pub const TENANT: &str = "Tenant";
/// Table of API tokens.
pub const TOKEN: &str = "Token";
/// Table of interfaces registered to a tenant by the operator.
pub const INTERFACE_OWNER: &str = "Interface_Owner";
/// Table of tap services.
pub const TAP_SERVICE: &str = "Tap_Service";
/// Table of tap flows.
pub const TAP_FLOW: &str = "Tap_Flow";
/// Table of the audit trail.
pub const AUDIT: &str = "Audit";
/// `Tap_Service` column of a VM collector's iface-id (schema 1.1.0; empty for an address).
pub const COLLECTOR_IFACE: &str = "collector_iface";
/// `Tenant` column counting the tap services and tap flows created for it (schema 1.2.0). A
/// creation waits for it unchanged and adds one: two writers that decided on the same count
/// cannot both commit, and the wait reads one row, not every row of the tenant's (which made
/// each write cost as much as the table it added to).
pub const CREATIONS: &str = "creations";

/// Everything is monitored, every column.
const TABLES: &[(&str, bool, &[&str])] = &[
    (TENANT, true, &["name", "allowed_collectors", "max_tap_services", "max_tap_flows", CREATIONS]),
    (TOKEN, true, &["name", "sha256", "role", "tenant", "created_ms"]),
    (INTERFACE_OWNER, true, &["iface_id", "tenant"]),
    (
        TAP_SERVICE,
        true,
        &["id", "name", "tenant", "encap", "remote_ip", COLLECTOR_IFACE, "key", "snaplen"],
    ),
    (
        TAP_FLOW,
        true,
        &["id", "name", "tenant", "tap_service", "source_kind", "source", "direction", "filter"],
    ),
    (AUDIT, true, &["time_ms", "actor", "tenant", "action", "object", "before", "after"]),
];

/// The session profile of the northbound database.
pub static DATABASE: Database = Database { name: NAME, tables: TABLES, rows: RowsAs::Replica };

/// A tenant as the operator configured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    /// Its name (the `tenant` of its objects and the value of the interfaces' tenant key).
    pub name: String,
    /// Where its tap services may send copies.
    pub allowed_collectors: Vec<Ipv4Cidr>,
    /// Its own limit on tap services, over the configured default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tap_services: Option<u32>,
    /// Its own limit on tap flows, over the configured default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tap_flows: Option<u32>,
}

impl Tenant {
    /// Whether a collector at `ip` is allowed.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let std::net::IpAddr::V4(v4) = ip else { return false };
        self.allowed_collectors
            .iter()
            .any(|c| u32::from(v4) & u32::from(c.mask()) == u32::from(c.addr))
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The token's name.
    pub actor: String,
    /// The tenant the change was for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// What was done, e.g. `create tap_service`.
    pub action: String,
    /// What it was done to, e.g. `tap_service/7`.
    pub object: String,
    /// The object before (`null` when created).
    pub before: Value,
    /// The object after (`null` when deleted).
    pub after: Value,
}

/// The desired state, as read from the northbound database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Northbound {
    /// Tap services, tap flows and interface registrations.
    pub taps: Taps,
    /// Tenants by name.
    pub tenants: BTreeMap<String, Tenant>,
    /// Tokens made through the API.
    pub tokens: Tokens,
    /// The audit trail, oldest first (shared by the copies the API's rules make for each
    /// write, as are the rows below: a write does not copy them).
    pub audit: Arc<Vec<AuditEntry>>,
    /// Row UUIDs of the tap services (tap flows refer to them).
    pub service_rows: BTreeMap<TapServiceId, Uuid>,
    /// Rows that could not be read, and why.
    pub problems: Vec<String>,
    /// The monitored rows by table, as last read: what [`Northbound::apply`] changes and, when
    /// a change is not a plain addition or removal of taps, reads again from scratch.
    rows: Arc<Rows>,
    /// The row of each [`Northbound::audit`] entry, at the same position.
    audit_rows: Arc<Vec<Uuid>>,
    /// Whether two rows register one interface (written around the API): the order of the
    /// rows decides, so changes are read from scratch.
    registered_twice: bool,
    /// Each tenant's [`CREATIONS`] count.
    creations: BTreeMap<String, i64>,
    /// The row of each interface registration (the last, for one registered twice).
    owner_rows: BTreeMap<String, Uuid>,
}

/// One change to the desired state, as a write of the API's rules makes it (see
/// [`Northbound::edit`]): the rules describe it rather than make it on a copy of the state,
/// which at 10,000 tap flows cost more than everything else a write does.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// A new tap service, id and key given.
    AddService(TapService),
    /// A tap service no tap flow uses goes.
    RemoveService(TapServiceId),
    /// A new tap flow, id given.
    AddFlow(TapFlow),
    /// A tap flow goes.
    RemoveFlow(TapFlowId),
    /// A tenant is configured, or configured again.
    PutTenant(Tenant),
    /// A tenant goes.
    RemoveTenant(String),
    /// An interface is registered to a tenant (or no longer, with `None`).
    SetOwner {
        /// The interface's iface-id.
        iface_id: String,
        /// Its tenant.
        tenant: Option<String>,
    },
    /// A token made through the API.
    AddToken {
        /// What the caller presents, hashed.
        hash: TokenHash,
        /// Whose it is.
        token: KnownToken,
    },
    /// The token of that name goes.
    RemoveToken(String),
}

/// The monitored rows by table.
type Rows = BTreeMap<String, BTreeMap<Uuid, ReplicaRow>>;

/// What [`Northbound::apply`] changed, for the controller to recompute only that.
#[derive(Debug, Default)]
pub struct Touched {
    /// Whether the state was read again from scratch (a tenant, token, registration or tap
    /// service was changed in place, or a row that could not be read is involved) and its taps
    /// differ: anything may have changed.
    pub everything: bool,
    /// The tap services added or removed.
    pub services: Vec<TapService>,
    /// The tap flows added or removed (a changed one: as it was and as it is).
    pub flows: Vec<TapFlow>,
    /// The iface-ids whose registration to a tenant was added, removed or changed.
    pub interfaces: Vec<String>,
}

impl Touched {
    /// Whether nothing the policy reads changed.
    pub fn is_empty(&self) -> bool {
        !self.everything
            && self.services.is_empty()
            && self.flows.is_empty()
            && self.interfaces.is_empty()
    }
}

fn column<'a>(row: &'a ReplicaRow, name: &str) -> Option<&'a Atom> {
    row.get(name).and_then(Datum::as_atom)
}

fn string(row: &ReplicaRow, name: &str) -> Option<String> {
    column(row, name).and_then(Atom::as_str).map(str::to_string)
}

fn integer(row: &ReplicaRow, name: &str) -> Option<i64> {
    column(row, name).and_then(Atom::as_integer)
}

fn strings(row: &ReplicaRow, name: &str) -> Vec<String> {
    row.get(name)
        .and_then(Datum::as_set)
        .map(|s| s.iter().filter_map(Atom::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn string_map(row: &ReplicaRow, name: &str) -> BTreeMap<String, String> {
    row.get(name)
        .and_then(Datum::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn opt_u32(row: &ReplicaRow, name: &str) -> Option<u32> {
    integer(row, name).and_then(|n| u32::try_from(n).ok())
}

/// Numeric filter fields; the others are text.
const NUMERIC_FILTER: &[&str] = &["vlan", "ethertype", "ip_proto", "src_port", "dst_port"];

impl Northbound {
    /// Reads the replica of the northbound database.
    pub fn from_replica(r: &Replica) -> Northbound {
        let rows = TABLES
            .iter()
            .map(|(t, _, _)| (t.to_string(), r.table(t).cloned().unwrap_or_default()))
            .collect();
        Northbound::from_rows(Arc::new(rows))
    }

    /// A tenant's [`CREATIONS`] count as last read (0 for a tenant not read, or from an older
    /// schema).
    pub fn creations(&self, tenant: &str) -> i64 {
        self.creations.get(tenant).copied().unwrap_or(0)
    }

    /// The row registering an interface, if the database holds one.
    pub fn owner_row(&self, iface_id: &str) -> Option<Uuid> {
        self.owner_rows.get(iface_id).copied()
    }

    /// Applies the rows a session reported: every row (read from scratch) or those an update
    /// changed. Adding and removing tap flows, tap services and interface registrations
    /// changes only them; anything else, or a step the rules refuse, reads every row again, so that the result is always
    /// what [`Northbound::from_replica`] reads from the same rows (ids are never given back:
    /// [`Taps::last_id`] does not go down).
    pub fn apply(&mut self, changed: &ChangedRows) -> Touched {
        let all = Arc::make_mut(&mut self.rows);
        if changed.full {
            all.clear();
        }
        let mut old = Vec::with_capacity(changed.rows.len());
        for (table, uuid, row) in &changed.rows {
            let rows = all.entry(table.clone()).or_default();
            let was = match row {
                Some(r) => rows.insert(*uuid, r.clone()),
                None => rows.remove(uuid),
            };
            old.push(was);
        }
        // A failed step leaves the taps half changed: they are read again and all count as
        // changed.
        let incremental = !changed.full && self.problems.is_empty() && !self.registered_twice;
        if incremental {
            if let Some(touched) = self.apply_changes(changed, &old) {
                return touched;
            }
        }
        let before = std::mem::take(self);
        *self = Northbound::from_rows(before.rows);
        self.taps.reserve_ids(before.taps.last_id());
        Touched {
            everything: changed.full || incremental || self.taps != before.taps,
            ..Touched::default()
        }
    }

    /// Applies additions and removals of tap flows, tap services, interface registrations
    /// and audit entries; `None`
    /// when something else changed or a step failed (the caller then reads every row again).
    fn apply_changes(
        &mut self,
        changed: &ChangedRows,
        old: &[Option<ReplicaRow>],
    ) -> Option<Touched> {
        let mut touched = Touched::default();
        let changes = || {
            changed
                .rows
                .iter()
                .zip(old)
                .map(|((t, u, new), old)| (t.as_str(), *u, old.as_ref(), new.as_ref()))
        };
        // Flows go first, then services (a flow holds its service), then the new services,
        // then the new flows that may refer to them.
        for (table, uuid, old, new) in changes() {
            match (table, old, new) {
                (TAP_FLOW | AUDIT | INTERFACE_OWNER, _, _) | (TAP_SERVICE, None, Some(_)) => {}
                (TAP_SERVICE, Some(_), None) => {}
                // What every creation does to its tenant's row.
                (TENANT, Some(o), Some(n)) if only_creations_differ(o, n) => {}
                _ => return None,
            }
            if let (TAP_FLOW, Some(o)) = (table, old) {
                let id = TapFlowId(integer(o, "id").and_then(|i| u64::try_from(i).ok())?);
                touched.flows.push(self.taps.delete_flow(id).ok()?);
            }
            if let (INTERFACE_OWNER, Some(o)) = (table, old) {
                let iface = string(o, "iface_id")?;
                self.owner_rows.remove(&iface);
                self.taps.set_owner(&iface, None);
                touched.interfaces.push(iface);
            }
            if let (AUDIT, Some(_)) = (table, old) {
                let at = self.audit_rows.iter().position(|r| *r == uuid)?;
                Arc::make_mut(&mut self.audit_rows).remove(at);
                Arc::make_mut(&mut self.audit).remove(at);
            }
        }
        for (table, _, old, _) in changes() {
            if let (TAP_SERVICE, Some(o)) = (table, old) {
                let id = TapServiceId(integer(o, "id").and_then(|i| u64::try_from(i).ok())?);
                touched.services.push(self.taps.delete_service(id).ok()?);
                self.service_rows.remove(&id);
            }
        }
        for (table, uuid, _, new) in changes() {
            match (table, new) {
                (TENANT, Some(n)) => {
                    self.creations.insert(string(n, "name")?, integer(n, CREATIONS).unwrap_or(0));
                }
                (TAP_SERVICE, Some(n)) => {
                    let s = service_from_row(n).ok()?;
                    self.service_rows.insert(s.id, uuid);
                    self.taps.restore_service(s.clone()).ok()?;
                    touched.services.push(s);
                }
                (INTERFACE_OWNER, Some(n)) => {
                    let (iface, tenant) = (string(n, "iface_id")?, string(n, "tenant")?);
                    // Two rows for one interface: read from scratch, as the order of rows says.
                    if self.taps.registered_owner(&iface).is_some() {
                        return None;
                    }
                    self.taps.set_owner(&iface, Some(&tenant));
                    self.owner_rows.insert(iface.clone(), uuid);
                    touched.interfaces.push(iface);
                }
                (AUDIT, Some(n)) => {
                    let entry = audit_from_row(n);
                    let at = self.audit.partition_point(|a| a.time_ms <= entry.time_ms);
                    // Entries of the same millisecond are in row order, as when read from scratch.
                    let at = (0..at)
                        .rev()
                        .take_while(|i| {
                            self.audit[*i].time_ms == entry.time_ms && self.audit_rows[*i] > uuid
                        })
                        .last()
                        .unwrap_or(at);
                    Arc::make_mut(&mut self.audit).insert(at, entry);
                    Arc::make_mut(&mut self.audit_rows).insert(at, uuid);
                }
                _ => {}
            }
        }
        let flows_new = changes().any(|(t, _, _, n)| t == TAP_FLOW && n.is_some());
        if flows_new {
            let by_uuid: BTreeMap<Uuid, TapServiceId> =
                self.service_rows.iter().map(|(id, u)| (*u, *id)).collect();
            for (table, _, _, new) in changes() {
                if let (TAP_FLOW, Some(n)) = (table, new) {
                    let f = flow_from_row(n, &by_uuid).ok()?;
                    self.taps.restore_flow(f.clone()).ok()?;
                    touched.flows.push(f);
                }
            }
        }
        if !touched.services.is_empty() || !touched.interfaces.is_empty() {
            self.refresh_blocked();
        }
        Some(touched)
    }

    /// Reads every row from scratch.
    fn from_rows(r: Arc<Rows>) -> Northbound {
        let mut nb = Northbound::default();
        let rows = |t: &str| r.get(t).into_iter().flat_map(|m| m.iter());
        for (uuid, row) in rows(TENANT) {
            match tenant_from_row(row) {
                Ok(t) => {
                    nb.creations.insert(t.name.clone(), integer(row, CREATIONS).unwrap_or(0));
                    nb.tenants.insert(t.name.clone(), t);
                }
                Err(e) => nb.problems.push(format!("{TENANT} row {uuid}: {e}")),
            }
        }
        for (uuid, row) in rows(TOKEN) {
            match token_from_row(row) {
                Ok((h, t)) => nb.tokens.insert(h, t),
                Err(e) => nb.problems.push(format!("{TOKEN} row {uuid}: {e}")),
            }
        }
        for (uuid, row) in rows(INTERFACE_OWNER) {
            if let (Some(i), Some(t)) = (string(row, "iface_id"), string(row, "tenant")) {
                nb.registered_twice |= nb.taps.registered_owner(&i).is_some();
                nb.taps.set_owner(&i, Some(&t));
                nb.owner_rows.insert(i, *uuid);
            }
        }
        // Services first (sorted by id, so that a key two rows claim goes to the older one),
        // then the flows that refer to them.
        let mut services: Vec<(Uuid, Result<TapService, String>)> =
            rows(TAP_SERVICE).map(|(u, row)| (*u, service_from_row(row))).collect();
        services.sort_by_key(|(_, s)| s.as_ref().map(|s| s.id).ok());
        let mut by_uuid = BTreeMap::new();
        for (uuid, s) in services {
            match s.and_then(|s| {
                let id = s.id;
                nb.taps.restore_service(s).map(|()| id).map_err(|e| e.to_string())
            }) {
                Ok(id) => {
                    by_uuid.insert(uuid, id);
                    nb.service_rows.insert(id, uuid);
                }
                Err(e) => nb.problems.push(format!("{TAP_SERVICE} row {uuid}: {e}")),
            }
        }
        for (uuid, row) in rows(TAP_FLOW) {
            match flow_from_row(row, &by_uuid)
                .and_then(|f| nb.taps.restore_flow(f).map_err(|e| e.to_string()))
            {
                Ok(()) => {}
                Err(e) => nb.problems.push(format!("{TAP_FLOW} row {uuid}: {e}")),
            }
        }
        let mut audit: Vec<(AuditEntry, Uuid)> =
            rows(AUDIT).map(|(uuid, row)| (audit_from_row(row), *uuid)).collect();
        audit.sort_by_key(|(a, _)| a.time_ms);
        let (entries, rows): (Vec<AuditEntry>, Vec<Uuid>) = audit.into_iter().unzip();
        (nb.audit, nb.audit_rows) = (Arc::new(entries), Arc::new(rows));
        nb.refresh_blocked();
        nb.rows = r;
        nb
    }

    /// Makes a change the API's rules decided (in memory, at once; with a database the monitor
    /// brings it back once it committed). The rules checked it against this state: it applies
    /// whole, or, on a state that moved meanwhile, not at all.
    pub fn edit(&mut self, e: Edit) -> Result<(), StoreError> {
        match e {
            Edit::AddService(s) => self.taps.restore_service(s)?,
            Edit::RemoveService(id) => {
                self.taps.delete_service(id)?;
                self.service_rows.remove(&id);
            }
            Edit::AddFlow(f) => self.taps.restore_flow(f)?,
            Edit::RemoveFlow(id) => {
                self.taps.delete_flow(id)?;
            }
            Edit::PutTenant(t) => {
                self.tenants.insert(t.name.clone(), t);
                self.refresh_blocked();
            }
            Edit::RemoveTenant(name) => {
                self.tenants.remove(&name);
                self.refresh_blocked();
            }
            Edit::SetOwner { iface_id, tenant } => {
                self.taps.set_owner(&iface_id, tenant.as_deref());
                self.refresh_blocked();
            }
            Edit::AddToken { hash, token } => self.tokens.insert(hash, token),
            Edit::RemoveToken(name) => self.tokens = self.tokens.without(&name),
        }
        Ok(())
    }

    /// Blocks the tap services whose collector their tenant's allowed collectors do not
    /// cover (any more, or ever: rows written around the API), so that no copy goes there.
    pub fn refresh_blocked(&mut self) {
        let blocked = self
            .taps
            .services()
            .filter(|s| match &s.collector {
                Collector::Remote(ip) => {
                    !self.tenants.get(&s.tenant).is_some_and(|t| t.allows(*ip))
                }
                // A VM collector is the tenant's own interface, not an address copies leave to;
                // the policy checks its live owner too.
                Collector::Iface(id) => {
                    self.taps.registered_owner(id).is_some_and(|t| *t != s.tenant)
                }
            })
            .map(|s| s.id)
            .collect();
        self.taps.set_blocked(blocked);
    }
}

fn audit_from_row(row: &ReplicaRow) -> AuditEntry {
    let json_of =
        |c: &str| string(row, c).and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null);
    AuditEntry {
        time_ms: integer(row, "time_ms").unwrap_or_default(),
        actor: string(row, "actor").unwrap_or_default(),
        tenant: strings(row, "tenant").into_iter().next(),
        action: string(row, "action").unwrap_or_default(),
        object: string(row, "object").unwrap_or_default(),
        before: json_of("before"),
        after: json_of("after"),
    }
}

fn tenant_from_row(row: &ReplicaRow) -> Result<Tenant, String> {
    let name = string(row, "name").ok_or("no name")?;
    let mut allowed = Vec::new();
    for c in strings(row, "allowed_collectors") {
        allowed.push(c.parse::<Ipv4Cidr>().map_err(|e| format!("allowed_collectors: {e}"))?);
    }
    Ok(Tenant {
        name,
        allowed_collectors: allowed,
        max_tap_services: opt_u32(row, "max_tap_services"),
        max_tap_flows: opt_u32(row, "max_tap_flows"),
    })
}

/// Whether two versions of a tenant's row differ in [`CREATIONS`] alone (every other monitored
/// column is what [`tenant_from_row`] reads).
fn only_creations_differ(old: &ReplicaRow, new: &ReplicaRow) -> bool {
    let (o, n) = (tenant_from_row(old), tenant_from_row(new));
    o.is_ok() && o == n
}

fn token_from_row(row: &ReplicaRow) -> Result<(TokenHash, KnownToken), String> {
    let name = string(row, "name").ok_or("no name")?;
    let hash = TokenHash::parse(&string(row, "sha256").unwrap_or_default())
        .map_err(|e| format!("sha256: {e}"))?;
    let role = match (string(row, "role").as_deref(), strings(row, "tenant").pop()) {
        (Some("operator"), _) => Role::Operator,
        (Some("tenant"), Some(t)) => Role::Tenant(t),
        _ => return Err("role: expected \"operator\", or \"tenant\" with a tenant".into()),
    };
    Ok((hash, KnownToken { name, role, origin: "api" }))
}

fn service_from_row(row: &ReplicaRow) -> Result<TapService, String> {
    let id = integer(row, "id").filter(|i| *i > 0).ok_or("no id")? as u64;
    let mut body = json!({
        "name": string(row, "name"),
        "tenant": string(row, "tenant"),
        "encap": string(row, "encap"),
        "key": integer(row, "key"),
    });
    // A VM collector's row has its iface-id and an empty remote_ip (the column predates it).
    match strings(row, COLLECTOR_IFACE).pop() {
        Some(id) => body["collector"] = json!({ "iface_id": id }),
        None => body["remote_ip"] = json!(string(row, "remote_ip")),
    }
    if let Some(s) = integer(row, "snaplen") {
        body["snaplen"] = json!(s);
    }
    let spec = TapServiceSpec::from_json(&body).map_err(|e| e.to_string())?;
    Ok(TapService {
        id: TapServiceId(id),
        name: spec.name,
        tenant: spec.tenant,
        encap: spec.encap,
        collector: spec.collector,
        key: spec.key.ok_or("no key")?,
        snaplen: spec.snaplen,
    })
}

fn flow_from_row(
    row: &ReplicaRow,
    services: &BTreeMap<Uuid, TapServiceId>,
) -> Result<TapFlow, String> {
    let id = integer(row, "id").filter(|i| *i > 0).ok_or("no id")? as u64;
    let svc = column(row, "tap_service")
        .and_then(Atom::as_uuid)
        .and_then(|u| services.get(&u))
        .ok_or("tap_service: no such tap service")?;
    let source = string_map(row, "source");
    let source = match string(row, "source_kind").as_deref() {
        Some("selector") => json!({ "selector": source }),
        Some(k @ ("iface_id" | "vm")) => json!({ k: source.get(k) }),
        other => return Err(format!("source_kind: {other:?} is not iface_id, vm or selector")),
    };
    let mut filter = Map::new();
    for (k, v) in string_map(row, "filter") {
        let value = if NUMERIC_FILTER.contains(&k.as_str()) {
            v.parse::<u64>().map(Value::from).unwrap_or(Value::String(v))
        } else {
            Value::String(v)
        };
        filter.insert(k, value);
    }
    let body = json!({
        "name": string(row, "name"),
        "tenant": string(row, "tenant"),
        "tap_service": svc.0,
        "source": source,
        "direction": string(row, "direction"),
        "filter": filter,
    });
    let spec = TapFlowSpec::from_json(&body).map_err(|e| e.to_string())?;
    Ok(TapFlow {
        id: TapFlowId(id),
        name: spec.name,
        tenant: spec.tenant,
        tap_service: spec.tap_service,
        source: spec.source,
        direction: spec.direction,
        filter: spec.filter,
    })
}

fn eq(column: &str, value: impl Into<Atom>) -> Vec<Condition> {
    vec![Condition::new(column, Function::Eq, Datum::atom(value))]
}

fn opt(v: Option<impl Into<Atom>>) -> Datum {
    match v {
        Some(a) => Datum::atom(a),
        None => Datum::empty_set(),
    }
}

fn i64_of(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The row of a tap service.
pub fn service_row(s: &TapService) -> Row {
    Row::from([
        ("id".into(), Datum::atom(i64_of(s.id.0))),
        ("name".into(), Datum::atom(s.name.as_str())),
        ("tenant".into(), Datum::atom(s.tenant.as_str())),
        ("encap".into(), Datum::atom(s.encap.name())),
        (
            "remote_ip".into(),
            Datum::atom(s.collector.remote_ip().map(|ip| ip.to_string()).unwrap_or_default()),
        ),
        (COLLECTOR_IFACE.into(), opt(s.collector.iface_id())),
        ("key".into(), Datum::atom(i64::from(s.key))),
        ("snaplen".into(), opt(s.snaplen.map(i64::from))),
    ])
}

/// The row of a tap flow whose tap service is the row `service`.
pub fn flow_row(f: &TapFlow, service: Uuid) -> Row {
    let (kind, source): (&str, BTreeMap<String, String>) = match &f.source {
        Source::IfaceId(i) => ("iface_id", BTreeMap::from([("iface_id".into(), i.clone())])),
        Source::Vm(v) => ("vm", BTreeMap::from([("vm".into(), v.clone())])),
        Source::Selector(s) => ("selector", s.clone()),
    };
    let filter: Vec<(String, String)> = match serde_json::to_value(&f.filter) {
        Ok(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect(),
        _ => Vec::new(),
    };
    let direction = match f.direction {
        super::model::Direction::In => "IN",
        super::model::Direction::Out => "OUT",
        super::model::Direction::Both => "BOTH",
    };
    Row::from([
        ("id".into(), Datum::atom(i64_of(f.id.0))),
        ("name".into(), Datum::atom(f.name.as_str())),
        ("tenant".into(), Datum::atom(f.tenant.as_str())),
        ("tap_service".into(), Datum::atom(service)),
        ("source_kind".into(), Datum::atom(kind)),
        ("source".into(), Datum::map(source)),
        ("direction".into(), Datum::atom(direction)),
        ("filter".into(), Datum::map(filter)),
    ])
}

/// The row of a tenant.
pub fn tenant_row(t: &Tenant) -> Row {
    Row::from([
        ("name".into(), Datum::atom(t.name.as_str())),
        (
            "allowed_collectors".into(),
            Datum::set(t.allowed_collectors.iter().map(|c| Atom::string(c.to_string()))),
        ),
        ("max_tap_services".into(), opt(t.max_tap_services.map(i64::from))),
        ("max_tap_flows".into(), opt(t.max_tap_flows.map(i64::from))),
    ])
}

/// Inserts a row.
pub fn insert(table: &str, row: Row) -> Operation {
    Operation::Insert { table: table.into(), row, uuid_name: None }
}

/// Deletes the rows whose `column` is `value`.
pub fn delete(table: &str, column: &str, value: impl Into<Atom>) -> Operation {
    Operation::Delete { table: table.into(), conditions: eq(column, value) }
}

/// Sets `row`'s columns in the rows whose `column` is `value`.
pub fn update(table: &str, column: &str, value: impl Into<Atom>, row: Row) -> Operation {
    Operation::Update { table: table.into(), conditions: eq(column, value), row }
}

/// Fails the transaction unless the rows whose `column` is `value` show exactly `rows` in
/// `columns` (none: no such row).
pub fn wait_for(
    table: &str,
    column: &str,
    value: impl Into<Atom>,
    columns: &[&str],
    rows: Vec<Row>,
) -> Operation {
    wait_where(table, eq(column, value), columns, rows)
}

/// Adds one to the [`CREATIONS`] count of tenant `name` (see [`CREATIONS`]).
pub fn count_creation(name: &str) -> Operation {
    Operation::Mutate {
        table: TENANT.into(),
        conditions: eq("name", name),
        mutations: vec![Mutation::new(CREATIONS, Mutator::Add, Datum::atom(1i64))],
    }
}

/// [`wait_for`] one row, named by its UUID: ovsdb-server finds it at once, where a condition on
/// another column reads every row of the table.
pub fn wait_for_row(table: &str, row: Uuid, columns: &[&str], expect: Row) -> Operation {
    wait_where(table, eq("_uuid", Atom::Uuid(row)), columns, vec![expect])
}

/// Fails the transaction unless the rows meeting `conditions` show exactly `rows` in `columns`.
fn wait_where(
    table: &str,
    conditions: Vec<Condition>,
    columns: &[&str],
    rows: Vec<Row>,
) -> Operation {
    Operation::Wait {
        table: table.into(),
        conditions,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        until: WaitUntil::Eq,
        rows,
        timeout: Some(0),
    }
}

/// Only the given columns of a row.
pub fn project(row: &Row, columns: &[&str]) -> Row {
    columns.iter().filter_map(|c| Some((Arc::<str>::from(*c), row.get(c)?.clone()))).collect()
}

/// The row of a token (its hash, never the token).
pub fn token_row(name: &str, hash: &TokenHash, role: &Role, now_ms: i64) -> Row {
    let (role, tenant) = match role {
        Role::Operator => ("operator", None),
        Role::Tenant(t) => ("tenant", Some(t.as_str())),
    };
    Row::from([
        ("name".into(), Datum::atom(name)),
        ("sha256".into(), Datum::atom(hash.0.as_str())),
        ("role".into(), Datum::atom(role)),
        ("tenant".into(), opt(tenant)),
        ("created_ms".into(), Datum::atom(now_ms)),
    ])
}

/// The row of an audit entry.
pub fn audit_row(a: &AuditEntry) -> Row {
    Row::from([
        ("time_ms".into(), Datum::atom(a.time_ms)),
        ("actor".into(), Datum::atom(a.actor.as_str())),
        ("tenant".into(), opt(a.tenant.as_deref())),
        ("action".into(), Datum::atom(a.action.as_str())),
        ("object".into(), Datum::atom(a.object.as_str())),
        ("before".into(), Datum::atom(a.before.to_string())),
        ("after".into(), Datum::atom(a.after.to_string())),
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use periscope_codec::ovsdb::DatabaseSchema;

    use super::super::model::{Direction, Encap, Filter};
    use super::*;

    fn schema() -> DatabaseSchema {
        let v: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
        DatabaseSchema::from_json(&v).expect("schema parses")
    }

    #[test]
    fn the_monitored_columns_are_the_schemas() {
        let s = schema();
        assert_eq!(s.name, NAME);
        for (table, _, columns) in TABLES {
            let t = s.table(table).unwrap_or_else(|| panic!("table {table}"));
            for c in *columns {
                assert!(t.columns.contains_key(*c), "{table}.{c}");
            }
            assert_eq!(t.columns.len(), columns.len() + usize::from(*table == TENANT), "{table}");
        }
    }

    #[test]
    fn rows_written_are_valid_and_read_back_the_same() {
        let s = schema();
        let svc = TapService {
            id: TapServiceId(3),
            name: "perf".into(),
            tenant: "bank-a".into(),
            encap: Encap::Gre,
            collector: Collector::Remote("192.0.2.9".parse().expect("ip")),
            key: 1001,
            snaplen: Some(128),
        };
        let flow = TapFlow {
            id: TapFlowId(4),
            name: "web".into(),
            tenant: "bank-a".into(),
            tap_service: svc.id,
            source: Source::Selector(BTreeMap::from([("app".into(), "pay".into())])),
            direction: Direction::Out,
            filter: Filter {
                ip_proto: Some(6),
                dst_port: Some(443),
                dst_cidr: Some("10.0.0.0/24".parse().expect("cidr")),
                ..Filter::default()
            },
        };
        let ops = vec![
            insert(TAP_SERVICE, service_row(&svc)),
            insert(TAP_FLOW, flow_row(&flow, Uuid(7))),
        ];
        periscope_codec::ovsdb::validate(&s, &ops).expect("valid against the schema");
        assert_eq!(service_from_row(&ReplicaRow::from(service_row(&svc))), Ok(svc.clone()));
        let services = BTreeMap::from([(Uuid(7), svc.id)]);
        assert_eq!(flow_from_row(&ReplicaRow::from(flow_row(&flow, Uuid(7))), &services), Ok(flow));
    }

    #[test]
    fn a_bad_row_is_named_not_half_read() {
        let mut row = service_row(&TapService {
            id: TapServiceId(1),
            name: "x".into(),
            tenant: "t".into(),
            encap: Encap::Vxlan,
            collector: Collector::Remote("192.0.2.9".parse().expect("ip")),
            key: 5,
            snaplen: None,
        });
        row.insert("remote_ip".into(), Datum::atom("not-an-ip"));
        let e = service_from_row(&ReplicaRow::from(row)).expect_err("bad ip");
        assert!(e.contains("remote_ip"), "{e}");
    }

    /// A northbound database written at random, one transaction at a time: the rows, and
    /// what each transaction changed, as a session reports it.
    #[derive(Default)]
    struct World {
        rows: BTreeMap<(&'static str, Uuid), Row>,
        next: u64,
    }

    impl World {
        fn uuids(&self, table: &str) -> Vec<Uuid> {
            self.rows.keys().filter(|(t, _)| *t == table).map(|(_, u)| *u).collect()
        }

        fn fresh(&mut self) -> (Uuid, u64) {
            self.next += 1;
            (Uuid(u128::from(self.next)), self.next)
        }

        fn pick(&self, table: &str, n: u8) -> Option<Uuid> {
            let all = self.uuids(table);
            (!all.is_empty()).then(|| all[usize::from(n) % all.len()])
        }

        /// Applies one step; `touched` collects the rows it changed.
        fn step(
            &mut self,
            (kind, a, b, c): (u8, u8, u8, u8),
            touched: &mut Vec<(&'static str, Uuid)>,
        ) {
            let tenant = ["bank-a", "bank-b"][usize::from(a % 2)];
            let mut set = |w: &mut World, table: &'static str, uuid: Uuid, row: Option<Row>| {
                match row {
                    Some(r) => w.rows.insert((table, uuid), r),
                    None => w.rows.remove(&(table, uuid)),
                };
                touched.push((table, uuid));
            };
            match kind {
                0..=2 => {
                    let Some(svc) = self.pick(TAP_SERVICE, a) else { return };
                    let (uuid, id) = self.fresh();
                    let owner = self.rows[&(TAP_SERVICE, svc)].get("tenant").cloned();
                    let mut row = flow_row(
                        &TapFlow {
                            id: TapFlowId(id),
                            name: format!("f{id}"),
                            tenant: tenant.into(),
                            tap_service: TapServiceId(0),
                            source: Source::Selector(BTreeMap::from([(
                                "app".into(),
                                format!("{}", c % 3),
                            )])),
                            direction: Direction::Out,
                            filter: Filter::default(),
                        },
                        svc,
                    );
                    // Mostly the service's own tenant; sometimes another (a row the rules skip).
                    if let (Some(t), true) = (owner, b % 6 != 0) {
                        row.insert("tenant".into(), t);
                    }
                    set(self, TAP_FLOW, uuid, Some(row));
                }
                3 => {
                    if let Some(f) = self.pick(TAP_FLOW, a) {
                        set(self, TAP_FLOW, f, None);
                    }
                }
                4 => {
                    if let Some(f) = self.pick(TAP_FLOW, a) {
                        let mut row = self.rows[&(TAP_FLOW, f)].clone();
                        row.insert(
                            "direction".into(),
                            Datum::atom(["in", "out", "both"][usize::from(b % 3)]),
                        );
                        set(self, TAP_FLOW, f, Some(row));
                    }
                }
                5 => {
                    let (uuid, id) = self.fresh();
                    let (collector, encap) = match c % 3 {
                        0 => (Collector::Iface("vm-collector".into()), Encap::Gre),
                        // Every encapsulation a remote collector takes, ERSPAN's included.
                        _ => (
                            Collector::Remote(format!("192.0.2.{}", c % 20).parse().expect("ip")),
                            Encap::ALL[usize::from(c / 3) % Encap::ALL.len()],
                        ),
                    };
                    let svc = TapService {
                        id: TapServiceId(id),
                        name: format!("s{id}"),
                        tenant: tenant.into(),
                        encap,
                        collector,
                        // Few keys, so that two rows claim one.
                        key: 1000 + u32::from(b % 4),
                        snaplen: None,
                    };
                    set(self, TAP_SERVICE, uuid, Some(service_row(&svc)));
                }
                6 => {
                    // The database's strong reference: a service goes with its flows.
                    let Some(svc) = self.pick(TAP_SERVICE, a) else { return };
                    for f in self.uuids(TAP_FLOW) {
                        if self.rows[&(TAP_FLOW, f)].get("tap_service") == Some(&Datum::atom(svc)) {
                            set(self, TAP_FLOW, f, None);
                        }
                    }
                    set(self, TAP_SERVICE, svc, None);
                }
                7 => {
                    if let Some(svc) = self.pick(TAP_SERVICE, a) {
                        let mut row = self.rows[&(TAP_SERVICE, svc)].clone();
                        row.insert("name".into(), Datum::atom(format!("renamed{b}")));
                        set(self, TAP_SERVICE, svc, Some(row));
                    }
                }
                8 if c % 2 == 0
                    && self.rows.contains_key(&(TENANT, Uuid(1 << 100 | u128::from(a % 2)))) =>
                {
                    // What every creation does: one more in the tenant's count.
                    let uuid = Uuid(1 << 100 | u128::from(a % 2));
                    let mut row = self.rows[&(TENANT, uuid)].clone();
                    let n = row.get(CREATIONS).and_then(Datum::as_atom).and_then(Atom::as_integer);
                    row.insert(CREATIONS.into(), Datum::atom(n.unwrap_or(0) + 1));
                    set(self, TENANT, uuid, Some(row));
                }
                8 => {
                    let uuid = Uuid(1 << 100 | u128::from(a % 2));
                    let t = Tenant {
                        name: tenant.into(),
                        allowed_collectors: vec![format!("192.0.2.0/{}", 26 + b % 4)
                            .parse()
                            .expect("cidr")],
                        max_tap_services: None,
                        max_tap_flows: None,
                    };
                    set(self, TENANT, uuid, Some(tenant_row(&t)));
                }
                9 => {
                    let (uuid, _) = self.fresh();
                    let entry = AuditEntry {
                        // Few distinct times, so that entries share a millisecond.
                        time_ms: i64::from(b % 3),
                        actor: "op".into(),
                        tenant: None,
                        action: format!("a{c}"),
                        object: String::new(),
                        before: Value::Null,
                        after: Value::Null,
                    };
                    set(self, AUDIT, uuid, Some(audit_row(&entry)));
                }
                10 => {
                    if let Some(u) = self.pick(AUDIT, a) {
                        set(self, AUDIT, u, None);
                    }
                }
                11 => {
                    let iface = format!("vm-{}", c % 3).replace("vm-0", "vm-collector");
                    match b % 3 {
                        // Now and then a second row for the same interface.
                        0 | 1 => {
                            let (uuid, _) = self.fresh();
                            let row = Row::from([
                                ("iface_id".into(), Datum::atom(iface.as_str())),
                                ("tenant".into(), Datum::atom(tenant)),
                            ]);
                            let existing = self.uuids(INTERFACE_OWNER).into_iter().find(|u| {
                                self.rows[&(INTERFACE_OWNER, *u)].get("iface_id")
                                    == Some(&Datum::atom(iface.as_str()))
                            });
                            match existing {
                                Some(u) if b % 3 == 0 => set(self, INTERFACE_OWNER, u, Some(row)),
                                _ => set(self, INTERFACE_OWNER, uuid, Some(row)),
                            }
                        }
                        _ => {
                            if let Some(u) = self.pick(INTERFACE_OWNER, a) {
                                set(self, INTERFACE_OWNER, u, None);
                            }
                        }
                    }
                }
                _ if a % 4 != 0 => {
                    let bad = self
                        .uuids(TAP_SERVICE)
                        .into_iter()
                        .find(|u| self.rows[&(TAP_SERVICE, *u)].get("id") == Some(&Datum::atom(0)));
                    if let Some(u) = bad {
                        set(self, TAP_SERVICE, u, None);
                    }
                }
                _ => {
                    // A row written by hand that cannot be read (no id).
                    let (uuid, _) = self.fresh();
                    let mut row = self.rows.values().next().cloned().unwrap_or_default();
                    row.insert("id".into(), Datum::atom(0));
                    set(self, TAP_SERVICE, uuid, Some(row));
                }
            }
        }

        /// One transaction of `steps`, as the session reports it: each row it touched once,
        /// with its contents now.
        fn transact(&mut self, steps: &[(u8, u8, u8, u8)]) -> ChangedRows {
            let mut touched = Vec::new();
            for s in steps {
                self.step(*s, &mut touched);
            }
            let mut seen = BTreeSet::new();
            touched.retain(|t| seen.insert(*t));
            let rows = touched
                .into_iter()
                .map(|(t, u)| {
                    (t.to_string(), u, self.rows.get(&(t, u)).cloned().map(ReplicaRow::from))
                })
                .collect();
            ChangedRows { full: false, rows }
        }
    }

    proptest::proptest! {
        /// Applying each transaction's changes gives what reading every row from scratch gives,
        /// and names every tap flow and tap service whose presence changed.
        #[test]
        fn applying_changes_equals_reading_from_scratch(
            txns in proptest::collection::vec(
                proptest::collection::vec((0u8..13, 0u8..255, 0u8..255, 0u8..255), 1..4),
                1..40,
            )
        ) {
            let mut world = World::default();
            let mut nb = Northbound::default();
            for steps in &txns {
                let before = nb.taps.clone();
                let touched = nb.apply(&world.transact(steps));
                let mut fresh = Northbound::from_rows(nb.rows.clone());
                fresh.taps.reserve_ids(nb.taps.last_id());
                proptest::prop_assert_eq!(&nb, &fresh);
                if !touched.everything {
                    let flows: BTreeSet<TapFlowId> = touched.flows.iter().map(|f| f.id).collect();
                    let services: BTreeSet<TapServiceId> = touched.services.iter().map(|s| s.id).collect();
                    for f in before.flows().chain(nb.taps.flows()) {
                        if before.flow(f.id) != nb.taps.flow(f.id) {
                            proptest::prop_assert!(flows.contains(&f.id), "flow {} changed unnamed", f.id.0);
                        }
                    }
                    // A service blocked or let through by its VM collector's registration is
                    // named by that interface (the bridges feeding it are replanned).
                    let by_collector = |s: &TapService| {
                        s.collector.iface_id().is_some_and(|i| touched.interfaces.iter().any(|t| t == i))
                    };
                    for s in before.services().chain(nb.taps.services()) {
                        if before.service(s.id) != nb.taps.service(s.id) {
                            proptest::prop_assert!(services.contains(&s.id), "service {} changed unnamed", s.id.0);
                        }
                        if before.is_blocked(s.id) != nb.taps.is_blocked(s.id) {
                            proptest::prop_assert!(services.contains(&s.id) || by_collector(s), "service {} blocked unnamed", s.id.0);
                        }
                    }
                    for (iface, tenant) in before.owners().iter().chain(nb.taps.owners()) {
                        if before.registered_owner(iface) != nb.taps.registered_owner(iface) {
                            proptest::prop_assert!(touched.interfaces.contains(iface), "{} of {} unnamed", iface, tenant);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn adding_and_removing_tap_flows_is_applied_without_reading_everything_again() {
        let mut world = World::default();
        let mut nb = Northbound::default();
        nb.apply(&world.transact(&[(8, 0, 3, 0), (5, 0, 0, 1)]));
        for i in 0..50u8 {
            // As a creation through the API: the row, its audit entry, the tenant's count.
            let touched = nb.apply(&world.transact(&[(0, 0, 1, i), (9, 0, i, 0), (8, 0, 0, 0)]));
            assert!(!touched.everything && touched.flows.len() == 1, "{touched:?}");
        }
        assert_eq!(nb.creations("bank-a"), 50, "{:?}", nb.tenants);
        let touched = nb.apply(&world.transact(&[(3, 7, 0, 0)]));
        assert!(!touched.everything && touched.flows.len() == 1, "{touched:?}");
        assert_eq!(nb.taps.flows().count(), 49);
        assert_eq!(nb.audit.len(), 50);
    }

    #[test]
    fn allow_lists_match_prefixes() {
        let t = Tenant {
            name: "a".into(),
            allowed_collectors: vec!["192.0.2.0/28".parse().expect("cidr")],
            max_tap_services: None,
            max_tap_flows: None,
        };
        assert!(t.allows("192.0.2.15".parse().expect("ip")));
        assert!(!t.allows("192.0.2.16".parse().expect("ip")));
    }
}
