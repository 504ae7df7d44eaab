//! The registry of backends and their health: one `Health` per writeHost/readHost, kept fresh by
//! `backend::heartbeat`, read by read/write splitting and failover, later shown on the manager port.

pub mod binlog;
pub mod gtid;

use parking_lot::RwLock;
use std::time::Instant;

/// What the last heartbeats said about a host.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Up, as far as the heartbeat knows (down after `maxRetryCount` failures in a row).
    pub alive: bool,
    pub failures: u32,
    pub read_only: Option<bool>,
    /// Replication threads, for hosts that replicate.
    pub replicating: bool,
    pub io_running: bool,
    pub sql_running: bool,
    pub lag: Option<i64>,
    pub last_error: String,
    /// gtid_slave_pos of a replica, gtid_binlog_pos of a primary.
    pub gtid: String,
    /// A former writeHost shardcat stopped using after a switch: never written to, never read from.
    pub fenced: bool,
    pub checked: Option<Instant>,
    /// When, by the wall clock, and how long the last probe took.
    pub checked_at: Option<std::time::SystemTime>,
    pub probe_ms: u64,
    /// SHOW SLAVE STATUS as the manager port shows it (`show @@datasource.synstatus`).
    pub source: Option<Source>,
}

/// Where a replica replicates from, and its threads' state, as SHOW SLAVE STATUS says.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub host: String,
    pub port: String,
    pub user: String,
    pub io_state: String,
    pub connect_retry: String,
    pub last_io_error: String,
    pub last_sql_error: String,
    pub last_sql_errno: String,
}

impl Default for Facts {
    fn default() -> Self {
        // optimistic until the first heartbeat: the pool reports connect failures on its own
        Facts {
            alive: true,
            failures: 0,
            read_only: None,
            replicating: false,
            io_running: false,
            sql_running: false,
            lag: None,
            last_error: String::new(),
            gtid: String::new(),
            fenced: false,
            checked: None,
            checked_at: None,
            probe_ms: 0,
            source: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Health {
    pub facts: RwLock<Facts>,
}

impl Health {
    pub fn snapshot(&self) -> Facts {
        self.facts.read().clone()
    }

    pub fn alive(&self) -> bool {
        let f = self.facts.read();
        f.alive && !f.fenced
    }

    /// Fit to serve reads: alive, and — when a lag threshold is set — replicating without error and no
    /// further behind than the threshold.
    pub fn readable(&self, slave_threshold: i64) -> bool {
        let f = self.facts.read();
        if !f.alive || f.fenced {
            return false;
        }
        if slave_threshold >= 0 && f.replicating {
            return f.io_running
                && f.sql_running
                && f.last_error.is_empty()
                && f.lag.is_some_and(|l| l <= slave_threshold);
        }
        true
    }
}
