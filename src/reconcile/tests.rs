//! Reconciler tests against an in-memory flow table that behaves like a switch's.

use periscope_codec::openflow::*;

use super::*;
use crate::northbound::store::Taps;
use crate::policy::mirror::plan_bridge;
use crate::policy::view::BridgeView;
use crate::policy::{cookie, DesiredFlow};

fn base_pipeline() -> Vec<DesiredFlow> {
    plan_bridge(&BridgeView::default(), &Taps::new()).flows
}

/// A switch's flow table: applies flow mods as OpenFlow says, and dumps flow stats.
#[derive(Default)]
struct FakeTable {
    flows: Vec<FlowStats>,
}

impl FakeTable {
    fn apply(&mut self, fm: &FlowMod) {
        let same = |f: &FlowStats| {
            f.table_id == fm.table_id
                && f.priority == fm.priority
                && canonical_match(&f.matches).1 == canonical_match(&fm.matches).1
        };
        match fm.command {
            FlowModCommand::Add => {
                self.flows.retain(|f| !same(f));
                self.flows.push(FlowStats {
                    table_id: fm.table_id,
                    duration_sec: 0,
                    duration_nsec: 0,
                    priority: fm.priority,
                    idle_timeout: 0,
                    hard_timeout: 0,
                    flags: 0,
                    cookie: fm.cookie,
                    packet_count: 0,
                    byte_count: 0,
                    matches: fm.matches.clone(),
                    instructions: fm.instructions.clone(),
                });
            }
            FlowModCommand::DeleteStrict => self.flows.retain(|f| {
                !(same(f) && f.cookie.0 & fm.cookie_mask == fm.cookie.0 & fm.cookie_mask)
            }),
            other => panic!("unexpected command {other:?}"),
        }
    }
}

fn foreign_flow() -> FlowStats {
    FlowStats {
        table_id: TableId(0),
        duration_sec: 1,
        duration_nsec: 0,
        priority: 0,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: Cookie(0x1234),
        packet_count: 5,
        byte_count: 500,
        // The same key as our table-miss flow, but someone else's.
        matches: Match::default(),
        instructions: vec![].into(),
    }
}

fn mirror_flow(port: u32) -> DesiredFlow {
    DesiredFlow {
        table: TableId(0),
        priority: 100,
        matches: Match::new(vec![OxmField::EthType(0x0800), OxmField::InPort(PortNo(port))]),
        instructions: vec![Instruction::ApplyActions(vec![Action::output(PortNo(9))].into())]
            .into(),
        cookie: cookie::cookie(cookie::Kind::Mirror, 7),
    }
}

fn run(r: &mut Reconciler, t: &mut FakeTable, desired: &FlowSet) -> usize {
    let mut sent = 0;
    while let Some(b) = r.plan(desired) {
        for c in &b.changes {
            t.apply(&c.flow_mod());
            sent += 1;
        }
        assert!(r.handle_confirmed(b.id).is_empty());
    }
    sent
}

#[test]
fn nothing_is_planned_before_the_switch_is_read() {
    let mut r = Reconciler::new();
    assert!(r.needs_dump());
    assert_eq!(r.plan(&desired_set(&base_pipeline())), None);
}

#[test]
fn converges_and_then_sends_nothing() {
    let mut r = Reconciler::new();
    let mut t = FakeTable::default();
    r.handle_dump(&t.flows);
    let mut want = base_pipeline();
    want.push(mirror_flow(1));
    let n = want.len();
    let desired = desired_set(&want);
    assert_eq!(run(&mut r, &mut t, &desired), n);
    assert_eq!(run(&mut r, &mut t, &desired), 0);
    // A reconnect reads the same flows back: still nothing to send.
    let mut r2 = Reconciler::new();
    r2.handle_dump(&t.flows);
    assert_eq!(r2.plan(&desired), None);
}

#[test]
fn a_recomputed_plan_and_the_confirmed_flows_share_the_unchanged_bodies() {
    let mut r = Reconciler::new();
    let mut t = FakeTable::default();
    r.handle_dump(&t.flows);
    let mut want = base_pipeline();
    want.push(mirror_flow(1));
    let old = desired_set(&want);
    run(&mut r, &mut t, &old);
    let held = |k: &FlowKey| r.actual().and_then(|a| a.get(k)).cloned();
    assert!(old.iter().all(|(k, b)| held(k).is_some_and(|h| Arc::ptr_eq(&h, b))));
    // The plan is recomputed with one flow changed: the others are the same bodies again.
    want.pop();
    want.push(mirror_flow(2));
    let mut fresh = desired_set(&want);
    share_bodies(&mut fresh, &old);
    let (same, new): (Vec<_>, Vec<_>) = fresh.iter().partition(|(k, _)| old.contains_key(*k));
    assert_eq!((same.len(), new.len()), (want.len() - 1, 1));
    assert!(same.iter().all(|(k, b)| held(k).is_some_and(|h| Arc::ptr_eq(&h, b))));
    // Only the changed flow is sent.
    assert_eq!(run(&mut r, &mut t, &fresh), 2);
}

#[test]
fn field_order_does_not_matter() {
    let mut r = Reconciler::new();
    let mut t = FakeTable::default();
    let mut f = mirror_flow(1);
    r.handle_dump(&t.flows);
    run(&mut r, &mut t, &desired_set(std::slice::from_ref(&f)));
    f.matches.fields.reverse();
    let mut r2 = Reconciler::new();
    r2.handle_dump(&t.flows);
    assert_eq!(r2.plan(&desired_set(&[f])), None);
}

#[test]
fn never_touches_flows_it_did_not_install() {
    let mut r = Reconciler::new();
    let mut t = FakeTable { flows: vec![foreign_flow()] };
    r.handle_dump(&t.flows);
    // We want a mirror flow only: the foreign table-miss flow must survive.
    run(&mut r, &mut t, &desired_set(&[mirror_flow(1)]));
    run(&mut r, &mut t, &FlowSet::new());
    assert_eq!(t.flows, vec![foreign_flow()]);
}

#[test]
fn stale_flows_are_deleted_first_and_moved_flows_replaced() {
    let mut r = Reconciler::new();
    let mut t = FakeTable::default();
    r.handle_dump(&t.flows);
    run(&mut r, &mut t, &desired_set(&[mirror_flow(1)]));
    let b = r.plan(&desired_set(&[mirror_flow(2)])).unwrap();
    assert!(matches!(b.changes[..], [Change::Delete(..), Change::Put(..)]));
    for c in &b.changes {
        t.apply(&c.flow_mod());
    }
    r.handle_confirmed(b.id);
    assert_eq!(t.flows.len(), 1);
    assert_eq!(
        t.flows[0].matches.fields.iter().filter(|f| **f == OxmField::InPort(PortNo(2))).count(),
        1
    );
}

#[test]
fn refused_flows_are_not_retried_until_desired_changes() {
    let mut r = Reconciler::new();
    r.handle_dump(&[]);
    let desired = desired_set(&[mirror_flow(1)]);
    let b = r.plan(&desired).unwrap();
    assert!(r.plan(&desired).is_none(), "one batch in flight at a time");
    r.handle_failed(b.id, 0);
    assert_eq!(r.handle_confirmed(b.id).len(), 1);
    assert!(r.plan(&desired).is_none());
    assert!(r.plan(&desired_set(&[mirror_flow(3)])).is_some());
}

/// What a switch says when a flow leaves it.
fn removed(f: &FlowStats) -> FlowRemoved {
    FlowRemoved {
        cookie: f.cookie,
        priority: f.priority,
        reason: periscope_codec::openflow::flow_removed::FlowRemovedReason::Delete,
        table_id: f.table_id,
        duration_sec: 0,
        duration_nsec: 0,
        idle_timeout: 0,
        hard_timeout: 0,
        packet_count: 0,
        byte_count: 0,
        matches: f.matches.clone(),
    }
}

#[test]
fn a_flow_of_ours_someone_else_removed_is_put_back_and_theirs_are_not_ours_to_mourn() {
    let mut r = Reconciler::new();
    let mut t = FakeTable { flows: vec![foreign_flow()] };
    r.handle_dump(&t.flows);
    let desired = desired_set(&[mirror_flow(1), mirror_flow(2)]);
    run(&mut r, &mut t, &desired);
    // The bridge's owner wipes everything (cookie mask 0): the switch reports each flow.
    let wiped = std::mem::take(&mut t.flows);
    let ours: Vec<bool> = wiped.iter().map(|f| r.handle_removed(&removed(f))).collect();
    assert_eq!(ours, vec![false, true, true], "only ours were known to us");
    assert_eq!(run(&mut r, &mut t, &desired), 2, "both put back");
    assert_eq!(run(&mut r, &mut t, &desired), 0);
}

#[test]
fn an_audit_finds_flows_gone_silently_unless_a_batch_makes_it_stale() {
    let mut r = Reconciler::new();
    let mut t = FakeTable::default();
    r.handle_dump(&t.flows);
    let desired = desired_set(&[mirror_flow(1), mirror_flow(2)]);
    run(&mut r, &mut t, &desired);
    t.flows.pop();
    let read = t.flows.clone();
    // Read while a batch is in flight: the read may predate the batch, so it proves nothing.
    let busy = r.plan(&desired_set(&[mirror_flow(1), mirror_flow(2), mirror_flow(3)]));
    assert!(busy.is_some());
    assert_eq!(r.handle_audit(&read), 0);
    r.handle_confirmed(busy.map_or(0, |b| b.id));
    r.handle_dump(&t.flows);
    run(&mut r, &mut t, &desired);
    t.flows.pop();
    assert_eq!(r.handle_audit(&t.flows), 1);
    assert_eq!(run(&mut r, &mut t, &desired), 1, "put back");
}
