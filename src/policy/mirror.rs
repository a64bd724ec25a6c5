//! The mirror pipeline: which flows copy which frames to which collector.
//!
//! ```text
//! table 0  tap-out      in_port=P          -> clone(reg14=S, resubmit(,2)) per service S; goto 1
//!                       (miss)             -> goto 1
//! table 1  tap-in       dl_dst=MAC(P)      -> clone(reg14=S, resubmit(,3)) per service S; goto 4
//!                       (miss)             -> goto 4
//! table 2  filter-out   in_port=P,reg14=S,<filter>   -> tun_id=K, tun_dst=R, output(tunnel)
//! table 3  filter-in    dl_dst=MAC,reg14=S,<filter>  -> tun_id=K, tun_dst=R, output(tunnel)
//! table 4  forward      (miss)             -> NORMAL
//! ```
//!
//! An ERSPAN service's copies also set the version (`tun_erspan_ver`), and version 1's index
//! (`tun_erspan_idx=P`) or version 2's direction (`tun_erspan_dir`: 0 in table 2, 1 in table 3).
//!
//! A tap service whose collector is a VM of the tenant (`Collector::Iface`) is copied to the
//! tunnel endpoint of the hypervisor where that VM runs now (or straight to its port when it
//! runs on the same bridge), and that hypervisor delivers it:
//!
//! ```text
//! table 0  deliver      in_port=T,tun_id=K     -> output(collector's port)   per service
//!          guard        in_port=T              -> drop   (every periscope tunnel port T)
//! ```
//!
//! The guard keeps anything else that arrives through periscope's tunnel ports (another key,
//! copies still on their way to a place the collector left) away from the tenant's forwarding.
//!
//! Copies are made inside `clone(...)`, so nothing they change (registers, tunnel metadata)
//! reaches the tenant's own forwarding, which continues unchanged in table 4. A frame is copied
//! at most once per tap service and direction: the fan-out in tables 0 and 1 visits each service
//! once, and in tables 2 and 3 at most one flow matches per visit however the filters overlap.
//!
//! In guest mode ([`Mode::Guest`]) another controller owns the tables; periscope's flows all
//! live in table 0, above any of the owner's, and tell the stages apart by a register that is
//! zero when a frame enters the bridge (`reg13`, [`STAGE_REG`]):
//!
//! ```text
//! table 0  probe        in_port=P,reg13=0          -> controller(id=periscope's)
//!          tap-out      in_port=P,reg13=0          -> clone(reg14=S, reg13=4, resubmit(,0)) per S;
//!                                                     reg13=1, resubmit(,0)
//!          tap-in       dl_dst=MAC,reg13=0/-2      -> clone(reg14=S, reg13=5, resubmit(,0)) per S;
//!                                                     reg13=2, resubmit(,0)
//!          filter       reg13=4,in_port=P,reg14=S,<filter>   -> tun_id=K, tun_dst=R, output(tunnel)
//!                       reg13=5,dl_dst=MAC,reg14=S,<filter>  -> the same
//!          filter-miss  reg13=4/-2                 -> drop (a clone never reaches the owner)
//!          (the owner's flows, below ours, match no reg13: a frame whose copies are made enters
//!           them from table 0 unchanged but for reg13)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use periscope_codec::openflow::action::CONTROLLER_MAX_LEN_NO_BUFFER;
use periscope_codec::openflow::{
    Action, Actions, Instruction, Match, OxmField, PortNo, TableId, NICIRA_EXPERIMENTER_ID,
};

use super::cookie::{self, Kind};
use super::view::{BridgeView, CollectorPlace, IfaceView, Mode};
use super::DesiredFlow;
use crate::northbound::model::{
    Collector, Encap, Filter, Source, TapFlow, TapService, TapServiceId, TunnelKind,
};
use crate::northbound::store::Taps;

/// Table of the frames interfaces send.
pub const TABLE_TAP_OUT: u8 = 0;
/// Table of the frames delivered to interfaces.
pub const TABLE_TAP_IN: u8 = 1;
/// Filters of copies of sent frames.
pub const TABLE_FILTER_OUT: u8 = 2;
/// Filters of copies of delivered frames.
pub const TABLE_FILTER_IN: u8 = 3;
/// The tenant's own forwarding.
pub const TABLE_FORWARD: u8 = 4;
/// The register that carries the tap service being served inside a clone.
pub const SERVICE_REG: u8 = 14;

const PRIORITY_CLASSIFY: u16 = 100;
/// Above the classify flows: a probed interface's frames go to the controller first.
const PRIORITY_PROBE: u16 = 110;
const PRIORITY_FILTER: u16 = 100;
/// Above the probes: copies arriving for a VM collector go to it and nowhere else.
const PRIORITY_DELIVER: u16 = 150;
/// Below the deliveries: nothing else from periscope's tunnel ports goes anywhere.
const PRIORITY_TUNNEL_GUARD: u16 = 140;
/// Above everything in table 0: LLDP probes never reach a copy nor the tenant's forwarding.
const PRIORITY_DISCOVERY: u16 = 200;
/// The LLDP ethertype.
const ETH_TYPE_LLDP: u16 = 0x88cc;

/// Guest mode: the register that says how far a frame has come through periscope's flows in
/// table 0. Registers are zero when a frame enters a bridge.
pub const STAGE_REG: u8 = 13;
/// Guest stage: the copies of what the interface sent are made.
const STAGE_SENT_COPIED: u32 = 1;
/// Guest stage: every copy is made; the frame is the owner's.
const STAGE_COPIED: u32 = 2;
/// Guest stage, inside a clone: choosing the copies of a sent frame.
const STAGE_FILTER_OUT: u32 = 4;
/// Guest stage, inside a clone: choosing the copies of a delivered frame.
const STAGE_FILTER_IN: u32 = 5;
/// Both filter stages under one mask.
const STAGE_FILTER_MASK: u32 = !1;
/// The controller connection id periscope takes in guest mode (`NXT_SET_CONTROLLER_ID`): its
/// probe flows send frames to this connection only, so the owner never sees them (and
/// periscope never sees the owner's packet-ins, which go to connection id 0).
pub const GUEST_CONTROLLER_ID: u16 = 0x5053;
/// Guest priorities: above any of the owner's flows (faucet's highest is 9099, os-ken's
/// `simple_switch_13` uses 0 and 1; the Neutron OVS agent's few flows at 65535 come first).
const GUEST_PRIORITY_PROBE: u16 = 0xfff8;
const GUEST_PRIORITY_TAP_OUT: u16 = 0xfff6;
const GUEST_PRIORITY_TAP_IN: u16 = 0xfff5;
const GUEST_PRIORITY_FILTER: u16 = 0xfff4;
const GUEST_PRIORITY_FILTER_MISS: u16 = 0xfff3;
/// Guest priorities of a VM collector's deliveries and of the guard on periscope's tunnel
/// ports: above the owner's flows, as in owner mode, and in the same order.
const GUEST_PRIORITY_DELIVER: u16 = 0xfffa;
const GUEST_PRIORITY_TUNNEL_GUARD: u16 = 0xfff9;
/// `NXAST_CONTROLLER`'s subtype and `OFPR_ACTION`.
const NXAST_CONTROLLER: u16 = 20;
const OFPR_ACTION: u8 = 1;

/// Where and how the copies of one direction are made.
struct Stage {
    /// The table and priority of the fan-out.
    classify: (u8, u16),
    /// What the fan-out matches besides the interface (guest: how far the frame has come).
    guard: Option<OxmField>,
    /// The table and priority of the filters.
    filter: (u8, u16),
    /// What a clone sets before it looks the filters up, and the filters match (guest: the
    /// filter stage).
    filter_mark: Option<OxmField>,
    /// Where the frame goes once copied: the next table (owner), or back into table 0 with
    /// this stage (guest).
    then: Then,
    /// The ERSPAN version 2 direction bit of its copies: 0 for frames entering the switch (the
    /// VM sent them), 1 for frames leaving it (delivered to the VM).
    erspan_dir: u8,
}

/// Where a frame goes once its copies are made.
enum Then {
    Goto(u8),
    Reenter(u32),
}

impl Stage {
    /// The copies of what an interface sends.
    fn sent(mode: Mode) -> Stage {
        match mode {
            Mode::Owner => Stage {
                classify: (TABLE_TAP_OUT, PRIORITY_CLASSIFY),
                guard: None,
                filter: (TABLE_FILTER_OUT, PRIORITY_FILTER),
                filter_mark: None,
                then: Then::Goto(TABLE_TAP_IN),
                erspan_dir: 0,
            },
            Mode::Guest => Stage {
                classify: (0, GUEST_PRIORITY_TAP_OUT),
                guard: Some(stage_is(0, None)),
                filter: (0, GUEST_PRIORITY_FILTER),
                filter_mark: Some(stage_is(STAGE_FILTER_OUT, None)),
                then: Then::Reenter(STAGE_SENT_COPIED),
                erspan_dir: 0,
            },
        }
    }

    /// The copies of what is delivered to an interface.
    fn delivered(mode: Mode) -> Stage {
        match mode {
            Mode::Owner => Stage {
                classify: (TABLE_TAP_IN, PRIORITY_CLASSIFY),
                guard: None,
                filter: (TABLE_FILTER_IN, PRIORITY_FILTER),
                filter_mark: None,
                then: Then::Goto(TABLE_FORWARD),
                erspan_dir: 1,
            },
            Mode::Guest => Stage {
                classify: (0, GUEST_PRIORITY_TAP_IN),
                // At ingress, or once the copies of what the sender sent are made.
                guard: Some(stage_is(0, Some(!STAGE_SENT_COPIED))),
                filter: (0, GUEST_PRIORITY_FILTER),
                filter_mark: Some(stage_is(STAGE_FILTER_IN, None)),
                then: Then::Reenter(STAGE_COPIED),
                erspan_dir: 1,
            },
        }
    }
}

/// The guest stage register at `value` (under `mask`).
fn stage_is(value: u32, mask: Option<u32>) -> OxmField {
    OxmField::Reg(STAGE_REG, value, mask)
}

/// What one bridge needs for mirroring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgePlan {
    /// Flows, base pipeline included.
    pub flows: Vec<DesiredFlow>,
    /// The kinds of tunnel port the bridge needs.
    pub tunnels: BTreeSet<TunnelKind>,
}

/// Whether a tap flow selects an interface. A tap flow never selects an interface of
/// another tenant, nor one whose tenant is unknown.
pub fn selects(flow: &TapFlow, iface: &IfaceView) -> bool {
    if iface.tenant.as_deref() != Some(flow.tenant.as_str()) {
        return false;
    }
    match &flow.source {
        Source::IfaceId(id) => *id == iface.iface_id,
        Source::Vm(vm) => iface.vm.as_deref() == Some(vm.as_str()),
        Source::Selector(sel) => {
            sel.iter().all(|(k, v)| iface.external_ids.get(k.as_str()).map(|v| &**v) == Some(v))
        }
    }
}

/// Finds the tap flows of an interface through the index [`Taps`] keeps by source, so that
/// planning a bridge costs what its interfaces cost, whatever the number of tap flows.
#[derive(Debug, Clone, Copy)]
pub struct TapIndex<'a> {
    taps: &'a Taps,
}

impl<'a> TapIndex<'a> {
    /// The index of these taps (kept by them: nothing is built here).
    pub fn new(taps: &'a Taps) -> Self {
        TapIndex { taps }
    }

    /// The tap flows that select an interface, in id order.
    pub fn selecting(&self, iface: &IfaceView) -> Vec<&'a TapFlow> {
        let mut v: Vec<&TapFlow> = self
            .taps
            .naming(&iface.iface_id, iface.vm.as_deref())
            .filter(|f| selects(f, iface))
            .collect();
        v.sort_by_key(|f| f.id);
        v
    }
}

/// The flows and tunnel ports a bridge needs for the given taps.
pub fn plan_bridge(view: &BridgeView, taps: &Taps) -> BridgePlan {
    plan_bridge_indexed(view, taps, &TapIndex::new(taps))
}

/// [`plan_bridge`] with the tap flows already indexed (one index serves every bridge).
pub fn plan_bridge_indexed(view: &BridgeView, taps: &Taps, index: &TapIndex<'_>) -> BridgePlan {
    let mut plan = BridgePlan { flows: base_flows(view.mode), tunnels: BTreeSet::new() };
    let mut ifaces: Vec<&IfaceView> = view.interfaces.iter().collect();
    ifaces.sort_by(|a, b| (a.ofport, &a.iface_id).cmp(&(b.ofport, &b.iface_id)));
    for iface in ifaces {
        // Tap flows of this interface, grouped by service, per direction.
        let mut out: BTreeMap<TapServiceId, Vec<&TapFlow>> = BTreeMap::new();
        let mut inn: BTreeMap<TapServiceId, Vec<&TapFlow>> = BTreeMap::new();
        for f in index.selecting(iface) {
            let Some(svc) = taps.service(f.tap_service) else { continue };
            if svc.tenant != f.tenant || taps.is_blocked(svc.id) {
                continue;
            }
            let local = matches!(view.collectors.get(&svc.id), Some(CollectorPlace::Here(_)));
            if !local {
                plan.tunnels.insert(svc.encap.tunnel());
            }
            if f.direction.out() {
                out.entry(svc.id).or_default().push(f);
            }
            if f.direction.r#in() && iface.mac.is_some() {
                inn.entry(svc.id).or_default().push(f);
            }
        }
        let inn_all = !inn.is_empty();
        if !iface.in_active {
            inn.clear();
        }
        let out = side(taps, view, &out);
        let inn = side(taps, view, &inn);
        plan.flows.extend(delivery_flows(taps, view, iface, &mut plan.tunnels));
        if iface.probe && (inn_all || !iface.collects.is_empty()) {
            // Present here but not running here yet: what the VM sends from here goes to the
            // controller and nowhere else, until the controller has moved the copies of
            // delivered frames here and re-injects it. Until then nothing here (nor any MAC
            // table) knows the VM is here, so every frame towards it is still copied at the
            // place it runs from, once. A VM collector's first frame here likewise tells the
            // controller to send its copies here from then on.
            plan.flows.push(probe_flow(view.mode, iface.ofport));
        }
        if !out.is_empty() {
            let at = vec![OxmField::InPort(iface.ofport)];
            let stage = Stage::sent(view.mode);
            plan.flows.extend(direction_flows(&stage, &at, iface.ofport, &out));
        }
        if let (false, Some(mac)) = (inn.is_empty(), iface.mac) {
            let at = vec![OxmField::EthDst(mac, None)];
            let stage = Stage::delivered(view.mode);
            plan.flows.extend(direction_flows(&stage, &at, iface.ofport, &inn));
        }
    }
    let guard = match view.mode {
        Mode::Owner => PRIORITY_TUNNEL_GUARD,
        Mode::Guest => GUEST_PRIORITY_TUNNEL_GUARD,
    };
    plan.flows.extend(view.tunnel_ports.values().map(|port| DesiredFlow {
        table: TableId(TABLE_TAP_OUT),
        priority: guard,
        matches: Match::new(vec![OxmField::InPort(*port)]),
        instructions: Default::default(),
        cookie: cookie::cookie(Kind::Delivery, 0),
    }));
    plan
}

/// Where one tap service's copies leave a bridge.
#[derive(Debug, Clone, Copy)]
enum CopyTo {
    /// Through periscope's tunnel port, to this tunnel destination.
    Tunnel(PortNo, Ipv4Addr),
    /// Straight out of this port (a VM collector on the same bridge).
    Port(PortNo),
}

/// Where a tap service's copies leave the bridge now, if they can (its tunnel port exists, its
/// VM collector runs somewhere reachable).
fn copy_to(svc: &TapService, view: &BridgeView) -> Option<CopyTo> {
    let tunnel = || view.tunnel_ports.get(&svc.encap.tunnel()).copied();
    match &svc.collector {
        Collector::Remote(IpAddr::V4(ip)) => Some(CopyTo::Tunnel(tunnel()?, *ip)),
        Collector::Remote(IpAddr::V6(_)) => None,
        Collector::Iface(_) => match view.collectors.get(&svc.id)? {
            CollectorPlace::Here(port) => Some(CopyTo::Port(*port)),
            CollectorPlace::Tunnel(ip) => Some(CopyTo::Tunnel(tunnel()?, *ip)),
        },
    }
}

/// The services of one interface and direction that can be served now, with where their
/// copies go and the tap flows towards each.
fn side<'a>(
    taps: &'a Taps,
    view: &BridgeView,
    m: &BTreeMap<TapServiceId, Vec<&'a TapFlow>>,
) -> Vec<(&'a TapService, CopyTo, Vec<&'a TapFlow>)> {
    m.iter()
        .filter_map(|(id, fs)| {
            let svc = taps.service(*id)?;
            Some((svc, copy_to(svc, view)?, fs.clone()))
        })
        .collect()
}

/// The flows that hand a VM collector the copies arriving for it through periscope's tunnel
/// port (decapsulated, matched on the service's key), at every place it is present, so that
/// copies sent to it just before or after it moves are delivered wherever they arrive.
/// `tunnels` collects the tunnel ports this needs.
fn delivery_flows(
    taps: &Taps,
    view: &BridgeView,
    iface: &IfaceView,
    tunnels: &mut BTreeSet<TunnelKind>,
) -> Vec<DesiredFlow> {
    let mut flows = Vec::new();
    for svc in iface.collects.iter().filter_map(|id| taps.service(*id)) {
        tunnels.insert(svc.encap.tunnel());
        let Some(port) = view.tunnel_ports.get(&svc.encap.tunnel()) else { continue };
        flows.push(DesiredFlow {
            table: TableId(TABLE_TAP_OUT),
            priority: match view.mode {
                Mode::Owner => PRIORITY_DELIVER,
                Mode::Guest => GUEST_PRIORITY_DELIVER,
            },
            matches: Match::new(vec![
                OxmField::InPort(*port),
                OxmField::TunnelId(svc.key as u64, None),
            ]),
            instructions: vec![Instruction::ApplyActions(
                vec![Action::output(iface.ofport)].into(),
            )]
            .into(),
            cookie: cookie::cookie(Kind::Delivery, svc.id.0),
        });
    }
    flows
}

/// The flow that sends the frames an interface sends here to the controller (and nowhere
/// else); in guest mode to periscope's connection only.
fn probe_flow(mode: Mode, port: PortNo) -> DesiredFlow {
    let (priority, matches, action) = match mode {
        Mode::Owner => (
            PRIORITY_PROBE,
            vec![OxmField::InPort(port)],
            Action::Output { port: PortNo::CONTROLLER, max_len: CONTROLLER_MAX_LEN_NO_BUFFER },
        ),
        Mode::Guest => (
            GUEST_PRIORITY_PROBE,
            vec![OxmField::InPort(port), stage_is(0, None)],
            controller_action(GUEST_CONTROLLER_ID),
        ),
    };
    DesiredFlow {
        table: TableId(TABLE_TAP_OUT),
        priority,
        matches: Match::new(matches),
        instructions: vec![Instruction::ApplyActions(vec![action].into())].into(),
        cookie: cookie::cookie(Kind::Probe, 0),
    }
}

/// `controller(id=ID)`: the whole frame to the controller connections with that id only
/// (`struct nx_action_controller`: subtype, max_len, controller_id, reason, zero).
fn controller_action(id: u16) -> Action {
    let mut data = Vec::with_capacity(8);
    data.extend_from_slice(&NXAST_CONTROLLER.to_be_bytes());
    data.extend_from_slice(&CONTROLLER_MAX_LEN_NO_BUFFER.to_be_bytes());
    data.extend_from_slice(&id.to_be_bytes());
    data.extend_from_slice(&[OFPR_ACTION, 0]);
    Action::Experimenter { experimenter: NICIRA_EXPERIMENTER_ID, data }
}

/// The base pipeline. Owner: every table passes frames on, and the last forwards like a
/// learning switch, so a bridge with no tap forwards exactly as `NORMAL` would; LLDP goes to the
/// controller only (link discovery), before any copy is made. Guest: only the flow that keeps
/// clones out of the owner's flows (the owner forwards, and discovers links if it wants).
fn base_flows(mode: Mode) -> Vec<DesiredFlow> {
    let c = cookie::cookie(Kind::Base, 0);
    if mode == Mode::Guest {
        return vec![DesiredFlow {
            table: TableId(0),
            priority: GUEST_PRIORITY_FILTER_MISS,
            matches: Match::new(vec![stage_is(STAGE_FILTER_OUT, Some(STAGE_FILTER_MASK))]),
            instructions: Default::default(),
            cookie: c,
        }];
    }
    let pass = |from: u8, to: u8| DesiredFlow {
        table: TableId(from),
        priority: 0,
        matches: Match::default(),
        instructions: vec![Instruction::GotoTable(TableId(to))].into(),
        cookie: c,
    };
    vec![
        pass(TABLE_TAP_OUT, TABLE_TAP_IN),
        pass(TABLE_TAP_IN, TABLE_FORWARD),
        DesiredFlow {
            table: TableId(TABLE_FORWARD),
            priority: 0,
            matches: Match::default(),
            instructions: vec![Instruction::ApplyActions(
                vec![Action::output(PortNo::NORMAL)].into(),
            )]
            .into(),
            cookie: c,
        },
        DesiredFlow {
            table: TableId(TABLE_TAP_OUT),
            priority: PRIORITY_DISCOVERY,
            matches: Match::new(vec![OxmField::EthType(ETH_TYPE_LLDP)]),
            instructions: vec![Instruction::ApplyActions(
                vec![Action::Output {
                    port: PortNo::CONTROLLER,
                    max_len: CONTROLLER_MAX_LEN_NO_BUFFER,
                }]
                .into(),
            )]
            .into(),
            cookie: cookie::cookie(Kind::Discovery, 0),
        },
    ]
}

/// The classify flow of one interface (at OpenFlow port `ofport`) and direction, and its filter
/// flows.
fn direction_flows(
    stage: &Stage,
    at: &[OxmField],
    ofport: PortNo,
    services: &[(&TapService, CopyTo, Vec<&TapFlow>)],
) -> Vec<DesiredFlow> {
    let mut flows = Vec::new();
    let (filter_table, filter_priority) = stage.filter;
    let mut fanout: Actions = services
        .iter()
        .map(|(svc, _, _)| {
            let mut clone =
                vec![Action::SetField(OxmField::Reg(SERVICE_REG, svc.id.0 as u32, None))];
            clone.extend(stage.filter_mark.iter().cloned().map(Action::SetField));
            clone.push(Action::ResubmitTable {
                in_port: PortNo::IN_PORT,
                table: TableId(filter_table),
            });
            Action::Clone(clone)
        })
        .collect();
    let next = match stage.then {
        Then::Goto(table) => Some(Instruction::GotoTable(TableId(table))),
        Then::Reenter(value) => {
            fanout.push(Action::SetField(stage_is(value, None)));
            fanout.push(Action::ResubmitTable { in_port: PortNo::IN_PORT, table: TableId(0) });
            None
        }
    };
    let mut classify_match = at.to_vec();
    classify_match.extend(stage.guard.iter().cloned());
    flows.push(DesiredFlow {
        table: TableId(stage.classify.0),
        priority: stage.classify.1,
        matches: Match::new(classify_match),
        instructions: std::iter::once(Instruction::ApplyActions(fanout)).chain(next).collect(),
        cookie: cookie::cookie(Kind::Classify, 0),
    });
    for (svc, to, tap_flows) in services {
        let copy = copy_actions(svc, *to, Erspan { dir: stage.erspan_dir, index: ofport.0 });
        let mut seen = BTreeSet::new();
        for f in tap_flows {
            let mut fields = at.to_vec();
            fields.extend(stage.filter_mark.iter().cloned());
            fields.push(OxmField::Reg(SERVICE_REG, svc.id.0 as u32, None));
            fields.extend(filter_fields(&f.filter));
            let m = Match::new(fields);
            // Two tap flows with the same filter towards the same service need one flow.
            let mut key = bytes::BytesMut::new();
            m.emit(&mut key);
            if !seen.insert(key) {
                continue;
            }
            flows.push(DesiredFlow {
                table: TableId(filter_table),
                priority: filter_priority,
                matches: m,
                instructions: vec![Instruction::ApplyActions(copy.clone())].into(),
                cookie: cookie::cookie(Kind::Mirror, f.id.0),
            });
        }
    }
    flows
}

/// What an ERSPAN copy says of the mirrored frame.
struct Erspan {
    /// Version 2's direction bit (see [`Stage::erspan_dir`]).
    dir: u8,
    /// Version 1's index: the mirrored interface's OpenFlow port (20 bits).
    index: u32,
}

/// Sends the (cloned) frame to a tap service's collector.
fn copy_actions(svc: &TapService, to: CopyTo, erspan: Erspan) -> Actions {
    let mut a = Actions::new();
    let port = match to {
        CopyTo::Tunnel(port, dst) => {
            a.push(Action::SetField(OxmField::TunnelId(svc.key as u64, None)));
            a.push(Action::SetField(OxmField::TunIpv4Dst(dst, None)));
            match svc.encap {
                Encap::Vxlan | Encap::Gre => {}
                Encap::ErspanV1 => {
                    a.push(Action::SetField(OxmField::TunErspanVer(1, None)));
                    a.push(Action::SetField(OxmField::TunErspanIdx(erspan.index & 0xf_ffff, None)));
                }
                Encap::ErspanV2 => {
                    a.push(Action::SetField(OxmField::TunErspanVer(2, None)));
                    a.push(Action::SetField(OxmField::TunErspanDir(erspan.dir, None)));
                }
            }
            port
        }
        CopyTo::Port(port) => port,
    };
    a.push(match svc.snaplen {
        Some(n) => Action::OutputTrunc { port, max_len: n as u32 },
        None => Action::output(port),
    });
    a
}

/// The match fields of a filter, with their prerequisites.
pub fn filter_fields(f: &Filter) -> Vec<OxmField> {
    let mut v = Vec::new();
    if let Some(vlan) = f.vlan {
        v.push(OxmField::VlanVid(0x1000 | vlan, None));
    }
    let ip = f.ip_proto.is_some() || f.src_cidr.is_some() || f.dst_cidr.is_some();
    match (f.ethertype, ip) {
        (Some(t), _) => v.push(OxmField::EthType(t)),
        (None, true) => v.push(OxmField::EthType(0x0800)),
        (None, false) => {}
    }
    if let Some(p) = f.ip_proto {
        v.push(OxmField::IpProto(p));
    }
    if let Some(c) = f.src_cidr {
        v.push(OxmField::Ipv4Src(c.addr, (c.len < 32).then(|| c.mask())));
    }
    if let Some(c) = f.dst_cidr {
        v.push(OxmField::Ipv4Dst(c.addr, (c.len < 32).then(|| c.mask())));
    }
    let (src, dst) = (f.src_port, f.dst_port);
    match f.ip_proto {
        Some(6) => {
            v.extend(src.map(|p| OxmField::TcpSrc(p, None)));
            v.extend(dst.map(|p| OxmField::TcpDst(p, None)));
        }
        Some(17) => {
            v.extend(src.map(|p| OxmField::UdpSrc(p, None)));
            v.extend(dst.map(|p| OxmField::UdpDst(p, None)));
        }
        Some(132) => {
            v.extend(src.map(|p| OxmField::SctpSrc(p, None)));
            v.extend(dst.map(|p| OxmField::SctpDst(p, None)));
        }
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests;
