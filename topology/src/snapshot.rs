//! A serializable copy of the whole graph, for `GET /v1/topology`.

use std::collections::BTreeMap;

use periscope_codec::openflow::{Dpid, MacAddr, PortNo};
use serde::Serialize;

use crate::event::{Link, Location};
use crate::graph::Topology;
use crate::ids::{Generation, HypervisorId, RowRef, Uuid};
use crate::rows::{owned_strings, HypervisorInfo, OfPort};

/// The whole graph at one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopologySnapshot {
    /// The generation shown.
    pub generation: Generation,
    /// Every hypervisor with its attached bridges, ports and interfaces.
    pub hypervisors: Vec<HypervisorView>,
    /// Every switch known on the OpenFlow side.
    pub switches: Vec<SwitchView>,
    /// Every link.
    pub links: Vec<Link>,
    /// iface-ids at two places or more.
    pub migrations: Vec<MigrationView>,
    /// Interface rows not (yet) reachable from a bridge.
    pub unattached_interfaces: Vec<RowRef>,
}

/// One hypervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HypervisorView {
    /// Its id.
    pub id: HypervisorId,
    /// Its facts.
    #[serde(flatten)]
    pub info: HypervisorInfo,
    /// Its bridges.
    pub bridges: Vec<BridgeView>,
}

/// One bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BridgeView {
    /// Row uuid.
    pub uuid: Uuid,
    /// Name.
    pub name: String,
    /// `datapath_id`, once known.
    pub datapath_id: Option<Dpid>,
    /// Whether its OpenFlow connection is up.
    pub connected: bool,
    /// The ports attached to it.
    pub ports: Vec<PortView>,
}

/// One port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortView {
    /// Row uuid.
    pub uuid: Uuid,
    /// Name.
    pub name: String,
    /// Its attached interfaces.
    pub interfaces: Vec<InterfaceView>,
}

/// One attached interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceView {
    /// Row uuid.
    pub uuid: Uuid,
    /// Name.
    pub name: String,
    /// `Interface.type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The OpenFlow port in use (OVSDB's, else learned from the switch by name).
    pub ofport: Option<PortNo>,
    /// `Interface.ofport` as OVSDB reports it.
    pub ovsdb_ofport: Option<PortNo>,
    /// The MAC (attached-mac, else mac_in_use).
    pub mac: Option<MacAddr>,
    /// `external_ids:iface-id`.
    pub iface_id: Option<String>,
    /// `external_ids:vm-uuid`.
    pub vm_uuid: Option<String>,
    /// The tenant (configured `external_ids` key).
    pub tenant: Option<String>,
    /// All `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// All `options`.
    pub options: BTreeMap<String, String>,
    /// Whether flows can be programmed for it.
    pub ready: bool,
}

/// One switch as seen on OpenFlow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchView {
    /// Its datapath id.
    pub dpid: Dpid,
    /// Whether its connection is up.
    pub connected: bool,
    /// Its ports as last reported.
    pub ports: Vec<OfPort>,
}

/// An iface-id at several places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationView {
    /// The iface-id.
    pub iface_id: String,
    /// Its places.
    pub locations: Vec<Location>,
}

impl Topology {
    /// A serializable copy of the whole graph. O(n).
    pub fn snapshot(&self) -> TopologySnapshot {
        let hypervisors = self
            .raw
            .hypervisors
            .iter()
            .map(|(id, info)| HypervisorView {
                id: id.clone(),
                info: info.clone(),
                bridges: self.bridge_views(id),
            })
            .collect();
        let switches = self
            .raw
            .switches
            .iter()
            .map(|(dpid, sw)| SwitchView {
                dpid: *dpid,
                connected: sw.connected,
                ports: sw.ports.values().cloned().collect(),
            })
            .collect();
        let migrations = self
            .migrations()
            .into_iter()
            .map(|(id, locs)| MigrationView {
                iface_id: id.to_owned(),
                locations: locs.into_iter().cloned().collect(),
            })
            .collect();
        let mut unattached_interfaces: Vec<RowRef> = self
            .raw
            .interfaces
            .iter()
            .map(|(h, u, _)| RowRef { hypervisor: h.clone(), uuid: u.clone() })
            .filter(|r| !self.idx.attached.contains_key(r))
            .collect();
        unattached_interfaces.sort_unstable();
        TopologySnapshot {
            generation: self.generation,
            hypervisors,
            switches,
            links: self.links(),
            migrations,
            unattached_interfaces,
        }
    }

    fn bridge_views(&self, h: &HypervisorId) -> Vec<BridgeView> {
        self.bridges()
            .filter(|b| b.bridge.hypervisor == *h)
            .map(|b| BridgeView {
                uuid: b.row.uuid.clone(),
                name: b.row.name.clone(),
                datapath_id: b.row.datapath_id,
                connected: b.connected,
                ports: b.row.ports.iter().filter_map(|p| self.port_view(b.bridge, p)).collect(),
            })
            .collect()
    }

    /// Port `uuid` under `bridge`, if that is where it is attached.
    fn port_view(&self, bridge: &RowRef, uuid: &Uuid) -> Option<PortView> {
        let r = RowRef { hypervisor: bridge.hypervisor.clone(), uuid: uuid.clone() };
        let row = self.raw.ports.get_ref(&r)?;
        if crate::index::row_get(&self.idx.port_bridges, &r.hypervisor, &r.uuid)?.first()?
            != &bridge.uuid
        {
            return None;
        }
        let interfaces = row
            .interfaces
            .iter()
            .filter_map(|i| {
                let r = RowRef { hypervisor: bridge.hypervisor.clone(), uuid: i.clone() };
                let att = self.idx.attached.get(&r).filter(|a| a.port == *uuid)?;
                let row = self.raw.interfaces.get_ref(&r)?;
                Some(InterfaceView {
                    uuid: row.uuid.clone(),
                    name: row.name.clone(),
                    kind: row.kind.clone(),
                    ofport: att.location.ofport,
                    ovsdb_ofport: row.ofport,
                    mac: row.mac(),
                    iface_id: att.iface_id.as_deref().map(str::to_owned),
                    vm_uuid: att.vm_uuid.as_deref().map(str::to_owned),
                    tenant: att.tenant.as_deref().map(str::to_owned),
                    external_ids: owned_strings(&row.external_ids),
                    options: owned_strings(&row.options),
                    ready: att.location.is_ready(),
                })
            })
            .collect();
        Some(PortView { uuid: row.uuid.clone(), name: row.name.clone(), interfaces })
    }
}
