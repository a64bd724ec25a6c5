//! The recent events, for `GET /v1/events` and the shell's `events [--follow]`: topology
//! changes (as the topology reports them), switches coming and going, bridges reprogrammed,
//! requests a switch refused. Numbered, so that a reader asks for what followed the last one it
//! saw; bounded, the oldest dropped first.

use std::collections::VecDeque;
use std::time::SystemTime;

use periscope_topology::{Event, EventKind, Topology};
use serde_json::{json, Value};

/// Events kept.
const KEPT: usize = 2048;
/// Events one read returns at most.
pub(super) const MAX_READ: usize = 500;

/// The recent events.
#[derive(Debug, Default)]
pub(super) struct EventLog {
    events: VecDeque<Value>,
    next: u64,
}

impl EventLog {
    /// Adds an event: its name and its fields (an object; `event` is set to the name unless
    /// the fields name it already).
    pub(super) fn push(&mut self, event: &str, fields: Value) {
        self.next += 1;
        let mut e = match fields {
            Value::Object(o) => Value::Object(o),
            other => json!({ "detail": other }),
        };
        if e.get("event").is_none() {
            e["event"] = json!(event);
        }
        e["seq"] = json!(self.next);
        let ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        e["time_ms"] = json!(ms);
        if self.events.len() == KEPT {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Adds a topology event as the topology reports it, with its generation, and with the
    /// iface-id and name of the interface it concerns while the topology still knows them.
    pub(super) fn topology(&mut self, e: &Event, topology: &Topology) {
        let mut v = json!(e.kind);
        v["generation"] = json!(e.generation.0);
        let at = match &e.kind {
            EventKind::InterfaceAppeared { location }
            | EventKind::InterfaceGone { location }
            | EventKind::InterfaceUpdated { location }
            | EventKind::LocationReady { location }
            | EventKind::LocationUnready { location } => Some(location),
            _ => None,
        };
        if let Some(i) = at.and_then(|l| topology.interface(&l.interface_ref())) {
            v["name"] = json!(i.row.name);
            if let Some(id) = i.iface_id() {
                v["iface_id"] = json!(id);
            }
        }
        self.push("topology", v);
    }

    /// The events after `since` (all kept when none), at most `limit`, oldest first; with
    /// the number to ask from next time. Without `since`, the last `limit`.
    pub(super) fn read(&self, since: Option<u64>, limit: usize) -> Value {
        let limit = limit.min(MAX_READ);
        let after: Vec<&Value> = match since {
            Some(s) => self
                .events
                .iter()
                .filter(|e| e["seq"].as_u64().is_some_and(|n| n > s))
                .take(limit)
                .collect(),
            None => self.events.iter().skip(self.events.len().saturating_sub(limit)).collect(),
        };
        let last = after.last().and_then(|e| e["seq"].as_u64()).or(since).unwrap_or(self.next);
        json!({ "events": after, "next": last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_follow_on_from_the_last_seen() {
        let mut log = EventLog::default();
        log.push("switch_connected", json!({"dpid": "00000000000000aa"}));
        log.push("bridge_reprogrammed", json!({"dpid": "00000000000000aa", "ms": 1.5}));
        let r = log.read(None, 50);
        assert_eq!(r["events"][0]["event"], "switch_connected");
        assert_eq!(r["events"][1]["seq"], 2);
        assert_eq!(r["next"], 2);
        assert_eq!(log.read(Some(2), 50)["events"], json!([]));
        assert_eq!(log.read(Some(2), 50)["next"], 2);
        log.push("x", json!({"event": "link_up"}));
        let r = log.read(Some(2), 50);
        assert_eq!((&r["events"][0]["event"], &r["next"]), (&json!("link_up"), &json!(3)));
        assert_eq!(log.read(None, 1)["events"][0]["seq"], 3, "the last one");
    }

    #[test]
    fn the_log_is_bounded() {
        let mut log = EventLog::default();
        for _ in 0..KEPT + 5 {
            log.push("x", json!({}));
        }
        let r = log.read(Some(0), MAX_READ);
        assert_eq!(r["events"][0]["seq"], 6);
        assert_eq!(r["events"].as_array().map(Vec::len), Some(MAX_READ));
    }
}
