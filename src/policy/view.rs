//! What the policy needs to know about a bridge, taken from the topology graph. Keeping it a
//! small plain value makes the policy a pure function that tests can feed directly.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use periscope_codec::openflow::{MacAddr, PortNo};

use crate::northbound::model::{TapServiceId, TunnelKind};

/// An interface present on a bridge, with everything a tap may select or match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceView {
    /// `external_ids:iface-id`.
    pub iface_id: String,
    /// `external_ids:vm-uuid`, if set.
    pub vm: Option<String>,
    /// The owning tenant, if known.
    pub tenant: Option<String>,
    /// All of the interface's external_ids (selectors match on these), shared with the
    /// topology's row.
    pub external_ids: BTreeMap<Arc<str>, Arc<str>>,
    /// OpenFlow port number on the bridge.
    pub ofport: PortNo,
    /// The VM's MAC address (`attached-mac`), used to recognise frames delivered to it.
    pub mac: Option<MacAddr>,
    /// Whether frames delivered to the interface are copied here. During a live migration the
    /// interface is present at two places but runs at one: delivered frames are copied only
    /// where it is active, or a frame forwarded from one place to the other would be copied
    /// twice.
    pub in_active: bool,
    /// Whether the first frame the interface sends here must be reported to the controller: it
    /// is present here but not yet active (a migration's destination before the VM runs there).
    pub probe: bool,
    /// The tap services whose VM collector this interface is (of its own tenant): their copies
    /// arriving here through the tunnel are delivered to it, wherever it is present.
    pub collects: Vec<TapServiceId>,
}

/// Where a tap service's VM collector runs now, as a bridge copying towards it sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorPlace {
    /// On this bridge, at this port: copies go to it directly.
    Here(PortNo),
    /// On another hypervisor, reached through the tunnel at this underlay address.
    Tunnel(Ipv4Addr),
}

/// A bridge as the policy sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeView {
    /// Interfaces with a known OpenFlow port, in any order.
    pub interfaces: Vec<IfaceView>,
    /// periscope's flow-based tunnel port for each encapsulation, where it exists already.
    pub tunnel_ports: BTreeMap<TunnelKind, PortNo>,
    /// Where the VM collector of each tap service that has one runs now; a service missing
    /// here has its collector nowhere reachable now (absent, moving, or another tenant's), and
    /// nothing is copied towards it.
    pub collectors: BTreeMap<TapServiceId, CollectorPlace>,
    /// Who owns the bridge's forwarding.
    pub mode: Mode,
}

/// Who owns a bridge's forwarding, and so where periscope's flows go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Mode {
    /// periscope owns the pipeline: tables 0-4, `NORMAL` at the end.
    #[default]
    Owner,
    /// Another controller owns the pipeline (tables, flows, forwarding): periscope only adds
    /// flows of its own to table 0, above any of the owner's, and hands every frame on to the
    /// owner's pipeline unchanged.
    Guest,
}
