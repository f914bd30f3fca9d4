//! The HTTP(S) client of the delivery sinks: hyper's pooled client over rustls (native roots),
//! one POST with a timeout, and which failures are worth retrying.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::{ClientConfig, RootCertStore};
use tracing::warn;

use crate::retry::Retryable;

/// At most this much of an error response's body is kept for the log.
const MAX_ERROR_BODY_BYTES: usize = 1024;

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("HTTP {status}: {body}")]
    Status { status: StatusCode, body: String },
}

impl Retryable for PostError {
    /// Timeouts, connection errors, 5xx, 429 (too many requests) and 408 (request timeout).
    fn is_retryable(&self) -> bool {
        match self {
            PostError::Timeout(_) | PostError::Transport(_) => true,
            PostError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
        }
    }
}

/// A pooled client with one timeout for every request.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client for http and https URLs (rustls with the platform's root certificates; without
    /// any, as in a minimal container, https URLs fail with a certificate error and http works).
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let provider = rustls::crypto::aws_lc_rs::default_provider;
        let tls = match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider()) {
            Ok(b) => b,
            Err(error) => {
                warn!(%error, "no root certificates found: https deliveries will fail (install ca-certificates)");
                let config = ClientConfig::builder_with_provider(Arc::new(provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(RootCertStore::empty())
                    .with_no_client_auth();
                HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = tls.https_or_http().enable_http1().wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(HttpClient { inner, timeout })
    }

    /// POSTs a JSON `body` with `headers`; `Ok` on a 2xx answer.
    pub async fn post(&self, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Result<(), PostError> {
        let mut req = Request::post(uri.clone())
            .body(Full::new(body))
            .map_err(|e| PostError::Transport(e.to_string()))?;
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("kmswatch/", env!("CARGO_PKG_VERSION"))),
        );
        h.extend(headers.clone());
        let exchange = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| PostError::Transport(cause_chain(&e)))?;
            let status = resp.status();
            // The body is read (and so the connection can be reused) on success too.
            let body = Limited::new(resp.into_body(), MAX_ERROR_BODY_BYTES)
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
                .unwrap_or_else(|_| "(body too long or unreadable)".to_string());
            if status.is_success() {
                Ok(())
            } else {
                Err(PostError::Status { status, body })
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| PostError::Timeout(self.timeout))?
    }
}

/// `error: cause: cause`, as hyper's errors keep the interesting part in their sources.
fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}
