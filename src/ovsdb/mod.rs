//! OVSDB: the controller's client of every hypervisor's ovsdb-server. [`remote`] parses where
//! to reach them, [`session`] is the sans-IO protocol (handshake, monitor, resume, echo,
//! transactions, locks), [`translate`] turns replicated rows into topology changes, and
//! [`driver`] moves bytes between sockets and sessions (over TLS with [`crate::tls`]).

pub mod driver;
pub mod remote;
pub mod session;
pub mod translate;

pub use remote::{Remote, RemoteError};
pub use session::{
    CloseReason, LockOp, MonitorMethod, Phase, ProtocolError, RequestId, Session, SessionConfig,
    SessionEvent, TxnError,
};
