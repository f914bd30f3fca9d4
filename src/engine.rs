//! The pure core shared by replay and the live service: dedupe, key catalogue, watermark, rules.
//!
//! The driver feeds calls object by object and says when an object is complete; the engine never
//! reads the clock. The live driver may also advance the watermark from the wall clock.

use crate::aggregate::{window_start, Dedupe, KeyCatalog, ObjectId};
use crate::alerts::{self, Alert, AlertState, Firing};
use crate::decode::KmsCall;
use crate::rules::{Dispatch, EvalLimits, RuleEval, RuleKind, RuleSet};
pub use crate::totals::EngineCounters;
use crate::totals::Totals;

pub mod journal;
pub mod limits;
mod restore;

pub use limits::OverLimits;
pub use restore::RestoreNote;

/// Engine settings; every bound on memory is here.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Default window length of windowed rules.
    pub window_secs: i64,
    /// The watermark trails the latest event time by this much (CloudTrail delivers out of order).
    pub allowed_lateness_secs: i64,
    /// Folded objects are remembered this long behind the watermark (by delivery time), so an
    /// object sent again is skipped whole. Default 4 days: SQS keeps an undeleted message for its
    /// queue's `MessageRetentionPeriod` (default 4 days, at most 14) and may deliver it until
    /// then; CloudTrail re-delivers a file within hours.
    pub dedupe_horizon_secs: i64,
    /// Hard cap on remembered objects (about 25 bytes each). Default 2,000,000: 4 days of an
    /// organization delivering 500,000 files a day (1,700 account-regions, a file every 5 min).
    pub max_dedupe_objects: usize,
    /// Call ids are remembered this long behind the watermark (by event time), for the same event
    /// in two objects: a file delivered again under another name, both copies of a cross-account
    /// call, two trails logging one call. Those copies arrive within CloudTrail's delivery delay
    /// of each other (typically about 5 minutes, not guaranteed): 1 hour, plus the allowed
    /// lateness, is ten times that. Redelivered objects are caught by object, for longer.
    pub dedupe_id_horizon_secs: i64,
    /// Hard cap on remembered call ids (each costs 8 bytes once its minute is settled, about 14
    /// before). Default 4,000,000 (about 35 MB): the horizon and lateness of 1,000 calls/s;
    /// beyond it the oldest are forgotten early, counted.
    pub max_dedupe_ids: usize,
    /// Keys and aliases tracked in the key catalogue.
    pub max_keys: usize,
    pub max_aliases: usize,
    pub limits: EvalLimits,
    /// Rows of each per-key total table in the report.
    pub max_report_rows: usize,
    /// An event later than the latest time its object can hold (the object's delivery time from
    /// its name; live, also the clock) by more than this is a *future event*: counted in
    /// `future_events` and not folded, so one bad clock or forged record cannot move the watermark.
    pub future_skew_secs: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            window_secs: 300,
            allowed_lateness_secs: 900,
            dedupe_horizon_secs: 4 * 86_400,
            max_dedupe_objects: 2_000_000,
            dedupe_id_horizon_secs: 3600,
            max_dedupe_ids: 4_000_000,
            max_keys: 100_000,
            max_aliases: 100_000,
            limits: EvalLimits::default(),
            max_report_rows: 1_000_000,
            future_skew_secs: 3600,
        }
    }
}

/// What became of one call offered to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// Seen before (same `eventID` or `sharedEventID`): not counted again.
    Duplicate,
    /// Counted; `late` when its window had already closed.
    New { late: bool },
    /// Later than its object allows ([`Engine::begin_object`]): counted as a future event only.
    Future,
}

#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    rules: Vec<RuleEval>,
    /// Which of `rules` each call can concern (the rules never change after [`Engine::new`]).
    dispatch: Dispatch,
    dedupe: Dedupe,
    catalog: KeyCatalog,
    totals: Totals,
    counters: EngineCounters,
    max_event_time: Option<i64>,
    watermark: Option<i64>,
    /// Events of the current object after this are future events ([`Engine::begin_object`]).
    time_limit: Option<i64>,
    /// The current object's identity and latest possible event time, remembered as folded at
    /// [`Engine::end_object`].
    object: Option<(ObjectId, Option<i64>)>,
    /// The watermark does not pass this while set ([`Engine::cap_watermark`]).
    watermark_cap: Option<i64>,
    /// Inventory keys of `unused` rules, added to the catalogue at the first event time. Not
    /// saved: restore takes them from the current rules, less those the catalogue knows.
    inventory: Vec<String>,
    /// The alerts firing now (alert-schema JSON) by rule id and group, so that a restarted
    /// service still lists and re-sends them. Bounded by the rules' own group limits. The only
    /// copy: the service's board and sinks share these.
    firing: Firing,
}

impl Engine {
    pub fn new(config: EngineConfig, rules: RuleSet) -> Self {
        let inventory = rules
            .rules
            .iter()
            .filter_map(|r| match &r.kind {
                RuleKind::Unused { inventory, .. } => Some(inventory.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        Engine {
            rules: rules
                .rules
                .into_iter()
                .map(|r| RuleEval::new(r, config.window_secs, config.limits))
                .collect(),
            dispatch: Dispatch::default(),
            dedupe: Dedupe::new(config.max_dedupe_ids, config.max_dedupe_objects),
            catalog: KeyCatalog::new(config.max_keys, config.max_aliases),
            totals: Totals::new(config.max_report_rows),
            counters: EngineCounters::default(),
            max_event_time: None,
            watermark: None,
            time_limit: None,
            object: None,
            watermark_cap: None,
            inventory,
            firing: Firing::new(),
            config,
        }
    }

    /// Takes in one call of the current object. Event-like rules may alert at once.
    pub fn ingest(&mut self, call: KmsCall, out: &mut Vec<Alert>) {
        self.fold(&call, out);
    }

    /// [`Engine::ingest`] by reference, saying what became of the call (the live service counts
    /// it in metrics afterwards).
    pub fn fold(&mut self, call: &KmsCall, out: &mut Vec<Alert>) -> Folded {
        if self.time_limit.is_some_and(|limit| call.time > limit) {
            self.counters.future_events = self.counters.future_events.saturating_add(1);
            return Folded::Future;
        }
        if !self.dedupe.first_time(call.dedupe_id, call.time) {
            self.counters.duplicates = self.counters.duplicates.saturating_add(1);
            return Folded::Duplicate;
        }
        for key in std::mem::take(&mut self.inventory) {
            self.catalog.know(&key, call.time);
        }
        let key = self.catalog.resolve(call.key.as_ref());
        let key = key.as_deref();
        self.catalog.observe(call, key);
        self.counters.kms_calls = self.counters.kms_calls.saturating_add(1);
        let len = self.config.window_secs;
        let late = self
            .watermark
            .is_some_and(|w| window_start(call.time, len) + len <= w);
        if late {
            self.counters.late = self.counters.late.saturating_add(1);
        }
        self.totals.record(call, key);
        let before = out.len();
        for &i in self.dispatch.rules_for(&self.rules, call) {
            self.rules[i as usize].on_call(call, key, &self.catalog, self.watermark, out);
        }
        self.tally(&out[before..]);
        self.max_event_time = Some(self.max_event_time.map_or(call.time, |m| m.max(call.time)));
        Folded::New { late }
    }

    /// A new object starts. `latest` is the latest time its events can truly have: its delivery
    /// time (from the file name) and, live, the clock, whichever is earlier; `None` when neither
    /// is known. Events after `latest` + `future_skew_secs` are future events until
    /// [`Engine::end_object`].
    ///
    /// `identity` names the object's content (`ObjectRef::identity`). Returns false when an
    /// object with that identity was folded within `dedupe_horizon_secs`: it is counted in
    /// `duplicate_objects` and the driver must not fold its calls (an object is skipped whole).
    pub fn begin_object(&mut self, latest: Option<i64>, identity: Option<ObjectId>) -> bool {
        self.time_limit = latest.map(|t| t.saturating_add(self.config.future_skew_secs));
        self.object = None;
        match identity {
            Some(id) if self.dedupe.seen_object(id) => {
                self.counters.duplicate_objects = self.counters.duplicate_objects.saturating_add(1);
                false
            }
            Some(id) => {
                self.object = Some((id, latest));
                true
            }
            None => true,
        }
    }

    /// The current object is complete: remember it as folded, move the watermark to the latest
    /// event time minus the allowed lateness, closing the windows it passes.
    pub fn end_object(&mut self, out: &mut Vec<Alert>) {
        self.time_limit = None;
        // Remembered by delivery time; without one, by the latest event time so far (none: the
        // engine has folded nothing, so folding the object again could change nothing).
        if let Some((id, latest)) = self.object.take() {
            if let Some(t) = latest.or(self.max_event_time) {
                self.dedupe.remember_object(id, t);
            }
        }
        self.advance_on_event_time(out);
    }

    /// Moves the watermark to the latest event time minus the allowed lateness, as far as the cap
    /// allows; the live driver calls it between objects when a cap is lifted.
    pub fn advance_on_event_time(&mut self, out: &mut Vec<Alert>) {
        if let Some(m) = self.max_event_time {
            self.advance_to(m - self.config.allowed_lateness_secs, out);
        }
    }

    /// Moves the watermark forward to `watermark` (never back). The live driver calls this with
    /// wall-clock time minus the allowed lateness, so windows close without new traffic.
    pub fn advance_to(&mut self, watermark: i64, out: &mut Vec<Alert>) {
        let watermark = self
            .watermark_cap
            .map_or(watermark, |cap| watermark.min(cap));
        if self.watermark.is_some_and(|w| w >= watermark) {
            return;
        }
        self.watermark = Some(watermark);
        self.dedupe.evict_before(
            watermark.saturating_sub(self.config.dedupe_id_horizon_secs),
            watermark.saturating_sub(self.config.dedupe_horizon_secs),
        );
        self.close_until(|_| watermark, out);
    }

    /// Holds the watermark at or below `cap` (never moving it back); `None` lifts the hold. The
    /// live service holds it while older work is known to be outstanding (messages received but
    /// not folded, messages in flight before a restart), so that work is not judged late.
    pub fn cap_watermark(&mut self, cap: Option<i64>) {
        self.watermark_cap = cap;
    }

    /// End of input (replay): closes every window holding an event, and checks `unused` rules up
    /// to the latest event time (not beyond: the input says nothing of later time).
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let Some(m) = self.max_event_time else { return };
        let default_len = self.config.window_secs;
        self.close_until(
            |r| {
                if r.is_unused() {
                    m
                } else {
                    let len = r.rule.window_secs.unwrap_or(default_len);
                    window_start(m, len) + len
                }
            },
            out,
        );
    }

    /// Closes windows of every rule in time order (ties: rule order) up to each rule's limit.
    fn close_until(&mut self, limit: impl Fn(&RuleEval) -> i64, out: &mut Vec<Alert>) {
        let before = out.len();
        loop {
            let next = self
                .rules
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.next_close().filter(|&e| e <= limit(r)).map(|e| (e, i)))
                .min();
            let Some((_, i)) = next else { break };
            let lim = limit(&self.rules[i]);
            self.rules[i].close_next(lim, &self.catalog, out);
        }
        self.tally(&out[before..]);
    }

    fn tally(&mut self, alerts: &[Alert]) {
        for a in alerts {
            let n = match a.state {
                AlertState::Firing => &mut self.counters.alerts_firing,
                AlertState::Resolved => &mut self.counters.alerts_resolved,
            };
            *n = n.saturating_add(1);
            alerts::apply(&mut self.firing, a);
        }
    }

    /// The alerts firing now, in the alert schema, by rule id and group id
    /// ([`Alert::group_id`]), in that order.
    pub fn firing(&self) -> impl Iterator<Item = (&(String, String), &serde_json::Value)> {
        self.firing.iter().map(|(id, v)| (id, &**v))
    }

    /// [`Engine::firing`] as the engine holds it, for publishing without copying the alerts.
    pub fn firing_shared(&self) -> &Firing {
        &self.firing
    }

    pub fn counters(&self) -> EngineCounters {
        self.counters
    }

    pub fn rules(&self) -> &[RuleEval] {
        &self.rules
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn catalog(&self) -> &KeyCatalog {
        &self.catalog
    }

    pub fn dedupe(&self) -> &Dedupe {
        &self.dedupe
    }

    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    pub fn max_event_time(&self) -> Option<i64> {
        self.max_event_time
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::{decrypt, rule};
    use crate::rules::RuleKind;

    #[test]
    fn future_events_are_counted_and_never_move_the_watermark() {
        let rules = RuleSet {
            rules: vec![rule("t", RuleKind::Threshold { min_count: 1 }, &["key"])],
        };
        let mut e = Engine::new(EngineConfig::default(), rules);
        let mut out = Vec::new();
        let at = |t: i64| {
            let mut c = decrypt("k", "p");
            c.time = t;
            c.dedupe_id = t as u64;
            c
        };
        assert!(e.begin_object(Some(10_000), None));
        assert_eq!(e.fold(&at(9_000), &mut out), Folded::New { late: false });
        // Up to the skew past the delivery time is accepted; beyond it is a future event.
        assert_eq!(
            e.fold(&at(10_000 + 3600), &mut out),
            Folded::New { late: false }
        );
        assert_eq!(e.fold(&at(4_070_908_800), &mut out), Folded::Future);
        e.end_object(&mut out);
        assert_eq!(e.counters().future_events, 1);
        assert_eq!(e.counters().kms_calls, 2);
        assert_eq!(e.max_event_time(), Some(13_600));
        assert_eq!(e.watermark(), Some(13_600 - 900));
        // Without a bound (no delivery time known), nothing is a future event.
        e.begin_object(None, None);
        assert!(matches!(e.fold(&at(20_000), &mut out), Folded::New { .. }));
    }

    #[test]
    fn an_object_folded_before_is_skipped_whole_and_counted_until_its_horizon_passes() {
        let rules = RuleSet {
            rules: vec![rule("t", RuleKind::Threshold { min_count: 1 }, &["key"])],
        };
        let config = EngineConfig {
            dedupe_horizon_secs: 3600,
            ..EngineConfig::default()
        };
        let mut e = Engine::new(config, rules);
        let mut out = Vec::new();
        let a = ObjectId::new("a", 1);
        let mut object = |e: &mut Engine, id, t: i64| {
            let folded = e.begin_object(Some(t), Some(id));
            if folded {
                let mut c = decrypt("k", "p");
                (c.time, c.dedupe_id) = (t, t as u64);
                e.fold(&c, &mut out);
            }
            e.end_object(&mut out);
            folded
        };
        assert!(object(&mut e, a, 10_000));
        assert!(!object(&mut e, a, 10_000), "the same object again");
        assert!(!object(&mut e, a, 10_000));
        assert!(
            object(&mut e, ObjectId::new("a", 2), 10_000),
            "another size"
        );
        assert_eq!(
            (e.counters().duplicate_objects, e.counters().kms_calls),
            (2, 1),
            "the other size's call is a duplicate call, not object"
        );
        assert_eq!(e.counters().duplicates, 1);
        // The watermark passes the delivery time + the horizon: forgotten.
        assert!(object(
            &mut e,
            ObjectId::new("b", 1),
            10_000 + 3600 + 900 + 60
        ));
        assert!(object(&mut e, a, 10_000));
        assert_eq!(e.counters().duplicate_objects, 2);
    }
}
