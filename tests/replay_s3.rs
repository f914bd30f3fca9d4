//! Replay straight from the trail bucket (moto's server on 127.0.0.1, the real SDK clients): the
//! same objects give byte-identical alerts and summary from S3 and from disk; with a selection,
//! only the prefixes that can match are listed (checked against moto's own request log), events
//! are cut to `[from, to)` exactly (checked against an independent reading of the files), and
//! bad objects and buckets are named and counted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::aws::*;
use common::{corrupt_gzip, decrypt_record, gzip, log_file, repo};

const BUCKET: &str = "org-trail";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every file under `dir`, with its path relative to `dir` (`/`-separated).
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, p));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Uploads the sample logs to `bucket` with the same keys as their paths below `sample-logs/`.
fn upload_sample(moto: &Moto, bucket: &str) {
    let sample = files(&repo().join("sample-logs"));
    runtime().block_on(async {
        let c = moto.clients().await;
        c.bucket(bucket).await;
        let mut tasks = tokio::task::JoinSet::new();
        for (key, path) in sample {
            let s3 = c.s3.clone();
            let bucket = bucket.to_owned();
            tasks.spawn(async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(std::fs::read(path).unwrap().into())
                    .send()
                    .await
                    .unwrap();
            });
            while tasks.len() >= 16 {
                tasks.join_next().await.unwrap().unwrap();
            }
        }
        while let Some(t) = tasks.join_next().await {
            t.unwrap();
        }
    });
}

/// `kmswatch replay ARGS` with the SDK pointed at moto through the standard environment.
fn replay(moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kmswatch"))
        .arg("replay")
        .args(args)
        .current_dir(repo())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env_remove("AWS_PROFILE")
        .output()
        .expect("running kmswatch")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a replay writing alerts and summary into `dir` under `name`; returns (alerts, summary,
/// stderr) and checks the exit status.
fn run(
    moto: &Moto,
    dir: &Path,
    name: &str,
    args: &[&str],
    code: i32,
) -> (Vec<u8>, Vec<u8>, String) {
    let alerts = dir.join(format!("{name}.jsonl"));
    let summary = dir.join(format!("{name}.json"));
    let mut all = args.to_vec();
    let (a, s) = (alerts.to_str().unwrap(), summary.to_str().unwrap());
    all.extend(["--alerts", a, "--summary", s]);
    let out = replay(moto, &all);
    assert_eq!(out.status.code(), Some(code), "{name}: {}", stderr(&out));
    (
        std::fs::read(&alerts).unwrap(),
        std::fs::read(&summary).unwrap(),
        stderr(&out),
    )
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The ListObjectsV2 requests in moto's log: (prefix, delimited).
fn list_requests(log: &Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter_map(|l| {
            let start = l.find(&format!("GET /{BUCKET}"))?;
            let (path, query) = l[start..].split_whitespace().nth(1)?.split_once('?')?;
            if path.trim_end_matches('/') != format!("/{BUCKET}") {
                return None;
            }
            let params: BTreeMap<&str, &str> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            params.get("list-type")?;
            let prefix = params
                .get("prefix")
                .copied()
                .unwrap_or("")
                .replace("%2F", "/");
            Some((prefix, params.contains_key("delimiter")))
        })
        .collect()
}

const FROM: &str = "2026-01-10";
const TO: &str = "2026-01-20T12:00:00Z";
const ACCOUNTS: &str = "111111111111,222222222222";
const REGIONS: &str = "us-east-1";

#[test]
fn s3_replay_equals_local_replay_and_prunes_by_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("moto.log");
    let moto = Moto::start_logged(&log);
    upload_sample(&moto, BUCKET);
    let local = repo().join("sample-logs");
    let local = local.to_str().unwrap();
    let bucket = format!("s3://{BUCKET}/");

    // Everything: byte-identical alerts and summary from S3 and from disk.
    let (s3_alerts, s3_summary, _) = run(&moto, dir.path(), "s3", &[&bucket], 0);
    let (disk_alerts, disk_summary, _) = run(&moto, dir.path(), "disk", &[local], 0);
    assert_eq!(s3_alerts, disk_alerts, "alerts differ between S3 and disk");
    assert_eq!(
        s3_summary, disk_summary,
        "summaries differ between S3 and disk"
    );
    assert_eq!(
        s3_alerts,
        std::fs::read(repo().join("tests/golden/sample-alerts.jsonl")).unwrap()
    );

    // A selection: the same from both, and only the matching prefixes listed.
    let before = list_requests(&log).len();
    let sel = [
        "--from",
        FROM,
        "--to",
        TO,
        "--accounts",
        ACCOUNTS,
        "--regions",
        REGIONS,
    ];
    let (s3_report, disk_report) = (dir.path().join("s3-report"), dir.path().join("disk-report"));
    let args = |input: &str, report: &Path| -> Vec<String> {
        let mut v = vec![input.to_owned()];
        v.extend(sel.iter().map(|s| s.to_string()));
        v.extend(["--report".to_owned(), report.to_str().unwrap().to_owned()]);
        v
    };
    let (s3_args, disk_args) = (args(&bucket, &s3_report), args(local, &disk_report));
    let (s3_alerts, s3_summary, s3_err) = run(&moto, dir.path(), "s3-sel", &strs(&s3_args), 0);
    let (disk_alerts, disk_summary, _) = run(&moto, dir.path(), "disk-sel", &strs(&disk_args), 0);
    assert_eq!(
        s3_alerts, disk_alerts,
        "selected alerts differ between S3 and disk"
    );
    assert_eq!(
        s3_summary, disk_summary,
        "selected summaries differ between S3 and disk"
    );
    // The report too: every table byte for byte (Parquet and CSV); the documents and the
    // manifest differ only where they name the input (and so in the manifest's hashes of them).
    let names: BTreeSet<String> = std::fs::read_dir(&s3_report)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains("keys.parquet") && names.contains("report.html"),
        "{names:?}"
    );
    for name in &names {
        let (a, b) = (
            std::fs::read(s3_report.join(name)).unwrap(),
            std::fs::read(disk_report.join(name)).unwrap(),
        );
        if name.ends_with(".md") || name.ends_with(".html") {
            let b = String::from_utf8(b).unwrap().replace(local, &bucket);
            assert_eq!(
                String::from_utf8(a).unwrap(),
                b,
                "{name} differs between S3 and disk"
            );
        } else if name == "manifest.json" {
            let files = |bytes: &[u8]| -> Vec<serde_json::Value> {
                json(bytes)["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| !f["name"].as_str().unwrap().starts_with("report."))
                    .cloned()
                    .collect()
            };
            assert_eq!(files(&a), files(&b), "the manifest's table hashes differ");
            assert_eq!(json(&a)["range_from"], "2026-01-10T00:00:00Z");
        } else {
            assert!(a == b, "{name} differs between S3 and disk");
        }
    }
    let summary = json(&s3_summary);

    // Independently: the files that can hold selected events are the selected accounts' and
    // regions' day folders from the day of --from to the day after --to.
    let days: BTreeSet<String> = (10..=21).map(|d| format!("2026/01/{d:02}")).collect();
    let in_folders = |rel: &str, days: Option<&BTreeSet<String>>| {
        let parts: Vec<&str> = rel.split('/').collect();
        // AWSLogs/o-.../<account>/CloudTrail/<region>/YYYY/MM/DD/name
        parts.len() == 9
            && ACCOUNTS.split(',').any(|a| a == parts[2])
            && parts[3] == "CloudTrail"
            && parts[4] == REGIONS
            && days.is_none_or(|d| d.contains(&parts[5..8].join("/")))
    };
    let sample = files(&repo().join("sample-logs"));
    let expected_objects = sample
        .iter()
        .filter(|(r, _)| in_folders(r, Some(&days)))
        .count();
    assert!(expected_objects > 50, "{expected_objects}");
    assert_eq!(summary["input"]["log_objects"], expected_objects as u64);
    assert_eq!(summary["input"]["files_found"], expected_objects as u64);
    // Listed besides: what lies at the bucket's top (its top level is listed to find AWSLogs/).
    let listed = expected_objects + sample.iter().filter(|(r, _)| !r.contains('/')).count();
    assert!(
        s3_err.contains(&format!("S3: {listed} objects listed")),
        "S3 listed more than the selected day folders: {s3_err}"
    );

    // moto's own log: exactly the folders that can hold selected files were listed, each once:
    // level by level (with a delimiter) down to the months, and the selected days whole.
    let requests = &list_requests(&log)[before..];
    let mut expected = vec![
        ("".to_owned(), true),
        ("AWSLogs/".to_owned(), true),
        ("AWSLogs/o-a1b2c3d4e5/".to_owned(), true),
    ];
    for account in ACCOUNTS.split(',') {
        let base = format!("AWSLogs/o-a1b2c3d4e5/{account}/");
        for level in [
            "",
            "CloudTrail/",
            "CloudTrail/us-east-1/",
            "CloudTrail/us-east-1/2026/",
        ] {
            expected.push((format!("{base}{level}"), true));
        }
        expected.push((format!("{base}CloudTrail/us-east-1/2026/01/"), true));
        for day in &days {
            expected.push((format!("{base}CloudTrail/us-east-1/{day}/"), false));
        }
    }
    let mut seen = requests.to_vec();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "the listing requests moto served");
    assert!(
        s3_err.contains(&format!("in {} requests", expected.len())),
        "{s3_err}"
    );

    // [from, to) exactly: count the selected KMS events by reading every file of the selected
    // accounts and regions (all days: nothing in range was lost by pruning).
    let (from, to) = ("2026-01-10T00:00:00Z", TO);
    let mut ids = BTreeSet::new();
    let mut outside_read = 0u64;
    for (rel, path) in sample.iter().filter(|(r, _)| in_folders(r, None)) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for r in v["Records"].as_array().unwrap() {
            if r["eventSource"] != "kms.amazonaws.com" {
                continue;
            }
            let t = r["eventTime"].as_str().unwrap();
            let id = r["sharedEventID"]
                .as_str()
                .or(r["eventID"].as_str())
                .unwrap();
            if (from..to).contains(&t) {
                ids.insert(id.to_owned());
            } else if in_folders(rel, Some(&days)) {
                outside_read += 1;
            }
        }
    }
    assert_eq!(summary["kms_calls"], ids.len() as u64);
    let s = &summary["input"]["selection"];
    assert_eq!(s["from"], from);
    assert_eq!(s["to"], TO);
    assert_eq!(
        s["accounts"],
        serde_json::json!(["111111111111", "222222222222"])
    );
    assert_eq!(s["regions"], serde_json::json!(["us-east-1"]));
    assert_eq!(s["kms_records_outside_range"], outside_read);
    assert!(summary["first_event"].as_str().unwrap() >= from);
    assert!(summary["last_event"].as_str().unwrap() < TO);
    let per_key: u64 = summary["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(per_key, ids.len() as u64);
}

#[test]
fn s3_failures_are_named_counted_and_the_replay_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let key = |hhmm: &str, id: &str| {
        format!("AWSLogs/111111111111/CloudTrail/us-east-1/2026/03/02/111111111111_CloudTrail_us-east-1_20260302T{hhmm}Z_{id}.json.gz")
    };
    let good = gzip(&log_file(&[decrypt_record(
        "good-1",
        "2026-03-02T00:10:00Z",
        "app",
        "k1",
    )]));
    runtime().block_on(async {
        let c = moto.clients().await;
        c.bucket("trail").await;
        c.put("trail", &key("0015", "good"), good).await;
        c.put(
            "trail",
            &key("0020", "corrupt"),
            corrupt_gzip("2026-03-02T00:15:00Z"),
        )
        .await;
        // A console "folder": neither a file found nor skipped, as on a disk.
        c.put("trail", "AWSLogs/111111111111/", Vec::new()).await;
    });
    let (_, summary, err) = run(
        &moto,
        dir.path(),
        "fail",
        // One key a page: every listing runs over pages.
        &[
            "s3://trail/AWSLogs/",
            "s3://no-such-bucket/AWSLogs/",
            "--list-page-size",
            "1",
        ],
        1,
    );
    let summary = json(&summary);
    assert_eq!(summary["kms_calls"], 1);
    assert_eq!(summary["input"]["log_objects"], 2);
    assert_eq!(summary["input"]["files_found"], 2);
    assert_eq!(summary["input"]["skipped"], serde_json::json!({}));
    assert_eq!(summary["input"]["objects_failed"], 2);
    let failures = summary["input"]["failures"].as_array().unwrap();
    let named: BTreeSet<&str> = failures
        .iter()
        .map(|f| f["object"].as_str().unwrap())
        .collect();
    let corrupt = format!("s3://trail/{}", key("0020", "corrupt"));
    assert_eq!(
        named,
        BTreeSet::from([corrupt.as_str(), "s3://no-such-bucket/AWSLogs/"])
    );
    assert!(err.contains("the bucket does not exist"), "{err}");
    // A page of one key: the day folder's two objects take two pages (and the empty last page
    // S3 may send), the folder placeholder's level one more.
    let requests: u64 = err
        .split("objects listed in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no listing line: {err}"));
    assert!(
        requests >= 7,
        "pages were not followed: {requests} requests\n{err}"
    );
    assert!(err.contains(&corrupt), "{err}");
}

#[test]
fn a_bad_s3_url_or_time_is_refused_plainly() {
    let moto = Moto::start();
    for (args, want) in [
        (vec!["s3:///x"], "no bucket name"),
        (vec!["s3://b/", "--from", "2026-13-01"], "--from 2026-13-01"),
        (
            vec!["s3://b/", "--from", "2026-03-02", "--to", "2026-03-01"],
            "before --to",
        ),
        (
            vec!["s3://b/", "--accounts", "12345"],
            "not a 12-digit account id",
        ),
    ] {
        let out = replay(&moto, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}
