//! Format detection and whatever reader it picks, over arbitrary bytes.
#![no_main]

use lander_trace::format::{detect, TraceReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = detect(data);
    let bound = data.len() / 12 + 2;
    if let Ok(mut r) = TraceReader::from_bytes("fuzz", data.to_vec(), None) {
        for _ in 0..bound {
            match r.next() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
        panic!("reader did not end within {bound} steps");
    }
});
