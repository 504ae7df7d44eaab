//! Per-statement work of the hot path in ns (criterion): pre-classification, parse on a cache miss,
//! parse-cache hit, routing and rewriting. `cargo bench --bench statement`; results in docs/BENCHMARKS.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use shardcat::backend::Backends;
use shardcat::route::{self, Ctx, Param, Rules};
use shardcat::sql::{analyze::analyze, cache::ParseCache, classify::classify, shape::shape};

const POINT: &str = "SELECT c FROM sbtest1 WHERE id=4711";
const POINT_PS: &str = "SELECT c FROM sbtest1 WHERE id=?";
const RANGE: &str = "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 4711 AND 4810 ORDER BY c";
const INSERT4: &str = "INSERT INTO sbtest1 (id, k, c, pad) VALUES (1, 2, 'a', 'b'), (2, 3, 'c', 'd'), \
                       (3, 4, 'e', 'f'), (4, 5, 'g', 'h')";

fn statement(c: &mut Criterion) {
    c.bench_function("classify point select", |b| b.iter(|| classify(black_box(POINT))));
    c.bench_function("parse point select (cache miss)", |b| b.iter(|| analyze(black_box(POINT))));
    c.bench_function("parse range select (cache miss)", |b| b.iter(|| analyze(black_box(RANGE))));
    let cache = ParseCache::new(16);
    let _ = cache.get(POINT);
    c.bench_function("parse point select (cache hit)", |b| b.iter(|| cache.get(black_box(POINT))));
    c.bench_function("shape of a text point select", |b| b.iter(|| shape(black_box(POINT))));
}

/// Routing over the benchmark's own layouts (bench/config): sbtest1 by range (sb_range) and mod (sb_mod).
fn routing(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/config");
    let Ok((cfg, _)) = shardcat::config::load(&dir, None) else { panic!("bench/config does not load") };
    let Ok(rules) = Rules::build(&cfg) else { panic!("bench/config's rules do not build") };
    let backends = Backends::build(&cfg);
    let user = cfg.users[0].clone();
    let ctx = Ctx { cfg: &cfg, rules: &rules, user: &user, backends: &backends, parents: None, learned: None };
    let (Some(range), Some(modulo)) = (cfg.schema("sb_range"), cfg.schema("sb_mod")) else {
        panic!("bench/config lacks sb_range / sb_mod")
    };
    let kind = |sql: &str| classify(sql).0;
    let cache = ParseCache::new(16);
    let get = |sql: &str| cache.get(sql).unwrap_or_else(|e| panic!("{e}"));

    let a = get(POINT_PS);
    let params = [Param::Number("4711".into())];
    c.bench_function("route prepared point select (sb_range, id=?)", |b| {
        b.iter(|| route::route(&ctx, range, kind(POINT_PS), &a, POINT_PS, black_box(&params)))
    });
    c.bench_function("route text point select by shape (shape + cache hit + route)", |b| {
        b.iter(|| {
            let (text, lits) = shape(black_box(POINT)).unwrap_or_default();
            let a = get(&text);
            let params: Vec<Param> = lits
                .into_iter()
                .map(|l| match l {
                    shardcat::sql::shape::Literal::Number(n) => Param::Number(n),
                    shardcat::sql::shape::Literal::Text(t) => Param::Bytes(t.into_bytes()),
                })
                .collect();
            route::route(&ctx, range, kind(POINT), &a, POINT, &params)
        })
    });
    let a = get(RANGE);
    c.bench_function("route + merge plan, DISTINCT … ORDER BY over 2 shards (sb_mod)", |b| {
        b.iter(|| route::route(&ctx, modulo, kind(RANGE), &a, black_box(RANGE), &[]))
    });
    let a = get(INSERT4);
    c.bench_function("rewrite: split a 4-row INSERT over 2 shards (sb_mod)", |b| {
        b.iter(|| route::route(&ctx, modulo, kind(INSERT4), &a, black_box(INSERT4), &[]))
    });
}

criterion_group!(benches, statement, routing);
criterion_main!(benches);
