//! `periscope collector --pcap-dir` as the lab's collector: a hypervisor copies VM1's pings
//! (by hand-installed `clone` flows) into VXLAN key 100 and GRE key 200, or into GRE and ERSPAN
//! Type II and III; the collector writes one pcap file per key, `tcpdump -r` reads them, and the
//! echo counts match the pings. ERSPAN copies also carry their index, direction and hardware ID.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use periscope::collector::pcap;
use periscope::lab::{
    Capture, Collector, EchoKind, Encap, ErspanDirection, ErspanMeta, Hypervisor,
    HypervisorOptions, Lab, TunnelKey, TunnelKind, TunnelRemote, Vm, VmOptions,
};

const PINGS: u32 = 8;

/// `tcpdump -nn -r <file> <filter>`, one line per packet.
fn tcpdump(file: &Path, filter: &str) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(file)
        .arg(filter)
        .output()
        .expect("tcpdump is installed (.ci/setup)");
    assert!(
        out.status.success(),
        "tcpdump -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Has the lab run `periscope collector` with pcap files in `<lab dir>/col1-pcap`, which it
/// returns.
fn collector_with_pcap_files(lab: &Lab) -> PathBuf {
    let pcap_dir = lab.dir().join("col1-pcap");
    lab.set_collector_command(
        env!("CARGO_BIN_EXE_periscope"),
        ["collector", "--listen", "0.0.0.0", "--stdin-stop", "--ready", "--summary-every", "0"]
            .into_iter()
            .map(Into::into)
            .chain(["--pcap-dir".into(), pcap_dir.clone().into_os_string()])
            .collect(),
    );
    pcap_dir
}

/// The names of the files in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("pcap dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// A secure hypervisor with two VMs and a flow-based GRE port, and a collector writing pcap
/// files to `pcap_dir`.
struct Setup {
    pcap_dir: PathBuf,
    hv: Hypervisor,
    vm1: Vm,
    vm2: Vm,
    col: Collector,
    /// The GRE port's OpenFlow port number.
    gre: u32,
}

fn setup(lab: &Lab) -> Setup {
    let pcap_dir = collector_with_pcap_files(lab);
    let hv = lab.add_hypervisor("hv1", HypervisorOptions::secure()).expect("hypervisor");
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1")).expect("vm1");
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2")).expect("vm2");
    let col = lab.add_collector("col1").expect("collector");
    let gre = hv
        .add_tunnel_port("gre-m", TunnelKind::Gre, TunnelRemote::Flow, TunnelKey::Flow)
        .expect("gre port");
    Setup { pcap_dir, hv, vm1, vm2, col, gre }
}

/// Installs `copies` (the actions for what vm1 sends, then for what it receives) before NORMAL,
/// pings vm2 from vm1, waits until every reply is copied under each of `keys`, and stops the
/// collector (which flushes its pcap files).
fn ping_copied(
    hv: &Hypervisor,
    copies: [&str; 2],
    vm1: &Vm,
    vm2: &Vm,
    col: &mut Collector,
    keys: &[(Encap, u32)],
) -> Capture {
    let p1 = vm1.ofport().expect("vm1 ofport");
    for flow in [
        "table=0,priority=0,actions=NORMAL".to_string(),
        format!("table=0,priority=100,in_port={p1},actions={}", copies[0]),
        format!("table=0,priority=100,dl_dst={},actions={}", vm1.mac(), copies[1]),
    ] {
        hv.ofctl(&["add-flow", "br-int", &flow]).expect("add-flow");
    }
    let r = vm1.ping(vm2.ip(), PINGS, Duration::from_millis(20)).expect("ping");
    assert_eq!((r.sent, r.received), (PINGS, PINGS), "vm1 -> vm2: {r:?}");
    col.wait_for(Duration::from_secs(3), |cap| {
        keys.iter()
            .all(|(e, k)| cap.echo_seqs(*e, *k, EchoKind::Reply, vm2.ip()).len() == PINGS as usize)
    })
    .expect("capture");
    let cap = col.stop().expect("stop collector");
    eprintln!("frames per key: {:?}", cap.count_by_key());
    cap
}

#[test]
fn pcap_files_per_key_hold_the_mirrored_pings() {
    let lab = Lab::new().expect("lab");
    let Setup { pcap_dir, hv, vm1, vm2, mut col, gre } = setup(&lab);
    let vx = hv
        .add_tunnel_port("vxlan-m", TunnelKind::Vxlan, TunnelRemote::Flow, TunnelKey::Flow)
        .expect("vxlan port");
    let c = col.ip();
    let copies = format!(
        "clone(set_field:100->tun_id,set_field:{c}->tun_dst,output:{vx}),\
         clone(set_field:200->tun_id,set_field:{c}->tun_dst,output:{gre}),NORMAL"
    );
    let keys = [(Encap::Vxlan, 100), (Encap::Gre, 200)];
    let cap = ping_copied(&hv, [&copies, &copies], &vm1, &vm2, &mut col, &keys);

    assert_eq!(file_names(&pcap_dir), ["gre-200.pcap", "vxlan-100.pcap"]);
    check_pcap_files(&pcap_dir, &cap, &keys, (vm1.ip(), vm2.ip()));
}

/// ERSPAN next to GRE on one bridge, as Open vSwitch sends it: a flow-based `erspan` port
/// (`local_ip=flow` too, or it would clash with the flow-based GRE port) copies VM1's traffic as
/// version 1 (session 7, index 5) and version 2 (session 7, hardware ID 3; direction ingress for
/// what VM1 sends, egress for what it receives), and as GRE key 200. The collector splits them
/// into three pcap files of the same mirrored frames, and each JSON line has its metadata.
#[test]
fn erspan_copies_from_open_vswitch_are_split_by_version_with_their_metadata() {
    let lab = Lab::new().expect("lab");
    let Setup { pcap_dir, hv, vm1, vm2, mut col, gre } = setup(&lab);
    hv.vsctl(&[
        "add-port",
        "br-int",
        "erspan-m",
        "--",
        "set",
        "Interface",
        "erspan-m",
        "type=erspan",
        "options:remote_ip=flow",
        "options:key=flow",
        "options:erspan_ver=flow",
        "options:local_ip=flow",
    ])
    .expect("erspan port");
    let erspan = hv.ofport("erspan-m").expect("erspan ofport");
    let c = col.ip();
    let copies = |dir: u8| {
        format!(
            "clone(set_field:200->tun_id,set_field:{c}->tun_dst,output:{gre}),\
             clone(set_field:7->tun_id,set_field:{c}->tun_dst,set_field:1->tun_erspan_ver,\
             set_field:5->tun_erspan_idx,output:{erspan}),\
             clone(set_field:7->tun_id,set_field:{c}->tun_dst,set_field:2->tun_erspan_ver,\
             set_field:{dir}->tun_erspan_dir,set_field:3->tun_erspan_hwid,output:{erspan}),NORMAL"
        )
    };
    let keys = [(Encap::Gre, 200), (Encap::ErspanV1, 7), (Encap::ErspanV2, 7)];
    let cap = ping_copied(&hv, [&copies(0), &copies(1)], &vm1, &vm2, &mut col, &keys);
    assert_eq!(cap.foreign_keys(&keys), []);
    assert_eq!(file_names(&pcap_dir), ["erspan_v1-7.pcap", "erspan_v2-7.pcap", "gre-200.pcap"]);
    check_pcap_files(&pcap_dir, &cap, &keys, (vm1.ip(), vm2.ip()));

    // The metadata the flows set, on every copy.
    let hv_ip = hv.underlay_ip();
    assert!(cap.frames.iter().all(|f| f.outer_src == hv_ip), "{:?}", cap.frames);
    assert!(cap.under(Encap::Gre, 200).all(|f| f.erspan.is_none()));
    let v1: Vec<_> = cap.under(Encap::ErspanV1, 7).collect();
    assert!(v1.iter().all(|f| f.erspan == Some(ErspanMeta::V1 { index: 5 })), "{v1:?}");
    let v2 = |direction| Some(ErspanMeta::V2 { direction, hw_id: 3 });
    for f in cap.under(Encap::ErspanV2, 7) {
        let want = if f.inner_dst.eq_ignore_ascii_case(vm1.mac()) {
            v2(ErspanDirection::Egress)
        } else {
            v2(ErspanDirection::Ingress)
        };
        assert_eq!(f.erspan, want, "{f:?}");
    }
    let echoes = |kind, direction| {
        cap.under(Encap::ErspanV2, 7)
            .filter(|f| f.icmp.is_some_and(|e| e.kind == kind) && f.erspan == v2(direction))
            .count()
    };
    assert_eq!(echoes(EchoKind::Request, ErspanDirection::Ingress), PINGS as usize);
    assert_eq!(echoes(EchoKind::Reply, ErspanDirection::Egress), PINGS as usize);

    // Each encapsulation delivered the same mirrored echoes, byte for byte.
    let echo_frames = |name: &str| {
        let bytes = std::fs::read(pcap_dir.join(name)).expect("pcap file");
        let parsed = pcap::parse(&bytes).expect("a pcap file");
        let mut frames: Vec<Vec<u8>> = parsed
            .records
            .iter()
            .filter(|r| r.data.get(12..14) == Some(&[0x08, 0x00]) && r.data.get(23) == Some(&1))
            .map(|r| r.data.to_vec())
            .collect();
        frames.sort();
        frames
    };
    let gre_echoes = echo_frames("gre-200.pcap");
    assert_eq!(gre_echoes.len(), 2 * PINGS as usize);
    assert_eq!(echo_frames("erspan_v1-7.pcap"), gre_echoes);
    assert_eq!(echo_frames("erspan_v2-7.pcap"), gre_echoes);
}

/// For each key: every frame the collector saw under it is in its pcap file, in the same order,
/// and `tcpdump -r` counts one echo request and one reply per ping in it.
fn check_pcap_files(
    pcap_dir: &Path,
    cap: &Capture,
    keys: &[(Encap, u32)],
    (a, b): (Ipv4Addr, Ipv4Addr),
) {
    for &(encap, key) in keys {
        let file = pcap_dir.join(format!("{encap}-{key}.pcap"));
        let bytes = std::fs::read(&file).expect("pcap file");
        let parsed = pcap::parse(&bytes).expect("a pcap file");
        assert_eq!(parsed.linktype, pcap::LINKTYPE_ETHERNET);
        let lens: Vec<usize> = parsed.records.iter().map(|r| r.data.len()).collect();
        let want: Vec<usize> = cap.under(encap, key).map(|f| f.len).collect();
        assert_eq!(lens, want, "{}", file.display());

        let all = tcpdump(&file, "");
        assert_eq!(all.len(), want.len(), "tcpdump reads every record of {}", file.display());
        let requests = tcpdump(&file, "icmp[icmptype] == icmp-echo");
        let replies = tcpdump(&file, "icmp[icmptype] == icmp-echoreply");
        assert_eq!(requests.len(), PINGS as usize, "{encap}/{key} requests:\n{}", all.join("\n"));
        assert_eq!(replies.len(), PINGS as usize, "{encap}/{key} replies:\n{}", all.join("\n"));
        assert!(requests.iter().all(|l| l.contains(&format!("{a} > {b}: ICMP echo request"))));
        assert!(replies.iter().all(|l| l.contains(&format!("{b} > {a}: ICMP echo reply"))));
    }
}
