//! Generates realistic CloudTrail logs in the organization trail layout, with injected incidents.
//!
//! Two profiles: [`Profile::Sample`], the committed `sample-logs/` (35 days, three accounts, two
//! regions, each shipped rule's incident once, see `sample/`), and [`Profile::Bench`], volume for
//! benchmarks (see `bench`), and [`Profile::Scale`], many keys and principals (see `scale`). Output is a pure function of the profile and the seed: fixed gzip
//! level and header, no clock, no hash-map order. Existing files with the same names are
//! overwritten; files from an earlier run with another seed are not removed (generate into an empty
//! directory).

mod actors;
mod bench;
mod clock;
mod json;
mod kms;
mod other;
mod output;
mod record;
mod rng;
mod sample;
mod scale;
mod sha256;

use std::path::PathBuf;

pub use sample::{sample_incidents, Incident};
pub use scale::ScaleShape;

/// The seed the committed `sample-logs/` were generated with; the CLI's default.
pub const DEFAULT_SEED: u64 = 20_260_101;

/// What to generate.
#[derive(Debug, Clone)]
pub enum Profile {
    /// The committed `sample-logs/`: about 35 days, every shipped rule's incident once.
    Sample,
    /// A benchmark set of at least `target_bytes` of uncompressed JSON over `span_days` days.
    Bench { target_bytes: u64, span_days: i64 },
    /// The organization-scale set: every key × principal pair calling `Decrypt`, plus an
    /// optional flood of failed calls under made-up names (see `scale`).
    Scale(ScaleShape),
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Output directory; `AWSLogs/...` is created under it.
    pub out: PathBuf,
    pub profile: Profile,
    /// Drives every random choice (ids, counts, times within slots). The sample's start time,
    /// accounts, keys and incidents do not depend on it.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateReport {
    /// Log files (`*_CloudTrail_*.json.gz`), including the sample's duplicate and late file.
    pub files: u64,
    /// Records in the log files (a duplicated file counts twice).
    pub records: u64,
    /// Records with `eventSource` `kms.amazonaws.com`.
    pub kms_records: u64,
    /// Uncompressed JSON of the log files.
    pub uncompressed_bytes: u64,
    /// Gzipped size of the log files on disk.
    pub compressed_bytes: u64,
    /// Digest files (`CloudTrail-Digest/`); the bench profile writes none.
    pub digest_files: u64,
    /// Gzipped size of the digest files on disk.
    pub digest_bytes: u64,
}

impl GenerateReport {
    /// The report of files generated in parallel, each with its own share.
    fn total(parts: &[GenerateReport]) -> GenerateReport {
        let mut report = GenerateReport::default();
        for p in parts {
            report.add(p);
        }
        report
    }

    fn add(&mut self, other: &GenerateReport) {
        self.files += other.files;
        self.records += other.records;
        self.kms_records += other.kms_records;
        self.uncompressed_bytes += other.uncompressed_bytes;
        self.compressed_bytes += other.compressed_bytes;
        self.digest_files += other.digest_files;
        self.digest_bytes += other.digest_bytes;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes the profile's files under `opts.out`.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateReport, GenerateError> {
    match opts.profile {
        Profile::Sample => sample::generate(&opts.out, opts.seed),
        Profile::Bench {
            target_bytes,
            span_days,
        } => bench::generate(&opts.out, opts.seed, target_bytes, span_days),
        Profile::Scale(shape) => scale::generate(&opts.out, opts.seed, shape),
    }
}

#[cfg(test)]
mod tests;
