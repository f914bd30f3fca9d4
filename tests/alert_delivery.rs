//! Alert delivery end to end: the committed sample logs go through moto's S3 and SQS into
//! `kmswatch serve`, which delivers to a real Alertmanager and to a webhook receiver.
//!
//! The objects are sent in two phases, split where nine alerts fire at once. After each phase,
//! Alertmanager's API must list exactly the alerts that fire then, with their exact labels; after
//! the second, eight of them have resolved: Alertmanager no longer lists them and notifies them as
//! resolved, ending when their quiet window ended. Every alert of the sample, those that fire and
//! resolve within one phase included, must be notified as firing (kmswatch holds each firing for
//! `keep_firing_for_secs` before posting its resolution). A second Alertmanager URL that accepts
//! connections and never answers must not hold any of this back. The webhook must get every
//! alert of the sample (`tests/golden/sample-alerts.jsonl`), each signed with the configured key.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::alertmanager::{Alertmanager, Labels};
use common::aws::*;
use common::receiver::{Receiver, Silent};
use kmswatch::alerts::{self, Alert, AlertState, Evidence, Firing, Group, ALERT_SCHEMA};
use kmswatch::config::{AlertmanagerConfig, AlertsConfig};
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::metrics::{LabelLimits, Metrics};
use kmswatch::replay::{fold_objects, list_objects, ReplayOptions};
use kmswatch::rules::load_paths;
use kmswatch::rules::{Dim, Severity};
use kmswatch::server::AlertBoard;
use kmswatch::sinks::{self, read_alert, signature, SIGNATURE_HEADER};
use kmswatch::sources::ObjectRef;

const BUCKET: &str = "org-trail-bucket";
const SECRET: &str = "webhook-test-key";
const TOKEN: &str = "webhook-test-token";
/// Phase one: the objects delivered up to this minute (2026-02-03T10:56Z).
const PHASE_ONE_UNTIL: &str = "20260203T1056Z";
/// Keys per notification (CloudTrail's own notifications list several).
const KEYS_PER_MESSAGE: usize = 100;

const LEGACY_REPORTS: &str =
    "arn:aws:kms:us-east-1:111111111111:key/3faa1536-5d59-4ead-8abe-dc7216adff92";
const DATA_LAKE: &str =
    "arn:aws:kms:us-east-1:222222222222:key/3d06ddaf-eacf-4fef-a82d-3084517ed2c8";
const APP_DATA: &str =
    "arn:aws:kms:us-east-1:111111111111:key/aede8aea-d5fc-4b53-8827-c9bd57f81362";
const DOOMED: &str = "arn:aws:kms:us-east-1:111111111111:key/eeddf66e-b1d9-4f57-91c2-c5f559525c4e";
const LEDGER: &str = "arn:aws:kms:us-east-1:111111111111:key/18b580dc-283c-4a58-ba90-c928ecc21548";
const BILLING: &str = "arn:aws:kms:us-east-1:111111111111:key/f36d09c2-8073-4561-92fb-4f04c6eaff6d";
const SHARED_EXPORTS: &str =
    "arn:aws:kms:us-east-1:111111111111:key/79fb3897-4b61-4b0c-ae47-52458199c914";
const KMS_ADMIN: &str = "arn:aws:iam::111111111111:role/kms-admin";
const PARTNER_ETL: &str = "arn:aws:iam::333333333333:role/partner-etl";
const OPS_ALICE: &str = "arn:aws:iam::111111111111:user/ops-alice";

/// The labels kmswatch gives an alert of `rule` on `key` (by `principal`): the key's account and
/// region come from its ARN.
fn labels(rule: &str, severity: &str, key: &str, principal: Option<&str>) -> Labels {
    let (region, account) = (
        key.split(':').nth(3).unwrap(),
        key.split(':').nth(4).unwrap(),
    );
    let mut l: Labels = [
        ("alertname", rule),
        ("severity", severity),
        ("key", key),
        ("account", account),
        ("region", region),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(p) = principal {
        l.insert("principal".into(), p.into());
    }
    l
}

/// What fires once phase one is folded (see sample-logs/README.md, "Incidents").
fn firing_after_phase_one() -> BTreeSet<Labels> {
    #[rustfmt::skip]
    let firing = [
        labels("unused-key", "low", LEGACY_REPORTS, None),
        labels("decrypt-encrypt-ratio", "medium", DATA_LAKE, None),
        labels("key-deletion-scheduled", "critical", DOOMED, Some(KMS_ADMIN)),
        labels("key-disabled", "high", LEDGER, Some(KMS_ADMIN)),
        labels("key-rotation-disabled", "medium", BILLING, Some(KMS_ADMIN)),
        labels("key-policy-changed", "medium", BILLING, Some(KMS_ADMIN)),
        labels("cross-account-key-use", "medium", SHARED_EXPORTS, Some(PARTNER_ETL)),
        labels("new-principal-on-key", "medium", SHARED_EXPORTS, Some(PARTNER_ETL)),
        labels("grant-created", "low", APP_DATA, Some(OPS_ALICE)),
    ];
    firing.into_iter().collect()
}

/// What still fires at the end of the sample.
fn firing_at_the_end() -> BTreeSet<Labels> {
    [labels("unused-key", "low", LEGACY_REPORTS, None)].into()
}

/// The rule ids the engine has firing after folding `objects` (a check of the two sets above
/// against the engine itself, should the sample change).
fn engine_firing(objects: &[ObjectRef]) -> BTreeSet<String> {
    let rules = load_paths(&[common::repo().join("rules")]).unwrap();
    let mut engine = Engine::new(EngineConfig::default(), rules);
    let mut input = Default::default();
    fold_objects(
        &mut engine,
        objects,
        &ReplayOptions::default(),
        &mut input,
        |_| Ok(()),
    )
    .unwrap();
    engine.firing().map(|((rule, _), _)| rule.clone()).collect()
}

fn rules_of(set: &BTreeSet<Labels>) -> BTreeSet<String> {
    set.iter().map(|l| l["alertname"].clone()).collect()
}

/// The S3 key of a sample object: its path under `sample-logs/`.
fn s3_key(root: &Path, o: &ObjectRef) -> String {
    let ObjectRef::File(p) = o else {
        panic!("{o} is not a file")
    };
    p.strip_prefix(root).unwrap().to_string_lossy().into_owned()
}

fn golden_alerts() -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(common::repo().join("tests/golden/sample-alerts.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// JSON values as a sorted multiset of their texts.
fn multiset(values: impl IntoIterator<Item = serde_json::Value>) -> Vec<String> {
    let mut v: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    v.sort();
    v
}

/// The alerts Alertmanager notified the receiver of: (status, labels, endsAt), in order.
fn notified(receiver: &Receiver) -> Vec<(String, Labels, String)> {
    receiver
        .requests("/alertmanager")
        .iter()
        .flat_map(|r| r.json()["alerts"].as_array().unwrap().clone())
        .map(|a| {
            (
                a["status"].as_str().unwrap().to_string(),
                serde_json::from_value(a["labels"].clone()).unwrap(),
                a["endsAt"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A bucket holding the sample's objects and a queue (with its dead-letter queue) for their
/// notifications.
fn upload_sample(
    rt: &tokio::runtime::Runtime,
    c: &Clients,
    root: &Path,
    objects: &[ObjectRef],
) -> Queues {
    let keys: Vec<String> = objects.iter().map(|o| s3_key(root, o)).collect();
    rt.block_on(async {
        c.bucket(BUCKET).await;
        let q = c.queues("alerts", 5).await;
        let mut uploads = tokio::task::JoinSet::new();
        for chunk in keys.chunks(keys.len().div_ceil(16)) {
            let (s3, root, chunk) = (c.s3.clone(), root.to_path_buf(), chunk.to_vec());
            uploads.spawn(async move {
                for k in chunk {
                    let body = std::fs::read(root.join(&k)).unwrap();
                    s3.put_object()
                        .bucket(BUCKET)
                        .key(&k)
                        .body(body.into())
                        .send()
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(r) = uploads.join_next().await {
            r.unwrap();
        }
        q
    })
}

/// Announces `objects` on the queue, `KEYS_PER_MESSAGE` a message; returns the messages sent.
fn announce(
    rt: &tokio::runtime::Runtime,
    c: &Clients,
    queue: &str,
    root: &Path,
    objects: &[ObjectRef],
) -> usize {
    let keys: Vec<String> = objects.iter().map(|o| s3_key(root, o)).collect();
    rt.block_on(async {
        for chunk in keys.chunks(KEYS_PER_MESSAGE) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            c.send(queue, &cloudtrail_notification(BUCKET, &chunk, false))
                .await;
        }
    });
    keys.len().div_ceil(KEYS_PER_MESSAGE)
}

/// The service's configuration for the sample on `queue`, with `extra`: one object at a time, so
/// that they are folded in the order they are announced and raise the golden alerts.
fn sample_config(dir: &Path, moto: &Moto, queue: &str, port: u16, extra: &str) -> PathBuf {
    let cfg = service_config(dir, moto, queue, &[BUCKET], port, extra);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[source]\n", "[source]\nfetch_concurrency = 1\n");
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[test]
fn alertmanager_and_a_webhook_get_the_sample_alerts() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let root = common::repo().join("sample-logs");
    let (objects, _) = list_objects(std::slice::from_ref(&root));
    let split = 1 + objects
        .iter()
        .rposition(|o| o.to_string().contains(PHASE_ONE_UNTIL))
        .expect("a file delivered at PHASE_ONE_UNTIL");
    let (one, two) = objects.split_at(split);
    assert_eq!(engine_firing(one), rules_of(&firing_after_phase_one()));
    assert_eq!(engine_firing(&objects), rules_of(&firing_at_the_end()));

    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    // Grouped by rule: alerts that join a notified group are notified only at its next flush.
    let am = Alertmanager::start_grouped_by_rule(
        dir.path(),
        &format!("{}/alertmanager", receiver.url),
        2,
    );
    // Listed first: the healthy Alertmanager must not wait for it.
    let hung = Silent::start();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let q = upload_sample(&rt, &c, &root, &objects);

    let port = free_port();
    let extra = format!(
        "[alerts.alertmanager]\nurls = [\"{hung}\", \"{am}\"]\nresend_interval_secs = 2\n\
         keep_firing_for_secs = 5\ntimeout_secs = 300\n\
         [[alerts.webhook]]\nurl = \"{hook}/kmswatch\"\nsecret_env = \"KMSWATCH_TEST_WEBHOOK_SECRET\"\n\
         token_env = \"KMSWATCH_TEST_WEBHOOK_TOKEN\"\n\
         [service]\nshutdown_deadline_secs = 5\n",
        hung = hung.url,
        am = am.url,
        hook = receiver.url,
    );
    let cfg = sample_config(dir.path(), &moto, &q.url, port, &extra);
    let mut svc = Service::start_with_env(
        &cfg,
        port,
        &dir.path().join("serve.log"),
        &[
            ("KMSWATCH_TEST_WEBHOOK_SECRET", SECRET),
            ("KMSWATCH_TEST_WEBHOOK_TOKEN", TOKEN),
        ],
    );
    let deleted =
        |svc: &Service| metric(&svc.metrics(), "kmswatch_sqs_messages_deleted_total", &[]);
    let mut messages = 0;
    let mut send = |part: &[ObjectRef]| {
        messages += announce(&rt, &c, &q.url, &root, part);
        messages as f64
    };

    // Phase one: nine alerts fire.
    let sent = send(one);
    wait_until(60, "phase one folded", || deleted(&svc) >= sent);
    let want = firing_after_phase_one();
    wait_until(20, "Alertmanager to list the alerts of phase one", || {
        am.active_labels() == want
    });
    // Alertmanager notifies each firing alert before it resolves (it notifies a resolved alert
    // only after a firing notification).
    wait_until(20, "Alertmanager to notify the firing alerts", || {
        let firing: BTreeSet<Labels> = notified(&receiver)
            .into_iter()
            .filter(|(status, _, _)| status == "firing")
            .map(|(_, l, _)| l)
            .collect();
        want.is_subset(&firing)
    });
    let listed = am.alerts();
    let unused = listed
        .iter()
        .find(|a| a["labels"]["alertname"] == "unused-key")
        .unwrap();
    assert_eq!(unused["startsAt"], "2026-01-01T05:42:17.000Z");
    assert_eq!(unused["status"]["state"], "active");
    let summary = unused["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("3faa1536"), "{summary}");

    // Phase two: all but unused-key resolve.
    let sent = send(two);
    wait_until(60, "phase two folded", || deleted(&svc) >= sent);
    wait_until(20, "Alertmanager to drop the resolved alerts", || {
        am.active_labels() == firing_at_the_end()
    });
    let golden = golden_alerts();
    // The ends of each alert's resolutions, by its labels (every dimension of its group).
    let mut resolved_at: BTreeMap<Labels, BTreeSet<String>> = BTreeMap::new();
    for a in golden.iter().filter(|a| a["state"] == "resolved") {
        let ends = a["window_end"].as_str().unwrap().to_string();
        resolved_at
            .entry(read_alert(a, None).unwrap().labels)
            .or_default()
            .insert(ends);
    }
    let resolved_ones: BTreeSet<Labels> = want.difference(&firing_at_the_end()).cloned().collect();
    assert_eq!(resolved_ones.len(), 8);
    wait_until(20, "Alertmanager to notify the resolved alerts", || {
        let resolved: BTreeSet<Labels> = notified(&receiver)
            .into_iter()
            .filter(|(status, _, _)| status == "resolved")
            .map(|(_, l, _)| l)
            .collect();
        resolved_ones.is_subset(&resolved)
    });
    // Each ended when its quiet window ended (event time).
    for (status, l, ends) in notified(&receiver) {
        if status != "resolved" {
            continue;
        }
        // Alertmanager writes the time in Go's RFC 3339 (without a fraction that is zero).
        let ends = ends.replace(".000Z", "Z");
        let golden_ends = resolved_at.get(&l);
        assert!(
            golden_ends.is_some_and(|g| g.contains(&ends)),
            "{l:?} resolved at {ends:?}, the golden alerts at {golden_ends:?}"
        );
    }

    // Every alert of the sample was notified as firing, those that fired and resolved within a
    // phase too.
    let every: BTreeSet<Labels> = golden
        .iter()
        .map(|a| read_alert(a, None).unwrap().labels)
        .collect();
    assert!(
        every.len() > want.len(),
        "alerts fire and resolve within a phase"
    );
    wait_until(20, "Alertmanager to notify every alert as firing", || {
        let firing: BTreeSet<Labels> = notified(&receiver)
            .into_iter()
            .filter(|(status, _, _)| status == "firing")
            .map(|(_, l, _)| l)
            .collect();
        every.is_subset(&firing)
    });

    // The webhook: every alert of the sample once, in the alert schema, signed.
    wait_until(20, "the webhook to get every alert", || {
        receiver.requests("/kmswatch").len() >= golden.len()
    });
    let hooked = receiver.requests("/kmswatch");
    for r in &hooked {
        let sig = r.header(SIGNATURE_HEADER).expect("a signature header");
        assert_eq!(sig, signature(SECRET.as_bytes(), &r.body));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(
        multiset(hooked.iter().map(|r| r.json())),
        multiset(golden.clone())
    );
    // JSON lines too.
    let lines = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap();
    assert_eq!(
        multiset(lines.lines().map(|l| serde_json::from_str(l).unwrap())),
        multiset(golden.clone())
    );

    let m = svc.metrics();
    let deliveries = |sink: &str, result: &str| {
        metric(
            &m,
            "kmswatch_alert_deliveries_total",
            &[&format!("sink=\"{sink}\""), &format!("result=\"{result}\"")],
        )
    };
    assert_eq!(deliveries("webhook[0]", "ok"), golden.len() as f64);
    assert_eq!(deliveries("jsonl", "ok"), golden.len() as f64);
    assert!(deliveries("alertmanager[1]", "ok") >= golden.len() as f64);
    // The hung one took its first POST and has answered nothing since.
    assert_eq!(deliveries("alertmanager[0]", "ok"), 0.0);
    for sink in ["webhook[0]", "jsonl", "alertmanager[1]"] {
        for result in ["failed", "dropped"] {
            assert_eq!(deliveries(sink, result), 0.0, "{sink} {result}");
        }
    }
    assert!(svc.signal("TERM").unwrap().success(), "{}", svc.log_text());
}

/// 2026-03-02T00:00:00Z
const T: i64 = 1_772_409_600;

/// An alert of `rule` on `key`: firing in the window from `T`, or resolved in the next one.
fn alert(rule: &str, key: &str, state: AlertState) -> Alert {
    let start = if state == AlertState::Firing {
        T
    } else {
        T + 300
    };
    Alert {
        schema: ALERT_SCHEMA,
        rule: rule.into(),
        kind: "threshold",
        severity: Severity::High,
        state,
        group: Group(vec![(Dim::Key, Some(key.into()))]),
        window_start: start,
        window_end: start + 300,
        value: 20.0,
        threshold: 10.0,
        baseline: None,
        summary: format!("{rule} on {key}"),
        description: String::new(),
        evidence: Evidence {
            count: 20,
            event_ids: vec!["e1".into()],
        },
    }
}

/// The Alertmanager labels of `alert`.
fn am_labels(a: &Alert) -> Labels {
    read_alert(&serde_json::to_value(a).unwrap(), None)
        .unwrap()
        .labels
}

/// The fold's side of delivery, in the test: the sinks (Alertmanager only) and the firing board
/// they re-send from.
struct Fold {
    board: Arc<AlertBoard>,
    /// The engine's firing set.
    firing: Firing,
    sinks: sinks::Sinks,
    _tasks: sinks::SinkTasks,
}

impl Fold {
    fn start(rt: &tokio::runtime::Runtime, am: AlertmanagerConfig) -> Fold {
        let cfg = AlertsConfig {
            jsonl: None,
            alertmanager: Some(am),
            ..AlertsConfig::default()
        };
        let board = Arc::new(AlertBoard::default());
        let metrics = Arc::new(Metrics::new(LabelLimits::default()));
        let _guard = rt.enter();
        let (sinks, tasks) = sinks::start(&cfg, board.subscribe(), metrics).unwrap();
        board.publish(&Firing::new());
        Fold {
            board,
            firing: Firing::new(),
            sinks,
            _tasks: tasks,
        }
    }

    /// What the fold does with an alert the engine raised; `to_sinks: false` as if the sinks'
    /// queues had been full.
    fn raise(&mut self, a: &Alert, to_sinks: bool) {
        alerts::apply(&mut self.firing, a);
        if to_sinks {
            self.sinks.publish(a);
        }
        self.board.publish(&self.firing);
    }
}

/// Alertmanager at `urls`, re-sent to every second, each alert held firing for
/// `keep_firing_for_secs`.
fn am_config(urls: Vec<String>, keep_firing_for_secs: u64) -> AlertmanagerConfig {
    let mut am = AlertmanagerConfig::new(urls);
    am.resend_interval_secs = 1;
    am.keep_firing_for_secs = keep_firing_for_secs;
    am
}

/// The label sets Alertmanager notified the receiver of with `status`.
fn notified_as(receiver: &Receiver, status: &str) -> BTreeSet<Labels> {
    notified(receiver)
        .into_iter()
        .filter(|(s, _, _)| s == status)
        .map(|(_, l, _)| l)
        .collect()
}

/// Regression: an alert that fired and resolved at once (as while a backlog is worked off) was
/// posted already resolved, and Alertmanager never notified anyone of it as firing. Here it
/// joins the group of an alert of its rule that was notified already, so Alertmanager notifies
/// it at the group's next flush (`group_interval`, 2 s); held firing for
/// `keep_firing_for_secs` (5 s), it is still firing then, and is notified firing, then resolved.
#[test]
fn an_alert_that_fires_and_resolves_at_once_is_notified_as_firing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let am = Alertmanager::start_grouped_by_rule(
        dir.path(),
        &format!("{}/alertmanager", receiver.url),
        2,
    );
    let mut fold = Fold::start(&rt, am_config(vec![am.url.clone()], 5));
    let first = alert("failed-decrypts", LEDGER, AlertState::Firing);
    fold.raise(&first, true);
    wait_until(20, "Alertmanager to notify the first alert", || {
        notified_as(&receiver, "firing").contains(&am_labels(&first))
    });
    let fired = alert("failed-decrypts", DATA_LAKE, AlertState::Firing);
    fold.raise(&fired, true);
    fold.raise(
        &alert("failed-decrypts", DATA_LAKE, AlertState::Resolved),
        true,
    );
    let labels = am_labels(&fired);
    wait_until(20, "Alertmanager to notify the alert as firing", || {
        notified_as(&receiver, "firing").contains(&labels)
    });
    wait_until(20, "Alertmanager to notify it resolved", || {
        notified_as(&receiver, "resolved").contains(&labels)
    });
    assert_eq!(am.active_labels(), [am_labels(&first)].into());
}

/// Re-sends come from the engine's firing set: an alert whose resolution never reached the sink
/// is no longer re-sent, and Alertmanager resolves it by itself (its `endsAt` passes) instead of
/// keeping it firing for ever.
#[test]
fn a_lost_resolution_does_not_leave_the_alert_firing_in_alertmanager() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let am = Alertmanager::start(dir.path(), &format!("{}/alertmanager", receiver.url));
    let mut fold = Fold::start(&rt, am_config(vec![am.url.clone()], 0));
    let (lost, kept) = (
        alert("decrypt-spike-key", DATA_LAKE, AlertState::Firing),
        alert("decrypt-spike-key", LEDGER, AlertState::Firing),
    );
    fold.raise(&lost, true);
    fold.raise(&kept, true);
    let both: BTreeSet<Labels> = [am_labels(&lost), am_labels(&kept)].into();
    wait_until(20, "Alertmanager to list both alerts", || {
        am.active_labels() == both
    });
    // The engine resolves one, but the resolution never reaches the sink's queue.
    fold.raise(
        &alert("decrypt-spike-key", DATA_LAKE, AlertState::Resolved),
        false,
    );
    wait_until(30, "Alertmanager to end the alert by itself", || {
        am.active_labels() == [am_labels(&kept)].into()
    });
    wait_until(20, "Alertmanager to notify it resolved", || {
        notified_as(&receiver, "resolved").contains(&am_labels(&lost))
    });
}

/// Each Alertmanager URL has its own task and queue: one that accepts connections and never
/// answers does not hold back the healthy one, with its first POST hanging for the whole timeout.
#[test]
fn a_hanging_alertmanager_does_not_delay_the_healthy_one() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let am = Alertmanager::start(dir.path(), &format!("{}/alertmanager", receiver.url));
    let hung = Silent::start();
    let mut cfg = am_config(vec![hung.url.clone(), am.url.clone()], 0);
    cfg.timeout_secs = 300;
    let mut fold = Fold::start(&rt, cfg);
    let mut want = BTreeSet::new();
    for key in [DATA_LAKE, LEDGER, BILLING] {
        let a = alert("key-disabled", key, AlertState::Firing);
        fold.raise(&a, true);
        want.insert(am_labels(&a));
        // A POST to the hung one takes 300 s a try: each alert would wait for it.
        wait_until(30, "the healthy Alertmanager to list the new alert", || {
            am.active_labels() == want
        });
    }
}

/// At least once across crashes: the alerts raised before a state save but not yet delivered
/// (the webhook and Alertmanager refuse connections) are in the saved outbox; after a SIGKILL
/// and a restart with both up, the webhook gets every alert of the sample and Alertmanager
/// notifies every one as firing, although nothing is folded again (the messages were deleted).
#[test]
fn alerts_undelivered_at_a_sigkill_are_delivered_after_the_restart() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let root = common::repo().join("sample-logs");
    let (objects, _) = list_objects(std::slice::from_ref(&root));
    let golden = golden_alerts();
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let q = upload_sample(&rt, &c, &root, &objects);
    // Nothing listens on these yet: connections are refused.
    let (hook_port, am_port) = (free_port(), free_port());
    let state = dir.path().join("state.json");
    let port = free_port();
    // Retries go on for minutes, so the alerts are still undelivered at the kill.
    let extra = format!(
        "max_attempts = 20\nretry_base_ms = 1000\nretry_max_ms = 60000\n\
         [alerts.alertmanager]\nurls = [\"http://127.0.0.1:{am_port}\"]\nresend_interval_secs = 2\n\
         keep_firing_for_secs = 3\n\
         [[alerts.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/kmswatch\"\n\
         [state]\npath = \"{state}\"\nsave_interval_secs = 1\n\
         [service]\nshutdown_deadline_secs = 5\n",
        state = state.display(),
    );
    let cfg = sample_config(dir.path(), &moto, &q.url, port, &extra);
    let log = dir.path().join("serve.log");
    let mut svc = Service::start(&cfg, port, &log);
    let sent = announce(&rt, &c, &q.url, &root, &objects) as f64;
    // Deleted only after a save that includes every alert they raised.
    wait_until(90, "every message deleted", || {
        metric(&svc.metrics(), "kmswatch_sqs_messages_deleted_total", &[]) >= sent
    });
    let m = svc.metrics();
    let deliveries = |m: &str, sink: &str, result: &str| {
        metric(
            m,
            "kmswatch_alert_deliveries_total",
            &[&format!("sink=\"{sink}\""), &format!("result=\"{result}\"")],
        )
    };
    assert_eq!(
        deliveries(&m, "webhook[0]", "ok"),
        0.0,
        "{}",
        svc.log_text()
    );
    assert_eq!(deliveries(&m, "alertmanager[0]", "ok"), 0.0);
    assert!(deliveries(&m, "webhook[0]", "retried") >= 1.0);
    svc.signal("KILL");
    drop(svc);

    let receiver = Receiver::start_on(hook_port);
    let _am = Alertmanager::start_on(
        dir.path(),
        &format!("{}/alertmanager", receiver.url),
        am_port,
    );
    let mut svc = Service::start(&cfg, port, &log);
    wait_until(60, "the webhook to get every alert", || {
        receiver.requests("/kmswatch").len() >= golden.len()
    });
    let hooked: Vec<serde_json::Value> = receiver
        .requests("/kmswatch")
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(multiset(hooked), multiset(golden.clone()));
    let every: BTreeSet<Labels> = golden
        .iter()
        .map(|a| read_alert(a, None).unwrap().labels)
        .collect();
    wait_until(30, "Alertmanager to notify every alert as firing", || {
        every.is_subset(&notified_as(&receiver, "firing"))
    });
    let m = svc.metrics();
    assert_eq!(metric(&m, "kmswatch_kms_calls_total", &[]), 0.0);
    assert_eq!(metric(&m, "kmswatch_sqs_messages_received_total", &[]), 0.0);
    assert!(svc.signal("TERM").unwrap().success(), "{}", svc.log_text());
}
