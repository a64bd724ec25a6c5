//! [`Row`]: the columns of one OVSDB row, by name.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Index;

use super::datum::{ColumnName, Datum};

/// A row: column name to value, each name once. Depending on context it holds every column or
/// only some. Iteration is in column-name order, as for a `BTreeMap`.
///
/// The entries are one vector sorted by name, not a tree: a row has a few dozen columns at
/// most, and a vector is built and copied in one allocation where a tree takes several, and is
/// searched in as few steps. A replica keeps its rows as [`ReplicaRow`](super::ReplicaRow)s,
/// values only.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row {
    entries: Vec<(ColumnName, Datum)>,
}

/// The iterator of [`Row::iter`]: `(name, value)` in name order.
pub type Iter<'r> = std::iter::Map<
    std::slice::Iter<'r, (ColumnName, Datum)>,
    fn(&'r (ColumnName, Datum)) -> (&'r ColumnName, &'r Datum),
>;

impl Row {
    /// The row with no columns.
    pub const fn new() -> Row {
        Row { entries: Vec::new() }
    }

    /// The row with no columns, with room for `n`.
    pub fn with_capacity(n: usize) -> Row {
        Row { entries: Vec::with_capacity(n) }
    }

    /// Where `column` is (`Ok`), or where it would go (`Err`).
    fn position(&self, column: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(c, _)| (**c).cmp(column))
    }

    /// The value of `column`.
    pub fn get(&self, column: &str) -> Option<&Datum> {
        self.position(column).ok().map(|i| &self.entries[i].1)
    }

    /// The value of `column`, to change it.
    pub fn get_mut(&mut self, column: &str) -> Option<&mut Datum> {
        self.position(column).ok().map(|i| &mut self.entries[i].1)
    }

    /// The name and value of `column`.
    pub fn get_key_value(&self, column: &str) -> Option<(&ColumnName, &Datum)> {
        self.position(column).ok().map(|i| {
            let (c, d) = &self.entries[i];
            (c, d)
        })
    }

    /// True if the row has `column`.
    pub fn contains_key(&self, column: &str) -> bool {
        self.position(column).is_ok()
    }

    /// Sets `column` to `value`, returning the value it replaced.
    pub fn insert(&mut self, column: ColumnName, value: Datum) -> Option<Datum> {
        // Rows are mostly built in name order: appending needs no search.
        let after_last = self.entries.last().is_none_or(|(c, _)| *c < column);
        let at = if after_last { Err(self.entries.len()) } else { self.position(&column) };
        match at {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (column, value));
                None
            }
        }
    }

    /// Removes `column`, returning its value.
    pub fn remove(&mut self, column: &str) -> Option<Datum> {
        self.remove_entry(column).map(|(_, d)| d)
    }

    /// Removes `column`, returning its name and value.
    pub fn remove_entry(&mut self, column: &str) -> Option<(ColumnName, Datum)> {
        self.position(column).ok().map(|i| self.entries.remove(i))
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for the row with no columns.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(name, value)` in name order.
    pub fn iter(&self) -> Iter<'_> {
        self.entries.iter().map(|(c, d)| (c, d))
    }

    /// The column names, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &ColumnName> + ExactSizeIterator {
        self.entries.iter().map(|(c, _)| c)
    }

    /// The values, in column-name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Datum> + ExactSizeIterator {
        self.entries.iter().map(|(_, d)| d)
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<Q: Borrow<str> + ?Sized> Index<&Q> for Row {
    type Output = Datum;

    /// The value of a column the row is known to have; panics otherwise, as `BTreeMap` does.
    fn index(&self, column: &Q) -> &Datum {
        let column = column.borrow();
        match self.get(column) {
            Some(d) => d,
            None => panic!("row has no column {column:?}"),
        }
    }
}

impl FromIterator<(ColumnName, Datum)> for Row {
    /// For a name given twice the last value wins, as for a `BTreeMap`.
    fn from_iter<I: IntoIterator<Item = (ColumnName, Datum)>>(iter: I) -> Row {
        let mut entries: Vec<(ColumnName, Datum)> = iter.into_iter().collect();
        // Stable: of equal names, the last given is the last of its run.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(ColumnName, Datum)> = Vec::with_capacity(entries.len());
        for e in entries {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        Row { entries: out }
    }
}

impl<const N: usize> From<[(ColumnName, Datum); N]> for Row {
    fn from(entries: [(ColumnName, Datum); N]) -> Row {
        entries.into_iter().collect()
    }
}

impl Extend<(ColumnName, Datum)> for Row {
    fn extend<I: IntoIterator<Item = (ColumnName, Datum)>>(&mut self, iter: I) {
        for (c, d) in iter {
            self.insert(c, d);
        }
    }
}

impl IntoIterator for Row {
    type Item = (ColumnName, Datum);
    type IntoIter = std::vec::IntoIter<(ColumnName, Datum)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'r> IntoIterator for &'r Row {
    type Item = (&'r ColumnName, &'r Datum);
    type IntoIter = Iter<'r>;

    fn into_iter(self) -> Iter<'r> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// One step on a row and on the `BTreeMap` it stands in for.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i64),
        Remove(u8),
    }

    fn name(n: u8) -> ColumnName {
        // Names of different lengths, so that order is not that of the numbers.
        ColumnName::from(format!("c{}", "x".repeat(usize::from(n % 3))) + &n.to_string())
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..12, any::<i64>()).prop_map(|(c, v)| Op::Insert(c, v)),
            (0u8..12).prop_map(Op::Remove),
        ]
    }

    fn pairs() -> impl Strategy<Value = Vec<(u8, i64)>> {
        prop::collection::vec((0u8..12, -3i64..3), 0..16)
    }

    fn both(pairs: &[(u8, i64)]) -> (Row, BTreeMap<ColumnName, Datum>) {
        let it = || pairs.iter().map(|(c, v)| (name(*c), Datum::atom(*v)));
        (it().collect(), it().collect())
    }

    fn same(row: &Row, map: &BTreeMap<ColumnName, Datum>) {
        assert_eq!(row.len(), map.len());
        assert!(row.iter().eq(map.iter()), "{row:?} vs {map:?}");
        assert_eq!(format!("{row:?}"), format!("{map:?}"));
        for c in 0..12 {
            let n = name(c);
            assert_eq!(row.get(&n), map.get(&n));
            assert_eq!(row.contains_key(&n), map.contains_key(&n));
            assert_eq!(row.get_key_value(&n), map.get_key_value(&n));
        }
    }

    proptest! {
        #[test]
        fn behaves_as_a_btreemap(start in pairs(), ops in prop::collection::vec(op(), 0..40)) {
            let (mut row, mut map) = both(&start);
            same(&row, &map);
            for op in ops {
                match op {
                    Op::Insert(c, v) => {
                        assert_eq!(row.insert(name(c), Datum::atom(v)), map.insert(name(c), Datum::atom(v)));
                    }
                    Op::Remove(c) => assert_eq!(row.remove(&name(c)), map.remove(&name(c))),
                }
                same(&row, &map);
            }
            let mut extended = Row::new();
            extended.extend(row.clone());
            assert_eq!(&extended, &row);
            assert!(row.into_iter().eq(map));
        }

        #[test]
        fn equality_and_order_are_those_of_the_btreemap(a in pairs(), b in pairs()) {
            let ((ra, ma), (rb, mb)) = (both(&a), both(&b));
            prop_assert_eq!(ra == rb, ma == mb);
            prop_assert_eq!(ra.cmp(&rb), ma.cmp(&mb));
        }
    }

    #[test]
    fn the_last_value_given_for_a_name_wins() {
        let row = Row::from([
            ("b".into(), Datum::atom(1)),
            ("a".into(), Datum::atom(2)),
            ("b".into(), Datum::atom(3)),
        ]);
        assert_eq!(row.keys().map(|c| &**c).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(row["b"], Datum::atom(3));
        assert_eq!(row.values().collect::<Vec<_>>(), [&Datum::atom(2), &Datum::atom(3)]);
    }
}
