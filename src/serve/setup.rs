//! Starting the service: rules, the engine (restored from the state file when there is one) and
//! the AWS clients.

use std::time::Duration;

use tracing::info;

use crate::alerts::Alert;
use crate::config::ServeConfig;
use crate::engine::journal::JournalPosition;
use crate::engine::Engine;
use crate::rules::{load_paths, RuleSet};
use crate::state::{SinkOutbox, StateError};

use super::ServeError;

/// Loads the rules a config names, rendering every problem.
pub fn load_rules(cfg: &ServeConfig) -> Result<RuleSet, ServeError> {
    load_paths(&cfg.rules).map_err(|e| ServeError::Rules {
        paths: cfg
            .rules
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        problems: e
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// What the service starts from.
pub(super) struct Start {
    pub engine: Engine,
    /// The alerts the sinks had not delivered at the last save.
    pub undelivered: Vec<SinkOutbox>,
    /// The state file and journal it was restored from.
    pub position: Option<JournalPosition>,
    /// Alerts of new or changed rules on the journal's calls, to publish.
    pub alerts: Vec<Alert>,
}

/// The engine to start from, restored from the state file and its journal when there is one.
pub(super) fn start_engine(cfg: &ServeConfig, rules: RuleSet) -> Result<Start, ServeError> {
    let fresh = |rules| Start {
        engine: Engine::new(cfg.engine.clone(), rules),
        undelivered: Vec::new(),
        position: None,
        alerts: Vec::new(),
    };
    let Some(sc) = &cfg.state else {
        return Ok(fresh(rules));
    };
    match Engine::resume(cfg.engine.clone(), rules.clone(), &sc.path) {
        Ok(r) => {
            for note in &r.notes {
                info!(%note, "state restore");
            }
            let undelivered: usize = r.outbox.iter().map(|s| s.alerts.len()).sum();
            let p = r.position;
            info!(path = %sc.path.display(), kms_calls = r.engine.counters().kms_calls, undelivered,
                deltas = p.deltas, journal_ops = p.ops, "state restored");
            Ok(Start {
                engine: r.engine,
                undelivered: r.outbox,
                position: Some(p),
                alerts: r.alerts,
            })
        }
        Err(StateError::Missing { .. }) => {
            info!(path = %sc.path.display(), "no state file yet; starting fresh");
            Ok(fresh(rules))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn aws_clients(cfg: &ServeConfig) -> (aws_sdk_sqs::Client, aws_sdk_s3::Client) {
    let endpoint = cfg.source.endpoint_url.as_deref();
    let sdk = crate::sources::s3::sdk_config(
        cfg.source.region.as_deref(),
        endpoint,
        Duration::from_secs(cfg.source.wait_time_secs as u64 + 30),
    )
    .await;
    (
        aws_sdk_sqs::Client::new(&sdk),
        crate::sources::s3::client(&sdk, endpoint),
    )
}
