//! Retries of S3, SQS and alert-delivery calls: capped exponential backoff with full jitter.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// How often and how patiently a retryable call is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: u32,
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_ms: 200,
            max_ms: 20_000,
        }
    }
}

impl RetryPolicy {
    /// The pause before try `attempt + 1` (after `attempt` failures, from 1): uniformly random in
    /// `[0, min(max, base * 2^(attempt-1))]` ("full jitter"), so many consumers throttled together
    /// do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_ms
            .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30));
        let cap = exp.min(self.max_ms);
        let r = RandomState::new().hash_one(attempt);
        Duration::from_millis(if cap == 0 { 0 } else { r % (cap + 1) })
    }
}

/// Whether a failed call may succeed if tried again.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

/// Runs `op` until it succeeds, fails permanently, or `policy.max_attempts` tries are spent;
/// `on_retry` is told of each retry (for metrics and logs).
pub async fn with_retries<T, E: Retryable, F, Fut>(
    policy: &RetryPolicy,
    mut op: F,
    mut on_retry: impl FnMut(u32, &E),
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < policy.max_attempts.max(1) => {
                on_retry(attempt, &e);
                tokio::time::sleep(policy.delay(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct E(bool);
    impl Retryable for E {
        fn is_retryable(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn delays_grow_to_the_cap_and_stay_within_it() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_ms: 100,
            max_ms: 1000,
        };
        for attempt in 1..=20 {
            let cap = (100u64 << (attempt - 1).min(30)).min(1000);
            for _ in 0..50 {
                assert!(p.delay(attempt) <= Duration::from_millis(cap));
            }
        }
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_until_the_attempts_run_out() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_ms: 1,
            max_ms: 2,
        };
        let mut calls = 0;
        let mut retries = Vec::new();
        let r: Result<(), E> = with_retries(
            &p,
            || {
                calls += 1;
                async { Err(E(true)) }
            },
            |n, _| retries.push(n),
        )
        .await;
        assert_eq!(r, Err(E(true)));
        assert_eq!(calls, 3);
        assert_eq!(retries, [1, 2]);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried_and_success_stops() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_ms: 1,
            max_ms: 2,
        };
        let mut calls = 0;
        let r: Result<(), E> = with_retries(
            &p,
            || {
                calls += 1;
                async { Err(E(false)) }
            },
            |_, _| {},
        )
        .await;
        assert_eq!((r, calls), (Err(E(false)), 1));
        let mut calls = 0;
        let r: Result<u32, E> = with_retries(
            &p,
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 2 {
                        Err(E(true))
                    } else {
                        Ok(n)
                    }
                }
            },
            |_, _| {},
        )
        .await;
        assert_eq!(r, Ok(2));
    }
}
