//! The client side on the service port: accepting connections, the login handshake, and one session
//! task per client that reads commands and answers them (locally or through route → exec).

pub mod cached;
pub mod control;
pub mod diagnostics;
pub mod explain;
pub mod handshake;
pub mod insert_select;
pub mod join;
pub mod load;
pub mod load_sharded;
pub mod local;
pub mod params;
pub mod prepared;
pub mod query;
pub mod sequence;
pub mod session;
pub mod show;
pub mod subquery;
pub mod tracking;
pub mod txn;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

use crate::runtime::Runtime;
use crate::sql::cache::ParseCache;

/// The version the handshake presents: the backend's own, marked as shardcat's — so that drivers
/// speak the backend's dialect (MariaDB announces itself as `5.5.5-10.x.y-MariaDB…`, and drivers
/// look for that prefix). Without a reachable backend, a MySQL 5.7 version.
pub fn presented_version(backend: Option<&str>) -> String {
    match backend {
        Some(v) if !v.is_empty() => {
            let v = v.trim_end_matches('\0');
            if v.contains("MariaDB") && !v.starts_with("5.5.5-") {
                format!("5.5.5-{v}-shardcat")
            } else {
                format!("{v}-shardcat")
            }
        }
        _ => format!("5.7.25-shardcat-{}", env!("CARGO_PKG_VERSION")),
    }
}

/// What `VERSION()` answers: the presented version without MariaDB's `5.5.5-` compatibility prefix.
pub fn version_function(presented: &str) -> &str {
    presented.strip_prefix("5.5.5-").unwrap_or(presented)
}

/// What every session shares: the runtime snapshot (config, rules, backends), the parse cache, the
/// session registry.
pub struct Shared {
    /// The current generation; a reload swaps it whole.
    pub runtime: ArcSwap<Runtime>,
    /// The generation before the last reload (`rollback @@config` restores it, once).
    pub previous: Mutex<Option<Arc<Runtime>>>,
    /// ER parent rows found by lookups: (schema, parent table, key value) → dataNode.
    pub parent_cache: Mutex<lru::LruCache<(String, String, String), Arc<str>>>,
    pub parse_cache: ParseCache,
    pub server_version: String,
    pub started: Instant,
    pub questions: AtomicU64,
    /// `offline` on the manager port: health checks (COM_PING, `show mycat_status`) fail, work goes on.
    pub online: std::sync::atomic::AtomicBool,
    /// Commands by kind and slow statements.
    pub stats: crate::stats::Stats,
    /// The result cache's invalidation (epochs per logical table), fed by the binlog readers.
    pub cache: Arc<crate::cache::Cache>,
    /// The change queue's feeds (cdc.xml), restarted by every reload.
    pub cdc: Arc<crate::cdc::Cdc>,
    /// Reloads and rollbacks so far (the manager port's `show @@server`, metrics).
    pub history: Mutex<crate::runtime::History>,
    /// Mycat's global sequences (their state outlives reloads).
    pub sequences: Arc<crate::sequence::Sequences>,
    next_conn_id: AtomicU32,
    next_session_uid: AtomicU64,
    sessions: Mutex<HashMap<u32, SessionEntry>>,
    /// TLS for clients (server.xml `tlsCert`/`tlsKey`), loaded at start.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// caching_sha2_password's cache of fully authenticated users.
    pub sha2_cache: crate::proto::auth::Sha2Cache,
    /// Two-phase commit's coordinator: XIDs, the decision log, what recovery still owes.
    pub xa: Arc<crate::xa::Coordinator>,
}

struct SessionEntry {
    ctl: Arc<control::SessionControl>,
}

impl Shared {
    /// `backend_version`: the handshake version of the first reachable writeHost, if any.
    pub fn new(
        runtime: Runtime,
        backend_version: Option<&str>,
        tls: Option<tokio_rustls::TlsAcceptor>,
        xa: Arc<crate::xa::Coordinator>,
    ) -> Arc<Self> {
        let version =
            runtime.config.system.fake_mysql_version.clone().unwrap_or_else(|| presented_version(backend_version));
        let stats = crate::stats::Stats::new(runtime.config.system.sql_slow_time_ms);
        let cache = crate::cache::Cache::new(runtime.config.clone());
        let sequences = Arc::new(crate::sequence::Sequences::new(
            runtime.config.config_dir.clone(),
            runtime.config.system.sequence_handler_type,
        ));
        Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            previous: Mutex::new(None),
            parent_cache: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(10_000).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            // 2048 ASTs: statements with their literals inline (text protocol) make every value a new
            // entry, and 10 000 of them held ~60 MiB under sysbench --db-ps-mode=disable
            parse_cache: ParseCache::new(2_048),
            server_version: version,
            started: Instant::now(),
            questions: AtomicU64::new(0),
            online: std::sync::atomic::AtomicBool::new(true),
            stats,
            cache,
            cdc: crate::cdc::Cdc::new(),
            history: Mutex::new(Default::default()),
            sequences,
            next_conn_id: AtomicU32::new(1),
            next_session_uid: AtomicU64::new(1),
            sessions: Mutex::new(HashMap::new()),
            tls,
            sha2_cache: Default::default(),
            xa,
        })
    }

    /// The current generation.
    pub fn rt(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// `rt`, unless `held` is it already: then nothing is cloned (a clone per command is two atomic
    /// writes on a line every worker shares).
    pub fn refresh_rt(&self, held: &mut Arc<Runtime>) {
        let current = self.runtime.load();
        if !Arc::ptr_eq(&current, held) {
            *held = Arc::clone(&current);
        }
    }

    /// Makes `next` current; the one it replaces is kept for `rollback @@config`. Every cache that
    /// holds what the old generation decided is cleared.
    pub fn swap(&self, next: Arc<Runtime>) -> Arc<Runtime> {
        self.cache.configure(next.config.clone());
        self.cdc.configure(next.clone());
        let old = self.runtime.swap(next);
        *self.previous.lock() = Some(old.clone());
        self.parent_cache.lock().clear();
        self.parse_cache.clear();
        old
    }

    pub fn session_uid(&self) -> u64 {
        self.next_session_uid.fetch_add(1, Ordering::Relaxed)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// KILL [CONNECTION]: interrupts what the session runs and ends it after that — never in the middle
    /// of a COMMIT/ROLLBACK, which finishes on every node first. `false` when no such connection exists.
    pub fn kill(&self, id: u32) -> bool {
        let sessions = self.sessions.lock();
        match sessions.get(&id) {
            Some(e) => {
                tracing::info!(conn = id, user = %e.ctl.user(), "connection killed");
                e.ctl.interrupt();
                e.ctl.stop();
                true
            }
            None => false,
        }
    }

    /// KILL QUERY: interrupts the statement the session runs, if any. `false` when no such connection.
    pub fn kill_query(&self, id: u32) -> bool {
        let sessions = self.sessions.lock();
        match sessions.get(&id) {
            Some(e) => {
                tracing::info!(conn = id, user = %e.ctl.user(), "query killed");
                e.ctl.interrupt();
                true
            }
            None => false,
        }
    }

    /// Shutdown: every session ends after its current statement (idle ones at once); after `grace`,
    /// running statements are interrupted. Returns when no session is left or `grace` × 2 passed.
    pub async fn drain(&self, grace: std::time::Duration) {
        let stop_all = |interrupt: bool| {
            for e in self.sessions.lock().values() {
                if interrupt {
                    e.ctl.interrupt();
                }
                e.ctl.stop();
            }
        };
        stop_all(false);
        let t0 = Instant::now();
        let mut interrupted = false;
        while self.session_count() > 0 {
            if !interrupted && t0.elapsed() >= grace {
                tracing::warn!(
                    sessions = self.session_count(),
                    "shutdownTimeout passed: interrupting running statements"
                );
                stop_all(true);
                interrupted = true;
            }
            if t0.elapsed() >= grace * 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    fn register(&self, id: u32) -> Arc<control::SessionControl> {
        let ctl = control::SessionControl::new();
        self.sessions.lock().insert(id, SessionEntry { ctl: ctl.clone() });
        ctl
    }

    /// Every session with its id and what it does (SHOW PROCESSLIST), by id.
    pub fn sessions(&self) -> Vec<(u32, control::Activity)> {
        let mut v: Vec<(u32, control::Activity)> =
            self.sessions.lock().iter().map(|(id, e)| (*id, e.ctl.activity())).collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    fn unregister(&self, id: u32) {
        self.sessions.lock().remove(&id);
    }
}

/// Accepts clients until the listener fails.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let ctl = shared.register(id);
        let sh = shared.clone();
        tokio::spawn(async move {
            session::run(stream, peer, id, sh.clone(), ctl).await;
            sh.unregister(id);
        });
    }
}
