//! Database schemas (RFC 7047 §3.2), as returned by `get_schema`.
//!
//! ```text
//! <database-schema> {"name": <id>, "version": <version>, "cksum": <string>?,
//!                    "tables": {<id>: <table-schema>, ...}}
//! <table-schema>    {"columns": {<id>: <column-schema>, ...}, "maxRows": <integer>?,
//!                    "isRoot": <boolean>?, "indexes": [<column-set>*]?}
//! <column-schema>   {"type": <type>, "ephemeral": <boolean>?, "mutable": <boolean>?}
//! <type>            <atomic-type> | {"key": <base-type>, "value": <base-type>?,
//!                    "min": <integer>?, "max": <integer> | "unlimited"?}
//! <base-type>       <atomic-type> | {"type": <atomic-type>, "enum": <value>?,
//!                    "minInteger"/"maxInteger"/"minReal"/"maxReal"/"minLength"/"maxLength",
//!                    "refTable": <id>?, "refType": "strong" | "weak"?}
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::datum::{Atom, AtomicType, Datum};
use super::error::{DecodeError, Loc, Problem};

/// A whole database schema.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    /// Database name, e.g. `Open_vSwitch`.
    pub name: String,
    /// Schema version `x.y.z` (optional in Open vSwitch).
    pub version: Option<String>,
    /// Checksum, if given.
    pub cksum: Option<String>,
    /// Tables by name.
    pub tables: BTreeMap<String, TableSchema>,
}

/// One table of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// Columns by name (without the implicit `_uuid` and `_version`).
    pub columns: BTreeMap<String, ColumnSchema>,
    /// Maximum number of rows, if limited.
    pub max_rows: Option<u64>,
    /// Rows of a root table are kept even when nothing references them.
    pub is_root: bool,
    /// Sets of columns whose values must be unique across rows.
    pub indexes: Vec<Vec<String>>,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    /// The column's type.
    pub ty: ColumnType,
    /// Not persisted to disk.
    pub ephemeral: bool,
    /// May be changed after insertion by `update` and `mutate`.
    pub mutable: bool,
}

/// Upper bound of a set or map size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MaxCount {
    /// At most this many.
    Limited(u64),
    /// `"unlimited"`.
    Unlimited,
}

impl MaxCount {
    /// True if `n` is within the bound.
    pub fn allows(self, n: usize) -> bool {
        match self {
            MaxCount::Limited(m) => (n as u64) <= m,
            MaxCount::Unlimited => true,
        }
    }
}

impl fmt::Display for MaxCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxCount::Limited(m) => write!(f, "{m}"),
            MaxCount::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// The type of a column: a set of `min`..`max` keys, or a map from keys to values.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// Type of the elements (of the keys, for a map).
    pub key: BaseType,
    /// Type of the values, for a map.
    pub value: Option<BaseType>,
    /// Minimum number of elements: 0 or 1.
    pub min: u64,
    /// Maximum number of elements.
    pub max: MaxCount,
}

/// Whether a reference keeps the referenced row alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RefType {
    /// The referenced row must exist (the default).
    #[default]
    Strong,
    /// Dangling references are removed by the server.
    Weak,
}

/// The type of the keys or values of a column, with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    /// The atomic type.
    pub atomic: AtomicType,
    /// The allowed values, sorted, if restricted.
    pub enumeration: Option<Vec<Atom>>,
    /// Smallest allowed integer.
    pub min_integer: Option<i64>,
    /// Largest allowed integer.
    pub max_integer: Option<i64>,
    /// Smallest allowed real.
    pub min_real: Option<f64>,
    /// Largest allowed real.
    pub max_real: Option<f64>,
    /// Shortest allowed string, in characters.
    pub min_length: Option<u64>,
    /// Longest allowed string, in characters.
    pub max_length: Option<u64>,
    /// Table that a uuid refers to.
    pub ref_table: Option<String>,
    /// Strength of the reference (meaningful with `ref_table`).
    pub ref_type: RefType,
}

impl BaseType {
    /// An unconstrained base type.
    pub const fn plain(atomic: AtomicType) -> Self {
        BaseType {
            atomic,
            enumeration: None,
            min_integer: None,
            max_integer: None,
            min_real: None,
            max_real: None,
            min_length: None,
            max_length: None,
            ref_table: None,
            ref_type: RefType::Strong,
        }
    }

    fn from_json(v: &Value, loc: &Loc<'_>) -> Result<BaseType, DecodeError> {
        const EXPECTED: &str = "an atomic type (integer, real, boolean, string, uuid)";
        if let Value::String(s) = v {
            return AtomicType::from_name(s)
                .map(BaseType::plain)
                .ok_or_else(|| loc.error(EXPECTED, v));
        }
        let o = loc.object(v)?;
        let tl = loc.key("type");
        let t = o.get("type").ok_or_else(|| loc.missing("type"))?;
        let atomic = AtomicType::from_name(tl.string(t)?).ok_or_else(|| tl.error(EXPECTED, t))?;
        let mut b = BaseType::plain(atomic);
        if let Some(e) = o.get("enum") {
            let el = loc.key("enum");
            let d = Datum::from_json_at(e, &el)?;
            let Datum::Set(atoms) = d else { return Err(el.error("a set of atoms", e)) };
            let mut atoms: Vec<Atom> = atoms.into_iter().map(|a| a.coerce(atomic)).collect();
            if let Some(a) = atoms.iter().find(|a| a.atomic_type() != atomic) {
                return Err(el.error(format!("atoms of type {atomic}"), &a.to_json()));
            }
            atoms.sort();
            b.enumeration = Some(atoms);
        }
        let int = |k: &'static str| -> Result<Option<i64>, DecodeError> {
            o.get(k)
                .map(|x| x.as_i64().ok_or_else(|| loc.key(k).error("an integer", x)))
                .transpose()
        };
        let real = |k: &'static str| -> Result<Option<f64>, DecodeError> {
            o.get(k).map(|x| x.as_f64().ok_or_else(|| loc.key(k).error("a number", x))).transpose()
        };
        let len = |k: &'static str| -> Result<Option<u64>, DecodeError> {
            o.get(k).map(|x| loc.key(k).unsigned(x)).transpose()
        };
        b.min_integer = int("minInteger")?;
        b.max_integer = int("maxInteger")?;
        b.min_real = real("minReal")?;
        b.max_real = real("maxReal")?;
        b.min_length = len("minLength")?;
        b.max_length = len("maxLength")?;
        if let Some(r) = o.get("refTable") {
            b.ref_table = Some(loc.key("refTable").string(r)?.to_string());
        }
        if let Some(r) = o.get("refType") {
            let rl = loc.key("refType");
            b.ref_type = match rl.string(r)? {
                "strong" => RefType::Strong,
                "weak" => RefType::Weak,
                _ => return Err(rl.error("\"strong\" or \"weak\"", r)),
            };
        }
        Ok(b)
    }

    /// The JSON form of the base type: the bare type name when unconstrained.
    pub fn to_json(&self) -> Value {
        if *self == BaseType::plain(self.atomic) {
            return self.atomic.as_str().into();
        }
        let mut o = Map::new();
        o.insert("type".into(), self.atomic.as_str().into());
        if let Some(e) = &self.enumeration {
            o.insert("enum".into(), Datum::Set(e.clone().into()).to_json());
        }
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.into(), v);
            }
        };
        put("minInteger", self.min_integer.map(Value::from));
        put("maxInteger", self.max_integer.map(Value::from));
        put("minReal", self.min_real.map(Value::from));
        put("maxReal", self.max_real.map(Value::from));
        put("minLength", self.min_length.map(Value::from));
        put("maxLength", self.max_length.map(Value::from));
        put("refTable", self.ref_table.clone().map(Value::from));
        if self.ref_type == RefType::Weak {
            put("refType", Some("weak".into()));
        }
        Value::Object(o)
    }

    /// Checks one atom against the type and its constraints. `allow_named` admits named UUIDs
    /// (in transactions).
    pub fn check(&self, atom: &Atom, allow_named: bool) -> Result<(), Problem> {
        if atom.atomic_type() != self.atomic {
            return Err(Problem::WrongType { expected: self.atomic, found: atom.clone() });
        }
        if let Some(e) = &self.enumeration {
            if e.binary_search(atom).is_err() {
                let allowed = e.iter().map(Atom::to_string).collect::<Vec<_>>().join(", ");
                return Err(Problem::NotInEnum { found: atom.clone(), allowed });
            }
        }
        fn outside<T: PartialOrd + fmt::Display>(
            v: T,
            lo: Option<T>,
            hi: Option<T>,
        ) -> Option<String> {
            let bad = lo.as_ref().is_some_and(|m| v < *m) || hi.as_ref().is_some_and(|m| v > *m);
            let show = |b: Option<T>| b.map(|b| b.to_string()).unwrap_or_default();
            bad.then(|| format!("{}..={}", show(lo), show(hi)))
        }
        let violation = match atom {
            Atom::Integer(i) => outside(*i, self.min_integer, self.max_integer),
            Atom::Real(r) if !r.is_finite() => return Err(Problem::NotFinite(*r)),
            Atom::Real(r) => outside(*r, self.min_real, self.max_real),
            Atom::String(s) if self.min_length.is_some() || self.max_length.is_some() => {
                outside(s.chars().count() as u64, self.min_length, self.max_length)
                    .map(|r| format!("length {r}"))
            }
            Atom::NamedUuid(n) if !allow_named => {
                return Err(Problem::NamedUuidNotAllowed(n.clone()));
            }
            _ => None,
        };
        if let Some(range) = violation {
            return Err(Problem::OutOfRange { found: atom.clone(), range });
        }
        Ok(())
    }
}

impl ColumnType {
    /// A scalar column of a plain atomic type (exactly one value).
    pub const fn scalar(atomic: AtomicType) -> Self {
        ColumnType { key: BaseType::plain(atomic), value: None, min: 1, max: MaxCount::Limited(1) }
    }

    /// True for a map type.
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// True for exactly one atom (min = max = 1, not a map).
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == MaxCount::Limited(1)
    }

    /// True when more than one element may be held (`max` > 1). Diffs in `update2` toggle
    /// elements of composite columns and replace the whole value of the others.
    pub fn is_composite(&self) -> bool {
        self.max != MaxCount::Limited(0) && self.max != MaxCount::Limited(1)
    }

    /// The value a row holds in this column when nothing was set: the empty set or map when
    /// `min` is 0, otherwise the type's default atom.
    pub fn default_datum(&self) -> Datum {
        if self.min == 0 {
            if self.is_map() {
                Datum::empty_map()
            } else {
                Datum::empty_set()
            }
        } else if let Some(v) = &self.value {
            Datum::Map(vec![(self.key.atomic.default_atom(), v.atomic.default_atom())])
        } else {
            Datum::atom(self.key.atomic.default_atom())
        }
    }

    /// The same type with `min` relaxed to 0 and `max` to unlimited: what a `mutate` value, an
    /// `includes` condition or an `update2` diff may hold.
    pub fn relaxed(&self) -> ColumnType {
        ColumnType { min: 0, max: MaxCount::Unlimited, ..self.clone() }
    }

    /// Converts integers to reals where the type wants reals, and an empty set to an empty map
    /// for map types. Other mismatches are left for [`ColumnType::check`] to report.
    pub fn coerce(&self, d: Datum) -> Datum {
        let key_real = self.key.atomic == AtomicType::Real;
        let val_real = self.value.as_ref().is_some_and(|v| v.atomic == AtomicType::Real);
        match d {
            Datum::Set(v) if v.is_empty() && self.is_map() => Datum::empty_map(),
            Datum::Set(v) if key_real && v.iter().any(|a| matches!(a, Atom::Integer(_))) => {
                Datum::set(v.into_iter().map(|a| a.coerce(AtomicType::Real)))
            }
            Datum::Map(m)
                if (key_real && m.iter().any(|(k, _)| matches!(k, Atom::Integer(_))))
                    || (val_real && m.iter().any(|(_, v)| matches!(v, Atom::Integer(_)))) =>
            {
                Datum::map(m.into_iter().map(|(k, v)| {
                    (
                        if key_real { k.coerce(AtomicType::Real) } else { k },
                        if val_real { v.coerce(AtomicType::Real) } else { v },
                    )
                }))
            }
            d => d,
        }
    }

    /// Checks a datum against the type: set or map, atomic types, constraints and size.
    pub fn check(&self, d: &Datum, allow_named: bool) -> Result<(), Problem> {
        match (d, &self.value) {
            (Datum::Set(atoms), None) => {
                for a in atoms {
                    self.key.check(a, allow_named)?;
                }
            }
            (Datum::Map(pairs), Some(vt)) => {
                for (k, v) in pairs {
                    self.key.check(k, allow_named)?;
                    vt.check(v, allow_named)?;
                }
            }
            (Datum::Set(_), Some(_)) => return Err(Problem::WrongKind { expected: "a map" }),
            (Datum::Map(_), None) => return Err(Problem::WrongKind { expected: "a set" }),
        }
        let n = d.len();
        if (n as u64) < self.min || !self.max.allows(n) {
            return Err(Problem::BadSize { n, min: self.min, max: self.max });
        }
        Ok(())
    }

    fn from_json(v: &Value, loc: &Loc<'_>) -> Result<ColumnType, DecodeError> {
        if let Value::String(_) = v {
            let key = BaseType::from_json(v, loc)?;
            return Ok(ColumnType { key, value: None, min: 1, max: MaxCount::Limited(1) });
        }
        let o = loc.object(v)?;
        let key =
            BaseType::from_json(o.get("key").ok_or_else(|| loc.missing("key"))?, &loc.key("key"))?;
        let value =
            o.get("value").map(|x| BaseType::from_json(x, &loc.key("value"))).transpose()?;
        let min = match o.get("min") {
            None => 1,
            Some(m) => match m.as_u64() {
                Some(m @ (0 | 1)) => m,
                _ => return Err(loc.key("min").error("0 or 1", m)),
            },
        };
        let max = match o.get("max") {
            None => MaxCount::Limited(1),
            Some(Value::String(s)) if s == "unlimited" => MaxCount::Unlimited,
            Some(m) => match m.as_u64() {
                Some(n) if n >= 1 && n >= min => MaxCount::Limited(n),
                _ => {
                    return Err(loc
                        .key("max")
                        .error("an integer >= max(1, min) or \"unlimited\"", m))
                }
            },
        };
        Ok(ColumnType { key, value, min, max })
    }

    /// The JSON form of the type, in the short form when it is a plain scalar.
    pub fn to_json(&self) -> Value {
        if self.is_scalar() && self.key == BaseType::plain(self.key.atomic) {
            return self.key.atomic.as_str().into();
        }
        let mut o = Map::new();
        o.insert("key".into(), self.key.to_json());
        if let Some(v) = &self.value {
            o.insert("value".into(), v.to_json());
        }
        o.insert("min".into(), self.min.into());
        o.insert(
            "max".into(),
            match self.max {
                MaxCount::Limited(n) => n.into(),
                MaxCount::Unlimited => "unlimited".into(),
            },
        );
        Value::Object(o)
    }
}

const IMPLICIT_COLUMN: ColumnSchema =
    ColumnSchema { ty: ColumnType::scalar(AtomicType::Uuid), ephemeral: false, mutable: false };

/// The implicit `_uuid` column of every table.
pub static UUID_COLUMN: ColumnSchema = IMPLICIT_COLUMN;

/// The implicit `_version` column of every table.
pub static VERSION_COLUMN: ColumnSchema = IMPLICIT_COLUMN;

impl ColumnSchema {
    fn from_json(v: &Value, loc: &Loc<'_>) -> Result<ColumnSchema, DecodeError> {
        let o = loc.object(v)?;
        let ty = ColumnType::from_json(
            o.get("type").ok_or_else(|| loc.missing("type"))?,
            &loc.key("type"),
        )?;
        let flag = |k: &'static str, default: bool| {
            o.get(k).map(|x| loc.key(k).boolean(x)).transpose().map(|b| b.unwrap_or(default))
        };
        Ok(ColumnSchema {
            ty,
            ephemeral: flag("ephemeral", false)?,
            mutable: flag("mutable", true)?,
        })
    }
}

impl TableSchema {
    /// A column by name, including the implicit `_uuid` and `_version`.
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        match name {
            "_uuid" => Some(&UUID_COLUMN),
            "_version" => Some(&VERSION_COLUMN),
            _ => self.columns.get(name),
        }
    }

    fn from_json(v: &Value, loc: &Loc<'_>) -> Result<TableSchema, DecodeError> {
        let o = loc.object(v)?;
        let cl = loc.key("columns");
        let cols = cl.object(o.get("columns").ok_or_else(|| loc.missing("columns"))?)?;
        let mut columns = BTreeMap::new();
        for (name, c) in cols {
            if name.starts_with('_') || !super::datum::is_id(name) {
                return Err(
                    cl.error("column names matching [a-zA-Z][_a-zA-Z0-9]*", &name.clone().into())
                );
            }
            columns.insert(name.clone(), ColumnSchema::from_json(c, &cl.key(name))?);
        }
        let max_rows = o.get("maxRows").map(|x| loc.key("maxRows").unsigned(x)).transpose()?;
        let is_root =
            o.get("isRoot").map(|x| loc.key("isRoot").boolean(x)).transpose()?.unwrap_or(false);
        let mut indexes = Vec::new();
        if let Some(ix) = o.get("indexes") {
            let il = loc.key("indexes");
            for (i, set) in il.array(ix)?.iter().enumerate() {
                let l = il.index(i);
                let names = l.strings(set)?;
                if let Some(bad) = names.iter().find(|n| !columns.contains_key(*n) && *n != "_uuid")
                {
                    return Err(l.error("names of columns of this table", &bad.clone().into()));
                }
                indexes.push(names);
            }
        }
        Ok(TableSchema { columns, max_rows, is_root, indexes })
    }
}

impl DatabaseSchema {
    /// Parses the result of `get_schema` (or a `.ovsschema` file).
    pub fn from_json(v: &Value) -> Result<DatabaseSchema, DecodeError> {
        let loc = Loc::Root("schema");
        let o = loc.object(v)?;
        let name =
            loc.key("name").string(o.get("name").ok_or_else(|| loc.missing("name"))?)?.to_string();
        let version =
            o.get("version").map(|x| loc.key("version").string(x)).transpose()?.map(str::to_string);
        let cksum =
            o.get("cksum").map(|x| loc.key("cksum").string(x)).transpose()?.map(str::to_string);
        let tl = loc.key("tables");
        let mut tables = BTreeMap::new();
        for (name, t) in tl.object(o.get("tables").ok_or_else(|| loc.missing("tables"))?)? {
            tables.insert(name.clone(), TableSchema::from_json(t, &tl.key(name))?);
        }
        // Every refTable must name a table of this schema.
        for (tname, t) in &tables {
            for (cname, c) in &t.columns {
                for b in std::iter::once(&c.ty.key).chain(c.ty.value.as_ref()) {
                    if let Some(r) = &b.ref_table {
                        if !tables.contains_key(r) {
                            let l2 = tl.key(tname);
                            let l3 = l2.key("columns");
                            let l4 = l3.key(cname);
                            return Err(l4.error(
                                "a refTable naming a table of the schema",
                                &r.clone().into(),
                            ));
                        }
                    }
                }
            }
        }
        Ok(DatabaseSchema { name, version, cksum, tables })
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }

    /// True if rows of `table` survive without references. As in ovsdb-server, a schema in
    /// which no table is marked `isRoot` treats every table as a root.
    pub fn is_root(&self, table: &str) -> bool {
        let any_root = self.tables.values().any(|t| t.is_root);
        self.tables.get(table).is_some_and(|t| t.is_root || !any_root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn col(v: Value) -> Result<ColumnType, DecodeError> {
        ColumnType::from_json(&v, &Loc::Root("type"))
    }

    #[test]
    fn short_and_long_type_forms() {
        let t = col(json!("integer")).unwrap();
        assert!(t.is_scalar());
        assert_eq!(t.default_datum(), Datum::atom(0));
        let t =
            col(json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"})).unwrap();
        assert!(t.is_map() && t.is_composite());
        assert_eq!(t.default_datum(), Datum::empty_map());
        let t = col(json!({"key": {"type": "integer", "minInteger": 1, "maxInteger": 65279}, "min": 0, "max": 1})).unwrap();
        assert!(!t.is_scalar() && !t.is_composite());
        assert_eq!(t.key.min_integer, Some(1));
        assert_eq!(t.default_datum(), Datum::empty_set());
        assert_eq!(
            t.to_json(),
            json!({"key": {"type": "integer", "minInteger": 1, "maxInteger": 65279}, "min": 0, "max": 1})
        );
    }

    #[test]
    fn enum_and_ref() {
        let t = col(json!({"key": {"type": "string", "enum": ["set", ["secure", "standalone"]]}, "min": 0, "max": 1})).unwrap();
        assert_eq!(
            t.key.enumeration,
            Some(vec![Atom::string("secure"), Atom::string("standalone")])
        );
        assert!(t.check(&Datum::atom("secure"), false).is_ok());
        assert_eq!(
            t.check(&Datum::atom("open"), false),
            Err(Problem::NotInEnum {
                found: "open".into(),
                allowed: "\"secure\", \"standalone\"".into()
            })
        );
        let t =
            col(json!({"key": {"type": "uuid", "refTable": "Port", "refType": "weak"}})).unwrap();
        assert_eq!(t.key.ref_type, RefType::Weak);
        assert_eq!(t.key.ref_table.as_deref(), Some("Port"));
    }

    #[test]
    fn type_errors_name_the_path() {
        let e = col(json!({"key": {"type": "integr"}})).unwrap_err();
        assert!(e.to_string().starts_with("type.key.type: expected an atomic type"), "{e}");
        let e = col(json!({"key": "integer", "max": 0})).unwrap_err();
        assert!(e.to_string().starts_with("type.max:"), "{e}");
        let e = col(json!({"key": "integer", "min": 2})).unwrap_err();
        assert!(e.to_string().starts_with("type.min:"), "{e}");
        assert!(col(json!({"value": "integer"})).is_err());
    }

    #[test]
    fn check_sizes_ranges_lengths() {
        let t = col(
            json!({"key": {"type": "string", "minLength": 1, "maxLength": 3}, "min": 1, "max": 2}),
        )
        .unwrap();
        assert!(t.check(&Datum::set(["a", "é€x"]), false).is_ok());
        assert!(matches!(t.check(&Datum::atom(""), false), Err(Problem::OutOfRange { .. })));
        assert!(matches!(t.check(&Datum::atom("abcd"), false), Err(Problem::OutOfRange { .. })));
        assert_eq!(
            t.check(&Datum::empty_set(), false),
            Err(Problem::BadSize { n: 0, min: 1, max: MaxCount::Limited(2) })
        );
        assert!(matches!(
            t.check(&Datum::set(["a", "b", "c"]), false),
            Err(Problem::BadSize { .. })
        ));
        assert!(matches!(t.check(&Datum::atom(1), false), Err(Problem::WrongType { .. })));
        assert!(matches!(
            t.check(&Datum::map([("a", "b")]), false),
            Err(Problem::WrongKind { .. })
        ));
    }

    #[test]
    fn coerce_integers_to_reals() {
        let t =
            col(json!({"key": "string", "value": "real", "min": 0, "max": "unlimited"})).unwrap();
        let d = t.coerce(Datum::map([("a", Atom::Integer(1))]));
        assert_eq!(d, Datum::map([("a", Atom::Real(1.0))]));
        assert_eq!(t.coerce(Datum::empty_set()), Datum::empty_map());
        assert!(t.check(&d, false).is_ok());
    }

    #[test]
    fn schema_with_dangling_ref_is_refused() {
        let v = json!({"name": "d", "tables": {"A": {"columns": {"r": {"type": {"key": {"type": "uuid", "refTable": "B"}}}}}}});
        let e = DatabaseSchema::from_json(&v).unwrap_err();
        assert!(e.to_string().starts_with("schema.tables.A.columns.r:"), "{e}");
    }

    #[test]
    fn roots_default_to_all_when_none_marked() {
        let v = json!({"name": "d", "tables": {"A": {"columns": {}}, "B": {"columns": {}}}});
        let s = DatabaseSchema::from_json(&v).unwrap();
        assert!(s.is_root("A") && s.is_root("B"));
        assert_eq!(s.table("A").and_then(|t| t.column("_uuid")), Some(&UUID_COLUMN));
    }
}
