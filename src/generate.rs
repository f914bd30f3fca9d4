//! Generates realistic CloudTrail logs in the organization trail layout, with injected incidents.

use std::path::PathBuf;

/// What to generate.
#[derive(Debug, Clone)]
pub enum Profile {
    /// The committed `sample-logs/`: about 35 days, every shipped rule's incident once.
    Sample,
    /// A benchmark set of at least `target_bytes` of uncompressed JSON.
    Bench { target_bytes: u64 },
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    pub profile: Profile,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct GenerateReport {
    pub files: u64,
    pub records: u64,
    pub kms_records: u64,
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn generate(opts: &GenerateOptions) -> Result<GenerateReport, GenerateError> {
    let _ = opts;
    todo!("generator")
}
