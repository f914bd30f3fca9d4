//! The key catalogue: every key seen succeeding, when, whether it is pending deletion, and alias
//! resolution.
//!
//! A key enters the catalogue with its first successful call (or from a rule's inventory), never
//! with a failed one: anyone can make up key ARNs and call them, failing, so a flood of failures
//! on made-up keys must not fill the catalogue nor make `unused` candidates. A failed call on a
//! key already catalogued still updates its sightings; every call, failed or not, is counted in
//! the totals.

use serde::{Deserialize, Serialize};

use crate::timefmt::check_time;
use crate::Map;

use crate::decode::{KeyEffect, KeyRef, KmsCall};

/// What the engine knows about one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInfo {
    /// Earliest event time of any call on the key since it was first seen succeeding (a failed
    /// call before that, folded later, counts too).
    pub first_seen: i64,
    pub last_seen: i64,
    /// A successful `ScheduleKeyDeletion` was seen and no `CancelKeyDeletion` after it.
    pub pending_deletion: bool,
    /// AWS KMS logged the key's `DeleteKey`: it is gone for good, whatever is logged about it
    /// afterwards (calls that fail because it no longer exists).
    #[serde(default)]
    pub deleted: bool,
}

impl KeyInfo {
    /// Neither deleted nor pending deletion: a key the `unused` rules judge.
    pub fn live(&self) -> bool {
        !self.pending_deletion && !self.deleted
    }
}

/// Bounded: at most `max_keys` keys and `max_aliases` aliases; what is over is counted, not kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCatalog {
    #[serde(serialize_with = "crate::serde_sorted::map")]
    keys: Map<Box<str>, KeyInfo>,
    /// Alias ARN -> key ARN, from `CreateAlias`/`UpdateAlias` seen so far.
    #[serde(serialize_with = "crate::serde_sorted::map")]
    aliases: Map<Box<str>, Box<str>>,
    /// Configuration, not state (set again on restore), like every skipped field.
    #[serde(skip)]
    max_keys: usize,
    #[serde(skip)]
    max_aliases: usize,
    pub keys_overflow: u64,
    pub aliases_overflow: u64,
}

impl KeyCatalog {
    /// After loading from a state file: every key's first and last sighting is a time the rules
    /// can do arithmetic on.
    pub(crate) fn check_times(&self) -> Result<(), String> {
        self.keys.iter().try_for_each(|(key, info)| {
            check_time(&format!("key {key} first_seen"), info.first_seen)?;
            check_time(&format!("key {key} last_seen"), info.last_seen)
        })
    }

    pub fn new(max_keys: usize, max_aliases: usize) -> Self {
        KeyCatalog {
            keys: Map::default(),
            aliases: Map::default(),
            max_keys,
            max_aliases,
            keys_overflow: 0,
            aliases_overflow: 0,
        }
    }

    /// The key a call is about: its key ARN, the key an alias points at, or the alias ARN itself
    /// when the alias was never seen being created.
    pub fn resolve(&self, key: Option<&KeyRef>) -> Option<Box<str>> {
        match key? {
            KeyRef::Key(k) => Some(k.clone()),
            KeyRef::Alias(a) => Some(self.aliases.get(a).unwrap_or(a).clone()),
        }
    }

    /// Records the call on its resolved key and applies its effect (alias changes, deletion). A
    /// failed call on a key not catalogued is not recorded (see the module documentation).
    pub fn observe(&mut self, call: &KmsCall, key: Option<&str>) {
        match &call.effect {
            Some(KeyEffect::AliasSet { alias, key }) => {
                if self.aliases.len() < self.max_aliases || self.aliases.contains_key(alias) {
                    self.aliases.insert(alias.clone(), key.clone());
                } else {
                    self.aliases_overflow = self.aliases_overflow.saturating_add(1);
                }
            }
            Some(KeyEffect::AliasDeleted { alias }) => {
                self.aliases.remove(alias);
            }
            _ => {}
        }
        let Some(key) = key else { return };
        if !self.keys.contains_key(key) {
            if call.error_code.is_some() {
                return;
            }
            if self.keys.len() >= self.max_keys {
                self.keys_overflow = self.keys_overflow.saturating_add(1);
                return;
            }
            let info = KeyInfo {
                first_seen: call.time,
                last_seen: call.time,
                pending_deletion: false,
                deleted: false,
            };
            self.keys.insert(key.into(), info);
        }
        if let Some(info) = self.keys.get_mut(key) {
            info.first_seen = info.first_seen.min(call.time);
            info.last_seen = info.last_seen.max(call.time);
            match call.effect {
                Some(KeyEffect::DeletionScheduled) => info.pending_deletion = true,
                Some(KeyEffect::DeletionCancelled) => info.pending_deletion = false,
                Some(KeyEffect::Deleted) => {
                    info.deleted = true;
                    info.pending_deletion = false;
                }
                _ => {}
            }
        }
    }

    /// Adds a key known from elsewhere (an inventory), first seen at `time` unless seen earlier.
    pub fn know(&mut self, key: &str, time: i64) {
        if self.keys.contains_key(key) {
            return;
        }
        if self.keys.len() >= self.max_keys {
            self.keys_overflow = self.keys_overflow.saturating_add(1);
            return;
        }
        self.keys.insert(
            key.into(),
            KeyInfo {
                first_seen: time,
                last_seen: time,
                pending_deletion: false,
                deleted: false,
            },
        );
    }

    /// After loading from a state file: the configured limits. Returns the limits the saved
    /// catalogue exceeds, as (limit, entries held).
    pub(crate) fn restore_limits(
        &mut self,
        max_keys: usize,
        max_aliases: usize,
    ) -> Vec<(&'static str, usize)> {
        self.max_keys = max_keys;
        self.max_aliases = max_aliases;
        let mut over = Vec::new();
        if self.keys.len() > max_keys {
            over.push(("max_keys", self.keys.len()));
        }
        if self.aliases.len() > max_aliases {
            over.push(("max_aliases", self.aliases.len()));
        }
        over
    }

    pub fn get(&self, key: &str) -> Option<&KeyInfo> {
        self.keys.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &KeyInfo)> {
        self.keys.iter().map(|(k, v)| (&**k, v))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{OpClass, ServiceSource};

    fn call(time: i64, effect: Option<KeyEffect>) -> KmsCall {
        KmsCall {
            event_id: "e".into(),
            dedupe_id: 0,
            time,
            operation: "X".into(),
            class: OpClass::Management,
            key: None,
            principal: "p".into(),
            caller_account: None,
            account: "1".into(),
            region: "r".into(),
            service: "direct".into(),
            service_source: ServiceSource::Direct,
            error_code: None,
            cross_account: false,
            effect,
            request: None,
        }
    }

    #[test]
    fn aliases_resolve_after_create_and_stop_after_delete() {
        let mut c = KeyCatalog::new(10, 10);
        let alias = KeyRef::Alias("arn:a:alias/x".into());
        assert_eq!(
            c.resolve(Some(&alias)).as_deref(),
            Some("arn:a:alias/x"),
            "unknown alias stays an alias"
        );
        c.observe(
            &call(
                1,
                Some(KeyEffect::AliasSet {
                    alias: "arn:a:alias/x".into(),
                    key: "arn:k1".into(),
                }),
            ),
            Some("arn:k1"),
        );
        assert_eq!(c.resolve(Some(&alias)).as_deref(), Some("arn:k1"));
        c.observe(
            &call(
                2,
                Some(KeyEffect::AliasSet {
                    alias: "arn:a:alias/x".into(),
                    key: "arn:k2".into(),
                }),
            ),
            Some("arn:k2"),
        );
        assert_eq!(
            c.resolve(Some(&alias)).as_deref(),
            Some("arn:k2"),
            "UpdateAlias moves it"
        );
        c.observe(
            &call(
                3,
                Some(KeyEffect::AliasDeleted {
                    alias: "arn:a:alias/x".into(),
                }),
            ),
            None,
        );
        assert_eq!(c.resolve(Some(&alias)).as_deref(), Some("arn:a:alias/x"));
        assert_eq!(c.resolve(None), None);
    }

    #[test]
    fn first_and_last_seen_and_deletion_state() {
        let mut c = KeyCatalog::new(1, 10);
        c.observe(&call(50, None), Some("k"));
        c.observe(&call(20, Some(KeyEffect::DeletionScheduled)), Some("k"));
        assert_eq!(
            c.get("k"),
            Some(&KeyInfo {
                first_seen: 20,
                last_seen: 50,
                pending_deletion: true,
                deleted: false,
            })
        );
        c.observe(&call(60, Some(KeyEffect::DeletionCancelled)), Some("k"));
        assert!(!c.get("k").unwrap().pending_deletion);
        c.observe(&call(70, Some(KeyEffect::Deleted)), Some("k"));
        c.observe(&call(80, Some(KeyEffect::DeletionCancelled)), Some("k"));
        let k = c.get("k").unwrap();
        assert!(k.deleted && !k.live(), "a deleted key stays deleted: {k:?}");
        c.observe(&call(60, None), Some("other"));
        assert_eq!((c.len(), c.keys_overflow), (1, 1), "max_keys is 1");
    }

    #[test]
    fn failed_calls_catalogue_no_key_but_update_one_seen_succeeding() {
        let failed = |time| KmsCall {
            error_code: Some("AccessDenied".into()),
            ..call(time, None)
        };
        let mut c = KeyCatalog::new(2, 10);
        for i in 0..1000 {
            c.observe(&failed(i), Some(&format!("arn:made-up:key/{i}")));
        }
        assert_eq!(
            (c.len(), c.keys_overflow),
            (0, 0),
            "a flood of failures on made-up keys takes no place and no overflow"
        );
        c.observe(&failed(10), Some("k"));
        assert_eq!(c.get("k"), None);
        c.observe(&call(50, None), Some("k"));
        c.observe(&failed(20), Some("k"));
        c.observe(&failed(70), Some("k"));
        let k = c.get("k").unwrap();
        assert_eq!(
            (k.first_seen, k.last_seen),
            (20, 70),
            "seen succeeding at 50: failures then count as sightings"
        );
    }
}
