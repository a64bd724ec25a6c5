//! Several controllers, one leader: with `--leader-election` each instance asks for an OVSDB
//! lock on the northbound database; the one that holds it is the leader and claims the OpenFlow
//! MASTER role on every bridge with a rising generation id, then reads each bridge's flows and
//! sends the difference. The others are followers: they ask for the SLAVE role, keep their
//! topology and plans warm, and send no flow mod, packet-out or tunnel port change. A leader that
//! loses the lock (or the database connection that carries it) steps down at once, asking its
//! bridges for SLAVE, so that two instances never program a bridge together; a generation id
//! older than the switch's refuses a late claim (`OFPRRFC_STALE`) whatever the instances think.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use periscope_codec::openflow::{ControllerRole, ErrorMsg, ErrorType, Message, RoleMsg};
use serde_json::{json, Value};
use slog::{info, warn};

use super::{Core, TAG_ROLE};
use crate::openflow::driver::{ConnId, Request};
use crate::ovsdb::driver::Command as OvsdbCommand;
use crate::ovsdb::session::LockOp;

/// The northbound database lock whose holder is the leader.
pub const LEADER_LOCK: &str = "periscope_leader";
/// The generation id Open vSwitch reports while no controller has claimed a role with one.
const NO_GENERATION: u64 = u64::MAX;
/// Role requests a switch may answer with another role (or refuse as stale) in a row before
/// the instance gives up on it until it reconnects (another instance keeps raising the
/// generation: two leaders).
const MAX_ATTEMPTS: u32 = 8;

/// What this instance is among the controllers sharing the bridges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No election (`--leader-election` not given): the only controller; every bridge keeps
    /// the role OpenFlow starts a connection with (equal).
    Alone,
    /// Waiting for the lock: SLAVE on every bridge.
    Follower,
    /// Holds the lock: MASTER on every bridge, with this generation id.
    Leader {
        /// The generation id of the claim.
        generation: u64,
    },
}

/// The election's state.
#[derive(Debug)]
pub(super) struct Leadership {
    pub(super) standing: Standing,
    /// Since when the standing is what it is.
    since: SystemTime,
    /// The highest generation id a switch reported.
    seen: u64,
    /// Times this instance became leader.
    pub(super) promotions: u64,
    /// When the instance last became leader, for the time until every bridge is MASTER.
    promoted_at: Option<Instant>,
    /// How long the last promotion took until every connected bridge confirmed MASTER.
    pub(super) last_claim: Option<std::time::Duration>,
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership {
            standing: Standing::Alone,
            since: SystemTime::now(),
            seen: 0,
            promotions: 0,
            promoted_at: None,
            last_claim: None,
        }
    }
}

/// A switch's role towards this instance, as the switch last confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct SwitchRole {
    /// The role confirmed (`Equal` until a role reply says otherwise).
    pub(super) role: Option<ControllerRole>,
    /// A role request is on its way.
    pub(super) asking: bool,
    /// Requests sent in a row without the switch confirming the role wanted.
    attempts: u32,
}

impl SwitchRole {
    /// The role as `show switches` and `/v1/switches` print it.
    pub(super) fn name(&self) -> &'static str {
        match self.role {
            None | Some(ControllerRole::Equal) => "equal",
            Some(ControllerRole::Master) => "master",
            Some(ControllerRole::Slave) => "slave",
            Some(_) => "other",
        }
    }
}

/// Microseconds since the epoch: a generation id that rises from one leader to the next as
/// long as the instances' clocks agree within the time between two elections (the switches'
/// own last generation, learnt from their role replies, is the floor).
fn clock_generation() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn role_request(role: ControllerRole, generation_id: u64) -> Request {
    Request {
        msg: Message::RoleRequest(RoleMsg { role, generation_id }),
        tag: TAG_ROLE,
        label: format!("role request {role:?} generation {generation_id}"),
    }
}

/// Whether an OpenFlow error says a role request carried an old generation id.
pub(super) fn is_stale(e: &ErrorMsg) -> bool {
    e.err_type == ErrorType::RoleRequestFailed
        && e.code == periscope_codec::openflow::error::role_request_failed::STALE
}

impl Core {
    /// Takes part in the election of a leader among the controllers sharing the northbound
    /// database: follower until this instance holds [`LEADER_LOCK`].
    pub fn enable_leader_election(&mut self) {
        self.leader.standing = Standing::Follower;
        self.leader.since = SystemTime::now();
        self.ask_lock();
    }

    /// Asks for the leader lock (again, after it was stolen).
    pub(super) fn ask_lock(&mut self) {
        if let Some(w) = &self.nb.writer {
            let cmd = OvsdbCommand::Lock { op: LockOp::Lock, lock: LEADER_LOCK.into() };
            if let Err(e) = w.try_send(cmd) {
                warn!(self.log, "cannot ask for the leader lock"; "error" => %e);
            }
        }
    }

    /// Whether this instance programs bridges at all (alone, or leader).
    pub(super) fn programs(&self) -> bool {
        !matches!(self.leader.standing, Standing::Follower)
    }

    /// Whether this instance may send flow mods and packet-outs to the switch now: alone, or
    /// leader with the switch's MASTER role confirmed.
    pub(super) fn may_program(&self, conn: ConnId) -> bool {
        match self.leader.standing {
            Standing::Alone => true,
            Standing::Follower => false,
            Standing::Leader { .. } => self
                .switches
                .get(&conn)
                .is_some_and(|s| s.role.role == Some(ControllerRole::Master)),
        }
    }

    /// The lock is ours: claim every bridge.
    pub(super) fn handle_locked(&mut self) {
        if matches!(self.leader.standing, Standing::Leader { .. }) {
            return;
        }
        let generation = clock_generation().max(self.leader.seen.saturating_add(1));
        info!(self.log, "leader: claiming every bridge"; "generation" => generation,
            "bridges" => self.by_dpid.len());
        self.leader.standing = Standing::Leader { generation };
        self.leader.since = SystemTime::now();
        self.leader.promotions += 1;
        self.leader.promoted_at = Some(Instant::now());
        self.leader.last_claim = None;
        self.metrics.leader_changes += 1;
        self.events.push("leader_elected", json!({ "generation": generation }));
        let conns: Vec<ConnId> = self.by_dpid.values().copied().collect();
        for conn in conns {
            self.claim_role(conn);
        }
        self.claimed_all();
        // Tunnel ports the old leader did not get to create (or remove): now, not at the next
        // full recompute.
        self.reconcile_tunnels();
    }

    /// The lock is gone (stolen, or its database connection lost): stop programming now and
    /// tell every bridge, then wait for the lock again.
    pub(super) fn step_down(&mut self, why: &str) {
        let Standing::Leader { generation } = self.leader.standing else { return };
        warn!(self.log, "leader no more: stepping down"; "why" => why, "generation" => generation);
        self.leader.standing = Standing::Follower;
        self.leader.since = SystemTime::now();
        self.leader.promoted_at = None;
        self.events.push("leader_stepped_down", json!({ "generation": generation, "why": why }));
        // Held frames would be re-injected by a controller that no longer programs: dropped
        // (the VM retransmits; the new leader moves the copies).
        self.holds.clear();
        self.tunnel_txns.clear();
        let conns: Vec<ConnId> = self.by_dpid.values().copied().collect();
        for conn in conns {
            if let Some(sw) = self.switches.get_mut(&conn) {
                // What the next leader does to the bridge is unknown to us from now on.
                sw.reconciler.reset();
                sw.role.asking = true;
            }
            self.send(conn, vec![role_request(ControllerRole::Slave, generation)]);
        }
    }

    /// The role this instance's standing calls for on every bridge.
    fn wanted_role(&self) -> Option<ControllerRole> {
        match self.leader.standing {
            Standing::Alone => None,
            Standing::Follower => Some(ControllerRole::Slave),
            Standing::Leader { .. } => Some(ControllerRole::Master),
        }
    }

    /// Asks a switch for the role this instance's standing calls for: a leader claims MASTER
    /// with its generation; a follower first asks the switch's generation (a role reply always
    /// carries it), since a SLAVE request's generation is checked and kept like a master's and
    /// must not be newer than the leader's.
    pub(super) fn claim_role(&mut self, conn: ConnId) {
        let request = match self.leader.standing {
            Standing::Alone => return,
            Standing::Follower => role_request(ControllerRole::NoChange, 0),
            Standing::Leader { generation } => role_request(ControllerRole::Master, generation),
        };
        let Some(sw) = self.switches.get_mut(&conn) else { return };
        sw.role.asking = true;
        self.send(conn, vec![request]);
    }

    /// The switch answered a role request: confirmed, or (the answer to a query, or a role
    /// that lags the standing) asked again with the newest generation known.
    pub(super) fn handle_role_reply(&mut self, conn: ConnId, reply: RoleMsg) {
        if reply.generation_id != NO_GENERATION {
            self.leader.seen = self.leader.seen.max(reply.generation_id);
        }
        let wanted = self.wanted_role();
        if wanted.is_some_and(|w| w != reply.role) {
            self.raise_generation();
            let request = match self.leader.standing {
                Standing::Leader { generation } => role_request(ControllerRole::Master, generation),
                _ => role_request(ControllerRole::Slave, self.leader.seen),
            };
            let Some(sw) = self.switches.get_mut(&conn) else { return };
            sw.role.role = Some(reply.role);
            if sw.role.attempts < MAX_ATTEMPTS {
                sw.role.attempts += 1;
                self.send(conn, vec![request]);
            } else {
                sw.role.asking = false;
                warn!(sw.log, "the switch keeps another role; giving up until it reconnects";
                    "role" => ?reply.role, "wanted" => ?wanted);
            }
            return;
        }
        let Some(sw) = self.switches.get_mut(&conn) else { return };
        let before = sw.role.role;
        sw.role = SwitchRole { role: Some(reply.role), asking: false, attempts: 0 };
        info!(sw.log, "role confirmed"; "role" => sw.role.name(),
            "generation" => reply.generation_id);
        self.events.push(
            "switch_role",
            json!({"dpid": sw.dpid.map(|d| d.to_string()), "role": sw.role.name(),
                   "generation": reply.generation_id}),
        );
        // A MASTER confirmed again right after a step down finds the reconciler reset too.
        let fresh = before != Some(ControllerRole::Master) || sw.reconciler.needs_dump();
        if reply.role == ControllerRole::Master && fresh {
            // What the old leader left is unknown: read the flows and send the difference.
            sw.reconciler.reset();
            self.start_dump(conn);
            self.claimed_all();
        }
    }

    /// The switch refused a role request. A stale generation means another instance claimed
    /// with a newer one: ask the switch for it, then claim again above it (a leader holds the
    /// lock, so its claim is the right one) or follow it (a follower).
    pub(super) fn handle_role_refused(&mut self, conn: ConnId, error: &ErrorMsg) {
        let Some(sw) = self.switches.get_mut(&conn) else { return };
        warn!(sw.log, "role request refused"; "error" => %error);
        if !is_stale(error) || sw.role.attempts >= MAX_ATTEMPTS {
            sw.role.asking = false;
            return;
        }
        sw.role.attempts += 1;
        self.send(conn, vec![role_request(ControllerRole::NoChange, 0)]);
    }

    /// A leader whose generation is not above the newest a switch reported raises it.
    fn raise_generation(&mut self) {
        if let Standing::Leader { generation } = self.leader.standing {
            if self.leader.seen >= generation {
                let generation = self.leader.seen.saturating_add(1);
                info!(self.log, "leader: a switch knows a newer generation; raising ours";
                    "generation" => generation);
                self.leader.standing = Standing::Leader { generation };
            }
        }
    }

    /// Records how long the claim took once every connected bridge is MASTER.
    fn claimed_all(&mut self) {
        let Some(t) = self.leader.promoted_at else { return };
        let all = self
            .by_dpid
            .values()
            .filter_map(|c| self.switches.get(c))
            .all(|s| s.role.role == Some(ControllerRole::Master));
        if all {
            let took = t.elapsed();
            self.leader.promoted_at = None;
            self.leader.last_claim = Some(took);
            info!(self.log, "leader: MASTER on every bridge"; "ms" => took.as_secs_f64() * 1e3);
            self.events.push("leader_claimed", json!({ "ms": took.as_secs_f64() * 1e3 }));
        }
    }

    /// `GET /v1/cluster`: this instance's standing in the election.
    pub(super) fn cluster(&self) -> Value {
        let (standing, generation) = match self.leader.standing {
            Standing::Alone => ("alone", None),
            Standing::Follower => ("follower", None),
            Standing::Leader { generation } => ("leader", Some(generation)),
        };
        let since = self.leader.since.duration_since(UNIX_EPOCH).ok();
        let roles = |r: ControllerRole| {
            self.by_dpid
                .values()
                .filter_map(|c| self.switches.get(c))
                .filter(|s| s.role.role == Some(r))
                .count()
        };
        json!({
            "election": self.leader.standing != Standing::Alone,
            "lock": LEADER_LOCK,
            "standing": standing,
            "leader": matches!(self.leader.standing, Standing::Leader { .. } | Standing::Alone),
            "since_ms": since.map(|d| d.as_millis() as u64),
            "generation": generation,
            "highest_generation_seen": self.leader.seen,
            "promotions": self.leader.promotions,
            "last_claim_ms": self.leader.last_claim.map(|d| d.as_secs_f64() * 1e3),
            "switches": self.by_dpid.len(),
            "switches_master": roles(ControllerRole::Master),
            "switches_slave": roles(ControllerRole::Slave),
        })
    }
}

#[cfg(test)]
mod tests {
    use periscope_codec::openflow::{Dpid, FeaturesReply, MsgType, Xid};
    use tokio::sync::mpsc;

    use super::*;
    use crate::openflow::driver::{SwitchCommand, SwitchEvent};
    use crate::openflow::session::{Outstanding, SessionEvent};
    use crate::ovsdb::driver::DriverEvent;
    use crate::ovsdb::session::SessionEvent as OvsdbEvent;

    /// A core with a northbound writer (whose commands are returned) and one ready switch
    /// (whose requests are returned).
    fn core_with_switch(
        election: bool,
    ) -> (Core, mpsc::Receiver<OvsdbCommand>, mpsc::Receiver<SwitchCommand>) {
        let log = slog::Logger::root(slog::Discard, slog::o!());
        let (nb_tx, nb_rx) = mpsc::channel(16);
        let mut core = Core::with_northbound(log, Default::default(), Default::default(), nb_tx);
        if election {
            core.enable_leader_election();
        }
        let (tx, rx) = mpsc::channel(64);
        let conn = ConnId(1);
        core.handle_switch_event(conn, SwitchEvent::Accepted { peer: "test".into(), commands: tx });
        let features = FeaturesReply {
            datapath_id: Dpid(0xe1a),
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0,
            reserved: 0,
        };
        core.handle_switch_event(
            conn,
            SwitchEvent::Session(SessionEvent::Ready { features, ports: Vec::new() }),
        );
        (core, nb_rx, rx)
    }

    /// The role requests sent so far (role, generation).
    fn roles_sent(rx: &mut mpsc::Receiver<SwitchCommand>) -> Vec<(ControllerRole, u64)> {
        let mut out = Vec::new();
        while let Ok(SwitchCommand::Send(requests)) = rx.try_recv() {
            for r in requests {
                if let Message::RoleRequest(m) = r.msg {
                    out.push((m.role, m.generation_id));
                }
            }
        }
        out
    }

    fn reply(core: &mut Core, role: ControllerRole, generation_id: u64) {
        let request = Outstanding {
            xid: Xid(1),
            msg_type: MsgType::RoleRequest,
            tag: TAG_ROLE,
            label: String::new(),
            sent_at: Instant::now(),
        };
        let replies = vec![Message::RoleReply(RoleMsg { role, generation_id })];
        core.handle_switch_event(
            ConnId(1),
            SwitchEvent::Session(SessionEvent::Reply { request, replies }),
        );
    }

    fn nb(core: &mut Core, ev: OvsdbEvent) {
        core.handle_nb_event(DriverEvent::Session(ev));
    }

    #[test]
    fn alone_no_role_is_asked_and_every_bridge_is_programmed() {
        let (core, _, mut rx) = core_with_switch(false);
        assert_eq!(roles_sent(&mut rx), vec![]);
        assert!(core.programs() && core.may_program(ConnId(1)));
        assert_eq!(core.cluster()["standing"], "alone");
    }

    #[test]
    fn a_follower_asks_the_generation_then_slave_and_programs_nothing() {
        let (mut core, mut nb_rx, mut rx) = core_with_switch(true);
        assert!(matches!(
            nb_rx.try_recv(),
            Ok(OvsdbCommand::Lock { op: LockOp::Lock, ref lock }) if lock == LEADER_LOCK
        ));
        assert_eq!(roles_sent(&mut rx), vec![(ControllerRole::NoChange, 0)]);
        // No controller claimed yet: the switch reports no generation (all ones).
        reply(&mut core, ControllerRole::Equal, NO_GENERATION);
        assert_eq!(roles_sent(&mut rx), vec![(ControllerRole::Slave, 0)]);
        reply(&mut core, ControllerRole::Slave, 0);
        assert!(!core.may_program(ConnId(1)));
        assert_eq!(core.cluster()["switches_slave"], 1);
        assert_eq!(core.cluster()["leader"], false);
    }

    #[test]
    fn the_lock_makes_a_leader_above_every_generation_seen_and_losing_it_steps_down() {
        let (mut core, _, mut rx) = core_with_switch(true);
        roles_sent(&mut rx);
        // Another leader's generation, far in the future of this clock.
        let theirs = u64::MAX / 2;
        reply(&mut core, ControllerRole::Equal, theirs);
        assert_eq!(roles_sent(&mut rx), vec![(ControllerRole::Slave, theirs)]);
        reply(&mut core, ControllerRole::Slave, theirs);
        nb(&mut core, OvsdbEvent::Locked { lock: LEADER_LOCK.into() });
        assert_eq!(roles_sent(&mut rx), vec![(ControllerRole::Master, theirs + 1)]);
        assert!(!core.may_program(ConnId(1)), "not before the switch confirms");
        reply(&mut core, ControllerRole::Master, theirs + 1);
        assert!(core.may_program(ConnId(1)));
        assert_eq!(core.cluster()["standing"], "leader");
        assert_eq!(core.cluster()["switches_master"], 1);
        // The database connection carrying the lock is lost: SLAVE at once, nothing programmed.
        nb(&mut core, OvsdbEvent::LockLost { lock: LEADER_LOCK.into() });
        assert_eq!(roles_sent(&mut rx), vec![(ControllerRole::Slave, theirs + 1)]);
        assert!(!core.programs() && !core.may_program(ConnId(1)));
        assert_eq!(core.cluster()["standing"], "follower");
    }

    #[test]
    fn a_stale_claim_asks_the_switch_and_claims_above_what_it_holds() {
        let (mut core, _, mut rx) = core_with_switch(true);
        nb(&mut core, OvsdbEvent::Locked { lock: LEADER_LOCK.into() });
        let sent = roles_sent(&mut rx);
        let Some(&(ControllerRole::Master, ours)) = sent.last() else { panic!("{sent:?}") };
        let request = Outstanding {
            xid: Xid(2),
            msg_type: MsgType::RoleRequest,
            tag: TAG_ROLE,
            label: String::new(),
            sent_at: Instant::now(),
        };
        let error = ErrorMsg {
            err_type: ErrorType::RoleRequestFailed,
            code: periscope_codec::openflow::error::role_request_failed::STALE,
            experimenter: None,
            data: Vec::new(),
        };
        core.handle_switch_event(
            ConnId(1),
            SwitchEvent::Session(SessionEvent::RequestFailed {
                request: Some(request),
                xid: Xid(2),
                error,
            }),
        );
        assert_eq!(roles_sent(&mut rx), vec![(ControllerRole::NoChange, 0)]);
        reply(&mut core, ControllerRole::Slave, ours + 10);
        assert_eq!(roles_sent(&mut rx), vec![(ControllerRole::Master, ours + 11)]);
        assert_eq!(core.cluster()["generation"], ours + 11);
    }
}
