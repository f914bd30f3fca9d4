//! Rule kinds and their parameters: which parameters each kind takes, their checks and defaults.

use globset::{Glob, GlobSetBuilder};

use super::values::{Checker, Fields};
use crate::rules::model::{Globs, RuleKind};

pub(super) const KINDS: [&str; 6] = [
    "threshold",
    "spike",
    "ratio",
    "unused",
    "event",
    "new-principal",
];

/// The parameters of each kind (the rule's other fields).
pub(super) fn kind_params(kind: &str) -> &'static [&'static str] {
    match kind {
        "threshold" => &["min_count", "distinct"],
        "spike" => &[
            "distinct",
            "baseline_windows",
            "min_baseline_windows",
            "min_count",
            "min_ratio",
            "z",
            "stddev_floor",
        ],
        "ratio" => &["numerator", "denominator", "max_ratio", "min_count"],
        "unused" => &["unused_for_secs", "inventory"],
        "new-principal" => &["learning_secs"],
        _ => &[],
    }
}

pub(super) fn is_param_of_any_kind(name: &str) -> bool {
    KINDS.iter().any(|k| kind_params(k).contains(&name))
}

const BASELINE_WINDOWS_MAX: i64 = 1000;

/// Validates the parameters of a rule of kind `kind` (a member of [`KINDS`]).
pub(super) fn check_kind(
    ck: &mut Checker<'_>,
    fields: &Fields<'_, '_>,
    kind: &str,
) -> Option<RuleKind> {
    // An absent optional field gives `Some(default)`; a bad one reports and gives `None`.
    let int_or = |ck: &mut Checker<'_>, name: &str, min: i64, max: Option<i64>, default: i64| {
        fields
            .get(name)
            .map_or(Some(default), |v| ck.int(name, v, min, max))
    };
    let num_or = |ck: &mut Checker<'_>, name: &str, default: f64| {
        fields
            .get(name)
            .map_or(Some(default), |v| ck.number(name, v, 0.0, false))
    };
    let required_int = |ck: &mut Checker<'_>, name: &str, min: i64| {
        fields
            .required(ck, name, Some(kind))
            .and_then(|v| ck.int(name, v, min, None))
    };
    match kind {
        "threshold" => {
            let min_count = required_int(ck, "min_count", 1);
            Some(RuleKind::Threshold {
                min_count: to_u64(min_count?),
            })
        }
        "spike" => {
            let baseline_windows =
                int_or(ck, "baseline_windows", 1, Some(BASELINE_WINDOWS_MAX), 12);
            let min_baseline_windows = match fields.get("min_baseline_windows") {
                Some(v) => ck
                    .int("min_baseline_windows", v, 1, Some(BASELINE_WINDOWS_MAX))
                    .and_then(|n| match baseline_windows {
                        Some(bw) if n > bw => {
                            ck.report(
                                v.span(),
                                format!("min_baseline_windows must not exceed baseline_windows ({bw}), got {n}"),
                            );
                            None
                        }
                        _ => Some(n),
                    }),
                None => baseline_windows.map(|bw| (bw + 1) / 2),
            };
            let min_count = int_or(ck, "min_count", 1, None, 100);
            let min_ratio = num_or(ck, "min_ratio", 3.0);
            let z = num_or(ck, "z", 4.0);
            let stddev_floor = num_or(ck, "stddev_floor", 1.0);
            Some(RuleKind::Spike {
                baseline_windows: to_usize(baseline_windows?),
                min_baseline_windows: to_usize(min_baseline_windows?),
                min_count: to_u64(min_count?),
                min_ratio: min_ratio?,
                z: z?,
                stddev_floor: stddev_floor?,
            })
        }
        "ratio" => {
            let numerator = match fields.get("numerator") {
                Some(v) => ck.globs(
                    "numerator",
                    v,
                    "omit the field to use the default [\"Decrypt\"]",
                ),
                None => default_globs(&["Decrypt"]),
            };
            let denominator = match fields.get("denominator") {
                Some(v) => ck.globs(
                    "denominator",
                    v,
                    "omit the field to use the default [\"Encrypt\", \"GenerateDataKey*\", \"ReEncrypt\"]",
                ),
                None => default_globs(&["Encrypt", "GenerateDataKey*", "ReEncrypt"]),
            };
            let max_ratio = fields
                .required(ck, "max_ratio", Some(kind))
                .and_then(|v| ck.number("max_ratio", v, 0.0, true));
            let min_count = int_or(ck, "min_count", 1, None, 100);
            Some(RuleKind::Ratio {
                numerator: numerator?,
                denominator: denominator?,
                max_ratio: max_ratio?,
                min_count: to_u64(min_count?),
            })
        }
        "unused" => {
            let unused_for_secs = required_int(ck, "unused_for_secs", 60);
            let inventory = match fields.get("inventory") {
                Some(v) => ck.inventory(v),
                None => Some(Vec::new()),
            };
            Some(RuleKind::Unused {
                unused_for_secs: unused_for_secs?,
                inventory: inventory?,
            })
        }
        "new-principal" => {
            let learning_secs = required_int(ck, "learning_secs", 0);
            Some(RuleKind::NewPrincipal {
                learning_secs: learning_secs?,
            })
        }
        _ => Some(RuleKind::Event),
    }
}

/// Only called on values already checked to be >= 1.
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Only called on values already checked to be in 1..=1000.
fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// A built-in glob list; `None` only if a built-in pattern were invalid.
fn default_globs(patterns: &[&str]) -> Option<Globs> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(Glob::new(p).ok()?);
    }
    Some(Globs::new(
        patterns.iter().map(|p| p.to_string()).collect(),
        builder.build().ok()?,
    ))
}
