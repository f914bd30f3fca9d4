//! The Alertmanager sink (API v2): one task per configured Alertmanager (an HA pair or cluster
//! gets every alert, as Prometheus does), each with its own queue and outbox, so a slow or
//! hanging Alertmanager holds back only itself.
//!
//! A task posts alerts as they come and, every `resend_interval_secs` (and once the fold first
//! publishes), the alerts the engine says fire: the fold's published [`FiringSet`], not a copy of
//! the sink's own, so an alert whose `resolved` was lost stops being re-sent and Alertmanager
//! ends it by itself. A firing alert is posted with `endsAt` four resend intervals ahead, as
//! Prometheus does: Alertmanager keeps it while kmswatch runs and resolves it when kmswatch stops
//! for longer, whatever its `resolve_timeout`. A resolution is held, and the alert re-sent as
//! firing, until Alertmanager has had it firing for `keep_firing_for_secs` on the wall clock
//! ([`ledger`]); it is then posted once, with `endsAt` the end of its quiet window.

mod ledger;
pub mod payload;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::Uri;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, warn};

use super::http::HttpClient;
use super::{count, Delivery, FiringSet, LinkTemplate, Outbox, Outcome, SinkError};
use crate::config::AlertmanagerConfig;
use crate::metrics::Metrics;
use crate::retry::{with_retries, RetryPolicy};
use ledger::Ledger;
use payload::{read_alert, AmAlert, Labels};

/// A firing alert is valid for this many resend intervals (Prometheus' choice too): one or two
/// lost posts do not resolve it.
const VALID_FOR_INTERVALS: i64 = 4;

/// One Alertmanager's sink.
pub(super) struct AlertmanagerSink {
    /// The `sink` label: `alertmanager[i]`, `i` its position in `urls`.
    name: String,
    /// `<base URL>/api/v2/alerts`.
    uri: Uri,
    client: HttpClient,
    policy: RetryPolicy,
    resend: Duration,
    max_per_post: usize,
    link: Option<LinkTemplate>,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    /// When each alert may be resolved.
    ledger: Ledger,
}

impl AlertmanagerSink {
    pub(super) fn new(
        name: String,
        url: &str,
        cfg: &AlertmanagerConfig,
        policy: RetryPolicy,
        outbox: Arc<Outbox>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SinkError> {
        let full = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
        let uri = full.parse().map_err(|e| SinkError::Http {
            sink: name.clone(),
            message: format!("{full}: {e}"),
        })?;
        let client = HttpClient::new(Duration::from_secs(cfg.timeout_secs)).map_err(|message| {
            SinkError::Http {
                sink: name.clone(),
                message,
            }
        })?;
        Ok(AlertmanagerSink {
            name,
            uri,
            client,
            policy,
            resend: Duration::from_secs(cfg.resend_interval_secs.max(1)),
            max_per_post: cfg.max_alerts_per_post.max(1),
            link: cfg.link_template.clone(),
            outbox,
            metrics,
            ledger: Ledger::new(Duration::from_secs(cfg.keep_firing_for_secs)),
        })
    }

    /// Posts alerts as they come, the firing set once it is first published and then every
    /// resend interval, and held resolutions when they fall due, until the queue closes; what
    /// was queued by then is posted before returning (resolutions not yet due stay in the
    /// outbox).
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Delivery>, mut firing: FiringSet) {
        let start = Instant::now() + self.resend;
        let mut resend = tokio::time::interval_at(start, self.resend);
        resend.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut synced = false;
        loop {
            let due = self.ledger.next_due();
            tokio::select! {
                biased;
                _ = resend.tick() => self.resend(&firing).await,
                changed = firing.changed(), if !synced => {
                    synced = true;
                    if changed.is_ok() {
                        self.resend(&firing).await;
                    }
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {}
                d = rx.recv() => match d {
                    Some(d) => {
                        let mut batch = vec![d];
                        while let Ok(d) = rx.try_recv() {
                            batch.push(d);
                        }
                        self.take(batch).await;
                    }
                    None => break,
                },
            }
            self.resolve_due().await;
        }
    }

    /// Takes in alerts from the queue: firing ones are posted at once, resolved ones held.
    pub(super) async fn take(&mut self, batch: Vec<Delivery>) {
        let mut fired = BTreeMap::new();
        let mut settled = Vec::new();
        for d in batch {
            let Some(a) = self.read_json(&d.json) else {
                self.outbox.settle(d.seq);
                continue;
            };
            settled.extend(self.ledger.take(&a, d.seq));
            if a.firing {
                settled.push(d.seq);
                fired.insert(a.labels.clone(), a);
            }
        }
        let fired: Vec<AmAlert> = fired.into_values().collect();
        let now = Instant::now();
        let accepted = self.post(&fired).await;
        self.ledger
            .accepted(accepted_labels(&fired, &accepted), now);
        // Firing alerts are re-sent from the firing set (or, resolved since, from the ledger):
        // settled whether or not this post was accepted.
        for seq in settled {
            self.outbox.settle(seq);
        }
    }

    /// Posts every alert the engine says fires, and the held ones, as firing.
    pub(super) async fn resend(&mut self, firing: &FiringSet) {
        let snapshot = firing.borrow().clone();
        let mut all: Vec<AmAlert> = snapshot.iter().filter_map(|v| self.read(v)).collect();
        let mut labels: BTreeSet<Labels> = all.iter().map(|a| a.labels.clone()).collect();
        for h in self.ledger.held() {
            if labels.insert(h.labels.clone()) {
                all.push(AmAlert {
                    firing: true,
                    ..h.clone()
                });
            }
        }
        let now = Instant::now();
        let accepted = self.post(&all).await;
        self.ledger.accepted(accepted_labels(&all, &accepted), now);
        self.ledger.forget_others(&labels);
    }

    /// Posts the resolutions that are due.
    pub(super) async fn resolve_due(&mut self) {
        let due = self.ledger.due(Instant::now());
        if due.is_empty() {
            return;
        }
        let accepted = self.post(&due).await;
        let now = Instant::now();
        for (a, ok) in due.iter().zip(accepted) {
            if let Some(seq) = self.ledger.posted(&a.labels, ok, now, self.resend) {
                self.outbox.settle(seq);
            }
        }
    }

    fn read_json(&self, json: &str) -> Option<AmAlert> {
        match serde_json::from_str(json) {
            Ok(v) => self.read(&v),
            Err(error) => {
                error!(sink = %self.name, %error, alert = %json, "an alert is not JSON");
                count(&self.metrics, &self.name, Outcome::Failed, 1);
                None
            }
        }
    }

    fn read(&self, v: &serde_json::Value) -> Option<AmAlert> {
        match read_alert(v, self.link.as_ref()) {
            Ok(a) => Some(a),
            Err(error) => {
                error!(sink = %self.name, %error, alert = %v, "an alert could not be read for Alertmanager");
                count(&self.metrics, &self.name, Outcome::Failed, 1);
                None
            }
        }
    }

    /// Posts `alerts`, `max_alerts_per_post` at a time; whether each was accepted.
    pub(super) async fn post(&self, alerts: &[AmAlert]) -> Vec<bool> {
        let now = crate::serve::now_ms() / 1000;
        let valid_until = now + VALID_FOR_INTERVALS * self.resend.as_secs() as i64;
        let mut accepted = Vec::with_capacity(alerts.len());
        for chunk in alerts.chunks(self.max_per_post) {
            let body: Vec<_> = chunk.iter().map(|a| a.postable(now, valid_until)).collect();
            let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
            let ok = self.post_one(body, chunk.len()).await;
            accepted.extend(std::iter::repeat_n(ok, chunk.len()));
        }
        accepted
    }

    /// One POST of `n` alerts, with retries; every alert counted.
    async fn post_one(&self, body: Bytes, n: usize) -> bool {
        let headers = HeaderMap::new();
        let r = with_retries(
            &self.policy,
            || self.client.post(&self.uri, &headers, body.clone()),
            |attempt, error| {
                count(&self.metrics, &self.name, Outcome::Retried, n);
                warn!(sink = %self.name, url = %self.uri, attempt, %error, "posting alerts to Alertmanager failed; retrying");
            },
        )
        .await;
        match r {
            Ok(()) => {
                count(&self.metrics, &self.name, Outcome::Ok, n);
                true
            }
            Err(error) => {
                count(&self.metrics, &self.name, Outcome::Failed, n);
                error!(sink = %self.name, url = %self.uri, alerts = n, %error, "Alertmanager did not take the alerts; firing and held ones are posted again at the next resend");
                false
            }
        }
    }
}

/// The label sets of the alerts whose post was accepted.
fn accepted_labels<'a>(
    alerts: &'a [AmAlert],
    accepted: &'a [bool],
) -> impl Iterator<Item = &'a Labels> {
    alerts
        .iter()
        .zip(accepted)
        .filter(|(_, ok)| **ok)
        .map(|(a, _)| &a.labels)
}
