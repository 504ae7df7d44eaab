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
    pub dnindex: Option<PathBuf>,
    pub switching: Mutex<()>,
}

impl DataHostSet {
    pub fn new(
        cfg: DataHost,
        writers: Vec<Member>,
        readers: Vec<Vec<Member>>,
        current: usize,
        dnindex: Option<PathBuf>,
    ) -> Self {
        let current = if current < writers.len() { current } else { 0 };
        DataHostSet {
            cfg,
            writers,
            readers,
            current: AtomicUsize::new(current),
            rr: AtomicUsize::new(0),
            dnindex,
            switching: Mutex::new(()),
        }
    }

    pub fn current_index(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    pub fn writer(&self) -> &Member {
        &self.writers[self.current_index().min(self.writers.len().saturating_sub(1))]
    }

    /// Makes writeHost `i` current and persists it (dnindex.properties keeps every dataHost's index).
    pub fn set_current(&self, i: usize) {
        self.current.store(i, Ordering::Release);
        if let Some(path) = &self.dnindex {
            if let Err(e) = write_dnindex(path, &self.cfg.name, i) {
                tracing::warn!(path = %path.display(), error = %e, "cannot persist dnindex.properties");
            }
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

/// Reads `<dataHost>=<index>` from dnindex.properties.
pub fn read_dnindex(path: &std::path::Path, data_host: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == data_host).then(|| v.trim().parse().ok()).flatten()
    })
}

fn write_dnindex(path: &std::path::Path, data_host: &str, index: usize) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<String> =
        old.lines().filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty()).map(str::to_string).collect();
    lines.retain(|l| l.split_once('=').is_none_or(|(k, _)| k.trim() != data_host));
    lines.push(format!("{data_host}={index}"));
    let text = format!("#update\n#{}\n{}\n", chrono::Utc::now().to_rfc3339(), lines.join("\n"));
    let tmp = path.with_extension("properties.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnindex_round_trip() {
        let dir = std::env::temp_dir().join(format!("dnindex-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("dnindex.properties");
        write_dnindex(&p, "host1", 1).unwrap();
        write_dnindex(&p, "host2", 0).unwrap();
        write_dnindex(&p, "host1", 2).unwrap();
        assert_eq!(read_dnindex(&p, "host1"), Some(2));
        assert_eq!(read_dnindex(&p, "host2"), Some(0));
        assert_eq!(read_dnindex(&p, "host3"), None);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("#update\n#"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
