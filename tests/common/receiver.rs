//! An HTTP receiver for tests on 127.0.0.1: records every request (path, headers, body) and
//! answers 200. Runs on its own runtime thread; stops on drop.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::Router;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

pub struct Receiver {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: Log,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// A receiver on `port` of 127.0.0.1 (0: any free port).
    pub fn start_on(port: u16) -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Log::default();
        let app = Router::new().fallback(record).with_state(log.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        Receiver { url, log, _rt: rt }
    }

    /// The requests to `path` so far, in arrival order.
    pub fn requests(&self, path: &str) -> Vec<Received> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|r| r.path == path).cloned().collect()
    }
}

async fn record(State(log): State<Log>, req: Request) -> &'static str {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    log.lock().unwrap().push(Received {
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
    });
    "ok"
}

/// A target that accepts connections and never answers (a hung Alertmanager): every connection
/// is held open, unread, until the test process ends.
pub struct Silent {
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                held.extend(conn.ok());
            }
        });
        Silent { url }
    }
}
