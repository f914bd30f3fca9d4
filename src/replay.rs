//! The replay driver: a directory source, parallel decoding, and an in-order fold into the engine.
//!
//! Objects are decoded on the rayon pool a batch at a time while the previous batch is folded into
//! the engine on the calling thread, always in canonical order, so the output does not depend on
//! how files were found or how threads were scheduled.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;

use crate::alerts::{Alert, AlertState};
use crate::decode::{decode_object, DecodeLimits, DecodedObject, ObjectError};
use crate::engine::{Engine, EngineConfig};
use crate::report::{Failure, InputStats, Summary};
use crate::rules::RuleSet;
use crate::sources::{walk, ObjectRef};

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
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            inputs: Vec::new(),
            engine: EngineConfig::default(),
            decode: DecodeLimits::default(),
            batch_objects: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("writing alerts: {0}")]
    Sink(#[source] std::io::Error),
}

/// The outcome of a replay.
pub struct Replay {
    pub summary: Summary,
    pub engine: Engine,
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
    let found = walk(&opts.inputs);
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
    let mut engine = Engine::new(opts.engine.clone(), rules);
    let mut per_rule: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut alerts = Vec::new();
    let limits = opts.decode;
    let batch = opts.batch_objects.max(1);
    let objects: Vec<ObjectRef> = found.objects.into_iter().map(|(o, _)| o).collect();

    std::thread::scope(|scope| -> Result<(), ReplayError> {
        let (tx, rx) = sync_channel::<Vec<(ObjectRef, Read)>>(1);
        let objects = &objects;
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
                match read {
                    Read::Failed { kind, error } => {
                        record_failure(&mut input, obj.to_string(), kind, error)
                    }
                    Read::Decoded(d) => {
                        fold_stats(&mut input, &obj, &d);
                        for call in d.calls {
                            engine.ingest(call, &mut alerts);
                        }
                        engine.end_object(&mut alerts);
                    }
                }
                emit(&mut alerts, &mut per_rule, &mut on_alert)?;
            }
        }
        Ok(())
    })?;
    engine.finish(&mut alerts);
    emit(&mut alerts, &mut per_rule, &mut on_alert)?;
    let summary = Summary::build(input, &engine, &per_rule);
    Ok(Replay { summary, engine })
}

fn emit(
    alerts: &mut Vec<Alert>,
    per_rule: &mut BTreeMap<String, (u64, u64)>,
    on_alert: &mut impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<(), ReplayError> {
    for a in alerts.drain(..) {
        let e = per_rule.entry(a.rule.clone()).or_default();
        match a.state {
            AlertState::Firing => e.0 += 1,
            AlertState::Resolved => e.1 += 1,
        }
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
