//! The packet walker on arbitrary bytes: never panics, never grows a frame, and under every
//! payload policy leaves no byte past the cut it reports.
#![no_main]

use std::sync::OnceLock;

use lander_anonymize::walker::{walk, Checksums, MacPolicy, Payload, Policy};
use lander_anonymize::{Anonymizer, CachedAnonymizer, Key, MapOptions, Mapping};
use libfuzzer_sys::fuzz_target;

const LINKS: [u32; 8] = [0, 1, 101, 108, 113, 228, 229, 276];

fn prototype() -> &'static Anonymizer {
    static ANON: OnceLock<Anonymizer> = OnceLock::new();
    ANON.get_or_init(|| {
        let key = Key::Pan {
            mapping: Mapping::CryptoPan,
            bytes: *b"fuzz-key-fuzz-key-fuzz-key-fuzz!",
        };
        Anonymizer::new(&key, &MapOptions::default()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let payload = match selector >> 6 {
        0 => Payload::Drop,
        1 => Payload::Zero,
        _ => Payload::Keep(usize::from(selector & 0x1f)),
    };
    let policy = Policy {
        payload,
        checksums: if selector & 0x20 == 0 {
            Checksums::Fix
        } else {
            Checksums::Zero
        },
        mac: MacPolicy::scramble([1, 2, 3, 4, 5, 6]),
    };
    let mut anon = CachedAnonymizer::new(prototype().clone());
    let mut buf = frame.to_vec();
    let out = walk(
        LINKS[usize::from(selector & 7)],
        &mut buf,
        &policy,
        &mut anon,
    );
    assert!(out.caplen <= frame.len());
    assert!(out.payload_at <= frame.len());
});
