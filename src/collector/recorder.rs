//! What a collector does with each received datagram: decapsulate it, count it under its tunnel
//! (or as malformed), append the inner frame to the tunnel's pcap file, and write its JSON line.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, LineWriter, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::decap::{decap_gre, decap_vxlan, Decapsulated, Malformed, Tunnel};
use super::pcap::{PcapWriter, LINKTYPE_ETHERNET, SNAPLEN};
use super::record::Frame;
use super::tally::{Slot, Tally};
use super::{io_err, CollectorError};

/// How many pcap files stay open at once; others are closed and reopened for appending.
const MAX_OPEN_PCAPS: usize = 64;

/// Decapsulates, counts and writes received datagrams.
#[derive(Debug)]
pub struct Recorder {
    tally: Tally,
    pcaps: Option<PcapFiles>,
    json: Option<(PathBuf, LineWriter<File>)>,
}

impl Recorder {
    /// A recorder writing pcap files into `pcap_dir` (created if needed) and JSON lines to
    /// `output` (truncated), for at most `max_keys` tunnels.
    pub fn new(
        pcap_dir: Option<&Path>,
        output: Option<&Path>,
        max_keys: usize,
    ) -> Result<Recorder, CollectorError> {
        let pcaps = match pcap_dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
                Some(PcapFiles::new(dir.to_path_buf(), MAX_OPEN_PCAPS))
            }
            None => None,
        };
        let json = match output {
            Some(path) => {
                let file =
                    File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
                Some((path.to_path_buf(), LineWriter::new(file)))
            }
            None => None,
        };
        Ok(Recorder { tally: Tally::new(max_keys), pcaps, json })
    }

    /// Records the payload of a UDP datagram from `outer_src` received at `t_ns` on the VXLAN
    /// port.
    pub fn record_vxlan(
        &mut self,
        payload: &[u8],
        outer_src: Ipv4Addr,
        t_ns: u64,
    ) -> Result<(), CollectorError> {
        self.record(decap_vxlan(payload, outer_src), t_ns)
    }

    /// Records an IPv4 packet received at `t_ns` on the raw GRE socket.
    pub fn record_gre(&mut self, packet: &[u8], t_ns: u64) -> Result<(), CollectorError> {
        self.record(decap_gre(packet), t_ns)
    }

    fn record(
        &mut self,
        decoded: Result<Decapsulated<'_>, Malformed>,
        t_ns: u64,
    ) -> Result<(), CollectorError> {
        let d = match decoded {
            Ok(d) => d,
            Err(m) => {
                self.tally.count_malformed(&m);
                return Ok(());
            }
        };
        let slot = self.tally.count(d.tunnel, d.frame.len(), t_ns);
        if let (Some(pcaps), Slot::New | Slot::Known) = (&mut self.pcaps, slot) {
            pcaps.write(d.tunnel, slot == Slot::New, t_ns, d.frame)?;
        }
        if let Some((path, out)) = &mut self.json {
            let line = serde_json::to_string(&Frame::describe(&d, t_ns)).unwrap_or_default();
            writeln!(out, "{line}").map_err(io_err(format!("writing {}", path.display())))?;
        }
        Ok(())
    }

    /// Flushes the pcap files (the JSON lines are flushed as they are written).
    pub fn flush(&mut self) -> Result<(), CollectorError> {
        match &mut self.pcaps {
            Some(p) => p.flush(),
            None => Ok(()),
        }
    }

    /// The counters so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The pcap file of `tunnel`, if there is a pcap directory.
    pub fn pcap_path(&self, tunnel: Tunnel) -> Option<PathBuf> {
        self.pcaps.as_ref().map(|p| p.dir.join(tunnel.pcap_file_name()))
    }
}

/// The pcap files of a run, one per tunnel, with a bounded number open at a time.
#[derive(Debug)]
struct PcapFiles {
    dir: PathBuf,
    max_open: usize,
    open: HashMap<Tunnel, (u64, PcapWriter<BufWriter<File>>)>,
    clock: u64,
}

impl PcapFiles {
    fn new(dir: PathBuf, max_open: usize) -> PcapFiles {
        PcapFiles { dir, max_open: max_open.max(1), open: HashMap::new(), clock: 0 }
    }

    /// Appends `frame` to the file of `tunnel`, which is created (truncated) when `new`.
    fn write(
        &mut self,
        tunnel: Tunnel,
        new: bool,
        t_ns: u64,
        frame: &[u8],
    ) -> Result<(), CollectorError> {
        self.clock += 1;
        let path = self.dir.join(tunnel.pcap_file_name());
        if !self.open.contains_key(&tunnel) {
            if self.open.len() >= self.max_open {
                self.close_least_recently_used()?;
            }
            let writer = if new {
                let file =
                    File::create(&path).map_err(io_err(format!("creating {}", path.display())))?;
                PcapWriter::create(BufWriter::new(file), SNAPLEN, LINKTYPE_ETHERNET)
                    .map_err(io_err(format!("writing {}", path.display())))?
            } else {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_err(format!("reopening {}", path.display())))?;
                PcapWriter::resume(BufWriter::new(file), SNAPLEN)
            };
            self.open.insert(tunnel, (self.clock, writer));
        }
        let clock = self.clock;
        match self.open.get_mut(&tunnel) {
            Some((used, writer)) => {
                *used = clock;
                writer.write(t_ns, frame).map_err(io_err(format!("writing {}", path.display())))
            }
            None => Ok(()),
        }
    }

    fn close_least_recently_used(&mut self) -> Result<(), CollectorError> {
        let oldest = self.open.iter().min_by_key(|(_, (used, _))| *used).map(|(t, _)| *t);
        if let Some((_, mut writer)) = oldest.and_then(|t| self.open.remove(&t)) {
            writer.flush().map_err(io_err("flushing a pcap file"))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), CollectorError> {
        for (tunnel, (_, writer)) in &mut self.open {
            writer.flush().map_err(io_err(format!(
                "writing {}",
                self.dir.join(tunnel.pcap_file_name()).display()
            )))?;
        }
        Ok(())
    }
}

impl Drop for PcapFiles {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::super::decap::tests::{
        erspan_v1_echo, erspan_v2_arp, erspan_v2_echo, gre, gre_with, inner_echo, vxlan, vxlan_with,
    };
    use super::super::decap::{Encap, ErspanDirection, ErspanMeta};
    use super::super::pcap;
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new() -> TempDir {
            static SEQ: AtomicU32 = AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir().join(format!(
                "periscope-collector-test-{}-{nanos}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir(&dir).expect("temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn vx(key: u32) -> Tunnel {
        Tunnel { encap: Encap::Vxlan, key: Some(key) }
    }

    fn gr(key: u32) -> Tunnel {
        Tunnel { encap: Encap::Gre, key: Some(key) }
    }

    fn read_pcap(path: &Path) -> Vec<(u64, Vec<u8>)> {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let f = pcap::parse(&bytes).expect("a pcap file");
        assert_eq!(f.linktype, pcap::LINKTYPE_ETHERNET);
        f.records.iter().map(|r| (r.t_ns, r.data.to_vec())).collect()
    }

    #[test]
    fn splits_frames_by_encapsulation_and_key() {
        let tmp = TempDir::new();
        let dir = tmp.0.join("pcap");
        let json = tmp.0.join("frames.jsonl");
        let mut r = Recorder::new(Some(&dir), Some(&json), 16).expect("recorder");
        let small = &inner_echo()[..20];
        r.record_vxlan(&vxlan(100), SRC, 1_000_000).expect("vxlan 100");
        r.record_gre(&gre(200), 2_000_000).expect("gre 200");
        r.record_vxlan(&vxlan_with(100, small), SRC, 3_000_000).expect("vxlan 100 again");
        r.record_gre(&gre(100), 4_000_000).expect("gre 100");
        r.record_vxlan(&vxlan(200), SRC, 5_000_000).expect("vxlan 200");
        r.flush().expect("flush");

        let t = r.tally();
        assert_eq!(
            t.keys().keys().copied().collect::<Vec<_>>(),
            [vx(100), vx(200), gr(100), gr(200)]
        );
        let s = t.get(vx(100)).expect("vxlan 100");
        assert_eq!((s.frames, s.bytes, s.first_ns, s.last_ns), (2, 42 + 20, 1_000_000, 3_000_000));

        let mut files: Vec<String> = fs::read_dir(&dir)
            .expect("pcap dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["gre-100.pcap", "gre-200.pcap", "vxlan-100.pcap", "vxlan-200.pcap"]);
        assert_eq!(
            read_pcap(&dir.join("vxlan-100.pcap")),
            vec![(1_000_000, inner_echo()), (3_000_000, small.to_vec())]
        );
        assert_eq!(read_pcap(&dir.join("gre-200.pcap")), vec![(2_000_000, inner_echo())]);
        assert_eq!(r.pcap_path(gr(200)), Some(dir.join("gre-200.pcap")));

        let text = fs::read_to_string(&json).expect("json lines");
        let frames: Vec<Frame> =
            text.lines().map(|l| serde_json::from_str(l).expect("a frame")).collect();
        let keys: Vec<_> = frames.iter().map(|f| f.tunnel()).collect();
        assert_eq!(
            keys,
            [
                (Encap::Vxlan, Some(100)),
                (Encap::Gre, Some(200)),
                (Encap::Vxlan, Some(100)),
                (Encap::Gre, Some(100)),
                (Encap::Vxlan, Some(200)),
            ]
        );
    }

    #[test]
    fn keys_beyond_the_limit_are_counted_as_other_without_a_file() {
        let tmp = TempDir::new();
        let mut r = Recorder::new(Some(&tmp.0), None, 2).expect("recorder");
        for key in [1, 2, 3, 4, 1, 3] {
            r.record_vxlan(&vxlan(key), SRC, u64::from(key)).expect("record");
        }
        r.flush().expect("flush");
        assert_eq!(r.tally().keys().len(), 2);
        assert_eq!(r.tally().other().frames, 3);
        assert_eq!(r.tally().get(vx(1)).map(|s| s.frames), Some(2));
        assert!(tmp.0.join("vxlan-2.pcap").is_file());
        assert!(!tmp.0.join("vxlan-3.pcap").exists());
        assert!(r.tally().summary().to_string().contains("other"));
    }

    #[test]
    fn files_closed_to_bound_open_handles_are_reopened_for_appending() {
        let tmp = TempDir::new();
        let mut r = Recorder::new(Some(&tmp.0), None, 100).expect("recorder");
        if let Some(p) = &mut r.pcaps {
            p.max_open = 2;
        }
        for (i, key) in [1, 2, 3, 1, 2, 3, 1].into_iter().enumerate() {
            r.record_gre(&gre(key), i as u64 * 1_000).expect("record");
            assert!(r.pcaps.as_ref().map_or(0, |p| p.open.len()) <= 2);
        }
        r.flush().expect("flush");
        let times = |k| read_pcap(&tmp.0.join(format!("gre-{k}.pcap"))).into_iter().map(|(t, _)| t);
        assert_eq!(times(1).collect::<Vec<_>>(), [0, 3_000, 6_000]);
        assert_eq!(times(2).collect::<Vec<_>>(), [1_000, 4_000]);
        assert_eq!(times(3).collect::<Vec<_>>(), [2_000, 5_000]);
    }

    /// Every truncation of a sample VXLAN and GRE datagram is counted as malformed by reason
    /// or, for VXLAN cut inside the inner frame, recorded as the shorter frame it is; nothing
    /// malformed reaches a file.
    #[test]
    fn every_truncation_is_counted_and_nothing_malformed_is_written() {
        let tmp = TempDir::new();
        let json = tmp.0.join("frames.jsonl");
        let mut r = Recorder::new(Some(&tmp.0), Some(&json), 16).expect("recorder");
        let v = vxlan(100);
        for n in 0..v.len() {
            r.record_vxlan(&v[..n], SRC, n as u64).expect("record");
        }
        let g = gre(200);
        for n in 0..g.len() {
            r.record_gre(&g[..n], n as u64).expect("record");
        }
        r.flush().expect("flush");
        let t = r.tally();
        let by_reason: Vec<(&str, u64)> =
            t.malformed().iter().map(|(r, m)| (*r, m.count)).collect();
        assert_eq!(
            by_reason,
            [
                ("ethernet-truncated", 14),
                ("ipv4-truncated", g.len() as u64),
                ("vxlan-truncated", 8)
            ]
        );
        // Cuts at 22..50 still hold a whole VXLAN and Ethernet header: 28 shorter frames.
        assert_eq!(t.get(vx(100)).map(|s| s.frames), Some((v.len() - 22) as u64));
        assert_eq!(t.get(gr(200)), None);
        assert!(!tmp.0.join("gre-200.pcap").exists());
        let frames = read_pcap(&tmp.0.join("vxlan-100.pcap"));
        assert_eq!(
            frames.iter().map(|(_, f)| f.len()).collect::<Vec<_>>(),
            (14..42).collect::<Vec<_>>()
        );
        let lines = fs::read_to_string(&json).expect("json").lines().count();
        assert_eq!(lines, v.len() - 22);
    }

    #[test]
    fn output_paths_that_cannot_be_created_name_the_path() {
        let tmp = TempDir::new();
        let file = tmp.0.join("a-file");
        fs::write(&file, b"").expect("file");
        let e = Recorder::new(Some(&file.join("pcap")), None, 1).expect_err("not a directory");
        assert!(e.to_string().contains("a-file/pcap"), "{e}");
        let e = Recorder::new(None, Some(&tmp.0.join("no/such/dir/out.jsonl")), 1)
            .expect_err("no parent");
        assert!(e.to_string().contains("out.jsonl"), "{e}");
    }

    #[test]
    fn a_key_less_gre_copy_gets_its_own_file() {
        let tmp = TempDir::new();
        let mut r = Recorder::new(Some(&tmp.0), None, 4).expect("recorder");
        let mut p = gre_with(0, &inner_echo());
        p.drain(24..28);
        p[20] = 0;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        r.record_gre(&p, 9_000).expect("record");
        r.flush().expect("flush");
        assert_eq!(read_pcap(&tmp.0.join("gre-nokey.pcap")), vec![(9_000, inner_echo())]);
    }

    /// ERSPAN copies arriving on the GRE socket are split from plain GRE copies of the same key
    /// and from each other by version: one pcap file each, holding the mirrored frames, and
    /// JSON lines carrying the ERSPAN metadata. Malformed ones are counted by their reason.
    #[test]
    fn erspan_copies_get_their_own_files_and_metadata() {
        let tmp = TempDir::new();
        let json = tmp.0.join("frames.jsonl");
        let mut r = Recorder::new(Some(&tmp.0), Some(&json), 16).expect("recorder");
        r.record_gre(&erspan_v1_echo(), 1_000).expect("record");
        r.record_gre(&erspan_v2_arp(), 2_000).expect("record");
        r.record_gre(&erspan_v2_echo(), 3_000).expect("record");
        r.record_gre(&gre(7), 4_000).expect("record");
        let mut bad = erspan_v1_echo();
        bad[28] = 0x20; // version 2 under the Type II protocol type
        r.record_gre(&bad, 5_000).expect("record");
        bad[20] = 0x00; // no sequence number
        r.record_gre(&bad, 6_000).expect("record");
        r.flush().expect("flush");

        let tunnel = |encap| Tunnel { encap, key: Some(7) };
        let t = r.tally();
        assert_eq!(
            t.keys().iter().map(|(k, s)| (*k, s.frames, s.bytes)).collect::<Vec<_>>(),
            [
                (tunnel(Encap::Gre), 1, 42),
                (tunnel(Encap::ErspanV1), 1, 98),
                (tunnel(Encap::ErspanV2), 2, 42 + 98)
            ]
        );
        let reasons: Vec<(&str, u64)> = t.malformed().iter().map(|(r, m)| (*r, m.count)).collect();
        assert_eq!(reasons, [("erspan-gre-flags", 1), ("erspan-version", 1)]);

        let v1 = erspan_v1_echo();
        assert_eq!(read_pcap(&tmp.0.join("erspan_v1-7.pcap")), vec![(1_000, v1[36..].to_vec())]);
        assert_eq!(
            read_pcap(&tmp.0.join("erspan_v2-7.pcap")),
            vec![(2_000, erspan_v2_arp()[40..].to_vec()), (3_000, erspan_v2_echo()[40..].to_vec())]
        );
        assert_eq!(read_pcap(&tmp.0.join("gre-7.pcap")), vec![(4_000, inner_echo())]);
        assert_eq!(r.pcap_path(tunnel(Encap::ErspanV1)), Some(tmp.0.join("erspan_v1-7.pcap")));

        let frames: Vec<Frame> = fs::read_to_string(&json)
            .expect("json lines")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a frame"))
            .collect();
        let egress = Some(ErspanMeta::V2 { direction: ErspanDirection::Egress, hw_id: 3 });
        assert_eq!(
            frames.iter().map(|f| (f.encap, f.key, f.erspan)).collect::<Vec<_>>(),
            [
                (Encap::ErspanV1, Some(7), Some(ErspanMeta::V1 { index: 5 })),
                (Encap::ErspanV2, Some(7), egress),
                (Encap::ErspanV2, Some(7), egress),
                (Encap::Gre, Some(7), None),
            ]
        );

        let summary = t.summary().to_string();
        assert!(summary.contains("\nerspan_v1          7          1           98  "), "{summary}");
        assert!(summary.contains("\ngre                7          1           42  "), "{summary}");
        if let Some(text) = tcpdump_read(&tmp.0.join("erspan_v2-7.pcap")) {
            assert!(text.contains("Request who-has 198.51.100.4 tell 198.51.100.3"), "{text}");
            assert!(text.contains("198.51.100.3 > 198.51.100.4: ICMP echo request"), "{text}");
        }
    }

    /// What `tcpdump -r` prints for a file, or `None` when tcpdump is not installed (CI installs
    /// it: `.ci/setup`).
    pub(crate) fn tcpdump_read(path: &Path) -> Option<String> {
        let out = match std::process::Command::new("tcpdump")
            .args(["-nn", "-e", "-r"])
            .arg(path)
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("running tcpdump: {e}"),
        };
        assert!(
            out.status.success(),
            "tcpdump -r {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn tcpdump_reads_the_inner_frames() {
        let tmp = TempDir::new();
        let mut r = Recorder::new(Some(&tmp.0), None, 4).expect("recorder");
        r.record_vxlan(&vxlan(100), SRC, 1_700_000_000_000_001_000).expect("record");
        let mut reply = inner_echo();
        reply.swap(5, 11); // 02:51:..:02 <-> 02:51:..:03
        reply[26..34].rotate_left(4); // swap the IPv4 addresses
        reply[34] = 0; // echo reply
        r.record_vxlan(&vxlan_with(100, &reply), SRC, 1_700_000_000_000_002_000).expect("record");
        r.flush().expect("flush");
        let Some(text) = tcpdump_read(&tmp.0.join("vxlan-100.pcap")) else {
            eprintln!("tcpdump is not installed: only the byte-level checks ran");
            return;
        };
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("02:51:00:00:00:02 > 02:51:00:00:00:03"), "{text}");
        assert!(
            lines[0].contains("198.51.100.2 > 198.51.100.3: ICMP echo request, id 4660, seq 7"),
            "{text}"
        );
        assert!(
            lines[1].contains("198.51.100.3 > 198.51.100.2: ICMP echo reply, id 4660, seq 7"),
            "{text}"
        );
    }
}
