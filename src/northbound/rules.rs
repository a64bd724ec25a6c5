//! What a caller may change, and how: each write request becomes either a refusal or a
//! [`Write`], the transaction for the northbound database together with the state it leads to.
//! Pure: the same state and request always give the same answer.
//!
//! The rules, whoever calls:
//! - a tenant's token acts only for its own tenant; another tenant's object is "not found";
//! - a tap service's collector must be inside its tenant's allow-list (set by the operator);
//! - a tenant has at most its quota of tap services and tap flows;
//! - a tap flow on one interface needs the interface to be the tenant's: registered to it by
//!   the operator, or, unregistered, saying so in its `external_ids` (VM and selector sources
//!   select only the tenant's interfaces when the policy runs);
//! - keys are unique across tenants; names are unique per tenant, and creating an object again
//!   with the same name and the same content gives the existing one back.
//!
//! Each [`Write`] carries `wait` operations for what its checks read, so that a transaction
//! built on a view another writer has changed meanwhile fails and changes nothing.

use std::collections::BTreeSet;

use periscope_codec::ovsdb::{Datum, Operation, Row, Uuid};
use serde_json::{json, Value};

use super::api::{ApiCall, ApiReply};
use super::auth::{new_token, Caller, Role, TokenHash};
use super::config::Quota;
use super::db::{self, AuditEntry, Edit, Northbound, Tenant};
use super::model::{
    Collector, FieldError, Ipv4Cidr, Source, TapFlowId, TapFlowSpec, TapServiceId, TapServiceSpec,
};
use super::store::StoreError;

/// What the rules read besides the northbound state.
pub struct Context<'a> {
    /// The desired state now.
    pub nb: &'a Northbound,
    /// Default quotas.
    pub quota: Quota,
    /// Who asks.
    pub caller: &'a Caller,
    /// Now, in milliseconds since the Unix epoch (for the audit trail).
    pub now_ms: i64,
    /// The tenant the topology's interfaces with this iface-id say they belong to.
    pub iface_tenant: &'a dyn Fn(&str) -> Option<String>,
    /// Ids and keys that writes still in flight are taking.
    pub reserved: &'a Reserved,
}

/// Ids and keys taken by writes not yet seen in the state.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    /// Every id given out so far, at least.
    pub last_id: u64,
    /// Keys being taken.
    pub keys: BTreeSet<u32>,
}

/// What shows that a write has reached the monitored state.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expect {
    /// The tap service exists (or not).
    Service(TapServiceId, bool),
    /// The tap flow exists (or not).
    Flow(TapFlowId, bool),
    /// The tenant reads so (or is gone).
    Tenant(String, Option<Tenant>),
    /// The registration reads so (or is gone).
    Owner(String, Option<String>),
    /// The token exists (or not).
    Token(String, bool),
}

impl Expect {
    /// Whether `nb` shows the write.
    pub fn met(&self, nb: &Northbound) -> bool {
        match self {
            Expect::Service(id, there) => nb.taps.service(*id).is_some() == *there,
            Expect::Flow(id, there) => nb.taps.flow(*id).is_some() == *there,
            Expect::Tenant(name, t) => nb.tenants.get(name) == t.as_ref(),
            Expect::Owner(i, t) => nb.taps.registered_owner(i) == t.as_deref(),
            Expect::Token(name, there) => nb.tokens.has_name(name) == *there,
        }
    }
}

/// A change to make.
#[derive(Debug, Clone)]
pub struct Write {
    /// The transaction.
    pub ops: Vec<Operation>,
    /// What it changes in the state once it committed.
    pub edit: Edit,
    /// The answer once it committed.
    pub reply: ApiReply,
    /// What shows it committed.
    pub expect: Expect,
    /// The id it gives out, if any.
    pub id: Option<u64>,
    /// The key it takes, if any.
    pub key: Option<u32>,
}

/// The rules' answer.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Answer at once (a refusal, or an idempotent repeat).
    Reply(ApiReply),
    /// Commit this first.
    Write(Box<Write>),
}

fn to_write(w: Write) -> Outcome {
    Outcome::Write(Box::new(w))
}

fn refuse(status: u16, code: &str, message: impl std::fmt::Display) -> Outcome {
    Outcome::Reply(ApiReply::fail(status, code, message, None, Value::Null))
}

/// The refusal for a field.
pub fn bad_field(e: FieldError) -> ApiReply {
    let detail = json!({ "value": e.value, "expected": e.expected });
    ApiReply::fail(400, "bad_field", &e, Some(&e.field), detail)
}

/// The reply for a store error.
pub fn store_error(e: StoreError) -> ApiReply {
    let (status, code) = match &e {
        StoreError::NotFound { .. } | StoreError::ForeignService { .. } => (404, "not_found"),
        StoreError::KeyTaken { .. } => (409, "key_taken"),
        StoreError::KeysExhausted => (409, "keys_exhausted"),
        StoreError::InUse { .. } => (409, "in_use"),
    };
    // A service of another tenant is reported as missing: no existence leak.
    let message = match &e {
        StoreError::ForeignService { service, .. } => format!("tap service {service} not found"),
        _ => e.to_string(),
    };
    let field = match &e {
        StoreError::KeyTaken { .. } | StoreError::KeysExhausted => Some("key"),
        StoreError::ForeignService { .. } => Some("tap_service"),
        _ => None,
    };
    ApiReply::fail(status, code, message, field, Value::Null)
}

/// Fills in the caller's tenant where a tenant's token leaves it out, and refuses a tenant
/// other than the caller's.
fn own_tenant(caller: &Caller, body: &Value) -> Result<Value, ApiReply> {
    let mut body = body.clone();
    if let (Some(t), Some(o)) = (caller.tenant(), body.as_object_mut()) {
        match o.get("tenant").and_then(Value::as_str) {
            None => {
                o.insert("tenant".into(), json!(t));
            }
            Some(given) if given != t => {
                return Err(ApiReply::fail(
                    403,
                    "forbidden",
                    format!("a token of tenant {t} cannot act for tenant {given}"),
                    Some("tenant"),
                    Value::Null,
                ))
            }
            Some(_) => {}
        }
    }
    Ok(body)
}

impl Context<'_> {
    fn audit(
        &self,
        tenant: Option<&str>,
        action: &str,
        object: String,
        before: Value,
        after: Value,
    ) -> Operation {
        db::insert(
            db::AUDIT,
            db::audit_row(&AuditEntry {
                time_ms: self.now_ms,
                actor: self.caller.name.clone(),
                tenant: tenant.map(str::to_string),
                action: action.to_string(),
                object,
                before,
                after,
            }),
        )
    }

    fn tenant(&self, name: &str) -> Result<&Tenant, Outcome> {
        self.nb.tenants.get(name).ok_or_else(|| {
            refuse(
                403,
                "no_allow_list",
                format!(
                    "tenant {name} has no allowed collectors: the operator sets them with PUT /v1/tenants/{name}"
                ),
            )
        })
    }

    /// Guards what a creation for a tenant reads, and counts it: the tenant's row unchanged,
    /// [`db::CREATIONS`] included (so that its counts of tap services and tap flows, and the
    /// names taken, are as read), then one more creation.
    fn creation_guard(&self, t: &Tenant) -> [Operation; 2] {
        const COLS: &[&str] =
            &["allowed_collectors", "max_tap_services", "max_tap_flows", db::CREATIONS];
        let mut row = db::tenant_row(t);
        row.insert(db::CREATIONS.into(), Datum::atom(self.nb.creations(&t.name)));
        [
            db::wait_for(db::TENANT, "name", t.name.as_str(), COLS, vec![db::project(&row, COLS)]),
            db::count_creation(&t.name),
        ]
    }

    /// Guards a count: the tenant's rows of `table` are exactly `ids`.
    fn count_guard(&self, table: &str, tenant: &str, ids: impl Iterator<Item = u64>) -> Operation {
        let rows: Vec<Row> =
            ids.map(|i| Row::from([("id".into(), Datum::atom(i as i64))])).collect();
        db::wait_for(table, "tenant", tenant, &["id"], rows)
    }

    fn next_id(&self) -> u64 {
        self.nb.taps.last_id().max(self.reserved.last_id)
    }

    /// Parses a creation body for the caller: its own tenant filled in, another refused.
    fn spec_for_caller<T>(
        &self,
        body: &Value,
        parse: impl Fn(&Value) -> Result<T, FieldError>,
        tenant: impl Fn(&T) -> &str,
    ) -> Result<T, Outcome> {
        let body = own_tenant(self.caller, body).map_err(Outcome::Reply)?;
        let spec = parse(&body).map_err(|e| Outcome::Reply(bad_field(e)))?;
        if !self.caller.may_act_for(tenant(&spec)) {
            let why = format!("{} cannot act for tenant {}", self.caller.role, tenant(&spec));
            return Err(refuse(403, "forbidden", why));
        }
        Ok(spec)
    }

    /// Whether an interface is the tenant's: registered to it by the operator (then the
    /// write waits for the registration to be unchanged: the guard returned), or, unregistered,
    /// said so by its own `external_ids`. `field` names the request's field in a refusal.
    fn owned_interface(
        &self,
        tenant: &str,
        iface: &str,
        field: &str,
    ) -> Result<Option<Operation>, ApiReply> {
        match self.nb.taps.registered_owner(iface) {
            Some(t) if t == tenant => {
                let expect = Row::from([
                    ("iface_id".into(), Datum::atom(iface)),
                    ("tenant".into(), Datum::atom(t)),
                ]);
                let columns = &["iface_id", "tenant"];
                Ok(Some(match self.nb.owner_row(iface) {
                    Some(row) => db::wait_for_row(db::INTERFACE_OWNER, row, columns, expect),
                    // Not read from a database (in memory): the same, by the interface.
                    None => {
                        db::wait_for(db::INTERFACE_OWNER, "iface_id", iface, columns, vec![expect])
                    }
                }))
            }
            None if (self.iface_tenant)(iface).as_deref() == Some(tenant) => Ok(None),
            _ => Err(not_owned(tenant, iface, field)),
        }
    }

    /// The answer to a write call (`known` are the tokens made so far); `None` for a call
    /// that does not write.
    pub fn write(&self, call: ApiCall, known: &super::auth::Tokens) -> Option<Outcome> {
        Some(match call {
            ApiCall::CreateService(body) => self.create_service(&body),
            ApiCall::DeleteService(id) => self.delete_service(id),
            ApiCall::CreateFlow(body) => self.create_flow(&body),
            ApiCall::DeleteFlow(id) => self.delete_flow(id),
            ApiCall::PutTenant(name, body) => self.put_tenant(&name, &body),
            ApiCall::DeleteTenant(name) => self.delete_tenant(&name),
            ApiCall::PutInterface(iface, body) => self.put_owner(&iface, &body),
            ApiCall::CreateToken(body) => self.create_token(&body, known),
            ApiCall::DeleteToken(name) => self.delete_token(&name),
            _ => return None,
        })
    }

    /// `POST /v1/tap_services`.
    pub fn create_service(&self, body: &Value) -> Outcome {
        let spec = match self.spec_for_caller(body, TapServiceSpec::from_json, |s| &s.tenant) {
            Ok(s) => s,
            Err(o) => return o,
        };
        if let Some(s) = self.nb.taps.service_named(&spec.tenant, &spec.name) {
            let same = s.encap == spec.encap
                && s.collector == spec.collector
                && spec.key.is_none_or(|k| k == s.key)
                && s.snaplen == spec.snaplen;
            return again("tap service", s, &s.tenant, &s.name, s.id.0, same);
        }
        let tenant = match self.tenant(&spec.tenant) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let mut guards = Vec::new();
        match &spec.collector {
            Collector::Remote(ip) if !tenant.allows(*ip) => {
                let allowed: Vec<String> =
                    tenant.allowed_collectors.iter().map(Ipv4Cidr::to_string).collect();
                return Outcome::Reply(ApiReply::fail(
                    403,
                    "collector_not_allowed",
                    format!(
                        "{ip} is outside tenant {}'s allowed collectors {allowed:?}",
                        spec.tenant
                    ),
                    Some("remote_ip"),
                    json!({ "allowed_collectors": allowed }),
                ));
            }
            Collector::Remote(_) => {}
            // A VM collector is one of the tenant's own interfaces, wherever it runs.
            Collector::Iface(iface) => {
                match self.owned_interface(&spec.tenant, iface, "collector.iface_id") {
                    Ok(guard) => guards.extend(guard),
                    Err(refusal) => return Outcome::Reply(refusal),
                }
            }
        }
        let mine = self.nb.taps.services_of(&spec.tenant);
        let max = tenant.max_tap_services.unwrap_or(self.quota.tap_services);
        if mine >= max as usize {
            return refuse(
                403,
                "quota_exceeded",
                format!("tenant {} has {mine} of its {max} tap services", spec.tenant),
            );
        }
        let s = match self.nb.taps.new_service(spec, &self.reserved.keys, self.next_id()) {
            Ok(s) => s,
            Err(e) => return Outcome::Reply(store_error(e)),
        };
        let mut ops = guards;
        ops.extend(self.creation_guard(tenant));
        ops.extend([
            db::insert(db::TAP_SERVICE, db::service_row(&s)),
            self.audit(
                Some(&s.tenant),
                "create tap_service",
                format!("tap_service/{}", s.id.0),
                Value::Null,
                json!(s),
            ),
        ]);
        to_write(Write {
            ops,
            edit: Edit::AddService(s.clone()),
            reply: ApiReply { status: 201, body: json!(s) },
            expect: Expect::Service(s.id, true),
            id: Some(s.id.0),
            key: Some(s.key),
        })
    }

    /// `DELETE /v1/tap_services/{id}`.
    pub fn delete_service(&self, id: TapServiceId) -> Outcome {
        let Some(s) = self.nb.taps.service(id).filter(|s| self.caller.may_act_for(&s.tenant))
        else {
            return Outcome::Reply(store_error(StoreError::NotFound {
                what: "tap service",
                id: id.0,
            }));
        };
        if let Err(e) = self.nb.taps.deletable_service(id) {
            return Outcome::Reply(store_error(e));
        }
        let ops = vec![
            db::delete(db::TAP_SERVICE, "id", id.0 as i64),
            self.audit(
                Some(&s.tenant),
                "delete tap_service",
                format!("tap_service/{}", id.0),
                json!(s),
                Value::Null,
            ),
        ];
        to_write(Write {
            ops,
            edit: Edit::RemoveService(id),
            reply: ApiReply::ok(json!(s)),
            expect: Expect::Service(id, false),
            id: None,
            key: None,
        })
    }

    /// `POST /v1/tap_flows`.
    pub fn create_flow(&self, body: &Value) -> Outcome {
        let spec = match self.spec_for_caller(body, TapFlowSpec::from_json, |f| &f.tenant) {
            Ok(s) => s,
            Err(o) => return o,
        };
        if let Some(f) = self.nb.taps.flow_named(&spec.tenant, &spec.name) {
            let same = f.tap_service == spec.tap_service
                && f.source == spec.source
                && f.direction == spec.direction
                && f.filter == spec.filter;
            return again("tap flow", f, &f.tenant, &f.name, f.id.0, same);
        }
        let Some(svc) = self.nb.taps.service(spec.tap_service).filter(|s| s.tenant == spec.tenant)
        else {
            return Outcome::Reply(store_error(StoreError::NotFound {
                what: "tap service",
                id: spec.tap_service.0,
            }));
        };
        // Without a database (in memory) there is no row to refer to, and nothing is sent.
        let service_row = self.nb.service_rows.get(&svc.id).copied().unwrap_or(Uuid(0));
        let mut guards = Vec::new();
        if let Source::IfaceId(iface) = &spec.source {
            match self.owned_interface(&spec.tenant, iface, "source.iface_id") {
                Ok(guard) => guards.extend(guard),
                Err(refusal) => return Outcome::Reply(refusal),
            }
        }
        let tenant = match self.tenant(&spec.tenant) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let mine = self.nb.taps.flows_of(&spec.tenant);
        let max = tenant.max_tap_flows.unwrap_or(self.quota.tap_flows);
        if mine >= max as usize {
            return refuse(
                403,
                "quota_exceeded",
                format!("tenant {} has {mine} of its {max} tap flows", spec.tenant),
            );
        }
        let f = match self.nb.taps.new_flow(spec, self.next_id()) {
            Ok(f) => f,
            Err(e) => return Outcome::Reply(store_error(e)),
        };
        let mut ops = guards;
        ops.extend(self.creation_guard(tenant));
        ops.push(db::insert(db::TAP_FLOW, db::flow_row(&f, service_row)));
        ops.push(self.audit(
            Some(&f.tenant),
            "create tap_flow",
            format!("tap_flow/{}", f.id.0),
            Value::Null,
            json!(f),
        ));
        to_write(Write {
            ops,
            edit: Edit::AddFlow(f.clone()),
            reply: ApiReply { status: 201, body: json!(f) },
            expect: Expect::Flow(f.id, true),
            id: Some(f.id.0),
            key: None,
        })
    }

    /// `DELETE /v1/tap_flows/{id}`.
    pub fn delete_flow(&self, id: TapFlowId) -> Outcome {
        let Some(f) = self.nb.taps.flow(id).filter(|f| self.caller.may_act_for(&f.tenant)) else {
            return Outcome::Reply(store_error(StoreError::NotFound {
                what: "tap flow",
                id: id.0,
            }));
        };
        let ops = vec![
            db::delete(db::TAP_FLOW, "id", id.0 as i64),
            self.audit(
                Some(&f.tenant),
                "delete tap_flow",
                format!("tap_flow/{}", id.0),
                json!(f),
                Value::Null,
            ),
        ];
        to_write(Write {
            ops,
            edit: Edit::RemoveFlow(id),
            reply: ApiReply::ok(json!(f)),
            expect: Expect::Flow(id, false),
            id: None,
            key: None,
        })
    }

    fn operator_only(&self, what: &str) -> Result<(), Outcome> {
        if self.caller.is_operator() {
            Ok(())
        } else {
            Err(refuse(403, "operator_only", format!("only the operator may {what}")))
        }
    }

    /// `PUT /v1/tenants/{name}`: `{"allowed_collectors": [CIDR...], "max_tap_services"?, "max_tap_flows"?}`.
    pub fn put_tenant(&self, name: &str, body: &Value) -> Outcome {
        if let Err(o) = self.operator_only("configure tenants") {
            return o;
        }
        let t = match tenant_from_json(name, body) {
            Ok(t) => t,
            Err(e) => return Outcome::Reply(bad_field(e)),
        };
        let before = self.nb.tenants.get(name);
        let write = match before {
            Some(_) => db::update(db::TENANT, "name", name, db::tenant_row(&t)),
            None => db::insert(db::TENANT, db::tenant_row(&t)),
        };
        let ops = vec![
            write,
            self.audit(Some(name), "put tenant", format!("tenant/{name}"), json!(before), json!(t)),
        ];
        let status = if before.is_some() { 200 } else { 201 };
        to_write(Write {
            ops,
            edit: Edit::PutTenant(t.clone()),
            reply: ApiReply { status, body: json!(t) },
            expect: Expect::Tenant(name.to_string(), Some(t)),
            id: None,
            key: None,
        })
    }

    /// `DELETE /v1/tenants/{name}`: only a tenant with no tap services left.
    pub fn delete_tenant(&self, name: &str) -> Outcome {
        if let Err(o) = self.operator_only("configure tenants") {
            return o;
        }
        let Some(t) = self.nb.tenants.get(name) else {
            return refuse(404, "not_found", format!("tenant {name} not found"));
        };
        let services: Vec<u64> =
            self.nb.taps.services().filter(|s| s.tenant == name).map(|s| s.id.0).collect();
        if !services.is_empty() {
            return refuse(
                409,
                "in_use",
                format!("tenant {name} still has tap services {services:?}; delete them first"),
            );
        }
        let ops = vec![
            self.count_guard(db::TAP_SERVICE, name, std::iter::empty()),
            db::delete(db::TENANT, "name", name),
            self.audit(
                Some(name),
                "delete tenant",
                format!("tenant/{name}"),
                json!(t),
                Value::Null,
            ),
        ];
        to_write(Write {
            ops,
            edit: Edit::RemoveTenant(name.to_string()),
            reply: ApiReply::ok(json!(t)),
            expect: Expect::Tenant(name.into(), None),
            id: None,
            key: None,
        })
    }

    /// `PUT /v1/interfaces/{iface_id}`: `{"tenant": NAME}` registers the interface to a tenant.
    pub fn put_owner(&self, iface: &str, body: &Value) -> Outcome {
        if let Err(o) = self.operator_only("register interfaces") {
            return o;
        }
        let tenant = match body.get("tenant").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && t.len() <= 255 => t.to_string(),
            v => {
                return Outcome::Reply(bad_field(FieldError {
                    field: "tenant".into(),
                    value: v.map_or("missing".into(), |v| format!("{v:?}")),
                    expected: "the name of the tenant that owns the interface".into(),
                }))
            }
        };
        if let Some(extra) = body.as_object().and_then(|o| o.keys().find(|k| *k != "tenant")) {
            return Outcome::Reply(bad_field(FieldError {
                field: extra.clone(),
                value: body[extra].to_string(),
                expected: "no such field; known fields: tenant".into(),
            }));
        }
        let before = self.nb.taps.registered_owner(iface).map(str::to_string);
        // Moving an interface away from a tenant whose tap flows name it would leave those
        // flows pointing at someone else's interface.
        if let Some(old) = before.as_deref().filter(|o| *o != tenant) {
            let using: Vec<u64> = self
                .nb
                .taps
                .flows()
                .filter(|f| f.tenant == old && f.source == Source::IfaceId(iface.to_string()))
                .map(|f| f.id.0)
                .collect();
            if !using.is_empty() {
                return refuse(
                    409,
                    "in_use",
                    format!("tap flows {using:?} of tenant {old} copy {iface}; delete them first"),
                );
            }
        }
        let row = Row::from([
            ("iface_id".into(), Datum::atom(iface)),
            ("tenant".into(), Datum::atom(tenant.as_str())),
        ]);
        let write = match &before {
            Some(_) => db::update(db::INTERFACE_OWNER, "iface_id", iface, row),
            None => db::insert(db::INTERFACE_OWNER, row),
        };
        let ops = vec![
            write,
            self.audit(
                Some(&tenant),
                "register interface",
                format!("interface/{iface}"),
                json!(before),
                json!(tenant),
            ),
        ];
        let status = if before.is_some() { 200 } else { 201 };
        to_write(Write {
            ops,
            edit: Edit::SetOwner { iface_id: iface.to_string(), tenant: Some(tenant.clone()) },
            reply: ApiReply { status, body: json!({ "iface_id": iface, "tenant": tenant }) },
            expect: Expect::Owner(iface.to_string(), Some(tenant)),
            id: None,
            key: None,
        })
    }

    /// `POST /v1/tokens`: `{"name", "tenant"}` or `{"name", "role": "operator"}`; the answer
    /// holds the token, once.
    pub fn create_token(&self, body: &Value, known: &super::auth::Tokens) -> Outcome {
        if let Err(o) = self.operator_only("make tokens") {
            return o;
        }
        let field = |field: &str, expected: &str| {
            Outcome::Reply(bad_field(FieldError {
                field: field.into(),
                value: body.get(field).map_or("missing".into(), Value::to_string),
                expected: expected.into(),
            }))
        };
        let Some(name) =
            body.get("name").and_then(Value::as_str).filter(|n| !n.is_empty() && n.len() <= 255)
        else {
            return field("name", "a non-empty string of at most 255 characters");
        };
        let role = match (
            body.get("role").and_then(Value::as_str),
            body.get("tenant").and_then(Value::as_str),
        ) {
            (Some("operator"), None) => Role::Operator,
            (None | Some("tenant"), Some(t)) if !t.is_empty() => Role::Tenant(t.to_string()),
            _ => return field("role", "\"operator\" without a tenant, or a \"tenant\" name"),
        };
        if let Some(k) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| !["name", "role", "tenant"].contains(&k.as_str())))
        {
            return field(k, "no such field; known fields: name, role, tenant");
        }
        if known.has_name(name) {
            return refuse(409, "name_taken", format!("a token named {name:?} exists"));
        }
        let token = match new_token() {
            Ok(t) => t,
            Err(e) => return refuse(500, "internal", e),
        };
        let hash = TokenHash::of(&token);
        let entry =
            super::auth::KnownToken { name: name.to_string(), role: role.clone(), origin: "api" };
        let ops = vec![
            db::insert(db::TOKEN, db::token_row(name, &hash, &role, self.now_ms)),
            self.audit(
                role_tenant(&role),
                "create token",
                format!("token/{name}"),
                Value::Null,
                json!(entry),
            ),
        ];
        let mut body = json!(entry);
        body["token"] = json!(token);
        to_write(Write {
            ops,
            edit: Edit::AddToken { hash: hash.clone(), token: entry.clone() },
            reply: ApiReply { status: 201, body },
            expect: Expect::Token(name.into(), true),
            id: None,
            key: None,
        })
    }

    /// `DELETE /v1/tokens/{name}` (tokens made through the API only).
    pub fn delete_token(&self, name: &str) -> Outcome {
        if let Err(o) = self.operator_only("revoke tokens") {
            return o;
        }
        let Some(entry) = self.nb.tokens.known().find(|t| t.name == name).cloned() else {
            return refuse(
                404,
                "not_found",
                format!("no token named {name:?} was made through the API"),
            );
        };
        let ops = vec![
            db::delete(db::TOKEN, "name", name),
            self.audit(
                role_tenant(&entry.role),
                "delete token",
                format!("token/{name}"),
                json!(entry),
                Value::Null,
            ),
        ];
        to_write(Write {
            ops,
            edit: Edit::RemoveToken(name.to_string()),
            reply: ApiReply::ok(json!(entry)),
            expect: Expect::Token(name.into(), false),
            id: None,
            key: None,
        })
    }
}

/// The answer to a creation whose name the tenant already uses: the object itself when the
/// request asks for the same thing (idempotent creation), 409 otherwise.
fn again<T: serde::Serialize>(
    what: &str,
    existing: &T,
    tenant: &str,
    name: &str,
    id: u64,
    same: bool,
) -> Outcome {
    Outcome::Reply(if same {
        ApiReply::ok(json!(existing))
    } else {
        let why =
            format!("tenant {tenant} already has a different {what} named {name:?} (id {id})");
        ApiReply::fail(409, "name_taken", why, Some("name"), Value::Null)
    })
}

fn role_tenant(r: &Role) -> Option<&str> {
    match r {
        Role::Operator => None,
        Role::Tenant(t) => Some(t),
    }
}

fn not_owned(tenant: &str, iface: &str, field: &str) -> ApiReply {
    ApiReply::fail(
        403,
        "interface_not_owned",
        format!("interface {iface} is not tenant {tenant}'s"),
        Some(field),
        Value::Null,
    )
}

/// Reads a `PUT /v1/tenants/{name}` body.
pub fn tenant_from_json(name: &str, v: &Value) -> Result<Tenant, FieldError> {
    let err = |field: &str, value: Option<&Value>, expected: &str| FieldError {
        field: field.into(),
        value: value.map_or("missing".into(), Value::to_string),
        expected: expected.into(),
    };
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(err("name", Some(&json!(name)), "a tenant name of 1 to 255 characters"));
    }
    let obj = v.as_object().ok_or_else(|| err("body", Some(v), "a JSON object"))?;
    for k in obj.keys() {
        if !["allowed_collectors", "max_tap_services", "max_tap_flows"].contains(&k.as_str()) {
            return Err(err(
                k,
                obj.get(k),
                "no such field; known fields: allowed_collectors, max_tap_services, max_tap_flows",
            ));
        }
    }
    let list = obj.get("allowed_collectors");
    let items = list.and_then(Value::as_array).ok_or_else(|| {
        err("allowed_collectors", list, "a list of IPv4 prefixes such as [\"192.0.2.0/24\"]")
    })?;
    let mut allowed = Vec::new();
    for (i, c) in items.iter().enumerate() {
        let at = format!("allowed_collectors[{i}]");
        let cidr = c
            .as_str()
            .ok_or_else(|| err(&at, Some(c), "an IPv4 prefix"))?
            .parse::<Ipv4Cidr>()
            .map_err(|e| err(&at, Some(c), &format!("an IPv4 prefix ({e})")))?;
        allowed.push(cidr);
    }
    allowed.sort();
    allowed.dedup();
    let limit = |k: &str| -> Result<Option<u32>, FieldError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| err(k, Some(v), "an integer from 0 to 4294967295")),
        }
    };
    Ok(Tenant {
        name: name.to_string(),
        allowed_collectors: allowed,
        max_tap_services: limit("max_tap_services")?,
        max_tap_flows: limit("max_tap_flows")?,
    })
}

#[cfg(test)]
mod tests;
