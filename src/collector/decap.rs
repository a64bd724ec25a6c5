//! Decapsulation of the copies a collector receives, down to the inner Ethernet frame and the
//! tunnel (encapsulation, key) it came under: the payload of a UDP datagram sent to the VXLAN
//! port, or an IPv4 packet carrying GRE as a raw `IPPROTO_GRE` socket returns it.
//!
//! Anything that is not a well-formed copy is a [`Malformed`] that names the field, the value
//! and the offset in the received bytes; nothing here panics or allocates.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Length of the VXLAN header.
pub const VXLAN_HEADER_LEN: usize = 8;
/// VXLAN flag: the VNI is valid (RFC 7348 section 5).
const VXLAN_FLAG_I: u8 = 0x08;
/// Length of an IPv4 header without options.
const IPV4_MIN_HEADER_LEN: usize = 20;
/// GRE flags (RFC 2784, RFC 2890): checksum, key and sequence number present.
const GRE_FLAG_C: u16 = 0x8000;
const GRE_FLAG_K: u16 = 0x2000;
const GRE_FLAG_S: u16 = 0x1000;
/// GRE bits 1, 4 and 5: "a receiver MUST discard a packet where any of bits 1-5 are non-zero"
/// (RFC 2784 section 2.3; RFC 2890 gives bits 2 and 3 to K and S).
const GRE_MUST_BE_ZERO: u16 = 0x4c00;
/// GRE version bits.
const GRE_VERSION: u16 = 0x0007;
/// GRE protocol type of an Ethernet payload (Transparent Ethernet Bridging).
pub const GRE_PROTO_TEB: u16 = 0x6558;
/// Length of an untagged Ethernet header.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Ethertype of an 802.1Q tag.
const ETHERTYPE_VLAN: u16 = 0x8100;

/// The encapsulation a copy arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Encap {
    /// VXLAN over UDP (4789 by default); the key is the VNI.
    Vxlan,
    /// GRE with an Ethernet payload; the key is the GRE key.
    Gre,
}

impl Encap {
    /// Lowercase name, as in file names, JSON and the summary.
    pub fn name(self) -> &'static str {
        match self {
            Encap::Vxlan => "vxlan",
            Encap::Gre => "gre",
        }
    }
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a copy came from: encapsulation and key (the tenant's mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tunnel {
    /// Encapsulation.
    pub encap: Encap,
    /// VNI or GRE key; `None` for a GRE header without a key.
    pub key: Option<u32>,
}

impl Tunnel {
    /// The name of this tunnel's pcap file: `vxlan-<key>.pcap`, `gre-<key>.pcap`,
    /// `gre-nokey.pcap`.
    pub fn pcap_file_name(&self) -> String {
        match self.key {
            Some(k) => format!("{}-{k}.pcap", self.encap),
            None => format!("{}-nokey.pcap", self.encap),
        }
    }
}

impl fmt::Display for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key {
            Some(k) => write!(f, "{}/{k}", self.encap),
            None => write!(f, "{}/nokey", self.encap),
        }
    }
}

/// The Ethernet header of an inner frame, after at most one 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// Source MAC address.
    pub src: [u8; 6],
    /// Ethertype, after one VLAN tag if there is one.
    pub ethertype: u16,
    /// Offset of the payload in the frame (14, or 18 behind a VLAN tag).
    pub payload_offset: usize,
}

/// A decapsulated copy: its tunnel, its outer source and the inner Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated<'a> {
    /// Encapsulation and key.
    pub tunnel: Tunnel,
    /// Outer IPv4 source (the sending hypervisor's underlay address).
    pub outer_src: Ipv4Addr,
    /// The inner Ethernet frame, as the VM sent or received it.
    pub frame: &'a [u8],
    /// Its Ethernet header.
    pub ethernet: EthernetHeader,
}

/// Why received bytes are not a copy; offsets count from the start of what the socket returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The UDP payload is shorter than a VXLAN header.
    #[error("VXLAN header at offset 0: 8 bytes needed, the UDP payload has {len}")]
    VxlanTruncated {
        /// Bytes received.
        len: usize,
    },
    /// The VXLAN I flag is clear: there is no VNI.
    #[error(
        "VXLAN flags {flags:#04x} at offset 0: the I flag (0x08) is clear, so there is no VNI"
    )]
    VxlanNoVni {
        /// The flags byte.
        flags: u8,
    },
    /// Shorter than its IPv4 header, or than the IPv4 total length says.
    #[error("IPv4 {field} at offset 0: {needed} bytes needed, the packet has {len}")]
    Ipv4Truncated {
        /// `header` or `packet` (the total length).
        field: &'static str,
        /// Bytes the header or total length need.
        needed: usize,
        /// Bytes received.
        len: usize,
    },
    /// An IPv4 header field that cannot be.
    #[error("IPv4 {field} {value} at offset {offset}: expected {expected}")]
    Ipv4Header {
        /// `version`, `header length` or `total length`.
        field: &'static str,
        /// Its value.
        value: u16,
        /// Its offset.
        offset: usize,
        /// What would be accepted.
        expected: &'static str,
    },
    /// The GRE header, with the words its flags announce, does not fit.
    #[error(
        "GRE header at offset {offset}: {needed} bytes needed (with the words the flags \
         announce), {available} available"
    )]
    GreTruncated {
        /// Offset of the GRE header.
        offset: usize,
        /// Bytes the header needs.
        needed: usize,
        /// Bytes there are from `offset` on.
        available: usize,
    },
    /// GRE bits 1, 4 or 5 are set (RFC 2784: discard).
    #[error("GRE flags {flags:#06x} at offset {offset}: reserved bits 1, 4 or 5 are set")]
    GreReserved {
        /// The first 16 bits of the GRE header.
        flags: u16,
        /// Their offset.
        offset: usize,
    },
    /// GRE version other than 0 (1 is PPTP's enhanced GRE).
    #[error("GRE version {version} at offset {offset}: expected 0")]
    GreVersion {
        /// The version.
        version: u16,
        /// Offset of the GRE header.
        offset: usize,
    },
    /// GRE carrying something else than Ethernet.
    #[error(
        "GRE protocol type {protocol:#06x} at offset {offset}: expected 0x6558 \
         (Transparent Ethernet Bridging)"
    )]
    GreProtocol {
        /// The protocol type.
        protocol: u16,
        /// Its offset.
        offset: usize,
    },
    /// The inner frame is shorter than its Ethernet header.
    #[error(
        "inner Ethernet header at offset {offset}: {needed} bytes needed, {available} available"
    )]
    EthernetTruncated {
        /// Offset of the inner frame.
        offset: usize,
        /// 14, or 18 with a VLAN tag.
        needed: usize,
        /// Bytes there are from `offset` on.
        available: usize,
    },
}

impl Malformed {
    /// A short stable name for counting by reason (`vxlan-truncated`, `gre-protocol`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Malformed::VxlanTruncated { .. } => "vxlan-truncated",
            Malformed::VxlanNoVni { .. } => "vxlan-no-vni",
            Malformed::Ipv4Truncated { .. } => "ipv4-truncated",
            Malformed::Ipv4Header { .. } => "ipv4-header",
            Malformed::GreTruncated { .. } => "gre-truncated",
            Malformed::GreReserved { .. } => "gre-reserved-bits",
            Malformed::GreVersion { .. } => "gre-version",
            Malformed::GreProtocol { .. } => "gre-protocol",
            Malformed::EthernetTruncated { .. } => "ethernet-truncated",
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

fn mac(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at + 6)?.try_into().ok()
}

/// Decodes the payload of a UDP datagram sent to the VXLAN port.
///
/// RFC 7348 section 5:
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |R|R|R|R|I|R|R|R|            Reserved                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                VXLAN Network Identifier (VNI) |   Reserved    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  inner Ethernet frame ...
/// ```
/// Reserved bits are ignored on receipt, as the RFC says.
pub fn decap_vxlan(payload: &[u8], outer_src: Ipv4Addr) -> Result<Decapsulated<'_>, Malformed> {
    let (Some(&flags), Some(word)) = (payload.first(), be32(payload, 4)) else {
        return Err(Malformed::VxlanTruncated { len: payload.len() });
    };
    if flags & VXLAN_FLAG_I == 0 {
        return Err(Malformed::VxlanNoVni { flags });
    }
    let tunnel = Tunnel { encap: Encap::Vxlan, key: Some(word >> 8) };
    inner(payload, VXLAN_HEADER_LEN, tunnel, outer_src)
}

/// Decodes an IPv4 packet carrying GRE, IPv4 header included (what a raw socket returns).
///
/// RFC 2784 section 2.1 with the key and sequence number of RFC 2890 section 2:
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |C| |K|S| Reserved0       | Ver |         Protocol Type         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      Checksum (optional)      |       Reserved1 (Optional)    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Key (optional)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Sequence Number (Optional)                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  inner Ethernet frame (protocol 0x6558) ...
/// ```
/// The IPv4 total length bounds the packet: fewer bytes than it says is a truncation.
pub fn decap_gre(packet: &[u8]) -> Result<Decapsulated<'_>, Malformed> {
    let len = packet.len();
    let Some(&first) = packet.first() else {
        return Err(Malformed::Ipv4Truncated { field: "header", needed: IPV4_MIN_HEADER_LEN, len });
    };
    let version = first >> 4;
    if version != 4 {
        return Err(Malformed::Ipv4Header {
            field: "version",
            value: version.into(),
            offset: 0,
            expected: "4",
        });
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < IPV4_MIN_HEADER_LEN {
        return Err(Malformed::Ipv4Header {
            field: "header length",
            value: (first & 0x0f).into(),
            offset: 0,
            expected: "at least 5 words",
        });
    }
    let (Some(total), Some(outer_src)) = (be16(packet, 2), be32(packet, 12)) else {
        return Err(Malformed::Ipv4Truncated { field: "header", needed: ihl, len });
    };
    if len < ihl {
        return Err(Malformed::Ipv4Truncated { field: "header", needed: ihl, len });
    }
    let total_len = usize::from(total);
    if total_len < ihl {
        return Err(Malformed::Ipv4Header {
            field: "total length",
            value: total,
            offset: 2,
            expected: "at least the header length",
        });
    }
    let Some(packet) = packet.get(..total_len) else {
        return Err(Malformed::Ipv4Truncated { field: "packet", needed: total_len, len });
    };
    let available = packet.len().saturating_sub(ihl);
    let truncated = |needed| Malformed::GreTruncated { offset: ihl, needed, available };
    let flags = be16(packet, ihl).ok_or_else(|| truncated(4))?;
    let mut needed = 4;
    for (flag, words) in [(GRE_FLAG_C, 4), (GRE_FLAG_K, 4), (GRE_FLAG_S, 4)] {
        if flags & flag != 0 {
            needed += words;
        }
    }
    if flags & GRE_MUST_BE_ZERO != 0 {
        return Err(Malformed::GreReserved { flags, offset: ihl });
    }
    if flags & GRE_VERSION != 0 {
        return Err(Malformed::GreVersion { version: flags & GRE_VERSION, offset: ihl });
    }
    let protocol = be16(packet, ihl + 2).ok_or_else(|| truncated(needed))?;
    if packet.len() < ihl + needed {
        return Err(truncated(needed));
    }
    if protocol != GRE_PROTO_TEB {
        return Err(Malformed::GreProtocol { protocol, offset: ihl + 2 });
    }
    let key_at = ihl + if flags & GRE_FLAG_C != 0 { 8 } else { 4 };
    let key = if flags & GRE_FLAG_K != 0 {
        Some(be32(packet, key_at).ok_or_else(|| truncated(needed))?)
    } else {
        None
    };
    let tunnel = Tunnel { encap: Encap::Gre, key };
    inner(packet, ihl + needed, tunnel, Ipv4Addr::from(outer_src))
}

/// The inner Ethernet frame at `offset` of `bytes`.
fn inner(
    bytes: &[u8],
    offset: usize,
    tunnel: Tunnel,
    outer_src: Ipv4Addr,
) -> Result<Decapsulated<'_>, Malformed> {
    let frame = bytes.get(offset..).unwrap_or_default();
    let short = |needed| Malformed::EthernetTruncated { offset, needed, available: frame.len() };
    let (Some(dst), Some(src), Some(mut ethertype)) =
        (mac(frame, 0), mac(frame, 6), be16(frame, 12))
    else {
        return Err(short(ETHERNET_HEADER_LEN));
    };
    let mut payload_offset = ETHERNET_HEADER_LEN;
    if ethertype == ETHERTYPE_VLAN {
        ethertype = be16(frame, 16).ok_or_else(|| short(ETHERNET_HEADER_LEN + 4))?;
        payload_offset += 4;
    }
    Ok(Decapsulated {
        tunnel,
        outer_src,
        frame,
        ethernet: EthernetHeader { dst, src, ethertype, payload_offset },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Ethernet 02:51:00:00:00:02 -> 02:51:00:00:00:03, IPv4 198.51.100.2 -> .3, ICMP echo
    /// request id 0x1234 seq 7 (42 bytes).
    pub(crate) fn inner_echo() -> Vec<u8> {
        let mut f = vec![0x02, 0x51, 0, 0, 0, 0x03, 0x02, 0x51, 0, 0, 0, 0x02, 0x08, 0x00];
        f.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 198, 51, 100, 2, 198, 51, 100, 3,
        ]);
        f.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 7]);
        f
    }

    /// A VXLAN UDP payload with VNI `vni` around `inner`.
    pub(crate) fn vxlan_with(vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0x08, 0, 0, 0];
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        p.extend_from_slice(inner);
        p
    }

    /// An IPv4 packet 192.0.2.1 -> 192.0.2.101 carrying GRE with key `key` around `inner`.
    pub(crate) fn gre_with(key: u32, inner: &[u8]) -> Vec<u8> {
        let total = (20 + 8 + inner.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 47, 0, 0, 192, 0, 2, 1, 192, 0, 2, 101];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0x20, 0x00, 0x65, 0x58]);
        p.extend_from_slice(&key.to_be_bytes());
        p.extend_from_slice(inner);
        p
    }

    pub(crate) fn vxlan(vni: u32) -> Vec<u8> {
        vxlan_with(vni, &inner_echo())
    }

    pub(crate) fn gre(key: u32) -> Vec<u8> {
        gre_with(key, &inner_echo())
    }

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn vxlan_gives_vni_and_inner_frame() {
        let p = vxlan(100);
        let d = decap_vxlan(&p, SRC).expect("decodes");
        assert_eq!(d.tunnel, Tunnel { encap: Encap::Vxlan, key: Some(100) });
        assert_eq!(d.frame, &inner_echo()[..]);
        assert_eq!(d.outer_src, SRC);
        assert_eq!(d.ethernet.src, [0x02, 0x51, 0, 0, 0, 0x02]);
        assert_eq!(d.ethernet.ethertype, 0x0800);
        assert_eq!(d.ethernet.payload_offset, 14);
    }

    #[test]
    fn vxlan_vni_uses_all_24_bits_and_ignores_reserved_bits() {
        let mut p = vxlan(0xff_ffff);
        p[1] = 0xff;
        p[7] = 0xff;
        let d = decap_vxlan(&p, SRC).expect("decodes");
        assert_eq!(d.tunnel.key, Some(0xff_ffff));
    }

    #[test]
    fn gre_gives_key_outer_source_and_inner_frame() {
        let p = gre(200);
        let d = decap_gre(&p).expect("decodes");
        assert_eq!(d.tunnel, Tunnel { encap: Encap::Gre, key: Some(200) });
        assert_eq!(d.outer_src, SRC);
        assert_eq!(d.frame, &inner_echo()[..]);
    }

    #[test]
    fn gre_with_checksum_and_sequence_words_and_ip_options() {
        let inner = inner_echo();
        let mut p = vec![0x46, 0, 0, 0, 0, 0, 0x40, 0, 64, 47, 0, 0, 192, 0, 2, 1, 192, 0, 2, 101];
        p.extend_from_slice(&[1, 1, 1, 1]); // IPv4 options: four NOPs
        p.extend_from_slice(&[0xb0, 0x00, 0x65, 0x58]); // C, K, S
        p.extend_from_slice(&[0xaa, 0xbb, 0, 0]); // checksum, reserved1
        p.extend_from_slice(&7u32.to_be_bytes()); // key
        p.extend_from_slice(&99u32.to_be_bytes()); // sequence number
        p.extend_from_slice(&inner);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let d = decap_gre(&p).expect("decodes");
        assert_eq!(d.tunnel.key, Some(7));
        assert_eq!(d.frame, &inner[..]);
    }

    #[test]
    fn gre_without_key_and_bytes_beyond_total_length() {
        let inner = inner_echo();
        let mut p = gre_with(0, &inner);
        p.drain(24..28);
        p[24 - 4] = 0x00; // no K flag
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0xee; 6]); // not part of the IPv4 packet
        let d = decap_gre(&p).expect("decodes");
        assert_eq!(d.tunnel, Tunnel { encap: Encap::Gre, key: None });
        assert_eq!(d.frame, &inner[..]);
        assert_eq!(d.tunnel.pcap_file_name(), "gre-nokey.pcap");
    }

    #[test]
    fn vlan_tagged_inner_frame() {
        let mut inner = inner_echo();
        inner.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
        let p = vxlan_with(5, &inner);
        let d = decap_vxlan(&p, SRC).expect("decodes");
        assert_eq!((d.ethernet.ethertype, d.ethernet.payload_offset), (0x0800, 18));
        let short = vxlan_with(5, &inner[..16]);
        assert_eq!(
            decap_vxlan(&short, SRC),
            Err(Malformed::EthernetTruncated { offset: 8, needed: 18, available: 16 })
        );
    }

    /// Every truncation of the VXLAN sample: within the VXLAN or Ethernet header it is
    /// malformed with that reason; past them, a UDP payload has no length of its own to betray
    /// a cut, so it is a shorter inner frame, decoded as exactly the bytes that arrived.
    #[test]
    fn every_truncation_of_a_vxlan_datagram() {
        let p = vxlan(100);
        for n in 0..p.len() {
            let got = decap_vxlan(&p[..n], SRC);
            match n {
                0..=7 => assert_eq!(got, Err(Malformed::VxlanTruncated { len: n }), "{n}"),
                8..=21 => assert_eq!(
                    got,
                    Err(Malformed::EthernetTruncated { offset: 8, needed: 14, available: n - 8 }),
                    "{n}"
                ),
                _ => assert_eq!(got.map(|d| d.frame), Ok(&p[8..n]), "{n}"),
            }
        }
    }

    /// Every truncation of the GRE sample is malformed: the IPv4 header, or its total length.
    #[test]
    fn every_truncation_of_a_gre_datagram() {
        let p = gre(200);
        for n in 0..p.len() {
            let got = decap_gre(&p[..n]).map(|d| d.frame.len());
            let want = if n < 20 {
                Malformed::Ipv4Truncated { field: "header", needed: 20, len: n }
            } else {
                Malformed::Ipv4Truncated { field: "packet", needed: p.len(), len: n }
            };
            assert_eq!(got, Err(want), "{n}");
        }
        // And with a total length that agrees with each cut, the GRE and Ethernet layers speak.
        for n in 20..p.len() {
            let mut q = p[..n].to_vec();
            q[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            let got = decap_gre(&q).map(|d| d.frame.len());
            match n {
                20..=21 => assert_eq!(
                    got,
                    Err(Malformed::GreTruncated { offset: 20, needed: 4, available: n - 20 }),
                    "{n}"
                ),
                22..=27 => assert_eq!(
                    got,
                    Err(Malformed::GreTruncated { offset: 20, needed: 8, available: n - 20 }),
                    "{n}"
                ),
                28..=41 => assert_eq!(
                    got,
                    Err(Malformed::EthernetTruncated { offset: 28, needed: 14, available: n - 28 }),
                    "{n}"
                ),
                _ => assert_eq!(got, Ok(n - 28), "{n}"),
            }
        }
    }

    #[test]
    fn malformed_headers_name_field_value_and_offset() {
        let mut p = vxlan(1);
        p[0] = 0;
        let e = decap_vxlan(&p, SRC).expect_err("no I flag");
        assert_eq!(e, Malformed::VxlanNoVni { flags: 0 });
        assert_eq!(e.reason(), "vxlan-no-vni");
        assert!(e.to_string().contains("0x00 at offset 0"), "{e}");

        let cases: [(usize, u8, Malformed); 5] = [
            (
                0,
                0x65,
                Malformed::Ipv4Header { field: "version", value: 6, offset: 0, expected: "4" },
            ),
            (
                0,
                0x44,
                Malformed::Ipv4Header {
                    field: "header length",
                    value: 4,
                    offset: 0,
                    expected: "at least 5 words",
                },
            ),
            (20, 0x60, Malformed::GreReserved { flags: 0x6000, offset: 20 }),
            (21, 0x01, Malformed::GreVersion { version: 1, offset: 20 }),
            (22, 0x08, Malformed::GreProtocol { protocol: 0x0858, offset: 22 }),
        ];
        for (at, byte, want) in cases {
            let mut g = gre(200);
            g[at] = byte;
            assert_eq!(decap_gre(&g), Err(want.clone()));
            assert!(!want.to_string().is_empty());
        }
        let mut g = gre(200);
        g[2..4].copy_from_slice(&19u16.to_be_bytes());
        let e = decap_gre(&g).expect_err("total length below the header");
        assert_eq!(e.reason(), "ipv4-header");
        assert_eq!(
            e.to_string(),
            "IPv4 total length 19 at offset 2: expected at least the header length"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let _ = decap_vxlan(&bytes, SRC);
            let _ = decap_gre(&bytes);
        }
    }
}
