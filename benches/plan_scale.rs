//! The policy's share of a replan at the full scale, in-process: 1000 bridges of 50 VM
//! interfaces each (periscope's two tunnel ports on every bridge), 20 tenants with one tap
//! service each, and 10,000 tap flows naming one interface each (one in five interfaces).
//!
//! Measures [`desired`] for every bridge (what the core's full recompute did once a second),
//! for a tenth of them (one part of the sweep that replaced it), and for one bridge (what a
//! migration's hold asks for at each of its steps). `cargo bench --bench plan_scale`;
//! `PERISCOPE_BENCH_ROUNDS` (default 5) sets how many times each is run.

use std::collections::BTreeSet;
use std::time::Instant;

use periscope::northbound::model::{
    Collector, Direction, Encap, Filter, Source, TapFlowSpec, TapServiceSpec,
};
use periscope::northbound::store::Taps;
use periscope::policy::desired::{desired, Activity};
use periscope::policy::tunnels::OWNED_KEY;
use periscope::policy::view::Mode;
use periscope_codec::openflow::{Dpid, PortNo};
use periscope_topology::change::HypervisorSnapshot;
use periscope_topology::rows::{BridgeRow, InterfaceRow, PortRow};
use periscope_topology::{Change, HypervisorId, Topology, TopologyConfig, Uuid};

const BRIDGES: u64 = 1000;
const PER_BRIDGE: u64 = 50;
const TENANTS: u64 = 20;
const TAPPED_EVERY: u64 = 5;

fn interface(uuid: String, name: String, ofport: u32) -> InterfaceRow {
    InterfaceRow {
        uuid: Uuid::from(uuid),
        name,
        ofport: Some(PortNo(ofport)),
        ..Default::default()
    }
}

fn topology() -> Topology {
    let mut t = Topology::new(TopologyConfig::default());
    let changes: Vec<Change> = (0..BRIDGES)
        .map(|h| {
            let mut snapshot = HypervisorSnapshot::default();
            let mut bridge = BridgeRow {
                uuid: Uuid::from(format!("00000000-0000-4000-8000-{h:012x}")),
                name: "br-int".into(),
                datapath_id: Some(Dpid(h + 1)),
                ports: BTreeSet::new(),
            };
            let mut add = |i: InterfaceRow| {
                let p = PortRow {
                    uuid: Uuid::from(format!("{}-p", i.uuid)),
                    name: i.name.clone(),
                    interfaces: [i.uuid.clone()].into(),
                };
                bridge.ports.insert(p.uuid.clone());
                snapshot.ports.push(p);
                snapshot.interfaces.push(i);
            };
            for (kind, ofport) in [("vxlan", 1000), ("gre", 1001)] {
                let mut i = interface(format!("{h}-{kind}"), format!("psc-{kind}"), ofport);
                i.kind = kind.into();
                i.external_ids.insert(OWNED_KEY.into(), "true".into());
                i.options.insert("remote_ip".into(), "flow".into());
                i.options.insert("key".into(), "flow".into());
                add(i);
            }
            for v in 0..PER_BRIDGE {
                let n = h * PER_BRIDGE + v;
                let mut i = interface(format!("{h}-vif{v}"), format!("tap{v}"), v as u32 + 1);
                for (k, val) in [
                    ("iface-id", format!("vif-{n}")),
                    (
                        "attached-mac",
                        format!(
                            "fa:16:3e:{:02x}:{:02x}:{:02x}",
                            n >> 16,
                            (n >> 8) & 0xff,
                            n & 0xff
                        ),
                    ),
                    ("vm-uuid", format!("vm-{n}")),
                    ("tenant-id", format!("tenant-{}", n % TENANTS)),
                ] {
                    i.external_ids.insert(k.into(), val.into());
                }
                add(i);
            }
            snapshot.bridges.push(bridge);
            let hypervisor = HypervisorId::from(format!("hv{h}"));
            Change::HypervisorReplaced { hypervisor, snapshot }
        })
        .collect();
    t.apply_batch(changes);
    t
}

fn taps() -> Taps {
    let mut taps = Taps::new();
    let services: Vec<_> = (0..TENANTS)
        .map(|t| {
            taps.create_service(TapServiceSpec {
                name: format!("collector-{t}"),
                tenant: format!("tenant-{t}"),
                encap: if t % 2 == 0 { Encap::Vxlan } else { Encap::Gre },
                collector: Collector::Remote(
                    format!("192.0.2.{}", t + 1).parse().expect("an address"),
                ),
                key: None,
                snaplen: None,
            })
            .expect("a tap service")
            .id
        })
        .collect();
    for n in (0..BRIDGES * PER_BRIDGE).step_by(TAPPED_EVERY as usize) {
        let t = n % TENANTS;
        taps.create_flow(TapFlowSpec {
            name: format!("tap-{n}"),
            tenant: format!("tenant-{t}"),
            tap_service: services[t as usize],
            source: Source::IfaceId(format!("vif-{n}")),
            direction: Direction::Both,
            filter: Filter::default(),
        })
        .expect("a tap flow");
    }
    taps
}

fn main() {
    let rounds: usize =
        std::env::var("PERISCOPE_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let started = Instant::now();
    let (topology, taps) = (topology(), taps());
    println!(
        "setup: {} bridges, {} interfaces, {} tap flows in {:.1} s",
        BRIDGES,
        BRIDGES * PER_BRIDGE,
        taps.flows().count(),
        started.elapsed().as_secs_f64()
    );
    let active = Activity::new();
    let tenth: BTreeSet<Dpid> = (1..=BRIDGES / 10).map(Dpid).collect();
    let one: BTreeSet<Dpid> = [Dpid(BRIDGES / 2)].into();
    for (what, only) in
        [("every bridge", None), ("a tenth (100)", Some(&tenth)), ("one bridge", Some(&one))]
    {
        let mut ms = Vec::new();
        let mut flows = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let plans = desired(&topology, &taps, &active, only, Mode::Owner);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            flows = plans.values().map(|d| d.plan.flows.len()).sum();
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "{what:>14}: median {:8.3} ms, min {:8.3} ms ({flows} flows)",
            ms[ms.len() / 2],
            ms[0]
        );
    }
}
