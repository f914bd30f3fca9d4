//! The committed samples the fuzz targets start from: log objects under `sample-logs/`, the
//! notification bodies of `src/sources/notify.rs`'s tests and `tests/common`, `rules/*.toml`,
//! `kmswatch.example.toml` (as shipped and with every option uncommented) and the states of a
//! small replay (as JSON renderings and as binary state files). Each is read once per test binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kmswatch::decode::{decode_object, DecodeLimits, KmsCall};
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::rules::{load_dir, RuleSet};
use kmswatch::state;
use serde_json::Value;

use crate::common::{self, repo};

/// One sample log object: as stored (gzip), decompressed, and parsed.
pub struct Object {
    pub name: String,
    pub gz: Vec<u8>,
    pub json: Vec<u8>,
    pub value: Value,
}

/// Strings (event names, an error code, a caller) whose smallest sample object is a seed: the
/// incidents behind the shipped rules.
const EVENTS: &[&str] = &[
    "CreateKey",
    "ScheduleKeyDeletion",
    "DisableKey",
    "PutKeyPolicy",
    "CreateGrant",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GenerateDataKey",
    "AccessDenied",
    "AWS Internal",
    "sharedEventID",
];

/// Evenly spaced sample objects added to the incident objects.
const SPREAD: usize = 12;

/// Largest compressed sample object taken as a seed (keeps a debug-build case fast).
const MAX_SEED_GZ: usize = 6 * 1024;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("sample-logs readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The seed objects, in delivery-time order (the timestamp in the file name).
pub fn objects() -> &'static [Object] {
    static OBJECTS: OnceLock<Vec<Object>> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        let mut files = Vec::new();
        walk(&repo().join("sample-logs"), &mut files);
        let logs: Vec<(PathBuf, Vec<u8>)> = files
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("/CloudTrail/"))
            .map(|p| {
                let gz = std::fs::read(&p).expect("sample object readable");
                (p, gz)
            })
            .filter(|(_, gz)| gz.len() <= MAX_SEED_GZ)
            .collect();
        assert!(logs.len() > SPREAD, "sample-logs has log objects");
        let mut picked: Vec<usize> = (0..SPREAD).map(|i| i * logs.len() / SPREAD).collect();
        let texts: Vec<Vec<u8>> = logs
            .iter()
            .map(|(_, gz)| {
                kmswatch::decode::decompress(gz, 64 << 20)
                    .expect("sample gunzips")
                    .into_owned()
            })
            .collect();
        for event in EVENTS {
            let needle = event.as_bytes();
            let smallest = (0..logs.len())
                .filter(|&i| texts[i].windows(needle.len()).any(|w| w == needle))
                .min_by_key(|&i| texts[i].len());
            picked.extend(smallest);
        }
        picked.sort_unstable();
        picked.dedup();
        let mut out: Vec<Object> = picked
            .into_iter()
            .map(|i| Object {
                name: logs[i]
                    .0
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                gz: logs[i].1.clone(),
                value: serde_json::from_slice(&texts[i]).expect("sample is JSON"),
                json: texts[i].clone(),
            })
            .collect();
        out.sort_by(|a, b| {
            delivery(&a.name)
                .cmp(delivery(&b.name))
                .then(a.name.cmp(&b.name))
        });
        out
    })
}

/// `20260203T1327Z` of `ACCOUNT_CloudTrail_REGION_20260203T1327Z_ID.json.gz`.
fn delivery(name: &str) -> &str {
    name.split('_').nth(3).unwrap_or(name)
}

/// The KMS calls of the first few seed objects, to run engines with fuzzed rules and states.
pub fn calls() -> &'static [KmsCall] {
    static CALLS: OnceLock<Vec<KmsCall>> = OnceLock::new();
    CALLS.get_or_init(|| {
        objects()
            .iter()
            .take(4)
            .flat_map(|o| {
                decode_object(&o.gz, &DecodeLimits::default())
                    .expect("sample decodes")
                    .calls
            })
            .collect()
    })
}

/// String literals in raw-string form (`r#"{...}"#`) in `file` that are whole JSON objects,
/// not format strings.
fn json_literals(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(file)).expect("source readable");
    text.split("r#\"")
        .skip(1)
        .filter_map(|s| s.split("\"#").next())
        .filter(|s| s.starts_with('{') && serde_json::from_str::<Value>(s).is_ok())
        .map(str::to_owned)
        .collect()
}

/// Notification bodies: the notification parser's own test bodies and the helpers the live
/// tests send through moto, raw and in SNS envelopes.
pub fn notifications() -> &'static [String] {
    static BODIES: OnceLock<Vec<String>> = OnceLock::new();
    BODIES.get_or_init(|| {
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_20260302T0015Z_AbCdEfGh12345678.json.gz";
        let mut out = json_literals("src/sources/notify.rs");
        out.push(common::aws::cloudtrail_notification("trail", &[key, "a+b%2Bc.json.gz"], false));
        out.push(common::aws::cloudtrail_notification("trail", &[key], true));
        out.push(common::aws::s3_event("trail", "a+b%2Bc.json.gz", 1234));
        out.push(common::aws::sns_envelope(&common::aws::s3_event("trail", key, 7)));
        out.push(common::aws::eventbridge("trail", key, 99));
        assert!(out.len() > 20, "notification seeds found");
        out
    })
}

/// The shipped rule files, named as in the repository.
pub fn rules() -> &'static [(PathBuf, String)] {
    static RULES: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(repo().join("rules"))
            .expect("rules/ readable")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("rule file readable");
                (PathBuf::from("rules").join(p.file_name().unwrap()), text)
            })
            .collect();
        out.sort();
        out
    })
}

/// The shipped rules, loaded.
pub fn shipped_rules() -> &'static RuleSet {
    static SET: OnceLock<RuleSet> = OnceLock::new();
    SET.get_or_init(|| load_dir(&repo().join("rules")).expect("shipped rules load"))
}

/// `kmswatch.example.toml` as shipped and with every commented-out option and table enabled.
pub fn configs() -> &'static [String] {
    static CONFIGS: OnceLock<Vec<String>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let example = std::fs::read_to_string(repo().join("kmswatch.example.toml"))
            .expect("example configuration readable");
        let enabled: String = example
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
                _ => l,
            })
            .flat_map(|l| [l, "\n"])
            .collect();
        vec![example, enabled]
    })
}

/// The states after folding the first half and all of the seed objects with the shipped rules,
/// as JSON (the serde_json rendering of `EngineState`, as `kmswatch state dump` writes it): the
/// text the structural mutations edit.
pub fn states() -> &'static [Vec<u8>] {
    static STATES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    STATES.get_or_init(|| {
        let objects = objects();
        let mut engine = Engine::new(EngineConfig::default(), shipped_rules().clone());
        let mut out = Vec::new();
        let mut states = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            let decoded = decode_object(&o.gz, &DecodeLimits::default()).expect("sample decodes");
            for call in decoded.calls {
                engine.ingest(call, &mut out);
            }
            engine.end_object(&mut out);
            if i + 1 == objects.len() / 2 || i + 1 == objects.len() {
                states.push(serde_json::to_vec(&engine.snapshot()).expect("state as JSON"));
            }
        }
        states
    })
}

/// The same states as binary state files (their bytes), as `state::save` writes them.
pub fn binary_states() -> &'static [Vec<u8>] {
    static STATES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    STATES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("seed.state");
        states()
            .iter()
            .map(|json| {
                save_json_state(&path, json).expect("a seed state saves");
                std::fs::read(&path).expect("state readable")
            })
            .collect()
    })
}

/// Saves the state that `json` (a JSON rendering of an `EngineState`) describes as a binary
/// state file; the serde_json error when the text is no state.
pub fn save_json_state(path: &Path, json: &[u8]) -> Result<(), serde_json::Error> {
    let st: state::EngineState = serde_json::from_slice(json)?;
    state::save(path, &st).expect("a state saves");
    Ok(())
}
