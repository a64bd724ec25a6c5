//! `GET /v1/openapi.json`: the OpenAPI 3 description of the API, built from [`ROUTES`] and
//! the field tables of the request parsers ([`super::model::SERVICE_FIELDS`] and friends).
//! A test routes every documented operation and checks that every documented field is one the
//! parser accepts, so the document and the API cannot drift apart.

use serde_json::{json, Map, Value};

use super::model::{FieldDoc, FILTER_FIELDS, FLOW_FIELDS, SERVICE_FIELDS};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no token.
    Public,
    /// The operator, or a tenant for its own objects.
    Tenant,
    /// The operator only.
    Operator,
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path template, `{name}` for a parameter.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The request body's schema name, if it takes one.
    pub body: Option<&'static str>,
    /// Whether it takes the list parameters (`tenant`, `name`, `limit`, `marker`).
    pub list: bool,
}

const fn r(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    access: Access,
    body: Option<&'static str>,
    list: bool,
) -> Route {
    Route { method, path, summary, access, body, list }
}

/// Every operation of the API.
pub const ROUTES: &[Route] = &[
    r(
        "get",
        "/v1/tap_services",
        "List tap services (a tenant sees its own)",
        Access::Tenant,
        None,
        true,
    ),
    r(
        "post",
        "/v1/tap_services",
        "Create a tap service; the same name and content again gives it back",
        Access::Tenant,
        Some("TapServiceSpec"),
        false,
    ),
    r("get", "/v1/tap_services/{id}", "Show a tap service", Access::Tenant, None, false),
    r(
        "delete",
        "/v1/tap_services/{id}",
        "Delete a tap service no tap flow uses",
        Access::Tenant,
        None,
        false,
    ),
    r("get", "/v1/tap_flows", "List tap flows with their status", Access::Tenant, None, true),
    r(
        "post",
        "/v1/tap_flows",
        "Create a tap flow; the same name and content again gives it back",
        Access::Tenant,
        Some("TapFlowSpec"),
        false,
    ),
    r(
        "get",
        "/v1/tap_flows/{id}",
        "Show a tap flow: where it is active, last reprogramming time",
        Access::Tenant,
        None,
        false,
    ),
    r("delete", "/v1/tap_flows/{id}", "Delete a tap flow", Access::Tenant, None, false),
    r("get", "/v1/tenants", "List tenants (a tenant sees itself)", Access::Tenant, None, false),
    r(
        "get",
        "/v1/tenants/{name}",
        "Show a tenant's allow-list and quotas",
        Access::Tenant,
        None,
        false,
    ),
    r(
        "put",
        "/v1/tenants/{name}",
        "Create or replace a tenant's allow-list and quotas",
        Access::Operator,
        Some("TenantSpec"),
        false,
    ),
    r(
        "delete",
        "/v1/tenants/{name}",
        "Delete a tenant that has no tap services",
        Access::Operator,
        None,
        false,
    ),
    r(
        "get",
        "/v1/interfaces/{iface_id}",
        "Where an interface is now, and its owner",
        Access::Tenant,
        None,
        false,
    ),
    r(
        "put",
        "/v1/interfaces/{iface_id}",
        "Register an interface to a tenant",
        Access::Operator,
        Some("InterfaceOwner"),
        false,
    ),
    r(
        "get",
        "/v1/tokens",
        "List tokens (names and roles, never the tokens)",
        Access::Operator,
        None,
        false,
    ),
    r(
        "post",
        "/v1/tokens",
        "Make a token; the answer holds it, once",
        Access::Operator,
        Some("TokenSpec"),
        false,
    ),
    r(
        "delete",
        "/v1/tokens/{name}",
        "Revoke a token made through the API",
        Access::Operator,
        None,
        false,
    ),
    r("get", "/v1/audit", "The audit trail, oldest first", Access::Operator, None, true),
    r("get", "/v1/topology", "The live topology graph", Access::Operator, None, false),
    r("get", "/v1/log", "The controller's log level", Access::Operator, None, false),
    r(
        "put",
        "/v1/log",
        "Sets the controller's log level: {\"level\": \"debug\"}",
        Access::Operator,
        None,
        false,
    ),
    r(
        "get",
        "/v1/events",
        "Recent events (topology, switches, reprogramming); ?since=<next of the last read>&limit=",
        Access::Operator,
        None,
        false,
    ),
    r("get", "/v1/switches", "Connected bridges", Access::Operator, None, false),
    r(
        "get",
        "/v1/switches/{dpid}/flows",
        "The flows the switch holds, read from it now, as ovs-ofctl dump-flows lines (?ours=true: periscope's only)",
        Access::Operator,
        None,
        false,
    ),
    r(
        "get",
        "/v1/switches/{dpid}/trace",
        "Where the switch's flows, read from it now, send a packet (?packet=<fields in ovs-ofctl syntax>)",
        Access::Operator,
        None,
        false,
    ),
    r(
        "get",
        "/v1/switches/{dpid}/diff",
        "Periscope's flows on the switch, read from it now, against the ones it should hold: missing, unexpected, different",
        Access::Operator,
        None,
        false,
    ),
    r("get", "/v1/stats", "Counters and reprogramming times", Access::Operator, None, false),
    r("get", "/v1/cluster", "This instance's standing in the leader election", Access::Operator, None, false),
    r("get", "/v1/openapi.json", "This document", Access::Public, None, false),
    r("get", "/metrics", "Prometheus metrics (text format 0.0.4)", Access::Operator, None, false),
];

fn object(fields: &[FieldDoc], extra: Map<String, Value>) -> Value {
    let mut props: Map<String, Value> =
        fields.iter().map(|f| (f.name.to_string(), f.schema())).collect();
    props.extend(extra);
    let required: Vec<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
    json!({ "type": "object", "additionalProperties": false, "properties": props, "required": required })
}

fn schemas() -> Value {
    let source = json!({
        "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": false,
        "properties": {
            "iface_id": {"type": "string", "description": "one interface, by external_ids:iface-id"},
            "vm": {"type": "string", "description": "every interface of a VM, by external_ids:vm-uuid"},
            "selector": {"type": "object", "additionalProperties": {"type": "string"},
                         "description": "every interface whose external_ids hold these pairs, now or later"}
        }
    });
    let mut flow_extra = Map::new();
    flow_extra.insert("source".into(), source);
    flow_extra.insert("filter".into(), object(FILTER_FIELDS, Map::new()));
    let mut flow = object(FLOW_FIELDS, flow_extra);
    if let Some(r) = flow["required"].as_array_mut() {
        r.push(json!("source"));
    }
    json!({
        "TapServiceSpec": object(SERVICE_FIELDS, Map::new()),
        "TapFlowSpec": flow,
        "TenantSpec": {
            "type": "object", "additionalProperties": false, "required": ["allowed_collectors"],
            "properties": {
                "allowed_collectors": {"type": "array", "items": {"type": "string", "example": "192.0.2.0/24"}},
                "max_tap_services": {"type": "integer", "minimum": 0},
                "max_tap_flows": {"type": "integer", "minimum": 0}
            }
        },
        "InterfaceOwner": {
            "type": "object", "additionalProperties": false, "required": ["tenant"],
            "properties": {"tenant": {"type": "string"}}
        },
        "TokenSpec": {
            "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "role": {"type": "string", "enum": ["operator", "tenant"]},
                "tenant": {"type": "string"}
            }
        },
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}
                }
            }}
        }
    })
}

fn operation(route: &Route) -> Value {
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if route.list {
        for (name, schema) in [
            ("tenant", json!({"type": "string"})),
            ("name", json!({"type": "string"})),
            ("limit", json!({"type": "integer", "minimum": 1, "maximum": super::api::MAX_PAGE})),
            (
                "marker",
                json!({"type": "integer", "description": "the last id of the previous page"}),
            ),
        ] {
            params.push(json!({"name": name, "in": "query", "required": false, "schema": schema}));
        }
    }
    let error = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = json!({
        "200": {"description": "done", "content": {"application/json": {}}},
        "400": error.clone(), "404": error.clone()
    });
    if route.path == "/metrics" {
        responses["200"]["content"] = json!({ super::metrics::CONTENT_TYPE: {} });
    }
    if route.access != Access::Public {
        responses["401"] = error.clone();
        responses["403"] = error.clone();
    }
    if route.method == "post" || route.method == "put" {
        responses["201"] = json!({"description": "created", "content": {"application/json": {}}});
        responses["409"] = error.clone();
    }
    let mut op = json!({
        "summary": route.summary,
        "operationId": format!("{}{}", route.method, route.path.replace(['/', '{', '}', '.'], "_")),
        "parameters": params,
        "responses": responses,
    });
    match route.access {
        Access::Public => op["security"] = json!([]),
        Access::Operator => op["x-periscope-access"] = json!("operator"),
        Access::Tenant => op["x-periscope-access"] = json!("tenant"),
    }
    if let Some(b) = route.body {
        op["requestBody"] = json!({"required": true, "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{b}")}}}});
    }
    op
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path).or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
    }
    paths.extend(super::taas::openapi_paths());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "periscope northbound API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tenant traffic mirrors (tap services and tap flows) that follow VMs across live migration."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "x-auth-token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
            },
            "schemas": schemas()
        },
        "paths": paths,
    })
}
