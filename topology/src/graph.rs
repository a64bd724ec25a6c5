//! The graph: raw observed state, its indexes, and `apply`, which writes a change into the raw
//! state, marks what it may have affected, then settles the indexes and emits the difference.

use std::collections::{BTreeMap, BTreeSet};
use std::mem;
use std::sync::Arc;

use periscope_codec::openflow::{Dpid, PortNo};

use crate::change::{Change, HypervisorSnapshot, PortStatusReason};
use crate::event::{Event, EventKind, Link, Location};
use crate::ids::{Generation, HypervisorId, Millis, RowRef, SwitchPort, Uuid};
use crate::index::{
    attached_of, bridge_state, links_of, multi_insert, multi_remove, nested_get, nested_insert,
    nested_remove, recompute, row_insert, row_remove, DpidMemo, FastMap, FastSet, Indexes, Raw,
};
use crate::rows::{BridgeRow, HypervisorInfo, InterfaceRow, OfPort, PortRow};
use crate::small_set::SmallSet;

/// Default `external_ids` key naming an interface's tenant.
pub const DEFAULT_TENANT_KEY: &str = "tenant-id";

/// Settings of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyConfig {
    /// The `Interface.external_ids` key whose value is the owning tenant.
    pub tenant_key: String,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig { tenant_key: DEFAULT_TENANT_KEY.to_owned() }
    }
}

/// The live topology graph: hypervisors, bridges, ports, interfaces, switches and links.
///
/// Pure and deterministic: the same changes give the same state and events. Every change costs
/// O(log n) plus the size of the rows it touches (a bridge row lists all its ports, so a bridge
/// upsert is linear in its ports, as the OVSDB message carrying it is).
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub(crate) config: TopologyConfig,
    pub(crate) generation: Generation,
    /// Applies given at least one change, whether or not they emitted events.
    pub(crate) revision: u64,
    pub(crate) raw: Raw,
    pub(crate) idx: Indexes,
}

/// What one `apply` touched, with the before-images needed to diff.
#[derive(Default)]
struct Pending {
    /// Interfaces whose attachment, location, row or links may have changed, each with its
    /// row as it was before this apply when this apply wrote the row (`Some(None)`: it had none).
    /// Boxed, so that sorting the touched interfaces moves small values.
    ifaces: FastMap<RowRef, Option<Option<Box<InterfaceRow>>>>,
    /// Bridges whose derived state may have changed.
    bridges: BTreeSet<RowRef>,
    /// Hypervisor facts as they were before this apply.
    hv_orig: BTreeMap<HypervisorId, Option<HypervisorInfo>>,
    /// Links touched, and whether each existed before this apply.
    links: BTreeMap<Link, bool>,
}

impl Pending {
    /// Marks interface `r` for settling.
    fn touch(&mut self, r: RowRef) {
        self.ifaces.entry(r).or_default();
    }
}

fn rows_of<V>(map: &BTreeMap<RowRef, V>, h: &HypervisorId) -> Vec<RowRef> {
    let start = RowRef { hypervisor: h.clone(), uuid: Uuid::default() };
    map.range(start..).map(|(k, _)| k).take_while(|k| k.hypervisor == *h).cloned().collect()
}

fn lldp_key(a: SwitchPort, b: SwitchPort) -> (SwitchPort, SwitchPort) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Marks the interfaces named `name` on bridges with `dpid` (their ofport may come from the
/// switch's port of that name).
fn dirty_named(idx: &Indexes, dpid: Dpid, name: &str, p: &mut Pending) {
    for b in idx.by_dpid.get(&dpid).into_iter().flatten() {
        for uuid in nested_get(&idx.iface_by_name, &b.hypervisor, name).into_iter().flatten() {
            p.touch(RowRef { hypervisor: b.hypervisor.clone(), uuid: uuid.clone() });
        }
    }
}

impl Topology {
    /// An empty graph.
    pub fn new(config: TopologyConfig) -> Topology {
        Topology { config, ..Topology::default() }
    }

    /// The settings the graph was made with.
    pub fn config(&self) -> &TopologyConfig {
        &self.config
    }

    /// The current generation: how many applies have emitted events.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// How many applies were given at least one change, whether or not anything visible
    /// changed (a port's state does not make an event): what is read from the graph stays
    /// valid while this stays the same.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Applies one change; see [`Topology::apply_batch`].
    pub fn apply(&mut self, change: Change) -> Vec<Event> {
        self.apply_batch(std::iter::once(change))
    }

    /// Applies several changes as one transition (e.g. one OVSDB update message): the events are
    /// the difference between the state before the first and after the last, under one new
    /// generation. Emits nothing and keeps the generation when nothing visible changed.
    ///
    /// A batch that is one [`Change::HypervisorReplaced`] for a hypervisor holding no rows (a
    /// first connection) takes a bulk path, which gives the same state and events.
    pub fn apply_batch(&mut self, changes: impl IntoIterator<Item = Change>) -> Vec<Event> {
        let mut changes = changes.into_iter();
        let (first, second) = (changes.next(), changes.next());
        if first.is_some() {
            self.revision += 1;
        }
        let kinds = match (first, second) {
            (Some(Change::HypervisorReplaced { hypervisor, snapshot }), None)
                if self.holds_no_rows(&hypervisor) =>
            {
                self.replace_fresh(hypervisor, snapshot)
            }
            (first, second) => self.apply_each(first.into_iter().chain(second).chain(changes)),
        };
        if kinds.is_empty() {
            return Vec::new();
        }
        self.generation = Generation(self.generation.0 + 1);
        let generation = self.generation;
        kinds.into_iter().map(|kind| Event { generation, kind }).collect()
    }

    /// Writes the changes one by one, then settles what they touched: the general path.
    fn apply_each(&mut self, changes: impl Iterator<Item = Change>) -> Vec<EventKind> {
        let mut p = Pending::default();
        for change in changes {
            self.write(change, &mut p);
        }
        self.settle(p)
    }

    /// Whether `h` holds no bridge, port or interface row.
    fn holds_no_rows(&self, h: &HypervisorId) -> bool {
        self.raw.interfaces.count(h) == 0
            && self.raw.ports.count(h) == 0
            && rows_of(&self.raw.bridges, h).is_empty()
    }

    /// [`Change::HypervisorReplaced`] for a hypervisor that holds no rows: the rows are stored
    /// and indexed without the per-row bookkeeping of the general path (before-images, the
    /// touched set and its sort, the iface-id places before), since every interface row of `h`
    /// is new and none was attached. The state and the events are those of the general path.
    fn replace_fresh(&mut self, h: HypervisorId, snap: HypervisorSnapshot) -> Vec<EventKind> {
        let mut p = Pending::default();
        self.set_hypervisor(h.clone(), Some(snap.info), &mut p);
        for row in snap.bridges {
            self.set_bridge(
                RowRef { hypervisor: h.clone(), uuid: row.uuid.clone() },
                Some(row),
                &mut p,
            );
        }
        self.raw.ports.reserve(&h, snap.ports.len());
        for row in snap.ports {
            if self.raw.ports.get(&h, &row.uuid).is_some() {
                // The same uuid twice in the snapshot: the later row wins, as in the general path.
                let r = RowRef { hypervisor: h.clone(), uuid: row.uuid.clone() };
                self.set_port(r, Some(row), &mut p);
                continue;
            }
            for i in &row.interfaces {
                row_insert(&mut self.idx.iface_ports, &h, i, row.uuid.clone());
            }
            let u = row.uuid.clone();
            self.raw.ports.insert_new(&h, &u, row);
        }
        let n_ifaces = snap.interfaces.len();
        self.raw.interfaces.reserve(&h, n_ifaces);
        self.idx.attached.reserve(n_ifaces);
        self.idx.by_iface_id.reserve(n_ifaces);
        for row in snap.interfaces {
            if self.raw.interfaces.get(&h, &row.uuid).is_some() {
                let r = RowRef { hypervisor: h.clone(), uuid: row.uuid.clone() };
                self.set_interface(r, Some(row), &mut p);
                continue;
            }
            let u = row.uuid.clone();
            nested_insert(&mut self.idx.iface_by_name, &h, row.name.clone(), u.clone());
            self.raw.interfaces.insert_new(&h, &u, row);
        }
        // Every interface row of `h` is settled below, whatever the writes above marked.
        p.ifaces.clear();
        let mut out = Vec::new();
        self.settle_bridges(&p, &mut out);
        let link_dirty = self.settle_fresh_interfaces(&h, &mut out);
        self.settle_links(p, link_dirty, &mut out);
        out
    }

    /// Settles every interface of `h`, all new: what [`Topology::settle_interfaces`] does when
    /// none of them was attached before. Returns the interfaces whose links must be computed.
    fn settle_fresh_interfaces(
        &mut self,
        h: &HypervisorId,
        out: &mut Vec<EventKind>,
    ) -> Vec<RowRef> {
        let mut link_dirty = Vec::new();
        let Some(rows) = self.raw.interfaces.rows(h) else {
            return link_dirty;
        };
        let mut order: Vec<(&Uuid, &InterfaceRow)> = rows.iter().collect();
        order.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.reserve(2 * order.len());
        // Iface-ids that now have two places or more: only those can give an event, since each
        // had no place on `h` before.
        let mut shared: Vec<Arc<str>> = Vec::new();
        let mut dpids = DpidMemo::default();
        // (bridge, interface) for `by_bridge`, in interface order.
        let mut on_bridge: Vec<(RowRef, RowRef)> = Vec::with_capacity(order.len());
        for (uuid, row) in order {
            let r = RowRef { hypervisor: h.clone(), uuid: uuid.clone() };
            let Some(new) =
                attached_of(&self.raw, &self.idx, &self.config.tenant_key, &r, row, &mut dpids)
            else {
                continue;
            };
            // An unattached interface has no link, so only attached ones are computed.
            if row.patch_peer().is_some() || new.tunnel_remote.is_some() {
                link_dirty.push(r.clone());
            }
            if self.idx.add_attached_but_bridge(&r, &new) {
                shared.extend(new.iface_id.clone());
            }
            on_bridge.push((new.location.bridge_ref(), r.clone()));
            out.push(EventKind::InterfaceAppeared { location: new.location.clone() });
            if new.location.is_ready() {
                out.push(EventKind::LocationReady { location: new.location.clone() });
            }
            self.idx.attached.insert(r, new);
        }
        // Each bridge's interfaces are built into its set at once (they are in order, and the
        // bridges of `h` had none); a stable sort keeps them in order.
        on_bridge.sort_by(|a, b| a.0.cmp(&b.0));
        let mut pairs = on_bridge.into_iter().peekable();
        while let Some((bridge, first)) = pairs.next() {
            let mut members = vec![first];
            while let Some((_, r)) = pairs.next_if(|(b, _)| *b == bridge) {
                members.push(r);
            }
            let set = self.idx.by_bridge.entry(bridge).or_default();
            if set.is_empty() {
                *set = SmallSet::from_sorted(members);
            } else {
                for m in members {
                    set.insert(m);
                }
            }
        }
        shared.sort_unstable();
        shared.dedup();
        for iface_id in shared {
            // The places before this apply: those of the other hypervisors, unchanged by it.
            let after = self.places(&iface_id);
            let before = after.iter().filter(|l| l.hypervisor != *h).cloned().collect();
            if let Some(kind) = iface_id_event(iface_id.to_string(), before, after) {
                out.push(kind);
            }
        }
        link_dirty
    }

    /// Expires the LLDP links last seen more than `max_age` before `now`, as one transition.
    pub fn expire_lldp(&mut self, now: Millis, max_age: Millis) -> Vec<Event> {
        let stale: Vec<Change> = self
            .raw
            .lldp
            .iter()
            .filter(|(_, seen)| seen.0.saturating_add(max_age.0) < now.0)
            .map(|((a, b), _)| Change::LldpLinkExpired { a: *a, b: *b })
            .collect();
        self.apply_batch(stale)
    }

    /// Checks every index against a recomputation from the raw state; `Err` describes the first
    /// difference. O(n): for tests and debugging.
    pub fn check_invariants(&self) -> Result<(), String> {
        let fresh = recompute(&self.raw, &self.config.tenant_key);
        if fresh == self.idx {
            return Ok(());
        }
        macro_rules! field {
            ($($f:ident),*) => {$(
                if fresh.$f != self.idx.$f {
                    return Err(format!(
                        "index {} differs:\n incremental: {:?}\n recomputed:  {:?}",
                        stringify!($f), self.idx.$f, fresh.$f
                    ));
                }
            )*};
        }
        field!(
            port_bridges,
            iface_ports,
            iface_by_name,
            of_by_name,
            bridges,
            by_dpid,
            attached,
            by_iface_id,
            by_vm,
            by_tenant,
            by_ofport,
            by_bridge_kind,
            by_bridge,
            tunnels_by_remote,
            underlay,
            links,
            iface_links
        );
        Err("indexes differ".to_owned())
    }

    /// Writes one change into the raw state and the structure indexes, marking what it touched.
    fn write(&mut self, change: Change, p: &mut Pending) {
        match change {
            Change::HypervisorUpserted { hypervisor, info } => {
                self.set_hypervisor(hypervisor, Some(info), p)
            }
            Change::HypervisorGone { hypervisor } => self.remove_hypervisor(&hypervisor, p),
            Change::HypervisorReplaced { hypervisor, snapshot } => {
                self.replace_hypervisor(hypervisor, snapshot, p)
            }
            Change::BridgeUpserted { hypervisor, row } => {
                self.ensure_hypervisor(&hypervisor, p);
                let r = RowRef { hypervisor, uuid: row.uuid.clone() };
                self.set_bridge(r, Some(row), p);
            }
            Change::BridgeRemoved { hypervisor, uuid } => {
                self.set_bridge(RowRef { hypervisor, uuid }, None, p)
            }
            Change::PortUpserted { hypervisor, row } => {
                self.ensure_hypervisor(&hypervisor, p);
                let r = RowRef { hypervisor, uuid: row.uuid.clone() };
                self.set_port(r, Some(row), p);
            }
            Change::PortRemoved { hypervisor, uuid } => {
                self.set_port(RowRef { hypervisor, uuid }, None, p)
            }
            Change::InterfaceUpserted { hypervisor, row } => {
                self.ensure_hypervisor(&hypervisor, p);
                let r = RowRef { hypervisor, uuid: row.uuid.clone() };
                self.set_interface(r, Some(row), p);
            }
            Change::InterfaceRemoved { hypervisor, uuid } => {
                self.set_interface(RowRef { hypervisor, uuid }, None, p)
            }
            Change::SwitchConnected { dpid } => {
                let sw = self.raw.switches.entry(dpid).or_default();
                if !sw.connected {
                    sw.connected = true;
                    self.dirty_dpid_bridges(dpid, p);
                }
            }
            Change::SwitchDisconnected { dpid } => self.switch_gone(dpid, p),
            Change::SwitchPortsReplaced { dpid, ports } => {
                let keep: BTreeSet<PortNo> = ports.iter().map(|port| port.port_no).collect();
                let known: Vec<PortNo> = self
                    .raw
                    .switches
                    .get(&dpid)
                    .map_or(Vec::new(), |s| s.ports.keys().copied().collect());
                for no in known.into_iter().filter(|no| !keep.contains(no)) {
                    self.set_of_port(dpid, no, None, p);
                }
                // A switch that reports no port still exists.
                self.raw.switches.entry(dpid).or_default();
                for port in ports {
                    self.set_of_port(dpid, port.port_no, Some(port), p);
                }
            }
            Change::PortStatus { dpid, reason, port } => match reason {
                PortStatusReason::Add | PortStatusReason::Modify => {
                    self.set_of_port(dpid, port.port_no, Some(port), p)
                }
                PortStatusReason::Delete => self.set_of_port(dpid, port.port_no, None, p),
            },
            Change::LldpLinkSeen { a, b, at } => {
                let (a, b) = lldp_key(a, b);
                let existed = self.raw.lldp.contains_key(&(a, b));
                p.links.entry(Link::Lldp { a, b }).or_insert(existed);
                self.raw.lldp.insert((a, b), at);
            }
            Change::LldpLinkExpired { a, b } => {
                let (a, b) = lldp_key(a, b);
                self.remove_lldp(|k| *k == (a, b), p);
            }
        }
    }

    fn ensure_hypervisor(&mut self, h: &HypervisorId, p: &mut Pending) {
        if !self.raw.hypervisors.contains_key(h) {
            self.set_hypervisor(h.clone(), Some(HypervisorInfo::default()), p);
        }
    }

    fn set_hypervisor(&mut self, h: HypervisorId, info: Option<HypervisorInfo>, p: &mut Pending) {
        let cur = self.raw.hypervisors.get(&h);
        if cur == info.as_ref() {
            return;
        }
        if !p.hv_orig.contains_key(&h) {
            p.hv_orig.insert(h.clone(), cur.cloned());
        }
        match info {
            Some(info) => self.raw.hypervisors.insert(h, info),
            None => self.raw.hypervisors.remove(&h),
        };
    }

    fn remove_hypervisor(&mut self, h: &HypervisorId, p: &mut Pending) {
        for r in self.raw.interfaces.rows_of(h) {
            self.set_interface(r, None, p);
        }
        for r in self.raw.ports.rows_of(h) {
            self.set_port(r, None, p);
        }
        for r in rows_of(&self.raw.bridges, h) {
            self.set_bridge(r, None, p);
        }
        self.set_hypervisor(h.clone(), None, p);
    }

    fn replace_hypervisor(&mut self, h: HypervisorId, snap: HypervisorSnapshot, p: &mut Pending) {
        self.set_hypervisor(h.clone(), Some(snap.info), p);
        // Rows the snapshot no longer holds go first (none on a first connection).
        let gone = self.raw.interfaces.rows_of(&h);
        if !gone.is_empty() {
            let keep: FastSet<&Uuid> = snap.interfaces.iter().map(|r| &r.uuid).collect();
            for r in gone.into_iter().filter(|r| !keep.contains(&r.uuid)) {
                self.set_interface(r, None, p);
            }
        }
        let gone = self.raw.ports.rows_of(&h);
        if !gone.is_empty() {
            let keep: FastSet<&Uuid> = snap.ports.iter().map(|r| &r.uuid).collect();
            for r in gone.into_iter().filter(|r| !keep.contains(&r.uuid)) {
                self.set_port(r, None, p);
            }
        }
        let gone = rows_of(&self.raw.bridges, &h);
        if !gone.is_empty() {
            let keep: FastSet<&Uuid> = snap.bridges.iter().map(|r| &r.uuid).collect();
            for r in gone.into_iter().filter(|r| !keep.contains(&r.uuid)) {
                self.set_bridge(r, None, p);
            }
        }
        // Room for the rows up front: growing a table of 10,000 rows step by step costs more
        // than writing them.
        let (n_ports, n_ifaces) = (snap.ports.len(), snap.interfaces.len());
        let new_ifaces = n_ifaces.saturating_sub(self.raw.interfaces.count(&h));
        self.raw.ports.reserve(&h, n_ports);
        self.raw.interfaces.reserve(&h, n_ifaces);
        self.idx.attached.reserve(new_ifaces);
        self.idx.by_iface_id.reserve(new_ifaces);
        p.ifaces.reserve(n_ifaces);
        for row in snap.bridges {
            self.set_bridge(RowRef { hypervisor: h.clone(), uuid: row.uuid.clone() }, Some(row), p);
        }
        for row in snap.ports {
            self.set_port(RowRef { hypervisor: h.clone(), uuid: row.uuid.clone() }, Some(row), p);
        }
        for row in snap.interfaces {
            let r = RowRef { hypervisor: h.clone(), uuid: row.uuid.clone() };
            self.set_interface(r, Some(row), p);
        }
    }

    fn set_interface(&mut self, r: RowRef, new: Option<InterfaceRow>, p: &mut Pending) {
        let (h, u) = (&r.hypervisor, &r.uuid);
        // One search of the row map: compare, then replace in place. `new_name` is set when the
        // name index must learn a name.
        let (old, new_name) = match (self.raw.interfaces.get_mut(h, u), new) {
            (Some(slot), Some(new)) => {
                if *slot == new {
                    return;
                }
                let name = (slot.name != new.name).then(|| new.name.clone());
                (Some(mem::replace(slot, new)), name)
            }
            (Some(_), None) => (self.raw.interfaces.remove(h, u), None),
            (None, Some(new)) => {
                let name = Some(new.name.clone());
                self.raw.interfaces.insert_new(h, u, new);
                (None, name)
            }
            (None, None) => return,
        };
        if let Some(old) = &old {
            if new_name.is_some() || self.raw.interfaces.get(h, u).is_none() {
                nested_remove(&mut self.idx.iface_by_name, h, &old.name, u);
            }
        }
        if let Some(name) = new_name {
            nested_insert(&mut self.idx.iface_by_name, h, name, u.clone());
        }
        let orig = p.ifaces.entry(r).or_default();
        if orig.is_none() {
            *orig = Some(old.map(Box::new));
        }
    }

    fn set_port(&mut self, r: RowRef, new: Option<PortRow>, p: &mut Pending) {
        let (h, u) = (&r.hypervisor, &r.uuid);
        // One search of the row map when the row exists; `cur` is the row as stored now.
        let (old, cur) = match (self.raw.ports.get_mut(h, u), new) {
            (Some(slot), Some(new)) => {
                if *slot == new {
                    return;
                }
                let old = mem::replace(slot, new);
                (Some(old), Some(&*slot))
            }
            (Some(_), None) => (self.raw.ports.remove(h, u), None),
            (None, Some(new)) => {
                self.raw.ports.insert_new(h, u, new);
                (None, self.raw.ports.get(h, u))
            }
            (None, None) => return,
        };
        let empty = BTreeSet::new();
        let old_ifaces = old.as_ref().map_or(&empty, |o| &o.interfaces);
        let new_ifaces = cur.map_or(&empty, |n| &n.interfaces);
        for i in old_ifaces.difference(new_ifaces) {
            row_remove(&mut self.idx.iface_ports, h, i, u);
            p.touch(RowRef { hypervisor: h.clone(), uuid: i.clone() });
        }
        for i in new_ifaces.difference(old_ifaces) {
            row_insert(&mut self.idx.iface_ports, h, i, u.clone());
            p.touch(RowRef { hypervisor: h.clone(), uuid: i.clone() });
        }
    }

    fn set_bridge(&mut self, r: RowRef, mut new: Option<BridgeRow>, p: &mut Pending) {
        // `datapath_id` is ephemeral in Open vSwitch's schema: a restarted ovsdb-server has
        // forgotten it until ovs-vswitchd writes it again. The same bridge row keeps the
        // datapath id it had meanwhile, rather than looking disconnected for that while.
        if let (Some(n), Some(o)) = (new.as_mut(), self.raw.bridges.get(&r)) {
            n.datapath_id = n.datapath_id.or(o.datapath_id);
        }
        if self.raw.bridges.get(&r) == new.as_ref() {
            return;
        }
        let old = self.raw.bridges.remove(&r);
        let empty = BTreeSet::new();
        let old_ports = old.as_ref().map_or(&empty, |o| &o.ports);
        let new_ports = new.as_ref().map_or(&empty, |n| &n.ports);
        let h = &r.hypervisor;
        for port in old_ports.difference(new_ports) {
            row_remove(&mut self.idx.port_bridges, h, port, &r.uuid);
            self.dirty_port_ifaces(h, port, p);
        }
        for port in new_ports.difference(old_ports) {
            row_insert(&mut self.idx.port_bridges, h, port, r.uuid.clone());
            self.dirty_port_ifaces(h, port, p);
        }
        let old_dpid = old.as_ref().and_then(|o| o.datapath_id);
        let new_dpid = new.as_ref().and_then(|n| n.datapath_id);
        if old_dpid != new_dpid {
            for port in new_ports.intersection(old_ports) {
                self.dirty_port_ifaces(h, port, p);
            }
        }
        if let Some(new) = new {
            self.raw.bridges.insert(r.clone(), new);
        }
        p.bridges.insert(r);
    }

    fn dirty_port_ifaces(&self, h: &HypervisorId, port: &Uuid, p: &mut Pending) {
        for i in self.raw.ports.get(h, port).into_iter().flat_map(|row| &row.interfaces) {
            p.touch(RowRef { hypervisor: h.clone(), uuid: i.clone() });
        }
    }

    fn dirty_dpid_bridges(&self, dpid: Dpid, p: &mut Pending) {
        p.bridges.extend(self.idx.by_dpid.get(&dpid).into_iter().flatten().cloned());
    }

    fn set_of_port(&mut self, dpid: Dpid, no: PortNo, new: Option<OfPort>, p: &mut Pending) {
        let Some(sw) = (match &new {
            Some(_) => Some(self.raw.switches.entry(dpid).or_default()),
            None => self.raw.switches.get_mut(&dpid),
        }) else {
            return;
        };
        let old = match &new {
            Some(port) => sw.ports.insert(no, port.clone()),
            None => sw.ports.remove(&no),
        };
        let deleted = old.is_some() && new.is_none();
        let old_name = old.map(|o| o.name);
        let new_name = new.map(|n| n.name);
        if old_name != new_name {
            if let Some(name) = &old_name {
                nested_remove(&mut self.idx.of_by_name, &dpid, name, &no);
                dirty_named(&self.idx, dpid, name, p);
            }
            if let Some(name) = new_name {
                dirty_named(&self.idx, dpid, &name, p);
                nested_insert(&mut self.idx.of_by_name, &dpid, name, no);
            }
        }
        if deleted {
            let gone = SwitchPort { dpid, port: no };
            self.remove_lldp(|(a, b)| *a == gone || *b == gone, p);
        }
    }

    fn switch_gone(&mut self, dpid: Dpid, p: &mut Pending) {
        let Some(sw) = self.raw.switches.remove(&dpid) else {
            return;
        };
        for (no, port) in &sw.ports {
            nested_remove(&mut self.idx.of_by_name, &dpid, &port.name, no);
            dirty_named(&self.idx, dpid, &port.name, p);
        }
        self.dirty_dpid_bridges(dpid, p);
        self.remove_lldp(|(a, b)| a.dpid == dpid || b.dpid == dpid, p);
    }

    /// Removes the LLDP links matching `pred`: O(LLDP links), which are few (physical wiring).
    fn remove_lldp(&mut self, pred: impl Fn(&(SwitchPort, SwitchPort)) -> bool, p: &mut Pending) {
        let gone: Vec<(SwitchPort, SwitchPort)> =
            self.raw.lldp.keys().filter(|k| pred(k)).copied().collect();
        for (a, b) in gone {
            p.links.entry(Link::Lldp { a, b }).or_insert(true);
            self.raw.lldp.remove(&(a, b));
        }
    }

    /// Brings the derived indexes up to date with what `p` marked, and returns the events.
    fn settle(&mut self, mut p: Pending) -> Vec<EventKind> {
        let mut out = Vec::new();
        self.settle_bridges(&p, &mut out);
        let link_dirty = self.settle_interfaces(&mut p, &mut out);
        self.settle_links(p, link_dirty, &mut out);
        out
    }

    /// Settles the bridges `p` marked.
    fn settle_bridges(&mut self, p: &Pending, out: &mut Vec<EventKind>) {
        // Bridges.
        for b in &p.bridges {
            let new = self.raw.bridges.get(b).map(|row| bridge_state(&self.raw, row));
            let old = match new {
                Some(st) => self.idx.bridges.insert(b.clone(), st),
                None => self.idx.bridges.remove(b),
            };
            if old == new {
                continue;
            }
            let (old_dpid, new_dpid) = (old.and_then(|s| s.dpid), new.and_then(|s| s.dpid));
            if old_dpid != new_dpid {
                if let Some(d) = old_dpid {
                    multi_remove(&mut self.idx.by_dpid, &d, b);
                }
                if let Some(d) = new_dpid {
                    multi_insert(&mut self.idx.by_dpid, d, b.clone());
                }
            }
            let (was, is) = (old.and_then(|s| s.connection()), new.and_then(|s| s.connection()));
            if was != is {
                if let Some(dpid) = was {
                    out.push(EventKind::BridgeDisconnected { bridge: b.clone(), dpid });
                }
                if let Some(dpid) = is {
                    out.push(EventKind::BridgeConnected { bridge: b.clone(), dpid });
                }
            }
        }
    }

    /// Settles the interfaces `p` marked; returns the interfaces whose links must be recomputed.
    fn settle_interfaces(&mut self, p: &mut Pending, out: &mut Vec<EventKind>) -> Vec<RowRef> {
        // Interfaces, in row order; the places of each iface-id are captured before the first
        // of its interfaces is updated.
        let mut ifaces: Vec<(RowRef, Option<Option<Box<InterfaceRow>>>)> =
            mem::take(&mut p.ifaces).into_iter().collect();
        ifaces.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut id_before: FastMap<Arc<str>, Vec<Location>> = FastMap::default();
        // Interfaces whose links must be recomputed: patch or tunnel ends, or ends of a link.
        let mut link_dirty: Vec<RowRef> = Vec::new();
        let mut dpids = DpidMemo::default();
        for (key, orig) in ifaces {
            let r = &key;
            let row = self.raw.interfaces.get_ref(r);
            let new = row.and_then(|row| {
                attached_of(&self.raw, &self.idx, &self.config.tenant_key, r, row, &mut dpids)
            });
            let old = self.idx.attached.get(r);
            for id in [
                old.and_then(|a| a.iface_id.as_ref()),
                new.as_ref().and_then(|a| a.iface_id.as_ref()),
            ]
            .into_iter()
            .flatten()
            {
                if !id_before.contains_key(id) {
                    let places = self.places(id);
                    id_before.insert(id.clone(), places);
                }
            }
            let may_link = row.is_some_and(|row| row.patch_peer().is_some())
                || new.as_ref().is_some_and(|n| n.tunnel_remote.is_some())
                || self.idx.iface_links.contains_key(r);
            if may_link {
                link_dirty.push(r.clone());
            }
            let attrs_changed = match (&orig, row) {
                (Some(Some(before)), Some(now)) => !before.same_attributes(now),
                _ => false,
            };
            if old == new.as_ref() && !attrs_changed {
                continue;
            }
            let old = match old {
                Some(_) => self.idx.attached.remove(r),
                None => None,
            };
            if let Some(o) = &old {
                self.idx.remove_attached(r, o);
            }
            if let Some(n) = &new {
                self.idx.add_attached(r, n);
            }
            match (old, &new) {
                (None, Some(n)) => {
                    out.push(EventKind::InterfaceAppeared { location: n.location.clone() });
                    if n.location.is_ready() {
                        out.push(EventKind::LocationReady { location: n.location.clone() });
                    }
                }
                (Some(o), None) => out.push(EventKind::InterfaceGone { location: o.location }),
                (Some(o), Some(n)) => {
                    if attrs_changed {
                        out.push(EventKind::InterfaceUpdated { location: n.location.clone() });
                    }
                    let (was, is) = (o.location.is_ready(), n.location.is_ready());
                    if is && (!was || o.location != n.location) {
                        out.push(EventKind::LocationReady { location: n.location.clone() });
                    } else if was && !is {
                        out.push(EventKind::LocationUnready { location: o.location });
                    }
                }
                (None, None) => {}
            }
            if let Some(n) = new {
                self.idx.attached.insert(key, n);
            }
        }
        // Most iface-ids went from nowhere to one place: no event, so they are dropped before
        // sorting, without copying their places.
        let by_iface_id = &self.idx.by_iface_id;
        let mut id_before: Vec<(Arc<str>, Vec<Location>)> = id_before
            .into_iter()
            .filter(|(id, before)| {
                let now = by_iface_id.get(&**id).map_or(0, SmallSet::len);
                iface_id_event_possible(before.len(), now)
            })
            .collect();
        id_before.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (iface_id, before) in id_before {
            let after = self.places(&iface_id);
            if let Some(kind) = iface_id_event(iface_id.to_string(), before, after) {
                out.push(kind);
            }
        }
        link_dirty
    }

    /// Settles the underlay addresses and the links (of `link_dirty`, and of tunnels pointing
    /// at a changed address), and emits the link events.
    fn settle_links(
        &mut self,
        mut p: Pending,
        mut link_dirty: Vec<RowRef>,
        out: &mut Vec<EventKind>,
    ) {
        // Underlay addresses, then links of the interfaces touched or pointing at a changed one.
        let mut changed_ips = BTreeSet::new();
        for (h, orig) in &p.hv_orig {
            let empty = BTreeSet::new();
            let old = orig.as_ref().map_or(&empty, |i| &i.underlay_ips);
            let new = self.raw.hypervisors.get(h).map_or(&empty, |i| &i.underlay_ips);
            for ip in old.difference(new) {
                multi_remove(&mut self.idx.underlay, ip, h);
                changed_ips.insert(*ip);
            }
            for ip in new.difference(old) {
                multi_insert(&mut self.idx.underlay, *ip, h.clone());
                changed_ips.insert(*ip);
            }
        }
        for ip in &changed_ips {
            link_dirty.extend(self.idx.tunnels_by_remote.get(ip).into_iter().flatten().cloned());
        }
        link_dirty.sort_unstable();
        link_dirty.dedup();
        let none = BTreeSet::new();
        for r in &link_dirty {
            let new = links_of(&self.raw, &self.idx, r);
            let old = self.idx.iface_links.get(r).unwrap_or(&none);
            if *old == new {
                continue;
            }
            let gone: Vec<Link> = old.difference(&new).cloned().collect();
            let came: Vec<Link> = new.difference(old).cloned().collect();
            for link in gone {
                let existed = self.idx.links.contains(&link);
                p.links.entry(link.clone()).or_insert(existed);
                self.idx.remove_link(&link);
            }
            for link in came {
                let existed = self.idx.links.contains(&link);
                p.links.entry(link.clone()).or_insert(existed);
                self.idx.add_link(&link);
            }
        }
        for (link, existed) in p.links {
            let exists = match &link {
                Link::Lldp { a, b } => self.raw.lldp.contains_key(&(*a, *b)),
                _ => self.idx.links.contains(&link),
            };
            match (existed, exists) {
                (false, true) => out.push(EventKind::LinkUp { link }),
                (true, false) => out.push(EventKind::LinkDown { link }),
                _ => {}
            }
        }
    }

    /// The locations of the attached interfaces carrying `iface_id`, in row order.
    pub(crate) fn places(&self, iface_id: &str) -> Vec<Location> {
        self.idx
            .by_iface_id
            .get(iface_id)
            .into_iter()
            .flatten()
            .filter_map(|r| self.idx.attached.get(r))
            .map(|a| a.location.clone())
            .collect()
    }
}

/// Whether an iface-id with `before` places before and `after` now can have an event: the
/// places are distinct rows, so lists of different lengths are different sets, and only these
/// shapes give one.
fn iface_id_event_possible(before: usize, after: usize) -> bool {
    matches!((before, after), (1, 1) | (0 | 1, 2..) | (2.., 1))
}

/// The iface-id event for places `before` -> `after` (each in row order), per the module docs
/// of [`crate::event`].
pub(crate) fn iface_id_event(
    iface_id: String,
    before: Vec<Location>,
    after: Vec<Location>,
) -> Option<EventKind> {
    if !iface_id_event_possible(before.len(), after.len()) {
        return None;
    }
    let rows = |v: &[Location]| v.iter().map(Location::interface_ref).collect::<BTreeSet<_>>();
    let (b, a) = (rows(&before), rows(&after));
    if b == a {
        return None;
    }
    match (before.len(), after.len()) {
        (1, 1) => Some(EventKind::InterfaceMoved {
            iface_id,
            from: before.into_iter().next()?,
            to: after.into_iter().next()?,
        }),
        (0 | 1, 2..) => {
            let (from, to) = after.into_iter().partition(|l| b.contains(&l.interface_ref()));
            Some(EventKind::MigrationStarted { iface_id, from, to })
        }
        (2.., 1) => Some(EventKind::MigrationFinished {
            iface_id,
            from: before.into_iter().filter(|l| !a.contains(&l.interface_ref())).collect(),
            to: after.into_iter().next()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
