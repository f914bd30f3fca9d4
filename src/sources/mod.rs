//! Where log objects come from: the object reference every source produces, which objects are log
//! files, and the canonical order replay processes them in.
//!
//! Sources: `dir` (a directory tree) and `prefix` (an S3 prefix, following the trail layout) for
//! replay, both pruned by a `select::Selection`; `sqs` and `s3` (the live service: queue messages
//! announce objects, fetched from S3), retried with `crate::retry`.

mod dir;
pub mod notify;
pub mod prefix;
pub mod s3;
pub mod select;
pub mod sqs;

use std::fmt;
use std::path::PathBuf;

use crate::aggregate::ObjectId;

pub use dir::{walk, Walk};
pub use prefix::{Discovered, Lister, Listing, S3Prefix};
pub use select::{Placement, Selection};

/// One object to fetch and decode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectRef {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::File(p) => write!(f, "{}", p.display()),
            ObjectRef::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

impl ObjectRef {
    /// What identifies the object's content for dedupe ([`ObjectId`]), with its `size` in bytes.
    ///
    /// A CloudTrail log file's name (`<account>_CloudTrail_<region>_<time>_<16 random
    /// characters>.json.gz`) is unique per delivery, so that name with the size identifies it
    /// wherever it is: the same object from S3, from a local copy of the bucket (in the layout or
    /// flattened) or in two replay inputs has one identity, and a state built by replay from a
    /// copy knows the objects the live service is sent again. Other names are not unique: their
    /// identity is the whole path or `s3://bucket/key`. A file CloudTrail delivers again under
    /// another name is a new object; the call ids catch its events.
    pub fn identity(&self, size: u64) -> ObjectId {
        let path = match self {
            ObjectRef::File(p) => p.to_string_lossy().replace('\\', "/"),
            ObjectRef::S3 { key, .. } => key.clone(),
        };
        match parse_log_name(&path) {
            Some(_) => ObjectId::new(path.rsplit('/').next().unwrap_or(&path), size),
            None => ObjectId::new(&self.to_string(), size),
        }
    }
}

/// Why an object is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// A CloudTrail digest file (integrity validation), not a log file.
    Digest,
    /// A CloudTrail Insights file.
    Insight,
    /// Not `.json.gz` or `.json`.
    NotLog,
    /// Zero bytes (S3 folder placeholders).
    Empty,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Digest => "digest",
            SkipReason::Insight => "insight",
            SkipReason::NotLog => "not_log",
            SkipReason::Empty => "empty",
        }
    }
}

/// Whether the object at `path` (a file path or S3 key, `/`-separated) of `size` bytes is a log
/// file to read, or why not.
pub fn classify(path: &str, size: Option<u64>) -> Result<(), SkipReason> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    if path.contains("/CloudTrail-Digest/") || name.contains("_CloudTrail-Digest_") {
        Err(SkipReason::Digest)
    } else if path.contains("/CloudTrail-Insight/") || name.contains("_CloudTrail-Insight_") {
        Err(SkipReason::Insight)
    } else if !(name.ends_with(".json.gz") || name.ends_with(".json")) {
        Err(SkipReason::NotLog)
    } else if size == Some(0) {
        Err(SkipReason::Empty)
    } else {
        Ok(())
    }
}

/// The delivery time CloudTrail puts in a log file name (`..._20260302T0015Z_...`), in Unix seconds.
pub fn delivery_time(name: &str) -> Option<i64> {
    name.split('_').find_map(|part| {
        let b = part.as_bytes();
        if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
            return None;
        }
        let iso = format!(
            "{}-{}-{}T{}:{}:00Z",
            &part[0..4],
            &part[4..6],
            &part[6..8],
            &part[9..11],
            &part[11..13]
        );
        crate::timefmt::parse_event_time(&iso)
    })
}

/// What a CloudTrail file name tells (`<account>_<kind>_<region>_YYYYMMDDTHHmmZ_<id>.json.gz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogName<'a> {
    /// 12-digit account id.
    pub account: &'a str,
    /// `CloudTrail` for log files, `CloudTrail-Digest`, `CloudTrail-Insight`.
    pub kind: &'a str,
    pub region: &'a str,
    /// The delivery time, when the name carries one.
    pub delivered: Option<i64>,
}

/// Parses the name at the end of `path` (a file path or an S3 key), if it is a CloudTrail name.
pub fn parse_log_name(path: &str) -> Option<LogName<'_>> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let mut parts = name.split('_');
    let account = parts
        .next()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))?;
    let kind = parts.next().filter(|k| k.starts_with("CloudTrail"))?;
    let region = parts.next().filter(|r| !r.is_empty())?;
    Some(LogName {
        account,
        kind,
        region,
        delivered: delivery_time(name),
    })
}

/// The order replay folds objects in, whatever order they were found in: by delivery time (as the
/// live service would see them), then by file name, then by the whole path.
pub fn canonical_order_key(path: &str) -> (i64, String, String) {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    (
        delivery_time(name).unwrap_or(i64::MAX),
        name.to_owned(),
        path.to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_trail_objects() {
        let base = "AWSLogs/o-abc/111122223333";
        let cases = [
            (format!("{base}/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_20260302T0015Z_AbCdEfGh12345678.json.gz"), Some(9), Ok(())),
            ("local/file.json".to_owned(), Some(9), Ok(())),
            (format!("{base}/CloudTrail-Digest/us-east-1/2026/03/02/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20260302T001500Z.json.gz"), Some(9), Err(SkipReason::Digest)),
            ("x/111122223333_CloudTrail-Digest_us-east-1.json.gz".to_owned(), Some(9), Err(SkipReason::Digest)),
            (format!("{base}/CloudTrail-Insight/us-east-1/2026/03/02/a.json.gz"), Some(9), Err(SkipReason::Insight)),
            (format!("{base}/CloudTrail/us-east-1/README.txt"), Some(9), Err(SkipReason::NotLog)),
            (format!("{base}/CloudTrail/us-east-1/2026/"), Some(0), Err(SkipReason::NotLog)),
            (format!("{base}/CloudTrail/x.json.gz"), Some(0), Err(SkipReason::Empty)),
        ];
        for (path, size, want) in cases {
            assert_eq!(classify(&path, size), want, "{path}");
        }
    }

    #[test]
    fn an_objects_identity_is_its_trail_name_and_size_wherever_it_is() {
        let name = "AWSLogs/o-abc/111122223333/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_20260302T0015Z_AbCdEfGh12345678.json.gz";
        let file = |p: &str| ObjectRef::File(PathBuf::from(p));
        let s3 = |b: &str, k: &str| ObjectRef::S3 {
            bucket: b.into(),
            key: k.into(),
        };
        let id = s3("trail", name).identity(100);
        let same = [
            file(&format!("/mirror/{name}")),
            file(&format!("other/copy/{name}")),
            s3("replica", &format!("prefix/{name}")),
        ];
        for o in same {
            assert_eq!(o.identity(100), id, "{o}");
        }
        let flat = name.rsplit('/').next().unwrap();
        assert_eq!(file(flat).identity(100), id, "a flattened copy");
        let other = [
            s3("trail", name).identity(101),
            file(&name.replace("AbCdEfGh12345678", "ZyXwVuTs98765432")).identity(100),
            file("/a/file.json").identity(100),
        ];
        for o in &other {
            assert_ne!(*o, id);
        }
        assert_ne!(
            file("/a/file.json").identity(1),
            file("/b/file.json").identity(1),
            "names outside CloudTrail's are not unique: the whole path counts"
        );
    }

    #[test]
    fn delivery_time_from_the_file_name() {
        let name = "111122223333_CloudTrail_us-east-1_20260302T0015Z_AbCdEfGh12345678.json.gz";
        assert_eq!(
            delivery_time(name),
            crate::timefmt::parse_event_time("2026-03-02T00:15:00Z")
        );
        assert_eq!(delivery_time("file.json"), None);
        let mut paths = [
            "b/1_CloudTrail_r_20260302T0020Z_a.json.gz",
            "a/1_CloudTrail_r_20260302T0015Z_z.json.gz",
            "c.json",
        ];
        paths.sort_by_key(|p| canonical_order_key(p));
        assert_eq!(
            paths,
            [
                "a/1_CloudTrail_r_20260302T0015Z_z.json.gz",
                "b/1_CloudTrail_r_20260302T0020Z_a.json.gz",
                "c.json"
            ]
        );
    }
}
