//! Alert delivery end to end: the committed sample logs go through moto's S3 and SQS into
//! `kmswatch serve`, which delivers to a real Alertmanager and to a webhook receiver.
//!
//! The objects are sent in two phases, split where nine alerts fire at once. After each phase,
//! Alertmanager's API must list exactly the alerts that fire then, with their exact labels; after
//! the second, eight of them have resolved: Alertmanager no longer lists them and notifies them as
//! resolved, ending when their quiet window ended. The webhook must get every alert of the sample
//! (`tests/golden/sample-alerts.jsonl`), each signed with the configured key.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::alertmanager::{Alertmanager, Labels};
use common::aws::*;
use common::receiver::Receiver;
use kmswatch::engine::{Engine, EngineConfig};
use kmswatch::replay::{fold_objects, list_objects, ReplayOptions};
use kmswatch::rules::load_paths;
use kmswatch::sinks::{signature, SIGNATURE_HEADER};
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
    let am = Alertmanager::start(dir.path(), &format!("{}/alertmanager", receiver.url));
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let keys: Vec<String> = objects.iter().map(|o| s3_key(&root, o)).collect();
    let q = rt.block_on(async {
        c.bucket(BUCKET).await;
        let q = c.queues("alerts", 5).await;
        let mut uploads = tokio::task::JoinSet::new();
        for chunk in keys.chunks(keys.len().div_ceil(16)) {
            let (s3, root, chunk) = (c.s3.clone(), root.clone(), chunk.to_vec());
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
    });

    let port = free_port();
    let extra = format!(
        "[alerts.alertmanager]\nurls = [\"{am}\"]\nresend_interval_secs = 2\n\
         [[alerts.webhook]]\nurl = \"{hook}/kmswatch\"\nsecret_env = \"KMSWATCH_TEST_WEBHOOK_SECRET\"\n\
         token_env = \"KMSWATCH_TEST_WEBHOOK_TOKEN\"\n",
        am = am.url,
        hook = receiver.url,
    );
    let cfg = service_config(dir.path(), &moto, &q.url, &[BUCKET], port, &extra);
    // One object at a time, so that they are folded in the order they are announced.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[source]\n", "[source]\nfetch_concurrency = 1\n");
    std::fs::write(&cfg, text).unwrap();
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
        let part: Vec<String> = part.iter().map(|o| s3_key(&root, o)).collect();
        rt.block_on(async {
            for chunk in part.chunks(KEYS_PER_MESSAGE) {
                let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                c.send(&q.url, &cloudtrail_notification(BUCKET, &chunk, false))
                    .await;
                messages += 1;
            }
        });
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
    let resolved_at: BTreeMap<String, String> = golden
        .iter()
        .filter(|a| a["state"] == "resolved")
        .map(|a| {
            let ends = a["window_end"].as_str().unwrap().to_string();
            (format!("{} {}", a["rule"], a["group"]), ends)
        })
        .collect();
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
        let mut group = serde_json::Map::new();
        group.insert("key".into(), l["key"].clone().into());
        if let Some(p) = l.get("principal") {
            group.insert("principal".into(), p.clone().into());
        }
        let id = format!(
            "\"{}\" {}",
            l["alertname"],
            serde_json::Value::Object(group)
        );
        // Alertmanager writes the time in Go's RFC 3339 (without a fraction that is zero).
        assert_eq!(
            resolved_at.get(&id),
            Some(&ends.replace(".000Z", "Z")),
            "{id}"
        );
    }

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
    assert!(deliveries("alertmanager[0]", "ok") >= golden.len() as f64);
    for sink in ["webhook[0]", "jsonl", "alertmanager[0]"] {
        for result in ["failed", "dropped"] {
            assert_eq!(deliveries(sink, result), 0.0, "{sink} {result}");
        }
    }
    assert!(svc.signal("TERM").unwrap().success(), "{}", svc.log_text());
}
