//! Judging `[[expect]]` assertions: pure functions of what was recorded (captures, ping
//! outcomes, what the hypervisors showed at the end), so they are tested on synthetic data.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::{json, Value};

use super::spec::{direction_str, Expect};
use super::traffic::stream::{StreamKind, StreamOutcome};
use super::traffic::PingOutcome;
use crate::lab::frame::{Segment, Transport};
use crate::lab::{Capture, EchoKind, Frame};
use crate::northbound::model::{Direction, Encap};

/// A tap service as it ended up (its key comes from the controller when not asked for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceFacts {
    /// Owning tenant.
    pub tenant: String,
    /// Encapsulation.
    pub encap: Encap,
    /// The collector it sends to.
    pub collector: String,
    /// The key, once the controller accepted the service.
    pub key: Option<u32>,
}

impl ServiceFacts {
    /// The (encapsulation, key) its copies arrive under.
    pub fn tunnel(&self) -> Option<(Encap, u32)> {
        self.key.map(|k| (self.encap, k))
    }
}

/// A VM as it was (the last incarnation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmFacts {
    /// Owning tenant.
    pub tenant: String,
    /// MAC address, lowercase.
    pub mac: String,
    /// IPv4 address.
    pub ip: Ipv4Addr,
}

/// What a hypervisor showed at the end for a leftover check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Leftovers {
    /// The offending flows or ports (empty: none).
    Found(Vec<String>),
    /// They could not be read.
    Unreadable(String),
}

/// How long the controller took to reprogram a migration's destination, as its API said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReprogramSample {
    /// The migrated VM.
    pub vm: String,
    /// The destination hypervisor.
    pub to: String,
    /// `last_reprogram_ms` of the destination bridge once it was programmed; `None` when it was
    /// not seen programmed in time.
    pub ms: Option<f64>,
    /// Why there is no time, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything assertions look at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Captures by collector.
    pub captures: BTreeMap<String, Capture>,
    /// Tap services by name.
    pub services: BTreeMap<String, ServiceFacts>,
    /// VMs by name.
    pub vms: BTreeMap<String, VmFacts>,
    /// Pings by name.
    pub pings: BTreeMap<String, PingOutcome>,
    /// UDP streams and TCP transfers by name.
    pub streams: BTreeMap<String, StreamOutcome>,
    /// The reprogramming time of each migration's destination, in timeline order.
    pub reprograms: Vec<ReprogramSample>,
    /// `reprogram_ms` of the controller's GET /v1/stats at the end (`count`, `p50`, `p99`, `max`).
    pub stats: Option<Value>,
    /// Non-base periscope flows left on each hypervisor's `br-int`.
    pub leftover_flows: BTreeMap<String, Leftovers>,
    /// Tunnel ports left on each hypervisor's `br-int`.
    pub leftover_tunnels: BTreeMap<String, Leftovers>,
}

/// The verdict on one assertion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The assertion's kind.
    pub kind: &'static str,
    /// What it asserts.
    pub description: String,
    /// Whether it held.
    pub passed: bool,
    /// What was measured, for people.
    pub detail: String,
    /// What was measured, for machines.
    pub measured: Value,
}

/// Judges one assertion.
pub fn judge(e: &Expect, f: &Facts) -> Verdict {
    let (passed, detail, measured) = match e {
        Expect::Copies { collector, service, ping, vm, direction, max_loss } => {
            copies(f, collector, service, ping, vm, *direction, *max_loss)
        }
        Expect::NoDuplicates { collector, service } => {
            no_duplicates(f, collector, service.as_deref())
        }
        Expect::NoForeign { collector, tenant } => no_foreign(f, collector, tenant),
        Expect::NoCopies { collector, ping } => no_copies(f, collector, ping),
        Expect::Gap { collector, service, ping, tolerance_ms } => {
            gap(f, collector, service, ping, *tolerance_ms)
        }
        Expect::Ping { ping, max_loss } => ping_loss(f, ping, *max_loss),
        Expect::StreamCopies { collector, service, stream, vm, direction, max_loss } => {
            stream_copies(f, collector, service, stream, vm, *direction, *max_loss)
        }
        Expect::NoStreamCopies { collector, stream } => no_stream_copies(f, collector, stream),
        Expect::StreamGap { collector, service, stream, tolerance_ms } => {
            stream_gap(f, collector, service, stream, *tolerance_ms)
        }
        Expect::Delivery { stream, max_loss } => delivery(f, stream, *max_loss),
        Expect::Reprogram { vm, max_ms, p99_ms, stats_p99_ms } => {
            reprogram(f, vm.as_deref(), *max_ms, *p99_ms, *stats_p99_ms)
        }
        Expect::NoLeftoverFlows { hypervisor, .. } => {
            leftovers(f.leftover_flows.get(hypervisor), "flow")
        }
        Expect::NoLeftoverTunnelPorts { hypervisor, .. } => {
            leftovers(f.leftover_tunnels.get(hypervisor), "tunnel port")
        }
    };
    Verdict { kind: e.kind(), description: e.describe(), passed, detail, measured }
}

type Judged = (bool, String, Value);

fn fail(detail: impl Into<String>) -> Judged {
    (false, detail.into(), Value::Null)
}

/// A short list for messages: `[1, 2, 3, ... 17 in all]`.
fn few<T: std::fmt::Debug>(v: &[T]) -> String {
    if v.len() <= 8 {
        format!("{v:?}")
    } else {
        format!("{:?}... {} in all", &v[..8], v.len())
    }
}

/// Sequence numbers seen per echo kind for one ping under one key, with their counts.
fn echo_counts(frames: &[&Frame], ping: &PingOutcome, kind: EchoKind) -> BTreeMap<u16, usize> {
    let (src, dst) = match kind {
        EchoKind::Request => (ping.from_ip, ping.to_ip),
        EchoKind::Reply => (ping.to_ip, ping.from_ip),
    };
    let mut out = BTreeMap::new();
    for fr in frames {
        let Some(e) = fr.icmp else { continue };
        if e.kind == kind && e.id == ping.id && fr.ip_src == src && fr.ip_dst == dst {
            *out.entry(e.seq).or_insert(0) += 1;
        }
    }
    out
}

fn lookup<'a>(
    f: &'a Facts,
    collector: &str,
    service: &str,
) -> Result<(&'a Capture, (Encap, u32)), String> {
    let cap = f.captures.get(collector).ok_or(format!("no capture from collector {collector}"))?;
    let svc = f.services.get(service).ok_or(format!("tap service {service} was never created"))?;
    let tun = svc
        .tunnel()
        .ok_or(format!("tap service {service} was never accepted by the controller"))?;
    Ok((cap, tun))
}

/// The judgement on traffic that never sent anything (and why, when it knows).
fn sent_nothing(name: &str, error: Option<&str>) -> Judged {
    fail(format!("{name} sent nothing{}", error.map(|e| format!(": {e}")).unwrap_or_default()))
}

fn copies(
    f: &Facts,
    collector: &str,
    service: &str,
    ping_name: &str,
    vm: &str,
    direction: Direction,
    max_loss: u32,
) -> Judged {
    let (cap, (encap, key)) = match lookup(f, collector, service) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let Some(ping) = f.pings.get(ping_name) else { return fail(format!("{ping_name} never ran")) };
    if ping.sent == 0 {
        return sent_nothing(ping_name, ping.error.as_deref());
    }
    let frames: Vec<&Frame> = cap.under(encap, key).collect();
    let sender = ping.from == vm;
    // (kind, which seqs must be there). An echo is known to have crossed the VM's port only
    // when it got a reply: a request the VM's ping counted as sent may never have left it (the
    // VM's interface changes during a migration), and a copy is owed only for what crossed.
    // Against the VM's own traffic, then, a missing copy is a gap the VM did not have.
    let mut wanted: Vec<(EchoKind, &str, Vec<u32>)> = Vec::new();
    if direction.out() {
        if sender {
            wanted.push((EchoKind::Request, "requests sent", ping.replied.clone()));
        } else {
            wanted.push((EchoKind::Reply, "replies sent", ping.replied.clone()));
        }
    }
    if direction.r#in() {
        if sender {
            wanted.push((EchoKind::Reply, "replies received", ping.replied.clone()));
        } else {
            wanted.push((EchoKind::Request, "requests received", ping.replied.clone()));
        }
    }
    let mut passed = true;
    let mut parts = Vec::new();
    let mut measured = serde_json::Map::new();
    for (kind, label, required) in wanted {
        let counts = echo_counts(&frames, ping, kind);
        // seq is 16 bits on the wire; scenario pings send at most 65535.
        let missing: Vec<u32> =
            required.iter().copied().filter(|s| !counts.contains_key(&(*s as u16))).collect();
        let dups: Vec<u16> = counts.iter().filter(|(_, n)| **n > 1).map(|(s, _)| *s).collect();
        let seen = required.len() - missing.len();
        let ok = missing.len() as u64 <= u64::from(max_loss) && dups.is_empty();
        passed &= ok;
        let mut text = format!("{label} {seen}/{}", required.len());
        if !missing.is_empty() {
            text.push_str(&format!(" missing {}", few(&missing)));
        }
        if !dups.is_empty() {
            text.push_str(&format!(" duplicated {}", few(&dups)));
        }
        parts.push(text);
        measured.insert(
            label.replace(' ', "_"),
            json!({"expected": required.len(), "seen": seen, "missing": missing, "duplicated": dups}),
        );
    }
    measured.insert("direction".into(), json!(direction_str(direction)));
    (passed, parts.join("; "), Value::Object(measured))
}

fn no_duplicates(f: &Facts, collector: &str, service: Option<&str>) -> Judged {
    let Some(cap) = f.captures.get(collector) else {
        return fail(format!("no capture from collector {collector}"));
    };
    let only = match service {
        Some(s) => match lookup(f, collector, s) {
            Ok((_, t)) => Some(t),
            Err(e) => return fail(e),
        },
        None => None,
    };
    let dups: Vec<(&Frame, &Frame)> = cap
        .duplicate_pairs()
        .into_iter()
        .filter(|(fr, _)| only.is_none_or(|(e, k)| fr.encap == e && fr.key == Some(k)))
        .collect();
    let echoes = cap
        .frames
        .iter()
        .filter(|fr| fr.icmp.is_some())
        .filter(|fr| only.is_none_or(|(e, k)| fr.encap == e && fr.key == Some(k)))
        .count();
    let in_scope = |sg: &Segment| only.is_none_or(|(e, k)| sg.encap == e && sg.key == Some(k));
    let seg_dups: Vec<(&Segment, &Segment)> =
        cap.segment_duplicate_pairs().into_iter().filter(|(sg, _)| in_scope(sg)).collect();
    let segs = cap.segments.iter().filter(|sg| in_scope(sg)).count();
    // Each duplicate names what was copied twice and both copies: which hypervisor made each
    // (outer source), under which key, and when each arrived, so a user can tell which bridge
    // copied the frame it should not have.
    let mut shown: Vec<Value> = dups
        .iter()
        .map(|(first, again)| {
            let what = first
                .icmp
                .map(|e| format!("{:?} id {} seq {}", e.kind, e.id, e.seq))
                .unwrap_or_default();
            let copy = |fr: &Frame| copy_of(fr.encap, fr.key, Some(fr.outer_src), fr.t_ns);
            json!({"what": what, "copies": [copy(first), copy(again)]})
        })
        .collect();
    shown.extend(seg_dups.iter().map(|(first, again)| {
        let what = format!(
            "{:?} {}:{} -> {}:{} ip id {}",
            first.transport,
            first.ip_src,
            first.src_port,
            first.ip_dst,
            first.dst_port,
            first.ip_id
        );
        let copy = |sg: &Segment| copy_of(sg.encap, sg.key, sg.outer_src, sg.t_ns);
        json!({"what": what, "copies": [copy(first), copy(again)]})
    }));
    let n = shown.len();
    let detail = if n == 0 {
        format!("{echoes} echo copies, {segs} udp/tcp copies, none twice")
    } else {
        let sample: Vec<String> = shown.iter().take(5).map(describe_duplicate).collect();
        format!(
            "{n} duplicates among {echoes} echo and {segs} udp/tcp copies, e.g. {}",
            sample.join(", ")
        )
    };
    (
        n == 0,
        detail,
        json!({"duplicates": n, "echo_frames": echoes, "segment_duplicates": seg_dups.len(),
               "segments": segs, "copies_twice": shown}),
    )
}

/// One copy of a duplicated frame, as the report shows it.
fn copy_of(encap: Encap, key: Option<u32>, outer_src: Option<Ipv4Addr>, t_ns: u64) -> Value {
    json!({"encap": encap.name(), "key": key,
           "outer_src": outer_src.map(|a| a.to_string()), "t_ns": t_ns})
}

/// `what, from A key K at T, again from B key K at T + d ms`.
fn describe_duplicate(d: &Value) -> String {
    let c = |i: usize| &d["copies"][i];
    let from = |i: usize| c(i)["outer_src"].as_str().unwrap_or("?").to_string();
    let t = |i: usize| c(i)["t_ns"].as_u64().unwrap_or(0);
    format!(
        "{} from {} key {} at {}, again from {} key {} {:.1} ms later",
        d["what"].as_str().unwrap_or(""),
        from(0),
        c(0)["key"],
        t(0),
        from(1),
        c(1)["key"],
        t(1).saturating_sub(t(0)) as f64 / 1e6
    )
}

fn no_foreign(f: &Facts, collector: &str, tenant: &str) -> Judged {
    let Some(cap) = f.captures.get(collector) else {
        return fail(format!("no capture from collector {collector}"));
    };
    let allowed: Vec<(Encap, u32)> = f
        .services
        .values()
        .filter(|s| s.tenant == tenant && s.collector == collector)
        .filter_map(ServiceFacts::tunnel)
        .collect();
    let macs: BTreeSet<&str> =
        f.vms.values().filter(|v| v.tenant == tenant).map(|v| v.mac.as_str()).collect();
    let foreign_keys = cap.foreign_keys(&allowed);
    let foreign_frames: Vec<&Frame> = cap
        .frames
        .iter()
        .filter(|fr| allowed.iter().any(|(e, k)| fr.encap == *e && fr.key == Some(*k)))
        .filter(|fr| !macs.contains(fr.inner_src.as_str()) && !macs.contains(fr.inner_dst.as_str()))
        .collect();
    let counts = cap.count_by_key();
    let foreign_key_frames: usize =
        foreign_keys.iter().map(|k| counts.get(k).copied().unwrap_or(0)).sum();
    let passed = foreign_keys.is_empty() && foreign_frames.is_empty();
    let detail = if passed {
        format!("{} frames, all under {tenant}'s keys and of {tenant}'s VMs", cap.frames.len())
    } else {
        let keys: Vec<String> = foreign_keys.iter().map(|(e, k)| format!("{e:?} {k:?}")).collect();
        let macs: BTreeSet<String> = foreign_frames
            .iter()
            .take(20)
            .map(|fr| format!("{} -> {}", fr.inner_src, fr.inner_dst))
            .collect();
        format!(
            "{foreign_key_frames} frames under foreign keys {}; {} frames of other VMs {}",
            few(&keys),
            foreign_frames.len(),
            few(&macs.into_iter().collect::<Vec<_>>())
        )
    };
    (
        passed,
        detail,
        json!({"foreign_keys": foreign_keys.len(), "foreign_key_frames": foreign_key_frames,
               "foreign_frames": foreign_frames.len()}),
    )
}

fn no_copies(f: &Facts, collector: &str, ping_name: &str) -> Judged {
    let Some(cap) = f.captures.get(collector) else {
        return fail(format!("no capture from collector {collector}"));
    };
    let Some(ping) = f.pings.get(ping_name) else { return fail(format!("{ping_name} never ran")) };
    let ends = [ping.from_ip, ping.to_ip];
    let seen = cap
        .frames
        .iter()
        .filter(|fr| {
            fr.icmp.is_some_and(|e| e.id == ping.id)
                && ends.contains(&fr.ip_src)
                && ends.contains(&fr.ip_dst)
        })
        .count();
    let detail = format!("{seen} copies of {ping_name}'s echoes ({} sent)", ping.sent);
    (seen == 0 && ping.sent > 0, detail, json!({"copies": seen, "sent": ping.sent}))
}

fn gap(f: &Facts, collector: &str, service: &str, ping_name: &str, tolerance_ms: u64) -> Judged {
    let (cap, (encap, key)) = match lookup(f, collector, service) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let Some(ping) = f.pings.get(ping_name) else { return fail(format!("{ping_name} never ran")) };
    let ends = [ping.from_ip, ping.to_ip];
    let mut times: Vec<u64> = cap
        .under(encap, key)
        .filter(|fr| fr.icmp.is_some_and(|e| e.id == ping.id) && ends.contains(&fr.ip_src))
        .map(|fr| fr.t_ns)
        .collect();
    times.sort_unstable();
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return fail(format!("no copies of {ping_name} at all"));
    };
    let mut worst = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    // Copies that start late or stop early are silences too, measured against the replies.
    if let (Some(r0), Some(rn)) = (ping.reply_times_ns.first(), ping.reply_times_ns.last()) {
        worst = worst.max(first.saturating_sub(*r0)).max(rn.saturating_sub(*last));
    }
    let worst_ms = worst as f64 / 1e6;
    let own_ms = ping.longest_reply_gap_ms.unwrap_or(0.0).max(ping.interval_ms as f64);
    let limit = own_ms + tolerance_ms as f64;
    let passed = worst_ms <= limit;
    let detail = format!(
        "longest silence {worst_ms:.0} ms (own traffic {own_ms:.0} ms + {tolerance_ms} ms = {limit:.0} ms)"
    );
    (passed, detail, json!({"gap_ms": worst_ms, "own_gap_ms": own_ms, "limit_ms": limit}))
}

fn ping_loss(f: &Facts, ping_name: &str, max_loss: u32) -> Judged {
    let Some(ping) = f.pings.get(ping_name) else { return fail(format!("{ping_name} never ran")) };
    if let Some(e) = &ping.error {
        return fail(e.clone());
    }
    let lost = ping.lost();
    let passed = ping.sent > 0 && lost.len() as u64 <= u64::from(max_loss);
    let mut detail = format!("{}/{} replies", ping.received, ping.sent);
    if !lost.is_empty() {
        detail.push_str(&format!(", lost {}", few(&lost)));
    }
    if let Some(g) = ping.longest_reply_gap_ms {
        detail.push_str(&format!(", longest silence {g:.0} ms"));
    }
    (passed, detail, json!({"sent": ping.sent, "received": ping.received, "lost": lost}))
}

fn leftovers(l: Option<&Leftovers>, what: &str) -> Judged {
    match l {
        None => fail("not checked (the run ended early)"),
        Some(Leftovers::Unreadable(e)) => fail(format!("could not read: {e}")),
        Some(Leftovers::Found(v)) if v.is_empty() => {
            (true, format!("no {what}s left"), json!({"left": 0}))
        }
        Some(Leftovers::Found(v)) => (
            false,
            format!(
                "{} {what}s left: {}",
                v.len(),
                v.iter().take(3).cloned().collect::<Vec<_>>().join(" | ")
            ),
            json!({"left": v.len(), "items": v}),
        ),
    }
}

/// The copies of one stream under one key, split by direction: `fwd` from the sender, `rev`
/// from the receiver.
fn stream_segments<'a>(
    segs: impl Iterator<Item = &'a Segment>,
    x: &StreamOutcome,
) -> (Vec<&'a Segment>, Vec<&'a Segment>) {
    let transport = match x.kind {
        StreamKind::Udp => Transport::Udp,
        StreamKind::Tcp => Transport::Tcp,
    };
    let mut fwd = Vec::new();
    let mut rev = Vec::new();
    for sg in segs.filter(|sg| sg.transport == transport) {
        let ends = (sg.ip_src, sg.src_port, sg.ip_dst, sg.dst_port);
        if ends == (x.from_ip, x.src_port, x.to_ip, x.dst_port) {
            if x.kind == StreamKind::Tcp || sg.stream.is_some_and(|(id, _)| id == x.id) {
                fwd.push(sg);
            }
        } else if ends == (x.to_ip, x.dst_port, x.from_ip, x.src_port) {
            rev.push(sg);
        }
    }
    (fwd, rev)
}

/// Missing byte ranges of `[0, total)` given the covered ranges `[start, end)`.
fn holes(mut covered: Vec<(u64, u64)>, total: u64) -> Vec<(u64, u64)> {
    covered.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for (a, b) in covered {
        if a > at && at < total {
            out.push((at, a.min(total)));
        }
        at = at.max(b);
    }
    if at < total {
        out.push((at, total));
    }
    out
}

/// One direction of a TCP connection's copies, judged: every segment numbered between the
/// first and the last (Linux numbers a connected socket's IP ids one by one, retransmissions
/// included) arrived once, the handshake and the close are there, and, for the data, every byte
/// is covered.
fn tcp_direction(
    segs: &[&Segment],
    data_bytes: Option<u64>,
    max_loss: u32,
) -> (bool, String, Value) {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for sg in segs {
        *counts.entry(sg.digest).or_insert(0) += 1;
    }
    let dups = counts.values().filter(|n| **n > 1).count();
    let syn = segs.iter().find(|sg| sg.tcp.is_some_and(|t| t.syn()));
    let fin = segs.iter().any(|sg| sg.tcp.is_some_and(|t| t.fin()));
    // The data sender's SYN opens its numbering; the receiver's SYN-ACK comes from the
    // listener, so its numbering starts with its first segment after it.
    let numbered: Vec<&&Segment> = if data_bytes.is_some() {
        segs.iter().collect()
    } else {
        segs.iter().filter(|sg| !sg.tcp.is_some_and(|t| t.syn())).collect()
    };
    let anchor = if data_bytes.is_some() {
        syn.map(|sg| sg.ip_id)
    } else {
        numbered.iter().min_by_key(|sg| sg.t_ns).map(|sg| sg.ip_id)
    };
    let (expected, missing_ids) = match anchor {
        Some(a) => {
            let offs: BTreeSet<u16> = numbered.iter().map(|sg| sg.ip_id.wrapping_sub(a)).collect();
            let last = offs.iter().next_back().copied().unwrap_or(0);
            let missing: Vec<u16> = (0..=last).filter(|o| !offs.contains(o)).collect();
            (u32::from(last) + 1, missing)
        }
        None => (0, Vec::new()),
    };
    let mut problems = Vec::new();
    if syn.is_none() {
        problems.push("no SYN copied".to_string());
    }
    if !fin {
        problems.push("no FIN copied".to_string());
    }
    let mut byte_holes = Vec::new();
    if let (Some(total), Some(isn)) = (data_bytes, syn.and_then(|sg| sg.tcp).map(|t| t.seq)) {
        let covered: Vec<(u64, u64)> = segs
            .iter()
            .filter(|sg| sg.payload_len > 0)
            .filter_map(|sg| {
                sg.tcp.map(|t| (t.seq.wrapping_sub(isn).wrapping_sub(1), sg.payload_len))
            })
            .map(|(rel, len)| (u64::from(rel), u64::from(rel) + u64::from(len)))
            .collect();
        byte_holes = holes(covered, total);
        let missing: u64 = byte_holes.iter().map(|(a, b)| b - a).sum();
        if missing > 0 {
            problems.push(format!(
                "{missing} of {total} bytes never copied, e.g. {:?}",
                byte_holes.first()
            ));
        }
    }
    let passed =
        problems.is_empty() && dups == 0 && missing_ids.len() as u64 <= u64::from(max_loss);
    let mut text = format!("{}/{expected} segments", expected as usize - missing_ids.len());
    if !missing_ids.is_empty() {
        text.push_str(&format!(" missing ip ids +{}", few(&missing_ids)));
    }
    if dups > 0 {
        text.push_str(&format!(" {dups} duplicated"));
    }
    for p in &problems {
        text.push_str(&format!(", {p}"));
    }
    let measured = json!({
        "expected": expected, "seen": expected as usize - missing_ids.len(),
        "missing": missing_ids.len(), "duplicated": dups, "syn": syn.is_some(), "fin": fin,
        "byte_holes": byte_holes.len(),
    });
    (passed, text, measured)
}

fn stream_copies(
    f: &Facts,
    collector: &str,
    service: &str,
    stream: &str,
    vm: &str,
    direction: Direction,
    max_loss: u32,
) -> Judged {
    let (cap, (encap, key)) = match lookup(f, collector, service) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let Some(x) = f.streams.get(stream) else { return fail(format!("{stream} never ran")) };
    if x.sent == 0 {
        return sent_nothing(stream, x.error.as_deref());
    }
    let (fwd, rev) =
        stream_segments(cap.segments.iter().filter(|s| s.encap == encap && s.key == Some(key)), x);
    let sender = x.from == vm;
    let mut passed = true;
    let mut parts = Vec::new();
    let mut measured = serde_json::Map::new();
    match x.kind {
        StreamKind::Udp => {
            // A datagram is known to have crossed both VMs' ports when the receiver got it.
            let label = if sender { "datagrams sent" } else { "datagrams received" };
            let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
            for sg in &fwd {
                if let Some((_, seq)) = sg.stream {
                    *counts.entry(seq).or_insert(0) += 1;
                }
            }
            let missing: Vec<u32> =
                x.seqs.iter().copied().filter(|s| !counts.contains_key(s)).collect();
            let dups: Vec<u32> = counts.iter().filter(|(_, n)| **n > 1).map(|(s, _)| *s).collect();
            passed = missing.len() as u64 <= u64::from(max_loss) && dups.is_empty();
            let seen = x.seqs.len() - missing.len();
            let mut text = format!("{label} {seen}/{}", x.seqs.len());
            if !missing.is_empty() {
                text.push_str(&format!(" missing {}", few(&missing)));
            }
            if !dups.is_empty() {
                text.push_str(&format!(" duplicated {}", few(&dups)));
            }
            parts.push(text);
            measured.insert(
                label.replace(' ', "_"),
                json!({"expected": x.seqs.len(), "seen": seen, "missing": missing, "duplicated": dups}),
            );
        }
        StreamKind::Tcp => {
            let mut wanted: Vec<(&str, &[&Segment], bool)> = Vec::new();
            if direction.out() {
                wanted.push(("sent", if sender { &fwd } else { &rev }, sender));
            }
            if direction.r#in() {
                wanted.push(("received", if sender { &rev } else { &fwd }, !sender));
            }
            for (label, segs, data) in wanted {
                let (ok, text, m) = tcp_direction(segs, data.then_some(x.received), max_loss);
                passed &= ok;
                parts.push(format!("{label} {text}"));
                measured.insert(format!("segments_{label}"), m);
            }
        }
    }
    measured.insert("direction".into(), json!(direction_str(direction)));
    (passed, parts.join("; "), Value::Object(measured))
}

fn no_stream_copies(f: &Facts, collector: &str, stream: &str) -> Judged {
    let Some(cap) = f.captures.get(collector) else {
        return fail(format!("no capture from collector {collector}"));
    };
    let Some(x) = f.streams.get(stream) else { return fail(format!("{stream} never ran")) };
    let (fwd, rev) = stream_segments(cap.segments.iter(), x);
    let seen = fwd.len() + rev.len();
    let detail = format!("{seen} copies of {stream}'s packets ({} sent)", x.sent);
    (seen == 0 && x.sent > 0, detail, json!({"copies": seen, "sent": x.sent}))
}

fn stream_gap(
    f: &Facts,
    collector: &str,
    service: &str,
    stream: &str,
    tolerance_ms: u64,
) -> Judged {
    let (cap, (encap, key)) = match lookup(f, collector, service) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let Some(x) = f.streams.get(stream) else { return fail(format!("{stream} never ran")) };
    let (fwd, rev) =
        stream_segments(cap.segments.iter().filter(|s| s.encap == encap && s.key == Some(key)), x);
    let mut times: Vec<u64> = fwd.iter().chain(rev.iter()).map(|sg| sg.t_ns).collect();
    times.sort_unstable();
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return fail(format!("no copies of {stream} at all"));
    };
    let mut worst = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    if let (Some(r0), Some(rn)) = (x.times_ns.first(), x.times_ns.last()) {
        worst = worst.max(first.saturating_sub(*r0)).max(rn.saturating_sub(*last));
    }
    let worst_ms = worst as f64 / 1e6;
    let own_ms = x.longest_gap_ms.unwrap_or(0.0).max(x.interval_ms);
    let limit = own_ms + tolerance_ms as f64;
    let detail = format!(
        "longest silence {worst_ms:.0} ms (own traffic {own_ms:.0} ms + {tolerance_ms} ms = {limit:.0} ms)"
    );
    (
        worst_ms <= limit,
        detail,
        json!({"gap_ms": worst_ms, "own_gap_ms": own_ms, "limit_ms": limit}),
    )
}

fn delivery(f: &Facts, stream: &str, max_loss: u32) -> Judged {
    let Some(x) = f.streams.get(stream) else { return fail(format!("{stream} never ran")) };
    if let Some(e) = &x.error {
        return fail(e.clone());
    }
    match x.kind {
        StreamKind::Udp => {
            let lost = x.lost();
            let passed = x.sent > 0 && lost.len() as u64 <= u64::from(max_loss);
            let mut detail = format!("{}/{} datagrams", x.received, x.sent);
            if !lost.is_empty() {
                detail.push_str(&format!(", lost {}", few(&lost)));
            }
            if x.send_errors > 0 {
                detail.push_str(&format!(", {} sends failed", x.send_errors));
            }
            if let Some(g) = x.longest_gap_ms {
                detail.push_str(&format!(", longest silence {g:.0} ms"));
            }
            (
                passed,
                detail,
                json!({"sent": x.sent, "received": x.received, "lost": lost.len(),
                       "send_errors": x.send_errors}),
            )
        }
        StreamKind::Tcp => {
            let passed = x.intact && x.sent > 0;
            let mut detail = format!(
                "{}/{} bytes{}",
                x.received,
                x.sent,
                if x.intact { ", intact, closed cleanly" } else { ", NOT intact or not closed" }
            );
            if let Some(g) = x.longest_gap_ms {
                detail.push_str(&format!(", longest silence {g:.0} ms"));
            }
            (passed, detail, json!({"sent": x.sent, "received": x.received, "intact": x.intact}))
        }
    }
}

/// The nearest-rank quantile the controller's own statistics use.
fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied()
}

fn reprogram(
    f: &Facts,
    vm: Option<&str>,
    max_ms: Option<f64>,
    p99_ms: Option<f64>,
    stats_p99_ms: Option<f64>,
) -> Judged {
    let samples: Vec<&ReprogramSample> =
        f.reprograms.iter().filter(|r| vm.is_none_or(|v| r.vm == v)).collect();
    let mut passed = true;
    let mut parts = Vec::new();
    let mut measured = serde_json::Map::new();
    if max_ms.is_some() || p99_ms.is_some() {
        let unseen: Vec<String> = samples
            .iter()
            .filter(|r| r.ms.is_none())
            .map(|r| {
                format!("{} -> {}: {}", r.vm, r.to, r.error.clone().unwrap_or_else(|| "?".into()))
            })
            .collect();
        let mut ms: Vec<f64> = samples.iter().filter_map(|r| r.ms).collect();
        ms.sort_by(f64::total_cmp);
        let (max, p99) = (ms.last().copied(), quantile(&ms, 0.99));
        if samples.is_empty() {
            passed = false;
            parts.push("no migration measured".to_string());
        }
        if !unseen.is_empty() {
            passed = false;
            parts.push(format!("{} not measured: {}", unseen.len(), few(&unseen)));
        }
        if let (Some(limit), Some(m)) = (max_ms, max) {
            passed &= m <= limit;
        }
        if let (Some(limit), Some(p)) = (p99_ms, p99) {
            passed &= p <= limit;
        }
        if let (Some(max), Some(p99), Some(p50)) = (max, p99, quantile(&ms, 0.5)) {
            parts.push(format!(
                "{} migrations: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
                ms.len()
            ));
        }
        measured.insert(
            "migrations".into(),
            json!({"count": ms.len(), "ms": ms, "p99": p99, "max": max}),
        );
    }
    if let Some(limit) = stats_p99_ms {
        let p99 = f.stats.as_ref().and_then(|s| s.get("p99")).and_then(Value::as_f64);
        let count = f.stats.as_ref().and_then(|s| s.get("count")).and_then(Value::as_u64);
        match p99 {
            Some(p) => {
                passed &= p <= limit;
                parts.push(format!(
                    "controller: {} reprogrammings, p99 {p:.2} ms",
                    count.unwrap_or(0)
                ));
            }
            None => {
                passed = false;
                parts.push("the controller reported no reprogramming time".into());
            }
        }
        measured.insert("controller".into(), f.stats.clone().unwrap_or(Value::Null));
    }
    (passed, parts.join("; "), Value::Object(measured))
}

#[cfg(test)]
mod tests;
