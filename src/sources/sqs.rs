//! The SQS side of the live source: long-poll receives, batch deletes, visibility changes.

use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;

use super::s3::{from_sdk, AwsError};
use crate::retry::{with_retries, RetryPolicy};

/// A received message, as the pipeline needs it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    /// Changes on every receive; deletes and visibility changes need the latest one.
    pub receipt: String,
    pub body: String,
    /// When SQS first got the message (Unix milliseconds), for the oldest-message-age gauge.
    pub sent_at_ms: Option<i64>,
    /// How many times SQS has handed the message out (1 on first delivery).
    pub receive_count: u32,
}

/// The entries of a batch call SQS refused, by position, with its reason.
fn refused(failed: &[BatchResultErrorEntry]) -> Vec<(usize, String)> {
    failed
        .iter()
        .map(|f| {
            (
                f.id().parse().unwrap_or(usize::MAX),
                f.message().unwrap_or(f.code()).to_owned(),
            )
        })
        .collect()
}

/// Most entries one SQS batch call takes.
const SQS_BATCH: usize = 10;

/// One queue and how its calls are retried.
#[derive(Clone)]
pub struct Queue {
    client: Client,
    url: String,
    policy: RetryPolicy,
}

impl Queue {
    pub fn new(client: Client, url: String, policy: RetryPolicy) -> Self {
        Queue {
            client,
            url,
            policy,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks the queue is reachable (readiness); returns its approximate backlog.
    pub async fn reach(&self, on_retry: impl FnMut(u32, &AwsError)) -> Result<u64, AwsError> {
        self.count(QueueAttributeName::ApproximateNumberOfMessages, on_retry)
            .await
    }

    /// Messages received by some consumer and not yet deleted or visible again
    /// (`ApproximateNumberOfMessagesNotVisible`).
    pub async fn in_flight(&self, on_retry: impl FnMut(u32, &AwsError)) -> Result<u64, AwsError> {
        self.count(
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            on_retry,
        )
        .await
    }

    /// One numeric attribute of the queue (0 when absent), retried.
    async fn count(
        &self,
        name: QueueAttributeName,
        on_retry: impl FnMut(u32, &AwsError),
    ) -> Result<u64, AwsError> {
        with_retries(
            &self.policy,
            || async {
                let out = self
                    .client
                    .get_queue_attributes()
                    .queue_url(&self.url)
                    .attribute_names(name.clone())
                    .send()
                    .await
                    .map_err(from_sdk)?;
                Ok(out
                    .attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0))
            },
            on_retry,
        )
        .await
    }

    /// One long-poll receive (not retried here: the receive loop simply polls again after a pause).
    pub async fn receive(
        &self,
        max_messages: i32,
        wait_secs: i32,
        visibility_secs: i32,
    ) -> Result<Vec<Received>, AwsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max_messages)
            .wait_time_seconds(wait_secs)
            .visibility_timeout(visibility_secs)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let attr = |n: MessageSystemAttributeName| {
                    m.attributes().and_then(|a| a.get(&n)).map(String::as_str)
                };
                Some(Received {
                    id: m.message_id()?.to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or("").to_owned(),
                    sent_at_ms: attr(MessageSystemAttributeName::SentTimestamp)
                        .and_then(|v| v.parse().ok()),
                    receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                })
            })
            .collect())
    }

    /// Deletes messages by `(id, receipt)`, ten per call, retrying throttling and server errors.
    /// Returns the ids SQS refused to delete, with its reason.
    pub async fn delete(
        &self,
        items: &[(String, String)],
        on_retry: impl FnMut(u32, &AwsError),
    ) -> Vec<(String, String)> {
        self.in_batches(
            items,
            |i, receipt| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            },
            |entries| async move {
                let out = self
                    .client
                    .delete_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(from_sdk)?;
                Ok(refused(out.failed()))
            },
            on_retry,
        )
        .await
    }

    /// Sets the visibility timeout of messages by `(id, receipt)`, ten per call, retrying
    /// throttling and server errors. Returns the ids SQS refused, with its reason.
    pub async fn set_visibility_batch(
        &self,
        items: &[(String, String)],
        secs: i32,
        on_retry: impl FnMut(u32, &AwsError),
    ) -> Vec<(String, String)> {
        self.in_batches(
            items,
            |i, receipt| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .visibility_timeout(secs)
                    .build()
                    .ok()
            },
            |entries| async move {
                let out = self
                    .client
                    .change_message_visibility_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(from_sdk)?;
                Ok(refused(out.failed()))
            },
            on_retry,
        )
        .await
    }

    /// Runs a batch call over `items` ten at a time (entry ids are positions in the chunk), with
    /// retries; returns `(id, reason)` of every item SQS refused or that could not be sent.
    async fn in_batches<E: Clone, Fut>(
        &self,
        items: &[(String, String)],
        entry: impl Fn(usize, &str) -> Option<E>,
        call: impl Fn(Vec<E>) -> Fut,
        mut on_retry: impl FnMut(u32, &AwsError),
    ) -> Vec<(String, String)>
    where
        Fut: std::future::Future<Output = Result<Vec<(usize, String)>, AwsError>>,
    {
        let mut failed = Vec::new();
        for chunk in items.chunks(SQS_BATCH) {
            let entries: Vec<E> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (_, receipt))| entry(i, receipt))
                .collect();
            match with_retries(&self.policy, || call(entries.clone()), &mut on_retry).await {
                Ok(refused) => {
                    for (i, why) in refused {
                        if let Some((id, _)) = chunk.get(i) {
                            failed.push((id.clone(), why));
                        }
                    }
                }
                Err(e) => failed.extend(chunk.iter().map(|(id, _)| (id.clone(), e.to_string()))),
            }
        }
        failed
    }

    /// Sets a message's visibility timeout (extends an in-flight message, or releases one with 0).
    pub async fn set_visibility(
        &self,
        receipt: &str,
        secs: i32,
        on_retry: impl FnMut(u32, &AwsError),
    ) -> Result<(), AwsError> {
        with_retries(
            &self.policy,
            || async {
                self.client
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(receipt)
                    .visibility_timeout(secs)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(from_sdk)
            },
            on_retry,
        )
        .await
    }
}
