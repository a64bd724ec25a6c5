//! The OpenStack Tap-as-a-Service surface: `/v2.0/taas/tap_services`, `/v2.0/taas/tap_flows`
//! and `/v2.0/taas/tap_mirrors` in Neutron's shapes, translated onto the very calls of `/v1`.
//!
//! There is one model and one store: a TaaS request becomes one or more [`ApiCall`]s, the core
//! decides them with the same rules and the same authorization as `/v1`, and the answers are
//! rendered back in TaaS's vocabulary. Nothing is kept here.
//!
//! The mapping:
//! - ids: periscope's numeric ids are shown as UUIDs, `50530000-0000-0000-HHHH-HHHHHHHHHHHH`
//!   with the id in the last 64 bits (hex); either form is accepted back.
//! - `project_id` / `tenant_id` is periscope's tenant.
//! - a tap service's collector is TaaS's `port_id`, a VM port of the tenant (its iface-id:
//!   `/v1`'s `collector.iface_id`), or, as extension attributes, periscope's `remote_ip` (an
//!   address outside the cloud); `encap` (`gre`, the default, `vxlan`, `erspan_v1` or
//!   `erspan_v2`), `key` and `snaplen` are extension attributes too.
//! - a tap flow's `source_port` is the interface's iface-id; `vlan_filter` holds one VLAN id.
//! - a tap mirror (`directions` `{"IN": key, "OUT": key}`, `remote_ip`, `mirror_type` `gre` or
//!   `erspanv1`) is one tap service per key (`gre` or `erspan_v1`, the key being the GRE key or
//!   the ERSPAN session id), each with one tap flow on `port_id`.
//! - `description` is not kept: only an empty one is accepted.
//! - deleting a tap service deletes its tap flows first, as TaaS does.
//!
//! A tap mirror's creation and a tap service's deletion are several `/v1` writes, not one
//! transaction: a refused part undoes the parts this request made before it.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use hyper::{Method, Request};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::api::{self, ApiCall, ApiReply, ApiRequest, Envelope, Query, MAX_PAGE};
use super::auth::TokenHash;
use super::model::{TapFlowId, TapServiceId};

/// The path every TaaS resource lives under.
pub const PREFIX: &str = "/v2.0/taas";

/// Whether a request path belongs to the TaaS surface.
pub fn is_taas(path: &str) -> bool {
    path == "/"
        || path == "/v2.0/extensions"
        || path == "/v2.0/extensions/"
        || path == PREFIX
        || path.starts_with("/v2.0/taas/")
}

/// A TaaS resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `tap_service`: a collector.
    Service,
    /// `tap_flow`: which frames of which port go to a tap service.
    Flow,
    /// `tap_mirror`: a port copied to a remote address over GRE, one key per direction.
    Mirror,
}

impl Kind {
    /// Its JSON key for one object.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Service => "tap_service",
            Kind::Flow => "tap_flow",
            Kind::Mirror => "tap_mirror",
        }
    }

    /// Its JSON key for a list, and its path segment.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Service => "tap_services",
            Kind::Flow => "tap_flows",
            Kind::Mirror => "tap_mirrors",
        }
    }

    /// Words for messages.
    fn words(self) -> &'static str {
        match self {
            Kind::Service => "tap service",
            Kind::Flow => "tap flow",
            Kind::Mirror => "tap mirror",
        }
    }

    /// The NeutronError type of a missing object.
    fn not_found_type(self) -> &'static str {
        match self {
            Kind::Service => "TapServiceNotFound",
            Kind::Flow => "TapFlowNotFound",
            Kind::Mirror => "TapMirrorNotFound",
        }
    }

    /// The attributes an object shows (and a list may be filtered by).
    pub fn attributes(self) -> &'static [&'static str] {
        match self {
            Kind::Service => &[
                "id",
                "tenant_id",
                "project_id",
                "name",
                "description",
                "port_id",
                "status",
                "remote_ip",
                "encap",
                "key",
                "snaplen",
            ],
            Kind::Flow => &[
                "id",
                "tenant_id",
                "project_id",
                "name",
                "description",
                "tap_service_id",
                "source_port",
                "direction",
                "vlan_filter",
                "status",
            ],
            Kind::Mirror => &[
                "id",
                "tenant_id",
                "project_id",
                "name",
                "description",
                "port_id",
                "directions",
                "remote_ip",
                "mirror_type",
            ],
        }
    }

    /// The attributes a creation may give.
    fn writable(self) -> &'static [&'static str] {
        match self {
            Kind::Service => &[
                "tenant_id",
                "project_id",
                "name",
                "description",
                "port_id",
                "remote_ip",
                "encap",
                "key",
                "snaplen",
            ],
            Kind::Flow => &[
                "tenant_id",
                "project_id",
                "name",
                "description",
                "tap_service_id",
                "source_port",
                "direction",
                "vlan_filter",
            ],
            Kind::Mirror => &[
                "tenant_id",
                "project_id",
                "name",
                "description",
                "port_id",
                "directions",
                "remote_ip",
                "mirror_type",
            ],
        }
    }
}

/// An answer in Neutron's shape: `{"NeutronError": {"type", "message", "detail"}}`.
pub fn neutron_error(status: u16, kind: &str, message: impl std::fmt::Display) -> ApiReply {
    ApiReply {
        status,
        body: json!({ "NeutronError": {
            "type": kind, "message": message.to_string(), "detail": ""
        }}),
    }
}

/// A 400 for one attribute.
fn bad_input(field: &str, message: impl std::fmt::Display) -> ApiReply {
    neutron_error(400, "HTTPBadRequest", format!("Invalid input for {field}: {message}"))
}

/// The UUID a periscope id is shown as.
pub fn uuid_of(id: u64) -> String {
    format!("50530000-0000-0000-{:04x}-{:012x}", id >> 48, id & 0xffff_ffff_ffff)
}

/// The periscope id of a UUID made by [`uuid_of`], or of a plain decimal id.
pub fn id_of(s: &str) -> Option<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return Some(n).filter(|n| *n > 0);
    }
    let rest = s.to_ascii_lowercase();
    let rest = rest.strip_prefix("50530000-0000-0000-")?;
    let (hi, lo) = rest.split_once('-')?;
    if hi.len() != 4 || lo.len() != 12 {
        return None;
    }
    let id = u64::from_str_radix(hi, 16).ok()? << 48 | u64::from_str_radix(lo, 16).ok()?;
    Some(id).filter(|n| *n > 0)
}

/// The TaaS name of a `/v1` field, for messages.
fn taas_field(kind: Kind, v1: &str) -> String {
    match (kind, v1) {
        (_, "tenant") => "project_id".into(),
        (Kind::Flow, "tap_service") => "tap_service_id".into(),
        (Kind::Flow, f) if f == "source" || f.starts_with("source.") => "source_port".into(),
        (Kind::Flow, "filter.vlan") => "vlan_filter".into(),
        (Kind::Mirror, f) if f == "source" || f.starts_with("source.") => "port_id".into(),
        (Kind::Mirror, "key") => "directions".into(),
        (Kind::Service, f) if f == "collector" || f.starts_with("collector.") => "port_id".into(),
        (_, f) => f.to_string(),
    }
}

/// A `/v1` message with the ids it names (`tap service 7`, `(id 7)`) written as TaaS ids.
fn uuids_in(text: &str) -> String {
    const BEFORE_ID: &[&str] = &["tap service ", "tap flow ", "(id "];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let next = BEFORE_ID.iter().filter_map(|p| rest.find(p).map(|i| (i, p.len()))).min();
        let Some((at, len)) = next else { break };
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<u64>() {
            Ok(id) => out.push_str(&uuid_of(id)),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// A `/v1` refusal in Neutron's shape, its fields named as TaaS names them.
pub fn from_v1_error(kind: Kind, r: &ApiReply) -> ApiReply {
    let e = &r.body["error"];
    let code = e["code"].as_str().unwrap_or("");
    let text = uuids_in(e["message"].as_str().unwrap_or("refused"));
    let field = e["field"].as_str().map(|f| taas_field(kind, f));
    let message = match (code, &field) {
        ("bad_field", Some(f)) => {
            let value = e["value"].as_str().unwrap_or("missing");
            let expected = e["expected"].as_str().unwrap_or("");
            format!("Invalid input for {f}: {value}; expected {expected}")
        }
        (_, Some(f)) => format!("{f}: {text}"),
        _ => text,
    };
    let ty = match (r.status, code) {
        (400, _) => "HTTPBadRequest",
        (401, _) => "HTTPUnauthorized",
        (403, _) => "HTTPForbidden",
        (404, _) if field.as_deref() == Some("tap_service_id") => "TapServiceNotFound",
        (404, _) => kind.not_found_type(),
        (405, _) => "HTTPMethodNotAllowed",
        (409, "in_use") => "InUse",
        (409, _) => "HTTPConflict",
        (413, _) => "HTTPRequestEntityTooLarge",
        (503, _) => "HTTPServiceUnavailable",
        _ => "HTTPInternalServerError",
    };
    neutron_error(r.status, ty, message)
}

/// The object of a request body wrapped as TaaS wraps it: `{"tap_service": {...}}`.
pub fn unwrap_body(kind: Kind, body: &Value) -> Result<&Map<String, Value>, ApiReply> {
    let inner = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get(kind.singular()))
        .and_then(Value::as_object);
    inner.ok_or_else(|| {
        neutron_error(
            400,
            "HTTPBadRequest",
            format!(
                "the body must be {{\"{}\": {{...}}}}, one object of attributes; got {body}",
                kind.singular()
            ),
        )
    })
}

/// Checks that every attribute is one a creation may give.
fn known_attributes(kind: Kind, o: &Map<String, Value>) -> Result<(), ApiReply> {
    let unknown: Vec<&str> =
        o.keys().map(String::as_str).filter(|k| !kind.writable().contains(k)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(neutron_error(
        400,
        "HTTPBadRequest",
        format!(
            "Unrecognized attribute(s) {}; a {} takes {}",
            unknown.join(", "),
            kind.singular(),
            kind.writable().join(", ")
        ),
    ))
}

/// A present, non-null attribute.
fn attr<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.get(name).filter(|v| !v.is_null())
}

/// `project_id` and `tenant_id` (which must agree), as `/v1`'s `tenant`.
fn tenant(o: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), ApiReply> {
    let p = attr(o, "project_id");
    let t = attr(o, "tenant_id");
    if let (Some(p), Some(t)) = (p, t) {
        if p != t {
            return Err(bad_input(
                "tenant_id",
                format!("{t} differs from project_id {p}; give one, or the same in both"),
            ));
        }
    }
    if let Some(v) = p.or(t) {
        out.insert("tenant".into(), v.clone());
    }
    Ok(())
}

/// Only an empty description: periscope keeps none.
fn no_description(o: &Map<String, Value>) -> Result<(), ApiReply> {
    match attr(o, "description") {
        None => Ok(()),
        Some(Value::String(s)) if s.is_empty() => Ok(()),
        Some(v) => Err(bad_input(
            "description",
            format!("{v}; periscope keeps no descriptions yet: leave it out or give \"\""),
        )),
    }
}

/// A `POST /v2.0/taas/tap_services` body as a `POST /v1/tap_services` body.
pub fn service_to_v1(body: &Value) -> Result<Value, ApiReply> {
    let o = unwrap_body(Kind::Service, body)?;
    known_attributes(Kind::Service, o)?;
    no_description(o)?;
    let mut out = Map::new();
    match (attr(o, "port_id"), attr(o, "remote_ip")) {
        (Some(p), Some(_)) => {
            return Err(bad_input(
                "port_id",
                format!("{p} together with remote_ip; give one collector: port_id (a VM port) or remote_ip (an address)"),
            ))
        }
        (None, None) => {
            return Err(bad_input(
                "port_id",
                "missing; give port_id, the collector VM's port, or remote_ip, the collector's \
                 IPv4 address",
            ))
        }
        (Some(p), None) => {
            out.insert("collector".into(), json!({ "iface_id": p }));
        }
        (None, Some(_)) => {}
    }
    tenant(o, &mut out)?;
    for k in ["name", "remote_ip", "key", "snaplen"] {
        if let Some(v) = attr(o, k) {
            out.insert(k.into(), v.clone());
        }
    }
    out.insert("encap".into(), attr(o, "encap").cloned().unwrap_or(json!("gre")));
    Ok(Value::Object(out))
}

/// A `/v1` tap service as TaaS shows it.
pub fn service_from_v1(v: &Value) -> Value {
    let id = v["id"].as_u64().map(uuid_of);
    let mut out = json!({
        "id": id,
        "tenant_id": v["tenant"],
        "project_id": v["tenant"],
        "name": v["name"],
        "description": "",
        "port_id": v["collector"]["iface_id"],
        "status": if v.get("blocked").is_some() { "ERROR" } else { "ACTIVE" },
        "remote_ip": v["remote_ip"],
        "encap": v["encap"],
        "key": v["key"],
    });
    if let Some(s) = v.get("snaplen") {
        out["snaplen"] = s.clone();
    }
    out
}

/// `vlan_filter`: one VLAN id, as a number or a string.
fn vlan_filter(v: &Value) -> Result<u64, ApiReply> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| *n <= 4095).ok_or_else(|| {
        bad_input(
            "vlan_filter",
            format!(
                "{v}; expected one VLAN id from 0 to 4095 (lists and ranges are not supported yet)"
            ),
        )
    })
}

/// `direction`: `IN`, `OUT` or `BOTH`.
fn direction(v: Option<&Value>) -> Result<Value, ApiReply> {
    match v.and_then(Value::as_str) {
        Some(d @ ("IN" | "OUT" | "BOTH")) => Ok(json!(d)),
        _ => Err(bad_input(
            "direction",
            format!(
                "{}; expected \"IN\" (to the port), \"OUT\" (from the port) or \"BOTH\"",
                v.map_or("missing".to_string(), Value::to_string)
            ),
        )),
    }
}

/// A required string attribute.
fn text<'a>(o: &'a Map<String, Value>, name: &str, what: &str) -> Result<&'a str, ApiReply> {
    let v = attr(o, name);
    v.and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| {
        bad_input(
            name,
            format!("{}; expected {what}", v.map_or("missing".into(), Value::to_string)),
        )
    })
}

/// The periscope id in a body's id attribute.
fn id_attr(o: &Map<String, Value>, name: &str, what: &str) -> Result<u64, ApiReply> {
    let s = text(o, name, what)?;
    id_of(s).ok_or_else(|| bad_input(name, format!("{s:?} is not the id of a {what}")))
}

/// A `POST /v2.0/taas/tap_flows` body as a `POST /v1/tap_flows` body.
pub fn flow_to_v1(body: &Value) -> Result<Value, ApiReply> {
    let o = unwrap_body(Kind::Flow, body)?;
    known_attributes(Kind::Flow, o)?;
    no_description(o)?;
    let mut out = Map::new();
    tenant(o, &mut out)?;
    if let Some(n) = attr(o, "name") {
        out.insert("name".into(), n.clone());
    }
    let svc = id_attr(o, "tap_service_id", "tap service")?;
    out.insert("tap_service".into(), json!(svc));
    let port = text(o, "source_port", "the id of the Neutron port to copy (its iface-id)")?;
    out.insert("source".into(), json!({ "iface_id": port }));
    out.insert("direction".into(), direction(attr(o, "direction"))?);
    if let Some(v) = attr(o, "vlan_filter") {
        out.insert("filter".into(), json!({ "vlan": vlan_filter(v)? }));
    }
    Ok(Value::Object(out))
}

/// A `/v1` tap flow status as TaaS's: `ACTIVE`, `DOWN` (nowhere to copy from yet) or `ERROR`.
fn flow_status(v1: &Value) -> &'static str {
    match v1.as_str() {
        Some("ACTIVE") => "ACTIVE",
        Some("BLOCKED") => "ERROR",
        _ => "DOWN",
    }
}

/// A `/v1` tap flow as TaaS shows it (a flow whose source is a VM or a selector has no
/// `source_port`).
pub fn flow_from_v1(v: &Value) -> Value {
    json!({
        "id": v["id"].as_u64().map(uuid_of),
        "tenant_id": v["tenant"],
        "project_id": v["tenant"],
        "name": v["name"],
        "description": "",
        "tap_service_id": v["tap_service"].as_u64().map(uuid_of),
        "source_port": v["source"]["iface_id"],
        "direction": v["direction"],
        "vlan_filter": v["filter"]["vlan"].as_u64().map(|n| n.to_string()),
        "status": flow_status(&v["status"]),
    })
}

/// A tap mirror request, checked: what it becomes in `/v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorSpec {
    /// Its name; each part is named `NAME/IN` or `NAME/OUT`.
    pub name: String,
    /// The tenant, if given.
    pub tenant: Option<Value>,
    /// The port copied.
    pub port: String,
    /// The collector.
    pub remote_ip: Value,
    /// Per direction (`IN`, `OUT`), the GRE key or ERSPAN session id.
    pub directions: BTreeMap<&'static str, u64>,
    /// The `/v1` encapsulation of its parts: `gre` or `erspan_v1`.
    pub encap: &'static str,
}

/// TaaS's `mirror_type`s, with the `/v1` encapsulation and the largest key of each.
const MIRROR_TYPES: [(&str, &str, u64); 2] =
    [("gre", "gre", u32::MAX as u64), ("erspanv1", "erspan_v1", 1023)];

impl MirrorSpec {
    /// Checks a `POST /v2.0/taas/tap_mirrors` body.
    pub fn from_taas(body: &Value) -> Result<MirrorSpec, ApiReply> {
        let o = unwrap_body(Kind::Mirror, body)?;
        known_attributes(Kind::Mirror, o)?;
        no_description(o)?;
        let mv = attr(o, "mirror_type");
        let Some(&(mirror_type, encap, max_key)) =
            MIRROR_TYPES.iter().find(|(m, _, _)| mv.and_then(Value::as_str) == Some(*m))
        else {
            return Err(bad_input(
                "mirror_type",
                format!(
                    "{}; expected \"gre\" or \"erspanv1\"",
                    mv.map_or("missing".into(), Value::to_string)
                ),
            ));
        };
        let mut t = Map::new();
        tenant(o, &mut t)?;
        let name = text(o, "name", "a name, unique in the project")?.to_string();
        let port = text(o, "port_id", "the id of the Neutron port to copy (its iface-id)")?;
        let remote_ip = attr(o, "remote_ip").cloned().ok_or_else(|| {
            bad_input("remote_ip", "missing; expected the collector's IPv4 address")
        })?;
        let dv = attr(o, "directions");
        let what = match mirror_type {
            "gre" => "GRE key",
            _ => "ERSPAN session id",
        };
        let expected = format!(
            "{{\"IN\": KEY, \"OUT\": KEY}} with one or both, each a {what} from 1 to {max_key}"
        );
        let dirs = dv.and_then(Value::as_object).filter(|d| !d.is_empty()).ok_or_else(|| {
            bad_input(
                "directions",
                format!("{}; expected {expected}", dv.map_or("missing".into(), Value::to_string)),
            )
        })?;
        let mut directions = BTreeMap::new();
        for (k, v) in dirs {
            let d = match k.as_str() {
                "IN" => "IN",
                "OUT" => "OUT",
                _ => {
                    return Err(bad_input(
                        &format!("directions.{k}"),
                        format!("no such direction; expected {expected}"),
                    ))
                }
            };
            let key = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|k| (1..=max_key).contains(k))
                .ok_or_else(|| {
                    bad_input(&format!("directions.{d}"), format!("{v}; expected {expected}"))
                })?;
            directions.insert(d, key);
        }
        Ok(MirrorSpec {
            name,
            tenant: t.remove("tenant"),
            port: port.to_string(),
            remote_ip,
            directions,
            encap,
        })
    }

    /// The `/v1` tap service and tap flow bodies, per direction.
    pub fn to_v1(&self) -> Vec<(&'static str, Value, Value)> {
        self.directions
            .iter()
            .map(|(d, key)| {
                let name = format!("{}/{d}", self.name);
                let mut svc = json!({
                    "name": name, "encap": self.encap, "remote_ip": self.remote_ip, "key": key,
                });
                let mut flow = json!({
                    "name": name, "source": {"iface_id": self.port}, "direction": d,
                });
                if let Some(t) = &self.tenant {
                    svc["tenant"] = t.clone();
                    flow["tenant"] = t.clone();
                }
                (*d, svc, flow)
            })
            .collect()
    }
}

/// A tap mirror from its `/v1` parts: per direction, the tap service and its tap flow. The
/// mirror's id is its first part's service id.
pub fn mirror_from_v1(name: &str, parts: &[(&str, &Value, &Value)]) -> Value {
    let first = parts.first().map(|(_, s, _)| *s).unwrap_or(&Value::Null);
    let mut directions = Map::new();
    for (d, s, _) in parts {
        directions.insert(d.to_string(), s["key"].clone());
    }
    json!({
        "id": first["id"].as_u64().map(uuid_of),
        "tenant_id": first["tenant"],
        "project_id": first["tenant"],
        "name": name,
        "description": "",
        "port_id": parts.first().map(|(_, _, f)| f["source"]["iface_id"].clone()),
        "directions": directions,
        "remote_ip": first["remote_ip"],
        "mirror_type": MIRROR_TYPES
            .iter()
            .find(|(_, encap, _)| first["encap"] == *encap)
            .map_or("gre", |(m, _, _)| *m),
    })
}

/// A list request: Neutron's filters (any attribute, repeated for "any of"), `fields`,
/// `limit` and `marker`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Attribute to the values it may hold.
    pub filters: BTreeMap<String, Vec<String>>,
    /// Only these attributes are shown (all when empty).
    pub fields: Vec<String>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Only objects after this id.
    pub marker: Option<u64>,
}

impl ListQuery {
    /// Parses a query string for a list of `kind`.
    pub fn parse(kind: Kind, q: Option<&str>) -> Result<ListQuery, ApiReply> {
        let mut out = ListQuery::default();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = api::percent_decode(&v.replace('+', " "));
            let bad =
                |why: String| neutron_error(400, "HTTPBadRequest", format!("{k}={v:?}: {why}"));
            match k {
                "fields" => out.fields.push(v),
                "limit" => {
                    out.limit =
                        Some(v.parse().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(
                            || bad(format!("expected an integer from 1 to {MAX_PAGE}")),
                        )?)
                }
                "marker" => {
                    out.marker = Some(
                        id_of(&v)
                            .ok_or_else(|| bad(format!("expected the id of a {}", kind.words())))?,
                    )
                }
                "sort_key" if v == "id" => {}
                "sort_dir" if v == "asc" => {}
                "sort_key" | "sort_dir" => {
                    return Err(bad("lists are sorted by id, ascending, only".to_string()))
                }
                _ if kind.attributes().contains(&k) => {
                    out.filters.entry(k.to_string()).or_default().push(v)
                }
                _ => {
                    return Err(bad(format!(
                        "no such filter; a {} list takes fields, limit, marker or one of {}",
                        kind.singular(),
                        kind.attributes().join(", ")
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Whether a TaaS object passes the filters.
    pub fn selects(&self, obj: &Value) -> bool {
        self.filters.iter().all(|(k, vals)| {
            let shown = match &obj[k.as_str()] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            vals.contains(&shown)
        })
    }

    /// The object with only the asked-for attributes.
    pub fn project(&self, obj: Value) -> Value {
        match obj {
            Value::Object(o) if !self.fields.is_empty() => {
                Value::Object(o.into_iter().filter(|(k, _)| self.fields.contains(k)).collect())
            }
            other => other,
        }
    }
}

/// What a TaaS request asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `GET /v2.0/extensions`.
    Extensions,
    /// `GET /v2.0/taas/{plural}`.
    List(Kind, ListQuery),
    /// `GET /v2.0/taas/{plural}/{id}`.
    Show(Kind, u64),
    /// `POST /v2.0/taas/{plural}`.
    Create(Kind, Value),
    /// `DELETE /v2.0/taas/{plural}/{id}`.
    Delete(Kind, u64),
}

/// Routes a TaaS request.
pub async fn route<B>(req: Request<B>) -> Result<Op, ApiReply>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<String> = path.split('/').skip(1).map(api::percent_decode).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let kind = |s: &str| match s {
        "tap_services" => Some(Kind::Service),
        "tap_flows" => Some(Kind::Flow),
        "tap_mirrors" => Some(Kind::Mirror),
        _ => None,
    };
    let no_such = || {
        neutron_error(
            404,
            "HTTPNotFound",
            format!(
                "no such resource: {path}; TaaS resources are {PREFIX}/tap_services, {PREFIX}/tap_flows, {PREFIX}/tap_mirrors"
            ),
        )
    };
    let not_allowed = |allowed: &str| {
        neutron_error(
            405,
            "HTTPMethodNotAllowed",
            format!("{method} is not allowed on {path}; allowed: {allowed} (periscope does not update objects: delete and create)"),
        )
    };
    match parts.as_slice() {
        [] if method == Method::GET => Err(ApiReply::ok(versions(req.headers()))),
        [] => Err(not_allowed("GET")),
        ["v2.0", "extensions"] if method == Method::GET => Ok(Op::Extensions),
        ["v2.0", "extensions"] => Err(not_allowed("GET")),
        ["v2.0", "taas", r, rest @ ..] if rest.len() <= 1 => {
            let Some(k) = kind(r) else { return Err(no_such()) };
            match (rest.first(), &method) {
                (None, &Method::GET) => Ok(Op::List(k, ListQuery::parse(k, req.uri().query())?)),
                (None, &Method::POST) => {
                    let body = api::body_json(req).await.map_err(|r| from_v1_error(k, &r))?;
                    Ok(Op::Create(k, body))
                }
                (None, _) => Err(not_allowed("GET, POST")),
                (Some(id), m) => {
                    let id = id_of(id).ok_or_else(|| {
                        neutron_error(
                            404,
                            k.not_found_type(),
                            format!("{} {id} not found", k.words()),
                        )
                    })?;
                    match *m {
                        Method::GET => Ok(Op::Show(k, id)),
                        Method::DELETE => Ok(Op::Delete(k, id)),
                        _ => Err(not_allowed("GET, DELETE")),
                    }
                }
            }
        }
        _ => Err(no_such()),
    }
}

/// `GET /`: the API versions, as Neutron answers clients that discover them (no token needed).
fn versions(headers: &hyper::HeaderMap) -> Value {
    let host =
        headers.get(hyper::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    json!({ "versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"href": format!("http://{host}/v2.0/"), "rel": "self"}]
    }]})
}

/// The extensions this surface offers, as Neutron lists them.
fn extensions() -> Value {
    json!({ "extensions": [
        {"alias": "taas", "name": "Neutron Tap as a Service",
         "description": "tap services and tap flows, served by periscope", "updated": "2026-12-01T00:00:00-00:00", "links": []},
        {"alias": "tap-mirror", "name": "Tap Mirror",
         "description": "GRE tap mirrors, served by periscope", "updated": "2026-12-01T00:00:00-00:00", "links": []}
    ]})
}

/// Every TaaS operation: method, path, summary.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("get", "/", "The API versions, for clients that discover them (no token needed)"),
    ("get", "/v2.0/extensions", "The TaaS extensions served (taas, tap-mirror)"),
    (
        "get",
        "/v2.0/taas/tap_services",
        "List tap services (filters: any attribute; fields, limit, marker)",
    ),
    (
        "post",
        "/v2.0/taas/tap_services",
        "Create a tap service: {\"tap_service\": {...}}; remote_ip is its collector",
    ),
    ("get", "/v2.0/taas/tap_services/{id}", "Show a tap service"),
    ("delete", "/v2.0/taas/tap_services/{id}", "Delete a tap service and its tap flows"),
    (
        "get",
        "/v2.0/taas/tap_flows",
        "List tap flows (filters: any attribute; fields, limit, marker)",
    ),
    ("post", "/v2.0/taas/tap_flows", "Create a tap flow: {\"tap_flow\": {...}}"),
    ("get", "/v2.0/taas/tap_flows/{id}", "Show a tap flow"),
    ("delete", "/v2.0/taas/tap_flows/{id}", "Delete a tap flow"),
    ("get", "/v2.0/taas/tap_mirrors", "List tap mirrors"),
    ("post", "/v2.0/taas/tap_mirrors", "Create a GRE tap mirror: {\"tap_mirror\": {...}}"),
    ("get", "/v2.0/taas/tap_mirrors/{id}", "Show a tap mirror"),
    ("delete", "/v2.0/taas/tap_mirrors/{id}", "Delete a tap mirror"),
];

/// The OpenAPI paths of the TaaS surface, for the API's document.
pub fn openapi_paths() -> Map<String, Value> {
    let error = json!({"description": "refused", "content": {"application/json": {"schema": {
        "type": "object", "required": ["NeutronError"], "properties": {"NeutronError": {
            "type": "object", "properties": {"type": {"type": "string"}, "message": {"type": "string"},
            "detail": {"type": "string"}}}}}}}});
    let mut paths = Map::new();
    for (method, path, summary) in ROUTES {
        let kind = [Kind::Service, Kind::Flow, Kind::Mirror]
            .into_iter()
            .find(|k| path.contains(k.plural()));
        let mut op = json!({
            "summary": summary,
            "operationId": format!("{method}{}", path.replace(['/', '{', '}', '.'], "_")),
            "x-periscope-access": "tenant",
            "security": [{"bearer": []}, {"x-auth-token": []}],
            "responses": {"200": {"description": "done"}, "400": error, "401": error, "404": error},
        });
        if *path == "/" {
            op["security"] = json!([]);
            op["x-periscope-access"] = json!("public");
        }
        if path.ends_with("{id}") {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true,
                "schema": {"type": "string", "format": "uuid"}}]);
        }
        if let (Some(k), &"post") = (kind, method) {
            let props: Map<String, Value> =
                k.writable().iter().map(|a| (a.to_string(), json!({}))).collect();
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": [k.singular()], "properties": {
                    k.singular(): {"type": "object", "additionalProperties": false, "properties": props}}}}}});
            op["responses"]["201"] = json!({"description": "created"});
            op["responses"]["403"] = error.clone();
            op["responses"]["409"] = error.clone();
        }
        if *method == "delete" {
            op["responses"]["204"] = json!({"description": "deleted"});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    paths
}

/// Asks the core on behalf of one caller.
struct Asker<'a> {
    core: &'a mpsc::Sender<Envelope>,
    token: Option<TokenHash>,
}

impl Asker<'_> {
    async fn call(&self, call: ApiCall) -> ApiReply {
        api::ask(self.core, ApiRequest { token: self.token.clone(), call }).await
    }

    /// Every object of a `/v1` list from `marker` on, page after page.
    async fn all(
        &self,
        list: impl Fn(Query) -> ApiCall,
        marker: Option<u64>,
    ) -> Result<Vec<Value>, ApiReply> {
        let mut out = Vec::new();
        let mut marker = marker;
        loop {
            let r = self.call(list(Query { marker, ..Query::default() })).await;
            if r.status != 200 {
                return Err(r);
            }
            let page = match r.body {
                Value::Array(a) => a,
                _ => {
                    return Err(ApiReply::fail(
                        500,
                        "internal",
                        "a list that is not one",
                        None,
                        Value::Null,
                    ))
                }
            };
            let full = page.len() >= MAX_PAGE;
            marker = page.last().and_then(|v| v["id"].as_u64());
            out.extend(page);
            if !full || marker.is_none() {
                return Ok(out);
            }
        }
    }
}

/// 204, no body: what Neutron answers to a deletion.
fn deleted() -> ApiReply {
    ApiReply { status: 204, body: Value::Null }
}

/// Serves one TaaS request as the caller whose token hash is `token`.
pub async fn serve<B>(
    req: Request<B>,
    token: Option<TokenHash>,
    core: &mpsc::Sender<Envelope>,
) -> ApiReply
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let ask = Asker { core, token };
    let op = match route(req).await {
        Ok(op) => op,
        Err(r) => return r,
    };
    // Who calls is checked first, as Neutron does: a caller without a valid token learns
    // nothing, not even what is wrong with its request.
    if matches!(op, Op::Extensions | Op::Create(..)) {
        let r = ask.call(ApiCall::ListServices(Query { limit: Some(1), ..Query::default() })).await;
        if r.status != 200 {
            return from_v1_error(Kind::Service, &r);
        }
    }
    match op {
        Op::Extensions => ApiReply::ok(extensions()),
        Op::List(kind, q) => list(&ask, kind, &q).await,
        Op::Show(kind, id) => show(&ask, kind, id).await,
        Op::Create(kind, body) => create(&ask, kind, &body).await,
        Op::Delete(kind, id) => delete(&ask, kind, id).await,
    }
}

/// Every `/v1` tap service and tap flow the caller sees, and the tap mirrors among them.
async fn world(ask: &Asker<'_>) -> Result<(Vec<Value>, Vec<Value>, Mirrors), ApiReply> {
    let services = ask.all(ApiCall::ListServices, None).await?;
    let flows = ask.all(ApiCall::ListFlows, None).await?;
    let m = mirrors(&services, &flows);
    Ok((services, flows, m))
}

/// Every TaaS object of a kind the caller sees, with an id above `marker`.
async fn objects(ask: &Asker<'_>, kind: Kind, marker: Option<u64>) -> Result<Vec<Value>, ApiReply> {
    let (services, flows, m) = world(ask).await?;
    let after = |id: Option<u64>| marker.is_none_or(|mk| id.is_some_and(|i| i > mk));
    Ok(match kind {
        Kind::Service => services
            .iter()
            .filter(|s| after(s["id"].as_u64()) && !m.member(s))
            .map(service_from_v1)
            .collect(),
        Kind::Flow => flows
            .iter()
            .filter(|f| after(f["id"].as_u64()) && !m.member(f))
            .map(flow_from_v1)
            .collect(),
        Kind::Mirror => {
            m.list.into_iter().filter(|v| after(v["id"].as_str().and_then(id_of))).collect()
        }
    })
}

/// A tap service that may be part of a tap mirror: its mirror's name and its direction.
fn mirror_part(s: &Value) -> Option<(&str, &'static str)> {
    let name = s["name"].as_str()?;
    if !MIRROR_TYPES.iter().any(|(_, encap, _)| s["encap"] == *encap) {
        return None;
    }
    if let Some(m) = name.strip_suffix("/IN") {
        return Some((m, "IN"));
    }
    name.strip_suffix("/OUT").map(|m| (m, "OUT"))
}

/// The tap mirrors found among tap services and tap flows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mirrors {
    /// The tap mirrors, in TaaS's shape, by id.
    pub list: Vec<Value>,
    /// The ids of the tap services and tap flows they are made of.
    pub members: BTreeSet<u64>,
}

impl Mirrors {
    /// Whether a `/v1` object is part of a tap mirror (TaaS shows it only as that).
    pub fn member(&self, v: &Value) -> bool {
        v["id"].as_u64().is_some_and(|i| self.members.contains(&i))
    }

    /// The tap mirror of this id.
    pub fn find(&self, id: u64) -> Option<&Value> {
        let want = json!(uuid_of(id));
        self.list.iter().find(|m| m["id"] == want)
    }
}

/// The tap mirrors among `/v1` services and flows: GRE services of one tenant named
/// `NAME/IN` and/or `NAME/OUT`, each with exactly one unfiltered flow of the same name and
/// direction on one port, the same port and collector for both.
pub fn mirrors(services: &[Value], flows: &[Value]) -> Mirrors {
    type Part<'a> = (&'a str, &'a Value, &'a Value);
    let mut groups: BTreeMap<(String, String), Vec<Part<'_>>> = BTreeMap::new();
    for s in services {
        let Some((m, d)) = mirror_part(s) else { continue };
        let mine: Vec<&Value> = flows.iter().filter(|f| f["tap_service"] == s["id"]).collect();
        let [f] = mine.as_slice() else { continue };
        if f["name"] != s["name"]
            || f["direction"] != d
            || f["source"]["iface_id"].is_null()
            || !f["filter"].is_null()
        {
            continue;
        }
        let tenant = s["tenant"].as_str().unwrap_or("").to_string();
        groups.entry((tenant, m.to_string())).or_default().push((d, s, f));
    }
    let mut out = Mirrors::default();
    let mut found: Vec<(u64, Value)> = Vec::new();
    for ((_, name), mut parts) in groups {
        let consistent = parts.windows(2).all(|w| {
            w[0].2["source"] == w[1].2["source"] && w[0].1["remote_ip"] == w[1].1["remote_ip"]
        });
        if !consistent {
            continue;
        }
        parts.sort_by_key(|(_, s, _)| s["id"].as_u64());
        for (_, s, f) in &parts {
            out.members.extend(s["id"].as_u64());
            out.members.extend(f["id"].as_u64());
        }
        let id = parts.first().and_then(|(_, s, _)| s["id"].as_u64()).unwrap_or(0);
        found.push((id, mirror_from_v1(&name, &parts)));
    }
    found.sort_by_key(|(id, _)| *id);
    out.list = found.into_iter().map(|(_, v)| v).collect();
    out
}

async fn list(ask: &Asker<'_>, kind: Kind, q: &ListQuery) -> ApiReply {
    let objs = match objects(ask, kind, q.marker).await {
        Ok(o) => o,
        Err(r) => return from_v1_error(kind, &r),
    };
    let mut selected: Vec<Value> = objs.into_iter().filter(|o| q.selects(o)).collect();
    let mut body = Map::new();
    if let Some(limit) = q.limit {
        if selected.len() > limit {
            selected.truncate(limit);
            let last = selected.last().and_then(|o| o["id"].as_str()).unwrap_or("");
            let href = format!("{PREFIX}/{}?limit={limit}&marker={last}", kind.plural());
            body.insert(format!("{}_links", kind.plural()), json!([{"rel": "next", "href": href}]));
        }
    }
    let shown: Vec<Value> = selected.into_iter().map(|o| q.project(o)).collect();
    body.insert(kind.plural().into(), Value::Array(shown));
    ApiReply::ok(Value::Object(body))
}

fn wrap(kind: Kind, status: u16, obj: Value) -> ApiReply {
    ApiReply { status, body: json!({ kind.singular(): obj }) }
}

fn missing(kind: Kind, id: u64) -> ApiReply {
    neutron_error(404, kind.not_found_type(), format!("{} {} not found", kind.words(), uuid_of(id)))
}

async fn show(ask: &Asker<'_>, kind: Kind, id: u64) -> ApiReply {
    let (services, flows, m) = match world(ask).await {
        Ok(w) => w,
        Err(r) => return from_v1_error(kind, &r),
    };
    let is = |list: &[Value]| list.iter().any(|v| v["id"].as_u64() == Some(id));
    match kind {
        Kind::Service if is(&services) && !m.members.contains(&id) => {
            let r = ask.call(ApiCall::GetService(TapServiceId(id))).await;
            match r.status {
                200 => wrap(kind, 200, service_from_v1(&r.body)),
                404 => missing(kind, id),
                _ => from_v1_error(kind, &r),
            }
        }
        // A flow's own GET holds its status; the list does not.
        Kind::Flow if is(&flows) && !m.members.contains(&id) => {
            let r = ask.call(ApiCall::GetFlow(TapFlowId(id))).await;
            match r.status {
                200 => wrap(kind, 200, flow_from_v1(&r.body)),
                404 => missing(kind, id),
                _ => from_v1_error(kind, &r),
            }
        }
        Kind::Mirror => match m.find(id) {
            Some(v) => wrap(kind, 200, v.clone()),
            None => missing(kind, id),
        },
        _ => missing(kind, id),
    }
}

async fn create(ask: &Asker<'_>, kind: Kind, body: &Value) -> ApiReply {
    match kind {
        Kind::Service => {
            let v1 = match service_to_v1(body) {
                Ok(v) => v,
                Err(r) => return r,
            };
            if v1["name"].as_str().is_some_and(|n| n.ends_with("/IN") || n.ends_with("/OUT")) {
                return bad_input(
                    "name",
                    "names ending in /IN or /OUT are kept for the parts of tap mirrors",
                );
            }
            let r = ask.call(ApiCall::CreateService(v1)).await;
            if r.status >= 300 {
                return from_v1_error(kind, &r);
            }
            let shown = match r.body["id"].as_u64() {
                Some(id) => ask.call(ApiCall::GetService(TapServiceId(id))).await,
                None => r.clone(),
            };
            let obj = if shown.status == 200 { &shown.body } else { &r.body };
            wrap(kind, 201, service_from_v1(obj))
        }
        Kind::Flow => {
            let v1 = match flow_to_v1(body) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let svc = v1["tap_service"].as_u64().unwrap_or(0);
            // A tap mirror's parts are no tap services to TaaS: another flow would unmake it.
            let r = match world(ask).await {
                Ok((_, _, m)) if m.members.contains(&svc) => {
                    ApiReply::fail(404, "not_found", "", None, Value::Null)
                }
                Ok(_) => ask.call(ApiCall::CreateFlow(v1)).await,
                Err(r) => r,
            };
            if r.status == 404 {
                return neutron_error(
                    404,
                    "TapServiceNotFound",
                    format!(
                        "Invalid input for tap_service_id: tap service {} not found",
                        uuid_of(svc)
                    ),
                );
            }
            if r.status >= 300 {
                return from_v1_error(kind, &r);
            }
            let shown = match r.body["id"].as_u64() {
                Some(id) => ask.call(ApiCall::GetFlow(TapFlowId(id))).await,
                None => r.clone(),
            };
            let obj = if shown.status == 200 { &shown.body } else { &r.body };
            wrap(kind, 201, flow_from_v1(obj))
        }
        Kind::Mirror => create_mirror(ask, body).await,
    }
}

/// Creates a tap mirror's parts one by one; if one is refused, those made are deleted again.
async fn create_mirror(ask: &Asker<'_>, body: &Value) -> ApiReply {
    let spec = match MirrorSpec::from_taas(body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // What this request made (201), to undo if a later part is refused; parts that existed
    // already (an idempotent repeat, 200) stay.
    let mut made: Vec<ApiCall> = Vec::new();
    let mut parts: Vec<(&str, Value, Value)> = Vec::new();
    let mut failure = None;
    for (d, svc, mut flow) in spec.to_v1() {
        let s = ask.call(ApiCall::CreateService(svc)).await;
        if s.status >= 300 {
            failure = Some(s);
            break;
        }
        let sid = s.body["id"].as_u64().unwrap_or(0);
        if s.status == 201 {
            made.push(ApiCall::DeleteService(TapServiceId(sid)));
        }
        flow["tap_service"] = json!(sid);
        let f = ask.call(ApiCall::CreateFlow(flow)).await;
        if f.status >= 300 {
            failure = Some(f);
            break;
        }
        if f.status == 201 {
            made.push(ApiCall::DeleteFlow(TapFlowId(f.body["id"].as_u64().unwrap_or(0))));
        }
        parts.push((d, s.body, f.body));
    }
    if let Some(f) = failure {
        for undo in made.into_iter().rev() {
            let _ = ask.call(undo).await;
        }
        return from_v1_error(Kind::Mirror, &f);
    }
    let refs: Vec<(&str, &Value, &Value)> = parts.iter().map(|(d, s, f)| (*d, s, f)).collect();
    wrap(Kind::Mirror, 201, mirror_from_v1(&spec.name, &refs))
}

async fn delete(ask: &Asker<'_>, kind: Kind, id: u64) -> ApiReply {
    let (services, flows, m) = match world(ask).await {
        Ok(w) => w,
        Err(r) => return from_v1_error(kind, &r),
    };
    let is = |list: &[Value]| list.iter().any(|v| v["id"].as_u64() == Some(id));
    match kind {
        Kind::Flow if is(&flows) && !m.members.contains(&id) => {
            let r = ask.call(ApiCall::DeleteFlow(TapFlowId(id))).await;
            match r.status {
                200 => deleted(),
                404 => missing(kind, id),
                _ => from_v1_error(kind, &r),
            }
        }
        Kind::Service if is(&services) && !m.members.contains(&id) => {
            delete_services(ask, kind, &flows, &[id]).await
        }
        Kind::Mirror => {
            let Some(mirror) = m.find(id) else { return missing(kind, id) };
            let ids: Vec<u64> = services
                .iter()
                .filter(|s| {
                    m.member(s)
                        && s["tenant"] == mirror["project_id"]
                        && mirror_part(s).is_some_and(|(n, _)| mirror["name"] == n)
                })
                .filter_map(|s| s["id"].as_u64())
                .collect();
            delete_services(ask, kind, &flows, &ids).await
        }
        _ => missing(kind, id),
    }
}

/// Deletes tap services with their tap flows first, as TaaS does.
async fn delete_services(ask: &Asker<'_>, kind: Kind, flows: &[Value], ids: &[u64]) -> ApiReply {
    for f in flows.iter().filter(|f| f["tap_service"].as_u64().is_some_and(|s| ids.contains(&s))) {
        if let Some(fid) = f["id"].as_u64() {
            let r = ask.call(ApiCall::DeleteFlow(TapFlowId(fid))).await;
            if r.status != 200 && r.status != 404 {
                return from_v1_error(kind, &r);
            }
        }
    }
    for id in ids {
        let r = ask.call(ApiCall::DeleteService(TapServiceId(*id))).await;
        match r.status {
            200 => {}
            404 => return missing(kind, *id),
            _ => return from_v1_error(kind, &r),
        }
    }
    deleted()
}

#[cfg(test)]
mod tests;
