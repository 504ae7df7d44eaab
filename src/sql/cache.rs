//! A bounded cache of statement analyses keyed by the exact statement text, so repeated statements
//! (the common case for applications and prepared statements) are parsed once.

use lru::LruCache;
use parking_lot::Mutex;
use std::num::NonZeroUsize;
use std::sync::Arc;

use super::analyze::{analyze, Analysis};

/// An analysis, or the parser's error message.
type Entry = Result<Arc<Analysis>, Arc<str>>;

pub struct ParseCache {
    inner: Mutex<LruCache<Box<str>, Entry>>,
}

/// Statements longer than this are analysed but not cached (bulk INSERTs would flush the cache).
const MAX_CACHED_LEN: usize = 4096;

impl ParseCache {
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        ParseCache { inner: Mutex::new(LruCache::new(cap)) }
    }

    pub fn get(&self, sql: &str) -> Result<Arc<Analysis>, Arc<str>> {
        if sql.len() <= MAX_CACHED_LEN {
            if let Some(hit) = self.inner.lock().get(sql) {
                return hit.clone();
            }
        }
        let r = analyze(sql).map_err(Arc::from);
        if sql.len() <= MAX_CACHED_LEN {
            self.inner.lock().put(sql.into(), r.clone());
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
    fn hits_return_the_same_analysis() {
        let c = ParseCache::new(2);
        let a = c.get("select 1 from t").unwrap();
        let b = c.get("select 1 from t").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(c.get("selec oops").is_err());
    }
}
