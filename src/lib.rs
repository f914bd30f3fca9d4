//! kmswatch: streaming audit analytics and anomaly detection for AWS KMS usage in CloudTrail.
//!
//! See `ARCHITECTURE.md` for the map. The pipeline is
//! `sources -> decode -> engine (aggregate + rules) -> alerts / report`; live and replay differ only
//! in the source.

pub mod aggregate;
pub mod alerts;
pub mod alloc;
pub mod config;
pub mod decode;
pub mod engine;
pub mod generate;
pub mod metrics;
pub mod names;
pub mod problem;
pub mod replay;
pub mod report;
pub mod retry;
pub mod rules;
pub mod serve;
pub mod server;
pub mod sinks;
pub mod sources;
pub mod state;
pub mod timefmt;
pub mod totals;

mod serde_sorted;

/// Hash maps keyed by log-derived strings: a fast hasher seeded per process (not attacker-predictable).
/// Output never depends on their iteration order: emitters sort first.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
