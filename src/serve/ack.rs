//! The acknowledger: deletes messages whose objects are in state and releases failed ones for the
//! queue's redrive policy, batching deletes across messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::warn;

use crate::metrics::Metrics;
use crate::sources::sqs::Queue;

use super::inflight::{Inflight, Msg};
use super::Ack;

/// Most acknowledgements taken in one round of the acknowledger.
const MAX_ACKS_PER_ROUND: usize = 100;

/// Deletes finished messages and releases failed ones, until the ack channel closes.
pub(super) async fn acknowledge(
    queue: Queue,
    inflight: Arc<Inflight>,
    metrics: Arc<Metrics>,
    failed_visibility_secs: i32,
    mut rx: mpsc::Receiver<Ack>,
) {
    let retried = |op: &'static str| {
        let m = metrics.clone();
        move |_: u32, _: &crate::sources::s3::AwsError| {
            m.aws_retries.with_label_values(&["sqs", op]).inc();
        }
    };
    while let Some(first) = rx.recv().await {
        // Take what else is waiting too, so deletes go out ten per call, not one.
        let mut batch = vec![first];
        while batch.len() < MAX_ACKS_PER_ROUND {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let mut deletes: BTreeMap<&'static str, Vec<Arc<Msg>>> = BTreeMap::new();
        let mut releases = Vec::new();
        for a in batch {
            match a {
                Ack::Delete(msgs, reason) => deletes.entry(reason).or_default().extend(msgs),
                Ack::Release(m, reason) => releases.push((m, reason)),
            }
        }
        for (reason, msgs) in deletes {
            let items: Vec<(String, String)> = msgs
                .iter()
                .map(|m| (m.seq.to_string(), m.receipt.clone()))
                .collect();
            let failed = queue.delete(&items, retried("delete_message_batch")).await;
            for m in &msgs {
                inflight.remove(m.seq);
                match failed.iter().find(|(seq, _)| *seq == m.seq.to_string()) {
                    Some((_, why)) => {
                        metrics
                            .messages_failed
                            .with_label_values(&["delete_failed"])
                            .inc();
                        warn!(message_id = %m.id, error = %why, "deleting the message failed; it will be redelivered and its events deduplicated");
                    }
                    None => metrics.messages_deleted.with_label_values(&[reason]).inc(),
                }
            }
        }
        for (m, reason) in releases {
            metrics.messages_failed.with_label_values(&[reason]).inc();
            if let Err(error) = queue
                .set_visibility(
                    &m.receipt,
                    failed_visibility_secs,
                    retried("change_message_visibility"),
                )
                .await
            {
                warn!(message_id = %m.id, %error, "releasing a failed message failed; it returns when its visibility lapses");
            }
            inflight.remove(m.seq);
        }
    }
}
