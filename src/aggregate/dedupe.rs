//! Remembers what was folded so nothing counts twice: whole objects for a long horizon at a few
//! bytes each, and call ids for a shorter one.
//!
//! Most duplicates are whole objects: an SQS message delivered again (after its visibility
//! timeout, or a delete that did not happen), CloudTrail re-delivering a file, the same file in two
//! replay inputs. Those are recognised by their [`ObjectId`] (a 64-bit hash of the object's name
//! and size) and skipped whole, for `dedupe_horizon_secs`. What object identity cannot see is the
//! same event in two different objects (a file re-delivered under another name, both copies of a
//! cross-account call, an organization trail and an account trail logging the same call): a set
//! of 64-bit call ids catches those for the shorter `dedupe_id_horizon_secs`. Both are bucketed
//! by minute, so eviction drops whole buckets, and both have a hard cap.
//!
//! A copy of an event carries the original's `eventTime`, so a call id is looked up only in its
//! own minute's bucket and the minute either side (copies re-stamped by another logger within
//! about a minute are still caught): each minute's ids sit in their own table, no id is stored
//! twice, and a lookup costs at most three probes whatever the horizon. A minute ten minutes
//! behind the newest is settled into a sorted slice (8 bytes an id instead of about 14 in a
//! table); ids that still arrive for it wait in a small table beside the slice.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Set;

/// What identifies a log object across deliveries, drivers and copies: a 64-bit hash of its
/// name (see `ObjectRef::identity`) and its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectId(u64);

impl ObjectId {
    pub fn new(name: &str, size: u64) -> ObjectId {
        let mut bytes = Vec::with_capacity(name.len() + 9);
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&size.to_le_bytes());
        ObjectId(xxhash_rust::xxh3::xxh3_64(&bytes))
    }
}

/// Object hashes remembered by minute, at most `max` of them; looked up by hash alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recent {
    /// Every hash of `by_minute`, for lookups; not saved (rebuilt by [`Recent::restore_limit`]).
    #[serde(skip)]
    seen: Set<u64>,
    /// Minute -> hashes first seen with a time in that minute.
    by_minute: BTreeMap<i64, Vec<u64>>,
    /// Configuration, not state: set again from the current configuration on restore.
    #[serde(skip)]
    max: usize,
    /// Hashes forgotten because `max` was reached before their horizon passed.
    evicted_early: u64,
}

impl Recent {
    fn new(max: usize) -> Self {
        Recent {
            max: max.max(1),
            ..Recent::default()
        }
    }

    /// True when `h` was not remembered before (and is now).
    fn insert(&mut self, h: u64, time: i64) -> bool {
        if !self.seen.insert(h) {
            return false;
        }
        self.by_minute
            .entry(time.div_euclid(60))
            .or_default()
            .push(h);
        self.enforce_cap();
        true
    }

    /// Forgets the oldest minutes while more than `max` hashes are remembered; returns how many
    /// were forgotten (also counted in `evicted_early`).
    fn enforce_cap(&mut self) -> u64 {
        let mut forgotten = 0;
        while self.seen.len() > self.max {
            let Some((_, hs)) = self.by_minute.pop_first() else {
                break;
            };
            forgotten += hs.len() as u64;
            for h in hs {
                self.seen.remove(&h);
            }
        }
        self.evicted_early = self.evicted_early.saturating_add(forgotten);
        forgotten
    }

    fn restore_limit(&mut self, max: usize) -> u64 {
        self.max = max.max(1);
        self.seen = self.by_minute.values().flatten().copied().collect();
        self.enforce_cap()
    }

    fn evict_before(&mut self, before: i64) {
        let keep = self.by_minute.split_off(&before.div_euclid(60));
        for h in std::mem::replace(&mut self.by_minute, keep)
            .into_values()
            .flatten()
        {
            self.seen.remove(&h);
        }
    }
}

/// Minutes this far behind the newest one seen are settled: their ids move to a sorted slice.
/// CloudTrail delivers a file about every five minutes, so a trail's calls arrive within about
/// that of their minute; ten leaves room for several files in flight.
const SETTLE_AFTER_MINUTES: i64 = 10;

/// One minute's call ids: those of a settled minute in a sorted slice (8 bytes an id, against
/// about 14 in a hash table at its average load), newer ones in a table. A table of a settled
/// minute (ids that arrived late) is merged into the slice once it holds an eighth as many, so
/// each id is copied a bounded number of times.
#[derive(Debug, Clone, Default)]
struct Minute {
    settled: Box<[u64]>,
    fresh: HashTable<u64>,
}

impl Minute {
    fn len(&self) -> usize {
        self.settled.len() + self.fresh.len()
    }

    fn contains(&self, id: u64, hash: u64) -> bool {
        self.fresh.find(hash, |&x| x == id).is_some() || self.settled.binary_search(&id).is_ok()
    }

    /// Moves the table's ids into the slice, when it holds enough of them to be worth a copy.
    fn settle(&mut self) {
        if self.fresh.is_empty() || self.fresh.len() * 8 < self.settled.len() {
            return;
        }
        self.settled = self.sorted().into_boxed_slice();
        self.fresh = HashTable::new();
    }

    /// Every id, ascending.
    fn sorted(&self) -> Vec<u64> {
        let mut ids = Vec::with_capacity(self.len());
        ids.extend_from_slice(&self.settled);
        ids.extend(self.fresh.iter().copied());
        ids.sort_unstable();
        ids
    }
}

/// Call ids remembered by the minute of their event time, each minute in its own [`Minute`], at
/// most `max` in all. Saved as [`Recent`] is (minute -> ids, ascending), so the state format is
/// one.
#[derive(Debug, Clone, Default)]
struct Ids {
    by_minute: BTreeMap<i64, Minute>,
    hasher: foldhash::fast::RandomState,
    len: usize,
    /// The newest minute an id was put in.
    newest: Option<i64>,
    /// Configuration, not state: set again from the current configuration on restore.
    max: usize,
    /// Ids forgotten because `max` was reached before their horizon passed.
    evicted_early: u64,
}

impl Ids {
    fn new(max: usize) -> Self {
        Ids {
            max: max.max(1),
            ..Ids::default()
        }
    }

    fn contains_near(&self, id: u64, hash: u64, minute: i64) -> bool {
        let lo = minute.saturating_sub(1);
        let hi = minute.saturating_add(1);
        self.by_minute
            .range(lo..=hi)
            .any(|(_, m)| m.contains(id, hash))
    }

    /// Remembers `id` (whose hash is `hash`, and which [`Ids::contains_near`] does not know) in
    /// `minute`.
    fn put(&mut self, id: u64, hash: u64, minute: i64) {
        if self.newest.is_none_or(|n| minute > n) {
            self.newest = Some(minute);
            self.settle_through(minute.saturating_sub(SETTLE_AFTER_MINUTES));
        }
        let hasher = &self.hasher;
        let m = self.by_minute.entry(minute).or_default();
        m.fresh.insert_unique(hash, id, |&x| hasher.hash_one(x));
        self.len += 1;
    }

    /// Settles `minute` and those before it (the horizon bounds how many there are).
    fn settle_through(&mut self, minute: i64) {
        for m in self.by_minute.range_mut(..=minute).map(|(_, m)| m) {
            m.settle();
        }
    }

    /// True when `id` was not remembered near `time` before (and is now).
    fn insert(&mut self, id: u64, time: i64) -> bool {
        let minute = time.div_euclid(60);
        let hash = self.hasher.hash_one(id);
        if self.contains_near(id, hash, minute) {
            return false;
        }
        self.put(id, hash, minute);
        self.enforce_cap();
        true
    }

    /// Forgets the oldest minutes while more than `max` ids are remembered; returns how many
    /// were forgotten (also counted in `evicted_early`).
    fn enforce_cap(&mut self) -> u64 {
        let mut forgotten = 0;
        while self.len > self.max {
            let Some((_, t)) = self.by_minute.pop_first() else {
                break;
            };
            forgotten += t.len() as u64;
            self.len -= t.len();
        }
        self.evicted_early = self.evicted_early.saturating_add(forgotten);
        forgotten
    }

    fn restore_limit(&mut self, max: usize) -> u64 {
        self.max = max.max(1);
        self.enforce_cap()
    }

    fn evict_before(&mut self, before: i64) {
        let keep = self.by_minute.split_off(&before.div_euclid(60));
        for t in std::mem::replace(&mut self.by_minute, keep).into_values() {
            self.len -= t.len();
        }
    }
}

/// One minute's ids in ascending order, as saved.
struct MinuteIds<'a>(&'a Minute);

impl Serialize for MinuteIds<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.fresh.is_empty() {
            return self.0.settled.serialize(s);
        }
        self.0.sorted().serialize(s)
    }
}

struct Minutes<'a>(&'a BTreeMap<i64, Minute>);

impl Serialize for Minutes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(m, t)| (m, MinuteIds(t))))
    }
}

impl Serialize for Ids {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Recent", 2)?;
        st.serialize_field("by_minute", &Minutes(&self.by_minute))?;
        st.serialize_field("evicted_early", &self.evicted_early)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Ids {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let saved = Recent::deserialize(d)?;
        let mut ids = Ids {
            evicted_early: saved.evicted_early,
            max: usize::MAX,
            ..Ids::default()
        };
        // Settled as they come (a file's minutes are in order and unique, but any list is taken).
        for (minute, mut hs) in saved.by_minute {
            hs.sort_unstable();
            hs.dedup();
            ids.len += hs.len();
            ids.newest = Some(minute);
            ids.by_minute.insert(
                minute,
                Minute {
                    settled: hs.into_boxed_slice(),
                    fresh: HashTable::new(),
                },
            );
        }
        Ok(ids)
    }
}

/// Remembered objects and call ids; memory is bounded by `max_dedupe_objects` and
/// `max_dedupe_ids` whatever the input (about 25 bytes per object; 8 bytes per id of a settled
/// minute, about 14 per id of the last ten minutes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedupe {
    /// Call ids (`KmsCall::dedupe_id`) by event minute.
    #[serde(default)]
    ids: Ids,
    /// Folded objects by the minute of their delivery time.
    #[serde(default)]
    objects: Recent,
}

impl Dedupe {
    pub fn new(max_ids: usize, max_objects: usize) -> Self {
        Dedupe {
            ids: Ids::new(max_ids),
            objects: Recent::new(max_objects),
        }
    }

    /// True when the call id was not seen before with an event time in the same minute or the
    /// minute either side (and is now remembered).
    pub fn first_time(&mut self, id: u64, event_time: i64) -> bool {
        self.ids.insert(id, event_time)
    }

    /// Whether the object was folded before (and is still remembered).
    pub fn seen_object(&self, id: ObjectId) -> bool {
        self.objects.seen.contains(&id.0)
    }

    /// Remembers a folded object; `time` is its delivery time (or, unknown, the latest event
    /// time when it was folded).
    pub fn remember_object(&mut self, id: ObjectId, time: i64) {
        self.objects.insert(id.0, time);
    }

    /// After loading from a state file: rebuilds the lookup sets and applies the configured
    /// caps, forgetting the oldest minutes of what exceeds them, as the caps do when running.
    /// Returns how many (call ids, objects) were forgotten.
    pub(crate) fn restore_limits(&mut self, max_ids: usize, max_objects: usize) -> (u64, u64) {
        (
            self.ids.restore_limit(max_ids),
            self.objects.restore_limit(max_objects),
        )
    }

    /// Forgets call ids whose event time is before `ids_before` and objects delivered before
    /// `objects_before`.
    pub fn evict_before(&mut self, ids_before: i64, objects_before: i64) {
        self.ids.evict_before(ids_before);
        self.objects.evict_before(objects_before);
    }

    /// Call ids remembered.
    pub fn len(&self) -> usize {
        self.ids.len
    }

    pub fn is_empty(&self) -> bool {
        self.ids.len == 0
    }

    /// Objects remembered.
    pub fn objects(&self) -> usize {
        self.objects.seen.len()
    }

    /// Call ids forgotten before their horizon because `max_dedupe_ids` was reached.
    pub fn ids_evicted_early(&self) -> u64 {
        self.ids.evicted_early
    }

    /// Objects forgotten before their horizon because `max_dedupe_objects` was reached.
    pub fn objects_evicted_early(&self) -> u64 {
        self.objects.evicted_early
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_caught_until_evicted() {
        let mut d = Dedupe::new(100, 100);
        assert!(d.first_time(1, 1000));
        assert!(!d.first_time(1, 1000));
        assert!(!d.first_time(1, 1019), "same id, same minute");
        assert!(!d.first_time(1, 1079), "same id, the next minute");
        assert!(!d.first_time(1, 905), "same id, the minute before");
        assert_eq!(d.len(), 1);
        assert!(d.first_time(2, 1100));
        d.evict_before(1020, i64::MIN);
        assert!(d.first_time(1, 1000), "evicted: id 1 is new again");
        assert!(!d.first_time(2, 1100), "1100 is after the horizon: kept");
    }

    #[test]
    fn an_id_two_minutes_or_more_away_is_another_event() {
        let mut d = Dedupe::new(100, 100);
        assert!(d.first_time(9, 600));
        assert!(d.first_time(9, 720), "minute 12 against minute 10");
        assert!(d.first_time(9, 479), "minute 7 against minute 10");
        assert!(!d.first_time(9, 660), "minute 11 neighbours both 10 and 12");
        assert_eq!(d.len(), 3);
        d.evict_before(700, i64::MIN);
        assert_eq!(d.len(), 1, "minutes 7 and 10 are gone, 12 is kept");
        assert!(!d.first_time(9, 700));
    }

    #[test]
    fn the_cap_drops_oldest_minutes_first() {
        let mut d = Dedupe::new(3, 3);
        for (id, t) in [(1, 0), (2, 60), (3, 120), (4, 180)] {
            assert!(d.first_time(id, t));
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.ids_evicted_early(), 1);
        assert!(!d.first_time(4, 180));
        assert!(d.first_time(1, 0));
    }

    #[test]
    fn objects_are_remembered_for_their_own_horizon_and_cap() {
        let mut d = Dedupe::new(10, 2);
        let (a, b, c) = (
            ObjectId::new("AWSLogs/1/a.json.gz", 10),
            ObjectId::new("AWSLogs/1/a.json.gz", 11),
            ObjectId::new("AWSLogs/1/c.json.gz", 10),
        );
        assert_ne!(a, b, "the size is part of the identity");
        assert!(!d.seen_object(a));
        d.remember_object(a, 0);
        d.remember_object(b, 600);
        assert!(d.seen_object(a) && d.seen_object(b) && !d.seen_object(c));
        // Call ids go on the ids' horizon, objects on theirs.
        assert!(d.first_time(7, 0));
        d.evict_before(60, 60);
        assert!(
            !d.seen_object(a) && d.seen_object(b),
            "a was delivered before 60"
        );
        assert!(d.first_time(7, 0), "the id's horizon passed too");
        d.remember_object(a, 700);
        d.remember_object(c, 800);
        assert_eq!((d.objects(), d.objects_evicted_early()), (2, 1));
        assert!(!d.seen_object(b), "the cap forgets the oldest minute first");
        assert_eq!(d.ids_evicted_early(), 0);
    }

    #[test]
    fn ids_objects_and_negative_minutes_round_trip_through_json() {
        let mut d = Dedupe::new(10, 10);
        for (id, t) in [(u64::MAX, -61), (0, 0), (1 << 60, 125)] {
            assert!(d.first_time(id, t));
        }
        d.remember_object(ObjectId(5), 60);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"ids":{{"by_minute":{{"-2":[{}],"0":[0],"2":[{}]}},"evicted_early":0}},"objects":{{"by_minute":{{"1":[5]}},"evicted_early":0}}}}"#,
                u64::MAX,
                1u64 << 60
            )
        );
        let mut back: Dedupe = serde_json::from_str(&json).unwrap();
        assert_eq!(back.restore_limits(10, 10), (0, 0));
        assert_eq!((back.len(), back.objects()), (3, 1));
        for (id, t) in [(u64::MAX, -61), (0, 0), (1 << 60, 125)] {
            assert!(!back.first_time(id, t), "{id} is remembered");
        }
        assert!(back.seen_object(ObjectId(5)));
        let mut small: Dedupe = serde_json::from_str(&json).unwrap();
        assert_eq!(
            small.restore_limits(2, 1),
            (1, 0),
            "the oldest minute goes first"
        );
        assert_eq!((small.len(), small.ids_evicted_early()), (2, 1));
        assert!(small.first_time(u64::MAX, -61));
    }

    #[test]
    fn a_minute_saves_its_ids_in_ascending_order() {
        let mut d = Dedupe::new(100, 10);
        for id in [30, 10, 20, 5] {
            assert!(d.first_time(id, 120));
        }
        let json = serde_json::to_string(&d).unwrap();
        assert!(
            json.starts_with(r#"{"ids":{"by_minute":{"2":[5,10,20,30]},"#),
            "{json}"
        );
    }

    #[test]
    fn settled_minutes_still_catch_copies_and_take_late_ids() {
        let mut d = Dedupe::new(1000, 10);
        for id in [40, 10, 30, 20] {
            assert!(d.first_time(id, 120));
        }
        let minute = |d: &Dedupe| d.ids.by_minute[&2].clone();
        assert_eq!(minute(&d).fresh.len(), 4, "minute 2 is the newest");
        // Minute 12 is ten minutes on: minute 2 settles into its sorted slice.
        assert!(d.first_time(1, 12 * 60));
        assert_eq!(&*minute(&d).settled, [10, 20, 30, 40]);
        assert!(minute(&d).fresh.is_empty());
        for id in [10, 20, 30, 40] {
            assert!(!d.first_time(id, 120), "{id} in its settled minute");
            assert!(!d.first_time(id, 179), "{id} from the minute after");
        }
        // A late id goes into the table beside the slice, and is found there.
        assert!(d.first_time(25, 130));
        assert!(!d.first_time(25, 130));
        assert_eq!((minute(&d).settled.len(), minute(&d).fresh.len()), (4, 1));
        assert_eq!(d.len(), 6);
        // Saved, both parts come out as one ascending list, and load settled.
        let json = serde_json::to_string(&d).unwrap();
        assert!(
            json.starts_with(r#"{"ids":{"by_minute":{"2":[10,20,25,30,40],"12":[1]},"#),
            "{json}"
        );
        let mut back: Dedupe = serde_json::from_str(&json).unwrap();
        assert_eq!(back.restore_limits(1000, 10), (0, 0));
        assert_eq!(back.len(), 6);
        assert_eq!(&*minute(&back).settled, [10, 20, 25, 30, 40]);
        assert!(!back.first_time(25, 130) && !back.first_time(1, 12 * 60));
        // The next settling merges the late table only once it is an eighth of the slice.
        let mut e = Dedupe::new(1000, 10);
        for id in 0..16 {
            assert!(e.first_time(id, 120));
        }
        assert!(e.first_time(100, 12 * 60));
        assert!(e.first_time(1000, 130));
        assert!(e.first_time(200, 13 * 60), "a newer minute");
        assert_eq!(minute(&e).fresh.len(), 1, "1 of 16: left in the table");
        assert!(e.first_time(1001, 130));
        assert!(e.first_time(300, 14 * 60));
        assert_eq!(
            (minute(&e).settled.len(), minute(&e).fresh.len()),
            (18, 0),
            "2 of 16: merged"
        );
        assert!(!e.first_time(1000, 130) && !e.first_time(1001, 130));
        assert_eq!(e.len(), 21);
    }
}
