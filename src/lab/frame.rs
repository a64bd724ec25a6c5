//! What a collector recorded (the JSON lines of [`crate::collector::record`], decoded by
//! [`crate::collector::decap`]), and the analysis tests run on a capture: counts per key,
//! duplicates, foreign keys, gaps.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

pub use crate::collector::{EchoKind, Encap, Frame, IcmpEcho};

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
    use crate::collector::decap::tests::{gre, vxlan};

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
