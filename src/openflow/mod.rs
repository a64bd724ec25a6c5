//! OpenFlow: the sans-IO session with one switch, its framing, and the tokio driver that moves
//! its bytes.

pub mod driver;
pub mod framing;
pub mod learning;
pub mod listener;
pub mod session;
