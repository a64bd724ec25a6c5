//! Values stored in OVSDB columns (RFC 7047 §5.1): [`Uuid`], [`Atom`] and [`Datum`].
//!
//! ```text
//! <atom>      = <string> | <number> | <boolean> | <uuid> | <named-uuid>
//! <uuid>      = ["uuid", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"]
//! <named-uuid>= ["named-uuid", <id>]
//! <set>       = <atom> | ["set", [<atom>*]]
//! <map>       = ["map", [[<atom>, <atom>]*]]
//! <value>     = <atom> | <set> | <map>
//! ```
//!
//! A [`Datum`] is always held in canonical form: a set of atoms sorted and without duplicates
//! (an atom alone is a set of one), or a map sorted by key with unique keys. Canonical form makes
//! `==` mean "the same OVSDB value" however the JSON spelled it.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Number, Value};

use super::error::{DecodeError, Loc};
use super::row::Row;

/// A row or transaction UUID, printed in the canonical 8-4-4-4-12 lowercase hex form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub u128);

impl Uuid {
    /// The all-zero UUID (the default of a uuid column, and "no last transaction").
    pub const ZERO: Uuid = Uuid(0);
}

impl Uuid {
    /// The canonical text form as ASCII bytes (what `Display` prints), without the formatting
    /// machinery: row uuids are printed once per row of every snapshot.
    fn to_ascii(self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut j = 0;
        for (i, b) in self.0.to_be_bytes().into_iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                j += 1;
            }
            out[j] = HEX[usize::from(b >> 4)];
            out[j + 1] = HEX[usize::from(b & 0xf)];
            j += 2;
        }
        out
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ascii = self.to_ascii();
        // Only hex digits and dashes were written.
        f.write_str(std::str::from_utf8(&ascii).map_err(|_| fmt::Error)?)
    }
}

/// Why a string is not a canonical UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a UUID (expected 8-4-4-4-12 hex digits)")]
pub struct BadUuid(pub String);

impl FromStr for Uuid {
    type Err = BadUuid;

    fn from_str(s: &str) -> Result<Self, BadUuid> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return Err(BadUuid(s.to_string()));
        }
        let mut v: u128 = 0;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(BadUuid(s.to_string()));
                }
                continue;
            }
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(BadUuid(s.to_string())),
            };
            v = (v << 4) | u128::from(d);
        }
        Ok(Uuid(v))
    }
}

/// The five atomic types of RFC 7047 §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AtomicType {
    /// 64-bit signed integer.
    Integer,
    /// IEEE double.
    Real,
    /// true or false.
    Boolean,
    /// UTF-8 string.
    String,
    /// A UUID (or, in a transaction, a named UUID).
    Uuid,
}

impl AtomicType {
    /// The name used in schemas.
    pub fn as_str(self) -> &'static str {
        match self {
            AtomicType::Integer => "integer",
            AtomicType::Real => "real",
            AtomicType::Boolean => "boolean",
            AtomicType::String => "string",
            AtomicType::Uuid => "uuid",
        }
    }

    /// Parses a schema's atomic type name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }

    /// The default atom of the type (0, 0.0, false, "", the zero UUID), as OVSDB defines it.
    pub fn default_atom(self) -> Atom {
        match self {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(Arc::from("")),
            AtomicType::Uuid => Atom::Uuid(Uuid::ZERO),
        }
    }
}

impl fmt::Display for AtomicType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scalar OVSDB value. Reals are ordered and compared with `f64::total_cmp`, so `Atom` is a
/// total order and can be a set element or map key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Atom {
    /// An integer.
    Integer(i64),
    /// A real.
    Real(f64),
    /// A boolean.
    Boolean(bool),
    /// A string. Shared: the copies made of it (rows of a replica, what they are translated
    /// into) hold one allocation.
    String(Arc<str>),
    /// A UUID.
    Uuid(Uuid),
    /// A name given to a row inserted earlier in the same transaction (`uuid-name`).
    NamedUuid(String),
}

impl Atom {
    /// The atomic type the atom belongs to (a named UUID is a UUID).
    pub fn atomic_type(&self) -> AtomicType {
        match self {
            Atom::Integer(_) => AtomicType::Integer,
            Atom::Real(_) => AtomicType::Real,
            Atom::Boolean(_) => AtomicType::Boolean,
            Atom::String(_) => AtomicType::String,
            Atom::Uuid(_) | Atom::NamedUuid(_) => AtomicType::Uuid,
        }
    }

    /// A string atom.
    pub fn string(s: impl Into<Arc<str>>) -> Self {
        Atom::String(s.into())
    }

    /// The string, if this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer atom.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The UUID, if this is a UUID atom.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// The JSON form of the atom. A non-finite real (which no parse produces) becomes `null`.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => Value::Number((*i).into()),
            Atom::Real(r) => Number::from_f64(*r).map(Value::Number).unwrap_or(Value::Null),
            Atom::Boolean(b) => Value::Bool(*b),
            Atom::String(s) => Value::String(s.to_string()),
            Atom::Uuid(u) => Value::Array(vec!["uuid".into(), u.to_string().into()]),
            Atom::NamedUuid(n) => Value::Array(vec!["named-uuid".into(), n.clone().into()]),
        }
    }

    /// Parses an atom without knowing its type: a JSON integer is an integer, any other JSON
    /// number a real.
    pub fn from_json(v: &Value) -> Result<Atom, DecodeError> {
        Atom::from_json_at(v, &Loc::Root("atom"))
    }

    pub(crate) fn from_json_at(v: &Value, loc: &Loc<'_>) -> Result<Atom, DecodeError> {
        match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Atom::Integer(i))
                } else if n.is_u64() {
                    Err(loc.error("an integer in the 64-bit signed range", v))
                } else {
                    match n.as_f64() {
                        Some(r) if r.is_finite() => Ok(Atom::Real(r)),
                        _ => Err(loc.error("a finite number", v)),
                    }
                }
            }
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::String(s) => Ok(Atom::String(Arc::from(s.as_str()))),
            Value::Array(a) => match (a.first().and_then(Value::as_str), a.get(1), a.len()) {
                (Some("uuid"), Some(Value::String(s)), 2) => s
                    .parse()
                    .map(Atom::Uuid)
                    .map_err(|_| loc.index(1).error("a UUID 8-4-4-4-12", &a[1])),
                (Some("named-uuid"), Some(Value::String(s)), 2) => {
                    if is_id(s) {
                        Ok(Atom::NamedUuid(s.clone()))
                    } else {
                        Err(loc.index(1).error("an identifier [_a-zA-Z][_a-zA-Z0-9]*", &a[1]))
                    }
                }
                _ => Err(loc.error("an atom (number, boolean, string, uuid or named-uuid)", v)),
            },
            Value::Null | Value::Object(_) => {
                Err(loc.error("an atom (number, boolean, string, uuid or named-uuid)", v))
            }
        }
    }

    /// Converts an integer atom to a real when the column wants a real (OVSDB prints reals
    /// with integral values as JSON integers). Other atoms are returned unchanged.
    pub(crate) fn coerce(self, ty: AtomicType) -> Atom {
        match (self, ty) {
            (Atom::Integer(i), AtomicType::Real) => Atom::Real(i as f64),
            (a, _) => a,
        }
    }
}

/// True for `[_a-zA-Z][_a-zA-Z0-9]*`, the form of `uuid-name` and named-uuid identifiers.
pub(crate) fn is_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Atom {}

impl Hash for Atom {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Atom::Integer(i) => i.hash(state),
            Atom::Real(r) => r.to_bits().hash(state),
            Atom::Boolean(b) => b.hash(state),
            Atom::String(s) => s.hash(state),
            Atom::NamedUuid(s) => s.hash(state),
            Atom::Uuid(u) => u.hash(state),
        }
    }
}

impl fmt::Display for Atom {
    /// The JSON form, e.g. `"br-int"`, `5`, `["uuid","…"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Real(r) if !r.is_finite() => write!(f, "{r}"),
            _ => write!(f, "{}", self.to_json()),
        }
    }
}

impl From<i64> for Atom {
    fn from(i: i64) -> Self {
        Atom::Integer(i)
    }
}

impl From<bool> for Atom {
    fn from(b: bool) -> Self {
        Atom::Boolean(b)
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom::String(Arc::from(s))
    }
}

impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom::String(Arc::from(s))
    }
}

impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Self {
        Atom::Uuid(u)
    }
}

/// The elements of a set [`Datum`], sorted and without duplicates; it reads as a slice. A set of
/// one, the value of every scalar column, is held inline: copying or parsing it allocates nothing.
/// `==`, order and hash are those of the slice, however the set is held.
#[derive(Clone)]
pub struct AtomSet(AtomSetRepr);

#[derive(Clone)]
enum AtomSetRepr {
    One(Atom),
    /// Zero or two or more elements (one is held as `One`).
    Many(Vec<Atom>),
}

impl AtomSet {
    /// The empty set.
    pub const fn new() -> AtomSet {
        AtomSet(AtomSetRepr::Many(Vec::new()))
    }

    /// The set of one atom.
    pub const fn one(a: Atom) -> AtomSet {
        AtomSet(AtomSetRepr::One(a))
    }

    /// The elements.
    pub fn as_slice(&self) -> &[Atom] {
        match &self.0 {
            AtomSetRepr::One(a) => std::slice::from_ref(a),
            AtomSetRepr::Many(v) => v,
        }
    }

    /// The elements as a vector.
    pub fn into_vec(self) -> Vec<Atom> {
        match self.0 {
            AtomSetRepr::One(a) => vec![a],
            AtomSetRepr::Many(v) => v,
        }
    }
}

impl Default for AtomSet {
    fn default() -> Self {
        AtomSet::new()
    }
}

impl From<Vec<Atom>> for AtomSet {
    /// The atoms must be sorted and without duplicates, as [`Datum::set`] makes them.
    fn from(mut v: Vec<Atom>) -> Self {
        match v.pop() {
            Some(a) if v.is_empty() => AtomSet::one(a),
            Some(a) => {
                v.push(a);
                AtomSet(AtomSetRepr::Many(v))
            }
            None => AtomSet(AtomSetRepr::Many(v)),
        }
    }
}

impl std::ops::Deref for AtomSet {
    type Target = [Atom];

    fn deref(&self) -> &[Atom] {
        self.as_slice()
    }
}

impl PartialEq for AtomSet {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for AtomSet {}

impl PartialOrd for AtomSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AtomSet {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for AtomSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for AtomSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// The iterator of an owned [`AtomSet`].
pub struct AtomSetIntoIter(AtomSetIntoIterRepr);

enum AtomSetIntoIterRepr {
    One(Option<Atom>),
    Many(std::vec::IntoIter<Atom>),
}

impl Iterator for AtomSetIntoIter {
    type Item = Atom;

    fn next(&mut self) -> Option<Atom> {
        match &mut self.0 {
            AtomSetIntoIterRepr::One(a) => a.take(),
            AtomSetIntoIterRepr::Many(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            AtomSetIntoIterRepr::One(a) => {
                (usize::from(a.is_some()), Some(usize::from(a.is_some())))
            }
            AtomSetIntoIterRepr::Many(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for AtomSetIntoIter {}

impl IntoIterator for AtomSet {
    type Item = Atom;
    type IntoIter = AtomSetIntoIter;

    fn into_iter(self) -> AtomSetIntoIter {
        AtomSetIntoIter(match self.0 {
            AtomSetRepr::One(a) => AtomSetIntoIterRepr::One(Some(a)),
            AtomSetRepr::Many(v) => AtomSetIntoIterRepr::Many(v.into_iter()),
        })
    }
}

impl<'s> IntoIterator for &'s AtomSet {
    type Item = &'s Atom;
    type IntoIter = std::slice::Iter<'s, Atom>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

/// The value of a column: a set of atoms (a single atom is a set of one) or a map. Always in
/// canonical form (sorted, no duplicate elements or keys); build it with [`Datum::set`],
/// [`Datum::map`], [`Datum::atom`] or parse it, and `==` is OVSDB equality.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Datum {
    /// A set of atoms, sorted and without duplicates.
    Set(AtomSet),
    /// A map, sorted by key, keys unique.
    Map(Vec<(Atom, Atom)>),
}

impl Datum {
    /// A set holding one atom (the form of a scalar column's value).
    pub fn atom(a: impl Into<Atom>) -> Self {
        Datum::Set(AtomSet::one(a.into()))
    }

    /// The empty set.
    pub fn empty_set() -> Self {
        Datum::Set(AtomSet::new())
    }

    /// The empty map.
    pub fn empty_map() -> Self {
        Datum::Map(Vec::new())
    }

    /// A set of the given atoms; duplicates are dropped.
    pub fn set<A: Into<Atom>>(atoms: impl IntoIterator<Item = A>) -> Self {
        let mut v: Vec<Atom> = atoms.into_iter().map(Into::into).collect();
        v.sort();
        v.dedup();
        Datum::Set(v.into())
    }

    /// A map of the given pairs; for a duplicated key the last pair wins.
    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let m: BTreeMap<Atom, Atom> =
            pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Datum::Map(m.into_iter().collect())
    }

    /// The only atom, if this is a set of exactly one.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Datum::Set(AtomSet(AtomSetRepr::One(a))) => Some(a),
            _ => None,
        }
    }

    /// The elements, if this is a set.
    pub fn as_set(&self) -> Option<&[Atom]> {
        match self {
            Datum::Set(v) => Some(v.as_slice()),
            Datum::Map(_) => None,
        }
    }

    /// The pairs, if this is a map.
    pub fn as_map(&self) -> Option<&[(Atom, Atom)]> {
        match self {
            Datum::Map(m) => Some(m),
            Datum::Set(_) => None,
        }
    }

    /// The value for `key`, if this is a map holding it.
    pub fn map_get(&self, key: &Atom) -> Option<&Atom> {
        let m = self.as_map()?;
        m.binary_search_by(|(k, _)| k.cmp(key)).ok().map(|i| &m[i].1)
    }

    /// True if this is a set holding `atom`.
    pub fn contains(&self, atom: &Atom) -> bool {
        self.as_set().is_some_and(|s| s.binary_search(atom).is_ok())
    }

    /// Number of elements or pairs.
    pub fn len(&self) -> usize {
        match self {
            Datum::Set(v) => v.len(),
            Datum::Map(m) => m.len(),
        }
    }

    /// True for the empty set or map.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The JSON form: a set of one is written as the bare atom, as Open vSwitch does.
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(v) if v.len() == 1 => v[0].to_json(),
            Datum::Set(v) => Value::Array(vec![
                "set".into(),
                Value::Array(v.iter().map(Atom::to_json).collect()),
            ]),
            Datum::Map(m) => Value::Array(vec![
                "map".into(),
                Value::Array(
                    m.iter().map(|(k, v)| Value::Array(vec![k.to_json(), v.to_json()])).collect(),
                ),
            ]),
        }
    }

    /// Parses a datum without knowing the column type. Duplicate set elements or map keys are
    /// an error, as in ovsdb-server.
    pub fn from_json(v: &Value) -> Result<Datum, DecodeError> {
        Datum::from_json_at(v, &Loc::Root("datum"))
    }

    pub(crate) fn from_json_at(v: &Value, loc: &Loc<'_>) -> Result<Datum, DecodeError> {
        let tagged = v.as_array().and_then(|a| match (a.first()?.as_str()?, a.len()) {
            ("set", 2) => Some((true, &a[1])),
            ("map", 2) => Some((false, &a[1])),
            _ => None,
        });
        let Some((is_set, body)) = tagged else {
            return Ok(Datum::atom(Atom::from_json_at(v, loc)?));
        };
        let body_loc = loc.index(1);
        let items = body_loc.array(body)?;
        if is_set {
            let mut atoms = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                atoms.push(Atom::from_json_at(item, &body_loc.index(i))?);
            }
            atoms.sort();
            if let Some(w) = atoms.windows(2).find(|w| w[0] == w[1]) {
                return Err(body_loc.error("a set without duplicates", &w[0].to_json()));
            }
            Ok(Datum::Set(atoms.into()))
        } else {
            let mut pairs = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let l = body_loc.index(i);
                match item.as_array().map(Vec::as_slice) {
                    Some([k, val]) => pairs.push((
                        Atom::from_json_at(k, &l.index(0))?,
                        Atom::from_json_at(val, &l.index(1))?,
                    )),
                    _ => return Err(l.error("a [key, value] pair", item)),
                }
            }
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(body_loc.error("a map without duplicate keys", &w[0].0.to_json()));
            }
            Ok(Datum::Map(pairs))
        }
    }
}

/// A column name. Shared: a replica keeps each table's names once, and the rows of a table in
/// one parsed message share theirs.
pub type ColumnName = Arc<str>;

/// The column names met while parsing rows of one table: each is allocated once and shared by
/// every row that has it, so rows cost no name allocation and drop none.
#[derive(Debug, Default)]
pub(crate) struct ColumnNames(Vec<ColumnName>);

impl ColumnNames {
    /// A table has a few dozen columns: names beyond this many are not shared, so that a peer
    /// sending thousands of made-up names cannot make each search and insert slow.
    const MAX: usize = 256;

    /// The shared name equal to `name`.
    pub(crate) fn name(&mut self, name: &str) -> ColumnName {
        match self.0.binary_search_by(|c| (**c).cmp(name)) {
            Ok(i) => self.0[i].clone(),
            Err(i) => {
                let c = ColumnName::from(name);
                if self.0.len() < Self::MAX {
                    self.0.insert(i, c.clone());
                }
                c
            }
        }
    }
}

/// Parses a `<row>` object, each member a datum, its column names taken from `names`.
pub(crate) fn row_from_json(
    v: &Value,
    loc: &Loc<'_>,
    names: &mut ColumnNames,
) -> Result<Row, DecodeError> {
    let members = loc.object(v)?;
    let mut row = Row::with_capacity(members.len());
    for (k, d) in members {
        row.insert(names.name(k), Datum::from_json_at(d, &loc.key(k))?);
    }
    Ok(row)
}

/// The JSON `<row>` object of a row.
pub fn row_to_json(row: &Row) -> Value {
    Value::Object(row.iter().map(|(k, d)| (k.to_string(), d.to_json())).collect())
}

impl From<Atom> for Datum {
    fn from(a: Atom) -> Self {
        Datum::atom(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const U: &str = "a4dee483-b10d-4805-9d68-39aa5f73d7c1";

    #[test]
    fn uuid_parse_display_round_trip() {
        let u: Uuid = U.parse().unwrap();
        assert_eq!(u.to_string(), U);
        assert_eq!(u.0 >> 96, 0xa4dee483);
        let upper: Uuid = U.to_uppercase().parse().unwrap();
        assert_eq!(upper, u);
        assert_eq!(Uuid::ZERO.to_string(), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn uuid_display_matches_the_field_layout() {
        for v in [0u128, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, 1 << 100] {
            let fields = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                (v >> 96) as u32,
                (v >> 80) as u16,
                (v >> 64) as u16,
                (v >> 48) as u16,
                v & 0xffff_ffff_ffff
            );
            assert_eq!(Uuid(v).to_string(), fields);
        }
    }

    #[test]
    fn uuid_rejects_malformed() {
        for bad in [
            "",
            "a4dee483b10d48059d6839aa5f73d7c1",
            "a4dee483-b10d-4805-9d68-39aa5f73d7c",
            "a4dee483-b10d-4805-9d68-39aa5f73d7c1x",
            "g4dee483-b10d-4805-9d68-39aa5f73d7c1",
            "a4dee483_b10d-4805-9d68-39aa5f73d7c1",
            "a4dee483-b10d-4805-9d68-39aa5f73d7é",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn atoms_parse_from_json() {
        assert_eq!(Atom::from_json(&json!(5)).unwrap(), Atom::Integer(5));
        assert_eq!(Atom::from_json(&json!(-1.5)).unwrap(), Atom::Real(-1.5));
        assert_eq!(Atom::from_json(&json!(true)).unwrap(), Atom::Boolean(true));
        assert_eq!(Atom::from_json(&json!("x")).unwrap(), Atom::string("x"));
        assert_eq!(Atom::from_json(&json!(["uuid", U])).unwrap(), Atom::Uuid(U.parse().unwrap()));
        assert_eq!(
            Atom::from_json(&json!(["named-uuid", "row1"])).unwrap(),
            Atom::NamedUuid("row1".into())
        );
    }

    #[test]
    fn atom_errors_name_path_and_value() {
        let e = Atom::from_json(&json!(["uuid", "nope"])).unwrap_err();
        assert_eq!(e.to_string(), "atom[1]: expected a UUID 8-4-4-4-12, found \"nope\"");
        let e = Atom::from_json(&json!(null)).unwrap_err();
        assert!(e.to_string().contains("found null"), "{e}");
        assert!(Atom::from_json(&json!(u64::MAX)).is_err());
        assert!(Atom::from_json(&json!(["named-uuid", "1abc"])).is_err());
        assert!(Atom::from_json(&json!(["uuid", U, 1])).is_err());
        assert!(Atom::from_json(&json!({})).is_err());
    }

    #[test]
    fn datum_forms() {
        assert_eq!(Datum::from_json(&json!(1)).unwrap(), Datum::atom(1));
        assert_eq!(Datum::from_json(&json!(["set", [1]])).unwrap(), Datum::atom(1));
        assert_eq!(Datum::from_json(&json!(["set", [3, 1, 2]])).unwrap(), Datum::set([1, 2, 3]));
        assert_eq!(Datum::from_json(&json!(["set", []])).unwrap(), Datum::empty_set());
        let m = Datum::from_json(&json!(["map", [["b", "2"], ["a", "1"]]])).unwrap();
        assert_eq!(m, Datum::map([("a", "1"), ("b", "2")]));
        assert_eq!(m.map_get(&"b".into()), Some(&Atom::string("2")));
        assert_eq!(m.to_json(), json!(["map", [["a", "1"], ["b", "2"]]]));
        assert_eq!(Datum::set([2, 1]).to_json(), json!(["set", [1, 2]]));
        assert_eq!(Datum::atom("x").to_json(), json!("x"));
    }

    #[test]
    fn datum_rejects_duplicates_and_bad_pairs() {
        let e = Datum::from_json(&json!(["set", [1, 1]])).unwrap_err();
        assert!(e.to_string().contains("without duplicates"), "{e}");
        let e = Datum::from_json(&json!(["map", [["a", 1], ["a", 2]]])).unwrap_err();
        assert!(e.to_string().contains("duplicate keys"), "{e}");
        let e = Datum::from_json(&json!(["map", [["a"]]])).unwrap_err();
        assert_eq!(e.to_string(), "datum[1][0]: expected a [key, value] pair, found [\"a\"]");
        assert!(Datum::from_json(&json!(["set", 1])).is_err());
    }

    /// The datum as it was held before sets of one were inline: the reference the inline form
    /// must behave as.
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    enum VecDatum {
        Set(Vec<Atom>),
        Map(Vec<(Atom, Atom)>),
    }

    fn as_vec_datum(d: &Datum) -> VecDatum {
        match d {
            Datum::Set(s) => VecDatum::Set(s.to_vec()),
            Datum::Map(m) => VecDatum::Map(m.clone()),
        }
    }

    fn hash_of(x: &impl Hash) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        x.hash(&mut h);
        h.finish()
    }

    fn atom() -> impl Strategy<Value = Atom> {
        prop_oneof![
            (-3i64..3).prop_map(Atom::Integer),
            (-2i32..2).prop_map(|r| Atom::Real(f64::from(r) / 2.0)),
            any::<bool>().prop_map(Atom::Boolean),
            "[ab]{0,2}".prop_map(Atom::from),
            (0u128..3).prop_map(|u| Atom::Uuid(Uuid(u))),
        ]
    }

    fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            prop::collection::vec(atom(), 0..4).prop_map(Datum::set),
            prop::collection::vec((atom(), atom()), 0..3).prop_map(Datum::map),
        ]
    }

    proptest! {
        #[test]
        fn inline_sets_behave_as_vectors(a in datum(), b in datum()) {
            let (va, vb) = (as_vec_datum(&a), as_vec_datum(&b));
            prop_assert_eq!(a == b, va == vb);
            prop_assert_eq!(a.cmp(&b), va.cmp(&vb));
            if a == b {
                prop_assert_eq!(hash_of(&a), hash_of(&b));
            }
            prop_assert_eq!(format!("{:?}", a), format!("{:?}", va));
            let one = match &va {
                VecDatum::Set(v) if v.len() == 1 => v.first(),
                _ => None,
            };
            prop_assert_eq!(a.as_atom(), one);
            prop_assert_eq!(a.len(), match &va { VecDatum::Set(v) => v.len(), VecDatum::Map(m) => m.len() });
            if let Datum::Set(s) = a.clone() {
                let v: Vec<Atom> = s.clone().into_iter().collect();
                prop_assert_eq!(&v, &s.to_vec());
                prop_assert_eq!(AtomSet::from(v.clone()), s.clone());
                prop_assert_eq!(s.into_vec(), v);
            }
        }

        #[test]
        fn datums_round_trip_through_json(a in datum()) {
            let json = a.to_json();
            let back = Datum::from_json(&json).unwrap();
            prop_assert_eq!(&back, &a);
            prop_assert_eq!(back.as_atom(), a.as_atom());
            // A set of one parses the same spelled bare or as a set.
            if let Some(x) = a.as_atom() {
                let spelled = json!(["set", [x.to_json()]]);
                let parsed = Datum::from_json(&spelled).unwrap();
                prop_assert_eq!(parsed.as_atom(), Some(x));
            }
        }
    }

    #[test]
    fn a_set_of_one_is_held_inline() {
        assert!(matches!(Datum::atom(1), Datum::Set(AtomSet(AtomSetRepr::One(_)))));
        assert!(matches!(Datum::set([1]), Datum::Set(AtomSet(AtomSetRepr::One(_)))));
        assert!(matches!(
            Datum::from_json(&json!(["set", ["x"]])).unwrap(),
            Datum::Set(AtomSet(AtomSetRepr::One(_)))
        ));
        assert_eq!(AtomSet::from(vec![Atom::Integer(1)]), AtomSet::one(Atom::Integer(1)));
        assert_eq!(std::mem::size_of::<Datum>(), 32, "no larger than a vector and its tag");
    }

    #[test]
    fn atom_order_is_total_with_reals() {
        let mut v = vec![Atom::Real(2.0), Atom::Real(-0.5), Atom::Integer(7)];
        v.sort();
        assert_eq!(v, vec![Atom::Integer(7), Atom::Real(-0.5), Atom::Real(2.0)]);
        assert_eq!(Atom::Integer(3).coerce(AtomicType::Real), Atom::Real(3.0));
    }
}
