//! The capture engine from memory to published files: the per-packet path (copy into the
//! ring buffer with the record header) and the writers, sweeping ring buffer sizes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lander_capture::engine::source::{CaptureSource, Next, SourceError};
use lander_capture::engine::writer::IoMode;
use lander_capture::engine::{self, Control, EngineConfig};
use lander_trace::synth::{generate, Profile};
use lander_trace::{LinkType, OwnedRecord};

const PACKETS: u64 = 200_000;

struct Memory<'a> {
    recs: &'a [OwnedRecord],
    at: usize,
}

impl CaptureSource for Memory<'_> {
    fn next(&mut self) -> Result<Next<'_>, SourceError> {
        let Some(r) = self.recs.get(self.at) else {
            return Ok(Next::End);
        };
        self.at += 1;
        Ok(Next::Packet(r.as_record()))
    }
    fn link_type(&self) -> LinkType {
        LinkType::ETHERNET
    }
    fn snaplen(&self) -> u32 {
        65535
    }
    fn is_live(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

fn capture_write(c: &mut Criterion) {
    let recs: Vec<OwnedRecord> = generate(Profile::SynFlood, 1, PACKETS).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("capture_write");
    group.throughput(Throughput::Elements(PACKETS));
    group.sample_size(10);
    for (io, name) in [(IoMode::Uring, "uring"), (IoMode::Sync, "sync")] {
        for buffer in [256usize << 10, 1 << 20, 4 << 20] {
            let id = BenchmarkId::new(name, format!("{}KiB", buffer >> 10));
            group.bench_function(id, |b| {
                b.iter(|| {
                    let out = dir.path().join("out");
                    let _ = std::fs::remove_dir_all(&out);
                    let mut config = EngineConfig::new(out, "bench".into());
                    config.io = io;
                    config.buffer_bytes = buffer;
                    config.ring_bytes = buffer * 8;
                    config.rotate.size = Some(4 << 20);
                    let mut src = Memory { recs: &recs, at: 0 };
                    engine::run(&config, &mut src, &Control::default()).unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, capture_write);
criterion_main!(benches);
