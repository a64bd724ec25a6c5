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
        encap: Encap::Vxlan,
        key: Some(key),
        outer_src: Ipv4Addr::new(192, 0, 2, 1),
        inner_src: ms.into(),
        inner_dst: md.into(),
        ethertype: 0x0800,
        ip_src: Some(src),
        ip_dst: Some(dst),
        icmp: Some(IcmpEcho { kind, id: 42, seq }),
        len: 98,
        erspan: None,
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
    let mut again = echo(100, EchoKind::Request, 5, 101);
    again.outer_src = Ipv4Addr::new(192, 0, 2, 2);
    frames(&mut f).push(again);
    let v = judge(&copies("a", Direction::Out, 0), &f);
    assert!(!v.passed);
    assert!(v.detail.contains("duplicated [5]"), "{}", v.detail);
    let v = judge(&no_dups(), &f);
    assert!(!v.passed);
    assert_eq!(v.measured["duplicates"], 1);
    // Both copies are named: which hypervisor made each, under which key, and when.
    let twice = &v.measured["copies_twice"][0]["copies"];
    assert_eq!(
        (twice[0]["outer_src"].as_str(), twice[1]["outer_src"].as_str()),
        (Some("192.0.2.1"), Some("192.0.2.2"))
    );
    assert_eq!((twice[0]["key"].as_u64(), twice[1]["key"].as_u64()), (Some(100), Some(100)));
    assert!(v.detail.contains("from 192.0.2.1 key 100"), "{}", v.detail);
    assert!(v.detail.contains("again from 192.0.2.2 key 100"), "{}", v.detail);
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

// ---- UDP streams, TCP transfers, reprogramming times ----

use crate::lab::frame::{Segment, TcpFields, Transport};
use crate::scenario::traffic::stream::{StreamKind, StreamOutcome};

fn stream(kind: StreamKind) -> StreamOutcome {
    StreamOutcome {
        from_ip: A,
        to_ip: B,
        src_port: 30000,
        dst_port: 20000,
        id: 9,
        longest_gap_ms: Some(10.0),
        interval_ms: 10.0,
        ended_s: 1.0,
        ..StreamOutcome::new("s", kind, "a", "b")
    }
}

/// A copy under VXLAN 100 at `t_ms`; `fwd` from a to b, else back.
fn seg(
    fwd: bool,
    t_ms: u64,
    ip_id: u16,
    tcp: Option<TcpFields>,
    len: u32,
    udp_seq: Option<u32>,
) -> Segment {
    let (ip_src, ip_dst, src_port, dst_port) =
        if fwd { (A, B, 30000, 20000) } else { (B, A, 20000, 30000) };
    Segment {
        t_ns: T0 + t_ms * MS,
        encap: Encap::Vxlan,
        key: Some(100),
        ip_src,
        ip_dst,
        ip_id,
        transport: if tcp.is_some() { Transport::Tcp } else { Transport::Udp },
        src_port,
        dst_port,
        payload_len: len,
        tcp,
        stream: udp_seq.map(|s| (9, s)),
        // Distinct frames differ; a duplicate is the same frame again.
        digest: u64::from(ip_id) << 32 | u64::from(fwd) << 31 | u64::from(udp_seq.unwrap_or(0)),
        outer_src: None,
    }
}

/// a sent 10 datagrams to b, 10 ms apart; b got 1..=10 and col1 copied each once.
fn udp_facts() -> Facts {
    let mut f = facts();
    let mut x = stream(StreamKind::Udp);
    x.sent = 10;
    x.received = 10;
    x.seqs = (1..=10).collect();
    x.times_ns = (1..=10).map(|s| T0 + s * 10 * MS).collect();
    f.streams.insert("s".into(), x);
    let segs = &mut f.captures.get_mut("col1").expect("col1").segments;
    for s in 1..=10u32 {
        segs.push(seg(true, u64::from(s) * 10, s as u16, None, 64, Some(s)));
    }
    f
}

fn stream_copies(vm: &str, direction: Direction) -> Expect {
    Expect::StreamCopies {
        collector: "col1".into(),
        service: "svc".into(),
        stream: "s".into(),
        vm: vm.into(),
        direction,
        max_loss: 0,
    }
}

fn tcp(seq: u32, flags: u8) -> Option<TcpFields> {
    Some(TcpFields { seq, ack: 0, flags })
}

/// a opened a connection to b (ISN 1000), sent 3000 bytes in 3 segments, closed; b ACKed each
/// and closed. IP ids: a's from 500 (its SYN), b's SYN-ACK 0 then from 70.
fn tcp_facts() -> Facts {
    let mut f = facts();
    let mut x = stream(StreamKind::Tcp);
    x.sent = 3000;
    x.received = 3000;
    x.times_ns = vec![T0 + 20 * MS, T0 + 30 * MS, T0 + 40 * MS];
    f.streams.insert("s".into(), x);
    let segs = &mut f.captures.get_mut("col1").expect("col1").segments;
    segs.push(seg(true, 0, 500, tcp(1000, 0x02), 0, None));
    segs.push(seg(false, 1, 0, tcp(7000, 0x12), 0, None));
    segs.push(seg(true, 2, 501, tcp(1001, 0x10), 0, None));
    for i in 0..3u32 {
        let t = 20 + u64::from(i) * 10;
        segs.push(seg(true, t, 502 + i as u16, tcp(1001 + i * 1000, 0x18), 1000, None));
        segs.push(seg(false, t + 1, 70 + i as u16, tcp(7001, 0x10), 0, None));
    }
    segs.push(seg(true, 60, 505, tcp(4001, 0x11), 0, None));
    segs.push(seg(false, 61, 73, tcp(7001, 0x11), 0, None));
    segs.push(seg(true, 62, 506, tcp(4002, 0x10), 0, None));
    f
}

fn segments(f: &mut Facts) -> &mut Vec<Segment> {
    &mut f.captures.get_mut("col1").expect("col1").segments
}

#[test]
fn every_udp_datagram_received_must_be_copied_once() {
    let f = udp_facts();
    for (vm, d) in [("a", Direction::Out), ("b", Direction::In), ("b", Direction::Both)] {
        let v = judge(&stream_copies(vm, d), &f);
        assert!(v.passed, "{vm} {d:?}: {}", v.detail);
    }
    // A lost copy of a datagram the receiver got fails; one it never got is not owed.
    let mut lost = udp_facts();
    segments(&mut lost).retain(|s| s.stream != Some((9, 4)));
    let v = judge(&stream_copies("a", Direction::Out), &lost);
    assert!(!v.passed && v.detail.contains("missing [4]"), "{}", v.detail);
    if let Some(x) = lost.streams.get_mut("s") {
        x.seqs.retain(|s| *s != 4);
    }
    assert!(judge(&stream_copies("a", Direction::Out), &lost).passed);
    // A doubled copy fails the copies and no_duplicates.
    let mut doubled = udp_facts();
    let mut again = segments(&mut doubled)[2].clone();
    again.outer_src = Some(Ipv4Addr::new(192, 0, 2, 3));
    segments(&mut doubled).push(again);
    let v = judge(&stream_copies("b", Direction::In), &doubled);
    assert!(!v.passed && v.detail.contains("duplicated [3]"), "{}", v.detail);
    let v = judge(&no_dups(), &doubled);
    assert!(!v.passed);
    assert!(
        v.detail.contains("from ? key 100") && v.detail.contains("again from 192.0.2.3"),
        "{}",
        v.detail
    );
    // Another stream's datagrams (another id) are not this one's.
    let mut other = udp_facts();
    for s in segments(&mut other) {
        s.stream = s.stream.map(|(_, q)| (8, q));
    }
    assert!(!judge(&stream_copies("a", Direction::Out), &other).passed);
}

#[test]
fn every_tcp_segment_each_way_is_owed_by_its_ip_id_and_every_byte_by_its_sequence() {
    let f = tcp_facts();
    for (vm, d) in [("a", Direction::Both), ("b", Direction::Both), ("a", Direction::Out)] {
        let v = judge(&stream_copies(vm, d), &f);
        assert!(v.passed, "{vm} {d:?}: {}", v.detail);
    }
    assert!(judge(&no_dups(), &f).passed);
    // A data segment missing: a hole in the ip ids and in the bytes.
    let mut lost = tcp_facts();
    segments(&mut lost).retain(|s| s.ip_id != 503);
    let v = judge(&stream_copies("a", Direction::Out), &lost);
    assert!(!v.passed, "{}", v.detail);
    assert!(
        v.detail.contains("missing ip ids") && v.detail.contains("1000 of 3000 bytes"),
        "{}",
        v.detail
    );
    // A retransmission that was copied covers the bytes, but the lost copy still counts.
    segments(&mut lost).push(seg(true, 55, 507, tcp(2001, 0x18), 1000, None));
    let v = judge(&stream_copies("a", Direction::Out), &lost);
    assert!(!v.passed && !v.detail.contains("bytes never copied"), "{}", v.detail);
    // A missing ACK of the receiver fails only the direction it belongs to.
    let mut ack = tcp_facts();
    segments(&mut ack).retain(|s| !(s.ip_src == B && s.ip_id == 71));
    assert!(judge(&stream_copies("a", Direction::Out), &ack).passed);
    let v = judge(&stream_copies("a", Direction::In), &ack);
    assert!(!v.passed && v.detail.contains("missing ip ids +[1]"), "{}", v.detail);
    // No SYN or no FIN copied: the ends of the connection are owed too.
    let mut syn = tcp_facts();
    segments(&mut syn).retain(|s| !s.tcp.is_some_and(|t| t.syn() && s.ip_src == A));
    assert!(judge(&stream_copies("a", Direction::Out), &syn).detail.contains("no SYN"));
    let mut fin = tcp_facts();
    segments(&mut fin).retain(|s| !s.tcp.is_some_and(|t| t.fin() && s.ip_src == B));
    assert!(!judge(&stream_copies("b", Direction::Out), &fin).passed);
    // A doubled segment.
    let mut doubled = tcp_facts();
    let again = segments(&mut doubled)[4].clone();
    segments(&mut doubled).push(again);
    assert!(!judge(&stream_copies("a", Direction::Both), &doubled).passed);
    assert!(!judge(&no_dups(), &doubled).passed);
}

#[test]
fn stream_gap_no_copies_and_delivery() {
    let f = udp_facts();
    let gap = |t| Expect::StreamGap {
        collector: "col1".into(),
        service: "svc".into(),
        stream: "s".into(),
        tolerance_ms: t,
    };
    assert!(judge(&gap(5), &f).passed);
    let mut silent = udp_facts();
    segments(&mut silent).retain(|s| !matches!(s.stream, Some((_, 4..=7))));
    let v = judge(&gap(5), &silent);
    assert!(!v.passed && v.detail.contains("longest silence 50 ms"), "{}", v.detail);
    let none = Expect::NoStreamCopies { collector: "col1".into(), stream: "s".into() };
    assert!(!judge(&none, &f).passed);
    segments(&mut silent).clear();
    assert!(judge(&none, &silent).passed);
    let delivered = |m| Expect::Delivery { stream: "s".into(), max_loss: m };
    assert!(judge(&delivered(0), &f).passed);
    let mut short = udp_facts();
    if let Some(x) = short.streams.get_mut("s") {
        x.seqs.retain(|s| *s != 2 && *s != 9);
    }
    assert!(!judge(&delivered(1), &short).passed);
    assert!(judge(&delivered(2), &short).passed);
    let mut broken = tcp_facts();
    assert!(judge(&delivered(0), &broken).passed);
    if let Some(x) = broken.streams.get_mut("s") {
        x.intact = false;
    }
    assert!(!judge(&delivered(0), &broken).passed);
    assert!(!judge(&delivered(0), &Facts::default()).passed);
}

#[test]
fn reprogramming_times_are_judged_per_migration_and_on_the_controllers_stats() {
    let mut f = facts();
    for (vm, ms) in [("a", Some(2.0)), ("a", Some(40.0)), ("b", Some(900.0))] {
        f.reprograms.push(ReprogramSample { vm: vm.into(), to: "hv2".into(), ms, error: None });
    }
    f.stats = Some(serde_json::json!({"count": 12, "p50": 1.0, "p99": 8.5, "max": 9.0}));
    let e = |vm: Option<&str>, max: Option<f64>, p99: Option<f64>, stats: Option<f64>| {
        Expect::Reprogram { vm: vm.map(Into::into), max_ms: max, p99_ms: p99, stats_p99_ms: stats }
    };
    assert!(judge(&e(Some("a"), Some(50.0), None, None), &f).passed);
    assert!(!judge(&e(Some("a"), Some(30.0), None, None), &f).passed);
    assert!(!judge(&e(None, Some(50.0), None, None), &f).passed, "b's migration counts");
    assert!(judge(&e(None, None, Some(1000.0), Some(10.0)), &f).passed);
    assert!(!judge(&e(None, None, None, Some(5.0)), &f).passed);
    // A migration whose time was never seen fails, and so does no migration at all.
    f.reprograms.push(ReprogramSample {
        vm: "a".into(),
        to: "hv1".into(),
        ms: None,
        error: Some("not programmed".into()),
    });
    let v = judge(&e(Some("a"), Some(50.0), None, None), &f);
    assert!(!v.passed && v.detail.contains("not programmed"), "{}", v.detail);
    assert!(!judge(&e(Some("c"), Some(50.0), None, None), &f).passed);
    assert!(!judge(&e(None, None, None, Some(5.0)), &Facts::default()).passed);
}
