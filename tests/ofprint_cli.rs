//! `periscope ofp-print` against `ovs-ofctl -O OpenFlow13 ofp-parse` on the same bytes: the
//! captured vectors of `codec/tests/data` print as Open vSwitch prints them, and bad input
//! fails with the offset of the problem.
//!
//! `ovs-ofctl` (Debian package `openvswitch-common`) is required: without it these tests fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("codec/tests/data")
}

fn hex_of(name: &str) -> String {
    std::fs::read_to_string(data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn bytes_of(name: &str) -> Vec<u8> {
    let digits: String = hex_of(name).split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("vector is hex"))
        .collect()
}

/// Runs `periscope ofp-print ARGS` with `stdin`.
fn periscope(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_periscope"))
        .arg("ofp-print")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("periscope runs");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    child.wait_with_output().expect("periscope finishes")
}

/// The text of a successful run.
fn print_ok(args: &[&str], stdin: &[u8]) -> String {
    let out = periscope(args, stdin);
    assert!(
        out.status.success(),
        "periscope ofp-print failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// What `ovs-ofctl -O OpenFlow13 ofp-parse` prints for the messages in `bytes`.
fn ovs_print(tag: &str, bytes: &[u8]) -> String {
    let path = std::env::temp_dir()
        .join(format!("periscope-test-ofprint-{}-{tag}.bin", std::process::id()));
    std::fs::write(&path, bytes).expect("write temp file");
    let out = Command::new("ovs-ofctl").args(["-O", "OpenFlow13", "ofp-parse"]).arg(&path).output();
    let _ = std::fs::remove_file(&path);
    let out = out.unwrap_or_else(|e| {
        panic!("cannot run ovs-ofctl ({e}): install openvswitch-common to run these tests")
    });
    assert!(out.status.success(), "ovs-ofctl failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SAME_AS_OVS: &[&str] = &[
    "flowmod.hex",
    "msgs/aggregate.hex",
    "msgs/bundle_bad_id.hex",
    "msgs/bundle_commit.hex",
    "msgs/bundle_open.hex",
    "msgs/desc.hex",
    "msgs/flow.hex",
    "msgs/get_async.hex",
    "msgs/get_async_after_set.hex",
    "msgs/group.hex",
    "msgs/group_desc.hex",
    "msgs/group_exists.hex",
    "msgs/group_features.hex",
    "msgs/meter.hex",
    "msgs/meter_config.hex",
    "msgs/meter_features.hex",
    "msgs/port_desc.hex",
    "msgs/port_stats.hex",
    "msgs/queue.hex",
    "msgs/queue_get_config.hex",
    "msgs/table.hex",
];

#[test]
fn vectors_print_exactly_as_ovs_does() {
    for name in SAME_AS_OVS {
        let ours = print_ok(&[], hex_of(name).as_bytes());
        let theirs = ovs_print("same", &bytes_of(name));
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn flowmod_header_line_from_arguments() {
    let hex = hex_of("flowmod.hex");
    let words: Vec<&str> = hex.split_whitespace().collect();
    let ours = print_ok(&words, b"");
    assert_eq!(
        ours.trim_end(),
        "OFPT_FLOW_MOD (OF1.3) (xid=0x1): ADD priority=100,tcp,in_port=1,\
         dl_dst=fa:16:3e:00:00:01,nw_dst=10.0.0.1,tp_dst=443 \
         actions=set_field:0x64->tun_id,output:11,NORMAL"
    );
}

#[test]
fn flow_stats_dump_of_1000_flows_matches_ovs_line_for_line() {
    let bytes = bytes_of("flowstats1000.hex");
    let ours = print_ok(&["--raw"], &bytes);
    let theirs = ovs_print("fs1000", &bytes);
    assert_eq!(ours.lines().filter(|l| l.starts_with(" cookie=")).count(), 1000);
    assert_eq!(ours, theirs);
}

#[test]
fn packet_in_shows_its_match_and_the_packet_headers() {
    let bytes = bytes_of("packetin.hex");
    let ours = print_ok(&["--raw"], &bytes);
    let theirs = ovs_print("pin", &bytes);
    let (o, t): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    assert_eq!(o[0], t[0]);
    assert!(o[0].contains("in_port=1 (via no_match) data_len=64 (unbuffered)"), "{}", o[0]);
    // Open vSwitch adds the checksum (`tcp_csum:0`) after the flow; the flow itself is the same.
    assert!(t[1].starts_with(o[1]), "ours {:?}\novs  {:?}", o[1], t[1]);
    assert!(o[1].starts_with("tcp,") && o[1].contains("tp_dst=443,tcp_flags=syn"), "{}", o[1]);
}

#[test]
fn table_features_show_the_tables_as_ovs_does() {
    let bytes = bytes_of("msgs/table_features.hex");
    let ours = print_ok(&["--raw"], &bytes);
    let theirs = ovs_print("tf", &bytes);
    let keep = |l: &&str| {
        l.starts_with("OFPST_")
            || l.starts_with("  table")
            || l.contains("metadata: match=")
            || l.contains("max_entries=")
    };
    let o: Vec<&str> = ours.lines().filter(keep).collect();
    let t: Vec<&str> = theirs.lines().filter(keep).collect();
    assert!(o.len() > 4, "{ours}");
    assert_eq!(o, t);
}

#[test]
fn error_with_an_unknown_request_names_the_error() {
    let bytes = bytes_of("msgs/bad_multipart.hex");
    let ours = print_ok(&["--raw"], &bytes);
    let theirs = ovs_print("badmp", &bytes);
    let first = ours.lines().next().unwrap_or_default();
    assert_eq!(first, "OFPT_ERROR (OF1.3) (xid=0x35): OFPBRC_BAD_STAT");
    assert!(theirs.contains(first), "{theirs}");
}

#[test]
fn several_messages_back_to_back_print_in_order() {
    let mut hex = hex_of("msgs/bundle_open.hex");
    hex.push_str(&hex_of("flowmod.hex"));
    hex.push_str(&hex_of("msgs/bundle_commit.hex"));
    let ours = print_ok(&[], hex.as_bytes());
    let heads: Vec<&str> = ours
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| &l[..l.find(':').unwrap_or(0)])
        .collect();
    assert_eq!(
        heads,
        [
            "ONFT_BUNDLE_CONTROL (OF1.3) (xid=0x9)",
            "OFPT_FLOW_MOD (OF1.3) (xid=0x1)",
            "ONFT_BUNDLE_CONTROL (OF1.3) (xid=0xd)"
        ]
    );
}

#[test]
fn json_prints_the_typed_value() {
    let out = print_ok(&["--json"], hex_of("flowmod.hex").as_bytes());
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(v["xid"], 1);
    assert_eq!(v["msg"]["FlowMod"]["priority"], 100);
    assert_eq!(v["msg"]["FlowMod"]["matches"]["fields"][0]["InPort"], 1);
}

#[test]
fn odd_hex_fails_naming_the_byte() {
    let out = periscope(&["040e0"], b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("odd number of hex digits") && err.contains("byte 2"), "{err}");
    let out = periscope(&["04xx"], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`x` at character 2"));
}

#[test]
fn truncated_message_fails_naming_the_offset() {
    let mut bytes = bytes_of("flowmod.hex");
    bytes.truncate(bytes.len() - 8);
    let out = periscope(&["--raw"], &bytes);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("message 1 at input offset 8"), "{err}");
    assert!(err.contains("truncated message body"), "{err}");
}

#[test]
fn bad_field_in_second_message_is_reported_at_its_input_offset() {
    // A barrier request (8 bytes), then the FLOW_MOD whose in_port OXM claims 2 bytes.
    let mut bytes = vec![4, 0x14, 0, 8, 0, 0, 0, 7];
    let mut fm = bytes_of("flowmod.hex");
    // The match starts at 48 (8-byte header, 40 fixed bytes); its first OXM at 52.
    assert_eq!(&fm[52..56], &[0x80, 0x00, 0x00, 0x04]);
    fm[55] = 2;
    bytes.extend_from_slice(&fm);
    let out = periscope(&["--raw"], &bytes);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("OFPT_BARRIER_REQUEST (OF1.3) (xid=0x7):"), "{stdout}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("message 2 at input offset 60"), "{err}");
    assert!(err.contains("oxm in_port"), "{err}");
}

#[test]
fn a_partial_header_fails() {
    let out = periscope(&["04 00 00"], b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated header at offset 0"), "{err}");
}
