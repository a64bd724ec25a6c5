//! Live flow dumps for `GET /v1/switches/{dpid}/flows`: a flow statistics request sent to the
//! switch now, answered with what the switch says it holds (in `ovs-ofctl dump-flows` syntax),
//! not with what the reconciler believes. Bounded: a few in flight, each answered within
//! [`DUMP_WAIT`] whatever the switch does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use periscope_codec::openflow::{
    Cookie, Dpid, FlowStatsRequest, Message, MultipartReplyBody, MultipartRequest,
    MultipartRequestBody,
};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::Core;
use crate::northbound::api::ApiReply;
use crate::openflow::driver::{ConnId, Request};
use crate::policy::cookie;

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

struct Pending {
    reply: Option<oneshot::Sender<ApiReply>>,
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
    pub(super) fn start_flow_dump(&mut self, dpid: Dpid, ours: bool) -> Result<u64, ApiReply> {
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
        if ours {
            req.cookie = Cookie(cookie::MAGIC);
            req.cookie_mask = cookie::OURS_MASK;
        }
        let msg = Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MultipartRequestBody::Flow(req),
        });
        self.dumps.pending.insert(tag, Pending { reply: None, conn, dpid, since: Instant::now() });
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
        let dpid = p.dpid;
        let flows: Vec<String> = replies
            .into_iter()
            .filter_map(|m| match m {
                Message::MultipartReply(r) => match r.body {
                    MultipartReplyBody::Flow(f) => Some(f),
                    _ => None,
                },
                _ => None,
            })
            .flatten()
            .map(|f| f.to_string())
            .collect();
        let bridge = self.topology.bridge_by_dpid(dpid);
        let body = json!({
            "dpid": dpid.to_string(),
            "hypervisor": bridge.map(|b| b.bridge.hypervisor.to_string()),
            "bridge": bridge.map(|b| b.row.name.clone()),
            "flows": flows,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_dump_tags_stay_clear_of_batch_and_fixed_tags() {
        assert!(is_live_dump(TAG_BASE) && is_live_dump(TAG_BASE + TAG_SPAN - 1));
        assert!(!is_live_dump(TAG_BASE + TAG_SPAN));
        for fixed in [u64::MAX, u64::MAX - 1, u64::MAX - 2] {
            assert!(!is_live_dump(fixed));
        }
        // A batch tag is the batch id shifted by 24 bits: a billion batches stay below.
        assert!(!is_live_dump((1_000_000_000u64 << 24) | 0xff_ffff));
    }
}
