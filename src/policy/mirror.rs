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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use periscope_codec::openflow::action::CONTROLLER_MAX_LEN_NO_BUFFER;
use periscope_codec::openflow::{Action, Actions, Instruction, Match, OxmField, PortNo, TableId};

use super::cookie::{self, Kind};
use super::view::{BridgeView, CollectorPlace, IfaceView};
use super::DesiredFlow;
use crate::northbound::model::{
    Collector, Encap, Filter, Source, TapFlow, TapService, TapServiceId,
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

/// What one bridge needs for mirroring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgePlan {
    /// Flows, base pipeline included.
    pub flows: Vec<DesiredFlow>,
    /// Encapsulations whose tunnel port the bridge needs.
    pub tunnels: BTreeSet<Encap>,
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
        Source::Selector(sel) => sel.iter().all(|(k, v)| iface.external_ids.get(k) == Some(v)),
    }
}

/// The tap flows by the kind of source they name, so that the tap flows of an interface are
/// found without looking at every tap flow: by iface-id and by VM through a map, and only the
/// selectors are tried one by one.
#[derive(Debug, Default)]
pub struct TapIndex<'a> {
    by_iface: HashMap<&'a str, Vec<&'a TapFlow>>,
    by_vm: HashMap<&'a str, Vec<&'a TapFlow>>,
    selectors: Vec<&'a TapFlow>,
}

impl<'a> TapIndex<'a> {
    /// Indexes every tap flow.
    pub fn new(taps: &'a Taps) -> Self {
        let mut ix = TapIndex::default();
        for f in taps.flows() {
            match &f.source {
                Source::IfaceId(id) => ix.by_iface.entry(id.as_str()).or_default().push(f),
                Source::Vm(vm) => ix.by_vm.entry(vm.as_str()).or_default().push(f),
                Source::Selector(_) => ix.selectors.push(f),
            }
        }
        ix
    }

    /// The tap flows that select an interface, in id order.
    pub fn selecting(&self, iface: &IfaceView) -> Vec<&'a TapFlow> {
        let mut v: Vec<&TapFlow> =
            self.by_iface.get(iface.iface_id.as_str()).into_iter().flatten().copied().collect();
        if let Some(vm) = &iface.vm {
            v.extend(self.by_vm.get(vm.as_str()).into_iter().flatten().copied());
        }
        v.extend(self.selectors.iter().copied());
        v.retain(|f| selects(f, iface));
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
    let mut plan = BridgePlan { flows: base_flows(), tunnels: BTreeSet::new() };
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
                plan.tunnels.insert(svc.encap);
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
            plan.flows.push(DesiredFlow {
                table: TableId(TABLE_TAP_OUT),
                priority: PRIORITY_PROBE,
                matches: Match::new(vec![OxmField::InPort(iface.ofport)]),
                instructions: vec![Instruction::ApplyActions(
                    vec![Action::Output {
                        port: PortNo::CONTROLLER,
                        max_len: CONTROLLER_MAX_LEN_NO_BUFFER,
                    }]
                    .into(),
                )]
                .into(),
                cookie: cookie::cookie(Kind::Probe, 0),
            });
        }
        if !out.is_empty() {
            let at = vec![OxmField::InPort(iface.ofport)];
            plan.flows.extend(direction_flows(
                TABLE_TAP_OUT,
                TABLE_FILTER_OUT,
                TABLE_TAP_IN,
                &at,
                &out,
            ));
        }
        if let (false, Some(mac)) = (inn.is_empty(), iface.mac) {
            let at = vec![OxmField::EthDst(mac, None)];
            plan.flows.extend(direction_flows(
                TABLE_TAP_IN,
                TABLE_FILTER_IN,
                TABLE_FORWARD,
                &at,
                &inn,
            ));
        }
    }
    plan.flows.extend(view.tunnel_ports.values().map(|port| DesiredFlow {
        table: TableId(TABLE_TAP_OUT),
        priority: PRIORITY_TUNNEL_GUARD,
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
    let tunnel = || view.tunnel_ports.get(&svc.encap).copied();
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
    tunnels: &mut BTreeSet<Encap>,
) -> Vec<DesiredFlow> {
    let mut flows = Vec::new();
    for svc in iface.collects.iter().filter_map(|id| taps.service(*id)) {
        tunnels.insert(svc.encap);
        let Some(port) = view.tunnel_ports.get(&svc.encap) else { continue };
        flows.push(DesiredFlow {
            table: TableId(TABLE_TAP_OUT),
            priority: PRIORITY_DELIVER,
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

/// The base pipeline: every table passes frames on, and the last forwards like a learning
/// switch, so a bridge with no tap forwards exactly as `NORMAL` would. LLDP goes to the
/// controller only (link discovery), before any copy is made.
fn base_flows() -> Vec<DesiredFlow> {
    let c = cookie::cookie(Kind::Base, 0);
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

/// The classify flow of one interface and direction, and its filter flows.
fn direction_flows(
    classify_table: u8,
    filter_table: u8,
    next_table: u8,
    at: &[OxmField],
    services: &[(&TapService, CopyTo, Vec<&TapFlow>)],
) -> Vec<DesiredFlow> {
    let mut flows = Vec::new();
    let fanout: Actions = services
        .iter()
        .map(|(svc, _, _)| {
            Action::Clone(vec![
                Action::SetField(OxmField::Reg(SERVICE_REG, svc.id.0 as u32, None)),
                Action::ResubmitTable { in_port: PortNo::IN_PORT, table: TableId(filter_table) },
            ])
        })
        .collect();
    flows.push(DesiredFlow {
        table: TableId(classify_table),
        priority: PRIORITY_CLASSIFY,
        matches: Match::new(at.to_vec()),
        instructions: vec![
            Instruction::ApplyActions(fanout),
            Instruction::GotoTable(TableId(next_table)),
        ]
        .into(),
        cookie: cookie::cookie(Kind::Classify, 0),
    });
    for (svc, to, tap_flows) in services {
        let copy = copy_actions(svc, *to);
        let mut seen = BTreeSet::new();
        for f in tap_flows {
            let mut fields = at.to_vec();
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
                priority: PRIORITY_FILTER,
                matches: m,
                instructions: vec![Instruction::ApplyActions(copy.clone())].into(),
                cookie: cookie::cookie(Kind::Mirror, f.id.0),
            });
        }
    }
    flows
}

/// Sends the (cloned) frame to a tap service's collector.
fn copy_actions(svc: &TapService, to: CopyTo) -> Actions {
    let mut a = Actions::new();
    let port = match to {
        CopyTo::Tunnel(port, dst) => {
            a.push(Action::SetField(OxmField::TunnelId(svc.key as u64, None)));
            a.push(Action::SetField(OxmField::TunIpv4Dst(dst, None)));
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
