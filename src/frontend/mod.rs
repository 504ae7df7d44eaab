//! The client side on the service port: accepting connections, the login handshake, and one session
//! task per client that reads commands and answers them (locally or through route → exec).

pub mod explain;
pub mod handshake;
pub mod local;
pub mod params;
pub mod prepared;
pub mod query;
pub mod session;
pub mod show;
pub mod txn;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

use crate::backend::Backends;
use crate::config::Config;
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

/// What every session shares: the config, the backends, the parse cache, the session registry.
pub struct Shared {
    pub config: ArcSwap<Config>,
    /// The sharding rules compiled from `config`.
    pub rules: ArcSwap<crate::route::Rules>,
    /// ER parent rows found by lookups: (schema, parent table, key value) → dataNode.
    pub parent_cache: Mutex<lru::LruCache<(String, String, String), Arc<str>>>,
    pub backends: Backends,
    pub parse_cache: ParseCache,
    pub server_version: String,
    pub started: Instant,
    pub questions: AtomicU64,
    next_conn_id: AtomicU32,
    next_session_uid: AtomicU64,
    sessions: Mutex<HashMap<u32, SessionEntry>>,
}

struct SessionEntry {
    user: String,
    abort: Option<tokio::task::AbortHandle>,
}

impl Shared {
    /// `backend_version`: the handshake version of the first reachable writeHost, if any.
    pub fn new(
        config: Config,
        rules: crate::route::Rules,
        backends: Backends,
        backend_version: Option<&str>,
    ) -> Arc<Self> {
        let version = config.system.fake_mysql_version.clone().unwrap_or_else(|| presented_version(backend_version));
        Arc::new(Shared {
            config: ArcSwap::from_pointee(config),
            rules: ArcSwap::from_pointee(rules),
            parent_cache: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(10_000).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            backends,
            // 2048 ASTs: statements with their literals inline (text protocol) make every value a new
            // entry, and 10 000 of them held ~60 MiB under sysbench --db-ps-mode=disable
            parse_cache: ParseCache::new(2_048),
            server_version: version,
            started: Instant::now(),
            questions: AtomicU64::new(0),
            next_conn_id: AtomicU32::new(1),
            next_session_uid: AtomicU64::new(1),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    pub fn session_uid(&self) -> u64 {
        self.next_session_uid.fetch_add(1, Ordering::Relaxed)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Ends another session (KILL). `false` when no such connection exists.
    pub fn kill(&self, id: u32) -> bool {
        let entry = self.sessions.lock().remove(&id);
        match entry {
            Some(e) => {
                tracing::info!(conn = id, user = %e.user, "connection killed");
                if let Some(a) = e.abort {
                    a.abort();
                }
                true
            }
            None => false,
        }
    }

    fn register(&self, id: u32, user: &str) {
        self.sessions.lock().insert(id, SessionEntry { user: user.to_string(), abort: None });
    }

    fn set_abort(&self, id: u32, abort: tokio::task::AbortHandle) {
        if let Some(e) = self.sessions.lock().get_mut(&id) {
            e.abort = Some(abort);
        }
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
        shared.register(id, "");
        let sh = shared.clone();
        let task = tokio::spawn(async move {
            session::run(stream, peer, id, sh.clone()).await;
            sh.unregister(id);
        });
        shared.set_abort(id, task.abort_handle());
    }
}
