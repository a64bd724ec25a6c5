//! OFPT_FLOW_MOD (spec 1.3.5 §7.3.4.1).
//!
//! ```text
//! struct ofp_flow_mod {
//!     struct ofp_header header;
//!     uint64_t cookie; uint64_t cookie_mask; uint8_t table_id; uint8_t command;
//!     uint16_t idle_timeout; uint16_t hard_timeout; uint16_t priority; uint32_t buffer_id;
//!     uint32_t out_port; uint32_t out_group; uint16_t flags; uint8_t pad[2];
//!     struct ofp_match match;            /* variable, padded to 8 */
//!     struct ofp_instruction instructions[0];
//! };
//! ```

use bytes::BytesMut;
use serde::Serialize;

use super::error::wire_enum;
use super::instruction::{Instruction, Instructions};
use super::oxm::Match;
use super::types::{BufferId, Cookie, GroupId, PortNo, TableId};
use super::wire::{Reader, Writer};
use super::DecodeError;

wire_enum! {
    /// `ofp_flow_mod_command`.
    FlowModCommand: u8 {
        /// New flow.
        Add = 0 => "ADD",
        /// Modify all matching flows.
        Modify = 1 => "MODIFY",
        /// Modify the flow matching exactly, with the same priority.
        ModifyStrict = 2 => "MODIFY_STRICT",
        /// Delete all matching flows.
        Delete = 3 => "DELETE",
        /// Delete the flow matching exactly, with the same priority.
        DeleteStrict = 4 => "DELETE_STRICT",
    }
}

/// Bytes of `ofp_flow_mod` between the header and the match.
const FIXED_LEN: usize = 40;

/// `ofp_flow_mod_flags` bit: send FLOW_REMOVED when the flow expires or is deleted.
pub const FLOW_MOD_SEND_FLOW_REM: u16 = 1 << 0;
/// `ofp_flow_mod_flags` bit: check for overlapping entries first.
pub const FLOW_MOD_CHECK_OVERLAP: u16 = 1 << 1;
/// `ofp_flow_mod_flags` bit: reset flow packet and byte counts.
pub const FLOW_MOD_RESET_COUNTS: u16 = 1 << 2;
/// `ofp_flow_mod_flags` bit: don't keep track of packet count.
pub const FLOW_MOD_NO_PKT_COUNTS: u16 = 1 << 3;
/// `ofp_flow_mod_flags` bit: don't keep track of byte count.
pub const FLOW_MOD_NO_BYT_COUNTS: u16 = 1 << 4;

/// OFPT_FLOW_MOD: add, change or delete flow entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowMod {
    /// Opaque controller-issued identifier.
    pub cookie: Cookie,
    /// For modify and delete: which cookie bits must match.
    pub cookie_mask: u64,
    /// Table to put the flow in (or `TableId::ALL` for deletes).
    pub table_id: TableId,
    /// What to do.
    pub command: FlowModCommand,
    /// Idle time before discarding, in seconds (0: never).
    pub idle_timeout: u16,
    /// Max time before discarding, in seconds (0: never).
    pub hard_timeout: u16,
    /// Priority of the entry.
    pub priority: u16,
    /// Buffered packet to apply to.
    pub buffer_id: BufferId,
    /// For deletes: only flows that output to this port (`PortNo::ANY`: no filter).
    pub out_port: PortNo,
    /// For deletes: only flows that output to this group (`GroupId::ANY`: no filter).
    pub out_group: GroupId,
    /// `ofp_flow_mod_flags` bits.
    pub flags: u16,
    /// Fields to match.
    pub matches: Match,
    /// Instructions.
    pub instructions: Instructions,
}

impl Default for FlowMod {
    fn default() -> Self {
        FlowMod {
            cookie: Cookie(0),
            cookie_mask: 0,
            table_id: TableId(0),
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: 0x8000,
            buffer_id: BufferId::NO_BUFFER,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            flags: 0,
            matches: Match::default(),
            instructions: Instructions::new(),
        }
    }
}

impl FlowMod {
    /// Parses the body after the OpenFlow header.
    #[inline]
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut fm = FlowMod::default();
        fm.parse_in_place(r)?;
        Ok(fm)
    }

    /// [`FlowMod::parse`] into `self`, whose match and instructions must be empty (they are
    /// appended to). With its match, instructions and actions inline, a flow mod is several
    /// hundred bytes: parsing it where it stays saves copying it at every step.
    #[inline]
    pub(crate) fn parse_in_place(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        match r.fixed::<FIXED_LEN>() {
            Some(a) => {
                let be16 = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
                let be32 = |i: usize| u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
                let be64 = |i: usize| u64::from(be32(i)) << 32 | u64::from(be32(i + 4));
                self.cookie = Cookie(be64(0));
                self.cookie_mask = be64(8);
                self.table_id = TableId(a[16]);
                self.command = FlowModCommand::from(a[17]);
                self.idle_timeout = be16(18);
                self.hard_timeout = be16(20);
                self.priority = be16(22);
                self.buffer_id = BufferId(be32(24));
                self.out_port = PortNo(be32(28));
                self.out_group = GroupId(be32(32));
                self.flags = be16(36);
            }
            None => self.parse_fixed_by_field(r)?,
        }
        self.matches.parse_in_place(r)?;
        Instruction::parse_list_into(r, &mut self.instructions)
    }

    /// The fixed part one field at a time, for a body too short for it: the error names the
    /// field that is cut.
    #[cold]
    fn parse_fixed_by_field(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        self.cookie = Cookie(r.u64("flow_mod cookie")?);
        self.cookie_mask = r.u64("flow_mod cookie_mask")?;
        self.table_id = TableId(r.u8("flow_mod table_id")?);
        self.command = FlowModCommand::from(r.u8("flow_mod command")?);
        self.idle_timeout = r.u16("flow_mod idle_timeout")?;
        self.hard_timeout = r.u16("flow_mod hard_timeout")?;
        self.priority = r.u16("flow_mod priority")?;
        self.buffer_id = BufferId(r.u32("flow_mod buffer_id")?);
        self.out_port = PortNo(r.u32("flow_mod out_port")?);
        self.out_group = GroupId(r.u32("flow_mod out_group")?);
        self.flags = r.u16("flow_mod flags")?;
        r.skip(2, "flow_mod pad")
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        self.write(&mut Writer::new(buf, self.size_hint()));
    }

    /// Writes the body after the OpenFlow header.
    #[inline]
    pub fn write(&self, w: &mut Writer<'_>) {
        let mut a = [0u8; FIXED_LEN];
        a[0..8].copy_from_slice(&self.cookie.0.to_be_bytes());
        a[8..16].copy_from_slice(&self.cookie_mask.to_be_bytes());
        a[16] = self.table_id.0;
        a[17] = self.command.into();
        a[18..20].copy_from_slice(&self.idle_timeout.to_be_bytes());
        a[20..22].copy_from_slice(&self.hard_timeout.to_be_bytes());
        a[22..24].copy_from_slice(&self.priority.to_be_bytes());
        a[24..28].copy_from_slice(&self.buffer_id.0.to_be_bytes());
        a[28..32].copy_from_slice(&self.out_port.0.to_be_bytes());
        a[32..36].copy_from_slice(&self.out_group.0.to_be_bytes());
        a[36..38].copy_from_slice(&self.flags.to_be_bytes());
        w.array(a);
        self.matches.write(w);
        Instruction::write_list(&self.instructions, w);
    }

    /// About how many bytes [`FlowMod::emit`] writes (to size the buffer; never trusted).
    #[inline]
    pub fn size_hint(&self) -> usize {
        self.instructions
            .iter()
            .fold(FIXED_LEN + self.matches.size_hint(), |n, i| n + i.size_hint())
    }
}
