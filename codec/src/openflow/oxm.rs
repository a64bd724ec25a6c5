//! Flow matches: `ofp_match` of type OFPMT_OXM with its OXM TLVs (spec 1.3.5 §7.2.3).
//!
//! ```text
//! struct ofp_match { uint16_t type; uint16_t length; uint8_t oxm_fields[0]; uint8_t pad[...]; };
//! OXM TLV header: oxm_class:16 | oxm_field:7 | oxm_hasmask:1 | oxm_length:8
//! ```
//! `length` counts the 4-byte header and the TLVs, not the padding to 8 bytes.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::types::{MacAddr, PortNo};
use super::wire::{LengthGuard, Reader};
use super::DecodeError;

/// OFPMT_OXM.
const MATCH_TYPE_OXM: u16 = 1;
/// OFPXMC_OPENFLOW_BASIC.
pub const OXM_CLASS_OPENFLOW_BASIC: u16 = 0x8000;

/// A flow match: the OXM fields in wire order. An empty match matches every packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Match {
    /// The fields, in the order they appear on the wire.
    pub fields: Vec<OxmField>,
}

/// One OXM TLV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum OxmField {
    /// OXM_OF_IN_PORT: switch input port.
    InPort(PortNo),
    /// OXM_OF_ETH_DST with optional mask.
    EthDst(MacAddr, Option<MacAddr>),
    /// OXM_OF_ETH_SRC with optional mask.
    EthSrc(MacAddr, Option<MacAddr>),
    /// OXM_OF_ETH_TYPE.
    EthType(u16),
    /// A field this codec does not decode, kept as bytes so that it round-trips.
    Unknown {
        /// OXM class.
        class: u16,
        /// Field number within the class.
        field: u8,
        /// Whether a mask follows the value (the mask is the second half of `payload`).
        has_mask: bool,
        /// Value, then mask if `has_mask`.
        payload: Vec<u8>,
    },
}

impl Match {
    /// A match on the given fields.
    pub fn new(fields: Vec<OxmField>) -> Self {
        Match { fields }
    }

    /// Parses an `ofp_match`, including its padding.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let mtype = r.u16("match type")?;
        if mtype != MATCH_TYPE_OXM {
            return Err(DecodeError::BadValue {
                what: "match type",
                offset: start,
                value: mtype.into(),
            });
        }
        let len = r.u16("match length")? as usize;
        let mut body = r.sub_to_len(start, len, 4, "match")?;
        let mut fields = Vec::new();
        while !body.is_empty() {
            fields.push(OxmField::parse(&mut body)?);
        }
        let pad = super::wire::pad8(len);
        r.skip(pad, "match padding")?;
        Ok(Match { fields })
    }

    /// Emits an `ofp_match`, including its padding.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 2);
        buf.put_u16(MATCH_TYPE_OXM);
        buf.put_u16(0);
        for f in &self.fields {
            f.emit(buf);
        }
        g.finish_padded(buf);
    }
}

impl OxmField {
    /// Parses one OXM TLV.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let class = r.u16("oxm class")?;
        let fh = r.u8("oxm field")?;
        let len = r.u8("oxm length")? as usize;
        let field = fh >> 1;
        let has_mask = fh & 1 == 1;
        let mut v = r.sub(len, "oxm payload")?;
        let bad_len = || DecodeError::BadLength { what: "oxm payload", offset: start, len };
        let out = match (class, field, has_mask, len) {
            (OXM_CLASS_OPENFLOW_BASIC, 0, false, 4) => {
                OxmField::InPort(PortNo(v.u32("oxm in_port")?))
            }
            (OXM_CLASS_OPENFLOW_BASIC, 3, false, 6) => {
                OxmField::EthDst(MacAddr(v.array("oxm eth_dst")?), None)
            }
            (OXM_CLASS_OPENFLOW_BASIC, 3, true, 12) => OxmField::EthDst(
                MacAddr(v.array("oxm eth_dst")?),
                Some(MacAddr(v.array("oxm eth_dst mask")?)),
            ),
            (OXM_CLASS_OPENFLOW_BASIC, 4, false, 6) => {
                OxmField::EthSrc(MacAddr(v.array("oxm eth_src")?), None)
            }
            (OXM_CLASS_OPENFLOW_BASIC, 4, true, 12) => OxmField::EthSrc(
                MacAddr(v.array("oxm eth_src")?),
                Some(MacAddr(v.array("oxm eth_src mask")?)),
            ),
            (OXM_CLASS_OPENFLOW_BASIC, 5, false, 2) => OxmField::EthType(v.u16("oxm eth_type")?),
            (OXM_CLASS_OPENFLOW_BASIC, 0 | 3 | 4 | 5, _, _) => return Err(bad_len()),
            _ => OxmField::Unknown { class, field, has_mask, payload: v.rest().to_vec() },
        };
        Ok(out)
    }

    /// Emits one OXM TLV.
    pub fn emit(&self, buf: &mut BytesMut) {
        let basic = |buf: &mut BytesMut, field: u8, has_mask: bool, len: usize| {
            buf.put_u16(OXM_CLASS_OPENFLOW_BASIC);
            buf.put_u8(field << 1 | has_mask as u8);
            buf.put_u8(len as u8);
        };
        match self {
            OxmField::InPort(p) => {
                basic(buf, 0, false, 4);
                buf.put_u32(p.0);
            }
            OxmField::EthDst(m, mask) | OxmField::EthSrc(m, mask) => {
                let f = if matches!(self, OxmField::EthDst(..)) { 3 } else { 4 };
                basic(buf, f, mask.is_some(), if mask.is_some() { 12 } else { 6 });
                buf.put_slice(&m.0);
                if let Some(mask) = mask {
                    buf.put_slice(&mask.0);
                }
            }
            OxmField::EthType(t) => {
                basic(buf, 5, false, 2);
                buf.put_u16(*t);
            }
            OxmField::Unknown { class, field, has_mask, payload } => {
                buf.put_u16(*class);
                buf.put_u8(field << 1 | *has_mask as u8);
                buf.put_u8(payload.len() as u8);
                buf.put_slice(payload);
            }
        }
    }
}
