//! Organization scale (issue 10): memory, state and throughput on the scale profile's set, every
//! pair of 10,000 keys and 100 role principals calling Decrypt (`kmswatch generate --profile
//! scale`), and a flood of failed calls from made-up principals on made-up keys.
//!
//! `cargo bench --bench scale` generates each set once under `bench-data-scale/`, then reports in
//! markdown tables:
//! 1. for each set (the pairs at each `--repeat` of `KMSWATCH_SCALE_BENCH_REPEATS`, default `1,4`:
//!    more events over the same series; each attack size of `KMSWATCH_SCALE_BENCH_ATTACKS`, default
//!    `300000,1000000`, on `KMSWATCH_SCALE_BENCH_ATTACK_KEYS` × `..._ATTACK_PRINCIPALS`, default
//!    10 × 10): the peak resident memory (`VmHWM`) of `kmswatch replay DIR --quiet --state-out F`
//!    as a process, the size of F, and, in this process through the library, `state::load` +
//!    `Engine::restore` of F, a full save and the save after [`CHANGED_CALLS`] new calls of
//!    existing pairs are folded (a journal delta), both as the service makes them (see
//!    [`timed_save`]), each timed once;
//! 2. on the first set, replay throughput against decompression alone of the same files (in
//!    memory), on one core (a sequential decode and fold against sequential inflating) and on the
//!    rayon pool of `KMSWATCH_SCALE_BENCH_CORES` (2) threads (`replay::replay` of the directory
//!    against parallel inflating): MB/s of JSON, the ratio as `benches/replay.rs` defines it
//!    (decompression time / replay time), best of `KMSWATCH_SCALE_BENCH_RUNS` (3);
//! 3. `kmswatch serve` (moto's S3 and SQS on 127.0.0.1, the tests' harness) after ingesting the
//!    set of `KMSWATCH_SCALE_BENCH_SERVE_KEYS` × `..._SERVE_PRINCIPALS` (default: the main set's
//!    pairs, once), one CloudTrail notification per object: `VmRSS` and `VmHWM` once every message
//!    is deleted, then SIGTERM, which must exit 0; it must count replay's KMS calls.
//!
//! The pairs are `KMSWATCH_SCALE_BENCH_KEYS` (10000) × `KMSWATCH_SCALE_BENCH_PRINCIPALS` (100).
//! `KMSWATCH_SCALE_BENCH_KEYS=50 KMSWATCH_SCALE_BENCH_PRINCIPALS=10 KMSWATCH_SCALE_BENCH_ATTACKS=500
//! KMSWATCH_SCALE_BENCH_RUNS=1 cargo test --bench scale` runs the same code quickly on the debug
//! build.

mod bench_set;

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "bench_set/moto.rs"]
mod bench_moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_set::env_or;
use bench_set::proc::{memory_kb, watch};
use common::aws::{free_port, metric, service_config, Moto, Service};
use kmswatch::decode::{decode_object, DecodeLimits, KmsCall};
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::generate::ScaleShape;
use kmswatch::rules::{load_dir, RuleSet};
use kmswatch::serve::journal::{Checkpointing, Journaled, Saved};

/// Calls folded between the full save and the incremental one.
const CHANGED_CALLS: usize = 100;
/// The bucket the serve part uploads to.
const BUCKET: &str = "kmswatch-org-trail";
/// Receives before moto moves a message to the dead-letter queue (none should get there).
const MAX_RECEIVES: u32 = 5;

/// One generated set.
struct Set {
    label: String,
    shape: ScaleShape,
    dir: PathBuf,
}

impl Set {
    fn new(root: &Path, label: String, shape: ScaleShape) -> Set {
        let dir = root.join(format!(
            "{}keys-{}principals-{}x-{}attack",
            shape.keys, shape.principals, shape.repeat, shape.attack
        ));
        bench_set::ensure_scale(&dir, shape);
        Set { label, shape, dir }
    }

    /// The `kmswatch generate` command line that writes this set.
    fn command(&self) -> String {
        let s = &self.shape;
        let mut c = format!(
            "kmswatch generate --profile scale --keys {} --principals {}",
            s.keys, s.principals
        );
        if s.repeat != 1 {
            c.push_str(&format!(" --repeat {}", s.repeat));
        }
        if s.attack != 0 {
            c.push_str(&format!(" --attack {}", s.attack));
        }
        c + " --out DIR"
    }
}

/// What a replay process reported, with its peak memory and state file.
struct Replayed {
    objects: u64,
    kms_calls: u64,
    json_bytes: u64,
    secs: f64,
    hwm_kb: u64,
    state_bytes: u64,
}

/// Seconds of the in-process state operations on one state file.
struct StateTimes {
    load: f64,
    full_save: f64,
    incremental_save: f64,
    /// The size of that delta.
    delta_bytes: u64,
}

fn list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {v:?} is not a number"))
        })
        .collect()
}

fn main() {
    kmswatch::alloc::tune();
    let t_all = Instant::now();
    let repo = common::repo();
    let keys: u64 = env_or("KMSWATCH_SCALE_BENCH_KEYS", 10_000);
    let principals: u64 = env_or("KMSWATCH_SCALE_BENCH_PRINCIPALS", 100);
    let attack_keys: u64 = env_or("KMSWATCH_SCALE_BENCH_ATTACK_KEYS", 10);
    let attack_principals: u64 = env_or("KMSWATCH_SCALE_BENCH_ATTACK_PRINCIPALS", 10);
    let serve_keys: u64 = env_or("KMSWATCH_SCALE_BENCH_SERVE_KEYS", keys);
    let serve_principals: u64 = env_or("KMSWATCH_SCALE_BENCH_SERVE_PRINCIPALS", principals);
    let cores: usize = env_or("KMSWATCH_SCALE_BENCH_CORES", 2);
    let runs: usize = env_or("KMSWATCH_SCALE_BENCH_RUNS", 3);
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build_global()
        .expect("the rayon pool");
    let root = repo.join("bench-data-scale");
    let shape = |keys, principals, repeat, attack| ScaleShape {
        keys,
        principals,
        repeat,
        attack,
    };
    let mut sets = Vec::new();
    for r in list("KMSWATCH_SCALE_BENCH_REPEATS", "1,4") {
        let label = format!("{keys} keys × {principals} principals, {r}x");
        sets.push(Set::new(&root, label, shape(keys, principals, r, 0)));
    }
    for a in list("KMSWATCH_SCALE_BENCH_ATTACKS", "300000,1000000") {
        let label =
            format!("{attack_keys} × {attack_principals} + {a} failed calls, made-up names");
        sets.push(Set::new(
            &root,
            label,
            shape(attack_keys, attack_principals, 1, a),
        ));
    }
    let first = sets.first().expect("at least one set (REPEATS or ATTACKS)");
    let first_files: Vec<Vec<u8>> = bench_moto::objects(&first.dir)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let rules = || load_dir(&repo.join("rules")).expect("shipped rules load");
    let scratch = tempfile::tempdir_in(&root).expect("a scratch directory");

    let mut rows = Vec::new();
    for set in &sets {
        eprintln!("{}: replay, state...", set.label);
        let r = replay_process(&set.dir, scratch.path());
        let changes = changed_calls(&set.dir);
        let times = state_times(&scratch.path().join("state.json"), rules, &changes);
        rows.push((set, r, times));
    }
    let replayed = &rows[0].1;

    eprintln!("{}: throughput...", first.label);
    let t = throughput(first, &first_files, replayed, rules, runs);

    let serve_shape = shape(serve_keys, serve_principals, 1, 0);
    let serve_set = sets
        .iter()
        .find(|s| s.shape == serve_shape)
        .map(|s| (s.dir.clone(), s.command()))
        .unwrap_or_else(|| {
            let label = format!("{serve_keys} keys × {serve_principals} principals, 1x");
            let s = Set::new(&root, label, serve_shape);
            (s.dir.clone(), s.command())
        });
    eprintln!("serve: {}...", serve_set.1);
    let expected = rows
        .iter()
        .find(|(s, _, _)| s.shape == serve_shape)
        .map(|(_, r, _)| r.kms_calls)
        .unwrap_or_else(|| replay_process(&serve_set.0, scratch.path()).kms_calls);
    let served = serve(&serve_set.0, expected);

    println!(
        "binary {}; {} cores; replay and serve with the shipped rules",
        env!("CARGO_BIN_EXE_kmswatch"),
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    println!();
    println!("| set | objects | KMS calls | JSON | replay peak RSS | replay time | state on disk | full save | incremental save ({CHANGED_CALLS} calls changed) | its delta | load + restore |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (set, r, s) in &rows {
        println!(
            "| {} | {} | {} | {:.0} MB | {:.0} MiB | {:.1} s | {:.1} MB | {:.2} s | {:.1} ms | {} bytes | {:.2} s |",
            set.label,
            r.objects,
            r.kms_calls,
            r.json_bytes as f64 / 1e6,
            r.hwm_kb as f64 / 1024.0,
            r.secs,
            r.state_bytes as f64 / 1e6,
            s.full_save,
            s.incremental_save * 1e3,
            s.delta_bytes,
            s.load
        );
    }
    println!();
    for (set, _, _) in &rows {
        println!(
            "- {}: `{}`, then `kmswatch replay DIR --quiet --state-out FILE`",
            set.label,
            set.command()
        );
    }
    println!();
    println!(
        "{}: {:.0} MB of JSON",
        first.label,
        t.json_bytes as f64 / 1e6
    );
    println!();
    println!("| measurement | cores | MB/s of JSON | replay / decompression |");
    println!("|---|---|---|---|");
    let mbps = |secs: f64| t.json_bytes as f64 / 1e6 / secs;
    println!("| decompression only | 1 | {:.0} | |", mbps(t.inflate_one));
    println!(
        "| replay (decode + engine, sequential) | 1 | {:.0} | {:.2}x |",
        mbps(t.replay_one),
        t.inflate_one / t.replay_one
    );
    println!(
        "| decompression only | {cores} | {:.0} | |",
        mbps(t.inflate_n)
    );
    println!(
        "| replay (parallel decode, ordered fold) | {cores} | {:.0} | {:.2}x |",
        mbps(t.replay_n),
        t.inflate_n / t.replay_n
    );
    println!(
        "replay speed-up from 1 to {cores} cores: {:.2}x (best of {runs} runs each)",
        t.replay_one / t.replay_n
    );
    println!();
    println!("| serve set | objects (one notification each) | KMS calls | ingested in | VmRSS after | VmHWM |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| `{}` | {} | {} | {:.1} s | {:.0} MiB | {:.0} MiB |",
        serve_set.1,
        served.objects,
        served.kms_calls,
        served.secs,
        served.rss_kb as f64 / 1024.0,
        served.hwm_kb as f64 / 1024.0
    );
    println!();
    println!("whole benchmark: {:.0} s", t_all.elapsed().as_secs_f64());
}

/// `kmswatch replay DIR --quiet --state-out` as a process, with its peak resident memory.
fn replay_process(dir: &Path, scratch: &Path) -> Replayed {
    let summary = scratch.join("summary.json");
    let state = scratch.join("state.json");
    let child = Command::new(env!("CARGO_BIN_EXE_kmswatch"))
        .arg("replay")
        .arg(dir)
        .args(["--quiet", "--alerts", "/dev/null", "--summary"])
        .arg(&summary)
        .arg("--state-out")
        .arg(&state)
        .current_dir(common::repo())
        .stdout(Stdio::null())
        .spawn()
        .expect("running kmswatch replay");
    let w = watch(child);
    assert!(w.status.success(), "{}: replay {}", dir.display(), w.status);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("the replay summary"))
            .expect("the replay summary is JSON");
    let num = |v: &serde_json::Value| v.as_u64().expect("a count in the replay summary");
    assert_eq!(
        v["input"]["objects_failed"],
        0,
        "{}: objects failed",
        dir.display()
    );
    Replayed {
        objects: num(&v["input"]["log_objects"]),
        kms_calls: num(&v["kms_calls"]),
        json_bytes: num(&v["input"]["decompressed_bytes"]),
        secs: w.secs,
        hwm_kb: w.hwm_kb,
        state_bytes: std::fs::metadata(&state).expect("the state file").len(),
    }
}

/// The first [`CHANGED_CALLS`] calls of the first object in `dir` (pairs the set's state knows)
/// as new calls (new event ids), to fold after restoring that state.
fn changed_calls(dir: &Path) -> Vec<KmsCall> {
    let (key, object) = bench_moto::objects(dir).swap_remove(0);
    let d =
        decode_object(&object, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{key}: {e}"));
    d.calls
        .into_iter()
        .take(CHANGED_CALLS)
        .enumerate()
        .map(|(i, mut c)| {
            c.event_id = format!("bench-changed-{i}").into();
            c.dedupe_id = u64::MAX - i as u64;
            c
        })
        .collect()
}

/// Loads and restores the state at `path` (timed), saves it in full (timed), folds `changes`
/// (moved to just after the state's latest event) and saves again (timed).
fn state_times(path: &Path, rules: impl Fn() -> RuleSet, changes: &[KmsCall]) -> StateTimes {
    let t = Instant::now();
    let resumed =
        Engine::resume(EngineConfig::default(), rules(), path).expect("restoring the state");
    let load = t.elapsed().as_secs_f64();
    assert!(
        resumed.notes.is_empty(),
        "restoring the replay's state: {:?}",
        resumed.notes
    );
    let out = path.with_file_name("state-saved.state");
    let checkpoint = Checkpointing::new(out, Duration::from_secs(30));
    // The service's checkpointing: nothing saved at `out` yet, so the first save is whole.
    let mut engine = Journaled::new(resumed.engine, Some(checkpoint), None);
    let (full_save, saved) = timed_save(&mut engine);
    assert!(matches!(saved, Saved::Whole { .. }), "{saved:?}");

    let latest = engine.max_event_time().expect("the state has events");
    let mut alerts = Vec::new();
    engine.begin_object(Some(latest + 60), None);
    for c in changes {
        let mut c = c.clone();
        c.time = latest + 1;
        engine.fold(&c, &mut alerts);
    }
    engine.end_object(&mut alerts);
    let (incremental_save, saved) = timed_save(&mut engine);
    let Saved::Delta { bytes, .. } = saved else {
        panic!("the second save is not a delta: {saved:?}")
    };
    StateTimes {
        load,
        full_save,
        incremental_save,
        delta_bytes: bytes,
    }
}

/// Seconds of one save of the service's checkpointing (`serve::journal::Journaled::save`, as the
/// fold makes it between objects): the whole file the first time, a journal delta of what was
/// folded since after that. The "incremental save" column is the second: everything between the
/// fold and the data being durable (the delta's end, fsync, rename, the directory's fsync).
fn timed_save(engine: &mut Journaled) -> (f64, Saved) {
    let t = Instant::now();
    let saved = engine.save(Vec::new(), false).expect("saving the state");
    (t.elapsed().as_secs_f64(), saved)
}

/// Seconds of decompression alone and of replay of one set, on one core and on the pool.
struct Throughput {
    json_bytes: u64,
    inflate_one: f64,
    replay_one: f64,
    inflate_n: f64,
    replay_n: f64,
}

fn throughput(
    set: &Set,
    files: &[Vec<u8>],
    replayed: &Replayed,
    rules: impl Fn() -> RuleSet,
    runs: usize,
) -> Throughput {
    let limits = DecodeLimits::default();
    let best = |f: &dyn Fn() -> u64| bench_set::best_of(runs, f);
    let (inflate_one, json_bytes) = best(&|| bench_set::inflate_all(files, &limits));
    let (inflate_n, _) = best(&|| bench_set::inflate_all_par(files, &limits));
    let (replay_one, calls_one) = best(&|| bench_set::fold_sequentially(files, rules(), &limits));
    let (replay_n, calls_n) = best(&|| bench_set::replay_dir(&set.dir, rules()));
    assert_eq!(json_bytes, replayed.json_bytes, "the JSON replay read");
    assert_eq!(
        calls_one, replayed.kms_calls,
        "sequential fold and replay differ"
    );
    assert_eq!(
        calls_n, replayed.kms_calls,
        "in-process replay and replay differ"
    );
    Throughput {
        json_bytes,
        inflate_one,
        replay_one,
        inflate_n,
        replay_n,
    }
}

/// What serve measured after ingesting a set.
struct Served {
    objects: u64,
    kms_calls: u64,
    secs: f64,
    rss_kb: u64,
    hwm_kb: u64,
}

/// `kmswatch serve` over the set in `dir`, from one notification per object to every message
/// deleted; fails unless it counted `expected` KMS calls and exits 0 on SIGTERM.
fn serve(dir: &Path, expected: u64) -> Served {
    let objects = bench_moto::objects(dir);
    let n = objects.len() as u64;
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let moto = Moto::start();
    let clients = Arc::new(rt.block_on(moto.clients()));
    let q = rt.block_on(async {
        bench_moto::upload(&clients, BUCKET, &objects, 8).await;
        let q = clients.queues("scale-bench", MAX_RECEIVES).await;
        bench_moto::notify(&clients, &q.url, BUCKET, &objects).await;
        q
    });
    drop(objects);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let cfg = service_config(scratch.path(), &moto, &q.url, &[BUCKET], port, "");
    let t = Instant::now();
    let mut svc = Service::start(&cfg, port, &scratch.path().join("serve.log"));
    let timeout = Duration::from_secs(120 + n);
    loop {
        let m = svc.metrics();
        let failed = metric(&m, "kmswatch_sqs_messages_failed_total", &[]);
        assert!(
            failed == 0.0,
            "serve failed {failed} messages:\n{}",
            svc.log_text()
        );
        if metric(&m, "kmswatch_sqs_messages_deleted_total", &[]) >= n as f64 {
            break;
        }
        assert!(
            t.elapsed() < timeout,
            "serve did not delete every message within {timeout:?}:\n{}",
            svc.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let secs = t.elapsed().as_secs_f64();
    let (rss_kb, hwm_kb) = memory_kb(svc.pid());
    let kms_calls = metric(&svc.metrics(), "kmswatch_kms_calls_total", &[]) as u64;
    assert_eq!(
        kms_calls, expected,
        "serve and replay count other KMS calls"
    );
    let status = svc.signal("TERM").expect("an exit status");
    assert!(
        status.success(),
        "kmswatch serve exited with {status} after SIGTERM:\n{}",
        svc.log_text()
    );
    assert_eq!(
        rt.block_on(clients.depth(&q.dlq_url)),
        0,
        "dead-letter queue empty"
    );
    Served {
        objects: n,
        kms_calls,
        secs,
        rss_kb,
        hwm_kb,
    }
}
