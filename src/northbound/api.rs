//! The REST API: JSON over HTTP/1.1. Each request is validated here, then handed to the core as
//! an [`ApiCall`]; the core, which owns all state, answers with an [`ApiReply`].

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use slog::{debug, info, warn, Logger};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use periscope_codec::openflow::ofctl::parse_match;
use periscope_codec::openflow::{Dpid, Match};

use super::auth::TokenHash;
use super::model::{TapFlowId, TapServiceId};
use crate::tls::TlsConfig;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// Time a client has to send a request's headers (also what an idle kept-alive connection
/// gets before the next request), and then its body: a client that trickles bytes or sends
/// nothing must not hold a connection, and a file descriptor, forever.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Which part of a list a caller wants: `?tenant=&name=&limit=&marker=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only objects of this tenant.
    pub tenant: Option<String>,
    /// Only objects of this name.
    pub name: Option<String>,
    /// At most this many (sorted by id).
    pub limit: Option<usize>,
    /// Only objects with an id above this one (the last id of the previous page).
    pub marker: Option<u64>,
}

/// Most objects one page holds, and the page size when none is asked for.
pub const MAX_PAGE: usize = 1000;

impl Query {
    fn parse(q: Option<&str>) -> Result<Query, ApiReply> {
        let mut out = Query::default();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            let bad = |expected: &str| {
                ApiReply::fail(
                    400,
                    "bad_query",
                    format!("bad query parameter {k}={v:?}; expected {expected}"),
                    Some(k),
                    Value::Null,
                )
            };
            match k {
                "tenant" => out.tenant = Some(v.clone()),
                "name" => out.name = Some(v.clone()),
                "limit" => {
                    out.limit = Some(
                        v.parse()
                            .ok()
                            .filter(|n| (1..=MAX_PAGE).contains(n))
                            .ok_or_else(|| bad(&format!("an integer from 1 to {MAX_PAGE}")))?,
                    )
                }
                "marker" => out.marker = Some(v.parse().map_err(|_| bad("the id of an object"))?),
                _ => return Err(bad("one of tenant, name, limit, marker")),
            }
        }
        Ok(out)
    }

    /// Keeps the objects this query selects, given each one's id, tenant and name.
    pub fn page<T>(&self, items: impl Iterator<Item = (u64, String, String, T)>) -> Vec<T> {
        items
            .filter(|(id, t, n, _)| {
                self.marker.is_none_or(|m| *id > m)
                    && self.tenant.as_ref().is_none_or(|q| q == t)
                    && self.name.as_ref().is_none_or(|q| q == n)
            })
            .take(self.limit.unwrap_or(MAX_PAGE))
            .map(|(_, _, _, x)| x)
            .collect()
    }
}

/// Decodes `%XX` escapes; anything else, a malformed escape included, stays as it is.
pub(crate) fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request for the core.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ApiCall {
    /// `GET /v1/tap_services`.
    ListServices(Query),
    /// `GET /v1/tap_services/{id}`.
    GetService(TapServiceId),
    /// `POST /v1/tap_services`, with its body.
    CreateService(Value),
    /// `DELETE /v1/tap_services/{id}`.
    DeleteService(TapServiceId),
    /// `GET /v1/tap_flows`.
    ListFlows(Query),
    /// `GET /v1/tap_flows/{id}`.
    GetFlow(TapFlowId),
    /// `POST /v1/tap_flows`, with its body.
    CreateFlow(Value),
    /// `DELETE /v1/tap_flows/{id}`.
    DeleteFlow(TapFlowId),
    /// `GET /v1/topology`.
    Topology,
    /// `GET /v1/interfaces/{iface_id}`.
    Interface(String),
    /// `PUT /v1/interfaces/{iface_id}`: register it to a tenant.
    PutInterface(String, Value),
    /// `GET /v1/switches`.
    Switches,
    /// `GET /v1/stats`.
    Stats,
    /// `GET /v1/cluster`: this instance's standing among the controllers sharing the bridges.
    Cluster,
    /// `GET /metrics`: the Prometheus text exposition (the reply's body is its text).
    Metrics,
    /// `GET /v1/switches/{dpid}/flows[?ours=true]`: the flows the switch holds, read from it now.
    SwitchFlows {
        /// The switch.
        dpid: Dpid,
        /// Only the flows with periscope's cookie.
        ours: bool,
    },
    /// `GET /v1/switches/{dpid}/diff`: the flows of ours the switch holds now against the ones
    /// it should hold.
    SwitchDiff(Dpid),
    /// `GET /v1/log`: the log level.
    GetLog,
    /// `PUT /v1/log` `{"level": ...}`: sets the log level (not audited: it changes no tap).
    PutLog(Value),
    /// `GET /v1/events?since=&limit=`: the recent events, those after `since` when given.
    Events {
        /// Only the events numbered above this.
        since: Option<u64>,
        /// At most this many.
        limit: usize,
    },
    /// `GET /v1/switches/{dpid}/trace?packet=<ovs-ofctl match>`: where the switch's flows, read
    /// now, send such a packet.
    SwitchTrace {
        /// The switch.
        dpid: Dpid,
        /// The packet's fields.
        packet: Box<Match>,
    },
    /// `GET /v1/tenants`.
    ListTenants,
    /// `GET /v1/tenants/{name}`.
    GetTenant(String),
    /// `PUT /v1/tenants/{name}`.
    PutTenant(String, Value),
    /// `DELETE /v1/tenants/{name}`.
    DeleteTenant(String),
    /// `GET /v1/tokens`.
    ListTokens,
    /// `POST /v1/tokens`.
    CreateToken(Value),
    /// `DELETE /v1/tokens/{name}`.
    DeleteToken(String),
    /// `GET /v1/audit`.
    Audit(Query),
}

impl ApiCall {
    /// Whether the call may change the desired state.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            ApiCall::CreateService(_)
                | ApiCall::DeleteService(_)
                | ApiCall::CreateFlow(_)
                | ApiCall::DeleteFlow(_)
                | ApiCall::PutInterface(..)
                | ApiCall::PutTenant(..)
                | ApiCall::DeleteTenant(_)
                | ApiCall::CreateToken(_)
                | ApiCall::DeleteToken(_)
        )
    }
}

/// A call with the caller's credentials: the hash of the token it presented, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// `Authorization: Bearer <token>` (or `X-Auth-Token`), hashed.
    pub token: Option<TokenHash>,
    /// What it asks.
    pub call: ApiCall,
}

/// The core's answer: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiReply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl ApiReply {
    /// 200 with a body.
    pub fn ok(body: Value) -> Self {
        ApiReply { status: 200, body }
    }

    /// An error: `{"error": {"code", "message", "field"?, ...detail}}`.
    pub fn fail(
        status: u16,
        code: &str,
        message: impl std::fmt::Display,
        field: Option<&str>,
        detail: Value,
    ) -> Self {
        let mut e = json!({ "code": code, "message": message.to_string() });
        if let Some(f) = field {
            e["field"] = json!(f);
        }
        if let (Some(b), Value::Object(d)) = (e.as_object_mut(), detail) {
            b.extend(d);
        }
        ApiReply { status, body: json!({ "error": e }) }
    }

    /// The error's code, if this is an error.
    pub fn code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }
}

/// A call on its way to the core, with where to answer.
pub type Envelope = (ApiRequest, oneshot::Sender<ApiReply>);

/// Serves the API on `listener` until the task is dropped; over HTTPS with `tls` (whose files
/// are reloaded when they change; callers show a token, not a certificate).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    core: mpsc::Sender<Envelope>,
    log: Logger,
) {
    if let Ok(a) = listener.local_addr() {
        info!(log, "API listening"; "on" => %a, "https" => tls.is_some());
    }
    loop {
        match (listener.accept().await, &tls) {
            (Ok((stream, peer)), None) => connection(stream, peer.to_string(), &core, &log),
            (Ok((stream, peer)), Some(tls)) => {
                // The handshake runs in a task of its own: a slow client holds up no other.
                let (acceptor, core, log) = (tls.api_acceptor(), core.clone(), log.clone());
                tokio::spawn(async move {
                    let peer = format!("https:{peer}");
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => connection(s, peer, &core, &log),
                        Ok(Err(e)) => info!(log, "API client refused";
                            "error" => %crate::tls::handshake_error(&peer, e)),
                        Err(_) => info!(log, "API client refused";
                            "peer" => peer, "error" => "TLS handshake timed out"),
                    }
                });
            }
            (Err(e), _) => accept_failed(&log, e).await,
        }
    }
}

/// How long an API client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the API on a unix socket (the same calls and tokens as over TCP) until the task is
/// dropped.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    core: mpsc::Sender<Envelope>,
    log: Logger,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => connection(stream, "unix".to_string(), &core, &log),
            Err(e) => accept_failed(&log, e).await,
        }
    }
}

async fn accept_failed(log: &Logger, e: std::io::Error) {
    warn!(log, "API accept failed"; "error" => %e);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// Serves one connection in a task of its own.
fn connection<S>(stream: S, peer: String, core: &mpsc::Sender<Envelope>, log: &Logger)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (core, log) = (core.clone(), log.clone());
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| {
            handle(req, peer.clone(), core.clone(), log.clone())
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(REQUEST_TIMEOUT)
            .serve_connection(TokioIo::new(stream), svc)
            .await;
    });
}

async fn handle(
    req: Request<Incoming>,
    peer: String,
    core: mpsc::Sender<Envelope>,
    log: Logger,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let token = credentials(&req);
    let mut text = false;
    let reply = if super::taas::is_taas(&path) {
        super::taas::serve(req, token, &core).await
    } else {
        match route(req).await {
            Ok(call) => {
                text = call == ApiCall::Metrics;
                ask(&core, ApiRequest { token, call }).await
            }
            Err(reply) => reply,
        }
    };
    debug!(log, "API request"; "peer" => %peer, "method" => %method, "path" => &path, "status" => reply.status);
    // The metrics are text; a 204 (a TaaS deletion) has no body; anything else, errors
    // included, is JSON.
    let (body, content_type) = match &reply.body {
        _ if reply.status == 204 => (Vec::new(), "application/json"),
        Value::String(t) if text && reply.status == 200 => {
            (t.clone().into_bytes(), super::metrics::CONTENT_TYPE)
        }
        b => (serde_json::to_vec_pretty(b).unwrap_or_default(), "application/json"),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    if reply.status == 401 {
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"periscope\""),
        );
    }
    Ok(resp)
}

/// The token a request presents, hashed: `Authorization: Bearer <token>`, or OpenStack's
/// `X-Auth-Token: <token>`.
fn credentials<B>(req: &Request<B>) -> Option<TokenHash> {
    let h = req.headers();
    let bearer = h
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let token = bearer.or_else(|| h.get("x-auth-token").and_then(|v| v.to_str().ok()))?;
    Some(TokenHash::of(token.trim()))
}

fn shutting_down() -> ApiReply {
    ApiReply::fail(503, "unavailable", "the controller is shutting down", None, Value::Null)
}

pub(crate) async fn ask(core: &mpsc::Sender<Envelope>, req: ApiRequest) -> ApiReply {
    let (tx, rx) = oneshot::channel();
    if core.send((req, tx)).await.is_err() {
        return shutting_down();
    }
    rx.await.unwrap_or_else(|_| shutting_down())
}

fn parse_id(s: &str, what: &str) -> Result<u64, ApiReply> {
    s.parse().map_err(|_| {
        ApiReply::fail(
            404,
            "not_found",
            format!("{what} {s:?} not found"),
            None,
            json!({ "expected": "a numeric id" }),
        )
    })
}

/// A dpid in a path: 16 hex digits as Open vSwitch writes it (`0x` and fewer digits taken).
fn parse_dpid(s: &str) -> Result<Dpid, ApiReply> {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(hex, 16).ok().filter(|_| hex.len() <= 16).map(Dpid).ok_or_else(|| {
        ApiReply::fail(
            404,
            "not_found",
            format!("switch {s:?} not found"),
            None,
            json!({ "expected": "a dpid of up to 16 hex digits, as ovs-ofctl shows it" }),
        )
    })
}

/// The query of `GET /v1/events`: `since=N` (the `next` of the previous read), `limit=N`.
fn events_query(q: Option<&str>) -> Result<ApiCall, ApiReply> {
    let (mut since, mut limit) = (None, 100);
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |expected: &str| {
            ApiReply::fail(
                400,
                "bad_query",
                format!("bad query parameter {k}={v:?}; expected {expected}"),
                Some(k),
                Value::Null,
            )
        };
        match k {
            "since" => since = Some(v.parse().map_err(|_| bad("the number of an event"))?),
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| bad("an integer from 1 to 500"))?
            }
            _ => return Err(bad("one of since, limit")),
        }
    }
    Ok(ApiCall::Events { since, limit })
}

/// The query of a trace: `packet=<fields in ovs-ofctl syntax>`.
fn packet(q: Option<&str>) -> Result<Match, ApiReply> {
    let bad = |message: String| {
        ApiReply::fail(
            400,
            "bad_packet",
            message,
            Some("packet"),
            json!({ "expected": "packet=<fields in ovs-ofctl syntax>, e.g. in_port=1,dl_dst=02:00:00:00:00:01" }),
        )
    };
    let mut text = None;
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("packet", v)) => text = Some(percent_decode(&v.replace('+', " "))),
            _ => return Err(bad(format!("unknown query parameter {pair:?}"))),
        }
    }
    let text = text.ok_or_else(|| bad("the packet is missing".into()))?;
    parse_match(&text).map_err(|e| bad(format!("packet {text:?}: {e}")))
}

/// The query of a flow dump: nothing, or `ours=true|false`.
fn ours(q: Option<&str>) -> Result<bool, ApiReply> {
    let mut ours = false;
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        ours = match pair.split_once('=').unwrap_or((pair, "")) {
            ("ours", "true" | "1" | "") => true,
            ("ours", "false" | "0") => false,
            (k, v) => {
                return Err(ApiReply::fail(
                    400,
                    "bad_query",
                    format!("bad query parameter {k}={v:?}; expected ours=true or ours=false"),
                    Some(k),
                    Value::Null,
                ))
            }
        };
    }
    Ok(ours)
}

pub(crate) async fn body_json<B>(req: Request<B>) -> Result<Value, ApiReply>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let collect = Limited::new(req.into_body(), MAX_BODY).collect();
    let bytes = match tokio::time::timeout(REQUEST_TIMEOUT, collect).await {
        Ok(read) => read.map_err(|e| {
            ApiReply::fail(
                413,
                "too_large",
                format!("request body unreadable or over {MAX_BODY} bytes: {e}"),
                None,
                Value::Null,
            )
        })?,
        Err(_) => {
            return Err(ApiReply::fail(
                408,
                "timeout",
                format!("request body not received within {REQUEST_TIMEOUT:?}"),
                None,
                Value::Null,
            ))
        }
    };
    serde_json::from_slice(&bytes.to_bytes()).map_err(|e| {
        ApiReply::fail(400, "bad_json", format!("request body is not JSON: {e}"), None, Value::Null)
    })
}

/// The resources, for a caller who asked for one that does not exist.
const RESOURCES: &[&str] = &[
    "/v1/tap_services",
    "/v1/tap_flows",
    "/v1/tenants",
    "/v1/tokens",
    "/v1/audit",
    "/v1/events",
    "/v1/log",
    "/v1/topology",
    "/v1/interfaces/{iface_id}",
    "/v1/switches",
    "/v1/switches/{dpid}/flows",
    "/v1/switches/{dpid}/diff",
    "/v1/switches/{dpid}/trace",
    "/v1/stats",
    "/v1/cluster",
    "/v1/openapi.json",
    "/metrics",
];

/// Routes a `/v1` request: the call for the core, or the answer at once (a refusal, or a
/// document that needs no state). Pure but for reading the body.
pub async fn route<B>(req: Request<B>) -> Result<ApiCall, ApiReply>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<String> = path.split('/').skip(1).map(percent_decode).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let query = || Query::parse(req.uri().query());
    let not_allowed = |allowed: &str| {
        ApiReply::fail(
            405,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
            None,
            json!({ "allowed": allowed }),
        )
    };
    match (parts.as_slice(), &method) {
        (["v1", "openapi.json"], &Method::GET) => Err(ApiReply::ok(super::openapi::document())),
        (["v1", "tap_services"], &Method::GET) => Ok(ApiCall::ListServices(query()?)),
        (["v1", "tap_services"], &Method::POST) => {
            Ok(ApiCall::CreateService(body_json(req).await?))
        }
        (["v1", "tap_services"], _) => Err(not_allowed("GET, POST")),
        (["v1", "tap_services", id], m) => {
            let id = TapServiceId(parse_id(id, "tap service")?);
            match *m {
                Method::GET => Ok(ApiCall::GetService(id)),
                Method::DELETE => Ok(ApiCall::DeleteService(id)),
                _ => Err(not_allowed("GET, DELETE")),
            }
        }
        (["v1", "tap_flows"], &Method::GET) => Ok(ApiCall::ListFlows(query()?)),
        (["v1", "tap_flows"], &Method::POST) => Ok(ApiCall::CreateFlow(body_json(req).await?)),
        (["v1", "tap_flows"], _) => Err(not_allowed("GET, POST")),
        (["v1", "tap_flows", id], m) => {
            let id = TapFlowId(parse_id(id, "tap flow")?);
            match *m {
                Method::GET => Ok(ApiCall::GetFlow(id)),
                Method::DELETE => Ok(ApiCall::DeleteFlow(id)),
                _ => Err(not_allowed("GET, DELETE")),
            }
        }
        (["v1", "tenants"], &Method::GET) => Ok(ApiCall::ListTenants),
        (["v1", "tenants"], _) => Err(not_allowed("GET")),
        (["v1", "tenants", name], &Method::GET) => Ok(ApiCall::GetTenant(name.to_string())),
        (["v1", "tenants", name], &Method::PUT) => {
            Ok(ApiCall::PutTenant(name.to_string(), body_json(req).await?))
        }
        (["v1", "tenants", name], &Method::DELETE) => Ok(ApiCall::DeleteTenant(name.to_string())),
        (["v1", "tenants", _], _) => Err(not_allowed("GET, PUT, DELETE")),
        (["v1", "tokens"], &Method::GET) => Ok(ApiCall::ListTokens),
        (["v1", "tokens"], &Method::POST) => Ok(ApiCall::CreateToken(body_json(req).await?)),
        (["v1", "tokens"], _) => Err(not_allowed("GET, POST")),
        (["v1", "tokens", name], &Method::DELETE) => Ok(ApiCall::DeleteToken(name.to_string())),
        (["v1", "tokens", _], _) => Err(not_allowed("DELETE")),
        (["v1", "audit"], &Method::GET) => Ok(ApiCall::Audit(query()?)),
        (["v1", "topology"], &Method::GET) => Ok(ApiCall::Topology),
        (["v1", "events"], &Method::GET) => events_query(req.uri().query()),
        (["v1", "log"], &Method::GET) => Ok(ApiCall::GetLog),
        (["v1", "log"], &Method::PUT) => Ok(ApiCall::PutLog(body_json(req).await?)),
        (["v1", "log"], _) => Err(not_allowed("GET, PUT")),
        (["v1", "switches"], &Method::GET) => Ok(ApiCall::Switches),
        (["v1", "switches", dpid, "flows"], &Method::GET) => {
            Ok(ApiCall::SwitchFlows { dpid: parse_dpid(dpid)?, ours: ours(req.uri().query())? })
        }
        (["v1", "switches", dpid, "diff"], &Method::GET) => {
            Ok(ApiCall::SwitchDiff(parse_dpid(dpid)?))
        }
        (["v1", "switches", dpid, "trace"], &Method::GET) => Ok(ApiCall::SwitchTrace {
            dpid: parse_dpid(dpid)?,
            packet: Box::new(packet(req.uri().query())?),
        }),
        (["v1", "switches", _, "flows" | "diff" | "trace"], _) => Err(not_allowed("GET")),
        (["v1", "stats"], &Method::GET) => Ok(ApiCall::Stats),
        (["v1", "cluster"], &Method::GET) => Ok(ApiCall::Cluster),
        (["metrics"], &Method::GET) => Ok(ApiCall::Metrics),
        (["metrics"], _) => Err(not_allowed("GET")),
        (["v1", "interfaces", iface], &Method::GET) => Ok(ApiCall::Interface(iface.to_string())),
        (["v1", "interfaces", iface], &Method::PUT) => {
            Ok(ApiCall::PutInterface(iface.to_string(), body_json(req).await?))
        }
        (["v1", "interfaces", _], _) => Err(not_allowed("GET, PUT")),
        (["v1", "audit" | "events" | "topology" | "switches" | "stats" | "openapi.json"], _) => {
            Err(not_allowed("GET"))
        }
        _ => Err(ApiReply::fail(
            404,
            "not_found",
            format!("no such resource: {path}"),
            None,
            json!({ "resources": RESOURCES }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{FILTER_FIELDS, FLOW_FIELDS, SERVICE_FIELDS};
    use super::super::openapi::{document, ROUTES};
    use super::*;

    fn request(method: &str, path: &str, body: &str) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method.to_ascii_uppercase().as_str())
            .uri(path)
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request")
    }

    fn routed(method: &str, path: &str) -> Result<ApiCall, ApiReply> {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        rt.block_on(route(request(method, path, "{}")))
    }

    #[test]
    fn every_documented_operation_is_routed_and_every_route_documented() {
        for r in ROUTES {
            let path = r
                .path
                .replace("{id}", "7")
                .replace("{name}", "bank-a")
                .replace("{iface_id}", "p1")
                .replace("{dpid}", "00000000000000aa")
                + if r.path.ends_with("/trace") { "?packet=in_port=1" } else { "" };
            match routed(r.method, &path) {
                Ok(_) => {}
                Err(reply) => {
                    assert_eq!(reply.status, 200, "{} {}: {}", r.method, r.path, reply.body)
                }
            }
        }
        // What the router takes is documented: every path the router knows answers 404 only
        // for ids, and unknown paths are listed nowhere.
        let doc = document();
        for path in RESOURCES {
            assert!(doc["paths"][path].is_object(), "{path} is not documented");
        }
        assert_eq!(routed("get", "/v1/nothing").err().map(|r| r.status), Some(404));
        assert_eq!(routed("patch", "/v1/tap_flows").err().map(|r| r.status), Some(405));
        assert_eq!(
            routed("get", "/v1/switches/0x1f/flows?ours=true").ok(),
            Some(ApiCall::SwitchFlows { dpid: Dpid(0x1f), ours: true })
        );
        assert_eq!(routed("get", "/v1/switches/br-int/flows").err().map(|r| r.status), Some(404));
        assert_eq!(routed("get", "/v1/switches/1/flows?all=1").err().map(|r| r.status), Some(400));
        let t = routed("get", "/v1/switches/1/trace?packet=in_port%3D3,dl_dst=02:00:00:00:00:01");
        assert!(
            matches!(t, Ok(ApiCall::SwitchTrace { ref packet, .. }) if packet.fields.len() == 2),
            "{t:?}"
        );
        let e = routed("get", "/v1/switches/1/trace?packet=in_prt=3").expect_err("typo");
        assert_eq!((e.status, e.code()), (400, Some("bad_packet")));
        assert!(
            e.body["error"]["message"].as_str().is_some_and(|m| m.contains("in_prt")),
            "{}",
            e.body
        );
    }

    #[test]
    fn the_documented_fields_are_the_parsers() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for (schema, table) in [("TapServiceSpec", SERVICE_FIELDS), ("TapFlowSpec", FLOW_FIELDS)] {
            let props = schemas[schema]["properties"].as_object().expect("properties");
            let names: Vec<&str> = table.iter().map(|f| f.name).collect();
            let mut documented: Vec<&str> = props.keys().map(String::as_str).collect();
            documented.sort_unstable();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(documented, sorted, "{schema}");
        }
        let filter = schemas["TapFlowSpec"]["properties"]["filter"]["properties"]
            .as_object()
            .expect("filter properties");
        assert_eq!(filter.len(), FILTER_FIELDS.len());
        // A field the document does not list is refused by name.
        let e = super::super::model::TapServiceSpec::from_json(&json!({
            "name": "n", "tenant": "t", "encap": "gre", "remote_ip": "192.0.2.1", "colour": 1
        }))
        .expect_err("unknown field");
        assert_eq!(e.field, "colour");
    }

    #[test]
    fn queries_are_checked() {
        let q = Query::parse(Some("tenant=bank%2Da&limit=2&marker=5")).expect("valid");
        assert_eq!((q.tenant.as_deref(), q.limit, q.marker), (Some("bank-a"), Some(2), Some(5)));
        assert_eq!(
            Query::parse(Some("limit=0")).err().and_then(|r| r.code().map(str::to_string)),
            Some("bad_query".into())
        );
        assert!(Query::parse(Some("sort=id")).is_err());
        let items = (1..=5u64).map(|i| (i, "t".to_string(), format!("n{i}"), i));
        assert_eq!(q.page(items), Vec::<u64>::new(), "tenant filter");
        let q = Query::parse(Some("limit=2&marker=1")).expect("valid");
        let items = (1..=5u64).map(|i| (i, "t".to_string(), format!("n{i}"), i));
        assert_eq!(q.page(items), vec![2, 3]);
    }
}
