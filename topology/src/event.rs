//! What the graph emits: where interfaces are, and how that changed.
//!
//! Every [`Topology::apply`](crate::Topology::apply) (one change or one batch) compares the state
//! after with the state before and emits the difference, all stamped with one new [`Generation`];
//! a change that alters nothing below emits nothing and keeps the generation. Events only describe
//! the net difference: a row inserted and deleted within one batch emits nothing.
//!
//! An interface is *attached* when its row is listed by an existing `Port` row that is listed by
//! an existing `Bridge` row (if listed twice, the lowest uuid wins). Its [`Location`] is then
//! (hypervisor, bridge, interface, dpid, ofport); the location is *ready* when both the dpid and
//! the ofport are known, i.e. flows for it can be written. Readiness does not depend on the
//! bridge's OpenFlow connection, which has its own events.
//!
//! Per interface row, with `B`/`A` its state before/after:
//! - [`EventKind::InterfaceAppeared`]: not attached in `B`, attached in `A`.
//! - [`EventKind::InterfaceGone`]: attached in `B` (carries that location), not attached in `A`.
//! - [`EventKind::InterfaceUpdated`]: attached in both, and the row differs in anything but ofport.
//! - [`EventKind::LocationReady`]: ready in `A`, and in `B` not attached, not ready, or ready at a
//!   different location.
//! - [`EventKind::LocationUnready`]: ready in `B` (carries that location), attached but not ready
//!   in `A`.
//!
//! Per iface-id, with `B`/`A` the sets of attached interface rows carrying it:
//! - [`EventKind::InterfaceMoved`]: `|B| = 1`, `|A| = 1`, different rows.
//! - [`EventKind::MigrationStarted`]: `|B| <= 1`, `|A| >= 2`.
//! - [`EventKind::MigrationFinished`]: `|B| >= 2`, `|A| = 1`.
//! - Nothing else: 0 <-> 1 is told by the row events, and so are 2 -> 0 or 2 -> 3.
//!
//! Per bridge, with its connection being its dpid when that dpid's OpenFlow switch is connected:
//! [`EventKind::BridgeDisconnected`] when it had one and it is gone or different, then
//! [`EventKind::BridgeConnected`] when it has one that is new or different.
//!
//! Per [`Link`]: [`EventKind::LinkUp`] when it exists in `A` but not `B`, [`EventKind::LinkDown`]
//! for the reverse.
//!
//! Order within one generation: bridge events, then row events (by row), then iface-id events (by
//! iface-id), then link events (by link).

use std::net::IpAddr;

use periscope_codec::openflow::{Dpid, PortNo};
use serde::Serialize;

use crate::ids::{Generation, HypervisorId, RowRef, SwitchPort, Uuid};

/// Where an attached interface is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// The hypervisor.
    pub hypervisor: HypervisorId,
    /// The `Bridge` row holding the interface.
    pub bridge: Uuid,
    /// The `Interface` row.
    pub interface: Uuid,
    /// The bridge's datapath id, once known.
    pub dpid: Option<Dpid>,
    /// The interface's OpenFlow port: `Interface.ofport`, else the number of the switch's port
    /// of the same name (when PORT_STATUS came before OVSDB filled `ofport`).
    pub ofport: Option<PortNo>,
}

impl Location {
    /// Whether dpid and ofport are both known, so flows can be programmed.
    pub fn is_ready(&self) -> bool {
        self.dpid.is_some() && self.ofport.is_some()
    }

    /// The interface row.
    pub fn interface_ref(&self) -> RowRef {
        RowRef { hypervisor: self.hypervisor.clone(), uuid: self.interface.clone() }
    }

    /// The bridge row.
    pub fn bridge_ref(&self) -> RowRef {
        RowRef { hypervisor: self.hypervisor.clone(), uuid: self.bridge.clone() }
    }

    /// The (dpid, ofport) pair, when ready.
    pub fn switch_port(&self) -> Option<SwitchPort> {
        Some(SwitchPort { dpid: self.dpid?, port: self.ofport? })
    }
}

/// A link of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Link {
    /// Two attached patch interfaces of one hypervisor naming each other as `options:peer`
    /// (`a < b`).
    Patch {
        /// One end.
        a: RowRef,
        /// The other end.
        b: RowRef,
    },
    /// An attached tunnel interface whose fixed `remote_ip` is an underlay address of another
    /// hypervisor.
    Tunnel {
        /// The tunnel interface.
        iface: RowRef,
        /// Its `remote_ip`.
        remote_ip: IpAddr,
        /// The hypervisor owning that address.
        to: HypervisorId,
    },
    /// A link discovered by LLDP (`a <= b`).
    Lldp {
        /// One end.
        a: SwitchPort,
        /// The other end.
        b: SwitchPort,
    },
}

/// One event, stamped with the generation of the change that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The generation the graph reached with this change.
    pub generation: Generation,
    /// What happened.
    pub kind: EventKind,
}

/// What happened; exact semantics in the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The bridge's OpenFlow connection is up (dpid known and that switch connected).
    BridgeConnected {
        /// The bridge.
        bridge: RowRef,
        /// Its datapath id.
        dpid: Dpid,
    },
    /// The bridge's OpenFlow connection, as last reported connected, is down or gone.
    BridgeDisconnected {
        /// The bridge.
        bridge: RowRef,
        /// The datapath id it was connected with.
        dpid: Dpid,
    },
    /// An interface became attached.
    InterfaceAppeared {
        /// Where.
        location: Location,
    },
    /// An interface is no longer attached.
    InterfaceGone {
        /// Where it was.
        location: Location,
    },
    /// An attached interface's row changed (name, type, MAC, external_ids or options).
    InterfaceUpdated {
        /// Where it is.
        location: Location,
    },
    /// An attached interface's location is ready (new, newly ready or changed).
    LocationReady {
        /// The ready location.
        location: Location,
    },
    /// An attached interface's location stopped being ready.
    LocationUnready {
        /// The location it had while ready.
        location: Location,
    },
    /// The only place of an iface-id was replaced by another.
    InterfaceMoved {
        /// The iface-id.
        iface_id: String,
        /// Where it was.
        from: Location,
        /// Where it is.
        to: Location,
    },
    /// The iface-id is now at two or more places.
    MigrationStarted {
        /// The iface-id.
        iface_id: String,
        /// Places it had before and still has.
        from: Vec<Location>,
        /// Places it did not have before.
        to: Vec<Location>,
    },
    /// The iface-id is back to one place.
    MigrationFinished {
        /// The iface-id.
        iface_id: String,
        /// The places it left (locations as they were).
        from: Vec<Location>,
        /// The place that remains.
        to: Location,
    },
    /// A link appeared.
    LinkUp {
        /// The link.
        link: Link,
    },
    /// A link disappeared.
    LinkDown {
        /// The link.
        link: Link,
    },
}

impl EventKind {
    /// Every switch the event names: a bridge's dpid, the dpid of a location (LLDP links
    /// excepted). A connected switch's ports, the bridge of its dpid and the interfaces at its
    /// ports change only under a change naming the switch ([`crate::Change::switch`]), an event
    /// naming it, or an event about an interface that was ready on it before (a
    /// [`EventKind::LocationReady`] names only the new place).
    pub fn switches(&self) -> Vec<Dpid> {
        let at = |ls: &[&Location]| ls.iter().filter_map(|l| l.dpid).collect();
        match self {
            EventKind::BridgeConnected { dpid, .. }
            | EventKind::BridgeDisconnected { dpid, .. } => {
                vec![*dpid]
            }
            EventKind::InterfaceAppeared { location }
            | EventKind::InterfaceGone { location }
            | EventKind::InterfaceUpdated { location }
            | EventKind::LocationReady { location }
            | EventKind::LocationUnready { location } => at(&[location]),
            EventKind::InterfaceMoved { from, to, .. } => at(&[from, to]),
            EventKind::MigrationStarted { from, to, .. } => {
                at(&from.iter().chain(to).collect::<Vec<_>>())
            }
            EventKind::MigrationFinished { from, to, .. } => {
                at(&from.iter().chain([to]).collect::<Vec<_>>())
            }
            EventKind::LinkUp { .. } | EventKind::LinkDown { .. } => Vec::new(),
        }
    }
}
