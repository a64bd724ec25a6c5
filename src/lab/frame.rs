//! What a collector recorded (the JSON lines of [`crate::collector::record`], decoded by
//! [`crate::collector::decap`]), and the analysis tests run on a capture: counts per key,
//! duplicates, foreign keys, gaps.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

pub use crate::collector::{EchoKind, Encap, ErspanDirection, ErspanMeta, Frame, IcmpEcho};

/// The frames a collector recorded, in arrival order, with the analyses tests need.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// Every frame, in arrival order.
    pub frames: Vec<Frame>,
    /// The UDP and TCP packets among them, from the pcap files, sorted by arrival time.
    pub segments: Vec<Segment>,
}

impl Capture {
    /// Parses a JSON-lines capture; an incomplete or unreadable line (e.g. the one being written)
    /// is skipped.
    pub fn from_json_lines(text: &str) -> Capture {
        Capture {
            frames: text.lines().filter_map(|l| serde_json::from_str::<Frame>(l).ok()).collect(),
            segments: Vec::new(),
        }
    }

    /// Adds the UDP and TCP packets of every pcap file in `dir` (a missing directory has none).
    pub fn read_pcap_dir(&mut self, dir: &std::path::Path) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let bytes = std::fs::read(&path)?;
            if let Some(segs) = Segment::from_pcap(name, &bytes) {
                self.segments.extend(segs);
            }
        }
        self.segments.sort_by_key(|s| s.t_ns);
        // The pcap files hold inner frames only: the sender is that of the JSON line written
        // for the same frame (same tunnel, same receive time, which pcap keeps in microseconds).
        let senders: HashMap<(Encap, Option<u32>, u64), Ipv4Addr> =
            self.frames.iter().map(|f| ((f.encap, f.key, f.t_ns / 1_000), f.outer_src)).collect();
        for s in &mut self.segments {
            s.outer_src = senders.get(&(s.encap, s.key, s.t_ns / 1_000)).copied();
        }
        Ok(())
    }

    /// UDP and TCP packets received more than once under the same key (byte for byte); each
    /// extra copy is listed once.
    pub fn segment_duplicates(&self) -> Vec<&Segment> {
        self.segment_duplicate_pairs().into_iter().map(|(_, again)| again).collect()
    }

    /// [`Capture::segment_duplicates`], each with the first copy of the same packet.
    pub fn segment_duplicate_pairs(&self) -> Vec<(&Segment, &Segment)> {
        first_and_again(&self.segments, |s: &Segment| (s.encap, s.key, s.digest))
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
        self.duplicate_pairs().into_iter().map(|(_, again)| again).collect()
    }

    /// [`Capture::duplicates`], each with the first copy of the same echo: which hypervisor
    /// (outer source) made each copy, and when each arrived.
    pub fn duplicate_pairs(&self) -> Vec<(&Frame, &Frame)> {
        first_and_again(self.frames.iter().filter(|f| f.icmp.is_some()), |f: &Frame| {
            (f.encap, f.key, f.inner_src.clone(), f.inner_dst.clone(), f.ip_src, f.ip_dst, f.icmp)
        })
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

/// Every item of `items` whose identity an earlier item had, paired with that earlier (first)
/// item.
fn first_and_again<'a, T: 'a, K: std::hash::Hash + Eq>(
    items: impl IntoIterator<Item = &'a T>,
    identity: impl Fn(&T) -> K,
) -> Vec<(&'a T, &'a T)> {
    let mut first: HashMap<K, &T> = HashMap::new();
    let mut pairs = Vec::new();
    for item in items {
        match first.entry(identity(item)) {
            std::collections::hash_map::Entry::Occupied(e) => pairs.push((*e.get(), item)),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(item);
            }
        }
    }
    pairs
}

/// IP protocol numbers of the transports a [`Segment`] describes.
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// The first bytes of every datagram of a scenario UDP stream.
pub const STREAM_MAGIC: [u8; 4] = *b"PSCU";

/// The transport of a [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// The TCP header fields the analyses need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFields {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// The flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
}

impl TcpFields {
    /// Whether SYN is set.
    pub fn syn(&self) -> bool {
        self.flags & 0x02 != 0
    }

    /// Whether FIN is set.
    pub fn fin(&self) -> bool {
        self.flags & 0x01 != 0
    }
}

/// A UDP or TCP packet inside a copy, read from the collector's pcap files (the JSON lines do
/// not carry the transport header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Receive time, nanoseconds since the Unix epoch (microsecond precision: pcap).
    pub t_ns: u64,
    /// Encapsulation.
    pub encap: Encap,
    /// VNI, GRE key or ERSPAN session ID.
    pub key: Option<u32>,
    /// Inner IPv4 source.
    pub ip_src: Ipv4Addr,
    /// Inner IPv4 destination.
    pub ip_dst: Ipv4Addr,
    /// IPv4 identification (Linux numbers the packets of a connected socket in sequence).
    pub ip_id: u16,
    /// UDP or TCP.
    pub transport: Transport,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes, from the IP total length (so a truncated copy still says what it carried).
    pub payload_len: u32,
    /// TCP header fields, for TCP.
    pub tcp: Option<TcpFields>,
    /// `(stream id, sequence number)` of a scenario UDP stream datagram.
    pub stream: Option<(u32, u32)>,
    /// A digest of the inner frame as received: two copies of one frame are byte for byte equal.
    pub digest: u64,
    /// The outer IPv4 source (the hypervisor that made the copy), from the collector's JSON
    /// line of the same frame; `None` until [`Capture::read_pcap_dir`] found it.
    pub outer_src: Option<Ipv4Addr>,
}

impl Segment {
    /// Describes the inner Ethernet frame of a copy, if it holds an unfragmented IPv4 UDP or
    /// TCP packet with the transport fields read here (UDP ports; TCP up to its flags).
    pub fn parse(frame: &[u8], encap: Encap, key: Option<u32>, t_ns: u64) -> Option<Segment> {
        let be16 = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
        let be32 = |at: usize| {
            let b: [u8; 4] = frame.get(at..at + 4)?.try_into().ok()?;
            Some(u32::from_be_bytes(b))
        };
        let mut at = 12;
        let mut ethertype = be16(at)?;
        if ethertype == 0x8100 {
            at += 4;
            ethertype = be16(at)?;
        }
        if ethertype != 0x0800 {
            return None;
        }
        let ip = at + 2;
        let ihl = usize::from(frame.get(ip)? & 0x0f) * 4;
        let total = usize::from(be16(ip + 2)?);
        let frag = be16(ip + 6)? & 0x3fff;
        if ihl < 20 || frag != 0 || total < ihl {
            return None;
        }
        let proto = *frame.get(ip + 9)?;
        let addr = |o: usize| -> Option<Ipv4Addr> {
            let b: [u8; 4] = frame.get(ip + o..ip + o + 4)?.try_into().ok()?;
            Some(Ipv4Addr::from(b))
        };
        let l4 = ip + ihl;
        let (transport, header, tcp) = match proto {
            IPPROTO_UDP => (Transport::Udp, 8, None),
            IPPROTO_TCP => {
                let off = usize::from(frame.get(l4 + 12)? >> 4) * 4;
                let fields = TcpFields {
                    seq: be32(l4 + 4)?,
                    ack: be32(l4 + 8)?,
                    flags: *frame.get(l4 + 13)?,
                };
                (Transport::Tcp, off.max(20), Some(fields))
            }
            _ => return None,
        };
        let payload_len = total.checked_sub(ihl + header)? as u32;
        let payload = l4 + header;
        let stream = (transport == Transport::Udp
            && frame.get(payload..payload + 4) == Some(&STREAM_MAGIC[..]))
        .then(|| Some((be32(payload + 4)?, be32(payload + 8)?)))
        .flatten();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(frame, &mut h);
        Some(Segment {
            t_ns,
            encap,
            key,
            ip_src: addr(12)?,
            ip_dst: addr(16)?,
            ip_id: be16(ip + 4)?,
            transport,
            src_port: be16(l4)?,
            dst_port: be16(l4 + 2)?,
            payload_len,
            tcp,
            stream,
            digest: std::hash::Hasher::finish(&h),
            outer_src: None,
        })
    }

    /// Reads one pcap file of the collector (`vxlan-<key>.pcap`, `gre-<key>.pcap`,
    /// `gre-nokey.pcap`, `erspan_v1-<session>.pcap`, `erspan_v2-<session>.pcap`); a record still
    /// being written at the end is left out.
    pub fn from_pcap(name: &str, bytes: &[u8]) -> Option<Vec<Segment>> {
        let stem = name.strip_suffix(".pcap")?;
        let (encap, key) = stem.split_once('-')?;
        let encap = Encap::from_name(encap)?;
        let key = if key == "nokey" { None } else { Some(key.parse().ok()?) };
        let file = match crate::collector::pcap::parse(bytes) {
            Ok(f) => f,
            Err(crate::collector::pcap::PcapError::Truncated { field, offset, .. }) => {
                let cut = match field {
                    "packet data" => {
                        offset.saturating_sub(crate::collector::pcap::RECORD_HEADER_LEN)
                    }
                    _ => offset,
                };
                crate::collector::pcap::parse(bytes.get(..cut)?).ok()?
            }
            Err(_) => return None,
        };
        Some(
            file.records
                .iter()
                .filter_map(|r| Segment::parse(r.data, encap, key, r.t_ns))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::decap::tests::{erspan_v1_echo, erspan_v2_echo, gre, vxlan};

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
        let c = Capture { frames, segments: Vec::new() };
        assert_eq!(c.count_by_key().get(&(Encap::Vxlan, Some(100))), Some(&4));
        assert_eq!(c.duplicates().len(), 1);
        assert_eq!(c.foreign_keys(&[(Encap::Vxlan, 100)]), vec![(Encap::Gre, Some(999))]);
        let ip = Ipv4Addr::new(198, 51, 100, 2);
        assert_eq!(c.missing_seqs(Encap::Vxlan, 100, EchoKind::Request, ip), vec![3, 4]);
        assert_eq!(c.longest_gap(|f| f.encap == Encap::Vxlan), Some(Duration::from_nanos(80)));
    }

    #[test]
    fn erspan_copies_are_analysed_under_their_own_encapsulation() {
        let mut v2_again = erspan_v2_echo();
        v2_again[27] = 2; // the next GRE sequence number: the same mirrored frame
        let frames: Vec<Frame> = [
            Frame::parse_gre(&erspan_v1_echo(), 10),
            Frame::parse_gre(&erspan_v2_echo(), 20),
            Frame::parse_gre(&v2_again, 30),
            Frame::parse_gre(&gre(7), 40),
        ]
        .into_iter()
        .map(|f| f.expect("decodes"))
        .collect();
        let text: String =
            frames.iter().map(|f| serde_json::to_string(f).expect("serializes") + "\n").collect();
        let c = Capture::from_json_lines(&text);
        assert_eq!(c.frames, frames);
        assert_eq!(
            c.count_by_key().into_iter().collect::<Vec<_>>(),
            [
                ((Encap::Gre, Some(7)), 1),
                ((Encap::ErspanV1, Some(7)), 1),
                ((Encap::ErspanV2, Some(7)), 2)
            ]
        );
        let ip = Ipv4Addr::new(198, 51, 100, 3);
        assert_eq!(c.echo_seqs(Encap::ErspanV1, 7, EchoKind::Request, ip), [1]);
        assert_eq!(
            c.under(Encap::ErspanV2, 7).map(|f| f.erspan).collect::<Vec<_>>(),
            [Some(ErspanMeta::V2 { direction: ErspanDirection::Egress, hw_id: 3 }); 2]
        );
        assert_eq!(c.duplicates().len(), 1);
        assert_eq!(c.duplicates()[0].encap, Encap::ErspanV2);
        assert_eq!(
            c.foreign_keys(&[(Encap::ErspanV1, 7), (Encap::ErspanV2, 7)]),
            [(Encap::Gre, Some(7))]
        );
    }

    #[test]
    fn pcap_files_of_erspan_sessions_are_read_by_name() {
        use crate::collector::pcap::{PcapWriter, LINKTYPE_ETHERNET, SNAPLEN};
        let mut w = PcapWriter::create(Vec::new(), SNAPLEN, LINKTYPE_ETHERNET).expect("header");
        w.write(1_000, &stream_datagram(5, 1)).expect("write");
        let bytes = w.into_inner();
        for (name, encap) in
            [("erspan_v1-7.pcap", Encap::ErspanV1), ("erspan_v2-1023.pcap", Encap::ErspanV2)]
        {
            let segs = Segment::from_pcap(name, &bytes).expect("reads");
            assert_eq!(
                segs.iter().map(|s| (s.encap, s.stream)).collect::<Vec<_>>(),
                [(encap, Some((5, 1)))]
            );
        }
        assert_eq!(Segment::from_pcap("erspan_v1-7.pcap", &bytes).map(|s| s[0].key), Some(Some(7)));
        assert_eq!(Segment::from_pcap("erspan-7.pcap", &bytes), None);
        assert_eq!(Segment::from_pcap("erspan_v3-7.pcap", &bytes), None);
    }

    #[test]
    fn json_lines_round_trip_and_skip_partial_line() {
        let f = Frame::parse_gre(&gre(200), 5).expect("decodes");
        let line = serde_json::to_string(&f).expect("serializes");
        let text = format!("{line}\n{}", &line[..line.len() / 2]);
        let c = Capture::from_json_lines(&text);
        assert_eq!(c.frames, vec![f]);
    }

    /// An Ethernet + IPv4 frame carrying `l4` (a transport header and payload).
    pub(crate) fn ipv4_frame(proto: u8, id: u16, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0x51, 0, 0, 0, 1, 0x02, 0x51, 0, 0, 0, 2, 0x08, 0x00];
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8]);
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&[0x40, 0, 64, proto, 0, 0, 198, 51, 100, 1, 198, 51, 100, 2]);
        f.extend_from_slice(l4);
        f
    }

    /// A UDP datagram of stream `id` with sequence number `seq`, from port 30000 to 20000.
    pub(crate) fn stream_datagram(id: u32, seq: u32) -> Vec<u8> {
        let mut udp = vec![0x75, 0x30, 0x4e, 0x20, 0, 28, 0, 0];
        udp.extend_from_slice(&STREAM_MAGIC);
        udp.extend_from_slice(&id.to_be_bytes());
        udp.extend_from_slice(&seq.to_be_bytes());
        udp.extend_from_slice(&[0; 8]);
        ipv4_frame(17, seq as u16, &udp)
    }

    /// A TCP segment with `len` payload bytes.
    pub(crate) fn tcp_segment(id: u16, seq: u32, flags: u8, len: usize) -> Vec<u8> {
        let mut tcp = vec![0x75, 0x30, 0x4e, 0x20];
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&7u32.to_be_bytes());
        tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend(std::iter::repeat_n(0xab, len));
        ipv4_frame(6, id, &tcp)
    }

    #[test]
    fn udp_stream_datagrams_and_tcp_segments_are_described() {
        let u = Segment::parse(&stream_datagram(9, 41), Encap::Vxlan, Some(100), 5).expect("udp");
        assert_eq!((u.transport, u.src_port, u.dst_port), (Transport::Udp, 30000, 20000));
        assert_eq!((u.stream, u.payload_len, u.ip_id), (Some((9, 41)), 20, 41));
        let t =
            Segment::parse(&tcp_segment(3, 1000, 0x18, 100), Encap::Gre, Some(7), 5).expect("tcp");
        assert_eq!(t.transport, Transport::Tcp);
        assert_eq!(t.tcp, Some(TcpFields { seq: 1000, ack: 7, flags: 0x18 }));
        assert_eq!((t.payload_len, t.stream), (100, None));
        // A copy cut by a snaplen still says how much it carried; one cut before the TCP flags
        // (byte 14 of its header) is nothing.
        let cut = &tcp_segment(3, 1000, 0x18, 100)[..60];
        assert_eq!(Segment::parse(cut, Encap::Gre, None, 0).map(|s| s.payload_len), Some(100));
        for n in 0..48 {
            assert_eq!(Segment::parse(&tcp_segment(1, 1, 2, 0)[..n], Encap::Gre, None, 0), None);
        }
        assert_eq!(Segment::parse(&ipv4_frame(1, 1, &[8, 0, 0, 0]), Encap::Gre, None, 0), None);
    }

    #[test]
    fn pcap_files_are_read_by_key_and_identical_copies_are_duplicates() {
        use crate::collector::pcap::{PcapWriter, LINKTYPE_ETHERNET, SNAPLEN};
        let mut w = PcapWriter::create(Vec::new(), SNAPLEN, LINKTYPE_ETHERNET).expect("header");
        for (t, seq) in [(1_000u64, 1u32), (2_000, 2), (3_000, 2)] {
            w.write(t, &stream_datagram(5, seq)).expect("write");
        }
        let mut bytes = w.into_inner();
        let whole = Segment::from_pcap("vxlan-100.pcap", &bytes).expect("reads");
        assert_eq!(whole.len(), 3);
        assert!(whole.iter().all(|s| s.encap == Encap::Vxlan && s.key == Some(100)));
        // A record being written is left out, not an error.
        bytes.truncate(bytes.len() - 5);
        assert_eq!(Segment::from_pcap("vxlan-100.pcap", &bytes).map(|v| v.len()), Some(2));
        assert_eq!(Segment::from_pcap("notes.txt", &bytes), None);
        let c = Capture { frames: Vec::new(), segments: whole };
        let dups = c.segment_duplicates();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].stream, Some((5, 2)));
        let pairs = c.segment_duplicate_pairs();
        assert_eq!((pairs[0].0.t_ns, pairs[0].1.t_ns), (2_000, 3_000));
    }

    #[test]
    fn a_segment_is_attributed_to_the_hypervisor_that_sent_its_copy() {
        use crate::collector::pcap::{PcapWriter, LINKTYPE_ETHERNET, SNAPLEN};
        let dir = crate::collector::recorder::tests::TempDir::new();
        let mut w = PcapWriter::create(Vec::new(), SNAPLEN, LINKTYPE_ETHERNET).expect("header");
        // pcap keeps microseconds: the JSON lines' nanoseconds are matched on those.
        for (t, seq) in [(5_000_123u64, 1u32), (6_000_456, 2), (7_000_789, 3)] {
            w.write(t, &stream_datagram(5, seq)).expect("write");
        }
        std::fs::write(dir.0.join("vxlan-100.pcap"), w.into_inner()).expect("pcap file");
        let from = |t: u64, last: u8| {
            Frame::parse_vxlan(&vxlan(100), Ipv4Addr::new(192, 0, 2, last), t).expect("decodes")
        };
        let mut c =
            Capture { frames: vec![from(5_000_123, 1), from(6_000_456, 3)], segments: Vec::new() };
        c.read_pcap_dir(&dir.0).expect("reads");
        let senders: Vec<Option<Ipv4Addr>> = c.segments.iter().map(|s| s.outer_src).collect();
        assert_eq!(
            senders,
            [Some(Ipv4Addr::new(192, 0, 2, 1)), Some(Ipv4Addr::new(192, 0, 2, 3)), None]
        );
    }
}
