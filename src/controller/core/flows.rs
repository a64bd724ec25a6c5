//! Live flow dumps for `GET /v1/switches/{dpid}/flows`: a flow statistics request sent to the
//! switch now, answered with what the switch says it holds (in `ovs-ofctl dump-flows` syntax),
//! not with what the reconciler believes. Bounded: a few in flight, each answered within
//! [`DUMP_WAIT`] whatever the switch does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use periscope_codec::openflow::{
    Cookie, Dpid, FlowStats, FlowStatsRequest, Match, Message, MultipartRequest,
    MultipartRequestBody, OxmField, TableId,
};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::Core;
use crate::northbound::api::ApiReply;
use crate::openflow::driver::{ConnId, Request};
use crate::policy::cookie;
use crate::policy::trace::{Output, Packet, Pipeline};
use crate::reconcile::{canonical_match, ours_set, FlowBody, FlowKey, FlowSet};

/// The first tag of live dumps; they use the next [`TAG_SPAN`] tags, far above batch tags and
/// below the controller's fixed tags.
const TAG_BASE: u64 = u64::MAX - (1 << 32);
/// How many tags live dumps cycle through.
const TAG_SPAN: u64 = 1 << 31;
/// Live dumps in flight at most, over all switches.
const MAX_IN_FLIGHT: usize = 16;
/// A dump the switch has not answered after this long is answered with an error.
pub(super) const DUMP_WAIT: Duration = Duration::from_secs(5);

/// Whether a request's tag is a live dump's.
pub(super) fn is_live_dump(tag: u64) -> bool {
    (TAG_BASE..TAG_BASE + TAG_SPAN).contains(&tag)
}

/// What a live dump is for.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum DumpKind {
    /// Every flow (`ours`: only periscope's), as the switch has them.
    Flows {
        /// Only periscope's cookies.
        ours: bool,
    },
    /// Periscope's flows compared with what the bridge should hold.
    Diff,
    /// Every flow, to see where a packet with these fields goes.
    Trace(Box<Match>),
}

struct Pending {
    reply: Option<oneshot::Sender<ApiReply>>,
    kind: DumpKind,
    conn: ConnId,
    dpid: Dpid,
    since: Instant,
}

/// The live dumps waiting for their switch.
#[derive(Default)]
pub(super) struct LiveDumps {
    pending: HashMap<u64, Pending>,
    next: u64,
}

impl LiveDumps {
    /// Gives the dump `tag` the place its answer goes.
    pub(super) fn attach(&mut self, tag: u64, reply: oneshot::Sender<ApiReply>) {
        match self.pending.get_mut(&tag) {
            Some(p) => p.reply = Some(reply),
            None => {
                let _ = reply.send(ApiReply::fail(
                    500,
                    "internal",
                    "the flow dump ended before it was asked for",
                    None,
                    Value::Null,
                ));
            }
        }
    }
}

impl Core {
    /// Sends a flow dump to the switch with `dpid` (`ours`: only periscope's cookies); the
    /// answer follows once it replies.
    pub(super) fn start_flow_dump(&mut self, dpid: Dpid, kind: DumpKind) -> Result<u64, ApiReply> {
        let Some(conn) = self.by_dpid.get(&dpid).copied() else {
            let known: Vec<String> = self.by_dpid.keys().map(Dpid::to_string).collect();
            return Err(ApiReply::fail(
                404,
                "not_found",
                format!("no switch with dpid {dpid} is connected"),
                None,
                json!({ "connected": known }),
            ));
        };
        if self.dumps.pending.len() >= MAX_IN_FLIGHT {
            return Err(ApiReply::fail(
                503,
                "busy",
                format!("{MAX_IN_FLIGHT} flow dumps are already waiting for their switches"),
                None,
                Value::Null,
            ));
        }
        let tag = TAG_BASE + self.dumps.next % TAG_SPAN;
        self.dumps.next += 1;
        let mut req = FlowStatsRequest::default();
        if matches!(kind, DumpKind::Flows { ours: true } | DumpKind::Diff) {
            req.cookie = Cookie(cookie::MAGIC);
            req.cookie_mask = cookie::OURS_MASK;
        }
        let msg = Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MultipartRequestBody::Flow(Box::new(req)),
        });
        let p = Pending { reply: None, kind, conn, dpid, since: Instant::now() };
        self.dumps.pending.insert(tag, p);
        self.send(conn, vec![Request { msg, tag, label: "flow dump for the API".into() }]);
        Ok(tag)
    }

    fn finish_flow_dump(&mut self, tag: u64, reply: ApiReply) {
        if let Some(Pending { reply: Some(tx), .. }) = self.dumps.pending.remove(&tag) {
            let _ = tx.send(reply);
        }
    }

    /// The switch answered a live dump.
    pub(super) fn handle_flow_dump_reply(&mut self, tag: u64, replies: Vec<Message>) {
        let Some(p) = self.dumps.pending.get(&tag) else { return };
        let (dpid, kind) = (p.dpid, p.kind.clone());
        let flows = super::flow_stats(replies);
        let bridge = self.topology.bridge_by_dpid(dpid);
        let mut body = json!({
            "dpid": dpid.to_string(),
            "hypervisor": bridge.map(|b| b.bridge.hypervisor.to_string()),
            "bridge": bridge.map(|b| b.row.name.clone()),
        });
        match kind {
            DumpKind::Flows { .. } => {
                body["flows"] = flows.iter().map(|f| f.to_string()).collect();
                body["stats"] = flows
                    .iter()
                    .map(|f| {
                        json!({
                            "cookie": format!("{:#018x}", f.cookie.0),
                            "table": f.table_id.0,
                            "packets": f.packet_count,
                            "bytes": f.byte_count,
                        })
                    })
                    .collect();
            }
            DumpKind::Trace(packet) => {
                let names: HashMap<u32, String> = self
                    .topology
                    .switch_ports()
                    .filter(|(d, _)| *d == dpid)
                    .map(|(_, p)| (p.port_no.0, p.name.clone()))
                    .collect();
                body["packet"] = json!(packet.to_string());
                body["trace"] = trace(&flows, &packet, &names);
            }
            DumpKind::Diff => {
                let empty = FlowSet::new();
                let desired = self.flowsets.get(&dpid).unwrap_or(&empty);
                let d = diff(desired, &flows);
                let busy = self
                    .switch(dpid)
                    .is_some_and(|s| s.reconciler.busy() || s.dirty_since.is_some());
                body["in_sync"] = json!(
                    d.missing.is_empty() && d.unexpected.is_empty() && d.different.is_empty()
                );
                body["reprogramming"] = json!(busy);
                body["desired"] = json!(desired.len());
                body["missing"] = json!(d.missing);
                body["unexpected"] = json!(d.unexpected);
                body["different"] = json!(d
                    .different
                    .into_iter()
                    .map(|(want, have)| json!({ "want": want, "have": have }))
                    .collect::<Vec<_>>());
            }
        }
        self.finish_flow_dump(tag, ApiReply::ok(body));
    }

    /// The switch refused a live dump.
    pub(super) fn handle_flow_dump_error(&mut self, tag: u64, error: String) {
        self.finish_flow_dump(
            tag,
            ApiReply::fail(
                502,
                "switch_error",
                format!("the switch refused the dump: {error}"),
                None,
                Value::Null,
            ),
        );
    }

    /// The connection of a switch closed: its dumps will not be answered.
    pub(super) fn flow_dumps_closed(&mut self, conn: ConnId) {
        let tags: Vec<u64> =
            self.dumps.pending.iter().filter(|(_, p)| p.conn == conn).map(|(t, _)| *t).collect();
        for tag in tags {
            self.finish_flow_dump(
                tag,
                ApiReply::fail(
                    503,
                    "unavailable",
                    "the switch disconnected before it answered the dump",
                    None,
                    Value::Null,
                ),
            );
        }
    }

    /// Answers the dumps that waited too long.
    pub(super) fn flow_dumps_tick(&mut self) {
        let late: Vec<u64> = self
            .dumps
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() > DUMP_WAIT)
            .map(|(t, _)| *t)
            .collect();
        for tag in late {
            self.finish_flow_dump(
                tag,
                ApiReply::fail(
                    504,
                    "timeout",
                    format!("the switch did not answer the dump within {DUMP_WAIT:?}"),
                    None,
                    Value::Null,
                ),
            );
        }
    }
}

/// Runs a packet through the flows of a dump: every output (port, its name, the tunnel key and
/// destination the copy left with, and its ERSPAN version, index and direction if it set them),
/// and what the model does not know.
pub(super) fn trace(flows: &[FlowStats], packet: &Match, names: &HashMap<u32, String>) -> Value {
    let mut pipeline = Pipeline::default();
    for f in flows {
        pipeline.add(f.table_id, f.priority, f.matches.clone(), f.instructions.clone());
    }
    let t = pipeline.run(&Packet::new(packet.fields.iter().cloned()));
    let tunnel = |p: &Packet| {
        let mut v = json!({
            "tun_id": p.tun_id(),
            "tun_dst": p.tun_dst().filter(|a| !a.is_unspecified()).map(|a| a.to_string()),
        });
        if let Some(version) = p.get(&OxmField::TunErspanVer(0, None)) {
            v["erspan"] = json!({
                "version": version,
                "index": p.get(&OxmField::TunErspanIdx(0, None)),
                "direction": p.get(&OxmField::TunErspanDir(0, None)),
            });
        }
        v
    };
    let outputs: Vec<Value> = t
        .outputs
        .iter()
        .map(|o| match o {
            Output::Normal(p) => {
                let mut v = tunnel(p);
                v["normal"] = json!(true);
                v
            }
            Output::Port { port, max_len, packet } => {
                let mut v = tunnel(packet);
                v["port"] = json!(port.0);
                v["port_name"] = json!(names.get(&port.0));
                v["max_len"] = json!(max_len);
                v
            }
        })
        .collect();
    json!({ "outputs": outputs, "unmodelled": t.unmodelled })
}

/// How the flows of ours a switch holds differ from what it should hold, as dump-flows lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FlowDiff {
    /// Wanted, not on the switch.
    missing: Vec<String>,
    /// Ours on the switch, not wanted.
    unexpected: Vec<String>,
    /// Same table, priority and match, other cookie or actions: (wanted, on the switch).
    different: Vec<(String, String)>,
}

/// A wanted flow in dump-flows syntax, without the age and counters it does not have.
fn wanted_line(k: &FlowKey, b: &FlowBody) -> String {
    let f = FlowStats {
        table_id: TableId(k.table),
        duration_sec: 0,
        duration_nsec: 0,
        priority: k.priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: b.cookie,
        packet_count: 0,
        byte_count: 0,
        matches: b.matches.clone(),
        instructions: b.instructions.clone(),
    };
    // The printer always writes these two; a flow that is only wanted has neither.
    f.to_string().replacen(", duration=0.000s", "", 1).replacen(" n_packets=0, n_bytes=0,", "", 1)
}

/// Compares what a bridge should hold with the flows of ours a dump shows.
pub(super) fn diff(desired: &FlowSet, dump: &[FlowStats]) -> FlowDiff {
    let actual = ours_set(dump);
    let line_of = |k: &FlowKey| {
        dump.iter()
            .find(|f| {
                f.table_id.0 == k.table
                    && f.priority == k.priority
                    && canonical_match(&f.matches).1 == k.match_wire
                    && cookie::is_ours(f.cookie)
            })
            .map(|f| f.to_string())
            .unwrap_or_default()
    };
    let mut d = FlowDiff::default();
    for (k, want) in desired {
        match actual.get(k) {
            None => d.missing.push(wanted_line(k, want)),
            Some(have) if have != want => d.different.push((wanted_line(k, want), line_of(k))),
            Some(_) => {}
        }
    }
    for k in actual.keys().filter(|k| !desired.contains_key(*k)) {
        d.unexpected.push(line_of(k));
    }
    d
}

#[cfg(test)]
mod tests {
    use periscope_codec::openflow::{Action, Instruction, Match, OxmField, PortNo};

    use super::*;
    use crate::policy::DesiredFlow;
    use crate::reconcile::desired_set;

    fn stats(table: u8, priority: u16, port: u32, out: u32) -> FlowStats {
        FlowStats {
            table_id: TableId(table),
            duration_sec: 7,
            duration_nsec: 0,
            priority,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: Cookie(cookie::MAGIC),
            packet_count: 3,
            byte_count: 180,
            matches: Match::new(vec![OxmField::InPort(PortNo(port))]),
            instructions: vec![Instruction::ApplyActions(vec![Action::output(PortNo(out))].into())]
                .into(),
        }
    }

    #[test]
    fn a_diff_names_missing_unexpected_and_different_flows() {
        let want = [stats(0, 100, 1, 2), stats(0, 100, 5, 6), stats(1, 10, 1, 2)];
        let wanted: Vec<DesiredFlow> = want
            .iter()
            .map(|f| DesiredFlow {
                table: f.table_id,
                priority: f.priority,
                matches: f.matches.clone(),
                instructions: f.instructions.clone(),
                cookie: f.cookie,
            })
            .collect();
        let desired = desired_set(&wanted);
        let mut foreign = stats(3, 1, 9, 9);
        foreign.cookie = Cookie(0x77);
        // On the switch: the first as wanted, the second with other actions, the third
        // missing, one of ours too many, and someone else's flow (never ours to judge).
        let dump = [stats(0, 100, 1, 2), stats(0, 100, 5, 7), stats(2, 1, 4, 4), foreign];
        let d = diff(&desired, &dump);
        assert_eq!(d.missing.len(), 1);
        assert!(
            d.missing[0].contains(", table=1, priority=10,in_port=1 actions=output:2"),
            "{d:?}"
        );
        assert!(
            !d.missing[0].contains("duration=") && !d.missing[0].contains("n_packets"),
            "{d:?}"
        );
        assert_eq!(d.different.len(), 1);
        assert!(
            d.different[0].0.contains("output:6") && d.different[0].1.contains("output:7"),
            "{d:?}"
        );
        assert_eq!(d.unexpected.len(), 1);
        assert!(
            d.unexpected[0].contains("table=2") && d.unexpected[0].contains("n_packets=3"),
            "{d:?}"
        );
        assert_eq!(diff(&desired_set(&[]), &[]), FlowDiff::default());
    }

    #[test]
    fn a_trace_follows_the_switchs_flows_to_each_output() {
        let mut copy = stats(0, 100, 1, 2);
        copy.instructions = vec![Instruction::ApplyActions(
            vec![
                Action::Clone(vec![
                    Action::SetField(OxmField::TunnelId(0x1092, None)),
                    Action::output(PortNo(2)),
                ]),
                Action::output(PortNo::NORMAL),
            ]
            .into(),
        )]
        .into();
        let names = HashMap::from([(2, "psc-vx-1".to_string())]);
        let packet = Match::new(vec![OxmField::InPort(PortNo(1))]);
        let t = trace(&[copy.clone()], &packet, &names);
        assert_eq!(t["outputs"][0]["port"], 2);
        assert_eq!(t["outputs"][0]["port_name"], "psc-vx-1");
        assert_eq!(t["outputs"][0]["tun_id"], 0x1092);
        assert_eq!(t["outputs"][1]["normal"], true);
        assert_eq!(t["outputs"][1]["tun_id"], Value::Null, "the clone's key stays in the clone");
        assert_eq!(t["outputs"][0].get("erspan"), None, "not ERSPAN");
        let other = Match::new(vec![OxmField::InPort(PortNo(5))]);
        assert_eq!(trace(&[copy], &other, &names)["outputs"], json!([]), "no flow: dropped");
        // An ERSPAN copy says its version and what it set.
        let mut erspan = stats(0, 100, 1, 2);
        erspan.instructions = vec![Instruction::ApplyActions(
            vec![
                Action::SetField(OxmField::TunnelId(12, None)),
                Action::SetField(OxmField::TunErspanVer(2, None)),
                Action::SetField(OxmField::TunErspanDir(1, None)),
                Action::output(PortNo(3)),
            ]
            .into(),
        )]
        .into();
        let t = trace(&[erspan], &packet, &names);
        assert_eq!(
            t["outputs"][0]["erspan"],
            json!({"version": 2, "index": null, "direction": 1}),
            "{t}"
        );
    }

    use crate::northbound::api::ApiCall;
    use crate::northbound::auth::{Caller, Role};

    fn core() -> Core {
        let log = slog::Logger::root(slog::Discard, slog::o!());
        Core::new(log, periscope_topology::TopologyConfig::default())
    }

    #[test]
    fn the_switch_calls_are_the_operators_and_name_what_is_missing() {
        let mut c = core();
        let ops = Caller::operator("ops");
        let tenant = Caller { name: "a".into(), role: Role::Tenant("bank-a".into()) };
        let flows = ApiCall::SwitchFlows { dpid: Dpid(0xaa), ours: false };
        assert_eq!(c.handle_api_as(&tenant, flows.clone()).code(), Some("operator_only"));
        let r = c.handle_api_as(&ops, flows);
        assert_eq!((r.status, r.code()), (404, Some("not_found")), "{}", r.body);
        assert!(r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("00000000000000aa")));
        let r = c.handle_api_as(&ops, ApiCall::SwitchDiff(Dpid(0xaa)));
        assert_eq!(r.status, 404);
        assert_eq!(c.handle_api_as(&tenant, ApiCall::Metrics).code(), Some("operator_only"));
        let m = c.handle_api_as(&ops, ApiCall::Metrics);
        assert!(
            m.body.as_str().is_some_and(|t| t.contains("periscope_switches_connected 0")),
            "{}",
            m.body
        );
    }

    #[test]
    fn the_log_level_is_set_only_where_the_process_allows_it() {
        let mut c = core();
        let ops = Caller::operator("ops");
        assert_eq!(c.handle_api_as(&ops, ApiCall::GetLog).status, 503);
        let control = crate::log::LevelControl::new(slog::Level::Info);
        c.set_log_control(control.clone());
        let r = c.handle_api_as(&ops, ApiCall::PutLog(json!({"level": "debug"})));
        assert_eq!((r.status, &r.body["level"]), (200, &json!("debug")));
        assert_eq!(control.level(), slog::Level::Debug);
        let r = c.handle_api_as(&ops, ApiCall::PutLog(json!({"level": "chatty"})));
        assert_eq!(
            (r.status, r.body["error"]["field"].as_str()),
            (400, Some("level")),
            "{}",
            r.body
        );
        assert_eq!(control.level(), slog::Level::Debug, "a bad level changes nothing");
        let r = c.handle_api_as(&ops, ApiCall::Events { since: None, limit: 10 });
        assert_eq!(r.body["events"], json!([]));
    }

    #[test]
    fn live_dump_tags_stay_clear_of_batch_and_fixed_tags() {
        assert!(is_live_dump(TAG_BASE) && is_live_dump(TAG_BASE + TAG_SPAN - 1));
        assert!(!is_live_dump(TAG_BASE + TAG_SPAN));
        for fixed in super::super::FIXED_TAGS {
            assert!(!is_live_dump(fixed));
        }
        let distinct: std::collections::BTreeSet<u64> = super::super::FIXED_TAGS.into();
        assert_eq!(distinct.len(), super::super::FIXED_TAGS.len(), "fixed tags collide");
        // A batch tag is the batch id shifted by 24 bits: a billion batches stay below.
        assert!(!is_live_dump((1_000_000_000u64 << 24) | 0xff_ffff));
    }
}
