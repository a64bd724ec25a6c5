//! One emulated OpenFlow 1.3 switch, sans-IO: fed the controller's messages, it hands back its
//! answers and the milestones of its handshake, and counts what it was sent.
//!
//! It answers HELLO (1.3 only), FEATURES_REQUEST (its own dpid), GET_CONFIG, echo, barrier,
//! and the multipart requests a controller makes at connection time: PORT_DESC (its ports),
//! DESC, FLOW and TABLE (empty). Everything else (flow mods, packet outs, group mods...) is
//! counted and, like a switch that accepts it, not answered.
//!
//! A switch made [`EmulatedSwitch::keeping_flows`] also holds the flows it is sent (add and
//! delete, strict or not, by cookie) and answers the FLOW request with them, as a controller
//! restarting against it reads them back; its ports can come and go
//! ([`EmulatedSwitch::add_port`], [`EmulatedSwitch::remove_port`]) with a PORT_STATUS each.

use periscope_codec::openflow::multipart::{
    FlowStats, FlowStatsRequest, MultipartReply, MultipartReplyBody, SwitchDesc, MULTIPART_MORE,
};
use periscope_codec::openflow::{
    Dpid, ErrorMsg, ErrorType, FeaturesReply, FlowMod, FlowModCommand, Hello, MacAddr, Message,
    MultipartRequestBody, OfpMessage, OxmField, Port, PortNo, PortReason, PortStatus, SwitchConfig,
    TableId, Xid, OFP_VERSION_1_3,
};
use serde::Serialize;

/// Flows per part of a flow statistics reply (well under OpenFlow's 64 KiB per message).
const FLOWS_PER_PART: usize = 64;

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
    /// The flows held, when the switch keeps them.
    flows: Option<Vec<FlowStats>>,
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
            flows: None,
        }
    }

    /// The same switch with `ports` (number, name) instead, holding the flows it is sent.
    pub fn keeping_flows(mut self, ports: &[(u32, String)]) -> Self {
        self.ports = ports.iter().map(|(n, name)| named_port(self.dpid.0, *n, name)).collect();
        self.flows = Some(Vec::new());
        self
    }

    /// A new connection: the handshake starts over; flows, ports and counts stay.
    pub fn reconnected(&mut self) {
        self.hello = false;
        self.features = false;
        self.confirmed = false;
    }

    /// Adds port `n`: the PORT_STATUS to send.
    pub fn add_port(&mut self, n: u32, name: &str) -> OfpMessage {
        let desc = named_port(self.dpid.0, n, name);
        self.ports.retain(|p| p.port_no.0 != n);
        self.ports.push(desc.clone());
        port_status(PortReason::Add, desc)
    }

    /// Removes port `n`: the PORT_STATUS to send, if it was there.
    pub fn remove_port(&mut self, n: u32) -> Option<OfpMessage> {
        let i = self.ports.iter().position(|p| p.port_no.0 == n)?;
        Some(port_status(PortReason::Delete, self.ports.remove(i)))
    }

    /// The flows held that match on `in_port=port`.
    pub fn flows_on(&self, port: u32) -> impl Iterator<Item = &FlowStats> {
        let on = OxmField::InPort(PortNo(port));
        self.flows.iter().flatten().filter(move |f| f.matches.fields.contains(&on))
    }

    /// Flows held.
    pub fn flow_count(&self) -> usize {
        self.flows.as_ref().map_or(0, Vec::len)
    }

    fn apply(&mut self, fm: &FlowMod) {
        let Some(flows) = &mut self.flows else { return };
        let same = |f: &FlowStats| {
            f.table_id == fm.table_id && f.priority == fm.priority && f.matches == fm.matches
        };
        let cookie_hit = |f: &FlowStats| (f.cookie.0 ^ fm.cookie.0) & fm.cookie_mask == 0;
        let table_hit = |f: &FlowStats| fm.table_id == TableId::ALL || f.table_id == fm.table_id;
        match fm.command {
            FlowModCommand::Add => {
                flows.retain(|f| !same(f));
                flows.push(FlowStats {
                    table_id: fm.table_id,
                    duration_sec: 0,
                    duration_nsec: 0,
                    priority: fm.priority,
                    idle_timeout: fm.idle_timeout,
                    hard_timeout: fm.hard_timeout,
                    flags: fm.flags,
                    cookie: fm.cookie,
                    packet_count: 0,
                    byte_count: 0,
                    matches: fm.matches.clone(),
                    instructions: fm.instructions.clone(),
                });
            }
            FlowModCommand::DeleteStrict => flows.retain(|f| !(same(f) && cookie_hit(f))),
            // Non-strict: every flow whose match holds all of the request's fields.
            FlowModCommand::Delete => flows.retain(|f| {
                let wider = fm.matches.fields.iter().all(|m| f.matches.fields.contains(m));
                !(table_hit(f) && cookie_hit(f) && wider)
            }),
            _ => {}
        }
    }

    /// The flow statistics reply parts for `r`.
    fn flow_stats(&self, r: &FlowStatsRequest) -> Vec<MultipartReply> {
        let picked: Vec<FlowStats> = self
            .flows
            .iter()
            .flatten()
            .filter(|f| r.table_id == TableId::ALL || f.table_id == r.table_id)
            .filter(|f| (f.cookie.0 ^ r.cookie.0) & r.cookie_mask == 0)
            .cloned()
            .collect();
        let parts: Vec<&[FlowStats]> = picked.chunks(FLOWS_PER_PART).collect();
        if parts.is_empty() {
            return vec![MultipartReply { flags: 0, body: MultipartReplyBody::Flow(Vec::new()) }];
        }
        let last = parts.len() - 1;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| MultipartReply {
                flags: if i < last { MULTIPART_MORE } else { 0 },
                body: MultipartReplyBody::Flow(p.to_vec()),
            })
            .collect()
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
            Message::FlowMod(fm) => {
                self.apply(&fm);
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
                    MultipartRequestBody::Flow(f) => {
                        out.extend(
                            self.flow_stats(&f)
                                .into_iter()
                                .map(|p| reply(Message::MultipartReply(p))),
                        );
                        return;
                    }
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

fn port_status(reason: PortReason, desc: Port) -> OfpMessage {
    OfpMessage::new(Xid(0), Message::PortStatus(PortStatus { reason, desc }))
}

/// Port `n` of the switch with datapath id `dpid`: up, 10 Gb/s, a locally administered MAC.
fn port(dpid: u64, n: u32) -> Port {
    named_port(dpid, n, &format!("p{n}"))
}

fn named_port(dpid: u64, n: u32, name: &str) -> Port {
    let d = dpid.to_be_bytes();
    Port {
        port_no: PortNo(n),
        hw_addr: MacAddr([0x02, d[5], d[6], d[7], (n >> 8) as u8, n as u8]),
        name: name.to_string(),
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

    #[test]
    fn a_switch_keeping_flows_answers_the_dump_with_them_and_deletes_by_cookie() {
        let mut sw = EmulatedSwitch::new(1, 0).keeping_flows(&[(5, "tap5".into())]);
        let flow = |port: u32, cookie: u64| FlowMod {
            cookie: periscope_codec::openflow::Cookie(cookie),
            cookie_mask: u64::MAX,
            table_id: TableId(0),
            priority: 100,
            matches: periscope_codec::openflow::Match {
                fields: vec![OxmField::InPort(PortNo(port))].into(),
            },
            ..FlowMod::default()
        };
        for n in 0..100u32 {
            feed(&mut sw, n, Message::FlowMod(Box::new(flow(n, 7))));
        }
        feed(&mut sw, 200, Message::FlowMod(Box::new(flow(5, 7))));
        assert_eq!(sw.flow_count(), 100, "an add replaces the flow with the same match");
        assert_eq!(sw.flows_on(5).count(), 1);
        // A strict delete with another cookie leaves the flow alone.
        let mut del = flow(5, 8);
        del.command = FlowModCommand::DeleteStrict;
        feed(&mut sw, 201, Message::FlowMod(Box::new(del.clone())));
        assert_eq!(sw.flows_on(5).count(), 1);
        del.cookie = periscope_codec::openflow::Cookie(7);
        feed(&mut sw, 202, Message::FlowMod(Box::new(del)));
        assert_eq!(sw.flows_on(5).count(), 0);
        let req =
            MultipartRequest { flags: 0, body: MultipartRequestBody::Flow(Default::default()) };
        let (out, _) = feed(&mut sw, 203, Message::MultipartRequest(req));
        let parts: Vec<(u16, usize)> = out
            .iter()
            .map(|m| match &m.msg {
                Message::MultipartReply(MultipartReply {
                    flags,
                    body: MultipartReplyBody::Flow(f),
                }) => (*flags, f.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(parts, vec![(MULTIPART_MORE, 64), (0, 35)]);
        let Message::PortStatus(ps) = sw.add_port(9, "tap9").msg else { panic!() };
        assert_eq!((ps.reason, ps.desc.name.as_str()), (PortReason::Add, "tap9"));
        assert!(sw.remove_port(9).is_some() && sw.remove_port(9).is_none());
    }
}
