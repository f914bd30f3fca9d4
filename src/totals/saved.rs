//! The saved form of [`Totals`]: the names table, then each composite table as a list of
//! `[ids, counts]` entries sorted by ids (the same totals write the same bytes). Loading checks
//! that every id names an entry of the names table and that no row repeats.

use std::hash::Hash;

use serde::{Deserialize, Serialize, Serializer};

use super::{Counts, DayCounts, KeyTotals, LifecycleEvent, Totals};
use crate::names::{Names, Sym};
use crate::Map;

/// `serialize_with` for a composite table: its entries sorted by key.
pub(super) fn rows<K: Ord + Serialize, V: Serialize, S: Serializer>(
    m: &Map<K, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut entries: Vec<(&K, &V)> = m.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    s.collect_seq(entries)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SavedTotals {
    names: Names,
    keys: Map<Box<str>, KeyTotals>,
    kps: Vec<([Sym; 3], Counts)>,
    koo: Vec<([Sym; 3], u64)>,
    daily: Vec<((Sym, i64), DayCounts)>,
    aliases: Vec<([Sym; 2], u64)>,
    lifecycle: Vec<LifecycleEvent>,
    overflow: u64,
}

/// The ids a saved row is keyed by.
trait Ids {
    fn all_in(&self, names: &Names) -> bool;
}

impl<const N: usize> Ids for [Sym; N] {
    fn all_in(&self, names: &Names) -> bool {
        self.iter().all(|s| names.contains(*s))
    }
}

impl Ids for (Sym, i64) {
    fn all_in(&self, names: &Names) -> bool {
        names.contains(self.0)
    }
}

fn table<K: Ids + Hash + Eq, V>(
    what: &str,
    names: &Names,
    rows: Vec<(K, V)>,
) -> Result<Map<K, V>, String> {
    let n = rows.len();
    let mut map = Map::default();
    map.reserve(n);
    for (i, (k, v)) in rows.into_iter().enumerate() {
        if !k.all_in(names) {
            return Err(format!(
                "totals.{what}[{i}] names an id beyond the {} names",
                names.len()
            ));
        }
        if map.insert(k, v).is_some() {
            return Err(format!("totals.{what}[{i}] repeats an earlier row"));
        }
    }
    Ok(map)
}

impl TryFrom<SavedTotals> for Totals {
    type Error = String;

    fn try_from(s: SavedTotals) -> Result<Totals, String> {
        Ok(Totals {
            kps: table("kps", &s.names, s.kps)?,
            koo: table("koo", &s.names, s.koo)?,
            daily: table("daily", &s.names, s.daily)?,
            aliases: table("aliases", &s.names, s.aliases)?,
            names: s.names,
            keys: s.keys,
            lifecycle: s.lifecycle,
            max_rows: 0,
            overflow: s.overflow,
        })
    }
}
