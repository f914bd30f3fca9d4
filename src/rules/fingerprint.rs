//! The fingerprint of a rule's definition: what decides whether saved rule state still applies.

use std::fmt::Write as _;

use super::model::{Filter, Globs, IncludeExclude, Rule, RuleKind};

impl Rule {
    /// A stable hash (16 hex digits) of everything that decides how the rule evaluates: kind and
    /// parameters, filter, `group_by`, and the effective window length (`default_window_secs`
    /// unless the rule sets its own). Id, severity, description and where the rule is written are
    /// left out: editing them does not invalidate saved windows or baselines. So is an `unused`
    /// rule's inventory, which feeds the key catalogue, not the rule's own state.
    pub fn fingerprint(&self, default_window_secs: i64) -> String {
        let mut t = String::new();
        let len = self.window_secs.unwrap_or(default_window_secs);
        let _ = write!(t, "window={len};group_by={:?};", self.group_by);
        match &self.kind {
            RuleKind::Threshold { min_count } => {
                let _ = write!(t, "threshold min_count={min_count}");
            }
            RuleKind::Spike {
                baseline_windows,
                min_baseline_windows,
                min_count,
                min_ratio,
                z,
                stddev_floor,
            } => {
                let _ = write!(
                    t,
                    "spike baseline_windows={baseline_windows} min_baseline_windows={min_baseline_windows} min_count={min_count} min_ratio={min_ratio:?} z={z:?} stddev_floor={stddev_floor:?}"
                );
            }
            RuleKind::Ratio {
                numerator,
                denominator,
                max_ratio,
                min_count,
            } => {
                let _ = write!(
                    t,
                    "ratio numerator={} denominator={} max_ratio={max_ratio:?} min_count={min_count}",
                    globs(Some(numerator)),
                    globs(Some(denominator))
                );
            }
            RuleKind::Unused {
                unused_for_secs,
                inventory: _,
            } => {
                let _ = write!(t, "unused unused_for_secs={unused_for_secs}");
            }
            RuleKind::Event => t.push_str("event"),
            RuleKind::NewPrincipal { learning_secs } => {
                let _ = write!(t, "new-principal learning_secs={learning_secs}");
            }
        }
        // Destructured whole, so a new filter field cannot be forgotten here.
        let Filter {
            operations,
            class,
            outcome,
            error_codes,
            keys,
            principals,
            services,
            accounts,
            cross_account,
            policy_public,
            policy_lockout_bypass,
            grantee_cross_account,
        } = &self.filter;
        let _ = write!(
            t,
            ";operations={};class={class:?};outcome={outcome:?};error_codes={error_codes:?};keys={};principals={};services={};accounts={};cross_account={cross_account:?}",
            globs(operations.as_ref()),
            include_exclude(keys),
            include_exclude(principals),
            include_exclude(services),
            include_exclude(accounts),
        );
        // Written only when set, so the rules that existed before them keep their fingerprints.
        for (name, value) in [
            ("policy_public", policy_public),
            ("policy_lockout_bypass", policy_lockout_bypass),
            ("grantee_cross_account", grantee_cross_account),
        ] {
            if let Some(v) = value {
                let _ = write!(t, ";{name}={v}");
            }
        }
        if let Some(d) = self.distinct {
            let _ = write!(t, ";distinct={}", d.as_str());
        }
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(t.as_bytes()))
    }
}

fn globs(g: Option<&Globs>) -> String {
    match g {
        Some(g) => format!("{:?}", g.patterns),
        None => "*".to_owned(),
    }
}

fn include_exclude(ie: &IncludeExclude) -> String {
    format!(
        "+{}-{}",
        globs(ie.include.as_ref()),
        ie.exclude
            .as_ref()
            .map_or_else(|| "[]".to_owned(), |g| format!("{:?}", g.patterns))
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::eval::test_support::{globs, rule};
    use crate::rules::model::{RuleKind, Severity};

    #[test]
    fn what_changes_the_fingerprint() {
        let base = rule("t", RuleKind::Threshold { min_count: 5 }, &["key"]);
        let fp = base.fingerprint(300);
        assert_eq!(fp.len(), 16);
        // Fields added later leave the fingerprints of rules that do not use them unchanged.
        assert_eq!(
            fp, "bc6337b1b4131316",
            "the fingerprint of an existing rule"
        );
        assert_eq!(fp, base.clone().fingerprint(300), "stable");

        let mut cosmetic = base.clone();
        cosmetic.id = "renamed".into();
        cosmetic.severity = Severity::Low;
        cosmetic.description = "other words".into();
        cosmetic.origin.line = 40;
        assert_eq!(cosmetic.fingerprint(300), fp, "id, severity, text, place");
        let mut explicit = base.clone();
        explicit.window_secs = Some(300);
        assert_eq!(explicit.fingerprint(300), fp, "same effective window");

        let mut changed = Vec::new();
        changed.push(("default window", base.fingerprint(600)));
        let mut r = base.clone();
        r.kind = RuleKind::Threshold { min_count: 6 };
        changed.push(("parameter", r.fingerprint(300)));
        let mut r = base.clone();
        r.group_by = rule("t", RuleKind::Event, &["key", "principal"]).group_by;
        changed.push(("group_by", r.fingerprint(300)));
        let mut r = base.clone();
        r.filter.operations = Some(globs(&["Decrypt"]));
        changed.push(("operations", r.fingerprint(300)));
        let mut r = base.clone();
        r.filter.principals.exclude = Some(globs(&["arn:aws:iam::1:role/x"]));
        changed.push(("principal exclusion", r.fingerprint(300)));
        let mut r = base.clone();
        r.kind = RuleKind::Event;
        changed.push(("kind", r.fingerprint(300)));
        let mut r = base.clone();
        r.distinct = Some(crate::rules::Dim::Principal);
        changed.push(("distinct", r.fingerprint(300)));
        let mut r = base.clone();
        r.filter.policy_public = Some(true);
        changed.push(("policy_public", r.fingerprint(300)));
        let mut r = base.clone();
        r.filter.grantee_cross_account = Some(false);
        changed.push(("grantee_cross_account", r.fingerprint(300)));
        for (what, f) in changed {
            assert_ne!(f, fp, "{what} must change the fingerprint");
        }

        let unused = |inventory: Vec<String>| {
            rule(
                "u",
                RuleKind::Unused {
                    unused_for_secs: 86_400,
                    inventory,
                },
                &["key"],
            )
            .fingerprint(300)
        };
        assert_eq!(unused(vec![]), unused(vec!["arn:k".into()]), "inventory");
    }
}
