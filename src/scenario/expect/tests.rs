//! Tests of the assertions on synthetic captures: what passes, and that each kind of fault a
//! controller could make (a lost copy, a doubled copy, another tenant's frame, a silence, a
//! leftover) fails the right assertion.

use std::net::Ipv4Addr;

use super::*;
use crate::lab::IcmpEcho;

const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const MAC_A: &str = "02:51:00:00:00:01";
const MAC_B: &str = "02:51:00:00:00:02";
const MS: u64 = 1_000_000;
const T0: u64 = 1_700_000_000_000_000_000;

fn echo(key: u32, kind: EchoKind, seq: u16, t_ms: u64) -> Frame {
    let (src, dst, ms, md) = match kind {
        EchoKind::Request => (A, B, MAC_A, MAC_B),
        EchoKind::Reply => (B, A, MAC_B, MAC_A),
    };
    Frame {
        t_ns: T0 + t_ms * MS,
        encap: WireEncap::Vxlan,
        key: Some(key),
        outer_src: Ipv4Addr::new(192, 0, 2, 1),
        inner_src: ms.into(),
        inner_dst: md.into(),
        ethertype: 0x0800,
        ip_src: Some(src),
        ip_dst: Some(dst),
        icmp: Some(IcmpEcho { kind, id: 42, seq }),
        len: 98,
    }
}

/// vm "a" pinged "b" 10 times, 20 ms apart, every reply came back; col1 got every copy under
/// VXLAN 100 (service "svc" of tenant t1).
fn facts() -> Facts {
    let mut frames = Vec::new();
    for seq in 1..=10u16 {
        let t = u64::from(seq) * 20;
        frames.push(echo(100, EchoKind::Request, seq, t));
        frames.push(echo(100, EchoKind::Reply, seq, t + 1));
    }
    let mut f = Facts::default();
    f.captures.insert("col1".into(), Capture { frames, segments: Vec::new() });
    f.services.insert(
        "svc".into(),
        ServiceFacts {
            tenant: "t1".into(),
            encap: Encap::Vxlan,
            collector: "col1".into(),
            key: Some(100),
        },
    );
    f.vms.insert("a".into(), VmFacts { tenant: "t1".into(), mac: MAC_A.into(), ip: A });
    f.vms.insert("b".into(), VmFacts { tenant: "t1".into(), mac: MAC_B.into(), ip: B });
    f.pings.insert(
        "p".into(),
        PingOutcome {
            name: "p".into(),
            from: "a".into(),
            to: "b".into(),
            from_ip: Some(A),
            to_ip: Some(B),
            id: 42,
            interval_ms: 20,
            sent: 10,
            received: 10,
            replied: (1..=10).collect(),
            reply_times_ns: (1..=10u64).map(|s| T0 + (s * 20 + 1) * MS).collect(),
            longest_reply_gap_ms: Some(20.0),
            ..PingOutcome::default()
        },
    );
    f
}

fn copies(vm: &str, direction: Direction, max_loss: u32) -> Expect {
    Expect::Copies {
        collector: "col1".into(),
        service: "svc".into(),
        ping: "p".into(),
        vm: vm.into(),
        direction,
        max_loss,
    }
}

fn no_dups() -> Expect {
    Expect::NoDuplicates { collector: "col1".into(), service: None }
}

fn foreign() -> Expect {
    Expect::NoForeign { collector: "col1".into(), tenant: "t1".into() }
}

fn gap(tolerance_ms: u64) -> Expect {
    Expect::Gap { collector: "col1".into(), service: "svc".into(), ping: "p".into(), tolerance_ms }
}

fn frames(f: &mut Facts) -> &mut Vec<Frame> {
    &mut f.captures.get_mut("col1").expect("col1").frames
}

#[test]
fn a_perfect_capture_passes_everything() {
    let f = facts();
    for e in [
        copies("a", Direction::Both, 0),
        copies("b", Direction::Both, 0),
        no_dups(),
        foreign(),
        gap(0),
        Expect::Ping { ping: "p".into(), max_loss: 0 },
    ] {
        let v = judge(&e, &f);
        assert!(v.passed, "{}: {}", v.description, v.detail);
    }
    let v = judge(&copies("a", Direction::Both, 0), &f);
    assert_eq!(v.detail, "requests sent 10/10; replies received 10/10");
    let v = judge(&copies("b", Direction::Both, 0), &f);
    assert_eq!(v.detail, "replies sent 10/10; requests received 10/10");
}

#[test]
fn a_lost_copy_fails_unless_allowed_and_only_in_its_direction() {
    let mut f = facts();
    frames(&mut f).retain(|fr| fr.icmp.map(|e| (e.kind, e.seq)) != Some((EchoKind::Reply, 4)));
    let v = judge(&copies("a", Direction::Both, 0), &f);
    assert!(!v.passed);
    assert!(v.detail.contains("replies received 9/10 missing [4]"), "{}", v.detail);
    assert!(judge(&copies("a", Direction::Both, 1), &f).passed);
    assert!(judge(&copies("a", Direction::Out, 0), &f).passed, "requests are all there");
    assert!(!judge(&copies("a", Direction::In, 0), &f).passed);
}

#[test]
fn copies_under_another_key_or_of_another_ping_do_not_count() {
    let mut f = facts();
    for fr in frames(&mut f).iter_mut() {
        fr.key = Some(101);
    }
    assert!(!judge(&copies("a", Direction::Both, 0), &f).passed);
    let mut f = facts();
    for fr in frames(&mut f).iter_mut() {
        if let Some(e) = fr.icmp.as_mut() {
            e.id = 43;
        }
    }
    let v = judge(&copies("a", Direction::Out, 0), &f);
    assert!(!v.passed);
    assert!(v.detail.contains("0/10"), "{}", v.detail);
}

#[test]
fn a_doubled_copy_fails_copies_and_no_duplicates() {
    let mut f = facts();
    let again = echo(100, EchoKind::Request, 5, 101);
    frames(&mut f).push(again);
    let v = judge(&copies("a", Direction::Out, 0), &f);
    assert!(!v.passed);
    assert!(v.detail.contains("duplicated [5]"), "{}", v.detail);
    let v = judge(&no_dups(), &f);
    assert!(!v.passed);
    assert_eq!(v.measured["duplicates"], 1);
    let other_service =
        Expect::NoDuplicates { collector: "col1".into(), service: Some("svc".into()) };
    assert!(!judge(&other_service, &f).passed);
}

#[test]
fn a_frame_of_another_tenant_or_under_another_key_is_foreign() {
    let mut f = facts();
    f.vms.insert(
        "x".into(),
        VmFacts { tenant: "t2".into(), mac: "02:51:00:00:00:09".into(), ip: A },
    );
    let mut theirs = echo(100, EchoKind::Request, 1, 5);
    theirs.inner_src = "02:51:00:00:00:09".into();
    theirs.inner_dst = "02:51:00:00:00:0a".into();
    frames(&mut f).push(theirs);
    let v = judge(&foreign(), &f);
    assert!(!v.passed);
    assert_eq!(v.measured["foreign_frames"], 1);
    let mut f = facts();
    frames(&mut f).push(echo(200, EchoKind::Request, 1, 5));
    let v = judge(&foreign(), &f);
    assert!(!v.passed);
    assert_eq!(v.measured["foreign_keys"], 1);
    // The same frames are fine for the tenant that owns key 200.
    f.services.insert(
        "t1-b".into(),
        ServiceFacts {
            tenant: "t1".into(),
            encap: Encap::Vxlan,
            collector: "col1".into(),
            key: Some(200),
        },
    );
    assert!(judge(&foreign(), &f).passed);
}

#[test]
fn no_copies_fails_on_a_single_copy_of_the_ping() {
    let mut f = facts();
    let e = Expect::NoCopies { collector: "col1".into(), ping: "p".into() };
    assert!(!judge(&e, &f).passed);
    frames(&mut f).clear();
    assert!(judge(&e, &f).passed);
}

#[test]
fn a_silence_longer_than_the_vms_own_fails_the_gap() {
    let mut f = facts();
    // Copies of seq 4..=7 are missing: 80 ms of silence where the VM's traffic never paused.
    frames(&mut f).retain(|fr| !fr.icmp.is_some_and(|e| (4..=7).contains(&e.seq)));
    let v = judge(&gap(20), &f);
    assert!(!v.passed, "{}", v.detail);
    assert!((v.measured["gap_ms"].as_f64().unwrap_or(0.0) - 99.0).abs() < 0.01, "{}", v.detail);
    assert!(judge(&gap(100), &f).passed);
    // The same silence in the VM's own traffic is allowed.
    f.pings.get_mut("p").expect("p").longest_reply_gap_ms = Some(100.0);
    assert!(judge(&gap(0), &f).passed);
}

#[test]
fn copies_that_stop_early_are_a_silence_too() {
    let mut f = facts();
    frames(&mut f).retain(|fr| fr.icmp.is_some_and(|e| e.seq <= 5));
    let v = judge(&gap(50), &f);
    assert!(!v.passed, "{}", v.detail);
}

#[test]
fn ping_loss_and_a_ping_that_never_ran() {
    let mut f = facts();
    let p = f.pings.get_mut("p").expect("p");
    p.replied.retain(|s| *s != 3);
    p.received = 9;
    let e = Expect::Ping { ping: "p".into(), max_loss: 0 };
    let v = judge(&e, &f);
    assert!(!v.passed);
    assert!(v.detail.starts_with("9/10 replies, lost [3]"), "{}", v.detail);
    assert!(judge(&Expect::Ping { ping: "p".into(), max_loss: 1 }, &f).passed);
    assert!(!judge(&Expect::Ping { ping: "q".into(), max_loss: 9 }, &f).passed);
    // Copies are judged against the replies the ping saw: seq 3 was never answered.
    assert!(judge(&copies("b", Direction::In, 0), &f).passed);
}

#[test]
fn a_service_the_controller_refused_fails_with_a_reason() {
    let mut f = facts();
    f.services.get_mut("svc").expect("svc").key = None;
    let v = judge(&copies("a", Direction::Both, 0), &f);
    assert!(!v.passed);
    assert!(v.detail.contains("never accepted"), "{}", v.detail);
}

#[test]
fn leftovers_pass_only_when_read_and_empty() {
    let mut f = facts();
    let e = Expect::NoLeftoverFlows { hypervisor: "hv1".into(), within_s: 1.0 };
    assert!(!judge(&e, &f).passed, "unchecked is not a pass");
    f.leftover_flows.insert("hv1".into(), Leftovers::Found(vec![]));
    assert!(judge(&e, &f).passed);
    f.leftover_flows
        .insert("hv1".into(), Leftovers::Found(vec!["cookie=0x5053020000000001".into()]));
    assert!(!judge(&e, &f).passed);
    f.leftover_flows.insert("hv1".into(), Leftovers::Unreadable("no bridge".into()));
    assert!(!judge(&e, &f).passed);
    let t = Expect::NoLeftoverTunnelPorts { hypervisor: "hv1".into(), within_s: 1.0 };
    f.leftover_tunnels.insert("hv1".into(), Leftovers::Found(vec!["x (vxlan)".into()]));
    let v = judge(&t, &f);
    assert!(!v.passed);
    assert!(v.detail.contains("1 tunnel ports left"), "{}", v.detail);
}
