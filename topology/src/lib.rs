//! The live topology graph: hypervisors, bridges, ports, VM interfaces and tunnels. Pure, no I/O.
//!
//! The OVSDB and OpenFlow drivers translate what they observe into [`Change`]s; [`Topology::apply`]
//! writes them into the graph, keeps every index up to date incrementally, and returns the
//! [`Event`]s describing the difference, stamped with a new [`Generation`]. The policy layer
//! reads the graph through queries ([`Topology::interfaces`], [`Topology::bridge_by_dpid`], ...)
//! and the API serves [`Topology::snapshot`]. Event semantics are in [`event`].
//!
//! OVSDB rows are stored as the database holds them (a bridge lists its ports, a port its
//! interfaces), so rows may arrive in any order; OpenFlow ports are stored per switch. An
//! interface's location combines both, so whichever of OVSDB and PORT_STATUS comes first, the
//! graph converges to the same state.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod change;
pub mod event;
mod graph;
pub mod ids;
mod index;
pub mod query;
pub mod rows;
mod small_set;
pub mod snapshot;

pub use change::{Change, HypervisorSnapshot, PortStatusReason};
pub use event::{Event, EventKind, Link, Location};
pub use graph::{Topology, TopologyConfig, DEFAULT_TENANT_KEY};
pub use ids::{Generation, HypervisorId, Millis, RowRef, SwitchPort, Uuid};
pub use query::{BridgeInfo, InterfaceInfo, Source};
pub use rows::{
    ofport_from_ovsdb, parse_datapath_id, BridgeRow, HypervisorInfo, InterfaceRow, OfPort, PortRow,
    TopologyError, TunnelEndpoint, TunnelKey, TunnelOptions,
};
pub use snapshot::TopologySnapshot;
