//! The saved form of [`Totals`]: the names table, then each composite table as a list of
//! `[ids, counts]` entries sorted by ids (the same totals write the same bytes). Loading checks
//! that every id names an entry of the names table and that no row repeats.

use std::hash::Hash;

use serde::{Deserialize, Serialize, Serializer};

use super::{Counts, DayCounts, KeyTotals, KpsRow, LifecycleEvent, Totals};
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

/// `serialize_with` for the key/principal/service rows: `[[key, principal, service], counts]`
/// entries sorted by ids, as the other tables.
pub(super) fn kps<S: Serializer>(m: &Map<Sym, Vec<KpsRow>>, s: S) -> Result<S::Ok, S::Error> {
    let mut keys: Vec<&Sym> = m.keys().collect();
    keys.sort_unstable();
    s.collect_seq(keys.into_iter().flat_map(|k| {
        m[k].iter()
            .map(move |r| ([*k, r.principal, r.service], &r.counts))
    }))
}

/// The saved key/principal/service rows (checked by [`table`]) as rows per key, sorted.
fn kps_by_key(rows: Map<[Sym; 3], Counts>) -> (Map<Sym, Vec<KpsRow>>, usize) {
    let len = rows.len();
    let mut by_key: Map<Sym, Vec<KpsRow>> = Map::default();
    for ([k, principal, service], counts) in rows {
        by_key.entry(k).or_default().push(KpsRow {
            principal,
            service,
            counts,
        });
    }
    for rows in by_key.values_mut() {
        rows.sort_unstable_by_key(|r| (r.principal, r.service));
        rows.shrink_to_fit();
    }
    (by_key, len)
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
        let (kps, kps_len) = kps_by_key(table("kps", &s.names, s.kps)?);
        Ok(Totals {
            kps,
            kps_len,
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
