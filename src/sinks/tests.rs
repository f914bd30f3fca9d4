//! The sinks against a local receiver: payload mapping, signatures, retries, drops, re-sends and
//! the flush at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

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

fn outbox(m: &Metrics) -> Arc<Outbox> {
    Arc::new(Outbox::new(
        16,
        m.alert_queue_depth.with_label_values(&["test"]),
    ))
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
    let hook = Webhook::new("webhook[0]".into(), &cfg, quick(3), outbox(&m), m.clone()).unwrap();
    let alerts = [firing("r", KEY), resolved("r", KEY)];
    for a in &alerts {
        assert!(hook.deliver(&a.to_json()).await);
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
        outbox(&m),
        m,
    )
    .unwrap();
    assert!(hook.deliver(&alerts[0].to_json()).await);
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
    let hook = Webhook::new("webhook[0]".into(), &cfg, quick(3), outbox(&m), m.clone()).unwrap();
    let a = firing("r", KEY).to_json();
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
fn a_full_outbox_drops_and_counts_without_waiting() {
    let m = metrics();
    let (mut sinks, mut rx, outbox) = Sinks::with_queue(m.clone(), 2);
    for i in 0..5 {
        sinks.publish(&firing("r", &format!("k{i}")));
    }
    assert_eq!(delivered(&m, "test", "dropped"), 3);
    assert_eq!(m.alert_queue_depth.with_label_values(&["test"]).get(), 2);
    // The first two are queued, in order, and held in the outbox until settled.
    for want in ["k0", "k1"] {
        let d = rx.try_recv().unwrap();
        let v: serde_json::Value = serde_json::from_str(&d.json).unwrap();
        assert_eq!(v["group"]["key"], want);
        outbox.settle(d.seq);
    }
    assert_eq!(m.alert_queue_depth.with_label_values(&["test"]).get(), 0);
    // Room again: taken.
    sinks.publish(&firing("r", "k5"));
    assert!(rx.try_recv().is_ok());
    assert_eq!(delivered(&m, "test", "dropped"), 3);
}

fn am_config(urls: Vec<String>) -> AlertmanagerConfig {
    AlertmanagerConfig::new(urls)
}

/// The sink of the first Alertmanager of `cfg`, with its outbox.
fn am_sink(cfg: &AlertmanagerConfig, m: &Arc<Metrics>) -> (AlertmanagerSink, Arc<Outbox>) {
    let o = outbox(m);
    let sink = AlertmanagerSink::new(
        "alertmanager[0]".into(),
        &cfg.urls[0],
        cfg,
        quick(1),
        o.clone(),
        m.clone(),
    )
    .unwrap();
    (sink, o)
}

/// Alerts as the fold queues them (admitted to `outbox`, numbered from `first`).
fn deliveries(outbox: &Outbox, first: u64, alerts: &[Alert]) -> Vec<Delivery> {
    alerts
        .iter()
        .zip(first..)
        .map(|(a, seq)| {
            let json: Arc<str> = Arc::from(a.to_json());
            assert!(outbox.admit(seq, json.clone()));
            Delivery { seq, json }
        })
        .collect()
}

/// A firing set as the fold publishes it.
fn firing_set(alerts: &[Alert]) -> (watch::Sender<FiringSnapshot>, FiringSet) {
    let v = alerts
        .iter()
        .map(|a| Arc::new(serde_json::to_value(a).unwrap()))
        .collect();
    watch::channel(Arc::new(v))
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

/// (alertname, key, still active) of each alert of a POST.
fn summary(post: &[serde_json::Value]) -> Vec<(String, String, bool)> {
    post.iter()
        .map(|a| {
            let s = |k: &str| a["labels"][k].as_str().unwrap().to_string();
            (s("alertname"), s("key"), time(&a["endsAt"]) > now())
        })
        .collect()
}

fn abc(rule: &str, key: &str, active: bool) -> (String, String, bool) {
    (rule.to_string(), key.to_string(), active)
}

#[tokio::test]
async fn alertmanager_gets_firing_alerts_at_once_and_resolutions_once_they_fired_long_enough() {
    let server = TestServer::start().await;
    let m = metrics();
    let mut cfg = am_config(vec![format!("{}/prefix/", server.url)]);
    cfg.keep_firing_for_secs = 0;
    let (mut sink, outbox) = am_sink(&cfg, &m);
    // r1 fires and resolves at once, as while a backlog is worked off.
    let batch = deliveries(
        &outbox,
        0,
        &[firing("r1", KEY), firing("r2", KEY), resolved("r1", KEY)],
    );
    sink.take(batch).await;
    sink.resolve_due().await;
    assert_eq!(server.received()[0].path, "/prefix/api/v2/alerts");
    let posts = posted(&server);
    // r1 is posted firing first, so that Alertmanager notifies it, and resolved after.
    assert_eq!(
        posts.iter().map(|p| summary(p)).collect::<Vec<_>>(),
        [
            vec![abc("r1", KEY, true), abc("r2", KEY, true)],
            vec![abc("r1", KEY, false)]
        ]
    );
    let [r1, r2] = &posts[0][..] else {
        panic!("{posts:?}")
    };
    assert_eq!(time(&r1["startsAt"]), T);
    let ends = time(&r2["endsAt"]);
    assert!((now() + 239..=now() + 241).contains(&ends), "{ends}");
    assert_eq!(r2["annotations"]["summary"], "r2 summary");
    // The resolution ends when its quiet window ended (event time).
    let r1 = &posts[1][0];
    assert_eq!(
        (time(&r1["startsAt"]), time(&r1["endsAt"])),
        (T + 300, T + 600)
    );
    assert_eq!(delivered(&m, "alertmanager[0]", "ok"), 3);
    assert_eq!(outbox.len(), 0, "everything delivered is settled");
}

#[tokio::test]
async fn a_held_resolution_is_re_sent_as_firing_and_stays_in_the_outbox() {
    let server = TestServer::start().await;
    let m = metrics();
    let (mut sink, outbox) = am_sink(&am_config(vec![server.url.clone()]), &m);
    let batch = deliveries(&outbox, 0, &[firing("r1", KEY), resolved("r1", KEY)]);
    sink.take(batch).await;
    sink.resolve_due().await;
    // The engine no longer has r1 firing; r2 fires.
    let (_tx, board) = firing_set(&[firing("r2", KEY)]);
    sink.resend(&board).await;
    let posts: Vec<_> = posted(&server).iter().map(|p| summary(p)).collect();
    assert_eq!(
        posts,
        [
            vec![abc("r1", KEY, true)],
            vec![abc("r2", KEY, true), abc("r1", KEY, true)]
        ]
    );
    // The resolution waits keep_firing_for_secs (10 minutes) in the outbox.
    let held: Vec<serde_json::Value> = outbox
        .undelivered()
        .iter()
        .map(|j| serde_json::from_str(j).unwrap())
        .collect();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (&held[0]["rule"], &held[0]["state"]),
        (&"r1".into(), &"resolved".into())
    );
}

#[tokio::test]
async fn re_sends_come_from_the_firing_set_so_a_lost_resolution_ends_by_itself() {
    let server = TestServer::start().await;
    let m = metrics();
    let mut cfg = am_config(vec![server.url.clone()]);
    cfg.max_alerts_per_post = 2;
    let (mut sink, outbox) = am_sink(&cfg, &m);
    let batch = deliveries(
        &outbox,
        0,
        &[firing("r", "k1"), firing("r", "k2"), firing("r", "k3")],
    );
    sink.take(batch).await;
    assert_eq!(posted(&server).len(), 2, "at most two alerts per POST");
    // k1's resolution never reached the sink (its queue was full, say), k3's is held, and the
    // engine says k2 and k4 fire: k1 is not re-sent, so Alertmanager ends it by itself.
    let batch = deliveries(&outbox, 3, &[resolved("r", "k3")]);
    sink.take(batch).await;
    let (_tx, board) = firing_set(&[firing("r", "k2"), firing("r", "k4")]);
    sink.resend(&board).await;
    let resent: Vec<_> = posted(&server)[2..]
        .iter()
        .flat_map(|p| summary(p))
        .collect();
    assert_eq!(
        resent,
        [
            abc("r", "k2", true),
            abc("r", "k4", true),
            abc("r", "k3", true)
        ]
    );
    assert_eq!(delivered(&m, "alertmanager[0]", "ok"), 3 + 3);
}

#[tokio::test]
async fn a_hanging_alertmanager_holds_back_only_itself() {
    let (hanging, live) = (TestServer::start().await, TestServer::start().await);
    hanging.answer(&[Answer::Hang; 8]);
    let m = metrics();
    let mut am = am_config(vec![hanging.url.clone(), live.url.clone()]);
    am.timeout_secs = 300;
    let cfg = AlertsConfig {
        jsonl: None,
        alertmanager: Some(am),
        ..AlertsConfig::default()
    };
    let (_tx, board) = firing_set(&[]);
    let (mut sinks, tasks) = start(&cfg, board, m.clone()).unwrap();
    for key in ["k1", "k2", "k3"] {
        sinks.publish(&firing("r", key));
        let n = live.received().len();
        let got = tokio::time::timeout(Duration::from_secs(20), async {
            while live.received().len() == n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(got.is_ok(), "the live Alertmanager did not get {key}");
    }
    // The hanging one took the first POST and still waits for its answer.
    assert_eq!(hanging.received().len(), 1);
    assert_eq!(delivered(&m, "alertmanager[1]", "ok"), 3);
    assert_eq!(
        m.alert_queue_depth
            .with_label_values(&["alertmanager[0]"])
            .get(),
        3
    );
    drop(sinks);
    tasks.finish(Duration::from_millis(100)).await;
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
    let (_tx, board) = firing_set(&[]);
    let (mut sinks, tasks) = start(&cfg, board, m.clone()).unwrap();
    let alerts = [firing("r", "k1"), firing("r", "k2"), resolved("r", "k1")];
    for a in &alerts {
        sinks.publish(a);
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
    let (_tx, board) = firing_set(&[]);
    let e = start(&cfg, board, metrics()).err().unwrap();
    assert!(
        e.to_string().starts_with("cannot open the alerts file "),
        "{e}"
    );
}

#[test]
fn undelivered_alerts_are_handed_back_to_their_sinks_after_a_restart() {
    let m = metrics();
    let (mut sinks, mut rx, _outbox) = Sinks::with_queue(m.clone(), 8);
    sinks.publish(&firing("r", "k1"));
    sinks.publish(&resolved("r", "k1"));
    let saved = sinks.undelivered();
    assert_eq!(saved.len(), 1);
    let want: Vec<String> = saved[0]
        .alerts
        .iter()
        .map(|a| a.get().to_string())
        .collect();
    assert_eq!(
        want,
        [firing("r", "k1").to_json(), resolved("r", "k1").to_json()]
    );

    // The next run: the same sink gets them again, in order; a sink no longer configured loses
    // its own, counted.
    let (mut next, mut next_rx, next_outbox) = Sinks::with_queue(m.clone(), 8);
    let mut gone = saved.clone();
    gone[0].sink = "webhook[7]".into();
    next.redeliver(saved.into_iter().chain(gone).collect());
    let got: Vec<String> = std::iter::from_fn(|| next_rx.try_recv().ok())
        .map(|d| d.json.to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(next_outbox.len(), 2);
    assert_eq!(delivered(&m, "webhook[7]", "dropped"), 2);
    while rx.try_recv().is_ok() {}
}
