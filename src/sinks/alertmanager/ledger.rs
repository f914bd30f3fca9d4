//! When an alert may be resolved in one Alertmanager: the wall-clock bookkeeping behind
//! `keep_firing_for_secs`. Pure: the time is an argument.
//!
//! A resolution is held until Alertmanager has accepted the alert as firing and
//! `keep_firing_for` has passed since; meanwhile the alert is re-sent as firing. So an alert that
//! fires and resolves within seconds (every alert does while a backlog is worked off) is still
//! seen firing by Alertmanager for longer than its `group_wait` and notified, instead of arriving
//! already resolved and never being notified at all.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::payload::{AmAlert, Labels};

/// A resolution not yet posted.
#[derive(Debug, Clone)]
struct Held {
    alert: AmAlert,
    /// Its key in the sink's outbox: settled once the resolution is posted.
    seq: u64,
    /// A post of it failed: not tried again before this.
    retry_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Ledger {
    keep_firing_for: Duration,
    /// When Alertmanager first accepted each alert (label set) as firing.
    since: BTreeMap<Labels, Instant>,
    /// Resolutions waiting for their time, by label set.
    held: BTreeMap<Labels, Held>,
}

impl Ledger {
    pub fn new(keep_firing_for: Duration) -> Self {
        Ledger {
            keep_firing_for,
            since: BTreeMap::new(),
            held: BTreeMap::new(),
        }
    }

    /// Takes an alert from the queue: a firing one ends the held resolution of its label set, a
    /// resolved one is held (replacing an earlier one). Returns the outbox key this settles (the
    /// resolution ended or replaced), if any.
    pub fn take(&mut self, a: &AmAlert, seq: u64) -> Option<u64> {
        let replaced = if a.firing {
            self.held.remove(&a.labels)
        } else {
            let held = Held {
                alert: a.clone(),
                seq,
                retry_at: None,
            };
            self.held.insert(a.labels.clone(), held)
        };
        replaced.map(|h| h.seq)
    }

    /// Alertmanager accepted these alerts as firing at `now`.
    pub fn accepted<'a>(&mut self, labels: impl IntoIterator<Item = &'a Labels>, now: Instant) {
        for l in labels {
            self.since.entry(l.clone()).or_insert(now);
        }
    }

    /// The held alerts, to re-send as firing until their resolution is posted.
    pub fn held(&self) -> impl Iterator<Item = &AmAlert> {
        self.held.values().map(|h| &h.alert)
    }

    /// The resolutions to post at `now`: alerts accepted as firing at least `keep_firing_for`
    /// ago (and not waiting after a failed post).
    pub fn due(&self, now: Instant) -> Vec<AmAlert> {
        self.held
            .iter()
            .filter(|(l, h)| self.due_at(l, h).is_some_and(|t| t <= now))
            .map(|(_, h)| h.alert.clone())
            .collect()
    }

    /// When the next held resolution falls due, if one waits only for time.
    pub fn next_due(&self) -> Option<Instant> {
        self.held
            .iter()
            .filter_map(|(l, h)| self.due_at(l, h))
            .min()
    }

    fn due_at(&self, labels: &Labels, h: &Held) -> Option<Instant> {
        let since = self.since.get(labels)?;
        let t = *since + self.keep_firing_for;
        Some(h.retry_at.map_or(t, |r| r.max(t)))
    }

    /// The resolution of `labels` was posted at `now`: if accepted, the alert is done and its
    /// outbox key returned; if not, it is tried again `retry_after` later.
    pub fn posted(
        &mut self,
        labels: &Labels,
        accepted: bool,
        now: Instant,
        retry_after: Duration,
    ) -> Option<u64> {
        if accepted {
            self.since.remove(labels);
            return self.held.remove(labels).map(|h| h.seq);
        }
        if let Some(h) = self.held.get_mut(labels) {
            h.retry_at = Some(now + retry_after);
        }
        None
    }

    /// Forgets when alerts fired that are neither in `firing` (what the engine says fires) nor
    /// held: the engine no longer has them (a lost resolution, a rule reload).
    pub fn forget_others(&mut self, firing: &BTreeSet<Labels>) {
        let held = &self.held;
        self.since
            .retain(|l, _| firing.contains(l) || held.contains_key(l));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(600);

    fn alert(name: &str, firing: bool) -> AmAlert {
        AmAlert {
            labels: [("alertname".to_string(), name.to_string())].into(),
            annotations: Labels::new(),
            firing,
            starts_at: 0,
            ends_at: 300,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_resolution_waits_until_the_alert_has_fired_long_enough_in_alertmanager() {
        let t0 = Instant::now();
        let mut l = Ledger::new(KEEP);
        let (fired, resolved) = (alert("a", true), alert("a", false));
        assert_eq!(l.take(&fired, 1), None);
        // Resolved before Alertmanager accepted it as firing: held, due at no time yet.
        assert_eq!(l.take(&resolved, 2), None);
        assert_eq!(l.held().count(), 1);
        assert_eq!(l.next_due(), None);
        assert!(l.due(t0 + secs(3600)).is_empty());
        // Accepted at t0 + 5 s: due keep_firing_for later.
        l.accepted([&fired.labels], t0 + secs(5));
        l.accepted([&fired.labels], t0 + secs(65)); // a re-send: the first acceptance counts
        assert_eq!(l.next_due(), Some(t0 + secs(605)));
        assert!(l.due(t0 + secs(604)).is_empty());
        assert_eq!(l.due(t0 + secs(605)), std::slice::from_ref(&resolved));
        // A failed post waits; a later accepted one settles it.
        assert_eq!(
            l.posted(&resolved.labels, false, t0 + secs(605), secs(60)),
            None
        );
        assert_eq!(l.next_due(), Some(t0 + secs(665)));
        assert!(l.due(t0 + secs(606)).is_empty());
        assert_eq!(
            l.posted(&resolved.labels, true, t0 + secs(665), secs(60)),
            Some(2)
        );
        assert_eq!((l.held().count(), l.next_due()), (0, None));
    }

    #[test]
    fn firing_again_ends_the_held_resolution_and_a_later_one_replaces_it() {
        let t0 = Instant::now();
        let mut l = Ledger::new(KEEP);
        l.accepted([&alert("a", true).labels], t0);
        assert_eq!(l.take(&alert("a", false), 1), None);
        assert_eq!(l.take(&alert("a", false), 2), Some(1));
        assert_eq!(l.take(&alert("a", true), 3), Some(2));
        assert_eq!(l.held().count(), 0);
        // Long firing already: a resolution is due at once.
        assert_eq!(l.take(&alert("a", false), 4), None);
        assert_eq!(l.due(t0 + KEEP).len(), 1);
    }

    #[test]
    fn only_alerts_that_fire_or_are_held_are_remembered() {
        let t0 = Instant::now();
        let mut l = Ledger::new(KEEP);
        let (a, b, c) = (alert("a", true), alert("b", true), alert("c", false));
        l.accepted([&a.labels, &b.labels, &c.labels], t0);
        l.take(&c, 1);
        l.forget_others(&[a.labels.clone()].into());
        // b is gone (its resolution was lost): firing again, it starts afresh.
        l.accepted([&b.labels], t0 + secs(100));
        l.take(&alert("b", false), 2);
        let due: Vec<String> = l
            .due(t0 + KEEP)
            .iter()
            .map(|a| a.labels["alertname"].clone())
            .collect();
        assert_eq!(due, ["c"]);
        assert_eq!(l.next_due(), Some(t0 + KEEP));
    }
}
