//! The embedded northbound database is created from the shipped schema on first start and, when
//! an older periscope left a database of an older schema, converted with real `ovsdb-tool`
//! without losing its rows.

use std::process::Command;

use periscope::northbound::db::SCHEMA;
use periscope::northbound::server::{prepare, Files};
use serde_json::Value;

fn tool(args: &[&str]) -> String {
    let out = Command::new("ovsdb-tool").args(args).output().expect("ovsdb-tool");
    assert!(out.status.success(), "ovsdb-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn an_older_database_is_converted_and_keeps_its_rows() {
    let dir = std::env::temp_dir().join(format!("periscope-nbup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let files = Files { dir: dir.clone() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");

    // An older schema: no audit trail yet, version 0.9.0.
    let mut old: Value = serde_json::from_str(SCHEMA).expect("schema");
    old["version"] = "0.9.0".into();
    old["tables"].as_object_mut().expect("tables").remove("Audit");
    let old_path = dir.join("old.ovsschema");
    std::fs::write(&old_path, old.to_string()).expect("old schema");
    let db = files.db().display().to_string();
    tool(&["create", &db, &old_path.display().to_string()]);
    let txn = r#"["Periscope_Northbound", {"op": "insert", "table": "Tenant",
        "row": {"name": "bank-a", "allowed_collectors": "192.0.2.0/24"}}]"#;
    tool(&["transact", &db, txn]);

    assert_eq!(rt.block_on(prepare(&files)).expect("prepare"), "converted to the new schema");
    let shipped: Value = serde_json::from_str(SCHEMA).expect("schema");
    assert_eq!(tool(&["db-version", &db]), shipped["version"].as_str().expect("version"));
    let rows = tool(&[
        "query",
        &db,
        r#"["Periscope_Northbound", {"op": "select", "table": "Tenant", "where": []}]"#,
    ]);
    assert!(rows.contains("bank-a"), "{rows}");
    // Schema 1.2.0 counts each tenant's creations: an older row starts at none.
    assert!(rows.contains(r#""creations":0"#), "{rows}");
    // Once current, it is only opened.
    assert_eq!(rt.block_on(prepare(&files)).expect("prepare"), "opened");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_first_start_creates_the_database() {
    let dir = std::env::temp_dir().join(format!("periscope-nbnew-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = Files { dir: dir.clone() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    assert_eq!(rt.block_on(prepare(&files)).expect("prepare"), "created");
    assert_eq!(tool(&["db-name", &files.db().display().to_string()]), "Periscope_Northbound");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_database_from_before_vm_collectors_keeps_its_tap_services() {
    let dir = std::env::temp_dir().join(format!("periscope-nbvmcol-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let files = Files { dir: dir.clone() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");

    // Schema 1.0.0: a tap service's collector was an address only.
    let mut old: Value = serde_json::from_str(SCHEMA).expect("schema");
    old["version"] = "1.0.0".into();
    old["tables"]["Tap_Service"]["columns"]
        .as_object_mut()
        .expect("columns")
        .remove("collector_iface");
    let old_path = dir.join("old.ovsschema");
    std::fs::write(&old_path, old.to_string()).expect("old schema");
    let db = files.db().display().to_string();
    tool(&["create", &db, &old_path.display().to_string()]);
    let txn = r#"["Periscope_Northbound", {"op": "insert", "table": "Tap_Service",
        "row": {"id": 7, "name": "ids", "tenant": "bank-a", "encap": "gre",
                "remote_ip": "192.0.2.33", "key": 4242}}]"#;
    tool(&["transact", &db, txn]);

    assert_eq!(rt.block_on(prepare(&files)).expect("prepare"), "converted to the new schema");
    let rows = tool(&[
        "query",
        &db,
        r#"["Periscope_Northbound", {"op": "select", "table": "Tap_Service", "where": [],
            "columns": ["remote_ip", "key", "collector_iface"]}]"#,
    ]);
    let rows: Value = serde_json::from_str(&rows).expect("json");
    let row = &rows[0]["rows"][0];
    assert_eq!(row["remote_ip"], "192.0.2.33", "{rows}");
    assert_eq!(row["key"], 4242, "{rows}");
    assert_eq!(row["collector_iface"], serde_json::json!(["set", []]), "an address collector");
    let _ = std::fs::remove_dir_all(&dir);
}
