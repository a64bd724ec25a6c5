//! Policy: a pure function from the topology and the desired taps to the flows and tunnel
//! ports each bridge should hold. Nothing here does I/O or keeps state.

pub mod cookie;
pub mod desired;
pub mod mirror;
pub mod tunnels;
pub mod view;

use periscope_codec::openflow::{Cookie, Instructions, Match, TableId};

/// A flow periscope wants on a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredFlow {
    /// Table.
    pub table: TableId,
    /// Priority.
    pub priority: u16,
    /// Match.
    pub matches: Match,
    /// Instructions.
    pub instructions: Instructions,
    /// Cookie (always one of ours).
    pub cookie: Cookie,
}
pub mod trace;
