//! The LLDP frames periscope sends as link probes (IEEE 802.1AB-2016, clause 8).
//!
//! ```text
//! +-------------------+-------------------+-----------+
//! | dst 01:80:c2:00:00:0e | src (6)       | 0x88cc    |   Ethernet II
//! +-------------------+-------------------+-----------+
//! TLV header: type (7 bits) | length (9 bits), then `length` bytes of value
//!   type 1   Chassis ID   subtype 7 (locally assigned)  "dpid:<16 hex digits>"
//!   type 2   Port ID      subtype 7 (locally assigned)  "<port number, decimal>"
//!   type 3   TTL          u16 seconds
//!   type 127 org-specific OUI 02:50:53, subtype 1       nonce (u64, big endian)
//!   type 0   End          length 0
//! ```
//!
//! The OUI has the locally administered bit set (it is no registered organisation's): the
//! org-specific TLV marks the frame as periscope's, and its nonce as this controller's, so LLDP
//! from anyone else (hosts, other controllers, an older periscope) is ignored.

use bytes::{BufMut, BytesMut};
use periscope_codec::openflow::{Dpid, MacAddr, PortNo};
use thiserror::Error;

/// The nearest-bridge group address LLDP is sent to.
pub const DST: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]);
/// The LLDP ethertype.
pub const ETHERTYPE: u16 = 0x88cc;
/// The OUI of periscope's org-specific TLV (locally administered).
pub const OUI: [u8; 3] = [0x02, 0x50, 0x53];
/// The subtype of the org-specific TLV carrying the nonce.
pub const OUI_SUBTYPE: u8 = 1;
/// The TTL periscope announces, in seconds.
pub const TTL_SECS: u16 = 2;

const TLV_END: u8 = 0;
const TLV_CHASSIS: u8 = 1;
const TLV_PORT: u8 = 2;
const TLV_TTL: u8 = 3;
const TLV_ORG: u8 = 127;
const SUBTYPE_LOCAL: u8 = 7;
const CHASSIS_PREFIX: &[u8] = b"dpid:";
const ETH_HEADER: usize = 14;

/// Why a frame is not one of this controller's probes. Offsets count from the frame's start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LldpError {
    /// The frame ends inside `field`.
    #[error("frame truncated in {field} at offset {offset}: {needed} more bytes needed")]
    Truncated {
        /// What was being read.
        field: &'static str,
        /// Where it starts.
        offset: usize,
        /// How many bytes are missing.
        needed: usize,
    },
    /// A field has a value a probe never has.
    #[error("{field} is {value} at offset {offset}; expected {expected}")]
    Unexpected {
        /// The field.
        field: &'static str,
        /// Its value, as read.
        value: String,
        /// Where it is.
        offset: usize,
        /// What a probe carries there.
        expected: &'static str,
    },
    /// LLDP, but not periscope's, or another controller's (no or another nonce).
    #[error("LLDP frame is not ours")]
    Foreign,
}

/// One probe: sent out of `port` of switch `dpid` by the controller that chose `nonce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The switch that sent it.
    pub dpid: Dpid,
    /// The port it left by.
    pub port: PortNo,
    /// The sending controller's nonce.
    pub nonce: u64,
}

impl Probe {
    /// The source MAC of a probe: locally administered, from the switch's dpid.
    fn src(&self) -> [u8; 6] {
        let d = self.dpid.0.to_be_bytes();
        [0x02, d[3], d[4], d[5], d[6], d[7]]
    }

    /// Appends the frame to `buf`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_slice(&DST.0);
        buf.put_slice(&self.src());
        buf.put_u16(ETHERTYPE);
        let chassis = format!("dpid:{:016x}", self.dpid.0);
        tlv(buf, TLV_CHASSIS, &[&[SUBTYPE_LOCAL], chassis.as_bytes()]);
        tlv(buf, TLV_PORT, &[&[SUBTYPE_LOCAL], self.port.0.to_string().as_bytes()]);
        tlv(buf, TLV_TTL, &[&TTL_SECS.to_be_bytes()]);
        tlv(buf, TLV_ORG, &[&OUI, &[OUI_SUBTYPE], &self.nonce.to_be_bytes()]);
        tlv(buf, TLV_END, &[]);
    }

    /// The frame as bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut b = BytesMut::with_capacity(self.len());
        self.emit(&mut b);
        b.to_vec()
    }

    /// Length of the emitted frame.
    pub fn len(&self) -> usize {
        let port_digits = self.port.0.to_string().len();
        ETH_HEADER + (2 + 1 + 21) + (2 + 1 + port_digits) + (2 + 2) + (2 + 3 + 1 + 8) + 2
    }

    /// Always false: a probe has mandatory TLVs.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Parses a frame (anything after the End TLV, such as Ethernet padding, is ignored).
    /// LLDP that is well formed but lacks periscope's org-specific TLV is [`LldpError::Foreign`].
    pub fn parse(frame: &[u8]) -> Result<Probe, LldpError> {
        let mut r = TlvReader { frame, pos: 0 };
        let dst = r.take("destination MAC", 6)?;
        if dst != DST.0 {
            return Err(r.unexpected("destination MAC", hex(dst), 0, "01:80:c2:00:00:0e"));
        }
        r.take("source MAC", 6)?;
        let et = r.take("ethertype", 2)?;
        let et = u16::from_be_bytes([et[0], et[1]]);
        if et != ETHERTYPE {
            return Err(r.unexpected("ethertype", format!("{et:#06x}"), 12, "0x88cc"));
        }
        // Mandatory TLVs first, in order (802.1AB 8.2).
        let (at, chassis) = r.tlv(TLV_CHASSIS, "chassis ID TLV")?;
        let dpid = parse_chassis(chassis).ok_or_else(|| {
            r.unexpected("chassis ID", hex(chassis), at, "subtype 7 \"dpid:<16 hex digits>\"")
        });
        let (at, port) = r.tlv(TLV_PORT, "port ID TLV")?;
        let port = parse_port(port).ok_or_else(|| {
            r.unexpected("port ID", hex(port), at, "subtype 7 with a decimal port number")
        });
        let (at, ttl) = r.tlv(TLV_TTL, "TTL TLV")?;
        if ttl.len() != 2 {
            return Err(r.unexpected("TTL length", ttl.len().to_string(), at, "2"));
        }
        let mut nonce = None;
        loop {
            let (at, kind, value) = r.any_tlv()?;
            match kind {
                TLV_END if value.is_empty() => break,
                TLV_END => {
                    return Err(r.unexpected("End TLV length", value.len().to_string(), at, "0"))
                }
                TLV_ORG if value.len() == 12 && value[..3] == OUI && value[3] == OUI_SUBTYPE => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&value[4..]);
                    nonce = Some(u64::from_be_bytes(n));
                }
                _ => {}
            }
        }
        let nonce = nonce.ok_or(LldpError::Foreign)?;
        // Only a frame marked as ours has to carry our chassis and port formats.
        Ok(Probe { dpid: dpid?, port: port?, nonce })
    }
}

fn tlv(buf: &mut BytesMut, kind: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    // Every TLV we build is far below the 511-byte limit of the 9-bit length.
    buf.put_u16(u16::from(kind) << 9 | (len as u16 & 0x1ff));
    for p in parts {
        buf.put_slice(p);
    }
}

fn parse_chassis(v: &[u8]) -> Option<Dpid> {
    let rest = v.strip_prefix(&[SUBTYPE_LOCAL])?.strip_prefix(CHASSIS_PREFIX)?;
    if rest.len() != 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(rest).ok()?, 16).ok().map(Dpid)
}

fn parse_port(v: &[u8]) -> Option<PortNo> {
    let digits = v.strip_prefix(&[SUBTYPE_LOCAL])?;
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok().map(PortNo)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

struct TlvReader<'a> {
    frame: &'a [u8],
    pos: usize,
}

impl<'a> TlvReader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], LldpError> {
        let rest = &self.frame[self.pos.min(self.frame.len())..];
        if rest.len() < n {
            return Err(LldpError::Truncated { field, offset: self.pos, needed: n - rest.len() });
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn unexpected(
        &self,
        field: &'static str,
        value: String,
        offset: usize,
        expected: &'static str,
    ) -> LldpError {
        LldpError::Unexpected { field, value, offset, expected }
    }

    /// One TLV: its offset, type and value.
    fn any_tlv(&mut self) -> Result<(usize, u8, &'a [u8]), LldpError> {
        let at = self.pos;
        let h = self.take("TLV header", 2)?;
        let h = u16::from_be_bytes([h[0], h[1]]);
        let value = self.take("TLV value", usize::from(h & 0x1ff))?;
        Ok((at, (h >> 9) as u8, value))
    }

    /// One TLV that must be of type `kind`.
    fn tlv(&mut self, kind: u8, field: &'static str) -> Result<(usize, &'a [u8]), LldpError> {
        let (at, k, v) = self.any_tlv()?;
        if k != kind {
            return Err(self.unexpected(field, format!("type {k}"), at, "the mandatory TLV order"));
        }
        Ok((at, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A probe from port 3 of dpid 0x2a, nonce 0x0102030405060708.
    const SAMPLE: &[u8] = &[
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x2a, // src
        0x88, 0xcc, // ethertype
        0x02, 0x16, 0x07, b'd', b'p', b'i', b'd', b':', b'0', b'0', b'0', b'0', b'0', b'0', b'0',
        b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'2', b'a', // chassis ID
        0x04, 0x02, 0x07, b'3', // port ID
        0x06, 0x02, 0x00, 0x02, // TTL
        0xfe, 0x0c, 0x02, 0x50, 0x53, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
        0x08, // org-specific: nonce
        0x00, 0x00, // End
    ];

    fn sample() -> Probe {
        Probe { dpid: Dpid(0x2a), port: PortNo(3), nonce: 0x0102_0304_0506_0708 }
    }

    #[test]
    fn sample_parses_and_emits() {
        assert_eq!(Probe::parse(SAMPLE), Ok(sample()));
        assert_eq!(sample().to_vec(), SAMPLE);
        assert_eq!(sample().len(), SAMPLE.len());
    }

    #[test]
    fn every_truncation_of_the_sample_is_refused() {
        for n in 0..SAMPLE.len() {
            let e = Probe::parse(&SAMPLE[..n]).expect_err("truncated frame parsed");
            assert!(matches!(e, LldpError::Truncated { .. }), "at {n}: {e}");
        }
    }

    #[test]
    fn padding_after_end_is_ignored() {
        let mut f = SAMPLE.to_vec();
        f.extend([0u8; 20]);
        assert_eq!(Probe::parse(&f), Ok(sample()));
    }

    #[test]
    fn lldp_without_our_tlv_is_foreign() {
        // Same frame with the org-specific TLV's OUI changed (another vendor's TLV).
        let mut f = SAMPLE.to_vec();
        f[48] = 0x00;
        assert_eq!(Probe::parse(&f), Err(LldpError::Foreign));
        // A host's LLDP: MAC chassis ID, interface-name port ID, no org TLV.
        let mut b = BytesMut::new();
        b.put_slice(&DST.0);
        b.put_slice(&[0x52, 0x54, 0, 1, 2, 3]);
        b.put_u16(ETHERTYPE);
        tlv(&mut b, TLV_CHASSIS, &[&[4], &[0x52, 0x54, 0, 1, 2, 3]]);
        tlv(&mut b, TLV_PORT, &[&[5], b"eth0"]);
        tlv(&mut b, TLV_TTL, &[&120u16.to_be_bytes()]);
        tlv(&mut b, TLV_END, &[]);
        assert_eq!(Probe::parse(&b), Err(LldpError::Foreign));
    }

    #[test]
    fn wrong_ethertype_or_destination_is_named() {
        let mut f = SAMPLE.to_vec();
        f[13] = 0xcd;
        let e = Probe::parse(&f).unwrap_err();
        assert!(e.to_string().contains("ethertype is 0x88cd at offset 12"), "{e}");
        let mut f = SAMPLE.to_vec();
        f[5] = 0x03;
        let e = Probe::parse(&f).unwrap_err();
        assert!(e.to_string().contains("destination MAC"), "{e}");
    }

    #[test]
    fn bad_chassis_of_a_marked_frame_is_refused() {
        let mut f = SAMPLE.to_vec();
        f[20] = b'x'; // "dpix:"
        let e = Probe::parse(&f).unwrap_err();
        assert!(matches!(e, LldpError::Unexpected { field: "chassis ID", offset: 14, .. }), "{e}");
    }

    proptest! {
        #[test]
        fn round_trip(dpid: u64, port: u32, nonce: u64) {
            let p = Probe { dpid: Dpid(dpid), port: PortNo(port), nonce };
            let f = p.to_vec();
            prop_assert_eq!(f.len(), p.len());
            prop_assert_eq!(Probe::parse(&f), Ok(p));
        }

        #[test]
        fn arbitrary_bytes_never_panic(f in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Probe::parse(&f);
        }
    }
}
