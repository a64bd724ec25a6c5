//! The controller's share of mirror reprogramming at scale, in-process, with emulated switches.
//!
//! One [`Core`] sees 50 hypervisors (one bridge each, periscope's two tunnel ports present), 1000
//! VM interfaces over 20 tenants, 20 tap services and 1000 tap flows. Each switch is emulated:
//! it answers the flow dump with nothing and confirms every batch's barrier after a simulated
//! latency (`PERISCOPE_BENCH_SWITCH_LATENCY_US`, default 0), applying the batch's flow mods to
//! its own table first. Then VMs migrate, one at a time and then 100 at once, make-before-break
//! as the core sees it: the destination's rows appear (one OVSDB update per VM), the VM's first
//! frame arrives as a PACKET_IN from the destination's probe flow, the source's rows go.
//!
//! For each migration it measures, on the wall clock:
//! - **install**: from handing the core the destination's rows to the moment the core receives
//!   the destination switch's confirmation of a batch after which that switch holds flows for
//!   the new port (the figure of the target and of the OVN anchor);
//! - **switchover**: from the probe PACKET_IN to the core's re-injection of the held frame
//!   (the copies moved from the source to the destination, two confirmed phases);
//! - **cleanup**: from the source's rows going to the confirmation after which the source holds
//!   no flow for the old port;
//!
//! and the time spent inside the core's calls (its CPU share on this one thread), plus the
//! core's own per-bridge `bridge reprogrammed` figures (what `/v1/stats` summarises), captured
//! from its log. Real Open vSwitch install time is not included: `benches/migration.rs`
//! measures that. `cargo bench --bench reprogram_scale`; `PERISCOPE_BENCH_SINGLE` (default 100)
//! and `PERISCOPE_BENCH_ROUNDS` (default 3) set the counts.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use slog::{o, Drain, Key, OwnedKVList, Record, Serializer, KV};
use tokio::sync::mpsc;

use periscope::controller::core::Core;
use periscope::northbound::api::ApiCall;
use periscope::northbound::auth::Caller;
use periscope::openflow::driver::{ConnId, SwitchCommand, SwitchEvent, COMMAND_QUEUE};
use periscope::openflow::session::{Outstanding, SessionEvent};
use periscope::policy::cookie;
use periscope_codec::openflow::{
    BufferId, Cookie, Dpid, FeaturesReply, FlowMod, FlowModCommand, Match, Message, MsgType,
    OxmField, PacketIn, PacketInReason, Port, PortNo, TableId, Xid,
};
use periscope_topology::change::HypervisorSnapshot;
use periscope_topology::rows::{BridgeRow, InterfaceRow, PortRow};
use periscope_topology::{Change, HypervisorId, TopologyConfig, Uuid};

const HYPERVISORS: usize = 50;
const VMS: usize = 1000;

/// The bench acts as the operator.
fn operator() -> Caller {
    Caller::operator("bench")
}
const TENANTS: usize = 20;
const BURST: usize = 100;
/// Tag of the flow dump the core sends first (`TAG_DUMP` in the core).
const TAG_DUMP: u64 = u64::MAX;
/// The tunnel ports' OpenFlow numbers on every bridge.
const OFPORT_VXLAN: u32 = 1;
const OFPORT_GRE: u32 = 2;

fn uuid(kind: u32, n: u64) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn dpid_of(h: usize) -> Dpid {
    Dpid(0x5000 + h as u64)
}

/// The core's `bridge reprogrammed` records: (dpid, ms), in order.
#[derive(Clone, Default)]
struct Reprograms(Arc<Mutex<Vec<(String, f64)>>>);

struct Pick {
    dpid: Option<String>,
    ms: Option<f64>,
}

impl Serializer for Pick {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments) -> slog::Result {
        match key {
            "ms" => self.ms = val.to_string().parse().ok(),
            "dpid" => self.dpid = Some(val.to_string()),
            _ => {}
        }
        Ok(())
    }
}

impl Drain for Reprograms {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        if record.msg().as_str() != Some("bridge reprogrammed") {
            return Ok(());
        }
        let mut pick = Pick { dpid: None, ms: None };
        let _ = record.kv().serialize(record, &mut pick);
        let _ = values.serialize(record, &mut pick);
        if let (Some(d), Some(ms)) = (pick.dpid, pick.ms) {
            if let Ok(mut v) = self.0.lock() {
                v.push((d, ms));
            }
        }
        Ok(())
    }
}

/// One emulated switch.
struct Switch {
    conn: ConnId,
    commands: mpsc::Receiver<SwitchCommand>,
    /// Flows held: (table, priority, match, cookie).
    table: Vec<(u8, u16, Match, Cookie)>,
    /// Answers not yet given, in order.
    inflight: VecDeque<Answer>,
    next_xid: u32,
}

enum Answer {
    Dump { due: Instant },
    Barrier { due: Instant, tag: u64, tags: Vec<u64>, mods: Vec<FlowMod> },
}

impl Answer {
    fn due(&self) -> Instant {
        match self {
            Answer::Dump { due } | Answer::Barrier { due, .. } => *due,
        }
    }
}

impl Switch {
    fn apply(&mut self, fm: FlowMod) {
        let key = |t: &(u8, u16, Match, Cookie)| {
            t.0 == fm.table_id.0 && t.1 == fm.priority && t.2 == fm.matches
        };
        self.table.retain(|t| !key(t));
        if fm.command == FlowModCommand::Add {
            self.table.push((fm.table_id.0, fm.priority, fm.matches, fm.cookie));
        }
    }

    fn has_port(&self, port: PortNo) -> bool {
        self.table.iter().any(|t| t.2.fields.contains(&OxmField::InPort(port)))
    }

    /// The probe flow on `port`: its table and cookie.
    fn probe(&self, port: PortNo) -> Option<(u8, Cookie)> {
        self.table
            .iter()
            .find(|t| {
                t.2.fields.contains(&OxmField::InPort(port))
                    && cookie::decode(t.3).map(|(k, _)| k) == Some(cookie::Kind::Probe as u8)
            })
            .map(|t| (t.0, t.3))
    }

    fn outstanding(&mut self, msg_type: MsgType, tag: u64, sent_at: Instant) -> Outstanding {
        self.next_xid += 1;
        Outstanding { xid: Xid(self.next_xid), msg_type, tag, label: String::new(), sent_at }
    }
}

/// Where a VM interface is.
#[derive(Clone)]
struct Vm {
    hv: usize,
    ofport: u32,
    iface: String,
    port: String,
}

/// What a measurement waits for.
#[derive(Clone, Copy, PartialEq)]
enum Wait {
    /// Flows on `port` at `hv`.
    Install,
    /// Re-injection from `port` at `hv`.
    Switchover,
    /// No flow left on `port` at `hv`.
    Cleanup,
}

struct Waiting {
    what: Wait,
    hv: usize,
    port: PortNo,
    since: Instant,
}

/// The bench: the core, the emulated switches and the rows of every hypervisor.
struct Bench {
    core: Core,
    switches: Vec<Switch>,
    latency: Duration,
    bridges: Vec<BridgeRow>,
    vms: Vec<Vm>,
    next_ofport: Vec<u32>,
    next_row: u64,
    /// Time spent inside the core's calls.
    in_core: Duration,
    waiting: Vec<Waiting>,
    done: Vec<(Wait, Duration)>,
    flow_mods: u64,
    reprograms: Reprograms,
    /// Tap flows per VM, for reporting.
    tap_flows: usize,
}

fn hv_id(h: usize) -> HypervisorId {
    HypervisorId::from(format!("hv{h:02}"))
}

fn iface_row(uuid: &str, name: &str, ofport: u32, vm: usize) -> InterfaceRow {
    let mut r = InterfaceRow {
        uuid: Uuid::from(uuid.to_string()),
        name: name.to_string(),
        ofport: Some(PortNo(ofport)),
        ..Default::default()
    };
    let ids = [
        ("iface-id", format!("port-{vm:04}")),
        ("attached-mac", format!("fa:16:3e:00:{:02x}:{:02x}", vm >> 8, vm & 0xff)),
        ("vm-uuid", uuid_vm(vm)),
        ("tenant-id", format!("tenant-{:02}", vm % TENANTS)),
    ];
    for (k, v) in ids {
        r.external_ids.insert(k.into(), v.into());
    }
    r
}

fn uuid_vm(vm: usize) -> String {
    uuid(0xd, vm as u64)
}

fn tunnel_row(bridge: &str, kind: &str, ofport: u32) -> (PortRow, InterfaceRow) {
    let short = &bridge.replace('-', "")[..6];
    let name = format!("psc-{}-{short}", if kind == "vxlan" { "vx" } else { "gre" });
    let mut i = InterfaceRow {
        uuid: Uuid::from(format!("{bridge}-{kind}-i")),
        name: name.clone(),
        kind: kind.to_string(),
        ofport: Some(PortNo(ofport)),
        ..Default::default()
    };
    i.external_ids.insert("periscope-owned".into(), "true".into());
    i.options.insert("remote_ip".into(), "flow".into());
    i.options.insert("key".into(), "flow".into());
    let p = PortRow {
        uuid: Uuid::from(format!("{bridge}-{kind}-p")),
        name,
        interfaces: BTreeSet::from([i.uuid.clone()]),
    };
    (p, i)
}

fn of_port(no: u32, name: &str) -> Port {
    Port {
        port_no: PortNo(no),
        hw_addr: Default::default(),
        name: name.to_string(),
        config: 0,
        state: 0,
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

impl Bench {
    /// Builds the world and programs every switch.
    fn new(latency: Duration) -> Bench {
        let reprograms = Reprograms::default();
        let log = slog::Logger::root(reprograms.clone().fuse(), o!());
        let core = Core::new(log, TopologyConfig::default());
        let mut b = Bench {
            core,
            switches: Vec::new(),
            latency,
            bridges: Vec::new(),
            vms: Vec::new(),
            next_ofport: vec![10; HYPERVISORS],
            next_row: 1,
            in_core: Duration::ZERO,
            waiting: Vec::new(),
            done: Vec::new(),
            flow_mods: 0,
            reprograms,
            tap_flows: 0,
        };
        // Every hypervisor's database, as a resync sees it.
        let mut snaps: Vec<HypervisorSnapshot> = Vec::new();
        for h in 0..HYPERVISORS {
            let bridge = uuid(0xb, h as u64);
            let mut snap = HypervisorSnapshot::default();
            let mut row = BridgeRow {
                uuid: Uuid::from(bridge.clone()),
                name: "br-int".into(),
                datapath_id: Some(dpid_of(h)),
                ports: BTreeSet::new(),
            };
            for (kind, no) in [("vxlan", OFPORT_VXLAN), ("gre", OFPORT_GRE)] {
                let (p, i) = tunnel_row(&bridge, kind, no);
                row.ports.insert(p.uuid.clone());
                snap.ports.push(p);
                snap.interfaces.push(i);
            }
            b.bridges.push(row);
            snaps.push(snap);
        }
        for v in 0..VMS {
            let h = v % HYPERVISORS;
            let ofport = b.next_ofport[h];
            b.next_ofport[h] += 1;
            let (iface, port) = (uuid(0x1, b.next_row), uuid(0x2, b.next_row));
            b.next_row += 1;
            let i = iface_row(&iface, &format!("tap{v:04}"), ofport, v);
            let p = PortRow {
                uuid: Uuid::from(port.clone()),
                name: i.name.clone(),
                interfaces: BTreeSet::from([i.uuid.clone()]),
            };
            b.bridges[h].ports.insert(p.uuid.clone());
            snaps[h].ports.push(p);
            snaps[h].interfaces.push(i);
            b.vms.push(Vm { hv: h, ofport, iface, port });
        }
        let mut changes = Vec::new();
        for (h, mut snap) in snaps.into_iter().enumerate() {
            snap.bridges.push(b.bridges[h].clone());
            changes.push(Change::HypervisorReplaced { hypervisor: hv_id(h), snapshot: snap });
        }
        b.topology(changes);
        // The switches connect, finish the handshake and are read back.
        for h in 0..HYPERVISORS {
            let conn = ConnId(h as u64 + 1);
            let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
            let peer = format!("emulated:{h}");
            b.timed(|c| c.handle_switch_event(conn, SwitchEvent::Accepted { peer, commands: tx }));
            let mut ports: Vec<Port> =
                vec![of_port(OFPORT_VXLAN, "vx"), of_port(OFPORT_GRE, "gre")];
            ports.extend(
                b.vms
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.hv == h)
                    .map(|(n, v)| of_port(v.ofport, &format!("tap{n:04}"))),
            );
            let features = FeaturesReply {
                datapath_id: dpid_of(h),
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0,
                reserved: 0,
            };
            b.timed(|c| {
                c.handle_switch_event(
                    conn,
                    SwitchEvent::Session(SessionEvent::Ready { features, ports }),
                )
            });
            b.switches.push(Switch {
                conn,
                commands: rx,
                table: Vec::new(),
                inflight: VecDeque::new(),
                next_xid: 0,
            });
        }
        b.pump();
        // Taps: one service per tenant, one tap flow per VM (by VM uuid or by iface-id).
        let mut services = Vec::new();
        for t in 0..TENANTS {
            let allow = json!({"allowed_collectors": ["192.0.2.0/24"], "max_tap_flows": VMS});
            let r = b.timed(|c| {
                c.handle_api_as(&operator(), ApiCall::PutTenant(format!("tenant-{t:02}"), allow))
            });
            assert_eq!(r.status, 201, "{}", r.body);
            let spec = json!({
                "name": format!("collector-{t:02}"), "tenant": format!("tenant-{t:02}"),
                "encap": if t % 2 == 0 { "vxlan" } else { "gre" },
                "remote_ip": format!("192.0.2.{}", 10 + t),
            });
            let r = b.timed(|c| c.handle_api_as(&operator(), ApiCall::CreateService(spec)));
            assert_eq!(r.status, 201, "{}", r.body);
            services.push(r.body["id"].as_u64().expect("service id"));
        }
        for v in 0..VMS {
            let source = if v % 2 == 0 {
                json!({"vm": uuid_vm(v)})
            } else {
                json!({"iface_id": format!("port-{v:04}")})
            };
            let spec = json!({
                "name": format!("tap-{v:04}"), "tenant": format!("tenant-{:02}", v % TENANTS),
                "tap_service": services[v % TENANTS], "source": source, "direction": "BOTH",
            });
            let r = b.timed(|c| c.handle_api_as(&operator(), ApiCall::CreateFlow(spec)));
            assert_eq!(r.status, 201, "{}", r.body);
            b.tap_flows += 1;
        }
        b.pump();
        for v in 0..VMS {
            let vm = &b.vms[v];
            assert!(b.switches[vm.hv].has_port(PortNo(vm.ofport)), "vm {v} has no flows");
        }
        b
    }

    fn timed<R>(&mut self, f: impl FnOnce(&mut Core) -> R) -> R {
        let t = Instant::now();
        let r = f(&mut self.core);
        self.in_core += t.elapsed();
        r
    }

    fn topology(&mut self, changes: Vec<Change>) {
        self.timed(|c| c.handle_topology(changes));
    }

    fn flows_held(&self) -> usize {
        self.switches.iter().map(|s| s.table.len()).sum()
    }

    /// Takes every command the core queued; returns whether there were any.
    fn collect(&mut self) -> bool {
        let mut any = false;
        for h in 0..self.switches.len() {
            while let Ok(cmd) = self.switches[h].commands.try_recv() {
                any = true;
                let now = Instant::now();
                let due = now + self.latency;
                let requests = match cmd {
                    SwitchCommand::Send(r) => r,
                    SwitchCommand::Close => panic!("the core closed switch {h}"),
                };
                let mut mods = Vec::new();
                let mut tags = Vec::new();
                for r in requests {
                    match r.msg {
                        Message::FlowMod(fm) => {
                            self.flow_mods += 1;
                            tags.push(r.tag);
                            mods.push(*fm);
                        }
                        Message::BarrierRequest => {
                            let mods = std::mem::take(&mut mods);
                            let tags = std::mem::take(&mut tags);
                            self.switches[h].inflight.push_back(Answer::Barrier {
                                due,
                                tag: r.tag,
                                tags,
                                mods,
                            });
                        }
                        Message::MultipartRequest(_) if r.tag == TAG_DUMP => {
                            self.switches[h].inflight.push_back(Answer::Dump { due });
                        }
                        Message::PacketOut(po) => {
                            let port = po.in_port;
                            self.finish(now, |w| {
                                w.what == Wait::Switchover && w.hv == h && w.port == port
                            });
                        }
                        other => panic!("unexpected request to switch {h}: {other:?}"),
                    }
                }
                assert!(mods.is_empty(), "flow mods without a barrier");
            }
        }
        any
    }

    fn finish(&mut self, at: Instant, mut matches: impl FnMut(&Waiting) -> bool) {
        let mut i = 0;
        while i < self.waiting.len() {
            if matches(&self.waiting[i]) {
                let w = self.waiting.swap_remove(i);
                self.done.push((w.what, at - w.since));
            } else {
                i += 1;
            }
        }
    }

    /// Answers the switch's oldest request.
    fn answer(&mut self, h: usize) {
        let Some(a) = self.switches[h].inflight.pop_front() else { return };
        let sent_at = a.due() - self.latency;
        let sw = &mut self.switches[h];
        let ev = match a {
            Answer::Dump { .. } => {
                let request = sw.outstanding(MsgType::MultipartRequest, TAG_DUMP, sent_at);
                SessionEvent::Reply { request, replies: Vec::new() }
            }
            Answer::Barrier { tag, tags, mods, .. } => {
                for m in mods {
                    sw.apply(m);
                }
                let barrier = sw.outstanding(MsgType::BarrierRequest, tag, sent_at);
                SessionEvent::Confirmed { barrier, tags }
            }
        };
        let conn = sw.conn;
        let now = Instant::now();
        let sw = &self.switches[h];
        let (install, cleanup): (Vec<PortNo>, Vec<PortNo>) = self
            .waiting
            .iter()
            .filter(|w| w.hv == h)
            .map(|w| w.port)
            .partition(|p| sw.has_port(*p));
        self.finish(now, |w| {
            w.hv == h
                && ((w.what == Wait::Install && install.contains(&w.port))
                    || (w.what == Wait::Cleanup && cleanup.contains(&w.port)))
        });
        self.timed(|c| c.handle_switch_event(conn, SwitchEvent::Session(ev)));
    }

    /// Runs until every switch is idle and the core sent nothing more.
    fn pump(&mut self) {
        loop {
            let got = self.collect();
            let now = Instant::now();
            let due: Vec<usize> = (0..self.switches.len())
                .filter(|h| self.switches[*h].inflight.front().is_some_and(|a| a.due() <= now))
                .collect();
            for h in &due {
                self.answer(*h);
            }
            if got || !due.is_empty() {
                continue;
            }
            let next =
                self.switches.iter().filter_map(|s| s.inflight.front()).map(Answer::due).min();
            // A hold waiting for the old places' datapaths to settle wants a tick then.
            if let Some(t) = self.core.next_deadline().filter(|t| next.is_none_or(|n| *t < n)) {
                std::thread::sleep(t.saturating_duration_since(Instant::now()));
                self.timed(Core::tick);
                continue;
            }
            match next {
                Some(t) => std::thread::sleep(t.saturating_duration_since(Instant::now())),
                None => {
                    self.timed(Core::tick);
                    if !self.collect() {
                        return;
                    }
                }
            }
        }
    }

    /// The destination's rows for `vm` at `to` (one OVSDB update).
    fn plug(&mut self, vm: usize, to: usize) -> (Vec<Change>, Vm) {
        let ofport = self.next_ofport[to];
        self.next_ofport[to] += 1;
        let (iface, port) = (uuid(0x1, self.next_row), uuid(0x2, self.next_row));
        self.next_row += 1;
        let i = iface_row(&iface, &format!("tap{vm:04}"), ofport, vm);
        let p = PortRow {
            uuid: Uuid::from(port.clone()),
            name: i.name.clone(),
            interfaces: BTreeSet::from([i.uuid.clone()]),
        };
        self.bridges[to].ports.insert(p.uuid.clone());
        let hv = hv_id(to);
        let changes = vec![
            Change::InterfaceUpserted { hypervisor: hv.clone(), row: i },
            Change::PortUpserted { hypervisor: hv.clone(), row: p },
            Change::BridgeUpserted { hypervisor: hv, row: self.bridges[to].clone() },
        ];
        (changes, Vm { hv: to, ofport, iface, port })
    }

    /// The source's rows for `vm` going (one OVSDB update).
    fn unplug(&mut self, old: &Vm) -> Vec<Change> {
        self.bridges[old.hv].ports.remove(&Uuid::from(old.port.clone()));
        let hv = hv_id(old.hv);
        vec![
            Change::BridgeUpserted { hypervisor: hv.clone(), row: self.bridges[old.hv].clone() },
            Change::PortRemoved { hypervisor: hv.clone(), uuid: Uuid::from(old.port.clone()) },
            Change::InterfaceRemoved { hypervisor: hv, uuid: Uuid::from(old.iface.clone()) },
        ]
    }

    /// The VM's first frame at its new place, from the probe flow there.
    fn first_frame(&self, vm: usize, at: &Vm) -> SessionEvent {
        let sw = &self.switches[at.hv];
        let port = PortNo(at.ofport);
        let (table, cookie) =
            sw.probe(port).unwrap_or_else(|| panic!("no probe flow for vm {vm} at hv{}", at.hv));
        let mut frame = vec![0xff; 6];
        frame.extend([0xfa, 0x16, 0x3e, 0, (vm >> 8) as u8, vm as u8]);
        frame.extend([0x08, 0x06]);
        frame.resize(60, 0);
        SessionEvent::PacketIn(Box::new(PacketIn {
            buffer_id: BufferId::NO_BUFFER,
            total_len: frame.len() as u16,
            reason: PacketInReason::Action,
            table_id: TableId(table),
            cookie,
            matches: Match { fields: vec![OxmField::InPort(port)].into() },
            data: frame,
        }))
    }

    /// Migrates `moves` (vm, destination) at once; returns the core time spent.
    fn migrate(&mut self, moves: &[(usize, usize)]) -> Duration {
        let core_before = self.in_core;
        // 1. Each destination's OVSDB update, one per VM, back to back: queued together, the
        // serve loop drains them as one batch.
        let mut new = Vec::new();
        self.timed(|c| c.defer_reconcile());
        for &(vm, to) in moves {
            let (changes, at) = self.plug(vm, to);
            let since = Instant::now();
            self.waiting.push(Waiting {
                what: Wait::Install,
                hv: to,
                port: PortNo(at.ofport),
                since,
            });
            self.topology(changes);
            new.push(at);
        }
        self.timed(|c| c.flush());
        self.pump();
        // 2. Each VM's first frame at the destination.
        for (&(vm, _), at) in moves.iter().zip(&new) {
            let ev = self.first_frame(vm, at);
            let conn = self.switches[at.hv].conn;
            let port = PortNo(at.ofport);
            self.waiting.push(Waiting {
                what: Wait::Switchover,
                hv: at.hv,
                port,
                since: Instant::now(),
            });
            self.timed(|c| c.handle_switch_event(conn, SwitchEvent::Session(ev)));
        }
        self.pump();
        // 3. Each source's rows go (one drained batch, like the destinations').
        self.timed(|c| c.defer_reconcile());
        for (&(vm, _), at) in moves.iter().zip(new) {
            let old = std::mem::replace(&mut self.vms[vm], at);
            let changes = self.unplug(&old);
            let port = PortNo(old.ofport);
            self.waiting.push(Waiting {
                what: Wait::Cleanup,
                hv: old.hv,
                port,
                since: Instant::now(),
            });
            self.topology(changes);
        }
        self.timed(|c| c.flush());
        self.pump();
        // A source with nothing left to change never confirms: it was clean already.
        let now = Instant::now();
        let clean: Vec<(usize, PortNo)> = self
            .waiting
            .iter()
            .filter(|w| w.what == Wait::Cleanup && !self.switches[w.hv].has_port(w.port))
            .map(|w| (w.hv, w.port))
            .collect();
        self.finish(now, |w| w.what == Wait::Cleanup && clean.contains(&(w.hv, w.port)));
        assert!(self.waiting.is_empty(), "{} measurements never completed", self.waiting.len());
        self.in_core - core_before
    }

    fn stats(&mut self) -> Value {
        self.timed(|c| c.handle_api_as(&operator(), ApiCall::Stats)).body
    }
}

/// CPU time this thread has run (Linux `/proc/thread-self/schedstat`), if readable.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50, p99 and max (nearest rank) of `v`, in ms.
fn summary(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied();
    json!({ "count": v.len(), "p50": q(0.5), "p99": q(0.99), "max": v.last() })
}

fn of(done: &[(Wait, Duration)], what: Wait) -> Vec<f64> {
    done.iter().filter(|(w, _)| *w == what).map(|(_, d)| ms(*d)).collect()
}

/// One scenario's figures.
fn report(
    b: &Bench,
    name: &str,
    migrations: usize,
    core: Duration,
    cpu: Option<Duration>,
    reprograms: &[f64],
) -> Value {
    json!({
        "thread_cpu_ms_per_migration": cpu.map(|c| ms(c) / migrations.max(1) as f64),
        "scenario": name,
        "migrations": migrations,
        "install_ms": summary(of(&b.done, Wait::Install)),
        "switchover_ms": summary(of(&b.done, Wait::Switchover)),
        "cleanup_ms": summary(of(&b.done, Wait::Cleanup)),
        "core_ms_per_migration": ms(core) / migrations.max(1) as f64,
        "core_bridge_reprogrammed_ms": summary(reprograms.to_vec()),
    })
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let latency = Duration::from_micros(env("PERISCOPE_BENCH_SWITCH_LATENCY_US", 0));
    let singles = env("PERISCOPE_BENCH_SINGLE", 100) as usize;
    let rounds = env("PERISCOPE_BENCH_ROUNDS", 3) as usize;

    let t = Instant::now();
    let mut b = Bench::new(latency);
    let setup = t.elapsed();
    let world = json!({
        "hypervisors": HYPERVISORS, "vm_interfaces": VMS, "tenants": TENANTS,
        "tap_services": TENANTS, "tap_flows": b.tap_flows, "flows_installed": b.flows_held(),
        "flow_mods_sent": b.flow_mods, "switch_latency_us": latency.as_micros() as u64,
        "setup_ms": ms(setup), "setup_core_ms": ms(b.in_core),
    });
    eprintln!("world: {world}");

    // One migration at a time.
    let mark = b.reprograms.0.lock().map(|v| v.len()).unwrap_or(0);
    b.done.clear();
    let mut core = Duration::ZERO;
    let cpu0 = thread_cpu();
    for i in 0..singles {
        let vm = (i * 37) % VMS;
        let to = (b.vms[vm].hv + 1 + i % (HYPERVISORS - 1)) % HYPERVISORS;
        core += b.migrate(&[(vm, to)]);
    }
    let reps: Vec<f64> =
        b.reprograms.0.lock().map(|v| v[mark..].iter().map(|r| r.1).collect()).unwrap_or_default();
    let cpu = thread_cpu().zip(cpu0).map(|(a, b)| a - b);
    let single = report(&b, "1 migration", singles, core, cpu, &reps);

    // 100 at once, `rounds` times.
    let mark = b.reprograms.0.lock().map(|v| v.len()).unwrap_or(0);
    b.done.clear();
    let mut core = Duration::ZERO;
    let mut per_round = Vec::new();
    let cpu0 = thread_cpu();
    for r in 0..rounds {
        let moves: Vec<(usize, usize)> = (0..BURST)
            .map(|k| {
                let vm = (k * (VMS / BURST) + r * 3) % VMS;
                (vm, (b.vms[vm].hv + 1 + (k + r) % (HYPERVISORS - 1)) % HYPERVISORS)
            })
            .collect();
        let before = b.done.len();
        let c = b.migrate(&moves);
        core += c;
        let install: Vec<f64> = b.done[before..]
            .iter()
            .filter(|(w, _)| *w == Wait::Install)
            .map(|(_, d)| ms(*d))
            .collect();
        per_round.push(json!({ "round": r, "install_ms": summary(install), "core_ms": ms(c) }));
    }
    let reps: Vec<f64> =
        b.reprograms.0.lock().map(|v| v[mark..].iter().map(|r| r.1).collect()).unwrap_or_default();
    let cpu = thread_cpu().zip(cpu0).map(|(a, b)| a - b);
    let mut burst = report(&b, "100 at once", rounds * BURST, core, cpu, &reps);
    burst["rounds"] = json!(per_round);
    let stats = b.stats();
    let flows = b.flows_held();

    let f = |v: &Value, k: &str| {
        v[k].as_f64().map(|x| format!("{x:9.3}")).unwrap_or("        -".into())
    };
    println!("reprogram_scale: {HYPERVISORS} bridges, {VMS} VM interfaces, {} tap flows, {flows} flows installed, switch latency {:?}",
        b.tap_flows, latency);
    println!(
        "{:<13} {:<12} {:>6} {:>9} {:>9} {:>9}",
        "scenario", "phase (ms)", "n", "p50", "p99", "max"
    );
    for s in [&single, &burst] {
        for (phase, key) in [
            ("install", "install_ms"),
            ("switchover", "switchover_ms"),
            ("cleanup", "cleanup_ms"),
            ("core/bridge", "core_bridge_reprogrammed_ms"),
        ] {
            let v = &s[key];
            println!(
                "{:<13} {:<12} {:>6} {} {} {}",
                s["scenario"].as_str().unwrap_or(""),
                phase,
                v["count"],
                f(v, "p50"),
                f(v, "p99"),
                f(v, "max")
            );
        }
        println!(
            "{:<13} per migration: {:.3} ms inside the core (wall), {:.3} ms thread CPU (core + emulation)",
            s["scenario"].as_str().unwrap_or(""),
            s["core_ms_per_migration"].as_f64().unwrap_or(f64::NAN),
            s["thread_cpu_ms_per_migration"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!("target: 1 migration p50 < 2 ms, p99 < 10 ms; 100 at once p99 < 100 ms; anchor OVN 1149 ms avg, 1711 ms p95");
    let all = json!({ "world": world, "single": single, "burst": burst, "core_stats": stats, "flows_installed": flows });
    println!("{all}");
}
