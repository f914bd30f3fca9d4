//! Fetching log objects from S3 (bounded downloads), and the error classification S3 and SQS calls share.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use std::time::Duration;

use crate::retry::{with_retries, RetryPolicy, Retryable};

/// Why an S3 or SQS call failed; the caller adds what it was about (`s3://bucket/key`, message id).
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("object does not exist (deleted, or the notification names a wrong key)")]
    NotFound,
    #[error("access denied: check the IAM policy in the README (s3:GetObject on the trail prefix, kms:Decrypt for SSE-KMS buckets, the sqs: actions on the queue)")]
    AccessDenied,
    #[error("object is {size} bytes, over the cap of {max} (decode.max_object_bytes)")]
    TooLarge { size: u64, max: u64 },
    #[error("throttled ({code})")]
    Throttled { code: String },
    #[error("server error (HTTP {status})")]
    Server { status: u16 },
    #[error("could not reach the endpoint: {message}")]
    Network { message: String },
    #[error("request refused ({code}): {message}")]
    Other { code: String, message: String },
}

impl AwsError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AwsError::NotFound => "not_found",
            AwsError::AccessDenied => "access_denied",
            AwsError::TooLarge { .. } => "too_large",
            AwsError::Throttled { .. } => "throttled",
            AwsError::Server { .. } => "server_error",
            AwsError::Network { .. } => "network",
            AwsError::Other { .. } => "aws_error",
        }
    }
}

impl Retryable for AwsError {
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            AwsError::Throttled { .. } | AwsError::Server { .. } | AwsError::Network { .. }
        )
    }
}

/// Error codes S3 (and SDK-compatible stores) use for throttling.
const THROTTLING_CODES: [&str; 4] = [
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// Classifies any SDK error by HTTP status and error code (shared by S3 and SQS calls).
fn classify_sdk<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
    status: Option<u16>,
) -> AwsError {
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsError::Network {
            message: aws_error_chain(e),
        },
        _ => {
            let code = e.code().unwrap_or("").to_owned();
            let message = e.message().unwrap_or("").to_owned();
            match status {
                _ if THROTTLING_CODES.contains(&code.as_str()) => AwsError::Throttled { code },
                Some(429) => AwsError::Throttled {
                    code: "HTTP 429".into(),
                },
                Some(404) => AwsError::NotFound,
                Some(403) => AwsError::AccessDenied,
                Some(s) if s >= 500 => AwsError::Server { status: s },
                None => AwsError::Network {
                    message: aws_error_chain(e),
                },
                Some(s) => AwsError::Other {
                    code: if code.is_empty() {
                        format!("HTTP {s}")
                    } else {
                        code
                    },
                    message,
                },
            }
        }
    }
}

/// Classifies a failed S3 or SQS call by its HTTP status and error code.
pub(crate) fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E, HttpResponse>,
) -> AwsError {
    let status = e.raw_response().map(|r| r.status().as_u16());
    classify_sdk(&e, status)
}

/// The error and its sources on one line (the SDK's top-level text alone is often just
/// "dispatch failure").
pub(crate) fn aws_error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The AWS SDK configuration from the standard chain (environment, profile, instance or task
/// role; `AWS_ENDPOINT_URL`), with `region` and `endpoint_url` overriding it. Retries are ours
/// (counted, with jitter), so the SDK tries each call once.
pub async fn sdk_config(
    region: Option<&str>,
    endpoint_url: Option<&str>,
    attempt_timeout: Duration,
) -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        );
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_owned()));
    }
    if let Some(e) = endpoint_url {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// The S3 client of `sdk`. A custom endpoint (moto, LocalStack, MinIO), given or from
/// `AWS_ENDPOINT_URL`, needs path-style bucket addressing.
pub fn client(sdk: &aws_config::SdkConfig, endpoint_url: Option<&str>) -> Client {
    let custom = endpoint_url.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(custom)
        .build();
    Client::from_conf(conf)
}

/// Downloads one object whole, refusing objects over `max_bytes` (checked against the announced
/// length before reading and against the bytes as they arrive).
pub async fn fetch_object(
    client: &Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
    policy: &RetryPolicy,
    on_retry: impl FnMut(u32, &AwsError),
) -> Result<Vec<u8>, AwsError> {
    with_retries(
        policy,
        || fetch_once(client, bucket, key, max_bytes),
        on_retry,
    )
    .await
}

async fn fetch_once(
    client: &Client,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, AwsError> {
    let resp = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(from_sdk)?;
    let announced = resp.content_length().unwrap_or(0).max(0) as u64;
    if announced > max_bytes {
        return Err(AwsError::TooLarge {
            size: announced,
            max: max_bytes,
        });
    }
    let mut body = resp.body;
    let mut buf = Vec::with_capacity(announced as usize);
    while let Some(chunk) = body.try_next().await.map_err(|e| AwsError::Network {
        message: aws_error_chain(&e),
    })? {
        if (buf.len() + chunk.len()) as u64 > max_bytes {
            return Err(AwsError::TooLarge {
                size: (buf.len() + chunk.len()) as u64,
                max: max_bytes,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}
