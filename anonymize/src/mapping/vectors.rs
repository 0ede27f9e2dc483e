//! The published vectors (copied under `fixtures/vectors/`), checked bit for bit.

use std::net::IpAddr;
use std::path::Path;

use super::{Anonymizer, MapOptions};
use crate::key::{Key, Mapping};

const CRYPTOPAN_KEY: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";
const CRYPTOPANT_KEY: &str = "03:03:86bdbaa5d5a46ef72354297d42eb4e66:48ffc62219372bbf05a28f65d25ccacb1c697e8fd0b108f3fd216ecd765647d1::f0732d8b37ae4c666b4a1a011cf10e79";

fn pairs(name: &str) -> Vec<(IpAddr, IpAddr)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let pairs: Vec<_> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert!(pairs.len() >= 40, "{name}: only {} pairs", pairs.len());
    pairs
}

fn anonymizer(mapping: Mapping, key: &str) -> Anonymizer {
    let key = Key::parse(mapping, Path::new("vector key"), key.as_bytes()).unwrap();
    Anonymizer::new(&key, &MapOptions::default()).unwrap()
}

fn check(anon: &Anonymizer, raw: IpAddr, want: IpAddr) {
    match (raw, want) {
        (IpAddr::V4(r), IpAddr::V4(w)) => {
            assert_eq!(anon.anon_v4(r.into()), u32::from(w), "{r}");
            assert_eq!(anon.deanon_v4(w.into()), u32::from(r), "reverse {w}");
        }
        (IpAddr::V6(r), IpAddr::V6(w)) => {
            assert_eq!(anon.anon_v6(r.into()), u128::from(w), "{r}");
            assert_eq!(anon.deanon_v6(w.into()), u128::from(r), "reverse {w}");
        }
        _ => panic!("mixed families in a vector line"),
    }
}

#[test]
fn cryptopan_reference_ipv4() {
    let anon = anonymizer(Mapping::CryptoPan, CRYPTOPAN_KEY);
    for (raw, want) in pairs("cryptopan-reference-ipv4.txt") {
        check(&anon, raw, want);
    }
}

#[test]
fn cryptopant_aes_ipv4() {
    let anon = anonymizer(Mapping::CryptoPant, CRYPTOPANT_KEY);
    for (raw, want) in pairs("cryptopant-aes-ipv4.txt") {
        check(&anon, raw, want);
    }
}

#[test]
fn cryptopant_aes_ipv6() {
    let anon = anonymizer(Mapping::CryptoPant, CRYPTOPANT_KEY);
    for (raw, want) in pairs("cryptopant-aes-ipv6.txt") {
        check(&anon, raw, want);
    }
}

#[test]
fn libtrace_differs_from_cryptopan_only_by_the_pad() {
    let pan = anonymizer(Mapping::CryptoPan, CRYPTOPAN_KEY);
    let lt = anonymizer(Mapping::Libtrace, CRYPTOPAN_KEY);
    let a = 0x8000_0001u32;
    assert_ne!(pan.anon_v4(a), lt.anon_v4(a));
    // prefix preserving: a shared /24 stays shared
    assert_eq!(lt.anon_v4(a) >> 8, lt.anon_v4(a ^ 0x7f) >> 8);
}
