//! A bare-bones MySQL client on raw packets, for what real drivers cannot do on purpose: pipelining,
//! unknown commands, choosing the auth plugin.
#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use shardcat::proto::codec::{PacketReader, PacketWriter};
use shardcat::proto::{auth, packets, CapabilityFlags};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub struct Raw {
    pub r: PacketReader<OwnedReadHalf>,
    pub w: PacketWriter<OwnedWriteHalf>,
    pub caps: u32,
}

/// Logs in with `plugin` (`mysql_native_password` or `caching_sha2_password`). Returns the client and
/// the packets received after the handshake response up to OK/ERR.
pub async fn login(port: u16, user: &str, pass: &str, db: Option<&str>, plugin: &str) -> (Raw, Vec<Bytes>) {
    login_with(port, user, pass, db, plugin, true).await
}

/// `login`, choosing whether the client speaks CLIENT_DEPRECATE_EOF.
pub async fn login_with(
    port: u16,
    user: &str,
    pass: &str,
    db: Option<&str>,
    plugin: &str,
    deprecate_eof: bool,
) -> (Raw, Vec<Bytes>) {
    login_ext(port, user, pass, db, plugin, deprecate_eof, None, 0).await
}

/// `login_with`; `Some(ext)` logs in as a MariaDB client (CLIENT_MYSQL off) asking for MariaDB's
/// extended capabilities `ext`; `extra_caps` are more capability bits (CLIENT_SESSION_TRACK, …).
#[allow(clippy::too_many_arguments)]
pub async fn login_ext(
    port: u16,
    user: &str,
    pass: &str,
    db: Option<&str>,
    plugin: &str,
    deprecate_eof: bool,
    mariadb_ext: Option<u32>,
    extra_caps: u32,
) -> (Raw, Vec<Bytes>) {
    let s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let (r, w) = s.into_split();
    let mut r = PacketReader::new(r);
    let mut w = PacketWriter::new(w);
    let (_, hs) = r.expect().await.expect("greeting");
    // greeting: protocol, version\0, id(4), scramble1(8), 0, caps_lo(2), charset, status(2), caps_hi(2), len, 10 zeros, scramble2
    let vend = 1 + hs[1..].iter().position(|b| *b == 0).unwrap();
    let mut nonce = hs[vend + 5..vend + 13].to_vec();
    let p2 = vend + 13 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    nonce.extend_from_slice(&hs[p2..p2 + 12]);
    let caps = CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | if deprecate_eof { CapabilityFlags::CLIENT_DEPRECATE_EOF.bits() } else { 0 }
        | if db.is_some() { CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits() } else { 0 }
        | if mariadb_ext.is_none() { CapabilityFlags::CLIENT_LONG_PASSWORD.bits() } else { 0 }
        | extra_caps;
    let mut p = BytesMut::new();
    p.put_u32_le(caps);
    p.put_u32_le(1 << 24);
    p.put_u8(45);
    p.put_bytes(0, 19);
    p.put_u32_le(mariadb_ext.unwrap_or(0));
    p.extend_from_slice(user.as_bytes());
    p.put_u8(0);
    let ans = auth::answer(plugin, &nonce, pass).unwrap();
    packets::put_lenenc_str(&mut p, &ans);
    if let Some(d) = db {
        p.extend_from_slice(d.as_bytes());
        p.put_u8(0);
    }
    p.extend_from_slice(plugin.as_bytes());
    p.put_u8(0);
    w.set_seq(1);
    w.push(&p);
    w.flush().await.unwrap();
    let mut got = Vec::new();
    loop {
        let (_, pkt) = r.expect().await.expect("login reply");
        let done = matches!(pkt.first(), Some(0x00) | Some(0xFF));
        got.push(pkt);
        if done {
            break;
        }
    }
    (Raw { r, w, caps }, got)
}

impl Raw {
    pub fn queue_command(&mut self, payload: &[u8]) {
        self.w.set_seq(0);
        self.w.push(payload);
    }

    pub fn queue_query(&mut self, sql: &str) {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.queue_command(&p);
    }

    pub async fn flush(&mut self) {
        self.w.flush().await.unwrap();
    }

    pub fn deprecate_eof(&self) -> bool {
        self.caps & CapabilityFlags::CLIENT_DEPRECATE_EOF.bits() != 0
    }

    /// Reads the packets of one complete reply to a text or binary query, in either EOF framing.
    pub async fn read_reply(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        let (_, first) = self.r.expect().await.expect("reply");
        out.push(first.clone());
        match first.first() {
            Some(0x00) | Some(0xFF) | Some(0xFE) => return out,
            _ => {}
        }
        let mut pos = 0;
        let n = packets::read_lenenc_int(&first, &mut pos).unwrap() as usize;
        for _ in 0..n {
            out.push(self.r.expect().await.unwrap().1);
        }
        if !self.deprecate_eof() {
            out.push(self.r.expect().await.unwrap().1);
        }
        loop {
            let (_, p) = self.r.expect().await.unwrap();
            let end = packets::is_eof_packet(&p) || p.first() == Some(&0xFF);
            out.push(p);
            if end {
                return out;
            }
        }
    }
}
