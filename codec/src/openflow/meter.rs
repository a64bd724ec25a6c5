//! Meters: OFPT_METER_MOD (spec 1.3.5 §7.3.4.4) and the meter multipart bodies (§7.3.5.13-15):
//! meter statistics, meter configuration and meter features.
//!
//! ```text
//! struct ofp_meter_mod {
//!     struct ofp_header header;
//!     uint16_t command; uint16_t flags; uint32_t meter_id;
//!     struct ofp_meter_band_header bands[0];
//! };
//! struct ofp_meter_band_header { uint16_t type; uint16_t len; uint32_t rate; uint32_t burst_size; };
//! struct ofp_meter_band_drop        { /* header */ uint8_t pad[4]; };                      /* 16 */
//! struct ofp_meter_band_dscp_remark { /* header */ uint8_t prec_level; uint8_t pad[3]; };  /* 16 */
//! struct ofp_meter_band_experimenter { /* header */ uint32_t experimenter; /* data */ };   /* 16+ */
//! struct ofp_meter_multipart_request { uint32_t meter_id; uint8_t pad[4]; };
//! struct ofp_meter_stats {
//!     uint32_t meter_id; uint16_t len; uint8_t pad[6]; uint32_t flow_count;
//!     uint64_t packet_in_count; uint64_t byte_in_count; uint32_t duration_sec; uint32_t duration_nsec;
//!     struct ofp_meter_band_stats band_stats[0];  /* { uint64_t packet_band_count; uint64_t byte_band_count; } */
//! };  /* 40 bytes + 16 per band */
//! struct ofp_meter_config { uint16_t length; uint16_t flags; uint32_t meter_id; struct ofp_meter_band_header bands[0]; };
//! struct ofp_meter_features {
//!     uint32_t max_meter; uint32_t band_types; uint32_t capabilities; uint8_t max_bands; uint8_t max_color; uint8_t pad[2];
//! };  /* 16 bytes */
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::error::wire_enum;
use super::types::MeterId;
use super::wire::{LengthGuard, Reader};
use super::DecodeError;

/// Size of a drop or DSCP remark band, and of an experimenter band without its data.
const BAND_LEN: usize = 16;
/// Size of `ofp_meter_stats` without its band counters.
const METER_STATS_LEN: usize = 40;
/// Size of `ofp_meter_band_stats`.
const BAND_STATS_LEN: usize = 16;
/// Size of `ofp_meter_config` without its bands.
const METER_CONFIG_LEN: usize = 8;

/// `ofp_meter_flags` bit: rates are in kb/s.
pub const METER_FLAG_KBPS: u16 = 1 << 0;
/// `ofp_meter_flags` bit: rates are in packets/s.
pub const METER_FLAG_PKTPS: u16 = 1 << 1;
/// `ofp_meter_flags` bit: do burst size.
pub const METER_FLAG_BURST: u16 = 1 << 2;
/// `ofp_meter_flags` bit: collect statistics.
pub const METER_FLAG_STATS: u16 = 1 << 3;

/// `ofp_meter_band_type` of a drop band.
pub const METER_BAND_DROP: u16 = 1;
/// `ofp_meter_band_type` of a DSCP remark band.
pub const METER_BAND_DSCP_REMARK: u16 = 2;
/// `ofp_meter_band_type` of an experimenter band.
pub const METER_BAND_EXPERIMENTER: u16 = 0xffff;

wire_enum! {
    /// `ofp_meter_mod_command`.
    MeterModCommand: u16 {
        /// New meter.
        Add = 0 => "ADD",
        /// Modify the specified meter.
        Modify = 1 => "MOD",
        /// Delete the specified meter.
        Delete = 2 => "DEL",
    }
}

/// One meter band: what happens to packets above `rate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum MeterBand {
    /// OFPMBT_DROP: drop packets above the rate.
    Drop {
        /// Rate, in kb/s or packets/s per the meter flags.
        rate: u32,
        /// Burst size, used with `METER_FLAG_BURST`.
        burst_size: u32,
    },
    /// OFPMBT_DSCP_REMARK: raise the drop precedence of the DSCP field.
    DscpRemark {
        /// Rate, in kb/s or packets/s per the meter flags.
        rate: u32,
        /// Burst size, used with `METER_FLAG_BURST`.
        burst_size: u32,
        /// Number of drop precedence levels to add.
        prec_level: u8,
    },
    /// OFPMBT_EXPERIMENTER.
    Experimenter {
        /// Rate, in kb/s or packets/s per the meter flags.
        rate: u32,
        /// Burst size, used with `METER_FLAG_BURST`.
        burst_size: u32,
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter-defined bytes after the id.
        data: Vec<u8>,
    },
    /// A band type this codec does not know, kept as bytes.
    Unknown {
        /// Band type.
        band_type: u16,
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// Bytes after the 12-byte band header.
        data: Vec<u8>,
    },
}

impl MeterBand {
    /// Parses one meter band.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let band_type = r.u16("meter band type")?;
        let len = r.u16("meter band len")? as usize;
        let mut b = r.sub_to_len(start, len, 12, "meter band")?;
        let rate = b.u32("meter band rate")?;
        let burst_size = b.u32("meter band burst_size")?;
        let fixed = || match len {
            BAND_LEN => Ok(()),
            _ => Err(DecodeError::BadLength { what: "meter band", offset: start, len }),
        };
        Ok(match band_type {
            METER_BAND_DROP => {
                fixed()?;
                b.skip(4, "meter band drop pad")?;
                MeterBand::Drop { rate, burst_size }
            }
            METER_BAND_DSCP_REMARK => {
                fixed()?;
                let prec_level = b.u8("meter band dscp_remark prec_level")?;
                b.skip(3, "meter band dscp_remark pad")?;
                MeterBand::DscpRemark { rate, burst_size, prec_level }
            }
            METER_BAND_EXPERIMENTER => {
                let experimenter = b.u32("meter band experimenter")?;
                let data = b.rest().to_vec();
                MeterBand::Experimenter { rate, burst_size, experimenter, data }
            }
            _ => MeterBand::Unknown { band_type, rate, burst_size, data: b.rest().to_vec() },
        })
    }

    /// Emits one meter band.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 2);
        match self {
            MeterBand::Drop { rate, burst_size } => {
                put_band_header(buf, METER_BAND_DROP, *rate, *burst_size);
                buf.put_bytes(0, 4);
            }
            MeterBand::DscpRemark { rate, burst_size, prec_level } => {
                put_band_header(buf, METER_BAND_DSCP_REMARK, *rate, *burst_size);
                buf.put_u8(*prec_level);
                buf.put_bytes(0, 3);
            }
            MeterBand::Experimenter { rate, burst_size, experimenter, data } => {
                put_band_header(buf, METER_BAND_EXPERIMENTER, *rate, *burst_size);
                buf.put_u32(*experimenter);
                buf.put_slice(data);
            }
            MeterBand::Unknown { band_type, rate, burst_size, data } => {
                put_band_header(buf, *band_type, *rate, *burst_size);
                buf.put_slice(data);
            }
        }
        g.finish(buf);
    }

    /// Parses bands until the reader is exhausted.
    pub fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(MeterBand::parse(r)?);
        }
        Ok(out)
    }

    /// Emits a list of bands.
    pub fn emit_list(bands: &[MeterBand], buf: &mut BytesMut) {
        bands.iter().for_each(|b| b.emit(buf));
    }
}

fn put_band_header(buf: &mut BytesMut, band_type: u16, rate: u32, burst_size: u32) {
    buf.put_u16(band_type);
    buf.put_u16(0);
    buf.put_u32(rate);
    buf.put_u32(burst_size);
}

/// OFPT_METER_MOD: add, change or delete a meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterMod {
    /// What to do.
    pub command: MeterModCommand,
    /// `METER_FLAG_*` bits.
    pub flags: u16,
    /// The meter; `MeterId::ALL` with `Delete` removes every meter.
    pub meter_id: MeterId,
    /// The bands (empty for a delete).
    pub bands: Vec<MeterBand>,
}

impl MeterMod {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let command = MeterModCommand::from(r.u16("meter_mod command")?);
        let flags = r.u16("meter_mod flags")?;
        let meter_id = MeterId(r.u32("meter_mod meter_id")?);
        let bands = MeterBand::parse_list(r)?;
        Ok(MeterMod { command, flags, meter_id, bands })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.command.into());
        buf.put_u16(self.flags);
        buf.put_u32(self.meter_id.0);
        MeterBand::emit_list(&self.bands, buf);
    }
}

/// Packet and byte counters of one band (`ofp_meter_band_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct MeterBandStats {
    /// Packets in the band.
    pub packet_band_count: u64,
    /// Bytes in the band.
    pub byte_band_count: u64,
}

/// Statistics of one meter in an OFPMP_METER reply (`ofp_meter_stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct MeterStats {
    /// The meter.
    pub meter_id: MeterId,
    /// Flows bound to the meter.
    pub flow_count: u32,
    /// Packets entering the meter.
    pub packet_in_count: u64,
    /// Bytes entering the meter.
    pub byte_in_count: u64,
    /// Seconds the meter has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// One counter per band, in band order.
    pub band_stats: Vec<MeterBandStats>,
}

impl MeterStats {
    /// Parses one `ofp_meter_stats`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let meter_id = MeterId(r.u32("meter_stats meter_id")?);
        let len = r.u16("meter_stats len")? as usize;
        let mut b = r.sub_to_len(start, len, METER_STATS_LEN, "meter_stats")?;
        if (len - METER_STATS_LEN) % BAND_STATS_LEN != 0 {
            return Err(DecodeError::BadLength { what: "meter_stats", offset: start, len });
        }
        b.skip(6, "meter_stats pad")?;
        let flow_count = b.u32("meter_stats flow_count")?;
        let packet_in_count = b.u64("meter_stats packet_in_count")?;
        let byte_in_count = b.u64("meter_stats byte_in_count")?;
        let duration_sec = b.u32("meter_stats duration_sec")?;
        let duration_nsec = b.u32("meter_stats duration_nsec")?;
        let mut band_stats = Vec::with_capacity(b.remaining() / BAND_STATS_LEN);
        while !b.is_empty() {
            band_stats.push(MeterBandStats {
                packet_band_count: b.u64("meter_band_stats packet_band_count")?,
                byte_band_count: b.u64("meter_band_stats byte_band_count")?,
            });
        }
        Ok(MeterStats {
            meter_id,
            flow_count,
            packet_in_count,
            byte_in_count,
            duration_sec,
            duration_nsec,
            band_stats,
        })
    }

    /// Emits one `ofp_meter_stats`.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 4);
        buf.put_u32(self.meter_id.0);
        buf.put_u16(0);
        buf.put_bytes(0, 6);
        buf.put_u32(self.flow_count);
        buf.put_u64(self.packet_in_count);
        buf.put_u64(self.byte_in_count);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        for s in &self.band_stats {
            buf.put_u64(s.packet_band_count);
            buf.put_u64(s.byte_band_count);
        }
        g.finish(buf);
    }
}

/// One meter in an OFPMP_METER_CONFIG reply (`ofp_meter_config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterConfig {
    /// `METER_FLAG_*` bits.
    pub flags: u16,
    /// The meter.
    pub meter_id: MeterId,
    /// Its bands.
    pub bands: Vec<MeterBand>,
}

impl MeterConfig {
    /// Parses one `ofp_meter_config`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.u16("meter_config length")? as usize;
        let mut b = r.sub_to_len(start, len, METER_CONFIG_LEN, "meter_config")?;
        let flags = b.u16("meter_config flags")?;
        let meter_id = MeterId(b.u32("meter_config meter_id")?);
        let bands = MeterBand::parse_list(&mut b)?;
        Ok(MeterConfig { flags, meter_id, bands })
    }

    /// Emits one `ofp_meter_config`.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 0);
        buf.put_u16(0);
        buf.put_u16(self.flags);
        buf.put_u32(self.meter_id.0);
        MeterBand::emit_list(&self.bands, buf);
        g.finish(buf);
    }
}

/// The switch's meter capabilities, the OFPMP_METER_FEATURES reply (`ofp_meter_features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct MeterFeatures {
    /// Maximum number of meters.
    pub max_meter: u32,
    /// Bitmap of supported band types (bit `1 << OFPMBT_*`).
    pub band_types: u32,
    /// Bitmap of supported `METER_FLAG_*` flags.
    pub capabilities: u32,
    /// Maximum bands per meter.
    pub max_bands: u8,
    /// Maximum color value.
    pub max_color: u8,
}

impl MeterFeatures {
    /// Parses an `ofp_meter_features`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let max_meter = r.u32("meter_features max_meter")?;
        let band_types = r.u32("meter_features band_types")?;
        let capabilities = r.u32("meter_features capabilities")?;
        let max_bands = r.u8("meter_features max_bands")?;
        let max_color = r.u8("meter_features max_color")?;
        r.skip(2, "meter_features pad")?;
        Ok(MeterFeatures { max_meter, band_types, capabilities, max_bands, max_color })
    }

    /// Emits an `ofp_meter_features`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.max_meter);
        buf.put_u32(self.band_types);
        buf.put_u32(self.capabilities);
        buf.put_u8(self.max_bands);
        buf.put_u8(self.max_color);
        buf.put_bytes(0, 2);
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Proptest strategies for meter values.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Any band; experimenter and unknown data are whole 8-byte words, as on real switches.
    pub(crate) fn band() -> impl Strategy<Value = MeterBand> {
        let words =
            || vec(any::<u8>(), 0..3).prop_map(|w| w.iter().flat_map(|&b| [b; 8]).collect());
        prop_oneof![
            any::<(u32, u32)>().prop_map(|(rate, burst_size)| MeterBand::Drop { rate, burst_size }),
            any::<(u32, u32, u8)>().prop_map(|(rate, burst_size, prec_level)| {
                MeterBand::DscpRemark { rate, burst_size, prec_level }
            }),
            (any::<(u32, u32, u32)>(), words()).prop_map(
                |((rate, burst_size, experimenter), data)| {
                    MeterBand::Experimenter { rate, burst_size, experimenter, data }
                }
            ),
            (3u16..0xffff, any::<(u32, u32)>(), words()).prop_map(
                |(band_type, (rate, burst_size), data)| MeterBand::Unknown {
                    band_type,
                    rate,
                    burst_size,
                    data
                }
            ),
        ]
    }

    /// Any meter mod.
    pub(crate) fn meter_mod() -> impl Strategy<Value = MeterMod> {
        (any::<(u16, u16, u32)>(), vec(band(), 0..4)).prop_map(|((c, flags, id), bands)| MeterMod {
            command: MeterModCommand::from(c),
            flags,
            meter_id: MeterId(id),
            bands,
        })
    }

    /// Any meter statistics entry.
    pub(crate) fn meter_stats() -> impl Strategy<Value = MeterStats> {
        (
            any::<(u32, u32, u64, u64, u32, u32)>(),
            vec(
                any::<(u64, u64)>()
                    .prop_map(|(p, b)| MeterBandStats { packet_band_count: p, byte_band_count: b }),
                0..4,
            ),
        )
            .prop_map(|((id, fc, pc, bc, ds, dn), band_stats)| MeterStats {
                meter_id: MeterId(id),
                flow_count: fc,
                packet_in_count: pc,
                byte_in_count: bc,
                duration_sec: ds,
                duration_nsec: dn,
                band_stats,
            })
    }

    /// Any meter configuration.
    pub(crate) fn meter_config() -> impl Strategy<Value = MeterConfig> {
        (any::<(u16, u32)>(), vec(band(), 0..3)).prop_map(|((flags, id), bands)| MeterConfig {
            flags,
            meter_id: MeterId(id),
            bands,
        })
    }

    /// Any meter features.
    pub(crate) fn meter_features() -> impl Strategy<Value = MeterFeatures> {
        any::<(u32, u32, u32, u8, u8)>().prop_map(
            |(max_meter, band_types, capabilities, max_bands, max_color)| MeterFeatures {
                max_meter,
                band_types,
                capabilities,
                max_bands,
                max_color,
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

    /// ADD meter 7, kbps|burst|stats, a drop band (1000 kb/s, burst 100) and a DSCP remark
    /// band (2000 kb/s, burst 200, +1 precedence).
    const METER_MOD: &str = "041d 0030 00000002 0000 000d 00000007
        0001 0010 000003e8 00000064 00000000
        0002 0010 000007d0 000000c8 01 000000";

    fn sample() -> MeterMod {
        MeterMod {
            command: MeterModCommand::Add,
            flags: METER_FLAG_KBPS | METER_FLAG_BURST | METER_FLAG_STATS,
            meter_id: MeterId(7),
            bands: vec![
                MeterBand::Drop { rate: 1000, burst_size: 100 },
                MeterBand::DscpRemark { rate: 2000, burst_size: 200, prec_level: 1 },
            ],
        }
    }

    #[test]
    fn meter_mod_parses() {
        let m = OfpMessage::parse(&hex(METER_MOD)).unwrap();
        assert_eq!(m.msg, Message::MeterMod(sample()));
    }

    #[test]
    fn meter_mod_emits() {
        assert_eq!(OfpMessage::new(Xid(2), Message::MeterMod(sample())).to_vec(), hex(METER_MOD));
    }

    #[test]
    fn meter_mod_truncations_fail() {
        assert_truncations_fail(&hex(METER_MOD));
    }

    #[test]
    fn drop_band_of_wrong_length_is_rejected() {
        let mut b = hex("041d 0028 00000002 0000 000d 00000007 0001 0018 000003e8 00000064 000000000000000000000000");
        let err = OfpMessage::parse(&b).unwrap_err();
        assert_eq!(err, DecodeError::BadLength { what: "meter band", offset: 16, len: 24 });
        b[19] = 0x08;
        let err = OfpMessage::parse(&b).unwrap_err();
        assert_eq!(err, DecodeError::BadLength { what: "meter band", offset: 16, len: 8 });
    }

    #[test]
    fn meter_stats_len_sits_after_meter_id() {
        let s = MeterStats {
            meter_id: MeterId(1),
            band_stats: vec![MeterBandStats { packet_band_count: 3, byte_band_count: 4 }],
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        s.emit(&mut buf);
        assert_eq!(&buf[..6], &hex("00000001 0038")[..]);
        assert_eq!(MeterStats::parse(&mut Reader::new(&buf)).unwrap(), s);
    }

    proptest! {
        #[test]
        fn meter_mod_round_trips(m in strategies::meter_mod(), xid in any::<u32>()) {
            let m = OfpMessage::new(Xid(xid), Message::MeterMod(m));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }
    }
}
