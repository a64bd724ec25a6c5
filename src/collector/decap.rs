//! Decapsulation of the copies a collector receives, down to the inner Ethernet frame and the
//! tunnel (encapsulation, key) it came under: the payload of a UDP datagram sent to the VXLAN
//! port, or an IPv4 packet carrying GRE as a raw `IPPROTO_GRE` socket returns it. GRE carries
//! either an Ethernet frame (plain GRE) or an ERSPAN Type II or Type III header and then the
//! frame, told apart by the GRE protocol type; for ERSPAN the key is the session ID, and the
//! rest of what the ERSPAN header says about the copy is kept as [`ErspanMeta`].
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
/// GRE protocol type of ERSPAN Type II (ERSPAN version 1).
pub const GRE_PROTO_ERSPAN_II: u16 = 0x88be;
/// GRE protocol type of ERSPAN Type III (ERSPAN version 2).
pub const GRE_PROTO_ERSPAN_III: u16 = 0x22eb;
/// Length of the ERSPAN Type II header.
pub const ERSPAN_II_HEADER_LEN: usize = 8;
/// Length of the ERSPAN Type III header, without its optional platform-specific subheader.
pub const ERSPAN_III_HEADER_LEN: usize = 12;
/// Length of the Type III platform-specific subheader (present when the O flag is set).
const ERSPAN_III_SUBHEADER_LEN: usize = 8;
/// Length of an untagged Ethernet header.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Ethertype of an 802.1Q tag.
const ETHERTYPE_VLAN: u16 = 0x8100;

/// The encapsulation a copy arrived in: the one the tap service asked for.
pub use crate::northbound::model::Encap;

/// Where a copy came from: encapsulation and key (the tenant's mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tunnel {
    /// Encapsulation.
    pub encap: Encap,
    /// VNI, GRE key or ERSPAN session ID; `None` for a GRE header without a key.
    pub key: Option<u32>,
}

impl Tunnel {
    /// The name of this tunnel's pcap file: `vxlan-<key>.pcap`, `gre-<key>.pcap`,
    /// `gre-nokey.pcap`, `erspan_v1-<session>.pcap`, `erspan_v2-<session>.pcap`.
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

/// Which way the mirrored frame went through the port it was copied at (ERSPAN Type III's D
/// bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErspanDirection {
    /// D = 0: the frame entered the port.
    Ingress,
    /// D = 1: the frame left the port.
    Egress,
}

/// What the ERSPAN header says about a copy besides its session ID (which is the tunnel key).
///
/// In JSON: `{"index": 5}` for version 1, `{"direction": "egress", "hw_id": 3}` for version 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErspanMeta {
    /// ERSPAN version 1 (Type II).
    V1 {
        /// The 20-bit index: the port (or module and port) the copy was taken at.
        index: u32,
    },
    /// ERSPAN version 2 (Type III).
    V2 {
        /// Whether the frame was copied entering or leaving the port.
        direction: ErspanDirection,
        /// The 6-bit hardware ID of the ERSPAN engine that made the copy.
        hw_id: u8,
    },
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
    /// The ERSPAN metadata of an ERSPAN copy; `None` for VXLAN and plain GRE.
    pub erspan: Option<ErspanMeta>,
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
    /// GRE carrying something else than Ethernet or ERSPAN.
    #[error(
        "GRE protocol type {protocol:#06x} at offset {offset}: expected 0x6558 \
         (Transparent Ethernet Bridging), 0x88be (ERSPAN Type II) or 0x22eb (ERSPAN Type III)"
    )]
    GreProtocol {
        /// The protocol type.
        protocol: u16,
        /// Its offset.
        offset: usize,
    },
    /// GRE carrying ERSPAN with other flags than a sequence number alone (without one, 0x88be
    /// would be ERSPAN Type I, which has no ERSPAN header and is not decoded).
    #[error(
        "GRE flags {flags:#06x} at offset {offset}: ERSPAN expects 0x1000 (a sequence number, \
         no checksum, no key)"
    )]
    ErspanGreFlags {
        /// The first 16 bits of the GRE header.
        flags: u16,
        /// Their offset.
        offset: usize,
    },
    /// The ERSPAN header, with the subheader its O flag announces, does not fit.
    #[error(
        "ERSPAN header at offset {offset}: {needed} bytes needed (with the subheader the O flag \
         announces), {available} available"
    )]
    ErspanTruncated {
        /// Offset of the ERSPAN header.
        offset: usize,
        /// Bytes the header needs.
        needed: usize,
        /// Bytes there are from `offset` on.
        available: usize,
    },
    /// An ERSPAN version other than the one the GRE protocol type announces.
    #[error(
        "ERSPAN version {version} at offset {offset}: GRE protocol type {protocol:#06x} carries \
         version {expected}"
    )]
    ErspanVersion {
        /// The version (the first 4 bits of the ERSPAN header).
        version: u8,
        /// The GRE protocol type.
        protocol: u16,
        /// The version it announces.
        expected: u8,
        /// Offset of the ERSPAN header.
        offset: usize,
    },
    /// An ERSPAN Type III frame type other than Ethernet.
    #[error("ERSPAN frame type {frame_type} at offset {offset}: expected 0 (Ethernet)")]
    ErspanFrameType {
        /// The 5-bit FT field.
        frame_type: u8,
        /// Offset of the 32-bit word holding it.
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
            Malformed::ErspanGreFlags { .. } => "erspan-gre-flags",
            Malformed::ErspanTruncated { .. } => "erspan-truncated",
            Malformed::ErspanVersion { .. } => "erspan-version",
            Malformed::ErspanFrameType { .. } => "erspan-frame-type",
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

/// Decodes an IPv4 packet carrying GRE, IPv4 header included (what a raw socket returns): a
/// plain GRE copy (protocol type 0x6558), or an ERSPAN Type II (0x88be) or Type III (0x22eb)
/// copy, whose GRE header must have a sequence number and nothing else (flags 0x1000).
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
    let outer_src = Ipv4Addr::from(outer_src);
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
    match protocol {
        GRE_PROTO_TEB => {}
        GRE_PROTO_ERSPAN_II | GRE_PROTO_ERSPAN_III => {
            if flags & (GRE_FLAG_C | GRE_FLAG_K | GRE_FLAG_S) != GRE_FLAG_S {
                return Err(Malformed::ErspanGreFlags { flags, offset: ihl });
            }
            return decap_erspan(packet, ihl + needed, protocol, outer_src);
        }
        _ => return Err(Malformed::GreProtocol { protocol, offset: ihl + 2 }),
    }
    let key_at = ihl + if flags & GRE_FLAG_C != 0 { 8 } else { 4 };
    let key = if flags & GRE_FLAG_K != 0 {
        Some(be32(packet, key_at).ok_or_else(|| truncated(needed))?)
    } else {
        None
    };
    let tunnel = Tunnel { encap: Encap::Gre, key };
    inner(packet, ihl + needed, tunnel, outer_src)
}

/// Decodes the ERSPAN header at `offset` of `packet` (just after a GRE header of protocol type
/// `protocol`) and the mirrored Ethernet frame behind it. The key is the session ID.
///
/// ERSPAN Type II, version 1, GRE protocol type 0x88be (draft-foschiano-erspan):
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Ver  |          VLAN         | COS | En|T|    Session ID     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      Reserved         |                  Index                |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// ERSPAN Type III, version 2, GRE protocol type 0x22eb:
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Ver  |          VLAN         | COS |BSO|T|     Session ID    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Timestamp                            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |             SGT               |P|    FT   |   Hw ID   |D|Gra|O|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        Platform-specific subheader (8 bytes, when O is set)   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// Only frame type 0 (Ethernet) is accepted; the other fields are not checked.
fn decap_erspan(
    packet: &[u8],
    offset: usize,
    protocol: u16,
    outer_src: Ipv4Addr,
) -> Result<Decapsulated<'_>, Malformed> {
    let (expected, mut needed) = match protocol {
        GRE_PROTO_ERSPAN_II => (1, ERSPAN_II_HEADER_LEN),
        GRE_PROTO_ERSPAN_III => (2, ERSPAN_III_HEADER_LEN),
        _ => return Err(Malformed::GreProtocol { protocol, offset: offset.saturating_sub(2) }),
    };
    let available = packet.len().saturating_sub(offset);
    let truncated = |needed| Malformed::ErspanTruncated { offset, needed, available };
    if available < needed {
        return Err(truncated(needed));
    }
    let word1 = be32(packet, offset).ok_or_else(|| truncated(needed))?;
    let version = (word1 >> 28) as u8;
    if version != expected {
        return Err(Malformed::ErspanVersion { version, protocol, expected, offset });
    }
    let session = word1 & 0x3ff;
    let (encap, meta) = if expected == 1 {
        let word2 = be32(packet, offset + 4).ok_or_else(|| truncated(needed))?;
        (Encap::ErspanV1, ErspanMeta::V1 { index: word2 & 0xf_ffff })
    } else {
        let word3 = be32(packet, offset + 8).ok_or_else(|| truncated(needed))?;
        let frame_type = ((word3 >> 10) & 0x1f) as u8;
        if frame_type != 0 {
            return Err(Malformed::ErspanFrameType { frame_type, offset: offset + 8 });
        }
        if word3 & 0x1 != 0 {
            needed += ERSPAN_III_SUBHEADER_LEN;
            if available < needed {
                return Err(truncated(needed));
            }
        }
        let direction =
            if word3 & 0x8 != 0 { ErspanDirection::Egress } else { ErspanDirection::Ingress };
        (Encap::ErspanV2, ErspanMeta::V2 { direction, hw_id: ((word3 >> 4) & 0x3f) as u8 })
    };
    let tunnel = Tunnel { encap, key: Some(session) };
    let mut d = inner(packet, offset + needed, tunnel, outer_src)?;
    d.erspan = Some(meta);
    Ok(d)
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
        erspan: None,
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

    /// Bytes from hexadecimal digits, whitespace ignored.
    pub(crate) fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_digit(16).expect("a hex digit") as u8)
            .collect();
        digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
    }

    /// An ERSPAN Type II copy as Open vSwitch 3.1 sent it (session 7, index 5), from the IPv4
    /// header on: an echo request 198.51.100.3 -> .4.
    pub(crate) fn erspan_v1_echo() -> Vec<u8> {
        hex("4500 0086 0000 4000 402f b5e1 c000 0201 c000 0266 1000 88be 0000 0003 1000 0007
             0000 0005 0251 0000 0004 0251 0000 0003 0800 4500 0054 0fc6 4000 4001 d674 c633
             6403 c633 6404 0800 07b6 144e 0001 99d5 146b 0000 0000 6be7 0300 0000 0000 1011
             1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 2627 2829 2a2b 2c2d 2e2f 3031
             3233 3435 3637")
    }

    /// An ERSPAN Type III copy as Open vSwitch 3.1 sent it (session 7, hardware ID 3, egress):
    /// an ARP request for 198.51.100.4.
    pub(crate) fn erspan_v2_arp() -> Vec<u8> {
        hex("4500 0052 0000 4000 402f b615 c000 0201 c000 0266 1000 22eb 0000 0000 2000 0007
             ddda 164d 0000 0038 ffff ffff ffff 0251 0000 0003 0806 0001 0800 0604 0001 0251
             0000 0003 c633 6403 0000 0000 0000 c633 6404")
    }

    /// The next copy of the same Type III session: an echo request 198.51.100.3 -> .4.
    pub(crate) fn erspan_v2_echo() -> Vec<u8> {
        hex("4500 008a 0000 4000 402f b5dd c000 0201 c000 0266 1000 22eb 0000 0001 2000 0007
             ddda 1651 0000 0038 0251 0000 0004 0251 0000 0003 0800 4500 0054 438c 4000 4001
             a2ae c633 6403 c633 6404 0800 f18f 1563 0001 a8d5 146b 0000 0000 67f8 0d00 0000
             0000 1011 1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 2627 2829 2a2b 2c2d
             2e2f 3031 3233 3435 3637")
    }

    /// `p` with its IPv4 total length set to its length.
    fn fix_total(mut p: Vec<u8>) -> Vec<u8> {
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p
    }

    const MAC_3: [u8; 6] = [0x02, 0x51, 0, 0, 0, 0x03];
    const MAC_4: [u8; 6] = [0x02, 0x51, 0, 0, 0, 0x04];

    #[test]
    fn erspan_type_ii_from_open_vswitch() {
        let p = erspan_v1_echo();
        let d = decap_gre(&p).expect("decodes");
        assert_eq!(d.tunnel, Tunnel { encap: Encap::ErspanV1, key: Some(7) });
        assert_eq!(d.erspan, Some(ErspanMeta::V1 { index: 5 }));
        assert_eq!(d.outer_src, SRC);
        // IPv4 20 + GRE 8 + ERSPAN 8.
        assert_eq!(d.frame, &p[36..]);
        assert_eq!(d.frame.len(), 98);
        assert_eq!((d.ethernet.dst, d.ethernet.src), (MAC_4, MAC_3));
        assert_eq!((d.ethernet.ethertype, d.ethernet.payload_offset), (0x0800, 14));
        assert_eq!(d.tunnel.pcap_file_name(), "erspan_v1-7.pcap");
        assert_eq!(d.tunnel.to_string(), "erspan_v1/7");
    }

    #[test]
    fn erspan_type_iii_from_open_vswitch() {
        let meta = ErspanMeta::V2 { direction: ErspanDirection::Egress, hw_id: 3 };
        let p = erspan_v2_arp();
        let d = decap_gre(&p).expect("decodes");
        assert_eq!(d.tunnel, Tunnel { encap: Encap::ErspanV2, key: Some(7) });
        assert_eq!(d.erspan, Some(meta));
        // IPv4 20 + GRE 8 + ERSPAN 12.
        assert_eq!(d.frame, &p[40..]);
        assert_eq!(d.frame.len(), 42);
        assert_eq!((d.ethernet.dst, d.ethernet.src), ([0xff; 6], MAC_3));
        assert_eq!(d.ethernet.ethertype, 0x0806);
        assert_eq!(d.tunnel.pcap_file_name(), "erspan_v2-7.pcap");

        let p = erspan_v2_echo();
        let d = decap_gre(&p).expect("decodes");
        assert_eq!(
            (d.tunnel.encap, d.tunnel.key, d.erspan),
            (Encap::ErspanV2, Some(7), Some(meta))
        );
        assert_eq!((d.frame, d.ethernet.dst, d.ethernet.ethertype), (&p[40..], MAC_4, 0x0800));
    }

    /// The session ID is the low 10 bits of its word and the index the low 20 of its: VLAN,
    /// COS, En, T and the reserved bits around them are not part of either; the hardware ID is
    /// 6 bits, and D = 0 is ingress.
    #[test]
    fn erspan_fields_take_exactly_their_bits() {
        let mut p = erspan_v1_echo();
        p[28..36].copy_from_slice(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let d = decap_gre(&p).expect("decodes");
        assert_eq!(d.tunnel.key, Some(0x3ff));
        assert_eq!(d.erspan, Some(ErspanMeta::V1 { index: 0xf_ffff }));

        let mut p = erspan_v2_echo();
        p[28..32].copy_from_slice(&[0x2f, 0xff, 0xfc, 0x00]); // session 0, all else set
        p[36..40].copy_from_slice(&[0xff, 0xff, 0x83, 0xf6]); // SGT, P, hwid 0x3f, Gra; FT 0
        let d = decap_gre(&p).expect("decodes");
        assert_eq!(d.tunnel.key, Some(0));
        let meta = ErspanMeta::V2 { direction: ErspanDirection::Ingress, hw_id: 0x3f };
        assert_eq!(d.erspan, Some(meta));
        assert_eq!(d.frame, &p[40..]);
    }

    #[test]
    fn erspan_type_iii_platform_subheader_is_skipped() {
        let p = erspan_v2_echo();
        let mut q = p[..40].to_vec();
        q[39] |= 0x01; // O
        q.extend_from_slice(&[0xa5; 8]);
        q.extend_from_slice(&p[40..]);
        let q = fix_total(q);
        let d = decap_gre(&q).expect("decodes");
        assert_eq!(d.frame, &p[40..]);
        assert_eq!(d.tunnel.key, Some(7));
        // Announced but cut short.
        for n in 40..48 {
            let cut = fix_total(q[..n].to_vec());
            assert_eq!(
                decap_gre(&cut),
                Err(Malformed::ErspanTruncated { offset: 28, needed: 20, available: n - 28 }),
                "{n}"
            );
        }
    }

    /// Every truncation of the ERSPAN samples is malformed: by the IPv4 total length, or (when
    /// the total length agrees with the cut) by the GRE, ERSPAN or Ethernet header it falls in.
    #[test]
    fn every_truncation_of_an_erspan_copy() {
        for (p, erspan_len) in
            [(erspan_v1_echo(), 8), (erspan_v2_arp(), 12), (erspan_v2_echo(), 12)]
        {
            let frame_at = 28 + erspan_len;
            for n in 0..p.len() {
                let want = if n < 20 {
                    Malformed::Ipv4Truncated { field: "header", needed: 20, len: n }
                } else {
                    Malformed::Ipv4Truncated { field: "packet", needed: p.len(), len: n }
                };
                assert_eq!(decap_gre(&p[..n]).map(|d| d.frame.len()), Err(want), "{n}");
            }
            for n in 20..p.len() {
                let got = decap_gre(&fix_total(p[..n].to_vec())).map(|d| d.frame.len());
                let want = match n {
                    20..=21 => {
                        Err(Malformed::GreTruncated { offset: 20, needed: 4, available: n - 20 })
                    }
                    22..=27 => {
                        Err(Malformed::GreTruncated { offset: 20, needed: 8, available: n - 20 })
                    }
                    _ if n < frame_at => Err(Malformed::ErspanTruncated {
                        offset: 28,
                        needed: erspan_len,
                        available: n - 28,
                    }),
                    _ if n < frame_at + 14 => Err(Malformed::EthernetTruncated {
                        offset: frame_at,
                        needed: 14,
                        available: n - frame_at,
                    }),
                    _ => Ok(n - frame_at),
                };
                assert_eq!(got, want, "{n} of {}", p.len());
            }
        }
    }

    #[test]
    fn erspan_headers_that_cannot_be_name_field_value_and_offset() {
        let v1 = erspan_v1_echo();
        let v2 = erspan_v2_echo();
        let with = |p: &[u8], at: usize, bytes: &[u8]| {
            let mut q = p.to_vec();
            q[at..at + bytes.len()].copy_from_slice(bytes);
            decap_gre(&q).map(|d| d.tunnel)
        };
        let cases: [(Result<Tunnel, Malformed>, Malformed, &str); 9] = [
            // No sequence number: ERSPAN Type I, which has no ERSPAN header.
            (
                with(&v1, 20, &[0x00, 0x00]),
                Malformed::ErspanGreFlags { flags: 0x0000, offset: 20 },
                "GRE flags 0x0000 at offset 20: ERSPAN expects 0x1000",
            ),
            (
                with(&v1, 20, &[0x30, 0x00]),
                Malformed::ErspanGreFlags { flags: 0x3000, offset: 20 },
                "GRE flags 0x3000 at offset 20",
            ),
            (
                with(&v2, 20, &[0x90, 0x00]),
                Malformed::ErspanGreFlags { flags: 0x9000, offset: 20 },
                "GRE flags 0x9000 at offset 20",
            ),
            (
                with(&v1, 28, &[0x20]),
                Malformed::ErspanVersion { version: 2, protocol: 0x88be, expected: 1, offset: 28 },
                "ERSPAN version 2 at offset 28: GRE protocol type 0x88be carries version 1",
            ),
            (
                with(&v2, 28, &[0x10]),
                Malformed::ErspanVersion { version: 1, protocol: 0x22eb, expected: 2, offset: 28 },
                "ERSPAN version 1 at offset 28: GRE protocol type 0x22eb carries version 2",
            ),
            (
                with(&v2, 28, &[0x00]),
                Malformed::ErspanVersion { version: 0, protocol: 0x22eb, expected: 2, offset: 28 },
                "ERSPAN version 0 at offset 28",
            ),
            // A Type II copy labelled Type III: its version says 1.
            (
                with(&v1, 22, &[0x22, 0xeb]),
                Malformed::ErspanVersion { version: 1, protocol: 0x22eb, expected: 2, offset: 28 },
                "ERSPAN version 1 at offset 28",
            ),
            (
                with(&v2, 38, &[0x08]), // FT 2: an IP packet, not an Ethernet frame
                Malformed::ErspanFrameType { frame_type: 2, offset: 36 },
                "ERSPAN frame type 2 at offset 36: expected 0 (Ethernet)",
            ),
            (
                with(&v1, 22, &[0x88, 0xbf]),
                Malformed::GreProtocol { protocol: 0x88bf, offset: 22 },
                "GRE protocol type 0x88bf at offset 22",
            ),
        ];
        for (got, want, text) in cases {
            assert_eq!(got, Err(want.clone()));
            assert!(want.to_string().starts_with(text), "{want}");
        }
        assert_eq!(Malformed::ErspanGreFlags { flags: 0, offset: 20 }.reason(), "erspan-gre-flags");
        let short = Malformed::ErspanTruncated { offset: 28, needed: 12, available: 3 };
        assert_eq!(short.reason(), "erspan-truncated");
        assert_eq!(
            short.to_string(),
            "ERSPAN header at offset 28: 12 bytes needed (with the subheader the O flag \
             announces), 3 available"
        );
    }

    /// The GRE protocol type alone tells plain GRE from ERSPAN: an ERSPAN copy is never a GRE
    /// copy, a plain GRE copy labelled ERSPAN is not decoded, and a plain GRE copy with a
    /// sequence number (the flags ERSPAN uses) stays plain GRE.
    #[test]
    fn plain_gre_and_erspan_are_never_taken_for_each_other() {
        for p in [erspan_v1_echo(), erspan_v2_arp(), erspan_v2_echo()] {
            let d = decap_gre(&p).expect("decodes");
            assert!(matches!(d.tunnel.encap, Encap::ErspanV1 | Encap::ErspanV2));
            assert!(d.erspan.is_some());
        }
        let mut g = gre(200);
        let d = decap_gre(&g).expect("decodes");
        assert_eq!((d.tunnel.encap, d.erspan), (Encap::Gre, None));

        g[22..24].copy_from_slice(&GRE_PROTO_ERSPAN_II.to_be_bytes());
        assert_eq!(decap_gre(&g), Err(Malformed::ErspanGreFlags { flags: 0x2000, offset: 20 }));
        // With the sequence number flag instead of the key, the Ethernet header is read as an
        // ERSPAN header: its first nibble (0) is no version.
        g[20] = 0x10;
        assert_eq!(
            decap_gre(&g),
            Err(Malformed::ErspanVersion { version: 0, protocol: 0x88be, expected: 1, offset: 28 })
        );

        let mut s = erspan_v1_echo();
        s[22..24].copy_from_slice(&GRE_PROTO_TEB.to_be_bytes());
        let d = decap_gre(&s).expect("plain GRE with a sequence number");
        assert_eq!((d.tunnel, d.erspan), (Tunnel { encap: Encap::Gre, key: None }, None));
        assert_eq!(d.frame, &s[28..]);
    }

    #[test]
    fn encap_names_and_erspan_metadata_in_json() {
        for (e, name) in [
            (Encap::Vxlan, "vxlan"),
            (Encap::Gre, "gre"),
            (Encap::ErspanV1, "erspan_v1"),
            (Encap::ErspanV2, "erspan_v2"),
        ] {
            assert_eq!(e.name(), name);
            assert_eq!(e.to_string(), name);
            assert_eq!(Encap::from_name(name), Some(e));
            assert_eq!(serde_json::to_value(e).expect("serializes"), name);
            assert_eq!(serde_json::from_value::<Encap>(name.into()).expect("parses"), e);
        }
        assert_eq!(Encap::from_name("erspan"), None);
        let mut sorted = Encap::ALL;
        sorted.sort();
        assert_eq!(sorted, Encap::ALL);

        let v1 = ErspanMeta::V1 { index: 5 };
        let v2 = ErspanMeta::V2 { direction: ErspanDirection::Egress, hw_id: 3 };
        let ingress = ErspanMeta::V2 { direction: ErspanDirection::Ingress, hw_id: 0 };
        for (meta, json) in [
            (v1, r#"{"index":5}"#),
            (v2, r#"{"direction":"egress","hw_id":3}"#),
            (ingress, r#"{"direction":"ingress","hw_id":0}"#),
        ] {
            assert_eq!(serde_json::to_string(&meta).expect("serializes"), json);
            assert_eq!(serde_json::from_str::<ErspanMeta>(json).expect("parses"), meta);
        }
        assert!(serde_json::from_str::<ErspanMeta>(r#"{"direction":"up","hw_id":3}"#).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let _ = decap_vxlan(&bytes, SRC);
            let _ = decap_gre(&bytes);
        }

        /// Arbitrary bytes behind a well-formed IPv4 and GRE header announcing ERSPAN, with a
        /// total length that may or may not agree.
        #[test]
        fn arbitrary_erspan_never_panics(
            proto in proptest::sample::select(vec![GRE_PROTO_ERSPAN_II, GRE_PROTO_ERSPAN_III]),
            flags in proptest::sample::select(vec![0x1000u16, 0x0000, 0x3000, 0x1001]),
            total in proptest::option::of(0u16..200),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let mut p = erspan_v1_echo()[..24].to_vec();
            p[20..22].copy_from_slice(&flags.to_be_bytes());
            p[22..24].copy_from_slice(&proto.to_be_bytes());
            p.extend_from_slice(&[0; 4]);
            p.extend_from_slice(&tail);
            let mut p = fix_total(p);
            if let Some(t) = total {
                p[2..4].copy_from_slice(&t.to_be_bytes());
            }
            if let Ok(d) = decap_gre(&p) {
                proptest::prop_assert!(d.erspan.is_some());
                proptest::prop_assert!(d.tunnel.key.is_some_and(|k| k < 1024));
                proptest::prop_assert!(d.frame.len() >= ETHERNET_HEADER_LEN);
            }
        }
    }
}
