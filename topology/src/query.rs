//! What the policy layer asks the graph: interfaces by source, their locations, bridges, tunnels.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use periscope_codec::openflow::{Dpid, MacAddr};
use serde::Serialize;

use crate::event::{Link, Location};
use crate::graph::Topology;
use crate::ids::{HypervisorId, RowRef, SwitchPort};
use crate::index::{Attached, MultiMap};
use crate::rows::{
    BridgeRow, HypervisorInfo, InterfaceRow, IFACE_ID_KEY, TUNNEL_TYPES, VM_UUID_KEY,
};

/// Which interfaces a tap copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// Interfaces whose `external_ids:iface-id` is this.
    IfaceId(String),
    /// Interfaces whose `external_ids:vm-uuid` is this.
    VmUuid(String),
    /// Interfaces whose tenant (the configured `external_ids` key) is this.
    Tenant(String),
    /// Interfaces whose `external_ids` hold every one of these key/value pairs (an empty
    /// selector matches every attached interface).
    ExternalIds(BTreeMap<String, String>),
}

/// An attached interface, as queries return it.
#[derive(Debug, Clone, Copy)]
pub struct InterfaceInfo<'a> {
    /// Where it is.
    pub location: &'a Location,
    /// Its `Interface` row.
    pub row: &'a InterfaceRow,
    tenant: Option<&'a str>,
}

impl<'a> InterfaceInfo<'a> {
    fn new(attached: &'a Attached, row: &'a InterfaceRow) -> InterfaceInfo<'a> {
        InterfaceInfo { location: &attached.location, row, tenant: attached.tenant.as_deref() }
    }

    /// The interface row.
    pub fn interface_ref(&self) -> RowRef {
        self.location.interface_ref()
    }

    /// `external_ids:iface-id`.
    pub fn iface_id(&self) -> Option<&'a str> {
        self.row.iface_id()
    }

    /// `external_ids:vm-uuid`.
    pub fn vm_uuid(&self) -> Option<&'a str> {
        self.row.vm_uuid()
    }

    /// The owning tenant, from the configured `external_ids` key.
    pub fn tenant(&self) -> Option<&'a str> {
        self.tenant
    }

    /// The interface's MAC (see [`InterfaceRow::mac`]).
    pub fn mac(&self) -> Option<MacAddr> {
        self.row.mac()
    }

    /// Whether flows can be programmed for it (dpid and ofport known).
    pub fn is_ready(&self) -> bool {
        self.location.is_ready()
    }
}

/// A bridge, as queries return it.
#[derive(Debug, Clone, Copy)]
pub struct BridgeInfo<'a> {
    /// The bridge row.
    pub bridge: &'a RowRef,
    /// Its `Bridge` row.
    pub row: &'a BridgeRow,
    /// Whether an OpenFlow connection for its dpid is up.
    pub connected: bool,
}

impl Topology {
    fn info_of<'a>(&'a self, r: &RowRef, attached: &'a Attached) -> Option<InterfaceInfo<'a>> {
        Some(InterfaceInfo::new(attached, self.raw.interfaces.get_ref(r)?))
    }

    fn infos<'a>(&'a self, refs: impl IntoIterator<Item = &'a RowRef>) -> Vec<InterfaceInfo<'a>> {
        refs.into_iter().filter_map(|r| self.info_of(r, self.idx.attached.get(r)?)).collect()
    }

    fn lookup<'a>(&'a self, m: &'a MultiMap<Arc<str>, RowRef>, k: &str) -> Vec<InterfaceInfo<'a>> {
        self.infos(m.get(k).into_iter().flatten())
    }

    /// The attached interface `r`, if attached.
    pub fn interface(&self, r: &RowRef) -> Option<InterfaceInfo<'_>> {
        self.info_of(r, self.idx.attached.get(r)?)
    }

    /// Every attached interface matching `source`, in row order. By iface-id, vm-uuid or tenant
    /// this is an index lookup; an `external_ids` selector uses the index of one of those keys
    /// when it names one, and scans every attached interface otherwise.
    pub fn interfaces(&self, source: &Source) -> Vec<InterfaceInfo<'_>> {
        match source {
            Source::IfaceId(id) => self.lookup(&self.idx.by_iface_id, id),
            Source::VmUuid(vm) => self.lookup(&self.idx.by_vm, vm),
            Source::Tenant(t) => self.lookup(&self.idx.by_tenant, t),
            Source::ExternalIds(sel) => {
                let narrowed = if let Some(v) = sel.get(IFACE_ID_KEY) {
                    self.lookup(&self.idx.by_iface_id, v)
                } else if let Some(v) = sel.get(VM_UUID_KEY) {
                    self.lookup(&self.idx.by_vm, v)
                } else if let Some(v) = sel.get(&self.config.tenant_key) {
                    self.lookup(&self.idx.by_tenant, v)
                } else {
                    let mut all: Vec<&RowRef> = self.idx.attached.keys().collect();
                    all.sort_unstable();
                    self.infos(all)
                };
                narrowed
                    .into_iter()
                    .filter(|i| {
                        sel.iter().all(|(k, v)| {
                            i.row.external_ids.get(k.as_str()).map(|v| &**v) == Some(v.as_str())
                        })
                    })
                    .collect()
            }
        }
    }

    /// The ready locations of the interfaces matching `source`, in row order.
    pub fn ready_locations(&self, source: &Source) -> Vec<&Location> {
        self.interfaces(source).into_iter().map(|i| i.location).filter(|l| l.is_ready()).collect()
    }

    /// Every location of `iface_id`, ready or not (two while a migration is in progress).
    pub fn locations(&self, iface_id: &str) -> Vec<&Location> {
        self.interfaces(&Source::IfaceId(iface_id.to_owned()))
            .into_iter()
            .map(|i| i.location)
            .collect()
    }

    /// The attached interface at OpenFlow port `at` (the lowest row if several claim it).
    pub fn interface_at(&self, at: SwitchPort) -> Option<InterfaceInfo<'_>> {
        self.infos(self.idx.by_ofport.get(&at).into_iter().flatten().take(1)).into_iter().next()
    }

    /// Every known hypervisor.
    pub fn hypervisors(&self) -> impl Iterator<Item = (&HypervisorId, &HypervisorInfo)> {
        self.raw.hypervisors.iter()
    }

    /// The address other hypervisors' tunnels reach this one at: its first underlay address
    /// (`Open_vSwitch.external_ids:ovn-encap-ip`), else the fixed `options:local_ip` of a
    /// tunnel interface on one of its bridges (as the Neutron OVS agent sets it), lowest first.
    pub fn tunnel_endpoint(&self, h: &HypervisorId) -> Option<IpAddr> {
        if let Some(ip) = self.raw.hypervisors.get(h).and_then(|i| i.underlay_ips.first()) {
            return Some(*ip);
        }
        self.raw
            .bridges
            .keys()
            .filter(|b| b.hypervisor == *h)
            .flat_map(|b| self.interfaces_on(b))
            .filter_map(|i| match i.row.tunnel()?.local_ip? {
                crate::rows::TunnelEndpoint::Ip(ip) => Some(ip),
                crate::rows::TunnelEndpoint::Flow => None,
            })
            .min()
    }

    /// One hypervisor's facts.
    pub fn hypervisor(&self, h: &HypervisorId) -> Option<&HypervisorInfo> {
        self.raw.hypervisors.get(h)
    }

    fn bridge_info<'a>(&'a self, r: &'a RowRef, row: &'a BridgeRow) -> BridgeInfo<'a> {
        let connected = self.idx.bridges.get(r).is_some_and(|s| s.connected);
        BridgeInfo { bridge: r, row, connected }
    }

    /// Every bridge, in row order.
    pub fn bridges(&self) -> impl Iterator<Item = BridgeInfo<'_>> {
        self.raw.bridges.iter().map(|(r, row)| self.bridge_info(r, row))
    }

    /// One bridge.
    pub fn bridge(&self, r: &RowRef) -> Option<BridgeInfo<'_>> {
        let (r, row) = self.raw.bridges.get_key_value(r)?;
        Some(self.bridge_info(r, row))
    }

    /// The bridge whose `datapath_id` is `dpid` (the lowest row if several claim it).
    pub fn bridge_by_dpid(&self, dpid: Dpid) -> Option<BridgeInfo<'_>> {
        self.bridge(self.idx.by_dpid.get(&dpid)?.first()?)
    }

    /// The hypervisor a bridge belongs to.
    pub fn hypervisor_of_bridge(&self, r: &RowRef) -> Option<(&HypervisorId, &HypervisorInfo)> {
        self.raw.bridges.get(r)?;
        self.raw.hypervisors.get_key_value(&r.hypervisor)
    }

    /// Every attached interface of `bridge`, of any type, in row order.
    pub fn interfaces_on(&self, bridge: &RowRef) -> Vec<InterfaceInfo<'_>> {
        self.infos(self.idx.by_bridge.get(bridge).into_iter().flatten())
    }

    /// The attached interfaces of `bridge` whose type is `kind` (any non-empty type: "internal",
    /// "patch", a tunnel type), in row order.
    pub fn interfaces_of_kind(&self, bridge: &RowRef, kind: &str) -> Vec<InterfaceInfo<'_>> {
        let key = (bridge.clone(), kind.to_owned());
        self.infos(self.idx.by_bridge_kind.get(&key).into_iter().flatten())
    }

    /// The tunnel ports of `bridge` of tunnel type `kind` ("vxlan", "gre", "geneve", ...);
    /// empty if `kind` is not a tunnel type.
    pub fn tunnel_ports(&self, bridge: &RowRef, kind: &str) -> Vec<InterfaceInfo<'_>> {
        if !TUNNEL_TYPES.contains(&kind) {
            return Vec::new();
        }
        self.interfaces_of_kind(bridge, kind)
    }

    /// Whether an OpenFlow connection for `dpid` is up.
    pub fn switch_connected(&self, dpid: Dpid) -> bool {
        self.raw.switches.get(&dpid).is_some_and(|s| s.connected)
    }

    /// The OpenFlow ports of every connected switch, as last reported, by dpid and port number.
    pub fn switch_ports(&self) -> impl Iterator<Item = (Dpid, &crate::rows::OfPort)> {
        self.raw
            .switches
            .iter()
            .filter(|(_, s)| s.connected)
            .flat_map(|(d, s)| s.ports.values().map(move |p| (*d, p)))
    }

    /// The OpenFlow ports of switch `dpid` as last reported, by port number; none unless it is
    /// connected.
    pub fn ports_of_switch(&self, dpid: Dpid) -> impl Iterator<Item = &crate::rows::OfPort> {
        self.raw
            .switches
            .get(&dpid)
            .filter(|s| s.connected)
            .into_iter()
            .flat_map(|s| s.ports.values())
    }

    /// Every link: patch and tunnel links, then LLDP links.
    pub fn links(&self) -> Vec<Link> {
        let lldp = self.raw.lldp.keys().map(|(a, b)| Link::Lldp { a: *a, b: *b });
        self.idx.links.iter().cloned().chain(lldp).collect()
    }

    /// The iface-ids attached at two places or more, with their locations, by iface-id.
    /// O(iface-ids).
    pub fn migrations(&self) -> Vec<(&str, Vec<&Location>)> {
        let mut out: Vec<(&str, Vec<&Location>)> = self
            .idx
            .by_iface_id
            .iter()
            .filter(|(_, rows)| rows.len() >= 2)
            .map(|(id, rows)| {
                let locs =
                    rows.iter().filter_map(|r| self.idx.attached.get(r)).map(|a| &a.location);
                (&**id, locs.collect())
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }
}

impl Topology {
    /// The `Port` row that holds the interface `r`, if known (the lowest row if several do).
    pub fn port_of_interface(&self, r: &RowRef) -> Option<&crate::rows::PortRow> {
        let port = crate::index::row_get(&self.idx.iface_ports, &r.hypervisor, &r.uuid)?.first()?;
        self.raw.ports.get(&r.hypervisor, port)
    }
}
