//! The recent migrations, for `GET /v1/interfaces/{iface_id}` and the shell's `where`: when
//! each began and ended, and how long the bridges took to confirm their part. Observed state,
//! bounded; times are measured from the moment the core saw the change in the topology.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use periscope_codec::openflow::Dpid;
use periscope_topology::Location;
use serde_json::{json, Value};

/// Migrations remembered, over all interfaces.
const KEPT: usize = 256;

/// One migration (or direct move) of an iface-id.
#[derive(Debug, Clone)]
struct Record {
    iface_id: String,
    /// `"migration"` (at two places for a while) or `"move"` (from one place to another).
    kind: &'static str,
    wall: SystemTime,
    started: Instant,
    from: Vec<Location>,
    to: Vec<Location>,
    /// From the start to the first confirmation of a destination bridge.
    destination_programmed: Option<Duration>,
    /// From the start to the interface being at one place again.
    finished: Option<Duration>,
    /// From the end to the first confirmation of a bridge it left.
    source_cleaned: Option<Duration>,
}

fn dpids(l: &[Location]) -> impl Iterator<Item = Dpid> + '_ {
    l.iter().filter_map(|l| l.dpid)
}

/// The migrations seen recently.
#[derive(Debug, Default)]
pub(super) struct MigrationLog {
    records: VecDeque<Record>,
}

impl MigrationLog {
    fn push(&mut self, r: Record) {
        if self.records.len() == KEPT {
            self.records.pop_front();
        }
        self.records.push_back(r);
    }

    /// An iface-id came to be at new places besides the old ones.
    pub(super) fn started(
        &mut self,
        iface_id: &str,
        from: &[Location],
        to: &[Location],
        now: Instant,
    ) {
        self.push(Record {
            iface_id: iface_id.to_string(),
            kind: "migration",
            wall: SystemTime::now(),
            started: now,
            from: from.to_vec(),
            to: to.to_vec(),
            destination_programmed: None,
            finished: None,
            source_cleaned: None,
        });
    }

    /// An iface-id is back at one place, `at` (`left`: the places it left). The places are
    /// taken as they are now: at the start the new place may not have had its port number yet.
    pub(super) fn finished(
        &mut self,
        iface_id: &str,
        left: &[Location],
        at: &Location,
        now: Instant,
    ) {
        // Nothing to finish when it began before this controller started.
        let open =
            self.records.iter_mut().rev().find(|r| r.iface_id == iface_id && r.finished.is_none());
        if let Some(r) = open {
            r.finished = Some(now - r.started);
            r.from = left.to_vec();
            r.to = vec![at.clone()];
        }
    }

    /// An iface-id went from one place to another at once.
    pub(super) fn moved(&mut self, iface_id: &str, from: &Location, to: &Location, now: Instant) {
        self.push(Record {
            iface_id: iface_id.to_string(),
            kind: "move",
            wall: SystemTime::now(),
            started: now,
            from: vec![from.clone()],
            to: vec![to.clone()],
            destination_programmed: None,
            finished: Some(Duration::ZERO),
            source_cleaned: None,
        });
    }

    /// A bridge confirmed that it holds what it should.
    pub(super) fn programmed(&mut self, dpid: Dpid, now: Instant) {
        for r in self.records.iter_mut() {
            if r.destination_programmed.is_none() && dpids(&r.to).any(|d| d == dpid) {
                r.destination_programmed = Some(now - r.started);
            }
            if let (Some(f), None) = (r.finished, r.source_cleaned) {
                if dpids(&r.from).any(|d| d == dpid) && now >= r.started + f {
                    r.source_cleaned = Some(now - r.started - f);
                }
            }
        }
    }

    /// The migrations of `iface_id`, oldest first.
    pub(super) fn history(&self, iface_id: &str) -> Vec<Value> {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        let place = |l: &Location| {
            json!({
                "hypervisor": l.hypervisor.to_string(),
                "dpid": l.dpid.map(|d| d.to_string()),
                "ofport": l.ofport.map(|p| p.0),
            })
        };
        self.records
            .iter()
            .filter(|r| r.iface_id == iface_id)
            .map(|r| {
                json!({
                    "kind": r.kind,
                    "started_ms": r.wall.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_millis() as u64),
                    "from": r.from.iter().map(place).collect::<Vec<_>>(),
                    "to": r.to.iter().map(place).collect::<Vec<_>>(),
                    "destination_programmed_ms": ms(r.destination_programmed),
                    "finished_ms": ms(r.finished),
                    "source_cleaned_ms": ms(r.source_cleaned),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use periscope_codec::openflow::PortNo;
    use periscope_topology::{HypervisorId, Uuid};

    use super::*;

    fn at(hv: &str, dpid: u64) -> Location {
        Location {
            hypervisor: HypervisorId::from(hv),
            bridge: Uuid::from("b"),
            interface: Uuid::from("i"),
            dpid: Some(Dpid(dpid)),
            ofport: Some(PortNo(3)),
        }
    }

    #[test]
    fn a_migration_records_when_each_side_confirmed() {
        let mut log = MigrationLog::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        log.started("p1", &[at("hv1", 1)], &[at("hv2", 2)], t0);
        log.programmed(Dpid(1), ms(5)); // the source, before the end: not its cleanup
        log.programmed(Dpid(2), ms(12));
        log.programmed(Dpid(2), ms(30)); // only the first confirmation counts
        log.finished("p1", &[at("hv1", 1)], &at("hv2", 2), ms(400));
        log.programmed(Dpid(1), ms(409));
        let h = log.history("p1");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0]["kind"], "migration");
        assert_eq!(h[0]["to"][0]["hypervisor"], "hv2");
        assert_eq!(h[0]["destination_programmed_ms"], 12.0);
        assert_eq!(h[0]["finished_ms"], 400.0);
        assert_eq!(h[0]["source_cleaned_ms"], 9.0);
        assert!(log.history("p2").is_empty());
        log.moved("p1", &at("hv2", 2), &at("hv1", 1), ms(500));
        log.programmed(Dpid(1), ms(503));
        let h = log.history("p1");
        assert_eq!(
            (h.len(), &h[1]["kind"], &h[1]["destination_programmed_ms"]),
            (2, &json!("move"), &json!(3.0))
        );
    }

    #[test]
    fn the_log_is_bounded() {
        let mut log = MigrationLog::default();
        let now = Instant::now();
        for _ in 0..KEPT + 10 {
            log.started("p1", &[], &[], now);
        }
        assert_eq!(log.history("p1").len(), KEPT);
    }
}
