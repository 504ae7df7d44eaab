//! Multi-node execution: the same command on several backend connections at once, replies combined —
//! rows concatenated in node order (no merge needed), or write results checked and counted.

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::relay::{drain, drain_rows, relay_columns, relay_rows, skip_columns, write_terminator};
use super::{ClientFmt, Reply};
use crate::backend::Pooled;
use crate::error::{Error, Result};
use crate::proto::codec::PacketWriter;
use crate::proto::packets::{self, ERR_HEADER, OK_HEADER};

/// Sends each connection its payload: `payloads[i]`, or `payloads[0]` when all share one.
pub(crate) async fn send_all(conns: &mut [Pooled], payloads: &[Bytes]) -> Result<()> {
    for (i, c) in conns.iter_mut().enumerate() {
        match payloads.get(i).or(payloads.first()) {
            Some(p) => c.queue(p),
            None => return Err(Error::unsupported("no statement to send")),
        }
    }
    let flushes = conns.iter_mut().map(|c| async move { c.flush().await });
    for r in futures_util::future::join_all(flushes).await {
        r?;
    }
    Ok(())
}

/// The first packet of every node's reply to a read, when all are result sets; otherwise every reply
/// is drained and the first node's error forwarded to the client: `Err(reply)` to return as it is.
/// `what` names the read in the error for a node that answered OK.
pub(crate) async fn first_packets<W: AsyncWrite + Unpin>(
    conns: &mut [Pooled],
    out: &mut PacketWriter<W>,
    what: &str,
) -> Result<std::result::Result<Vec<Bytes>, Reply>> {
    let mut firsts = Vec::with_capacity(conns.len());
    for c in conns.iter_mut() {
        firsts.push(c.read().await?);
    }
    let Some(i) = firsts.iter().position(|p| p.first() == Some(&ERR_HEADER) || p.first() == Some(&OK_HEADER)) else {
        return Ok(Ok(firsts));
    };
    // an error (or a non-result) on one node: report it, drain the rest
    for (c, p) in conns.iter_mut().zip(&firsts) {
        finish_after_first(c, p).await?;
    }
    let p = &firsts[i];
    if p.first() != Some(&ERR_HEADER) {
        return Err(Error::unsupported(format!("{what} returned no result set")));
    }
    out.push(p);
    Ok(Err(Reply { failed: Some(packets::parse_err(p)), ..Reply::default() }))
}

/// Runs a read on every connection and streams the rows of all of them, node after node.
pub async fn concat<W: AsyncWrite + Unpin>(
    conns: &mut [Pooled],
    payloads: &[Bytes],
    out: &mut PacketWriter<W>,
    fmt: &ClientFmt,
    limit: Option<(u64, u64)>,
) -> Result<Reply> {
    send_all(conns, payloads).await?;
    let mut reply = Reply::default();
    let mut window = limit.map(|(skip, take)| super::limit::Window { skip, take });
    // first packet of every reply: all must be result sets with the same column count
    let firsts = match first_packets(conns, out, "a multi-node read").await? {
        Ok(f) => f,
        Err(failed) => return Ok(failed),
    };
    let mut counts = Vec::with_capacity(conns.len());
    for (c, p) in conns.iter().zip(&firsts) {
        let mut pos = 0;
        counts.push(packets::read_lenenc_int(p, &mut pos).ok_or_else(|| c.malformed("bad column count"))?);
    }
    let n = counts[0] as usize;
    if counts.iter().any(|k| *k != counts[0]) {
        for (j, c) in conns.iter_mut().enumerate() {
            finish_after_first(c, &firsts[j]).await?;
        }
        return Err(Error::unsupported("dataNodes returned different column counts for the same statement"));
    }
    reply.result_set = true;
    out.push(&firsts[0]);
    let (head, rest) = conns.split_at_mut(1);
    relay_columns(&mut head[0], out, fmt, n).await?;
    for c in rest.iter_mut() {
        skip_columns(c, n).await?;
    }
    let mut warnings: u16 = 0;
    let mut last_status = 0u16;
    let mut failed_at = None;
    for (i, c) in conns.iter_mut().enumerate() {
        if failed_at.is_some() {
            drain_rows(c).await?;
            continue;
        }
        let (w, st) = relay_rows(c, out, &mut reply, window.as_mut()).await?;
        match st {
            Some(st) => {
                c.finish(st);
                last_status |= st;
                warnings = warnings.saturating_add(w);
            }
            None => failed_at = Some(i),
        }
    }
    if failed_at.is_none() {
        reply.warnings = warnings;
        let more = crate::proto::StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits();
        write_terminator(out, fmt, warnings, fmt.patch(last_status & !more));
    }
    Ok(reply)
}

/// Completes a reply whose first packet has been read, discarding the rest.
pub(crate) async fn finish_after_first(c: &mut Pooled, first: &[u8]) -> Result<()> {
    match first.first() {
        Some(&OK_HEADER) | Some(&ERR_HEADER) => {
            let st = if first.first() == Some(&OK_HEADER) {
                packets::parse_ok(first).map(|o| o.status).unwrap_or(0)
            } else {
                c.status
            };
            c.finish(st & !crate::proto::StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits());
            if st & crate::proto::StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() != 0
                && first.first() == Some(&OK_HEADER)
            {
                drain(c).await?;
            }
            Ok(())
        }
        _ => {
            let mut pos = 0;
            let n = packets::read_lenenc_int(first, &mut pos).ok_or_else(|| c.malformed("bad column count"))? as usize;
            skip_columns(c, n).await?;
            drain_rows(c).await?;
            Ok(())
        }
    }
}

/// How write counts from several nodes combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Global table: every node holds the same rows; report the first node's counts.
    ReportOne,
    /// Sharded table: each node changed its own rows; sum them.
    Sum,
}

/// Runs a write on every connection. All succeed → one OK; any failure → the first error, naming the
/// nodes where the statement did take effect (there is no cross-node atomicity outside a transaction).
pub async fn write_all<W: AsyncWrite + Unpin>(
    conns: &mut [Pooled],
    nodes: &[std::sync::Arc<str>],
    payloads: &[Bytes],
    counting: Counting,
    out: &mut PacketWriter<W>,
    fmt: &ClientFmt,
) -> Result<Reply> {
    send_all(conns, payloads).await?;
    let mut reply = Reply::default();
    let mut oks = Vec::new();
    let mut first_err: Option<(usize, packets::ErrInfo)> = None;
    let mut matched_changed = Some((0u64, 0u64));
    for (i, c) in conns.iter_mut().enumerate() {
        let p = c.read().await?;
        match p.first() {
            Some(&OK_HEADER) => {
                let ok = packets::parse_ok(&p).ok_or_else(|| c.malformed("bad OK packet"))?;
                let info = String::from_utf8_lossy(packets::ok_info_text(&p)).into_owned();
                matched_changed = match (matched_changed, parse_matched_changed(&info)) {
                    (Some((m, ch)), Some((m2, ch2))) => Some((m + m2, ch + ch2)),
                    _ => None,
                };
                oks.push((i, ok));
                finish_after_first(c, &p).await?;
            }
            Some(&ERR_HEADER) => {
                if first_err.is_none() {
                    first_err = Some((i, packets::parse_err(&p)));
                }
                finish_after_first(c, &p).await?;
            }
            _ => finish_after_first(c, &p).await?,
        }
    }
    if let Some((i, e)) = first_err {
        let applied: Vec<&str> = oks.iter().map(|(j, _)| &*nodes[*j]).collect();
        let msg = if applied.is_empty() {
            e.message.clone()
        } else {
            format!("{} (on dataNode {}; the statement did take effect on {})", e.message, nodes[i], applied.join(", "))
        };
        let mut b = BytesMut::new();
        packets::err(&mut b, e.code, &e.state, &msg);
        out.push(&b);
        reply.failed_at = Some((nodes[i].clone(), e.message.clone()));
        reply.failed = Some(packets::ErrInfo { message: msg, ..e });
        return Ok(reply);
    }
    let Some((_, first)) = oks.first().copied() else {
        return Err(Error::unsupported("a multi-node write returned result sets"));
    };
    let (affected, info) = match counting {
        Counting::ReportOne => (first.affected_rows, None),
        Counting::Sum => (
            oks.iter().map(|(_, o)| o.affected_rows).sum(),
            matched_changed.map(|(m, c)| {
                let w: u16 = oks.iter().map(|(_, o)| o.warnings).fold(0, u16::saturating_add);
                format!("Rows matched: {m}  Changed: {c}  Warnings: {w}")
            }),
        ),
    };
    let warnings = match counting {
        Counting::ReportOne => first.warnings,
        Counting::Sum => oks.iter().map(|(_, o)| o.warnings).fold(0, u16::saturating_add),
    };
    reply.affected_rows = affected;
    // ids a global sequence gave: the first of them, as one server's AUTO_INCREMENT would report
    let last_insert_id =
        fmt.insert_id.filter(|_| oks.iter().all(|(_, o)| o.last_insert_id == 0)).unwrap_or(first.last_insert_id);
    reply.last_insert_id = last_insert_id;
    reply.warnings = warnings;
    let mut b = BytesMut::new();
    packets::ok(
        &mut b,
        OK_HEADER,
        affected,
        last_insert_id,
        fmt.patch(first.status),
        warnings,
        info.as_deref().unwrap_or("").as_bytes(),
    );
    out.push(&b);
    Ok(reply)
}

/// "Rows matched: 3  Changed: 2  Warnings: 0" → (3, 2).
fn parse_matched_changed(info: &str) -> Option<(u64, u64)> {
    let m = info.split("Rows matched:").nth(1)?.split_whitespace().next()?.parse().ok()?;
    let c = info.split("Changed:").nth(1)?.split_whitespace().next()?.parse().ok()?;
    Some((m, c))
}

#[cfg(test)]
mod tests {
    #[test]
    fn update_info_parses() {
        assert_eq!(super::parse_matched_changed("Rows matched: 3  Changed: 2  Warnings: 0"), Some((3, 2)));
        assert_eq!(super::parse_matched_changed(""), None);
    }
}
