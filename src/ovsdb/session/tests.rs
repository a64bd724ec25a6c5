//! Session tests on a virtual clock, against a scripted ovsdb-server.

use std::time::{Duration, Instant};

use periscope_codec::ovsdb::{Datum, Operation, Row};
use periscope_topology::{EventKind, Topology, TopologyConfig};
use serde_json::{json, Value};

use super::*;

const SCHEMA: &str = include_str!("../../../codec/tests/data/ovsdb/vswitch.ovsschema");
const OVS: &str = "00000000-0000-0000-0000-0000000000a0";
const BR: &str = "00000000-0000-0000-0000-0000000000b1";
const PT: &str = "00000000-0000-0000-0000-0000000000c1";
const IF: &str = "00000000-0000-0000-0000-0000000000d1";
const PT2: &str = "00000000-0000-0000-0000-0000000000c2";
const IF2: &str = "00000000-0000-0000-0000-0000000000d2";
const TXN1: &str = "00000000-0000-0000-0000-000000000001";
const TXN2: &str = "00000000-0000-0000-0000-000000000002";

/// A scripted server on the other end of a session, and the topology its changes build.
struct Pair {
    now: Instant,
    session: Session,
    topology: Topology,
}

fn schema_json() -> Value {
    serde_json::from_str(SCHEMA).expect("schema JSON")
}

/// The rows of a hypervisor with one VM interface, as `initial` updates.
fn initial_rows() -> Value {
    json!({
        "Open_vSwitch": {OVS: {"initial": {"external_ids": ["map", [["system-id", "sys-1"]]], "bridges": ["uuid", BR]}}},
        "Bridge": {BR: {"initial": {"name": "br-int", "datapath_id": "0000000000000e1a", "ports": ["uuid", PT]}}},
        "Port": {PT: {"initial": {"name": "vm1", "interfaces": ["uuid", IF]}}},
        "Interface": {IF: {"initial": {"name": "vm1", "ofport": 1,
            "external_ids": ["map", [["iface-id", "port-1"]]]}}},
    })
}

/// The same contents as [`initial_rows`], in the `<table-updates>` form of `monitor`.
fn initial_rows_v1() -> Value {
    json!({
        "Open_vSwitch": {OVS: {"new": {"external_ids": ["map", [["system-id", "sys-1"]]], "bridges": ["uuid", BR]}}},
        "Bridge": {BR: {"new": {"name": "br-int", "datapath_id": "0000000000000e1a", "ports": ["uuid", PT]}}},
        "Port": {PT: {"new": {"name": "vm1", "interfaces": ["uuid", IF]}}},
        "Interface": {IF: {"new": {"name": "vm1", "ofport": 1,
            "external_ids": ["map", [["iface-id", "port-1"]]]}}},
    })
}

impl Pair {
    fn new() -> Self {
        Pair::with(SessionConfig::default())
    }

    fn with(cfg: SessionConfig) -> Self {
        let now = Instant::now();
        Pair {
            now,
            session: Session::new(now, HypervisorId::from("unix:/hv1/db.sock"), cfg),
            topology: Topology::new(TopologyConfig::default()),
        }
    }

    fn sent(&mut self) -> Vec<Request> {
        std::iter::from_fn(|| self.session.poll_transmit())
            .map(|m| match m {
                Message::Request(r) => r,
                other => panic!("expected a request, sent {other:?}"),
            })
            .collect()
    }

    fn sent_messages(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.session.poll_transmit()).collect()
    }

    /// Events, with every topology change applied to the pair's topology; returns the events
    /// and the topology's events.
    fn events(&mut self) -> (Vec<SessionEvent>, Vec<EventKind>) {
        let events: Vec<SessionEvent> = std::iter::from_fn(|| self.session.poll_event()).collect();
        let mut topo = Vec::new();
        for e in &events {
            match e {
                SessionEvent::Snapshot(c) => {
                    topo.extend(self.topology.apply(c.clone()).into_iter().map(|e| e.kind))
                }
                SessionEvent::Changes(cs) => topo.extend(
                    self.topology.apply_batch(cs.iter().cloned()).into_iter().map(|e| e.kind),
                ),
                _ => {}
            }
        }
        (events, topo)
    }

    fn deliver(&mut self, m: Message) {
        let mut bytes = Vec::new();
        m.emit(&mut bytes);
        self.deliver_raw(&bytes);
    }

    fn deliver_raw(&mut self, bytes: &[u8]) {
        self.session.handle_input(self.now, bytes);
    }

    fn reply(&mut self, req: &Request, result: Value) {
        self.deliver(Response::ok(req.id.clone(), result).into());
    }

    fn reply_error(&mut self, req: &Request, error: Value) {
        self.deliver(
            Response { id: req.id.clone(), result: Value::Null, error: Some(error) }.into(),
        );
    }

    fn notify(&mut self, method: &str, params: Value) {
        let params = params.as_array().cloned().unwrap_or_default();
        self.deliver(Notification { method: method.into(), params }.into());
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.session.handle_timeout(self.now);
    }

    /// Connects and answers get_schema; returns the monitor request.
    fn connect_to_monitor(&mut self) -> Request {
        self.session.handle_connect(self.now);
        let out = self.sent();
        let [get_schema] = &out[..] else { panic!("{out:?}") };
        assert_eq!(get_schema.method, "get_schema");
        assert_eq!(get_schema.params, vec![json!("Open_vSwitch")]);
        self.reply(get_schema, schema_json());
        let out = self.sent();
        let [monitor] = &out[..] else { panic!("{out:?}") };
        monitor.clone()
    }

    /// The full handshake with monitor_cond_since, found=false, last txn TXN1.
    fn handshake(&mut self) -> Vec<EventKind> {
        let monitor = self.connect_to_monitor();
        assert_eq!(monitor.method, "monitor_cond_since");
        self.reply(&monitor, json!([false, TXN1, initial_rows()]));
        let (ev, topo) = self.events();
        let [SessionEvent::Connected {
            system_id,
            resumed: false,
            monitor: MonitorMethod::CondSince,
            ..
        }, SessionEvent::Snapshot(Change::HypervisorReplaced { .. })] = &ev[..]
        else {
            panic!("{ev:?}")
        };
        assert_eq!(system_id.as_deref(), Some("sys-1"));
        assert_eq!(self.session.phase(), Phase::Ready);
        topo
    }

    fn closed_reason(&mut self) -> CloseReason {
        let (ev, _) = self.events();
        match ev.last() {
            Some(SessionEvent::Closed { reason }) => reason.clone(),
            _ => panic!("expected Closed last, got {ev:?}"),
        }
    }
}

#[test]
fn handshake_monitors_the_topology_columns_and_builds_the_graph() {
    let mut p = Pair::new();
    let monitor = p.connect_to_monitor();
    assert_eq!(monitor.params[0], json!("Open_vSwitch"));
    assert_eq!(monitor.params[3], json!("00000000-0000-0000-0000-000000000000"), "from scratch");
    let tables = monitor.params[2].as_object().expect("requests");
    let cols = |t: &str| -> Vec<String> {
        let c = &tables[t][0]["columns"];
        let mut v: Vec<String> = c
            .as_array()
            .expect("columns")
            .iter()
            .map(|s| s.as_str().unwrap_or("").into())
            .collect();
        v.sort();
        v
    };
    assert_eq!(cols("Open_vSwitch"), ["bridges", "external_ids", "other_config"]);
    assert_eq!(
        cols("Interface"),
        [
            "admin_state",
            "external_ids",
            "link_state",
            "mac_in_use",
            "name",
            "ofport",
            "options",
            "type"
        ]
    );
    assert_eq!(cols("Controller"), ["is_connected", "role", "target"]);
    assert_eq!(cols("Port"), ["external_ids", "interfaces", "name", "tag"]);
    assert_eq!(
        cols("Bridge"),
        ["controller", "datapath_id", "external_ids", "fail_mode", "name", "ports"]
    );

    p.reply(&monitor, json!([false, TXN1, initial_rows()]));
    let (ev, topo) = p.events();
    assert!(matches!(ev[0], SessionEvent::Connected { .. }), "{ev:?}");
    assert!(
        topo.iter().any(|e| matches!(e, EventKind::LocationReady { location } if location.ofport.map(|p| p.0) == Some(1))),
        "{topo:?}"
    );
    assert_eq!(p.topology.locations("port-1").len(), 1);
    assert_eq!(p.session.resume_from(), Some(TXN1.parse().expect("uuid")));
}

#[test]
fn update3_is_applied_and_becomes_changes() {
    let mut p = Pair::new();
    p.handshake();
    // The VM's port appears on a second port (a migration in progress on one hypervisor).
    p.notify(
        "update3",
        json!([MONITOR_ID, TXN2, {
            "Bridge": {BR: {"modify": {"ports": ["uuid", PT2]}}},
            "Port": {PT2: {"insert": {"name": "vm1b", "interfaces": ["uuid", IF2]}}},
            "Interface": {IF2: {"insert": {"name": "vm1b", "ofport": 2, "external_ids": ["map", [["iface-id", "port-1"]]]}}},
        }]),
    );
    let (ev, topo) = p.events();
    let [SessionEvent::Changes(c)] = &ev[..] else { panic!("{ev:?}") };
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(topo.iter().any(|e| matches!(e, EventKind::MigrationStarted { .. })), "{topo:?}");
    assert_eq!(p.session.resume_from(), Some(TXN2.parse().expect("uuid")));
    let r = p.session.replica().expect("replica");
    assert_eq!(r.table("Interface").map(|t| t.len()), Some(2));

    // A change of a column the topology does not read gives no event.
    p.notify(
        "update3",
        json!([MONITOR_ID, "00000000-0000-0000-0000-000000000003", {"Interface": {IF2: {"modify": {"link_state": "up"}}}}]),
    );
    assert!(p.events().0.is_empty());
}

#[test]
fn echo_answered_and_sent_when_idle_and_silence_kills() {
    let mut p = Pair::with(SessionConfig {
        echo_interval: Duration::from_secs(5),
        echo_timeout: Duration::from_secs(3),
        ..SessionConfig::default()
    });
    p.handshake();
    // The server's echo is answered with its params.
    p.deliver(Request::echo(json!("echo"), vec![json!("x")]).into());
    let out = p.sent_messages();
    assert_eq!(out, vec![Message::Response(Response::ok(json!("echo"), json!(["x"])))]);

    p.advance(Duration::from_secs(4));
    assert!(p.sent().is_empty(), "not idle yet");
    p.advance(Duration::from_secs(1));
    let out = p.sent();
    let [echo] = &out[..] else { panic!("{out:?}") };
    assert_eq!(echo.method, "echo");
    // Answered: the clock starts again from the reply.
    p.reply(echo, json!([]));
    p.advance(Duration::from_secs(4));
    assert!(p.sent().is_empty());
    p.advance(Duration::from_secs(1));
    assert_eq!(p.sent().len(), 1, "a second echo after another idle interval");
    assert!(p.events().0.is_empty());
    p.advance(Duration::from_secs(3));
    assert_eq!(p.closed_reason(), CloseReason::EchoTimeout);
    assert_eq!(p.session.phase(), Phase::Disconnected);
    assert_eq!(p.session.poll_timeout(), None);
}

#[test]
fn reconnect_resumes_from_the_last_txn_id_with_only_the_changes() {
    let mut p = Pair::new();
    p.handshake();
    p.notify("update3", json!([MONITOR_ID, TXN2, {"Interface": {IF: {"modify": {"ofport": 5}}}}]));
    p.events();
    p.session.handle_disconnect("connection reset by peer");
    let reason = p.closed_reason();
    assert_eq!(reason, CloseReason::Transport("connection reset by peer".into()));

    let monitor = p.connect_to_monitor();
    assert_eq!(monitor.method, "monitor_cond_since");
    assert_eq!(monitor.params[3], json!(TXN2), "resumes from the last update3");
    // The server found TXN2: only what changed since.
    p.reply(
        &monitor,
        json!([true, "00000000-0000-0000-0000-000000000004", {"Interface": {IF: {"modify": {"ofport": 6}}}}]),
    );
    let (ev, topo) = p.events();
    let [SessionEvent::Connected { resumed: true, .. }, SessionEvent::Changes(c)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(c.len(), 1);
    assert!(
        topo.iter().any(|e| matches!(e, EventKind::LocationReady { location } if location.ofport.map(|p| p.0) == Some(6))),
        "{topo:?}"
    );
}

#[test]
fn found_false_resyncs_without_spurious_changes() {
    let mut p = Pair::new();
    p.handshake();
    p.session.handle_disconnect("eof");
    p.events();
    let monitor = p.connect_to_monitor();
    assert_eq!(monitor.params[3], json!(TXN1));
    // The server restarted and lost its history: everything again, same rows.
    p.reply(&monitor, json!([false, "00000000-0000-0000-0000-000000000009", initial_rows()]));
    let (ev, topo) = p.events();
    assert!(
        matches!(
            ev[..],
            [SessionEvent::Connected { resumed: false, .. }, SessionEvent::Snapshot(_)]
        ),
        "{ev:?}"
    );
    assert!(topo.is_empty(), "nothing changed, nothing reported: {topo:?}");

    // And a resync that did change something reports exactly that.
    p.session.handle_disconnect("eof");
    p.events();
    let monitor = p.connect_to_monitor();
    let mut rows = initial_rows();
    rows["Interface"][IF]["initial"]["ofport"] = json!(9);
    p.reply(&monitor, json!([false, TXN1, rows]));
    let (_, topo) = p.events();
    assert!(
        matches!(&topo[..], [EventKind::LocationReady { location }] if location.ofport.map(|p| p.0) == Some(9)),
        "{topo:?}"
    );
}

#[test]
fn server_without_monitor_cond_since_gets_monitor_cond_then_monitor() {
    let mut p = Pair::new();
    let monitor = p.connect_to_monitor();
    p.reply_error(&monitor, json!("unknown method"));
    let out = p.sent();
    let [m2] = &out[..] else { panic!("{out:?}") };
    assert_eq!(m2.method, "monitor_cond");
    assert_eq!(m2.params.len(), 3);
    p.reply_error(m2, json!({"error": "unknown method"}));
    let out = p.sent();
    let [m1] = &out[..] else { panic!("{out:?}") };
    assert_eq!(m1.method, "monitor");
    p.reply(m1, initial_rows_v1());
    let (ev, topo) = p.events();
    assert!(
        matches!(ev[0], SessionEvent::Connected { monitor: MonitorMethod::Plain, .. }),
        "{ev:?}"
    );
    assert!(!topo.is_empty());
    p.notify(
        "update",
        json!([MONITOR_ID, {"Interface": {IF: {"old": {"ofport": 1}, "new": {"ofport": 4}}}}]),
    );
    let (ev, _) = p.events();
    assert!(matches!(&ev[..], [SessionEvent::Changes(c)] if c.len() == 1), "{ev:?}");

    // Reconnecting goes straight to the method that worked.
    p.session.handle_disconnect("eof");
    p.events();
    let m = p.connect_to_monitor();
    assert_eq!(m.method, "monitor");
}

#[test]
fn monitor_cond_reply_and_update2_are_applied() {
    let mut p = Pair::new();
    let monitor = p.connect_to_monitor();
    p.reply_error(&monitor, json!("unknown method"));
    let out = p.sent();
    p.reply(&out[0], initial_rows());
    let (ev, _) = p.events();
    assert!(matches!(ev[0], SessionEvent::Connected { monitor: MonitorMethod::Cond, .. }));
    p.notify("update2", json!([MONITOR_ID, {"Interface": {IF: {"delete": null}}}]));
    let (ev, topo) = p.events();
    assert!(matches!(&ev[..], [SessionEvent::Changes(_)]), "{ev:?}");
    assert!(topo.iter().any(|e| matches!(e, EventKind::InterfaceGone { .. })), "{topo:?}");
}

#[test]
fn transact_is_validated_sent_and_its_reply_matched() {
    let mut p = Pair::new();
    let op = Operation::Update {
        table: "Bridge".into(),
        conditions: vec![],
        row: Row::from([("fail_mode".into(), Datum::atom("secure"))]),
    };
    assert_eq!(
        p.session.transact(std::slice::from_ref(&op), 1),
        Err(TxnError::NotReady(Phase::Disconnected))
    );
    p.handshake();

    let bad = Operation::Update {
        table: "Bridge".into(),
        conditions: vec![],
        row: Row::from([("fail_mode".into(), Datum::atom("sometimes"))]),
    };
    let e = p.session.transact(&[bad], 2).unwrap_err();
    let TxnError::Invalid(v) = &e else { panic!("{e:?}") };
    assert_eq!(v.column.as_deref(), Some("fail_mode"));
    assert!(e.to_string().contains("\"sometimes\""), "{e}");
    assert!(p.sent().is_empty(), "nothing sent for a refused transaction");

    let a = p.session.transact(std::slice::from_ref(&op), 10).expect("sent");
    let b =
        p.session.transact(&[op, Operation::Comment { comment: "x".into() }], 11).expect("sent");
    let out = p.sent();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].method, "transact");
    assert_eq!(out[0].params[0], json!("Open_vSwitch"));
    // Replies out of order are matched by id.
    p.reply(&out[1], json!([{"count": 1}, {}]));
    p.reply(&out[0], json!([{"error": "constraint violation", "details": "no"}]));
    let (ev, _) = p.events();
    let [SessionEvent::TxnReply { id: i1, tag: 11, result: Ok(r1) }, SessionEvent::TxnReply { id: i0, tag: 10, result: Ok(r0) }] =
        &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!((*i0, *i1), (a, b));
    assert_eq!(r1.results.len(), 2);
    let (idx, err) = r0.error().expect("an operation error");
    assert_eq!((idx, err.error.as_str()), (0, "constraint violation"));

    // A transaction pending when the connection drops fails with Disconnected.
    let c = p.session.transact(&[Operation::Comment { comment: "y".into() }], 12).expect("sent");
    p.session.handle_disconnect("eof");
    let (ev, _) = p.events();
    assert!(
        matches!(&ev[..], [SessionEvent::TxnReply { id, tag: 12, result: Err(TxnError::Disconnected(_)) }, SessionEvent::Closed { .. }] if *id == c),
        "{ev:?}"
    );
}

#[test]
fn locks_report_locked_waiting_stolen_and_are_requested_again() {
    let mut p = Pair::new();
    p.handshake();
    p.session.lock(LockOp::Lock, "leader").expect("sent");
    let out = p.sent();
    assert_eq!((out[0].method.as_str(), &out[0].params[..]), ("lock", &[json!("leader")][..]));
    p.reply(&out[0], json!({"locked": false}));
    p.notify("locked", json!(["leader"]));
    p.notify("stolen", json!(["leader"]));
    let (ev, _) = p.events();
    assert_eq!(
        ev,
        vec![
            SessionEvent::LockWaiting { lock: "leader".into() },
            SessionEvent::Locked { lock: "leader".into() },
            SessionEvent::Stolen { lock: "leader".into() },
        ]
    );
    p.session.lock(LockOp::Steal, "leader").expect("sent");
    let out = p.sent();
    assert_eq!(out[0].method, "steal");
    p.reply(&out[0], json!({"locked": true}));
    assert_eq!(p.events().0, vec![SessionEvent::Locked { lock: "leader".into() }]);

    p.session.handle_disconnect("eof");
    let (ev, _) = p.events();
    assert_eq!(ev[0], SessionEvent::LockLost { lock: "leader".into() });
    let monitor = p.connect_to_monitor();
    p.reply(&monitor, json!([true, TXN1, {}]));
    let out = p.sent();
    assert_eq!(out.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["lock"]);
    p.session.lock(LockOp::Unlock, "leader").expect("sent");
    assert_eq!(p.sent()[0].method, "unlock");
}

#[test]
fn malformed_json_closes_with_a_clear_error() {
    let mut p = Pair::new();
    p.handshake();
    p.deliver_raw(b"{\"method\": \"update3\", oops}");
    let r = p.closed_reason();
    let text = r.to_string();
    assert!(matches!(r, CloseReason::Protocol(ProtocolError::Decode(_))), "{r:?}");
    assert!(text.contains("invalid JSON at stream offset"), "{text}");
    // Bytes after closing are ignored.
    p.deliver_raw(b"garbage");
    assert!(p.events().0.is_empty());
}

#[test]
fn unknown_methods_and_wrong_types_close_with_errors_naming_them() {
    let mut p = Pair::new();
    p.handshake();
    p.notify("surprise", json!([1]));
    let text = p.closed_reason().to_string();
    assert_eq!(text, "ovsdb-server sent an unknown notification method \"surprise\"");

    let mut p = Pair::new();
    p.handshake();
    p.deliver(Request { id: json!(7), method: "steal_everything".into(), params: vec![] }.into());
    let out = p.sent_messages();
    assert!(
        matches!(&out[..], [Message::Response(r)] if r.error == Some(json!("unknown method"))),
        "{out:?}"
    );
    assert!(p.closed_reason().to_string().contains("unknown request method \"steal_everything\""));

    let mut p = Pair::new();
    p.handshake();
    p.notify(
        "update3",
        json!([MONITOR_ID, TXN2, {"Interface": {IF: {"modify": {"ofport": "one"}}}}]),
    );
    let r = p.closed_reason();
    assert!(matches!(r, CloseReason::Protocol(ProtocolError::Update(_))), "{r:?}");
    assert!(r.to_string().contains("column ofport"), "{r}");
    assert_eq!(p.session.resume_from(), None, "a missed update means a full resync next time");

    let mut p = Pair::new();
    p.handshake();
    p.notify("update3", json!([MONITOR_ID, "not-a-uuid", {}]));
    let r = p.closed_reason().to_string();
    assert!(r.contains("update3.params[1]") && r.contains("\"not-a-uuid\""), "{r}");

    let mut p = Pair::new();
    p.handshake();
    p.notify("update2", json!(["someone-else", {}]));
    assert!(p
        .closed_reason()
        .to_string()
        .contains("unexpected update2 for monitor \"someone-else\""));

    let mut p = Pair::new();
    let m = p.connect_to_monitor();
    p.reply(&m, json!({"not": "an array"}));
    assert!(p.closed_reason().to_string().contains("monitor_cond_since: expected"));
}

#[test]
fn schema_problems_close_with_errors() {
    let mut p = Pair::new();
    p.session.handle_connect(p.now);
    let out = p.sent();
    p.reply(&out[0], json!({"name": "Open_vSwitch", "tables": {"Bridge": {"columns": {"name": {"type": "string"}}}}}));
    assert!(p.closed_reason().to_string().contains("no table Open_vSwitch"));

    let mut p = Pair::new();
    p.session.handle_connect(p.now);
    let out = p.sent();
    p.reply_error(&out[0], json!({"error": "unknown database", "details": "Open_vSwitch"}));
    let r = p.closed_reason().to_string();
    assert_eq!(r, "ovsdb-server refused get_schema: unknown database: Open_vSwitch");
}

#[test]
fn oversized_message_closes_before_it_is_buffered_whole() {
    let mut p = Pair::with(SessionConfig { max_message: 1 << 16, ..SessionConfig::default() });
    p.handshake();
    let mut big = br#"{"method":"update3","params":["periscope",""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 1 << 17));
    p.deliver_raw(&big);
    let r = p.closed_reason();
    assert!(r.to_string().contains("exceeds the maximum of 65536 bytes"), "{r}");
}

#[test]
fn responses_nobody_waits_for_are_reported_not_fatal() {
    let mut p = Pair::new();
    p.handshake();
    p.deliver(Response::ok(json!(999), json!({})).into());
    let (ev, _) = p.events();
    assert!(matches!(&ev[..], [SessionEvent::Error(e)] if e.contains("999")), "{ev:?}");
    assert_eq!(p.session.phase(), Phase::Ready);
}

#[test]
fn shutdown_removes_the_hypervisor_then_closes() {
    let mut p = Pair::new();
    p.handshake();
    assert!(!p.topology.locations("port-1").is_empty());
    p.session.shutdown();
    let (ev, _) = p.events();
    assert!(
        matches!(
            &ev[..],
            [SessionEvent::Changes(_), SessionEvent::Closed { reason: CloseReason::Shutdown }]
        ),
        "{ev:?}"
    );
    assert!(p.topology.locations("port-1").is_empty());
}

#[test]
fn name_by_system_id_renames_before_the_snapshot() {
    let mut p = Pair::with(SessionConfig { name_by_system_id: true, ..SessionConfig::default() });
    p.handshake();
    assert_eq!(p.session.hypervisor(), &HypervisorId::from("sys-1"));
    let hvs: Vec<String> = p.topology.hypervisors().map(|(h, _)| h.to_string()).collect();
    assert_eq!(hvs, ["sys-1"]);
}

#[test]
fn input_split_anywhere_gives_the_same_result() {
    let mut whole = Pair::new();
    whole.handshake();
    let upd = json!({"method": "update3", "id": null, "params": [MONITOR_ID, TXN2, {"Interface": {IF: {"modify": {"name": "é€😀", "ofport": 3}}}}]});
    let bytes = upd.to_string().into_bytes();
    for split in 0..bytes.len() {
        let mut p = Pair::new();
        p.handshake();
        p.deliver_raw(&bytes[..split]);
        p.deliver_raw(&bytes[split..]);
        let (ev, _) = p.events();
        assert!(
            matches!(&ev[..], [SessionEvent::Changes(c)] if c.len() == 1),
            "split {split}: {ev:?}"
        );
    }
}

/// The `_Server` row of the monitored database, as ovsdb-server answers the leader check.
fn server_row(model: &str, leader: bool, connected: bool) -> Value {
    json!([{"rows": [{"model": model, "leader": leader, "connected": connected}]}])
}

#[test]
fn leader_only_asks_server_first_and_closes_on_a_follower_member() {
    let mut p = Pair::with(SessionConfig { leader_only: true, ..SessionConfig::default() });
    p.session.handle_connect(p.now);
    let out = p.sent();
    let [check, get_schema] = &out[..] else { panic!("{out:?}") };
    assert_eq!((check.method.as_str(), &check.params[0]), ("transact", &json!("_Server")));
    assert_eq!(check.params[1]["table"], "Database");
    assert_eq!(check.params[1]["where"], json!([["name", "==", "Open_vSwitch"]]));
    assert_eq!(get_schema.method, "get_schema");
    p.reply(check, server_row("clustered", false, true));
    match p.closed_reason() {
        CloseReason::Protocol(ProtocolError::NotLeader { database, why }) => {
            assert_eq!(database, "Open_vSwitch");
            assert!(why.contains("follower"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // A member cut off from its cluster is refused too.
    p.session.handle_connect(p.now);
    let out = p.sent();
    p.reply(&out[0], server_row("clustered", true, false));
    assert!(matches!(p.closed_reason(), CloseReason::Protocol(ProtocolError::NotLeader { .. })));
}

#[test]
fn leader_only_goes_on_with_the_leader_or_a_standalone_server_and_checks_again_when_idle() {
    for model in ["clustered", "standalone"] {
        let mut p = Pair::with(SessionConfig { leader_only: true, ..SessionConfig::default() });
        p.session.handle_connect(p.now);
        let out = p.sent();
        p.reply(&out[0], server_row(model, model == "clustered", true));
        p.reply(&out[1], schema_json());
        let out = p.sent();
        let [monitor] = &out[..] else { panic!("{out:?}") };
        p.reply(monitor, json!([false, TXN1, initial_rows()]));
        assert_eq!(p.session.phase(), Phase::Ready, "{model}");
        // Silence: the echo goes with a new look at `_Server`; leadership lost closes.
        p.advance(Duration::from_secs(6));
        let out = p.sent();
        let methods: Vec<&str> = out.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(methods, ["echo", "transact"], "{model}");
        p.reply(&out[1], server_row("clustered", false, true));
        assert!(matches!(
            p.closed_reason(),
            CloseReason::Protocol(ProtocolError::NotLeader { .. })
        ));
    }
}
