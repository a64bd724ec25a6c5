//! The whole policy: from the topology and the taps to what every bridge should hold.

use std::collections::BTreeMap;

use periscope_codec::openflow::{Dpid, PortNo};
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

/// The view of one bridge: the tapped interfaces on it and periscope's tunnel ports.
pub fn bridge_view(topology: &Topology, taps: &Taps, dpid: Dpid) -> Option<(RowRef, BridgeView)> {
    let bridge = topology.bridge_by_dpid(dpid)?;
    let mut view = BridgeView::default();
    let mut seen = std::collections::BTreeSet::new();
    for flow in taps.flows() {
        for i in topology.interfaces(&topology_source(&flow.source)) {
            if i.location.dpid != Some(dpid) || !seen.insert(i.interface_ref()) {
                continue;
            }
            let (Some(ofport), Some(iface_id)) = (i.location.ofport, i.iface_id()) else {
                continue;
            };
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
    for kind in ["vxlan", "gre"] {
        for t in topology.tunnel_ports(bridge.bridge, kind) {
            if let (true, Some(encap), Some(PortNo(p))) =
                (is_our_tunnel(t.row), tunnel_encap(t.row), t.location.ofport)
            {
                view.tunnel_ports.insert(encap, PortNo(p));
            }
        }
    }
    Some((bridge.bridge.clone(), view))
}

/// What every connected bridge should hold.
pub fn desired(
    topology: &Topology,
    taps: &Taps,
    dpids: impl IntoIterator<Item = Dpid>,
) -> BTreeMap<Dpid, BridgeDesired> {
    dpids
        .into_iter()
        .filter_map(|dpid| {
            let (bridge, view) = bridge_view(topology, taps, dpid)?;
            Some((dpid, BridgeDesired { bridge, plan: plan_bridge(&view, taps) }))
        })
        .collect()
}
