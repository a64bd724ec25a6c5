//! Bytes through the OVSDB JSON-RPC stream splitter, in two chunks.
//! The body is `periscope::fuzz::ovsdb_stream`, which `tests/fuzz_corpus.rs` also replays.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| periscope::fuzz::ovsdb_stream(data));
