//! One client session: its state (schema, charset, autocommit, transaction, variables, prepared
//! statements, pinned backend connections) and the command loop that dispatches every COM_* packet.

use crate::proto::stream::{ConnRead, ConnWrite};
use bytes::{BufMut, BytesMut};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpStream;

use super::control::SessionControl;
use super::handshake::{self, Login};
use super::prepared::ClientStmt;
use super::Shared;
use crate::backend::Pooled;
use crate::config::model::User;
use crate::error::{Error, Result};
use crate::exec::ClientFmt;
use crate::proto::codec::{PacketReader, PacketWriter};
use crate::proto::packets;
use crate::proto::{auth, CapabilityFlags, StatusFlags};

pub struct Session {
    pub id: u32,
    pub uid: u64,
    pub shared: Arc<Shared>,
    /// The runtime generation this statement runs on: taken anew before each command, except while a
    /// transaction holds connections (it finishes on the generation it started on).
    pub rt: Arc<crate::runtime::Runtime>,
    pub reader: PacketReader<ConnRead>,
    pub out: PacketWriter<ConnWrite>,
    pub peer: SocketAddr,
    pub caps: CapabilityFlags,
    /// The client negotiated MariaDB's extended column metadata.
    pub extended_metadata: bool,
    pub user: User,
    pub nonce: [u8; 20],
    pub schema: Option<String>,
    /// `SET NAMES` argument the backends must use.
    pub charset: String,
    pub autocommit: bool,
    /// An explicit BEGIN/START TRANSACTION is open.
    pub in_tx: bool,
    /// The statement that opened it, replayed on each node the transaction touches.
    pub begin_sql: String,
    /// A transaction that writes on several dataNodes commits by XA (server.xml `transactionMode`,
    /// `SET xa=on|off`).
    pub xa: bool,
    /// The open transaction's global id once a node joined it by XA START.
    pub tx_xid: Option<Arc<str>>,
    /// `SET TRANSACTION …` (no scope) waiting for the next transaction.
    pub next_tx: Option<String>,
    pub isolation: String,
    /// Replayable SETs in order, the last per variable.
    pub sets: Vec<Arc<str>>,
    /// Changes whenever `sets` changed other than by appending: connections replay it from the start.
    pub sets_epoch: u64,
    pub last_insert_id: u64,
    pub found_rows: u64,
    /// ROW_COUNT() of the previous statement: rows a DML changed, -1 after a result set or an error.
    pub row_count: i64,
    pub multi_statements: bool,
    /// Backend connections the session keeps between statements, at most one per dataNode.
    pub pinned: Vec<Held>,
    pub stmts: HashMap<u32, ClientStmt>,
    /// Open cursors by client statement id: the node and the backend statement id. The session
    /// keeps that node's connection while one is open (inside a transaction it stays part of it).
    pub cursors: HashMap<u32, (Arc<str>, u32)>,
    /// The GTID of this session's last write per dataHost: replicas serve its reads once applied.
    pub written: HashMap<Arc<str>, String>,
    /// Read routing hints of the statement being run (reset after it).
    pub read_hint: ReadHint,
    pub next_stmt_id: u32,
    /// KILL and shutdown reach the session through this.
    pub ctl: Arc<SessionControl>,
    /// The session's sql_mode has NO_BACKSLASH_ESCAPES (as its backends last said).
    pub no_backslash: bool,
    /// A statement of a multi-statement text is answered and more follow (SERVER_MORE_RESULTS_EXISTS).
    pub more_results: bool,
    /// The statement just answered failed (its error went to the client).
    pub stmt_failed: bool,
    /// The statement being run mentions LAST_INSERT_ID(): its connections get the session's value.
    pub reads_last_id: bool,
    /// The statement being run asks SQL_CALC_FOUND_ROWS: FOUND_ROWS() is then the server's total.
    pub calc_found_rows: bool,
    /// Where the previous statement's warnings and errors are (SHOW WARNINGS).
    pub diag: super::diagnostics::Diagnostics,
    /// A SHOW WARNINGS is being answered (it leaves the diagnostics as they are).
    pub reading_diagnostics: bool,
    /// How many subqueries are being run first, one inside the other (`frontend::subquery`).
    pub fold_depth: u8,
    /// The first id a global sequence gave the statement running (`frontend::sequence`).
    pub seq_insert_id: Option<u64>,
    /// `SET wait_timeout = n` of this session: idle that long, it is closed.
    pub wait_timeout: Option<std::time::Duration>,
    /// The character set the client's statements are written in (character_set_client).
    pub client_charset: String,
    /// What the client's own session trackers follow (its `session_track_*` settings).
    pub client_tracking: super::tracking::ClientTracking,
    /// Session-tracking entries for the next OK the proxy builds.
    pub pending_track: Vec<u8>,
    /// The statement being run was read exactly in that character set (else it is never rewritten).
    pub text_exact: bool,
    /// The kind of the statement being run, and its logical tables when known (the result cache's
    /// write guards move their epochs).
    pub stmt_kind: crate::sql::classify::Kind,
    pub stmt_tables: Option<Vec<crate::config::placement::Logical>>,
    /// The statement being run is a SELECT known (parsed) to read no table: on one server it opens
    /// no implicit transaction, so under autocommit=0 it joins none by XA START either.
    pub stmt_tableless: bool,
    /// Write guards of the open transaction: its tables are neither cached nor served until it ends.
    pub write_guards: Vec<crate::cache::WriteGuard>,
    /// The statement running holds a write guard already (a write on several nodes, until its COMMIT).
    pub write_guarded: bool,
    /// The result cache's move sequence when the open transaction joined each node (at or before its
    /// snapshot there): a stored reply is served inside it only if nothing it depends on moved since.
    pub tx_seq: HashMap<Arc<str>, u64>,
    /// The parts of the result cache's keys last built for this session (`cached::key_parts`).
    pub key_memo: KeyMemo,
    /// The result-cache key this statement's lookup before its route missed (`cached::cache_plan`).
    pub cache_missed: Option<crate::cache::store::Key>,
}

/// A backend connection the session keeps between statements: for its open transaction (`joined`:
/// the transaction was opened on it), or because it holds state only it has (session tracking said
/// so, or the statement's text), or a cursor is open on it.
pub struct Held {
    pub node: Arc<str>,
    pub conn: Pooled,
    pub joined: bool,
}

/// The user, schema and session strings of the last result-cache key, shared by the next ones.
#[derive(Default)]
pub struct KeyMemo {
    pub user: Arc<str>,
    pub schema: Arc<str>,
    pub session: Arc<str>,
    /// Where the session string is built before it is compared.
    pub scratch: String,
}

/// Where a statement's reads may go, by its hints: `db_type=slave` (a readHost whatever `balance`
/// says) and a leading `/*balance*/` (a read inside a transaction may leave it for a replica); and
/// `writer`: a miss the result cache will keep reads on the writeHost.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadHint {
    pub slave: bool,
    pub balance: bool,
    pub writer: bool,
}

pub async fn run(stream: TcpStream, peer: SocketAddr, id: u32, shared: Arc<Shared>, ctl: Arc<SessionControl>) {
    let local_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    ctl.report(|a| a.local_port = local_port);
    let (r, w) = crate::proto::stream::split(stream);
    let rt = shared.rt();
    let mut reader = PacketReader::new(r);
    reader.set_max_packet(rt.config.system.max_packet_size);
    let mut out = PacketWriter::new(w);
    let auth_timeout = std::time::Duration::from_millis(rt.config.system.auth_timeout_ms.max(100));
    let login = match tokio::time::timeout(
        auth_timeout,
        handshake::login(&mut reader, &mut out, &shared, id, &peer, handshake::Port::Service),
    )
    .await
    {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::info!(conn = id, peer = %peer, error = %e, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(conn = id, peer = %peer, "handshake not completed within authTimeout");
            return;
        }
    };
    let Login { user, caps, schema, collation, nonce, extended_metadata } = login;
    let charset = charset_of(collation);
    let isolation = isolation_name(rt.config.system.tx_isolation).to_string();
    let default_xa = rt.config.system.xa;
    let mut s = Session {
        id,
        uid: shared.session_uid(),
        shared: shared.clone(),
        rt,
        reader,
        out,
        peer,
        caps,
        extended_metadata,
        user,
        nonce,
        schema,
        charset,
        autocommit: true,
        in_tx: false,
        begin_sql: "BEGIN".into(),
        xa: default_xa,
        tx_xid: None,
        next_tx: None,
        isolation,
        sets: Vec::new(),
        sets_epoch: 0,
        last_insert_id: 0,
        found_rows: 0,
        row_count: -1,
        multi_statements: caps.contains(CapabilityFlags::CLIENT_MULTI_STATEMENTS),
        pinned: Vec::new(),
        stmts: HashMap::new(),
        cursors: HashMap::new(),
        written: HashMap::new(),
        read_hint: ReadHint::default(),
        next_stmt_id: 1,
        ctl,
        no_backslash: false,
        more_results: false,
        stmt_failed: false,
        reads_last_id: false,
        calc_found_rows: false,
        diag: Default::default(),
        reading_diagnostics: false,
        fold_depth: 0,
        seq_insert_id: None,
        wait_timeout: None,
        client_charset: String::new(),
        client_tracking: Default::default(),
        pending_track: Vec::new(),
        stmt_kind: crate::sql::classify::Kind::Empty,
        stmt_tableless: false,
        stmt_tables: None,
        write_guards: Vec::new(),
        write_guarded: false,
        tx_seq: HashMap::new(),
        key_memo: KeyMemo::default(),
        cache_missed: None,
        text_exact: true,
    };
    s.client_charset = s.charset.clone();
    s.ctl.identify(&s.user.name, &peer.to_string(), s.schema.as_deref());
    s.report_activity();
    if let Some(bench) = Some(s.user.benchmark).filter(|b| *b > 0) {
        if shared.session_count() > bench as usize {
            let e = Error::sql(
                1040,
                "08004",
                format!("Too many connections for user '{}' (benchmark {bench})", s.user.name),
            );
            let _ = s.send_error(&e).await;
            return;
        }
    }
    tracing::info!(conn = id, user = %s.user.name, peer = %peer, schema = s.schema.as_deref().unwrap_or(""), "connected");
    if s.send_ok(0, 0, b"").await.is_err() {
        return;
    }
    if caps.contains(CapabilityFlags::CLIENT_COMPRESS) {
        // everything after the login OK travels in compressed packets, both ways
        s.reader.enable_compression();
        s.out.enable_compression();
    }
    let reason = s.command_loop().await;
    s.rt.backends.deadlocks.end(s.uid);
    s.rollback_pinned().await;
    tracing::info!(conn = id, user = %s.user.name, reason = %reason, "disconnected");
}

/// `SET NAMES` argument for a handshake collation id: its character set, with the collation when it is
/// not MariaDB's default for that set (a client asking for utf8mb4_unicode_ci gets its columns in it,
/// as direct). MySQL 8 ids MariaDB lacks (255 and above) keep the set's default.
pub fn charset_of(collation: u16) -> String {
    /// MariaDB's default collation of each character set.
    const DEFAULTS: &[u16] = &[
        1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 16, 18, 19, 22, 24, 25, 26, 28, 30, 32, 33, 35, 36, 37, 38, 39, 40, 41,
        45, 51, 54, 56, 57, 59, 60, 63, 92, 95, 97,
    ];
    let c = mysql_common::collations::Collation::from(mysql_common::collations::CollationId::from(collation));
    match c.charset() {
        "" => "utf8mb4".to_string(),
        cs if collation < 255 && !DEFAULTS.contains(&collation) && !c.collation().is_empty() => {
            format!("{cs} COLLATE {}", c.collation())
        }
        cs => cs.to_string(),
    }
}

pub fn isolation_name(level: u8) -> &'static str {
    match level {
        1 => "READ-UNCOMMITTED",
        2 => "READ-COMMITTED",
        4 | 8 => "SERIALIZABLE",
        _ => "REPEATABLE-READ",
    }
}

impl Session {
    pub fn deprecate_eof(&self) -> bool {
        self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// The backend connections this client needs: same row counting and EOF framing as its own.
    pub fn backend_variant(&self) -> crate::backend::conn::Variant {
        crate::backend::conn::Variant {
            found_rows: self.caps.contains(CapabilityFlags::CLIENT_FOUND_ROWS),
            deprecate_eof: self.deprecate_eof(),
            extended_metadata: self.extended_metadata,
        }
    }

    /// A transaction is (or will be, on the next statement) open.
    pub fn tx_active(&self) -> bool {
        self.in_tx || !self.autocommit
    }

    pub fn status(&self) -> u16 {
        let mut s = 0;
        if self.autocommit {
            s |= StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
        }
        if self.in_tx || (!self.autocommit && self.pinned.iter().any(|h| h.joined && h.conn.in_transaction())) {
            s |= StatusFlags::SERVER_STATUS_IN_TRANS.bits();
        }
        if self.no_backslash {
            s |= StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES.bits();
        }
        if self.more_results {
            s |= StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits();
        }
        s
    }

    pub fn fmt(&self) -> ClientFmt {
        ClientFmt {
            deprecate_eof: self.deprecate_eof(),
            status: self.status(),
            backend_in_trans: false,
            binary_rows: false,
            session_track: self.caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK),
            insert_id: self.seq_insert_id,
        }
    }

    /// The framing for the reply to a statement that runs on backends: with autocommit off, the
    /// backend says whether the statement opened a transaction (drivers decide COMMIT/ROLLBACK on it).
    pub fn stmt_fmt(&self) -> ClientFmt {
        ClientFmt { backend_in_trans: !self.autocommit, ..self.fmt() }
    }

    pub async fn send_ok(&mut self, affected: u64, last_id: u64, info: &[u8]) -> Result<()> {
        let mut b = BytesMut::with_capacity(16);
        let track = std::mem::take(&mut self.pending_track);
        if track.is_empty() {
            packets::ok(&mut b, packets::OK_HEADER, affected, last_id, self.status(), 0, info);
        } else {
            packets::ok_tracked(&mut b, affected, last_id, self.status(), info, &track);
        }
        self.out.push(&b);
        self.out.flush().await?;
        Ok(())
    }

    pub fn push_error(&mut self, e: &Error) {
        let (code, state) = e.code_and_state();
        let mut b = BytesMut::new();
        packets::err(&mut b, code, state, &e.to_string());
        self.out.push(&b);
    }

    pub async fn send_error(&mut self, e: &Error) -> Result<()> {
        self.push_error(e);
        self.out.flush().await?;
        Ok(())
    }

    /// Reads and answers commands until the client leaves. Returns why the loop ended.
    async fn command_loop(&mut self) -> String {
        let configured = std::time::Duration::from_millis(self.rt.config.system.idle_timeout_ms.max(1000));
        // the idle timer is one per session, moved only when it fires (not registered anew per command)
        let mut active = tokio::time::Instant::now();
        let idle_timer = tokio::time::sleep(self.wait_timeout.unwrap_or(configured));
        tokio::pin!(idle_timer);
        // the loop comes round without a command in between (the timer fired early, a wake-up)
        let mut still_idle = false;
        loop {
            // the session's own wait_timeout, when it set one, as MariaDB closes idle sessions by it
            let idle = self.wait_timeout.unwrap_or(configured);
            if self.ctl.stopping() {
                return "killed, or the proxy shuts down".into();
            }
            // idle from the end of the last command; a wait_timeout shorter than the timer's moves it
            if !std::mem::take(&mut still_idle) {
                active = tokio::time::Instant::now();
            }
            if active + idle < idle_timer.deadline() {
                idle_timer.as_mut().reset(active + idle);
            }
            let next = tokio::select! {
                n = self.reader.next() => n,
                _ = &mut idle_timer => {
                    if active.elapsed() >= idle {
                        return format!("idle for more than {} s (idleTimeout)", idle.as_secs());
                    }
                    idle_timer.as_mut().reset(active + idle);
                    still_idle = true;
                    continue;
                }
                _ = self.ctl.wake.notified() => {
                    still_idle = true;
                    continue;
                }
            };
            if !self.pinned.iter().any(|h| h.joined) {
                self.shared.refresh_rt(&mut self.rt);
            }
            let (seq, pkt) = match next {
                Ok(Some(p)) => p,
                Ok(None) => return "client closed the connection".into(),
                Err(e) => return format!("read error: {e}"),
            };
            self.out.set_seq(seq.wrapping_add(1));
            if let Some(cs) = self.reader.comp_seq() {
                self.out.set_comp_seq(cs.wrapping_add(1));
            }
            let Some(&cmd) = pkt.first() else {
                let _ = self.send_error(&Error::sql(1047, "08S01", "Unknown command")).await;
                continue;
            };
            self.shared.questions.fetch_add(1, Ordering::Relaxed);
            self.shared.stats.commands.count(cmd);
            self.ctl.doing(Some(pkt.clone()));
            let started = std::time::Instant::now();
            let _ = self.out.take_err();
            let mut kind = None;
            let r = match cmd {
                0x01 => {
                    crate::stats::command("quit", None, None, started.elapsed());
                    return "COM_QUIT".into();
                }
                0x03 => {
                    // read in the client's character set (sql::charset)
                    let (sql, read) = crate::sql::charset::decode(&pkt[1..], &self.client_charset);
                    if read == crate::sql::charset::Read::Unsafe {
                        let e = super::prepared::unsafe_text(&self.client_charset);
                        self.send_error(&e).await
                    } else {
                        kind = Some(crate::sql::classify::classify(&sql).0.label());
                        self.text_exact = read == crate::sql::charset::Read::Exact;
                        self.com_query(&sql, &pkt).await
                    }
                }
                0x02 => {
                    let db = String::from_utf8_lossy(&pkt[1..]).into_owned();
                    self.use_schema(&db).await
                }
                0x0E if !self.shared.online.load(Ordering::Relaxed) => {
                    // `offline` on the manager port: health checks fail, work goes on
                    self.send_error(&Error::sql(1105, "HY000", "The server has been shutdown")).await
                }
                0x0E => self.send_ok(0, 0, b"").await,
                0x04 => self.com_field_list(&pkt[1..]).await,
                0x09 => self.com_statistics().await,
                0x0C => {
                    let id = pkt.get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    match id {
                        Some(id) => self.kill(false, id).await,
                        None => self.send_error(&Error::sql(1047, "08S01", "Malformed COM_PROCESS_KILL")).await,
                    }
                }
                0x11 => self.com_change_user(&pkt[1..]).await,
                0x16 => self.com_stmt_prepare(&pkt[1..]).await,
                0x17 => {
                    let id = pkt.get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
                    kind = Some(self.stmts.get(&id).map_or("other", |s| s.kind.label()));
                    self.com_stmt_execute(&pkt).await
                }
                0x18 => {
                    self.com_stmt_send_long_data(&pkt);
                    Ok(())
                }
                0x19 => {
                    self.com_stmt_close(&pkt).await;
                    Ok(())
                }
                0x1A => self.com_stmt_reset(&pkt).await,
                0x1B => self.com_set_option(&pkt).await,
                0x1C => self.com_stmt_fetch(&pkt).await,
                0x1F => self.com_reset_connection().await,
                _ => self.send_error(&Error::sql(1047, "08S01", "Unknown command")).await,
            };
            self.ctl.doing(None);
            self.report_activity();
            if matches!(cmd, 0x03 | 0x17) {
                self.offer_slow(cmd, &pkt, started);
            }
            if let Err(e) = r {
                match e {
                    Error::Client(io) => return format!("write error: {io}"),
                    other => {
                        // an internal failure outside a statement: report it, keep the session
                        if self.send_error(&other).await.is_err() {
                            return "write error".into();
                        }
                    }
                }
            }
            crate::stats::command(crate::stats::Commands::name(cmd), kind, self.out.take_err(), started.elapsed());
            // a miss that ended early leaves nothing being captured, nor a key for the next statement
            let _ = self.out.take_capture();
            self.cache_missed = None;
            if !self.tx_active() {
                // the transaction ended: its tables may be cached again (their epochs move once more)
                if !self.write_guards.is_empty() {
                    self.write_guards.clear();
                }
                if !self.tx_seq.is_empty() {
                    self.tx_seq.clear();
                }
            }
        }
    }

    /// What the manager port shows of this session after a command (copies only what changed).
    fn report_activity(&self) {
        let (bytes_in, bytes_out) = (self.reader.bytes_in, self.out.bytes_out);
        self.ctl.report(|a| {
            crate::stats::client_bytes(bytes_in.saturating_sub(a.net_in), bytes_out.saturating_sub(a.net_out));
            a.net_in = bytes_in;
            a.net_out = bytes_out;
            a.autocommit = self.autocommit;
            if a.charset != self.charset {
                a.charset = self.charset.clone();
            }
            if a.isolation != self.isolation {
                a.isolation = self.isolation.clone();
            }
            if a.held.len() != self.pinned.len() || a.held.iter().zip(&self.pinned).any(|(x, h)| **x != *h.node) {
                a.held = self.pinned.iter().map(|h| h.node.to_string()).collect();
            }
        });
    }

    /// A statement (COM_QUERY, or the text of the statement a COM_STMT_EXECUTE ran) that took at
    /// least `sqlSlowTime` goes to the slow log.
    fn offer_slow(&self, cmd: u8, pkt: &[u8], t0: std::time::Instant) {
        let took = t0.elapsed();
        if took < self.shared.stats.slow.threshold() {
            return;
        }
        let sql = if cmd == 0x03 {
            String::from_utf8_lossy(&pkt[1..]).into_owned()
        } else {
            let id = pkt.get(1..5).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
            self.stmts.get(&id).map(|s| s.sql.to_string()).unwrap_or_default()
        };
        self.shared.stats.slow.offer(crate::stats::Slow {
            user: self.user.name.clone(),
            schema: self.schema.clone().unwrap_or_default(),
            ip: self.peer.ip().to_string(),
            start: std::time::SystemTime::now() - took,
            took,
            sql,
        });
    }

    pub async fn use_schema(&mut self, db: &str) -> Result<()> {
        let cfg = self.rt.config.clone();
        match handshake::check_schema(&cfg, &self.user, &self.peer, db) {
            Ok(name) => {
                self.ctl.set_db(Some(&name));
                if self.caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
                    self.pending_track = self.client_tracking.schema(&name);
                }
                self.schema = Some(name);
                self.send_ok(0, 0, b"").await
            }
            Err(e) => self.send_error(&e).await,
        }
    }

    async fn com_statistics(&mut self) -> Result<()> {
        let up = self.shared.started.elapsed().as_secs().max(1);
        let q = self.shared.questions.load(Ordering::Relaxed);
        let text = format!(
            "Uptime: {up}  Threads: {}  Questions: {q}  Slow queries: 0  Opens: 0  Open tables: 0  Queries per second avg: {:.3}",
            self.shared.session_count(),
            q as f64 / up as f64
        );
        self.out.push(text.as_bytes());
        self.out.flush().await?;
        Ok(())
    }

    /// KILL [CONNECTION | QUERY] id, for shardcat's connection ids.
    pub async fn kill(&mut self, query: bool, id: u32) -> Result<()> {
        if id == self.id {
            if query {
                // nothing of this session runs while it answers
                return self.send_ok(0, 0, b"").await;
            }
            self.send_ok(0, 0, b"").await?;
            return Err(Error::Client(std::io::Error::other("killed itself")));
        }
        let found = if query { self.shared.kill_query(id) } else { self.shared.kill(id) };
        if found {
            self.send_ok(0, 0, b"").await
        } else {
            self.send_error(&Error::sql(1094, "HY000", format!("Unknown thread id: {id}"))).await
        }
    }

    async fn com_set_option(&mut self, pkt: &[u8]) -> Result<()> {
        match pkt.get(1..3).map(|b| u16::from_le_bytes([b[0], b[1]])) {
            Some(0) => self.multi_statements = true,
            Some(1) => self.multi_statements = false,
            _ => return self.send_error(&Error::sql(1047, "08S01", "Unknown COM_SET_OPTION value")).await,
        }
        let mut b = BytesMut::new();
        if self.deprecate_eof() {
            packets::ok(&mut b, packets::EOF_HEADER, 0, 0, self.status(), 0, b"");
        } else {
            packets::eof(&mut b, 0, self.status());
        }
        self.out.push(&b);
        self.out.flush().await?;
        Ok(())
    }

    /// Forgets everything a session accumulated (COM_RESET_CONNECTION, COM_CHANGE_USER).
    async fn reset_state(&mut self) {
        self.rollback_pinned().await;
        self.in_tx = false;
        self.autocommit = true;
        self.next_tx = None;
        self.sets.clear();
        self.sets_epoch += 1;
        self.no_backslash = false;
        self.wait_timeout = None;
        self.uid = self.shared.session_uid();
        self.last_insert_id = 0;
        self.found_rows = 0;
        self.row_count = -1;
        self.stmts.clear();
        self.cursors.clear();
        self.isolation = isolation_name(self.rt.config.system.tx_isolation).to_string();
    }

    async fn com_reset_connection(&mut self) -> Result<()> {
        self.reset_state().await;
        self.send_ok(0, 0, b"").await
    }

    async fn com_change_user(&mut self, body: &[u8]) -> Result<()> {
        let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
        let user_name = String::from_utf8_lossy(&body[..end]).into_owned();
        let mut pos = (end + 1).min(body.len());
        let alen = body.get(pos).copied().unwrap_or(0) as usize;
        let answer = body.get(pos + 1..pos + 1 + alen).unwrap_or(&[]).to_vec();
        pos += 1 + alen;
        let rest = body.get(pos..).unwrap_or(&[]);
        let dend = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        let db = String::from_utf8_lossy(&rest[..dend]).into_owned();
        let collation = rest.get(dend + 1..dend + 3).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let cfg = self.rt.config.clone();
        self.reset_state().await;
        let user = cfg.user(&user_name).cloned();
        let verified = user.as_ref().is_some_and(|u| {
            let plugin = if answer.len() == 32 { auth::CACHING_SHA2 } else { auth::NATIVE };
            auth::verify(plugin, &self.nonce, &u.password, &answer)
        });
        let Some(user) = user.filter(|_| verified) else {
            tracing::info!(conn = self.id, user = %user_name, "change user refused");
            self.send_error(&handshake::access_denied(&user_name, &self.peer, !answer.is_empty())).await?;
            return Err(Error::Client(std::io::Error::other("change user failed")));
        };
        let schema = if db.is_empty() { user.default_schema.clone() } else { Some(db) };
        let schema = match schema {
            Some(d) => match handshake::check_schema(&cfg, &user, &self.peer, &d) {
                Ok(s) => Some(s),
                Err(e) => return self.send_error(&e).await,
            },
            None => None,
        };
        tracing::info!(conn = self.id, from = %self.user.name, to = %user.name, "changed user");
        self.user = user;
        self.schema = schema;
        self.ctl.identify(&self.user.name, &self.peer.to_string(), self.schema.as_deref());
        if let Some(c) = collation {
            self.charset = charset_of(c);
            self.client_charset = self.charset.clone();
        }
        self.send_ok(0, 0, b"").await
    }

    async fn com_field_list(&mut self, body: &[u8]) -> Result<()> {
        let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
        let table = String::from_utf8_lossy(&body[..end]).into_owned();
        let r = self.field_list(&table, body).await;
        match r {
            Ok(()) => Ok(()),
            Err(e @ Error::Client(_)) => Err(e),
            Err(e) => self.send_error(&e).await,
        }
    }

    async fn field_list(&mut self, table: &str, body: &[u8]) -> Result<()> {
        let node = self.node_of_table(table)?;
        let mut conns = self.acquire(std::slice::from_ref(&node)).await?;
        let mut cmd = BytesMut::with_capacity(body.len() + 1);
        cmd.put_u8(0x04);
        cmd.extend_from_slice(body);
        let fmt = self.stmt_fmt();
        let res = async {
            let c = &mut conns[0];
            c.send(&cmd).await?;
            loop {
                let p = c.read().await?;
                if p.first() == Some(&packets::ERR_HEADER) {
                    self.out.push(&p);
                    let st = c.status;
                    c.finish(st);
                    return Ok(());
                }
                if packets::is_eof_packet(&p) {
                    let (w, st) = if c.deprecate_eof() {
                        packets::parse_ok(&p).map(|o| (o.warnings, o.status)).unwrap_or((0, 0))
                    } else {
                        packets::parse_eof(&p).unwrap_or((0, 0))
                    };
                    c.finish(st);
                    crate::exec::relay::write_terminator(&mut self.out, &fmt, w, fmt.patch(st));
                    return Ok(());
                }
                self.out.push_stream(&p).await?;
            }
        }
        .await;
        self.release(vec![node], conns, &res).await;
        res?;
        self.out.flush().await?;
        Ok(())
    }
}
