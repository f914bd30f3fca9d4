//! Engine state out and in: [`Engine::snapshot`] for a state file, [`Engine::restore`] to continue
//! from one under the current configuration and rules.

use std::collections::BTreeMap;
use std::fmt;

use super::{Engine, EngineConfig};
use crate::aggregate::{Dedupe, KeyCatalog};
use crate::rules::{RuleSet, SavedRule};
use crate::state::{
    EngineState, FiringAlert, LimitExceeded, SavedSettings, StateError, FORMAT, VERSION, WRITTEN_BY,
};
use crate::timefmt::{check_time, format_rfc3339};
use crate::totals::Totals;

/// Something restoring did that the operator should know about (the driver logs each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreNote {
    /// A configured rule has no saved state: it starts fresh.
    NewRule { rule: String },
    /// A rule's definition changed since the state was saved: its saved state is dropped and it
    /// starts fresh.
    ChangedRule { rule: String },
    /// A saved rule is no longer configured: its state is dropped, firing alerts included.
    RemovedRule { rule: String, firing: usize },
    /// The state remembered more call ids than `max_dedupe_ids`: the oldest were forgotten.
    DedupeTrimmed {
        forgotten: u64,
        max_dedupe_ids: usize,
    },
    /// The state remembered more objects than `max_dedupe_objects`: the oldest were forgotten.
    DedupeObjectsTrimmed {
        forgotten: u64,
        max_dedupe_objects: usize,
    },
}

impl fmt::Display for RestoreNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreNote::NewRule { rule } => {
                write!(f, "rule \"{rule}\" is not in the state: it starts fresh")
            }
            RestoreNote::ChangedRule { rule } => write!(
                f,
                "rule \"{rule}\" changed since the state was saved: its saved windows and baselines are dropped and it starts fresh"
            ),
            RestoreNote::RemovedRule { rule, firing } => {
                write!(f, "rule \"{rule}\" is in the state but no longer configured: its state is dropped")?;
                if *firing > 0 {
                    write!(f, ", with {firing} firing alert(s) that will not be resolved")?;
                }
                Ok(())
            }
            RestoreNote::DedupeTrimmed {
                forgotten,
                max_dedupe_ids,
            } => write!(
                f,
                "the state remembers more call ids than max_dedupe_ids ({max_dedupe_ids}): the oldest {forgotten} were forgotten"
            ),
            RestoreNote::DedupeObjectsTrimmed {
                forgotten,
                max_dedupe_objects,
            } => write!(
                f,
                "the state remembers more objects than max_dedupe_objects ({max_dedupe_objects}): the oldest {forgotten} were forgotten"
            ),
        }
    }
}

impl Engine {
    /// A copy of everything the engine has learned, for [`crate::state::save`]. Take it between
    /// objects and before [`Engine::finish`] (which closes windows for the end of a replay, not of
    /// time). Copying lets a live driver write the file without holding the engine.
    pub fn snapshot(&self) -> EngineState {
        self.snapshot_of(
            self.dedupe.clone(),
            self.catalog.clone(),
            self.totals.clone(),
            self.rules.iter().map(|r| r.save()).collect(),
        )
    }

    /// Calls `f` with the engine's state, as [`Engine::snapshot`] would make it, without copying
    /// the dedupe window, the key catalogue, the totals or the rules' states: they are lent to the
    /// state and taken back after `f`. For a driver that saves on the thread that owns the engine (replay's
    /// `--state-out`), where a copy of a large organization's totals would double their memory.
    pub fn with_snapshot<R>(&mut self, f: impl FnOnce(&mut EngineState) -> R) -> R {
        let max_rows = self.config.max_report_rows;
        let dedupe = std::mem::replace(&mut self.dedupe, Dedupe::new(1, 1));
        let catalog = std::mem::replace(&mut self.catalog, KeyCatalog::new(0, 0));
        let totals = std::mem::replace(&mut self.totals, Totals::new(max_rows));
        let rules = self.rules.iter_mut().map(|r| r.lend()).collect();
        let mut state = self.snapshot_of(dedupe, catalog, totals, rules);
        let r = f(&mut state);
        self.dedupe = state.dedupe;
        self.catalog = state.catalog;
        self.totals = state.totals;
        for (rule, saved) in self.rules.iter_mut().zip(state.rules) {
            rule.take_back(saved);
        }
        r
    }

    fn snapshot_of(
        &self,
        dedupe: Dedupe,
        catalog: KeyCatalog,
        totals: Totals,
        rules: Vec<SavedRule>,
    ) -> EngineState {
        let c = &self.config;
        EngineState {
            format: FORMAT.to_owned(),
            version: VERSION,
            written_by: WRITTEN_BY.to_owned(),
            saved_at_event_time: self.max_event_time.map(format_rfc3339),
            settings: SavedSettings {
                window_secs: c.window_secs,
                allowed_lateness_secs: c.allowed_lateness_secs,
                dedupe_horizon_secs: c.dedupe_horizon_secs,
            },
            watermark: self.watermark,
            max_event_time: self.max_event_time,
            counters: self.counters,
            dedupe,
            catalog,
            totals,
            rules,
            firing: self
                .firing
                .iter()
                .map(|((rule, group), alert)| FiringAlert {
                    rule: rule.clone(),
                    group: group.clone(),
                    alert: (**alert).clone(),
                })
                .collect(),
            outbox: Vec::new(),
            origin: None,
            file: None,
        }
    }

    /// An engine that continues from `state` under `config` and `rules`.
    ///
    /// Each rule continues from the saved state with its id and definition fingerprint
    /// ([`crate::rules::Rule::fingerprint`]); a new or changed rule starts fresh (`unused` and
    /// `new-principal` then judge keys from the state's latest event time, since they did not
    /// watch before), and a removed rule's state is dropped, each with a [`RestoreNote`]. Limits
    /// come from `config`: a dedupe window over `max_dedupe_ids` or `max_dedupe_objects` is trimmed oldest first, as the
    /// cap does when running; any other saved state over its limit is an error naming every such
    /// limit (nothing is dropped silently). A different `window_secs` is an error.
    pub fn restore(
        config: EngineConfig,
        rules: RuleSet,
        state: EngineState,
    ) -> Result<(Engine, Vec<RestoreNote>), StateError> {
        let path = state.origin();
        if state.format != FORMAT {
            return Err(StateError::NotState {
                path,
                found: format!("format \"{}\", expected \"{FORMAT}\"", state.format),
            });
        }
        if state.version != VERSION {
            return Err(StateError::Incompatible {
                path,
                found: state.version.into(),
                expected: VERSION,
                written_by: Some(state.written_by),
            });
        }
        if state.settings.window_secs != config.window_secs {
            return Err(StateError::Setting {
                path,
                setting: "window_secs",
                saved: state.settings.window_secs,
                current: config.window_secs,
            });
        }
        let EngineState {
            watermark,
            max_event_time,
            counters,
            mut dedupe,
            mut catalog,
            mut totals,
            rules: saved_rules,
            firing,
            ..
        } = state;
        let times = [("watermark", watermark), ("max_event_time", max_event_time)]
            .into_iter()
            .try_for_each(|(what, t)| t.map_or(Ok(()), |t| check_time(what, t)))
            .and_then(|()| catalog.check_times());
        times.map_err(|problem| StateError::Inconsistent {
            path: path.clone(),
            problem,
        })?;
        let mut over = Vec::new();
        let mut exceeded = |limit, rule: Option<&str>, held, configured| {
            over.push(LimitExceeded {
                limit,
                rule: rule.map(str::to_owned),
                held,
                configured,
            })
        };
        for (limit, held) in catalog.restore_limits(config.max_keys, config.max_aliases) {
            let configured = match limit {
                "max_keys" => config.max_keys,
                _ => config.max_aliases,
            };
            exceeded(limit, None, held, configured);
        }
        if let Some(held) = totals.restore_limit(config.max_report_rows) {
            exceeded("max_report_rows", None, held, config.max_report_rows);
        }

        let order: Vec<String> = saved_rules.iter().map(|r| r.rule.clone()).collect();
        let mut saved: BTreeMap<String, SavedRule> = BTreeMap::new();
        for r in saved_rules {
            if saved.contains_key(&r.rule) {
                return Err(StateError::Inconsistent {
                    path,
                    problem: format!("rule \"{}\" is saved twice", r.rule),
                });
            }
            saved.insert(r.rule.clone(), r);
        }

        let limits = config.limits;
        let mut engine = Engine::new(config, rules);
        let mut notes = Vec::new();
        let mut resumed = std::collections::BTreeSet::new();
        for r in &mut engine.rules {
            let id = r.rule.id.clone();
            match saved.remove(&id) {
                Some(s) if s.fingerprint == r.fingerprint() => {
                    for (limit, held) in s.over_limits(&limits) {
                        let configured = match limit {
                            "max_principals_per_key" => limits.max_principals_per_key,
                            _ => limits.max_groups_per_rule,
                        };
                        exceeded(limit, Some(&id), held, configured);
                    }
                    r.resume(s).map_err(|problem| StateError::Inconsistent {
                        path: path.clone(),
                        problem,
                    })?;
                    resumed.insert(id);
                    continue;
                }
                Some(_) => notes.push(RestoreNote::ChangedRule { rule: id }),
                None => notes.push(RestoreNote::NewRule { rule: id }),
            }
            if let Some(t) = max_event_time {
                r.watch_from(t);
            }
        }
        for id in order {
            if let Some(s) = saved.remove(&id) {
                notes.push(RestoreNote::RemovedRule {
                    firing: s.firing(),
                    rule: id,
                });
            }
        }
        if !over.is_empty() {
            return Err(StateError::OverLimits { path, over });
        }

        let (max_dedupe_ids, max_dedupe_objects) = (
            engine.config.max_dedupe_ids,
            engine.config.max_dedupe_objects,
        );
        let (ids, objects) = dedupe.restore_limits(max_dedupe_ids, max_dedupe_objects);
        if ids > 0 {
            notes.push(RestoreNote::DedupeTrimmed {
                forgotten: ids,
                max_dedupe_ids,
            });
        }
        if objects > 0 {
            notes.push(RestoreNote::DedupeObjectsTrimmed {
                forgotten: objects,
                max_dedupe_objects,
            });
        }
        // Inventory keys come from the current rules; those the catalogue already knows are done.
        engine.inventory.retain(|k| catalog.get(k).is_none());
        engine.dedupe = dedupe;
        engine.catalog = catalog;
        engine.totals = totals;
        engine.counters = counters;
        engine.watermark = watermark;
        engine.max_event_time = max_event_time;
        // Firing alerts continue with their rule; a changed or removed rule's are dropped with it.
        engine.firing = firing
            .into_iter()
            .filter(|f| resumed.contains(&f.rule))
            .map(|f| ((f.rule, f.group), std::sync::Arc::new(f.alert)))
            .collect();
        Ok((engine, notes))
    }
}

#[cfg(test)]
mod tests;
