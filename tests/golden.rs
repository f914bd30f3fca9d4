//! The bundled sample logs through the shipped rules: exact alerts and summary (golden files), the
//! incident table of `sample-logs/README.md`, order independence, and an independent recount.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::*;
use kmswatch::alerts::Alert;
use kmswatch::replay::{replay, Replay, ReplayOptions};
use kmswatch::rules::load_dir;

fn sample() -> PathBuf {
    repo().join("sample-logs")
}

fn run(inputs: Vec<PathBuf>) -> (Replay, String) {
    let rules = load_dir(&repo().join("rules")).expect("shipped rules load");
    let mut lines = String::new();
    let r = replay(
        &ReplayOptions {
            inputs: inputs.into_iter().map(Into::into).collect(),
            ..ReplayOptions::default()
        },
        rules,
        |a: &Alert| {
            lines.push_str(&a.to_json());
            lines.push('\n');
            Ok(())
        },
    )
    .expect("replay runs");
    (r, lines)
}

#[test]
fn sample_alerts_and_summary_match_the_golden_files() {
    let (r, alerts) = run(vec![sample()]);
    assert!(!r.had_failures(), "{}", r.summary().render_text());
    assert_golden(&repo().join("tests/golden/sample-alerts.jsonl"), &alerts);
    let mut summary = serde_json::to_value(r.summary()).unwrap();
    // Paths differ between checkouts; everything else must match exactly.
    summary["input"]["failures"] = serde_json::Value::Null;
    summary["input"]["malformed"] = serde_json::Value::Null;
    let text = serde_json::to_string_pretty(&summary).unwrap() + "\n";
    assert_golden(&repo().join("tests/golden/sample-summary.json"), &text);
}

/// `(rule, group, window_start)` of the incident table in `sample-logs/README.md`.
fn documented_incidents() -> BTreeSet<(String, String, String)> {
    let readme =
        std::fs::read_to_string(sample().join("README.md")).expect("sample-logs/README.md");
    let mut rows = BTreeSet::new();
    let mut in_table = false;
    for line in readme.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() >= 4
            && cells[0] == "rule"
            && cells[1] == "group"
            && cells[2] == "window_start"
        {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if !line.trim_start().starts_with('|') {
            break;
        }
        if cells[0].starts_with("---") {
            continue;
        }
        let unquote = |s: &str| s.trim_matches('`').to_owned();
        // The table lists dimensions in group_by order; compare them as a set, as the alerts'
        // JSON objects come back with sorted keys.
        let mut dims: Vec<String> = unquote(cells[1]).split(", ").map(str::to_owned).collect();
        dims.sort();
        rows.insert((unquote(cells[0]), dims.join(", "), unquote(cells[2])));
    }
    assert!(
        !rows.is_empty(),
        "no incident table found in sample-logs/README.md"
    );
    rows
}

#[test]
fn every_shipped_rule_fires_exactly_where_the_sample_readme_says() {
    let (r, lines) = run(vec![sample()]);
    let mut fired = BTreeSet::new();
    for line in lines.lines() {
        let a: serde_json::Value = serde_json::from_str(line).unwrap();
        if a["state"] != "firing" {
            continue;
        }
        let group: Vec<String> = a["group"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("null")))
            .collect();
        fired.insert((
            a["rule"].as_str().unwrap().to_owned(),
            group.join(", "),
            a["window_start"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        fired,
        documented_incidents(),
        "firing alerts vs the README's incident table"
    );
    let rules_fired: BTreeSet<&str> = fired.iter().map(|(r, _, _)| r.as_str()).collect();
    for rule in r.engine.rules() {
        assert!(
            rules_fired.contains(rule.rule.id.as_str()),
            "shipped rule {} never fires on the sample",
            rule.rule.id
        );
    }
}

#[test]
fn output_does_not_depend_on_the_order_files_are_given_in() {
    let (_, forward) = run(vec![sample()]);
    let mut files: Vec<PathBuf> = walk_files(&sample());
    files.reverse();
    let (_, reversed) = run(files);
    assert_eq!(forward, reversed);
    let (_, again) = run(vec![sample()]);
    assert_eq!(forward, again);
}

/// A copy of the sample (another bucket synced to disk, say) given as a second input: every
/// object is folded once, the copies are counted as duplicate objects, and the verdicts and totals
/// are the sample's.
#[test]
fn the_same_files_in_two_inputs_are_folded_once() {
    let (once, alerts) = run(vec![sample()]);
    let copy = tempfile::tempdir().unwrap();
    for f in walk_files(&sample()) {
        let to = copy.path().join(f.strip_prefix(sample()).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    let (twice, alerts_twice) = run(vec![sample(), copy.path().to_owned()]);
    assert_eq!(alerts_twice, alerts);
    let objects = once.input.log_objects;
    assert!(objects > 1000);
    assert_eq!(
        (
            once.summary().duplicate_objects,
            twice.summary().duplicate_objects
        ),
        (0, objects)
    );
    assert_eq!(twice.input.log_objects, 2 * objects);
    let verdicts = |r: &Replay| {
        let mut v = serde_json::to_value(r.summary()).unwrap();
        v["input"] = serde_json::Value::Null;
        v["duplicate_objects"] = serde_json::Value::Null;
        v
    };
    assert_eq!(verdicts(&twice), verdicts(&once));
    assert!(twice.summary().render_text().contains(&format!(
        "duplicate objects: {objects} folded before (same name and size), skipped whole"
    )));
}

fn walk_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Recounts KMS calls per operation straight from the JSON with serde_json, deduplicating by
/// `sharedEventID` then `eventID`, and checks the summary's exact numbers against it.
#[test]
fn summary_totals_match_an_independent_recount() {
    let mut seen = BTreeSet::new();
    let mut by_op: BTreeMap<String, u64> = BTreeMap::new();
    for path in walk_files(&sample()) {
        let name = path.to_string_lossy().to_string();
        if !name.ends_with(".json.gz") || name.contains("CloudTrail-Digest") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut json = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
            &mut json,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for rec in v["Records"].as_array().unwrap() {
            if rec["eventSource"] != "kms.amazonaws.com" {
                continue;
            }
            let id = rec["sharedEventID"]
                .as_str()
                .map(|s| format!("s:{s}"))
                .unwrap_or_else(|| format!("e:{}", rec["eventID"].as_str().unwrap()));
            if seen.insert(id) {
                *by_op
                    .entry(rec["eventName"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
    }
    let (r, _) = run(vec![sample()]);
    let s = &r.summary();
    assert_eq!(s.kms_calls, by_op.values().sum::<u64>());
    let mut summed: BTreeMap<String, u64> = BTreeMap::new();
    for k in &s.keys {
        for (op, n) in &k.by_operation {
            *summed.entry(op.clone()).or_default() += n;
        }
    }
    assert_eq!(summed, by_op);
    assert_eq!(
        s.key_principal_service.rows().map(|r| r.calls).sum::<u64>(),
        s.kms_calls
    );
    assert_eq!(
        s.key_operation_outcome.rows().map(|r| r.calls).sum::<u64>(),
        s.kms_calls
    );
    assert_eq!(
        s.keys.iter().map(|k| k.failures).sum::<u64>(),
        s.key_operation_outcome
            .rows()
            .filter(|r| r.outcome != "ok")
            .map(|r| r.calls)
            .sum::<u64>()
    );
}

#[test]
fn cli_replay_of_the_sample_prints_the_golden_alerts() {
    let out = kmswatch(&["replay", "sample-logs/"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_golden(
        &repo().join("tests/golden/sample-alerts.jsonl"),
        &String::from_utf8(out.stdout).unwrap(),
    );
    assert!(stderr.contains("KMS calls:"), "{stderr}");
}

/// One forged record dated 2099 among the sample, in a file delivered on day 9: without a bound it
/// would move the watermark for good and blind every windowed rule after it. It is counted as a
/// future event, named with its file, and the alerts are exactly the sample's.
#[test]
fn a_far_future_record_does_not_blind_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join(
        "AWSLogs/o-a1b2c3d4e5/111111111111/CloudTrail/us-east-1/2026/01/10/\
         111111111111_CloudTrail_us-east-1_20260110T0100Z_FutureFutureFutu.json.gz",
    );
    let record = decrypt_record("forged-2099", "2099-01-01T00:00:00Z", "app", "k-forged");
    write(&forged, &gzip(&log_file(&[record])));
    let replay_with = |skew: i64| {
        let rules = load_dir(&repo().join("rules")).expect("shipped rules load");
        let mut lines = String::new();
        let opts = ReplayOptions {
            inputs: vec![sample().into(), dir.path().to_owned().into()],
            engine: kmswatch::engine::EngineConfig {
                future_skew_secs: skew,
                ..Default::default()
            },
            ..ReplayOptions::default()
        };
        let r = replay(&opts, rules, |a: &Alert| {
            lines.push_str(&a.to_json());
            lines.push('\n');
            Ok(())
        })
        .expect("replay runs");
        (r, lines)
    };
    let (r, alerts) = replay_with(3600);
    let (_, golden) = run(vec![sample()]);
    assert_eq!(alerts, golden, "the forged record changed the verdicts");
    assert_eq!(r.summary().future_events, 1);
    assert!(r.had_failures(), "a future event makes the replay exit 1");
    let named = &r.input.future;
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(
        named[0].object.ends_with("_FutureFutureFutu.json.gz"),
        "{named:?}"
    );
    assert!(
        named[0]
            .error
            .contains("later than the file's delivery time 2026-01-10T01:00:00Z + 3600 s"),
        "{named:?}"
    );
    assert!(r.summary().render_text().contains("FUTURE: 1 events"));
    // The same input without the bound: the record moves the watermark to 2099 and every later
    // window is judged late (what the bound prevents).
    let (blind, blinded) = replay_with(i64::MAX / 4);
    assert_eq!(blind.summary().future_events, 0);
    assert_ne!(blinded, golden, "without the bound the rules are blind");
    assert!(
        blind.summary().late_events > 1000,
        "{}",
        blind.summary().late_events
    );
}
