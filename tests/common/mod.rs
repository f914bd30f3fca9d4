//! Helpers shared by the integration tests: log-file builders, running the binary, golden diffs.
#![allow(dead_code)]

pub mod alertmanager;
pub mod aws;
pub mod receiver;
pub mod report;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::write::GzEncoder;
use flate2::Compression;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A KMS Decrypt record by role `role` on key `key_id` (in account 111111111111) at `time`.
pub fn decrypt_record(event_id: &str, time: &str, role: &str, key_id: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111111111111:assumed-role/{role}/s","accountId":"111111111111","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::111111111111:role/{role}"}}}}}},"eventTime":"{time}","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","eventID":"{event_id}","readOnly":true,"resources":[{{"accountId":"111111111111","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-east-1:111111111111:key/{key_id}"}}],"recipientAccountId":"111111111111"}}"#
    )
}

pub fn s3_record(event_id: &str, time: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AWSService","invokedBy":"s3.amazonaws.com"}},"eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"{event_id}","recipientAccountId":"111111111111"}}"#
    )
}

/// A gzipped log file of one Decrypt at `time` whose deflate stream is overwritten in the middle
/// (the trailer kept): decompression fails.
pub fn corrupt_gzip(time: &str) -> Vec<u8> {
    let mut bytes = gzip(&log_file(&[decrypt_record("corrupt", time, "app", "k1")]));
    let n = bytes.len();
    bytes[n / 2..n - 8].iter_mut().for_each(|b| *b = 0x5a);
    bytes
}

pub fn log_file(records: &[String]) -> Vec<u8> {
    format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes()
}

/// A CloudTrail-style path under `root` for account 111111111111 delivered at `hhmm` on 2026-03-02.
pub fn trail_path(root: &Path, hhmm: &str, id: &str) -> PathBuf {
    root.join(format!(
        "AWSLogs/111111111111/CloudTrail/us-east-1/2026/03/02/111111111111_CloudTrail_us-east-1_20260302T{hhmm}Z_{id}.json.gz"
    ))
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub fn kmswatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmswatch"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("running kmswatch")
}

/// Compares `actual` with the golden file at `path`; on mismatch, panics with a line diff.
/// With `UPDATE_GOLDEN=1` it rewrites the golden file instead.
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if expected == actual {
        return;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut diff = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                diff.push_str(&format!(
                    "line {}:\n  - {}\n  + {}\n",
                    i + 1,
                    x.unwrap_or(&"<none>"),
                    y.unwrap_or(&"<none>")
                ));
            }
        }
        if diff.len() > 8000 {
            diff.push_str("  ...\n");
            break;
        }
    }
    panic!(
        "{} differs from the output (UPDATE_GOLDEN=1 rewrites it after review):\n{diff}",
        path.display()
    );
}
