//! One dataHost's part of a feed: its writeHost's binlog from a position, the rows of the feed's
//! tables decoded into changes in commit order; follows failovers by GTID, stops (never skips) on a gap.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mysql_common::binlog::events::{EventData, RowsEventData, TableMapEvent};
use tokio::sync::mpsc;

use mysql_async::prelude::Queryable;

use super::decode::{self, Definition, Members};
use super::event::{Change, Op, Source};
use super::position::HostPos;
use crate::backend::binlog::{self, Failure, Gtid, ServerIdLease};
use crate::backend::DataHostSet;

/// Where a physical table's rows belong: its logical table and dataNode.
#[derive(Debug, Clone)]
pub struct Target {
    pub schema: String,
    pub table: String,
    pub data_node: String,
}

/// The feed's tables on one dataHost, by (database, table) in lower case; `any` maps a database whose
/// every table belongs to the feed (a schema's default dataNode) to its dataNode.
#[derive(Debug, Default)]
pub struct Scope {
    pub tables: HashMap<(String, String), Target>,
    pub any: HashMap<String, (String, String)>,
}

impl Scope {
    fn target(&self, db: &str, table: &str) -> Option<Target> {
        let (db, table) = (db.to_ascii_lowercase(), table.to_ascii_lowercase());
        if let Some(t) = self.tables.get(&(db.clone(), table.clone())) {
            return Some(t.clone());
        }
        self.any.get(&db).map(|(schema, dn)| Target {
            schema: schema.clone(),
            table: table.clone(),
            data_node: dn.clone(),
        })
    }
}

/// What a reader hands its feed, in the server's commit order.
#[derive(Debug)]
pub enum Item {
    Change {
        data_host: Arc<str>,
        gtid: Gtid,
        change: Box<Change>,
    },
    /// A row of the first snapshot (no position of its own: a feed stopped mid-snapshot takes it again).
    Snapshot {
        change: Box<Change>,
    },
    /// The snapshot of a dataHost is read; its stream goes on from `pos`.
    SnapshotDone {
        data_host: Arc<str>,
        pos: HostPos,
    },
    /// A transaction is finished: nothing of it is left to give.
    Done {
        data_host: Arc<str>,
        gtid: Gtid,
    },
    /// The reader stopped: `fatal` when it cannot go on without skipping (a purged binlog, a GTID the
    /// server lacks, no ROW binlog), else a failure worth retrying from the feed's position.
    Failed {
        data_host: Arc<str>,
        why: String,
        fatal: bool,
    },
}

/// Reads `set`'s binlog from `from` into `tx` until the receiver goes away.
pub async fn run(
    set: Arc<DataHostSet>,
    scope: Arc<Scope>,
    from: HostPos,
    base_id: Option<u32>,
    tx: mpsc::Sender<Item>,
) {
    let name: Arc<str> = set.cfg.name.as_str().into();
    let Some(lease) = ServerIdLease::take(base_id) else {
        let why = "no binlog server id left to lease".to_string();
        let _ = tx.send(Item::Failed { data_host: name, why, fatal: false }).await;
        return;
    };
    let mut pos = from;
    loop {
        if set.retired() {
            return;
        }
        match stream(&set, &name, &scope, lease.id, &mut pos, &tx).await {
            Ok(()) => return,
            Err(Failure::Gap(why)) | Err(Failure::Unusable(why)) => {
                let _ = tx.send(Item::Failed { data_host: name.clone(), why, fatal: true }).await;
                return;
            }
            Err(Failure::Lost(why)) => {
                if tx.is_closed() {
                    return;
                }
                tracing::info!(data_host = %name, error = %why, "change queue: binlog stream lost; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// One connection's worth of reading. `Ok` when the receiver is gone.
async fn stream(
    set: &DataHostSet,
    name: &Arc<str>,
    scope: &Scope,
    server_id: u32,
    pos: &mut HostPos,
    tx: &mpsc::Sender<Item>,
) -> Result<(), Failure> {
    let dump = binlog::open(set, server_id, Some(&pos.done), false).await?;
    let binlog::Dump { mut control, mut events, host, index, .. } = dump;
    let metadata: Option<String> =
        binlog::within("the row metadata query", control.query_first("SELECT @@global.binlog_row_metadata")).await?;
    if metadata.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case("FULL")) {
        tracing::warn!(data_host = %name, host = %host, "change queue: binlog_row_metadata is not FULL: column names come from the tables' current definitions (wrong for events older than a DDL on their table)");
    }
    // tables whose maps name no column: their definitions as the catalogue gives them, until a DDL
    let mut defs: HashMap<(String, String), Option<Definition>> = HashMap::new();
    let mut maps: HashMap<u64, (TableMapEvent<'static>, Members)> = HashMap::new();
    let mut file = String::new();
    let mut txn: Option<(Gtid, u64)> = None;
    // XA transactions prepared but not yet committed, and what was logged behind them
    let mut held = Held::default();
    let mut xa_open = false;
    loop {
        if set.current_index() != index {
            return Err(Failure::Lost("the writeHost changed".into()));
        }
        let ev = match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Err(_) => return Err(Failure::Lost("no event or heartbeat for 5 s".into())),
            Ok(None) => return Err(Failure::Lost("the server ended the binlog stream".into())),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(ev))) => ev,
        };
        if held.len() > HELD_MAX {
            return Err(Failure::Lost(format!(
                "{} changes wait behind an XA transaction prepared but not yet committed; reading again",
                held.len()
            )));
        }
        let header = ev.header();
        if header.event_type_raw() == binlog::MARIADB_GTID_EVENT {
            maps.clear();
            txn = Gtid::decode(header.server_id(), ev.data()).map(|g| (g, 0));
            // an XA transaction's prepared part: its rows wait for its outcome
            xa_open = Gtid::prepared_xa(ev.data());
            continue;
        }
        let kind = header.event_type_raw();
        let data = match ev.read_data() {
            Ok(Some(d)) => d,
            // MariaDB's compressed events (log_bin_compress): the rows cannot be read — never skip them
            _ if (165..=171).contains(&kind) => {
                return Err(Failure::Unusable(format!(
                    "compressed binlog events (type {kind}, log_bin_compress=ON) cannot be read: the change queue needs them uncompressed"
                )));
            }
            // a rows event that does not decode would be a change lost: stop instead
            Err(e) if matches!(kind, 23..=25 | 30..=32) => {
                return Err(Failure::Unusable(format!("a row event (type {kind}) did not decode: {e}")));
            }
            _ => continue,
        };
        let at = u64::from(header.log_pos());
        let ts_ms = u64::from(header.timestamp()) * 1000;
        match data {
            EventData::RotateEvent(r) => {
                let raw = r.name_raw();
                let raw = if header.flags_raw() & 0x20 != 0 { &raw[..raw.len().saturating_sub(4)] } else { raw };
                file = String::from_utf8_lossy(raw).into_owned();
            }
            EventData::TableMapEvent(t) => {
                let members = Members::of(&t);
                maps.insert(t.table_id(), (t.into_owned(), members));
            }
            EventData::RowsEvent(rows) => {
                let Some((gtid, n)) = txn.as_mut() else {
                    return Err(Failure::Unusable("a row event outside a transaction with a GTID".into()));
                };
                let Some((tme, members)) = maps.get(&rows.table_id()) else {
                    return Err(Failure::Unusable(format!(
                        "a row event for table id {} without its table map",
                        rows.table_id()
                    )));
                };
                let target = scope.target(&tme.database_name(), &tme.table_name());
                let def = match (&target, members.named) {
                    (Some(_), false) => {
                        let k = (tme.database_name().into_owned(), tme.table_name().into_owned());
                        if !defs.contains_key(&k) {
                            let d = definition(&mut control, &k.0, &k.1).await?;
                            if d.as_ref().is_some_and(|d| d.names.len() as u64 != rows.num_columns()) {
                                tracing::warn!(db = %k.0, table = %k.1, "change queue: the table's definition has changed since this event (binlog_row_metadata is not FULL): its columns go by position");
                            }
                            defs.insert(k.clone(), d.filter(|d| d.names.len() as u64 == rows.num_columns()));
                        }
                        defs.get(&k).cloned().flatten()
                    }
                    _ => None,
                };
                let op = match rows {
                    RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Op::Create,
                    RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Op::Delete,
                    _ => Op::Update,
                };
                for r in rows.rows(tme) {
                    let row = *n;
                    *n += 1;
                    let (before, after) = r.map_err(|e| Failure::Unusable(format!("a row did not decode: {e}")))?;
                    // rows already given before a restart, and rows of other tables, only count
                    if skip(pos, gtid, row) {
                        continue;
                    }
                    let Some(t) = &target else { continue };
                    let b = before.as_ref().map(|r| decode::image(r, members, def.as_ref()));
                    let a = after.as_ref().map(|r| decode::image(r, members, def.as_ref()));
                    let key = a.as_ref().or(b.as_ref()).map(|i| i.key.clone()).unwrap_or_default();
                    let change = Change {
                        op,
                        before: b.map(|i| i.values),
                        after: a.map(|i| i.values),
                        key,
                        ddl: None,
                        source: source(
                            t,
                            name,
                            &host,
                            &tme.database_name(),
                            &tme.table_name(),
                            *gtid,
                            &file,
                            at,
                            row,
                            ts_ms,
                        ),
                    };
                    if !held.give(xa_open, pos, name, *gtid, change, tx).await {
                        return Ok(());
                    }
                }
            }
            EventData::XaPrepareLogEvent(body) => {
                // the prepared transaction's rows wait for its outcome (and what follows waits behind them)
                if let (Some((g, _)), Some(xid)) = (txn.take(), binlog::xa_prepare_xid(&body)) {
                    held.prepared(g, xid);
                }
                xa_open = false;
            }
            EventData::QueryEvent(q)
                if q.query().trim_start().get(..3).is_some_and(|w| w.eq_ignore_ascii_case("XA ")) =>
            {
                // XA END closes a prepared part's statements (its GTID event said XA); the outcome:
                if let Some((commit, xid)) = binlog::xa_end_statement(&q.query()) {
                    if !held.decided(&xid, commit) {
                        tracing::warn!(data_host = %name, xid = %xid, "change queue: XA {} of a transaction prepared before this reader's position: its rows are not given here", if commit { "COMMIT" } else { "ROLLBACK" });
                    }
                    if let Some((g, _)) = txn.take() {
                        if !held.done(pos, name, g, tx).await {
                            return Ok(());
                        }
                    } else if !held.flush(pos, name, tx).await {
                        return Ok(());
                    }
                }
            }
            EventData::QueryEvent(q) => {
                let sql = q.query();
                let word = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                match word.as_str() {
                    "BEGIN" => {}
                    "COMMIT" => {
                        if let Some((g, _)) = txn.take() {
                            if !held.done(pos, name, g, tx).await {
                                return Ok(());
                            }
                        }
                    }
                    _ => {
                        // DDL (and TRUNCATE): an event for each of the feed's tables it names
                        let Some((gtid, n)) = txn.as_mut() else { continue };
                        let db = q.schema();
                        let named = binlog::statement_tables(&sql, &db);
                        match &named {
                            // the definitions it may change are read again when next needed
                            Some(ts) => ts.iter().for_each(|(d, t)| {
                                defs.remove(&(d.clone(), t.clone()));
                            }),
                            None => defs.clear(),
                        }
                        for (d, table) in named.unwrap_or_default() {
                            let row = *n;
                            *n += 1;
                            if skip(pos, gtid, row) {
                                continue;
                            }
                            let Some(t) = scope.target(&d, &table) else { continue };
                            let op = if word == "TRUNCATE" { Op::Truncate } else { Op::Ddl };
                            let change = Change {
                                op,
                                before: None,
                                after: None,
                                key: Default::default(),
                                ddl: (op == Op::Ddl).then(|| sql.to_string()),
                                source: source(&t, name, &host, &d, &table, *gtid, &file, at, row, ts_ms),
                            };
                            if !held.give(xa_open, pos, name, *gtid, change, tx).await {
                                return Ok(());
                            }
                        }
                        let standalone = txn.is_some_and(|(g, _)| g.standalone);
                        if standalone {
                            if let Some((g, _)) = txn.take() {
                                if !held.done(pos, name, g, tx).await {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
            }
            EventData::XidEvent(_) => {
                if let Some((g, _)) = txn.take() {
                    if !held.done(pos, name, g, tx).await {
                        return Ok(());
                    }
                }
            }
            _ => {}
        }
    }
}

/// A table's columns and which are its primary key, from the catalogue (None: no such table now).
async fn definition(c: &mut mysql_async::Conn, db: &str, table: &str) -> Result<Option<Definition>, Failure> {
    let rows: Vec<(String, String)> = binlog::within(
        "the table definition query",
        c.exec(
            "SELECT COLUMN_NAME, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        ),
    )
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let (names, key) = rows.into_iter().map(|(n, k)| (n, k == "PRI")).unzip();
    Ok(Some(Definition { names, key }))
}

#[allow(clippy::too_many_arguments)]
fn source(
    t: &Target,
    data_host: &str,
    host: &str,
    db: &str,
    table: &str,
    gtid: Gtid,
    file: &str,
    pos: u64,
    row: u64,
    ts_ms: u64,
) -> Source {
    Source {
        schema: t.schema.clone(),
        table: t.table.clone(),
        data_node: t.data_node.clone(),
        data_host: data_host.to_string(),
        host: host.to_string(),
        db: db.to_string(),
        physical_table: table.to_string(),
        gtid: gtid.to_string(),
        file: file.to_string(),
        pos,
        row,
        ts_ms,
        snapshot: false,
    }
}

/// Whether row `row` of `gtid` was given before (the position says so).
/// Changes a reader may hold behind XA transactions waiting for their outcome before it reads again
/// from its position (which never passes a held transaction).
const HELD_MAX: usize = 100_000;

/// Transactions read but not given yet. MariaDB logs an XA transaction's rows at XA PREPARE and its
/// outcome later (XA COMMIT or XA ROLLBACK, a group of its own): its rows wait for it — given if it
/// committed, dropped if not — and every transaction logged after the prepare waits behind it, so
/// the feed gives changes in binlog order and the position never passes one whose outcome is unknown.
/// With nothing held, changes go out as they are read.
#[derive(Default)]
struct Held {
    groups: std::collections::VecDeque<HeldGroup>,
    changes: usize,
}

struct HeldGroup {
    gtid: Gtid,
    changes: Vec<Change>,
    /// Read to its end.
    ended: bool,
    /// A prepared XA transaction's XID, and its outcome once read (true: committed).
    xid: Option<String>,
    outcome: Option<bool>,
}

impl Held {
    fn len(&self) -> usize {
        self.changes
    }

    /// The group of `gtid` being read, added when it is not the last one.
    fn group(&mut self, gtid: Gtid) -> &mut HeldGroup {
        let open = self.groups.back().is_some_and(|g| same(&g.gtid, &gtid) && !g.ended);
        if !open {
            self.groups.push_back(HeldGroup { gtid, changes: Vec::new(), ended: false, xid: None, outcome: None });
        }
        let last = self.groups.len() - 1;
        &mut self.groups[last]
    }

    /// A change of `gtid`: given now, or held (inside an XA transaction's group, or behind one).
    async fn give(
        &mut self,
        xa_open: bool,
        pos: &mut HostPos,
        name: &Arc<str>,
        gtid: Gtid,
        change: Change,
        tx: &mpsc::Sender<Item>,
    ) -> bool {
        if !xa_open && self.groups.is_empty() {
            return give(pos, name, gtid, change, tx).await;
        }
        self.changes += 1;
        self.group(gtid).changes.push(change);
        true
    }

    /// The transaction `gtid` is read whole.
    async fn done(&mut self, pos: &mut HostPos, name: &Arc<str>, gtid: Gtid, tx: &mpsc::Sender<Item>) -> bool {
        if self.groups.is_empty() {
            return done(pos, name, gtid, tx).await;
        }
        self.group(gtid).ended = true;
        self.flush(pos, name, tx).await
    }

    /// An XA transaction's group ended with its XA PREPARE: held until its outcome is read.
    fn prepared(&mut self, gtid: Gtid, xid: String) {
        let g = self.group(gtid);
        g.ended = true;
        g.xid = Some(xid);
    }

    /// The outcome of `xid`; false when no held transaction has that XID.
    fn decided(&mut self, xid: &str, commit: bool) -> bool {
        match self.groups.iter_mut().find(|g| g.xid.as_deref() == Some(xid) && g.outcome.is_none()) {
            Some(g) => {
                g.outcome = Some(commit);
                true
            }
            None => false,
        }
    }

    /// Gives what no longer waits: from the front, every group read whole whose outcome is known.
    async fn flush(&mut self, pos: &mut HostPos, name: &Arc<str>, tx: &mpsc::Sender<Item>) -> bool {
        while let Some(front) = self.groups.front() {
            if !front.ended || (front.xid.is_some() && front.outcome.is_none()) {
                break;
            }
            let Some(g) = self.groups.pop_front() else { break };
            self.changes -= g.changes.len();
            if g.outcome != Some(false) {
                for c in g.changes {
                    if !give(pos, name, g.gtid, c, tx).await {
                        return false;
                    }
                }
            }
            if !done(pos, name, g.gtid, tx).await {
                return false;
            }
        }
        true
    }
}

fn skip(pos: &HostPos, gtid: &Gtid, row: u64) -> bool {
    match pos.inside.as_ref() {
        Some((g, n)) => same(g, gtid) && row < *n,
        None => false,
    }
}

fn same(a: &Gtid, b: &Gtid) -> bool {
    (a.domain, a.server, a.seq) == (b.domain, b.server, b.seq)
}

/// Hands the feed a change of `gtid`; the position then counts its row as given. False when the
/// receiver is gone.
async fn give(pos: &mut HostPos, name: &Arc<str>, gtid: Gtid, change: Change, tx: &mpsc::Sender<Item>) -> bool {
    let n = change.source.row + 1;
    if tx.send(Item::Change { data_host: name.clone(), gtid, change: Box::new(change) }).await.is_err() {
        return false;
    }
    inside(pos, gtid, n);
    true
}

/// The transaction is finished: the position moves past it, the feed learns it. False when the
/// receiver is gone.
async fn done(pos: &mut HostPos, name: &Arc<str>, gtid: Gtid, tx: &mpsc::Sender<Item>) -> bool {
    advance(pos, gtid);
    tx.send(Item::Done { data_host: name.clone(), gtid }).await.is_ok()
}

/// The position after `gtid` is done (for the feed's token).
pub fn advance(p: &mut HostPos, gtid: Gtid) {
    p.done.set(gtid);
    p.inside = None;
}

/// The position after `n` rows of `gtid` are given.
pub fn inside(p: &mut HostPos, gtid: Gtid, n: u64) {
    p.inside = Some((Gtid { standalone: false, ..gtid }, n));
}
