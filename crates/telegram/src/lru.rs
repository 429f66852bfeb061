//! A map that keeps at most a given number of entries, forgetting the least recently
//! used ones: the per-tenant caches of a process serving many tenants stay bounded, and
//! the tenants that are busy stay cached.
//!
//! Reads only take the caller's read lock (the last use is an atomic stamp); when an
//! insert finds the map full it drops the least recently used eighth at once, so the
//! linear pass over the stamps is paid once per `capacity / 8` inserts.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Lru<K, V> {
    map: HashMap<K, Slot<V>>,
    capacity: usize,
    clock: AtomicU64,
}

struct Slot<V> {
    value: V,
    used: AtomicU64,
}

impl<K: Eq + Hash, V: Clone> Lru<K, V> {
    /// At most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// The value, marked as just used.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.map.get(key)?;
        slot.used.store(self.tick(), Ordering::Relaxed);
        Some(slot.value.clone())
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            self.evict();
        }
        let used = AtomicU64::new(self.tick());
        self.map.insert(key, Slot { value, used });
    }

    /// Drops the least recently used eighth of the entries (at least one).
    fn evict(&mut self) {
        let n = (self.capacity / 8).clamp(1, self.map.len());
        let mut stamps: Vec<u64> = self
            .map
            .values()
            .map(|s| s.used.load(Ordering::Relaxed))
            .collect();
        let (_, &mut cut, _) = stamps.select_nth_unstable(n - 1);
        self.map.retain(|_, s| s.used.load(Ordering::Relaxed) > cut);
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(key).map(|s| s.value)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.map.retain(|k, s| keep(k, &s.value));
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_never_holds_more_than_its_capacity_and_keeps_what_is_used() {
        let mut lru = Lru::new(16);
        for i in 0..16 {
            lru.insert(i, i * 10);
        }
        // 0 and 1 are in use; the others were only stored.
        for _ in 0..3 {
            assert_eq!(lru.get(&0), Some(0));
            assert_eq!(lru.get(&1), Some(10));
        }
        for i in 16..1000 {
            lru.insert(i, i * 10);
            assert!(lru.len() <= 16);
            lru.get(&0);
            lru.get(&1);
        }
        assert_eq!(lru.get(&0), Some(0), "a busy entry stays");
        assert_eq!(lru.get(&1), Some(10));
        assert_eq!(lru.get(&2), None, "an idle one went");
        assert_eq!(lru.get(&999), Some(9990), "the newest is there");
    }

    #[test]
    fn replacing_a_key_does_not_evict() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        lru.insert("a", 3);
        assert_eq!((lru.get("a"), lru.get("b")), (Some(3), Some(2)));
        lru.insert("c", 4);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.get("c"), Some(4));
    }
}
