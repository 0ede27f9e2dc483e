//! The pcapng reader over arbitrary bytes: no panic, and it always ends.
#![no_main]

use lander_trace::format::TraceReader;
use lander_trace::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bound = data.len() / 12 + 2;
    if let Ok(mut r) = TraceReader::from_bytes("fuzz", data.to_vec(), Some(Format::Pcapng)) {
        for _ in 0..bound {
            match r.next() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
        panic!("reader did not end within {bound} steps");
    }
});
