//! The fold: one thread owns the engine, folds decoded objects into it, advances the watermark on
//! the wall clock, publishes alerts (metrics, the firing board, the sinks' queues, never waiting
//! on a sink), checkpoints state, and only then lets messages be deleted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::alerts::Alert;
use crate::engine::{Engine, Folded};
use crate::metrics::Metrics;
use crate::server::AlertBoard;
use crate::sinks::Sinks;
use crate::sources::ObjectRef;

use super::inflight::{Inflight, Msg};
use super::journal::{Journaled, Saved};
use super::{Ack, FoldItem, ObjectOutcome};

pub struct Fold {
    /// The engine, with where and how often its state is saved.
    pub engine: Journaled,
    /// Alerts raised while restoring (new or changed rules on the journal's calls): published
    /// first.
    pub resumed_alerts: Vec<Alert>,
    pub metrics: Arc<Metrics>,
    pub board: Arc<AlertBoard>,
    /// Alert delivery; dropped (so the sinks flush and end) when the fold ends.
    pub sinks: Sinks,
    /// Close windows on the wall clock (`now - allowed lateness`), not only on event time.
    pub wall_clock: bool,
    pub acks: mpsc::Sender<Ack>,
    /// Messages in flight: the watermark does not pass the objects of those not yet folded.
    pub inflight: Arc<Inflight>,
    /// After a restart with messages in flight from before it: the watermark stays at the
    /// restored one until this Unix second (those messages come back within their visibility
    /// timeout, and their calls must not be judged late).
    pub restart_hold: Option<RestartHold>,
}

/// The delivery time in an object's CloudTrail file name.
fn delivery_time(object: &ObjectRef) -> Option<i64> {
    crate::sources::parse_log_name(&object.to_string()).and_then(|n| n.delivered)
}

/// Holds the watermark after a restart ([`Fold::restart_hold`]).
#[derive(Debug, Clone, Copy)]
pub struct RestartHold {
    pub watermark: i64,
    pub until: i64,
}

impl Fold {
    /// Runs until the fold channel closes; saves state a last time and hands the messages it
    /// covers to the acknowledger. Returns the engine.
    pub fn run(mut self, mut rx: mpsc::Receiver<FoldItem>) -> Engine {
        let mut alerts = std::mem::take(&mut self.resumed_alerts);
        let mut pending: Vec<Arc<Msg>> = Vec::new();
        let mut last_save = Instant::now();
        self.metrics
            .rules_loaded
            .set(self.engine.rules().len() as i64);
        self.sync_board();
        self.publish(&mut alerts);
        while let Some(item) = rx.blocking_recv() {
            match item {
                FoldItem::Object {
                    msg,
                    object,
                    outcome,
                    permit,
                } => {
                    static OBJECTS: AtomicU64 = AtomicU64::new(0);
                    super::supervise::fault_point("fold", &OBJECTS);
                    let delivered = delivery_time(&object);
                    self.object(&msg, &object, delivered, outcome, &mut alerts);
                    drop(permit);
                    msg.object_done(delivered);
                    if msg.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                        match msg.failure() {
                            Some(reason) => self.ack(Ack::Release(msg, reason)),
                            None => pending.push(msg),
                        }
                    }
                }
                FoldItem::Tick { now, caught_up } => {
                    // A hold lifted since the last object lets the watermark catch up now.
                    self.hold_watermark(now);
                    self.engine.advance_on_event_time(&mut alerts);
                    if self.wall_clock && caught_up {
                        let w = now - self.engine.config().allowed_lateness_secs;
                        self.engine.advance_to(w, &mut alerts);
                    }
                }
                FoldItem::Reload(rules) => {
                    let n = rules.rules.len();
                    let snapshot = self.engine.snapshot();
                    match Engine::restore(self.engine.config().clone(), rules, snapshot) {
                        Ok((engine, notes)) => {
                            for note in notes {
                                info!(%note, "rule reload");
                            }
                            self.engine.replace(engine);
                            self.sync_board();
                            self.metrics.rules_loaded.set(n as i64);
                            self.metrics.rule_reloads.with_label_values(&["ok"]).inc();
                            info!(rules = n, "rules reloaded");
                        }
                        Err(error) => {
                            self.metrics
                                .rule_reloads
                                .with_label_values(&["error"])
                                .inc();
                            error!(%error, "reloaded rules could not take over the state; keeping the old rules");
                        }
                    }
                }
            }
            self.publish(&mut alerts);
            self.metrics.over_limits(&self.engine.over_limits());
            if let Some(w) = self.engine.watermark() {
                self.metrics.watermark.set(w);
            }
            match self.engine.every() {
                None => {
                    if !pending.is_empty() {
                        self.ack(Ack::Delete(std::mem::take(&mut pending), "processed"));
                    }
                }
                Some(every) if last_save.elapsed() >= every && !pending.is_empty() => {
                    if self.save(false) {
                        self.ack(Ack::Delete(std::mem::take(&mut pending), "processed"));
                    }
                    last_save = Instant::now();
                }
                Some(_) => {}
            }
        }
        // The last save happens even with nothing to delete (the watermark and windows moved),
        // and is whole: a stopped service leaves one complete state file.
        let saved = self.save(true);
        if saved && !pending.is_empty() {
            self.ack(Ack::Delete(pending, "processed"));
        }
        self.engine.into_engine()
    }

    /// Caps the watermark at the oldest outstanding work: the objects of messages received but
    /// not yet folded (by their delivery time, less the allowed lateness) and, for a while after a
    /// restart, the restored watermark.
    fn hold_watermark(&mut self, now: i64) {
        let lateness = self.engine.config().allowed_lateness_secs;
        let pending = self
            .inflight
            .unfolded_floor()
            .map(|d| d.saturating_sub(lateness));
        let restart = match self.restart_hold {
            Some(h) if now < h.until => Some(h.watermark),
            Some(_) => {
                info!("restart hold over: the watermark follows event time again");
                self.restart_hold = None;
                None
            }
            None => None,
        };
        self.engine
            .cap_watermark(pending.into_iter().chain(restart).min());
    }

    /// Folds one object; `delivered` is the delivery time in its name.
    fn object(
        &mut self,
        msg: &Msg,
        object: &ObjectRef,
        delivered: Option<i64>,
        outcome: ObjectOutcome,
        alerts: &mut Vec<Alert>,
    ) {
        let d = match outcome {
            ObjectOutcome::Failed(reason) => {
                self.metrics
                    .objects_failed
                    .with_label_values(&[reason])
                    .inc();
                msg.fail(reason);
                return;
            }
            ObjectOutcome::Decoded(d) => d,
        };
        self.metrics.decoded(&d.stats);
        for e in d.record_errors.iter() {
            warn!(message_id = %msg.id, object = %object, error = %e, "{object}: malformed record skipped");
        }
        let now = super::now_ms() / 1000;
        // No event can be later than the object's delivery (its name) or than now.
        let latest = delivered.map_or(now, |d| d.min(now));
        // An object folded before (a message delivered again, the file announced twice) is
        // skipped whole; its message is deleted like any folded one.
        let identity = object.identity(d.stats.compressed_bytes);
        let fresh = self.engine.begin_object(Some(latest), Some(identity));
        if !fresh {
            self.metrics.duplicate_objects.inc();
            debug!(message_id = %msg.id, object = %object, "object folded before: skipped");
        }
        let mut future = 0u64;
        for call in d.calls.iter().filter(|_| fresh) {
            match self.engine.fold(call, alerts) {
                Folded::Duplicate => self.metrics.duplicates.inc(),
                Folded::Future => {
                    self.metrics.future_events.inc();
                    future += 1;
                }
                Folded::New { late } => {
                    if late {
                        self.metrics.late_events.inc();
                    }
                    let key = self.engine.catalog().resolve(call.key.as_ref());
                    self.metrics.kms_call(call, key.as_deref(), now);
                    self.metrics
                        .event_lag
                        .observe((now - call.time).max(0) as f64);
                }
            }
        }
        self.hold_watermark(now);
        self.engine.end_object(alerts);
        if future > 0 {
            warn!(message_id = %msg.id, object = %object, events = future,
                "{object}: {future} event(s) later than the object's delivery time or the clock (+ future_skew_secs): counted as future events, not folded");
        }
    }

    /// Shows what the engine says is firing (at start, after a restore or a reload), to HTTP
    /// and to the sinks that re-send it.
    fn sync_board(&mut self) {
        self.board.publish(self.engine.firing_shared());
        self.metrics.set_firing(&self.board.counts());
    }

    /// Hands the alerts over; never waits on a sink.
    fn publish(&mut self, alerts: &mut Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        for a in alerts.drain(..) {
            self.metrics.alert(&a);
            self.sinks.publish(&a);
        }
        self.board.publish(self.engine.firing_shared());
    }

    /// Saves state (a delta or, when `whole` or the journal says so, the whole file); true when
    /// it is on disk.
    fn save(&mut self, whole: bool) -> bool {
        let started = Instant::now();
        match self.engine.save(self.sinks.undelivered(), whole) {
            Ok(Saved::Nothing) => true,
            Ok(saved) => {
                self.metrics.state_saves.with_label_values(&["ok"]).inc();
                self.metrics.state_last_save.set(super::now_ms() / 1000);
                let millis = started.elapsed().as_millis() as u64;
                match saved {
                    Saved::Delta {
                        ops,
                        bytes,
                        journal_bytes,
                    } => {
                        self.metrics.state_journal_bytes.set(journal_bytes as i64);
                        debug!(ops, bytes, journal_bytes, millis, "state delta saved");
                    }
                    _ => {
                        self.metrics.state_journal_bytes.set(0);
                        debug!(?saved, millis, "state file saved");
                    }
                }
                true
            }
            Err(error) => {
                self.metrics.state_saves.with_label_values(&["error"]).inc();
                error!(%error, "saving state failed; messages stay undeleted until a save succeeds");
                false
            }
        }
    }

    fn ack(&self, a: Ack) {
        if self.acks.blocking_send(a).is_err() {
            error!("the acknowledger stopped; messages will be redelivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodedObject;
    use crate::engine::EngineConfig;
    use crate::metrics::LabelLimits;
    use crate::rules::test_support::{decrypt, rule};
    use crate::rules::{RuleKind, RuleSet};
    use crate::serve::inflight::Inflight;
    use crate::serve::journal::Checkpointing;
    use crate::sources::sqs::Received;
    use crate::state;
    use std::time::Duration;

    const T0: i64 = 1_772_409_600; // 2026-03-02T00:00:00Z, a window boundary

    fn fold(checkpoint: Option<Checkpointing>, wall_clock: bool) -> (Fold, mpsc::Receiver<Ack>) {
        let rules = RuleSet {
            rules: vec![rule("t", RuleKind::Threshold { min_count: 2 }, &["key"])],
        };
        let (acks, rx) = mpsc::channel(16);
        let metrics = Arc::new(Metrics::new(LabelLimits::default()));
        let f = Fold {
            engine: Journaled::new(
                Engine::new(EngineConfig::default(), rules),
                checkpoint,
                None,
            ),
            resumed_alerts: Vec::new(),
            metrics: metrics.clone(),
            board: Arc::new(AlertBoard::default()),
            sinks: Sinks::none(metrics),
            wall_clock,
            acks,
            inflight: Arc::new(Inflight::default()),
            restart_hold: None,
        };
        (f, rx)
    }

    fn object(inflight: &Inflight, id: &str, first_event: u64, time: i64) -> FoldItem {
        let msg = inflight.register(
            &Received {
                id: id.into(),
                receipt: format!("r-{id}"),
                body: String::new(),
                sent_at_ms: None,
                receive_count: 1,
            },
            1,
            Vec::new(),
            0,
        );
        let calls = (0..2)
            .map(|i| {
                let mut c = decrypt("arn:aws:kms:us-east-1:111111111111:key/k", "p");
                c.time = time;
                c.dedupe_id = first_event + i;
                c.event_id = format!("e{}", first_event + i).into();
                c
            })
            .collect();
        FoldItem::Object {
            msg,
            object: ObjectRef::S3 {
                bucket: "b".into(),
                key: id.into(),
            },
            outcome: ObjectOutcome::Decoded(Box::new(DecodedObject {
                calls,
                ..DecodedObject::default()
            })),
            permit: None,
        }
    }

    fn deleted(rx: &mut mpsc::Receiver<Ack>) -> Vec<String> {
        let mut ids = Vec::new();
        while let Ok(a) = rx.try_recv() {
            if let Ack::Delete(msgs, _) = a {
                ids.extend(msgs.iter().map(|m| m.id.clone()));
            }
        }
        ids
    }

    #[test]
    fn the_wall_clock_closes_windows_without_new_events_once_caught_up() {
        for (wall_clock, caught_up) in [(false, true), (true, false), (true, true)] {
            let closes = wall_clock && caught_up;
            let (f, mut acks) = fold(None, wall_clock);
            let (board, metrics) = (f.board.clone(), f.metrics.clone());
            let inflight = Inflight::default();
            let (tx, rx) = mpsc::channel(16);
            tx.try_send(object(&inflight, "m1", 1, T0 + 10)).unwrap();
            // Long after the window: now - lateness is past its end.
            tx.try_send(FoldItem::Tick {
                now: T0 + 300 + 900 + 1,
                caught_up,
            })
            .unwrap();
            drop(tx);
            f.run(rx);
            assert_eq!(deleted(&mut acks), ["m1"]);
            let fired = metrics
                .alerts
                .with_label_values(&["t", "high", "firing"])
                .get();
            // The threshold fires when its window closes; only the wall clock closes it here.
            let case = format!("wall_clock = {wall_clock}, caught_up = {caught_up}");
            assert_eq!(fired, u64::from(closes), "{case}");
            assert_eq!(board.firing().len(), usize::from(closes), "{case}");
        }
    }

    #[test]
    fn an_object_sent_again_and_calls_past_a_limit_show_in_the_metrics() {
        let (mut f, mut acks) = fold(None, false);
        let rules = RuleSet {
            rules: vec![rule("t", RuleKind::Threshold { min_count: 2 }, &["key"])],
        };
        let config = EngineConfig {
            limits: crate::rules::EvalLimits {
                max_groups_per_rule: 1,
                ..Default::default()
            },
            ..EngineConfig::default()
        };
        f.engine = Journaled::new(Engine::new(config, rules), None, None);
        let metrics = f.metrics.clone();
        let inflight = Inflight::default();
        // m2 announces m1's object again; m3's calls are on a second key, past the rule's one group.
        let again = |msg_id: &str, object_key: &str, first_event, call_key: &str| {
            let FoldItem::Object {
                msg, mut outcome, ..
            } = object(&inflight, msg_id, first_event, T0 + 10)
            else {
                unreachable!("object() makes objects")
            };
            if let ObjectOutcome::Decoded(d) = &mut outcome {
                for c in &mut d.calls {
                    c.key = Some(crate::decode::KeyRef::Key(call_key.into()));
                }
            }
            FoldItem::Object {
                msg,
                object: ObjectRef::S3 {
                    bucket: "b".into(),
                    key: object_key.into(),
                },
                outcome,
                permit: None,
            }
        };
        let (tx, rx) = mpsc::channel(16);
        tx.try_send(again("m1", "m1", 1, "k")).unwrap();
        tx.try_send(again("m2", "m1", 1, "k")).unwrap();
        tx.try_send(again("m3", "m3", 10, "k2")).unwrap();
        drop(tx);
        let engine = f.run(rx);
        assert_eq!(deleted(&mut acks), ["m1", "m2", "m3"]);
        assert_eq!(metrics.duplicate_objects.get(), 1);
        assert_eq!(
            metrics.duplicates.get(),
            0,
            "skipped whole, not call by call"
        );
        assert_eq!(engine.counters().kms_calls, 4);
        let over = |limit| metrics.limit_overflow.with_label_values(&[limit]).get();
        assert_eq!((over("max_groups_per_rule"), over("max_keys")), (2, 0));
    }

    #[test]
    fn the_watermark_waits_for_older_messages_received_but_not_folded() {
        let (mut f, _acks) = fold(None, false);
        let inflight = Arc::new(Inflight::default());
        f.inflight = inflight.clone();
        // An older message (delivered at T0 + 600) is received and still being fetched.
        let older = Received {
            id: "older".into(),
            receipt: "r-older".into(),
            body: String::new(),
            sent_at_ms: None,
            receive_count: 1,
        };
        inflight.register(&older, 1, vec![T0 + 600], 0);
        let (tx, rx) = mpsc::channel(16);
        // A newer object an hour later would move the watermark to T0 + 3600 - 900.
        tx.try_send(object(&inflight, "newer", 1, T0 + 3600))
            .unwrap();
        drop(tx);
        let engine = f.run(rx);
        assert_eq!(
            engine.watermark(),
            Some(T0 + 600 - 900),
            "held for the older message"
        );
        assert_eq!(engine.max_event_time(), Some(T0 + 3600));
    }

    #[test]
    fn a_restart_hold_keeps_the_restored_watermark_until_it_ends() {
        for (until, want) in [(i64::MAX, T0 - 5_000), (0, T0 + 3600 - 900)] {
            let (mut f, _acks) = fold(None, false);
            f.engine.cap_watermark(None);
            f.restart_hold = Some(RestartHold {
                watermark: T0 - 5_000,
                until,
            });
            let inflight = Inflight::default();
            let (tx, rx) = mpsc::channel(16);
            tx.try_send(object(&inflight, "m", 1, T0 + 3600)).unwrap();
            tx.try_send(FoldItem::Tick {
                now: T0 + 3600,
                caught_up: true,
            })
            .unwrap();
            drop(tx);
            let engine = f.run(rx);
            assert_eq!(engine.watermark(), Some(want), "hold until {until}");
        }
    }

    #[test]
    fn the_fold_hands_alerts_to_the_sinks_without_waiting() {
        let (mut f, _acks) = fold(None, true);
        // Room for one alert; nobody reads it.
        let (sinks, mut queue, outbox) = Sinks::with_queue(f.metrics.clone(), 1);
        f.sinks = sinks;
        let metrics = f.metrics.clone();
        let inflight = Inflight::default();
        let (tx, rx) = mpsc::channel(16);
        tx.try_send(object(&inflight, "m1", 1, T0 + 10)).unwrap();
        // Long after: the window fires, and the quiet ones after it resolve the alert.
        tx.try_send(FoldItem::Tick {
            now: T0 + 3600 + 900,
            caught_up: true,
        })
        .unwrap();
        drop(tx);
        f.run(rx);
        let raised = metrics
            .alerts
            .with_label_values(&["t", "high", "firing"])
            .get()
            + metrics
                .alerts
                .with_label_values(&["t", "high", "resolved"])
                .get();
        assert_eq!(raised, 2);
        // The first is queued and in the outbox; the second found the outbox full and was
        // dropped, and the fold went on.
        let fired = queue.try_recv().unwrap();
        let v: serde_json::Value = serde_json::from_str(&fired.json).unwrap();
        assert_eq!((&v["rule"], &v["state"]), (&"t".into(), &"firing".into()));
        assert!(queue.try_recv().is_err());
        assert_eq!(outbox.undelivered(), [fired.json]);
        let dropped = metrics
            .alert_deliveries
            .with_label_values(&["test", "dropped"])
            .get();
        assert_eq!(dropped, 1);
    }

    #[test]
    fn with_a_state_file_messages_are_deleted_only_after_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir/state.json");
        let (f, mut acks) = fold(
            Some(Checkpointing::new(path.clone(), Duration::ZERO)),
            false,
        );
        let metrics = f.metrics.clone();
        let inflight = Inflight::default();
        let (tx, rx) = mpsc::channel(16);
        tx.try_send(object(&inflight, "m1", 1, T0)).unwrap();
        drop(tx);
        // The state directory does not exist: every save fails, nothing is deleted.
        f.run(rx);
        assert!(deleted(&mut acks).is_empty());
        assert!(metrics.state_saves.with_label_values(&["error"]).get() >= 1);

        let path = dir.path().join("state.json");
        let (f, mut acks) = fold(
            Some(Checkpointing::new(path.clone(), Duration::ZERO)),
            false,
        );
        let (tx, rx) = mpsc::channel(16);
        tx.try_send(object(&inflight, "m2", 1, T0)).unwrap();
        drop(tx);
        f.run(rx);
        assert_eq!(deleted(&mut acks), ["m2"]);
        let saved = state::load(&path).unwrap();
        let (engine, _) =
            Engine::restore(EngineConfig::default(), RuleSet { rules: vec![] }, saved).unwrap();
        assert_eq!(engine.counters().kms_calls, 2);
    }

    #[test]
    fn a_save_keeps_what_the_sinks_have_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (mut f, _acks) = fold(Some(Checkpointing::new(path.clone(), Duration::ZERO)), true);
        // Nobody delivers: the alerts stay in the sink's outbox.
        let (sinks, _queue, _outbox) = Sinks::with_queue(f.metrics.clone(), 8);
        f.sinks = sinks;
        let inflight = Inflight::default();
        let (tx, rx) = mpsc::channel(16);
        tx.try_send(object(&inflight, "m1", 1, T0 + 10)).unwrap();
        tx.try_send(FoldItem::Tick {
            now: T0 + 3600 + 900,
            caught_up: true,
        })
        .unwrap();
        drop(tx);
        f.run(rx);
        let saved = state::load(&path).unwrap();
        assert_eq!(saved.outbox.len(), 1);
        assert_eq!(saved.outbox[0].sink, "test");
        let states: Vec<String> = saved.outbox[0]
            .alerts
            .iter()
            .map(|a| {
                let v: serde_json::Value = serde_json::from_str(a.get()).unwrap();
                format!(
                    "{} {}",
                    v["rule"].as_str().unwrap(),
                    v["state"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(states, ["t firing", "t resolved"]);
    }
}
