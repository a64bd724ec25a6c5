//! The ONF bundle extension for OpenFlow 1.3 (EXT-230), as Open vSwitch implements it: the
//! bundle messages of OpenFlow 1.4 (spec 1.4.1 §7.3.9) carried in OFPT_EXPERIMENTER messages
//! with experimenter `ONF_EXPERIMENTER_ID` and exp_type 2300 (control) or 2301 (add). The types
//! here are the bytes after `exp_type`.
//!
//! ```text
//! struct onf_bundle_ctrl_msg {   /* after ofp_experimenter_header, exp_type 2300 */
//!     uint32_t bundle_id; uint16_t type; uint16_t flags;
//!     struct ofp_bundle_prop_header properties[0];
//! };
//! struct onf_bundle_add_msg {    /* after ofp_experimenter_header, exp_type 2301 */
//!     uint32_t bundle_id; uint8_t pad[2]; uint16_t flags;
//!     struct ofp_header message;  /* the whole message to add; its xid must be the outer xid */
//!     /* if properties follow: zero padding of the message to a multiple of 8, then the properties */
//! };
//! struct ofp_bundle_prop_header { uint16_t type; uint16_t length; };
//! /* `length` counts the header and body, not the padding to a multiple of 8 that follows it */
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::error::wire_enum;
use super::wire::{pad8, LengthGuard, Reader};
use super::{
    DecodeError, OfpMessage, HEADER_LEN, ONF_ET_BUNDLE_ADD_MESSAGE, ONF_ET_BUNDLE_CONTROL,
    ONF_EXPERIMENTER_ID,
};

/// `OFPBF_ATOMIC`: execute the bundle atomically.
pub const BUNDLE_ATOMIC: u16 = 1 << 0;
/// `OFPBF_ORDERED`: execute the messages in order.
pub const BUNDLE_ORDERED: u16 = 1 << 1;

/// A bundle id, chosen by the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct BundleId(pub u32);

impl fmt::Display for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

wire_enum! {
    /// `ofp_bundle_ctrl_type`.
    BundleCtrlType: u16 {
        /// Open a bundle.
        OpenRequest = 0 => "OPEN_REQUEST",
        /// The bundle is open.
        OpenReply = 1 => "OPEN_REPLY",
        /// Close a bundle: no more messages may be added.
        CloseRequest = 2 => "CLOSE_REQUEST",
        /// The bundle is closed.
        CloseReply = 3 => "CLOSE_REPLY",
        /// Apply every message of the bundle.
        CommitRequest = 4 => "COMMIT_REQUEST",
        /// Every message of the bundle was applied.
        CommitReply = 5 => "COMMIT_REPLY",
        /// Drop the bundle without applying it.
        DiscardRequest = 6 => "DISCARD_REQUEST",
        /// The bundle was dropped.
        DiscardReply = 7 => "DISCARD_REPLY",
    }
}

/// A bundle property, kept as its type and body (only experimenter properties are defined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleProp {
    /// Property type (`0xffff`: experimenter, whose body starts with experimenter and exp_type).
    pub prop_type: u16,
    /// Bytes after the 4-byte header, without the padding.
    pub data: Vec<u8>,
}

impl BundleProp {
    /// Parses one property and the padding after it.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let prop_type = r.u16("bundle_prop type")?;
        let len = r.u16("bundle_prop length")? as usize;
        let b = r.sub_to_len(start, len, 4, "bundle_prop")?;
        r.skip(pad8(len), "bundle_prop padding")?;
        Ok(BundleProp { prop_type, data: b.rest().to_vec() })
    }

    /// Emits one property and its padding.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 2);
        buf.put_u16(self.prop_type);
        buf.put_u16(0);
        buf.put_slice(&self.data);
        g.finish_padded(buf);
    }

    fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(BundleProp::parse(r)?);
        }
        Ok(out)
    }
}

/// ONF_ET_BUNDLE_CONTROL: open, close, commit or discard a bundle, or the switch's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleControl {
    /// The bundle.
    pub bundle_id: BundleId,
    /// What to do, or what was done.
    pub ctrl_type: BundleCtrlType,
    /// `BUNDLE_ATOMIC` / `BUNDLE_ORDERED` bits.
    pub flags: u16,
    /// Properties.
    pub properties: Vec<BundleProp>,
}

impl BundleControl {
    /// Parses the bytes after the experimenter header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bundle_id = BundleId(r.u32("bundle_ctrl bundle_id")?);
        let ctrl_type = BundleCtrlType::from(r.u16("bundle_ctrl type")?);
        let flags = r.u16("bundle_ctrl flags")?;
        let properties = BundleProp::parse_list(r)?;
        Ok(BundleControl { bundle_id, ctrl_type, flags, properties })
    }

    /// Emits the bytes after the experimenter header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.bundle_id.0);
        buf.put_u16(self.ctrl_type.into());
        buf.put_u16(self.flags);
        self.properties.iter().for_each(|p| p.emit(buf));
    }
}

/// ONF_ET_BUNDLE_ADD_MESSAGE: add one message to an open bundle. The switch requires the inner
/// message's xid to equal the xid of the bundle add message itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleAdd {
    /// The bundle.
    pub bundle_id: BundleId,
    /// `BUNDLE_ATOMIC` / `BUNDLE_ORDERED` bits, as given when the bundle was opened.
    pub flags: u16,
    /// The message to add (never itself a bundle message).
    pub message: Box<OfpMessage>,
    /// Properties.
    pub properties: Vec<BundleProp>,
}

impl BundleAdd {
    /// Parses the bytes after the experimenter header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bundle_id = BundleId(r.u32("bundle_add bundle_id")?);
        r.skip(2, "bundle_add pad")?;
        let flags = r.u16("bundle_add flags")?;
        let start = r.offset();
        let header = r.rest();
        if header.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                what: "bundle_add message header",
                offset: start,
                need: HEADER_LEN,
                have: header.len(),
            });
        }
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if len < HEADER_LEN {
            return Err(DecodeError::BadLength { what: "bundle_add message", offset: start, len });
        }
        let inner = r.bytes(len, "bundle_add message")?;
        if let Some(exp_type) = bundle_exp_type(inner) {
            // A bundle inside a bundle means nothing, and refusing it bounds the recursion.
            return Err(DecodeError::BadValue {
                what: "bundle_add message exp_type",
                offset: start + 12,
                value: exp_type.into(),
            });
        }
        let message = Box::new(OfpMessage::parse(inner).map_err(|e| e.shifted(start))?);
        let properties = if r.is_empty() {
            Vec::new()
        } else {
            let pad_at = r.offset();
            r.skip(pad8(len), "bundle_add message padding")?;
            if r.is_empty() {
                // Padding is only there to align properties; without them it is stray bytes.
                return Err(DecodeError::Trailing {
                    what: "bundle_add message",
                    offset: pad_at,
                    extra: pad8(len),
                });
            }
            BundleProp::parse_list(r)?
        };
        Ok(BundleAdd { bundle_id, flags, message, properties })
    }

    /// Emits the bytes after the experimenter header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.bundle_id.0);
        buf.put_bytes(0, 2);
        buf.put_u16(self.flags);
        let before = buf.len();
        self.message.emit(buf);
        if !self.properties.is_empty() {
            buf.put_bytes(0, pad8(buf.len() - before));
            self.properties.iter().for_each(|p| p.emit(buf));
        }
    }
}

/// The ONF exp_type of `msg` if it is a bundle control or bundle add message.
fn bundle_exp_type(msg: &[u8]) -> Option<u32> {
    let word =
        |at: usize| msg.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let is_experimenter = msg.get(1) == Some(&u8::from(super::MsgType::Experimenter));
    match (is_experimenter, word(8), word(12)) {
        (true, Some(ONF_EXPERIMENTER_ID), Some(t))
            if t == ONF_ET_BUNDLE_CONTROL || t == ONF_ET_BUNDLE_ADD_MESSAGE =>
        {
            Some(t)
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Proptest strategies for bundle values.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::openflow::{group, meter, table, Message, Xid};

    /// Any bundle property.
    pub(crate) fn prop() -> impl Strategy<Value = BundleProp> {
        (any::<u16>(), vec(any::<u8>(), 0..12))
            .prop_map(|(prop_type, data)| BundleProp { prop_type, data })
    }

    /// Any bundle control message.
    pub(crate) fn control() -> impl Strategy<Value = BundleControl> {
        (any::<(u32, u16, u16)>(), vec(prop(), 0..3)).prop_map(|((id, t, flags), properties)| {
            BundleControl {
                bundle_id: BundleId(id),
                ctrl_type: BundleCtrlType::from(t),
                flags,
                properties,
            }
        })
    }

    /// A message to put in a bundle (the codec accepts any but a bundle message).
    pub(crate) fn inner_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            group::strategies::group_mod().prop_map(Message::GroupMod),
            meter::strategies::meter_mod().prop_map(Message::MeterMod),
            table::strategies::table_mod().prop_map(Message::TableMod),
            vec(any::<u8>(), 0..20).prop_map(Message::EchoRequest),
            Just(Message::BarrierRequest),
        ]
    }

    /// Any bundle add message whose inner xid is `xid`.
    pub(crate) fn add(xid: u32) -> impl Strategy<Value = BundleAdd> {
        (any::<(u32, u16)>(), inner_message(), vec(prop(), 0..3)).prop_map(
            move |((id, flags), msg, properties)| BundleAdd {
                bundle_id: BundleId(id),
                flags,
                message: Box::new(OfpMessage::new(Xid(xid), msg)),
                properties,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::openflow::error::test_util::{assert_truncations_fail, hex};
    use crate::openflow::{Message, Xid};

    /// OPEN_REQUEST of bundle 0x2a, atomic and ordered.
    const OPEN: &str = "0404 0018 00000010 4f4e4600 000008fc 0000002a 0000 0003";
    /// A barrier request added to bundle 0x2a (atomic).
    const ADD: &str = "0404 0020 00000011 4f4e4600 000008fd 0000002a 0000 0001 0414 0008 00000011";
    /// An 11-byte echo request added with one experimenter property: the inner message is
    /// padded to a multiple of 8 before the property, and the property after itself.
    const ADD_WITH_PROP: &str = "0404 0038 00000011 4f4e4600 000008fd 0000002a 0000 0001
        0402 000b 00000011 aabbcc 0000000000  ffff 000c 00002320 00000001 00000000";

    #[test]
    fn control_parses_and_emits() {
        let c = BundleControl {
            bundle_id: BundleId(0x2a),
            ctrl_type: BundleCtrlType::OpenRequest,
            flags: BUNDLE_ATOMIC | BUNDLE_ORDERED,
            properties: vec![],
        };
        let m = OfpMessage::parse(&hex(OPEN)).unwrap();
        assert_eq!(m.msg, Message::BundleControl(c.clone()));
        assert_eq!(OfpMessage::new(Xid(0x10), Message::BundleControl(c)).to_vec(), hex(OPEN));
    }

    #[test]
    fn add_parses_and_emits() {
        let a = BundleAdd {
            bundle_id: BundleId(0x2a),
            flags: BUNDLE_ATOMIC,
            message: Box::new(OfpMessage::new(Xid(0x11), Message::BarrierRequest)),
            properties: vec![],
        };
        let m = OfpMessage::parse(&hex(ADD)).unwrap();
        assert_eq!(m.msg, Message::BundleAdd(a.clone()));
        assert_eq!(OfpMessage::new(Xid(0x11), Message::BundleAdd(a)).to_vec(), hex(ADD));
    }

    #[test]
    fn add_with_property_pads_inner_message() {
        let m = OfpMessage::parse(&hex(ADD_WITH_PROP)).unwrap();
        let Message::BundleAdd(a) = &m.msg else { panic!("not a bundle add: {m:?}") };
        assert_eq!(a.message.msg, Message::EchoRequest(vec![0xaa, 0xbb, 0xcc]));
        assert_eq!(
            a.properties,
            vec![BundleProp { prop_type: 0xffff, data: hex("00002320 00000001") }]
        );
        assert_eq!(m.to_vec(), hex(ADD_WITH_PROP));
    }

    #[test]
    fn truncations_fail() {
        assert_truncations_fail(&hex(OPEN));
        assert_truncations_fail(&hex(ADD));
        assert_truncations_fail(&hex(ADD_WITH_PROP));
    }

    // Offsets in these errors count from the first byte after exp_type (offset 16 of the
    // message), because the experimenter dispatch hands the bundle parsers a fresh reader.

    #[test]
    fn inner_message_longer_than_the_rest_is_rejected() {
        let mut b = hex(ADD);
        b[27] = 9;
        let err = OfpMessage::parse(&b).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated { what: "bundle_add message", offset: 8, need: 9, have: 8 }
        );
    }

    #[test]
    fn inner_errors_count_from_the_bundle_body() {
        // The inner flow mod is cut after its header (8 bytes of a 56-byte minimum).
        let b = hex("0404 0020 00000011 4f4e4600 000008fd 0000002a 0000 0001 040e 0008 00000011");
        let err = OfpMessage::parse(&b).unwrap_err();
        assert!(err.offset() >= 16, "inner offset not shifted: {err}");
        let b = hex("0404 0020 00000011 4f4e4600 000008fd 0000002a 0000 0001 0102 0008 00000011");
        assert_eq!(OfpMessage::parse(&b).unwrap_err(), DecodeError::BadVersion { version: 1 });
    }

    #[test]
    fn nested_bundle_is_rejected() {
        let inner = OfpMessage::parse(&hex(ADD)).unwrap();
        let outer = OfpMessage::new(
            Xid(0x11),
            Message::BundleAdd(BundleAdd {
                bundle_id: BundleId(1),
                flags: 0,
                message: Box::new(inner),
                properties: vec![],
            }),
        );
        let err = OfpMessage::parse(&outer.to_vec()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::BadValue { what: "bundle_add message exp_type", offset: 20, value: 2301 }
        );
    }

    proptest! {
        #[test]
        fn control_round_trips(c in strategies::control(), xid in any::<u32>()) {
            let m = OfpMessage::new(Xid(xid), Message::BundleControl(c));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }

        #[test]
        fn add_round_trips((xid, a) in any::<u32>().prop_flat_map(|x| (Just(x), strategies::add(x)))) {
            let m = OfpMessage::new(Xid(xid), Message::BundleAdd(a));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }
    }
}
