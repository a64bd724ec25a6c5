//! Instructions (spec 1.3.5 §7.2.4).
//!
//! ```text
//! struct ofp_instruction { uint16_t type; uint16_t len; };
//! struct ofp_instruction_goto_table { uint16_t type; uint16_t len; uint8_t table_id; uint8_t pad[3]; };
//! struct ofp_instruction_write_metadata {
//!     uint16_t type; uint16_t len; uint8_t pad[4]; uint64_t metadata; uint64_t metadata_mask;
//! };
//! struct ofp_instruction_actions { uint16_t type; uint16_t len; uint8_t pad[4]; struct ofp_action_header actions[0]; };
//! struct ofp_instruction_meter { uint16_t type; uint16_t len; uint32_t meter_id; };
//! struct ofp_instruction_experimenter { uint16_t type; uint16_t len; uint32_t experimenter; /* data */ };
//! ```
//! WRITE_ACTIONS, APPLY_ACTIONS and CLEAR_ACTIONS share `ofp_instruction_actions` (CLEAR has no
//! actions).

use bytes::BytesMut;
use serde::Serialize;
use smallvec::SmallVec;

use super::action::{Action, Actions};
use super::types::{MeterId, TableId};
use super::wire::{Reader, Writer};
use super::DecodeError;

/// How many instructions [`Instructions`] holds without a heap allocation.
pub const INLINE_INSTRUCTIONS: usize = 2;

/// The instructions of a flow, inline up to [`INLINE_INSTRUCTIONS`] (apply actions, then
/// perhaps a goto).
pub type Instructions = SmallVec<[Instruction; INLINE_INSTRUCTIONS]>;

const OFPIT_GOTO_TABLE: u16 = 1;
const OFPIT_WRITE_METADATA: u16 = 2;
const OFPIT_WRITE_ACTIONS: u16 = 3;
const OFPIT_APPLY_ACTIONS: u16 = 4;
const OFPIT_CLEAR_ACTIONS: u16 = 5;
const OFPIT_METER: u16 = 6;
const OFPIT_EXPERIMENTER: u16 = 0xffff;

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Instruction {
    /// OFPIT_GOTO_TABLE.
    GotoTable(TableId),
    /// OFPIT_APPLY_ACTIONS: apply the actions now, in order.
    ApplyActions(Actions),
    /// OFPIT_WRITE_METADATA: set the masked bits of the metadata register.
    WriteMetadata {
        /// New metadata bits.
        metadata: u64,
        /// Which bits to write.
        mask: u64,
    },
    /// OFPIT_WRITE_ACTIONS: merge the actions into the action set.
    WriteActions(Actions),
    /// OFPIT_CLEAR_ACTIONS: empty the action set.
    ClearActions,
    /// OFPIT_METER: send the packet through a meter.
    Meter(MeterId),
    /// OFPIT_EXPERIMENTER, kept as bytes.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Bytes after the experimenter id.
        data: Vec<u8>,
    },
    /// An instruction this codec does not decode, kept as bytes.
    Unknown {
        /// Instruction type.
        instruction_type: u16,
        /// Bytes after the 4-byte header.
        data: Vec<u8>,
    },
}

impl Instruction {
    /// Parses one instruction.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let instruction_type = r.u16("instruction type")?;
        let len = r.u16("instruction length")? as usize;
        let mut body = r.sub_to_len(start, len, 8, "instruction")?;
        let fixed = |want: usize, what: &'static str| {
            if len == want {
                Ok(())
            } else {
                Err(DecodeError::BadLength { what, offset: start, len })
            }
        };
        Ok(match instruction_type {
            OFPIT_GOTO_TABLE => {
                fixed(8, "instruction goto_table")?;
                Instruction::GotoTable(TableId(body.u8("instruction goto_table table_id")?))
            }
            OFPIT_WRITE_METADATA => {
                fixed(24, "instruction write_metadata")?;
                body.skip(4, "instruction write_metadata pad")?;
                let metadata = body.u64("instruction write_metadata metadata")?;
                let mask = body.u64("instruction write_metadata mask")?;
                Instruction::WriteMetadata { metadata, mask }
            }
            OFPIT_WRITE_ACTIONS | OFPIT_APPLY_ACTIONS => {
                body.skip(4, "instruction actions pad")?;
                // Through the `Vec` list decoder: `parse_list`, the hot path, decodes action
                // lists in place by other code, and the tests check one against the other.
                let actions = Actions::from_vec(Action::parse_list(&mut body)?);
                if instruction_type == OFPIT_APPLY_ACTIONS {
                    Instruction::ApplyActions(actions)
                } else {
                    Instruction::WriteActions(actions)
                }
            }
            OFPIT_CLEAR_ACTIONS => {
                fixed(8, "instruction clear_actions")?;
                Instruction::ClearActions
            }
            OFPIT_METER => {
                fixed(8, "instruction meter")?;
                Instruction::Meter(MeterId(body.u32("instruction meter meter_id")?))
            }
            OFPIT_EXPERIMENTER => {
                let experimenter = body.u32("instruction experimenter id")?;
                Instruction::Experimenter { experimenter, data: body.rest().to_vec() }
            }
            _ => Instruction::Unknown { instruction_type, data: body.rest().to_vec() },
        })
    }

    /// Emits one instruction.
    pub fn emit(&self, buf: &mut BytesMut) {
        self.write(&mut Writer::new(buf, self.size_hint()));
    }

    /// Writes one instruction.
    #[inline]
    pub fn write(&self, w: &mut Writer<'_>) {
        let g = w.guard(2);
        let head = |w: &mut Writer<'_>, t: u16| {
            w.u16(t);
            w.u16(0);
        };
        match self {
            Instruction::GotoTable(t) => {
                head(w, OFPIT_GOTO_TABLE);
                w.u8(t.0);
                w.zeros(3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                head(w, OFPIT_WRITE_METADATA);
                w.zeros(4);
                w.u64(*metadata);
                w.u64(*mask);
            }
            Instruction::ApplyActions(actions) | Instruction::WriteActions(actions) => {
                let t = if matches!(self, Instruction::ApplyActions(_)) {
                    OFPIT_APPLY_ACTIONS
                } else {
                    OFPIT_WRITE_ACTIONS
                };
                head(w, t);
                w.zeros(4);
                Action::write_list(actions, w);
            }
            Instruction::ClearActions => {
                head(w, OFPIT_CLEAR_ACTIONS);
                w.zeros(4);
            }
            Instruction::Meter(m) => {
                head(w, OFPIT_METER);
                w.u32(m.0);
            }
            Instruction::Experimenter { experimenter, data } => {
                head(w, OFPIT_EXPERIMENTER);
                w.u32(*experimenter);
                w.slice(data);
            }
            Instruction::Unknown { instruction_type, data } => {
                head(w, *instruction_type);
                w.slice(data);
            }
        }
        g.finish(w);
    }

    /// Parses instructions until the reader is exhausted.
    pub fn parse_list(r: &mut Reader<'_>) -> Result<Instructions, DecodeError> {
        let mut out = Instructions::new();
        Instruction::parse_list_into(r, &mut out)?;
        Ok(out)
    }

    /// [`Instruction::parse_list`] appending to `out`. Action lists are parsed straight into
    /// their place in `out` (an instruction with inline actions is a few hundred bytes).
    #[inline]
    pub(crate) fn parse_list_into(
        r: &mut Reader<'_>,
        out: &mut Instructions,
    ) -> Result<(), DecodeError> {
        // No counting pass: a list longer than the inline room grows by doubling.
        while !r.is_empty() {
            let t = r.rest().first_chunk::<2>().map(|t| u16::from_be_bytes(*t));
            if t != Some(OFPIT_APPLY_ACTIONS) && t != Some(OFPIT_WRITE_ACTIONS) {
                out.push(Instruction::parse(r)?);
                continue;
            }
            let start = r.offset();
            let instruction_type = r.u16("instruction type")?;
            let len = r.u16("instruction length")? as usize;
            let mut body = r.sub_to_len(start, len, 8, "instruction")?;
            body.skip(4, "instruction actions pad")?;
            out.push(if instruction_type == OFPIT_APPLY_ACTIONS {
                Instruction::ApplyActions(Actions::new())
            } else {
                Instruction::WriteActions(Actions::new())
            });
            if let Some(Instruction::ApplyActions(a) | Instruction::WriteActions(a)) =
                out.last_mut()
            {
                Action::parse_actions_into(&mut body, a)?;
            }
        }
        Ok(())
    }

    /// Emits a list of instructions.
    pub fn emit_list(list: &[Instruction], buf: &mut BytesMut) {
        let hint = list.iter().map(Instruction::size_hint).sum();
        Instruction::write_list(list, &mut Writer::new(buf, hint));
    }

    /// Writes a list of instructions.
    #[inline]
    pub fn write_list(list: &[Instruction], w: &mut Writer<'_>) {
        for i in list {
            i.write(w);
        }
    }

    /// About how many bytes [`Instruction::emit`] writes (to size the buffer; never trusted).
    #[inline]
    pub fn size_hint(&self) -> usize {
        match self {
            Instruction::ApplyActions(a) | Instruction::WriteActions(a) => {
                a.iter().fold(8, |n, a| n + a.size_hint())
            }
            Instruction::WriteMetadata { .. } => 24,
            Instruction::Experimenter { data, .. } => 8 + data.len(),
            Instruction::Unknown { data, .. } => 4 + data.len(),
            _ => 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::action::tests::hex;
    use crate::openflow::types::PortNo;

    pub(crate) fn samples() -> Vec<(&'static str, Instruction)> {
        use Instruction::*;
        vec![
            ("0001 0008 03 000000", GotoTable(TableId(3))),
            (
                "0002 0018 00000000 0000000000000005 00000000000000ff",
                WriteMetadata { metadata: 5, mask: 0xff },
            ),
            (
                "0003 0018 00000000 0000 0010 00000003 0000 000000000000",
                WriteActions(vec![Action::Output { port: PortNo(3), max_len: 0 }].into()),
            ),
            ("0004 0008 00000000", ApplyActions(vec![].into())),
            (
                "0004 0018 00000000 0000 0010 0000000b ffff 000000000000",
                ApplyActions(vec![Action::output(PortNo(11))].into()),
            ),
            ("0005 0008 00000000", ClearActions),
            ("0006 0008 00000001", Meter(MeterId(1))),
            (
                "ffff 0010 00002320 0102030405060708",
                Experimenter { experimenter: 0x2320, data: vec![1, 2, 3, 4, 5, 6, 7, 8] },
            ),
            ("0042 0008 01020304", Unknown { instruction_type: 0x42, data: vec![1, 2, 3, 4] }),
        ]
    }

    fn parse_one(b: &[u8]) -> Result<Instruction, DecodeError> {
        let mut r = Reader::new(b);
        let i = Instruction::parse(&mut r)?;
        assert!(r.is_empty());
        Ok(i)
    }

    #[test]
    fn every_sample_parses_and_emits() {
        for (h, i) in samples() {
            let b = hex(h);
            assert_eq!(parse_one(&b), Ok(i.clone()), "parse {h}");
            let mut out = BytesMut::new();
            i.emit(&mut out);
            assert_eq!(&out[..], &b[..], "emit {i:?}");
        }
    }

    #[test]
    fn every_truncation_errors() {
        for (h, _) in samples() {
            let b = hex(h);
            for n in 0..b.len() {
                assert!(Instruction::parse(&mut Reader::new(&b[..n])).is_err(), "{h} cut at {n}");
            }
        }
    }

    #[test]
    fn wrong_length_is_named() {
        let err = parse_one(&hex("0006 0010 00000001 00000000 00000000")).unwrap_err();
        assert_eq!(err, DecodeError::BadLength { what: "instruction meter", offset: 0, len: 16 });
    }
}
