//! A bounded cache of statement analyses keyed by the exact statement text, so repeated statements
//! (the common case for applications and prepared statements) are parsed once.

use lru::LruCache;
use parking_lot::Mutex;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::analyze::{analyze, Analysis};

/// An analysis, or the parser's error message.
type Entry = Result<Arc<Analysis>, Arc<str>>;

pub struct ParseCache {
    inner: Mutex<Inner>,
    hasher: foldhash::fast::RandomState,
    /// Lookups, hits and insertions (`show @@cache`).
    pub stats: CacheStats,
}

/// Counters of a cache, as `show @@cache` lists them.
#[derive(Default)]
pub struct CacheStats {
    pub access: std::sync::atomic::AtomicU64,
    pub hit: std::sync::atomic::AtomicU64,
    pub put: std::sync::atomic::AtomicU64,
}

struct Inner {
    lru: LruCache<Box<str>, Entry>,
    /// Hashes of texts parsed once and not cached (the admission filter): a text enters the cache the
    /// second time it is seen, so one-off statements (values written in) never push out repeating ones.
    seen: HashSet<u64, foldhash::fast::RandomState>,
    seen_order: VecDeque<u64>,
    seen_max: usize,
}

/// Statements longer than this are analysed but not cached (bulk INSERTs would flush the cache).
const MAX_CACHED_LEN: usize = 4096;

impl ParseCache {
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        let inner = Inner {
            lru: LruCache::new(cap),
            seen: HashSet::default(),
            seen_order: VecDeque::new(),
            seen_max: cap.get() * 4,
        };
        ParseCache {
            inner: Mutex::new(inner),
            hasher: foldhash::fast::RandomState::default(),
            stats: Default::default(),
        }
    }

    /// Entries held now, and at most.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.lru.len(), inner.lru.cap().get())
    }

    /// Forgets every entry (a reload).
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.lru.clear();
        inner.seen.clear();
        inner.seen_order.clear();
    }

    pub fn get(&self, sql: &str) -> Result<Arc<Analysis>, Arc<str>> {
        if sql.len() > MAX_CACHED_LEN {
            return self.parse_once(sql);
        }
        let h = self.hasher.hash_one(sql);
        self.stats.access.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let admit = {
            let mut inner = self.inner.lock();
            if let Some(hit) = inner.lru.get(sql) {
                self.stats.hit.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return hit.clone();
            }
            inner.seen.contains(&h)
        };
        let r = analyze(sql).map_err(Arc::from);
        let mut inner = self.inner.lock();
        if admit {
            inner.seen.remove(&h);
            inner.lru.put(sql.into(), r.clone());
            self.stats.put.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else if inner.seen.insert(h) {
            inner.seen_order.push_back(h);
            while inner.seen_order.len() > inner.seen_max {
                if let Some(old) = inner.seen_order.pop_front() {
                    inner.seen.remove(&old);
                }
            }
        }
        r
    }

    /// Parses a statement that will not come again (its values written in): not cached, so one-off
    /// texts do not push out the statements that repeat.
    pub fn parse_once(&self, sql: &str) -> Result<Arc<Analysis>, Arc<str>> {
        analyze(sql).map_err(Arc::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_cached_the_second_time_it_is_seen() {
        let c = ParseCache::new(2);
        let a = c.get("select 1 from t").unwrap();
        let b = c.get("select 1 from t").unwrap();
        assert!(!Arc::ptr_eq(&a, &b), "parsed twice: the first sighting is not cached");
        let d = c.get("select 1 from t").unwrap();
        assert!(Arc::ptr_eq(&b, &d), "then served from the cache");
        assert!(c.get("selec oops").is_err());
        // one-off texts do not push it out
        for i in 0..100 {
            let _ = c.get(&format!("select {i} from t"));
        }
        assert!(Arc::ptr_eq(&c.get("select 1 from t").unwrap(), &d));
    }
}
