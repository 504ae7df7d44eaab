//! Backend connections for a session: borrowing one per dataNode (the pinned one inside a transaction),
//! bringing it to the session's state, and BEGIN/COMMIT/ROLLBACK across every node a transaction touched.

use std::sync::Arc;

use super::session::{Held, Session};
use crate::backend::conn::XaBranch;
use crate::backend::{Pooled, SessionSync};
use crate::config::model::TableKind;
use crate::error::{Error, Result};
use crate::exec::Reply;
use crate::proto::codec::Mark;
use crate::proto::StatusFlags;

/// How long a statement waits for recovery to finish a commit its node owes.
const OWED_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A consistent read of an InnoDB table every MariaDB has: inside a transaction begun by XA START it
/// takes the snapshot at once, as START TRANSACTION WITH CONSISTENT SNAPSHOT would.
const SNAPSHOT_READ: &str = "SELECT 1 FROM mysql.innodb_table_stats LIMIT 1";

/// ER_LOCK_DEADLOCK.
const ER_LOCK_DEADLOCK: u16 = 1213;

impl Session {
    /// One synced connection per node, in order. Inside a transaction, a node's pinned connection is
    /// reused, and a newly touched node gets the transaction opened on it first.
    pub async fn acquire(&mut self, nodes: &[Arc<str>]) -> Result<Vec<Pooled>> {
        self.acquire_for(nodes, false).await
    }

    /// `acquire`, for a read when `read` (it may go to a replica, by the dataHost's `balance`).
    /// A read inside a transaction stays on the transaction's connections, unless it starts with
    /// `/*balance*/` (Mycat): then it is `detached`, served by a replica outside the transaction.
    /// A connection the session holds for a node (transaction, state, cursor) serves every statement
    /// to that node; it is brought to the session's current state like any other.
    pub async fn acquire_for(&mut self, nodes: &[Arc<str>], read: bool) -> Result<Vec<Pooled>> {
        self.acquire_with(nodes, read, None).await
    }

    /// Brings `nodes` into the open transaction now, each with a consistent snapshot taken at once
    /// (the result cache answers a transaction's read from a node only once the node has joined it:
    /// what it answers is then what that snapshot shows). False when the transaction's BEGIN has a
    /// form the snapshot cannot be added to, or a node could not join (the statement then runs on
    /// the server and reports what went wrong).
    pub async fn join_snapshot(&mut self, nodes: &[Arc<str>]) -> bool {
        // autocommit=0 opened it implicitly: an explicit one ends at the same COMMIT; an XA branch
        // opens by XA START and its snapshot is taken by a read (`SNAPSHOT_READ`)
        let begin = if self.tx_is_xa() {
            String::new()
        } else if self.in_tx {
            match snapshot_begin(&self.begin_sql) {
                Some(b) => b,
                None => return false,
            }
        } else {
            "START TRANSACTION WITH CONSISTENT SNAPSHOT".to_string()
        };
        let nodes: Vec<Arc<str>> = nodes.to_vec();
        let res = self.acquire_with(&nodes, false, Some(&begin)).await;
        match res {
            Ok(conns) => {
                self.release(nodes, conns, &Ok::<(), Error>(())).await;
                true
            }
            Err(_) => false,
        }
    }

    /// `acquire_for`; with `snapshot`, a node that joins the transaction opens it with that statement
    /// (`join_snapshot`) instead of the session's BEGIN.
    async fn acquire_with(&mut self, nodes: &[Arc<str>], read: bool, snapshot: Option<&str>) -> Result<Vec<Pooled>> {
        let detached = self.detached(read);
        // a read may carry a node's BEGIN in the same write (if BEGIN failed, only a read ran outside)
        let begin_ahead = read;
        // a miss the result cache will keep reads what the writeHost has: the binlog it follows
        let read = read && (!self.tx_active() || detached) && !self.read_hint.writer;
        for node in nodes {
            // a committed transaction whose XA COMMIT a node still owes (its host was down): the
            // node's rows are read once recovery finished it, never half of it
            if !self.shared.xa.settled(node, OWED_COMMIT_WAIT).await {
                return Err(Error::sql(
                    1399,
                    "XAE07",
                    format!("dataNode {node} still owes the XA COMMIT of a committed transaction (its writeHost is unreachable or recovering); try again"),
                ));
            }
        }
        let mut out = Vec::with_capacity(nodes.len());
        let variant = self.backend_variant();
        for node in nodes {
            let held = if detached { None } else { self.pinned.iter().position(|h| &h.node == node) };
            let held = held.map(|i| self.pinned.swap_remove(i));
            let target = match self.rt.backends.node(node) {
                Ok(t) => t.clone(),
                Err(e) => {
                    if let Some(h) = held {
                        self.pinned.push(h);
                    }
                    self.put_back(nodes, out, detached);
                    return Err(e);
                }
            };
            // a write never reuses a replica's connection kept outside a transaction (for a read's
            // diagnostics): it goes back, the writer's is taken
            let held = match held {
                Some(h)
                    if !read
                        && !h.joined
                        && !h.conn.holds_state()
                        && h.conn.endpoint.addr != target.host.writer().pool.endpoint.addr =>
                {
                    None
                }
                h => h,
            };
            let (mut c, joined) = match held {
                Some(h) => (h.conn, h.joined),
                None => {
                    let pool = if read {
                        let need = self.written.get(&target.data_host).map(String::as_str);
                        if self.read_hint.slave {
                            target.host.replica(need).pool.clone()
                        } else {
                            target.host.reader(need).pool.clone()
                        }
                    } else {
                        target.host.writer().pool.clone()
                    };
                    match pool.get(variant).await {
                        Ok(c) => (c, false),
                        Err(e) => {
                            self.put_back(nodes, out, detached);
                            return Err(e);
                        }
                    }
                }
            };
            let sync = SessionSync {
                session_id: self.uid,
                charset: &self.charset,
                autocommit: self.autocommit || detached,
                isolation: &self.isolation,
                sets: &self.sets,
                sets_epoch: self.sets_epoch,
            };
            let mut r = c.sync(&target.database, &sync).await;
            // the server says whether the session's sql_mode has NO_BACKSLASH_ESCAPES (its status
            // flags after the sync); the proxy's own packets carry the same flag
            self.no_backslash = c.status & StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES.bits() != 0;
            // under autocommit=0 a node may be in the session's transaction with nothing open on its
            // server yet (a SET, a SELECT of no table): its first statement that reads or writes a table
            // opens the XA branch there
            let branch_due = joined && !self.in_tx && c.xa.is_none() && !c.in_transaction() && self.tx_is_xa();
            if r.is_ok() && self.tx_active() && !detached && (!joined || branch_due) {
                // the result cache may serve this transaction only what did not move since here
                if self.shared.cache.store.on() && !self.tx_seq.contains_key(node) {
                    let seq = self.shared.cache.seq();
                    self.tx_seq.insert(node.clone(), seq);
                }
                if let Some(next) = &self.next_tx {
                    r = c.exec_simple(&format!("SET TRANSACTION {next}")).await;
                }
                if let (true, Some(xid)) = (r.is_ok(), self.xa_branch(node)) {
                    let start = format!("XA START {xid}");
                    if begin_ahead && snapshot.is_none() {
                        c.queue_ahead(&start);
                    } else {
                        r = c.exec_simple(&start).await;
                    }
                    if r.is_ok() {
                        c.xa = Some(XaBranch { xid, wrote: false });
                        if snapshot.is_some() {
                            // XA START has no WITH CONSISTENT SNAPSHOT: the first consistent read
                            // takes it (one of InnoDB's own tables; a user who may not read it gets
                            // no snapshot, and the cache does not answer)
                            r = c.exec_simple(SNAPSHOT_READ).await;
                        }
                    }
                } else if let (true, Some(begin)) = (r.is_ok(), snapshot) {
                    r = c.exec_simple(begin).await;
                } else if r.is_ok() && self.in_tx {
                    if begin_ahead {
                        c.queue_ahead(&self.begin_sql);
                    } else {
                        r = c.exec_simple(&self.begin_sql).await;
                    }
                }
            }
            if !begin_ahead {
                // a statement that may write: this branch is prepared at COMMIT when another wrote too
                if let Some(b) = c.xa.as_mut() {
                    b.wrote = true;
                }
            }
            if r.is_ok() && self.reads_last_id {
                // LAST_INSERT_ID() anywhere in the statement reads the session's own value
                c.queue_ahead(&format!("DO LAST_INSERT_ID({})", self.last_insert_id));
            }
            if let Err(e) = r {
                if e.breaks_backend() {
                    c.discard();
                } else if joined || c.holds_state() {
                    self.pinned.push(Held { node: node.clone(), conn: c, joined });
                }
                self.put_back(nodes, out, detached);
                return Err(e);
            }
            out.push(c);
        }
        Ok(out)
    }

    /// Whether a read is `detached` from the open transaction (see `acquire_for`).
    pub fn detached(&self, read: bool) -> bool {
        read && self.tx_active() && self.read_hint.balance
    }

    /// Gives back what was taken when acquiring fails half-way: connections the session must keep
    /// stay with it, the rest go back to their pools.
    fn put_back(&mut self, nodes: &[Arc<str>], conns: Vec<Pooled>, detached: bool) {
        for (n, c) in nodes.iter().zip(conns) {
            if !detached && (self.tx_active() || self.keeps(n, &c)) {
                self.pinned.push(Held { node: n.clone(), conn: c, joined: self.tx_active() });
            }
        }
    }

    /// A connection the session keeps though no transaction needs it: it holds state only it has,
    /// a cursor of the session is open on it, or it holds the previous statement's warnings or error.
    pub fn keeps(&self, node: &Arc<str>, c: &Pooled) -> bool {
        c.holds_state()
            || self.cursors.values().any(|(n, _)| n == node)
            || matches!(&self.diag, super::diagnostics::Diagnostics::Node(n) if n == node)
    }

    /// Returns connections after a statement: kept while a transaction is open or while they hold the
    /// session's state, else back to the pool. A connection broken by the statement is dropped, and
    /// the transaction with it: every other node it touched is rolled back.
    pub async fn release<T>(&mut self, nodes: Vec<Arc<str>>, conns: Vec<Pooled>, result: &Result<T>) {
        self.release_as(nodes, conns, result, false).await
    }

    /// `release`; connections of a `detached` read go back to the pool even inside a transaction.
    pub async fn release_as<T>(
        &mut self,
        nodes: Vec<Arc<str>>,
        conns: Vec<Pooled>,
        result: &Result<T>,
        detached: bool,
    ) {
        let broken = !detached && matches!(result, Err(e) if e.breaks_backend());
        for (n, c) in nodes.into_iter().zip(conns) {
            if !c.clean {
                c.discard();
                continue;
            }
            if detached {
                // a replica's connection outside the transaction: state left there cannot follow
                // the session (one held connection per node, the writer's)
                if c.holds_state() {
                    c.discard();
                }
                continue;
            }
            if self.tx_active() || self.keeps(&n, &c) {
                self.pinned.push(Held { node: n, conn: c, joined: self.tx_active() });
            }
        }
        if broken && self.tx_active() {
            // part of the transaction is gone with the connection: end it everywhere, whether it
            // was opened by BEGIN or by autocommit=0
            self.in_tx = false;
            if let Err(e) = self.finish_pinned("ROLLBACK").await {
                tracing::warn!(conn = self.id, error = %e, "rolling back after a lost backend");
            }
        }
    }

    /// Ends the transaction on every connection that joined it with `verb` (COMMIT or ROLLBACK), by
    /// `end_branches`. Connections that hold the session's state stay with it; the rest go back to
    /// their pools.
    pub async fn finish_pinned(&mut self, verb: &str) -> Result<()> {
        let all = std::mem::take(&mut self.pinned);
        // the next transaction's snapshots are its own
        self.tx_seq.clear();
        let gtrid = self.tx_xid.take();
        let (mut joined, rest): (Vec<Held>, Vec<Held>) = all.into_iter().partition(|h| h.joined);
        self.pinned = rest;
        let nodes: Vec<Arc<str>> = joined.iter().map(|h| h.node.clone()).collect();
        let commit = verb == "COMMIT";
        let (overall, each) = end_branches(
            &self.shared.xa,
            gtrid.as_deref(),
            &nodes,
            joined.iter_mut().map(|h| &mut h.conn).collect(),
            commit,
        )
        .await;
        for (mut h, r) in joined.into_iter().zip(each) {
            match r {
                Ok(()) => {
                    if commit {
                        let nodes = [h.node.clone()];
                        self.remember_writes(&nodes, std::slice::from_mut(&mut h.conn)).await;
                    }
                    if self.keeps(&h.node, &h.conn) {
                        self.pinned.push(Held { joined: false, ..h });
                    }
                }
                Err(e) => {
                    if e.breaks_backend() || !h.conn.clean {
                        h.conn.discard();
                    } else if self.keeps(&h.node, &h.conn) {
                        self.pinned.push(Held { joined: false, ..h });
                    }
                }
            }
        }
        overall
    }

    /// The XID of `node`'s branch when the open transaction commits by XA (server.xml
    /// `transactionMode`, `SET xa`), its global id taken when the first node joins.
    fn xa_branch(&mut self, node: &Arc<str>) -> Option<String> {
        use crate::sql::classify::Kind;
        if !self.tx_is_xa() {
            return None;
        }
        // statements that commit implicitly (DDL, LOCK TABLES, what the proxy does not know) or may
        // (CALL), and the client's own XA statements, join as on one server: no branch of the proxy's
        let joins =
            !matches!(self.stmt_kind, Kind::Ddl | Kind::Lock | Kind::Unlock | Kind::Call | Kind::Xa | Kind::Other);
        // under autocommit=0 what reads no table (SET, SHOW, a SELECT of no table…) opens no
        // transaction on one server
        let opens_none = self.stmt_tableless
            || matches!(self.stmt_kind, Kind::Set | Kind::Show | Kind::Describe | Kind::Explain | Kind::Use);
        if !joins || (!self.in_tx && opens_none) {
            return None;
        }
        let gtrid = self.tx_xid.get_or_insert_with(|| self.shared.xa.next_gtrid()).clone();
        Some(crate::xa::Branch { gtrid, node: node.clone() }.sql())
    }

    /// Whether the open (or next) transaction's nodes join it by XA START: XA is on and the
    /// transaction began as BEGIN, START TRANSACTION [READ WRITE] or by autocommit=0. READ ONLY
    /// writes nowhere; WITH CONSISTENT SNAPSHOT has no XA form: those stay local.
    pub fn tx_is_xa(&self) -> bool {
        self.xa && (!self.in_tx || xa_form(&self.begin_sql))
    }

    /// Runs a routed statement on its acquired connections and streams the reply: the one place a
    /// statement runs on backends, so KILL QUERY (`ctl`) and the deadlock detector (`watch`) see
    /// every one. The mark goes to `settle` after the connections are released.
    pub async fn run_on(
        &mut self,
        r: &crate::route::Route,
        conns: &mut [Pooled],
        payloads: &[bytes::Bytes],
        fmt: &crate::exec::ClientFmt,
    ) -> (Option<Mark>, Result<Reply>) {
        let limit = self.rt.config.system.merge_memory_limit;
        let watched = self.watch(conns);
        self.ctl.start(conns.iter().map(|c| &**c));
        let guard = self.guard_write();
        let t0 = std::time::Instant::now();
        // only a merge learns
        let session = matches!(r.mode, crate::route::Mode::Merge(_)).then(|| self.charsets_key());
        let ask = session.map(|session| crate::exec::learned::Ask { learned: &self.rt.learned, session });
        let res = crate::exec::run(r, conns, payloads, &mut self.out, fmt, limit, ask).await;
        self.ctl.finish().await;
        if matches!(self.stmt_kind, crate::sql::classify::Kind::Ddl | crate::sql::classify::Kind::Call) {
            // a column's collation may have changed: merges learn their string keys again
            self.rt.learned.forget();
        }
        self.meter(r, conns, &res, t0.elapsed());
        self.after_write(guard);
        for c in conns.iter_mut() {
            for (name, value) in c.take_tracked() {
                self.adopt_variable(c, &name, &value);
            }
        }
        (watched, res)
    }

    /// Counts a statement on each of its dataNodes and hosts; a failure goes to the node that refused
    /// it when the reply names one, to every node otherwise.
    fn meter(&self, r: &crate::route::Route, conns: &[Pooled], res: &Result<Reply>, took: std::time::Duration) {
        for (c, node) in conns.iter().zip(&r.nodes) {
            let failed = match res {
                Err(_) => true,
                Ok(rep) => rep.failed.is_some() && rep.failed_at.as_ref().is_none_or(|(at, _)| at == node),
            };
            if let Ok(t) = self.rt.backends.node(node) {
                t.meter.record(took, failed);
            }
            c.pool().meter.record(took, failed);
        }
    }

    /// `run_on`, or `run_write_all` for a write on several nodes outside a transaction.
    pub async fn run_routed(
        &mut self,
        r: &crate::route::Route,
        conns: &mut [Pooled],
        payloads: &[bytes::Bytes],
        fmt: &crate::exec::ClientFmt,
    ) -> (Option<Mark>, Result<Reply>) {
        use crate::route::Mode;
        let atomic =
            !self.tx_active() && r.nodes.len() > 1 && matches!(r.mode, Mode::WriteAllSum | Mode::WriteAllReportOne);
        if atomic {
            // the cache's guard ends after the COMMIT on every node, not after the statement
            let guard = self.guard_write();
            self.write_guarded = true;
            let out = self.run_write_all(r, conns, payloads, fmt).await;
            self.write_guarded = false;
            self.after_write(guard);
            out
        } else {
            self.run_on(r, conns, payloads, fmt).await
        }
    }

    /// A write on several nodes outside a transaction runs as one transaction on them: BEGIN goes
    /// ahead of it on each, then COMMIT everywhere when every node applied it, ROLLBACK everywhere
    /// when one refused it (its error says so). A COMMIT that fails on some nodes names them.
    async fn run_write_all(
        &mut self,
        r: &crate::route::Route,
        conns: &mut [Pooled],
        payloads: &[bytes::Bytes],
        fmt: &crate::exec::ClientFmt,
    ) -> (Option<Mark>, Result<Reply>) {
        // DML only: any other statement (DDL) commits implicitly, which an XA branch refuses
        use crate::sql::classify::Kind;
        let dml = matches!(self.stmt_kind, Kind::Insert | Kind::Replace | Kind::Update | Kind::Delete);
        let gtrid = (self.xa && dml).then(|| self.shared.xa.next_gtrid());
        begin_each(gtrid.as_ref(), &r.nodes, conns.iter_mut());
        let mark = self.out.mark();
        let (watched, res) = self.run_on(r, conns, payloads, fmt).await;
        let applied = matches!(&res, Ok(rep) if rep.failed.is_none());
        let (overall, _) =
            end_branches(&self.shared.xa, gtrid.as_deref(), &r.nodes, conns.iter_mut().collect(), applied).await;
        match (applied, overall, res) {
            (true, Ok(()), res) => (watched, res),
            (true, Err(e), _) => {
                // the client must not see the OK of a write that is not committed everywhere
                self.out.rewind(mark);
                (watched, Err(e))
            }
            (false, _, Ok(mut rep)) => {
                if let (Some((node, msg)), Some(err)) = (rep.failed_at.take(), rep.failed.as_mut()) {
                    if self.out.rewind(mark) {
                        err.message = format!("{msg} (on dataNode {node}; rolled back on every dataNode)");
                        let mut b = bytes::BytesMut::new();
                        crate::proto::packets::err(&mut b, err.code, &err.state, &err.message);
                        self.out.push(&b);
                    }
                }
                (watched, Ok(rep))
            }
            (false, _, res) => (watched, res),
        }
    }

    /// A system variable a client statement changed on a backend (a prepared SET, a procedure, a
    /// relayed multi-statement), as the server's session tracking reported it: it becomes part of the
    /// session's replayable state, so every connection the session uses has it.
    fn adopt_variable(&mut self, c: &mut Pooled, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        if name == "character_set_client" {
            self.client_charset = value.to_string();
        }
        if name == "autocommit" {
            let on = value.eq_ignore_ascii_case("ON") || value == "1";
            self.autocommit = on;
            c.adopt_autocommit(on);
            return;
        }
        let quoted = if value.is_empty() && name == "character_set_results" {
            "NULL".to_string()
        } else {
            let v = value.replace('\'', "''");
            format!("'{}'", if self.no_backslash { v } else { v.replace('\\', "\\\\") })
        };
        let item = format!("SET @@session.{name} = {quoted}");
        let before = self.sets.len();
        self.push_set(item);
        c.adopt_sets(self.uid, before, self.sets.len());
    }

    /// Appends a replayable SET to the session's list, dropping an earlier SET of the same variable
    /// (then connections replay the list from its start: a new epoch).
    pub fn push_set(&mut self, item: String) {
        if let Some(key) = crate::sql::session::set_key(&item) {
            let before = self.sets.len();
            self.sets.retain(|old| crate::sql::session::set_key(old).as_deref() != Some(key.as_str()));
            if self.sets.len() != before {
                self.sets_epoch += 1;
            }
        }
        self.sets.push(Arc::from(item.as_str()));
    }

    /// SET NAMES sets the connection's character sets and collation anew: earlier SETs of them are dropped.
    pub fn forget_charset_sets(&mut self) {
        let before = self.sets.len();
        self.sets.retain(|old| {
            !crate::sql::session::set_key(old).is_some_and(|k| {
                matches!(
                    k.as_str(),
                    "character_set_client"
                        | "character_set_connection"
                        | "character_set_results"
                        | "collation_connection"
                )
            })
        });
        if self.sets.len() != before {
            // and SET NAMES itself joins the list after what it overrides, so that a connection that
            // already has the session's NAMES still gets them again
            self.sets_epoch += 1;
            let names = format!("SET NAMES {}", self.charset);
            self.sets.push(Arc::from(names.as_str()));
        }
    }

    /// Before a statement runs inside a transaction: tells the deadlock detector which backend
    /// connections the session holds (pinned, and those about to run it). The output mark lets a
    /// deadlock replace what the interrupted statement produced.
    fn watch(&self, conns: &[Pooled]) -> Option<Mark> {
        if !self.tx_active() {
            return None;
        }
        let held = self.pinned.iter().map(|h| &*h.conn).chain(conns.iter().map(|c| &**c));
        self.rt.backends.deadlocks.begin(self.uid, held);
        Some(self.out.mark())
    }

    /// After a watched statement, its connections released: a deadlock — InnoDB's on one node, or one
    /// across nodes that the detector broke by interrupting this session — ends the whole
    /// transaction on every node, as on one server, and the client gets 1213.
    pub async fn settle(&mut self, watched: Option<Mark>, res: Result<Reply>) -> Result<Reply> {
        let Some(mark) = watched else { return res };
        let victim = self.rt.backends.deadlocks.end(self.uid);
        let deadlocked = victim
            || match &res {
                Ok(r) => r.failed.as_ref().is_some_and(|e| e.code == ER_LOCK_DEADLOCK),
                Err(Error::Sql { code, .. }) => *code == ER_LOCK_DEADLOCK,
                Err(_) => false,
            };
        if !deadlocked {
            return res;
        }
        if let Err(e) = self.finish_pinned("ROLLBACK").await {
            tracing::warn!(conn = self.id, error = %e, "rolling back a deadlocked transaction");
        }
        self.in_tx = false;
        if victim && self.out.rewind(mark) {
            return Err(Error::sql(
                ER_LOCK_DEADLOCK,
                "40001",
                "Deadlock found when trying to get lock; try restarting transaction",
            ));
        }
        res
    }

    /// Rolls back the open transaction and gives every held connection back, reset first when it
    /// holds state so that the next client finds it clean and its named locks free (client gone,
    /// COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub async fn rollback_pinned(&mut self) {
        let _ = self.finish_pinned("ROLLBACK").await;
        self.in_tx = false;
        for mut h in std::mem::take(&mut self.pinned) {
            if (h.conn.holds_state() || h.conn.in_transaction()) && h.conn.reset().await.is_err() {
                h.conn.discard();
            }
        }
    }

    /// BEGIN / START TRANSACTION: commits an open transaction (as MySQL does), then opens one lazily.
    pub async fn begin(&mut self, sql: &str) -> Result<()> {
        if let Err(e) = self.finish_pinned("COMMIT").await {
            self.in_tx = false;
            return self.send_error(&e).await;
        }
        self.in_tx = true;
        self.begin_sql = sql.trim().trim_end_matches(';').to_string();
        self.send_ok(0, 0, b"").await
    }

    /// DDL commits the open transaction on every node it touched, as on MariaDB — whether BEGIN or
    /// autocommit=0 opened it. CREATE/DROP TEMPORARY TABLE does not.
    pub async fn implicit_commit(&mut self, kind: crate::sql::classify::Kind, sql: &str) -> Result<()> {
        if kind != crate::sql::classify::Kind::Ddl || !self.tx_active() || crate::sql::classify::is_temporary_ddl(sql) {
            return Ok(());
        }
        let r = self.finish_pinned("COMMIT").await;
        self.in_tx = false;
        r
    }

    pub async fn end_tx(&mut self, verb: &str) -> Result<()> {
        let r = self.finish_pinned(verb).await;
        self.in_tx = false;
        self.next_tx = None;
        match r {
            Ok(()) => self.send_ok(0, 0, b"").await,
            Err(e) => self.send_error(&e).await,
        }
    }

    /// The node that answers metadata questions about `table` (DESC, SHOW CREATE, COM_FIELD_LIST).
    pub fn node_of_table(&self, table: &str) -> Result<Arc<str>> {
        let cfg = self.rt.config.clone();
        let schema_name = self.schema.clone().ok_or_else(|| Error::sql(1046, "3D000", "No database selected"))?;
        let schema = cfg
            .schema(&schema_name)
            .ok_or_else(|| Error::sql(1049, "42000", format!("Unknown database '{schema_name}'")))?;
        match schema.table(table) {
            Some(t) => {
                let i = if t.kind == TableKind::Global { rand::random_range(0..t.data_nodes.len().max(1)) } else { 0 };
                t.data_nodes
                    .get(i)
                    .map(|s| Arc::from(s.as_str()))
                    .ok_or_else(|| Error::unsupported("table has no dataNode"))
            }
            None => {
                schema.data_node.as_deref().map(Arc::from).ok_or_else(|| {
                    Error::sql(1146, "42S02", format!("Table '{}.{}' doesn't exist", schema.name, table))
                })
            }
        }
    }
}

/// Opens a transaction of its own on each connection of a statement that runs outside the session's
/// (a write on several nodes, a sharded LOAD DATA): BEGIN, or — with a global id — XA START of
/// its node's branch. It goes out ahead of the statement.
pub(super) fn begin_each<'a>(
    gtrid: Option<&Arc<str>>,
    nodes: &[Arc<str>],
    conns: impl Iterator<Item = &'a mut Pooled>,
) {
    for (c, node) in conns.zip(nodes) {
        match gtrid {
            Some(g) => {
                let xid = crate::xa::Branch { gtrid: g.clone(), node: node.clone() }.sql();
                c.queue_ahead(&format!("XA START {xid}"));
                c.xa = Some(XaBranch { xid, wrote: true });
            }
            None => c.queue_ahead("BEGIN"),
        }
    }
}

/// Ends a transaction on its branches (`nodes[i]` on `conns[i]`), the one place a transaction
/// across nodes commits or rolls back. Local branches get COMMIT/ROLLBACK. XA branches: when at
/// most one of them wrote, each ends in one phase (`XA END`, `XA COMMIT … ONE PHASE` in one write:
/// no extra round trip); when several wrote, those are prepared (the others end in one phase), the
/// decision is logged and fsync'ed by the coordinator, then `XA COMMIT` goes to each — a branch
/// that cannot be reached then is left to recovery, and the COMMIT still succeeds. A failed prepare
/// rolls back every branch, and the client gets that node's error. Returns the client's result and
/// each connection's (an error there: the connection is not to be reused as it is).
pub(super) async fn end_branches(
    xa: &crate::xa::Coordinator,
    gtrid: Option<&str>,
    nodes: &[Arc<str>],
    mut conns: Vec<&mut Pooled>,
    commit: bool,
) -> (Result<()>, Vec<Result<()>>) {
    let xid = |c: &Pooled| c.xa.as_ref().map(|b| b.xid.clone());
    let any_xa = conns.iter().any(|c| c.xa.is_some());
    let writers: Vec<usize> = (0..conns.len()).filter(|&i| conns[i].xa.as_ref().is_some_and(|b| b.wrote)).collect();
    // two phases when several branches wrote
    let Some(gtrid) = gtrid.filter(|_| commit && writers.len() > 1) else {
        let plans: Vec<Vec<String>> = conns
            .iter()
            .map(|c| match (xid(c), commit) {
                (None, true) => vec!["COMMIT".to_string()],
                (None, false) => vec!["ROLLBACK".to_string()],
                (Some(x), true) => vec![format!("XA END {x}"), format!("XA COMMIT {x} ONE PHASE")],
                (Some(x), false) => vec![format!("XA END {x}"), format!("XA ROLLBACK {x}")],
            })
            .collect();
        let replies = pipeline(conns.iter_mut().map(|c| &mut **c).zip(plans)).await;
        let each = settle_branches(&mut conns, replies, !commit);
        if any_xa {
            crate::stats::xa(if commit { "one_phase" } else { "rollback" });
        }
        let overall = overall(&each, nodes, if commit { "COMMIT" } else { "ROLLBACK" });
        return (overall, each);
    };
    // phase one: the writers prepare, the others end in one phase, all in one round trip
    xa.begin_flight(gtrid);
    let plans: Vec<Vec<String>> = conns
        .iter()
        .enumerate()
        .map(|(i, c)| match xid(c) {
            None => vec![],
            Some(x) if writers.contains(&i) => vec![format!("XA END {x}"), format!("XA PREPARE {x}")],
            Some(x) => vec![format!("XA END {x}"), format!("XA COMMIT {x} ONE PHASE")],
        })
        .collect();
    let replies = pipeline(conns.iter_mut().map(|c| &mut **c).zip(plans)).await;
    let first: Vec<Result<()>> =
        replies.into_iter().map(|r| r.into_iter().find(|x| x.is_err()).unwrap_or(Ok(()))).collect();
    let refused = writers.iter().find_map(|&i| match &first[i] {
        Err(e) => Some((i, e.duplicate())),
        Ok(()) => None,
    });
    let decided = match refused {
        Some((i, e)) => {
            Err(with_where(e, &format!("XA PREPARE on dataNode {}; rolled back on every dataNode", nodes[i])))
        }
        None => {
            let written: Vec<String> = writers.iter().map(|&i| nodes[i].to_string()).collect();
            xa.decide(gtrid, &written).await.map_err(|e| {
                Error::sql(1399, "XAE07", format!("the XA coordinator log could not be written ({e}); the transaction was rolled back on every dataNode"))
            })
        }
    };
    if let Err(e) = decided {
        // presumed abort: nothing was decided, every prepared branch rolls back (an unreachable one
        // is rolled back by recovery: no decision names it)
        let plans: Vec<Vec<String>> = conns
            .iter()
            .enumerate()
            .map(|(i, c)| match xid(c) {
                Some(x) if writers.contains(&i) && c.clean => vec![format!("XA ROLLBACK {x}")],
                None => vec!["ROLLBACK".to_string()],
                _ => vec![],
            })
            .collect();
        let replies = pipeline(conns.iter_mut().map(|c| &mut **c).zip(plans)).await;
        let each = settle_branches(&mut conns, replies, true);
        let each = merged(&mut conns, each, first);
        xa.end_flight(gtrid);
        crate::stats::xa("rollback");
        return (Err(e), each);
    }
    if let Some(d) = xa.commit_delay {
        tokio::time::sleep(d).await;
    }
    // phase two: the decision is on disk; each prepared branch commits
    let plans: Vec<Vec<String>> = conns
        .iter()
        .enumerate()
        .map(|(i, c)| match xid(c) {
            Some(x) if writers.contains(&i) => vec![format!("XA COMMIT {x}")],
            None => vec!["COMMIT".to_string()],
            _ => vec![],
        })
        .collect();
    let replies = pipeline(conns.iter_mut().map(|c| &mut **c).zip(plans)).await;
    let each = settle_branches(&mut conns, replies, false);
    let done: Vec<&str> = writers.iter().filter(|&&i| each[i].is_ok()).map(|&i| &*nodes[i]).collect();
    xa.committed(gtrid, &done);
    if done.len() < writers.len() {
        tracing::warn!(xid = %gtrid, committed = ?done, "XA COMMIT did not reach every dataNode: recovery finishes it");
        xa.leave(gtrid);
    }
    xa.end_flight(gtrid);
    crate::stats::xa("commit");
    let each = merged(&mut conns, each, first);
    (Ok(()), each)
}

/// A connection's result over both phases; one that failed in either is not reused as it is.
fn merged(conns: &mut [&mut Pooled], later: Vec<Result<()>>, first: Vec<Result<()>>) -> Vec<Result<()>> {
    let out: Vec<Result<()>> = first.into_iter().zip(later).map(|(a, b)| a.and(b)).collect();
    for (c, r) in conns.iter_mut().zip(&out) {
        if r.is_err() {
            c.clean = false;
        }
    }
    out
}

/// Each connection's result from its replies (the first error; with `rolling_back`, an error of
/// `XA END` before a good `XA ROLLBACK`, or `XA ROLLBACK` of a branch the server no longer has, is
/// no error). A branch's end is done either way: it is no longer in one, and a connection whose
/// branch failed otherwise is not reused (closing it ends the branch, or leaves a prepared one to
/// recovery).
fn settle_branches(conns: &mut [&mut Pooled], replies: Vec<Vec<Result<()>>>, rolling_back: bool) -> Vec<Result<()>> {
    use crate::xa::ER_XAER_NOTA;
    let mut out = Vec::with_capacity(conns.len());
    for (c, r) in conns.iter_mut().zip(replies) {
        let was_xa = c.xa.take().is_some();
        let res = if was_xa && rolling_back {
            match r.last() {
                Some(Ok(())) | None => Ok(()),
                Some(Err(Error::Sql { code: ER_XAER_NOTA, .. })) => Ok(()),
                Some(Err(e)) => Err(e.duplicate()),
            }
        } else {
            r.into_iter().find(|x| x.is_err()).unwrap_or(Ok(()))
        };
        if was_xa && res.is_err() {
            c.clean = false;
        }
        out.push(res);
    }
    out
}

/// The client's result of a one-phase end: the first error, naming which nodes did and did not
/// finish when there were several.
fn overall(each: &[Result<()>], nodes: &[Arc<str>], verb: &str) -> Result<()> {
    let (mut done, mut failed, mut first) = (Vec::new(), Vec::new(), None);
    for (r, n) in each.iter().zip(nodes) {
        match r {
            Ok(()) => done.push(n.to_string()),
            Err(e) => {
                failed.push(n.to_string());
                first.get_or_insert_with(|| e.duplicate());
            }
        }
    }
    match first {
        None => Ok(()),
        Some(e) => Err(half_done(e, verb, &done, &failed)),
    }
}

/// Sends each connection its statements, all connections' in one write each before any reply is
/// awaited, then reads every reply: one round trip however many nodes and statements. A connection
/// left mid-reply gets nothing and an error; after a lost connection its later replies are errors.
pub(super) async fn pipeline<'a>(work: impl Iterator<Item = (&'a mut Pooled, Vec<String>)>) -> Vec<Vec<Result<()>>> {
    let mut work: Vec<(&mut Pooled, Vec<String>, Option<Error>)> = work.map(|(c, s)| (c, s, None)).collect();
    for (c, stmts, failed) in work.iter_mut() {
        if stmts.is_empty() {
            continue;
        }
        if !c.clean {
            *failed = Some(Error::unsupported("connection left mid-reply"));
            continue;
        }
        for s in stmts.iter() {
            c.queue(&crate::proto::packets::com_query(s.as_bytes()));
        }
        if let Err(e) = c.flush().await {
            *failed = Some(e);
        }
    }
    let mut out = Vec::with_capacity(work.len());
    for (c, stmts, failed) in work {
        let mut replies = Vec::with_capacity(stmts.len());
        let mut lost = failed;
        for _ in &stmts {
            if let Some(e) = &lost {
                replies.push(Err(e.duplicate()));
                continue;
            }
            let r = c.read_reply().await;
            if let Err(e) = &r {
                if e.breaks_backend() {
                    lost = Some(e.duplicate());
                }
            }
            replies.push(r);
        }
        out.push(replies);
    }
    out
}

/// Runs `verb` on every connection, sent to all before any reply is awaited (`pipeline`).
pub(super) async fn on_every<'a>(conns: impl Iterator<Item = &'a mut Pooled>, verb: &str) -> Vec<Result<()>> {
    let replies = pipeline(conns.map(|c| (c, vec![verb.to_string()]))).await;
    replies.into_iter().map(|r| r.into_iter().next().unwrap_or(Ok(()))).collect()
}

/// BEGIN forms whose transaction may commit by XA (see `Session::tx_is_xa`).
pub fn xa_form(begin: &str) -> bool {
    const FORMS: [&[&str]; 4] =
        [&["BEGIN"], &["BEGIN", "WORK"], &["START", "TRANSACTION"], &["START", "TRANSACTION", "READ", "WRITE"]];
    FORMS.iter().any(|form| {
        let mut words = begin.split_whitespace();
        form.iter().all(|f| words.next().is_some_and(|w| w.eq_ignore_ascii_case(f))) && words.next().is_none()
    })
}

/// An error with where it happened added to its message.
fn with_where(e: Error, where_: &str) -> Error {
    match e {
        Error::Sql { code, state, message } => Error::Sql { code, state, message: format!("{message} ({where_})") },
        Error::BackendLost { addr, data_host, reason } => {
            Error::BackendLost { addr, data_host, reason: format!("{reason} ({where_})") }
        }
        other => other,
    }
}

/// The error of a COMMIT/ROLLBACK that failed on some nodes: the node's own error, and — when the
/// transaction spanned several nodes — which of them did and did not finish it.
fn half_done(e: Error, verb: &str, done: &[String], failed: &[String]) -> Error {
    let where_ = if done.is_empty() {
        format!("{verb} on dataNode {}", failed.join(", "))
    } else {
        format!("{verb} done on dataNode {}, not on dataNode {}", done.join(", "), failed.join(", "))
    };
    with_where(e, &where_)
}

/// The transaction's BEGIN with a consistent snapshot taken at once (`START TRANSACTION WITH
/// CONSISTENT SNAPSHOT`, its READ ONLY / READ WRITE kept); `None` for a form not known here.
pub fn snapshot_begin(begin: &str) -> Option<String> {
    let spaced = begin.replace(',', " , ");
    let words: Vec<String> = spaced.split_whitespace().map(|w| w.to_ascii_uppercase()).collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let chars: &[&str] = match w.as_slice() {
        ["BEGIN"] | ["BEGIN", "WORK"] => &[],
        ["START", "TRANSACTION", rest @ ..] => rest,
        _ => return None,
    };
    let mut out = String::from("START TRANSACTION WITH CONSISTENT SNAPSHOT");
    for part in chars.split(|x| *x == ",") {
        match part {
            [] if chars.is_empty() => {}
            ["WITH", "CONSISTENT", "SNAPSHOT"] => {}
            ["READ", m @ ("ONLY" | "WRITE")] => {
                out.push_str(", READ ");
                out.push_str(m);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{snapshot_begin, xa_form};

    #[test]
    fn the_begin_forms_that_commit_by_xa() {
        for f in ["BEGIN", "begin work", "START TRANSACTION", " start  transaction read write "] {
            assert!(xa_form(f), "{f}");
        }
        for f in
            ["START TRANSACTION READ ONLY", "START TRANSACTION WITH CONSISTENT SNAPSHOT", "BEGIN WORK X", "", "START"]
        {
            assert!(!xa_form(f), "{f}");
        }
    }

    #[test]
    fn the_snapshot_begin_keeps_the_transactions_characteristics() {
        let s = "START TRANSACTION WITH CONSISTENT SNAPSHOT";
        assert_eq!(snapshot_begin("BEGIN").as_deref(), Some(s));
        assert_eq!(snapshot_begin("begin work").as_deref(), Some(s));
        assert_eq!(snapshot_begin("start transaction").as_deref(), Some(s));
        assert_eq!(snapshot_begin("START TRANSACTION WITH CONSISTENT SNAPSHOT").as_deref(), Some(s));
        assert_eq!(
            snapshot_begin("start transaction read only").as_deref(),
            Some("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        );
        assert_eq!(
            snapshot_begin("START TRANSACTION READ WRITE,WITH CONSISTENT SNAPSHOT").as_deref(),
            Some("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ WRITE")
        );
        assert_eq!(snapshot_begin("/* x */ BEGIN"), None);
        assert_eq!(snapshot_begin("START TRANSACTION READ"), None);
        assert_eq!(snapshot_begin("START TRANSACTION ,"), None);
    }
}
