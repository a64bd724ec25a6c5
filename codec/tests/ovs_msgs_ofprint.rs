//! What we encode, Open vSwitch decodes: every message kind of the group, meter, table, queue,
//! async config, bundle, error and multipart families is fed to `ovs-ofctl -O OpenFlow13
//! ofp-print`, which must decode it without complaint and show the values we put in.
//!
//! `ovs-ofctl` (Debian package `openvswitch-common`) is required: without it these tests fail.

use std::process::Command;

use periscope_codec::openflow::async_config::RoleMasks;
use periscope_codec::openflow::bundle::{BUNDLE_ATOMIC, BUNDLE_ORDERED};
use periscope_codec::openflow::error::{self, bundle_failed};
use periscope_codec::openflow::group::GroupFeatures;
use periscope_codec::openflow::meter::{METER_FLAG_BURST, METER_FLAG_KBPS, METER_FLAG_STATS};
use periscope_codec::openflow::multipart::MultipartExperimenter;
use periscope_codec::openflow::table::{ActionId, InstructionId, OxmId};
use periscope_codec::openflow::*;

/// `ovs-ofctl -O OpenFlow13 ofp-print` of `msg`, asserting that OVS decoded all of it.
fn ofp_print(msg: &OfpMessage) -> String {
    let bytes = msg.to_vec();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "ofp-print", &hex])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run ovs-ofctl ({e}): install openvswitch-common to run these tests")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ovs-ofctl failed on {hex}: {stdout}{stderr}");
    assert!(
        !stdout.contains("***") && !stderr.contains("WARN") && !stderr.contains("ERR"),
        "ovs-ofctl could not decode {hex}:\n{stdout}{stderr}"
    );
    stdout
}

/// Asserts that each of `parts` appears in `text`.
fn assert_shows(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "ofp-print output lacks {p:?}:\n{text}");
    }
}

fn msg(xid: u32, m: Message) -> OfpMessage {
    OfpMessage::new(Xid(xid), m)
}

fn request(body: MultipartRequestBody) -> OfpMessage {
    msg(0x30, Message::MultipartRequest(MultipartRequest { flags: 0, body }))
}

fn reply(body: MultipartReplyBody) -> OfpMessage {
    msg(0x31, Message::MultipartReply(MultipartReply { flags: 0, body }))
}

fn select_group() -> GroupMod {
    GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::Select,
        group_id: GroupId(10),
        buckets: vec![
            Bucket { weight: 100, ..Bucket::with_actions(vec![Action::output(PortNo(1))]) },
            Bucket { weight: 50, ..Bucket::with_actions(vec![Action::output(PortNo(2))]) },
        ],
    }
}

#[test]
fn group_mods_decode() {
    let out = ofp_print(&msg(1, Message::GroupMod(select_group())));
    assert_shows(
        &out,
        &[
            "OFPT_GROUP_MOD (OF1.3) (xid=0x1)",
            "ADD group_id=10,type=select",
            "bucket=weight:100,actions=output:1",
            "bucket=weight:50,actions=output:2",
        ],
    );

    let ff = GroupMod {
        command: GroupModCommand::Modify,
        group_type: GroupType::FastFailover,
        group_id: GroupId(11),
        buckets: vec![Bucket {
            watch_port: PortNo(3),
            ..Bucket::with_actions(vec![Action::output(PortNo(3))])
        }],
    };
    let out = ofp_print(&msg(2, Message::GroupMod(ff)));
    assert_shows(&out, &["MOD group_id=11,type=ff", "watch_port:3", "actions=output:3"]);

    for (t, name) in [(GroupType::All, "all"), (GroupType::Indirect, "indirect")] {
        let g = GroupMod {
            command: GroupModCommand::Delete,
            group_type: t,
            group_id: GroupId(12),
            buckets: vec![],
        };
        let out = ofp_print(&msg(3, Message::GroupMod(g)));
        assert_shows(&out, &[&format!("DEL group_id=12,type={name}")]);
    }
}

#[test]
fn table_mod_decodes() {
    let out = ofp_print(&msg(4, Message::TableMod(TableMod { table_id: TableId(3), config: 0 })));
    assert_shows(&out, &["OFPT_TABLE_MOD (OF1.3) (xid=0x4)", "table_id=3"]);
}

#[test]
fn meter_mods_decode() {
    let m = MeterMod {
        command: MeterModCommand::Add,
        flags: METER_FLAG_KBPS | METER_FLAG_BURST | METER_FLAG_STATS,
        meter_id: MeterId(7),
        bands: vec![
            MeterBand::Drop { rate: 1000, burst_size: 100 },
            MeterBand::DscpRemark { rate: 2000, burst_size: 200, prec_level: 1 },
        ],
    };
    let out = ofp_print(&msg(5, Message::MeterMod(m)));
    assert_shows(
        &out,
        &[
            "OFPT_METER_MOD (OF1.3) (xid=0x5)",
            "ADD meter=7 kbps burst stats",
            "type=drop rate=1000 burst_size=100",
            "type=dscp_remark rate=2000 burst_size=200 prec_level=1",
        ],
    );
    for (c, name) in [(MeterModCommand::Modify, "MOD"), (MeterModCommand::Delete, "DEL")] {
        let m = MeterMod { command: c, flags: 0, meter_id: MeterId(8), bands: vec![] };
        assert_shows(&ofp_print(&msg(6, Message::MeterMod(m))), &[&format!("{name} meter=8")]);
    }
}

#[test]
fn queue_config_decodes() {
    let req = QueueGetConfigRequest { port: PortNo(1) };
    let out = ofp_print(&msg(7, Message::QueueGetConfigRequest(req)));
    assert_shows(&out, &["OFPT_QUEUE_GET_CONFIG_REQUEST (OF1.3) (xid=0x7): port=1"]);

    let rep = QueueGetConfigReply {
        port: PortNo(1),
        queues: vec![
            PacketQueue {
                queue_id: QueueId(0),
                port: PortNo(1),
                properties: vec![QueueProp::MinRate(500), QueueProp::MaxRate(800)],
            },
            PacketQueue { queue_id: QueueId(5), port: PortNo(1), properties: vec![] },
        ],
    };
    let out = ofp_print(&msg(7, Message::QueueGetConfigReply(rep)));
    assert_shows(
        &out,
        &[
            "OFPT_QUEUE_GET_CONFIG_REPLY",
            "port=1",
            "queue 0: min_rate:50.0% max_rate:80.0%",
            "queue 5:",
        ],
    );
}

#[test]
fn async_config_decodes() {
    let a = AsyncConfig {
        packet_in_mask: RoleMasks { master: 0b011, slave: 0 },
        port_status_mask: RoleMasks { master: 0b111, slave: 0b001 },
        flow_removed_mask: RoleMasks { master: 0b0101, slave: 0 },
    };
    for (m, name) in [
        (Message::SetAsync(a), "OFPT_SET_ASYNC"),
        (Message::GetAsyncReply(a), "OFPT_GET_ASYNC_REPLY"),
    ] {
        let out = ofp_print(&msg(8, m));
        // OVS calls the master/equal role "primary" and the slave role "secondary".
        let (primary, secondary) = out.split_once("secondary:").expect("two role sections");
        assert_shows(
            primary,
            &[name, "PACKET_IN: no_match action", "PORT_STATUS: add delete modify"],
        );
        assert_shows(primary, &["FLOW_REMOVED: idle delete\n"]);
        assert_shows(secondary, &["PACKET_IN: (off)", "PORT_STATUS: add\n", "FLOW_REMOVED: (off)"]);
    }
}

#[test]
fn bundle_controls_decode() {
    let types = [
        BundleCtrlType::OpenRequest,
        BundleCtrlType::OpenReply,
        BundleCtrlType::CloseRequest,
        BundleCtrlType::CloseReply,
        BundleCtrlType::CommitRequest,
        BundleCtrlType::CommitReply,
        BundleCtrlType::DiscardRequest,
        BundleCtrlType::DiscardReply,
    ];
    for (i, t) in types.into_iter().enumerate() {
        let c = BundleControl {
            bundle_id: BundleId(0x100 + i as u32),
            ctrl_type: t,
            flags: BUNDLE_ATOMIC | BUNDLE_ORDERED,
            properties: vec![],
        };
        let out = ofp_print(&msg(9, Message::BundleControl(c)));
        let name = t.name().expect("known type");
        assert_shows(
            &out,
            &[
                "ONFT_BUNDLE_CONTROL (OF1.3) (xid=0x9)",
                &format!("bundle_id={:#x} type={name} flags=atomic ordered", 0x100 + i),
            ],
        );
    }
}

#[test]
fn bundle_add_decodes() {
    // OVS requires the inner xid to equal the outer one.
    let inner = msg(0x42, Message::GroupMod(select_group()));
    let a = BundleAdd {
        bundle_id: BundleId(0x2a),
        flags: BUNDLE_ATOMIC,
        message: Box::new(inner),
        properties: vec![],
    };
    let out = ofp_print(&msg(0x42, Message::BundleAdd(a)));
    assert_shows(
        &out,
        &[
            "ONFT_BUNDLE_ADD_MESSAGE (OF1.3) (xid=0x42)",
            "bundle_id=0x2a flags=atomic",
            "OFPT_GROUP_MOD (OF1.3) (xid=0x42)",
            "ADD group_id=10,type=select",
        ],
    );

    let del = GroupMod {
        command: GroupModCommand::Delete,
        group_type: GroupType::All,
        group_id: GroupId::ALL,
        buckets: vec![],
    };
    let a = BundleAdd {
        bundle_id: BundleId(7),
        flags: BUNDLE_ORDERED,
        message: Box::new(msg(0x43, Message::GroupMod(del))),
        properties: vec![BundleProp {
            prop_type: 0xffff,
            data: vec![0, 0, 0x23, 0x20, 0, 0, 0, 1],
        }],
    };
    let out = ofp_print(&msg(0x43, Message::BundleAdd(a)));
    assert_shows(&out, &["bundle_id=0x7 flags=ordered", "DEL group_id=4294967292,type=all"]);
}

#[test]
fn every_error_code_decodes_with_our_name() {
    let types = [
        ErrorType::HelloFailed,
        ErrorType::BadRequest,
        ErrorType::BadAction,
        ErrorType::BadInstruction,
        ErrorType::BadMatch,
        ErrorType::FlowModFailed,
        ErrorType::GroupModFailed,
        ErrorType::PortModFailed,
        ErrorType::TableModFailed,
        ErrorType::QueueOpFailed,
        ErrorType::SwitchConfigFailed,
        ErrorType::RoleRequestFailed,
        ErrorType::MeterModFailed,
        ErrorType::TableFeaturesFailed,
    ];
    let mut checked = 0;
    for t in types {
        for code in 0..=u16::MAX {
            let Some(name) = error::code_name(t, code) else { break };
            let e = ErrorMsg { err_type: t, code, experimenter: None, data: vec![] };
            assert_eq!(e.to_string(), name);
            let out = ofp_print(&msg(10, Message::Error(e)));
            assert_shows(&out, &[&format!("OFPT_ERROR (OF1.3) (xid=0xa): {name}\n")]);
            checked += 1;
        }
    }
    assert_eq!(checked, 2 + 14 + 16 + 9 + 12 + 8 + 15 + 5 + 3 + 3 + 3 + 3 + 12 + 6);

    for code in bundle_failed::UNKNOWN..=bundle_failed::BUNDLE_IN_PROGRESS {
        let e = ErrorMsg {
            err_type: ErrorType::Experimenter,
            code,
            experimenter: Some(ONF_EXPERIMENTER_ID),
            data: vec![],
        };
        let name = e.to_string();
        assert!(name.starts_with("OFPBFC_"), "{name}");
        assert_shows(&ofp_print(&msg(11, Message::Error(e))), &[&format!("): {name}\n")]);
    }
}

#[test]
fn error_carrying_the_failed_request_decodes() {
    let failed = msg(12, Message::GroupMod(select_group())).to_vec();
    let e = ErrorMsg {
        err_type: ErrorType::GroupModFailed,
        code: error::group_mod_failed::GROUP_EXISTS,
        experimenter: None,
        data: failed,
    };
    let out = ofp_print(&msg(12, Message::Error(e)));
    assert_shows(&out, &["OFPGMFC_GROUP_EXISTS", "OFPT_GROUP_MOD", "ADD group_id=10,type=select"]);
}

#[test]
fn multipart_requests_decode() {
    let flows = FlowStatsRequest::default();
    let cases: Vec<(MultipartRequestBody, &[&str])> = vec![
        (MultipartRequestBody::Aggregate(flows.into()), &["OFPST_AGGREGATE request"]),
        (MultipartRequestBody::Table, &["OFPST_TABLE request"]),
        (MultipartRequestBody::PortStats(PortNo(2)), &["OFPST_PORT request", "port_no=2"]),
        (
            MultipartRequestBody::Queue(QueueStatsRequest {
                port_no: PortNo(1),
                queue_id: QueueId(3),
            }),
            &["OFPST_QUEUE request", "port=1 queue=3"],
        ),
        (MultipartRequestBody::Group(GroupId(10)), &["OFPST_GROUP request", "group_id=10"]),
        (MultipartRequestBody::GroupDesc, &["OFPST_GROUP_DESC request"]),
        (MultipartRequestBody::GroupFeatures, &["OFPST_GROUP_FEATURES request"]),
        (MultipartRequestBody::Meter(MeterId(7)), &["OFPST_METER request", "meter=7"]),
        (MultipartRequestBody::MeterConfig(MeterId(7)), &["OFPST_METER_CONFIG request", "meter=7"]),
        (MultipartRequestBody::MeterFeatures, &["OFPST_METER_FEATURES request"]),
        (MultipartRequestBody::TableFeatures(vec![]), &["OFPST_TABLE_FEATURES request"]),
        (
            MultipartRequestBody::TableFeatures(vec![table0()]),
            &["OFPST_TABLE_FEATURES request", "table 0"],
        ),
        (
            MultipartRequestBody::Experimenter(MultipartExperimenter {
                experimenter: NICIRA_EXPERIMENTER_ID,
                exp_type: 3,
                data: vec![],
            }),
            &["NXST_IPFIX_BRIDGE request"],
        ),
    ];
    for (body, parts) in cases {
        let out = ofp_print(&request(body));
        assert_shows(&out, parts);
    }
}

/// A table features entry like the ones OVS reports, with every kind of property.
fn table0() -> TableFeatures {
    let iids = |t: &[u16]| {
        t.iter().map(|&t| InstructionId { instruction_type: t, data: vec![] }).collect()
    };
    let aids = |t: &[u16]| t.iter().map(|&t| ActionId { action_type: t, data: vec![] }).collect();
    // in_port, eth_dst, eth_src, eth_type (OXM_OF_*).
    let oxms = || {
        vec![
            OxmId::basic(0x8000_0004),
            OxmId::basic(0x8000_0606),
            OxmId::basic(0x8000_0806),
            OxmId::basic(0x8000_0a02),
        ]
    };
    TableFeatures {
        table_id: TableId(0),
        name: "classifier".into(),
        metadata_match: u64::MAX,
        metadata_write: u64::MAX,
        config: 0,
        max_entries: 1_000_000,
        properties: vec![
            TableFeatureProp::Instructions(iids(&[1, 2, 3, 4, 5, 6])),
            TableFeatureProp::InstructionsMiss(iids(&[1, 4])),
            TableFeatureProp::NextTables(vec![TableId(1), TableId(2)]),
            TableFeatureProp::NextTablesMiss(vec![TableId(1)]),
            TableFeatureProp::WriteActions(aids(&[0, 22, 25])),
            TableFeatureProp::WriteActionsMiss(aids(&[0])),
            TableFeatureProp::ApplyActions(aids(&[0, 17, 18, 25])),
            TableFeatureProp::ApplyActionsMiss(aids(&[0])),
            TableFeatureProp::Match(oxms()),
            TableFeatureProp::Wildcards(oxms()),
            TableFeatureProp::WriteSetfield(oxms()),
            TableFeatureProp::WriteSetfieldMiss(oxms()),
            TableFeatureProp::ApplySetfield(oxms()),
            TableFeatureProp::ApplySetfieldMiss(oxms()),
        ],
    }
}

#[test]
fn multipart_replies_decode() {
    let cases: Vec<(MultipartReplyBody, &[&str])> = vec![
        (
            MultipartReplyBody::Aggregate(AggregateStats { packet_count: 100, byte_count: 6000, flow_count: 3 }),
            &["OFPST_AGGREGATE reply", "packet_count=100 byte_count=6000 flow_count=3"],
        ),
        (
            MultipartReplyBody::Table(vec![
                TableStats { table_id: TableId(0), active_count: 5, lookup_count: 1000, matched_count: 900 },
                TableStats { table_id: TableId(1), active_count: 0, lookup_count: 100, matched_count: 0 },
            ]),
            &["OFPST_TABLE reply", "table 0:", "active=5, lookup=1000, matched=900", "table 1:"],
        ),
        (
            MultipartReplyBody::PortStats(vec![PortStats {
                port_no: PortNo(2),
                rx_packets: 11,
                tx_packets: 12,
                rx_bytes: 1300,
                tx_bytes: 1400,
                rx_dropped: 1,
                duration_sec: 60,
                ..PortStats::default()
            }]),
            &["OFPST_PORT reply", "port  2: rx pkts=11, bytes=1300, drop=1", "tx pkts=12, bytes=1400", "duration=60"],
        ),
        (
            MultipartReplyBody::Queue(vec![QueueStats {
                port_no: PortNo(1),
                queue_id: QueueId(3),
                tx_bytes: 700,
                tx_packets: 7,
                tx_errors: 0,
                duration_sec: 9,
                duration_nsec: 0,
            }]),
            &["OFPST_QUEUE reply", "port 1 queue 3: bytes=700, pkts=7, errors=0, duration=9"],
        ),
        (
            MultipartReplyBody::Group(vec![GroupStats {
                group_id: GroupId(10),
                ref_count: 2,
                packet_count: 30,
                byte_count: 3000,
                duration_sec: 5,
                duration_nsec: 0,
                bucket_stats: vec![
                    group::BucketCounter { packet_count: 20, byte_count: 2000 },
                    group::BucketCounter { packet_count: 10, byte_count: 1000 },
                ],
            }]),
            &[
                "OFPST_GROUP reply",
                "group_id=10,duration=5s,ref_count=2,packet_count=30,byte_count=3000",
                "bucket0:packet_count=20,byte_count=2000",
                "bucket1:packet_count=10,byte_count=1000",
            ],
        ),
        (
            MultipartReplyBody::GroupDesc(vec![GroupDesc {
                group_type: GroupType::Select,
                group_id: GroupId(10),
                buckets: select_group().buckets,
            }]),
            &["OFPST_GROUP_DESC reply", "group_id=10,type=select", "bucket=weight:100,actions=output:1"],
        ),
        (
            MultipartReplyBody::GroupFeatures(GroupFeatures {
                types: 0b1111,
                capabilities: 0b111,
                max_groups: [100, 200, 300, 400],
                actions: [1, 1, 1, 1],
            }),
            &["OFPST_GROUP_FEATURES reply", "all group", "max_groups=0x64", "select group", "max_groups=0xc8", "fast failover group:\n       max_groups=0x190"],
        ),
        (
            MultipartReplyBody::Meter(vec![MeterStats {
                meter_id: MeterId(7),
                flow_count: 2,
                packet_in_count: 40,
                byte_in_count: 4000,
                duration_sec: 3,
                duration_nsec: 0,
                band_stats: vec![meter::MeterBandStats { packet_band_count: 4, byte_band_count: 400 }],
            }]),
            &["OFPST_METER reply", "meter:7 flow_count:2 packet_in_count:40 byte_in_count:4000 duration:3s", "0: packet_count:4 byte_count:400"],
        ),
        (
            MultipartReplyBody::MeterConfig(vec![MeterConfig {
                flags: METER_FLAG_KBPS,
                meter_id: MeterId(7),
                bands: vec![MeterBand::Drop { rate: 1000, burst_size: 0 }],
            }]),
            &["OFPST_METER_CONFIG reply", "meter=7 kbps", "type=drop rate=1000"],
        ),
        (
            MultipartReplyBody::MeterFeatures(MeterFeatures {
                max_meter: 4096,
                band_types: 1 << 1 | 1 << 2,
                capabilities: u32::from(METER_FLAG_KBPS | METER_FLAG_STATS),
                max_bands: 8,
                max_color: 0,
            }),
            &["OFPST_METER_FEATURES reply", "max_meter:4096", "band_types: drop dscp_remark", "capabilities: kbps stats", "max_bands:8"],
        ),
        (
            MultipartReplyBody::TableFeatures(vec![table0()]),
            &[
                "OFPST_TABLE_FEATURES reply",
                "table 0 (\"classifier\")",
                "max_entries=1000000",
                "next tables: 1-2",
                "instructions: meter apply_actions clear_actions write_actions write_metadata goto_table",
                "actions: output group set_field",
                "actions: output set_field strip_vlan push_vlan",
                "supported on Set-Field: in_port_oxm eth_{src,dst,type}",
                "instructions (table miss):\n      next tables: 1\n      instructions: apply_actions goto_table",
                "exact match or wildcard: in_port_oxm eth_{src,dst,type}",
            ],
        ),
    ];
    for (body, parts) in cases {
        let out = ofp_print(&reply(body));
        assert_shows(&out, parts);
    }
}
