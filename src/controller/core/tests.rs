//! The core against switches fed by hand: what it sends when a bridge's switch connects before
//! its hypervisor's database is read, and in which order copies move when a VM leaves a bridge.

use periscope_codec::openflow::multipart::{FlowStats, MultipartReply, MultipartReplyBody};
use periscope_codec::openflow::{
    Action, Cookie, Dpid, FeaturesReply, FlowModCommand, Instruction, Match, Message, MsgType,
    OxmField, PortNo, TableId, Xid,
};
use periscope_topology::change::HypervisorSnapshot;
use periscope_topology::rows::{BridgeRow, InterfaceRow, PortRow};
use periscope_topology::{Change, HypervisorId, TopologyConfig, Uuid};
use tokio::sync::mpsc;

use super::*;
use crate::openflow::driver::{SwitchCommand, SwitchEvent};
use crate::openflow::session::{Outstanding, SessionEvent};

const DPID: Dpid = Dpid(0xe1a);

/// A copy flow of tap flow 7 on `in_port=3`, as an earlier run of the controller left it.
fn held_copy() -> FlowStats {
    FlowStats {
        table_id: TableId(2),
        duration_sec: 30,
        duration_nsec: 0,
        priority: 100,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: cookie::cookie(cookie::Kind::Mirror, 7),
        packet_count: 0,
        byte_count: 0,
        matches: Match::new(vec![OxmField::InPort(PortNo(3))]),
        instructions: vec![Instruction::ApplyActions(vec![Action::output(PortNo(9))].into())]
            .into(),
    }
}

/// A core whose one switch has connected and asked for its flows: the core, the switch's
/// requests, and the dump request to answer.
fn connected() -> (Core, mpsc::Receiver<SwitchCommand>, Outstanding) {
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let mut core = Core::new(log, TopologyConfig::default());
    let (tx, mut rx) = mpsc::channel(64);
    core.handle_switch_event(ConnId(1), SwitchEvent::Accepted { peer: "t".into(), commands: tx });
    let features = FeaturesReply {
        datapath_id: DPID,
        n_buffers: 0,
        n_tables: 254,
        auxiliary_id: 0,
        capabilities: 0,
        reserved: 0,
    };
    core.handle_switch_event(
        ConnId(1),
        SwitchEvent::Session(SessionEvent::Ready { features, ports: Vec::new() }),
    );
    let asked = flow_mods(&mut core, &mut rx);
    assert!(asked.is_empty(), "nothing before the flows are read: {asked:?}");
    let dump = Outstanding {
        xid: Xid(1),
        msg_type: MsgType::MultipartRequest,
        tag: TAG_DUMP,
        label: String::new(),
        sent_at: Instant::now(),
    };
    (core, rx, dump)
}

/// The flow mods sent so far, (command, cookie), each batch confirmed by its barrier as a
/// switch would.
fn flow_mods(
    core: &mut Core,
    rx: &mut mpsc::Receiver<SwitchCommand>,
) -> Vec<(FlowModCommand, Cookie)> {
    let mut out = Vec::new();
    while let Ok(cmd) = rx.try_recv() {
        let SwitchCommand::Send(requests) = cmd else { continue };
        for r in requests {
            match r.msg {
                Message::FlowMod(fm) => out.push((fm.command, fm.cookie)),
                Message::BarrierRequest => {
                    let barrier = Outstanding {
                        xid: Xid(2),
                        msg_type: MsgType::BarrierRequest,
                        tag: r.tag,
                        label: r.label,
                        sent_at: Instant::now(),
                    };
                    let ev = SessionEvent::Confirmed { barrier, tags: Vec::new() };
                    core.handle_switch_event(ConnId(1), SwitchEvent::Session(ev));
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn a_switch_back_before_its_hypervisors_database_keeps_its_copies() {
    let (mut core, mut rx, dump) = connected();
    let replies = vec![Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::Flow(vec![held_copy()]),
    })];
    core.handle_switch_event(
        ConnId(1),
        SwitchEvent::Session(SessionEvent::Reply { request: dump, replies }),
    );
    let sent = flow_mods(&mut core, &mut rx);
    let copy = held_copy().cookie;
    assert!(!sent.is_empty(), "the base pipeline is installed");
    assert!(
        sent.iter().all(|(c, k)| *c == FlowModCommand::Add && *k != copy),
        "the copy the bridge holds is left alone: {sent:?}"
    );
    // Its hypervisor's database now shows the bridge with an interface no tap flow selects on
    // port 3: the copy is not wanted there any more, and goes.
    let hv = HypervisorId::from("hv1");
    let iface = InterfaceRow {
        uuid: Uuid::from("00000000-0000-4000-8000-0000000000d1".to_string()),
        name: "tap1".into(),
        ofport: Some(PortNo(3)),
        external_ids: [("iface-id".into(), "port-1".into())].into(),
        ..Default::default()
    };
    let port = PortRow {
        uuid: Uuid::from("00000000-0000-4000-8000-0000000000c1".to_string()),
        name: "tap1".into(),
        interfaces: [iface.uuid.clone()].into(),
    };
    let bridge = BridgeRow {
        uuid: Uuid::from("00000000-0000-4000-8000-0000000000b1".to_string()),
        name: "br-int".into(),
        datapath_id: Some(DPID),
        ports: [port.uuid.clone()].into(),
    };
    let snapshot = HypervisorSnapshot {
        bridges: vec![bridge],
        ports: vec![port],
        interfaces: vec![iface],
        ..Default::default()
    };
    core.handle_topology(vec![Change::HypervisorReplaced { hypervisor: hv, snapshot }]);
    let sent = flow_mods(&mut core, &mut rx);
    assert_eq!(sent, vec![(FlowModCommand::DeleteStrict, copy)]);
}

/// One switch's side of the wire: what the core sent it, and the barriers not yet answered.
struct Wire {
    conn: ConnId,
    rx: mpsc::Receiver<SwitchCommand>,
    barriers: Vec<Outstanding>,
}

impl Wire {
    /// The flow mods the core sent since last read; their barriers wait for [`Wire::confirm`].
    fn read(&mut self) -> Vec<periscope_codec::openflow::FlowMod> {
        let mut out = Vec::new();
        while let Ok(cmd) = self.rx.try_recv() {
            let SwitchCommand::Send(requests) = cmd else { continue };
            for r in requests {
                match r.msg {
                    Message::FlowMod(fm) => out.push(*fm),
                    Message::BarrierRequest => self.barriers.push(Outstanding {
                        xid: Xid(2),
                        msg_type: MsgType::BarrierRequest,
                        tag: r.tag,
                        label: r.label,
                        sent_at: Instant::now(),
                    }),
                    _ => {}
                }
            }
        }
        out
    }

    /// Answers every barrier read so far, as the switch would once it applied the batch.
    fn confirm(&mut self, core: &mut Core) {
        for barrier in std::mem::take(&mut self.barriers) {
            let ev = SessionEvent::Confirmed { barrier, tags: Vec::new() };
            core.handle_switch_event(self.conn, SwitchEvent::Session(ev));
        }
    }

    /// Reads and confirms until the core has nothing more to send; returns what it sent.
    fn settle(&mut self, core: &mut Core) -> Vec<periscope_codec::openflow::FlowMod> {
        let mut all = Vec::new();
        loop {
            let sent = self.read();
            if sent.is_empty() && self.barriers.is_empty() {
                return all;
            }
            all.extend(sent);
            self.confirm(core);
        }
    }
}

/// Connects a switch with this datapath id and answers its flow dump with an empty table.
fn connect(core: &mut Core, conn: ConnId, dpid: Dpid) -> Wire {
    let (tx, rx) = mpsc::channel(256);
    core.handle_switch_event(conn, SwitchEvent::Accepted { peer: "t".into(), commands: tx });
    let features = FeaturesReply {
        datapath_id: dpid,
        n_buffers: 0,
        n_tables: 254,
        auxiliary_id: 0,
        capabilities: 0,
        reserved: 0,
    };
    let ready = SessionEvent::Ready { features, ports: Vec::new() };
    core.handle_switch_event(conn, SwitchEvent::Session(ready));
    let request = Outstanding {
        xid: Xid(1),
        msg_type: MsgType::MultipartRequest,
        tag: TAG_DUMP,
        label: String::new(),
        sent_at: Instant::now(),
    };
    let replies = vec![Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::Flow(Vec::new()),
    })];
    core.handle_switch_event(conn, SwitchEvent::Session(SessionEvent::Reply { request, replies }));
    Wire { conn, rx, barriers: Vec::new() }
}

/// A hypervisor's database: `br-int` with this datapath id, periscope's VXLAN port, and the
/// VM interface `port-1` of tenant `acme` on ofport 1 when `vm` says so.
fn hypervisor(n: u64, dpid: Dpid, vm: bool) -> Change {
    let id = |what: &str| Uuid::from(format!("00000000-0000-4000-8000-{n:04}{what:0>8}"));
    let mut snapshot = HypervisorSnapshot::default();
    let mut bridge = BridgeRow {
        uuid: id("b"),
        name: "br-int".into(),
        datapath_id: Some(dpid),
        ..Default::default()
    };
    let mut add = |name: &str, i: InterfaceRow| {
        let port = PortRow {
            uuid: id(&format!("p{name}")),
            name: name.into(),
            interfaces: [i.uuid.clone()].into(),
        };
        bridge.ports.insert(port.uuid.clone());
        snapshot.ports.push(port);
        snapshot.interfaces.push(i);
    };
    let tunnel = InterfaceRow {
        uuid: id("i1"),
        name: "psc-vxlan".into(),
        kind: "vxlan".into(),
        ofport: Some(PortNo(100)),
        external_ids: [(crate::policy::tunnels::OWNED_KEY.into(), "true".into())].into(),
        options: [("remote_ip".into(), "flow".into()), ("key".into(), "flow".into())].into(),
        ..Default::default()
    };
    add("1", tunnel);
    if vm {
        let ids = [
            ("iface-id", "port-1"),
            ("attached-mac", "fa:16:3e:00:00:01"),
            ("vm-uuid", "vm-1"),
            ("tenant-id", "acme"),
        ];
        let iface = InterfaceRow {
            uuid: id("i2"),
            name: "tap1".into(),
            ofport: Some(PortNo(1)),
            external_ids: ids.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            ..Default::default()
        };
        add("2", iface);
    }
    snapshot.bridges.push(bridge);
    Change::HypervisorReplaced { hypervisor: HypervisorId::from(format!("hv{n}")), snapshot }
}

/// Whether a flow mod adds a copy of frames delivered to `port-1`.
fn copies_delivered(fm: &periscope_codec::openflow::FlowMod) -> bool {
    fm.command == FlowModCommand::Add
        && fm.table_id == TableId(crate::policy::mirror::TABLE_TAP_IN)
        && fm.matches.fields.iter().any(|f| matches!(f, OxmField::EthDst(..)))
}

#[test]
fn a_vm_deleted_from_its_old_place_is_copied_at_the_new_one_only_once_the_old_one_stopped() {
    use crate::northbound::model::{
        Collector, Direction, Encap, Filter, Source, TapFlowSpec, TapServiceSpec,
    };
    let (a, b) = (Dpid(0xa), Dpid(0xb));
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let mut core = Core::new(log, TopologyConfig::default());
    let taps = &mut core.nb.state.taps;
    let svc = taps
        .create_service(TapServiceSpec {
            name: "c".into(),
            tenant: "acme".into(),
            encap: Encap::Vxlan,
            collector: Collector::Remote("192.0.2.9".parse().expect("an address")),
            key: None,
            snaplen: None,
        })
        .expect("a service");
    taps.create_flow(TapFlowSpec {
        name: "f".into(),
        tenant: "acme".into(),
        tap_service: svc.id,
        source: Source::IfaceId("port-1".into()),
        direction: Direction::Both,
        filter: Filter::default(),
    })
    .expect("a tap flow");
    let (mut wa, mut wb) = (connect(&mut core, ConnId(1), a), connect(&mut core, ConnId(2), b));
    core.handle_topology(vec![hypervisor(1, a, true), hypervisor(2, b, false)]);
    assert!(wa.settle(&mut core).iter().any(copies_delivered), "the VM is copied where it runs");
    wb.settle(&mut core);

    // Plugged at b: b holds what the VM sends there, and copies nothing of what it receives.
    core.handle_topology(vec![hypervisor(2, b, true)]);
    assert!(!wb.settle(&mut core).iter().any(copies_delivered), "not copied at two places");
    wa.settle(&mut core);

    // Deleted from a before the VM sent anything at b: a removes its copies, and b must not
    // start before a confirmed (a frame flooded at a on its way to b would be copied twice).
    core.handle_topology(vec![hypervisor(1, a, false)]);
    let removal = wa.read();
    assert!(!removal.is_empty(), "a removes the VM's copies");
    for _ in 0..3 {
        core.tick();
        assert!(!wb.read().iter().any(copies_delivered), "b copies before a confirmed");
        wb.confirm(&mut core);
    }
    wa.settle(&mut core);
    // Then, once a's datapath had time to follow, b copies.
    let until = Instant::now() + Duration::from_secs(2);
    let mut copied = false;
    while !copied && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        core.tick();
        copied = wb.read().iter().any(copies_delivered);
        wb.confirm(&mut core);
    }
    assert!(copied, "b copies the VM's delivered frames once a stopped");
}
