//! A connection pool per writeHost/readHost: at most maxCon live connections, minCon opened at start, idle ones kept
//! per capability variant (FOUND_ROWS, DEPRECATE_EOF); no ping on checkout, but one idle past the idle-check period is pinged and one the server closed is dropped.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conn::{BackendConn, Endpoint, Variant};
use crate::error::{Error, Result};

pub struct HostPool {
    pub endpoint: Arc<Endpoint>,
    pub max_con: u32,
    pub min_con: u32,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<(BackendConn, OwnedSemaphorePermit)>>,
    idle_check: Duration,
    connect_timeout: Duration,
    down: AtomicBool,
    /// Its dataHost was retired by a reload: released connections close instead of idling.
    retired: AtomicBool,
    pub checkouts: AtomicU64,
    pub connects: AtomicU64,
    /// Statements run on this host's connections.
    pub meter: crate::stats::Meter,
    /// Sessions waiting for a connection right now (maxCon reached).
    waiting: AtomicU64,
    wait: metrics::Histogram,
}

/// One waiter counted in `HostPool::waiting` for as long as it lives.
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An idle connection as the manager port shows it.
pub struct IdleView {
    pub thread_id: u32,
    pub local_port: u16,
    pub life_secs: u64,
    pub schema: String,
    pub charset: String,
    pub autocommit: bool,
}

/// A borrowed connection; returned to its pool when dropped if it is clean and outside a transaction.
pub struct Pooled {
    conn: Option<(BackendConn, OwnedSemaphorePermit)>,
    pool: Arc<HostPool>,
}

impl std::ops::Deref for Pooled {
    type Target = BackendConn;
    fn deref(&self) -> &BackendConn {
        // invariant: `conn` is only None inside `drop`
        match &self.conn {
            Some((c, _)) => c,
            None => unreachable!("pooled connection used after drop"),
        }
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut BackendConn {
        match &mut self.conn {
            Some((c, _)) => c,
            None => unreachable!("pooled connection used after drop"),
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some((c, permit)) = self.conn.take() {
            if c.clean && !c.in_transaction() && c.xa.is_none() && !self.pool.retired.load(Ordering::Relaxed) {
                self.pool.idle.lock().push((c, permit));
            }
        }
    }
}

impl Pooled {
    /// The pool it came from.
    pub fn pool(&self) -> &HostPool {
        &self.pool
    }

    /// Closes the connection instead of returning it (its state is unknown).
    pub fn discard(mut self) {
        self.conn = None;
    }
}

impl HostPool {
    pub fn new(endpoint: Endpoint, max_con: u32, min_con: u32, idle_check: Duration) -> Arc<Self> {
        let meter = crate::stats::Meter::host(&endpoint.data_host, &endpoint.host_name);
        let wait = metrics::histogram!(
            crate::stats::names::POOL_WAIT_SECONDS,
            "datahost" => endpoint.data_host.clone(),
            "host" => endpoint.host_name.clone()
        );
        Arc::new(HostPool {
            endpoint: Arc::new(endpoint),
            max_con,
            min_con,
            permits: Arc::new(Semaphore::new(max_con.max(1) as usize)),
            idle: Mutex::new(Vec::new()),
            idle_check,
            connect_timeout: Duration::from_secs(5),
            down: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            checkouts: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            meter,
            waiting: AtomicU64::new(0),
            wait,
        })
    }

    /// Connections lent out right now (least-active balancing).
    pub fn in_use(&self) -> usize {
        (self.max_con.max(1) as usize)
            .saturating_sub(self.permits.available_permits())
            .saturating_sub(self.idle_count())
    }

    /// Sessions waiting for one of its connections right now.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The last connection attempt failed (and none has succeeded since).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Closes every idle connection (the host went away: they are dead).
    pub fn clear_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock());
        drop(idle);
    }

    /// Closes idle connections now, and every borrowed one when it comes back.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.clear_idle();
    }

    /// The idle connections as `show @@backend` lists them.
    pub fn idle_snapshot(&self) -> Vec<IdleView> {
        self.idle
            .lock()
            .iter()
            .map(|(c, _)| {
                let (schema, charset, autocommit) = c.session_view();
                IdleView {
                    thread_id: c.thread_id,
                    local_port: c.local_port,
                    life_secs: c.opened.elapsed().as_secs(),
                    schema,
                    charset,
                    autocommit,
                }
            })
            .collect()
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }

    /// Opens minCon connections; logs (once) when the host is down.
    pub async fn warm_up(self: &Arc<Self>) {
        let mut opened = Vec::new();
        for _ in 0..self.min_con {
            match self.get(Variant { found_rows: false, deprecate_eof: true, extended_metadata: false }).await {
                Ok(c) => opened.push(c),
                Err(_) => break,
            }
        }
        drop(opened);
    }

    pub async fn get(self: &Arc<Self>, variant: Variant) -> Result<Pooled> {
        let t0 = std::time::Instant::now();
        let got = self.checkout(variant).await;
        self.wait.record(t0.elapsed().as_secs_f64());
        got
    }

    async fn checkout(self: &Arc<Self>, variant: Variant) -> Result<Pooled> {
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        loop {
            let candidate = {
                let mut idle = self.idle.lock();
                idle.iter().rposition(|(c, _)| c.variant == variant).map(|i| idle.swap_remove(i))
            };
            let Some((mut c, permit)) = candidate else { break };
            if c.closed_while_idle() || (c.last_used.elapsed() > self.idle_check && c.ping().await.is_err()) {
                drop((c, permit));
                continue;
            }
            return Ok(Pooled { conn: Some((c, permit)), pool: self.clone() });
        }
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // full: close an idle connection of the other variant, or wait for one to come back
                let other = self.idle.lock().pop();
                match other {
                    Some((c, p)) => {
                        drop(c);
                        p
                    }
                    None => {
                        let waited = {
                            // counted while waiting, also when the waiting session is dropped (KILL)
                            let _waiting = Waiting::new(&self.waiting);
                            tokio::time::timeout(self.connect_timeout, self.permits.clone().acquire_owned()).await
                        };
                        match waited {
                            Ok(Ok(p)) => p,
                            _ => {
                                return Err(Error::Connect {
                                    addr: self.endpoint.addr.clone(),
                                    data_host: self.endpoint.data_host.clone(),
                                    reason: format!("all {} connections (maxCon) are busy", self.max_con),
                                })
                            }
                        }
                    }
                }
            }
        };
        match BackendConn::connect(self.endpoint.clone(), variant, self.connect_timeout).await {
            Ok(c) => {
                self.connects.fetch_add(1, Ordering::Relaxed);
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(data_host = %self.endpoint.data_host, host = %self.endpoint.host_name, addr = %self.endpoint.addr, "backend is reachable again");
                }
                Ok(Pooled { conn: Some((c, permit)), pool: self.clone() })
            }
            Err(e) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(data_host = %self.endpoint.data_host, host = %self.endpoint.host_name, addr = %self.endpoint.addr, error = %e, "backend is down");
                }
                Err(e)
            }
        }
    }
}
