//! Exact running totals over every distinct KMS call, the facts the summary and the auditors'
//! report are built from: per key, per key/principal/service, per key/operation/outcome, per key
//! and UTC day, the key facts (lifecycle state, rotation, aliases, policy and grants) and the log
//! of lifecycle calls.
//!
//! A leaf: it knows `decode`'s `KmsCall` and nothing of the engine, the report or the state file,
//! which all use it (with [`EngineCounters`], the engine's counts, saved beside the totals). Saved in state files (its own serde form, not the summary schema).

mod facts;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::decode::{KeyEffect, KeyRef, KmsCall, OpClass};
use crate::Map;

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

/// Separates the parts of a composite row key.
pub(crate) const SEP: char = '\u{1f}';

const DAY_SECS: i64 = 86_400;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyTotals {
    pub calls: u64,
    pub failures: u64,
    pub by_operation: BTreeMap<Box<str>, u64>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Latest successful cryptographic call.
    pub last_used: Option<i64>,
    pub crypto_calls: u64,
    pub management_calls: u64,
    pub facts: KeyFacts,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Counts {
    pub calls: u64,
    pub failures: u64,
    /// Calls by the inference step that named the service, indexed like `ServiceSource::ALL`.
    pub by_source: [u64; 6],
    pub first_seen: i64,
    pub last_seen: i64,
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
/// (the summary and the report then say the tables are incomplete).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Key ARN ("" for calls with no key).
    #[serde(serialize_with = "crate::serde_sorted::map")]
    pub(crate) keys: Map<Box<str>, KeyTotals>,
    /// key SEP principal SEP service.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    pub(crate) kps: Map<Box<str>, Counts>,
    /// key SEP operation SEP outcome.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    pub(crate) koo: Map<Box<str>, u64>,
    /// key SEP day (days since the epoch, UTC).
    #[serde(serialize_with = "crate::serde_sorted::map")]
    pub(crate) daily: Map<Box<str>, DayCounts>,
    /// key SEP alias ARN: calls that named the key through the alias or pointed the alias at it.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    pub(crate) aliases: Map<Box<str>, u64>,
    /// Lifecycle calls (see [`lifecycle_category`]) in the order they were folded.
    pub(crate) lifecycle: Vec<LifecycleEvent>,
    /// Configuration, set again on restore.
    #[serde(skip)]
    max_rows: usize,
    pub overflow: u64,
    /// Scratch space for row keys.
    #[serde(skip)]
    buf: String,
}

impl Totals {
    pub fn new(max_rows: usize) -> Self {
        Totals {
            keys: Map::default(),
            kps: Map::default(),
            koo: Map::default(),
            daily: Map::default(),
            aliases: Map::default(),
            lifecycle: Vec::new(),
            max_rows,
            overflow: 0,
            buf: String::new(),
        }
    }

    /// After loading from a state file: the configured `max_rows`. Returns the largest table's
    /// row count when it exceeds it.
    pub(crate) fn restore_limit(&mut self, max_rows: usize) -> Option<usize> {
        self.max_rows = max_rows;
        let rows = [
            self.keys.len(),
            self.kps.len(),
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
        if !self.keys.contains_key(key) {
            if self.keys.len() >= self.max_rows {
                self.overflow = self.overflow.saturating_add(1);
            } else {
                let t = KeyTotals {
                    first_seen: call.time,
                    last_seen: call.time,
                    ..KeyTotals::default()
                };
                self.keys.insert(key.into(), t);
            }
        }
        if let Some(t) = self.keys.get_mut(key) {
            t.calls = t.calls.saturating_add(1);
            t.failures = t.failures.saturating_add(u64::from(failed));
            match t.by_operation.get_mut(&*call.operation) {
                Some(n) => *n = n.saturating_add(1),
                None => {
                    t.by_operation.insert(call.operation.clone(), 1);
                }
            }
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
        let (max, overflow) = (self.max_rows, &mut self.overflow);
        let b = &mut self.buf;
        b.clear();
        let _ = write!(b, "{key}{SEP}{}{SEP}{}", call.principal, call.service);
        bump(&mut self.kps, b, max, overflow, |c| {
            if c.calls == 0 {
                c.first_seen = call.time;
                c.last_seen = call.time;
            }
            c.calls = c.calls.saturating_add(1);
            c.failures = c.failures.saturating_add(u64::from(failed));
            c.by_source[call.service_source as usize] =
                c.by_source[call.service_source as usize].saturating_add(1);
            c.first_seen = c.first_seen.min(call.time);
            c.last_seen = c.last_seen.max(call.time);
        });
        b.clear();
        let _ = write!(b, "{key}{SEP}{}{SEP}{}", call.operation, call.outcome());
        bump(&mut self.koo, b, max, overflow, |n| {
            *n = n.saturating_add(1)
        });
        b.clear();
        let _ = write!(b, "{key}{SEP}{}", call.time.div_euclid(DAY_SECS));
        bump(&mut self.daily, b, max, overflow, |d| {
            if crypto {
                d.crypto_calls = d.crypto_calls.saturating_add(1);
            } else {
                d.management_calls = d.management_calls.saturating_add(1);
            }
            d.failures = d.failures.saturating_add(u64::from(failed));
        });
        if let Some(alias) = alias_named(call, key) {
            b.clear();
            let _ = write!(b, "{}{SEP}{alias}", alias_target(call, key));
            bump(&mut self.aliases, b, max, overflow, |n| {
                *n = n.saturating_add(1)
            });
        }
        if lifecycle_category(&call.operation).is_some() {
            if self.lifecycle.len() >= max {
                *overflow = overflow.saturating_add(1);
            } else {
                self.lifecycle.push(LifecycleEvent::new(call, key));
            }
        }
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

/// The `N` parts of a composite row key (missing parts empty).
pub(crate) fn split_key<const N: usize>(k: &str) -> [&str; N] {
    let mut it = k.splitn(N, SEP);
    std::array::from_fn(|_| it.next().unwrap_or_default())
}

fn bump<V: Default>(
    map: &mut Map<Box<str>, V>,
    k: &str,
    max: usize,
    overflow: &mut u64,
    f: impl FnOnce(&mut V),
) {
    if let Some(v) = map.get_mut(k) {
        f(v);
    } else if map.len() >= max {
        *overflow = overflow.saturating_add(1);
    } else {
        f(map.entry(k.into()).or_default());
    }
}

#[cfg(test)]
mod tests;
