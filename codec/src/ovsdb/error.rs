//! Errors of the OVSDB codec: [`DecodeError`] for bytes or JSON that are not what RFC 7047 says,
//! [`ValidationError`] for a transaction the schema refuses, [`ReplicaError`] for an update the
//! replica cannot apply. Each names where the problem was (a JSON path, or table, column, row) and
//! the value found.

use std::fmt;

use serde_json::Value;
use thiserror::Error;

use super::datum::{Atom, AtomicType, Uuid};
use super::schema::MaxCount;

/// Why bytes or JSON could not be decoded as OVSDB.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Bytes in the stream that are not JSON (or not a JSON object or array at top level).
    #[error("invalid JSON at stream offset {offset}: {detail}")]
    Syntax {
        /// Offset in the stream of the start of the message (or of the bad byte).
        offset: u64,
        /// What the JSON parser said.
        detail: String,
    },
    /// A message longer than the stream's configured maximum.
    #[error("JSON message starting at stream offset {offset} exceeds the maximum of {max} bytes")]
    TooLong {
        /// Offset in the stream where the message began.
        offset: u64,
        /// The configured maximum.
        max: usize,
    },
    /// Well-formed JSON that is not what OVSDB expects at this place.
    #[error("{path}: expected {expected}, found {found}")]
    Malformed {
        /// Where in the JSON document, e.g. `result.Bridge.columns.name.type`.
        path: String,
        /// What would have been accepted.
        expected: String,
        /// The value found, abbreviated.
        found: String,
    },
}

/// Renders a JSON value for an error message, cut to a readable length.
pub(crate) fn abbreviate(v: &Value) -> String {
    const MAX: usize = 80;
    let s = v.to_string();
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A place in a JSON document, built on the stack while descending and rendered only when an
/// error is reported, so that successful decoding allocates nothing for it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loc<'a> {
    /// The document itself, named.
    Root(&'a str),
    /// A member of an object.
    Key(&'a Loc<'a>, &'a str),
    /// An element of an array.
    Index(&'a Loc<'a>, usize),
}

impl<'a> Loc<'a> {
    /// The member `key` of this place.
    pub(crate) fn key(&'a self, key: &'a str) -> Loc<'a> {
        Loc::Key(self, key)
    }

    /// The element `i` of this place.
    pub(crate) fn index(&'a self, i: usize) -> Loc<'a> {
        Loc::Index(self, i)
    }

    /// An error saying that `expected` was wanted here and `found` was there.
    pub(crate) fn error(&self, expected: impl Into<String>, found: &Value) -> DecodeError {
        DecodeError::Malformed {
            path: self.to_string(),
            expected: expected.into(),
            found: abbreviate(found),
        }
    }

    /// An error saying that the member `key` is missing here.
    pub(crate) fn missing(&self, key: &str) -> DecodeError {
        DecodeError::Malformed {
            path: self.to_string(),
            expected: format!("a member \"{key}\""),
            found: "none".to_string(),
        }
    }

    /// The object at this place.
    pub(crate) fn object(
        &self,
        v: &'a Value,
    ) -> Result<&'a serde_json::Map<String, Value>, DecodeError> {
        v.as_object().ok_or_else(|| self.error("an object", v))
    }

    /// The array at this place.
    pub(crate) fn array(&self, v: &'a Value) -> Result<&'a [Value], DecodeError> {
        v.as_array().map(Vec::as_slice).ok_or_else(|| self.error("an array", v))
    }

    /// The string at this place.
    pub(crate) fn string(&self, v: &'a Value) -> Result<&'a str, DecodeError> {
        v.as_str().ok_or_else(|| self.error("a string", v))
    }

    /// The boolean at this place.
    pub(crate) fn boolean(&self, v: &Value) -> Result<bool, DecodeError> {
        v.as_bool().ok_or_else(|| self.error("a boolean", v))
    }

    /// The non-negative integer at this place.
    pub(crate) fn unsigned(&self, v: &Value) -> Result<u64, DecodeError> {
        v.as_u64().ok_or_else(|| self.error("a non-negative integer", v))
    }

    /// The array of strings at this place.
    pub(crate) fn strings(&self, v: &'a Value) -> Result<Vec<String>, DecodeError> {
        let a = self.array(v)?;
        let mut out = Vec::with_capacity(a.len());
        for (i, s) in a.iter().enumerate() {
            out.push(self.index(i).string(s)?.to_string());
        }
        Ok(out)
    }
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Root(name) => f.write_str(name),
            Loc::Key(parent, key) => write!(f, "{parent}.{key}"),
            Loc::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// What is wrong with a value, a column or a row; shared by [`ValidationError`] and
/// [`ReplicaError`], which add where it happened.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Problem {
    /// The table is not in the schema (or not replicated).
    #[error("no such table")]
    NoSuchTable,
    /// The column is not in the table (or not monitored).
    #[error("no such column")]
    NoSuchColumn,
    /// The column is declared `"mutable": false` and cannot be updated or mutated.
    #[error("column is not mutable")]
    NotMutable,
    /// `_uuid` and `_version` are maintained by the server.
    #[error("column is read-only (maintained by the server)")]
    ReadOnly,
    /// A set where a map is needed, or the reverse.
    #[error("expected {expected}")]
    WrongKind {
        /// "a map" or "a set".
        expected: &'static str,
    },
    /// An atom of the wrong atomic type.
    #[error("atom {found} is not of type {expected}")]
    WrongType {
        /// The type the column wants.
        expected: AtomicType,
        /// The offending atom.
        found: Atom,
    },
    /// An atom outside the column's `enum`.
    #[error("atom {found} is not one of {allowed}")]
    NotInEnum {
        /// The offending atom.
        found: Atom,
        /// The allowed values.
        allowed: String,
    },
    /// An integer or real outside `minInteger`..`maxInteger` / `minReal`..`maxReal`, or a string
    /// whose length in characters is outside `minLength`..`maxLength`.
    #[error("atom {found} is out of range: {range}")]
    OutOfRange {
        /// The offending atom.
        found: Atom,
        /// The accepted range.
        range: String,
    },
    /// A real that is NaN or infinite, which JSON cannot carry.
    #[error("real {0} is not finite")]
    NotFinite(f64),
    /// A set or map with too few or too many elements.
    #[error("{n} elements, but the column takes {min} to {max}")]
    BadSize {
        /// Elements found.
        n: usize,
        /// `min` of the column type.
        min: u64,
        /// `max` of the column type.
        max: MaxCount,
    },
    /// A `named-uuid` where none may be (in stored data, or in a non-uuid column).
    #[error("named-uuid {0:?} is not allowed here")]
    NamedUuidNotAllowed(String),
    /// A `named-uuid` that no `insert` of the transaction defines with `uuid-name`.
    #[error("named-uuid {0:?} is not defined by any insert in this transaction")]
    UndefinedNamedUuid(String),
    /// Two inserts of one transaction with the same `uuid-name`, or a malformed one.
    #[error("uuid-name {0:?} is duplicated or not an identifier")]
    BadUuidName(String),
    /// A lock name that is not an identifier `[_a-zA-Z][_a-zA-Z0-9]*`.
    #[error("lock name {0:?} is not an identifier")]
    BadLockName(String),
    /// A condition function not applicable to the column's type.
    #[error("function {function} cannot be applied to this column type")]
    BadFunction {
        /// The function, e.g. `<`.
        function: &'static str,
    },
    /// A mutator not applicable to the column's type.
    #[error("mutator {mutator} cannot be applied to this column type")]
    BadMutator {
        /// The mutator, e.g. `+=`.
        mutator: &'static str,
    },
    /// A `wait` with a negative timeout or an `until` other than `==`/`!=`.
    #[error("{0}")]
    BadWait(&'static str),
    /// An update that inserts a row the replica already has.
    #[error("row already exists")]
    RowExists,
    /// An update that modifies or deletes a row the replica does not have.
    #[error("no such row")]
    NoSuchRow,
    /// A row update that is neither an insert, a modify nor a delete.
    #[error("row update has neither \"old\" nor \"new\"")]
    EmptyRowUpdate,
}

/// A transaction refused before it was sent: the operation, table, column and value involved.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("operation {op} ({op_name}){}{}{}: {problem}",
    if table.is_empty() { String::new() } else { format!(" on table {table}") },
    column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default(),
    value.as_ref().map(|v| format!(", value {}", abbreviate(v))).unwrap_or_default())]
pub struct ValidationError {
    /// Index of the operation in the transaction.
    pub op: usize,
    /// The operation's name, e.g. `insert`.
    pub op_name: &'static str,
    /// The table it names (empty for operations without a table).
    pub table: String,
    /// The column involved, if any.
    pub column: Option<String>,
    /// The offending value as JSON, if any.
    pub value: Option<Value>,
    /// What is wrong (boxed to keep `Result`s small).
    pub problem: Box<Problem>,
}

/// An update the replica refused; the replica is left as it was before the update.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("table {table}{}{}: {problem}",
    uuid.map(|u| format!(", row {u}")).unwrap_or_default(),
    column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct ReplicaError {
    /// The table.
    pub table: String,
    /// The row, if the problem is about one.
    pub uuid: Option<Uuid>,
    /// The column, if the problem is about one.
    pub column: Option<String>,
    /// What is wrong (boxed to keep `Result`s small).
    pub problem: Box<Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loc_renders_path() {
        let root = Loc::Root("result");
        let t = root.key("Bridge");
        let c = t.index(3);
        let e = c.error("a string", &json!(5));
        assert_eq!(e.to_string(), "result.Bridge[3]: expected a string, found 5");
    }

    #[test]
    fn abbreviate_cuts_long_values_on_char_boundary() {
        let long = Value::String("é".repeat(100));
        let s = abbreviate(&long);
        assert!(s.len() <= 84, "{s}");
        assert!(s.ends_with("..."));
    }

    #[test]
    fn validation_error_names_table_column_value() {
        let e = ValidationError {
            op: 1,
            op_name: "insert",
            table: "Interface".into(),
            column: Some("ofport_request".into()),
            value: Some(json!(70000)),
            problem: Box::new(Problem::OutOfRange {
                found: Atom::Integer(70000),
                range: "1..=65279".into(),
            }),
        };
        assert_eq!(
            e.to_string(),
            "operation 1 (insert) on table Interface, column ofport_request, value 70000: \
             atom 70000 is out of range: 1..=65279"
        );
    }
}
