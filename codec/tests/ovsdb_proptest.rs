//! Property tests of the OVSDB codec: stream splitting is independent of chunking, data survive
//! a JSON round trip, and any sequence of `update2` notifications leaves a replica equal to one
//! built from the final rows.

use std::collections::{BTreeMap, BTreeSet};

use periscope_codec::ovsdb::{
    Atom, ChangeKind, DatabaseSchema, Datum, JsonStream, Replica, ReplicaRow, Row, RowUpdate2,
    TableUpdates2, Uuid,
};
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Stream splitting

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1000i32..1000).prop_map(|k| json!(f64::from(k) / 8.0)),
        "[{}\\[\\]\"\\\\:,a-zé€😀 \\n\\t]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[{}\"a-z]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn top_level() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(json_value(), 0..5).prop_map(Value::Array),
        prop::collection::btree_map("[{}\"a-z]{0,6}", json_value(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
}

proptest! {
    #[test]
    fn stream_yields_same_values_however_chunked(
        values in prop::collection::vec(top_level(), 1..6),
        seps in prop::collection::vec(prop_oneof![Just(""), Just(" "), Just("\n"), Just("\r\n\t")], 6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut text = Vec::new();
        let mut want = Vec::new();
        for (v, sep) in values.iter().zip(&seps) {
            let s = serde_json::to_string(v).unwrap();
            want.push(serde_json::from_str::<Value>(&s).unwrap());
            text.extend_from_slice(s.as_bytes());
            text.extend_from_slice(sep.as_bytes());
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(text.len() + 1)).collect();
        points.push(0);
        points.push(text.len());
        points.sort_unstable();
        points.dedup();
        let mut stream = JsonStream::new(1 << 20);
        let mut got = Vec::new();
        for w in points.windows(2) {
            stream.push(&text[w[0]..w[1]]).unwrap();
            while let Some(v) = stream.next_value().unwrap() {
                got.push(v);
            }
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(stream.buffered(), 0);
    }

    #[test]
    fn stream_refuses_what_exceeds_the_limit(value in top_level(), chunk in 1usize..64) {
        let s = serde_json::to_string(&value).unwrap();
        let max = s.len().saturating_sub(1);
        let mut stream = JsonStream::new(max);
        let mut refused = false;
        for c in s.as_bytes().chunks(chunk) {
            if stream.push(c).is_err() {
                refused = true;
                break;
            }
        }
        prop_assert!(refused);
        prop_assert!(stream.buffered() <= max + chunk);
    }
}

// ---------------------------------------------------------------------------------------------
// Datum round trip

fn atom() -> impl Strategy<Value = Atom> {
    prop_oneof![
        any::<i64>().prop_map(Atom::Integer),
        (-100_000i32..100_000).prop_map(|k| Atom::Real(f64::from(k) / 8.0)),
        any::<bool>().prop_map(Atom::Boolean),
        any::<String>().prop_map(Atom::from),
        any::<u128>().prop_map(|u| Atom::Uuid(Uuid(u))),
        "[_a-zA-Z][_a-zA-Z0-9]{0,8}".prop_map(Atom::NamedUuid),
    ]
}

fn datum() -> impl Strategy<Value = Datum> {
    prop_oneof![
        atom().prop_map(Datum::atom),
        prop::collection::vec(atom(), 0..8).prop_map(Datum::set),
        prop::collection::vec((atom(), atom()), 0..8).prop_map(Datum::map),
    ]
}

proptest! {
    #[test]
    fn datum_json_round_trip(d in datum()) {
        let text = d.to_json().to_string();
        let back = Datum::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        prop_assert_eq!(back, d);
    }

    #[test]
    fn uuid_display_parse_round_trip(u in any::<u128>()) {
        let s = Uuid(u).to_string();
        prop_assert_eq!(s.len(), 36);
        prop_assert_eq!(s.parse::<Uuid>().unwrap(), Uuid(u));
    }
}

// ---------------------------------------------------------------------------------------------
// Replica: sequences of update2

fn schema() -> DatabaseSchema {
    DatabaseSchema::from_json(&json!({"name": "p", "tables": {"T": {"columns": {
        "i": {"type": "integer"},
        "r": {"type": "real"},
        "o": {"type": {"key": "string", "min": 0, "max": 1}},
        "s": {"type": {"key": "integer", "min": 0, "max": "unlimited"}},
        "m": {"type": {"key": "string", "value": "integer", "min": 0, "max": "unlimited"}},
        "two": {"type": {"key": "string", "min": 1, "max": 3}}
    }}}}))
    .unwrap()
}

/// A generated row, as plain Rust values.
#[derive(Debug, Clone, PartialEq)]
struct GenRow {
    i: i64,
    r: f64,
    o: Option<String>,
    s: BTreeSet<i64>,
    m: BTreeMap<String, i64>,
    two: BTreeSet<String>,
}

fn gen_row() -> impl Strategy<Value = GenRow> {
    (
        -2i64..3,
        (-2i32..3).prop_map(|k| f64::from(k) / 4.0),
        prop::option::of("[xy]"),
        prop::collection::btree_set(0i64..8, 0..6),
        prop::collection::btree_map("[a-e]", 0i64..3, 0..5),
        prop::collection::btree_set("[pqrs]", 1..=3),
    )
        .prop_map(|(i, r, o, s, m, two)| GenRow { i, r, o, s, m, two })
}

impl GenRow {
    fn row(&self) -> Row {
        Row::from([
            ("i".into(), Datum::atom(self.i)),
            ("r".into(), Datum::atom(Atom::Real(self.r))),
            ("o".into(), Datum::set(self.o.iter().map(String::as_str))),
            ("s".into(), Datum::set(self.s.iter().copied())),
            ("m".into(), Datum::map(self.m.iter().map(|(k, v)| (k.as_str(), *v)))),
            ("two".into(), Datum::set(self.two.iter().map(String::as_str))),
        ])
    }

    /// The row as ovsdb-server sends it on insert: columns at their default omitted.
    fn insert_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        if self.i != 0 {
            o.insert("i".into(), json!(self.i));
        }
        if self.r != 0.0 {
            o.insert("r".into(), json!(self.r));
        }
        if let Some(x) = &self.o {
            o.insert("o".into(), json!(x));
        }
        if !self.s.is_empty() {
            o.insert("s".into(), json!(["set", self.s]));
        }
        if !self.m.is_empty() {
            o.insert(
                "m".into(),
                json!(["map", self.m.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()]),
            );
        }
        o.insert("two".into(), json!(["set", self.two]));
        Value::Object(o)
    }

    /// The `modify` diff from `self` to `new`, written independently of the codec from the
    /// rules in ovsdb-server(7) §4.1.14; also the changed columns.
    fn diff_json(&self, new: &GenRow) -> (Value, Vec<&'static str>) {
        let mut o = serde_json::Map::new();
        if self.i != new.i {
            o.insert("i".into(), json!(new.i));
        }
        if self.r != new.r {
            o.insert("r".into(), json!(new.r));
        }
        if self.o != new.o {
            // At most one element: the new value itself.
            o.insert("o".into(), new.o.as_ref().map_or(json!(["set", []]), |x| json!(x)));
        }
        if self.s != new.s {
            let toggled: Vec<_> = self.s.symmetric_difference(&new.s).collect();
            o.insert("s".into(), json!(["set", toggled]));
        }
        if self.m != new.m {
            let mut pairs = Vec::new();
            for (k, v) in &self.m {
                match new.m.get(k) {
                    None => pairs.push(json!([k, v])),
                    Some(nv) if nv != v => pairs.push(json!([k, nv])),
                    Some(_) => {}
                }
            }
            for (k, v) in &new.m {
                if !self.m.contains_key(k) {
                    pairs.push(json!([k, v]));
                }
            }
            o.insert("m".into(), json!(["map", pairs]));
        }
        if self.two != new.two {
            let toggled: Vec<_> = self.two.symmetric_difference(&new.two).collect();
            o.insert("two".into(), json!(["set", toggled]));
        }
        let changed =
            ["i", "m", "o", "r", "s", "two"].into_iter().filter(|c| o.contains_key(*c)).collect();
        (Value::Object(o), changed)
    }
}

const ROWS: usize = 5;
type State = Vec<Option<GenRow>>;

fn uuid(i: usize) -> String {
    Uuid(i as u128 + 1).to_string()
}

fn states() -> impl Strategy<Value = Vec<State>> {
    prop::collection::vec(prop::collection::vec(prop::option::weighted(0.7, gen_row()), ROWS), 1..8)
}

/// The update2 notification turning `prev` into `next`, and the changes it should report.
fn encode(prev: &State, next: &State) -> (Value, BTreeMap<usize, (char, Vec<&'static str>)>) {
    let mut rows = serde_json::Map::new();
    let mut expect = BTreeMap::new();
    for k in 0..ROWS {
        match (&prev[k], &next[k]) {
            (None, Some(n)) => {
                rows.insert(uuid(k), json!({"insert": n.insert_json()}));
                expect.insert(k, ('i', vec![]));
            }
            (Some(_), None) => {
                rows.insert(uuid(k), json!({"delete": null}));
                expect.insert(k, ('d', vec![]));
            }
            (Some(p), Some(n)) if p != n => {
                let (diff, cols) = p.diff_json(n);
                rows.insert(uuid(k), json!({"modify": diff}));
                expect.insert(k, ('m', cols));
            }
            _ => {}
        }
    }
    (json!({ "T": rows }), expect)
}

fn replica_of(state: &State) -> Replica {
    let rows: serde_json::Map<String, Value> = state
        .iter()
        .enumerate()
        .filter_map(|(k, r)| r.as_ref().map(|r| (uuid(k), json!({"initial": r.insert_json()}))))
        .collect();
    let mut rep = Replica::new(&schema());
    rep.reset(TableUpdates2::from_json(&json!({ "T": rows })).unwrap()).unwrap();
    rep
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn update2_sequences_converge_to_final_rows(steps in states()) {
        let mut rep = Replica::new(&schema());
        let mut prev: State = vec![None; ROWS];
        for next in &steps {
            let (notification, expect) = encode(&prev, next);
            let updates = TableUpdates2::from_json(&notification).unwrap();
            let changes = rep.apply_update2(updates).unwrap();
            let got: BTreeMap<usize, (char, Vec<&str>)> = changes
                .iter()
                .map(|c| {
                    let k = (c.uuid.0 - 1) as usize;
                    let v = match &c.kind {
                        ChangeKind::Inserted => ('i', vec![]),
                        ChangeKind::Deleted { .. } => ('d', vec![]),
                        ChangeKind::Modified { columns, .. } => ('m', columns.iter().map(|c| &**c).collect()),
                        _ => ('?', vec![]),
                    };
                    (k, v)
                })
                .collect();
            let mut expect = expect;
            for v in expect.values_mut() {
                v.1.sort_unstable();
            }
            prop_assert_eq!(got, expect);
            prev = next.clone();
        }
        // Equal to a replica built from the final rows, and to the rows themselves.
        prop_assert_eq!(&rep, &replica_of(&prev));
        let table = rep.table("T").unwrap();
        prop_assert_eq!(table.len(), prev.iter().flatten().count());
        for (k, r) in prev.iter().enumerate() {
            let want = r.as_ref().map(GenRow::row);
            prop_assert_eq!(table.get(&Uuid(k as u128 + 1)).map(ReplicaRow::to_row), want);
        }
    }

    #[test]
    fn a_bad_row_update_leaves_the_replica_unchanged(start in prop::collection::vec(prop::option::of(gen_row()), ROWS), next in prop::collection::vec(prop::option::of(gen_row()), ROWS)) {
        let mut rep = replica_of(&start);
        let before = rep.clone();
        let (mut notification, _) = encode(&start, &next);
        // Among the good row updates, one that modifies a row that does not exist.
        notification["T"][Uuid(99).to_string()] = json!({"modify": {"i": 1}});
        let updates = TableUpdates2::from_json(&notification).unwrap();
        prop_assert!(updates.tables["T"].values().any(|u| matches!(u, RowUpdate2::Modify(_))));
        prop_assert!(rep.apply_update2(updates).is_err());
        prop_assert_eq!(rep, before);
    }
}
