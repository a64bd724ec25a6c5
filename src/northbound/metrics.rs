//! `GET /metrics`: the controller's counters in the Prometheus text exposition format 0.0.4.
//!
//! The core keeps the counters and histograms that nothing else keeps ([`Metrics`]); the gauges
//! are read from the same values `GET /v1/stats` and `GET /v1/switches` answer with, so that a
//! number is computed once whichever way it is read. Rendering is a pure function.
//!
//! The format (one family per metric, `# HELP` and `# TYPE` before its samples):
//!
//! ```text
//! # HELP periscope_reprogram_seconds Time from a change seen to the bridge's confirmation.
//! # TYPE periscope_reprogram_seconds histogram
//! periscope_reprogram_seconds_bucket{le="0.005"} 3
//! periscope_reprogram_seconds_bucket{le="+Inf"} 4
//! periscope_reprogram_seconds_sum 0.031
//! periscope_reprogram_seconds_count 4
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use periscope_codec::openflow::{ErrorMsg, MsgType};
use serde_json::Value;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds (seconds) of the barrier round trip histogram.
pub const BARRIER_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// Bucket bounds (seconds) of the reprogramming time histogram.
pub const REPROGRAM_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A cumulative histogram with fixed bucket bounds, as Prometheus keeps one.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound (not cumulative; summed when rendered).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending, `+Inf` implied).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    /// Counts one observation.
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| s <= *b) {
            self.counts[i] += 1;
        }
        self.sum += s;
        self.count += 1;
    }

    /// How many observations were counted.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The counters the core keeps for `/metrics` only.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// OpenFlow messages by direction (`"in"`, `"out"`) and type code (named when rendered,
    /// so that counting allocates nothing).
    messages: BTreeMap<(&'static str, u8), u64>,
    /// Errors switches answered requests with, by type and code name.
    errors: BTreeMap<(String, String), u64>,
    /// Frames from switches that did not parse.
    malformed: u64,
    /// What the hypervisors' OVSDB sessions reported, by kind.
    ovsdb_events: BTreeMap<&'static str, u64>,
    /// What went wrong with the hypervisors' OVSDB connections, by kind.
    ovsdb_errors: BTreeMap<&'static str, u64>,
    /// Time from a barrier request sent to its reply.
    pub barrier_rtt: Histogram,
    /// Time from a change seen to the bridge's confirmation that it holds it.
    pub reprogram: Histogram,
    /// Interfaces that came to be at two places.
    pub migrations_started: u64,
    /// Interfaces that went back to one place.
    pub migrations_finished: u64,
    /// Times this instance became the leader of the controllers sharing the bridges.
    pub leader_changes: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            messages: BTreeMap::new(),
            errors: BTreeMap::new(),
            malformed: 0,
            ovsdb_events: BTreeMap::new(),
            ovsdb_errors: BTreeMap::new(),
            barrier_rtt: Histogram::new(BARRIER_BUCKETS),
            reprogram: Histogram::new(REPROGRAM_BUCKETS),
            migrations_started: 0,
            migrations_finished: 0,
            leader_changes: 0,
        }
    }
}

fn type_name(t: MsgType) -> String {
    t.name().map_or_else(|| format!("OFPT_UNKNOWN_{}", u8::from(t)), str::to_string)
}

impl Metrics {
    /// Counts a message sent to a switch.
    pub fn sent(&mut self, t: MsgType) {
        *self.messages.entry(("out", u8::from(t))).or_default() += 1;
    }

    /// Counts a message received from a switch.
    pub fn received(&mut self, t: MsgType) {
        *self.messages.entry(("in", u8::from(t))).or_default() += 1;
    }

    /// Counts an error a switch answered with (the `OFPT_ERROR` message itself included).
    pub fn switch_error(&mut self, e: &ErrorMsg) {
        self.received(MsgType::Error);
        let ty = e
            .err_type
            .name()
            .map_or_else(|| format!("OFPET_UNKNOWN_{}", u16::from(e.err_type)), str::to_string);
        let code = e.code_name().map_or_else(|| e.code.to_string(), str::to_string);
        *self.errors.entry((ty, code)).or_default() += 1;
    }

    /// Counts a frame that did not parse.
    pub fn malformed(&mut self) {
        self.malformed += 1;
    }

    /// Counts what a hypervisor's OVSDB session reported (`update`, `txn_reply`, ...).
    pub fn ovsdb_event(&mut self, kind: &'static str) {
        *self.ovsdb_events.entry(kind).or_default() += 1;
    }

    /// Counts what went wrong with a hypervisor's OVSDB connection (`echo_timeout`, ...).
    pub fn ovsdb_error(&mut self, kind: &'static str) {
        *self.ovsdb_errors.entry(kind).or_default() += 1;
    }

    /// Message and error totals since the start (`GET /v1/stats`'s `messages`; the shell's
    /// `stats` turns two readings into rates).
    pub fn totals(&self) -> Value {
        let dir = |d: &str| -> u64 {
            self.messages.iter().filter(|((x, _), _)| *x == d).map(|(_, n)| n).sum()
        };
        serde_json::json!({
            "openflow_in": dir("in"),
            "openflow_out": dir("out"),
            "openflow_errors": self.errors.values().sum::<u64>(),
            "openflow_malformed": self.malformed,
            "ovsdb_events": self.ovsdb_events.values().sum::<u64>(),
            "ovsdb_errors": self.ovsdb_errors.values().sum::<u64>(),
        })
    }

    /// The whole exposition: the gauges from `stats` (the body of `GET /v1/stats`) and
    /// `switches` (the body of `GET /v1/switches`), then the counters and histograms.
    pub fn render(&self, stats: &Value, switches: &Value) -> String {
        let mut out = Exposition::default();
        for (key, name, help) in GAUGES {
            if let Some(v) = stats.get(key).and_then(Value::as_f64) {
                out.family(name, "gauge", help);
                out.sample(name, &[], v);
            }
        }
        let cluster = &stats["cluster"];
        if let Some(leader) = cluster["leader"].as_bool() {
            let name = "periscope_leader";
            out.family(
                name,
                "gauge",
                "1 while this instance programs the bridges (the elected leader, or the only \
                 controller), 0 while it follows.",
            );
            out.sample(name, &[], f64::from(u8::from(leader)));
        }
        if let Some(ms) = cluster["last_claim_ms"].as_f64() {
            let name = "periscope_leader_claim_seconds";
            out.family(
                name,
                "gauge",
                "Time from this instance's last election to MASTER confirmed on every bridge.",
            );
            out.sample(name, &[], ms / 1e3);
        }
        let name = "periscope_queue_depth";
        out.family(name, "gauge", "Items waiting in the controller's bounded queues, by queue.");
        for (q, n) in stats.get("queues").and_then(Value::as_object).into_iter().flatten() {
            if let Some(n) = n.as_f64() {
                out.sample(name, &[("queue", q)], n);
            }
        }
        let list = switches.as_array().map(Vec::as_slice).unwrap_or_default();
        for (key, name, help, scale) in SWITCH_GAUGES {
            out.family(name, "gauge", help);
            for s in list {
                let (Some(dpid), Some(v)) = (s["dpid"].as_str(), s[key].as_f64()) else { continue };
                out.sample(name, &[("dpid", dpid)], v * scale);
            }
        }
        let name = "periscope_openflow_messages_total";
        out.family(
            name,
            "counter",
            "OpenFlow messages the core sent to or handled from switches, by direction and type \
             (handshake and echo traffic the sessions answer themselves is not counted).",
        );
        for ((dir, ty), n) in &self.messages {
            let ty = type_name(MsgType::from(*ty));
            out.sample(name, &[("direction", dir), ("type", &ty)], *n as f64);
        }
        let name = "periscope_openflow_errors_total";
        out.family(name, "counter", "Errors switches answered requests with, by type and code.");
        for ((ty, code), n) in &self.errors {
            out.sample(name, &[("type", ty), ("code", code)], *n as f64);
        }
        let name = "periscope_openflow_malformed_total";
        out.family(name, "counter", "Frames from switches that could not be parsed.");
        out.sample(name, &[], self.malformed as f64);
        let name = "periscope_ovsdb_events_total";
        out.family(
            name,
            "counter",
            "What the hypervisors' OVSDB sessions reported, by type (snapshot: a monitor's \
             first reply; update: a batch of row changes; txn_reply: a transaction's answer).",
        );
        for (ty, n) in &self.ovsdb_events {
            out.sample(name, &[("type", ty)], *n as f64);
        }
        let name = "periscope_ovsdb_errors_total";
        out.family(name, "counter", "Failures of the hypervisors' OVSDB connections, by type.");
        for (ty, n) in &self.ovsdb_errors {
            out.sample(name, &[("type", ty)], *n as f64);
        }
        for (name, help, n) in [
            (
                "periscope_migrations_started_total",
                "Interfaces that came to be at two places (a live migration began).",
                self.migrations_started,
            ),
            (
                "periscope_migrations_finished_total",
                "Interfaces that went back to one place (a live migration ended).",
                self.migrations_finished,
            ),
            (
                "periscope_leader_elections_total",
                "Times this instance was elected leader of the controllers sharing the bridges.",
                self.leader_changes,
            ),
        ] {
            out.family(name, "counter", help);
            out.sample(name, &[], n as f64);
        }
        out.histogram(
            "periscope_barrier_rtt_seconds",
            "Time from a barrier request sent to the switch's reply.",
            &self.barrier_rtt,
        );
        out.histogram(
            "periscope_reprogram_seconds",
            "Time from a change seen to the bridge's confirmation that it holds it.",
            &self.reprogram,
        );
        out.text
    }
}

/// The gauges read from `GET /v1/stats`: its key, the metric, its help.
const GAUGES: &[(&str, &str, &str)] = &[
    ("switches", "periscope_switches_connected", "OpenFlow switches connected and ready."),
    (
        "switches_programmed",
        "periscope_switches_programmed",
        "Connected switches holding what they should, confirmed (progress of a reconciliation).",
    ),
    ("hypervisors", "periscope_hypervisors_connected", "Hypervisor OVSDB connections up."),
    ("tap_services", "periscope_tap_services", "Tap services configured."),
    ("tap_flows", "periscope_tap_flows", "Tap flows configured."),
    ("tap_flows_active", "periscope_tap_flows_active", "Tap flows copying from one place or more."),
    ("tenants", "periscope_tenants", "Tenants configured."),
    (
        "tunnel_ports",
        "periscope_tunnel_ports",
        "periscope's tunnel ports for copies, on all bridges.",
    ),
    (
        "northbound_writes_pending",
        "periscope_northbound_writes_pending",
        "Northbound writes sent and not yet visible.",
    ),
    ("topology_generation", "periscope_topology_generation", "The topology's generation."),
];

/// The per-switch gauges read from `GET /v1/switches`: its key, the metric, its help, the
/// factor to the metric's unit.
const SWITCH_GAUGES: &[(&str, &str, &str, f64)] = &[
    ("our_flows", "periscope_switch_flows", "Flows of ours the switch is known to hold.", 1.0),
    (
        "queue_depth",
        "periscope_switch_queue_depth",
        "Commands waiting in the switch's bounded queue.",
        1.0,
    ),
    ("echo_rtt_ms", "periscope_switch_echo_rtt_seconds", "The last echo round trip time.", 1e-3),
];

/// Text being written, one family after the other.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let val = val.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.text, "{k}=\"{val}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(v));
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut seen = 0;
        for (b, n) in h.bounds.iter().zip(&h.counts) {
            seen += n;
            self.sample(&bucket, &[("le", &number(*b))], seen as f64);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.count as f64);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], h.count as f64);
    }
}

/// A sample value as the format writes it (`+Inf`, `-Inf`, `NaN`, else Go-style floats).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use periscope_codec::openflow::ErrorType;
    use serde_json::json;

    use super::*;

    /// The samples of the exposition, `name{labels}` to value, checking every line's shape.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let mut typed = std::collections::BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
                assert!(typed.insert(name.to_string()), "{name} typed twice");
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (key, value) = line.rsplit_once(' ').expect("sample has a value");
            let name = key.split('{').next().expect("name");
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s));
            assert!(
                typed.contains(name) || family.is_some_and(|f| typed.contains(f)),
                "{name} sampled before its TYPE"
            );
            let v = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().expect("a number"),
            };
            assert!(out.insert(key.to_string(), v).is_none(), "{key} twice");
        }
        out
    }

    #[test]
    fn gauges_come_from_stats_and_switches_and_counters_accumulate() {
        let mut m = Metrics::default();
        m.sent(MsgType::FlowMod);
        m.sent(MsgType::FlowMod);
        m.received(MsgType::PacketIn);
        m.switch_error(&ErrorMsg {
            err_type: ErrorType::BadMatch,
            code: 6,
            experimenter: None,
            data: vec![],
        });
        m.malformed();
        m.ovsdb_event("snapshot");
        m.ovsdb_event("update");
        m.ovsdb_event("update");
        m.ovsdb_event("closed");
        m.ovsdb_error("echo_timeout");
        m.migrations_started = 2;
        m.migrations_finished = 1;
        m.reprogram.observe(Duration::from_millis(3));
        m.reprogram.observe(Duration::from_millis(40));
        m.reprogram.observe(Duration::from_secs(60));
        m.barrier_rtt.observe(Duration::from_micros(700));
        m.leader_changes = 2;
        let stats = json!({"switches": 2, "hypervisors": 1, "tap_flows": 3, "tap_flows_active": 1,
                           "reprogram_ms": {"count": 3}, "queues": {"api_calls": 2},
                           "cluster": {"leader": true, "last_claim_ms": 6.5}});
        let switches = json!([
            {"dpid": "00000000000000aa", "our_flows": 12, "queue_depth": 0, "echo_rtt_ms": 1.5},
            {"dpid": "00000000000000bb", "our_flows": null, "queue_depth": 4},
        ]);
        let text = m.render(&stats, &switches);
        let s = samples(&text);
        let t = m.totals();
        assert_eq!((t["openflow_out"].as_u64(), t["openflow_in"].as_u64()), (Some(2), Some(2)));
        assert_eq!((t["openflow_errors"].as_u64(), t["ovsdb_events"].as_u64()), (Some(1), Some(4)));
        assert_eq!(s["periscope_switches_connected"], 2.0);
        assert_eq!(s["periscope_ovsdb_events_total{type=\"update\"}"], 2.0);
        assert_eq!(s["periscope_ovsdb_events_total{type=\"snapshot\"}"], 1.0);
        assert_eq!(s["periscope_ovsdb_errors_total{type=\"echo_timeout\"}"], 1.0);
        assert_eq!(s["periscope_queue_depth{queue=\"api_calls\"}"], 2.0);
        assert_eq!(s["periscope_tap_flows_active"], 1.0);
        assert_eq!(s["periscope_leader"], 1.0);
        assert_eq!(s["periscope_leader_claim_seconds"], 0.0065);
        assert_eq!(s["periscope_leader_elections_total"], 2.0);
        assert!(!s.contains_key("periscope_tenants"), "absent from stats: not invented");
        assert_eq!(s["periscope_switch_flows{dpid=\"00000000000000aa\"}"], 12.0);
        assert!(!s.contains_key("periscope_switch_flows{dpid=\"00000000000000bb\"}"));
        assert_eq!(s["periscope_switch_queue_depth{dpid=\"00000000000000bb\"}"], 4.0);
        assert_eq!(s["periscope_switch_echo_rtt_seconds{dpid=\"00000000000000aa\"}"], 0.0015);
        assert_eq!(
            s["periscope_openflow_messages_total{direction=\"out\",type=\"OFPT_FLOW_MOD\"}"],
            2.0
        );
        assert_eq!(
            s["periscope_openflow_messages_total{direction=\"in\",type=\"OFPT_ERROR\"}"],
            1.0
        );
        assert_eq!(
            s["periscope_openflow_errors_total{type=\"OFPET_BAD_MATCH\",code=\"OFPBMC_BAD_FIELD\"}"],
            1.0
        );
        assert_eq!(s["periscope_openflow_malformed_total"], 1.0);
        assert_eq!(s["periscope_migrations_started_total"], 2.0);
        // Buckets are cumulative; what exceeds every bound is only in +Inf.
        assert_eq!(s["periscope_reprogram_seconds_bucket{le=\"0.001\"}"], 0.0);
        assert_eq!(s["periscope_reprogram_seconds_bucket{le=\"0.005\"}"], 1.0);
        assert_eq!(s["periscope_reprogram_seconds_bucket{le=\"0.05\"}"], 2.0);
        assert_eq!(s["periscope_reprogram_seconds_bucket{le=\"10\"}"], 2.0);
        assert_eq!(s["periscope_reprogram_seconds_bucket{le=\"+Inf\"}"], 3.0);
        assert_eq!(s["periscope_reprogram_seconds_count"], 3.0);
        assert!((s["periscope_reprogram_seconds_sum"] - 60.043).abs() < 1e-9);
        assert_eq!(s["periscope_barrier_rtt_seconds_bucket{le=\"0.001\"}"], 1.0);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::default();
        e.family("m", "gauge", "a \\ b\nc");
        e.sample("m", &[("dpid", "a\"b\\c\nd")], f64::NAN);
        assert_eq!(
            e.text,
            "# HELP m a \\\\ b\\nc\n# TYPE m gauge\nm{dpid=\"a\\\"b\\\\c\\nd\"} NaN\n"
        );
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(3.0), "3");
    }

    #[test]
    fn bad_or_empty_inputs_render_families_without_samples() {
        let text = Metrics::default().render(&json!(null), &json!({"not": "a list"}));
        let s = samples(&text);
        assert!(!s.keys().any(|k| k.starts_with("periscope_switch_")), "{text}");
        assert_eq!(s["periscope_reprogram_seconds_count"], 0.0);
    }
}
