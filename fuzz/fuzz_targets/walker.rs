//! The packet walker on arbitrary bytes: never panics, never grows a frame, stays within
//! its work bound, and under every payload policy leaves no byte past the cut it reports.
//!
//! The first byte selects the link type (low 3 bits, in `link::ALL` order), the checksum
//! policy (bit 5), the MPLS policy (bits 3-4) and the payload policy (top 2 bits).
#![no_main]

use std::sync::OnceLock;

use lander_anonymize::walker::{
    link, walk, Checksums, MacKey, MacPolicy, MplsPolicy, Payload, Policy, MAX_WORK,
};
use lander_anonymize::{Anonymizer, CachedAnonymizer, Key, MapOptions, Mapping};
use libfuzzer_sys::fuzz_target;

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
        mac: MacPolicy::Scramble(MacKey([7; 32])),
        mpls: MplsPolicy::ALL[usize::from(selector >> 3) & 3].1,
    };
    let mut anon = CachedAnonymizer::new(prototype().clone());
    let mut buf = frame.to_vec();
    let out = walk(
        link::ALL[usize::from(selector & 7)],
        &mut buf,
        &policy,
        &mut anon,
    );
    assert!(out.caplen <= frame.len());
    assert!(out.payload_at <= out.caplen);
    assert!(out.work <= MAX_WORK);
});
