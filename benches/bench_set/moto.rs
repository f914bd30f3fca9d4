//! What the benchmarks that drive moto share (`#[path]`-included beside `tests/common` as `mod
//! common`, which it uses): a set's objects read in delivery order, uploaded to a bucket, and one
//! CloudTrail notification per object on a queue.
#![allow(dead_code)] // each bench uses a part

use std::path::Path;
use std::sync::Arc;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::common::aws::{cloudtrail_notification, Clients};
use kmswatch::sources::{walk, ObjectRef};

/// Every log file under `dir` in delivery order (replay's order), with its key (the path below
/// `dir`) and its bytes.
pub fn objects(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let found = walk(&[dir.to_owned()], &kmswatch::sources::Selection::default());
    found
        .objects
        .iter()
        .map(|(o, _)| match o {
            ObjectRef::File(p) => {
                let key = p
                    .strip_prefix(dir)
                    .expect("walk stays under its input")
                    .to_string_lossy()
                    .replace('\\', "/");
                (key, std::fs::read(p).expect("reading a bench file"))
            }
            ObjectRef::S3 { .. } => unreachable!("walk yields files"),
        })
        .collect()
}

/// Creates `bucket` and puts every object in it, `concurrency` at once.
pub async fn upload(
    c: &Arc<Clients>,
    bucket: &str,
    objects: &[(String, Vec<u8>)],
    concurrency: usize,
) {
    c.bucket(bucket).await;
    let sem = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for (key, body) in objects {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        let (c, bucket, key, body) = (c.clone(), bucket.to_owned(), key.clone(), body.clone());
        tasks.spawn(async move {
            c.put(&bucket, &key, body).await;
            drop(permit);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("an upload task");
    }
}

/// Sends one CloudTrail notification per object of `bucket`, in the objects' order, ten per
/// batch.
pub async fn notify(c: &Clients, queue_url: &str, bucket: &str, objects: &[(String, Vec<u8>)]) {
    for (b, chunk) in objects.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, (key, _))| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{b}-{i}"))
                    .message_body(cloudtrail_notification(bucket, &[key], false))
                    .build()
                    .expect("a batch entry")
            })
            .collect();
        let out = c
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("SendMessageBatch");
        assert!(out.failed.is_empty(), "SendMessageBatch: {:?}", out.failed);
    }
}
