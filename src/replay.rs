//! The replay driver: a directory source, parallel decoding, and an in-order fold into the engine.
//!
//! Objects are decoded on the rayon pool a batch at a time while the previous batch is folded into
//! the engine on the calling thread, always in canonical order, so the output does not depend on
//! how files were found or how threads were scheduled. A replay may start from a saved state and
//! save its own (before the end-of-input close), so a live service can continue from it.

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

use crate::alerts::Alert;
use crate::decode::{decode_object, DecodeLimits, DecodedObject, ObjectError};
use crate::engine::{Engine, EngineConfig, RestoreNote};
use crate::report::{Failure, InputStats, Summary};
use crate::rules::RuleSet;
use crate::sources::{walk, ObjectRef};
use crate::state::{self, StateError};

/// Most record errors listed by name in a summary; the rest are counted.
const MAX_LISTED_MALFORMED: usize = 100;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Directories (walked recursively) or files.
    pub inputs: Vec<PathBuf>,
    pub engine: EngineConfig,
    pub decode: DecodeLimits,
    /// Objects decoded ahead of the fold, in one batch (bounds memory: at most two batches of
    /// decoded calls exist at once).
    pub batch_objects: usize,
    /// Continue from this state file instead of an empty engine (`--state-in`).
    pub state_in: Option<PathBuf>,
    /// Write the engine state here after the last object, before the end-of-input close
    /// (`--state-out`): the state a live service would hold, for `serve` to continue from.
    pub state_out: Option<PathBuf>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            inputs: Vec::new(),
            engine: EngineConfig::default(),
            decode: DecodeLimits::default(),
            batch_objects: 64,
            state_in: None,
            state_out: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("writing alerts: {0}")]
    Sink(#[source] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The outcome of a replay.
pub struct Replay {
    pub summary: Summary,
    pub engine: Engine,
    /// What restoring `state_in` noted (changed, new and removed rules).
    pub notes: Vec<RestoreNote>,
}

impl Replay {
    /// True when any object or record could not be used (replay exits non-zero then).
    pub fn had_failures(&self) -> bool {
        self.summary.input.objects_failed > 0 || self.summary.input.decoded.malformed_records > 0
    }
}

enum Read {
    Decoded(DecodedObject),
    Failed { kind: &'static str, error: String },
}

fn read_and_decode(obj: &ObjectRef, limits: &DecodeLimits) -> Read {
    let bytes = match obj {
        ObjectRef::File(p) => match std::fs::read(p) {
            Ok(b) => b,
            Err(e) => {
                return Read::Failed {
                    kind: "read_error",
                    error: e.to_string(),
                }
            }
        },
        ObjectRef::S3 { .. } => {
            return Read::Failed {
                kind: "unsupported",
                error: "replay reads local files only".into(),
            }
        }
    };
    match decode_object(&bytes, limits) {
        Ok(d) => Read::Decoded(d),
        Err(e) => Read::Failed {
            kind: ObjectError::kind(&e),
            error: e.to_string(),
        },
    }
}

/// Replays every log object under `opts.inputs` through the rules, calling `on_alert` for each
/// alert in order.
pub fn replay(
    opts: &ReplayOptions,
    rules: RuleSet,
    mut on_alert: impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<Replay, ReplayError> {
    let (objects, mut input) = list_objects(&opts.inputs);
    let (mut engine, notes) = match &opts.state_in {
        Some(path) => Engine::restore(opts.engine.clone(), rules, state::load(path)?)?,
        None => (Engine::new(opts.engine.clone(), rules), Vec::new()),
    };
    fold_objects(&mut engine, &objects, opts, &mut input, &mut on_alert)?;
    if let Some(path) = &opts.state_out {
        state::save(path, &engine.snapshot())?;
    }
    let mut alerts = Vec::new();
    engine.finish(&mut alerts);
    emit(&mut alerts, &mut on_alert)?;
    let summary = Summary::build(input, &engine);
    Ok(Replay {
        summary,
        engine,
        notes,
    })
}

/// The log objects under `inputs` in canonical order, and what the walk counted (files found,
/// skipped, unreadable paths) as the start of a summary's input statistics.
pub fn list_objects(inputs: &[PathBuf]) -> (Vec<ObjectRef>, InputStats) {
    let found = walk(inputs);
    let mut input = InputStats {
        files_found: found.files_found,
        ..InputStats::default()
    };
    input.skipped = found
        .skipped
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    for (path, e) in &found.errors {
        record_failure(
            &mut input,
            path.display().to_string(),
            "read_error",
            e.to_string(),
        );
    }
    let objects = found.objects.into_iter().map(|(o, _)| o).collect();
    (objects, input)
}

/// Reads and decodes `objects` on the rayon pool (`opts.batch_objects` at a time, one batch ahead)
/// and folds them into `engine` in the given order, each whole object followed by
/// [`Engine::end_object`]. Counts what was read in `input`; `on_alert` gets each alert in order.
/// Does not finish the engine: more objects, a snapshot, or [`Engine::finish`] may follow.
pub fn fold_objects(
    engine: &mut Engine,
    objects: &[ObjectRef],
    opts: &ReplayOptions,
    input: &mut InputStats,
    mut on_alert: impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<(), ReplayError> {
    let mut alerts = Vec::new();
    let limits = opts.decode;
    let batch = opts.batch_objects.max(1);
    std::thread::scope(|scope| -> Result<(), ReplayError> {
        let (tx, rx) = sync_channel::<Vec<(ObjectRef, Read)>>(1);
        scope.spawn(move || {
            for chunk in objects.chunks(batch) {
                let decoded: Vec<(ObjectRef, Read)> = chunk
                    .par_iter()
                    .map(|o| (o.clone(), read_and_decode(o, &limits)))
                    .collect();
                if tx.send(decoded).is_err() {
                    return; // the fold stopped (sink error)
                }
            }
        });
        for decoded in rx {
            for (obj, read) in decoded {
                input.log_objects += 1;
                input.deliveries.record(&obj.to_string());
                match read {
                    Read::Failed { kind, error } => {
                        record_failure(input, obj.to_string(), kind, error)
                    }
                    Read::Decoded(d) => {
                        fold_stats(input, &obj, &d);
                        for call in d.calls {
                            engine.ingest(call, &mut alerts);
                        }
                        engine.end_object(&mut alerts);
                    }
                }
                emit(&mut alerts, &mut on_alert)?;
            }
        }
        Ok(())
    })
}

fn emit(
    alerts: &mut Vec<Alert>,
    on_alert: &mut impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<(), ReplayError> {
    for a in alerts.drain(..) {
        on_alert(&a).map_err(ReplayError::Sink)?;
    }
    Ok(())
}

fn record_failure(input: &mut InputStats, object: String, kind: &str, error: String) {
    input.objects_failed += 1;
    *input.failed_by_kind.entry(kind.to_owned()).or_default() += 1;
    input.failures.push(Failure {
        object,
        kind: kind.to_owned(),
        error,
    });
}

fn fold_stats(input: &mut InputStats, obj: &ObjectRef, d: &DecodedObject) {
    input.decoded.add(&d.stats);
    for e in &d.record_errors {
        if input.malformed.len() < MAX_LISTED_MALFORMED {
            input.malformed.push(Failure {
                object: obj.to_string(),
                kind: "malformed_record".into(),
                error: e.to_string(),
            });
        }
    }
}
