//! The report of a run: what was built, the timeline with measured times, what each collector
//! received, the pings, and the verdict on every assertion; as text for people and JSON for
//! machines.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::expect::{Facts, ReprogramSample, Verdict};
use super::traffic::stream::{StreamKind, StreamOutcome};
use super::traffic::PingOutcome;
use crate::lab::frame::Transport;
use crate::lab::{Capture, EchoKind, Encap};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every assertion held.
    Passed,
    /// At least one assertion failed.
    Failed,
    /// The run could not be completed (setup or a step failed).
    Error,
    /// Interrupted by SIGINT or SIGTERM.
    Interrupted,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Failed => 1,
            Outcome::Error => 2,
            Outcome::Interrupted => 130,
        }
    }
}

/// One timeline step as it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// 1-based position in the file.
    pub index: usize,
    /// The action's name.
    pub action: &'static str,
    /// What it did.
    pub description: String,
    /// When it was planned (seconds after the timeline start), if timed.
    pub at_s: Option<f64>,
    /// When it started.
    pub started_s: f64,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Measured details (e.g. migration phases), or the error.
    pub detail: String,
}

/// What one collector received, per (encapsulation, key).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRow {
    /// `vxlan` or `gre`.
    pub encap: String,
    /// VNI or GRE key.
    pub key: Option<u32>,
    /// The tap service that owns the key, if one does.
    pub service: Option<String>,
    /// Frames in all.
    pub frames: usize,
    /// ICMP echo requests.
    pub requests: usize,
    /// ICMP echo replies.
    pub replies: usize,
    /// UDP packets.
    pub udp: usize,
    /// TCP segments.
    pub tcp: usize,
    /// Everything else (ARP, IPv6 ND, ...).
    pub other: usize,
    /// Echo frames seen more than once.
    pub duplicates: usize,
    /// Outer source addresses (sending hypervisors).
    pub from: Vec<String>,
}

/// One collector's table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectorRecord {
    /// Name.
    pub name: String,
    /// Underlay address.
    pub ip: String,
    /// Frames in all.
    pub frames: usize,
    /// Per key.
    pub keys: Vec<KeyRow>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub file: String,
    /// Its description.
    pub description: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it could not complete, if it could not.
    pub error: Option<String>,
    /// Seconds spent building the lab, starting the controller and creating the taps.
    pub setup_s: f64,
    /// Seconds the timeline took.
    pub timeline_s: f64,
    /// Seconds in all, teardown excluded.
    pub total_s: f64,
    /// Facts about the controller (API address, transports, whether it got `--ovsdb`).
    pub controller: BTreeMap<String, String>,
    /// The timeline.
    pub steps: Vec<StepRecord>,
    /// The pings.
    pub pings: Vec<PingOutcome>,
    /// The UDP streams and TCP transfers.
    pub streams: Vec<StreamOutcome>,
    /// The reprogramming time of each migration's destination (when an expectation asks).
    pub reprograms: Vec<ReprogramSample>,
    /// What each collector received.
    pub collectors: Vec<CollectorRecord>,
    /// The assertions.
    pub expectations: Vec<Verdict>,
}

/// Builds a collector's table from its capture; keys are named after the services in `facts`.
pub fn collector_record(name: &str, ip: &str, cap: &Capture, facts: &Facts) -> CollectorRecord {
    let mut rows: BTreeMap<(Encap, Option<u32>), KeyRow> = BTreeMap::new();
    let dups = cap.duplicates();
    for fr in &cap.frames {
        let row = rows.entry(fr.tunnel()).or_insert_with(|| KeyRow {
            encap: fr.encap.name().to_string(),
            key: fr.key,
            service: facts
                .services
                .iter()
                .find(|(_, s)| {
                    s.collector == name
                        && s.tunnel().map(|(e, k)| (e, Some(k))) == Some(fr.tunnel())
                })
                .map(|(n, _)| n.clone()),
            frames: 0,
            requests: 0,
            replies: 0,
            udp: 0,
            tcp: 0,
            other: 0,
            duplicates: 0,
            from: Vec::new(),
        });
        row.frames += 1;
        match fr.icmp.map(|e| e.kind) {
            Some(EchoKind::Request) => row.requests += 1,
            Some(EchoKind::Reply) => row.replies += 1,
            None => row.other += 1,
        }
        let src = fr.outer_src.to_string();
        if !row.from.contains(&src) {
            row.from.push(src);
        }
    }
    for d in dups {
        if let Some(row) = rows.get_mut(&d.tunnel()) {
            row.duplicates += 1;
        }
    }
    for sg in &cap.segments {
        if let Some(row) = rows.get_mut(&(sg.encap, sg.key)) {
            match sg.transport {
                Transport::Udp => row.udp += 1,
                Transport::Tcp => row.tcp += 1,
            }
            row.other = row.other.saturating_sub(1);
        }
    }
    for sg in cap.segment_duplicates() {
        if let Some(row) = rows.get_mut(&(sg.encap, sg.key)) {
            row.duplicates += 1;
        }
    }
    let mut keys: Vec<KeyRow> = rows.into_values().collect();
    for k in &mut keys {
        k.from.sort();
    }
    CollectorRecord { name: name.into(), ip: ip.into(), frames: cap.frames.len(), keys }
}

/// Pads a table: one line per row, columns as wide as their widest cell.
fn table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::from(indent);
        for (c, cell) in r.iter().enumerate() {
            let w = widths.get(c).copied().unwrap_or(0);
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

impl Report {
    /// The report for people.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "scenario {} ({})", self.scenario, self.file);
        let _ = writeln!(o, "  {}", self.description);
        let _ = writeln!(
            o,
            "  setup {:.1} s, timeline {:.1} s, total {:.1} s",
            self.setup_s, self.timeline_s, self.total_s
        );
        if !self.controller.is_empty() {
            let c: Vec<String> = self.controller.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(o, "  controller: {}", c.join(", "));
        }
        o.push_str("\ntimeline\n");
        let mut rows = vec![vec![
            "#".to_string(),
            "at".into(),
            "start".into(),
            "took".into(),
            "".into(),
            "step".into(),
            "detail".into(),
        ]];
        for s in &self.steps {
            rows.push(vec![
                s.index.to_string(),
                s.at_s.map(|a| format!("{a:.1}s")).unwrap_or_else(|| "-".into()),
                format!("{:.2}s", s.started_s),
                format!("{:.0}ms", s.duration_ms),
                if s.ok { "ok".into() } else { "FAIL".into() },
                s.description.clone(),
                s.detail.clone(),
            ]);
        }
        if self.steps.is_empty() {
            o.push_str("  (no steps)\n");
        } else {
            table(&mut o, "  ", &rows);
        }
        if !self.pings.is_empty() {
            o.push_str("\npings\n");
            let mut rows = vec![vec![
                "name".to_string(),
                "from -> to".into(),
                "id".into(),
                "replies".into(),
                "lost".into(),
                "longest silence".into(),
            ]];
            for p in &self.pings {
                let lost = p.lost();
                rows.push(vec![
                    p.name.clone(),
                    format!("{} -> {}", p.from, p.to),
                    p.id.to_string(),
                    format!("{}/{}", p.received, p.sent),
                    if lost.is_empty() {
                        "0".into()
                    } else {
                        format!("{} {:?}", lost.len(), &lost[..lost.len().min(6)])
                    },
                    p.longest_reply_gap_ms
                        .map(|g| format!("{g:.0} ms"))
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            table(&mut o, "  ", &rows);
        }
        if !self.streams.is_empty() {
            o.push_str("\nstreams\n");
            let mut rows = vec![vec![
                "name".to_string(),
                "kind".into(),
                "from -> to".into(),
                "ports".into(),
                "received".into(),
                "lost".into(),
                "longest silence".into(),
                "note".into(),
            ]];
            for x in &self.streams {
                let (received, lost) = match x.kind {
                    StreamKind::Udp => {
                        let lost = x.lost();
                        (
                            format!("{}/{} datagrams", x.received, x.sent),
                            if lost.is_empty() {
                                "0".to_string()
                            } else {
                                format!("{} {:?}", lost.len(), &lost[..lost.len().min(6)])
                            },
                        )
                    }
                    StreamKind::Tcp => (
                        format!("{}/{} bytes", x.received, x.sent),
                        if x.intact { "0 (intact)".into() } else { "NOT intact".into() },
                    ),
                };
                rows.push(vec![
                    x.name.clone(),
                    format!("{:?}", x.kind).to_lowercase(),
                    format!("{} -> {}", x.from, x.to),
                    format!("{} -> {}", x.src_port, x.dst_port),
                    received,
                    lost,
                    x.longest_gap_ms.map(|g| format!("{g:.0} ms")).unwrap_or_else(|| "-".into()),
                    x.error.clone().unwrap_or_default(),
                ]);
            }
            table(&mut o, "  ", &rows);
        }
        for c in &self.collectors {
            let _ = writeln!(o, "\ncollector {} ({}): {} frames", c.name, c.ip, c.frames);
            if c.keys.is_empty() {
                o.push_str("  (nothing received)\n");
                continue;
            }
            let mut rows = vec![vec![
                "encap".to_string(),
                "key".into(),
                "service".into(),
                "frames".into(),
                "requests".into(),
                "replies".into(),
                "udp".into(),
                "tcp".into(),
                "other".into(),
                "dups".into(),
                "from".into(),
            ]];
            for k in &c.keys {
                rows.push(vec![
                    k.encap.clone(),
                    k.key.map(|k| k.to_string()).unwrap_or_else(|| "-".into()),
                    k.service.clone().unwrap_or_else(|| "(none)".into()),
                    k.frames.to_string(),
                    k.requests.to_string(),
                    k.replies.to_string(),
                    k.udp.to_string(),
                    k.tcp.to_string(),
                    k.other.to_string(),
                    k.duplicates.to_string(),
                    k.from.join(" "),
                ]);
            }
            table(&mut o, "  ", &rows);
        }
        if !self.expectations.is_empty() {
            o.push_str("\nexpectations\n");
            let rows: Vec<Vec<String>> = self
                .expectations
                .iter()
                .map(|v| {
                    vec![
                        if v.passed { "PASS".into() } else { "FAIL".into() },
                        v.description.clone(),
                        v.detail.clone(),
                    ]
                })
                .collect();
            table(&mut o, "  ", &rows);
        }
        let passed = self.expectations.iter().filter(|v| v.passed).count();
        let _ = write!(
            o,
            "\n{}: {passed}/{} expectations held",
            match self.outcome {
                Outcome::Passed => "PASSED",
                Outcome::Failed => "FAILED",
                Outcome::Error => "ERROR",
                Outcome::Interrupted => "INTERRUPTED",
            },
            self.expectations.len()
        );
        if let Some(e) = &self.error {
            let _ = write!(o, "; {e}");
        }
        o.push('\n');
        o
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::lab::{Encap, Frame, IcmpEcho};
    use crate::scenario::expect::ServiceFacts;

    fn frame(key: u32, seq: Option<u16>) -> Frame {
        Frame {
            t_ns: 1,
            encap: Encap::Vxlan,
            key: Some(key),
            outer_src: Ipv4Addr::new(192, 0, 2, 1),
            inner_src: "02:51:00:00:00:02".into(),
            inner_dst: "02:51:00:00:00:03".into(),
            ethertype: if seq.is_some() { 0x0800 } else { 0x0806 },
            ip_src: None,
            ip_dst: None,
            icmp: seq.map(|seq| IcmpEcho { kind: EchoKind::Request, id: 7, seq }),
            len: 98,
            erspan: None,
        }
    }

    #[test]
    fn collector_table_counts_per_key_and_names_services() {
        let cap = Capture {
            frames: vec![
                frame(100, Some(1)),
                frame(100, Some(1)),
                frame(100, None),
                frame(5, Some(2)),
            ],
            segments: Vec::new(),
        };
        let mut facts = Facts::default();
        facts.services.insert(
            "vx".into(),
            ServiceFacts {
                tenant: "t1".into(),
                encap: Encap::Vxlan,
                collector: "col1".into(),
                key: Some(100),
            },
        );
        let r = collector_record("col1", "192.0.2.101", &cap, &facts);
        assert_eq!(r.frames, 4);
        assert_eq!(r.keys.len(), 2);
        let k100 = r.keys.iter().find(|k| k.key == Some(100)).expect("key 100");
        assert_eq!((k100.frames, k100.requests, k100.other, k100.duplicates), (3, 2, 1, 1));
        assert_eq!(k100.service.as_deref(), Some("vx"));
        assert_eq!(r.keys.iter().find(|k| k.key == Some(5)).and_then(|k| k.service.clone()), None);
    }

    #[test]
    fn text_report_shows_steps_tables_and_verdict() {
        let r = Report {
            scenario: "basic".into(),
            file: "scenarios/basic.toml".into(),
            description: "one VM".into(),
            outcome: Outcome::Failed,
            error: None,
            setup_s: 3.0,
            timeline_s: 5.0,
            total_s: 8.0,
            controller: BTreeMap::new(),
            steps: vec![StepRecord {
                index: 1,
                action: "migrate",
                description: "migrate vm1 -> hv2".into(),
                at_s: Some(1.0),
                started_s: 1.0,
                duration_ms: 180.0,
                ok: true,
                detail: "plug 60 ms".into(),
            }],
            pings: vec![],
            streams: vec![],
            reprograms: vec![],
            collectors: vec![],
            expectations: vec![Verdict {
                kind: "ping",
                description: "ping1 loses <= 0".into(),
                passed: false,
                detail: "9/10 replies".into(),
                measured: serde_json::Value::Null,
            }],
        };
        let text = r.render();
        assert!(text.contains("migrate vm1 -> hv2"), "{text}");
        assert!(text.contains("FAIL  ping1 loses <= 0  9/10 replies"), "{text}");
        assert!(text.trim_end().ends_with("FAILED: 0/1 expectations held"), "{text}");
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["outcome"], "failed");
        assert_eq!(json["steps"][0]["duration_ms"], 180.0);
        assert_eq!(Outcome::Failed.exit_code(), 1);
    }
}
