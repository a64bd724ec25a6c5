//! An in-memory replica of monitored tables, kept current from monitor replies and `update`,
//! `update2` and `update3` notifications with the semantics of RFC 7047 §4.1.6 and
//! ovsdb-server(7) §4.1.14.
//!
//! Every row holds every monitored column: columns an insert omits take their default value
//! (`update2` omits columns at their default). A `modify` in `update2` replaces the value of a
//! column holding at most one element; for sets it toggles the listed elements; for maps it adds
//! pairs whose key is absent, removes pairs present as given, and replaces the value of keys
//! present with another value. Each update is checked completely before anything changes, so
//! a malformed update leaves the replica as it was.

use std::collections::BTreeMap;

use super::datum::{Atom, ColumnName, Datum, Uuid};
use super::error::{Problem, ReplicaError};
use super::method::{CondSinceReply, MonitorRequest, MonitorRequests};
use super::replica_row::{position, Columns, ReplicaRow};
use super::row::Row;
use super::schema::{ColumnType, DatabaseSchema};
use super::update::{RowUpdate2, TableUpdates, TableUpdates2};

/// What happened to one row in an applied update.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The row is new.
    Inserted,
    /// Some columns changed.
    Modified {
        /// The changed columns, sorted.
        columns: Vec<ColumnName>,
        /// Their previous values.
        old: Row,
    },
    /// The row is gone; its last contents.
    Deleted {
        /// The row as it was.
        old: ReplicaRow,
    },
}

/// One row changed by an applied update.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// The table.
    pub table: String,
    /// The row.
    pub uuid: Uuid,
    /// What happened.
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq)]
struct TableReplica {
    /// The monitored columns in name order, shared by every row: a row holds a value for each,
    /// at the column's position here.
    columns: Columns,
    /// The type of each column, at its position.
    types: Vec<ColumnType>,
    /// The default value of each column, at its position: what an inserted row holds for the
    /// columns it omits.
    defaults: Vec<Datum>,
    rows: BTreeMap<Uuid, ReplicaRow>,
}

impl TableReplica {
    fn new(columns: BTreeMap<ColumnName, ColumnType>) -> TableReplica {
        let defaults = columns.values().map(ColumnType::default_datum).collect();
        let (columns, types): (Vec<_>, Vec<_>) = columns.into_iter().unzip();
        TableReplica { columns: columns.into(), types, defaults, rows: BTreeMap::new() }
    }

    /// The same columns, no rows.
    fn emptied(&self) -> TableReplica {
        TableReplica {
            columns: self.columns.clone(),
            types: self.types.clone(),
            defaults: self.defaults.clone(),
            rows: BTreeMap::new(),
        }
    }

    /// The position and type of a monitored column.
    fn column(&self, column: &str) -> Option<(usize, &ColumnType)> {
        let i = position(&self.columns, column)?;
        Some((i, self.types.get(i)?))
    }
}

/// Monitored tables: table name to row UUID to row.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    tables: BTreeMap<String, TableReplica>,
    last_txn_id: Option<Uuid>,
}

/// A change checked and computed, waiting to be committed.
enum Action {
    Insert(ReplicaRow),
    /// The new row and the positions of the columns whose value changed, ascending.
    Modify(ReplicaRow, Vec<usize>),
    Delete,
}

/// Checked changes by table.
type Staged = Vec<(String, Vec<(Uuid, Action)>)>;

fn err(table: &str, uuid: Option<Uuid>, column: Option<&str>, problem: Problem) -> ReplicaError {
    ReplicaError {
        table: table.to_string(),
        uuid,
        column: column.map(str::to_string),
        problem: Box::new(problem),
    }
}

/// Applies an `update2` diff to a composite (set or map) value.
fn apply_diff(old: &Datum, diff: Datum) -> Result<Datum, Problem> {
    match (old, diff) {
        (Datum::Set(a), Datum::Set(d)) => {
            // Symmetric difference of two sorted sets.
            let mut out = Vec::with_capacity(a.len() + d.len());
            let mut i = 0;
            for x in d {
                while i < a.len() && a[i] < x {
                    out.push(a[i].clone());
                    i += 1;
                }
                if i < a.len() && a[i] == x {
                    i += 1;
                } else {
                    out.push(x);
                }
            }
            out.extend_from_slice(&a[i..]);
            Ok(Datum::Set(out.into()))
        }
        (Datum::Map(a), Datum::Map(d)) => {
            // Absent key: add; same pair: remove; other value: replace.
            let mut out: Vec<(Atom, Atom)> = Vec::with_capacity(a.len() + d.len());
            let mut i = 0;
            for (k, v) in d {
                while i < a.len() && a[i].0 < k {
                    out.push(a[i].clone());
                    i += 1;
                }
                if i < a.len() && a[i].0 == k {
                    if a[i].1 != v {
                        out.push((k, v));
                    }
                    i += 1;
                } else {
                    out.push((k, v));
                }
            }
            out.extend_from_slice(&a[i..]);
            Ok(Datum::Map(out))
        }
        (Datum::Set(_), Datum::Map(_)) => Err(Problem::WrongKind { expected: "a set" }),
        (Datum::Map(_), Datum::Set(_)) => Err(Problem::WrongKind { expected: "a map" }),
    }
}

impl Replica {
    /// A replica of every table and column of the schema.
    pub fn new(schema: &DatabaseSchema) -> Replica {
        let tables = schema
            .tables
            .iter()
            .map(|(name, t)| {
                let columns =
                    t.columns.iter().map(|(c, s)| (ColumnName::from(c.as_str()), s.ty.clone()));
                (name.clone(), TableReplica::new(columns.collect()))
            })
            .collect();
        Replica { tables, last_txn_id: None }
    }

    /// A replica of some tables: each with the listed columns, or all columns when `None`.
    pub fn with_columns(
        schema: &DatabaseSchema,
        tables: &[(&str, Option<&[&str]>)],
    ) -> Result<Replica, ReplicaError> {
        let mut out = BTreeMap::new();
        for (name, cols) in tables {
            let t =
                schema.table(name).ok_or_else(|| err(name, None, None, Problem::NoSuchTable))?;
            let columns = match cols {
                None => t
                    .columns
                    .iter()
                    .map(|(c, s)| (ColumnName::from(c.as_str()), s.ty.clone()))
                    .collect(),
                Some(cols) => {
                    let mut m = BTreeMap::new();
                    for c in *cols {
                        let s = t
                            .columns
                            .get(*c)
                            .ok_or_else(|| err(name, None, Some(c), Problem::NoSuchColumn))?;
                        m.insert(ColumnName::from(*c), s.ty.clone());
                    }
                    m
                }
            };
            out.insert(name.to_string(), TableReplica::new(columns));
        }
        Ok(Replica { tables: out, last_txn_id: None })
    }

    /// The monitor requests that report exactly what this replica holds (all kinds of change),
    /// for `monitor`, `monitor_cond` or `monitor_cond_since`.
    pub fn monitor_requests(&self) -> MonitorRequests {
        self.tables
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    vec![MonitorRequest::columns(t.columns.iter().map(|c| c.to_string()))],
                )
            })
            .collect()
    }

    /// The rows of a table.
    pub fn table(&self, table: &str) -> Option<&BTreeMap<Uuid, ReplicaRow>> {
        self.tables.get(table).map(|t| &t.rows)
    }

    /// One row.
    pub fn row(&self, table: &str, uuid: Uuid) -> Option<&ReplicaRow> {
        self.tables.get(table)?.rows.get(&uuid)
    }

    /// Names of the replicated tables.
    pub fn table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// The monitored columns of a table.
    pub fn columns(&self, table: &str) -> Option<impl Iterator<Item = &str>> {
        self.tables.get(table).map(|t| t.columns.iter().map(|c| &**c))
    }

    /// The transaction id of the last `update3` or `monitor_cond_since` reply applied, to
    /// resume from after a reconnection.
    pub fn last_txn_id(&self) -> Option<Uuid> {
        self.last_txn_id
    }

    /// Removes every row (the columns stay).
    pub fn clear(&mut self) {
        for t in self.tables.values_mut() {
            t.rows.clear();
        }
    }

    fn table_of<'s>(&'s self, table: &str) -> Result<&'s TableReplica, ReplicaError> {
        self.tables.get(table).ok_or_else(|| err(table, None, None, Problem::NoSuchTable))
    }

    /// A complete row from the columns given, others at their defaults.
    fn full_row(
        t: &TableReplica,
        table: &str,
        uuid: Uuid,
        given: Row,
    ) -> Result<ReplicaRow, ReplicaError> {
        let mut given = given.into_iter().peekable();
        let mut values = Vec::with_capacity(t.columns.len());
        for ((name, ty), default) in t.columns.iter().zip(&t.types).zip(&t.defaults) {
            // Both are in name order: a given column is taken when the merge reaches its name,
            // and one the table lacks stops the merge at itself.
            match given.next_if(|(c, _)| c == name) {
                Some((col, d)) => {
                    let d = ty.coerce(d);
                    ty.check(&d, false).map_err(|p| err(table, Some(uuid), Some(&col), p))?;
                    values.push(d);
                }
                None => values.push(default.clone()),
            }
        }
        if let Some((col, _)) = given.next() {
            return Err(err(table, Some(uuid), Some(&col), Problem::NoSuchColumn));
        }
        Ok(ReplicaRow::from_parts(t.columns.clone(), values.into()))
    }

    /// The row after replacing (`diff` false) or diffing (`diff` true, update2) columns, and
    /// the positions of the columns whose value changed.
    fn modified_row(
        t: &TableReplica,
        table: &str,
        uuid: Uuid,
        old: &ReplicaRow,
        given: Row,
        diff: bool,
    ) -> Result<(ReplicaRow, Vec<usize>), ReplicaError> {
        let mut values: Box<[Datum]> = old.values().into();
        let mut changed = Vec::new();
        for (col, d) in given {
            let e = |p| err(table, Some(uuid), Some(&col), p);
            let (i, ty) = t.column(&col).ok_or_else(|| e(Problem::NoSuchColumn))?;
            let d = ty.coerce(d);
            let (cur, slot) = old
                .values()
                .get(i)
                .zip(values.get_mut(i))
                .ok_or_else(|| e(Problem::NoSuchColumn))?;
            let new = if diff && ty.is_composite() {
                ty.relaxed().check(&d, false).map_err(e)?;
                apply_diff(cur, d).map_err(e)?
            } else {
                d
            };
            ty.check(&new, false).map_err(e)?;
            if *cur != new {
                changed.push(i);
            }
            *slot = new;
        }
        Ok((ReplicaRow::from_parts(old.columns().clone(), values), changed))
    }

    fn stage2(&self, updates: TableUpdates2) -> Result<Staged, ReplicaError> {
        let mut staged = Vec::with_capacity(updates.tables.len());
        for (table, rows) in updates.tables {
            let t = self.table_of(&table)?;
            let mut actions = Vec::with_capacity(rows.len());
            for (uuid, u) in rows {
                let e = |p| Err(err(&table, Some(uuid), None, p));
                let action = match (u, t.rows.get(&uuid)) {
                    (RowUpdate2::Initial(r) | RowUpdate2::Insert(r), None) => {
                        Action::Insert(Self::full_row(t, &table, uuid, r)?)
                    }
                    (RowUpdate2::Modify(r), Some(old)) => {
                        let (row, changed) = Self::modified_row(t, &table, uuid, old, r, true)?;
                        Action::Modify(row, changed)
                    }
                    (RowUpdate2::Delete, Some(_)) => Action::Delete,
                    (RowUpdate2::Initial(_) | RowUpdate2::Insert(_), Some(_)) => {
                        return e(Problem::RowExists)
                    }
                    (RowUpdate2::Modify(_) | RowUpdate2::Delete, None) => {
                        return e(Problem::NoSuchRow)
                    }
                };
                actions.push((uuid, action));
            }
            staged.push((table, actions));
        }
        Ok(staged)
    }

    fn stage1(&self, updates: TableUpdates) -> Result<Staged, ReplicaError> {
        let mut staged = Vec::with_capacity(updates.tables.len());
        for (table, rows) in updates.tables {
            let t = self.table_of(&table)?;
            let mut actions = Vec::with_capacity(rows.len());
            for (uuid, u) in rows {
                let e = |p| Err(err(&table, Some(uuid), None, p));
                let action = match (u.old, u.new, t.rows.get(&uuid)) {
                    (None, Some(new), None) => {
                        Action::Insert(Self::full_row(t, &table, uuid, new)?)
                    }
                    (Some(_), Some(new), Some(old)) => {
                        let (row, changed) = Self::modified_row(t, &table, uuid, old, new, false)?;
                        Action::Modify(row, changed)
                    }
                    (Some(_), None, Some(_)) => Action::Delete,
                    (None, None, _) => return e(Problem::EmptyRowUpdate),
                    (None, Some(_), Some(_)) => return e(Problem::RowExists),
                    (Some(_), _, None) => return e(Problem::NoSuchRow),
                };
                actions.push((uuid, action));
            }
            staged.push((table, actions));
        }
        Ok(staged)
    }

    /// Commits checked changes; cannot fail. Reports the row changes when `report` is set.
    fn commit(&mut self, staged: Staged, report: bool) -> Vec<RowChange> {
        let mut changes = Vec::new();
        for (table, actions) in staged {
            let Some(t) = self.tables.get_mut(&table) else { continue };
            for (uuid, action) in actions {
                let kind = match action {
                    Action::Insert(row) => {
                        t.rows.insert(uuid, row);
                        ChangeKind::Inserted
                    }
                    Action::Modify(row, changed) => {
                        let Some(slot) = t.rows.get_mut(&uuid) else { continue };
                        let prev = std::mem::replace(slot, row);
                        if changed.is_empty() {
                            continue;
                        }
                        let names = prev.columns().clone();
                        let mut values = prev.into_values();
                        let mut columns = Vec::with_capacity(changed.len());
                        let mut old = Row::with_capacity(changed.len());
                        for i in changed {
                            if let (Some(c), Some(d)) = (names.get(i), values.get_mut(i)) {
                                columns.push(c.clone());
                                old.insert(c.clone(), std::mem::replace(d, Datum::empty_set()));
                            }
                        }
                        ChangeKind::Modified { columns, old }
                    }
                    Action::Delete => match t.rows.remove(&uuid) {
                        Some(old) => ChangeKind::Deleted { old },
                        None => continue,
                    },
                };
                if report {
                    changes.push(RowChange { table: table.clone(), uuid, kind });
                }
            }
        }
        changes
    }

    /// Applies an `update` notification (RFC 7047 §4.1.6).
    pub fn apply_update(&mut self, updates: TableUpdates) -> Result<Vec<RowChange>, ReplicaError> {
        let staged = self.stage1(updates)?;
        Ok(self.commit(staged, true))
    }

    /// Applies an `update2` notification.
    pub fn apply_update2(
        &mut self,
        updates: TableUpdates2,
    ) -> Result<Vec<RowChange>, ReplicaError> {
        let staged = self.stage2(updates)?;
        Ok(self.commit(staged, true))
    }

    /// Applies an `update3` notification and remembers its transaction id.
    pub fn apply_update3(
        &mut self,
        last_txn_id: Uuid,
        updates: TableUpdates2,
    ) -> Result<Vec<RowChange>, ReplicaError> {
        let changes = self.apply_update2(updates)?;
        self.last_txn_id = Some(last_txn_id);
        Ok(changes)
    }

    /// Replaces the contents with a `monitor_cond` (or `monitor_cond_since`, not found) reply,
    /// reporting the difference from what was held before (useful after a reconnection).
    pub fn reset(&mut self, updates: TableUpdates2) -> Result<Vec<RowChange>, ReplicaError> {
        let mut fresh = self.emptied();
        // On an empty replica only inserts can be staged: a modify or delete is refused.
        let staged = fresh.stage2(updates)?;
        fresh.commit(staged, false);
        Ok(self.replace_with(fresh))
    }

    /// Replaces the contents with a `monitor_cond` reply as [`Replica::reset`] does, without
    /// working out the difference: for a caller that takes the whole new state.
    pub fn load(&mut self, updates: TableUpdates2) -> Result<(), ReplicaError> {
        let mut fresh = self.emptied();
        // On an empty replica only inserts can be staged, each table once and in uuid order:
        // every table is built in one go.
        let staged = fresh.stage2(updates)?;
        for (table, actions) in staged {
            let Some(t) = fresh.tables.get_mut(&table) else { continue };
            t.rows = actions
                .into_iter()
                .filter_map(|(uuid, action)| match action {
                    Action::Insert(row) => Some((uuid, row)),
                    Action::Modify(..) | Action::Delete => None,
                })
                .collect();
        }
        *self = fresh;
        Ok(())
    }

    /// Replaces the contents with a `monitor` reply, reporting the difference.
    pub fn reset_from_update(
        &mut self,
        updates: TableUpdates,
    ) -> Result<Vec<RowChange>, ReplicaError> {
        let mut fresh = self.emptied();
        let staged = fresh.stage1(updates)?;
        fresh.commit(staged, false);
        Ok(self.replace_with(fresh))
    }

    /// Applies a `monitor_cond_since` reply: changes on top when the server found our last
    /// transaction, otherwise a fresh start.
    pub fn apply_cond_since_reply(
        &mut self,
        reply: CondSinceReply,
    ) -> Result<Vec<RowChange>, ReplicaError> {
        let changes = if reply.found {
            self.apply_update2(reply.updates)?
        } else {
            self.reset(reply.updates)?
        };
        self.last_txn_id = Some(reply.last_txn_id);
        Ok(changes)
    }

    fn emptied(&self) -> Replica {
        let tables = self.tables.iter().map(|(n, t)| (n.clone(), t.emptied())).collect();
        Replica { tables, last_txn_id: self.last_txn_id }
    }

    /// Swaps in `fresh` and reports what differs from the old contents.
    fn replace_with(&mut self, fresh: Replica) -> Vec<RowChange> {
        let old = std::mem::replace(self, fresh);
        let mut changes = Vec::new();
        for (name, t) in &self.tables {
            let before = old.tables.get(name).map(|t| &t.rows);
            for (uuid, row) in &t.rows {
                match before.and_then(|b| b.get(uuid)) {
                    None => changes.push(RowChange {
                        table: name.clone(),
                        uuid: *uuid,
                        kind: ChangeKind::Inserted,
                    }),
                    Some(prev) => {
                        let columns: Vec<ColumnName> = row
                            .iter()
                            .filter(|(c, d)| prev.get(c) != Some(d))
                            .map(|(c, _)| c.clone())
                            .collect();
                        if !columns.is_empty() {
                            let old = columns
                                .iter()
                                .filter_map(|c| Some((c.clone(), prev.get(c)?.clone())))
                                .collect();
                            changes.push(RowChange {
                                table: name.clone(),
                                uuid: *uuid,
                                kind: ChangeKind::Modified { columns, old },
                            });
                        }
                    }
                }
            }
            for (uuid, prev) in before.into_iter().flatten() {
                if !t.rows.contains_key(uuid) {
                    changes.push(RowChange {
                        table: name.clone(),
                        uuid: *uuid,
                        kind: ChangeKind::Deleted { old: prev.clone() },
                    });
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(&json!({"name": "t", "tables": {"T": {"columns": {
            "i": {"type": "integer"},
            "o": {"type": {"key": "string", "min": 0, "max": 1}},
            "s": {"type": {"key": "integer", "min": 0, "max": "unlimited"}},
            "m": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
            "r": {"type": "real"},
            "two": {"type": {"key": "string", "min": 1, "max": 2}}
        }}}}))
        .unwrap()
    }

    fn u2(v: serde_json::Value) -> TableUpdates2 {
        TableUpdates2::from_json(&v).unwrap()
    }

    const A: &str = "00000000-0000-0000-0000-00000000000a";

    fn with_row() -> Replica {
        let mut r = Replica::new(&schema());
        let ch = r
            .apply_update2(u2(json!({"T": {A: {"insert": {"i": 1, "s": ["set", [1, 2]], "m": ["map", [["a", "1"], ["b", "2"]]], "two": "x"}}}})))
            .unwrap();
        assert_eq!(
            ch,
            vec![RowChange { table: "T".into(), uuid: Uuid(10), kind: ChangeKind::Inserted }]
        );
        r
    }

    #[test]
    fn insert_fills_defaults_and_coerces_reals() {
        let r = with_row();
        let row = r.row("T", Uuid(10)).unwrap();
        assert_eq!(row["o"], Datum::empty_set());
        assert_eq!(row["r"], Datum::atom(Atom::Real(0.0)));
        assert_eq!(row["i"], Datum::atom(1));
        let mut r = Replica::new(&schema());
        r.apply_update2(u2(json!({"T": {A: {"initial": {"r": 2, "two": "y"}}}}))).unwrap();
        assert_eq!(r.row("T", Uuid(10)).unwrap()["r"], Datum::atom(Atom::Real(2.0)));
    }

    #[test]
    fn modify_diffs_sets_maps_and_scalars() {
        let mut r = with_row();
        let ch = r
            .apply_update2(u2(json!({"T": {A: {"modify": {
                "i": 5,
                "o": "now",
                "s": ["set", [2, 3]],
                "m": ["map", [["a", "1"], ["b", "3"], ["c", "4"]]],
                "two": "y"
            }}}})))
            .unwrap();
        let row = r.row("T", Uuid(10)).unwrap();
        assert_eq!(row["i"], Datum::atom(5));
        assert_eq!(row["o"], Datum::atom("now"));
        assert_eq!(row["s"], Datum::set([1, 3]));
        assert_eq!(row["m"], Datum::map([("b", "3"), ("c", "4")]));
        assert_eq!(row["two"], Datum::set(["x", "y"]));
        let ChangeKind::Modified { columns, old } = &ch[0].kind else { panic!("{ch:?}") };
        assert_eq!(columns.iter().map(|c| &**c).collect::<Vec<_>>(), ["i", "m", "o", "s", "two"]);
        assert_eq!(old["s"], Datum::set([1, 2]));
        // An optional column is replaced, not toggled: the empty set clears it.
        r.apply_update2(u2(json!({"T": {A: {"modify": {"o": ["set", []]}}}}))).unwrap();
        assert_eq!(r.row("T", Uuid(10)).unwrap()["o"], Datum::empty_set());
    }

    #[test]
    fn malformed_updates_leave_the_replica_unchanged() {
        let r0 = with_row();
        let bad = [
            json!({"T": {A: {"insert": {}}}}),
            json!({"T": {"00000000-0000-0000-0000-000000000001": {"delete": null}}}),
            json!({"T": {"00000000-0000-0000-0000-000000000001": {"insert": {"two": "a"}}, A: {"modify": {"i": "x"}}}}),
            json!({"T": {A: {"modify": {"nope": 1}}}}),
            json!({"T": {A: {"modify": {"two": ["set", ["y", "z"]]}}}}),
            json!({"T": {A: {"modify": {"m": ["set", ["a"]]}}}}),
            json!({"U": {A: {"delete": null}}}),
            json!({"T": {A: {"modify": {"two": "x"}}}}),
        ];
        for b in bad {
            let mut r = r0.clone();
            let e = r.apply_update2(u2(b.clone())).unwrap_err();
            assert_eq!(r, r0, "{b} -> {e}");
        }
        let mut r = r0.clone();
        let e = r
            .apply_update2(u2(json!({"T": {A: {"modify": {"two": ["set", ["y", "z"]]}}}})))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "table T, row 00000000-0000-0000-0000-00000000000a, column two: 3 elements, but the column takes 1 to 2"
        );
    }

    #[test]
    fn update_v1_insert_modify_delete() {
        let mut r = Replica::with_columns(&schema(), &[("T", Some(&["i", "m"]))]).unwrap();
        assert_eq!(
            r.monitor_requests()["T"][0].columns.as_deref(),
            Some(&["i".to_string(), "m".to_string()][..])
        );
        let u = |v| TableUpdates::from_json(&v).unwrap();
        r.apply_update(u(json!({"T": {A: {"new": {"i": 1, "m": ["map", []]}}}}))).unwrap();
        let ch = r
            .apply_update(u(
                json!({"T": {A: {"old": {"i": 1}, "new": {"i": 2, "m": ["map", []]}}}}),
            ))
            .unwrap();
        assert_eq!(
            ch[0].kind,
            ChangeKind::Modified {
                columns: vec!["i".into()],
                old: Row::from([("i".into(), Datum::atom(1))])
            }
        );
        assert!(r.apply_update(u(json!({"T": {A: {"new": {"o": "x"}, "old": {}}}}))).is_err());
        let ch = r.apply_update(u(json!({"T": {A: {"old": {"i": 2, "m": ["map", []]}}}}))).unwrap();
        assert!(matches!(&ch[0].kind, ChangeKind::Deleted { old } if old["i"] == Datum::atom(2)));
        assert!(r.table("T").unwrap().is_empty());
        assert!(Replica::with_columns(&schema(), &[("T", Some(&["zz"]))]).is_err());
    }

    #[test]
    fn rows_share_their_tables_column_names() {
        let r = with_row();
        let b = "00000000-0000-0000-0000-00000000000b";
        let mut two = r.clone();
        two.apply_update2(u2(json!({"T": {b: {"insert": {"two": "q"}}}}))).unwrap();
        let (x, y) = (two.row("T", Uuid(10)).unwrap(), two.row("T", Uuid(11)).unwrap());
        assert!(std::sync::Arc::ptr_eq(x.columns(), y.columns()));
        assert!(x.columns().iter().map(|c| &**c).eq(two.columns("T").unwrap()));
    }

    #[test]
    fn an_unknown_column_is_named_wherever_it_sorts() {
        for col in ["a", "j", "zz"] {
            let mut r = with_row();
            let before = r.clone();
            let b = "00000000-0000-0000-0000-00000000000b";
            let e = r
                .apply_update2(u2(json!({"T": {b: {"insert": {"i": 2, col: 1, "two": "x"}}}})))
                .unwrap_err();
            assert_eq!(e.column.as_deref(), Some(col), "{e}");
            assert_eq!(r, before);
            let e = r.load(u2(json!({"T": {b: {"initial": {col: 1}}}}))).unwrap_err();
            assert_eq!(e.column.as_deref(), Some(col), "{e}");
        }
    }

    #[test]
    fn load_holds_what_reset_holds_and_refuses_what_reset_refuses() {
        let b = "00000000-0000-0000-0000-00000000000b";
        let full = || u2(json!({"T": {b: {"initial": {"two": "q", "i": 3}}}}));
        let (mut loaded, mut reset) = (with_row(), with_row());
        loaded.load(full()).unwrap();
        reset.reset(full()).unwrap();
        assert_eq!(loaded, reset);
        let row = loaded.row("T", Uuid(11)).unwrap();
        assert_eq!((&row["i"], &row["o"]), (&Datum::atom(3), &Datum::empty_set()));
        let err = loaded.load(u2(json!({"T": {b: {"initial": {"zz": 1}}}}))).unwrap_err();
        assert!(err.to_string().contains("zz"), "{err}");
        assert_eq!(loaded, reset, "a refused load changes nothing");
    }

    #[test]
    fn reset_reports_the_difference() {
        let mut r = with_row();
        let b = "00000000-0000-0000-0000-00000000000b";
        let ch = r.reset(u2(json!({"T": {b: {"initial": {"two": "q"}}}}))).unwrap();
        assert_eq!(ch.len(), 2);
        assert!(ch.iter().any(|c| c.uuid == Uuid(11) && c.kind == ChangeKind::Inserted));
        assert!(ch
            .iter()
            .any(|c| c.uuid == Uuid(10) && matches!(c.kind, ChangeKind::Deleted { .. })));
        assert!(r.reset(u2(json!({"T": {b: {"modify": {}}}}))).is_err());
        let reply = CondSinceReply {
            found: true,
            last_txn_id: Uuid(7),
            updates: u2(json!({"T": {b: {"delete": null}}})),
        };
        r.apply_cond_since_reply(reply).unwrap();
        assert_eq!(r.last_txn_id(), Some(Uuid(7)));
        assert!(r.table("T").unwrap().is_empty());
    }
}
