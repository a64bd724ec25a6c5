//! Table updates sent by monitors: `<table-updates>` (RFC 7047 §4.1.6, in `monitor` replies and
//! `update` notifications) and Open vSwitch's `<table-updates2>` (ovsdb-server(7) §4.1.14, in
//! `monitor_cond` replies and `update2`/`update3` notifications).
//!
//! ```text
//! <table-updates>  {<table>: {<uuid>: {"old": <row>?, "new": <row>?}}}
//! <table-updates2> {<table>: {<uuid>: {"initial": <row>} | {"insert": <row>}
//!                                   | {"delete": null}   | {"modify": <row-diff>}}}
//! ```
//!
//! Rows are decoded without the schema here; the replica checks them against column types.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::datum::{row_from_json, row_to_json, ColumnNames, Uuid};
use super::error::{DecodeError, Loc};
use super::row::Row;

/// One row's change in a `<table-updates>`: insert (`new` only), delete (`old` only) or modify
/// (both; `old` holds the previous values of the changed columns, `new` every monitored column).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowUpdate {
    /// Previous values.
    pub old: Option<Row>,
    /// New values.
    pub new: Option<Row>,
}

/// `<table-updates>`: table name to row UUID to change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableUpdates {
    /// The changes by table and row.
    pub tables: BTreeMap<String, BTreeMap<Uuid, RowUpdate>>,
}

/// One row's change in a `<table-updates2>`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RowUpdate2 {
    /// A row present when the monitor started; columns at their default value are omitted.
    Initial(Row),
    /// A row inserted; columns at their default value are omitted.
    Insert(Row),
    /// A row deleted.
    Delete,
    /// A row modified: only changed columns, each holding the new value (columns holding at
    /// most one element) or a diff (sets: elements to toggle; maps: pairs to add, remove when
    /// the pair is present as is, or replace when the key is present with another value).
    Modify(Row),
}

/// `<table-updates2>`: table name to row UUID to change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableUpdates2 {
    /// The changes by table and row.
    pub tables: BTreeMap<String, BTreeMap<Uuid, RowUpdate2>>,
}

/// Parses `{<table>: {<uuid>: X}}`, handing each X to `row` with the table's column names.
fn parse_nested<T>(
    v: &Value,
    loc: &Loc<'_>,
    row: impl Fn(&Value, &Loc<'_>, &mut ColumnNames) -> Result<T, DecodeError>,
) -> Result<BTreeMap<String, BTreeMap<Uuid, T>>, DecodeError> {
    let mut tables = BTreeMap::new();
    for (table, rows) in loc.object(v)? {
        let tl = loc.key(table);
        let mut out = BTreeMap::new();
        let mut names = ColumnNames::default();
        for (uuid, u) in tl.object(rows)? {
            let ul = tl.key(uuid);
            let id: Uuid = uuid
                .parse()
                .map_err(|_| tl.error("row UUIDs as keys", &Value::String(uuid.clone())))?;
            out.insert(id, row(u, &ul, &mut names)?);
        }
        tables.insert(table.clone(), out);
    }
    Ok(tables)
}

fn emit_nested<T>(
    tables: &BTreeMap<String, BTreeMap<Uuid, T>>,
    row: impl Fn(&T) -> Value,
) -> Value {
    Value::Object(
        tables
            .iter()
            .map(|(t, rows)| {
                (
                    t.clone(),
                    Value::Object(rows.iter().map(|(u, r)| (u.to_string(), row(r))).collect()),
                )
            })
            .collect(),
    )
}

impl TableUpdates {
    /// Parses a `<table-updates>` object.
    pub fn from_json(v: &Value) -> Result<TableUpdates, DecodeError> {
        TableUpdates::from_json_at(v, &Loc::Root("table-updates"))
    }

    pub(crate) fn from_json_at(v: &Value, loc: &Loc<'_>) -> Result<TableUpdates, DecodeError> {
        let tables = parse_nested(v, loc, |u, l, names| {
            let o = l.object(u)?;
            let old = o.get("old").map(|r| row_from_json(r, &l.key("old"), names)).transpose()?;
            let new = o.get("new").map(|r| row_from_json(r, &l.key("new"), names)).transpose()?;
            if old.is_none() && new.is_none() {
                return Err(l.error("a row update with \"old\" or \"new\"", u));
            }
            Ok(RowUpdate { old, new })
        })?;
        Ok(TableUpdates { tables })
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        emit_nested(&self.tables, |u| {
            let mut o = Map::new();
            if let Some(r) = &u.old {
                o.insert("old".into(), row_to_json(r));
            }
            if let Some(r) = &u.new {
                o.insert("new".into(), row_to_json(r));
            }
            Value::Object(o)
        })
    }

    /// True if no row changed.
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty)
    }
}

impl TableUpdates2 {
    /// Parses a `<table-updates2>` object.
    pub fn from_json(v: &Value) -> Result<TableUpdates2, DecodeError> {
        TableUpdates2::from_json_at(v, &Loc::Root("table-updates2"))
    }

    pub(crate) fn from_json_at(v: &Value, loc: &Loc<'_>) -> Result<TableUpdates2, DecodeError> {
        let tables = parse_nested(v, loc, |u, l, names| {
            let o = l.object(u)?;
            let mut it = o.iter();
            let (Some((kind, row)), None) = (it.next(), it.next()) else {
                return Err(l.error("an object with exactly one member", u));
            };
            let rl = l.key(kind);
            Ok(match kind.as_str() {
                "initial" => RowUpdate2::Initial(row_from_json(row, &rl, names)?),
                "insert" => RowUpdate2::Insert(row_from_json(row, &rl, names)?),
                "modify" => RowUpdate2::Modify(row_from_json(row, &rl, names)?),
                "delete" => match row {
                    Value::Null => RowUpdate2::Delete,
                    Value::Object(m) if m.is_empty() => RowUpdate2::Delete,
                    _ => return Err(rl.error("null", row)),
                },
                _ => {
                    return Err(l.error("\"initial\", \"insert\", \"delete\" or \"modify\"", u));
                }
            })
        })?;
        Ok(TableUpdates2 { tables })
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        emit_nested(&self.tables, |u| {
            let (k, v) = match u {
                RowUpdate2::Initial(r) => ("initial", row_to_json(r)),
                RowUpdate2::Insert(r) => ("insert", row_to_json(r)),
                RowUpdate2::Delete => ("delete", Value::Null),
                RowUpdate2::Modify(r) => ("modify", row_to_json(r)),
            };
            Value::Object(Map::from_iter([(k.to_string(), v)]))
        })
    }

    /// True if no row changed.
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty)
    }

    /// Number of row updates over all tables.
    pub fn len(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovsdb::datum::Datum;
    use serde_json::json;

    const U1: &str = "a4dee483-b10d-4805-9d68-39aa5f73d7c1";

    #[test]
    fn rows_of_a_table_share_their_column_names() {
        let u2 = "a4dee483-b10d-4805-9d68-39aa5f73d7c2";
        let v = json!({
            "Port": {U1: {"initial": {"name": "a", "tag": 1}}, u2: {"insert": {"name": "b"}}},
            "Bridge": {U1: {"modify": {"name": "c"}}},
        });
        let u = TableUpdates2::from_json(&v).unwrap();
        let name = |table: &str, uuid: &str| match &u.tables[table][&uuid.parse().unwrap()] {
            RowUpdate2::Initial(r) | RowUpdate2::Insert(r) | RowUpdate2::Modify(r) => {
                r.get_key_value("name").unwrap().0.clone()
            }
            RowUpdate2::Delete => unreachable!(),
        };
        assert!(std::sync::Arc::ptr_eq(&name("Port", U1), &name("Port", u2)));
        assert!(!std::sync::Arc::ptr_eq(&name("Port", U1), &name("Bridge", U1)));
        assert_eq!(u.to_json(), v);

        // Past the names a table can share, rows still read every column.
        let many: serde_json::Map<String, Value> =
            (0..300).map(|i| (format!("c{i}"), json!(i))).collect();
        let v = json!({"T": {U1: {"initial": many}, u2: {"initial": many}}});
        let u = TableUpdates2::from_json(&v).unwrap();
        assert_eq!(u.to_json(), v);
    }

    #[test]
    fn update_round_trip() {
        let v = json!({"Bridge": {U1: {"old": {"name": "a"}, "new": {"name": "b", "ports": ["set", []]}}}});
        let u = TableUpdates::from_json(&v).unwrap();
        let ru = &u.tables["Bridge"][&U1.parse().unwrap()];
        assert_eq!(ru.old.as_ref().unwrap()["name"], Datum::atom("a"));
        assert_eq!(ru.new.as_ref().unwrap()["ports"], Datum::empty_set());
        assert_eq!(TableUpdates::from_json(&u.to_json()).unwrap(), u);
    }

    #[test]
    fn update2_forms() {
        let v = json!({"Interface": {
            U1: {"modify": {"external_ids": ["map", [["a", "1"]]]}},
            "00000000-0000-0000-0000-000000000001": {"delete": null},
            "00000000-0000-0000-0000-000000000002": {"insert": {"name": "x"}},
            "00000000-0000-0000-0000-000000000003": {"initial": {}},
        }});
        let u = TableUpdates2::from_json(&v).unwrap();
        assert_eq!(u.len(), 4);
        assert_eq!(u.tables["Interface"][&Uuid(1)], RowUpdate2::Delete);
        assert_eq!(u.to_json(), v);
    }

    #[test]
    fn malformed_updates_name_the_place() {
        let e = TableUpdates2::from_json(&json!({"T": {"nope": {"delete": null}}})).unwrap_err();
        assert!(e.to_string().starts_with("table-updates2.T: expected row UUIDs"), "{e}");
        let e = TableUpdates2::from_json(&json!({"T": {U1: {"insert": {}, "delete": null}}}))
            .unwrap_err();
        assert!(e.to_string().contains("exactly one member"), "{e}");
        let e = TableUpdates2::from_json(&json!({"T": {U1: {"upsert": {}}}})).unwrap_err();
        assert!(e.to_string().contains("\"modify\""), "{e}");
        let e = TableUpdates2::from_json(&json!({"T": {U1: {"insert": {"c": ["set", 1]}}}}))
            .unwrap_err();
        assert!(e.to_string().starts_with(&format!("table-updates2.T.{U1}.insert.c[1]")), "{e}");
        assert!(TableUpdates::from_json(&json!({"T": {U1: {}}})).is_err());
    }
}
