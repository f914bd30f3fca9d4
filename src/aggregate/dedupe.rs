//! Remembers recent call ids so a redelivered record, or both copies of a cross-account call, count once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Set;

/// Ids are bucketed by event minute, so eviction drops whole buckets; memory is bounded by
/// `max_ids` whatever the input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedupe {
    /// Every id of `by_minute`, for lookups; not saved (rebuilt by [`Dedupe::restore_limit`]).
    #[serde(skip)]
    seen: Set<u128>,
    /// Event minute -> ids first seen with an event time in that minute.
    by_minute: BTreeMap<i64, Vec<u128>>,
    /// Configuration, not state: set again from the current configuration on restore.
    #[serde(skip)]
    max_ids: usize,
    /// Ids forgotten because `max_ids` was reached before their horizon passed.
    pub evicted_early: u64,
}

impl Dedupe {
    pub fn new(max_ids: usize) -> Self {
        Dedupe {
            seen: Set::default(),
            by_minute: BTreeMap::new(),
            max_ids: max_ids.max(1),
            evicted_early: 0,
        }
    }

    /// True when the id was not seen before (and is now remembered).
    pub fn first_time(&mut self, id: u128, event_time: i64) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.by_minute
            .entry(event_time.div_euclid(60))
            .or_default()
            .push(id);
        self.enforce_cap();
        true
    }

    /// Forgets the oldest minutes while more than `max_ids` ids are remembered; returns how many
    /// ids were forgotten (also counted in `evicted_early`).
    fn enforce_cap(&mut self) -> u64 {
        let mut forgotten = 0;
        while self.seen.len() > self.max_ids {
            let Some((_, ids)) = self.by_minute.pop_first() else {
                break;
            };
            forgotten += ids.len() as u64;
            for id in ids {
                self.seen.remove(&id);
            }
        }
        self.evicted_early = self.evicted_early.saturating_add(forgotten);
        forgotten
    }

    /// After loading from a state file: rebuilds the lookup set and applies the configured
    /// `max_ids`, forgetting the oldest minutes if the saved ids exceed it, as the cap does when
    /// running. Returns how many ids were forgotten.
    pub(crate) fn restore_limit(&mut self, max_ids: usize) -> u64 {
        self.max_ids = max_ids.max(1);
        self.seen = self.by_minute.values().flatten().copied().collect();
        self.enforce_cap()
    }

    /// Forgets ids whose event time is before `before`.
    pub fn evict_before(&mut self, before: i64) {
        let keep = self.by_minute.split_off(&before.div_euclid(60));
        for id in std::mem::replace(&mut self.by_minute, keep)
            .into_values()
            .flatten()
        {
            self.seen.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_caught_until_evicted() {
        let mut d = Dedupe::new(100);
        assert!(d.first_time(1, 1000));
        assert!(!d.first_time(1, 1000));
        assert!(
            !d.first_time(1, 5000),
            "same id, other time: still a duplicate"
        );
        assert!(d.first_time(2, 1100));
        d.evict_before(1020);
        assert!(d.first_time(1, 1000), "evicted: id 1 is new again");
        assert!(!d.first_time(2, 1100), "1100 is after the horizon: kept");
    }

    #[test]
    fn the_cap_drops_oldest_minutes_first() {
        let mut d = Dedupe::new(3);
        for (id, t) in [(1, 0), (2, 60), (3, 120), (4, 180)] {
            assert!(d.first_time(id, t));
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.evicted_early, 1);
        assert!(!d.first_time(4, 180));
        assert!(d.first_time(1, 0));
    }

    #[test]
    fn ids_and_negative_minutes_round_trip_through_json() {
        let mut d = Dedupe::new(10);
        for (id, t) in [(u128::MAX, -61), (0, 0), (1 << 100, 125)] {
            assert!(d.first_time(id, t));
        }
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"by_minute":{{"-2":[{}],"0":[0],"2":[{}]}},"evicted_early":0}}"#,
                u128::MAX,
                1u128 << 100
            )
        );
        let mut back: Dedupe = serde_json::from_str(&json).unwrap();
        assert_eq!(back.restore_limit(10), 0);
        assert_eq!(back.len(), 3);
        for (id, t) in [(u128::MAX, 0), (0, 0), (1 << 100, 0)] {
            assert!(!back.first_time(id, t), "{id} is remembered");
        }
        let mut small: Dedupe = serde_json::from_str(&json).unwrap();
        assert_eq!(small.restore_limit(2), 1, "the oldest minute goes first");
        assert_eq!((small.len(), small.evicted_early), (2, 1));
        assert!(small.first_time(u128::MAX, 0));
    }
}
