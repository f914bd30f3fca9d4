//! What fell outside each of the engine's named limits: counted, never silently dropped, and
//! shown by limit name (a `note:` after a replay, `kmswatch_limit_overflow_total` live).

use std::collections::BTreeMap;

use super::{Engine, EngineConfig};
use crate::aggregate::{Dedupe, KeyCatalog};
use crate::rules::EvalCounters;
use crate::state::EngineState;
use crate::totals::Totals;

/// Every limit counted, in the order they are reported.
pub const LIMITS: [&str; 7] = [
    "max_keys",
    "max_aliases",
    "max_groups_per_rule",
    "max_principals_per_key",
    "max_dedupe_ids",
    "max_dedupe_objects",
    "max_report_rows",
];

/// Counts past each limit, by name: calls for the catalogue, rule and table limits (summed over
/// rules), call ids and objects forgotten early for the dedupe limits.
pub type OverLimits = BTreeMap<&'static str, u64>;

fn over_limits<'a>(
    catalog: &KeyCatalog,
    dedupe: &Dedupe,
    totals: &Totals,
    rules: impl Iterator<Item = &'a EvalCounters>,
) -> OverLimits {
    let (mut groups, mut principals) = (0u64, 0u64);
    for c in rules {
        principals = principals.saturating_add(c.principals_overflow);
        groups = groups.saturating_add(c.overflow.saturating_sub(c.principals_overflow));
    }
    let counts = [
        catalog.keys_overflow,
        catalog.aliases_overflow,
        groups,
        principals,
        dedupe.ids_evicted_early(),
        dedupe.objects_evicted_early(),
        totals.overflow,
    ];
    LIMITS.into_iter().zip(counts).collect()
}

impl Engine {
    /// What fell outside each limit so far, every limit listed.
    pub fn over_limits(&self) -> OverLimits {
        over_limits(
            &self.catalog,
            &self.dedupe,
            &self.totals,
            self.rules.iter().map(|r| &r.counters),
        )
    }
}

impl EngineState {
    /// [`Engine::over_limits`] of the engine that saved it.
    pub fn over_limits(&self) -> OverLimits {
        over_limits(
            &self.catalog,
            &self.dedupe,
            &self.totals,
            self.rules.iter().map(|r| &r.counters),
        )
    }
}

/// One line per engine limit `over` says was reached, in [`LIMITS`] order, saying what it cost
/// and which setting of `config` (the run's) to raise: replay prints each as a `note:` (none for
/// `max_report_rows`, which the summary's warning covers). Read from the counts alone, so the
/// notes do not need the summary's tables, a row per key.
pub fn notes(over: &OverLimits, config: &EngineConfig) -> Vec<String> {
    LIMITS
        .iter()
        .filter_map(|limit| Some((limit, *over.get(limit)?)))
        .filter(|(_, n)| *n > 0)
        .filter_map(|(limit, n)| explain(limit, n, config))
        .collect()
}

/// A line for people about a limit that was reached (`count` > 0), naming its setting under
/// `config`; `None` for `max_report_rows`, which the summary's warning covers.
pub fn explain(limit: &str, count: u64, config: &EngineConfig) -> Option<String> {
    let line = match limit {
        "max_keys" => format!(
            "{count} successful calls named keys beyond max_keys ({}): those keys are not in the key catalogue, so unused and new-principal rules do not judge them (raise --max-keys, engine.max_keys)",
            config.max_keys
        ),
        "max_aliases" => format!(
            "{count} alias changes beyond max_aliases ({}) were not kept: calls naming those aliases are not resolved to their keys (raise --max-aliases, engine.max_aliases)",
            config.max_aliases
        ),
        "max_groups_per_rule" => format!(
            "{count} calls did not fit max_groups_per_rule ({}) in their rule (each rule's overflow says which): their groups were not judged (raise --max-groups-per-rule, engine.max_groups_per_rule)",
            config.limits.max_groups_per_rule
        ),
        "max_principals_per_key" => format!(
            "{count} calls of principals beyond max_principals_per_key ({}) were not remembered by new-principal rules (raise --max-principals-per-key, engine.max_principals_per_key)",
            config.limits.max_principals_per_key
        ),
        "max_dedupe_ids" => format!(
            "{count} call ids were forgotten before dedupe_id_horizon_secs because of max_dedupe_ids ({}): a copy of one in a later object would count twice (raise --max-dedupe-ids, engine.max_dedupe_ids)",
            config.max_dedupe_ids
        ),
        "max_dedupe_objects" => format!(
            "{count} objects were forgotten before dedupe_horizon_secs because of max_dedupe_objects ({}): one delivered again would be read again, its calls deduplicated by id only (raise --max-dedupe-objects, engine.max_dedupe_objects)",
            config.max_dedupe_objects
        ),
        _ => return None,
    };
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::{decrypt, rule, Harness};
    use crate::rules::RuleKind;

    #[test]
    fn each_limit_reached_is_counted_under_its_name_and_explained() {
        let np = rule(
            "n",
            RuleKind::NewPrincipal { learning_secs: 0 },
            &["key", "principal"],
        );
        let t = rule("t", RuleKind::Threshold { min_count: 100 }, &["key"]);
        let mut h = Harness::with_limits(vec![np, t], 2, 1);
        for (k, p) in [("k1", "a"), ("k1", "b"), ("k2", "a"), ("k3", "a")] {
            h.call(0, decrypt(k, p));
        }
        let over = h.engine.over_limits();
        assert_eq!(over.keys().copied().collect::<Vec<_>>(), {
            let mut l = LIMITS.to_vec();
            l.sort();
            l
        });
        // k1/b: principals; k3: groups, in both rules.
        assert_eq!(
            (over["max_principals_per_key"], over["max_groups_per_rule"]),
            (1, 2)
        );
        assert_eq!(over["max_keys"], 0);
        assert_eq!(h.engine.snapshot().over_limits(), over);
        let config = h.engine.config().clone();
        let line = explain("max_groups_per_rule", 2, &config).unwrap();
        assert!(
            line.starts_with("2 calls did not fit max_groups_per_rule (2) in their rule"),
            "{line}"
        );
        for limit in LIMITS {
            assert_eq!(
                explain(limit, 1, &config).is_none(),
                limit == "max_report_rows"
            );
        }
    }
}
