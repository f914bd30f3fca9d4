//! Starting the service: rules, the engine (restored from the state file when there is one) and
//! the AWS clients.

use std::time::Duration;

use tracing::info;

use crate::config::ServeConfig;
use crate::engine::Engine;
use crate::rules::{load_paths, RuleSet};
use crate::state::{self, SinkOutbox, StateError};

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

/// The engine to start from, restored from the state file when there is one, and the alerts the
/// sinks had not delivered when it was saved.
pub(super) fn start_engine(
    cfg: &ServeConfig,
    rules: RuleSet,
) -> Result<(Engine, Vec<SinkOutbox>), ServeError> {
    let Some(sc) = &cfg.state else {
        return Ok((Engine::new(cfg.engine.clone(), rules), Vec::new()));
    };
    match state::load(&sc.path) {
        Ok(mut saved) => {
            let outbox = std::mem::take(&mut saved.outbox);
            let (engine, notes) = Engine::restore(cfg.engine.clone(), rules, saved)?;
            for note in notes {
                info!(%note, "state restore");
            }
            let undelivered: usize = outbox.iter().map(|s| s.alerts.len()).sum();
            info!(path = %sc.path.display(), kms_calls = engine.counters().kms_calls, undelivered, "state restored");
            Ok((engine, outbox))
        }
        Err(StateError::Missing { .. }) => {
            info!(path = %sc.path.display(), "no state file yet; starting fresh");
            Ok((Engine::new(cfg.engine.clone(), rules), Vec::new()))
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
