//! The rules, and what the policy does with their outcome: random sequences of API calls from
//! several tenants and the operator never make a copy of one tenant's interface reach another
//! tenant's collector, nor any collector outside the copying tenant's allow-list.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use periscope_codec::openflow::{Dpid, MacAddr, OxmField, PortNo};
use periscope_topology::change::HypervisorSnapshot;
use periscope_topology::rows::{BridgeRow, InterfaceRow, PortRow};
use periscope_topology::{
    Change, HypervisorId, Source as TopoSource, Topology, TopologyConfig, Uuid as RowUuid,
};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::policy::desired::{desired, Activity};
use crate::policy::trace::{Output, Packet, Pipeline};

const TENANTS: [&str; 3] = ["bank-a", "bank-b", "bank-c"];
/// Interfaces 0..6 on one bridge; interface n says (in external_ids) it is tenant n % 3's.
const IFACES: u32 = 6;
const UPLINK: PortNo = PortNo(99);
const COLLECTORS: [&str; 4] = ["192.0.2.1", "192.0.2.17", "198.51.100.1", "203.0.113.7"];
const PREFIXES: [&str; 3] = ["192.0.2.0/28", "192.0.2.16/28", "198.51.100.0/24"];

fn mac(n: u32) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n as u8 + 1])
}

fn topology() -> Topology {
    let mut snap = HypervisorSnapshot::default();
    let mut bridge = BridgeRow {
        uuid: RowUuid::from("br"),
        name: "br-int".into(),
        datapath_id: Some(Dpid(1)),
        ports: BTreeSet::new(),
    };
    let mut add = |i: InterfaceRow, snap: &mut HypervisorSnapshot| {
        let p = PortRow {
            uuid: RowUuid::from(format!("p-{}", i.uuid)),
            name: i.name.clone(),
            interfaces: BTreeSet::from([i.uuid.clone()]),
        };
        bridge.ports.insert(p.uuid.clone());
        snap.ports.push(p);
        snap.interfaces.push(i);
    };
    for n in 0..IFACES {
        let mut i = InterfaceRow {
            uuid: RowUuid::from(format!("i{n}")),
            name: format!("tap{n}"),
            ofport: Some(PortNo(n + 1)),
            ..Default::default()
        };
        for (k, v) in [
            ("iface-id", format!("port-{n}")),
            ("attached-mac", mac(n).to_string()),
            ("vm-uuid", format!("vm-{}", n / 2)),
            ("tenant-id", TENANTS[n as usize % 3].to_string()),
            ("app", "payments".to_string()),
        ] {
            i.external_ids.insert(k.into(), v.into());
        }
        add(i, &mut snap);
    }
    for (kind, no) in [("vxlan", 100), ("gre", 101)] {
        let mut i = InterfaceRow {
            uuid: RowUuid::from(format!("t-{kind}")),
            name: format!("psc-{kind}"),
            kind: kind.into(),
            ofport: Some(PortNo(no)),
            ..Default::default()
        };
        i.external_ids.insert("periscope-owned".into(), "true".into());
        i.options.insert("remote_ip".into(), "flow".into());
        i.options.insert("key".into(), "flow".into());
        add(i, &mut snap);
    }
    snap.bridges.push(bridge);
    let mut t = Topology::new(TopologyConfig::default());
    t.apply_batch(vec![Change::HypervisorReplaced {
        hypervisor: HypervisorId::from("hv1"),
        snapshot: snap,
    }]);
    t
}

/// One API call, by whom.
#[derive(Debug, Clone)]
enum Call {
    PutTenant { tenant: usize, prefixes: Vec<usize> },
    Register { iface: u32, tenant: usize },
    Service { caller: usize, tenant: usize, collector: usize, gre: bool },
    Flow { caller: usize, tenant: usize, service: usize, source: u8, n: u32, dir: u8 },
    DeleteFlow { caller: usize, nth: usize },
    DeleteService { caller: usize, nth: usize },
}

/// Who calls for `tenant`: mostly the tenant itself, sometimes the operator (3) or an intruder.
fn who(tenant: usize, other: Option<usize>) -> usize {
    other.unwrap_or(tenant)
}

fn call() -> impl Strategy<Value = Call> {
    let intruder = proptest::option::weighted(0.3, 0..4usize);
    prop_oneof![
        1 => (0..3usize, proptest::collection::vec(0..3usize, 0..3))
            .prop_map(|(tenant, prefixes)| Call::PutTenant { tenant, prefixes }),
        2 => (0..IFACES, 0..3usize).prop_map(|(iface, tenant)| Call::Register { iface, tenant }),
        3 => (0..3usize, intruder.clone(), 0..4usize, any::<bool>()).prop_map(
            |(tenant, other, collector, gre)| Call::Service { caller: who(tenant, other), tenant, collector, gre }
        ),
        4 => (0..3usize, intruder.clone(), 0..8usize, 0..3u8, 0..IFACES + 1, 0..3u8).prop_map(
            |(tenant, other, service, source, n, dir)| {
                Call::Flow { caller: who(tenant, other), tenant, service, source, n, dir }
            }
        ),
        1 => (0..4usize, 0..8usize).prop_map(|(caller, nth)| Call::DeleteFlow { caller, nth }),
        1 => (0..4usize, 0..8usize).prop_map(|(caller, nth)| Call::DeleteService { caller, nth }),
    ]
}

/// Caller 3 is the operator; 0..3 are the tenants.
fn caller(n: usize) -> Caller {
    match TENANTS.get(n) {
        Some(t) => Caller { name: format!("{t}-token"), role: Role::Tenant(t.to_string()) },
        None => Caller::operator("ops"),
    }
}

fn apply(nb: &mut Northbound, topo: &Topology, c: &Call) {
    let said = |i: &str| {
        topo.interfaces(&TopoSource::IfaceId(i.to_string()))
            .into_iter()
            .find_map(|x| x.tenant().map(str::to_string))
    };
    let reserved = Reserved::default();
    let who = caller(match c {
        Call::PutTenant { .. } | Call::Register { .. } => 3,
        Call::Service { caller, .. }
        | Call::Flow { caller, .. }
        | Call::DeleteFlow { caller, .. }
        | Call::DeleteService { caller, .. } => *caller,
    });
    let cx = Context {
        nb,
        quota: Quota::default(),
        caller: &who,
        now_ms: 0,
        iface_tenant: &said,
        reserved: &reserved,
    };
    let services: Vec<u64> = nb.taps.services().map(|s| s.id.0).collect();
    let flows: Vec<u64> = nb.taps.flows().map(|f| f.id.0).collect();
    let outcome = match c {
        Call::PutTenant { tenant, prefixes } => {
            let p: Vec<&str> = prefixes.iter().map(|i| PREFIXES[*i]).collect();
            cx.put_tenant(TENANTS[*tenant], &json!({ "allowed_collectors": p }))
        }
        Call::Register { iface, tenant } => {
            cx.put_owner(&format!("port-{iface}"), &json!({ "tenant": TENANTS[*tenant] }))
        }
        Call::Service { tenant, collector, gre, .. } => cx.create_service(&json!({
            "name": format!("s{collector}{gre}"), "tenant": TENANTS[*tenant],
            "encap": if *gre { "gre" } else { "vxlan" }, "remote_ip": COLLECTORS[*collector],
        })),
        Call::Flow { tenant, service, source, n, dir, .. } => {
            let source = match source {
                0 => json!({ "iface_id": format!("port-{n}") }),
                1 => json!({ "vm": format!("vm-{}", n / 2) }),
                _ => json!({ "selector": { "app": "payments" } }),
            };
            let direction = ["IN", "OUT", "BOTH"][*dir as usize];
            cx.create_flow(&json!({
                "name": format!("f{service}{n}{dir}"), "tenant": TENANTS[*tenant],
                // Mostly an existing service (any tenant's), sometimes one that does not exist.
                "tap_service": services.get(*service % services.len().max(1)).copied().unwrap_or(999),
                "source": source, "direction": direction,
            }))
        }
        Call::DeleteFlow { nth, .. } => match flows.get(*nth) {
            Some(id) => cx.delete_flow(TapFlowId(*id)),
            None => return,
        },
        Call::DeleteService { nth, .. } => match services.get(*nth) {
            Some(id) => cx.delete_service(TapServiceId(*id)),
            None => return,
        },
    };
    if let Outcome::Write(w) = outcome {
        nb.edit(w.edit).expect("a write the rules decided applies to the state they read");
    }
}

/// Every copy the bridge makes of `packet`: (key, collector).
fn copies(flows: &[crate::policy::DesiredFlow], packet: &Packet) -> Vec<(u64, Ipv4Addr)> {
    let t = Pipeline::new(flows).run(packet);
    assert!(t.unmodelled.is_empty(), "{:?}", t.unmodelled);
    t.outputs
        .iter()
        .filter_map(|o| match o {
            Output::Port { packet, .. } => Some((packet.tun_id()?, packet.tun_dst()?)),
            Output::Normal(_) => None,
        })
        .collect()
}

fn check(nb: &Northbound, topo: &Topology) -> Result<(), TestCaseError> {
    let plans = desired(topo, &nb.taps, &Activity::new(), None, crate::policy::view::Mode::Owner);
    let Some(plan) = plans.get(&Dpid(1)) else { return Ok(()) };
    let by_key: BTreeMap<u64, &super::super::model::TapService> =
        nb.taps.services().map(|s| (u64::from(s.key), s)).collect();
    for n in 0..IFACES {
        let iface = format!("port-{n}");
        let owner = nb.taps.tenant_of(Some(&iface), Some(TENANTS[n as usize % 3]));
        // What the VM sends, and what is delivered to it.
        let sent = Packet::new([
            OxmField::InPort(PortNo(n + 1)),
            OxmField::EthSrc(mac(n), None),
            OxmField::EthDst(MacAddr([0x02, 0xff, 0, 0, 0, 1]), None),
            OxmField::EthType(0x0806),
        ]);
        let delivered = Packet::new([
            OxmField::InPort(UPLINK),
            OxmField::EthSrc(MacAddr([0x02, 0xff, 0, 0, 0, 1]), None),
            OxmField::EthDst(mac(n), None),
            OxmField::EthType(0x0806),
        ]);
        for p in [&sent, &delivered] {
            for (key, dst) in copies(&plan.plan.flows, p) {
                let svc = by_key.get(&key);
                prop_assert!(
                    svc.is_some(),
                    "a copy of {iface} with key {key}, which no service has"
                );
                let svc = svc.copied().ok_or_else(|| TestCaseError::fail("no service"))?;
                prop_assert_eq!(
                    Some(svc.tenant.as_str()),
                    owner,
                    "a copy of {} reached {}",
                    iface,
                    svc.name
                );
                prop_assert_eq!(dst.to_string(), svc.collector.to_string());
                let allowed = nb
                    .tenants
                    .get(&svc.tenant)
                    .is_some_and(|t| svc.collector.remote_ip().is_some_and(|ip| t.allows(ip)));
                prop_assert!(
                    allowed,
                    "a copy of {} went to {}, outside {}'s allow-list",
                    iface,
                    dst,
                    svc.tenant
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_call_sequence_copies_across_tenants_or_outside_the_allow_list(
        prelude in proptest::collection::vec(proptest::collection::vec(0..3usize, 1..3), 3),
        calls in proptest::collection::vec(call(), 1..40)
    ) {
        let topo = topology();
        let mut nb = Northbound::default();
        // The operator first gives every tenant an allow-list; the calls may change it.
        let setup = prelude.into_iter().enumerate().map(|(tenant, prefixes)| Call::PutTenant { tenant, prefixes });
        for c in setup.collect::<Vec<_>>().iter().chain(&calls) {
            apply(&mut nb, &topo, c);
            check(&nb, &topo)?;
        }
    }
}

#[test]
fn a_tenant_that_set_up_a_tap_gets_copies() {
    // The property above must not hold vacuously: the same machinery does copy when allowed.
    let topo = topology();
    let mut nb = Northbound::default();
    for c in [
        Call::PutTenant { tenant: 0, prefixes: vec![0] },
        Call::Service { caller: 0, tenant: 0, collector: 0, gre: false },
        Call::Flow { caller: 0, tenant: 0, service: 0, source: 0, n: 0, dir: 2 },
    ] {
        apply(&mut nb, &topo, &c);
    }
    assert_eq!(nb.taps.flows().count(), 1, "{:?}", nb.taps);
    let plans = desired(&topo, &nb.taps, &Activity::new(), None, crate::policy::view::Mode::Owner);
    let sent = Packet::new([
        OxmField::InPort(PortNo(1)),
        OxmField::EthSrc(mac(0), None),
        OxmField::EthDst(MacAddr([0x02, 0xff, 0, 0, 0, 1]), None),
        OxmField::EthType(0x0806),
    ]);
    let got = copies(&plans[&Dpid(1)].plan.flows, &sent);
    assert_eq!(got.len(), 1, "{got:?}");
    // Narrowing the allow-list stops the copies at once.
    apply(&mut nb, &topo, &Call::PutTenant { tenant: 0, prefixes: vec![2] });
    let plans = desired(&topo, &nb.taps, &Activity::new(), None, crate::policy::view::Mode::Owner);
    assert!(copies(&plans[&Dpid(1)].plan.flows, &sent).is_empty());
}
