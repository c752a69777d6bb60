//! Changes waiting to go to the other nodes, latest per key, in the order keys first
//! changed (`fleet` and `roster` flush one of these every period): a rider sending fixes
//! every few seconds costs its peers one entry per flush at most.
//!
//! Bounded: past `cap` keys a new key's change is dropped and the caller counts it. The
//! keys are the node's own riders, so the cap is only a guard against a fault.

use std::collections::HashMap;
use std::hash::Hash;

/// The default bound: far above the riders one node runs.
pub const PENDING_CAP: usize = 100_000;

pub struct Coalesced<K, V> {
    cap: usize,
    pending: Vec<V>,
    at: HashMap<K, usize>,
}

impl<K: Hash + Eq, V> Default for Coalesced<K, V> {
    fn default() -> Self {
        Coalesced::new(PENDING_CAP)
    }
}

impl<K: Hash + Eq, V> Coalesced<K, V> {
    pub fn new(cap: usize) -> Self {
        Coalesced {
            cap: cap.max(1),
            pending: Vec::new(),
            at: HashMap::new(),
        }
    }

    /// Keeps `value` as the latest of `key`. False: a new key over the cap, dropped.
    pub fn put(&mut self, key: K, value: V) -> bool {
        if let Some(&i) = self.at.get(&key) {
            self.pending[i] = value;
            return true;
        }
        if self.pending.len() >= self.cap {
            return false;
        }
        self.at.insert(key, self.pending.len());
        self.pending.push(value);
        true
    }

    /// Everything pending, in first-change order; empty afterwards.
    pub fn take(&mut self) -> Vec<V> {
        self.at.clear();
        std::mem::take(&mut self.pending)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_per_key_in_first_change_order_and_bounded() {
        let mut c = Coalesced::new(2);
        assert!(c.put("a", 1));
        assert!(c.put("b", 2));
        assert!(c.put("a", 3), "a known key is replaced, even at the cap");
        assert!(!c.put("c", 4), "a new key over the cap is dropped");
        assert_eq!(c.len(), 2);
        assert_eq!(c.take(), vec![3, 2]);
        assert!(c.is_empty());
        assert!(c.put("c", 5));
        assert_eq!(c.take(), vec![5]);
    }
}
