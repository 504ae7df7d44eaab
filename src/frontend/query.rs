//! COM_QUERY: pre-classify, handle session statements locally (SET, USE, BEGIN/COMMIT/ROLLBACK, KILL),
//! check privileges, answer local SELECTs, else route and execute with streaming replies.

use std::sync::Arc;

use bytes::Bytes;

use super::join::Batching;
use super::session::ReadHint;
use super::session::Session;
use crate::config::model::{Config, Schema};
use crate::error::{Error, Result};
use crate::exec::Reply;
use crate::route::{self, Mode, Route};
use crate::sql::analyze::Analysis;
use crate::sql::classify::{classify, Kind};
use crate::sql::hint::{self, Hint};
use crate::sql::session::{parse_kill, parse_set, parse_use, SetItem};

/// How a statement may use backend connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A read that takes no row locks: a replica may serve it outside transactions.
    Read,
    Write,
    /// It leaves session state the server's trackers do not report (`sql::session::leaves_state`):
    /// on the writer, and its connections stay with the session.
    Stateful,
}

impl Access {
    pub fn of(kind: Kind, sql: &str) -> Access {
        if crate::sql::session::leaves_state(sql) {
            Access::Stateful
        } else if is_read(kind, sql) {
            Access::Read
        } else {
            Access::Write
        }
    }
}

/// Statements that may be served by a replica (outside transactions): reads that take no row locks.
pub fn is_read(kind: Kind, sql: &str) -> bool {
    matches!(kind, Kind::Select | Kind::Show | Kind::Describe | Kind::Explain)
        && !crate::sql::analyze::locking_text(sql)
}

/// The COM_QUERY packets a route sends: the client's own packet, or the rewritten statement(s).
/// Rewritten texts come from the text as the proxy read it — decoded from the client's character set,
/// masked under NO_BACKSLASH_ESCAPES (`sql::escapes`) — so they are unmasked and encoded back here.
/// A text the proxy could not read exactly is never rewritten: refused instead.
pub fn text_payloads(r: &Route, raw: &Bytes, charset: &str, exact: bool) -> Result<Vec<Bytes>> {
    let pack = |s: &str| {
        crate::proto::packets::com_query(&crate::sql::charset::encode(&crate::sql::escapes::unmask(s), charset))
    };
    if !exact && !matches!(r.sql, route::Rewrite::Original) {
        return Err(Error::unsupported(format!(
            "this statement must be rewritten to be routed, and its text is not valid {charset}: shardcat will not alter it"
        )));
    }
    Ok(match &r.sql {
        route::Rewrite::Original => vec![raw.clone()],
        route::Rewrite::Shared(s) => vec![pack(s)],
        route::Rewrite::PerNode(v) => v.iter().map(|s| pack(s)).collect(),
    })
}

/// A loggable form of a statement: shortened, and never with a password in it.
pub fn loggable(sql: &str) -> String {
    let up = sql.to_ascii_uppercase();
    if up.contains("IDENTIFIED") || up.contains("PASSWORD") {
        return "<statement with a password, not logged>".into();
    }
    let mut s: String = sql.chars().take(200).collect();
    if s.len() < sql.len() {
        s.push('…');
    }
    s
}

/// The sum of FOUND_ROWS() on every connection; `None` when one cannot tell.
async fn found_rows_total(conns: &mut [crate::backend::Pooled]) -> Option<u64> {
    let mut sum = 0u64;
    for c in conns.iter_mut() {
        let rows = c.query_rows("SELECT FOUND_ROWS()").await.ok()?;
        let cell = rows.first()?.first()?.as_deref()?;
        sum += std::str::from_utf8(cell).ok()?.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// Case-insensitive ASCII substring test without allocating.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl Session {
    /// `raw` is the client's COM_QUERY packet: statements go to backends as the client's own bytes
    /// (in the client's character set), while `sql` (lossily decoded) is only read.
    pub async fn com_query(&mut self, sql: &str, raw: &Bytes) -> Result<()> {
        // under NO_BACKSLASH_ESCAPES the proxy reads the text masked (sql::escapes)
        let masked;
        let sql = if self.no_backslash {
            match crate::sql::escapes::mask(sql) {
                Some(m) => {
                    masked = m;
                    &*masked
                }
                None => {
                    let e = Error::unsupported("under NO_BACKSLASH_ESCAPES shardcat cannot read a statement that holds both a backslash and a 0x01 byte");
                    return self.send_error(&e).await;
                }
            }
        } else {
            sql
        };
        if sql.contains(';') {
            let parts = crate::sql::split::statements(sql);
            if parts.len() > 1 {
                if !self.multi_statements {
                    // the backends accept several statements per query; this client did not ask to
                    let (s, _) = parts[1];
                    let near: String = sql[s..].trim_start().chars().take(80).collect();
                    let e = Error::sql(1064, "42000", format!("You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '{near}' at line 1"));
                    return self.send_error(&e).await;
                }
                if self.split_multi(sql, &parts) {
                    return self.multi_query(sql, raw, &parts).await;
                }
            }
        }
        self.stmt_failed = false;
        let r = self.query(sql, raw).await;
        match r {
            Ok(()) => Ok(()),
            Err(e @ Error::Client(_)) => Err(e),
            Err(e) => self.refuse(&e, sql).await,
        }
    }

    /// A statement the proxy refused: the error is the client's answer and the session's diagnostics.
    pub async fn refuse(&mut self, e: &Error, sql: &str) -> Result<()> {
        self.stmt_failed = true;
        let (code, state) = e.code_and_state();
        self.diag = super::diagnostics::Diagnostics::Local(code, state.to_string(), e.to_string());
        tracing::info!(conn = self.id, user = %self.user.name, error = %e, sql = %loggable(sql), "statement failed");
        self.send_error(e).await
    }

    /// Whether a multi-statement text is run statement by statement (each answered in turn, all but
    /// the last with SERVER_MORE_RESULTS_EXISTS): when one of them is a statement the proxy handles
    /// itself, or the schema has sharded tables. A pass-through schema relays the rest as it is.
    fn split_multi(&self, sql: &str, parts: &[(usize, usize)]) -> bool {
        let session_stmt = parts.iter().any(|(s, e)| {
            matches!(
                classify(&sql[*s..*e]).0,
                Kind::Begin
                    | Kind::Commit
                    | Kind::Rollback
                    | Kind::Set
                    | Kind::Use
                    | Kind::Kill
                    | Kind::Savepoint
                    | Kind::Show
                    | Kind::Lock
                    | Kind::Unlock
                    | Kind::Xa
                    | Kind::LoadData
                    | Kind::Empty
            )
        });
        let cfg = self.rt.config.clone();
        let sharded = self.current_or_first_schema(&cfg).is_ok_and(|s| !s.tables.is_empty());
        session_stmt || sharded
    }

    /// Runs the statements of a multi-statement text one after the other; the first that fails ends
    /// it (its error is the last reply), as on MariaDB.
    async fn multi_query(&mut self, sql: &str, raw: &Bytes, parts: &[(usize, usize)]) -> Result<()> {
        // the client's own bytes for each statement, when the text decoded without loss
        let exact = raw.len() == sql.len() + 1 && &raw[1..] == sql.as_bytes();
        for (i, (s, e)) in parts.iter().enumerate() {
            let text = &sql[*s..*e];
            let payload = if exact {
                crate::proto::packets::com_query(&raw[1 + s..1 + e])
            } else {
                crate::proto::packets::com_query(&self.client_text(text))
            };
            self.more_results = i + 1 < parts.len();
            self.stmt_failed = false;
            let r = self.query(text, &payload).await;
            self.more_results = false;
            match r {
                Ok(()) if !self.stmt_failed => {}
                Ok(()) => break,
                Err(e @ Error::Client(_)) => return Err(e),
                Err(e) => {
                    self.refuse(&e, text).await?;
                    break;
                }
            }
        }
        self.out.flush().await?;
        Ok(())
    }

    async fn query(&mut self, sql: &str, raw: &Bytes) -> Result<()> {
        if let Some(body) = crate::sql::classify::executable_comment_body(sql) {
            let payload = crate::proto::packets::com_query(&self.client_text(body));
            return Box::pin(self.query(body, &payload)).await;
        }
        let (kind, start) = classify(sql);
        self.stmt_kind = kind;
        self.stmt_tables = None;
        self.stmt_tableless = false;
        if kind == Kind::Select && self.shared.cache.store.on() && crate::cache::eligible::text_allows(sql) {
            // a stored reply for this text: sent before any parse or route
            if let Some(key) = self.cache_key_here(sql.as_bytes().to_vec(), false) {
                if let Some(reply) = self.cache_hit_first(key).await? {
                    self.after_reply(kind, &reply, sql);
                    return Ok(());
                }
            }
        }
        if super::diagnostics::is_diagnostics_statement(kind, sql, start) {
            return self.show_diagnostics(sql).await;
        }
        if kind == Kind::Other && super::diagnostics::is_get_diagnostics(sql, start) {
            return self.get_diagnostics(sql, raw).await;
        }
        match kind {
            Kind::Empty => Err(Error::sql(1065, "42000", "Query was empty")),
            Kind::Begin => self.begin(sql).await,
            Kind::Commit => self.end_tx("COMMIT").await,
            Kind::Rollback => self.end_tx("ROLLBACK").await,
            Kind::Set => self.set(sql, start).await,
            Kind::Use => match parse_use(sql, start) {
                Some(db) => self.use_schema(&db).await,
                None => {
                    Err(Error::sql(1064, "42000", "You have an error in your SQL syntax: USE needs a database name"))
                }
            },
            Kind::Kill => match parse_kill(sql, start) {
                Some((q, id)) => self.kill(q, id).await,
                None => Err(Error::sql(1064, "42000", "You have an error in your SQL syntax near KILL")),
            },
            Kind::Show => self.show(sql, start).await,
            Kind::Describe => self.describe(sql, start, raw).await,
            Kind::Explain => self.explain(sql, start, raw).await,
            Kind::Xa => Err(Error::unsupported("XA transactions are not supported through shardcat")),
            Kind::LoadData => self.load_data(sql, raw).await,
            Kind::Lock | Kind::Unlock => {
                Err(Error::unsupported("LOCK TABLES / UNLOCK TABLES are not supported through shardcat yet"))
            }
            Kind::Savepoint => self.savepoint(sql).await,
            _ => self.routed(sql, kind, raw).await,
        }
    }

    async fn savepoint(&mut self, sql: &str) -> Result<()> {
        if !self.tx_active() {
            return self.send_ok(0, 0, b"").await;
        }
        let nodes: Vec<Arc<str>> = self.pinned.iter().filter(|h| h.joined).map(|h| h.node.clone()).collect();
        if nodes.is_empty() {
            return Err(Error::unsupported(
                "SAVEPOINT before the transaction touched any table is not supported by shardcat",
            ));
        }
        let mut conns = self.acquire(&nodes).await?;
        let mut res = Ok(());
        for c in conns.iter_mut() {
            if let Err(e) = c.exec_simple(sql).await {
                res = Err(e);
                break;
            }
        }
        self.release(nodes, conns, &res).await;
        res?;
        self.send_ok(0, 0, b"").await
    }

    async fn set(&mut self, sql: &str, start: usize) -> Result<()> {
        let items = parse_set(sql, start).map_err(|m| Error::sql(1064, "42000", m))?;
        let (old_charset, old_ac, old_iso, old_sets) =
            (self.charset.clone(), self.autocommit, self.isolation.clone(), self.sets.clone());
        let mut needs_backend = false;
        let mut autocommit_on = false;
        for it in &items {
            match it {
                SetItem::Global(s) => {
                    // MariaDB's answer to a user without the privilege: clients know to skip what needs it
                    return Err(Error::sql(
                        1227,
                        "42000",
                        format!("Access denied; you need (at least one of) the SUPER privilege(s) for this operation (shardcat: '{s}' would change one backend only; set global variables on each MariaDB server)"),
                    ));
                }
                SetItem::Names(cs) => {
                    self.charset = crate::sql::escapes::unmask(cs).into_owned();
                    self.client_charset = self.charset.clone();
                    self.forget_charset_sets();
                    needs_backend = true;
                }
                SetItem::Autocommit(b) => {
                    if *b && !self.autocommit {
                        autocommit_on = true;
                    }
                    self.autocommit = *b;
                }
                SetItem::Isolation(l) => self.isolation = l.clone(),
                SetItem::NextTransaction(c) => self.next_tx = Some(c.clone()),
                SetItem::Other(s)
                    if crate::sql::session::set_key(s).is_some_and(|k| k.starts_with("session_track_")) =>
                {
                    // the client's own trackers: the proxy answers for them (its backends keep theirs)
                    self.client_tracking.set(s);
                }
                SetItem::Other(s) if crate::sql::session::set_key(s).as_deref() == Some("xa") => {
                    // Mycat's switch of the session's commit across dataNodes
                    let v = crate::sql::session::set_value(s).to_ascii_lowercase();
                    let on = match v.as_str() {
                        "on" | "1" | "true" => true,
                        "off" | "0" | "false" => false,
                        _ => {
                            return Err(Error::sql(
                                1231,
                                "42000",
                                format!("Variable 'xa' can't be set to the value of '{v}'"),
                            ))
                        }
                    };
                    if on != self.xa && self.pinned.iter().any(|h| h.joined) {
                        return Err(Error::sql(
                            1568,
                            "25001",
                            "Transaction characteristics can't be changed while a transaction is in progress",
                        ));
                    }
                    self.xa = on;
                }
                SetItem::Other(s) => {
                    let key = crate::sql::session::set_key(s);
                    if key.as_deref() == Some("character_set_client") {
                        self.client_charset = crate::sql::session::set_value(s);
                    }
                    if let Some(k @ ("wait_timeout" | "interactive_timeout")) = key.as_deref() {
                        // the session's idle limit is the proxy's to keep: on a backend connection it
                        // would close that pooled connection under the next client
                        match crate::sql::session::set_value(s).parse::<u64>() {
                            Ok(n) => self.wait_timeout = Some(std::time::Duration::from_secs(n.max(1))),
                            Err(_) => {
                                return Err(Error::sql(
                                    1232,
                                    "42000",
                                    format!("Incorrect argument type to variable '{k}'"),
                                ))
                            }
                        }
                        continue;
                    }
                    // the session keeps the last value per variable
                    self.push_set(crate::sql::escapes::unmask(s).into_owned());
                    needs_backend = true;
                }
            }
        }
        if autocommit_on {
            // SET autocommit=1 commits an open transaction
            if let Err(e) = self.finish_pinned("COMMIT").await {
                self.in_tx = false;
                return Err(e);
            }
            self.in_tx = false;
        }
        if needs_backend {
            // validate on a backend: an unknown variable or charset is the client's error now, not later
            let r = self.validate_on_backend().await;
            if let Err(e) = r {
                self.charset = old_charset;
                self.autocommit = old_ac;
                self.isolation = old_iso;
                if self.sets.len() != old_sets.len() || self.sets.iter().zip(&old_sets).any(|(a, b)| a != b) {
                    self.sets_epoch += 1;
                }
                self.sets = old_sets;
                return Err(e);
            }
        }
        self.row_count = 0;
        // what MariaDB's session tracking would tell this client about the SET
        if self.caps.contains(crate::proto::CapabilityFlags::CLIENT_SESSION_TRACK) {
            self.pending_track = self.client_tracking.report(&items);
        }
        self.send_ok(0, 0, b"").await
    }

    async fn validate_on_backend(&mut self) -> Result<()> {
        let cfg = self.rt.config.clone();
        let node = match self.pinned.first() {
            Some(h) => h.node.clone(),
            None => {
                let schema = self.current_or_first_schema(&cfg)?;
                route::any_node(schema, &|n| self.rt.backends.node_alive(n))?
            }
        };
        let nodes = vec![node];
        let conns = self.acquire(&nodes).await;
        match conns {
            Ok(c) => {
                self.release(nodes, c, &Ok::<(), Error>(())).await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Routing's view of this session: its config, schema rights and node liveness.
    pub fn route_ctx<'a>(&'a self, cfg: &'a Config, rules: &'a route::Rules) -> route::Ctx<'a> {
        let learned = Some(crate::exec::learned::Ask { learned: &self.rt.learned, session: self.charsets_key() });
        route::Ctx { cfg, rules, user: &self.user, backends: &self.rt.backends, parents: None, learned }
    }

    /// The session's character sets and SETs as one key: what a merge learned of its string keys
    /// holds only under the same ones (`exec::learned`).
    pub fn charsets_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.charset.hash(&mut h);
        self.sets.hash(&mut h);
        h.finish()
    }

    /// The session's schema, or (for statements needing none) the first schema the user may use.
    pub fn current_or_first_schema<'a>(&self, cfg: &'a Config) -> Result<&'a crate::config::model::Schema> {
        match &self.schema {
            Some(s) => cfg.schema(s).ok_or_else(|| Error::sql(1049, "42000", format!("Unknown database '{s}'"))),
            None => cfg
                .schemas
                .iter()
                .find(|s| self.user.may_use(&s.name))
                .ok_or_else(|| Error::sql(1046, "3D000", "No database selected")),
        }
    }

    fn check_privileges(&self, kind: Kind, schema: &str, a: Option<&Analysis>) -> Result<()> {
        if self.user.read_only && kind.is_write() {
            let table = a.and_then(|a| a.tables.first()).map(|t| t.name.clone()).unwrap_or_default();
            return Err(Error::sql(
                1142,
                "42000",
                format!(
                    "{} command denied to user '{}'@'{}' for table '{table}' (user is readOnly)",
                    kind.verb(),
                    self.user.name,
                    self.peer.ip()
                ),
            ));
        }
        let Some(p) = self.user.privileges.as_ref().filter(|p| p.check) else { return Ok(()) };
        let bit = match kind {
            Kind::Insert | Kind::Replace => 0,
            Kind::Update => 1,
            Kind::Select => 2,
            Kind::Delete => 3,
            _ => return Ok(()),
        };
        let Some(sp) = p.schemas.iter().find(|s| s.name.eq_ignore_ascii_case(schema)) else { return Ok(()) };
        let table = a.and_then(|a| a.tables.first()).map(|t| t.name.as_str()).unwrap_or("");
        let bits = sp.tables.iter().find(|(t, _)| t.eq_ignore_ascii_case(table)).map(|(_, b)| *b).unwrap_or(sp.dml);
        if bits[bit] {
            Ok(())
        } else {
            Err(Error::sql(
                1142,
                "42000",
                format!(
                    "{} command denied to user '{}'@'{}' for table '{table}'",
                    kind.verb(),
                    self.user.name,
                    self.peer.ip()
                ),
            ))
        }
    }

    /// A statement from the client: ROW_COUNT() and FOUND_ROWS() become the session's values
    /// (sql::session::substitute_counters), then `routed_text`.
    pub async fn routed(&mut self, sql: &str, kind: Kind, raw: &Bytes) -> Result<()> {
        if self.text_exact {
            if let Some(t) =
                crate::sql::session::substitute_counters(sql, kind == Kind::Select, self.row_count, self.found_rows)
            {
                let payload = crate::proto::packets::com_query(&self.client_text(&t));
                return self.routed_text(&t, kind, &payload).await;
            }
        }
        self.routed_text(sql, kind, raw).await
    }

    /// `/*balance*/` and Mycat hints first, then routing.
    async fn routed_text(&mut self, sql: &str, kind: Kind, raw: &Bytes) -> Result<()> {
        let lead = sql.len() - sql.trim_start().len();
        let balance = sql.get(lead..lead + 11).is_some_and(|p| p.eq_ignore_ascii_case("/*balance*/"));
        self.read_hint = ReadHint { balance, ..ReadHint::default() };
        self.reads_last_id = contains_ci(sql, "LAST_INSERT_ID");
        self.calc_found_rows = contains_ci(sql, "SQL_CALC_FOUND_ROWS");
        let res = self.routed_hinted(sql, if balance { lead + 11 } else { 0 }, kind, raw).await;
        self.read_hint = ReadHint::default();
        self.reads_last_id = false;
        self.calc_found_rows = false;
        res
    }

    /// `routed`, with a Mycat hint looked for from byte `from` on (after a `/*balance*/`).
    async fn routed_hinted(&mut self, sql: &str, from: usize, kind: Kind, raw: &Bytes) -> Result<()> {
        let rest = sql.get(from..).unwrap_or("");
        if rest.trim_start().starts_with("/*") {
            if let Some((h, at)) = hint::parse(rest).map_err(|m| Error::sql(1064, "42000", m))? {
                let at = from + at;
                // the statement after the hint, in the client's bytes when the hint decoded cleanly
                let encoded;
                let body = match raw.get(1..1 + at) {
                    Some(prefix) if prefix == &sql.as_bytes()[..at] => &raw[1 + at..],
                    _ => {
                        encoded = self.client_text(&sql[at..]);
                        &encoded[..]
                    }
                };
                return self.routed_with_hint(h, &sql[at..], kind, crate::proto::packets::com_query(body)).await;
            }
        }
        self.routed_in(sql, kind, None, raw.clone()).await
    }

    /// A statement carrying a Mycat hint: the hint decides the nodes; the statement runs without it.
    async fn routed_with_hint(&mut self, h: Hint, real: &str, kind: Kind, payload: Bytes) -> Result<()> {
        let cfg = self.rt.config.clone();
        let nodes: Vec<Arc<str>> = match h {
            Hint::DbType(t) if t == "master" => {
                // force the writeHost: route as usual, acquire as a write
                let cfg2 = cfg.clone();
                let schema = self.current_or_first_schema(&cfg2)?;
                let a = self.shared.parse_cache.get(real).map_err(|m| Error::sql(1064, "42000", m.to_string()))?;
                let r = self.route_with_lookups(&cfg2, schema, kind, &a, real, &[]).await?;
                let payloads = text_payloads(&r, &payload, &self.client_charset, self.text_exact)?;
                let access = if Access::of(kind, real) == Access::Stateful { Access::Stateful } else { Access::Write };
                let reply = self.execute_as(&r, &payloads, access).await?;
                self.after_reply(kind, &reply, real);
                return Ok(());
            }
            Hint::DbType(_) => {
                // db_type=slave: a read goes to a readHost whatever `balance` says (writes ignore it)
                self.read_hint.slave = true;
                return self.routed_in(real, kind, None, payload).await;
            }
            Hint::Schema(s) => {
                let name = super::handshake::check_schema(&cfg, &self.user, &self.peer, &s)
                    .map_err(|_| Error::sql(1064, "42000", format!("can't find hint schema:{s}")))?;
                return self.routed_in(real, kind, Some(&name), payload).await;
            }
            Hint::Catlet(c) => {
                return Err(Error::unsupported(format!("catlet hints ({c}) are not supported by shardcat")))
            }
            Hint::DataNode(dn) => {
                if cfg.data_node(&dn).is_none() {
                    return Err(Error::sql(1064, "42000", format!("can't find hint datanode:{dn}")));
                }
                vec![Arc::from(dn.as_str())]
            }
            Hint::Sql(hsql) => {
                let schema = self.current_or_first_schema(&cfg)?;
                let (hkind, _) = classify(&hsql);
                let a = self
                    .shared
                    .parse_cache
                    .get(&hsql)
                    .map_err(|m| Error::sql(1064, "42000", format!("cannot parse the hint's SQL: {m}")))?;
                let rules = self.rt.rules.clone();
                let routed = route::route(&self.route_ctx(&cfg, &rules), schema, hkind, &a, &hsql, &[]);
                match routed {
                    Ok(r) => r.nodes,
                    // the hint SQL only chooses nodes: a merge it would need is irrelevant here
                    Err(_) if hkind == Kind::Select => schema
                        .all_tables()
                        .iter()
                        .find(|t| a.tables.iter().any(|x| x.name.eq_ignore_ascii_case(&t.name)))
                        .map(|t| t.data_nodes.iter().map(|n| Arc::from(n.as_str())).collect())
                        .ok_or_else(|| Error::unsupported("the hint's SQL names no configured table"))?,
                    Err(e) => return Err(e),
                }
            }
        };
        let schema_name = self.schema.clone().unwrap_or_default();
        self.check_privileges(kind, &schema_name, None)?;
        let mode = match (nodes.len(), kind) {
            (1, _) => Mode::Single,
            (_, Kind::Select | Kind::Show | Kind::Describe | Kind::Explain) => Mode::Concat,
            _ => Mode::WriteAllSum,
        };
        let mut r = Route { nodes, mode, sql: route::Rewrite::Original, limit: None };
        // checkSQLschema holds for hinted statements too
        if let Some(schema) = cfg.schema(&schema_name).filter(|s| s.check_sql_schema) {
            let rules = self.rt.rules.clone();
            route::qualify(&self.route_ctx(&cfg, &rules), &mut r, real, &[&schema.name])?;
        }
        let payloads = text_payloads(&r, &payload, &self.client_charset, self.text_exact)?;
        let access = if Access::of(kind, real) == Access::Stateful { Access::Stateful } else { Access::Write };
        let reply = self.execute_as(&r, &payloads, access).await?;
        self.after_reply(kind, &reply, real);
        Ok(())
    }

    pub(super) async fn routed_in(
        &mut self,
        sql: &str,
        kind: Kind,
        schema_override: Option<&str>,
        payload: Bytes,
    ) -> Result<()> {
        let cfg = self.rt.config.clone();
        let schema = match schema_override.or(self.schema.as_deref()) {
            Some(s) => cfg.schema(s).ok_or_else(|| Error::sql(1049, "42000", format!("Unknown database '{s}'")))?,
            None => self.current_or_first_schema(&cfg)?,
        };
        // global sequences: `next value for MYCATSEQ_…` (and an autoIncrement table's missing key)
        // become ids before anything else reads the statement
        if contains_ci(sql, "MYCATSEQ_")
            || (matches!(kind, Kind::Insert | Kind::Replace) && schema.tables.iter().any(|t| t.auto_increment))
        {
            if let Some((text, first)) = self.with_sequences(sql, kind, schema).await? {
                let payload = crate::proto::packets::com_query(&self.client_text(&text));
                self.seq_insert_id = matches!(kind, Kind::Insert | Kind::Replace).then_some(first);
                let r = Box::pin(self.routed_in(&text, kind, schema_override, payload)).await;
                self.seq_insert_id = None;
                return r;
            }
        }
        let passthrough = schema.tables.is_empty();
        // pass-through schemas only parse SELECTs without FROM (those may be answered locally), and
        // with the result cache on every SELECT (what it reads says what invalidates it)
        let parse_passthrough = kind == Kind::Select
            && (!contains_ci(sql, "FROM") || (self.shared.cache.store.on() && schema.cache != Some(false)));
        // a statement whose shape (literals as `?`) was parsed before and routes to one node as it is:
        // no parse of its own
        let shaped = if passthrough { None } else { self.route_by_shape(&cfg, schema, kind, sql, schema_override) };
        let (shaped_analysis, shaped_route) = match shaped {
            Some((a, r)) => (Some(a), Some(r)),
            None => (None, None),
        };
        let analysis: Option<Arc<Analysis>> = if let Some(a) = shaped_analysis {
            Some(a)
        } else if passthrough && !parse_passthrough {
            None
        } else {
            match self.shared.parse_cache.get(sql) {
                Ok(a) => Some(a),
                Err(msg) => {
                    let nodes = schema.all_data_nodes();
                    if nodes.len() == 1 {
                        None // one possible target: pass through what the parser cannot read
                    } else {
                        return Err(Error::sql(
                            1064,
                            "42000",
                            format!(
                                "You have an error in your SQL syntax, or shardcat cannot parse it to route it: {msg}"
                            ),
                        ));
                    }
                }
            }
        };
        self.check_privileges(kind, &schema.name, analysis.as_deref())?;
        self.stmt_tableless = kind == Kind::Select && analysis.as_ref().is_some_and(|a| a.tables.is_empty());
        if let Some(a) = &analysis {
            if let Some(local) = &a.local {
                let local = local.clone();
                return self.answer_local(&local).await;
            }
            if a.statements > 1 && !passthrough {
                return Err(Error::unsupported(
                    "several statements in one query are only supported on schemas without sharded tables; send them one at a time",
                ));
            }
        }
        if self.schema.is_none()
            && schema_override.is_none()
            && analysis.as_ref().is_some_and(|a| a.tables.iter().any(|t| t.schema.is_none()))
        {
            return Err(Error::sql(1046, "3D000", "No database selected"));
        }
        let r = match (shaped_route, &analysis) {
            (Some(r), _) => r,
            (None, Some(a)) if !passthrough => match self.route_with_lookups(&cfg, schema, kind, a, sql, &[]).await {
                Ok(r) => r,
                // a SELECT its shards cannot run for a subquery in it: the subqueries run first
                Err(e) if kind == Kind::Select && e.code_and_state().0 == 1105 => {
                    let a = a.clone();
                    // a page of a join: the first table's page, then its joined rows (frontend::join)
                    if self.join_in_batches(sql, &a, false, Batching::Preferred).await? {
                        return Ok(());
                    }
                    let folded = match self.fold_subqueries(sql, &a).await {
                        // what the shards' join needs first outgrew the cap: the proxy joins in batches
                        Err(Error::MemoryLimit { what, limit }) => {
                            if self.join_in_batches(sql, &a, false, Batching::Fallback).await? {
                                return Ok(());
                            }
                            return Err(Error::MemoryLimit { what, limit });
                        }
                        r => r?,
                    };
                    return match folded {
                        Some(folded) => {
                            let payload = crate::proto::packets::com_query(&self.client_text(&folded));
                            // the folded statement counts as a level too: it never folds without end
                            self.fold_depth += 1;
                            let r = Box::pin(self.routed_in(&folded, kind, schema_override, payload)).await;
                            self.fold_depth -= 1;
                            r
                        }
                        None => Err(e),
                    };
                }
                // INSERT … SELECT its shards cannot run: the SELECT first, its rows as VALUES
                Err(e) if matches!(kind, Kind::Insert | Kind::Replace) && e.code_and_state().0 == 1105 => {
                    let a = a.clone();
                    return match self.insert_select_values(sql, &a).await? {
                        Some(Some(text)) => {
                            let payload = crate::proto::packets::com_query(&self.client_text(&text));
                            Box::pin(self.routed_in(&text, kind, schema_override, payload)).await
                        }
                        Some(None) => {
                            self.row_count = 0;
                            self.send_ok(0, 0, b"Records: 0  Duplicates: 0  Warnings: 0").await
                        }
                        None => Err(e),
                    };
                }
                Err(e) => return Err(e),
            },
            _ => {
                let mut r = Route::single(route::any_node(schema, &|n| self.rt.backends.node_alive(n))?);
                // checkSQLschema on a schema without tables: `schema.t` names the node's database
                if schema.check_sql_schema {
                    if let Some(t) = route::rewrite::strip_schema(sql, &schema.name) {
                        r.sql = route::Rewrite::Shared(t);
                    }
                }
                r
            }
        };
        self.implicit_commit(kind, sql).await?;
        let payloads = text_payloads(&r, &payload, &self.client_charset, self.text_exact)?;
        let access = match Access::of(kind, sql) {
            Access::Read if analysis.as_ref().is_some_and(|a| a.locking_read) => Access::Write,
            a => a,
        };
        // the result cache's view of the statement: nothing to compute while it is off
        let cache_on = self.shared.cache.store.on();
        if cache_on && super::cached::changes_data(kind) {
            self.stmt_tables = analysis.as_deref().and_then(|a| self.logical_tables(schema, a));
        }
        let plan = if cache_on && access == Access::Read && kind == Kind::Select {
            let allowed = crate::cache::eligible::text_allows(sql);
            self.cache_plan(schema, analysis.as_deref(), allowed, sql.as_bytes(), &r, false)
        } else {
            None
        };
        let reply = match plan {
            Some(plan) => self.cached_read(plan, &r, &payloads).await?,
            None => self.execute_as(&r, &payloads, access).await?,
        };
        self.after_reply(kind, &reply, sql);
        Ok(())
    }

    /// Routing by the statement's shape (sql::shape): its literals become the parameters of the cached
    /// parse of the shape. Used only when that gives one node and the client's text unchanged; anything
    /// else (several nodes, a rewrite, an error, a parent lookup) is left to the statement's own parse.
    fn route_by_shape(
        &self,
        cfg: &Config,
        schema: &Schema,
        kind: Kind,
        sql: &str,
        schema_override: Option<&str>,
    ) -> Option<(Arc<Analysis>, Route)> {
        if !matches!(kind, Kind::Select | Kind::Insert | Kind::Replace | Kind::Update | Kind::Delete) {
            return None;
        }
        let (text, lits) = crate::sql::shape::shape(sql)?;
        let a = self.shared.parse_cache.get(&text).ok()?;
        let no_db = self.schema.is_none() && schema_override.is_none() && a.tables.iter().any(|t| t.schema.is_none());
        if a.local.is_some() || a.statements != 1 || a.tables.is_empty() || no_db {
            return None;
        }
        let params: Vec<route::Param> = lits
            .into_iter()
            .map(|l| match l {
                crate::sql::shape::Literal::Number(n) => route::Param::Number(n),
                crate::sql::shape::Literal::Text(t) => route::Param::Bytes(t.into_bytes()),
            })
            .collect();
        let rules = self.rt.rules.clone();
        match route::route(&self.route_ctx(cfg, &rules), schema, kind, &a, sql, &params) {
            Ok(r) if r.mode == Mode::Single && matches!(r.sql, route::Rewrite::Original) => Some((a, r)),
            _ => None,
        }
    }

    /// Routes a statement, first finding the parent rows an ER child INSERT needs (through the
    /// session's own connections, so an uncommitted parent in this transaction is found).
    pub async fn route_with_lookups(
        &mut self,
        cfg: &Config,
        schema: &Schema,
        kind: Kind,
        a: &Analysis,
        sql: &str,
        params: &[route::Param],
    ) -> Result<Route> {
        let rules = self.rt.rules.clone();
        let lookup = match a.stmts.as_slice() {
            [s @ sqlparser::ast::Statement::Insert(_)] => route::insert::parent_lookups(
                &self.route_ctx(cfg, &rules),
                schema,
                s,
                &route::Binder::of(a, s, params),
            )?,
            _ => None,
        };
        let found = match lookup {
            Some(l) => Some(self.find_parents(&schema.name, &l).await?),
            None => None,
        };
        let mut ctx = self.route_ctx(cfg, &rules);
        ctx.parents = found.as_ref();
        route::route(&ctx, schema, kind, a, sql, params)
    }

    /// Where the parent rows with the given key values are: cached, else looked up on every node.
    async fn find_parents(
        &mut self,
        schema: &str,
        l: &route::insert::ParentLookup,
    ) -> Result<std::collections::HashMap<String, Arc<str>>> {
        let mut found = std::collections::HashMap::new();
        let mut missing = Vec::new();
        {
            let mut cache = self.shared.parent_cache.lock();
            for v in &l.values {
                match cache.get(&(schema.to_string(), l.parent.to_ascii_uppercase(), v.clone())) {
                    Some(n) if !self.tx_active() => {
                        found.insert(v.clone(), n.clone());
                    }
                    _ => missing.push(v.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let ident = |s: &str| format!("`{}`", s.replace('`', "``"));
        let list: Vec<String> =
            missing.iter().map(|v| route::rewrite::literal(&route::Param::Bytes(v.as_bytes().to_vec()))).collect();
        let q = format!(
            "SELECT {} FROM {} WHERE {} IN ({})",
            ident(&l.parent_key),
            ident(&l.parent),
            ident(&l.parent_key),
            list.join(", ")
        );
        for node in &l.nodes {
            let nodes = vec![node.clone()];
            let mut conns = self.acquire(&nodes).await?;
            let res = conns[0].query_rows(&q).await;
            self.release(nodes, conns, &res).await;
            for row in res? {
                if let Some(Some(cell)) = row.into_iter().next() {
                    let key = String::from_utf8_lossy(&cell).into_owned();
                    let hit = missing.iter().find(|m| **m == key || m.eq_ignore_ascii_case(&key)).cloned();
                    if let Some(v) = hit {
                        found.entry(v.clone()).or_insert_with(|| node.clone());
                        self.shared
                            .parent_cache
                            .lock()
                            .put((schema.to_string(), l.parent.to_ascii_uppercase(), v), node.clone());
                    }
                }
            }
        }
        Ok(found)
    }

    /// Sends per-node payloads (one shared, or one per node) along a route and streams the reply.
    pub async fn execute(&mut self, r: &Route, payloads: &[bytes::Bytes]) -> Result<Reply> {
        self.execute_as(r, payloads, Access::Write).await
    }

    /// `execute`; a `read` may be served by replicas (the dataHost's `balance`). After a write outside a
    /// transaction, the session remembers its GTID so its next reads wait for replicas that have it.
    /// A `Stateful` statement's connections stay with the session.
    pub async fn execute_as(&mut self, r: &Route, payloads: &[bytes::Bytes], access: Access) -> Result<Reply> {
        if self.calc_found_rows && matches!(&r.mode, Mode::Merge(plan) if plan.group.is_some()) {
            // each shard would count its own groups: their sum is no total
            return Err(Error::unsupported(
                "SQL_CALC_FOUND_ROWS with GROUP BY or DISTINCT over several shards is not supported by shardcat; run COUNT(*) over the grouped query instead",
            ));
        }
        let read = access == Access::Read;
        let mut conns = self.acquire_for(&r.nodes, read).await?;
        if access == Access::Stateful {
            conns.iter_mut().for_each(|c| c.mark_state());
        }
        let fmt = self.stmt_fmt();
        let (watched, res) = self.run_routed(r, &mut conns, payloads, &fmt).await;
        if !read && !self.tx_active() && matches!(&res, Ok(reply) if reply.failed.is_none() && !reply.result_set) {
            self.remember_writes(&r.nodes, &mut conns).await;
        }
        if let Ok(rep) = &res {
            self.note_reply(&r.nodes, rep);
        }
        // SQL_CALC_FOUND_ROWS: the total is the servers', asked on the connections that counted it
        // (over several shards without grouping, each shard's total of its own rows: their sum)
        let total = if self.calc_found_rows && matches!(&res, Ok(rep) if rep.result_set && rep.failed.is_none()) {
            found_rows_total(&mut conns).await
        } else {
            None
        };
        self.release_as(r.nodes.clone(), conns, &res, self.detached(read)).await;
        let mut reply = self.settle(watched, res).await?;
        if let Some(n) = total {
            reply.found_rows = Some(n);
        }
        self.out.flush().await?;
        Ok(reply)
    }

    /// Records `@@last_gtid` of connections that just wrote, for dataHosts that read from replicas.
    pub async fn remember_writes(&mut self, nodes: &[Arc<str>], conns: &mut [crate::backend::Pooled]) {
        if !self.user.read_your_writes.unwrap_or(self.rt.config.system.read_your_writes) {
            return;
        }
        for (n, c) in nodes.iter().zip(conns.iter_mut()) {
            let Ok(t) = self.rt.backends.node(n) else { continue };
            if t.host.cfg.balance == 0 {
                continue;
            }
            let data_host = t.data_host.clone();
            if let Ok(rows) = c.query_rows("SELECT @@last_gtid").await {
                if let Some(Some(g)) = rows.into_iter().next().and_then(|r| r.into_iter().next()) {
                    let g = String::from_utf8_lossy(&g).into_owned();
                    if !g.is_empty() {
                        self.written.insert(data_host, g);
                    }
                }
            }
        }
    }

    /// Session bookkeeping after a reply: last insert id, found rows; a failure is logged.
    pub fn after_reply(&mut self, kind: Kind, reply: &Reply, sql: &str) {
        self.row_count = match (&reply.failed, reply.result_set, kind) {
            (Some(_), _, _) | (None, true, _) => -1,
            (None, false, Kind::Insert | Kind::Replace | Kind::Update | Kind::Delete | Kind::LoadData) => {
                reply.affected_rows as i64
            }
            _ => 0,
        };
        if let Some(e) = &reply.failed {
            self.stmt_failed = true;
            tracing::info!(conn = self.id, user = %self.user.name, code = e.code, error = %e.message, sql = %loggable(sql), "statement failed");
            return;
        }
        if reply.last_insert_id != 0 {
            self.last_insert_id = reply.last_insert_id;
        }
        if let Some(n) = reply.found_rows {
            self.found_rows = n;
        } else if reply.result_set {
            // a statement without a result set leaves it (measured on 10.11: UPDATE, DELETE, INSERT, DDL)
            self.found_rows = reply.rows;
        }
    }
}
