//! Fuzzing on the stable toolchain: mutated and generated inputs for the object decoder, the
//! notification parser, the rule loader, the configuration loader and the state loader (states
//! edited as their JSON rendering and saved in the binary format, and binary state files edited
//! byte by byte, with `Engine::restore`), seeded with the committed samples.
//!
//! Every target checks that its input never panics, hangs (the watchdog aborts with the case) or
//! takes memory out of proportion to it, that errors are typed and name the thing they are about,
//! and, where cheap, a round trip or a second reading of the same input (a differential oracle).
//! The bounded run (`KMSWATCH_FUZZ_CASES`, default 400 per target) is part of `scripts/test`; the
//! long run is `KMSWATCH_FUZZ_CASES=40000 CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo test --test fuzz`
//! (optimised, with overflow checks, unlike `--release`), with
//! `KMSWATCH_FUZZ_SEED` choosing another reproducible sequence. Crashes found become the named
//! regression cases at the end of this file.

#[path = "../common/mod.rs"]
mod common;
mod harness;
mod mutate;
mod seeds;

use std::path::{Path, PathBuf};

use kmswatch::config;
use kmswatch::decode::{decode_object, DecodeLimits, DecodedObject, ObjectError};
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::problem::Problem;
use kmswatch::rules::{load_texts, EvalLimits, RuleSet};
use kmswatch::sources::notify::{
    parse_notification, Notification, NotifyError, MAX_BODY_BYTES, MAX_OBJECTS_PER_MESSAGE,
};
use kmswatch::state::{self, StateError};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

use harness::{bounded_memory, fuzz, outcome, CountingAlloc};
use mutate::{Op, JSON_TOKENS, TOML_TOKENS};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Fails the case with `msg` unless `cond`.
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($msg)+)));
        }
    };
}

/// Memory a case may take beyond its input's share (parsed trees, a rule set, an engine).
const FIXED_MEMORY: usize = 64 << 20;

/// Peak memory a case may take per byte of input (a JSON tree is ~10x its text).
const MEMORY_PER_BYTE: usize = 64;

fn gzip(data: &[u8]) -> Vec<u8> {
    common::gzip(data)
}

// ---------------------------------------------------------------------------------------------
// decode: an object's bytes (gzip, the Records split, each record's parse and normalisation)

#[derive(Debug, Clone)]
struct DecodeCase {
    seed: Index,
    mode: u8,
    limits: u8,
    ops: Vec<Op>,
}

fn decode_case() -> impl Strategy<Value = DecodeCase> {
    (any::<Index>(), any::<u8>(), any::<u8>(), mutate::ops(8)).prop_map(
        |(seed, mode, limits, ops)| DecodeCase {
            seed,
            mode,
            limits,
            ops,
        },
    )
}

/// The object's bytes and, when known, its decompressed JSON.
fn decode_input(case: &DecodeCase) -> (Vec<u8>, Option<Vec<u8>>) {
    let objects = seeds::objects();
    let seed = case.seed.get(objects);
    let json_donors: Vec<&[u8]> = objects.iter().map(|o| o.json.as_slice()).collect();
    let (head, tail) = case.ops.split_at(case.ops.len() / 2);
    let mutated_tree = |ops: &[Op]| {
        // A window of at most 8 of the seed's records keeps the tree (and the case) small.
        let mut v = seed.value.clone();
        if let Some(Value::Array(records)) = v.get_mut("Records") {
            let start = case.limits as usize * 7 % records.len().max(1);
            let window: Vec<Value> = records.iter().skip(start).take(8).cloned().collect();
            *records = window;
        }
        let donors: Vec<&Value> = objects.iter().map(|o| &o.value).collect();
        mutate::tree(&mut v, ops, &donors);
        serde_json::to_vec(&v).expect("a JSON tree serialises")
    };
    let mutated_bytes = |from: &[u8], ops: &[Op]| {
        let mut b = from.to_vec();
        mutate::bytes(&mut b, ops, JSON_TOKENS, &json_donors);
        b
    };
    let json = match case.mode % 6 {
        0 => {
            let gz_donors: Vec<&[u8]> = objects.iter().map(|o| o.gz.as_slice()).collect();
            let mut gz = seed.gz.clone();
            mutate::bytes(&mut gz, &case.ops, JSON_TOKENS, &gz_donors);
            return (gz, None);
        }
        1 | 2 => mutated_bytes(&seed.json, &case.ops),
        3 | 4 => mutated_tree(&case.ops),
        _ => mutated_bytes(&mutated_tree(head), tail),
    };
    match case.mode % 6 {
        2 | 4 => (gzip(&json), Some(json)),
        _ => (json.clone(), Some(json)),
    }
}

fn decode_limits(case: &DecodeCase, json_len: usize) -> DecodeLimits {
    let d = DecodeLimits::default();
    match case.limits % 16 {
        0 => DecodeLimits {
            max_object_bytes: json_len / 2,
            ..d
        },
        1 => DecodeLimits {
            max_records_per_object: 1,
            ..d
        },
        2 => DecodeLimits {
            max_object_bytes: 0,
            max_records_per_object: 0,
        },
        _ => d,
    }
}

/// What a complete JSON reading says of an object: its record count and how many records have
/// `"eventSource":"kms.amazonaws.com"`, when it is `{"Records":[...]}`.
fn oracle(json: &[u8]) -> Option<(usize, usize)> {
    let v: Value = serde_json::from_slice(json).ok()?;
    let records = v.as_object()?.get("Records")?.as_array()?;
    let kms = records
        .iter()
        .filter(|r| r.get("eventSource").and_then(Value::as_str) == Some("kms.amazonaws.com"))
        .count();
    Some((records.len(), kms))
}

fn check_decoded(
    d: &DecodedObject,
    limits: &DecodeLimits,
    json: Option<&[u8]>,
) -> Result<(), TestCaseError> {
    let s = d.stats;
    check!(
        s.records == s.non_kms_records + d.calls.len() as u64 + s.malformed_records,
        "records do not add up: {s:?}, {} calls",
        d.calls.len()
    );
    check!(
        s.kms_records >= d.calls.len() as u64,
        "more calls than KMS records: {s:?}"
    );
    check!(
        d.record_errors.len() as u64 == s.malformed_records.min(20),
        "{} record errors kept for {} malformed",
        d.record_errors.len(),
        s.malformed_records
    );
    check!(
        d.record_errors.windows(2).all(|w| w[0].index < w[1].index)
            && d.record_errors.iter().all(|e| (e.index as u64) < s.records
                && e.to_string().starts_with(&format!("record {}", e.index))),
        "record errors out of order or unnamed: {:?}",
        d.record_errors
    );
    check!(
        s.decompressed_bytes <= limits.max_object_bytes as u64
            && s.records <= limits.max_records_per_object as u64,
        "limits {limits:?} not applied: {s:?}"
    );
    if let Some((records, kms)) = json.and_then(oracle) {
        check!(
            s.records == records as u64,
            "{} records split, a JSON reading finds {records}",
            s.records
        );
        check!(
            s.kms_records <= kms as u64 && kms as u64 <= s.kms_records + s.malformed_records,
            "{kms} KMS records in a JSON reading, decoded {s:?}"
        );
    }
    Ok(())
}

fn check_object_error(
    e: &ObjectError,
    limits: &DecodeLimits,
    json: Option<&[u8]>,
) -> Result<(), TestCaseError> {
    check!(
        ObjectError::KINDS.contains(&e.kind()),
        "unknown kind {}",
        e.kind()
    );
    check!(!e.to_string().is_empty(), "empty message for {e:?}");
    if let Some(json) = json {
        if let Some((records, _)) = oracle(json) {
            check!(
                json.len() > limits.max_object_bytes || records > limits.max_records_per_object,
                "a valid log object within the limits is rejected: {e}"
            );
        }
    }
    Ok(())
}

#[test]
fn fuzz_decode_object() {
    fuzz("decode", decode_case(), |case| {
        let (bytes, json) = decode_input(&case);
        let limits = decode_limits(&case, json.as_ref().map_or(bytes.len(), Vec::len));
        let decoded = bounded_memory("decode", bytes.len(), MEMORY_PER_BYTE, FIXED_MEMORY, || {
            decode_object(&bytes, &limits)
        })?;
        match decoded {
            Ok(d) => {
                outcome(if d.calls.is_empty() {
                    "ok, no calls"
                } else {
                    "ok, calls"
                });
                check_decoded(&d, &limits, json.as_deref())
            }
            Err(e) => {
                outcome(e.kind());
                check_object_error(&e, &limits, json.as_deref())
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// notify: SQS message bodies

#[derive(Debug, Clone)]
struct NotifyCase {
    seed: Index,
    mode: u8,
    ops: Vec<Op>,
}

fn notify_case() -> impl Strategy<Value = NotifyCase> {
    (any::<Index>(), any::<u8>(), mutate::ops(8)).prop_map(|(seed, mode, ops)| NotifyCase {
        seed,
        mode,
        ops,
    })
}

fn sns(message: &str) -> String {
    common::aws::sns_envelope(message)
}

/// The body, and the unwrapped body when the case wrapped one in an SNS envelope.
fn notify_input(case: &NotifyCase) -> (String, Option<String>) {
    let bodies = seeds::notifications();
    let seed = case.seed.get(bodies);
    let donors: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
    let tree = || {
        let mut v: Value = serde_json::from_str(seed).expect("seed bodies are JSON");
        let trees: Vec<Value> = bodies
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect();
        let refs: Vec<&Value> = trees.iter().collect();
        mutate::tree(&mut v, &case.ops, &refs);
        v.to_string()
    };
    match case.mode % 4 {
        0 => {
            let mut b = seed.as_bytes().to_vec();
            mutate::bytes(&mut b, &case.ops, JSON_TOKENS, &donors);
            (String::from_utf8_lossy(&b).into_owned(), None)
        }
        1 => (tree(), None),
        2 => {
            let inner = tree();
            (sns(&inner), Some(inner))
        }
        _ => {
            let mut b = sns(&tree()).into_bytes();
            mutate::bytes(
                &mut b,
                &case.ops[case.ops.len() / 2..],
                JSON_TOKENS,
                &donors,
            );
            (String::from_utf8_lossy(&b).into_owned(), None)
        }
    }
}

fn check_notification(
    body: &str,
    n: &Result<Notification, NotifyError>,
) -> Result<(), TestCaseError> {
    match n {
        Ok(Notification::Objects { objects, .. }) => {
            check!(
                objects.len() <= MAX_OBJECTS_PER_MESSAGE,
                "{} objects",
                objects.len()
            );
            check!(
                objects
                    .iter()
                    .all(|o| !o.bucket.is_empty() && !o.key.is_empty()),
                "an object without bucket or key: {objects:?}"
            );
        }
        Ok(Notification::Test) => {}
        Err(e) => {
            check!(
                !e.kind().is_empty() && !e.to_string().is_empty(),
                "unnamed error {e:?}"
            );
            check!(
                body.len() <= MAX_BODY_BYTES || matches!(e, NotifyError::TooLarge { .. }),
                "a {}-byte body is not too large: {e}",
                body.len()
            );
        }
    }
    Ok(())
}

#[test]
fn fuzz_notification() {
    fuzz("notify", notify_case(), |case| {
        let (body, inner) = notify_input(&case);
        let parsed = bounded_memory("notify", body.len(), MEMORY_PER_BYTE, FIXED_MEMORY, || {
            parse_notification(&body)
        })?;
        outcome(match &parsed {
            Ok(Notification::Objects { .. }) => "objects",
            Ok(Notification::Test) => "test",
            Err(e) => e.kind(),
        });
        check_notification(&body, &parsed)?;
        check!(parsed == parse_notification(&body), "two readings differ");
        // Differential: an SNS envelope around a body announces what the body announces.
        if let Some(inner) = inner {
            if let Ok(Notification::Objects {
                shape,
                sns: false,
                objects,
            }) = parse_notification(&inner)
            {
                check!(
                    parsed
                        == Ok(Notification::Objects {
                            shape,
                            sns: true,
                            objects
                        }),
                    "in an SNS envelope the body reads as {parsed:?}"
                );
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// rules: rule files held in memory, then an engine running what loads

#[derive(Debug, Clone)]
struct RulesCase {
    files: Vec<(Index, u8, Vec<Op>)>,
}

fn rules_case() -> impl Strategy<Value = RulesCase> {
    proptest::collection::vec((any::<Index>(), any::<u8>(), mutate::ops(6)), 1..=3)
        .prop_map(|files| RulesCase { files })
}

/// TOML text edited as a tree: read into JSON values, edited, written back (`None` when the
/// edit made something TOML cannot hold, such as `null`).
fn toml_tree(text: &str, ops: &[Op], donors: &[Value]) -> Option<String> {
    let mut v: Value = toml::from_str(text).ok()?;
    let refs: Vec<&Value> = donors.iter().collect();
    mutate::tree(&mut v, ops, &refs);
    toml::to_string(&v).ok()
}

/// A TOML text edited as bytes (modes 0, 1), as a tree (2, 3), as a tree then as bytes (4), or
/// unchanged.
fn toml_input(text: &str, mode: u8, ops: &[Op], texts: &[&str]) -> String {
    let donors: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    let bytes_of = |t: &str, ops: &[Op]| {
        let mut b = t.as_bytes().to_vec();
        mutate::bytes(&mut b, ops, TOML_TOKENS, &donors);
        String::from_utf8_lossy(&b).into_owned()
    };
    let trees = || -> Vec<Value> {
        texts
            .iter()
            .filter_map(|t| toml::from_str(t).ok())
            .collect()
    };
    match mode % 6 {
        0 | 1 => bytes_of(text, ops),
        2 | 3 => toml_tree(text, ops, &trees()).unwrap_or_else(|| text.to_owned()),
        4 => {
            let (head, tail) = ops.split_at(ops.len() / 2);
            let t = toml_tree(text, head, &trees()).unwrap_or_else(|| text.to_owned());
            bytes_of(&t, tail)
        }
        _ => text.to_owned(),
    }
}

/// A problem located in one of `files` (name and text), inside the text.
fn check_problem(p: &Problem, files: &[(PathBuf, String)]) -> Result<(), TestCaseError> {
    let Some((_, text)) = files.iter().find(|(f, _)| *f == p.file) else {
        return Err(TestCaseError::fail(format!(
            "problem names no given file: {p}"
        )));
    };
    let lines = text.split('\n').count();
    check!(
        p.line >= 1 && p.line <= lines && p.col >= 1 && !p.message.is_empty(),
        "problem outside its file ({lines} lines): {p}"
    );
    check!(
        p.to_string()
            .starts_with(&format!("{}:{}:{}: ", p.file.display(), p.line, p.col)),
        "problem does not lead with its place: {p}"
    );
    Ok(())
}

/// Folds the seed calls through an engine with `rules` to the end of input: what the loader
/// accepts must run.
fn run_engine(config: EngineConfig, rules: RuleSet) -> Engine {
    let mut engine = Engine::new(config, rules);
    let mut out = Vec::new();
    for call in seeds::calls() {
        engine.ingest(call.clone(), &mut out);
    }
    engine.end_object(&mut out);
    engine.finish(&mut out);
    engine
}

#[test]
fn fuzz_rule_loader() {
    fuzz("rules", rules_case(), |case| {
        let seeds = seeds::rules();
        let texts: Vec<&str> = seeds.iter().map(|(_, t)| t.as_str()).collect();
        let files: Vec<(PathBuf, String)> = case
            .files
            .iter()
            .enumerate()
            .map(|(i, (seed, mode, ops))| {
                let (name, text) = seed.get(seeds);
                // A file given twice is named twice, so a problem says which copy it is in.
                let name = if i == 0 {
                    name.clone()
                } else {
                    name.with_extension(format!("{i}.toml"))
                };
                (name, toml_input(text, *mode, ops, &texts))
            })
            .collect();
        let refs: Vec<(&Path, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_path(), t.as_str()))
            .collect();
        let size = files.iter().map(|(_, t)| t.len()).sum();
        let loaded = bounded_memory("rules", size, MEMORY_PER_BYTE, FIXED_MEMORY, || {
            load_texts(&refs)
        })?;
        match loaded {
            Ok(set) => {
                outcome("loaded and ran");
                let again = load_texts(&refs)
                    .map_err(|e| TestCaseError::fail(format!("second load fails: {e}")))?;
                let prints = |s: &RuleSet| -> Vec<String> {
                    s.rules.iter().map(|r| r.fingerprint(300)).collect()
                };
                check!(prints(&set) == prints(&again), "two loads differ");
                bounded_memory("rules engine", size, MEMORY_PER_BYTE, FIXED_MEMORY, || {
                    run_engine(EngineConfig::default(), set)
                })?;
            }
            Err(e) => {
                outcome("problems");
                check!(!e.problems.is_empty(), "an error without problems");
                for p in &e.problems {
                    check_problem(p, &files)?;
                }
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// config: the service's configuration text and environment

/// The variables the configuration reads, and values to give them.
const ENV_NAMES: &[&str] = &[
    "KMSWATCH_QUEUE_URL",
    "KMSWATCH_BUCKETS",
    "KMSWATCH_REGION",
    "KMSWATCH_ENDPOINT_URL",
    "KMSWATCH_LISTEN",
    "KMSWATCH_LOG_FORMAT",
    "KMSWATCH_STATE_PATH",
    "KMSWATCH_ALERTMANAGER_URLS",
    "KMSWATCH_API_TOKEN",
    "KMSWATCH_WEBHOOK_SECRET",
    "KMSWATCH_WEBHOOK_TOKEN",
];
const ENV_VALUES: &[&str] = &[
    "",
    " ",
    "x",
    "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    "https://sqs.us-east-1.amazonaws.com/",
    "a,b,,c",
    "trail-bucket",
    "Trail_Bucket..",
    "us-east-1",
    "http://127.0.0.1:4566",
    "0.0.0.0:99999",
    "[::1]:9000",
    "json",
    "text",
    "/var/lib/kmswatch/state.json",
    "relative/state.json",
    "http://127.0.0.1:9093,http://[::1]:9093",
    "ftp://x",
    "\u{0}",
    "é😀",
];

#[derive(Debug, Clone)]
struct ConfigCase {
    seed: Index,
    mode: u8,
    ops: Vec<Op>,
    env: Vec<(Index, Index)>,
}

fn config_case() -> impl Strategy<Value = ConfigCase> {
    (
        any::<Index>(),
        any::<u8>(),
        mutate::ops(8),
        proptest::collection::vec((any::<Index>(), any::<Index>()), 0..=3),
    )
        .prop_map(|(seed, mode, ops, env)| ConfigCase {
            seed,
            mode,
            ops,
            env,
        })
}

#[test]
fn fuzz_config_loader() {
    let origin = PathBuf::from("/etc/kmswatch/kmswatch.toml");
    fuzz("config", config_case(), |case| {
        let configs = seeds::configs();
        let texts: Vec<&str> = configs.iter().map(String::as_str).collect();
        let seed: &String = case.seed.get(configs);
        let text = toml_input(seed, case.mode, &case.ops, &texts);
        let vars: Vec<(&str, &str)> = case
            .env
            .iter()
            .map(|(n, v)| (*n.get(ENV_NAMES), *v.get(ENV_VALUES)))
            .collect();
        let env = |name: &str| {
            vars.iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        };
        let parsed = bounded_memory("config", text.len(), MEMORY_PER_BYTE, FIXED_MEMORY, || {
            config::parse(&text, &origin, &env)
        })?;
        match parsed {
            Ok(c) => {
                outcome("valid");
                let again = config::parse(&text, &origin, &env);
                check!(
                    again
                        .as_ref()
                        .is_ok_and(|a| format!("{a:?}") == format!("{c:?}")),
                    "two readings differ"
                );
            }
            Err(e) => {
                outcome("problems");
                check!(
                    e.file == origin && !e.problems.is_empty(),
                    "an error without problems: {e:?}"
                );
                let files = [(origin.clone(), text.clone())];
                for p in &e.problems {
                    match p {
                        config::ConfigProblem::File(p) => check_problem(p, &files)?,
                        config::ConfigProblem::Env { var, message } => check!(
                            var.starts_with("KMSWATCH_") && !message.is_empty(),
                            "unnamed variable problem: {p}"
                        ),
                    }
                }
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// state: a state file loaded, saved again, restored and run

#[derive(Debug, Clone)]
struct StateCase {
    seed: Index,
    mode: u8,
    setup: u8,
    ops: Vec<Op>,
}

fn state_case() -> impl Strategy<Value = StateCase> {
    (any::<Index>(), any::<u8>(), any::<u8>(), mutate::ops(8)).prop_map(
        |(seed, mode, setup, ops)| StateCase {
            seed,
            mode,
            setup,
            ops,
        },
    )
}

fn state_input(case: &StateCase) -> Vec<u8> {
    let states = seeds::states();
    let seed = case.seed.get(states);
    let donors: Vec<&[u8]> = states.iter().map(Vec::as_slice).collect();
    // Call ids are 128-bit integers, which `Value` cannot hold: they are edited as strings.
    let parse = |s: &[u8]| -> Value {
        serde_json::from_slice(&mutate::protect_big_integers(s)).expect("a saved state is JSON")
    };
    let write = |v: &Value| mutate::unprotect_big_integers(&serde_json::to_vec(v).expect("JSON"));
    let tree = |ops: &[Op]| {
        let mut v = parse(seed);
        let trees: Vec<Value> = states.iter().map(|s| parse(s)).collect();
        let refs: Vec<&Value> = trees.iter().collect();
        mutate::tree(&mut v, ops, &refs);
        write(&v)
    };
    let bytes = |from: &[u8], ops: &[Op]| {
        let mut b = from.to_vec();
        mutate::bytes(&mut b, ops, JSON_TOKENS, &donors);
        b
    };
    let typed = || {
        let mut v = parse(seed);
        mutate::typed(&mut v, &case.ops);
        write(&v)
    };
    match case.mode % 6 {
        0 => bytes(seed, &case.ops),
        1 => tree(&case.ops),
        2..=4 => typed(),
        _ => {
            let (head, tail) = case.ops.split_at(case.ops.len() / 2);
            bytes(&tree(head), tail)
        }
    }
}

/// The configuration and rules a state is restored under: the defaults and the shipped rules,
/// tight limits, a different window, or some rules left out.
fn restore_setup(setup: u8) -> (EngineConfig, RuleSet) {
    let mut config = EngineConfig::default();
    let mut rules = seeds::shipped_rules().clone();
    if setup & 1 != 0 {
        config.max_dedupe_ids = 5;
        config.max_keys = 3;
        config.max_aliases = 2;
        config.max_report_rows = 3;
        config.limits = EvalLimits {
            max_groups_per_rule: 2,
            max_principals_per_key: 2,
        };
    }
    if setup & 2 != 0 {
        rules.rules.retain(|r| r.id.len() % 2 == 0);
    }
    if setup & 4 != 0 {
        config.allowed_lateness_secs = 0;
        config.dedupe_horizon_secs = 60;
    }
    if setup & 8 != 0 && setup & 16 != 0 {
        config.window_secs = 60;
    }
    (config, rules)
}

fn state_error_kind(e: &StateError) -> &'static str {
    match e {
        StateError::Missing { .. } => "missing",
        StateError::Io { .. } => "io",
        StateError::Corrupt { .. } => "corrupt",
        StateError::NotState { .. } => "not state",
        StateError::Incompatible { .. } => "incompatible",
        StateError::Setting { .. } => "setting",
        StateError::OverLimits { .. } => "over limits",
        StateError::Inconsistent { .. } => "inconsistent",
    }
}

/// A state error names the file it is about.
fn check_state_error(e: &StateError, path: &Path) -> Result<(), TestCaseError> {
    check!(
        e.to_string().starts_with(&path.display().to_string()),
        "state error does not name {}: {e}",
        path.display()
    );
    Ok(())
}

fn saved_bytes(path: &Path, state: &state::EngineState) -> Result<Vec<u8>, TestCaseError> {
    state::save(path, state).map_err(|e| TestCaseError::fail(format!("save fails: {e}")))?;
    std::fs::read(path).map_err(|e| TestCaseError::fail(format!("read back: {e}")))
}

fn load_ok(path: &Path) -> Result<state::EngineState, TestCaseError> {
    state::load(path).map_err(|e| TestCaseError::fail(format!("a saved state does not load: {e}")))
}

/// The state in `json`, saved as a binary file at `path`; `None` when the text is no state.
fn from_json(path: &Path, json: &[u8]) -> Result<Option<state::EngineState>, TestCaseError> {
    let parsed = bounded_memory(
        "state from JSON",
        json.len(),
        MEMORY_PER_BYTE,
        FIXED_MEMORY,
        || serde_json::from_slice::<state::EngineState>(json),
    )?;
    let Ok(parsed) = parsed else {
        return Ok(None);
    };
    state::save(path, &parsed).map_err(|e| TestCaseError::fail(format!("save fails: {e}")))?;
    Ok(Some(parsed))
}

#[test]
fn fuzz_state_loader() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let input = dir.path().join("input.state");
    let out = dir.path().join("saved.state");
    fuzz("state", state_case(), |case| {
        let json = state_input(&case);
        // JSON text is never a state file (format 5 on): loading it is a clean error.
        std::fs::write(&input, &json).expect("write the input");
        let loaded = bounded_memory(
            "state load (JSON)",
            json.len(),
            MEMORY_PER_BYTE,
            FIXED_MEMORY,
            || state::load(&input),
        )?;
        match loaded {
            Ok(_) => return Err(TestCaseError::fail("a JSON file loads as a state")),
            Err(e) => check_state_error(&e, &input)?,
        }
        // The edited rendering, if it still reads as a state, saved in the binary format.
        let Some(parsed) = from_json(&input, &json)? else {
            outcome("not a state as JSON");
            return Ok(());
        };
        let loaded = bounded_memory(
            "state load",
            json.len(),
            MEMORY_PER_BYTE,
            FIXED_MEMORY,
            || state::load(&input),
        )?;
        // What reads from JSON saves and loads as the same state.
        let st = loaded.map_err(|e| {
            TestCaseError::fail(format!("a state read from JSON does not load: {e}"))
        })?;
        check!(
            serde_json::to_string(&st).ok() == serde_json::to_string(&parsed).ok(),
            "a state read from JSON loads as another"
        );
        // Round trip: what loads saves, and saving what that loads gives the same bytes.
        let first = saved_bytes(&out, &st)?;
        let second = saved_bytes(&out, &load_ok(&out)?)?;
        check!(
            first == second,
            "a loaded state does not save the same twice"
        );
        let (config, rules) = restore_setup(case.setup);
        let restored =
            bounded_memory("restore", json.len(), MEMORY_PER_BYTE, FIXED_MEMORY, || {
                Engine::restore(config.clone(), rules.clone(), st)
            })?;
        let mut engine = match restored {
            Ok((engine, _notes)) => engine,
            Err(e) => {
                outcome(&format!("loaded, restore: {}", state_error_kind(&e)));
                return check_state_error(&e, &input);
            }
        };
        outcome("restored and ran");
        // What restores runs, and its own snapshot restores again unchanged.
        bounded_memory(
            "restored engine",
            json.len(),
            MEMORY_PER_BYTE,
            FIXED_MEMORY,
            || {
                let mut alerts = Vec::new();
                for call in seeds::calls().iter().take(20) {
                    engine.fold(call, &mut alerts);
                }
                engine.end_object(&mut alerts);
            },
        )?;
        let snapshot = saved_bytes(&out, &engine.snapshot())?;
        let (again, notes) = Engine::restore(config, rules, load_ok(&out)?).map_err(|e| {
            TestCaseError::fail(format!("an engine's own state does not restore: {e}"))
        })?;
        check!(
            notes.is_empty(),
            "restoring an engine's own state: {notes:?}"
        );
        check!(
            saved_bytes(&out, &again.snapshot())? == snapshot,
            "an engine's own state restores to a different state"
        );
        Ok(())
    });
}

#[derive(Debug, Clone)]
struct StateBytesCase {
    seed: Index,
    /// Odd: the checksum is recomputed after the edits, so the decoder sees the edited body.
    reseal: u8,
    ops: Vec<Op>,
}

/// Bytes inserted into binary state files: MessagePack markers of long strings, arrays and maps,
/// the reserved marker, and the magic prefix.
const STATE_TOKENS: &[&[u8]] = &[
    b"\x00",
    b"\xff",
    b"\xc1",
    b"\xdb\xff\xff\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xdf\xff\xff\xff\xff",
    b"\x91",
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"kmswatch.state\x00",
];

#[test]
fn fuzz_binary_state_files() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let input = dir.path().join("input.state");
    let strategy = (any::<Index>(), any::<u8>(), mutate::ops(4))
        .prop_map(|(seed, reseal, ops)| StateBytesCase { seed, reseal, ops });
    fuzz("state bytes", strategy, |case| {
        let seeds = seeds::binary_states();
        let seed = case.seed.get(seeds);
        let donors: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
        let resealed = case.reseal % 2 == 1;
        let mut bytes = seed.clone();
        if resealed {
            bytes.truncate(bytes.len() - 8);
        }
        mutate::bytes(&mut bytes, &case.ops, STATE_TOKENS, &donors);
        if resealed {
            let sum = xxhash_rust::xxh3::xxh3_64(&bytes);
            bytes.extend_from_slice(&sum.to_le_bytes());
        }
        std::fs::write(&input, &bytes).expect("write the input");
        let loaded = bounded_memory(
            "binary state load",
            bytes.len(),
            MEMORY_PER_BYTE,
            FIXED_MEMORY,
            || state::load(&input),
        )?;
        match loaded {
            Ok(st) => {
                // Only an unchanged body decodes (or, resealed, one whose edits still decode).
                check!(
                    resealed || bytes == *seed,
                    "an altered file without a fixed checksum loads"
                );
                outcome(if bytes == *seed {
                    "unchanged"
                } else {
                    "resealed, loads"
                });
                let (config, rules) = (EngineConfig::default(), seeds::shipped_rules().clone());
                if let Err(e) = Engine::restore(config, rules, st) {
                    check_state_error(&e, &input)?;
                }
            }
            Err(e) => {
                check!(bytes != *seed, "an unchanged file does not load: {e}");
                outcome(state_error_kind(&e));
                check_state_error(&e, &input)?;
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Regression cases: each crash the fuzzer found, with its exact input.

/// A state with every count (not times) under the top-level `fields` set to `u64::MAX`.
fn counts_at_max(state: &[u8], fields: &[&str]) -> Vec<u8> {
    const COUNTS: &[&str] = &[
        "calls",
        "failures",
        "crypto_calls",
        "management_calls",
        "kms_calls",
        "duplicates",
        "late",
        "alerts_firing",
        "alerts_resolved",
        "overflow",
    ];
    fn saturate(v: &mut Value, all: bool) {
        match v {
            Value::Number(n) if all && n.is_u64() => *n = u64::MAX.into(),
            Value::Array(a) => a.iter_mut().for_each(|c| saturate(c, all)),
            Value::Object(o) => o.iter_mut().for_each(|(k, c)| {
                // `one` names the inference step of all of a row's calls: an index, not a count.
                let counts = k != "one"
                    && (all
                        || COUNTS.contains(&k.as_str())
                        || k == "by_operation"
                        || k == "by_source");
                saturate(c, counts)
            }),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_slice(&mutate::protect_big_integers(state)).expect("JSON");
    for field in fields {
        let part = v.get_mut(*field).expect("a state field");
        saturate(part, *field == "counters");
    }
    // The per-key-operation and per-alias tables are `[ids, count]` rows: the counts.
    for table in ["koo", "aliases"] {
        for row in v["totals"][table].as_array_mut().into_iter().flatten() {
            saturate(&mut row[1], true);
        }
    }
    mutate::unprotect_big_integers(&serde_json::to_vec(&v).expect("JSON"))
}

/// Found by fuzzing: a state file whose counts are at `u64::MAX` loaded and restored, and the
/// next call overflowed them (a panic in a debug build, a wrap to zero in a release build).
/// Counts now saturate.
#[test]
fn regression_counts_at_the_maximum_saturate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("state.state");
    let bytes = counts_at_max(&seeds::states()[1], &["counters", "totals"]);
    seeds::save_json_state(&path, &bytes).expect("a state");
    let st = state::load(&path).expect("a state with large counts loads");
    let (mut engine, _) =
        Engine::restore(EngineConfig::default(), seeds::shipped_rules().clone(), st)
            .expect("and restores");
    let mut alerts = Vec::new();
    for call in seeds::calls() {
        engine.fold(call, &mut alerts);
    }
    engine.end_object(&mut alerts);
    let counters = engine.counters();
    assert_eq!(counters.kms_calls, u64::MAX);
    assert_eq!(counters.duplicates, u64::MAX);
    state::save(&path, &engine.snapshot()).expect("saves");
    let saved = serde_json::to_value(state::load(&path).expect("loads")).expect("JSON");
    let keys = saved["totals"]["keys"].as_object().expect("per-key totals");
    assert!(!keys.is_empty());
    assert!(
        keys.values().all(|k| k["calls"].as_u64() == Some(u64::MAX)),
        "key call counts saturate"
    );
}

/// `state` with `field` set to `t` in every rule state that has it.
fn rule_times_at(state: &[u8], field: &str, t: i64) -> Vec<u8> {
    fn set(v: &mut Value, field: &str, t: i64) {
        match v {
            Value::Object(o) => o.iter_mut().for_each(|(k, c)| {
                if k == field {
                    *c = t.into();
                } else {
                    set(c, field, t);
                }
            }),
            Value::Array(a) => a.iter_mut().for_each(|c| set(c, field, t)),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_slice(&mutate::protect_big_integers(state)).expect("JSON");
    set(&mut v["rules"], field, t);
    mutate::unprotect_big_integers(&serde_json::to_vec(&v).expect("JSON"))
}

/// Found by fuzzing: a state file whose rule windows close near `i64::MAX` restored, and closing
/// the next window overflowed (`aggregate::windows`). Times beyond any event time are now an
/// inconsistent state, named, at restore; so are a watermark and latest event time beyond them.
#[test]
fn regression_a_state_time_beyond_any_event_time_is_inconsistent() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("state.state");
    let seed = &seeds::states()[1];
    let restore = |bytes: Vec<u8>| {
        seeds::save_json_state(&path, &bytes).expect("a state");
        let st = state::load(&path).expect("a state with odd times loads");
        Engine::restore(EngineConfig::default(), seeds::shipped_rules().clone(), st)
    };
    let mut v: Value = serde_json::from_slice(&mutate::protect_big_integers(seed)).expect("JSON");
    v["watermark"] = (i64::MAX - 299).into();
    let cases = [
        (
            rule_times_at(seed, "closed_before", i64::MAX - 299),
            "windows.closed_before is 9223372036854775508",
        ),
        (
            rule_times_at(seed, "next_start", i64::MIN + 1),
            "next_start is -9223372036854775807",
        ),
        (
            mutate::unprotect_big_integers(&serde_json::to_vec(&v).expect("JSON")),
            "watermark is 9223372036854775508",
        ),
    ];
    for (bytes, want) in cases {
        match restore(bytes) {
            Err(e @ StateError::Inconsistent { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with(&path.display().to_string()), "{text}");
                assert!(text.contains(want), "{text}");
            }
            Err(e) => panic!("{want}: another error: {e}"),
            Ok(_) => panic!("{want}: restored"),
        }
    }
    // Found by the round trip (seed 104): a key first seen at i64::MIN restored, and the engine's
    // own next state did not; the key's times are now checked at restore too.
    let text = String::from_utf8(seed.clone()).expect("UTF-8");
    let at = text
        .find("\"first_seen\":")
        .expect("a key in the catalogue");
    let comma = at + text[at..].find(',').expect("more fields");
    let early = format!(
        "{}\"first_seen\":{}{}",
        &text[..at],
        i64::MIN,
        &text[comma..]
    );
    match restore(early.into_bytes()) {
        Err(e @ StateError::Inconsistent { .. }) => {
            assert!(
                e.to_string().contains("first_seen is -9223372036854775808"),
                "{e}"
            )
        }
        other => panic!("a key first seen at i64::MIN: {:?}", other.map(|_| ())),
    }
    // The sentinels ("since the start", "nothing due") stay valid, and so do times within the
    // bound.
    for (field, t) in [
        ("closed_before", 1 << 39),
        ("next_due", i64::MAX),
        ("next_due", i64::MIN),
    ] {
        assert!(
            restore(rule_times_at(seed, field, t)).is_ok(),
            "{field} {t}"
        );
    }
}
