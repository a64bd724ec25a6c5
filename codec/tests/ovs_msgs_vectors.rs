//! Messages captured from ovs-vswitchd 3.1 parse, and re-emit byte for byte.

use periscope_codec::openflow::{
    frame_len, multipart::MULTIPART_MORE, Message, MultipartReplyBody, MultipartType, OfpMessage,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    assert!(s.len() % 2 == 0, "odd number of hex digits");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Splits a byte stream into messages by each header's length.
fn split(mut stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        let len = frame_len(stream, usize::from(u16::MAX))
            .expect("valid header length")
            .expect("complete header");
        assert!(len <= stream.len(), "message of {len} bytes cut at {}", stream.len());
        let (msg, rest) = stream.split_at(len);
        out.push(msg);
        stream = rest;
    }
    out
}

#[test]
fn flow_stats_replies_of_1000_flows_round_trip() {
    let stream = hex(include_str!("data/flowstats1000.hex"));
    let parts = split(&stream);
    assert_eq!(parts.len(), 3, "the vector holds three replies");
    let mut flows = 0;
    for (i, part) in parts.iter().enumerate() {
        let m = OfpMessage::parse(part).unwrap_or_else(|e| panic!("reply {i}: {e}"));
        let Message::MultipartReply(r) = &m.msg else {
            panic!("reply {i} is {:?}", m.msg.msg_type())
        };
        assert_eq!(r.body.mp_type(), MultipartType::Flow);
        let last = i == parts.len() - 1;
        assert_eq!(r.flags & MULTIPART_MORE == 0, last, "reply {i} flags {:#x}", r.flags);
        let MultipartReplyBody::Flow(f) = &r.body else { unreachable!() };
        flows += f.len();
        assert_eq!(&m.to_vec()[..], *part, "reply {i} re-emits differently");
    }
    assert!(flows >= 1000, "only {flows} flows in the vector");
}

/// The replies captured from ovs-vswitchd 3.1 by `ovs_msgs_live` (with `PERISCOPE_CAPTURE_DIR`),
/// one message per line, by request name. Only the first part of the table features reply is
/// kept (it is 64 KB of the 1.2 MB OVS sends).
fn captured() -> Vec<(String, Vec<Vec<u8>>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/msgs");
    let mut out: Vec<(String, Vec<Vec<u8>>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("dir entry").path();
            let text = std::fs::read_to_string(&path).expect("read capture");
            let name = path.file_stem().expect("file name").to_string_lossy().into_owned();
            (name, text.lines().filter(|l| !l.is_empty()).map(hex).collect())
        })
        .collect();
    out.sort();
    out
}

fn captured_one(name: &str) -> OfpMessage {
    let all = captured();
    let (_, msgs) =
        all.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no capture {name}"));
    OfpMessage::parse(&msgs[0]).expect("parses")
}

#[test]
fn captured_ovs_replies_round_trip() {
    let all = captured();
    assert!(all.len() >= 20, "only {} captures", all.len());
    for (name, msgs) in &all {
        for raw in msgs {
            let m = OfpMessage::parse(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&m.to_vec(), raw, "{name} re-emits differently");
            if let Message::MultipartReply(r) = &m.msg {
                assert!(
                    !matches!(r.body, MultipartReplyBody::Unknown { .. }),
                    "{name} not decoded"
                );
            }
        }
    }
}

#[test]
fn captured_ovs_replies_survive_truncation() {
    for (name, msgs) in captured() {
        for raw in msgs {
            // Every cut of the small ones; every 61st byte of the large ones.
            let step = if raw.len() <= 4096 { 1 } else { 61 };
            for n in (0..raw.len()).step_by(step) {
                assert!(OfpMessage::parse(&raw[..n]).is_err(), "{name}: prefix of {n} parsed");
                if n >= 8 {
                    let mut cut = raw[..n].to_vec();
                    cut[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                    if let Ok(m) = OfpMessage::parse(&cut) {
                        assert_eq!(m.to_vec(), cut, "{name}: cut at {n} re-emits differently");
                    }
                }
            }
        }
    }
}

#[test]
fn captured_values_are_what_ovs_reports() {
    let Message::MultipartReply(r) = captured_one("desc").msg else { panic!("desc") };
    let MultipartReplyBody::Desc(d) = r.body else { panic!("desc body") };
    assert_eq!(d.mfr_desc, "Nicira, Inc.");
    assert_eq!(d.hw_desc, "Open vSwitch");

    let Message::MultipartReply(r) = captured_one("table_features").msg else { panic!("tf") };
    let MultipartReplyBody::TableFeatures(t) = r.body else { panic!("table features body") };
    assert_eq!(t[0].table_id.0, 0);
    assert!(t[0].properties.len() >= 10, "{:?}", t[0].properties);

    let Message::Error(e) = captured_one("bundle_bad_id").msg else { panic!("error") };
    assert_eq!(e.to_string(), "OFPBFC_BAD_ID");
    let Message::Error(e) = captured_one("group_exists").msg else { panic!("error") };
    assert_eq!(e.to_string(), "OFPGMFC_GROUP_EXISTS");
}
