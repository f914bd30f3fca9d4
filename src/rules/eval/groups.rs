//! A rule's group keys, interned in two levels: each dimension value (key ARN, principal, ...)
//! once, and each group as the tuple of its values' ids. A group of a key and a principal costs
//! two 4-byte ids and a table slot rather than its 150 bytes of text, once per rule rather than
//! once per open window and baseline.
//!
//! Groups no window, baseline or alert holds any more are forgotten ([`Groups::retain`]), and the
//! values only they used with them, so made-up groups do not pile up.
//!
//! The tuples sit in one flat arena ([`Tuples`]) found through a table of their ids: a group of
//! two values costs about 22 bytes (its ids, where it ends, its slot) rather than a boxed slice,
//! its pointer and an index entry (about 50), and a lookup follows no pointer.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::{Names, Sym};

use super::SEP;

/// The interned groups of one rule; a group's id is a [`Sym`] into it.
#[derive(Debug, Clone, Default)]
pub(super) struct Groups {
    values: Names,
    keys: Tuples,
    scratch: Vec<Sym>,
}

/// Tuples of value ids, each once, numbered in insertion order.
#[derive(Debug, Clone, Default)]
struct Tuples {
    /// Every tuple's ids, one after the other.
    parts: Vec<Sym>,
    /// Where each tuple ends in `parts` (it starts where the one before ends).
    ends: Vec<usize>,
    /// Tuple numbers, hashed by their ids.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

/// Tuple `i` of `parts` and `ends` (empty for a number never given).
fn tuple<'a>(parts: &'a [Sym], ends: &[usize], i: usize) -> &'a [Sym] {
    let start = i.checked_sub(1).map_or(0, |j| ends[j]);
    ends.get(i).map_or(&[], |&end| &parts[start..end])
}

impl Tuples {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[Sym] {
        tuple(&self.parts, &self.ends, i)
    }

    fn find(&self, t: &[Sym]) -> Option<usize> {
        let hash = self.hasher.hash_one(t);
        (self.index.find(hash, |&i| self.get(i as usize) == t)).map(|&i| i as usize)
    }

    /// Adds `t`, which [`Tuples::find`] does not know, and returns its number (`None` past 2^32
    /// tuples, which no group limit allows).
    fn push(&mut self, t: &[Sym]) -> Option<usize> {
        let i = self.ends.len();
        let n = u32::try_from(i).ok()?;
        self.parts.extend_from_slice(t);
        self.ends.push(self.parts.len());
        let Tuples {
            parts,
            ends,
            index,
            hasher,
        } = self;
        let rehash = |&j: &u32| hasher.hash_one(tuple(parts, ends, j as usize));
        index.insert_unique(hasher.hash_one(t), n, rehash);
        Some(i)
    }

    fn iter(&self) -> impl Iterator<Item = &[Sym]> {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl Groups {
    /// The id of the group of these dimension values, if interned.
    pub fn get<'a>(&mut self, values: impl Iterator<Item = &'a str>) -> Option<Sym> {
        self.scratch.clear();
        for v in values {
            let id = self.values.get(v)?;
            self.scratch.push(id);
        }
        self.keys.find(&self.scratch).map(Sym::from_index)
    }

    /// The id of the group of these dimension values, interning it when new.
    pub fn intern<'a>(&mut self, values: impl Iterator<Item = &'a str>) -> Sym {
        self.scratch.clear();
        for v in values {
            let id = self.values.intern(v);
            self.scratch.push(id);
        }
        let i = match self.keys.find(&self.scratch) {
            Some(i) => i,
            None => self
                .keys
                .push(&self.scratch)
                .unwrap_or(u32::MAX as usize - 1),
        };
        Sym::from_index(i)
    }

    fn parts(&self, g: Sym) -> &[Sym] {
        self.keys.get(g.index())
    }

    /// The group key of `g`: its values joined by [`SEP`], as alerts name groups.
    pub fn key(&self, g: Sym) -> String {
        let mut key = String::new();
        for (i, v) in self.parts(g).iter().enumerate() {
            if i > 0 {
                key.push(SEP);
            }
            key.push_str(self.values.resolve(*v));
        }
        key
    }

    /// Compares two groups as their keys ([`Groups::key`]) compare, without building them.
    pub fn cmp(&self, a: Sym, b: Sym) -> Ordering {
        let (pa, pb) = (self.parts(a), self.parts(b));
        if pa.len() == pb.len() {
            // The first differing value decides, unless one is a prefix of the other (then what
            // follows it in the joined keys does).
            if let Some((x, y)) = pa.iter().zip(pb).find(|(x, y)| x != y) {
                let (x, y) = (self.values.resolve(*x), self.values.resolve(*y));
                if !x.starts_with(y) && !y.starts_with(x) {
                    return x.cmp(y);
                }
            } else {
                return Ordering::Equal;
            }
        }
        self.cmp_joined(a, b)
    }

    fn cmp_joined(&self, a: Sym, b: Sym) -> Ordering {
        let bytes = |g: Sym| {
            self.parts(g).iter().enumerate().flat_map(|(i, v)| {
                let sep = (i > 0).then_some(SEP as u8);
                sep.into_iter().chain(self.values.resolve(*v).bytes())
            })
        };
        bytes(a).cmp(bytes(b))
    }

    /// Whether `g` is an id of this table.
    pub fn contains(&self, g: Sym) -> bool {
        g.index() < self.keys.len()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Forgets the groups `live` does not mark (indexed by id), and the values no surviving group
    /// uses; survivors get new ids in the same order. Returns each old group id's new one.
    pub fn retain(&mut self, live: &[bool]) -> Vec<Option<Sym>> {
        let is_live = |i: usize| live.get(i).copied().unwrap_or(false);
        let mut used = vec![false; self.values.len()];
        for (_, key) in self.keys.iter().enumerate().filter(|(i, _)| is_live(*i)) {
            for v in key.iter() {
                if let Some(u) = used.get_mut(v.index()) {
                    *u = true;
                }
            }
        }
        let values = self.values.retain(&used);
        let mut next = 0;
        let mut remap = Vec::with_capacity(self.keys.len());
        let mut keys = Tuples::default();
        let mut renamed = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            if !is_live(i) {
                remap.push(None);
                continue;
            }
            renamed.clear();
            renamed.extend(
                key.iter()
                    .map(|v| values.get(v.index()).copied().flatten().unwrap_or(*v)),
            );
            // Distinct tuples of surviving values stay distinct once renamed.
            keys.push(&renamed);
            remap.push(Some(Sym::from_index(next)));
            next += 1;
        }
        self.keys = keys;
        remap
    }
}

/// Saved as `{"values": [...], "keys": [[value ids], ...]}`; loading checks every id.
impl Serialize for Groups {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Saved<'a> {
            values: &'a Names,
            keys: Vec<&'a [Sym]>,
        }
        Saved {
            values: &self.values,
            keys: self.keys.iter().collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Groups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Saved {
            values: Names,
            keys: Vec<Box<[Sym]>>,
        }
        let saved = Saved::deserialize(d)?;
        let mut groups = Groups {
            values: saved.values,
            ..Groups::default()
        };
        for (i, key) in saved.keys.into_iter().enumerate() {
            if let Some(v) = key.iter().find(|v| !groups.values.contains(**v)) {
                return Err(de::Error::custom(format_args!(
                    "group {i} names value {} of {}",
                    v.index(),
                    groups.values.len()
                )));
            }
            if groups.keys.find(&key).is_some() {
                return Err(de::Error::custom(format_args!(
                    "group {i} repeats an earlier one"
                )));
            }
            if groups.keys.push(&key).is_none() {
                return Err(de::Error::custom("more than 2^32 groups"));
            }
        }
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(parts: &'a [&'a str]) -> impl Iterator<Item = &'a str> + 'a {
        parts.iter().copied()
    }

    #[test]
    fn groups_are_tuples_of_interned_values() {
        let mut g = Groups::default();
        let a = g.intern(key(&["k1", "p1"]));
        let b = g.intern(key(&["k1", "p2"]));
        assert_eq!(g.intern(key(&["k1", "p1"])), a);
        assert_eq!(g.get(key(&["k1", "p2"])), Some(b));
        assert_eq!(g.get(key(&["k2", "p2"])), None);
        assert_eq!(g.get(key(&["p1", "k1"])), None);
        assert_eq!(g.key(b), "k1\u{1f}p2");
        assert_eq!(g.values.len(), 3, "k1 is held once");
        assert_eq!(Groups::default().key(a), "", "an id it never gave");
    }

    #[test]
    fn groups_compare_as_their_joined_keys() {
        let mut g = Groups::default();
        let keys: [&[&str]; 9] = [
            &["ab", "c"],
            &["a", "bc"],
            &["a", ""],
            &["", "z"],
            &["a\u{1}", "b"],
            &["b"],
            &["b", "a"],
            &["ab", "d"],
            &["ab\u{1}", "d"],
        ];
        let ids: Vec<Sym> = keys.iter().map(|k| g.intern(key(k))).collect();
        for &x in &ids {
            for &y in &ids {
                assert_eq!(g.cmp(x, y), g.key(x).cmp(&g.key(y)), "{x:?} {y:?}");
                assert_eq!(g.cmp_joined(x, y), g.key(x).cmp(&g.key(y)), "{x:?} {y:?}");
            }
        }
    }

    #[test]
    fn retain_forgets_groups_and_their_values_and_renumbers() {
        let mut g = Groups::default();
        let _a = g.intern(key(&["k1", "p1"]));
        let b = g.intern(key(&["k2", "p1"]));
        let _c = g.intern(key(&["k3", "p2"]));
        let remap = g.retain(&[false, true, false]);
        assert_eq!(remap, [None, Some(Sym::from_index(0)), None]);
        assert_eq!((g.len(), g.values.len()), (1, 2), "k1, k3 and p2 go");
        assert_eq!(g.key(Sym::from_index(0)), "k2\u{1f}p1");
        assert_eq!(g.get(key(&["k2", "p1"])), Some(Sym::from_index(0)));
        assert_ne!(b, Sym::from_index(0));
    }

    #[test]
    fn saved_groups_round_trip_and_bad_ids_are_refused() {
        let mut g = Groups::default();
        g.intern(key(&["k1", "p1"]));
        g.intern(key(&["k2"]));
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(json, r#"{"values":["k1","p1","k2"],"keys":[[0,1],[2]]}"#);
        let back: Groups = serde_json::from_str(&json).unwrap();
        assert_eq!(back.key(Sym::from_index(0)), "k1\u{1f}p1");
        let bin = rmp_serde::to_vec(&g).unwrap();
        let back: Groups = rmp_serde::from_slice(&bin).unwrap();
        assert_eq!(back.key(Sym::from_index(1)), "k2");
        for (bad, why) in [
            (
                r#"{"values":["k1"],"keys":[[0,1]]}"#,
                "group 0 names value 1 of 1",
            ),
            (r#"{"values":["k1"],"keys":[[0],[0]]}"#, "group 1 repeats"),
        ] {
            let err = serde_json::from_str::<Groups>(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }
}
