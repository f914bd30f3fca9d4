//! The service's HTTP face: `/metrics`, `/healthz`, `/readyz` and `/api/alerts`.
//!
//! The router only reads shared state the pipeline keeps up to date; it never blocks the pipeline.
//! Every request has a deadline and a slot among a bounded number; `/api/alerts` is paged from a
//! snapshot the fold publishes, and may require a bearer token.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Router};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;

use crate::alerts::{Firing, FiringSnapshot};
use crate::metrics::Metrics;

/// What readiness waits for.
#[derive(Debug, Default)]
pub struct Readiness {
    pub rules_loaded: AtomicBool,
    pub queue_reached: AtomicBool,
    /// A stage that stopped before shutdown was asked for, and why: `/healthz` fails from then on.
    pub failed: Mutex<Option<String>>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.rules_loaded.load(Ordering::Relaxed)
            && self.queue_reached.load(Ordering::Relaxed)
            && self.failure().is_none()
    }

    /// Marks the service unhealthy: `what` names the stage and what became of it.
    pub fn fail(&self, what: String) {
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
    }

    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The alerts currently firing (alert-schema JSON), ordered by rule id then group id, as the fold
/// last published them: HTTP and the Alertmanager sinks read this snapshot (through a watch
/// channel, so a reader never holds the fold up while it copies alerts, and the sinks re-send
/// what the engine says fires, not a copy of their own). The alerts themselves are the engine's
/// ([`crate::alerts::Firing`]), shared, not copied.
#[derive(Debug)]
pub struct AlertBoard {
    snapshot: watch::Sender<FiringSnapshot>,
}

impl Default for AlertBoard {
    fn default() -> Self {
        AlertBoard {
            snapshot: watch::Sender::new(Arc::default()),
        }
    }
}

impl AlertBoard {
    /// Makes `firing` (what the engine says fires, after the alerts just emitted) what HTTP and
    /// the sinks see.
    pub fn publish(&self, firing: &Firing) {
        let v: Vec<_> = firing.values().cloned().collect();
        self.snapshot.send_replace(Arc::new(v));
    }

    /// The firing alerts as last published, ordered by rule then group.
    pub fn firing(&self) -> FiringSnapshot {
        self.snapshot.borrow().clone()
    }

    /// The published snapshots, from the current one on: woken at every publication.
    pub fn subscribe(&self) -> watch::Receiver<FiringSnapshot> {
        self.snapshot.subscribe()
    }

    /// How many published alerts fire per (rule, severity).
    pub fn counts(&self) -> BTreeMap<(String, String), i64> {
        let mut c = BTreeMap::new();
        for v in self.firing().iter() {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            *c.entry((s("rule"), s("severity"))).or_default() += 1;
        }
        c
    }
}

/// Bounds on the HTTP server and access to `/api/alerts`.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    /// One permit per request being handled (`max_concurrent_requests` of them), shared by every
    /// route.
    pub slots: Arc<tokio::sync::Semaphore>,
    pub max_alerts_per_page: usize,
    /// SHA-256 of the bearer token `/api/alerts` requires, if any (compared as digests, so the
    /// comparison's time does not tell how much of a guess was right).
    pub api_token_sha256: Option<[u8; 32]>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            request_timeout: Duration::from_secs(30),
            slots: Arc::new(tokio::sync::Semaphore::new(64)),
            max_alerts_per_page: 1_000,
            api_token_sha256: None,
        }
    }
}

impl HttpLimits {
    pub fn with_max_concurrent_requests(mut self, n: usize) -> Self {
        self.slots = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.api_token_sha256 = token.map(|t| Sha256::digest(t.as_bytes()).into());
        self
    }
}

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub alerts: Arc<AlertBoard>,
    pub limits: HttpLimits,
}

pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/alerts", get(alerts))
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded_or_late))
                .load_shed()
                // One semaphore for every route (a plain concurrency limit would be per route).
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(limits.slots))
                .timeout(limits.request_timeout),
        )
}

/// 503 for a request over the concurrency limit, 408 for one past its deadline.
async fn overloaded_or_late(error: BoxError) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        (StatusCode::REQUEST_TIMEOUT, "request timed out\n").into_response()
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "too many requests at once; try again\n",
        )
            .into_response()
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.readiness.failure() {
        None => "ok\n".into_response(),
        Some(what) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {what}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    let r = &s.readiness;
    if r.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let mut why = String::from("not ready:");
        if !r.rules_loaded.load(Ordering::Relaxed) {
            why.push_str(" rules not loaded;");
        }
        if !r.queue_reached.load(Ordering::Relaxed) {
            why.push_str(" queue not reached yet;");
        }
        why.pop();
        why.push('\n');
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

/// `?limit=` and `?offset=` of `/api/alerts`.
#[derive(serde::Deserialize)]
struct Page {
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
}

/// The firing alerts, a page at a time: `total`, this page's `offset` and `limit`, and
/// `next_offset` (`null` on the last page).
async fn alerts(
    State(s): State<AppState>,
    headers: HeaderMap,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(want) = &s.limits.api_token_sha256 {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|t| <[u8; 32]>::from(Sha256::digest(t.as_bytes())) == *want);
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "this endpoint needs Authorization: Bearer <token> (http.api_token_env)\n",
            )
                .into_response();
        }
    }
    let Ok(Query(page)) = page else {
        return (
            StatusCode::BAD_REQUEST,
            "limit and offset must be non-negative integers\n",
        )
            .into_response();
    };
    let max = s.limits.max_alerts_per_page.max(1);
    let limit = page.limit.unwrap_or(max).clamp(1, max);
    let firing = s.alerts.firing();
    let total = firing.len();
    let start = page.offset.min(total);
    let end = start.saturating_add(limit).min(total);
    let body = serde_json::json!({
        "schema": "kmswatch.firing/v1",
        "total": total,
        "offset": start,
        "limit": limit,
        "next_offset": (end < total).then_some(end),
        "alerts": firing[start..end].iter().map(|a| &**a).collect::<Vec<_>>(),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{self, Alert, AlertState};
    use crate::metrics::LabelLimits;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn state() -> AppState {
        AppState {
            metrics: Arc::new(Metrics::new(LabelLimits::default())),
            readiness: Arc::new(Readiness::default()),
            alerts: Arc::new(AlertBoard::default()),
            limits: HttpLimits::default(),
        }
    }

    async fn get(s: &AppState, path: &str) -> (StatusCode, String) {
        let resp = router(s.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readiness_waits_for_rules_and_queue() {
        let s = state();
        assert_eq!(
            get(&s, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: rules not loaded; queue not reached yet\n".into()
            )
        );
        s.readiness.rules_loaded.store(true, Ordering::Relaxed);
        assert_eq!(
            get(&s, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: queue not reached yet\n".into()
            )
        );
        s.readiness.queue_reached.store(true, Ordering::Relaxed);
        assert_eq!(get(&s, "/readyz").await, (StatusCode::OK, "ready\n".into()));
        assert_eq!(get(&s, "/healthz").await, (StatusCode::OK, "ok\n".into()));
        s.readiness.fail("the fold stage panicked: boom".into());
        assert_eq!(
            get(&s, "/healthz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "unhealthy: the fold stage panicked: boom\n".into()
            )
        );
        assert_eq!(get(&s, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn metrics_are_served_in_text_format() {
        let s = state();
        s.metrics.messages_received.inc_by(3);
        let (status, body) = get(&s, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("kmswatch_sqs_messages_received_total 3\n"),
            "{body}"
        );
    }

    fn alert(rule: &str, key: &str, state: AlertState) -> Alert {
        use crate::alerts::{Evidence, Group, ALERT_SCHEMA};
        use crate::rules::{Dim, Severity};
        Alert {
            schema: ALERT_SCHEMA,
            rule: rule.into(),
            kind: "threshold",
            severity: Severity::High,
            state,
            group: Group(vec![(Dim::Key, Some(key.into()))]),
            window_start: 1_772_409_600,
            window_end: 1_772_409_900,
            value: 7.0,
            threshold: 5.0,
            baseline: None,
            summary: format!("{rule} on {key}"),
            description: String::new(),
            evidence: Evidence {
                count: 7,
                event_ids: vec!["e1".into()],
            },
        }
    }

    #[tokio::test]
    async fn api_alerts_lists_what_fires_until_it_resolves() {
        let s = state();
        // The engine's firing set, as the fold keeps it.
        let mut firing = Firing::new();
        for (rule, key, state) in [
            ("r2", "k1", AlertState::Firing),
            ("r1", "k2", AlertState::Firing),
            ("r1", "k1", AlertState::Firing),
            ("r1", "k2", AlertState::Resolved),
        ] {
            alerts::apply(&mut firing, &alert(rule, key, state));
        }
        // HTTP serves what the fold published, not its working copy.
        assert_eq!(
            get(&s, "/api/alerts?limit=5")
                .await
                .1
                .matches("\"rule\"")
                .count(),
            0
        );
        s.alerts.publish(&firing);
        let (status, body) = get(&s, "/api/alerts").await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["schema"], "kmswatch.firing/v1");
        let firing: Vec<(String, String)> = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["rule"].as_str().unwrap().to_owned(),
                    a["group"]["key"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            firing,
            [("r1".into(), "k1".into()), ("r2".into(), "k1".into())]
        );
        assert_eq!(v["alerts"][0]["state"], "firing");
        let counts: Vec<_> = s.alerts.counts().into_iter().collect();
        assert_eq!(
            counts,
            [
                (("r1".to_string(), "high".to_string()), 1),
                (("r2".to_string(), "high".to_string()), 1)
            ]
        );
    }

    #[tokio::test]
    async fn api_alerts_is_paged_and_bounded() {
        let mut s = state();
        s.limits.max_alerts_per_page = 2;
        let mut firing = Firing::new();
        for k in ["k1", "k2", "k3"] {
            alerts::apply(&mut firing, &alert("r1", k, AlertState::Firing));
        }
        s.alerts.publish(&firing);
        let page = |q: &'static str| {
            let s = s.clone();
            async move {
                let (status, body) = get(&s, q).await;
                assert_eq!(status, StatusCode::OK, "{q}");
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let keys: Vec<String> = v["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["group"]["key"].as_str().unwrap().to_owned())
                    .collect();
                (v["total"].clone(), v["next_offset"].clone(), keys)
            }
        };
        use serde_json::json;
        // No limit, or one over the cap: the cap.
        for q in ["/api/alerts", "/api/alerts?limit=1000"] {
            assert_eq!(
                page(q).await,
                (json!(3), json!(2), vec!["k1".into(), "k2".into()])
            );
        }
        assert_eq!(
            page("/api/alerts?offset=2").await,
            (json!(3), json!(null), vec!["k3".into()])
        );
        assert_eq!(
            page("/api/alerts?limit=1&offset=1").await,
            (json!(3), json!(2), vec!["k2".into()])
        );
        assert_eq!(
            page("/api/alerts?offset=99").await,
            (json!(3), json!(null), vec![])
        );
        assert_eq!(
            get(&s, "/api/alerts?limit=-1").await.0,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn api_alerts_can_require_a_bearer_token() {
        let mut s = state();
        s.limits = HttpLimits::default().with_token(Some("s3cret"));
        let req = |auth: Option<&str>| {
            let mut r = Request::get("/api/alerts");
            if let Some(a) = auth {
                r = r.header(header::AUTHORIZATION, a);
            }
            r.body(Body::empty()).unwrap()
        };
        for bad in [
            None,
            Some("Bearer nope"),
            Some("s3cret"),
            Some("Basic s3cret"),
        ] {
            let resp = router(s.clone()).oneshot(req(bad)).await.unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
            assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
        }
        let ok = router(s.clone())
            .oneshot(req(Some("Bearer s3cret")))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        // The rest stays open for Prometheus and probes.
        assert_eq!(get(&s, "/metrics").await.0, StatusCode::OK);
        assert_eq!(get(&s, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn over_the_limits_requests_get_503_and_late_ones_408() {
        let busy = overloaded_or_late(Box::new(tower::load_shed::error::Overloaded::new())).await;
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let late = overloaded_or_late(Box::new(tower::timeout::error::Elapsed::new())).await;
        assert_eq!(late.status(), StatusCode::REQUEST_TIMEOUT);
        // Through the router: while every slot is taken (by a request being handled; here by
        // the test), a request is refused at once; once one is free it is served.
        let mut s = state();
        s.limits = s.limits.with_max_concurrent_requests(1);
        let held = s.limits.slots.clone().acquire_owned().await.unwrap();
        for path in ["/metrics", "/healthz", "/api/alerts"] {
            assert_eq!(
                get(&s, path).await.0,
                StatusCode::SERVICE_UNAVAILABLE,
                "{path}"
            );
        }
        drop(held);
        assert_eq!(get(&s, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_paths_are_404() {
        assert_eq!(get(&state(), "/nope").await.0, StatusCode::NOT_FOUND);
    }
}
