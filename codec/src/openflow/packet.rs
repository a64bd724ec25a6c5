//! OFPT_PACKET_IN (spec 1.3.5 §7.4.1) and OFPT_PACKET_OUT (§7.3.7).
//!
//! ```text
//! struct ofp_packet_in {
//!     struct ofp_header header; uint32_t buffer_id; uint16_t total_len; uint8_t reason;
//!     uint8_t table_id; uint64_t cookie; struct ofp_match match; uint8_t pad[2]; uint8_t data[0];
//! };
//! struct ofp_packet_out {
//!     struct ofp_header header; uint32_t buffer_id; uint32_t in_port; uint16_t actions_len;
//!     uint8_t pad[6]; struct ofp_action_header actions[0]; /* uint8_t data[0]; */
//! };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::action::Action;
use super::error::wire_enum;
use super::oxm::{Match, OxmField};
use super::types::{BufferId, Cookie, PortNo, TableId};
use super::wire::Reader;
use super::DecodeError;

wire_enum! {
    /// `ofp_packet_in_reason`.
    PacketInReason: u8 {
        /// No matching flow (table-miss flow entry).
        NoMatch = 0 => "no_match",
        /// Action explicitly output to controller.
        Action = 1 => "action",
        /// Packet has invalid TTL.
        InvalidTtl = 2 => "invalid_ttl",
    }
}

/// OFPT_PACKET_IN: a packet sent to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketIn {
    /// Buffer id on the switch, or `NO_BUFFER`.
    pub buffer_id: BufferId,
    /// Full length of the frame.
    pub total_len: u16,
    /// Why the packet is sent.
    pub reason: PacketInReason,
    /// Table that was looked up.
    pub table_id: TableId,
    /// Cookie of the flow entry that was looked up.
    pub cookie: Cookie,
    /// Packet metadata (in_port, tunnel fields, registers).
    pub matches: Match,
    /// The frame (or its first bytes).
    pub data: Vec<u8>,
}

impl PacketIn {
    /// The input port from the packet's metadata, if present.
    pub fn in_port(&self) -> Option<PortNo> {
        self.matches.fields.iter().find_map(|f| match f {
            OxmField::InPort(p) => Some(*p),
            _ => None,
        })
    }

    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::parse_boxed(r).map(|p| *p)
    }

    /// [`PacketIn::parse`] into a box, with the match parsed in its place there (its fields
    /// are inline: a packet-in is a few hundred bytes).
    #[inline]
    pub(crate) fn parse_boxed(r: &mut Reader<'_>) -> Result<Box<Self>, DecodeError> {
        let buffer_id = BufferId(r.u32("packet_in buffer_id")?);
        let total_len = r.u16("packet_in total_len")?;
        let reason = PacketInReason::from(r.u8("packet_in reason")?);
        let table_id = TableId(r.u8("packet_in table_id")?);
        let cookie = Cookie(r.u64("packet_in cookie")?);
        let mut p = Box::new(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            matches: Match::default(),
            data: Vec::new(),
        });
        p.matches.parse_in_place(r)?;
        r.skip(2, "packet_in pad")?;
        p.data = r.rest().to_vec();
        r.skip(p.data.len(), "packet_in data")?;
        Ok(p)
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.buffer_id.0);
        buf.put_u16(self.total_len);
        buf.put_u8(self.reason.into());
        buf.put_u8(self.table_id.0);
        buf.put_u64(self.cookie.0);
        self.matches.emit(buf);
        buf.put_bytes(0, 2);
        buf.put_slice(&self.data);
    }
}

/// OFPT_PACKET_OUT: send a packet through the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketOut {
    /// Buffered packet to send, or `NO_BUFFER` to send `data`.
    pub buffer_id: BufferId,
    /// Input port to pretend the packet came from (`CONTROLLER` for none).
    pub in_port: PortNo,
    /// Actions to apply.
    pub actions: Vec<Action>,
    /// The frame, when not buffered.
    pub data: Vec<u8>,
}

impl PacketOut {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let buffer_id = BufferId(r.u32("packet_out buffer_id")?);
        let in_port = PortNo(r.u32("packet_out in_port")?);
        let actions_len = r.u16("packet_out actions_len")? as usize;
        r.skip(6, "packet_out pad")?;
        let mut ar = r.sub(actions_len, "packet_out actions")?;
        let actions = Action::parse_list(&mut ar)?;
        let data = r.rest().to_vec();
        r.skip(data.len(), "packet_out data")?;
        Ok(PacketOut { buffer_id, in_port, actions, data })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.buffer_id.0);
        buf.put_u32(self.in_port.0);
        let len_at = buf.len();
        buf.put_u16(0);
        buf.put_bytes(0, 6);
        let start = buf.len();
        Action::emit_list(&self.actions, buf);
        let actions_len = u16::try_from(buf.len() - start).unwrap_or(u16::MAX);
        buf[len_at..len_at + 2].copy_from_slice(&actions_len.to_be_bytes());
        buf.put_slice(&self.data);
    }
}
