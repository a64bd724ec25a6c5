//! The classic libpcap file format (what `tcpdump -w` writes and `tcpdump -r` reads): a global
//! header, then per packet a record header and the captured bytes. We write microsecond
//! timestamps in little-endian order; readers tell the order from the magic number.
//!
//! ```text
//! global header (24 bytes)                 record header (16 bytes)
//! +------------------------------+         +------------------------------+
//! | magic_number   u32 a1b2c3d4  |         | ts_sec    u32                |
//! | version_major  u16 2         |         | ts_usec   u32 (ns if a1b23c4d)|
//! | version_minor  u16 4         |         | incl_len  u32 bytes saved     |
//! | thiszone       i32 0         |         | orig_len  u32 bytes on wire   |
//! | sigfigs        u32 0         |         +------------------------------+
//! | snaplen        u32           |         | incl_len bytes of packet     |
//! | network        u32 linktype  |
//! +------------------------------+
//! ```

use std::io::{self, Write};

/// Magic number of a file with microsecond timestamps.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic number of a file with nanosecond timestamps (read only).
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Link type of Ethernet frames (`LINKTYPE_ETHERNET`, `DLT_EN10MB`).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The largest frame a collector can receive (an IPv4 packet is at most 65535 bytes), and the
/// snapshot length it writes: no inner frame is ever cut.
pub const SNAPLEN: u32 = 65_535;
/// Length of the global header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 16;
/// The largest snapshot length [`parse`] accepts (libpcap's own maximum).
const MAX_SNAPLEN: u32 = 262_144;

/// The global header of a file with microsecond timestamps.
pub fn global_header(snaplen: u32, linktype: u32) -> [u8; GLOBAL_HEADER_LEN] {
    let mut h = [0u8; GLOBAL_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone and sigfigs stay 0: timestamps are UTC.
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&linktype.to_le_bytes());
    h
}

/// The record header of a packet of `orig_len` bytes received at `t_ns` (nanoseconds since the
/// Unix epoch), of which `incl_len` are saved.
pub fn record_header(t_ns: u64, incl_len: u32, orig_len: u32) -> [u8; RECORD_HEADER_LEN] {
    let secs = u32::try_from(t_ns / 1_000_000_000).unwrap_or(u32::MAX);
    let micros = (t_ns % 1_000_000_000 / 1_000) as u32;
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&secs.to_le_bytes());
    h[4..8].copy_from_slice(&micros.to_le_bytes());
    h[8..12].copy_from_slice(&incl_len.to_le_bytes());
    h[12..16].copy_from_slice(&orig_len.to_le_bytes());
    h
}

/// Writes packets to a pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Starts a new file: writes the global header.
    pub fn create(mut out: W, snaplen: u32, linktype: u32) -> io::Result<PcapWriter<W>> {
        out.write_all(&global_header(snaplen, linktype))?;
        Ok(PcapWriter { out, snaplen })
    }

    /// Continues a file whose global header (with this `snaplen`) is already written.
    pub fn resume(out: W, snaplen: u32) -> PcapWriter<W> {
        PcapWriter { out, snaplen }
    }

    /// Writes one packet received at `t_ns`; bytes beyond the snapshot length are not saved,
    /// and the record says how long the packet was.
    pub fn write(&mut self, t_ns: u64, packet: &[u8]) -> io::Result<()> {
        let orig_len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(self.snaplen);
        let saved = packet.get(..incl_len as usize).unwrap_or(packet);
        self.out.write_all(&record_header(t_ns, incl_len, orig_len))?;
        self.out.write_all(saved)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Why bytes are not a pcap file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// The magic number is none of the classic ones, in either byte order.
    #[error("pcap magic number {magic:#010x} at offset 0: expected a1b2c3d4 or a1b23c4d")]
    BadMagic {
        /// The first four bytes, read big-endian.
        magic: u32,
    },
    /// A header or packet runs past the end.
    #[error("pcap {field} at offset {offset}: {needed} bytes needed, {available} available")]
    Truncated {
        /// `global header`, `record header` or `packet data`.
        field: &'static str,
        /// Where it starts.
        offset: usize,
        /// Its length.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A snapshot length, or a record longer than the snapshot length.
    #[error("pcap {field} {value} at offset {offset}: expected at most {max}")]
    TooLong {
        /// `snaplen` or `incl_len`.
        field: &'static str,
        /// Its value.
        value: u32,
        /// Its offset.
        offset: usize,
        /// The limit.
        max: u32,
    },
}

/// A pcap file read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapFile<'a> {
    /// Snapshot length.
    pub snaplen: u32,
    /// Link type.
    pub linktype: u32,
    /// The packets, in file order.
    pub records: Vec<PcapRecord<'a>>,
}

/// One packet of a pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapRecord<'a> {
    /// Timestamp, nanoseconds since the Unix epoch.
    pub t_ns: u64,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// The bytes saved.
    pub data: &'a [u8],
}

/// Reads a classic pcap file, either byte order, micro- or nanosecond timestamps.
pub fn parse(bytes: &[u8]) -> Result<PcapFile<'_>, PcapError> {
    let truncated = |field, offset: usize, needed| PcapError::Truncated {
        field,
        offset,
        needed,
        available: bytes.len().saturating_sub(offset),
    };
    let header = bytes
        .get(..GLOBAL_HEADER_LEN)
        .ok_or_else(|| truncated("global header", 0, GLOBAL_HEADER_LEN))?;
    let word =
        |at: usize| -> [u8; 4] { [header[at], header[at + 1], header[at + 2], header[at + 3]] };
    let magic = u32::from_be_bytes(word(0));
    let (big_endian, nanos) = match magic {
        MAGIC_MICROS => (true, false),
        MAGIC_NANOS => (true, true),
        m if m.swap_bytes() == MAGIC_MICROS => (false, false),
        m if m.swap_bytes() == MAGIC_NANOS => (false, true),
        magic => return Err(PcapError::BadMagic { magic }),
    };
    let u32_of =
        |b: [u8; 4]| if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) };
    let snaplen = u32_of(word(16));
    if snaplen > MAX_SNAPLEN {
        return Err(PcapError::TooLong {
            field: "snaplen",
            value: snaplen,
            offset: 16,
            max: MAX_SNAPLEN,
        });
    }
    let linktype = u32_of(word(20));
    let mut records = Vec::new();
    let mut at = GLOBAL_HEADER_LEN;
    while at < bytes.len() {
        let h = bytes
            .get(at..at + RECORD_HEADER_LEN)
            .ok_or_else(|| truncated("record header", at, RECORD_HEADER_LEN))?;
        let field = |i: usize| u32_of([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (secs, frac, incl_len, orig_len) = (field(0), field(4), field(8), field(12));
        // Tools write records longer than snaplen when snaplen is 0; our own never do.
        let max = if snaplen == 0 { MAX_SNAPLEN } else { snaplen };
        if incl_len > max {
            return Err(PcapError::TooLong {
                field: "incl_len",
                value: incl_len,
                offset: at + 8,
                max,
            });
        }
        let start = at + RECORD_HEADER_LEN;
        let data = bytes
            .get(start..start + incl_len as usize)
            .ok_or_else(|| truncated("packet data", start, incl_len as usize))?;
        let frac_ns = if nanos { u64::from(frac) } else { u64::from(frac) * 1_000 };
        records.push(PcapRecord {
            t_ns: u64::from(secs) * 1_000_000_000 + frac_ns,
            orig_len,
            data,
        });
        at = start + incl_len as usize;
    }
    Ok(PcapFile { snaplen, linktype, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_header_bytes() {
        let h = global_header(SNAPLEN, LINKTYPE_ETHERNET);
        assert_eq!(
            h,
            [
                0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian
                0x02, 0x00, 0x04, 0x00, // version 2.4
                0, 0, 0, 0, // thiszone
                0, 0, 0, 0, // sigfigs
                0xff, 0xff, 0x00, 0x00, // snaplen 65535
                0x01, 0x00, 0x00, 0x00, // Ethernet
            ]
        );
    }

    #[test]
    fn record_bytes() {
        let mut w = PcapWriter::create(Vec::new(), SNAPLEN, LINKTYPE_ETHERNET).expect("header");
        // 2001-09-09T01:46:40.123456789Z: microseconds are truncated, not rounded.
        w.write(1_000_000_000_123_456_789, &[0xaa, 0xbb, 0xcc]).expect("record");
        let bytes = w.into_inner();
        assert_eq!(bytes.len(), GLOBAL_HEADER_LEN + RECORD_HEADER_LEN + 3);
        assert_eq!(
            &bytes[GLOBAL_HEADER_LEN..],
            &[
                0x00, 0xca, 0x9a, 0x3b, // ts_sec 1000000000
                0x40, 0xe2, 0x01, 0x00, // ts_usec 123456
                3, 0, 0, 0, // incl_len
                3, 0, 0, 0, // orig_len
                0xaa, 0xbb, 0xcc,
            ]
        );
    }

    #[test]
    fn packets_beyond_snaplen_are_cut_and_say_their_length() {
        let mut w = PcapWriter::create(Vec::new(), 4, LINKTYPE_ETHERNET).expect("header");
        w.write(0, &[1, 2, 3, 4, 5, 6]).expect("record");
        let bytes = w.into_inner();
        let f = parse(&bytes).expect("parses");
        assert_eq!(f.records, vec![PcapRecord { t_ns: 0, orig_len: 6, data: &[1, 2, 3, 4] }]);
    }

    #[test]
    fn round_trip_and_resume() {
        let mut w = PcapWriter::create(Vec::new(), SNAPLEN, LINKTYPE_ETHERNET).expect("header");
        w.write(1_500_000_000, &[1; 60]).expect("first");
        let mut w = PcapWriter::resume(w.into_inner(), SNAPLEN);
        w.write(2_000_001_000, &[2; 1514]).expect("second");
        let bytes = w.into_inner();
        let f = parse(&bytes).expect("parses");
        assert_eq!((f.snaplen, f.linktype), (SNAPLEN, LINKTYPE_ETHERNET));
        let got: Vec<_> = f.records.iter().map(|r| (r.t_ns, r.orig_len, r.data.len())).collect();
        assert_eq!(got, vec![(1_500_000_000, 60, 60), (2_000_001_000, 1514, 1514)]);
    }

    #[test]
    fn reads_big_endian_nanosecond_files() {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC_NANOS.to_be_bytes());
        b.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1]);
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0x42]);
        let f = parse(&b).expect("parses");
        assert_eq!(f.records, vec![PcapRecord { t_ns: 1_000_000_005, orig_len: 1, data: &[0x42] }]);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_shorter_file() {
        let mut w = PcapWriter::create(Vec::new(), SNAPLEN, LINKTYPE_ETHERNET).expect("header");
        w.write(1, &[7; 20]).expect("record");
        w.write(2, &[8; 20]).expect("record");
        let bytes = w.into_inner();
        for n in 0..bytes.len() {
            let whole = [GLOBAL_HEADER_LEN, GLOBAL_HEADER_LEN + 36].contains(&n);
            assert_eq!(parse(&bytes[..n]).is_ok(), whole, "{n}");
        }
    }

    #[test]
    fn lengths_from_the_file_are_bounded() {
        let mut b = global_header(SNAPLEN, LINKTYPE_ETHERNET).to_vec();
        b.extend_from_slice(&record_header(0, 70_000, 70_000));
        assert_eq!(
            parse(&b),
            Err(PcapError::TooLong { field: "incl_len", value: 70_000, offset: 32, max: SNAPLEN })
        );
        let b = global_header(u32::MAX, 1);
        assert!(matches!(parse(&b), Err(PcapError::TooLong { field: "snaplen", .. })));
        assert_eq!(parse(&[0; 24]), Err(PcapError::BadMagic { magic: 0 }));
    }
}
