//! Tests of the whole generator: determinism, object layout, record shape, the sample's size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every file under `dir`, relative path -> bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut paths = Vec::new();
    walk(dir, &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn gunzip_json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_reader(flate2::read::GzDecoder::new(bytes)).expect("gzip of one JSON object")
}

fn is_alnum(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a path against the organization-trail patterns; returns whether it is a digest.
fn check_layout(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    assert_eq!(parts.len(), 9, "{rel}");
    assert_eq!(parts[0], "AWSLogs", "{rel}");
    assert_eq!(parts[1], "o-a1b2c3d4e5", "{rel}");
    let (account, kind, region) = (parts[2], parts[3], parts[4]);
    assert!(is_digits(account, 12), "{rel}");
    assert!(
        is_digits(parts[5], 4) && is_digits(parts[6], 2) && is_digits(parts[7], 2),
        "{rel}"
    );
    let date = format!("{}{}{}", parts[5], parts[6], parts[7]);
    let name = parts[8];
    match kind {
        "CloudTrail" => {
            let prefix = format!("{account}_CloudTrail_{region}_{date}T");
            let rest = name
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{rel}"));
            let rest = rest
                .strip_suffix(".json.gz")
                .unwrap_or_else(|| panic!("{rel}"));
            let (hhmm, suffix) = rest.split_once("Z_").unwrap_or_else(|| panic!("{rel}"));
            assert!(is_digits(hhmm, 4), "{rel}");
            assert!(is_alnum(suffix, 16), "{rel}");
            false
        }
        "CloudTrail-Digest" => {
            let prefix = format!("{account}_CloudTrail-Digest_{region}_org-trail_{region}_{date}T");
            let rest = name
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{rel}"));
            let hhmmss = rest
                .strip_suffix("Z.json.gz")
                .unwrap_or_else(|| panic!("{rel}"));
            assert!(is_digits(hhmmss, 6), "{rel}");
            true
        }
        other => panic!("{rel}: unexpected folder {other}"),
    }
}

#[test]
fn same_seed_gives_identical_bytes() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let opts = |out: &Path, seed| GenerateOptions {
        out: out.to_path_buf(),
        profile: Profile::Bench {
            target_bytes: 3 << 20,
            span_days: 7,
        },
        seed,
    };
    let ra = generate(&opts(a.path(), 5)).unwrap();
    let rb = generate(&opts(b.path(), 5)).unwrap();
    generate(&opts(c.path(), 6)).unwrap();
    assert_eq!(ra, rb);
    let (sa, sb, sc) = (snapshot(a.path()), snapshot(b.path()), snapshot(c.path()));
    assert!(sa.len() >= 2);
    assert_eq!(sa, sb);
    assert_ne!(sa, sc);
    assert!(ra.uncompressed_bytes >= 3 << 20);
    assert_eq!(ra.files as usize, sa.len());
    assert_eq!(
        ra.compressed_bytes,
        sa.values().map(|v| v.len() as u64).sum::<u64>()
    );
}

#[test]
fn bench_files_are_sized_laid_out_and_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&GenerateOptions {
        out: dir.path().to_path_buf(),
        profile: Profile::Bench {
            target_bytes: 6 << 20,
            span_days: 7,
        },
        seed: DEFAULT_SEED,
    })
    .unwrap();
    let files = snapshot(dir.path());
    let mut records = 0u64;
    for (rel, bytes) in &files {
        assert!(!check_layout(rel));
        let v = gunzip_json(bytes);
        let recs = v["Records"].as_array().unwrap();
        records += recs.len() as u64;
    }
    assert_eq!(records, report.records);
    let share = report.kms_records as f64 / report.records as f64;
    assert!((0.25..=0.35).contains(&share), "{share}");
}

#[test]
fn sample_layout_records_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&GenerateOptions {
        out: dir.path().to_path_buf(),
        profile: Profile::Sample,
        seed: DEFAULT_SEED,
    })
    .unwrap();
    let files = snapshot(dir.path());
    let total: u64 = files.values().map(|v| v.len() as u64).sum();
    assert!(total < 4_000_000, "sample is {total} bytes");
    assert_eq!(total, report.compressed_bytes + report.digest_bytes);
    assert_eq!(
        files.len() as u64,
        report.files + report.digest_files,
        "one file per report entry"
    );
    let mut kms = 0;
    for (rel, bytes) in &files {
        let v = gunzip_json(bytes);
        if check_layout(rel) {
            assert!(v.get("Records").is_none(), "{rel}");
            for field in ["digestStartTime", "digestEndTime"] {
                assert!(v[field].is_string(), "{rel}: {field}");
            }
            assert!(!v["logFiles"].as_array().unwrap().is_empty(), "{rel}");
            continue;
        }
        for r in v["Records"].as_array().unwrap() {
            if r["eventSource"] != "kms.amazonaws.com" {
                continue;
            }
            kms += 1;
            for field in ["eventID", "eventTime", "eventName", "awsRegion"] {
                assert!(r[field].is_string(), "{rel}: KMS record without {field}");
            }
            // Only what AWS KMS logs on its own (DeleteKey) has no userIdentity.type.
            assert!(
                r["userIdentity"]["type"].is_string()
                    || (r["eventName"] == "DeleteKey"
                        && r["userIdentity"]["invokedBy"] == "AWS Internal"),
                "{rel}"
            );
            assert!(crate::timefmt::parse_event_time(r["eventTime"].as_str().unwrap()).is_some());
        }
    }
    assert_eq!(kms, report.kms_records);

    // The committed `sample-logs/` must be exactly this output: regenerate it with
    // `kmswatch generate --profile sample --out sample-logs` after changing the generator.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-logs");
    if committed.join("AWSLogs").is_dir() {
        let mut old = snapshot(&committed);
        old.retain(|k, _| k.starts_with("AWSLogs/"));
        let stale: Vec<&String> = files
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .chain(old.keys().filter(|k| !files.contains_key(*k)))
            .collect();
        assert!(
            stale.is_empty(),
            "sample-logs/ is stale ({} files differ, first {:?}): regenerate it",
            stale.len(),
            stale.first()
        );
    }
}
