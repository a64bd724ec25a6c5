//! What a collector records per received copy, how it is decoded from VXLAN and GRE packets, and
//! the analysis tests run on a capture (counts per key, duplicates, foreign keys, gaps).

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// VXLAN header flag: the VNI is valid (RFC 7348 section 5).
const VXLAN_FLAG_I: u8 = 0x08;
/// GRE flags (RFC 2890): checksum present, key present, sequence number present.
const GRE_FLAG_C: u16 = 0x8000;
const GRE_FLAG_K: u16 = 0x2000;
const GRE_FLAG_S: u16 = 0x1000;
/// GRE protocol type of an Ethernet payload (Transparent Ethernet Bridging).
const GRE_PROTO_TEB: u16 = 0x6558;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const IPPROTO_ICMP: u8 = 1;

/// The encapsulation a copy arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Encap {
    /// VXLAN over UDP 4789; the key is the VNI.
    Vxlan,
    /// GRE with an Ethernet payload; the key is the GRE key.
    Gre,
}

/// Echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EchoKind {
    /// ICMP type 8.
    Request,
    /// ICMP type 0.
    Reply,
}

/// The ICMP echo inside an inner IPv4 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IcmpEcho {
    /// Request or reply.
    pub kind: EchoKind,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
}

/// One encapsulated frame received by a collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Receive time, nanoseconds since the Unix epoch.
    pub t_ns: u64,
    /// Encapsulation.
    pub encap: Encap,
    /// VNI or GRE key; `None` for a GRE header without a key.
    pub key: Option<u32>,
    /// Outer IPv4 source (the sending hypervisor's underlay address).
    pub outer_src: Ipv4Addr,
    /// Inner Ethernet source, `aa:bb:cc:dd:ee:ff`.
    pub inner_src: String,
    /// Inner Ethernet destination.
    pub inner_dst: String,
    /// Inner ethertype (after one VLAN tag, if any).
    pub ethertype: u16,
    /// Inner IPv4 source, when the inner frame is IPv4.
    pub ip_src: Option<Ipv4Addr>,
    /// Inner IPv4 destination, when the inner frame is IPv4.
    pub ip_dst: Option<Ipv4Addr>,
    /// The ICMP echo, when the inner frame is one.
    pub icmp: Option<IcmpEcho>,
    /// Length of the inner Ethernet frame in bytes.
    pub len: usize,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

fn ipv4(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    be32(b, at).map(Ipv4Addr::from)
}

fn mac(b: &[u8], at: usize) -> Option<String> {
    let m = b.get(at..at + 6)?;
    Some(format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]))
}

impl Frame {
    /// Decodes the payload of a UDP datagram sent to the VXLAN port: an 8-byte VXLAN header
    /// (flags, 24 reserved bits, VNI, 8 reserved bits) and an Ethernet frame.
    pub fn parse_vxlan(payload: &[u8], outer_src: Ipv4Addr, t_ns: u64) -> Option<Frame> {
        let flags = *payload.first()?;
        if flags & VXLAN_FLAG_I == 0 {
            return None;
        }
        let vni = be32(payload, 4)? >> 8;
        Frame::parse_ethernet(payload.get(8..)?, Encap::Vxlan, Some(vni), outer_src, t_ns)
    }

    /// Decodes an IPv4 packet carrying GRE, as a raw `IPPROTO_GRE` socket returns it (IPv4
    /// header included): flags and version, protocol type, then checksum, key and sequence
    /// number words as the flags announce.
    pub fn parse_gre(packet: &[u8], t_ns: u64) -> Option<Frame> {
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        if ihl < 20 {
            return None;
        }
        let outer_src = ipv4(packet, 12)?;
        let gre = packet.get(ihl..)?;
        let flags = be16(gre, 0)?;
        if be16(gre, 2)? != GRE_PROTO_TEB {
            return None;
        }
        let mut at = 4;
        if flags & GRE_FLAG_C != 0 {
            at += 4;
        }
        let mut key = None;
        if flags & GRE_FLAG_K != 0 {
            key = Some(be32(gre, at)?);
            at += 4;
        }
        if flags & GRE_FLAG_S != 0 {
            at += 4;
        }
        Frame::parse_ethernet(gre.get(at..)?, Encap::Gre, key, outer_src, t_ns)
    }

    fn parse_ethernet(
        eth: &[u8],
        encap: Encap,
        key: Option<u32>,
        outer_src: Ipv4Addr,
        t_ns: u64,
    ) -> Option<Frame> {
        let inner_dst = mac(eth, 0)?;
        let inner_src = mac(eth, 6)?;
        let mut ethertype = be16(eth, 12)?;
        let mut l3 = 14;
        if ethertype == ETHERTYPE_VLAN {
            ethertype = be16(eth, 16)?;
            l3 = 18;
        }
        let mut frame = Frame {
            t_ns,
            encap,
            key,
            outer_src,
            inner_src,
            inner_dst,
            ethertype,
            ip_src: None,
            ip_dst: None,
            icmp: None,
            len: eth.len(),
        };
        if ethertype == ETHERTYPE_IPV4 {
            if let Some(ip) = eth.get(l3..) {
                frame.ip_src = ipv4(ip, 12);
                frame.ip_dst = ipv4(ip, 16);
                frame.icmp = parse_icmp_echo(ip);
            }
        }
        Some(frame)
    }

    /// The (encapsulation, key) pair this frame was received under.
    pub fn tunnel(&self) -> (Encap, Option<u32>) {
        (self.encap, self.key)
    }
}

/// The echo in an IPv4 packet, if it is an unfragmented ICMP echo request or reply.
fn parse_icmp_echo(ip: &[u8]) -> Option<IcmpEcho> {
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let frag = be16(ip, 6)? & 0x1fff;
    if ihl < 20 || *ip.get(9)? != IPPROTO_ICMP || frag != 0 {
        return None;
    }
    let icmp = ip.get(ihl..)?;
    let kind = match icmp.first()? {
        8 => EchoKind::Request,
        0 => EchoKind::Reply,
        _ => return None,
    };
    Some(IcmpEcho { kind, id: be16(icmp, 4)?, seq: be16(icmp, 6)? })
}

/// The frames a collector recorded, in arrival order, with the analyses tests need.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// Every frame, in arrival order.
    pub frames: Vec<Frame>,
}

impl Capture {
    /// Parses a JSON-lines capture; an incomplete or unreadable line (e.g. the one being written)
    /// is skipped.
    pub fn from_json_lines(text: &str) -> Capture {
        Capture {
            frames: text.lines().filter_map(|l| serde_json::from_str::<Frame>(l).ok()).collect(),
        }
    }

    /// Number of frames per (encapsulation, key).
    pub fn count_by_key(&self) -> BTreeMap<(Encap, Option<u32>), usize> {
        let mut counts = BTreeMap::new();
        for f in &self.frames {
            *counts.entry(f.tunnel()).or_insert(0) += 1;
        }
        counts
    }

    /// The frames received under one (encapsulation, key).
    pub fn under(&self, encap: Encap, key: u32) -> impl Iterator<Item = &Frame> {
        self.frames.iter().filter(move |f| f.encap == encap && f.key == Some(key))
    }

    /// The sorted, deduplicated sequence numbers of echoes of `kind` from `ip_src` under one key.
    pub fn echo_seqs(&self, encap: Encap, key: u32, kind: EchoKind, ip_src: Ipv4Addr) -> Vec<u16> {
        let mut seqs: Vec<u16> = self
            .under(encap, key)
            .filter(|f| f.ip_src == Some(ip_src))
            .filter_map(|f| f.icmp.filter(|e| e.kind == kind).map(|e| e.seq))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs
    }

    /// Echo frames seen more than once under the same key (same inner addresses, kind, id and
    /// seq); each extra copy is listed once.
    pub fn duplicates(&self) -> Vec<&Frame> {
        let mut seen = HashSet::new();
        self.frames
            .iter()
            .filter(|f| {
                f.icmp.is_some()
                    && !seen.insert((
                        f.encap,
                        f.key,
                        f.inner_src.clone(),
                        f.inner_dst.clone(),
                        f.ip_src,
                        f.ip_dst,
                        f.icmp,
                    ))
            })
            .collect()
    }

    /// Every (encapsulation, key) seen that is not in `expected`.
    pub fn foreign_keys(&self, expected: &[(Encap, u32)]) -> Vec<(Encap, Option<u32>)> {
        self.count_by_key()
            .into_keys()
            .filter(|(e, k)| !expected.iter().any(|(xe, xk)| xe == e && Some(*xk) == *k))
            .collect()
    }

    /// The longest time between two consecutive frames that satisfy `filter`.
    pub fn longest_gap(&self, filter: impl Fn(&Frame) -> bool) -> Option<Duration> {
        let times: Vec<u64> = self.frames.iter().filter(|f| filter(f)).map(|f| f.t_ns).collect();
        times.windows(2).map(|w| Duration::from_nanos(w[1].saturating_sub(w[0]))).max()
    }

    /// The sequence numbers between the lowest and highest seen that are missing, for echoes of
    /// `kind` from `ip_src` under one key.
    pub fn missing_seqs(
        &self,
        encap: Encap,
        key: u32,
        kind: EchoKind,
        ip_src: Ipv4Addr,
    ) -> Vec<u16> {
        let seqs = self.echo_seqs(encap, key, kind, ip_src);
        let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
            return Vec::new();
        };
        (*first..=*last).filter(|s| seqs.binary_search(s).is_err()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet 02:51:00:00:00:02 -> 02:51:00:00:00:03, IPv4 198.51.100.2 -> .3, ICMP echo
    /// request id 0x1234 seq 7.
    fn inner_echo() -> Vec<u8> {
        let mut f = vec![0x02, 0x51, 0, 0, 0, 0x03, 0x02, 0x51, 0, 0, 0, 0x02, 0x08, 0x00];
        f.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 198, 51, 100, 2, 198, 51, 100, 3,
        ]);
        f.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 7]);
        f
    }

    fn vxlan(vni: u32) -> Vec<u8> {
        let mut p = vec![0x08, 0, 0, 0];
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        p.extend(inner_echo());
        p
    }

    fn gre(key: u32) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 47, 0, 0, 192, 0, 2, 1, 192, 0, 2, 101];
        p.extend_from_slice(&[0x20, 0x00, 0x65, 0x58]);
        p.extend_from_slice(&key.to_be_bytes());
        p.extend(inner_echo());
        p
    }

    #[test]
    fn decodes_vxlan_echo() {
        let f = Frame::parse_vxlan(&vxlan(100), Ipv4Addr::new(192, 0, 2, 1), 5).expect("decodes");
        assert_eq!(f.tunnel(), (Encap::Vxlan, Some(100)));
        assert_eq!(f.inner_src, "02:51:00:00:00:02");
        assert_eq!(f.inner_dst, "02:51:00:00:00:03");
        assert_eq!(f.ethertype, 0x0800);
        assert_eq!(f.ip_dst, Some(Ipv4Addr::new(198, 51, 100, 3)));
        assert_eq!(f.icmp, Some(IcmpEcho { kind: EchoKind::Request, id: 0x1234, seq: 7 }));
    }

    #[test]
    fn decodes_gre_echo_with_key() {
        let f = Frame::parse_gre(&gre(200), 5).expect("decodes");
        assert_eq!(f.tunnel(), (Encap::Gre, Some(200)));
        assert_eq!(f.outer_src, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(f.icmp.map(|e| e.seq), Some(7));
    }

    #[test]
    fn every_truncation_is_rejected_or_partial_without_panic() {
        let v = vxlan(1);
        for n in 0..v.len() {
            let _ = Frame::parse_vxlan(&v[..n], Ipv4Addr::LOCALHOST, 0);
        }
        let g = gre(1);
        for n in 0..g.len() {
            let _ = Frame::parse_gre(&g[..n], 0);
        }
        assert!(Frame::parse_vxlan(&v[..21], Ipv4Addr::LOCALHOST, 0).is_none());
        assert!(Frame::parse_gre(&g[..30], 0).is_none());
    }

    #[test]
    fn vxlan_without_i_flag_is_rejected() {
        let mut v = vxlan(1);
        v[0] = 0;
        assert!(Frame::parse_vxlan(&v, Ipv4Addr::LOCALHOST, 0).is_none());
    }

    #[test]
    fn capture_analysis() {
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let mut frames = Vec::new();
        for (t, seq) in [(0u64, 1u16), (10, 2), (20, 2), (100, 5)] {
            let mut v = vxlan(100);
            v[8 + 14 + 20 + 7] = seq as u8;
            frames.push(Frame::parse_vxlan(&v, src, t).expect("decodes"));
        }
        frames.push(Frame::parse_gre(&gre(999), 110).expect("decodes"));
        let c = Capture { frames };
        assert_eq!(c.count_by_key().get(&(Encap::Vxlan, Some(100))), Some(&4));
        assert_eq!(c.duplicates().len(), 1);
        assert_eq!(c.foreign_keys(&[(Encap::Vxlan, 100)]), vec![(Encap::Gre, Some(999))]);
        let ip = Ipv4Addr::new(198, 51, 100, 2);
        assert_eq!(c.missing_seqs(Encap::Vxlan, 100, EchoKind::Request, ip), vec![3, 4]);
        assert_eq!(c.longest_gap(|f| f.encap == Encap::Vxlan), Some(Duration::from_nanos(80)));
    }

    #[test]
    fn json_lines_round_trip_and_skip_partial_line() {
        let f = Frame::parse_gre(&gre(200), 5).expect("decodes");
        let line = serde_json::to_string(&f).expect("serializes");
        let text = format!("{line}\n{}", &line[..line.len() / 2]);
        let c = Capture::from_json_lines(&text);
        assert_eq!(c.frames, vec![f]);
    }
}
