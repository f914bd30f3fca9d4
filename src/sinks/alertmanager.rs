//! The Alertmanager sink (API v2): posts each firing and resolved alert to every configured
//! Alertmanager (an HA pair or cluster, as Prometheus does), and posts the whole firing set again
//! every `resend_interval_secs`.
//!
//! It keeps the set of firing alerts by label set, seeded from the engine's firing alerts at
//! start (and replaced after a rule reload), so that a restart keeps alerts alive. A firing alert
//! is posted with `endsAt` four resend intervals ahead, as Prometheus does: Alertmanager keeps it
//! while kmswatch runs and resolves it by itself when kmswatch stops for longer, whatever its
//! `resolve_timeout`. A resolved alert is posted once, with `endsAt` the end of its quiet window.

pub mod payload;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::Uri;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tracing::{error, warn};

use super::http::HttpClient;
use super::{count, LinkTemplate, Outcome, SinkError, SinkMsg};
use crate::config::AlertmanagerConfig;
use crate::metrics::Metrics;
use crate::retry::{with_retries, RetryPolicy};
use payload::{read_alert, AmAlert, Labels};

/// A firing alert is valid for this many resend intervals (Prometheus' choice too): one or two
/// lost posts do not resolve it.
const VALID_FOR_INTERVALS: i64 = 4;

/// One Alertmanager.
#[derive(Debug, Clone)]
struct Target {
    /// The `sink` label: `alertmanager[i]`, `i` its position in `urls`.
    name: String,
    /// `<base URL>/api/v2/alerts`.
    uri: Uri,
}

pub(super) struct AlertmanagerSink {
    targets: Vec<Target>,
    client: HttpClient,
    policy: RetryPolicy,
    resend: Duration,
    max_per_post: usize,
    link: Option<LinkTemplate>,
    metrics: Arc<Metrics>,
    /// What fires now, by label set.
    firing: BTreeMap<Labels, AmAlert>,
}

impl AlertmanagerSink {
    pub(super) fn new(
        cfg: &AlertmanagerConfig,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SinkError> {
        let mut targets = Vec::new();
        for (i, url) in cfg.urls.iter().enumerate() {
            let name = format!("alertmanager[{i}]");
            let full = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
            let uri = full.parse().map_err(|e| SinkError::Http {
                sink: name.clone(),
                message: format!("{full}: {e}"),
            })?;
            targets.push(Target { name, uri });
        }
        let client = HttpClient::new(Duration::from_secs(cfg.timeout_secs)).map_err(|message| {
            SinkError::Http {
                sink: "alertmanager".into(),
                message,
            }
        })?;
        Ok(AlertmanagerSink {
            targets,
            client,
            policy,
            resend: Duration::from_secs(cfg.resend_interval_secs.max(1)),
            max_per_post: cfg.max_alerts_per_post.max(1),
            link: cfg.link_template.clone(),
            metrics,
            firing: BTreeMap::new(),
        })
    }

    pub(super) fn target_names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }

    /// Posts changes as they come and the firing set every resend interval, until the queue
    /// closes; what was queued by then is posted before returning.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<SinkMsg>) {
        let start = tokio::time::Instant::now() + self.resend;
        let mut resend = tokio::time::interval_at(start, self.resend);
        resend.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let mut changed = BTreeMap::new();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.apply(msg, &mut changed),
                    None => break,
                },
                _ = resend.tick() => {
                    self.resend().await;
                    continue;
                }
            }
            while let Ok(msg) = rx.try_recv() {
                self.apply(msg, &mut changed);
            }
            self.metrics
                .alert_queue_depth
                .with_label_values(&["alertmanager"])
                .set(rx.len() as i64);
            let changed: Vec<AmAlert> = changed.into_values().collect();
            self.post(&changed).await;
        }
    }

    /// Takes in a message: updates the firing set and records in `changed` what to post (the
    /// latest state per label set).
    pub(super) fn apply(&mut self, msg: SinkMsg, changed: &mut BTreeMap<Labels, AmAlert>) {
        match msg {
            SinkMsg::Alert(a) => {
                let v = serde_json::to_value(&*a).unwrap_or_default();
                let Some(mut a) = self.read(&v) else { return };
                if a.firing {
                    self.firing.insert(a.labels.clone(), a.clone());
                } else if let Some(f) = self.firing.remove(&a.labels) {
                    // The alert started when it fired, not when its quiet window began.
                    a.starts_at = a.starts_at.min(f.starts_at);
                }
                changed.insert(a.labels.clone(), a);
            }
            SinkMsg::Firing(all) => {
                let now: BTreeMap<Labels, AmAlert> = all
                    .iter()
                    .filter_map(|v| self.read(v))
                    .map(|a| (a.labels.clone(), a))
                    .collect();
                // No longer firing (their rule was removed or changed): resolved now.
                for (labels, mut gone) in std::mem::take(&mut self.firing) {
                    if !now.contains_key(&labels) {
                        gone.firing = false;
                        gone.ends_at = i64::MAX; // clamped to the wall clock when posted
                        changed.insert(labels, gone);
                    }
                }
                changed.extend(now.iter().map(|(l, a)| (l.clone(), a.clone())));
                self.firing = now;
            }
        }
    }

    fn read(&self, v: &serde_json::Value) -> Option<AmAlert> {
        match read_alert(v, self.link.as_ref()) {
            Ok(a) => Some(a),
            Err(error) => {
                error!(%error, alert = %v, "an alert could not be read for Alertmanager");
                for t in &self.targets {
                    count(&self.metrics, &t.name, Outcome::Failed, 1);
                }
                None
            }
        }
    }

    /// Posts every firing alert again.
    pub(super) async fn resend(&self) {
        let all: Vec<AmAlert> = self.firing.values().cloned().collect();
        self.post(&all).await;
    }

    /// Posts `alerts` to every Alertmanager at once, `max_alerts_per_post` at a time.
    pub(super) async fn post(&self, alerts: &[AmAlert]) {
        if alerts.is_empty() {
            return;
        }
        let now = crate::serve::now_ms() / 1000;
        let valid_until = now + VALID_FOR_INTERVALS * self.resend.as_secs() as i64;
        for chunk in alerts.chunks(self.max_per_post) {
            let body: Vec<_> = chunk.iter().map(|a| a.postable(now, valid_until)).collect();
            let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
            let mut posts = JoinSet::new();
            for t in &self.targets {
                let (client, t, body, policy, metrics) = (
                    self.client.clone(),
                    t.clone(),
                    body.clone(),
                    self.policy,
                    self.metrics.clone(),
                );
                let n = chunk.len();
                posts.spawn(async move { post_one(&client, &t, body, n, &policy, &metrics).await });
            }
            while posts.join_next().await.is_some() {}
        }
    }
}

/// One POST of `n` alerts to one Alertmanager, with retries; every alert counted.
async fn post_one(
    client: &HttpClient,
    t: &Target,
    body: Bytes,
    n: usize,
    policy: &RetryPolicy,
    metrics: &Metrics,
) {
    let headers = HeaderMap::new();
    let r = with_retries(
        policy,
        || client.post(&t.uri, &headers, body.clone()),
        |attempt, error| {
            count(metrics, &t.name, Outcome::Retried, n);
            warn!(sink = %t.name, url = %t.uri, attempt, %error, "posting alerts to Alertmanager failed; retrying");
        },
    )
    .await;
    match r {
        Ok(()) => count(metrics, &t.name, Outcome::Ok, n),
        Err(error) => {
            count(metrics, &t.name, Outcome::Failed, n);
            error!(sink = %t.name, url = %t.uri, alerts = n, %error, "Alertmanager did not take the alerts; firing ones are posted again at the next resend");
        }
    }
}
