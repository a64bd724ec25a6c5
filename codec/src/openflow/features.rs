//! OFPT_FEATURES_REPLY (spec 1.3.5 §7.3.1).
//!
//! ```text
//! struct ofp_switch_features {
//!     struct ofp_header header;
//!     uint64_t datapath_id; uint32_t n_buffers; uint8_t n_tables; uint8_t auxiliary_id;
//!     uint8_t pad[2]; uint32_t capabilities; uint32_t reserved;
//! };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::types::Dpid;
use super::wire::Reader;
use super::DecodeError;

/// The switch's answer to FEATURES_REQUEST: who it is and what it can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeaturesReply {
    /// Datapath id, which identifies the bridge.
    pub datapath_id: Dpid,
    /// Packets the switch can buffer.
    pub n_buffers: u32,
    /// Flow tables.
    pub n_tables: u8,
    /// Auxiliary connection id (0 for the main connection).
    pub auxiliary_id: u8,
    /// `ofp_capabilities` bits.
    pub capabilities: u32,
    /// Reserved word, kept for round trips.
    pub reserved: u32,
}

/// `ofp_capabilities` bits and their names.
pub const CAPABILITY_NAMES: &[(u32, &str)] = &[
    (1 << 0, "FLOW_STATS"),
    (1 << 1, "TABLE_STATS"),
    (1 << 2, "PORT_STATS"),
    (1 << 3, "GROUP_STATS"),
    (1 << 5, "IP_REASM"),
    (1 << 6, "QUEUE_STATS"),
    (1 << 8, "PORT_BLOCKED"),
];

impl FeaturesReply {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let datapath_id = Dpid(r.u64("features datapath_id")?);
        let n_buffers = r.u32("features n_buffers")?;
        let n_tables = r.u8("features n_tables")?;
        let auxiliary_id = r.u8("features auxiliary_id")?;
        r.skip(2, "features pad")?;
        let capabilities = r.u32("features capabilities")?;
        let reserved = r.u32("features reserved")?;
        Ok(FeaturesReply { datapath_id, n_buffers, n_tables, auxiliary_id, capabilities, reserved })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u64(self.datapath_id.0);
        buf.put_u32(self.n_buffers);
        buf.put_u8(self.n_tables);
        buf.put_u8(self.auxiliary_id);
        buf.put_bytes(0, 2);
        buf.put_u32(self.capabilities);
        buf.put_u32(self.reserved);
    }
}
