//! Two-phase commit's coordinator, beside the trip: XIDs unique per proxy instance and start, the
//! commit decisions (through `log`), what is still owed to which dataNode, and recovery (`recover`).

pub mod log;
pub mod recover;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// formatID of shardcat's XIDs ("SCAT").
pub const FORMAT_ID: u32 = 0x5343_4154;

/// One branch of a global transaction: its XID as XA statements write it.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub gtrid: Arc<str>,
    pub node: Arc<str>,
}

impl Branch {
    /// `X'gtrid',X'bqual',formatID` (the dataNode's name is the branch qualifier: two dataNodes on
    /// one server are two branches).
    pub fn sql(&self) -> String {
        crate::backend::binlog::xid_text(FORMAT_ID, self.gtrid.as_bytes(), self.node.as_bytes())
    }
}

/// ER_XAER_NOTA: the XID is not (or no longer) known to the server.
pub const ER_XAER_NOTA: u16 = 1397;

/// An XID a recovery found that is not this proxy's: left alone, reported.
#[derive(Debug, Clone)]
pub struct Foreign {
    pub host: String,
    pub format: i64,
    pub gtrid: String,
    pub bqual: String,
}

pub struct Coordinator {
    pub instance: String,
    pub boot: u64,
    seq: AtomicU64,
    log: log::Log,
    /// Decided transactions whose XA COMMIT some dataNode still owes: gtrid → those dataNodes, and
    /// whether their session left them to recovery (a node failed or the proxy restarted).
    pending: Mutex<BTreeMap<String, (Vec<String>, bool)>>,
    /// How many of them were left to recovery (reads on their dataNodes wait).
    left_count: AtomicUsize,
    /// Transactions a session is preparing or committing now: recovery leaves them to it.
    in_flight: Mutex<HashSet<String>>,
    /// Woken when a pending decision is finished, or is new (recovery looks at once).
    pub changed: tokio::sync::Notify,
    /// Foreign XIDs by host, as the last recovery of that host saw them.
    pub foreign: Mutex<HashMap<String, Vec<Foreign>>>,
    /// Test-only: a pause between the logged decision and the first XA COMMIT
    /// (`SHARDCAT_XA_COMMIT_DELAY_MS`), so that a test can kill the proxy there.
    pub commit_delay: Option<Duration>,
}

impl Coordinator {
    /// Opens the coordinator log (server.xml `XARecoveryLogBaseDir`/`XARecoveryLogBaseName`); what it
    /// still owes from earlier runs is pending until recovery finishes it.
    pub async fn open(dir: std::path::PathBuf, base: String) -> Result<Arc<Self>, String> {
        let (log, rec) = log::open(dir, base).await?;
        let commit_delay = std::env::var("SHARDCAT_XA_COMMIT_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let n = rec.pending.len();
        if n > 0 {
            tracing::warn!(transactions = n, "XA: decided transactions from an earlier run wait for recovery");
        }
        Ok(Arc::new(Coordinator {
            instance: rec.instance,
            boot: rec.boot,
            seq: AtomicU64::new(0),
            log,
            pending: Mutex::new(rec.pending.into_iter().map(|(g, n)| (g, (n, true))).collect()),
            left_count: AtomicUsize::new(n),
            in_flight: Mutex::new(HashSet::new()),
            changed: tokio::sync::Notify::new(),
            foreign: Mutex::new(HashMap::new()),
            commit_delay,
        }))
    }

    /// The prefix of every gtrid of this proxy instance (all its starts).
    pub fn prefix(&self) -> String {
        format!("sc.{}.", self.instance)
    }

    /// A new global transaction id: instance, start, sequence — never one an earlier start used.
    pub fn next_gtrid(&self) -> Arc<str> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        Arc::from(format!("{}{}.{n}", self.prefix(), self.boot).as_str())
    }

    /// A session starts preparing `gtrid`: recovery must not roll it back under it.
    pub fn begin_flight(&self, gtrid: &str) {
        self.in_flight.lock().insert(gtrid.to_string());
    }

    pub fn end_flight(&self, gtrid: &str) {
        self.in_flight.lock().remove(gtrid);
    }

    pub fn in_flight(&self, gtrid: &str) -> bool {
        self.in_flight.lock().contains(gtrid)
    }

    /// Logs the decision to commit `gtrid` on `nodes` durably (fsync) and marks it pending on them.
    pub async fn decide(&self, gtrid: &str, nodes: &[String]) -> Result<(), String> {
        self.log.decide(gtrid, nodes).await?;
        self.pending.lock().insert(gtrid.to_string(), (nodes.to_vec(), false));
        Ok(())
    }

    /// The session could not commit every branch of `gtrid`: recovery finishes it, and reads on the
    /// dataNodes that owe it wait until then.
    pub fn leave(&self, gtrid: &str) {
        let mut p = self.pending.lock();
        if let Some((_, left)) = p.get_mut(gtrid) {
            *left = true;
        }
        self.left_count.store(p.values().filter(|(_, l)| *l).count(), Ordering::Release);
        drop(p);
        self.changed.notify_waiters();
    }

    /// Branches of `gtrid` committed: those dataNodes owe it nothing more. When none is left, the log
    /// learns the transaction is finished.
    pub fn committed(&self, gtrid: &str, nodes: &[&str]) {
        let finished = {
            let mut p = self.pending.lock();
            let finished = match p.get_mut(gtrid) {
                Some((owed, _)) => {
                    owed.retain(|n| !nodes.contains(&n.as_str()));
                    owed.is_empty()
                }
                None => false,
            };
            if finished {
                p.remove(gtrid);
            }
            self.left_count.store(p.values().filter(|(_, l)| *l).count(), Ordering::Release);
            finished
        };
        if finished {
            self.log.done(gtrid);
            self.changed.notify_waiters();
        }
    }

    /// Whether a decided transaction left to recovery still owes its XA COMMIT on `node` (reads there
    /// wait for it).
    pub fn pending_on(&self, node: &str) -> bool {
        self.left_count.load(Ordering::Acquire) > 0
            && self.pending.lock().values().any(|(ns, left)| *left && ns.iter().any(|n| n == node))
    }

    /// The decisions left to recovery: gtrid → the dataNodes that still owe their XA COMMIT.
    pub fn pending(&self) -> BTreeMap<String, Vec<String>> {
        self.pending.lock().iter().filter(|(_, (_, left))| *left).map(|(g, (n, _))| (g.clone(), n.clone())).collect()
    }

    /// Whether `gtrid` was decided (and some branch is still owed).
    pub fn decided(&self, gtrid: &str) -> bool {
        self.pending.lock().contains_key(gtrid)
    }

    /// Whether `gtrid` is one of this instance's.
    pub fn ours(&self, format: i64, gtrid: &str) -> bool {
        format == i64::from(FORMAT_ID) && gtrid.starts_with(&self.prefix())
    }

    /// Waits until `node` owes no decided commit, up to `wait`; false when it still does.
    pub async fn settled(&self, node: &str, wait: Duration) -> bool {
        // every statement asks: nothing owed is one atomic load
        if !self.pending_on(node) {
            return true;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            if !self.pending_on(node) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return !self.pending_on(node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gtrids_differ_across_starts_and_pending_follows_commits() {
        let dir = tempfile::tempdir().unwrap();
        let a = Coordinator::open(dir.path().into(), "tm".into()).await.unwrap();
        let g1 = a.next_gtrid();
        let g2 = a.next_gtrid();
        assert_ne!(g1, g2);
        assert!(a.ours(i64::from(FORMAT_ID), &g1));
        assert!(!a.ours(1, &g1));
        a.decide(&g1, &["dn1".into(), "dn2".into()]).await.unwrap();
        // a session committing it: nobody waits on it
        assert!(!a.pending_on("dn2"));
        a.leave(&g1);
        assert!(a.pending_on("dn2"));
        a.committed(&g1, &["dn1"]);
        assert!(a.pending_on("dn2") && !a.pending_on("dn1"));
        a.decide(&g2, &["dn3".into()]).await.unwrap();
        drop(a);
        // the writer task lets the log go once it sees its last sender gone
        let mut b = Coordinator::open(dir.path().into(), "tm".into()).await;
        for _ in 0..100 {
            if b.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            b = Coordinator::open(dir.path().into(), "tm".into()).await;
        }
        let b = b.unwrap();
        // a new start never reuses an XID, and what was owed is still owed
        assert_ne!(b.next_gtrid(), g1);
        assert!(b.ours(i64::from(FORMAT_ID), &g1));
        assert!(b.pending_on("dn2") && b.pending_on("dn3"));
        b.committed(&g1, &["dn2"]);
        assert!(!b.settled("dn2", Duration::from_millis(1)).await || !b.pending_on("dn2"));
        assert!(b.settled("dn2", Duration::from_millis(1)).await);
        assert!(!b.settled("dn3", Duration::from_millis(10)).await);
        assert_eq!(Branch { gtrid: Arc::from("ab"), node: Arc::from("d") }.sql(), "X'6162',X'64',1396916564");
    }
}
