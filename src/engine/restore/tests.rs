//! Restoring under changed rules and settings: notes, fresh starts, and errors.

use super::*;
use crate::alerts::AlertState::*;
use crate::rules::test_support::{brief, decrypt, rule, Harness};
use crate::rules::{ClassFilter, EvalLimits, OutcomeFilter, Rule, RuleKind};

const DAY: i64 = 86_400;
const A: &str = "arn:aws:kms:us-east-1:111111111111:key/a";
const B: &str = "arn:aws:kms:us-east-1:111111111111:key/b";

fn threshold(id: &str, min_count: u64) -> Rule {
    rule(id, RuleKind::Threshold { min_count }, &["key"])
}

fn unused(id: &str, days: i64) -> Rule {
    let mut r = rule(
        id,
        RuleKind::Unused {
            unused_for_secs: days * DAY,
            inventory: vec![],
        },
        &["key"],
    );
    r.filter.class = ClassFilter::Crypto;
    r.filter.outcome = OutcomeFilter::Ok;
    r
}

fn restore(
    h: &Harness,
    config: EngineConfig,
    rules: Vec<Rule>,
) -> Result<(Engine, Vec<RestoreNote>), StateError> {
    Engine::restore(config, RuleSet { rules }, h.engine.snapshot())
}

#[test]
fn unchanged_rules_continue_changed_and_new_ones_start_fresh_removed_ones_are_dropped() {
    let mut h = Harness::new(vec![
        threshold("same", 2),
        threshold("changed", 2),
        threshold("gone", 2),
    ]);
    for t in [0, 1, 2] {
        h.call(t, decrypt(A, "p"));
    }
    h.call(1200, decrypt(B, "p")); // watermark 300 closes window 0: all three fire for key a
    assert_eq!(h.take().len(), 3);

    let rules = vec![
        threshold("same", 2),
        threshold("changed", 3),
        threshold("new", 2),
    ];
    let (engine, notes) = restore(&h, EngineConfig::default(), rules).unwrap();
    assert_eq!(
        notes,
        vec![
            RestoreNote::ChangedRule {
                rule: "changed".into()
            },
            RestoreNote::NewRule { rule: "new".into() },
            RestoreNote::RemovedRule {
                rule: "gone".into(),
                firing: 1
            },
        ]
    );
    assert_eq!(
        notes.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        vec![
            "rule \"changed\" changed since the state was saved: its saved windows and baselines are dropped and it starts fresh",
            "rule \"new\" is not in the state: it starts fresh",
            "rule \"gone\" is in the state but no longer configured: its state is dropped, with 1 firing alert(s) that will not be resolved",
        ]
    );
    let firing: Vec<(&str, usize, u64)> = engine
        .rules()
        .iter()
        .map(|r| (r.rule.id.as_str(), r.firing(), r.counters.alerts_firing))
        .collect();
    assert_eq!(
        firing,
        vec![("same", 1, 1), ("changed", 0, 0), ("new", 0, 0)]
    );
    h.engine = engine;
    h.call(4000, decrypt(B, "p"));
    let got = h.end();
    assert_eq!(
        brief(&got),
        vec![("same", Resolved, A, 300, 0.0)],
        "only the continued rule knew key a was firing: {got:#?}"
    );
}

#[test]
fn a_different_window_is_an_error_saying_how_to_fix_it() {
    let mut h = Harness::new(vec![threshold("t", 2)]);
    h.call(0, decrypt(A, "p"));
    let config = EngineConfig {
        window_secs: 600,
        ..EngineConfig::default()
    };
    let err = restore(&h, config, vec![threshold("t", 2)]).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::Setting {
                setting: "window_secs",
                saved: 300,
                current: 600,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "(unsaved state): the state was built with window_secs 300 but the configuration has 600: its windows would not line up; set window_secs back to 300, or move it aside and rebuild it with `kmswatch replay --state-out` over recent logs using window_secs 600"
    );
}

#[test]
fn limits_below_the_state_are_all_named_and_the_dedupe_window_is_trimmed() {
    let np = rule(
        "np",
        RuleKind::NewPrincipal { learning_secs: 0 },
        &["key", "principal"],
    );
    let mut h = Harness::new(vec![threshold("t", 100), np.clone()]);
    for (t, k, p) in [(0, A, "p1"), (60, A, "p2"), (120, B, "p1")] {
        h.call(t, decrypt(k, p));
    }
    let rules = || vec![threshold("t", 100), np.clone()];
    let tight = EngineConfig {
        max_keys: 1,
        limits: EvalLimits {
            max_groups_per_rule: 1,
            max_principals_per_key: 1,
        },
        ..EngineConfig::default()
    };
    let err = restore(&h, tight, rules()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "(unsaved state): the state holds more than the configured limits allow: max_keys is 1 but the state holds 2; max_groups_per_rule is 1 but rule \"t\" holds 2; max_groups_per_rule is 1 but rule \"np\" holds 3; max_principals_per_key is 1 but rule \"np\" holds 2; raise each limit to at least what is held, or move it aside and rebuild it with `kmswatch replay --state-out` over recent logs under the new limits"
    );

    let few_ids = EngineConfig {
        max_dedupe_ids: 2,
        ..EngineConfig::default()
    };
    let (engine, notes) = restore(&h, few_ids, rules()).unwrap();
    assert_eq!(
        notes,
        vec![RestoreNote::DedupeTrimmed {
            forgotten: 1,
            max_dedupe_ids: 2
        }]
    );
    assert_eq!(
        (engine.dedupe().len(), engine.dedupe().ids_evicted_early()),
        (2, 1)
    );
}

#[test]
fn a_new_unused_rule_counts_idleness_from_the_restore_not_from_first_sight() {
    let mut h = Harness::new(vec![threshold("t", 100)]);
    h.call(0, decrypt(A, "p"));
    h.call(0, decrypt(B, "p"));
    h.call(10 * DAY, decrypt(B, "p"));
    let (engine, notes) = restore(&h, EngineConfig::default(), vec![unused("u", 30)]).unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    h.engine = engine;
    // Key a was last used at day 0, but the rule did not watch before day 10: at day 35 it has
    // watched key a idle for 25 days only.
    h.call(35 * DAY, decrypt(B, "p"));
    assert_eq!(h.take(), vec![]);
    h.call(41 * DAY, decrypt(B, "p"));
    let got = h.end();
    assert_eq!(
        brief(&got),
        vec![("u", Firing, A, 10 * DAY, (30 * DAY) as f64)],
        "{got:#?}"
    );
    assert!(
        got[0]
            .summary
            .contains("since the rule started watching it at 1970-01-11T00:00:00Z"),
        "{}",
        got[0].summary
    );
}
