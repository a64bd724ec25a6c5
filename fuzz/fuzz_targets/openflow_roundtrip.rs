//! Any bytes that parse as an OpenFlow message emit bytes that parse back to the same value.
//! The body is `periscope::fuzz::openflow_roundtrip`, which `tests/fuzz_corpus.rs` also replays.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| periscope::fuzz::openflow_roundtrip(data));
