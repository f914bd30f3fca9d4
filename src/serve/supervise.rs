//! Supervision of the service's stages: a stage that ends or panics before shutdown was asked
//! for is reported at once (so `/healthz` fails and the service stops with an error naming it),
//! and, in debug builds only, a fault to inject for the tests that prove it.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle};

/// A stage that stopped early: its name and what happened.
pub(super) type Death = (&'static str, String);

/// Watches `inner`: when it ends (returns or panics) while `stopping` is still false, `died` is
/// told. The returned handle gives `inner`'s own result, for the ordered shutdown to await.
pub(super) fn supervise<T: Send + 'static>(
    stage: &'static str,
    inner: JoinHandle<T>,
    died: mpsc::UnboundedSender<Death>,
    stopping: watch::Receiver<bool>,
) -> JoinHandle<Result<T, JoinError>> {
    tokio::spawn(async move {
        let r = inner.await;
        if !*stopping.borrow() {
            let why = match &r {
                Ok(_) => "ended unexpectedly".to_owned(),
                Err(e) => e.to_string(),
            };
            let _ = died.send((stage, why));
        }
        r
    })
}

/// Spawns stages under [`supervise`].
#[derive(Clone)]
pub(super) struct Supervisor {
    pub died: mpsc::UnboundedSender<Death>,
    pub stopping: watch::Receiver<bool>,
}

impl Supervisor {
    pub fn spawn<F>(&self, stage: &'static str, fut: F) -> JoinHandle<Result<F::Output, JoinError>>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.watch(stage, tokio::spawn(fut))
    }

    pub fn watch<T: Send + 'static>(
        &self,
        stage: &'static str,
        inner: JoinHandle<T>,
    ) -> JoinHandle<Result<T, JoinError>> {
        supervise(stage, inner, self.died.clone(), self.stopping.clone())
    }
}

/// In debug builds, `KMSWATCH_FAULT=<stage>:<n>` makes `stage` panic at its `n`-th item (the
/// tests' way to kill a stage); release builds have no such hook.
pub(super) fn fault_point(stage: &str, count: &AtomicU64) {
    if cfg!(debug_assertions) {
        let n = count.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(spec) = std::env::var("KMSWATCH_FAULT") {
            if let Some((s, at)) = spec.split_once(':') {
                if s == stage && at.parse::<u64>().ok() == Some(n) {
                    panic!("injected fault in the {stage} stage (KMSWATCH_FAULT={spec})");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stage_that_ends_early_is_reported_and_one_stopped_on_request_is_not() {
        let (died_tx, mut died) = mpsc::unbounded_channel();
        let (stop_tx, stop) = watch::channel(false);
        let early = supervise(
            "dispatcher",
            tokio::spawn(async {}),
            died_tx.clone(),
            stop.clone(),
        );
        early.await.unwrap().unwrap();
        assert_eq!(
            died.recv().await,
            Some(("dispatcher", "ended unexpectedly".to_owned()))
        );
        let panicking = supervise(
            "fold",
            tokio::spawn(async { panic!("boom") }),
            died_tx.clone(),
            stop.clone(),
        );
        assert!(panicking.await.unwrap().is_err());
        let (stage, why) = died.recv().await.unwrap();
        assert_eq!(stage, "fold");
        assert!(why.contains("panicked") && why.contains("boom"), "{why}");
        stop_tx.send(true).unwrap();
        let orderly = supervise("acknowledger", tokio::spawn(async {}), died_tx, stop);
        orderly.await.unwrap().unwrap();
        assert_eq!(died.recv().await, None);
    }
}
