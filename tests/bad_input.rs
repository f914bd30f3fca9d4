//! Bad input loses nothing: every broken object or record is named and counted, the rest is kept,
//! and replay exits non-zero.

mod common;

use common::*;
use kmswatch::decode::DecodeLimits;
use kmswatch::replay::{replay, ReplayOptions};
use kmswatch::rules::load_dir;

#[test]
fn broken_objects_are_named_counted_and_the_rest_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let good = log_file(&[
        decrypt_record("good-1", "2026-03-02T00:01:00Z", "app", "k1"),
        s3_record("s3-1", "2026-03-02T00:01:00Z"),
        decrypt_record("good-2", "2026-03-02T00:02:00Z", "app", "k1"),
    ]);
    write(&trail_path(root, "0005", "good0000000000001"), &gzip(&good));
    let full = gzip(&good);
    let truncated = trail_path(root, "0010", "truncated00000001");
    write(&truncated, &full[..full.len() / 2]);
    let not_json = trail_path(root, "0015", "notjson0000000001");
    write(&not_json, &gzip(b"<html>503 Slow Down</html>"));
    let wrong_shape = trail_path(root, "0020", "wrongshape0000001");
    write(
        &wrong_shape,
        &gzip(br#"{"digestStartTime":"2026-03-02T00:00:00Z","logFiles":[]}"#),
    );
    let huge = trail_path(root, "0025", "huge000000000001");
    write(&huge, &gzip(&vec![b' '; 3 << 20]));
    // A record missing its eventID, beside a good one, in an otherwise good file.
    let missing =
        decrypt_record("", "2026-03-02T00:03:00Z", "app", "k1").replace(r#""eventID":"","#, "");
    let partly = trail_path(root, "0030", "partly00000000001");
    write(
        &partly,
        &gzip(&log_file(&[
            missing,
            decrypt_record("good-3", "2026-03-02T00:04:00Z", "app", "k1"),
        ])),
    );
    write(
        &root.join("AWSLogs/111111111111/CloudTrail-Digest/us-east-1/d.json.gz"),
        b"digest",
    );
    write(&root.join("notes.txt"), b"not a log");

    let opts = ReplayOptions {
        inputs: vec![root.to_owned().into()],
        decode: DecodeLimits {
            max_object_bytes: 1 << 20,
            ..DecodeLimits::default()
        },
        ..ReplayOptions::default()
    };
    let rules = load_dir(&repo().join("rules")).unwrap();
    let r = replay(&opts, rules, |_| Ok(())).unwrap();
    let s = &r.summary();
    assert!(r.had_failures());
    assert_eq!(s.kms_calls, 3, "good-1, good-2, good-3");
    assert_eq!(s.input.log_objects, 6);
    assert_eq!(s.input.objects_failed, 4);
    assert_eq!(s.input.decoded.malformed_records, 1);
    assert_eq!(s.input.skipped.get("digest"), Some(&1));
    assert_eq!(s.input.skipped.get("not_log"), Some(&1));
    let failures: Vec<(String, String, String)> = s
        .input
        .failures
        .iter()
        .map(|f| (f.object.clone(), f.kind.clone(), f.error.clone()))
        .collect();
    let p = |x: &std::path::Path| x.display().to_string();
    assert_eq!(
        failures,
        vec![
            (
                p(&truncated),
                "gzip_truncated".into(),
                "gzip stream ends early (truncated object)".into()
            ),
            (
                p(&not_json),
                "not_json".into(),
                "not a CloudTrail log file: unexpected '<' at byte 0, expected '{' (a CloudTrail log file is one JSON object)".into()
            ),
            (
                p(&wrong_shape),
                "no_records".into(),
                "not a CloudTrail log file: no \"Records\" array".into()
            ),
            (
                p(&huge),
                "too_large".into(),
                "decompressed size exceeds max_object_bytes (1048576 bytes)".into()
            ),
        ]
    );
    assert_eq!(s.input.malformed[0].object, p(&partly));
    assert_eq!(
        s.input.malformed[0].error,
        "record 0: missing required field eventID"
    );
    let text = s.render_text();
    assert!(text.contains("FAILED: 4 objects (1 gzip_truncated, 1 no_records, 1 not_json, 1 too_large), 1 malformed records"), "{text}");
}

#[test]
fn the_cli_exits_non_zero_and_names_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let bad = trail_path(dir.path(), "0010", "truncated00000001");
    let full = gzip(&log_file(&[decrypt_record(
        "e1",
        "2026-03-02T00:01:00Z",
        "app",
        "k1",
    )]));
    write(&bad, &full[..full.len() - 6]);
    let out = kmswatch(&["replay", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: gzip stream ends early", bad.display())),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn duplicates_and_cross_account_copies_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = decrypt_record("dup-1", "2026-03-02T00:01:00Z", "app", "k1");
    let shared_1 = decrypt_record("x-1", "2026-03-02T00:01:30Z", "app", "k1")
        .replace(r#""readOnly""#, r#""sharedEventID":"s-1","readOnly""#);
    let shared_2 = shared_1.replace("x-1", "x-2").replace(
        r#""recipientAccountId":"111111111111""#,
        r#""recipientAccountId":"222222222222""#,
    );
    write(
        &trail_path(dir.path(), "0005", "aaaaaaaaaaaaaaa1"),
        &gzip(&log_file(&[a.clone(), shared_1])),
    );
    write(
        &trail_path(dir.path(), "0006", "aaaaaaaaaaaaaaa2"),
        &gzip(&log_file(&[a, shared_2])),
    );
    let rules = load_dir(&repo().join("rules")).unwrap();
    let opts = ReplayOptions {
        inputs: vec![dir.path().to_owned().into()],
        ..ReplayOptions::default()
    };
    let r = replay(&opts, rules, |_| Ok(())).unwrap();
    assert_eq!((r.summary().kms_calls, r.summary().duplicates), (2, 2));
    assert!(!r.had_failures());
}
