//! Short-lived caches of what nearly every call reads: the caller behind an API token, and the
//! event types and workspaces an event is checked against.
//!
//! Entries stay fresh for one second, and only what was found is cached: a token or an event type
//! created a moment ago is always looked up again, never refused. What a cache can delay, by at
//! most that second, is noticing a deletion.

use crate::domain::ids::AccountId;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::events::AccountCatalog;
use crate::domain::account::Caller;

const FRESH_FOR: Duration = Duration::from_secs(1);
/// Beyond this many entries the cache starts over, so many one-off keys cannot grow it.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct Caches {
    /// API token digest → caller.
    pub callers: Fresh<String, Caller>,
    pub catalogs: Fresh<AccountId, Arc<AccountCatalog>>,
}

pub struct Fresh<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for Fresh<K, V> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq, V: Clone> Fresh<K, V> {
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().expect("lock is never poisoned");
        entries.get(key).filter(|(at, _)| at.elapsed() < FRESH_FOR).map(|(_, value)| value.clone())
    }

    /// Forgets at once the entries whose value fails `keep` (a revoked token, a deleted account).
    pub fn retain(&self, keep: impl Fn(&V) -> bool) {
        self.entries.lock().expect("lock is never poisoned").retain(|_, (_, value)| keep(value));
    }

    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().expect("lock is never poisoned");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let cache: Fresh<usize, usize> = Fresh::default();
        cache.put(1, 10);
        assert_eq!(cache.get(&1), Some(10));
        cache.entries.lock().unwrap().get_mut(&1).unwrap().0 -= FRESH_FOR;
        assert_eq!(cache.get(&1), None, "stale after FRESH_FOR");
        cache.put(2, 20);
        cache.put(3, 30);
        cache.retain(|v| *v != 20);
        assert_eq!((cache.get(&2), cache.get(&3)), (None, Some(30)), "retain forgets at once");
        for k in 0..MAX_ENTRIES + 5 {
            cache.put(k, k);
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
