//! Parses arbitrary bytes as an OpenFlow message; whatever parses must emit bytes that parse
//! back to the same value, and emitting that value again must give the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_codec::openflow::OfpMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = OfpMessage::parse(data) {
        let bytes = m.to_vec();
        let again = OfpMessage::parse(&bytes).expect("what we emit parses");
        assert_eq!(again, m, "parse(emit(x)) == x");
        assert_eq!(again.to_vec(), bytes, "emit is stable");
    }
});
