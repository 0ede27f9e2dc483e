//! Structure-aware: the input is the choice stream of the hostile frame generator (see
//! `lander_anonymize::testgen`), so mutations change headers, options, tunnels and
//! truncations rather than random bytes. After a walk with the payload dropped (or zeroed)
//! and MAC addresses zeroed, no marker address and no 8-byte payload run may be left.
#![no_main]

use lander_anonymize::testgen::generate;
use lander_anonymize::walker::{walk, MacPolicy, Payload, Policy, Rewriter, MAX_WORK};
use libfuzzer_sys::fuzz_target;

/// Every address becomes one constant: no fixed points to tell from leaks.
struct Constant;

impl Rewriter for Constant {
    fn v4(&mut self, _: [u8; 4]) -> [u8; 4] {
        [198, 18, 0, 1]
    }

    fn v6(&mut self, _: [u8; 16]) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = 1;
        a
    }
}

fuzz_target!(|data: &[u8]| {
    let h = generate(data);
    for payload in [Payload::Drop, Payload::Zero] {
        let policy = Policy {
            payload,
            mac: MacPolicy::Zero,
            ..Policy::default()
        };
        let mut frame = h.frame.clone();
        let out = walk(h.link, &mut frame, &policy, &mut Constant);
        assert!(out.caplen <= h.frame.len() && out.work <= MAX_WORK);
        let leaks = h.leaks(&frame[..out.caplen]);
        assert!(
            leaks.is_empty(),
            "{payload:?} link {}: {leaks:?}\nframe {:02x?}\nkept {:02x?}",
            h.link,
            h.frame,
            &frame[..out.caplen]
        );
    }
});
