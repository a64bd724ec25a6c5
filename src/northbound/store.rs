//! The desired taps: what tenants asked for, owned here and nowhere else. Every operation
//! checks everything first and then applies, so a refused request changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::model::{
    Source, TapFlow, TapFlowId, TapFlowSpec, TapService, TapServiceId, TapServiceSpec,
};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StoreError {
    /// No such object (or not the caller's).
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of object.
        what: &'static str,
        /// Its id.
        id: u64,
    },
    /// The key is already used by another tap service.
    #[error("key {key} is already used by tap service {by}")]
    KeyTaken {
        /// The key.
        key: u32,
        /// The service using it.
        by: u64,
    },
    /// Every key is in use.
    #[error("no free key left")]
    KeysExhausted,
    /// The tap service still has tap flows.
    #[error("tap service {id} still has tap flows {flows:?}; delete them first")]
    InUse {
        /// The service.
        id: u64,
        /// Its flows.
        flows: Vec<u64>,
    },
    /// The tap flow names a tap service of another tenant.
    #[error("tap service {service} does not belong to tenant {tenant}")]
    ForeignService {
        /// The service.
        service: u64,
        /// The tenant of the tap flow.
        tenant: String,
    },
}

/// The tap services and tap flows, and the interfaces the operator registered to a tenant.
#[derive(Debug, Default, Clone)]
pub struct Taps {
    services: BTreeMap<TapServiceId, TapService>,
    flows: BTreeMap<TapFlowId, TapFlow>,
    keys: BTreeMap<u32, TapServiceId>,
    owners: BTreeMap<String, String>,
    blocked: BTreeSet<TapServiceId>,
    by_source: BySource,
    /// Tap services by tenant and name.
    service_names: ByTenant<TapServiceId>,
    /// Tap flows by tenant and name.
    flow_names: ByTenant<TapFlowId>,
    /// The tap flows of each tap service.
    flows_of: HashMap<TapServiceId, BTreeSet<TapFlowId>>,
    next_id: u64,
    /// Which content this is (see [`Taps::revision`]).
    revision: u64,
}

/// Ids by tenant and name, and how many each tenant has: what a write's checks ask (is the
/// name taken, is the quota full) answered without looking at every tap of every tenant.
#[derive(Debug, Clone)]
struct ByTenant<Id> {
    names: HashMap<String, BTreeMap<String, BTreeSet<Id>>>,
    counts: HashMap<String, usize>,
}

impl<Id> Default for ByTenant<Id> {
    fn default() -> Self {
        ByTenant { names: HashMap::new(), counts: HashMap::new() }
    }
}

impl<Id: Ord + Copy> ByTenant<Id> {
    fn insert(&mut self, tenant: &str, name: &str, id: Id) {
        let names = self.names.entry(tenant.to_string()).or_default();
        if names.entry(name.to_string()).or_default().insert(id) {
            *self.counts.entry(tenant.to_string()).or_default() += 1;
        }
    }

    fn remove(&mut self, tenant: &str, name: &str, id: Id) {
        let Some(names) = self.names.get_mut(tenant) else { return };
        let Some(ids) = names.get_mut(name) else { return };
        if !ids.remove(&id) {
            return;
        }
        if ids.is_empty() {
            names.remove(name);
        }
        if names.is_empty() {
            self.names.remove(tenant);
            self.counts.remove(tenant);
        } else if let Some(n) = self.counts.get_mut(tenant) {
            *n -= 1;
        }
    }

    fn named(&self, tenant: &str, name: &str) -> Option<Id> {
        self.names.get(tenant)?.get(name)?.first().copied()
    }

    fn count(&self, tenant: &str) -> usize {
        self.counts.get(tenant).copied().unwrap_or(0)
    }
}

/// Equal content, whatever the revisions say.
impl PartialEq for Taps {
    fn eq(&self, other: &Self) -> bool {
        self.services == other.services
            && self.flows == other.flows
            && self.keys == other.keys
            && self.owners == other.owners
            && self.blocked == other.blocked
            && self.by_source == other.by_source
            && self.next_id == other.next_id
    }
}

/// The revision the next change of any [`Taps`] in the process takes.
static NEXT_REVISION: AtomicU64 = AtomicU64::new(1);

/// The tap flows by the kind of source they name, kept with them, so that the tap flows that
/// may select one interface are found without looking at every tap flow: by iface-id and by
/// VM through a map; only the selectors are tried one by one.
#[derive(Debug, Default, Clone, PartialEq)]
struct BySource {
    iface_id: HashMap<String, BTreeSet<TapFlowId>>,
    vm: HashMap<String, BTreeSet<TapFlowId>>,
    selectors: BTreeSet<TapFlowId>,
}

impl BySource {
    fn insert(&mut self, f: &TapFlow) {
        match &f.source {
            Source::IfaceId(id) => self.iface_id.entry(id.clone()).or_default().insert(f.id),
            Source::Vm(vm) => self.vm.entry(vm.clone()).or_default().insert(f.id),
            Source::Selector(_) => self.selectors.insert(f.id),
        };
    }

    fn remove(&mut self, f: &TapFlow) {
        fn take(map: &mut HashMap<String, BTreeSet<TapFlowId>>, key: &str, id: TapFlowId) {
            if let Some(ids) = map.get_mut(key) {
                ids.remove(&id);
                if ids.is_empty() {
                    map.remove(key);
                }
            }
        }
        match &f.source {
            Source::IfaceId(id) => take(&mut self.iface_id, id, f.id),
            Source::Vm(vm) => take(&mut self.vm, vm, f.id),
            Source::Selector(_) => {
                self.selectors.remove(&f.id);
            }
        }
    }
}

/// Keys below this are left for the operator's manual use.
const FIRST_ALLOCATED_KEY: u32 = 1000;

impl Taps {
    /// No taps.
    pub fn new() -> Self {
        Taps::default()
    }

    /// Names this content: two `Taps` with one revision hold the same taps (a clone keeps its
    /// original's; every change takes one no other change in the process took). What the
    /// controller computed from the taps stays true while their revision does.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Gives the content about to change a revision of its own.
    fn changing(&mut self) {
        self.revision = NEXT_REVISION.fetch_add(1, Ordering::Relaxed);
    }

    /// Every tap service.
    pub fn services(&self) -> impl Iterator<Item = &TapService> {
        self.services.values()
    }

    /// Every tap flow.
    pub fn flows(&self) -> impl Iterator<Item = &TapFlow> {
        self.flows.values()
    }

    /// One tap service.
    pub fn service(&self, id: TapServiceId) -> Option<&TapService> {
        self.services.get(&id)
    }

    /// One tap flow.
    pub fn flow(&self, id: TapFlowId) -> Option<&TapFlow> {
        self.flows.get(&id)
    }

    /// The tenant's tap service of that name.
    pub fn service_named(&self, tenant: &str, name: &str) -> Option<&TapService> {
        self.service_names.named(tenant, name).and_then(|id| self.services.get(&id))
    }

    /// The tenant's tap flow of that name.
    pub fn flow_named(&self, tenant: &str, name: &str) -> Option<&TapFlow> {
        self.flow_names.named(tenant, name).and_then(|id| self.flows.get(&id))
    }

    /// The tap flows copying to a tap service.
    pub fn flows_using(&self, service: TapServiceId) -> impl Iterator<Item = &TapFlow> {
        self.flows_of.get(&service).into_iter().flatten().filter_map(|id| self.flows.get(id))
    }

    /// How many tap services the tenant has.
    pub fn services_of(&self, tenant: &str) -> usize {
        self.service_names.count(tenant)
    }

    /// How many tap flows the tenant has.
    pub fn flows_of(&self, tenant: &str) -> usize {
        self.flow_names.count(tenant)
    }

    /// The next id [`Taps::create_service`] or [`Taps::create_flow`] will give is above `floor`.
    pub fn reserve_ids(&mut self, floor: u64) {
        self.next_id = self.next_id.max(floor);
    }

    /// The largest id given so far.
    pub fn last_id(&self) -> u64 {
        self.next_id
    }

    /// The tenant the operator registered `iface_id` to, if any.
    pub fn registered_owner(&self, iface_id: &str) -> Option<&str> {
        self.owners.get(iface_id).map(String::as_str)
    }

    /// Every registration, iface-id to tenant.
    pub fn owners(&self) -> &BTreeMap<String, String> {
        &self.owners
    }

    /// The tenant an interface belongs to: the operator's registration wins over what the
    /// interface's own `external_ids` say.
    pub fn tenant_of<'a>(
        &'a self,
        iface_id: Option<&str>,
        said: Option<&'a str>,
    ) -> Option<&'a str> {
        iface_id.and_then(|i| self.registered_owner(i)).or(said)
    }

    /// Registers `iface_id` to `tenant` (or removes the registration with `None`).
    pub fn set_owner(&mut self, iface_id: &str, tenant: Option<&str>) {
        self.changing();
        match tenant {
            Some(t) => self.owners.insert(iface_id.to_string(), t.to_string()),
            None => self.owners.remove(iface_id),
        };
    }

    /// Marks the tap services whose copies must not go out (their collector is outside their
    /// tenant's allowed collectors); the policy leaves them out.
    pub fn set_blocked(&mut self, blocked: BTreeSet<TapServiceId>) {
        self.changing();
        self.blocked = blocked;
    }

    /// Whether a tap service's copies must not go out.
    pub fn is_blocked(&self, id: TapServiceId) -> bool {
        self.blocked.contains(&id)
    }

    /// Puts back a tap service read from storage, keeping its id and key.
    pub fn restore_service(&mut self, s: TapService) -> Result<(), StoreError> {
        self.changing();
        if let Some(by) = self.keys.get(&s.key) {
            return Err(StoreError::KeyTaken { key: s.key, by: by.0 });
        }
        self.next_id = self.next_id.max(s.id.0);
        if let Some(old) = self.services.remove(&s.id) {
            self.keys.remove(&old.key);
            self.service_names.remove(&old.tenant, &old.name, old.id);
        }
        self.keys.insert(s.key, s.id);
        self.service_names.insert(&s.tenant, &s.name, s.id);
        self.services.insert(s.id, s);
        Ok(())
    }

    /// Puts back a tap flow read from storage; its tap service must be there already and
    /// belong to the same tenant.
    pub fn restore_flow(&mut self, f: TapFlow) -> Result<(), StoreError> {
        self.changing();
        let svc = self
            .services
            .get(&f.tap_service)
            .ok_or(StoreError::NotFound { what: "tap service", id: f.tap_service.0 })?;
        if svc.tenant != f.tenant {
            return Err(StoreError::ForeignService { service: svc.id.0, tenant: f.tenant });
        }
        self.next_id = self.next_id.max(f.id.0);
        self.put_flow(f);
        Ok(())
    }

    /// Creates a tap service, allocating its key if none was asked for (and none of `avoid`).
    pub fn create_service(&mut self, spec: TapServiceSpec) -> Result<TapService, StoreError> {
        self.create_service_avoiding(spec, &BTreeSet::new())
    }

    /// Creates a tap service; an allocated key is none of `avoid` (keys other writers are
    /// taking at this moment).
    pub fn create_service_avoiding(
        &mut self,
        spec: TapServiceSpec,
        avoid: &BTreeSet<u32>,
    ) -> Result<TapService, StoreError> {
        let s = self.new_service(spec, avoid, 0)?;
        self.restore_service(s.clone())?;
        Ok(s)
    }

    /// The tap service [`Taps::create_service_avoiding`] would create, with an id above
    /// `floor` too, without creating it (put it in with [`Taps::restore_service`]).
    pub fn new_service(
        &self,
        spec: TapServiceSpec,
        avoid: &BTreeSet<u32>,
        floor: u64,
    ) -> Result<TapService, StoreError> {
        let key = match spec.key {
            Some(k) => {
                if let Some(by) = self.keys.get(&k) {
                    return Err(StoreError::KeyTaken { key: k, by: by.0 });
                }
                k
            }
            // ERSPAN's session ids stop at 1023: allocate them from 1, below the others.
            None => {
                let first = match spec.encap.erspan_version() {
                    Some(_) => 1,
                    None => FIRST_ALLOCATED_KEY,
                };
                self.free_key(first, spec.encap.max_key(), avoid)?
            }
        };
        Ok(TapService {
            id: TapServiceId(self.next_id.max(floor) + 1),
            name: spec.name,
            tenant: spec.tenant,
            encap: spec.encap,
            collector: spec.collector,
            key,
            snaplen: spec.snaplen,
        })
    }

    fn free_key(&self, first: u32, max: u32, avoid: &BTreeSet<u32>) -> Result<u32, StoreError> {
        let mut want = first;
        let taken = self.keys.keys().chain(avoid.iter()).copied().collect::<BTreeSet<u32>>();
        for &k in taken.range(first..) {
            if k != want {
                break;
            }
            want = want.checked_add(1).ok_or(StoreError::KeysExhausted)?;
        }
        if want > max {
            return Err(StoreError::KeysExhausted);
        }
        Ok(want)
    }

    /// Deletes a tap service that no tap flow uses.
    pub fn delete_service(&mut self, id: TapServiceId) -> Result<TapService, StoreError> {
        self.changing();
        self.deletable_service(id)?;
        let s = self
            .services
            .remove(&id)
            .ok_or(StoreError::NotFound { what: "tap service", id: id.0 })?;
        self.keys.remove(&s.key);
        self.service_names.remove(&s.tenant, &s.name, s.id);
        self.flows_of.remove(&s.id);
        Ok(s)
    }

    /// The tap service, if it is there and no tap flow uses it (what
    /// [`Taps::delete_service`] asks).
    pub fn deletable_service(&self, id: TapServiceId) -> Result<&TapService, StoreError> {
        let s =
            self.services.get(&id).ok_or(StoreError::NotFound { what: "tap service", id: id.0 })?;
        let flows: Vec<u64> = self.flows_of.get(&id).into_iter().flatten().map(|f| f.0).collect();
        if !flows.is_empty() {
            return Err(StoreError::InUse { id: id.0, flows });
        }
        Ok(s)
    }

    /// Creates a tap flow towards one of the same tenant's tap services.
    pub fn create_flow(&mut self, spec: TapFlowSpec) -> Result<TapFlow, StoreError> {
        let f = self.new_flow(spec, 0)?;
        self.restore_flow(f.clone())?;
        Ok(f)
    }

    /// The tap flow [`Taps::create_flow`] would create, with an id above `floor` too, without
    /// creating it (put it in with [`Taps::restore_flow`]).
    pub fn new_flow(&self, spec: TapFlowSpec, floor: u64) -> Result<TapFlow, StoreError> {
        let svc = self
            .services
            .get(&spec.tap_service)
            .ok_or(StoreError::NotFound { what: "tap service", id: spec.tap_service.0 })?;
        if svc.tenant != spec.tenant {
            return Err(StoreError::ForeignService { service: svc.id.0, tenant: spec.tenant });
        }
        Ok(TapFlow {
            id: TapFlowId(self.next_id.max(floor) + 1),
            name: spec.name,
            tenant: spec.tenant,
            tap_service: spec.tap_service,
            source: spec.source,
            direction: spec.direction,
            filter: spec.filter,
        })
    }

    /// Deletes a tap flow.
    pub fn delete_flow(&mut self, id: TapFlowId) -> Result<TapFlow, StoreError> {
        self.changing();
        let f =
            self.flows.remove(&id).ok_or(StoreError::NotFound { what: "tap flow", id: id.0 })?;
        self.unindex_flow(&f);
        Ok(f)
    }

    /// The tap flows whose source may select an interface with this iface-id and VM: those
    /// naming the iface-id, those naming the VM, and every selector (in no particular order;
    /// whether each really selects the interface is the caller's question).
    pub fn naming(&self, iface_id: &str, vm: Option<&str>) -> impl Iterator<Item = &TapFlow> {
        let by_iface = self.by_source.iface_id.get(iface_id).into_iter().flatten();
        let by_vm = vm.and_then(|vm| self.by_source.vm.get(vm)).into_iter().flatten();
        by_iface
            .chain(by_vm)
            .chain(self.by_source.selectors.iter())
            .filter_map(|id| self.flows.get(id))
    }

    /// Stores a tap flow, replacing one with the same id, and indexes it by its source.
    fn put_flow(&mut self, f: TapFlow) {
        if let Some(old) = self.flows.remove(&f.id) {
            self.unindex_flow(&old);
        }
        self.by_source.insert(&f);
        self.flow_names.insert(&f.tenant, &f.name, f.id);
        self.flows_of.entry(f.tap_service).or_default().insert(f.id);
        self.flows.insert(f.id, f);
    }

    /// Takes a tap flow out of the indexes.
    fn unindex_flow(&mut self, f: &TapFlow) {
        self.by_source.remove(f);
        self.flow_names.remove(&f.tenant, &f.name, f.id);
        if let Some(ids) = self.flows_of.get_mut(&f.tap_service) {
            ids.remove(&f.id);
            if ids.is_empty() {
                self.flows_of.remove(&f.tap_service);
            }
        }
    }

    /// Every key in use.
    pub fn keys(&self) -> BTreeSet<u32> {
        self.keys.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::super::model::*;
    use super::*;

    fn svc(tenant: &str, key: Option<u32>) -> TapServiceSpec {
        TapServiceSpec {
            name: "c".into(),
            tenant: tenant.into(),
            encap: Encap::Vxlan,
            collector: crate::northbound::model::Collector::Remote(IpAddr::from([192, 0, 2, 9])),
            key,
            snaplen: None,
        }
    }

    fn flow(tenant: &str, service: TapServiceId) -> TapFlowSpec {
        TapFlowSpec {
            name: "f".into(),
            tenant: tenant.into(),
            tap_service: service,
            source: Source::IfaceId("p1".into()),
            direction: Direction::Both,
            filter: Filter::default(),
        }
    }

    #[test]
    fn keys_are_unique_across_tenants_and_allocated_around_taken_ones() {
        let mut t = Taps::new();
        assert_eq!(t.create_service(svc("a", Some(1001))).unwrap().key, 1001);
        assert_eq!(t.create_service(svc("b", None)).unwrap().key, 1000);
        assert_eq!(t.create_service(svc("b", None)).unwrap().key, 1002);
        assert_eq!(
            t.create_service(svc("c", Some(1000))),
            Err(StoreError::KeyTaken { key: 1000, by: 2 })
        );
        assert_eq!(t.services().count(), 3);
    }

    #[test]
    fn a_flow_needs_its_own_tenants_service_and_blocks_its_deletion() {
        let mut t = Taps::new();
        let s = t.create_service(svc("a", None)).unwrap();
        assert!(matches!(t.create_flow(flow("b", s.id)), Err(StoreError::ForeignService { .. })));
        let f = t.create_flow(flow("a", s.id)).unwrap();
        assert!(matches!(t.delete_service(s.id), Err(StoreError::InUse { .. })));
        t.delete_flow(f.id).unwrap();
        t.delete_service(s.id).unwrap();
        // Its key is free again.
        assert_eq!(t.create_service(svc("a", None)).unwrap().key, 1000);
    }

    /// Whatever was created, deleted and restored over, the flows naming an interface are
    /// those a look at every flow finds.
    #[test]
    fn the_index_by_source_follows_every_change() {
        let mut t = Taps::new();
        let s = t.create_service(svc("a", None)).unwrap();
        let sources = [
            Source::IfaceId("p1".into()),
            Source::IfaceId("p2".into()),
            Source::Vm("vm1".into()),
            Source::Vm("vm2".into()),
            Source::Selector(BTreeMap::from([("app".into(), "db".into())])),
        ];
        let mut ids = Vec::new();
        for (n, source) in sources.iter().cycle().take(12).enumerate() {
            let f = t.create_flow(TapFlowSpec { source: source.clone(), ..flow("a", s.id) });
            ids.push((n, f.unwrap()));
        }
        for (_, f) in ids.iter().filter(|(n, _)| n % 3 == 0) {
            t.delete_flow(f.id).unwrap();
        }
        // Restored over an existing id with another source: the old source no longer names it.
        let (_, moved) = &ids[1];
        t.restore_flow(TapFlow { source: Source::Vm("vm9".into()), ..moved.clone() }).unwrap();
        for (iface, vm) in
            [("p1", None), ("p2", Some("vm1")), ("p3", Some("vm9")), ("p1", Some("vm2"))]
        {
            let mut found: Vec<TapFlowId> = t.naming(iface, vm).map(|f| f.id).collect();
            found.sort();
            let expected: Vec<TapFlowId> = t
                .flows()
                .filter(|f| match &f.source {
                    Source::IfaceId(id) => id == iface,
                    Source::Vm(v) => Some(v.as_str()) == vm,
                    Source::Selector(_) => true,
                })
                .map(|f| f.id)
                .collect();
            assert_eq!(found, expected, "{iface} {vm:?}");
            assert!(!found.is_empty(), "{iface} {vm:?}: every case names some flow");
        }
    }

    /// Names, counts and the tap flows of each tap service, as looking at every tap says,
    /// through creations, deletions, duplicate names and a restore over an existing id.
    #[test]
    fn the_indexes_by_tenant_name_and_service_follow_every_change() {
        let mut t = Taps::new();
        let mut services = Vec::new();
        for (n, tenant) in ["a", "b", "a"].iter().enumerate() {
            let spec = TapServiceSpec { name: format!("s{}", n % 2), ..svc(tenant, None) };
            services.push(t.create_service(spec).unwrap());
        }
        let mut flows = Vec::new();
        for n in 0..20usize {
            let s = &services[n % 3];
            let spec = TapFlowSpec { name: format!("f{}", n % 4), ..flow(&s.tenant, s.id) };
            flows.push(t.create_flow(spec).unwrap());
        }
        for f in flows.iter().step_by(3) {
            t.delete_flow(f.id).unwrap();
        }
        t.restore_flow(TapFlow { name: "renamed".into(), ..flows[1].clone() }).unwrap();
        let check = |t: &Taps| {
            for tenant in ["a", "b", "c"] {
                let all = || t.flows().filter(|f| f.tenant == tenant);
                assert_eq!(t.flows_of(tenant), all().count(), "{tenant}");
                let svcs = t.services().filter(|s| s.tenant == tenant).count();
                assert_eq!(t.services_of(tenant), svcs, "{tenant}");
                for name in ["f0", "f1", "f2", "f3", "renamed", "none"] {
                    let first = all().filter(|f| f.name == name).map(|f| f.id).min();
                    assert_eq!(t.flow_named(tenant, name).map(|f| f.id), first, "{tenant} {name}");
                }
                for name in ["s0", "s1"] {
                    let first =
                        t.services().filter(|s| s.tenant == tenant && s.name == name).map(|s| s.id);
                    assert_eq!(t.service_named(tenant, name).map(|s| s.id), first.min());
                }
            }
            for s in t.services() {
                let using = t.flows().filter(|f| f.tap_service == s.id).count();
                assert_eq!(t.deletable_service(s.id).is_ok(), using == 0, "service {}", s.id.0);
            }
        };
        check(&t);
        // Emptied: every tap flow of the second tenant goes, then its service.
        let b: Vec<TapFlowId> = t.flows().filter(|f| f.tenant == "b").map(|f| f.id).collect();
        for id in b {
            t.delete_flow(id).unwrap();
        }
        t.delete_service(services[1].id).unwrap();
        check(&t);
        assert_eq!((t.flows_of("b"), t.services_of("b")), (0, 0));
    }

    /// One revision, one content: a clone keeps its original's, every change takes a new one,
    /// and equal content compares equal whatever the revisions.
    #[test]
    fn every_change_takes_a_revision_of_its_own() {
        let mut t = Taps::new();
        let empty = t.revision();
        let s = t.create_service(svc("a", None)).expect("a service");
        let mut seen = BTreeSet::from([empty, t.revision()]);
        let copy = t.clone();
        assert_eq!((copy.revision(), &copy), (t.revision(), &t));
        let mut other = t.clone();
        let f = t.create_flow(flow("a", s.id)).expect("a flow");
        other.create_flow(flow("a", s.id)).expect("a flow");
        assert_eq!(other, t, "same content");
        assert!(seen.insert(t.revision()) && seen.insert(other.revision()), "distinct revisions");
        t.set_owner("p1", Some("a"));
        assert!(seen.insert(t.revision()));
        t.set_blocked(BTreeSet::from([s.id]));
        assert!(seen.insert(t.revision()));
        t.delete_flow(f.id).expect("deleted");
        assert!(seen.insert(t.revision()));
        t.delete_service(s.id).expect("deleted");
        assert!(seen.insert(t.revision()));
        let mut back = Taps::new();
        back.restore_service(s).expect("restored");
        assert!(seen.insert(back.revision()));
        back.restore_flow(f).expect("restored");
        assert!(seen.insert(back.revision()));
    }
}
