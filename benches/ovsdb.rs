//! OVSDB client throughput on a real ovsdb-server 3.1 snapshot (10,000 interfaces), side by side
//! with the Open vSwitch Python IDL.
//!
//! `cargo bench --bench ovsdb` measures, single-threaded: parsing the monitor reply, applying it
//! through replica + translation + topology (target < 50 ms), and single-row updates through the
//! same path (target > 100k/s); then runs the Python IDL on the same snapshot (when
//! `benches/peers/setup-ovs.sh` has made its venv) and prints the ratios. Times are the
//! thread's on-CPU time (the machine is shared), with the wall clock of the snapshot apply too.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use periscope::codec::ovsdb::{
    DatabaseSchema, JsonStream, Message, Replica, ServerNotification, TableUpdates2, Uuid,
};
use periscope::ovsdb::{session, translate};
use periscope::topology::{HypervisorId, Topology, TopologyConfig};
use serde_json::{json, Value};

/// The columns the vector was monitored with.
const INTERFACE_COLUMNS: &[&str] = &["name", "ofport", "external_ids", "type", "mac_in_use"];

/// A start mark: wall clock and this thread's on-CPU time. On a shared machine the CPU time is
/// the figure that does not depend on how busy the other core's tenants are.
#[derive(Clone, Copy)]
struct Mark {
    wall: Instant,
    cpu_ns: Option<u64>,
}

/// On-CPU nanoseconds of the calling thread (`/proc/thread-self/schedstat`, first field).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Mark {
    fn now() -> Mark {
        Mark { cpu_ns: thread_cpu_ns(), wall: Instant::now() }
    }

    /// Seconds on CPU since the mark (wall seconds where schedstat is unavailable).
    fn cpu_s(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        match (self.cpu_ns, thread_cpu_ns()) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e9,
            _ => wall,
        }
    }

    /// Wall-clock seconds since the mark.
    fn wall_s(&self) -> f64 {
        self.wall.elapsed().as_secs_f64()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn gunzip(path: &Path) -> Vec<u8> {
    let out = Command::new("gzip").arg("-dc").arg(path).output().expect("running gzip -dc");
    assert!(out.status.success(), "gzip -dc {}", path.display());
    out.stdout
}

fn replica(schema: &DatabaseSchema) -> Replica {
    Replica::with_columns(
        schema,
        &[("Bridge", None), ("Port", None), ("Interface", Some(INTERFACE_COLUMNS))],
    )
    .expect("replica for the vector's columns")
}

/// A replica of the tables and columns periscope's OVSDB session monitors, where the schema has
/// them.
fn session_replica(schema: &DatabaseSchema) -> Replica {
    let tables: Vec<(&str, Vec<&str>)> = session::MONITORED
        .iter()
        .filter_map(|(table, _, columns)| {
            let t = schema.table(table)?;
            Some((*table, columns.iter().copied().filter(|c| t.columns.contains_key(*c)).collect()))
        })
        .collect();
    let spec: Vec<(&str, Option<&[&str]>)> =
        tables.iter().map(|(t, c)| (*t, Some(c.as_slice()))).collect();
    Replica::with_columns(schema, &spec).expect("replica for the session's columns")
}

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("codec/tests/data/ovsdb");
    let schema_path = data.join("vswitch.ovsschema");
    let vector = data.join("monitor_cond_10k.json.gz");
    let schema_json: Value =
        serde_json::from_slice(&std::fs::read(&schema_path).expect("schema")).expect("schema JSON");
    let schema = DatabaseSchema::from_json(&schema_json).expect("schema");
    let raw = gunzip(&vector);
    let hv = HypervisorId::from("hv1");

    // Parse: bytes -> JSON-RPC message -> typed table updates.
    let mut parse = Vec::new();
    let mut updates = None;
    let profiling = std::env::var("PERISCOPE_BENCH_PROFILE").is_ok();
    for _ in 0..if profiling { 1 } else { 7 } {
        let t = Mark::now();
        let mut stream = JsonStream::default();
        stream.push(&raw).expect("framing");
        let Some(Message::Response(r)) = stream.next_message().expect("message") else {
            panic!("the vector is a response")
        };
        let u = TableUpdates2::from_json(&r.result).expect("table-updates2");
        parse.push(t.cpu_s());
        updates = Some(u);
    }
    let updates = updates.expect("parsed");
    let n_if = updates.tables.get("Interface").map_or(0, |t| t.len());

    // `PERISCOPE_BENCH_PROFILE=apply`: one snapshot apply and nothing else, to run under
    // `valgrind --tool=callgrind`.
    // `PERISCOPE_BENCH_PROFILE=topology`: the topology apply alone, 30 times, for `perf record`.
    match std::env::var("PERISCOPE_BENCH_PROFILE").as_deref() {
        Ok("apply") => {
            let mut r = replica(&schema);
            let mut topo = Topology::new(TopologyConfig::default());
            let events =
                translate::apply_full_state(&hv, &mut r, updates, &mut topo).expect("apply");
            println!("{} events", events.len());
            return;
        }
        Ok("topology") => {
            let mut r = replica(&schema);
            r.load(updates).expect("load");
            for _ in 0..30 {
                let change = translate::replaced(&hv, &r);
                let mut topo = Topology::new(TopologyConfig::default());
                black_box(topo.apply(change));
            }
            return;
        }
        _ => {}
    }

    // Apply: replica + translation + topology, from empty.
    let mut apply = Vec::new();
    let mut apply_wall = Vec::new();
    let mut ready = 0;
    for _ in 0..7 {
        let mut r = replica(&schema);
        let mut topo = Topology::new(TopologyConfig::default());
        let u = updates.clone();
        let t = Mark::now();
        let events = translate::apply_full_state(&hv, &mut r, u, &mut topo).expect("apply");
        apply.push(t.cpu_s());
        apply_wall.push(t.wall_s());
        ready = events.len();
        black_box(&topo);
    }
    // The same, with the columns periscope's session monitors (`session::MONITORED`): Port
    // with 4 columns instead of all 22, Interface with 8.
    let mut apply_session = Vec::new();
    for _ in 0..7 {
        let mut r = session_replica(&schema);
        let mut topo = Topology::new(TopologyConfig::default());
        let u = updates.clone();
        let t = Mark::now();
        let events = translate::apply_full_state(&hv, &mut r, u, &mut topo).expect("apply");
        apply_session.push(t.cpu_s());
        assert_eq!(events.len(), ready, "the same topology whatever else is monitored");
        black_box(&topo);
    }
    // The same snapshot again (a resync that finds nothing changed).
    let mut r = replica(&schema);
    let mut topo = Topology::new(TopologyConfig::default());
    translate::apply_full_state(&hv, &mut r, updates.clone(), &mut topo).expect("apply");
    let mut resync = Vec::new();
    for _ in 0..5 {
        let u = updates.clone();
        let t = Mark::now();
        let ev = translate::apply_full_state(&hv, &mut r, u, &mut topo).expect("resync");
        resync.push(t.cpu_s());
        assert!(ev.is_empty(), "an unchanged resync emits nothing");
    }

    // Single-row updates: one interface's ofport flips, each update applied on its own.
    let iface: Uuid = *updates.tables["Interface"].keys().next().expect("an interface");
    let typed: Vec<TableUpdates2> = (0..2)
        .map(|i| {
            TableUpdates2::from_json(
                &json!({"Interface": {iface.to_string(): {"modify": {"ofport": 100 + i}}}}),
            )
            .expect("update")
        })
        .collect();
    let n = 100_000u32;
    let mut typed_rate = Vec::new();
    for _ in 0..5 {
        let batch: Vec<TableUpdates2> = (0..n).map(|i| typed[(i & 1) as usize].clone()).collect();
        let t = Mark::now();
        for u in batch {
            let ev = translate::apply_update(&hv, &mut r, u, &mut topo).expect("update");
            black_box(ev);
        }
        typed_rate.push(f64::from(n) / t.cpu_s());
    }
    // The same from the bytes of update3 notifications.
    let wire: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            json!({"method": "update3", "id": null, "params": ["periscope", "00000000-0000-0000-0000-000000000001",
                {"Interface": {iface.to_string(): {"modify": {"ofport": 100 + i}}}}]})
            .to_string()
            .into_bytes()
        })
        .collect();
    let mut stream = JsonStream::default();
    let mut wire_rate = Vec::new();
    for _ in 0..5 {
        let t = Mark::now();
        for i in 0..n {
            stream.push(&wire[(i & 1) as usize]).expect("push");
            let Ok(Some(Message::Notification(m))) = stream.next_message() else { panic!() };
            let Ok(ServerNotification::Update3 { updates, .. }) =
                ServerNotification::from_notification(&m)
            else {
                panic!()
            };
            black_box(translate::apply_update(&hv, &mut r, updates, &mut topo).expect("update"));
        }
        wire_rate.push(f64::from(n) / t.cpu_s());
    }

    // Where the snapshot time goes.
    let mut parts = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..5 {
        let mut r = replica(&schema);
        let mut topo = Topology::new(TopologyConfig::default());
        let u = updates.clone();
        let t = Mark::now();
        r.load(u).expect("load");
        parts[0].push(t.cpu_s());
        let t = Mark::now();
        let change = translate::replaced(&hv, &r);
        parts[1].push(t.cpu_s());
        let t = Mark::now();
        let events = topo.apply(change);
        parts[2].push(t.cpu_s());
        black_box(events);
    }
    let [p_replica, p_translate, p_topology] = parts.map(median);

    let (parse, apply, resync) = (median(parse), median(apply), median(resync));
    let apply_session = median(apply_session);
    let apply_wall = median(apply_wall);
    let (typed_rate, wire_rate) = (median(typed_rate), median(wire_rate));
    println!(
        "snapshot: {} bytes, {n_if} interfaces; {ready} topology events on first apply",
        raw.len()
    );
    let peer = peer(&schema_path, &vector);
    let p = |k: &str| peer.as_ref().and_then(|p| p.get(k)).and_then(Value::as_f64);
    let (peer_parse, peer_apply, peer_rate) =
        (p("json_parse_cpu_s"), p("snapshot_apply_cpu_s"), p("update_per_cpu_s"));
    let peer_apply_wall = p("snapshot_apply_s");
    let peer_total = peer_parse.zip(peer_apply).map(|(a, b)| a + b);
    println!("{:<36} {:>13} {:>13} {:>8}  target", "workload", "periscope", "ovs IDL", "ratio");
    let time_row = |name: &str, ours: f64, theirs: Option<f64>, target: Option<f64>| {
        let (t, r) = match theirs {
            Some(t) => (format!("{:.1} ms", t * 1e3), format!("{:.1}x", t / ours)),
            None => ("-".into(), "-".into()),
        };
        let goal = target
            .map(|g| format!("< {:.0} ms {}", g * 1e3, verdict(ours < g)))
            .unwrap_or_default();
        println!("{name:<36} {:>10.1} ms {t:>13} {r:>8}  {goal}", ours * 1e3);
    };
    let rate_row = |name: &str, ours: f64, theirs: Option<f64>, target: Option<f64>| {
        let (t, r) = match theirs {
            Some(t) => (format!("{t:.0}/s"), format!("{:.1}x", ours / t)),
            None => ("-".into(), "-".into()),
        };
        let goal = target
            .map(|g| format!("> {:.0}k/s {}", g / 1e3, verdict(ours > g)))
            .unwrap_or_default();
        println!("{name:<36} {:>11.0}/s {t:>13} {r:>8}  {goal}", ours);
    };
    time_row("snapshot parse (bytes -> typed)", parse, peer_parse, None);
    time_row("snapshot apply (replica+topology)", apply, peer_apply, Some(0.050));
    time_row("  same, wall clock", apply_wall, peer_apply_wall, None);
    time_row("  same, session's monitored columns", apply_session, peer_apply, None);
    time_row("  of which replica reset", p_replica, None, None);
    time_row("  of which translation", p_translate, None, None);
    time_row("  of which topology apply", p_topology, None, None);
    time_row("snapshot parse + apply", parse + apply, peer_total, None);
    time_row("resync, nothing changed", resync, None, None);
    rate_row("single-row update (typed)", typed_rate, peer_rate, Some(100_000.0));
    rate_row("single-row update (from bytes)", wire_rate, peer_rate, None);
    println!(
        "(medians; times are on-CPU time of the benchmark thread{}, except the wall-clock row)",
        if thread_cpu_ns().is_some() { "" } else { " (unavailable here: wall clock)" }
    );
    if peer.is_none() {
        println!("(ovs IDL not measured: run benches/peers/setup-ovs.sh first)");
    } else {
        println!(
            "(ovs IDL: PyPI ovs, pure Python; parse is json.loads, apply fills the IDL's rows, \
             with no topology)"
        );
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn peer(schema: &Path, vector: &Path) -> Option<serde_json::Map<String, Value>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("PERISCOPE_OVS_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|_| root.join("target/peers/ovs/bin/python"));
    if !python.exists() {
        return None;
    }
    let out = Command::new(&python)
        .arg(root.join("benches/peers/ovs_idl.py"))
        .arg(schema)
        .arg(vector)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("ovs IDL run failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}
