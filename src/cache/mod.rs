//! The result cache, beside the trip: an epoch per logical table, moved by writes through the proxy and
//! by the shards' binlogs (`backend::binlog` hands every committed change to `Cache`), and the stored
//! replies (`store`), each valid while the epochs it was read at are the current ones.
//!
//! A result may only be kept if the epochs of its tables did not move while it ran and no write through
//! the proxy was under way on them; a dataHost whose reader lost its stream moves every epoch of what it
//! stores. `eligible` says which statements may be cached at all.

pub mod eligible;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::backend::binlog::{Change, Sink};
use crate::config::model::Config;
use crate::config::placement::{Logical, Placement};

/// Where invalidations come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A write through the proxy.
    Proxy,
    /// A change read from a shard's binlog.
    Binlog,
    /// A binlog reader lost its stream, `clear @@cache`, or a reload.
    Reset,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Proxy => "proxy",
            Source::Binlog => "binlog",
            Source::Reset => "reset",
        }
    }
}

/// One logical table's (or schema's) epoch and how often it moved, by source.
#[derive(Debug, Clone, Default)]
pub struct Moves {
    pub epoch: u64,
    pub proxy: u64,
    pub binlog: u64,
    pub reset: u64,
    /// Writes through the proxy under way on it (`WriteGuard`s alive).
    pub inflight: u64,
    /// The cache's move sequence at its last move (`Cache::seq`).
    pub last: u64,
}

/// A write through the proxy on some tables, from before it is sent until its transaction ended: while
/// it lives nothing over those tables is stored or served; its start and its end each move the epochs.
pub struct WriteGuard {
    cache: Arc<Cache>,
    tables: Vec<Logical>,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut epochs = self.cache.epochs.lock();
        let seq = &self.cache.seq;
        for t in &self.tables {
            let m = epochs.entry(normal(t)).or_default();
            m.inflight = m.inflight.saturating_sub(1);
            m.epoch += 1;
            m.last = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        }
    }
}

struct Mapping {
    config: Arc<Config>,
    placement: Placement,
}

pub struct Cache {
    mapping: ArcSwap<Mapping>,
    epochs: Mutex<HashMap<Logical, Moves>>,
    /// Counts every epoch move (under the `epochs` lock): what a transaction's snapshot is compared with.
    seq: std::sync::atomic::AtomicU64,
    pub store: Arc<store::Store>,
}

/// Names as the map keys them: lower case.
fn normal(l: &Logical) -> Logical {
    match l {
        Logical::Table { schema, table } => {
            Logical::Table { schema: schema.to_ascii_lowercase(), table: table.to_ascii_lowercase() }
        }
        Logical::Schema(s) => Logical::Schema(s.to_ascii_lowercase()),
    }
}

impl Cache {
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        let placement = Placement::of(&config);
        let store = Arc::new(store::Store::new(config.system.result_cache_size, config.system.result_cache_max_entry));
        Arc::new(Cache {
            mapping: ArcSwap::from_pointee(Mapping { config, placement }),
            epochs: Mutex::default(),
            seq: Default::default(),
            store,
        })
    }

    /// A write through the proxy on `tables` begins (see `WriteGuard`).
    pub fn begin_write(self: &Arc<Self>, tables: Vec<Logical>) -> WriteGuard {
        {
            let mut epochs = self.epochs.lock();
            let seq = &self.seq;
            for t in &tables {
                let m = epochs.entry(normal(t)).or_default();
                m.inflight += 1;
                m.epoch += 1;
                m.last = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                m.proxy += 1;
            }
        }
        crate::stats::invalidations(Source::Proxy.name(), tables.len() as u64);
        WriteGuard { cache: self.clone(), tables }
    }

    /// What a result over `tables` depends on, as `current` takes it: each table and its schema, in
    /// the map's lower case, once each (computed once per stored reply, not per lookup).
    pub fn dependencies(tables: &[Logical]) -> Vec<Logical> {
        let mut out: Vec<Logical> = Vec::with_capacity(tables.len() * 2);
        for t in tables {
            let t = normal(t);
            if let Logical::Table { schema, .. } = &t {
                let s = Logical::Schema(schema.clone());
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// The epochs of `deps` (from `dependencies`) now, or `None` while a write through the proxy is
    /// under way on one of them.
    pub fn current(&self, deps: &[Logical]) -> Option<Vec<u64>> {
        self.current_since(deps, u64::MAX)
    }

    /// Whether `epochs` are the current epochs of `deps` (`current`, without building them); `None`
    /// while a write through the proxy is under way on one of them.
    pub fn is_current(&self, deps: &[Logical], epochs: &[u64]) -> Option<bool> {
        self.is_current_since(deps, epochs, u64::MAX)
    }

    /// `is_current`, for a transaction whose snapshots were taken at move `since`: `None` also when a
    /// dependency moved after it.
    pub fn is_current_since(&self, deps: &[Logical], epochs: &[u64], since: u64) -> Option<bool> {
        let map = self.epochs.lock();
        let mut same = deps.len() == epochs.len();
        for (d, e) in deps.iter().zip(epochs) {
            let m = map.get(d);
            if m.is_some_and(|m| m.inflight > 0 || m.last > since) {
                return None;
            }
            same &= m.map_or(0, |m| m.epoch) == *e;
        }
        Some(same)
    }

    /// The number of epoch moves so far: a transaction records it when it opens on a node.
    pub fn seq(&self) -> u64 {
        let _held = self.epochs.lock();
        self.seq.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `current`, for a transaction whose snapshots were taken at move `since` or later: `None` also
    /// when a dependency moved after it (the transaction must read its own snapshot on the server).
    pub fn current_since(&self, deps: &[Logical], since: u64) -> Option<Vec<u64>> {
        let epochs = self.epochs.lock();
        let mut out = Vec::with_capacity(deps.len());
        for d in deps {
            let m = epochs.get(d);
            if m.is_some_and(|m| m.inflight > 0 || m.last > since) {
                return None;
            }
            out.push(m.map_or(0, |m| m.epoch));
        }
        Some(out)
    }

    /// `clear @@cache`, a reload: every stored reply goes.
    pub fn clear(&self) {
        self.store.clear();
    }

    /// With the cache on, reads the binlog of every dataHost of `rt` (readers already running go on).
    pub fn follow(self: &Arc<Self>, rt: &crate::runtime::Runtime) {
        if rt.config.system.result_cache_size > 0 {
            let sink: Arc<dyn Sink> = self.clone();
            crate::backend::binlog::start(&rt.backends.hosts, rt.config.system.binlog_server_id, sink);
        }
    }

    /// A new configuration: its placement maps the binlogs' tables from now on.
    pub fn configure(&self, config: Arc<Config>) {
        let placement = Placement::of(&config);
        self.store.clear();
        self.mapping.store(Arc::new(Mapping { config, placement }));
    }

    /// Moves the epochs of `tables`.
    pub fn invalidate(&self, tables: &[Logical], source: Source) {
        if tables.is_empty() {
            return;
        }
        let mut epochs = self.epochs.lock();
        let seq = &self.seq;
        for t in tables {
            let m = epochs.entry(normal(t)).or_default();
            m.epoch += 1;
            m.last = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            match source {
                Source::Proxy => m.proxy += 1,
                Source::Binlog => m.binlog += 1,
                Source::Reset => m.reset += 1,
            }
        }
        drop(epochs);
        crate::stats::invalidations(source.name(), tables.len() as u64);
    }

    /// The epochs a result over `tables` depends on: for each table its schema's, then its own (tests).
    #[cfg(test)]
    pub fn epochs(&self, tables: &[Logical]) -> Vec<u64> {
        let epochs = self.epochs.lock();
        let mut out = Vec::with_capacity(tables.len() * 2);
        for t in tables {
            let t = normal(t);
            if let Logical::Table { schema, .. } = &t {
                out.push(epochs.get(&Logical::Schema(schema.clone())).map_or(0, |m| m.epoch));
            }
            out.push(epochs.get(&t).map_or(0, |m| m.epoch));
        }
        out
    }

    /// Every table and schema that moved so far, with its counts (`show @@cache`, tests).
    pub fn moves(&self) -> Vec<(Logical, Moves)> {
        let mut v: Vec<(Logical, Moves)> = self.epochs.lock().iter().map(|(k, m)| (k.clone(), m.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The logical tables a binlog change on `data_host` concerns.
    pub fn logical(&self, data_host: &str, change: &Change) -> Vec<Logical> {
        let m = self.mapping.load();
        if change.everything {
            return m.placement.host(data_host);
        }
        let mut out = Vec::new();
        for (db, table) in &change.tables {
            for l in m.placement.table(&m.config, data_host, db, table) {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        }
        for db in &change.databases {
            for l in m.placement.database(data_host, db) {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        }
        out
    }
}

impl Sink for Cache {
    fn changed(&self, data_host: &str, change: &Change) {
        let tables = self.logical(data_host, change);
        self.invalidate(&tables, Source::Binlog);
    }

    fn lost(&self, data_host: &str) {
        let everything = self.mapping.load().placement.host(data_host);
        self.invalidate(&everything, Source::Reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Arc<Cache> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (cfg, _) = crate::config::load(&root.join("config"), Some(&root.join("rules"))).expect("config/");
        Cache::new(Arc::new(cfg))
    }

    fn t(schema: &str, table: &str) -> Logical {
        Logical::Table { schema: schema.into(), table: table.into() }
    }

    #[test]
    fn binlog_changes_move_the_epochs_of_their_logical_tables() {
        let c = cache();
        let before = c.epochs(&[t("demo", "customer"), t("demo", "region")]);
        let change = Change {
            gtid: "1-1-5".into(),
            tables: vec![("shardcat_2".into(), "Customer".into())],
            ..Default::default()
        };
        c.changed("host2", &change);
        let after = c.epochs(&[t("demo", "customer"), t("demo", "region")]);
        assert_ne!(before[1], after[1], "customer moved");
        assert_eq!(before[3], after[3], "region did not");
        // a change the reader could not narrow down moves the schemas stored there
        c.changed("host1", &Change { databases: vec!["shardcat_default".into()], ..Default::default() });
        let e = c.epochs(&[t("demo", "anything")]);
        assert_eq!(e[0], 1, "demo's schema epoch moved: {e:?}");
        // a lost reader moves everything on its dataHost
        let region = c.epochs(&[t("demo", "region")])[1];
        c.lost("host1");
        assert_ne!(c.epochs(&[t("demo", "region")])[1], region);
        // current() takes the dependencies: a table and its schema
        let deps = Cache::dependencies(&[t("Demo", "Region"), t("demo", "customer")]);
        assert_eq!(deps.len(), 3, "{deps:?}");
        assert_eq!(c.current(&deps).map(|v| v.len()), Some(3));
        let moves = c.moves();
        let customer = moves.iter().find(|(l, _)| *l == t("demo", "customer")).map(|(_, m)| m.clone()).unwrap();
        assert_eq!((customer.binlog, customer.reset), (1, 1));
    }
}
