//! Joins of sharded tables their shards cannot run together, driven by the proxy in batches (vtgate's
//! nested-loop join): the first table's rows read and merged once, then per batch of them the joined
//! tables' rows for the batch's keys (`t.k IN (…)`), and the batch's join run on one node over those
//! rows written in as literals; the batches' rows go to the client as one result, LIMIT counted across.

use bytes::BytesMut;
use sqlparser::ast::{
    Expr, JoinConstraint, JoinOperator, LimitClause, OrderByKind, SelectItem, SetExpr, Spanned, Statement, TableFactor,
};

use super::session::Session;
use super::subquery::{
    conjuncts, derived_rows, first_only_conjuncts, join_key, literal, only_of, partitioned, splice, table_ref, TableRef,
};
use crate::error::{Error, Result};
use crate::exec::cell::{decode_row, encode_binary_row, ColumnInfo, Row};
use crate::proto::packets;
use crate::sql::analyze::{byte_span, expr_byte_span, Analysis};
use crate::sql::classify::Kind;

/// Left rows per batch at most (fewer when the batch's joined rows or result outgrow `mergeMemoryLimit`).
const BATCH_ROWS: usize = 256;

/// How a joined table's rows for a batch are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A column of the first table: its values in the batch, written as a list.
    Column(String),
    /// An expression of the first table alone: computed over the batch's rows on a node.
    Expr(String),
}

/// A sharded table joined to the first one by an equality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// Where `name [AS alias]` is in the statement.
    pub span: (usize, usize),
    pub table: String,
    pub alias: String,
    /// Its column the key names (quoted).
    pub column: String,
    pub key: Key,
}

/// A SELECT the proxy can join in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// The first table's rows: those the WHERE's terms over it alone keep, in the statement's ORDER BY
    /// (which reads that table alone), `LIMIT offset+count` when every join keeps every row.
    pub left: String,
    /// Where `name [AS alias]` of the first table is, and the name it goes by.
    pub first_span: (usize, usize),
    pub first: String,
    pub joined: Vec<Joined>,
    /// The LIMIT's numbers (where they are, offset, count): each batch gets `LIMIT` what is still to
    /// skip and send.
    pub limit: Option<((usize, usize), u64, u64)>,
    /// The LIMIT reached the first table's read.
    pub left_limited: bool,
    /// Nothing but the first table and the sharded joined ones is read, and no subquery: a batch's
    /// statement reads only the literals written in, and goes to any node without a parse of its own.
    pub self_contained: bool,
    /// The first table is read in pages by its primary key (the statement has no ORDER BY but that
    /// key's): only a page is held. Otherwise its rows are read whole.
    pub paged: Option<Paging>,
}

/// Pages of the first table by its primary key: `SELECT * FROM first WHERE … AND key > <the last
/// page's last> ORDER BY key LIMIT n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// The key's column name.
    pub column: String,
    pub desc: bool,
    /// `SELECT * FROM first`.
    select: String,
    /// The WHERE's terms over the first table alone.
    narrowing: Vec<String>,
}

impl Paging {
    /// The page after `after` (a literal of the key; `None`: the first page), `n` rows at most.
    pub fn page(&self, first: &str, after: Option<&str>, n: u64) -> String {
        let key = format!("{first}.`{}`", self.column.replace('`', "``"));
        let mut terms = self.narrowing.clone();
        if let Some(a) = after {
            terms.push(format!("{key} {} {a}", if self.desc { "<" } else { ">" }));
        }
        let mut q = self.select.clone();
        if !terms.is_empty() {
            q.push_str(&format!(" WHERE {}", terms.join(" AND ")));
        }
        q.push_str(&format!(" ORDER BY {key}{} LIMIT {n}", if self.desc { " DESC" } else { "" }));
        q
    }
}

impl BatchPlan {
    /// The plan as EXPLAIN's operator rows.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![format!(
            "Join in batches of up to {BATCH_ROWS} rows of {} (nested loop){}",
            self.first,
            match self.limit {
                Some((_, m, n)) => format!(", then Limit {m}, {n} over the joined rows"),
                None => String::new(),
            }
        )];
        match &self.paged {
            Some(p) => out.push(format!(
                "├─ First, in pages by {}.{}: {}",
                self.first,
                p.column,
                p.page(
                    &self.first,
                    Some("<the last page's last>"),
                    match self.limit {
                        Some((_, m, n)) if self.left_limited => m.saturating_add(n).min(BATCH_ROWS as u64),
                        _ => BATCH_ROWS as u64,
                    }
                )
            )),
            None => out.push(format!("├─ First: {}", self.left)),
        }
        for j in &self.joined {
            let keys = match &j.key {
                Key::Column(c) => format!("the batch's {}.{c}", self.first),
                Key::Expr(e) => format!("the batch's {e}"),
            };
            out.push(format!("├─ Per batch: SELECT * FROM {} WHERE {}.{} IN ({keys})", j.table, j.table, j.column));
        }
        out.push("└─ Per batch: the statement on one dataNode, those rows written in as derived tables".into());
        out
    }
}

/// The batch plan of `stmt`, when it is a SELECT of plain rows (no aggregate, GROUP BY, DISTINCT,
/// HAVING, window, locking) from a sharded first table INNER/LEFT joined to sharded tables each by an
/// equality with it (other tables — global, one node's — joined as they are), ordered by the first
/// table alone. `partitioned` says which table references are sharded.
pub fn plan(
    sql: &str,
    stmt: &Statement,
    partitioned: &dyn Fn(&TableFactor) -> bool,
    primary_key: &dyn Fn(&TableFactor) -> Option<String>,
) -> Option<BatchPlan> {
    let Statement::Query(q) = stmt else { return None };
    if q.with.is_some() || q.fetch.is_some() || !q.locks.is_empty() || q.for_clause.is_some() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else { return None };
    let grouped = match &s.group_by {
        sqlparser::ast::GroupByExpr::Expressions(v, m) => !v.is_empty() || !m.is_empty(),
        sqlparser::ast::GroupByExpr::All(_) => true,
    };
    if s.distinct.is_some()
        || s.top.is_some()
        || s.into.is_some()
        || grouped
        || s.having.is_some()
        || !s.named_window.is_empty()
        || s.qualify.is_some()
        || !s.lateral_views.is_empty()
        || !s.sort_by.is_empty()
        || s.select_modifiers.as_ref().is_some_and(|m| m.sql_calc_found_rows)
        || s.from.len() != 1
    {
        return None;
    }
    let rows_only = |e: &Expr| !crate::route::merge::contains_aggregate(e) && !windowed(e);
    for it in &s.projection {
        match it {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } if !rows_only(e) => return None,
            _ => {}
        }
    }
    let from = &s.from[0];
    if !partitioned(&from.relation) {
        return None;
    }
    let TableRef { span: first_span, qualifier: first, text: first_text, .. } = table_ref(sql, &from.relation)?;
    let mut joined = Vec::new();
    let mut all_left = true;
    for j in &from.joins {
        let (on, left) = match &j.join_operator {
            JoinOperator::Join(JoinConstraint::On(e)) | JoinOperator::Inner(JoinConstraint::On(e)) => (e, false),
            JoinOperator::Left(JoinConstraint::On(e)) | JoinOperator::LeftOuter(JoinConstraint::On(e)) => (e, true),
            _ => return None,
        };
        all_left &= left;
        if !matches!(j.relation, TableFactor::Table { .. }) {
            return None;
        }
        if !partitioned(&j.relation) {
            continue; // a global or one node's table: there on the node that runs the batch
        }
        let TableRef { span, table, qualifier, alias, .. } = table_ref(sql, &j.relation)?;
        let (column, expr) = join_key(sql, on, &qualifier, &first)?;
        let key = match column_of(&expr, &first) {
            Some(c) => Key::Column(c),
            None => Key::Expr(expr),
        };
        joined.push(Joined { span, table, alias, column, key });
    }
    if joined.is_empty() {
        return None;
    }
    // ORDER BY over the first table alone: the batches, read in that order, keep it
    let mut order = Vec::new();
    let key = primary_key(&from.relation);
    // (None: no ORDER BY; Some(desc): by the primary key alone; no paging otherwise)
    let mut by_key = Some(None);
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(items) = &ob.kind else { return None };
        if ob.interpolate.is_some() {
            return None;
        }
        for it in items {
            let names_first = matches!(&it.expr, Expr::CompoundIdentifier(_))
                || sqlparser::ast::visit_expressions(&it.expr, |x: &Expr| match x {
                    Expr::CompoundIdentifier(_) => std::ops::ControlFlow::Break(()),
                    _ => std::ops::ControlFlow::Continue(()),
                })
                .is_break();
            if !names_first || !only_of(&it.expr, &first) || !rows_only(&it.expr) || it.with_fill.is_some() {
                return None;
            }
            let (x0, x1) = expr_byte_span(sql, &it.expr)?;
            let mut o = sql[x0..x1].to_string();
            match &it.options.sort {
                Some(sqlparser::ast::OrderBySort::Desc) => o.push_str(" DESC"),
                Some(sqlparser::ast::OrderBySort::Using(_)) => return None,
                _ => {}
            }
            if it.options.nulls_first.is_some() {
                return None;
            }
            let is_key = match (&it.expr, &key) {
                (Expr::CompoundIdentifier(p), Some(k)) => {
                    p.len() == 2 && p[0].value.eq_ignore_ascii_case(&first) && p[1].value.eq_ignore_ascii_case(k)
                }
                _ => false,
            };
            by_key = match by_key {
                Some(None) if is_key => Some(Some(matches!(it.options.sort, Some(sqlparser::ast::OrderBySort::Desc)))),
                _ => None,
            };
            order.push(o);
        }
    }
    let limit = match &q.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset { limit: Some(l), offset, limit_by }) if limit_by.is_empty() => {
            let n = number(l)?;
            let m = match offset {
                Some(o) => number(&o.value)?,
                None => 0,
            };
            let spans = [Some(l.span()), offset.as_ref().map(|o| o.value.span())];
            Some((numbers_span(sql, &spans)?, m, n))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            let (m, n) = (number(offset)?, number(limit)?);
            Some((numbers_span(sql, &[Some(offset.span()), Some(limit.span())])?, m, n))
        }
        Some(_) => return None,
    };
    let narrowing = first_only_conjuncts(sql, s.selection.as_ref(), &first);
    // every row of the first table the WHERE keeps is a row of the result at least once: the
    // LIMIT is the first table's too
    let every_row_kept = all_left && s.selection.as_ref().is_none_or(|w| conjuncts(w).len() == narrowing.len());
    let mut left = format!("SELECT * FROM {first_text}");
    if !narrowing.is_empty() {
        left.push_str(&format!(" WHERE {}", narrowing.join(" AND ")));
    }
    if !order.is_empty() {
        left.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    let left_limited = every_row_kept && limit.is_some();
    if let (true, Some((_, m, n))) = (left_limited, limit) {
        left.push_str(&format!(" LIMIT {}", m.checked_add(n)?));
    }
    let paged = match (key, by_key) {
        (Some(column), Some(desc)) => Some(Paging {
            column,
            desc: desc.unwrap_or(false),
            select: format!("SELECT * FROM {first_text}"),
            narrowing,
        }),
        _ => None,
    };
    let mut relations = 0usize;
    let _ = sqlparser::ast::visit_relations(stmt, |_| {
        relations += 1;
        std::ops::ControlFlow::<()>::Continue(())
    });
    let subqueries = sqlparser::ast::visit_expressions(stmt, |e: &Expr| match e {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { target: sqlparser::ast::InTarget::Subquery(_), .. } => {
            std::ops::ControlFlow::Break(())
        }
        _ => std::ops::ControlFlow::Continue(()),
    })
    .is_break();
    let self_contained = relations == 1 + joined.len() && !subqueries;
    Some(BatchPlan { left, first_span, first, joined, limit, left_limited, self_contained, paged })
}

/// Whether `e` calls a window function.
fn windowed(e: &Expr) -> bool {
    sqlparser::ast::visit_expressions(e, |x: &Expr| match x {
        Expr::Function(f) if f.over.is_some() => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    })
    .is_break()
}

/// `first.column` written plainly: the column's name.
fn column_of(expr: &str, first: &str) -> Option<String> {
    let (q, c) = expr.trim().split_once('.')?;
    let unquote = |s: &str| {
        let s = s.trim();
        match s.strip_prefix('`').and_then(|x| x.strip_suffix('`')) {
            Some(x) => Some(x.replace("``", "`")),
            None if s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '$') && !s.is_empty() => {
                Some(s.to_string())
            }
            None => None,
        }
    };
    (unquote(q)?.eq_ignore_ascii_case(first)).then(|| unquote(c)).flatten()
}

/// A LIMIT number written as a literal.
fn number(e: &Expr) -> Option<u64> {
    match e {
        Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// From the first to the last of the LIMIT's numbers.
fn numbers_span(sql: &str, spans: &[Option<sqlparser::tokenizer::Span>]) -> Option<(usize, usize)> {
    let r: Option<Vec<(usize, usize)>> = spans.iter().flatten().map(|s| byte_span(sql, *s)).collect();
    let r = r?;
    Some((r.iter().map(|x| x.0).min()?, r.iter().map(|x| x.1).max()?))
}

/// When the proxy joins in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Only when the LIMIT reaches the first table's read (a page of rows: only its keys are read).
    Preferred,
    /// Whenever the statement's shape allows: what runs first for the shards' join outgrew the cap.
    Fallback,
}

/// A batch's reply as the client would get it: the packets between its column definitions and its end.
struct BatchReply<'a> {
    head: Vec<&'a [u8]>,
    rows: Vec<&'a [u8]>,
    warnings: u16,
}

fn split_reply(data: &[u8], deprecate_eof: bool) -> Result<BatchReply<'_>> {
    let packets: Vec<&[u8]> = crate::proto::codec::captured(data).collect();
    if let Some(e) = packets.iter().find(|p| p.first() == Some(&packets::ERR_HEADER)) {
        let e = packets::parse_err(e);
        return Err(Error::from_packet(e.code, &e.state, e.message));
    }
    let first = packets.first().ok_or_else(|| Error::unsupported("a batch of the join sent no reply"))?;
    let mut pos = 0;
    let n = packets::read_lenenc_int(first, &mut pos)
        .filter(|n| *n > 0 && first.first() != Some(&0x00))
        .ok_or_else(|| Error::unsupported("a batch of the join sent no rows"))? as usize;
    let head_len = 1 + n + usize::from(!deprecate_eof);
    if packets.len() < head_len + 1 {
        return Err(Error::unsupported("a batch of the join's reply was cut"));
    }
    let head = packets[..head_len].to_vec();
    let mut rows = Vec::new();
    let mut warnings = 0;
    for p in &packets[head_len..] {
        if packets::is_eof_packet(p) {
            warnings = if deprecate_eof {
                packets::parse_ok(p).map(|o| o.warnings).unwrap_or(0)
            } else {
                packets::parse_eof(p).map(|(w, _)| w).unwrap_or(0)
            };
            break;
        }
        rows.push(*p);
    }
    Ok(BatchReply { head, rows, warnings })
}

impl Session {
    /// The batch plan of `sql` on the current schema's tables.
    pub(super) fn batch_plan(&self, sql: &str, a: &Analysis) -> Option<BatchPlan> {
        let [stmt] = a.stmts.as_slice() else { return None };
        let cfg = self.rt.config.clone();
        let schema = self.schema.as_deref().and_then(|n| cfg.schema(n))?;
        let partitioned = |f: &TableFactor| partitioned(schema, f);
        let primary_key = |f: &TableFactor| match f {
            TableFactor::Table { name, .. } => name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .and_then(|i| schema.table(&i.value))
                .and_then(|t| t.primary_key.clone()),
            _ => None,
        };
        plan(sql, stmt, &partitioned, &primary_key)
    }

    /// Answers `sql` by joining in batches when `when` allows its shape: `Ok(false)` (nothing sent)
    /// otherwise. `binary`: the rows go out in the binary protocol (a prepared statement's).
    pub(super) async fn join_in_batches(
        &mut self,
        sql: &str,
        a: &Analysis,
        binary: bool,
        when: Batching,
    ) -> Result<bool> {
        let Some(plan) = self.batch_plan(sql, a) else { return Ok(false) };
        if when == Batching::Preferred && !plan.left_limited {
            return Ok(false);
        }
        let cap = self.rt.config.system.merge_memory_limit;
        let over = |what: String| Error::MemoryLimit { what, limit: cap };
        let first_rows = |e: Error, q: &str| match e {
            Error::MemoryLimit { .. } => over(format!("the join's rows of its first table ({q})")),
            e => e,
        };
        // the first table's rows: whole, or a page at a time
        let held = match &plan.paged {
            None => Some(self.subquery_rows(&plan.left).await.map_err(|e| first_rows(e, &plan.left))?),
            Some(_) => None,
        };
        let (mut skip, mut want) = match plan.limit {
            Some((_, m, n)) => (m, n),
            None => (0, u64::MAX),
        };
        // rows of the first table that can still give rows of the page (LEFT joins: one each at least)
        let mut left_budget = match plan.limit {
            Some((_, m, n)) if plan.left_limited => m.saturating_add(n),
            _ => u64::MAX,
        };
        let deprecate_eof = self.deprecate_eof();
        let mut cols: Option<Vec<ColumnInfo>> = None;
        let mut sent = 0u64;
        let mut warnings = 0u16;
        let mut at = 0;
        let mut after: Option<String> = None;
        let mut exhausted = held.as_ref().is_some_and(|h| h.1.is_empty());
        let mut size = BATCH_ROWS;
        // at least one batch (empty when the first table gave no rows, or LIMIT 0): the result's columns
        while cols.is_none() || (want > 0 && !exhausted) {
            // a page read for this batch (a first table held whole lends its rows instead)
            let page;
            let (lcols, batch, asked): (&[ColumnInfo], &[Row], u64) = match (&held, &plan.paged) {
                (Some((c, rows)), _) => (c, &rows[at..(at + size).min(rows.len())], size as u64),
                (None, Some(p)) => {
                    let n = (size as u64).min(left_budget);
                    let q = p.page(&plan.first, after.as_deref(), n);
                    match self.subquery_rows(&q).await {
                        Ok(read) => {
                            page = read;
                            (&page.0, &page.1, n)
                        }
                        Err(Error::MemoryLimit { .. }) if size > 1 => {
                            size /= 2;
                            continue;
                        }
                        Err(e) => return Err(first_rows(e, &q)),
                    }
                }
                (None, None) => return Err(Error::unsupported("a join in batches without its first table's rows")),
            };
            let text = match self.batch_text(sql, &plan, lcols, batch, skip.saturating_add(want)).await {
                Ok(t) => t,
                Err(Error::MemoryLimit { .. }) if batch.len() > 1 => {
                    size = batch.len() / 2;
                    continue;
                }
                Err(Error::MemoryLimit { .. }) => {
                    return Err(over(format!("the rows joined to one row of {} ({})", plan.first, sql)));
                }
                Err(e) => return Err(e),
            };
            let data = self.batch_reply(&text, cap, plan.self_contained).await?;
            let Some(data) = data else {
                if batch.len() > 1 {
                    size = batch.len() / 2;
                    continue;
                }
                return Err(over(format!("the result of one row of {} joined ({})", plan.first, sql)));
            };
            let reply = split_reply(&data, deprecate_eof)?;
            warnings = warnings.saturating_add(reply.warnings);
            if cols.is_none() {
                let extended = self.backend_variant().extended_metadata;
                let parsed: Option<Vec<ColumnInfo>> = reply.head[1..]
                    .iter()
                    .take(reply.head.len() - 1 - usize::from(!deprecate_eof))
                    .map(|d| ColumnInfo::parse(d, extended))
                    .collect();
                cols = Some(parsed.ok_or_else(|| Error::unsupported("a batch of the join's column is unreadable"))?);
                for p in &reply.head {
                    self.out.push(p);
                }
            }
            let n = cols.as_ref().map_or(0, Vec::len);
            let mut b = BytesMut::new();
            for r in &reply.rows {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                if want == 0 {
                    break;
                }
                want -= 1;
                sent += 1;
                if binary {
                    let row: Row = decode_row(r, n).ok_or_else(|| Error::unsupported("a batch's row is unreadable"))?;
                    b.clear();
                    encode_binary_row(&mut b, &row, cols.as_deref().unwrap_or(&[]), n)
                        .ok_or_else(|| Error::unsupported("a joined row cannot be sent in the binary protocol"))?;
                    self.out.push(&b);
                } else {
                    self.out.push(r);
                }
            }
            self.out.flush_if_large().await?;
            match (&held, &plan.paged) {
                (Some((_, rows)), _) => {
                    at += batch.len();
                    exhausted = at >= rows.len();
                }
                (None, Some(p)) => {
                    left_budget = left_budget.saturating_sub(batch.len() as u64);
                    exhausted = (batch.len() as u64) < asked || left_budget == 0;
                    if let Some(last) = batch.last() {
                        let i = lcols.iter().position(|c| c.name.eq_ignore_ascii_case(&p.column)).ok_or_else(|| {
                            Error::unsupported(format!("the join's first table has no column {}", p.column))
                        })?;
                        after = Some(literal(&last.get(i).cloned().flatten(), &lcols[i]));
                    }
                }
                (None, None) => {}
            }
            size = BATCH_ROWS;
        }
        // the session's status now: with autocommit off the batches may have opened its transaction
        let fmt = self.stmt_fmt();
        crate::exec::relay::write_terminator(&mut self.out, &fmt, warnings, fmt.status);
        self.out.flush().await?;
        let reply = crate::exec::Reply { rows: sent, result_set: true, warnings, ..Default::default() };
        self.after_reply(Kind::Select, &reply, sql);
        Ok(true)
    }

    /// `sql` for one batch: the first table's reference replaced by the batch's rows, each joined
    /// table's by its rows for the batch's keys, the LIMIT by what is still to skip and send.
    async fn batch_text(
        &mut self,
        sql: &str,
        plan: &BatchPlan,
        cols: &[ColumnInfo],
        batch: &[Row],
        limit: u64,
    ) -> Result<String> {
        let left = derived_rows(cols, batch);
        let mut edits: Vec<((usize, usize), String)> = vec![(plan.first_span, format!("({left}) AS {}", plan.first))];
        for j in &plan.joined {
            let keys = match &j.key {
                Key::Column(c) => {
                    let i = cols.iter().position(|x| x.name.eq_ignore_ascii_case(c));
                    match i {
                        Some(i) => {
                            let mut seen = std::collections::HashSet::new();
                            let list: Vec<String> = batch
                                .iter()
                                .filter_map(|r| r.get(i).filter(|v| v.is_some()))
                                .filter(|v| seen.insert(*v))
                                .map(|v| literal(v, &cols[i]))
                                .collect();
                            if list.is_empty() {
                                "NULL".to_string()
                            } else {
                                list.join(", ")
                            }
                        }
                        None => format!("SELECT DISTINCT {}.{c} FROM ({left}) AS {}", plan.first, plan.first),
                    }
                }
                Key::Expr(e) => format!("SELECT DISTINCT {e} FROM ({left}) AS {}", plan.first),
            };
            let read = format!("SELECT * FROM {} WHERE {}.{} IN ({keys})", j.table, j.table, j.column);
            let (jc, jr) = self.subquery_rows(&read).await?;
            edits.push((j.span, format!("({}) AS {}", derived_rows(&jc, &jr), j.alias)));
        }
        if let Some((span, _, _)) = plan.limit {
            edits.push((span, limit.to_string()));
        }
        edits.sort_by_key(|e| e.0 .0);
        Ok(splice(sql, edits.iter().map(|(span, t)| (*span, t.as_str()))))
    }

    /// Runs one batch's statement with its reply kept (at most `cap` bytes: `None` beyond). A
    /// `self_contained` one goes to any node as it is: parsing its literals only to learn that would
    /// cost a hundred times their bytes.
    async fn batch_reply(&mut self, text: &str, cap: usize, self_contained: bool) -> Result<Option<Vec<u8>>> {
        let payload = packets::com_query(&self.client_text(text));
        self.out.start_divert(cap);
        self.fold_depth += 1;
        let r = if self_contained {
            self.on_any_node(text, payload).await
        } else {
            Box::pin(self.routed_in(text, Kind::Select, None, payload)).await
        };
        self.fold_depth -= 1;
        let data = self.out.take_divert();
        r?;
        Ok(data)
    }

    /// A read of literals alone, on any live node of the session's schema.
    async fn on_any_node(&mut self, text: &str, payload: bytes::Bytes) -> Result<()> {
        let cfg = self.rt.config.clone();
        let schema = self.current_or_first_schema(&cfg)?;
        let node = crate::route::any_node(schema, &|n| self.rt.backends.node_alive(n))?;
        let r = crate::route::Route::single(node);
        let payloads = super::query::text_payloads(&r, &payload, &self.client_charset, self.text_exact)?;
        let reply = self.execute_as(&r, &payloads, super::query::Access::Read).await?;
        self.after_reply(Kind::Select, &reply, text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    fn plan_of(sql: &str) -> Option<BatchPlan> {
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        let sharded = |f: &TableFactor| matches!(f, TableFactor::Table { name, .. } if ["orders", "customer", "t_range"].contains(&name.to_string().as_str()));
        plan(sql, &stmt, &sharded, &|_| Some("id".to_string()))
    }

    /// Without an ORDER BY, or ordered by its primary key alone, the first table is read a page at a
    /// time, each after the last key of the one before.
    #[test]
    fn the_first_table_is_paged_by_its_key() {
        let p = plan_of("SELECT o.id, c.name FROM orders o JOIN customer c ON c.id = o.customer_id WHERE o.total > 1 AND c.city = 'x'").unwrap();
        let paging = p.paged.unwrap();
        assert_eq!(
            paging.page("o", None, 256),
            "SELECT * FROM orders AS o WHERE (o.total > 1) ORDER BY o.`id` LIMIT 256"
        );
        assert_eq!(
            paging.page("o", Some("1020"), 128),
            "SELECT * FROM orders AS o WHERE (o.total > 1) AND o.`id` > 1020 ORDER BY o.`id` LIMIT 128"
        );
        let p = plan_of("SELECT * FROM orders LEFT JOIN customer ON customer.id = orders.customer_id ORDER BY orders.ID DESC LIMIT 3").unwrap();
        assert_eq!(
            p.paged.unwrap().page("orders", Some("7"), 3),
            "SELECT * FROM orders WHERE orders.`id` < 7 ORDER BY orders.`id` DESC LIMIT 3"
        );
        for sql in [
            "SELECT o.id FROM orders o JOIN customer c ON c.id = o.customer_id ORDER BY o.created",
            "SELECT o.id FROM orders o JOIN customer c ON c.id = o.customer_id ORDER BY o.id, o.created",
        ] {
            assert_eq!(plan_of(sql).unwrap().paged, None, "{sql}");
        }
    }

    /// A page of a LEFT join ordered by the first table: the first table's read gets the page's LIMIT,
    /// the joined table is named by a column of the first.
    #[test]
    fn a_page_of_left_joins_limits_the_first_table() {
        let sql = "SELECT o.id, c.name FROM orders o LEFT JOIN customer c ON c.id = o.customer_id JOIN region r ON r.id = 1 WHERE o.total > 10 ORDER BY o.created DESC, o.id LIMIT 20, 10";
        let p = plan_of(sql).unwrap();
        assert_eq!(p.left, "SELECT * FROM orders AS o WHERE (o.total > 10) ORDER BY o.created DESC, o.id");
        assert!(!p.left_limited, "an INNER join (with region) may drop rows");
        let sql = "SELECT o.id, c.name FROM orders o LEFT JOIN customer c ON c.id = o.customer_id WHERE o.total > 10 ORDER BY o.created DESC, o.id LIMIT 10 OFFSET 20";
        let p = plan_of(sql).unwrap();
        assert_eq!(p.left, "SELECT * FROM orders AS o WHERE (o.total > 10) ORDER BY o.created DESC, o.id LIMIT 30");
        assert!(p.left_limited);
        assert_eq!(&sql[p.first_span.0..p.first_span.1], "orders o");
        assert_eq!(p.joined.len(), 1);
        assert_eq!(&sql[p.joined[0].span.0..p.joined[0].span.1], "customer c");
        assert_eq!(p.joined[0].key, Key::Column("customer_id".into()));
        assert_eq!(p.joined[0].column, "`id`");
        assert_eq!(&sql[p.limit.unwrap().0 .0..p.limit.unwrap().0 .1], "10 OFFSET 20");
        assert_eq!((p.limit.unwrap().1, p.limit.unwrap().2), (20, 10));
        // a WHERE term over the joined table may drop rows too
        let p = plan_of("SELECT * FROM orders LEFT JOIN customer ON customer.id = orders.customer_id WHERE customer.name = 'x' LIMIT 5").unwrap();
        assert!(!p.left_limited);
        assert_eq!(p.left, "SELECT * FROM orders");
    }

    /// Keys that are expressions are computed over the batch; shapes the batches cannot keep are left
    /// to the shards' join.
    #[test]
    fn shapes_the_batches_keep() {
        let p = plan_of("SELECT c.id, t.v FROM customer c JOIN t_range t ON t.id = c.id * 1237 ORDER BY c.id").unwrap();
        assert_eq!(p.joined[0].key, Key::Expr("c.id * 1237".into()));
        for sql in [
            "SELECT c.id, COUNT(*) FROM customer c JOIN orders o ON o.customer_id = c.id GROUP BY c.id",
            "SELECT DISTINCT c.id FROM customer c JOIN orders o ON o.customer_id = c.id",
            "SELECT c.id, o.id FROM customer c JOIN orders o ON o.customer_id = c.id ORDER BY o.id",
            "SELECT c.id, o.id FROM customer c JOIN orders o ON o.customer_id = c.id ORDER BY 2",
            "SELECT c.id, o.id FROM customer c JOIN orders o ON o.customer_id > c.id",
            "SELECT c.id FROM customer c JOIN orders o ON o.customer_id = c.id FOR UPDATE",
            "SELECT c.id, ROW_NUMBER() OVER () FROM customer c JOIN orders o ON o.customer_id = c.id",
            "SELECT c.id FROM customer c RIGHT JOIN orders o ON o.customer_id = c.id",
            "SELECT c.id FROM region r JOIN orders o ON o.customer_id = r.id",
        ] {
            assert_eq!(plan_of(sql), None, "{sql}");
        }
    }

    #[test]
    fn a_first_table_column_is_its_name() {
        assert_eq!(column_of("o.customer_id", "o"), Some("customer_id".into()));
        assert_eq!(column_of("`O`.`a``b`", "o"), Some("a`b".into()));
        assert_eq!(column_of("o.a + 1", "o"), None);
        assert_eq!(column_of("x.a", "o"), None);
    }
}
