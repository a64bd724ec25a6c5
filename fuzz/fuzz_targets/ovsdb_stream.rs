//! Feeds arbitrary bytes to the OVSDB JSON-RPC stream splitter, in two chunks split at the
//! first byte's value; it must never panic, and every message it yields must re-encode.

#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_codec::ovsdb::JsonStream;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |b| usize::from(*b).min(data.len()));
    let mut s = JsonStream::new(1 << 16);
    for chunk in [&data[..cut], &data[cut..]] {
        if s.push(chunk).is_err() {
            return;
        }
        while let Ok(Some(m)) = s.next_message() {
            let mut out = Vec::new();
            m.emit(&mut out);
        }
    }
});
