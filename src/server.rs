//! The service's HTTP face: `/metrics`, `/healthz`, `/readyz` and `/api/alerts`.
//!
//! The router only reads shared state the pipeline keeps up to date; it never blocks the pipeline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::alerts::{Alert, AlertState};
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

/// The alerts currently firing (alert-schema JSON), by rule id and group id.
#[derive(Debug, Default)]
pub struct AlertBoard {
    firing: Mutex<BTreeMap<(String, String), serde_json::Value>>,
}

impl AlertBoard {
    /// Applies an emitted alert: a firing one is added (or replaced), a resolved one removed.
    pub fn apply(&self, a: &Alert) {
        let id = (a.rule.clone(), a.group_id());
        let mut m = self.lock();
        match a.state {
            AlertState::Firing => {
                m.insert(id, serde_json::to_value(a).unwrap_or_default());
            }
            AlertState::Resolved => {
                m.remove(&id);
            }
        }
    }

    /// Replaces the board with what the engine says is firing (at start, after a restore).
    pub fn reset<'a>(
        &self,
        firing: impl Iterator<Item = (&'a (String, String), &'a serde_json::Value)>,
    ) {
        let mut m = self.lock();
        m.clear();
        m.extend(firing.map(|(id, v)| (id.clone(), v.clone())));
    }

    /// The firing alerts, ordered by rule then group.
    pub fn firing(&self) -> Vec<serde_json::Value> {
        self.lock().values().cloned().collect()
    }

    /// How many alerts fire per (rule, severity).
    pub fn counts(&self) -> BTreeMap<(String, String), i64> {
        let mut c = BTreeMap::new();
        for v in self.lock().values() {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            *c.entry((s("rule"), s("severity"))).or_default() += 1;
        }
        c
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), serde_json::Value>> {
        self.firing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub alerts: Arc<AlertBoard>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/alerts", get(alerts))
        .with_state(state)
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

async fn alerts(State(s): State<AppState>) -> Response {
    let firing = s.alerts.firing();
    let body = serde_json::json!({ "schema": "kmswatch.firing/v1", "alerts": firing });
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
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
        s.alerts.apply(&alert("r2", "k1", AlertState::Firing));
        s.alerts.apply(&alert("r1", "k2", AlertState::Firing));
        s.alerts.apply(&alert("r1", "k1", AlertState::Firing));
        s.alerts.apply(&alert("r1", "k2", AlertState::Resolved));
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
    async fn unknown_paths_are_404() {
        assert_eq!(get(&state(), "/nope").await.0, StatusCode::NOT_FOUND);
    }
}
