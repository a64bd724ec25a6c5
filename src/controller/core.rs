//! The controller's core: one task that owns every piece of state and turns events from
//! switches (and, later, OVSDB and the northbound API) into reconciliations. It never blocks:
//! commands to a switch go into that switch's bounded queue.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use slog::{debug, info, o, warn, Logger};
use tokio::sync::mpsc::{self, error::TrySendError};

use periscope_codec::openflow::flow_mod::FLOW_MOD_SEND_FLOW_REM;
use periscope_codec::openflow::{
    Action, BufferId, ControllerRole, Dpid, Experimenter, FlowStatsRequest, Message,
    MultipartReplyBody, MultipartRequest, MultipartRequestBody, PacketOut, PortNo, RoleMsg,
    NICIRA_EXPERIMENTER_ID,
};

use periscope_topology::change::PortStatusReason;
use periscope_topology::rows::OfPort;
use periscope_topology::{
    Change, Event, EventKind, HypervisorId, Location, Millis, Topology, TopologyConfig,
};

use self::sweep::{PlanInputs, Sweep, Tracked};
use crate::discovery::{LldpError, ProbedPorts, Prober, ProberConfig};
use crate::openflow::driver::{ConnId, Request, SwitchCommand, SwitchEvent};
use crate::openflow::session::{CloseReason, SessionEvent};
use crate::ovsdb::driver::{Command as OvsdbCommand, DriverEvent, ReplyTo};
use crate::ovsdb::session::SessionEvent as OvsdbEvent;
use crate::policy::cookie;
use crate::policy::desired::{copies_delivered_frames, desired, feeding, Activity, BridgeDesired};
use crate::policy::mirror::{plan_bridge, GUEST_CONTROLLER_ID};
use crate::policy::tunnels::{plan_tunnels, TunnelChange};
use crate::policy::view::{BridgeView, Mode};
use crate::reconcile::{
    desired_set, share_bodies, Batch, Change as FlowChange, FlowSet, Reconciler,
};

mod events;
mod flows;
pub mod leadership;
mod migrations;
mod northbound;
mod sweep;
#[cfg(test)]
mod tests;

/// Tag of the flow dump that starts every reconciliation of a new connection.
const TAG_DUMP: u64 = u64::MAX;
/// Bits of a batch tag that hold the index of a change within its batch.
const INDEX_BITS: u32 = 24;
/// The index value that marks a batch's closing barrier.
const BARRIER_INDEX: u64 = (1 << INDEX_BITS) - 1;

fn batch_tag(batch: u64, index: u64) -> u64 {
    batch << INDEX_BITS | index
}

fn split_tag(tag: u64) -> (u64, u64) {
    (tag >> INDEX_BITS, tag & BARRIER_INDEX)
}

/// One connected switch.
struct Switch {
    peer: String,
    commands: mpsc::Sender<SwitchCommand>,
    dpid: Option<Dpid>,
    log: Logger,
    reconciler: Reconciler,
    /// Since when the switch has been known to need a change (for reprogramming times).
    dirty_since: Option<Instant>,
    /// How long the last change took, from noticing it to the switch's confirmation.
    last_reprogram: Option<Duration>,
    /// When the connection was accepted.
    connected_at: std::time::SystemTime,
    /// The last echo round trip time.
    echo_rtt: Option<Duration>,
    /// Its role towards this instance (several controllers).
    role: leadership::SwitchRole,
}

/// Frames a VM sent at its new place before the copies of what it receives were moved there:
/// held by the controller, released into the pipeline once every bridge involved confirmed.
struct Hold {
    frames: Vec<Vec<u8>>,
    since: Instant,
    /// The interface the VM now runs behind.
    to: periscope_topology::RowRef,
    /// Its iface-id.
    iface_id: String,
    /// How far the move of the copies of delivered frames has come.
    phase: HoldPhase,
    /// Since when it is in that phase (see [`HOLD_MAX`]).
    phase_since: Instant,
    /// The bridges that must confirm the current phase, with the batch that carries it.
    involved: Vec<(Dpid, u64)>,
    /// The bridges the interface was deleted from before its copies left them: the copies
    /// leave those too (the deletion's own batch) before they arrive here.
    left: BTreeSet<Dpid>,
}

/// The steps of moving the copies of delivered frames to where a VM now runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldPhase {
    /// The new place cannot copy yet (a tunnel port it needs is still being created): nothing
    /// has moved, the old place still copies.
    Waiting,
    /// The copies are leaving the old places (asked `since`); once they confirm, the datapaths
    /// there are given until `settled` to apply it (see [`datapath_settle`]).
    Leaving { since: Instant, settled: Option<Instant> },
    /// The copies are arriving at the new place.
    Arriving,
    /// The copies are here and the first held frame went on, teaching the bridges where the VM
    /// now is; the others follow at `until` (see [`LEARN_SETTLE`]).
    Teaching { until: Instant },
}

/// How long a bridge's datapath may go on with its old actions after the switch confirmed a
/// change, at least. Open vSwitch answers a barrier once its flow tables hold the change, but the
/// flows cached in the datapath are revalidated afterwards, by other threads, with no OpenFlow
/// message telling when: on this machine copies were seen leaving a bridge 3 ms after it confirmed
/// their removal, and 17 ms after while it was deleting a port (a margin, not a bound). The copies
/// of delivered frames arrive at the new place only this long after the old places confirmed they
/// left (longer when they were slow to confirm: [`datapath_settle`]), so that no frame passing
/// both is copied at both.
const DATAPATH_SETTLE: Duration = Duration::from_millis(50);
/// The margin at most, well below [`HOLD_MAX`]: a hypervisor that slow makes the VM's traffic
/// pause this long, not longer.
const SETTLE_MAX: Duration = Duration::from_millis(300);
/// How long the frames held after the first wait for the bridges to have learnt where the VM
/// now is from the first. Open vSwitch updates its MAC table as it forwards that frame, but the
/// flows cached in its datapath, which still send the VM's address to the old place, are
/// revalidated afterwards: an answer that came back at once (the peer's ARP reply to the VM's
/// second frame) could take the old path and be lost, and the VM then waited a full second to ask
/// again (one run in eight of `link-cut`). The others go on this much later.
const LEARN_SETTLE: Duration = Duration::from_millis(10);
/// Frames held per probed port, at most; more are dropped (the VM retransmits).
const HOLD_MAX_FRAMES: usize = 512;
/// Held frames are released when a bridge took this long to confirm one phase of the move (it is
/// taken as gone, and the copies may then overlap for a moment). Per phase, not per hold: with the
/// machine's two cores starved (load 30-36), one phase took up to 470 ms and a whole hold over
/// 700 ms, and releasing such a hold at 500 ms started the new place's copies while the old one
/// had not yet confirmed it stopped making them.
const HOLD_MAX: Duration = Duration::from_secs(1);
/// Reprogramming times kept for statistics.
const REPROGRAMS_KEPT: usize = 4096;
// The fixed tags of requests the core sends, all distinct, and distinct from the tag of the
// requests a connection's own app sends ([`crate::openflow::driver::TAG_APP`], `u64::MAX - 3`).
/// Tag of re-injected frames.
const TAG_RELEASE: u64 = u64::MAX - 1;
/// Tag of LLDP probes.
const TAG_LLDP: u64 = u64::MAX - 2;
/// Tag of the messages that make a guest connection what it is (role, controller id).
const TAG_GUEST: u64 = u64::MAX - 4;
/// Tag of a guest's periodic read of its flows.
const TAG_AUDIT: u64 = u64::MAX - 5;
/// Tag of role requests (the role asked for is in the request itself).
const TAG_ROLE: u64 = u64::MAX - 6;
/// Every fixed tag, for the test that keeps them apart.
#[cfg(test)]
const FIXED_TAGS: [u64; 7] = [
    TAG_DUMP,
    TAG_RELEASE,
    TAG_LLDP,
    crate::openflow::driver::TAG_APP,
    TAG_GUEST,
    TAG_AUDIT,
    TAG_ROLE,
];
/// How often a guest reads its flows back, in case one went without a FLOW_REMOVED (the switch
/// sends one per flow, but an owner's connection could, say, flush the bridge while ours was
/// down): a missing flow is put back at most this late.
const GUEST_AUDIT: Duration = Duration::from_secs(5);
/// `NXT_SET_CONTROLLER_ID`: the Nicira message that gives a controller connection its id.
const NXT_SET_CONTROLLER_ID: u32 = 20;

/// One hypervisor's OVSDB connection, as the core sees it.
struct OvsdbPeer {
    commands: mpsc::Sender<OvsdbCommand>,
    connected: bool,
}

/// The controller's state.
pub struct Core {
    log: Logger,
    switches: HashMap<ConnId, Switch>,
    by_dpid: HashMap<Dpid, ConnId>,
    /// The desired state and the northbound API's writes on their way to it.
    nb: northbound::Front,
    topology: Topology,
    /// What every bridge should hold: derived from `topology` and `taps`, recomputed whenever
    /// either changes, never edited.
    plans: std::collections::BTreeMap<Dpid, BridgeDesired>,
    /// The flows of each plan in the reconciler's form, kept with the plans.
    flowsets: HashMap<Dpid, FlowSet>,
    /// The flows of a bridge the topology does not know, whose bodies all such bridges share.
    base_flows: FlowSet,
    /// The recompute of every plan now and then, in case a change reached fewer bridges than
    /// it touched.
    sweep: Sweep,
    /// When tunnel port changes that could not be made were last tried again.
    tunnels_retried: Instant,
    /// Where each migrating iface-id is known to run (observed: from the topology's events and
    /// from the first frame a VM sends at its new place).
    activity: Tracked<Activity>,
    holds: HashMap<(Dpid, PortNo), Hold>,
    /// The most recent reprogramming times (bounded), for `GET /v1/stats`.
    reprograms: std::collections::VecDeque<Duration>,
    ovsdb: HashMap<HypervisorId, OvsdbPeer>,
    /// Tunnel port changes sent and not yet answered, by tag.
    tunnel_txns: HashMap<u64, TunnelChange>,
    next_txn: u64,
    /// LLDP link discovery between switches.
    prober: Prober,
    /// The ports worth probing, kept up to date by [`Core::apply_topology`] for the switches
    /// each change touches, so that neither an idle controller nor a migration wave walks
    /// every port of every switch ten times a second.
    probed: ProbedPorts,
    /// The zero of the topology's clock.
    epoch: Instant,
    /// While events are drained in a batch ([`Core::defer_reconcile`]): the bridges they
    /// touched, planned once when the batch ends ([`Core::flush`]).
    deferred: Option<BTreeSet<Dpid>>,
    /// Counters and histograms for `GET /metrics`.
    metrics: crate::northbound::metrics::Metrics,
    /// Flow dumps the API asked for, waiting for their switches.
    dumps: flows::LiveDumps,
    /// The recent migrations and how long their bridges took.
    migrations: migrations::MigrationLog,
    /// The recent events, for `GET /v1/events`.
    events: events::EventLog,
    /// The process logger's level, when the process lets it be changed.
    log_level: Option<crate::log::LevelControl>,
    /// How deep the process's queues are now, by name (`None`: closed).
    queues: Vec<(&'static str, QueueProbe)>,
    /// Whether periscope owns the bridges' forwarding or is a guest beside their controller.
    mode: Mode,
    /// When a guest last read its flows back from every switch.
    last_audit: Instant,
    /// Leader or follower among the controllers sharing the bridges.
    leader: leadership::Leadership,
}

/// Reads how many items wait in a queue.
type QueueProbe = Box<dyn Fn() -> Option<usize> + Send>;

impl Core {
    /// An empty controller.
    pub fn new(log: Logger, topology: TopologyConfig) -> Self {
        Core {
            log,
            switches: HashMap::new(),
            by_dpid: HashMap::new(),
            nb: northbound::Front::in_memory(),
            topology: Topology::new(topology),
            plans: Default::default(),
            flowsets: HashMap::new(),
            base_flows: FlowSet::new(),
            sweep: Sweep::default(),
            tunnels_retried: Instant::now(),
            activity: Tracked::default(),
            holds: HashMap::new(),
            reprograms: std::collections::VecDeque::new(),
            ovsdb: HashMap::new(),
            tunnel_txns: HashMap::new(),
            next_txn: 1,
            prober: Prober::new(ProberConfig::default(), nonce()),
            probed: ProbedPorts::default(),
            epoch: Instant::now(),
            deferred: None,
            metrics: Default::default(),
            dumps: Default::default(),
            migrations: Default::default(),
            events: Default::default(),
            log_level: None,
            queues: Vec::new(),
            mode: Mode::Owner,
            last_audit: Instant::now(),
            leader: Default::default(),
        }
    }

    /// Makes periscope a guest on every bridge (see [`Mode::Guest`]): another controller owns
    /// their forwarding. Set before any switch connects.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    fn now_ms(&self) -> Millis {
        Millis(self.epoch.elapsed().as_millis() as u64)
    }

    /// Forgets links no longer seen and sends the probes due now, from switches that hold the
    /// flow keeping LLDP away from everything but the controller.
    fn discover(&mut self) {
        if !self.programs() {
            return;
        }
        let now = self.now_ms();
        let expired = self.prober.expire(&mut self.topology, now);
        self.handle_events(expired);
        let mut per_switch: HashMap<ConnId, Vec<Request>> = HashMap::new();
        for p in self.prober.poll_probes(now, self.probed.ports()) {
            let Some(conn) = self.by_dpid.get(&p.dpid).copied() else { continue };
            let guarded =
                self.switches.get(&conn).and_then(|s| s.reconciler.actual()).is_some_and(|a| {
                    a.values().any(|f| {
                        cookie::decode(f.cookie).map(|(k, _)| k)
                            == Some(cookie::Kind::Discovery as u8)
                    })
                });
            if !guarded {
                continue;
            }
            per_switch.entry(conn).or_default().push(Request {
                msg: Message::PacketOut(PacketOut {
                    buffer_id: BufferId::NO_BUFFER,
                    in_port: PortNo::CONTROLLER,
                    actions: vec![Action::output(p.port)],
                    data: p.frame,
                }),
                tag: TAG_LLDP,
                label: format!("LLDP probe out of port {}", p.port.0),
            });
        }
        for (conn, requests) in per_switch {
            self.send(conn, requests);
        }
    }

    /// A frame from the discovery flow: a link if it is one of our probes.
    fn handle_lldp(&mut self, dpid: Dpid, pin: periscope_codec::openflow::PacketIn) {
        let Some(port) = pin.in_port() else { return };
        match self.prober.handle_frame(self.now_ms(), dpid, port, &pin.data) {
            Ok(Some(seen)) => self.handle_topology(vec![seen]),
            Ok(None) | Err(LldpError::Foreign) => {}
            Err(e) => debug!(self.log, "bad LLDP frame"; "dpid" => dpid.to_string(),
                "port" => port.0, "error" => %e),
        }
    }

    /// The live topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Follows where each interface runs: a single place is where it runs; a migration keeps it
    /// where it was until the VM's first frame is seen at the destination (or the source goes).
    fn track_activity(&mut self, kind: &EventKind) {
        match kind {
            EventKind::InterfaceAppeared { location } | EventKind::LocationReady { location } => {
                if let Some(id) =
                    self.topology.interface(&location.interface_ref()).and_then(|i| i.iface_id())
                {
                    if self.topology.locations(id).len() == 1 && !self.holding(id) {
                        self.activity.edit().insert(id.to_string(), Some(location.interface_ref()));
                    }
                }
            }
            EventKind::InterfaceMoved { iface_id, from, to } => {
                self.left_behind(iface_id, std::slice::from_ref(from), to)
            }
            EventKind::MigrationFinished { iface_id, from, to } => {
                self.left_behind(iface_id, from, to)
            }
            EventKind::InterfaceGone { location } => {
                let gone = Some(location.interface_ref());
                let ids: Vec<String> = self
                    .activity
                    .iter()
                    .filter(|(_, r)| **r == gone)
                    .map(|(k, _)| k.clone())
                    .collect();
                for id in ids {
                    if self.holding(&id) {
                        self.activity.edit().insert(id, None);
                    } else {
                        self.activity.edit().remove(&id);
                    }
                }
            }
            _ => {}
        }
    }

    /// An iface-id's interface is gone from `from` and remains at `to`. The bridges of `from`
    /// are removing its copies, in batches no hold waited for: the copies of delivered frames
    /// arrive at `to` only once those bridges confirmed (and their datapaths had time to
    /// follow). Else a frame still passing an old bridge on its way to `to` (flooded there, now
    /// that its port and the MAC learnt on it are gone) is copied at both.
    fn left_behind(&mut self, iface_id: &str, from: &[Location], to: &Location) {
        let left: BTreeSet<Dpid> = from.iter().filter_map(|l| l.dpid).collect();
        if let Some(h) = self.holds.values_mut().find(|h| h.iface_id == iface_id) {
            // While frames are held, the hold alone moves the copies; it waits for these too.
            if h.phase == HoldPhase::Waiting {
                h.left.extend(left);
            }
            return;
        }
        let (to_ref, was) = (to.interface_ref(), self.activity.get(iface_id).cloned());
        let copied_before = match &was {
            None => true,
            Some(Some(r)) => from.iter().any(|l| l.interface_ref() == *r),
            Some(None) => false,
        };
        let taps = &self.nb.state.taps;
        let key = to.dpid.zip(to.ofport);
        match key {
            Some(key)
                if copied_before
                    && !left.is_empty()
                    && copies_delivered_frames(&self.topology, taps, iface_id) =>
            {
                debug!(self.log, "copies of delivered frames to follow the deleted interface";
                    "iface_id" => iface_id, "left" => ?left, "unix_us" => unix_us());
                // Nobody copies them meanwhile; what the VM sends at `to` is held as usual.
                self.activity.edit().insert(iface_id.to_string(), None);
                let now = Instant::now();
                self.holds.insert(
                    key,
                    Hold {
                        frames: Vec::new(),
                        since: now,
                        to: to_ref,
                        iface_id: iface_id.to_string(),
                        phase: HoldPhase::Waiting,
                        phase_since: now,
                        involved: Vec::new(),
                        left,
                    },
                );
            }
            _ => {
                self.activity.edit().insert(iface_id.to_string(), Some(to_ref));
            }
        }
    }

    /// Whether frames of `iface_id` are held while its copies move.
    fn holding(&self, iface_id: &str) -> bool {
        self.holds.values().any(|h| h.iface_id == iface_id)
    }

    /// A frame from a probe flow: the VM now runs behind that port. The frame is held until the
    /// copies of delivered frames have moved here (and left the old place), then re-injected.
    fn handle_probe(&mut self, dpid: Dpid, pin: periscope_codec::openflow::PacketIn) {
        // A follower changes nothing: the frame is dropped (the VM sends again), and the leader
        // moves the copies when the switch sends it the next one.
        if !self.by_dpid.get(&dpid).is_some_and(|c| self.may_program(*c)) {
            return;
        }
        let Some(port) = pin.in_port() else { return };
        if let Some(h) = self.holds.get_mut(&(dpid, port)) {
            if h.frames.len() < HOLD_MAX_FRAMES {
                h.frames.push(pin.data);
            }
            return;
        }
        let at = periscope_topology::SwitchPort { dpid, port };
        let Some(i) = self.topology.interface_at(at) else { return };
        let (Some(id), me) = (i.iface_id().map(str::to_string), i.interface_ref()) else { return };
        if self.activity.get(&id) == Some(&Some(me.clone())) {
            // Sent before the probe flow left the switch: the copies are here already.
            if let Some(conn) = self.by_dpid.get(&dpid).copied() {
                self.send(conn, vec![reinject(port, pin.data)]);
            }
            return;
        }
        info!(self.log, "interface active at its new place"; "iface_id" => &id,
            "hypervisor" => %me.hypervisor, "ofport" => port.0, "unix_us" => unix_us());
        if let Some(sw) = self.by_dpid.get(&dpid).and_then(|c| self.switches.get_mut(c)) {
            sw.dirty_since.get_or_insert(Instant::now());
        }
        // First the new place must be able to copy (its tunnel ports exist), then the copies of
        // delivered frames leave the old places (frames still delivered there reach no VM), then
        // they arrive here, then the held frames go on: a frame is never copied at two places,
        // and none the VM receives here goes uncopied.
        let hold = Hold {
            frames: vec![pin.data],
            since: Instant::now(),
            to: me,
            iface_id: id,
            phase: HoldPhase::Waiting,
            phase_since: Instant::now(),
            involved: Vec::new(),
            left: BTreeSet::new(),
        };
        self.holds.insert((dpid, port), hold);
        self.release_holds();
    }

    /// Reconciles everything and returns, for each of `dpids`, the batch that will carry the
    /// changes: the one planned now for an idle switch, the one after its current for a busy one.
    fn reconcile_tracking(&mut self, dpids: &[Dpid]) -> Vec<(Dpid, u64)> {
        let busy: Vec<bool> =
            dpids.iter().map(|d| self.switch(*d).is_some_and(|s| s.reconciler.busy())).collect();
        self.reconcile_bridges(Some(&dpids.iter().copied().collect()));
        dpids
            .iter()
            .zip(busy)
            .filter_map(|(d, busy)| {
                Some((*d, self.switch(*d)?.reconciler.planned_through() + u64::from(busy)))
            })
            .collect()
    }

    /// Moves held frames on: the old places stop copying once the new place can copy, the new
    /// place starts once the old places confirmed (and their datapaths had time to follow), and
    /// the frames go into the pipeline once the new place confirmed (or when they waited too
    /// long).
    fn release_holds(&mut self) {
        let now = Instant::now();
        // A phase with nothing to confirm is done at once: go on until nothing moves.
        let mut moved = true;
        while moved {
            moved = false;
            self.advance_holds(now, &mut moved);
        }
        let ready: Vec<(Dpid, PortNo)> = self
            .holds
            .iter()
            .filter(|(k, h)| {
                // A hold whose old places all confirmed ends when their datapaths had time to
                // follow (at most SETTLE_MAX), not before: its frames would be copied twice.
                (h.phase_since.elapsed() > HOLD_MAX
                    && !matches!(
                        h.phase,
                        HoldPhase::Teaching { .. } | HoldPhase::Leaving { settled: Some(_), .. }
                    ))
                    || (h.phase == HoldPhase::Arriving
                        && h.involved.iter().all(|i| self.phase_done(i))
                        && self.plans.get(&k.0).is_none_or(|d| d.complete))
            })
            .map(|(k, _)| *k)
            .collect();
        for key in ready {
            let Some(h) = self.holds.remove(&key) else { continue };
            if h.phase != HoldPhase::Arriving
                || self.activity.get(&h.iface_id) != Some(&Some(h.to.clone()))
            {
                // Waited too long: let the copies arrive here now, whatever happened elsewhere.
                warn!(self.log, "held frames released before the copies moved";
                    "iface_id" => &h.iface_id, "phase" => ?h.phase);
                self.activity.edit().insert(h.iface_id.clone(), Some(h.to.clone()));
                self.reconcile_all();
            }
            let (dpid, port) = key;
            let Some(conn) = self.by_dpid.get(&dpid).copied() else { continue };
            debug!(self.log, "re-injecting held frames"; "dpid" => dpid.to_string(), "port" => port.0,
                "frames" => h.frames.len(), "held_ms" => h.since.elapsed().as_secs_f64() * 1e3,
                "unix_us" => unix_us());
            let mut frames = h.frames.into_iter();
            let first = frames.next().map(|data| reinject(port, data));
            self.send(conn, first.into_iter().collect());
            let rest: Vec<Vec<u8>> = frames.collect();
            if !rest.is_empty() {
                let until = now + LEARN_SETTLE;
                self.holds
                    .insert(key, Hold { frames: rest, phase: HoldPhase::Teaching { until }, ..h });
            }
        }
        // The frames after the first, once the bridges had time to learn from it.
        let taught: Vec<(Dpid, PortNo)> = self
            .holds
            .iter()
            .filter(|(_, h)| matches!(h.phase, HoldPhase::Teaching { until } if now >= until))
            .map(|(k, _)| *k)
            .collect();
        for key in taught {
            let Some(h) = self.holds.remove(&key) else { continue };
            let Some(conn) = self.by_dpid.get(&key.0).copied() else { continue };
            let requests = h.frames.into_iter().map(|data| reinject(key.1, data)).collect();
            self.send(conn, requests);
        }
    }

    /// One step of every hold whose current phase is over (see [`Core::release_holds`]). The
    /// bridges of every hold that moves on are replanned together, once: a wave of a hundred
    /// migrations costs one replan per step, not a hundred.
    fn advance_holds(&mut self, now: Instant, moved: &mut bool) {
        let keys: Vec<(Dpid, PortNo)> = self.holds.keys().copied().collect();
        // The holds entering a phase whose bridges must confirm it, with those bridges.
        let mut steps: Vec<((Dpid, PortNo), HoldPhase, Vec<Dpid>)> = Vec::new();
        for key in keys {
            let Some(h) = self.holds.get(&key) else { continue };
            let confirmed = h.involved.iter().all(|i| self.phase_done(i));
            match h.phase {
                HoldPhase::Waiting => {
                    if !self.plans.get(&key.0).is_some_and(|d| d.complete) {
                        continue;
                    }
                    let (id, to) = (h.iface_id.clone(), h.to.clone());
                    // The old places, and, for a VM collector, the bridges copying towards it.
                    let mut others: BTreeSet<Dpid> = self
                        .topology
                        .locations(&id)
                        .iter()
                        .filter(|l| l.interface_ref() != to)
                        .filter_map(|l| l.dpid)
                        .collect();
                    let taps = &self.nb.state.taps;
                    if !copies_delivered_frames(&self.topology, taps, &id) {
                        // Only a VM collector's copies follow it: each goes to one place, so
                        // they may go to the new place at once, with nothing to leave first.
                        others.extend(feeding(&self.topology, taps, &id));
                        others.insert(key.0);
                        self.activity.edit().insert(id, Some(to));
                        steps.push((key, HoldPhase::Arriving, others.into_iter().collect()));
                        *moved = true;
                        continue;
                    }
                    let feeders = feeding(&self.topology, taps, &id);
                    others.extend(feeders.into_iter().filter(|d| *d != key.0));
                    others.extend(h.left.iter().filter(|d| **d != key.0));
                    let others: Vec<Dpid> = others.into_iter().collect();
                    debug!(self.log, "copies of delivered frames leaving"; "iface_id" => &id,
                        "bridges" => ?others, "unix_us" => unix_us());
                    self.activity.edit().insert(id, None);
                    steps.push((key, HoldPhase::Leaving { since: now, settled: None }, others));
                    *moved = true;
                }
                HoldPhase::Leaving { since, settled: None } if confirmed => {
                    let settle = datapath_settle(now.saturating_duration_since(since));
                    debug!(self.log, "copies of delivered frames left"; "iface_id" => &h.iface_id,
                        "confirmed_ms" => now.saturating_duration_since(since).as_secs_f64() * 1e3,
                        "settle_ms" => settle.as_secs_f64() * 1e3, "unix_us" => unix_us());
                    if let Some(h) = self.holds.get_mut(&key) {
                        h.phase = HoldPhase::Leaving { since, settled: Some(now + settle) };
                    }
                    *moved = true;
                }
                HoldPhase::Leaving { settled: Some(t), .. } if now >= t => {
                    let (id, to) = (h.iface_id.clone(), h.to.clone());
                    debug!(self.log, "copies of delivered frames arriving"; "iface_id" => &id,
                        "unix_us" => unix_us());
                    let mut here = feeding(&self.topology, &self.nb.state.taps, &id);
                    here.insert(key.0);
                    self.activity.edit().insert(id, Some(to));
                    steps.push((key, HoldPhase::Arriving, here.into_iter().collect()));
                    *moved = true;
                }
                _ => {}
            }
        }
        if steps.is_empty() {
            return;
        }
        let all: BTreeSet<Dpid> = steps.iter().flat_map(|(_, _, d)| d.iter().copied()).collect();
        let all: Vec<Dpid> = all.into_iter().collect();
        let batches: HashMap<Dpid, u64> = self.reconcile_tracking(&all).into_iter().collect();
        for (key, phase, dpids) in steps {
            if let Some(h) = self.holds.get_mut(&key) {
                h.phase = phase;
                h.phase_since = now;
                h.involved = dpids.iter().filter_map(|d| Some((*d, *batches.get(d)?))).collect();
            }
        }
    }

    /// Whether a bridge confirmed the batch carrying a phase (or has nothing in flight).
    fn phase_done(&self, (dpid, batch): &(Dpid, u64)) -> bool {
        self.switch(*dpid)
            .is_none_or(|s| !s.reconciler.busy() || s.reconciler.confirmed_through() >= *batch)
    }

    /// When the core next needs [`Core::tick`] sooner than the regular tick: a hold whose old
    /// places' datapaths are settling, or whose later frames wait for the bridges to learn.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.holds
            .values()
            .filter_map(|h| match h.phase {
                HoldPhase::Leaving { settled, .. } => settled,
                HoldPhase::Teaching { until } => Some(until),
                _ => None,
            })
            .min()
    }

    fn switch(&self, dpid: Dpid) -> Option<&Switch> {
        self.by_dpid.get(&dpid).and_then(|c| self.switches.get(c))
    }

    /// Lets time pass: releases held frames that waited too long, and goes on with the
    /// recompute of every plan when something changed (changes are otherwise recomputed only
    /// for the bridges they touch).
    pub fn tick(&mut self) {
        self.sweep_tick();
        if !self.holds.is_empty() {
            self.release_holds();
        }
        self.northbound_tick();
        self.flow_dumps_tick();
        self.discover();
        if self.mode == Mode::Guest && self.last_audit.elapsed() >= GUEST_AUDIT {
            self.last_audit = Instant::now();
            let idle: Vec<ConnId> = self
                .switches
                .iter()
                .filter(|(_, s)| {
                    s.dpid.is_some() && !s.reconciler.busy() && !s.reconciler.needs_dump()
                })
                .map(|(c, _)| *c)
                .collect();
            for conn in idle {
                self.send(conn, vec![dump_ours(TAG_AUDIT, "read our flows back (guest audit)")]);
            }
        }
    }

    /// Shows the depth of a queue of the process in `/v1/stats` and `/metrics`.
    pub fn watch_queue(
        &mut self,
        name: &'static str,
        probe: impl Fn() -> Option<usize> + Send + 'static,
    ) {
        self.queues.push((name, Box::new(probe)));
    }

    /// Lets `PUT /v1/log` change the process logger's level.
    pub fn set_log_control(&mut self, control: crate::log::LevelControl) {
        self.log_level = Some(control);
    }

    /// Registers the command queue of a hypervisor's OVSDB driver.
    pub fn add_ovsdb(&mut self, hv: HypervisorId, commands: mpsc::Sender<OvsdbCommand>) {
        self.ovsdb.insert(hv, OvsdbPeer { commands, connected: false });
    }

    /// Handles one event from a hypervisor's OVSDB driver.
    pub fn handle_ovsdb_event(&mut self, hv: HypervisorId, ev: DriverEvent) {
        self.count_ovsdb_event(&ev);
        match ev {
            DriverEvent::Accepted { peer, commands } => {
                info!(self.log, "ovsdb-server connected to us"; "hypervisor" => %hv, "peer" => peer);
                self.add_ovsdb(hv, commands);
            }
            DriverEvent::ConnectFailed { remote, error, retry_in } => {
                debug!(self.log, "ovsdb connect failed"; "hypervisor" => %hv, "remote" => remote,
                    "error" => error, "retry_ms" => retry_in.as_millis() as u64);
            }
            DriverEvent::Refused { tag, error } => {
                if let Some(c) = self.tunnel_txns.remove(&tag) {
                    warn!(self.log, "tunnel port change not sent"; "hypervisor" => %hv, "change" => ?c, "error" => %error);
                }
            }
            DriverEvent::Session(ev) => self.handle_ovsdb_session(hv, ev),
        }
    }

    /// Counts an OVSDB event, and what went wrong in it, for `/metrics`.
    fn count_ovsdb_event(&mut self, ev: &DriverEvent) {
        use crate::ovsdb::session::CloseReason;
        let (kind, error) = match ev {
            DriverEvent::Accepted { .. } => ("accepted", None),
            DriverEvent::ConnectFailed { .. } => ("connect_failed", Some("connect_failed")),
            DriverEvent::Refused { .. } => ("txn_refused", Some("txn_refused")),
            DriverEvent::Session(ev) => match ev {
                OvsdbEvent::Connected { .. } => ("connected", None),
                OvsdbEvent::Snapshot(_) => ("snapshot", None),
                OvsdbEvent::Changes(_) => ("update", None),
                OvsdbEvent::Rows(_) => ("rows", None),
                OvsdbEvent::TxnReply { result: Err(_), .. } => ("txn_reply", Some("txn_failed")),
                OvsdbEvent::TxnReply { result: Ok(r), .. } => {
                    ("txn_reply", r.error().map(|_| "txn_operation_error"))
                }
                OvsdbEvent::Locked { .. } => ("locked", None),
                OvsdbEvent::LockWaiting { .. } => ("lock_waiting", None),
                OvsdbEvent::Stolen { .. } => ("stolen", None),
                OvsdbEvent::LockLost { .. } => ("lock_lost", None),
                OvsdbEvent::Error(_) => ("error", Some("unexpected_message")),
                OvsdbEvent::Closed { reason } => (
                    "closed",
                    match reason {
                        CloseReason::EchoTimeout => Some("echo_timeout"),
                        CloseReason::Protocol(_) => Some("protocol_error"),
                        CloseReason::Transport(_) => Some("connection_lost"),
                        CloseReason::Shutdown => None,
                    },
                ),
            },
        };
        self.metrics.ovsdb_event(kind);
        if let Some(e) = error {
            self.metrics.ovsdb_error(e);
        }
    }

    fn handle_ovsdb_session(&mut self, hv: HypervisorId, ev: OvsdbEvent) {
        match ev {
            OvsdbEvent::Connected { system_id, resumed, monitor, .. } => {
                info!(self.log, "ovsdb monitoring"; "hypervisor" => %hv, "system_id" => system_id,
                    "resumed" => resumed, "monitor" => monitor.name());
                if let Some(p) = self.ovsdb.get_mut(&hv) {
                    p.connected = true;
                }
            }
            OvsdbEvent::Snapshot(change) => self.handle_topology(vec![change]),
            OvsdbEvent::Changes(changes) => self.handle_topology(changes),
            OvsdbEvent::TxnReply { tag, result, .. } => {
                let Some(change) = self.tunnel_txns.remove(&tag) else { return };
                match result {
                    Ok(reply) => match reply.error() {
                        None => {
                            debug!(self.log, "tunnel port change committed"; "hypervisor" => %hv, "change" => ?change)
                        }
                        Some((i, e)) => warn!(self.log, "tunnel port change failed";
                            "hypervisor" => %hv, "change" => ?change, "operation" => i, "error" => ?e),
                    },
                    Err(e) => {
                        warn!(self.log, "tunnel port change failed"; "hypervisor" => %hv, "change" => ?change, "error" => %e)
                    }
                }
                // Whatever happened, look again: the topology shows what the database holds.
                self.reconcile_tunnels();
            }
            OvsdbEvent::Closed { reason } => {
                info!(self.log, "ovsdb connection lost"; "hypervisor" => %hv, "reason" => ?reason);
                if let Some(p) = self.ovsdb.get_mut(&hv) {
                    p.connected = false;
                }
                // Unanswered transactions of that hypervisor will never be answered.
                self.tunnel_txns.retain(|_, c| c.key().0.hypervisor != hv);
            }
            other => debug!(self.log, "ovsdb"; "hypervisor" => %hv, "event" => ?other),
        }
    }

    /// Creates and removes periscope's tunnel ports so that each bridge has exactly those its
    /// taps need. At most one change per bridge and encapsulation is in flight.
    fn reconcile_tunnels(&mut self) {
        self.reconcile_tunnels_of(None);
    }

    /// [`Core::reconcile_tunnels`] for the bridges with these datapath ids only (all with
    /// `None`): what a replan of a few bridges among a thousand costs stays theirs.
    fn reconcile_tunnels_of(&mut self, only: Option<&BTreeSet<Dpid>>) {
        // As for flows: until the desired state is read, a restarted controller keeps the
        // tunnel ports it finds (the taps it has not yet been told about use them).
        if !self.nb.ready || !self.programs() {
            return;
        }
        let needed = self
            .plans
            .iter()
            .filter(|(dpid, _)| only.is_none_or(|o| o.contains(dpid)))
            .map(|(_, d)| (d.bridge.clone(), d.plan.tunnels.clone()))
            .collect();
        let scope: Option<BTreeSet<periscope_topology::RowRef>> = only.map(|o| {
            self.topology
                .bridges()
                .filter(|b| b.row.datapath_id.is_some_and(|d| o.contains(&d)))
                .map(|b| b.bridge.clone())
                .collect()
        });
        for change in plan_tunnels(&self.topology, &needed, scope.as_ref()) {
            let key = change.key();
            if self.tunnel_txns.values().any(|c| c.key() == key) {
                continue;
            }
            let hv = key.0.hypervisor.clone();
            let Some(peer) = self.ovsdb.get(&hv).filter(|p| p.connected) else { continue };
            let ops = match change.ops() {
                Ok(ops) => ops,
                Err(e) => {
                    warn!(self.log, "cannot build tunnel port change"; "change" => ?change, "error" => e);
                    continue;
                }
            };
            let tag = self.next_txn;
            self.next_txn += 1;
            match peer.commands.try_send(OvsdbCommand::Transact { ops, reply: ReplyTo::Tag(tag) }) {
                Ok(()) => {
                    info!(self.log, "changing tunnel ports"; "hypervisor" => %hv, "change" => ?change);
                    self.tunnel_txns.insert(tag, change);
                }
                Err(e) => {
                    warn!(self.log, "hypervisor not keeping up"; "hypervisor" => %hv, "error" => %e)
                }
            }
        }
    }

    /// Applies topology changes (from OVSDB or OpenFlow) and reprograms what they affect.
    pub fn handle_topology(&mut self, changes: Vec<Change>) {
        let events = self.apply_topology(changes);
        self.handle_events(events);
    }

    /// Applies topology changes and updates the probed ports of the switches they touched:
    /// every change to the topology goes through here.
    fn apply_topology(&mut self, changes: Vec<Change>) -> Vec<Event> {
        let switches: Vec<Dpid> = changes.iter().filter_map(Change::switch).collect();
        let events = self.topology.apply_batch(changes);
        self.probed.update(&self.topology, switches, &events);
        events
    }

    /// Follows up on what the topology says changed.
    fn handle_events(&mut self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        for e in &events {
            let g = e.generation.0;
            match &e.kind {
                EventKind::MigrationStarted { iface_id, from, to } => {
                    self.metrics.migrations_started += 1;
                    self.migrations.started(iface_id, from, to, Instant::now());
                    info!(self.log, "migration started"; "iface_id" => iface_id, "generation" => g)
                }
                EventKind::MigrationFinished { iface_id, to, from } => {
                    self.metrics.migrations_finished += 1;
                    self.migrations.finished(iface_id, from, to, Instant::now());
                    info!(self.log, "migration finished"; "iface_id" => iface_id, "generation" => g,
                        "to" => format!("{}/{:?}", to.hypervisor, to.ofport))
                }
                EventKind::InterfaceMoved { iface_id, from, to, .. } => {
                    self.migrations.moved(iface_id, from, to, Instant::now());
                    info!(self.log, "interface moved"; "iface_id" => iface_id, "generation" => g,
                        "to" => format!("{}/{:?}", to.hypervisor, to.ofport))
                }
                EventKind::LinkUp { link } => {
                    info!(self.log, "link up"; "link" => ?link, "generation" => g)
                }
                EventKind::LinkDown { link } => {
                    info!(self.log, "link down"; "link" => ?link, "generation" => g)
                }
                other => debug!(self.log, "topology"; "generation" => g, "event" => ?other),
            }
        }
        // An iface-id's moves first: its interfaces appearing and going in the same batch then
        // find the copies already in the hands of a hold.
        let (moves, rest): (Vec<&Event>, Vec<&Event>) = events.iter().partition(|e| {
            matches!(e.kind, EventKind::InterfaceMoved { .. } | EventKind::MigrationFinished { .. })
        });
        for e in moves.into_iter().chain(rest) {
            self.track_activity(&e.kind);
        }
        for e in &events {
            self.events.topology(e, &self.topology);
        }
        // Every bridge an event touches owes a confirmation from now on: the reprogramming time
        // runs from the moment the change was seen to the switch's confirmation.
        let now = Instant::now();
        let mut affected = BTreeSet::new();
        for e in &events {
            for dpid in event_dpids(&e.kind) {
                affected.insert(dpid);
                if let Some(sw) = self.by_dpid.get(&dpid).and_then(|c| self.switches.get_mut(c)) {
                    sw.dirty_since.get_or_insert(now);
                }
            }
        }
        // The bridges copying towards a VM collector follow it wherever it went.
        let feeders = self.feeders_after(&events, &affected);
        affected.extend(feeders);
        match &mut self.deferred {
            Some(d) => d.extend(affected),
            None => {
                self.reconcile_bridges(Some(&affected));
                // A hold the events began (or whose bridges they changed) moves on now.
                if !self.holds.is_empty() {
                    self.release_holds();
                }
            }
        }
    }

    /// The bridges copying towards the VM collectors that `events` may have moved: those
    /// present on an `affected` bridge, or any when an interface went (its iface-id is gone
    /// with it).
    fn feeders_after(&self, events: &[Event], affected: &BTreeSet<Dpid>) -> BTreeSet<Dpid> {
        let taps = &self.nb.state.taps;
        let gone = events.iter().any(|e| matches!(e.kind, EventKind::InterfaceGone { .. }));
        let collectors: BTreeSet<&str> =
            taps.services().filter_map(|s| s.collector.iface_id()).collect();
        collectors
            .into_iter()
            .filter(|id| {
                gone || self
                    .topology
                    .locations(id)
                    .iter()
                    .any(|l| l.dpid.is_some_and(|d| affected.contains(&d)))
            })
            .flat_map(|id| feeding(&self.topology, taps, id))
            .collect()
    }

    /// Starts a batch of topology events: the bridges they touch are planned once, when
    /// [`Core::flush`] ends the batch, rather than once per event (a hundred migrations that
    /// arrive together cost one plan per bridge they touch). Only topology events may come in
    /// between: everything else reads the plans.
    pub fn defer_reconcile(&mut self) {
        self.deferred.get_or_insert_with(BTreeSet::new);
    }

    /// Ends a batch begun by [`Core::defer_reconcile`]: plans and reconciles what it touched.
    pub fn flush(&mut self) {
        if let Some(d) = self.deferred.take().filter(|d| !d.is_empty()) {
            self.reconcile_bridges(Some(&d));
            if !self.holds.is_empty() {
                self.release_holds();
            }
        }
    }

    /// The datapath ids of switches whose handshake finished.
    pub fn connected(&self) -> Vec<Dpid> {
        let mut v: Vec<_> = self.by_dpid.keys().copied().collect();
        v.sort();
        v
    }

    /// Recomputes what every bridge should hold and reconciles the bridges whose plan changed.
    fn reconcile_all(&mut self) {
        let changed = self.replan(None);
        self.sweep.done(Instant::now(), self.plan_inputs());
        for dpid in changed {
            if let Some(c) = self.by_dpid.get(&dpid).copied() {
                self.reconcile(c);
            }
        }
    }

    /// What the plans are computed from, by revision.
    fn plan_inputs(&self) -> PlanInputs {
        PlanInputs {
            topology: self.topology.revision(),
            taps: self.nb.state.taps.revision(),
            activity: self.activity.changes(),
            mode: self.mode,
        }
    }

    /// One tick's part of the recompute of every plan, when one is under way or due; and, every
    /// [`sweep::PASS_EVERY`], another try at the tunnel port changes that could not be made.
    fn sweep_tick(&mut self) {
        let now = Instant::now();
        let inputs = self.plan_inputs();
        let (topology, plans) = (&self.topology, &self.plans);
        let part = self.sweep.next(now, inputs, || {
            let known = topology.bridges().filter_map(|b| b.row.datapath_id);
            known.chain(plans.keys().copied()).collect()
        });
        if let Some(part) = part {
            for dpid in self.replan(Some(&part)) {
                if let Some(c) = self.by_dpid.get(&dpid).copied() {
                    self.reconcile(c);
                }
            }
        } else if now.saturating_duration_since(self.tunnels_retried) >= sweep::PASS_EVERY {
            self.tunnels_retried = now;
            self.reconcile_tunnels();
        }
    }

    /// Recomputes what the given bridges (all, with `None`) should hold and reconciles those
    /// whose plan changed, and every one of `only` (a bridge an event touched is looked at even
    /// when its plan did not change, so that one with nothing to do is seen to hold what it
    /// should; a bridge whose plan did not change otherwise has nothing new to do: its own
    /// confirmations drive it on).
    fn reconcile_bridges(&mut self, only: Option<&BTreeSet<Dpid>>) {
        let mut changed = self.replan(only);
        if let Some(o) = only {
            changed.extend(o.iter().filter(|d| !changed.contains(d)).copied().collect::<Vec<_>>());
        }
        for dpid in changed {
            if let Some(c) = self.by_dpid.get(&dpid).copied() {
                self.reconcile(c);
            }
        }
    }

    /// Recomputes what the given bridges (all, with `None`) should hold, drops the plans of
    /// those among them the topology no longer has, and brings the tunnel ports in line;
    /// returns the bridges whose plan changed.
    fn replan(&mut self, only: Option<&BTreeSet<Dpid>>) -> Vec<Dpid> {
        self.tunnels_retried = Instant::now();
        let plans = desired(&self.topology, &self.nb.state.taps, &self.activity, only, self.mode);
        let mut changed = Vec::new();
        for (dpid, d) in &plans {
            if self.plans.get(dpid) != Some(d) {
                let mut set = desired_set(&d.plan.flows);
                if let Some(old) = self.flowsets.get(dpid) {
                    share_bodies(&mut set, old);
                }
                self.flowsets.insert(*dpid, set);
                changed.push(*dpid);
            }
        }
        let gone: Vec<Dpid> = self
            .plans
            .keys()
            .filter(|d| !plans.contains_key(d) && only.is_none_or(|o| o.contains(d)))
            .copied()
            .collect();
        for d in gone {
            self.plans.remove(&d);
            self.flowsets.remove(&d);
            changed.push(d);
        }
        self.plans.extend(plans);
        self.reconcile_tunnels_of(only);
        changed
    }

    /// Handles one event from a switch connection.
    pub fn handle_switch_event(&mut self, conn: ConnId, ev: SwitchEvent) {
        match ev {
            SwitchEvent::Accepted { peer, commands } => {
                debug!(self.log, "switch connected"; "conn" => conn.0, "peer" => &peer);
                let log = self.log.new(o!("conn" => conn.0, "peer" => peer.clone()));
                self.switches.insert(
                    conn,
                    Switch {
                        peer,
                        commands,
                        dpid: None,
                        log,
                        reconciler: Reconciler::new(),
                        dirty_since: None,
                        last_reprogram: None,
                        connected_at: std::time::SystemTime::now(),
                        echo_rtt: None,
                        role: Default::default(),
                    },
                );
            }
            SwitchEvent::Refused { tag, error } => {
                if let Some(sw) = self.switches.get(&conn) {
                    warn!(sw.log, "request not sent"; "tag" => tag, "error" => %error);
                }
            }
            SwitchEvent::Session(ev) => self.handle_session_event(conn, ev),
        }
    }

    fn handle_session_event(&mut self, conn: ConnId, ev: SessionEvent) {
        let Some(sw) = self.switches.get_mut(&conn) else { return };
        match ev {
            SessionEvent::Ready { features, ports } => {
                let dpid = features.datapath_id;
                sw.log = sw.log.new(o!("dpid" => dpid.to_string()));
                info!(sw.log, "switch ready"; "ports" => ports.len(), "tables" => features.n_tables);
                self.events.push(
                    "switch_connected",
                    serde_json::json!({"dpid": dpid.to_string(), "peer": sw.peer, "ports": ports.len()}),
                );
                sw.dpid = Some(dpid);
                if let Some(old) = self.by_dpid.insert(dpid, conn) {
                    if old != conn {
                        // The switch reconnected before we noticed the old connection die.
                        if let Some(o) = self.switches.remove(&old) {
                            info!(o.log, "replaced by a new connection from the same datapath");
                            let _ = o.commands.try_send(SwitchCommand::Close);
                        }
                    }
                }
                let ports = ports.iter().map(of_port).collect();
                self.apply_topology(vec![
                    Change::SwitchConnected { dpid },
                    Change::SwitchPortsReplaced { dpid, ports },
                ]);
                if self.mode == Mode::Guest {
                    self.send(conn, guest_requests());
                }
                self.start_dump(conn);
                self.claim_role(conn);
            }
            SessionEvent::Reply { request, replies } if request.tag == TAG_ROLE => {
                for m in replies {
                    self.metrics.received(m.msg_type());
                    if let Message::RoleReply(r) = m {
                        self.handle_role_reply(conn, r);
                    }
                }
            }
            SessionEvent::RequestFailed { request: Some(r), error, .. } if r.tag == TAG_ROLE => {
                self.metrics.switch_error(&error);
                self.handle_role_refused(conn, &error);
            }
            SessionEvent::Reply { request, replies } if request.tag == TAG_DUMP => {
                for m in &replies {
                    self.metrics.received(m.msg_type());
                }
                let flows = flow_stats(replies);
                debug!(sw.log, "read our flows back"; "flows" => flows.len());
                sw.reconciler.handle_dump(&flows);
                self.reconcile(conn);
            }
            SessionEvent::Reply { request, replies } if request.tag == TAG_AUDIT => {
                for m in &replies {
                    self.metrics.received(m.msg_type());
                }
                let missing = sw.reconciler.handle_audit(&flow_stats(replies));
                if missing > 0 {
                    warn!(sw.log, "flows of ours went missing without a FLOW_REMOVED; restoring them";
                        "flows" => missing);
                    sw.dirty_since.get_or_insert_with(Instant::now);
                    self.reconcile(conn);
                }
            }
            SessionEvent::RequestFailed { request: Some(r), error, .. }
                if flows::is_live_dump(r.tag) =>
            {
                self.metrics.switch_error(&error);
                self.handle_flow_dump_error(r.tag, error.to_string());
            }
            SessionEvent::RequestFailed { request, xid, error } => {
                self.metrics.switch_error(&error);
                let what =
                    request.as_ref().map(|r| r.label.as_str()).unwrap_or("an unknown request");
                warn!(sw.log, "switch refused a request";
                    "xid" => %xid, "request" => what,
                    "error" => format!("{:?} code {}", error.err_type, error.code));
                self.events.push(
                    "switch_refused",
                    serde_json::json!({"dpid": sw.dpid.map(|d| d.to_string()), "request": what,
                                       "error": error.to_string()}),
                );
                if let Some(r) = request {
                    if r.tag != TAG_DUMP {
                        let (batch, index) = split_tag(r.tag);
                        sw.reconciler.handle_failed(batch, index as usize);
                    }
                }
            }
            SessionEvent::Confirmed { barrier, .. } => {
                self.metrics.received(periscope_codec::openflow::MsgType::BarrierReply);
                self.metrics.barrier_rtt.observe(barrier.sent_at.elapsed());
                let (batch, _) = split_tag(barrier.tag);
                let refused = sw.reconciler.handle_confirmed(batch);
                info!(sw.log, "batch confirmed"; "batch" => batch, "refused" => refused.len(),
                    "ms" => barrier.sent_at.elapsed().as_secs_f64() * 1e3, "unix_us" => unix_us());
                let started = sw.dirty_since.take();
                let dpid = sw.dpid;
                self.reconcile(conn);
                // Done when nothing more is in flight and nothing waits for a tunnel port: the
                // bridge holds what was wanted, and the time runs from the first change seen.
                let complete = dpid.and_then(|d| self.plans.get(&d)).is_none_or(|d| d.complete);
                if let (Some(sw), Some(t)) = (self.switches.get_mut(&conn), started) {
                    if sw.reconciler.busy() || !complete {
                        sw.dirty_since = Some(t);
                    } else {
                        let took = t.elapsed();
                        sw.last_reprogram = Some(took);
                        info!(sw.log, "bridge reprogrammed"; "ms" => took.as_secs_f64() * 1e3);
                        self.events.push(
                            "bridge_reprogrammed",
                            serde_json::json!({"dpid": dpid.map(|d| d.to_string()),
                                               "ms": took.as_secs_f64() * 1e3}),
                        );
                        if self.reprograms.len() == REPROGRAMS_KEPT {
                            self.reprograms.pop_front();
                        }
                        self.reprograms.push_back(took);
                        self.metrics.reprogram.observe(took);
                        if let Some(d) = dpid {
                            self.migrations.programmed(d, Instant::now());
                        }
                    }
                }
                self.release_holds();
            }
            SessionEvent::Closed(reason) => {
                if matches!(reason, CloseReason::Local(_)) {
                    info!(sw.log, "switch disconnected"; "reason" => %reason);
                } else {
                    // The switch misbehaved: dead, deaf, or not speaking our protocol.
                    warn!(sw.log, "switch disconnected"; "reason" => %reason);
                }
                self.events.push(
                    "switch_disconnected",
                    serde_json::json!({"dpid": sw.dpid.map(|d| d.to_string()), "reason": reason.to_string()}),
                );
                if let Some(dpid) = sw.dpid {
                    if self.by_dpid.get(&dpid) == Some(&conn) {
                        self.by_dpid.remove(&dpid);
                        self.apply_topology(vec![Change::SwitchDisconnected { dpid }]);
                    }
                }
                self.switches.remove(&conn);
                self.flow_dumps_closed(conn);
            }
            SessionEvent::Malformed { error, msg_type } => {
                self.metrics.malformed();
                warn!(sw.log, "malformed message from switch"; "type" => msg_type, "error" => %error);
            }
            SessionEvent::EchoRtt(rtt) => {
                debug!(sw.log, "echo"; "rtt_ms" => rtt.as_secs_f64() * 1e3);
                sw.echo_rtt = Some(rtt);
            }
            SessionEvent::PortStatus(ps) => {
                self.metrics.received(periscope_codec::openflow::MsgType::PortStatus);
                debug!(sw.log, "port status"; "port" => %ps.desc.port_no, "name" => &ps.desc.name,
                    "reason" => ?ps.reason);
                if let Some(dpid) = sw.dpid {
                    let reason = match ps.reason {
                        periscope_codec::openflow::PortReason::Add => PortStatusReason::Add,
                        periscope_codec::openflow::PortReason::Delete => PortStatusReason::Delete,
                        _ => PortStatusReason::Modify,
                    };
                    self.handle_topology(vec![Change::PortStatus {
                        dpid,
                        reason,
                        port: of_port(&ps.desc),
                    }]);
                }
            }
            SessionEvent::PacketIn(pin) => {
                self.metrics.received(periscope_codec::openflow::MsgType::PacketIn);
                let kind = cookie::decode(pin.cookie).map(|(k, _)| k);
                match (kind, sw.dpid) {
                    (Some(k), Some(dpid)) if k == cookie::Kind::Probe as u8 => {
                        self.handle_probe(dpid, *pin)
                    }
                    (Some(k), Some(dpid)) if k == cookie::Kind::Discovery as u8 => {
                        self.handle_lldp(dpid, *pin)
                    }
                    _ => {}
                }
            }
            SessionEvent::FlowRemoved(removed) => {
                self.metrics.received(periscope_codec::openflow::MsgType::FlowRemoved);
                // Ours, and wanted: someone else removed it (a guest's owner wiping its
                // bridge); put it back.
                let wanted = sw.dpid.and_then(|d| self.flowsets.get(&d)).is_some_and(|want| {
                    want.contains_key(&crate::reconcile::flow_key(
                        removed.table_id,
                        removed.priority,
                        &removed.matches,
                    ))
                });
                if sw.reconciler.handle_removed(&removed) && wanted {
                    info!(sw.log, "a flow of ours was removed; restoring it";
                        "table" => removed.table_id.0, "priority" => removed.priority,
                        "reason" => ?removed.reason);
                    sw.dirty_since.get_or_insert_with(Instant::now);
                    self.reconcile(conn);
                }
            }
            SessionEvent::Reply { request, replies } => {
                for m in &replies {
                    self.metrics.received(m.msg_type());
                }
                if flows::is_live_dump(request.tag) {
                    self.handle_flow_dump_reply(request.tag, replies);
                }
            }
            SessionEvent::Other(m) => self.metrics.received(m.msg.msg_type()),
            SessionEvent::Flooding { dropped } => {
                warn!(sw.log, "switch floods the controller; its messages are dropped";
                    "dropped" => dropped);
                self.events.push(
                    "switch_flooding",
                    serde_json::json!({"dpid": sw.dpid.map(|d| d.to_string()), "peer": sw.peer,
                                       "dropped": dropped}),
                );
            }
        }
    }

    /// Reads our flows back from a newly connected switch.
    fn start_dump(&mut self, conn: ConnId) {
        self.send(conn, vec![dump_ours(TAG_DUMP, "dump our flows")]);
    }

    /// Plans and sends the next batch for a switch, if it needs one.
    fn reconcile(&mut self, conn: ConnId) {
        // Until the desired state is read, what a switch holds is kept as it is: a restarted
        // controller must not clean copies it has not yet been told about.
        if !self.nb.ready || !self.may_program(conn) {
            return;
        }
        let Some(dpid) = self.switches.get(&conn).and_then(|s| s.dpid) else { return };
        if !self.plans.contains_key(&dpid) {
            // A bridge the topology does not know (yet): the base pipeline. The copies it holds
            // stay until its hypervisor's database says which are wanted: after a restart a
            // switch often reconnects before its ovsdb-server, and removing them meanwhile
            // would stop the copies only to make them again a moment later.
            let view = BridgeView { mode: self.mode, ..Default::default() };
            let mut base = desired_set(&plan_bridge(&view, &self.nb.state.taps).flows);
            share_bodies(&mut base, &self.base_flows);
            self.base_flows = base.clone();
            let mut want = base;
            if let Some(held) = self.switches.get(&conn).and_then(|s| s.reconciler.actual()) {
                let copies = held.iter().filter(|(_, b)| cookie::serves_taps(b.cookie));
                want.extend(copies.map(|(k, b)| (k.clone(), b.clone())));
            }
            self.flowsets.insert(dpid, want);
        }
        let Some(desired) = self.flowsets.get(&dpid) else { return };
        let Some(sw) = self.switches.get_mut(&conn) else { return };
        let Some(batch) = sw.reconciler.plan(desired) else {
            // Nothing to send: if nothing is in flight and nothing waits for a tunnel port, the
            // bridge holds what it should.
            let complete = self.plans.get(&dpid).is_none_or(|d| d.complete);
            if complete && !sw.reconciler.busy() && !sw.reconciler.needs_dump() {
                if let Some(t) = sw.dirty_since.take() {
                    debug!(sw.log, "bridge already as wanted"; "ms" => t.elapsed().as_secs_f64() * 1e3);
                }
            }
            return;
        };
        sw.dirty_since.get_or_insert_with(Instant::now);
        info!(sw.log, "reconciling"; "batch" => batch.id, "changes" => batch.changes.len());
        let requests = batch_requests(&batch, self.mode);
        self.send(conn, requests);
    }

    fn send(&mut self, conn: ConnId, requests: Vec<Request>) {
        let Some(sw) = self.switches.get_mut(&conn) else { return };
        let types: Vec<_> = requests.iter().map(|r| r.msg.msg_type()).collect();
        match sw.commands.try_send(SwitchCommand::Send(requests)) {
            Ok(()) => types.into_iter().for_each(|t| self.metrics.sent(t)),
            Err(TrySendError::Full(_)) => {
                // The switch cannot keep up: drop the connection; it will reconnect and be
                // reconciled from a fresh read of its flows.
                warn!(sw.log, "switch is not keeping up; disconnecting it"; "peer" => &sw.peer);
                sw.reconciler.reset();
                let _ = sw.commands.try_send(SwitchCommand::Close);
            }
            Err(TrySendError::Closed(_)) => sw.reconciler.reset(),
        }
    }
}

/// A nonce for this controller's LLDP probes: different on every run, so that probes of
/// another controller (or of an earlier run) on the same cables are not taken for ours.
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// A request for the flows with periscope's cookies.
fn dump_ours(tag: u64, label: &str) -> Request {
    let req = MultipartRequest {
        flags: 0,
        body: MultipartRequestBody::Flow(
            FlowStatsRequest {
                cookie: periscope_codec::openflow::Cookie(cookie::MAGIC),
                cookie_mask: cookie::OURS_MASK,
                ..FlowStatsRequest::default()
            }
            .into(),
        ),
    };
    Request { msg: Message::MultipartRequest(req), tag, label: label.into() }
}

/// The flow statistics entries of the replies to a flow dump.
pub(crate) fn flow_stats(replies: Vec<Message>) -> Vec<periscope_codec::openflow::FlowStats> {
    replies
        .into_iter()
        .filter_map(|m| match m {
            Message::MultipartReply(r) => match r.body {
                MultipartReplyBody::Flow(f) => Some(f),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .collect()
}

/// What a guest says once connected: its role is EQUAL (full access beside the owner, who
/// keeps its own), and its connection id is periscope's, so that its probe flows' frames come
/// to it alone.
fn guest_requests() -> Vec<Request> {
    let mut id = vec![0u8; 6];
    id.extend_from_slice(&GUEST_CONTROLLER_ID.to_be_bytes());
    vec![
        Request {
            msg: Message::RoleRequest(RoleMsg { role: ControllerRole::Equal, generation_id: 0 }),
            tag: TAG_GUEST,
            label: "role request EQUAL".into(),
        },
        Request {
            msg: Message::Experimenter(Experimenter {
                experimenter: NICIRA_EXPERIMENTER_ID,
                exp_type: NXT_SET_CONTROLLER_ID,
                data: id,
            }),
            tag: TAG_GUEST,
            label: format!("set controller id {GUEST_CONTROLLER_ID:#x}"),
        },
    ]
}

/// A held frame sent back into the pipeline as if it had just arrived on `port`.
fn reinject(port: PortNo, data: Vec<u8>) -> Request {
    Request {
        msg: Message::PacketOut(PacketOut {
            buffer_id: BufferId::NO_BUFFER,
            in_port: port,
            actions: vec![Action::output(PortNo::TABLE)],
            data,
        }),
        tag: TAG_RELEASE,
        label: format!("re-inject a held frame from port {}", port.0),
    }
}

/// The datapaths whose interfaces an event concerns.
fn event_dpids(kind: &EventKind) -> Vec<Dpid> {
    let locs: Vec<&periscope_topology::Location> = match kind {
        EventKind::InterfaceAppeared { location }
        | EventKind::InterfaceGone { location }
        | EventKind::InterfaceUpdated { location }
        | EventKind::LocationReady { location }
        | EventKind::LocationUnready { location } => vec![location],
        EventKind::InterfaceMoved { from, to, .. } => vec![from, to],
        EventKind::MigrationStarted { from, to, .. } => from.iter().chain(to).collect(),
        EventKind::MigrationFinished { from, to, .. } => {
            from.iter().chain(std::iter::once(to)).collect()
        }
        _ => Vec::new(),
    };
    locs.into_iter().filter_map(|l| l.dpid).collect()
}

fn of_port(p: &periscope_codec::openflow::Port) -> OfPort {
    OfPort { port_no: p.port_no, name: p.name.clone(), live: p.is_live() }
}

/// The flow mods of a batch and its closing barrier. A guest's flows say when they are removed,
/// so that a wipe by the bridge's owner is seen at once.
fn batch_requests(batch: &Batch, mode: Mode) -> Vec<Request> {
    let mut out = Vec::with_capacity(batch.changes.len() + 1);
    for (i, c) in batch.changes.iter().enumerate() {
        let mut fm = c.flow_mod();
        if mode == Mode::Guest && matches!(c, FlowChange::Put(..)) {
            fm.flags |= FLOW_MOD_SEND_FLOW_REM;
        }
        let label = match c {
            FlowChange::Delete(..) => {
                format!("delete flow table={} priority={}", fm.table_id, fm.priority)
            }
            FlowChange::Put(..) => {
                format!("add flow table={} priority={}", fm.table_id, fm.priority)
            }
        };
        out.push(Request {
            msg: Message::FlowMod(fm.into()),
            tag: batch_tag(batch.id, i as u64),
            label,
        });
    }
    out.push(Request {
        msg: Message::BarrierRequest,
        tag: batch_tag(batch.id, BARRIER_INDEX),
        label: format!("barrier of batch {}", batch.id),
    });
    out
}

/// How long the old places' datapaths are given to follow the removal of the copies of delivered
/// frames, once they took `confirm_took` to confirm it: [`DATAPATH_SETTLE`] on a responsive
/// machine, a quarter longer than they took on a busy or starved one, at most [`SETTLE_MAX`]. It
/// assumes that the revalidator thread that updates a datapath's cached flows, woken by the thread
/// that answered, and a frame it let through on its way to the next bridge, wait for the CPU no
/// longer than that answer did (an assumption: a collector starved too receives in bursts, so
/// its times cannot tell when a copy was made). A quarter, not more: a bridge busy deleting a
/// port confirmed in 46 ms on a quiet machine, and the VM's traffic waits for this margin.
fn datapath_settle(confirm_took: Duration) -> Duration {
    (confirm_took + confirm_took / 4).clamp(DATAPATH_SETTLE, SETTLE_MAX)
}

/// Microseconds since the Unix epoch, now: log records are written later than they are made
/// (asynchronously), and this says when the event happened, comparable with a collector's
/// receive times.
fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod settle_tests {
    use super::*;

    #[test]
    fn the_margin_grows_with_a_slow_confirmation_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(datapath_settle(ms(2)), DATAPATH_SETTLE);
        assert_eq!(datapath_settle(ms(120)), ms(150));
        assert_eq!(datapath_settle(ms(900)), SETTLE_MAX);
        assert!(SETTLE_MAX < HOLD_MAX);
    }
}
