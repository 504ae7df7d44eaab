//! Subqueries a SELECT over several shards cannot leave to its shards: the uncorrelated scalar,
//! `IN`/`NOT IN` and `[NOT] EXISTS` subqueries of its WHERE, HAVING and JOIN conditions, run first by
//! the session as reads of their own and written back into the statement as literals.

use sqlparser::ast::{Expr, InTarget, JoinConstraint, JoinOperator, SetExpr, Spanned, Statement, TableFactor};

use super::session::Session;
use crate::error::{Error, Result};
use crate::exec::cell::{decode_row, ColumnInfo, Row};
use crate::proto::packets;
use crate::sql::analyze::{byte_span, Analysis};
use crate::sql::classify::Kind;

/// What the parse of a derived table of literals holds, per byte of its text (measured: 3 MB of
/// two-column rows, 340 MB of syntax tree).
const PARSE_FACTOR: usize = 128;

/// How deep subqueries of subqueries are run first.
const MAX_DEPTH: u8 = 8;

impl Session {
    /// `sql` with its uncorrelated subqueries run first and written in as literals; `None` when it
    /// has none to run. A subquery that names a column of the outer query is refused by name.
    pub async fn fold_subqueries(&mut self, sql: &str, a: &Analysis) -> Result<Option<String>> {
        // sharded tables joined without a co-locating condition: every one but the first is read
        // whole first (a derived table, below) and joined on the first one's shards
        if let Some(text) = self.broadcast_joins(sql, a, Reduce::Selective) {
            let r = self.fold_joined(text.clone()).await;
            // a joined table too big to hold whole: only its rows the first table's keys name
            if let Err(Error::MemoryLimit { .. }) = r {
                if let Some(keyed) = self.broadcast_joins(sql, a, Reduce::Always).filter(|t| *t != text) {
                    return self.fold_joined(keyed).await;
                }
            }
            return r;
        }
        let folds = match a.stmts.as_slice() {
            [stmt] => find(sql, stmt),
            _ => return Ok(None),
        };
        if folds.is_empty() {
            return Ok(None);
        }
        if self.fold_depth >= MAX_DEPTH {
            return Err(Error::unsupported(format!(
                "subqueries nested more than {MAX_DEPTH} deep over several shards"
            )));
        }
        let mut replacements = Vec::with_capacity(folds.len());
        for f in &folds {
            if matches!(f.kind, FoldKind::Name(_)) {
                replacements.push(replacement(f, &[], &[])?);
                continue;
            }
            let (cols, rows) = self.subquery_rows(&f.query).await.map_err(|e| match e.code_and_state().0 {
                1054 => Error::unsupported(format!(
                    "the subquery ({}) cannot run on its own — a correlated subquery over several shards is not supported by shardcat yet: {e}",
                    f.query
                )),
                _ => e,
            })?;
            replacements.push(replacement(f, &cols, &rows)?);
        }
        // rows written in as derived tables are parsed with the statement, which holds about a
        // hundred times their text (one SELECT node per row): the cap counts that
        let limit = self.rt.config.system.merge_memory_limit;
        let derived: usize = folds
            .iter()
            .zip(&replacements)
            .filter(|(f, _)| matches!(f.kind, FoldKind::Derived))
            .map(|(_, r)| r.len())
            .sum();
        if derived.saturating_mul(PARSE_FACTOR) > limit {
            return Err(Error::MemoryLimit {
                what: format!(
                    "the rows written into the statement as derived tables ({derived} bytes of literals, parsed with it at about {PARSE_FACTOR} times that)"
                ),
                limit,
            });
        }
        Ok(Some(apply(sql, &folds, &replacements)))
    }

    /// `text` (a join with its joined tables written as derived tables) with those run first.
    async fn fold_joined(&mut self, text: String) -> Result<Option<String>> {
        let b = self
            .shared
            .parse_cache
            .parse_once(&text)
            .map_err(|m| Error::unsupported(format!("cannot re-read the join with its tables read first: {m}")))?;
        Box::pin(self.fold_subqueries(&text, &b)).await.map(|f| f.or(Some(text)))
    }

    /// The queries `fold_subqueries` would run first for `sql` (EXPLAIN names them without running
    /// them).
    pub fn runs_first(&self, sql: &str, a: &Analysis) -> Vec<String> {
        let text = self.broadcast_joins(sql, a, Reduce::Selective);
        let parsed = text.as_deref().and_then(|t| self.shared.parse_cache.parse_once(t).ok());
        let (sql, a) = match (&text, &parsed) {
            (Some(t), Some(b)) => (t.as_str(), b.as_ref()),
            _ => (sql, a),
        };
        match a.stmts.as_slice() {
            [stmt] => find(sql, stmt).into_iter().filter(|f| !f.query.is_empty()).map(|f| f.query).collect(),
            _ => Vec::new(),
        }
    }

    /// `sql` with the sharded tables joined to its first table written as derived tables
    /// `(SELECT * FROM t) AS t`: those of INNER joins and the right side of LEFT joins (a preserved
    /// side read whole would repeat its unmatched rows on every shard). A table joined by an equality
    /// with the first table is read for the first table's keys only, `(SELECT * FROM t WHERE t.k IN
    /// (SELECT DISTINCT f.k FROM f WHERE …)) AS t`, as `reduce` says. `None` when there are none.
    fn broadcast_joins(&self, sql: &str, a: &Analysis, reduce: Reduce) -> Option<String> {
        let [Statement::Query(q)] = a.stmts.as_slice() else { return None };
        let SetExpr::Select(s) = q.body.as_ref() else { return None };
        let cfg = self.rt.config.clone();
        let schema = self.schema.as_deref().and_then(|n| cfg.schema(n))?;
        let partitioned = |f: &TableFactor| partitioned(schema, f);
        if s.from.len() != 1 || !partitioned(&s.from[0].relation) {
            return None;
        }
        let first = table_ref(sql, &s.from[0].relation)?;
        let first = (first.qualifier, first.text);
        let pushed = first_only_conjuncts(sql, s.selection.as_ref(), &first.0);
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        for j in &s.from[0].joins {
            let inner_or_right = matches!(
                j.join_operator,
                JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::Left(_) | JoinOperator::LeftOuter(_)
            );
            if !partitioned(&j.relation) {
                continue;
            }
            if !inner_or_right {
                return None; // RIGHT/FULL/CROSS…: left as refused
            }
            let TableRef { span: (a0, end), table, qualifier, alias, .. } = table_ref(sql, &j.relation)?;
            let on = match &j.join_operator {
                JoinOperator::Join(JoinConstraint::On(e))
                | JoinOperator::Inner(JoinConstraint::On(e))
                | JoinOperator::Left(JoinConstraint::On(e))
                | JoinOperator::LeftOuter(JoinConstraint::On(e)) => Some(e),
                _ => None,
            };
            let key = on.and_then(|e| join_key(sql, e, &qualifier, &first.0));
            let keyed = match (reduce, key) {
                (Reduce::Always, Some(k)) => Some(k),
                (Reduce::Selective, Some(k)) if !pushed.is_empty() => Some(k),
                _ => None,
            };
            let read = match keyed {
                Some((column, expr)) => {
                    let filter =
                        if pushed.is_empty() { String::new() } else { format!(" WHERE {}", pushed.join(" AND ")) };
                    format!(
                        "(SELECT * FROM {table} WHERE {table}.{column} IN (SELECT DISTINCT {expr} FROM {}{filter})) AS {alias}",
                        first.1
                    )
                }
                None => format!("(SELECT * FROM {table}) AS {alias}"),
            };
            edits.push((a0, end, read));
        }
        if edits.is_empty() {
            return None;
        }
        let mut out = sql.to_string();
        for (a0, a1, t) in edits.into_iter().rev() {
            out.replace_range(a0..a1, &t);
        }
        Some(out)
    }

    /// Runs `q` as a read of its own (routed, merged, from the cache…) and keeps its reply instead of
    /// sending it: its columns and text rows, or the error it ended with.
    pub(super) async fn subquery_rows(&mut self, q: &str) -> Result<(Vec<ColumnInfo>, Vec<Row>)> {
        let limit = self.rt.config.system.merge_memory_limit;
        let payload = packets::com_query(&self.client_text(q));
        self.out.start_divert(limit);
        self.fold_depth += 1;
        let r = Box::pin(self.routed_in(q, Kind::Select, None, payload)).await;
        self.fold_depth -= 1;
        let data = self.out.take_divert();
        r?;
        let data = data.ok_or_else(|| Error::MemoryLimit { what: format!("the subquery ({q})"), limit })?;
        parse_result(&data, self.deprecate_eof(), self.backend_variant().extended_metadata)
    }
}

/// Whether a table reference names a sharded table of `schema` (not global, on several dataNodes).
pub(super) fn partitioned(schema: &crate::config::model::Schema, f: &TableFactor) -> bool {
    match f {
        TableFactor::Table { name, .. } if name.0.len() == 1 => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .and_then(|i| schema.table(&i.value))
            .is_some_and(|t| t.data_nodes.len() > 1 && t.kind != crate::config::model::TableKind::Global),
        _ => false,
    }
}

/// A table reference `name [AS alias]` as the statement's text has it.
pub(super) struct TableRef {
    /// From the name to the end of the alias.
    pub span: (usize, usize),
    /// The name as written.
    pub table: String,
    /// What the statement's columns are qualified with: the alias, else the table's name.
    pub qualifier: String,
    /// `name AS alias`, or the name.
    pub text: String,
    /// The alias as written, else the name.
    pub alias: String,
}

/// The reference of a table (not a derived table, a function…) in `sql`.
pub(super) fn table_ref(sql: &str, f: &TableFactor) -> Option<TableRef> {
    let TableFactor::Table { name, alias, .. } = f else { return None };
    let (a0, a1) = byte_span(sql, name.span())?;
    let table = sql[a0..a1].to_string();
    Some(match alias {
        Some(al) => TableRef {
            span: (a0, byte_span(sql, al.name.span)?.1),
            text: format!("{table} AS {}", al.name),
            qualifier: al.name.value.clone(),
            alias: al.name.to_string(),
            table,
        },
        None => TableRef {
            span: (a0, a1),
            qualifier: name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone())?,
            text: table.clone(),
            alias: table.clone(),
            table,
        },
    })
}

/// How much of a joined table the proxy reads first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduce {
    /// Only its rows the first table's keys name, when the WHERE narrows the first table (its own
    /// conditions then narrow the keys); the whole table otherwise.
    Selective,
    /// Only its rows the first table's keys name, whenever it is joined by an equality with it.
    Always,
}

/// Whether `e` reads only columns qualified by `qualifier` (no bare column, no subquery, no
/// placeholder): what a query of that table alone can compute.
pub(super) fn only_of(e: &Expr, qualifier: &str) -> bool {
    let mut own = true;
    let _ = sqlparser::ast::visit_expressions(e, |x: &Expr| {
        own &= match x {
            Expr::Identifier(_) | Expr::Subquery(_) | Expr::Exists { .. } => false,
            Expr::In { target: InTarget::Subquery(_), .. } => false,
            Expr::Value(v) => !matches!(v.value, sqlparser::ast::Value::Placeholder(_)),
            Expr::CompoundIdentifier(parts) => parts.len() == 2 && parts[0].value.eq_ignore_ascii_case(qualifier),
            _ => true,
        };
        if own {
            std::ops::ControlFlow::Continue(())
        } else {
            std::ops::ControlFlow::Break(())
        }
    });
    own
}

/// The top-level AND terms of `e`.
pub(super) fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::BinaryOp { left, op: sqlparser::ast::BinaryOperator::And, right } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        Expr::Nested(inner) => conjuncts(inner),
        _ => vec![e],
    }
}

/// The texts of the WHERE's AND terms that read only the first table (`qualifier`): they narrow
/// the rows, and so the join keys, of that table alone.
pub(super) fn first_only_conjuncts(sql: &str, selection: Option<&Expr>, qualifier: &str) -> Vec<String> {
    let Some(w) = selection else { return Vec::new() };
    conjuncts(w)
        .into_iter()
        .filter(|c| only_of(c, qualifier))
        .filter_map(|c| crate::sql::analyze::expr_byte_span(sql, c).map(|(a, z)| format!("({})", &sql[a..z])))
        .collect()
}

/// An AND term of a join's ON that equates a column of the joined table (`joined`) with an
/// expression of the first table alone (`first`): (that column, the expression's text).
pub(super) fn join_key(sql: &str, on: &Expr, joined: &str, first: &str) -> Option<(String, String)> {
    conjuncts(on).into_iter().find_map(|c| {
        let Expr::BinaryOp { left, op: sqlparser::ast::BinaryOperator::Eq, right } = c else { return None };
        let column = |e: &Expr| match e {
            Expr::CompoundIdentifier(p) if p.len() == 2 && p[0].value.eq_ignore_ascii_case(joined) => {
                Some(format!("`{}`", p[1].value.replace('`', "``")))
            }
            _ => None,
        };
        let text = |e: &Expr| crate::sql::analyze::expr_byte_span(sql, e).map(|(a, z)| sql[a..z].to_string());
        match (column(left), column(right)) {
            (Some(col), _) if only_of(right, first) => Some((col, text(right)?)),
            (_, Some(col)) if only_of(left, first) => Some((col, text(left)?)),
            _ => None,
        }
    })
}

/// A text result set as captured (4-byte length, payload, …): its columns and rows; an ERR packet
/// anywhere is the error.
fn parse_result(data: &[u8], deprecate_eof: bool, extended: bool) -> Result<(Vec<ColumnInfo>, Vec<Row>)> {
    let packets: Vec<&[u8]> = crate::proto::codec::captured(data).collect();
    if let Some(e) = packets.iter().find(|p| p.first() == Some(&packets::ERR_HEADER)) {
        let e = packets::parse_err(e);
        return Err(Error::from_packet(e.code, &e.state, e.message));
    }
    let mut it = packets.into_iter();
    let first = it.next().ok_or_else(|| Error::unsupported("a subquery sent no reply"))?;
    let mut pos = 0;
    let n = packets::read_lenenc_int(first, &mut pos)
        .filter(|n| *n > 0 && first.first() != Some(&0x00))
        .ok_or_else(|| Error::unsupported("a subquery that is not a SELECT"))? as usize;
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        let d = it.next().ok_or_else(|| Error::unsupported("a subquery's reply was cut"))?;
        cols.push(
            ColumnInfo::parse(d, extended).ok_or_else(|| Error::unsupported("a subquery's column is unreadable"))?,
        );
    }
    if !deprecate_eof {
        it.next();
    }
    let mut rows = Vec::new();
    for p in it {
        if packets::is_eof_packet(p) {
            break;
        }
        rows.push(decode_row(p, n).ok_or_else(|| Error::unsupported("a subquery's row is unreadable"))?);
    }
    Ok((cols, rows))
}

/// How a subquery's rows replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldKind {
    /// `(SELECT …)`: its one value (NULL without a row); `typed`: cast to its column's type (in the
    /// select list, where the client sees the type).
    Scalar { typed: bool },
    /// No subquery: ` AS `text`` after a select item whose subqueries are written in, so that its
    /// column keeps the name the server gives it (its text as written).
    Name(String),
    /// `lhs [NOT] IN (SELECT …)`: `lhs [NOT] IN (v1, v2, …)`, or FALSE (TRUE) for no rows.
    In { lhs: String, negated: bool },
    /// `[NOT] EXISTS (SELECT …)`: TRUE or FALSE.
    Exists { negated: bool },
    /// `FROM (SELECT …) d` that the shards cannot compute (it aggregates, limits, de-duplicates over
    /// several of them): its rows as a derived table of literals, `(SELECT v AS c, … UNION ALL …)`.
    Derived,
}

/// One subquery to run first: where its whole expression is in the statement's text and the text of
/// the query itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    pub span: (usize, usize),
    pub kind: FoldKind,
    pub query: String,
}

/// The subqueries of a SELECT's WHERE, HAVING and JOIN … ON conditions (outermost ones only: those
/// nested in them run when they do), in text order; empty when it has none or one cannot be located
/// in the text (then nothing is folded).
pub fn find(sql: &str, stmt: &Statement) -> Vec<Fold> {
    let Statement::Query(q) = stmt else { return Vec::new() };
    let SetExpr::Select(s) = q.body.as_ref() else { return Vec::new() };
    let mut conditions: Vec<&Expr> = s.selection.iter().chain(s.having.iter()).collect();
    for t in &s.from {
        for j in &t.joins {
            let c = match &j.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c) => c,
                _ => continue,
            };
            if let JoinConstraint::On(e) = c {
                conditions.push(e);
            }
        }
    }
    let mut out: Vec<Fold> = Vec::new();
    // derived tables of the FROM list (their own subqueries run with them)
    for t in &s.from {
        for f in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
            // (one of literals only — a derived table this module wrote — reads nothing to run first)
            if let sqlparser::ast::TableFactor::Derived { lateral: false, subquery, .. } = f {
                if !reads_tables(subquery) {
                    continue;
                }
                let Some((a, z)) = query_span(sql, subquery) else { return Vec::new() };
                if parens_around(sql, a, z).is_none() {
                    return Vec::new();
                }
                out.push(Fold { span: (a, z), kind: FoldKind::Derived, query: sql[a..z].to_string() });
            }
        }
    }
    // the select list's subqueries (typed as their columns); conditions' (plain values)
    let mut exprs: Vec<(&Expr, Option<(usize, usize)>)> = Vec::new();
    for it in &s.projection {
        match it {
            sqlparser::ast::SelectItem::UnnamedExpr(e) => exprs.push((e, crate::sql::analyze::expr_byte_span(sql, e))),
            sqlparser::ast::SelectItem::ExprWithAlias { expr, .. } => exprs.push((expr, None)),
            _ => {}
        }
    }
    let items = exprs.len();
    exprs.extend(conditions.into_iter().map(|c| (c, None)));
    for (n, (c, unnamed)) in exprs.into_iter().enumerate() {
        let typed = n < items;
        let before = out.len();
        let mut located = true;
        let _ = sqlparser::ast::visit_expressions(c, |e: &Expr| {
            let found = match e {
                Expr::Subquery(q) => query_span(sql, q).and_then(|(a, z)| {
                    let (open, close) = parens_around(sql, a, z)?;
                    Some(Fold { span: (open, close), kind: FoldKind::Scalar { typed }, query: sql[a..z].to_string() })
                }),
                Expr::In { expr, target: InTarget::Subquery(subquery), negated, .. } => (|| {
                    let (a, z) = query_span(sql, subquery)?;
                    let (_, close) = parens_around(sql, a, z)?;
                    let (la, lz) = crate::sql::analyze::expr_byte_span(sql, expr.as_ref())?;
                    let kind = FoldKind::In { lhs: sql[la..lz].to_string(), negated: *negated };
                    Some(Fold { span: (la, close), kind, query: sql[a..z].to_string() })
                })(),
                Expr::Exists { subquery, negated } => (|| {
                    let (a, z) = query_span(sql, subquery)?;
                    let (open, close) = parens_around(sql, a, z)?;
                    let before = sql[..open].trim_end();
                    let mut start = before.len().checked_sub(6)?;
                    if !before.get(start..)?.eq_ignore_ascii_case("EXISTS") {
                        return None;
                    }
                    if *negated {
                        let b = sql[..start].trim_end();
                        start = b.len().checked_sub(3)?;
                        if !b.get(start..)?.eq_ignore_ascii_case("NOT") {
                            return None;
                        }
                    }
                    let kind = FoldKind::Exists { negated: *negated };
                    Some(Fold { span: (start, close), kind, query: sql[a..z].to_string() })
                })(),
                _ => return std::ops::ControlFlow::<()>::Continue(()),
            };
            match found {
                // nested in one found already (visited parent first): it runs with that one
                Some(f) if out.iter().any(|o| o.span.0 <= f.span.0 && f.span.1 <= o.span.1) => {}
                Some(f) => out.push(f),
                None => located = false,
            }
            std::ops::ControlFlow::Continue(())
        });
        if !located {
            return Vec::new();
        }
        // an unnamed item with subqueries written in keeps its own text as its name (the server's)
        if let (Some((a, z)), true) = (unnamed, out.len() > before) {
            let z = out[before..].iter().map(|f| f.span.1).max().unwrap_or(z).max(z);
            let a = out[before..].iter().map(|f| f.span.0).min().unwrap_or(a).min(a);
            let name = &sql[a..z];
            if name.chars().count() <= 255 {
                out.push(Fold { span: (z, z), kind: FoldKind::Name(name.to_string()), query: String::new() });
            }
        }
    }
    out.sort_by_key(|f| (f.span.0, f.span.1));
    out
}

/// Whether a query reads any table (anywhere in it).
fn reads_tables(q: &sqlparser::ast::Query) -> bool {
    sqlparser::ast::visit_relations(q, |_| std::ops::ControlFlow::Break(())).is_break()
}

/// A subquery's text (a span may stop inside its last call's argument list: what it opened is closed;
/// or short of its last term — `WHERE x IS NOT NULL` spans `x` —: a query in parentheses ends at the
/// one closing them).
fn query_span(sql: &str, q: &sqlparser::ast::Query) -> Option<(usize, usize)> {
    let (a, z) = crate::sql::analyze::expr_byte_span(sql, q)?;
    let before = sql[..a].trim_end();
    if !before.ends_with('(') {
        return Some((a, z));
    }
    let close = crate::sql::analyze::close_of(sql, before.len() - 1)?;
    let end = sql[..close - 1].trim_end().len();
    (end >= z).then_some((a, end))
}

/// The `(` before byte `a` and the end of the `)` after byte `z` (blanks between allowed).
fn parens_around(sql: &str, a: usize, z: usize) -> Option<(usize, usize)> {
    let before = sql[..a].trim_end();
    let after = &sql[z..];
    let skipped = after.len() - after.trim_start().len();
    (before.ends_with('(') && after.trim_start().starts_with(')')).then(|| (before.len() - 1, z + skipped + 1))
}

/// A value of a subquery's result written as a literal of the same value: numbers as they are, NULL,
/// other values as hex strings in their character set (`_utf8mb4 X'…'`: coercible, so the column
/// compared with keeps its collation), binary ones as `X'…'`.
pub fn literal(cell: &Option<Vec<u8>>, col: &ColumnInfo) -> String {
    let Some(v) = cell else { return "NULL".into() };
    if col.is_numeric() && !v.is_empty() && v.iter().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b)) {
        return String::from_utf8_lossy(v).into_owned();
    }
    let hex: String = v.iter().map(|x| format!("{x:02X}")).collect();
    if col.charset == 63 {
        return format!("X'{hex}'");
    }
    let c = mysql_common::collations::Collation::from(mysql_common::collations::CollationId::from(col.charset));
    match c.charset() {
        "" => format!("_utf8mb4 X'{hex}'"),
        cs => format!("_{cs} X'{hex}'"),
    }
}

/// `literal`, cast to the column's own type where a bare literal would have another (a derived
/// table's columns keep the types the client would see from one server).
fn typed_literal(cell: &Option<Vec<u8>>, col: &ColumnInfo) -> String {
    let v = literal(cell, col);
    if cell.is_none() {
        return typed_null(col);
    }
    let unsigned = col.flags & 32 != 0;
    let d = col.decimals.min(30);
    match col.ty {
        // a cast to SIGNED is INT or BIGINT by the value's length; beside the largest BIGINT it is BIGINT
        0x08 if unsigned => format!("COALESCE({v}, 18446744073709551615)"),
        0x08 => format!("COALESCE({v}, 9223372036854775807)"),
        0x00 | 0xF6 => format!("CAST({v} AS DECIMAL(65, {d}))"),
        0x04 | 0x05 => format!("CAST({v} AS DOUBLE)"),
        0x0A | 0x0E => format!("CAST({v} AS DATE)"),
        0x07 | 0x0C | 0x11 | 0x12 => format!("CAST({v} AS DATETIME({}))", d.min(6)),
        0x0B | 0x13 => format!("CAST({v} AS TIME({}))", d.min(6)),
        _ if v.starts_with('_') => match collation_name(col.charset) {
            Some(name) => format!("{v} COLLATE {name}"),
            None => v,
        },
        _ => v,
    }
}

/// NULL as a value of the column's type (a derived table's column that is NULL in every row keeps
/// its type, not NULL's).
fn typed_null(col: &ColumnInfo) -> String {
    let d = col.decimals.min(30);
    match col.ty {
        // (CAST(NULL AS SIGNED) is an INT; the other branch of an IF gives the type)
        0x08 if col.flags & 32 != 0 => "IF(FALSE, 18446744073709551615, NULL)".into(),
        0x08 => "IF(FALSE, 9223372036854775807, NULL)".into(),
        0x01..=0x03 | 0x09 => "IF(FALSE, 0, NULL)".into(),
        0x00 | 0xF6 => format!("CAST(NULL AS DECIMAL(65, {d}))"),
        0x04 | 0x05 => "CAST(NULL AS DOUBLE)".into(),
        0x0A | 0x0E => "CAST(NULL AS DATE)".into(),
        0x07 | 0x0C | 0x11 | 0x12 => format!("CAST(NULL AS DATETIME({}))", d.min(6)),
        0x0B | 0x13 => format!("CAST(NULL AS TIME({}))", d.min(6)),
        0x0F | 0xFC | 0xFD | 0xFE if col.charset == 63 => "CAST(NULL AS BINARY)".into(),
        0x0F | 0xFC | 0xFD | 0xFE => match collation_name(col.charset) {
            Some(name) => {
                // a VARCHAR: a NULL cast to CHAR is CHAR(0)
                let cs = name.split('_').next().unwrap_or("utf8mb4").to_string();
                format!("IF(FALSE, _{cs} X'20' COLLATE {name}, NULL)")
            }
            None => "NULL".into(),
        },
        _ => "NULL".into(),
    }
}

/// The name of a string column's collation, for ids MariaDB and the table mysql_common holds number
/// alike (below 255; MySQL 8's own start there).
fn collation_name(id: u16) -> Option<String> {
    if !(1..255).contains(&id) || id == 63 {
        return None;
    }
    let c = mysql_common::collations::Collation::resolve(mysql_common::collations::CollationId::from(id));
    Some(c.collation().to_string()).filter(|n| !n.is_empty())
}

/// What replaces subquery `f` given its result (columns, rows).
pub fn replacement(f: &Fold, cols: &[ColumnInfo], rows: &[Row]) -> Result<String> {
    if matches!(f.kind, FoldKind::Derived) {
        return Ok(derived_rows(cols, rows));
    }
    if !matches!(f.kind, FoldKind::Exists { .. } | FoldKind::Name(_)) && cols.len() != 1 {
        return Err(Error::sql(1241, "21000", "Operand should contain 1 column(s)"));
    }
    Ok(match &f.kind {
        FoldKind::Scalar { typed } => match rows {
            [] => "NULL".into(),
            [row] if *typed => typed_literal(&row.first().cloned().flatten(), &cols[0]),
            [row] => literal(&row.first().cloned().flatten(), &cols[0]),
            _ => return Err(Error::sql(1242, "21000", "Subquery returns more than 1 row")),
        },
        FoldKind::In { negated, .. } if rows.is_empty() => if *negated { "TRUE" } else { "FALSE" }.into(),
        FoldKind::In { lhs, negated } => {
            let list: Vec<String> = rows.iter().map(|r| literal(&r.first().cloned().flatten(), &cols[0])).collect();
            format!("{lhs} {}IN ({})", if *negated { "NOT " } else { "" }, list.join(", "))
        }
        FoldKind::Exists { negated } => if rows.is_empty() == *negated { "TRUE" } else { "FALSE" }.into(),
        FoldKind::Derived => derived_rows(cols, rows),
        FoldKind::Name(name) => format!(" AS `{}`", name.replace('`', "``")),
    })
}

/// A derived table's rows as a query of literals with its column names: `SELECT v1 AS c1, … UNION
/// ALL SELECT …`, or a row of NULLs cut by `LIMIT 0` when there is none.
pub(super) fn derived_rows(cols: &[ColumnInfo], rows: &[Row]) -> String {
    let name = |i: usize| format!("`{}`", cols[i].name.replace('`', "``"));
    if rows.is_empty() {
        let nulls: Vec<String> = (0..cols.len()).map(|i| format!("{} AS {}", typed_null(&cols[i]), name(i))).collect();
        return format!("SELECT {} LIMIT 0", nulls.join(", "));
    }
    let selects: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let vals: Vec<String> = (0..cols.len())
                .map(|i| {
                    let v = typed_literal(&row.get(i).cloned().flatten(), &cols[i]);
                    if r == 0 {
                        format!("{v} AS {}", name(i))
                    } else {
                        v
                    }
                })
                .collect();
            format!("SELECT {}", vals.join(", "))
        })
        .collect();
    selects.join(" UNION ALL ")
}

/// `sql` with every fold's text replaced by its replacement (`folds` in text order, not overlapping).
pub fn apply(sql: &str, folds: &[Fold], replacements: &[String]) -> String {
    splice(sql, folds.iter().map(|f| f.span).zip(replacements.iter().map(String::as_str)))
}

/// `sql` with each span replaced by its text (spans in text order, not overlapping).
pub fn splice<'a>(sql: &str, edits: impl IntoIterator<Item = ((usize, usize), &'a str)>) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for ((a, z), r) in edits {
        out.push_str(&sql[at..a]);
        out.push_str(r);
        at = z;
    }
    out.push_str(&sql[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    fn folds(sql: &str) -> Vec<Fold> {
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        find(sql, &stmt)
    }

    fn select(sql: &str) -> sqlparser::ast::Select {
        let Statement::Query(q) = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0) else { panic!() };
        let SetExpr::Select(s) = *q.body else { panic!() };
        *s
    }

    /// The WHERE terms that narrow the first table alone: qualified by it, no subquery, no bare name.
    #[test]
    fn narrowing_terms_are_those_of_the_first_table_alone() {
        let sql = "SELECT * FROM a x JOIN b y ON y.k = x.k WHERE x.n > 3 AND (y.m = 1 OR x.n = 2) AND UPPER(x.s) LIKE 'A%' AND n = 4 AND x.k IN (SELECT k FROM c) AND (x.q = 1 AND x.r = 2)";
        let s = select(sql);
        assert_eq!(
            first_only_conjuncts(sql, s.selection.as_ref(), "x"),
            vec!["(x.n > 3)", "(UPPER(x.s) LIKE 'A%')", "(x.q = 1)", "(x.r = 2)"]
        );
        assert!(first_only_conjuncts(sql, s.selection.as_ref(), "y").is_empty());
    }

    /// A join key: a column of the joined table equal to an expression of the first table alone,
    /// either way round, among the ON's AND terms.
    #[test]
    fn join_keys_equate_a_joined_column_with_the_first_table() {
        let on = |sql: &str| {
            let s = select(sql);
            let j = &s.from[0].joins[0];
            let (JoinOperator::Join(JoinConstraint::On(e)) | JoinOperator::Left(JoinConstraint::On(e))) =
                &j.join_operator
            else {
                panic!()
            };
            join_key(sql, e, "y", "x")
        };
        assert_eq!(on("SELECT 1 FROM a x JOIN b y ON y.k = x.k"), Some(("`k`".into(), "x.k".into())));
        assert_eq!(
            on("SELECT 1 FROM a x LEFT JOIN b y ON y.m > 2 AND x.k % 7 + 1 = y.`K`"),
            Some(("`K`".into(), "x.k % 7 + 1".into()))
        );
        assert_eq!(on("SELECT 1 FROM a x JOIN b y ON y.k > x.k"), None);
        assert_eq!(on("SELECT 1 FROM a x JOIN b y ON y.k = x.k + y.j"), None);
        assert_eq!(on("SELECT 1 FROM a x JOIN b y ON y.k = k"), None);
        assert_eq!(on("SELECT 1 FROM a x JOIN b y ON y.k = x.k OR y.k = 1"), None);
    }

    /// A subquery whose span stops short of its last term ends at its closing parenthesis.
    #[test]
    fn a_subquery_ends_where_its_parentheses_close() {
        let sql = "SELECT id FROM t WHERE a IN (SELECT a FROM u WHERE b IS NOT NULL AND c <> ')') AND d = 1";
        let f = folds(sql);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].query, "SELECT a FROM u WHERE b IS NOT NULL AND c <> ')'");
        assert_eq!(&sql[f[0].span.0..f[0].span.1], "a IN (SELECT a FROM u WHERE b IS NOT NULL AND c <> ')')");
    }

    #[test]
    fn finds_the_outermost_subqueries_of_the_conditions() {
        let sql = "SELECT * FROM p WHERE sku = (SELECT 'S-1') AND id NOT IN ( SELECT pid FROM o WHERE x IN (SELECT y FROM z) ) OR NOT EXISTS (SELECT 1 FROM q WHERE f(a) > 1)";
        let f = folds(sql);
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].query, "SELECT 'S-1'");
        assert_eq!(&sql[f[0].span.0..f[0].span.1], "(SELECT 'S-1')");
        assert_eq!(f[1].query, "SELECT pid FROM o WHERE x IN (SELECT y FROM z)");
        assert_eq!(f[1].kind, FoldKind::In { lhs: "id".into(), negated: true });
        assert_eq!(&sql[f[1].span.0..f[1].span.1], "id NOT IN ( SELECT pid FROM o WHERE x IN (SELECT y FROM z) )");
        assert_eq!(f[2].query, "SELECT 1 FROM q WHERE f(a) > 1");
        assert_eq!(&sql[f[2].span.0..f[2].span.1], "NOT EXISTS (SELECT 1 FROM q WHERE f(a) > 1)");
        let sel = "SELECT (SELECT 1), a, (SELECT MAX(x) FROM u) + 1 AS b FROM t";
        let f = folds(sel);
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].kind, FoldKind::Scalar { typed: true });
        assert_eq!(f[1].kind, FoldKind::Name("(SELECT 1)".into()), "an unnamed item keeps its text as its name");
        assert_eq!((f[1].span.0, f[1].span.1), (f[0].span.1, f[0].span.1));
        assert_eq!(&sel[f[2].span.0..f[2].span.1], "(SELECT MAX(x) FROM u)");
        let d = "SELECT COUNT(*) FROM (SELECT city, COUNT(*) AS n FROM c GROUP BY city) d WHERE d.n > (SELECT 1)";
        let f = folds(d);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].kind.clone(), f[0].query.as_str()),
            (FoldKind::Derived, "SELECT city, COUNT(*) AS n FROM c GROUP BY city")
        );
        let g = folds("SELECT a FROM t JOIN u ON u.id = t.id AND u.k IN (SELECT k FROM v) GROUP BY a HAVING COUNT(*) > (SELECT 2)");
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn results_become_literals() {
        let num = ColumnInfo { name: String::new(), ty: 0x08, flags: 0, decimals: 0, charset: 63 };
        let text = ColumnInfo { name: String::new(), ty: 0xFD, flags: 0, decimals: 0, charset: 45 };
        let sql = "SELECT * FROM t WHERE a IN (SELECT b FROM u) AND c = (SELECT d FROM v)";
        let f = folds(sql);
        let r1 = replacement(&f[0], std::slice::from_ref(&num), &[vec![Some(b"1".to_vec())], vec![None]]).unwrap();
        let r2 = replacement(&f[1], std::slice::from_ref(&text), &[vec![Some(b"it's".to_vec())]]).unwrap();
        assert_eq!(apply(sql, &f, &[r1, r2]), "SELECT * FROM t WHERE a IN (1, NULL) AND c = _utf8mb4 X'69742773'");
        assert_eq!(replacement(&f[0], std::slice::from_ref(&num), &[]).unwrap(), "FALSE");
        let two = [vec![Some(b"1".to_vec())], vec![Some(b"2".to_vec())]];
        assert_eq!(replacement(&f[1], std::slice::from_ref(&num), &two).unwrap_err().code_and_state().0, 1242);
        assert_eq!(replacement(&f[1], &[num.clone(), num.clone()], &[]).unwrap_err().code_and_state().0, 1241);
        assert_eq!(replacement(&f[1], std::slice::from_ref(&num), &[]).unwrap(), "NULL");
    }
}
