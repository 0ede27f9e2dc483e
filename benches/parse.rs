//! Parser throughput: each format over an in-memory trace of minimum-size SYN-like frames,
//! through the slice reader and through the stream reader at several buffer sizes.

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lander_trace::format::{TraceReader, TraceWriter};
use lander_trace::{Format, LinkType, Record};

const PACKETS: u32 = 100_000;

/// A 54-byte Ethernet/IPv4/TCP SYN with source address `i`.
fn syn(i: u32) -> [u8; 54] {
    let mut f = [0u8; 54];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[22..24].copy_from_slice(&[64, 6]);
    f[26..30].copy_from_slice(&i.to_be_bytes());
    f[30..34].copy_from_slice(&[192, 0, 2, 1]);
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[46] = 0x50;
    f[47] = 0x02;
    f
}

fn trace(format: Format) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), format, LinkType::ETHERNET, 65535).unwrap();
    for i in 0..PACKETS {
        let data = syn(i);
        let rec = Record {
            ts_ns: 1_700_000_000_000_000_000 + u64::from(i) * 1_000,
            wire_len: 54,
            link_type: LinkType::ETHERNET,
            interface: 0,
            drops: 0,
            data: &data,
        };
        w.write(&rec).unwrap();
    }
    w.finish().unwrap()
}

fn drain(mut r: TraceReader) -> u64 {
    let mut n = 0u64;
    while let Some(rec) = r.next().unwrap() {
        n += u64::from(rec.data[53]) + 1;
    }
    n
}

fn parse(c: &mut Criterion) {
    for format in [Format::Pcap, Format::Pcapng, Format::Erf] {
        let bytes = trace(format);
        let mut g = c.benchmark_group(format!("parse/{}", format.name()));
        g.throughput(Throughput::Elements(PACKETS.into()));
        g.bench_function("slice", |b| {
            b.iter(|| drain(TraceReader::from_bytes("bench", bytes.clone(), Some(format)).unwrap()))
        });
        for buffer in [4 << 10, 64 << 10, 1 << 20] {
            g.bench_with_input(BenchmarkId::new("stream", buffer), &buffer, |b, &buffer| {
                b.iter(|| {
                    let src = Box::new(Cursor::new(bytes.clone()));
                    drain(
                        TraceReader::from_stream_with("bench", src, Some(format), buffer).unwrap(),
                    )
                })
            });
        }
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("slice-bytes", |b| {
            b.iter(|| drain(TraceReader::from_bytes("bench", bytes.clone(), Some(format)).unwrap()))
        });
        g.finish();
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
