//! The auditors' report of `sample-logs/`: exact files against golden copies, every table's
//! totals against the summary, byte-identical reruns, the same tables from a state file, and the
//! Parquet read back equal to the CSV.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::report::*;
use common::*;

#[test]
fn sample_report_matches_the_golden_copy() {
    let dir = tempfile::tempdir().unwrap();
    let report = replay_report(dir.path(), None);
    let golden = repo().join("tests/golden/report");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&golden).unwrap();
    }
    let mut names: Vec<String> = TABLES.iter().map(|t| format!("{t}.csv")).collect();
    names.extend([
        "report.md".into(),
        "report.html".into(),
        "manifest.json".into(),
    ]);
    for name in &names {
        assert_golden(&golden.join(name), &read(&report.join(name)));
    }
    let mut written: Vec<String> = std::fs::read_dir(&report)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut want: Vec<String> = TABLES
        .iter()
        .flat_map(|t| [format!("{t}.csv"), format!("{t}.parquet")])
        .chain([
            "report.md".into(),
            "report.html".into(),
            "manifest.json".into(),
        ])
        .collect();
    want.sort();
    assert_eq!(written, want);
}

#[test]
fn manifest_hashes_every_file_written() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let report = replay_report(dir.path(), None);
    let m: serde_json::Value = serde_json::from_str(&read(&report.join("manifest.json"))).unwrap();
    let files = m["files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        TABLES.len() * 2 + 2,
        "every file but the manifest"
    );
    for f in files {
        let bytes = std::fs::read(report.join(f["name"].as_str().unwrap())).unwrap();
        let hex: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(f["sha256"], hex.as_str(), "{}", f["name"]);
        assert_eq!(f["bytes"], bytes.len() as u64);
    }
    assert_eq!(m["objects_read"], 1224);
    assert_eq!(m["inputs"], serde_json::json!(["sample-logs/"]));
}

#[test]
fn every_table_agrees_with_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let report = replay_report(dir.path(), None);
    let s: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("summary.json"))).unwrap();
    let kms_calls = s["kms_calls"].as_u64().unwrap();
    let keys = csv(&report.join("keys.csv"));
    let key = |r: &BTreeMap<String, String>| r["key_arn"].clone();

    // keys: one row per summary key, same calls, failures and times; classes add up.
    assert_eq!(keys.iter().map(|r| n(r, "calls")).sum::<u64>(), kms_calls);
    let summary_keys = s["keys"].as_array().unwrap();
    assert_eq!(keys.len(), summary_keys.len());
    let mut lifecycle_ops = 0;
    for (row, sk) in keys.iter().zip(summary_keys) {
        assert_eq!(key(row), sk["key"].as_str().unwrap_or(""));
        assert_eq!(n(row, "calls"), sk["calls"].as_u64().unwrap());
        assert_eq!(n(row, "failures"), sk["failures"].as_u64().unwrap());
        assert_eq!(
            n(row, "crypto_calls") + n(row, "management_calls"),
            n(row, "calls")
        );
        assert_eq!(row["first_seen"], sk["first_seen"].as_str().unwrap());
        assert_eq!(row["last_seen"], sk["last_seen"].as_str().unwrap());
        assert_eq!(
            row["last_crypto_use"],
            sk["last_used"].as_str().unwrap_or("")
        );
        let ops = sk["by_operation"].as_object().unwrap();
        let crypto: u64 = ops
            .iter()
            .filter(|(op, _)| kmswatch::decode::op_class(op) == kmswatch::decode::OpClass::Crypto)
            .map(|(_, v)| v.as_u64().unwrap())
            .sum();
        assert_eq!(n(row, "crypto_calls"), crypto, "{}", key(row));
        let policy = ops
            .get("PutKeyPolicy")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        assert!(n(row, "policy_changes") <= policy);
        lifecycle_ops += ops
            .iter()
            .filter(|(op, _)| kmswatch::totals::lifecycle_category(op).is_some())
            .map(|(_, v)| v.as_u64().unwrap())
            .sum::<u64>();
    }
    let by_key = |rows: &[BTreeMap<String, String>], col: &str| {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for r in rows {
            *m.entry(key(r)).or_default() += n(r, col);
        }
        m
    };
    let keys_calls = by_key(&keys, "calls");
    let keys_failures = by_key(&keys, "failures");

    // daily_usage, key_principal_service and key_operation_outcome sum to the keys' totals.
    let daily = csv(&report.join("daily_usage.csv"));
    assert_eq!(by_key(&daily, "calls"), keys_calls);
    assert_eq!(by_key(&daily, "failures"), keys_failures);
    assert_eq!(
        by_key(&daily, "crypto_calls"),
        by_key(&keys, "crypto_calls")
    );
    for r in &daily {
        assert_eq!(
            n(r, "crypto_calls") + n(r, "management_calls"),
            n(r, "calls")
        );
        assert!(r["day"].ends_with("T00:00:00Z"), "{r:?}");
    }
    let kps = csv(&report.join("key_principal_service.csv"));
    assert_eq!(by_key(&kps, "calls"), keys_calls);
    assert_eq!(by_key(&kps, "failures"), keys_failures);
    let mut principals: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &kps {
        principals
            .entry(key(r))
            .or_default()
            .insert(r["principal"].clone());
        services
            .entry(key(r))
            .or_default()
            .insert(r["service"].clone());
    }
    for r in &keys {
        assert_eq!(n(r, "principals"), principals[&key(r)].len() as u64);
        assert_eq!(n(r, "services"), services[&key(r)].len() as u64);
    }
    let koo = csv(&report.join("key_operation_outcome.csv"));
    assert_eq!(by_key(&koo, "calls"), keys_calls);
    let failed: Vec<_> = koo
        .iter()
        .filter(|r| r["outcome"] != "ok")
        .cloned()
        .collect();
    let mut want_failures = keys_failures.clone();
    want_failures.retain(|_, v| *v > 0);
    assert_eq!(by_key(&failed, "calls"), want_failures);

    // lifecycle: one row per lifecycle call; alerts: one row per alert line.
    let lifecycle = csv(&report.join("lifecycle.csv"));
    assert_eq!(lifecycle.len() as u64, lifecycle_ops);
    assert!(lifecycle.windows(2).all(|w| w[0]["time"] <= w[1]["time"]));
    let alerts = csv(&report.join("alerts.csv"));
    let lines = read(&dir.path().join("alerts.jsonl"));
    assert_eq!(alerts.len(), lines.lines().count());
    assert_eq!(
        alerts.iter().filter(|a| a["state"] == "firing").count() as u64,
        s["alerts_firing"].as_u64().unwrap()
    );
}

fn all_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn two_runs_write_byte_identical_reports() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = all_bytes(&replay_report(a.path(), None));
    let second = all_bytes(&replay_report(b.path(), None));
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &first {
        assert!(bytes == &second[name], "{name} differs between two runs");
    }
}

#[test]
fn report_from_the_state_file_has_the_replays_tables() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let from_replay = replay_report(dir.path(), Some(&state));
    let from_state = dir.path().join("from-state");
    let out = kmswatch(&[
        "report",
        state.to_str().unwrap(),
        "--out",
        from_state.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (r, s) = (all_bytes(&from_replay), all_bytes(&from_state));
    assert_eq!(r.keys().collect::<Vec<_>>(), s.keys().collect::<Vec<_>>());
    for t in TABLES.iter().filter(|t| **t != "alerts") {
        for ext in ["csv", "parquet"] {
            let name = format!("{t}.{ext}");
            assert!(
                r[&name] == s[&name],
                "{name} differs between replay and state"
            );
        }
    }
    // The state's alerts are those firing at the save: each one the replay also emitted.
    let replay_alerts = csv(&from_replay.join("alerts.csv"));
    let state_alerts = csv(&from_state.join("alerts.csv"));
    assert!(!state_alerts.is_empty());
    for a in &state_alerts {
        assert_eq!(a["state"], "firing");
        assert!(replay_alerts.contains(a), "{a:?}");
    }
    let md = read(&from_state.join("report.md"));
    assert!(md.contains("the state file"), "{md}");
    let m: serde_json::Value =
        serde_json::from_str(&read(&from_state.join("manifest.json"))).unwrap();
    assert_eq!(m["source"], "state");
    assert_eq!(m["objects_read"], serde_json::Value::Null);
}

#[test]
fn parquet_reads_back_equal_to_the_csv_with_tidy_types() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let report = replay_report(dir.path(), None);
    for t in TABLES {
        let file = std::fs::File::open(report.join(format!("{t}.parquet"))).unwrap();
        let mut df = ParquetReader::new(file).finish().unwrap();
        for (name, dtype) in df.schema().iter() {
            let name = name.as_str();
            let want_time = [
                "first_seen",
                "last_seen",
                "day",
                "time",
                "window_start",
                "window_end",
            ]
            .contains(&name)
                || name.ends_with("_at")
                || name.ends_with("_since")
                || name == "last_crypto_use";
            if want_time {
                assert_eq!(
                    dtype,
                    &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
                    "{t}.{name}"
                );
            } else if ["value", "threshold"].contains(&name) {
                assert_eq!(dtype, &DataType::Float64, "{t}.{name}");
            } else if dtype != &DataType::String {
                assert_eq!(dtype, &DataType::UInt64, "{t}.{name}");
            }
        }
        let mut again = Vec::new();
        CsvWriter::new(&mut again)
            .include_header(true)
            .with_datetime_format(Some("%Y-%m-%dT%H:%M:%SZ".into()))
            .finish(&mut df)
            .unwrap();
        let csv_file = read(&report.join(format!("{t}.csv")));
        assert!(
            String::from_utf8(again).unwrap() == csv_file,
            "{t}.parquet differs from {t}.csv"
        );
    }
}

/// The Python that `scripts/test-deps` installs DuckDB into (override with `KMSWATCH_PYTHON`).
fn tools_python() -> PathBuf {
    if let Some(p) = std::env::var_os("KMSWATCH_PYTHON") {
        return p.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/kmswatch-tools/venv/bin/python")
}

#[test]
fn duckdb_opens_every_parquet_file_without_options() {
    let python = tools_python();
    assert!(
        python.exists(),
        "{} not found: run scripts/test-deps (it installs DuckDB there)",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let report = replay_report(dir.path(), None);
    let s: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("summary.json"))).unwrap();
    let script = r#"
import sys, duckdb
d = sys.argv[1]
for t in sys.argv[2:]:
    for name, kind, *_ in duckdb.sql(f"DESCRIBE '{d}/{t}.parquet'").fetchall():
        print(t, name, kind)
print("sum", duckdb.sql(f"SELECT sum(calls) FROM '{d}/keys.parquet'").fetchone()[0])
print("days", duckdb.sql(f"SELECT sum(calls) FROM '{d}/daily_usage.parquet'").fetchone()[0])
"#;
    let mut cmd = std::process::Command::new(&python);
    cmd.args(["-c", script, report.to_str().unwrap()])
        .args(TABLES);
    let out = cmd.output().expect("running python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: BTreeSet<&str> = stdout.lines().collect();
    for want in [
        "keys key_arn VARCHAR",
        "keys calls UBIGINT",
        "keys first_seen TIMESTAMP WITH TIME ZONE",
        "keys last_crypto_use TIMESTAMP WITH TIME ZONE",
        "daily_usage day TIMESTAMP WITH TIME ZONE",
        "lifecycle time TIMESTAMP WITH TIME ZONE",
        "alerts value DOUBLE",
    ] {
        assert!(lines.contains(want), "{want:?} not in:\n{stdout}");
    }
    let calls = s["kms_calls"].as_u64().unwrap();
    assert!(lines.contains(format!("sum {calls}").as_str()), "{stdout}");
    assert!(lines.contains(format!("days {calls}").as_str()), "{stdout}");
}

/// A report after a save, load and restore in the middle of the replay equals the report of one
/// uninterrupted replay, byte for byte (every file, manifest included).
#[test]
fn a_restart_mid_replay_writes_the_same_report() {
    use kmswatch::engine::{Engine, EngineConfig};
    use kmswatch::replay::{fold_objects, list_objects, ReplayOptions};
    use kmswatch::report::{AlertLog, AuditReport, InputStats, ReportMeta};
    use kmswatch::rules::load_dir;
    let rules = || load_dir(&repo().join("rules")).expect("shipped rules load");
    let opts = ReplayOptions {
        inputs: vec![repo().join("sample-logs").into()],
        ..ReplayOptions::default()
    };
    let (objects, listed) = list_objects(&[repo().join("sample-logs")]);
    let dir = tempfile::tempdir().unwrap();
    let write = |engine: &Engine, input: &InputStats, log: &AlertLog, name: &str| {
        let out = dir.path().join(name);
        AuditReport::from_engine(engine, input, log, ReportMeta::default())
            .write(&out)
            .unwrap();
        all_bytes(&out)
    };

    let mut engine = Engine::new(EngineConfig::default(), rules());
    let (mut input, mut log) = (listed.clone(), AlertLog::new(1_000_000));
    fold_objects(&mut engine, &objects, &opts, &mut input, |a| {
        log.push(a);
        Ok(())
    })
    .unwrap();
    let whole = write(&engine, &input, &log, "whole");

    let mid = objects.len() / 2;
    let mut first = Engine::new(EngineConfig::default(), rules());
    let (mut input, mut log) = (listed.clone(), AlertLog::new(1_000_000));
    fold_objects(&mut first, &objects[..mid], &opts, &mut input, |a| {
        log.push(a);
        Ok(())
    })
    .unwrap();
    let path = dir.path().join("state.json");
    kmswatch::state::save(&path, &first.snapshot()).unwrap();
    let (mut second, _) = Engine::restore(
        EngineConfig::default(),
        rules(),
        kmswatch::state::load(&path).unwrap(),
    )
    .unwrap();
    fold_objects(&mut second, &objects[mid..], &opts, &mut input, |a| {
        log.push(a);
        Ok(())
    })
    .unwrap();
    let resumed = write(&second, &input, &log, "resumed");
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        resumed.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &whole {
        assert!(bytes == &resumed[name], "{name} differs after a restart");
    }
}

#[test]
fn report_of_a_missing_state_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    let out = kmswatch(&[
        "report",
        missing.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: {}: state file does not exist\n", missing.display())
    );
    assert!(!dir.path().join("out").exists(), "nothing written");
}
