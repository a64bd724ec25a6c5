//! OpenFlow 1.3 (spec 1.3.5), with the Nicira and ONF extensions Open vSwitch implements.
//!
//! Every message is an [`OfpMessage`]: a transaction id and a typed [`Message`]. Parsing checks
//! every length and never panics; emitting writes lengths through [`wire::LengthGuard`].
//!
//! ```text
//! struct ofp_header { uint8_t version; uint8_t type; uint16_t length; uint32_t xid; };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

pub mod action;
pub mod async_config;
pub mod bundle;
pub mod error;
pub mod experimenter;
pub mod features;
pub mod flow_mod;
pub mod flow_removed;
pub mod group;
pub mod hello;
pub mod instruction;
pub mod meter;
pub mod multipart;
pub mod ofctl;
pub mod oxm;
pub mod packet;
pub mod port;
pub mod queue;
pub mod role;
#[cfg(test)]
mod strategy;
pub mod switch_config;
pub mod table;
pub mod types;
pub mod wire;

pub use action::{Action, Actions};
pub use async_config::AsyncConfig;
pub use bundle::{BundleAdd, BundleControl, BundleCtrlType, BundleId, BundleProp};
pub use error::{code_name, DecodeError, ErrorMsg, ErrorType};
pub use experimenter::{Experimenter, NICIRA_EXPERIMENTER_ID, ONF_EXPERIMENTER_ID};
pub use features::FeaturesReply;
pub use flow_mod::{FlowMod, FlowModCommand};
pub use flow_removed::FlowRemoved;
pub use group::{
    Bucket, GroupDesc, GroupFeatures, GroupMod, GroupModCommand, GroupStats, GroupType,
};
pub use hello::{Hello, HelloElement};
pub use instruction::{Instruction, Instructions};
pub use meter::{MeterBand, MeterConfig, MeterFeatures, MeterMod, MeterModCommand, MeterStats};
pub use multipart::{
    AggregateStats, FlowStats, FlowStatsRequest, MultipartExperimenter, MultipartReply,
    MultipartReplyBody, MultipartRequest, MultipartRequestBody, MultipartType, PortStats,
    SwitchDesc,
};
pub use oxm::{Fields, Match, OxmField};
pub use packet::{PacketIn, PacketInReason, PacketOut};
pub use port::{Port, PortMod, PortReason, PortStatus};
pub use queue::{
    PacketQueue, QueueGetConfigReply, QueueGetConfigRequest, QueueProp, QueueStats,
    QueueStatsRequest,
};
pub use role::{ControllerRole, RoleMsg};
pub use switch_config::SwitchConfig;
pub use table::{TableFeatureProp, TableFeatures, TableMod, TableStats};
pub use types::{BufferId, Cookie, Dpid, GroupId, MacAddr, MeterId, PortNo, QueueId, TableId, Xid};

use wire::{Reader, Writer};

/// The wire version of OpenFlow 1.3.
pub const OFP_VERSION_1_3: u8 = 0x04;
/// Size of `ofp_header`.
pub const HEADER_LEN: usize = 8;
/// ONF experimenter type of a bundle control message (EXT-230).
pub const ONF_ET_BUNDLE_CONTROL: u32 = 2300;
/// ONF experimenter type of a bundle add message (EXT-230).
pub const ONF_ET_BUNDLE_ADD_MESSAGE: u32 = 2301;

error::wire_enum! {
    /// `ofp_type`: the message type in the header.
    MsgType: u8 {
        /// Symmetric: version negotiation.
        Hello = 0 => "OFPT_HELLO",
        /// Symmetric: error.
        Error = 1 => "OFPT_ERROR",
        /// Symmetric: liveness request.
        EchoRequest = 2 => "OFPT_ECHO_REQUEST",
        /// Symmetric: liveness reply.
        EchoReply = 3 => "OFPT_ECHO_REPLY",
        /// Symmetric: experimenter extension.
        Experimenter = 4 => "OFPT_EXPERIMENTER",
        /// Controller to switch: who are you.
        FeaturesRequest = 5 => "OFPT_FEATURES_REQUEST",
        /// Switch to controller: datapath id and capabilities.
        FeaturesReply = 6 => "OFPT_FEATURES_REPLY",
        /// Controller to switch: read config.
        GetConfigRequest = 7 => "OFPT_GET_CONFIG_REQUEST",
        /// Switch to controller: config.
        GetConfigReply = 8 => "OFPT_GET_CONFIG_REPLY",
        /// Controller to switch: set config.
        SetConfig = 9 => "OFPT_SET_CONFIG",
        /// Async: packet to controller.
        PacketIn = 10 => "OFPT_PACKET_IN",
        /// Async: flow removed.
        FlowRemoved = 11 => "OFPT_FLOW_REMOVED",
        /// Async: port changed.
        PortStatus = 12 => "OFPT_PORT_STATUS",
        /// Controller to switch: send a packet.
        PacketOut = 13 => "OFPT_PACKET_OUT",
        /// Controller to switch: change flows.
        FlowMod = 14 => "OFPT_FLOW_MOD",
        /// Controller to switch: change groups.
        GroupMod = 15 => "OFPT_GROUP_MOD",
        /// Controller to switch: change a port.
        PortMod = 16 => "OFPT_PORT_MOD",
        /// Controller to switch: change a table.
        TableMod = 17 => "OFPT_TABLE_MOD",
        /// Controller to switch: statistics and descriptions.
        MultipartRequest = 18 => "OFPT_MULTIPART_REQUEST",
        /// Switch to controller: statistics and descriptions.
        MultipartReply = 19 => "OFPT_MULTIPART_REPLY",
        /// Controller to switch: barrier.
        BarrierRequest = 20 => "OFPT_BARRIER_REQUEST",
        /// Switch to controller: everything before the barrier is done.
        BarrierReply = 21 => "OFPT_BARRIER_REPLY",
        /// Controller to switch: queue config.
        QueueGetConfigRequest = 22 => "OFPT_QUEUE_GET_CONFIG_REQUEST",
        /// Switch to controller: queue config.
        QueueGetConfigReply = 23 => "OFPT_QUEUE_GET_CONFIG_REPLY",
        /// Controller to switch: role.
        RoleRequest = 24 => "OFPT_ROLE_REQUEST",
        /// Switch to controller: role.
        RoleReply = 25 => "OFPT_ROLE_REPLY",
        /// Controller to switch: read async config.
        GetAsyncRequest = 26 => "OFPT_GET_ASYNC_REQUEST",
        /// Switch to controller: async config.
        GetAsyncReply = 27 => "OFPT_GET_ASYNC_REPLY",
        /// Controller to switch: set async config.
        SetAsync = 28 => "OFPT_SET_ASYNC",
        /// Controller to switch: change meters.
        MeterMod = 29 => "OFPT_METER_MOD",
    }
}

/// An OpenFlow message body, by type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Message {
    /// OFPT_HELLO.
    Hello(Hello),
    /// OFPT_ERROR.
    Error(ErrorMsg),
    /// OFPT_ECHO_REQUEST with its payload.
    EchoRequest(Vec<u8>),
    /// OFPT_ECHO_REPLY with its payload.
    EchoReply(Vec<u8>),
    /// OFPT_EXPERIMENTER not decoded further.
    Experimenter(Experimenter),
    /// OFPT_FEATURES_REQUEST.
    FeaturesRequest,
    /// OFPT_FEATURES_REPLY.
    FeaturesReply(FeaturesReply),
    /// OFPT_GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// OFPT_GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// OFPT_SET_CONFIG.
    SetConfig(SwitchConfig),
    /// OFPT_PACKET_IN (boxed, as the other messages that hold a match with its fields inline).
    PacketIn(Box<PacketIn>),
    /// OFPT_FLOW_REMOVED (boxed).
    FlowRemoved(Box<FlowRemoved>),
    /// OFPT_PORT_STATUS.
    PortStatus(PortStatus),
    /// OFPT_PACKET_OUT.
    PacketOut(PacketOut),
    /// OFPT_FLOW_MOD (boxed: several hundred bytes with its lists inline).
    FlowMod(Box<FlowMod>),
    /// OFPT_GROUP_MOD.
    GroupMod(GroupMod),
    /// OFPT_PORT_MOD.
    PortMod(PortMod),
    /// OFPT_TABLE_MOD.
    TableMod(TableMod),
    /// OFPT_MULTIPART_REQUEST.
    MultipartRequest(MultipartRequest),
    /// OFPT_MULTIPART_REPLY.
    MultipartReply(MultipartReply),
    /// OFPT_BARRIER_REQUEST.
    BarrierRequest,
    /// OFPT_BARRIER_REPLY.
    BarrierReply,
    /// OFPT_QUEUE_GET_CONFIG_REQUEST.
    QueueGetConfigRequest(QueueGetConfigRequest),
    /// OFPT_QUEUE_GET_CONFIG_REPLY.
    QueueGetConfigReply(QueueGetConfigReply),
    /// OFPT_ROLE_REQUEST.
    RoleRequest(RoleMsg),
    /// OFPT_ROLE_REPLY.
    RoleReply(RoleMsg),
    /// OFPT_GET_ASYNC_REQUEST.
    GetAsyncRequest,
    /// OFPT_GET_ASYNC_REPLY.
    GetAsyncReply(AsyncConfig),
    /// OFPT_SET_ASYNC.
    SetAsync(AsyncConfig),
    /// OFPT_METER_MOD.
    MeterMod(MeterMod),
    /// ONF bundle control (an experimenter message on the wire).
    BundleControl(BundleControl),
    /// ONF bundle add (an experimenter message on the wire).
    BundleAdd(BundleAdd),
    /// A message type this codec does not know, kept as bytes.
    Unknown {
        /// Header type byte.
        msg_type: u8,
        /// Body after the header.
        body: Vec<u8>,
    },
}

/// One OpenFlow message with its header fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfpMessage {
    /// Header version; 0x04 for everything but a HELLO.
    pub version: u8,
    /// Transaction id.
    pub xid: Xid,
    /// The body.
    pub msg: Message,
}

impl OfpMessage {
    /// An OpenFlow 1.3 message.
    pub fn new(xid: Xid, msg: Message) -> Self {
        OfpMessage { version: OFP_VERSION_1_3, xid, msg }
    }

    /// Parses exactly one message: `data` must hold the header and the whole body.
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let (version, msg_type, length, xid) = match r.fixed::<HEADER_LEN>() {
            Some(&[v, t, l0, l1, x0, x1, x2, x3]) => (
                v,
                t,
                usize::from(u16::from_be_bytes([l0, l1])),
                Xid(u32::from_be_bytes([x0, x1, x2, x3])),
            ),
            None => {
                let version = r.u8("header version")?;
                let msg_type = r.u8("header type")?;
                let length = r.u16("header length")? as usize;
                (version, msg_type, length, Xid(r.u32("header xid")?))
            }
        };
        if length < HEADER_LEN {
            return Err(DecodeError::BadLength { what: "header", offset: 2, len: length });
        }
        if length != data.len() {
            if length > data.len() {
                return Err(DecodeError::Truncated {
                    what: "message body",
                    offset: HEADER_LEN,
                    need: length - HEADER_LEN,
                    have: data.len() - HEADER_LEN,
                });
            }
            return Err(DecodeError::Trailing {
                what: "message",
                offset: length,
                extra: data.len() - length,
            });
        }
        let mt = MsgType::from(msg_type);
        if version != OFP_VERSION_1_3 && mt != MsgType::Hello {
            return Err(DecodeError::BadVersion { version });
        }
        let msg = Message::parse_body(mt, &mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::Trailing {
                what: mt.name().unwrap_or("message"),
                offset: r.offset(),
                extra: r.remaining(),
            });
        }
        Ok(OfpMessage { version, xid, msg })
    }

    /// Appends the message, header included, to `buf`.
    pub fn emit(&self, buf: &mut BytesMut) {
        self.msg.emit_with_header(self.version, self.xid, buf);
    }

    /// The message as a fresh byte vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut b = BytesMut::with_capacity(64);
        self.emit(&mut b);
        b.to_vec()
    }
}

/// Frame boundary: given the start of a stream, the length of the first message if its header
/// is complete. Lengths below the header size, or above `max_len`, are errors: the stream
/// cannot be resynchronised after them.
pub fn frame_len(data: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    if data.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u16::from_be_bytes([data[2], data[3]]) as usize;
    if len < HEADER_LEN || len > max_len {
        return Err(DecodeError::BadLength { what: "header", offset: 2, len });
    }
    Ok(Some(len))
}

impl Message {
    /// Emits the message with its header (`version`, `xid`), without being moved into an
    /// [`OfpMessage`]: what a sender that keeps its messages uses.
    pub fn emit_with_header(&self, version: u8, xid: Xid, buf: &mut BytesMut) {
        let hint = match self {
            Message::FlowMod(m) => m.size_hint(),
            _ => 0,
        };
        let mut w = Writer::new(buf, HEADER_LEN + hint);
        let g = w.guard(2);
        w.array([version, self.msg_type().into(), 0, 0]);
        w.u32(xid.0);
        match self {
            Message::FlowMod(m) => m.write(&mut w),
            msg => w.with_buf(|buf| msg.emit_body(buf)),
        }
        g.finish(&mut w);
    }

    /// The header type of this message.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::Hello(_) => MsgType::Hello,
            Message::Error(_) => MsgType::Error,
            Message::EchoRequest(_) => MsgType::EchoRequest,
            Message::EchoReply(_) => MsgType::EchoReply,
            Message::Experimenter(_) | Message::BundleControl(_) | Message::BundleAdd(_) => {
                MsgType::Experimenter
            }
            Message::FeaturesRequest => MsgType::FeaturesRequest,
            Message::FeaturesReply(_) => MsgType::FeaturesReply,
            Message::GetConfigRequest => MsgType::GetConfigRequest,
            Message::GetConfigReply(_) => MsgType::GetConfigReply,
            Message::SetConfig(_) => MsgType::SetConfig,
            Message::PacketIn(_) => MsgType::PacketIn,
            Message::FlowRemoved(_) => MsgType::FlowRemoved,
            Message::PortStatus(_) => MsgType::PortStatus,
            Message::PacketOut(_) => MsgType::PacketOut,
            Message::FlowMod(_) => MsgType::FlowMod,
            Message::GroupMod(_) => MsgType::GroupMod,
            Message::PortMod(_) => MsgType::PortMod,
            Message::TableMod(_) => MsgType::TableMod,
            Message::MultipartRequest(_) => MsgType::MultipartRequest,
            Message::MultipartReply(_) => MsgType::MultipartReply,
            Message::BarrierRequest => MsgType::BarrierRequest,
            Message::BarrierReply => MsgType::BarrierReply,
            Message::QueueGetConfigRequest(_) => MsgType::QueueGetConfigRequest,
            Message::QueueGetConfigReply(_) => MsgType::QueueGetConfigReply,
            Message::RoleRequest(_) => MsgType::RoleRequest,
            Message::RoleReply(_) => MsgType::RoleReply,
            Message::GetAsyncRequest => MsgType::GetAsyncRequest,
            Message::GetAsyncReply(_) => MsgType::GetAsyncReply,
            Message::SetAsync(_) => MsgType::SetAsync,
            Message::MeterMod(_) => MsgType::MeterMod,
            Message::Unknown { msg_type, .. } => MsgType::from(*msg_type),
        }
    }

    fn parse_body(mt: MsgType, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match mt {
            MsgType::Hello => Message::Hello(Hello::parse(r)?),
            MsgType::Error => Message::Error(ErrorMsg::parse(r)?),
            MsgType::EchoRequest => Message::EchoRequest(take_rest(r, "echo data")?),
            MsgType::EchoReply => Message::EchoReply(take_rest(r, "echo data")?),
            MsgType::Experimenter => {
                let e = Experimenter::parse(r)?;
                match (e.experimenter, e.exp_type) {
                    (ONF_EXPERIMENTER_ID, ONF_ET_BUNDLE_CONTROL) => {
                        let mut br = Reader::new(&e.data);
                        Message::BundleControl(BundleControl::parse(&mut br)?)
                    }
                    (ONF_EXPERIMENTER_ID, ONF_ET_BUNDLE_ADD_MESSAGE) => {
                        let mut br = Reader::new(&e.data);
                        Message::BundleAdd(BundleAdd::parse(&mut br)?)
                    }
                    _ => Message::Experimenter(e),
                }
            }
            MsgType::FeaturesRequest => Message::FeaturesRequest,
            MsgType::FeaturesReply => Message::FeaturesReply(FeaturesReply::parse(r)?),
            MsgType::GetConfigRequest => Message::GetConfigRequest,
            MsgType::GetConfigReply => Message::GetConfigReply(SwitchConfig::parse(r)?),
            MsgType::SetConfig => Message::SetConfig(SwitchConfig::parse(r)?),
            MsgType::PacketIn => Message::PacketIn(PacketIn::parse_boxed(r)?),
            MsgType::FlowRemoved => Message::FlowRemoved(Box::new(FlowRemoved::parse(r)?)),
            MsgType::PortStatus => Message::PortStatus(PortStatus::parse(r)?),
            MsgType::PacketOut => Message::PacketOut(PacketOut::parse(r)?),
            MsgType::FlowMod => {
                // Parsed where it stays: with its match, instructions and actions inline, a
                // flow mod is several hundred bytes.
                let mut fm = Box::<FlowMod>::default();
                fm.parse_in_place(r)?;
                Message::FlowMod(fm)
            }
            MsgType::GroupMod => Message::GroupMod(GroupMod::parse(r)?),
            MsgType::PortMod => Message::PortMod(PortMod::parse(r)?),
            MsgType::TableMod => Message::TableMod(TableMod::parse(r)?),
            MsgType::MultipartRequest => Message::MultipartRequest(MultipartRequest::parse(r)?),
            MsgType::MultipartReply => Message::MultipartReply(MultipartReply::parse(r)?),
            MsgType::BarrierRequest => Message::BarrierRequest,
            MsgType::BarrierReply => Message::BarrierReply,
            MsgType::QueueGetConfigRequest => {
                Message::QueueGetConfigRequest(QueueGetConfigRequest::parse(r)?)
            }
            MsgType::QueueGetConfigReply => {
                Message::QueueGetConfigReply(QueueGetConfigReply::parse(r)?)
            }
            MsgType::RoleRequest => Message::RoleRequest(RoleMsg::parse(r)?),
            MsgType::RoleReply => Message::RoleReply(RoleMsg::parse(r)?),
            MsgType::GetAsyncRequest => Message::GetAsyncRequest,
            MsgType::GetAsyncReply => Message::GetAsyncReply(AsyncConfig::parse(r)?),
            MsgType::SetAsync => Message::SetAsync(AsyncConfig::parse(r)?),
            MsgType::MeterMod => Message::MeterMod(MeterMod::parse(r)?),
            MsgType::Unknown(msg_type) => {
                Message::Unknown { msg_type, body: take_rest(r, "message body")? }
            }
        })
    }

    fn emit_body(&self, buf: &mut BytesMut) {
        match self {
            Message::Hello(m) => m.emit(buf),
            Message::Error(m) => m.emit(buf),
            Message::EchoRequest(d) | Message::EchoReply(d) => buf.put_slice(d),
            Message::Experimenter(m) => m.emit(buf),
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(m) => m.emit(buf),
            Message::GetConfigReply(m) | Message::SetConfig(m) => m.emit(buf),
            Message::PacketIn(m) => m.emit(buf),
            Message::FlowRemoved(m) => m.emit(buf),
            Message::PortStatus(m) => m.emit(buf),
            Message::PacketOut(m) => m.emit(buf),
            Message::FlowMod(m) => m.emit(buf),
            Message::GroupMod(m) => m.emit(buf),
            Message::PortMod(m) => m.emit(buf),
            Message::TableMod(m) => m.emit(buf),
            Message::MultipartRequest(m) => m.emit(buf),
            Message::MultipartReply(m) => m.emit(buf),
            Message::QueueGetConfigRequest(m) => m.emit(buf),
            Message::QueueGetConfigReply(m) => m.emit(buf),
            Message::RoleRequest(m) | Message::RoleReply(m) => m.emit(buf),
            Message::GetAsyncReply(m) | Message::SetAsync(m) => m.emit(buf),
            Message::MeterMod(m) => m.emit(buf),
            Message::BundleControl(m) => {
                buf.put_u32(ONF_EXPERIMENTER_ID);
                buf.put_u32(ONF_ET_BUNDLE_CONTROL);
                m.emit(buf);
            }
            Message::BundleAdd(m) => {
                buf.put_u32(ONF_EXPERIMENTER_ID);
                buf.put_u32(ONF_ET_BUNDLE_ADD_MESSAGE);
                m.emit(buf);
            }
            Message::Unknown { body, .. } => buf.put_slice(body),
        }
    }
}

fn take_rest(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    let v = r.rest().to_vec();
    r.skip(v.len(), what)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn flowmod_vector_round_trips() {
        let bytes = hex(include_str!("../../tests/data/flowmod.hex"));
        let m = OfpMessage::parse(&bytes).unwrap();
        assert!(matches!(m.msg, Message::FlowMod(_)));
        assert_eq!(m.to_vec(), bytes);
    }

    #[test]
    fn packetin_vector_round_trips() {
        let bytes = hex(include_str!("../../tests/data/packetin.hex"));
        let m = OfpMessage::parse(&bytes).unwrap();
        let Message::PacketIn(p) = &m.msg else { panic!("not a packet-in: {m:?}") };
        assert_eq!(p.data.len(), 64);
        assert_eq!(m.to_vec(), bytes);
    }

    #[test]
    fn hello_offers_1_3() {
        let m = OfpMessage::new(Xid(1), Message::Hello(Hello::with_versions(&[4])));
        let b = m.to_vec();
        assert_eq!(b, hex("04 00 0010 00000001 0001 0008 00000010"));
        let Message::Hello(h) = OfpMessage::parse(&b).unwrap().msg else { unreachable!() };
        assert!(h.supports(4, 4));
        assert!(!h.supports(4, 1));
    }

    #[test]
    fn short_length_is_rejected() {
        let err = OfpMessage::parse(&hex("04 00 0004 00000001")).unwrap_err();
        assert!(matches!(err, DecodeError::BadLength { .. }));
    }
}
