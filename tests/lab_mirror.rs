//! The mirror data path the controller will program, done by hand with `ovs-ofctl`: a secure
//! `br-int` forwards normally and copies VM1's traffic (both directions) to a collector through
//! flow-based VXLAN (key 100) and GRE (key 200) tunnel ports.

use std::time::Duration;

use periscope::lab::{
    Capture, EchoKind, Encap, Frame, HypervisorOptions, Lab, TunnelKey, TunnelKind, TunnelRemote,
    VmOptions,
};

const PINGS: u16 = 10;

/// How the copies are made; every variant must give the same result at the collector.
#[derive(Debug, Clone, Copy)]
enum Copies {
    /// `clone(...)` (Nicira NXAST_CLONE) per copy, then `NORMAL`.
    Clone,
    /// An OpenFlow 1.3 group of type `all`, one bucket per copy, then `NORMAL`.
    GroupAll,
    /// Plain sequential actions: set tunnel metadata, output, then `NORMAL`.
    Sequential,
}

const KEYS: [(Encap, u32); 2] = [(Encap::Vxlan, 100), (Encap::Gre, 200)];

#[test]
fn secure_bridge_mirrors_with_clone_actions() {
    let cap = mirror(Copies::Clone);
    assert_eq!(cap.foreign_keys(&KEYS), vec![]);
}

#[test]
fn secure_bridge_mirrors_with_an_all_group() {
    let cap = mirror(Copies::GroupAll);
    assert_eq!(cap.foreign_keys(&KEYS), vec![]);
}

/// Without `clone` the tunnel metadata set for the last copy is still there when `NORMAL` floods
/// a broadcast, and `NORMAL` floods to the flow-based tunnel ports too: extra copies leak out
/// under the wrong key. This is why the controller must isolate copies with `clone` or a group.
#[test]
fn sequential_actions_leak_flooded_broadcasts_into_the_tunnel_ports() {
    let cap = mirror(Copies::Sequential);
    let leaked: Vec<_> = cap.under(Encap::Vxlan, 200).collect();
    assert!(
        !leaked.is_empty(),
        "expected flooded copies under vxlan/200: {:?}",
        cap.count_by_key()
    );
    // Flooded means broadcast or multicast (ARP, IPv6 neighbour discovery, MLD): group bit set.
    let flooded =
        |f: &&Frame| u8::from_str_radix(&f.inner_dst[..2], 16).map(|b| b & 1 == 1).unwrap_or(false);
    assert!(leaked.iter().all(flooded), "{leaked:?}");
}

/// Builds hv1 (secure br-int) with vm1..vm3 and a collector, installs the mirror of vm1 made as
/// `variant`, pings vm1 <-> vm2 and vm2 <-> vm3, checks what every variant must give, and returns
/// the capture for the variant-specific checks.
fn mirror(variant: Copies) -> Capture {
    let lab = Lab::new().expect("lab");
    lab.set_collector_command(env!("CARGO_BIN_EXE_periscope-lab-collector"), Vec::new());
    let hv = lab.add_hypervisor("hv1", HypervisorOptions::secure()).expect("hypervisor");
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1")).expect("vm1");
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2")).expect("vm2");
    let vm3 = lab.add_vm(&hv, VmOptions::new("vm3")).expect("vm3");
    let mut col = lab.add_collector("col1").expect("collector");
    let vx = hv
        .add_tunnel_port("vxlan-m", TunnelKind::Vxlan, TunnelRemote::Flow, TunnelKey::Flow)
        .expect("vxlan port");
    let gre = hv
        .add_tunnel_port("gre-m", TunnelKind::Gre, TunnelRemote::Flow, TunnelKey::Flow)
        .expect("gre port");
    let p1 = vm1.ofport().expect("vm1 ofport");

    let c = col.ip();
    let copies = match variant {
        Copies::Clone => format!(
            "clone(set_field:100->tun_id,set_field:{c}->tun_dst,output:{vx}),\
             clone(set_field:200->tun_id,set_field:{c}->tun_dst,output:{gre}),NORMAL"
        ),
        Copies::GroupAll => {
            let group = format!(
                "group_id=1,type=all,\
                 bucket=set_field:100->tun_id,set_field:{c}->tun_dst,output:{vx},\
                 bucket=set_field:200->tun_id,set_field:{c}->tun_dst,output:{gre}"
            );
            hv.ofctl(&["add-group", "br-int", &group]).expect("add-group");
            "group:1,NORMAL".to_string()
        }
        Copies::Sequential => format!(
            "set_field:100->tun_id,set_field:{c}->tun_dst,output:{vx},\
             set_field:200->tun_id,output:{gre},NORMAL"
        ),
    };
    for flow in [
        "table=0,priority=0,actions=NORMAL".to_string(),
        format!("table=0,priority=100,in_port={p1},actions={copies}"),
        format!("table=0,priority=100,dl_dst={},actions={copies}", vm1.mac()),
    ] {
        hv.ofctl(&["add-flow", "br-int", &flow]).expect("add-flow");
    }
    eprintln!("{}", hv.ofctl(&["dump-flows", "br-int"]).expect("dump-flows"));

    let r = vm1.ping(vm2.ip(), PINGS.into(), Duration::from_millis(20)).expect("ping");
    assert_eq!((r.sent, r.received), (PINGS.into(), PINGS.into()), "vm1 -> vm2: {r:?}");
    let r = vm2.ping(vm3.ip(), PINGS.into(), Duration::from_millis(20)).expect("ping");
    assert_eq!((r.sent, r.received), (PINGS.into(), PINGS.into()), "vm2 -> vm3: {r:?}");

    let all: Vec<u16> = (1..=PINGS).collect();
    let cap = col
        .wait_for(Duration::from_secs(3), |c| {
            KEYS.iter().all(|(e, k)| {
                c.echo_seqs(*e, *k, EchoKind::Reply, vm2.ip()).len() == usize::from(PINGS)
            })
        })
        .expect("capture");
    drop(cap);
    // Let late strays arrive before judging absence.
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.stop().expect("stop collector");
    eprintln!("{variant:?}: frames per key: {:?}", cap.count_by_key());
    for (encap, key) in KEYS {
        assert_eq!(
            cap.echo_seqs(encap, key, EchoKind::Request, vm1.ip()),
            all,
            "{encap:?}/{key}: vm1's echo requests"
        );
        assert_eq!(
            cap.echo_seqs(encap, key, EchoKind::Reply, vm2.ip()),
            all,
            "{encap:?}/{key}: vm2's replies to vm1"
        );
    }
    assert!(cap.duplicates().is_empty(), "duplicates: {:?}", cap.duplicates());
    for f in &cap.frames {
        assert!(
            f.inner_src == vm1.mac() || f.inner_dst == vm1.mac(),
            "a frame not to or from vm1 was mirrored: {f:?}"
        );
        assert_eq!(f.outer_src, hv.underlay_ip());
    }
    assert!(
        !cap.frames.iter().any(|f| f.ip_src == Some(vm3.ip()) || f.ip_dst == Some(vm3.ip())),
        "vm2 <-> vm3 traffic must not be mirrored"
    );
    cap
}
