//! The REST API: JSON over HTTP/1.1. Each request is validated here, then handed to the core as
//! an [`ApiCall`]; the core, which owns all state, answers with an [`ApiReply`].

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use slog::{debug, info, warn, Logger};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::model::{FieldError, TapFlowId, TapFlowSpec, TapServiceId, TapServiceSpec};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// A request for the core.
#[derive(Debug)]
pub enum ApiCall {
    /// `GET /v1/tap_services`.
    ListServices,
    /// `GET /v1/tap_services/{id}`.
    GetService(TapServiceId),
    /// `POST /v1/tap_services`.
    CreateService(TapServiceSpec),
    /// `DELETE /v1/tap_services/{id}`.
    DeleteService(TapServiceId),
    /// `GET /v1/tap_flows`.
    ListFlows,
    /// `GET /v1/tap_flows/{id}`.
    GetFlow(TapFlowId),
    /// `POST /v1/tap_flows`.
    CreateFlow(TapFlowSpec),
    /// `DELETE /v1/tap_flows/{id}`.
    DeleteFlow(TapFlowId),
    /// `GET /v1/topology`.
    Topology,
    /// `GET /v1/interfaces/{iface_id}`.
    Interface(String),
    /// `GET /v1/switches`.
    Switches,
    /// `GET /v1/stats`.
    Stats,
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

    /// An error status with `{"error": message, ...detail}`.
    pub fn error(status: u16, message: impl std::fmt::Display, detail: Value) -> Self {
        let mut body = json!({ "error": message.to_string() });
        if let (Some(b), Value::Object(d)) = (body.as_object_mut(), detail) {
            b.extend(d);
        }
        ApiReply { status, body }
    }

    fn bad_field(e: FieldError) -> Self {
        let detail = serde_json::to_value(&e).unwrap_or(Value::Null);
        ApiReply::error(400, &e, detail)
    }
}

/// A call on its way to the core, with where to answer.
pub type Envelope = (ApiCall, oneshot::Sender<ApiReply>);

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, core: mpsc::Sender<Envelope>, log: Logger) {
    if let Ok(a) = listener.local_addr() {
        info!(log, "API listening"; "on" => %a);
    }
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(log, "API accept failed"; "error" => %e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (core, log) = (core.clone(), log.clone());
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req| handle(req, peer, core.clone(), log.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    core: mpsc::Sender<Envelope>,
    log: Logger,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let reply = match route(req).await {
        Ok(call) => ask(&core, call).await,
        Err(reply) => reply,
    };
    debug!(log, "API request"; "peer" => %peer, "method" => %method, "path" => &path, "status" => reply.status);
    let body = serde_json::to_vec_pretty(&reply.body).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

async fn ask(core: &mpsc::Sender<Envelope>, call: ApiCall) -> ApiReply {
    let (tx, rx) = oneshot::channel();
    if core.send((call, tx)).await.is_err() {
        return ApiReply::error(503, "the controller is shutting down", Value::Null);
    }
    rx.await
        .unwrap_or_else(|_| ApiReply::error(503, "the controller is shutting down", Value::Null))
}

fn parse_id(s: &str, what: &str) -> Result<u64, ApiReply> {
    s.parse().map_err(|_| {
        ApiReply::error(
            404,
            format!("{what} {s:?} not found"),
            json!({ "expected": "a numeric id" }),
        )
    })
}

async fn body_json(req: Request<Incoming>) -> Result<Value, ApiReply> {
    let bytes = Limited::new(req.into_body(), MAX_BODY).collect().await.map_err(|e| {
        ApiReply::error(
            413,
            format!("request body unreadable or over {MAX_BODY} bytes: {e}"),
            Value::Null,
        )
    })?;
    serde_json::from_slice(&bytes.to_bytes())
        .map_err(|e| ApiReply::error(400, format!("request body is not JSON: {e}"), Value::Null))
}

async fn route(req: Request<Incoming>) -> Result<ApiCall, ApiReply> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    let not_allowed = |allowed: &str| {
        ApiReply::error(
            405,
            format!("{method} is not allowed on {path}"),
            json!({ "allowed": allowed }),
        )
    };
    match parts.as_slice() {
        ["v1", "tap_services"] => match method {
            Method::GET => Ok(ApiCall::ListServices),
            Method::POST => {
                let v = body_json(req).await?;
                TapServiceSpec::from_json(&v)
                    .map(ApiCall::CreateService)
                    .map_err(ApiReply::bad_field)
            }
            _ => Err(not_allowed("GET, POST")),
        },
        ["v1", "tap_services", id] => {
            let id = TapServiceId(parse_id(id, "tap service")?);
            match method {
                Method::GET => Ok(ApiCall::GetService(id)),
                Method::DELETE => Ok(ApiCall::DeleteService(id)),
                _ => Err(not_allowed("GET, DELETE")),
            }
        }
        ["v1", "tap_flows"] => match method {
            Method::GET => Ok(ApiCall::ListFlows),
            Method::POST => {
                let v = body_json(req).await?;
                TapFlowSpec::from_json(&v).map(ApiCall::CreateFlow).map_err(ApiReply::bad_field)
            }
            _ => Err(not_allowed("GET, POST")),
        },
        ["v1", "tap_flows", id] => {
            let id = TapFlowId(parse_id(id, "tap flow")?);
            match method {
                Method::GET => Ok(ApiCall::GetFlow(id)),
                Method::DELETE => Ok(ApiCall::DeleteFlow(id)),
                _ => Err(not_allowed("GET, DELETE")),
            }
        }
        ["v1", "topology"] if method == Method::GET => Ok(ApiCall::Topology),
        ["v1", "switches"] if method == Method::GET => Ok(ApiCall::Switches),
        ["v1", "stats"] if method == Method::GET => Ok(ApiCall::Stats),
        ["v1", "interfaces", iface] if method == Method::GET => {
            Ok(ApiCall::Interface(iface.to_string()))
        }
        ["v1", "topology"] | ["v1", "switches"] | ["v1", "interfaces", _] => {
            Err(not_allowed("GET"))
        }
        _ => Err(ApiReply::error(
            404,
            format!("no such resource: {path}"),
            json!({ "resources": ["/v1/tap_services", "/v1/tap_flows", "/v1/topology", "/v1/interfaces/{iface_id}", "/v1/switches", "/v1/stats"] }),
        )),
    }
}
