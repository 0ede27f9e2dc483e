//! Address mapping throughput: addresses per second per mapping, cold (uncached) and warm
//! (per-worker cache), and the packet walker on a SYN flood and on mixed traffic.
use aes::cipher::{BlockEncrypt, KeyInit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lander_anonymize::walker::{Policy, Walker};
use lander_anonymize::{Anonymizer, CachedAnonymizer, Key, MapOptions, Mapping};
use lander_trace::synth::{generate, Profile};

const N: u64 = 4096;

fn addresses() -> Vec<u32> {
    (0..N as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect()
}

fn mappings(c: &mut Criterion) {
    let mut g = c.benchmark_group("addresses");
    g.throughput(Throughput::Elements(N));
    let v4 = addresses();
    for mapping in Mapping::ALL {
        let key = Key::generate(mapping).unwrap();
        let anon = Anonymizer::new(&key, &MapOptions::default()).unwrap();
        g.bench_function(BenchmarkId::new("v4-cold", mapping), |b| {
            b.iter(|| v4.iter().fold(0u32, |acc, &a| acc ^ anon.anon_v4(a)))
        });
        let mut cached = CachedAnonymizer::new(anon.clone());
        g.bench_function(BenchmarkId::new("v4-warm", mapping), |b| {
            b.iter(|| v4.iter().fold(0u32, |acc, &a| acc ^ cached.anon_v4(a)))
        });
        g.bench_function(BenchmarkId::new("v6-cold", mapping), |b| {
            b.iter(|| {
                v4.iter()
                    .take(256)
                    .fold(0u128, |acc, &a| acc ^ anon.anon_v6(u128::from(a) << 64 | 1))
            })
        });
    }
    g.finish();
}

/// The raw cipher on 32-block batches: the `aes` crate's `encrypt_blocks` (AES-NI where
/// present, eight blocks abreast) beside our VAES batches (two blocks per instruction, sixteen
/// abreast), which the mappings use where the CPU has VAES. (Our own eight-lane AES-NI code
/// was measured against the crate through `addresses/v4-cold` and did not win clearly, so it
/// went; VAES does.)
fn aes_blocks(c: &mut Criterion) {
    let mut g = c.benchmark_group("aes-32-blocks");
    g.throughput(Throughput::Elements(32));
    let cipher = aes::Aes128::new(&[7u8; 16].into());
    let mut blocks = [aes::Block::default(); 32];
    g.bench_function("aes-crate-encrypt_blocks", |b| {
        b.iter(|| {
            cipher.encrypt_blocks(&mut blocks);
            blocks[0][0]
        })
    });
    #[cfg(target_arch = "x86_64")]
    match lander_anonymize::mapping::Vaes::new(&[7u8; 16]) {
        Some(vaes) => {
            g.bench_function("vaes", |b| {
                b.iter(|| {
                    vaes.encrypt(&mut blocks);
                    blocks[0][0]
                })
            });
        }
        None => eprintln!("aes-32-blocks/vaes: this CPU lacks VAES, AVX2 or AES-NI"),
    }
    g.finish();
}

/// The walk of every frame of a SYN flood and of the mixed profile, as a scrub worker walks
/// them (one walker and one address cache across frames), each frame restored first.
fn walker(c: &mut Criterion) {
    let key = Key::generate(Mapping::CryptoPan).unwrap();
    let mut cached = CachedAnonymizer::new(Anonymizer::new(&key, &MapOptions::default()).unwrap());
    let mut walker = Walker::new();
    let mut g = c.benchmark_group("walker");
    g.throughput(Throughput::Elements(N));
    let policy = Policy::default();
    for (name, profile) in [("syn-flood", Profile::SynFlood), ("mixed", Profile::Mixed)] {
        let packets: Vec<_> = generate(profile, 1, N).collect();
        g.bench_function(name, |b| {
            let mut frames: Vec<Vec<u8>> = packets.iter().map(|p| p.data.clone()).collect();
            b.iter(|| {
                for (f, p) in frames.iter_mut().zip(&packets) {
                    f.copy_from_slice(&p.data);
                    walker.walk(1, f, &policy, &mut cached);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, mappings, aes_blocks, walker);
criterion_main!(benches);
