//! What tenants ask for, in the vocabulary of OpenStack Tap-as-a-Service: tap services (a
//! tenant's collector) and tap flows (which frames of which interfaces to copy there).
//!
//! Input arrives as JSON and is validated field by field here, so that a bad request is refused
//! whole with the field, the value and what would have been accepted.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A refused request: which field, what it held, what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("bad value for {field}: {value}; expected {expected}")]
pub struct FieldError {
    /// The field's path, e.g. `filter.dst_port`.
    pub field: String,
    /// The value given, as JSON text (or `missing`).
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
}

impl FieldError {
    fn new(field: &str, value: Option<&Value>, expected: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            value: value.map_or_else(|| "missing".to_string(), |v| v.to_string()),
            expected: expected.into(),
        }
    }
}

/// Identifies a tap service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TapServiceId(pub u64);

/// Identifies a tap flow (it also names its flows' cookies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TapFlowId(pub u64);

/// How copies travel to the collector: what the API accepts and what a collector receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Encap {
    /// VXLAN (UDP 4789); the key is the 24-bit VNI.
    #[serde(rename = "vxlan")]
    Vxlan,
    /// GRE (IP protocol 47) with a 32-bit key.
    #[serde(rename = "gre")]
    Gre,
    /// ERSPAN version 1 (type II, GRE protocol 0x88be); the key is the 10-bit session id, and
    /// the index carries the mirrored interface's OpenFlow port.
    #[serde(rename = "erspan_v1")]
    ErspanV1,
    /// ERSPAN version 2 (type III, GRE protocol 0x22eb); the key is the 10-bit session id, and
    /// the direction bit says whether the VM sent the frame (0) or received it (1).
    #[serde(rename = "erspan_v2")]
    ErspanV2,
}

/// The kind of tunnel port copies leave through: ERSPAN's two versions share one port (the
/// version is set per flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelKind {
    /// A flow-based VXLAN port.
    Vxlan,
    /// A flow-based GRE port.
    Gre,
    /// A flow-based ERSPAN port (`erspan_ver=flow`).
    Erspan,
}

impl TunnelKind {
    /// The OVS interface type of the port.
    pub fn ovs_type(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan => "erspan",
        }
    }
}

impl Encap {
    /// Every encapsulation, in the order of [`Ord`].
    pub const ALL: [Encap; 4] = [Encap::Vxlan, Encap::Gre, Encap::ErspanV1, Encap::ErspanV2];

    /// The largest key this encapsulation can carry.
    pub fn max_key(self) -> u32 {
        match self {
            Encap::Vxlan => (1 << 24) - 1,
            Encap::Gre => u32::MAX,
            Encap::ErspanV1 | Encap::ErspanV2 => (1 << 10) - 1,
        }
    }

    /// Its name in the API, the northbound database, a collector's JSON lines and pcap files.
    pub fn name(self) -> &'static str {
        match self {
            Encap::Vxlan => "vxlan",
            Encap::Gre => "gre",
            Encap::ErspanV1 => "erspan_v1",
            Encap::ErspanV2 => "erspan_v2",
        }
    }

    /// The encapsulation an API name stands for.
    pub fn from_name(name: &str) -> Option<Encap> {
        Encap::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The tunnel port its copies leave through.
    pub fn tunnel(self) -> TunnelKind {
        match self {
            Encap::Vxlan => TunnelKind::Vxlan,
            Encap::Gre => TunnelKind::Gre,
            Encap::ErspanV1 | Encap::ErspanV2 => TunnelKind::Erspan,
        }
    }

    /// The ERSPAN version it sends, if it is ERSPAN.
    pub fn erspan_version(self) -> Option<u8> {
        match self {
            Encap::Vxlan | Encap::Gre => None,
            Encap::ErspanV1 => Some(1),
            Encap::ErspanV2 => Some(2),
        }
    }
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which frames of an interface, seen from the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    /// Frames delivered to the VM.
    In,
    /// Frames the VM sends.
    Out,
    /// Both.
    Both,
}

impl Direction {
    /// Whether frames the VM sends are copied.
    pub fn out(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    /// Whether frames delivered to the VM are copied.
    pub fn r#in(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// Which interfaces a tap flow copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// One interface, by its `external_ids:iface-id` (the Neutron port id).
    IfaceId(String),
    /// Every interface of a VM, by `external_ids:vm-uuid`.
    Vm(String),
    /// Every interface whose external_ids hold all these key/value pairs, now or later.
    Selector(BTreeMap<String, String>),
}

/// An IPv4 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub len: u8,
}

impl Ipv4Cidr {
    /// The netmask.
    pub fn mask(self) -> Ipv4Addr {
        Ipv4Addr::from(if self.len == 0 { 0 } else { u32::MAX << (32 - self.len) })
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let len: u8 = l
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or(format!("prefix length {l:?} is not 0-32"))?;
        let c = Ipv4Cidr { addr, len };
        if u32::from(addr) & !u32::from(c.mask()) != 0 {
            return Err(format!("{s} has host bits set"));
        }
        Ok(c)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which frames to copy; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Filter {
    /// 802.1Q VLAN id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Ethernet type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<u16>,
    /// IP protocol (implies IPv4 unless `ethertype` says otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_proto: Option<u8>,
    /// IPv4 source prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_cidr: Option<Ipv4Cidr>,
    /// IPv4 destination prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_cidr: Option<Ipv4Cidr>,
    /// TCP/UDP/SCTP source port (needs `ip_proto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// TCP/UDP/SCTP destination port (needs `ip_proto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
}

impl Filter {
    /// True when the filter lets every frame through.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

/// Where a tap service's copies go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collector {
    /// A collector outside the cloud, at this address (inside the tenant's allowed collectors).
    Remote(IpAddr),
    /// A VM interface of the tenant inside the cloud, by iface-id (TaaS's `port_id`): copies
    /// go through the tunnel to whichever hypervisor hosts it now and are delivered to it there.
    Iface(String),
}

impl Collector {
    /// The collector's address, for a collector outside the cloud.
    pub fn remote_ip(&self) -> Option<IpAddr> {
        match self {
            Collector::Remote(ip) => Some(*ip),
            Collector::Iface(_) => None,
        }
    }

    /// The collector's iface-id, for a VM collector.
    pub fn iface_id(&self) -> Option<&str> {
        match self {
            Collector::Remote(_) => None,
            Collector::Iface(id) => Some(id),
        }
    }
}

impl fmt::Display for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Collector::Remote(ip) => write!(f, "{ip}"),
            Collector::Iface(id) => write!(f, "interface {id}"),
        }
    }
}

impl Serialize for Collector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Collector::Remote(ip) => m.serialize_entry("remote_ip", ip)?,
            Collector::Iface(id) => {
                m.serialize_entry("collector", &serde_json::json!({ "iface_id": id }))?
            }
        }
        m.end()
    }
}

/// A request to create a tap service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapServiceSpec {
    /// Name.
    pub name: String,
    /// Owning tenant.
    pub tenant: String,
    /// Encapsulation.
    pub encap: Encap,
    /// Where the copies go.
    pub collector: Collector,
    /// The key asked for; allocated when `None`.
    pub key: Option<u32>,
    /// Copies are truncated to this many bytes.
    pub snaplen: Option<u16>,
}

/// A tenant's collector, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TapService {
    /// Id.
    pub id: TapServiceId,
    /// Name.
    pub name: String,
    /// Owning tenant.
    pub tenant: String,
    /// Encapsulation.
    pub encap: Encap,
    /// Where the copies go: `"remote_ip"` or `"collector": {"iface_id"}` in JSON.
    #[serde(flatten)]
    pub collector: Collector,
    /// The VNI, GRE key or ERSPAN session id that marks this service's copies.
    pub key: u32,
    /// Copies are truncated to this many bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplen: Option<u16>,
}

/// A request to create a tap flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapFlowSpec {
    /// Name.
    pub name: String,
    /// Owning tenant.
    pub tenant: String,
    /// The tap service copies go to.
    pub tap_service: TapServiceId,
    /// Which interfaces.
    pub source: Source,
    /// Which direction.
    pub direction: Direction,
    /// Which frames.
    pub filter: Filter,
}

/// A tap flow, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TapFlow {
    /// Id.
    pub id: TapFlowId,
    /// Name.
    pub name: String,
    /// Owning tenant.
    pub tenant: String,
    /// The tap service copies go to.
    pub tap_service: TapServiceId,
    /// Which interfaces.
    pub source: Source,
    /// Which direction.
    pub direction: Direction,
    /// Which frames.
    #[serde(skip_serializing_if = "Filter::is_empty")]
    pub filter: Filter,
}

/// What a request field holds, for the parser's table and the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A non-empty string.
    Text,
    /// An integer in a range.
    Integer(u64, u64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// An IPv4 address.
    Ipv4,
    /// An IPv4 prefix.
    Cidr,
    /// An object, described elsewhere.
    Object,
}

/// One field a request body may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDoc {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub kind: FieldKind,
    /// Whether it must be given.
    pub required: bool,
    /// What it means.
    pub doc: &'static str,
}

impl FieldDoc {
    /// Its JSON schema.
    pub fn schema(&self) -> Value {
        let mut s = match self.kind {
            FieldKind::Text => {
                serde_json::json!({"type": "string", "minLength": 1, "maxLength": NAME_MAX})
            }
            FieldKind::Integer(min, max) => {
                serde_json::json!({"type": "integer", "minimum": min, "maximum": max})
            }
            FieldKind::OneOf(v) => serde_json::json!({"type": "string", "enum": v}),
            FieldKind::Ipv4 => serde_json::json!({"type": "string", "format": "ipv4"}),
            FieldKind::Cidr => serde_json::json!({"type": "string", "example": "10.0.0.0/24"}),
            FieldKind::Object => serde_json::json!({"type": "object"}),
        };
        s["description"] = Value::from(self.doc);
        s
    }
}

const fn field(name: &'static str, kind: FieldKind, required: bool, doc: &'static str) -> FieldDoc {
    FieldDoc { name, kind, required, doc }
}

/// The fields of `POST /v1/tap_services`.
pub const SERVICE_FIELDS: &[FieldDoc] = &[
    field("name", FieldKind::Text, true, "unique per tenant"),
    field("tenant", FieldKind::Text, false, "the owner; a tenant's token may leave it out"),
    field(
        "encap",
        FieldKind::OneOf(&["vxlan", "gre", "erspan_v1", "erspan_v2"]),
        true,
        "how copies travel (ERSPAN: to a remote collector, key 1-1023)",
    ),
    field(
        "remote_ip",
        FieldKind::Ipv4,
        false,
        "a collector outside the cloud, inside the tenant's allow-list (or give collector)",
    ),
    field(
        "collector",
        FieldKind::Object,
        false,
        "{\"iface_id\": ...}: a VM interface of the tenant, followed wherever it runs (or give remote_ip)",
    ),
    field(
        "key",
        FieldKind::Integer(1, 4_294_967_295),
        false,
        "VNI (at most 16777215), GRE key, or ERSPAN session id (at most 1023); allocated when left out",
    ),
    field("snaplen", FieldKind::Integer(64, 65535), false, "copies are cut to this many bytes"),
];

/// The fields of `POST /v1/tap_flows`.
pub const FLOW_FIELDS: &[FieldDoc] = &[
    field("name", FieldKind::Text, true, "unique per tenant"),
    field("tenant", FieldKind::Text, false, "the owner; a tenant's token may leave it out"),
    field(
        "tap_service",
        FieldKind::Integer(1, u64::MAX),
        true,
        "the id of one of the tenant's tap services",
    ),
    field("source", FieldKind::Object, true, "which interfaces"),
    field("direction", FieldKind::OneOf(&["IN", "OUT", "BOTH"]), true, "seen from the VM"),
    field("filter", FieldKind::Object, false, "which frames; every field given must match"),
];

/// The fields of a tap flow's `filter`.
pub const FILTER_FIELDS: &[FieldDoc] = &[
    field("vlan", FieldKind::Integer(0, 4095), false, "802.1Q VLAN id"),
    field("ethertype", FieldKind::Integer(0x600, 0xffff), false, "Ethernet type"),
    field("ip_proto", FieldKind::Integer(0, 255), false, "IP protocol"),
    field("src_cidr", FieldKind::Cidr, false, "IPv4 source prefix"),
    field("dst_cidr", FieldKind::Cidr, false, "IPv4 destination prefix"),
    field(
        "src_port",
        FieldKind::Integer(0, 65535),
        false,
        "TCP/UDP/SCTP source port (needs ip_proto)",
    ),
    field(
        "dst_port",
        FieldKind::Integer(0, 65535),
        false,
        "TCP/UDP/SCTP destination port (needs ip_proto)",
    ),
];

/// Reads fields out of a JSON object, refusing those its table does not list.
struct Fields<'a> {
    prefix: &'a str,
    obj: &'a Map<String, Value>,
    table: &'static [FieldDoc],
}

impl<'a> Fields<'a> {
    fn new(prefix: &'a str, v: &'a Value, table: &'static [FieldDoc]) -> Result<Self, FieldError> {
        let field = if prefix.is_empty() { "body" } else { prefix.trim_end_matches('.') };
        let obj = v.as_object().ok_or_else(|| FieldError::new(field, Some(v), "a JSON object"))?;
        Ok(Fields { prefix, obj, table })
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        debug_assert!(self.table.iter().any(|f| f.name == name), "{name} is not in the table");
        self.obj.get(name).filter(|v| !v.is_null())
    }

    fn string(&mut self, name: &'static str, max: usize) -> Result<String, FieldError> {
        let v = self.get(name);
        match v.and_then(Value::as_str) {
            Some(s) if !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control) => {
                Ok(s.to_string())
            }
            _ => Err(FieldError::new(
                &self.path(name),
                v,
                format!("a non-empty string of at most {max} characters"),
            )),
        }
    }

    fn opt_uint(
        &mut self,
        name: &'static str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, FieldError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(FieldError::new(
                &self.path(name),
                Some(v),
                format!("an integer from {min} to {max}"),
            )),
        }
    }

    fn opt_parsed<T: FromStr<Err = String>>(
        &mut self,
        name: &'static str,
        what: &str,
    ) -> Result<Option<T>, FieldError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let s = v
            .as_str()
            .ok_or_else(|| FieldError::new(&self.path(name), Some(v), what.to_string()))?;
        s.parse()
            .map(Some)
            .map_err(|e| FieldError::new(&self.path(name), Some(v), format!("{what} ({e})")))
    }

    fn finish(self) -> Result<(), FieldError> {
        for (k, v) in self.obj {
            if !self.table.iter().any(|f| f.name == k) {
                let known: Vec<&str> = self.table.iter().map(|f| f.name).collect();
                let known = known.join(", ");
                return Err(FieldError::new(
                    &self.path(k),
                    Some(v),
                    format!("no such field; known fields: {known}"),
                ));
            }
        }
        Ok(())
    }
}

const NAME_MAX: usize = 255;

impl TapServiceSpec {
    /// Validates a `POST /v1/tap_services` body.
    pub fn from_json(v: &Value) -> Result<Self, FieldError> {
        let mut f = Fields::new("", v, SERVICE_FIELDS)?;
        let name = f.string("name", NAME_MAX)?;
        let tenant = f.string("tenant", NAME_MAX)?;
        let ev = f.get("encap");
        let Some(encap) = ev.and_then(Value::as_str).and_then(Encap::from_name) else {
            let accepted = "\"vxlan\", \"gre\", \"erspan_v1\" or \"erspan_v2\"";
            return Err(FieldError::new("encap", ev, accepted));
        };
        let collector = parse_collector(f.get("remote_ip"), f.get("collector"))?;
        if let (Some(_), Collector::Iface(_)) = (encap.erspan_version(), &collector) {
            let accepted = "a VM collector with \"vxlan\" or \"gre\" (ERSPAN goes to remote_ip)";
            return Err(FieldError::new("encap", ev, accepted));
        }
        let key = f.opt_uint("key", 1, encap.max_key() as u64)?.map(|k| k as u32);
        let snaplen = f.opt_uint("snaplen", 64, 65535)?.map(|s| s as u16);
        f.finish()?;
        Ok(TapServiceSpec { name, tenant, encap, collector, key, snaplen })
    }
}

impl TapFlowSpec {
    /// Validates a `POST /v1/tap_flows` body.
    pub fn from_json(v: &Value) -> Result<Self, FieldError> {
        let mut f = Fields::new("", v, FLOW_FIELDS)?;
        let name = f.string("name", NAME_MAX)?;
        let tenant = f.string("tenant", NAME_MAX)?;
        let tap_service = TapServiceId(
            f.opt_uint("tap_service", 1, u64::MAX)?
                .ok_or_else(|| FieldError::new("tap_service", None, "the id of a tap service"))?,
        );
        let source = parse_source(f.get("source"))?;
        let dv = f.get("direction");
        let direction = match dv.and_then(Value::as_str) {
            Some("IN") => Direction::In,
            Some("OUT") => Direction::Out,
            Some("BOTH") => Direction::Both,
            _ => return Err(FieldError::new("direction", dv, "\"IN\", \"OUT\" or \"BOTH\"")),
        };
        let filter = match f.get("filter") {
            None => Filter::default(),
            Some(fv) => parse_filter(fv)?,
        };
        f.finish()?;
        Ok(TapFlowSpec { name, tenant, tap_service, source, direction, filter })
    }
}

/// A tap service's collector: `remote_ip` (an address) or `collector` (`{"iface_id": ...}`),
/// exactly one of them.
fn parse_collector(
    remote: Option<&Value>,
    collector: Option<&Value>,
) -> Result<Collector, FieldError> {
    const EXPECTED: &str =
        "one of remote_ip (an address) or collector ({\"iface_id\": \"...\"}), not both";
    match (remote, collector) {
        (Some(_), Some(c)) => Err(FieldError::new("collector", Some(c), EXPECTED)),
        (None, None) => Err(FieldError::new("remote_ip", None, EXPECTED)),
        (Some(rv), None) => match rv.as_str().map(str::parse::<IpAddr>) {
            Some(Ok(ip @ IpAddr::V4(v4)))
                if !v4.is_unspecified() && !v4.is_broadcast() && !v4.is_multicast() =>
            {
                Ok(Collector::Remote(ip))
            }
            _ => Err(FieldError::new(
                "remote_ip",
                Some(rv),
                "a unicast IPv4 address such as \"192.0.2.10\"",
            )),
        },
        (None, Some(c)) => {
            let obj = c.as_object().filter(|o| o.len() == 1);
            match obj.and_then(|o| o.get("iface_id")) {
                Some(Value::String(id)) if !id.is_empty() && id.len() <= NAME_MAX => {
                    Ok(Collector::Iface(id.clone()))
                }
                Some(v) => {
                    Err(FieldError::new("collector.iface_id", Some(v), "a non-empty string"))
                }
                None => Err(FieldError::new("collector", Some(c), "{\"iface_id\": \"...\"}")),
            }
        }
    }
}

fn parse_source(v: Option<&Value>) -> Result<Source, FieldError> {
    const EXPECTED: &str =
        "exactly one of {\"iface_id\": \"...\"}, {\"vm\": \"...\"}, {\"selector\": {\"key\": \"value\", ...}}";
    let obj = v.and_then(Value::as_object).filter(|o| o.len() == 1);
    let Some((k, inner)) = obj.and_then(|o| o.iter().next()) else {
        return Err(FieldError::new("source", v, EXPECTED));
    };
    let text = |field: &str| match inner.as_str() {
        Some(s) if !s.is_empty() && s.len() <= NAME_MAX => Ok(s.to_string()),
        _ => Err(FieldError::new(field, Some(inner), "a non-empty string")),
    };
    match k.as_str() {
        "iface_id" => Ok(Source::IfaceId(text("source.iface_id")?)),
        "vm" => Ok(Source::Vm(text("source.vm")?)),
        "selector" => {
            let sel =
                inner.as_object().filter(|o| !o.is_empty() && o.len() <= 16).ok_or_else(|| {
                    FieldError::new(
                        "source.selector",
                        Some(inner),
                        "an object of 1 to 16 string pairs",
                    )
                })?;
            let mut out = BTreeMap::new();
            for (key, val) in sel {
                match val.as_str() {
                    Some(s) if !key.is_empty() => {
                        out.insert(key.clone(), s.to_string());
                    }
                    _ => {
                        return Err(FieldError::new(
                            &format!("source.selector.{key}"),
                            Some(val),
                            "a string",
                        ))
                    }
                }
            }
            Ok(Source::Selector(out))
        }
        _ => Err(FieldError::new("source", v, EXPECTED)),
    }
}

fn parse_filter(v: &Value) -> Result<Filter, FieldError> {
    let mut f = Fields::new("filter.", v, FILTER_FIELDS)?;
    let filter = Filter {
        vlan: f.opt_uint("vlan", 0, 4095)?.map(|x| x as u16),
        ethertype: f.opt_uint("ethertype", 0x600, 0xffff)?.map(|x| x as u16),
        ip_proto: f.opt_uint("ip_proto", 0, 255)?.map(|x| x as u8),
        src_cidr: f.opt_parsed("src_cidr", "an IPv4 prefix such as \"10.0.0.0/24\"")?,
        dst_cidr: f.opt_parsed("dst_cidr", "an IPv4 prefix such as \"10.0.0.0/24\"")?,
        src_port: f.opt_uint("src_port", 0, 65535)?.map(|x| x as u16),
        dst_port: f.opt_uint("dst_port", 0, 65535)?.map(|x| x as u16),
    };
    f.finish()?;
    let ip_needed =
        filter.ip_proto.is_some() || filter.src_cidr.is_some() || filter.dst_cidr.is_some();
    if ip_needed && filter.ethertype.is_some_and(|e| e != 0x0800) {
        return Err(FieldError::new(
            "filter.ethertype",
            v.get("ethertype"),
            "0x0800 (2048) or nothing when an IPv4 field (ip_proto, src_cidr, dst_cidr) is set",
        ));
    }
    if (filter.src_port.is_some() || filter.dst_port.is_some())
        && !matches!(filter.ip_proto, Some(6 | 17 | 132))
    {
        return Err(FieldError::new(
            "filter.ip_proto",
            v.get("ip_proto"),
            "6 (TCP), 17 (UDP) or 132 (SCTP) when src_port or dst_port is set",
        ));
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_good_service_parses() {
        let s = TapServiceSpec::from_json(&json!({
            "name": "perf", "tenant": "bank-a", "encap": "vxlan", "remote_ip": "192.0.2.50", "snaplen": 128
        }))
        .unwrap();
        assert_eq!(s.encap, Encap::Vxlan);
        assert_eq!(s.key, None);
        assert_eq!(s.snaplen, Some(128));
    }

    #[test]
    fn bad_fields_are_named_with_value_and_what_is_accepted() {
        let e = TapServiceSpec::from_json(&json!({
            "name": "perf", "tenant": "a", "encap": "vxlam", "remote_ip": "192.0.2.50"
        }))
        .unwrap_err();
        assert_eq!((e.field.as_str(), e.value.as_str()), ("encap", "\"vxlam\""));
        assert!(e.expected.contains("\"gre\", \"erspan_v1\" or \"erspan_v2\""), "{e}");
        // An ERSPAN session id has 10 bits; ERSPAN goes to remote collectors only.
        let e = TapServiceSpec::from_json(&json!({
            "name": "perf", "tenant": "a", "encap": "erspan_v1", "remote_ip": "192.0.2.50", "key": 1024
        }))
        .unwrap_err();
        assert_eq!((e.field.as_str(), e.value.as_str()), ("key", "1024"));
        let e = TapServiceSpec::from_json(&json!({
            "name": "perf", "tenant": "a", "encap": "erspan_v2", "collector": {"iface_id": "p1"}
        }))
        .unwrap_err();
        assert_eq!(e.field, "encap", "{e}");
        let e = TapServiceSpec::from_json(&json!({
            "name": "perf", "tenant": "a", "encap": "vxlan", "remote_ip": "192.0.2.50", "key": 16777216
        }))
        .unwrap_err();
        assert_eq!(e.field, "key");
        assert!(e.expected.contains("16777215"), "{e}");
        let e = TapServiceSpec::from_json(&json!({
            "name": "perf", "tenant": "a", "encap": "gre", "remote_ip": "192.0.2.50", "colour": "red"
        }))
        .unwrap_err();
        assert_eq!(e.field, "colour");
    }

    #[test]
    fn a_collector_is_an_address_or_a_vm_interface_not_both() {
        let svc = |extra: Value| {
            let mut b = json!({"name": "n", "tenant": "a", "encap": "vxlan"});
            if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
                b.extend(e.clone());
            }
            TapServiceSpec::from_json(&b)
        };
        let s = svc(json!({"collector": {"iface_id": "p9"}})).unwrap();
        assert_eq!(s.collector, Collector::Iface("p9".into()));
        let shown = json!(TapService {
            id: TapServiceId(1),
            name: s.name,
            tenant: s.tenant,
            encap: s.encap,
            collector: s.collector,
            key: 4242,
            snaplen: None
        });
        assert_eq!(shown["collector"], json!({"iface_id": "p9"}), "{shown}");
        assert!(shown.get("remote_ip").is_none(), "{shown}");
        let both = svc(json!({"remote_ip": "192.0.2.1", "collector": {"iface_id": "p9"}}));
        assert_eq!(both.unwrap_err().field, "collector");
        assert_eq!(svc(json!({})).unwrap_err().field, "remote_ip");
        assert_eq!(svc(json!({"collector": {"vm": "x"}})).unwrap_err().field, "collector");
        assert_eq!(
            svc(json!({"collector": {"iface_id": ""}})).unwrap_err().field,
            "collector.iface_id"
        );
    }

    #[test]
    fn flows_parse_sources_and_filters() {
        let f = TapFlowSpec::from_json(&json!({
            "name": "web", "tenant": "a", "tap_service": 1, "direction": "BOTH",
            "source": {"selector": {"app": "payments"}},
            "filter": {"ip_proto": 6, "dst_port": 443, "dst_cidr": "10.0.0.0/24"}
        }))
        .unwrap();
        assert!(matches!(f.source, Source::Selector(ref m) if m["app"] == "payments"));
        assert_eq!(f.filter.dst_port, Some(443));
        let e = TapFlowSpec::from_json(&json!({
            "name": "web", "tenant": "a", "tap_service": 1, "direction": "BOTH",
            "source": {"iface_id": "p1"}, "filter": {"dst_port": 443}
        }))
        .unwrap_err();
        assert_eq!(e.field, "filter.ip_proto");
        let e = TapFlowSpec::from_json(&json!({
            "name": "web", "tenant": "a", "tap_service": 1, "direction": "BOTH",
            "source": {"iface_id": "p1"}, "filter": {"dst_cidr": "10.0.0.1/24"}
        }))
        .unwrap_err();
        assert!(e.expected.contains("host bits"), "{e}");
    }
}
