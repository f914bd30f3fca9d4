//! The engine's inputs as journal operations ([`Op`]), folded again on load ([`Engine::resume`]):
//! a state file plus its deltas ([`crate::state::journal`]) is the engine that wrote them.
//!
//! The engine is a deterministic function of its inputs: the calls, the object boundaries and
//! the watermark moves its driver makes (the wall clock enters only through those). A driver
//! that records every mutating call it makes, in order, can therefore save what changed since
//! the last save as those operations instead of the whole state; the state after folding them
//! again is the one it had.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineConfig, RestoreNote};
use crate::aggregate::ObjectId;
use crate::alerts::Alert;
use crate::decode::KmsCall;
use crate::rules::RuleSet;
use crate::state::{self, journal, SavedFile, SinkOutbox, StateError};

/// One mutating call on an [`Engine`], with its arguments. `C` is the call: borrowed to write,
/// owned to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op<C> {
    /// [`Engine::begin_object`].
    Begin {
        latest: Option<i64>,
        identity: Option<ObjectId>,
    },
    /// [`Engine::fold`].
    Call(C),
    /// [`Engine::end_object`].
    End,
    /// [`Engine::advance_on_event_time`].
    Advance,
    /// [`Engine::advance_to`].
    AdvanceTo(i64),
    /// [`Engine::cap_watermark`].
    Cap(Option<i64>),
}

impl Engine {
    /// Makes the call `op` records.
    pub fn apply(&mut self, op: Op<KmsCall>, out: &mut Vec<Alert>) {
        match op {
            Op::Begin { latest, identity } => {
                self.begin_object(latest, identity);
            }
            Op::Call(call) => {
                self.fold(&call, out);
            }
            Op::End => self.end_object(out),
            Op::Advance => self.advance_on_event_time(out),
            Op::AdvanceTo(w) => self.advance_to(w, out),
            Op::Cap(cap) => self.cap_watermark(cap),
        }
    }

    /// The engine saved at `path`: its state file restored under `config` and `rules`
    /// ([`Engine::restore`]), then the file's journal folded in.
    ///
    /// Alerts the journal raises again from rules that continue from the state were raised when
    /// it was written (and delivered, or kept in the outbox): they are dropped. A new or changed
    /// rule's alerts are new verdicts on the journal's calls: they are returned in
    /// [`Resumed::alerts`].
    pub fn resume(
        config: EngineConfig,
        rules: RuleSet,
        path: &Path,
    ) -> Result<Resumed, StateError> {
        let mut saved = state::load(path)?;
        let file = saved.file.expect("a loaded state has its file");
        let base_outbox = std::mem::take(&mut saved.outbox);
        let (mut engine, notes) = Engine::restore(config, rules, saved)?;
        let fresh: BTreeSet<&str> = notes
            .iter()
            .filter_map(|n| match n {
                RestoreNote::NewRule { rule } | RestoreNote::ChangedRule { rule } => {
                    Some(rule.as_str())
                }
                _ => None,
            })
            .collect();
        let mut raised = Vec::new();
        let mut alerts = Vec::new();
        let replayed = journal::replay(path, file.checksum, |op: Op<KmsCall>| {
            engine.apply(op, &mut raised);
            alerts.extend(raised.drain(..).filter(|a| fresh.contains(a.rule.as_str())));
        })?;
        let position = JournalPosition {
            base: file,
            deltas: replayed.deltas,
            ops: replayed.ops,
            bytes: replayed.bytes,
        };
        Ok(Resumed {
            outbox: replayed.outbox.unwrap_or(base_outbox),
            engine,
            notes,
            alerts,
            position,
        })
    }
}

/// An engine continued from a state file and its journal.
#[derive(Debug)]
pub struct Resumed {
    pub engine: Engine,
    pub notes: Vec<RestoreNote>,
    /// The alerts the sinks had not delivered at the last save.
    pub outbox: Vec<SinkOutbox>,
    /// Alerts of new or changed rules raised by folding the journal.
    pub alerts: Vec<Alert>,
    pub position: JournalPosition,
}

/// Where a state file's journal stands: the file, and the deltas after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalPosition {
    pub base: SavedFile,
    /// Deltas committed after it (the next is `deltas + 1`).
    pub deltas: u32,
    /// Operations in them.
    pub ops: u64,
    /// Their size on disk.
    pub bytes: u64,
}

impl JournalPosition {
    /// A state file just written, with no deltas yet.
    pub fn at(base: SavedFile) -> Self {
        JournalPosition {
            base,
            deltas: 0,
            ops: 0,
            bytes: 0,
        }
    }
}
