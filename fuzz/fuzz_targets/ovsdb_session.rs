//! Bytes from an ovsdb-server after the schema: the monitor reply and updates, into the replica
//! and the topology.
//! The body is `periscope::fuzz::ovsdb_session`, which `tests/fuzz_corpus.rs` also replays.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| periscope::fuzz::ovsdb_session(data));
