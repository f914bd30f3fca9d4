//! The saved form of [`Totals`]: the names table, then each composite table as a list of
//! `[ids, counts]` entries sorted by ids (the key/principal/service rows grouped by key), so the
//! same totals write the same bytes. Loading checks
//! that every id names an entry of the names table and that no row repeats.

use std::hash::Hash;

use serde::{Deserialize, Serialize, Serializer};

use super::{Counts, DayCounts, KeyTotals, Kps, KpsRow, LifecycleEvent, Totals};
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

/// The key/principal/service rows: `[key, [[principal, service, counts], ...]]` per key, keys
/// sorted by id and each key's rows by (principal, service) as held, so loading builds each
/// key's rows as they are, with no table of every row in between.
impl Serialize for Kps {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct RowsOf<'a>(&'a Kps, Sym);
        impl Serialize for RowsOf<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let RowsOf(kps, key) = *self;
                let rows = kps.by_key[&key].iter();
                s.collect_seq(rows.map(|r| (r.principal, r.service, kps.counts(key, r))))
            }
        }
        let mut keys: Vec<Sym> = self.by_key.keys().copied().collect();
        keys.sort_unstable();
        s.collect_seq(keys.into_iter().map(|k| (k, RowsOf(self, k))))
    }
}

/// The saved key/principal/service rows as rows per key, checked: every id names a name, no key
/// comes twice, and each key's rows are in (principal, service) order without repeats.
fn kps_by_key(names: &Names, saved: Vec<SavedKeyRows>) -> Result<Kps, String> {
    let mut kps = Kps::default();
    kps.by_key.reserve(saved.len());
    for (i, (key, rows)) in saved.into_iter().enumerate() {
        let ids_known = names.contains(key)
            && (rows.iter()).all(|(p, s, _)| names.contains(*p) && names.contains(*s));
        if !ids_known {
            return Err(format!(
                "totals.kps[{i}] names an id beyond the {} names",
                names.len()
            ));
        }
        if !rows.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)) {
            return Err(format!("totals.kps[{i}] holds rows out of order or twice"));
        }
        kps.len += rows.len();
        let rows: Vec<KpsRow> = (rows.into_iter())
            .map(|(p, s, counts)| Kps::hold(&mut kps.wide, key, [p, s], counts))
            .collect();
        if kps.by_key.insert(key, rows).is_some() {
            return Err(format!("totals.kps[{i}] repeats an earlier key"));
        }
    }
    Ok(kps)
}

/// One key's saved key/principal/service rows: the key, then `(principal, service, counts)`.
type SavedKeyRows = (Sym, Vec<(Sym, Sym, Counts)>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SavedTotals {
    names: Names,
    keys: Map<Box<str>, KeyTotals>,
    kps: Vec<SavedKeyRows>,
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
            kps: kps_by_key(&s.names, s.kps)?,
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
