//! The live service end to end: `kmswatch serve` against moto's S3 and SQS, next to `kmswatch
//! replay` of the same objects and to moto serving them alone.
//!
//! `cargo bench --bench serve`:
//! 1. generates a benchmark set once (`kmswatch generate --profile bench`: 100 MB of JSON by
//!    default; `KMSWATCH_SERVE_BENCH_MB`, `KMSWATCH_SERVE_BENCH_DIR`, default `bench-data-serve/`);
//! 2. `kmswatch replay` of it (best of three runs, then one more for its peak memory);
//! 3. starts moto's server on 127.0.0.1 with the tests' harness (`tests/common/aws.rs`) and
//!    uploads every object to its S3;
//! 4. moto alone: GETs every object with the SDK, `fetch_concurrency` at once; then receives and
//!    deletes one notification per object from a queue as serve does, with no object fetched;
//! 5. for each `fetch_concurrency` in `KMSWATCH_SERVE_BENCH_CONCURRENCY` (default `8,2`: the
//!    default and the best value on the 2-core development machine): a fresh queue holding one
//!    CloudTrail notification per object, in delivery order; `kmswatch serve` (the shipped rules,
//!    `close_windows_on_wall_clock = false`, otherwise the defaults but for the tests' short
//!    long-poll and retry settings) is started and timed until every message is deleted
//!    (`kmswatch_sqs_messages_deleted_total` on /metrics); its resident memory and CPU time are
//!    read from /proc, then it gets SIGTERM and must exit 0; the fastest of
//!    `KMSWATCH_SERVE_BENCH_RUNS` (3) runs is reported;
//!
//! and fails unless every serve run counted exactly the KMS calls (and read exactly the bytes and
//! records) replay did, with no message failed or redelivered.
//!
//! The binary under test is the `kmswatch` cargo builds beside the bench (`CARGO_BIN_EXE_kmswatch`,
//! which cargo sets for benches as for integration tests): the release build under `cargo bench`.
//! `KMSWATCH_SERVE_BENCH_MB=5 cargo test --bench serve` runs the same code on the debug build.

mod bench_set;

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "bench_set/moto.rs"]
mod bench_moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use bench_set::proc::{cpu_secs, memory_kb, watch};
use common::aws::{free_port, metric, service_config, Clients, Moto, Service};

/// The trail bucket in moto (the generator's name for it).
const BUCKET: &str = "kmswatch-org-trail";
/// Bounds of the pause between /metrics reads while serve works. A read renders every series
/// (2 MB and 20-30 ms of the service's CPU after 1 GB of the bench set), so reads are spaced by
/// the time the run still needs (see `serve_once`).
const POLL_MIN: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_secs(1);
/// Receives before moto moves a message to the dead-letter queue (none should get there).
const MAX_RECEIVES: u32 = 5;
/// Receive loops, as `source.receivers` defaults to.
const RECEIVERS: usize = 2;

/// The benchmark set: the files on disk and, in delivery order, their keys and bytes.
struct Set {
    dir: PathBuf,
    objects: Vec<(String, Vec<u8>)>,
}

/// One timed pass over the whole set.
struct Throughput {
    what: String,
    secs: f64,
    messages: u64,
    objects: u64,
    kms_calls: u64,
    json_bytes: u64,
}

impl Throughput {
    fn row(&self) -> String {
        let per_sec = |n: f64, decimals: usize| {
            if n == 0.0 {
                String::new()
            } else {
                format!("{:.*}", decimals, n / self.secs)
            }
        };
        format!(
            "| {} | {:.2} | {} | {} | {} | {} |",
            self.what,
            self.secs,
            per_sec(self.messages as f64, 0),
            per_sec(self.objects as f64, 1),
            per_sec(self.kms_calls as f64, 0),
            per_sec(self.json_bytes as f64 / 1e6, 0),
        )
    }
}

/// What one serve run measured besides throughput.
struct Served {
    fetch_concurrency: usize,
    throughput: Throughput,
    shutdown_secs: f64,
    rss_kb: u64,
    hwm_kb: u64,
    serve_cpu_secs: f64,
    moto_cpu_secs: f64,
    /// Seconds one /metrics read takes after ingestion, and its size.
    metrics_read_secs: f64,
    metrics_bytes: usize,
    /// Series of `kmswatch_kms_calls_total`.
    usage_series: usize,
    /// /metrics reads while serve worked.
    metrics_reads: u32,
    /// The most messages in flight (received, not yet deleted) those reads saw.
    max_in_flight: u64,
    kms_calls: u64,
    decompressed_bytes: u64,
    records: u64,
}

/// What replay reported.
struct Replayed {
    throughput: Throughput,
    kms_calls: u64,
    decompressed_bytes: u64,
    records: u64,
    /// Peak resident memory (`VmHWM`), KiB.
    hwm_kb: u64,
    /// User plus system CPU time, seconds.
    cpu_secs: f64,
}

fn main() {
    kmswatch::alloc::tune();
    let repo = common::repo();
    let mb: u64 = bench_set::env_or("KMSWATCH_SERVE_BENCH_MB", 100);
    let dir = std::env::var_os("KMSWATCH_SERVE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("bench-data-serve"));
    let concurrencies: Vec<usize> = std::env::var("KMSWATCH_SERVE_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "8,2".into())
        .split(',')
        .map(|c| {
            c.trim().parse().unwrap_or_else(|_| {
                panic!("KMSWATCH_SERVE_BENCH_CONCURRENCY: {c:?} is not a number")
            })
        })
        .collect();
    let set = load_set(&dir, mb);
    let gzip_bytes: usize = set.objects.iter().map(|(_, b)| b.len()).sum();
    let n = set.objects.len() as u64;
    println!(
        "benchmark set: {n} objects, {:.1} MB gzip, in {}; binary {}",
        gzip_bytes as f64 / 1e6,
        dir.display(),
        env!("CARGO_BIN_EXE_kmswatch")
    );

    // Replay first: it gives the JSON size and the expected totals.
    let replayed = replay_best_of_three(&set);
    let json_bytes = replayed.decompressed_bytes;
    println!(
        "JSON: {:.1} MB, {} records, {} KMS calls",
        json_bytes as f64 / 1e6,
        replayed.records,
        replayed.kms_calls
    );

    let rt = Runtime::new().expect("tokio runtime");
    let moto = Moto::start();
    let clients = Arc::new(rt.block_on(moto.clients()));
    let t = Instant::now();
    rt.block_on(async {
        bench_moto::upload(&clients, BUCKET, &set.objects, 8).await;
    });
    println!(
        "uploaded {n} objects to moto in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let mut moto_alone = Vec::new();
    for &c in &concurrencies {
        let t = Instant::now();
        let got = rt.block_on(get_all(&clients, &set.objects, c));
        assert_eq!(got, gzip_bytes as u64, "moto returned other bytes");
        moto_alone.push(Throughput {
            what: format!("moto alone: S3 GET of every object, {c} at once"),
            secs: t.elapsed().as_secs_f64(),
            messages: 0,
            objects: n,
            kms_calls: 0,
            json_bytes,
        });
    }

    let drain = {
        let q = rt.block_on(async {
            let q = clients.queues("moto-alone", MAX_RECEIVES).await;
            bench_moto::notify(&clients, &q.url, BUCKET, &set.objects).await;
            q
        });
        let t = Instant::now();
        rt.block_on(drain_alone(&clients, &q.url, n, RECEIVERS));
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(
            rt.block_on(clients.depth(&q.url)),
            0,
            "moto-alone queue drained"
        );
        Throughput {
            what: format!(
                "moto alone: SQS receive (10 a call, {RECEIVERS} loops) + delete of every message, one delete call each"
            ),
            secs,
            messages: n,
            objects: 0,
            kms_calls: 0,
            json_bytes: 0,
        }
    };

    let runs: usize = bench_set::env_or("KMSWATCH_SERVE_BENCH_RUNS", 3);
    let mut served: Vec<Served> = Vec::new();
    for (i, &c) in concurrencies.iter().enumerate() {
        for r in 0..runs {
            let s = serve_once(&rt, &moto, &clients, &set, c, i * runs + r, json_bytes);
            check(&s, &replayed, json_bytes);
            match served.last_mut() {
                Some(best) if r > 0 && best.throughput.secs <= s.throughput.secs => {}
                Some(best) if r > 0 => *best = s,
                _ => served.push(s),
            }
        }
    }
    for s in &mut served {
        s.throughput.what.push_str(&format!(" (best of {runs})"));
    }

    println!();
    println!(
        "{n} objects, {n} messages (one CloudTrail notification per object), {:.1} MB gzip, {:.1} MB JSON, {} KMS calls; {} cores",
        gzip_bytes as f64 / 1e6,
        json_bytes as f64 / 1e6,
        replayed.kms_calls,
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    println!("| run | seconds | messages/s | objects/s | KMS events/s | MB/s of JSON |");
    println!("|---|---|---|---|---|---|");
    for s in &served {
        println!("{}", s.throughput.row());
    }
    println!("{}", replayed.throughput.row());
    for m in &moto_alone {
        println!("{}", m.row());
    }
    println!("{}", drain.row());
    println!();
    println!("| serve, fetch_concurrency | VmRSS after ingestion | VmHWM | serve CPU | moto CPU during the run | SIGTERM to exit 0 | replay / serve throughput |");
    println!("|---|---|---|---|---|---|---|");
    for s in &served {
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {:.2} s | {:.2} s | {:.2} s | {:.1}x |",
            s.fetch_concurrency,
            s.rss_kb as f64 / 1024.0,
            s.hwm_kb as f64 / 1024.0,
            s.serve_cpu_secs,
            s.moto_cpu_secs,
            s.shutdown_secs,
            s.throughput.secs / replayed.throughput.secs
        );
    }
    for s in &served {
        println!(
            "fetch_concurrency {}: up to {} of {n} messages in flight; {} /metrics reads while ingesting, one read after it ({} KB, {} series of kmswatch_kms_calls_total) takes {:.1} ms (so at most {:.2} s of serve's CPU went to the reads)",
            s.fetch_concurrency,
            s.max_in_flight,
            s.metrics_reads,
            s.metrics_bytes / 1000,
            s.usage_series,
            s.metrics_read_secs * 1e3,
            s.metrics_reads as f64 * s.metrics_read_secs,
        );
    }
    println!(
        "replay: peak resident memory (VmHWM) {:.1} MiB, CPU {:.2} s",
        replayed.hwm_kb as f64 / 1024.0,
        replayed.cpu_secs
    );
    println!(
        "serve counted {} KMS calls in every run, as replay did",
        replayed.kms_calls
    );
}

/// Fails the bench unless serve saw exactly what replay saw.
fn check(s: &Served, replayed: &Replayed, json_bytes: u64) {
    assert_eq!(
        s.kms_calls, replayed.kms_calls,
        "serve (fetch_concurrency {}) counted {} KMS calls, replay {}",
        s.fetch_concurrency, s.kms_calls, replayed.kms_calls
    );
    assert_eq!(
        s.decompressed_bytes, json_bytes,
        "serve decompressed other bytes than replay"
    );
    assert_eq!(
        s.records, replayed.records,
        "serve read other records than replay"
    );
}

/// Generates the set into `dir` unless a complete one of `mb` MB is there; reads it in delivery
/// order (replay's order).
fn load_set(dir: &Path, mb: u64) -> Set {
    bench_set::ensure_set(dir, mb);
    Set {
        dir: dir.to_owned(),
        objects: bench_moto::objects(dir),
    }
}

/// GETs every object, `concurrency` at once, reading each body whole as serve does; returns the
/// bytes read.
async fn get_all(c: &Arc<Clients>, objects: &[(String, Vec<u8>)], concurrency: usize) -> u64 {
    let sem = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for (key, _) in objects {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        let (c, key) = (c.clone(), key.clone());
        tasks.spawn(async move {
            let resp =
                c.s3.get_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("GET s3://{BUCKET}/{key}: {e:?}"));
            let body = resp
                .body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("reading s3://{BUCKET}/{key}: {e}"));
            drop(permit);
            body.into_bytes().len() as u64
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r.expect("a GET task");
    }
    total
}

/// Receives and deletes `n` messages as serve does without a state file: `receivers` loops
/// asking for 10 at a time, one `DeleteMessageBatch` call per message. Returns when the last one
/// is deleted.
async fn drain_alone(c: &Arc<Clients>, queue_url: &str, n: u64, receivers: usize) {
    let deleted = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    for _ in 0..receivers {
        let (c, url, deleted, done) = (
            c.clone(),
            queue_url.to_owned(),
            deleted.clone(),
            done.clone(),
        );
        tasks.spawn(async move {
            while deleted.load(Ordering::Relaxed) < n {
                let got = c
                    .sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .visibility_timeout(300)
                    .send()
                    .await
                    .expect("ReceiveMessage");
                for m in got.messages() {
                    let entry = DeleteMessageBatchRequestEntry::builder()
                        .id("0")
                        .receipt_handle(m.receipt_handle().expect("a receipt handle"))
                        .build()
                        .expect("a batch entry");
                    let out = c
                        .sqs
                        .delete_message_batch()
                        .queue_url(&url)
                        .entries(entry)
                        .send()
                        .await
                        .expect("DeleteMessageBatch");
                    assert!(
                        out.failed.is_empty(),
                        "DeleteMessageBatch: {:?}",
                        out.failed
                    );
                    if deleted.fetch_add(1, Ordering::Relaxed) + 1 == n {
                        done.notify_one();
                    }
                }
            }
        });
    }
    // The other loop may still be in a long poll; the last delete is what counts.
    done.notified().await;
    tasks.abort_all();
}

/// One `kmswatch serve` over the whole set, from a fresh queue to every message deleted.
fn serve_once(
    rt: &Runtime,
    moto: &Moto,
    c: &Clients,
    set: &Set,
    fetch_concurrency: usize,
    run: usize,
    json_bytes: u64,
) -> Served {
    let n = set.objects.len() as u64;
    let q = rt.block_on(async {
        let q = c.queues(&format!("serve-bench-{run}"), MAX_RECEIVES).await;
        bench_moto::notify(c, &q.url, BUCKET, &set.objects).await;
        q
    });
    assert_eq!(rt.block_on(c.depth(&q.url)), n, "messages queued");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let cfg = service_config(dir.path(), moto, &q.url, &[BUCKET], port, "");
    let text = std::fs::read_to_string(&cfg)
        .expect("reading the config")
        .replace(
            "[source]\n",
            &format!("[source]\nfetch_concurrency = {fetch_concurrency}\n"),
        );
    std::fs::write(&cfg, text).expect("writing the config");

    let moto_cpu = cpu_secs(moto.pid());
    eprintln!("serve, fetch_concurrency {fetch_concurrency}: {n} messages...");
    let t0 = Instant::now();
    let mut svc = Service::start(&cfg, port, &dir.path().join("serve.log"));
    let timeout = Duration::from_secs(120 + n);
    let mut reads = 0;
    let mut max_in_flight = 0.0f64;
    let mut last = (Instant::now(), 0.0);
    loop {
        let m = svc.metrics();
        reads += 1;
        max_in_flight = max_in_flight.max(metric(&m, "kmswatch_sqs_messages_in_flight", &[]));
        let failed = metric(&m, "kmswatch_sqs_messages_failed_total", &[]);
        assert!(
            failed == 0.0,
            "serve failed {failed} messages:\n{}",
            svc.log_text()
        );
        let deleted = metric(&m, "kmswatch_sqs_messages_deleted_total", &[]);
        if deleted >= n as f64 {
            break;
        }
        assert!(
            t0.elapsed() < timeout,
            "serve did not delete every message within {timeout:?}:\n{}",
            svc.log_text()
        );
        // A quarter of the time left at the rate since the last read, and at most a tenth of the
        // time so far (deletes can come in bursts): the end is seen within 10%, usually far closer.
        let (at, before) = last;
        let rate = (deleted - before) / at.elapsed().as_secs_f64();
        let left = if rate > 0.0 {
            Duration::from_secs_f64((n as f64 - deleted) / rate / 4.0)
        } else {
            POLL_MIN * 5
        };
        last = (Instant::now(), deleted);
        std::thread::sleep(left.min(t0.elapsed() / 10).clamp(POLL_MIN, POLL_MAX));
    }
    let secs = t0.elapsed().as_secs_f64();
    let moto_cpu_secs = cpu_secs(moto.pid()) - moto_cpu;
    let serve_cpu_secs = cpu_secs(svc.pid());
    let (rss_kb, hwm_kb) = memory_kb(svc.pid());
    let m = svc.metrics();
    let count = |name: &str| metric(&m, name, &[]) as u64;
    assert_eq!(count("kmswatch_s3_objects_fetched_total"), n);
    assert_eq!(count("kmswatch_s3_objects_failed_total"), 0);
    assert_eq!(
        count("kmswatch_sqs_messages_received_total"),
        n,
        "a message was received twice"
    );
    let kms_calls = count("kmswatch_kms_calls_total");
    // What the polling cost the service: one /metrics read, rendered in full.
    let t = Instant::now();
    for _ in 0..5 {
        svc.metrics();
    }
    let metrics_read_secs = t.elapsed().as_secs_f64() / 5.0;

    let t = Instant::now();
    let status = svc.signal("TERM").expect("an exit status");
    let shutdown_secs = t.elapsed().as_secs_f64();
    assert!(
        status.success(),
        "kmswatch serve exited with {status} after SIGTERM:\n{}",
        svc.log_text()
    );
    assert_eq!(rt.block_on(c.depth(&q.url)), 0, "queue drained");
    assert_eq!(
        rt.block_on(c.depth(&q.dlq_url)),
        0,
        "dead-letter queue empty"
    );
    Served {
        fetch_concurrency,
        throughput: Throughput {
            what: format!("`kmswatch serve`, fetch_concurrency {fetch_concurrency}"),
            secs,
            messages: n,
            objects: n,
            kms_calls,
            json_bytes,
        },
        shutdown_secs,
        rss_kb,
        hwm_kb,
        serve_cpu_secs,
        moto_cpu_secs,
        metrics_read_secs,
        metrics_bytes: m.len(),
        usage_series: m
            .lines()
            .filter(|l| l.starts_with("kmswatch_kms_calls_total{"))
            .count(),
        metrics_reads: reads,
        max_in_flight: max_in_flight as u64,
        kms_calls,
        decompressed_bytes: count("kmswatch_decompressed_bytes_total"),
        records: count("kmswatch_records_read_total"),
    }
}

/// `kmswatch replay` of the local copy, as a process like serve: the fastest of three runs, then
/// a fourth, untimed, for its peak resident memory.
fn replay_best_of_three(set: &Set) -> Replayed {
    let out = tempfile::tempdir().expect("a temporary directory");
    let summary = out.path().join("summary.json");
    let replay = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmswatch"));
        cmd.arg("replay")
            .arg(&set.dir)
            .arg("--summary")
            .arg(&summary)
            .arg("--alerts")
            .arg(out.path().join("alerts.jsonl"))
            .arg("--quiet")
            .current_dir(common::repo())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let o = replay().output().expect("running kmswatch replay");
        best = best.min(t.elapsed().as_secs_f64());
        assert!(
            o.status.success(),
            "kmswatch replay: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let watched = watch(replay().spawn().expect("running kmswatch replay"));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("reading the replay summary"))
            .expect("the replay summary is JSON");
    let num = |v: &serde_json::Value, what: &str| {
        v.as_u64()
            .unwrap_or_else(|| panic!("replay summary: {what} is not a number"))
    };
    let objects = num(&v["input"]["log_objects"], "input.log_objects");
    assert_eq!(
        objects,
        set.objects.len() as u64,
        "replay read every object"
    );
    let kms_calls = num(&v["kms_calls"], "kms_calls");
    let decompressed_bytes = num(
        &v["input"]["decompressed_bytes"],
        "input.decompressed_bytes",
    );
    Replayed {
        throughput: Throughput {
            what: "`kmswatch replay` of the same objects on disk (best of 3)".into(),
            secs: best,
            messages: 0,
            objects,
            kms_calls,
            json_bytes: decompressed_bytes,
        },
        kms_calls,
        decompressed_bytes,
        records: num(&v["input"]["records"], "input.records"),
        hwm_kb: watched.hwm_kb,
        cpu_secs: watched.cpu_secs,
    }
}
