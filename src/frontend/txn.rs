//! Backend connections for a session: borrowing one per dataNode (the pinned one inside a transaction),
//! bringing it to the session's state, and BEGIN/COMMIT/ROLLBACK across every node a transaction touched.

use std::sync::Arc;

use super::session::Session;
use crate::backend::{Pooled, SessionSync};
use crate::config::model::TableKind;
use crate::error::{Error, Result};
use crate::exec::Reply;
use crate::proto::codec::Mark;

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
    pub async fn acquire_for(&mut self, nodes: &[Arc<str>], read: bool) -> Result<Vec<Pooled>> {
        let detached = self.detached(read);
        // a read may carry a node's BEGIN in the same write (if BEGIN failed, only a read ran outside)
        let begin_ahead = read;
        let read = read && (!self.tx_active() || detached);
        let mut out = Vec::with_capacity(nodes.len());
        let variant = self.backend_variant();
        for node in nodes {
            if !detached {
                if let Some(i) = self.pinned.iter().position(|(n, _)| n == node) {
                    out.push(self.pinned.swap_remove(i).1);
                    continue;
                }
            }
            let target = match self.shared.backends.node(node) {
                Ok(t) => t.clone(),
                Err(e) => {
                    self.put_back(nodes, out, detached);
                    return Err(e);
                }
            };
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
            let mut c = match pool.get(variant).await {
                Ok(c) => c,
                Err(e) => {
                    self.put_back(nodes, out, detached);
                    return Err(e);
                }
            };
            let sync = SessionSync {
                session_id: self.uid,
                charset: &self.charset,
                autocommit: self.autocommit || detached,
                isolation: &self.isolation,
                sets: &self.sets,
            };
            let mut r = c.sync(&target.database, &sync).await;
            if r.is_ok() && self.tx_active() && !detached {
                if let Some(next) = &self.next_tx {
                    r = c.exec_simple(&format!("SET TRANSACTION {next}")).await;
                }
                if r.is_ok() && self.in_tx {
                    if begin_ahead {
                        c.queue_ahead(&self.begin_sql);
                    } else {
                        r = c.exec_simple(&self.begin_sql).await;
                    }
                }
            }
            if let Err(e) = r {
                if e.breaks_backend() {
                    c.discard();
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

    /// Pins what was taken from `pinned` back (used when acquiring fails half-way).
    fn put_back(&mut self, nodes: &[Arc<str>], conns: Vec<Pooled>, detached: bool) {
        if self.tx_active() && !detached {
            for (n, c) in nodes.iter().zip(conns) {
                self.pinned.push((n.clone(), c));
            }
        }
    }

    /// Returns connections after a statement: pinned while a transaction is open, else back to the
    /// pool. A connection broken by the statement is dropped, and the transaction with it.
    pub fn release<T>(&mut self, nodes: Vec<Arc<str>>, conns: Vec<Pooled>, result: &Result<T>) {
        self.release_as(nodes, conns, result, false)
    }

    /// `release`; connections of a `detached` read go back to the pool even inside a transaction.
    pub fn release_as<T>(&mut self, nodes: Vec<Arc<str>>, conns: Vec<Pooled>, result: &Result<T>, detached: bool) {
        let broken = !detached && matches!(result, Err(e) if e.breaks_backend());
        for (n, c) in nodes.into_iter().zip(conns) {
            if !c.clean {
                c.discard();
                continue;
            }
            if self.tx_active() && !detached {
                self.pinned.push((n, c));
            }
        }
        if broken && self.tx_active() && self.in_tx {
            // part of the transaction is gone with the connection: end it everywhere
            self.in_tx = false;
            let pinned = std::mem::take(&mut self.pinned);
            tokio::spawn(async move {
                for (_, mut c) in pinned {
                    if c.exec_simple("ROLLBACK").await.is_err() {
                        c.discard();
                    }
                }
            });
        }
    }

    /// Ends the transaction on every pinned connection with `verb` (COMMIT or ROLLBACK).
    pub async fn finish_pinned(&mut self, verb: &str) -> Result<()> {
        let mut pinned = std::mem::take(&mut self.pinned);
        // every node gets the verb before any reply is awaited: one round trip, not one per node
        let mut sent = Vec::with_capacity(pinned.len());
        for (_, c) in pinned.iter_mut() {
            sent.push(c.send_query(verb).await);
        }
        let mut first_err = None;
        for ((node, mut c), sent) in pinned.into_iter().zip(sent) {
            let r = match sent {
                Ok(()) => c.read_reply().await,
                Err(e) => Err(e),
            };
            match r {
                Ok(_) if verb == "COMMIT" => {
                    let nodes = [node.clone()];
                    self.remember_writes(&nodes, std::slice::from_mut(&mut c)).await;
                }
                Ok(_) => {}
                Err(e) => {
                    if e.breaks_backend() {
                        c.discard();
                    }
                    if first_err.is_none() {
                        first_err = Some(match e {
                            Error::Sql { code, state, message } => {
                                Error::Sql { code, state, message: format!("{message} ({verb} on dataNode {node})") }
                            }
                            other => other,
                        });
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Before a statement runs inside a transaction: tells the deadlock detector which backend
    /// connections the session holds (pinned, and those about to run it). The output mark lets a
    /// deadlock replace what the interrupted statement produced.
    pub fn watch(&self, conns: &[Pooled]) -> Option<Mark> {
        if !self.tx_active() {
            return None;
        }
        let held = self.pinned.iter().map(|(_, c)| &**c).chain(conns.iter().map(|c| &**c));
        self.shared.backends.deadlocks.begin(self.uid, held);
        Some(self.out.mark())
    }

    /// After a watched statement, its connections released: a deadlock — InnoDB's on one node, or one
    /// across nodes that the detector broke by interrupting this session — ends the whole
    /// transaction on every node, as on one server, and the client gets 1213.
    pub async fn settle(&mut self, watched: Option<Mark>, res: Result<Reply>) -> Result<Reply> {
        let Some(mark) = watched else { return res };
        let victim = self.shared.backends.deadlocks.end(self.uid);
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

    /// Rolls back whatever is pinned (client gone, reset, change user).
    pub async fn rollback_pinned(&mut self) {
        let _ = self.finish_pinned("ROLLBACK").await;
        self.in_tx = false;
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
        let cfg = self.shared.config.load_full();
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
