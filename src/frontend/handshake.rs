//! The login exchange with a client: greeting, capability negotiation, `mysql_native_password` and
//! `caching_sha2_password` (fast path; the proxy knows the password, so the full path is never needed),
//! auth switch for other plugins, user/firewall/schema checks with MySQL's error codes.

use crate::proto::stream::{ConnRead, ConnWrite};
use bytes::{BufMut, BytesMut};
use mysql_common::io::ParseBuf;
use mysql_common::packets::HandshakeResponse;
use std::net::SocketAddr;

use super::Shared;
use crate::config::model::{Config, User};
use crate::error::{Error, Result};
use crate::proto::codec::{PacketReader, PacketWriter};
use crate::proto::packets;
use crate::proto::{auth, CapabilityFlags, StatusFlags};

/// Capabilities shardcat offers clients.
pub const SERVER_CAPS: CapabilityFlags = CapabilityFlags::from_bits_retain(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_FOUND_ROWS.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits()
        | CapabilityFlags::CLIENT_NO_SCHEMA.bits()
        | CapabilityFlags::CLIENT_ODBC.bits()
        | CapabilityFlags::CLIENT_COMPRESS.bits()
        | CapabilityFlags::CLIENT_LOCAL_FILES.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_IGNORE_SPACE.bits()
        | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_INTERACTIVE.bits()
        | CapabilityFlags::CLIENT_IGNORE_SIGPIPE.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_CONNECT_ATTRS.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

/// A logged-in client.
pub struct Login {
    pub user: User,
    pub caps: CapabilityFlags,
    pub schema: Option<String>,
    pub collation: u16,
    pub nonce: [u8; 20],
    /// MariaDB's extended column metadata, offered (in front of MariaDB) and asked for.
    pub extended_metadata: bool,
}

/// Collation id of server.xml's `charset` for the greeting.
fn server_collation(cfg: &Config) -> u8 {
    match cfg.system.charset.to_ascii_lowercase().as_str() {
        "utf8mb4" => 45,
        "latin1" => 8,
        "gbk" => 28,
        "binary" => 63,
        _ => 33,
    }
}

pub fn access_denied(user: &str, peer: &SocketAddr, using_password: bool) -> Error {
    Error::sql(
        1045,
        "28000",
        format!(
            "Access denied for user '{user}'@'{}' (using password: {})",
            peer.ip(),
            if using_password { "YES" } else { "NO" }
        ),
    )
}

/// Checks that `user` may use `schema`: 1049 unknown, 1044 not allowed.
pub fn check_schema(cfg: &Config, user: &User, peer: &SocketAddr, schema: &str) -> Result<String> {
    let Some(s) = cfg.schema(schema) else {
        return Err(Error::sql(1049, "42000", format!("Unknown database '{schema}'")));
    };
    if !user.may_use(&s.name) {
        return Err(Error::sql(
            1044,
            "42000",
            format!("Access denied for user '{}'@'{}' to database '{schema}'", user.name, peer.ip()),
        ));
    }
    Ok(s.name.clone())
}

fn host_matches(pattern: &str, ip: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*') | Some(b'%'), _) => m(&p[1..], s) || (!s.is_empty() && m(p, &s[1..])),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), ip.as_bytes())
}

fn firewall_allows(cfg: &Config, user: &str, peer: &SocketAddr) -> bool {
    let wl = &cfg.firewall.white_hosts;
    if wl.is_empty() {
        return true;
    }
    let ip = peer.ip().to_string();
    wl.iter().any(|(host, users)| {
        let wild = host.contains('*') || host.contains('%');
        host_matches(host, &ip) && (wild || users.is_empty() || users.iter().any(|u| u == user))
    })
}

/// Which port a client logs in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Service,
    /// The manager port: only users with the `manager` property (every user when none has it, as
    /// Mycat 1.6), and no schema.
    Manager,
}

/// Runs the handshake. On failure the error packet has already been sent.
pub async fn login(
    reader: &mut PacketReader<ConnRead>,
    out: &mut PacketWriter<ConnWrite>,
    shared: &Shared,
    conn_id: u32,
    peer: &SocketAddr,
    port: Port,
) -> Result<Login> {
    let cfg = shared.rt().config.clone();
    let nonce = auth::new_nonce();
    let mut g = BytesMut::with_capacity(128);
    g.put_u8(10);
    g.extend_from_slice(shared.server_version.as_bytes());
    g.put_u8(0);
    g.put_u32_le(conn_id);
    g.extend_from_slice(&nonce[..8]);
    g.put_u8(0);
    // in front of MariaDB the greeting is MariaDB's: CLIENT_MYSQL off, MariaDB's extended capabilities
    // in the last 4 filler bytes
    let mariadb = shared.server_version.contains("MariaDB");
    let offered = match &shared.tls {
        Some(_) => SERVER_CAPS | CapabilityFlags::CLIENT_SSL,
        None => SERVER_CAPS,
    };
    let caps_lo = (offered.bits() & 0xFFFF) as u16 & if mariadb { !0x0001 } else { 0xFFFF };
    g.put_u16_le(caps_lo);
    g.put_u8(server_collation(&cfg));
    g.put_u16_le(StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits());
    g.put_u16_le((SERVER_CAPS.bits() >> 16) as u16);
    g.put_u8(21);
    g.put_bytes(0, 6);
    g.put_u32_le(if mariadb { crate::backend::conn::MARIADB_EXTENDED_METADATA } else { 0 });
    g.extend_from_slice(&nonce[8..]);
    g.put_u8(0);
    g.extend_from_slice(auth::NATIVE.as_bytes());
    g.put_u8(0);
    out.set_seq(0);
    out.push(&g);
    out.flush().await?;

    let (mut seq, mut resp) = reader.expect().await?;
    // an SSLRequest (the response's first 32 bytes, CLIENT_SSL set): TLS, then the whole response
    let wants_tls = resp.len() == 32
        && u32::from_le_bytes([resp[0], resp[1], resp[2], resp[3]]) & CapabilityFlags::CLIENT_SSL.bits() != 0;
    if let (true, Some(acceptor)) = (wants_tls, &shared.tls) {
        let (r, head) = reader.swap_inner(ConnRead::Gone);
        let w = out.swap_inner(ConnWrite::Gone);
        let (r, w) = crate::proto::stream::upgrade(r, w, head, acceptor).await?;
        reader.swap_inner(r);
        out.swap_inner(w);
        (seq, resp) = reader.expect().await?;
    }
    out.set_seq(seq.wrapping_add(1));
    let result = authenticate(reader, out, shared, &nonce, &resp, peer, port).await;
    match result {
        Ok(mut login) => {
            // MariaDB clients put their extended capabilities where MySQL has filler (CLIENT_MYSQL off)
            let client_ext = match resp.get(28..32) {
                Some(b) if resp[0] & 0x01 == 0 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                _ => 0,
            };
            login.extended_metadata = mariadb && client_ext & crate::backend::conn::MARIADB_EXTENDED_METADATA != 0;
            Ok(login)
        }
        Err(e) => {
            let (code, state) = e.code_and_state();
            let mut b = BytesMut::new();
            packets::err(&mut b, code, state, &e.to_string());
            out.push(&b);
            let _ = out.flush().await;
            Err(e)
        }
    }
}

async fn authenticate(
    reader: &mut PacketReader<ConnRead>,
    out: &mut PacketWriter<ConnWrite>,
    shared: &Shared,
    nonce: &[u8; 20],
    resp: &[u8],
    peer: &SocketAddr,
    port: Port,
) -> Result<Login> {
    let tls = reader.get_ref().is_tls();
    let rt = shared.rt();
    let cfg = &rt.config;
    if resp.len() >= 4 {
        let caps = u32::from_le_bytes([resp[0], resp[1], resp[2], resp[3]]);
        if caps & CapabilityFlags::CLIENT_SSL.bits() != 0 && resp.len() <= 32 {
            return Err(Error::sql(1043, "08S01", "Bad handshake: TLS was requested but shardcat does not offer it"));
        }
        if caps & CapabilityFlags::CLIENT_PROTOCOL_41.bits() == 0 {
            return Err(Error::sql(1043, "08S01", "Bad handshake: clients older than protocol 4.1 are not supported"));
        }
    }
    let hr: HandshakeResponse<'_> =
        ParseBuf(resp).parse(()).map_err(|e| Error::sql(1043, "08S01", format!("Bad handshake: {e}")))?;
    let user_name = String::from_utf8_lossy(hr.user()).into_owned();
    let caps = hr.capabilities() & SERVER_CAPS;
    let collation = u16::from(hr.collation());
    let db = hr.db_name().map(|d| String::from_utf8_lossy(d).into_owned()).filter(|d| !d.is_empty());
    let plugin = match hr.auth_plugin() {
        Some(p) => String::from_utf8_lossy(p.as_bytes()).into_owned(),
        None => auth::NATIVE.to_string(),
    };
    let answer = hr.scramble_buf().to_vec();
    let Some(user) = cfg.user(&user_name).cloned() else {
        tracing::info!(user = %user_name, peer = %peer, "login refused: unknown user");
        return Err(access_denied(&user_name, peer, !answer.is_empty()));
    };
    if user.require_secure_transport && !tls {
        tracing::info!(user = %user_name, peer = %peer, "login refused: requireSecureTransport and no TLS");
        return Err(access_denied(&user_name, peer, !answer.is_empty()));
    }
    if !firewall_allows(cfg, &user_name, peer) {
        tracing::info!(user = %user_name, peer = %peer, "login refused by the firewall whitehost list");
        return Err(Error::sql(
            1130,
            "HY000",
            format!("Host '{}' is not allowed to connect to this server", peer.ip()),
        ));
    }
    let ok = match plugin.as_str() {
        auth::NATIVE => auth::verify(auth::NATIVE, nonce, &user.password, &answer),
        auth::CACHING_SHA2 => {
            let mut answer = answer.clone();
            if answer.is_empty() && !user.password.is_empty() {
                // the client's plugin saw no challenge (the greeting names mysql_native_password:
                // libmariadb then sends nothing and waits for one): switch to it with the same nonce
                out.push(&auth_switch(auth::CACHING_SHA2, nonce));
                out.flush().await?;
                let (seq, again) = reader.expect().await?;
                out.set_seq(seq.wrapping_add(1));
                answer = again.to_vec();
            }
            let ok = auth::verify(auth::CACHING_SHA2, nonce, &user.password, &answer);
            // as MySQL: the fast path for a password its cache holds (always, while no TLS is offered:
            // the full path would have nothing to run over); otherwise the full authentication — the
            // password itself, over TLS only (no RSA key exchange here)
            let fast = shared.tls.is_none() || shared.sha2_cache.knows(&user_name, &user.password);
            if user.password.is_empty() || (shared.tls.is_none() && !ok) {
                ok
            } else if ok && fast {
                out.push(&[0x01, 0x03]); // fast_auth_success
                true
            } else {
                out.push(&[0x01, 0x04]); // perform_full_authentication
                out.flush().await?;
                let (seq, sent) = reader.expect().await?;
                out.set_seq(seq.wrapping_add(1));
                if !tls {
                    tracing::info!(user = %user_name, peer = %peer, "login refused: caching_sha2_password's full authentication without TLS");
                    return Err(Error::sql(
                        1045,
                        "28000",
                        format!(
                            "Access denied for user '{user_name}'@'{}': caching_sha2_password's full authentication needs TLS (shardcat offers no RSA key exchange)",
                            peer.ip()
                        ),
                    ));
                }
                let given = sent.strip_suffix(&[0]).unwrap_or(&sent);
                let ok = auth::constant_time_eq(given, user.password.as_bytes());
                if ok {
                    shared.sha2_cache.learn(&user_name, &user.password);
                }
                ok
            }
        }
        _ => {
            // switch to mysql_native_password with the same challenge
            out.push(&auth_switch(auth::NATIVE, nonce));
            out.flush().await?;
            let (seq, again) = reader.expect().await?;
            out.set_seq(seq.wrapping_add(1));
            auth::verify(auth::NATIVE, nonce, &user.password, &again)
        }
    };
    let passwordless = cfg.system.non_password_login && user.password.is_empty();
    if !ok && !passwordless {
        tracing::info!(user = %user_name, peer = %peer, "login refused: wrong password");
        return Err(access_denied(&user_name, peer, !answer.is_empty()));
    }
    if port == Port::Manager {
        if !user.manager && cfg.users.iter().any(|u| u.manager) {
            tracing::info!(user = %user_name, peer = %peer, "manager login refused: not a manager user");
            return Err(access_denied(&user_name, peer, !answer.is_empty()));
        }
        return Ok(Login { user, caps, schema: None, collation, nonce: *nonce, extended_metadata: false });
    }
    let schema = match db.as_deref().or(user.default_schema.as_deref()) {
        Some(d) => Some(check_schema(cfg, &user, peer, d)?),
        None => None,
    };
    Ok(Login { user, caps, schema, collation, nonce: *nonce, extended_metadata: false })
}

/// An AuthSwitchRequest to `plugin` with the challenge `nonce`.
fn auth_switch(plugin: &str, nonce: &[u8; 20]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(0xFE);
    b.extend_from_slice(plugin.as_bytes());
    b.put_u8(0);
    b.extend_from_slice(nonce);
    b.put_u8(0);
    b
}

#[cfg(test)]
mod tests {
    use super::host_matches;

    #[test]
    fn whitehost_patterns() {
        assert!(host_matches("127.0.0.*", "127.0.0.1"));
        assert!(host_matches("1*7.0.0.*", "127.0.0.1"));
        assert!(host_matches("127.0.0.1", "127.0.0.1"));
        assert!(!host_matches("10.0.0.*", "127.0.0.1"));
        assert!(host_matches("%", "10.1.2.3"));
    }
}
