//! The real Open vSwitch 3.1 schema (copied from /usr/share/openvswitch/vswitch.ovsschema)
//! parses, with the constraints the controller relies on.

use periscope_codec::ovsdb::schema::RefType;
use periscope_codec::ovsdb::{
    validate, Atom, AtomicType, DatabaseSchema, Datum, MaxCount, Mutation, Mutator, Operation,
    Problem, Row,
};

fn schema() -> DatabaseSchema {
    let v = serde_json::from_str(include_str!("data/ovsdb/vswitch.ovsschema")).expect("JSON");
    DatabaseSchema::from_json(&v).expect("vswitch schema parses")
}

#[test]
fn vswitch_schema_parses_with_its_constraints() {
    let s = schema();
    assert_eq!(s.name, "Open_vSwitch");
    assert_eq!(s.version.as_deref(), Some("8.3.1"));
    assert!(s.tables.len() >= 15, "{}", s.tables.len());
    let ovs = &s.tables["Open_vSwitch"];
    assert!(ovs.is_root);
    assert_eq!(ovs.max_rows, Some(1));

    let bridge = &s.tables["Bridge"];
    assert_eq!(bridge.indexes, vec![vec!["name".to_string()]]);
    let name = &bridge.columns["name"];
    assert!(!name.mutable);
    assert!(name.ty.is_scalar() && name.ty.key.atomic == AtomicType::String);
    let ports = &bridge.columns["ports"].ty;
    assert_eq!(ports.key.ref_table.as_deref(), Some("Port"));
    assert_eq!((ports.min, ports.max), (0, MaxCount::Unlimited));
    let fail_mode = &bridge.columns["fail_mode"].ty;
    assert_eq!(
        fail_mode.key.enumeration,
        Some(vec![Atom::from("secure"), Atom::from("standalone")])
    );

    let port = &s.tables["Port"];
    let tag = &port.columns["tag"].ty;
    assert_eq!((tag.key.min_integer, tag.key.max_integer), (Some(0), Some(4095)));
    let ifaces = &port.columns["interfaces"].ty;
    assert_eq!((ifaces.min, ifaces.max), (1, MaxCount::Unlimited));

    let iface = &s.tables["Interface"];
    let req = &iface.columns["ofport_request"].ty;
    assert_eq!((req.key.min_integer, req.key.max_integer), (Some(1), Some(65279)));
    assert!(iface.columns["statistics"].ephemeral);
    assert!(iface.columns["external_ids"].ty.is_map());

    let mirror = &s.tables["Mirror"].columns["select_src_port"].ty;
    assert_eq!(mirror.key.ref_type, RefType::Weak);
}

#[test]
fn vswitch_transactions_are_checked() {
    let s = schema();
    let insert = |table: &str, pairs: &[(&str, Datum)]| Operation::Insert {
        table: table.into(),
        row: pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect::<Row>(),
        uuid_name: None,
    };
    validate(&s, &[insert("Port", &[("name", Datum::atom("p")), ("tag", Datum::atom(100))])])
        .expect("valid");
    let e = validate(&s, &[insert("Port", &[("tag", Datum::atom(5000))])]).unwrap_err();
    assert_eq!(e.column.as_deref(), Some("tag"));
    assert!(matches!(*e.problem, Problem::OutOfRange { .. }), "{e}");
    let e = validate(&s, &[insert("Port", &[("vlan_mode", Datum::atom("tagged"))])]).unwrap_err();
    assert!(matches!(*e.problem, Problem::NotInEnum { .. }), "{e}");
    assert!(e.to_string().contains("\"access\""), "{e}");
    let e = validate(&s, &[insert("Port", &[("interfaces", Datum::empty_set())])]).unwrap_err();
    assert!(matches!(*e.problem, Problem::BadSize { n: 0, min: 1, .. }), "{e}");
    let e = validate(
        &s,
        &[Operation::Mutate {
            table: "Bridge".into(),
            conditions: vec![],
            mutations: vec![Mutation::new("name", Mutator::Insert, Atom::from("x"))],
        }],
    )
    .unwrap_err();
    assert_eq!(*e.problem, Problem::NotMutable);
}
