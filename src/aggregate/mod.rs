//! Event-time bookkeeping shared by every rule: tumbling windows, bounded dedupe, the key catalogue.
//!
//! Pure: time only arrives as event times and watermarks passed in by the engine.

mod dedupe;
mod keys;
mod windows;

pub use dedupe::Dedupe;
pub use keys::{KeyCatalog, KeyInfo};
pub use windows::{window_start, Rejected, Windows};
