//! Reading a scenario file: TOML syntax first (the `toml` crate reports line and column), then
//! every section field by field, then every cross reference and the timeline as a whole, so a
//! typo is reported with the file, the section, the field and the value before anything is built.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use toml::{Table, Value};

use super::spec::{
    Action, CollectorSpec, CutMode, Expect, HypervisorSpec, LinkKind, PingSpec, Scenario, Step,
    StreamKind, StreamSpec, TapFlowSpec, TapServiceSpec, TapSource, Transport, VmSpec,
};
use crate::northbound::model::{Direction, Encap};

/// Why a scenario file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read: {reason}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        reason: String,
    },
    /// The file is not valid TOML.
    #[error("{file}: not valid TOML: {reason}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with line and column.
        reason: String,
    },
    /// A field holds a value that cannot be used.
    #[error("{file}: {place}: {field} = {value}: expected {expected}")]
    Field {
        /// The file.
        file: String,
        /// The section, e.g. `[[step]] #3 (line 40)`.
        place: String,
        /// The field.
        field: String,
        /// The value given, as TOML, or `missing`.
        value: String,
        /// What would be accepted.
        expected: String,
    },
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::Read { file: file.clone(), reason: e.to_string() })?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut s = parse(&file, &text)?;
    s.name = name;
    s.path = path.to_path_buf();
    Ok(s)
}

/// Parses and validates scenario text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let root: Table = text.parse().map_err(|e: toml::de::Error| ScenarioError::Syntax {
        file: file.to_string(),
        reason: e.to_string().trim().replace('\n', " | "),
    })?;
    let ctx = Ctx { file, text };
    let mut top = Section::new(&ctx, "top level".into(), &root);
    let description = top.string("description")?;
    let settle_s = top.opt_float("settle_s", 0.0, 60.0)?.unwrap_or(1.0);
    let controllers = top.opt_uint("controllers", 1, 5)?.unwrap_or(1) as usize;
    let hv_tables = top.array("hypervisor")?;
    let vm_tables = top.array("vm")?;
    let col_tables = top.array("collector")?;
    let svc_tables = top.array("tap_service")?;
    let flow_tables = top.array("tap_flow")?;
    let step_tables = top.array("step")?;
    let expect_tables = top.array("expect")?;
    top.finish()?;

    let mut s = Scenario {
        name: String::new(),
        path: file.into(),
        description,
        settle_s,
        controllers,
        hypervisors: Vec::new(),
        vms: Vec::new(),
        collectors: Vec::new(),
        tap_services: Vec::new(),
        tap_flows: Vec::new(),
        steps: Vec::new(),
        expects: Vec::new(),
    };
    let mut names = Names::default();
    for (i, t) in hv_tables.iter().enumerate() {
        let mut sec = ctx.section("hypervisor", i, t);
        let name = sec.lab_name("name")?;
        names.claim(&sec, "name", &name, "hypervisor")?;
        let controller = match sec.opt_str("controller")?.as_deref() {
            None | Some("unix") => Transport::Unix,
            Some("tcp") => Transport::Tcp,
            Some("ssl") => Transport::Ssl,
            Some(_) => {
                return Err(sec.bad("controller", "\"unix\", \"tcp\" or \"ssl\""));
            }
        };
        sec.finish()?;
        s.hypervisors.push(HypervisorSpec { name, controller });
    }
    if s.hypervisors.is_empty() {
        return Err(top_err(&ctx, "hypervisor", None, "at least one [[hypervisor]]"));
    }
    for (i, t) in col_tables.iter().enumerate() {
        let mut sec = ctx.section("collector", i, t);
        let name = sec.lab_name("name")?;
        names.claim(&sec, "name", &name, "collector")?;
        sec.finish()?;
        s.collectors.push(CollectorSpec { name });
    }
    for (i, t) in vm_tables.iter().enumerate() {
        let mut sec = ctx.section("vm", i, t);
        let name = sec.lab_name("name")?;
        names.claim(&sec, "name", &name, "VM")?;
        let hypervisor = sec.string("hypervisor")?;
        if !s.hypervisors.iter().any(|h| h.name == hypervisor) {
            return Err(sec.unknown(
                "hypervisor",
                "[[hypervisor]]",
                s.hypervisors.iter().map(|h| &h.name),
            ));
        }
        let tenant = sec.string("tenant")?;
        let mac = match sec.opt_str("mac")? {
            Some(m) if is_unicast_mac(&m) => Some(m.to_ascii_lowercase()),
            Some(_) => {
                return Err(sec.bad("mac", "a unicast MAC address such as \"02:51:00:00:01:01\""))
            }
            None => None,
        };
        let ip = match sec.opt_str("ip")? {
            Some(text) => Some(parse_ip(&text).ok_or_else(|| {
                sec.bad(
                    "ip",
                    "an IPv4 address with an optional prefix length, e.g. \"198.51.100.10/24\"",
                )
            })?),
            None => None,
        };
        let mtu = sec.opt_uint("mtu", 576, 9000)?.map(|m| m as u32);
        let iface_id = sec.opt_text("iface_id")?;
        let vm_uuid = sec.opt_text("vm_uuid")?;
        let external_ids = sec.opt_string_table("external_ids")?;
        for k in [
            "iface-id",
            "attached-mac",
            "vm-uuid",
            "iface-status",
            periscope_topology::DEFAULT_TENANT_KEY,
        ] {
            if external_ids.contains_key(k) {
                return Err(sec.field_err(
                    &format!("external_ids.{k}"),
                    "set",
                    "no such key: the runner sets iface-id, attached-mac, vm-uuid, iface-status \
                     and tenant itself (use the iface_id, vm_uuid and tenant fields)",
                ));
            }
        }
        let create = sec.opt_bool("create")?.unwrap_or(true);
        sec.finish()?;
        s.vms.push(VmSpec {
            name,
            hypervisor,
            tenant,
            mac,
            ip,
            mtu,
            iface_id,
            vm_uuid,
            external_ids,
            create,
        });
    }
    check_unique_addresses(&ctx, &s)?;
    let mut keys: BTreeMap<u32, String> = BTreeMap::new();
    for (i, t) in svc_tables.iter().enumerate() {
        let mut sec = ctx.section("tap_service", i, t);
        let name = sec.text("name")?;
        if s.tap_services.iter().any(|x| x.name == name) {
            return Err(sec.bad("name", "a name no other [[tap_service]] has"));
        }
        let tenant = sec.string("tenant")?;
        let Some(encap) = sec.opt_str("encap")?.as_deref().and_then(Encap::from_name) else {
            return Err(sec.bad("encap", "\"vxlan\", \"gre\", \"erspan_v1\" or \"erspan_v2\""));
        };
        let collector = sec.string("collector")?;
        if !s.collectors.iter().any(|c| c.name == collector) {
            return Err(sec.unknown(
                "collector",
                "[[collector]]",
                s.collectors.iter().map(|c| &c.name),
            ));
        }
        let key = sec.opt_uint("key", 1, u64::from(encap.max_key()))?.map(|k| k as u32);
        if let Some(k) = key {
            if let Some(other) = keys.insert(k, name.clone()) {
                return Err(
                    sec.bad("key", &format!("a key not already used by tap service {other:?}"))
                );
            }
        }
        let snaplen = sec.opt_uint("snaplen", 64, 65535)?.map(|n| n as u16);
        sec.finish()?;
        s.tap_services.push(TapServiceSpec { name, tenant, encap, collector, key, snaplen });
    }
    for (i, t) in flow_tables.iter().enumerate() {
        let mut sec = ctx.section("tap_flow", i, t);
        let name = sec.text("name")?;
        if s.tap_flows.iter().any(|x| x.name == name) {
            return Err(sec.bad("name", "a name no other [[tap_flow]] has"));
        }
        let tenant = sec.string("tenant")?;
        let service = sec.string("service")?;
        let Some(svc) = s.tap_service(&service) else {
            return Err(sec.unknown(
                "service",
                "[[tap_service]]",
                s.tap_services.iter().map(|x| &x.name),
            ));
        };
        if svc.tenant != tenant {
            return Err(sec.bad(
                "tenant",
                &format!("{:?}, the tenant of tap service {:?}", svc.tenant, svc.name),
            ));
        }
        let source = parse_source(&mut sec, &s)?;
        let direction = match sec.opt_str("direction")?.as_deref() {
            Some("IN") => Direction::In,
            Some("OUT") => Direction::Out,
            Some("BOTH") => Direction::Both,
            _ => return Err(sec.bad("direction", "\"IN\", \"OUT\" or \"BOTH\"")),
        };
        let filter = match sec.get("filter") {
            None => None,
            Some(Value::Table(t)) => Some(toml_to_json(&Value::Table(t.clone()))),
            Some(_) => return Err(sec.bad("filter", "a table, e.g. { ip_proto = 1 }")),
        };
        let create = sec.opt_bool("create")?.unwrap_or(true);
        sec.finish()?;
        s.tap_flows.push(TapFlowSpec { name, tenant, service, source, direction, filter, create });
    }
    for (i, t) in step_tables.iter().enumerate() {
        let mut sec = ctx.section("step", i, t);
        let step = parse_step(&mut sec, &s)?;
        sec.finish()?;
        s.steps.push(step);
    }
    check_timeline(&ctx, &s)?;
    for (i, t) in expect_tables.iter().enumerate() {
        let mut sec = ctx.section("expect", i, t);
        let e = parse_expect(&mut sec, &s)?;
        sec.finish()?;
        s.expects.push(e);
    }
    Ok(s)
}

/// The file being read.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl<'a> Ctx<'a> {
    fn section(&'a self, kind: &'static str, index: usize, v: &'a Value) -> Section<'a> {
        let mut place = format!("[[{kind}]] #{}", index + 1);
        if let Some(line) = header_line(self.text, kind, index) {
            place.push_str(&format!(" (line {line})"));
        }
        match v {
            Value::Table(t) => {
                if let Some(Value::String(n)) = t.get("name") {
                    place = format!("{place} {n:?}");
                }
                Section::new(self, place, t)
            }
            _ => Section::not_a_table(self, place, v),
        }
    }
}

/// The line of the `index`-th `[[kind]]` header, counting from 1.
fn header_line(text: &str, kind: &str, index: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.split('#').next().unwrap_or("").trim();
            l.strip_prefix("[[")
                .and_then(|r| r.strip_suffix("]]"))
                .is_some_and(|inner| inner.trim() == kind)
        })
        .nth(index)
        .map(|(n, _)| n + 1)
}

fn top_err(ctx: &Ctx<'_>, field: &str, value: Option<&Value>, expected: &str) -> ScenarioError {
    ScenarioError::Field {
        file: ctx.file.to_string(),
        place: "top level".into(),
        field: field.to_string(),
        value: show(value),
        expected: expected.to_string(),
    }
}

/// A value as TOML text, for messages.
fn show(v: Option<&Value>) -> String {
    match v {
        None => "missing".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 80 {
                format!("{}...", &s[..s.char_indices().nth(77).map_or(s.len(), |(i, _)| i)])
            } else {
                s
            }
        }
    }
}

/// Reads fields out of one table, refusing unknown ones.
struct Section<'a> {
    file: &'a str,
    place: String,
    table: Option<&'a Table>,
    whole: Option<&'a Value>,
    seen: Vec<&'static str>,
}

impl<'a> Section<'a> {
    fn new(ctx: &Ctx<'a>, place: String, table: &'a Table) -> Self {
        Section { file: ctx.file, place, table: Some(table), whole: None, seen: Vec::new() }
    }

    fn not_a_table(ctx: &Ctx<'a>, place: String, v: &'a Value) -> Self {
        Section { file: ctx.file, place, table: None, whole: Some(v), seen: Vec::new() }
    }

    fn field_err(&self, field: &str, value: &str, expected: &str) -> ScenarioError {
        ScenarioError::Field {
            file: self.file.to_string(),
            place: self.place.clone(),
            field: field.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }

    /// The error for `field` holding what it holds.
    fn bad(&self, field: &str, expected: &str) -> ScenarioError {
        let v = self.table.and_then(|t| t.get(field));
        self.field_err(field, &show(v), expected)
    }

    /// The error for a name that refers to nothing declared.
    fn unknown<'n>(
        &self,
        field: &str,
        section: &str,
        known: impl Iterator<Item = &'n String>,
    ) -> ScenarioError {
        let known: Vec<&str> = known.map(String::as_str).collect();
        let expected = if known.is_empty() {
            format!("the name of a {section}, but there is none")
        } else {
            format!("the name of a {section}: one of {}", known.join(", "))
        };
        self.bad(field, &expected)
    }

    fn table(&self) -> Result<&'a Table, ScenarioError> {
        self.table
            .ok_or_else(|| self.field_err("(section)", &show(self.whole), "a table of fields"))
    }

    fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        self.seen.push(name);
        self.table.and_then(|t| t.get(name))
    }

    fn opt_str(&mut self, name: &'static str) -> Result<Option<String>, ScenarioError> {
        self.table()?;
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.bad(name, "a string")),
        }
    }

    /// A non-empty string of at most 255 printable characters.
    fn opt_text(&mut self, name: &'static str) -> Result<Option<String>, ScenarioError> {
        match self.opt_str(name)? {
            Some(s) if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) => {
                Err(self.bad(name, "a non-empty string of at most 255 printable characters"))
            }
            other => Ok(other),
        }
    }

    fn text(&mut self, name: &'static str) -> Result<String, ScenarioError> {
        self.opt_text(name)?
            .ok_or_else(|| self.bad(name, "a non-empty string of at most 255 printable characters"))
    }

    fn string(&mut self, name: &'static str) -> Result<String, ScenarioError> {
        self.text(name)
    }

    /// A name the lab turns into a namespace: 1 to 10 of `a-z0-9-`.
    fn lab_name(&mut self, name: &'static str) -> Result<String, ScenarioError> {
        let s = self.opt_str(name)?.unwrap_or_default();
        let ok = !s.is_empty()
            && s.len() <= 10
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && s != "fab";
        if ok {
            Ok(s)
        } else {
            Err(self.bad(name, "1 to 10 characters among a-z, 0-9 and '-' (not \"fab\")"))
        }
    }

    fn opt_uint(
        &mut self,
        name: &'static str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, ScenarioError> {
        self.table()?;
        match self.get(name) {
            None => Ok(None),
            Some(Value::Integer(n)) if *n >= 0 && (min..=max).contains(&(*n as u64)) => {
                Ok(Some(*n as u64))
            }
            Some(_) => Err(self.bad(name, &format!("an integer from {min} to {max}"))),
        }
    }

    fn opt_float(
        &mut self,
        name: &'static str,
        min: f64,
        max: f64,
    ) -> Result<Option<f64>, ScenarioError> {
        self.table()?;
        let v = match self.get(name) {
            None => return Ok(None),
            Some(Value::Integer(n)) => *n as f64,
            Some(Value::Float(f)) => *f,
            Some(_) => f64::NAN,
        };
        if v.is_finite() && (min..=max).contains(&v) {
            Ok(Some(v))
        } else {
            Err(self.bad(name, &format!("a number of seconds from {min} to {max}")))
        }
    }

    fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, ScenarioError> {
        self.table()?;
        match self.get(name) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(_) => Err(self.bad(name, "true or false")),
        }
    }

    fn opt_string_table(
        &mut self,
        name: &'static str,
    ) -> Result<BTreeMap<String, String>, ScenarioError> {
        self.table()?;
        let Some(v) = self.get(name) else { return Ok(BTreeMap::new()) };
        let Value::Table(t) = v else {
            return Err(self.bad(name, "a table of strings, e.g. { app = \"web\" }"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in t {
            match v {
                Value::String(s) if !k.is_empty() && !s.contains('"') && !k.contains('"') => {
                    out.insert(k.clone(), s.clone());
                }
                _ => {
                    return Err(self.field_err(
                        &format!("{name}.{k}"),
                        &show(Some(v)),
                        "a string without double quotes",
                    ))
                }
            }
        }
        Ok(out)
    }

    /// An array of tables (`[[name]]`), empty when absent.
    fn array(&mut self, name: &'static str) -> Result<Vec<Value>, ScenarioError> {
        self.table()?;
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(self.bad(name, &format!("an array of tables, written [[{name}]]"))),
        }
    }

    fn finish(self) -> Result<(), ScenarioError> {
        let t = self.table()?;
        for (k, v) in t {
            if !self.seen.contains(&k.as_str()) {
                return Err(self.field_err(
                    k,
                    &show(Some(v)),
                    &format!("no such field; known fields: {}", self.seen.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

/// Names that become namespaces: one per hypervisor, VM and collector, all distinct.
#[derive(Default)]
struct Names(BTreeMap<String, &'static str>);

impl Names {
    fn claim(
        &mut self,
        sec: &Section<'_>,
        field: &str,
        name: &str,
        what: &'static str,
    ) -> Result<(), ScenarioError> {
        if let Some(other) = self.0.insert(name.to_string(), what) {
            return Err(sec.bad(
                field,
                &format!("a name not already taken (a {other} has it; hypervisors, VMs and collectors share one namespace)"),
            ));
        }
        Ok(())
    }
}

fn is_unicast_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
        && s != "00:00:00:00:00:00"
}

fn parse_ip(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = s.split_once('/').unwrap_or((s, "24"));
    let ip: Ipv4Addr = a.parse().ok()?;
    let len: u8 = l.parse().ok().filter(|l| (8..=30).contains(l))?;
    (!ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast() && !ip.is_loopback())
        .then_some((ip, len))
}

/// Two VMs of one tenant may not share a MAC or an IP; VMs of different tenants may share IPs
/// (their VLANs keep them apart) but not MACs (the underlay learns MACs without VLANs).
fn check_unique_addresses(ctx: &Ctx<'_>, s: &Scenario) -> Result<(), ScenarioError> {
    for (i, a) in s.vms.iter().enumerate() {
        for b in &s.vms[..i] {
            let clash = if a.mac.is_some() && a.mac == b.mac {
                Some(("mac", "a MAC address no other VM has"))
            } else if a.ip.is_some()
                && a.ip.map(|x| x.0) == b.ip.map(|x| x.0)
                && a.tenant == b.tenant
            {
                Some(("ip", "an address no other VM of the same tenant has"))
            } else {
                None
            };
            if let Some((field, expected)) = clash {
                let index = s.vms.iter().position(|v| v.name == a.name).unwrap_or(0);
                let table = Value::Table(Table::new());
                let sec = ctx.section("vm", index, &table);
                let value = if field == "mac" {
                    format!("{:?}", a.mac.clone().unwrap_or_default())
                } else {
                    format!("\"{}\"", a.ip.map(|x| x.0.to_string()).unwrap_or_default())
                };
                return Err(sec.field_err(
                    field,
                    &value,
                    &format!("{expected} (VM {:?} has it too)", b.name),
                ));
            }
        }
    }
    Ok(())
}

fn parse_source(sec: &mut Section<'_>, s: &Scenario) -> Result<TapSource, ScenarioError> {
    const EXPECTED: &str = "exactly one of { vm = \"<vm name>\" }, { iface_id = \"<vm name>\" }, \
                            { selector = { key = \"value\" } }";
    let Some(Value::Table(t)) = sec.get("source") else {
        return Err(sec.bad("source", EXPECTED));
    };
    let Some((k, v)) = t.iter().next().filter(|_| t.len() == 1) else {
        return Err(sec.bad("source", EXPECTED));
    };
    let vm_name = |field: &str| -> Result<String, ScenarioError> {
        match v {
            Value::String(n) if s.vm(n).is_some() => Ok(n.clone()),
            _ => {
                let known: Vec<&str> = s.vms.iter().map(|v| v.name.as_str()).collect();
                Err(sec.field_err(
                    field,
                    &show(Some(v)),
                    &format!("the name of a [[vm]]: one of {}", known.join(", ")),
                ))
            }
        }
    };
    match k.as_str() {
        "vm" => Ok(TapSource::Vm(vm_name("source.vm")?)),
        "iface_id" => Ok(TapSource::IfaceId(vm_name("source.iface_id")?)),
        "selector" => {
            let mut out = BTreeMap::new();
            match v {
                Value::Table(sel) if !sel.is_empty() && sel.len() <= 16 => {
                    for (k, v) in sel {
                        match v {
                            Value::String(x) => {
                                out.insert(k.clone(), x.clone());
                            }
                            _ => {
                                return Err(sec.field_err(
                                    &format!("source.selector.{k}"),
                                    &show(Some(v)),
                                    "a string",
                                ))
                            }
                        }
                    }
                }
                _ => {
                    return Err(sec.field_err(
                        "source.selector",
                        &show(Some(v)),
                        "a table of 1 to 16 strings",
                    ))
                }
            }
            Ok(TapSource::Selector(out))
        }
        _ => Err(sec.bad("source", EXPECTED)),
    }
}

/// Converts the API filter written in TOML to the JSON the API takes.
fn toml_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Integer(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Value::from(*f),
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        Value::Table(t) => {
            serde_json::Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect())
        }
    }
}

fn name_in<'n>(
    sec: &mut Section<'_>,
    field: &'static str,
    section: &str,
    known: impl Iterator<Item = &'n String> + Clone,
) -> Result<String, ScenarioError> {
    let v = sec.opt_str(field)?;
    match v {
        Some(n) if known.clone().any(|k| *k == n) => Ok(n),
        _ => Err(sec.unknown(field, section, known)),
    }
}

fn vm_ref(
    sec: &mut Section<'_>,
    field: &'static str,
    s: &Scenario,
) -> Result<String, ScenarioError> {
    name_in(sec, field, "[[vm]]", s.vms.iter().map(|v| &v.name))
}

fn hv_ref(
    sec: &mut Section<'_>,
    field: &'static str,
    s: &Scenario,
) -> Result<String, ScenarioError> {
    name_in(sec, field, "[[hypervisor]]", s.hypervisors.iter().map(|h| &h.name))
}

/// The name, sender and receiver of a traffic step: the name given, or `<prefix><n + 1>` after
/// the `n` steps of its kind before it, unique among pings and streams; two different VMs.
fn traffic_ends(
    sec: &mut Section<'_>,
    s: &Scenario,
    prefix: &str,
    n: usize,
) -> Result<(String, String, String), ScenarioError> {
    let name = sec.opt_text("name")?.unwrap_or_else(|| format!("{prefix}{}", n + 1));
    if s.ping(&name).is_some() || s.stream(&name).is_some() {
        return Err(sec.bad("name", "a name no other start_ping, start_udp or start_tcp step has"));
    }
    let from = vm_ref(sec, "from", s)?;
    let to = vm_ref(sec, "to", s)?;
    if from == to {
        return Err(sec.bad("to", "a VM other than the sender"));
    }
    Ok((name, from, to))
}

fn parse_step(sec: &mut Section<'_>, s: &Scenario) -> Result<Step, ScenarioError> {
    let at = sec.opt_float("at", 0.0, 86_400.0)?;
    let action = sec.opt_str("action")?.unwrap_or_default();
    let action = match action.as_str() {
        "start_ping" => {
            let n = s.steps.iter().filter(|st| matches!(st.action, Action::StartPing(_))).count();
            let (name, from, to) = traffic_ends(sec, s, "ping", n)?;
            let interval_ms = sec.opt_uint("interval_ms", 10, 60_000)?.unwrap_or(100);
            let count = sec.opt_uint("count", 1, 65_535)?.unwrap_or(50) as u32;
            Action::StartPing(PingSpec { name, from, to, interval_ms, count })
        }
        "start_udp" | "start_tcp" => {
            let kind = if action == "start_udp" { StreamKind::Udp } else { StreamKind::Tcp };
            let prefix = if kind == StreamKind::Udp { "udp" } else { "tcp" };
            let n = s
                .steps
                .iter()
                .filter(|st| matches!(&st.action, Action::StartStream(x) if x.kind == kind))
                .count();
            let (name, from, to) = traffic_ends(sec, s, prefix, n)?;
            let (count, size, interval_ms) = if kind == StreamKind::Udp {
                let rate = sec.opt_uint("rate_pps", 1, 20_000)?.unwrap_or(100);
                let count = sec.opt_uint("count", 1, 1_000_000)?.unwrap_or(500);
                // The payload must fit a 1450-byte MTU with its IPv4 and UDP headers.
                let size = sec.opt_uint("size", 20, 1422)?.unwrap_or(64);
                (count, size, 1000.0 / rate as f64)
            } else {
                let count = sec.opt_uint("count", 1, 100_000)?.unwrap_or(200);
                let size = sec.opt_uint("size", 1, 65_536)?.unwrap_or(1000);
                let interval = sec.opt_uint("interval_ms", 0, 60_000)?.unwrap_or(20);
                (count, size, interval as f64)
            };
            Action::StartStream(StreamSpec {
                name,
                kind,
                from,
                to,
                count: count as u32,
                size: size as usize,
                interval_ms,
            })
        }
        "cut_link" => {
            let hypervisor = hv_ref(sec, "hypervisor", s)?;
            let link = match sec.opt_str("link")?.as_deref() {
                None | Some("both") => LinkKind::Both,
                Some("openflow") => LinkKind::OpenFlow,
                Some("ovsdb") => LinkKind::Ovsdb,
                Some(_) => return Err(sec.bad("link", "\"openflow\", \"ovsdb\" or \"both\"")),
            };
            let mode = match sec.opt_str("mode")?.as_deref() {
                None | Some("reset") => CutMode::Reset,
                Some("blackhole") => CutMode::Blackhole,
                Some(_) => return Err(sec.bad("mode", "\"reset\" or \"blackhole\"")),
            };
            Action::CutLink { hypervisor, link, mode }
        }
        "restore_link" => Action::RestoreLink { hypervisor: hv_ref(sec, "hypervisor", s)? },
        "migrate" => Action::Migrate { vm: vm_ref(sec, "vm", s)?, to: hv_ref(sec, "to", s)? },
        "create_vm" => {
            let vm = vm_ref(sec, "vm", s)?;
            let on = match sec.opt_str("on")? {
                None => None,
                Some(_) => Some(hv_ref(sec, "on", s)?),
            };
            Action::CreateVm { vm, on }
        }
        "delete_vm" => Action::DeleteVm { vm: vm_ref(sec, "vm", s)? },
        "create_tap_flow" | "delete_tap_flow" => {
            let tap_flow =
                name_in(sec, "tap_flow", "[[tap_flow]]", s.tap_flows.iter().map(|f| &f.name))?;
            if action == "create_tap_flow" {
                Action::CreateTapFlow { tap_flow }
            } else {
                Action::DeleteTapFlow { tap_flow }
            }
        }
        "restart_controller" => Action::RestartController,
        "kill_controller" => Action::KillController,
        "kill_leader" | "kill_nb_leader" if s.controllers < 2 => {
            return Err(sec.bad(
                "action",
                &format!("another action: {action} needs `controllers = 2` or more at the top level"),
            ))
        }
        "kill_leader" => Action::KillLeader,
        "kill_nb_leader" => Action::KillNbLeader,
        "restart_vswitchd" => Action::RestartVswitchd { hypervisor: hv_ref(sec, "hypervisor", s)? },
        "restart_ovsdb" => Action::RestartOvsdb { hypervisor: hv_ref(sec, "hypervisor", s)? },
        "wait" => {
            let seconds = sec.opt_float("seconds", 0.0, 3600.0)?;
            Action::Wait {
                seconds: seconds
                    .ok_or_else(|| sec.bad("seconds", "a number of seconds from 0 to 3600"))?,
            }
        }
        "stop_traffic" => {
            let ping = match sec.opt_str("ping")? {
                None => None,
                Some(p) if s.ping(&p).is_some() => Some(p),
                Some(_) => {
                    let known: Vec<String> = s
                        .steps
                        .iter()
                        .filter_map(|st| match &st.action {
                            Action::StartPing(p) => Some(p.name.clone()),
                            _ => None,
                        })
                        .collect();
                    return Err(sec.unknown(
                        "ping",
                        "start_ping step before this one",
                        known.iter(),
                    ));
                }
            };
            let stream = match sec.opt_str("stream")? {
                None => None,
                Some(x) if s.stream(&x).is_some() => Some(x),
                Some(_) => {
                    let known = stream_names(s);
                    return Err(sec.unknown(
                        "stream",
                        "start_udp or start_tcp step before this one",
                        known.iter(),
                    ));
                }
            };
            if ping.is_some() && stream.is_some() {
                return Err(sec.bad("stream", "either ping or stream, not both"));
            }
            Action::StopTraffic { ping: ping.or(stream) }
        }
        _ => {
            return Err(sec.bad(
                "action",
                "one of start_ping, start_udp, start_tcp, migrate, create_vm, delete_vm, \
                 create_tap_flow, delete_tap_flow, restart_controller, kill_controller, \
                 kill_leader, kill_nb_leader, restart_vswitchd, restart_ovsdb, cut_link, restore_link, wait, stop_traffic",
            ))
        }
    };
    Ok(Step { at, action })
}

/// The names of the `start_udp` / `start_tcp` steps.
fn stream_names(s: &Scenario) -> Vec<String> {
    s.steps
        .iter()
        .filter_map(|st| match &st.action {
            Action::StartStream(x) => Some(x.name.clone()),
            _ => None,
        })
        .collect()
}

/// What a VM, a tap flow or the controller is at a point of the timeline.
#[derive(Default)]
struct World {
    /// VM -> hypervisor, for VMs that exist.
    vms: BTreeMap<String, String>,
    /// VMs that existed once and were deleted.
    deleted: BTreeSet<String>,
    /// Tap flows that exist.
    flows: BTreeSet<String>,
    /// Hypervisors whose links are cut, and which.
    cut: BTreeMap<String, LinkKind>,
}

/// Plays the timeline on paper: `at` never goes back, every step finds what it works on
/// (a VM to migrate exists and is elsewhere, a tap flow to delete exists, ...), and steps that
/// run together (same `at`) never work on the same thing.
fn check_timeline(ctx: &Ctx<'_>, s: &Scenario) -> Result<(), ScenarioError> {
    let mut w = World::default();
    for v in s.vms.iter().filter(|v| v.create) {
        w.vms.insert(v.name.clone(), v.hypervisor.clone());
    }
    for f in s.tap_flows.iter().filter(|f| f.create) {
        w.flows.insert(f.name.clone());
    }
    let mut last_at: Option<f64> = None;
    let mut group: Vec<(usize, Vec<String>)> = Vec::new();
    let empty = Value::Table(Table::new());
    for (i, step) in s.steps.iter().enumerate() {
        let sec = ctx.section("step", i, &empty);
        if let (Some(at), Some(last)) = (step.at, last_at) {
            if at < last {
                return Err(sec.field_err(
                    "at",
                    &at.to_string(),
                    &format!("a time at or after the previous timed step ({last} s): steps are listed in time order"),
                ));
            }
        }
        let same_group = step.at.is_some() && step.at == last_at;
        if !same_group {
            group.clear();
        }
        if step.at.is_some() {
            last_at = step.at;
        }
        let touches = play(&sec, s, &mut w, &step.action)?;
        let all = "everything".to_string();
        for (j, theirs) in &group {
            let clash = if touches.contains(&all) || theirs.contains(&all) {
                Some("the whole lab")
            } else {
                touches.iter().find(|t| theirs.contains(t)).map(String::as_str)
            };
            if let Some(what) = clash {
                return Err(sec.field_err(
                    "at",
                    &step.at.map(|a| a.to_string()).unwrap_or_default(),
                    &format!(
                        "a different time: [[step]] #{} at the same time also works on {what}, \
                         and steps that share `at` run concurrently",
                        j + 1
                    ),
                ));
            }
        }
        group.push((i, touches));
    }
    Ok(())
}

/// Applies one step to the paper world; returns what it touches.
fn play(
    sec: &Section<'_>,
    s: &Scenario,
    w: &mut World,
    a: &Action,
) -> Result<Vec<String>, ScenarioError> {
    let exists = |w: &World, field: &str, vm: &str| -> Result<String, ScenarioError> {
        match w.vms.get(vm) {
            Some(hv) => Ok(hv.clone()),
            None if w.deleted.contains(vm) => {
                Err(sec.field_err(field, &format!("{vm:?}"), "a VM that still exists (it was deleted by an earlier step)"))
            }
            None => Err(sec.field_err(
                field,
                &format!("{vm:?}"),
                "a VM that exists at this point (it has create = false: add a create_vm step before)",
            )),
        }
    };
    let openflow_cut = |w: &World| w.cut.iter().find(|(_, l)| l.openflow()).map(|(h, _)| h.clone());
    let touches = match a {
        Action::StartPing(p) => {
            exists(w, "from", &p.from)?;
            exists(w, "to", &p.to)?;
            vec![format!("VM {}", p.from)]
        }
        Action::StartStream(x) => {
            exists(w, "from", &x.from)?;
            exists(w, "to", &x.to)?;
            vec![format!("VM {}", x.from), format!("VM {}", x.to)]
        }
        Action::CutLink { hypervisor, link, .. } => {
            if w.cut.contains_key(hypervisor) {
                return Err(sec.field_err(
                    "hypervisor",
                    &format!("{hypervisor:?}"),
                    "a hypervisor whose link is not cut at this point (restore_link first)",
                ));
            }
            w.cut.insert(hypervisor.clone(), *link);
            vec![format!("hypervisor {hypervisor}")]
        }
        Action::RestoreLink { hypervisor } => {
            if w.cut.remove(hypervisor).is_none() {
                return Err(sec.field_err(
                    "hypervisor",
                    &format!("{hypervisor:?}"),
                    "a hypervisor whose link a cut_link step before cut",
                ));
            }
            vec![format!("hypervisor {hypervisor}")]
        }
        Action::Migrate { vm, to } => {
            let on = exists(w, "vm", vm)?;
            if on == *to {
                return Err(sec.field_err(
                    "to",
                    &format!("{to:?}"),
                    &format!("a hypervisor other than the one {vm} is on at this point"),
                ));
            }
            w.vms.insert(vm.clone(), to.clone());
            vec![format!("VM {vm}")]
        }
        Action::CreateVm { vm, on } => {
            let spec = s.vm(vm).map(|v| (v.create, v.hypervisor.clone()));
            if w.vms.contains_key(vm)
                || w.deleted.contains(vm)
                || spec.as_ref().is_some_and(|x| x.0)
            {
                return Err(sec.field_err(
                    "vm",
                    &format!("{vm:?}"),
                    "a VM declared with create = false and not created yet (a VM is created once)",
                ));
            }
            let hv = on.clone().or(spec.map(|x| x.1)).unwrap_or_default();
            w.vms.insert(vm.clone(), hv);
            vec![format!("VM {vm}")]
        }
        Action::DeleteVm { vm } => {
            exists(w, "vm", vm)?;
            w.vms.remove(vm);
            w.deleted.insert(vm.clone());
            vec![format!("VM {vm}")]
        }
        Action::CreateTapFlow { tap_flow } => {
            if !w.flows.insert(tap_flow.clone()) {
                return Err(sec.field_err(
                    "tap_flow",
                    &format!("{tap_flow:?}"),
                    "a tap flow that does not exist at this point",
                ));
            }
            vec![format!("tap flow {tap_flow}"), "the controller".into()]
        }
        Action::DeleteTapFlow { tap_flow } => {
            if !w.flows.remove(tap_flow) {
                return Err(sec.field_err(
                    "tap_flow",
                    &format!("{tap_flow:?}"),
                    "a tap flow that exists at this point",
                ));
            }
            vec![format!("tap flow {tap_flow}"), "the controller".into()]
        }
        // Another instance takes over: steps that go on meanwhile (a migration) are the point.
        Action::KillLeader | Action::KillNbLeader => vec!["the leader".into()],
        Action::RestartController | Action::KillController => {
            if let (Action::RestartController, Some(hv)) = (a, openflow_cut(w)) {
                return Err(sec.field_err(
                    "action",
                    "\"restart_controller\"",
                    &format!(
                        "another step: {hv}'s OpenFlow link is cut, and a restart waits for every \
                         switch (restore_link first)"
                    ),
                ));
            }
            vec!["the controller".into(), "everything".into()]
        }
        Action::RestartVswitchd { hypervisor } => {
            if w.cut.get(hypervisor).is_some_and(|l| l.openflow()) {
                return Err(sec.field_err(
                    "hypervisor",
                    &format!("{hypervisor:?}"),
                    "a hypervisor whose OpenFlow link is not cut (a restart waits for the switch \
                     to come back; restore_link first)",
                ));
            }
            vec![format!("hypervisor {hypervisor}")]
        }
        Action::RestartOvsdb { hypervisor } => vec![format!("hypervisor {hypervisor}")],
        Action::Wait { .. } | Action::StopTraffic { .. } => vec!["everything".into()],
    };
    Ok(touches)
}

fn parse_expect(sec: &mut Section<'_>, s: &Scenario) -> Result<Expect, ScenarioError> {
    let kind = sec.opt_str("kind")?.unwrap_or_default();
    let pings: Vec<String> = s
        .steps
        .iter()
        .filter_map(|st| match &st.action {
            Action::StartPing(p) => Some(p.name.clone()),
            _ => None,
        })
        .collect();
    let collector = |sec: &mut Section<'_>| {
        name_in(sec, "collector", "[[collector]]", s.collectors.iter().map(|c| &c.name))
    };
    let ping = |sec: &mut Section<'_>| name_in(sec, "ping", "start_ping step", pings.iter());
    let streams = stream_names(s);
    let stream = |sec: &mut Section<'_>| {
        name_in(sec, "stream", "start_udp or start_tcp step", streams.iter())
    };
    // `copies`, `gap` and `no_copies` take a ping or a stream.
    let wants_stream = matches!(kind.as_str(), "copies" | "gap" | "no_copies")
        && sec.table.is_some_and(|t| t.contains_key("stream"));
    if wants_stream && sec.table.is_some_and(|t| t.contains_key("ping")) {
        return Err(sec.bad("stream", "either ping or stream, not both"));
    }
    let service = |sec: &mut Section<'_>, collector: &str| -> Result<String, ScenarioError> {
        let name =
            name_in(sec, "service", "[[tap_service]]", s.tap_services.iter().map(|x| &x.name))?;
        match s.tap_service(&name) {
            Some(svc) if svc.collector == collector => Ok(name),
            Some(svc) => Err(sec.bad(
                "service",
                &format!(
                    "a tap service aimed at collector {collector:?} (this one goes to {:?})",
                    svc.collector
                ),
            )),
            None => Err(sec.bad("service", "a [[tap_service]]")),
        }
    };
    let direction = |sec: &mut Section<'_>| match sec.opt_str("direction")?.as_deref() {
        None | Some("BOTH") => Ok(Direction::Both),
        Some("IN") => Ok(Direction::In),
        Some("OUT") => Ok(Direction::Out),
        Some(_) => Err(sec.bad("direction", "\"IN\", \"OUT\" or \"BOTH\"")),
    };
    let e = match kind.as_str() {
        "copies" if wants_stream => {
            let collector = collector(sec)?;
            let service = service(sec, &collector)?;
            let stream = stream(sec)?;
            let vm = vm_ref(sec, "vm", s)?;
            let direction = direction(sec)?;
            if let Some(x) = s.stream(&stream) {
                if x.from != vm && x.to != vm {
                    return Err(sec.bad(
                        "vm",
                        &format!(
                            "the sender ({:?}) or the receiver ({:?}) of stream {stream:?}",
                            x.from, x.to
                        ),
                    ));
                }
                let one_way = x.kind == StreamKind::Udp;
                if one_way && x.from == vm && direction == Direction::In {
                    return Err(sec.bad(
                        "direction",
                        "\"OUT\" or \"BOTH\": a UDP stream's sender only sends",
                    ));
                }
                if one_way && x.to == vm && direction == Direction::Out {
                    return Err(sec.bad(
                        "direction",
                        "\"IN\" or \"BOTH\": a UDP stream's receiver only receives",
                    ));
                }
            }
            let max_loss = sec.opt_uint("max_loss", 0, 1_000_000)?.unwrap_or(0) as u32;
            Expect::StreamCopies { collector, service, stream, vm, direction, max_loss }
        }
        "no_copies" if wants_stream => {
            let collector = collector(sec)?;
            Expect::NoStreamCopies { collector, stream: stream(sec)? }
        }
        "gap" if wants_stream => {
            let collector = collector(sec)?;
            let service = service(sec, &collector)?;
            let stream = stream(sec)?;
            let tolerance_ms = sec.opt_uint("tolerance_ms", 0, 600_000)?.unwrap_or(100);
            Expect::StreamGap { collector, service, stream, tolerance_ms }
        }
        "delivery" => {
            let stream = stream(sec)?;
            let max_loss = sec.opt_uint("max_loss", 0, 1_000_000)?.unwrap_or(0) as u32;
            if max_loss > 0 && s.stream(&stream).is_some_and(|x| x.kind == StreamKind::Tcp) {
                return Err(sec.bad("max_loss", "0 (or none): TCP delivers every byte or fails"));
            }
            Expect::Delivery { stream, max_loss }
        }
        "reprogram" => {
            let vm = match sec.opt_str("vm")? {
                None => None,
                Some(_) => Some(vm_ref(sec, "vm", s)?),
            };
            let limit =
                |sec: &mut Section<'_>, f: &'static str| -> Result<Option<f64>, ScenarioError> {
                    match sec.get(f) {
                        None => Ok(None),
                        Some(Value::Integer(n)) if (1..=600_000).contains(n) => Ok(Some(*n as f64)),
                        Some(Value::Float(x)) if (1.0..=600_000.0).contains(x) => Ok(Some(*x)),
                        Some(_) => Err(sec.bad(f, "a number of milliseconds from 1 to 600000")),
                    }
                };
            let max_ms = limit(sec, "max_ms")?;
            let p99_ms = limit(sec, "p99_ms")?;
            let stats_p99_ms = limit(sec, "stats_p99_ms")?;
            if max_ms.is_none() && p99_ms.is_none() && stats_p99_ms.is_none() {
                return Err(sec.bad("max_ms", "at least one of max_ms, p99_ms, stats_p99_ms"));
            }
            let migrates = s.steps.iter().any(|st| match &st.action {
                Action::Migrate { vm: m, .. } => vm.as_ref().is_none_or(|v| v == m),
                _ => false,
            });
            if (max_ms.is_some() || p99_ms.is_some()) && !migrates {
                return Err(sec.bad(
                    "max_ms",
                    "a limit on migrations only where a migrate step (of vm, when given) exists; \
                     stats_p99_ms alone needs none",
                ));
            }
            Expect::Reprogram { vm, max_ms, p99_ms, stats_p99_ms }
        }
        "copies" => {
            let collector = collector(sec)?;
            let service = service(sec, &collector)?;
            let ping = ping(sec)?;
            let vm = vm_ref(sec, "vm", s)?;
            if let Some(p) = s.ping(&ping) {
                if p.from != vm && p.to != vm {
                    return Err(sec.bad(
                        "vm",
                        &format!(
                            "the sender ({:?}) or the target ({:?}) of ping {ping:?}",
                            p.from, p.to
                        ),
                    ));
                }
            }
            let direction = match sec.opt_str("direction")?.as_deref() {
                None | Some("BOTH") => Direction::Both,
                Some("IN") => Direction::In,
                Some("OUT") => Direction::Out,
                Some(_) => return Err(sec.bad("direction", "\"IN\", \"OUT\" or \"BOTH\"")),
            };
            let max_loss = sec.opt_uint("max_loss", 0, 100_000)?.unwrap_or(0) as u32;
            Expect::Copies { collector, service, ping, vm, direction, max_loss }
        }
        "no_duplicates" => {
            let collector = collector(sec)?;
            let service = match sec.opt_str("service")? {
                None => None,
                Some(_) => Some(service(sec, &collector)?),
            };
            Expect::NoDuplicates { collector, service }
        }
        "no_foreign" => {
            let collector = collector(sec)?;
            let tenants = s.tenants();
            let tenant = name_in(sec, "tenant", "tenant of a [[vm]]", tenants.iter())?;
            Expect::NoForeign { collector, tenant }
        }
        "no_copies" => {
            let collector = collector(sec)?;
            Expect::NoCopies { collector, ping: ping(sec)? }
        }
        "gap" => {
            let collector = collector(sec)?;
            let service = service(sec, &collector)?;
            let ping = ping(sec)?;
            let tolerance_ms = sec.opt_uint("tolerance_ms", 0, 600_000)?.unwrap_or(100);
            Expect::Gap { collector, service, ping, tolerance_ms }
        }
        "ping" => {
            let ping = ping(sec)?;
            let max_loss = sec.opt_uint("max_loss", 0, 100_000)?.unwrap_or(0) as u32;
            Expect::Ping { ping, max_loss }
        }
        "no_leftover_flows" | "no_leftover_tunnel_ports" => {
            let hypervisor = hv_ref(sec, "hypervisor", s)?;
            let within_s = sec.opt_float("within_s", 0.0, 120.0)?.unwrap_or(5.0);
            if kind == "no_leftover_flows" {
                Expect::NoLeftoverFlows { hypervisor, within_s }
            } else {
                Expect::NoLeftoverTunnelPorts { hypervisor, within_s }
            }
        }
        _ => {
            return Err(sec.bad(
                "kind",
                "one of copies, no_duplicates, no_foreign, no_copies, gap, ping, delivery, \
                 reprogram, no_leftover_flows, no_leftover_tunnel_ports",
            ))
        }
    };
    Ok(e)
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Unix => "unix",
            Transport::Tcp => "tcp",
            Transport::Ssl => "ssl",
        })
    }
}

#[cfg(test)]
mod tests;
