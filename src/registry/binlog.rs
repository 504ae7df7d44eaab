//! Where a dataHost's binlog reader is (a leaf beside `Health`): its state, the GTID position it has
//! processed, the server's own position as last polled, and how far behind that puts it.

use parking_lot::RwLock;
use std::time::{Duration, Instant};

/// The reader's state, as `show @@binlog` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Not started (nothing reads the binlog: the cache is off).
    #[default]
    Off,
    Connecting,
    Streaming,
    /// Lost its connection; retrying.
    Disconnected,
    /// The server's binlog cannot be read for this purpose (binlog_format not ROW, binary log off).
    Unusable,
    /// Its dataHost was retired by a reload.
    Stopped,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Off => "off",
            State::Connecting => "connecting",
            State::Streaming => "streaming",
            State::Disconnected => "disconnected",
            State::Unusable => "unusable",
            State::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub state: State,
    /// The host it reads (the dataHost's current writeHost when it connected).
    pub host: String,
    /// The GTID position it has processed (every transaction up to it has been handed on).
    pub gtid: String,
    /// The binlog file and the end position of the last event read.
    pub file: String,
    pub pos: u64,
    /// The server's `@@gtid_binlog_pos` as last polled, and when.
    pub server_gtid: String,
    pub polled: Option<Instant>,
    /// Since when the server is known to hold a transaction the reader has not processed.
    pub behind_since: Option<Instant>,
    pub last_error: String,
    pub transactions: u64,
}

/// One dataHost's reader facts, written by `backend::binlog`, read by the cache and the manager port.
#[derive(Default)]
pub struct Binlog {
    pub facts: RwLock<Facts>,
}

impl Binlog {
    pub fn snapshot(&self) -> Facts {
        self.facts.read().clone()
    }

    /// How far behind the server the reader is known to be: 0 when it has processed everything the
    /// server had at the last poll, `None` when that is unknown (not streaming, or no recent poll).
    pub fn lag(&self, now: Instant, poll_stale: Duration) -> Option<Duration> {
        let f = self.facts.read();
        if f.state != State::Streaming || f.polled.is_none_or(|p| now.saturating_duration_since(p) > poll_stale) {
            return None;
        }
        Some(f.behind_since.map_or(Duration::ZERO, |t| now.saturating_duration_since(t)))
    }

    /// The server's position was polled: the reader is behind from `since` (the poll before, the
    /// latest moment the server may have committed what the reader lacks) unless it covers it.
    pub fn polled(&self, server_gtid: String, now: Instant) {
        let mut f = self.facts.write();
        let since = f.polled.unwrap_or(now);
        if super::gtid::covers(&f.gtid, &server_gtid) {
            f.behind_since = None;
        } else if f.behind_since.is_none() {
            f.behind_since = Some(since);
        }
        f.server_gtid = server_gtid;
        f.polled = Some(now);
    }

    /// A transaction was processed up to `gtid` (the whole position after it).
    pub fn processed(&self, gtid: String, file_pos: u64) {
        let mut f = self.facts.write();
        f.gtid = gtid;
        f.pos = file_pos;
        f.transactions += 1;
        if super::gtid::covers(&f.gtid, &f.server_gtid) {
            f.behind_since = None;
        }
    }

    pub fn set_state(&self, state: State, error: Option<String>) {
        let mut f = self.facts.write();
        f.state = state;
        if let Some(e) = error {
            f.last_error = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_poll_before_the_one_that_saw_the_reader_behind() {
        let b = Binlog::default();
        let t0 = Instant::now();
        assert_eq!(b.lag(t0, Duration::from_secs(1)), None, "not streaming");
        b.set_state(State::Streaming, None);
        b.processed("1-1-10".into(), 100);
        b.polled("1-1-10".into(), t0);
        assert_eq!(b.lag(t0, Duration::from_secs(1)), Some(Duration::ZERO));
        let t1 = t0 + Duration::from_millis(100);
        b.polled("1-1-11".into(), t1);
        let t2 = t0 + Duration::from_millis(250);
        assert_eq!(b.lag(t2, Duration::from_secs(1)), Some(Duration::from_millis(250)), "behind since t0");
        b.processed("1-1-11".into(), 200);
        assert_eq!(b.lag(t2, Duration::from_secs(1)), Some(Duration::ZERO));
        assert_eq!(b.lag(t0 + Duration::from_secs(5), Duration::from_secs(1)), None, "the poll is stale");
    }
}
