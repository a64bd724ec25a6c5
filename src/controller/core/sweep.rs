//! The safety net under the plans: now and then every bridge's plan is recomputed whatever
//! happened, in case a change reached fewer bridges than it touched. Each change already
//! recomputes the bridges it touches, so the net only has work when something changed: a pass
//! begins when the plans' inputs differ from those the last whole pass began with, at most once
//! per [`PASS_EVERY`], and is spread over [`PASS_PARTS`] ticks. At 1000 bridges and 10,000 tap
//! flows a whole recompute takes 60-100 ms, which a migration arriving meanwhile would wait
//! for; a twentieth of it it hardly notices.

use std::collections::BTreeSet;
use std::ops::{Bound, Deref};
use std::time::{Duration, Instant};

use periscope_codec::openflow::Dpid;

use crate::policy::view::Mode;

/// How often a pass begins, at most.
pub(super) const PASS_EVERY: Duration = Duration::from_secs(2);
/// Over how many parts a pass is spread: at 1000 bridges and 10,000 tap flows a part takes
/// 5-8 ms, which is as long as a migration arriving meanwhile waits.
const PASS_PARTS: usize = 20;
/// How long after one part the next comes, at the soonest: a pass takes about [`PASS_EVERY`]
/// however often the core ticks (it ticks sooner than every 100 ms while holds settle, in the
/// middle of a wave of migrations, which the parts must not crowd).
const PART_EVERY: Duration = Duration::from_millis(100);

/// A value and the number of changes made to it, so that a reader can tell it changed without
/// comparing it (the activity of 50,000 interfaces).
#[derive(Debug, Default)]
pub(super) struct Tracked<T> {
    value: T,
    changes: u64,
}

impl<T> Tracked<T> {
    /// The value, to change: counted as a change.
    pub(super) fn edit(&mut self) -> &mut T {
        self.changes += 1;
        &mut self.value
    }

    /// How many times the value was taken to be changed.
    pub(super) fn changes(&self) -> u64 {
        self.changes
    }
}

impl<T> Deref for Tracked<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

/// What every plan is computed from, named by revisions: equal inputs give equal plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PlanInputs {
    /// The topology's revision.
    pub(super) topology: u64,
    /// The taps' revision.
    pub(super) taps: u64,
    /// The changes made to where migrating interfaces are known to run.
    pub(super) activity: u64,
    /// Who owns the bridges' forwarding.
    pub(super) mode: Mode,
}

/// Where the recompute of every plan stands.
#[derive(Debug, Default)]
pub(super) struct Sweep {
    /// The last bridge the current pass recomputed (`None`: no pass under way).
    after: Option<Dpid>,
    /// The inputs as the current pass began.
    began: Option<PlanInputs>,
    /// The inputs as the last whole pass began: every plan was recomputed from these or later.
    clean: Option<PlanInputs>,
    /// When the last pass began.
    last_began: Option<Instant>,
    /// When the last part was recomputed.
    last_part: Option<Instant>,
}

impl Sweep {
    /// The bridges to recompute at this tick, if any, out of `bridges` (every bridge with a
    /// plan or a datapath id, asked for only when a pass goes on).
    pub(super) fn next(
        &mut self,
        now: Instant,
        inputs: PlanInputs,
        bridges: impl FnOnce() -> BTreeSet<Dpid>,
    ) -> Option<BTreeSet<Dpid>> {
        if self.last_part.is_some_and(|t| now.saturating_duration_since(t) < PART_EVERY) {
            return None;
        }
        if self.after.is_none() {
            let due =
                self.last_began.is_none_or(|t| now.saturating_duration_since(t) >= PASS_EVERY);
            if self.clean == Some(inputs) || !due {
                return None;
            }
            self.began = Some(inputs);
            self.last_began = Some(now);
        }
        self.last_part = Some(now);
        let all = bridges();
        let per_tick = all.len().div_ceil(PASS_PARTS).max(1);
        let from = self.after.map_or(Bound::Unbounded, Bound::Excluded);
        let part: BTreeSet<Dpid> =
            all.range((from, Bound::Unbounded)).take(per_tick).copied().collect();
        let last = part.last().copied();
        if last.is_none() || last == all.last().copied() {
            self.after = None;
            self.clean = self.began.take();
        } else {
            self.after = last;
        }
        Some(part)
    }

    /// Every plan was just recomputed from `inputs`: no pass is needed until they change.
    pub(super) fn done(&mut self, now: Instant, inputs: PlanInputs) {
        *self = Sweep { clean: Some(inputs), last_began: Some(now), ..Sweep::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(topology: u64) -> PlanInputs {
        PlanInputs { topology, taps: 1, activity: 0, mode: Mode::Owner }
    }

    fn bridges(n: u64) -> BTreeSet<Dpid> {
        (1..=n).map(Dpid).collect()
    }

    /// Runs ticks 100 ms apart from `t`, with `all` the bridges, until a tick recomputes
    /// nothing; returns the bridges recomputed, in order, and the number of ticks that did.
    fn run(
        s: &mut Sweep,
        t: &mut Instant,
        at: PlanInputs,
        all: &BTreeSet<Dpid>,
    ) -> (Vec<Dpid>, usize) {
        let (mut seen, mut ticks) = (Vec::new(), 0);
        while let Some(part) = s.next(*t, at, || all.clone()) {
            seen.extend(part);
            ticks += 1;
            *t += Duration::from_millis(100);
        }
        (seen, ticks)
    }

    #[test]
    fn a_pass_visits_every_bridge_once_over_its_parts_then_rests_while_nothing_changes() {
        let (mut s, mut t) = (Sweep::default(), Instant::now());
        let (seen, ticks) = run(&mut s, &mut t, inputs(1), &bridges(1000));
        assert_eq!(seen, bridges(1000).into_iter().collect::<Vec<_>>());
        assert_eq!(ticks, PASS_PARTS);
        // Nothing changed: no pass however long it waits.
        t += Duration::from_secs(10);
        assert_eq!(s.next(t, inputs(1), || bridges(1000)), None);
        // A change: a whole pass again, once PASS_EVERY has gone since the last began.
        let (seen, _) = run(&mut s, &mut t, inputs(2), &bridges(1000));
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn a_change_during_a_pass_brings_another_pass() {
        let (mut s, mut t) = (Sweep::default(), Instant::now());
        let first = s.next(t, inputs(1), || bridges(40)).expect("a pass begins");
        assert_eq!(first, bridges(2));
        t += Duration::from_millis(100);
        // The inputs change while the pass goes on: it ends, and since what it began with is
        // not what holds now, a whole pass follows as soon as PASS_EVERY has gone since it
        // began; then the sweep rests.
        let (rest, _) = run(&mut s, &mut t, inputs(2), &bridges(40));
        let mut want: Vec<Dpid> = bridges(40).into_iter().skip(2).collect();
        want.extend(bridges(40));
        assert_eq!(rest, want);
        t += PASS_EVERY;
        assert_eq!(s.next(t, inputs(2), || bridges(40)), None, "then it rests");
    }

    #[test]
    fn bridges_that_come_and_go_during_a_pass_are_neither_skipped_nor_repeated() {
        let (mut s, mut t) = (Sweep::default(), Instant::now());
        let first = s.next(t, inputs(1), || bridges(200)).expect("a pass begins");
        assert_eq!(first, bridges(10));
        t += Duration::from_millis(100);
        // Bridge 5 (done) and 50 (not yet) go, 201 to 251 come: the pass goes on after 10.
        let now: BTreeSet<Dpid> =
            bridges(251).into_iter().filter(|d| d.0 != 5 && d.0 != 50).collect();
        let (rest, _) = run(&mut s, &mut t, inputs(1), &now);
        let want: Vec<Dpid> = now.iter().filter(|d| d.0 > 10).copied().collect();
        assert_eq!(rest, want);
    }

    #[test]
    fn parts_come_no_closer_than_a_tenth_of_a_second_however_often_it_ticks() {
        let (mut s, t) = (Sweep::default(), Instant::now());
        assert!(s.next(t, inputs(1), || bridges(200)).is_some());
        for ms in [0, 1, 50, 99] {
            let at = t + Duration::from_millis(ms);
            assert_eq!(s.next(at, inputs(1), || bridges(200)), None, "{ms} ms after");
        }
        let part = s.next(t + PART_EVERY, inputs(1), || bridges(200)).expect("the next part");
        assert_eq!(part.first(), Some(&Dpid(11)));
    }

    #[test]
    fn no_bridges_make_a_pass_of_nothing() {
        let (mut s, t) = (Sweep::default(), Instant::now());
        assert_eq!(s.next(t, inputs(1), BTreeSet::new), Some(BTreeSet::new()));
        assert_eq!(s.next(t + PASS_EVERY, inputs(1), BTreeSet::new), None);
    }

    #[test]
    fn a_full_recompute_counts_as_a_whole_pass() {
        let (mut s, t) = (Sweep::default(), Instant::now());
        s.done(t, inputs(3));
        assert_eq!(s.next(t + PASS_EVERY, inputs(3), || bridges(10)), None);
        assert!(s.next(t + PASS_EVERY, inputs(4), || bridges(10)).is_some());
    }

    #[test]
    fn tracked_counts_each_edit() {
        let mut v: Tracked<Vec<u8>> = Tracked::default();
        assert_eq!(v.changes(), 0);
        v.edit().push(1);
        v.edit().push(2);
        assert_eq!((v.len(), v.changes()), (2, 2));
    }
}
