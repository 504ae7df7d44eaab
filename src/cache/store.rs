//! The stored replies: the exact packets a cacheable statement's miss sent its client, keyed by what
//! changes those bytes, bounded in bytes by `resultCacheSize` (moka: a byte weigher, TinyLFU eviction).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::placement::Logical;

/// Everything that changes the reply's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub user: Arc<str>,
    pub schema: Arc<str>,
    /// The client's statement text (or a prepared statement's text and its parameters).
    pub statement: Vec<u8>,
    /// Charset, collation, autocommit, isolation, the replayed SETs (sql_mode, time_zone…).
    pub session: Arc<str>,
    /// Binary rows (COM_STMT_EXECUTE) or text; DEPRECATE_EOF framing.
    pub binary: bool,
    pub deprecate_eof: bool,
}

impl Key {
    fn weight(&self) -> usize {
        self.user.len() + self.schema.len() + self.statement.len() + self.session.len() + 64
    }
}

/// One stored reply: its packets (each as a 4-byte length and the payload), the tables it read and
/// the epochs it was read at, the dataHosts it came from.
pub struct Entry {
    pub packets: Vec<u8>,
    pub tables: Vec<Logical>,
    pub epochs: Vec<u64>,
    pub data_hosts: Vec<Arc<str>>,
    /// The dataNodes it was read from (the session's diagnostics point there after a hit).
    pub nodes: Vec<Arc<str>>,
    pub rows: u64,
}

impl Entry {
    /// The stored packets, in order.
    pub fn each(&self) -> impl Iterator<Item = &[u8]> {
        crate::proto::codec::captured(&self.packets)
    }
}

pub struct Store {
    entries: Option<moka::sync::Cache<Key, Arc<Entry>, foldhash::fast::RandomState>>,
    /// Keys a session is filling now: concurrent misses of one key wait for it (single flight).
    filling: parking_lot::Mutex<std::collections::HashMap<Key, Arc<tokio::sync::Notify>>>,
    pub max_size: u64,
    pub max_entry: u64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub puts: AtomicU64,
    /// Unix milliseconds of the last hit and the last store (`show @@cache`).
    pub last_access: AtomicU64,
    pub last_put: AtomicU64,
}

/// This session fills a key; when it is dropped (stored or not) the sessions waiting look again.
pub struct FillGuard {
    store: Arc<Store>,
    key: Key,
}

impl Drop for FillGuard {
    fn drop(&mut self) {
        if let Some(n) = self.store.filling.lock().remove(&self.key) {
            n.notify_waiters();
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Store {
    /// `size` 0: off (nothing is stored, every lookup misses without counting).
    pub fn new(size: u64, max_entry: u64) -> Self {
        let entries = (size > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(size)
                .weigher(|k: &Key, e: &Arc<Entry>| {
                    (k.weight() + e.packets.len() + e.epochs.len() * 8 + 64).min(u32::MAX as usize) as u32
                })
                // every hit hashes its key: foldhash, not the default SipHash
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        Store {
            entries,
            filling: Default::default(),
            max_size: size,
            max_entry,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            last_access: AtomicU64::new(0),
            last_put: AtomicU64::new(0),
        }
    }

    pub fn on(&self) -> bool {
        self.entries.is_some()
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.entries.as_ref()?.get(key)
    }

    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.last_access.store(now_ms(), Ordering::Relaxed);
        crate::stats::fixed_counter!(crate::stats::names::CACHE_LOOKUPS, "result" => "hit").increment(1);
    }

    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        crate::stats::fixed_counter!(crate::stats::names::CACHE_LOOKUPS, "result" => "miss").increment(1);
    }

    pub fn put(&self, key: Key, entry: Entry) {
        if let Some(c) = &self.entries {
            c.insert(key, Arc::new(entry));
            self.puts.fetch_add(1, Ordering::Relaxed);
            self.last_put.store(now_ms(), Ordering::Relaxed);
            crate::stats::fixed_counter!(crate::stats::names::CACHE_STORES).increment(1);
        }
    }

    /// A miss of `key`: `Ok(guard)` when this session fills it (others wait until the guard goes),
    /// `Err(wait)` when another one does (the future ends when it is done).
    pub fn fill(self: &Arc<Self>, key: &Key) -> Result<FillGuard, tokio::sync::futures::OwnedNotified> {
        let mut f = self.filling.lock();
        match f.get(key) {
            Some(n) => Err(n.clone().notified_owned()),
            None => {
                f.insert(key.clone(), Arc::new(tokio::sync::Notify::new()));
                Ok(FillGuard { store: self.clone(), key: key.clone() })
            }
        }
    }

    /// Forgets an entry found stale.
    pub fn remove(&self, key: &Key) {
        if let Some(c) = &self.entries {
            c.invalidate(key);
        }
    }

    pub fn clear(&self) {
        if let Some(c) = &self.entries {
            c.invalidate_all();
        }
    }

    /// (entries, bytes) held now.
    pub fn usage(&self) -> (u64, u64) {
        match &self.entries {
            Some(c) => {
                c.run_pending_tasks();
                (c.entry_count(), c.weighted_size())
            }
            None => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_packets_come_back_in_order_and_an_oversized_reply_is_not_kept() {
        use crate::proto::codec::Capture;
        let mut c = Capture::new(64);
        c.add(b"\x01");
        c.add(b"def");
        c.add(b"");
        let e = Entry { packets: c.data, tables: vec![], epochs: vec![], data_hosts: vec![], nodes: vec![], rows: 0 };
        let got: Vec<&[u8]> = e.each().collect();
        assert_eq!(got, [&b"\x01"[..], b"def", b""]);
        let mut big = Capture::new(16);
        big.add(&[0u8; 20]);
        big.add(b"x");
        assert!(big.overflow && big.data.is_empty());
    }

    #[test]
    fn the_store_is_off_at_size_zero_and_bounded_by_bytes_otherwise() {
        let off = Store::new(0, 1 << 20);
        assert!(!off.on());
        let s = Store::new(10_000, 1 << 20);
        let key = |i: u32| Key {
            user: "u".into(),
            schema: "s".into(),
            statement: format!("SELECT {i}").into_bytes(),
            session: "".into(),
            binary: false,
            deprecate_eof: true,
        };
        for i in 0..100 {
            let e = Entry {
                packets: vec![0; 1000],
                tables: vec![],
                epochs: vec![],
                data_hosts: vec![],
                nodes: vec![],
                rows: 1,
            };
            s.put(key(i), e);
        }
        let (entries, bytes) = s.usage();
        assert!(bytes <= 10_000, "{bytes}");
        assert!(entries > 0 && (0..100).any(|i| s.get(&key(i)).is_some()), "some are kept ({entries})");
    }
}
