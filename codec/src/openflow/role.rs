//! OFPT_ROLE_REQUEST / OFPT_ROLE_REPLY (spec 1.3.5 §7.3.9).
//!
//! ```text
//! struct ofp_role_request { struct ofp_header header; uint32_t role; uint8_t pad[4]; uint64_t generation_id; };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::error::wire_enum;
use super::wire::Reader;
use super::DecodeError;

wire_enum! {
    /// `ofp_controller_role`.
    ControllerRole: u32 {
        /// Don't change the current role.
        NoChange = 0 => "nochange",
        /// Default role, full access.
        Equal = 1 => "equal",
        /// Full access, at most one master.
        Master = 2 => "master",
        /// Read-only access.
        Slave = 3 => "slave",
    }
}

/// A role request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoleMsg {
    /// The role asked for or granted.
    pub role: ControllerRole,
    /// Master election generation id.
    pub generation_id: u64,
}

impl RoleMsg {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let role = ControllerRole::from(r.u32("role")?);
        r.skip(4, "role pad")?;
        let generation_id = r.u64("role generation_id")?;
        Ok(RoleMsg { role, generation_id })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.role.into());
        buf.put_bytes(0, 4);
        buf.put_u64(self.generation_id);
    }
}
