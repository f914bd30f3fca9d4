//! The committed sample (`sample-logs/`): 35 days from 2026-01-01 of an organization with three
//! accounts and two regions, quiet background traffic, and one scripted incident per shipped rule.
//!
//! `catalog` is the world (keys, callers, rates), `plan` the delivery plan (which files exist),
//! `background` fills the files with traffic that raises nothing, `incidents` adds the scripted
//! events and lists the alerts they must raise; `check` (tests) verifies both against the output.

mod background;
mod catalog;
mod incidents;
mod plan;

#[cfg(test)]
mod check;

use std::path::Path;

pub use incidents::{sample_incidents, Incident};

use super::clock::{HOUR, MINUTE};
use super::output::{self, Delivered};
use super::record::write_log;
use super::rng::Rng;
use super::{GenerateError, GenerateReport};
use catalog::ARS;
use plan::{Slot, SlotKind};

/// Gzip level of the sample's files: smallest output; the sample is small, so speed does not
/// matter.
const GZIP_LEVEL: u32 = 9;

/// One log file, ready to write.
struct LogFile {
    ar: usize,
    key: String,
    delivery: i64,
    json: Vec<u8>,
    records: u64,
    kms: u64,
    oldest: i64,
    newest: i64,
}

/// Turns slots into files: events sorted by time, delivery a few minutes after the span (two hours
/// for the late file), the duplicate delivered again a minute later under another name.
fn assemble(slots: Vec<Slot>, seed: u64) -> Vec<LogFile> {
    let mut files = Vec::new();
    for (index, mut slot) in slots.into_iter().enumerate() {
        if slot.events.is_empty() {
            continue;
        }
        slot.events.sort_by_key(|e| e.time);
        let mut rng = Rng::derive(seed, "sample/file", index as u64);
        let end_minute = (slot.end + MINUTE - 1).div_euclid(MINUTE) * MINUTE;
        let delivery = match slot.kind {
            SlotKind::Late => end_minute + 2 * HOUR + rng.range(0, 3) * MINUTE + rng.range(0, 60),
            SlotKind::Extra => end_minute + rng.range(0, 50),
            SlotKind::Quiet { .. } | SlotKind::Busy { .. } => {
                end_minute + rng.range(0, 3) * MINUTE + rng.range(0, 60)
            }
        };
        let mut json = Vec::with_capacity(slot.events.len() * 1400);
        write_log(&slot.events, &mut json);
        let a = ARS[slot.ar];
        let records = slot.events.len() as u64;
        let kms = slot.events.iter().filter(|e| e.is_kms()).count() as u64;
        let oldest = slot.events.first().map_or(slot.start, |e| e.time);
        let newest = slot.events.last().map_or(slot.start, |e| e.time);
        let mut copies = vec![delivery];
        if slot.duplicate {
            copies.push(delivery + MINUTE + rng.range(0, 40));
        }
        for d in copies {
            files.push(LogFile {
                ar: slot.ar,
                key: output::log_key(a.account, a.region, d, &rng.alnum(16)),
                delivery: d,
                json: json.clone(),
                records,
                kms,
                oldest,
                newest,
            });
        }
    }
    files
}

/// Generates the sample under `out`.
pub(crate) fn generate(out: &Path, seed: u64) -> Result<GenerateReport, GenerateError> {
    let cat = catalog::build();
    let mut slots = plan::slots();
    background::fill(&cat, &mut slots, seed);
    incidents::inject(&cat, &mut slots, seed);
    let files = assemble(slots, seed);

    let mut report = GenerateReport::default();
    let mut delivered: Vec<Vec<Delivered>> = vec![Vec::new(); ARS.len()];
    for f in &files {
        report.compressed_bytes += output::write_gz(out, &f.key, &f.json, GZIP_LEVEL)?;
        report.files += 1;
        report.records += f.records;
        report.kms_records += f.kms;
        report.uncompressed_bytes += f.json.len() as u64;
        delivered[f.ar].push(Delivered::new(
            f.key.clone(),
            f.delivery,
            &f.json,
            f.oldest,
            f.newest,
        ));
    }
    for (ar, logs) in delivered.iter().enumerate() {
        let a = ARS[ar];
        let mut rng = Rng::derive(seed, "sample/digest", ar as u64);
        for d in output::digests(&mut rng, a.account, a.region, a.digest_offset, logs) {
            report.digest_bytes += output::write_gz(out, &d.key, &d.json, GZIP_LEVEL)?;
            report.digest_files += 1;
        }
    }
    Ok(report)
}
