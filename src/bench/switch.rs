//! One emulated OpenFlow 1.3 switch, sans-IO: fed the controller's messages, it hands back its
//! answers and the milestones of its handshake, and counts what it was sent.
//!
//! It answers HELLO (1.3 only), FEATURES_REQUEST (its own dpid), GET_CONFIG, echo, barrier,
//! and the multipart requests a controller makes at connection time: PORT_DESC (its ports),
//! DESC, FLOW and TABLE (empty). Everything else (flow mods, packet outs, group mods...) is
//! counted and, like a switch that accepts it, not answered.

use periscope_codec::openflow::multipart::{MultipartReply, MultipartReplyBody, SwitchDesc};
use periscope_codec::openflow::{
    Dpid, ErrorMsg, ErrorType, FeaturesReply, Hello, MacAddr, Message, MultipartRequestBody,
    OfpMessage, Port, PortNo, SwitchConfig, Xid, OFP_VERSION_1_3,
};
use serde::Serialize;

/// First xid of the echo requests the switch sends itself (far from the controller's).
pub const ECHO_XID_BASE: u32 = 0xbe00_0000;

/// What the controller sent one switch, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// FLOW_MOD messages.
    pub flow_mods: u64,
    /// BARRIER_REQUEST messages.
    pub barriers: u64,
    /// ECHO_REQUEST messages (the controller's keepalive).
    pub echo_requests: u64,
    /// MULTIPART_REQUEST messages.
    pub multipart_requests: u64,
    /// PACKET_OUT messages.
    pub packet_outs: u64,
    /// SET_CONFIG messages.
    pub set_configs: u64,
    /// Any other message.
    pub other: u64,
}

/// A point in the handshake and initial programming, reported once each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// The controller's HELLO arrived and spoke 1.3.
    Hello,
    /// FEATURES_REQUEST answered.
    Features,
    /// The first FLOW_MOD arrived.
    FirstFlowMod,
    /// A barrier that follows at least one FLOW_MOD was answered: the initial flow program
    /// is confirmed.
    ProgramConfirmed,
    /// The reply to one of our own echo requests arrived (its sequence number).
    EchoReply(u32),
    /// The controller refused our HELLO or does not speak 1.3.
    VersionRefused,
}

/// The emulated switch's state.
#[derive(Debug, Clone)]
pub struct EmulatedSwitch {
    dpid: Dpid,
    ports: Vec<Port>,
    counts: Counts,
    hello: bool,
    features: bool,
    confirmed: bool,
    config: SwitchConfig,
}

impl EmulatedSwitch {
    /// A switch with datapath id `dpid` and `n_ports` live ports numbered from 1.
    pub fn new(dpid: u64, n_ports: u16) -> Self {
        let ports = (1..=u32::from(n_ports)).map(|n| port(dpid, n)).collect();
        EmulatedSwitch {
            dpid: Dpid(dpid),
            ports,
            counts: Counts::default(),
            hello: false,
            features: false,
            confirmed: false,
            config: SwitchConfig { flags: 0, miss_send_len: 128 },
        }
    }

    /// The HELLO the switch sends when it connects.
    pub fn hello(&self) -> OfpMessage {
        OfpMessage::new(Xid(1), Message::Hello(Hello::with_versions(&[OFP_VERSION_1_3])))
    }

    /// The echo request number `seq` the switch sends itself.
    pub fn echo_request(seq: u32) -> OfpMessage {
        OfpMessage::new(
            Xid(ECHO_XID_BASE.wrapping_add(seq)),
            Message::EchoRequest(seq.to_be_bytes().to_vec()),
        )
    }

    /// What the controller has sent so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Handles one message from the controller: answers go to `out`, milestones reached to
    /// `milestones`.
    pub fn handle(
        &mut self,
        m: OfpMessage,
        out: &mut Vec<OfpMessage>,
        milestones: &mut Vec<Milestone>,
    ) {
        let OfpMessage { version, xid, msg } = m;
        let reply = |msg| OfpMessage::new(xid, msg);
        match msg {
            Message::Hello(h) => {
                if !self.hello {
                    self.hello = true;
                    milestones.push(if h.supports(version, OFP_VERSION_1_3) {
                        Milestone::Hello
                    } else {
                        Milestone::VersionRefused
                    });
                }
            }
            Message::Error(e) if e.err_type == ErrorType::HelloFailed => {
                milestones.push(Milestone::VersionRefused)
            }
            Message::FeaturesRequest => {
                out.push(reply(Message::FeaturesReply(FeaturesReply {
                    datapath_id: self.dpid,
                    n_buffers: 0,
                    n_tables: 254,
                    auxiliary_id: 0,
                    // FLOW_STATS, TABLE_STATS, PORT_STATS, GROUP_STATS.
                    capabilities: 0x0f,
                    reserved: 0,
                })));
                if !self.features {
                    self.features = true;
                    milestones.push(Milestone::Features);
                }
            }
            Message::EchoRequest(data) => {
                self.counts.echo_requests += 1;
                out.push(reply(Message::EchoReply(data)));
            }
            Message::EchoReply(_) => {
                if let Some(seq) = xid.0.checked_sub(ECHO_XID_BASE) {
                    milestones.push(Milestone::EchoReply(seq));
                }
            }
            Message::SetConfig(c) => {
                self.counts.set_configs += 1;
                self.config = c;
            }
            Message::GetConfigRequest => out.push(reply(Message::GetConfigReply(self.config))),
            Message::FlowMod(_) => {
                self.counts.flow_mods += 1;
                if self.counts.flow_mods == 1 {
                    milestones.push(Milestone::FirstFlowMod);
                }
            }
            Message::BarrierRequest => {
                self.counts.barriers += 1;
                out.push(reply(Message::BarrierReply));
                if self.counts.flow_mods > 0 && !self.confirmed {
                    self.confirmed = true;
                    milestones.push(Milestone::ProgramConfirmed);
                }
            }
            Message::MultipartRequest(r) => {
                self.counts.multipart_requests += 1;
                let body = match r.body {
                    MultipartRequestBody::PortDesc => {
                        MultipartReplyBody::PortDesc(self.ports.clone())
                    }
                    MultipartRequestBody::Flow(_) => MultipartReplyBody::Flow(Vec::new()),
                    MultipartRequestBody::Table => MultipartReplyBody::Table(Vec::new()),
                    MultipartRequestBody::Desc => MultipartReplyBody::Desc(SwitchDesc {
                        mfr_desc: "periscope".into(),
                        hw_desc: "emulated switch".into(),
                        sw_desc: "periscope bench".into(),
                        serial_num: format!("{:016x}", self.dpid.0),
                        dp_desc: format!("bench-{:016x}", self.dpid.0),
                    }),
                    _ => {
                        out.push(reply(Message::Error(ErrorMsg {
                            err_type: ErrorType::BadRequest,
                            // OFPBRC_BAD_MULTIPART.
                            code: 2,
                            experimenter: None,
                            data: Vec::new(),
                        })));
                        return;
                    }
                };
                out.push(reply(Message::MultipartReply(MultipartReply { flags: 0, body })));
            }
            Message::PacketOut(_) => self.counts.packet_outs += 1,
            _ => self.counts.other += 1,
        }
    }
}

/// Port `n` of the switch with datapath id `dpid`: up, 10 Gb/s, a locally administered MAC.
fn port(dpid: u64, n: u32) -> Port {
    let d = dpid.to_be_bytes();
    Port {
        port_no: PortNo(n),
        hw_addr: MacAddr([0x02, d[5], d[6], d[7], (n >> 8) as u8, n as u8]),
        name: format!("p{n}"),
        config: 0,
        state: 0,
        // OFPPF_10GB_FD | OFPPF_COPPER.
        curr: (1 << 6) | (1 << 11),
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use periscope_codec::openflow::MultipartRequest;

    use super::*;

    fn feed(sw: &mut EmulatedSwitch, xid: u32, msg: Message) -> (Vec<OfpMessage>, Vec<Milestone>) {
        let (mut out, mut ms) = (Vec::new(), Vec::new());
        // Through the wire format, as the controller's bytes would arrive.
        let mut wire = BytesMut::new();
        OfpMessage::new(Xid(xid), msg).emit(&mut wire);
        let m = OfpMessage::parse(&wire).expect("controller message parses");
        sw.handle(m, &mut out, &mut ms);
        (out, ms)
    }

    #[test]
    fn answers_the_handshake_with_its_dpid_and_ports() {
        let mut sw = EmulatedSwitch::new(0xabc, 3);
        let (out, ms) = feed(&mut sw, 1, Message::Hello(Hello::with_versions(&[0x04])));
        assert!(out.is_empty());
        assert_eq!(ms, vec![Milestone::Hello]);
        let (out, ms) = feed(&mut sw, 7, Message::FeaturesRequest);
        assert_eq!(ms, vec![Milestone::Features]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].xid, Xid(7));
        let Message::FeaturesReply(f) = &out[0].msg else { panic!("{:?}", out[0]) };
        assert_eq!(f.datapath_id, Dpid(0xabc));
        let req = MultipartRequest { flags: 0, body: MultipartRequestBody::PortDesc };
        let (out, _) = feed(&mut sw, 8, Message::MultipartRequest(req));
        let Message::MultipartReply(r) = &out[0].msg else { panic!("{:?}", out[0]) };
        let MultipartReplyBody::PortDesc(ports) = &r.body else { panic!("{r:?}") };
        let nos: Vec<u32> = ports.iter().map(|p| p.port_no.0).collect();
        assert_eq!(nos, vec![1, 2, 3]);
        assert!(ports.iter().all(|p| p.is_live()));
        assert_eq!(r.flags, 0, "one part only");
    }

    #[test]
    fn flow_stats_are_empty_and_echo_is_answered_with_its_payload() {
        let mut sw = EmulatedSwitch::new(1, 1);
        let req =
            MultipartRequest { flags: 0, body: MultipartRequestBody::Flow(Default::default()) };
        let (out, _) = feed(&mut sw, 3, Message::MultipartRequest(req));
        let Message::MultipartReply(r) = &out[0].msg else { panic!("{:?}", out[0]) };
        assert_eq!(r.body, MultipartReplyBody::Flow(Vec::new()));
        let (out, _) = feed(&mut sw, 4, Message::EchoRequest(vec![9, 9]));
        assert_eq!(out, vec![OfpMessage::new(Xid(4), Message::EchoReply(vec![9, 9]))]);
        assert_eq!(sw.counts().echo_requests, 1);
    }

    #[test]
    fn the_program_is_confirmed_by_the_barrier_after_flow_mods() {
        let mut sw = EmulatedSwitch::new(1, 1);
        // A barrier before any flow mod confirms nothing.
        let (out, ms) = feed(&mut sw, 2, Message::BarrierRequest);
        assert_eq!(out, vec![OfpMessage::new(Xid(2), Message::BarrierReply)]);
        assert!(ms.is_empty());
        let (_, ms) = feed(&mut sw, 3, Message::FlowMod(Box::default()));
        assert_eq!(ms, vec![Milestone::FirstFlowMod]);
        let (out, ms) = feed(&mut sw, 4, Message::FlowMod(Box::default()));
        assert!(out.is_empty() && ms.is_empty(), "flow mods are not answered");
        let (out, ms) = feed(&mut sw, 5, Message::BarrierRequest);
        assert_eq!(out, vec![OfpMessage::new(Xid(5), Message::BarrierReply)]);
        assert_eq!(ms, vec![Milestone::ProgramConfirmed]);
        let (_, ms) = feed(&mut sw, 6, Message::BarrierRequest);
        assert!(ms.is_empty(), "confirmed once");
        let c = sw.counts();
        assert_eq!((c.flow_mods, c.barriers), (2, 3));
    }

    #[test]
    fn a_controller_without_1_3_is_reported() {
        let mut sw = EmulatedSwitch::new(1, 1);
        let (mut out, mut ms) = (Vec::new(), Vec::new());
        let hello =
            OfpMessage { version: 0x01, xid: Xid(1), msg: Message::Hello(Hello::default()) };
        sw.handle(hello, &mut out, &mut ms);
        assert_eq!(ms, vec![Milestone::VersionRefused]);
    }

    #[test]
    fn our_own_echo_replies_are_matched_by_sequence() {
        let mut sw = EmulatedSwitch::new(1, 1);
        let req = EmulatedSwitch::echo_request(41);
        let (out, ms) = feed(&mut sw, req.xid.0, Message::EchoReply(vec![]));
        assert!(out.is_empty());
        assert_eq!(ms, vec![Milestone::EchoReply(41)]);
    }
}
