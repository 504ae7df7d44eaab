//! What the proxy counts about its clients' work, beside the trip (a leaf: it depends on nothing of
//! shardcat's): commands by kind (`show @@command`) and slow statements (`show @@sql.slow`).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Client commands by kind, as `show @@command` lists them.
#[derive(Default)]
pub struct Commands {
    pub init_db: AtomicU64,
    pub query: AtomicU64,
    pub stmt_prepare: AtomicU64,
    pub stmt_execute: AtomicU64,
    pub stmt_close: AtomicU64,
    pub ping: AtomicU64,
    pub kill: AtomicU64,
    pub quit: AtomicU64,
    pub other: AtomicU64,
}

impl Commands {
    /// Counts one command by its first payload byte.
    pub fn count(&self, cmd: u8) {
        let c = match cmd {
            0x02 => &self.init_db,
            0x03 => &self.query,
            0x16 => &self.stmt_prepare,
            0x17 => &self.stmt_execute,
            0x19 => &self.stmt_close,
            0x0E => &self.ping,
            0x0C => &self.kill,
            0x01 => &self.quit,
            _ => &self.other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// (column, value) in `show @@command`'s order.
    pub fn values(&self) -> [(&'static str, u64); 9] {
        let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("INIT_DB", v(&self.init_db)),
            ("QUERY", v(&self.query)),
            ("STMT_PREPARE", v(&self.stmt_prepare)),
            ("STMT_EXECUTE", v(&self.stmt_execute)),
            ("STMT_CLOSE", v(&self.stmt_close)),
            ("PING", v(&self.ping)),
            ("KILL", v(&self.kill)),
            ("QUIT", v(&self.quit)),
            ("OTHER", v(&self.other)),
        ]
    }
}

/// One statement that took at least the slow threshold.
#[derive(Debug, Clone)]
pub struct Slow {
    pub user: String,
    pub schema: String,
    pub ip: String,
    pub start: SystemTime,
    pub took: Duration,
    pub sql: String,
}

/// The most recent slow statements (at most `KEPT`), and the threshold (`sqlSlowTime`, `reload
/// @@sqlslow=ms`).
pub struct SlowLog {
    threshold_ms: AtomicU64,
    kept: Mutex<VecDeque<Slow>>,
}

const KEPT: usize = 1000;
/// Longest statement text kept (and logged) per slow entry.
const SQL_KEPT: usize = 4096;

impl SlowLog {
    pub fn new(threshold_ms: u64) -> Self {
        SlowLog { threshold_ms: AtomicU64::new(threshold_ms), kept: Mutex::new(VecDeque::new()) }
    }

    pub fn threshold(&self) -> Duration {
        Duration::from_millis(self.threshold_ms.load(Ordering::Relaxed))
    }

    pub fn set_threshold(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// Keeps and logs `s` when it took at least the threshold.
    pub fn offer(&self, mut s: Slow) {
        if s.took < self.threshold() {
            return;
        }
        if s.sql.len() > SQL_KEPT {
            let mut end = SQL_KEPT;
            while !s.sql.is_char_boundary(end) {
                end -= 1;
            }
            s.sql.truncate(end);
        }
        tracing::warn!(user = %s.user, schema = %s.schema, ip = %s.ip, ms = s.took.as_millis() as u64, sql = %s.sql, "slow statement");
        let mut kept = self.kept.lock();
        if kept.len() >= KEPT {
            kept.pop_front();
        }
        kept.push_back(s);
    }

    /// The kept entries, oldest first.
    pub fn entries(&self) -> Vec<Slow> {
        self.kept.lock().iter().cloned().collect()
    }

    /// Forgets the entries of `schema` (every entry when `None`); how many were forgotten.
    pub fn clear(&self, schema: Option<&str>) -> usize {
        let mut kept = self.kept.lock();
        let before = kept.len();
        kept.retain(|s| schema.is_some_and(|x| !s.schema.eq_ignore_ascii_case(x)));
        before - kept.len()
    }
}

/// Everything counted, shared by every session.
pub struct Stats {
    pub commands: Commands,
    pub slow: SlowLog,
}

impl Stats {
    pub fn new(slow_ms: u64) -> Self {
        Stats { commands: Commands::default(), slow: SlowLog::new(slow_ms) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(schema: &str, ms: u64) -> Slow {
        Slow {
            user: "u".into(),
            schema: schema.into(),
            ip: "127.0.0.1".into(),
            start: SystemTime::now(),
            took: Duration::from_millis(ms),
            sql: "SELECT SLEEP(1)".into(),
        }
    }

    #[test]
    fn slow_log_keeps_what_passes_the_threshold_and_clears_by_schema() {
        let log = SlowLog::new(100);
        log.offer(slow("a", 99));
        log.offer(slow("a", 100));
        log.offer(slow("b", 500));
        assert_eq!(log.entries().len(), 2);
        assert_eq!(log.clear(Some("A")), 1);
        assert_eq!(log.entries()[0].schema, "b");
        log.set_threshold(1000);
        log.offer(slow("b", 999));
        assert_eq!(log.entries().len(), 1);
        assert_eq!(log.clear(None), 1);
        let c = Commands::default();
        c.count(0x03);
        c.count(0x03);
        c.count(0x7F);
        assert_eq!(c.values()[1], ("QUERY", 2));
        assert_eq!(c.values()[8], ("OTHER", 1));
    }
}
