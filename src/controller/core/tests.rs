//! The core against a switch fed by hand: what it sends when a bridge's switch connects before
//! its hypervisor's database is read.

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
