//! The intake stages: receive loops turn SQS messages into work, and the dispatcher fetches and
//! decodes the objects of that work with bounded concurrency.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::decode::{decode_object, DecodeLimits};
use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::server::Readiness;
use crate::sources::notify::{parse_notification, Notification};
use crate::sources::s3::fetch_object;
use crate::sources::sqs::{Queue, Received};
use crate::sources::{classify, parse_log_name, ObjectRef};

use super::inflight::{Inflight, Msg};
use super::{Ack, FoldItem, ObjectOutcome, Slots};

/// A message whose objects are to be read.
pub struct Work {
    pub msg: Arc<Msg>,
    /// `(bucket, key)` of each log object to read.
    pub objects: Vec<(String, String)>,
}

/// What the receive loops need.
pub struct Receiving {
    pub queue: Queue,
    pub buckets: Vec<String>,
    pub max_messages: i32,
    pub wait_secs: i32,
    pub visibility_secs: i32,
    /// Receiving pauses while this many messages are in flight.
    pub max_in_flight: usize,
    /// Unix seconds of the latest receive that returned no message (0: none yet): the queue was
    /// drained then, so the wall clock may close windows.
    pub last_empty_receive: AtomicI64,
    pub policy: RetryPolicy,
    pub inflight: Arc<Inflight>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
}

/// Receives until `stop` turns true; each message becomes work, an acknowledgement (nothing to
/// read), or a failure left for the redrive policy.
pub async fn receive_loop(
    r: Arc<Receiving>,
    work: mpsc::Sender<Work>,
    acks: mpsc::Sender<Ack>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    let mut paused = false;
    while !*stop.borrow() {
        if r.inflight.len() >= r.max_in_flight {
            if !paused {
                warn!(
                    in_flight = r.inflight.len(),
                    "source.max_messages_in_flight reached; receiving pauses"
                );
                paused = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        paused = false;
        let got = tokio::select! {
            got = r.queue.receive(r.max_messages, r.wait_secs, r.visibility_secs) => got,
            _ = stop.changed() => break,
        };
        let msgs = match got {
            Ok(m) => {
                failures = 0;
                r.readiness.queue_reached.store(true, Ordering::Relaxed);
                if m.is_empty() {
                    r.last_empty_receive
                        .store(super::now_ms() / 1000, Ordering::Relaxed);
                }
                m
            }
            Err(error) => {
                failures += 1;
                r.metrics
                    .aws_retries
                    .with_label_values(&["sqs", "receive_message"])
                    .inc();
                warn!(queue = r.queue.url(), %error, "receiving from the queue failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(r.policy.delay(failures)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        for m in msgs {
            r.metrics.messages_received.inc();
            let item = triage(&r, &m);
            let sent = match item {
                Triage::Work(w) => work.send(w).await.is_ok(),
                Triage::Ack(a) => acks.send(a).await.is_ok(),
            };
            if !sent {
                return;
            }
        }
    }
}

enum Triage {
    Work(Work),
    Ack(Ack),
}

/// Decides what to do with one message, counting and logging what is skipped or refused.
fn triage(r: &Receiving, m: &Received) -> Triage {
    let now = super::now_ms() / 1000;
    let (objects, shape) = match parse_notification(&m.body) {
        Ok(Notification::Test) => {
            info!(message_id = %m.id, "s3:TestEvent; deleting it");
            let msg = r.inflight.register(m, 0, Vec::new(), now);
            return Triage::Ack(Ack::Delete(vec![msg], "test_event"));
        }
        Ok(Notification::Objects { objects, shape, .. }) => (objects, shape),
        Err(error) => {
            warn!(message_id = %m.id, receive_count = m.receive_count, %error,
                "message is not a CloudTrail log notification; left for the dead-letter queue");
            let msg = r.inflight.register(m, 0, Vec::new(), now);
            return Triage::Ack(Ack::Release(msg, error.kind()));
        }
    };
    if let Some(bad) = objects.iter().find(|o| !r.buckets.contains(&o.bucket)) {
        warn!(message_id = %m.id, bucket = %bad.bucket, key = %bad.key,
            "message names a bucket outside source.buckets; nothing of it is fetched, left for the dead-letter queue");
        let msg = r.inflight.register(m, 0, Vec::new(), now);
        return Triage::Ack(Ack::Release(msg, "bucket_not_allowed"));
    }
    let mut read = Vec::new();
    for o in objects {
        match classify(&o.key, o.size) {
            Ok(()) => read.push((o.bucket, o.key)),
            Err(reason) => {
                debug!(message_id = %m.id, bucket = %o.bucket, key = %o.key, reason = reason.as_str(), "object skipped");
                r.metrics
                    .objects_skipped
                    .with_label_values(&[reason.as_str()])
                    .inc();
            }
        }
    }
    debug!(message_id = %m.id, shape = shape.as_str(), objects = read.len(), "notification");
    let deliveries = read
        .iter()
        .filter_map(|(_, key)| parse_log_name(key).and_then(|n| n.delivered))
        .collect();
    let msg = r.inflight.register(m, read.len(), deliveries, now);
    if read.is_empty() {
        Triage::Ack(Ack::Delete(vec![msg], "nothing_to_read"))
    } else {
        Triage::Work(Work { msg, objects: read })
    }
}

/// What fetching needs.
pub struct Fetching {
    pub s3: aws_sdk_s3::Client,
    pub limits: DecodeLimits,
    pub policy: RetryPolicy,
    pub concurrency: usize,
    /// Objects decoded at once ([`Fetching::decode_slots`]).
    pub decoders: Arc<Semaphore>,
    pub metrics: Arc<Metrics>,
}

impl Fetching {
    /// Decoding is CPU work: more objects decoded at once than there are cores gains nothing
    /// and holds more decompressed JSON (an object's JSON, about 15 times its stored size, lives
    /// until its calls are decoded). A slot is held from the decode until the object is folded,
    /// so at most this many objects' decoded calls exist at once (one folding, the others
    /// decoding or ready next), whatever `fetch_concurrency` is; two at least, so that one
    /// object decodes while another folds. The fetches still run `concurrency` at once and hold
    /// only stored bytes while they wait.
    pub fn decode_slots(concurrency: usize) -> Arc<Semaphore> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(Semaphore::new(cores.max(2).min(concurrency).max(1)))
    }
}

/// Fetches and decodes the objects of incoming work, at most `concurrency` at once, handing each
/// result to the fold. Returns when the work channel closes and every started object is done, or
/// when `abort` turns true (unfinished objects are then dropped: their messages are not deleted).
pub async fn dispatch(
    f: Arc<Fetching>,
    mut work: mpsc::Receiver<Work>,
    fold: mpsc::Sender<FoldItem>,
    mut abort: watch::Receiver<bool>,
) {
    let sem = Arc::new(Semaphore::new(f.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    loop {
        let w = tokio::select! {
            w = work.recv() => w,
            _ = abort.changed() => None,
        };
        let Some(w) = w else { break };
        for (bucket, key) in w.objects {
            let permit = tokio::select! {
                p = sem.clone().acquire_owned() => p.expect("semaphore never closed"),
                _ = abort.changed() => break,
            };
            let (f, fold, msg) = (f.clone(), fold.clone(), w.msg.clone());
            tasks.spawn(async move {
                let (outcome, decode) = fetch_and_decode(&f, &msg, &bucket, &key).await;
                // The slots go with the object and are released once it is folded: decoded
                // objects waiting for a slowed fold count against them, so memory stays bounded
                // whatever `queue_depth` is.
                let _ = fold
                    .send(FoldItem::Object {
                        msg,
                        object: ObjectRef::S3 { bucket, key },
                        outcome,
                        permit: Some(Slots {
                            fetch: permit,
                            decode,
                        }),
                    })
                    .await;
            });
        }
        while tasks.try_join_next().is_some() {}
        if *abort.borrow() {
            break;
        }
    }
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = abort.changed() => {}
        }
        if *abort.borrow() {
            tasks.abort_all();
            break;
        }
    }
}

/// The object's outcome and, when it was decoded, the decode slot it holds until it is folded.
async fn fetch_and_decode(
    f: &Fetching,
    msg: &Msg,
    bucket: &str,
    key: &str,
) -> (ObjectOutcome, Option<OwnedSemaphorePermit>) {
    let started = Instant::now();
    let bytes = fetch_object(
        &f.s3,
        bucket,
        key,
        f.limits.max_object_bytes as u64,
        &f.policy,
        |attempt, error| {
            f.metrics
                .aws_retries
                .with_label_values(&["s3", "get_object"])
                .inc();
            warn!(message_id = %msg.id, bucket, key, attempt, %error, "fetching the object failed; retrying");
        },
    )
    .await;
    let bytes = match bytes {
        Ok(b) => b,
        Err(error) => {
            error!(message_id = %msg.id, bucket, key, %error, "s3://{bucket}/{key}: object could not be fetched; its message is left for the dead-letter queue");
            return (ObjectOutcome::Failed(error.kind()), None);
        }
    };
    f.metrics.objects_fetched.inc();
    f.metrics.bytes_fetched.inc_by(bytes.len() as u64);
    let limits = f.limits;
    let slot = f
        .decoders
        .clone()
        .acquire_owned()
        .await
        .expect("the decode semaphore is never closed");
    let decoded = tokio::task::spawn_blocking(move || decode_object(&bytes, &limits)).await;
    f.metrics
        .object_processing
        .observe(started.elapsed().as_secs_f64());
    match decoded {
        Ok(Ok(d)) => (ObjectOutcome::Decoded(Box::new(d)), Some(slot)),
        Ok(Err(error)) => {
            error!(message_id = %msg.id, bucket, key, %error, "s3://{bucket}/{key}: object could not be decoded; its message is left for the dead-letter queue");
            f.metrics
                .decode_errors
                .with_label_values(&[error.kind()])
                .inc();
            (ObjectOutcome::Failed(error.kind()), None)
        }
        Err(join) => {
            error!(message_id = %msg.id, bucket, key, error = %join, "decoding panicked");
            (ObjectOutcome::Failed("decode_panic"), None)
        }
    }
}
