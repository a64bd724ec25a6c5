//! Requests to the REST API (`/v1` and TaaS) through the router and the rules, without sockets.
//! The body is `periscope::fuzz::api_request`, which `tests/fuzz_corpus.rs` also replays.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| periscope::fuzz::api_request(data));
