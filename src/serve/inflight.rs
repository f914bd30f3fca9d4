//! Messages in flight: received from SQS and not yet deleted or released, with what each still
//! waits for. Keeps their visibility extended while they are worked on.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::warn;

use crate::metrics::Metrics;
use crate::sources::sqs::{Queue, Received};
use crate::Map;

/// One received SQS message being worked on.
#[derive(Debug)]
pub struct Msg {
    /// Unique per receive (a message received twice is two `Msg`s with their own receipts).
    pub seq: u64,
    pub id: String,
    pub receipt: String,
    pub sent_at_ms: Option<i64>,
    /// Objects of the message not yet folded into state (or failed).
    pub remaining: AtomicUsize,
    /// The first permanent failure of one of its objects, as a metric reason; the message is then
    /// left for the redrive policy instead of deleted.
    pub failed: Mutex<Option<&'static str>>,
    /// Unix seconds of the last visibility change (or the receive).
    pub extended_at: AtomicI64,
    /// Unix seconds of the receive: extensions stop `max_visibility_extension_secs` after it.
    pub received_at: i64,
    /// The delivery times (from the CloudTrail file names) of its objects not yet folded, where
    /// the name has one: their events are at most the usual delivery delay older.
    pub unfolded_deliveries: Mutex<Vec<i64>>,
}

impl Msg {
    pub fn fail(&self, reason: &'static str) {
        let mut f = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        f.get_or_insert(reason);
    }

    pub fn failure(&self) -> Option<&'static str> {
        *self.failed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One of its objects, delivered at `delivered`, is folded (or failed).
    pub fn object_done(&self, delivered: Option<i64>) {
        let Some(d) = delivered else { return };
        let mut v = self
            .unfolded_deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(i) = v.iter().position(|&x| x == d) {
            v.swap_remove(i);
        }
    }

    fn earliest_unfolded(&self) -> Option<i64> {
        let v = self
            .unfolded_deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        v.iter().copied().min()
    }
}

/// Every message in flight, for visibility extension, gauges and shutdown.
#[derive(Default)]
pub struct Inflight {
    next_seq: AtomicU64,
    msgs: Mutex<Map<u64, Arc<Msg>>>,
}

impl Inflight {
    pub fn register(
        &self,
        m: &Received,
        objects: usize,
        deliveries: Vec<i64>,
        now: i64,
    ) -> Arc<Msg> {
        let msg = Arc::new(Msg {
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            id: m.id.clone(),
            receipt: m.receipt.clone(),
            sent_at_ms: m.sent_at_ms,
            remaining: AtomicUsize::new(objects),
            failed: Mutex::new(None),
            extended_at: AtomicI64::new(now),
            received_at: now,
            unfolded_deliveries: Mutex::new(deliveries),
        });
        self.lock().insert(msg.seq, msg.clone());
        msg
    }

    pub fn remove(&self, seq: u64) {
        self.lock().remove(&seq);
    }

    pub fn all(&self) -> Vec<Arc<Msg>> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by_key(|m| m.seq);
        v
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Messages with objects not yet folded (those waiting only for deletion are not counted).
    pub fn unfolded(&self) -> usize {
        self.lock()
            .values()
            .filter(|m| m.remaining.load(Ordering::Acquire) > 0)
            .count()
    }

    /// The earliest delivery time of the objects received and not yet folded (those of messages
    /// let go after `max_visibility_extension_secs` excepted): the watermark should not pass
    /// their events.
    pub fn unfolded_floor(&self) -> Option<i64> {
        self.lock()
            .values()
            .filter(|m| {
                m.remaining.load(Ordering::Acquire) > 0
                    && m.extended_at.load(Ordering::Relaxed) != i64::MAX
            })
            .filter_map(|m| m.earliest_unfolded())
            .min()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map<u64, Arc<Msg>>> {
        self.msgs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Messages whose visibility was last set at or before `before` (Unix seconds), split into
    /// those to extend and those received before `received_by` (held too long: let go). A
    /// message let go is not offered again.
    pub fn due_for_extension(
        &self,
        before: i64,
        received_by: i64,
    ) -> (Vec<Arc<Msg>>, Vec<Arc<Msg>>) {
        let (mut extend, mut abandon) = (Vec::new(), Vec::new());
        for m in self.all() {
            let at = m.extended_at.load(Ordering::Relaxed);
            if at > before {
                continue;
            }
            if m.received_at < received_by {
                // Never due again: it is visible once its current timeout lapses.
                m.extended_at.store(i64::MAX, Ordering::Relaxed);
                abandon.push(m);
            } else {
                extend.push(m);
            }
        }
        (extend, abandon)
    }

    /// Age in seconds of the oldest message in flight, from when SQS first got it.
    pub fn oldest_age_secs(&self, now_ms: i64) -> i64 {
        self.lock()
            .values()
            .filter_map(|m| m.sent_at_ms)
            .min()
            .map_or(0, |t| ((now_ms - t) / 1000).max(0))
    }
}

/// Extends the visibility of messages still worked on, a third of the timeout before it lapses,
/// for at most `max_extension_secs` from their receive, and keeps the in-flight gauges; runs until
/// `stop` turns true.
pub async fn keep_visible(
    queue: Queue,
    inflight: Arc<Inflight>,
    metrics: Arc<Metrics>,
    visibility_secs: i32,
    max_extension_secs: i64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = Duration::from_secs((visibility_secs as u64 / 3).max(1));
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(every));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        let now_ms = crate::serve::now_ms();
        metrics.messages_in_flight.set(inflight.len() as i64);
        metrics
            .oldest_message_age
            .set(inflight.oldest_age_secs(now_ms));
        let now = now_ms / 1000;
        let (due, abandoned) =
            inflight.due_for_extension(now - every.as_secs() as i64, now - max_extension_secs);
        for m in &abandoned {
            metrics.visibility_abandoned.inc();
            warn!(message_id = %m.id, held_secs = now - m.received_at, "message held past max_visibility_extension_secs (a stage may be stuck); no longer extending its visibility, so it is redelivered");
        }
        if due.is_empty() {
            continue;
        }
        let items: Vec<(String, String)> = due
            .iter()
            .map(|m| (m.seq.to_string(), m.receipt.clone()))
            .collect();
        let failed = queue
            .set_visibility_batch(&items, visibility_secs, |_, _| {
                metrics
                    .aws_retries
                    .with_label_values(&["sqs", "change_message_visibility_batch"])
                    .inc();
            })
            .await;
        for m in &due {
            // A failure is tried again next round rather than at once.
            m.extended_at.store(now, Ordering::Relaxed);
            if let Some((_, error)) = failed.iter().find(|(seq, _)| *seq == m.seq.to_string()) {
                warn!(message_id = %m.id, %error, "could not extend the message's visibility; another consumer may receive it (its events are deduplicated)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(id: &str, sent: Option<i64>) -> Received {
        Received {
            id: id.into(),
            receipt: format!("r-{id}"),
            body: String::new(),
            sent_at_ms: sent,
            receive_count: 1,
        }
    }

    #[test]
    fn oldest_age_and_extension_due() {
        let f = Inflight::default();
        let a = f.register(&received("a", Some(10_000)), 1, Vec::new(), 100);
        f.register(&received("b", Some(40_000)), 1, Vec::new(), 130);
        assert_eq!(f.oldest_age_secs(70_000), 60);
        let ids = |v: &[Arc<Msg>]| v.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        let (due, abandoned) = f.due_for_extension(110, 0);
        assert_eq!((ids(&due), ids(&abandoned)), (vec!["a".to_owned()], vec![]));
        f.remove(a.seq);
        assert_eq!(f.oldest_age_secs(70_000), 30);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn a_message_held_too_long_is_let_go_once() {
        let f = Inflight::default();
        f.register(&received("old", None), 1, Vec::new(), 100);
        f.register(&received("new", None), 1, Vec::new(), 200);
        let ids = |v: &[Arc<Msg>]| v.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        // Both due; "old" was received before 150: let go.
        let (due, abandoned) = f.due_for_extension(300, 150);
        assert_eq!(ids(&due), ["new"]);
        assert_eq!(ids(&abandoned), ["old"]);
        let (due, abandoned) = f.due_for_extension(i64::MAX - 1, 150);
        assert_eq!(ids(&due), ["new"]);
        assert!(abandoned.is_empty(), "let go only once");
    }

    #[test]
    fn the_first_failure_is_kept() {
        let f = Inflight::default();
        let m = f.register(&received("a", None), 2, Vec::new(), 0);
        m.fail("not_found");
        m.fail("too_large");
        assert_eq!(m.failure(), Some("not_found"));
    }
}
