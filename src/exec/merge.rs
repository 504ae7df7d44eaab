//! Cross-shard merges: every shard runs the plan's statement; the proxy k-way merges the sorted
//! streams (holding one row per shard), or folds partial aggregates into groups (one row per group),
//! then applies OFFSET/LIMIT and sends only the client's columns. Rows stream as the client reads.

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::aggregate::Aggregator;
use super::cell::{decode_row, encode_binary_row, encode_row, ColumnInfo, Row};
use super::collation::{Collation, Collations};
use super::learned::Ask;
use super::limit::{Admit, Window};
use super::merge_sort::Keys;
use super::relay::{skip_columns, write_terminator};
use super::scatter::send_all;
use super::{ClientFmt, Reply};
use crate::backend::Pooled;
use crate::error::{Error, Result};
use crate::proto::codec::PacketWriter;
use crate::proto::packets::{self, ERR_HEADER};
use crate::route::merge::{ColRef, MergePlan};

/// Reads the next row of shard `i`'s result (the learner looks at it); `None` at its end (the
/// connection is then clean).
async fn next_row(
    conns: &mut [Pooled],
    i: usize,
    n: usize,
    warnings: &mut u16,
    learner: &mut Learner<'_>,
) -> Result<Option<Row>> {
    let row = read_row(&mut conns[i], n, warnings).await?;
    if let Some(r) = &row {
        learner.observe(i, r);
    }
    Ok(row)
}

async fn read_row(c: &mut Pooled, n: usize, warnings: &mut u16) -> Result<Option<Row>> {
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
async fn first_rows(
    conns: &mut [Pooled],
    n: usize,
    warnings: &mut u16,
    live: &mut [bool],
    learner: &mut Learner<'_>,
) -> Result<Vec<Option<Row>>> {
    let mut heads = Vec::with_capacity(conns.len());
    for (i, l) in live.iter_mut().enumerate().take(conns.len()) {
        let r = next_row(conns, i, n, warnings, learner).await?;
        *l = r.is_some();
        heads.push(r);
    }
    Ok(heads)
}

async fn drain_all(conns: &mut [Pooled], live: &[bool], n: usize) {
    let mut w = 0u16;
    for (c, l) in conns.iter_mut().zip(live) {
        if *l {
            while let Ok(Some(_)) = read_row(c, n, &mut w).await {}
        }
    }
}

/// Runs a merge plan on `conns` (one per node of `nodes`) and streams the merged result to the client.
/// A full run of a plan that has a lean text tells `ask`'s memo what its shards said of the string keys.
#[allow(clippy::too_many_arguments)]
pub async fn run<W: AsyncWrite + Unpin>(
    conns: &mut [Pooled],
    nodes: &[std::sync::Arc<str>],
    payloads: &[Bytes],
    plan: &MergePlan,
    out: &mut PacketWriter<W>,
    fmt: &ClientFmt,
    limit_bytes: usize,
    ask: Option<Ask<'_>>,
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
    let collations = Collations::new(&plan.collation_of, visible, plan.told.as_deref());
    let keys = Keys { keys: &plan.order, cols: &cols, visible, collations: &collations };
    let mut learner = match (&plan.told, &plan.lean_sql, ask) {
        (None, Some(_), Some(_)) => Learner::new(plan, &cols, visible, conns.len()),
        _ => Learner::idle(),
    };
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
            Some(_) if plan.distinct_sorted => {
                // merged by ORDER BY, which names exactly the DISTINCT columns: rows equal under it are
                // equal rows, and neighbours
                let mut last: Option<Row> = None;
                let mut heads = first_rows(conns, total, &mut warnings, &mut live, &mut learner).await?;
                while let Some(i) = keys.next(&heads) {
                    let Some(row) = heads[i].take() else { break };
                    if last.as_ref().is_none_or(|l| keys.cmp(l, &row) != std::cmp::Ordering::Equal) {
                        if !emit(&row, out, &mut reply) {
                            break;
                        }
                        out.flush_if_large().await?;
                        last = Some(row);
                    }
                    heads[i] = next_row(conns, i, total, &mut warnings, &mut learner).await?;
                    live[i] = heads[i].is_some();
                }
            }
            None => {
                // k-way merge: one head row per shard
                let mut heads = first_rows(conns, total, &mut warnings, &mut live, &mut learner).await?;
                while let Some(i) = keys.next(&heads) {
                    let Some(row) = heads[i].take() else { break };
                    if !emit(&row, out, &mut reply) {
                        break;
                    }
                    out.flush_if_large().await?;
                    heads[i] = next_row(conns, i, total, &mut warnings, &mut learner).await?;
                    live[i] = heads[i].is_some();
                }
            }
            Some(group_keys) => {
                let mut agg = Aggregator::new(&plan.aggs, group_keys, &cols, visible, &collations, limit_bytes);
                if plan.feed.is_empty() {
                    for (i, l) in live.iter_mut().enumerate().take(conns.len()) {
                        while let Some(r) = next_row(conns, i, total, &mut warnings, &mut learner).await? {
                            agg.push(r)?;
                        }
                        *l = false;
                    }
                } else {
                    // DISTINCT aggregates: the shards' sorted groups merged into one sorted stream
                    let feed = Keys { keys: &plan.feed, cols: &cols, visible, collations: &collations };
                    let mut heads = first_rows(conns, total, &mut warnings, &mut live, &mut learner).await?;
                    while let Some(i) = feed.next(&heads) {
                        let Some(row) = heads[i].take() else { break };
                        agg.push(row)?;
                        heads[i] = next_row(conns, i, total, &mut warnings, &mut learner).await?;
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
    if let (Ok(()), Some(ask), Some(lean)) = (&result, ask, &plan.lean_sql) {
        learner.tell(ask, lean, nodes);
    }
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

/// What a shard's rows said of one string key.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// Only NULL values so far.
    Open,
    /// No weight beside a value: the proxy compares this collation itself (any, for a numeric key).
    Lean(Option<Collation>),
    /// A weight was sent: the key needs it on every row.
    Full,
}

/// Watches a full run's rows for what each shard says of each string key (`exec::learned`): the
/// collation its COLLATION column names, and whether a WEIGHT_STRING came with a value.
pub struct Learner<'a> {
    /// (hidden weight column, its value column) per string key.
    keys: Vec<(usize, ColRef)>,
    collation_of: &'a [Option<usize>],
    cols: &'a [ColumnInfo],
    visible: usize,
    hidden: usize,
    /// Per shard, per key.
    seen: Vec<Vec<Seen>>,
    /// Keys not yet decided on some shard; nothing is looked at once it is zero.
    open: usize,
}

impl<'a> Learner<'a> {
    fn idle() -> Learner<'a> {
        Learner { keys: Vec::new(), collation_of: &[], cols: &[], visible: 0, hidden: 0, seen: Vec::new(), open: 0 }
    }

    fn new(plan: &'a MergePlan, cols: &'a [ColumnInfo], visible: usize, shards: usize) -> Learner<'a> {
        let keys = plan.weighed();
        // a weight column no key names: nothing would say its text may be left out
        let all = plan.collation_of.iter().enumerate().all(|(j, c)| c.is_none() || keys.iter().any(|(w, _)| *w == j));
        if !all || keys.is_empty() {
            return Learner::idle();
        }
        let open = keys.len() * shards;
        Learner {
            seen: vec![vec![Seen::Open; keys.len()]; shards],
            keys,
            collation_of: &plan.collation_of,
            cols,
            visible,
            hidden: plan.hidden,
            open,
        }
    }

    fn observe(&mut self, shard: usize, row: &Row) {
        if self.open == 0 {
            return;
        }
        let Some(seen) = self.seen.get_mut(shard) else { return };
        for (k, (weight, value)) in self.keys.iter().enumerate() {
            if seen[k] != Seen::Open {
                continue;
            }
            let v = match value {
                ColRef::Visible(i) => *i,
                ColRef::Hidden(j) => self.visible + j,
            };
            let cell = |i: usize| row.get(i).and_then(|c| c.as_deref());
            let named = self
                .collation_of
                .get(*weight)
                .copied()
                .flatten()
                .and_then(|c| cell(self.visible + c))
                .and_then(Collation::by_name);
            let now = if self.cols.get(v).is_some_and(ColumnInfo::is_numeric) {
                Seen::Lean(named)
            } else if cell(self.visible + weight).is_some() {
                Seen::Full
            } else if cell(v).is_some() {
                named.map_or(Seen::Full, |c| Seen::Lean(Some(c)))
            } else {
                Seen::Open
            };
            if now != Seen::Open {
                seen[k] = now;
                self.open -= 1;
            }
        }
    }

    /// Tells the memo what each shard whose every key was decided lean said.
    fn tell(&self, ask: Ask<'_>, lean: &str, nodes: &[std::sync::Arc<str>]) {
        for (seen, node) in self.seen.iter().zip(nodes) {
            let mut told = vec![None; self.hidden];
            let mut lean_all = true;
            for (s, (weight, _)) in seen.iter().zip(&self.keys) {
                match s {
                    Seen::Lean(c) => {
                        if let Some(t) = told.get_mut(*weight) {
                            *t = *c;
                        }
                    }
                    _ => lean_all = false,
                }
            }
            if lean_all {
                ask.learned.learn(lean, node, ask.session, told);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::learned::Learned;
    use crate::route::condition::Binder;
    use sqlparser::ast::Statement;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;
    use std::sync::Arc;

    fn plan(sql: &str) -> MergePlan {
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        let Statement::Query(q) = &stmt else { panic!() };
        crate::route::merge::plan(sql, q, &Binder::new(&stmt, &[])).unwrap()
    }

    fn col(ty: u8) -> ColumnInfo {
        ColumnInfo { name: String::new(), ty, flags: 0, decimals: 0, charset: 45 }
    }

    fn row(cells: &[Option<&str>]) -> Row {
        cells.iter().map(|c| c.map(|s| s.as_bytes().to_vec())).collect()
    }

    /// A shard whose string key came without a weight tells its collation; one that sent a weight,
    /// or only NULLs, or no row, tells nothing — and the statement runs lean only where every node told.
    #[test]
    fn a_full_run_tells_what_each_shard_said() {
        let p = plan("SELECT id, name FROM t ORDER BY name, id");
        assert_eq!(p.collation_of, vec![None, Some(0), None, Some(2)]);
        let cols = [col(0x08), col(0xFD), col(0xFD), col(0xFD), col(0xFD), col(0xFD)];
        let learned = Learned::default();
        let ask = Ask { learned: &learned, session: 1 };
        let nodes: Vec<Arc<str>> = ["dn1", "dn2", "dn3", "dn4"].into_iter().map(Arc::from).collect();
        let mut l = Learner::new(&p, &cols, 2, nodes.len());
        let general = Some("utf8mb4_general_ci");
        // dn1: a NULL name says nothing yet; then a name without a weight (the id's weight does not matter)
        l.observe(0, &row(&[Some("1"), None, general, None, Some("binary"), Some("\u{1}")]));
        l.observe(0, &row(&[Some("5"), Some("a"), general, None, Some("binary"), Some("\u{5}")]));
        // dn2: a weight beside the name: the collation is not one the proxy compares itself
        l.observe(1, &row(&[Some("2"), Some("b"), Some("utf8mb4_unicode_ci"), Some("\u{e}"), Some("binary"), None]));
        // dn3: only NULL names
        l.observe(2, &row(&[Some("3"), None, general, None, Some("binary"), None]));
        l.tell(ask, p.lean_sql.as_deref().unwrap(), &nodes);
        let lean = p.lean_sql.as_deref().unwrap();
        let told = learned.told(lean, &nodes[..1], 1).expect("dn1 told");
        assert_eq!(told[1], Collation::by_name(b"utf8mb4_general_ci"));
        assert_eq!(told[3], Collation::by_name(b"binary"));
        for n in &nodes[1..] {
            assert!(learned.told(lean, std::slice::from_ref(n), 1).is_none(), "{n} told nothing");
        }
        assert!(learned.told(lean, &nodes, 1).is_none());
    }

    /// Told collations order a lean merge's rows as the shards' COLLATION columns would have.
    #[test]
    fn told_collations_stand_for_the_collation_column() {
        let p = plan("SELECT name FROM t ORDER BY name");
        let cols = [col(0xFD), col(0xFD), col(0xFD)];
        let told: Vec<Option<Collation>> = vec![None, Collation::by_name(b"utf8mb4_general_ci")];
        let lean = Collations::new(&p.collation_of, 1, Some(&told));
        let full = Collations::new(&p.collation_of, 1, None);
        let keys = |c| Keys { keys: &p.order, cols: &cols, visible: 1, collations: c };
        let (a, b) = (row(&[Some("a "), None, None]), row(&[Some("A"), None, None]));
        assert_eq!(keys(&lean).cmp(&a, &b), std::cmp::Ordering::Equal, "general_ci, PAD SPACE");
        let (fa, fb) = (row(&[Some("a "), Some("utf8mb4_bin"), None]), row(&[Some("A"), Some("utf8mb4_bin"), None]));
        assert_eq!(keys(&full).cmp(&fa, &fb), std::cmp::Ordering::Greater, "named by the rows: utf8mb4_bin");
    }
}
