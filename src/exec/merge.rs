//! Cross-shard merges: every shard runs the plan's statement; the proxy k-way merges the sorted
//! streams (holding one row per shard), or folds partial aggregates into groups (one row per group),
//! then applies OFFSET/LIMIT and sends only the client's columns. Rows stream as the client reads.

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::aggregate::Aggregator;
use super::cell::{decode_row, encode_binary_row, encode_row, ColumnInfo, Row};
use super::limit::{Admit, Window};
use super::merge_sort::Keys;
use super::relay::{skip_columns, write_terminator};
use super::scatter::send_all;
use super::{ClientFmt, Reply};
use crate::backend::Pooled;
use crate::error::{Error, Result};
use crate::proto::codec::PacketWriter;
use crate::proto::packets::{self, ERR_HEADER};
use crate::route::merge::MergePlan;

/// Reads the next row of a shard's result; `None` at its end (the connection is then clean).
async fn next_row(c: &mut Pooled, n: usize, warnings: &mut u16) -> Result<Option<Row>> {
    let p = c.read().await?;
    if packets::is_eof_packet(&p) {
        let (w, st) = if c.deprecate_eof() {
            packets::parse_ok(&p).map(|o| (o.warnings, o.status)).ok_or_else(|| c.malformed("bad terminator"))?
        } else {
            packets::parse_eof(&p).ok_or_else(|| c.malformed("bad EOF"))?
        };
        *warnings = warnings.saturating_add(w);
        c.finish(st);
        return Ok(None);
    }
    if p.first() == Some(&ERR_HEADER) {
        let st = c.status;
        c.finish(st);
        let e = packets::parse_err(&p);
        return Err(Error::Sql { code: e.code, state: crate::error::static_state(&e.state), message: e.message });
    }
    decode_row(&p, n).map(Some).ok_or_else(|| c.malformed("bad row"))
}

/// Every shard's first row (the heads of a k-way merge); `live` says which have more.
async fn first_rows(conns: &mut [Pooled], n: usize, warnings: &mut u16, live: &mut [bool]) -> Result<Vec<Option<Row>>> {
    let mut heads = Vec::with_capacity(conns.len());
    for (i, c) in conns.iter_mut().enumerate() {
        let r = next_row(c, n, warnings).await?;
        live[i] = r.is_some();
        heads.push(r);
    }
    Ok(heads)
}

async fn drain_all(conns: &mut [Pooled], live: &[bool], n: usize) {
    let mut w = 0u16;
    for (c, l) in conns.iter_mut().zip(live) {
        if *l {
            while let Ok(Some(_)) = next_row(c, n, &mut w).await {}
        }
    }
}

/// Runs a merge plan on `conns` and streams the merged result to the client.
pub async fn run<W: AsyncWrite + Unpin>(
    conns: &mut [Pooled],
    payloads: &[Bytes],
    plan: &MergePlan,
    out: &mut PacketWriter<W>,
    fmt: &ClientFmt,
    limit_bytes: usize,
) -> Result<Reply> {
    send_all(conns, payloads).await?;
    let mut reply = Reply::default();
    let firsts = match super::scatter::first_packets(conns, out, "a merged read").await? {
        Ok(f) => f,
        Err(failed) => return Ok(failed),
    };
    let mut pos = 0;
    let total =
        packets::read_lenenc_int(&firsts[0], &mut pos).ok_or_else(|| conns[0].malformed("bad column count"))? as usize;
    let visible =
        total.checked_sub(plan.hidden).ok_or_else(|| conns[0].malformed("fewer columns than the merge added"))?;
    // column definitions: the client's from the first shard, the others skipped
    let mut defs = Vec::with_capacity(total);
    for _ in 0..total {
        defs.push(conns[0].read().await?);
    }
    if !conns[0].deprecate_eof() {
        conns[0].read().await?;
    }
    for c in conns.iter_mut().skip(1) {
        skip_columns(c, total).await?;
    }
    let extended = conns[0].extended_metadata;
    let cols: Vec<ColumnInfo> = defs
        .iter()
        .map(|d| {
            ColumnInfo::parse(d, extended).unwrap_or_else(|| ColumnInfo {
                name: String::new(),
                ty: 0xFD,
                flags: 0,
                decimals: 0,
                charset: 63,
            })
        })
        .collect();
    let mut b = BytesMut::with_capacity(16);
    packets::put_lenenc_int(&mut b, visible as u64);
    out.push(&b);
    for d in defs.iter().take(visible) {
        out.push(d);
    }
    if !fmt.deprecate_eof {
        write_terminator(out, fmt, 0, fmt.status);
    }
    reply.result_set = true;
    let mut window = plan.limit.map(|(skip, take)| Window { skip, take });
    let mut warnings = 0u16;
    let mut live = vec![true; conns.len()];
    let keys = Keys { keys: &plan.order, cols: &cols, visible, collations: &plan.collation_of };
    let mut bad_value = false;
    let result: Result<()> = async {
        let mut emit = |row: &Row, out: &mut PacketWriter<W>, reply: &mut Reply| -> bool {
            match super::limit::admit(window.as_mut()) {
                Admit::Skip => return true,
                Admit::Done => return false,
                Admit::Send => {}
            }
            let mut rb = BytesMut::with_capacity(64);
            if fmt.binary_rows {
                if encode_binary_row(&mut rb, row, &cols, visible).is_none() {
                    bad_value = true;
                    return false;
                }
            } else {
                encode_row(&mut rb, row, visible);
            }
            out.push(&rb);
            reply.rows += 1;
            true
        };
        match &plan.group {
            None => {
                // k-way merge: one head row per shard
                let mut heads = first_rows(conns, total, &mut warnings, &mut live).await?;
                while let Some(i) = keys.next(&heads) {
                    let Some(row) = heads[i].take() else { break };
                    if !emit(&row, out, &mut reply) {
                        break;
                    }
                    out.flush_if_large().await?;
                    heads[i] = next_row(&mut conns[i], total, &mut warnings).await?;
                    live[i] = heads[i].is_some();
                }
            }
            Some(group_keys) => {
                let mut agg = Aggregator::new(&plan.aggs, group_keys, &cols, visible, &plan.collation_of, limit_bytes);
                if plan.feed.is_empty() {
                    for (i, c) in conns.iter_mut().enumerate() {
                        while let Some(r) = next_row(c, total, &mut warnings).await? {
                            agg.push(r)?;
                        }
                        live[i] = false;
                    }
                } else {
                    // DISTINCT aggregates: the shards' sorted groups merged into one sorted stream
                    let feed = Keys { keys: &plan.feed, cols: &cols, visible, collations: &plan.collation_of };
                    let mut heads = first_rows(conns, total, &mut warnings, &mut live).await?;
                    while let Some(i) = feed.next(&heads) {
                        let Some(row) = heads[i].take() else { break };
                        agg.push(row)?;
                        heads[i] = next_row(&mut conns[i], total, &mut warnings).await?;
                        live[i] = heads[i].is_some();
                    }
                    if group_keys.is_empty() {
                        // aggregates over no rows are still one row (COUNT 0, SUM NULL): the shards,
                        // grouping by the arguments, sent none; a row of NULLs adds nothing to any
                        agg.push(vec![None; total])?;
                    }
                }
                let cuts = std::mem::take(&mut agg.cuts);
                let mut rows = agg.finish();
                reply.notes = cuts.iter().map(|n| (1260, format!("Row {n} was cut by GROUP_CONCAT()"))).collect();
                if group_keys.is_empty() && rows.is_empty() {
                    return Ok(());
                }
                if let Some(h) = &plan.having {
                    let mut kept = Vec::with_capacity(rows.len());
                    for r in rows {
                        if super::having::passes(h, &r, &cols)? {
                            kept.push(r);
                        }
                    }
                    rows = kept;
                }
                if !plan.order.is_empty() {
                    rows.sort_by(|a, b| keys.cmp(a, b));
                }
                for r in &rows {
                    if !emit(r, out, &mut reply) {
                        break;
                    }
                    out.flush_if_large().await?;
                }
            }
        }
        if bad_value {
            return Err(Error::unsupported("a merged value does not fit its column type in the binary protocol"));
        }
        Ok(())
    }
    .await;
    drain_all(conns, &live, total).await;
    match result {
        Ok(()) => {
            reply.warnings = warnings.saturating_add(u16::try_from(reply.notes.len()).unwrap_or(u16::MAX));
            let status = conns.iter().map(|c| c.status).fold(0, |a, s| a | s);
            let more = crate::proto::StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits();
            write_terminator(out, fmt, reply.warnings, fmt.patch(status & !more));
            Ok(reply)
        }
        Err(e) if e.breaks_backend() => Err(e),
        Err(e) => {
            // the result set has started: end it with the error, as a server would
            let (code, state) = e.code_and_state();
            let mut b = BytesMut::new();
            packets::err(&mut b, code, state, &e.to_string());
            out.push(&b);
            reply.failed = Some(packets::ErrInfo { code, state: state.to_string(), message: e.to_string() });
            Ok(reply)
        }
    }
}
