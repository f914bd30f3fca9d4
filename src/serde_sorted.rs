//! Deterministic serialization of the hash maps in engine state: entries sorted by key, so
//! the same state always writes the same bytes (a state file can be diffed and compared).

use std::collections::{BTreeMap, HashMap};

use serde::{Serialize, Serializer};

/// A hash map serialized with its entries in key order.
pub(crate) struct SortedMap<'a, K, V, H>(pub &'a HashMap<K, V, H>);

impl<K: Ord + Serialize, V: Serialize, H> Serialize for SortedMap<'_, K, V, H> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&K, &V)> = self.0.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_map(entries)
    }
}

/// `serialize_with` for a hash map.
pub(crate) fn map<K: Ord + Serialize, V: Serialize, H, S: Serializer>(
    m: &HashMap<K, V, H>,
    s: S,
) -> Result<S::Ok, S::Error> {
    SortedMap(m).serialize(s)
}

/// `serialize_with` for an ordered map of hash maps.
pub(crate) fn map_of_maps<K0, K, V, H, S>(
    m: &BTreeMap<K0, HashMap<K, V, H>>,
    s: S,
) -> Result<S::Ok, S::Error>
where
    K0: Serialize,
    K: Ord + Serialize,
    V: Serialize,
    S: Serializer,
{
    s.collect_map(m.iter().map(|(k, v)| (k, SortedMap(v))))
}
