//! Reading replay's objects: files from disk, objects from S3 (the service's bounded, retried
//! fetch, several at once), then decoding a chunk of them on the rayon pool.

use aws_sdk_s3::Client;
use rayon::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use std::sync::Arc;

use crate::decode::{decode_object_reusing, DecodeLimits, DecodedObject, ObjectError};
use crate::retry::RetryPolicy;
use crate::sources::s3::{fetch_object, AwsError};
use crate::sources::ObjectRef;

/// One object, read and decoded, or why not.
pub(super) enum Read {
    Decoded(DecodedObject),
    Failed { kind: &'static str, error: String },
}

/// S3 access for a replay with `s3://` inputs.
pub(super) struct S3Reader {
    pub runtime: Runtime,
    pub client: Client,
    pub policy: RetryPolicy,
    /// Objects fetched at once.
    pub concurrency: usize,
}

/// Reads objects from disk, and from S3 when the replay has S3 inputs.
pub(super) struct Reader<'a> {
    pub s3: Option<&'a S3Reader>,
    pub limits: DecodeLimits,
}

impl Reader<'_> {
    /// Reads and decodes a chunk of objects, in order: S3 objects are fetched concurrently first
    /// (at most `concurrency` at once), then everything is decoded in parallel.
    pub fn read_chunk(&self, chunk: &[(ObjectRef, u64)]) -> Vec<Read> {
        let fetched = self.fetch_s3(chunk);
        let limits = self.limits;
        chunk
            .par_iter()
            .zip(fetched)
            .map(|((obj, _), bytes)| {
                let bytes = match (obj, bytes) {
                    (_, Some(Ok(b))) => b,
                    (_, Some(Err(e))) => {
                        return Read::Failed {
                            kind: e.kind(),
                            error: e.to_string(),
                        }
                    }
                    (ObjectRef::File(p), None) => match std::fs::read(p) {
                        Ok(b) => b,
                        Err(e) => {
                            return Read::Failed {
                                kind: "read_error",
                                error: e.to_string(),
                            }
                        }
                    },
                    (ObjectRef::S3 { .. }, None) => {
                        return Read::Failed {
                            kind: "unsupported",
                            error: "no S3 client (objects from S3 are read by `replay s3://...`)"
                                .into(),
                        }
                    }
                };
                decode(&bytes, &limits)
            })
            .collect()
    }

    /// The bytes of every S3 object in `chunk` (`None` for files, or with no S3 client).
    fn fetch_s3(&self, chunk: &[(ObjectRef, u64)]) -> Vec<Option<Result<Vec<u8>, AwsError>>> {
        let Some(s3) = self.s3 else {
            return chunk.iter().map(|_| None).collect();
        };
        if !chunk.iter().any(|(o, _)| matches!(o, ObjectRef::S3 { .. })) {
            return chunk.iter().map(|_| None).collect();
        }
        let max = self.limits.max_object_bytes as u64;
        s3.runtime.block_on(async {
            let slots = Arc::new(Semaphore::new(s3.concurrency.max(1)));
            let handles: Vec<_> = chunk
                .iter()
                .map(|(obj, _)| {
                    let ObjectRef::S3 { bucket, key } = obj.clone() else {
                        return None;
                    };
                    let (client, policy, slots) = (s3.client.clone(), s3.policy, slots.clone());
                    Some(tokio::spawn(async move {
                        let _slot = slots.acquire_owned().await.expect("never closed");
                        fetch_object(&client, &bucket, &key, max, &policy, |attempt, error| {
                            tracing::warn!(bucket, key, attempt, %error, "fetching failed; retrying")
                        })
                        .await
                    }))
                })
                .collect();
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                out.push(match h {
                    None => None,
                    Some(h) => Some(h.await.unwrap_or_else(|e| {
                        Err(AwsError::Network {
                            message: format!("fetch task failed: {e}"),
                        })
                    })),
                });
            }
            out
        })
    }
}

fn decode(bytes: &[u8], limits: &DecodeLimits) -> Read {
    // On replay's own decode threads (one per core): each keeps its buffer between objects.
    match decode_object_reusing(bytes, limits) {
        Ok(d) => Read::Decoded(d),
        Err(e) => Read::Failed {
            kind: ObjectError::kind(&e),
            error: e.to_string(),
        },
    }
}
