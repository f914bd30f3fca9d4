//! The organization-trail layout on disk: object keys of log and digest files, deterministic gzip,
//! writing, and the hourly digest files that list the delivered logs.

use std::io::Write;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use xxhash_rust::xxh3::xxh3_128;

use super::clock::{date_path, rfc3339, stamp_minutes, stamp_seconds, HOUR, MINUTE};
use super::json::{obj, J};
use super::record::Event;
use super::rng::Rng;
use super::sha256::sha256_hex;
use super::{GenerateError, GenerateReport};

/// The organization id in every object key.
pub(crate) const ORG_ID: &str = "o-a1b2c3d4e5";
/// The trail's bucket, as digests name it.
pub(crate) const BUCKET: &str = "kmswatch-org-trail";
/// The trail's name, as digest file names carry it.
pub(crate) const TRAIL: &str = "org-trail";

/// `AWSLogs/<org>/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<stamp>_<suffix>.json.gz`.
pub(crate) fn log_key(account: &str, region: &str, delivery: i64, suffix: &str) -> String {
    format!(
        "AWSLogs/{ORG_ID}/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{suffix}.json.gz",
        date_path(delivery),
        stamp_minutes(delivery)
    )
}

/// `AWSLogs/<org>/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<region>_<stamp>.json.gz`.
pub(crate) fn digest_key(account: &str, region: &str, end: i64) -> String {
    format!(
        "AWSLogs/{ORG_ID}/{account}/CloudTrail-Digest/{region}/{}/{account}_CloudTrail-Digest_{region}_{TRAIL}_{region}_{}.json.gz",
        date_path(end),
        stamp_seconds(end)
    )
}

/// Gzip with a fixed level and a fixed header (no file name, mtime 0): same input, same bytes.
pub(crate) fn gzip(data: &[u8], level: u32, path: &Path) -> Result<Vec<u8>, GenerateError> {
    let io = |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut enc = GzBuilder::new().write(
        Vec::with_capacity(data.len() / 6 + 64),
        Compression::new(level),
    );
    enc.write_all(data).map_err(io)?;
    enc.finish().map_err(io)
}

/// Gzips `json` and writes it at `out/key`, creating directories; overwrites an existing file.
/// Returns the compressed size.
pub(crate) fn write_gz(
    out: &Path,
    key: &str,
    json: &[u8],
    level: u32,
) -> Result<u64, GenerateError> {
    let path = out.join(key);
    let bytes = gzip(json, level, &path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| GenerateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(&path, &bytes).map_err(|source| GenerateError::Io { path, source })?;
    Ok(bytes.len() as u64)
}

/// A volume log file being built: `{"Records":[` then records, counted in its report.
pub(crate) struct LogFile {
    json: Vec<u8>,
    pub report: GenerateReport,
}

impl LogFile {
    pub fn with_capacity(bytes: usize) -> LogFile {
        let mut json = Vec::with_capacity(bytes + 4096);
        json.extend_from_slice(b"{\"Records\":[");
        LogFile {
            json,
            report: GenerateReport {
                files: 1,
                ..GenerateReport::default()
            },
        }
    }

    /// JSON bytes so far.
    pub fn len(&self) -> usize {
        self.json.len()
    }

    pub fn push(&mut self, event: &Event) {
        if self.report.records > 0 {
            self.json.push(b',');
        }
        event.write_json(&mut self.json);
        self.report.records += 1;
    }

    /// Closes the array and writes the file (gzip `level`) as delivered 2 to 5 minutes after its
    /// newest event; returns its share of the report.
    pub fn write(
        mut self,
        out: &Path,
        (account, region): (&str, &str),
        newest: i64,
        rng: &mut Rng,
        level: u32,
    ) -> Result<GenerateReport, GenerateError> {
        self.json.extend_from_slice(b"]}");
        let delivery = newest + 2 * MINUTE + rng.range(0, 180);
        let key = log_key(account, region, delivery, &rng.alnum(16));
        self.report.uncompressed_bytes = self.json.len() as u64;
        self.report.compressed_bytes = write_gz(out, &key, &self.json, level)?;
        Ok(self.report)
    }
}

/// A delivered log file, as a digest lists it.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub key: String,
    pub delivery: i64,
    /// SHA-256 of the uncompressed log content.
    pub sha256: String,
    pub oldest: i64,
    pub newest: i64,
}

impl Delivered {
    pub fn new(key: String, delivery: i64, json: &[u8], oldest: i64, newest: i64) -> Delivered {
        Delivered {
            key,
            delivery,
            sha256: sha256_hex(json),
            oldest,
            newest,
        }
    }
}

/// One digest file to write: object key and uncompressed JSON.
pub(crate) struct Digest {
    pub key: String,
    pub json: Vec<u8>,
}

/// The digests of one account and region: one per hour (ending `offset_secs` past the hour) in
/// which logs were delivered, chained through the previous digest's hash and signature.
pub(crate) fn digests(
    rng: &mut Rng,
    account: &str,
    region: &str,
    offset_secs: i64,
    logs: &[Delivered],
) -> Vec<Digest> {
    let mut logs: Vec<&Delivered> = logs.iter().collect();
    logs.sort_by(|a, b| (a.delivery, &a.key).cmp(&(b.delivery, &b.key)));
    let fingerprint = format!(
        "{:032x}",
        xxh3_128(format!("digest-key/{region}").as_bytes())
    );
    let mut out: Vec<Digest> = Vec::new();
    let mut previous: Option<(String, String, String)> = None; // key, hash, signature
    let mut i = 0;
    while i < logs.len() {
        let end = (logs[i].delivery - offset_secs).div_euclid(HOUR) * HOUR + offset_secs + HOUR;
        let mut j = i;
        while j < logs.len() && logs[j].delivery < end {
            j += 1;
        }
        let batch = &logs[i..j];
        i = j;
        let key = digest_key(account, region, end);
        let newest = batch.iter().map(|l| l.newest).max().unwrap_or(end);
        let oldest = batch.iter().map(|l| l.oldest).min().unwrap_or(end);
        let files: Vec<J> = batch
            .iter()
            .map(|l| {
                obj! {
                    "s3Bucket" => BUCKET,
                    "s3Object" => l.key.clone(),
                    "hashValue" => l.sha256.clone(),
                    "hashAlgorithm" => "SHA-256",
                    "newestEventTime" => rfc3339(l.newest),
                    "oldestEventTime" => rfc3339(l.oldest),
                }
            })
            .collect();
        let (pkey, phash, psig) = match &previous {
            Some((k, h, s)) => (Some(k.clone()), Some(h.clone()), Some(s.clone())),
            None => (None, None, None),
        };
        let has_previous = previous.is_some();
        let doc = obj! {
            "awsAccountId" => account.to_string(),
            "digestStartTime" => rfc3339(end - HOUR),
            "digestEndTime" => rfc3339(end),
            "digestS3Bucket" => BUCKET,
            "digestS3Object" => key.clone(),
            "digestPublicKeyFingerprint" => fingerprint.clone(),
            "digestSignatureAlgorithm" => "SHA256withRSA",
            "newestEventTime" => rfc3339(newest),
            "oldestEventTime" => rfc3339(oldest),
            "previousDigestS3Bucket" => has_previous.then_some(BUCKET),
            "previousDigestS3Object" => pkey,
            "previousDigestHashValue" => phash,
            "previousDigestHashAlgorithm" => has_previous.then_some("SHA-256"),
            "previousDigestSignature" => psig,
            "logFiles" => files,
        };
        let mut json = Vec::with_capacity(1024);
        doc.write(&mut json);
        // The signature of this digest lives in S3 metadata; the next digest quotes it.
        previous = Some((key.clone(), sha256_hex(&json), rng.hex(512)));
        out.push(Digest { key, json });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_organization_trail_layout() {
        let t = 1_770_114_667; // 2026-02-03T10:31:07Z
        assert_eq!(
            log_key("111111111111", "us-east-1", t, "AbCdEfGh12345678"),
            "AWSLogs/o-a1b2c3d4e5/111111111111/CloudTrail/us-east-1/2026/02/03/111111111111_CloudTrail_us-east-1_20260203T1031Z_AbCdEfGh12345678.json.gz"
        );
        assert_eq!(
            digest_key("111111111111", "eu-west-1", t),
            "AWSLogs/o-a1b2c3d4e5/111111111111/CloudTrail-Digest/eu-west-1/2026/02/03/111111111111_CloudTrail-Digest_eu-west-1_org-trail_eu-west-1_20260203T103107Z.json.gz"
        );
    }

    #[test]
    fn gzip_is_deterministic() {
        let p = Path::new("x");
        assert_eq!(gzip(b"hello", 6, p).unwrap(), gzip(b"hello", 6, p).unwrap());
        let gz = gzip(b"hello", 6, p).unwrap();
        assert_eq!(&gz[4..8], &[0, 0, 0, 0], "mtime must be zero");
    }

    #[test]
    fn digests_group_by_hour_and_chain() {
        let base = 1_767_225_600;
        let logs: Vec<Delivered> = [base + 100, base + 200, base + 2 * HOUR + 5]
            .iter()
            .enumerate()
            .map(|(i, &d)| Delivered::new(format!("log{i}"), d, b"{}", d - 60, d - 30))
            .collect();
        let mut rng = Rng::new(1);
        let ds = digests(&mut rng, "111111111111", "us-east-1", 1000, &logs);
        assert_eq!(ds.len(), 2);
        let first: serde_json::Value = serde_json::from_slice(&ds[0].json).unwrap();
        let second: serde_json::Value = serde_json::from_slice(&ds[1].json).unwrap();
        assert_eq!(first["logFiles"].as_array().unwrap().len(), 2);
        assert!(first["previousDigestS3Object"].is_null());
        assert!(first.get("Records").is_none());
        assert_eq!(second["previousDigestS3Object"], ds[0].key.as_str());
        assert_eq!(
            second["previousDigestHashValue"],
            sha256_hex(&ds[0].json).as_str()
        );
        assert_eq!(first["digestEndTime"], "2026-01-01T00:16:40Z");
    }
}
