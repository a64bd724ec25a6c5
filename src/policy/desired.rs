//! The whole policy: from the topology and the taps to what every bridge should hold.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use periscope_codec::openflow::{Dpid, PortNo};
use periscope_topology::query::InterfaceInfo;
use periscope_topology::query::Source as TopoSource;
use periscope_topology::{RowRef, Topology};

use super::mirror::{plan_bridge_indexed, BridgePlan, TapIndex};
use super::tunnels::our_tunnel_ports;
use super::view::{BridgeView, CollectorPlace, IfaceView, Mode};
use crate::northbound::model::{Source, TapServiceId};
use crate::northbound::store::Taps;

/// The topology's view of a tap flow's source.
pub fn topology_source(s: &Source) -> TopoSource {
    match s {
        Source::IfaceId(id) => TopoSource::IfaceId(id.clone()),
        Source::Vm(vm) => TopoSource::VmUuid(vm.clone()),
        Source::Selector(sel) => TopoSource::ExternalIds(sel.clone()),
    }
}

/// What one bridge should hold, with the bridge row it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDesired {
    /// The bridge row (hypervisor and uuid), for OVSDB changes.
    pub bridge: RowRef,
    /// Flows and tunnel ports.
    pub plan: BridgePlan,
    /// Whether every tunnel port the plan needs exists already, so that its flows are all
    /// there (copies towards a missing tunnel port wait for it).
    pub complete: bool,
}

/// The views of every bridge with a datapath id: the interfaces some tap flow selects on each
/// (`index` indexes the tap flows of `taps`) and periscope's tunnel ports there.
///
/// `active` says, per iface-id, which of its interface rows the VM is known to run behind; an
/// interface it names is active only there (see [`IfaceView::in_active`]), one it does not name
/// is active wherever it is.
///
/// `only`, when given, restricts the work to those bridges.
pub fn bridge_views(
    topology: &Topology,
    taps: &Taps,
    index: &TapIndex<'_>,
    active: &Activity,
    only: Option<&BTreeSet<Dpid>>,
) -> BTreeMap<Dpid, (RowRef, BridgeView)> {
    let mut views: BTreeMap<Dpid, (RowRef, BridgeView)> = BTreeMap::new();
    for b in topology.bridges() {
        let Some(dpid) = b.row.datapath_id else { continue };
        if only.is_some_and(|o| !o.contains(&dpid)) {
            continue;
        }
        let mut view = BridgeView::default();
        for (t, kind) in our_tunnel_ports(topology, b.bridge) {
            if let Some(port) = t.location.ofport {
                view.tunnel_ports.insert(kind, port);
            }
        }
        views.entry(dpid).or_insert((b.bridge.clone(), view));
    }
    // Every interface a tap flow selects, once: found from the tap flows when every bridge is
    // wanted, and from the interfaces of the wanted bridges otherwise (a few bridges out of many
    // cost what their own interfaces cost, whatever the number of tap flows).
    let mut seen = BTreeSet::new();
    let mut add = |i: InterfaceInfo<'_>, views: &mut BTreeMap<Dpid, (RowRef, BridgeView)>| {
        let (Some(dpid), Some(ofport), Some(iface_id)) =
            (i.location.dpid, i.location.ofport, i.iface_id())
        else {
            return;
        };
        let Some((_, view)) = views.get_mut(&dpid) else { return };
        let me = i.interface_ref();
        if !seen.insert(me.clone()) {
            return;
        }
        // Where the controller follows an iface-id (it moves, or moved), that alone says
        // where it is active, even once it is present at one place only.
        let in_active = match active.get(iface_id) {
            None => true,
            Some(at) => at.as_ref() == Some(&me),
        };
        // Where it is present but not active, what it sends goes to the controller (which
        // holds it while the copies move).
        let probe = !in_active;
        let tenant = taps.tenant_of(Some(iface_id), i.tenant());
        let iface = IfaceView {
            iface_id: iface_id.to_string(),
            vm: i.vm_uuid().map(str::to_string),
            tenant: tenant.map(str::to_string),
            external_ids: i.row.external_ids.clone(),
            ofport,
            mac: i.mac(),
            in_active,
            probe,
            collects: collected_by(taps, iface_id, tenant),
        };
        if !iface.collects.is_empty() || !index.selecting(&iface).is_empty() {
            view.interfaces.push(iface);
        }
    };
    match only {
        None => {
            for flow in taps.flows() {
                for i in topology.interfaces(&topology_source(&flow.source)) {
                    add(i, &mut views);
                }
            }
            for id in taps.services().filter_map(|s| s.collector.iface_id()) {
                for i in topology.interfaces(&TopoSource::IfaceId(id.to_string())) {
                    add(i, &mut views);
                }
            }
        }
        Some(_) => {
            let bridges: Vec<RowRef> = views.values().map(|(b, _)| b.clone()).collect();
            for b in &bridges {
                for i in topology.interfaces_on(b) {
                    add(i, &mut views);
                }
            }
        }
    }
    let places = collector_places(topology, taps, active);
    for (dpid, (_, view)) in views.iter_mut() {
        view.collectors = places
            .iter()
            .filter_map(|(svc, (at, port, endpoint))| {
                let place = if at == dpid {
                    CollectorPlace::Here(*port)
                } else {
                    CollectorPlace::Tunnel((*endpoint)?)
                };
                Some((*svc, place))
            })
            .collect();
    }
    views
}

/// The tap services whose VM collector is `iface_id`, when the interface is their tenant's.
fn collected_by(taps: &Taps, iface_id: &str, tenant: Option<&str>) -> Vec<TapServiceId> {
    taps.services()
        .filter(|s| s.collector.iface_id() == Some(iface_id) && Some(s.tenant.as_str()) == tenant)
        .filter(|s| !taps.is_blocked(s.id))
        .map(|s| s.id)
        .collect()
}

/// Where each VM collector runs now: its bridge, port, and its hypervisor's tunnel endpoint.
/// A collector is where it is active (see [`Activity`]); one that moves (copies left the old
/// place, not yet at the new one) or is not its service's tenant's is nowhere.
fn collector_places(
    topology: &Topology,
    taps: &Taps,
    active: &Activity,
) -> BTreeMap<TapServiceId, (Dpid, PortNo, Option<Ipv4Addr>)> {
    let mut out = BTreeMap::new();
    for svc in taps.services() {
        let Some(id) = svc.collector.iface_id() else { continue };
        let here = topology.interfaces(&TopoSource::IfaceId(id.to_string()));
        let at = match active.get(id) {
            Some(Some(r)) => here.iter().find(|i| i.interface_ref() == *r),
            Some(None) => None,
            None => here.first().filter(|_| here.len() == 1),
        };
        let Some(i) = at else { continue };
        if taps.tenant_of(Some(id), i.tenant()) != Some(svc.tenant.as_str()) {
            continue;
        }
        let (Some(dpid), Some(port)) = (i.location.dpid, i.location.ofport) else { continue };
        let endpoint = match topology.tunnel_endpoint(&i.location.hypervisor) {
            Some(IpAddr::V4(ip)) => Some(ip),
            _ => None,
        };
        out.insert(svc.id, (dpid, port, endpoint));
    }
    out
}

/// The bridges whose copies go to the VM collector `iface_id` (where the sources of its tap
/// services are): they follow it when it moves.
pub fn feeding(topology: &Topology, taps: &Taps, iface_id: &str) -> BTreeSet<Dpid> {
    let services: BTreeSet<TapServiceId> = taps
        .services()
        .filter(|s| s.collector.iface_id() == Some(iface_id))
        .map(|s| s.id)
        .collect();
    if services.is_empty() {
        return BTreeSet::new();
    }
    services
        .iter()
        .flat_map(|s| taps.flows_using(*s))
        .flat_map(|f| topology.interfaces(&topology_source(&f.source)))
        .filter_map(|i| i.location.dpid)
        .collect()
}

/// Whether frames delivered to `iface_id` are copied (a tap flow of its tenant selects it with
/// direction `IN` or `BOTH`): moving those copies needs the old places to stop first.
pub fn copies_delivered_frames(topology: &Topology, taps: &Taps, iface_id: &str) -> bool {
    // Only the tap flows naming the iface-id, one of its VMs, or a selector can select it.
    let vms: BTreeSet<&str> = topology
        .interfaces(&TopoSource::IfaceId(iface_id.to_owned()))
        .iter()
        .filter_map(|i| i.vm_uuid())
        .collect();
    let mut candidates: BTreeMap<_, _> = BTreeMap::new();
    for vm in vms.iter().map(|vm| Some(*vm)).chain([None]) {
        candidates.extend(taps.naming(iface_id, vm).map(|f| (f.id, f)));
    }
    candidates.into_values().filter(|f| f.direction.r#in()).any(|f| {
        topology.interfaces(&topology_source(&f.source)).iter().any(|i| {
            i.iface_id() == Some(iface_id)
                && taps.tenant_of(Some(iface_id), i.tenant()) == Some(f.tenant.as_str())
        })
    })
}

/// Where each iface-id is known to be active: the interface row its VM runs behind, or `None`
/// while it moves (the copies of delivered frames have left the old place and not yet reached
/// the new one; nothing is delivered to the VM meanwhile).
pub type Activity = std::collections::HashMap<String, Option<RowRef>>;

/// What every bridge with a datapath id (or, with `only`, each of those bridges) should hold,
/// when its forwarding is owned as `mode` says.
pub fn desired(
    topology: &Topology,
    taps: &Taps,
    active: &Activity,
    only: Option<&BTreeSet<Dpid>>,
    mode: Mode,
) -> BTreeMap<Dpid, BridgeDesired> {
    let index = TapIndex::new(taps);
    bridge_views(topology, taps, &index, active, only)
        .into_iter()
        .map(|(dpid, (bridge, mut view))| {
            view.mode = mode;
            let plan = plan_bridge_indexed(&view, taps, &index);
            let complete = plan.tunnels.iter().all(|e| view.tunnel_ports.contains_key(e));
            (dpid, BridgeDesired { bridge, plan, complete })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use periscope_codec::openflow::{Dpid, PortNo};
    use periscope_topology::change::HypervisorSnapshot;
    use periscope_topology::rows::{BridgeRow, InterfaceRow, PortRow};
    use periscope_topology::{Change, HypervisorId, Topology, TopologyConfig, Uuid};

    use super::{desired, Activity, Mode};
    use crate::northbound::model::{
        Collector, Direction, Encap, Filter, Source, TapFlowSpec, TapServiceSpec,
    };
    use crate::northbound::store::Taps;

    /// Three bridges; on each, interfaces of two tenants, some in an app, one with no tenant,
    /// and periscope's VXLAN and GRE ports.
    fn world() -> Topology {
        let mut t = Topology::new(TopologyConfig::default());
        let mut changes = Vec::new();
        for h in 0..3u64 {
            let b = format!("br{h}");
            let mut snap = HypervisorSnapshot::default();
            let mut bridge = BridgeRow {
                uuid: Uuid::from(b.clone()),
                name: "br-int".into(),
                datapath_id: Some(Dpid(h + 1)),
                ports: BTreeSet::new(),
            };
            let mut add = |name: String, ofport: u32, ids: Vec<(&str, String)>, kind: &str| {
                let mut i = InterfaceRow {
                    uuid: Uuid::from(format!("{name}-i")),
                    name: name.clone(),
                    kind: kind.into(),
                    ofport: Some(PortNo(ofport)),
                    ..Default::default()
                };
                for (k, v) in ids {
                    i.external_ids.insert(k.into(), v.into());
                }
                if !kind.is_empty() {
                    i.options.insert("remote_ip".into(), "flow".into());
                    i.options.insert("key".into(), "flow".into());
                }
                let p = PortRow {
                    uuid: Uuid::from(format!("{name}-p")),
                    name,
                    interfaces: BTreeSet::from([i.uuid.clone()]),
                };
                bridge.ports.insert(p.uuid.clone());
                snap.ports.push(p);
                snap.interfaces.push(i);
            };
            for (kind, no) in [("vxlan", 100), ("gre", 101)] {
                add(format!("{b}-{kind}"), no, vec![("periscope-owned", "true".into())], kind);
            }
            for v in 0..6u32 {
                let n = h as u32 * 6 + v;
                let mut ids = vec![
                    ("iface-id", format!("port-{n}")),
                    ("attached-mac", format!("fa:16:3e:00:00:{n:02x}")),
                    ("vm-uuid", format!("vm-{}", n / 2)),
                ];
                if v != 5 {
                    ids.push(("tenant-id", if v % 2 == 0 { "acme" } else { "umbrella" }.into()));
                }
                if v < 3 {
                    ids.push(("app", "payments".into()));
                }
                add(format!("{b}-vm{v}"), v + 1, ids, "");
            }
            snap.bridges.push(bridge);
            let hypervisor = HypervisorId::from(format!("hv{h}"));
            changes.push(Change::HypervisorReplaced { hypervisor, snapshot: snap });
        }
        t.apply_batch(changes);
        t
    }

    fn taps() -> Taps {
        let mut taps = Taps::new();
        let mut ids = Vec::new();
        for (tenant, encap) in [("acme", Encap::Vxlan), ("umbrella", Encap::Gre)] {
            let s = taps
                .create_service(TapServiceSpec {
                    name: format!("{tenant}-svc"),
                    tenant: tenant.into(),
                    encap,
                    collector: Collector::Remote("192.0.2.9".parse().expect("an address")),
                    key: None,
                    snaplen: None,
                })
                .expect("a service");
            ids.push((tenant, s.id));
        }
        let sources = [
            ("acme", Source::IfaceId("port-0".into())),
            ("acme", Source::IfaceId("port-7".into())), // umbrella's: selects nothing
            ("umbrella", Source::Vm("vm-4".into())),
            ("acme", Source::Selector([("app".to_string(), "payments".to_string())].into())),
            ("umbrella", Source::IfaceId("port-11".into())), // no tenant of its own
        ];
        for (n, (tenant, source)) in sources.into_iter().enumerate() {
            let svc = ids.iter().find(|(t, _)| *t == tenant).map(|(_, s)| *s).expect("a service");
            taps.create_flow(TapFlowSpec {
                name: format!("f{n}"),
                tenant: tenant.into(),
                tap_service: svc,
                source,
                direction: Direction::Both,
                filter: Filter::default(),
            })
            .expect("a flow");
        }
        taps
    }

    #[test]
    fn planning_some_bridges_gives_what_planning_all_gives_for_them() {
        let (topology, taps) = (world(), taps());
        let mut active = Activity::new();
        // port-0 moves: active nowhere yet.
        active.insert("port-0".into(), None);
        let all = desired(&topology, &taps, &active, None, Mode::Owner);
        assert_eq!(all.len(), 3);
        assert!(all.values().any(|d| d.plan.flows.len() > 10), "the world taps something");
        for dpid in all.keys() {
            let one =
                desired(&topology, &taps, &active, Some(&BTreeSet::from([*dpid])), Mode::Owner);
            assert_eq!(one.len(), 1);
            assert_eq!(one.get(dpid), all.get(dpid), "bridge {dpid}");
        }
    }
}
