//! Judging `[[expect]]` assertions: pure functions of what was recorded (captures, ping
//! outcomes, what the hypervisors showed at the end), so they are tested on synthetic data.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::{json, Value};

use super::spec::{direction_str, Expect};
use super::traffic::PingOutcome;
use crate::lab::{Capture, EchoKind, Encap as WireEncap, Frame};
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
    pub fn tunnel(&self) -> Option<(WireEncap, u32)> {
        let e = match self.encap {
            Encap::Vxlan => WireEncap::Vxlan,
            Encap::Gre => WireEncap::Gre,
        };
        self.key.map(|k| (e, k))
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
) -> Result<(&'a Capture, (WireEncap, u32)), String> {
    let cap = f.captures.get(collector).ok_or(format!("no capture from collector {collector}"))?;
    let svc = f.services.get(service).ok_or(format!("tap service {service} was never created"))?;
    let tun = svc
        .tunnel()
        .ok_or(format!("tap service {service} was never accepted by the controller"))?;
    Ok((cap, tun))
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
        return fail(format!(
            "{ping_name} sent nothing{}",
            ping.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        ));
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
    let dups: Vec<&Frame> = cap
        .duplicates()
        .into_iter()
        .filter(|fr| only.is_none_or(|(e, k)| fr.encap == e && fr.key == Some(k)))
        .collect();
    let echoes = cap
        .frames
        .iter()
        .filter(|fr| fr.icmp.is_some())
        .filter(|fr| only.is_none_or(|(e, k)| fr.encap == e && fr.key == Some(k)))
        .count();
    let sample: Vec<String> = dups
        .iter()
        .take(5)
        .map(|fr| {
            let e = fr
                .icmp
                .map(|e| format!("{:?} id {} seq {}", e.kind, e.id, e.seq))
                .unwrap_or_default();
            format!("{:?} key {:?} {e}", fr.encap, fr.key)
        })
        .collect();
    let detail = if dups.is_empty() {
        format!("{echoes} echo copies, none twice")
    } else {
        format!("{} duplicates among {echoes} echo copies, e.g. {}", dups.len(), sample.join(", "))
    };
    (dups.is_empty(), detail, json!({"duplicates": dups.len(), "echo_frames": echoes}))
}

fn no_foreign(f: &Facts, collector: &str, tenant: &str) -> Judged {
    let Some(cap) = f.captures.get(collector) else {
        return fail(format!("no capture from collector {collector}"));
    };
    let allowed: Vec<(WireEncap, u32)> = f
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

#[cfg(test)]
mod tests;
