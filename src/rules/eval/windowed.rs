//! Windowed rules: `threshold`, `spike` and `ratio`, evaluated as each window closes.

use serde::{Deserialize, Serialize};

use crate::Map;

use super::groups::Groups;
use super::{
    calls_phrase, duration_phrase, make_alert, AlertParts, EvalCounters, EvalLimits, EvidenceIds,
};
use crate::aggregate::{Distinct, Rejected, Windows};
use crate::alerts::{Alert, AlertState, Baseline};
use crate::decode::KmsCall;
use crate::names::Sym;
use crate::rules::model::{Rule, RuleKind};
use crate::timefmt::{check_time, format_rfc3339};

/// What one group accumulates in one window.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Cell {
    /// Matching calls (for `ratio`: numerator calls). 32 bits (saturating) keep a cell of
    /// one of up to `max_groups_per_rule` groups at 40 bytes: a group would need 14 million calls
    /// a second in a five-minute window to fill them.
    count: u32,
    /// `ratio` only: denominator calls.
    other: u32,
    ids: EvidenceIds,
    /// Rules with `distinct`: the distinct values of that dimension among the matching calls
    /// (boxed: most rules have none, and a cell is one of up to `max_groups_per_rule`).
    #[serde(default)]
    distinct: Option<Box<Distinct>>,
}

impl Cell {
    /// What the rule judges: distinct values for rules with `distinct`, else matching calls.
    fn measure(&self, rule: &Rule) -> u64 {
        match (&rule.distinct, &self.distinct) {
            (None, _) => u64::from(self.count),
            (Some(_), Some(d)) => d.count(),
            (Some(_), None) => 0,
        }
    }
}

/// A group's counts in its trailing closed windows, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct History {
    /// Start of the newest window recorded.
    last: i64,
    /// Exactly as many as recorded (at most the rule's `baseline_windows`), in a boxed slice: a
    /// rule over keys and principals holds one per group, most with few windows, and a deque's
    /// 32 bytes and its first allocation of four were two thirds of the baselines' memory.
    counts: Box<[u64]>,
}

impl History {
    /// Records `count` for window `start` and returns the baseline before it: the mean and
    /// population stddev over the windows since the group was first seen, at most `n`. Windows the
    /// group had no calls in count as zero; they are filled in lazily here.
    fn observe(&mut self, start: i64, count: u64, len: i64, n: usize) -> Baseline {
        let gap = ((start - self.last) / len - 1).clamp(0, n as i64) as usize;
        for _ in 0..gap {
            self.push(0, n);
        }
        let windows = self.counts.len();
        let (mean, stddev) = if windows == 0 {
            (0.0, 0.0)
        } else {
            // Saturating: a state file may hold any counts (found by fuzzing).
            let total = self.counts.iter().fold(0u64, |t, &c| t.saturating_add(c));
            let mean = total as f64 / windows as f64;
            let var = self
                .counts
                .iter()
                .map(|&c| (c as f64 - mean).powi(2))
                .sum::<f64>()
                / windows as f64;
            (mean, var.sqrt())
        };
        self.push(count, n);
        self.last = start;
        Baseline {
            mean,
            stddev,
            windows,
        }
    }

    fn push(&mut self, count: u64, n: usize) {
        let mut counts = std::mem::take(&mut self.counts).into_vec();
        if counts.len() == n {
            // Full: the slice is rotated in place, not reallocated.
            counts.remove(0);
        }
        counts.push(count);
        self.counts = counts.into_boxed_slice();
    }
}

/// Groups kept past this many beyond twice those in use are forgotten ([`Groups::retain`]).
const GROUP_NAMES_SLACK: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WindowedState {
    /// The rule's group keys, interned: every window, baseline and alert holds a group by id, so
    /// a busy group's key is held once, not once per open window. Names no longer held are
    /// forgotten as windows close, so made-up groups do not pile up.
    groups: Groups,
    windows: Windows<Sym, Cell>,
    /// Group -> start of the window in which it began firing.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    firing: Map<Sym, i64>,
    /// `spike` only.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    history: Map<Sym, History>,
    /// Configuration, set again on restore.
    #[serde(skip)]
    limits: EvalLimits,
}

impl WindowedState {
    pub(super) fn new(len: i64, limits: EvalLimits) -> Self {
        WindowedState {
            groups: Groups::default(),
            windows: Windows::new(len),
            firing: Map::default(),
            history: Map::default(),
            limits,
        }
    }

    /// After loading from a state file: takes the configuration of `fresh` (same rule, current
    /// settings).
    pub(super) fn adopt_config(&mut self, fresh: &Self) {
        self.windows.restore_len(fresh.windows.len_secs());
        self.limits = fresh.limits;
    }

    /// After loading from a state file: every time held is one arithmetic can use, and every
    /// group id names a group.
    pub(super) fn check_times(&self) -> Result<(), String> {
        self.windows.check_times()?;
        let mut ids = (self.windows.groups())
            .chain(self.firing.keys().copied())
            .chain(self.history.keys().copied());
        if let Some(bad) = ids.find(|g| !self.groups.contains(*g)) {
            return Err(format!(
                "group id {} is beyond the {} groups",
                bad.index(),
                self.groups.len()
            ));
        }
        self.firing
            .values()
            .try_for_each(|&t| check_time("the window an alert began firing in", t))?;
        self.history
            .values()
            .try_for_each(|h| check_time("history.last", h.last))
    }

    /// Entries over a limit of `limits`, as (limit, entries held).
    pub(super) fn over_limits(&self, limits: &EvalLimits) -> Vec<(&'static str, usize)> {
        let groups = self.windows.count_cells().max(self.history.len());
        if groups > limits.max_groups_per_rule {
            vec![("max_groups_per_rule", groups)]
        } else {
            Vec::new()
        }
    }

    pub(super) fn on_call(
        &mut self,
        rule: &Rule,
        counters: &mut EvalCounters,
        call: &KmsCall,
        key: Option<&str>,
        watermark: Option<i64>,
    ) {
        if !rule.filter.matches(call, key) {
            return;
        }
        let numerator = match &rule.kind {
            RuleKind::Ratio {
                numerator,
                denominator,
                ..
            } => {
                if numerator.is_match(&call.operation) {
                    true
                } else if denominator.is_match(&call.operation) {
                    false
                } else {
                    return;
                }
            }
            _ => true,
        };
        let values = || {
            rule.group_by
                .iter()
                .map(|d| d.value(call, key).unwrap_or(""))
        };
        let max = self.limits.max_groups_per_rule;
        let rejected = |r: Rejected, counters: &mut EvalCounters| match r {
            Rejected::Late => counters.late = counters.late.saturating_add(1),
            Rejected::Overflow => counters.overflow = counters.overflow.saturating_add(1),
        };
        // A group is named only for a cell it will get: late and overflowing calls add no names.
        let group = match self.groups.get(values()) {
            Some(g) => g,
            None => match self.windows.admits_new(call.time, max, watermark) {
                Ok(()) => self.groups.intern(values()),
                Err(r) => return rejected(r, counters),
            },
        };
        let cell = match self.windows.cell(call.time, group, max, watermark) {
            Ok(cell) => cell,
            Err(r) => return rejected(r, counters),
        };
        if numerator {
            cell.count = cell.count.saturating_add(1);
            cell.ids.keep(&call.event_id);
            if let Some(value) = rule.distinct.and_then(|d| d.value(call, key)) {
                cell.distinct.get_or_insert_default().insert(value);
            }
        } else {
            cell.other = cell.other.saturating_add(1);
        }
    }

    pub(super) fn next_close(&self) -> Option<i64> {
        self.windows.next_end()
    }

    pub(super) fn firing(&self) -> usize {
        self.firing.len()
    }

    pub(super) fn close_next(&mut self, rule: &Rule, limit: i64, out: &mut Vec<Alert>) -> bool {
        // With nothing firing, an empty window changes nothing: skip over empty ones.
        let Some((start, mut cells)) = self.windows.close_next(limit, self.firing.is_empty())
        else {
            return false;
        };
        let len = self.windows.len_secs();
        let mut groups: Vec<Sym> = cells.keys().copied().collect();
        groups.extend(
            self.firing
                .keys()
                .filter(|g| !cells.contains_key(*g))
                .copied(),
        );
        // In the order of the group keys, as alerts are emitted.
        let names = &self.groups;
        groups.sort_unstable_by(|a, b| names.cmp(*a, *b));
        if matches!(rule.kind, RuleKind::Spike { .. }) {
            self.make_room_for_history(&cells, start, len, rule);
        }
        for g in groups {
            let cell = cells.remove(&g).unwrap_or_default();
            let verdict = self.judge(rule, g, &cell, start, len);
            let firing = self.firing.contains_key(&g);
            let state = match (verdict.holds, firing) {
                (true, false) => {
                    self.firing.insert(g, start);
                    AlertState::Firing
                }
                (false, true) => {
                    self.firing.remove(&g);
                    AlertState::Resolved
                }
                _ => continue,
            };
            let g = self.groups.key(g);
            let sentence = summary(rule, &g, &cell, start, len, &verdict);
            let summary = match state {
                AlertState::Firing => sentence,
                AlertState::Resolved => format!("resolved: {sentence}"),
            };
            out.push(make_alert(
                rule,
                AlertParts {
                    state,
                    group_key: &g,
                    window: (start, start + len),
                    value: verdict.value,
                    threshold: verdict.threshold,
                    baseline: verdict.baseline,
                    summary,
                    count: u64::from(cell.count),
                    ids: &cell.ids,
                },
            ));
        }
        self.forget_unused_groups(false);
        true
    }

    /// A copy for a state file, holding only the groups in use.
    pub(super) fn to_saved(&self) -> Self {
        let mut saved = self.clone();
        saved.forget_unused_groups(true);
        saved
    }

    /// Forgets the group names no open window, baseline or alert holds once they outnumber those
    /// held by more than [`GROUP_NAMES_SLACK`] (amortized: at least that many calls made them),
    /// or `always`.
    pub(super) fn forget_unused_groups(&mut self, always: bool) {
        let held = self.windows.open_groups() + self.firing.len() + self.history.len();
        if !always && self.groups.len() <= 2 * held + GROUP_NAMES_SLACK {
            return;
        }
        let mut live = vec![false; self.groups.len()];
        let ids = (self.windows.groups())
            .chain(self.firing.keys().copied())
            .chain(self.history.keys().copied());
        for g in ids {
            if let Some(l) = live.get_mut(g.index()) {
                *l = true;
            }
        }
        let remap = self.groups.retain(&live);
        // Every id held was marked, so each has a new one.
        let new = |g: Sym| remap.get(g.index()).copied().flatten().unwrap_or(g);
        self.windows.rename_groups(new);
        self.firing = self.firing.drain().map(|(g, t)| (new(g), t)).collect();
        self.history = self.history.drain().map(|(g, h)| (new(g), h)).collect();
    }

    /// Keeps spike baselines within `max_groups_per_rule`: when new groups would exceed it, groups
    /// with no calls in the whole baseline span are forgotten first (their baseline is all zeros).
    fn make_room_for_history(&mut self, cells: &Map<Sym, Cell>, start: i64, len: i64, rule: &Rule) {
        let RuleKind::Spike {
            baseline_windows, ..
        } = rule.kind
        else {
            return;
        };
        let new = cells
            .keys()
            .filter(|g| !self.history.contains_key(*g))
            .count();
        if self.history.len() + new > self.limits.max_groups_per_rule {
            let horizon = start - len * baseline_windows as i64;
            let firing = &self.firing;
            self.history
                .retain(|g, h| h.last >= horizon || firing.contains_key(g));
        }
    }

    fn judge(&mut self, rule: &Rule, group: Sym, cell: &Cell, start: i64, len: i64) -> Verdict {
        let measure = cell.measure(rule);
        let count = measure as f64;
        match &rule.kind {
            RuleKind::Threshold { min_count } => Verdict {
                holds: measure >= *min_count,
                value: count,
                threshold: *min_count as f64,
                baseline: None,
            },
            RuleKind::Ratio {
                max_ratio,
                min_count,
                ..
            } => {
                let ratio = count / cell.other.max(1) as f64;
                Verdict {
                    holds: u64::from(cell.count) >= *min_count && ratio > *max_ratio,
                    value: ratio,
                    threshold: *max_ratio,
                    baseline: None,
                }
            }
            RuleKind::Spike {
                baseline_windows,
                min_baseline_windows,
                min_count,
                min_ratio,
                z,
                stddev_floor,
            } => {
                if !self.history.contains_key(&group)
                    && self.history.len() < self.limits.max_groups_per_rule
                {
                    let fresh = History {
                        last: start - len,
                        counts: Box::default(),
                    };
                    self.history.insert(group, fresh);
                }
                let Some(history) = self.history.get_mut(&group) else {
                    return Verdict::silent(measure);
                };
                let b = history.observe(start, measure, len, *baseline_windows);
                let spread = b.stddev.max(*stddev_floor);
                let level = (*min_count as f64)
                    .max(min_ratio * b.mean)
                    .max(b.mean + z * spread);
                let holds = b.windows >= *min_baseline_windows
                    && measure >= *min_count
                    && count >= min_ratio * b.mean
                    && count > b.mean + z * spread;
                Verdict {
                    holds,
                    value: count,
                    threshold: level,
                    baseline: Some(b),
                }
            }
            _ => Verdict::silent(measure),
        }
    }
}

/// The sentence of an alert; built only when an alert is emitted.
fn summary(rule: &Rule, group: &str, cell: &Cell, start: i64, len: i64, v: &Verdict) -> String {
    let window = format!(
        "the {} from {}",
        duration_phrase(len),
        format_rfc3339(start)
    );
    let (n, what) = match (rule.distinct, &cell.distinct) {
        (Some(d), distinct) => {
            let about = if distinct.as_deref().is_some_and(Distinct::estimated) {
                "about "
            } else {
                ""
            };
            (
                format!("{about}{}", cell.measure(rule)),
                format!(
                    "distinct {}s in {} {} calls",
                    d.as_str(),
                    cell.count,
                    calls_phrase(rule)
                ),
            )
        }
        (None, _) => (
            cell.count.to_string(),
            format!("{} calls", calls_phrase(rule)),
        ),
    };
    let on = group_phrase(rule, group);
    match (&rule.kind, &v.baseline) {
        (RuleKind::Ratio { max_ratio, min_count, numerator, denominator }, _) => format!(
            "{} {} calls against {} {} calls {on} in {window}: ratio {:.1} (max {max_ratio}, at least {min_count} calls)",
            cell.count,
            numerator.patterns.join("/"),
            cell.other,
            denominator.patterns.join("/"),
            v.value
        ),
        (RuleKind::Spike { .. }, Some(b)) => format!(
            "{n} {what} {on} in {window}, against a baseline of {:.1} ± {:.1} over {} windows (spike level {:.1})",
            b.mean, b.stddev, b.windows, v.threshold
        ),
        _ => format!("{n} {what} {on} in {window} (threshold {})", v.threshold),
    }
}

fn group_phrase(rule: &Rule, group: &str) -> String {
    let g = super::group_of(&rule.group_by, group);
    if g.0.is_empty() {
        "in total".to_owned()
    } else {
        format!("for {}", g.describe())
    }
}

struct Verdict {
    holds: bool,
    value: f64,
    threshold: f64,
    baseline: Option<Baseline>,
}

impl Verdict {
    fn silent(count: u64) -> Self {
        Verdict {
            holds: false,
            value: count as f64,
            threshold: 0.0,
            baseline: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::alerts::AlertState::*;
    use crate::rules::model::RuleKind;

    /// A cell is one of up to `max_groups_per_rule` per rule and open window.
    #[test]
    fn a_cell_stays_40_bytes() {
        assert_eq!(std::mem::size_of::<super::Cell>(), 40);
    }

    #[test]
    fn a_baseline_keeps_exactly_its_last_windows_oldest_first() {
        assert_eq!(std::mem::size_of::<super::History>(), 24);
        let mut h = super::History {
            last: 0,
            counts: Box::default(),
        };
        // Windows of 300 s, a baseline of 3: a window with no calls counts as a zero, filled in
        // before the baseline is taken.
        let seen: Vec<_> = [(300, 5), (900, 7), (1200, 9), (1500, 11)]
            .into_iter()
            .map(|(start, count)| {
                let b = h.observe(start, count, 300, 3);
                (b.windows, b.mean, h.counts.to_vec())
            })
            .collect();
        assert_eq!(
            seen,
            [
                (0, 0.0, vec![5]),
                (2, 2.5, vec![5, 0, 7]),
                (3, 4.0, vec![0, 7, 9]),
                (3, 16.0 / 3.0, vec![7, 9, 11]),
            ]
        );
        assert_eq!(h.last, 1500);
    }

    /// Found by fuzzing: a restored spike baseline whose counts sum past `u64::MAX` overflowed
    /// while computing the mean.
    #[test]
    fn regression_a_baseline_of_huge_counts_does_not_overflow() {
        let mut h = super::History {
            last: 0,
            counts: Box::new([u64::MAX, u64::MAX]),
        };
        let b = h.observe(300, 1, 300, 12);
        assert_eq!(b.windows, 2);
        assert_eq!(b.mean, u64::MAX as f64 / 2.0);
    }

    fn threshold(min_count: u64) -> crate::rules::Rule {
        rule("t", RuleKind::Threshold { min_count }, &["key"])
    }

    fn groups_named(h: &Harness) -> usize {
        match &h.engine.rules()[0].state {
            super::super::State::Windowed(s) => s.groups.len(),
            _ => unreachable!("a windowed rule"),
        }
    }

    #[test]
    fn group_names_no_window_holds_are_forgotten_and_alerts_keep_theirs() {
        let mut h = Harness::new(vec![threshold(3)]);
        // 20 windows of 1,000 groups seen once each, and one group firing in windows 0 and 15.
        for w in 0..20i64 {
            let t = w * 300;
            if w == 0 || w == 15 {
                h.burst(t, 3, "hot");
            }
            for i in 0..1000 {
                h.call(t + 1, decrypt(&format!("made-up-{w}-{i}"), "p"));
            }
        }
        // Held at once: the open windows' groups (the watermark trails by 3 windows).
        assert!(groups_named(&h) <= 2 * 4 * 1000 + super::GROUP_NAMES_SLACK + 1000);
        assert!(groups_named(&h) < 20_000, "{} names kept", groups_named(&h));
        // A saved copy holds just the groups in use, each once.
        let super::super::State::Windowed(live) = &h.engine.rules()[0].state else {
            unreachable!()
        };
        let saved = live.to_saved();
        let held: std::collections::HashSet<String> = (saved.windows.groups())
            .chain(saved.firing.keys().copied())
            .chain(saved.history.keys().copied())
            .map(|g| saved.groups.key(g))
            .collect();
        assert_eq!(saved.groups.len(), held.len());
        assert!(held.contains("made-up-19-999") && !held.contains("made-up-0-0"));
        let got = h.end();
        assert_eq!(
            brief(&got),
            [
                ("t", Firing, "hot", 0, 3.0),
                ("t", Resolved, "hot", 300, 0.0),
                ("t", Firing, "hot", 4500, 3.0),
                ("t", Resolved, "hot", 4800, 0.0),
            ]
        );
    }

    #[test]
    fn distinct_counts_values_of_a_dimension_not_calls() {
        let mut r = rule(
            "spray",
            RuleKind::Threshold { min_count: 3 },
            &["principal"],
        );
        r.distinct = Some(crate::rules::Dim::Key);
        let mut h = Harness::new(vec![r]);
        // Window 0: 5 calls on 2 keys (below); window 300: 3 keys (fires); window 600: 1 key.
        for (t, k) in [(1, "k1"), (2, "k1"), (3, "k2"), (4, "k2"), (5, "k1")] {
            h.call(t, decrypt(k, "p"));
        }
        for (t, k) in [(301, "k1"), (302, "k2"), (303, "k3"), (304, "k3")] {
            h.call(t, decrypt(k, "p"));
        }
        h.call(601, decrypt("k9", "p"));
        // Another principal on many keys, one window: its own group.
        for k in 0..2 {
            h.call(310, decrypt(&format!("q{k}"), "q"));
        }
        h.call(2000, decrypt("k1", "other"));
        let got = h.end();
        let fired: Vec<_> = got
            .iter()
            .map(|a| (a.state, a.window_start, a.value, a.evidence.count))
            .collect();
        assert_eq!(
            fired,
            vec![(Firing, 300, 3.0, 4), (Resolved, 600, 1.0, 1),],
            "{got:#?}"
        );
        assert!(
            got[0]
                .summary
                .starts_with("3 distinct keys in 4 KMS calls for principal p"),
            "{}",
            got[0].summary
        );
    }

    #[test]
    fn threshold_fires_at_the_edge_once_and_resolves() {
        let mut h = Harness::new(vec![threshold(3)]);
        // Window 0: 2 calls (below); window 300: 3 (fires); window 600: 4 (still firing, not
        // re-emitted); window 900: 0 (resolved).
        for t in [10, 20, 300, 310, 320, 600, 601, 602, 603] {
            h.call(t, decrypt("k1", "p"));
        }
        h.call(2000, decrypt("k2", "p"));
        let got = h.end();
        assert_eq!(
            brief(&got),
            vec![
                ("t", Firing, "k1", 300, 3.0),
                ("t", Resolved, "k1", 900, 0.0)
            ],
            "{got:#?}"
        );
        assert_eq!(got[0].evidence.count, 3);
        assert_eq!(got[0].evidence.event_ids.len(), 3);
    }

    #[test]
    fn late_calls_are_counted_not_windowed() {
        let mut h = Harness::new(vec![threshold(1)]);
        h.call(0, decrypt("k", "p"));
        h.call(2000, decrypt("k", "p")); // watermark 2000-900: window 0 closes
        h.call(10, decrypt("k", "p")); // late
        let _ = h.end();
        assert_eq!(h.engine.rules()[0].counters.late, 1);
        assert_eq!(h.engine.counters().late, 1);
    }

    #[test]
    fn regression_a_call_before_the_first_one_but_within_lateness_was_late() {
        let mut h = Harness::new(vec![threshold(2)]);
        // Watermark after the first object: 1000 - 900 = 100; window 0 ends at 300: still open.
        h.call(1000, decrypt("k", "p"));
        h.call(10, decrypt("k", "p"));
        h.call(20, decrypt("k", "p"));
        // Watermark 1300: window 0 closes with its 2 calls, window 300 stays empty.
        h.call(2200, decrypt("k", "p"));
        let got = h.end();
        assert_eq!(h.engine.counters().late, 0);
        assert_eq!(
            brief(&got),
            vec![("t", Firing, "k", 0, 2.0), ("t", Resolved, "k", 300, 0.0)],
            "{got:#?}"
        );
    }

    #[test]
    fn evidence_keeps_ten_ids() {
        let mut h = Harness::new(vec![threshold(1)]);
        for i in 0..25 {
            h.call(i, decrypt("k", "p"));
        }
        let got = h.end();
        assert_eq!(got[0].evidence.count, 25);
        assert_eq!(got[0].evidence.event_ids.len(), 10);
    }

    fn spike() -> crate::rules::Rule {
        rule(
            "s",
            RuleKind::Spike {
                baseline_windows: 4,
                min_baseline_windows: 2,
                min_count: 10,
                min_ratio: 3.0,
                z: 3.0,
                stddev_floor: 1.0,
            },
            &["key"],
        )
    }

    #[test]
    fn spike_needs_a_baseline_and_counts_empty_windows_as_zero() {
        let mut h = Harness::new(vec![spike()]);
        // Window 0: 50 calls, no baseline yet: silent.
        h.burst(0, 50, "k");
        // Window 300: 2 calls; window 600: nothing (zero); window 900: 12 calls.
        // Baseline at 900 = windows 0, 300, 600 = [50, 2, 0]: mean 17.3, no spike.
        h.burst(300, 2, "k");
        h.burst(900, 12, "k");
        // Windows 1200..2100 empty; window 2400: 12 calls. Baseline = last 4 windows: all zero.
        h.burst(2400, 12, "k");
        let got = h.end();
        assert_eq!(
            brief(&got),
            vec![("s", Firing, "k", 2400, 12.0)],
            "{got:#?}"
        );
        let b = got[0].baseline.as_ref().unwrap();
        assert_eq!((b.mean, b.stddev, b.windows), (0.0, 0.0, 4));
        assert_eq!(
            got[0].threshold, 10.0,
            "level = max(min_count, 3 x 0, 0 + 3 x floor 1)"
        );
    }

    #[test]
    fn spike_edges_min_count_ratio_and_z() {
        // Steady 10 per window (mean 10, stddev 0), then the spike window. With min_count 1 it
        // fires when count >= 3 x 10 and count > 10 + 3 x max(0, floor 1).
        for (spike_count, want) in [(29u64, false), (30, true), (9, false)] {
            let mut r = spike();
            if let RuleKind::Spike { min_count, .. } = &mut r.kind {
                *min_count = 1;
            }
            let mut h = Harness::new(vec![r]);
            for w in 0..4 {
                h.burst(w * 300, 10, "k");
            }
            h.burst(1200, spike_count, "k");
            let fired = h.end().iter().any(|a| a.state == Firing);
            assert_eq!(fired, want, "spike of {spike_count} over a steady 10");
        }
    }

    #[test]
    fn ratio_counts_numerator_over_denominator() {
        let r = rule(
            "r",
            RuleKind::Ratio {
                numerator: globs(&["Decrypt"]),
                denominator: globs(&["Encrypt", "GenerateDataKey*"]),
                max_ratio: 10.0,
                min_count: 20,
            },
            &["key"],
        );
        let mut h = Harness::new(vec![r]);
        // Window 0: 30 decrypts, 3 GDK -> ratio 10, not > 10. Window 300: 30 vs 2 -> 15: fires.
        // Window 600: 19 vs 0 -> below min_count: resolves.
        h.burst(0, 30, "k");
        for i in 0..3 {
            h.call(i, op("GenerateDataKeyWithoutPlaintext", "k", "p"));
        }
        h.burst(300, 30, "k");
        h.call(301, op("Encrypt", "k", "p"));
        h.call(302, op("GenerateDataKey", "k", "p"));
        h.call(303, op("DescribeKey", "k", "p"));
        h.burst(600, 19, "k");
        let got = h.end();
        assert_eq!(
            brief(&got),
            vec![
                ("r", Firing, "k", 300, 15.0),
                ("r", Resolved, "k", 600, 19.0)
            ],
            "{got:#?}"
        );
    }
}
