//! Session tests on a virtual clock, against a scripted switch.

use std::time::{Duration, Instant};

use periscope_codec::openflow::*;

use super::*;

/// A scripted switch on the other end of a session.
struct Pair {
    now: Instant,
    session: Session,
}

impl Pair {
    fn new() -> Self {
        let now = Instant::now();
        Pair { now, session: Session::new(now, SessionConfig::default()) }
    }

    /// Everything the session wants to send now, parsed back (a HELLO_FAILED in the peer's
    /// own version too).
    fn sent(&mut self) -> Vec<OfpMessage> {
        let mut wire = bytes::BytesMut::new();
        self.session.poll_transmit(&mut wire);
        let mut out = Vec::new();
        while let Some(len) = frame_len(&wire, usize::from(u16::MAX)).expect("framed") {
            let mut frame = wire.split_to(len);
            let version = std::mem::replace(&mut frame[0], OFP_VERSION_1_3);
            let mut m = OfpMessage::parse(&frame).expect("the session sends what parses");
            m.version = version;
            out.push(m);
        }
        assert!(wire.is_empty(), "a partial message: {wire:02x?}");
        out
    }

    fn events(&mut self) -> Vec<SessionEvent> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// Delivers a message from the switch, passing through the wire format.
    fn deliver(&mut self, m: OfpMessage) {
        let bytes = m.to_vec();
        let m = OfpMessage::parse(&bytes).expect("test message parses");
        self.session.handle_frame(self.now, Frame::Message(m));
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.session.handle_timeout(self.now);
    }

    fn port(no: u32, name: &str) -> Port {
        Port {
            port_no: PortNo(no),
            hw_addr: MacAddr([2, 0, 0, 0, 0, no as u8]),
            name: name.into(),
            config: 0,
            state: 0,
            curr: 0,
            advertised: 0,
            supported: 0,
            peer: 0,
            curr_speed: 0,
            max_speed: 0,
        }
    }

    /// Runs the whole handshake as OVS does and returns the Ready event's contents.
    fn handshake(&mut self) -> (FeaturesReply, Vec<Port>) {
        let hello = self.sent();
        assert!(matches!(hello[..], [OfpMessage { msg: Message::Hello(_), .. }]));
        self.deliver(OfpMessage::new(Xid(77), Message::Hello(Hello::with_versions(&[1, 4, 5]))));
        let out = self.sent();
        let [OfpMessage { xid, msg: Message::FeaturesRequest, .. }] = out[..] else {
            panic!("expected FEATURES_REQUEST, got {out:?}")
        };
        let features = FeaturesReply {
            datapath_id: Dpid(0xabc),
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
            reserved: 0,
        };
        self.deliver(OfpMessage::new(xid, Message::FeaturesReply(features.clone())));
        let out = self.sent();
        assert!(matches!(out[0].msg, Message::SetConfig(SwitchConfig { miss_send_len: 128, .. })));
        let Message::MultipartRequest(MultipartRequest {
            body: MultipartRequestBody::PortDesc,
            ..
        }) = out[1].msg
        else {
            panic!("expected PORT_DESC request, got {out:?}")
        };
        let pd_xid = out[1].xid;
        // Two parts, as a switch with many ports sends.
        self.deliver(OfpMessage::new(
            pd_xid,
            Message::MultipartReply(MultipartReply {
                flags: multipart::MULTIPART_MORE,
                body: MultipartReplyBody::PortDesc(vec![Pair::port(1, "vm1")]),
            }),
        ));
        assert!(self.events().is_empty(), "ready before the last part");
        self.deliver(OfpMessage::new(
            pd_xid,
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::PortDesc(vec![Pair::port(2, "vm2")]),
            }),
        ));
        let ev = self.events();
        let [SessionEvent::Ready { features, ports }] = &ev[..] else { panic!("{ev:?}") };
        assert_eq!(self.session.phase(), Phase::Ready);
        (features.clone(), ports.clone())
    }
}

#[test]
fn handshake_learns_dpid_and_all_ports() {
    let mut p = Pair::new();
    let (f, ports) = p.handshake();
    assert_eq!(f.datapath_id, Dpid(0xabc));
    assert_eq!(p.session.dpid(), Some(Dpid(0xabc)));
    let names: Vec<_> = ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["vm1", "vm2"]);
}

#[test]
fn peer_without_1_3_gets_hello_failed_in_its_version_and_is_closed() {
    let mut p = Pair::new();
    p.sent();
    let mut h = OfpMessage::new(Xid(5), Message::Hello(Hello::default()));
    h.version = 0x01;
    p.deliver(h);
    let out = p.sent();
    let [OfpMessage { version: 1, msg: Message::Error(e), .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(e.err_type, ErrorType::HelloFailed);
    assert_eq!(e.code, error::hello_failed::INCOMPATIBLE);
    assert!(matches!(
        p.events()[..],
        [SessionEvent::Closed(CloseReason::IncompatibleVersion { peer_version: 1 })]
    ));
    assert_eq!(p.session.phase(), Phase::Closed);
}

#[test]
fn hello_bitmap_without_1_3_is_refused_even_with_higher_header_version() {
    let mut p = Pair::new();
    p.sent();
    let mut h = OfpMessage::new(Xid(5), Message::Hello(Hello::with_versions(&[1, 6])));
    h.version = 0x06;
    p.deliver(h);
    assert_eq!(p.session.phase(), Phase::Closed);
}

#[test]
fn handshake_times_out() {
    let mut p = Pair::new();
    p.advance(Duration::from_secs(9));
    assert_eq!(p.session.phase(), Phase::Hello);
    p.advance(Duration::from_secs(2));
    assert!(matches!(
        p.events()[..],
        [SessionEvent::Closed(CloseReason::HandshakeTimeout(Phase::Hello))]
    ));
}

#[test]
fn echo_keepalive_measures_rtt_and_detects_dead_peer() {
    let mut p = Pair::new();
    p.handshake();
    // Idle for the echo interval: we probe.
    assert_eq!(p.session.poll_timeout(), Some(p.now + Duration::from_secs(5)));
    p.advance(Duration::from_secs(5));
    let out = p.sent();
    let [OfpMessage { xid, msg: Message::EchoRequest(_), .. }] = out[..] else { panic!("{out:?}") };
    p.now += Duration::from_millis(3);
    p.deliver(OfpMessage::new(xid, Message::EchoReply(vec![])));
    assert_eq!(p.events(), vec![SessionEvent::EchoRtt(Duration::from_millis(3))]);
    // Next probe goes unanswered.
    p.advance(Duration::from_secs(5));
    assert_eq!(p.sent().len(), 1);
    p.advance(Duration::from_secs(14));
    assert_eq!(p.session.phase(), Phase::Ready);
    p.advance(Duration::from_secs(1));
    assert_eq!(p.events(), vec![SessionEvent::Closed(CloseReason::EchoTimeout)]);
}

#[test]
fn answers_switch_echo_with_same_payload_and_xid() {
    let mut p = Pair::new();
    p.handshake();
    p.deliver(OfpMessage::new(Xid(99), Message::EchoRequest(vec![1, 2, 3])));
    let out = p.sent();
    assert_eq!(out, vec![OfpMessage::new(Xid(99), Message::EchoReply(vec![1, 2, 3]))]);
}

#[test]
fn errors_name_the_request_and_barrier_confirms_the_rest() {
    let mut p = Pair::new();
    p.handshake();
    let fm = |prio| Message::FlowMod(FlowMod { priority: prio, ..FlowMod::default() }.into());
    let x1 = p.session.send(p.now, fm(1), 10, "flow one").unwrap();
    let x2 = p.session.send(p.now, fm(2), 20, "flow two").unwrap();
    let x3 = p.session.send(p.now, fm(3), 30, "flow three").unwrap();
    let b = p.session.barrier(p.now, 99).unwrap();
    assert_eq!(p.sent().len(), 4);
    assert_eq!(p.session.outstanding(), 4);
    let _ = (x1, x3);
    let err = ErrorMsg { err_type: ErrorType::BadMatch, code: 4, experimenter: None, data: vec![] };
    p.deliver(OfpMessage::new(x2, Message::Error(err.clone())));
    p.deliver(OfpMessage::new(b, Message::BarrierReply));
    let ev = p.events();
    let SessionEvent::RequestFailed { request: Some(req), error, .. } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!((req.tag, req.label.as_str()), (20, "flow two"));
    assert_eq!(error, &err);
    let SessionEvent::Confirmed { barrier, tags } = &ev[1] else { panic!("{ev:?}") };
    assert_eq!(barrier.tag, 99);
    assert_eq!(tags, &[10, 30]);
    assert_eq!(p.session.outstanding(), 0);
}

#[test]
fn an_error_after_the_xids_wrapped_names_its_request() {
    let mut p = Pair::new();
    p.handshake();
    p.session.next_xid = u32::MAX - 1;
    let fm = |prio| Message::FlowMod(FlowMod { priority: prio, ..FlowMod::default() }.into());
    let xids: Vec<Xid> = (1..=4)
        .map(|t| p.session.send(p.now, fm(t as u16), t, format!("flow {t}")).unwrap())
        .collect();
    assert_eq!(xids, [Xid(u32::MAX - 1), Xid(u32::MAX), Xid(1), Xid(2)], "0 is skipped");
    let b = p.session.barrier(p.now, 99).unwrap();
    p.sent();
    let err = ErrorMsg { err_type: ErrorType::BadMatch, code: 4, experimenter: None, data: vec![] };
    for x in [xids[2], xids[0]] {
        p.deliver(OfpMessage::new(x, Message::Error(err.clone())));
    }
    p.deliver(OfpMessage::new(b, Message::BarrierReply));
    let ev = p.events();
    let failed: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            SessionEvent::RequestFailed { request: Some(r), xid, .. } => Some((r.tag, *xid)),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [(3, xids[2]), (1, xids[0])]);
    let Some(SessionEvent::Confirmed { tags, .. }) = ev.last() else { panic!("{ev:?}") };
    assert_eq!(tags, &[2, 4]);
    assert_eq!(p.session.outstanding(), 0);
}

#[test]
fn multipart_reply_is_reassembled() {
    let mut p = Pair::new();
    p.handshake();
    let req = Message::MultipartRequest(MultipartRequest {
        flags: 0,
        body: MultipartRequestBody::Flow(FlowStatsRequest::default().into()),
    });
    let x = p.session.send(p.now, req, 7, "dump").unwrap();
    p.sent();
    for more in [true, false] {
        p.deliver(OfpMessage::new(
            x,
            Message::MultipartReply(MultipartReply {
                flags: if more { multipart::MULTIPART_MORE } else { 0 },
                body: MultipartReplyBody::Flow(vec![]),
            }),
        ));
    }
    let ev = p.events();
    let [SessionEvent::Reply { request, replies }] = &ev[..] else { panic!("{ev:?}") };
    assert_eq!(request.tag, 7);
    assert_eq!(replies.len(), 2);
}

#[test]
fn malformed_frame_is_answered_with_error_quoting_it() {
    let mut p = Pair::new();
    p.handshake();
    // A FEATURES_REPLY too short for its body.
    let raw = vec![4u8, 6, 0, 12, 0, 0, 0, 42, 0, 0, 0, 0];
    let error = OfpMessage::parse(&raw).unwrap_err();
    p.session.handle_frame(p.now, Frame::Malformed { raw: raw.clone(), error });
    let out = p.sent();
    let [OfpMessage { xid: Xid(42), msg: Message::Error(e), .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(e.err_type, ErrorType::BadRequest);
    assert_eq!(e.data, raw);
    assert!(matches!(p.events()[..], [SessionEvent::Malformed { msg_type: 6, .. }]));
    assert_eq!(p.session.phase(), Phase::Ready);
}

#[test]
fn sending_is_refused_before_ready_and_when_too_many_outstanding() {
    let now = Instant::now();
    let cfg = SessionConfig { max_outstanding: 2, ..SessionConfig::default() };
    let mut s = Session::new(now, cfg.clone());
    assert_eq!(s.barrier(now, 0), Err(SendError::NotReady(Phase::Hello)));
    let mut p = Pair { now, session: Session::new(now, cfg) };
    p.handshake();
    p.session.barrier(p.now, 0).unwrap();
    p.session.barrier(p.now, 0).unwrap();
    assert_eq!(p.session.barrier(p.now, 0), Err(SendError::Busy(2)));
}

#[test]
fn port_status_updates_known_ports() {
    let mut p = Pair::new();
    p.handshake();
    p.deliver(OfpMessage::new(
        Xid(0),
        Message::PortStatus(PortStatus { reason: PortReason::Add, desc: Pair::port(3, "vm3") }),
    ));
    assert!(matches!(&p.events()[..], [SessionEvent::PortStatus(ps)] if ps.desc.name == "vm3"));
}

#[test]
fn a_length_below_the_header_is_answered_with_bad_len_and_closes() {
    let mut p = Pair::new();
    p.handshake();
    let head = [4u8, 2, 0, 4, 0, 0, 0, 9, 0xde, 0xad];
    let error = frame_len(&head, 0xffff).expect_err("a length of 4 cannot be framed");
    p.session.handle_bad_frame(&head, &error);
    let out = p.sent();
    let [OfpMessage { xid: Xid(9), msg: Message::Error(e), .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!((e.err_type, e.code), (ErrorType::BadRequest, error::bad_request::BAD_LEN));
    assert_eq!(e.data, head, "the bad bytes are quoted");
    assert!(matches!(p.events()[..], [SessionEvent::Closed(CloseReason::BadFrame(_))]));
}

#[test]
fn a_flood_of_packet_ins_is_cut_to_the_limit_and_reported_once_a_second() {
    let now = Instant::now();
    let cfg = SessionConfig { max_unsolicited_per_sec: 10, ..SessionConfig::default() };
    let mut p = Pair { now, session: Session::new(now, cfg) };
    p.handshake();
    let pin = OfpMessage::parse(&captured_packet_in()).expect("packet-in");
    let mut passed = 0;
    let mut reports = Vec::new();
    // 1000 packet-ins in 2 s: 10 in a burst, then 10 a second.
    for i in 0..1000u64 {
        p.now = now + Duration::from_millis(i * 2);
        p.session.handle_frame(p.now, Frame::Message(pin.clone()));
        for ev in p.events() {
            match ev {
                SessionEvent::PacketIn(_) => passed += 1,
                SessionEvent::Flooding { dropped } => reports.push(dropped),
                other => panic!("{other:?}"),
            }
        }
    }
    assert!((28..=32).contains(&passed), "passed {passed}");
    assert_eq!(reports.len(), 2, "one report per second of flood: {reports:?}");
    assert_eq!(reports[0], 1, "the first drop is reported at once");
    // The session itself stays up and keeps answering.
    p.deliver(OfpMessage::new(Xid(3), Message::EchoRequest(vec![1])));
    assert!(matches!(p.sent()[..], [OfpMessage { msg: Message::EchoReply(_), .. }]));
}

#[test]
fn packet_ins_the_connection_s_app_answers_are_not_cut_by_the_flood_limit() {
    let now = Instant::now();
    let cfg = SessionConfig {
        max_unsolicited_per_sec: 10,
        app_packet_ins: Some(|pin| pin.cookie != Cookie(0xdead)),
        ..SessionConfig::default()
    };
    let mut p = Pair { now, session: Session::new(now, cfg) };
    p.handshake();
    let Ok(OfpMessage { msg: Message::PacketIn(mut pin), .. }) =
        OfpMessage::parse(&captured_packet_in())
    else {
        panic!("the captured packet-in parses")
    };
    pin.cookie = Cookie(1);
    let for_app = OfpMessage::new(Xid(1), Message::PacketIn(pin.clone()));
    pin.cookie = Cookie(0xdead);
    let for_core = OfpMessage::new(Xid(2), Message::PacketIn(pin));
    let (mut app, mut core) = (0, 0);
    // 1000 of each in one second: all of the app's pass, the others are cut to the limit.
    for i in 0..1000u64 {
        p.now = now + Duration::from_millis(i);
        p.session.handle_frame(p.now, Frame::Message(for_app.clone()));
        p.session.handle_frame(p.now, Frame::Message(for_core.clone()));
        for ev in p.events() {
            match ev {
                SessionEvent::PacketIn(pin) if pin.cookie == Cookie(1) => app += 1,
                SessionEvent::PacketIn(_) => core += 1,
                SessionEvent::Flooding { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(app, 1000);
    assert!((18..=22).contains(&core), "core got {core}");
}

fn captured_packet_in() -> Vec<u8> {
    let text = include_str!("../../../codec/tests/data/packetin.hex");
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap_or("00"), 16).unwrap_or(0))
        .collect()
}

#[test]
fn a_message_type_nobody_knows_is_answered_with_bad_type() {
    let mut p = Pair::new();
    p.handshake();
    let unknown = OfpMessage::parse(&[4, 0x63, 0, 12, 0, 0, 0, 21, 1, 2, 3, 4]).expect("kept");
    p.session.handle_frame(p.now, Frame::Message(unknown));
    let out = p.sent();
    let [OfpMessage { xid: Xid(21), msg: Message::Error(e), .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!((e.err_type, e.code), (ErrorType::BadRequest, error::bad_request::BAD_TYPE));
    assert!(matches!(p.events()[..], [SessionEvent::Malformed { msg_type: 0x63, .. }]));
    assert_eq!(p.session.phase(), Phase::Ready, "the stream is still framed: stay up");
}

#[test]
fn a_bundle_add_carries_its_own_xid_inside() {
    let mut p = Pair::new();
    p.handshake();
    p.sent();
    let inner = OfpMessage::new(Xid(0), Message::FlowMod(Box::default()));
    let add = bundle::BundleAdd {
        bundle_id: bundle::BundleId(1),
        flags: bundle::BUNDLE_ATOMIC,
        message: Box::new(inner),
        properties: Vec::new(),
    };
    let xid = p.session.send(p.now, Message::BundleAdd(add), 5, "add").expect("ready");
    let out = p.sent();
    // Through the wire format, as the switch reads it: OVS refuses a different inner xid.
    let m = OfpMessage::parse(&out[0].to_vec()).expect("bundle add parses");
    let Message::BundleAdd(b) = m.msg else { panic!("{m:?}") };
    assert_eq!((m.xid, b.message.xid), (xid, xid));
}
