//! The codec against a real ovsdb-server (Open vSwitch 3.1): our own server on a fresh
//! vswitch database in a temp dir, spoken to over a unix socket with std only.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use periscope_codec::ovsdb::method::{parse_list_dbs, parse_lock_reply};
use periscope_codec::ovsdb::operation::WaitUntil;
use periscope_codec::ovsdb::{
    validate, Atom, ChangeKind, CondSinceReply, Condition, DatabaseSchema, Datum, Function,
    JsonStream, Message, Mutation, Mutator, Notification, OpResult, Operation, Problem, Replica,
    ReplicaRow, Request, Response, Row, RowChange, ServerNotification, TransactReply, Uuid,
};
use serde_json::{json, Value};

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const DB: &str = "Open_vSwitch";

/// Our ovsdb-server: killed by pid and its directory removed when dropped, even on panic.
struct Server {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    fn start() -> Option<Server> {
        if !Path::new(SCHEMA).exists()
            || Command::new("ovsdb-server").arg("--version").output().is_err()
        {
            eprintln!("skipping: ovsdb-server or {SCHEMA} not available");
            return None;
        }
        let nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("periscope-ovsdb-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).expect("create temp dir");
        let mut server = Server { dir, child: None };
        let d = server.dir.clone();
        let st = Command::new("ovsdb-tool")
            .arg("create")
            .arg(d.join("conf.db"))
            .arg(SCHEMA)
            .status()
            .expect("run ovsdb-tool");
        assert!(st.success(), "ovsdb-tool create failed");
        let child = Command::new("ovsdb-server")
            .arg(d.join("conf.db"))
            .arg(format!("--remote=punix:{}", d.join("db.sock").display()))
            .arg(format!("--unixctl={}", d.join("ovsdb.ctl").display()))
            .arg(format!("--pidfile={}", d.join("ovsdb.pid").display()))
            .arg(format!("--log-file={}", d.join("ovsdb.log").display()))
            .arg("--no-chdir")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ovsdb-server");
        server.child = Some(child);
        Some(server)
    }

    fn connect(&self) -> Client {
        let path = self.dir.join("db.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match UnixStream::connect(&path) {
                Ok(sock) => {
                    sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
                    return Client {
                        sock,
                        stream: JsonStream::new(8 << 20),
                        next_id: 0,
                        queued: VecDeque::new(),
                    };
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot connect to {}: {e}", path.display()),
            }
        }
    }
}

/// A blocking JSON-RPC client built on the codec.
struct Client {
    sock: UnixStream,
    stream: JsonStream,
    next_id: u64,
    queued: VecDeque<Notification>,
}

impl Client {
    fn send(&mut self, m: Message) {
        let mut out = Vec::new();
        m.emit(&mut out);
        self.sock.write_all(&out).expect("write");
    }

    fn recv(&mut self) -> Message {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.stream.next_message().expect("valid message") {
                return m;
            }
            let n = self.sock.read(&mut buf).expect("read (timed out?)");
            assert!(n > 0, "server closed the connection");
            self.stream.push(&buf[..n]).expect("valid stream");
        }
    }

    /// Sends a request built for a fresh id and waits for its response, queueing
    /// notifications and answering the server's echo requests meanwhile.
    fn call(&mut self, build: impl FnOnce(Value) -> Request) -> Response {
        self.next_id += 1;
        let id = json!(self.next_id);
        self.send(build(id.clone()).into());
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => return r,
                Message::Response(r) => panic!("unexpected response {r:?}"),
                Message::Notification(n) => self.queued.push_back(n),
                Message::Request(r) if r.method == "echo" => self.send(r.echo_reply().into()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn ok(&mut self, build: impl FnOnce(Value) -> Request) -> Value {
        self.call(build).into_result().unwrap_or_else(|e| panic!("server error {e}"))
    }

    fn notification(&mut self) -> ServerNotification {
        let n = match self.queued.pop_front() {
            Some(n) => n,
            None => loop {
                match self.recv() {
                    Message::Notification(n) => break n,
                    Message::Request(r) if r.method == "echo" => self.send(r.echo_reply().into()),
                    other => panic!("unexpected {other:?}"),
                }
            },
        };
        ServerNotification::from_notification(&n).expect("typed notification")
    }

    fn transact(&mut self, schema: &DatabaseSchema, ops: &[Operation]) -> TransactReply {
        validate(schema, ops).expect("transaction valid for the schema");
        let result = self.ok(|id| Request::transact(id, DB, ops));
        let reply = TransactReply::from_json(&result).expect("typed transact reply");
        assert_eq!(reply.error(), None, "{reply:?}");
        reply
    }
}

fn row(pairs: &[(&str, Datum)]) -> Row {
    pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect()
}

fn named(n: &str) -> Atom {
    Atom::NamedUuid(n.to_string())
}

fn by_name(name: &str) -> Vec<Condition> {
    vec![Condition::new("name", Function::Eq, Atom::from(name))]
}

fn find<'r>(replica: &'r Replica, table: &str, name: &str) -> (Uuid, &'r ReplicaRow) {
    replica
        .table(table)
        .and_then(|t| t.iter().find(|(_, r)| r["name"] == Datum::atom(name)))
        .map(|(u, r)| (*u, r))
        .unwrap_or_else(|| panic!("{table} {name} not in replica"))
}

/// Reads every replicated table with `select` and compares with the replica.
fn assert_replica_matches_server(c: &mut Client, schema: &DatabaseSchema, replica: &Replica) {
    for table in ["Bridge", "Port", "Interface"] {
        let columns: Vec<String> =
            replica.columns(table).expect("replicated").map(str::to_string).collect();
        let mut with_uuid = columns.clone();
        with_uuid.push("_uuid".into());
        let ops = [Operation::Select {
            table: table.into(),
            conditions: vec![],
            columns: Some(with_uuid),
        }];
        let reply = c.transact(schema, &ops);
        let Some(OpResult::Select(rows)) = reply.results.first() else { panic!("{reply:?}") };
        let mine = replica.table(table).expect("replicated");
        assert_eq!(rows.len(), mine.len(), "{table} row count");
        let types = &schema.tables[table].columns;
        for r in rows {
            let uuid = r["_uuid"].as_atom().and_then(Atom::as_uuid).expect("_uuid");
            let have =
                mine.get(&uuid).unwrap_or_else(|| panic!("{table} {uuid} missing from replica"));
            for col in &columns {
                let server = types[col].ty.coerce(r[col.as_str()].clone());
                assert_eq!(&have[col.as_str()], &server, "{table} {uuid} column {col}");
            }
        }
    }
}

#[test]
fn codec_talks_to_a_real_ovsdb_server() {
    let Some(server) = Server::start() else { return };
    let mut c = server.connect();

    // list_dbs, echo
    let dbs = parse_list_dbs(&c.ok(Request::list_dbs)).expect("list_dbs reply");
    assert!(dbs.iter().any(|d| d == DB), "{dbs:?}");
    assert_eq!(c.ok(|id| Request::echo(id, vec![json!("ping"), json!(1)])), json!(["ping", 1]));

    // get_schema: the server's copy equals the file it was created from.
    let schema =
        DatabaseSchema::from_json(&c.ok(|id| Request::get_schema(id, DB))).expect("schema parses");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(SCHEMA).expect("read schema")).expect("json");
    assert_eq!(schema, DatabaseSchema::from_json(&file).expect("file schema parses"));
    assert!(schema.is_root("Open_vSwitch") && !schema.is_root("Bridge"));

    // A transaction the validator refuses never reaches the server.
    let bad = [Operation::Insert {
        table: "Interface".into(),
        row: row(&[("name", Datum::atom("psc-bad")), ("ofport_request", Datum::atom(70_000))]),
        uuid_name: None,
    }];
    let e = validate(&schema, &bad).expect_err("ofport_request out of range");
    assert_eq!((e.table.as_str(), e.column.as_deref()), ("Interface", Some("ofport_request")));
    assert!(matches!(*e.problem, Problem::OutOfRange { .. }), "{e}");

    // Root row, bridge, port, interface, following the references.
    let ops = [
        Operation::Insert {
            table: "Interface".into(),
            row: row(&[
                ("name", Datum::atom("psc-p0")),
                ("type", Datum::atom("internal")),
                ("external_ids", Datum::map([("iface-id", "vm0-nic0")])),
            ]),
            uuid_name: Some("iface0".into()),
        },
        Operation::Insert {
            table: "Port".into(),
            row: row(&[
                ("name", Datum::atom("psc-p0")),
                ("interfaces", Datum::atom(named("iface0"))),
            ]),
            uuid_name: Some("port0".into()),
        },
        Operation::Insert {
            table: "Bridge".into(),
            row: row(&[
                ("name", Datum::atom("psc-br0")),
                ("ports", Datum::atom(named("port0"))),
                ("datapath_type", Datum::atom("netdev")),
            ]),
            uuid_name: Some("br0".into()),
        },
        Operation::Insert {
            table: "Open_vSwitch".into(),
            row: row(&[("bridges", Datum::atom(named("br0")))]),
            uuid_name: None,
        },
        Operation::Comment { comment: "periscope codec test".into() },
    ];
    let reply = c.transact(&schema, &ops);
    let iface0 = reply.inserted(0).expect("interface uuid");
    let br0 = reply.inserted(2).expect("bridge uuid");

    // monitor_cond_since from scratch: the replica starts from the reply.
    let mut replica =
        Replica::with_columns(&schema, &[("Bridge", None), ("Port", None), ("Interface", None)])
            .expect("tables exist");
    let reqs = replica.monitor_requests();
    let result = c.ok(|id| Request::monitor_cond_since(id, DB, json!("psc-mon"), &reqs, None));
    let since = CondSinceReply::from_json(&result).expect("typed monitor_cond_since reply");
    assert!(!since.found);
    let changes = replica.apply_cond_since_reply(since).expect("initial rows apply");
    assert_eq!(changes.len(), 3);
    assert_eq!(find(&replica, "Interface", "psc-p0").0, iface0);
    assert_eq!(find(&replica, "Bridge", "psc-br0").1["ports"].len(), 1);
    assert_replica_matches_server(&mut c, &schema, &replica);

    // A further change arrives as update3 and is applied.
    let ops = [
        Operation::Insert {
            table: "Interface".into(),
            row: row(&[("name", Datum::atom("psc-p1")), ("type", Datum::atom("internal"))]),
            uuid_name: Some("iface1".into()),
        },
        Operation::Insert {
            table: "Port".into(),
            row: row(&[
                ("name", Datum::atom("psc-p1")),
                ("interfaces", Datum::atom(named("iface1"))),
            ]),
            uuid_name: Some("port1".into()),
        },
        Operation::Mutate {
            table: "Bridge".into(),
            conditions: by_name("psc-br0"),
            mutations: vec![Mutation::new("ports", Mutator::Insert, named("port1"))],
        },
        Operation::Mutate {
            table: "Interface".into(),
            conditions: by_name("psc-p0"),
            mutations: vec![Mutation::new(
                "external_ids",
                Mutator::Insert,
                Datum::map([("attached-mac", "fa:16:3e:00:00:01")]),
            )],
        },
        Operation::Wait {
            table: "Bridge".into(),
            conditions: by_name("psc-br0"),
            columns: vec!["name".into()],
            until: WaitUntil::Eq,
            rows: vec![row(&[("name", Datum::atom("psc-br0"))])],
            timeout: Some(0),
        },
    ];
    let reply = c.transact(&schema, &ops);
    assert_eq!(reply.results[2], OpResult::Count(1));
    let ServerNotification::Update3 { monitor_id, last_txn_id, updates } = c.notification() else {
        panic!("expected update3")
    };
    assert_eq!(monitor_id, json!("psc-mon"));
    let changes = replica.apply_update3(last_txn_id, updates).expect("update3 applies");
    let kinds: Vec<(&str, &str)> = changes
        .iter()
        .map(|RowChange { table, kind, .. }| {
            let k = match kind {
                ChangeKind::Inserted => "inserted",
                ChangeKind::Modified { .. } => "modified",
                ChangeKind::Deleted { .. } => "deleted",
                _ => "other",
            };
            (table.as_str(), k)
        })
        .collect();
    assert!(kinds.contains(&("Bridge", "modified")), "{kinds:?}");
    assert!(kinds.contains(&("Port", "inserted")), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == ("Interface", "inserted")).count(), 1, "{kinds:?}");
    let bridge_change = changes.iter().find(|c| c.uuid == br0).expect("bridge changed");
    let ChangeKind::Modified { columns, .. } = &bridge_change.kind else {
        panic!("{bridge_change:?}")
    };
    assert!(columns.iter().any(|c| &**c == "ports"), "{columns:?}");
    let ids = &find(&replica, "Interface", "psc-p0").1["external_ids"];
    assert_eq!(ids, &Datum::map([("attached-mac", "fa:16:3e:00:00:01"), ("iface-id", "vm0-nic0")]));
    assert_eq!(replica.last_txn_id(), Some(last_txn_id));
    assert_replica_matches_server(&mut c, &schema, &replica);

    // Removing the port from the bridge deletes port and interface (garbage collection).
    let ops = [Operation::Mutate {
        table: "Bridge".into(),
        conditions: by_name("psc-br0"),
        mutations: vec![Mutation::new(
            "ports",
            Mutator::Delete,
            Atom::Uuid(find(&replica, "Port", "psc-p1").0),
        )],
    }];
    c.transact(&schema, &ops);
    let ServerNotification::Update3 { last_txn_id, updates, .. } = c.notification() else {
        panic!("expected update3")
    };
    let changes = replica.apply_update3(last_txn_id, updates).expect("update3 applies");
    let deleted: Vec<&str> = changes
        .iter()
        .filter(|c| matches!(c.kind, ChangeKind::Deleted { .. }))
        .map(|c| c.table.as_str())
        .collect();
    assert_eq!(deleted, ["Interface", "Port"]);
    assert_replica_matches_server(&mut c, &schema, &replica);

    // A second connection building its replica from scratch sees the same thing.
    let mut c2 = server.connect();
    let mut fresh =
        Replica::with_columns(&schema, &[("Bridge", None), ("Port", None), ("Interface", None)])
            .expect("tables exist");
    let reqs = fresh.monitor_requests();
    let result = c2.ok(|id| Request::monitor_cond(id, DB, json!(1), &reqs));
    fresh
        .reset(periscope_codec::ovsdb::TableUpdates2::from_json(&result).expect("table-updates2"))
        .expect("applies");
    assert_eq!(fresh.table("Interface"), replica.table("Interface"));
    assert_eq!(fresh.table("Port"), replica.table("Port"));
    assert_eq!(fresh.table("Bridge"), replica.table("Bridge"));

    // Locks: held, waited for, handed over on unlock, stolen.
    let lock = "psc_lock";
    assert!(parse_lock_reply(&c.ok(|id| Request::lock(id, lock))).expect("lock reply"));
    assert!(!parse_lock_reply(&c2.ok(|id| Request::lock(id, lock))).expect("lock reply"));
    c.ok(|id| Request::unlock(id, lock));
    assert_eq!(c2.notification(), ServerNotification::Locked { lock: lock.into() });
    assert!(parse_lock_reply(&c.ok(|id| Request::steal(id, lock))).expect("steal reply"));
    assert_eq!(c2.notification(), ServerNotification::Stolen { lock: lock.into() });
    c.ok(|id| Request::unlock(id, lock));
    c2.ok(|id| Request::unlock(id, lock));

    c.ok(|id| Request::monitor_cancel(id, json!("psc-mon")));
}
