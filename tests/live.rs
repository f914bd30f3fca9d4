//! The live service against real S3 and SQS (moto's server on 127.0.0.1, the real SDK clients):
//! notification shapes, poison messages, redelivery, crashes and graceful restarts, `/metrics`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use common::aws::*;
use common::{decrypt_record, gzip, log_file, s3_record};

const BUCKET: &str = "trail-bucket";

/// A trail-layout key for object `id` (an organization trail).
fn key(id: &str) -> String {
    key_delivered(id, 15)
}

/// The key of object `id` delivered `minute` minutes after 2026-03-02T00:00Z (its events must not
/// be later than that, or they are future events).
fn key_delivered(id: &str, minute: usize) -> String {
    format!(
        "AWSLogs/o-test123/111111111111/CloudTrail/us-east-1/2026/03/02/111111111111_CloudTrail_us-east-1_20260302T{:02}{:02}Z_{id}.json.gz",
        minute / 60,
        minute % 60
    )
}

/// A gzipped log object of `kms` Decrypt calls (event ids `{id}-{i}`) and one S3 call; minute
/// `minute` of 2026-03-02 00:xx.
fn object(id: &str, kms: usize, minute: usize) -> Vec<u8> {
    let t = format!("2026-03-02T00:{:02}:00Z", minute % 60);
    let mut recs: Vec<String> = (0..kms)
        .map(|i| decrypt_record(&format!("{id}-{i}"), &t, &format!("app{}", i % 3), "k1"))
        .collect();
    recs.push(s3_record(&format!("{id}-s3"), &t));
    gzip(&log_file(&recs))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A `kmswatch serve` on `queue` with the tests' config plus `extra`, in a fresh directory.
fn serve(moto: &Moto, queue: &str, extra: &str) -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = service_config(dir.path(), moto, queue, &[BUCKET], port, extra);
    let svc = Service::start(&cfg, port, &dir.path().join("serve.log"));
    (dir, svc)
}

/// Waits until the service has deleted at least `n` messages.
fn wait_deleted(svc: &Service, n: f64, what: &str) {
    wait_until(60, what, || {
        metric(&svc.metrics(), "kmswatch_sqs_messages_deleted_total", &[]) >= n
    });
}

fn promtool_check(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: run scripts/test-deps (Debian's prometheus package)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_notification_shape_is_read_and_skips_are_deleted() {
    let rt = runtime();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let q = rt.block_on(async {
        c.bucket(BUCKET).await;
        let q = c.queues("shapes", 2).await;
        let spaced = key("SPACE a+b");
        for (id, k) in [
            ("A", key("A")),
            ("B", key("B")),
            ("C", key("C")),
            ("D", spaced.clone()),
            ("E", key("E")),
            ("F", key("F")),
        ] {
            c.put(BUCKET, &k, object(id, 3, 1)).await;
        }
        let digest = "AWSLogs/o-test123/111111111111/CloudTrail-Digest/us-east-1/2026/03/02/111111111111_CloudTrail-Digest_us-east-1_x_us-east-1_20260302T001500Z.json.gz";
        c.put(BUCKET, digest, b"{}".to_vec()).await;
        c.put(BUCKET, &key("EMPTY"), Vec::new()).await;
        for body in [
            cloudtrail_notification(BUCKET, &[&key("A"), &key("B")], false),
            cloudtrail_notification(BUCKET, &[&key("C")], true),
            s3_event(BUCKET, &spaced, 100),
            sns_envelope(&s3_event(BUCKET, &key("E"), 100)),
            eventbridge(BUCKET, &key("F"), 100),
            S3_TEST_EVENT.to_string(),
            sns_envelope(S3_TEST_EVENT),
            cloudtrail_notification(BUCKET, &[digest], false),
            s3_event(BUCKET, &key("EMPTY"), 0),
        ] {
            c.send(&q.url, &body).await;
        }
        q
    });
    let (_dir, mut svc) = serve(&moto, &q.url, "");
    wait_deleted(&svc, 9.0, "all 9 messages deleted");
    let m = svc.metrics();
    let deleted = |r: &str| {
        metric(
            &m,
            "kmswatch_sqs_messages_deleted_total",
            &[&format!("reason=\"{r}\"")],
        )
    };
    assert_eq!(deleted("processed"), 5.0, "{}", svc.log_text());
    assert_eq!(deleted("test_event"), 2.0);
    assert_eq!(deleted("nothing_to_read"), 2.0);
    assert_eq!(metric(&m, "kmswatch_sqs_messages_failed_total", &[]), 0.0);
    assert_eq!(metric(&m, "kmswatch_s3_objects_fetched_total", &[]), 6.0);
    assert_eq!(
        metric(
            &m,
            "kmswatch_s3_objects_skipped_total",
            &["reason=\"digest\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "kmswatch_s3_objects_skipped_total",
            &["reason=\"empty\""]
        ),
        1.0
    );
    assert_eq!(metric(&m, "kmswatch_kms_calls_total", &[]), 18.0);
    assert_eq!(
        metric(
            &m,
            "kmswatch_kms_calls_total",
            &[
                "principal=\"arn:aws:iam::111111111111:role/app0\"",
                "operation=\"Decrypt\"",
                "outcome=\"ok\""
            ]
        ),
        6.0
    );
    assert_eq!(metric(&m, "kmswatch_records_skipped_total", &[]), 6.0);
    assert_eq!(svc.get("/readyz").as_deref(), Some("ready\n"));
    promtool_check(&m);
    assert!(svc.signal("TERM").unwrap().success(), "{}", svc.log_text());
    assert_eq!(rt.block_on(c.depth(&q.url)), 0);
    assert_eq!(rt.block_on(c.depth(&q.dlq_url)), 0);
}

#[test]
fn poison_messages_are_left_for_the_dead_letter_queue_while_good_ones_flow() {
    let rt = runtime();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let mut bomb_json = br#"{"Records":[{"eventSource":"kms.amazonaws.com","pad":""#.to_vec();
    bomb_json.extend(std::iter::repeat_n(b' ', 3_000_000));
    bomb_json.extend(br#""}]}"#);
    let corrupt = common::corrupt_gzip("2026-03-02T00:00:00Z");
    let poison = [
        "this is not json".to_string(),
        r#"{"hello":"world"}"#.to_string(),
        cloudtrail_notification("someone-elses-bucket", &[&key("G1")], false),
        cloudtrail_notification(BUCKET, &[&key("MISSING")], false),
        cloudtrail_notification(BUCKET, &[&key("CORRUPT")], false),
        cloudtrail_notification(BUCKET, &[&key("BOMB")], false),
    ];
    let q = rt.block_on(async {
        c.bucket(BUCKET).await;
        let q = c.queues("poison", 2).await;
        c.put(BUCKET, &key("CORRUPT"), corrupt).await;
        c.put(BUCKET, &key("BOMB"), gzip(&bomb_json)).await;
        for (i, p) in poison.iter().enumerate() {
            let id = format!("G{i}");
            c.put(BUCKET, &key(&id), object(&id, 3, i)).await;
            c.send(
                &q.url,
                &cloudtrail_notification(BUCKET, &[&key(&id)], false),
            )
            .await;
            c.send(&q.url, p).await;
        }
        q
    });
    let (_dir, mut svc) = serve(&moto, &q.url, "[decode]\nmax_object_bytes = 1000000\n");
    wait_until(90, "main queue drained", || {
        rt.block_on(c.depth(&q.url)) == 0
    });
    let m = svc.metrics();
    assert_eq!(
        metric(&m, "kmswatch_kms_calls_total", &[]),
        18.0,
        "{}",
        svc.log_text()
    );
    assert_eq!(
        metric(
            &m,
            "kmswatch_sqs_messages_deleted_total",
            &["reason=\"processed\""]
        ),
        6.0
    );
    for reason in [
        "not_json",
        "unknown_shape",
        "bucket_not_allowed",
        "not_found",
        "too_large",
    ] {
        assert!(
            metric(
                &m,
                "kmswatch_sqs_messages_failed_total",
                &[&format!("reason=\"{reason}\"")]
            ) >= 1.0,
            "no failure counted as {reason}:\n{m}"
        );
    }
    assert!(
        metric(&m, "kmswatch_s3_objects_failed_total", &["reason=\"gzip_"]) >= 1.0,
        "{m}"
    );
    // The bucket outside the allowlist was never asked for.
    assert!(!svc.log_text().contains("someone-elses-bucket/AWSLogs"));
    let mut dead = BTreeSet::new();
    rt.block_on(async {
        for _ in 0..10 {
            dead.extend(c.receive_bodies(&q.dlq_url, 60).await);
            if dead.len() == poison.len() {
                break;
            }
        }
    });
    assert_eq!(dead, poison.iter().cloned().collect::<BTreeSet<_>>());
    assert!(svc.signal("TERM").unwrap().success());
}

#[test]
fn a_redelivered_message_is_not_counted_twice() {
    let rt = runtime();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let q = rt.block_on(async {
        c.bucket(BUCKET).await;
        let q = c.queues("redelivery", 2).await;
        c.put(BUCKET, &key("R1"), object("R1", 4, 0)).await;
        let body = cloudtrail_notification(BUCKET, &[&key("R1")], false);
        c.send(&q.url, &body).await;
        c.send(&q.url, &body).await;
        // A forged record dated 2099 in a file delivered at 00:15: a future event, not folded.
        let forged = decrypt_record("F1-0", "2099-01-01T00:00:00Z", "app0", "k0");
        c.put(BUCKET, &key("F1"), gzip(&log_file(&[forged]))).await;
        c.send(
            &q.url,
            &cloudtrail_notification(BUCKET, &[&key("F1")], false),
        )
        .await;
        q
    });
    let (_dir, mut svc) = serve(&moto, &q.url, "");
    wait_deleted(&svc, 3.0, "all three messages deleted");
    let m = svc.metrics();
    assert_eq!(metric(&m, "kmswatch_kms_calls_total", &[]), 4.0);
    // The object of the second message was folded before: skipped whole, not call by call.
    assert_eq!(metric(&m, "kmswatch_duplicate_objects_total", &[]), 1.0);
    assert_eq!(metric(&m, "kmswatch_duplicate_events_total", &[]), 0.0);
    assert_eq!(metric(&m, "kmswatch_future_events_total", &[]), 1.0);
    assert!(
        svc.log_text()
            .contains("counted as future events, not folded"),
        "{}",
        svc.log_text()
    );
    assert!(svc.signal("TERM").unwrap().success());
}

/// Uploads `n` objects (with records repeated across neighbours, as CloudTrail redelivers), one
/// message each; returns the local copy of the bucket for replay.
fn load_stream(rt: &tokio::runtime::Runtime, c: &Clients, queue: &str, n: usize, dir: &Path) {
    rt.block_on(async {
        for i in 0..n {
            let id = format!("S{i:04}");
            let t = format!("2026-03-02T{:02}:{:02}:00Z", i / 60 % 24, i % 60);
            let mut recs: Vec<String> = (0..40)
                .map(|j| {
                    decrypt_record(
                        &format!("{id}-{j}"),
                        &t,
                        &format!("app{}", j % 5),
                        &format!("k{}", j % 4),
                    )
                })
                .collect();
            if i > 0 {
                // The previous object's first records again.
                let p = format!("S{:04}", i - 1);
                recs.extend((0..5).map(|j| {
                    decrypt_record(
                        &format!("{p}-{j}"),
                        &t,
                        &format!("app{}", j % 5),
                        &format!("k{}", j % 4),
                    )
                }));
            }
            let body = gzip(&log_file(&recs));
            let k = key_delivered(&id, i % (24 * 60) + 5);
            common::write(&dir.join(&k), &body);
            c.put(BUCKET, &k, body).await;
            c.send(queue, &cloudtrail_notification(BUCKET, &[&k], false))
                .await;
        }
    });
}

fn summary_totals(path: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    serde_json::json!({ "kms_calls": v["kms_calls"], "keys": v["keys"] })
}

/// Interrupts the service with `signal` mid-stream, restarts it, lets it drain, and checks the
/// totals in its state file equal a replay of the same objects.
fn interrupted_stream_counts_every_event_once(signal: &str) {
    let rt = runtime();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let logs = tempfile::tempdir().unwrap();
    let q = rt.block_on(async {
        c.bucket(BUCKET).await;
        c.queues("stream", 5).await
    });
    let n = 240;
    load_stream(&rt, &c, &q.url, n, logs.path());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let port = free_port();
    let cfg = service_config(
        dir.path(),
        &moto,
        &q.url,
        &[BUCKET],
        port,
        &format!(
            "[state]\npath = \"{}\"\nsave_interval_secs = 1\n",
            state.display()
        ),
    );
    // A short visibility timeout so that what the killed process had in flight returns quickly.
    let cfg_text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            "[source]\n",
            "[source]\nvisibility_timeout_secs = 5\nfetch_concurrency = 2\n",
        )
        .replace("receivers = 1\n", "receivers = 2\n");
    std::fs::write(&cfg, cfg_text).unwrap();
    let log = dir.path().join("serve.log");
    let mut svc = Service::start(&cfg, port, &log);
    wait_until(120, "some messages deleted", || {
        metric(&svc.metrics(), "kmswatch_sqs_messages_deleted_total", &[]) >= 20.0
    });
    let status = svc.signal(signal).unwrap();
    if signal == "TERM" {
        assert!(status.success(), "{}", svc.log_text());
    }
    drop(svc);
    let remaining = rt.block_on(c.depth(&q.url));
    assert!(
        remaining > 0,
        "the interruption came too late to test anything"
    );
    let mut svc = Service::start(&cfg, port, &log);
    wait_until(180, "queue drained after the restart", || {
        rt.block_on(c.depth(&q.url)) == 0
    });
    // A restart with messages in flight holds the watermark for their visibility timeout plus a
    // margin (35 s here); the windows close once it is over.
    wait_until(90, "the restart hold over", || {
        let log = svc.log_text();
        !log.contains("holding the watermark") || log.contains("restart hold over")
    });
    wait_until(30, "every message deleted", || {
        metric(&svc.metrics(), "kmswatch_sqs_messages_in_flight", &[]) == 0.0
    });
    assert!(svc.signal("TERM").unwrap().success(), "{}", svc.log_text());
    assert_eq!(rt.block_on(c.depth(&q.dlq_url)), 0);

    let live = dir.path().join("live-summary.json");
    let out = common::kmswatch(&[
        "state",
        "summary",
        state.to_str().unwrap(),
        "--out",
        live.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = dir.path().join("replay-summary.json");
    let out = common::kmswatch(&[
        "replay",
        logs.path().to_str().unwrap(),
        "--summary",
        replayed.to_str().unwrap(),
        "--alerts",
        dir.path().join("replay-alerts.jsonl").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let (l, r) = (read(&live), read(&replayed));
    // The calls the stopped process had in flight come back after their visibility timeout; the
    // restarted service holds the watermark for them, so they are not judged late (without the
    // hold about a fifth of the calls were), and the verdicts are replay's.
    let late = l["late_events"].as_u64().unwrap();
    assert!(
        late * 100 <= (n as u64) * 40 * 3,
        "{late} of {} calls judged late after the restart",
        n * 40
    );
    for field in ["alerts_firing", "alerts_resolved"] {
        assert_eq!(l[field], r[field], "{field}");
    }
    let (live, replayed) = (summary_totals(&live), summary_totals(&replayed));
    assert_eq!(replayed["kms_calls"], serde_json::json!(n * 40));
    assert_eq!(live, replayed);
}

#[test]
fn killed_mid_stream_and_restarted_counts_every_event_exactly_once() {
    interrupted_stream_counts_every_event_once("KILL");
}

#[test]
fn sigterm_mid_stream_loses_nothing() {
    interrupted_stream_counts_every_event_once("TERM");
}

#[test]
fn sighup_reloads_rules_and_keeps_the_old_ones_when_invalid() {
    let rt = runtime();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let q = rt.block_on(async {
        c.bucket(BUCKET).await;
        c.queues("reload", 2).await
    });
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let shipped = common::repo().join("rules/lifecycle.toml");
    std::fs::copy(&shipped, rules.join("lifecycle.toml")).unwrap();
    let port = free_port();
    let cfg = service_config(dir.path(), &moto, &q.url, &[BUCKET], port, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace(
        &format!("paths = [\"{}\"]", common::repo().join("rules").display()),
        &format!("paths = [\"{}\"]", rules.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let mut svc = Service::start(&cfg, port, &dir.path().join("serve.log"));
    let loaded = metric(&svc.metrics(), "kmswatch_rules_loaded", &[]);
    assert!(loaded >= 1.0);

    std::fs::write(
        rules.join("bad.toml"),
        "[[rule]]\nid = \"x\"\nkind = \"nope\"\n",
    )
    .unwrap();
    svc.signal("HUP");
    wait_until(30, "a failed reload", || {
        metric(
            &svc.metrics(),
            "kmswatch_rule_reloads_total",
            &["result=\"error\""],
        ) == 1.0
    });
    assert_eq!(metric(&svc.metrics(), "kmswatch_rules_loaded", &[]), loaded);
    assert!(svc.log_text().contains("bad.toml"), "{}", svc.log_text());

    std::fs::remove_file(rules.join("bad.toml")).unwrap();
    std::fs::copy(
        common::repo().join("rules/volume.toml"),
        rules.join("volume.toml"),
    )
    .unwrap();
    svc.signal("HUP");
    wait_until(30, "a successful reload", || {
        metric(
            &svc.metrics(),
            "kmswatch_rule_reloads_total",
            &["result=\"ok\""],
        ) == 1.0
    });
    assert!(metric(&svc.metrics(), "kmswatch_rules_loaded", &[]) > loaded);
    assert!(svc.signal("TERM").unwrap().success());
}

#[test]
fn visibility_is_extended_while_a_message_waits_for_the_state_save() {
    let rt = runtime();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let q = rt.block_on(async {
        c.bucket(BUCKET).await;
        let q = c.queues("visibility", 5).await;
        c.put(BUCKET, &key("V1"), object("V1", 3, 0)).await;
        c.send(
            &q.url,
            &cloudtrail_notification(BUCKET, &[&key("V1")], false),
        )
        .await;
        q
    });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The message is folded at once but deleted only after the first save, 12 s later; its
    // visibility timeout is 5 s, so only extensions keep SQS from handing it out again.
    let state = dir.path().join("state.json");
    let cfg = service_config(
        dir.path(),
        &moto,
        &q.url,
        &[BUCKET],
        port,
        &format!(
            "[state]\npath = \"{}\"\nsave_interval_secs = 12\n",
            state.display()
        ),
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[source]\n", "[source]\nvisibility_timeout_secs = 5\n");
    std::fs::write(&cfg, text).unwrap();
    let mut svc = Service::start(&cfg, port, &dir.path().join("serve.log"));
    wait_until(60, "the message deleted", || {
        metric(&svc.metrics(), "kmswatch_sqs_messages_deleted_total", &[]) >= 1.0
    });
    let m = svc.metrics();
    assert_eq!(
        metric(&m, "kmswatch_sqs_messages_received_total", &[]),
        1.0,
        "{}",
        svc.log_text()
    );
    assert_eq!(metric(&m, "kmswatch_duplicate_events_total", &[]), 0.0);
    assert_eq!(metric(&m, "kmswatch_kms_calls_total", &[]), 3.0);
    assert!(state.exists());
    assert!(svc.signal("TERM").unwrap().success());
    assert_eq!(rt.block_on(c.depth(&q.url)), 0);
}

/// Supervision: a stage that dies (here the fold, by a fault only debug builds have) stops the
/// service with a non-zero exit naming it, and its message is not deleted.
#[test]
fn a_fold_that_dies_takes_the_service_down_naming_it() {
    let moto = Moto::start();
    let rt = runtime();
    let (c, q) = rt.block_on(async {
        let c = moto.clients().await;
        c.bucket(BUCKET).await;
        c.put(BUCKET, &key("die"), object("die", 3, 1)).await;
        let q = c.queues("supervised", 5).await;
        (c, q)
    });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = service_config(dir.path(), &moto, &q.url, &[BUCKET], port, "");
    let log = dir.path().join("serve.log");
    let mut svc = Service::start_with_env(&cfg, port, &log, &[("KMSWATCH_FAULT", "fold:1")]);
    rt.block_on(c.send(
        &q.url,
        &cloudtrail_notification(BUCKET, &[&key("die")], false),
    ));
    let status = svc.wait_exit(60);
    let text = svc.log_text();
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(
        text.contains("error: the fold stage stopped before shutdown was asked for"),
        "{text}"
    );
    assert!(text.contains("injected fault in the fold stage"), "{text}");
    // Not deleted: it comes back once its visibility timeout ends.
    let back = rt.block_on(async {
        let mut bodies = Vec::new();
        for _ in 0..30 {
            bodies = c.receive_bodies(&q.url, 30).await;
            if !bodies.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        bodies
    });
    assert_eq!(
        back.len(),
        1,
        "the message was deleted although never folded"
    );
}
