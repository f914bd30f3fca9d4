//! The state journal: what was folded since a state file was written, as delta files beside it,
//! so that a periodic save costs what changed since the last one rather than everything known.
//!
//! A delta holds the engine's inputs (calls, object boundaries, watermark moves), which the
//! engine folds again on load to reach the state it had when the delta was written (the engine
//! is deterministic: `engine::journal`). This module is the file format only; what the records
//! are is the caller's.
//!
//! ```text
//! <state>.delta-000001, -000002, ...
//! magic     b"kmswatch.delta\0"                 15 bytes
//! version   u32, little-endian                  JOURNAL_VERSION
//! header    u32 length (LE), then MessagePack   [base checksum, sequence number, written_by]
//! body      zstd frame of MessagePack records   Op(..)*, then End { ops, outbox }
//! checksum  xxh3-64 (LE) of every byte before it
//! ```
//!
//! Each delta names the state file it continues by that file's checksum, and its place in the
//! chain by its sequence number. It is written to `<delta>.tmp` as the engine folds, and on
//! commit fsynced and renamed into place, then the directory fsynced: a delta either is whole
//! on disk or is not there. Loading reads deltas 1, 2, ... while they name the state file; one
//! naming another file (left by a crash after the state file was replaced) ends the chain and is
//! removed by the next writer. A delta that names the file but is torn or altered is an error:
//! it was committed, so messages were deleted on the strength of it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{
    read_fixed, sync_dir, verify_checksum, write_head, Hashing, SinkOutbox, StateError,
    CHECKSUM_LEN, WRITTEN_BY,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The first bytes of every delta.
pub const DELTA_MAGIC: &[u8; 15] = b"kmswatch.delta\0";
/// The delta format this build writes and reads: bumped on any change to the records, including
/// the engine's operations and `KmsCall` (a delta is read only by the build that can fold it).
pub const JOURNAL_VERSION: u32 = 1;
/// Magic, version and header length.
const FIXED_LEN: usize = DELTA_MAGIC.len() + 8;
/// zstd level of the body, as for the state file.
const ZSTD_LEVEL: i32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    base: u64,
    seq: u32,
    written_by: String,
}

/// One record of a delta's body.
#[derive(Serialize, Deserialize)]
enum Record<T> {
    Op(T),
    /// The last record: how many operations came before it, and the sinks' outbox at the commit
    /// (replacing the state file's).
    End {
        ops: u64,
        outbox: Vec<SinkOutbox>,
    },
}

/// The path of delta `seq` of the state file `state`.
pub fn delta_path(state: &Path, seq: u32) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_owned();
    name.push(format!(".delta-{seq:06}"));
    state.with_file_name(name)
}

/// The sequence number of a delta of `state` from its file name (`.tmp` ones too).
fn delta_seq(state: &Path, name: &str) -> Option<u32> {
    let base = state.file_name()?.to_str()?;
    let rest = name.strip_prefix(base)?.strip_prefix(".delta-")?;
    let digits = rest.strip_suffix(".tmp").unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Removes the deltas of `state` numbered after `keep`, and every uncommitted one. Best effort:
/// a delta left behind names a state file that is gone, so it is never read.
pub fn remove_deltas(state: &Path, keep: u32) {
    let dir = match state.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = delta_seq(state, name) {
            if seq > keep || name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// A delta being written: records go through zstd to `<delta>.tmp` as they come, so memory stays
/// flat however much is folded between saves. Dropped without [`DeltaWriter::commit`], the
/// temporary file is removed.
pub struct DeltaWriter {
    path: PathBuf,
    tmp: PathBuf,
    seq: u32,
    ops: u64,
    body: Option<zstd::stream::write::Encoder<'static, Hashing<BufWriter<File>>>>,
}

/// A committed delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub seq: u32,
    pub ops: u64,
    pub bytes: u64,
}

impl DeltaWriter {
    /// Starts delta `seq` of the state file `state`, whose checksum is `base`.
    pub fn create(state: &Path, base: u64, seq: u32) -> Result<DeltaWriter, StateError> {
        let path = delta_path(state, seq);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let started = (|| {
            let header = Header {
                base,
                seq,
                written_by: WRITTEN_BY.into(),
            };
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            let mut out = Hashing::new(BufWriter::with_capacity(1 << 16, file));
            write_head(&mut out, DELTA_MAGIC, JOURNAL_VERSION, &header)?;
            zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)
        })();
        match started {
            Ok(body) => Ok(DeltaWriter {
                path,
                tmp,
                seq,
                ops: 0,
                body: Some(body),
            }),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(io_error(&tmp, "writing", e))
            }
        }
    }

    /// Appends one operation.
    pub fn append<T: Serialize>(&mut self, op: &T) -> Result<(), StateError> {
        let body = self.body.as_mut().expect("not committed");
        rmp_serde::encode::write(body, &Record::Op(op))
            .map_err(|e| io_error(&self.tmp, "writing", io::Error::other(e)))?;
        self.ops += 1;
        Ok(())
    }

    /// Operations appended so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Compressed bytes written so far (less what zstd still buffers).
    pub fn bytes(&self) -> u64 {
        self.body.as_ref().map_or(0, |b| b.get_ref().bytes)
    }

    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Ends the delta with the sinks' outbox and puts it in place, durably.
    pub fn commit(mut self, outbox: &[SinkOutbox]) -> Result<Committed, StateError> {
        let mut body = self.body.take().expect("not committed");
        let ops = self.ops;
        let written = (|| {
            let end: Record<()> = Record::End {
                ops,
                outbox: outbox.to_vec(),
            };
            rmp_serde::encode::write(&mut body, &end).map_err(io::Error::other)?;
            let mut out = body.finish()?;
            let checksum = out.hash.digest();
            out.inner.write_all(&checksum.to_le_bytes())?;
            let bytes = out.bytes + CHECKSUM_LEN as u64;
            let file = out.inner.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(bytes)
        })();
        // Not committed: the temporary file goes (the writer's drop no longer sees it).
        let renamed = written.and_then(|bytes| fs::rename(&self.tmp, &self.path).map(|()| bytes));
        let bytes = renamed.map_err(|e| {
            let _ = fs::remove_file(&self.tmp);
            io_error(&self.tmp, "committing", e)
        })?;
        sync_dir(&self.path).map_err(|e| io_error(&self.path, "syncing the directory of", e))?;
        Ok(Committed {
            seq: self.seq,
            ops,
            bytes,
        })
    }
}

impl Drop for DeltaWriter {
    fn drop(&mut self) {
        if self.body.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn io_error(path: &Path, action: &str, source: io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        action: action.into(),
        source,
    }
}

/// What [`replay`] read.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    /// Deltas read (the last one's sequence number: the next delta is `deltas + 1`).
    pub deltas: u32,
    pub ops: u64,
    /// Their size on disk.
    pub bytes: u64,
    /// The last delta's outbox, which replaces the state file's.
    pub outbox: Option<Vec<SinkOutbox>>,
}

/// Reads the deltas of the state file `state` (whose checksum is `base`) in order, handing each
/// operation to `apply`. Each delta's checksum is checked before any of its operations is
/// applied.
pub fn replay<T: DeserializeOwned>(
    state: &Path,
    base: u64,
    mut apply: impl FnMut(T),
) -> Result<Replayed, StateError> {
    let mut done = Replayed::default();
    for seq in 1.. {
        let path = delta_path(state, seq);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(io_error(&path, "reading", e)),
        };
        let corrupt = |message: String| StateError::Corrupt {
            path: path.clone(),
            message,
        };
        let (version, header, body) = check(&bytes).map_err(&corrupt)?;
        if header.base != base {
            break;
        }
        if version != JOURNAL_VERSION {
            return Err(corrupt(format!(
                "delta format version {version}, but this build reads {JOURNAL_VERSION}; \
                 run the kmswatch version that wrote it ({}) until it saves a whole state file",
                header.written_by
            )));
        }
        if header.seq != seq {
            return Err(corrupt(format!(
                "its header says delta {} but its name says {seq}",
                header.seq
            )));
        }
        let (ops, outbox) = records(body, &mut apply).map_err(&corrupt)?;
        done.deltas = seq;
        done.ops += ops;
        done.bytes += bytes.len() as u64;
        done.outbox = Some(outbox);
    }
    Ok(done)
}

/// The deltas after `state` as loaded, read but not folded (for tools that show a state file
/// alone): how many, and how many operations.
pub fn pending(state: &super::EngineState) -> Result<Replayed, StateError> {
    match (&state.origin, state.file) {
        (Some(path), Some(file)) => replay(path, file.checksum, |_: serde::de::IgnoredAny| {}),
        _ => Ok(Replayed::default()),
    }
}

/// The note for a tool that shows `state` without its journal, when it has one.
pub fn pending_note(state: &super::EngineState) -> Result<Option<String>, StateError> {
    let p = pending(state)?;
    Ok((p.deltas > 0).then(|| {
        format!(
            "{}: {} journal delta(s) ({} operations) follow this state file and are not in this view; \
             the service folds them in when it restarts and writes the whole file when it stops, \
             and `kmswatch replay --state-in` folds them in too",
            state.origin().display(),
            p.deltas,
            p.ops
        )
    }))
}

/// Checks a delta's magic and checksum; its version, header and body.
fn check(bytes: &[u8]) -> Result<(u32, Header, &[u8]), String> {
    let fixed = read_fixed(bytes, DELTA_MAGIC.len()).filter(|_| bytes.starts_with(DELTA_MAGIC));
    let Some((version, header_len)) = fixed else {
        return Err(format!(
            "not a whole kmswatch state delta ({} bytes)",
            bytes.len()
        ));
    };
    let body_at = FIXED_LEN.saturating_add(header_len);
    if bytes.len() < body_at.saturating_add(CHECKSUM_LEN) {
        return Err(format!(
            "it ends at byte {}, before the end of its header and checksum",
            bytes.len()
        ));
    }
    verify_checksum(bytes)?;
    let header = rmp_serde::from_slice(&bytes[FIXED_LEN..body_at])
        .map_err(|e| format!("its header does not decode: {e}"))?;
    Ok((version, header, &bytes[body_at..bytes.len() - CHECKSUM_LEN]))
}

/// Decodes a body's records, handing operations to `apply`; the count and outbox of its end.
fn records<T: DeserializeOwned>(
    frame: &[u8],
    apply: &mut impl FnMut(T),
) -> Result<(u64, Vec<SinkOutbox>), String> {
    let mut input = frame;
    let decoder = zstd::stream::read::Decoder::with_buffer(&mut input)
        .map_err(|e| format!("its body does not decompress: {e}"))?
        .single_frame();
    let mut de = rmp_serde::Deserializer::new(BufReader::new(decoder));
    let mut ops = 0u64;
    let outbox = loop {
        match Record::<T>::deserialize(&mut de) {
            Ok(Record::Op(op)) => {
                apply(op);
                ops += 1;
            }
            Ok(Record::End { ops: n, outbox }) if n == ops => break outbox,
            Ok(Record::End { ops: n, .. }) => {
                return Err(format!("its end counts {n} operations but it holds {ops}"))
            }
            Err(e) => return Err(format!("operation {} does not decode: {e}", ops + 1)),
        }
    };
    let mut rest = de.into_inner();
    let mut trailing = [0u8; 1];
    match rest.read(&mut trailing) {
        Ok(0) => {}
        Ok(_) => return Err("its body has bytes after its end".into()),
        Err(e) => return Err(format!("its body does not decompress: {e}")),
    }
    drop(rest);
    match input.len() {
        0 => Ok((ops, outbox)),
        n => Err(format!("{n} bytes after its zstd frame")),
    }
}

#[cfg(test)]
mod tests;
