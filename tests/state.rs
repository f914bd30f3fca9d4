//! A restart forgets nothing: the sample logs folded with a save, load and restore at several
//! points give byte-identical alerts and summary to one uninterrupted replay.

mod common;

use std::path::PathBuf;

use common::*;
use kmswatch::alerts::Alert;
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::replay::{fold_objects, list_objects, replay, ReplayOptions};
use kmswatch::report::{InputStats, Summary};
use kmswatch::rules::{load_dir, RuleSet};
use kmswatch::sources::ObjectRef;
use kmswatch::state;

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
