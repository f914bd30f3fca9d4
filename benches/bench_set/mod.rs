//! What the benchmarks share: the generated benchmark sets, made once per size, the benches'
//! environment settings, the timed stages replay is compared with (decompression alone, a
//! sequential fold), and a child process's memory and CPU time from /proc (`proc`). The benches
//! that drive moto also include `moto.rs` beside this file. The benches allocate as the binary
//! does: mimalloc, tuned by [`kmswatch::alloc::tune`] (each bench's `main` calls it).
#![allow(dead_code)] // each bench uses a part

pub mod proc;

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use kmswatch::decode::{decode_object_reusing, decompress_into, DecodeLimits};
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::generate::{generate, GenerateOptions, Profile, ScaleShape, DEFAULT_SEED};
use kmswatch::replay::{replay, ReplayOptions};
use kmswatch::rules::RuleSet;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The value of environment variable `name`, or `default` when it is not set; panics on a value
/// that does not parse, naming it.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

/// Generates `mb` MB of CloudTrail JSON (the bench profile, a fixed seed) into `dir` unless a
/// complete set of that size is already there.
pub fn ensure_set(dir: &Path, mb: u64) {
    ensure_set_over(dir, mb, 7)
}

/// As [`ensure_set`], the events spread over `days` days.
pub fn ensure_set_over(dir: &Path, mb: u64, days: i64) {
    let profile = Profile::Bench {
        target_bytes: mb * 1_000_000,
        span_days: days,
    };
    ensure_generated(dir, &format!("{mb}mb-{days}d"), profile, 7);
}

/// The scale profile's set of `shape` in `dir` (the default seed, as `kmswatch generate
/// --profile scale` writes it), unless a complete one is already there.
pub fn ensure_scale(dir: &Path, shape: ScaleShape) {
    let what = format!(
        "scale-{}keys-{}principals-{}x-{}attack",
        shape.keys, shape.principals, shape.repeat, shape.attack
    );
    ensure_generated(dir, &what, Profile::Scale(shape), DEFAULT_SEED);
}

/// Generates `profile` into `dir` unless the marker of a complete `what` set is there.
fn ensure_generated(dir: &Path, what: &str, profile: Profile, seed: u64) {
    let marker = dir.join(format!(".complete-{what}"));
    if marker.exists() {
        return;
    }
    eprintln!("generating {what} into {} (once)...", dir.display());
    let _ = std::fs::remove_dir_all(dir);
    let t = Instant::now();
    let r = generate(&GenerateOptions {
        out: dir.to_owned(),
        profile,
        seed,
    })
    .expect("generating the benchmark set");
    eprintln!(
        "generated {} files in {:.1}s",
        r.files,
        t.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, b"").expect("writing the marker");
}

/// The shortest of `runs` timed runs of `f`, in seconds, and what the last run returned.
pub fn best_of(runs: usize, f: &dyn Fn() -> u64) -> (f64, u64) {
    let mut best = f64::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out)
}

/// Gzip decompression alone of one file: its JSON bytes. Into a buffer this thread keeps, as
/// `decode_object_reusing` does: the fastest decompression alone, not one that also faults in and zeroes
/// a fresh buffer for every file.
fn inflate(file: &[u8], limits: &DecodeLimits) -> u64 {
    thread_local! {
        static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    OUT.with_borrow_mut(|out| {
        decompress_into(file, limits.max_object_bytes, out).expect("bench file decompresses");
        out.len() as u64
    })
}

/// Decompression alone of every file, one after another on this thread: the JSON bytes.
pub fn inflate_all(files: &[Vec<u8>], limits: &DecodeLimits) -> u64 {
    files.iter().map(|f| inflate(f, limits)).sum()
}

/// Decompression alone of every file on the rayon pool (all its threads): the JSON bytes.
pub fn inflate_all_par(files: &[Vec<u8>], limits: &DecodeLimits) -> u64 {
    files.par_iter().map(|f| inflate(f, limits)).sum()
}

/// Replay on one core: each file decoded and folded into one engine (default configuration,
/// `rules`) in turn on this thread, then the end of input; the KMS calls counted.
pub fn fold_sequentially(files: &[Vec<u8>], rules: RuleSet, limits: &DecodeLimits) -> u64 {
    let mut engine = Engine::new(EngineConfig::default(), rules);
    let mut alerts = Vec::new();
    for b in files {
        let d = decode_object_reusing(b, limits).expect("bench file decodes");
        for call in d.calls {
            engine.ingest(call, &mut alerts);
        }
        engine.end_object(&mut alerts);
        alerts.clear();
    }
    engine.finish(&mut alerts);
    engine.counters().kms_calls
}

/// Replay in this process on the rayon pool: `replay::replay` of the directory `dir` (files
/// decoded in parallel, folded in order), alerts dropped; the KMS calls counted.
pub fn replay_dir(dir: &Path, rules: RuleSet) -> u64 {
    let opts = ReplayOptions {
        inputs: vec![dir.to_owned().into()],
        ..ReplayOptions::default()
    };
    replay(&opts, rules, |_| Ok(()))
        .expect("replay")
        .engine
        .counters()
        .kms_calls
}
