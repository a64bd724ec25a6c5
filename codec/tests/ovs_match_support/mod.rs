//! Shared by the `ovs_match_*` tests: finding `ovs-ofctl`, hex, temporary directories, the
//! flows both tests use, and how `ovs-ofctl ofp-print` lays out a flow mod.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Flows in `ovs-ofctl add-flow` syntax covering many match fields, the OpenFlow 1.3 actions
/// Open vSwitch implements, every instruction, and the Nicira actions of a mirror pipeline.
pub const FLOWS: &[&str] = &[
    "table=0,priority=100,tcp,in_port=1,dl_dst=fa:16:3e:00:00:01,nw_dst=10.0.0.1,tp_dst=443,\
     actions=set_field:100->tun_id,set_field:192.0.2.9->tun_dst,output:11,NORMAL",
    "priority=5,reg0=0x1/0xff,tun_id=0x64,tun_src=1.2.3.4,ct_state=+trk+new,ct_zone=5,\
     ct_mark=0x1/0x3,tun_flags=+oam,actions=resubmit(,2),resubmit(3,4),resubmit:5,\
     clone(output:1,output:2),output(port=1,max_len=128),load:0x1->NXM_NX_REG0[0..7],\
     load:0x5->NXM_NX_REG1[],move:NXM_NX_REG0[]->NXM_NX_REG2[],note:01.02.03,\
     set_field:1/3->reg0,goto_table:3",
    "cookie=0x5,table=3,idle_timeout=10,hard_timeout=20,priority=7,send_flow_rem,reset_counts,\
     arp,dl_vlan=10,arp_spa=10.0.0.0/8,arp_op=1,arp_sha=00:11:22:33:44:55,\
     arp_tha=00:11:22:00:00:00/ff:ff:ff:00:00:00,\
     actions=meter:1,write_actions(output:3),write_metadata:0x5/0xff,goto_table:5",
    "icmp6,ipv6_src=2001:db8::/64,ipv6_label=5,icmp_type=135,icmp_code=0,nd_target=2001:db8::2,\
     nd_sll=00:11:22:33:44:55,actions=dec_ttl,set_queue:3,group:4,push_vlan:0x8100,\
     set_field:4101->vlan_vid",
    "mpls,mpls_label=5,mpls_tc=3,mpls_bos=1,\
     actions=set_mpls_ttl(4),dec_mpls_ttl,pop_mpls:0x0800,CONTROLLER:128",
    "udp,metadata=0x5/0xff,in_port=LOCAL,nw_tos=8,nw_ecn=2,udp_src=5,udp_dst=7,pkt_mark=0x7,\
     actions=mod_nw_ttl:9,clear_actions",
    "tcp,nw_src=10.0.0.0/24,tcp_flags=+syn-ack,tp_src=0x100/0xff00,\
     actions=set_field:1.1.1.0/255.255.255.0->ip_src,\
     set_field:00:00:00:00:00:01/00:00:00:00:00:ff->eth_dst,set_field:5/0xf->tcp_dst,\
     set_field:0x5/0xff->metadata,set_field:5/0xff->xreg1,output:2",
    "sctp,sctp_src=5,sctp_dst=6,nw_ttl=5,dl_src=00:00:00:00:00:01/01:00:00:00:00:00,\
     actions=push_mpls:0x8847,output:IN_PORT,ALL,LOCAL,FLOOD",
    "dl_vlan=9,icmp,icmp_type=3,icmp_code=1,nw_dst=192.0.2.0/255.255.255.128,\
     reg15=0xffffffff,tun_dst=10.0.0.0/255.0.0.255,actions=set_field:+oam->tun_flags,pop_vlan",
    "in_port=1,actions=drop",
    "priority=0,actions=CONTROLLER:65535",
    "dl_vlan=5,dl_vlan_pcp=2,actions=note:aabbccddeeff0011,output:1",
    "table=1,priority=200,in_port=3,actions=clone(set_field:100->tun_id,\
     set_field:192.0.2.9->tun_dst,output:7),resubmit(,2)",
    "udp6,ipv6_src=2001:db8::1,udp_dst=4789,actions=output(port=5,max_len=256)",
    "ct_state=-new+est+trk,ct_mark=0x7,tcp,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],\
     move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG3[],load:0xabc->NXM_NX_TUN_ID[0..23],output:1",
    "table=2,priority=20,tun_id=0x64,tun_src=1.2.3.4,tun_flags=+oam,tun_erspan_ver=1,\
     tun_erspan_idx=0x12345,actions=set_field:2->tun_erspan_ver,\
     set_field:0x12345->tun_erspan_idx,set_field:1->tun_erspan_dir,\
     set_field:0x3f->tun_erspan_hwid,set_field:2/0x3->tun_erspan_ver,\
     set_field:0x5/0xff->tun_erspan_idx,move:NXOXM_ET_ERSPAN_IDX[0..7]->NXM_NX_REG1[0..7],\
     output:1",
    "tun_erspan_ver=2,tun_erspan_dir=1,tun_erspan_hwid=0x5,tun_dst=192.0.2.9,\
     actions=set_field:0->tun_erspan_dir,move:NXM_NX_REG2[0..5]->NXOXM_ET_ERSPAN_HWID[],output:2",
];

/// The `ovs-ofctl` binary. Fails loudly when it is missing: these tests exist to cross-check
/// against real Open vSwitch, and CI installs it (`openvswitch-common`).
pub fn ovs_ofctl() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        let p = dir.join("ovs-ofctl");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "ovs-ofctl not found on PATH: install Open vSwitch (Debian: openvswitch-common); \
         these tests cross-check the codec against it and must not pass without it"
    );
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `ovs-ofctl -O OpenFlow13 ofp-print HEX`: Open vSwitch's decoding of one message.
pub fn ofp_print(msg: &[u8]) -> String {
    let out = Command::new(ovs_ofctl())
        .args(["-O", "OpenFlow13", "ofp-print", &hex(msg)])
        .output()
        .expect("run ovs-ofctl ofp-print");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ovs-ofctl ofp-print failed on {}: {stdout}{}",
        hex(msg),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The match (with `priority=`) and the actions of a flow mod as `ofp-print` shows them:
/// `OFPT_FLOW_MOD (OF1.3) (xid=0x1): ADD table:3 priority=7,tcp cookie:0x5 actions=output:1`.
pub fn ovs_flow_mod_text(printed: &str) -> (String, String) {
    let line = printed.lines().next().unwrap_or_default();
    assert!(!printed.contains("***"), "ofp-print reported a decode problem: {printed}");
    let Some((_, rest)) = line.split_once("): ") else { panic!("not a flow mod: {printed}") };
    let Some((head, actions)) = rest.split_once("actions=") else {
        panic!("no actions in: {printed}")
    };
    let mut tokens = head.split_whitespace().skip(1).filter(|t| !t.starts_with("table:"));
    let m = tokens.next().filter(|t| t.contains('=')).unwrap_or_default();
    (m.to_string(), actions.trim().to_string())
}

/// What our printer gives for the same parts: `priority=N,` then the match (the priority
/// omitted when it is the default 32768, as Open vSwitch does).
pub fn our_flow_mod_text(fm: &periscope_codec::openflow::FlowMod) -> (String, String) {
    use periscope_codec::openflow::ofctl::InstructionList;
    let m = fm.matches.to_string();
    let head = match (fm.priority, m.is_empty()) {
        (0x8000, _) => m,
        (p, true) => format!("priority={p}"),
        (p, false) => format!("priority={p},{m}"),
    };
    (head, InstructionList(&fm.instructions).to_string())
}

/// A directory under the system temp dir, unique to this process and test, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `periscope-codec-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("periscope-codec-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
