//! The whole policy: from the topology and the taps to what every bridge should hold.

use std::collections::{BTreeMap, BTreeSet};

use periscope_codec::openflow::Dpid;
use periscope_topology::query::Source as TopoSource;
use periscope_topology::{RowRef, Topology};

use super::mirror::{plan_bridge_indexed, BridgePlan, TapIndex};
use super::tunnels::{is_our_tunnel, tunnel_encap};
use super::view::{BridgeView, IfaceView};
use crate::northbound::model::Source;
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

/// The views of every bridge with a datapath id, built in one pass over the tap flows: the
/// tapped interfaces on each and periscope's tunnel ports there.
///
/// `active` says, per iface-id, which of its interface rows the VM is known to run behind; an
/// interface it names is active only there (see [`IfaceView::in_active`]), one it does not name
/// is active wherever it is.
///
/// `only`, when given, restricts the work to those bridges.
pub fn bridge_views(
    topology: &Topology,
    taps: &Taps,
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
        for kind in ["vxlan", "gre"] {
            for t in topology.tunnel_ports(b.bridge, kind) {
                if let (true, Some(encap), Some(port)) =
                    (is_our_tunnel(t.row), tunnel_encap(t.row), t.location.ofport)
                {
                    view.tunnel_ports.insert(encap, port);
                }
            }
        }
        views.entry(dpid).or_insert((b.bridge.clone(), view));
    }
    let mut seen = BTreeSet::new();
    for flow in taps.flows() {
        for i in topology.interfaces(&topology_source(&flow.source)) {
            let (Some(dpid), Some(ofport), Some(iface_id)) =
                (i.location.dpid, i.location.ofport, i.iface_id())
            else {
                continue;
            };
            let Some((_, view)) = views.get_mut(&dpid) else { continue };
            let me = i.interface_ref();
            if !seen.insert(me.clone()) {
                continue;
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
            view.interfaces.push(IfaceView {
                iface_id: iface_id.to_string(),
                vm: i.vm_uuid().map(str::to_string),
                tenant: taps.tenant_of(Some(iface_id), i.tenant()).map(str::to_string),
                external_ids: i.row.external_ids.clone(),
                ofport,
                mac: i.mac(),
                in_active,
                probe,
            });
        }
    }
    views
}

/// Where each iface-id is known to be active: the interface row its VM runs behind, or `None`
/// while it moves (the copies of delivered frames have left the old place and not yet reached
/// the new one; nothing is delivered to the VM meanwhile).
pub type Activity = std::collections::HashMap<String, Option<RowRef>>;

/// What every bridge with a datapath id (or, with `only`, each of those bridges) should hold.
pub fn desired(
    topology: &Topology,
    taps: &Taps,
    active: &Activity,
    only: Option<&BTreeSet<Dpid>>,
) -> BTreeMap<Dpid, BridgeDesired> {
    let index = TapIndex::new(taps);
    bridge_views(topology, taps, active, only)
        .into_iter()
        .map(|(dpid, (bridge, view))| {
            let plan = plan_bridge_indexed(&view, taps, &index);
            let complete = plan.tunnels.iter().all(|e| view.tunnel_ports.contains_key(e));
            (dpid, BridgeDesired { bridge, plan, complete })
        })
        .collect()
}
