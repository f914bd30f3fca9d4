//! Remembers recent call ids so a redelivered record, or both copies of a cross-account call, count once.

use std::collections::BTreeMap;

use crate::Set;

/// Ids are bucketed by event minute, so eviction drops whole buckets; memory is bounded by
/// `max_ids` whatever the input.
#[derive(Debug)]
pub struct Dedupe {
    seen: Set<u128>,
    /// Event minute -> ids first seen with an event time in that minute.
    by_minute: BTreeMap<i64, Vec<u128>>,
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
        while self.seen.len() > self.max_ids {
            let Some((_, ids)) = self.by_minute.pop_first() else {
                break;
            };
            self.evicted_early += ids.len() as u64;
            for id in ids {
                self.seen.remove(&id);
            }
        }
        true
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
}
