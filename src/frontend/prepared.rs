//! Server-side prepared statements: the client's statement ids map to real statements on the backends,
//! prepared lazily per backend connection. Parameter types and long data are kept by the proxy so an
//! EXECUTE can run on whichever connection the statement is routed to; cursors pin their connection.

use bytes::{BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::session::Session;
use crate::backend::Pooled;
use crate::error::{Error, Result};
use crate::exec::relay;
use crate::proto::StatusFlags;
use crate::route::{self, Mode, Route};
use crate::sql::classify::{classify, Kind};

pub struct ClientStmt {
    pub sql: Arc<str>,
    pub kind: Kind,
    pub params: u16,
    /// The schema it was prepared in, and its analysis (`None` on schemas without tables).
    pub schema: String,
    pub analysis: Option<Arc<crate::sql::analyze::Analysis>>,
    /// Where a pass-through schema sends it (known at prepare time).
    pub fixed: Option<Arc<str>>,
    /// Parameter types from the last EXECUTE that sent them (2 bytes per parameter).
    pub param_types: Option<Vec<u8>>,
    pub long_data: BTreeMap<u16, Vec<u8>>,
    /// Long data for a parameter passed max_allowed_packet: the next EXECUTE fails, as on MariaDB.
    pub long_data_overflow: bool,
    /// Its text may be cached (`cache::eligible::text_allows`, read once at prepare).
    pub cacheable_text: bool,
    /// What its text says, read once at prepare: the text backends prepare when it is not rewritten,
    /// how it may use connections, whether it reads LAST_INSERT_ID().
    pub backend_sql: Arc<str>,
    pub access: super::query::Access,
    pub reads_last_id: bool,
    /// A session statement (BEGIN, COMMIT, USE, KILL…) the proxy answers itself: prepared without a
    /// backend, each EXECUTE runs its text as COM_QUERY would (both answer with an OK or an ERR).
    pub local: bool,
}

impl Session {
    fn stmt_id_of(pkt: &[u8]) -> Option<u32> {
        pkt.get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub async fn com_stmt_prepare(&mut self, raw: &[u8]) -> Result<()> {
        let (sql, read) = crate::sql::charset::decode(raw, &self.client_charset);
        if read == crate::sql::charset::Read::Unsafe {
            return self.send_error(&unsafe_text(&self.client_charset)).await;
        }
        let sql = sql.into_owned();
        // under NO_BACKSLASH_ESCAPES the proxy reads the text masked (sql::escapes)
        let sql = match self.no_backslash.then(|| crate::sql::escapes::mask(&sql).map(|m| m.into_owned())) {
            None => sql,
            Some(Some(m)) => m,
            Some(None) => {
                let e = Error::unsupported("under NO_BACKSLASH_ESCAPES shardcat cannot read a statement that holds both a backslash and a 0x01 byte");
                return self.send_error(&e).await;
            }
        };
        let r = self.prepare(sql).await;
        match r {
            Ok(()) => Ok(()),
            Err(e @ Error::Client(_)) => Err(e),
            Err(e) => {
                tracing::info!(conn = self.id, user = %self.user.name, error = %e, "prepare failed");
                self.send_error(&e).await
            }
        }
    }

    async fn prepare(&mut self, sql: String) -> Result<()> {
        let (kind, _) = classify(&sql);
        if kind == Kind::Empty {
            return Err(Error::sql(1065, "42000", "Query was empty"));
        }
        if super::query::contains_ci(&sql, "MYCATSEQ_") {
            // a text the backends cannot prepare (an autoIncrement table's missing key is fine: the
            // execution writes it in)
            return Err(Error::unsupported(
                "next value for MYCATSEQ_… in a prepared statement is not supported by shardcat yet; send the statement as text (an autoIncrement table's INSERT without its key may be prepared)",
            ));
        }
        if self.stmts.len() >= self.rt.config.system.max_prepared_stmt_count as usize {
            return Err(Error::sql(1461, "42000", "Can't create more than max_prepared_stmt_count statements"));
        }
        let session_statement = matches!(
            kind,
            Kind::Begin
                | Kind::Commit
                | Kind::Rollback
                | Kind::Use
                | Kind::Kill
                | Kind::Savepoint
                | Kind::Xa
                | Kind::Lock
                | Kind::Unlock
        );
        if session_statement {
            // MariaDB prepares these too (measured: BEGIN, COMMIT AND CHAIN, SAVEPOINT, USE, KILL, XA,
            // LOCK TABLES); with a parameter marker the proxy could not run the text as it stands
            if crate::route::rewrite::has_placeholder(&sql) {
                return Err(Error::sql(1295, "HY000", format!("This command is not supported in the prepared statement protocol by shardcat with parameters: {sql}")));
            }
            return self.prepare_local(sql, kind).await;
        }
        let cfg = self.rt.config.clone();
        let schema = self.current_or_first_schema(&cfg)?;
        let (node, analysis) = if schema.tables.is_empty() {
            (route::any_node(schema, &|n| self.rt.backends.node_alive(n))?, None)
        } else {
            let a = self.shared.parse_cache.get(&sql).map_err(|m| {
                Error::sql(
                    1064,
                    "42000",
                    format!("You have an error in your SQL syntax, or shardcat cannot parse it to route it: {m}"),
                )
            })?;
            if self.schema.is_none() && a.tables.iter().any(|t| t.schema.is_none()) {
                return Err(Error::sql(1046, "3D000", "No database selected"));
            }
            let rules = self.rt.rules.clone();
            (route::metadata_node(&self.route_ctx(&cfg, &rules), schema, &a)?, Some(a))
        };
        let schema_name = schema.name.clone();
        let fixed = analysis.is_none().then(|| node.clone());
        if self.user.read_only && kind.is_write() {
            return Err(Error::sql(
                1142,
                "42000",
                format!(
                    "{} command denied to user '{}'@'{}' (user is readOnly)",
                    kind.verb(),
                    self.user.name,
                    self.peer.ip()
                ),
            ));
        }
        let id = self.next_stmt_id;
        let access = super::query::Access::of(kind, &sql);
        let reads_last_id = super::query::contains_ci(&sql, "LAST_INSERT_ID");
        let sql: Arc<str> = Arc::from(sql);
        // the backend prepares the client's own text (the proxy reads it masked: sql::escapes),
        // without the logical schema's prefix under checkSQLschema
        let real: Arc<str> = Arc::from(self.backend_text(&schema_name, &sql).as_str());
        let nodes = vec![node];
        // a node the prepare joins to the open transaction joins it as the statement would
        self.stmt_kind = kind;
        self.stmt_tableless = false;
        let mut conns = self.acquire(&nodes).await?;
        let fmt = self.stmt_fmt();
        let wire = self.client_text(&real);
        let res = relay::prepare(&mut conns[0], &wire, Some((&mut self.out, &fmt, id))).await;
        if let Ok(Ok(bs)) = &res {
            remember(&mut conns[0], real.clone(), bs.clone());
        }
        self.release(nodes, conns, &res).await;
        self.out.flush().await?;
        if let Ok(bs) = res? {
            self.next_stmt_id = self.next_stmt_id.wrapping_add(1).max(1);
            let cacheable_text = kind == Kind::Select && crate::cache::eligible::text_allows(&sql);
            self.stmts.insert(
                id,
                ClientStmt {
                    sql,
                    kind,
                    params: bs.params,
                    schema: schema_name,
                    analysis,
                    fixed,
                    param_types: None,
                    long_data: BTreeMap::new(),
                    long_data_overflow: false,
                    cacheable_text,
                    backend_sql: real,
                    access,
                    reads_last_id,
                    local: false,
                },
            );
        }
        Ok(())
    }

    /// A session statement prepared by the proxy: the prepare reply says 0 columns, 0 parameters.
    async fn prepare_local(&mut self, sql: String, kind: Kind) -> Result<()> {
        let id = self.next_stmt_id;
        self.next_stmt_id = self.next_stmt_id.wrapping_add(1).max(1);
        let sql: Arc<str> = Arc::from(sql);
        let schema = self.schema.clone().unwrap_or_default();
        self.stmts.insert(
            id,
            ClientStmt {
                sql: sql.clone(),
                kind,
                params: 0,
                schema,
                analysis: None,
                fixed: None,
                param_types: None,
                long_data: BTreeMap::new(),
                long_data_overflow: false,
                cacheable_text: false,
                backend_sql: sql.clone(),
                access: super::query::Access::of(kind, &sql),
                reads_last_id: false,
                local: true,
            },
        );
        let mut b = BytesMut::with_capacity(12);
        b.put_u8(0x00);
        b.put_u32_le(id);
        b.put_u16_le(0); // columns
        b.put_u16_le(0); // parameters
        b.put_u8(0);
        b.put_u16_le(0); // warnings
        self.out.push(&b);
        self.out.flush().await?;
        Ok(())
    }

    pub fn com_stmt_send_long_data(&mut self, pkt: &[u8]) {
        let (Some(id), Some(param)) = (Self::stmt_id_of(pkt), pkt.get(5..7).map(|b| u16::from_le_bytes([b[0], b[1]])))
        else {
            return;
        };
        let max = self.rt.config.system.max_packet_size;
        if let Some(st) = self.stmts.get_mut(&id) {
            let chunk = pkt.get(7..).unwrap_or(&[]);
            let data = st.long_data.entry(param).or_default();
            if st.long_data_overflow || data.len() + chunk.len() > max {
                // held no further: the EXECUTE answers MariaDB's error
                st.long_data_overflow = true;
                st.long_data.clear();
            } else {
                data.extend_from_slice(chunk);
            }
        }
    }

    pub async fn com_stmt_close(&mut self, pkt: &[u8]) {
        if let Some(id) = Self::stmt_id_of(pkt) {
            self.stmts.remove(&id);
            if let Some((node, bid)) = self.cursors.remove(&id) {
                self.close_cursor(node, bid).await;
            }
        }
    }

    pub async fn com_stmt_reset(&mut self, pkt: &[u8]) -> Result<()> {
        let id = Self::stmt_id_of(pkt).unwrap_or(0);
        let Some(st) = self.stmts.get_mut(&id) else {
            return self.send_error(&unknown_stmt(id, "mysqld_stmt_reset")).await;
        };
        st.long_data.clear();
        st.long_data_overflow = false;
        if let Some((node, bid)) = self.cursors.remove(&id) {
            self.close_cursor(node, bid).await;
        }
        self.send_ok(0, 0, b"").await
    }

    /// Closes a backend cursor (COM_STMT_RESET on its statement) on the connection the session kept
    /// for it (already out of `cursors`, so the connection may go back).
    async fn close_cursor(&mut self, node: Arc<str>, backend_id: u32) {
        let Some(i) = self.pinned.iter().position(|h| h.node == node) else { return };
        let mut h = self.pinned.swap_remove(i);
        let r = async {
            let mut p = BytesMut::new();
            p.put_u8(0x1A);
            p.put_u32_le(backend_id);
            h.conn.send(&p).await?;
            relay::drain(&mut h.conn).await
        }
        .await;
        match r {
            Ok(()) if h.joined || h.conn.holds_state() || self.tx_active() => self.pinned.push(h),
            Ok(()) => {}
            Err(_) => h.conn.discard(),
        }
    }

    /// Rewrites a client's COM_STMT_EXECUTE for a backend statement: its id, and the parameter types
    /// spelled out (the backend statement may never have seen them).
    fn rewrite_execute(pkt: &[u8], backend_id: u32, params: u16, types: &Option<Vec<u8>>) -> Result<Bytes> {
        let mut b = BytesMut::with_capacity(pkt.len() + params as usize * 2);
        if pkt.len() < 10 {
            return Err(Error::sql(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute"));
        }
        b.put_u8(0x17);
        b.put_u32_le(backend_id);
        b.extend_from_slice(&pkt[5..10]);
        if params == 0 {
            return Ok(b.freeze());
        }
        let nb = (params as usize).div_ceil(8);
        let bound_at = 10 + nb;
        let bitmap = pkt
            .get(10..bound_at)
            .ok_or_else(|| Error::sql(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute"))?;
        b.extend_from_slice(bitmap);
        let bound = pkt.get(bound_at).copied().unwrap_or(0);
        if bound == 1 {
            b.extend_from_slice(&pkt[bound_at..]);
        } else {
            let t = types.as_ref().ok_or_else(|| {
                Error::sql(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute: parameter types were never sent")
            })?;
            b.put_u8(1);
            b.extend_from_slice(t);
            b.extend_from_slice(pkt.get(bound_at + 1..).unwrap_or(&[]));
        }
        Ok(b.freeze())
    }

    pub async fn com_stmt_execute(&mut self, pkt: &[u8]) -> Result<()> {
        let id = Self::stmt_id_of(pkt).unwrap_or(0);
        self.reads_last_id = self.stmts.get(&id).is_some_and(|s| s.reads_last_id);
        let r = self.execute_stmt(id, pkt).await;
        self.reads_last_id = false;
        match r {
            Ok(()) => Ok(()),
            Err(e @ Error::Client(_)) => Err(e),
            Err(e) => {
                let sql = self.stmts.get(&id).map(|s| s.sql.clone()).unwrap_or_else(|| Arc::from("EXECUTE"));
                self.refuse(&e, &sql).await
            }
        }
    }

    async fn execute_stmt(&mut self, id: u32, pkt: &[u8]) -> Result<()> {
        let Some(st) = self.stmts.get_mut(&id) else {
            return Err(unknown_stmt(id, "mysqld_stmt_execute"));
        };
        // remember the types if this execute carries them
        if st.params > 0 {
            let nb = (st.params as usize).div_ceil(8);
            if pkt.get(10 + nb) == Some(&1) {
                let t = pkt.get(11 + nb..11 + nb + st.params as usize * 2).map(<[u8]>::to_vec);
                if t.is_some() {
                    st.param_types = t;
                }
            }
        }
        if st.local {
            // as the text protocol runs it: its OK or ERR is the EXECUTE's reply
            let sql = st.sql.clone();
            let mut raw = BytesMut::with_capacity(1 + sql.len());
            raw.put_u8(0x03);
            raw.extend_from_slice(&self.client_text(&sql));
            return self.com_query(&sql, &raw.freeze()).await;
        }
        let (sql, kind, params, types) = (st.sql.clone(), st.kind, st.params, st.param_types.clone());
        self.stmt_kind = kind;
        self.stmt_tables = None;
        let (schema_name, analysis, fixed) = (st.schema.clone(), st.analysis.clone(), st.fixed.clone());
        self.stmt_tableless = kind == Kind::Select && analysis.as_ref().is_some_and(|a| a.tables.is_empty());
        let long_data = std::mem::take(&mut st.long_data);
        if std::mem::take(&mut st.long_data_overflow) {
            return Err(Error::sql(
                1105,
                "HY000",
                "Parameter of prepared statement which is set through mysql_send_long_data() is longer than 'max_allowed_packet' bytes",
            ));
        }
        let (st_access, backend_text, cacheable_text) = (st.access, st.backend_sql.clone(), st.cacheable_text);
        if let Some((node, bid)) = self.cursors.remove(&id) {
            self.close_cursor(node, bid).await;
        }
        let cursor_requested = pkt.get(5).is_some_and(|f| f & 0x01 != 0);
        // a stored reply for this statement and these parameters: sent before any route
        let cache_on = self.shared.cache.store.on();
        let cache_key = (cache_on
            && cacheable_text
            && st_access == super::query::Access::Read
            && !cursor_requested
            && long_data.is_empty()
            && analysis.is_some())
        .then(|| {
            let (values, types) = (pkt.get(10..).unwrap_or(&[]), types.as_deref().unwrap_or(&[]));
            let mut key = Vec::with_capacity(sql.len() + 1 + values.len() + types.len());
            key.extend_from_slice(sql.as_bytes());
            key.push(0);
            key.extend_from_slice(values);
            key.extend_from_slice(types);
            key
        });
        if let Some(key) = cache_key.as_ref().and_then(|k| self.cache_key(&schema_name, k.clone(), true)) {
            if let Some(reply) = self.cache_hit_first(key).await? {
                self.after_reply(kind, &reply, &sql);
                return Ok(());
            }
        }
        self.implicit_commit(kind, &sql).await?;
        let mut bound = Vec::new();
        let route = match (&fixed, &analysis) {
            (Some(n), _) => Route::single(n.clone()),
            (None, Some(a)) => {
                bound = super::params::decode(pkt, params, types.as_deref(), &long_data)
                    .ok_or_else(|| Error::sql(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute"))?;
                let cfg = self.rt.config.clone();
                let schema = cfg
                    .schema(&schema_name)
                    .ok_or_else(|| Error::sql(1049, "42000", format!("Unknown database '{schema_name}'")))?;
                // an autoIncrement table's INSERT without its key: the key from the sequence, in the
                // statement with its parameters written in (its OK is the same in either protocol)
                if self.needs_auto_increment_key(&sql, kind) {
                    let (text, _) = self.inline_text(&sql, Some(a.as_ref()), &bound)?;
                    if let Some((text, first)) = self.with_sequences(&text, kind, schema).await? {
                        let payload = crate::proto::packets::com_query(&self.client_text(&text));
                        self.seq_insert_id = Some(first);
                        let r = Box::pin(self.routed_in(&text, kind, Some(&schema_name), payload)).await;
                        self.seq_insert_id = None;
                        return r;
                    }
                }
                match self.route_with_lookups(&cfg, schema, kind, a, &sql, &bound).await {
                    Ok(r) => r,
                    // a SELECT its shards cannot run for a subquery in it: with the parameters
                    // written in, the subqueries run first and the rest is merged as any read
                    Err(e) if kind == Kind::Select && e.code_and_state().0 == 1105 => {
                        let Ok((text, inlined)) = self.inline_text(&sql, Some(a.as_ref()), &bound) else {
                            return Err(e);
                        };
                        use super::join::Batching;
                        if self.join_in_batches(&text, &inlined, true, Batching::Preferred).await? {
                            return Ok(());
                        }
                        let folded = match self.fold_subqueries(&text, &inlined).await {
                            Err(Error::MemoryLimit { what, limit }) => {
                                if self.join_in_batches(&text, &inlined, true, Batching::Fallback).await? {
                                    return Ok(());
                                }
                                return Err(Error::MemoryLimit { what, limit });
                            }
                            r => r?,
                        };
                        let Some(folded) = folded else { return Err(e) };
                        let r = self.route_folded(&schema_name, kind, &folded).await?;
                        return self.execute_merged(&sql, kind, r, &folded).await;
                    }
                    Err(e) => return Err(e),
                }
            }
            (None, None) => return Err(Error::unsupported("prepared statement without a route")),
        };
        if let Mode::Merge(plan) = &route.mode {
            // the merge planned on the statement's `?` text runs with the values written into the
            // shards' statement; when that text cannot take them as they are, it is re-read with them
            let filled = match (&plan.having, &route.sql) {
                (None, route::Rewrite::Shared(shard_sql)) => route::rewrite::fill_placeholders(shard_sql, &bound),
                _ => None,
            };
            let (routed, text) = match filled {
                Some(text) => (Route { sql: route::Rewrite::Original, ..route }, text),
                None => self.route_inlined(&sql, kind, &schema_name, analysis.as_deref(), &bound).await?,
            };
            return self.execute_merged(&sql, kind, routed, &text).await;
        }
        if let route::Rewrite::PerNode(texts) = &route.sql {
            // an INSERT split over shards runs as plain statements with the parameters written in
            let payloads: Vec<bytes::Bytes> = texts
                .iter()
                .map(|t| crate::proto::packets::com_query(crate::sql::escapes::unmask(t).as_bytes()))
                .collect();
            let reply = self.execute(&route, &payloads).await?;
            self.after_reply(kind, &reply, &sql);
            return Ok(());
        }
        // the result cache: a read without cursor or long data has a key (above); a write moves the
        // epochs of its tables
        let mut fill = None;
        let cfg = cache_on.then(|| self.rt.config.clone());
        if let (Some(a), Some(schema)) = (&analysis, cfg.as_ref().and_then(|c| c.schema(&schema_name))) {
            if super::cached::changes_data(kind) {
                self.stmt_tables = self.logical_tables(schema, a);
            }
            let plan = cache_key
                .as_deref()
                .and_then(|key| self.cache_plan(schema, Some(a), cacheable_text, key, &route, true));
            if let Some(plan) = plan {
                match self.cache_lookup(&plan).await? {
                    super::cached::Lookup::Hit(reply) => {
                        self.after_reply(kind, &reply, &sql);
                        return Ok(());
                    }
                    super::cached::Lookup::Miss(epochs, guard) => fill = Some((plan, epochs, guard)),
                    super::cached::Lookup::Bypass => {}
                }
            }
        }
        // the text the backends prepare: the client's, or its rewrite (schema prefix, LIMIT)
        let backend_sql: Arc<str> = match &route.sql {
            route::Rewrite::Shared(s) => Arc::from(crate::sql::escapes::unmask(s).as_ref()),
            _ => backend_text,
        };
        self.read_hint.writer = fill.is_some();
        let conns = self.acquire_for(&route.nodes, st_access == super::query::Access::Read).await;
        self.read_hint.writer = false;
        let mut conns = conns?;
        if st_access == super::query::Access::Stateful {
            conns.iter_mut().for_each(|c| c.mark_state());
        }
        // make sure every connection has the statement, then send long data and the execute
        let mut payloads = Vec::with_capacity(conns.len());
        let mut prep_err = None;
        for c in conns.iter_mut() {
            let bid = match c.stmt(&backend_sql) {
                Some(s) => s.id,
                None => match relay::prepare::<tokio::io::Sink>(
                    c,
                    &crate::sql::charset::encode(&backend_sql, &self.client_charset),
                    None,
                )
                .await
                {
                    Ok(Ok(bs)) => {
                        let bid = bs.id;
                        remember(c, backend_sql.clone(), bs);
                        bid
                    }
                    Ok(Err(e)) => {
                        prep_err = Some(Error::sql(e.code, crate::error::static_state(&e.state), e.message));
                        break;
                    }
                    Err(e) => {
                        prep_err = Some(e);
                        break;
                    }
                },
            };
            for (param, data) in &long_data {
                let mut p = BytesMut::with_capacity(data.len() + 7);
                p.put_u8(0x18);
                p.put_u32_le(bid);
                p.put_u16_le(*param);
                p.extend_from_slice(data);
                c.queue(&p);
            }
            match Self::rewrite_execute(pkt, bid, params, &types) {
                Ok(p) => payloads.push(p),
                Err(e) => {
                    prep_err = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = prep_err {
            let r: Result<()> = Err(e);
            for c in conns.iter_mut() {
                let _ = c.flush().await; // long data needs no reply
            }
            self.release(route.nodes.clone(), conns, &r).await;
            return r;
        }
        let fmt = self.stmt_fmt();
        let (watched, res) = self.run_routed(&route, &mut conns, &payloads, &fmt).await;
        if st_access != super::query::Access::Read
            && !self.tx_active()
            && matches!(&res, Ok(r) if r.failed.is_none() && !r.result_set)
        {
            self.remember_writes(&route.nodes, &mut conns).await;
        }
        if let Ok(rep) = &res {
            self.note_reply(&route.nodes, rep);
        }
        // an open cursor keeps its connection with the session (and with its transaction)
        let cursor_open = cursor_requested
            && route.mode == Mode::Single
            && res.is_ok()
            && conns.first().is_some_and(|c| c.status & StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits() != 0);
        if cursor_open {
            let bid = conns.first_mut().and_then(|c| c.stmt(&backend_sql)).map(|s| s.id).unwrap_or(0);
            self.cursors.insert(id, (route.nodes[0].clone(), bid));
        }
        self.release(route.nodes.clone(), conns, &res).await;
        let reply = self.settle(watched, res).await?;
        self.out.flush().await?;
        if let Some((plan, epochs, guard)) = fill {
            self.cache_fill(plan, epochs, guard, &reply);
        }
        self.after_reply(kind, &reply, &sql);
        Ok(())
    }

    /// A prepared statement's text with its parameters written in, and its parse.
    fn inline_text(
        &self,
        sql: &str,
        analysis: Option<&crate::sql::analyze::Analysis>,
        bound: &[route::Param],
    ) -> Result<(String, Arc<crate::sql::analyze::Analysis>)> {
        let stmt = analysis
            .and_then(|a| a.stmts.first())
            .ok_or_else(|| Error::unsupported("prepared statement without a parse"))?;
        let text = route::rewrite::inline_params(sql, stmt, bound)
            .ok_or_else(|| Error::unsupported("cannot write the parameters into this statement to merge it"))?;
        let a = self
            .shared
            .parse_cache
            .parse_once(&text)
            .map_err(|m| Error::unsupported(format!("cannot re-read the statement with its parameters: {m}")))?;
        Ok((text, a))
    }

    /// The route of a prepared SELECT whose subqueries ran first (`folded`, parameters written in):
    /// always a merge, so that the proxy sends its rows in the binary protocol (a plain concatenation
    /// of the shards' text rows when nothing else is to be merged).
    async fn route_folded(&mut self, schema_name: &str, kind: Kind, folded: &str) -> Result<Route> {
        let a = self.shared.parse_cache.parse_once(folded).map_err(|m| {
            Error::unsupported(format!("cannot re-read the statement with its subqueries' values: {m}"))
        })?;
        let cfg = self.rt.config.clone();
        let schema = cfg
            .schema(schema_name)
            .ok_or_else(|| Error::sql(1049, "42000", format!("Unknown database '{schema_name}'")))?;
        let mut r = self.route_with_lookups(&cfg, schema, kind, &a, folded, &[]).await?;
        if !matches!(r.mode, Mode::Merge(_)) {
            let mut plan = route::merge::MergePlan::concatenation(folded);
            plan.limit = r.limit.take();
            r.mode = Mode::Merge(Box::new(plan));
        }
        Ok(r)
    }

    /// A prepared statement whose result is merged across shards, routed again from its text with the
    /// parameters written in.
    async fn route_inlined(
        &mut self,
        sql: &str,
        kind: Kind,
        schema_name: &str,
        analysis: Option<&crate::sql::analyze::Analysis>,
        bound: &[route::Param],
    ) -> Result<(Route, String)> {
        let (text, a) = self.inline_text(sql, analysis, bound)?;
        let cfg = self.rt.config.clone();
        let schema = cfg
            .schema(schema_name)
            .ok_or_else(|| Error::sql(1049, "42000", format!("Unknown database '{schema_name}'")))?;
        let r = self.route_with_lookups(&cfg, schema, kind, &a, &text, &[]).await?;
        Ok((r, text))
    }

    /// Runs a merge route for a prepared statement: the shards run plain statements (the parameters
    /// written in: `text`, unless the route rewrites it); the proxy sends the merged rows in the binary
    /// protocol.
    async fn execute_merged(&mut self, sql: &str, kind: Kind, r: Route, text: &str) -> Result<()> {
        let payloads = super::query::text_payloads(
            &r,
            &crate::proto::packets::com_query(&self.client_text(text)),
            &self.client_charset,
            true,
        )?;
        let mut conns = self.acquire(&r.nodes).await?;
        let fmt = crate::exec::ClientFmt { binary_rows: true, ..self.stmt_fmt() };
        let (watched, res) = self.run_on(&r, &mut conns, &payloads, &fmt).await;
        self.release(r.nodes.clone(), conns, &res).await;
        let reply = self.settle(watched, res).await?;
        self.out.flush().await?;
        self.after_reply(kind, &reply, sql);
        Ok(())
    }

    pub async fn com_stmt_fetch(&mut self, pkt: &[u8]) -> Result<()> {
        let id = Self::stmt_id_of(pkt).unwrap_or(0);
        let rows = pkt.get(5..9).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(1);
        if !self.stmts.contains_key(&id) {
            return self.send_error(&unknown_stmt(id, "mysqld_stmt_fetch")).await;
        }
        let Some((node, bid)) = self.cursors.get(&id).cloned() else {
            return self
                .send_error(&Error::sql(1421, "HY000", format!("The statement ({id}) has no open cursor.")))
                .await;
        };
        let nodes = vec![node];
        let mut conns = match self.acquire(&nodes).await {
            Ok(c) => c,
            Err(e) => return self.send_error(&e).await,
        };
        let fmt = self.stmt_fmt();
        let res = async {
            let c = &mut conns[0];
            let mut p = BytesMut::with_capacity(9);
            p.put_u8(0x1C);
            p.put_u32_le(bid);
            p.put_u32_le(rows);
            c.send(&p).await?;
            let mut reply = crate::exec::Reply::default();
            let (w, st) = relay::relay_rows(c, &mut self.out, &mut reply, None).await?;
            if let Some(st) = st {
                relay::write_terminator(&mut self.out, &fmt, w, fmt.patch(st));
                c.finish(st);
                return Ok(st & StatusFlags::SERVER_STATUS_LAST_ROW_SENT.bits() == 0);
            }
            Ok(false)
        }
        .await;
        if !matches!(res, Ok(true)) {
            // the last row went out (or the fetch failed): the cursor is closed
            self.cursors.remove(&id);
        }
        self.release(nodes, conns, &res).await;
        res?;
        self.out.flush().await?;
        Ok(())
    }
}

impl Session {
    /// A text the proxy read (decoded, masked) as the client's bytes again.
    pub fn client_text(&self, text: &str) -> Vec<u8> {
        crate::sql::charset::encode(&crate::sql::escapes::unmask(text), &self.client_charset).into_owned()
    }

    /// The text a backend prepares for a client statement read as `sql` in `schema`: unmasked
    /// (sql::escapes), and without the schema's prefix when it has checkSQLschema.
    fn backend_text(&self, schema: &str, sql: &str) -> String {
        let cfg = self.rt.config.clone();
        // the prefix is found in the text as the proxy reads it, then the text is unmasked
        let stripped =
            cfg.schema(schema).filter(|s| s.check_sql_schema).and_then(|s| route::rewrite::strip_schema(sql, &s.name));
        crate::sql::escapes::unmask(stripped.as_deref().unwrap_or(sql)).into_owned()
    }
}

/// A statement that is not text of a character set whose second bytes can be quotes or backslashes.
pub fn unsafe_text(charset: &str) -> Error {
    Error::unsupported(format!(
        "the statement is not valid {charset} text: shardcat cannot tell its quotes and backslashes as MariaDB would"
    ))
}

fn unknown_stmt(id: u32, what: &str) -> Error {
    Error::sql(1243, "HY000", format!("Unknown prepared statement handler ({id}) given to {what}"))
}

/// Caches a backend statement on its connection.
fn remember(c: &mut Pooled, sql: Arc<str>, bs: crate::backend::conn::BackendStmt) {
    c.remember_stmt(sql, bs);
}
