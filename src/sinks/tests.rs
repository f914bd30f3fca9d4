//! The sinks against a local receiver: payload mapping, signatures, retries, drops, re-sends and
//! the flush at shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::alertmanager::AlertmanagerSink;
use super::test_server::{Answer, TestServer};
use super::webhook::Webhook;
use super::*;
use crate::alerts::{AlertState, Baseline, Evidence, Group, ALERT_SCHEMA};
use crate::config::{AlertmanagerConfig, JsonlTarget, Secret, WebhookConfig};
use crate::metrics::LabelLimits;
use crate::retry::RetryPolicy;
use crate::rules::{Dim, Severity};
use crate::timefmt::{format_rfc3339, parse_event_time};

const T: i64 = 1_772_409_600; // 2026-03-02T00:00:00Z
const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/k1";
const ROLE: &str = "arn:aws:iam::222222222222:role/app";

fn alert(
    rule: &str,
    group: &[(Dim, Option<&str>)],
    state: AlertState,
    window: (i64, i64),
) -> Alert {
    Alert {
        schema: ALERT_SCHEMA,
        rule: rule.into(),
        kind: "threshold",
        severity: Severity::High,
        state,
        group: Group(
            group
                .iter()
                .map(|(d, v)| (*d, v.map(str::to_string)))
                .collect(),
        ),
        window_start: window.0,
        window_end: window.1,
        value: 1500.0,
        threshold: 1001.0,
        baseline: None,
        summary: format!("{rule} summary"),
        description: format!("{rule} description"),
        evidence: Evidence {
            count: 1500,
            event_ids: vec!["e1".into(), "e2".into()],
        },
    }
}

fn firing(rule: &str, key: &str) -> Alert {
    alert(
        rule,
        &[(Dim::Key, Some(key))],
        AlertState::Firing,
        (T, T + 300),
    )
}

fn resolved(rule: &str, key: &str) -> Alert {
    alert(
        rule,
        &[(Dim::Key, Some(key))],
        AlertState::Resolved,
        (T + 300, T + 600),
    )
}

/// A group as written in a case: each dimension and its value.
type GroupSpec<'a> = Vec<(Dim, Option<&'a str>)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(LabelLimits::default()))
}

fn delivered(m: &Metrics, sink: &str, result: &str) -> u64 {
    m.alert_deliveries.with_label_values(&[sink, result]).get()
}

/// Retries without waiting long.
fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_ms: 1,
        max_ms: 2,
    }
}

fn now() -> i64 {
    crate::serve::now_ms() / 1000
}

#[test]
fn labels_identify_the_alert_by_rule_and_group() {
    let (key, role) = (Some(KEY), Some(ROLE));
    #[rustfmt::skip]
    let cases: Vec<(GroupSpec, Labels)> = vec![
        // The key's account and region are added when the group has none of its own.
        (vec![(Dim::Key, key)], labels(&[("alertname", "r"), ("severity", "high"), ("key", KEY), ("account", "111111111111"), ("region", "us-east-1")])),
        (vec![(Dim::Key, key), (Dim::Principal, role)], labels(&[("alertname", "r"), ("severity", "high"), ("key", KEY), ("principal", ROLE), ("account", "111111111111"), ("region", "us-east-1")])),
        // A dimension without a value is no label.
        (vec![(Dim::Principal, role), (Dim::Key, None)], labels(&[("alertname", "r"), ("severity", "high"), ("principal", ROLE)])),
        (vec![(Dim::Account, Some("333333333333")), (Dim::Region, Some("eu-west-1")), (Dim::Key, key)], labels(&[("alertname", "r"), ("severity", "high"), ("key", KEY), ("account", "333333333333"), ("region", "eu-west-1")])),
        (vec![(Dim::Key, Some("alias/payments")), (Dim::Service, Some("s3.amazonaws.com")), (Dim::Operation, Some("Decrypt")), (Dim::Error, Some("AccessDenied"))], labels(&[("alertname", "r"), ("severity", "high"), ("key", "alias/payments"), ("service", "s3.amazonaws.com"), ("operation", "Decrypt"), ("error", "AccessDenied")])),
    ];
    for (group, want) in cases {
        let a = alert("r", &group, AlertState::Firing, (T, T + 300));
        let got = read_alert(&serde_json::to_value(&a).unwrap(), None).unwrap();
        assert_eq!(got.labels, want, "{group:?}");
        assert!(got.firing);
        assert_eq!((got.starts_at, got.ends_at), (T, T + 300));
    }
}

#[test]
fn annotations_describe_the_alert_and_link_to_it() {
    let mut a = alert(
        "decrypt-spike-key",
        &[(Dim::Key, Some(KEY))],
        AlertState::Firing,
        (T, T + 300),
    );
    a.kind = "spike";
    a.value = 412.0;
    a.threshold = 120.123456;
    a.baseline = Some(Baseline {
        mean: 20.5,
        stddev: 4.0,
        windows: 12,
    });
    let link =
        LinkTemplate::parse("https://{region}.example/{event_id}?k={key}&p={principal}").unwrap();
    let got = read_alert(&serde_json::to_value(&a).unwrap(), Some(&link)).unwrap();
    assert_eq!(
        got.annotations,
        labels(&[
            ("summary", "decrypt-spike-key summary"),
            ("description", "decrypt-spike-key description"),
            ("kind", "spike"),
            ("value", "412"),
            ("threshold", "120.1235"),
            ("baseline", "mean 20.5 stddev 4.0 over 12 windows"),
            ("window_start", "2026-03-02T00:00:00Z"),
            ("window_end", "2026-03-02T00:05:00Z"),
            ("evidence_count", "1500"),
            ("event_ids", "e1,e2"),
            (
                "link",
                "https://us-east-1.example/e1?k=arn%3Aaws%3Akms%3Aus-east-1%3A111111111111%3Akey%2Fk1&p="
            ),
        ])
    );
    let resolved = read_alert(&serde_json::to_value(resolved("r", KEY)).unwrap(), None).unwrap();
    assert!(!resolved.firing);
    assert!(!resolved.annotations.contains_key("link"));
}

#[test]
fn posted_times_never_lie_ahead_of_the_wall_clock() {
    let now = T + 1000;
    let valid_until = now + 240;
    // (firing, window start, window end) -> (startsAt, endsAt)
    #[rustfmt::skip]
    let cases = [
        (true, T, T + 300, T, valid_until),
        // An event clock ahead of ours.
        (true, T + 2000, T + 2300, now, valid_until),
        (false, T, T + 600, T, T + 600),
        (false, T, T + 2000, T, now),
        (false, T + 1500, T + 2000, now, now),
    ];
    for (is_firing, start, end, want_start, want_end) in cases {
        let state = if is_firing {
            AlertState::Firing
        } else {
            AlertState::Resolved
        };
        let a = alert("r", &[(Dim::Key, Some(KEY))], state, (start, end));
        let p = read_alert(&serde_json::to_value(&a).unwrap(), None)
            .unwrap()
            .postable(now, valid_until);
        assert_eq!(
            (p.starts_at, p.ends_at),
            (format_rfc3339(want_start), format_rfc3339(want_end)),
            "{is_firing} {start} {end}"
        );
    }
}

#[test]
fn unreadable_alerts_say_why() {
    let mut v = serde_json::to_value(firing("r", KEY)).unwrap();
    v["state"] = "pending".into();
    assert_eq!(
        read_alert(&v, None).unwrap_err(),
        "unknown alert state \"pending\""
    );
    v["state"] = "firing".into();
    v["window_start"] = "yesterday".into();
    assert_eq!(
        read_alert(&v, None).unwrap_err(),
        "window_start \"yesterday\" is not a time"
    );
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body() {
    // RFC 4231, test case 2.
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[tokio::test]
async fn a_webhook_gets_each_alert_signed_with_the_bearer_token() {
    let server = TestServer::start().await;
    let m = metrics();
    let mut cfg = WebhookConfig::new(format!("{}/hook", server.url));
    cfg.secret = Some(Secret::new("s3cret"));
    cfg.token = Some(Secret::new("t0ken"));
    let hook = Webhook::new("webhook[0]".into(), &cfg, quick(3), m.clone()).unwrap();
    let alerts = [firing("r", KEY), resolved("r", KEY)];
    for a in &alerts {
        assert!(hook.deliver(a).await);
    }
    let got = server.received();
    assert_eq!(got.len(), 2);
    for (req, a) in got.iter().zip(&alerts) {
        assert_eq!(req.path, "/hook");
        assert_eq!(req.body, a.to_json().as_bytes());
        let h = |name: &str| req.headers[name].to_str().unwrap().to_string();
        assert_eq!(h(SIGNATURE_HEADER), signature(b"s3cret", &req.body));
        assert_eq!(h("authorization"), "Bearer t0ken");
        assert_eq!(h("content-type"), "application/json");
    }
    assert_eq!(delivered(&m, "webhook[0]", "ok"), 2);

    // Without a secret or token: neither header.
    let hook = Webhook::new(
        "webhook[1]".into(),
        &WebhookConfig::new(&server.url),
        quick(1),
        m,
    )
    .unwrap();
    assert!(hook.deliver(&alerts[0]).await);
    let last = server.received().pop().unwrap();
    assert!(last.headers.get(SIGNATURE_HEADER).is_none());
    assert!(last.headers.get("authorization").is_none());
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried_client_errors_are_not() {
    let server = TestServer::start().await;
    let m = metrics();
    let mut cfg = WebhookConfig::new(&server.url);
    cfg.timeout_secs = 1;
    let hook = Webhook::new("webhook[0]".into(), &cfg, quick(3), m.clone()).unwrap();
    let a = firing("r", KEY);
    // (answers, delivered, requests, retried, failed) after each delivery, cumulatively.
    #[rustfmt::skip]
    let cases: &[(&[Answer], bool, usize, u64, u64)] = &[
        (&[Answer::Status(503), Answer::Status(429)], true, 3, 2, 0),
        (&[Answer::Status(400)], false, 4, 2, 1),
        (&[Answer::Status(500), Answer::Status(502), Answer::Status(504)], false, 7, 4, 2),
        (&[Answer::Hang], true, 9, 5, 2),
    ];
    for (answers, ok, requests, retried, failed) in cases {
        server.answer(answers);
        assert_eq!(hook.deliver(&a).await, *ok, "{answers:?}");
        assert_eq!(server.received().len(), *requests, "{answers:?}");
        assert_eq!(
            delivered(&m, "webhook[0]", "retried"),
            *retried,
            "{answers:?}"
        );
        assert_eq!(
            delivered(&m, "webhook[0]", "failed"),
            *failed,
            "{answers:?}"
        );
    }
    assert_eq!(delivered(&m, "webhook[0]", "ok"), 2);
}

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    let m = metrics();
    let (mut sinks, mut rx) = Sinks::with_queue(m.clone(), 2);
    for i in 0..5 {
        sinks.publish(firing("r", &format!("k{i}")));
    }
    assert_eq!(delivered(&m, "test", "dropped"), 3);
    assert_eq!(m.alert_queue_depth.with_label_values(&["test"]).get(), 2);
    // The first two are queued, in order.
    for want in ["k0", "k1"] {
        match rx.try_recv().unwrap() {
            SinkMsg::Alert(a) => assert_eq!(a.group.get(Dim::Key), Some(want)),
            other => panic!("{other:?}"),
        }
    }
    // Room again: taken.
    sinks.firing(vec![serde_json::json!({})]);
    assert!(matches!(rx.try_recv().unwrap(), SinkMsg::Firing(_)));
    assert_eq!(delivered(&m, "test", "dropped"), 3);
}

fn am_config(urls: Vec<String>) -> AlertmanagerConfig {
    AlertmanagerConfig::new(urls)
}

/// The alerts of every POST a server received, in order.
fn posted(server: &TestServer) -> Vec<Vec<serde_json::Value>> {
    server
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn time(v: &serde_json::Value) -> i64 {
    parse_event_time(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn alertmanager_gets_changes_at_once_on_every_url() {
    let (a, b) = (TestServer::start().await, TestServer::start().await);
    let m = metrics();
    let cfg = am_config(vec![a.url.clone(), format!("{}/prefix/", b.url)]);
    let sink = AlertmanagerSink::new(&cfg, quick(3), m.clone()).unwrap();
    let (tx, rx) = mpsc::channel(8);
    for alert in [firing("r1", KEY), firing("r2", KEY), resolved("r1", KEY)] {
        tx.try_send(SinkMsg::Alert(Arc::new(alert))).unwrap();
    }
    drop(tx);
    // Everything queued is posted before the sink ends.
    sink.run(rx).await;
    assert_eq!(a.received()[0].path, "/api/v2/alerts");
    assert_eq!(b.received()[0].path, "/prefix/api/v2/alerts");
    let posts = posted(&a);
    assert_eq!(posts, posted(&b));
    assert_eq!(posts.len(), 1, "{posts:?}");
    let [r1, r2] = &posts[0][..] else {
        panic!("{posts:?}")
    };
    // r1 fired and resolved: posted once, resolved, from when it fired to its quiet window's end.
    assert_eq!(r1["labels"]["alertname"], "r1");
    assert_eq!((time(&r1["startsAt"]), time(&r1["endsAt"])), (T, T + 600));
    assert_eq!(r2["labels"]["alertname"], "r2");
    assert_eq!(time(&r2["startsAt"]), T);
    let ends = time(&r2["endsAt"]);
    assert!((now() + 239..=now() + 241).contains(&ends), "{ends}");
    assert_eq!(r2["annotations"]["summary"], "r2 summary");
    for sink in ["alertmanager[0]", "alertmanager[1]"] {
        assert_eq!(delivered(&m, sink, "ok"), 2, "{sink}");
    }
}

#[tokio::test]
async fn alertmanager_gets_the_firing_set_again_and_what_a_reload_ends() {
    let server = TestServer::start().await;
    let m = metrics();
    let mut cfg = am_config(vec![server.url.clone()]);
    cfg.max_alerts_per_post = 2;
    let mut sink = AlertmanagerSink::new(&cfg, quick(1), m.clone()).unwrap();
    let mut changed = BTreeMap::new();
    for k in ["k1", "k2", "k3"] {
        sink.apply(SinkMsg::Alert(Arc::new(firing("r", k))), &mut changed);
    }
    sink.apply(SinkMsg::Alert(Arc::new(resolved("r", "k3"))), &mut changed);
    assert_eq!(changed.len(), 3);
    sink.resend().await;
    // Two firing alerts, at most two per POST: one POST.
    let posts = posted(&server);
    assert_eq!(posts.len(), 1);
    let keys: Vec<&str> = posts[0]
        .iter()
        .map(|a| a["labels"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["k1", "k2"]);

    // After a reload the engine says k2 and k4 fire: k1 is resolved now, k2 and k4 posted.
    let snapshot: Vec<serde_json::Value> = ["k2", "k4"]
        .iter()
        .map(|k| serde_json::to_value(firing("r", k)).unwrap())
        .collect();
    let mut changed = BTreeMap::new();
    sink.apply(SinkMsg::Firing(Arc::new(snapshot)), &mut changed);
    let changed: Vec<AmAlert> = changed.into_values().collect();
    sink.post(&changed).await;
    let posts = posted(&server);
    assert_eq!(posts.len(), 3, "two POSTs of at most two alerts: {posts:?}");
    let alerts: Vec<&serde_json::Value> = posts[1..].iter().flatten().collect();
    let state: Vec<(&str, bool)> = alerts
        .iter()
        .map(|a| {
            let ended = time(&a["endsAt"]) <= now();
            (a["labels"]["key"].as_str().unwrap(), ended)
        })
        .collect();
    assert_eq!(state, [("k1", true), ("k2", false), ("k4", false)]);
    sink.resend().await;
    let last = posted(&server).pop().unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!(delivered(&m, "alertmanager[0]", "ok"), 2 + 3 + 2);
}

#[tokio::test]
async fn a_dead_alertmanager_is_counted_and_the_other_still_gets_alerts() {
    let live = TestServer::start().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let m = metrics();
    let sink = AlertmanagerSink::new(
        &am_config(vec![dead, live.url.clone()]),
        quick(3),
        m.clone(),
    )
    .unwrap();
    let (tx, rx) = mpsc::channel(8);
    tx.try_send(SinkMsg::Alert(Arc::new(firing("r", KEY))))
        .unwrap();
    drop(tx);
    sink.run(rx).await;
    assert_eq!(posted(&live).len(), 1);
    assert_eq!(delivered(&m, "alertmanager[0]", "retried"), 2);
    assert_eq!(delivered(&m, "alertmanager[0]", "failed"), 1);
    assert_eq!(delivered(&m, "alertmanager[1]", "ok"), 1);
    assert_eq!(delivered(&m, "alertmanager[1]", "failed"), 0);
}

#[tokio::test]
async fn shutdown_delivers_what_is_queued() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let m = metrics();
    let cfg = AlertsConfig {
        jsonl: Some(JsonlTarget::File(path.clone())),
        webhooks: vec![WebhookConfig::new(&server.url)],
        ..AlertsConfig::default()
    };
    let (mut sinks, tasks) = start(&cfg, m.clone()).unwrap();
    let alerts = [firing("r", "k1"), firing("r", "k2"), resolved("r", "k1")];
    for a in &alerts {
        sinks.publish(a.clone());
    }
    drop(sinks);
    tasks.finish(Duration::from_secs(10)).await;
    let bodies: Vec<String> = server
        .received()
        .iter()
        .map(|r| String::from_utf8(r.body.to_vec()).unwrap())
        .collect();
    let want: Vec<String> = alerts.iter().map(Alert::to_json).collect();
    assert_eq!(bodies, want);
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines, want);
    assert_eq!(delivered(&m, "webhook[0]", "ok"), 3);
    assert_eq!(delivered(&m, "jsonl", "ok"), 3);
}

#[test]
fn an_unwritable_alerts_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AlertsConfig {
        jsonl: Some(JsonlTarget::File(dir.path().join("missing/alerts.jsonl"))),
        ..AlertsConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let e = start(&cfg, metrics()).err().unwrap();
    assert!(
        e.to_string().starts_with("cannot open the alerts file "),
        "{e}"
    );
}
