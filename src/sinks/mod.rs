//! Alert delivery: JSON lines, Alertmanager (API v2, one task per URL) and webhooks, each a task
//! with its own bounded queue and outbox.
//!
//! The fold hands every alert to every sink without waiting: it adds it to the sink's
//! [`Outbox`] and queues it with `try_send`; an alert that finds the outbox full is dropped,
//! counted (`kmswatch_alert_deliveries_total{result="dropped"}`) and logged. Each sink retries
//! failed deliveries with backoff and jitter (`crate::retry`), counts every outcome per target,
//! and settles an alert in its outbox once delivered or given up. When the fold drops its
//! [`Sinks`] at shutdown, each sink delivers what is queued and ends; [`SinkTasks::finish`] waits
//! for that, up to a deadline.

mod alertmanager;
mod http;
mod jsonl;
mod link;
mod outbox;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::alerts::{Alert, FiringSnapshot};
use crate::config::AlertsConfig;
use crate::metrics::Metrics;
use crate::state::SinkOutbox;

pub use alertmanager::payload::{read_alert, AmAlert, Labels, PostableAlert};
pub use http::{HttpClient, PostError};
pub use link::{LinkTemplate, PLACEHOLDERS};
pub use outbox::Outbox;
pub use webhook::{signature, SIGNATURE_HEADER};

/// The firing alerts the fold publishes (alert-schema JSON, `AlertBoard::subscribe`): what the
/// Alertmanager sinks re-send.
pub type FiringSet = watch::Receiver<FiringSnapshot>;

/// What a sink's queue carries: one alert as the engine emitted it, firing or resolved.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its key in the sink's outbox, to settle once delivered.
    pub seq: u64,
    /// The alert in the alert schema (`kmswatch.alert/v1`), as every sink delivers it.
    pub json: Arc<str>,
}

/// The `result` label of `kmswatch_alert_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered (for Alertmanager: each alert of each accepted POST, re-sends included).
    Ok,
    /// A try failed and is repeated after a backoff.
    Retried,
    /// Given up after the last try, or refused for good (a 4xx answer).
    Failed,
    /// Not queued: the sink's queue was full.
    Dropped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::Dropped => "dropped",
        }
    }
}

/// Counts `n` alerts delivered to `sink` with `outcome`.
fn count(metrics: &Metrics, sink: &str, outcome: Outcome, n: usize) {
    metrics
        .alert_deliveries
        .with_label_values(&[sink, outcome.as_str()])
        .inc_by(n as u64);
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot open the alerts file {path}: {source}")]
    Jsonl {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{sink}: cannot set up the HTTP client: {message}")]
    Http { sink: String, message: String },
}

/// The sending side of one sink's queue.
struct Outlet {
    /// The `sink` label: `jsonl`, `alertmanager[i]`, `webhook[i]`.
    name: String,
    tx: mpsc::Sender<Delivery>,
    outbox: Arc<Outbox>,
    /// The last hand-over found the outbox full: a drop is logged once per run of drops.
    dropping: bool,
}

/// The fold's side of every sink: hands alerts over without waiting.
pub struct Sinks {
    outlets: Vec<Outlet>,
    metrics: Arc<Metrics>,
    /// The sequence number of the next alert handed over.
    next_seq: u64,
}

impl Sinks {
    /// No sinks at all.
    pub fn none(metrics: Arc<Metrics>) -> Self {
        Sinks {
            outlets: Vec::new(),
            metrics,
            next_seq: 0,
        }
    }

    /// Hands `alert` to every sink; a sink whose outbox is full misses it (counted, logged).
    pub fn publish(&mut self, alert: &Alert) {
        let json: Arc<str> = Arc::from(alert.to_json());
        let seq = self.next_seq;
        self.next_seq += 1;
        for o in &mut self.outlets {
            hand_over(o, seq, json.clone(), &self.metrics);
        }
    }

    /// What every sink has not yet delivered, for the state file.
    pub fn undelivered(&self) -> Vec<SinkOutbox> {
        self.outlets
            .iter()
            .map(|o| SinkOutbox {
                sink: o.name.clone(),
                alerts: o
                    .outbox
                    .undelivered()
                    .iter()
                    .filter_map(|json| RawValue::from_string(json.to_string()).ok())
                    .collect(),
            })
            .filter(|s| !s.alerts.is_empty())
            .collect()
    }

    /// Hands each sink what the state says it had not delivered (at start, before anything
    /// new). The outbox of a sink no longer configured is dropped, counted and logged.
    pub fn redeliver(&mut self, saved: Vec<SinkOutbox>) {
        for s in saved {
            let n = s.alerts.len();
            let Some(o) = self.outlets.iter_mut().find(|o| o.name == s.sink) else {
                count(&self.metrics, &s.sink, Outcome::Dropped, n);
                warn!(sink = %s.sink, alerts = n, "the state holds alerts undelivered to a sink that is no longer configured: dropped");
                continue;
            };
            info!(sink = %s.sink, alerts = n, "delivering alerts the last run had not delivered");
            for json in s.alerts {
                let seq = self.next_seq;
                self.next_seq += 1;
                hand_over(o, seq, Arc::from(json.get()), &self.metrics);
            }
        }
    }
}

#[cfg(test)]
impl Sinks {
    /// A fan-out to one sink, `test`, whose queue the test reads.
    pub(crate) fn with_queue(
        metrics: Arc<Metrics>,
        capacity: usize,
    ) -> (Sinks, mpsc::Receiver<Delivery>, Arc<Outbox>) {
        let (tx, rx) = mpsc::channel(capacity);
        let outbox = Arc::new(Outbox::new(
            capacity,
            metrics.alert_queue_depth.with_label_values(&["test"]),
        ));
        let outlet = Outlet {
            name: "test".into(),
            tx,
            outbox: outbox.clone(),
            dropping: false,
        };
        let sinks = Sinks {
            outlets: vec![outlet],
            metrics,
            next_seq: 0,
        };
        (sinks, rx, outbox)
    }
}

fn hand_over(o: &mut Outlet, seq: u64, json: Arc<str>, metrics: &Metrics) {
    // The outbox is at least as large as the queue: an alert it admits finds room in the queue
    // unless the sink has ended.
    let queued = o.outbox.admit(seq, json.clone())
        && match o.tx.try_send(Delivery { seq, json }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                o.outbox.settle(seq);
                false
            }
        };
    if queued {
        o.dropping = false;
        return;
    }
    count(metrics, &o.name, Outcome::Dropped, 1);
    if !o.dropping {
        warn!(sink = %o.name, capacity = o.tx.max_capacity(), "the sink's queue is full: alerts are dropped until it drains (counted in kmswatch_alert_deliveries_total{{result=\"dropped\"}})");
    }
    o.dropping = true;
}

/// The sinks' tasks, to wait for at shutdown.
pub struct SinkTasks(Vec<(String, JoinHandle<()>)>);

impl SinkTasks {
    /// Waits, at most `deadline` in all, for every sink to deliver what it holds once the
    /// [`Sinks`] are dropped; abandons (and logs) what is left after that.
    pub async fn finish(self, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        for (name, mut task) in self.0 {
            if tokio::time::timeout_at(end, &mut task).await.is_err() {
                warn!(sink = %name, "shutdown deadline passed: alerts still queued for this sink are delivered after the next start if state is kept, else lost");
                task.abort();
            }
        }
    }
}

/// Starts the configured sinks (on the current tokio runtime); the Alertmanager sinks re-send
/// what `firing` says fires.
pub fn start(
    cfg: &AlertsConfig,
    firing: FiringSet,
    metrics: Arc<Metrics>,
) -> Result<(Sinks, SinkTasks), SinkError> {
    let mut outlets = Vec::new();
    let mut tasks = Vec::new();
    let mut add = |name: &str, capacity: usize| {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let depth = metrics.alert_queue_depth.with_label_values(&[name]);
        let outbox = Arc::new(Outbox::new(capacity, depth));
        outlets.push(Outlet {
            name: name.to_string(),
            tx,
            outbox: outbox.clone(),
            dropping: false,
        });
        (rx, outbox)
    };
    if let Some(target) = &cfg.jsonl {
        let out = jsonl::open(target)?;
        let (rx, outbox) = add("jsonl", cfg.jsonl_queue_capacity);
        let m = metrics.clone();
        tasks.push((
            "jsonl".to_string(),
            tokio::task::spawn_blocking(move || jsonl::run(out, rx, &outbox, &m)),
        ));
    }
    if let Some(am) = &cfg.alertmanager {
        info!(urls = ?am.urls, resend_interval_secs = am.resend_interval_secs, keep_firing_for_secs = am.keep_firing_for_secs, "delivering alerts to Alertmanager");
        for (i, url) in am.urls.iter().enumerate() {
            let name = format!("alertmanager[{i}]");
            let (rx, outbox) = add(&name, am.queue_capacity);
            let sink = alertmanager::AlertmanagerSink::new(
                name.clone(),
                url,
                am,
                cfg.retry,
                outbox,
                metrics.clone(),
            )?;
            tasks.push((name, tokio::spawn(sink.run(rx, firing.clone()))));
        }
    }
    for (i, w) in cfg.webhooks.iter().enumerate() {
        let name = format!("webhook[{i}]");
        let (rx, outbox) = add(&name, w.queue_capacity);
        let sink = webhook::Webhook::new(name.clone(), w, cfg.retry, outbox, metrics.clone())?;
        info!(sink = %name, url = %w.url, signed = w.secret.is_some(), "delivering alerts to a webhook");
        tasks.push((name, tokio::spawn(sink.run(rx))));
    }
    Ok((
        Sinks {
            outlets,
            metrics,
            next_seq: 0,
        },
        SinkTasks(tasks),
    ))
}

#[cfg(test)]
mod test_server;

#[cfg(test)]
mod tests;
