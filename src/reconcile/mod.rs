//! The reconciler of one bridge: it compares the flows periscope wants with the flows the
//! switch is known to hold, and plans the smallest change that turns one into the other.
//!
//! "Known to hold" means confirmed: read back from the switch in a flow dump, or confirmed by a
//! barrier after we sent it. Only flows carrying periscope's cookie are ever considered, so a
//! reconciliation never touches anything it did not install. Pure: no I/O, no clocks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::BytesMut;

use periscope_codec::openflow::{
    Cookie, FlowMod, FlowModCommand, FlowRemoved, FlowStats, Instruction, Instructions, Match,
    TableId,
};

use crate::policy::{cookie, DesiredFlow};

/// Identifies a flow on a switch, as OpenFlow does: table, priority and exact match. The match
/// is kept in canonical form (fields sorted by their encoding) so that field order never makes
/// two equal flows look different.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    /// Table.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// The canonical match, encoded.
    pub match_wire: Vec<u8>,
}

/// What a flow does: its cookie and its instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBody {
    /// Cookie.
    pub cookie: Cookie,
    /// The canonical match (kept to emit flow mods).
    pub matches: Match,
    /// Instructions.
    pub instructions: Instructions,
}

/// A set of flows by key. The bodies (about 760 bytes each, their matches and instructions
/// inline) are shared: a flow the switch confirmed is the very body that was wanted, so a
/// bridge's desired and confirmed sets hold it once, and a tree node holds small handles.
pub type FlowSet = BTreeMap<FlowKey, Arc<FlowBody>>;

/// Puts a match's fields in canonical order.
pub fn canonical_match(m: &Match) -> (Match, Vec<u8>) {
    let mut fields: Vec<(Vec<u8>, _)> = m
        .fields
        .iter()
        .map(|f| {
            let mut b = BytesMut::new();
            f.emit(&mut b);
            (b.to_vec(), f.clone())
        })
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let wire = fields.iter().flat_map(|(b, _)| b.iter().copied()).collect();
    (Match::new(fields.into_iter().map(|(_, f)| f)), wire)
}

fn entry(
    table: TableId,
    priority: u16,
    m: &Match,
    cookie: Cookie,
    ins: &[Instruction],
) -> (FlowKey, Arc<FlowBody>) {
    let (matches, match_wire) = canonical_match(m);
    (
        FlowKey { table: table.0, priority, match_wire },
        Arc::new(FlowBody { cookie, matches, instructions: Instructions::from(ins) }),
    )
}

/// The key of the flow in `table` at `priority` with match `m`.
pub fn flow_key(table: TableId, priority: u16, m: &Match) -> FlowKey {
    FlowKey { table: table.0, priority, match_wire: canonical_match(m).1 }
}

/// The desired flows as a set.
pub fn desired_set(flows: &[DesiredFlow]) -> FlowSet {
    flows
        .iter()
        .map(|f| entry(f.table, f.priority, &f.matches, f.cookie, &f.instructions))
        .collect()
}

/// Makes `fresh` hold the bodies of `known` where they are equal: a recomputed plan then
/// shares its unchanged flows with the old plan and with what the switch confirmed of it.
pub fn share_bodies(fresh: &mut FlowSet, known: &FlowSet) {
    for (k, body) in fresh.iter_mut() {
        if let Some(old) = known.get(k).filter(|old| *old == body) {
            *body = old.clone();
        }
    }
}

/// The flows of a dump that carry periscope's cookie, as a set.
pub fn ours_set(flows: &[FlowStats]) -> FlowSet {
    flows
        .iter()
        .filter(|f| cookie::is_reconciled(f.cookie))
        .map(|f| entry(f.table_id, f.priority, &f.matches, f.cookie, &f.instructions))
        .collect()
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Remove a flow of ours.
    Delete(FlowKey, Arc<FlowBody>),
    /// Add a flow, or replace one with the same key.
    Put(FlowKey, Arc<FlowBody>),
}

impl Change {
    /// The flow mod that makes this change. Deletes are strict and restricted to the flow's
    /// own cookie, so that they can only ever remove a flow periscope installed.
    pub fn flow_mod(&self) -> FlowMod {
        match self {
            Change::Delete(k, b) => FlowMod {
                cookie: b.cookie,
                cookie_mask: u64::MAX,
                table_id: TableId(k.table),
                command: FlowModCommand::DeleteStrict,
                priority: k.priority,
                matches: b.matches.clone(),
                ..FlowMod::default()
            },
            Change::Put(k, b) => FlowMod {
                cookie: b.cookie,
                table_id: TableId(k.table),
                command: FlowModCommand::Add,
                priority: k.priority,
                matches: b.matches.clone(),
                instructions: b.instructions.clone(),
                ..FlowMod::default()
            },
        }
    }
}

/// A batch of changes sent together and confirmed by one barrier (or one bundle commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Batch number, unique per reconciler.
    pub id: u64,
    /// Changes in the order to send them: deletes first, then puts.
    pub changes: Vec<Change>,
}

/// The reconciler of one bridge.
#[derive(Debug, Default)]
pub struct Reconciler {
    /// Our flows the switch is known to hold; `None` until the first flow dump.
    actual: Option<FlowSet>,
    /// The batch awaiting confirmation, with the indexes of changes that failed.
    in_flight: Option<(Batch, BTreeSet<usize>)>,
    /// Flows the switch refused, with the body it refused: not retried until desired changes.
    refused: FlowSet,
    next_batch: u64,
    /// The last batch confirmed.
    confirmed: u64,
}

impl Reconciler {
    /// A reconciler for a bridge that just connected: it knows nothing yet.
    pub fn new() -> Self {
        Reconciler::default()
    }

    /// Whether the switch's flows must be read before planning.
    pub fn needs_dump(&self) -> bool {
        self.actual.is_none()
    }

    /// Whether a batch awaits confirmation.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The id of the last batch planned (0 before the first).
    pub fn planned_through(&self) -> u64 {
        self.next_batch
    }

    /// The id of the last batch confirmed (0 before the first).
    pub fn confirmed_through(&self) -> u64 {
        self.confirmed
    }

    /// Our flows the switch is known to hold.
    pub fn actual(&self) -> Option<&FlowSet> {
        self.actual.as_ref()
    }

    /// Takes the flows read from the switch; only periscope's are kept.
    pub fn handle_dump(&mut self, flows: &[FlowStats]) {
        self.actual = Some(ours_set(flows));
    }

    /// Plans the next batch towards `desired`, or `None` when there is nothing to do, the
    /// switch's flows are not known yet, or a batch is already in flight.
    pub fn plan(&mut self, desired: &FlowSet) -> Option<Batch> {
        if self.in_flight.is_some() {
            return None;
        }
        let actual = self.actual.as_ref()?;
        self.refused.retain(|k, b| desired.get(k) == Some(b));
        let mut deletes = Vec::new();
        let mut puts = Vec::new();
        for (k, b) in actual {
            if !desired.contains_key(k) {
                deletes.push(Change::Delete(k.clone(), b.clone()));
            }
        }
        for (k, b) in desired {
            if actual.get(k) != Some(b) && self.refused.get(k) != Some(b) {
                puts.push(Change::Put(k.clone(), b.clone()));
            }
        }
        if deletes.is_empty() && puts.is_empty() {
            return None;
        }
        deletes.extend(puts);
        self.next_batch += 1;
        let batch = Batch { id: self.next_batch, changes: deletes };
        self.in_flight = Some((batch.clone(), BTreeSet::new()));
        Some(batch)
    }

    /// A change of the in-flight batch failed on the switch.
    pub fn handle_failed(&mut self, batch: u64, index: usize) {
        if let Some((b, failed)) = &mut self.in_flight {
            if b.id == batch {
                failed.insert(index);
            }
        }
    }

    /// The in-flight batch is confirmed: what did not fail is now on the switch. Returns the
    /// changes that failed.
    pub fn handle_confirmed(&mut self, batch: u64) -> Vec<Change> {
        let Some((b, failed)) = self.in_flight.take_if(|(b, _)| b.id == batch) else {
            return Vec::new();
        };
        self.confirmed = b.id;
        let actual = self.actual.get_or_insert_with(FlowSet::new);
        let mut refused = Vec::new();
        for (i, c) in b.changes.into_iter().enumerate() {
            if failed.contains(&i) {
                if let Change::Put(k, body) = &c {
                    self.refused.insert(k.clone(), body.clone());
                }
                refused.push(c);
                continue;
            }
            match c {
                Change::Delete(k, _) => {
                    actual.remove(&k);
                }
                Change::Put(k, body) => {
                    actual.insert(k, body);
                }
            }
        }
        refused
    }

    /// The switch says a flow is gone (FLOW_REMOVED). Returns whether it was one of ours it was
    /// known to hold; it is known not to hold it any more.
    pub fn handle_removed(&mut self, removed: &FlowRemoved) -> bool {
        if !cookie::is_ours(removed.cookie) {
            return false;
        }
        let key = flow_key(removed.table_id, removed.priority, &removed.matches);
        self.actual.as_mut().is_some_and(|a| a.remove(&key).is_some())
    }

    /// Takes a flow dump read while no batch was in flight (one in flight now makes it
    /// stale: it is ignored): flows of ours the switch was known to hold and does not are known
    /// gone. Returns how many.
    pub fn handle_audit(&mut self, flows: &[FlowStats]) -> usize {
        if self.in_flight.is_some() {
            return 0;
        }
        let Some(actual) = self.actual.as_mut() else { return 0 };
        let on_switch = ours_set(flows);
        let before = actual.len();
        actual.retain(|k, _| on_switch.contains_key(k));
        before - actual.len()
    }

    /// The connection was lost: nothing is known about the switch any more.
    pub fn reset(&mut self) {
        *self = Reconciler {
            next_batch: self.next_batch,
            confirmed: self.next_batch,
            ..Reconciler::default()
        };
    }
}

#[cfg(test)]
mod tests;
