//! A restart forgets nothing: the sample logs folded with a save, load and restore at several
//! points give byte-identical alerts and summary to one uninterrupted replay.

mod common;

use std::path::PathBuf;

use common::*;
use kmswatch::alerts::Alert;
use kmswatch::decode::{decode_object, DecodeLimits, KmsCall};
use kmswatch::engine::journal::Op;
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::replay::{fold_objects, list_objects, replay, ReplayOptions};
use kmswatch::report::{InputStats, Summary};
use kmswatch::rules::{load_dir, RuleSet};
use kmswatch::sources::{parse_log_name, ObjectRef};
use kmswatch::state;
use kmswatch::state::journal::DeltaWriter;

fn rules() -> RuleSet {
    load_dir(&repo().join("rules")).expect("shipped rules load")
}

fn opts() -> ReplayOptions {
    ReplayOptions {
        inputs: vec![repo().join("sample-logs").into()],
        ..ReplayOptions::default()
    }
}

fn summary_json(input: InputStats, engine: &Engine) -> String {
    serde_json::to_string_pretty(&Summary::build(&input, engine)).unwrap()
}

/// Panics with the first differing line, not two whole documents.
fn assert_same(what: &str, want: &str, got: &str) {
    if want == got {
        return;
    }
    let line = want
        .lines()
        .zip(got.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(want.lines().count().min(got.lines().count()));
    panic!(
        "{what}: differs at line {}:\n  - {}\n  + {}",
        line + 1,
        want.lines().nth(line).unwrap_or("<none>"),
        got.lines().nth(line).unwrap_or("<none>")
    );
}

/// The uninterrupted run, folded one object at a time: alerts, summary, and the kinds of the
/// alerts that fired after each object.
struct Baseline {
    alerts: String,
    summary: String,
    fired_after: Vec<Vec<&'static str>>,
}

fn baseline(objects: &[ObjectRef], listed: &InputStats) -> Baseline {
    let mut engine = Engine::new(EngineConfig::default(), rules());
    let mut input = listed.clone();
    let mut alerts = String::new();
    let mut fired_after = Vec::new();
    for i in 0..objects.len() {
        let mut fired = Vec::new();
        fold_objects(
            &mut engine,
            &objects[i..=i],
            &opts(),
            &mut input,
            |a: &Alert| {
                alerts.push_str(&a.to_json());
                alerts.push('\n');
                if a.state == kmswatch::alerts::AlertState::Firing {
                    fired.push(a.kind);
                }
                Ok(())
            },
        )
        .unwrap();
        fired_after.push(fired);
    }
    let mut end = Vec::new();
    engine.finish(&mut end);
    for a in &end {
        alerts.push_str(&a.to_json());
        alerts.push('\n');
    }
    Baseline {
        alerts,
        summary: summary_json(input, &engine),
        fired_after,
    }
}

/// Folds objects `[0..k)`, saves, loads and restores, folds `[k..n)` and finishes.
fn split_run(
    objects: &[ObjectRef],
    listed: &InputStats,
    k: usize,
    dir: &std::path::Path,
) -> (String, String) {
    let mut input = listed.clone();
    let mut alerts = String::new();
    let mut sink = |a: &Alert| {
        alerts.push_str(&a.to_json());
        alerts.push('\n');
        Ok(())
    };
    let mut engine = Engine::new(EngineConfig::default(), rules());
    fold_objects(&mut engine, &objects[..k], &opts(), &mut input, &mut sink).unwrap();
    let path: PathBuf = dir.join(format!("state-{k}.state"));
    state::save(&path, &engine.snapshot()).unwrap();
    let firing = |e: &Engine| -> Vec<String> { e.firing().map(|(_, v)| v.to_string()).collect() };
    let firing_before = firing(&engine);
    drop(engine);
    let (mut engine, notes) = Engine::restore(
        EngineConfig::default(),
        rules(),
        state::load(&path).unwrap(),
    )
    .unwrap();
    assert!(notes.is_empty(), "split at {k}: {notes:?}");
    assert_eq!(
        firing(&engine),
        firing_before,
        "firing alerts after a split at {k}"
    );
    fold_objects(&mut engine, &objects[k..], &opts(), &mut input, &mut sink).unwrap();
    let mut end = Vec::new();
    engine.finish(&mut end);
    for a in &end {
        sink(a).unwrap();
    }
    (alerts, summary_json(input, &engine))
}

#[test]
fn save_load_restore_anywhere_in_the_sample_equals_one_uninterrupted_replay() {
    let (objects, listed) = list_objects(&[repo().join("sample-logs")]);
    let n = objects.len();
    assert!(n > 1000, "sample-logs/ has {n} log objects");

    // Folding one object at a time is the same run as replay's batches.
    let base = baseline(&objects, &listed);
    let mut replayed = String::new();
    let r = replay(&opts(), rules(), |a| {
        replayed.push_str(&a.to_json());
        replayed.push('\n');
        Ok(())
    })
    .unwrap();
    assert_same("replay vs per-object fold", &replayed, &base.alerts);
    assert_same(
        "replay summary vs per-object fold",
        &serde_json::to_string_pretty(&r.summary()).unwrap(),
        &base.summary,
    );

    // Just after the first spike and the first unused-key alerts fire: baselines, idle keys and
    // firing alerts are in the saved state.
    let after = |kind: &str| {
        1 + base
            .fired_after
            .iter()
            .position(|f| f.contains(&kind))
            .unwrap_or_else(|| panic!("no {kind} alert in the sample"))
    };
    let splits = [
        0,
        n / 3,
        n / 2,
        after("spike"),
        after("unused"),
        after("new-principal"),
        n,
    ];
    let dir = tempfile::tempdir().unwrap();
    for k in splits {
        let (alerts, summary) = split_run(&objects, &listed, k, dir.path());
        assert_same(
            &format!("alerts, split at {k} of {n}"),
            &base.alerts,
            &alerts,
        );
        assert_same(
            &format!("summary, split at {k} of {n}"),
            &base.summary,
            &summary,
        );
    }
}

#[test]
fn the_state_of_the_sample_round_trips_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.state");
    let second = dir.path().join("second.state");
    let (objects, mut input) = list_objects(&[repo().join("sample-logs")]);
    let mut engine = Engine::new(EngineConfig::default(), rules());
    fold_objects(&mut engine, &objects, &opts(), &mut input, |_| Ok(())).unwrap();
    assert!(
        engine.firing().count() > 0,
        "the sample ends with alerts firing"
    );
    state::save(&first, &engine.snapshot()).unwrap();
    let (restored, _) = Engine::restore(
        EngineConfig::default(),
        rules(),
        state::load(&first).unwrap(),
    )
    .unwrap();
    state::save(&second, &restored.snapshot()).unwrap();
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
}

/// The journal operations that fold one sample object, as a driver makes them.
fn object_ops(object: &ObjectRef) -> Vec<Op<KmsCall>> {
    let ObjectRef::File(path) = object else {
        panic!("{object}: not a file")
    };
    let bytes = std::fs::read(path).unwrap();
    let decoded = decode_object(&bytes, &DecodeLimits::default()).unwrap();
    let name = object.to_string();
    let mut ops = vec![Op::Begin {
        latest: parse_log_name(&name).and_then(|n| n.delivered),
        identity: Some(object.identity(bytes.len() as u64)),
    }];
    ops.extend(decoded.calls.into_iter().map(Op::Call));
    ops.push(Op::End);
    ops
}

/// Applies `ops` to `engine`, recording them in `delta` when there is one; the alerts raised.
fn run_ops(
    engine: &mut Engine,
    ops: Vec<Op<KmsCall>>,
    mut delta: Option<&mut DeltaWriter>,
    alerts: &mut Vec<Alert>,
) {
    for op in ops {
        if let Some(w) = delta.as_deref_mut() {
            w.append(&op).unwrap();
        }
        engine.apply(op, alerts);
    }
}

fn saved_bytes(engine: &mut Engine, path: &std::path::Path) -> Vec<u8> {
    engine.with_snapshot(|s| state::save(path, s)).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn a_state_file_and_its_journal_resume_as_the_engine_that_wrote_them() {
    let (objects, _) = list_objects(&[repo().join("sample-logs")]);
    let n = objects.len();
    let (a, b) = (n / 3, 2 * n / 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kmswatch.state");
    let mut live = Engine::new(EngineConfig::default(), rules());
    let mut alerts = Vec::new();
    for o in &objects[..a] {
        run_ops(&mut live, object_ops(o), None, &mut alerts);
    }
    let base = live.with_snapshot(|s| state::save(&path, s)).unwrap();
    // Two deltas, the second with watermark moves a live driver makes (a cap, the wall clock).
    let mut journal_alerts = Vec::new();
    let mut ops = 0u64;
    let mut w = DeltaWriter::create(&path, base.checksum, 1).unwrap();
    for o in &objects[a..b] {
        run_ops(&mut live, object_ops(o), Some(&mut w), &mut journal_alerts);
    }
    ops += w.commit(&[]).unwrap().ops;
    let mut w = DeltaWriter::create(&path, base.checksum, 2).unwrap();
    let cap = live.watermark().unwrap() + 600;
    run_ops(
        &mut live,
        vec![Op::Cap(Some(cap))],
        Some(&mut w),
        &mut journal_alerts,
    );
    for o in &objects[b..] {
        run_ops(&mut live, object_ops(o), Some(&mut w), &mut journal_alerts);
    }
    assert_eq!(live.watermark(), Some(cap), "the cap holds the watermark");
    let later = live.max_event_time().unwrap() + 60;
    let moves = vec![Op::Cap(None), Op::AdvanceTo(later), Op::Advance];
    run_ops(&mut live, moves, Some(&mut w), &mut journal_alerts);
    ops += w.commit(&[]).unwrap().ops;
    assert!(
        !journal_alerts.is_empty(),
        "the journal's calls raise alerts"
    );

    let mut resumed = Engine::resume(EngineConfig::default(), rules(), &path).unwrap();
    assert!(resumed.notes.is_empty(), "{:?}", resumed.notes);
    assert_eq!((resumed.position.deltas, resumed.position.ops), (2, ops));
    assert_eq!(resumed.position.base, base);
    // Raised when the journal was written: not raised again.
    assert!(resumed.alerts.is_empty());
    assert_eq!(
        resumed.engine.counters().kms_calls,
        live.counters().kms_calls
    );
    let want = saved_bytes(&mut live, &dir.path().join("live.state"));
    let got = saved_bytes(&mut resumed.engine, &dir.path().join("resumed.state"));
    assert!(want == got, "the resumed engine saves other bytes");
    let (mut end_live, mut end_resumed) = (Vec::new(), Vec::new());
    live.finish(&mut end_live);
    resumed.engine.finish(&mut end_resumed);
    let json = |v: &[Alert]| v.iter().map(Alert::to_json).collect::<Vec<_>>();
    assert_eq!(json(&end_live), json(&end_resumed));

    // Without its journal the state file is the engine at the first third.
    let kms_calls = |p: &std::path::Path| {
        Engine::resume(EngineConfig::default(), rules(), p)
            .unwrap()
            .engine
            .counters()
            .kms_calls
    };
    let alone = dir.path().join("alone.state");
    std::fs::copy(&path, &alone).unwrap();
    assert!(kms_calls(&alone) < live.counters().kms_calls);

    // A rule that is new to the state gives its verdicts on the journal's calls.
    let rule = journal_alerts[0].rule.clone();
    let mut with_copy = rules();
    let mut copy = with_copy
        .rules
        .iter()
        .find(|r| r.id == rule)
        .unwrap()
        .clone();
    copy.id = format!("{rule}-copy");
    with_copy.rules.push(copy);
    let r = Engine::resume(EngineConfig::default(), with_copy, &path).unwrap();
    assert!(!r.alerts.is_empty());
    assert!(r.alerts.iter().all(|a| a.rule == format!("{rule}-copy")));
}
