//! Database operations (RFC 7047 §5.2), their results, and [`validate`], which checks a
//! transaction against the schema before it is sent.
//!
//! ```text
//! insert  {"op": "insert", "table": <table>, "row": <row>, "uuid-name": <id>?}
//! select  {"op": "select", "table": <table>, "where": [<condition>*], "columns": [<column>*]?}
//! update  {"op": "update", "table": <table>, "where": [<condition>*], "row": <row>}
//! mutate  {"op": "mutate", "table": <table>, "where": [<condition>*], "mutations": [<mutation>*]}
//! delete  {"op": "delete", "table": <table>, "where": [<condition>*]}
//! wait    {"op": "wait", "timeout": <integer>?, "table": <table>, "where": [<condition>*],
//!          "columns": [<column>*], "until": "==" | "!=", "rows": [<row>*]}
//! commit  {"op": "commit", "durable": <boolean>}
//! abort   {"op": "abort"}
//! comment {"op": "comment", "comment": <string>}
//! assert  {"op": "assert", "lock": <id>}
//! <condition> [<column>, <function>, <value>]     <mutation> [<column>, <mutator>, <value>]
//! ```

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::datum::{is_id, row_from_json, row_to_json, Atom, AtomicType, ColumnNames, Datum, Uuid};
use super::error::{DecodeError, Loc, Problem, ValidationError};
use super::row::Row;
use super::schema::{ColumnType, DatabaseSchema, MaxCount, TableSchema};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }

            /// Parses the wire spelling.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$var),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// A condition's comparison function (RFC 7047 §5.1).
    Function {
        /// `<`
        Lt = "<",
        /// `<=`
        Le = "<=",
        /// `==`
        Eq = "==",
        /// `!=`
        Ne = "!=",
        /// `>=`
        Ge = ">=",
        /// `>`
        Gt = ">",
        /// `includes`: the column holds every element of the value.
        Includes = "includes",
        /// `excludes`: the column holds no element of the value.
        Excludes = "excludes",
    }
);

string_enum!(
    /// A mutation's mutator (RFC 7047 §5.1).
    Mutator {
        /// `+=`
        Add = "+=",
        /// `-=`
        Sub = "-=",
        /// `*=`
        Mul = "*=",
        /// `/=`
        Div = "/=",
        /// `%=`
        Mod = "%=",
        /// `insert` elements or pairs.
        Insert = "insert",
        /// `delete` elements, pairs, or (maps) keys.
        Delete = "delete",
    }
);

string_enum!(
    /// What a `wait` waits for.
    WaitUntil {
        /// Until the selected rows equal `rows`.
        Eq = "==",
        /// Until they differ.
        Ne = "!=",
    }
);

/// `[column, function, value]`: selects rows in `where` clauses.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The column compared.
    pub column: String,
    /// The comparison.
    pub function: Function,
    /// The value compared with.
    pub value: Datum,
}

/// `[column, mutator, value]`: changes a column in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The column changed.
    pub column: String,
    /// The change.
    pub mutator: Mutator,
    /// The operand.
    pub value: Datum,
}

impl Condition {
    /// A condition.
    pub fn new(column: impl Into<String>, function: Function, value: impl Into<Datum>) -> Self {
        Condition { column: column.into(), function, value: value.into() }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        Value::Array(vec![
            self.column.clone().into(),
            self.function.as_str().into(),
            self.value.to_json(),
        ])
    }

    pub(crate) fn from_json_at(v: &Value, loc: &Loc<'_>) -> Result<Condition, DecodeError> {
        let (column, f, value) = triple(v, loc, "a condition [column, function, value]")?;
        let function = Function::from_name(f).ok_or_else(|| {
            loc.index(1).error("<, <=, ==, !=, >=, >, includes or excludes", &v[1])
        })?;
        Ok(Condition { column, function, value })
    }
}

impl Mutation {
    /// A mutation.
    pub fn new(column: impl Into<String>, mutator: Mutator, value: impl Into<Datum>) -> Self {
        Mutation { column: column.into(), mutator, value: value.into() }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        Value::Array(vec![
            self.column.clone().into(),
            self.mutator.as_str().into(),
            self.value.to_json(),
        ])
    }

    pub(crate) fn from_json_at(v: &Value, loc: &Loc<'_>) -> Result<Mutation, DecodeError> {
        let (column, m, value) = triple(v, loc, "a mutation [column, mutator, value]")?;
        let mutator = Mutator::from_name(m)
            .ok_or_else(|| loc.index(1).error("+=, -=, *=, /=, %=, insert or delete", &v[1]))?;
        Ok(Mutation { column, mutator, value })
    }
}

fn triple<'a>(
    v: &'a Value,
    loc: &Loc<'_>,
    what: &'static str,
) -> Result<(String, &'a str, Datum), DecodeError> {
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(c), Value::String(f), d]) => {
            Ok((c.clone(), f.as_str(), Datum::from_json_at(d, &loc.index(2))?))
        }
        _ => Err(loc.error(what, v)),
    }
}

/// One operation of a `transact` request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Operation {
    /// Inserts a row; `uuid_name` names it for references later in the transaction.
    Insert {
        /// The table.
        table: String,
        /// Column values (others take their defaults).
        row: Row,
        /// Name for `["named-uuid", name]` references.
        uuid_name: Option<String>,
    },
    /// Reads rows.
    Select {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
        /// Which columns (all when `None`).
        columns: Option<Vec<String>>,
    },
    /// Sets columns of the matching rows.
    Update {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
        /// New values.
        row: Row,
    },
    /// Changes columns of the matching rows in place.
    Mutate {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
        /// The changes.
        mutations: Vec<Mutation>,
    },
    /// Deletes the matching rows.
    Delete {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
    },
    /// Waits until the selected rows' `columns` equal (or differ from) `rows`.
    Wait {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
        /// The columns compared.
        columns: Vec<String>,
        /// `==` or `!=`.
        until: WaitUntil,
        /// The expected rows (only `columns`).
        rows: Vec<Row>,
        /// Milliseconds before the wait fails (forever when `None`).
        timeout: Option<u64>,
    },
    /// Asks for the transaction to be durable on disk before the reply.
    Commit {
        /// Wait for the disk.
        durable: bool,
    },
    /// Aborts the transaction.
    Abort,
    /// Adds a comment to the database log.
    Comment {
        /// The text.
        comment: String,
    },
    /// Fails the transaction unless this client holds the lock.
    Assert {
        /// The lock name.
        lock: String,
    },
}

impl Operation {
    /// The `op` name.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Insert { .. } => "insert",
            Operation::Select { .. } => "select",
            Operation::Update { .. } => "update",
            Operation::Mutate { .. } => "mutate",
            Operation::Delete { .. } => "delete",
            Operation::Wait { .. } => "wait",
            Operation::Commit { .. } => "commit",
            Operation::Abort => "abort",
            Operation::Comment { .. } => "comment",
            Operation::Assert { .. } => "assert",
        }
    }

    /// The table the operation names, if any.
    pub fn table(&self) -> Option<&str> {
        match self {
            Operation::Insert { table, .. }
            | Operation::Select { table, .. }
            | Operation::Update { table, .. }
            | Operation::Mutate { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Wait { table, .. } => Some(table),
            _ => None,
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("op".into(), self.name().into());
        if let Some(t) = self.table() {
            o.insert("table".into(), t.into());
        }
        let conds = |c: &[Condition]| Value::Array(c.iter().map(Condition::to_json).collect());
        let strings =
            |c: &[String]| Value::Array(c.iter().map(|s| Value::from(s.as_str())).collect());
        match self {
            Operation::Insert { row, uuid_name, .. } => {
                o.insert("row".into(), row_to_json(row));
                if let Some(n) = uuid_name {
                    o.insert("uuid-name".into(), n.clone().into());
                }
            }
            Operation::Select { conditions, columns, .. } => {
                o.insert("where".into(), conds(conditions));
                if let Some(c) = columns {
                    o.insert("columns".into(), strings(c));
                }
            }
            Operation::Update { conditions, row, .. } => {
                o.insert("where".into(), conds(conditions));
                o.insert("row".into(), row_to_json(row));
            }
            Operation::Mutate { conditions, mutations, .. } => {
                o.insert("where".into(), conds(conditions));
                o.insert(
                    "mutations".into(),
                    Value::Array(mutations.iter().map(Mutation::to_json).collect()),
                );
            }
            Operation::Delete { conditions, .. } => {
                o.insert("where".into(), conds(conditions));
            }
            Operation::Wait { conditions, columns, until, rows, timeout, .. } => {
                if let Some(t) = timeout {
                    o.insert("timeout".into(), (*t).into());
                }
                o.insert("where".into(), conds(conditions));
                o.insert("columns".into(), strings(columns));
                o.insert("until".into(), until.as_str().into());
                o.insert("rows".into(), Value::Array(rows.iter().map(row_to_json).collect()));
            }
            Operation::Commit { durable } => {
                o.insert("durable".into(), (*durable).into());
            }
            Operation::Abort => {}
            Operation::Comment { comment } => {
                o.insert("comment".into(), comment.clone().into());
            }
            Operation::Assert { lock } => {
                o.insert("lock".into(), lock.clone().into());
            }
        }
        Value::Object(o)
    }

    /// Parses an operation.
    pub fn from_json(v: &Value) -> Result<Operation, DecodeError> {
        Operation::from_json_at(v, &Loc::Root("operation"))
    }

    pub(crate) fn from_json_at(v: &Value, loc: &Loc<'_>) -> Result<Operation, DecodeError> {
        let o = loc.object(v)?;
        let get = |k: &str| o.get(k).ok_or_else(|| loc.missing(k));
        let op = loc.key("op").string(get("op")?)?;
        let table = || Ok::<_, DecodeError>(loc.key("table").string(get("table")?)?.to_string());
        let conditions = || {
            let wl = loc.key("where");
            let mut out = Vec::new();
            for (i, c) in wl.array(get("where")?)?.iter().enumerate() {
                out.push(Condition::from_json_at(c, &wl.index(i))?);
            }
            Ok::<_, DecodeError>(out)
        };
        let row = || row_from_json(get("row")?, &loc.key("row"), &mut ColumnNames::default());
        Ok(match op {
            "insert" => Operation::Insert {
                table: table()?,
                row: row()?,
                uuid_name: o
                    .get("uuid-name")
                    .map(|n| loc.key("uuid-name").string(n).map(str::to_string))
                    .transpose()?,
            },
            "select" => Operation::Select {
                table: table()?,
                conditions: conditions()?,
                columns: o.get("columns").map(|c| loc.key("columns").strings(c)).transpose()?,
            },
            "update" => {
                Operation::Update { table: table()?, conditions: conditions()?, row: row()? }
            }
            "mutate" => {
                let ml = loc.key("mutations");
                let mut mutations = Vec::new();
                for (i, m) in ml.array(get("mutations")?)?.iter().enumerate() {
                    mutations.push(Mutation::from_json_at(m, &ml.index(i))?);
                }
                Operation::Mutate { table: table()?, conditions: conditions()?, mutations }
            }
            "delete" => Operation::Delete { table: table()?, conditions: conditions()? },
            "wait" => {
                let ul = loc.key("until");
                let u = get("until")?;
                let until =
                    WaitUntil::from_name(ul.string(u)?).ok_or_else(|| ul.error("== or !=", u))?;
                let rl = loc.key("rows");
                let (mut rows, mut names) = (Vec::new(), ColumnNames::default());
                for (i, r) in rl.array(get("rows")?)?.iter().enumerate() {
                    rows.push(row_from_json(r, &rl.index(i), &mut names)?);
                }
                Operation::Wait {
                    table: table()?,
                    conditions: conditions()?,
                    columns: loc.key("columns").strings(get("columns")?)?,
                    until,
                    rows,
                    timeout: o
                        .get("timeout")
                        .map(|t| loc.key("timeout").unsigned(t))
                        .transpose()?,
                }
            }
            "commit" => Operation::Commit { durable: loc.key("durable").boolean(get("durable")?)? },
            "abort" => Operation::Abort,
            "comment" => Operation::Comment {
                comment: loc.key("comment").string(get("comment")?)?.to_string(),
            },
            "assert" => {
                Operation::Assert { lock: loc.key("lock").string(get("lock")?)?.to_string() }
            }
            _ => return Err(loc.key("op").error(
                "insert, select, update, mutate, delete, wait, commit, abort, comment or assert",
                &Value::from(op),
            )),
        })
    }
}

/// An error reported by the server for an operation or a transaction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}{}", details.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct OvsdbOpError {
    /// The error kind, e.g. `constraint violation`, `referential integrity violation`.
    pub error: String,
    /// Human-readable details, if given.
    pub details: Option<String>,
}

/// The result of one operation in a `transact` reply.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OpResult {
    /// `insert`: the new row's UUID.
    Insert(Uuid),
    /// `select`: the rows.
    Select(Vec<Row>),
    /// `update`, `mutate`, `delete`: number of rows matched.
    Count(u64),
    /// `wait`, `commit`, `comment`, `assert`, `abort`: an empty object.
    Empty,
    /// The operation failed.
    Error(OvsdbOpError),
    /// `null`: not executed because an earlier operation failed.
    NotExecuted,
}

impl OpResult {
    fn from_json_at(v: &Value, loc: &Loc<'_>) -> Result<OpResult, DecodeError> {
        if v.is_null() {
            return Ok(OpResult::NotExecuted);
        }
        let o = loc.object(v)?;
        if let Some(e) = o.get("error") {
            let error = loc.key("error").string(e)?.to_string();
            let details = o.get("details").and_then(Value::as_str).map(str::to_string);
            return Ok(OpResult::Error(OvsdbOpError { error, details }));
        }
        if let Some(u) = o.get("uuid") {
            let ul = loc.key("uuid");
            return match Atom::from_json_at(u, &ul)? {
                Atom::Uuid(id) => Ok(OpResult::Insert(id)),
                _ => Err(ul.error("a [\"uuid\", ...]", u)),
            };
        }
        if let Some(r) = o.get("rows") {
            let rl = loc.key("rows");
            let (mut rows, mut names) = (Vec::new(), ColumnNames::default());
            for (i, row) in rl.array(r)?.iter().enumerate() {
                rows.push(row_from_json(row, &rl.index(i), &mut names)?);
            }
            return Ok(OpResult::Select(rows));
        }
        if let Some(c) = o.get("count") {
            return Ok(OpResult::Count(loc.key("count").unsigned(c)?));
        }
        Ok(OpResult::Empty)
    }
}

/// The result of `transact`: one result per operation, plus a trailing error when the whole
/// transaction failed after its operations (e.g. at commit, for referential integrity).
#[derive(Debug, Clone, PartialEq)]
pub struct TransactReply {
    /// The results in order.
    pub results: Vec<OpResult>,
}

impl TransactReply {
    /// Parses the `result` array of a `transact` response.
    pub fn from_json(v: &Value) -> Result<TransactReply, DecodeError> {
        let loc = Loc::Root("transact");
        let mut results = Vec::new();
        for (i, r) in loc.array(v)?.iter().enumerate() {
            results.push(OpResult::from_json_at(r, &loc.index(i))?);
        }
        Ok(TransactReply { results })
    }

    /// The first error and the index of the operation that caused it (an index equal to the
    /// number of operations means the transaction as a whole failed).
    pub fn error(&self) -> Option<(usize, &OvsdbOpError)> {
        self.results.iter().enumerate().find_map(|(i, r)| match r {
            OpResult::Error(e) => Some((i, e)),
            _ => None,
        })
    }

    /// The UUID of the row inserted by operation `i`.
    pub fn inserted(&self, i: usize) -> Option<Uuid> {
        match self.results.get(i) {
            Some(OpResult::Insert(u)) => Some(*u),
            _ => None,
        }
    }
}

/// Checks a transaction against the schema before it is sent: tables and columns exist, values
/// have the right types, enums, ranges, lengths and set sizes, updated and mutated columns are
/// mutable, conditions and mutators suit the column, and every named-uuid is defined once.
/// Row existence and references to existing rows can only be checked by the server.
pub fn validate(schema: &DatabaseSchema, ops: &[Operation]) -> Result<(), ValidationError> {
    let mut names = BTreeSet::new();
    for (i, op) in ops.iter().enumerate() {
        if let Operation::Insert { uuid_name: Some(n), table, .. } = op {
            if !is_id(n) || !names.insert(n.as_str()) {
                return Err(ValidationError {
                    op: i,
                    op_name: "insert",
                    table: table.clone(),
                    column: None,
                    value: Some(n.clone().into()),
                    problem: Box::new(Problem::BadUuidName(n.clone())),
                });
            }
        }
    }
    for (i, op) in ops.iter().enumerate() {
        Checker { schema, op: i, op_name: op.name(), names: &names }.operation(op)?;
    }
    Ok(())
}

struct Checker<'a> {
    schema: &'a DatabaseSchema,
    op: usize,
    op_name: &'static str,
    names: &'a BTreeSet<&'a str>,
}

impl<'a> Checker<'a> {
    fn err(
        &self,
        table: &str,
        column: Option<&str>,
        value: Option<&Datum>,
        problem: Problem,
    ) -> ValidationError {
        ValidationError {
            op: self.op,
            op_name: self.op_name,
            table: table.to_string(),
            column: column.map(str::to_string),
            value: value.map(Datum::to_json),
            problem: Box::new(problem),
        }
    }

    fn table(&self, table: &str) -> Result<&'a TableSchema, ValidationError> {
        self.schema.table(table).ok_or_else(|| self.err(table, None, None, Problem::NoSuchTable))
    }

    fn column(
        &self,
        t: &'a TableSchema,
        table: &str,
        column: &str,
    ) -> Result<&'a ColumnType, ValidationError> {
        t.column(column)
            .map(|c| &c.ty)
            .ok_or_else(|| self.err(table, Some(column), None, Problem::NoSuchColumn))
    }

    /// Checks a value for a column of type `ty`, including that named UUIDs are defined.
    fn value(
        &self,
        table: &str,
        column: &str,
        ty: &ColumnType,
        d: &Datum,
    ) -> Result<(), ValidationError> {
        let d2 = ty.coerce(d.clone());
        ty.check(&d2, true).map_err(|p| self.err(table, Some(column), Some(d), p))?;
        let atoms: Box<dyn Iterator<Item = &Atom>> = match d {
            Datum::Set(v) => Box::new(v.iter()),
            Datum::Map(m) => Box::new(m.iter().flat_map(|(k, v)| [k, v])),
        };
        for a in atoms {
            if let Atom::NamedUuid(n) = a {
                if !self.names.contains(n.as_str()) {
                    return Err(self.err(
                        table,
                        Some(column),
                        Some(d),
                        Problem::UndefinedNamedUuid(n.clone()),
                    ));
                }
            }
        }
        Ok(())
    }

    fn row(
        &self,
        t: &'a TableSchema,
        table: &str,
        row: &Row,
        writing: bool,
    ) -> Result<(), ValidationError> {
        for (column, d) in row {
            let c = t.columns.get(&**column);
            if writing && c.is_none() && t.column(column).is_some() {
                return Err(self.err(table, Some(column), Some(d), Problem::ReadOnly));
            }
            let ty = self.column(t, table, column)?;
            if writing && self.op_name == "update" && c.is_some_and(|c| !c.mutable) {
                return Err(self.err(table, Some(column), Some(d), Problem::NotMutable));
            }
            self.value(table, column, ty, d)?;
        }
        Ok(())
    }

    fn conditions(
        &self,
        t: &'a TableSchema,
        table: &str,
        conds: &[Condition],
    ) -> Result<(), ValidationError> {
        for c in conds {
            let ty = self.column(t, table, &c.column)?;
            let bad = |s: &Self| {
                s.err(
                    table,
                    Some(&c.column),
                    Some(&c.value),
                    Problem::BadFunction { function: c.function.as_str() },
                )
            };
            let check_ty = match c.function {
                Function::Lt | Function::Le | Function::Gt | Function::Ge => {
                    // RFC 7047 allows ordering on integer and real scalars; Open vSwitch also
                    // on optional ("0 or 1") integers and reals.
                    let numeric = matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real);
                    if !numeric || ty.is_map() || ty.max != MaxCount::Limited(1) {
                        return Err(bad(self));
                    }
                    ColumnType { min: 1, ..ty.clone() }
                }
                Function::Eq | Function::Ne => ty.clone(),
                Function::Includes | Function::Excludes => ColumnType { min: 0, ..ty.clone() },
            };
            self.value(table, &c.column, &check_ty, &c.value)?;
        }
        Ok(())
    }

    fn mutations(
        &self,
        t: &'a TableSchema,
        table: &str,
        muts: &[Mutation],
    ) -> Result<(), ValidationError> {
        for m in muts {
            let col = &m.column;
            let Some(schema_col) = t.columns.get(col) else {
                let p =
                    if t.column(col).is_some() { Problem::ReadOnly } else { Problem::NoSuchColumn };
                return Err(self.err(table, Some(col), Some(&m.value), p));
            };
            if !schema_col.mutable {
                return Err(self.err(table, Some(col), Some(&m.value), Problem::NotMutable));
            }
            let ty = &schema_col.ty;
            let bad = || {
                self.err(
                    table,
                    Some(col),
                    Some(&m.value),
                    Problem::BadMutator { mutator: m.mutator.as_str() },
                )
            };
            match m.mutator {
                Mutator::Add | Mutator::Sub | Mutator::Mul | Mutator::Div | Mutator::Mod => {
                    let ok = match ty.key.atomic {
                        AtomicType::Integer => true,
                        AtomicType::Real => m.mutator != Mutator::Mod,
                        _ => false,
                    };
                    if !ok || ty.is_map() {
                        return Err(bad());
                    }
                    // The operand is one scalar of the element type, without its constraints
                    // (the server checks the results).
                    let operand = ColumnType::scalar(ty.key.atomic);
                    self.value(table, col, &operand, &m.value)?;
                    if m.mutator == Mutator::Div || m.mutator == Mutator::Mod {
                        let zero = match m.value.as_atom() {
                            Some(Atom::Integer(0)) => true,
                            Some(Atom::Real(r)) => *r == 0.0,
                            _ => false,
                        };
                        if zero {
                            return Err(self.err(
                                table,
                                Some(col),
                                Some(&m.value),
                                Problem::OutOfRange {
                                    found: m.value.as_atom().cloned().unwrap_or(Atom::Integer(0)),
                                    range: "non-zero divisor".into(),
                                },
                            ));
                        }
                    }
                }
                Mutator::Insert | Mutator::Delete => {
                    if !ty.is_composite() && ty.min == 1 {
                        return Err(bad());
                    }
                    let relaxed = ty.relaxed();
                    if m.mutator == Mutator::Delete
                        && ty.is_map()
                        && matches!(m.value, Datum::Set(_))
                    {
                        // Deleting a set of keys from a map.
                        let keys = ColumnType { value: None, ..relaxed };
                        self.value(table, col, &keys, &m.value)?;
                    } else {
                        self.value(table, col, &relaxed, &m.value)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn operation(&self, op: &Operation) -> Result<(), ValidationError> {
        match op {
            Operation::Insert { table, row, .. } => {
                let t = self.table(table)?;
                self.row(t, table, row, true)
            }
            Operation::Select { table, conditions, columns } => {
                let t = self.table(table)?;
                self.conditions(t, table, conditions)?;
                for c in columns.iter().flatten() {
                    self.column(t, table, c)?;
                }
                Ok(())
            }
            Operation::Update { table, conditions, row } => {
                let t = self.table(table)?;
                self.conditions(t, table, conditions)?;
                self.row(t, table, row, true)
            }
            Operation::Mutate { table, conditions, mutations } => {
                let t = self.table(table)?;
                self.conditions(t, table, conditions)?;
                self.mutations(t, table, mutations)
            }
            Operation::Delete { table, conditions } => {
                let t = self.table(table)?;
                self.conditions(t, table, conditions)
            }
            Operation::Wait { table, conditions, columns, rows, .. } => {
                let t = self.table(table)?;
                self.conditions(t, table, conditions)?;
                for c in columns {
                    self.column(t, table, c)?;
                }
                for r in rows {
                    if let Some(c) = r.keys().find(|k| !columns.iter().any(|c| c.as_str() == &***k))
                    {
                        return Err(self.err(
                            table,
                            Some(c),
                            r.get(c),
                            Problem::BadWait("wait rows may only hold the listed columns"),
                        ));
                    }
                    self.row(t, table, r, false)?;
                }
                Ok(())
            }
            Operation::Assert { lock } if !is_id(lock) => Err(ValidationError {
                op: self.op,
                op_name: self.op_name,
                table: String::new(),
                column: None,
                value: Some(lock.as_str().into()),
                problem: Box::new(Problem::BadLockName(lock.clone())),
            }),
            Operation::Commit { .. }
            | Operation::Abort
            | Operation::Comment { .. }
            | Operation::Assert { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(&json!({"name": "t", "tables": {
            "Bridge": {"columns": {
                "name": {"type": "string", "mutable": false},
                "ports": {"type": {"key": {"type": "uuid", "refTable": "Port"}, "min": 0, "max": "unlimited"}},
                "fail_mode": {"type": {"key": {"type": "string", "enum": ["set", ["secure", "standalone"]]}, "min": 0, "max": 1}},
                "external_ids": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                "flood_vlans": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 4095}, "min": 0, "max": 4}},
                "ratio": {"type": "real"}
            }, "isRoot": true},
            "Port": {"columns": {
                "name": {"type": "string", "mutable": false},
                "tag": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 4095}, "min": 0, "max": 1}}
            }}
        }}))
        .unwrap()
    }

    fn insert(table: &str, row: Row, name: Option<&str>) -> Operation {
        Operation::Insert { table: table.into(), row, uuid_name: name.map(str::to_string) }
    }

    fn row(pairs: &[(&str, Datum)]) -> Row {
        pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect()
    }

    #[test]
    fn operations_round_trip_through_json() {
        let ops = vec![
            insert("Port", row(&[("name", Datum::atom("p1"))]), Some("p")),
            Operation::Select {
                table: "Bridge".into(),
                conditions: vec![Condition::new("name", Function::Eq, Atom::from("br0"))],
                columns: Some(vec!["ports".into()]),
            },
            Operation::Update {
                table: "Bridge".into(),
                conditions: vec![],
                row: row(&[("fail_mode", Datum::atom("secure"))]),
            },
            Operation::Mutate {
                table: "Bridge".into(),
                conditions: vec![Condition::new("name", Function::Eq, Atom::from("br0"))],
                mutations: vec![Mutation::new(
                    "ports",
                    Mutator::Insert,
                    Atom::NamedUuid("p".into()),
                )],
            },
            Operation::Delete { table: "Port".into(), conditions: vec![] },
            Operation::Wait {
                table: "Bridge".into(),
                conditions: vec![],
                columns: vec!["name".into()],
                until: WaitUntil::Ne,
                rows: vec![row(&[("name", Datum::atom("x"))])],
                timeout: Some(0),
            },
            Operation::Commit { durable: false },
            Operation::Abort,
            Operation::Comment { comment: "hi".into() },
            Operation::Assert { lock: "l".into() },
        ];
        for op in &ops {
            assert_eq!(&Operation::from_json(&op.to_json()).unwrap(), op);
        }
        assert_eq!(
            ops[3].to_json(),
            json!({"op": "mutate", "table": "Bridge", "where": [["name", "==", "br0"]],
                   "mutations": [["ports", "insert", ["named-uuid", "p"]]]})
        );
        assert_eq!(validate(&schema(), &ops), Ok(()));
    }

    #[test]
    fn operation_parse_errors() {
        let e = Operation::from_json(&json!({"op": "upsert"})).unwrap_err();
        assert!(e.to_string().starts_with("operation.op: expected insert"), "{e}");
        let e =
            Operation::from_json(&json!({"op": "select", "table": "T", "where": [["a", "~", 1]]}))
                .unwrap_err();
        assert!(e.to_string().starts_with("operation.where[0][1]"), "{e}");
        let e = Operation::from_json(&json!({"op": "delete", "table": "T"})).unwrap_err();
        assert!(e.to_string().contains("\"where\""), "{e}");
    }

    fn refused(ops: &[Operation]) -> ValidationError {
        validate(&schema(), ops).unwrap_err()
    }

    #[test]
    fn validator_names_table_column_value() {
        let e = refused(&[insert("Bridg", Row::new(), None)]);
        assert_eq!(*e.problem, Problem::NoSuchTable);
        assert_eq!(e.table, "Bridg");
        let e = refused(&[insert("Bridge", row(&[("nmae", Datum::atom("x"))]), None)]);
        assert_eq!((*e.problem, e.column.as_deref()), (Problem::NoSuchColumn, Some("nmae")));
        let e = refused(&[insert("Bridge", row(&[("name", Datum::atom(5))]), None)]);
        assert!(matches!(*e.problem, Problem::WrongType { expected: AtomicType::String, .. }));
        assert_eq!(e.value, Some(json!(5)));
        let e = refused(&[insert("Bridge", row(&[("fail_mode", Datum::atom("open"))]), None)]);
        assert!(matches!(*e.problem, Problem::NotInEnum { .. }));
        assert_eq!(
            e.to_string(),
            "operation 0 (insert) on table Bridge, column fail_mode, value \"open\": \
             atom \"open\" is not one of \"secure\", \"standalone\""
        );
        let e = refused(&[insert("Port", row(&[("tag", Datum::atom(4096))]), None)]);
        assert!(matches!(*e.problem, Problem::OutOfRange { .. }));
        let e = refused(&[insert(
            "Bridge",
            row(&[("flood_vlans", Datum::set([1, 2, 3, 4, 5]))]),
            None,
        )]);
        assert_eq!(*e.problem, Problem::BadSize { n: 5, min: 0, max: MaxCount::Limited(4) });
        let e = refused(&[insert("Bridge", row(&[("external_ids", Datum::set(["a"]))]), None)]);
        assert_eq!(*e.problem, Problem::WrongKind { expected: "a map" });
        let e = refused(&[insert("Bridge", row(&[("_uuid", Datum::atom(Uuid(1)))]), None)]);
        assert_eq!(*e.problem, Problem::ReadOnly);
        // Integers are accepted for reals.
        validate(&schema(), &[insert("Bridge", row(&[("ratio", Datum::atom(2))]), None)]).unwrap();
    }

    #[test]
    fn validator_checks_mutability_and_mutators() {
        let upd = Operation::Update {
            table: "Bridge".into(),
            conditions: vec![],
            row: row(&[("name", Datum::atom("b"))]),
        };
        assert_eq!(*refused(&[upd]).problem, Problem::NotMutable);
        let m = |c: &str, mu: Mutator, v: Datum| Operation::Mutate {
            table: "Bridge".into(),
            conditions: vec![],
            mutations: vec![Mutation::new(c, mu, v)],
        };
        assert_eq!(
            *refused(&[m("name", Mutator::Insert, Datum::atom("x"))]).problem,
            Problem::NotMutable
        );
        assert!(matches!(
            *refused(&[m("external_ids", Mutator::Add, Datum::atom(1))]).problem,
            Problem::BadMutator { .. }
        ));
        assert!(matches!(
            *refused(&[m("ratio", Mutator::Mod, Datum::atom(1))]).problem,
            Problem::BadMutator { .. }
        ));
        assert!(matches!(
            *refused(&[m("flood_vlans", Mutator::Div, Datum::atom(0))]).problem,
            Problem::OutOfRange { .. }
        ));
        let ok = [
            m("flood_vlans", Mutator::Add, Datum::atom(1)),
            m("external_ids", Mutator::Insert, Datum::map([("k", "v")])),
            m("external_ids", Mutator::Delete, Datum::set(["k"])),
            m("external_ids", Mutator::Delete, Datum::map([("k", "v")])),
            m("ratio", Mutator::Mul, Datum::atom(Atom::Real(1.5))),
        ];
        validate(&schema(), &ok).unwrap();
    }

    #[test]
    fn validator_checks_conditions_and_named_uuids() {
        let sel = |c: Condition| Operation::Select {
            table: "Port".into(),
            conditions: vec![c],
            columns: None,
        };
        validate(&schema(), &[sel(Condition::new("tag", Function::Lt, Atom::Integer(5)))]).unwrap();
        validate(&schema(), &[sel(Condition::new("_uuid", Function::Eq, Atom::Uuid(Uuid(9))))])
            .unwrap();
        let e = refused(&[sel(Condition::new("name", Function::Lt, Atom::from("a")))]);
        assert_eq!(*e.problem, Problem::BadFunction { function: "<" });
        let e = refused(&[sel(Condition::new("tag", Function::Eq, Atom::from("a")))]);
        assert!(matches!(*e.problem, Problem::WrongType { .. }));
        let mu = Operation::Mutate {
            table: "Bridge".into(),
            conditions: vec![],
            mutations: vec![Mutation::new(
                "ports",
                Mutator::Insert,
                Atom::NamedUuid("nope".into()),
            )],
        };
        assert_eq!(*refused(&[mu]).problem, Problem::UndefinedNamedUuid("nope".into()));
        let e = refused(&[
            insert("Port", Row::new(), Some("a")),
            insert("Port", Row::new(), Some("a")),
        ]);
        assert_eq!((e.op, *e.problem), (1, Problem::BadUuidName("a".into())));
        let e = refused(&[insert(
            "Port",
            row(&[("name", Datum::atom(Atom::NamedUuid("x".into())))]),
            Some("x"),
        )]);
        assert!(matches!(*e.problem, Problem::WrongType { .. }));
        let e = refused(&[Operation::Assert { lock: "my-lock".into() }]);
        assert_eq!(*e.problem, Problem::BadLockName("my-lock".into()));
    }

    #[test]
    fn transact_reply_results_and_errors() {
        let v = json!([{"uuid": ["uuid", "00000000-0000-0000-0000-000000000005"]}, {"count": 2},
                       {"rows": [{"name": "br0"}]}, {}, {"error": "constraint violation", "details": "bad"}, null]);
        let r = TransactReply::from_json(&v).unwrap();
        assert_eq!(r.inserted(0), Some(Uuid(5)));
        assert_eq!(r.results[1], OpResult::Count(2));
        assert_eq!(r.results[2], OpResult::Select(vec![row(&[("name", Datum::atom("br0"))])]));
        assert_eq!(r.results[3], OpResult::Empty);
        assert_eq!(r.results[5], OpResult::NotExecuted);
        let (i, e) = r.error().unwrap();
        assert_eq!((i, e.to_string().as_str()), (4, "constraint violation: bad"));
        assert!(TransactReply::from_json(&json!({})).is_err());
        assert!(TransactReply::from_json(&json!([{"uuid": 5}])).is_err());
    }
}
