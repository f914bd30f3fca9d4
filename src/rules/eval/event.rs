//! Call-by-call rules: `event` and `new-principal`. They fire at once and resolve as windows close.

use serde::{Deserialize, Serialize};

use crate::names::{Names, Sym};
use crate::Map;

use super::{group_key, make_alert, AlertParts, EvalCounters, EvalLimits, EvidenceIds};
use crate::aggregate::{window_start, KeyCatalog};
use crate::alerts::{Alert, AlertState};
use crate::decode::KmsCall;
use crate::rules::model::{Rule, RuleKind};
use crate::timefmt::{check_time, check_time_or_start, format_rfc3339};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Firing {
    first_window: i64,
    /// Start of the latest window with a matching call; the alert resolves once a later window closes.
    last_window: i64,
    count: u64,
    ids: EvidenceIds,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventState {
    /// The rule's window length: configuration, set again on restore (as are `limits`).
    #[serde(skip)]
    len: i64,
    /// Start of the next window to close; set by the first matching call.
    next_start: Option<i64>,
    #[serde(serialize_with = "crate::serde_sorted::map")]
    firing: Map<Box<str>, Firing>,
    /// `new-principal` only: the keys and principals of `seen`, each held once.
    names: Names,
    /// `new-principal` only: key -> the principals seen using it, sorted by id.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    seen: Map<Sym, Vec<Sym>>,
    /// `new-principal` only: the rule has watched keys since this event time (`i64::MIN`: since
    /// the engine started). A rule added to a restored engine learns from then, not from keys'
    /// first sighting, which it did not watch.
    watch_from: i64,
    #[serde(skip)]
    limits: EvalLimits,
    /// Scratch space for group keys.
    #[serde(skip)]
    buf: String,
}

impl EventState {
    pub(super) fn new(len: i64, limits: EvalLimits) -> Self {
        EventState {
            len,
            next_start: None,
            firing: Map::default(),
            names: Names::default(),
            seen: Map::default(),
            watch_from: i64::MIN,
            limits,
            buf: String::new(),
        }
    }

    /// After loading from a state file: takes the configuration of `fresh` (same rule, current
    /// settings).
    pub(super) fn adopt_config(&mut self, fresh: &Self) {
        self.len = fresh.len;
        self.limits = fresh.limits;
    }

    /// After loading from a state file: every time held is one arithmetic can use.
    pub(super) fn check_times(&self) -> Result<(), String> {
        if let Some(t) = self.next_start {
            check_time("next_start", t)?;
        }
        check_time_or_start("watch_from", self.watch_from)?;
        let known = |s: &Sym| self.names.contains(*s);
        for (key, principals) in &self.seen {
            if !known(key) || !principals.iter().all(known) {
                return Err(format!(
                    "seen names an id beyond the {} names",
                    self.names.len()
                ));
            }
            if !principals.windows(2).all(|w| w[0] < w[1]) {
                return Err("seen holds principals out of order or twice".to_owned());
            }
        }
        self.firing.values().try_for_each(|f| {
            check_time("firing.first_window", f.first_window)?;
            check_time("firing.last_window", f.last_window)
        })
    }

    /// Entries over a limit of `limits`, as (limit, entries held).
    pub(super) fn over_limits(&self, limits: &EvalLimits) -> Vec<(&'static str, usize)> {
        let mut over = Vec::new();
        let groups = self.firing.len().max(self.seen.len());
        if groups > limits.max_groups_per_rule {
            over.push(("max_groups_per_rule", groups));
        }
        let principals = self.seen.values().map(|s| s.len()).max().unwrap_or(0);
        if principals > limits.max_principals_per_key {
            over.push(("max_principals_per_key", principals));
        }
        over
    }

    /// A fresh rule in a restored engine: watches from event time `t` on.
    pub(super) fn watch_from(&mut self, t: i64) {
        self.watch_from = t;
    }

    pub(super) fn firing(&self) -> usize {
        self.firing.len()
    }

    pub(super) fn next_close(&self) -> Option<i64> {
        self.next_start.map(|s| s + self.len)
    }

    pub(super) fn on_call(
        &mut self,
        rule: &Rule,
        counters: &mut EvalCounters,
        call: &KmsCall,
        key: Option<&str>,
        catalog: &KeyCatalog,
        out: &mut Vec<Alert>,
    ) {
        if !rule.filter.matches(call, key) {
            return;
        }
        let mut observed_for = None;
        if let RuleKind::NewPrincipal { learning_secs } = rule.kind {
            let Some(key) = key else { return };
            match self.first_use(key, &call.principal) {
                Err(limit) => {
                    counters.overflow = counters.overflow.saturating_add(1);
                    if limit == "max_principals_per_key" {
                        counters.principals_overflow =
                            counters.principals_overflow.saturating_add(1);
                    }
                    return;
                }
                Ok(false) => return,
                Ok(true) => {}
            }
            let first_seen = catalog
                .get(key)
                .map_or(call.time, |k| k.first_seen)
                .max(self.watch_from);
            if call.time - first_seen < learning_secs {
                return;
            }
            observed_for = Some((call.time - first_seen, learning_secs, first_seen));
        }
        let window = window_start(call.time, self.len);
        // Windows are checked from the earliest one with a matching call on.
        self.next_start = Some(self.next_start.map_or(window, |n| n.min(window)));
        group_key(&rule.group_by, call, key, &mut self.buf);
        if let Some(f) = self.firing.get_mut(self.buf.as_str()) {
            f.count = f.count.saturating_add(1);
            f.last_window = f.last_window.max(window);
            f.ids.keep(&call.event_id);
            return;
        }
        if self.firing.len() >= self.limits.max_groups_per_rule {
            counters.overflow = counters.overflow.saturating_add(1);
            return;
        }
        let outcome = match &call.error_code {
            Some(code) => format!(" failed with {code}"),
            None => String::new(),
        };
        let what = format!(
            "{}{outcome} by {} on key {} at {} (eventID {})",
            call.operation,
            call.principal,
            key.unwrap_or("(none)"),
            format_rfc3339(call.time),
            call.event_id
        );
        let (value, threshold, summary) = match observed_for {
            Some((age, learning, first_seen)) => (
                age as f64,
                learning as f64,
                format!(
                    "first use of the key by this principal: {what}; the key has been observed since {}",
                    format_rfc3339(first_seen)
                ),
            ),
            None => (1.0, 1.0, what),
        };
        let ids = EvidenceIds::one(&call.event_id);
        out.push(make_alert(
            rule,
            AlertParts {
                state: AlertState::Firing,
                group_key: &self.buf,
                window: (window, window + self.len),
                value,
                threshold,
                baseline: None,
                summary,
                count: 1,
                ids: &ids,
            },
        ));
        self.firing.insert(
            self.buf.as_str().into(),
            Firing {
                first_window: window,
                last_window: window,
                count: 1,
                ids,
            },
        );
    }

    /// Whether this is the principal's first use of the key; the limit reached when the key, or
    /// the principal, does not fit.
    fn first_use(&mut self, key: &str, principal: &str) -> Result<bool, &'static str> {
        let k = match self.names.get(key) {
            Some(k) if self.seen.contains_key(&k) => k,
            _ if self.seen.len() >= self.limits.max_groups_per_rule => {
                return Err("max_groups_per_rule")
            }
            _ => {
                let k = self.names.intern(key);
                self.seen.insert(k, Vec::new());
                k
            }
        };
        let principals = self.seen.get_mut(&k).ok_or("max_groups_per_rule")?;
        if let Some(p) = self.names.get(principal) {
            if principals.binary_search(&p).is_ok() {
                return Ok(false);
            }
        }
        if principals.len() >= self.limits.max_principals_per_key {
            return Err("max_principals_per_key");
        }
        let p = self.names.intern(principal);
        principals.insert(principals.partition_point(|q| *q < p), p);
        Ok(true)
    }

    pub(super) fn close_next(&mut self, rule: &Rule, limit: i64, out: &mut Vec<Alert>) -> bool {
        let Some(mut start) = self.next_start else {
            return false;
        };
        if self.firing.is_empty() {
            start = start.max(window_start(limit, self.len));
        }
        if start + self.len > limit {
            self.next_start = Some(start);
            return false;
        }
        self.next_start = Some(start + self.len);
        let mut done: Vec<Box<str>> = self
            .firing
            .iter()
            .filter(|(_, f)| f.last_window < start)
            .map(|(g, _)| g.clone())
            .collect();
        done.sort_unstable();
        for g in done {
            let Some(f) = self.firing.remove(&g) else {
                continue;
            };
            out.push(make_alert(
                rule,
                AlertParts {
                    state: AlertState::Resolved,
                    group_key: &g,
                    window: (f.first_window, start + self.len),
                    value: f.count as f64,
                    threshold: 1.0,
                    baseline: None,
                    summary: format!(
                        "resolved: no matching call in the window from {}; {} matching call(s) while firing",
                        format_rfc3339(start),
                        f.count
                    ),
                    count: f.count,
                    ids: &f.ids,
                },
            ));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::alerts::AlertState::*;
    use crate::rules::model::RuleKind;

    #[test]
    fn event_fires_at_once_folds_repeats_and_resolves_after_a_quiet_window() {
        let mut r = rule("e", RuleKind::Event, &["key", "principal"]);
        r.filter.operations = Some(globs(&["ScheduleKeyDeletion"]));
        let mut h = Harness::new(vec![r]);
        h.call(100, op("ScheduleKeyDeletion", "k", "admin"));
        h.call(110, op("Decrypt", "k", "admin"));
        h.call(400, op("ScheduleKeyDeletion", "k", "admin")); // folded: still firing
        h.call(420, op("ScheduleKeyDeletion", "k2", "admin")); // another group
        h.call(5000, op("Decrypt", "k", "app")); // moves the watermark far ahead
        let got = h.end();
        assert_eq!(
            brief(&got),
            vec![
                ("e", Firing, "k", 0, 1.0),
                ("e", Firing, "k2", 300, 1.0),
                ("e", Resolved, "k", 0, 2.0),
                ("e", Resolved, "k2", 300, 1.0)
            ],
            "{got:#?}"
        );
        assert_eq!(
            got[2].window_end, 900,
            "k's last call was in window 300; window 600 closed quiet"
        );
        assert_eq!(got[2].evidence.event_ids.len(), 2);
    }

    #[test]
    fn new_principal_only_after_learning() {
        let r = rule(
            "n",
            RuleKind::NewPrincipal {
                learning_secs: 1000,
            },
            &["key", "principal"],
        );
        let mut h = Harness::new(vec![r]);
        h.call(0, decrypt("k", "a"));
        h.call(500, decrypt("k", "b")); // learning: remembered, silent
        h.call(1000, decrypt("k", "a"));
        h.call(1000, decrypt("k", "b"));
        h.call(1000, decrypt("k", "c")); // after learning, new: fires
        h.call(1100, decrypt("k", "c")); // not new any more
        h.call(1200, decrypt("k2", "c")); // k2 was first seen just now: learning
        let got = h.end();
        assert_eq!(
            brief(&got),
            vec![
                ("n", Firing, "k", 900, 1000.0),
                ("n", Resolved, "k", 900, 1.0)
            ],
            "{got:#?}"
        );
        assert_eq!(got[0].group.describe(), "key k, principal c");
    }

    #[test]
    fn new_principal_respects_the_per_key_limit() {
        let r = rule(
            "n",
            RuleKind::NewPrincipal { learning_secs: 0 },
            &["key", "principal"],
        );
        let mut h = Harness::with_limits(vec![r], 100, 2);
        for p in ["a", "b", "c", "c"] {
            h.call(0, decrypt("k", p));
        }
        let got = h.end();
        assert_eq!(got.iter().filter(|a| a.state == Firing).count(), 2);
        let c = h.engine.rules()[0].counters;
        assert_eq!((c.overflow, c.principals_overflow), (2, 2));
        // A second key does not fit max_groups_per_rule (1): overflow, not principals'.
        let r = rule(
            "n",
            RuleKind::NewPrincipal { learning_secs: 0 },
            &["key", "principal"],
        );
        let mut h = Harness::with_limits(vec![r], 1, 2);
        for k in ["k", "k2", "k3"] {
            h.call(0, decrypt(k, "a"));
        }
        let c = h.engine.rules()[0].counters;
        assert_eq!((c.overflow, c.principals_overflow), (2, 0));
    }
}
