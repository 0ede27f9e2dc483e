//! The leak property: hostile frames (random structure, options, extension headers,
//! tunnels, truncations, every link type; see [`crate::testgen`]) with marker addresses in
//! every place a byte can hide leave no marker and no payload run after a walk; and any
//! frame, mutated at random, ends within the work bound.

use super::*;
use crate::testgen::{generate, Hostile};
use proptest::prelude::*;

/// Walks `h` with `payload` and MAC addresses zeroed; returns what survived.
fn leaks(h: &Hostile, payload: Payload) -> (Vec<String>, WalkOutcome, Vec<u8>) {
    let policy = Policy {
        payload,
        mac: MacPolicy::Zero,
        ..Policy::default()
    };
    let mut frame = h.frame.clone();
    let out = walk(h.link, &mut frame, &policy, &mut Constant);
    frame.truncate(out.caplen);
    (h.leaks(&frame), out, frame)
}

fn check(choices: &[u8]) -> Result<(), TestCaseError> {
    let h = generate(choices);
    for payload in [Payload::Drop, Payload::Zero] {
        let (found, out, kept) = leaks(&h, payload);
        prop_assert!(
            found.is_empty(),
            "{payload:?}, link {}: {found:?}\nout {out:?}\nframe {:02x?}\nkept  {kept:02x?}",
            h.link,
            h.frame
        );
        prop_assert!(out.caplen <= h.frame.len() && out.work <= MAX_WORK);
    }
    Ok(())
}

/// Cases per property: 3000, or `WALKER_CASES` (for longer runs).
pub(super) fn cases() -> u32 {
    std::env::var("WALKER_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn hostile_frames_leak_no_marker_and_no_payload(
        choices in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        check(&choices)?;
    }

    /// Byte flips anywhere (the structure no longer what was meant): no leak claim, but the
    /// walk ends within the work bound, never grows the frame and never panics.
    #[test]
    fn mutated_frames_end_within_the_work_bound(
        choices in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
        link in 0usize..8,
    ) {
        let h = generate(&choices);
        let mut frame = h.frame.clone();
        for (at, b) in flips {
            if let Some(x) = frame.get_mut(usize::from(at) % h.frame.len().max(1)) {
                *x ^= b;
            }
        }
        for l in [h.link, link::ALL[link]] {
            let mut f = frame.clone();
            let out = walk(l, &mut f, &Policy { payload: Payload::Zero, ..Policy::default() }, &mut Constant);
            prop_assert!(out.caplen <= frame.len() && out.payload_at <= out.caplen);
            prop_assert!(out.work <= MAX_WORK);
        }
    }
}

/// With no choices at all the generator makes its simplest frame: the stream always ends.
#[test]
fn the_generator_ends_on_any_stream() {
    for fill in [0u8, 0x7f, 0xff] {
        let h = generate(&vec![fill; 4096]);
        assert!(h.frame.len() < 1 << 16);
    }
    assert!(check(&[]).is_ok());
}

/// A hop-by-hop header of 2046 Pad1 bytes costs more than the work bound: cut there.
#[test]
fn pad1_floods_hit_the_work_bound() {
    let (s, d): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let hbh = lander_trace::synth::build::ipv6_ext(proto::NONE, &[0u8; 2040]);
    let mut p = lander_trace::synth::build::ipv6(s, d, proto::HOPOPT, 64, &hbh);
    let out = walk(link::IPV6, &mut p, &Policy::default(), &mut Constant);
    assert_eq!(out.reason, Some(Reason::WorkBound));
    assert_eq!(out.work, MAX_WORK);
}
