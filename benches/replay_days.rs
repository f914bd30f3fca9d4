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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use common::aws::{Clients, Moto, REGION};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    secs: f64,
    hwm_kb: u64,
    kms_calls: u64,
    objects: u64,
}

fn main() {
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
        let files = files(&dir);
        runtime.block_on(upload(&clients, &bucket, &files));
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

/// Every file under `dir` with its key (the path below `dir`).
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let found = kmswatch::sources::walk(&[dir.to_owned()], &Default::default());
    let mut out = Vec::new();
    for (o, _) in found.objects {
        if let kmswatch::sources::ObjectRef::File(p) = o {
            let key = p
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((key, p));
        }
    }
    out
}

async fn upload(c: &Arc<Clients>, bucket: &str, files: &[(String, PathBuf)]) {
    c.bucket(bucket).await;
    let sem = Arc::new(Semaphore::new(16));
    let mut tasks = JoinSet::new();
    for (key, path) in files {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        let (c, bucket, key) = (c.clone(), bucket.to_owned(), key.clone());
        let body = std::fs::read(path).expect("reading a bench file");
        tasks.spawn(async move {
            c.put(&bucket, &key, body).await;
            drop(permit);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("an upload task");
    }
}

/// One `kmswatch replay INPUT`, timed, with its peak resident memory.
fn replay(moto: &Moto, input: &str, scratch: &Path) -> Run {
    let summary = scratch.join("summary.json");
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmswatch"))
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
    let mut hwm_kb = 0;
    while child.try_wait().expect("waiting for replay").is_none() {
        if let Some(h) = hwm(child.id()) {
            hwm_kb = h;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t.elapsed().as_secs_f64();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("the replay summary"))
            .expect("the replay summary is JSON");
    assert_eq!(v["input"]["objects_failed"], 0, "{input}: objects failed");
    Run {
        secs,
        hwm_kb,
        kms_calls: v["kms_calls"].as_u64().expect("kms_calls"),
        objects: v["input"]["log_objects"].as_u64().expect("log_objects"),
    }
}

/// `VmHWM` of a running process, KiB (none once it has exited).
fn hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
