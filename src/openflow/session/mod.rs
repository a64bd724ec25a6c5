//! The OpenFlow 1.3 session with one switch, sans-IO.
//!
//! The session is fed what arrives (`handle_frame`) and the passing of time (`handle_timeout`),
//! and hands back what to send (`poll_transmit`) and what happened (`poll_event`). It owns the
//! handshake (HELLO version negotiation, FEATURES, SET_CONFIG, PORT_DESC), echo keepalive in both
//! directions with a dead-peer timeout, transaction ids, multipart reassembly, and the matching
//! of errors, replies and barrier replies to the requests that caused them. It never touches a
//! socket or a clock: the driver does.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use periscope_codec::openflow::error::hello_failed;
use periscope_codec::openflow::multipart::MULTIPART_MORE;
use periscope_codec::openflow::{
    DecodeError, Dpid, ErrorMsg, ErrorType, FeaturesReply, Hello, Message, MsgType, MultipartReply,
    MultipartReplyBody, MultipartRequest, MultipartRequestBody, OfpMessage, PacketIn, Port,
    PortReason, PortStatus, SwitchConfig, Xid, OFP_VERSION_1_3,
};

use super::framing::Frame;

/// Bytes of a failed request quoted back in an OFPT_ERROR, as the spec asks (at least 64).
const ERROR_DATA_LEN: usize = 64;

/// Timers and limits of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Idle time after which we send an echo request.
    pub echo_interval: Duration,
    /// Time an echo request may stay unanswered before the peer is declared dead.
    pub echo_timeout: Duration,
    /// Time the whole handshake may take.
    pub handshake_timeout: Duration,
    /// Bytes of a table-miss packet the switch should send us.
    pub miss_send_len: u16,
    /// Requests that may await a reply or barrier at once; more are refused (backpressure).
    pub max_outstanding: usize,
    /// Unsolicited messages (PACKET_IN, FLOW_REMOVED, malformed and unexpected ones) passed
    /// on per second, with as many in a burst; more are dropped and counted, so that a
    /// flooding switch costs the controller no more than this.
    pub max_unsolicited_per_sec: u32,
    /// Packet-ins for which this is true are answered by the connection's own app, in its
    /// driver task: they are passed on without the unsolicited limit, since what they cost
    /// stays with their connection (bounded by `max_outstanding` and the socket).
    pub app_packet_ins: Option<fn(&PacketIn) -> bool>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            echo_interval: Duration::from_secs(5),
            echo_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            miss_send_len: 128,
            max_outstanding: 65_536,
            max_unsolicited_per_sec: 1_000,
            app_packet_ins: None,
        }
    }
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the peer's HELLO.
    Hello,
    /// Waiting for FEATURES_REPLY.
    Features,
    /// Waiting for the PORT_DESC reply.
    PortDesc,
    /// Handshake done; requests may be sent.
    Ready,
    /// Closed; nothing more will be sent or accepted.
    Closed,
}

/// Why a session closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer does not speak OpenFlow 1.3.
    IncompatibleVersion {
        /// The peer's header version.
        peer_version: u8,
    },
    /// The peer sent something other than HELLO first.
    NoHello {
        /// What it sent.
        got: MsgType,
    },
    /// The handshake did not finish in time.
    HandshakeTimeout(Phase),
    /// No answer to an echo request in time.
    EchoTimeout,
    /// The peer refused our HELLO.
    HelloFailed(ErrorMsg),
    /// The peer sent a header whose length cannot be framed.
    BadFrame(DecodeError),
    /// The peer stopped reading: what we send could not be written in time.
    WriteStalled(Duration),
    /// The driver closed the session (socket closed, shutdown).
    Local(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::IncompatibleVersion { peer_version } => {
                write!(
                    f,
                    "peer does not speak OpenFlow 1.3 (its HELLO has version {peer_version:#04x})"
                )
            }
            CloseReason::NoHello { got } => write!(f, "peer sent {got:?} before HELLO"),
            CloseReason::HandshakeTimeout(p) => write!(f, "handshake timed out waiting in {p:?}"),
            CloseReason::EchoTimeout => f.write_str("echo request unanswered: peer is dead"),
            CloseReason::HelloFailed(e) => {
                write!(f, "peer refused our HELLO: {}", String::from_utf8_lossy(&e.data))
            }
            CloseReason::BadFrame(e) => write!(f, "unframeable message from peer: {e}"),
            CloseReason::WriteStalled(d) => {
                write!(f, "peer stopped reading: nothing could be written for {d:?}")
            }
            CloseReason::Local(why) => f.write_str(why),
        }
    }
}

/// Something the controller should know about.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The handshake finished: the switch is known and its ports listed.
    Ready {
        /// The FEATURES_REPLY.
        features: FeaturesReply,
        /// The ports from PORT_DESC.
        ports: Vec<Port>,
    },
    /// A port was added, removed or changed.
    PortStatus(PortStatus),
    /// A packet was sent to the controller.
    PacketIn(Box<periscope_codec::openflow::PacketIn>),
    /// A flow was removed (it asked for notification).
    FlowRemoved(Box<periscope_codec::openflow::FlowRemoved>),
    /// A request failed on the switch.
    RequestFailed {
        /// The failed request, if we still knew it.
        request: Option<Outstanding>,
        /// The xid of the error.
        xid: Xid,
        /// The error.
        error: ErrorMsg,
    },
    /// A barrier reply: every request sent before it that did not fail is now confirmed.
    Confirmed {
        /// The barrier request.
        barrier: Outstanding,
        /// Tags of the requests it confirms, in send order.
        tags: Vec<u64>,
    },
    /// A complete reply to a request (multipart parts are reassembled into one list).
    Reply {
        /// The request.
        request: Outstanding,
        /// Every reply message, in order (one, except for multipart).
        replies: Vec<Message>,
    },
    /// A round trip time measured with an echo.
    EchoRtt(Duration),
    /// The peer sent bytes we could not parse; we answered with an OFPT_ERROR.
    Malformed {
        /// What was wrong.
        error: DecodeError,
        /// Message type byte of the bad frame.
        msg_type: u8,
    },
    /// An unsolicited message the session does not handle itself.
    Other(OfpMessage),
    /// The switch sends more unsolicited messages than the limit: these were dropped since
    /// the last report (reported at most once a second while it lasts).
    Flooding {
        /// Messages dropped.
        dropped: u64,
    },
    /// The session is closed; the driver should close the connection.
    Closed(CloseReason),
}

/// A request the switch has not yet answered or confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outstanding {
    /// Its xid.
    pub xid: Xid,
    /// Its message type.
    pub msg_type: MsgType,
    /// The caller's tag, returned with the reply or confirmation.
    pub tag: u64,
    /// The caller's description, for logs (for a flow mod, the flow in ovs-ofctl syntax).
    pub label: String,
    /// When it was sent.
    pub sent_at: Instant,
}

/// Why a request could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The handshake has not finished, or the session is closed.
    #[error("session is not ready (phase {0:?})")]
    NotReady(Phase),
    /// Too many requests await confirmation.
    #[error("too many outstanding requests ({0})")]
    Busy(usize),
}

/// How a request is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completion {
    /// By a reply with the same xid.
    Reply,
    /// By the next barrier reply (no reply of its own unless it fails).
    Barrier,
    /// It is the barrier.
    IsBarrier,
}

/// A request with a reply of its own, or a barrier.
#[derive(Debug)]
struct Entry {
    req: Outstanding,
    /// Its place in the send order.
    seq: u64,
    completion: Completion,
    parts: Vec<Message>,
}

/// A request that the next barrier confirms.
#[derive(Debug)]
struct Pending {
    req: Outstanding,
    seq: u64,
}

/// The OpenFlow session with one switch.
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    phase: Phase,
    next_xid: u32,
    next_seq: u64,
    /// Requests with a reply of their own, and barriers, by xid.
    by_xid: HashMap<Xid, Entry>,
    /// Requests the next barrier confirms, in send order (so in xid order, modulo wrapping):
    /// a barrier reply confirms a prefix, and an error finds its request by binary search.
    awaiting_barrier: VecDeque<Pending>,
    features: Option<FeaturesReply>,
    ports: Vec<Port>,
    handshake_xid: Option<Xid>,
    handshake_deadline: Instant,
    last_rx: Instant,
    echo: Option<(Xid, Instant)>,
    /// What to send, already encoded, in order.
    transmit: BytesMut,
    events: VecDeque<SessionEvent>,
    flood: FloodGate,
}

/// A token bucket on the unsolicited messages of one switch.
#[derive(Debug)]
struct FloodGate {
    tokens: f64,
    refilled: Instant,
    dropped: u64,
    reported: Option<Instant>,
}

impl Session {
    /// A new session; our HELLO is queued at once.
    pub fn new(now: Instant, cfg: SessionConfig) -> Self {
        let mut s = Session {
            handshake_deadline: now + cfg.handshake_timeout,
            cfg,
            phase: Phase::Hello,
            next_xid: 1,
            next_seq: 0,
            by_xid: HashMap::new(),
            awaiting_barrier: VecDeque::new(),
            features: None,
            ports: Vec::new(),
            handshake_xid: None,
            last_rx: now,
            echo: None,
            transmit: BytesMut::new(),
            events: VecDeque::new(),
            flood: FloodGate { tokens: 0.0, refilled: now, dropped: 0, reported: None },
        };
        s.flood.tokens = f64::from(s.cfg.max_unsolicited_per_sec);
        let xid = s.alloc_xid();
        s.push(xid, Message::Hello(Hello::with_versions(&[OFP_VERSION_1_3])));
        s
    }

    /// The phase of the session.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The datapath id, once FEATURES_REPLY arrived.
    pub fn dpid(&self) -> Option<Dpid> {
        self.features.as_ref().map(|f| f.datapath_id)
    }

    /// Requests awaiting a reply or a barrier.
    pub fn outstanding(&self) -> usize {
        self.by_xid.len() + self.awaiting_barrier.len()
    }

    /// Appends everything queued for sending to `out`, encoded, in order; returns whether
    /// there was anything.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        out.extend_from_slice(&self.transmit);
        // Not kept: an idle connection holds no buffer of the largest batch it ever sent.
        self.transmit = BytesMut::new();
        true
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            Phase::Ready => Some(match self.echo {
                Some((_, sent)) => sent + self.cfg.echo_timeout,
                None => self.last_rx + self.cfg.echo_interval,
            }),
            _ => Some(self.handshake_deadline),
        }
    }

    /// Lets time pass: sends echo requests, and declares the peer dead when it stays silent.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Closed => {}
            Phase::Ready => match self.echo {
                Some((_, sent)) if now >= sent + self.cfg.echo_timeout => {
                    self.close(CloseReason::EchoTimeout)
                }
                None if now >= self.last_rx + self.cfg.echo_interval => {
                    let xid = self.alloc_xid();
                    self.echo = Some((xid, now));
                    self.push(xid, Message::EchoRequest(Vec::new()));
                }
                _ => {}
            },
            p => {
                if now >= self.handshake_deadline {
                    self.close(CloseReason::HandshakeTimeout(p));
                }
            }
        }
    }

    /// The peer has not taken what we sent for `waited`: it is as dead as one that does not
    /// answer echoes, and holding its messages would grow without bound.
    pub fn handle_write_stalled(&mut self, waited: Duration) {
        self.close(CloseReason::WriteStalled(waited));
    }

    /// How long a write may wait for the peer to read before the session is closed: as long as
    /// a silent peer is given before it is declared dead.
    pub fn write_limit(&self) -> Duration {
        self.cfg.echo_interval + self.cfg.echo_timeout
    }

    /// Closes the session from our side (the driver's socket closed, or shutdown).
    pub fn handle_close(&mut self, why: impl Into<String>) {
        self.close(CloseReason::Local(why.into()));
    }

    /// Handles one frame from the peer.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if self.phase == Phase::Closed {
            return;
        }
        self.last_rx = now;
        match frame {
            Frame::Message(m) => self.handle_message(now, m),
            Frame::Malformed { raw, error } => {
                self.answer_malformed(&raw, &error);
                let msg_type = raw.get(1).copied().unwrap_or(0);
                self.unsolicited(now, SessionEvent::Malformed { error, msg_type });
            }
        }
    }

    /// The stream itself is unusable (a header length below 8 or above the limit): answers
    /// with the OFPT_ERROR the error calls for, quoting the start of what was buffered, and
    /// closes, since the next message cannot be found.
    pub fn handle_bad_frame(&mut self, buffered: &[u8], error: &DecodeError) {
        if self.phase == Phase::Closed {
            return;
        }
        self.answer_malformed(buffered, error);
        self.close(CloseReason::BadFrame(error.clone()));
    }

    /// Queues the OFPT_ERROR that tells the peer what was wrong with `raw`, in reply to its xid.
    fn answer_malformed(&mut self, raw: &[u8], error: &DecodeError) {
        let (err_type, code) = error.ofp_error();
        let xid = match raw.get(4..8) {
            Some(&[a, b, c, d]) => Xid(u32::from_be_bytes([a, b, c, d])),
            _ => Xid(0),
        };
        let data = raw[..raw.len().min(ERROR_DATA_LEN)].to_vec();
        self.push(xid, Message::Error(ErrorMsg { err_type, code, experimenter: None, data }));
    }

    /// Queues a request. `tag` and `label` come back with its reply, confirmation or error.
    /// Requests without a reply of their own (flow mods, group mods...) are confirmed by the
    /// next barrier: call [`Session::barrier`] after a batch.
    pub fn send(
        &mut self,
        now: Instant,
        mut msg: Message,
        tag: u64,
        label: impl Into<String>,
    ) -> Result<Xid, SendError> {
        self.check_ready()?;
        if let Message::BundleAdd(b) = &mut msg {
            // The switch checks that the message inside carries the bundle add's own xid.
            b.message.xid = Xid(self.next_xid);
        }
        self.send_ref(now, &msg, tag, label)
    }

    /// [`Session::send`] of a message the caller keeps (it is encoded at once): an app that
    /// answers every packet-in reuses its messages. A bundle add is copied to take its xid.
    pub fn send_ref(
        &mut self,
        now: Instant,
        msg: &Message,
        tag: u64,
        label: impl Into<String>,
    ) -> Result<Xid, SendError> {
        self.check_ready()?;
        if let Message::BundleAdd(b) = msg {
            if b.message.xid.0 != self.next_xid {
                return self.send(now, msg.clone(), tag, label);
            }
        }
        let completion = match msg.msg_type() {
            MsgType::BarrierRequest => Completion::IsBarrier,
            MsgType::MultipartRequest
            | MsgType::EchoRequest
            | MsgType::FeaturesRequest
            | MsgType::GetConfigRequest
            | MsgType::QueueGetConfigRequest
            | MsgType::RoleRequest
            | MsgType::GetAsyncRequest => Completion::Reply,
            // Bundle control requests get a reply; bundle adds are confirmed by the commit.
            MsgType::Experimenter if matches!(msg, Message::BundleControl(_)) => Completion::Reply,
            _ => Completion::Barrier,
        };
        let xid = self.alloc_xid();
        let seq = self.next_seq;
        self.next_seq += 1;
        let req =
            Outstanding { xid, msg_type: msg.msg_type(), tag, label: label.into(), sent_at: now };
        if completion == Completion::Barrier {
            self.awaiting_barrier.push_back(Pending { req, seq });
        } else {
            self.by_xid.insert(xid, Entry { req, seq, completion, parts: Vec::new() });
        }
        self.emit(OFP_VERSION_1_3, xid, msg);
        Ok(xid)
    }

    fn check_ready(&self) -> Result<(), SendError> {
        if self.phase != Phase::Ready {
            return Err(SendError::NotReady(self.phase));
        }
        if self.outstanding() >= self.cfg.max_outstanding {
            return Err(SendError::Busy(self.outstanding()));
        }
        Ok(())
    }

    /// Queues a barrier request; its reply confirms everything sent before it.
    pub fn barrier(&mut self, now: Instant, tag: u64) -> Result<Xid, SendError> {
        self.send(now, Message::BarrierRequest, tag, "barrier")
    }

    fn alloc_xid(&mut self) -> Xid {
        let x = Xid(self.next_xid);
        // Skip 0, which some switches treat as "no xid".
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        x
    }

    fn push(&mut self, xid: Xid, msg: Message) {
        self.emit(OFP_VERSION_1_3, xid, &msg);
    }

    fn emit(&mut self, version: u8, xid: Xid, msg: &Message) {
        msg.emit_with_header(version, xid, &mut self.transmit);
    }

    fn close(&mut self, reason: CloseReason) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.events.push_back(SessionEvent::Closed(reason));
        }
    }

    fn handle_message(&mut self, now: Instant, m: OfpMessage) {
        let OfpMessage { version, xid, msg } = m;
        if self.phase == Phase::Hello {
            match msg {
                Message::Hello(h) => {
                    if h.supports(version, OFP_VERSION_1_3) {
                        self.phase = Phase::Features;
                        let x = self.alloc_xid();
                        self.handshake_xid = Some(x);
                        self.push(x, Message::FeaturesRequest);
                    } else {
                        let text = b"periscope speaks OpenFlow 1.3 (0x04) only".to_vec();
                        let err = ErrorMsg {
                            err_type: ErrorType::HelloFailed,
                            code: hello_failed::INCOMPATIBLE,
                            experimenter: None,
                            data: text,
                        };
                        // Answer in the peer's own version so that it can read why.
                        self.emit(version, xid, &Message::Error(err));
                        self.close(CloseReason::IncompatibleVersion { peer_version: version });
                    }
                }
                Message::Error(e) if e.err_type == ErrorType::HelloFailed => {
                    self.close(CloseReason::HelloFailed(e))
                }
                other => self.close(CloseReason::NoHello { got: other.msg_type() }),
            }
            return;
        }
        match msg {
            Message::EchoRequest(data) => self.push(xid, Message::EchoReply(data)),
            Message::EchoReply(_) if self.echo.is_some_and(|(x, _)| x == xid) => {
                if let Some((_, sent)) = self.echo.take() {
                    self.events
                        .push_back(SessionEvent::EchoRtt(now.saturating_duration_since(sent)));
                }
            }
            Message::FeaturesReply(f)
                if self.phase == Phase::Features && Some(xid) == self.handshake_xid =>
            {
                self.features = Some(f);
                self.phase = Phase::PortDesc;
                let cfg = SwitchConfig { flags: 0, miss_send_len: self.cfg.miss_send_len };
                let x = self.alloc_xid();
                self.push(x, Message::SetConfig(cfg));
                let x = self.alloc_xid();
                self.handshake_xid = Some(x);
                self.push(
                    x,
                    Message::MultipartRequest(MultipartRequest {
                        flags: 0,
                        body: MultipartRequestBody::PortDesc,
                    }),
                );
            }
            Message::MultipartReply(r)
                if self.phase == Phase::PortDesc && Some(xid) == self.handshake_xid =>
            {
                self.handle_port_desc(r)
            }
            Message::PortStatus(ps) => {
                self.apply_port_status(&ps);
                if self.phase == Phase::Ready {
                    self.events.push_back(SessionEvent::PortStatus(ps));
                }
            }
            Message::PacketIn(p) if self.cfg.app_packet_ins.is_some_and(|is_app| is_app(&p)) => {
                self.events.push_back(SessionEvent::PacketIn(p))
            }
            Message::PacketIn(p) => self.unsolicited(now, SessionEvent::PacketIn(p)),
            Message::FlowRemoved(f) => self.unsolicited(now, SessionEvent::FlowRemoved(f)),
            Message::Error(error) => {
                let request = self.take_outstanding(xid);
                if request.is_none()
                    && self.handshake_xid == Some(xid)
                    && self.phase != Phase::Ready
                {
                    // The switch refused a handshake request: we cannot go on with it.
                    let phase = self.phase;
                    self.events.push_back(SessionEvent::RequestFailed {
                        request: None,
                        xid,
                        error,
                    });
                    self.close(CloseReason::HandshakeTimeout(phase));
                    return;
                }
                self.events.push_back(SessionEvent::RequestFailed { request, xid, error });
            }
            Message::BarrierReply => self.handle_barrier_reply(xid),
            Message::MultipartReply(r) => self.handle_reply_part(xid, r),
            msg @ (Message::RoleReply(_)
            | Message::GetConfigReply(_)
            | Message::GetAsyncReply(_)
            | Message::QueueGetConfigReply(_)
            | Message::FeaturesReply(_)
            | Message::BundleControl(_)
            | Message::EchoReply(_)) => match self.by_xid.remove(&xid) {
                Some(e) => self
                    .events
                    .push_back(SessionEvent::Reply { request: e.req, replies: vec![msg] }),
                None => self.unsolicited(now, SessionEvent::Other(OfpMessage::new(xid, msg))),
            },
            msg @ Message::Unknown { .. } => {
                // OpenFlow 1.3.5 §7.5.4.1: a type the receiver does not know is OFPBRC_BAD_TYPE.
                let raw = OfpMessage { version, xid, msg }.to_vec();
                let error = DecodeError::BadValue {
                    what: "message type",
                    offset: 1,
                    value: u64::from(raw.get(1).copied().unwrap_or(0)),
                };
                self.handle_frame(now, Frame::Malformed { raw, error });
            }
            msg => self.unsolicited(now, SessionEvent::Other(OfpMessage { version, xid, msg })),
        }
    }

    /// Passes on an event the switch caused unasked, unless it is flooding us.
    fn unsolicited(&mut self, now: Instant, ev: SessionEvent) {
        let rate = f64::from(self.cfg.max_unsolicited_per_sec);
        let gate = &mut self.flood;
        let elapsed = now.saturating_duration_since(gate.refilled).as_secs_f64();
        gate.tokens = (gate.tokens + elapsed * rate).min(rate);
        gate.refilled = now;
        if gate.tokens >= 1.0 {
            gate.tokens -= 1.0;
            self.events.push_back(ev);
            return;
        }
        gate.dropped += 1;
        if gate.reported.is_none_or(|t| now >= t + Duration::from_secs(1)) {
            gate.reported = Some(now);
            let dropped = std::mem::take(&mut gate.dropped);
            self.events.push_back(SessionEvent::Flooding { dropped });
        }
    }

    fn handle_port_desc(&mut self, r: MultipartReply) {
        let more = r.flags & MULTIPART_MORE != 0;
        if let MultipartReplyBody::PortDesc(ports) = r.body {
            self.ports.extend(ports);
        }
        if !more {
            self.phase = Phase::Ready;
            self.handshake_xid = None;
            if let Some(features) = self.features.clone() {
                self.events.push_back(SessionEvent::Ready { features, ports: self.ports.clone() });
            }
        }
    }

    fn apply_port_status(&mut self, ps: &PortStatus) {
        self.ports.retain(|p| p.port_no != ps.desc.port_no);
        if ps.reason != PortReason::Delete {
            self.ports.push(ps.desc.clone());
        }
    }

    /// Forgets the outstanding request `xid` (it failed, or was answered) and returns it.
    fn take_outstanding(&mut self, xid: Xid) -> Option<Outstanding> {
        if let Some(e) = self.by_xid.remove(&xid) {
            return Some(e.req);
        }
        // Xids grow with the send order; distances from the oldest one do not wrap.
        let base = self.awaiting_barrier.front()?.req.xid.0;
        let at = self
            .awaiting_barrier
            .binary_search_by_key(&xid.0.wrapping_sub(base), |p| p.req.xid.0.wrapping_sub(base))
            .ok()?;
        self.awaiting_barrier.remove(at).map(|p| p.req)
    }

    fn handle_reply_part(&mut self, xid: Xid, r: MultipartReply) {
        let more = r.flags & MULTIPART_MORE != 0;
        let Some(e) = self.by_xid.get_mut(&xid) else {
            self.events
                .push_back(SessionEvent::Other(OfpMessage::new(xid, Message::MultipartReply(r))));
            return;
        };
        e.parts.push(Message::MultipartReply(r));
        if !more {
            if let Some(e) = self.by_xid.remove(&xid) {
                self.events.push_back(SessionEvent::Reply { request: e.req, replies: e.parts });
            }
        }
    }

    fn handle_barrier_reply(&mut self, xid: Xid) {
        let Some(barrier) = self.by_xid.get(&xid).filter(|e| e.completion == Completion::IsBarrier)
        else {
            return;
        };
        let barrier_seq = barrier.seq;
        // Everything sent before the barrier that awaits a barrier is now done. Requests that
        // failed were already removed by their errors, which the switch sends first.
        let done = self.awaiting_barrier.partition_point(|p| p.seq < barrier_seq);
        let tags = self.awaiting_barrier.drain(..done).map(|p| p.req.tag).collect();
        if let Some(b) = self.by_xid.remove(&xid) {
            self.events.push_back(SessionEvent::Confirmed { barrier: b.req, tags });
        }
    }
}

#[cfg(test)]
mod tests;
