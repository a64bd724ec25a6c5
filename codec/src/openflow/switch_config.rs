//! OFPT_GET_CONFIG_REPLY / OFPT_SET_CONFIG (spec 1.3.5 §7.3.2).
//!
//! ```text
//! struct ofp_switch_config { struct ofp_header header; uint16_t flags; uint16_t miss_send_len; };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::wire::Reader;
use super::DecodeError;

/// `ofp_config_flags`: IP fragments are processed normally.
pub const FRAG_NORMAL: u16 = 0;
/// `ofp_config_flags`: IP fragments are dropped.
pub const FRAG_DROP: u16 = 1;
/// `ofp_config_flags`: IP fragments are reassembled.
pub const FRAG_REASM: u16 = 2;

/// Switch configuration: fragment handling and how much of a packet goes to the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SwitchConfig {
    /// `ofp_config_flags` bits.
    pub flags: u16,
    /// Bytes of a table-miss packet sent to the controller.
    pub miss_send_len: u16,
}

impl SwitchConfig {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flags = r.u16("switch_config flags")?;
        let miss_send_len = r.u16("switch_config miss_send_len")?;
        Ok(SwitchConfig { flags, miss_send_len })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.flags);
        buf.put_u16(self.miss_send_len);
    }
}
