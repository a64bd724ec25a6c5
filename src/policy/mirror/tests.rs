//! The mirror policy, checked by where packets go through the flows it produces.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use periscope_codec::openflow::{MacAddr, OxmField, PortNo};
use serde_json::json;

use super::*;
use crate::northbound::model::{TapFlowSpec, TapServiceSpec};
use crate::policy::trace::{Output, Packet, Pipeline};
use crate::policy::view::{BridgeView, CollectorPlace, IfaceView, Mode};

const VXLAN_PORT: PortNo = PortNo(100);
const GRE_PORT: PortNo = PortNo(101);
const ERSPAN_PORT: PortNo = PortNo(102);
const COLLECTOR_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const COLLECTOR_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 60);

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

fn iface(n: u8, tenant: &str, app: &str) -> IfaceView {
    IfaceView {
        iface_id: format!("port-{n}"),
        vm: Some(format!("vm-{n}")),
        tenant: Some(tenant.into()),
        external_ids: BTreeMap::from([("app".into(), app.into())]),
        ofport: PortNo(n as u32),
        mac: Some(mac(n)),
        in_active: true,
        probe: false,
        collects: Vec::new(),
    }
}

fn bridge(ifaces: Vec<IfaceView>) -> BridgeView {
    BridgeView {
        collectors: Default::default(),
        interfaces: ifaces,
        tunnel_ports: BTreeMap::from([
            (TunnelKind::Vxlan, VXLAN_PORT),
            (TunnelKind::Gre, GRE_PORT),
            (TunnelKind::Erspan, ERSPAN_PORT),
        ]),
        mode: Mode::Owner,
    }
}

fn service(
    taps: &mut Taps,
    tenant: &str,
    encap: &str,
    ip: Ipv4Addr,
    extra: serde_json::Value,
) -> TapService {
    let mut body =
        json!({"name": "c", "tenant": tenant, "encap": encap, "remote_ip": ip.to_string()});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    taps.create_service(TapServiceSpec::from_json(&body).unwrap()).unwrap()
}

fn flow(
    taps: &mut Taps,
    tenant: &str,
    svc: &TapService,
    source: serde_json::Value,
    dir: &str,
    filter: serde_json::Value,
) {
    let mut body = json!({"name": "f", "tenant": tenant, "tap_service": svc.id.0, "source": source, "direction": dir});
    if !filter.is_null() {
        body["filter"] = filter;
    }
    taps.create_flow(TapFlowSpec::from_json(&body).unwrap()).unwrap();
}

/// An IPv4 packet from `src` (a VM number, entering on its port) to `dst`.
fn ip_packet(from_port: u8, src: u8, dst: u8, proto: u8, dst_port: u16) -> Packet {
    let mut f = vec![
        OxmField::InPort(PortNo(from_port as u32)),
        OxmField::EthSrc(mac(src), None),
        OxmField::EthDst(mac(dst), None),
        OxmField::EthType(0x0800),
        OxmField::IpProto(proto),
        OxmField::Ipv4Src(Ipv4Addr::new(10, 0, 0, src), None),
        OxmField::Ipv4Dst(Ipv4Addr::new(10, 0, 0, dst), None),
    ];
    match proto {
        6 => f.push(OxmField::TcpDst(dst_port, None)),
        17 => f.push(OxmField::UdpDst(dst_port, None)),
        _ => {}
    }
    Packet::new(f)
}

/// (tunnel port, key, destination) of every copy. The same bridge in guest mode, beside an
/// owner whose pipeline starts in table 0 and forwards from a table periscope does not know,
/// makes the same copies and hands the owner the packet unchanged but for periscope's stage.
fn copies(view: &BridgeView, taps: &Taps, p: &Packet) -> Vec<(PortNo, u64, Ipv4Addr)> {
    let owned = copies_in(view, taps, p, None);
    let guest = BridgeView { mode: Mode::Guest, ..view.clone() };
    let owner = [
        DesiredFlow {
            table: TableId(0),
            priority: 1,
            matches: Match::default(),
            instructions: vec![Instruction::GotoTable(TableId(7))].into(),
            cookie: periscope_codec::openflow::Cookie(0x5adc15c0),
        },
        DesiredFlow {
            table: TableId(7),
            priority: 0,
            matches: Match::default(),
            instructions: vec![Instruction::ApplyActions(
                vec![Action::output(PortNo::NORMAL)].into(),
            )]
            .into(),
            cookie: periscope_codec::openflow::Cookie(0x5adc15c0),
        },
    ];
    assert_eq!(copies_in(&guest, taps, p, Some(&owner)), owned, "guest mode copies the same");
    owned
}

/// [`copies`] in the bridge's own mode, with the owner's flows beside periscope's.
fn copies_in(
    view: &BridgeView,
    taps: &Taps,
    p: &Packet,
    owner: Option<&[DesiredFlow]>,
) -> Vec<(PortNo, u64, Ipv4Addr)> {
    let plan = plan_bridge(view, taps);
    let t = Pipeline::new(plan.flows.iter().chain(owner.into_iter().flatten())).run(p);
    assert!(t.unmodelled.is_empty(), "{:?}", t.unmodelled);
    // The tenant's own forwarding is untouched: exactly one NORMAL, with no tunnel metadata
    // (a guest's stage register aside, which no owner's flow matches).
    let normal = t.normal();
    assert_eq!(normal.len(), 1, "{t:?}");
    let mut expect = p.clone();
    if let (Mode::Guest, Some(stage)) =
        (view.mode, normal[0].get(&OxmField::Reg(STAGE_REG, 0, None)))
    {
        expect.set(&OxmField::Reg(STAGE_REG, stage as u32, None));
    }
    assert_eq!(*normal[0], expect, "forwarding saw a modified packet");
    let mut out: Vec<_> = t
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Port { port, packet, .. } => Some((
                *port,
                packet.tun_id().unwrap_or(0),
                packet.tun_dst().unwrap_or(Ipv4Addr::UNSPECIFIED),
            )),
            Output::Normal(_) => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_bridge_without_taps_forwards_everything_normally() {
    let taps = Taps::new();
    let view = bridge(vec![iface(1, "a", "web")]);
    assert_eq!(copies(&view, &taps, &ip_packet(1, 1, 2, 1, 0)), vec![]);
    assert!(plan_bridge(&view, &taps).tunnels.is_empty());
}

#[test]
fn both_directions_are_copied_once_with_the_service_key() {
    let mut taps = Taps::new();
    let s = service(&mut taps, "a", "vxlan", COLLECTOR_A, json!({}));
    flow(&mut taps, "a", &s, json!({"iface_id": "port-1"}), "BOTH", serde_json::Value::Null);
    let view = bridge(vec![iface(1, "a", "web"), iface(2, "a", "db")]);
    let want = vec![(VXLAN_PORT, s.key as u64, COLLECTOR_A)];
    assert_eq!(copies(&view, &taps, &ip_packet(1, 1, 2, 1, 0)), want, "sent by vm1");
    assert_eq!(copies(&view, &taps, &ip_packet(2, 2, 1, 1, 0)), want, "delivered to vm1");
    assert_eq!(copies(&view, &taps, &ip_packet(2, 2, 3, 1, 0)), vec![], "vm2 to elsewhere");
    assert_eq!(plan_bridge(&view, &taps).tunnels, [TunnelKind::Vxlan].into());
}

/// The ERSPAN metadata of each copy that leaves through the ERSPAN port: (key, version,
/// version 1's index, version 2's direction).
fn erspan_copies(view: &BridgeView, taps: &Taps, p: &Packet) -> Vec<(u64, u128, u128, u128)> {
    let plan = plan_bridge(view, taps);
    let t = Pipeline::new(&plan.flows).run(p);
    assert!(t.unmodelled.is_empty(), "{:?}", t.unmodelled);
    let mut out: Vec<_> = t
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Port { port, packet, .. } if *port == ERSPAN_PORT => Some((
                packet.tun_id().unwrap_or(0),
                packet.get(&OxmField::TunErspanVer(0, None)).unwrap_or(0),
                packet.get(&OxmField::TunErspanIdx(0, None)).unwrap_or(0),
                packet.get(&OxmField::TunErspanDir(0, None)).unwrap_or(0),
            )),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn erspan_copies_say_their_version_port_and_direction() {
    let mut taps = Taps::new();
    let v1 = service(&mut taps, "a", "erspan_v1", COLLECTOR_A, json!({}));
    let v2 = service(&mut taps, "a", "erspan_v2", COLLECTOR_B, json!({}));
    assert!(v1.key <= 1023 && v2.key <= 1023 && v1.key != v2.key, "session ids: {v1:?} {v2:?}");
    for s in [&v1, &v2] {
        flow(&mut taps, "a", s, json!({"iface_id": "port-1"}), "BOTH", serde_json::Value::Null);
    }
    let view = bridge(vec![iface(1, "a", "web"), iface(2, "a", "db")]);
    assert_eq!(plan_bridge(&view, &taps).tunnels, [TunnelKind::Erspan].into(), "one port for both");
    // Version 1 carries the mirrored port in its index; version 2 says which way the frame went.
    let sent = vec![(u64::from(v1.key), 1, 1, 0), (u64::from(v2.key), 2, 0, 0)];
    assert_eq!(erspan_copies(&view, &taps, &ip_packet(1, 1, 2, 1, 0)), sent, "sent by vm1");
    let got = vec![(u64::from(v1.key), 1, 1, 0), (u64::from(v2.key), 2, 0, 1)];
    assert_eq!(erspan_copies(&view, &taps, &ip_packet(2, 2, 1, 1, 0)), got, "delivered to vm1");
    let all = copies(&view, &taps, &ip_packet(1, 1, 2, 1, 0));
    let want = vec![
        (ERSPAN_PORT, u64::from(v1.key), COLLECTOR_A),
        (ERSPAN_PORT, u64::from(v2.key), COLLECTOR_B),
    ];
    assert_eq!(all, want, "each collector once, by tun_dst");
}

#[test]
fn direction_out_copies_only_what_the_vm_sends() {
    let mut taps = Taps::new();
    let s = service(&mut taps, "a", "gre", COLLECTOR_A, json!({"key": 77}));
    flow(&mut taps, "a", &s, json!({"vm": "vm-1"}), "OUT", serde_json::Value::Null);
    let view = bridge(vec![iface(1, "a", "web"), iface(2, "a", "db")]);
    assert_eq!(copies(&view, &taps, &ip_packet(1, 1, 2, 1, 0)), vec![(GRE_PORT, 77, COLLECTOR_A)]);
    assert_eq!(copies(&view, &taps, &ip_packet(2, 2, 1, 1, 0)), vec![]);
}

#[test]
fn filters_select_frames_and_overlapping_filters_copy_once() {
    let mut taps = Taps::new();
    let s = service(&mut taps, "a", "vxlan", COLLECTOR_A, json!({}));
    let src = json!({"iface_id": "port-1"});
    flow(&mut taps, "a", &s, src.clone(), "OUT", json!({"ip_proto": 6, "dst_port": 443}));
    flow(&mut taps, "a", &s, src.clone(), "OUT", json!({"ip_proto": 6}));
    flow(&mut taps, "a", &s, src, "OUT", json!({"dst_cidr": "10.0.0.0/24"}));
    let view = bridge(vec![iface(1, "a", "web")]);
    let one = vec![(VXLAN_PORT, s.key as u64, COLLECTOR_A)];
    assert_eq!(copies(&view, &taps, &ip_packet(1, 1, 2, 6, 443)), one, "all three filters match");
    assert_eq!(copies(&view, &taps, &ip_packet(1, 1, 2, 17, 53)), one, "only the CIDR filter");
    let outside = Packet::new([
        OxmField::InPort(PortNo(1)),
        OxmField::EthDst(mac(9), None),
        OxmField::EthType(0x0800),
        OxmField::IpProto(17),
        OxmField::Ipv4Dst(Ipv4Addr::new(192, 0, 2, 1), None),
    ]);
    assert_eq!(copies(&view, &taps, &outside), vec![], "no filter matches");
}

#[test]
fn several_services_each_get_their_own_copy_and_key() {
    let mut taps = Taps::new();
    let a = service(&mut taps, "a", "vxlan", COLLECTOR_A, json!({}));
    let b = service(&mut taps, "a", "gre", COLLECTOR_B, json!({"snaplen": 128}));
    flow(&mut taps, "a", &a, json!({"selector": {"app": "web"}}), "BOTH", serde_json::Value::Null);
    flow(&mut taps, "a", &b, json!({"iface_id": "port-1"}), "OUT", serde_json::Value::Null);
    let view = bridge(vec![iface(1, "a", "web")]);
    let got = copies(&view, &taps, &ip_packet(1, 1, 2, 1, 0));
    assert_eq!(
        got,
        vec![(VXLAN_PORT, a.key as u64, COLLECTOR_A), (GRE_PORT, b.key as u64, COLLECTOR_B)]
    );
    // The GRE copy is truncated to the service's snap length.
    let plan = plan_bridge(&view, &taps);
    let t = Pipeline::new(&plan.flows).run(&ip_packet(1, 1, 2, 1, 0));
    let gre = t.outputs.iter().find_map(|o| match o {
        Output::Port { port, max_len, .. } if *port == GRE_PORT => Some(*max_len),
        _ => None,
    });
    assert_eq!(gre, Some(Some(128)));
}

#[test]
fn a_tenant_never_taps_another_tenants_interface() {
    let mut taps = Taps::new();
    let s = service(&mut taps, "a", "vxlan", COLLECTOR_A, json!({}));
    // Tenant a selects by a label that tenant b's VM also carries.
    flow(&mut taps, "a", &s, json!({"selector": {"app": "web"}}), "BOTH", serde_json::Value::Null);
    let mut unknown = iface(3, "a", "web");
    unknown.tenant = None;
    let view = bridge(vec![iface(1, "a", "web"), iface(2, "b", "web"), unknown]);
    let want = vec![(VXLAN_PORT, s.key as u64, COLLECTOR_A)];
    assert_eq!(copies(&view, &taps, &ip_packet(1, 1, 9, 1, 0)), want);
    assert_eq!(copies(&view, &taps, &ip_packet(2, 2, 9, 1, 0)), vec![], "tenant b's VM");
    assert_eq!(copies(&view, &taps, &ip_packet(3, 3, 9, 1, 0)), vec![], "a VM of unknown tenant");
}

#[test]
fn no_copy_flows_until_the_tunnel_port_exists_but_the_port_is_asked_for() {
    let mut taps = Taps::new();
    let s = service(&mut taps, "a", "gre", COLLECTOR_A, json!({}));
    flow(&mut taps, "a", &s, json!({"iface_id": "port-1"}), "BOTH", serde_json::Value::Null);
    let mut view = bridge(vec![iface(1, "a", "web")]);
    view.tunnel_ports.clear();
    let plan = plan_bridge(&view, &taps);
    assert_eq!(plan.tunnels, [TunnelKind::Gre].into());
    assert_eq!(copies(&view, &taps, &ip_packet(1, 1, 2, 1, 0)), vec![]);
    let _ = IpAddr::V4(COLLECTOR_A);
}

#[test]
fn flows_carry_cookies_naming_their_tap_flow() {
    let mut taps = Taps::new();
    let s = service(&mut taps, "a", "vxlan", COLLECTOR_A, json!({}));
    flow(&mut taps, "a", &s, json!({"iface_id": "port-1"}), "BOTH", serde_json::Value::Null);
    let id = taps.flows().next().unwrap().id.0;
    let plan = plan_bridge(&bridge(vec![iface(1, "a", "web")]), &taps);
    assert!(plan.flows.iter().all(|f| cookie::is_ours(f.cookie)));
    let mirror: Vec<_> = plan
        .flows
        .iter()
        .filter(|f| cookie::decode(f.cookie) == Some((Kind::Mirror as u8, id)))
        .collect();
    assert_eq!(mirror.len(), 2, "one filter flow per direction");
}

#[test]
fn an_inactive_place_holds_what_the_vm_sends_for_the_controller_and_copies_nothing_delivered() {
    let mut taps = Taps::new();
    let s = service(&mut taps, "a", "vxlan", COLLECTOR_A, json!({}));
    flow(&mut taps, "a", &s, json!({"iface_id": "port-1"}), "BOTH", serde_json::Value::Null);
    let mut dest = iface(1, "a", "web");
    dest.in_active = false;
    dest.probe = true;
    let view = bridge(vec![dest]);
    let plan = plan_bridge(&view, &taps);
    let pipeline = Pipeline::new(&plan.flows);
    // A frame forwarded towards the VM's MAC is not copied here (the active place copies it).
    assert_eq!(copies(&view, &taps, &ip_packet(2, 2, 1, 1, 0)), vec![]);
    // What the VM sends here goes to the controller only: no copy, no forwarding (yet).
    let t = pipeline.run(&ip_packet(1, 1, 2, 1, 0));
    assert_eq!(t.to_port(PortNo::CONTROLLER).len(), 1, "{t:?}");
    assert_eq!(t.outputs.len(), 1, "{t:?}");
    // Once active, nothing goes to the controller any more and both directions are copied.
    let view = bridge(vec![iface(1, "a", "web")]);
    let t = Pipeline::new(&plan_bridge(&view, &taps).flows).run(&ip_packet(1, 1, 2, 1, 0));
    assert!(t.to_port(PortNo::CONTROLLER).is_empty());
    assert_eq!(t.to_port(VXLAN_PORT).len(), 1);
}

#[test]
fn a_vm_collector_gets_copies_through_the_tunnel_or_locally_and_nothing_else() {
    let mut taps = Taps::new();
    let body = json!({"name": "c", "tenant": "acme", "encap": "vxlan",
                      "collector": {"iface_id": "port-2"}});
    let svc = taps.create_service(TapServiceSpec::from_json(&body).unwrap()).unwrap();
    flow(&mut taps, "acme", &svc, json!({"iface_id": "port-1"}), "OUT", json!(null));
    let p = ip_packet(1, 1, 3, 6, 443);

    // The collector on another hypervisor: one copy, keyed, towards its tunnel endpoint.
    let remote = Ipv4Addr::new(192, 0, 2, 7);
    let mut view = bridge(vec![iface(1, "acme", "web"), iface(3, "acme", "web")]);
    view.collectors.insert(svc.id, CollectorPlace::Tunnel(remote));
    assert_eq!(copies(&view, &taps, &p), vec![(VXLAN_PORT, svc.key as u64, remote)]);
    // Its place unknown (moving, or absent): no copy at all.
    view.collectors.clear();
    assert_eq!(copies(&view, &taps, &p), vec![]);

    // On the same bridge: straight to its port, no tunnel metadata, no tunnel port needed.
    let mut col = iface(2, "acme", "ids");
    col.collects = vec![svc.id];
    let mut view = bridge(vec![iface(1, "acme", "web"), col]);
    view.collectors.insert(svc.id, CollectorPlace::Here(PortNo(2)));
    assert_eq!(copies(&view, &taps, &p), vec![(PortNo(2), 0, Ipv4Addr::UNSPECIFIED)]);

    // Where the collector is: what arrives with its key through the tunnel goes to it alone,
    // anything else arriving through periscope's tunnel ports goes nowhere.
    let plan = plan_bridge(&view, &taps);
    assert!(plan.tunnels.contains(&TunnelKind::Vxlan), "delivery needs the tunnel port");
    let arriving = |port: PortNo, key: u64| {
        let mut packet = ip_packet(1, 1, 3, 6, 443);
        packet.set(&OxmField::InPort(port));
        packet.set(&OxmField::TunnelId(key, None));
        Pipeline::new(&plan.flows).run(&packet)
    };
    let t = arriving(VXLAN_PORT, svc.key as u64);
    let ports: Vec<PortNo> = t
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Port { port, .. } => Some(*port),
            _ => None,
        })
        .collect();
    assert_eq!((ports, t.normal().len()), (vec![PortNo(2)], 0), "{t:?}");
    for (port, key) in [(VXLAN_PORT, svc.key as u64 + 1), (GRE_PORT, svc.key as u64)] {
        let t = arriving(port, key);
        assert!(t.outputs.is_empty() && t.normal().is_empty(), "{t:?}");
    }
}

#[test]
fn a_guest_keeps_to_table_0_above_the_owners_flows_and_probes_on_its_own_connection() {
    let mut taps = Taps::new();
    let s = service(&mut taps, "a", "vxlan", COLLECTOR_A, json!({}));
    flow(&mut taps, "a", &s, json!({"iface_id": "port-1"}), "BOTH", json!({"ip_proto": 6}));
    let mut moving = iface(1, "a", "web");
    (moving.in_active, moving.probe) = (false, true);
    for (arriving, ifaces) in
        [(false, vec![iface(1, "a", "web"), iface(2, "a", "db")]), (true, vec![moving])]
    {
        let view = BridgeView { mode: Mode::Guest, ..bridge(ifaces) };
        let plan = plan_bridge(&view, &taps);
        for f in &plan.flows {
            assert_eq!(f.table, TableId(0), "{f:?}");
            // Above faucet's highest (9099) and os-ken's simple_switch_13 (0 and 1).
            assert!(f.priority > 0xff00, "{f:?}");
            assert!(cookie::is_ours(f.cookie), "{f:?}");
        }
        let probe = plan.flows.iter().find(|f| cookie::decode(f.cookie).map(|d| d.0) == Some(4));
        assert_eq!(probe.is_some(), arriving, "{plan:?}");
        if let Some(p) = probe {
            // controller(id=0x5053), not output:CONTROLLER (which every id-0 connection gets).
            let Instruction::ApplyActions(a) = &p.instructions[0] else { panic!("{p:?}") };
            assert_eq!(
                a.to_vec(),
                vec![Action::Experimenter {
                    experimenter: NICIRA_EXPERIMENTER_ID,
                    data: vec![0, 20, 0xff, 0xff, 0x50, 0x53, 1, 0],
                }]
            );
        }
    }
}
