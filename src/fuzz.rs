//! The bodies of the fuzz targets, as plain functions: `cargo fuzz` (fuzz/) calls them with
//! libFuzzer's inputs, and `tests/fuzz_corpus.rs` replays the corpus kept in the repository
//! (`fuzz/corpus/<target>/`) and a bounded, seeded mutation of it through the same functions
//! on the stable toolchain. Each one takes bytes from a peer or a user; it must never panic,
//! and the invariants it asserts are the target's findings.

use std::sync::OnceLock;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use serde_json::{json, Value};
use tokio_util::codec::Decoder;

use periscope_codec::openflow::{frame_len, OfpMessage, OFP_VERSION_1_3};
use periscope_codec::ovsdb::JsonStream;
use periscope_topology::{HypervisorId, Topology, TopologyConfig};

use crate::northbound::api::{self, ApiCall, ApiReply};
use crate::northbound::auth::{Caller, Role, Tokens};
use crate::northbound::config::Quota;
use crate::northbound::db::Northbound;
use crate::northbound::rules::{tenant_from_json, Context, Outcome, Reserved};
use crate::northbound::taas::{self, Kind, Op};
use crate::openflow::framing::{FramingError, OfpCodec, MAX_FRAME};
use crate::openflow::session::{Session as OfSession, SessionConfig as OfSessionConfig};
use crate::ovsdb::session::{Session as DbSession, SessionConfig as DbSessionConfig};
use crate::ovsdb::{Phase as DbPhase, SessionEvent as DbEvent};

/// A fuzz target: its name (the directory of its corpus) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("openflow_roundtrip", openflow_roundtrip),
    ("openflow_session", openflow_session),
    ("ovsdb_stream", ovsdb_stream),
    ("ovsdb_session", ovsdb_session),
    ("api_request", api_request),
];

/// Any bytes that parse as an OpenFlow message emit bytes that parse back to the same value,
/// and emitting that value again gives the same bytes.
pub fn openflow_roundtrip(data: &[u8]) {
    if let Ok(m) = OfpMessage::parse(data) {
        let bytes = m.to_vec();
        let again = OfpMessage::parse(&bytes)
            .unwrap_or_else(|e| panic!("what we emit does not parse: {e}: {bytes:02x?}"));
        assert_eq!(again, m, "parse(emit(x)) == x");
        assert_eq!(again.to_vec(), bytes, "emit is stable");
    }
}

/// Bytes from a switch, split into frames by the driver's framing and fed to a session: the
/// session answers, errs or closes, and never panics; whatever it sends parses back.
pub fn openflow_session(data: &[u8]) {
    let now = Instant::now();
    let mut session = OfSession::new(now, OfSessionConfig::default());
    let mut codec = OfpCodec;
    let mut buf = BytesMut::new();
    // Two chunks, cut where the first byte says: framing must not depend on the chunking.
    let cut = data.first().map_or(0, |b| usize::from(*b).min(data.len()));
    for chunk in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => session.handle_frame(now, frame),
                Ok(None) => break,
                Err(FramingError::BadFrame(e)) => {
                    session.handle_bad_frame(&buf, &e);
                    buf.clear();
                    break;
                }
                Err(FramingError::Io(e)) => panic!("framing from memory cannot fail reading: {e}"),
            }
            drain_openflow(&mut session);
        }
    }
    drain_openflow(&mut session);
}

fn drain_openflow(session: &mut OfSession) {
    let mut wire = BytesMut::new();
    session.poll_transmit(&mut wire);
    loop {
        let len = match frame_len(&wire, MAX_FRAME) {
            Ok(Some(len)) if len <= wire.len() => len,
            Ok(_) => break,
            Err(e) => panic!("we sent what cannot be framed: {e}: {wire:02x?}"),
        };
        let bytes = wire.split_to(len);
        // HELLO_FAILED goes out in the peer's own version, which only the peer reads.
        if bytes[0] == OFP_VERSION_1_3 {
            assert!(
                OfpMessage::parse(&bytes).is_ok(),
                "we sent what we cannot parse: {bytes:02x?}"
            );
        }
    }
    assert!(wire.is_empty(), "we sent a partial message: {wire:02x?}");
    while session.poll_event().is_some() {}
}

/// Bytes fed to the OVSDB JSON-RPC stream splitter, in two chunks: it never panics, and every
/// message it yields re-encodes.
pub fn ovsdb_stream(data: &[u8]) {
    let cut = data.first().map_or(0, |b| usize::from(*b).min(data.len()));
    let mut s = JsonStream::new(1 << 16);
    for chunk in [&data[..cut], &data[cut..]] {
        if s.push(chunk).is_err() {
            return;
        }
        while let Ok(Some(m)) = s.next_message() {
            let mut out = Vec::new();
            m.emit(&mut out);
        }
    }
}

const VSWITCH_SCHEMA: &str = include_str!("../codec/tests/data/ovsdb/vswitch.ovsschema");

/// A session that has asked for its monitor, having read Open vSwitch's schema: made once, and
/// cloned for every input.
fn session_at_monitor() -> &'static DbSession {
    static SESSION: OnceLock<DbSession> = OnceLock::new();
    SESSION.get_or_init(|| {
        let now = Instant::now();
        let mut session =
            DbSession::new(now, HypervisorId::from("unix:fuzz"), DbSessionConfig::default());
        session.handle_connect(now);
        let schema: Value = serde_json::from_str(VSWITCH_SCHEMA).unwrap_or(Value::Null);
        while let Some(m) = session.poll_transmit() {
            if let periscope_codec::ovsdb::Message::Request(r) = m {
                if r.method == "get_schema" {
                    let reply = json!({"id": r.id, "result": schema, "error": null});
                    session.handle_input(now, reply.to_string().as_bytes());
                }
            }
        }
        while session.poll_transmit().is_some() {}
        while session.poll_event().is_some() {}
        assert_eq!(session.phase(), DbPhase::Monitor, "the harness's schema was not taken");
        session
    })
}

/// Bytes from an ovsdb-server once the session has its schema: the answer to the monitor
/// request (id 2) and the updates that follow, applied to the session's replica and the
/// topology changes applied to a graph. Never panics; a closed session stays closed.
pub fn ovsdb_session(data: &[u8]) {
    let now = Instant::now();
    let mut session = session_at_monitor().clone();
    let mut topology = Topology::new(TopologyConfig::default());
    let cut = data.first().map_or(0, |b| usize::from(*b).min(data.len()));
    for chunk in [&data[..cut], &data[cut..]] {
        session.handle_input(now, chunk);
        while session.poll_transmit().is_some() {}
        while let Some(ev) = session.poll_event() {
            match ev {
                DbEvent::Snapshot(c) => {
                    topology.apply(c);
                }
                DbEvent::Changes(cs) => {
                    topology.apply_batch(cs);
                }
                _ => {}
            }
        }
    }
}

/// A runtime for the router, which reads bodies under a timeout: made once.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("the fuzz harness needs a runtime: {e}"))
    })
}

/// The northbound state the API target starts from: tenant `bank-a` may send copies anywhere
/// in the documentation ranges.
fn api_state() -> Northbound {
    let mut nb = Northbound::default();
    let allowed = json!({"allowed_collectors": ["192.0.2.0/24", "198.51.100.0/24"]});
    if let Ok(t) = tenant_from_json("bank-a", &allowed) {
        nb.tenants.insert(t.name.clone(), t);
    }
    nb
}

/// Requests to the REST API, without sockets: each is routed (`/v1` or TaaS) as the server
/// routes it, and each write is decided by the rules, on a state that the accepted writes
/// change. Requests are separated by a 0 byte; each is `METHOD PATH[?QUERY]`, a newline, and
/// its JSON body; a request line starting with `tenant ` is made with bank-a's token, any
/// other with the operator's. Every answer is JSON with an error code where it refuses.
pub fn api_request(data: &[u8]) {
    let mut nb = api_state();
    let reserved = Reserved::default();
    for one in data.split(|b| *b == 0) {
        let (line, body) = match one.iter().position(|b| *b == b'\n') {
            Some(i) => (&one[..i], &one[i + 1..]),
            None => (one, &[][..]),
        };
        let line = String::from_utf8_lossy(line);
        let (caller, line) = match line.strip_prefix("tenant ") {
            Some(rest) => {
                (Caller { name: "fuzz-tenant".into(), role: Role::Tenant("bank-a".into()) }, rest)
            }
            None => (Caller::operator("fuzz-operator"), line.as_ref()),
        };
        let (method, path) = line.split_once(' ').unwrap_or((line, "/"));
        let Ok(req) = hyper::Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(Bytes::copy_from_slice(body)))
        else {
            continue;
        };
        let call = if taas::is_taas(req.uri().path()) {
            match runtime().block_on(taas::route(req)) {
                Ok(Op::Create(kind, body)) => match taas_to_v1(kind, &body) {
                    Ok(calls) => calls,
                    Err(reply) => {
                        check_reply(&reply);
                        continue;
                    }
                },
                Ok(_) => continue,
                Err(reply) => {
                    check_reply(&reply);
                    continue;
                }
            }
        } else {
            match runtime().block_on(api::route(req)) {
                Ok(call) => vec![call],
                Err(reply) => {
                    check_reply(&reply);
                    continue;
                }
            }
        };
        for call in call {
            let said = |_: &str| Some("bank-a".to_string());
            let cx = Context {
                nb: &nb,
                quota: Quota::default(),
                caller: &caller,
                now_ms: 0,
                iface_tenant: &said,
                reserved: &reserved,
            };
            let Some(outcome) = cx.write(call, &Tokens::default()) else { continue };
            match outcome {
                Outcome::Reply(r) => check_reply(&r),
                Outcome::Write(w) => {
                    check_reply(&w.reply);
                    // The rules decided it on this very state: it must apply.
                    if let Err(e) = nb.edit(w.edit) {
                        panic!("a write the rules decided does not apply: {e}");
                    }
                }
            }
        }
    }
}

/// The `/v1` calls a TaaS creation becomes.
fn taas_to_v1(kind: Kind, body: &Value) -> Result<Vec<ApiCall>, ApiReply> {
    Ok(match kind {
        Kind::Service => vec![ApiCall::CreateService(taas::service_to_v1(body)?)],
        Kind::Flow => vec![ApiCall::CreateFlow(taas::flow_to_v1(body)?)],
        Kind::Mirror => taas::MirrorSpec::from_taas(body)?
            .to_v1()
            .into_iter()
            .flat_map(|(_, service, flow)| {
                [ApiCall::CreateService(service), ApiCall::CreateFlow(flow)]
            })
            .collect(),
    })
}

/// An answer is a known status, and a refusal says why in a form its caller reads.
fn check_reply(r: &ApiReply) {
    assert!((200..600).contains(&r.status), "status {}", r.status);
    if r.status >= 400 {
        let v1 = r.code().is_some();
        let neutron = r.body.get("NeutronError").is_some_and(|e| e["message"].is_string());
        assert!(v1 || neutron, "a refusal without a reason: {} {}", r.status, r.body);
    }
}
