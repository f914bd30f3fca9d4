//! Durable engine state: the versioned state-file format, atomic save, and load with errors that
//! name the file and the way out.
//!
//! A state file is binary (format 5 on):
//!
//! ```text
//! magic     b"kmswatch.state\0"                  15 bytes
//! version   u32, little-endian                  at a fixed offset, read before anything else
//! header    u32 length (LE), then MessagePack   [format, version, written_by, saved_at_event_time]
//! body      zstd frame (level 1) of the         structs as arrays, alerts as their JSON text
//!           MessagePack of `EngineState`
//! checksum  xxh3-64 (LE) of every byte before it
//! ```
//!
//! The body is the engine's long-horizon state (dedupe window, key catalogue, totals, counters,
//! watermark, and each rule's windows, baselines, principals and firing alerts, keyed by rule id
//! and definition fingerprint), and the live service's outbox: the alerts each sink had not yet
//! delivered. [`load`] checks the version before the checksum and the checksum before the body,
//! so a file from another version is reported as such, and a torn or altered one as corrupt, not
//! as garbage. Formats 4 and earlier were one JSON object: refused with the way out.
//! `kmswatch state dump` writes the serde_json rendering of an [`EngineState`] for people.
//! [`Engine::snapshot`](crate::engine::Engine::snapshot) makes an [`EngineState`];
//! [`Engine::restore`](crate::engine::Engine::restore) continues from one.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, Xxh3Default};

use crate::aggregate::{Dedupe, KeyCatalog};
use crate::rules::SavedRule;
use crate::totals::{EngineCounters, Totals};

/// The `format` field of every state file.
pub const FORMAT: &str = "kmswatch.state";
/// The first bytes of every binary state file (format 5 on).
pub const MAGIC: &[u8; 15] = b"kmswatch.state\0";
/// Bytes of the checksum that ends the file.
const CHECKSUM_LEN: usize = 8;
/// Magic, version and header length.
const FIXED_LEN: usize = MAGIC.len() + 8;
/// zstd level of the body: the fastest level; higher ones gain little on a state (measured on
/// the 1M-call scale set: level 3 is no smaller) and cost save time.
const ZSTD_LEVEL: i32 = 1;
/// The state format this build writes; bumped on any change (2: the totals keep the report's
/// facts: key facts, daily usage, aliases, the lifecycle log; 3: the outbox of undelivered
/// alerts; 4: the totals' tables keyed by interned names, dedupe remembers folded objects and
/// call ids as 64-bit hashes; 5: binary instead of JSON).
pub const VERSION: u32 = 5;
/// The oldest format this build still reads. Versions 4 and earlier were JSON: they are refused
/// with the way out (rebuild the state with a replay, or run the build that wrote it).
pub const OLDEST_READABLE: u32 = 5;
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
    pub(crate) firing: Vec<FiringAlert>,
    /// The alerts each sink of the live service had not yet delivered when the state was saved,
    /// delivered after a restart (at least once). Empty from replay.
    pub outbox: Vec<SinkOutbox>,
    /// The file it was loaded from, for error messages; not saved.
    #[serde(skip)]
    pub(crate) origin: Option<PathBuf>,
    /// The loaded file's checksum and size, which name it to its journal ([`journal`]); not saved.
    #[serde(skip)]
    pub(crate) file: Option<SavedFile>,
}

/// A state file as written: its checksum (which the journal's deltas name) and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedFile {
    pub checksum: u64,
    pub bytes: u64,
}

/// An alert firing when the state was saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FiringAlert {
    pub rule: String,
    /// The group as JSON (`Alert::group_id`).
    pub group: String,
    /// Its JSON text in the binary file, itself in a dump.
    #[serde(with = "json_text")]
    pub alert: serde_json::Value,
}

/// The undelivered alerts of one sink, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkOutbox {
    /// The sink, as in the `sink` label: `jsonl`, `alertmanager[i]`, `webhook[i]`.
    pub sink: String,
    /// Each alert exactly as the sink would deliver it (alert-schema JSON): its text in the
    /// binary file, embedded as it is in a dump.
    #[serde(with = "raw_json_list")]
    pub alerts: Vec<Box<serde_json::value::RawValue>>,
}

/// `serde(with)` for a JSON value: its text in binary formats (which cannot read a self-describing
/// value), the value itself in human-readable ones (`state dump`).
mod json_text {
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return v.serialize(s);
        }
        s.serialize_str(&serde_json::to_string(v).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        if d.is_human_readable() {
            return Value::deserialize(d);
        }
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(|e| D::Error::custom(format!("an alert: {e}")))
    }
}

/// `serde(with)` for alerts kept byte for byte: each one's text in binary formats, embedded as it
/// is in human-readable ones.
mod raw_json_list {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(v: &[Box<RawValue>], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return v.serialize(s);
        }
        s.collect_seq(v.iter().map(|r| r.get()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Box<RawValue>>, D::Error> {
        if d.is_human_readable() {
            return Vec::<Box<RawValue>>::deserialize(d);
        }
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|text| {
                RawValue::from_string(text)
                    .map_err(|e| D::Error::custom(format!("an undelivered alert: {e}")))
            })
            .collect()
    }
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
    /// A file of this format that is truncated, altered or does not decode; `message` says what
    /// failed, with a byte offset where there is one.
    #[error("{}: state file is corrupt or truncated: {message}; {REBUILD}", path.display())]
    Corrupt { path: PathBuf, message: String },
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
///
/// The journal deltas of the file it replaces are then removed: they name the old file's
/// checksum, so they would be ignored anyway ([`journal`]).
pub fn save(path: &Path, state: &EngineState) -> Result<SavedFile, StateError> {
    let mut file = None;
    write_atomically(path, |w| {
        file = Some(encode(w, state)?);
        Ok(())
    })?;
    journal::remove_deltas(path, 0);
    Ok(file.expect("written"))
}

/// The identifying fields, first in every file and readable without the body.
#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    written_by: String,
    saved_at_event_time: Option<String>,
}

/// Passes bytes on, counts and hashes them, for the checksum.
struct Hashing<W> {
    inner: W,
    hash: Xxh3Default,
    bytes: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Xxh3Default::new(),
            bytes: 0,
        }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The framing a state file and a journal delta share, up to the body: the magic, the version
/// (u32 LE), the header's length (u32 LE) and the header in MessagePack.
fn write_head(
    out: &mut impl Write,
    magic: &[u8],
    version: u32,
    header: &impl Serialize,
) -> io::Result<()> {
    let header = rmp_serde::to_vec(header).map_err(io::Error::other)?;
    let len = u32::try_from(header.len()).map_err(io::Error::other)?;
    out.write_all(magic)?;
    out.write_all(&version.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&header)
}

/// The version and header length after `magic_len` bytes of magic; `None` when `bytes` ends
/// first.
fn read_fixed(bytes: &[u8], magic_len: usize) -> Option<(u32, usize)> {
    let fixed = bytes.get(magic_len..magic_len + 8)?;
    let version = u32::from_le_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
    let header_len = u32::from_le_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]) as usize;
    Some((version, header_len))
}

/// The checksum that ends `bytes` (at least [`CHECKSUM_LEN`] long), when it is that of every
/// byte before it.
fn verify_checksum(bytes: &[u8]) -> Result<u64, String> {
    let (content, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let want = u64::from_le_bytes(sum.try_into().expect("8 bytes"));
    if xxh3_64(content) != want {
        return Err(format!(
            "checksum mismatch over its {} bytes (truncated or altered after it was written)",
            content.len()
        ));
    }
    Ok(want)
}

/// The whole file: magic, version, header, body and checksum.
fn encode(w: &mut impl Write, state: &EngineState) -> io::Result<SavedFile> {
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        written_by: state.written_by.clone(),
        saved_at_event_time: state.saved_at_event_time.clone(),
    };
    let mut out = Hashing::new(&mut *w);
    write_head(&mut out, MAGIC, VERSION, &header)?;
    let mut body = zstd::stream::write::Encoder::new(&mut out, ZSTD_LEVEL)?;
    rmp_serde::encode::write(&mut body, state).map_err(io::Error::other)?;
    body.finish()?;
    let (checksum, bytes) = (out.hash.digest(), out.bytes);
    w.write_all(&checksum.to_le_bytes())?;
    Ok(SavedFile {
        checksum,
        bytes: bytes + CHECKSUM_LEN as u64,
    })
}

/// Reads a state file: its version, then its checksum, then the header and body.
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
    let (mut state, checksum) = decode(path, &bytes)?;
    state.origin = Some(path.to_owned());
    state.file = Some(SavedFile {
        checksum,
        bytes: bytes.len() as u64,
    });
    Ok(state)
}

/// The state and the file's checksum.
fn decode(path: &Path, bytes: &[u8]) -> Result<(EngineState, u64), StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        path: path.to_owned(),
        message,
    };
    if !bytes.starts_with(MAGIC) {
        return Err(unrecognised(path, bytes));
    }
    let Some((version, header_len)) = read_fixed(bytes, MAGIC.len()) else {
        return Err(corrupt(format!(
            "it ends at byte {} of the {FIXED_LEN}-byte fixed header",
            bytes.len()
        )));
    };
    let body_at = FIXED_LEN.saturating_add(header_len);
    // Decoded before the checksum only to name the build that wrote an unreadable version.
    let header = bytes
        .get(FIXED_LEN..body_at)
        .and_then(|h| rmp_serde::from_slice::<Header>(h).ok());
    if !(OLDEST_READABLE..=VERSION).contains(&version) {
        return Err(StateError::Incompatible {
            path: path.to_owned(),
            found: version.into(),
            expected: VERSION,
            written_by: header.map(|h| h.written_by),
        });
    }
    if bytes.len() < body_at.saturating_add(CHECKSUM_LEN) {
        return Err(corrupt(format!(
            "it ends at byte {}, before the end of its header and checksum",
            bytes.len()
        )));
    }
    let checksum = verify_checksum(bytes).map_err(corrupt)?;
    let content = &bytes[..bytes.len() - CHECKSUM_LEN];
    match header {
        Some(h) if h.format == FORMAT && h.version == version => {}
        Some(h) => {
            return Err(corrupt(format!(
                "its header says format \"{}\" version {} after version {version}",
                h.format, h.version
            )))
        }
        None => {
            return Err(corrupt(format!(
                "its header (bytes {FIXED_LEN}..{body_at}) does not decode"
            )))
        }
    }
    let body = inflate(&content[body_at..]).map_err(|e| corrupt(format!("its body {e}")))?;
    let mut rest = &body[..];
    let decoded = {
        let mut de = rmp_serde::Deserializer::new(&mut rest);
        EngineState::deserialize(&mut de)
    };
    let at = body.len() - rest.len();
    let mut state =
        decoded.map_err(|e| corrupt(format!("{e} (near byte {at} of the decompressed body)")))?;
    if !rest.is_empty() {
        return Err(corrupt(format!(
            "{} bytes after the body, at byte {at} of the decompressed body",
            rest.len()
        )));
    }
    // An older readable version is this one with parts missing (read as empty): upgraded.
    state.version = VERSION;
    Ok((state, checksum))
}

/// The body's one zstd frame, decompressed; what is wrong with it.
fn inflate(frame: &[u8]) -> Result<Vec<u8>, String> {
    let mut input = frame;
    let mut out = Vec::with_capacity(frame.len().saturating_mul(4));
    let mut decoder = zstd::stream::read::Decoder::with_buffer(&mut input)
        .map_err(|e| format!("does not decompress: {e}"))?
        .single_frame();
    decoder
        .read_to_end(&mut out)
        .map_err(|e| format!("does not decompress: {e}"))?;
    drop(decoder);
    match input.len() {
        0 => Ok(out),
        n => Err(format!("has {n} bytes after its zstd frame")),
    }
}

/// The error for a file without the magic prefix: a JSON state of format 4 or earlier, the start
/// of a binary one cut short, or something else.
fn unrecognised(path: &Path, bytes: &[u8]) -> StateError {
    let not_state = |found: String| StateError::NotState {
        path: path.to_owned(),
        found,
    };
    if MAGIC.starts_with(bytes) {
        return StateError::Corrupt {
            path: path.to_owned(),
            message: match bytes.len() {
                0 => "the file is empty".into(),
                n => format!("it ends at byte {n} of its magic prefix"),
            },
        };
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return not_state(
            "neither the binary state format nor a JSON state of format 4 or earlier".into(),
        );
    }
    json_header(path, bytes)
}

/// The identifying fields of a JSON state (format 4 and earlier), other fields skipped.
#[derive(Deserialize)]
struct JsonHeader {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
    written_by: Option<serde_json::Value>,
}

/// A JSON file is never read as a state now: the error says which one it is.
fn json_header(path: &Path, bytes: &[u8]) -> StateError {
    let not_state = |found: String| StateError::NotState {
        path: path.to_owned(),
        found,
    };
    let h: JsonHeader = match serde_json::from_slice(bytes) {
        Ok(h) => h,
        Err(e) => {
            return StateError::Corrupt {
                path: path.to_owned(),
                message: format!("JSON that does not parse: {e}"),
            }
        }
    };
    match &h.format {
        Some(serde_json::Value::String(f)) if f == FORMAT => {}
        Some(other) => return not_state(format!("format {other}, expected \"{FORMAT}\"")),
        None => return not_state("JSON without a \"format\" field".into()),
    }
    match h.version.as_ref().and_then(|v| v.as_u64()) {
        Some(found) if found < u64::from(OLDEST_READABLE) => StateError::Incompatible {
            path: path.to_owned(),
            found,
            expected: VERSION,
            written_by: h.written_by.and_then(|w| w.as_str().map(str::to_owned)),
        },
        Some(found) => not_state(format!(
            "JSON claiming version {found}, but from version {OLDEST_READABLE} on state files are binary; `kmswatch state dump` output is for reading, not for loading"
        )),
        None => not_state(format!(
            "format \"{FORMAT}\" but no integer \"version\" field"
        )),
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

pub mod journal;

#[cfg(test)]
mod tests;
