//! The live service: wires the SQS source, S3 fetching, the fold (engine), acknowledgements, the
//! HTTP server and signals together, and shuts them down in order.
//!
//! Stages are tasks joined by bounded channels: receive loops → `work` → dispatcher (fetch +
//! decode, `fetch_concurrency` at once) → `fold` → one engine thread → `acks` → acknowledger.
//! A message is deleted only after every object it names is folded and, with a state file,
//! only after a state save that includes them.

mod ack;
mod fold;
mod inflight;
mod intake;
pub mod journal;
mod setup;
mod supervise;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::config::ServeConfig;
use crate::decode::DecodedObject;
use crate::metrics::{LabelLimits, Metrics};
use crate::retry::RetryPolicy;
use crate::rules::{load_paths, RuleSet};
use crate::server::{router, AlertBoard, AppState, HttpLimits, Readiness};
use crate::sinks::{self, SinkError};
use crate::sources::sqs::Queue;
use crate::sources::ObjectRef;
use crate::state::StateError;

pub use setup::load_rules;

use fold::Fold;
use inflight::{Inflight, Msg};
use intake::{Fetching, Receiving};
use journal::{Checkpointing, Journaled};

/// What became of one object.
pub enum ObjectOutcome {
    Decoded(Box<DecodedObject>),
    /// A permanent failure, as a metric reason (`not_found`, `gzip_corrupt`, ...).
    Failed(&'static str),
}

/// What the fold thread takes in.
pub enum FoldItem {
    Object {
        msg: Arc<Msg>,
        object: ObjectRef,
        outcome: ObjectOutcome,
        /// The slots the object holds until it is folded, so decoded objects queued for the fold
        /// count against them and memory stays bounded.
        permit: Option<Slots>,
    },
    /// The wall clock (Unix seconds), once a second; it also paces state saves. `caught_up`: the
    /// queue was drained and everything received is folded, so the wall clock may close windows.
    Tick { now: i64, caught_up: bool },
    /// A new rule set (SIGHUP).
    Reload(RuleSet),
}

/// An object's fetch slot (one of `fetch_concurrency`) and, once it was decoded, its decode slot
/// ([`intake::Fetching::decode_slots`]); both are released when the object is folded.
pub struct Slots {
    pub fetch: tokio::sync::OwnedSemaphorePermit,
    pub decode: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What the acknowledger does with messages.
pub enum Ack {
    /// Delete: everything the messages named is in state. The reason is a metric label.
    Delete(Vec<Arc<Msg>>, &'static str),
    /// Leave for the redrive policy (dead-letter queue) after counting why.
    Release(Arc<Msg>, &'static str),
}

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("rules in {paths} are invalid:\n{problems}")]
    Rules { paths: String, problems: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("the engine thread failed: {0}")]
    Engine(String),
    #[error("the {stage} stage stopped before shutdown was asked for ({why}); the service stopped with it (messages not yet deleted will be redelivered)")]
    StageDied { stage: &'static str, why: String },
}

/// Whether the service has caught up with the queue, so that the wall clock may close windows: a
/// receive found the queue empty within the last `drained_for` seconds and every object received
/// is folded. While a backlog is worked off (after an outage, say), event time alone closes
/// windows, so the backlog's events are judged in their windows instead of counted late.
fn caught_up(now: i64, last_empty_receive: i64, drained_for: i64, unfolded: usize) -> bool {
    last_empty_receive > 0 && now - last_empty_receive <= drained_for && unfolded == 0
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// After a restart from saved state: messages the queue reports in flight (received before the
/// restart, by the process that stopped) come back once their visibility timeout ends. Until then,
/// plus a margin, the watermark stays at the restored one, so their calls are not judged late
/// when the restarted service folds newer messages first. Nothing is held without a restored
/// watermark or with nothing in flight; an unanswered query holds for the full time.
async fn restart_hold(
    queue: &Queue,
    engine: &crate::engine::Engine,
    src: &crate::config::SourceConfig,
    metrics: &Metrics,
) -> Option<fold::RestartHold> {
    let watermark = engine.watermark()?;
    let in_flight = queue
        .in_flight(|_, _| {
            metrics
                .aws_retries
                .with_label_values(&["sqs", "get_queue_attributes"])
                .inc();
        })
        .await;
    let secs = i64::from(src.visibility_timeout_secs) + RESTART_HOLD_MARGIN_SECS;
    match in_flight {
        Ok(0) => None,
        Ok(n) => {
            info!(in_flight = n, hold_secs = secs, "messages in flight from before the restart: holding the watermark until they are back");
            Some(fold::RestartHold {
                watermark,
                until: now_ms() / 1000 + secs,
            })
        }
        Err(error) => {
            warn!(%error, hold_secs = secs, "could not ask the queue for messages in flight; holding the watermark as if there were some");
            Some(fold::RestartHold {
                watermark,
                until: now_ms() / 1000 + secs,
            })
        }
    }
}

/// How much longer than the visibility timeout the watermark is held after a restart: time to
/// receive the messages that come back.
const RESTART_HOLD_MARGIN_SECS: i64 = 30;

/// Runs the service until SIGTERM or SIGINT; SIGHUP reloads the rules.
pub async fn run(cfg: ServeConfig) -> Result<(), ServeError> {
    let rules = load_rules(&cfg)?;
    let start = setup::start_engine(&cfg, rules)?;
    let (engine, undelivered) = (start.engine, start.undelivered);
    let metrics = Arc::new(Metrics::new(LabelLimits {
        max_label_values: cfg.metrics.max_label_values,
        max_series: cfg.metrics.max_series,
        label_decay_secs: cfg.metrics.label_decay_secs,
    }));
    let board = Arc::new(AlertBoard::default());
    let (mut sinks, sink_tasks) = sinks::start(&cfg.alerts, board.subscribe(), metrics.clone())?;
    // At least once: what the last run had not delivered goes out before anything new.
    sinks.redeliver(undelivered);
    let readiness = Arc::new(Readiness::default());
    readiness.rules_loaded.store(true, Ordering::Relaxed);
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: cfg.http.listen,
            source,
        })?;
    info!(addr = %listener.local_addr().map_or(cfg.http.listen, |a| a), "serving /metrics, /healthz, /readyz, /api/alerts");

    let (sqs, s3) = setup::aws_clients(&cfg).await;
    let src = &cfg.source;
    let policy = RetryPolicy {
        max_attempts: src.max_attempts,
        base_ms: src.retry_base_ms,
        max_ms: src.retry_max_ms,
    };
    let queue = Queue::new(sqs, src.queue_url.clone(), policy);
    let inflight = Arc::new(Inflight::default());
    let restart_hold = restart_hold(&queue, &engine, src, &metrics).await;

    // Shutdown in stages: `stop_intake` ends the receive loops; `abort` ends unfinished fetches at
    // the deadline; `stop_rest` ends the visibility keeper and the HTTP server last.
    let (stop_intake_tx, stop_intake) = watch::channel(false);
    let (abort_tx, abort) = watch::channel(false);
    let (stop_rest_tx, stop_rest) = watch::channel(false);
    // A stage that ends before `stop_intake` is set has died: the service stops, naming it.
    let (died_tx, mut died) = mpsc::unbounded_channel();
    let sup = supervise::Supervisor {
        died: died_tx,
        stopping: stop_intake.clone(),
    };

    let http = {
        let app = router(AppState {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            alerts: board.clone(),
            limits: HttpLimits {
                request_timeout: Duration::from_secs(cfg.http.request_timeout_secs),
                max_alerts_per_page: cfg.http.max_alerts_per_page,
                ..HttpLimits::default()
            }
            .with_max_concurrent_requests(cfg.http.max_concurrent_requests)
            .with_token(cfg.http.api_token.as_ref().map(|t| t.expose())),
        });
        let mut stop = stop_rest.clone();
        sup.spawn("http", async move {
            let r = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(error) = r {
                error!(%error, "HTTP server failed");
            }
        })
    };

    {
        let (queue, metrics, readiness) = (queue.clone(), metrics.clone(), readiness.clone());
        tokio::spawn(async move {
            match queue
                .reach(|_, _| {
                    metrics
                        .aws_retries
                        .with_label_values(&["sqs", "get_queue_attributes"])
                        .inc();
                })
                .await
            {
                Ok(backlog) => {
                    readiness.queue_reached.store(true, Ordering::Relaxed);
                    info!(queue = queue.url(), backlog, "queue reached");
                }
                Err(error) => {
                    warn!(queue = queue.url(), %error, "queue not reachable yet; /readyz stays unready until a receive succeeds")
                }
            }
        });
    }

    let depth = src.queue_depth.max(1);
    let (work_tx, work_rx) = mpsc::channel(depth);
    let (fold_tx, fold_rx) = mpsc::channel(depth);
    let (ack_tx, ack_rx) = mpsc::channel(depth);

    let receiving = Arc::new(Receiving {
        queue: queue.clone(),
        buckets: src.buckets.clone(),
        max_messages: src.max_messages_per_receive,
        wait_secs: src.wait_time_secs,
        visibility_secs: src.visibility_timeout_secs,
        max_in_flight: src.max_messages_in_flight,
        last_empty_receive: AtomicI64::new(0),
        policy,
        inflight: inflight.clone(),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
    });
    let mut receivers = Vec::new();
    for _ in 0..src.receivers.max(1) {
        receivers.push(sup.spawn(
            "receiver",
            intake::receive_loop(
                receiving.clone(),
                work_tx.clone(),
                ack_tx.clone(),
                stop_intake.clone(),
            ),
        ));
    }
    drop(work_tx);

    let dispatcher = sup.spawn(
        "dispatcher",
        intake::dispatch(
            Arc::new(Fetching {
                s3,
                limits: cfg.decode,
                policy,
                concurrency: src.fetch_concurrency,
                decoders: Fetching::decode_slots(src.fetch_concurrency),
                metrics: metrics.clone(),
            }),
            work_rx,
            fold_tx.clone(),
            abort.clone(),
        ),
    );

    let ticker = {
        let (fold_tx, mut stop) = (fold_tx.clone(), stop_intake.clone());
        let (receiving, inflight) = (receiving.clone(), inflight.clone());
        let drained_for = i64::from(src.wait_time_secs) * 2 + 5;
        sup.spawn("ticker", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let now = now_ms() / 1000;
                let last_empty = receiving.last_empty_receive.load(Ordering::Relaxed);
                let caught_up = caught_up(now, last_empty, drained_for, inflight.unfolded());
                // Skipped when the fold is busy: it is then taking in objects anyway.
                let _ = fold_tx.try_send(FoldItem::Tick { now, caught_up });
            }
        })
    };

    let reloader = {
        let (fold_tx, mut stop, paths, metrics) = (
            fold_tx.clone(),
            stop_intake.clone(),
            cfg.rules.clone(),
            metrics.clone(),
        );
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                warn!("cannot listen for SIGHUP; rule reload disabled");
                return;
            };
            loop {
                tokio::select! {
                    _ = hup.recv() => {}
                    _ = stop.changed() => return,
                }
                let p = paths.clone();
                match tokio::task::spawn_blocking(move || load_paths(&p)).await {
                    Ok(Ok(set)) => {
                        info!(rules = set.rules.len(), "SIGHUP: rules loaded; swapping");
                        let _ = fold_tx.send(FoldItem::Reload(set)).await;
                    }
                    Ok(Err(e)) => {
                        metrics.rule_reloads.with_label_values(&["error"]).inc();
                        for p in &e.problems {
                            error!(problem = %p, "SIGHUP: rule problem");
                        }
                        error!(error = %e, "SIGHUP: the new rules are invalid; keeping the old ones");
                    }
                    Err(join) => error!(error = %join, "SIGHUP: loading rules panicked"),
                }
            }
        })
    };
    drop(fold_tx);

    let checkpoint = cfg.state.as_ref().map(|s| Checkpointing {
        compact_percent: s.compact_percent,
        max_deltas: s.max_deltas,
        ..Checkpointing::new(s.path.clone(), Duration::from_secs(s.save_interval_secs))
    });
    let fold = Fold {
        engine: Journaled::new(engine, checkpoint, start.position),
        resumed_alerts: start.alerts,
        metrics: metrics.clone(),
        board: board.clone(),
        sinks,
        wall_clock: src.close_windows_on_wall_clock,
        acks: ack_tx.clone(),
        inflight: inflight.clone(),
        restart_hold,
    };
    let folder = sup.watch(
        "fold",
        tokio::task::spawn_blocking(move || fold.run(fold_rx)),
    );

    let acker = sup.spawn(
        "acknowledger",
        ack::acknowledge(
            queue.clone(),
            inflight.clone(),
            metrics.clone(),
            src.failed_message_visibility_secs,
            ack_rx,
        ),
    );
    drop(ack_tx);

    let keeper = sup.spawn(
        "visibility keeper",
        inflight::keep_visible(
            queue.clone(),
            inflight.clone(),
            metrics.clone(),
            src.visibility_timeout_secs,
            src.max_visibility_extension_secs,
            stop_rest.clone(),
        ),
    );

    drop(sup);
    let death = tokio::select! {
        _ = wait_for_termination() => None,
        Some((stage, why)) = died.recv() => {
            error!(stage, why, "a stage of the service stopped; shutting down");
            readiness.fail(format!("the {stage} stage stopped ({why})"));
            Some((stage, why))
        }
    };
    info!("shutting down: no new messages; finishing objects in flight");
    let _ = stop_intake_tx.send(true);
    for r in receivers {
        let _ = r.await;
    }
    let _ = ticker.await;
    let _ = reloader.await;
    let deadline = Duration::from_secs(cfg.shutdown_deadline_secs);
    let mut dispatcher = dispatcher;
    if tokio::time::timeout(deadline, &mut dispatcher)
        .await
        .is_err()
    {
        warn!(
            deadline_secs = cfg.shutdown_deadline_secs,
            "shutdown deadline passed; unfinished objects are dropped and their messages released"
        );
        let _ = abort_tx.send(true);
        let _ = dispatcher.await;
    }
    // The fold ends once every sender is gone: saves state and hands over the deletes. Its end
    // drops the sinks' queues: they deliver what they hold and stop.
    // A dead fold lost the engine (its last save stands); the rest still shuts down in order.
    let engine = match folder.await {
        Ok(Ok(engine)) => Ok(engine),
        Ok(Err(e)) | Err(e) => Err(ServeError::Engine(e.to_string())),
    };
    let _ = acker.await;
    sink_tasks.finish(deadline).await;
    // What is still in flight was not finished: make it visible again for another consumer.
    for m in inflight.all() {
        let _ = queue.set_visibility(&m.receipt, 0, |_, _| {}).await;
        inflight.remove(m.seq);
    }
    let _ = stop_rest_tx.send(true);
    let _ = keeper.await;
    let _ = http.await;
    if let Some((stage, why)) = death {
        return Err(ServeError::StageDied { stage, why });
    }
    let c = engine?.counters();
    info!(
        kms_calls = c.kms_calls,
        duplicates = c.duplicates,
        late = c.late,
        "stopped"
    );
    Ok(())
}

async fn wait_for_termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the service");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT"),
    }
}

#[cfg(test)]
mod tests {
    use super::caught_up;

    #[test]
    fn the_wall_clock_waits_until_the_queue_is_drained_and_everything_folded() {
        let cases = [
            // (now, last empty receive, unfolded messages, caught up)
            (100, 0, 0, false),  // never saw an empty queue: a backlog, maybe
            (100, 95, 0, true),  // drained 5 s ago, nothing left to fold
            (100, 95, 1, false), // drained, but an object is still being read
            (100, 70, 0, false), // the last empty receive is too old: messages kept coming
            (100, 75, 0, true),  // at the edge of `drained_for`
        ];
        for (now, last_empty, unfolded, want) in cases {
            assert_eq!(
                caught_up(now, last_empty, 25, unfolded),
                want,
                "now {now}, last empty {last_empty}, unfolded {unfolded}"
            );
        }
    }
}
