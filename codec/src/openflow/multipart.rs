//! OFPT_MULTIPART_REQUEST / OFPT_MULTIPART_REPLY (spec 1.3.5 §7.3.5).
//!
//! ```text
//! struct ofp_multipart_request { struct ofp_header header; uint16_t type; uint16_t flags; uint8_t pad[4]; uint8_t body[0]; };
//! struct ofp_multipart_reply   { struct ofp_header header; uint16_t type; uint16_t flags; uint8_t pad[4]; uint8_t body[0]; };
//! struct ofp_flow_stats_request {
//!     uint8_t table_id; uint8_t pad[3]; uint32_t out_port; uint32_t out_group; uint8_t pad2[4];
//!     uint64_t cookie; uint64_t cookie_mask; struct ofp_match match;
//! };
//! struct ofp_flow_stats {
//!     uint16_t length; uint8_t table_id; uint8_t pad; uint32_t duration_sec; uint32_t duration_nsec;
//!     uint16_t priority; uint16_t idle_timeout; uint16_t hard_timeout; uint16_t flags; uint8_t pad2[4];
//!     uint64_t cookie; uint64_t packet_count; uint64_t byte_count; struct ofp_match match;
//!     /* instructions */
//! };
//! /* OFPMP_AGGREGATE takes an ofp_flow_stats_request too */
//! struct ofp_aggregate_stats_reply { uint64_t packet_count; uint64_t byte_count; uint32_t flow_count; uint8_t pad[4]; };
//! struct ofp_port_stats_request { uint32_t port_no; uint8_t pad[4]; };
//! struct ofp_port_stats {
//!     uint32_t port_no; uint8_t pad[4];
//!     uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, rx_dropped, tx_dropped, rx_errors, tx_errors,
//!              rx_frame_err, rx_over_err, rx_crc_err, collisions;
//!     uint32_t duration_sec; uint32_t duration_nsec;
//! };  /* 112 bytes */
//! struct ofp_experimenter_multipart_header { uint32_t experimenter; uint32_t exp_type; /* data */ };
//! ```
//! The group, meter, queue and table bodies live beside their messages: [`super::group`],
//! [`super::meter`], [`super::queue`], [`super::table`]. A request type without a body (DESC,
//! TABLE, GROUP_DESC, GROUP_FEATURES, METER_FEATURES, PORT_DESC) must have none.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::error::wire_enum;
use super::group::{GroupDesc, GroupFeatures, GroupStats};
use super::instruction::{Instruction, Instructions};
use super::meter::{MeterConfig, MeterFeatures, MeterStats};
use super::oxm::Match;
use super::port::Port;
use super::queue::{QueueStats, QueueStatsRequest};
use super::table::{TableFeatures, TableStats};
use super::types::{Cookie, GroupId, MeterId, PortNo, TableId};
use super::wire::{put_fixed_str, LengthGuard, Reader};
use super::DecodeError;

/// `ofp_multipart_request_flags` / `ofp_multipart_reply_flags`: more parts follow.
pub const MULTIPART_MORE: u16 = 1;

wire_enum! {
    /// `ofp_multipart_type`.
    MultipartType: u16 {
        /// Description of the switch.
        Desc = 0 => "OFPMP_DESC",
        /// Individual flow statistics.
        Flow = 1 => "OFPMP_FLOW",
        /// Aggregate flow statistics.
        Aggregate = 2 => "OFPMP_AGGREGATE",
        /// Flow table statistics.
        Table = 3 => "OFPMP_TABLE",
        /// Port statistics.
        PortStats = 4 => "OFPMP_PORT_STATS",
        /// Queue statistics.
        Queue = 5 => "OFPMP_QUEUE",
        /// Group counter statistics.
        Group = 6 => "OFPMP_GROUP",
        /// Group description.
        GroupDesc = 7 => "OFPMP_GROUP_DESC",
        /// Group features.
        GroupFeatures = 8 => "OFPMP_GROUP_FEATURES",
        /// Meter statistics.
        Meter = 9 => "OFPMP_METER",
        /// Meter configuration.
        MeterConfig = 10 => "OFPMP_METER_CONFIG",
        /// Meter features.
        MeterFeatures = 11 => "OFPMP_METER_FEATURES",
        /// Table features.
        TableFeatures = 12 => "OFPMP_TABLE_FEATURES",
        /// Port description.
        PortDesc = 13 => "OFPMP_PORT_DESC",
        /// Experimenter extension.
        Experimenter = 0xffff => "OFPMP_EXPERIMENTER",
    }
}

/// OFPT_MULTIPART_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultipartRequest {
    /// `MULTIPART_MORE` when more requests follow.
    pub flags: u16,
    /// What is asked for.
    pub body: MultipartRequestBody,
}

/// The body of a multipart request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum MultipartRequestBody {
    /// OFPMP_DESC (empty body).
    Desc,
    /// OFPMP_FLOW (boxed: the match keeps its fields inline).
    Flow(Box<FlowStatsRequest>),
    /// OFPMP_AGGREGATE: totals over the flows the request selects.
    Aggregate(Box<FlowStatsRequest>),
    /// OFPMP_TABLE (empty body).
    Table,
    /// OFPMP_PORT_STATS of one port, or `PortNo::ANY` for all.
    PortStats(PortNo),
    /// OFPMP_QUEUE.
    Queue(QueueStatsRequest),
    /// OFPMP_GROUP of one group, or `GroupId::ALL` for all.
    Group(GroupId),
    /// OFPMP_GROUP_DESC (empty body).
    GroupDesc,
    /// OFPMP_GROUP_FEATURES (empty body).
    GroupFeatures,
    /// OFPMP_METER of one meter, or `MeterId::ALL` for all.
    Meter(MeterId),
    /// OFPMP_METER_CONFIG of one meter, or `MeterId::ALL` for all.
    MeterConfig(MeterId),
    /// OFPMP_METER_FEATURES (empty body).
    MeterFeatures,
    /// OFPMP_TABLE_FEATURES: empty to read, or the full set of tables to configure.
    TableFeatures(Vec<TableFeatures>),
    /// OFPMP_PORT_DESC (empty body).
    PortDesc,
    /// OFPMP_EXPERIMENTER.
    Experimenter(MultipartExperimenter),
    /// A type this codec does not decode, kept as bytes.
    Unknown {
        /// Multipart type.
        mp_type: MultipartType,
        /// Body bytes.
        body: Vec<u8>,
    },
}

/// OFPT_MULTIPART_REPLY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultipartReply {
    /// `MULTIPART_MORE` when more replies follow.
    pub flags: u16,
    /// What is answered.
    pub body: MultipartReplyBody,
}

/// The body of a multipart reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum MultipartReplyBody {
    /// OFPMP_DESC.
    Desc(SwitchDesc),
    /// OFPMP_FLOW.
    Flow(Vec<FlowStats>),
    /// OFPMP_AGGREGATE.
    Aggregate(AggregateStats),
    /// OFPMP_TABLE.
    Table(Vec<TableStats>),
    /// OFPMP_PORT_STATS.
    PortStats(Vec<PortStats>),
    /// OFPMP_QUEUE.
    Queue(Vec<QueueStats>),
    /// OFPMP_GROUP.
    Group(Vec<GroupStats>),
    /// OFPMP_GROUP_DESC.
    GroupDesc(Vec<GroupDesc>),
    /// OFPMP_GROUP_FEATURES.
    GroupFeatures(GroupFeatures),
    /// OFPMP_METER.
    Meter(Vec<MeterStats>),
    /// OFPMP_METER_CONFIG.
    MeterConfig(Vec<MeterConfig>),
    /// OFPMP_METER_FEATURES.
    MeterFeatures(MeterFeatures),
    /// OFPMP_TABLE_FEATURES.
    TableFeatures(Vec<TableFeatures>),
    /// OFPMP_PORT_DESC.
    PortDesc(Vec<Port>),
    /// OFPMP_EXPERIMENTER.
    Experimenter(MultipartExperimenter),
    /// A type this codec does not decode, kept as bytes.
    Unknown {
        /// Multipart type.
        mp_type: MultipartType,
        /// Body bytes.
        body: Vec<u8>,
    },
}

/// A flow statistics request (`ofp_flow_stats_request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowStatsRequest {
    /// Table to read, or `TableId::ALL`.
    pub table_id: TableId,
    /// Only flows that output to this port (`ANY`: no filter).
    pub out_port: PortNo,
    /// Only flows that output to this group (`ANY`: no filter).
    pub out_group: GroupId,
    /// Only flows whose cookie matches in the `cookie_mask` bits.
    pub cookie: Cookie,
    /// Which cookie bits must match.
    pub cookie_mask: u64,
    /// Only flows that match this.
    pub matches: Match,
}

impl Default for FlowStatsRequest {
    fn default() -> Self {
        FlowStatsRequest {
            table_id: TableId::ALL,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            cookie: Cookie(0),
            cookie_mask: 0,
            matches: Match::default(),
        }
    }
}

/// One flow entry in a flow statistics reply (`ofp_flow_stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    /// Table the flow is in.
    pub table_id: TableId,
    /// Seconds the flow has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Priority.
    pub priority: u16,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// `ofp_flow_mod_flags` bits.
    pub flags: u16,
    /// Cookie.
    pub cookie: Cookie,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// The match.
    pub matches: Match,
    /// The instructions.
    pub instructions: Instructions,
}

/// The switch's description (`ofp_desc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SwitchDesc {
    /// Manufacturer description.
    pub mfr_desc: String,
    /// Hardware description.
    pub hw_desc: String,
    /// Software description.
    pub sw_desc: String,
    /// Serial number.
    pub serial_num: String,
    /// Human readable description of the datapath.
    pub dp_desc: String,
}

/// Totals over a set of flows, the OFPMP_AGGREGATE reply (`ofp_aggregate_stats_reply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct AggregateStats {
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// Number of flows.
    pub flow_count: u32,
}

/// Counters of one port in an OFPMP_PORT_STATS reply (`ofp_port_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct PortStats {
    /// The port.
    pub port_no: PortNo,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets dropped by RX.
    pub rx_dropped: u64,
    /// Packets dropped by TX.
    pub tx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Frame alignment errors.
    pub rx_frame_err: u64,
    /// Packets with RX overrun.
    pub rx_over_err: u64,
    /// CRC errors.
    pub rx_crc_err: u64,
    /// Collisions.
    pub collisions: u64,
    /// Seconds the port has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
}

/// An experimenter multipart body (`ofp_experimenter_multipart_header` and its data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultipartExperimenter {
    /// Experimenter id.
    pub experimenter: u32,
    /// Experimenter-defined type.
    pub exp_type: u32,
    /// Experimenter-defined data.
    pub data: Vec<u8>,
}

impl MultipartRequestBody {
    /// The multipart type this body is sent as.
    pub fn mp_type(&self) -> MultipartType {
        match self {
            MultipartRequestBody::Desc => MultipartType::Desc,
            MultipartRequestBody::Flow(_) => MultipartType::Flow,
            MultipartRequestBody::Aggregate(_) => MultipartType::Aggregate,
            MultipartRequestBody::Table => MultipartType::Table,
            MultipartRequestBody::PortStats(_) => MultipartType::PortStats,
            MultipartRequestBody::Queue(_) => MultipartType::Queue,
            MultipartRequestBody::Group(_) => MultipartType::Group,
            MultipartRequestBody::GroupDesc => MultipartType::GroupDesc,
            MultipartRequestBody::GroupFeatures => MultipartType::GroupFeatures,
            MultipartRequestBody::Meter(_) => MultipartType::Meter,
            MultipartRequestBody::MeterConfig(_) => MultipartType::MeterConfig,
            MultipartRequestBody::MeterFeatures => MultipartType::MeterFeatures,
            MultipartRequestBody::TableFeatures(_) => MultipartType::TableFeatures,
            MultipartRequestBody::PortDesc => MultipartType::PortDesc,
            MultipartRequestBody::Experimenter(_) => MultipartType::Experimenter,
            MultipartRequestBody::Unknown { mp_type, .. } => *mp_type,
        }
    }
}

impl MultipartReplyBody {
    /// The multipart type this body is sent as.
    pub fn mp_type(&self) -> MultipartType {
        match self {
            MultipartReplyBody::Desc(_) => MultipartType::Desc,
            MultipartReplyBody::Flow(_) => MultipartType::Flow,
            MultipartReplyBody::Aggregate(_) => MultipartType::Aggregate,
            MultipartReplyBody::Table(_) => MultipartType::Table,
            MultipartReplyBody::PortStats(_) => MultipartType::PortStats,
            MultipartReplyBody::Queue(_) => MultipartType::Queue,
            MultipartReplyBody::Group(_) => MultipartType::Group,
            MultipartReplyBody::GroupDesc(_) => MultipartType::GroupDesc,
            MultipartReplyBody::GroupFeatures(_) => MultipartType::GroupFeatures,
            MultipartReplyBody::Meter(_) => MultipartType::Meter,
            MultipartReplyBody::MeterConfig(_) => MultipartType::MeterConfig,
            MultipartReplyBody::MeterFeatures(_) => MultipartType::MeterFeatures,
            MultipartReplyBody::TableFeatures(_) => MultipartType::TableFeatures,
            MultipartReplyBody::PortDesc(_) => MultipartType::PortDesc,
            MultipartReplyBody::Experimenter(_) => MultipartType::Experimenter,
            MultipartReplyBody::Unknown { mp_type, .. } => *mp_type,
        }
    }
}

impl MultipartRequest {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mp_type = MultipartType::from(r.u16("multipart type")?);
        let flags = r.u16("multipart flags")?;
        r.skip(4, "multipart pad")?;
        let body = match mp_type {
            MultipartType::Desc => MultipartRequestBody::Desc,
            MultipartType::Flow => {
                MultipartRequestBody::Flow(Box::new(FlowStatsRequest::parse(r)?))
            }
            MultipartType::Aggregate => {
                MultipartRequestBody::Aggregate(Box::new(FlowStatsRequest::parse(r)?))
            }
            MultipartType::Table => MultipartRequestBody::Table,
            MultipartType::PortStats => {
                let port = PortNo(r.u32("port_stats_request port_no")?);
                r.skip(4, "port_stats_request pad")?;
                MultipartRequestBody::PortStats(port)
            }
            MultipartType::Queue => MultipartRequestBody::Queue(QueueStatsRequest::parse(r)?),
            MultipartType::Group => {
                let group = GroupId(r.u32("group_stats_request group_id")?);
                r.skip(4, "group_stats_request pad")?;
                MultipartRequestBody::Group(group)
            }
            MultipartType::GroupDesc => MultipartRequestBody::GroupDesc,
            MultipartType::GroupFeatures => MultipartRequestBody::GroupFeatures,
            MultipartType::Meter | MultipartType::MeterConfig => {
                let meter = MeterId(r.u32("meter_multipart_request meter_id")?);
                r.skip(4, "meter_multipart_request pad")?;
                if mp_type == MultipartType::Meter {
                    MultipartRequestBody::Meter(meter)
                } else {
                    MultipartRequestBody::MeterConfig(meter)
                }
            }
            MultipartType::MeterFeatures => MultipartRequestBody::MeterFeatures,
            MultipartType::TableFeatures => {
                MultipartRequestBody::TableFeatures(parse_all(r, TableFeatures::parse)?)
            }
            MultipartType::PortDesc => MultipartRequestBody::PortDesc,
            MultipartType::Experimenter => {
                MultipartRequestBody::Experimenter(MultipartExperimenter::parse(r)?)
            }
            MultipartType::Unknown(_) => {
                MultipartRequestBody::Unknown { mp_type, body: take_rest(r)? }
            }
        };
        Ok(MultipartRequest { flags, body })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.body.mp_type().into());
        buf.put_u16(self.flags);
        buf.put_bytes(0, 4);
        match &self.body {
            MultipartRequestBody::Desc
            | MultipartRequestBody::Table
            | MultipartRequestBody::GroupDesc
            | MultipartRequestBody::GroupFeatures
            | MultipartRequestBody::MeterFeatures
            | MultipartRequestBody::PortDesc => {}
            MultipartRequestBody::Flow(f) | MultipartRequestBody::Aggregate(f) => f.emit(buf),
            MultipartRequestBody::PortStats(p) => {
                buf.put_u32(p.0);
                buf.put_bytes(0, 4);
            }
            MultipartRequestBody::Queue(q) => q.emit(buf),
            MultipartRequestBody::Group(g) => {
                buf.put_u32(g.0);
                buf.put_bytes(0, 4);
            }
            MultipartRequestBody::Meter(m) | MultipartRequestBody::MeterConfig(m) => {
                buf.put_u32(m.0);
                buf.put_bytes(0, 4);
            }
            MultipartRequestBody::TableFeatures(t) => t.iter().for_each(|t| t.emit(buf)),
            MultipartRequestBody::Experimenter(e) => e.emit(buf),
            MultipartRequestBody::Unknown { body, .. } => buf.put_slice(body),
        }
    }
}

impl MultipartReply {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mp_type = MultipartType::from(r.u16("multipart type")?);
        let flags = r.u16("multipart flags")?;
        r.skip(4, "multipart pad")?;
        let body = match mp_type {
            MultipartType::Desc => MultipartReplyBody::Desc(SwitchDesc::parse(r)?),
            MultipartType::Flow => MultipartReplyBody::Flow(parse_all(r, FlowStats::parse)?),
            MultipartType::Aggregate => MultipartReplyBody::Aggregate(AggregateStats::parse(r)?),
            MultipartType::Table => MultipartReplyBody::Table(parse_all(r, TableStats::parse)?),
            MultipartType::PortStats => {
                MultipartReplyBody::PortStats(parse_all(r, PortStats::parse)?)
            }
            MultipartType::Queue => MultipartReplyBody::Queue(parse_all(r, QueueStats::parse)?),
            MultipartType::Group => MultipartReplyBody::Group(parse_all(r, GroupStats::parse)?),
            MultipartType::GroupDesc => {
                MultipartReplyBody::GroupDesc(parse_all(r, GroupDesc::parse)?)
            }
            MultipartType::GroupFeatures => {
                MultipartReplyBody::GroupFeatures(GroupFeatures::parse(r)?)
            }
            MultipartType::Meter => MultipartReplyBody::Meter(parse_all(r, MeterStats::parse)?),
            MultipartType::MeterConfig => {
                MultipartReplyBody::MeterConfig(parse_all(r, MeterConfig::parse)?)
            }
            MultipartType::MeterFeatures => {
                MultipartReplyBody::MeterFeatures(MeterFeatures::parse(r)?)
            }
            MultipartType::TableFeatures => {
                MultipartReplyBody::TableFeatures(parse_all(r, TableFeatures::parse)?)
            }
            MultipartType::PortDesc => MultipartReplyBody::PortDesc(parse_all(r, Port::parse)?),
            MultipartType::Experimenter => {
                MultipartReplyBody::Experimenter(MultipartExperimenter::parse(r)?)
            }
            MultipartType::Unknown(_) => {
                MultipartReplyBody::Unknown { mp_type, body: take_rest(r)? }
            }
        };
        Ok(MultipartReply { flags, body })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.body.mp_type().into());
        buf.put_u16(self.flags);
        buf.put_bytes(0, 4);
        match &self.body {
            MultipartReplyBody::Desc(d) => d.emit(buf),
            MultipartReplyBody::Flow(v) => v.iter().for_each(|f| f.emit(buf)),
            MultipartReplyBody::Aggregate(a) => a.emit(buf),
            MultipartReplyBody::Table(v) => v.iter().for_each(|t| t.emit(buf)),
            MultipartReplyBody::PortStats(v) => v.iter().for_each(|p| p.emit(buf)),
            MultipartReplyBody::Queue(v) => v.iter().for_each(|q| q.emit(buf)),
            MultipartReplyBody::Group(v) => v.iter().for_each(|g| g.emit(buf)),
            MultipartReplyBody::GroupDesc(v) => v.iter().for_each(|g| g.emit(buf)),
            MultipartReplyBody::GroupFeatures(g) => g.emit(buf),
            MultipartReplyBody::Meter(v) => v.iter().for_each(|m| m.emit(buf)),
            MultipartReplyBody::MeterConfig(v) => v.iter().for_each(|m| m.emit(buf)),
            MultipartReplyBody::MeterFeatures(m) => m.emit(buf),
            MultipartReplyBody::TableFeatures(v) => v.iter().for_each(|t| t.emit(buf)),
            MultipartReplyBody::PortDesc(v) => v.iter().for_each(|p| p.emit(buf)),
            MultipartReplyBody::Experimenter(e) => e.emit(buf),
            MultipartReplyBody::Unknown { body, .. } => buf.put_slice(body),
        }
    }
}

/// Parses elements until the reader is exhausted. Every element is at least 8 bytes, so the
/// capacity guess is bounded by the input.
fn parse_all<T>(
    r: &mut Reader<'_>,
    parse: fn(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::with_capacity(r.remaining() / 64);
    while !r.is_empty() {
        out.push(parse(r)?);
    }
    Ok(out)
}

fn take_rest(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let v = r.rest().to_vec();
    r.skip(v.len(), "multipart body")?;
    Ok(v)
}

impl FlowStatsRequest {
    /// Parses an `ofp_flow_stats_request`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let table_id = TableId(r.u8("flow_stats_request table_id")?);
        r.skip(3, "flow_stats_request pad")?;
        let out_port = PortNo(r.u32("flow_stats_request out_port")?);
        let out_group = GroupId(r.u32("flow_stats_request out_group")?);
        r.skip(4, "flow_stats_request pad2")?;
        let cookie = Cookie(r.u64("flow_stats_request cookie")?);
        let cookie_mask = r.u64("flow_stats_request cookie_mask")?;
        let matches = Match::parse(r)?;
        Ok(FlowStatsRequest { table_id, out_port, out_group, cookie, cookie_mask, matches })
    }

    /// Emits an `ofp_flow_stats_request`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u8(self.table_id.0);
        buf.put_bytes(0, 3);
        buf.put_u32(self.out_port.0);
        buf.put_u32(self.out_group.0);
        buf.put_bytes(0, 4);
        buf.put_u64(self.cookie.0);
        buf.put_u64(self.cookie_mask);
        self.matches.emit(buf);
    }
}

impl FlowStats {
    /// Parses one `ofp_flow_stats`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.u16("flow_stats length")? as usize;
        let mut b = r.sub_to_len(start, len, 56, "flow_stats")?;
        let table_id = TableId(b.u8("flow_stats table_id")?);
        b.skip(1, "flow_stats pad")?;
        let duration_sec = b.u32("flow_stats duration_sec")?;
        let duration_nsec = b.u32("flow_stats duration_nsec")?;
        let priority = b.u16("flow_stats priority")?;
        let idle_timeout = b.u16("flow_stats idle_timeout")?;
        let hard_timeout = b.u16("flow_stats hard_timeout")?;
        let flags = b.u16("flow_stats flags")?;
        b.skip(4, "flow_stats pad2")?;
        let cookie = Cookie(b.u64("flow_stats cookie")?);
        let packet_count = b.u64("flow_stats packet_count")?;
        let byte_count = b.u64("flow_stats byte_count")?;
        let mut matches = Match::default();
        matches.parse_in_place(&mut b)?;
        let mut instructions = Instructions::new();
        Instruction::parse_list_into(&mut b, &mut instructions)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            matches,
            instructions,
        })
    }

    /// Emits one `ofp_flow_stats`.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 0);
        buf.put_u16(0);
        buf.put_u8(self.table_id.0);
        buf.put_u8(0);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.priority);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u16(self.flags);
        buf.put_bytes(0, 4);
        buf.put_u64(self.cookie.0);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.matches.emit(buf);
        Instruction::emit_list(&self.instructions, buf);
        g.finish(buf);
    }
}

impl AggregateStats {
    /// Parses an `ofp_aggregate_stats_reply`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let packet_count = r.u64("aggregate_stats packet_count")?;
        let byte_count = r.u64("aggregate_stats byte_count")?;
        let flow_count = r.u32("aggregate_stats flow_count")?;
        r.skip(4, "aggregate_stats pad")?;
        Ok(AggregateStats { packet_count, byte_count, flow_count })
    }

    /// Emits an `ofp_aggregate_stats_reply`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        buf.put_u32(self.flow_count);
        buf.put_bytes(0, 4);
    }
}

impl PortStats {
    /// Size on the wire.
    pub const LEN: usize = 112;

    /// Parses one `ofp_port_stats`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port_no = PortNo(r.u32("port_stats port_no")?);
        r.skip(4, "port_stats pad")?;
        Ok(PortStats {
            port_no,
            rx_packets: r.u64("port_stats rx_packets")?,
            tx_packets: r.u64("port_stats tx_packets")?,
            rx_bytes: r.u64("port_stats rx_bytes")?,
            tx_bytes: r.u64("port_stats tx_bytes")?,
            rx_dropped: r.u64("port_stats rx_dropped")?,
            tx_dropped: r.u64("port_stats tx_dropped")?,
            rx_errors: r.u64("port_stats rx_errors")?,
            tx_errors: r.u64("port_stats tx_errors")?,
            rx_frame_err: r.u64("port_stats rx_frame_err")?,
            rx_over_err: r.u64("port_stats rx_over_err")?,
            rx_crc_err: r.u64("port_stats rx_crc_err")?,
            collisions: r.u64("port_stats collisions")?,
            duration_sec: r.u32("port_stats duration_sec")?,
            duration_nsec: r.u32("port_stats duration_nsec")?,
        })
    }

    /// Emits one `ofp_port_stats`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port_no.0);
        buf.put_bytes(0, 4);
        for v in [
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_dropped,
            self.tx_dropped,
            self.rx_errors,
            self.tx_errors,
            self.rx_frame_err,
            self.rx_over_err,
            self.rx_crc_err,
            self.collisions,
        ] {
            buf.put_u64(v);
        }
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
    }
}

impl MultipartExperimenter {
    /// Parses an experimenter multipart body.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let experimenter = r.u32("multipart experimenter")?;
        let exp_type = r.u32("multipart exp_type")?;
        let data = r.rest().to_vec();
        r.skip(data.len(), "multipart experimenter data")?;
        Ok(MultipartExperimenter { experimenter, exp_type, data })
    }

    /// Emits an experimenter multipart body.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.experimenter);
        buf.put_u32(self.exp_type);
        buf.put_slice(&self.data);
    }
}

const DESC_STR_LEN: usize = 256;
const SERIAL_NUM_LEN: usize = 32;

impl SwitchDesc {
    /// Parses an `ofp_desc`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SwitchDesc {
            mfr_desc: r.fixed_str(DESC_STR_LEN, "desc mfr_desc")?,
            hw_desc: r.fixed_str(DESC_STR_LEN, "desc hw_desc")?,
            sw_desc: r.fixed_str(DESC_STR_LEN, "desc sw_desc")?,
            serial_num: r.fixed_str(SERIAL_NUM_LEN, "desc serial_num")?,
            dp_desc: r.fixed_str(DESC_STR_LEN, "desc dp_desc")?,
        })
    }

    /// Emits an `ofp_desc`.
    pub fn emit(&self, buf: &mut BytesMut) {
        put_fixed_str(buf, &self.mfr_desc, DESC_STR_LEN);
        put_fixed_str(buf, &self.hw_desc, DESC_STR_LEN);
        put_fixed_str(buf, &self.sw_desc, DESC_STR_LEN);
        put_fixed_str(buf, &self.serial_num, SERIAL_NUM_LEN);
        put_fixed_str(buf, &self.dp_desc, DESC_STR_LEN);
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Proptest strategies for multipart bodies.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::openflow::types::QueueId;
    use crate::openflow::{group, meter, queue, table};

    fn stats_request() -> impl Strategy<Value = FlowStatsRequest> {
        any::<(u8, u32, u32, u64, u64)>().prop_map(|(t, p, g, cookie, cookie_mask)| {
            FlowStatsRequest {
                table_id: TableId(t),
                out_port: PortNo(p),
                out_group: GroupId(g),
                cookie: Cookie(cookie),
                cookie_mask,
                matches: Match::default(),
            }
        })
    }

    fn experimenter() -> impl Strategy<Value = MultipartExperimenter> {
        (any::<(u32, u32)>(), vec(any::<u8>(), 0..24)).prop_map(
            |((experimenter, exp_type), data)| MultipartExperimenter {
                experimenter,
                exp_type,
                data,
            },
        )
    }

    fn port_stats() -> impl Strategy<Value = PortStats> {
        (any::<u32>(), any::<[u64; 12]>(), any::<(u32, u32)>()).prop_map(|(p, c, (ds, dn))| {
            PortStats {
                port_no: PortNo(p),
                rx_packets: c[0],
                tx_packets: c[1],
                rx_bytes: c[2],
                tx_bytes: c[3],
                rx_dropped: c[4],
                tx_dropped: c[5],
                rx_errors: c[6],
                tx_errors: c[7],
                rx_frame_err: c[8],
                rx_over_err: c[9],
                rx_crc_err: c[10],
                collisions: c[11],
                duration_sec: ds,
                duration_nsec: dn,
            }
        })
    }

    /// Any request body this module decodes (Flow and Desc excluded: their bodies are not ours).
    pub(crate) fn request_body() -> impl Strategy<Value = MultipartRequestBody> {
        use MultipartRequestBody as B;
        prop_oneof![
            stats_request().prop_map(|r| B::Aggregate(r.into())),
            Just(B::Table),
            any::<u32>().prop_map(|p| B::PortStats(PortNo(p))),
            any::<(u32, u32)>().prop_map(|(p, q)| B::Queue(QueueStatsRequest {
                port_no: PortNo(p),
                queue_id: QueueId(q)
            })),
            any::<u32>().prop_map(|g| B::Group(GroupId(g))),
            Just(B::GroupDesc),
            Just(B::GroupFeatures),
            any::<u32>().prop_map(|m| B::Meter(MeterId(m))),
            any::<u32>().prop_map(|m| B::MeterConfig(MeterId(m))),
            Just(B::MeterFeatures),
            vec(table::strategies::table_features(), 0..3).prop_map(B::TableFeatures),
            experimenter().prop_map(B::Experimenter),
            (14u16..0xffff, vec(any::<u8>(), 0..16))
                .prop_map(|(t, body)| B::Unknown { mp_type: MultipartType::from(t), body }),
        ]
    }

    /// Any reply body this module decodes (Flow, Desc and PortDesc excluded: not ours).
    pub(crate) fn reply_body() -> impl Strategy<Value = MultipartReplyBody> {
        use MultipartReplyBody as B;
        prop_oneof![
            any::<(u64, u64, u32)>().prop_map(|(p, b, f)| B::Aggregate(AggregateStats {
                packet_count: p,
                byte_count: b,
                flow_count: f
            })),
            vec(table::strategies::table_stats(), 0..4).prop_map(B::Table),
            vec(port_stats(), 0..3).prop_map(B::PortStats),
            vec(queue::strategies::queue_stats(), 0..3).prop_map(B::Queue),
            vec(group::strategies::group_stats(), 0..3).prop_map(B::Group),
            vec(group::strategies::group_desc(), 0..3).prop_map(B::GroupDesc),
            group::strategies::group_features().prop_map(B::GroupFeatures),
            vec(meter::strategies::meter_stats(), 0..3).prop_map(B::Meter),
            vec(meter::strategies::meter_config(), 0..3).prop_map(B::MeterConfig),
            meter::strategies::meter_features().prop_map(B::MeterFeatures),
            vec(table::strategies::table_features(), 0..3).prop_map(B::TableFeatures),
            experimenter().prop_map(B::Experimenter),
            (14u16..0xffff, vec(any::<u8>(), 0..16))
                .prop_map(|(t, body)| B::Unknown { mp_type: MultipartType::from(t), body }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::openflow::error::test_util::{assert_truncations_fail, hex};
    use crate::openflow::group::{Bucket, GroupType};
    use crate::openflow::meter::{MeterBand, METER_FLAG_KBPS};
    use crate::openflow::table::{OxmId, TableFeatureProp};
    use crate::openflow::{Action, Message, OfpMessage, Xid};

    const PORT_STATS_REQUEST: &str = "0412 0018 00000021 0004 0000 00000000 00000002 00000000";
    const AGGREGATE_REPLY: &str =
        "0413 0028 00000022 0002 0000 00000000 0000000000000064 0000000000001770 00000003 00000000";
    /// Two tables: 0 with 5 flows, 1 empty.
    const TABLE_REPLY: &str = "0413 0040 00000023 0003 0000 00000000
        00 000000 00000005 00000000000003e8 0000000000000384
        01 000000 00000000 0000000000000384 0000000000000000";
    /// Group 7, indirect, one bucket outputting to port 3.
    const GROUP_DESC_REPLY: &str = "0413 0038 00000024 0007 0000 00000000
        0028 02 00 00000007
        0020 0000 ffffffff ffffffff 00000000 0000 0010 00000003 ffff 000000000000";
    /// Meter 1, kbps, one drop band at 1000 kb/s.
    const METER_CONFIG_REPLY: &str = "0413 0028 00000025 000a 0000 00000000
        0018 0001 00000001 0001 0010 000003e8 00000000 00000000";
    /// Table 0 "classifier": match on in_port, next tables 1 and 2.
    const TABLE_FEATURES_REPLY: &str = "0413 0060 00000026 000c 0000 00000000
        0050 00 0000000000 636c617373696669657200000000000000000000000000000000000000000000
        0000000000000000 ffffffffffffffff 00000000 000f4240
        0008 0008 80000004
        0002 0006 0102 0000";

    fn reply_body(bytes: &str) -> MultipartReplyBody {
        let m = OfpMessage::parse(&hex(bytes)).unwrap();
        let Message::MultipartReply(r) = m.msg else { panic!("not a multipart reply: {m:?}") };
        r.body
    }

    fn assert_round_trip(bytes: &str) {
        let b = hex(bytes);
        assert_eq!(OfpMessage::parse(&b).unwrap().to_vec(), b);
        assert_truncations_fail(&b);
    }

    #[test]
    fn port_stats_request_parses() {
        let m = OfpMessage::parse(&hex(PORT_STATS_REQUEST)).unwrap();
        let Message::MultipartRequest(r) = m.msg else { panic!("not a request") };
        assert_eq!(r.body, MultipartRequestBody::PortStats(PortNo(2)));
        assert_round_trip(PORT_STATS_REQUEST);
    }

    #[test]
    fn aggregate_reply_parses() {
        assert_eq!(
            reply_body(AGGREGATE_REPLY),
            MultipartReplyBody::Aggregate(AggregateStats {
                packet_count: 100,
                byte_count: 6000,
                flow_count: 3
            })
        );
        assert_round_trip(AGGREGATE_REPLY);
    }

    #[test]
    fn table_reply_parses() {
        let MultipartReplyBody::Table(t) = reply_body(TABLE_REPLY) else {
            panic!("not table stats")
        };
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].table_id, t[0].active_count, t[0].lookup_count, t[0].matched_count),
            (TableId(0), 5, 1000, 900)
        );
        assert_round_trip(TABLE_REPLY);
    }

    #[test]
    fn group_desc_reply_parses() {
        assert_eq!(
            reply_body(GROUP_DESC_REPLY),
            MultipartReplyBody::GroupDesc(vec![GroupDesc {
                group_type: GroupType::Indirect,
                group_id: GroupId(7),
                buckets: vec![Bucket::with_actions(vec![Action::output(PortNo(3))])],
            }])
        );
        assert_round_trip(GROUP_DESC_REPLY);
    }

    #[test]
    fn meter_config_reply_parses() {
        assert_eq!(
            reply_body(METER_CONFIG_REPLY),
            MultipartReplyBody::MeterConfig(vec![MeterConfig {
                flags: METER_FLAG_KBPS,
                meter_id: MeterId(1),
                bands: vec![MeterBand::Drop { rate: 1000, burst_size: 0 }],
            }])
        );
        assert_round_trip(METER_CONFIG_REPLY);
    }

    #[test]
    fn table_features_reply_parses() {
        let MultipartReplyBody::TableFeatures(t) = reply_body(TABLE_FEATURES_REPLY) else {
            panic!("not table features")
        };
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "classifier");
        assert_eq!(t[0].metadata_write, u64::MAX);
        assert_eq!(t[0].max_entries, 1_000_000);
        assert_eq!(
            t[0].properties,
            vec![
                TableFeatureProp::Match(vec![OxmId::basic(0x8000_0004)]),
                TableFeatureProp::NextTables(vec![TableId(1), TableId(2)]),
            ]
        );
        assert_round_trip(TABLE_FEATURES_REPLY);
    }

    #[test]
    fn table_features_request_may_be_empty() {
        let req = MultipartRequest { flags: 0, body: MultipartRequestBody::TableFeatures(vec![]) };
        let m = OfpMessage::new(Xid(9), Message::MultipartRequest(req));
        assert_eq!(m.to_vec(), hex("0412 0010 00000009 000c 0000 00000000"));
        assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
    }

    #[test]
    fn body_on_bodiless_request_is_rejected() {
        let err = OfpMessage::parse(&hex("0412 0018 00000009 0003 0000 00000000 0000000000000000"))
            .unwrap_err();
        assert!(matches!(err, DecodeError::Trailing { offset: 16, extra: 8, .. }), "{err}");
    }

    #[test]
    fn partial_port_stats_entry_is_rejected() {
        let mut buf = BytesMut::new();
        let reply = MultipartReply {
            flags: 0,
            body: MultipartReplyBody::PortStats(vec![PortStats::default(); 2]),
        };
        OfpMessage::new(Xid(1), Message::MultipartReply(reply)).emit(&mut buf);
        let n = buf.len() - 8;
        buf[2..4].copy_from_slice(&(n as u16).to_be_bytes());
        let err = OfpMessage::parse(&buf[..n]).unwrap_err();
        assert!(
            matches!(err, DecodeError::Truncated { what: "port_stats duration_sec", .. }),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn requests_round_trip(body in strategies::request_body(), flags in any::<u16>(), xid in any::<u32>()) {
            let m = OfpMessage::new(Xid(xid), Message::MultipartRequest(MultipartRequest { flags, body }));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }

        #[test]
        fn replies_round_trip(body in strategies::reply_body(), flags in any::<u16>(), xid in any::<u32>()) {
            let m = OfpMessage::new(Xid(xid), Message::MultipartReply(MultipartReply { flags, body }));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }
    }
}
