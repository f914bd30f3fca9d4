//! Durable engine state: the versioned state-file format, atomic save, and load with errors that
//! name the file and the way out.
//!
//! A state file is one JSON object. Its first fields identify it (`format`, `version`,
//! `written_by`, `saved_at_event_time`); the rest is the engine's long-horizon state (dedupe window,
//! key catalogue, totals, counters, watermark, and each rule's windows, baselines, principals and
//! firing alerts, keyed by rule id and definition fingerprint), and the live service's outbox:
//! the alerts each sink had not yet delivered. [`load`] checks the identifying
//! fields before it reads the rest, so a file from another version is reported as such, not as
//! garbage. [`Engine::snapshot`](crate::engine::Engine::snapshot) makes an [`EngineState`];
//! [`Engine::restore`](crate::engine::Engine::restore) continues from one.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aggregate::{Dedupe, KeyCatalog};
use crate::rules::SavedRule;
use crate::totals::{EngineCounters, Totals};

/// The `format` field of every state file.
pub const FORMAT: &str = "kmswatch.state";
/// The state format this build writes; bumped on any change (2: the totals keep the report's
/// facts: key facts, daily usage, aliases, the lifecycle log; 3: the outbox of undelivered
/// alerts; 4: the totals' tables keyed by interned names, dedupe remembers folded objects and
/// call ids as 64-bit hashes).
pub const VERSION: u32 = 4;
/// The oldest format this build still reads. Versions 2 and 3 keyed the totals by joined strings:
/// they are refused with the way out (rebuild the state with a replay, or run the build that wrote
/// it).
pub const OLDEST_READABLE: u32 = 4;
/// This build, as written in `written_by`.
pub const WRITTEN_BY: &str = concat!("kmswatch ", env!("CARGO_PKG_VERSION"));

/// Everything an engine has learned, as saved in a state file. Its own versioned type, separate
/// from the alert and summary schemas; the body is private to the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineState {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] of the build that wrote it.
    pub version: u32,
    /// `kmswatch <version>` that wrote it.
    pub written_by: String,
    /// The latest event time folded in (RFC 3339), for people and scripts looking at the file.
    pub saved_at_event_time: Option<String>,
    /// Settings the state only makes sense under.
    pub(crate) settings: SavedSettings,
    pub(crate) watermark: Option<i64>,
    pub(crate) max_event_time: Option<i64>,
    pub(crate) counters: EngineCounters,
    pub(crate) dedupe: Dedupe,
    pub(crate) catalog: KeyCatalog,
    pub(crate) totals: Totals,
    pub(crate) rules: Vec<SavedRule>,
    /// The alerts firing when the state was saved (alert schema), by rule and group.
    #[serde(default)]
    pub(crate) firing: Vec<FiringAlert>,
    /// The alerts each sink of the live service had not yet delivered when the state was saved,
    /// delivered after a restart (at least once). Empty from replay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<SinkOutbox>,
    /// The file it was loaded from, for error messages; not saved.
    #[serde(skip)]
    pub(crate) origin: Option<PathBuf>,
}

/// An alert firing when the state was saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FiringAlert {
    pub rule: String,
    /// The group as JSON (`Alert::group_id`).
    pub group: String,
    pub alert: serde_json::Value,
}

/// The undelivered alerts of one sink, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkOutbox {
    /// The sink, as in the `sink` label: `jsonl`, `alertmanager[i]`, `webhook[i]`.
    pub sink: String,
    /// Each alert exactly as the sink would deliver it (alert-schema JSON).
    pub alerts: Vec<Box<serde_json::value::RawValue>>,
}

/// Engine settings at the time of saving. `window_secs` must match on restore (windows would not
/// line up); the others are informational and may change.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavedSettings {
    pub window_secs: i64,
    pub allowed_lateness_secs: i64,
    pub dedupe_horizon_secs: i64,
}

impl EngineState {
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    pub fn max_event_time(&self) -> Option<i64> {
        self.max_event_time
    }

    pub fn counters(&self) -> EngineCounters {
        self.counters
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Saved rule states, in the order of the rule set they were saved under.
    pub fn rules(&self) -> &[SavedRule] {
        &self.rules
    }

    /// The file this state was loaded from, or a placeholder for one made in memory.
    pub fn origin(&self) -> PathBuf {
        self.origin
            .clone()
            .unwrap_or_else(|| PathBuf::from("(unsaved state)"))
    }
}

/// A limit the saved state holds more entries than.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: &'static str,
    /// The rule whose state is over, for per-rule limits.
    pub rule: Option<String>,
    pub held: usize,
    pub configured: usize,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {} but ", self.limit, self.configured)?;
        match &self.rule {
            Some(r) => write!(f, "rule \"{r}\" holds {}", self.held),
            None => write!(f, "the state holds {}", self.held),
        }
    }
}

const REBUILD: &str =
    "move it aside and rebuild it with `kmswatch replay --state-out` over recent logs";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No file at the path: the caller decides whether that means "start fresh".
    #[error("{}: state file does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}:{col}: state file is corrupt or truncated: {message}; {REBUILD}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{}: not a kmswatch state file ({found}); give a file written by `kmswatch replay --state-out` or by the service", path.display())]
    NotState { path: PathBuf, found: String },
    #[error(
        "{}: state format version {found} is not supported by {WRITTEN_BY} (expects {expected}); {REBUILD}, or run the kmswatch version that wrote it{}",
        path.display(),
        written_by.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
    )]
    Incompatible {
        path: PathBuf,
        found: u64,
        expected: u32,
        written_by: Option<String>,
    },
    #[error("{}: the state was built with {setting} {saved} but the configuration has {current}: its windows would not line up; set {setting} back to {saved}, or {REBUILD} using {setting} {current}", path.display())]
    Setting {
        path: PathBuf,
        setting: &'static str,
        saved: i64,
        current: i64,
    },
    #[error(
        "{}: the state holds more than the configured limits allow: {}; raise each limit to at least what is held, or {REBUILD} under the new limits",
        path.display(),
        over.iter().map(|o| o.to_string()).collect::<Vec<_>>().join("; ")
    )]
    OverLimits {
        path: PathBuf,
        over: Vec<LimitExceeded>,
    },
    #[error("{}: state file is inconsistent: {problem}; {REBUILD}", path.display())]
    Inconsistent { path: PathBuf, problem: String },
}

/// Writes `state` to `path` atomically: a temporary file `<path>.tmp` in the same directory is
/// written and fsynced, renamed over `path`, and the directory is fsynced. On any failure the old
/// file (if any) is untouched and the temporary file is removed. One writer per path.
pub fn save(path: &Path, state: &EngineState) -> Result<(), StateError> {
    write_atomically(path, |w| {
        serde_json::to_writer(&mut *w, state).map_err(io::Error::from)?;
        w.write_all(b"\n")
    })
}

/// Reads a state file, checking `format` and `version` before the body.
pub fn load(path: &Path) -> Result<EngineState, StateError> {
    let bytes = fs::read(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => StateError::Missing {
            path: path.to_owned(),
        },
        _ => StateError::Io {
            path: path.to_owned(),
            action: "reading".into(),
            source: e,
        },
    })?;
    check_header(path, &bytes)?;
    let mut state: EngineState = serde_json::from_slice(&bytes).map_err(|e| corrupt(path, &e))?;
    // An older readable version is this one with parts missing (read as empty): upgraded.
    state.version = VERSION;
    state.origin = Some(path.to_owned());
    Ok(state)
}

/// The identifying fields, read without building the body (other fields are skipped).
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
    written_by: Option<serde_json::Value>,
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let not_state = |found: String| StateError::NotState {
        path: path.to_owned(),
        found,
    };
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => {}
        Some(_) => return Err(not_state("not a JSON object".into())),
    }
    let h: Header = serde_json::from_slice(bytes).map_err(|e| corrupt(path, &e))?;
    match &h.format {
        Some(serde_json::Value::String(f)) if f == FORMAT => {}
        Some(other) => return Err(not_state(format!("format {other}, expected \"{FORMAT}\""))),
        None => return Err(not_state("no \"format\" field".into())),
    }
    match h.version.as_ref().and_then(|v| v.as_u64()) {
        Some(v) if (u64::from(OLDEST_READABLE)..=u64::from(VERSION)).contains(&v) => Ok(()),
        Some(found) => Err(StateError::Incompatible {
            path: path.to_owned(),
            found,
            expected: VERSION,
            written_by: h.written_by.and_then(|w| w.as_str().map(str::to_owned)),
        }),
        None => Err(not_state(format!(
            "format \"{FORMAT}\" but no integer \"version\" field"
        ))),
    }
}

fn corrupt(path: &Path, e: &serde_json::Error) -> StateError {
    let text = e.to_string();
    // serde_json appends the position, which the variant carries separately.
    let message = match text.rsplit_once(" at line ") {
        Some((m, _)) => m.to_owned(),
        None => text,
    };
    StateError::Corrupt {
        path: path.to_owned(),
        line: e.line(),
        col: e.column(),
        message,
    }
}

/// `<path>.tmp`, next to `path`.
fn tmp_path(path: &Path) -> Result<PathBuf, StateError> {
    let name = path.file_name().ok_or_else(|| StateError::Io {
        path: path.to_owned(),
        action: "writing".into(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
    })?;
    let mut tmp = name.to_owned();
    tmp.push(".tmp");
    Ok(path.with_file_name(tmp))
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), StateError> {
    let tmp = tmp_path(path)?;
    let io_err = |action: String, source| StateError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    let written = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(format!("writing {}", tmp.display()), e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(format!("renaming {} over it", tmp.display()), e));
    }
    sync_dir(path).map_err(|e| io_err("syncing its directory".into(), e))
}

/// Makes the rename durable.
#[cfg(unix)]
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests;
