//! The shell's text output: the API's JSON answers as aligned tables and short reports. Pure:
//! the current time is an argument.

use std::fmt::Write as _;

use serde_json::Value;

/// Columns aligned to their widest cell, two blanks apart, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let head: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let _ = write!(line, "{c:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A JSON value as a cell: strings bare, null as `-`.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

/// A tap service's collector: its address, or `vm <iface-id>` for a VM collector.
fn collector(service: &Value) -> String {
    match service["collector"]["iface_id"].as_str() {
        Some(id) => format!("vm {id}"),
        None => cell(&service["remote_ip"]),
    }
}

/// A dpid as Open vSwitch writes it (16 hex digits), from the API's string or number.
pub fn dpid(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_u64().map_or_else(|| n.to_string(), |d| format!("{d:016x}")),
        other => cell(other),
    }
}

/// Milliseconds, to two decimals below 10 ms and one above.
fn ms(v: &Value) -> String {
    match v.as_f64() {
        Some(m) if m < 10.0 => format!("{m:.2} ms"),
        Some(m) => format!("{m:.1} ms"),
        None => "-".into(),
    }
}

/// A wall-clock time (ms since the Unix epoch) in UTC: `2026-12-02 17:56:11Z`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date, counting in 400-year eras that start on March 1st.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// A duration in seconds, short: `42s`, `3m12s`, `2h05m`, `4d03h`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        s => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

/// `show switches`, from `GET /v1/switches`.
pub fn switches(list: &Value, now_ms: u64) -> String {
    let empty = Vec::new();
    let list = list.as_array().unwrap_or(&empty);
    if list.is_empty() {
        return "no switch is connected\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let since = s["connected_since_ms"].as_u64().map_or_else(
                || "-".into(),
                |t| format!("{} ({} ago)", utc(t), age(now_ms.saturating_sub(t) / 1000)),
            );
            vec![
                dpid(&s["dpid"]),
                cell(&s["hypervisor"]),
                cell(&s["bridge"]),
                since,
                cell(&s["role"]),
                cell(&s["our_flows"]),
                ms(&s["echo_rtt_ms"]),
                cell(&s["programmed"]),
                ms(&s["last_reprogram_ms"]),
                cell(&s["queue_depth"]),
                cell(&s["peer"]),
            ]
        })
        .collect();
    table(
        &[
            "DPID",
            "HYPERVISOR",
            "BRIDGE",
            "CONNECTED SINCE",
            "ROLE",
            "FLOWS",
            "ECHO RTT",
            "PROGRAMMED",
            "LAST REPROGRAM",
            "QUEUE",
            "PEER",
        ],
        &rows,
    )
}

/// An OpenFlow port number, the reserved ones by their Open vSwitch names.
fn port_no(v: &Value) -> String {
    match v.as_u64() {
        Some(0xffff_fffe) => "LOCAL".into(),
        Some(0xffff_fffd) => "CONTROLLER".into(),
        Some(0xffff_ffff) => "ANY".into(),
        _ => cell(v),
    }
}

/// One location (`{hypervisor, dpid, ofport, ...}`) as `hv1 dpid 0e1a... ofport 3`.
fn place(l: &Value) -> String {
    format!("{} dpid {} ofport {}", cell(&l["hypervisor"]), dpid(&l["dpid"]), port_no(&l["ofport"]))
}

/// `show ports [bridge]`, from `GET /v1/topology`: each switch's OpenFlow ports joined by name
/// with the interfaces OVSDB shows on its bridge. `bridge` is a name, `hypervisor/name` or a dpid.
pub fn ports(t: &Value, bridge: Option<&str>) -> Result<String, String> {
    let empty = Vec::new();
    let arr = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    // dpid -> (hypervisor, bridge name, its interfaces by name)
    let mut bridges: Vec<(String, String, String, Vec<Value>)> = Vec::new();
    for h in arr(&t["hypervisors"]) {
        for b in arr(&h["bridges"]) {
            let ifaces = arr(&b["ports"]).iter().flat_map(|p| arr(&p["interfaces"])).collect();
            bridges.push((dpid(&b["datapath_id"]), cell(&h["id"]), cell(&b["name"]), ifaces));
        }
    }
    let mut out = String::new();
    let mut shown = 0;
    for sw in arr(&t["switches"]) {
        let d = dpid(&sw["dpid"]);
        let known = bridges.iter().find(|b| b.0 == d);
        let (hv, name) = known.map_or(("-", "-"), |b| (b.1.as_str(), b.2.as_str()));
        let wanted = bridge.is_none_or(|w| {
            let hex = w.strip_prefix("0x").unwrap_or(w);
            w == name
                || w == format!("{hv}/{name}")
                || u64::from_str_radix(hex, 16).is_ok_and(|n| format!("{n:016x}") == d)
        });
        if !wanted {
            continue;
        }
        shown += 1;
        let _ = writeln!(
            out,
            "{hv}/{name} ({d}){}",
            if sw["connected"] == true { "" } else { " not connected" }
        );
        let rows: Vec<Vec<String>> = arr(&sw["ports"])
            .iter()
            .map(|p| {
                let i = known.and_then(|b| b.3.iter().find(|i| i["name"] == p["name"]));
                let field = |k: &str| i.map_or_else(|| "-".to_string(), |i| cell(&i[k]));
                vec![
                    port_no(&p["port_no"]),
                    cell(&p["name"]),
                    if p["live"] == true { "up".into() } else { "DOWN".into() },
                    match i.and_then(|i| i["type"].as_str()) {
                        Some("") => "system".into(),
                        Some(k) => k.into(),
                        None => "-".into(),
                    },
                    field("mac"),
                    field("iface_id"),
                    field("tenant"),
                ]
            })
            .collect();
        out.push_str(&table(
            &["PORT", "NAME", "STATE", "TYPE", "MAC", "IFACE-ID", "TENANT"],
            &rows,
        ));
    }
    match (shown, bridge) {
        (0, Some(w)) => Err(format!("no switch is {w:?} (show switches lists them)")),
        (0, None) => Ok("no switch is known\n".into()),
        _ => Ok(out),
    }
}

/// `show topology`, from `GET /v1/topology`, drawn as a tree: each hypervisor, its bridges,
/// their ports (VM interfaces with iface-id and tenant, tunnels with their remote and key), then
/// the links between hypervisors and the migrations in progress.
pub fn topology(t: &Value) -> String {
    let empty = Vec::new();
    let arr = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    let mut out = format!("generation {}\n", cell(&t["generation"]));
    let hvs = arr(&t["hypervisors"]);
    if hvs.is_empty() {
        out.push_str("no hypervisor is known\n");
    }
    // Interface row (hypervisor, uuid) -> `hv bridge:name`, for the links.
    let mut names = std::collections::HashMap::new();
    for h in &hvs {
        let _ = write!(out, "hypervisor {}", cell(&h["id"]));
        if let Some(name) = h["hostname"].as_str() {
            let _ = write!(out, " ({name})");
        }
        let ips: Vec<String> = arr(&h["underlay_ips"]).iter().map(cell).collect();
        if !ips.is_empty() {
            let _ = write!(out, " underlay {}", ips.join(", "));
        }
        out.push('\n');
        let bridges = arr(&h["bridges"]);
        for (bi, b) in bridges.iter().enumerate() {
            let last_bridge = bi + 1 == bridges.len();
            let _ = writeln!(
                out,
                "{} bridge {} dpid {} {}",
                if last_bridge { "└─" } else { "├─" },
                cell(&b["name"]),
                dpid(&b["datapath_id"]),
                if b["connected"] == true { "connected" } else { "not connected to periscope" }
            );
            let mut rows = Vec::new();
            for p in arr(&b["ports"]) {
                for i in arr(&p["interfaces"]) {
                    names.insert(
                        (cell(&h["id"]), cell(&i["uuid"])),
                        format!("{} {}:{}", cell(&h["id"]), cell(&b["name"]), cell(&i["name"])),
                    );
                    rows.push(vec![
                        port_no(&i["ofport"]),
                        cell(&i["name"]),
                        match i["type"].as_str() {
                            Some("") | None => "system".into(),
                            Some(k) => k.into(),
                        },
                        interface_detail(&i),
                    ]);
                }
            }
            let stem = if last_bridge { "   " } else { "│  " };
            let lines = aligned(&rows);
            for (k, line) in lines.iter().enumerate() {
                let branch = if k + 1 == lines.len() { "└─" } else { "├─" };
                let _ = writeln!(out, "{stem}{branch} {line}");
            }
        }
    }
    let links = arr(&t["links"]);
    if !links.is_empty() {
        out.push_str("links\n");
    }
    let end = |r: &Value| {
        names
            .get(&(cell(&r["hypervisor"]), cell(&r["uuid"])))
            .cloned()
            .unwrap_or_else(|| format!("{} {}", cell(&r["hypervisor"]), cell(&r["uuid"])))
    };
    for l in &links {
        let line = match l["kind"].as_str() {
            Some("tunnel") => {
                format!("{} ══▶ {} ({})", end(&l["iface"]), cell(&l["to"]), cell(&l["remote_ip"]))
            }
            Some("patch") => format!("{} ◀─ patch ─▶ {}", end(&l["a"]), end(&l["b"])),
            Some("lldp") => format!(
                "dpid {} port {} ◀─ lldp ─▶ dpid {} port {}",
                dpid(&l["a"]["dpid"]),
                port_no(&l["a"]["port"]),
                dpid(&l["b"]["dpid"]),
                port_no(&l["b"]["port"])
            ),
            _ => l.to_string(),
        };
        let _ = writeln!(out, "  {line}");
    }
    for m in arr(&t["migrations"]) {
        let places: Vec<String> = arr(&m["locations"]).iter().map(place).collect();
        let _ = writeln!(out, "migrating {}: {}", cell(&m["iface_id"]), places.join(" and "));
    }
    let unattached = arr(&t["unattached_interfaces"]);
    if !unattached.is_empty() {
        let _ = writeln!(out, "{} interface rows not on any bridge", unattached.len());
    }
    out
}

/// What matters of an interface in the drawing: a VM's MAC, iface-id and tenant; a tunnel's
/// remote and key; whether flows can be programmed for it.
fn interface_detail(i: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(id) = i["iface_id"].as_str() {
        parts.push(cell(&i["mac"]));
        parts.push(format!("iface-id {id}"));
        if let Some(t) = i["tenant"].as_str() {
            parts.push(format!("tenant {t}"));
        }
        if i["ready"] == false {
            parts.push("not ready".into());
        }
    }
    for k in ["remote_ip", "key", "local_ip", "peer"] {
        if let Some(v) = i["options"][k].as_str() {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join("  ")
}

/// Rows as lines with their columns aligned (as [`table`] does, without the header).
fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let headers = vec![""; columns];
    table(&headers, rows).lines().skip(1).map(str::to_string).collect()
}

/// What a tap flow selects: `iface-id X`, `vm X`, `selector app=web`.
fn source(s: &Value) -> String {
    let Some(o) = s.as_object() else { return cell(s) };
    o.iter()
        .map(|(k, v)| match v.as_object() {
            Some(sel) => format!(
                "{k} {}",
                sel.iter().map(|(a, b)| format!("{a}={}", cell(b))).collect::<Vec<_>>().join(",")
            ),
            None => format!("{} {}", k.replace('_', "-"), cell(v)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn filter(f: &Value) -> String {
    match f.as_object() {
        Some(o) if !o.is_empty() => {
            o.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect::<Vec<_>>().join(",")
        }
        _ => "-".into(),
    }
}

/// `show taps`, from `GET /v1/tap_services` and `GET /v1/tap_flows`.
pub fn taps(services: &Value, flows: &Value) -> String {
    let empty = Vec::new();
    let services = services.as_array().unwrap_or(&empty);
    let flows = flows.as_array().unwrap_or(&empty);
    let mut out = String::new();
    if services.is_empty() {
        out.push_str("no tap service\n");
    } else {
        let rows: Vec<Vec<String>> = services
            .iter()
            .map(|s| {
                vec![
                    cell(&s["id"]),
                    cell(&s["name"]),
                    cell(&s["tenant"]),
                    cell(&s["encap"]),
                    collector(s),
                    cell(&s["key"]),
                    s.get("blocked").map_or_else(|| "-".into(), |_| "BLOCKED".into()),
                ]
            })
            .collect();
        out.push_str(&table(
            &["SERVICE", "NAME", "TENANT", "ENCAP", "COLLECTOR", "KEY", "BLOCKED"],
            &rows,
        ));
    }
    out.push('\n');
    if flows.is_empty() {
        out.push_str("no tap flow\n");
        return out;
    }
    let rows: Vec<Vec<String>> = flows
        .iter()
        .map(|f| {
            let active = f["active"].as_array().unwrap_or(&empty);
            let at: Vec<String> = active.iter().map(|a| cell(&a["hypervisor"])).collect::<Vec<_>>();
            vec![
                cell(&f["id"]),
                cell(&f["name"]),
                cell(&f["tenant"]),
                cell(&f["tap_service"]),
                source(&f["source"]),
                cell(&f["direction"]),
                filter(&f["filter"]),
                cell(&f["status"]),
                if at.is_empty() { "-".into() } else { at.join(",") },
            ]
        })
        .collect();
    out.push_str(&table(
        &["FLOW", "NAME", "TENANT", "SERVICE", "SOURCE", "DIRECTION", "FILTER", "STATUS", "AT"],
        &rows,
    ));
    out
}

/// Where a tap flow is active: one line per interface and place.
fn active_lines(out: &mut String, f: &Value, indent: &str) {
    let empty = Vec::new();
    for a in f["active"].as_array().unwrap_or(&empty) {
        let _ = writeln!(
            out,
            "{indent}{} at {} {} last reprogram {}",
            cell(&a["iface_id"]),
            place(a),
            if a["programmed"] == true { "programmed" } else { "NOT YET PROGRAMMED" },
            ms(&a["last_reprogram_ms"]),
        );
    }
}

/// `show tap <name>`, from the tap flow, its service and its copies' counters per bridge.
pub fn tap(flow: &Value, service: Option<&Value>, copies: &[Value]) -> String {
    let mut out = format!(
        "tap flow {} (id {}) of tenant {}: {}\n  source {} direction {} filter {}\n",
        cell(&flow["name"]),
        cell(&flow["id"]),
        cell(&flow["tenant"]),
        cell(&flow["status"]),
        source(&flow["source"]),
        cell(&flow["direction"]),
        filter(&flow["filter"]),
    );
    match service {
        Some(s) => {
            let _ = writeln!(
                out,
                "  to service {} (id {}): {} to {} key {}",
                cell(&s["name"]),
                cell(&s["id"]),
                cell(&s["encap"]),
                collector(s),
                cell(&s["key"])
            );
            if let Some(b) = s.get("blocked") {
                let _ = writeln!(out, "  BLOCKED: {}", cell(b));
            }
        }
        None => {
            let _ = writeln!(out, "  to service {}", cell(&flow["tap_service"]));
        }
    }
    if flow["active"].as_array().is_none_or(Vec::is_empty) {
        out.push_str("  active nowhere (no interface it selects is on a connected bridge)\n");
    } else {
        out.push_str("  active:\n");
        active_lines(&mut out, flow, "    ");
    }
    if !copies.is_empty() {
        out.push_str("  copies, counted by the switches now:\n");
    }
    for c in copies {
        let bridge =
            format!("{}/{} ({})", cell(&c["hypervisor"]), cell(&c["bridge"]), dpid(&c["dpid"]));
        let _ = match c.get("error") {
            Some(e) => writeln!(out, "    {bridge}: not read: {}", cell(e)),
            None => writeln!(
                out,
                "    {bridge}: {} packets, {} bytes through {} copy flows",
                cell(&c["packets"]),
                cell(&c["bytes"]),
                cell(&c["flows"])
            ),
        };
    }
    out
}

/// `where <iface-id>`, from `GET /v1/interfaces/{id}` and the tap flows (to show those on it).
pub fn location(iface: &Value, flows: &Value) -> String {
    let empty = Vec::new();
    let id = iface["iface_id"].as_str().unwrap_or("?");
    let mut out = format!(
        "iface-id {id}: owner {}{}\n",
        cell(&iface["owner"]),
        if iface["registered"] == true { " (registered)" } else { "" }
    );
    let locs = iface["locations"].as_array().unwrap_or(&empty);
    match locs.len() {
        0 => out.push_str("  on no bridge now\n"),
        1 => {}
        n => {
            let _ = writeln!(out, "  at {n} places: migrating");
        }
    }
    for l in locs {
        let _ = writeln!(out, "  at {}", place(l));
    }
    let history = iface["migrations"].as_array().unwrap_or(&empty);
    if !history.is_empty() {
        out.push_str("  migrations (times from the controller seeing the change):\n");
    }
    for m in history {
        let places = |k: &str| {
            let p: Vec<String> = m[k].as_array().unwrap_or(&empty).iter().map(place).collect();
            if p.is_empty() {
                "?".to_string()
            } else {
                p.join(" and ")
            }
        };
        let when = m["started_ms"].as_u64().map_or_else(|| "-".into(), utc);
        let _ = writeln!(
            out,
            "    {when} {} from {} to {}: destination programmed after {}, at one place after {}, source cleaned {} later",
            cell(&m["kind"]),
            places("from"),
            places("to"),
            ms(&m["destination_programmed_ms"]),
            ms(&m["finished_ms"]),
            ms(&m["source_cleaned_ms"]),
        );
    }
    let mine: Vec<&Value> = flows
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|f| f["active"].as_array().is_some_and(|a| a.iter().any(|x| x["iface_id"] == id)))
        .collect();
    if mine.is_empty() {
        out.push_str("  no tap flow copies it\n");
    }
    for f in mine {
        let _ = writeln!(
            out,
            "  tap flow {} ({}, {}) to service {}:",
            cell(&f["name"]),
            cell(&f["direction"]),
            cell(&f["status"]),
            cell(&f["tap_service"])
        );
        let mut lines = String::new();
        active_lines(&mut lines, f, "    ");
        for l in lines.lines().filter(|l| l.trim_start().starts_with(&format!("{id} "))) {
            let _ = writeln!(out, "{l}");
        }
    }
    out
}

/// `trace`, from `GET /v1/switches/{dpid}/trace`.
pub fn trace(t: &Value) -> String {
    let empty = Vec::new();
    let mut out = format!(
        "{}/{} ({}): {}\n",
        cell(&t["hypervisor"]),
        cell(&t["bridge"]),
        cell(&t["dpid"]),
        cell(&t["packet"])
    );
    let outputs = t["trace"]["outputs"].as_array().unwrap_or(&empty);
    if outputs.is_empty() {
        out.push_str("  dropped: no flow sends it anywhere\n");
    }
    for o in outputs {
        let mut line = if o["normal"] == true {
            "  NORMAL (the switch's own forwarding)".to_string()
        } else {
            format!("  output {} ({})", port_no(&o["port"]), cell(&o["port_name"]))
        };
        if let Some(k) = o["tun_id"].as_u64() {
            let _ = write!(line, " tun_id={k:#x} ({k})");
        }
        if let Some(d) = o["tun_dst"].as_str() {
            let _ = write!(line, " tun_dst={d}");
        }
        let erspan = &o["erspan"];
        if let Some(v) = erspan["version"].as_u64() {
            let _ = write!(line, " erspan_v{v}");
            if let Some(i) = erspan["index"].as_u64() {
                let _ = write!(line, " index={i}");
            }
            match erspan["direction"].as_u64() {
                Some(0) => line.push_str(" ingress"),
                Some(_) => line.push_str(" egress"),
                None => {}
            }
        }
        if let Some(m) = o["max_len"].as_u64() {
            let _ = write!(line, " truncated to {m} bytes");
        }
        out.push_str(&line);
        out.push('\n');
    }
    for u in t["trace"]["unmodelled"].as_array().unwrap_or(&empty) {
        let _ = writeln!(out, "  not modelled (the trace may be incomplete): {}", cell(u));
    }
    out
}

/// `diff <bridge>`, from `GET /v1/switches/{dpid}/diff`.
pub fn diff(d: &Value) -> String {
    let empty = Vec::new();
    let list = |k: &str| d[k].as_array().unwrap_or(&empty).clone();
    let mut out =
        format!("{}/{} ({}): ", cell(&d["hypervisor"]), cell(&d["bridge"]), cell(&d["dpid"]));
    if d["in_sync"] == true {
        let _ =
            writeln!(out, "in sync: the {} flows periscope wants are there", cell(&d["desired"]));
        return out;
    }
    out.push_str("NOT in sync");
    if d["reprogramming"] == true {
        out.push_str(" (the bridge is being reprogrammed: try again)");
    }
    out.push('\n');
    for (key, title, mark) in [
        ("missing", "wanted, not on the switch", "-"),
        ("unexpected", "ours on the switch, not wanted", "+"),
    ] {
        let flows = list(key);
        if !flows.is_empty() {
            let _ = writeln!(out, "{title}:");
            for f in flows {
                let _ = writeln!(out, "{mark} {}", cell(&f));
            }
        }
    }
    let different = list("different");
    if !different.is_empty() {
        out.push_str("same match, other actions or cookie:\n");
        for f in different {
            let _ = writeln!(out, "- {}\n+ {}", cell(&f["want"]), cell(&f["have"]));
        }
    }
    out
}

/// One event as a line: time, number, name, then its fields (places as `hv dpid .. ofport ..`).
pub fn event(e: &Value) -> String {
    let when = e["time_ms"].as_u64().map_or_else(|| "-".into(), utc);
    let mut line = format!("{when} #{} {}", cell(&e["seq"]), cell(&e["event"]));
    let is_place = |v: &Value| v.get("hypervisor").is_some();
    if let Some(o) = e.as_object() {
        for (k, v) in o {
            if ["seq", "time_ms", "event"].contains(&k.as_str()) {
                continue;
            }
            let text = match v {
                v if is_place(v) => place(v),
                Value::Array(a) if !a.is_empty() && a.iter().all(is_place) => {
                    a.iter().map(place).collect::<Vec<_>>().join(" and ")
                }
                Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or_default()),
                other => cell(other),
            };
            let _ = write!(line, " {k}={text}");
        }
    }
    line.push('\n');
    line
}

/// `events`, from `GET /v1/events`.
pub fn events(r: &Value) -> String {
    let empty = Vec::new();
    let list = r["events"].as_array().unwrap_or(&empty);
    if list.is_empty() {
        return "no event yet\n".into();
    }
    list.iter().map(event).collect()
}

/// `stats`, from `GET /v1/stats`.
pub fn stats(s: &Value) -> String {
    let mut out = String::new();
    let Some(o) = s.as_object() else { return format!("{s}\n") };
    for (k, v) in o {
        if let Some(inner) = v.as_object() {
            let parts: Vec<String> = inner
                .iter()
                .map(|(a, b)| {
                    if k.ends_with("_ms") && a != "count" {
                        format!("{a} {}", ms(b))
                    } else {
                        format!("{a} {}", cell(b))
                    }
                })
                .collect();
            let _ = writeln!(out, "{k:<28} {}", parts.join(", "));
        } else {
            let _ = writeln!(out, "{k:<28} {}", cell(v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn topology_is_drawn_as_a_tree_with_its_tunnels() {
        let vm = json!({"uuid": "u1", "name": "tap1", "type": "", "ofport": 1,
            "mac": "02:51:00:00:00:01", "iface_id": "vm1-port", "tenant": "bank-a",
            "ready": true, "options": {}});
        let vx = json!({"uuid": "u2", "name": "vx-hv2", "type": "vxlan", "ofport": 4,
            "mac": null, "iface_id": null, "ready": true,
            "options": {"remote_ip": "192.0.2.2", "key": "flow"}});
        let t = json!({
            "generation": 7,
            "hypervisors": [
                {"id": "hv1", "underlay_ips": ["192.0.2.1"], "bridges": [
                    {"name": "br-int", "datapath_id": 1, "connected": true,
                     "ports": [{"interfaces": [vm]}, {"interfaces": [vx]}]},
                    {"name": "br-phy", "datapath_id": 2, "connected": false, "ports": []}]},
                {"id": "hv2", "bridges": []}],
            "links": [{"kind": "tunnel", "iface": {"hypervisor": "hv1", "uuid": "u2"},
                       "remote_ip": "192.0.2.2", "to": "hv2"}],
            "migrations": [],
        });
        let text = topology(&t);
        let expected = "generation 7\n\
            hypervisor hv1 underlay 192.0.2.1\n\
            ├─ bridge br-int dpid 0000000000000001 connected\n\
            │  ├─ 1  tap1    system  02:51:00:00:00:01  iface-id vm1-port  tenant bank-a\n\
            │  └─ 4  vx-hv2  vxlan   remote_ip=192.0.2.2  key=flow\n\
            └─ bridge br-phy dpid 0000000000000002 not connected to periscope\n\
            hypervisor hv2\n\
            links\n  hv1 br-int:vx-hv2 ══▶ hv2 (192.0.2.2)\n";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn tables_align_and_trim() {
        let t = table(&["A", "LONGER"], &[vec!["wide cell".into(), "x".into()]]);
        assert_eq!(t, "A          LONGER\nwide cell  x\n");
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_796_233_371_000), "2026-12-02 17:42:51Z");
        assert_eq!(age(59), "59s");
        assert_eq!(age(192), "3m12s");
        assert_eq!(age(7500), "2h05m");
        assert_eq!(age(3 * 86_400 + 7200), "3d02h");
    }

    #[test]
    fn switches_show_what_an_engineer_checks() {
        let list = json!([{
            "dpid": "0e1a0b4f2e000101", "peer": "unix", "hypervisor": "hv1", "bridge": "br-int",
            "connected_since_ms": 1_796_233_371_000u64, "our_flows": 8, "programmed": true,
            "last_reprogram_ms": 0.8, "echo_rtt_ms": null, "queue_depth": 0
        }]);
        let t = switches(&list, 1_796_233_371_000 + 75_000);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("DPID") && lines[0].contains("ECHO RTT"), "{t}");
        for want in
            ["0e1a0b4f2e000101", "hv1", "br-int", "2026-12-02 17:42:51Z (1m15s ago)", "0.80 ms"]
        {
            assert!(lines[1].contains(want), "{want} in {t}");
        }
        assert_eq!(switches(&json!([]), 0), "no switch is connected\n");
    }

    fn flow() -> Value {
        json!({
            "id": 2, "name": "vm1-both", "tenant": "bank-a", "tap_service": 1,
            "source": {"iface_id": "abc"}, "direction": "BOTH", "filter": {"ip_proto": 17},
            "status": "ACTIVE",
            "active": [{"iface_id": "abc", "hypervisor": "hv1", "dpid": "0e1a0b4f2e000101",
                        "ofport": 3, "programmed": true, "last_reprogram_ms": 12.25}]
        })
    }

    #[test]
    fn where_shows_places_and_the_taps_on_the_interface() {
        let iface = json!({"iface_id": "abc", "owner": "bank-a", "registered": false,
            "locations": [{"hypervisor": "hv1", "dpid": 1_016_137_100_627_542_273u64, "ofport": 3}]});
        let t = location(&iface, &json!([flow()]));
        assert!(t.contains("owner bank-a"), "{t}");
        assert!(t.lines().any(|l| l == "  at hv1 dpid 0e1a0b4f2e000101 ofport 3"), "{t}");
        assert!(t.contains("tap flow vm1-both (BOTH, ACTIVE)"), "{t}");
        assert!(t.contains("programmed last reprogram 12.2 ms"), "{t}");
        let migrated = json!({"iface_id": "abc", "locations": [], "migrations": [{
            "kind": "migration", "started_ms": 0,
            "from": [{"hypervisor": "hv1", "dpid": "0000000000000001", "ofport": 3}],
            "to": [{"hypervisor": "hv2", "dpid": "0000000000000002", "ofport": 4}],
            "destination_programmed_ms": 4.5, "finished_ms": 812.0, "source_cleaned_ms": null}]});
        let t = location(&migrated, &json!([]));
        assert!(t.contains("    1970-01-01 00:00:00Z migration from hv1 dpid 0000000000000001 ofport 3 to hv2 dpid 0000000000000002 ofport 4: destination programmed after 4.50 ms, at one place after 812.0 ms, source cleaned - later"), "{t}");
        let moving = json!({"iface_id": "abc", "locations": [
            {"hypervisor": "hv1", "dpid": 1, "ofport": 3}, {"hypervisor": "hv2", "dpid": 2, "ofport": 5}]});
        let t = location(&moving, &json!([]));
        assert!(t.contains("at 2 places: migrating") && t.contains("no tap flow copies it"), "{t}");
    }

    #[test]
    fn taps_and_one_tap() {
        let svc = json!({"id": 1, "name": "perf", "tenant": "bank-a", "encap": "vxlan",
                         "remote_ip": "192.0.2.9", "key": 4242});
        let t = taps(&json!([svc]), &json!([flow()]));
        assert!(t.contains("perf") && t.contains("4242") && t.contains("192.0.2.9"), "{t}");
        assert!(
            t.contains("iface-id abc") && t.contains("ip_proto=17") && t.contains("hv1"),
            "{t}"
        );
        let copies = [
            json!({"dpid": "0000000000000001", "hypervisor": "hv1", "bridge": "br-int",
                   "flows": 2, "packets": 40, "bytes": 3920}),
            json!({"dpid": "0000000000000002", "error": "the switch refused the dump"}),
        ];
        let t = tap(&flow(), Some(&svc), &copies);
        assert!(t.contains("tap flow vm1-both (id 2) of tenant bank-a: ACTIVE"), "{t}");
        assert!(t.contains("vxlan to 192.0.2.9 key 4242"), "{t}");
        assert!(
            t.contains(
                "    hv1/br-int (0000000000000001): 40 packets, 3920 bytes through 2 copy flows"
            ),
            "{t}"
        );
        assert!(t.contains("(0000000000000002): not read: the switch refused the dump"), "{t}");
        assert_eq!(taps(&json!([]), &json!([])), "no tap service\n\nno tap flow\n");
        let vm = json!({"id": 3, "name": "ids", "tenant": "bank-a", "encap": "gre",
                        "collector": {"iface_id": "col-port"}, "key": 4243});
        assert!(taps(&json!([vm]), &json!([])).contains("vm col-port"));
        assert!(tap(&flow(), Some(&vm), &[]).contains("gre to vm col-port key 4243"));
    }

    #[test]
    fn topology_lists_bridges_ports_and_migrations() {
        let t = json!({
            "generation": 4,
            "hypervisors": [{"id": "hv1", "hostname": null, "underlay_ips": ["192.0.2.11"],
                "bridges": [{"name": "br-int", "datapath_id": 1, "connected": true, "ports": [
                    {"name": "vm1", "interfaces": [{"name": "vm1", "ofport": 3, "type": "",
                        "mac": "02:00:00:00:00:01", "iface_id": "abc", "tenant": "bank-a", "ready": true}]}]}]}],
            "links": [], "migrations": [{"iface_id": "abc", "locations": [
                {"hypervisor": "hv1", "dpid": 1, "ofport": 3}, {"hypervisor": "hv2", "dpid": 2, "ofport": 4}]}],
            "unattached_interfaces": []
        });
        let out = topology(&t);
        assert!(out.contains("hypervisor hv1 underlay 192.0.2.11"), "{out}");
        assert!(out.contains("bridge br-int dpid 0000000000000001 connected"), "{out}");
        assert!(
            out.lines().any(|l| l.contains("vm1") && l.contains("system") && l.contains("abc")),
            "{out}"
        );
        assert!(port_no(&json!(4_294_967_294u64)) == "LOCAL" && port_no(&json!(3)) == "3");
        assert!(out.contains("migrating abc: hv1 dpid 0000000000000001 ofport 3 and hv2"), "{out}");
    }

    #[test]
    fn diffs_say_in_sync_or_what_differs() {
        let base = json!({"hypervisor": "hv1", "bridge": "br-int", "dpid": "00000000000000aa"});
        let mut d = base.clone();
        d["in_sync"] = json!(true);
        d["desired"] = json!(8);
        assert_eq!(
            diff(&d),
            "hv1/br-int (00000000000000aa): in sync: the 8 flows periscope wants are there\n"
        );
        let mut d = base;
        d["in_sync"] = json!(false);
        d["missing"] = json!(["cookie=0x1, table=0, priority=1 actions=drop"]);
        d["different"] = json!([{"want": "w", "have": "h"}]);
        let t = diff(&d);
        assert!(t.contains("NOT in sync\nwanted, not on the switch:\n- cookie=0x1"), "{t}");
        assert!(t.contains("other actions or cookie:\n- w\n+ h\n"), "{t}");
        assert!(!t.contains("ours on the switch"), "{t}");
    }

    #[test]
    fn ports_join_the_switch_and_ovsdb() {
        let t = json!({
            "hypervisors": [{"id": "hv1", "bridges": [{"name": "br-int", "datapath_id": 170,
                "ports": [{"name": "vm1", "interfaces": [{"name": "vm1", "type": "", "mac": "02:00:00:00:00:01",
                    "iface_id": "abc", "tenant": "bank-a"}]}]}]}],
            "switches": [{"dpid": 170, "connected": true, "ports": [
                {"port_no": 1, "name": "vm1", "live": true},
                {"port_no": 4_294_967_294u64, "name": "br-int", "live": false}]}]
        });
        let out = ports(&t, None).expect("ports");
        assert!(out.starts_with("hv1/br-int (00000000000000aa)\n"), "{out}");
        let vm = out.lines().find(|l| l.starts_with("1 ")).unwrap_or_default();
        assert!(vm.contains("up") && vm.contains("system") && vm.contains("abc"), "{out}");
        assert!(out.lines().any(|l| l.starts_with("LOCAL") && l.contains("DOWN")), "{out}");
        assert_eq!(ports(&t, Some("0xaa")), ports(&t, Some("hv1/br-int")));
        let e = ports(&t, Some("br-ex")).expect_err("no such bridge");
        assert!(e.contains("no switch is \"br-ex\""), "{e}");
    }

    #[test]
    fn traces_show_each_output_and_copy() {
        let t = json!({"hypervisor": "hv1", "bridge": "br-int", "dpid": "00000000000000aa",
            "packet": "in_port=1", "trace": {"outputs": [
                {"port": 2, "port_name": "psc-vx-1", "tun_id": 4242, "tun_dst": "192.0.2.9", "max_len": null},
                {"port": 3, "port_name": "psc-er-1", "tun_id": 12, "tun_dst": "192.0.2.9", "max_len": null,
                 "erspan": {"version": 2, "index": null, "direction": 1}},
                {"normal": true, "tun_id": null, "tun_dst": null}], "unmodelled": []}});
        let out = trace(&t);
        assert!(
            out.contains("  output 2 (psc-vx-1) tun_id=0x1092 (4242) tun_dst=192.0.2.9\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "  output 3 (psc-er-1) tun_id=0xc (12) tun_dst=192.0.2.9 erspan_v2 egress\n"
            ),
            "{out}"
        );
        assert!(out.contains("  NORMAL (the switch's own forwarding)\n"), "{out}");
        let dropped = json!({"trace": {"outputs": [], "unmodelled": ["Meter"]}});
        let out = trace(&dropped);
        assert!(out.contains("dropped") && out.contains("not modelled"), "{out}");
    }

    #[test]
    fn events_print_one_line_each_with_places() {
        let r = json!({"next": 7, "events": [{"seq": 7, "time_ms": 0, "event": "migration_started",
            "iface_id": "abc", "generation": 9,
            "from": [{"hypervisor": "hv1", "dpid": 1, "ofport": 3}],
            "to": [{"hypervisor": "hv2", "dpid": 2, "ofport": null}]}]});
        assert_eq!(
            events(&r),
            "1970-01-01 00:00:00Z #7 migration_started from=hv1 dpid 0000000000000001 ofport 3 \
             generation=9 iface_id=abc to=hv2 dpid 0000000000000002 ofport -\n"
        );
        assert_eq!(events(&json!({"events": []})), "no event yet\n");
        let e = json!({"seq": 1, "time_ms": 0, "event": "bridge_reprogrammed", "ms": 0.5080479999999999});
        assert!(event(&e).ends_with(" ms=0.508\n"), "{}", event(&e));
    }

    #[test]
    fn stats_print_one_line_each() {
        let s = json!({"switches": 1, "reprogram_ms": {"count": 2, "p50": 1.5, "max": null},
                       "queues": {"api_calls": 0}});
        let t = stats(&s);
        assert!(t.contains("switches                     1"), "{t}");
        assert!(t.contains("count 2, max -, p50 1.50 ms"), "{t}");
        assert!(t.contains("queues                       api_calls 0\n"), "{t}");
    }
}
