//! [`ReplicaRow`]: one row of a replicated table, its values at the table's column positions.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Index;
use std::sync::Arc;

use super::datum::{ColumnName, Datum};
use super::row::Row;

/// The columns of a replicated table, sorted by name: held once per table and shared by all its
/// rows.
pub type Columns = Arc<[ColumnName]>;

/// The position of `column` among `columns`. A table has a few dozen columns at most, and their
/// names mostly differ in length: a scan comparing lengths first costs less than a binary search
/// comparing bytes at every step.
pub(crate) fn position(columns: &[ColumnName], column: &str) -> Option<usize> {
    columns.iter().position(|c| **c == *column)
}

/// A row of a [`Replica`](super::replica::Replica): a value for every monitored column of its
/// table, at the column's position in the table's [`Columns`].
///
/// The row holds values only; the names are the table's, shared. A table's rows all hold the
/// same columns, so copying or building one copies no names, and a row of a table with many
/// columns stays one small allocation. It reads like a [`Row`]: [`ReplicaRow::get`], `row["name"]`,
/// [`ReplicaRow::iter`] in name order; [`ReplicaRow::to_row`] gives a [`Row`].
#[derive(Clone, PartialEq)]
pub struct ReplicaRow {
    columns: Columns,
    values: Box<[Datum]>,
}

impl ReplicaRow {
    /// The row with `values[i]` in column `columns[i]`: one value per column, names sorted and
    /// distinct (the replica keeps both).
    pub(crate) fn from_parts(columns: Columns, values: Box<[Datum]>) -> ReplicaRow {
        debug_assert_eq!(columns.len(), values.len());
        ReplicaRow { columns, values }
    }

    /// The values, to take or change (the replica's own use).
    pub(crate) fn into_values(self) -> Box<[Datum]> {
        self.values
    }

    /// The table's columns, in name order.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The values, at the positions of [`ReplicaRow::columns`].
    pub fn values(&self) -> &[Datum] {
        &self.values
    }

    /// The value of `column`.
    pub fn get(&self, column: &str) -> Option<&Datum> {
        self.values.get(position(&self.columns, column)?)
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a row of a table with no monitored column.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `(name, value)` in name order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&ColumnName, &Datum)> + ExactSizeIterator {
        self.columns.iter().zip(self.values.iter())
    }

    /// The same columns and values as a [`Row`].
    pub fn to_row(&self) -> Row {
        self.iter().map(|(c, d)| (c.clone(), d.clone())).collect()
    }
}

impl From<Row> for ReplicaRow {
    /// The row's columns become the row's own [`Columns`].
    fn from(row: Row) -> ReplicaRow {
        let (columns, values): (Vec<ColumnName>, Vec<Datum>) = row.into_iter().unzip();
        ReplicaRow { columns: columns.into(), values: values.into() }
    }
}

impl PartialEq<Row> for ReplicaRow {
    fn eq(&self, other: &Row) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for ReplicaRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<Q: Borrow<str> + ?Sized> Index<&Q> for ReplicaRow {
    type Output = Datum;

    /// The value of a column the row is known to have; panics otherwise, as [`Row`] does.
    fn index(&self, column: &Q) -> &Datum {
        let column = column.borrow();
        self.get(column).unwrap_or_else(|| panic!("row has no column {column:?}"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn name(n: u8) -> ColumnName {
        // Names of different lengths, so that order is not that of the numbers.
        ColumnName::from(format!("c{}", "x".repeat(usize::from(n % 3))) + &n.to_string())
    }

    proptest! {
        #[test]
        fn reads_as_the_row_it_was_made_from(pairs in prop::collection::vec((0u8..12, -3i64..3), 0..16)) {
            let row: Row = pairs.iter().map(|(c, v)| (name(*c), Datum::atom(*v))).collect();
            let r = ReplicaRow::from(row.clone());
            prop_assert_eq!(&r.to_row(), &row);
            prop_assert!(r == row);
            prop_assert_eq!(format!("{r:?}"), format!("{row:?}"));
            prop_assert_eq!(r.len(), row.len());
            prop_assert!(r.iter().eq(row.iter()));
            for c in 0..12 {
                prop_assert_eq!(r.get(&name(c)), row.get(&name(c)));
            }
        }
    }
}
