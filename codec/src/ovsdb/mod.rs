//! OVSDB management protocol (RFC 7047) and Open vSwitch's extensions to it.
//!
//! Layered like Open vSwitch's own client: [`jsonrpc::JsonStream`] splits the byte stream into
//! JSON-RPC [`Message`]s; [`method`] builds requests and types replies and notifications;
//! [`datum`], [`row`], [`schema`], [`operation`] and [`update`] are the data they carry;
//! [`replica::Replica`] applies monitor updates to an in-memory copy of the tables, whose rows
//! are [`replica_row::ReplicaRow`]s. No I/O.

pub mod datum;
pub mod error;
pub mod jsonrpc;
pub mod method;
pub mod operation;
pub mod replica;
pub mod replica_row;
pub mod row;
pub mod schema;
pub mod update;

pub use datum::{Atom, AtomSet, AtomicType, Datum, Uuid};
pub use error::{DecodeError, Problem, ReplicaError, ValidationError};
pub use jsonrpc::{JsonStream, Message, Notification, Request, Response};
pub use method::{
    CondSinceReply, MonitorRequest, MonitorRequests, MonitorSelect, ServerNotification,
};
pub use operation::{
    validate, Condition, Function, Mutation, Mutator, OpResult, Operation, OvsdbOpError,
    TransactReply, WaitUntil,
};
pub use replica::{ChangeKind, Replica, RowChange};
pub use replica_row::{Columns, ReplicaRow};
pub use row::Row;
pub use schema::{BaseType, ColumnSchema, ColumnType, DatabaseSchema, MaxCount, TableSchema};
pub use update::{RowUpdate, RowUpdate2, TableUpdates, TableUpdates2};
