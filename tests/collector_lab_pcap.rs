//! `periscope collector --pcap-dir` as the lab's collector: a hypervisor copies VM1's pings
//! (by hand-installed `clone` flows) into VXLAN key 100 and GRE key 200; the collector writes
//! one pcap file per key, `tcpdump -r` reads them, and the echo counts match the pings.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use periscope::collector::pcap;
use periscope::lab::{
    EchoKind, Encap, HypervisorOptions, Lab, TunnelKey, TunnelKind, TunnelRemote, VmOptions,
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

#[test]
fn pcap_files_per_key_hold_the_mirrored_pings() {
    let lab = Lab::new().expect("lab");
    let pcap_dir = lab.dir().join("col1-pcap");
    lab.set_collector_command(
        env!("CARGO_BIN_EXE_periscope"),
        ["collector", "--listen", "0.0.0.0", "--stdin-stop", "--ready", "--summary-every", "0"]
            .into_iter()
            .map(Into::into)
            .chain(["--pcap-dir".into(), pcap_dir.clone().into_os_string()])
            .collect(),
    );
    let hv = lab.add_hypervisor("hv1", HypervisorOptions::secure()).expect("hypervisor");
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1")).expect("vm1");
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2")).expect("vm2");
    let mut col = lab.add_collector("col1").expect("collector");
    let vx = hv
        .add_tunnel_port("vxlan-m", TunnelKind::Vxlan, TunnelRemote::Flow, TunnelKey::Flow)
        .expect("vxlan port");
    let gre = hv
        .add_tunnel_port("gre-m", TunnelKind::Gre, TunnelRemote::Flow, TunnelKey::Flow)
        .expect("gre port");
    let p1 = vm1.ofport().expect("vm1 ofport");
    let c = col.ip();
    let copies = format!(
        "clone(set_field:100->tun_id,set_field:{c}->tun_dst,output:{vx}),\
         clone(set_field:200->tun_id,set_field:{c}->tun_dst,output:{gre}),NORMAL"
    );
    for flow in [
        "table=0,priority=0,actions=NORMAL".to_string(),
        format!("table=0,priority=100,in_port={p1},actions={copies}"),
        format!("table=0,priority=100,dl_dst={},actions={copies}", vm1.mac()),
    ] {
        hv.ofctl(&["add-flow", "br-int", &flow]).expect("add-flow");
    }

    let r = vm1.ping(vm2.ip(), PINGS, Duration::from_millis(20)).expect("ping");
    assert_eq!((r.sent, r.received), (PINGS, PINGS), "vm1 -> vm2: {r:?}");
    let keys = [(Encap::Vxlan, 100), (Encap::Gre, 200)];
    col.wait_for(Duration::from_secs(3), |cap| {
        keys.iter()
            .all(|(e, k)| cap.echo_seqs(*e, *k, EchoKind::Reply, vm2.ip()).len() == PINGS as usize)
    })
    .expect("capture");
    // The collector flushes its pcap files when it stops.
    let cap = col.stop().expect("stop collector");
    eprintln!("frames per key: {:?}", cap.count_by_key());

    let mut files: Vec<String> = std::fs::read_dir(&pcap_dir)
        .expect("pcap dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["gre-200.pcap", "vxlan-100.pcap"]);

    for (encap, key) in keys {
        let file = pcap_dir.join(format!("{encap}-{key}.pcap"));
        // Every frame the collector saw under this key is in the file, in the same order.
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
        let (a, b) = (vm1.ip(), vm2.ip());
        assert!(requests.iter().all(|l| l.contains(&format!("{a} > {b}: ICMP echo request"))));
        assert!(replies.iter().all(|l| l.contains(&format!("{b} > {a}: ICMP echo reply"))));
    }
}
