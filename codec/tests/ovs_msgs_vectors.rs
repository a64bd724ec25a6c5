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
