//! One sink's outbox: the alerts handed to it and not yet delivered (queued, being delivered, or
//! held back by the sink), bounded, in the order they were raised.
//!
//! The fold adds an alert before it queues it and the sink settles it once delivered (or given
//! up), each holding the lock only to insert or remove: never across I/O. What is left when
//! state is saved goes into the state file, so an alert raised before a save survives a crash
//! before its delivery.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::IntGauge;

/// The undelivered alerts of one sink, by sequence number.
pub struct Outbox {
    /// Most alerts held (`queue_capacity`): one more is dropped and counted.
    capacity: usize,
    /// Alert-schema JSON by sequence number (the order the fold raised them in).
    pending: Mutex<BTreeMap<u64, Arc<str>>>,
    /// `kmswatch_alert_queue_depth` of this sink: how many are held.
    depth: IntGauge,
}

impl Outbox {
    pub fn new(capacity: usize, depth: IntGauge) -> Self {
        Outbox {
            capacity: capacity.max(1),
            pending: Mutex::default(),
            depth,
        }
    }

    /// Takes `json` in as `seq`; false (and not taken) when the outbox is full.
    pub fn admit(&self, seq: u64, json: Arc<str>) -> bool {
        let mut p = self.lock();
        if p.len() >= self.capacity {
            return false;
        }
        p.insert(seq, json);
        self.depth.set(p.len() as i64);
        true
    }

    /// `seq` was delivered, given up, or replaced by a later alert of the same identity.
    pub fn settle(&self, seq: u64) {
        let mut p = self.lock();
        p.remove(&seq);
        self.depth.set(p.len() as i64);
    }

    /// What is undelivered, oldest first.
    pub fn undelivered(&self) -> Vec<Arc<str>> {
        self.lock().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<str>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_holds_what_is_unsettled_in_order_up_to_its_capacity() {
        let depth = IntGauge::new("depth", "test").unwrap();
        let o = Outbox::new(2, depth.clone());
        assert!(o.admit(3, "c".into()));
        assert!(o.admit(1, "a".into()));
        assert!(!o.admit(2, "b".into()), "full");
        assert_eq!(depth.get(), 2);
        let texts: Vec<String> = o.undelivered().iter().map(|s| s.to_string()).collect();
        assert_eq!(texts, ["a", "c"]);
        o.settle(1);
        o.settle(7); // unknown: nothing happens
        assert!(o.admit(2, "b".into()));
        assert_eq!(o.len(), 2);
        assert_eq!(depth.get(), 2);
    }
}
