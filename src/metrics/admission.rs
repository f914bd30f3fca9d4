//! Which values of one business label get a series of their own: the values with the most recent
//! volume (a bounded top-k), not the first ones seen, so early junk cannot exhaust the cap.
//!
//! Each admitted value and each candidate (a value waiting for a place) carries a count of its
//! calls that is halved every `decay_secs`, so counts measure recent volume. While the admitted
//! set has room, a new value is admitted at once. Once it is full, a new value becomes a
//! candidate; the candidate table is as large as the admitted set and replaces its smallest
//! candidate when full (Space-Saving: a value with more than 1/cap of the recent calls cannot be
//! crowded out by a flood of one-off values). A newcomer inherits the count of the candidate it
//! replaces as its possible error, and only the guaranteed part of its count (count − error)
//! decides promotion, so one-off values never take a place. A candidate whose guaranteed recent
//! count exceeds twice the smallest admitted count takes that value's place; the evicted value's
//! calls go to `other` from then on. The factor of two keeps two values of similar volume from
//! trading places on every call.

use crate::Map;

/// What became of one observed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Admitted {
    /// The value has its own series.
    Yes,
    /// The value has its own series now, in place of the evicted value.
    Replacing(Box<str>),
    /// The value is counted under `other`.
    No,
}

#[derive(Debug)]
pub(super) struct Admission {
    cap: usize,
    decay_secs: i64,
    /// When counts were last halved.
    decayed_at: Option<i64>,
    admitted: Map<Box<str>, u64>,
    /// Candidate -> (count, possible overcount inherited from the candidate it replaced).
    candidates: Map<Box<str>, (u64, u64)>,
    /// A lower bound of the smallest admitted count (counts only grow between decays).
    floor: u64,
}

impl Admission {
    pub(super) fn new(cap: usize, decay_secs: i64) -> Self {
        Admission {
            cap: cap.max(1),
            decay_secs: decay_secs.max(1),
            decayed_at: None,
            admitted: Map::default(),
            candidates: Map::default(),
            floor: 0,
        }
    }

    /// Counts one call with `value` at wall-clock second `now`.
    pub(super) fn observe(&mut self, value: &str, now: i64) -> Admitted {
        self.decay(now);
        if let Some(n) = self.admitted.get_mut(value) {
            *n += 1;
            return Admitted::Yes;
        }
        if self.admitted.len() < self.cap {
            let n = self.candidates.remove(value).map_or(0, |(n, e)| n - e) + 1;
            self.admitted.insert(value.into(), n);
            self.floor = self.floor.min(n);
            return Admitted::Yes;
        }
        let n = self.count_candidate(value);
        if n <= 2 * self.floor {
            return Admitted::No;
        }
        // The floor may be stale: find the true smallest admitted value.
        let Some((smallest, least)) = self
            .admitted
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
            .map(|(k, v)| (k.clone(), *v))
        else {
            return Admitted::No;
        };
        self.floor = least;
        if n <= 2 * least {
            return Admitted::No;
        }
        self.admitted.remove(&smallest);
        self.candidates.remove(value);
        self.admitted.insert(value.into(), n);
        self.floor = self.admitted.values().copied().min().unwrap_or(0);
        Admitted::Replacing(smallest)
    }

    /// Adds a call to a candidate, making room by Space-Saving when the table is full; returns
    /// its guaranteed count (count − inherited error).
    fn count_candidate(&mut self, value: &str) -> u64 {
        if let Some((n, e)) = self.candidates.get_mut(value) {
            *n += 1;
            return *n - *e;
        }
        let inherited = if self.candidates.len() >= self.cap {
            let smallest = self
                .candidates
                .iter()
                .min_by(|a, b| a.1 .0.cmp(&b.1 .0).then_with(|| a.0.cmp(b.0)))
                .map(|(k, v)| (k.clone(), v.0));
            match smallest {
                Some((k, n)) => {
                    self.candidates.remove(&k);
                    n
                }
                None => 0,
            }
        } else {
            0
        };
        self.candidates
            .insert(value.into(), (inherited + 1, inherited));
        1
    }

    /// Halves every count once per `decay_secs` passed (several halvings after a long pause).
    fn decay(&mut self, now: i64) {
        let Some(at) = self.decayed_at else {
            self.decayed_at = Some(now);
            return;
        };
        let periods = (now - at) / self.decay_secs;
        if periods <= 0 {
            return;
        }
        self.decayed_at = Some(at + periods * self.decay_secs);
        let shift = periods.min(63) as u32;
        for n in self.admitted.values_mut() {
            *n >>= shift;
        }
        self.candidates.retain(|_, (n, e)| {
            *n >>= shift;
            *e >>= shift;
            *n > 0
        });
        self.floor = self.admitted.values().copied().min().unwrap_or(0);
    }

    #[cfg(test)]
    pub(super) fn is_admitted(&self, value: &str) -> bool {
        self.admitted.contains_key(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_values_are_admitted_while_there_is_room() {
        let mut a = Admission::new(2, 60);
        assert_eq!(a.observe("a", 0), Admitted::Yes);
        assert_eq!(a.observe("b", 0), Admitted::Yes);
        assert_eq!(a.observe("c", 0), Admitted::No);
        assert_eq!(a.observe("a", 1), Admitted::Yes);
    }

    #[test]
    fn early_junk_gives_way_to_values_with_volume() {
        // 200 one-off junk values fill the cap first, then a flood of 10,000 more one-off values.
        let mut a = Admission::new(200, 3600);
        for i in 0..200 {
            assert_eq!(a.observe(&format!("junk-{i}"), 0), Admitted::Yes);
        }
        let mut replaced = 0;
        for round in 0..50 {
            for i in 0..200 {
                a.observe(&format!("flood-{round}-{i}"), 1);
                // Three real principals with steady volume among the flood.
                if i % 10 == 0 {
                    for real in ["app", "etl", "web"] {
                        if let Admitted::Replacing(old) = a.observe(real, 1) {
                            assert!(old.starts_with("junk-"), "{old}");
                            replaced += 1;
                        }
                    }
                }
            }
        }
        for real in ["app", "etl", "web"] {
            assert!(a.is_admitted(real), "{real} never admitted");
        }
        assert_eq!(replaced, 3, "each real value replaces one junk value once");
        // No one-off flood value took a place.
        assert!((0..50).all(|r| (0..200).all(|i| !a.is_admitted(&format!("flood-{r}-{i}")))));
    }

    #[test]
    fn recent_volume_wins_after_counts_decay() {
        let mut a = Admission::new(1, 60);
        for _ in 0..1000 {
            a.observe("old", 0);
        }
        // "new" is busy now; "old" was busy long ago: ten halvings later it counts about 1.
        let mut got = Admitted::No;
        for _ in 0..10 {
            got = a.observe("new", 600);
            if got != Admitted::No {
                break;
            }
        }
        assert_eq!(got, Admitted::Replacing("old".into()));
        assert!(a.is_admitted("new") && !a.is_admitted("old"));
    }

    #[test]
    fn values_of_similar_volume_do_not_trade_places() {
        let mut a = Admission::new(1, 3600);
        let mut swaps = 0;
        for _ in 0..1000 {
            for v in ["x", "y"] {
                if matches!(a.observe(v, 0), Admitted::Replacing(_)) {
                    swaps += 1;
                }
            }
        }
        assert_eq!(swaps, 0);
    }
}
