//! The command line as a user runs it: `rules check`, `config check`, `replay --summary`, exit codes.

mod common;

use std::process::{Command, Output};

use common::*;

/// Runs kmswatch with no `KMSWATCH_*` override but those given.
fn kmswatch_with_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmswatch"));
    cmd.args(args).current_dir(repo());
    for (name, _) in std::env::vars() {
        if name.starts_with("KMSWATCH_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(vars.iter().copied())
        .output()
        .expect("running kmswatch")
}

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

#[test]
fn config_check_accepts_the_example() {
    let out = kmswatch_with_env(&["config", "check", "kmswatch.example.toml"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kmswatch.example.toml OK: queue https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-kms, \
         1 bucket(s), 14 rules from rules, http on 127.0.0.1:9464, no durable state\n"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn config_check_reports_every_problem_of_the_file_the_environment_and_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kmswatch.toml");
    write(
        &config,
        b"[source]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/123456789012/q\"\n\
          buckets = [\"Trail\"]\nrecievers = 4\n[engine]\nwindow_secs = 0\n[rules]\npaths = [\"my-rules\"]\n",
    );
    write(
        &dir.path().join("my-rules/a.toml"),
        b"[[rule]]\nid = \"x\"\nkind = \"event\"\nseverity = \"hihg\"\ndescription = \"d\"\n",
    );
    let out = kmswatch_with_env(
        &["config", "check", config.to_str().unwrap()],
        &[("KMSWATCH_LISTEN", "localhost:80")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let c = config.display().to_string();
    let rule = dir.path().join("my-rules/a.toml").display().to_string();
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        vec![
            format!("{c}:3:12: invalid bucket name \"Trail\" in source.buckets: a bucket name holds only lowercase letters, digits, \".\" and \"-\""),
            format!("{c}:4:1: unknown field \"recievers\" in [source] (did you mean \"receivers\"?)"),
            format!("{c}:6:15: engine.window_secs must be between 1 and 31622400, got 0"),
            "$KMSWATCH_LISTEN: invalid http.listen \"localhost:80\": expected IP:PORT, like 127.0.0.1:9464, or 0.0.0.0:9464 for every interface (host names are not resolved)".to_owned(),
            format!("4 problem(s) in configuration {c}"),
            format!("{rule}:4:12: unknown severity \"hihg\" (did you mean \"high\"?)"),
            "1 problem(s) in rule files".to_owned(),
        ],
        "{stderr}"
    );
}
