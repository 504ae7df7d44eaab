//! The binlog reader: one replication connection per dataHost's current writeHost (COM_BINLOG_DUMP, MariaDB
//! GTID positioning), handing each committed transaction's physical tables (and each DDL) to a `Sink`.
//!
//! It starts where the server is when it first connects and, after a reconnect or a failover, goes on
//! from the last GTID it processed (on whichever host is the writeHost then). Beside the stream, a second
//! connection polls `@@gtid_binlog_pos` so the registry knows how far behind the reader is.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;

use super::datahost::DataHostSet;
use crate::registry::binlog::State;

/// What one committed transaction (or one DDL) changed on a dataHost: physical (database, table)
/// pairs, databases changed as a whole (a statement the reader could not read names from), or
/// everything on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub gtid: String,
    pub tables: Vec<(String, String)>,
    pub databases: Vec<String>,
    pub everything: bool,
}

/// Who learns of the changes, synchronously, before the reader's position moves past them.
pub trait Sink: Send + Sync {
    fn changed(&self, data_host: &str, change: &Change);
    /// The reader lost the stream (or never had it): nothing about this dataHost is known any more.
    fn lost(&self, data_host: &str);
}

/// How often the server's position is polled, and after how long without a poll the lag is unknown.
pub const POLL: Duration = Duration::from_millis(100);
pub const POLL_STALE: Duration = Duration::from_millis(1000);

/// MariaDB's binlog event types that mysql_common does not know.
pub const MARIADB_GTID_EVENT: u8 = 162;

/// A GTID position: per domain, the server id and sequence number of the last transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position(BTreeMap<u32, (u32, u64)>);

impl Position {
    pub fn parse(s: &str) -> Self {
        let mut p = BTreeMap::new();
        for g in s.split(',') {
            let mut it = g.trim().split('-');
            if let (Some(d), Some(srv), Some(seq)) = (it.next(), it.next(), it.next()) {
                if let (Ok(d), Ok(srv), Ok(seq)) = (d.parse(), srv.parse(), seq.parse()) {
                    p.insert(d, (srv, seq));
                }
            }
        }
        Position(p)
    }

    pub fn set(&mut self, gtid: Gtid) {
        self.0.insert(gtid.domain, (gtid.server, gtid.seq));
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (d, (s, n)) in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{d}-{s}-{n}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
    /// FL_STANDALONE: the group is one statement (a DDL) with no COMMIT or XID after it.
    pub standalone: bool,
}

impl Gtid {
    /// MariaDB's GTID event (type 162): seq_no (8 bytes), domain_id (4), flags (1), little-endian.
    pub fn decode(server: u32, data: &[u8]) -> Option<Gtid> {
        let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
        let flags = *data.get(12)?;
        Some(Gtid { domain, server, seq, standalone: flags & 0x01 != 0 })
    }

    /// Whether a GTID event opens an XA transaction's prepared part (FL_PREPARED_XA: its rows, then
    /// XA END and XA PREPARE; the outcome comes later, a group of its own).
    pub fn prepared_xa(data: &[u8]) -> bool {
        data.get(12).is_some_and(|f| f & 0x40 != 0)
    }
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// The tables a statement logged as text names (DDL, TRUNCATE, statements in the binlog as SQL):
/// `None` when it cannot be read, so the caller drops more rather than less.
pub fn statement_tables(sql: &str, default_db: &str) -> Option<Vec<(String, String)>> {
    let stmts = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::MySqlDialect {}, sql).ok()?;
    let mut out = Vec::new();
    let mut push = |name: &sqlparser::ast::ObjectName| {
        let parts: Vec<String> = name.0.iter().map(|p| p.to_string().trim_matches('`').to_string()).collect();
        match parts.as_slice() {
            [t] => out.push((default_db.to_string(), t.clone())),
            [d, t] => out.push((d.clone(), t.clone())),
            _ => {}
        }
    };
    for st in &stmts {
        // DROP's names are no relations to the visitor
        if let sqlparser::ast::Statement::Drop { names, .. } = st {
            names.iter().for_each(&mut push);
        }
    }
    let _ = sqlparser::ast::visit_relations(&stmts, |name| {
        push(name);
        std::ops::ControlFlow::<()>::Continue(())
    });
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// One transaction being read: its GTID and what it touched so far; and the tables of XA
/// transactions prepared but not yet committed, by XID (their rows become visible at XA COMMIT).
#[derive(Default)]
struct Group {
    gtid: Option<Gtid>,
    change: Change,
    prepared: HashMap<String, Change>,
}

/// Prepared XA transactions remembered at most (beyond, their commits move everything).
const PREPARED_KEPT: usize = 10_000;

/// An XID as `XA …` statements in the binlog write it, normalised (`X'…',X'…',format`, upper case).
pub fn xid_text(format: u32, gtrid: &[u8], bqual: &[u8]) -> String {
    let h = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    format!("X'{}',X'{}',{format}", h(gtrid), h(bqual))
}

/// The XID of an XA_PREPARE_LOG_EVENT's body: one_phase (1 byte), formatID, gtrid and bqual
/// lengths (4 bytes each, little endian), then gtrid and bqual.
pub fn xa_prepare_xid(data: &[u8]) -> Option<String> {
    let u = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?)) };
    let (format, g, b) = (u(1)?, u(5)? as usize, u(9)? as usize);
    let gtrid = data.get(13..13 + g)?;
    let bqual = data.get(13 + g..13 + g + b)?;
    Some(xid_text(format, gtrid, bqual))
}

/// `XA COMMIT <xid>` / `XA ROLLBACK <xid>` as logged: (true for COMMIT, the normalised XID); None
/// for any other statement.
pub fn xa_end_statement(sql: &str) -> Option<(bool, String)> {
    let t = sql.trim();
    let head = t.get(..9)?.to_ascii_uppercase();
    let (commit, rest) = if head.starts_with("XA COMMIT") {
        (true, &t[9..])
    } else if t.get(..11)?.eq_ignore_ascii_case("XA ROLLBACK") {
        (false, &t[11..])
    } else {
        return None;
    };
    let mut xid: String = rest.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    if let Some(x) = xid.strip_suffix("ONEPHASE") {
        xid = x.to_string();
    }
    Some((commit, xid))
}

impl Group {
    fn touch(&mut self, db: &str, table: &str) {
        let t = (db.to_string(), table.to_string());
        if !self.change.tables.contains(&t) {
            self.change.tables.push(t);
        }
    }
}

/// The server id of the reader of the `index`-th dataHost: server.xml `binlogServerId` plus the index,
/// or 1 000 000 + a per-process offset (so two proxies on one server never share one). The cache's
/// readers take indexes below `LEASED`, the change queue's streams lease the ones above.
pub fn server_id(configured: Option<u32>, index: usize) -> u32 {
    let base = configured.unwrap_or_else(|| 1_000_000 + (std::process::id() % 10_000) * 10_000);
    base.wrapping_add(index as u32)
}

/// Where leased server ids start, and how many there are.
const LEASED: usize = 100;
const LEASES: usize = 9_900;

/// A server id held by one replication stream while it runs: a second dump with the same id would
/// make the server end the first.
pub struct ServerIdLease {
    index: usize,
    pub id: u32,
}

static LEASED_IDS: parking_lot::Mutex<std::collections::BTreeSet<usize>> =
    parking_lot::Mutex::new(std::collections::BTreeSet::new());

impl ServerIdLease {
    /// The lowest free id, or None when every one is taken.
    pub fn take(configured: Option<u32>) -> Option<ServerIdLease> {
        let mut used = LEASED_IDS.lock();
        let index = (LEASED..LEASED + LEASES).find(|i| !used.contains(i))?;
        used.insert(index);
        Some(ServerIdLease { index, id: server_id(configured, index) })
    }
}

impl Drop for ServerIdLease {
    fn drop(&mut self) {
        LEASED_IDS.lock().remove(&self.index);
    }
}

/// Starts a reader for each dataHost that has none (they end when their dataHost is retired). Each
/// reader of the process gets its own server id, so two dataHosts on one server never share one.
pub fn start(sets: &[Arc<DataHostSet>], base_id: Option<u32>, sink: Arc<dyn Sink>) {
    static READERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    for set in sets {
        {
            let mut f = set.binlog.facts.write();
            if f.state != State::Off {
                continue;
            }
            f.state = State::Connecting;
        }
        let (set, sink) = (set.clone(), sink.clone());
        let id = server_id(base_id, READERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % LEASED);
        tokio::spawn(async move { run(set, id, sink).await });
    }
}

enum End {
    /// The writeHost changed (failover, switch): read on from the new one.
    WriterChanged,
    Retired,
}

/// The hosts that may become this dataHost's writeHost need `log_slave_updates`, or after a promotion
/// their binlog lacks what they replicated and the reader cannot go on from its GTID: said once per host.
async fn check_promotable(set: Arc<DataHostSet>) {
    let current = set.current_index();
    let others = set
        .writers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != current)
        .map(|(_, m)| m)
        .chain(set.readers.iter().flatten());
    for m in others {
        let Ok(Ok(mut c)) =
            tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts(&m.pool.endpoint))).await
        else {
            continue;
        };
        let row: Option<(String, String)> =
            within("the promotion check", c.query_first("SELECT @@global.log_slave_updates, @@global.log_bin"))
                .await
                .ok()
                .flatten();
        if let Some((updates, log_bin)) = row {
            let on = |v: &str| v == "1" || v.eq_ignore_ascii_case("ON");
            if !on(&updates) || !on(&log_bin) {
                tracing::warn!(data_host = %set.cfg.name, host = %m.name, log_bin = %log_bin, log_slave_updates = %updates, "a host that may be promoted does not log what it replicates: after a failover to it the binlog reader starts afresh (the result cache drops this dataHost's replies)");
            }
        }
        let _ = c.disconnect().await;
    }
}

async fn run(set: Arc<DataHostSet>, server_id: u32, sink: Arc<dyn Sink>) {
    tokio::spawn(check_promotable(set.clone()));
    let mut pos: Option<Position> = None;
    let mut unusable_logged = false;
    loop {
        if set.retired() {
            set.binlog.set_state(State::Stopped, None);
            sink.lost(&set.cfg.name);
            return;
        }
        // while retrying after an outage it stays `disconnected`
        if set.binlog.snapshot().state != State::Disconnected {
            set.binlog.set_state(State::Connecting, None);
        }
        match stream(&set, server_id, &mut pos, sink.as_ref()).await {
            Ok(End::Retired) => continue,
            Ok(End::WriterChanged) => {
                // what the old writeHost had and the reader did not read is lost to it: drop it all
                sink.lost(&set.cfg.name);
            }
            Err(Failure::Unusable(why)) => {
                sink.lost(&set.cfg.name);
                set.binlog.set_state(State::Unusable, Some(why.clone()));
                if !unusable_logged {
                    tracing::warn!(data_host = %set.cfg.name, reason = %why, "binlog cannot be read: this dataHost's tables are never cached");
                    unusable_logged = true;
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            Err(Failure::Gap(why)) => {
                // the server does not have the position (another primary's history): what happened
                // in between is unknown — everything goes, and reading starts where the server is now
                sink.lost(&set.cfg.name);
                tracing::warn!(data_host = %set.cfg.name, reason = %why, "binlog position not on this server: reading from its current position");
                pos = None;
            }
            Err(Failure::Lost(why)) => {
                sink.lost(&set.cfg.name);
                // said once per outage, not at every retry while the server stays away
                let first = set.binlog.snapshot().state != State::Disconnected;
                set.binlog.set_state(State::Disconnected, Some(why.clone()));
                if first {
                    tracing::info!(data_host = %set.cfg.name, error = %why, "binlog reader disconnected; reconnecting");
                } else {
                    tracing::debug!(data_host = %set.cfg.name, error = %why, "binlog reader still disconnected");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

pub enum Failure {
    Unusable(String),
    /// The server cannot send from the position asked (ER_MASTER_FATAL_ERROR_READING_BINLOG).
    Gap(String),
    Lost(String),
}

impl Failure {
    /// What went wrong, in words.
    pub fn reason(self) -> String {
        match self {
            Failure::Unusable(w) | Failure::Gap(w) | Failure::Lost(w) => w,
        }
    }
}

impl From<mysql_async::Error> for Failure {
    fn from(e: mysql_async::Error) -> Self {
        match &e {
            mysql_async::Error::Server(s) if s.code == 1236 => Failure::Gap(e.to_string()),
            _ => Failure::Lost(e.to_string()),
        }
    }
}

/// A step of the reader's conversation with the server, bounded: a server that stops answering ends
/// the stream (and is retried) instead of holding the reader.
pub async fn within<T>(
    what: &str,
    step: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(Duration::from_secs(5), step).await {
        Ok(r) => r.map_err(Failure::from),
        Err(_) => Err(Failure::Lost(format!("{what} timed out"))),
    }
}

pub fn opts(endpoint: &super::conn::Endpoint) -> mysql_async::Opts {
    let (host, port) = match endpoint.addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(3306)),
        None => (endpoint.addr.clone(), 3306),
    };
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user(Some(endpoint.user.clone()))
        .pass(Some(endpoint.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .into()
}

/// A replication stream opened on a dataHost's writeHost: the control connection beside it, the host
/// it reads, and the position it started from.
pub struct Dump {
    pub control: mysql_async::Conn,
    pub events: mysql_async::BinlogStream,
    pub host: String,
    /// The writeHost's index when it was opened (a change means a switch).
    pub index: usize,
    pub start: Position,
}

/// Opens a binlog dump on `set`'s current writeHost from `pos` (None: where the server is now),
/// after checking the server logs rows. With `fill` a domain `pos` does not know starts where the
/// server is now (the cache: nothing before now is trusted anyway); without it the server decides
/// (the change queue: never skip).
pub async fn open(set: &DataHostSet, server_id: u32, pos: Option<&Position>, fill: bool) -> Result<Dump, Failure> {
    let writer = set.writer();
    let index = set.current_index();
    let endpoint = writer.pool.endpoint.clone();
    let mut control = within("connect", mysql_async::Conn::new(opts(&endpoint))).await?;
    let row: Option<(String, String, String)> = within(
        "the binlog settings query",
        control.query_first("SELECT @@global.log_bin, @@global.binlog_format, @@global.gtid_binlog_pos"),
    )
    .await?;
    let Some((log_bin, format, server_pos)) = row else {
        return Err(Failure::Lost("no answer to the binlog settings query".into()));
    };
    if log_bin != "1" && !log_bin.eq_ignore_ascii_case("ON") {
        return Err(Failure::Unusable(format!("the binary log is off on {}", endpoint.addr)));
    }
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(Failure::Unusable(format!("binlog_format={format} on {} (ROW is needed)", endpoint.addr)));
    }
    let mut start = pos.cloned().unwrap_or_else(|| Position::parse(&server_pos));
    if fill {
        for (domain, at) in Position::parse(&server_pos).0 {
            start.0.entry(domain).or_insert(at);
        }
    }
    let mut dump = within("connect", mysql_async::Conn::new(opts(&endpoint))).await?;
    // a heartbeat event every 250 ms when the server has nothing to send: the stream is known alive
    let setup = format!(
        "SET @slave_connect_state='{start}', @mariadb_slave_capability=4, @slave_gtid_strict_mode=0, @master_heartbeat_period=250000000"
    );
    within("the replication settings", dump.query_drop(setup)).await?;
    let events =
        within("the binlog dump request", dump.get_binlog_stream(mysql_async::BinlogStreamRequest::new(server_id)))
            .await?;
    Ok(Dump { control, events, host: writer.name.clone(), index, start })
}

/// Where `set`'s writeHost's binlog is now (`@@gtid_binlog_pos`).
pub async fn server_position(set: &DataHostSet) -> Result<Position, String> {
    let endpoint = set.writer().pool.endpoint.clone();
    let step = async {
        let mut c = within("connect", mysql_async::Conn::new(opts(&endpoint))).await?;
        let pos: Option<String> =
            within("the position query", c.query_first("SELECT @@global.gtid_binlog_pos")).await?;
        let _ = c.disconnect().await;
        Ok::<_, Failure>(Position::parse(&pos.unwrap_or_default()))
    };
    step.await.map_err(Failure::reason)
}

/// Reads the current writeHost's binlog until something ends it.
async fn stream(
    set: &DataHostSet,
    server_id: u32,
    pos: &mut Option<Position>,
    sink: &dyn Sink,
) -> Result<End, Failure> {
    let Dump { mut control, mut events, host, index, start } = open(set, server_id, pos.as_ref(), true).await?;
    *pos = Some(start.clone());
    {
        let mut f = set.binlog.facts.write();
        f.host = host.clone();
        f.gtid = start.to_string();
        f.behind_since = None;
        f.polled = None;
    }
    set.binlog.set_state(State::Streaming, Some(String::new()));
    tracing::info!(data_host = %set.cfg.name, host = %host, gtid = %start, server_id, "binlog reader streaming");
    let mut group = Group::default();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_event = Instant::now();
    loop {
        tokio::select! {
            ev = events.next() => {
                let ev = match ev {
                    Some(Ok(ev)) => ev,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(Failure::Lost("the server ended the binlog stream".into())),
                };
                last_event = Instant::now();
                handle(set, &ev, &mut group, pos, sink);
            }
            _ = poll.tick() => {
                if set.retired() {
                    return Ok(End::Retired);
                }
                if set.current_index() != index {
                    return Ok(End::WriterChanged);
                }
                let polled: Option<String> =
                    within("polling @@gtid_binlog_pos", control.query_first("SELECT @@global.gtid_binlog_pos")).await?;
                set.binlog.polled(polled.unwrap_or_default(), Instant::now());
                if last_event.elapsed() > Duration::from_secs(3) {
                    return Err(Failure::Lost("no event or heartbeat for 3 s".into()));
                }
            }
        }
    }
}

fn handle(
    set: &DataHostSet,
    ev: &mysql_common::binlog::events::Event,
    group: &mut Group,
    pos: &mut Option<Position>,
    sink: &dyn Sink,
) {
    use mysql_common::binlog::events::EventData;
    let header = ev.header();
    if header.event_type_raw() == MARIADB_GTID_EVENT {
        group.gtid = Gtid::decode(header.server_id(), ev.data());
        group.change = Change::default();
        return;
    }
    let Ok(Some(data)) = ev.read_data() else { return };
    match data {
        EventData::TableMapEvent(t) => group.touch(&t.database_name(), &t.table_name()),
        EventData::XaPrepareLogEvent(body) => {
            // its rows are not visible before XA COMMIT: the tables are moved again then
            if let Some(xid) = xa_prepare_xid(&body) {
                if group.prepared.len() >= PREPARED_KEPT {
                    group.prepared.clear();
                }
                group.prepared.insert(xid, group.change.clone());
            }
            finish(set, group, header.log_pos(), pos, sink);
        }
        EventData::QueryEvent(q) => {
            let sql = q.query();
            let word = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            if word == "XA" {
                // XA START / XA END inside a prepared group say nothing; COMMIT and ROLLBACK end one
                if let Some((commit, xid)) = xa_end_statement(&sql) {
                    let tables = group.prepared.remove(&xid);
                    if commit {
                        // a prepare this reader did not see (it started after it): everything
                        group.change = tables.unwrap_or(Change { everything: true, ..Change::default() });
                    }
                    finish(set, group, header.log_pos(), pos, sink);
                }
                return;
            }
            match word.as_str() {
                "BEGIN" => {}
                "COMMIT" => finish(set, group, header.log_pos(), pos, sink),
                _ => {
                    let db = q.schema();
                    match statement_tables(&sql, &db) {
                        Some(ts) => {
                            for (d, t) in ts {
                                group.touch(&d, &t);
                            }
                        }
                        None if db.is_empty() => group.change.everything = true,
                        None => group.change.databases.push(db.into_owned()),
                    }
                    if group.gtid.is_none_or(|g| g.standalone) {
                        finish(set, group, header.log_pos(), pos, sink);
                    }
                }
            }
        }
        EventData::XidEvent(_) => finish(set, group, header.log_pos(), pos, sink),
        EventData::RotateEvent(r) => {
            // the artificial ROTATE at the start carries the 4 checksum bytes after the name
            let raw = r.name_raw();
            let raw = if header.flags_raw() & 0x20 != 0 { &raw[..raw.len().saturating_sub(4)] } else { raw };
            set.binlog.facts.write().file = String::from_utf8_lossy(raw).into_owned();
        }
        _ => {}
    }
}

/// The transaction is committed: the sink learns of it, then the position moves past it.
fn finish(set: &DataHostSet, group: &mut Group, log_pos: u32, pos: &mut Option<Position>, sink: &dyn Sink) {
    let mut change = std::mem::take(&mut group.change);
    let gtid = group.gtid.take();
    if let Some(gtid) = gtid {
        change.gtid = gtid.to_string();
    }
    if !change.tables.is_empty() || !change.databases.is_empty() || change.everything {
        sink.changed(&set.cfg.name, &change);
    }
    crate::stats::binlog_transaction(&set.cfg.name);
    let position = pos.get_or_insert_with(Position::default);
    if let Some(gtid) = gtid {
        position.set(gtid);
    }
    set.binlog.processed(position.to_string(), u64::from(log_pos));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_events_decode_and_positions_round_trip() {
        let mut data = 42u64.to_le_bytes().to_vec();
        data.extend_from_slice(&7u32.to_le_bytes());
        data.push(0x01);
        let g = Gtid::decode(3307, &data).unwrap();
        assert_eq!(g, Gtid { domain: 7, server: 3307, seq: 42, standalone: true });
        assert_eq!(g.to_string(), "7-3307-42");
        assert_eq!(Gtid::decode(1, &data[..10]), None);
        let mut p = Position::parse("1-3307-10, 2-3309-5");
        p.set(Gtid { domain: 1, server: 3308, seq: 11, standalone: false });
        p.set(g);
        assert_eq!(p.to_string(), "1-3308-11,2-3309-5,7-3307-42");
        assert_eq!(Position::parse("").to_string(), "");
    }

    #[test]
    fn xa_events_name_their_xid_alike() {
        // XA_PREPARE_LOG_EVENT: one_phase, formatID 1, gtrid "a1", bqual ""
        let mut body = vec![0u8];
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(b"a1");
        let xid = xa_prepare_xid(&body).unwrap();
        assert_eq!(xid, "X'6131',X'',1");
        assert_eq!(xa_end_statement("XA COMMIT X'6131',X'',1"), Some((true, xid.clone())));
        assert_eq!(xa_end_statement("xa rollback x'6131', x'', 1"), Some((false, xid)));
        assert_eq!(xa_prepare_xid(&body[..14]), None);
        assert_eq!(xa_end_statement("XA START X'6131'"), None);
        assert_eq!(xa_end_statement("XA"), None);
    }

    #[test]
    fn ddl_names_its_tables_and_unreadable_text_names_none() {
        assert_eq!(statement_tables("TRUNCATE TABLE t1", "db"), Some(vec![("db".into(), "t1".into())]));
        assert_eq!(statement_tables("DROP TABLE `other`.`t2`", "db"), Some(vec![("other".into(), "t2".into())]));
        // named, or unread (then the whole database is dropped): never a wrong table
        let renamed = statement_tables("RENAME TABLE a TO b", "db");
        assert!(renamed.as_ref().is_none_or(|r| r.contains(&("db".into(), "a".into()))), "{renamed:?}");
        assert_eq!(statement_tables("CREATE PROCEDURE p() BEGIN SELECT 1; END", "db"), None);
        for ddl in ["ALTER TABLE t ADD COLUMN c INT", "CREATE TABLE t (id INT)", "CREATE INDEX i ON t (id)"] {
            assert_eq!(statement_tables(ddl, "db"), Some(vec![("db".into(), "t".into())]), "{ddl}");
        }
    }

    #[test]
    fn reader_server_ids_differ_per_data_host() {
        assert_eq!(server_id(Some(500), 0), 500);
        assert_eq!(server_id(Some(500), 2), 502);
        let a = server_id(None, 0);
        assert!(a >= 1_000_000);
        assert_eq!(server_id(None, 1), a + 1);
    }
}
