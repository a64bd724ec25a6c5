//! Actions (spec 1.3.5 §7.2.5), plus the Nicira extension actions a mirror pipeline needs.
//!
//! ```text
//! struct ofp_action_header { uint16_t type; uint16_t len; /* padded to 8 bytes */ };
//! struct ofp_action_output { uint16_t type; uint16_t len; uint32_t port; uint16_t max_len; uint8_t pad[6]; };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::types::PortNo;
use super::wire::{LengthGuard, Reader};
use super::DecodeError;

/// OFPCML_NO_BUFFER: send the whole packet to the controller.
pub const CONTROLLER_MAX_LEN_NO_BUFFER: u16 = 0xffff;

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
    /// An action this codec does not decode, kept as bytes.
    Unknown {
        /// Action type.
        action_type: u16,
        /// Bytes after the 4-byte header, padding included.
        data: Vec<u8>,
    },
}

impl Action {
    /// OFPAT_OUTPUT to `port` with no controller length limit.
    pub fn output(port: PortNo) -> Self {
        Action::Output { port, max_len: CONTROLLER_MAX_LEN_NO_BUFFER }
    }

    /// Parses one action.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let action_type = r.u16("action type")?;
        let len = r.u16("action length")? as usize;
        if len % 8 != 0 {
            return Err(DecodeError::BadLength { what: "action", offset: start, len });
        }
        let mut body = r.sub_to_len(start, len, 8, "action")?;
        Ok(match action_type {
            0 => {
                let port = PortNo(body.u32("action output port")?);
                let max_len = body.u16("action output max_len")?;
                Action::Output { port, max_len }
            }
            _ => Action::Unknown { action_type, data: body.rest().to_vec() },
        })
    }

    /// Emits one action, padded to 8 bytes.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 2);
        match self {
            Action::Output { port, max_len } => {
                buf.put_u16(0);
                buf.put_u16(0);
                buf.put_u32(port.0);
                buf.put_u16(*max_len);
                buf.put_bytes(0, 6);
            }
            Action::Unknown { action_type, data } => {
                buf.put_u16(*action_type);
                buf.put_u16(0);
                buf.put_slice(data);
            }
        }
        g.pad_and_finish(buf);
    }

    /// Parses actions until the reader is exhausted.
    pub fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Action::parse(r)?);
        }
        Ok(out)
    }

    /// Emits a list of actions.
    pub fn emit_list(actions: &[Action], buf: &mut BytesMut) {
        for a in actions {
            a.emit(buf);
        }
    }
}
