//! OFPT_EXPERIMENTER (spec 1.3.5 §7.5.4), for experimenters this codec does not decode further.
//!
//! ```text
//! struct ofp_experimenter_header {
//!     struct ofp_header header; uint32_t experimenter; uint32_t exp_type; /* data follows */
//! };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::wire::Reader;
use super::DecodeError;

/// ONF's experimenter id (OpenFlow 1.3 extensions such as bundles, EXT-230).
pub const ONF_EXPERIMENTER_ID: u32 = 0x4f4e_4600;
/// Nicira's experimenter id (Open vSwitch extensions).
pub const NICIRA_EXPERIMENTER_ID: u32 = 0x0000_2320;

/// An experimenter message kept as opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Experimenter {
    /// Experimenter id.
    pub experimenter: u32,
    /// Experimenter-defined type.
    pub exp_type: u32,
    /// Experimenter-defined data.
    pub data: Vec<u8>,
}

impl Experimenter {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let experimenter = r.u32("experimenter id")?;
        let exp_type = r.u32("experimenter type")?;
        let data = r.rest().to_vec();
        r.skip(data.len(), "experimenter data")?;
        Ok(Experimenter { experimenter, exp_type, data })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.experimenter);
        buf.put_u32(self.exp_type);
        buf.put_slice(&self.data);
    }
}
