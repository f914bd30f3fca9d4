//! A local HTTP receiver for the sinks' tests (127.0.0.1, an ephemeral port): records every
//! request and answers with scripted statuses, or not at all.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Router;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// The answers to the next requests; then 200.
    script: Mutex<VecDeque<Answer>>,
}

#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Never answers (the client's timeout ends the request).
    Hang,
}

pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    shared: Arc<Shared>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(record).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestServer { url, shared }
    }

    /// The next requests get these answers, in order; later ones 200.
    pub fn answer(&self, answers: &[Answer]) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

async fn record(State(s): State<Arc<Shared>>, req: Request) -> StatusCode {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let answer = s.script.lock().unwrap().pop_front();
    s.received.lock().unwrap().push(Received {
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
    });
    match answer {
        None => StatusCode::OK,
        Some(Answer::Status(code)) => StatusCode::from_u16(code).unwrap(),
        Some(Answer::Hang) => std::future::pending().await,
    }
}
