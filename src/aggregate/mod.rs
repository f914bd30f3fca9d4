//! Event-time bookkeeping shared by every rule: tumbling windows, bounded dedupe, the key
//! catalogue, distinct counts.
//!
//! Pure: time only arrives as event times and watermarks passed in by the engine.

mod dedupe;
mod distinct;
mod keys;
mod windows;

pub use dedupe::{Dedupe, ObjectId};
pub use distinct::{Distinct, EXACT_CAP as DISTINCT_EXACT_CAP};
pub use keys::{KeyCatalog, KeyInfo};
pub use windows::{window_start, Rejected, Windows};
