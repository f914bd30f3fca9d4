//! Running a replay with `--report` and reading what it wrote, for `tests/report*.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::kmswatch;

pub const TABLES: &[&str] = &[
    "keys",
    "key_principal_service",
    "key_operation_outcome",
    "daily_usage",
    "lifecycle",
    "alerts",
];

/// Replays the sample (relative path, as a user types it) with `--report`, `--summary` and
/// `--alerts` into `dir`, optionally saving state.
pub fn replay_report(dir: &Path, state_out: Option<&Path>) -> PathBuf {
    let report = dir.join("report");
    let summary = dir.join("summary.json");
    let alerts = dir.join("alerts.jsonl");
    let mut args = vec![
        "replay",
        "sample-logs/",
        "--quiet",
        "--report",
        report.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
    ];
    if let Some(s) = state_out {
        args.extend(["--state-out", s.to_str().unwrap()]);
    }
    let out = kmswatch(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// RFC 4180 CSV (quoted fields may hold commas, quotes and newlines) as header-keyed rows; written
/// here rather than with polars so the check is independent of the writer.
pub fn csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = read(path);
    let mut records: Vec<Vec<String>> = Vec::new();
    let (mut field, mut record) = (String::new(), Vec::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "{}: no final newline",
        path.display()
    );
    let header = records.remove(0);
    records
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "{}: {r:?}", path.display());
            header.iter().cloned().zip(r).collect()
        })
        .collect()
}

pub fn n(row: &BTreeMap<String, String>, col: &str) -> u64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} is not an unsigned count: {row:?}"))
}
