//! Parser throughput benches (filled in with the trace formats).
use criterion::{criterion_group, criterion_main, Criterion};

fn parse(_c: &mut Criterion) {}

criterion_group!(benches, parse);
criterion_main!(benches);
