//! shardcat's own backend connection: TCP to one MariaDB/MySQL server on the shared codec, login with
//! native or caching_sha2 passwords, session-state sync, raw command/response access for the executor.

use bytes::{BufMut, Bytes, BytesMut};
use mysql_common::io::ParseBuf;
use mysql_common::packets::HandshakePacket;
use std::collections::HashMap;

/// Hashing for maps keyed by statement text looked up on every EXECUTE (std's SipHash showed in profiles).
type FastHash = foldhash::fast::RandomState;
use crate::proto::stream::{ConnRead, ConnWrite};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::proto::codec::{PacketReader, PacketWriter};
use crate::proto::packets;
use crate::proto::{auth, CapabilityFlags, StatusFlags};

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: String,
    pub user: String,
    pub password: String,
    pub data_host: String,
    pub host_name: String,
    /// The pool's maxCon: the statements each connection may keep prepared are the server's
    /// `max_prepared_stmt_count` shared among that many connections.
    pub max_con: u32,
    /// TLS to this host (`ssl="true"`, `sslCa`), or why its connector could not be built.
    pub tls: Option<Arc<std::result::Result<crate::proto::stream::Connector, String>>>,
}

/// What a client session wants a borrowed connection to look like.
pub struct SessionSync<'a> {
    pub session_id: u64,
    /// `SET NAMES` argument, e.g. `utf8mb4` or `utf8mb4 COLLATE utf8mb4_bin`.
    pub charset: &'a str,
    pub autocommit: bool,
    /// `tx_isolation` value, e.g. `REPEATABLE-READ`.
    pub isolation: &'a str,
    /// Other session `SET` statements, in the order the client ran them.
    pub sets: &'a [Arc<str>],
    /// Changes when `sets` changed other than by appending (then it is replayed from its start).
    pub sets_epoch: u64,
}

/// The client capabilities a backend connection must share with the client it serves, because they
/// change what the server sends: affected-row counting and the EOF framing of result sets.
/// An XA branch a connection is in: its XID as XA statements write it, and whether a statement
/// that may write ran in it (a branch that only read ends in one phase, never prepared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XaBranch {
    pub xid: String,
    pub wrote: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Variant {
    pub found_rows: bool,
    pub deprecate_eof: bool,
    /// MariaDB's extended column metadata (MARIADB_CLIENT_EXTENDED_METADATA: JSON, UUID, INET
    /// columns say what they are): column definitions carry one more field.
    pub extended_metadata: bool,
}

/// MARIADB_CLIENT_EXTENDED_METADATA, in MariaDB's extended capabilities (the 4 bytes a MariaDB
/// greeting and handshake response carry where MySQL has filler, when CLIENT_MYSQL is not set).
pub const MARIADB_EXTENDED_METADATA: u32 = 1 << 3;

/// MariaDB's extended capabilities in a server greeting (0 for MySQL servers).
pub fn greeting_extended_caps(hs: &[u8]) -> u32 {
    // protocol, version\0, id(4), scramble(8), 0, caps_lo(2), charset, status(2), caps_hi(2), len, filler(6), ext(4)
    let Some(vend) = hs.get(1..).and_then(|b| b.iter().position(|c| *c == 0)) else { return 0 };
    let caps_lo = 1 + vend + 1 + 4 + 8 + 1;
    let Some(lo) = hs.get(caps_lo..caps_lo + 2) else { return 0 };
    if lo[0] & 0x01 != 0 {
        return 0; // CLIENT_MYSQL: a MySQL server
    }
    let ext = caps_lo + 2 + 1 + 2 + 2 + 1 + 6;
    hs.get(ext..ext + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0)
}

/// A server-side prepared statement on this connection.
#[derive(Debug, Clone)]
pub struct BackendStmt {
    pub id: u32,
    pub params: u16,
    pub columns: u16,
    /// When it was last used (the connection's use counter): the least recently used is closed first.
    pub used: u64,
}

/// Most statements one backend connection keeps prepared.
const MAX_STMTS_PER_CONN: usize = 256;

pub struct BackendConn {
    reader: PacketReader<ConnRead>,
    writer: PacketWriter<ConnWrite>,
    pub endpoint: Arc<Endpoint>,
    pub thread_id: u32,
    /// The server version of the handshake (MariaDB: `5.5.5-10.11.x-MariaDB…`).
    pub server_version: String,
    pub caps: CapabilityFlags,
    pub variant: Variant,
    /// Column definitions carry MariaDB's extended metadata.
    pub extended_metadata: bool,
    db: Option<String>,
    charset: String,
    autocommit: bool,
    isolation: Option<String>,
    sets_owner: u64,
    sets_epoch: u64,
    sets_applied: usize,
    /// Holds session state beyond what `sync` tracks; reset before another session uses it.
    dirty: bool,
    /// A client statement left state here that cannot be replayed elsewhere (the server said so through
    /// session tracking, or the statement's text did): the connection stays with its session.
    state: bool,
    /// Status flags of the last response.
    pub status: u16,
    /// False while a response is only partly read: such a connection is never reused.
    pub clean: bool,
    pub last_used: Instant,
    /// Prepared statements by the database they were prepared in, then by text: a statement keeps
    /// resolving table names in the database that was current when it was prepared.
    stmts: HashMap<Arc<str>, HashMap<Arc<str>, BackendStmt, FastHash>, FastHash>,
    stmt_count: usize,
    /// How many statements this connection may keep prepared (see `Endpoint::max_con`).
    stmt_cap: usize,
    stmt_tick: u64,
    /// Column names of the last result read by `query_named`.
    last_names: Vec<String>,
    /// Replies of statements queued with `queue_ahead`, read (and dropped when OK) before the next one.
    ahead: u8,
    /// System variables a client statement changed, as the server's session tracking reported them
    /// (the session adopts them into its replayable state).
    tracked: Vec<(String, String)>,
    /// The XA branch this connection is in (XA START sent, its end not yet done).
    pub xa: Option<XaBranch>,
    /// A duplicate of the socket of a TLS connection (`closed_while_idle` peeks at it).
    probe: Option<std::net::TcpStream>,
    /// When it was opened, and its local port (the manager port's `show @@backend`).
    pub opened: Instant,
    pub local_port: u16,
}

const BASE_CAPS: CapabilityFlags = CapabilityFlags::from_bits_retain(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_LOCAL_FILES.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

/// SERVER_SESSION_STATE_CHANGED: the server's session trackers saw a change during the command.
const STATE_CHANGED: u16 = StatusFlags::SERVER_SESSION_STATE_CHANGED.bits();

/// Asks the server to report, in the status flags of each reply, every change of session state
/// (user variables, temporary tables, SQL prepared statements, schema, system variables).
const TRACKING: &str = "SET session_track_state_change = ON, session_track_schema = ON";

impl BackendConn {
    pub async fn connect(endpoint: Arc<Endpoint>, variant: Variant, timeout: Duration) -> Result<Self> {
        match tokio::time::timeout(timeout, Self::connect_inner(endpoint.clone(), variant)).await {
            Ok(r) => r,
            Err(_) => Err(connect_err(&endpoint, "timed out")),
        }
    }

    async fn connect_inner(ep: Arc<Endpoint>, variant: Variant) -> Result<Self> {
        let stream = TcpStream::connect(ep.addr.as_str()).await.map_err(|e| connect_err(&ep, e))?;
        let _ = stream.set_nodelay(true);
        let local_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
        // under TLS the socket is out of reach: a duplicate of it tells whether the idle server closed it
        let probe = if ep.tls.is_some() {
            use std::os::fd::AsFd;
            stream.as_fd().try_clone_to_owned().ok().map(std::net::TcpStream::from)
        } else {
            None
        };
        let (r, w) = crate::proto::stream::split(stream);
        let mut reader = PacketReader::new(r);
        let mut writer = PacketWriter::new(w);
        let (mut seq, hs) = reader.expect().await.map_err(|e| connect_err(&ep, e))?;
        if hs.first() == Some(&packets::ERR_HEADER) {
            return Err(connect_err(&ep, packets::parse_err(&hs).message));
        }
        let extended_metadata =
            variant.extended_metadata && greeting_extended_caps(&hs) & MARIADB_EXTENDED_METADATA != 0;
        let hs: HandshakePacket<'_> =
            ParseBuf(&hs).parse(()).map_err(|e| connect_err(&ep, format!("bad handshake: {e}")))?;
        let server_caps = hs.capabilities();
        let server_version = String::from_utf8_lossy(hs.server_version_ref()).into_owned();
        let mut caps = BASE_CAPS & server_caps;
        caps.insert(CapabilityFlags::CLIENT_PROTOCOL_41);
        if variant.found_rows {
            caps.insert(CapabilityFlags::CLIENT_FOUND_ROWS);
        }
        if !variant.deprecate_eof {
            caps.remove(CapabilityFlags::CLIENT_DEPRECATE_EOF);
        }
        if extended_metadata {
            caps.remove(CapabilityFlags::CLIENT_LONG_PASSWORD); // CLIENT_MYSQL off: MariaDB capabilities follow
        }
        if let Some(tls) = &ep.tls {
            // SSLRequest (the response's first 32 bytes), then TLS, then the response over it
            let connector = tls.as_ref().as_ref().map_err(|e| connect_err(&ep, e))?;
            if !server_caps.contains(CapabilityFlags::CLIENT_SSL) {
                return Err(connect_err(
                    &ep,
                    "ssl=\"true\", but the server offers no TLS (its ssl_cert and ssl_key are not set)",
                ));
            }
            caps.insert(CapabilityFlags::CLIENT_SSL);
            let p = response_head(caps, extended_metadata, 32);
            seq = seq.wrapping_add(1);
            writer.set_seq(seq);
            writer.push(&p);
            writer.flush().await.map_err(|e| connect_err(&ep, e))?;
            let (r, head) = reader.swap_inner(ConnRead::Gone);
            let w = writer.swap_inner(ConnWrite::Gone);
            if !head.is_empty() {
                return Err(connect_err(&ep, "the server sent more than its greeting before TLS"));
            }
            let (r, w) = crate::proto::stream::connect(r, w, connector)
                .await
                .map_err(|e| connect_err(&ep, format!("TLS: {e}")))?;
            reader.swap_inner(r);
            writer.swap_inner(w);
        }
        let plugin = hs.auth_plugin_name_str().map(|s| s.into_owned()).unwrap_or_else(|| auth::NATIVE.to_string());
        let plugin = if plugin == auth::CACHING_SHA2 { plugin } else { auth::NATIVE.to_string() };
        let answer = auth::answer(&plugin, &hs.nonce(), &ep.password).unwrap_or_default();
        let mut p = response_head(caps, extended_metadata, 128);
        p.extend_from_slice(ep.user.as_bytes());
        p.put_u8(0);
        packets::put_lenenc_str(&mut p, &answer);
        p.extend_from_slice(plugin.as_bytes());
        p.put_u8(0);
        writer.set_seq(seq.wrapping_add(1));
        writer.push(&p);
        writer.flush().await.map_err(|e| connect_err(&ep, e))?;
        let thread_id = hs.connection_id();
        let status = loop {
            let (seq, pkt) = reader.expect().await.map_err(|e| connect_err(&ep, e))?;
            match pkt.first() {
                Some(0x00) => break packets::parse_ok(&pkt).map(|o| o.status).unwrap_or(2),
                Some(0xFF) => return Err(connect_err(&ep, packets::parse_err(&pkt).message)),
                Some(0xFE) => {
                    // auth switch: plugin name \0 data
                    let body = &pkt[1..];
                    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
                    let plugin = String::from_utf8_lossy(&body[..end]).into_owned();
                    let data = body.get(end + 1..).unwrap_or(&[]);
                    let nonce = data.strip_suffix(&[0]).unwrap_or(data);
                    let ans = auth::answer(&plugin, nonce, &ep.password).ok_or_else(|| {
                        connect_err(&ep, format!("server asks for auth plugin '{plugin}', which shardcat does not speak"))
                    })?;
                    writer.set_seq(seq.wrapping_add(1));
                    writer.push(&ans);
                    writer.flush().await.map_err(|e| connect_err(&ep, e))?;
                }
                Some(0x01) => match pkt.get(1) {
                    Some(0x03) => continue, // caching_sha2 fast auth succeeded; OK follows
                    Some(0x04) if ep.tls.is_some() => {
                        // caching_sha2 full authentication: over TLS the password itself
                        let mut pw = ep.password.as_bytes().to_vec();
                        pw.push(0);
                        writer.set_seq(seq.wrapping_add(1));
                        writer.push(&pw);
                        writer.flush().await.map_err(|e| connect_err(&ep, e))?;
                    }
                    _ => {
                        return Err(connect_err(
                            &ep,
                            "caching_sha2_password full authentication needs TLS or RSA; give the backend user mysql_native_password or log in once so the server caches it",
                        ))
                    }
                },
                _ => return Err(connect_err(&ep, "unexpected packet during login")),
            }
        };
        let mut conn = BackendConn {
            reader,
            writer,
            endpoint: ep,
            thread_id,
            server_version,
            caps,
            variant,
            extended_metadata,
            db: None,
            charset: "utf8mb4".into(),
            autocommit: status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() != 0,
            isolation: None,
            sets_owner: 0,
            sets_epoch: 0,
            sets_applied: 0,
            dirty: false,
            state: false,
            status,
            clean: true,
            last_used: Instant::now(),
            stmts: HashMap::default(),
            stmt_count: 0,
            stmt_cap: MAX_STMTS_PER_CONN,
            stmt_tick: 0,
            last_names: Vec::new(),
            ahead: 0,
            tracked: Vec::new(),
            xa: None,
            probe,
            opened: Instant::now(),
            local_port,
        };
        // the trackers on, and the server's max_prepared_stmt_count, in one round trip: connections ×
        // statements stay under it (a quarter of it left to everyone else)
        let setup = if conn.caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
            format!("{TRACKING}; SELECT @@global.max_prepared_stmt_count")
        } else {
            "SELECT @@global.max_prepared_stmt_count".to_string()
        };
        // without its trackers a connection could not tell its client's state: no such connection
        let rows = conn.query_rows(&setup).await?;
        let server_max = rows
            .first()
            .and_then(|r| r.first())
            .and_then(|c| c.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok());
        if let Some(m) = server_max {
            conn.stmt_cap = (m * 3 / 4 / conn.endpoint.max_con.max(1) as usize).clamp(1, MAX_STMTS_PER_CONN);
        }
        Ok(conn)
    }

    /// Turns on the session trackers (after login, and after every reset, which turns them off).
    async fn enable_tracking(&mut self) -> Result<()> {
        if self.caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
            self.exec_simple(TRACKING).await?;
        }
        Ok(())
    }

    /// Records what a relayed OK packet reports about system variables (see `packets::tracked_variables`).
    pub fn note_tracked(&mut self, ok: &[u8]) {
        if ok.len() > 7 && packets::parse_ok(ok).is_some_and(|o| o.status & STATE_CHANGED != 0) {
            self.tracked.extend(packets::tracked_variables(ok));
        }
    }

    /// The system variables client statements changed since the last call.
    pub fn take_tracked(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.tracked)
    }

    /// The session adopted `sets[len_before..len_after]` from this connection's own changes: they are
    /// in effect here already.
    pub fn adopt_sets(&mut self, owner: u64, len_before: usize, len_after: usize) {
        if self.sets_owner == owner && self.sets_applied == len_before {
            self.sets_applied = len_after;
        }
    }

    /// The server reported autocommit changed by a client statement.
    pub fn adopt_autocommit(&mut self, on: bool) {
        self.autocommit = on;
    }

    /// Whether a client statement left state here that only this connection has.
    pub fn holds_state(&self) -> bool {
        self.state
    }

    /// Records that the statement about to run leaves such state (known from its text, where the
    /// server's trackers are silent: `SELECT @v := …`, `… INTO @v`, GET_LOCK, HANDLER).
    pub fn mark_state(&mut self) {
        self.state = true;
    }

    /// COM_RESET_CONNECTION: the server forgets everything the session left (transaction, temporary
    /// tables, user variables, named and table locks, prepared statements) and the connection is as new.
    pub async fn reset(&mut self) -> Result<()> {
        self.send(&[0x1F]).await?;
        let p = self.read().await?;
        if p.first() != Some(&packets::OK_HEADER) {
            return Err(self.malformed("COM_RESET_CONNECTION failed"));
        }
        let st = packets::parse_ok(&p).map(|o| o.status).unwrap_or(2);
        self.finish(st);
        self.db = None;
        self.charset = "utf8mb4".into();
        self.autocommit = st & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() != 0;
        self.isolation = None;
        self.stmts.clear();
        self.stmt_count = 0;
        self.sets_owner = 0;
        self.sets_applied = 0;
        self.dirty = false;
        self.xa = None;
        self.enable_tracking().await?;
        self.state = false;
        Ok(())
    }

    /// The statement prepared for `sql` in the current database, if any (marked as just used).
    pub fn stmt(&mut self, sql: &str) -> Option<&BackendStmt> {
        self.stmt_tick += 1;
        let tick = self.stmt_tick;
        let s = self.stmts.get_mut(self.db.as_deref()?)?.get_mut(sql)?;
        s.used = tick;
        Some(s)
    }

    /// Remembers a statement prepared in the current database. Beyond the connection's cap, the
    /// least recently used one is closed (COM_STMT_CLOSE has no reply: it leaves with the next
    /// command); clients never notice, their statements are prepared again when needed.
    pub fn remember_stmt(&mut self, sql: Arc<str>, mut bs: BackendStmt) {
        let Some(db) = self.db.clone() else { return };
        self.stmt_tick += 1;
        bs.used = self.stmt_tick;
        while self.stmt_count >= self.stmt_cap {
            let victim = self
                .stmts
                .iter()
                .flat_map(|(d, m)| m.iter().map(move |(k, v)| (v.used, d, k)))
                .min_by_key(|(used, _, _)| *used)
                .map(|(_, d, k)| (d.clone(), k.clone()));
            let Some((d, k)) = victim else { break };
            if let Some(old) = self.stmts.get_mut(&d).and_then(|m| m.remove(&k)) {
                let mut p = BytesMut::with_capacity(5);
                p.put_u8(0x19);
                p.put_u32_le(old.id);
                self.queue_no_reply(&p);
            }
            self.stmt_count -= 1;
        }
        let per_db = self.stmts.entry(Arc::from(db.as_str())).or_default();
        match per_db.insert(sql, bs) {
            None => self.stmt_count += 1,
            // the same text prepared again (a client's COM_STMT_PREPARE always reaches a backend):
            // the statement it replaces is closed, or the server would keep it until the connection ends
            Some(old) => {
                let mut p = BytesMut::with_capacity(5);
                p.put_u8(0x19);
                p.put_u32_le(old.id);
                self.queue_no_reply(&p);
            }
        }
    }

    pub fn deprecate_eof(&self) -> bool {
        self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// What `show @@backend` lists of it: (schema, charset, autocommit).
    pub fn session_view(&self) -> (String, String, bool) {
        (self.db.clone().unwrap_or_default(), self.charset.clone(), self.autocommit)
    }

    pub fn in_transaction(&self) -> bool {
        self.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0
    }

    fn lost(&self, e: impl std::fmt::Display) -> Error {
        Error::BackendLost {
            addr: self.endpoint.addr.clone(),
            data_host: self.endpoint.data_host.clone(),
            reason: e.to_string(),
        }
    }

    /// Sends one command packet (sequence 0). The response is read with `read`.
    pub async fn send(&mut self, payload: &[u8]) -> Result<()> {
        self.clean = false;
        self.last_used = Instant::now();
        self.writer.set_seq(0);
        self.writer.push(payload);
        self.writer.flush().await.map_err(|e| self.lost(e))
    }

    /// Queues a command packet without flushing (several commands in one write).
    pub fn queue(&mut self, payload: &[u8]) {
        self.clean = false;
        self.writer.set_seq(0);
        self.writer.push(payload);
    }

    /// Queues a packet in the middle of an exchange (the LOCAL INFILE data) with sequence id `seq`.
    pub fn queue_seq(&mut self, payload: &[u8], seq: u8) {
        self.clean = false;
        self.writer.set_seq(seq);
        self.writer.push(payload);
    }

    /// Flushes queued packets once they pass `at` bytes (streams long uploads).
    pub async fn flush_if_large(&mut self) -> Result<()> {
        self.writer.flush_if_large().await.map_err(|e| self.lost(e))
    }

    /// Queues a command that has no reply (COM_STMT_CLOSE); it leaves with the next flush.
    pub fn queue_no_reply(&mut self, payload: &[u8]) {
        self.writer.set_seq(0);
        self.writer.push(payload);
    }

    pub async fn flush(&mut self) -> Result<()> {
        self.writer.flush().await.map_err(|e| self.lost(e))
    }

    /// Queues a text statement expected to answer OK (BEGIN) to go out with the next command, saving
    /// it a round trip: its reply is read first by the next `read`, and an error there fails that read.
    pub fn queue_ahead(&mut self, sql: &str) {
        self.queue(&packets::com_query(sql.as_bytes()));
        self.ahead = self.ahead.saturating_add(1);
    }

    /// Sends a text statement whose reply `read_results`-style readers collect later (several
    /// connections can then wait for their replies at the same time).
    pub async fn send_query(&mut self, sql: &str) -> Result<()> {
        self.send(&packets::com_query(sql.as_bytes())).await
    }

    /// The reply of a statement sent with `send_query`, its rows dropped.
    pub async fn read_reply(&mut self) -> Result<()> {
        self.read_results().await.map(|_| ())
    }

    /// Reads the next response packet (after the replies of statements queued ahead of it).
    pub async fn read(&mut self) -> Result<Bytes> {
        while self.ahead > 0 {
            let p = self.read_packet().await?;
            self.ahead -= 1;
            match p.first() {
                Some(&packets::OK_HEADER) => {}
                Some(&packets::ERR_HEADER) => {
                    // the command after it was sent too: its reply stays unread, the connection unclean
                    self.ahead = 0;
                    self.clean = false;
                    let e = packets::parse_err(&p);
                    return Err(Error::Sql {
                        code: e.code,
                        state: crate::error::static_state(&e.state),
                        message: e.message,
                    });
                }
                _ => return Err(self.malformed("a result set where a queued statement's OK was expected")),
            }
        }
        self.read_packet().await
    }

    async fn read_packet(&mut self) -> Result<Bytes> {
        match self.reader.next().await {
            Ok(Some((_, p))) => Ok(p),
            Ok(None) => Err(self.lost("server closed the connection")),
            Err(e) => Err(self.lost(e)),
        }
    }

    /// Marks the end of a complete response and remembers its status flags; a reported change of
    /// session state marks the connection as holding state (the proxy's own statements restore it).
    pub fn finish(&mut self, status: u16) {
        if status & STATE_CHANGED != 0 {
            self.state = true;
        }
        self.status = status & !STATE_CHANGED;
        self.clean = true;
    }

    /// Runs a statement whose rows (if any) are discarded; returns the final OK (or EOF) facts.
    pub async fn exec_simple(&mut self, sql: &str) -> Result<()> {
        self.query_rows(sql).await.map(|_| ())
    }

    /// Runs a text query and returns every result set's rows decoded as byte cells (small results only:
    /// metadata and control queries).
    pub async fn query_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        Ok(self.query_named(sql).await?.1)
    }

    /// Like `query_rows`, with the column names of the (last) result set.
    /// The proxy's own statements: what they change is the proxy's to track, so they leave the
    /// connection's state mark as it was.
    pub async fn query_named(&mut self, sql: &str) -> Result<(Vec<String>, Vec<Vec<Option<Vec<u8>>>>)> {
        let (state, dirty) = (self.state, self.dirty);
        self.send_query(sql).await?;
        self.last_names.clear();
        let mut out = Vec::new();
        let r = self.read_results().await;
        (self.state, self.dirty) = (state, dirty);
        for (_, rows) in r? {
            out.extend(rows);
        }
        Ok((std::mem::take(&mut self.last_names), out))
    }

    /// Reads every result of a text command: (column count, rows). Errors become `Error::Sql` after the
    /// connection has been left clean.
    async fn read_results(&mut self) -> Result<Vec<(usize, Vec<Vec<Option<Vec<u8>>>>)>> {
        let mut results = Vec::new();
        loop {
            let first = self.read().await?;
            match first.first() {
                Some(&packets::OK_HEADER) => {
                    let ok = packets::parse_ok(&first).ok_or_else(|| self.malformed("bad OK packet"))?;
                    self.finish(ok.status);
                    results.push((0, Vec::new()));
                    if ok.status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() == 0 {
                        return Ok(results);
                    }
                }
                Some(&packets::ERR_HEADER) => {
                    let e = packets::parse_err(&first);
                    self.finish(self.status & !StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits());
                    return Err(Error::Sql {
                        code: e.code,
                        state: crate::error::static_state(&e.state),
                        message: e.message,
                    });
                }
                Some(&packets::LOCAL_INFILE_HEADER) => {
                    // refuse: send an empty file
                    self.writer.push(&[]);
                    self.flush().await?;
                }
                _ => {
                    let mut pos = 0;
                    let n = packets::read_lenenc_int(&first, &mut pos)
                        .ok_or_else(|| self.malformed("bad column count"))? as usize;
                    self.last_names.clear();
                    for _ in 0..n {
                        let def = self.read().await?;
                        let mut pos = 0;
                        let mut name = String::new();
                        for i in 0..5 {
                            match packets::read_lenenc_str(&def, &mut pos) {
                                Some(Some(s)) if i == 4 => name = String::from_utf8_lossy(s).into_owned(),
                                Some(_) => {}
                                None => break,
                            }
                        }
                        self.last_names.push(name);
                    }
                    if !self.deprecate_eof() {
                        self.read().await?;
                    }
                    let mut rows = Vec::new();
                    let status = loop {
                        let p = self.read().await?;
                        if packets::is_eof_packet(&p) {
                            let st = if self.deprecate_eof() {
                                packets::parse_ok(&p).map(|o| o.status)
                            } else {
                                packets::parse_eof(&p).map(|(_, s)| s)
                            };
                            break st.ok_or_else(|| self.malformed("bad EOF"))?;
                        }
                        if p.first() == Some(&packets::ERR_HEADER) {
                            let e = packets::parse_err(&p);
                            self.finish(0);
                            return Err(Error::Sql {
                                code: e.code,
                                state: crate::error::static_state(&e.state),
                                message: e.message,
                            });
                        }
                        let mut pos = 0;
                        let mut row = Vec::with_capacity(n);
                        for _ in 0..n {
                            let cell =
                                packets::read_lenenc_str(&p, &mut pos).ok_or_else(|| self.malformed("bad row"))?;
                            row.push(cell.map(<[u8]>::to_vec));
                        }
                        rows.push(row);
                    };
                    self.finish(status);
                    results.push((n, rows));
                    if status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() == 0 {
                        return Ok(results);
                    }
                }
            }
        }
    }

    pub fn malformed(&self, reason: &str) -> Error {
        Error::BackendProtocol { addr: self.endpoint.addr.clone(), reason: reason.to_string() }
    }

    /// Whether the server closed this idle connection, or sent it something unasked (as it may before
    /// closing): seen without a round trip, from what the socket already holds — a restarted or
    /// killed server's connections are not handed out.
    pub fn closed_while_idle(&self) -> bool {
        if self.reader.buffered() {
            return true;
        }
        let mut b = [0u8; 64];
        let r = match (self.reader.get_ref(), &self.probe) {
            (ConnRead::Tcp(r), _) => r.try_read(&mut b),
            // TLS: the socket underneath, peeked through its duplicate
            (_, Some(p)) => p.peek(&mut b),
            _ => return false,
        };
        !matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    pub async fn ping(&mut self) -> Result<()> {
        self.send(&[0x0E]).await?;
        let p = self.read().await?;
        match p.first() {
            Some(0x00) => {
                let st = packets::parse_ok(&p).map(|o| o.status).unwrap_or(self.status);
                self.finish(st);
                Ok(())
            }
            _ => Err(self.malformed("unexpected reply to COM_PING")),
        }
    }

    /// Brings the connection to the session's state, sending only what differs.
    pub async fn sync(&mut self, db: &str, want: &SessionSync<'_>) -> Result<()> {
        if self.sets_owner != want.session_id {
            if self.dirty || self.state {
                self.reset().await?;
            }
            self.sets_owner = want.session_id;
            self.sets_epoch = want.sets_epoch;
            self.sets_applied = 0;
        }
        if self.sets_epoch != want.sets_epoch || self.sets_applied > want.sets.len() {
            // every value in the list is the variable's last: replaying it all gives the session's state
            self.sets_epoch = want.sets_epoch;
            self.sets_applied = 0;
        }
        let (state, dirty) = (self.state, self.dirty);
        let r = self.sync_state(db, want).await;
        self.state = state;
        self.dirty = dirty || self.sets_applied > 0;
        r
    }

    async fn sync_state(&mut self, db: &str, want: &SessionSync<'_>) -> Result<()> {
        if self.db.as_deref() != Some(db) {
            let mut p = BytesMut::with_capacity(db.len() + 1);
            p.put_u8(0x02);
            p.extend_from_slice(db.as_bytes());
            self.send(&p).await?;
            let r = self.read().await?;
            if r.first() == Some(&packets::ERR_HEADER) {
                self.finish(self.status);
                let e = packets::parse_err(&r);
                return Err(Error::sql(
                    e.code,
                    crate::error::static_state(&e.state),
                    format!("{} (dataNode database on {})", e.message, self.endpoint.addr),
                ));
            }
            let st = packets::parse_ok(&r).map(|o| o.status).unwrap_or(self.status);
            self.finish(st);
            self.db = Some(db.to_string());
        }
        let mut parts: Vec<String> = Vec::new();
        if self.charset != want.charset {
            parts.push(format!("NAMES {}", want.charset));
        }
        if self.autocommit != want.autocommit {
            parts.push(format!("@@session.autocommit={}", u8::from(want.autocommit)));
        }
        if self.isolation.as_deref() != Some(want.isolation) {
            parts.push(format!("@@session.tx_isolation='{}'", want.isolation));
        }
        if !parts.is_empty() {
            self.exec_simple(&format!("SET {}", parts.join(", "))).await?;
            self.charset = want.charset.to_string();
            self.autocommit = want.autocommit;
            self.isolation = Some(want.isolation.to_string());
        }
        while self.sets_applied < want.sets.len() {
            self.dirty = true;
            let s = want.sets[self.sets_applied].clone();
            if let Err(e) = self.exec_simple(&s).await {
                // the session drops the refused SET (and any item of it before the refused one):
                // the next sync replays the session's SETs from the first, so none is skipped
                self.sets_applied = 0;
                return Err(e);
            }
            self.sets_applied += 1;
        }
        Ok(())
    }
}

/// The first 32 bytes of the handshake response — alone, they are the SSLRequest: capabilities, max
/// packet, character set, filler, MariaDB's extended capabilities.
fn response_head(caps: CapabilityFlags, extended_metadata: bool, capacity: usize) -> BytesMut {
    let mut p = BytesMut::with_capacity(capacity);
    p.put_u32_le(caps.bits());
    p.put_u32_le(1 << 30);
    p.put_u8(packets::UTF8MB4_GENERAL_CI as u8);
    p.put_bytes(0, 19);
    p.put_u32_le(if extended_metadata { MARIADB_EXTENDED_METADATA } else { 0 });
    p
}

fn connect_err(ep: &Endpoint, e: impl std::fmt::Display) -> Error {
    Error::Connect { addr: ep.addr.clone(), data_host: ep.data_host.clone(), reason: e.to_string() }
}
