//! Times interface upserts: `cargo run --release -p periscope-topology --example upserts [n]`.

use std::time::Instant;

use periscope_codec::openflow::{Dpid, PortNo};
use periscope_topology::{BridgeRow, Change, HypervisorId, InterfaceRow, PortRow, Topology, Uuid};

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let h = HypervisorId::from("hv");
    let mut t = Topology::default();
    let mut bridge = BridgeRow {
        uuid: "br".into(),
        name: "br-int".into(),
        datapath_id: Some(Dpid(1)),
        ..Default::default()
    };
    t.apply(Change::BridgeUpserted { hypervisor: h.clone(), row: bridge.clone() });
    t.apply(Change::SwitchConnected { dpid: Dpid(1) });
    let rows: Vec<(InterfaceRow, PortRow)> = (0..n)
        .map(|i| {
            let mut row = InterfaceRow {
                uuid: Uuid::from(format!("i{i}")),
                name: format!("tap{i}"),
                ofport: Some(PortNo(i + 1)),
                ..Default::default()
            };
            row.external_ids.insert("iface-id".into(), format!("port-{i}").into());
            row.external_ids.insert("tenant-id".into(), "t".into());
            let port = PortRow {
                uuid: Uuid::from(format!("p{i}")),
                name: row.name.clone(),
                interfaces: [row.uuid.clone()].into(),
            };
            (row, port)
        })
        .collect();
    let started = Instant::now();
    for (row, port) in &rows {
        t.apply_batch([
            Change::InterfaceUpserted { hypervisor: h.clone(), row: row.clone() },
            Change::PortUpserted { hypervisor: h.clone(), row: port.clone() },
        ]);
    }
    println!("{n} unattached interface+port upserts: {:?}", started.elapsed());
    let started = Instant::now();
    bridge.ports = rows.iter().map(|(_, p)| p.uuid.clone()).collect();
    let events = t.apply(Change::BridgeUpserted { hypervisor: h.clone(), row: bridge });
    println!(
        "one bridge upsert attaching {n} ports ({} events): {:?}",
        events.len(),
        started.elapsed()
    );
    let started = Instant::now();
    for (row, _) in &rows {
        let mut row = row.clone();
        row.ofport = Some(PortNo(row.ofport.unwrap().0 + n));
        t.apply(Change::InterfaceUpserted { hypervisor: h.clone(), row });
    }
    println!("{n} attached interface upserts (ofport change): {:?}", started.elapsed());
    let started = Instant::now();
    t.check_invariants().unwrap();
    println!("check_invariants: {:?}", started.elapsed());
}
