//! Counts per tunnel (encapsulation, key), bounded to a number of keys, plus malformed datagrams
//! by reason, and the summary table the collector prints.

use std::collections::BTreeMap;
use std::fmt;

use super::decap::{Malformed, Tunnel};

/// Frames, bytes and first/last receive time of one tunnel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Frames received.
    pub frames: u64,
    /// Bytes of inner frames received.
    pub bytes: u64,
    /// First receive time, nanoseconds since the Unix epoch.
    pub first_ns: u64,
    /// Last receive time.
    pub last_ns: u64,
}

impl KeyStats {
    fn add(&mut self, len: usize, t_ns: u64) {
        if self.frames == 0 {
            self.first_ns = t_ns;
        }
        self.frames += 1;
        self.bytes += len as u64;
        self.last_ns = self.last_ns.max(t_ns);
    }
}

/// Malformed datagrams of one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MalformedStats {
    /// How many.
    pub count: u64,
    /// What the last one was, in full.
    pub last: String,
}

/// Where a counted frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Slot {
    /// The first frame of a tunnel that has a slot now.
    New,
    /// A tunnel that already had its slot.
    Known,
    /// A tunnel beyond the key limit: counted under "other".
    Other,
}

/// The collector's counters.
#[derive(Debug, Clone)]
pub struct Tally {
    max_keys: usize,
    keys: BTreeMap<Tunnel, KeyStats>,
    other: KeyStats,
    malformed: BTreeMap<&'static str, MalformedStats>,
}

impl Tally {
    /// Counters for at most `max_keys` distinct tunnels; frames of any further tunnel are
    /// counted together under "other".
    pub fn new(max_keys: usize) -> Tally {
        Tally {
            max_keys,
            keys: BTreeMap::new(),
            other: KeyStats::default(),
            malformed: BTreeMap::new(),
        }
    }

    /// Counts a frame of `len` bytes received under `tunnel` at `t_ns`.
    pub fn count(&mut self, tunnel: Tunnel, len: usize, t_ns: u64) -> Slot {
        if let Some(stats) = self.keys.get_mut(&tunnel) {
            stats.add(len, t_ns);
            Slot::Known
        } else if self.keys.len() < self.max_keys {
            self.keys.entry(tunnel).or_default().add(len, t_ns);
            Slot::New
        } else {
            self.other.add(len, t_ns);
            Slot::Other
        }
    }

    /// Counts a malformed datagram.
    pub fn count_malformed(&mut self, m: &Malformed) {
        let s = self.malformed.entry(m.reason()).or_default();
        s.count += 1;
        s.last = m.to_string();
    }

    /// The counters of each tunnel that has a slot.
    pub fn keys(&self) -> &BTreeMap<Tunnel, KeyStats> {
        &self.keys
    }

    /// The counters of one tunnel.
    pub fn get(&self, tunnel: Tunnel) -> Option<&KeyStats> {
        self.keys.get(&tunnel)
    }

    /// Frames of tunnels beyond the key limit.
    pub fn other(&self) -> &KeyStats {
        &self.other
    }

    /// The key limit.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Malformed datagrams by reason.
    pub fn malformed(&self) -> &BTreeMap<&'static str, MalformedStats> {
        &self.malformed
    }

    /// All malformed datagrams.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().map(|m| m.count).sum()
    }

    /// All frames counted, "other" included.
    pub fn frames_total(&self) -> u64 {
        self.keys.values().map(|k| k.frames).sum::<u64>() + self.other.frames
    }

    /// The summary table: one row per tunnel, "other", malformed by reason, a total line.
    pub fn summary(&self) -> Summary<'_> {
        Summary(self)
    }
}

/// The summary table of a [`Tally`] (its `Display`).
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a>(&'a Tally);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        // Six characters as it always was, or as the longest name in a row (erspan_v1: nine).
        let width = t.keys.keys().map(|k| k.encap.name().len()).fold(6, usize::max);
        writeln!(
            f,
            "{:<width$} {:>10} {:>10} {:>12}  {:<24}  last seen (UTC)",
            "encap", "key", "frames", "bytes", "first seen (UTC)"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, encap: &str, key: &str, s: &KeyStats| {
            writeln!(
                f,
                "{encap:<width$} {key:>10} {:>10} {:>12}  {:<24}  {}",
                s.frames,
                s.bytes,
                utc(s.first_ns),
                utc(s.last_ns)
            )
        };
        for (tunnel, s) in &t.keys {
            let key = tunnel.key.map_or_else(|| "none".to_string(), |k| k.to_string());
            row(f, tunnel.encap.name(), &key, s)?;
        }
        if t.other.frames > 0 {
            row(f, "other", "-", &t.other)?;
            writeln!(f, "  (keys beyond the first {} get no row and no pcap file)", t.max_keys)?;
        }
        for (reason, m) in &t.malformed {
            writeln!(f, "malformed {reason}: {} (last: {})", m.count, m.last)?;
        }
        writeln!(
            f,
            "total: {} frames under {} keys{}, {} malformed",
            t.frames_total(),
            t.keys.len(),
            if t.other.frames > 0 { " and other" } else { "" },
            t.malformed_total()
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for nanoseconds since the Unix epoch.
pub fn utc(t_ns: u64) -> String {
    let secs = t_ns / 1_000_000_000;
    let millis = t_ns % 1_000_000_000 / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: counted in 400-year eras of 146097
/// days, each starting on a March 1st so that the leap day ends the year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::super::decap::Encap;
    use super::*;

    fn vx(key: u32) -> Tunnel {
        Tunnel { encap: Encap::Vxlan, key: Some(key) }
    }

    #[test]
    fn counts_per_key_up_to_the_limit_then_other() {
        let mut t = Tally::new(2);
        assert_eq!(t.count(vx(100), 98, 10), Slot::New);
        assert_eq!(t.count(vx(100), 98, 30), Slot::Known);
        assert_eq!(t.count(Tunnel { encap: Encap::Gre, key: Some(100) }, 60, 20), Slot::New);
        assert_eq!(t.count(vx(7), 42, 40), Slot::Other);
        assert_eq!(t.count(vx(8), 42, 50), Slot::Other);
        assert_eq!(t.count(vx(100), 98, 60), Slot::Known);
        assert_eq!(
            t.get(vx(100)),
            Some(&KeyStats { frames: 3, bytes: 294, first_ns: 10, last_ns: 60 })
        );
        assert_eq!(t.keys().len(), 2);
        assert_eq!(*t.other(), KeyStats { frames: 2, bytes: 84, first_ns: 40, last_ns: 50 });
        assert_eq!(t.frames_total(), 6);
    }

    #[test]
    fn malformed_by_reason_keeps_the_last_message() {
        let mut t = Tally::new(1);
        t.count_malformed(&Malformed::VxlanTruncated { len: 3 });
        t.count_malformed(&Malformed::VxlanTruncated { len: 5 });
        t.count_malformed(&Malformed::VxlanNoVni { flags: 0 });
        let m = t.malformed();
        assert_eq!(m["vxlan-truncated"].count, 2);
        assert!(m["vxlan-truncated"].last.contains("has 5"), "{}", m["vxlan-truncated"].last);
        assert_eq!(m["vxlan-no-vni"].count, 1);
        assert_eq!(t.malformed_total(), 3);
    }

    #[test]
    fn summary_table() {
        let mut t = Tally::new(1);
        t.count(vx(100), 98, 1_700_000_000_250_000_000);
        t.count(vx(101), 98, 1_700_000_001_000_000_000);
        t.count_malformed(&Malformed::VxlanNoVni { flags: 0 });
        assert_eq!(
            t.summary().to_string(),
            "\
encap         key     frames        bytes  first seen (UTC)          last seen (UTC)
vxlan         100          1           98  2023-11-14T22:13:20.250Z  2023-11-14T22:13:20.250Z
other           -          1           98  2023-11-14T22:13:21.000Z  2023-11-14T22:13:21.000Z
  (keys beyond the first 1 get no row and no pcap file)
malformed vxlan-no-vni: 1 (last: VXLAN flags 0x00 at offset 0: the I flag (0x08) is clear, \
so there is no VNI)
total: 2 frames under 1 keys and other, 1 malformed
"
        );
    }

    /// The encapsulation column is as wide as its longest name, so that ERSPAN rows line up;
    /// without them the table is as it always was.
    #[test]
    fn summary_table_with_erspan_rows() {
        let mut t = Tally::new(4);
        t.count(vx(100), 98, 1_700_000_000_250_000_000);
        t.count(Tunnel { encap: Encap::ErspanV2, key: Some(7) }, 42, 1_700_000_000_500_000_000);
        t.count(Tunnel { encap: Encap::ErspanV1, key: Some(1023) }, 98, 1_700_000_001_000_000_000);
        assert_eq!(
            t.summary().to_string(),
            "\
encap            key     frames        bytes  first seen (UTC)          last seen (UTC)
vxlan            100          1           98  2023-11-14T22:13:20.250Z  2023-11-14T22:13:20.250Z
erspan_v1       1023          1           98  2023-11-14T22:13:21.000Z  2023-11-14T22:13:21.000Z
erspan_v2          7          1           42  2023-11-14T22:13:20.500Z  2023-11-14T22:13:20.500Z
total: 3 frames under 3 keys, 0 malformed
"
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_709_251_199_999_000_000), "2024-02-29T23:59:59.999Z");
        assert_eq!(utc(4_102_444_800_000_000_000), "2100-01-01T00:00:00.000Z");
    }
}
