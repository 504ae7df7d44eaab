//! Per-statement work of the hot path in ns (criterion): pre-classification, parse on a cache miss,
//! parse-cache hit. `cargo bench --bench statement`; numbers are recorded in docs/BENCHMARKS.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use shardcat::sql::{analyze::analyze, cache::ParseCache, classify::classify};

const POINT: &str = "SELECT c FROM sbtest1 WHERE id=4711";
const RANGE: &str = "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 4711 AND 4810 ORDER BY c";

fn statement(c: &mut Criterion) {
    c.bench_function("classify point select", |b| b.iter(|| classify(black_box(POINT))));
    c.bench_function("parse point select (cache miss)", |b| b.iter(|| analyze(black_box(POINT))));
    c.bench_function("parse range select (cache miss)", |b| b.iter(|| analyze(black_box(RANGE))));
    let cache = ParseCache::new(16);
    let _ = cache.get(POINT);
    c.bench_function("parse point select (cache hit)", |b| b.iter(|| cache.get(black_box(POINT))));
}

criterion_group!(benches, statement);
criterion_main!(benches);
