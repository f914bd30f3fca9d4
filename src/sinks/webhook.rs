//! The webhook sink: one JSON POST per alert, the body exactly the alert in the documented schema
//! (`kmswatch.alert/v1`), in the order the engine emitted them; optionally signed
//! (HMAC-SHA256 of the body, [`SIGNATURE_HEADER`]) and with a bearer token.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use http::Uri;
use tokio::sync::mpsc;
use tracing::{error, warn};

use super::http::HttpClient;
use super::{count, Delivery, Outbox, Outcome, SinkError};
use crate::config::{Secret, WebhookConfig};
use crate::metrics::Metrics;
use crate::retry::{with_retries, RetryPolicy};

/// The header carrying `sha256=` and the lowercase hex HMAC-SHA256 of the body, keyed with the
/// secret.
pub const SIGNATURE_HEADER: &str = "x-kmswatch-signature";

/// The value of [`SIGNATURE_HEADER`] for `body` under `key`: `sha256=<64 hex digits>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * tag.len());
    out.push_str("sha256=");
    for b in tag.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

pub(super) struct Webhook {
    /// The `sink` label: `webhook[i]`.
    name: String,
    uri: Uri,
    client: HttpClient,
    secret: Option<Secret>,
    /// The headers every POST carries (the bearer token).
    headers: HeaderMap,
    policy: RetryPolicy,
    /// Holds each alert until it is delivered or given up.
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
}

impl Webhook {
    pub(super) fn new(
        name: String,
        cfg: &WebhookConfig,
        policy: RetryPolicy,
        outbox: Arc<Outbox>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SinkError> {
        let fail = |message: String| SinkError::Http {
            sink: name.clone(),
            message,
        };
        let uri: Uri = cfg
            .url
            .parse()
            .map_err(|e| fail(format!("{}: {e}", cfg.url)))?;
        let client = HttpClient::new(Duration::from_secs(cfg.timeout_secs)).map_err(fail)?;
        let mut headers = HeaderMap::new();
        if let Some(t) = &cfg.token {
            let mut v = HeaderValue::try_from(format!("Bearer {}", t.expose()))
                .map_err(|_| fail("the bearer token is not a valid header value".into()))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        Ok(Webhook {
            name,
            uri,
            client,
            secret: cfg.secret.clone(),
            headers,
            policy,
            outbox,
            metrics,
        })
    }

    /// Delivers alerts one at a time, in order, until the queue closes and is empty; each is
    /// settled in the outbox once delivered or given up.
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Delivery>) {
        while let Some(d) = rx.recv().await {
            self.deliver(&d.json).await;
            self.outbox.settle(d.seq);
        }
    }

    /// POSTs one alert (alert-schema JSON) with retries; whether it was delivered.
    pub(super) async fn deliver(&self, json: &str) -> bool {
        let body = Bytes::copy_from_slice(json.as_bytes());
        let mut headers = self.headers.clone();
        if let Some(s) = &self.secret {
            if let Ok(v) = HeaderValue::try_from(signature(s.expose().as_bytes(), &body)) {
                headers.insert(HeaderName::from_static(SIGNATURE_HEADER), v);
            }
        }
        let r = with_retries(
            &self.policy,
            || self.client.post(&self.uri, &headers, body.clone()),
            |attempt, error| {
                count(&self.metrics, &self.name, Outcome::Retried, 1);
                warn!(sink = %self.name, url = %self.uri, attempt, %error, "webhook delivery failed; retrying");
            },
        )
        .await;
        match r {
            Ok(()) => {
                count(&self.metrics, &self.name, Outcome::Ok, 1);
                true
            }
            Err(error) => {
                count(&self.metrics, &self.name, Outcome::Failed, 1);
                error!(sink = %self.name, url = %self.uri, alert = %json, %error, "webhook did not take the alert; it is lost for this webhook");
                false
            }
        }
    }
}
