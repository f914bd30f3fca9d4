//! Real S3 and SQS for tests: moto's server on 127.0.0.1, driven through the real SDK clients, and
//! a `kmswatch serve` process pointed at it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;

pub const REGION: &str = "us-east-1";

/// Where `scripts/test-deps` installs moto's server (override with `KMSWATCH_MOTO_SERVER`).
fn moto_server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KMSWATCH_MOTO_SERVER") {
        return p.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/kmswatch-tools/venv/bin/moto_server")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `cond` holds, checking every 100 ms; panics with `what` after `secs` seconds.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A moto server of our own, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(Stdio::null())
    }

    /// A moto server whose request log (one line per HTTP request) goes to `log`.
    pub fn start_logged(log: &Path) -> Moto {
        Moto::start_with(std::fs::File::create(log).unwrap().into())
    }

    fn start_with(stderr: Stdio) -> Moto {
        let path = moto_server_path();
        assert!(
            path.exists(),
            "moto_server not found at {}: run scripts/test-deps (the README's test command does)",
            path.display()
        );
        let port = free_port();
        let child = Command::new(&path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
        let m = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_until(30, "moto_server to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        m
    }

    /// The server's process id (for its CPU time in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await
    }

    pub async fn clients(&self) -> Clients {
        let sdk = self.sdk().await;
        let s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(&sdk),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

/// A queue with a dead-letter queue that takes messages after `max_receives` receives.
pub struct Queues {
    pub url: String,
    pub dlq_url: String,
}

impl Clients {
    pub async fn bucket(&self, name: &str) {
        self.s3.create_bucket().bucket(name).send().await.unwrap();
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }

    pub async fn queues(&self, name: &str, max_receives: u32) -> Queues {
        let dlq_url = self
            .sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::RedrivePolicy,
                format!(
                    r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#
                ),
            )
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        Queues { url, dlq_url }
    }

    pub async fn send(&self, queue_url: &str, body: &str) {
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Messages visible plus in flight (SQS' approximate counts; exact on moto).
    pub async fn depth(&self, queue_url: &str) -> u64 {
        let a = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let n = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }

    /// Receives (and so hides for `visibility` seconds) up to 10 message bodies.
    pub async fn receive_bodies(&self, queue_url: &str, visibility: i32) -> Vec<String> {
        self.sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.body)
            .collect()
    }
}

/// CloudTrail's own notification of `keys`, optionally in an SNS envelope.
pub fn cloudtrail_notification(bucket: &str, keys: &[&str], sns: bool) -> String {
    let inner = serde_json::json!({ "s3Bucket": bucket, "s3ObjectKey": keys }).to_string();
    if sns {
        sns_envelope(&inner)
    } else {
        inner
    }
}

pub fn sns_envelope(message: &str) -> String {
    serde_json::json!({
        "Type": "Notification",
        "MessageId": "5b1e3d9a-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:cloudtrail",
        "Message": message,
        "Timestamp": "2026-03-02T00:20:00.000Z",
    })
    .to_string()
}

/// An S3 event notification for `key` (form-URL-encoded as S3 does: space as `+`).
pub fn s3_event(bucket: &str, key: &str, size: u64) -> String {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    serde_json::json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventName": "ObjectCreated:Put",
        "s3": { "bucket": { "name": bucket }, "object": { "key": encoded, "size": size } }
    }]})
    .to_string()
}

pub fn eventbridge(bucket: &str, key: &str, size: u64) -> String {
    serde_json::json!({
        "version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "region": REGION,
        "detail": { "bucket": { "name": bucket }, "object": { "key": key, "size": size } }
    })
    .to_string()
}

pub const S3_TEST_EVENT: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-03-02T00:00:00.000Z","Bucket":"trail","RequestId":"X","HostId":"Y"}"#;

/// A running `kmswatch serve`, killed on drop.
pub struct Service {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

/// The config file of a test service.
pub fn service_config(
    dir: &Path,
    moto: &Moto,
    queue_url: &str,
    buckets: &[&str],
    port: u16,
    extra: &str,
) -> PathBuf {
    let buckets: Vec<String> = buckets.iter().map(|b| format!("{b:?}")).collect();
    let text = format!(
        r#"
[source]
queue_url = "{queue_url}"
buckets = [{buckets}]
region = "{REGION}"
endpoint_url = "{endpoint}"
wait_time_secs = 1
# One receive loop: moto may hand one message to two concurrent receives, which SQS allows
# (at-least-once) but would make exact message counts flaky. The stream tests use two.
receivers = 1
max_attempts = 3
retry_base_ms = 10
retry_max_ms = 100
failed_message_visibility_secs = 0
close_windows_on_wall_clock = false

[rules]
paths = ["{rules}"]

[http]
listen = "127.0.0.1:{port}"

[alerts]
jsonl = "{alerts}"

{extra}
"#,
        buckets = buckets.join(", "),
        endpoint = moto.endpoint,
        rules = super::repo().join("rules").display(),
        alerts = dir.join("alerts.jsonl").display(),
    );
    let path = dir.join("kmswatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

impl Service {
    pub fn start(config: &Path, port: u16, log: &Path) -> Service {
        Service::start_with_env(config, port, log, &[])
    }

    /// [`Service::start`] with extra environment variables (secrets the config names).
    pub fn start_with_env(config: &Path, port: u16, log: &Path, env: &[(&str, &str)]) -> Service {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kmswatch"))
            .args(["serve", "--config"])
            .arg(config)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("starting kmswatch serve");
        let s = Service {
            child,
            port,
            log: log.to_owned(),
        };
        wait_until(60, "kmswatch /healthz", || s.get("/healthz").is_some());
        s
    }

    /// The service's process id (for its memory and CPU time in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` over plain HTTP/1.0; the body on 200, else `None`.
    pub fn get(&self, path: &str) -> Option<String> {
        http_get(self.port, path)
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").expect("GET /metrics")
    }

    /// Sends `signal` (`TERM`, `KILL`, `HUP`) and, but for `HUP`, waits for the exit status.
    pub fn signal(&mut self, signal: &str) -> Option<std::process::ExitStatus> {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
        (signal != "HUP").then(|| self.child.wait().unwrap())
    }

    /// Waits up to `secs` seconds for the process to exit by itself.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < end,
                "kmswatch serve still running after {secs}s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` from 127.0.0.1:`port` over plain HTTP/1.0; the body on 200, else `None`.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200")).then(|| body.to_owned())
}

/// The sum of every sample of metric `name` whose labels contain each of `labels`
/// (`key="value"` pairs as they appear in the exposition).
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            (n == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
