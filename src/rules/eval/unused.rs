//! The `unused` rule: known keys with no matching use for a while, checked at window boundaries.

use serde::{Deserialize, Serialize};

use crate::Map;

use super::{make_alert, AlertParts, EvidenceIds};
use crate::aggregate::{window_start, KeyCatalog};
use crate::alerts::{Alert, AlertState};
use crate::decode::{KeyEffect, KmsCall};
use crate::rules::model::{Rule, RuleKind};
use crate::timefmt::{check_time, check_time_or_start, format_rfc3339};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UnusedState {
    /// Checks happen when the watermark passes a boundary of windows of this length
    /// (configuration, set again on restore).
    #[serde(skip)]
    len: i64,
    next_boundary: Option<i64>,
    /// Key -> time and eventID of its latest matching use.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    last_use: Map<Box<str>, (i64, String)>,
    /// Keys alerted on -> the time they have been idle since.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    fired: Map<Box<str>, i64>,
    /// No key can be due before this: boundaries before it are skipped without a scan.
    next_due: i64,
    /// The rule has watched keys since this event time (`i64::MIN`: since the engine started). A
    /// rule added to a restored engine counts idleness from then, not from a key's first sighting:
    /// uses before then were not watched.
    watch_from: i64,
}

fn idle_days(secs: i64) -> f64 {
    (secs as f64 / 86_400.0 * 10.0).round() / 10.0
}

impl UnusedState {
    pub(super) fn new(len: i64) -> Self {
        UnusedState {
            len,
            next_boundary: None,
            last_use: Map::default(),
            fired: Map::default(),
            next_due: i64::MIN,
            watch_from: i64::MIN,
        }
    }

    /// After loading from a state file: takes the configuration of `fresh` (same rule, current
    /// settings).
    pub(super) fn adopt_config(&mut self, fresh: &Self) {
        self.len = fresh.len;
    }

    /// After loading from a state file: every time held is one arithmetic can use.
    pub(super) fn check_times(&self) -> Result<(), String> {
        if let Some(t) = self.next_boundary {
            check_time("next_boundary", t)?;
        }
        // `next_due` is a bound (`i64::MIN` or `i64::MAX` when nothing is due), only compared and
        // moved with saturating arithmetic: any value is safe.
        check_time_or_start("watch_from", self.watch_from)?;
        self.last_use
            .values()
            .try_for_each(|(t, _)| check_time("a key's last use", *t))?;
        self.fired
            .values()
            .try_for_each(|&t| check_time("the time a fired key is idle since", t))
    }

    /// A fresh rule in a restored engine: watches from event time `t` on, checking at the next
    /// boundary after it.
    pub(super) fn watch_from(&mut self, t: i64) {
        self.watch_from = t;
        self.next_boundary
            .get_or_insert(window_start(t, self.len) + self.len);
    }

    pub(super) fn firing(&self) -> usize {
        self.fired.len()
    }

    pub(super) fn next_close(&self) -> Option<i64> {
        self.next_boundary
    }

    fn unused_for(rule: &Rule) -> i64 {
        match rule.kind {
            RuleKind::Unused {
                unused_for_secs, ..
            } => unused_for_secs,
            _ => i64::MAX,
        }
    }

    /// Only real keys (not unresolved alias ARNs) in the rule's key and account scope.
    fn eligible(rule: &Rule, key: &str) -> bool {
        let accounts = &rule.filter.accounts;
        key.contains(":key/")
            && rule.filter.keys.matches(Some(key))
            // The key's account is looked for only when the rule names accounts.
            && (accounts.is_everything() || accounts.matches(crate::decode::arn_account(key)))
    }

    pub(super) fn on_call(
        &mut self,
        rule: &Rule,
        call: &KmsCall,
        key: Option<&str>,
        catalog: &KeyCatalog,
        out: &mut Vec<Alert>,
    ) {
        self.next_boundary
            .get_or_insert(window_start(call.time, self.len) + self.len);
        let Some(key) = key else { return };
        let unused_for = Self::unused_for(rule);
        let info = catalog.get(key);
        if let Some(info) = info {
            self.next_due = self.next_due.min(
                info.first_seen
                    .max(self.watch_from)
                    .saturating_add(unused_for),
            );
        }
        if matches!(
            call.effect,
            Some(KeyEffect::DeletionScheduled | KeyEffect::Deleted)
        ) {
            self.retire(rule, call, key, out);
            return;
        }
        // Only catalogued keys are judged, so only their uses are tracked: a rule whose filter
        // takes failed calls must not remember every made-up key a flood of failures names.
        if info.is_none() || !rule.filter.matches(call, Some(key)) || !Self::eligible(rule, key) {
            return;
        }
        match self.last_use.get_mut(key) {
            Some(last) if last.0 >= call.time => {}
            Some(last) => {
                // In place: a key in steady use moves its latest use on at nearly every call.
                last.0 = call.time;
                last.1.clear();
                last.1.push_str(&call.event_id);
            }
            None => {
                self.last_use
                    .insert(key.into(), (call.time, call.event_id.to_string()));
            }
        }
        // Nearly always empty: no key to hash then.
        let fired = if self.fired.is_empty() {
            None
        } else {
            self.fired.remove(key)
        };
        if let Some(since) = fired {
            let summary = format!(
                "resolved: key {key} was used again at {} by {} ({}) after {} days",
                format_rfc3339(call.time),
                call.principal,
                call.operation,
                idle_days(call.time - since)
            );
            out.push(resolved(rule, key, since, call, summary));
        }
    }

    /// The key's deletion was scheduled, or AWS KMS deleted it: what the alert asks for was done,
    /// so a firing alert resolves, and the key's use is no longer tracked.
    fn retire(&mut self, rule: &Rule, call: &KmsCall, key: &str, out: &mut Vec<Alert>) {
        if matches!(call.effect, Some(KeyEffect::Deleted)) {
            self.last_use.remove(key);
        }
        let Some(since) = self.fired.remove(key) else {
            return;
        };
        let what = match call.effect {
            Some(KeyEffect::Deleted) => "was deleted",
            _ => "was scheduled for deletion",
        };
        let summary = format!(
            "resolved: key {key} {what} at {} ({} by {})",
            format_rfc3339(call.time),
            call.operation,
            call.principal,
        );
        out.push(resolved(rule, key, since, call, summary));
    }

    pub(super) fn close_next(
        &mut self,
        rule: &Rule,
        limit: i64,
        catalog: &KeyCatalog,
        out: &mut Vec<Alert>,
    ) -> bool {
        let Some(boundary) = self.next_boundary else {
            return false;
        };
        if boundary > limit {
            return false;
        }
        if boundary < self.next_due {
            // Nothing can be due yet: jump to the first boundary at or after next_due, or past limit.
            let due = self.next_due.min(limit.saturating_add(1));
            let jump = window_start(due.saturating_sub(1), self.len) + self.len;
            self.next_boundary = Some(jump.max(boundary + self.len));
            return false;
        }
        self.next_boundary = Some(boundary + self.len);
        let unused_for = Self::unused_for(rule);
        let mut due: Vec<(&str, i64)> = Vec::new();
        let mut next_due = i64::MAX;
        for (key, info) in catalog.iter() {
            if !info.live() || self.fired.contains_key(key) || !Self::eligible(rule, key) {
                continue;
            }
            let since = self
                .last_use
                .get(key)
                .map_or(info.first_seen.max(self.watch_from), |(t, _)| *t);
            if since.saturating_add(unused_for) <= boundary {
                due.push((key, since));
            } else {
                next_due = next_due.min(since.saturating_add(unused_for));
            }
        }
        self.next_due = next_due;
        due.sort_unstable();
        for (key, since) in due {
            let last = self.last_use.get(key);
            let ids = last.map_or_else(EvidenceIds::default, |(_, id)| EvidenceIds::one(id));
            let history = match last {
                Some(_) => format!("since its last use at {}", format_rfc3339(since)),
                None if catalog.get(key).is_some_and(|k| k.first_seen < since) => format!(
                    "since the rule started watching it at {}",
                    format_rfc3339(since)
                ),
                None => format!("since it was first seen at {}", format_rfc3339(since)),
            };
            out.push(make_alert(
                rule,
                AlertParts {
                    state: AlertState::Firing,
                    group_key: key,
                    window: (since, boundary),
                    value: (boundary - since) as f64,
                    threshold: unused_for as f64,
                    baseline: None,
                    summary: format!(
                        "key {key} had no matching use for {} days, {history}: disable it or schedule its deletion if nothing needs it",
                        idle_days(boundary - since)
                    ),
                    count: 0,
                    ids: &ids,
                },
            ));
            self.fired.insert(key.into(), since);
        }
        true
    }
}

/// The resolution of the alert firing since `since` for `key`, ended by `call`.
fn resolved(rule: &Rule, key: &str, since: i64, call: &KmsCall, summary: String) -> Alert {
    let ids = EvidenceIds::one(&call.event_id);
    make_alert(
        rule,
        AlertParts {
            state: AlertState::Resolved,
            group_key: key,
            window: (since, call.time),
            value: (call.time - since) as f64,
            threshold: UnusedState::unused_for(rule) as f64,
            baseline: None,
            summary,
            count: 1,
            ids: &ids,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::alerts::AlertState::*;
    use crate::decode::KeyEffect;
    use crate::rules::model::{ClassFilter, OutcomeFilter, RuleKind};

    fn unused(days: i64) -> crate::rules::Rule {
        let mut r = rule(
            "u",
            RuleKind::Unused {
                unused_for_secs: days * 86_400,
                inventory: vec![],
            },
            &["key"],
        );
        r.filter.class = ClassFilter::Crypto;
        r.filter.outcome = OutcomeFilter::Ok;
        r
    }

    const DAY: i64 = 86_400;

    #[test]
    fn fires_once_per_key_and_resolves_on_use() {
        let mut h = Harness::new(vec![unused(30)]);
        h.call(0, decrypt("arn:k/a", "p"));
        h.call(0, op("DescribeKey", "arn:key/b", "p")); // known, never used
        h.call(10 * DAY, decrypt("arn:key/c", "p"));
        h.call(20 * DAY, op("DescribeKey", "arn:key/a", "p")); // management: not a use
        h.call(31 * DAY, decrypt("arn:key/c", "p"));
        h.call(45 * DAY, decrypt("arn:key/b", "p")); // b used again
        let got = h.end();
        // "arn:k/a" is not a key ARN (an unresolved alias would look like it): never alerted.
        // key/b: known at 0, never used: due at day 30, resolved by its use at day 45.
        // key/a: first seen at day 20: due at day 50, after the last event. key/c: used.
        assert_eq!(
            brief(&got),
            vec![
                ("u", Firing, "arn:key/b", 0, 30.0 * DAY as f64),
                ("u", Resolved, "arn:key/b", 0, 45.0 * DAY as f64)
            ],
            "{got:#?}"
        );
        assert_eq!(got[0].window_end, 30 * DAY);
        assert_eq!(got[1].evidence.count, 1);
    }

    #[test]
    fn keys_pending_deletion_are_excluded() {
        let mut h = Harness::new(vec![unused(1)]);
        h.call(0, decrypt("arn:key/a", "p"));
        h.call(0, decrypt("arn:key/b", "p"));
        let mut c = op("ScheduleKeyDeletion", "arn:key/b", "admin");
        c.effect = Some(KeyEffect::DeletionScheduled);
        h.call(10, c);
        h.call(3 * DAY, op("ListKeys", "", "p"));
        let got = h.end();
        assert_eq!(
            brief(&got).iter().map(|x| x.2).collect::<Vec<_>>(),
            vec!["arn:key/a"],
            "{got:#?}"
        );
    }

    #[test]
    fn a_deleted_key_is_never_judged_again_and_its_alert_resolves() {
        let mut h = Harness::new(vec![unused(1)]);
        h.call(0, decrypt("arn:key/a", "p"));
        h.call(0, decrypt("arn:key/b", "p"));
        h.call(2 * DAY, decrypt("arn:key/a", "p"));
        // key/b fired at day 1; AWS KMS deletes it at day 3.
        let mut c = op("DeleteKey", "arn:key/b", "AWS Internal");
        c.effect = Some(KeyEffect::Deleted);
        h.call(3 * DAY, c);
        // Calls failing on the deleted key afterwards do not bring it back.
        let mut failed = decrypt("arn:key/b", "p");
        failed.error_code = Some("NotFoundException".into());
        h.call(3 * DAY + 5, failed);
        h.call(3 * DAY + 10, decrypt("arn:key/a", "p"));
        h.call(9 * DAY, decrypt("arn:key/a", "p"));
        let got = h.end();
        let b: Vec<_> = brief(&got)
            .into_iter()
            .filter(|x| x.2 == "arn:key/b")
            .map(|x| x.1)
            .collect();
        assert_eq!(b, vec![Firing, Resolved], "{got:#?}");
        let resolved = got
            .iter()
            .find(|a| a.state == Resolved && a.summary.contains("key/b"))
            .unwrap();
        assert!(
            resolved.summary.contains("was deleted at"),
            "{}",
            resolved.summary
        );
    }

    #[test]
    fn failed_calls_on_keys_never_seen_succeeding_make_no_candidates() {
        // A rule that takes failed calls too: what a flood of made-up keys could fill.
        let mut r = unused(30);
        r.filter.outcome = OutcomeFilter::Any;
        let mut h = Harness::new(vec![r]);
        let mut failed = |t, key: &str| {
            let mut c = decrypt(key, "p");
            c.error_code = Some("AccessDenied".into());
            h.call(t, c);
        };
        for i in 0..500 {
            failed(0, &format!("arn:aws:kms:us-east-1:1:key/made-up-{i}"));
        }
        failed(0, "arn:aws:kms:us-east-1:1:key/real");
        h.call(DAY, decrypt("arn:aws:kms:us-east-1:1:key/real", "p"));
        h.call(
            45 * DAY,
            op("ListKeys", "arn:aws:kms:us-east-1:1:key/other", "p"),
        );
        assert_eq!(h.engine.catalog().len(), 2, "key/real and key/other");
        let saved = serde_json::to_value(h.engine.rules()[0].save()).unwrap();
        assert_eq!(
            saved["state"]["unused"]["last_use"]
                .as_object()
                .map(|m| m.len()),
            Some(1),
            "{saved}"
        );
        let got = h.end();
        // key/real: seen failing at 0, succeeding (its last use) at day 1: due at day 31.
        assert_eq!(
            brief(&got),
            vec![(
                "u",
                Firing,
                "arn:aws:kms:us-east-1:1:key/real",
                DAY,
                (30 * DAY) as f64
            )],
            "{got:#?}"
        );
        assert_eq!(
            h.engine.totals().keys.len(),
            502,
            "every call is in the totals"
        );
    }

    #[test]
    fn inventory_keys_are_known_from_the_first_event_and_alert_when_never_used() {
        let mut r = unused(30);
        r.kind = RuleKind::Unused {
            unused_for_secs: 30 * DAY,
            inventory: vec![
                "arn:aws:kms:us-east-1:1:key/inv".into(),
                "arn:aws:kms:us-east-1:1:key/used".into(),
            ],
        };
        let mut h = Harness::new(vec![r]);
        h.call(100, decrypt("arn:aws:kms:us-east-1:1:key/used", "p"));
        h.call(20 * DAY, decrypt("arn:aws:kms:us-east-1:1:key/used", "p"));
        h.call(31 * DAY, decrypt("arn:aws:kms:us-east-1:1:key/used", "p"));
        let got = h.end();
        assert_eq!(
            brief(&got),
            vec![(
                "u",
                Firing,
                "arn:aws:kms:us-east-1:1:key/inv",
                100,
                (30 * DAY + 200) as f64
            )],
            "{got:#?}"
        );
        assert!(
            got[0]
                .summary
                .contains("since it was first seen at 1970-01-01T00:01:40Z"),
            "{}",
            got[0].summary
        );
        assert!(
            got[0].evidence.event_ids.is_empty(),
            "never used: no evidence of use"
        );
    }
}
