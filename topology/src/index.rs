//! Derived state: every index of the graph, the definitions they are computed from, and their
//! recomputation from scratch (which `Topology::check_invariants` compares with the incremental
//! ones).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use periscope_codec::openflow::{Dpid, PortNo};

use crate::event::{Link, Location};
use crate::ids::{HypervisorId, Millis, RowRef, SwitchPort, Uuid};
use crate::rows::{BridgeRow, HypervisorInfo, InterfaceRow, OfPort, PortRow};
use crate::small_set::SmallSet;

/// A fast, fixed-key hasher for the point-lookup indexes (multiply-rotate per word, as rustc's
/// FxHash, and a folded multiply to finish).
/// Fixed keys keep the graph deterministic; the keys come from the hypervisors' databases and
/// the switches, not from tenants.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The table takes its index from the low bits and a tag from the top seven: fold a
        // full-width product so that both ends depend on every input bit.
        let full = u128::from(self.0) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        (full as u64) ^ ((full >> 64) as u64)
    }
}

/// A hash map with [`FastHasher`]: for indexes that are only looked up, never iterated in an
/// order anyone sees.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A hash set with [`FastHasher`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, BuildHasherDefault<FastHasher>>;

/// A map to sets that never keeps an empty set; the sets are ordered (lowest row first).
pub(crate) type MultiMap<K, V> = FastMap<K, SmallSet<V>>;
/// A two-level map to sets (second key looked up by reference) that never keeps empty levels.
pub(crate) type NestedMap<A, B, V> = FastMap<A, FastMap<B, SmallSet<V>>>;

pub(crate) fn multi_insert<K: Hash + Eq, V: Ord>(m: &mut MultiMap<K, V>, k: K, v: V) {
    m.entry(k).or_default().insert(v);
}

pub(crate) fn multi_remove<K, Q, V>(m: &mut MultiMap<K, V>, k: &Q, v: &V)
where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
    V: Ord,
{
    if let Some(set) = m.get_mut(k) {
        set.remove(v);
        if set.is_empty() {
            m.remove(k);
        }
    }
}

/// Rows of one table by hypervisor, then uuid: lookups borrow both parts of the key, and a
/// hypervisor's rows are one inner map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowMap<V>(FastMap<HypervisorId, FastMap<Uuid, V>>);

impl<V> Default for RowMap<V> {
    fn default() -> Self {
        RowMap(FastMap::default())
    }
}

impl<V> RowMap<V> {
    /// Row `uuid` of `h`.
    pub(crate) fn get(&self, h: &HypervisorId, uuid: &Uuid) -> Option<&V> {
        self.0.get(h)?.get(uuid)
    }

    /// Row `r`.
    pub(crate) fn get_ref(&self, r: &RowRef) -> Option<&V> {
        self.get(&r.hypervisor, &r.uuid)
    }

    /// Row `uuid` of `h`, mutably.
    pub(crate) fn get_mut(&mut self, h: &HypervisorId, uuid: &Uuid) -> Option<&mut V> {
        self.0.get_mut(h)?.get_mut(uuid)
    }

    /// Stores a row that is not there yet, cloning the key parts only when new.
    pub(crate) fn insert_new(&mut self, h: &HypervisorId, uuid: &Uuid, v: V) {
        let inner = match self.0.get_mut(h) {
            Some(inner) => inner,
            None => self.0.entry(h.clone()).or_default(),
        };
        inner.entry(uuid.clone()).or_insert(v);
    }

    /// Makes room for `h` to hold `rows` rows (a snapshot about to be written); only when it
    /// will hold some, so that no empty hypervisor stays behind.
    pub(crate) fn reserve(&mut self, h: &HypervisorId, rows: usize) {
        if rows == 0 {
            return;
        }
        let inner = match self.0.get_mut(h) {
            Some(inner) => inner,
            None => self.0.entry(h.clone()).or_default(),
        };
        inner.reserve(rows.saturating_sub(inner.len()));
    }

    /// The rows of `h`, if it has any.
    pub(crate) fn rows(&self, h: &HypervisorId) -> Option<&FastMap<Uuid, V>> {
        self.0.get(h)
    }

    /// How many rows `h` has.
    pub(crate) fn count(&self, h: &HypervisorId) -> usize {
        self.0.get(h).map_or(0, FastMap::len)
    }

    /// Removes a row, dropping an emptied hypervisor.
    pub(crate) fn remove(&mut self, h: &HypervisorId, uuid: &Uuid) -> Option<V> {
        let inner = self.0.get_mut(h)?;
        let v = inner.remove(uuid);
        if inner.is_empty() {
            self.0.remove(h);
        }
        v
    }

    /// The rows of `h`, in row order.
    pub(crate) fn rows_of(&self, h: &HypervisorId) -> Vec<RowRef> {
        let mut out: Vec<RowRef> = self
            .0
            .get(h)
            .into_iter()
            .flat_map(|inner| inner.keys())
            .map(|u| RowRef { hypervisor: h.clone(), uuid: u.clone() })
            .collect();
        out.sort_unstable();
        out
    }

    /// Every row, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&HypervisorId, &Uuid, &V)> {
        self.0.iter().flat_map(|(h, inner)| inner.iter().map(move |(u, v)| (h, u, v)))
    }
}

/// Row (hypervisor, uuid) -> set, nested so that lookups borrow both parts of the key.
pub(crate) type RowMultiMap<V> = FastMap<HypervisorId, MultiMap<Uuid, V>>;

/// Adds `v` under row (`h`, `uuid`), cloning the key parts only when they are new.
pub(crate) fn row_insert<V: Ord>(m: &mut RowMultiMap<V>, h: &HypervisorId, uuid: &Uuid, v: V) {
    let inner = match m.get_mut(h) {
        Some(inner) => inner,
        None => m.entry(h.clone()).or_default(),
    };
    match inner.get_mut(uuid) {
        Some(set) => {
            set.insert(v);
        }
        None => {
            inner.insert(uuid.clone(), SmallSet::one(v));
        }
    }
}

/// Removes `v` from row (`h`, `uuid`), dropping emptied levels.
pub(crate) fn row_remove<V: Ord>(m: &mut RowMultiMap<V>, h: &HypervisorId, uuid: &Uuid, v: &V) {
    if let Some(inner) = m.get_mut(h) {
        multi_remove(inner, uuid, v);
        if inner.is_empty() {
            m.remove(h);
        }
    }
}

/// The set under row (`h`, `uuid`).
pub(crate) fn row_get<'m, V>(
    m: &'m RowMultiMap<V>,
    h: &HypervisorId,
    uuid: &Uuid,
) -> Option<&'m SmallSet<V>> {
    m.get(h)?.get(uuid)
}

/// Adds `v` under (`a`, `b`), cloning `a` only when it is new.
pub(crate) fn nested_insert<A: Hash + Eq + Clone, B: Hash + Eq, V: Ord>(
    m: &mut NestedMap<A, B, V>,
    a: &A,
    b: B,
    v: V,
) {
    let inner = match m.get_mut(a) {
        Some(inner) => inner,
        None => m.entry(a.clone()).or_default(),
    };
    inner.entry(b).or_default().insert(v);
}

pub(crate) fn nested_remove<A: Hash + Eq, B: Hash + Eq + Borrow<str>, V: Ord>(
    m: &mut NestedMap<A, B, V>,
    a: &A,
    b: &str,
    v: &V,
) {
    if let Some(inner) = m.get_mut(a) {
        multi_remove(inner, b, v);
        if inner.is_empty() {
            m.remove(a);
        }
    }
}

pub(crate) fn nested_get<'m, A: Hash + Eq, B: Hash + Eq + Borrow<str>, V: Ord>(
    m: &'m NestedMap<A, B, V>,
    a: &A,
    b: &str,
) -> Option<&'m SmallSet<V>> {
    m.get(a)?.get(b)
}

/// The OpenFlow side of one switch, as last reported on its connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SwitchState {
    pub(crate) connected: bool,
    pub(crate) ports: BTreeMap<PortNo, OfPort>,
}

/// What was observed: the owners of every fact. Nothing here is derived.
#[derive(Debug, Clone, Default)]
pub(crate) struct Raw {
    pub(crate) hypervisors: BTreeMap<HypervisorId, HypervisorInfo>,
    pub(crate) bridges: BTreeMap<RowRef, BridgeRow>,
    pub(crate) ports: RowMap<PortRow>,
    pub(crate) interfaces: RowMap<InterfaceRow>,
    pub(crate) switches: BTreeMap<Dpid, SwitchState>,
    /// Keyed by `(a, b)` with `a <= b`.
    pub(crate) lldp: BTreeMap<(SwitchPort, SwitchPort), Millis>,
}

/// The derived state of a bridge row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BridgeState {
    pub(crate) dpid: Option<Dpid>,
    pub(crate) connected: bool,
}

impl BridgeState {
    /// The dpid the bridge is connected with, if connected.
    pub(crate) fn connection(self) -> Option<Dpid> {
        self.dpid.filter(|_| self.connected)
    }
}

/// The derived state of an attached interface, with the keys it is indexed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attached {
    pub(crate) port: Uuid,
    pub(crate) location: Location,
    pub(crate) kind: String,
    pub(crate) iface_id: Option<Arc<str>>,
    pub(crate) vm_uuid: Option<Arc<str>>,
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) tunnel_remote: Option<IpAddr>,
}

/// Every index. Structure indexes (`port_bridges` .. `of_by_name`) follow the raw rows as they
/// are written; the others are brought up to date when a change settles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Indexes {
    /// (hypervisor, port uuid) -> bridges whose `ports` list it.
    pub(crate) port_bridges: RowMultiMap<Uuid>,
    /// (hypervisor, interface uuid) -> ports whose `interfaces` list it.
    pub(crate) iface_ports: RowMultiMap<Uuid>,
    /// hypervisor -> interface name -> interface rows.
    pub(crate) iface_by_name: NestedMap<HypervisorId, String, Uuid>,
    /// dpid -> OpenFlow port name -> port numbers.
    pub(crate) of_by_name: NestedMap<Dpid, String, PortNo>,
    /// Every bridge row's derived state.
    pub(crate) bridges: BTreeMap<RowRef, BridgeState>,
    /// dpid -> bridges with that `datapath_id`.
    pub(crate) by_dpid: MultiMap<Dpid, RowRef>,
    /// Every attached interface.
    pub(crate) attached: FastMap<RowRef, Attached>,
    /// iface-id -> attached interfaces.
    pub(crate) by_iface_id: MultiMap<Arc<str>, RowRef>,
    /// vm-uuid -> attached interfaces.
    pub(crate) by_vm: MultiMap<Arc<str>, RowRef>,
    /// tenant -> attached interfaces.
    pub(crate) by_tenant: MultiMap<Arc<str>, RowRef>,
    /// (dpid, ofport) -> attached interfaces with that ready location.
    pub(crate) by_ofport: MultiMap<SwitchPort, RowRef>,
    /// (bridge, non-empty type) -> attached interfaces.
    pub(crate) by_bridge_kind: MultiMap<(RowRef, String), RowRef>,
    /// bridge -> every attached interface on it, of any type.
    pub(crate) by_bridge: MultiMap<RowRef, RowRef>,
    /// fixed tunnel remote_ip -> attached tunnel interfaces.
    pub(crate) tunnels_by_remote: MultiMap<IpAddr, RowRef>,
    /// underlay address -> hypervisors claiming it.
    pub(crate) underlay: MultiMap<IpAddr, HypervisorId>,
    /// Patch and tunnel links (LLDP links are raw).
    pub(crate) links: BTreeSet<Link>,
    /// interface -> the patch and tunnel links it is an end of.
    pub(crate) iface_links: FastMap<RowRef, BTreeSet<Link>>,
}

impl Indexes {
    /// Adds `a`'s keys to the lookup indexes (not to `attached` itself); true when its
    /// iface-id now has two interfaces or more.
    pub(crate) fn add_attached(&mut self, r: &RowRef, a: &Attached) -> bool {
        multi_insert(&mut self.by_bridge, a.location.bridge_ref(), r.clone());
        self.add_attached_but_bridge(r, a)
    }

    /// [`Indexes::add_attached`] without the `by_bridge` entry, which the caller adds (the bulk
    /// path adds a bridge's interfaces in one go).
    pub(crate) fn add_attached_but_bridge(&mut self, r: &RowRef, a: &Attached) -> bool {
        let mut shared = false;
        if let Some(id) = &a.iface_id {
            let set = self.by_iface_id.entry(id.clone()).or_default();
            set.insert(r.clone());
            shared = set.len() > 1;
        }
        if let Some(vm) = &a.vm_uuid {
            multi_insert(&mut self.by_vm, vm.clone(), r.clone());
        }
        if let Some(t) = &a.tenant {
            multi_insert(&mut self.by_tenant, t.clone(), r.clone());
        }
        if let Some(sp) = a.location.switch_port() {
            multi_insert(&mut self.by_ofport, sp, r.clone());
        }
        if !a.kind.is_empty() {
            multi_insert(
                &mut self.by_bridge_kind,
                (a.location.bridge_ref(), a.kind.clone()),
                r.clone(),
            );
        }
        if let Some(ip) = a.tunnel_remote {
            multi_insert(&mut self.tunnels_by_remote, ip, r.clone());
        }
        shared
    }

    /// Removes `a`'s keys from the lookup indexes.
    pub(crate) fn remove_attached(&mut self, r: &RowRef, a: &Attached) {
        if let Some(id) = &a.iface_id {
            multi_remove(&mut self.by_iface_id, &**id, r);
        }
        if let Some(vm) = &a.vm_uuid {
            multi_remove(&mut self.by_vm, &**vm, r);
        }
        if let Some(t) = &a.tenant {
            multi_remove(&mut self.by_tenant, &**t, r);
        }
        if let Some(sp) = a.location.switch_port() {
            multi_remove(&mut self.by_ofport, &sp, r);
        }
        multi_remove(&mut self.by_bridge, &a.location.bridge_ref(), r);
        if !a.kind.is_empty() {
            multi_remove(&mut self.by_bridge_kind, &(a.location.bridge_ref(), a.kind.clone()), r);
        }
        if let Some(ip) = a.tunnel_remote {
            multi_remove(&mut self.tunnels_by_remote, &ip, r);
        }
    }

    /// Adds a patch or tunnel link and its ends.
    pub(crate) fn add_link(&mut self, link: &Link) {
        for end in link_ends(link) {
            self.iface_links.entry(end.clone()).or_default().insert(link.clone());
        }
        self.links.insert(link.clone());
    }

    /// Removes a patch or tunnel link and its ends.
    pub(crate) fn remove_link(&mut self, link: &Link) {
        for end in link_ends(link) {
            if let Some(set) = self.iface_links.get_mut(end) {
                set.remove(link);
                if set.is_empty() {
                    self.iface_links.remove(end);
                }
            }
        }
        self.links.remove(link);
    }
}

/// The interface rows a link ends at.
pub(crate) fn link_ends(link: &Link) -> Vec<&RowRef> {
    match link {
        Link::Patch { a, b } => vec![a, b],
        Link::Tunnel { iface, .. } => vec![iface],
        Link::Lldp { .. } => Vec::new(),
    }
}

/// The derived state of a bridge row.
pub(crate) fn bridge_state(raw: &Raw, row: &BridgeRow) -> BridgeState {
    let dpid = row.datapath_id;
    let connected = dpid.and_then(|d| raw.switches.get(&d)).is_some_and(|s| s.connected);
    BridgeState { dpid, connected }
}

/// The `datapath_id` of the last bridge row looked up: the interfaces settled together are
/// mostly on one bridge. Valid while the raw bridge rows do not change.
#[derive(Default)]
pub(crate) struct DpidMemo(Option<(RowRef, Option<Dpid>)>);

impl DpidMemo {
    /// The `datapath_id` of bridge `uuid` of `h`: `None` when there is no such bridge row.
    fn get(&mut self, raw: &Raw, h: &HypervisorId, uuid: &Uuid) -> Option<Option<Dpid>> {
        if let Some((r, dpid)) = &self.0 {
            if r.uuid == *uuid && r.hypervisor == *h {
                return Some(*dpid);
            }
        }
        let r = RowRef { hypervisor: h.clone(), uuid: uuid.clone() };
        let dpid = raw.bridges.get(&r)?.datapath_id;
        self.0 = Some((r, dpid));
        Some(dpid)
    }
}

/// Where interface `r` (whose row is `row`) is, if attached: the definition of attachment and
/// location. Reads the structure indexes, which must be current.
pub(crate) fn attached_of(
    raw: &Raw,
    idx: &Indexes,
    tenant_key: &str,
    r: &RowRef,
    row: &InterfaceRow,
    dpids: &mut DpidMemo,
) -> Option<Attached> {
    let port = row_get(&idx.iface_ports, &r.hypervisor, &r.uuid)?.first()?;
    let bridge = row_get(&idx.port_bridges, &r.hypervisor, port)?.first()?;
    let dpid = dpids.get(raw, &r.hypervisor, bridge)?;
    let ofport = row.ofport.or_else(|| {
        nested_get(&idx.of_by_name, &dpid?, &row.name).and_then(|set| set.first().copied())
    });
    Some(Attached {
        port: port.clone(),
        location: Location {
            hypervisor: r.hypervisor.clone(),
            bridge: bridge.clone(),
            interface: r.uuid.clone(),
            dpid,
            ofport,
        },
        kind: row.kind.clone(),
        iface_id: row.iface_id().map(Arc::from),
        vm_uuid: row.vm_uuid().map(Arc::from),
        tenant: row.external_id(tenant_key).map(Arc::from),
        tunnel_remote: row.tunnel_remote_ip(),
    })
}

/// The patch and tunnel links interface `r` is an end of: the definition of those links. Reads
/// `attached`, `iface_by_name` and `underlay`, which must be current.
pub(crate) fn links_of(raw: &Raw, idx: &Indexes, r: &RowRef) -> BTreeSet<Link> {
    let mut out = BTreeSet::new();
    let (Some(row), Some(att)) = (raw.interfaces.get_ref(r), idx.attached.get(r)) else {
        return out;
    };
    if let Some(peer) = row.patch_peer() {
        for uuid in nested_get(&idx.iface_by_name, &r.hypervisor, peer).into_iter().flatten() {
            let other = RowRef { hypervisor: r.hypervisor.clone(), uuid: uuid.clone() };
            if other == *r || !idx.attached.contains_key(&other) {
                continue;
            }
            let mutual =
                raw.interfaces.get_ref(&other).is_some_and(|o| o.patch_peer() == Some(&row.name));
            if mutual {
                let (a, b) = if *r < other { (r.clone(), other) } else { (other, r.clone()) };
                out.insert(Link::Patch { a, b });
            }
        }
    }
    if let Some(ip) = att.tunnel_remote {
        for h in idx.underlay.get(&ip).into_iter().flatten() {
            if *h != r.hypervisor {
                out.insert(Link::Tunnel { iface: r.clone(), remote_ip: ip, to: h.clone() });
            }
        }
    }
    out
}

/// Every index, computed from the raw state alone.
pub(crate) fn recompute(raw: &Raw, tenant_key: &str) -> Indexes {
    let mut idx = Indexes::default();
    for (b, row) in &raw.bridges {
        for p in &row.ports {
            row_insert(&mut idx.port_bridges, &b.hypervisor, p, b.uuid.clone());
        }
    }
    for (h, p, row) in raw.ports.iter() {
        for i in &row.interfaces {
            row_insert(&mut idx.iface_ports, h, i, p.clone());
        }
    }
    for (h, i, row) in raw.interfaces.iter() {
        nested_insert(&mut idx.iface_by_name, h, row.name.clone(), i.clone());
    }
    for (d, sw) in &raw.switches {
        for (no, port) in &sw.ports {
            nested_insert(&mut idx.of_by_name, d, port.name.clone(), *no);
        }
    }
    for (b, row) in &raw.bridges {
        let st = bridge_state(raw, row);
        if let Some(d) = st.dpid {
            multi_insert(&mut idx.by_dpid, d, b.clone());
        }
        idx.bridges.insert(b.clone(), st);
    }
    for (h, info) in &raw.hypervisors {
        for ip in &info.underlay_ips {
            multi_insert(&mut idx.underlay, *ip, h.clone());
        }
    }
    for (h, uuid, row) in raw.interfaces.iter() {
        let r = RowRef { hypervisor: h.clone(), uuid: uuid.clone() };
        if let Some(a) = attached_of(raw, &idx, tenant_key, &r, row, &mut DpidMemo::default()) {
            idx.add_attached(&r, &a);
            idx.attached.insert(r, a);
        }
    }
    let links: Vec<Link> = idx.attached.keys().flat_map(|r| links_of(raw, &idx, r)).collect();
    for link in &links {
        idx.add_link(link);
    }
    idx
}
