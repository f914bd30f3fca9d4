//! The replay driver: directory and S3 prefix sources, parallel reading and decoding, and an
//! in-order fold into the engine.
//!
//! Objects are read and decoded a chunk at a time (S3 objects fetched several at once, decoding
//! on the rayon pool) while the previous chunk is folded into the engine on the calling thread,
//! always in canonical order, so the output does not depend on how files were found or how
//! threads were scheduled. S3 day folders are listed one delivery day at a time, so memory is
//! bounded by a day's objects, not the whole history. A [`Selection`] limits what is read (by
//! the trail layout) and which events are folded (by `eventTime`, exactly). A replay may start
//! from a saved state and save its own (before the end-of-input close), so a live service can
//! continue from it.

mod read;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use indicatif::ProgressBar;

use crate::alerts::Alert;
use crate::decode::{DecodeLimits, DecodedObject};
use crate::engine::{Engine, EngineConfig, RestoreNote};
use crate::report::{Failure, InputStats, SelectionStats, Summary};
use crate::retry::RetryPolicy;
use crate::rules::RuleSet;
use crate::sources::{
    canonical_order_key, delivery_time, parse_log_name, walk, Lister, Listing, ObjectRef, S3Prefix,
    Selection,
};
use crate::state::{self, StateError};
use crate::timefmt::format_rfc3339;
use read::{Read, Reader, S3Reader};

/// Most record errors listed by name in a summary; the rest are counted.
const MAX_LISTED_MALFORMED: usize = 100;

/// One replay input: a local directory or file, or an S3 prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Path(PathBuf),
    S3(S3Prefix),
}

impl Input {
    /// `s3://bucket/prefix` is an S3 prefix; anything else a local path.
    pub fn parse(s: &str) -> Result<Input, String> {
        if s.starts_with("s3://") {
            S3Prefix::parse(s).map(Input::S3)
        } else {
            Ok(Input::Path(s.into()))
        }
    }
}

impl From<PathBuf> for Input {
    fn from(p: PathBuf) -> Input {
        Input::Path(p)
    }
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Path(p) => write!(f, "{}", p.display()),
            Input::S3(p) => write!(f, "{p}"),
        }
    }
}

/// How a replay reaches S3: the SDK's standard chain for credentials and region, with overrides.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Overrides `AWS_ENDPOINT_URL` (moto, LocalStack, MinIO).
    pub endpoint_url: Option<String>,
    /// Overrides the SDK's region chain.
    pub region: Option<String>,
    /// Objects fetched, and listings made, at once.
    pub concurrency: usize,
    /// Keys per ListObjectsV2 page (1 to 1,000).
    pub list_page_size: i32,
    pub retry: RetryPolicy,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint_url: None,
            region: None,
            concurrency: 16,
            list_page_size: 1_000,
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Directories (walked recursively), files and S3 prefixes.
    pub inputs: Vec<Input>,
    /// What to read and fold: a time range of events, accounts and regions of the layout.
    pub selection: Selection,
    pub s3: S3Options,
    pub engine: EngineConfig,
    pub decode: DecodeLimits,
    /// Objects read ahead of the fold, in one chunk (bounds memory: at most two chunks of
    /// fetched bytes and decoded calls exist at once: the one being folded and the next).
    pub batch_objects: usize,
    /// Stored (compressed) bytes of one chunk of a replay with S3 inputs, when the sizes are
    /// known: a chunk ends at `batch_objects` objects or at this many bytes, whichever comes
    /// first (always at least one object). Its objects are fetched at once, so it hides S3's
    /// latency. Decoded calls take about 6 times the compressed size of KMS-heavy logs.
    pub batch_bytes: u64,
    /// The same bound for a replay of local files only, which has no latency to hide: a chunk
    /// need only keep the decoding threads busy while the fold works.
    pub local_batch_bytes: u64,
    /// Continue from this state file instead of an empty engine (`--state-in`).
    pub state_in: Option<PathBuf>,
    /// Write the engine state here after the last object, before the end-of-input close
    /// (`--state-out`): the state a live service would hold, for `serve` to continue from.
    pub state_out: Option<PathBuf>,
    /// Objects and bytes done (hidden unless the caller shows it).
    pub progress: ProgressBar,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            inputs: Vec::new(),
            selection: Selection::default(),
            s3: S3Options::default(),
            engine: EngineConfig::default(),
            decode: DecodeLimits::default(),
            batch_objects: 64,
            batch_bytes: 4 << 20,
            local_batch_bytes: 1 << 20,
            state_in: None,
            state_out: None,
            progress: ProgressBar::hidden(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("writing alerts: {0}")]
    Sink(#[source] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("starting the runtime for S3: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The outcome of a replay.
pub struct Replay {
    /// What was read, as opposed to what the engine made of it.
    pub input: InputStats,
    pub engine: Engine,
    /// What restoring `state_in` noted (changed, new and removed rules).
    pub notes: Vec<RestoreNote>,
    /// What listing S3 took, when there were S3 inputs (not in the summary, which is the same
    /// for the same objects read from disk).
    pub listing: Option<ListingStats>,
}

/// The cost of listing S3: what pruning by the layout saved shows here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingStats {
    pub requests: u64,
    pub objects_listed: u64,
    pub prefixes_pruned: u64,
}

impl Replay {
    /// True when any object or record could not be used (replay exits non-zero then).
    pub fn had_failures(&self) -> bool {
        self.input.objects_failed > 0
            || self.input.decoded.malformed_records > 0
            || self.engine.counters().future_events > 0
    }

    /// The run's summary, borrowing its input and totals.
    pub fn summary(&self) -> Summary<'_> {
        Summary::build(&self.input, &self.engine)
    }
}

/// What to read, in canonical order: objects known already, and S3 day folders to list a
/// delivery day at a time (each day's objects merged with the known ones of that day or before).
struct Plan {
    /// Sorted by canonical order.
    known: Vec<(ObjectRef, u64)>,
    days: BTreeMap<i64, Vec<(String, String)>>,
}

/// Replays every log object under `opts.inputs` through the rules, calling `on_alert` for each
/// alert in order.
pub fn replay(
    opts: &ReplayOptions,
    rules: RuleSet,
    mut on_alert: impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<Replay, ReplayError> {
    // A state the service saved continues with its journal; new or changed rules' verdicts on
    // the journal's calls come out first.
    let (mut engine, notes) = match &opts.state_in {
        Some(path) => {
            let r = Engine::resume(opts.engine.clone(), rules, path)?;
            let mut resumed = r.alerts;
            emit(&mut resumed, &mut on_alert)?;
            (r.engine, r.notes)
        }
        None => (Engine::new(opts.engine.clone(), rules), Vec::new()),
    };
    let local: Vec<PathBuf> = opts
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Path(p) => Some(p.clone()),
            Input::S3(_) => None,
        })
        .collect();
    let remote: Vec<S3Prefix> = opts
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::S3(p) => Some(p.clone()),
            Input::Path(_) => None,
        })
        .collect();
    let (mut known, mut input) = list_local(&local, &opts.selection);
    let mut plan = Plan {
        known: Vec::new(),
        days: BTreeMap::new(),
    };
    let mut listing = None;
    let s3 = if remote.is_empty() {
        None
    } else {
        let reader = s3_reader(&opts.s3)?;
        let lister = Lister {
            client: reader.client.clone(),
            policy: reader.policy,
            concurrency: reader.concurrency,
            page_size: opts.s3.list_page_size,
        };
        let mut l = Listing::default();
        let progress = &opts.progress;
        let on_listed = |n: u64| progress.set_message(format!("listing S3: {n} folders"));
        let found =
            reader
                .runtime
                .block_on(lister.discover(&remote, &opts.selection, &mut l, &on_listed));
        known.extend(found.loose);
        plan.days = found.days;
        listing = Some(add_listing(&mut input, l, &ListingStats::default()));
        Some((reader, lister))
    };
    known.sort_by_cached_key(|(o, _)| order_key(o));
    plan.known = known;
    let reader = Reader {
        s3: s3.as_ref().map(|(r, _)| r),
        limits: opts.decode,
    };
    let lister = s3.as_ref().map(|(_, l)| l);
    let listed = fold_plan(
        &mut engine,
        plan,
        &reader,
        lister,
        opts,
        &mut input,
        &mut on_alert,
    )?;
    if let Some(l) = &mut listing {
        l.requests += listed.requests;
        l.objects_listed += listed.objects_listed;
        l.prefixes_pruned += listed.prefixes_pruned;
    }
    opts.progress.finish_and_clear();
    if let Some(path) = &opts.state_out {
        engine.with_snapshot(|s| state::save(path, s))?;
    }
    let mut alerts = Vec::new();
    engine.finish(&mut alerts);
    emit(&mut alerts, &mut on_alert)?;
    if !opts.selection.is_all() {
        input.selection = Some(SelectionStats::new(&opts.selection, input.outside_range));
    }
    Ok(Replay {
        input,
        engine,
        notes,
        listing,
    })
}

fn s3_reader(o: &S3Options) -> Result<S3Reader, ReplayError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ReplayError::Runtime)?;
    let sdk = runtime.block_on(crate::sources::s3::sdk_config(
        o.region.as_deref(),
        o.endpoint_url.as_deref(),
        Duration::from_secs(120),
    ));
    let client = crate::sources::s3::client(&sdk, o.endpoint_url.as_deref());
    Ok(S3Reader {
        runtime,
        client,
        policy: o.retry,
        concurrency: o.concurrency.max(1),
    })
}

/// The order objects are folded in: by delivery time, name, then where they are.
fn order_key(o: &ObjectRef) -> (i64, String, String) {
    match o {
        ObjectRef::File(p) => canonical_order_key(&p.to_string_lossy()),
        ObjectRef::S3 { key, .. } => {
            let (t, name, _) = canonical_order_key(key);
            (t, name, o.to_string())
        }
    }
}

/// Adds what a listing counted to the input statistics (listing errors are failed objects);
/// returns its cost added to `so_far`.
fn add_listing(input: &mut InputStats, l: Listing, so_far: &ListingStats) -> ListingStats {
    input.files_found += l.files_found;
    for (k, v) in l.skipped {
        *input.skipped.entry(k.to_owned()).or_default() += v;
    }
    for (url, e) in l.errors {
        record_failure(input, url, "list_error", format!("listing failed: {e}"));
    }
    ListingStats {
        requests: so_far.requests + l.requests,
        objects_listed: so_far.objects_listed + l.objects_listed,
        prefixes_pruned: so_far.prefixes_pruned + l.pruned,
    }
}

/// The local log objects under `inputs` that `sel` admits, in canonical order, and what the walk
/// counted (files found, skipped, unreadable paths) as the start of a summary's input statistics.
fn list_local(inputs: &[PathBuf], sel: &Selection) -> (Vec<(ObjectRef, u64)>, InputStats) {
    let found = walk(inputs, sel);
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
    (found.objects, input)
}

/// The log objects under the local `inputs` in canonical order, and what the walk counted.
pub fn list_objects(inputs: &[PathBuf]) -> (Vec<ObjectRef>, InputStats) {
    let (objects, input) = list_local(inputs, &Selection::default());
    (objects.into_iter().map(|(o, _)| o).collect(), input)
}

/// Reads and decodes local `objects` on the rayon pool (`opts.batch_objects` at a time, one chunk
/// ahead) and folds them into `engine` in the given order, each whole object followed by
/// [`Engine::end_object`]. Counts what was read in `input`; `on_alert` gets each alert in order.
/// Does not finish the engine: more objects, a snapshot, or [`Engine::finish`] may follow.
pub fn fold_objects(
    engine: &mut Engine,
    objects: &[ObjectRef],
    opts: &ReplayOptions,
    input: &mut InputStats,
    mut on_alert: impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<(), ReplayError> {
    let plan = Plan {
        known: objects.iter().map(|o| (o.clone(), 0)).collect(),
        days: BTreeMap::new(),
    };
    let reader = Reader {
        s3: None,
        limits: opts.decode,
    };
    fold_plan(engine, plan, &reader, None, opts, input, &mut on_alert).map(|_| ())
}

/// `objects` in order, cut into chunks of at most `max_objects` objects and, past the first
/// object of a chunk, at most `max_bytes` of their sizes.
fn chunks(
    objects: &[(ObjectRef, u64)],
    max_objects: usize,
    max_bytes: u64,
) -> impl Iterator<Item = &[(ObjectRef, u64)]> {
    let mut rest = objects;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = rest[0].1;
        let mut n = 1;
        while n < rest.len().min(max_objects) && bytes.saturating_add(rest[n].1) <= max_bytes {
            bytes = bytes.saturating_add(rest[n].1);
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
#[test]
fn chunks_end_at_the_object_or_byte_bound() {
    let objs: Vec<(ObjectRef, u64)> = [5, 1, 1, 9, 0, 0, 0, 2]
        .into_iter()
        .enumerate()
        .map(|(i, n)| (ObjectRef::File(format!("{i}").into()), n))
        .collect();
    let lens = |max_objects, max_bytes| {
        chunks(&objs, max_objects, max_bytes)
            .map(<[_]>::len)
            .collect::<Vec<_>>()
    };
    // A chunk takes objects while they fit; an object bigger than the bound goes alone.
    assert_eq!(lens(64, 7), [3, 1, 4]);
    assert_eq!(lens(3, 100), [3, 3, 2]);
    assert_eq!(lens(64, 0), [1, 1, 1, 1, 3, 1]);
}

/// What the reading thread hands the fold, in order.
enum Step {
    /// A day's listing: counts for the input statistics, bytes for the progress bar.
    Listed(Listing, u64),
    Chunk(Vec<(ObjectRef, u64, Read)>),
}

/// Folds the plan's objects in canonical order: a reading thread lists each S3 day, merges in
/// the known objects of that day or before, and reads and decodes them up to two chunks ahead of
/// the fold.
fn fold_plan(
    engine: &mut Engine,
    plan: Plan,
    reader: &Reader<'_>,
    lister: Option<&Lister>,
    opts: &ReplayOptions,
    input: &mut InputStats,
    on_alert: &mut impl FnMut(&Alert) -> std::io::Result<()>,
) -> Result<ListingStats, ReplayError> {
    let mut alerts = Vec::new();
    let batch = opts.batch_objects.max(1);
    let batch_bytes = match reader.s3 {
        Some(_) => opts.batch_bytes,
        None => opts.local_batch_bytes,
    };
    let progress = &opts.progress;
    let sel = &opts.selection;
    let mut listed = ListingStats::default();
    progress.set_length(plan.known.iter().map(|(_, n)| n).sum());
    std::thread::scope(|scope| -> Result<(), ReplayError> {
        // One chunk waits while the next is decoded and the fold works on this one, no further.
        // With none waiting (a rendezvous), the decode threads sat idle whenever a chunk's
        // decoding outran its fold, and the fold whenever a chunk's last object held it up: two
        // cores replayed the benchmark set about 10% slower. One more chunk of decoded calls is
        // the memory it costs (on the 1x scale set, no more peak RSS than within the noise).
        let (tx, rx) = sync_channel::<Step>(1);
        scope.spawn(move || {
            let send_chunks = |objects: &[(ObjectRef, u64)]| -> bool {
                chunks(objects, batch, batch_bytes).all(|chunk| {
                    let reads = reader.read_chunk(chunk);
                    let step = chunk
                        .iter()
                        .zip(reads)
                        .map(|((o, n), r)| (o.clone(), *n, r));
                    tx.send(Step::Chunk(step.collect())).is_ok()
                })
            };
            let mut known = plan.known.into_iter().peekable();
            for (day, folders) in plan.days {
                let (Some(lister), Some(s3)) = (lister, reader.s3) else {
                    break;
                };
                let mut l = Listing::default();
                let mut objects = s3.runtime.block_on(lister.list_day(&folders, sel, &mut l));
                let bytes = objects.iter().map(|(_, n)| n).sum();
                if tx.send(Step::Listed(l, bytes)).is_err() {
                    return;
                }
                while let Some(o) = known.next_if(|(o, _)| delivery_day(o) <= day) {
                    objects.push(o);
                }
                objects.sort_by_cached_key(|(o, _)| order_key(o));
                if !send_chunks(&objects) {
                    return; // the fold stopped (sink error)
                }
            }
            let rest: Vec<_> = known.collect();
            send_chunks(&rest);
        });
        for step in rx {
            let chunk = match step {
                Step::Listed(l, bytes) => {
                    progress.inc_length(bytes);
                    listed = add_listing(input, l, &listed);
                    continue;
                }
                Step::Chunk(c) => c,
            };
            for (obj, size, read) in chunk {
                input.log_objects += 1;
                input.deliveries.record(&obj.to_string());
                match read {
                    Read::Failed { kind, error } => {
                        record_failure(input, obj.to_string(), kind, error)
                    }
                    Read::Decoded(d) => {
                        fold_stats(input, &obj, &d);
                        let name = obj.to_string();
                        let delivered = parse_log_name(&name).and_then(|n| n.delivered);
                        let identity = obj.identity(d.stats.compressed_bytes);
                        // An object folded before (another input, an earlier replay) is skipped.
                        let fresh = engine.begin_object(delivered, Some(identity));
                        let before = engine.counters().future_events;
                        for call in d.calls.into_iter().filter(|_| fresh) {
                            if sel.admits_time(call.time) {
                                engine.ingest(call, &mut alerts);
                            } else {
                                input.outside_range += 1;
                            }
                        }
                        let future = engine.counters().future_events - before;
                        if let (Some(at), true) = (delivered, future > 0) {
                            let skew = engine.config().future_skew_secs;
                            record_future(input, name, future, at, skew);
                        }
                        engine.end_object(&mut alerts);
                    }
                }
                progress.inc(size);
                if !progress.is_hidden() {
                    progress.set_message(format!("{} objects", input.log_objects));
                }
                emit(&mut alerts, on_alert)?;
            }
        }
        Ok(())
    })?;
    Ok(listed)
}

/// The delivery day of an object (days since the epoch), from its name; last when unknown.
fn delivery_day(o: &ObjectRef) -> i64 {
    let name = match o {
        ObjectRef::File(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
        ObjectRef::S3 { key, .. } => key.rsplit('/').next().map(str::to_owned),
    };
    name.as_deref()
        .and_then(delivery_time)
        .map_or(i64::MAX, |t| t.div_euclid(86_400))
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

/// Names an object whose events claim to be later than it was delivered.
fn record_future(input: &mut InputStats, object: String, events: u64, delivered: i64, skew: i64) {
    if input.future.len() < MAX_LISTED_MALFORMED {
        input.future.push(Failure {
            object,
            kind: "future_events".into(),
            error: format!(
                "{events} event(s) later than the file's delivery time {} + {skew} s: not folded",
                format_rfc3339(delivered)
            ),
        });
    }
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
