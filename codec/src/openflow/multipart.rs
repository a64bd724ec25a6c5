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
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::error::wire_enum;
use super::instruction::Instruction;
use super::oxm::Match;
use super::port::{Port, PORT_LEN};
use super::types::{Cookie, GroupId, PortNo, TableId};
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
    /// OFPMP_FLOW.
    Flow(FlowStatsRequest),
    /// OFPMP_PORT_DESC (empty body).
    PortDesc,
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
    /// OFPMP_PORT_DESC.
    PortDesc(Vec<Port>),
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
    pub instructions: Vec<Instruction>,
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

impl MultipartRequest {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mp_type = MultipartType::from(r.u16("multipart type")?);
        let flags = r.u16("multipart flags")?;
        r.skip(4, "multipart pad")?;
        let body = match mp_type {
            MultipartType::Desc => MultipartRequestBody::Desc,
            MultipartType::PortDesc => MultipartRequestBody::PortDesc,
            MultipartType::Flow => MultipartRequestBody::Flow(FlowStatsRequest::parse(r)?),
            _ => MultipartRequestBody::Unknown { mp_type, body: take_rest(r)? },
        };
        Ok(MultipartRequest { flags, body })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        let mp_type = match &self.body {
            MultipartRequestBody::Desc => MultipartType::Desc,
            MultipartRequestBody::Flow(_) => MultipartType::Flow,
            MultipartRequestBody::PortDesc => MultipartType::PortDesc,
            MultipartRequestBody::Unknown { mp_type, .. } => *mp_type,
        };
        buf.put_u16(mp_type.into());
        buf.put_u16(self.flags);
        buf.put_bytes(0, 4);
        match &self.body {
            MultipartRequestBody::Desc | MultipartRequestBody::PortDesc => {}
            MultipartRequestBody::Flow(f) => f.emit(buf),
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
            MultipartType::PortDesc => {
                let mut ports = Vec::with_capacity(r.remaining() / PORT_LEN);
                while !r.is_empty() {
                    ports.push(Port::parse(r)?);
                }
                MultipartReplyBody::PortDesc(ports)
            }
            MultipartType::Flow => {
                let mut flows = Vec::new();
                while !r.is_empty() {
                    flows.push(FlowStats::parse(r)?);
                }
                MultipartReplyBody::Flow(flows)
            }
            _ => MultipartReplyBody::Unknown { mp_type, body: take_rest(r)? },
        };
        Ok(MultipartReply { flags, body })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        let mp_type = match &self.body {
            MultipartReplyBody::Desc(_) => MultipartType::Desc,
            MultipartReplyBody::Flow(_) => MultipartType::Flow,
            MultipartReplyBody::PortDesc(_) => MultipartType::PortDesc,
            MultipartReplyBody::Unknown { mp_type, .. } => *mp_type,
        };
        buf.put_u16(mp_type.into());
        buf.put_u16(self.flags);
        buf.put_bytes(0, 4);
        match &self.body {
            MultipartReplyBody::Desc(d) => d.emit(buf),
            MultipartReplyBody::Flow(flows) => flows.iter().for_each(|f| f.emit(buf)),
            MultipartReplyBody::PortDesc(ports) => ports.iter().for_each(|p| p.emit(buf)),
            MultipartReplyBody::Unknown { body, .. } => buf.put_slice(body),
        }
    }
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
        let matches = Match::parse(&mut b)?;
        let instructions = Instruction::parse_list(&mut b)?;
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
