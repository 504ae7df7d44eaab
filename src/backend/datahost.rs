//! One dataHost at run time: its writeHosts and readHosts (pool + health each), which writeHost is
//! current (persisted in dnindex.properties, Mycat's format), and the choice of the host that serves a
//! read under `balance`/`balanceType`, `slaveThreshold` and a session's read-your-writes position.

use parking_lot::Mutex;
use rand::Rng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::pool::HostPool;
use crate::config::model::DataHost;
use crate::registry::{gtid, Health};

pub struct Member {
    pub name: String,
    pub pool: Arc<HostPool>,
    pub health: Arc<Health>,
    pub weight: u32,
}

pub struct DataHostSet {
    pub cfg: DataHost,
    pub writers: Vec<Member>,
    /// readHosts of each writeHost.
    pub readers: Vec<Vec<Member>>,
    current: AtomicUsize,
    rr: AtomicUsize,
    pub dnindex: Option<Arc<DnIndex>>,
    pub switching: Mutex<()>,
    /// Removed or replaced by a reload: its heartbeats stop, its connections close when released.
    retired: std::sync::atomic::AtomicBool,
    /// `stop @@heartbeat dh:seconds`: no probes until then.
    paused_until: Mutex<Option<std::time::Instant>>,
    /// Where its binlog reader is (`backend::binlog`), when one runs.
    pub binlog: crate::registry::binlog::Binlog,
}

/// dnindex.properties: every dataHost's current writeHost index, kept in memory and persisted by one
/// writer task (a whole snapshot per write, to a temporary file renamed over the old one), so that
/// failovers of several dataHosts at once are all persisted and nothing blocks the runtime.
pub struct DnIndex {
    path: PathBuf,
    current: parking_lot::Mutex<std::collections::BTreeMap<String, usize>>,
    changed: Arc<tokio::sync::Notify>,
    /// Writes completed (tests wait on it).
    pub written: Arc<std::sync::atomic::AtomicU64>,
}

impl DnIndex {
    /// Loads `path` (read once, at start) and starts its writer on the current runtime.
    pub fn open(path: PathBuf) -> Arc<Self> {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let current = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                Some((k.trim().to_string(), v.trim().parse().ok()?))
            })
            .collect();
        let d = Arc::new(DnIndex {
            path,
            current: parking_lot::Mutex::new(current),
            changed: Arc::new(tokio::sync::Notify::new()),
            written: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(Self::writer(Arc::downgrade(&d), d.changed.clone()));
        }
        d
    }

    pub fn get(&self, data_host: &str) -> Option<usize> {
        self.current.lock().get(data_host).copied()
    }

    /// Records a dataHost's index; the writer persists it soon after.
    pub fn set(&self, data_host: &str, index: usize) {
        self.current.lock().insert(data_host.to_string(), index);
        self.changed.notify_one();
    }

    fn render(&self) -> String {
        let lines: Vec<String> = self.current.lock().iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("#update\n#{}\n{}\n", chrono::Utc::now().to_rfc3339(), lines.join("\n"))
    }

    async fn writer(me: std::sync::Weak<DnIndex>, changed: Arc<tokio::sync::Notify>) {
        loop {
            changed.notified().await;
            let Some(d) = me.upgrade() else { return };
            let text = d.render();
            let tmp = d.path.with_extension(format!("properties.{}.tmp", std::process::id()));
            let r = async {
                tokio::fs::write(&tmp, text).await?;
                tokio::fs::rename(&tmp, &d.path).await
            }
            .await;
            match r {
                Ok(()) => {
                    d.written.fetch_add(1, std::sync::atomic::Ordering::Release);
                }
                Err(e) => tracing::warn!(path = %d.path.display(), error = %e, "cannot persist dnindex.properties"),
            }
        }
    }
}

impl DataHostSet {
    pub fn new(
        cfg: DataHost,
        writers: Vec<Member>,
        readers: Vec<Vec<Member>>,
        current: usize,
        dnindex: Option<Arc<DnIndex>>,
    ) -> Self {
        let current = if current < writers.len() { current } else { 0 };
        crate::stats::data_host(&cfg.name);
        DataHostSet {
            cfg,
            writers,
            readers,
            current: AtomicUsize::new(current),
            rr: AtomicUsize::new(0),
            dnindex,
            switching: Mutex::new(()),
            retired: std::sync::atomic::AtomicBool::new(false),
            binlog: Default::default(),
            paused_until: Mutex::new(None),
        }
    }

    /// A reload removed or replaced this dataHost: heartbeats end, idle connections close now and
    /// borrowed ones when they are released (statements and transactions on them finish first).
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        for m in self.writers.iter().chain(self.readers.iter().flatten()) {
            m.pool.retire();
        }
    }

    /// Pauses the heartbeats of every host for `d` (`stop @@heartbeat`): health stays as last seen.
    pub fn pause_heartbeat(&self, d: std::time::Duration) {
        *self.paused_until.lock() = Some(std::time::Instant::now() + d);
    }

    /// How long the heartbeats are still paused, if they are.
    pub fn heartbeat_paused(&self) -> Option<std::time::Duration> {
        let until = (*self.paused_until.lock())?;
        until.checked_duration_since(std::time::Instant::now()).filter(|d| !d.is_zero())
    }

    pub fn retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub fn current_index(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// The host for a write: the current writeHost; with `writeType="1"` (multi-master setups, no
    /// failover) a random alive writeHost, the current one when none is.
    pub fn writer(&self) -> &Member {
        if self.cfg.write_type == 1 {
            let alive: Vec<&Member> = self.writers.iter().filter(|w| w.health.alive()).collect();
            if !alive.is_empty() {
                return alive[rand::rng().random_range(0..alive.len())];
            }
        }
        &self.writers[self.current_index().min(self.writers.len().saturating_sub(1))]
    }

    /// Makes writeHost `i` current and persists it (dnindex.properties keeps every dataHost's index).
    pub fn set_current(&self, i: usize) {
        self.current.store(i, Ordering::Release);
        if let Some(d) = &self.dnindex {
            d.set(&self.cfg.name, i);
        }
    }

    /// The host for a read: by `balance`, among hosts fit to read (and, for a session that wrote, that
    /// have applied its write); the current writeHost when none is.
    pub fn reader(&self, need_gtid: Option<&str>) -> &Member {
        self.pick_reader(self.cfg.balance, need_gtid)
    }

    /// The host for a read the client sent to a replica (`db_type=slave`): a readHost fit to read,
    /// whatever `balance` says; the current writeHost when none is.
    pub fn replica(&self, need_gtid: Option<&str>) -> &Member {
        self.pick_reader(3, need_gtid)
    }

    fn pick_reader(&self, balance: u8, need_gtid: Option<&str>) -> &Member {
        let cur = self.current_index();
        let threshold = self.cfg.slave_threshold;
        let writer_alive = |i: usize| self.writers.get(i).is_some_and(|w| w.health.alive());
        let fit = |m: &Member| {
            m.health.readable(threshold) && need_gtid.is_none_or(|g| gtid::covers(&m.health.facts.read().gtid, g))
        };
        let mut candidates: Vec<&Member> = Vec::new();
        for (i, w) in self.writers.iter().enumerate() {
            let group_ok = writer_alive(i) || self.cfg.temp_read_host_available;
            // balance 1: the standby writeHosts too; balance 2: every writeHost; 3: replicas only
            let writer_reads = (balance == 1 && i != cur) || balance == 2;
            // with promotion on, a standby writeHost reads only once it is known to be a read-only replica
            let standby_ok = i == cur || !self.cfg.promote_replica || w.health.facts.read().read_only == Some(true);
            if writer_reads && standby_ok && fit(w) {
                candidates.push(w);
            }
            if balance >= 1 && group_ok {
                candidates.extend(self.readers.get(i).into_iter().flatten().filter(|r| fit(r)));
            }
        }
        if candidates.is_empty() {
            return self.writer();
        }
        let weight = |m: &Member| m.weight.max(1) as usize;
        match self.cfg.balance_type {
            1 => {
                let total: usize = candidates.iter().map(|m| weight(m)).sum();
                let mut k = self.rr.fetch_add(1, Ordering::Relaxed) % total.max(1);
                for m in &candidates {
                    if k < weight(m) {
                        return m;
                    }
                    k -= weight(m);
                }
                candidates[0]
            }
            2 => candidates.iter().min_by_key(|m| m.pool.in_use()).copied().unwrap_or(candidates[0]),
            _ => {
                let total: usize = candidates.iter().map(|m| weight(m)).sum();
                let mut k = rand::rng().random_range(0..total.max(1));
                for m in &candidates {
                    if k < weight(m) {
                        return m;
                    }
                    k -= weight(m);
                }
                candidates[0]
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backend::conn::Endpoint;
    use std::time::Duration;

    pub(crate) fn member(name: &str, weight: u32) -> Member {
        let endpoint = Endpoint {
            addr: format!("{name}:3306"),
            user: "u".into(),
            password: "p".into(),
            data_host: "dh".into(),
            host_name: name.into(),
            max_con: 4,
            tls: None,
        };
        let health = Arc::new(Health::default());
        health.facts.write().read_only = Some(name != "w0");
        Member { name: name.into(), pool: HostPool::new(endpoint, 4, 0, Duration::from_secs(60)), health, weight }
    }

    /// Writer w0 (current) with its replica r0, and a standby writeHost w1 (a read-only replica).
    pub(crate) fn set(balance: u8, balance_type: u8, write_type: u8, promote_replica: bool) -> DataHostSet {
        let cfg = DataHost {
            name: "dh".into(),
            max_con: 4,
            min_con: 0,
            balance,
            balance_type,
            write_type,
            switch_type: 1,
            slave_threshold: 10,
            temp_read_host_available: false,
            db_type: "mysql".into(),
            db_driver: "native".into(),
            max_retry_count: 2,
            not_switch: false,
            heartbeat: "select 1".into(),
            connection_init_sql: None,
            promote_replica,
            write_hosts: vec![],
            line: 1,
        };
        DataHostSet::new(cfg, vec![member("w0", 1), member("w1", 1)], vec![vec![member("r0", 3)], vec![]], 0, None)
    }

    fn picks(s: &DataHostSet, n: usize, need: Option<&str>) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for _ in 0..n {
            *m.entry(s.reader(need).name.clone()).or_insert(0) += 1;
        }
        m
    }

    fn names(m: &std::collections::BTreeMap<String, usize>) -> Vec<&str> {
        m.keys().map(String::as_str).collect()
    }

    #[test]
    fn balance_decides_who_reads() {
        assert_eq!(names(&picks(&set(0, 0, 0, false), 50, None)), ["w0"]);
        assert_eq!(names(&picks(&set(1, 0, 0, false), 200, None)), ["r0", "w1"]);
        assert_eq!(names(&picks(&set(2, 0, 0, false), 300, None)), ["r0", "w0", "w1"]);
        assert_eq!(names(&picks(&set(3, 0, 0, false), 50, None)), ["r0"]);
        // db_type=slave: a readHost whatever balance says
        assert_eq!(set(0, 0, 0, false).replica(None).name, "r0");
    }

    #[test]
    fn weighted_round_robin_follows_weights() {
        let m = picks(&set(1, 1, 0, false), 400, None);
        assert_eq!((m["r0"], m["w1"]), (300, 100), "{m:?}");
    }

    #[test]
    fn unfit_hosts_get_no_reads() {
        let s = set(3, 0, 0, false);
        s.readers[0][0].health.facts.write().alive = false;
        assert_eq!(names(&picks(&s, 20, None)), ["w0"], "a dead replica: the writer reads");
        let s = set(3, 0, 0, false);
        {
            let mut f = s.readers[0][0].health.facts.write();
            (f.replicating, f.io_running, f.sql_running, f.lag) = (true, true, true, Some(11));
        }
        assert_eq!(names(&picks(&s, 20, None)), ["w0"], "past slaveThreshold");
        s.readers[0][0].health.facts.write().lag = Some(10);
        assert_eq!(names(&picks(&s, 20, None)), ["r0"], "within slaveThreshold");
        s.readers[0][0].health.facts.write().sql_running = false;
        assert_eq!(names(&picks(&s, 20, None)), ["w0"], "SQL thread stopped");
    }

    #[test]
    fn a_dead_write_hosts_replicas_read_only_with_temp_read_host_available() {
        let s = set(3, 0, 0, false);
        s.writers[0].health.facts.write().alive = false;
        assert_eq!(names(&picks(&s, 20, None)), ["w0"]);
        let mut cfg = s.cfg.clone();
        cfg.temp_read_host_available = true;
        let s =
            DataHostSet::new(cfg, vec![member("w0", 1), member("w1", 1)], vec![vec![member("r0", 1)], vec![]], 0, None);
        s.writers[0].health.facts.write().alive = false;
        assert_eq!(names(&picks(&s, 20, None)), ["r0"]);
    }

    #[test]
    fn read_your_writes_waits_for_a_covering_replica() {
        let s = set(3, 0, 0, false);
        s.readers[0][0].health.facts.write().gtid = "1-3307-41".into();
        assert_eq!(s.reader(Some("1-3307-42")).name, "w0");
        s.readers[0][0].health.facts.write().gtid = "1-3307-42".into();
        assert_eq!(s.reader(Some("1-3307-42")).name, "r0");
    }

    #[test]
    fn with_promotion_a_standby_reads_only_once_known_read_only() {
        let s = set(1, 0, 0, true);
        s.writers[1].health.facts.write().read_only = None;
        assert_eq!(names(&picks(&s, 50, None)), ["r0"]);
        s.writers[1].health.facts.write().read_only = Some(true);
        assert_eq!(names(&picks(&s, 200, None)), ["r0", "w1"]);
        s.writers[1].health.facts.write().fenced = true;
        assert_eq!(names(&picks(&s, 50, None)), ["r0"]);
    }

    #[test]
    fn write_type_one_spreads_writes_over_alive_write_hosts() {
        let s = set(0, 0, 1, false);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..100 {
            seen.insert(s.writer().name.clone());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["w0", "w1"]);
        s.writers[0].health.facts.write().alive = false;
        assert!((0..50).all(|_| s.writer().name == "w1"));
        assert_eq!(set(0, 0, 0, false).writer().name, "w0");
    }

    #[tokio::test]
    async fn concurrent_failovers_are_all_persisted() {
        let dir = std::env::temp_dir().join(format!("dnindex-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("dnindex.properties");
        std::fs::write(&p, "#update\nhost0=1\n").unwrap();
        let d = DnIndex::open(p.clone());
        assert_eq!(d.get("host0"), Some(1));
        let tasks: Vec<_> = (1..=8)
            .map(|i| {
                let d = d.clone();
                tokio::spawn(async move { d.set(&format!("host{i}"), i % 3) })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let t0 = std::time::Instant::now();
        loop {
            let text = tokio::fs::read_to_string(&p).await.unwrap_or_default();
            if (1..=8).all(|i| text.contains(&format!("host{i}={}", i % 3))) && text.contains("host0=1") {
                assert!(text.starts_with("#update\n#"), "{text}");
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "not all persisted: {text}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let reopened = DnIndex::open(p);
        assert_eq!(reopened.get("host8"), Some(2));
        let _ = std::fs::remove_dir_all(dir);
    }
}
