//! Newtypes for the identifiers OpenFlow passes around, so that a port is never mistaken for a
//! table or a datapath for a cookie.

use std::fmt;

use serde::Serialize;

/// A datapath id (`ofp_switch_features.datapath_id`): 48 bits of MAC plus 16 implementer bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct Dpid(pub u64);

impl fmt::Display for Dpid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A transaction id, echoed by the switch in replies and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct Xid(pub u32);

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// An opaque flow cookie; periscope uses it to mark the flows it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct Cookie(pub u64);

impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// An OpenFlow port number (`ofp_port_no`), including the reserved ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct PortNo(pub u32);

impl PortNo {
    /// Highest number of a physical port.
    pub const MAX: PortNo = PortNo(0xffff_ff00);
    /// Send the packet out the input port.
    pub const IN_PORT: PortNo = PortNo(0xffff_fff8);
    /// Submit the packet to the first flow table (packet-out only).
    pub const TABLE: PortNo = PortNo(0xffff_fff9);
    /// Forward using the non-OpenFlow pipeline (learning switch in OVS).
    pub const NORMAL: PortNo = PortNo(0xffff_fffa);
    /// Flood using the non-OpenFlow pipeline.
    pub const FLOOD: PortNo = PortNo(0xffff_fffb);
    /// All ports except the input port.
    pub const ALL: PortNo = PortNo(0xffff_fffc);
    /// Send to the controller.
    pub const CONTROLLER: PortNo = PortNo(0xffff_fffd);
    /// The local networking stack of the switch.
    pub const LOCAL: PortNo = PortNo(0xffff_fffe);
    /// Wildcard port, in requests and `out_port` filters.
    pub const ANY: PortNo = PortNo(0xffff_ffff);

    /// The `ovs-ofctl` name of a reserved port, if this is one.
    pub fn reserved_name(self) -> Option<&'static str> {
        Some(match self {
            PortNo::IN_PORT => "IN_PORT",
            PortNo::TABLE => "TABLE",
            PortNo::NORMAL => "NORMAL",
            PortNo::FLOOD => "FLOOD",
            PortNo::ALL => "ALL",
            PortNo::CONTROLLER => "CONTROLLER",
            PortNo::LOCAL => "LOCAL",
            PortNo::ANY => "ANY",
            _ => return None,
        })
    }

    /// Parses a port as `ovs-ofctl` writes it: a number or a reserved name.
    pub fn from_name(s: &str) -> Option<PortNo> {
        let upper = s.to_ascii_uppercase();
        Some(match upper.as_str() {
            "IN_PORT" => PortNo::IN_PORT,
            "TABLE" => PortNo::TABLE,
            "NORMAL" => PortNo::NORMAL,
            "FLOOD" => PortNo::FLOOD,
            "ALL" => PortNo::ALL,
            "CONTROLLER" => PortNo::CONTROLLER,
            "LOCAL" => PortNo::LOCAL,
            "ANY" | "NONE" => PortNo::ANY,
            _ => PortNo(s.parse().ok()?),
        })
    }
}

impl fmt::Display for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reserved_name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A flow table id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct TableId(pub u8);

impl TableId {
    /// All tables (flow-mod delete, stats requests).
    pub const ALL: TableId = TableId(0xff);
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A buffer id on the switch; [`BufferId::NO_BUFFER`] when the packet is not buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BufferId(pub u32);

impl BufferId {
    /// The packet is not buffered on the switch.
    pub const NO_BUFFER: BufferId = BufferId(0xffff_ffff);
}

impl Default for BufferId {
    fn default() -> Self {
        BufferId::NO_BUFFER
    }
}

/// A group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct GroupId(pub u32);

impl GroupId {
    /// Highest ordinary group number.
    pub const MAX: GroupId = GroupId(0xffff_ff00);
    /// All groups (group-mod delete, stats).
    pub const ALL: GroupId = GroupId(0xffff_fffc);
    /// Wildcard group.
    pub const ANY: GroupId = GroupId(0xffff_ffff);
}

/// A meter id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct MeterId(pub u32);

impl MeterId {
    /// Highest ordinary meter number.
    pub const MAX: MeterId = MeterId(0xffff_0000);
    /// Meter for slow datapath packets.
    pub const SLOWPATH: MeterId = MeterId(0xffff_fffd);
    /// Meter for controller-bound packets.
    pub const CONTROLLER: MeterId = MeterId(0xffff_fffe);
    /// All meters.
    pub const ALL: MeterId = MeterId(0xffff_ffff);
}

/// A queue id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct QueueId(pub u32);

impl QueueId {
    /// All queues.
    pub const ALL: QueueId = QueueId(0xffff_ffff);
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The all-ones broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p =
                parts.next().ok_or_else(|| format!("MAC address {s:?} has fewer than 6 octets"))?;
            *b = u8::from_str_radix(p, 16)
                .map_err(|_| format!("MAC address {s:?} has a bad octet {p:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("MAC address {s:?} has more than 6 octets"));
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
