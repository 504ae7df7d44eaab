//! Distributed deadlock detection: transactions spanning servers can wait on each other in a cycle no
//! single InnoDB sees; a wait-for graph over every server's lock waits finds it and interrupts one.
//!
//! Sessions report each statement they run inside a transaction (`begin`/`end`) with the backend
//! connections they hold. When a statement has waited longer than the check period, the detector reads
//! `information_schema.INNODB_LOCK_WAITS` on the servers involved, maps backend threads to sessions,
//! and for each cycle of sessions picks the one whose statement started last as the victim: its waiting
//! statements get `KILL QUERY`, and the session rolls its whole transaction back and answers 1213, as
//! one MariaDB would after a deadlock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn::{BackendConn, Endpoint, Variant};

/// A backend connection as the servers know it: (server address, connection id).
pub type Thread = (Arc<str>, u32);

struct Waiting {
    since: Instant,
    /// The session's backend connections: (server, connection id).
    threads: Vec<(Arc<Endpoint>, u32)>,
    victim: bool,
}

#[derive(Default)]
pub struct Deadlocks {
    waiting: Mutex<HashMap<u64, Waiting, foldhash::fast::RandomState>>,
    /// Whether a detector runs (`deadlockCheckPeriod` > 0): without one, nothing is recorded.
    active: std::sync::atomic::AtomicBool,
}

impl Deadlocks {
    /// Session `uid` starts a statement inside a transaction, holding these connections.
    pub fn begin<'a>(&self, uid: u64, conns: impl Iterator<Item = &'a BackendConn>) {
        if !self.active.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let threads = conns.map(|c| (c.endpoint.clone(), c.thread_id)).collect();
        self.waiting.lock().insert(uid, Waiting { since: Instant::now(), threads, victim: false });
    }

    /// The statement of `uid` is over: whether the detector chose it to break a deadlock.
    pub fn end(&self, uid: u64) -> bool {
        self.waiting.lock().remove(&uid).is_some_and(|w| w.victim)
    }

    /// Statements that have waited at least `after`, as (uid, since, threads), when there are two or
    /// more statements in flight (a cycle needs two sessions).
    fn snapshot(&self, after: Duration) -> Option<Snapshot> {
        let w = self.waiting.lock();
        if w.len() < 2 || !w.values().any(|x| x.since.elapsed() >= after && !x.victim) {
            return None;
        }
        let mut snap = Snapshot::default();
        for (u, x) in w.iter().filter(|(_, x)| !x.victim) {
            let threads = x
                .threads
                .iter()
                .map(|(ep, id)| {
                    let addr: Arc<str> = Arc::from(ep.addr.as_str());
                    snap.endpoints.entry(addr.clone()).or_insert_with(|| ep.clone());
                    (addr, *id)
                })
                .collect();
            snap.sessions.push((*u, x.since, threads));
        }
        Some(snap)
    }

    /// Marks `uid` as the victim unless its statement ended meanwhile.
    fn choose(&self, uid: u64) -> bool {
        match self.waiting.lock().get_mut(&uid) {
            Some(w) if !w.victim => {
                w.victim = true;
                true
            }
            _ => false,
        }
    }
}

/// The statements in flight when the detector looks: (uid, since, threads), and where each server is.
#[derive(Default)]
struct Snapshot {
    sessions: Vec<(u64, Instant, Vec<Thread>)>,
    endpoints: HashMap<Arc<str>, Arc<Endpoint>>,
}

const LOCK_WAITS: &str = "SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id \
     FROM information_schema.INNODB_LOCK_WAITS w \
     JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id \
     JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id";

/// Runs the detector every `period` (statements waiting less than that are left alone).
pub fn start(d: Arc<Deadlocks>, period: Duration) {
    d.active.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::spawn(async move {
        let mut control: HashMap<Arc<str>, BackendConn> = HashMap::new();
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(snap) = d.snapshot(period) else { continue };
            check(&d, &snap, &mut control, period).await;
        }
    });
}

async fn check(d: &Deadlocks, snap: &Snapshot, control: &mut HashMap<Arc<str>, BackendConn>, period: Duration) {
    let eps = &snap.endpoints;
    let owner: HashMap<&Thread, u64> =
        snap.sessions.iter().flat_map(|(u, _, ts)| ts.iter().map(move |t| (t, *u))).collect();
    let servers: HashSet<&Arc<str>> = owner.keys().map(|(a, _)| a).collect();
    // session → sessions it waits for, and the threads through which it waits
    let mut edges: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut waiting_threads: HashMap<u64, Vec<Thread>> = HashMap::new();
    let timeout = period.clamp(Duration::from_millis(200), Duration::from_secs(2));
    for addr in servers {
        let Some(rows) = lock_waits(eps, control, addr, timeout).await else { continue };
        for (req, blk) in rows {
            let (rt, bt) = ((addr.clone(), req), (addr.clone(), blk));
            if let (Some(&a), Some(&b)) = (owner.get(&rt), owner.get(&bt)) {
                if a != b {
                    edges.entry(a).or_default().insert(b);
                    waiting_threads.entry(a).or_default().push(rt);
                }
            }
        }
    }
    let since: HashMap<u64, Instant> = snap.sessions.iter().map(|(u, s, _)| (*u, *s)).collect();
    for cycle in cycles(&edges) {
        // the youngest statement gives way (it has done the least waiting)
        let Some(victim) = cycle.iter().copied().max_by_key(|u| (since.get(u).copied(), *u)) else { continue };
        if !d.choose(victim) {
            continue;
        }
        tracing::info!(session = victim, cycle = ?cycle, "distributed deadlock: interrupting the youngest transaction");
        for (addr, thread) in waiting_threads.get(&victim).cloned().unwrap_or_default() {
            let _ = run_on(eps, control, &addr, &format!("KILL QUERY {thread}"), timeout).await;
        }
        // the graph changed: the next tick looks again
        break;
    }
}

async fn lock_waits(
    eps: &HashMap<Arc<str>, Arc<Endpoint>>,
    control: &mut HashMap<Arc<str>, BackendConn>,
    addr: &Arc<str>,
    timeout: Duration,
) -> Option<Vec<(u32, u32)>> {
    let rows = run_on(eps, control, addr, LOCK_WAITS, timeout).await?;
    let num = |v: &Option<Vec<u8>>| v.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok());
    Some(
        rows.iter()
            .filter_map(|r| match r.as_slice() {
                [a, b] => Some((num(a)?, num(b)?)),
                _ => None,
            })
            .collect(),
    )
}

/// A statement on the server's control connection (opened on first use, dropped on any error).
async fn run_on(
    eps: &HashMap<Arc<str>, Arc<Endpoint>>,
    control: &mut HashMap<Arc<str>, BackendConn>,
    addr: &Arc<str>,
    sql: &str,
    timeout: Duration,
) -> Option<Vec<Vec<Option<Vec<u8>>>>> {
    let ep = eps.get(addr).cloned()?;
    let r = tokio::time::timeout(timeout, async {
        if !control.contains_key(addr) {
            let c = BackendConn::connect(ep, Variant::default(), timeout).await?;
            control.insert(addr.clone(), c);
        }
        match control.get_mut(addr) {
            Some(c) => c.query_rows(sql).await,
            None => Err(crate::error::Error::unsupported("no control connection")),
        }
    })
    .await;
    match r {
        Ok(Ok(rows)) => Some(rows),
        Ok(Err(e)) => {
            tracing::warn!(server = %addr, error = %e, "deadlock detector: statement failed");
            control.remove(addr);
            None
        }
        Err(_) => {
            control.remove(addr);
            None
        }
    }
}

/// The cycles of a wait-for graph, each once (as the list of its sessions).
fn cycles(edges: &HashMap<u64, HashSet<u64>>) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    let mut done: HashSet<u64> = HashSet::new();
    let mut starts: Vec<u64> = edges.keys().copied().collect();
    starts.sort_unstable();
    for s in starts {
        if done.contains(&s) {
            continue;
        }
        // iterative DFS keeping the current path
        let mut path: Vec<u64> = vec![s];
        let mut iters: Vec<Vec<u64>> = vec![sorted(edges.get(&s))];
        let mut on_path: HashSet<u64> = HashSet::from([s]);
        while let Some(top) = iters.last_mut() {
            let Some(next) = top.pop() else {
                iters.pop();
                if let Some(x) = path.pop() {
                    on_path.remove(&x);
                    done.insert(x);
                }
                continue;
            };
            if on_path.contains(&next) {
                if let Some(at) = path.iter().position(|x| *x == next) {
                    let c = path[at..].to_vec();
                    let mut key = c.clone();
                    key.sort_unstable();
                    if !out.iter().any(|o| {
                        let mut k = o.clone();
                        k.sort_unstable();
                        k == key
                    }) {
                        out.push(c);
                    }
                }
                continue;
            }
            if done.contains(&next) {
                continue;
            }
            path.push(next);
            on_path.insert(next);
            iters.push(sorted(edges.get(&next)));
        }
        done.insert(s);
    }
    out
}

fn sorted(s: Option<&HashSet<u64>>) -> Vec<u64> {
    let mut v: Vec<u64> = s.map(|s| s.iter().copied().collect()).unwrap_or_default();
    v.sort_unstable_by(|a, b| b.cmp(a)); // popped from the end: smallest first
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(e: &[(u64, u64)]) -> HashMap<u64, HashSet<u64>> {
        let mut g: HashMap<u64, HashSet<u64>> = HashMap::new();
        for (a, b) in e {
            g.entry(*a).or_default().insert(*b);
        }
        g
    }

    #[test]
    fn finds_each_cycle_once() {
        assert!(cycles(&graph(&[(1, 2), (2, 3)])).is_empty());
        assert_eq!(cycles(&graph(&[(1, 2), (2, 1)])), vec![vec![1, 2]]);
        let c = cycles(&graph(&[(1, 2), (2, 3), (3, 1), (4, 1)]));
        assert_eq!(c, vec![vec![1, 2, 3]]);
        let c = cycles(&graph(&[(1, 2), (2, 1), (3, 4), (4, 3), (5, 3)]));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn victims_are_chosen_once_and_reported_at_the_end() {
        let d = Deadlocks::default();
        d.waiting.lock().insert(7, Waiting { since: Instant::now(), threads: vec![], victim: false });
        d.waiting.lock().insert(8, Waiting { since: Instant::now(), threads: vec![], victim: false });
        assert!(d.snapshot(Duration::from_secs(60)).is_none(), "nobody has waited long");
        assert!(d.snapshot(Duration::ZERO).is_some());
        assert!(d.choose(7));
        assert!(!d.choose(7));
        assert!(!d.choose(9), "a statement that ended cannot be chosen");
        assert!(d.end(7));
        assert!(!d.end(8));
    }
}
