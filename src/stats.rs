//! What the proxy counts about its clients' work, beside the trip (a leaf: it depends on nothing of
//! shardcat's): commands by kind (`show @@command`), slow statements (`show @@sql.slow`), and the
//! counters and histograms the HTTP port's /metrics renders (through the `metrics` facade).

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

    /// A command's name as a metrics label.
    pub fn name(cmd: u8) -> &'static str {
        match cmd {
            0x01 => "quit",
            0x02 => "init_db",
            0x03 => "query",
            0x04 => "field_list",
            0x09 => "statistics",
            0x0C => "process_kill",
            0x0E => "ping",
            0x11 => "change_user",
            0x16 => "stmt_prepare",
            0x17 => "stmt_execute",
            0x18 => "stmt_send_long_data",
            0x19 => "stmt_close",
            0x1A => "stmt_reset",
            0x1B => "set_option",
            0x1C => "stmt_fetch",
            0x1F => "reset_connection",
            _ => "other",
        }
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

/// The names of the metrics recorded through the `metrics` facade (the HTTP port renders them).
pub mod names {
    pub const XA: &str = "shardcat_xa_transactions_total";
    pub const STATEMENTS: &str = "shardcat_statements_total";
    pub const STATEMENT_SECONDS: &str = "shardcat_statement_duration_seconds";
    pub const COMMANDS: &str = "shardcat_commands_total";
    pub const ERRORS: &str = "shardcat_errors_total";
    pub const RECEIVED: &str = "shardcat_client_received_bytes_total";
    pub const SENT: &str = "shardcat_client_sent_bytes_total";
    pub const DATANODE_STATEMENTS: &str = "shardcat_datanode_statements_total";
    pub const DATANODE_ERRORS: &str = "shardcat_datanode_errors_total";
    pub const HOST_STATEMENTS: &str = "shardcat_host_statements_total";
    pub const HOST_ERRORS: &str = "shardcat_host_errors_total";
    pub const POOL_WAIT_SECONDS: &str = "shardcat_pool_wait_duration_seconds";
    pub const FAILOVERS: &str = "shardcat_failovers_total";
    pub const RELOADS: &str = "shardcat_reloads_total";
    pub const BINLOG_TRANSACTIONS: &str = "shardcat_binlog_transactions_total";
    pub const CDC_EVENTS: &str = "shardcat_cdc_events_total";
    pub const CDC_ERRORS: &str = "shardcat_cdc_errors_total";
    pub const CDC_LAG: &str = "shardcat_cdc_lag_seconds";
    pub const INVALIDATIONS: &str = "shardcat_cache_invalidations_total";
    pub const CACHE_LOOKUPS: &str = "shardcat_cache_lookups_total";
    pub const CACHE_STORES: &str = "shardcat_cache_stores_total";
}

/// What each metric means (the `# HELP` lines); called once when the recorder is installed.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(names::CDC_EVENTS, "Change-queue events acknowledged by the feed's broker, by feed");
    describe_counter!(names::CDC_ERRORS, "Change-queue failures (broker, binlog, state dir), by feed");
    metrics::describe_gauge!(
        names::CDC_LAG,
        Unit::Seconds,
        "Change queue: commit on the shard to the broker's acknowledgement, for a feed's last event"
    );
    describe_counter!(names::STATEMENTS, "Client statements (COM_QUERY, COM_STMT_EXECUTE) by kind and result");
    describe_histogram!(names::STATEMENT_SECONDS, Unit::Seconds, "Statement latency as the client sees it");
    describe_counter!(names::COMMANDS, "Client commands by command");
    describe_counter!(names::ERRORS, "Error packets sent to clients, by MySQL error code");
    describe_counter!(names::RECEIVED, Unit::Bytes, "Bytes received from clients");
    describe_counter!(names::SENT, Unit::Bytes, "Bytes sent to clients");
    describe_counter!(names::DATANODE_STATEMENTS, "Statements run on a dataNode");
    describe_counter!(names::DATANODE_ERRORS, "Statements that failed on a dataNode");
    describe_counter!(names::HOST_STATEMENTS, "Statements run on a backend host");
    describe_counter!(names::HOST_ERRORS, "Statements that failed on a backend host");
    describe_histogram!(names::POOL_WAIT_SECONDS, Unit::Seconds, "Time to get a backend connection from a pool");
    describe_counter!(
        names::XA,
        "Transactions across dataNodes by outcome: commit (two-phase), one_phase, rollback, recovered_commit, recovered_rollback"
    );
    describe_counter!(names::FAILOVERS, "writeHost switches of a dataHost (automatic or switch @@datasource)");
    describe_counter!(names::RELOADS, "Configuration reloads by result (ok, refused)");
    describe_counter!(names::BINLOG_TRANSACTIONS, "Transactions the binlog reader of a dataHost processed");
    describe_counter!(names::INVALIDATIONS, "Logical tables whose cached results were invalidated, by source");
    describe_counter!(names::CACHE_LOOKUPS, "Result cache lookups by result (hit, miss)");
    describe_counter!(names::CACHE_STORES, "Replies stored in the result cache");
    // counters a scrape should see at 0 before the first event
    for result in ["ok", "refused"] {
        metrics::counter!(names::RELOADS, "result" => result).increment(0);
    }
}

/// Histogram buckets (seconds) for every `_seconds` histogram.
pub const SECONDS_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// One client command ended: `kind` is the statement's kind for COM_QUERY/COM_STMT_EXECUTE (None
/// for the other commands), `err` the code of the error packet it ended with.
pub fn command(command: &'static str, kind: Option<&'static str>, err: Option<u16>, took: Duration) {
    let result = if err.is_some() { "error" } else { "ok" };
    // the handles of these labels, looked up in the recorder once per worker thread (a lookup hashes
    // the labels and clones the key: a tenth of a cache hit's user time)
    HANDLES.with_borrow_mut(|h| {
        // by the labels' addresses and lengths: each is a &'static str (the same text at two
        // addresses only means two entries holding the same handles)
        let id = |s: &str| (s.as_ptr() as usize, s.len());
        let at = [id(command), kind.map_or((0, 0), id), id(result)];
        let (commands, statements, seconds) = h.entry(at).or_insert_with(|| {
            (
                metrics::counter!(names::COMMANDS, "command" => command),
                kind.map(|kind| metrics::counter!(names::STATEMENTS, "kind" => kind, "result" => result)),
                kind.map(|kind| metrics::histogram!(names::STATEMENT_SECONDS, "kind" => kind)),
            )
        });
        commands.increment(1);
        if let Some(s) = statements {
            s.increment(1);
        }
        if let Some(s) = seconds {
            s.record(took.as_secs_f64());
        }
    });
    if let Some(code) = err {
        metrics::counter!(names::ERRORS, "code" => code.to_string()).increment(1);
    }
}

/// A counter whose name and labels never change, looked up in the recorder once (the recorder is
/// installed before anything counts).
macro_rules! fixed_counter {
    ($($args:tt)*) => {{
        static C: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
        C.get_or_init(|| metrics::counter!($($args)*))
    }};
}
pub(crate) use fixed_counter;

type Handles = (metrics::Counter, Option<metrics::Counter>, Option<metrics::Histogram>);

thread_local! {
    static HANDLES: std::cell::RefCell<foldhash::HashMap<[(usize, usize); 3], Handles>> =
        std::cell::RefCell::new(foldhash::HashMap::default());
}

/// Bytes a client session moved since it last reported.
pub fn client_bytes(received: u64, sent: u64) {
    if received > 0 {
        fixed_counter!(names::RECEIVED).increment(received);
    }
    if sent > 0 {
        fixed_counter!(names::SENT).increment(sent);
    }
}

/// A reload ended (`ok`) or was refused.
pub fn reload(ok: bool) {
    metrics::counter!(names::RELOADS, "result" => if ok { "ok" } else { "refused" }).increment(1);
}

/// A transaction's end by XA (`outcome`: commit, one_phase, rollback, recovered_commit, recovered_rollback).
pub fn xa(outcome: &'static str) {
    metrics::counter!(names::XA, "outcome" => outcome).increment(1);
}

/// A dataHost's writeHost switched.
pub fn failover(data_host: &str) {
    metrics::counter!(names::FAILOVERS, "datahost" => data_host.to_string()).increment(1);
}

/// The result cache's epochs moved for `n` tables.
pub fn invalidations(source: &'static str, n: u64) {
    metrics::counter!(names::INVALIDATIONS, "source" => source).increment(n);
}

/// The binlog reader of a dataHost processed one transaction.
/// A change the broker acknowledged, per feed.
pub fn cdc_event(feed: &str) {
    metrics::counter!(names::CDC_EVENTS, "feed" => feed.to_string()).increment(1);
}

/// Commit on the server → acknowledged by the broker, for a feed's last event (the binlog's
/// timestamps are whole seconds).
pub fn cdc_lag(feed: &str, ms: u64) {
    metrics::gauge!(names::CDC_LAG, "feed" => feed.to_string()).set(ms as f64 / 1000.0);
}

/// A feed's failure (broker, binlog, state dir), per feed.
pub fn cdc_error(feed: &str) {
    metrics::counter!(names::CDC_ERRORS, "feed" => feed.to_string()).increment(1);
}

pub fn binlog_transaction(data_host: &str) {
    metrics::counter!(names::BINLOG_TRANSACTIONS, "datahost" => data_host.to_string()).increment(1);
}

/// A dataHost exists: its failover counter is there, at 0 until the first switch.
pub fn data_host(name: &str) {
    metrics::counter!(names::FAILOVERS, "datahost" => name.to_string()).increment(0);
}

/// Statements run on one dataNode or one host: the Prometheus counters (handles kept, no lookup per
/// statement) and the times `show @@datanode` lists.
pub struct Meter {
    statements: metrics::Counter,
    errors: metrics::Counter,
    executed: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
}

impl Meter {
    pub fn datanode(name: &str) -> Self {
        let l = [("datanode", name.to_string())];
        Self::with(metrics::counter!(names::DATANODE_STATEMENTS, &l), metrics::counter!(names::DATANODE_ERRORS, &l))
    }

    pub fn host(data_host: &str, host: &str) -> Self {
        let l = [("datahost", data_host.to_string()), ("host", host.to_string())];
        Self::with(metrics::counter!(names::HOST_STATEMENTS, &l), metrics::counter!(names::HOST_ERRORS, &l))
    }

    fn with(statements: metrics::Counter, errors: metrics::Counter) -> Self {
        Meter {
            statements,
            errors,
            executed: AtomicU64::new(0),
            total_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    pub fn record(&self, took: Duration, failed: bool) {
        self.statements.increment(1);
        if failed {
            self.errors.increment(1);
        }
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        self.executed.fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn executed(&self) -> u64 {
        self.executed.load(Ordering::Relaxed)
    }

    /// Time spent in statements so far, and the longest one (milliseconds).
    pub fn total_ms(&self) -> u64 {
        self.total_us.load(Ordering::Relaxed) / 1000
    }

    pub fn max_ms(&self) -> u64 {
        self.max_us.load(Ordering::Relaxed) / 1000
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

    #[test]
    fn a_meter_keeps_count_total_and_longest() {
        let m = Meter::datanode("dn1");
        m.record(Duration::from_millis(3), false);
        m.record(Duration::from_millis(12), true);
        m.record(Duration::from_micros(400), false);
        assert_eq!(m.executed(), 3);
        assert_eq!(m.total_ms(), 15);
        assert_eq!(m.max_ms(), 12);
    }
}
