//! The manager port (9066): Mycat 1.6's command set over the MySQL protocol. Manager users log in as
//! on the service port; each connection reads commands (`command`) and answers them (`show`, `action`).

pub mod action;
pub mod client;
pub mod command;
pub mod http;
pub mod reload;
pub mod show;

use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

use crate::frontend::handshake::{self, Port};
use crate::frontend::Shared;
use crate::proto::codec::{PacketReader, PacketWriter};
use crate::proto::packets;
use crate::proto::result::{self, Col, Framing};
use crate::proto::{CapabilityFlags, StatusFlags};
use action::Reply;

/// Logs once whether the manager port is restricted to manager users.
pub fn announce(shared: &Shared) {
    let rt = shared.rt();
    if !rt.config.users.iter().any(|u| u.manager) {
        tracing::warn!(
            "no user of server.xml has <property name=\"manager\">true</property>: every user may log in on the manager port (Mycat 1.6's behaviour)"
        );
    }
}

/// Accepts manager connections until the listener fails.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut next_id: u32 = 1;
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let sh = shared.clone();
        let id = next_id;
        next_id = next_id.wrapping_add(1).max(1);
        tokio::spawn(async move { run(stream, peer, id, sh).await });
    }
}

async fn run(stream: TcpStream, peer: SocketAddr, id: u32, shared: Arc<Shared>) {
    let (r, w) = crate::proto::stream::split(stream);
    let rt = shared.rt();
    let mut reader = PacketReader::new(r);
    reader.set_max_packet(rt.config.system.max_packet_size);
    let mut out = PacketWriter::new(w);
    let auth_timeout = std::time::Duration::from_millis(rt.config.system.auth_timeout_ms.max(100));
    drop(rt);
    let login = handshake::login(&mut reader, &mut out, &shared, id, &peer, Port::Manager);
    let login = match tokio::time::timeout(auth_timeout, login).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::info!(peer = %peer, error = %e, "manager login failed");
            return;
        }
        Err(_) => return,
    };
    let framing = Framing {
        deprecate_eof: login.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF),
        extended_metadata: login.extended_metadata,
        status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(),
    };
    tracing::info!(user = %login.user.name, peer = %peer, "manager connection");
    if send_ok(&mut out, framing, 0, "").await.is_err() {
        return;
    }
    loop {
        let (seq, pkt) = match reader.next().await {
            Ok(Some(p)) => p,
            _ => return,
        };
        out.set_seq(seq.wrapping_add(1));
        let r = match pkt.first().copied() {
            Some(0x01) | None => return,
            Some(0x0E) | Some(0x02) => send_ok(&mut out, framing, 0, "").await,
            Some(0x03) => {
                let text = String::from_utf8_lossy(&pkt[1..]).into_owned();
                let reply = match command::parse(&text) {
                    Ok(cmd) => {
                        tracing::info!(user = %login.user.name, command = %text.trim(), "manager command");
                        action::run(&shared, cmd).await
                    }
                    Err(e) => Reply::Err { code: 1064, state: "42000", message: e.0 },
                };
                answer(&mut out, framing, reply).await
            }
            Some(c) => {
                let message = format!("Unsupported command {c:#04x} on the manager port");
                answer(&mut out, framing, Reply::Err { code: 1047, state: "08S01", message }).await
            }
        };
        if r.is_err() {
            return;
        }
    }
}

async fn send_ok<W: tokio::io::AsyncWrite + Unpin>(
    out: &mut PacketWriter<W>,
    f: Framing,
    affected: u64,
    message: &str,
) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    packets::ok(&mut b, packets::OK_HEADER, affected, 0, f.status, 0, message.as_bytes());
    out.push(&b);
    out.flush().await
}

async fn answer<W: tokio::io::AsyncWrite + Unpin>(
    out: &mut PacketWriter<W>,
    f: Framing,
    reply: Reply,
) -> std::io::Result<()> {
    match reply {
        Reply::Table(t) => {
            let cols: Vec<Col<'_>> = t.cols.iter().map(|(n, numeric)| Col { name: n, numeric: *numeric }).collect();
            result::write(out, f, "", &cols, &t.rows).await
        }
        Reply::Ok { affected, message } => send_ok(out, f, affected, &message).await,
        Reply::Err { code, state, message } => {
            let mut b = BytesMut::new();
            packets::err(&mut b, code, state, &message);
            out.push(&b);
            out.flush().await
        }
    }
}
