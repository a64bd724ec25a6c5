//! What Open vSwitch sends, we decode: `ovs-ofctl -O OpenFlow13 add-flow` talks to a fake switch
//! on a unix socket in a temp dir; the FLOW_MOD it sends must parse, re-emit byte for byte,
//! equal what our own text parser makes of the same flow, and print as `ofp-print` prints it.

mod ovs_match_support;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use periscope_codec::openflow::ofctl::parse_flow;
use periscope_codec::openflow::{Message, OfpMessage};

use ovs_match_support::{
    hex, ofp_print, our_flow_mod_text, ovs_flow_mod_text, ovs_ofctl, TempDir, FLOWS,
};

const OFPT_HELLO: u8 = 0;
const OFPT_ERROR: u8 = 1;
const OFPT_ECHO_REQUEST: u8 = 2;
const OFPT_FEATURES_REQUEST: u8 = 5;
const OFPT_FLOW_MOD: u8 = 14;
const OFPT_MULTIPART_REQUEST: u8 = 18;
const OFPT_BARRIER_REQUEST: u8 = 20;
const OFPMP_TABLE_FEATURES: u16 = 12;

fn header(msg_type: u8, len: usize, xid: [u8; 4]) -> Vec<u8> {
    let len = u16::try_from(len).expect("short message").to_be_bytes();
    vec![4, msg_type, len[0], len[1], xid[0], xid[1], xid[2], xid[3]]
}

/// Reads one OpenFlow message, or `None` at end of stream.
fn read_msg(s: &mut UnixStream) -> Option<Vec<u8>> {
    let mut h = [0u8; 8];
    if let Err(e) = s.read_exact(&mut h) {
        assert!(
            matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset),
            "reading from ovs-ofctl: {e}"
        );
        return None;
    }
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    assert!(len >= 8, "ovs-ofctl sent a message of length {len}");
    let mut msg = h.to_vec();
    msg.resize(len, 0);
    s.read_exact(&mut msg[8..]).expect("message body");
    Some(msg)
}

/// A multipart reply with one table-features entry holding the eight required properties,
/// all empty: enough for `ovs-ofctl` to build its table-name map.
fn table_features_reply(xid: [u8; 4]) -> Vec<u8> {
    let mut tf = Vec::new();
    tf.extend_from_slice(&128u16.to_be_bytes()); // length: 64 + 8 properties of 8 bytes
    tf.push(0); // table_id
    tf.extend_from_slice(&[0; 5]);
    let mut name = [0u8; 32];
    name[..2].copy_from_slice(b"t0");
    tf.extend_from_slice(&name);
    tf.extend_from_slice(&[0; 16]); // metadata_match, metadata_write
    tf.extend_from_slice(&0u32.to_be_bytes()); // config
    tf.extend_from_slice(&1000u32.to_be_bytes()); // max_entries
    for prop in [0u16, 2, 4, 6, 8, 10, 12, 14] {
        tf.extend_from_slice(&prop.to_be_bytes());
        tf.extend_from_slice(&4u16.to_be_bytes());
        tf.extend_from_slice(&[0; 4]);
    }
    multipart_reply(xid, OFPMP_TABLE_FEATURES, &tf)
}

fn multipart_reply(xid: [u8; 4], mp_type: u16, body: &[u8]) -> Vec<u8> {
    let mut m = header(19, 16 + body.len(), xid);
    m.extend_from_slice(&mp_type.to_be_bytes());
    m.extend_from_slice(&[0; 6]);
    m.extend_from_slice(body);
    m
}

/// Plays a switch on one connection until ovs-ofctl hangs up; returns the FLOW_MODs it sent.
fn serve(mut s: UnixStream) -> Vec<Vec<u8>> {
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(&header(OFPT_HELLO, 8, [0, 0, 0, 1])).expect("hello");
    let mut flow_mods = Vec::new();
    while let Some(msg) = read_msg(&mut s) {
        let xid = [msg[4], msg[5], msg[6], msg[7]];
        let reply = match msg[1] {
            OFPT_HELLO => continue,
            OFPT_ERROR => panic!("ovs-ofctl sent an error: {}", hex(&msg)),
            OFPT_ECHO_REQUEST => {
                let mut r = msg.clone();
                r[1] = 3;
                r
            }
            OFPT_FEATURES_REQUEST => {
                let mut r = header(6, 32, xid);
                r.extend_from_slice(&1u64.to_be_bytes()); // datapath_id
                r.extend_from_slice(&0u32.to_be_bytes()); // n_buffers
                r.extend_from_slice(&[254, 0, 0, 0]); // n_tables, auxiliary_id, pad
                r.extend_from_slice(&[0; 8]); // capabilities, reserved
                r
            }
            OFPT_MULTIPART_REQUEST => match u16::from_be_bytes([msg[8], msg[9]]) {
                OFPMP_TABLE_FEATURES => table_features_reply(xid),
                // Port descriptions and anything else: an empty reply.
                other => multipart_reply(xid, other, &[]),
            },
            OFPT_BARRIER_REQUEST => header(21, 8, xid),
            OFPT_FLOW_MOD => {
                flow_mods.push(msg);
                continue;
            }
            t => panic!("unexpected message type {t} from ovs-ofctl: {}", hex(&msg)),
        };
        if s.write_all(&reply).is_err() {
            break;
        }
    }
    flow_mods
}

/// Runs `ovs-ofctl -O OpenFlow13 add-flow unix:SOCK FLOW` against the fake switch and returns
/// the FLOW_MOD it sent.
fn capture(flow: &str) -> Vec<u8> {
    let dir = TempDir::new("match-capture");
    let sock = dir.path().join("sock");
    let listener = UnixListener::bind(&sock).expect("bind unix socket");
    listener.set_nonblocking(true).expect("nonblocking");
    let mut child = Command::new(ovs_ofctl())
        .args(["-O", "OpenFlow13", "add-flow", &format!("unix:{}", sock.display()), flow])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ovs-ofctl");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut flow_mods = Vec::new();
    // ovs-ofctl connects several times (table names, port names, then the flow mod).
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking stream");
                flow_mods.extend(serve(s));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if child.try_wait().expect("wait ovs-ofctl").is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("ovs-ofctl add-flow {flow} did not finish in time");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    let out = child.wait_with_output().expect("ovs-ofctl output");
    assert!(
        out.status.success(),
        "ovs-ofctl add-flow {flow} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(flow_mods.len(), 1, "ovs-ofctl add-flow {flow} sent {} flow mods", flow_mods.len());
    flow_mods.remove(0)
}

fn sorted_fields(fm: &periscope_codec::openflow::FlowMod) -> Vec<String> {
    let mut v: Vec<String> = fm.matches.fields.iter().map(|f| format!("{f:?}")).collect();
    v.sort();
    v
}

#[test]
fn flow_mods_from_ovs_ofctl_round_trip_byte_for_byte() {
    for flow in FLOWS {
        let bytes = capture(flow);
        let msg = OfpMessage::parse(&bytes)
            .unwrap_or_else(|e| panic!("{flow}: {e}\nbytes {}", hex(&bytes)));
        assert_eq!(msg.to_vec(), bytes, "re-emit of {flow}");
        let Message::FlowMod(theirs) = msg.msg else { panic!("{flow}: not a flow mod") };
        assert!(
            !theirs.matches.fields.iter().any(|f| f.info().is_none()),
            "{flow}: undecoded fields {:?}",
            theirs.matches
        );

        // Our text parser makes the same flow mod (fields may come in another order).
        let ours = parse_flow(flow).unwrap_or_else(|e| panic!("{flow}: {e}"));
        assert_eq!(sorted_fields(&ours), sorted_fields(&theirs), "match of {flow}");
        assert_eq!(ours.instructions, theirs.instructions, "instructions of {flow}");
        let same_order = periscope_codec::openflow::FlowMod {
            matches: ours.matches.clone(),
            ..(*theirs).clone()
        };
        assert_eq!(ours, same_order, "header fields of {flow}");

        // And our printer shows it as Open vSwitch does.
        let ovs = ovs_flow_mod_text(&ofp_print(&bytes));
        assert_eq!(our_flow_mod_text(&theirs), ovs, "printing {flow}");
    }
}

#[test]
fn ovs_ofctl_is_present() {
    let out = Command::new(ovs_ofctl()).arg("--version").output().expect("run ovs-ofctl");
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains("Open vSwitch"), "{v}");
}
