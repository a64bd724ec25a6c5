//! The JSON record a collector writes per received copy (`--output`): tunnel, outer source, inner
//! addresses, for pings the ICMP echo and for ERSPAN copies the ERSPAN metadata; one object per
//! line.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::decap::{decap_gre, decap_vxlan, Decapsulated, Encap, ErspanMeta};

const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_ICMP: u8 = 1;

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
    /// VNI, GRE key or ERSPAN session ID; `None` for a GRE header without a key.
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
    /// The ERSPAN metadata of an ERSPAN copy (absent from the JSON of other copies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erspan: Option<ErspanMeta>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn ipv4(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

fn mac(m: [u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

impl Frame {
    /// Describes a decapsulated copy received at `t_ns`.
    pub fn describe(d: &Decapsulated<'_>, t_ns: u64) -> Frame {
        let eth = d.ethernet;
        let mut frame = Frame {
            t_ns,
            encap: d.tunnel.encap,
            key: d.tunnel.key,
            outer_src: d.outer_src,
            inner_src: mac(eth.src),
            inner_dst: mac(eth.dst),
            ethertype: eth.ethertype,
            ip_src: None,
            ip_dst: None,
            icmp: None,
            len: d.frame.len(),
            erspan: d.erspan,
        };
        if eth.ethertype == ETHERTYPE_IPV4 {
            if let Some(ip) = d.frame.get(eth.payload_offset..) {
                frame.ip_src = ipv4(ip, 12);
                frame.ip_dst = ipv4(ip, 16);
                frame.icmp = parse_icmp_echo(ip);
            }
        }
        frame
    }

    /// Decodes the payload of a UDP datagram sent to the VXLAN port (see
    /// [`decap_vxlan`]); `None` if it is not a well-formed copy.
    pub fn parse_vxlan(payload: &[u8], outer_src: Ipv4Addr, t_ns: u64) -> Option<Frame> {
        decap_vxlan(payload, outer_src).ok().map(|d| Frame::describe(&d, t_ns))
    }

    /// Decodes an IPv4 packet carrying GRE (plain GRE or ERSPAN), as a raw `IPPROTO_GRE` socket
    /// returns it (see [`decap_gre`]); `None` if it is not a well-formed copy.
    pub fn parse_gre(packet: &[u8], t_ns: u64) -> Option<Frame> {
        decap_gre(packet).ok().map(|d| Frame::describe(&d, t_ns))
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

#[cfg(test)]
mod tests {
    use super::super::decap::tests::{erspan_v1_echo, erspan_v2_arp, erspan_v2_echo, gre, vxlan};
    use super::super::decap::ErspanDirection;
    use super::*;

    #[test]
    fn decodes_vxlan_echo() {
        let f = Frame::parse_vxlan(&vxlan(100), Ipv4Addr::new(192, 0, 2, 1), 5).expect("decodes");
        assert_eq!(f.tunnel(), (Encap::Vxlan, Some(100)));
        assert_eq!(f.inner_src, "02:51:00:00:00:02");
        assert_eq!(f.inner_dst, "02:51:00:00:00:03");
        assert_eq!(f.ethertype, 0x0800);
        assert_eq!(f.ip_dst, Some(Ipv4Addr::new(198, 51, 100, 3)));
        assert_eq!(f.icmp, Some(IcmpEcho { kind: EchoKind::Request, id: 0x1234, seq: 7 }));
        assert_eq!(f.len, 42);
    }

    #[test]
    fn decodes_gre_echo_with_key() {
        let f = Frame::parse_gre(&gre(200), 5).expect("decodes");
        assert_eq!(f.tunnel(), (Encap::Gre, Some(200)));
        assert_eq!(f.outer_src, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(f.icmp.map(|e| e.seq), Some(7));
    }

    #[test]
    fn json_line_is_the_documented_shape() {
        let f = Frame::parse_vxlan(&vxlan(100), Ipv4Addr::new(192, 0, 2, 1), 5).expect("decodes");
        let v: serde_json::Value = serde_json::to_value(&f).expect("serializes");
        assert_eq!(v["encap"], "vxlan");
        assert_eq!(v["key"], 100);
        assert_eq!(v["outer_src"], "192.0.2.1");
        assert_eq!(v["icmp"]["kind"], "request");
        assert_eq!(v["len"], 42);
    }

    #[test]
    fn decodes_erspan_copies_with_their_metadata() {
        let f = Frame::parse_gre(&erspan_v1_echo(), 5).expect("decodes");
        assert_eq!(f.tunnel(), (Encap::ErspanV1, Some(7)));
        assert_eq!(f.erspan, Some(ErspanMeta::V1 { index: 5 }));
        assert_eq!(
            (f.inner_src.as_str(), f.inner_dst.as_str()),
            ("02:51:00:00:00:03", "02:51:00:00:00:04")
        );
        assert_eq!(f.ip_dst, Some(Ipv4Addr::new(198, 51, 100, 4)));
        assert_eq!(f.icmp, Some(IcmpEcho { kind: EchoKind::Request, id: 0x144e, seq: 1 }));
        assert_eq!(f.len, 98);

        let egress = ErspanMeta::V2 { direction: ErspanDirection::Egress, hw_id: 3 };
        let arp = Frame::parse_gre(&erspan_v2_arp(), 6).expect("decodes");
        assert_eq!((arp.tunnel(), arp.erspan), ((Encap::ErspanV2, Some(7)), Some(egress)));
        assert_eq!((arp.ethertype, arp.ip_src, arp.icmp, arp.len), (0x0806, None, None, 42));
        let echo = Frame::parse_gre(&erspan_v2_echo(), 7).expect("decodes");
        assert_eq!((echo.tunnel(), echo.erspan), ((Encap::ErspanV2, Some(7)), Some(egress)));
        assert_eq!(echo.icmp, Some(IcmpEcho { kind: EchoKind::Request, id: 0x1563, seq: 1 }));
        assert_eq!(Frame::parse_gre(&gre(200), 5).and_then(|f| f.erspan), None);
    }

    /// An ERSPAN copy's line names its encapsulation `erspan_v1` or `erspan_v2` and has an
    /// `erspan` object; other lines have none, and lines without one still parse.
    #[test]
    fn erspan_json_lines() {
        let v1 = Frame::parse_gre(&erspan_v1_echo(), 5).expect("decodes");
        let v: serde_json::Value = serde_json::to_value(&v1).expect("serializes");
        assert_eq!(v["encap"], "erspan_v1");
        assert_eq!(v["key"], 7);
        assert_eq!(v["erspan"], serde_json::json!({"index": 5}));
        let v2 = Frame::parse_gre(&erspan_v2_echo(), 5).expect("decodes");
        let v: serde_json::Value = serde_json::to_value(&v2).expect("serializes");
        assert_eq!(v["encap"], "erspan_v2");
        assert_eq!(v["erspan"], serde_json::json!({"direction": "egress", "hw_id": 3}));
        for f in [v1, v2] {
            let line = serde_json::to_string(&f).expect("serializes");
            assert_eq!(serde_json::from_str::<Frame>(&line).expect("parses"), f);
        }

        let plain = Frame::parse_gre(&gre(200), 5).expect("decodes");
        let line = serde_json::to_string(&plain).expect("serializes");
        assert!(!line.contains("erspan"), "{line}");
        assert_eq!(serde_json::from_str::<Frame>(&line).expect("parses"), plain);
    }

    #[test]
    fn a_cut_inside_the_inner_ip_header_leaves_the_ip_fields_empty() {
        let p = vxlan(100);
        for n in 22..=p.len() {
            let f = Frame::parse_vxlan(&p[..n], Ipv4Addr::LOCALHOST, 0).expect("ethernet is whole");
            assert_eq!(f.len, n - 8);
            assert_eq!(f.icmp.is_some(), n == p.len(), "{n}");
        }
    }
}
