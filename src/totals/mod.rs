//! Exact running totals over every distinct KMS call, the facts the summary and the auditors'
//! report are built from: per key, per key/principal/service, per key/operation/outcome, per key
//! and UTC day, the key facts (lifecycle state, rotation, aliases, policy and grants) and the log
//! of lifecycle calls.
//!
//! A leaf: it knows `decode`'s `KmsCall` and nothing of the engine, the report or the state file,
//! which all use it (with [`EngineCounters`], the engine's counts, saved beside the totals). Saved in state files (its own serde form, not the summary schema).

mod facts;

use std::collections::BTreeMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::decode::{KeyEffect, KeyRef, KmsCall, OpClass};
use crate::names::{Names, Sym};
use crate::Map;

mod saved;

pub use facts::{lifecycle_category, KeyFacts, KeyState, LifecycleEvent};

/// What the engine counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineCounters {
    /// Distinct KMS calls taken in (after dedupe).
    pub kms_calls: u64,
    /// Calls seen before (by call id) in another object.
    pub duplicates: u64,
    /// Objects folded before (by `ObjectRef::identity`), skipped whole.
    #[serde(default)]
    pub duplicate_objects: u64,
    /// Calls whose default-length window had closed when they arrived.
    pub late: u64,
    /// Calls later than their object allows (`EngineConfig::future_skew_secs`): not folded.
    #[serde(default)]
    pub future_events: u64,
    pub alerts_firing: u64,
    pub alerts_resolved: u64,
}

const DAY_SECS: i64 = 86_400;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyTotals {
    pub calls: u64,
    pub failures: u64,
    pub by_operation: OpCounts,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Latest successful cryptographic call.
    pub last_used: Option<i64>,
    pub crypto_calls: u64,
    pub management_calls: u64,
    pub facts: KeyFacts,
}

/// A key's calls by operation, sorted by operation name, saved as a map (as the `BTreeMap` it
/// replaced was). A vector with exactly its entries: a key named only by a flood of failed calls
/// has one operation, and a B-tree's first node is about 270 bytes against 24 here.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct OpCounts(Vec<(Box<str>, u64)>);

impl OpCounts {
    fn bump(&mut self, operation: &str) {
        match self.0.binary_search_by(|(o, _)| (**o).cmp(operation)) {
            Ok(i) => self.0[i].1 = self.0[i].1.saturating_add(1),
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (operation.into(), 1));
            }
        }
    }

    /// Operations and their calls, by operation name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(o, n)| (&**o, *n))
    }
}

impl Serialize for OpCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for OpCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<Box<str>, u64>::deserialize(d)?;
        Ok(OpCounts(map.into_iter().collect()))
    }
}

/// The calls of one key, principal and service, as read and saved (held as a [`KpsRow`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Counts {
    pub calls: u64,
    pub failures: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Calls by the inference step that named the service.
    pub by_source: Sources,
}

/// Calls by the inference step that named the service, indexed like `ServiceSource::ALL`. Nearly
/// every row is named by one step only: that case holds no array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Sources {
    /// Every call of the row (`Counts::calls`) by this step.
    One(u8),
    /// Calls per step.
    Many(Box<[u64; 6]>),
}

impl Default for Sources {
    fn default() -> Self {
        Sources::One(0)
    }
}

impl Counts {
    fn add(&mut self, source: usize, time: i64, failed: bool) {
        let source = source.min(5);
        if self.calls == 0 {
            self.first_seen = time;
            self.last_seen = time;
            self.by_source = Sources::One(source as u8);
        } else if let Sources::One(s) = self.by_source {
            if usize::from(s) != source {
                let mut all = [0u64; 6];
                all[usize::from(s).min(5)] = self.calls;
                self.by_source = Sources::Many(Box::new(all));
            }
        }
        if let Sources::Many(all) = &mut self.by_source {
            all[source] = all[source].saturating_add(1);
        }
        self.calls = self.calls.saturating_add(1);
        self.failures = self.failures.saturating_add(u64::from(failed));
        self.first_seen = self.first_seen.min(time);
        self.last_seen = self.last_seen.max(time);
    }

    /// Calls per inference step, indexed like `ServiceSource::ALL`.
    pub fn by_source(&self) -> [u64; 6] {
        match &self.by_source {
            Sources::One(s) => {
                let mut all = [0; 6];
                all[usize::from(*s).min(5)] = self.calls;
                all
            }
            Sources::Many(all) => **all,
        }
    }
}

/// One key's calls on one UTC day.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DayCounts {
    pub crypto_calls: u64,
    pub management_calls: u64,
    pub failures: u64,
}

/// Running totals over every distinct KMS call. Each table holds at most `max_rows` rows (the
/// lifecycle log at most `max_rows` calls); calls of rows over the cap are counted in `overflow`
/// (the summary and the report then say the tables are incomplete). The composite tables are
/// keyed by interned names ([`Names`]), so a row costs its counts and a few ids, not its strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "saved::SavedTotals")]
pub struct Totals {
    /// The names the composite tables' rows are keyed by.
    pub(crate) names: Names,
    /// Key ARN ("" for calls with no key).
    #[serde(serialize_with = "crate::serde_sorted::map")]
    pub(crate) keys: Map<Box<str>, KeyTotals>,
    /// (key, principal, service).
    pub(crate) kps: Kps,
    /// (key, operation, outcome).
    #[serde(serialize_with = "saved::rows")]
    pub(crate) koo: Map<[Sym; 3], u64>,
    /// (key, day since the epoch, UTC).
    #[serde(serialize_with = "saved::rows")]
    pub(crate) daily: Map<(Sym, i64), DayCounts>,
    /// (key, alias ARN): calls that named the key through the alias or pointed the alias at it.
    #[serde(serialize_with = "saved::rows")]
    pub(crate) aliases: Map<[Sym; 2], u64>,
    /// Lifecycle calls (see [`lifecycle_category`]) in the order they were folded.
    pub(crate) lifecycle: Vec<LifecycleEvent>,
    /// Configuration, set again on restore.
    #[serde(skip)]
    max_rows: usize,
    pub overflow: u64,
}

impl Totals {
    pub fn new(max_rows: usize) -> Self {
        Totals {
            names: Names::default(),
            keys: Map::default(),
            kps: Kps::default(),
            koo: Map::default(),
            daily: Map::default(),
            aliases: Map::default(),
            lifecycle: Vec::new(),
            max_rows,
            overflow: 0,
        }
    }

    /// After loading from a state file: the configured `max_rows`. Returns the largest table's
    /// row count when it exceeds it.
    pub(crate) fn restore_limit(&mut self, max_rows: usize) -> Option<usize> {
        self.max_rows = max_rows;
        let rows = [
            self.keys.len(),
            self.kps.len,
            self.koo.len(),
            self.daily.len(),
            self.aliases.len(),
            self.lifecycle.len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        (rows > max_rows).then_some(rows)
    }

    pub fn record(&mut self, call: &KmsCall, key: Option<&str>) {
        let key = key.unwrap_or("");
        let failed = call.error_code.is_some();
        let crypto = call.class == OpClass::Crypto;
        // One lookup for a known key; a new one is looked up again once, when it is inserted.
        let full = self.keys.len() >= self.max_rows;
        let totals = match self.keys.get_mut(key) {
            Some(t) => Some(t),
            None if full => {
                self.overflow = self.overflow.saturating_add(1);
                None
            }
            None => Some(self.keys.entry(key.into()).or_insert(KeyTotals {
                first_seen: call.time,
                last_seen: call.time,
                ..KeyTotals::default()
            })),
        };
        if let Some(t) = totals {
            t.calls = t.calls.saturating_add(1);
            t.failures = t.failures.saturating_add(u64::from(failed));
            t.by_operation.bump(&call.operation);
            t.first_seen = t.first_seen.min(call.time);
            t.last_seen = t.last_seen.max(call.time);
            if crypto {
                t.crypto_calls = t.crypto_calls.saturating_add(1);
            } else {
                t.management_calls = t.management_calls.saturating_add(1);
            }
            if !failed && crypto {
                t.last_used = Some(t.last_used.map_or(call.time, |u| u.max(call.time)));
            }
            if !failed {
                t.facts.apply(&call.operation, call.time);
            }
        }
        let mut rows = Rows {
            names: &mut self.names,
            max: self.max_rows,
            overflow: &mut self.overflow,
        };
        // Each name is looked up once and shared by the tables (interned when a row needs it).
        let mut syms = CallSyms::new(
            rows.names,
            [
                key,
                &call.principal,
                &call.service,
                &call.operation,
                call.outcome(),
            ],
        );
        let [key_at, principal_at, service_at, operation_at, outcome_at] = [0, 1, 2, 3, 4];
        rows.bump_kps(
            &mut self.kps,
            &mut syms,
            [key_at, principal_at, service_at],
            (call.service_source as usize, call.time, failed),
        );
        rows.bump(
            &mut self.koo,
            &mut syms,
            [key_at, operation_at, outcome_at],
            |s| s,
            |n| *n = n.saturating_add(1),
        );
        let day = call.time.div_euclid(DAY_SECS);
        rows.bump(
            &mut self.daily,
            &mut syms,
            [key_at],
            |[k]| (k, day),
            |d| {
                if crypto {
                    d.crypto_calls = d.crypto_calls.saturating_add(1);
                } else {
                    d.management_calls = d.management_calls.saturating_add(1);
                }
                d.failures = d.failures.saturating_add(u64::from(failed));
            },
        );
        if let Some(alias) = alias_named(call, key) {
            let mut syms = CallSyms::new(rows.names, [alias_target(call, key), alias]);
            rows.bump(
                &mut self.aliases,
                &mut syms,
                [0, 1],
                |s| s,
                |n| *n = n.saturating_add(1),
            );
        }
        if lifecycle_category(&call.operation).is_some() {
            if self.lifecycle.len() >= self.max_rows {
                self.overflow = self.overflow.saturating_add(1);
            } else {
                self.lifecycle.push(LifecycleEvent::new(call, key));
            }
        }
    }

    /// The (key, principal, service) rows, in no order.
    pub(crate) fn kps_rows(&self) -> impl Iterator<Item = ([&str; 3], Counts)> + '_ {
        self.kps.by_key.iter().flat_map(move |(k, rows)| {
            rows.iter().map(move |r| {
                let names = self.names3(&[*k, r.principal, r.service]);
                (names, self.kps.counts(*k, r))
            })
        })
    }

    /// The (key, principal, service) rows sorted by their names, made one key at a time: a
    /// million rows are never all in one sorted list.
    pub(crate) fn kps_rows_sorted(&self) -> impl Iterator<Item = ([&str; 3], Counts)> + '_ {
        let mut keys: Vec<(Sym, &str, &[KpsRow])> = (self.kps.by_key.iter())
            .map(|(k, rows)| (*k, self.names.resolve(*k), &rows[..]))
            .collect();
        keys.sort_unstable_by(|a, b| a.1.cmp(b.1));
        keys.into_iter().flat_map(move |(k, key, rows)| {
            let mut rows: Vec<([&str; 3], Counts)> = (rows.iter())
                .map(|r| {
                    let [p, s] = [r.principal, r.service].map(|n| self.names.resolve(n));
                    ([key, p, s], self.kps.counts(k, r))
                })
                .collect();
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            rows
        })
    }

    /// The (key, operation, outcome) rows, in no order.
    pub(crate) fn koo_rows(&self) -> impl Iterator<Item = ([&str; 3], u64)> {
        self.koo.iter().map(|(k, v)| (self.names3(k), *v))
    }

    /// The (key, day since the epoch) rows, in no order.
    pub(crate) fn daily_rows(&self) -> impl Iterator<Item = (&str, i64, &DayCounts)> {
        self.daily
            .iter()
            .map(|((k, day), v)| (self.names.resolve(*k), *day, v))
    }

    /// The (key, alias) rows, in no order.
    pub(crate) fn alias_rows(&self) -> impl Iterator<Item = ([&str; 2], u64)> {
        self.aliases
            .iter()
            .map(|(k, v)| (k.map(|s| self.names.resolve(s)), *v))
    }

    fn names3(&self, k: &[Sym; 3]) -> [&str; 3] {
        k.map(|s| self.names.resolve(s))
    }
}

/// The (key, principal, service) table: per key rather than one map of a million rows, so there
/// is no bucket array to double (and briefly hold twice) as rows arrive, and no hash slack.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kps {
    /// key -> its rows, sorted by (principal, service) ids.
    pub by_key: Map<Sym, Vec<KpsRow>>,
    /// The counts of the rows that do not fit a [`KpsRow`] (marked [`KpsRow::WIDE`]).
    wide: Map<[Sym; 3], Counts>,
    /// Rows of `by_key`, for the cap.
    pub len: usize,
}

impl Kps {
    /// The counts of `key`'s row `r`.
    pub fn counts(&self, key: Sym, r: &KpsRow) -> Counts {
        if r.is_wide() {
            self.wide[&[key, r.principal, r.service]].clone()
        } else {
            r.counts()
        }
    }

    /// `counts` as `key`'s row for (`principal`, `service`): held in the row when they fit it,
    /// else in `wide`.
    pub fn hold(
        wide: &mut Map<[Sym; 3], Counts>,
        key: Sym,
        [principal, service]: [Sym; 2],
        counts: Counts,
    ) -> KpsRow {
        KpsRow::compact(principal, service, &counts).unwrap_or_else(|| {
            wide.insert([key, principal, service], counts);
            KpsRow::wide(principal, service)
        })
    }

    /// Adds a call to `r`, a row of `key` (its counts in `wide` when it is [`KpsRow::WIDE`]).
    fn add(
        wide: &mut Map<[Sym; 3], Counts>,
        key: Sym,
        r: &mut KpsRow,
        (source, time, failed): (usize, i64, bool),
    ) {
        if r.is_wide() {
            if let Some(c) = wide.get_mut(&[key, r.principal, r.service]) {
                c.add(source, time, failed);
            }
            return;
        }
        let mut c = r.counts();
        c.add(source, time, failed);
        *r = Kps::hold(wide, key, [r.principal, r.service], c);
    }
}

/// One (principal, service) row of a key, in 24 bytes: a million of them is the table of an
/// organization's trail with 10,000 keys and 100 principals. Nearly every row's calls were named
/// by one inference step, first seen after 2000 and within 136 years of it, spanning less than
/// 136 years, with fewer than 2^32 calls and 2^24 failures; a row that outgrows that keeps its
/// [`Counts`] in [`Kps::wide`] and is marked [`KpsRow::WIDE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KpsRow {
    pub principal: Sym,
    pub service: Sym,
    calls: u32,
    /// Seconds from [`KpsRow::EPOCH`] to the first call.
    first_seen: u32,
    /// `last_seen - first_seen`.
    span: u32,
    /// Failures in the high 24 bits; in the low 8, the inference step that named the service of
    /// every call, or [`KpsRow::WIDE`].
    failures_source: u32,
}

impl KpsRow {
    /// The low byte of `failures_source` of a row whose counts are in [`Kps::wide`].
    const WIDE: u8 = u8::MAX;
    /// 2000-01-01T00:00:00Z, before any CloudTrail event (the service began in 2013).
    const EPOCH: i64 = 946_684_800;

    fn new(principal: Sym, service: Sym) -> Self {
        KpsRow {
            principal,
            service,
            calls: 0,
            first_seen: 0,
            span: 0,
            failures_source: 0,
        }
    }

    /// A row marked [`KpsRow::WIDE`].
    fn wide(principal: Sym, service: Sym) -> Self {
        KpsRow {
            failures_source: u32::from(KpsRow::WIDE),
            ..KpsRow::new(principal, service)
        }
    }

    fn is_wide(&self) -> bool {
        self.source() == KpsRow::WIDE
    }

    fn source(&self) -> u8 {
        self.failures_source as u8
    }

    fn compact(principal: Sym, service: Sym, c: &Counts) -> Option<KpsRow> {
        let Sources::One(source) = c.by_source else {
            return None;
        };
        let span = u32::try_from(c.last_seen.checked_sub(c.first_seen)?).ok()?;
        let first_seen = u32::try_from(c.first_seen.checked_sub(KpsRow::EPOCH)?).ok()?;
        let failures = (c.failures < 1 << 24).then_some(c.failures as u32)?;
        (source != KpsRow::WIDE).then_some(KpsRow {
            principal,
            service,
            calls: u32::try_from(c.calls).ok()?,
            first_seen,
            span,
            failures_source: failures << 8 | u32::from(source),
        })
    }

    /// The counts of a row that is not [`KpsRow::WIDE`].
    fn counts(&self) -> Counts {
        let first_seen = KpsRow::EPOCH + i64::from(self.first_seen);
        Counts {
            calls: u64::from(self.calls),
            failures: u64::from(self.failures_source >> 8),
            first_seen,
            last_seen: first_seen + i64::from(self.span),
            by_source: Sources::One(self.source()),
        }
    }
}

/// Adds to rows keyed by interned names, interning only for a row that gets a place.
struct Rows<'a> {
    names: &'a mut Names,
    max: usize,
    overflow: &'a mut u64,
}

impl Rows<'_> {
    /// [`Rows::bump`] for the per-key sorted rows of `kps`, keyed by the names of `syms` at
    /// `at` (key, principal, service): adds a call (its inference step, time and failure).
    fn bump_kps<const N: usize>(
        &mut self,
        kps: &mut Kps,
        syms: &mut CallSyms<'_, N>,
        at: [usize; 3],
        call: (usize, i64, bool),
    ) {
        let find = |rows: &[KpsRow], p: Sym, s: Sym| {
            rows.binary_search_by(|r| (r.principal, r.service).cmp(&(p, s)))
        };
        if let Some([k, p, s]) = syms.known(at) {
            if let Some(rows) = kps.by_key.get_mut(&k) {
                if let Ok(i) = find(rows, p, s) {
                    Kps::add(&mut kps.wide, k, &mut rows[i], call);
                    return;
                }
            }
        }
        if kps.len >= self.max {
            *self.overflow = self.overflow.saturating_add(1);
            return;
        }
        let [k, p, s] = syms.intern(self.names, at);
        let rows = kps.by_key.entry(k).or_default();
        let i = match find(rows, p, s) {
            Ok(i) => i,
            Err(i) => {
                // Grow by an eighth (at least a row), not by doubling: a key's rows are a
                // million-row table's share, and doubling leaves up to half of it empty (a
                // quarter on average: about 15 MB of the 10,000-key set's 56 MB). The insert
                // below already moves half the rows, so copying them all every eighth insert
                // costs no more once a key has 16 rows. Most keys of a flood of made-up names
                // have one row: a first insert reserves one, not four.
                if rows.len() == rows.capacity() {
                    rows.reserve_exact((rows.len() / 8).max(1));
                }
                rows.insert(i, KpsRow::new(p, s));
                kps.len += 1;
                i
            }
        };
        Kps::add(&mut kps.wide, k, &mut rows[i], call);
    }

    /// Adds to `map`'s row keyed by the names of `syms` at `parts` (made into the map's key by
    /// `key`), creating the row (and interning its names) when there is room.
    fn bump<const N: usize, const M: usize, K: Hash + Eq, V: Default>(
        &mut self,
        map: &mut Map<K, V>,
        syms: &mut CallSyms<'_, N>,
        parts: [usize; M],
        key: impl Fn([Sym; M]) -> K,
        f: impl FnOnce(&mut V),
    ) {
        if let Some(known) = syms.known(parts) {
            if let Some(v) = map.get_mut(&key(known)) {
                f(v);
                return;
            }
        }
        if map.len() >= self.max {
            *self.overflow = self.overflow.saturating_add(1);
            return;
        }
        f(map.entry(key(syms.intern(self.names, parts))).or_default());
    }
}

/// The names of one call and their ids: each looked up once, interned only when a row that gets
/// a place needs it, in the order the rows ask (so the same calls give the same ids).
struct CallSyms<'s, const N: usize> {
    parts: [&'s str; N],
    syms: [Option<Sym>; N],
}

impl<'s, const N: usize> CallSyms<'s, N> {
    fn new(names: &Names, parts: [&'s str; N]) -> Self {
        CallSyms {
            parts,
            syms: parts.map(|p| names.get(p)),
        }
    }

    /// The ids of the names at `at`, if all are interned.
    fn known<const M: usize>(&self, at: [usize; M]) -> Option<[Sym; M]> {
        let mut out = [Sym::default(); M];
        for (o, i) in out.iter_mut().zip(at) {
            *o = self.syms[i]?;
        }
        Some(out)
    }

    /// The ids of the names at `at`, interning those that are new, in order.
    fn intern<const M: usize>(&mut self, names: &mut Names, at: [usize; M]) -> [Sym; M] {
        at.map(|i| *self.syms[i].get_or_insert_with(|| names.intern(self.parts[i])))
    }
}

/// The alias a call names its key through (resolved to another key), or that it points at a key.
fn alias_named<'a>(call: &'a KmsCall, key: &str) -> Option<&'a str> {
    match (&call.effect, &call.key) {
        (Some(KeyEffect::AliasSet { alias, .. }), _) => Some(&**alias),
        (_, Some(KeyRef::Alias(a))) if &**a != key && !key.is_empty() => Some(&**a),
        _ => None,
    }
}

/// The key an alias row belongs to: the target of an alias change, else the resolved key.
fn alias_target<'a>(call: &'a KmsCall, key: &'a str) -> &'a str {
    match &call.effect {
        Some(KeyEffect::AliasSet { key: target, .. }) => target,
        _ => key,
    }
}

#[cfg(test)]
mod tests;
