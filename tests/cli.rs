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
        "24 rules OK in rules/\n"
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

/// `replay` takes the engine limits of `serve`'s [engine] table, so a replay can reproduce the
/// service's verdicts, and says in `note:` lines what did not fit them (even with `--quiet`).
#[test]
fn replay_takes_the_services_engine_limits_and_notes_what_did_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let summary = dir.path().join("summary.json");
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "sample-logs/",
            "--rules",
            "rules/",
            "--quiet",
            "--alerts",
            alerts.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        kmswatch(&args)
    };
    let out = replay(&["--max-keys", "3", "--max-groups-per-rule", "2"]);
    succeeds(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 2, "{stderr}");
    assert!(
        notes[0].contains("successful calls named keys beyond max_keys (3)"),
        "{stderr}"
    );
    assert!(
        notes[1].contains("did not fit max_groups_per_rule (2)"),
        "{stderr}"
    );
    // The notes come from the counts, with no summary made: the same lines without `--summary`.
    let bare = kmswatch(&[
        "replay",
        "sample-logs/",
        "--rules",
        "rules/",
        "--quiet",
        "--max-keys",
        "3",
        "--max-groups-per-rule",
        "2",
    ]);
    succeeds(&bare);
    let bare_err = String::from_utf8_lossy(&bare.stderr);
    let bare_notes: Vec<&str> = (bare_err.lines())
        .filter(|l| l.starts_with("note: "))
        .collect();
    assert_eq!(bare_notes, notes, "{bare_err}");
    let s = json_file(&summary);
    let over = &s["over_limits"];
    assert!(over["max_keys"].as_u64().unwrap() > 0, "{over}");
    assert_eq!(over["max_dedupe_ids"], 0);
    let golden = std::fs::read_to_string(repo().join("tests/golden/sample-alerts.jsonl")).unwrap();
    let got = std::fs::read_to_string(&alerts).unwrap();
    assert!(
        got.lines().count() < golden.lines().count(),
        "fewer keys and groups judged, fewer alerts"
    );
    // The defaults are the service's: the golden verdicts, no note.
    let out = replay(&[]);
    succeeds(&out);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&alerts).unwrap(), golden);

    for (args, error) in [
        (
            &["--max-dedupe-ids", "0"][..],
            "invalid value '0' for '--max-dedupe-ids <MAX_DEDUPE_IDS>': must be >= 1",
        ),
        (
            &["--dedupe-id-horizon-secs", "60"][..],
            "--dedupe-id-horizon-secs (60) must be >= --allowed-lateness-secs (900)",
        ),
    ] {
        let out = replay(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(error), "{stderr}");
    }
}

fn json_file(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn succeeds(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn state_summary_of_replay_state_out_has_the_replay_summary_totals() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let summary = dir.path().join("summary.json");
    let from_state = dir.path().join("from-state.json");
    let p = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    succeeds(&kmswatch(&[
        "replay",
        "sample-logs/",
        "--quiet",
        "--alerts",
        &p(&dir.path().join("alerts.jsonl")),
        "--summary",
        &p(&summary),
        "--state-out",
        &p(&state),
    ]));
    let out = kmswatch(&["state", "summary", &p(&state), "--out", &p(&from_state)]);
    succeeds(&out);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let (s, r) = (json_file(&from_state), json_file(&summary));
    for field in [
        "schema",
        "kms_calls",
        "duplicates",
        "late_events",
        "first_event",
        "last_event",
        "table_overflow",
        "keys",
        "key_principal_service",
        "key_operation_outcome",
    ] {
        assert_eq!(s[field], r[field], "{field}");
    }
    assert_eq!(s["kms_calls"], 7904);
    assert_eq!(s["input"]["log_objects"], 0, "a state has no input stats");
    // Without --out, the same JSON goes to stdout.
    let out = kmswatch(&["state", "summary", &p(&state)]);
    succeeds(&out);
    assert_eq!(out.stdout, std::fs::read(&from_state).unwrap());

    // The dump is the whole state as JSON, readable by people and scripts.
    let out = kmswatch(&["state", "dump", &p(&state)]);
    succeeds(&out);
    let dump: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the dump is JSON");
    assert_eq!(dump["format"], "kmswatch.state");
    assert_eq!(dump["version"], kmswatch::state::VERSION);
    assert_eq!(dump["version"], 5);
    assert_eq!(dump["counters"]["kms_calls"], 7904);
    assert!(
        dump["firing"][0]["alert"]["rule"].is_string(),
        "alerts as JSON, not text"
    );
    let dumped = dir.path().join("dump.json");
    succeeds(&kmswatch(&[
        "state",
        "dump",
        &p(&state),
        "--out",
        &p(&dumped),
    ]));
    assert_eq!(json_file(&dumped), dump);
    // A dump is not a state file: loading it says so.
    let out = kmswatch(&["state", "summary", &p(&dumped)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`kmswatch state dump` output is for reading"),
        "{err}"
    );

    // With a journal delta after it, the tools say the view leaves it out.
    let bytes = std::fs::read(&state).unwrap();
    let checksum = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
    let mut w = kmswatch::state::journal::DeltaWriter::create(&state, checksum, 1).unwrap();
    w.append(&kmswatch::engine::journal::Op::<kmswatch::decode::KmsCall>::Cap(None))
        .unwrap();
    w.commit(&[]).unwrap();
    for args in [vec!["state", "summary"], vec!["state", "dump"]] {
        let out = kmswatch(&[args[0], args[1], &p(&state)]);
        succeeds(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("note: ")
                && err.contains("1 journal delta(s) (1 operations) follow this state file"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn replay_state_in_continues_where_replay_state_out_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (objects, _) = kmswatch::replay::list_objects(&[repo().join("sample-logs")]);
    let files: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
    let (first, second) = files.split_at(files.len() / 2);
    let run = |inputs: &[String], extra: &[&str]| {
        let mut args = vec!["replay".to_owned()];
        args.extend(inputs.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = kmswatch(&args);
        succeeds(&out);
        out
    };
    let (half, half_summary) = (d("half.jsonl"), d("half.json"));
    let (whole, whole_summary) = (d("whole.jsonl"), d("whole.json"));
    let (rest, rest_summary) = (d("rest.jsonl"), d("rest.json"));
    run(
        first,
        &[
            "--quiet",
            "--alerts",
            &half,
            "--summary",
            &half_summary,
            "--state-out",
            &d("state.json"),
        ],
    );
    let out = run(
        second,
        &[
            "--quiet",
            "--alerts",
            &rest,
            "--summary",
            &rest_summary,
            "--state-in",
            &d("state.json"),
        ],
    );
    assert!(out.stderr.is_empty(), "no notes: the rules did not change");
    run(
        &["sample-logs/".to_owned()],
        &["--quiet", "--alerts", &whole, "--summary", &whole_summary],
    );

    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let (half, rest, whole) = (read(&half), read(&rest), read(&whole));
    // The whole run's alerts are those emitted while the first half was folded (the first
    // replay's, before its own end-of-input close) followed by the continued replay's.
    assert!(rest.lines().count() > 3, "{rest}");
    let head = whole
        .strip_suffix(rest.as_str())
        .expect("the continued replay's alerts end the whole run's");
    assert!(half.starts_with(head));
    // The engine side of the summary is the whole run's; the input side is the second half's.
    let (r, w) = (
        json_file(rest_summary.as_ref()),
        json_file(whole_summary.as_ref()),
    );
    for (field, value) in w.as_object().unwrap() {
        if field != "input" {
            assert_eq!(&r[field], value, "{field}");
        }
    }
    assert_eq!(r["input"]["log_objects"], second.len());
}

#[test]
fn state_files_that_cannot_be_used_stop_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let unsupported = |path: &std::path::Path, version: u32, by: &str| {
        format!(
            "error: {}: state format version {version} is not supported by kmswatch {} (expects {}); move it aside and rebuild it with `kmswatch replay --state-out` over recent logs, or run the kmswatch version that wrote it ({by})\n",
            path.display(),
            env!("CARGO_PKG_VERSION"),
            kmswatch::state::VERSION
        )
    };
    // A binary file of a later version: magic, version, header (no body needed).
    let future = dir.path().join("future.state");
    let version = kmswatch::state::VERSION + 1;
    let header = rmp_serde::to_vec(&("kmswatch.state", version, "kmswatch 9.0.0", ())).unwrap();
    let mut bytes = kmswatch::state::MAGIC.to_vec();
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&header);
    write(&future, &bytes);
    let out = kmswatch(&["state", "summary", future.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        unsupported(&future, version, "kmswatch 9.0.0")
    );
    // A JSON file of format 4 (the last JSON one).
    let old = dir.path().join("old.json");
    write(
        &old,
        br#"{"format":"kmswatch.state","version":4,"written_by":"kmswatch 0.1.0","watermark":null}"#,
    );
    let out = kmswatch(&[
        "replay",
        "sample-logs/",
        "--state-in",
        old.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        unsupported(&old, 4, "kmswatch 0.1.0")
    );
    let missing = dir.path().join("missing.json");
    let out = kmswatch(&[
        "replay",
        "sample-logs/",
        "--state-in",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: {}: state file does not exist\n", missing.display())
    );
}

#[test]
fn replay_state_in_notes_rules_that_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let empty = dir.path().join("no-logs");
    std::fs::create_dir(&empty).unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::copy(repo().join("rules/unused.toml"), rules.join("unused.toml")).unwrap();
    let s = state.to_str().unwrap();
    let out = kmswatch(&[
        "replay",
        empty.to_str().unwrap(),
        "--quiet",
        "--state-out",
        s,
    ]);
    succeeds(&out);
    let out = kmswatch(&[
        "replay",
        empty.to_str().unwrap(),
        "--quiet",
        "--rules",
        rules.to_str().unwrap(),
        "--state-in",
        s,
    ]);
    succeeds(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 23, "{stderr}");
    assert_eq!(
        notes[0],
        "note: rule \"failed-calls-spray\" is in the state but no longer configured: its state is dropped"
    );
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
         1 bucket(s), 24 rules from rules, http on 127.0.0.1:9464, no durable state, alerts to stdout\n"
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

/// kmswatch run from `dir` (not the repository), as an installed binary is.
fn kmswatch_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmswatch"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running kmswatch")
}

#[test]
fn outside_the_repository_replay_uses_the_built_in_rules() {
    let dir = tempfile::tempdir().unwrap();
    let sample = repo().join("sample-logs");
    let out = kmswatch_in(dir.path(), &["replay", sample.to_str().unwrap(), "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(repo().join("tests/golden/sample-alerts.jsonl")).unwrap()
    );
    let list = kmswatch_in(dir.path(), &["rules", "list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.starts_with("24 rules from the rules built into kmswatch"),
        "{text}"
    );
    assert!(text.contains("<built-in>/volume.toml:"), "{text}");
    // In the repository, ./rules is used and named.
    let here = kmswatch(&["rules", "list"]);
    let text = String::from_utf8_lossy(&here.stdout);
    assert!(
        text.starts_with("24 rules from rules (found in the current directory)"),
        "{text}"
    );
    assert!(text.contains("rules/volume.toml:"), "{text}");
}

#[test]
fn a_missing_rules_path_is_an_error_that_says_so() {
    let out = kmswatch(&["replay", "sample-logs/", "--rules", "no-such-rules/"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --rules no-such-rules/: no such file or directory\n"
    );
}
