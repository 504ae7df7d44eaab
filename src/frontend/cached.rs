//! The session's side of the result cache: whether a routed SELECT may be answered from it or kept
//! (`cache_plan`), the lookup and the capture of a miss (`cached_read`), the write guards.

use std::sync::Arc;

use super::query::Access;
use super::session::Session;
use crate::cache::eligible;
use crate::cache::store::{Entry, Key};
use crate::config::model::Schema;
use crate::config::placement::Logical;
use crate::error::Result;
use crate::exec::Reply;
use crate::route::Route;
use crate::sql::analyze::Analysis;
use crate::sql::classify::Kind;

/// A cacheable read: its key, the logical tables it reads and the dataHosts it reads from.
pub struct Plan {
    key: Key,
    /// The key was looked up before the route and missed (`cache_missed`): no second lookup.
    looked: bool,
    tables: Vec<Logical>,
    data_hosts: Vec<Arc<str>>,
    nodes: Vec<Arc<str>>,
}

pub enum Lookup {
    Hit(Reply),
    /// The epochs the miss reads at, and this session's turn to fill the key.
    Miss(Vec<u64>, crate::cache::store::FillGuard),
    Bypass,
}

/// How long a miss waits for another session filling the same key before it runs on its own.
const FILL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Statements whose run through the proxy may change table data (their tables' epochs move).
pub fn changes_data(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::Select
            | Kind::Show
            | Kind::Describe
            | Kind::Explain
            | Kind::Set
            | Kind::Use
            | Kind::Do
            | Kind::Begin
            | Kind::Commit
            | Kind::Rollback
            | Kind::Savepoint
            | Kind::Kill
            | Kind::Empty
    )
}

impl Session {
    /// The logical tables an analysis names in `schema`; `None` when one is in a system schema.
    pub fn logical_tables(&self, schema: &Schema, a: &Analysis) -> Option<Vec<Logical>> {
        let mut out = Vec::with_capacity(a.tables.len());
        for t in &a.tables {
            let s = t.schema.as_deref().unwrap_or(&schema.name);
            if eligible::SYSTEM_SCHEMAS.iter().any(|x| x.eq_ignore_ascii_case(s)) {
                return None;
            }
            let l = Logical::Table { schema: s.to_string(), table: t.name.clone() };
            if !out.contains(&l) {
                out.push(l);
            }
        }
        Some(out)
    }

    /// Whether this routed SELECT may be answered from the cache (and its reply kept): the session may
    /// use the cache (`cache_key`), its text is deterministic, its tables known and cacheable, every
    /// dataHost it reads has a binlog reader no further behind than `resultCacheMaxLag`.
    /// `statement` is what identifies it: the text, or a prepared statement's text and parameters;
    /// `text_allowed`: `eligible::text_allows` said its text may be cached.
    pub fn cache_plan(
        &mut self,
        schema: &Schema,
        a: Option<&Analysis>,
        text_allowed: bool,
        statement: &[u8],
        r: &Route,
        binary: bool,
    ) -> Option<Plan> {
        let a = a?;
        if a.statements != 1 || a.locking_read || a.tables.is_empty() || !text_allowed {
            return None;
        }
        // the key the lookup before the route missed, when it is this statement's
        let (key, looked) = match self.cache_missed.take() {
            Some(k) if k.binary == binary && *k.schema == *schema.name && k.statement == statement => (k, true),
            _ => (self.cache_key(&schema.name, statement.to_vec(), binary)?, false),
        };
        let tables = self.logical_tables(schema, a)?;
        // schema.xml's cache="false" on a table (or its schema) keeps its reads out
        for t in &tables {
            if let Logical::Table { schema, table } = t {
                if !self.rt.config.schema(schema).is_some_and(|s| s.cacheable(table)) {
                    return None;
                }
            }
        }
        let max_lag = std::time::Duration::from_millis(self.rt.config.system.result_cache_max_lag_ms);
        let now = std::time::Instant::now();
        let mut data_hosts: Vec<Arc<str>> = Vec::with_capacity(r.nodes.len());
        for n in &r.nodes {
            let t = self.rt.backends.node(n).ok()?;
            // fail closed: a reader disconnected, behind, or not heard from is no guarantee
            let lag = t.host.binlog.lag(now, crate::backend::binlog::POLL_STALE)?;
            if lag > max_lag {
                return None;
            }
            if !data_hosts.contains(&t.data_host) {
                data_hosts.push(t.data_host.clone());
            }
        }
        let tables = crate::cache::Cache::dependencies(&tables);
        Some(Plan { key, looked, tables, data_hosts, nodes: r.nodes.clone() })
    }

    /// The key of a statement when the session may use the cache at all (the checks that need no
    /// parse: cache on, outside transactions or in a REPEATABLE READ one that has not written, no
    /// state held, nothing pending).
    pub fn cache_key(&mut self, schema: &str, statement: Vec<u8>, binary: bool) -> Option<Key> {
        // inside a transaction: only a REPEATABLE READ one that has not written, on its own snapshots
        let in_tx = self.tx_active();
        if in_tx && (!self.write_guards.is_empty() || self.isolation != "REPEATABLE-READ" || self.next_tx.is_some()) {
            return None;
        }
        if !self.shared.cache.store.on()
            || self.pinned.iter().any(|h| !h.joined || h.conn.holds_state())
            || !self.pending_track.is_empty()
            || self.more_results
            || self.calc_found_rows
            || self.reads_last_id
        {
            return None;
        }
        let (user, schema, session) = self.key_parts(schema);
        Some(Key { user, schema, statement, session, binary, deprecate_eof: self.deprecate_eof() })
    }

    /// `cache_key` in the session's current schema (none: no key).
    pub fn cache_key_here(&mut self, statement: Vec<u8>, binary: bool) -> Option<Key> {
        // taken and put back: the key is built from the name without copying it
        let schema = self.schema.take()?;
        let key = self.cache_key(&schema, statement, binary);
        self.schema = Some(schema);
        key
    }

    /// The user, schema and session parts of this session's keys: the same shared strings from one
    /// statement to the next while they do not change (a hit allocates none of them).
    fn key_parts(&mut self, schema: &str) -> (Arc<str>, Arc<str>, Arc<str>) {
        // charset, autocommit, isolation, the framing variant, the replayed SETs
        let v = self.backend_variant();
        let mut session = std::mem::take(&mut self.key_memo.scratch);
        session.clear();
        session.push_str(&self.charset);
        session.push('|');
        session.push_str(&self.isolation);
        for b in [self.autocommit, v.found_rows, v.deprecate_eof, v.extended_metadata] {
            session.push(if b { '1' } else { '0' });
        }
        for s in &self.sets {
            session.push('|');
            session.push_str(s);
        }
        let m = &mut self.key_memo;
        if *m.session != *session {
            m.session = Arc::from(session.as_str());
        }
        m.scratch = session;
        if *m.user != *self.user.name {
            m.user = Arc::from(self.user.name.as_str());
        }
        if *m.schema != *schema {
            m.schema = Arc::from(schema);
        }
        (m.user.clone(), m.schema.clone(), m.session.clone())
    }

    /// A stored reply still valid for `key` — its tables' epochs unmoved, every dataHost it came from
    /// read within `resultCacheMaxLag` — is sent, before any parse or route.
    pub async fn cache_hit(&mut self, key: &Key) -> Result<Option<Reply>> {
        let cache = self.shared.cache.clone();
        let Some(e) = cache.store.get(key) else { return Ok(None) };
        self.answer_from(&cache, key, e).await
    }

    /// `cache_hit` before the route: a key not stored is kept for the plan (`cache_missed`), which
    /// then neither builds nor looks it up again.
    pub async fn cache_hit_first(&mut self, key: Key) -> Result<Option<Reply>> {
        let cache = self.shared.cache.clone();
        let found = match cache.store.get(&key) {
            Some(e) => self.answer_from(&cache, &key, e).await?,
            None => None,
        };
        if found.is_none() {
            self.cache_missed = Some(key);
        }
        Ok(found)
    }

    /// Sends stored entry `e` of `key` if it is still valid for this session now.
    async fn answer_from(
        &mut self,
        cache: &Arc<crate::cache::Cache>,
        key: &Key,
        e: Arc<Entry>,
    ) -> Result<Option<Reply>> {
        match cache.is_current(&e.tables, &e.epochs) {
            None => return Ok(None), // a write under way
            Some(false) => {
                cache.store.remove(key);
                return Ok(None);
            }
            Some(true) => {}
        }
        if !self.fresh(&e.data_hosts) {
            return Ok(None);
        }
        if self.tx_active() {
            // every node it came from in this transaction (those not yet in it join now, each with
            // its snapshot taken at once), nothing moved since the first of them joined
            let joining: Vec<Arc<str>> = e.nodes.iter().filter(|n| !self.tx_seq.contains_key(*n)).cloned().collect();
            if !joining.is_empty() {
                // a node already in the transaction without a recorded start (the cache came on
                // meanwhile) has a snapshot of unknown age
                if self.pinned.iter().any(|h| h.joined && joining.contains(&h.node))
                    || !self.join_snapshot(&joining).await
                {
                    return Ok(None);
                }
            }
            let Some(since) = self.tx_since(&e.nodes) else { return Ok(None) };
            if cache.is_current_since(&e.tables, &e.epochs, since) != Some(true) {
                return Ok(None);
            }
        }
        cache.store.hit();
        for p in e.each() {
            self.out.push(p);
        }
        self.out.flush().await?;
        self.note_diagnostics(&e.nodes, false, false);
        Ok(Some(Reply { result_set: true, rows: e.rows, ..Reply::default() }))
    }

    /// Inside a transaction, the cache's move sequence when the first of `nodes` joined it; `None`
    /// while one of them has not.
    fn tx_since(&self, nodes: &[Arc<str>]) -> Option<u64> {
        nodes.iter().map(|n| self.tx_seq.get(n).copied()).collect::<Option<Vec<u64>>>()?.into_iter().min()
    }

    /// Every dataHost's binlog reader is streaming and no further behind than `resultCacheMaxLag`.
    fn fresh(&self, data_hosts: &[Arc<str>]) -> bool {
        let max_lag = std::time::Duration::from_millis(self.rt.config.system.result_cache_max_lag_ms);
        let now = std::time::Instant::now();
        data_hosts.iter().all(|dh| {
            self.rt
                .backends
                .hosts
                .iter()
                .find(|h| *h.cfg.name == **dh)
                .is_some_and(|h| h.binlog.lag(now, crate::backend::binlog::POLL_STALE).is_some_and(|l| l <= max_lag))
        })
    }

    /// Answers from the cache when a valid reply is stored (`Hit`); otherwise says at which epochs a
    /// miss reads (`Miss`: the reply is being captured from now on) or that a write is under way
    /// (`Bypass`).
    pub async fn cache_lookup(&mut self, plan: &Plan) -> Result<Lookup> {
        let cache = self.shared.cache.clone();
        let mut waited = false;
        let mut look = !plan.looked;
        loop {
            if look {
                if let Some(reply) = self.cache_hit(&plan.key).await? {
                    return Ok(Lookup::Hit(reply));
                }
            }
            look = true;
            let Some(epochs) = cache.current(&plan.tables) else {
                cache.store.miss();
                return Ok(Lookup::Bypass);
            };
            match cache.store.fill(&plan.key) {
                Ok(guard) => {
                    cache.store.miss();
                    self.out.start_capture(cache.store.max_entry.min(usize::MAX as u64) as usize);
                    return Ok(Lookup::Miss(epochs, guard));
                }
                // another session runs the same statement: its reply is the one to wait for, once
                Err(done) if !waited => {
                    waited = true;
                    let _ = tokio::time::timeout(FILL_WAIT, done).await;
                }
                Err(_) => {
                    cache.store.miss();
                    return Ok(Lookup::Bypass);
                }
            }
        }
    }

    /// After a miss: keeps the captured reply if it is a clean result set and nothing moved meanwhile
    /// (then `guard` goes and the sessions waiting for this key look again).
    pub fn cache_fill(&mut self, plan: Plan, epochs: Vec<u64>, guard: crate::cache::store::FillGuard, reply: &Reply) {
        let _guard = guard;
        let captured = self.out.take_capture();
        let cache = &self.shared.cache;
        let keep = reply.failed.is_none() && reply.result_set && reply.warnings == 0;
        if let (true, Some(packets)) = (keep, captured) {
            // inside a transaction it read its snapshots: they show what is current only when nothing
            // it read moved since they were taken
            let now = if self.tx_active() {
                self.tx_since(&plan.nodes).and_then(|since| cache.current_since(&plan.tables, since))
            } else {
                cache.current(&plan.tables)
            };
            if now.as_deref() == Some(epochs.as_slice()) {
                let entry = Entry {
                    packets,
                    tables: plan.tables,
                    epochs,
                    data_hosts: plan.data_hosts,
                    nodes: plan.nodes,
                    rows: reply.rows,
                };
                cache.store.put(plan.key, entry);
            }
        }
    }

    /// A routed text SELECT through the cache.
    pub async fn cached_read(&mut self, plan: Plan, r: &Route, payloads: &[bytes::Bytes]) -> Result<Reply> {
        match self.cache_lookup(&plan).await? {
            Lookup::Hit(reply) => Ok(reply),
            Lookup::Bypass => self.execute_as(r, payloads, Access::Read).await,
            Lookup::Miss(epochs, guard) => {
                self.read_hint.writer = true;
                let res = self.execute_as(r, payloads, Access::Read).await;
                self.read_hint.writer = false;
                let reply = match res {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = self.out.take_capture();
                        return Err(e);
                    }
                };
                self.cache_fill(plan, epochs, guard, &reply);
                Ok(reply)
            }
        }
    }

    /// Before a statement that may change data runs through the proxy: the epochs of its tables move
    /// (its own `stmt_tables`, else every table of the session's schema) and stay held until it ends —
    /// inside a transaction, until the transaction ends.
    /// A write on several nodes holds one guard over its COMMIT too (`run_routed`): the statement's
    /// own run under it takes none.
    pub fn guard_write(&mut self) -> Option<crate::cache::WriteGuard> {
        if self.write_guarded {
            return None;
        }
        let tables = self.stmt_tables.take();
        if !self.shared.cache.store.on() || !changes_data(self.stmt_kind) {
            return None;
        }
        let tables = match tables {
            Some(t) if !t.is_empty() && self.stmt_kind != Kind::Ddl => t,
            _ => vec![Logical::Schema(self.schema.clone()?)],
        };
        Some(self.shared.cache.begin_write(tables))
    }

    /// A write's guard after it ran: kept with an open transaction, dropped otherwise.
    pub fn after_write(&mut self, guard: Option<crate::cache::WriteGuard>) {
        if let Some(g) = guard {
            if self.tx_active() {
                self.write_guards.push(g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_session_statements_change_no_data() {
        for k in [Kind::Select, Kind::Show, Kind::Set, Kind::Begin, Kind::Commit] {
            assert!(!changes_data(k), "{k:?}");
        }
        for k in [
            Kind::Insert,
            Kind::Update,
            Kind::Delete,
            Kind::Replace,
            Kind::Ddl,
            Kind::LoadData,
            Kind::Call,
            Kind::Other,
        ] {
            assert!(changes_data(k), "{k:?}");
        }
    }
}
