//! The Grafana dashboards and Prometheus rules in `grafana/`: their structure, the metrics they
//! name, and every panel query run through the real Prometheus scraping a `kmswatch serve` that
//! ingests the sample logs from moto's S3 and SQS.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::aws::*;
use common::{decrypt_record, gzip, log_file, repo};
use kmswatch::metrics::{LabelLimits, Metrics};
use serde_json::Value;

/// The uid of the provisioned datasource, the dashboards' default.
const DATASOURCE_UID: &str = "kmswatch-prometheus";
/// Grafana's built-in variables the dashboards may use in queries.
const BUILTINS: [&str; 5] = [
    "__rate_interval",
    "__range",
    "__interval",
    "__range_s",
    "__interval_ms",
];

fn grafana() -> PathBuf {
    repo().join("grafana")
}

/// Every dashboard, by file name.
fn dashboards() -> Vec<(String, Value)> {
    let dir = grafana().join("dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 2, "no dashboards in {}", dir.display());
    out
}

/// Panels, with those inside rows (collapsed rows keep theirs in `panels`).
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels is an array") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// One query of one panel.
struct Target {
    dashboard: String,
    panel: String,
    ref_id: String,
    expr: String,
    instant: bool,
}

impl Target {
    fn name(&self) -> String {
        format!("{} / {} / {}", self.dashboard, self.panel, self.ref_id)
    }
}

fn targets(d: &Value) -> Vec<Target> {
    let uid = d["uid"].as_str().unwrap_or_default();
    panels(d)
        .into_iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| Target {
                    dashboard: uid.to_string(),
                    panel: p["title"].as_str().unwrap_or_default().to_string(),
                    ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                    expr: t["expr"].as_str().unwrap_or_default().to_string(),
                    instant: t["instant"] == true,
                })
        })
        .collect()
}

/// The identifiers of a PromQL expression outside string literals (metric, function, label names).
fn identifiers(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    let mut cur = String::new();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            // Skip the string literal.
            while let Some(d) = chars.next() {
                if d == '\\' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' || (c == '$' && cur.is_empty()) {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The kmswatch metric families an expression reads (histogram series names reduced to theirs).
fn metric_families(expr: &str) -> BTreeSet<String> {
    identifiers(expr)
        .into_iter()
        .filter(|i| i.starts_with("kmswatch_"))
        .map(|i| {
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = i.strip_suffix(suffix) {
                    return base.to_string();
                }
            }
            i
        })
        .collect()
}

/// The `$variables` an expression uses.
fn variables(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let name: String = rest
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

/// The range selectors (`[...]`) of an expression.
fn ranges(expr: &str) -> Vec<&str> {
    expr.split('[')
        .skip(1)
        .map(|s| s.split(']').next().unwrap_or(""))
        .collect()
}

/// `key: value` of the first line whose key is `key` (the provisioning files are flat enough).
fn yaml_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches("- ");
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        Some(v.trim().trim_matches('"').to_string())
    })
}

/// The `expr:` values of a rules file.
fn rule_exprs(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| e.trim().to_string())
        .collect()
}

#[test]
fn dashboards_have_the_structure_grafana_provisioning_expects() {
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && uid.len() <= 40,
            "{file}: uid must be 1 to 40 characters"
        );
        assert!(
            uids.insert(uid.to_string()),
            "{file}: uid {uid} is not unique"
        );
        let title = d["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "{file}: no title");
        assert!(titles.insert(title.to_string()), "{file}: title repeated");
        assert!(
            d["schemaVersion"].as_u64().is_some(),
            "{file}: schemaVersion"
        );
        assert!(
            d.get("id").is_none_or(Value::is_null),
            "{file}: provisioned dashboards carry no id"
        );

        // Variables: the datasource, defaulting to the provisioned one, and label_values queries.
        let vars = d["templating"]["list"].as_array().expect("templating.list");
        let ds = vars
            .iter()
            .find(|v| v["type"] == "datasource")
            .unwrap_or_else(|| panic!("{file}: no datasource variable"));
        assert_eq!(ds["name"], "datasource", "{file}");
        assert_eq!(ds["query"], "prometheus", "{file}");
        assert_eq!(ds["current"]["value"], DATASOURCE_UID, "{file}");
        let mut names: BTreeSet<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
        for v in vars {
            names.insert(v["name"].as_str().unwrap().to_string());
            if v["type"] == "query" {
                assert_eq!(
                    v["datasource"]["uid"], "${datasource}",
                    "{file}: {}",
                    v["name"]
                );
                let q = v["definition"].as_str().unwrap();
                assert_eq!(v["query"]["query"], q, "{file}");
                assert!(
                    q.starts_with("label_values(kmswatch_")
                        && q.ends_with(&format!(", {})", v["name"].as_str().unwrap())),
                    "{file}: variable {} is not label_values(kmswatch_..., {})",
                    v["name"],
                    v["name"]
                );
                assert_eq!(v["allValue"], ".*", "{file}: {}", v["name"]);
            }
        }

        let mut ids = BTreeSet::new();
        let mut n_targets = 0;
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default();
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{file}: {title}: no id"));
            assert!(ids.insert(id), "{file}: panel id {id} repeated");
            assert!(!title.is_empty(), "{file}: panel {id} has no title");
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
            assert!(
                x + w <= 24 && g["h"].as_u64().unwrap() > 0,
                "{file}: {title}: gridPos"
            );
            if p["type"] == "row" {
                continue;
            }
            assert!(p["type"].is_string(), "{file}: {title}: type");
            assert_eq!(p["datasource"]["type"], "prometheus", "{file}: {title}");
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{file}: {title}");
            let ts = p["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: {title}: no targets"));
            assert!(!ts.is_empty(), "{file}: {title}: no targets");
            let mut refs = BTreeSet::new();
            for t in ts {
                n_targets += 1;
                assert!(
                    refs.insert(t["refId"].as_str().unwrap()),
                    "{file}: {title}: refId repeated"
                );
                assert_eq!(t["datasource"], p["datasource"], "{file}: {title}");
                let expr = t["expr"].as_str().unwrap_or_default();
                assert!(!expr.is_empty(), "{file}: {title}: empty expr");
                for v in variables(expr) {
                    assert!(
                        names.contains(&v),
                        "{file}: {title}: unknown variable ${v} in {expr}"
                    );
                }
                for r in ranges(expr) {
                    assert!(
                        r == "$__rate_interval" || r == "$__range",
                        "{file}: {title}: range [{r}] in {expr}: use $__rate_interval or $__range"
                    );
                }
                let panel_instant =
                    matches!(p["type"].as_str(), Some("stat" | "table" | "bargauge"));
                assert_eq!(
                    t["instant"] == true,
                    panel_instant,
                    "{file}: {title}: instant"
                );
                assert_eq!(t["range"] == true, !panel_instant, "{file}: {title}: range");
            }
        }
        assert!(n_targets > 10, "{file}: only {n_targets} queries");
    }
    assert_eq!(
        uids,
        BTreeSet::from(["kmswatch-kms-usage".into(), "kmswatch-pipeline".into()])
    );
}

#[test]
fn dashboard_queries_filter_by_their_variables() {
    for (file, d) in dashboards() {
        for t in targets(&d) {
            let calls = t.expr.matches("kmswatch_kms_calls_total").count();
            match t.dashboard.as_str() {
                // Every usage query honours the key selector.
                "kmswatch-kms-usage" => assert_eq!(
                    t.expr
                        .matches("kmswatch_kms_calls_total{key=~\"$key\"")
                        .count(),
                    calls,
                    "{file}: {}: {}",
                    t.panel,
                    t.expr
                ),
                // Every pipeline query honours the instance selector.
                _ => assert_eq!(
                    t.expr.matches("{instance=~\"$instance\"").count(),
                    metric_occurrences(&t.expr),
                    "{file}: {}: {}",
                    t.panel,
                    t.expr
                ),
            }
        }
    }
}

fn metric_occurrences(expr: &str) -> usize {
    identifiers(expr)
        .iter()
        .filter(|i| i.starts_with("kmswatch_"))
        .count()
}

#[test]
fn dashboards_and_rules_use_only_metrics_the_service_exports() {
    let metrics = Metrics::new(LabelLimits::default());
    let exported: BTreeSet<&str> = metrics.family_names().into_iter().collect();
    let mut used = BTreeSet::new();
    for (file, d) in dashboards() {
        for t in targets(&d) {
            let families = metric_families(&t.expr);
            assert!(
                !families.is_empty(),
                "{file}: {}: no kmswatch metric in {}",
                t.panel,
                t.expr
            );
            for f in families {
                assert!(
                    exported.contains(f.as_str()),
                    "{}: {f} is not a metric of the service",
                    t.name()
                );
                used.insert(f);
            }
        }
    }
    // The dashboards cover what the issue asks for.
    for f in [
        "kmswatch_kms_calls_total",
        "kmswatch_alerts_firing",
        "kmswatch_sqs_messages_received_total",
        "kmswatch_s3_objects_fetched_total",
        "kmswatch_s3_fetched_bytes_total",
        "kmswatch_event_lag_seconds",
        "kmswatch_object_processing_seconds",
        "kmswatch_decode_errors_total",
        "kmswatch_duplicate_events_total",
        "kmswatch_late_events_total",
        "kmswatch_sqs_messages_failed_total",
        "kmswatch_label_overflow_total",
    ] {
        assert!(used.contains(f), "no panel shows {f}");
    }
    let rules = std::fs::read_to_string(grafana().join("prometheus/kmswatch-rules.yml")).unwrap();
    let exprs = rule_exprs(&rules);
    assert!(exprs.len() >= 10);
    for e in exprs {
        for f in metric_families(&e) {
            assert!(
                exported.contains(f.as_str()),
                "kmswatch-rules.yml: {f} is not a metric of the service: {e}"
            );
        }
    }
}

#[test]
fn provisioning_files_point_at_the_dashboards_and_the_datasource() {
    let ds =
        std::fs::read_to_string(grafana().join("provisioning/datasources/kmswatch.yml")).unwrap();
    assert_eq!(yaml_value(&ds, "apiVersion").as_deref(), Some("1"));
    assert_eq!(yaml_value(&ds, "type").as_deref(), Some("prometheus"));
    assert_eq!(yaml_value(&ds, "uid").as_deref(), Some(DATASOURCE_UID));
    assert!(yaml_value(&ds, "url").is_some_and(|u| u.starts_with("http")));

    let prov =
        std::fs::read_to_string(grafana().join("provisioning/dashboards/kmswatch.yml")).unwrap();
    assert_eq!(yaml_value(&prov, "apiVersion").as_deref(), Some("1"));
    assert_eq!(yaml_value(&prov, "type").as_deref(), Some("file"));
    let path = yaml_value(&prov, "path").expect("a provider path");
    // The README tells where the JSON files go: the provider's path.
    let readme = std::fs::read_to_string(grafana().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("grafana/dashboards:{path}"))
            && readme.contains(&format!("{path}/")),
        "grafana/README.md does not say to put the dashboards in {path}"
    );
    for (file, d) in dashboards() {
        assert!(
            readme.contains(&file),
            "grafana/README.md does not mention {file}"
        );
        assert!(
            readme.contains(d["title"].as_str().unwrap()),
            "grafana/README.md does not name {file}'s title"
        );
    }
}

fn promtool(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(grafana().join("prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: run scripts/test-deps (Debian's prometheus package)");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn prometheus_rules_and_config_pass_promtool_and_the_rule_unit_tests() {
    promtool(&["check", "rules", "kmswatch-rules.yml"], None);
    promtool(&["test", "rules", "kmswatch-rules.test.yml"], None);
    promtool(&["check", "config", "prometheus.yml"], None);
    // Each alerting rule has a unit test.
    let rules = std::fs::read_to_string(grafana().join("prometheus/kmswatch-rules.yml")).unwrap();
    let tests =
        std::fs::read_to_string(grafana().join("prometheus/kmswatch-rules.test.yml")).unwrap();
    for l in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
    {
        let name = l.trim();
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "no unit test fires {name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The real Prometheus scraping the real service.

const BUCKET: &str = "org-trail-bucket";
/// Grafana's `$__rate_interval` for a 1 s scrape interval and 1 s step: max(step + scrape, 4 × scrape).
const RATE_INTERVAL: &str = "4s";
/// Panels that show only zeros on this run, and why.
const ZERO_ON_THIS_RUN: [(&str, &str); 2] = [
    (
        "AWS retries per second",
        "moto never throttles or fails, so nothing is retried",
    ),
    (
        "Failed calls per second by error code",
        "every failing label set of the sample fails within one scrape and never again: rate() \
         cannot see a series' first value (the table of failures since start shows them)",
    ),
];

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A Prometheus server of our own, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, config: &str) -> Prometheus {
        let bin = Path::new("/usr/bin/prometheus");
        let bin = if bin.exists() {
            bin.to_owned()
        } else {
            PathBuf::from("prometheus")
        };
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {}: {e}: run scripts/test-deps (Debian's prometheus package)",
                    bin.display()
                )
            });
        let p = Prometheus { child, port, log };
        wait_until(30, "prometheus /-/ready", || p.get("/-/ready").0 == 200);
        p
    }

    /// `GET path`: the status and body.
    fn get(&self, path: &str) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new());
        };
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut resp = String::new();
        if s.read_to_string(&mut resp).is_err() {
            return (0, String::new());
        }
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }

    /// `GET path?params` of the HTTP API; the `data` of a success, else a panic naming `what`.
    fn api(&self, path: &str, params: &[(&str, &str)], what: &str) -> Value {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let (status, body) = self.get(&format!("{path}?{}", query.join("&")));
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{what}: HTTP {status}, not JSON ({e}): {body}"));
        assert_eq!(v["status"], "success", "{what}: HTTP {status}: {body}");
        v["data"].clone()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encoding of a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every object of `sample-logs/` (log files and digests), relative paths in delivery order.
fn sample_objects() -> Vec<String> {
    let root = repo().join("sample-logs");
    let mut out = Vec::new();
    let mut stack = vec![root.join("AWSLogs")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }
    out.sort_by_cached_key(|k| kmswatch::sources::canonical_order_key(k));
    out
}

/// Objects named by one notification.
const KEYS_PER_MESSAGE: usize = 20;
/// Messages that cannot be used: left for the dead-letter queue.
const POISON_MESSAGES: usize = 3;

/// Notifications sent at once; the next batch waits for a scrape that saw this one received.
const MESSAGES_PER_BATCH: usize = 5;

/// Uploads the sample logs and a few broken objects to moto; returns the notifications of them in
/// delivery order, poison messages last.
fn upload(rt: &tokio::runtime::Runtime, c: &Clients) -> Vec<String> {
    let root = repo().join("sample-logs");
    let objects = sample_objects();
    assert!(
        objects.len() > 2000,
        "sample-logs/ holds {} objects",
        objects.len()
    );
    let dir = "AWSLogs/o-a1b2c3d4e5/111111111111/CloudTrail/us-east-1/2026/02/05";
    let corrupt_key =
        format!("{dir}/111111111111_CloudTrail_us-east-1_20260205T0100Z_CORRUPT0000000000.json.gz");
    let malformed_key =
        format!("{dir}/111111111111_CloudTrail_us-east-1_20260205T0100Z_MALFORMED00000000.json.gz");
    let missing_key =
        format!("{dir}/111111111111_CloudTrail_us-east-1_20260205T0100Z_MISSING000000000.json.gz");
    let corrupt = common::corrupt_gzip("2026-02-04T23:00:00Z");
    // A record without its eventID: the object is read, the record counted as malformed.
    let malformed = gzip(&log_file(&[decrypt_record(
        "",
        "2026-02-04T23:00:00Z",
        "app",
        "k1",
    )
    .replace(r#""eventID":"","#, "")]));
    rt.block_on(async {
        c.bucket(BUCKET).await;
        let mut puts = tokio::task::JoinSet::new();
        let mut uploads: Vec<(String, Vec<u8>)> = objects
            .iter()
            .map(|k| (k.clone(), std::fs::read(root.join(k)).unwrap()))
            .collect();
        uploads.push((corrupt_key.clone(), corrupt));
        uploads.push((malformed_key.clone(), malformed));
        for (key, body) in uploads {
            if puts.len() >= 16 {
                puts.join_next().await.unwrap().unwrap();
            }
            let s3 = c.s3.clone();
            puts.spawn(async move {
                s3.put_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .body(body.into())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("put {key}: {e}"));
            });
        }
        while let Some(r) = puts.join_next().await {
            r.unwrap();
        }
        // CloudTrail's own notifications name several objects each (moto's queue slows down
        // with thousands of messages); the broken objects come as S3 event notifications.
        let mut bodies = vec![S3_TEST_EVENT.to_string()];
        for keys in objects.chunks(KEYS_PER_MESSAGE) {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            bodies.push(cloudtrail_notification(BUCKET, &keys, false));
        }
        bodies.extend([
            s3_event(BUCKET, &malformed_key, 1000),
            s3_event(BUCKET, &corrupt_key, 1000),
            s3_event(BUCKET, &missing_key, 1000),
            "this is not a notification".to_string(),
        ]);
        bodies
    })
}

async fn send_batch(c: &Clients, queue: &str, bodies: &[String]) {
    let entries: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(b)
                .build()
                .unwrap()
        })
        .collect();
    let out = c
        .sqs
        .send_message_batch()
        .queue_url(queue)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    assert!(out.failed.is_empty(), "{:?}", out.failed);
}

/// Replaces Grafana's variables as Grafana does for "All" keys and instances.
fn substitute(expr: &str, range_secs: u64) -> String {
    let e = expr
        .replace("${key}", ".*")
        .replace("$key", ".*")
        .replace("${instance}", ".*")
        .replace("$instance", ".*")
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__range_s", &range_secs.to_string())
        .replace("$__range", &format!("{range_secs}s"))
        .replace("$__interval_ms", "1000")
        .replace("$__interval", "1s");
    assert!(!e.contains('$'), "a variable is left in {e}");
    e
}

/// The values of a query result (vector or matrix), and how many series it has.
fn values(data: &Value) -> (usize, Vec<f64>) {
    let result = data["result"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for s in &result {
        let points: Vec<&Value> = match data["resultType"].as_str() {
            Some("matrix") => s["values"].as_array().unwrap().iter().collect(),
            _ => vec![&s["value"]],
        };
        out.extend(
            points
                .iter()
                .filter_map(|p| p[1].as_str()?.parse::<f64>().ok()),
        );
    }
    (result.len(), out)
}

#[test]
fn every_panel_query_returns_data_from_prometheus_scraping_the_service() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let moto = Moto::start();
    let c = rt.block_on(moto.clients());
    let q = rt.block_on(c.queues("dashboards", 2));
    let started = std::time::Instant::now();
    let bodies = upload(&rt, &c);
    let messages = bodies.len() - POISON_MESSAGES;
    eprintln!("uploaded in {:?}", started.elapsed());

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Prometheus from the example configuration: our port, a 1 s scrape and evaluation interval,
    // the shipped rules.
    let example = std::fs::read_to_string(grafana().join("prometheus/prometheus.yml")).unwrap();
    let config = example
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{port}"))
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace(
            "- kmswatch-rules.yml",
            &format!(
                "- {}",
                grafana().join("prometheus/kmswatch-rules.yml").display()
            ),
        );
    for changed in [
        "1s",
        &port.to_string(),
        "/grafana/prometheus/kmswatch-rules.yml",
    ] {
        assert!(
            config.contains(changed),
            "the example prometheus.yml changed shape:\n{config}"
        );
    }
    let prom = Prometheus::start(dir.path(), &config);
    let t0 = unix_now().floor();

    // Small label caps, so that overflow happens; a state file, so that saves happen.
    let cfg = service_config(
        dir.path(),
        &moto,
        &q.url,
        &[BUCKET],
        port,
        &format!(
            "[metrics]\nmax_label_values = 16\n\n[state]\npath = \"{}\"\nsave_interval_secs = 2\n",
            dir.path().join("state.json").display()
        ),
    );
    let mut svc = Service::start(&cfg, port, &dir.path().join("serve.log"));
    // Notifications arrive a few at a time, as CloudTrail delivers, each batch in its own scrapes:
    // rates have something to show, and gauges (in flight, oldest message) are caught non-zero.
    let mut sent = 0;
    for batch in bodies.chunks(MESSAGES_PER_BATCH) {
        rt.block_on(send_batch(&c, &q.url, batch));
        sent += batch.len();
        wait_until(30, "prometheus to scrape the batch received", || {
            let d = prom.api(
                "/api/v1/query",
                &[("query", "sum(kmswatch_sqs_messages_received_total)")],
                "pacing",
            );
            values(&d).1.first().is_some_and(|v| *v >= sent as f64)
        });
    }
    eprintln!("sent after {:?}", started.elapsed());
    // Drained: every good message deleted, every poison message failed twice (then moved to the
    // dead-letter queue by moto), nothing in flight.
    let mut last = std::time::Instant::now();
    wait_until(120, "the queue drained", || {
        let m = svc.metrics();
        let (deleted, failed, in_flight) = (
            metric(&m, "kmswatch_sqs_messages_deleted_total", &[]),
            metric(&m, "kmswatch_sqs_messages_failed_total", &[]),
            metric(&m, "kmswatch_sqs_messages_in_flight", &[]),
        );
        if last.elapsed() > Duration::from_secs(10) {
            last = std::time::Instant::now();
            eprintln!(
                "{:?}: {deleted} deleted, {failed} failed, {in_flight} in flight",
                started.elapsed()
            );
        }
        deleted == messages as f64
            && failed >= (2 * POISON_MESSAGES) as f64
            && in_flight == 0.0
            && rt.block_on(c.depth(&q.url)) == 0
    });
    eprintln!("drained after {:?}", started.elapsed());
    svc.signal("HUP");
    wait_until(30, "the rules reloaded", || {
        metric(
            &svc.metrics(),
            "kmswatch_rule_reloads_total",
            &["result=\"ok\""],
        ) == 1.0
    });
    let m = svc.metrics();
    promtool(&["check", "metrics"], Some(&m));
    // Wait until Prometheus has scraped the final values.
    let received = metric(&m, "kmswatch_sqs_messages_received_total", &[]);
    wait_until(30, "prometheus to scrape the final values", || {
        let d = prom.api(
            "/api/v1/query",
            &[("query", "sum(kmswatch_sqs_messages_received_total) + sum(kmswatch_rule_reloads_total{result=\"ok\"})")],
            "catching up",
        );
        values(&d).1 == [received + 1.0]
    });
    let t_end = unix_now().ceil();
    let range_secs = (t_end - t0) as u64 + 1;
    let (start, end) = (format!("{t0}"), format!("{t_end}"));

    // Template variables: label_values(metric, label) is Prometheus' label values API.
    let mut problems = Vec::new();
    for (_, d) in dashboards() {
        for v in d["templating"]["list"].as_array().unwrap() {
            let Some(q) = v["definition"].as_str() else {
                continue;
            };
            let (metric_name, label) = q
                .trim_start_matches("label_values(")
                .trim_end_matches(')')
                .split_once(", ")
                .unwrap();
            let data = prom.api(
                &format!("/api/v1/label/{label}/values"),
                &[("match[]", metric_name), ("start", &start), ("end", &end)],
                q,
            );
            if data.as_array().is_none_or(|a| a.is_empty()) {
                problems.push(format!("variable {}: {q} has no values", v["name"]));
            }
        }
    }

    // Every panel query, as Grafana runs it: time series over the run with a 1 s step, tables and
    // stats at its end over the whole run.
    let mut checked = 0;
    for (_, d) in dashboards() {
        for t in targets(&d) {
            let expr = substitute(&t.expr, range_secs);
            let data = if t.instant {
                prom.api(
                    "/api/v1/query",
                    &[("query", &expr), ("time", &end)],
                    &t.name(),
                )
            } else {
                prom.api(
                    "/api/v1/query_range",
                    &[
                        ("query", &expr),
                        ("start", &start),
                        ("end", &end),
                        ("step", "1"),
                    ],
                    &t.name(),
                )
            };
            checked += 1;
            let (series, vals) = values(&data);
            let zero_ok = ZERO_ON_THIS_RUN.iter().any(|(p, _)| *p == t.panel);
            if series == 0 {
                problems.push(format!("{}: no data: {expr}", t.name()));
            } else if !zero_ok && !vals.iter().any(|v| v.is_finite() && *v != 0.0) {
                problems.push(format!(
                    "{}: only zeros in {series} series: {expr}",
                    t.name()
                ));
            }
        }
    }
    assert!(checked > 50, "{checked} queries");

    // The rules loaded and evaluated without error; the recording rules have data.
    let rules = prom.api("/api/v1/rules", &[], "rules");
    let mut recorded = Vec::new();
    for g in rules["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            if r["health"] == "err" {
                problems.push(format!("rule {}: {}", r["name"], r["lastError"]));
            }
            if r["type"] == "recording" {
                recorded.push(r["name"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(recorded.len() >= 5, "{rules}");
    for name in &recorded {
        // No delivery fails on this run.
        if name.contains("alert_deliveries") {
            continue;
        }
        let data = prom.api("/api/v1/query", &[("query", name), ("time", &end)], name);
        if values(&data).0 == 0 {
            problems.push(format!("recording rule {name}: no data"));
        }
    }

    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n\nprometheus log:\n{}\nservice metrics:\n{m}",
        problems.len(),
        problems.join("\n"),
        prom.log_text()
    );
    assert!(svc.signal("TERM").unwrap().success(), "{}", svc.log_text());
}
