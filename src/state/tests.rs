//! Unit tests of state files: round trip into a continuing engine, atomicity, and each error.

use std::path::Path;

use super::*;
use crate::decode::KmsCall;
use crate::engine::{Engine, EngineConfig};
use crate::report::{InputStats, Summary};
use crate::rules::test_support::{brief, decrypt, globs, op, rule, Harness};
use crate::rules::{ClassFilter, OutcomeFilter, Rule, RuleKind, RuleSet};

const DAY: i64 = 86_400;

fn key(k: &str) -> String {
    format!("arn:aws:kms:us-east-1:111111111111:key/{k}")
}

/// One rule of every kind.
fn rules() -> Vec<Rule> {
    let mut event = rule("e", RuleKind::Event, &["key", "principal"]);
    event.filter.operations = Some(globs(&["ScheduleKeyDeletion"]));
    let mut unused = rule(
        "u",
        RuleKind::Unused {
            unused_for_secs: DAY,
            inventory: vec![key("inv")],
        },
        &["key"],
    );
    unused.filter.class = ClassFilter::Crypto;
    unused.filter.outcome = OutcomeFilter::Ok;
    vec![
        rule("t", RuleKind::Threshold { min_count: 4 }, &["key"]),
        rule(
            "s",
            RuleKind::Spike {
                baseline_windows: 4,
                min_baseline_windows: 2,
                min_count: 5,
                min_ratio: 2.0,
                z: 2.0,
                stddev_floor: 1.0,
            },
            &["key"],
        ),
        event,
        rule(
            "n",
            RuleKind::NewPrincipal { learning_secs: 600 },
            &["key", "principal"],
        ),
        unused,
    ]
}

/// Calls that make every rule fire and most resolve: a steady baseline on key a, a burst
/// (threshold and spike), a deletion (event), a new principal, an idle key (unused) used again.
fn script() -> Vec<(i64, KmsCall)> {
    let mut s = Vec::new();
    for w in 0..6 {
        for i in 0..3 {
            s.push((w * 300 + i, decrypt(&key("a"), "app")));
        }
    }
    s.push((50, decrypt(&key("c"), "app")));
    for i in 0..20 {
        s.push((1800 + i, decrypt(&key("a"), "app")));
    }
    s.push((1900, op("ScheduleKeyDeletion", &key("b"), "admin")));
    s.push((2000, decrypt(&key("a"), "intruder")));
    s.push((DAY + 3000, decrypt(&key("a"), "app")));
    s.push((DAY + 3100, decrypt(&key("c"), "app")));
    s.push((DAY + 3200, op("DescribeKey", &key("b"), "admin")));
    s
}

fn summary_json(engine: &Engine) -> String {
    serde_json::to_string(&Summary::build(&InputStats::default(), engine)).unwrap()
}

#[test]
fn a_restored_engine_continues_exactly_at_every_point_of_a_script() {
    let script = script();
    let mut whole = Harness::new(rules());
    for (t, c) in script.clone() {
        whole.call(t, c);
    }
    let want = whole.end();
    let kinds: std::collections::BTreeSet<&str> = want.iter().map(|a| a.kind).collect();
    assert_eq!(kinds.len(), 5, "every kind fires: {:#?}", brief(&want));
    let want_summary = summary_json(&whole.engine);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    for k in 0..=script.len() {
        let mut h = Harness::new(rules());
        for (t, c) in script[..k].iter().cloned() {
            h.call(t, c);
        }
        let mut got = h.take();
        save(&path, &h.engine.snapshot()).unwrap();
        let first = fs::read(&path).unwrap();
        let (engine, notes) = Engine::restore(
            EngineConfig::default(),
            RuleSet { rules: rules() },
            load(&path).unwrap(),
        )
        .unwrap();
        assert_eq!(notes, vec![], "split at {k}");
        // Saving the restored engine writes the same bytes: nothing lost, nothing reordered.
        save(&path, &engine.snapshot()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first, "split at {k}");
        // Lending the tables instead of copying them writes the same bytes and keeps them.
        let mut engine = engine;
        engine.with_snapshot(|s| save(&path, s)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first, "split at {k}: lent");
        h.engine = engine;
        for (t, c) in script[k..].iter().cloned() {
            h.call(t, c);
        }
        got.extend(h.end());
        assert_eq!(got, want, "split at {k}");
        assert_eq!(summary_json(&h.engine), want_summary, "split at {k}");
    }
}

#[test]
fn folded_objects_survive_a_restart() {
    let mut h = Harness::new(rules());
    let object = crate::aggregate::ObjectId::new("o.json.gz", 10);
    assert!(h.engine.begin_object(Some(100), Some(object)));
    h.call(100, decrypt(&key("a"), "app"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    save(&path, &h.engine.snapshot()).unwrap();
    let restore = |path: &Path| {
        Engine::restore(
            EngineConfig::default(),
            RuleSet { rules: rules() },
            load(path).unwrap(),
        )
        .unwrap()
        .0
    };
    let mut engine = restore(&path);
    assert!(
        !engine.begin_object(Some(100), Some(object)),
        "folded before the save"
    );
    assert_eq!(engine.counters().duplicate_objects, 1);

    // The calls of the object are remembered too.
    let mut again = decrypt(&key("a"), "app");
    (again.time, again.dedupe_id) = (100, 1); // the harness numbered the first call 1
    engine.ingest(again, &mut Vec::new());
    assert_eq!(
        (engine.counters().kms_calls, engine.counters().duplicates),
        (1, 1)
    );
}

#[test]
fn dedupe_ids_survive_a_restart() {
    let mut h = Harness::new(rules());
    h.call(100, decrypt(&key("a"), "app"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    save(&path, &h.engine.snapshot()).unwrap();
    let (mut engine, _) = Engine::restore(
        EngineConfig::default(),
        RuleSet { rules: rules() },
        load(&path).unwrap(),
    )
    .unwrap();
    let mut again = decrypt(&key("a"), "app");
    again.time = 100;
    again.dedupe_id = 1; // the harness numbered the first call 1
    engine.ingest(again, &mut Vec::new());
    assert_eq!(
        (engine.counters().kms_calls, engine.counters().duplicates),
        (1, 1)
    );
}

fn saved_state(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut h = Harness::new(rules());
    for (t, c) in script() {
        h.call(t, c);
    }
    let path = dir.join("state.json");
    save(&path, &h.engine.snapshot()).unwrap();
    let bytes = fs::read(&path).unwrap();
    (path, bytes)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_file_starts_with_what_identifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = saved_state(dir.path());
    let text = String::from_utf8(bytes).unwrap();
    let want = format!(
        r#"{{"format":"kmswatch.state","version":{VERSION},"written_by":"kmswatch {}","saved_at_event_time":"1970-01-02T00:53:20Z","settings":{{"window_secs":300,"#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.starts_with(&want), "{}", &text[..200]);
    assert!(text.ends_with("}\n"));
}

#[test]
fn a_failing_write_leaves_the_old_file_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, old) = saved_state(dir.path());
    let err = write_atomically(&path, |w| {
        w.write_all(b"{\"format\":\"kmswatch.state\",\"vers")?;
        Err(io::Error::other("device full"))
    })
    .unwrap_err();
    let tmp = dir.path().join("state.json.tmp");
    assert_eq!(
        err.to_string(),
        format!("{}: writing {}: device full", path.display(), tmp.display())
    );
    assert_eq!(fs::read(&path).unwrap(), old, "the old state is intact");
    assert_eq!(names_in(dir.path()), vec!["state.json"]);

    // The rename fails (a directory is in the way): the temporary file is removed too.
    let blocked = dir.path().join("blocked");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("x"), b"x").unwrap();
    let err = save(&blocked, &load(&path).unwrap()).unwrap_err();
    assert!(
        matches!(&err, StateError::Io { action, .. } if action.starts_with("renaming")),
        "{err}"
    );
    assert_eq!(names_in(dir.path()), vec!["blocked", "state.json"]);
}

#[test]
fn each_bad_file_gets_its_own_error_naming_the_file_and_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = saved_state(dir.path());
    let good = String::from_utf8(good).unwrap();
    let rebuild =
        "move it aside and rebuild it with `kmswatch replay --state-out` over recent logs";
    // Cut after the comma before the catalogue, mid-object.
    let cut = good.find("\"catalog\"").unwrap();
    let wrong_type = good.replacen("\"watermark\":", "\"watermark\":\"x\",\"w\":", 1);
    let cases: Vec<(&str, String, String)> = vec![
        (
            "newer version",
            format!(r#"{{"format":"kmswatch.state","version":{},"written_by":"kmswatch 0.9.0","dedupe":{{"new":[1]}}}}"#, VERSION + 1),
            format!("state format version {} is not supported by {WRITTEN_BY} (expects {VERSION}); {rebuild}, or run the kmswatch version that wrote it (kmswatch 0.9.0)", VERSION + 1),
        ),
        (
            "older version",
            r#"{"format":"kmswatch.state","version":1,"written_by":"kmswatch 0.1.0","totals":{}}"#
                .into(),
            format!("state format version 1 is not supported by {WRITTEN_BY} (expects {VERSION}); {rebuild}, or run the kmswatch version that wrote it (kmswatch 0.1.0)"),
        ),
        (
            "a summary file",
            r#"{"schema":"kmswatch.summary/v1","kms_calls":3}"#.into(),
            "not a kmswatch state file (no \"format\" field); give a file written by `kmswatch replay --state-out` or by the service".into(),
        ),
        (
            "another format",
            r#"{"format":"other","version":1}"#.into(),
            "not a kmswatch state file (format \"other\", expected \"kmswatch.state\"); give a file written by `kmswatch replay --state-out` or by the service".into(),
        ),
        (
            "not an object",
            "[1, 2]".into(),
            "not a kmswatch state file (not a JSON object); give a file written by `kmswatch replay --state-out` or by the service".into(),
        ),
        (
            "truncated",
            good[..cut].to_owned(),
            format!("1:{cut}: state file is corrupt or truncated: EOF while parsing a value; {rebuild}"),
        ),
        (
            "empty",
            String::new(),
            format!("1:0: state file is corrupt or truncated: EOF while parsing a value; {rebuild}"),
        ),
        (
            "a field of the wrong type",
            wrong_type.clone(),
            format!(
                "1:{}: state file is corrupt or truncated: invalid type: string \"x\", expected i64; {rebuild}",
                wrong_type.find("\"x\"").unwrap() + 3
            ),
        ),
    ];
    for (what, content, message) in cases {
        let path = dir.path().join("bad.json");
        fs::write(&path, &content).unwrap();
        let err = load(&path).unwrap_err();
        let want_variant = match what {
            "newer version" => matches!(
                err,
                StateError::Incompatible {
                    found,
                    expected,
                    ..
                } if found == u64::from(VERSION) + 1 && expected == VERSION
            ),
            "older version" => matches!(
                err,
                StateError::Incompatible {
                    found: 1,
                    expected,
                    ..
                } if expected == VERSION
            ),
            "truncated" | "empty" | "a field of the wrong type" => {
                matches!(err, StateError::Corrupt { line: 1, .. })
            }
            _ => matches!(err, StateError::NotState { .. }),
        };
        assert!(want_variant, "{what}: {err:?}");
        let sep = if message.starts_with(char::is_numeric) {
            ":"
        } else {
            ": "
        };
        assert_eq!(
            err.to_string(),
            format!("{}{sep}{message}", path.display()),
            "{what}"
        );
    }
    let missing = dir.path().join("none.json");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, StateError::Missing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: state file does not exist", missing.display())
    );
}

#[test]
fn the_outbox_is_saved_exactly_and_versions_before_interned_totals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = saved_state(dir.path());
    let text = String::from_utf8(bytes).unwrap();
    // Nothing undelivered: no outbox field.
    assert!(!text.contains("\"outbox\""));
    let mut state = load(&path).unwrap();
    assert!(state.outbox.is_empty());
    // Version 3 keyed the totals by joined strings: refused, with the way out.
    let v3 = text.replacen(&format!("\"version\":{VERSION}"), "\"version\":3", 1);
    let old = dir.path().join("v3.json");
    fs::write(&old, &v3).unwrap();
    let err = load(&old).unwrap_err().to_string();
    assert!(
        err.contains("version 3 is not supported") && err.contains("kmswatch replay --state-out"),
        "{err}"
    );

    // An alert as a sink would deliver it, key order and spacing kept.
    let alert = r#"{"schema":"kmswatch.alert/v1","rule":"r","state":"firing","value":1.5}"#;
    state.outbox = vec![SinkOutbox {
        sink: "webhook[0]".into(),
        alerts: vec![serde_json::value::RawValue::from_string(alert.into()).unwrap()],
    }];
    save(&path, &state).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(&format!(
        "{{\"format\":\"kmswatch.state\",\"version\":{VERSION},"
    )));
    let back = load(&path).unwrap();
    assert_eq!(back.outbox.len(), 1);
    assert_eq!(back.outbox[0].sink, "webhook[0]");
    assert_eq!(back.outbox[0].alerts[0].get(), alert);
}
