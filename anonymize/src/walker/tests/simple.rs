//! The walk of the simple shape (Ethernet, IPv4 without options or IPv6 without extension
//! headers, TCP without options or UDP) against the general walk: same bytes, same outcome, for frames near that shape in every
//! way one field can differ, under every policy.

use super::*;
use proptest::prelude::*;

/// An address rewriter that moves every bit (so checksum deltas are never trivial).
struct Mix;

impl Rewriter for Mix {
    fn v4(&mut self, a: [u8; 4]) -> [u8; 4] {
        (u32::from_be_bytes(a).wrapping_mul(0x9e37_79b9) ^ 0x5a5a_1234).to_be_bytes()
    }

    fn v6(&mut self, a: [u8; 16]) -> [u8; 16] {
        (u128::from_be_bytes(a).wrapping_mul(0x9e37_79b9) ^ 0x5a5a_1234).to_be_bytes()
    }
}

/// A frame of the simple shape, then changed where `tweaks` say: the fields that decide
/// the shape take values inside and outside it.
#[derive(Clone, Debug)]
struct Near {
    v6: bool,
    tcp: bool,
    ethertype: u16,
    /// The IPv4 version and header length, or the first byte of an IPv6 header.
    ver_ihl: u8,
    /// Added to the true total (or payload) length (wrapping); `i16::MIN` sets it to 0.
    total_skew: i16,
    frag: u16,
    protocol: Option<u8>,
    doff: u8,
    ports: (u16, u16),
    checksum: Option<u16>,
    payload: usize,
    /// Bytes cut from the end (or, negative, of trailer added).
    cut: i16,
    fill: u8,
}

fn near() -> impl Strategy<Value = Near> {
    let ethertype =
        prop_oneof![8 => Just(None), 1 => Just(Some(0x8100u16)), 1 => any::<u16>().prop_map(Some)];
    let ver_ihl =
        prop_oneof![8 => Just(None), 1 => Just(Some(0x46u8)), 1 => any::<u8>().prop_map(Some)];
    let skew =
        prop_oneof![6 => Just(0i16), 3 => -30i16..30, 1 => Just(i16::MIN), 1 => any::<i16>()];
    let frag = prop_oneof![6 => Just(0u16), 2 => Just(0x4000), 2 => any::<u16>()];
    let protocol = prop_oneof![8 => Just(None), 2 => any::<u8>().prop_map(Some)];
    let doff = prop_oneof![6 => Just(5u8), 4 => 0u8..16];
    let port = prop_oneof![
        6 => any::<u16>(),
        1 => Just(4789u16),
        1 => Just(6081),
        1 => Just(2152),
        1 => Just(1701)
    ];
    let checksum =
        prop_oneof![6 => Just(None), 2 => Just(Some(0u16)), 2 => any::<u16>().prop_map(Some)];
    let cut = prop_oneof![5 => Just(0i16), 3 => 0i16..70, 2 => -20i16..0];
    let shape = (
        any::<(bool, bool)>(),
        ethertype,
        ver_ihl,
        skew,
        frag,
        protocol,
    );
    let rest = (
        doff,
        (port.clone(), port),
        checksum,
        0usize..64,
        cut,
        any::<u8>(),
    );
    (shape, rest).prop_map(|(shape, rest)| {
        let ((v6, tcp), ethertype, ver_ihl, total_skew, frag, protocol) = shape;
        let (doff, ports, checksum, payload, cut, fill) = rest;
        Near {
            v6,
            tcp,
            ethertype: ethertype.unwrap_or(if v6 { 0x86dd } else { 0x0800 }),
            ver_ihl: ver_ihl.unwrap_or(if v6 { 0x60 } else { 0x45 }),
            total_skew,
            frag,
            protocol,
            doff,
            ports,
            checksum,
            payload,
            cut,
            fill,
        }
    })
}

impl Near {
    fn frame(&self) -> Vec<u8> {
        let (ip_len, l4_len) = (if self.v6 { 40 } else { 20 }, if self.tcp { 20 } else { 8 });
        let mut f: Vec<u8> = (0..14 + ip_len + l4_len + self.payload)
            .map(|i| (i as u8).wrapping_mul(31) ^ self.fill)
            .collect();
        f[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
        let upper = l4_len + self.payload;
        let default = if self.tcp { proto::TCP } else { proto::UDP };
        let protocol = self.protocol.unwrap_or(default);
        let skew = |len: usize| match self.total_skew {
            i16::MIN => 0,
            skew => (len as i32 + i32::from(skew)) as u16,
        };
        f[14] = self.ver_ihl;
        let (l4, pseudo) = if self.v6 {
            f[18..20].copy_from_slice(&skew(upper).to_be_bytes());
            f[20] = protocol;
            (54, checksum::sum(&f[22..54]) + u64::from(protocol))
        } else {
            f[16..18].copy_from_slice(&skew(20 + upper).to_be_bytes());
            f[20..22].copy_from_slice(&self.frag.to_be_bytes());
            f[23] = protocol;
            let ip_sum = checksum::finish(checksum::sum(&[&f[14..24], &f[26..34]].concat()));
            f[24..26].copy_from_slice(&ip_sum.to_be_bytes());
            (34, checksum::sum(&f[26..34]) + u64::from(protocol))
        };
        f[l4..l4 + 2].copy_from_slice(&self.ports.0.to_be_bytes());
        f[l4 + 2..l4 + 4].copy_from_slice(&self.ports.1.to_be_bytes());
        let sum_at = if self.tcp {
            f[l4 + 12] = (self.doff << 4) | (f[l4 + 12] & 0x0f);
            l4 + 16
        } else {
            f[l4 + 4..l4 + 6].copy_from_slice(&(upper as u16).to_be_bytes());
            l4 + 6
        };
        let value = self.checksum.unwrap_or_else(|| {
            f[sum_at..sum_at + 2].fill(0);
            checksum::checksum(pseudo + upper as u64, &f[l4..])
        });
        f[sum_at..sum_at + 2].copy_from_slice(&value.to_be_bytes());
        match usize::try_from(self.cut) {
            Ok(cut) => f.truncate(f.len().saturating_sub(cut)),
            Err(_) => f.extend(std::iter::repeat_n(0xee, self.cut.unsigned_abs().into())),
        }
        f
    }
}

fn policies() -> Vec<Policy> {
    let key = MacKey([5; 32]);
    let mut all = Vec::new();
    for payload in [
        Payload::Drop,
        Payload::Keep(0),
        Payload::Keep(7),
        Payload::Keep(4096),
        Payload::Zero,
    ] {
        for mac in [
            MacPolicy::Keep,
            MacPolicy::Zero,
            MacPolicy::Scramble(key),
            MacPolicy::ScrambleKeepOui(key),
        ] {
            all.push(Policy {
                payload,
                mac,
                ..Policy::default()
            });
        }
    }
    for checksums in [Checksums::Zero, Checksums::Keep] {
        all.push(Policy {
            checksums,
            ..Policy::default()
        });
    }
    all
}

/// Walks `frame` both ways; the bytes and outcomes must agree. True when the simple walk
/// took the frame.
fn agree(frame: &[u8], policy: &Policy, walker: &mut Walker) -> Result<bool, TestCaseError> {
    let (mut simple, mut general) = (frame.to_vec(), frame.to_vec());
    let a = walker.walk_with(link::ETHERNET, &mut simple, policy, &mut Mix, true);
    let b = walker.walk_with(link::ETHERNET, &mut general, policy, &mut Mix, false);
    prop_assert_eq!(a, b, "{:?}\nframe {:02x?}", policy, frame);
    prop_assert_eq!(&simple, &general, "{:?}\nframe {:02x?}", policy, frame);
    let mut probe = frame.to_vec();
    Ok(Walk {
        buf: &mut probe,
        policy,
        rw: &mut Mix,
        scopes: &mut [Scope::default(); MAX_SCOPES],
        n_scopes: 0,
        depth: 0,
        work: 0,
        ip_headers: 0,
        neutral: Neutralised::default(),
        macs: None,
    }
    .simple(link::ETHERNET)
    .is_some())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(super::leak::cases()))]

    #[test]
    fn the_simple_walk_gives_the_general_walks_bytes(n in near()) {
        let frame = n.frame();
        let mut walker = Walker::new();
        for policy in policies() {
            agree(&frame, &policy, &mut walker)?;
        }
    }
}

/// A TCP segment over IPv4 of the simple shape, with a 10-byte payload.
fn plain() -> Near {
    Near {
        v6: false,
        tcp: true,
        ethertype: 0x0800,
        ver_ihl: 0x45,
        total_skew: 0,
        frag: 0,
        protocol: None,
        doff: 5,
        ports: (1234, 80),
        checksum: None,
        payload: 10,
        cut: 0,
        fill: 0,
    }
}

/// The frames the simple walk is for are taken by it (or the property above tests nothing).
#[test]
fn common_frames_take_the_simple_walk() {
    let mut walker = Walker::new();
    let policy = Policy::default();
    for profile in [Profile::SynFlood, Profile::Mixed] {
        let (mut taken, mut all) = (0, 0);
        for rec in generate(profile, 7, 2000) {
            all += 1;
            taken += usize::from(agree(&rec.data, &policy, &mut walker).unwrap());
        }
        assert!(taken * 4 >= all, "{profile:?}: {taken} of {all}");
    }
    let base = plain();
    for near in [
        base.clone(),
        Near {
            tcp: false,
            ..base.clone()
        },
        Near {
            tcp: false,
            checksum: Some(0),
            ..base.clone()
        },
        Near {
            cut: -6,
            ..base.clone()
        },
    ] {
        assert!(
            agree(&near.frame(), &policy, &mut walker).unwrap(),
            "{near:?}"
        );
    }
    for near in [
        Near {
            ver_ihl: 0x46,
            ..base.clone()
        },
        Near {
            frag: 1,
            ..base.clone()
        },
        Near {
            doff: 6,
            ..base.clone()
        },
        Near {
            tcp: false,
            ports: (1, 4789),
            ..base.clone()
        },
        Near {
            cut: 30,
            ..base.clone()
        },
    ] {
        assert!(
            !agree(&near.frame(), &policy, &mut walker).unwrap(),
            "{near:?}"
        );
    }
}

/// A UDP checksum that comes out as zero is written as 0xffff (zero says "no checksum"), by
/// both walks, recomputed (the datagram kept whole) or updated (its payload cut): the frame
/// is searched for, one field value after another, until the general walk meets the case.
#[test]
fn a_udp_checksum_that_comes_out_zero_is_sent_as_all_ones() {
    let mut walker = Walker::new();
    let base = Near {
        tcp: false,
        ports: (1234, 53),
        payload: 0,
        ..plain()
    };
    for (v6, payload) in [(false, 0), (false, 10), (true, 0), (true, 10)] {
        let policy = Policy::default();
        let at = if v6 { 14 + 40 + 6 } else { 14 + 20 + 6 };
        let found = (1..=u16::MAX).find_map(|value| {
            // kept whole, the checksum is recomputed: the source port moves it; cut, it is
            // updated from the old one
            let near = match payload {
                0 => Near {
                    v6,
                    ver_ihl: if v6 { 0x60 } else { 0x45 },
                    ethertype: if v6 { 0x86dd } else { 0x0800 },
                    ports: (value, 53),
                    ..base.clone()
                },
                _ => Near {
                    v6,
                    ver_ihl: if v6 { 0x60 } else { 0x45 },
                    ethertype: if v6 { 0x86dd } else { 0x0800 },
                    payload,
                    checksum: Some(value),
                    ..base.clone()
                },
            };
            let frame = near.frame();
            let mut out = frame.clone();
            walker.walk_with(link::ETHERNET, &mut out, &policy, &mut Mix, false);
            (out[at..at + 2] == [0xff, 0xff]).then_some(frame)
        });
        let frame = found.unwrap_or_else(|| panic!("v6 {v6} payload {payload}: no case found"));
        assert!(
            agree(&frame, &policy, &mut walker).unwrap(),
            "{v6} {payload}"
        );
    }
}
