//! The ordered set the indexes map their keys to: nearly every key (a row, an iface-id, a switch
//! port) has exactly one member, which is then held inline instead of in a tree node of its own.

use std::collections::{btree_set, BTreeSet};
use std::iter;

/// An ordered set held inline while it has at most one member.
///
/// Canonical: a set of two members or more is `Many`, so that `==` is set equality.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum SmallSet<V> {
    /// No member.
    #[default]
    Empty,
    /// One member.
    One(V),
    /// Two members or more.
    Many(BTreeSet<V>),
}

/// The members of a [`SmallSet`], lowest first.
pub(crate) enum Iter<'a, V> {
    /// At most one member.
    Inline(iter::Once<&'a V>),
    /// Empty, or a tree's members.
    Tree(Option<btree_set::Iter<'a, V>>),
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<&'a V> {
        match self {
            Iter::Inline(one) => one.next(),
            Iter::Tree(tree) => tree.as_mut()?.next(),
        }
    }
}

impl<V: Ord> SmallSet<V> {
    /// The set of one member.
    pub(crate) fn one(v: V) -> Self {
        SmallSet::One(v)
    }

    /// The set of `members`, which are sorted and distinct (a bulk build).
    pub(crate) fn from_sorted(mut members: Vec<V>) -> Self {
        match members.len() {
            0 => SmallSet::Empty,
            1 => members.pop().map_or(SmallSet::Empty, SmallSet::One),
            _ => SmallSet::Many(members.into_iter().collect()),
        }
    }

    /// Adds `v`; false if it was a member already.
    pub(crate) fn insert(&mut self, v: V) -> bool {
        match std::mem::take(self) {
            SmallSet::Empty => {
                *self = SmallSet::One(v);
                true
            }
            SmallSet::One(a) if a == v => {
                *self = SmallSet::One(a);
                false
            }
            SmallSet::One(a) => {
                *self = SmallSet::Many(BTreeSet::from([a, v]));
                true
            }
            SmallSet::Many(mut set) => {
                let added = set.insert(v);
                *self = SmallSet::Many(set);
                added
            }
        }
    }

    /// Removes `v`; false if it was not a member.
    pub(crate) fn remove(&mut self, v: &V) -> bool {
        match self {
            SmallSet::Empty => false,
            SmallSet::One(a) => {
                if a != v {
                    return false;
                }
                *self = SmallSet::Empty;
                true
            }
            SmallSet::Many(set) => {
                if !set.remove(v) {
                    return false;
                }
                if set.len() == 1 {
                    if let Some(last) = set.pop_first() {
                        *self = SmallSet::One(last);
                    }
                }
                true
            }
        }
    }

    /// The lowest member.
    pub(crate) fn first(&self) -> Option<&V> {
        match self {
            SmallSet::Empty => None,
            SmallSet::One(a) => Some(a),
            SmallSet::Many(set) => set.first(),
        }
    }

    /// How many members.
    pub(crate) fn len(&self) -> usize {
        match self {
            SmallSet::Empty => 0,
            SmallSet::One(_) => 1,
            SmallSet::Many(set) => set.len(),
        }
    }

    /// Whether there is no member.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, SmallSet::Empty)
    }

    /// The members, lowest first.
    pub(crate) fn iter(&self) -> Iter<'_, V> {
        match self {
            SmallSet::Empty => Iter::Tree(None),
            SmallSet::One(a) => Iter::Inline(iter::once(a)),
            SmallSet::Many(set) => Iter::Tree(Some(set.iter())),
        }
    }
}

impl<'a, V: Ord> IntoIterator for &'a SmallSet<V> {
    type Item = &'a V;
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any sequence of inserts and removes leaves the same members, in the same order, as a
        /// `BTreeSet` given the same sequence, and equal sets compare equal.
        #[test]
        fn behaves_as_a_btree_set(ops in proptest::collection::vec((proptest::bool::ANY, 0..4u8), 0..40)) {
            let (mut small, mut tree) = (SmallSet::default(), BTreeSet::new());
            for (add, v) in ops {
                let (a, b) = if add { (small.insert(v), tree.insert(v)) } else { (small.remove(&v), tree.remove(&v)) };
                proptest::prop_assert_eq!(a, b);
                proptest::prop_assert_eq!(small.iter().copied().collect::<Vec<_>>(), tree.iter().copied().collect::<Vec<_>>());
                proptest::prop_assert_eq!((small.len(), small.is_empty(), small.first()), (tree.len(), tree.is_empty(), tree.first()));
                let mut rebuilt = SmallSet::default();
                for v in &tree {
                    rebuilt.insert(*v);
                }
                proptest::prop_assert_eq!(&small, &rebuilt);
                proptest::prop_assert_eq!(&small, &SmallSet::from_sorted(tree.iter().copied().collect()));
            }
        }
    }
}
