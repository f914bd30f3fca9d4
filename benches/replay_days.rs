//! Replay's memory over a long period: the same daily volume over more and more days, replayed
//! from disk and straight from S3 (moto's server on 127.0.0.1, the tests' harness), with the peak
//! resident memory of each run. Memory should stay flat as the days grow: S3 day folders are
//! listed and read one delivery day at a time, and the engine's state grows with keys and
//! principals, not with events.
//!
//! `cargo bench --bench replay_days`: for each day count in `KMSWATCH_DAYS_BENCH` (default
//! `30,90`), generates once `KMSWATCH_DAYS_BENCH_MB_PER_DAY` (default 10) MB of CloudTrail JSON a
//! day (`kmswatch generate --profile bench --days N`, into `bench-data-days/<N>d/`), uploads it to
//! a bucket of its own and runs `kmswatch replay` of the directory and of `s3://bucket/` (the
//! shipped rules, `--quiet`), reading `VmHWM` from /proc while each runs; fails unless both count
//! the same KMS calls. `KMSWATCH_DAYS_BENCH=3,6 KMSWATCH_DAYS_BENCH_MB_PER_DAY=1 cargo test
//! --bench replay_days` runs the same code quickly on the debug build.

mod bench_set;

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "bench_set/moto.rs"]
mod bench_moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bench_set::env_or;
use common::aws::{Moto, REGION};

struct Run {
    secs: f64,
    hwm_kb: u64,
    kms_calls: u64,
    objects: u64,
}

fn main() {
    kmswatch::alloc::tune();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let per_day: u64 = env_or("KMSWATCH_DAYS_BENCH_MB_PER_DAY", 10);
    let days: Vec<i64> = std::env::var("KMSWATCH_DAYS_BENCH")
        .unwrap_or_else(|_| "30,90".into())
        .split(',')
        .map(|d| d.trim().parse().expect("KMSWATCH_DAYS_BENCH: day counts"))
        .collect();
    let root = repo.join("bench-data-days");
    let moto = Moto::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let clients = Arc::new(runtime.block_on(moto.clients()));
    println!("| days | objects | JSON | from disk: peak RSS, time | from S3: peak RSS, time |");
    println!("|---|---|---|---|---|");
    for d in days {
        let dir = root.join(format!("{d}d"));
        bench_set::ensure_set_over(&dir, per_day * d as u64, d);
        let bucket = format!("days-{d}");
        let objects = bench_moto::objects(&dir);
        runtime.block_on(bench_moto::upload(&clients, &bucket, &objects, 16));
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let disk = replay(&moto, dir.to_str().unwrap(), scratch.path());
        let s3 = replay(&moto, &format!("s3://{bucket}/"), scratch.path());
        assert_eq!(disk.kms_calls, s3.kms_calls, "{d} days: disk and S3 differ");
        assert_eq!(disk.objects, s3.objects, "{d} days: disk and S3 differ");
        println!(
            "| {d} | {} | {} MB | {:.1} MiB, {:.1} s | {:.1} MiB, {:.1} s |",
            disk.objects,
            per_day * d as u64,
            disk.hwm_kb as f64 / 1024.0,
            disk.secs,
            s3.hwm_kb as f64 / 1024.0,
            s3.secs
        );
    }
}

/// One `kmswatch replay INPUT`, timed, with its peak resident memory.
fn replay(moto: &Moto, input: &str, scratch: &Path) -> Run {
    let summary = scratch.join("summary.json");
    let child = Command::new(env!("CARGO_BIN_EXE_kmswatch"))
        .args([
            "replay",
            input,
            "--quiet",
            "--alerts",
            "/dev/null",
            "--summary",
        ])
        .arg(&summary)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .stdout(Stdio::null())
        .spawn()
        .expect("running kmswatch replay");
    let watched = bench_set::proc::watch(child);
    assert!(
        watched.status.success(),
        "{input}: replay {}",
        watched.status
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("the replay summary"))
            .expect("the replay summary is JSON");
    assert_eq!(v["input"]["objects_failed"], 0, "{input}: objects failed");
    Run {
        secs: watched.secs,
        hwm_kb: watched.hwm_kb,
        kms_calls: v["kms_calls"].as_u64().expect("kms_calls"),
        objects: v["input"]["log_objects"].as_u64().expect("log_objects"),
    }
}
