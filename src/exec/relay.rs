//! Single-node pass-through: forwards one backend response (every result set of it) to the client as
//! raw packets — only sequence ids, session status bits and EOF framing are rewritten, no cell decoding.

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::{ClientFmt, Reply};
use crate::backend::conn::{BackendConn, BackendStmt};
use crate::error::Result;
use crate::proto::codec::PacketWriter;
use crate::proto::packets::{self, ERR_HEADER, OK_HEADER};
use crate::proto::StatusFlags;

const MORE: u16 = StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits();

/// An OK packet for the client: `status` in its status field; of the session-tracking data (the
/// backend negotiated CLIENT_SESSION_TRACK for the proxy), only the changed system variables, and
/// only for a client that negotiated it too (`keep_variables`) — the schema entry names a backend's
/// database and the state-change entry answers the proxy's own tracker.
pub fn patch_ok(p: &[u8], status: u16, keep_variables: bool) -> BytesMut {
    const CHANGED: u16 = StatusFlags::SERVER_SESSION_STATE_CHANGED.bits();
    let mut b = BytesMut::from(p);
    let mut pos = 1;
    if packets::read_lenenc_int(p, &mut pos).is_some()
        && packets::read_lenenc_int(p, &mut pos).is_some()
        && pos + 4 <= b.len()
    {
        let tracked = u16::from_le_bytes([b[pos], b[pos + 1]]) & CHANGED != 0;
        b[pos..pos + 2].copy_from_slice(&(status & !CHANGED).to_le_bytes());
        if tracked {
            let status_at = pos;
            let mut end = pos + 4;
            let info = packets::read_lenenc_str(p, &mut end);
            let variables = if keep_variables { tracked_entries(p, end, 0) } else { Vec::new() };
            match info {
                // an empty info text is left out, as MariaDB does without session tracking
                Some(Some([])) if variables.is_empty() => b.truncate(pos + 4),
                Some(Some(_)) => {
                    b.truncate(end);
                    if !variables.is_empty() {
                        packets::put_lenenc_str(&mut b, &variables);
                        b[status_at..status_at + 2].copy_from_slice(&(status | CHANGED).to_le_bytes());
                    }
                }
                _ => {}
            }
        }
    }
    b
}

/// The session-tracking entries of `kind` of an OK packet whose block starts at `at`, re-encoded.
fn tracked_entries(p: &[u8], mut at: usize, kind: u8) -> Vec<u8> {
    let mut out = BytesMut::new();
    let Some(Some(block)) = packets::read_lenenc_str(p, &mut at) else { return Vec::new() };
    let mut i = 0;
    while i < block.len() {
        let k = block[i];
        i += 1;
        let Some(Some(data)) = packets::read_lenenc_str(block, &mut i) else { break };
        if k == kind {
            out.extend_from_slice(&[k]);
            packets::put_lenenc_str(&mut out, data);
        }
    }
    out.to_vec()
}

/// Writes the end of a row stream in the client's framing.
pub fn write_terminator<W: AsyncWrite + Unpin>(out: &mut PacketWriter<W>, fmt: &ClientFmt, warnings: u16, status: u16) {
    crate::proto::result::terminator(out, fmt.deprecate_eof, warnings, status);
}

/// The (warnings, status) of a backend's end-of-rows packet in the backend's framing.
fn read_terminator(conn: &mut BackendConn, p: &[u8]) -> Result<(u16, u16)> {
    if conn.deprecate_eof() {
        conn.note_tracked(p);
        packets::parse_ok(p).map(|o| (o.warnings, o.status)).ok_or_else(|| conn.malformed("bad OK terminator"))
    } else {
        packets::parse_eof(p).ok_or_else(|| conn.malformed("bad EOF"))
    }
}

/// Forwards `n` column definitions plus the EOF framing between metadata and rows.
pub async fn relay_columns<W: AsyncWrite + Unpin>(
    conn: &mut BackendConn,
    out: &mut PacketWriter<W>,
    fmt: &ClientFmt,
    n: usize,
) -> Result<()> {
    for _ in 0..n {
        let c = conn.read().await?;
        out.push_stream(&c).await?;
    }
    if n == 0 {
        return Ok(());
    }
    if !conn.deprecate_eof() {
        let eof = conn.read().await?;
        if !fmt.deprecate_eof {
            let (w, s) = packets::parse_eof(&eof).ok_or_else(|| conn.malformed("bad EOF"))?;
            let mut b = BytesMut::with_capacity(5);
            packets::eof(&mut b, w, fmt.patch(s));
            out.push(&b);
        }
    } else if !fmt.deprecate_eof {
        write_terminator(out, fmt, 0, fmt.status);
    }
    Ok(())
}

/// Reads and discards `n` column definitions and their EOF framing.
pub async fn skip_columns(conn: &mut BackendConn, n: usize) -> Result<()> {
    for _ in 0..n {
        conn.read().await?;
    }
    if n > 0 && !conn.deprecate_eof() {
        conn.read().await?;
    }
    Ok(())
}

/// Forwards a complete response to a command already sent on `conn`.
pub async fn relay<W: AsyncWrite + Unpin>(
    conn: &mut BackendConn,
    out: &mut PacketWriter<W>,
    fmt: &ClientFmt,
) -> Result<Reply> {
    relay_from(conn, None, out, fmt).await
}

/// `relay`, the response's first packet already read (`first`).
pub async fn relay_from<W: AsyncWrite + Unpin>(
    conn: &mut BackendConn,
    mut first: Option<Bytes>,
    out: &mut PacketWriter<W>,
    fmt: &ClientFmt,
) -> Result<Reply> {
    let mut reply = Reply::default();
    loop {
        let first = match first.take() {
            Some(p) => p,
            None => conn.read().await?,
        };
        match first.first() {
            Some(&OK_HEADER) => {
                let mut ok = packets::parse_ok(&first).ok_or_else(|| conn.malformed("bad OK packet"))?;
                // ids a global sequence gave: the OK reports the first, as an AUTO_INCREMENT's would
                let first = match fmt.insert_id {
                    Some(id) if ok.last_insert_id == 0 => {
                        ok.last_insert_id = id;
                        packets::with_insert_id(&first, id)
                    }
                    _ => first,
                };
                reply.affected_rows = ok.affected_rows;
                if ok.last_insert_id != 0 {
                    reply.last_insert_id = ok.last_insert_id;
                }
                reply.warnings = ok.warnings;
                conn.note_tracked(&first);
                out.push(&patch_ok(&first, fmt.patch(ok.status), fmt.session_track));
                conn.finish(ok.status);
                if ok.status & MORE == 0 {
                    return Ok(reply);
                }
            }
            Some(&ERR_HEADER) => {
                out.push(&first);
                reply.failed = Some(packets::parse_err(&first));
                let st = conn.status & !MORE;
                conn.finish(st);
                return Ok(reply);
            }
            _ => {
                let mut pos = 0;
                let n = packets::read_lenenc_int(&first, &mut pos).ok_or_else(|| conn.malformed("bad column count"))?
                    as usize;
                reply.result_set = true;
                out.push(&first);
                relay_columns(conn, out, fmt, n).await?;
                let (warnings, status) = relay_rows(conn, out, &mut reply, None).await?;
                let Some(status) = status else { return Ok(reply) };
                reply.warnings = warnings;
                write_terminator(out, fmt, warnings, fmt.patch(status));
                conn.finish(status);
                if status & MORE == 0 {
                    return Ok(reply);
                }
            }
        }
    }
}

/// Forwards rows up to the terminator (those `window` lets through): Ok((warnings, Some(status))), or
/// (_, None) after forwarding an error that ended the stream.
pub async fn relay_rows<W: AsyncWrite + Unpin>(
    conn: &mut BackendConn,
    out: &mut PacketWriter<W>,
    reply: &mut Reply,
    mut window: Option<&mut super::limit::Window>,
) -> Result<(u16, Option<u16>)> {
    loop {
        let p = conn.read().await?;
        if packets::is_eof_packet(&p) {
            let (w, s) = read_terminator(conn, &p)?;
            return Ok((w, Some(s)));
        }
        if p.first() == Some(&ERR_HEADER) {
            out.push(&p);
            reply.failed = Some(packets::parse_err(&p));
            let st = conn.status & !MORE;
            conn.finish(st);
            return Ok((0, None));
        }
        match super::limit::admit(window.as_deref_mut()) {
            super::limit::Admit::Send => {}
            // skipped, or past the limit: keep reading to the end so the connection stays clean
            super::limit::Admit::Skip | super::limit::Admit::Done => continue,
        }
        reply.rows += 1;
        out.push_stream(&p).await?;
    }
}

/// Reads a response to its end without forwarding it (keeps the connection reusable).
pub async fn drain(conn: &mut BackendConn) -> Result<()> {
    loop {
        let first = conn.read().await?;
        match first.first() {
            Some(&OK_HEADER) => {
                let st = packets::parse_ok(&first).map(|o| o.status).unwrap_or(0);
                conn.finish(st);
                if st & MORE == 0 {
                    return Ok(());
                }
            }
            Some(&ERR_HEADER) => {
                let st = conn.status & !MORE;
                conn.finish(st);
                return Ok(());
            }
            _ => {
                let mut pos = 0;
                let n = packets::read_lenenc_int(&first, &mut pos).ok_or_else(|| conn.malformed("bad column count"))?
                    as usize;
                skip_columns(conn, n).await?;
                let st = drain_rows(conn).await?;
                if st & MORE == 0 {
                    return Ok(());
                }
            }
        }
    }
}

/// Discards rows up to the terminator; returns its status.
pub async fn drain_rows(conn: &mut BackendConn) -> Result<u16> {
    loop {
        let p = conn.read().await?;
        if packets::is_eof_packet(&p) {
            let (_, s) = read_terminator(conn, &p)?;
            conn.finish(s);
            return Ok(s);
        }
        if p.first() == Some(&ERR_HEADER) {
            let st = conn.status & !MORE;
            conn.finish(st);
            return Ok(st);
        }
    }
}

/// The fixed part of a COM_STMT_PREPARE OK.
#[derive(Debug, Clone, Copy)]
pub struct PrepareOk {
    pub stmt_id: u32,
    pub columns: u16,
    pub params: u16,
    pub warnings: u16,
}

fn parse_prepare_ok(conn: &BackendConn, p: &[u8]) -> Result<PrepareOk> {
    if p.len() < 12 {
        return Err(conn.malformed("short COM_STMT_PREPARE reply"));
    }
    Ok(PrepareOk {
        stmt_id: u32::from_le_bytes([p[1], p[2], p[3], p[4]]),
        columns: u16::from_le_bytes([p[5], p[6]]),
        params: u16::from_le_bytes([p[7], p[8]]),
        warnings: u16::from_le_bytes([p[10], p[11]]),
    })
}

/// Prepares `sql` on `conn`. With `out`, the reply is forwarded to the client carrying `client_id`;
/// without, it is read silently. `Ok(Err(err))` when the server refused the statement.
/// `sql` is the statement's text in the connection's character set.
pub async fn prepare<W: AsyncWrite + Unpin>(
    conn: &mut BackendConn,
    sql: &[u8],
    mut out: Option<(&mut PacketWriter<W>, &ClientFmt, u32)>,
) -> Result<std::result::Result<BackendStmt, packets::ErrInfo>> {
    let mut cmd = Vec::with_capacity(sql.len() + 1);
    cmd.push(0x16);
    cmd.extend_from_slice(sql);
    conn.send(&cmd).await?;
    let first: Bytes = conn.read().await?;
    if first.first() == Some(&ERR_HEADER) {
        let st = conn.status;
        conn.finish(st);
        if let Some((w, _, _)) = out.as_mut() {
            w.push(&first);
        }
        return Ok(Err(packets::parse_err(&first)));
    }
    let ok = parse_prepare_ok(conn, &first)?;
    if let Some((w, _, client_id)) = out.as_mut() {
        let mut b = BytesMut::from(&first[..]);
        b[1..5].copy_from_slice(&client_id.to_le_bytes());
        w.push(&b);
    }
    for n in [ok.params as usize, ok.columns as usize] {
        match out.as_mut() {
            Some((w, fmt, _)) => relay_columns(conn, w, fmt, n).await?,
            None => skip_columns(conn, n).await?,
        }
    }
    let st = conn.status;
    conn.finish(st);
    Ok(Ok(BackendStmt { id: ok.stmt_id, params: ok.params, columns: ok.columns, used: 0 }))
}

#[cfg(test)]
mod tests {
    use super::patch_ok;

    #[test]
    fn ok_packets_lose_the_proxys_session_tracking_data() {
        // OK, 0 rows, id 0, status SESSION_STATE_CHANGED|AUTOCOMMIT, 0 warnings, "" info, state-change "1"
        let tracked = [0x00, 0, 0, 0x02, 0x40, 0, 0, 0x00, 0x03, 0x02, 0x01, b'1'];
        assert_eq!(&patch_ok(&tracked, 0x0002, false)[..], &[0x00, 0, 0, 0x02, 0x00, 0, 0][..]);
        assert_eq!(&patch_ok(&tracked, 0x0002, true)[..], &[0x00, 0, 0, 0x02, 0x00, 0, 0][..], "no variables");
        // SET NAMES latin1 as MariaDB answers it: the client that tracks keeps the variables
        let mut names = vec![0x00, 0, 0, 0x02, 0x40, 0, 0, 0x00];
        let block: &[u8] = b"\x00\x1c\x14character_set_client\x06latin1\x02\x011\x01\x05\x04test";
        names.push(block.len() as u8);
        names.extend_from_slice(block);
        let kept = patch_ok(&names, 0x0002, true);
        let mut want = vec![0x00, 0, 0, 0x02, 0x40, 0, 0, 0x00];
        want.push(30);
        want.extend_from_slice(b"\x00\x1c\x14character_set_client\x06latin1");
        assert_eq!(&kept[..], &want[..]);
        let mut with_info = vec![0x00, 1, 0, 0x02, 0x40, 0, 0, 4];
        with_info.extend_from_slice(b"info");
        with_info.extend_from_slice(&[0x03, 0x02, 0x01, b'1']);
        let mut want = vec![0x00, 1, 0, 0x03, 0x00, 0, 0, 4];
        want.extend_from_slice(b"info");
        assert_eq!(&patch_ok(&with_info, 0x0003, false)[..], &want[..]);
        // without tracking data, only the status changes
        let plain = [0x00, 0, 0, 0x02, 0x00, 0, 0];
        assert_eq!(&patch_ok(&plain, 0x0003, true)[..], &[0x00, 0, 0, 0x03, 0x00, 0, 0][..]);
    }
}
