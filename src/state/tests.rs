//! Unit tests of the state file: round trip, atomicity, and each error.
