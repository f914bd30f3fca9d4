//! kmswatch: streaming audit analytics and anomaly detection for AWS KMS usage in CloudTrail.
//!
//! See `ARCHITECTURE.md` for the map. The pipeline is
//! `sources -> decode -> engine (aggregate + rules) -> alerts / report`; live and replay differ only
//! in the source.

pub mod aggregate;
pub mod alerts;
pub mod decode;
pub mod engine;
pub mod generate;
pub mod replay;
pub mod report;
pub mod rules;
pub mod sources;
pub mod timefmt;
