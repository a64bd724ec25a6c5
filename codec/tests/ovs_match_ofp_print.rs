//! What we encode, Open vSwitch decodes: flow mods built by our text parser and by hand are fed
//! to `ovs-ofctl -O OpenFlow13 ofp-print`, which must decode them without error and print the
//! same match and actions our printer does.

mod ovs_match_support;

use std::net::Ipv4Addr;

use periscope_codec::openflow::action::Action;
use periscope_codec::openflow::instruction::Instruction;
use periscope_codec::openflow::ofctl::parse_flow;
use periscope_codec::openflow::oxm::{OxmField, OxmHeader, Subfield};
use periscope_codec::openflow::{FlowMod, Match, Message, OfpMessage, PortNo, TableId, Xid};

use ovs_match_support::{ofp_print, our_flow_mod_text, ovs_flow_mod_text, FLOWS};

fn encode(fm: &FlowMod) -> Vec<u8> {
    OfpMessage::new(Xid(1), Message::FlowMod(fm.clone().into())).to_vec()
}

#[test]
fn ovs_decodes_our_flow_mods_and_prints_what_we_print() {
    for text in FLOWS {
        let fm = parse_flow(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let printed = ofp_print(&encode(&fm));
        assert!(printed.starts_with("OFPT_FLOW_MOD (OF1.3)"), "{text}: {printed}");
        let ovs = ovs_flow_mod_text(&printed);
        assert_eq!(our_flow_mod_text(&fm), ovs, "flow {text}\novs printed {printed}");
    }
}

#[test]
fn ovs_decodes_a_hand_built_mirror_flow() {
    let tun_dst = OxmField::TunIpv4Dst(Ipv4Addr::new(192, 0, 2, 9), None);
    let reg0 = OxmHeader::by_name("NXM_NX_REG0").expect("reg0");
    let fm = FlowMod {
        table_id: TableId(4),
        priority: 300,
        matches: Match::new(vec![
            OxmField::InPort(PortNo(7)),
            OxmField::EthType(0x0800),
            OxmField::Ipv4Src(Ipv4Addr::new(10, 1, 0, 0), Some(Ipv4Addr::new(255, 255, 0, 0))),
            OxmField::Reg(3, 0x10, Some(0xff)),
            OxmField::XReg(2, 0x1_0000_0002, None),
            OxmField::TunnelId(0x99, None),
            OxmField::CtState(0x20, Some(0x20)),
        ]),
        instructions: vec![
            Instruction::Meter(periscope_codec::openflow::MeterId(2)),
            Instruction::ApplyActions(
                vec![
                    Action::Clone(vec![
                        Action::SetField(OxmField::TunnelId(100, None)),
                        Action::SetField(tun_dst.clone()),
                        Action::OutputTrunc { port: PortNo(9), max_len: 200 },
                    ]),
                    Action::RegLoad { dst: Subfield { field: reg0, ofs: 4, n_bits: 4 }, value: 9 },
                    Action::RegLoad2(tun_dst),
                    Action::Note(vec![0xde, 0xad, 0xbe, 0xef, 0, 0]),
                    Action::ResubmitTable { in_port: PortNo::IN_PORT, table: TableId(5) },
                    Action::output(PortNo(2)),
                ]
                .into(),
            ),
            Instruction::WriteMetadata { metadata: 1, mask: u64::MAX },
            Instruction::GotoTable(TableId(5)),
        ]
        .into(),
        ..FlowMod::default()
    };
    let printed = ofp_print(&encode(&fm));
    let (m, actions) = ovs_flow_mod_text(&printed);
    // OVS shows the 64-bit xreg2 as the two 32-bit registers it overlays.
    assert_eq!(
        m,
        "priority=300,ct_state=+trk,ip,reg3=0x10/0xff,reg4=0x1,reg5=0x2,tun_id=0x99,in_port=7,\
         nw_src=10.1.0.0/16"
    );
    assert_eq!(
        actions,
        "meter:2,clone(set_field:0x64->tun_id,set_field:192.0.2.9->tun_dst,\
         output(port=9,max_len=200)),load:0x9->NXM_NX_REG0[4..7],set_field:192.0.2.9->tun_dst,\
         note:de.ad.be.ef.00.00,resubmit(,5),output:2,write_metadata:0x1,goto_table:5"
    );
    let (_, ours) = our_flow_mod_text(&fm);
    assert_eq!(ours, actions);
}
