//! Alert delivery: JSON lines, Alertmanager (API v2) and webhooks, each a task with its own
//! bounded queue.
//!
//! The fold hands every alert to every sink with `try_send` and never waits: an alert that finds a
//! queue full is dropped, counted (`kmswatch_alert_deliveries_total{result="dropped"}`) and
//! logged. Each sink retries failed deliveries with backoff and jitter (`crate::retry`) and counts
//! every outcome per target. When the fold drops its [`Sinks`] at shutdown, each sink delivers
//! what is queued and ends; [`SinkTasks::finish`] waits for that, up to a deadline.

mod alertmanager;
mod http;
mod jsonl;
mod link;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::alerts::Alert;
use crate::config::AlertsConfig;
use crate::metrics::Metrics;

pub use alertmanager::payload::{read_alert, AmAlert, Labels, PostableAlert};
pub use http::{HttpClient, PostError};
pub use link::{LinkTemplate, PLACEHOLDERS};
pub use webhook::{signature, SIGNATURE_HEADER};

/// What a sink's queue carries.
#[derive(Debug, Clone)]
pub enum SinkMsg {
    /// An alert as the engine emitted it, firing or resolved.
    Alert(Arc<Alert>),
    /// Everything firing now, in the alert schema (at start, after a restore or a rule reload):
    /// replaces what the sink believes is firing. Only the Alertmanager sink takes these.
    Firing(Arc<Vec<serde_json::Value>>),
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
    /// The `sink` label of the queue-depth gauge.
    name: String,
    /// The `sink` labels a drop is counted under: one queue feeds every Alertmanager URL.
    targets: Vec<String>,
    tx: mpsc::Sender<SinkMsg>,
    /// Whether the sink takes [`SinkMsg::Firing`].
    takes_firing: bool,
    /// The last hand-over found the queue full: a drop is logged once per run of drops.
    dropping: bool,
}

/// The fold's side of every sink: hands alerts over without waiting.
pub struct Sinks {
    outlets: Vec<Outlet>,
    metrics: Arc<Metrics>,
}

impl Sinks {
    /// No sinks at all.
    pub fn none(metrics: Arc<Metrics>) -> Self {
        Sinks {
            outlets: Vec::new(),
            metrics,
        }
    }

    /// Hands `alert` to every sink; a sink whose queue is full misses it (counted, logged).
    pub fn publish(&mut self, alert: Alert) {
        let alert = Arc::new(alert);
        for o in &mut self.outlets {
            hand_over(o, SinkMsg::Alert(alert.clone()), &self.metrics);
        }
    }

    /// Tells the sinks that take it what fires now (at start, after a restore or a reload).
    pub fn firing(&mut self, firing: Vec<serde_json::Value>) {
        let firing = Arc::new(firing);
        for o in self.outlets.iter_mut().filter(|o| o.takes_firing) {
            hand_over(o, SinkMsg::Firing(firing.clone()), &self.metrics);
        }
    }
}

#[cfg(test)]
impl Sinks {
    /// A fan-out to one queue that the test reads.
    pub(crate) fn with_queue(
        metrics: Arc<Metrics>,
        capacity: usize,
    ) -> (Sinks, mpsc::Receiver<SinkMsg>) {
        let (tx, rx) = mpsc::channel(capacity);
        let outlet = Outlet {
            name: "test".into(),
            targets: vec!["test".into()],
            tx,
            takes_firing: true,
            dropping: false,
        };
        let sinks = Sinks {
            outlets: vec![outlet],
            metrics,
        };
        (sinks, rx)
    }
}

fn hand_over(o: &mut Outlet, msg: SinkMsg, metrics: &Metrics) {
    match o.tx.try_send(msg) {
        Ok(()) => o.dropping = false,
        Err(TrySendError::Full(msg)) => {
            let n = match &msg {
                SinkMsg::Alert(_) => 1,
                SinkMsg::Firing(all) => all.len(),
            };
            for t in &o.targets {
                count(metrics, t, Outcome::Dropped, n);
            }
            if !o.dropping {
                warn!(sink = %o.name, capacity = o.tx.max_capacity(), "the sink's queue is full: alerts are dropped until it drains (counted in kmswatch_alert_deliveries_total{{result=\"dropped\"}})");
            }
            o.dropping = true;
        }
        // The sink ended early (it panicked): nothing to deliver to any more.
        Err(TrySendError::Closed(_)) => {
            for t in &o.targets {
                count(metrics, t, Outcome::Dropped, 1);
            }
        }
    }
    let depth = o.tx.max_capacity() - o.tx.capacity();
    metrics
        .alert_queue_depth
        .with_label_values(&[&o.name])
        .set(depth as i64);
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
                warn!(sink = %name, "shutdown deadline passed: alerts still queued for this sink are lost");
                task.abort();
            }
        }
    }
}

/// Starts the configured sinks (on the current tokio runtime).
pub fn start(cfg: &AlertsConfig, metrics: Arc<Metrics>) -> Result<(Sinks, SinkTasks), SinkError> {
    let mut outlets = Vec::new();
    let mut tasks = Vec::new();
    let mut add = |name: String, targets: Vec<String>, capacity: usize, takes_firing: bool| {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        outlets.push(Outlet {
            name,
            targets,
            tx,
            takes_firing,
            dropping: false,
        });
        rx
    };
    if let Some(target) = &cfg.jsonl {
        let out = jsonl::open(target)?;
        let rx = add(
            "jsonl".into(),
            vec!["jsonl".into()],
            cfg.jsonl_queue_capacity,
            false,
        );
        let m = metrics.clone();
        tasks.push((
            "jsonl".to_string(),
            tokio::task::spawn_blocking(move || jsonl::run(out, rx, &m)),
        ));
    }
    if let Some(am) = &cfg.alertmanager {
        let sink = alertmanager::AlertmanagerSink::new(am, cfg.retry, metrics.clone())?;
        let targets = sink.target_names();
        let rx = add("alertmanager".into(), targets, am.queue_capacity, true);
        info!(urls = ?am.urls, resend_interval_secs = am.resend_interval_secs, "delivering alerts to Alertmanager");
        tasks.push(("alertmanager".to_string(), tokio::spawn(sink.run(rx))));
    }
    for (i, w) in cfg.webhooks.iter().enumerate() {
        let name = format!("webhook[{i}]");
        let sink = webhook::Webhook::new(name.clone(), w, cfg.retry, metrics.clone())?;
        let rx = add(name.clone(), vec![name.clone()], w.queue_capacity, false);
        info!(sink = %name, url = %w.url, signed = w.secret.is_some(), "delivering alerts to a webhook");
        tasks.push((name, tokio::spawn(sink.run(rx))));
    }
    Ok((Sinks { outlets, metrics }, SinkTasks(tasks)))
}

#[cfg(test)]
mod test_server;

#[cfg(test)]
mod tests;
