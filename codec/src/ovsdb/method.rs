//! RPC methods (RFC 7047 §4.1 and ovsdb-server(7)): request builders, typed replies and typed
//! server notifications.
//!
//! ```text
//! list_dbs            []                                          -> [<db-name>*]
//! get_schema          [<db-name>]                                 -> <database-schema>
//! transact            [<db-name>, <operation>*]                   -> [<object>*]
//! cancel              [<request id>]                              (notification)
//! monitor             [<db-name>, <monitor-id>, <monitor-requests>] -> <table-updates>
//! monitor_cond        [<db-name>, <monitor-id>, <monitor-cond-requests>] -> <table-updates2>
//! monitor_cond_since  [<db-name>, <monitor-id>, <monitor-cond-requests>, <last-txn-id>]
//!                                                                 -> [<found>, <last-txn-id>, <table-updates2>]
//! monitor_cond_change [<monitor-id>, <new monitor-id>, <monitor-cond-update-requests>] -> null
//! monitor_cancel      [<monitor-id>]                              -> {}
//! lock / steal / unlock [<lock-id>]                               -> {"locked": <boolean>} / {}
//! echo                [<any>*]                                    -> the same params
//! server notifications: update [<monitor-id>, <table-updates>], update2 [<monitor-id>,
//!   <table-updates2>], update3 [<monitor-id>, <last-txn-id>, <table-updates2>],
//!   locked [<lock-id>], stolen [<lock-id>], monitor_canceled [<monitor-id>]
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::datum::Uuid;
use super::error::{DecodeError, Loc};
use super::jsonrpc::{Notification, Request};
use super::operation::{Condition, Operation};
use super::update::{TableUpdates, TableUpdates2};

/// Which kinds of change a monitor reports (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MonitorSelect {
    /// Send the rows present when the monitor starts.
    pub initial: bool,
    /// Report inserted rows.
    pub insert: bool,
    /// Report deleted rows.
    pub delete: bool,
    /// Report modified rows.
    pub modify: bool,
}

impl Default for MonitorSelect {
    fn default() -> Self {
        MonitorSelect { initial: true, insert: true, delete: true, modify: true }
    }
}

/// One element of a conditional monitor's `where`: a condition or a constant (Open vSwitch
/// extension; `[true]` selects every row, `[false]` none).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Clause {
    /// A condition on a column.
    Condition(Condition),
    /// Always or never.
    Const(bool),
}

impl Clause {
    /// The JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Clause::Condition(c) => c.to_json(),
            Clause::Const(b) => Value::Bool(*b),
        }
    }
}

impl From<Condition> for Clause {
    fn from(c: Condition) -> Self {
        Clause::Condition(c)
    }
}

/// What to monitor in one table: `<monitor-request>` or `<monitor-cond-request>`; also used
/// for `<monitor-cond-update-request>` (then `select` must be `None`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MonitorRequest {
    /// Columns to report (all when `None`).
    pub columns: Option<Vec<String>>,
    /// Rows to report, for conditional monitors (all when `None`).
    pub conditions: Option<Vec<Clause>>,
    /// Kinds of change to report (all when `None`).
    pub select: Option<MonitorSelect>,
}

impl MonitorRequest {
    /// Monitors the given columns of every row, every kind of change.
    pub fn columns<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        MonitorRequest {
            columns: Some(columns.into_iter().map(Into::into).collect()),
            ..Default::default()
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        if let Some(c) = &self.columns {
            o.insert(
                "columns".into(),
                Value::Array(c.iter().map(|s| Value::from(s.as_str())).collect()),
            );
        }
        if let Some(w) = &self.conditions {
            o.insert("where".into(), Value::Array(w.iter().map(Clause::to_json).collect()));
        }
        if let Some(s) = &self.select {
            o.insert(
                "select".into(),
                Value::Object(Map::from_iter([
                    ("initial".to_string(), s.initial.into()),
                    ("insert".to_string(), s.insert.into()),
                    ("delete".to_string(), s.delete.into()),
                    ("modify".to_string(), s.modify.into()),
                ])),
            );
        }
        Value::Object(o)
    }
}

/// Monitor requests by table name.
pub type MonitorRequests = BTreeMap<String, Vec<MonitorRequest>>;

fn requests_json(reqs: &MonitorRequests) -> Value {
    Value::Object(
        reqs.iter()
            .map(|(t, rs)| {
                (t.clone(), Value::Array(rs.iter().map(MonitorRequest::to_json).collect()))
            })
            .collect(),
    )
}

impl Request {
    fn call(id: Value, method: &str, params: Vec<Value>) -> Request {
        Request { id, method: method.to_string(), params }
    }

    /// `list_dbs`: the names of the server's databases.
    pub fn list_dbs(id: Value) -> Request {
        Request::call(id, "list_dbs", vec![])
    }

    /// `get_schema`: the schema of `db`.
    pub fn get_schema(id: Value, db: &str) -> Request {
        Request::call(id, "get_schema", vec![db.into()])
    }

    /// `transact`: runs the operations atomically. Check them first with
    /// [`super::operation::validate`].
    pub fn transact(id: Value, db: &str, ops: &[Operation]) -> Request {
        let mut params = vec![Value::from(db)];
        params.extend(ops.iter().map(Operation::to_json));
        Request::call(id, "transact", params)
    }

    /// `monitor`: replies with `<table-updates>`, then sends `update` notifications.
    pub fn monitor(id: Value, db: &str, monitor_id: Value, reqs: &MonitorRequests) -> Request {
        Request::call(id, "monitor", vec![db.into(), monitor_id, requests_json(reqs)])
    }

    /// `monitor_cond`: replies with `<table-updates2>`, then sends `update2` notifications.
    pub fn monitor_cond(id: Value, db: &str, monitor_id: Value, reqs: &MonitorRequests) -> Request {
        Request::call(id, "monitor_cond", vec![db.into(), monitor_id, requests_json(reqs)])
    }

    /// `monitor_cond_since`: like `monitor_cond`, but only changes after `last_txn_id` when the
    /// server still has them (`None`: from scratch); then sends `update3` notifications.
    pub fn monitor_cond_since(
        id: Value,
        db: &str,
        monitor_id: Value,
        reqs: &MonitorRequests,
        last_txn_id: Option<Uuid>,
    ) -> Request {
        let last = last_txn_id.unwrap_or(Uuid::ZERO).to_string();
        Request::call(
            id,
            "monitor_cond_since",
            vec![db.into(), monitor_id, requests_json(reqs), last.into()],
        )
    }

    /// `monitor_cond_change`: replaces the conditions of a conditional monitor, renaming it
    /// `new_monitor_id`.
    pub fn monitor_cond_change(
        id: Value,
        monitor_id: Value,
        new_monitor_id: Value,
        reqs: &MonitorRequests,
    ) -> Request {
        Request::call(
            id,
            "monitor_cond_change",
            vec![monitor_id, new_monitor_id, requests_json(reqs)],
        )
    }

    /// `monitor_cancel`: stops a monitor.
    pub fn monitor_cancel(id: Value, monitor_id: Value) -> Request {
        Request::call(id, "monitor_cancel", vec![monitor_id])
    }

    /// `lock`: acquires the named lock, now or later (then a `locked` notification follows).
    pub fn lock(id: Value, lock: &str) -> Request {
        Request::call(id, "lock", vec![lock.into()])
    }

    /// `steal`: takes the named lock from its holder (who gets `stolen`).
    pub fn steal(id: Value, lock: &str) -> Request {
        Request::call(id, "steal", vec![lock.into()])
    }

    /// `unlock`: releases or stops waiting for the named lock.
    pub fn unlock(id: Value, lock: &str) -> Request {
        Request::call(id, "unlock", vec![lock.into()])
    }

    /// `echo`: a liveness probe; the reply repeats the params.
    pub fn echo(id: Value, params: Vec<Value>) -> Request {
        Request::call(id, "echo", params)
    }

    /// `set_db_change_aware`: keeps the connection open when databases come and go.
    pub fn set_db_change_aware(id: Value, aware: bool) -> Request {
        Request::call(id, "set_db_change_aware", vec![aware.into()])
    }
}

impl Notification {
    /// `cancel`: asks the server to drop the request with this id (a blocked `transact`).
    pub fn cancel(request_id: Value) -> Notification {
        Notification { method: "cancel".into(), params: vec![request_id] }
    }
}

/// Parses the result of `list_dbs`.
pub fn parse_list_dbs(result: &Value) -> Result<Vec<String>, DecodeError> {
    Loc::Root("list_dbs").strings(result)
}

/// Parses the result of `lock` or `steal`: whether the lock is held now.
pub fn parse_lock_reply(result: &Value) -> Result<bool, DecodeError> {
    let loc = Loc::Root("lock");
    let o = loc.object(result)?;
    loc.key("locked").boolean(o.get("locked").ok_or_else(|| loc.missing("locked"))?)
}

/// The result of `monitor_cond_since`.
#[derive(Debug, Clone, PartialEq)]
pub struct CondSinceReply {
    /// True if the server had `last_txn_id` in its history: `updates` then holds only the
    /// changes since; otherwise it holds the whole contents and the replica starts afresh.
    pub found: bool,
    /// The id of the last transaction reflected (zero when the server keeps no history).
    pub last_txn_id: Uuid,
    /// The rows.
    pub updates: TableUpdates2,
}

impl CondSinceReply {
    /// Parses the result `[found, last-txn-id, table-updates2]`.
    pub fn from_json(result: &Value) -> Result<CondSinceReply, DecodeError> {
        let loc = Loc::Root("monitor_cond_since");
        match loc.array(result)? {
            [found, last, updates] => Ok(CondSinceReply {
                found: loc.index(0).boolean(found)?,
                last_txn_id: parse_txn_id(last, &loc.index(1))?,
                updates: TableUpdates2::from_json_at(updates, &loc.index(2))?,
            }),
            _ => Err(loc.error("[found, last-txn-id, table-updates2]", result)),
        }
    }
}

fn parse_txn_id(v: &Value, loc: &Loc<'_>) -> Result<Uuid, DecodeError> {
    loc.string(v)?.parse().map_err(|_| loc.error("a transaction id (UUID string)", v))
}

/// A notification from the server, typed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerNotification {
    /// `update`: changes seen by a `monitor`.
    Update {
        /// The monitor's id.
        monitor_id: Value,
        /// The changes.
        updates: TableUpdates,
    },
    /// `update2`: changes seen by a `monitor_cond`.
    Update2 {
        /// The monitor's id.
        monitor_id: Value,
        /// The changes.
        updates: TableUpdates2,
    },
    /// `update3`: changes seen by a `monitor_cond_since`, with the transaction that made them.
    Update3 {
        /// The monitor's id.
        monitor_id: Value,
        /// The transaction id, to resume from after a reconnection.
        last_txn_id: Uuid,
        /// The changes.
        updates: TableUpdates2,
    },
    /// `locked`: a lock requested earlier is now held.
    Locked {
        /// The lock name.
        lock: String,
    },
    /// `stolen`: another client took a lock we held.
    Stolen {
        /// The lock name.
        lock: String,
    },
    /// `monitor_canceled`: the server dropped a monitor (its database went away).
    MonitorCanceled {
        /// The monitor's id.
        monitor_id: Value,
    },
    /// A notification this codec does not know.
    Other(Notification),
}

impl ServerNotification {
    /// Types a notification by its method.
    pub fn from_notification(n: &Notification) -> Result<ServerNotification, DecodeError> {
        let loc = Loc::Root(match n.method.as_str() {
            "update" => "update",
            "update2" => "update2",
            "update3" => "update3",
            "locked" => "locked",
            "stolen" => "stolen",
            "monitor_canceled" => "monitor_canceled",
            _ => return Ok(ServerNotification::Other(n.clone())),
        });
        let params = Value::Array(n.params.clone());
        let bad = |what: &str| loc.error(what, &params);
        let p = &n.params;
        let pl = loc.key("params");
        Ok(match (n.method.as_str(), p.as_slice()) {
            ("update", [id, u]) => ServerNotification::Update {
                monitor_id: id.clone(),
                updates: TableUpdates::from_json_at(u, &pl.index(1))?,
            },
            ("update2", [id, u]) => ServerNotification::Update2 {
                monitor_id: id.clone(),
                updates: TableUpdates2::from_json_at(u, &pl.index(1))?,
            },
            ("update3", [id, last, u]) => ServerNotification::Update3 {
                monitor_id: id.clone(),
                last_txn_id: parse_txn_id(last, &pl.index(1))?,
                updates: TableUpdates2::from_json_at(u, &pl.index(2))?,
            },
            ("locked", [l]) => {
                ServerNotification::Locked { lock: pl.index(0).string(l)?.to_string() }
            }
            ("stolen", [l]) => {
                ServerNotification::Stolen { lock: pl.index(0).string(l)?.to_string() }
            }
            ("monitor_canceled", [id]) => {
                ServerNotification::MonitorCanceled { monitor_id: id.clone() }
            }
            ("update" | "update2", _) => return Err(bad("params [monitor-id, updates]")),
            ("update3", _) => return Err(bad("params [monitor-id, last-txn-id, updates]")),
            _ => return Err(bad("params [name]")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovsdb::datum::Atom;
    use crate::ovsdb::jsonrpc::Message;
    use crate::ovsdb::operation::Function;
    use crate::ovsdb::update::RowUpdate2;
    use serde_json::json;

    fn wire(r: Request) -> Value {
        Message::Request(r).to_json()
    }

    #[test]
    fn request_builders() {
        assert_eq!(
            wire(Request::list_dbs(json!(0))),
            json!({"method": "list_dbs", "params": [], "id": 0})
        );
        assert_eq!(
            wire(Request::get_schema(json!(1), "Open_vSwitch")),
            json!({"method": "get_schema", "params": ["Open_vSwitch"], "id": 1})
        );
        assert_eq!(
            wire(Request::transact(json!(2), "db", &[Operation::Abort])),
            json!({"method": "transact", "params": ["db", {"op": "abort"}], "id": 2})
        );
        let mut reqs = MonitorRequests::new();
        reqs.insert(
            "Interface".into(),
            vec![MonitorRequest {
                columns: Some(vec!["name".into()]),
                conditions: Some(vec![
                    Condition::new("name", Function::Eq, Atom::from("eth0")).into(),
                    Clause::Const(false),
                ]),
                select: Some(MonitorSelect { initial: false, ..Default::default() }),
            }],
        );
        assert_eq!(
            wire(Request::monitor_cond_since(json!(3), "db", json!("m"), &reqs, None)),
            json!({"method": "monitor_cond_since", "id": 3, "params": ["db", "m", {"Interface": [{
                "columns": ["name"], "where": [["name", "==", "eth0"], false],
                "select": {"initial": false, "insert": true, "delete": true, "modify": true}}]},
                "00000000-0000-0000-0000-000000000000"]})
        );
        let reqs = MonitorRequests::from([(
            "Bridge".to_string(),
            vec![MonitorRequest::columns(["name"])],
        )]);
        assert_eq!(
            wire(Request::monitor(json!(4), "db", json!(null), &reqs)),
            json!({"method": "monitor", "id": 4, "params": ["db", null, {"Bridge": [{"columns": ["name"]}]}]})
        );
        assert_eq!(
            wire(Request::monitor_cond_change(json!(5), json!("a"), json!("b"), &reqs))["params"]
                [1],
            json!("b")
        );
        assert_eq!(wire(Request::monitor_cancel(json!(6), json!("m")))["params"], json!(["m"]));
        assert_eq!(wire(Request::lock(json!(7), "l"))["method"], json!("lock"));
        assert_eq!(wire(Request::steal(json!(8), "l"))["method"], json!("steal"));
        assert_eq!(wire(Request::unlock(json!(9), "l"))["params"], json!(["l"]));
        assert_eq!(wire(Request::echo(json!("echo"), vec![]))["method"], json!("echo"));
        assert_eq!(
            Message::Notification(Notification::cancel(json!(2))).to_json(),
            json!({"method": "cancel", "params": [2], "id": null})
        );
    }

    #[test]
    fn replies() {
        assert_eq!(
            parse_list_dbs(&json!(["Open_vSwitch", "_Server"])).unwrap(),
            vec!["Open_vSwitch", "_Server"]
        );
        assert!(parse_list_dbs(&json!([1])).is_err());
        assert!(parse_lock_reply(&json!({"locked": true})).unwrap());
        assert!(parse_lock_reply(&json!({})).is_err());
        let r = CondSinceReply::from_json(&json!([false, "00000000-0000-0000-0000-00000000000a",
            {"T": {"00000000-0000-0000-0000-000000000001": {"initial": {"a": 1}}}}]))
        .unwrap();
        assert!(!r.found);
        assert_eq!(r.last_txn_id, Uuid(10));
        assert!(matches!(r.updates.tables["T"][&Uuid(1)], RowUpdate2::Initial(_)));
        let e = CondSinceReply::from_json(&json!([true, "x", {}])).unwrap_err();
        assert!(e.to_string().starts_with("monitor_cond_since[1]"), "{e}");
    }

    #[test]
    fn notifications() {
        let n = |m: &str, p: Value| Notification {
            method: m.into(),
            params: p.as_array().unwrap().clone(),
        };
        let u3 = ServerNotification::from_notification(&n(
            "update3",
            json!(["m", "00000000-0000-0000-0000-000000000002", {"T": {"00000000-0000-0000-0000-000000000001": {"delete": null}}}]),
        ))
        .unwrap();
        let ServerNotification::Update3 { monitor_id, last_txn_id, updates } = u3 else {
            panic!("{u3:?}")
        };
        assert_eq!((monitor_id, last_txn_id, updates.len()), (json!("m"), Uuid(2), 1));
        assert_eq!(
            ServerNotification::from_notification(&n("locked", json!(["l"]))).unwrap(),
            ServerNotification::Locked { lock: "l".into() }
        );
        assert_eq!(
            ServerNotification::from_notification(&n("stolen", json!(["l"]))).unwrap(),
            ServerNotification::Stolen { lock: "l".into() }
        );
        assert!(matches!(
            ServerNotification::from_notification(&n("update", json!([null, {}]))).unwrap(),
            ServerNotification::Update { .. }
        ));
        assert!(matches!(
            ServerNotification::from_notification(&n("update2", json!([null, {}]))).unwrap(),
            ServerNotification::Update2 { .. }
        ));
        assert!(matches!(
            ServerNotification::from_notification(&n("whatever", json!([]))).unwrap(),
            ServerNotification::Other(_)
        ));
        let e = ServerNotification::from_notification(&n("update2", json!([null]))).unwrap_err();
        assert!(e.to_string().starts_with("update2: expected params"), "{e}");
        let e = ServerNotification::from_notification(&n("update2", json!([null, {"T": 5}])))
            .unwrap_err();
        assert!(e.to_string().starts_with("update2.params[1].T"), "{e}");
    }
}
