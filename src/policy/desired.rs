//! The whole policy: from the topology and the taps to what every bridge should hold.

use std::collections::{BTreeMap, BTreeSet};

use periscope_codec::openflow::Dpid;
use periscope_topology::query::Source as TopoSource;
use periscope_topology::{RowRef, Topology};

use super::mirror::{plan_bridge, BridgePlan};
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
}

/// The views of every bridge with a datapath id, built in one pass over the tap flows: the
/// tapped interfaces on each and periscope's tunnel ports there.
pub fn bridge_views(topology: &Topology, taps: &Taps) -> BTreeMap<Dpid, (RowRef, BridgeView)> {
    let mut views: BTreeMap<Dpid, (RowRef, BridgeView)> = BTreeMap::new();
    for b in topology.bridges() {
        let Some(dpid) = b.row.datapath_id else { continue };
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
            if !seen.insert(i.interface_ref()) {
                continue;
            }
            view.interfaces.push(IfaceView {
                iface_id: iface_id.to_string(),
                vm: i.vm_uuid().map(str::to_string),
                tenant: i.tenant().map(str::to_string),
                external_ids: i.row.external_ids.clone(),
                ofport,
                mac: i.mac(),
            });
        }
    }
    views
}

/// What every bridge with a datapath id should hold.
pub fn desired(topology: &Topology, taps: &Taps) -> BTreeMap<Dpid, BridgeDesired> {
    bridge_views(topology, taps)
        .into_iter()
        .map(|(dpid, (bridge, view))| {
            (dpid, BridgeDesired { bridge, plan: plan_bridge(&view, taps) })
        })
        .collect()
}
