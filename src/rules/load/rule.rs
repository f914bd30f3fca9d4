//! One `[[rule]]` table into a [`Rule`]: the required common fields, unknown fields (with
//! did-you-mean), rule ids and their duplicates across files, `group_by` and `window_secs`.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::DeTable;

use super::filter::check_filter;
use super::kind::{check_kind, is_param_of_any_kind, kind_params, KINDS};
use super::values::{Checker, Fields};
use crate::problem::distance_if_close;
use crate::rules::model::{Dim, Rule, RuleOrigin, Severity};

/// Fields every rule may have, whatever its kind.
const COMMON_FIELDS: [&str; 22] = [
    "id",
    "kind",
    "severity",
    "description",
    "operations",
    "class",
    "outcome",
    "error_codes",
    "keys",
    "exclude_keys",
    "principals",
    "exclude_principals",
    "services",
    "exclude_services",
    "accounts",
    "exclude_accounts",
    "cross_account",
    "policy_public",
    "policy_lockout_bypass",
    "grantee_cross_account",
    "group_by",
    "window_secs",
];

const WINDOW_SECS_MIN: i64 = 60;
const WINDOW_SECS_MAX: i64 = 604_800;

/// Validates one `[[rule]]` table; `header` is the table's span (its `[[rule]]` header). `ids` holds
/// where each rule id seen so far (in any file) was first defined; a new valid id is added to it.
/// Returns the rule only when it has no problem.
pub(super) fn check_rule(
    ck: &mut Checker<'_>,
    table: &DeTable<'_>,
    header: Range<usize>,
    ids: &mut HashMap<String, RuleOrigin>,
) -> Option<Rule> {
    let before = ck.problem_count();
    let origin = RuleOrigin {
        file: ck.src.file.to_path_buf(),
        line: ck.src.position(header.start).0,
    };
    let fields = Fields::new(table, header);

    let id = fields.required(ck, "id", None).and_then(|v| {
        let id = ck.string("id", v)?;
        if !is_valid_id(id) {
            ck.report(
                v.span(),
                format!("invalid rule id \"{id}\": use lowercase letters, digits and \"-\", starting with a letter or digit"),
            );
            return None;
        }
        if let Some(first) = ids.get(id) {
            ck.report(
                v.span(),
                format!("duplicate rule id \"{id}\" (first defined at {first})"),
            );
            return None;
        }
        ids.insert(id.to_string(), origin.clone());
        Some(id.to_string())
    });
    let kind = fields
        .required(ck, "kind", None)
        .and_then(|v| ck.choice("kind", v, &KINDS));
    let severity = fields
        .required(ck, "severity", None)
        .and_then(|v| ck.choice("severity", v, &Severity::NAMES))
        .and_then(Severity::parse);
    let description = fields.required(ck, "description", None).and_then(|v| {
        let s = ck.string("description", v)?;
        if s.trim().is_empty() {
            ck.report(
                v.span(),
                "\"description\" must not be empty: say what the alert means and what to do",
            );
            return None;
        }
        Some(s.to_string())
    });

    for (key, _) in table.iter() {
        let name: &str = key.get_ref();
        if COMMON_FIELDS.contains(&name) || kind.is_some_and(|k| kind_params(k).contains(&name)) {
            continue;
        }
        if is_param_of_any_kind(name) {
            if let Some(k) = kind {
                ck.report(
                    key.span(),
                    format!("\"{name}\" is not a parameter of kind \"{k}\""),
                );
            }
            continue;
        }
        let own = kind.map_or(&[][..], kind_params);
        let message = match suggest_field(name, own) {
            Some(s) => format!("unknown field \"{name}\" (did you mean \"{s}\"?)"),
            None => format!("unknown field \"{name}\""),
        };
        ck.report(key.span(), message);
    }

    let filter = check_filter(ck, &fields, kind);
    let group_by = match fields.get("group_by") {
        Some(v) => ck.group_by(v).and_then(|dims| {
            let kind = kind?;
            let required: &[Dim] = match kind {
                "unused" => &[Dim::Key],
                "new-principal" => &[Dim::Key, Dim::Principal],
                _ => return Some(dims),
            };
            if dims != required {
                let names: Vec<String> = required
                    .iter()
                    .map(|d| format!("\"{}\"", d.as_str()))
                    .collect();
                ck.report(
                    v.span(),
                    format!(
                        "group_by of kind \"{kind}\" must be [{}] or omitted",
                        names.join(", ")
                    ),
                );
                return None;
            }
            Some(dims)
        }),
        None => kind.map(default_group_by),
    };
    let window_secs = match fields.get("window_secs") {
        Some(v) => ck
            .int("window_secs", v, WINDOW_SECS_MIN, Some(WINDOW_SECS_MAX))
            .and_then(|secs| {
                if secs % 60 != 0 {
                    ck.report(
                        v.span(),
                        format!("window_secs must be a multiple of 60, got {secs}"),
                    );
                    return None;
                }
                Some(Some(secs))
            }),
        None => Some(None),
    };
    let rule_kind = kind.and_then(|k| check_kind(ck, &fields, k));
    let counts_distinct = matches!(kind, Some("threshold" | "spike"));
    let distinct = match fields.get("distinct").filter(|_| counts_distinct) {
        Some(v) => ck
            .choice("distinct", v, &Dim::NAMES)
            .and_then(Dim::parse)
            .and_then(|d| match &group_by {
                Some(dims) if dims.contains(&d) => {
                    ck.report(
                        v.span(),
                        format!(
                            "distinct = \"{}\" counts a dimension the rule also groups by: every group would count 1; remove it from group_by or choose another",
                            d.as_str()
                        ),
                    );
                    None
                }
                _ => Some(Some(d)),
            }),
        None => Some(None),
    };

    let rule = Rule {
        id: id?,
        severity: severity?,
        description: description?,
        origin,
        filter: filter?,
        group_by: group_by?,
        window_secs: window_secs?,
        distinct: distinct?,
        kind: rule_kind?,
    };
    (ck.problem_count() == before).then_some(rule)
}

fn default_group_by(kind: &str) -> Vec<Dim> {
    match kind {
        "event" => vec![Dim::Key, Dim::Principal, Dim::Operation],
        "new-principal" => vec![Dim::Key, Dim::Principal],
        _ => vec![Dim::Key],
    }
}

/// `^[a-z0-9][a-z0-9-]*$`
fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The closest known field of any kind, preferring the rule's own fields on ties.
fn suggest_field(got: &str, own_params: &[&str]) -> Option<&'static str> {
    let all = COMMON_FIELDS
        .iter()
        .chain(KINDS.iter().flat_map(|k| kind_params(k).iter()));
    all.filter_map(|f| {
        let d = distance_if_close(got, f)?;
        let foreign = !COMMON_FIELDS.contains(f) && !own_params.contains(f);
        Some((d, foreign, *f))
    })
    .min_by_key(|(d, foreign, _)| (*d, *foreign))
    .map(|(_, _, f)| f)
}
