//! The shared benchmark vector: a real ovsdb-server 3.1 reply to `monitor_cond` for 10,000
//! ports/interfaces, decoded from the byte stream and applied to a replica.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use periscope_codec::ovsdb::{
    Atom, DatabaseSchema, JsonStream, Message, Replica, RowChange, TableUpdates2, Uuid,
};

const VECTOR: &str = "/work/shared/vectors/monitor_cond_10k.json.gz";

/// The columns the vector's monitor asked for (Interface: five; Port and Bridge: all).
const INTERFACE_COLUMNS: &[&str] = &["name", "ofport", "external_ids", "type", "mac_in_use"];

fn schema() -> DatabaseSchema {
    let text = include_str!("data/ovsdb/vswitch.ovsschema");
    let v = serde_json::from_str(text).expect("schema file is JSON");
    DatabaseSchema::from_json(&v).expect("vswitch schema parses")
}

/// A replica shaped like the vector's monitor.
pub fn replica_for_vector(schema: &DatabaseSchema) -> Replica {
    Replica::with_columns(
        schema,
        &[("Interface", Some(INTERFACE_COLUMNS)), ("Port", None), ("Bridge", None)],
    )
    .expect("tables and columns exist in the schema")
}

/// The whole path a driver takes: bytes in chunks -> stream -> response -> table-updates2 ->
/// replica. Benchmark-ready: takes the raw bytes, returns the changes.
pub fn load_monitor_cond_reply(
    bytes: &[u8],
    chunk: usize,
    replica: &mut Replica,
) -> Result<Vec<RowChange>, String> {
    let mut stream = JsonStream::new(16 << 20);
    let mut reply = None;
    for c in bytes.chunks(chunk) {
        stream.push(c).map_err(|e| e.to_string())?;
        while let Some(m) = stream.next_message().map_err(|e| e.to_string())? {
            reply = Some(m);
        }
    }
    let Some(Message::Response(r)) = reply else {
        return Err(format!("expected one response, got {reply:?}"));
    };
    let result = r.into_result().map_err(|e| format!("server error {e}"))?;
    let updates = TableUpdates2::from_json(&result).map_err(|e| e.to_string())?;
    replica.reset(updates).map_err(|e| e.to_string())
}

fn vector_bytes() -> Option<Vec<u8>> {
    if !Path::new(VECTOR).exists() {
        eprintln!("skipping: {VECTOR} not present");
        return None;
    }
    let out = Command::new("gzip").arg("-dc").arg(VECTOR).output().expect("gzip runs");
    assert!(out.status.success(), "gzip -dc failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(out.stdout)
}

#[test]
fn monitor_cond_10k_reply_fills_the_replica() {
    let Some(bytes) = vector_bytes() else { return };
    let schema = schema();
    let mut replica = replica_for_vector(&schema);
    let t0 = Instant::now();
    let changes = load_monitor_cond_reply(&bytes, 64 << 10, &mut replica).expect("vector applies");
    eprintln!("decoded and applied {} bytes in {:?}", bytes.len(), t0.elapsed());

    let interfaces = replica.table("Interface").expect("Interface replicated");
    let ports = replica.table("Port").expect("Port replicated");
    let bridges = replica.table("Bridge").expect("Bridge replicated");
    // 10,000 VM interfaces plus br-int's own internal interface.
    assert_eq!(interfaces.len(), 10_001);
    assert_eq!(ports.len(), 10_001);
    assert_eq!(bridges.len(), 1);
    assert_eq!(changes.len(), 10_001 * 2 + 1);

    let iface_id = Atom::string("iface-id");
    let vm_ifaces: Vec<_> =
        interfaces.values().filter(|r| r["external_ids"].map_get(&iface_id).is_some()).collect();
    assert_eq!(vm_ifaces.len(), 10_000);
    for row in &vm_ifaces {
        let ids = &row["external_ids"];
        assert!(ids.map_get(&Atom::string("attached-mac")).is_some());
        assert!(ids.map_get(&Atom::string("vm-uuid")).is_some());
        let name = row["name"].as_atom().and_then(Atom::as_str).expect("name is a string");
        assert!(name.starts_with("tap"), "{name}");
        // Every monitored column is present, defaults filled in.
        assert_eq!(row.len(), INTERFACE_COLUMNS.len());
    }

    // The bridge references every port, and every port's interface exists.
    let bridge = bridges.values().next().expect("one bridge");
    assert_eq!(bridge["name"].as_atom(), Some(&Atom::string("br-int")));
    let port_refs = bridge["ports"].as_set().expect("ports is a set");
    assert_eq!(port_refs.len(), 10_001);
    for p in port_refs {
        let u: Uuid = p.as_uuid().expect("uuid");
        let port = ports.get(&u).expect("referenced port replicated");
        for i in port["interfaces"].as_set().expect("set") {
            assert!(interfaces.contains_key(&i.as_uuid().expect("uuid")));
        }
    }
}

#[test]
fn monitor_cond_10k_reply_is_chunking_independent() {
    let Some(bytes) = vector_bytes() else { return };
    let schema = schema();
    let mut a = replica_for_vector(&schema);
    let mut b = replica_for_vector(&schema);
    load_monitor_cond_reply(&bytes, 64 << 10, &mut a).expect("applies");
    load_monitor_cond_reply(&bytes, 1499, &mut b).expect("applies");
    assert_eq!(a, b);
    // A stream limited below the message size refuses it instead of buffering it.
    let mut stream = JsonStream::new(1 << 20);
    let err = bytes.chunks(64 << 10).find_map(|c| stream.push(c).err());
    assert!(err.is_some(), "a 5 MB message must exceed a 1 MiB limit");
}
