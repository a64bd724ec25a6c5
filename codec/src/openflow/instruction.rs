//! Instructions (spec 1.3.5 §7.2.4).
//!
//! ```text
//! struct ofp_instruction { uint16_t type; uint16_t len; };
//! struct ofp_instruction_goto_table { uint16_t type; uint16_t len; uint8_t table_id; uint8_t pad[3]; };
//! struct ofp_instruction_actions { uint16_t type; uint16_t len; uint8_t pad[4]; struct ofp_action_header actions[0]; };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::action::Action;
use super::types::TableId;
use super::wire::{LengthGuard, Reader};
use super::DecodeError;

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Instruction {
    /// OFPIT_GOTO_TABLE.
    GotoTable(TableId),
    /// OFPIT_APPLY_ACTIONS: apply the actions now, in order.
    ApplyActions(Vec<Action>),
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
        Ok(match instruction_type {
            1 => {
                let t = TableId(body.u8("instruction goto_table table_id")?);
                Instruction::GotoTable(t)
            }
            4 => {
                body.skip(4, "instruction actions pad")?;
                Instruction::ApplyActions(Action::parse_list(&mut body)?)
            }
            _ => Instruction::Unknown { instruction_type, data: body.rest().to_vec() },
        })
    }

    /// Emits one instruction.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 2);
        match self {
            Instruction::GotoTable(t) => {
                buf.put_u16(1);
                buf.put_u16(0);
                buf.put_u8(t.0);
                buf.put_bytes(0, 3);
            }
            Instruction::ApplyActions(actions) => {
                buf.put_u16(4);
                buf.put_u16(0);
                buf.put_bytes(0, 4);
                Action::emit_list(actions, buf);
            }
            Instruction::Unknown { instruction_type, data } => {
                buf.put_u16(*instruction_type);
                buf.put_u16(0);
                buf.put_slice(data);
            }
        }
        g.finish(buf);
    }

    /// Parses instructions until the reader is exhausted.
    pub fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Instruction::parse(r)?);
        }
        Ok(out)
    }

    /// Emits a list of instructions.
    pub fn emit_list(list: &[Instruction], buf: &mut BytesMut) {
        for i in list {
            i.emit(buf);
        }
    }
}
