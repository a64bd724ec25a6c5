//! The inputs of the graph: what the OVSDB, OpenFlow and LLDP drivers observed, as typed changes.

use periscope_codec::openflow::{Dpid, PortNo};

use crate::ids::{HypervisorId, Millis, SwitchPort, Uuid};
use crate::rows::{BridgeRow, HypervisorInfo, InterfaceRow, OfPort, PortRow};

/// Why an OpenFlow PORT_STATUS was sent (`ofp_port_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortStatusReason {
    /// `OFPPR_ADD`: the port was added.
    Add,
    /// `OFPPR_DELETE`: the port was removed.
    Delete,
    /// `OFPPR_MODIFY`: some attribute of the port changed.
    Modify,
}

/// A full copy of one hypervisor's rows, as a resync after an OVSDB reconnect sees them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HypervisorSnapshot {
    /// `Open_vSwitch` facts.
    pub info: HypervisorInfo,
    /// Every `Bridge` row.
    pub bridges: Vec<BridgeRow>,
    /// Every `Port` row.
    pub ports: Vec<PortRow>,
    /// Every `Interface` row.
    pub interfaces: Vec<InterfaceRow>,
}

/// One observed change. Rows of a hypervisor that is not yet known create it (with empty info);
/// removing something unknown does nothing. Applying the same upsert twice changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A hypervisor's `Open_vSwitch` facts were learned or changed.
    HypervisorUpserted {
        /// The hypervisor.
        hypervisor: HypervisorId,
        /// Its facts, replacing the previous ones.
        info: HypervisorInfo,
    },
    /// The hypervisor's OVSDB connection is lost for good: it goes with all its rows.
    HypervisorGone {
        /// The hypervisor.
        hypervisor: HypervisorId,
    },
    /// A resync: the hypervisor's rows become exactly `snapshot`. Rows that did not change emit
    /// nothing, so a reconnect does not look like a migration.
    HypervisorReplaced {
        /// The hypervisor.
        hypervisor: HypervisorId,
        /// Everything its database holds now.
        snapshot: HypervisorSnapshot,
    },
    /// A `Bridge` row was inserted or modified.
    BridgeUpserted {
        /// The hypervisor whose database holds it.
        hypervisor: HypervisorId,
        /// The whole row as it is now.
        row: BridgeRow,
    },
    /// A `Bridge` row was deleted.
    BridgeRemoved {
        /// The hypervisor whose database held it.
        hypervisor: HypervisorId,
        /// Its uuid.
        uuid: Uuid,
    },
    /// A `Port` row was inserted or modified.
    PortUpserted {
        /// The hypervisor whose database holds it.
        hypervisor: HypervisorId,
        /// The whole row as it is now.
        row: PortRow,
    },
    /// A `Port` row was deleted.
    PortRemoved {
        /// The hypervisor whose database held it.
        hypervisor: HypervisorId,
        /// Its uuid.
        uuid: Uuid,
    },
    /// An `Interface` row was inserted or modified.
    InterfaceUpserted {
        /// The hypervisor whose database holds it.
        hypervisor: HypervisorId,
        /// The whole row as it is now.
        row: InterfaceRow,
    },
    /// An `Interface` row was deleted.
    InterfaceRemoved {
        /// The hypervisor whose database held it.
        hypervisor: HypervisorId,
        /// Its uuid.
        uuid: Uuid,
    },
    /// An OpenFlow connection from `dpid` completed its handshake.
    SwitchConnected {
        /// The switch.
        dpid: Dpid,
    },
    /// The OpenFlow connection from `dpid` is gone: its ports and LLDP links are forgotten.
    SwitchDisconnected {
        /// The switch.
        dpid: Dpid,
    },
    /// A PORT_DESC reply: the switch's ports become exactly `ports`.
    SwitchPortsReplaced {
        /// The switch.
        dpid: Dpid,
        /// Every port it reported.
        ports: Vec<OfPort>,
    },
    /// A PORT_STATUS message.
    PortStatus {
        /// The switch that sent it.
        dpid: Dpid,
        /// `ofp_port_status.reason`.
        reason: PortStatusReason,
        /// `ofp_port_status.desc`.
        port: OfPort,
    },
    /// An LLDP frame sent from `a` was received at `b` (or the reverse) at time `at`.
    LldpLinkSeen {
        /// One end.
        a: SwitchPort,
        /// The other end.
        b: SwitchPort,
        /// When, on the caller's clock.
        at: Millis,
    },
    /// The LLDP driver gave up on the link between `a` and `b`.
    LldpLinkExpired {
        /// One end.
        a: SwitchPort,
        /// The other end.
        b: SwitchPort,
    },
}

impl Change {
    /// The switch whose OpenFlow state (connection, ports) this change is about, if any.
    pub fn switch(&self) -> Option<Dpid> {
        match self {
            Change::SwitchConnected { dpid }
            | Change::SwitchDisconnected { dpid }
            | Change::SwitchPortsReplaced { dpid, .. }
            | Change::PortStatus { dpid, .. } => Some(*dpid),
            _ => None,
        }
    }

    /// A PORT_STATUS `Add` of port `port_no` named `name`, live.
    pub fn port_added(dpid: Dpid, port_no: PortNo, name: &str) -> Change {
        Change::PortStatus {
            dpid,
            reason: PortStatusReason::Add,
            port: OfPort { port_no, name: name.to_owned(), live: true },
        }
    }
}
