//! Actions (spec 1.3.5 §7.2.5), plus the Nicira extension actions a mirror pipeline needs.
//!
//! ```text
//! struct ofp_action_header { uint16_t type; uint16_t len; /* padded to 8 bytes */ };
//! struct ofp_action_output { uint16_t type; uint16_t len; uint32_t port; uint16_t max_len; uint8_t pad[6]; };
//! struct ofp_action_generic { uint16_t type; uint16_t len; uint8_t pad[4]; };   /* no argument */
//! struct ofp_action_mpls_ttl / nw_ttl { uint16_t type; uint16_t len; uint8_t ttl; uint8_t pad[3]; };
//! struct ofp_action_push / pop_mpls { uint16_t type; uint16_t len; uint16_t ethertype; uint8_t pad[2]; };
//! struct ofp_action_set_queue { uint16_t type; uint16_t len; uint32_t queue_id; };
//! struct ofp_action_group { uint16_t type; uint16_t len; uint32_t group_id; };
//! struct ofp_action_set_field { uint16_t type; uint16_t len; uint8_t field[4]; /* OXM TLV, padded */ };
//! struct ofp_action_experimenter_header { uint16_t type; uint16_t len; uint32_t experimenter; };
//! ```
//!
//! Nicira actions are experimenter actions with id 0x00002320 and a 16-bit subtype:
//!
//! ```text
//! nx_action_resubmit     { ..., uint16_t subtype /* 1 or 14 */; uint16_t in_port; uint8_t table; uint8_t pad[3]; };
//! nx_action_reg_move     { ..., uint16_t subtype /* 6 */; uint16_t n_bits; uint16_t src_ofs; uint16_t dst_ofs;
//!                          /* src header, dst header (4 or 8 bytes each), padded */ };
//! nx_action_reg_load     { ..., uint16_t subtype /* 7 */; uint16_t ofs_nbits; uint32_t dst; uint64_t value; };
//! nx_action_note         { ..., uint16_t subtype /* 8 */; uint8_t note[6]; /* more, padded */ };
//! nx_action_reg_load2    { ..., uint16_t subtype /* 33 */; /* OXM TLV, padded */ };
//! nx_action_output_trunc { ..., uint16_t subtype /* 39 */; uint16_t port; uint32_t max_len; };
//! nx_action_clone        { ..., uint16_t subtype /* 42 */; uint8_t pad[6]; /* nested actions */ };
//! ```

use bytes::BytesMut;
use serde::Serialize;
use smallvec::SmallVec;

use super::experimenter::NICIRA_EXPERIMENTER_ID;
use super::oxm::{OxmField, OxmHeader, Subfield};
use super::types::{GroupId, PortNo, QueueId, TableId};
use super::wire::{count_structs, Reader, Writer};
use super::DecodeError;

/// How many actions [`Actions`] holds without a heap allocation.
pub const INLINE_ACTIONS: usize = 4;

/// The actions of an instruction, inline up to [`INLINE_ACTIONS`] (most flows set a field or
/// two and output once or twice).
pub type Actions = SmallVec<[Action; INLINE_ACTIONS]>;

/// OFPCML_NO_BUFFER: send the whole packet to the controller.
pub const CONTROLLER_MAX_LEN_NO_BUFFER: u16 = 0xffff;
/// How deeply `clone` actions may nest before the decoder refuses the list.
pub const MAX_NESTING: usize = 16;

const OFPAT_OUTPUT: u16 = 0;
/// Size of `ofp_action_output`.
const OUTPUT_LEN: usize = 16;
// `Action::parse_actions_into` matches these two as literals.
const _: () = assert!(OFPAT_OUTPUT == 0 && OUTPUT_LEN == 16);
const OFPAT_COPY_TTL_OUT: u16 = 11;
const OFPAT_COPY_TTL_IN: u16 = 12;
const OFPAT_SET_MPLS_TTL: u16 = 15;
const OFPAT_DEC_MPLS_TTL: u16 = 16;
const OFPAT_PUSH_VLAN: u16 = 17;
const OFPAT_POP_VLAN: u16 = 18;
const OFPAT_PUSH_MPLS: u16 = 19;
const OFPAT_POP_MPLS: u16 = 20;
const OFPAT_SET_QUEUE: u16 = 21;
const OFPAT_GROUP: u16 = 22;
const OFPAT_SET_NW_TTL: u16 = 23;
const OFPAT_DEC_NW_TTL: u16 = 24;
const OFPAT_SET_FIELD: u16 = 25;
const OFPAT_PUSH_PBB: u16 = 26;
const OFPAT_POP_PBB: u16 = 27;
const OFPAT_EXPERIMENTER: u16 = 0xffff;

const NXAST_RESUBMIT: u16 = 1;
const NXAST_REG_MOVE: u16 = 6;
const NXAST_REG_LOAD: u16 = 7;
const NXAST_NOTE: u16 = 8;
const NXAST_RESUBMIT_TABLE: u16 = 14;
const NXAST_REG_LOAD2: u16 = 33;
const NXAST_OUTPUT_TRUNC: u16 = 39;
const NXAST_CLONE: u16 = 42;

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Action {
    /// OFPAT_OUTPUT: send out a port; `max_len` bytes go to the controller.
    Output {
        /// Output port.
        port: PortNo,
        /// For CONTROLLER, how many bytes to send.
        max_len: u16,
    },
    /// OFPAT_COPY_TTL_OUT: copy the TTL outwards, from next-to-outermost to outermost header.
    CopyTtlOut,
    /// OFPAT_COPY_TTL_IN: copy the TTL inwards, from outermost to next-to-outermost header.
    CopyTtlIn,
    /// OFPAT_SET_MPLS_TTL.
    SetMplsTtl(u8),
    /// OFPAT_DEC_MPLS_TTL.
    DecMplsTtl,
    /// OFPAT_PUSH_VLAN with the new tag's ethertype (0x8100 or 0x88a8).
    PushVlan(u16),
    /// OFPAT_POP_VLAN.
    PopVlan,
    /// OFPAT_PUSH_MPLS with the ethertype (0x8847 or 0x8848).
    PushMpls(u16),
    /// OFPAT_POP_MPLS with the ethertype of the payload.
    PopMpls(u16),
    /// OFPAT_SET_QUEUE.
    SetQueue(QueueId),
    /// OFPAT_GROUP: process the packet through a group.
    Group(GroupId),
    /// OFPAT_SET_NW_TTL.
    SetNwTtl(u8),
    /// OFPAT_DEC_NW_TTL.
    DecNwTtl,
    /// OFPAT_SET_FIELD: set a header or metadata field (OVS `set_field:v->tun_id`).
    SetField(OxmField),
    /// OFPAT_PUSH_PBB with the ethertype (0x88e7).
    PushPbb(u16),
    /// OFPAT_POP_PBB.
    PopPbb,
    /// NXAST_RESUBMIT: look the packet up again in the current table, as if from `in_port`.
    /// Ports travel as OpenFlow 1.0 16-bit ports here and in the other Nicira actions (see
    /// [`port_to_16`]); a port without a 16-bit form is sent as 0, which switches refuse.
    Resubmit {
        /// Input port for the lookup (`IN_PORT`: the packet's own).
        in_port: PortNo,
    },
    /// NXAST_RESUBMIT_TABLE: look the packet up again (`resubmit(port,table)`).
    ResubmitTable {
        /// Input port for the lookup (`IN_PORT`: the packet's own).
        in_port: PortNo,
        /// Table to look up (255: the current table).
        table: TableId,
    },
    /// NXAST_CLONE: run the nested actions on a copy of the packet.
    Clone(Vec<Action>),
    /// NXAST_OUTPUT_TRUNC: output at most `max_len` bytes of the packet to `port`.
    OutputTrunc {
        /// Output port (an OpenFlow 1.0 16-bit port on the wire).
        port: PortNo,
        /// Bytes to keep.
        max_len: u32,
    },
    /// NXAST_REG_LOAD: load `value` into a subfield (`load:0x1->NXM_NX_REG0[0..7]`). The wire
    /// holds 1..=64 bits and a 4-byte header: `n_bits` is clamped to that range when emitted.
    RegLoad {
        /// Destination bits.
        dst: Subfield,
        /// Value, right-aligned.
        value: u64,
    },
    /// NXAST_REG_LOAD2: set a field from a (possibly masked) OXM TLV.
    RegLoad2(OxmField),
    /// NXAST_REG_MOVE: copy bits between fields (`move:NXM_NX_REG0[]->NXM_NX_REG1[]`). Both
    /// subfields carry the same `n_bits`.
    RegMove {
        /// Source bits.
        src: Subfield,
        /// Destination bits.
        dst: Subfield,
    },
    /// NXAST_NOTE: opaque bytes kept with the flow (padding included, as OVS prints it).
    Note(Vec<u8>),
    /// An experimenter action this codec does not decode (for Nicira, `data` starts with the
    /// subtype).
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Bytes after the experimenter id, padding included.
        data: Vec<u8>,
    },
    /// An action this codec does not decode, kept as bytes.
    Unknown {
        /// Action type.
        action_type: u16,
        /// Bytes after the 4-byte header, padding included.
        data: Vec<u8>,
    },
}

/// An OpenFlow 1.0 16-bit port as a 32-bit port: reserved ports 0xff00.. map to 0xffffff00...
pub fn port_from_16(p: u16) -> PortNo {
    if p >= 0xff00 {
        PortNo(0xffff_0000 | u32::from(p))
    } else {
        PortNo(u32::from(p))
    }
}

/// A 32-bit port as an OpenFlow 1.0 16-bit port; `None` for ports 0xff00..0xfffffeff, which
/// have no 16-bit form.
pub fn port_to_16(p: PortNo) -> Option<u16> {
    if p.0 >= 0xffff_ff00 {
        Some((p.0 & 0xffff) as u16)
    } else {
        u16::try_from(p.0).ok().filter(|v| *v < 0xff00)
    }
}

impl Action {
    /// OFPAT_OUTPUT to `port` with no controller length limit.
    pub fn output(port: PortNo) -> Self {
        Action::Output { port, max_len: CONTROLLER_MAX_LEN_NO_BUFFER }
    }

    /// Parses one action.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::parse_nested(r, 0)
    }

    fn parse_nested(r: &mut Reader<'_>, depth: usize) -> Result<Self, DecodeError> {
        let start = r.offset();
        // OFPAT_OUTPUT, by far the most common action, decoded in one step.
        if let Some(&[t0, t1, l0, l1, p0, p1, p2, p3, m0, m1, ..]) =
            r.rest().first_chunk::<OUTPUT_LEN>()
        {
            if u16::from_be_bytes([t0, t1]) == OFPAT_OUTPUT
                && usize::from(u16::from_be_bytes([l0, l1])) == OUTPUT_LEN
            {
                r.skip(OUTPUT_LEN, "action output")?;
                let port = PortNo(u32::from_be_bytes([p0, p1, p2, p3]));
                return Ok(Action::Output { port, max_len: u16::from_be_bytes([m0, m1]) });
            }
        }
        let action_type = r.u16("action type")?;
        let len = r.u16("action length")? as usize;
        if len % 8 != 0 {
            return Err(DecodeError::BadLength { what: "action", offset: start, len });
        }
        let mut body = r.sub_to_len(start, len, 8, "action")?;
        let fixed = |want: usize, what: &'static str| {
            if len == want {
                Ok(())
            } else {
                Err(DecodeError::BadLength { what, offset: start, len })
            }
        };
        Ok(match action_type {
            OFPAT_OUTPUT => {
                fixed(16, "action output")?;
                let port = PortNo(body.u32("action output port")?);
                let max_len = body.u16("action output max_len")?;
                Action::Output { port, max_len }
            }
            OFPAT_COPY_TTL_OUT => fixed(8, "action copy_ttl_out").map(|_| Action::CopyTtlOut)?,
            OFPAT_COPY_TTL_IN => fixed(8, "action copy_ttl_in").map(|_| Action::CopyTtlIn)?,
            OFPAT_DEC_MPLS_TTL => fixed(8, "action dec_mpls_ttl").map(|_| Action::DecMplsTtl)?,
            OFPAT_POP_VLAN => fixed(8, "action pop_vlan").map(|_| Action::PopVlan)?,
            OFPAT_DEC_NW_TTL => fixed(8, "action dec_nw_ttl").map(|_| Action::DecNwTtl)?,
            OFPAT_POP_PBB => fixed(8, "action pop_pbb").map(|_| Action::PopPbb)?,
            OFPAT_SET_MPLS_TTL => {
                fixed(8, "action set_mpls_ttl")?;
                Action::SetMplsTtl(body.u8("action set_mpls_ttl ttl")?)
            }
            OFPAT_SET_NW_TTL => {
                fixed(8, "action set_nw_ttl")?;
                Action::SetNwTtl(body.u8("action set_nw_ttl ttl")?)
            }
            OFPAT_PUSH_VLAN => {
                fixed(8, "action push_vlan")?;
                Action::PushVlan(body.u16("action push_vlan ethertype")?)
            }
            OFPAT_PUSH_MPLS => {
                fixed(8, "action push_mpls")?;
                Action::PushMpls(body.u16("action push_mpls ethertype")?)
            }
            OFPAT_POP_MPLS => {
                fixed(8, "action pop_mpls")?;
                Action::PopMpls(body.u16("action pop_mpls ethertype")?)
            }
            OFPAT_PUSH_PBB => {
                fixed(8, "action push_pbb")?;
                Action::PushPbb(body.u16("action push_pbb ethertype")?)
            }
            OFPAT_SET_QUEUE => {
                fixed(8, "action set_queue")?;
                Action::SetQueue(QueueId(body.u32("action set_queue queue_id")?))
            }
            OFPAT_GROUP => {
                fixed(8, "action group")?;
                Action::Group(GroupId(body.u32("action group group_id")?))
            }
            OFPAT_SET_FIELD => Action::SetField(parse_padded_oxm(&mut body, 4, start, len)?),
            OFPAT_EXPERIMENTER => {
                let experimenter = body.u32("action experimenter id")?;
                if experimenter == NICIRA_EXPERIMENTER_ID {
                    parse_nicira(&mut body, start, len, depth)?
                } else {
                    Action::Experimenter { experimenter, data: body.rest().to_vec() }
                }
            }
            _ => Action::Unknown { action_type, data: body.rest().to_vec() },
        })
    }

    /// Emits one action, padded to 8 bytes.
    pub fn emit(&self, buf: &mut BytesMut) {
        self.write(&mut Writer::new(buf, self.size_hint()));
    }

    /// Writes one action.
    #[inline]
    pub fn write(&self, w: &mut Writer<'_>) {
        if let Action::Output { port, max_len } = self {
            // The most common action, in one store: `ofp_action_output` is 16 bytes.
            let mut a = [0u8; OUTPUT_LEN];
            a[0..2].copy_from_slice(&OFPAT_OUTPUT.to_be_bytes());
            a[2..4].copy_from_slice(&(OUTPUT_LEN as u16).to_be_bytes());
            a[4..8].copy_from_slice(&port.0.to_be_bytes());
            a[8..10].copy_from_slice(&max_len.to_be_bytes());
            w.array(a);
            return;
        }
        let g = w.guard(2);
        let simple = |w: &mut Writer<'_>, t: u16| {
            w.u16(t);
            w.u16(0);
        };
        let nicira = |w: &mut Writer<'_>, subtype: u16| {
            w.u16(OFPAT_EXPERIMENTER);
            w.u16(0);
            w.u32(NICIRA_EXPERIMENTER_ID);
            w.u16(subtype);
        };
        match self {
            Action::Output { port, max_len } => {
                simple(w, OFPAT_OUTPUT);
                w.u32(port.0);
                w.u16(*max_len);
            }
            Action::CopyTtlOut => simple(w, OFPAT_COPY_TTL_OUT),
            Action::CopyTtlIn => simple(w, OFPAT_COPY_TTL_IN),
            Action::DecMplsTtl => simple(w, OFPAT_DEC_MPLS_TTL),
            Action::PopVlan => simple(w, OFPAT_POP_VLAN),
            Action::DecNwTtl => simple(w, OFPAT_DEC_NW_TTL),
            Action::PopPbb => simple(w, OFPAT_POP_PBB),
            Action::SetMplsTtl(t) => {
                simple(w, OFPAT_SET_MPLS_TTL);
                w.u8(*t);
            }
            Action::SetNwTtl(t) => {
                simple(w, OFPAT_SET_NW_TTL);
                w.u8(*t);
            }
            Action::PushVlan(e) => {
                simple(w, OFPAT_PUSH_VLAN);
                w.u16(*e);
            }
            Action::PushMpls(e) => {
                simple(w, OFPAT_PUSH_MPLS);
                w.u16(*e);
            }
            Action::PopMpls(e) => {
                simple(w, OFPAT_POP_MPLS);
                w.u16(*e);
            }
            Action::PushPbb(e) => {
                simple(w, OFPAT_PUSH_PBB);
                w.u16(*e);
            }
            Action::SetQueue(q) => {
                simple(w, OFPAT_SET_QUEUE);
                w.u32(q.0);
            }
            Action::Group(gr) => {
                simple(w, OFPAT_GROUP);
                w.u32(gr.0);
            }
            Action::SetField(f) => {
                simple(w, OFPAT_SET_FIELD);
                f.write(w);
            }
            Action::Resubmit { in_port } | Action::ResubmitTable { in_port, .. } => {
                let (subtype, table) = match self {
                    Action::ResubmitTable { table, .. } => (NXAST_RESUBMIT_TABLE, table.0),
                    _ => (NXAST_RESUBMIT, 0),
                };
                nicira(w, subtype);
                w.u16(port_to_16(*in_port).unwrap_or(0));
                w.u8(table);
            }
            Action::Clone(actions) => {
                nicira(w, NXAST_CLONE);
                w.zeros(6);
                Action::write_list(actions, w);
            }
            Action::OutputTrunc { port, max_len } => {
                nicira(w, NXAST_OUTPUT_TRUNC);
                w.u16(port_to_16(*port).unwrap_or(0));
                w.u32(*max_len);
            }
            Action::RegLoad { dst, value } => {
                nicira(w, NXAST_REG_LOAD);
                w.u16(dst.ofs << 6 | (dst.n_bits.clamp(1, 64) - 1));
                // NXAST_REG_LOAD only has room for a 4-byte header.
                let mut h = dst.field;
                h.experimenter = None;
                h.write(w);
                w.u64(*value);
            }
            Action::RegLoad2(f) => {
                nicira(w, NXAST_REG_LOAD2);
                f.write(w);
            }
            Action::RegMove { src, dst } => {
                nicira(w, NXAST_REG_MOVE);
                w.u16(src.n_bits);
                w.u16(src.ofs);
                w.u16(dst.ofs);
                src.field.write(w);
                dst.field.write(w);
            }
            Action::Note(note) => {
                nicira(w, NXAST_NOTE);
                w.slice(note);
            }
            Action::Experimenter { experimenter, data } => {
                w.u16(OFPAT_EXPERIMENTER);
                w.u16(0);
                w.u32(*experimenter);
                w.slice(data);
            }
            Action::Unknown { action_type, data } => {
                w.u16(*action_type);
                w.u16(0);
                w.slice(data);
            }
        }
        g.pad_and_finish(w);
    }

    /// Parses actions until the reader is exhausted.
    pub fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        Self::parse_list_nested(r, 0)
    }

    /// Parses actions until the reader is exhausted, into inline storage (for instructions).
    pub fn parse_actions(r: &mut Reader<'_>) -> Result<Actions, DecodeError> {
        let mut out = Actions::new();
        Action::parse_actions_into(r, &mut out)?;
        Ok(out)
    }

    /// [`Action::parse_actions`] appending to `out`.
    #[inline]
    pub(crate) fn parse_actions_into(
        r: &mut Reader<'_>,
        out: &mut Actions,
    ) -> Result<(), DecodeError> {
        // No counting pass: a list longer than the inline room grows by doubling.
        while !r.is_empty() {
            // OFPAT_OUTPUT (type 0, length 16) straight into the list, without a `Result` in
            // between.
            if let Some(&[0, 0, 0, 16, p0, p1, p2, p3, m0, m1, ..]) =
                r.rest().first_chunk::<OUTPUT_LEN>()
            {
                r.advance(OUTPUT_LEN);
                let port = PortNo(u32::from_be_bytes([p0, p1, p2, p3]));
                out.push(Action::Output { port, max_len: u16::from_be_bytes([m0, m1]) });
                continue;
            }
            out.push(Action::parse_nested(r, 0)?);
        }
        Ok(())
    }

    fn parse_list_nested(r: &mut Reader<'_>, depth: usize) -> Result<Vec<Self>, DecodeError> {
        let mut out = Vec::with_capacity(count_structs(r.rest(), 8));
        while !r.is_empty() {
            out.push(Action::parse_nested(r, depth)?);
        }
        Ok(out)
    }

    /// Emits a list of actions.
    pub fn emit_list(actions: &[Action], buf: &mut BytesMut) {
        let hint = actions.iter().map(Action::size_hint).sum();
        Action::write_list(actions, &mut Writer::new(buf, hint));
    }

    /// Writes a list of actions.
    #[inline]
    pub fn write_list(actions: &[Action], w: &mut Writer<'_>) {
        for a in actions {
            a.write(w);
        }
    }

    /// About how many bytes [`Action::emit`] writes (to size the buffer; never trusted).
    #[inline]
    pub fn size_hint(&self) -> usize {
        match self {
            Action::SetField(f) | Action::RegLoad2(f) => 16 + f.size_hint(),
            Action::Clone(list) => list.iter().fold(16, |n, a| n + a.size_hint()),
            Action::Note(d) => 16 + d.len(),
            Action::Experimenter { data, .. } => 16 + data.len(),
            Action::Unknown { data, .. } => 8 + data.len(),
            Action::RegLoad { .. } | Action::RegMove { .. } => 32,
            _ => 16,
        }
    }

    /// The action as a fresh byte vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        self.emit(&mut b);
        b.to_vec()
    }
}

/// Reads an OXM TLV that fills the rest of an action of length `len` starting at `start`, with
/// `head` bytes of action header before it, followed only by padding to 8.
fn parse_padded_oxm(
    body: &mut Reader<'_>,
    head: usize,
    start: usize,
    len: usize,
) -> Result<OxmField, DecodeError> {
    let at = body.offset();
    let f = OxmField::parse_quick(body)?;
    // What the TLV took on the wire: its emitted length, for every field the parser accepts.
    let used = head + (body.offset() - at);
    if len != used + super::wire::pad8(used) {
        return Err(DecodeError::BadLength { what: "action set_field", offset: start, len });
    }
    Ok(f)
}

fn parse_nicira(
    body: &mut Reader<'_>,
    start: usize,
    len: usize,
    depth: usize,
) -> Result<Action, DecodeError> {
    let subtype = body.u16("action nicira subtype")?;
    let fixed = |want: usize, what: &'static str| {
        if len == want {
            Ok(())
        } else {
            Err(DecodeError::BadLength { what, offset: start, len })
        }
    };
    Ok(match subtype {
        NXAST_RESUBMIT | NXAST_RESUBMIT_TABLE => {
            fixed(16, "action resubmit")?;
            let in_port = port_from_16(body.u16("action resubmit in_port")?);
            let table = TableId(body.u8("action resubmit table")?);
            if subtype == NXAST_RESUBMIT {
                Action::Resubmit { in_port }
            } else {
                Action::ResubmitTable { in_port, table }
            }
        }
        NXAST_REG_MOVE => {
            if len < 24 {
                return Err(DecodeError::BadLength { what: "action reg_move", offset: start, len });
            }
            let n_bits = body.u16("action reg_move n_bits")?;
            let src_ofs = body.u16("action reg_move src_ofs")?;
            let dst_ofs = body.u16("action reg_move dst_ofs")?;
            let src = OxmHeader::parse(body)?;
            let dst = OxmHeader::parse(body)?;
            if body.remaining() >= 8 {
                return Err(DecodeError::BadLength { what: "action reg_move", offset: start, len });
            }
            Action::RegMove {
                src: Subfield { field: src, ofs: src_ofs, n_bits },
                dst: Subfield { field: dst, ofs: dst_ofs, n_bits },
            }
        }
        NXAST_REG_LOAD => {
            fixed(24, "action reg_load")?;
            let ofs_nbits = body.u16("action reg_load ofs_nbits")?;
            let at = body.offset();
            let field = OxmHeader::parse(body)?;
            if field.experimenter.is_some() {
                return Err(DecodeError::BadValue {
                    what: "action reg_load dst",
                    offset: at,
                    value: u64::from(field.class),
                });
            }
            let value = body.u64("action reg_load value")?;
            let dst = Subfield { field, ofs: ofs_nbits >> 6, n_bits: (ofs_nbits & 0x3f) + 1 };
            Action::RegLoad { dst, value }
        }
        NXAST_REG_LOAD2 => Action::RegLoad2(parse_padded_oxm(body, 10, start, len)?),
        NXAST_NOTE => {
            if len < 16 {
                return Err(DecodeError::BadLength { what: "action note", offset: start, len });
            }
            Action::Note(body.rest().to_vec())
        }
        NXAST_OUTPUT_TRUNC => {
            fixed(16, "action output_trunc")?;
            let port = port_from_16(body.u16("action output_trunc port")?);
            let max_len = body.u32("action output_trunc max_len")?;
            Action::OutputTrunc { port, max_len }
        }
        NXAST_CLONE => {
            if depth >= MAX_NESTING {
                return Err(DecodeError::BadValue {
                    what: "action clone nesting depth",
                    offset: start,
                    value: depth as u64,
                });
            }
            body.skip(6, "action clone pad")?;
            Action::Clone(Action::parse_list_nested(body, depth + 1)?)
        }
        _ => {
            let mut data = subtype.to_be_bytes().to_vec();
            data.extend_from_slice(body.rest());
            Action::Experimenter { experimenter: NICIRA_EXPERIMENTER_ID, data }
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::openflow::oxm::FieldInfo;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn parse_one(b: &[u8]) -> Result<Action, DecodeError> {
        let mut r = Reader::new(b);
        let a = Action::parse(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::Trailing { what: "test", offset: r.offset(), extra: 0 });
        }
        Ok(a)
    }

    fn reg(i: &str) -> OxmHeader {
        OxmHeader::by_name(i).unwrap()
    }

    /// One static sample per action; the Nicira ones are what `ovs-ofctl` 3.1 sent.
    pub(crate) fn samples() -> Vec<(&'static str, Action)> {
        use Action::*;
        vec![
            ("0000 0010 0000000b ffff 000000000000", Action::output(PortNo(11))),
            (
                "0000 0010 fffffffd 0080 000000000000",
                Output { port: PortNo::CONTROLLER, max_len: 128 },
            ),
            ("000b 0008 00000000", CopyTtlOut),
            ("000c 0008 00000000", CopyTtlIn),
            ("000f 0008 04000000", SetMplsTtl(4)),
            ("0010 0008 00000000", DecMplsTtl),
            ("0011 0008 8100 0000", PushVlan(0x8100)),
            ("0012 0008 00000000", PopVlan),
            ("0013 0008 8847 0000", PushMpls(0x8847)),
            ("0014 0008 0800 0000", PopMpls(0x0800)),
            ("0015 0008 00000003", SetQueue(QueueId(3))),
            ("0016 0008 00000004", Group(GroupId(4))),
            ("0017 0008 09000000", SetNwTtl(9)),
            ("0018 0008 00000000", DecNwTtl),
            ("0019 0010 80004c08 0000000000000064", SetField(OxmField::TunnelId(100, None))),
            (
                "0019 0010 00014004 c0000209 00000000",
                SetField(OxmField::TunIpv4Dst(Ipv4Addr::new(192, 0, 2, 9), None)),
            ),
            ("001a 0008 88e7 0000", PushPbb(0x88e7)),
            ("001b 0008 00000000", PopPbb),
            (
                "ffff 0010 00002320 000e fff8 02 000000",
                ResubmitTable { in_port: PortNo::IN_PORT, table: TableId(2) },
            ),
            (
                "ffff 0010 00002320 000e 0005 ff 000000",
                ResubmitTable { in_port: PortNo(5), table: TableId(255) },
            ),
            ("ffff 0010 00002320 0001 0003 00 000000", Resubmit { in_port: PortNo(3) }),
            (
                "ffff 0030 00002320 002a 000000000000 \
                 0000 0010 00000001 0000 000000000000 0000 0010 00000002 0000 000000000000",
                Clone(vec![
                    Output { port: PortNo(1), max_len: 0 },
                    Output { port: PortNo(2), max_len: 0 },
                ]),
            ),
            (
                "ffff 0010 00002320 0027 0001 00000080",
                OutputTrunc { port: PortNo(1), max_len: 128 },
            ),
            (
                "ffff 0018 00002320 0007 0007 00010004 0000000000000001",
                RegLoad {
                    dst: Subfield { field: reg("NXM_NX_REG0"), ofs: 0, n_bits: 8 },
                    value: 1,
                },
            ),
            (
                "ffff 0018 00002320 0007 001f 00010204 0000000000000005",
                RegLoad { dst: Subfield::whole(reg("NXM_NX_REG1")), value: 5 },
            ),
            (
                "ffff 0018 00002320 0006 0020 0000 0000 00010004 00010404",
                RegMove {
                    src: Subfield::whole(reg("NXM_NX_REG0")),
                    dst: Subfield::whole(reg("NXM_NX_REG2")),
                },
            ),
            ("ffff 0010 00002320 0008 010203000000", Note(vec![1, 2, 3, 0, 0, 0])),
            (
                "ffff 0018 00002320 0021 00014004 c0000209 000000000000",
                RegLoad2(OxmField::TunIpv4Dst(Ipv4Addr::new(192, 0, 2, 9), None)),
            ),
            (
                "ffff 0010 00002320 0010 000000000000",
                Experimenter { experimenter: 0x2320, data: hex("0010 000000000000") },
            ),
            (
                "ffff 0010 4f4e4600 0001 000000000000",
                Experimenter { experimenter: 0x4f4e_4600, data: hex("0001 000000000000") },
            ),
            ("0099 0008 01020304", Unknown { action_type: 0x99, data: vec![1, 2, 3, 4] }),
        ]
    }

    #[test]
    fn every_sample_parses_and_emits() {
        for (h, a) in samples() {
            let b = hex(h);
            assert_eq!(parse_one(&b), Ok(a.clone()), "parse {h}");
            assert_eq!(a.to_vec(), b, "emit {a:?}");
        }
    }

    #[test]
    fn every_truncation_errors() {
        for (h, _) in samples() {
            let b = hex(h);
            for n in 0..b.len() {
                assert!(Action::parse(&mut Reader::new(&b[..n])).is_err(), "{h} cut at {n}");
            }
        }
    }

    #[test]
    fn a_list_round_trips() {
        let all: Vec<Action> = samples().into_iter().map(|(_, a)| a).collect();
        let mut b = BytesMut::new();
        Action::emit_list(&all, &mut b);
        assert_eq!(Action::parse_list(&mut Reader::new(&b)).unwrap(), all);
    }

    #[test]
    fn wrong_fixed_length_is_named() {
        let err = parse_one(&hex("0011 0010 8100 0000 0000000000000000")).unwrap_err();
        assert_eq!(err, DecodeError::BadLength { what: "action push_vlan", offset: 0, len: 16 });
    }

    #[test]
    fn set_field_with_extra_padding_is_rejected() {
        let err = parse_one(&hex("0019 0018 80004c08 0000000000000064 0000000000000000"));
        assert!(matches!(err, Err(DecodeError::BadLength { what: "action set_field", .. })));
    }

    #[test]
    fn deep_clone_nesting_is_refused() {
        let mut a = Action::DecNwTtl;
        for _ in 0..MAX_NESTING + 1 {
            a = Action::Clone(vec![a]);
        }
        let err = parse_one(&a.to_vec()).unwrap_err();
        assert!(matches!(err, DecodeError::BadValue { what: "action clone nesting depth", .. }));
    }

    #[test]
    fn ports_map_between_16_and_32_bits() {
        assert_eq!(port_from_16(0xfff8), PortNo::IN_PORT);
        assert_eq!(port_to_16(PortNo::IN_PORT), Some(0xfff8));
        assert_eq!(port_to_16(PortNo(0x1_0000)), None);
        assert_eq!(port_from_16(7), PortNo(7));
        assert!(FieldInfo::by_name("reg0").is_some());
    }
}
