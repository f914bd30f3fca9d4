//! A real Alertmanager for tests (Debian's `prometheus-alertmanager`, installed by
//! scripts/test-deps) on 127.0.0.1, clustering off, notifying one webhook; killed on drop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::aws::{free_port, http_get, wait_until};

const BINARY: &str = "prometheus-alertmanager";

/// A label set, as Alertmanager shows it.
pub type Labels = BTreeMap<String, String>;

pub struct Alertmanager {
    child: Child,
    pub port: u16,
    pub url: String,
}

impl Alertmanager {
    /// Starts Alertmanager with its state in `dir`, sending every alert group (one per alert, at
    /// once, resolved ones too) to `webhook`.
    pub fn start(dir: &Path, webhook: &str) -> Alertmanager {
        Alertmanager::start_on(dir, webhook, free_port())
    }

    /// [`Alertmanager::start`] on `port` of 127.0.0.1.
    pub fn start_on(dir: &Path, webhook: &str, port: u16) -> Alertmanager {
        Alertmanager::start_routed(dir, webhook, "['...']", 1, port)
    }

    /// Starts Alertmanager grouping alerts by rule (`alertname`), as a real route would: an
    /// alert joining a group that was notified already is notified at the group's next flush,
    /// `group_interval_secs` later, only if it still fires then.
    pub fn start_grouped_by_rule(
        dir: &Path,
        webhook: &str,
        group_interval_secs: u64,
    ) -> Alertmanager {
        Alertmanager::start_routed(
            dir,
            webhook,
            "['alertname']",
            group_interval_secs,
            free_port(),
        )
    }

    fn start_routed(
        dir: &Path,
        webhook: &str,
        group_by: &str,
        group_interval_secs: u64,
        port: u16,
    ) -> Alertmanager {
        let found = Command::new(BINARY)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{BINARY} not found: run scripts/test-deps (it installs Debian's prometheus-alertmanager)"
        );
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: test\n  group_by: {group_by}\n  group_wait: 1s\n  group_interval: {group_interval_secs}s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: test\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let storage = dir.join("alertmanager-data");
        let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {BINARY}: {e}"));
        let am = Alertmanager {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_until(30, "Alertmanager to be ready", || {
            http_get(port, "/-/ready").is_some()
        });
        am
    }

    /// `GET /api/v2/alerts`: the active alerts.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let body = http_get(self.port, "/api/v2/alerts").expect("GET /api/v2/alerts");
        serde_json::from_str(&body).expect("Alertmanager answers a JSON array")
    }

    /// The label sets of the active alerts.
    pub fn active_labels(&self) -> BTreeSet<Labels> {
        self.alerts()
            .iter()
            .map(|a| serde_json::from_value(a["labels"].clone()).unwrap())
            .collect()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
