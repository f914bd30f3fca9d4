//! The filter of a rule: which calls it looks at (operations, class, outcome, error codes, keys,
//! principals, services, accounts, cross-account, request facts), with defaults that depend on
//! the kind.

use super::values::{Checker, Fields};
use crate::rules::model::{ClassFilter, Filter, OutcomeFilter};

const CLASSES: [&str; 3] = ["crypto", "management", "any"];
const OUTCOMES: [&str; 3] = ["ok", "failure", "any"];

const EVERYTHING: &str = "omit the field to match everything";

/// Validates the filter fields. `kind` decides the class and outcome defaults.
pub(super) fn check_filter(
    ck: &mut Checker<'_>,
    fields: &Fields<'_, '_>,
    kind: Option<&str>,
) -> Option<Filter> {
    let mut ok = true;
    let strict = matches!(kind, Some("unused" | "new-principal"));
    let mut filter = Filter {
        class: if strict {
            ClassFilter::Crypto
        } else {
            ClassFilter::Any
        },
        outcome: if strict {
            OutcomeFilter::Ok
        } else {
            OutcomeFilter::Any
        },
        ..Filter::default()
    };
    if let Some(v) = fields.get("operations") {
        filter.operations = ck.globs("operations", v, EVERYTHING);
        ok &= filter.operations.is_some();
    }
    if let Some(v) = fields.get("class") {
        match ck.choice("class", v, &CLASSES) {
            Some("crypto") => filter.class = ClassFilter::Crypto,
            Some("management") => filter.class = ClassFilter::Management,
            Some(_) => filter.class = ClassFilter::Any,
            None => ok = false,
        }
    }
    if let Some(v) = fields.get("outcome") {
        match ck.choice("outcome", v, &OUTCOMES) {
            Some("ok") => filter.outcome = OutcomeFilter::Ok,
            Some("failure") => filter.outcome = OutcomeFilter::Failure,
            Some(_) => filter.outcome = OutcomeFilter::Any,
            None => ok = false,
        }
    }
    if let Some(v) = fields.get("error_codes") {
        match ck.strings("error_codes", v, "omit the field to match any error code") {
            Some(codes) => {
                if filter.outcome == OutcomeFilter::Ok {
                    ck.report(
                        v.span(),
                        "error_codes never match when outcome is \"ok\": remove one of them",
                    );
                    ok = false;
                }
                filter.error_codes = Some(
                    codes
                        .into_iter()
                        .map(|(code, _)| match code {
                            "AccessDenied" => "AccessDeniedException".to_string(),
                            other => other.to_string(),
                        })
                        .collect(),
                );
            }
            None => ok = false,
        }
    }
    for (include, exclude, slot) in [
        ("keys", "exclude_keys", &mut filter.keys),
        ("principals", "exclude_principals", &mut filter.principals),
        ("services", "exclude_services", &mut filter.services),
        ("accounts", "exclude_accounts", &mut filter.accounts),
    ] {
        if let Some(v) = fields.get(include) {
            slot.include = ck.globs(include, v, EVERYTHING);
            ok &= slot.include.is_some();
        }
        if let Some(v) = fields.get(exclude) {
            slot.exclude = ck.globs(exclude, v, "omit the field to exclude nothing");
            ok &= slot.exclude.is_some();
        }
    }
    for (name, slot) in [
        ("cross_account", &mut filter.cross_account),
        ("policy_public", &mut filter.policy_public),
        ("policy_lockout_bypass", &mut filter.policy_lockout_bypass),
        ("grantee_cross_account", &mut filter.grantee_cross_account),
    ] {
        if let Some(v) = fields.get(name) {
            *slot = ck.boolean(name, v);
            ok &= slot.is_some();
        }
    }
    ok.then_some(filter)
}
