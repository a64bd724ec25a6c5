//! Identifiers of the graph: hypervisors, OVSDB rows, generations, switch ports, caller time.

use std::fmt;

use periscope_codec::openflow::{Dpid, PortNo};
use serde::Serialize;

/// The name the controller knows a hypervisor's OVSDB connection by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
pub struct HypervisorId(pub String);

impl From<&str> for HypervisorId {
    fn from(s: &str) -> Self {
        HypervisorId(s.to_owned())
    }
}

impl fmt::Display for HypervisorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OVSDB row uuid, kept as the string OVSDB sends (`"uuid"` atom).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
pub struct Uuid(pub String);

impl From<&str> for Uuid {
    fn from(s: &str) -> Self {
        Uuid(s.to_owned())
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A row of one hypervisor's database (bridge, port or interface): uuids are only unique per database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct RowRef {
    /// The hypervisor whose database holds the row.
    pub hypervisor: HypervisorId,
    /// The row's uuid in that database.
    pub uuid: Uuid,
}

impl RowRef {
    /// A reference to row `uuid` of `hypervisor`'s database.
    pub fn new(hypervisor: impl Into<HypervisorId>, uuid: impl Into<Uuid>) -> RowRef {
        RowRef { hypervisor: hypervisor.into(), uuid: uuid.into() }
    }
}

impl fmt::Display for RowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.hypervisor, self.uuid)
    }
}

/// The topology's version: bumped once by every change that emits events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
pub struct Generation(pub u64);

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Milliseconds on the caller's monotonic clock; the topology never reads a clock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
pub struct Millis(pub u64);

/// One OpenFlow port of one switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct SwitchPort {
    /// The switch.
    pub dpid: Dpid,
    /// The port on that switch.
    pub port: PortNo,
}

impl fmt::Display for SwitchPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dpid, self.port)
    }
}
