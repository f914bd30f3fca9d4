//! The fold's engine and its checkpoints: every call that changes the engine is recorded in the
//! state journal as it is made, so a periodic save commits what changed since the last one (a
//! delta); the whole state file is written when the journal has outgrown its bounds, after a rule
//! reload, and at shutdown.
//!
//! [`Journaled`] hands out the engine only by shared reference: a mutating call can only be made
//! through its own methods, which record it.

use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use tracing::warn;

use crate::aggregate::ObjectId;
use crate::alerts::Alert;
use crate::decode::KmsCall;
use crate::engine::journal::{JournalPosition, Op};
use crate::engine::{Engine, Folded};
use crate::state::journal::DeltaWriter;
use crate::state::{self, SinkOutbox, StateError};

/// Where and how often state is saved, and when a save writes the whole file.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    pub path: PathBuf,
    pub every: Duration,
    /// A save writes the whole state file once the deltas since the last one would reach this
    /// percentage of its size (they are folded again on load, so they bound the load time).
    pub compact_percent: u64,
    /// ... or once there are this many deltas.
    pub max_deltas: u32,
}

impl Checkpointing {
    /// The defaults of `[state]`.
    pub fn new(path: PathBuf, every: Duration) -> Self {
        Checkpointing {
            path,
            every,
            compact_percent: 50,
            max_deltas: 100,
        }
    }
}

/// What a save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// No state file is configured.
    Nothing,
    /// The whole state file.
    Whole { bytes: u64 },
    /// A delta of `ops` operations; `journal_bytes` is the size of all deltas since the file.
    Delta {
        ops: u64,
        bytes: u64,
        journal_bytes: u64,
    },
}

pub struct Journaled {
    engine: Engine,
    /// The cap last set: not in the state file, so each delta starts by setting it.
    cap: Option<i64>,
    journal: Option<Journal>,
}

struct Journal {
    checkpoint: Checkpointing,
    /// The state file and its deltas; `None` until a whole save.
    position: Option<JournalPosition>,
    /// The delta being written; `None` when what the engine did since the last save is not all
    /// recorded (none started yet, a write failed, the engine was replaced): the next save is
    /// whole.
    writer: Option<DeltaWriter>,
}

impl Deref for Journaled {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Journaled {
    /// `engine` as it stands after the state file and deltas at `position` (`None`: not saved
    /// there yet), saved per `checkpoint` (`None`: never).
    pub fn new(
        engine: Engine,
        checkpoint: Option<Checkpointing>,
        position: Option<JournalPosition>,
    ) -> Self {
        let mut j = Journaled {
            engine,
            cap: None,
            journal: checkpoint.map(|checkpoint| Journal {
                checkpoint,
                position,
                writer: None,
            }),
        };
        if let Some(journal) = &j.journal {
            if let Some(p) = position {
                // Deltas after the chain name an older state file: never read, removed.
                state::journal::remove_deltas(&journal.checkpoint.path, p.deltas);
            }
        }
        j.start_delta();
        j
    }

    /// How often to save; `None` without a state file.
    pub fn every(&self) -> Option<Duration> {
        self.journal.as_ref().map(|j| j.checkpoint.every)
    }

    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// Replaces the engine (a rule reload): the next save is whole.
    pub fn replace(&mut self, engine: Engine) {
        self.engine = engine;
        self.engine.cap_watermark(self.cap);
        if let Some(j) = &mut self.journal {
            j.writer = None;
        }
    }

    /// [`Engine::begin_object`], recorded.
    pub fn begin_object(&mut self, latest: Option<i64>, identity: Option<ObjectId>) -> bool {
        self.record(&Op::Begin { latest, identity });
        self.engine.begin_object(latest, identity)
    }

    /// [`Engine::fold`], recorded.
    pub fn fold(&mut self, call: &KmsCall, out: &mut Vec<Alert>) -> Folded {
        self.record(&Op::Call(call));
        self.engine.fold(call, out)
    }

    /// [`Engine::end_object`], recorded.
    pub fn end_object(&mut self, out: &mut Vec<Alert>) {
        self.record(&Op::End);
        self.engine.end_object(out);
    }

    /// [`Engine::advance_on_event_time`], recorded.
    pub fn advance_on_event_time(&mut self, out: &mut Vec<Alert>) {
        self.record(&Op::Advance);
        self.engine.advance_on_event_time(out);
    }

    /// [`Engine::advance_to`], recorded.
    pub fn advance_to(&mut self, watermark: i64, out: &mut Vec<Alert>) {
        self.record(&Op::AdvanceTo(watermark));
        self.engine.advance_to(watermark, out);
    }

    /// [`Engine::cap_watermark`], recorded when it changes.
    pub fn cap_watermark(&mut self, cap: Option<i64>) {
        if cap != self.cap {
            self.cap = cap;
            self.record(&Op::Cap(cap));
        }
        self.engine.cap_watermark(cap);
    }

    fn record(&mut self, op: &Op<&KmsCall>) {
        let Some(j) = &mut self.journal else { return };
        let Some(w) = &mut j.writer else { return };
        if let Err(error) = w.append(op) {
            warn!(%error, "the state journal could not be written; the next save writes the whole state file");
            j.writer = None;
        }
    }

    /// Starts the next delta after the journal's position, beginning with the current cap.
    fn start_delta(&mut self) {
        let Some(j) = &mut self.journal else { return };
        let Some(p) = j.position else { return };
        match DeltaWriter::create(&j.checkpoint.path, p.base.checksum, p.deltas + 1) {
            Ok(w) => j.writer = Some(w),
            Err(error) => {
                warn!(%error, "the state journal could not be started; the next save writes the whole state file");
                return;
            }
        }
        let cap = self.cap;
        self.record(&Op::Cap(cap));
    }

    /// Saves state with the sinks' outbox: a delta when the journal holds everything since the
    /// last save and stays within its bounds, else (or when `whole`) the whole file. After an
    /// error nothing new is on disk, and the next save is whole.
    pub fn save(&mut self, outbox: Vec<SinkOutbox>, whole: bool) -> Result<Saved, StateError> {
        let Some(j) = &mut self.journal else {
            return Ok(Saved::Nothing);
        };
        let c = &j.checkpoint;
        let delta = match (&j.position, &j.writer) {
            (Some(p), Some(w)) if !whole => {
                let journal = p.bytes + w.bytes();
                let limit = p.base.bytes.saturating_mul(c.compact_percent) / 100;
                (journal < limit && w.seq() <= c.max_deltas).then_some(*p)
            }
            _ => None,
        };
        if let Some(mut p) = delta {
            let w = j.writer.take().expect("checked");
            let committed = w.commit(&outbox)?;
            p.deltas = committed.seq;
            p.ops += committed.ops;
            p.bytes += committed.bytes;
            j.position = Some(p);
            self.start_delta();
            return Ok(Saved::Delta {
                ops: committed.ops,
                bytes: committed.bytes,
                journal_bytes: p.bytes,
            });
        }
        // The delta in progress is superseded by the whole file (its temporary file goes).
        j.writer = None;
        let path = j.checkpoint.path.clone();
        let file = self.engine.with_snapshot(|s| {
            s.outbox = outbox;
            state::save(&path, s)
        })?;
        if let Some(j) = &mut self.journal {
            j.position = Some(JournalPosition::at(file));
        }
        self.start_delta();
        Ok(Saved::Whole { bytes: file.bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::rules::test_support::{decrypt, rule};
    use crate::rules::{RuleKind, RuleSet};

    const T0: i64 = 1_772_409_600;

    fn rules() -> RuleSet {
        RuleSet {
            rules: vec![rule("t", RuleKind::Threshold { min_count: 2 }, &["key"])],
        }
    }

    /// Folds `n` calls on key `k` as one object, the way the fold does.
    fn object(j: &mut Journaled, first: u64, n: u64, time: i64) {
        let mut out = Vec::new();
        j.begin_object(Some(time + 60), None);
        for i in first..first + n {
            let mut c = decrypt("arn:aws:kms:us-east-1:111111111111:key/k", "p");
            c.time = time;
            c.dedupe_id = i;
            c.event_id = format!("e{i}").into();
            j.fold(&c, &mut out);
        }
        j.cap_watermark(Some(time));
        j.end_object(&mut out);
    }

    fn resumed_calls(path: &std::path::Path) -> (u64, JournalPosition) {
        let r = Engine::resume(EngineConfig::default(), rules(), path).unwrap();
        (r.engine.counters().kms_calls, r.position)
    }

    #[test]
    fn saves_are_deltas_after_the_first_until_the_journal_outgrows_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        // A state this small is smaller than a few deltas: allow ten times its size.
        let checkpoint = Checkpointing {
            compact_percent: 1000,
            ..Checkpointing::new(path.clone(), Duration::ZERO)
        };
        let engine = Engine::new(EngineConfig::default(), rules());
        let mut j = Journaled::new(engine, Some(checkpoint), None);
        object(&mut j, 0, 3, T0);
        // Nothing on disk yet: the first save is whole.
        assert!(matches!(j.save(Vec::new(), false), Ok(Saved::Whole { .. })));
        object(&mut j, 10, 2, T0 + 10);
        let Ok(Saved::Delta { ops, .. }) = j.save(Vec::new(), false) else {
            panic!("not a delta")
        };
        // The cap, then begin, two calls, the new cap and the end.
        assert_eq!(ops, 6);
        object(&mut j, 20, 1, T0 + 20);
        assert!(matches!(j.save(Vec::new(), false), Ok(Saved::Delta { .. })));
        object(&mut j, 30, 4, T0 + 30);
        // A crash now: the calls since the last save are not on disk (their messages were not
        // deleted, so they come back).
        let (calls, position) = resumed_calls(&path);
        assert_eq!((calls, position.deltas), (6, 2));
        // A restarted service continues the chain.
        let r = Engine::resume(EngineConfig::default(), rules(), &path).unwrap();
        let checkpoint = Checkpointing {
            compact_percent: 1,
            ..Checkpointing::new(path.clone(), Duration::ZERO)
        };
        let mut j = Journaled::new(r.engine, Some(checkpoint), Some(r.position));
        object(&mut j, 30, 4, T0 + 30);
        // Past 1% of the state file: whole, and the deltas go.
        assert!(matches!(j.save(Vec::new(), false), Ok(Saved::Whole { .. })));
        let (calls, position) = resumed_calls(&path);
        assert_eq!((calls, position.deltas), (10, 0));
        // The state file, and the next delta being written.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["state", "state.delta-000001.tmp"]);
    }

    #[test]
    fn after_a_rule_reload_or_a_failed_save_the_next_save_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let checkpoint = Checkpointing::new(path.clone(), Duration::ZERO);
        let engine = Engine::new(EngineConfig::default(), rules());
        let mut j = Journaled::new(engine, Some(checkpoint), None);
        object(&mut j, 0, 1, T0);
        assert!(matches!(j.save(Vec::new(), false), Ok(Saved::Whole { .. })));
        let snapshot = j.snapshot();
        let (engine, _) = Engine::restore(EngineConfig::default(), rules(), snapshot).unwrap();
        j.replace(engine);
        object(&mut j, 1, 1, T0 + 1);
        assert!(matches!(j.save(Vec::new(), false), Ok(Saved::Whole { .. })));
        object(&mut j, 2, 1, T0 + 2);
        assert!(matches!(j.save(Vec::new(), true), Ok(Saved::Whole { .. })));

        // The directory goes: the delta cannot be committed, nothing is saved.
        object(&mut j, 3, 1, T0 + 3);
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert!(j.save(Vec::new(), false).is_err());
        std::fs::create_dir(dir.path()).unwrap();
        assert!(matches!(j.save(Vec::new(), false), Ok(Saved::Whole { .. })));
        assert_eq!(resumed_calls(&path).0, 4);
    }
}
