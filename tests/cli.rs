//! The command line as a user runs it: `rules check`, `replay --summary`, exit codes.

mod common;

use common::*;

#[test]
fn rules_check_accepts_the_shipped_rules() {
    let out = kmswatch(&["rules", "check", "rules/"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "14 rules OK in rules/\n"
    );
}

#[test]
fn rules_check_reports_every_problem_of_every_file_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("a.toml"),
        b"[[rule]]\nid = \"x\"\nkind = \"threshold\"\nseverity = \"high\"\ndescription = \"d\"\nmin_cont = 3\n",
    );
    write(
        &dir.path().join("b.toml"),
        b"[[rule]]\nid = \"y\"\nkind = \"spike\"\nseverity = \"urgent\"\ndescription = \"d\"\n",
    );
    write(&dir.path().join("notes.md"), b"not a rule file");
    let out = kmswatch(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let a = dir.path().join("a.toml").display().to_string();
    let b = dir.path().join("b.toml").display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!("{a}:1:1: missing required field \"min_count\" for kind \"threshold\""),
            format!("{a}:6:1: unknown field \"min_cont\" (did you mean \"min_count\"?)"),
            format!("{b}:4:12: unknown severity \"urgent\" (expected one of: info, low, medium, high, critical)"),
            "3 problem(s) in rule files".to_owned(),
        ],
        "{stderr}"
    );
}

#[test]
fn replay_with_invalid_rules_exits_2_without_output() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("bad.toml"), b"[[rule]]\nid = 3\n");
    let out = kmswatch(&[
        "replay",
        "sample-logs/",
        "--rules",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("bad.toml:2:6: expected a string for \"id\", got an integer"));
}

#[test]
fn replay_writes_alerts_and_summary_files() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let summary = dir.path().join("summary.json");
    let out = kmswatch(&[
        "replay",
        "sample-logs/",
        "--rules",
        "rules/",
        "--alerts",
        alerts.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_golden(
        &repo().join("tests/golden/sample-alerts.jsonl"),
        &std::fs::read_to_string(&alerts).unwrap(),
    );
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/golden/sample-summary.json")).unwrap(),
    )
    .unwrap();
    for field in [
        "schema",
        "kms_calls",
        "duplicates",
        "late_events",
        "keys",
        "key_principal_service",
        "key_operation_outcome",
    ] {
        assert_eq!(s[field], golden[field], "{field}");
    }
}
