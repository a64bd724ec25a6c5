//! Policy: a pure function from the topology and the desired taps to the flows each bridge
//! should hold. Nothing here does I/O or keeps state.

pub mod cookie;

use periscope_codec::openflow::{Action, Cookie, Instruction, Match, PortNo, TableId};

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
    pub instructions: Vec<Instruction>,
    /// Cookie (always one of ours).
    pub cookie: Cookie,
}

/// Priority of the base pipeline's table-miss flow.
pub const PRIORITY_TABLE_MISS: u16 = 0;

/// The base pipeline every bridge gets: a table-miss flow that forwards like a learning switch
/// (`NORMAL`), so that a `fail_mode=secure` bridge forwards its tenants' traffic unchanged.
pub fn base_pipeline() -> Vec<DesiredFlow> {
    vec![DesiredFlow {
        table: TableId(0),
        priority: PRIORITY_TABLE_MISS,
        matches: Match::default(),
        instructions: vec![Instruction::ApplyActions(vec![Action::output(PortNo::NORMAL)])],
        cookie: cookie::cookie(cookie::Kind::Base, 0),
    }]
}
