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
fn the_file_starts_with_what_identifies_it_and_ends_with_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = saved_state(dir.path());
    assert_eq!(&bytes[..15], b"kmswatch.state\0");
    assert_eq!(bytes[15..19], VERSION.to_le_bytes());
    let header_len = u32::from_le_bytes(bytes[19..23].try_into().unwrap()) as usize;
    let header: Header = rmp_serde::from_slice(&bytes[23..23 + header_len]).unwrap();
    assert_eq!(
        (
            header.format.as_str(),
            header.version,
            header.written_by.as_str()
        ),
        (FORMAT, VERSION, WRITTEN_BY)
    );
    assert_eq!(
        header.saved_at_event_time.as_deref(),
        Some("1970-01-02T00:53:20Z")
    );
    let (content, sum) = bytes.split_at(bytes.len() - 8);
    assert_eq!(sum, xxh3_64(content).to_le_bytes());
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

/// `content` with its checksum appended, as `save` ends a file.
fn with_checksum(mut content: Vec<u8>) -> Vec<u8> {
    let sum = xxh3_64(&content);
    content.extend_from_slice(&sum.to_le_bytes());
    content
}

/// A state as a JSON state file of `version` (format 4 and earlier were JSON objects).
fn as_json(state: &EngineState, version: u32) -> String {
    let text = serde_json::to_string(state).unwrap();
    text.replacen(
        &format!("\"version\":{VERSION}"),
        &format!("\"version\":{version}"),
        1,
    )
}

#[test]
fn each_bad_file_gets_its_own_error_naming_the_file_and_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good) = saved_state(dir.path());
    let state = load(&path).unwrap();
    let rebuild =
        "move it aside and rebuild it with `kmswatch replay --state-out` over recent logs";
    let corrupt = |what: &str| format!("state file is corrupt or truncated: {what}; {rebuild}");
    let not_state = |what: &str| {
        format!("not a kmswatch state file ({what}); give a file written by `kmswatch replay --state-out` or by the service")
    };
    let unsupported = |v: u32, by: &str| {
        format!("state format version {v} is not supported by {WRITTEN_BY} (expects {VERSION}); {rebuild}, or run the kmswatch version that wrote it ({by})")
    };
    let n = good.len();
    let body_at = 23 + u32::from_le_bytes(good[19..23].try_into().unwrap()) as usize;
    let mut newer = good.clone();
    newer[15..19].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x20;
        b
    };
    let mut extended = good.clone();
    extended.push(0);
    let v4 = as_json(&state, 4);
    let cut = v4.find("\"catalog\"").unwrap();
    // A checksum that matches but a body that is not zstd, does not decode, or has bytes after
    // its frame or after the state in it.
    let reseal = |body: &[u8]| {
        let mut b = good[..body_at].to_vec();
        b.extend_from_slice(body);
        with_checksum(b)
    };
    let zstd = |data: &[u8]| zstd::encode_all(data, 1).unwrap();
    let inflated = zstd::decode_all(&good[body_at..n - 8]).unwrap();
    let mut trailing = inflated.clone();
    trailing.extend_from_slice(b"xyz");
    let mut after_frame = good[body_at..n - 8].to_vec();
    after_frame.extend_from_slice(b"xyz");
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        ("newer version", newer, unsupported(VERSION + 1, WRITTEN_BY)),
        ("version 4, JSON", v4.clone().into_bytes(), unsupported(4, WRITTEN_BY)),
        (
            "version 1, JSON",
            br#"{"format":"kmswatch.state","version":1,"written_by":"kmswatch 0.1.0","totals":{}}"#.to_vec(),
            unsupported(1, "kmswatch 0.1.0"),
        ),
        (
            "a dump",
            as_json(&state, VERSION).into_bytes(),
            not_state(&format!("JSON claiming version {VERSION}, but from version 5 on state files are binary; `kmswatch state dump` output is for reading, not for loading")),
        ),
        (
            "a summary file",
            br#"{"schema":"kmswatch.summary/v1","kms_calls":3}"#.to_vec(),
            not_state("JSON without a \"format\" field"),
        ),
        (
            "another format",
            br#"{"format":"other","version":1}"#.to_vec(),
            not_state("format \"other\", expected \"kmswatch.state\""),
        ),
        (
            "not an object",
            b"[1, 2]".to_vec(),
            not_state("neither the binary state format nor a JSON state of format 4 or earlier"),
        ),
        (
            "gzip",
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0],
            not_state("neither the binary state format nor a JSON state of format 4 or earlier"),
        ),
        ("empty", Vec::new(), corrupt("the file is empty")),
        ("cut in the magic", good[..7].to_vec(), corrupt("it ends at byte 7 of its magic prefix")),
        (
            "cut in the fixed header",
            good[..20].to_vec(),
            corrupt("it ends at byte 20 of the 23-byte fixed header"),
        ),
        (
            "cut in the header",
            good[..body_at - 2].to_vec(),
            corrupt(&format!("it ends at byte {}, before the end of its header and checksum", body_at - 2)),
        ),
        (
            "truncated",
            good[..n / 2].to_vec(),
            corrupt(&format!("checksum mismatch over its {} bytes (truncated or altered after it was written)", n / 2 - 8)),
        ),
        (
            "one byte of the body flipped",
            flip(body_at + (n - body_at) / 2),
            corrupt(&format!("checksum mismatch over its {} bytes (truncated or altered after it was written)", n - 8)),
        ),
        (
            "one byte of the checksum flipped",
            flip(n - 3),
            corrupt(&format!("checksum mismatch over its {} bytes (truncated or altered after it was written)", n - 8)),
        ),
        (
            "extended",
            extended,
            corrupt(&format!("checksum mismatch over its {} bytes (truncated or altered after it was written)", n - 7)),
        ),
        (
            "a body that is not zstd",
            reseal(&[0x9e, 0xc1, 0xc1]),
            corrupt("its body does not decompress: Unknown frame descriptor"),
        ),
        (
            "a body that does not decode",
            reseal(&zstd(&[0x9e, 0xc1, 0xc1])),
            corrupt("wrong msgpack marker Reserved (near byte 2 of the decompressed body)"),
        ),
        (
            "bytes after the state",
            reseal(&zstd(&trailing)),
            corrupt(&format!(
                "3 bytes after the body, at byte {} of the decompressed body",
                inflated.len()
            )),
        ),
        (
            "bytes after the frame",
            reseal(&after_frame),
            corrupt("its body has 3 bytes after its zstd frame"),
        ),
        (
            "truncated JSON",
            v4.as_bytes()[..cut].to_vec(),
            corrupt(&format!("JSON that does not parse: EOF while parsing a value at line 1 column {cut}")),
        ),
    ];
    for (what, content, message) in cases {
        let path = dir.path().join("bad.state");
        fs::write(&path, &content).unwrap();
        let err = load(&path).unwrap_err();
        let want_variant = match what {
            "newer version" => matches!(
                err,
                StateError::Incompatible { found, expected, .. }
                    if found == u64::from(VERSION) + 1 && expected == VERSION
            ),
            "version 4, JSON" | "version 1, JSON" => matches!(
                err,
                StateError::Incompatible { found: 1 | 4, expected, .. } if expected == VERSION
            ),
            "a dump" | "a summary file" | "another format" | "not an object" | "gzip" => {
                matches!(err, StateError::NotState { .. })
            }
            _ => matches!(err, StateError::Corrupt { .. }),
        };
        assert!(want_variant, "{what}: {err:?}");
        assert_eq!(
            err.to_string(),
            format!("{}: {message}", path.display()),
            "{what}"
        );
    }
    let missing = dir.path().join("none.state");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, StateError::Missing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: state file does not exist", missing.display())
    );
}

#[test]
fn the_outbox_is_saved_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = saved_state(dir.path());
    let mut state = load(&path).unwrap();
    assert!(state.outbox.is_empty());
    // An alert as a sink would deliver it, key order and spacing kept.
    let alert = r#"{"schema":"kmswatch.alert/v1","rule":"r","state":"firing", "value":1.5}"#;
    state.outbox = vec![SinkOutbox {
        sink: "webhook[0]".into(),
        alerts: vec![serde_json::value::RawValue::from_string(alert.into()).unwrap()],
    }];
    save(&path, &state).unwrap();
    let back = load(&path).unwrap();
    assert_eq!(back.outbox.len(), 1);
    assert_eq!(back.outbox[0].sink, "webhook[0]");
    assert_eq!(back.outbox[0].alerts[0].get(), alert);
    // A dump embeds it as it is.
    let dump = serde_json::to_string(&back).unwrap();
    assert!(dump.contains(&format!("\"alerts\":[{alert}]")), "{dump}");
}

/// The state of a replay of the sample logs with the shipped rules, with an outbox and a
/// distinct count past its exact cap in it.
fn sample_state() -> EngineState {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = crate::rules::load_dir(&repo.join("rules")).unwrap();
    let inputs = vec![repo.join("sample-logs")];
    let (objects, mut input) = crate::replay::list_objects(&inputs);
    let opts = crate::replay::ReplayOptions {
        inputs: inputs.into_iter().map(Into::into).collect(),
        ..Default::default()
    };
    let mut engine = Engine::new(EngineConfig::default(), rules);
    crate::replay::fold_objects(&mut engine, &objects, &opts, &mut input, |_| Ok(())).unwrap();
    let mut state = engine.snapshot();
    assert!(!state.firing.is_empty() && !state.rules.is_empty());
    state.outbox = vec![SinkOutbox {
        sink: "jsonl".into(),
        alerts: vec![
            serde_json::value::RawValue::from_string(state.firing[0].alert.to_string()).unwrap(),
        ],
    }];
    state
}

#[test]
fn a_realistic_state_round_trips_through_the_binary_format() {
    let state = sample_state();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.state");
    save(&path, &state).unwrap();
    let back = load(&path).unwrap();
    let json = |s: &EngineState| serde_json::to_string_pretty(s).unwrap();
    let (want, got) = (json(&state), json(&back));
    if want != got {
        let line = want.lines().zip(got.lines()).position(|(a, b)| a != b);
        panic!("differs at line {line:?} of the JSON renderings");
    }
    // The binary file is a fraction of the JSON.
    let size = fs::metadata(&path).unwrap().len() as usize;
    assert!(
        size * 2 < serde_json::to_string(&state).unwrap().len(),
        "{size} bytes"
    );
}

#[test]
fn a_distinct_count_past_its_cap_round_trips_through_the_binary_format() {
    use crate::aggregate::{Distinct, DISTINCT_EXACT_CAP};
    let mut d = Distinct::default();
    for i in 0..DISTINCT_EXACT_CAP * 3 {
        d.insert(&i.to_string());
    }
    assert!(d.estimated());
    let back: Distinct = rmp_serde::from_slice(&rmp_serde::to_vec(&d).unwrap()).unwrap();
    assert_eq!(back, d);
}
