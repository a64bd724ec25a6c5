//! Bytes from a switch, through the driver's framing into an OpenFlow session.
//! The body is `periscope::fuzz::openflow_session`, which `tests/fuzz_corpus.rs` also replays.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| periscope::fuzz::openflow_session(data));
