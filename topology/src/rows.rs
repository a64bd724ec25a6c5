//! What the OVSDB and OpenFlow drivers tell the graph: OVSDB rows as typed values, OpenFlow ports,
//! and the helpers that turn OVSDB column values into them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use periscope_codec::openflow::{Dpid, MacAddr, PortNo};
use serde::{Serialize, Serializer};

use crate::ids::Uuid;

/// `external_ids` key OpenStack (and periscope's scenarios) set to the logical port id.
pub const IFACE_ID_KEY: &str = "iface-id";
/// `external_ids` key holding the guest's MAC address.
pub const ATTACHED_MAC_KEY: &str = "attached-mac";
/// `external_ids` key holding the VM's uuid.
pub const VM_UUID_KEY: &str = "vm-uuid";

/// Interface types that are tunnel ports (`Interface.type` in the Open vSwitch schema).
pub const TUNNEL_TYPES: &[&str] = &[
    "vxlan",
    "gre",
    "geneve",
    "stt",
    "lisp",
    "erspan",
    "ip6erspan",
    "ip6gre",
    "gtpu",
    "bareudp",
    "srv6",
];

/// An error turning an OVSDB column value into a graph value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// `Bridge.datapath_id` is not 1 to 16 hex digits.
    #[error("bad Bridge.datapath_id {value:?}: expected 1 to 16 hex digits")]
    BadDatapathId {
        /// The column value received.
        value: String,
    },
}

/// Parses `Bridge.datapath_id` (OVS writes 16 hex digits, no prefix) into a [`Dpid`].
pub fn parse_datapath_id(value: &str) -> Result<Dpid, TopologyError> {
    let bad = || TopologyError::BadDatapathId { value: value.to_owned() };
    if value.is_empty() || value.len() > 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(value, 16).map(Dpid).map_err(|_| bad())
}

/// Maps `Interface.ofport` to an OpenFlow 1.3 port number.
///
/// OVSDB uses OpenFlow 1.0 numbering: 1..=0xfeff are ports, 65534 (0xfffe) is the bridge's local
/// port, -1 means the port could not be created and an empty set means "not assigned yet". Every
/// value that is not a usable port gives `None`.
pub fn ofport_from_ovsdb(value: i64) -> Option<PortNo> {
    match value {
        1..=0xfeff => Some(PortNo(value as u32)),
        0xfffe => Some(PortNo::LOCAL),
        _ => None,
    }
}

/// What the controller knows about a hypervisor beyond its bridges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct HypervisorInfo {
    /// `Open_vSwitch.external_ids:system-id`.
    pub system_id: Option<String>,
    /// `Open_vSwitch.external_ids:hostname`.
    pub hostname: Option<String>,
    /// Underlay (tunnel endpoint) addresses of the hypervisor, where known: tunnels of other
    /// hypervisors whose `remote_ip` is one of these form a link to it.
    pub underlay_ips: BTreeSet<IpAddr>,
}

/// A `Bridge` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BridgeRow {
    /// Row uuid.
    pub uuid: Uuid,
    /// `Bridge.name`.
    pub name: String,
    /// `Bridge.datapath_id`, once vswitchd has filled it (see [`parse_datapath_id`]).
    pub datapath_id: Option<Dpid>,
    /// `Bridge.ports`: uuids of `Port` rows.
    pub ports: BTreeSet<Uuid>,
}

/// A `Port` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PortRow {
    /// Row uuid.
    pub uuid: Uuid,
    /// `Port.name`.
    pub name: String,
    /// `Port.interfaces`: uuids of `Interface` rows (more than one only for bonds).
    pub interfaces: BTreeSet<Uuid>,
}

/// An `Interface` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct InterfaceRow {
    /// Row uuid.
    pub uuid: Uuid,
    /// `Interface.name`, which is also the OpenFlow port name.
    pub name: String,
    /// `Interface.type`: `""` (system), `"internal"`, `"patch"`, `"vxlan"`, `"gre"`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `Interface.ofport` through [`ofport_from_ovsdb`]; `None` while not assigned.
    pub ofport: Option<PortNo>,
    /// `Interface.mac_in_use`.
    pub mac_in_use: Option<MacAddr>,
    /// `Interface.external_ids`. The strings are shared with the OVSDB replica's row.
    #[serde(serialize_with = "shared_string_map")]
    pub external_ids: BTreeMap<Arc<str>, Arc<str>>,
    /// `Interface.options` (tunnel `remote_ip`/`local_ip`/`key`, patch `peer`).
    #[serde(serialize_with = "shared_string_map")]
    pub options: BTreeMap<Arc<str>, Arc<str>>,
}

/// A copy of a map of shared strings (`external_ids`, `options`) as owned strings.
pub fn owned_strings(map: &BTreeMap<Arc<str>, Arc<str>>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Serializes a map of shared strings as a map of strings.
fn shared_string_map<S: Serializer>(
    map: &BTreeMap<Arc<str>, Arc<str>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, v)| (&**k, &**v)))
}

/// A tunnel endpoint option (`remote_ip`, `local_ip`): a fixed address or `flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TunnelEndpoint {
    /// Set per packet by the flow (`set_field:...->tun_dst`).
    Flow,
    /// A fixed address.
    Ip(IpAddr),
}

/// A tunnel key option (`key`, `in_key`, `out_key`): a fixed key or `flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TunnelKey {
    /// Set per packet by the flow (`set_field:...->tun_id`).
    Flow,
    /// A fixed key.
    Value(u64),
}

/// The options of a tunnel interface; an option absent or unparseable is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TunnelOptions {
    /// `options:remote_ip`.
    pub remote_ip: Option<TunnelEndpoint>,
    /// `options:local_ip`.
    pub local_ip: Option<TunnelEndpoint>,
    /// `options:key`.
    pub key: Option<TunnelKey>,
}

fn endpoint(value: &str) -> Option<TunnelEndpoint> {
    if value == "flow" {
        Some(TunnelEndpoint::Flow)
    } else {
        value.parse().ok().map(TunnelEndpoint::Ip)
    }
}

fn key(value: &str) -> Option<TunnelKey> {
    if value == "flow" {
        return Some(TunnelKey::Flow);
    }
    let parsed = match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    };
    parsed.map(TunnelKey::Value)
}

fn non_empty(v: Option<&Arc<str>>) -> Option<&str> {
    v.map(|s| &**s).filter(|s| !s.is_empty())
}

impl InterfaceRow {
    /// `external_ids:iface-id`, if set and not empty.
    pub fn iface_id(&self) -> Option<&str> {
        non_empty(self.external_ids.get(IFACE_ID_KEY))
    }

    /// `external_ids:vm-uuid`, if set and not empty.
    pub fn vm_uuid(&self) -> Option<&str> {
        non_empty(self.external_ids.get(VM_UUID_KEY))
    }

    /// `external_ids:attached-mac`, if set and a valid MAC address.
    pub fn attached_mac(&self) -> Option<MacAddr> {
        self.external_ids.get(ATTACHED_MAC_KEY)?.parse().ok()
    }

    /// The interface's MAC: `attached-mac` (the guest's address) first, else `mac_in_use` (for a
    /// tap or veth that is the host side's address, not the guest's).
    pub fn mac(&self) -> Option<MacAddr> {
        self.attached_mac().or(self.mac_in_use)
    }

    /// The value of `external_ids:<key>`, if set and not empty (used for the tenant key).
    pub fn external_id(&self, key: &str) -> Option<&str> {
        non_empty(self.external_ids.get(key))
    }

    /// Whether the type is one of [`TUNNEL_TYPES`].
    pub fn is_tunnel(&self) -> bool {
        TUNNEL_TYPES.contains(&self.kind.as_str())
    }

    /// The tunnel options, for a tunnel interface.
    pub fn tunnel(&self) -> Option<TunnelOptions> {
        if !self.is_tunnel() {
            return None;
        }
        Some(TunnelOptions {
            remote_ip: self.options.get("remote_ip").and_then(|v| endpoint(v)),
            local_ip: self.options.get("local_ip").and_then(|v| endpoint(v)),
            key: self.options.get("key").and_then(|v| key(v)),
        })
    }

    /// The fixed `remote_ip` of a tunnel interface (not `flow`).
    pub fn tunnel_remote_ip(&self) -> Option<IpAddr> {
        match self.tunnel()?.remote_ip? {
            TunnelEndpoint::Ip(ip) => Some(ip),
            TunnelEndpoint::Flow => None,
        }
    }

    /// `options:peer` of a patch interface: the name of the interface at the other end.
    pub fn patch_peer(&self) -> Option<&str> {
        if self.kind != "patch" {
            return None;
        }
        non_empty(self.options.get("peer"))
    }

    /// Whether the two rows agree on everything but `ofport` (which is location, not attribute).
    pub(crate) fn same_attributes(&self, other: &InterfaceRow) -> bool {
        self.uuid == other.uuid
            && self.name == other.name
            && self.kind == other.kind
            && self.mac_in_use == other.mac_in_use
            && self.external_ids == other.external_ids
            && self.options == other.options
    }
}

/// An OpenFlow port as the switch describes it (PORT_DESC reply, PORT_STATUS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfPort {
    /// `ofp_port.port_no`.
    pub port_no: PortNo,
    /// `ofp_port.name`, the OVS interface name.
    pub name: String,
    /// Whether the port can forward: not `OFPPC_PORT_DOWN` and not `OFPPS_LINK_DOWN`.
    pub live: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datapath_id_parses_hex_and_names_bad_values() {
        assert_eq!(parse_datapath_id("0000aabbccddeeff"), Ok(Dpid(0xaabb_ccdd_eeff)));
        assert_eq!(parse_datapath_id("1"), Ok(Dpid(1)));
        for bad in ["", "0x12", "00000000000000001", "zz", "-1"] {
            let err = parse_datapath_id(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn ofport_maps_ovsdb_numbering() {
        assert_eq!(ofport_from_ovsdb(-1), None);
        assert_eq!(ofport_from_ovsdb(0), None);
        assert_eq!(ofport_from_ovsdb(7), Some(PortNo(7)));
        assert_eq!(ofport_from_ovsdb(65534), Some(PortNo::LOCAL));
        assert_eq!(ofport_from_ovsdb(65535), None);
        assert_eq!(ofport_from_ovsdb(1 << 40), None);
    }

    #[test]
    fn interface_accessors_read_external_ids_and_options() {
        let mut row = InterfaceRow { kind: "vxlan".into(), ..Default::default() };
        row.options.insert("remote_ip".into(), "192.0.2.7".into());
        row.options.insert("local_ip".into(), "flow".into());
        row.options.insert("key".into(), "0x64".into());
        let t = row.tunnel().unwrap();
        assert_eq!(t.remote_ip, Some(TunnelEndpoint::Ip("192.0.2.7".parse().unwrap())));
        assert_eq!(t.local_ip, Some(TunnelEndpoint::Flow));
        assert_eq!(t.key, Some(TunnelKey::Value(100)));
        assert_eq!(row.tunnel_remote_ip(), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(row.patch_peer(), None);

        row.kind = String::new();
        row.mac_in_use = Some(MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(row.tunnel(), None);
        assert_eq!(row.mac(), Some(MacAddr([2, 0, 0, 0, 0, 1])));
        row.external_ids.insert(ATTACHED_MAC_KEY.into(), "fa:16:3e:00:00:09".into());
        row.external_ids.insert(IFACE_ID_KEY.into(), "".into());
        assert_eq!(row.mac(), Some(MacAddr([0xfa, 0x16, 0x3e, 0, 0, 9])));
        assert_eq!(row.iface_id(), None, "an empty iface-id is no iface-id");
    }
}
