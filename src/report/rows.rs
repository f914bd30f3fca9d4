//! The report's tables as plain rows, built from [`Totals`] and the alerts, each sorted by its
//! stated key. Pure; `frames` turns them into DataFrames, `markdown` and `findings` read them.

use std::collections::{BTreeMap, BTreeSet};

use crate::totals::{lifecycle_category, KeyState, Totals};

/// One key (`key_arn` `None`: calls that named no key). Sorted by `key_arn`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRow {
    pub key_arn: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    /// Alias ARNs seen naming or pointing at the key, sorted.
    pub aliases: Vec<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_crypto_use: Option<i64>,
    pub calls: u64,
    pub crypto_calls: u64,
    pub management_calls: u64,
    pub failures: u64,
    pub principals: u64,
    pub services: u64,
    pub lifecycle_state: KeyState,
    pub lifecycle_state_since: Option<i64>,
    pub rotation_enabled_at: Option<i64>,
    pub rotation_disabled_at: Option<i64>,
    pub rotated_at: Option<i64>,
    pub rotations: u64,
    pub policy_changes: u64,
    pub grants_created: u64,
    pub grants_removed: u64,
}

/// Sorted by `(key_arn, principal, service)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalRow {
    pub key_arn: Option<String>,
    pub principal: String,
    pub service: String,
    pub calls: u64,
    pub failures: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Sorted by `(key_arn, operation, outcome)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRow {
    pub key_arn: Option<String>,
    pub operation: String,
    pub outcome: String,
    pub calls: u64,
}

/// Sorted by `(key_arn, day)`; `day` is the start of the UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub key_arn: Option<String>,
    pub day: i64,
    pub calls: u64,
    pub crypto_calls: u64,
    pub management_calls: u64,
    pub failures: u64,
}

/// Sorted by `(time, key_arn, operation, event_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRow {
    pub time: i64,
    pub key_arn: Option<String>,
    pub operation: String,
    pub category: &'static str,
    pub principal: String,
    pub outcome: String,
    pub event_id: String,
}

/// One alert (firing or resolved), from its `kmswatch.alert/v1` JSON. Sorted by
/// `(window_start, window_end, rule, group, state)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub window_start: i64,
    pub window_end: i64,
    pub rule: String,
    pub kind: String,
    pub severity: String,
    pub state: String,
    /// The group as JSON (`{"key":"arn:..."}`).
    pub group: String,
    pub key_arn: Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub evidence_count: u64,
    pub summary: String,
}

/// Every table of a report.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub keys: Vec<KeyRow>,
    pub key_principal_service: Vec<PrincipalRow>,
    pub key_operation_outcome: Vec<OutcomeRow>,
    pub daily_usage: Vec<DayRow>,
    pub lifecycle: Vec<LifecycleRow>,
    pub alerts: Vec<AlertRow>,
}

fn key_opt(k: &str) -> Option<String> {
    (!k.is_empty()).then(|| k.to_owned())
}

/// Field `n` (0-based, `:`-separated) of an ARN, when not empty.
fn arn_field(arn: &str, n: usize) -> Option<String> {
    arn.split(':')
        .nth(n)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
}

impl Tables {
    /// The tables of `totals`, and of `alerts` (alert-schema JSON, in any order).
    pub fn build(t: &Totals, alerts: &[serde_json::Value]) -> Tables {
        let mut principals: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
        let mut kps: Vec<PrincipalRow> = t
            .kps_rows()
            .map(|([key, principal, service], c)| {
                let e = principals.entry(key).or_default();
                e.0.insert(principal);
                e.1.insert(service);
                PrincipalRow {
                    key_arn: key_opt(key),
                    principal: principal.to_owned(),
                    service: service.to_owned(),
                    calls: c.calls,
                    failures: c.failures,
                    first_seen: c.first_seen,
                    last_seen: c.last_seen,
                }
            })
            .collect();
        kps.sort_by(|a, b| {
            (&a.key_arn, &a.principal, &a.service).cmp(&(&b.key_arn, &b.principal, &b.service))
        });
        let mut aliases: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ([key, alias], _) in t.alias_rows() {
            aliases.entry(key).or_default().push(alias.to_owned());
        }
        let mut keys: Vec<KeyRow> = t
            .keys
            .iter()
            .map(|(k, v)| {
                let f = &v.facts;
                let (p, s) = principals
                    .get(&**k)
                    .map_or((0, 0), |(p, s)| (p.len(), s.len()));
                let mut a = aliases.remove(&**k).unwrap_or_default();
                a.sort();
                KeyRow {
                    key_arn: key_opt(k),
                    account: arn_field(k, 4),
                    region: arn_field(k, 3),
                    aliases: a,
                    first_seen: v.first_seen,
                    last_seen: v.last_seen,
                    last_crypto_use: v.last_used,
                    calls: v.calls,
                    crypto_calls: v.crypto_calls,
                    management_calls: v.management_calls,
                    failures: v.failures,
                    principals: p as u64,
                    services: s as u64,
                    lifecycle_state: f.state,
                    lifecycle_state_since: f.state_since,
                    rotation_enabled_at: f.rotation_enabled,
                    rotation_disabled_at: f.rotation_disabled,
                    rotated_at: f.rotated,
                    rotations: f.rotations,
                    policy_changes: f.policy_changes,
                    grants_created: f.grants_created,
                    grants_removed: f.grants_removed,
                }
            })
            .collect();
        keys.sort_by(|a, b| a.key_arn.cmp(&b.key_arn));
        let mut koo: Vec<OutcomeRow> = t
            .koo_rows()
            .map(|([key, operation, outcome], calls)| OutcomeRow {
                key_arn: key_opt(key),
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
                calls,
            })
            .collect();
        koo.sort_by(|a, b| {
            (&a.key_arn, &a.operation, &a.outcome).cmp(&(&b.key_arn, &b.operation, &b.outcome))
        });
        let mut daily: Vec<DayRow> = t
            .daily_rows()
            .map(|(key, day, d)| DayRow {
                key_arn: key_opt(key),
                day: day.saturating_mul(86_400),
                calls: d.crypto_calls.saturating_add(d.management_calls),
                crypto_calls: d.crypto_calls,
                management_calls: d.management_calls,
                failures: d.failures,
            })
            .collect();
        daily.sort_by(|a, b| (&a.key_arn, a.day).cmp(&(&b.key_arn, b.day)));
        let mut lifecycle: Vec<LifecycleRow> = t
            .lifecycle
            .iter()
            .map(|e| LifecycleRow {
                time: e.time,
                key_arn: key_opt(&e.key),
                operation: e.operation.to_string(),
                category: lifecycle_category(&e.operation).unwrap_or("other"),
                principal: e.principal.to_string(),
                outcome: e.outcome.to_string(),
                event_id: e.event_id.to_string(),
            })
            .collect();
        lifecycle.sort_by(|a, b| {
            (a.time, &a.key_arn, &a.operation, &a.event_id).cmp(&(
                b.time,
                &b.key_arn,
                &b.operation,
                &b.event_id,
            ))
        });
        let mut alerts: Vec<AlertRow> = alerts.iter().map(alert_row).collect();
        alerts.sort_by(|a, b| {
            (a.window_start, a.window_end, &a.rule, &a.group, &a.state).cmp(&(
                b.window_start,
                b.window_end,
                &b.rule,
                &b.group,
                &b.state,
            ))
        });
        Tables {
            keys,
            key_principal_service: kps,
            key_operation_outcome: koo,
            daily_usage: daily,
            lifecycle,
            alerts,
        }
    }
}

fn alert_row(a: &serde_json::Value) -> AlertRow {
    let s = |f: &str| a[f].as_str().unwrap_or_default().to_owned();
    let time = |f: &str| {
        a[f].as_str()
            .and_then(crate::timefmt::parse_event_time)
            .unwrap_or_default()
    };
    AlertRow {
        window_start: time("window_start"),
        window_end: time("window_end"),
        rule: s("rule"),
        kind: s("kind"),
        severity: s("severity"),
        state: s("state"),
        group: serde_json::to_string(&a["group"]).unwrap_or_default(),
        key_arn: a["group"]["key"].as_str().map(str::to_owned),
        value: a["value"].as_f64(),
        threshold: a["threshold"].as_f64(),
        evidence_count: a["evidence"]["count"].as_u64().unwrap_or_default(),
        summary: s("summary"),
    }
}
