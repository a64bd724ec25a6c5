//! Tables: OFPT_TABLE_MOD (spec 1.3.5 §7.3.3) and the table multipart bodies: table statistics
//! (§7.3.5.4) and table features with their properties (§7.3.5.18).
//!
//! ```text
//! struct ofp_table_mod { struct ofp_header header; uint8_t table_id; uint8_t pad[3]; uint32_t config; };
//! struct ofp_table_stats {
//!     uint8_t table_id; uint8_t pad[3]; uint32_t active_count; uint64_t lookup_count; uint64_t matched_count;
//! };  /* 24 bytes */
//! struct ofp_table_features {
//!     uint16_t length; uint8_t table_id; uint8_t pad[5]; char name[32];
//!     uint64_t metadata_match; uint64_t metadata_write; uint32_t config; uint32_t max_entries;
//!     struct ofp_table_feature_prop_header properties[0];
//! };  /* 64 bytes + properties */
//! struct ofp_table_feature_prop_header { uint16_t type; uint16_t length; };
//! /* `length` counts the header and the body, not the zero padding to a multiple of 8 that
//!    follows every property. Bodies by type:
//!    INSTRUCTIONS(_MISS) 0/1:     struct ofp_instruction instruction_ids[];  {type, len[, experimenter]}
//!    NEXT_TABLES(_MISS) 2/3:      uint8_t next_table_ids[];
//!    WRITE/APPLY_ACTIONS(_MISS) 4-7: struct ofp_action_header action_ids[]; {type, len[, experimenter]}
//!    MATCH 8, WILDCARDS 10, WRITE/APPLY_SETFIELD(_MISS) 12-15: uint32_t oxm_ids[];
//!                                  (an experimenter OXM id, class 0xffff, is followed by its experimenter id)
//!    EXPERIMENTER(_MISS) 0xfffe/0xffff: uint32_t experimenter; uint32_t exp_type; uint32_t experimenter_data[]; */
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::types::TableId;
use super::wire::{pad8, put_fixed_str, LengthGuard, Reader};
use super::DecodeError;

/// `ofp_table_config` bits reserved for OpenFlow 1.1 compatibility.
pub const TABLE_CONFIG_DEPRECATED_MASK: u32 = 3;
/// Size of `ofp_table_stats`.
const TABLE_STATS_LEN: usize = 24;
/// Size of `ofp_table_features` without its properties.
const TABLE_FEATURES_LEN: usize = 64;
/// `OFP_MAX_TABLE_NAME_LEN`.
const TABLE_NAME_LEN: usize = 32;
/// OXM class of experimenter OXMs, whose ids carry the experimenter id.
const OXM_CLASS_EXPERIMENTER: u32 = 0xffff;

/// OFPT_TABLE_MOD: configure a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableMod {
    /// The table, or `TableId::ALL`.
    pub table_id: TableId,
    /// `ofp_table_config` bits (only the deprecated ones exist in 1.3).
    pub config: u32,
}

impl TableMod {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let table_id = TableId(r.u8("table_mod table_id")?);
        r.skip(3, "table_mod pad")?;
        let config = r.u32("table_mod config")?;
        Ok(TableMod { table_id, config })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u8(self.table_id.0);
        buf.put_bytes(0, 3);
        buf.put_u32(self.config);
    }
}

/// Statistics of one table in an OFPMP_TABLE reply (`ofp_table_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct TableStats {
    /// The table.
    pub table_id: TableId,
    /// Active entries.
    pub active_count: u32,
    /// Packets looked up in the table.
    pub lookup_count: u64,
    /// Packets that hit the table.
    pub matched_count: u64,
}

impl TableStats {
    /// Size on the wire.
    pub const LEN: usize = TABLE_STATS_LEN;

    /// Parses one `ofp_table_stats`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let table_id = TableId(r.u8("table_stats table_id")?);
        r.skip(3, "table_stats pad")?;
        Ok(TableStats {
            table_id,
            active_count: r.u32("table_stats active_count")?,
            lookup_count: r.u64("table_stats lookup_count")?,
            matched_count: r.u64("table_stats matched_count")?,
        })
    }

    /// Emits one `ofp_table_stats`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u8(self.table_id.0);
        buf.put_bytes(0, 3);
        buf.put_u32(self.active_count);
        buf.put_u64(self.lookup_count);
        buf.put_u64(self.matched_count);
    }
}

/// A table's capabilities (`ofp_table_features`), in an OFPMP_TABLE_FEATURES reply, or in a
/// request that sets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TableFeatures {
    /// The table.
    pub table_id: TableId,
    /// Its name (at most 31 bytes).
    pub name: String,
    /// Bits of metadata the table can match.
    pub metadata_match: u64,
    /// Bits of metadata the table can write.
    pub metadata_write: u64,
    /// `ofp_table_config` bits.
    pub config: u32,
    /// Maximum number of entries supported.
    pub max_entries: u32,
    /// The properties, in wire order.
    pub properties: Vec<TableFeatureProp>,
}

/// An instruction id in a table features property: an `ofp_instruction` header, plus the
/// experimenter id for an experimenter instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstructionId {
    /// `OFPIT_*` type.
    pub instruction_type: u16,
    /// Bytes after the 4-byte header (the experimenter id for OFPIT_EXPERIMENTER).
    pub data: Vec<u8>,
}

/// An action id in a table features property: an action header (type and length only), plus
/// the experimenter id for an experimenter action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionId {
    /// `OFPAT_*` type.
    pub action_type: u16,
    /// Bytes after the 4-byte header (the experimenter id for OFPAT_EXPERIMENTER).
    pub data: Vec<u8>,
}

/// An OXM id in a table features property: the 32-bit OXM header (its length is the field's
/// length), plus the experimenter id when the class is OFPXMC_EXPERIMENTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OxmId {
    /// `class:16 | field:7 | hasmask:1 | length:8`.
    pub header: u32,
    /// The experimenter id; present exactly when the class is 0xffff.
    pub experimenter: Option<u32>,
}

/// One table features property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum TableFeatureProp {
    /// OFPTFPT_INSTRUCTIONS: instructions supported by the table.
    Instructions(Vec<InstructionId>),
    /// OFPTFPT_INSTRUCTIONS_MISS: instructions supported by the table-miss entry.
    InstructionsMiss(Vec<InstructionId>),
    /// OFPTFPT_NEXT_TABLES: tables a goto-table may point to.
    NextTables(Vec<TableId>),
    /// OFPTFPT_NEXT_TABLES_MISS: the same, for the table-miss entry.
    NextTablesMiss(Vec<TableId>),
    /// OFPTFPT_WRITE_ACTIONS: actions a write-actions instruction may hold.
    WriteActions(Vec<ActionId>),
    /// OFPTFPT_WRITE_ACTIONS_MISS: the same, for the table-miss entry.
    WriteActionsMiss(Vec<ActionId>),
    /// OFPTFPT_APPLY_ACTIONS: actions an apply-actions instruction may hold.
    ApplyActions(Vec<ActionId>),
    /// OFPTFPT_APPLY_ACTIONS_MISS: the same, for the table-miss entry.
    ApplyActionsMiss(Vec<ActionId>),
    /// OFPTFPT_MATCH: fields the table can match.
    Match(Vec<OxmId>),
    /// OFPTFPT_WILDCARDS: fields the table can wildcard.
    Wildcards(Vec<OxmId>),
    /// OFPTFPT_WRITE_SETFIELD: fields a write-actions set-field may set.
    WriteSetfield(Vec<OxmId>),
    /// OFPTFPT_WRITE_SETFIELD_MISS: the same, for the table-miss entry.
    WriteSetfieldMiss(Vec<OxmId>),
    /// OFPTFPT_APPLY_SETFIELD: fields an apply-actions set-field may set.
    ApplySetfield(Vec<OxmId>),
    /// OFPTFPT_APPLY_SETFIELD_MISS: the same, for the table-miss entry.
    ApplySetfieldMiss(Vec<OxmId>),
    /// OFPTFPT_EXPERIMENTER, or with `miss` OFPTFPT_EXPERIMENTER_MISS.
    Experimenter {
        /// True for OFPTFPT_EXPERIMENTER_MISS.
        miss: bool,
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter-defined type.
        exp_type: u32,
        /// Experimenter-defined data.
        data: Vec<u8>,
    },
    /// A property type this codec does not know, kept as bytes.
    Unknown {
        /// Property type.
        prop_type: u16,
        /// Bytes after the 4-byte header, without the padding.
        data: Vec<u8>,
    },
}

const TFPT_INSTRUCTIONS: u16 = 0;
const TFPT_INSTRUCTIONS_MISS: u16 = 1;
const TFPT_NEXT_TABLES: u16 = 2;
const TFPT_NEXT_TABLES_MISS: u16 = 3;
const TFPT_WRITE_ACTIONS: u16 = 4;
const TFPT_WRITE_ACTIONS_MISS: u16 = 5;
const TFPT_APPLY_ACTIONS: u16 = 6;
const TFPT_APPLY_ACTIONS_MISS: u16 = 7;
const TFPT_MATCH: u16 = 8;
const TFPT_WILDCARDS: u16 = 10;
const TFPT_WRITE_SETFIELD: u16 = 12;
const TFPT_WRITE_SETFIELD_MISS: u16 = 13;
const TFPT_APPLY_SETFIELD: u16 = 14;
const TFPT_APPLY_SETFIELD_MISS: u16 = 15;
const TFPT_EXPERIMENTER: u16 = 0xfffe;
const TFPT_EXPERIMENTER_MISS: u16 = 0xffff;

impl TableFeatures {
    /// Parses one `ofp_table_features`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.u16("table_features length")? as usize;
        let mut b = r.sub_to_len(start, len, TABLE_FEATURES_LEN, "table_features")?;
        let table_id = TableId(b.u8("table_features table_id")?);
        b.skip(5, "table_features pad")?;
        let name = b.fixed_str(TABLE_NAME_LEN, "table_features name")?;
        let metadata_match = b.u64("table_features metadata_match")?;
        let metadata_write = b.u64("table_features metadata_write")?;
        let config = b.u32("table_features config")?;
        let max_entries = b.u32("table_features max_entries")?;
        let mut properties = Vec::new();
        while !b.is_empty() {
            properties.push(TableFeatureProp::parse(&mut b)?);
        }
        Ok(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        })
    }

    /// Emits one `ofp_table_features`.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 0);
        buf.put_u16(0);
        buf.put_u8(self.table_id.0);
        buf.put_bytes(0, 5);
        put_fixed_str(buf, &self.name, TABLE_NAME_LEN);
        buf.put_u64(self.metadata_match);
        buf.put_u64(self.metadata_write);
        buf.put_u32(self.config);
        buf.put_u32(self.max_entries);
        self.properties.iter().for_each(|p| p.emit(buf));
        g.finish(buf);
    }
}

impl TableFeatureProp {
    /// Parses one property and the padding after it.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let prop_type = r.u16("table_feature_prop type")?;
        let len = r.u16("table_feature_prop length")? as usize;
        let mut b = r.sub_to_len(start, len, 4, "table_feature_prop")?;
        r.skip(pad8(len), "table_feature_prop padding")?;
        Ok(match prop_type {
            TFPT_INSTRUCTIONS => {
                TableFeatureProp::Instructions(parse_ids(&mut b, "instruction id")?)
            }
            TFPT_INSTRUCTIONS_MISS => {
                TableFeatureProp::InstructionsMiss(parse_ids(&mut b, "instruction id")?)
            }
            TFPT_NEXT_TABLES => TableFeatureProp::NextTables(table_ids(&mut b)?),
            TFPT_NEXT_TABLES_MISS => TableFeatureProp::NextTablesMiss(table_ids(&mut b)?),
            TFPT_WRITE_ACTIONS => TableFeatureProp::WriteActions(parse_ids(&mut b, "action id")?),
            TFPT_WRITE_ACTIONS_MISS => {
                TableFeatureProp::WriteActionsMiss(parse_ids(&mut b, "action id")?)
            }
            TFPT_APPLY_ACTIONS => TableFeatureProp::ApplyActions(parse_ids(&mut b, "action id")?),
            TFPT_APPLY_ACTIONS_MISS => {
                TableFeatureProp::ApplyActionsMiss(parse_ids(&mut b, "action id")?)
            }
            TFPT_MATCH => TableFeatureProp::Match(OxmId::parse_list(&mut b)?),
            TFPT_WILDCARDS => TableFeatureProp::Wildcards(OxmId::parse_list(&mut b)?),
            TFPT_WRITE_SETFIELD => TableFeatureProp::WriteSetfield(OxmId::parse_list(&mut b)?),
            TFPT_WRITE_SETFIELD_MISS => {
                TableFeatureProp::WriteSetfieldMiss(OxmId::parse_list(&mut b)?)
            }
            TFPT_APPLY_SETFIELD => TableFeatureProp::ApplySetfield(OxmId::parse_list(&mut b)?),
            TFPT_APPLY_SETFIELD_MISS => {
                TableFeatureProp::ApplySetfieldMiss(OxmId::parse_list(&mut b)?)
            }
            TFPT_EXPERIMENTER | TFPT_EXPERIMENTER_MISS => TableFeatureProp::Experimenter {
                miss: prop_type == TFPT_EXPERIMENTER_MISS,
                experimenter: b.u32("table_feature_prop experimenter")?,
                exp_type: b.u32("table_feature_prop exp_type")?,
                data: b.rest().to_vec(),
            },
            _ => TableFeatureProp::Unknown { prop_type, data: b.rest().to_vec() },
        })
    }

    /// The `OFPTFPT_*` type of this property.
    pub fn prop_type(&self) -> u16 {
        match self {
            TableFeatureProp::Instructions(_) => TFPT_INSTRUCTIONS,
            TableFeatureProp::InstructionsMiss(_) => TFPT_INSTRUCTIONS_MISS,
            TableFeatureProp::NextTables(_) => TFPT_NEXT_TABLES,
            TableFeatureProp::NextTablesMiss(_) => TFPT_NEXT_TABLES_MISS,
            TableFeatureProp::WriteActions(_) => TFPT_WRITE_ACTIONS,
            TableFeatureProp::WriteActionsMiss(_) => TFPT_WRITE_ACTIONS_MISS,
            TableFeatureProp::ApplyActions(_) => TFPT_APPLY_ACTIONS,
            TableFeatureProp::ApplyActionsMiss(_) => TFPT_APPLY_ACTIONS_MISS,
            TableFeatureProp::Match(_) => TFPT_MATCH,
            TableFeatureProp::Wildcards(_) => TFPT_WILDCARDS,
            TableFeatureProp::WriteSetfield(_) => TFPT_WRITE_SETFIELD,
            TableFeatureProp::WriteSetfieldMiss(_) => TFPT_WRITE_SETFIELD_MISS,
            TableFeatureProp::ApplySetfield(_) => TFPT_APPLY_SETFIELD,
            TableFeatureProp::ApplySetfieldMiss(_) => TFPT_APPLY_SETFIELD_MISS,
            TableFeatureProp::Experimenter { miss: false, .. } => TFPT_EXPERIMENTER,
            TableFeatureProp::Experimenter { miss: true, .. } => TFPT_EXPERIMENTER_MISS,
            TableFeatureProp::Unknown { prop_type, .. } => *prop_type,
        }
    }

    /// Emits one property and its padding.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 2);
        buf.put_u16(self.prop_type());
        buf.put_u16(0);
        match self {
            TableFeatureProp::Instructions(ids) | TableFeatureProp::InstructionsMiss(ids) => {
                ids.iter().for_each(|i| put_id(buf, i.instruction_type, &i.data));
            }
            TableFeatureProp::NextTables(t) | TableFeatureProp::NextTablesMiss(t) => {
                t.iter().for_each(|t| buf.put_u8(t.0));
            }
            TableFeatureProp::WriteActions(ids)
            | TableFeatureProp::WriteActionsMiss(ids)
            | TableFeatureProp::ApplyActions(ids)
            | TableFeatureProp::ApplyActionsMiss(ids) => {
                ids.iter().for_each(|a| put_id(buf, a.action_type, &a.data));
            }
            TableFeatureProp::Match(ids)
            | TableFeatureProp::Wildcards(ids)
            | TableFeatureProp::WriteSetfield(ids)
            | TableFeatureProp::WriteSetfieldMiss(ids)
            | TableFeatureProp::ApplySetfield(ids)
            | TableFeatureProp::ApplySetfieldMiss(ids) => ids.iter().for_each(|o| o.emit(buf)),
            TableFeatureProp::Experimenter { experimenter, exp_type, data, .. } => {
                buf.put_u32(*experimenter);
                buf.put_u32(*exp_type);
                buf.put_slice(data);
            }
            TableFeatureProp::Unknown { data, .. } => buf.put_slice(data),
        }
        g.finish_padded(buf);
    }
}

/// An instruction or action id: both are a type, a length and `length - 4` further bytes.
trait TlvId: Sized {
    fn new(id_type: u16, data: Vec<u8>) -> Self;
}

impl TlvId for InstructionId {
    fn new(instruction_type: u16, data: Vec<u8>) -> Self {
        InstructionId { instruction_type, data }
    }
}

impl TlvId for ActionId {
    fn new(action_type: u16, data: Vec<u8>) -> Self {
        ActionId { action_type, data }
    }
}

fn parse_ids<T: TlvId>(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::with_capacity(r.remaining() / 4);
    while !r.is_empty() {
        let start = r.offset();
        let id_type = r.u16(what)?;
        let len = r.u16(what)? as usize;
        let b = r.sub_to_len(start, len, 4, what)?;
        out.push(T::new(id_type, b.rest().to_vec()));
    }
    Ok(out)
}

fn put_id(buf: &mut BytesMut, id_type: u16, data: &[u8]) {
    let g = LengthGuard::start(buf, 2);
    buf.put_u16(id_type);
    buf.put_u16(0);
    buf.put_slice(data);
    g.finish(buf);
}

fn table_ids(r: &mut Reader<'_>) -> Result<Vec<TableId>, DecodeError> {
    Ok(r.bytes(r.remaining(), "next table ids")?.iter().map(|&t| TableId(t)).collect())
}

impl OxmId {
    /// An id for a field of a standard (non-experimenter) class.
    pub fn basic(header: u32) -> Self {
        OxmId { header, experimenter: None }
    }

    /// Parses OXM ids until the reader is exhausted.
    pub fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut out = Vec::with_capacity(r.remaining() / 4);
        while !r.is_empty() {
            let header = r.u32("oxm id")?;
            let experimenter = if header >> 16 == OXM_CLASS_EXPERIMENTER {
                Some(r.u32("oxm id experimenter")?)
            } else {
                None
            };
            out.push(OxmId { header, experimenter });
        }
        Ok(out)
    }

    /// Emits the id (4 bytes, or 8 with an experimenter id).
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.header);
        if let Some(e) = self.experimenter {
            buf.put_u32(e);
        }
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Proptest strategies for table values.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Any table mod.
    pub(crate) fn table_mod() -> impl Strategy<Value = TableMod> {
        any::<(u8, u32)>().prop_map(|(t, config)| TableMod { table_id: TableId(t), config })
    }

    /// Any table statistics entry.
    pub(crate) fn table_stats() -> impl Strategy<Value = TableStats> {
        any::<(u8, u32, u64, u64)>().prop_map(|(t, active_count, lookup_count, matched_count)| {
            TableStats { table_id: TableId(t), active_count, lookup_count, matched_count }
        })
    }

    fn id_data() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![Just(vec![]), any::<[u8; 4]>().prop_map(|e| e.to_vec())]
    }

    fn oxm_id() -> impl Strategy<Value = OxmId> {
        prop_oneof![
            any::<u32>()
                .prop_filter("standard class", |h| h >> 16 != OXM_CLASS_EXPERIMENTER)
                .prop_map(OxmId::basic),
            (any::<u16>(), any::<u32>()).prop_map(|(low, e)| OxmId {
                header: OXM_CLASS_EXPERIMENTER << 16 | u32::from(low),
                experimenter: Some(e)
            }),
        ]
    }

    /// Any table features property.
    pub(crate) fn prop() -> impl Strategy<Value = TableFeatureProp> {
        use TableFeatureProp as P;
        let iids = || {
            vec(
                (any::<u16>(), id_data())
                    .prop_map(|(t, d)| InstructionId { instruction_type: t, data: d }),
                0..5,
            )
        };
        let aids = || {
            vec(
                (any::<u16>(), id_data()).prop_map(|(t, d)| ActionId { action_type: t, data: d }),
                0..5,
            )
        };
        let oids = || vec(oxm_id(), 0..5);
        let tids = || vec(any::<u8>().prop_map(TableId), 0..10);
        prop_oneof![
            iids().prop_map(P::Instructions),
            iids().prop_map(P::InstructionsMiss),
            tids().prop_map(P::NextTables),
            tids().prop_map(P::NextTablesMiss),
            aids().prop_map(P::WriteActions),
            aids().prop_map(P::WriteActionsMiss),
            aids().prop_map(P::ApplyActions),
            aids().prop_map(P::ApplyActionsMiss),
            oids().prop_map(P::Match),
            oids().prop_map(P::Wildcards),
            oids().prop_map(P::WriteSetfield),
            oids().prop_map(P::WriteSetfieldMiss),
            oids().prop_map(P::ApplySetfield),
            oids().prop_map(P::ApplySetfieldMiss),
            (any::<(bool, u32, u32)>(), vec(any::<u8>(), 0..12)).prop_map(
                |((miss, experimenter, exp_type), data)| P::Experimenter {
                    miss,
                    experimenter,
                    exp_type,
                    data
                }
            ),
            (prop_oneof![Just(9u16), Just(11), 16u16..0xfffe], vec(any::<u8>(), 0..12))
                .prop_map(|(prop_type, data)| P::Unknown { prop_type, data }),
        ]
    }

    /// Any table features entry.
    pub(crate) fn table_features() -> impl Strategy<Value = TableFeatures> {
        (any::<(u8, u64, u64, u32, u32)>(), "[a-z0-9_]{0,31}", vec(prop(), 0..5)).prop_map(
            |((t, metadata_match, metadata_write, config, max_entries), name, properties)| {
                TableFeatures {
                    table_id: TableId(t),
                    name,
                    metadata_match,
                    metadata_write,
                    config,
                    max_entries,
                    properties,
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::openflow::error::test_util::{assert_truncations_fail, hex};
    use crate::openflow::{Message, OfpMessage, Xid};

    /// TABLE_MOD of table 3 with config 0.
    const TABLE_MOD: &str = "0411 0010 00000005 03 000000 00000000";

    #[test]
    fn table_mod_parses_and_emits() {
        let m = OfpMessage::parse(&hex(TABLE_MOD)).unwrap();
        let t = TableMod { table_id: TableId(3), config: 0 };
        assert_eq!(m.msg, Message::TableMod(t));
        assert_eq!(OfpMessage::new(Xid(5), Message::TableMod(t)).to_vec(), hex(TABLE_MOD));
    }

    #[test]
    fn table_mod_truncations_fail() {
        assert_truncations_fail(&hex(TABLE_MOD));
    }

    #[test]
    fn property_padding_is_not_counted() {
        // NEXT_TABLES {1, 2, 3}: length 7, then one byte of padding.
        let p = TableFeatureProp::NextTables(vec![TableId(1), TableId(2), TableId(3)]);
        let mut buf = BytesMut::new();
        p.emit(&mut buf);
        assert_eq!(&buf[..], &hex("0002 0007 010203 00")[..]);
        let mut r = Reader::new(&buf);
        assert_eq!(TableFeatureProp::parse(&mut r).unwrap(), p);
        assert!(r.is_empty());
        let err = TableFeatureProp::parse(&mut Reader::new(&buf[..7])).unwrap_err();
        assert!(
            matches!(err, DecodeError::Truncated { what: "table_feature_prop padding", .. }),
            "{err}"
        );
    }

    #[test]
    fn experimenter_oxm_id_carries_its_experimenter() {
        let buf = hex("80000004 ffff0004 4f4e4600 80000204");
        let ids = OxmId::parse_list(&mut Reader::new(&buf)).unwrap();
        assert_eq!(
            ids,
            vec![
                OxmId::basic(0x8000_0004),
                OxmId { header: 0xffff_0004, experimenter: Some(0x4f4e_4600) },
                OxmId::basic(0x8000_0204),
            ]
        );
        let err = OxmId::parse_list(&mut Reader::new(&buf[..6])).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated { what: "oxm id", .. }), "{err}");
    }

    #[test]
    fn instruction_id_shorter_than_header_is_rejected() {
        let buf = hex("0000 0008 0001 0002 0000 0000");
        let err = TableFeatureProp::parse(&mut Reader::new(&buf)).unwrap_err();
        assert_eq!(err, DecodeError::BadLength { what: "instruction id", offset: 4, len: 2 });
    }

    proptest! {
        #[test]
        fn table_mod_round_trips(t in strategies::table_mod(), xid in any::<u32>()) {
            let m = OfpMessage::new(Xid(xid), Message::TableMod(t));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }

        #[test]
        fn table_features_round_trip(t in strategies::table_features()) {
            let mut buf = BytesMut::new();
            t.emit(&mut buf);
            prop_assert_eq!(buf.len() % 8, 0);
            let mut r = Reader::new(&buf);
            prop_assert_eq!(TableFeatures::parse(&mut r).unwrap(), t);
            prop_assert!(r.is_empty());
        }
    }
}
