//! The verifier against scrubbed traces: clean ones pass, each planted leak is found.

use std::net::Ipv4Addr;
use std::path::Path;

use lander_trace::format::{TraceReader, TraceWriter};
use lander_trace::synth::build::{self, ethertype, proto, Tcp, V4Opts};
use lander_trace::synth::{generate, Profile};
use lander_trace::{Format, LinkType, OwnedRecord};

use super::*;
use crate::scrub::{scrub_stream, ScrubConfig};
use crate::walker::{Payload, Policy};
use crate::{Anonymizer, Key, MapOptions, Mapping};

fn anonymizer() -> Anonymizer {
    let key = Key::Pan {
        mapping: Mapping::CryptoPan,
        bytes: *b"verify-test-key-0123456789abcdef",
    };
    Anonymizer::new(&key, &MapOptions::default()).unwrap()
}

fn write(records: &[OwnedRecord]) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), Format::Pcap, LinkType::ETHERNET, 65_535).unwrap();
    records
        .iter()
        .for_each(|r| w.write(&r.as_record()).unwrap());
    w.finish().unwrap()
}

fn read(bytes: &[u8]) -> Vec<OwnedRecord> {
    let mut r = TraceReader::from_bytes("mem", bytes.to_vec(), None).unwrap();
    std::iter::from_fn(|| r.next_owned().unwrap()).collect()
}

fn scrub(raw: &[u8], payload: Payload) -> Vec<u8> {
    let config = ScrubConfig {
        policy: Policy {
            payload,
            ..Policy::default()
        },
        threads: 2,
        ..ScrubConfig::default()
    };
    let mut out = Vec::new();
    let reader = TraceReader::from_bytes("raw", raw.to_vec(), None).unwrap();
    scrub_stream(reader, &mut out, Path::new("anon"), &anonymizer(), &config).unwrap();
    out
}

fn check(raw: &[u8], anon: &[u8], mapping: Option<Anonymizer>) -> Report {
    let open = |b: &[u8]| {
        let b = b.to_vec();
        move || TraceReader::from_bytes("mem", b.clone(), None)
    };
    let options = VerifyOptions {
        threads: 2,
        limit: 1000,
        mapping,
        ..VerifyOptions::default()
    };
    verify(&open(raw), &open(anon), &options).unwrap()
}

fn kinds(r: &Report) -> Vec<(u64, Kind)> {
    r.findings.iter().map(|f| (f.frame, f.kind)).collect()
}

fn profile(p: Profile, n: u64) -> Vec<u8> {
    write(&generate(p, 3, n).collect::<Vec<_>>())
}

#[test]
fn every_profile_scrubbed_is_clean() {
    for p in [
        Profile::SynFlood,
        Profile::UdpAmplification,
        Profile::Mixed,
        Profile::Edge,
    ] {
        let raw = profile(p, 3_000);
        for payload in [Payload::Drop, Payload::Zero] {
            let anon = scrub(&raw, payload);
            let r = check(&raw, &anon, None);
            assert!(r.clean(), "{p:?} {payload:?}: {:#?}", r.findings);
            assert_eq!((r.raw_packets, r.anon_packets), (3_000, 3_000));
            assert!(r.raw_v4_addresses > 0);
        }
    }
}

#[test]
fn the_raw_trace_against_itself_leaks_everything() {
    let raw = profile(Profile::Mixed, 200);
    let r = check(&raw, &raw, None);
    assert_eq!(r.leaky_packets, 200);
    assert!(
        r.by_kind.contains_key("address-unchanged"),
        "{:?}",
        r.by_kind
    );
    assert!(r.by_kind.contains_key("payload-run"), "{:?}", r.by_kind);
    assert_eq!(r.findings[0].frame, 1, "frames are 1-based");
}

/// A scrubbed trace (payload zeroed) of `raw`, with `plant` applied to its record `index`.
fn planted(raw: &[u8], index: usize, plant: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut recs = read(&scrub(raw, Payload::Zero));
    plant(&mut recs[index].data);
    write(&recs)
}

fn syn_with_options(options: &[u8], payload: &[u8]) -> Vec<u8> {
    let (s, d) = (
        Ipv4Addr::new(192, 0, 2, 10),
        Ipv4Addr::new(198, 51, 100, 20),
    );
    let seg = Tcp {
        sport: 1000,
        dport: 80,
        seq: 1,
        ack: 0,
        flags: 2,
        window: 1024,
        options,
        payload,
    }
    .build(s.into(), d.into());
    let ip = build::ipv4(s, d, proto::TCP, V4Opts::default(), &seg);
    build::ethernet(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        &[],
        ethertype::IPV4,
        &ip,
    )
}

fn trace_of(frames: Vec<Vec<u8>>) -> Vec<u8> {
    let recs: Vec<OwnedRecord> = frames
        .into_iter()
        .enumerate()
        .map(|(i, data)| OwnedRecord {
            ts_ns: 1_700_000_000_000_000_000 + i as u64 * 1000,
            wire_len: data.len() as u32,
            link_type: LinkType::ETHERNET,
            interface: 0,
            drops: 0,
            data,
        })
        .collect();
    write(&recs)
}

const PAYLOAD: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[test]
fn raw_address_in_a_tcp_option_is_found() {
    let raw = trace_of(vec![syn_with_options(&[], PAYLOAD); 3]);
    // an experimental option carrying the raw source address
    let anon = planted(&raw, 1, |f| {
        f[46] = 0x50 + 0x10; // data offset 6 words: the first payload word becomes options
        f[54..60].copy_from_slice(&[253, 6, 192, 0, 2, 10]);
    });
    let r = check(&raw, &anon, None);
    let k = kinds(&r);
    assert!(k.contains(&(2, Kind::Address)), "{r:#?}");
    assert!(k.contains(&(2, Kind::UnexplainedHeaderByte)), "{r:#?}");
    assert_eq!(r.leaky_packets, 1);
}

#[test]
fn raw_address_in_an_ipv4_option_is_found() {
    // the traceroute option (82) carries the originator's address
    let opts = [82, 12, 0, 1, 0, 2, 0, 3, 192, 0, 2, 10];
    let (s, d) = (
        Ipv4Addr::new(192, 0, 2, 10),
        Ipv4Addr::new(198, 51, 100, 20),
    );
    let udp = build::udp(s.into(), d.into(), 5, 6, PAYLOAD);
    let v4 = V4Opts {
        options: &opts,
        ..V4Opts::default()
    };
    let ip = build::ipv4(s, d, proto::UDP, v4, &udp);
    let frame = build::ethernet([2; 6], [4; 6], &[], ethertype::IPV4, &ip);
    let raw = trace_of(vec![frame.clone(), frame]);
    let anon = planted(&raw, 0, |f| f[34..46].copy_from_slice(&opts));
    let r = check(&raw, &anon, None);
    let k = kinds(&r);
    assert!(k.contains(&(1, Kind::Address)), "{r:#?}");
    assert!(k.contains(&(1, Kind::UnexplainedHeaderByte)), "{r:#?}");
}

#[test]
fn raw_payload_is_found_in_place_and_moved() {
    let mut frames: Vec<Vec<u8>> = (0..5).map(|_| syn_with_options(&[], PAYLOAD)).collect();
    frames[4] = syn_with_options(&[], b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
    let raw = trace_of(frames);
    let kept = scrub(&raw, Payload::Keep(usize::MAX));
    let r = check(&raw, &kept, None);
    assert_eq!(r.by_kind.get("payload-run"), Some(&4), "{r:#?}");
    // frame 1's payload pasted into frame 5 (whose own payload is uninformative)
    let anon = planted(&raw, 4, |f| f[54..62].copy_from_slice(&PAYLOAD[3..11]));
    let r = check(&raw, &anon, None);
    assert_eq!(kinds(&r), vec![(5, Kind::PayloadRun)], "{r:#?}");
    assert!(r.findings[0].detail.contains("raw frame 1"), "{r:#?}");
}

#[test]
fn raw_address_moved_to_another_packet_and_at_odd_alignment() {
    let raw = profile(Profile::SynFlood, 1_000);
    let first = read(&raw)[0].data[26..30].to_vec();
    let anon = planted(&raw, 899, |f| {
        f.extend_from_slice(&[0; 9]);
        let n = f.len();
        f[n - 7..n - 3].copy_from_slice(&first);
    });
    // the record grew: its wire length too
    let mut recs = read(&anon);
    recs[899].wire_len = read(&raw)[899].wire_len;
    let r = check(&raw, &write(&recs), None);
    assert_eq!(kinds(&r), vec![(900, Kind::Address)], "{r:#?}");
    assert!(r.findings[0].detail.contains("raw frame 1"), "{r:#?}");
    assert_eq!(r.findings[0].offset, Some(54 + 2));
}

#[test]
fn raw_address_in_an_address_field_of_another_packet_is_caught_with_the_key() {
    let raw = profile(Profile::SynFlood, 100);
    let first = read(&raw)[0].data[26..30].to_vec();
    let anon = planted(&raw, 50, |f| f[30..34].copy_from_slice(&first));
    let without = check(&raw, &anon, None);
    assert!(
        without.clean(),
        "a collision by chance without the key: {without:#?}"
    );
    assert_eq!(without.collisions, 1);
    let with = check(&raw, &anon, Some(anonymizer()));
    assert_eq!(kinds(&with), vec![(51, Kind::Address)], "{with:#?}");
}

#[test]
fn raw_addresses_inside_a_tunnel_are_found() {
    let inner = syn_with_options(&[], PAYLOAD)[14..].to_vec();
    let (s, d) = (Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, 2));
    let gre = [&[0u8, 0, 0x08, 0][..], &inner].concat();
    let ip = build::ipv4(s, d, proto::GRE, V4Opts::default(), &gre);
    let frame = build::ethernet([2; 6], [4; 6], &[], ethertype::IPV4, &ip);
    let raw = trace_of(vec![frame.clone(), frame.clone()]);
    // a scrubber that anonymized the outer header only
    let mut anon = read(&raw);
    anon[1].data[26..34].copy_from_slice(&[10, 1, 2, 3, 10, 4, 5, 6]);
    let r = check(&raw, &write(&anon), None);
    let unchanged = r.findings.iter().filter(|f| f.frame == 2);
    let offsets: Vec<_> = unchanged.map(|f| (f.kind, f.offset)).collect();
    assert!(
        offsets.contains(&(Kind::AddressUnchanged, Some(14 + 20 + 4 + 12))),
        "{r:#?}"
    );
}

#[test]
fn fixed_points_are_told_apart_with_the_mapping() {
    let raw = profile(Profile::SynFlood, 10);
    // an "anonymized" trace that left frame 3's source as it was
    let mut anon = read(&scrub(&raw, Payload::Drop));
    let src = read(&raw)[2].data[26..30].to_vec();
    anon[2].data[26..30].copy_from_slice(&src);
    let r = check(&raw, &write(&anon), None);
    assert_eq!(kinds(&r), vec![(3, Kind::AddressUnchanged)]);
    assert!(r.findings[0].detail.contains(FIXED_POINT_HINT));
    let r = check(&raw, &write(&anon), Some(anonymizer()));
    assert_eq!(kinds(&r), vec![(3, Kind::AddressUnchanged)]);
    assert!(!r.findings[0].detail.contains(FIXED_POINT_HINT));
}

#[test]
fn unmatched_records_are_reported() {
    let raw = profile(Profile::SynFlood, 10);
    let mut anon = read(&scrub(&raw, Payload::Drop));
    anon[5].ts_ns += 1_000_000;
    anon.remove(7); // and one dropped, as --drop-unparsed does
    let r = check(&raw, &write(&anon), None);
    assert!(!r.clean());
    assert_eq!(
        kinds(&r),
        vec![(6, Kind::Unmatched)],
        "the others still pair: {r:#?}"
    );
    assert_eq!((r.raw_packets, r.anon_packets, r.unmatched), (10, 9, 1));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whatever the scrubber's walker does with addresses hidden in options it may not know,
/// the verifier reports every one the output still holds (the verifier it replaced, which
/// asked the walker where addresses are, called these outputs clean).
#[test]
fn addresses_the_walker_leaves_in_options_are_reported() {
    let hidden = [192, 0, 2, 10]; // the packets' own source address
    let traceroute = [82, 12, 0, 1, 0, 2, 0, 3, 192, 0, 2, 10];
    let (s, d) = (
        Ipv4Addr::new(192, 0, 2, 10),
        Ipv4Addr::new(198, 51, 100, 20),
    );
    let udp = build::udp(s.into(), d.into(), 5, 6, PAYLOAD);
    let v4 = V4Opts {
        options: &traceroute,
        ..V4Opts::default()
    };
    let ip = build::ipv4(s, d, proto::UDP, v4, &udp);
    let frames = vec![
        build::ethernet([2; 6], [4; 6], &[], ethertype::IPV4, &ip),
        syn_with_options(&[253, 6, 192, 0, 2, 10], PAYLOAD), // experimental TCP option
        syn_with_options(&[30, 8, 0x30, 1, 192, 0, 2, 10], PAYLOAD), // MPTCP ADD_ADDR
    ];
    let raw = trace_of(frames);
    let anon = scrub(&raw, Payload::Drop);
    let r = check(&raw, &anon, Some(anonymizer()));
    for (i, rec) in read(&anon).iter().enumerate() {
        let frame = i as u64 + 1;
        let reported = r.findings.iter().any(|f| f.frame == frame);
        if contains(&rec.data, &hidden) {
            assert!(reported, "frame {frame} holds the raw address: {r:#?}");
        }
    }
}
