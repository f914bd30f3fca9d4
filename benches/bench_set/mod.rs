//! What the benchmarks share: the generated benchmark set, made once per size.
#![allow(dead_code)] // each bench uses a part

use std::path::Path;
use std::time::Instant;

use kmswatch::generate::{generate, GenerateOptions, Profile};

/// Generates `mb` MB of CloudTrail JSON (the bench profile, a fixed seed) into `dir` unless a
/// complete set of that size is already there.
pub fn ensure_set(dir: &Path, mb: u64) {
    ensure_set_over(dir, mb, 7)
}

/// As [`ensure_set`], the events spread over `days` days.
pub fn ensure_set_over(dir: &Path, mb: u64, days: i64) {
    let marker = dir.join(format!(".complete-{mb}mb-{days}d"));
    if marker.exists() {
        return;
    }
    eprintln!(
        "generating {mb} MB of CloudTrail JSON into {} (once)...",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(dir);
    let t = Instant::now();
    let r = generate(&GenerateOptions {
        out: dir.to_owned(),
        profile: Profile::Bench {
            target_bytes: mb * 1_000_000,
            span_days: days,
        },
        seed: 7,
    })
    .expect("generating the benchmark set");
    eprintln!(
        "generated {} files in {:.1}s",
        r.files,
        t.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, b"").expect("writing the marker");
}
