//! Replay throughput against decompression-only throughput of the same files.
//!
//! `cargo bench --bench replay` generates a benchmark set once (600 MB of JSON by default;
//! `KMSWATCH_BENCH_MB`, `KMSWATCH_BENCH_DIR`), then measures, with the files in memory:
//! 1. gzip decompression only, on one core and on all cores;
//! 2. decode + normalise + engine (the shipped rules) on one core, sequentially;
//! 3. the real `replay` (files read from the page cache, decoded on all cores, folded in order).

mod bench_set;

use std::path::PathBuf;

use kmswatch::decode::{
    decode_object, decode_object_reusing, decompress, split_records, DecodeLimits,
};
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::rules::load_dir;
use kmswatch::sources::{walk, ObjectRef};

fn main() {
    kmswatch::alloc::tune();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mb: u64 = std::env::var("KMSWATCH_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let dir = std::env::var_os("KMSWATCH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("bench-data"));
    bench_set::ensure_set(&dir, mb);
    let found = walk(
        std::slice::from_ref(&dir),
        &kmswatch::sources::Selection::default(),
    );
    let files: Vec<Vec<u8>> = found
        .objects
        .iter()
        .map(|(o, _)| match o {
            ObjectRef::File(p) => std::fs::read(p).expect("reading a bench file"),
            ObjectRef::S3 { .. } => unreachable!("walk yields files"),
        })
        .collect();
    let limits = DecodeLimits::default();
    let compressed: usize = files.iter().map(Vec::len).sum();
    let cores = rayon::current_num_threads();
    println!(
        "benchmark set: {} files, {:.1} MB gzip, {} cores",
        files.len(),
        compressed as f64 / 1e6,
        cores
    );

    let best = |f: &dyn Fn() -> u64| bench_set::best_of(3, f);
    let (t_gz1, json_bytes) = best(&|| bench_set::inflate_all(&files, &limits));
    let (t_gz_n, _) = best(&|| bench_set::inflate_all_par(&files, &limits));

    let rules = || load_dir(&repo.join("rules")).expect("shipped rules load");
    let (t_one, events) = best(&|| bench_set::fold_sequentially(&files, rules(), &limits));
    let inflated: Vec<Vec<u8>> = files
        .iter()
        .map(|b| {
            decompress(b, limits.max_object_bytes)
                .expect("bench file decompresses")
                .into_owned()
        })
        .collect();
    let (t_split, _) = best(&|| {
        inflated
            .iter()
            .map(|j| split_records(j).expect("bench file splits").len() as u64)
            .sum()
    });
    let decoded: Vec<_> = files
        .iter()
        .map(|b| decode_object(b, &limits).expect("bench file decodes"))
        .collect();
    let (t_decode, _) = best(&|| {
        files
            .iter()
            .map(|b| {
                decode_object_reusing(b, &limits)
                    .map(|d| d.calls.len() as u64)
                    .unwrap_or(0)
            })
            .sum()
    });
    let (t_engine, _) = best(&|| {
        let mut engine = Engine::new(EngineConfig::default(), rules());
        let mut alerts = Vec::new();
        for d in &decoded {
            for call in d.calls.iter().cloned() {
                engine.ingest(call, &mut alerts);
            }
            engine.end_object(&mut alerts);
            alerts.clear();
        }
        engine.finish(&mut alerts);
        engine.counters().kms_calls
    });
    let records: u64 = files
        .iter()
        .map(|b| {
            decode_object(b, &limits)
                .map(|d| d.stats.records)
                .unwrap_or(0)
        })
        .sum();
    let (t_replay, replay_events) = best(&|| bench_set::replay_dir(&dir, rules()));
    assert_eq!(
        events, replay_events,
        "sequential and parallel replay must agree"
    );

    let mbps = |t: f64| json_bytes as f64 / 1e6 / t;
    println!(
        "JSON: {:.1} MB, {} records, {} KMS calls",
        json_bytes as f64 / 1e6,
        records,
        events
    );
    println!("| measurement | cores | MB/s (JSON) | records/s | KMS calls/s |");
    println!("|---|---|---|---|---|");
    println!(
        "| decompression only | 1 | {:.0} | {:.0} | |",
        mbps(t_gz1),
        records as f64 / t_gz1
    );
    println!(
        "| decompression only | {cores} | {:.0} | {:.0} | |",
        mbps(t_gz_n),
        records as f64 / t_gz_n
    );
    println!(
        "| record splitting only (decompressed JSON) | 1 | {:.0} | {:.0} | |",
        mbps(t_split),
        records as f64 / t_split
    );
    println!(
        "| decode only (gzip + JSON + normalise) | 1 | {:.0} | {:.0} | {:.0} |",
        mbps(t_decode),
        records as f64 / t_decode,
        events as f64 / t_decode
    );
    println!(
        "| engine only (dedupe + rules, decoded calls) | 1 | | | {:.0} |",
        events as f64 / t_engine
    );
    println!(
        "| replay (decode + rules) | 1 | {:.0} | {:.0} | {:.0} |",
        mbps(t_one),
        records as f64 / t_one,
        events as f64 / t_one
    );
    println!(
        "| replay (`kmswatch replay`) | {cores} | {:.0} | {:.0} | {:.0} |",
        mbps(t_replay),
        records as f64 / t_replay,
        events as f64 / t_replay
    );
    println!(
        "replay / decompression, 1 core: {:.0}%",
        100.0 * t_gz1 / t_one
    );
    println!(
        "replay / decompression, {cores} cores: {:.0}%",
        100.0 * t_gz_n / t_replay
    );
    println!(
        "replay speed-up from 1 to {cores} cores: {:.2}x",
        t_one / t_replay
    );
}
