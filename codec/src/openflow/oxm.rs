//! Flow matches: `ofp_match` of type OFPMT_OXM with its OXM TLVs (spec 1.3.5 §7.2.3), plus the
//! Nicira (NXM), Nicira experimenter (NXOXM, the ERSPAN tunnel metadata) and ONF experimenter
//! fields Open vSwitch uses in OpenFlow 1.3.
//!
//! ```text
//! struct ofp_match { uint16_t type; uint16_t length; uint8_t oxm_fields[0]; uint8_t pad[...]; };
//! OXM TLV header: oxm_class:16 | oxm_field:7 | oxm_hasmask:1 | oxm_length:8
//! experimenter OXM (class 0xffff): header, uint32_t experimenter, then the value (and mask)
//! ```
//! `length` counts the 4-byte header and the TLVs, not the padding to 8 bytes. `oxm_length`
//! counts the value and the mask, and for class 0xffff the 4-byte experimenter id too.
//!
//! Every typed field knows its [`FieldInfo`]: names, class, width and whether it may be masked.
//! The spec allows masks on fewer fields than Open vSwitch does; this codec follows Open vSwitch
//! for TCP/UDP/SCTP ports and the IPv6 neighbour discovery fields, which OVS sends masked.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use smallvec::SmallVec;

use super::experimenter::{NICIRA_EXPERIMENTER_ID, ONF_EXPERIMENTER_ID};
use super::types::{MacAddr, PortNo};
use super::wire::{Reader, Writer};
use super::DecodeError;

/// OFPMT_OXM.
const MATCH_TYPE_OXM: u16 = 1;
/// NXM_OF: Nicira's class for the fields of OpenFlow 1.0.
pub const OXM_CLASS_NXM_0: u16 = 0x0000;
/// NXM_NX: Nicira's class for its own extension fields (registers, tunnels, conntrack).
pub const OXM_CLASS_NXM_1: u16 = 0x0001;
/// OFPXMC_OPENFLOW_BASIC.
pub const OXM_CLASS_OPENFLOW_BASIC: u16 = 0x8000;
/// OFPXMC_PACKET_REGS: the 64-bit packet registers (OVS `xreg0`..`xreg7`).
pub const OXM_CLASS_PACKET_REGS: u16 = 0x8001;
/// OFPXMC_EXPERIMENTER: a 4-byte experimenter id follows the header.
pub const OXM_CLASS_EXPERIMENTER: u16 = 0xffff;

/// How many match fields [`Fields`] holds without a heap allocation: in_port, eth_type, a
/// VLAN or tunnel key and a 5-tuple.
pub const INLINE_FIELDS: usize = 8;

/// The fields of a match, inline up to [`INLINE_FIELDS`] (a match is parsed for every flow
/// mod, flow stats entry and packet-in; most have a handful of fields).
pub type Fields = SmallVec<[OxmField; INLINE_FIELDS]>;

/// A flow match: the OXM fields in wire order. An empty match matches every packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Match {
    /// The fields, in the order they appear on the wire.
    pub fields: Fields,
}

/// How a field's value is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// One byte.
    U8,
    /// Big-endian u16.
    U16,
    /// Big-endian 24-bit integer (PBB I-SID).
    U24,
    /// Big-endian u32.
    U32,
    /// Big-endian u64.
    U64,
    /// Six-byte Ethernet address.
    Mac,
    /// Four-byte IPv4 address.
    Ipv4,
    /// Sixteen-byte IPv6 address.
    Ipv6,
    /// Four-byte OpenFlow port number.
    Port,
}

impl Kind {
    /// Bytes of one value (without mask).
    #[inline]
    pub const fn width(self) -> usize {
        match self {
            Kind::U8 => 1,
            Kind::U16 => 2,
            Kind::U24 => 3,
            Kind::U32 | Kind::Ipv4 | Kind::Port => 4,
            Kind::U64 => 8,
            Kind::Mac => 6,
            Kind::Ipv6 => 16,
        }
    }
}

/// How the `ovs-ofctl` text format writes a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextKind {
    /// Decimal when exact, `0x../0x..` when masked.
    Dec,
    /// Hexadecimal with `0x`.
    Hex,
    /// `aa:bb:cc:dd:ee:ff`.
    Mac,
    /// Dotted quad or IPv6 text, masks as prefix length when contiguous.
    Ip,
    /// Port number or reserved port name.
    Port,
    /// Conntrack state flags (`+trk+new`, `new|trk`).
    CtState,
    /// Tunnel flags (`+oam`).
    TunFlags,
    /// TCP flags (`+syn-ack`).
    TcpFlags,
}

/// What the codec and the text format know about one typed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// Open vSwitch's field name (used by `set_field`, accepted in matches).
    pub name: &'static str,
    /// The name `ovs-ofctl` prints in matches (legacy names such as `dl_dst`, `nw_src`, `tp_dst`).
    pub match_name: &'static str,
    /// The name used in decode errors.
    pub what: &'static str,
    /// OXM class.
    pub class: u16,
    /// Experimenter id, for class 0xffff.
    pub experimenter: Option<u32>,
    /// Field number within the class.
    pub field: u8,
    /// Wire layout of the value.
    pub kind: Kind,
    /// Whether a mask may follow the value.
    pub maskable: bool,
    /// Significant bits (as in `NXM_NX_REG0[]` subfields).
    pub bits: u16,
    /// Text format of the value.
    pub text: TextKind,
    /// Position in `ovs-ofctl`'s canonical match order.
    pub rank: u16,
}

impl FieldInfo {
    /// Bytes of the TLV payload (experimenter id, value and mask).
    #[inline]
    pub fn payload_len(&self, has_mask: bool) -> usize {
        let v = self.kind.width() * if has_mask { 2 } else { 1 };
        v + if self.experimenter.is_some() { 4 } else { 0 }
    }

    /// The header naming this field (as NXM actions carry it).
    #[inline]
    pub fn header(&self) -> OxmHeader {
        OxmHeader {
            class: self.class,
            field: self.field,
            has_mask: false,
            length: self.payload_len(false) as u8,
            experimenter: self.experimenter,
        }
    }

    /// Looks a field up by OVS name (`tun_id`, `reg3`, `eth_dst`...) or printed match name.
    pub fn by_name(name: &str) -> Option<&'static FieldInfo> {
        all_fields()
            .find(|f| f.name == name)
            .or_else(|| all_fields().find(|f| f.match_name == name))
    }

    /// Looks a field up by its wire identity.
    #[inline]
    pub fn by_id(class: u16, experimenter: Option<u32>, field: u8) -> Option<&'static FieldInfo> {
        field_index(class, experimenter, field).and_then(field_at)
    }
}

/// Every typed field, in declaration order.
pub fn all_fields() -> impl Iterator<Item = &'static FieldInfo> {
    FIELDS.iter().chain(REG_FIELDS.iter()).chain(XREG_FIELDS.iter())
}

/// A field value, independent of the field it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// [`Kind::U8`].
    U8(u8),
    /// [`Kind::U16`].
    U16(u16),
    /// [`Kind::U24`].
    U24(u32),
    /// [`Kind::U32`].
    U32(u32),
    /// [`Kind::U64`].
    U64(u64),
    /// [`Kind::Mac`].
    Mac(MacAddr),
    /// [`Kind::Ipv4`].
    Ipv4(Ipv4Addr),
    /// [`Kind::Ipv6`].
    Ipv6(Ipv6Addr),
    /// [`Kind::Port`].
    Port(PortNo),
}

impl Value {
    /// Reads a value of `kind`.
    #[inline(always)]
    pub fn read(kind: Kind, r: &mut Reader<'_>, what: &'static str) -> Result<Value, DecodeError> {
        Ok(match kind {
            Kind::U8 => Value::U8(r.u8(what)?),
            Kind::U16 => Value::U16(r.u16(what)?),
            Kind::U24 => {
                let b: [u8; 3] = r.array(what)?;
                Value::U24(u32::from_be_bytes([0, b[0], b[1], b[2]]))
            }
            Kind::U32 => Value::U32(r.u32(what)?),
            Kind::U64 => Value::U64(r.u64(what)?),
            Kind::Mac => Value::Mac(MacAddr(r.array(what)?)),
            Kind::Ipv4 => Value::Ipv4(Ipv4Addr::from(r.array::<4>(what)?)),
            Kind::Ipv6 => Value::Ipv6(Ipv6Addr::from(r.array::<16>(what)?)),
            Kind::Port => Value::Port(PortNo(r.u32(what)?)),
        })
    }

    /// A value of `kind` from the first bytes of `p`; `None` if `p` is too short.
    #[inline(always)]
    pub(crate) fn from_slice(kind: Kind, p: &[u8]) -> Option<Value> {
        fn a<const N: usize>(p: &[u8]) -> Option<[u8; N]> {
            p.get(..N)?.try_into().ok()
        }
        Some(match kind {
            Kind::U8 => Value::U8(*p.first()?),
            Kind::U16 => Value::U16(u16::from_be_bytes(a(p)?)),
            Kind::U24 => {
                let b: [u8; 3] = a(p)?;
                Value::U24(u32::from_be_bytes([0, b[0], b[1], b[2]]))
            }
            Kind::U32 => Value::U32(u32::from_be_bytes(a(p)?)),
            Kind::U64 => Value::U64(u64::from_be_bytes(a(p)?)),
            Kind::Mac => Value::Mac(MacAddr(a(p)?)),
            Kind::Ipv4 => Value::Ipv4(Ipv4Addr::from(a::<4>(p)?)),
            Kind::Ipv6 => Value::Ipv6(Ipv6Addr::from(a::<16>(p)?)),
            Kind::Port => Value::Port(PortNo(u32::from_be_bytes(a(p)?))),
        })
    }

    /// Writes the value in its wire layout.
    #[inline(always)]
    pub fn write(&self, buf: &mut BytesMut) {
        match *self {
            Value::U8(v) => buf.put_u8(v),
            Value::U16(v) => buf.put_u16(v),
            Value::U24(v) => buf.put_slice(&v.to_be_bytes()[1..]),
            Value::U32(v) => buf.put_u32(v),
            Value::U64(v) => buf.put_u64(v),
            Value::Mac(m) => buf.put_slice(&m.0),
            Value::Ipv4(a) => buf.put_slice(&a.octets()),
            Value::Ipv6(a) => buf.put_slice(&a.octets()),
            Value::Port(p) => buf.put_u32(p.0),
        }
    }

    /// Writes the value in its wire layout through a [`Writer`].
    #[inline(always)]
    pub fn put(&self, w: &mut Writer<'_>) {
        match *self {
            Value::U8(v) => w.u8(v),
            Value::U16(v) => w.u16(v),
            Value::U24(v) => {
                let b = v.to_be_bytes();
                w.array([b[1], b[2], b[3]]);
            }
            Value::U32(v) => w.u32(v),
            Value::U64(v) => w.u64(v),
            Value::Mac(m) => w.array(m.0),
            Value::Ipv4(a) => w.array(a.octets()),
            Value::Ipv6(a) => w.array(a.octets()),
            Value::Port(p) => w.u32(p.0),
        }
    }

    /// Writes the value into `s`, which is exactly its width.
    #[inline(always)]
    fn put_into(&self, s: &mut [u8]) {
        match *self {
            Value::U8(v) => s.copy_from_slice(&[v]),
            Value::U16(v) => s.copy_from_slice(&v.to_be_bytes()),
            Value::U24(v) => s.copy_from_slice(&v.to_be_bytes()[1..]),
            Value::U32(v) => s.copy_from_slice(&v.to_be_bytes()),
            Value::U64(v) => s.copy_from_slice(&v.to_be_bytes()),
            Value::Mac(m) => s.copy_from_slice(&m.0),
            Value::Ipv4(a) => s.copy_from_slice(&a.octets()),
            Value::Ipv6(a) => s.copy_from_slice(&a.octets()),
            Value::Port(p) => s.copy_from_slice(&p.0.to_be_bytes()),
        }
    }

    /// The value as an unsigned integer, when it is one (addresses included).
    pub fn as_u128(&self) -> u128 {
        match *self {
            Value::U8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::U24(v) | Value::U32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::Mac(m) => m.0.iter().fold(0u128, |a, b| a << 8 | u128::from(*b)),
            Value::Ipv4(a) => u32::from(a).into(),
            Value::Ipv6(a) => u128::from(a),
            Value::Port(p) => p.0.into(),
        }
    }

    /// A value of `kind` from an unsigned integer, if it fits.
    pub fn from_u128(kind: Kind, v: u128) -> Option<Value> {
        Some(match kind {
            Kind::U8 => Value::U8(u8::try_from(v).ok()?),
            Kind::U16 => Value::U16(u16::try_from(v).ok()?),
            Kind::U24 if v < 1 << 24 => Value::U24(v as u32),
            Kind::U24 => return None,
            Kind::U32 => Value::U32(u32::try_from(v).ok()?),
            Kind::U64 => Value::U64(u64::try_from(v).ok()?),
            Kind::Mac if v < 1 << 48 => {
                let b = v.to_be_bytes();
                let mut m = [0u8; 6];
                m.copy_from_slice(&b[10..]);
                Value::Mac(MacAddr(m))
            }
            Kind::Mac => return None,
            Kind::Ipv4 => Value::Ipv4(Ipv4Addr::from(u32::try_from(v).ok()?)),
            Kind::Ipv6 => Value::Ipv6(Ipv6Addr::from(v)),
            Kind::Port => Value::Port(PortNo(u32::try_from(v).ok()?)),
        })
    }
}

/// Converts a typed field value to and from [`Value`].
trait FieldType: Sized + Copy {
    fn from_value(v: Value) -> Option<Self>;
}

macro_rules! field_type {
    ($t:ty: $($v:ident),*) => {
        impl FieldType for $t {
            fn from_value(v: Value) -> Option<Self> {
                match v {
                    $(Value::$v(x) => Some(x),)*
                    _ => None,
                }
            }
        }
    };
}
field_type!(u8: U8);
field_type!(u16: U16);
field_type!(u32: U32, U24);
field_type!(u64: U64);
field_type!(MacAddr: Mac);
field_type!(Ipv4Addr: Ipv4);
field_type!(Ipv6Addr: Ipv6);
field_type!(PortNo: Port);

/// Declares the typed OXM fields: the enum variants, their [`FieldInfo`] table and the
/// conversions to and from [`Value`]. Exact-match fields carry one value; maskable fields carry
/// a value and an optional mask.
macro_rules! oxm_fields {
    (
        exact { $($(#[$ed:meta])* $ev:ident($et:ty) = $ec:expr, $ee:expr, $ef:expr,
            $ek:ident, $etx:ident, $en:literal, $emn:literal, $eb:expr, $er:expr;)* }
        masked { $($(#[$md:meta])* $mv:ident($mt:ty) = $mc:expr, $me:expr, $mf:expr,
            $mk:ident, $mtx:ident, $mn:literal, $mmn:literal, $mb:expr, $mr:expr;)* }
    ) => {
        /// One OXM TLV: a typed field, or an unknown one kept as bytes.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[non_exhaustive]
        pub enum OxmField {
            $($(#[$ed])* $ev($et),)*
            $($(#[$md])* $mv($mt, Option<$mt>),)*
            /// NXM_NX_REG0..15: a 32-bit Open vSwitch register (index 0..=15, value, mask).
            Reg(u8, u32, Option<u32>),
            /// OXM_OF_PKT_REG0..7 (OVS `xreg0`..`xreg7`): a 64-bit packet register (index,
            /// value, mask). Open vSwitch implements indexes 0..=7; higher ones are emitted as
            /// asked and come back as `Unknown`.
            XReg(u8, u64, Option<u64>),
            /// An experimenter field (class 0xffff) this codec does not decode, kept as bytes.
            Experimenter {
                /// Experimenter id.
                experimenter: u32,
                /// Field number.
                field: u8,
                /// Whether a mask follows the value (the second half of `payload`).
                has_mask: bool,
                /// Value, then mask if `has_mask`, after the experimenter id.
                payload: Vec<u8>,
            },
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

        const FIELD_TABLE: &[FieldInfo] = &[
            $(FieldInfo {
                name: $en, match_name: $emn, what: concat!("oxm ", $en), class: $ec,
                experimenter: $ee, field: $ef, kind: Kind::$ek, maskable: false, bits: $eb,
                text: TextKind::$etx, rank: $er,
            },)*
            $(FieldInfo {
                name: $mn, match_name: $mmn, what: concat!("oxm ", $mn), class: $mc,
                experimenter: $me, field: $mf, kind: Kind::$mk, maskable: true, bits: $mb,
                text: TextKind::$mtx, rank: $mr,
            },)*
        ];

        static FIELDS: &[FieldInfo] = FIELD_TABLE;

        /// The typed fields, in `FIELDS` order: `FieldId::X as usize` is X's position there.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(clippy::enum_variant_names)]
        enum FieldId {
            $($ev,)*
            $($mv,)*
        }

        /// Every `FieldId`, by position.
        static FIELD_IDS: &[FieldId] = &[$(FieldId::$ev,)* $(FieldId::$mv,)*];

        impl OxmField {
            /// Metadata of a typed field; `None` for unknown and experimenter-opaque fields.
            #[inline]
            pub fn info(&self) -> Option<&'static FieldInfo> {
                self.typed().map(|(info, _, _)| info)
            }

            /// The value and mask of a typed field.
            #[inline]
            pub fn value(&self) -> Option<(Value, Option<Value>)> {
                Some(match self {
                    $(OxmField::$ev(v) => (Value::$ek(*v), None),)*
                    $(OxmField::$mv(v, m) => (Value::$mk(*v), m.map(Value::$mk)),)*
                    OxmField::Reg(_, v, m) => (Value::U32(*v), m.map(Value::U32)),
                    OxmField::XReg(_, v, m) => (Value::U64(*v), m.map(Value::U64)),
                    OxmField::Experimenter { .. } | OxmField::Unknown { .. } => return None,
                })
            }

            /// Metadata, value and mask of a typed field in one step.
            #[inline]
            fn typed(&self) -> Option<(&'static FieldInfo, Value, Option<Value>)> {
                Some(match self {
                    $(OxmField::$ev(v) => (&FIELDS[FieldId::$ev as usize], Value::$ek(*v), None),)*
                    $(OxmField::$mv(v, m) => {
                        (&FIELDS[FieldId::$mv as usize], Value::$mk(*v), m.map(Value::$mk))
                    })*
                    OxmField::Reg(i, v, m) => {
                        (REG_FIELDS.get(usize::from(*i))?, Value::U32(*v), m.map(Value::U32))
                    }
                    OxmField::XReg(i, v, m) => {
                        (XREG_FIELDS.get(usize::from(*i))?, Value::U64(*v), m.map(Value::U64))
                    }
                    OxmField::Experimenter { .. } | OxmField::Unknown { .. } => return None,
                })
            }

            /// Builds a typed field from its metadata, value and mask. `None` when the values
            /// are of the wrong kind, or a mask is given for a field that takes none.
            pub fn from_value(
                info: &FieldInfo,
                v: Value,
                m: Option<Value>,
            ) -> Option<OxmField> {
                if m.is_some() && !info.maskable {
                    return None;
                }
                if info.class == OXM_CLASS_NXM_1 && info.field < 16 && info.experimenter.is_none() {
                    return Some(OxmField::Reg(info.field, u32::from_value(v)?, opt(m)?));
                }
                if info.class == OXM_CLASS_PACKET_REGS && info.field < 8 {
                    return Some(OxmField::XReg(info.field, u64::from_value(v)?, opt(m)?));
                }
                // The first entry of `FIELDS` with this identity decides, as a search would.
                let i = field_index(info.class, info.experimenter, info.field)?;
                Some(match FIELD_IDS.get(i)? {
                    $(FieldId::$ev => OxmField::$ev(<$et>::from_value(v)?),)*
                    $(FieldId::$mv => OxmField::$mv(<$mt>::from_value(v)?, opt(m)?),)*
                })
            }

            /// Reads the value (and mask) of the field at position `i` of `FIELDS`, whose
            /// header has been checked: `None` if `i` is not there.
            #[inline]
            fn parse_typed(
                i: usize,
                r: &mut Reader<'_>,
                has_mask: bool,
                what: &'static str,
                bad: impl Fn() -> DecodeError + Copy,
            ) -> Result<Option<OxmField>, DecodeError> {
                let Some(&id) = FIELD_IDS.get(i) else { return Ok(None) };
                Ok(Some(match id {
                    $(FieldId::$ev => OxmField::$ev(read_as(Kind::$ek, r, what, bad)?),)*
                    $(FieldId::$mv => {
                        let v = read_as(Kind::$mk, r, what, bad)?;
                        let m = if has_mask { Some(read_as(Kind::$mk, r, what, bad)?) } else { None };
                        OxmField::$mv(v, m)
                    })*
                }))
            }

            /// Builds the field at position `i` of `FIELDS` from its TLV payload, whose length
            /// has been checked; `None` if `i` is not there.
            #[inline(always)]
            fn from_payload(i: usize, p: &[u8], has_mask: bool) -> Option<OxmField> {
                Some(match *FIELD_IDS.get(i)? {
                    $(FieldId::$ev => {
                        OxmField::$ev(<$et>::from_value(Value::from_slice(Kind::$ek, p)?)?)
                    })*
                    $(FieldId::$mv => {
                        let v = <$mt>::from_value(Value::from_slice(Kind::$mk, p)?)?;
                        let m = match has_mask {
                            true => {
                                let p = p.get(const { Kind::$mk.width() }..)?;
                                Some(<$mt>::from_value(Value::from_slice(Kind::$mk, p)?)?)
                            }
                            false => None,
                        };
                        OxmField::$mv(v, m)
                    })*
                })
            }

            /// Writes a typed field other than a register: false for the other kinds.
            #[inline(always)]
            fn write_typed(&self, w: &mut Writer<'_>) -> bool {
                match self {
                    $(OxmField::$ev(v) => {
                        put_tlv(w, &FIELD_TABLE[FieldId::$ev as usize], Value::$ek(*v), None)
                    })*
                    $(OxmField::$mv(v, m) => {
                        put_tlv(w, &FIELD_TABLE[FieldId::$mv as usize], Value::$mk(*v), m.map(Value::$mk))
                    })*
                    _ => return false,
                }
                true
            }
        }
    };
}

/// Writes one TLV of a typed field: header, value, mask. Inlined with a constant field, this
/// is a few stores.
#[inline(always)]
fn put_tlv(w: &mut Writer<'_>, info: &FieldInfo, v: Value, m: Option<Value>) {
    let len = info.payload_len(m.is_some());
    let fh = u32::from(info.field << 1 | u8::from(m.is_some()));
    let s = w.room(4 + len);
    s[..4].copy_from_slice(&(u32::from(info.class) << 16 | fh << 8 | len as u32).to_be_bytes());
    let mut at = 4;
    if let Some(e) = info.experimenter {
        s[4..8].copy_from_slice(&e.to_be_bytes());
        at = 8;
    }
    let vw = info.kind.width();
    v.put_into(&mut s[at..at + vw]);
    if let Some(m) = m {
        m.put_into(&mut s[at + vw..at + 2 * vw]);
    }
}

/// Reads a value of `kind` as the Rust type of its field; a kind that does not fit the type is
/// a codec bug, reported as a bad value rather than a panic.
#[inline(always)]
fn read_as<T: FieldType>(
    kind: Kind,
    r: &mut Reader<'_>,
    what: &'static str,
    bad: impl Fn() -> DecodeError,
) -> Result<T, DecodeError> {
    T::from_value(Value::read(kind, r, what)?).ok_or_else(bad)
}

fn opt<T: FieldType>(m: Option<Value>) -> Option<Option<T>> {
    match m {
        None => Some(None),
        Some(v) => T::from_value(v).map(Some),
    }
}

const B: u16 = OXM_CLASS_OPENFLOW_BASIC;
const NX: u16 = OXM_CLASS_NXM_1;
const EXP: u16 = OXM_CLASS_EXPERIMENTER;
const ONF: Option<u32> = Some(ONF_EXPERIMENTER_ID);
const NXOXM: Option<u32> = Some(NICIRA_EXPERIMENTER_ID);

// Columns: variant(type) = class, experimenter, field, wire kind, text kind, OVS name,
// printed match name, significant bits, rank in `ovs-ofctl`'s match order.
oxm_fields! {
    exact {
        /// OXM_OF_IN_PORT: switch input port.
        InPort(PortNo) = B, None, 0, Port, Port, "in_port", "in_port", 32, 80;
        /// OXM_OF_IN_PHY_PORT: physical input port.
        InPhyPort(PortNo) = B, None, 1, Port, Port, "in_phy_port", "in_phy_port", 32, 81;
        /// OXM_OF_ETH_TYPE: Ethernet frame type.
        EthType(u16) = B, None, 5, U16, Hex, "eth_type", "dl_type", 16, 140;
        /// OXM_OF_VLAN_PCP: VLAN priority (3 bits).
        VlanPcp(u8) = B, None, 7, U8, Dec, "vlan_pcp", "dl_vlan_pcp", 3, 110;
        /// OXM_OF_IP_DSCP: the 6 DSCP bits of the IP ToS (OVS prints `nw_tos`, shifted by 2).
        IpDscp(u8) = B, None, 8, U8, Dec, "ip_dscp", "nw_tos", 6, 180;
        /// OXM_OF_IP_ECN: the 2 ECN bits of the IP ToS.
        IpEcn(u8) = B, None, 9, U8, Dec, "nw_ecn", "nw_ecn", 2, 190;
        /// OXM_OF_IP_PROTO: IP protocol number.
        IpProto(u8) = B, None, 10, U8, Dec, "nw_proto", "nw_proto", 8, 160;
        /// OXM_OF_ICMPV4_TYPE.
        Icmpv4Type(u8) = B, None, 19, U8, Dec, "icmp_type", "icmp_type", 8, 210;
        /// OXM_OF_ICMPV4_CODE.
        Icmpv4Code(u8) = B, None, 20, U8, Dec, "icmp_code", "icmp_code", 8, 211;
        /// OXM_OF_ARP_OP: ARP opcode.
        ArpOp(u16) = B, None, 21, U16, Dec, "arp_op", "arp_op", 16, 161;
        /// OXM_OF_ICMPV6_TYPE.
        Icmpv6Type(u8) = B, None, 29, U8, Dec, "icmpv6_type", "icmp_type", 8, 212;
        /// OXM_OF_ICMPV6_CODE.
        Icmpv6Code(u8) = B, None, 30, U8, Dec, "icmpv6_code", "icmp_code", 8, 213;
        /// OXM_OF_MPLS_LABEL: the 20-bit MPLS label.
        MplsLabel(u32) = B, None, 34, U32, Dec, "mpls_label", "mpls_label", 20, 200;
        /// OXM_OF_MPLS_TC: the 3-bit MPLS traffic class.
        MplsTc(u8) = B, None, 35, U8, Dec, "mpls_tc", "mpls_tc", 3, 201;
        /// OXM_OF_MPLS_BOS: MPLS bottom-of-stack bit.
        MplsBos(u8) = B, None, 36, U8, Dec, "mpls_bos", "mpls_bos", 1, 202;
        /// NXM_NX_IP_TTL: IP time to live.
        NwTtl(u8) = NX, None, 29, U8, Dec, "nw_ttl", "nw_ttl", 8, 195;
        /// NXM_NX_CT_ZONE: conntrack zone (read-only).
        CtZone(u16) = NX, None, 106, U16, Dec, "ct_zone", "ct_zone", 16, 11;
    }
    masked {
        /// OXM_OF_METADATA: table metadata, with optional mask.
        Metadata(u64) = B, None, 2, U64, Hex, "metadata", "metadata", 64, 70;
        /// OXM_OF_ETH_DST with optional mask.
        EthDst(MacAddr) = B, None, 3, Mac, Mac, "eth_dst", "dl_dst", 48, 130;
        /// OXM_OF_ETH_SRC with optional mask.
        EthSrc(MacAddr) = B, None, 4, Mac, Mac, "eth_src", "dl_src", 48, 120;
        /// OXM_OF_VLAN_VID: VLAN id with the OFPVID_PRESENT bit (0x1000), optional mask.
        VlanVid(u16) = B, None, 6, U16, Dec, "vlan_vid", "vlan_vid", 12, 100;
        /// OXM_OF_IPV4_SRC with optional mask.
        Ipv4Src(Ipv4Addr) = B, None, 11, Ipv4, Ip, "ip_src", "nw_src", 32, 150;
        /// OXM_OF_IPV4_DST with optional mask.
        Ipv4Dst(Ipv4Addr) = B, None, 12, Ipv4, Ip, "ip_dst", "nw_dst", 32, 151;
        /// OXM_OF_TCP_SRC (OVS allows a mask).
        TcpSrc(u16) = B, None, 13, U16, Dec, "tcp_src", "tp_src", 16, 220;
        /// OXM_OF_TCP_DST (OVS allows a mask).
        TcpDst(u16) = B, None, 14, U16, Dec, "tcp_dst", "tp_dst", 16, 221;
        /// OXM_OF_UDP_SRC (OVS allows a mask).
        UdpSrc(u16) = B, None, 15, U16, Dec, "udp_src", "tp_src", 16, 222;
        /// OXM_OF_UDP_DST (OVS allows a mask).
        UdpDst(u16) = B, None, 16, U16, Dec, "udp_dst", "tp_dst", 16, 223;
        /// OXM_OF_SCTP_SRC (OVS allows a mask).
        SctpSrc(u16) = B, None, 17, U16, Dec, "sctp_src", "tp_src", 16, 224;
        /// OXM_OF_SCTP_DST (OVS allows a mask).
        SctpDst(u16) = B, None, 18, U16, Dec, "sctp_dst", "tp_dst", 16, 225;
        /// OXM_OF_ARP_SPA with optional mask.
        ArpSpa(Ipv4Addr) = B, None, 22, Ipv4, Ip, "arp_spa", "arp_spa", 32, 152;
        /// OXM_OF_ARP_TPA with optional mask.
        ArpTpa(Ipv4Addr) = B, None, 23, Ipv4, Ip, "arp_tpa", "arp_tpa", 32, 153;
        /// OXM_OF_ARP_SHA with optional mask.
        ArpSha(MacAddr) = B, None, 24, Mac, Mac, "arp_sha", "arp_sha", 48, 170;
        /// OXM_OF_ARP_THA with optional mask.
        ArpTha(MacAddr) = B, None, 25, Mac, Mac, "arp_tha", "arp_tha", 48, 171;
        /// OXM_OF_IPV6_SRC with optional mask.
        Ipv6Src(Ipv6Addr) = B, None, 26, Ipv6, Ip, "ipv6_src", "ipv6_src", 128, 154;
        /// OXM_OF_IPV6_DST with optional mask.
        Ipv6Dst(Ipv6Addr) = B, None, 27, Ipv6, Ip, "ipv6_dst", "ipv6_dst", 128, 155;
        /// OXM_OF_IPV6_FLABEL: the 20-bit flow label, optional mask.
        Ipv6Flabel(u32) = B, None, 28, U32, Hex, "ipv6_label", "ipv6_label", 20, 156;
        /// OXM_OF_IPV6_ND_TARGET (OVS allows a mask).
        Ipv6NdTarget(Ipv6Addr) = B, None, 31, Ipv6, Ip, "nd_target", "nd_target", 128, 214;
        /// OXM_OF_IPV6_ND_SLL (OVS allows a mask).
        Ipv6NdSll(MacAddr) = B, None, 32, Mac, Mac, "nd_sll", "nd_sll", 48, 215;
        /// OXM_OF_IPV6_ND_TLL (OVS allows a mask).
        Ipv6NdTll(MacAddr) = B, None, 33, Mac, Mac, "nd_tll", "nd_tll", 48, 216;
        /// OXM_OF_PBB_ISID: 24-bit PBB service id, optional mask.
        PbbIsid(u32) = B, None, 37, U24, Hex, "pbb_isid", "pbb_isid", 24, 240;
        /// OXM_OF_TUNNEL_ID: tunnel key (OVS `tun_id`; the tenant key in periscope).
        TunnelId(u64) = B, None, 38, U64, Hex, "tun_id", "tun_id", 64, 60;
        /// OXM_OF_IPV6_EXTHDR: IPv6 extension header pseudo-field, optional mask.
        Ipv6Exthdr(u16) = B, None, 39, U16, Hex, "ipv6_exthdr", "ipv6_exthdr", 9, 241;
        /// NXM_NX_TUN_IPV4_SRC: outer IPv4 source of a tunnel.
        TunIpv4Src(Ipv4Addr) = NX, None, 31, Ipv4, Ip, "tun_src", "tun_src", 32, 61;
        /// NXM_NX_TUN_IPV4_DST: outer IPv4 destination of a tunnel.
        TunIpv4Dst(Ipv4Addr) = NX, None, 32, Ipv4, Ip, "tun_dst", "tun_dst", 32, 62;
        /// NXM_NX_TUN_FLAGS: tunnel flags (bit 0: OAM).
        TunFlags(u16) = NX, None, 104, U16, TunFlags, "tun_flags", "tun_flags", 1, 68;
        /// NXOXM_ET_ERSPAN_IDX: ERSPAN v1 session index (low 20 bits; Open vSwitch 2.10+).
        TunErspanIdx(u32) = EXP, NXOXM, 11, U32, Hex, "tun_erspan_idx", "tun_erspan_idx", 20, 65;
        /// NXOXM_ET_ERSPAN_VER: ERSPAN version, 1 or 2 (low 4 bits). Open vSwitch keeps a match
        /// on it with the value as its mask (`tun_erspan_ver=2` is `(2, Some(2))` on the wire).
        TunErspanVer(u8) = EXP, NXOXM, 12, U8, Dec, "tun_erspan_ver", "tun_erspan_ver", 4, 64;
        /// NXOXM_ET_ERSPAN_DIR: ERSPAN v2 direction, 0 ingress or 1 egress (low bit); matched
        /// with the value as its mask, as `TunErspanVer`.
        TunErspanDir(u8) = EXP, NXOXM, 13, U8, Dec, "tun_erspan_dir", "tun_erspan_dir", 1, 66;
        /// NXOXM_ET_ERSPAN_HWID: ERSPAN v2 hardware id (low 6 bits); matched with the value as
        /// its mask, as `TunErspanVer`.
        TunErspanHwid(u8) = EXP, NXOXM, 14, U8, Hex, "tun_erspan_hwid", "tun_erspan_hwid", 6, 67;
        /// NXM_NX_PKT_MARK: packet mark (Linux skb mark).
        PktMark(u32) = NX, None, 33, U32, Hex, "pkt_mark", "pkt_mark", 32, 5;
        /// NXM_NX_CT_STATE: conntrack state flags.
        CtState(u32) = NX, None, 105, U32, CtState, "ct_state", "ct_state", 32, 10;
        /// NXM_NX_CT_MARK: conntrack mark.
        CtMark(u32) = NX, None, 107, U32, Hex, "ct_mark", "ct_mark", 32, 12;
        /// ONFOXM_ET_TCP_FLAGS: TCP flags (ONF experimenter field in OpenFlow 1.3).
        TcpFlags(u16) = EXP, ONF, 42, U16, TcpFlags, "tcp_flags", "tcp_flags", 12, 230;
    }
}

macro_rules! reg_fields {
    ($class:expr, $kind:ident, $bits:expr, $rank:expr; $($i:literal $name:literal)*) => {
        [$(FieldInfo {
            name: $name, match_name: $name, what: concat!("oxm ", $name), class: $class,
            experimenter: None, field: $i, kind: Kind::$kind, maskable: true, bits: $bits,
            text: TextKind::Hex, rank: $rank + $i,
        },)*]
    };
}

const REG_TABLE: [FieldInfo; 16] = reg_fields!(NX, U32, 32, 40;
    0 "reg0" 1 "reg1" 2 "reg2" 3 "reg3" 4 "reg4" 5 "reg5" 6 "reg6" 7 "reg7"
    8 "reg8" 9 "reg9" 10 "reg10" 11 "reg11" 12 "reg12" 13 "reg13" 14 "reg14" 15 "reg15");
const XREG_TABLE: [FieldInfo; 8] = reg_fields!(OXM_CLASS_PACKET_REGS, U64, 64, 56;
    0 "xreg0" 1 "xreg1" 2 "xreg2" 3 "xreg3" 4 "xreg4" 5 "xreg5" 6 "xreg6" 7 "xreg7");

static REG_FIELDS: [FieldInfo; 16] = REG_TABLE;
static XREG_FIELDS: [FieldInfo; 8] = XREG_TABLE;

/// No field at this slot of [`FIELD_INDEX`].
const NO_FIELD: u8 = u8::MAX;

/// Position of each typed field in [`all_fields`] order, by class and field number, so that
/// decoding a TLV finds its metadata without searching the table. Built at compile time; the
/// first entry with a given identity wins, as in a search.
struct FieldIndex {
    basic: [u8; 128],
    nxm1: [u8; 128],
    packet_regs: [u8; 128],
    onf: [u8; 128],
    nicira: [u8; 128],
}

const FIELD_INDEX: FieldIndex = build_field_index();

const fn build_field_index() -> FieldIndex {
    let mut ix = FieldIndex {
        basic: [NO_FIELD; 128],
        nxm1: [NO_FIELD; 128],
        packet_regs: [NO_FIELD; 128],
        onf: [NO_FIELD; 128],
        nicira: [NO_FIELD; 128],
    };
    let mut i = 0;
    let n = FIELD_TABLE.len() + REG_TABLE.len() + XREG_TABLE.len();
    assert!(n < NO_FIELD as usize, "too many fields for a u8 index");
    while i < n {
        let f = if i < FIELD_TABLE.len() {
            &FIELD_TABLE[i]
        } else if i < FIELD_TABLE.len() + REG_TABLE.len() {
            &REG_TABLE[i - FIELD_TABLE.len()]
        } else {
            &XREG_TABLE[i - FIELD_TABLE.len() - REG_TABLE.len()]
        };
        assert!(f.field < 128, "OXM field numbers have 7 bits");
        let slot = match (f.class, f.experimenter) {
            (OXM_CLASS_OPENFLOW_BASIC, None) => &mut ix.basic,
            (OXM_CLASS_NXM_1, None) => &mut ix.nxm1,
            (OXM_CLASS_PACKET_REGS, None) => &mut ix.packet_regs,
            (OXM_CLASS_EXPERIMENTER, Some(ONF_EXPERIMENTER_ID)) => &mut ix.onf,
            (OXM_CLASS_EXPERIMENTER, Some(NICIRA_EXPERIMENTER_ID)) => &mut ix.nicira,
            _ => panic!("a field class without an index slot"),
        };
        if slot[f.field as usize] == NO_FIELD {
            slot[f.field as usize] = i as u8;
        }
        i += 1;
    }
    ix
}

/// Payload bytes of each typed field in [`all_fields`] order, without and with a mask (0: the
/// field takes no mask), for the one-step decoder.
const PAYLOAD_LEN: [[u8; 2]; FIELD_TABLE.len() + REG_TABLE.len() + XREG_TABLE.len()] =
    build_payload_len();

const fn build_payload_len() -> [[u8; 2]; FIELD_TABLE.len() + REG_TABLE.len() + XREG_TABLE.len()] {
    let mut out = [[0u8; 2]; FIELD_TABLE.len() + REG_TABLE.len() + XREG_TABLE.len()];
    let mut i = 0;
    while i < out.len() {
        let f = if i < FIELD_TABLE.len() {
            &FIELD_TABLE[i]
        } else if i < FIELD_TABLE.len() + REG_TABLE.len() {
            &REG_TABLE[i - FIELD_TABLE.len()]
        } else {
            &XREG_TABLE[i - FIELD_TABLE.len() - REG_TABLE.len()]
        };
        let w = match f.kind {
            Kind::U8 => 1,
            Kind::U16 => 2,
            Kind::U24 => 3,
            Kind::U32 | Kind::Ipv4 | Kind::Port => 4,
            Kind::U64 => 8,
            Kind::Mac => 6,
            Kind::Ipv6 => 16,
        };
        let e = if f.experimenter.is_some() { 4 } else { 0 };
        out[i] = [w + e, if f.maskable { 2 * w + e } else { 0 }];
        i += 1;
    }
    out
}

/// Position in [`all_fields`] order of the first field with this identity.
#[inline]
fn field_index(class: u16, experimenter: Option<u32>, field: u8) -> Option<usize> {
    let slot = match (class, experimenter) {
        (OXM_CLASS_OPENFLOW_BASIC, None) => &FIELD_INDEX.basic,
        (OXM_CLASS_NXM_1, None) => &FIELD_INDEX.nxm1,
        (OXM_CLASS_PACKET_REGS, None) => &FIELD_INDEX.packet_regs,
        (OXM_CLASS_EXPERIMENTER, Some(ONF_EXPERIMENTER_ID)) => &FIELD_INDEX.onf,
        (OXM_CLASS_EXPERIMENTER, Some(NICIRA_EXPERIMENTER_ID)) => &FIELD_INDEX.nicira,
        _ => return None,
    };
    match slot.get(usize::from(field)) {
        Some(&i) if i != NO_FIELD => Some(usize::from(i)),
        _ => None,
    }
}

/// The field at a position of [`all_fields`] order.
#[inline]
fn field_at(i: usize) -> Option<&'static FieldInfo> {
    if i < FIELDS.len() {
        FIELDS.get(i)
    } else if i < FIELDS.len() + REG_FIELDS.len() {
        REG_FIELDS.get(i - FIELDS.len())
    } else {
        XREG_FIELDS.get(i - FIELDS.len() - REG_FIELDS.len())
    }
}

impl Match {
    /// A match on the given fields, in this order.
    pub fn new(fields: impl IntoIterator<Item = OxmField>) -> Self {
        Match { fields: fields.into_iter().collect() }
    }

    /// Parses an `ofp_match`, including its padding.
    #[inline]
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut m = Match::default();
        m.parse_in_place(r)?;
        Ok(m)
    }

    /// [`Match::parse`] into `self`, which must be empty: a match is a few hundred bytes with
    /// its inline fields, and the structures that hold one parse it where it stays.
    #[inline]
    pub(crate) fn parse_in_place(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
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
        // No counting pass: a match longer than the inline room grows by doubling, bounded by
        // the 16-bit length.
        let fields = &mut self.fields;
        while !body.is_empty() {
            // Well-formed typed fields take the fast path; anything else (opaque fields, bad
            // lengths or masks, truncation) the full parser, which also names the error.
            match OxmField::parse_fast(body.rest()) {
                Some((f, n)) => {
                    body.advance(n);
                    fields.push(f);
                }
                None => fields.push(OxmField::parse(&mut body)?),
            }
        }
        let pad = super::wire::pad8(len);
        r.skip(pad, "match padding")
    }

    /// Emits an `ofp_match`, including its padding.
    pub fn emit(&self, buf: &mut BytesMut) {
        self.write(&mut Writer::new(buf, self.size_hint()));
    }

    /// Writes an `ofp_match`, including its padding.
    #[inline]
    pub fn write(&self, w: &mut Writer<'_>) {
        let g = w.guard(2);
        w.u32(u32::from(MATCH_TYPE_OXM) << 16);
        for f in &self.fields {
            f.write(w);
        }
        g.finish_padded(w);
    }

    /// About how many bytes [`Match::emit`] writes (to size the buffer; never trusted).
    #[inline]
    pub fn size_hint(&self) -> usize {
        self.fields.iter().fold(8, |n, f| n + f.size_hint())
    }

    /// The first field for which `f` returns something.
    pub fn find<T>(&self, f: impl FnMut(&OxmField) -> Option<T>) -> Option<T> {
        self.fields.iter().find_map(f)
    }
}

impl OxmField {
    /// Decodes a well-formed typed (non-experimenter) TLV at the start of `data` straight from
    /// the bytes: the field and its length. `None` for anything [`OxmField::parse`] must look
    /// at (it gives the same value for what this accepts).
    #[inline(always)]
    fn parse_fast(data: &[u8]) -> Option<(OxmField, usize)> {
        let &[c0, c1, fh, len] = data.first_chunk::<4>()?;
        // Experimenter fields (class 0xffff) have no index without their id: not here.
        let i = field_index(u16::from_be_bytes([c0, c1]), None, fh >> 1)?;
        let (has_mask, len) = (fh & 1 == 1, usize::from(len));
        // The payload length the field takes with this hasmask bit; 0 when it cannot be masked,
        // which no decoder below accepts (every value is at least one byte).
        if len != usize::from(PAYLOAD_LEN.get(i)?[usize::from(has_mask)]) {
            return None;
        }
        let payload = data.get(4..4 + len)?;
        let f = match i.checked_sub(FIELDS.len()) {
            None => OxmField::from_payload(i, payload, has_mask)?,
            Some(r) => {
                let info = field_at(i)?;
                let w = info.kind.width();
                let v = Value::from_slice(info.kind, payload)?;
                let m = if has_mask {
                    Some(Value::from_slice(info.kind, payload.get(w..)?)?)
                } else {
                    None
                };
                if r < REG_FIELDS.len() {
                    OxmField::Reg(info.field, u32::from_value(v)?, opt(m)?)
                } else {
                    OxmField::XReg(info.field, u64::from_value(v)?, opt(m)?)
                }
            }
        };
        Some((f, 4 + len))
    }

    /// Parses one OXM TLV: well-formed typed fields straight from the bytes, anything else
    /// through [`OxmField::parse`].
    #[inline]
    pub(crate) fn parse_quick(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match OxmField::parse_fast(r.rest()) {
            Some((f, n)) => {
                r.advance(n);
                Ok(f)
            }
            None => OxmField::parse(r),
        }
    }

    /// Parses one OXM TLV.
    #[inline]
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let h = OxmHeader::parse(r)?;
        let len = usize::from(h.length);
        let exp_len = if h.experimenter.is_some() { 4 } else { 0 };
        let mut v = r.sub(len - exp_len, "oxm payload")?;
        let found =
            field_index(h.class, h.experimenter, h.field).and_then(|i| Some((i, field_at(i)?)));
        let Some((i, info)) = found else {
            let payload = v.rest().to_vec();
            return Ok(match h.experimenter {
                Some(experimenter) => OxmField::Experimenter {
                    experimenter,
                    field: h.field,
                    has_mask: h.has_mask,
                    payload,
                },
                None => OxmField::Unknown {
                    class: h.class,
                    field: h.field,
                    has_mask: h.has_mask,
                    payload,
                },
            });
        };
        if h.has_mask && !info.maskable {
            return Err(DecodeError::BadValue {
                what: info.what,
                offset: start + 2,
                value: u64::from(h.field) << 1 | 1,
            });
        }
        if len != info.payload_len(h.has_mask) {
            return Err(DecodeError::BadLength { what: info.what, offset: start, len });
        }
        let bad =
            || DecodeError::BadValue { what: info.what, offset: start, value: u64::from(h.field) };
        if let Some(f) = OxmField::parse_typed(i, &mut v, h.has_mask, info.what, bad)? {
            return Ok(f);
        }
        if i - FIELDS.len() < REG_FIELDS.len() {
            let value = read_as(info.kind, &mut v, info.what, bad)?;
            let mask =
                if h.has_mask { Some(read_as(info.kind, &mut v, info.what, bad)?) } else { None };
            return Ok(OxmField::Reg(info.field, value, mask));
        }
        let value = read_as(info.kind, &mut v, info.what, bad)?;
        let mask =
            if h.has_mask { Some(read_as(info.kind, &mut v, info.what, bad)?) } else { None };
        Ok(OxmField::XReg(info.field, value, mask))
    }

    /// Emits one OXM TLV.
    #[inline]
    pub fn emit(&self, buf: &mut BytesMut) {
        self.write(&mut Writer::new(buf, self.size_hint()));
    }

    /// About how many bytes [`OxmField::emit`] writes (to size the buffer; never trusted).
    #[inline]
    pub fn size_hint(&self) -> usize {
        match self {
            OxmField::Unknown { payload, .. } => 4 + payload.len(),
            OxmField::Experimenter { payload, .. } => 8 + payload.len(),
            // The longest typed TLV: a masked IPv6 address.
            _ => 36,
        }
    }

    /// Writes one OXM TLV.
    #[inline(always)]
    pub fn write(&self, w: &mut Writer<'_>) {
        if !self.write_typed(w) {
            self.write_opaque(w);
        }
    }

    /// Writes the TLVs [`OxmField::write_typed`] leaves: opaque fields and registers beyond
    /// Open vSwitch's.
    #[inline(never)]
    fn write_opaque(&self, w: &mut Writer<'_>) {
        match self {
            OxmField::Unknown { class, field, has_mask, payload } => {
                let length = u8::try_from(payload.len()).unwrap_or(u8::MAX);
                OxmHeader {
                    class: *class,
                    field: *field,
                    has_mask: *has_mask,
                    length,
                    experimenter: None,
                }
                .write(w);
                w.slice(&payload[..usize::from(length)]);
            }
            OxmField::Experimenter { experimenter, field, has_mask, payload } => {
                let n = payload.len().min(usize::from(u8::MAX) - 4);
                OxmHeader {
                    class: OXM_CLASS_EXPERIMENTER,
                    field: *field,
                    has_mask: *has_mask,
                    length: (n + 4) as u8,
                    experimenter: Some(*experimenter),
                }
                .write(w);
                w.slice(&payload[..n]);
            }
            OxmField::Reg(i, v, m) if usize::from(*i) >= REG_FIELDS.len() => {
                // No such register in Open vSwitch: sent as asked, for the switch to refuse.
                put_raw(w, OXM_CLASS_NXM_1, *i, Kind::U32, Value::U32(*v), m.map(Value::U32));
            }
            OxmField::XReg(i, v, m) if usize::from(*i) >= XREG_FIELDS.len() => {
                // OpenFlow allows 128 packet registers; Open vSwitch implements 8.
                put_raw(w, OXM_CLASS_PACKET_REGS, *i, Kind::U64, Value::U64(*v), m.map(Value::U64));
            }
            _ => {
                let Some((info, v, m)) = self.typed() else { return };
                put_tlv(w, info, v, m);
            }
        }
    }

    /// The header this field is emitted with.
    #[inline]
    pub fn header(&self) -> OxmHeader {
        match self {
            OxmField::Unknown { class, field, has_mask, payload } => OxmHeader {
                class: *class,
                field: *field,
                has_mask: *has_mask,
                length: u8::try_from(payload.len()).unwrap_or(u8::MAX),
                experimenter: None,
            },
            OxmField::Experimenter { experimenter, field, has_mask, payload } => OxmHeader {
                class: OXM_CLASS_EXPERIMENTER,
                field: *field,
                has_mask: *has_mask,
                length: u8::try_from(payload.len() + 4).unwrap_or(u8::MAX),
                experimenter: Some(*experimenter),
            },
            OxmField::Reg(i, _, m) if usize::from(*i) >= REG_FIELDS.len() => OxmHeader {
                class: OXM_CLASS_NXM_1,
                field: i & 0x7f,
                has_mask: m.is_some(),
                length: if m.is_some() { 8 } else { 4 },
                experimenter: None,
            },
            OxmField::XReg(i, _, m) if usize::from(*i) >= XREG_FIELDS.len() => OxmHeader {
                class: OXM_CLASS_PACKET_REGS,
                field: i & 0x7f,
                has_mask: m.is_some(),
                length: if m.is_some() { 16 } else { 8 },
                experimenter: None,
            },
            _ => self.typed().map_or(OxmHeader::default(), |(i, _, m)| {
                let mut h = i.header();
                h.has_mask = m.is_some();
                h.length = i.payload_len(m.is_some()) as u8;
                h
            }),
        }
    }

    /// Emitted size of the TLV, header included.
    #[inline]
    pub fn wire_len(&self) -> usize {
        let h = self.header();
        4 + usize::from(h.length)
    }
}

fn put_raw(w: &mut Writer<'_>, class: u16, field: u8, kind: Kind, v: Value, m: Option<Value>) {
    let length = (kind.width() * if m.is_some() { 2 } else { 1 }) as u8;
    let has_mask = m.is_some();
    OxmHeader { class, field: field & 0x7f, has_mask, length, experimenter: None }.write(w);
    v.put(w);
    if let Some(m) = m {
        m.put(w);
    }
}

/// An OXM/NXM header without a value: how Nicira actions (`load`, `move`) name a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub struct OxmHeader {
    /// OXM class.
    pub class: u16,
    /// Field number within the class.
    pub field: u8,
    /// The hasmask bit.
    pub has_mask: bool,
    /// The length byte (payload bytes, experimenter id included).
    pub length: u8,
    /// Experimenter id, present exactly when `class` is 0xffff.
    pub experimenter: Option<u32>,
}

impl OxmHeader {
    /// Parses a 4-byte header, or 8 bytes for class 0xffff.
    #[inline]
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let class = r.u16("oxm class")?;
        let fh = r.u8("oxm field")?;
        let length = r.u8("oxm length")?;
        let experimenter = if class == OXM_CLASS_EXPERIMENTER {
            if length < 4 {
                return Err(DecodeError::BadLength {
                    what: "oxm experimenter",
                    offset: start,
                    len: length.into(),
                });
            }
            Some(r.u32("oxm experimenter")?)
        } else {
            None
        };
        Ok(OxmHeader { class, field: fh >> 1, has_mask: fh & 1 == 1, length, experimenter })
    }

    /// Emits the header (8 bytes for an experimenter header).
    #[inline]
    pub fn emit(&self, buf: &mut BytesMut) {
        self.write(&mut Writer::new(buf, 8));
    }

    /// Writes the header (8 bytes for an experimenter header).
    #[inline]
    pub fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.class);
        w.u8(self.field << 1 | u8::from(self.has_mask));
        w.u8(self.length);
        if let Some(e) = self.experimenter {
            w.u32(e);
        }
    }

    /// Bytes the header takes on the wire.
    pub fn wire_len(&self) -> usize {
        if self.experimenter.is_some() {
            8
        } else {
            4
        }
    }

    /// The typed field this header names, if any.
    pub fn info(&self) -> Option<&'static FieldInfo> {
        FieldInfo::by_id(self.class, self.experimenter, self.field)
    }

    /// Width of the field in bits: known widths for typed and NXM fields, else 8 × length.
    pub fn bits(&self) -> u16 {
        if let Some(n) = nxm_entry(self) {
            return n.3;
        }
        let vlen = usize::from(self.length).saturating_sub(self.experimenter.map_or(0, |_| 4));
        let vlen = if self.has_mask { vlen / 2 } else { vlen };
        self.info().map_or((vlen * 8) as u16, |i| i.bits)
    }

    /// The NXM/OXM name Open vSwitch prints in `load`/`move` (`NXM_NX_REG0`, `OXM_OF_METADATA`,
    /// `NXOXM_ET_ERSPAN_IDX`).
    pub fn nxm_name(&self) -> Option<&'static str> {
        nxm_entry(self).map(|n| n.2).or_else(|| experimenter_entry(self).map(|n| n.2))
    }

    /// The header for an NXM/OXM name as `nxm_name` gives it, or an OVS field name.
    pub fn by_name(name: &str) -> Option<OxmHeader> {
        if let Some(&(class, field, _, _, bytes)) = NXM_NAMES.iter().find(|n| n.2 == name) {
            return Some(OxmHeader {
                class,
                field,
                has_mask: false,
                length: bytes,
                experimenter: None,
            });
        }
        if let Some(&(_, _, _, field)) = EXPERIMENTER_NAMES.iter().find(|n| n.2 == name) {
            return FieldInfo::by_name(field).map(FieldInfo::header);
        }
        if name == "ONFOXM_ET_TCP_FLAGS" {
            return FieldInfo::by_name("tcp_flags").map(FieldInfo::header);
        }
        FieldInfo::by_name(name).map(FieldInfo::header)
    }
}

/// NXM/OXM names of headers as Open vSwitch prints them in `load:` and `move:` actions:
/// (class, field, name, significant bits, value bytes).
static NXM_NAMES: &[(u16, u8, &str, u16, u8)] = &[
    (OXM_CLASS_NXM_0, 0, "NXM_OF_IN_PORT", 16, 2),
    (OXM_CLASS_NXM_0, 1, "NXM_OF_ETH_DST", 48, 6),
    (OXM_CLASS_NXM_0, 2, "NXM_OF_ETH_SRC", 48, 6),
    (OXM_CLASS_NXM_0, 3, "NXM_OF_ETH_TYPE", 16, 2),
    (OXM_CLASS_NXM_0, 4, "NXM_OF_VLAN_TCI", 16, 2),
    (OXM_CLASS_NXM_0, 5, "NXM_OF_IP_TOS", 8, 1),
    (OXM_CLASS_NXM_0, 6, "NXM_OF_IP_PROTO", 8, 1),
    (OXM_CLASS_NXM_0, 7, "NXM_OF_IP_SRC", 32, 4),
    (OXM_CLASS_NXM_0, 8, "NXM_OF_IP_DST", 32, 4),
    (OXM_CLASS_NXM_0, 9, "NXM_OF_TCP_SRC", 16, 2),
    (OXM_CLASS_NXM_0, 10, "NXM_OF_TCP_DST", 16, 2),
    (OXM_CLASS_NXM_0, 11, "NXM_OF_UDP_SRC", 16, 2),
    (OXM_CLASS_NXM_0, 12, "NXM_OF_UDP_DST", 16, 2),
    (OXM_CLASS_NXM_0, 13, "NXM_OF_ICMP_TYPE", 8, 1),
    (OXM_CLASS_NXM_0, 14, "NXM_OF_ICMP_CODE", 8, 1),
    (OXM_CLASS_NXM_0, 15, "NXM_OF_ARP_OP", 16, 2),
    (OXM_CLASS_NXM_0, 16, "NXM_OF_ARP_SPA", 32, 4),
    (OXM_CLASS_NXM_0, 17, "NXM_OF_ARP_TPA", 32, 4),
    (OXM_CLASS_NXM_1, 0, "NXM_NX_REG0", 32, 4),
    (OXM_CLASS_NXM_1, 1, "NXM_NX_REG1", 32, 4),
    (OXM_CLASS_NXM_1, 2, "NXM_NX_REG2", 32, 4),
    (OXM_CLASS_NXM_1, 3, "NXM_NX_REG3", 32, 4),
    (OXM_CLASS_NXM_1, 4, "NXM_NX_REG4", 32, 4),
    (OXM_CLASS_NXM_1, 5, "NXM_NX_REG5", 32, 4),
    (OXM_CLASS_NXM_1, 6, "NXM_NX_REG6", 32, 4),
    (OXM_CLASS_NXM_1, 7, "NXM_NX_REG7", 32, 4),
    (OXM_CLASS_NXM_1, 8, "NXM_NX_REG8", 32, 4),
    (OXM_CLASS_NXM_1, 9, "NXM_NX_REG9", 32, 4),
    (OXM_CLASS_NXM_1, 10, "NXM_NX_REG10", 32, 4),
    (OXM_CLASS_NXM_1, 11, "NXM_NX_REG11", 32, 4),
    (OXM_CLASS_NXM_1, 12, "NXM_NX_REG12", 32, 4),
    (OXM_CLASS_NXM_1, 13, "NXM_NX_REG13", 32, 4),
    (OXM_CLASS_NXM_1, 14, "NXM_NX_REG14", 32, 4),
    (OXM_CLASS_NXM_1, 15, "NXM_NX_REG15", 32, 4),
    (OXM_CLASS_NXM_1, 16, "NXM_NX_TUN_ID", 64, 8),
    (OXM_CLASS_NXM_1, 17, "NXM_NX_ARP_SHA", 48, 6),
    (OXM_CLASS_NXM_1, 18, "NXM_NX_ARP_THA", 48, 6),
    (OXM_CLASS_NXM_1, 19, "NXM_NX_IPV6_SRC", 128, 16),
    (OXM_CLASS_NXM_1, 20, "NXM_NX_IPV6_DST", 128, 16),
    (OXM_CLASS_NXM_1, 21, "NXM_NX_ICMPV6_TYPE", 8, 1),
    (OXM_CLASS_NXM_1, 22, "NXM_NX_ICMPV6_CODE", 8, 1),
    (OXM_CLASS_NXM_1, 23, "NXM_NX_ND_TARGET", 128, 16),
    (OXM_CLASS_NXM_1, 24, "NXM_NX_ND_SLL", 48, 6),
    (OXM_CLASS_NXM_1, 25, "NXM_NX_ND_TLL", 48, 6),
    (OXM_CLASS_NXM_1, 26, "NXM_NX_IP_FRAG", 2, 1),
    (OXM_CLASS_NXM_1, 27, "NXM_NX_IPV6_LABEL", 20, 4),
    (OXM_CLASS_NXM_1, 28, "NXM_NX_IP_ECN", 2, 1),
    (OXM_CLASS_NXM_1, 29, "NXM_NX_IP_TTL", 8, 1),
    (OXM_CLASS_NXM_1, 30, "NXM_NX_MPLS_TTL", 8, 1),
    (OXM_CLASS_NXM_1, 31, "NXM_NX_TUN_IPV4_SRC", 32, 4),
    (OXM_CLASS_NXM_1, 32, "NXM_NX_TUN_IPV4_DST", 32, 4),
    (OXM_CLASS_NXM_1, 33, "NXM_NX_PKT_MARK", 32, 4),
    (OXM_CLASS_NXM_1, 34, "NXM_NX_TCP_FLAGS", 12, 2),
    (OXM_CLASS_NXM_1, 35, "NXM_NX_DP_HASH", 32, 4),
    (OXM_CLASS_NXM_1, 36, "NXM_NX_RECIRC_ID", 32, 4),
    (OXM_CLASS_NXM_1, 37, "NXM_NX_CONJ_ID", 32, 4),
    (OXM_CLASS_NXM_1, 104, "NXM_NX_TUN_FLAGS", 1, 2),
    (OXM_CLASS_NXM_1, 105, "NXM_NX_CT_STATE", 32, 4),
    (OXM_CLASS_NXM_1, 106, "NXM_NX_CT_ZONE", 16, 2),
    (OXM_CLASS_NXM_1, 107, "NXM_NX_CT_MARK", 32, 4),
    (OXM_CLASS_NXM_1, 108, "NXM_NX_CT_LABEL", 128, 16),
    (OXM_CLASS_PACKET_REGS, 0, "OXM_OF_PKT_REG0", 64, 8),
    (OXM_CLASS_PACKET_REGS, 1, "OXM_OF_PKT_REG1", 64, 8),
    (OXM_CLASS_PACKET_REGS, 2, "OXM_OF_PKT_REG2", 64, 8),
    (OXM_CLASS_PACKET_REGS, 3, "OXM_OF_PKT_REG3", 64, 8),
    (OXM_CLASS_PACKET_REGS, 4, "OXM_OF_PKT_REG4", 64, 8),
    (OXM_CLASS_PACKET_REGS, 5, "OXM_OF_PKT_REG5", 64, 8),
    (OXM_CLASS_PACKET_REGS, 6, "OXM_OF_PKT_REG6", 64, 8),
    (OXM_CLASS_PACKET_REGS, 7, "OXM_OF_PKT_REG7", 64, 8),
    (B, 0, "OXM_OF_IN_PORT", 32, 4),
    (B, 1, "OXM_OF_IN_PHY_PORT", 32, 4),
    (B, 2, "OXM_OF_METADATA", 64, 8),
    (B, 3, "OXM_OF_ETH_DST", 48, 6),
    (B, 4, "OXM_OF_ETH_SRC", 48, 6),
    (B, 5, "OXM_OF_ETH_TYPE", 16, 2),
    (B, 6, "OXM_OF_VLAN_VID", 12, 2),
    (B, 7, "OXM_OF_VLAN_PCP", 3, 1),
    (B, 8, "OXM_OF_IP_DSCP", 6, 1),
    (B, 9, "OXM_OF_IP_ECN", 2, 1),
    (B, 10, "OXM_OF_IP_PROTO", 8, 1),
    (B, 11, "OXM_OF_IPV4_SRC", 32, 4),
    (B, 12, "OXM_OF_IPV4_DST", 32, 4),
    (B, 13, "OXM_OF_TCP_SRC", 16, 2),
    (B, 14, "OXM_OF_TCP_DST", 16, 2),
    (B, 15, "OXM_OF_UDP_SRC", 16, 2),
    (B, 16, "OXM_OF_UDP_DST", 16, 2),
    (B, 17, "OXM_OF_SCTP_SRC", 16, 2),
    (B, 18, "OXM_OF_SCTP_DST", 16, 2),
    (B, 19, "OXM_OF_ICMPV4_TYPE", 8, 1),
    (B, 20, "OXM_OF_ICMPV4_CODE", 8, 1),
    (B, 21, "OXM_OF_ARP_OP", 16, 2),
    (B, 22, "OXM_OF_ARP_SPA", 32, 4),
    (B, 23, "OXM_OF_ARP_TPA", 32, 4),
    (B, 24, "OXM_OF_ARP_SHA", 48, 6),
    (B, 25, "OXM_OF_ARP_THA", 48, 6),
    (B, 26, "OXM_OF_IPV6_SRC", 128, 16),
    (B, 27, "OXM_OF_IPV6_DST", 128, 16),
    (B, 28, "OXM_OF_IPV6_FLABEL", 20, 4),
    (B, 29, "OXM_OF_ICMPV6_TYPE", 8, 1),
    (B, 30, "OXM_OF_ICMPV6_CODE", 8, 1),
    (B, 31, "OXM_OF_IPV6_ND_TARGET", 128, 16),
    (B, 32, "OXM_OF_IPV6_ND_SLL", 48, 6),
    (B, 33, "OXM_OF_IPV6_ND_TLL", 48, 6),
    (B, 34, "OXM_OF_MPLS_LABEL", 20, 4),
    (B, 35, "OXM_OF_MPLS_TC", 3, 1),
    (B, 36, "OXM_OF_MPLS_BOS", 1, 1),
    (B, 37, "OXM_OF_PBB_ISID", 24, 3),
    (B, 38, "OXM_OF_TUNNEL_ID", 64, 8),
    (B, 39, "OXM_OF_IPV6_EXTHDR", 9, 2),
];

/// Names Open vSwitch prints in `move` for the headers of experimenter fields that have no
/// NXM header: (experimenter, field, name, OVS field name). The header is the field's own
/// ([`FieldInfo::header`]).
static EXPERIMENTER_NAMES: &[(u32, u8, &str, &str)] = &[
    (NICIRA_EXPERIMENTER_ID, 11, "NXOXM_ET_ERSPAN_IDX", "tun_erspan_idx"),
    (NICIRA_EXPERIMENTER_ID, 12, "NXOXM_ET_ERSPAN_VER", "tun_erspan_ver"),
    (NICIRA_EXPERIMENTER_ID, 13, "NXOXM_ET_ERSPAN_DIR", "tun_erspan_dir"),
    (NICIRA_EXPERIMENTER_ID, 14, "NXOXM_ET_ERSPAN_HWID", "tun_erspan_hwid"),
];

fn experimenter_entry(h: &OxmHeader) -> Option<&'static (u32, u8, &'static str, &'static str)> {
    let e = h.experimenter?;
    let n = EXPERIMENTER_NAMES.iter().find(|n| n.0 == e && n.1 == h.field)?;
    // Only the field's own header, as `move` carries it: no mask, the field's length.
    FieldInfo::by_name(n.3).filter(|i| i.header() == *h).map(|_| n)
}

fn nxm_entry(h: &OxmHeader) -> Option<&'static (u16, u8, &'static str, u16, u8)> {
    if h.has_mask || h.experimenter.is_some() {
        return None;
    }
    NXM_NAMES.iter().find(|n| n.0 == h.class && n.1 == h.field && n.4 == h.length)
}

/// A bit range of a field, as Nicira actions address it (`NXM_NX_REG0[0..15]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Subfield {
    /// The field.
    pub field: OxmHeader,
    /// First bit (0 = least significant).
    pub ofs: u16,
    /// Number of bits (at least 1).
    pub n_bits: u16,
}

impl Subfield {
    /// The whole of `field`.
    pub fn whole(field: OxmHeader) -> Self {
        Subfield { field, ofs: 0, n_bits: field.bits() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn emit(f: &OxmField) -> Vec<u8> {
        let mut b = BytesMut::new();
        f.emit(&mut b);
        b.to_vec()
    }

    fn parse(b: &[u8]) -> Result<OxmField, DecodeError> {
        let mut r = Reader::new(b);
        let f = OxmField::parse(&mut r)?;
        assert!(r.is_empty(), "left over: {:?}", r.rest());
        Ok(f)
    }

    /// One static sample per typed field (and the opaque forms), as Open vSwitch encodes them.
    pub(crate) fn samples() -> Vec<(&'static str, OxmField)> {
        use OxmField::*;
        let mac = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]);
        let mmask = MacAddr([0xff, 0xff, 0xff, 0, 0, 0]);
        let v6 = "2001:db8::1".parse::<Ipv6Addr>().unwrap();
        let v6m = "ffff:ffff:ffff:ffff::".parse::<Ipv6Addr>().unwrap();
        vec![
            ("80000004 00000001", InPort(PortNo(1))),
            ("80000204 fffffffe", InPhyPort(PortNo::LOCAL)),
            ("80000408 0000000000000005", Metadata(5, None)),
            ("80000510 0000000000000005 00000000000000ff", Metadata(5, Some(0xff))),
            ("80000606 fa163e000001", EthDst(mac, None)),
            ("8000070c fa163e000001 ffffff000000", EthDst(mac, Some(mmask))),
            ("80000806 fa163e000001", EthSrc(mac, None)),
            ("8000090c fa163e000001 ffffff000000", EthSrc(mac, Some(mmask))),
            ("80000a02 0800", EthType(0x0800)),
            ("80000c02 100a", VlanVid(0x100a, None)),
            ("80000d04 1000 1000", VlanVid(0x1000, Some(0x1000))),
            ("80000e01 03", VlanPcp(3)),
            ("80001001 2e", IpDscp(46)),
            ("80001201 02", IpEcn(2)),
            ("80001401 06", IpProto(6)),
            ("80001604 0a000001", Ipv4Src(Ipv4Addr::new(10, 0, 0, 1), None)),
            (
                "80001708 0a000000 ff000000",
                Ipv4Src(Ipv4Addr::new(10, 0, 0, 0), Some(Ipv4Addr::new(255, 0, 0, 0))),
            ),
            ("80001804 0a000001", Ipv4Dst(Ipv4Addr::new(10, 0, 0, 1), None)),
            ("80001a02 0050", TcpSrc(80, None)),
            ("80001b04 0100 ff00", TcpSrc(0x100, Some(0xff00))),
            ("80001c02 01bb", TcpDst(443, None)),
            ("80001e02 0035", UdpSrc(53, None)),
            ("80002002 0035", UdpDst(53, None)),
            ("80002202 0005", SctpSrc(5, None)),
            ("80002402 0007", SctpDst(7, None)),
            ("80002601 03", Icmpv4Type(3)),
            ("80002801 01", Icmpv4Code(1)),
            ("80002a02 0001", ArpOp(1)),
            ("80002c04 0a000001", ArpSpa(Ipv4Addr::new(10, 0, 0, 1), None)),
            ("80002e04 0a000002", ArpTpa(Ipv4Addr::new(10, 0, 0, 2), None)),
            ("80003006 fa163e000001", ArpSha(mac, None)),
            ("8000330c fa163e000001 ffffff000000", ArpTha(mac, Some(mmask))),
            ("80003410 20010db8000000000000000000000001", Ipv6Src(v6, None)),
            (
                "80003720 20010db8000000000000000000000001 ffffffffffffffff0000000000000000",
                Ipv6Dst(v6, Some(v6m)),
            ),
            ("80003804 00000005", Ipv6Flabel(5, None)),
            ("80003a01 87", Icmpv6Type(135)),
            ("80003c01 00", Icmpv6Code(0)),
            ("80003e10 20010db8000000000000000000000001", Ipv6NdTarget(v6, None)),
            ("80004006 fa163e000001", Ipv6NdSll(mac, None)),
            ("80004206 fa163e000001", Ipv6NdTll(mac, None)),
            ("80004404 00000005", MplsLabel(5)),
            ("80004601 03", MplsTc(3)),
            ("80004801 01", MplsBos(1)),
            ("80004a03 000005", PbbIsid(5, None)),
            ("80004b06 000005 ffffff", PbbIsid(5, Some(0xff_ffff))),
            ("80004c08 0000000000000064", TunnelId(100, None)),
            ("80004d10 0000000000000064 00000000000000ff", TunnelId(100, Some(0xff))),
            ("80004e02 0001", Ipv6Exthdr(1, None)),
            ("80004f04 0001 0001", Ipv6Exthdr(1, Some(1))),
            ("00013e04 01020304", TunIpv4Src(Ipv4Addr::new(1, 2, 3, 4), None)),
            ("00014004 c0000209", TunIpv4Dst(Ipv4Addr::new(192, 0, 2, 9), None)),
            ("0001d104 0001 0001", TunFlags(1, Some(1))),
            ("00014204 00000007", PktMark(7, None)),
            ("00010108 00000001 000000ff", Reg(0, 1, Some(0xff))),
            ("00011e04 00000005", Reg(15, 5, None)),
            ("80010008 0000000000000005", XReg(0, 5, None)),
            ("80010f10 0000000000000005 00000000000000ff", XReg(7, 5, Some(0xff))),
            ("0001d308 00000021 00000021", CtState(0x21, Some(0x21))),
            ("0001d402 0005", CtZone(5)),
            ("0001d708 00000001 00000003", CtMark(1, Some(3))),
            ("00013a01 40", NwTtl(64)),
            // The ERSPAN fields as ovs-ofctl 3.1 sent them (`tun_erspan_ver=1` is (1, Some(1))).
            ("ffff1608 00002320 00012345", TunErspanIdx(0x12345, None)),
            ("ffff170c 00002320 00012345 000fffff", TunErspanIdx(0x12345, Some(0xfffff))),
            ("ffff1805 00002320 02", TunErspanVer(2, None)),
            ("ffff1906 00002320 01 01", TunErspanVer(1, Some(1))),
            ("ffff1a05 00002320 01", TunErspanDir(1, None)),
            ("ffff1b06 00002320 01 01", TunErspanDir(1, Some(1))),
            ("ffff1c05 00002320 3f", TunErspanHwid(0x3f, None)),
            ("ffff1d06 00002320 05 05", TunErspanHwid(5, Some(5))),
            ("ffff5406 4f4e4600 0012", TcpFlags(0x12, None)),
            ("ffff5508 4f4e4600 0002 0012", TcpFlags(0x2, Some(0x12))),
            (
                "ffff0206 00002320 0005",
                Experimenter {
                    experimenter: 0x2320,
                    field: 1,
                    has_mask: false,
                    payload: vec![0, 5],
                },
            ),
            ("00013401 01", Unknown { class: 1, field: 26, has_mask: false, payload: vec![1] }),
        ]
    }

    #[test]
    fn every_sample_parses_and_emits() {
        for (h, f) in samples() {
            let b = hex(h);
            assert_eq!(parse(&b).as_ref(), Ok(&f), "parse {h}");
            assert_eq!(emit(&f), b, "emit {f:?}");
            assert_eq!(f.wire_len(), b.len(), "len {f:?}");
        }
    }

    #[test]
    fn samples_cover_every_basic_field() {
        let seen: Vec<u8> = samples()
            .iter()
            .filter_map(|(_, f)| f.info())
            .filter(|i| i.class == OXM_CLASS_OPENFLOW_BASIC)
            .map(|i| i.field)
            .collect();
        for f in 0..40u8 {
            assert!(seen.contains(&f), "no sample for OXM basic field {f}");
        }
    }

    #[test]
    fn every_truncation_errors() {
        for (h, _) in samples() {
            let b = hex(h);
            for n in 0..b.len() {
                assert!(parse(&b[..n]).is_err(), "{h} truncated to {n} parsed");
            }
        }
    }

    #[test]
    fn one_step_decoder_agrees_with_the_full_parser() {
        // Every sample with each header byte set to every value: what the one-step decoder
        // accepts, the full parser accepts with the same value and length.
        let mut accepted = 0;
        for (h, _) in samples() {
            let b = hex(h);
            for at in 0..4 {
                for v in 0..=255u8 {
                    let mut m = b.clone();
                    m[at] = v;
                    let Some((fast, n)) = OxmField::parse_fast(&m) else { continue };
                    let mut r = Reader::new(&m);
                    assert_eq!(OxmField::parse(&mut r).as_ref(), Ok(&fast), "{m:02x?}");
                    assert_eq!(r.offset(), n, "{m:02x?}");
                    accepted += 1;
                }
            }
        }
        assert!(accepted > 100, "the one-step decoder took only {accepted} variants");
    }

    #[test]
    fn wrong_length_names_field_and_offset() {
        // OXM_OF_IN_PORT with a 2-byte payload, 8 bytes into a buffer.
        let b = hex("0000000000000000 80000002 0001");
        let mut r = Reader::new(&b);
        r.skip(8, "x").unwrap();
        let err = OxmField::parse(&mut r).unwrap_err();
        assert_eq!(err, DecodeError::BadLength { what: "oxm in_port", offset: 8, len: 2 });
        assert!(err.to_string().contains("in_port"));
    }

    #[test]
    fn registers_beyond_ovs_still_encode() {
        let f = OxmField::XReg(9, 5, None);
        assert_eq!(emit(&f), hex("80011208 0000000000000005"));
        assert_eq!(f.wire_len(), 12);
        assert_eq!(f.header().field, 9);
    }

    #[test]
    fn mask_on_unmaskable_field_is_rejected() {
        let err = parse(&hex("80000b04 0800 ffff")).unwrap_err();
        assert!(matches!(err, DecodeError::BadValue { what: "oxm eth_type", .. }), "{err:?}");
    }

    #[test]
    fn experimenter_field_shorter_than_its_id_is_rejected() {
        let err = parse(&hex("ffff0202 0000")).unwrap_err();
        assert!(matches!(err, DecodeError::BadLength { what: "oxm experimenter", .. }), "{err:?}");
    }

    #[test]
    fn unknown_fields_round_trip_byte_identically() {
        for h in
            ["00051004 01020304", "8000a003 aabbcc", "80aa0100", "ffffff0a 12345678 aabbccddeeff"]
        {
            let b = hex(h);
            let f = parse(&b).unwrap();
            assert!(f.info().is_none(), "{h} decoded as {f:?}");
            assert_eq!(emit(&f), b);
        }
    }

    #[test]
    fn match_from_ovs_round_trips() {
        // What `ovs-ofctl add-flow` sent for
        // tun_id=0x64,tun_src=1.2.3.4,tun_flags=+oam,reg0=0x1/0xff,ct_state=+trk+new,...
        let b = hex("0001004a 80004c08 0000000000000064 0001d104 00010001 00013e04 01020304 \
             00010108 00000001 000000ff 0001d308 00000021 00000021 0001d402 0005 \
             0001d708 00000001 00000003 000000000000");
        let m = Match::parse(&mut Reader::new(&b)).unwrap();
        assert_eq!(m.fields.len(), 7);
        assert_eq!(m.fields[0], OxmField::TunnelId(100, None));
        let mut out = BytesMut::new();
        m.emit(&mut out);
        assert_eq!(&out[..], &b[..]);
    }

    #[test]
    fn indexed_lookup_agrees_with_a_search_of_the_table() {
        let search = |c: u16, e: Option<u32>, f: u8| {
            all_fields().find(|x| x.class == c && x.field == f && x.experimenter == e)
        };
        for class in [0, 1, 2, 0x8000, 0x8001, 0x8002, 0xffff] {
            for exp in [None, Some(ONF_EXPERIMENTER_ID), Some(0x2320)] {
                for field in 0..=255u8 {
                    let fast = FieldInfo::by_id(class, exp, field);
                    let slow = search(class, exp, field);
                    assert!(
                        fast.map(|f| f as *const FieldInfo) == slow.map(|f| f as *const FieldInfo),
                        "{class:#x} {exp:?} {field}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_field_builds_from_its_own_value() {
        for info in all_fields() {
            let v = Value::from_u128(info.kind, 1).unwrap();
            let f = OxmField::from_value(info, v, None).unwrap();
            assert!(std::ptr::eq(f.info().unwrap(), info), "{}", info.name);
            assert_eq!(f.value(), Some((v, None)));
            if info.maskable {
                let g = OxmField::from_value(info, v, Some(v)).unwrap();
                assert_eq!(g.value(), Some((v, Some(v))), "{}", info.name);
            } else {
                assert_eq!(OxmField::from_value(info, v, Some(v)), None, "{}", info.name);
            }
        }
    }

    #[test]
    fn names_resolve_both_ways() {
        for f in all_fields() {
            assert_eq!(FieldInfo::by_name(f.name), Some(f), "{}", f.name);
            assert_eq!(FieldInfo::by_id(f.class, f.experimenter, f.field), Some(f));
        }
        let h = OxmHeader::by_name("NXM_NX_REG0").unwrap();
        assert_eq!((h.class, h.field, h.length), (1, 0, 4));
        assert_eq!(h.nxm_name(), Some("NXM_NX_REG0"));
        assert_eq!(OxmHeader::by_name("reg3").unwrap().field, 3);
        assert_eq!(OxmHeader::by_name("NXM_NX_TUN_FLAGS").unwrap().bits(), 1);
    }

    #[test]
    fn erspan_fields_are_nicira_experimenter_fields() {
        // (OVS name, move name, field number, value bytes, significant bits)
        let want = [
            ("tun_erspan_idx", "NXOXM_ET_ERSPAN_IDX", 11, 4, 20),
            ("tun_erspan_ver", "NXOXM_ET_ERSPAN_VER", 12, 1, 4),
            ("tun_erspan_dir", "NXOXM_ET_ERSPAN_DIR", 13, 1, 1),
            ("tun_erspan_hwid", "NXOXM_ET_ERSPAN_HWID", 14, 1, 6),
        ];
        for (name, nxm, field, width, bits) in want {
            let info = FieldInfo::by_name(name).unwrap();
            assert_eq!(
                (info.class, info.experimenter, info.field, info.kind.width(), info.bits),
                (OXM_CLASS_EXPERIMENTER, Some(NICIRA_EXPERIMENTER_ID), field, width, bits),
                "{name}"
            );
            assert!(info.maskable, "{name}");
            let h = OxmHeader::by_name(nxm).unwrap();
            assert_eq!(h, info.header(), "{nxm}");
            assert_eq!(h.length as usize, 4 + width, "{nxm}");
            assert_eq!(h.nxm_name(), Some(nxm));
            assert_eq!(h.bits(), bits, "{nxm}");
            // A masked header is no field's own header: no name for it.
            assert_eq!(OxmHeader { has_mask: true, ..h }.nxm_name(), None);
        }
        // The ONF experimenter id does not reach them.
        assert_eq!(FieldInfo::by_id(OXM_CLASS_EXPERIMENTER, ONF, 12), None);
    }

    #[test]
    fn erspan_ranks_sit_between_tun_dst_and_tun_flags() {
        // ovs-ofctl 3.1 prints tun_id, tun_src, tun_dst, tun_erspan_ver, tun_erspan_idx,
        // tun_erspan_dir, tun_erspan_hwid, tun_flags.
        let ranks: Vec<u16> = [
            "tun_id",
            "tun_src",
            "tun_dst",
            "tun_erspan_ver",
            "tun_erspan_idx",
            "tun_erspan_dir",
            "tun_erspan_hwid",
            "tun_flags",
        ]
        .iter()
        .map(|n| FieldInfo::by_name(n).unwrap().rank)
        .collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
        // No other field of `FIELDS` shares a rank with them.
        for f in FIELDS {
            let same = FIELDS.iter().filter(|g| g.rank == f.rank).count();
            assert_eq!(same, 1, "rank {} of {} is shared", f.rank, f.name);
        }
    }
}
