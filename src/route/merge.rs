//! Planning a cross-shard merge for a SELECT: the statement each shard runs (the client's text with
//! hidden helper columns appended — sort keys, collation weights, partial aggregates) and what the
//! proxy does with the rows: k-way merge by ORDER BY, aggregation by GROUP BY, DISTINCT, LIMIT.

use sqlparser::ast::{
    Distinct, DuplicateTreatment, Expr, FunctionArguments, GroupByExpr, LimitClause, OrderByKind, OrderBySort, Query,
    SelectItem, SetExpr, Value,
};

use super::condition::{Binder, Lit};
use crate::error::{Error, Result};
use crate::sql::analyze::expr_byte_span;

/// A column of the shards' result: one the client sees, or a hidden helper (counted from the first
/// hidden column, which follows the client's columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColRef {
    Visible(usize),
    Hidden(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub col: ColRef,
    /// `WEIGHT_STRING(key)`: compared instead of the value when the key is a string.
    pub weight: ColRef,
    pub desc: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggKind {
    Count,
    Sum,
    /// MIN/MAX compare strings by the weight column.
    Min {
        weight: ColRef,
    },
    Max {
        weight: ColRef,
    },
    /// AVG's value is recomputed from hidden SUM and COUNT columns.
    Avg {
        sum: ColRef,
        count: ColRef,
    },
    /// COUNT/SUM/AVG(DISTINCT …): the shards group by the arguments too and send each distinct value
    /// (hidden columns, with their weights); the proxy counts or adds each value once per group.
    /// `sorted`: the rows reach the proxy ordered by the group and these arguments (the plan's
    /// `feed`), so a value is new when it differs from the last one; otherwise the group keeps a set.
    Distinct {
        func: DistinctFn,
        args: Vec<GroupKey>,
        sorted: bool,
    },
    /// GROUP_CONCAT: the shards group by its arguments and ORDER BY expressions too; the rows reach the
    /// proxy ordered by the group keys and the first GROUP_CONCAT's ORDER BY (the plan's `feed`), and
    /// each group's values are joined in that order, cut at the shards' `@@group_concat_max_len`.
    Concat {
        distinct: bool,
        args: Vec<GroupKey>,
        /// `COUNT(*)` of the shard's finer group: how many rows had this value (not with DISTINCT).
        times: Option<ColRef>,
        /// The SEPARATOR literal as the shards send it back (`,` without one).
        sep: Option<ColRef>,
        /// `@@group_concat_max_len` as the shard's session has it.
        max_len: ColRef,
        /// GROUP_CONCAT's own `LIMIT n`.
        limit: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistinctFn {
    Count,
    Sum,
    Avg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggSpec {
    pub col: usize,
    pub kind: AggKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupKey {
    pub col: ColRef,
    pub weight: ColRef,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MergePlan {
    /// What every shard runs.
    pub shard_sql: String,
    /// How many hidden columns follow the client's columns.
    pub hidden: usize,
    pub order: Vec<SortKey>,
    /// Grouping (GROUP BY, DISTINCT, or aggregates over the whole table when empty).
    pub group: Option<Vec<GroupKey>>,
    pub aggs: Vec<AggSpec>,
    /// (offset, count) applied by the proxy after merging.
    pub limit: Option<(u64, u64)>,
    /// HAVING, evaluated by the proxy on the merged groups.
    pub having: Option<Having>,
    /// The order the shards' rows are merged in before they are grouped (DISTINCT aggregates: the
    /// group keys, then the first one's arguments); empty: read shard after shard.
    pub feed: Vec<SortKey>,
    /// The text of every column of the shards' result, client's then hidden (what EXPLAIN names
    /// them by).
    pub labels: Vec<String>,
    /// Per hidden column: when it is a weight, the hidden column naming the collation its value is
    /// compared by while the weight is NULL (`Builder::weigh`).
    pub collation_of: Vec<Option<usize>>,
    /// `shard_sql` with NULL for every collation and weight column: what the shards run once the
    /// proxy learned what those columns say for this statement (`exec::learned`). It also names the
    /// statement in what was learned.
    pub lean_sql: Option<String>,
    /// Set when the shards run `lean_sql`: the collation of each hidden weight column, as learned.
    pub told: Option<std::sync::Arc<[Option<crate::exec::collation::Collation>]>>,
    /// A DISTINCT whose ORDER BY names exactly its columns: the shards' sorted rows are merged by ORDER
    /// BY and a row is kept when it differs from the last one kept — streamed, one row held per shard.
    pub distinct_sorted: bool,
}

impl MergePlan {
    /// Rows from every node one after the other, nothing added or merged: what lets the proxy send a
    /// plain read's text rows in the binary protocol.
    pub fn concatenation(sql: &str) -> MergePlan {
        MergePlan {
            shard_sql: sql.to_string(),
            hidden: 0,
            order: Vec::new(),
            group: None,
            aggs: Vec::new(),
            limit: None,
            having: None,
            feed: Vec::new(),
            labels: Vec::new(),
            collation_of: Vec::new(),
            lean_sql: None,
            told: None,
            distinct_sorted: false,
        }
    }

    /// Every string key's (weight column, value column): what a run learns from.
    pub fn weighed(&self) -> Vec<(usize, ColRef)> {
        let mut out: Vec<(usize, ColRef)> = Vec::new();
        let mut add = |weight: ColRef, value: ColRef| {
            if let ColRef::Hidden(j) = weight {
                if !out.iter().any(|(w, _)| *w == j) {
                    out.push((j, value));
                }
            }
        };
        for k in self.order.iter().chain(&self.feed) {
            add(k.weight, k.col);
        }
        for g in self.group.iter().flatten() {
            add(g.weight, g.col);
        }
        for a in &self.aggs {
            match &a.kind {
                AggKind::Min { weight } | AggKind::Max { weight } => add(*weight, ColRef::Visible(a.col)),
                AggKind::Distinct { args, .. } | AggKind::Concat { args, .. } => {
                    for g in args {
                        add(g.weight, g.col);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The text of column `c` (its position when unknown).
    pub fn label(&self, c: ColRef) -> String {
        let i = match c {
            ColRef::Visible(i) => i,
            ColRef::Hidden(j) => self.labels.len().saturating_sub(self.hidden) + j,
        };
        self.labels.get(i).cloned().unwrap_or_else(|| match c {
            ColRef::Visible(i) => format!("column {}", i + 1),
            ColRef::Hidden(j) => format!("helper {}", j + 1),
        })
    }
}

/// A HAVING condition and the result columns its aggregates and columns are read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Having {
    pub expr: Expr,
    /// The statement text the expression's spans point into.
    pub sql: String,
    /// (lower-cased text of a sub-expression, absolute column index).
    pub refs: Vec<(String, usize)>,
}

fn refuse(what: &str) -> Error {
    Error::unsupported(format!("cross-shard SELECT with {what} is not supported by shardcat yet"))
}

const AGGREGATES: &[&str] = &[
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "GROUP_CONCAT",
    "BIT_AND",
    "BIT_OR",
    "BIT_XOR",
    "STD",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "JSON_ARRAYAGG",
    "JSON_OBJECTAGG",
];

fn func_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Function(f) if f.over.is_none() => Some(f.name.to_string().to_ascii_uppercase()),
        _ => None,
    }
}

pub(crate) fn contains_aggregate(e: &Expr) -> bool {
    sqlparser::ast::visit_expressions(e, |x: &Expr| match func_name(x) {
        Some(n) if AGGREGATES.contains(&n.as_str()) => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    })
    .is_break()
}

/// The function's single argument text, and whether it is `DISTINCT`.
fn agg_arg<'a>(sql: &'a str, e: &Expr) -> Option<(Option<&'a str>, bool)> {
    let Expr::Function(f) = e else { return None };
    let FunctionArguments::List(l) = &f.args else { return None };
    let distinct = matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    match l.args.as_slice() {
        [a] => {
            let text = match a {
                sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Wildcard) => None,
                sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(x)) => {
                    let (s, t) = crate::sql::analyze::expr_text_span(sql, x)?;
                    Some(&sql[s..t])
                }
                _ => return None,
            };
            Some((text, distinct))
        }
        _ => None,
    }
}

fn same_texts(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// How GROUP_CONCAT `e` is merged: its arguments, ORDER BY expressions, a `COUNT(*)` (without
/// DISTINCT) and `@@group_concat_max_len` become hidden columns and the shards group by the first two.
fn concat_kind(b: &mut Builder<'_>, e: &Expr, context: &str) -> Result<AggKind> {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArgumentClause};
    let Expr::Function(f) = e else { return Err(refuse(&format!("GROUP_CONCAT{context}"))) };
    let FunctionArguments::List(l) = &f.args else { return Err(refuse(&format!("GROUP_CONCAT(){context}"))) };
    let distinct = matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let mut args = Vec::with_capacity(l.args.len());
    let mut arg_texts = Vec::with_capacity(l.args.len());
    for a in &l.args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a else {
            return Err(refuse(&format!("GROUP_CONCAT(*){context}")));
        };
        let t = b.text(x)?;
        args.push(GroupKey { col: b.add(t.clone()), weight: b.weigh(&t) });
        b.group_by_too(&t);
        arg_texts.push(t);
    }
    let mut sep = None;
    let mut limit = None;
    let mut order: Vec<(String, SortKey)> = Vec::new();
    for c in &l.clauses {
        match c {
            FunctionArgumentClause::OrderBy(list) => {
                for o in list {
                    let numeric = matches!(&o.expr, Expr::Value(v) if matches!(v.value, Value::Number(..)));
                    if numeric || o.options.nulls_first.is_some() {
                        return Err(refuse(&format!(
                            "GROUP_CONCAT(… ORDER BY a position or NULLS FIRST/LAST){context}"
                        )));
                    }
                    let t = b.text(&o.expr)?;
                    let desc = matches!(o.options.sort, Some(OrderBySort::Desc));
                    let key = SortKey { col: b.add(t.clone()), weight: b.weigh(&t), desc };
                    b.group_by_too(&t);
                    order.push((if desc { format!("{t} DESC") } else { t }, key));
                }
            }
            FunctionArgumentClause::Separator(v) => {
                // the shards send the separator back in the result's character set
                let (a, z) = crate::sql::analyze::byte_span(b.sql, v.span)
                    .filter(|_| matches!(v.value, Value::SingleQuotedString(_) | Value::DoubleQuotedString(_)))
                    .ok_or_else(|| refuse(&format!("GROUP_CONCAT(… SEPARATOR that is not a string){context}")))?;
                sep = Some(b.add(b.sql[a..z].to_string()));
            }
            FunctionArgumentClause::Limit(Expr::Value(v)) if matches!(v.value, Value::Number(..)) => {
                let Value::Number(n, _) = &v.value else { continue };
                limit = Some(n.parse().map_err(|_| refuse("a GROUP_CONCAT LIMIT that is not a count"))?);
            }
            _ => return Err(refuse(&format!("GROUP_CONCAT with this clause{context}"))),
        }
    }
    let order_texts: Vec<String> = order.iter().map(|(t, _)| t.clone()).collect();
    match &b.primary {
        None => {
            let mut keys: Vec<SortKey> = order.iter().map(|(_, k)| *k).collect();
            keys.extend(args.iter().map(|k| SortKey { col: k.col, weight: k.weight, desc: false }));
            b.primary = Some(Primary {
                texts: order_texts.iter().cloned().chain(arg_texts).collect(),
                keys,
                distinct: None,
                concat_order: Some(order_texts),
            });
        }
        // rows merged in another GROUP_CONCAT's order serve one without ORDER BY or with the same
        Some(p) if p.concat_order.as_deref().is_some_and(|o| order_texts.is_empty() || same_texts(o, &order_texts)) => {
        }
        Some(_) => {
            return Err(refuse(&format!("GROUP_CONCAT ordered unlike the statement's first one{context}")));
        }
    }
    let times = if distinct { None } else { Some(b.add("COUNT(*)".to_string())) };
    let max_len = b.add("@@group_concat_max_len".to_string());
    Ok(AggKind::Concat { distinct, args, times, sep, max_len, limit })
}

/// The argument texts of an aggregate called with DISTINCT; `None` without DISTINCT.
fn distinct_args(sql: &str, e: &Expr) -> Result<Option<Vec<String>>> {
    let Expr::Function(f) = e else { return Ok(None) };
    let FunctionArguments::List(l) = &f.args else { return Ok(None) };
    if !matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct)) {
        return Ok(None);
    }
    if !l.clauses.is_empty() {
        return Err(refuse("a DISTINCT aggregate with ORDER BY or SEPARATOR"));
    }
    let mut out = Vec::with_capacity(l.args.len());
    for a in &l.args {
        let sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(x)) = a else {
            return Err(refuse("a DISTINCT aggregate of *"));
        };
        let (s, t) = crate::sql::analyze::expr_text_span(sql, x)
            .ok_or_else(|| refuse("an expression shardcat cannot locate in the text"))?;
        out.push(sql[s..t].to_string());
    }
    Ok(Some(out))
}

fn literal_u64(binder: &Binder, e: &Expr) -> Option<u64> {
    if matches!(e, Expr::Value(v) if matches!(v.value, Value::Placeholder(_))) {
        return None;
    }
    match binder.literal(e)? {
        Lit::Text(t) => t.parse().ok(),
        Lit::Null => None,
    }
}

/// How aggregate `e` (function `name`, statement text `text`) is merged, adding the hidden columns it
/// needs; `context` ends the refusals' wording (" in HAVING").
fn agg_kind(b: &mut Builder<'_>, e: &Expr, name: &str, text: &str, context: &str) -> Result<AggKind> {
    if name == "GROUP_CONCAT" {
        return concat_kind(b, e, context);
    }
    // MIN/MAX(DISTINCT x) are MIN/MAX(x)
    let distinct = if matches!(name, "MIN" | "MAX") { None } else { distinct_args(b.sql, e)? };
    if let Some(texts) = distinct {
        let func = match name {
            "COUNT" => DistinctFn::Count,
            "SUM" if texts.len() == 1 => DistinctFn::Sum,
            "AVG" if texts.len() == 1 => DistinctFn::Avg,
            _ => return Err(refuse(&format!("{name}(DISTINCT …){context}"))),
        };
        let mut args = Vec::with_capacity(texts.len());
        for t in &texts {
            args.push(GroupKey { col: b.add(t.clone()), weight: b.weigh(t) });
            b.group_by_too(t);
        }
        let sorted = match &b.primary {
            None => {
                b.primary = Some(Primary {
                    texts: texts.clone(),
                    keys: args.iter().map(|k| SortKey { col: k.col, weight: k.weight, desc: false }).collect(),
                    distinct: Some(texts.clone()),
                    concat_order: None,
                });
                true
            }
            Some(p) => p.distinct.as_deref().is_some_and(|p| same_texts(p, &texts)),
        };
        return Ok(AggKind::Distinct { func, args, sorted });
    }
    let (arg, _) = agg_arg(b.sql, e).ok_or_else(|| refuse(&format!("{name} with several arguments")))?;
    Ok(match name {
        "COUNT" => AggKind::Count,
        "SUM" => AggKind::Sum,
        "MIN" => AggKind::Min { weight: b.weigh(text) },
        "MAX" => AggKind::Max { weight: b.weigh(text) },
        "AVG" => {
            let arg = arg.ok_or_else(|| refuse("AVG(*)"))?;
            AggKind::Avg { sum: b.add(format!("SUM({arg})")), count: b.add(format!("COUNT({arg})")) }
        }
        other => return Err(refuse(&format!("{other}(){context}"))),
    })
}

/// Where the select list whose last item starts at `from` ends: before the top-level FROM after it
/// (trailing blanks excluded).
fn select_list_end(sql: &str, from: usize) -> Option<usize> {
    let mut quotes = crate::sql::analyze::Quotes::default();
    let mut depth = 0i32;
    let rest = sql.get(from..)?;
    let bytes = rest.as_bytes();
    let mut prev_word = false;
    for (i, c) in rest.char_indices() {
        if !quotes.outside(c) {
            prev_word = false;
            continue;
        }
        // the scan may start inside the item (depth below 0 once its parenthesis closes)
        let word_start = depth <= 0 && !prev_word && rest.get(i..i + 4).is_some_and(|w| w.eq_ignore_ascii_case("FROM"));
        if word_start && bytes.get(i + 4).is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_')) {
            return Some(from + rest[..i].trim_end().len());
        }
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        prev_word = c.is_alphanumeric() || c == '_' || c == '$';
    }
    None
}

struct Builder<'a> {
    sql: &'a str,
    hidden: Vec<String>,
    /// (weight column, the column naming its collation), hidden indexes.
    collations: Vec<(usize, usize)>,
    /// DISTINCT aggregates' and GROUP_CONCAT's argument (and ORDER BY) texts: the shards group by
    /// them too.
    distinct_args: Vec<String>,
    /// The aggregate whose order the rows are merged in (after the group keys).
    primary: Option<Primary>,
}

/// The first GROUP_CONCAT, or else the first DISTINCT aggregate: the shards order their rows by its
/// ORDER BY and arguments after the group keys, and the proxy merges them in that order.
struct Primary {
    /// The shards' ORDER BY texts (`x DESC` included).
    texts: Vec<String>,
    keys: Vec<SortKey>,
    /// A DISTINCT aggregate's arguments (it is the primary of the others with the same ones).
    distinct: Option<Vec<String>>,
    /// A GROUP_CONCAT's ORDER BY (others may share it).
    concat_order: Option<Vec<String>>,
}

impl Builder<'_> {
    /// Another text the shards group by.
    fn group_by_too(&mut self, t: &str) {
        if !self.distinct_args.iter().any(|x| x.eq_ignore_ascii_case(t)) {
            self.distinct_args.push(t.to_string());
        }
    }

    fn add(&mut self, expr: String) -> ColRef {
        if let Some(i) = self.hidden.iter().position(|h| *h == expr) {
            return ColRef::Hidden(i);
        }
        self.hidden.push(expr);
        ColRef::Hidden(self.hidden.len() - 1)
    }

    /// The hidden columns a string key is compared by: the collation of `t`, and its WEIGHT_STRING
    /// unless the proxy knows that collation and the values arrive unconverted (`CHARSET(t) =
    /// @@character_set_results`): it then compares the values itself (`exec::collation`, PAD SPACE
    /// included); the weight's column.
    fn weigh(&mut self, t: &str) -> ColRef {
        // the names, quoted and listed once per process
        static KNOWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let known = KNOWN.get_or_init(|| {
            crate::exec::collation::KNOWN.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
        });
        let c = self.add(format!("COLLATION({t})"));
        let w = self.add(format!(
            "IF(COLLATION({t}) IN ({known}) AND CHARSET({t}) = @@character_set_results, NULL, WEIGHT_STRING({t}))"
        ));
        if let (ColRef::Hidden(c), ColRef::Hidden(w)) = (c, w) {
            if !self.collations.iter().any(|(x, _)| *x == w) {
                self.collations.push((w, c));
            }
        }
        w
    }

    /// For every hidden column that is a weight, the hidden column naming its collation.
    fn collation_of(&self) -> Vec<Option<usize>> {
        (0..self.hidden.len()).map(|j| self.collations.iter().find(|(w, _)| *w == j).map(|(_, c)| *c)).collect()
    }

    fn text(&self, e: &Expr) -> Result<String> {
        let (a, b) = crate::sql::analyze::expr_text_span(self.sql, e)
            .ok_or_else(|| refuse("an expression shardcat cannot locate in the text"))?;
        Ok(self.sql[a..b].to_string())
    }
}

/// Plans the merge of a multi-shard SELECT whose shape needs one (`what` says why).
pub fn plan(sql: &str, q: &Query, binder: &Binder) -> Result<MergePlan> {
    let SetExpr::Select(s) = q.body.as_ref() else { return Err(refuse("UNION or a parenthesized query")) };
    if q.with.is_some() {
        return Err(refuse("WITH"));
    }
    if !q.locks.is_empty() {
        return Err(refuse("FOR UPDATE"));
    }
    let mut b = Builder { sql, hidden: Vec::new(), collations: Vec::new(), distinct_args: Vec::new(), primary: None };
    // the client's columns: expressions (with their text) or a wildcard
    let mut items: Vec<Option<(&Expr, Option<String>)>> = Vec::new();
    for it in &s.projection {
        match it {
            SelectItem::UnnamedExpr(e) => items.push(Some((e, None))),
            SelectItem::ExprWithAlias { expr, alias } => items.push(Some((expr, Some(alias.value.clone())))),
            _ => items.push(None),
        }
    }
    let wildcard = items.iter().any(Option::is_none);
    let resolve = |e: &Expr, b: &mut Builder<'_>| -> Result<(ColRef, String)> {
        // a position, an alias of a select item, the same text as a select item, or a hidden column
        if let Expr::Value(v) = e {
            if let Value::Number(n, _) = &v.value {
                let i: usize = n.parse().map_err(|_| refuse("a non-integer position"))?;
                if wildcard || i == 0 || i > items.len() {
                    return Err(refuse("a column position next to *"));
                }
                let (ie, _) = items[i - 1].as_ref().ok_or_else(|| refuse("a position of *"))?;
                return Ok((ColRef::Visible(i - 1), b.text(ie)?));
            }
        }
        if let Expr::Identifier(id) = e {
            for (i, it) in items.iter().enumerate() {
                if let Some((ie, Some(alias))) = it {
                    if alias.eq_ignore_ascii_case(&id.value) {
                        if wildcard {
                            return Err(refuse("an alias next to *"));
                        }
                        return Ok((ColRef::Visible(i), b.text(ie)?));
                    }
                }
            }
        }
        let text = b.text(e)?;
        if !wildcard {
            for (i, it) in items.iter().enumerate() {
                if let Some((ie, _)) = it {
                    if b.text(ie)?.eq_ignore_ascii_case(&text) {
                        return Ok((ColRef::Visible(i), text));
                    }
                }
            }
        }
        Ok((b.add(text.clone()), text))
    };

    // aggregates among the client's columns (GROUP_CONCATs first: the first one orders the merge)
    let mut aggs = Vec::new();
    for concats in [true, false] {
        for (i, it) in items.iter().enumerate() {
            let Some((e, _)) = it else { continue };
            match func_name(e).filter(|n| AGGREGATES.contains(&n.as_str())) {
                Some(name) if (name == "GROUP_CONCAT") == concats => {
                    let text = b.text(e)?;
                    let kind = agg_kind(&mut b, e, &name, &text, "")?;
                    aggs.push(AggSpec { col: i, kind });
                }
                Some(_) => {}
                None if concats && contains_aggregate(e) => return Err(refuse("an aggregate inside an expression")),
                None => {}
            }
        }
    }
    if !aggs.is_empty() && wildcard {
        return Err(refuse("* next to aggregates"));
    }

    // grouping: GROUP BY, DISTINCT, or plain aggregates (one group)
    let group_exprs: Vec<&Expr> = match &s.group_by {
        GroupByExpr::Expressions(e, mods) if mods.is_empty() => e.iter().collect(),
        _ => return Err(refuse("GROUP BY ALL or WITH ROLLUP")),
    };
    let distinct = match &s.distinct {
        None | Some(Distinct::All) => false,
        Some(Distinct::Distinct) => true,
        Some(_) => return Err(refuse("DISTINCT ON")),
    };
    let group = if distinct {
        if wildcard || !aggs.is_empty() || !group_exprs.is_empty() {
            return Err(refuse("DISTINCT with *, aggregates or GROUP BY"));
        }
        let mut keys = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let Some((e, _)) = it else { continue };
            let text = b.text(e)?;
            keys.push(GroupKey { col: ColRef::Visible(i), weight: b.weigh(&text) });
        }
        Some(keys)
    } else if !group_exprs.is_empty() {
        let mut keys = Vec::new();
        for e in &group_exprs {
            let (col, text) = resolve(e, &mut b)?;
            keys.push(GroupKey { col, weight: b.weigh(&text) });
        }
        Some(keys)
    } else if !aggs.is_empty() {
        Some(Vec::new())
    } else {
        None
    };

    // HAVING: its aggregates and columns become (hidden) result columns; the proxy evaluates it
    let having = match &s.having {
        None => None,
        Some(h) => {
            if wildcard {
                return Err(refuse("HAVING next to *"));
            }
            if group.is_none() {
                return Err(refuse("HAVING without GROUP BY or aggregates"));
            }
            let mut refs: Vec<(String, usize)> = Vec::new();
            let mut agg_spans: Vec<(usize, usize)> = Vec::new();
            let mut found: Vec<Expr> = Vec::new();
            let _ = sqlparser::ast::visit_expressions(h, |e: &Expr| {
                if func_name(e).is_some() || matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                    found.push(e.clone());
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            for e in &found {
                let span = expr_byte_span(sql, e);
                let is_agg = func_name(e).is_some_and(|n| AGGREGATES.contains(&n.as_str()));
                let is_col = matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
                if !is_agg && !is_col {
                    continue;
                }
                if is_col && span.is_some_and(|(a, z)| agg_spans.iter().any(|(x, y)| *x <= a && z <= *y)) {
                    continue; // a column inside an aggregate's argument
                }
                let text = b.text(e)?;
                if is_agg {
                    if let Some((a, z)) = span {
                        agg_spans.push((a, z));
                    }
                }
                let visible = items.iter().position(|it| {
                    it.as_ref().is_some_and(|(ie, alias)| {
                        b.text(ie).is_ok_and(|t| t.eq_ignore_ascii_case(&text))
                            || matches!((e, alias), (Expr::Identifier(id), Some(a)) if a.eq_ignore_ascii_case(&id.value))
                    })
                });
                let col = match visible {
                    Some(i) => i,
                    None => {
                        let ColRef::Hidden(j) = b.add(text.clone()) else { continue };
                        let abs = items.len() + j;
                        if is_agg {
                            let name = func_name(e).unwrap_or_default();
                            let kind = agg_kind(&mut b, e, &name, &text, " in HAVING")?;
                            aggs.push(AggSpec { col: abs, kind });
                        }
                        abs
                    }
                };
                refs.push((text.to_ascii_lowercase(), col));
            }
            Some(Having { expr: h.clone(), sql: sql.to_string(), refs })
        }
    };

    // ORDER BY
    let mut order = Vec::new();
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(list) = &ob.kind else { return Err(refuse("ORDER BY ALL")) };
        for o in list {
            if o.options.nulls_first.is_some() || matches!(o.options.sort, Some(OrderBySort::Using(_))) {
                return Err(refuse("NULLS FIRST/LAST"));
            }
            if contains_aggregate(&o.expr) && resolve_visible_only(&o.expr, &items, &b)?.is_none() {
                return Err(refuse("ORDER BY an aggregate that is not selected"));
            }
            let (col, text) = resolve(&o.expr, &mut b)?;
            if distinct && matches!(col, ColRef::Hidden(_)) {
                return Err(refuse("DISTINCT with ORDER BY a column that is not selected"));
            }
            let weight = b.weigh(&text);
            order.push(SortKey { col, weight, desc: matches!(o.options.sort, Some(OrderBySort::Desc)) });
        }
    }

    // DISTINCT ordered by exactly its columns: equal rows arrive next to each other in the merged order
    let distinct_sorted = distinct
        && s.having.is_none()
        && group.as_ref().is_some_and(|g| {
            !g.is_empty()
                && g.iter().all(|k| order.iter().any(|o| o.col == k.col))
                && order.iter().all(|o| g.iter().any(|k| k.col == o.col))
        });

    // a joined GROUP_CONCAT has no weight from the shards to sort by
    for o in &order {
        if aggs.iter().any(|a| ColRef::Visible(a.col) == o.col && matches!(a.kind, AggKind::Concat { .. })) {
            return Err(refuse("ORDER BY a GROUP_CONCAT"));
        }
    }

    // LIMIT: literal numbers; the proxy applies it after merging
    let limit = match &q.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset { limit: Some(l), offset, .. }) => {
            let n = literal_u64(binder, l).ok_or_else(|| refuse("a LIMIT that is not a literal"))?;
            let m = match offset {
                Some(o) => literal_u64(binder, &o.value).ok_or_else(|| refuse("an OFFSET that is not a literal"))?,
                None => 0,
            };
            Some((m, n))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => Some((
            literal_u64(binder, offset).ok_or_else(|| refuse("an OFFSET that is not a literal"))?,
            literal_u64(binder, limit).ok_or_else(|| refuse("a LIMIT that is not a literal"))?,
        )),
        Some(_) => return Err(refuse("LIMIT ALL")),
    };

    // the shards' statement: hidden columns after the select list; LIMIT m+n for a plain ordered
    // merge, no LIMIT when groups are merged (a group may span shards)
    let mut shard_sql = sql.to_string();
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    // the hidden columns' text, and the same with NULLs for what a run learns (`lean_sql`)
    let mut lean_cols: Option<(String, String)> = None;
    let mut feed = Vec::new();
    if let (Some(keys), Some(primary)) = (&group, &b.primary) {
        // DISTINCT aggregates: the shards group by the arguments too and send their groups ordered
        // by the group keys, then the first one's arguments; HAVING, ORDER BY and LIMIT are the
        // proxy's (everything after GROUP BY is replaced)
        let group_texts: Vec<String> = group_exprs.iter().map(|e| b.text(e)).collect::<Result<_>>()?;
        let cut = match group_exprs.last() {
            Some(e) => {
                crate::sql::analyze::expr_text_span(sql, e)
                    .ok_or_else(|| refuse("a GROUP BY shardcat cannot locate"))?
                    .1
            }
            None => {
                let at = tail_start(sql, q, s).ok_or_else(|| refuse("a clause shardcat cannot locate"))?;
                sql[..at].trim_end().len()
            }
        };
        let end = sql.trim_end().trim_end_matches(';').trim_end().len().max(cut);
        let order_texts: Vec<&str> = group_texts.iter().chain(primary.texts.iter()).map(String::as_str).collect();
        let tail = format!(
            "{} {} ORDER BY {}",
            if group_exprs.is_empty() { " GROUP BY" } else { "," },
            b.distinct_args.join(", "),
            order_texts.join(", ")
        );
        edits.push((cut, end, tail));
        feed = keys.iter().map(|k| SortKey { col: k.col, weight: k.weight, desc: false }).collect();
        feed.extend(primary.keys.iter().copied());
    } else if let Some((m, n)) = limit {
        let (start, end) = limit_region(sql, q).ok_or_else(|| refuse("a LIMIT shardcat cannot locate"))?;
        // a group may span shards: no LIMIT for them — but a shard's first m+n distinct rows in the
        // ORDER BY hold every row of the merged first m+n when the DISTINCT streams
        let replacement = if group.is_some() && !distinct_sorted {
            String::new()
        } else {
            format!("LIMIT {}", m.checked_add(n).ok_or_else(|| refuse("LIMIT overflow"))?)
        };
        edits.push((start, end, replacement));
    }
    if !b.hidden.is_empty() {
        let last = s.projection.last().ok_or_else(|| refuse("an empty select list"))?;
        let (start, end) = expr_byte_span(sql, last).ok_or_else(|| refuse("a select list shardcat cannot locate"))?;
        // the item's own span may stop inside it (CAST(x AS CHAR) spans `x`): the list ends where the
        // FROM after it begins, outside quotes and parentheses (without FROM, where the span ends)
        let end = select_list_end(sql, start).unwrap_or(end);
        let cols: Vec<String> = b.hidden.iter().enumerate().map(|(i, h)| format!("{h} AS `__sc_{i}`")).collect();
        let full = format!(", {}", cols.join(", "));
        edits.push((end, end, full.clone()));
        if !b.collations.is_empty() {
            // the lean text: a NULL for each collation and weight column (`MergePlan::lean_sql`)
            let learnt = |i: usize| b.collations.iter().any(|(w, c)| *w == i || *c == i);
            let cols: Vec<String> = b
                .hidden
                .iter()
                .enumerate()
                .map(|(i, h)| if learnt(i) { format!("NULL AS `__sc_{i}`") } else { format!("{h} AS `__sc_{i}`") })
                .collect();
            lean_cols = Some((full, format!(", {}", cols.join(", "))));
        }
    }
    if let Some(h) = s.having.as_ref().filter(|_| feed.is_empty()) {
        // from the HAVING keyword to the next clause (ORDER BY, LIMIT) or the end
        let (start, _) = expr_byte_span(sql, h).ok_or_else(|| refuse("a HAVING shardcat cannot locate"))?;
        let kw = sql[..start]
            .to_ascii_uppercase()
            .rfind("HAVING")
            .ok_or_else(|| refuse("a HAVING shardcat cannot locate"))?;
        let order_start = match &q.order_by {
            Some(ob) => match &ob.kind {
                OrderByKind::Expressions(list) => list
                    .first()
                    .and_then(|o| expr_byte_span(sql, &o.expr))
                    .and_then(|(a, _)| sql[..a].to_ascii_uppercase().rfind("ORDER")),
                _ => None,
            },
            None => None,
        };
        let end = order_start
            .or_else(|| limit_region(sql, q).map(|r| r.0))
            .unwrap_or_else(|| sql.trim_end().trim_end_matches(';').len());
        if end < start {
            return Err(refuse("a HAVING shardcat cannot locate"));
        }
        edits.push((kw, end, String::new()));
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let lean_sql = lean_cols.map(|(full, cols)| {
        let mut lean = shard_sql.clone();
        for (a, z, text) in &edits {
            let text = if *text == full { &cols } else { text };
            lean.replace_range(*a..*z, text);
        }
        lean
    });
    for (a, z, text) in edits {
        shard_sql.replace_range(a..z, &text);
    }
    let mut labels: Vec<String> = Vec::with_capacity(items.len() + b.hidden.len());
    for it in &items {
        labels.push(match it {
            Some((e, _)) => b.text(e)?,
            None => "*".to_string(),
        });
    }
    labels.extend(b.hidden.iter().cloned());
    let collation_of = b.collation_of();
    Ok(MergePlan {
        shard_sql,
        hidden: b.hidden.len(),
        order,
        group,
        aggs,
        limit,
        having,
        feed,
        labels,
        collation_of,
        lean_sql,
        told: None,
        distinct_sorted,
    })
}

/// Where the clauses after GROUP BY begin (HAVING, ORDER BY, LIMIT), or the statement's end.
fn tail_start(sql: &str, q: &Query, s: &sqlparser::ast::Select) -> Option<usize> {
    let mut starts = Vec::new();
    if let Some(h) = &s.having {
        let (a, _) = expr_byte_span(sql, h)?;
        starts.push(sql[..a].to_ascii_uppercase().rfind("HAVING")?);
    }
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(list) = &ob.kind else { return None };
        let (a, _) = expr_byte_span(sql, &list.first()?.expr)?;
        starts.push(sql[..a].to_ascii_uppercase().rfind("ORDER")?);
    }
    if q.limit_clause.is_some() {
        starts.push(limit_region(sql, q)?.0);
    }
    Some(starts.into_iter().min().unwrap_or_else(|| sql.trim_end().trim_end_matches(';').trim_end().len()))
}

/// The SELECT branches of a chain of UNIONs, and whether every UNION is `ALL`. `None` for other set
/// operations or a mix of `UNION` and `UNION ALL`.
fn union_branches(e: &SetExpr) -> Option<(Vec<&sqlparser::ast::Select>, bool)> {
    use sqlparser::ast::{SetOperator, SetQuantifier};
    match e {
        SetExpr::Select(s) => Some((vec![s], true)),
        SetExpr::SetOperation { left, op: SetOperator::Union, set_quantifier, right } => {
            let all = match set_quantifier {
                SetQuantifier::All => true,
                SetQuantifier::Distinct | SetQuantifier::None => false,
                _ => return None,
            };
            let (mut l, la) = union_branches(left)?;
            let (r, ra) = union_branches(right)?;
            l.extend(r);
            // a chain must be all ALL or all DISTINCT to be merged as one
            let l_is_single = matches!(left.as_ref(), SetExpr::Select(_));
            let r_is_single = matches!(right.as_ref(), SetExpr::Select(_));
            if (!l_is_single && la != all) || (!r_is_single && ra != all) {
                return None;
            }
            Some((l, all))
        }
        _ => None,
    }
}

/// Plans a UNION [ALL] over shards: every branch gets `WEIGHT_STRING` of each column appended; UNION
/// de-duplicates in the proxy by those weights; ORDER BY and LIMIT apply to the merged result.
pub fn plan_union(sql: &str, q: &Query, binder: &Binder) -> Result<MergePlan> {
    let (branches, all) =
        union_branches(&q.body).ok_or_else(|| refuse("INTERSECT, EXCEPT or a mix of UNION and UNION ALL"))?;
    let mut b = Builder { sql, hidden: Vec::new(), collations: Vec::new(), distinct_args: Vec::new(), primary: None };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut width = None;
    let mut first_items: Vec<(String, Option<String>)> = Vec::new();
    for (n, s) in branches.iter().enumerate() {
        if s.having.is_some()
            || !matches!(&s.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
            || s.distinct.is_some()
        {
            // a branch with its own grouping is fine for the shards only when rows cannot meet across
            // shards; keep it simple: plain branches only
            return Err(refuse("a UNION branch with GROUP BY, HAVING or DISTINCT"));
        }
        let mut texts = Vec::new();
        for it in &s.projection {
            let (e, alias) = match it {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
                _ => return Err(refuse("* in a UNION")),
            };
            if contains_aggregate(e) {
                return Err(refuse("aggregates in a UNION branch"));
            }
            texts.push((b.text(e)?, alias));
        }
        match width {
            None => width = Some(texts.len()),
            Some(w) if w != texts.len() => {
                return Err(Error::sql(1222, "21000", "The used SELECT statements have a different number of columns"))
            }
            _ => {}
        }
        let last = s.projection.last().ok_or_else(|| refuse("an empty select list"))?;
        let (start, end) = expr_byte_span(sql, last).ok_or_else(|| refuse("a select list shardcat cannot locate"))?;
        // the item's own span may stop inside it (CAST(x AS CHAR) spans `x`): the list ends where the
        // FROM after it begins, outside quotes and parentheses (without FROM, where the span ends)
        let end = select_list_end(sql, start).unwrap_or(end);
        let cols: Vec<String> =
            texts.iter().enumerate().map(|(i, (t, _))| format!("WEIGHT_STRING({t}) AS `__sc_{i}`")).collect();
        edits.push((end, end, format!(", {}", cols.join(", "))));
        if n == 0 {
            first_items = texts;
        }
    }
    let width = width.unwrap_or(0);
    b.hidden = (0..width).map(|i| format!("w{i}")).collect();
    let weight = |i: usize| ColRef::Hidden(i);
    let mut order = Vec::new();
    if let Some(ob) = &q.order_by {
        let OrderByKind::Expressions(list) = &ob.kind else { return Err(refuse("ORDER BY ALL")) };
        for o in list {
            if o.options.nulls_first.is_some() {
                return Err(refuse("NULLS FIRST/LAST"));
            }
            let i = match &o.expr {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => n.parse::<usize>().ok().filter(|i| *i >= 1 && *i <= width).map(|i| i - 1),
                    _ => None,
                },
                Expr::Identifier(id) => first_items.iter().position(|(t, a)| {
                    a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&id.value)) || t.eq_ignore_ascii_case(&id.value)
                }),
                _ => None,
            }
            .ok_or_else(|| refuse("ORDER BY over a UNION that is not a result column"))?;
            order.push(SortKey {
                col: ColRef::Visible(i),
                weight: weight(i),
                desc: matches!(o.options.sort, Some(OrderBySort::Desc)),
            });
        }
    }
    let group = (!all).then(|| (0..width).map(|i| GroupKey { col: ColRef::Visible(i), weight: weight(i) }).collect());
    let limit = match &q.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset { limit: Some(l), offset, .. }) => Some((
            match offset {
                Some(o) => literal_u64(binder, &o.value).ok_or_else(|| refuse("an OFFSET that is not a literal"))?,
                None => 0,
            },
            literal_u64(binder, l).ok_or_else(|| refuse("a LIMIT that is not a literal"))?,
        )),
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => Some((
            literal_u64(binder, offset).ok_or_else(|| refuse("an OFFSET that is not a literal"))?,
            literal_u64(binder, limit).ok_or_else(|| refuse("a LIMIT that is not a literal"))?,
        )),
        Some(_) => return Err(refuse("LIMIT ALL")),
    };
    if let Some((m, n)) = limit {
        let (start, end) = limit_region(sql, q).ok_or_else(|| refuse("a LIMIT shardcat cannot locate"))?;
        let text = if all {
            format!("LIMIT {}", m.checked_add(n).ok_or_else(|| refuse("LIMIT overflow"))?)
        } else {
            String::new()
        };
        edits.push((start, end, text));
    }
    let mut shard_sql = sql.to_string();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (a, z, text) in edits {
        shard_sql.replace_range(a..z, &text);
    }
    let mut labels: Vec<String> = first_items.iter().map(|(t, _)| t.clone()).collect();
    labels
        .extend((0..width).map(|i| format!("WEIGHT_STRING({})", first_items.get(i).map_or("?", |(t, _)| t.as_str()))));
    Ok(MergePlan {
        shard_sql,
        hidden: width,
        order,
        group,
        aggs: Vec::new(),
        limit,
        having: None,
        feed: Vec::new(),
        labels,
        // the union's column collation is the branches' together: the weights compare, always
        collation_of: vec![None; width],
        lean_sql: None,
        told: None,
        distinct_sorted: false,
    })
}

/// A visible column whose text equals `e` (ORDER BY COUNT(*) with COUNT(*) selected).
fn resolve_visible_only(e: &Expr, items: &[Option<(&Expr, Option<String>)>], b: &Builder<'_>) -> Result<Option<usize>> {
    let text = b.text(e)?;
    for (i, it) in items.iter().enumerate() {
        if let Some((ie, alias)) = it {
            if b.text(ie)?.eq_ignore_ascii_case(&text) {
                return Ok(Some(i));
            }
            if let (Expr::Identifier(id), Some(a)) = (e, alias) {
                if a.eq_ignore_ascii_case(&id.value) {
                    return Ok(Some(i));
                }
            }
        }
    }
    Ok(None)
}

/// The byte range of the whole `LIMIT …` clause (keyword included).
fn limit_region(sql: &str, q: &Query) -> Option<(usize, usize)> {
    use sqlparser::ast::Spanned;
    let exprs: Vec<&Expr> = match q.limit_clause.as_ref()? {
        LimitClause::LimitOffset { limit, offset, .. } => {
            limit.iter().chain(offset.as_ref().map(|o| &o.value)).collect()
        }
        LimitClause::OffsetCommaLimit { offset, limit } => vec![offset, limit],
    };
    let spans: Vec<(usize, usize)> =
        exprs.iter().filter_map(|e| crate::sql::analyze::byte_span(sql, e.span())).collect();
    let start = spans.iter().map(|s| s.0).min()?;
    let end = spans.iter().map(|s| s.1).max()?;
    let kw = sql[..start].to_ascii_uppercase().rfind("LIMIT")?;
    Some((kw, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::Statement;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    /// The shards' text with each string key's collation and weight columns as `C(t)` and `W(t)`.
    fn short(sql: &str) -> String {
        let mut s = sql.to_string();
        while let Some(a) = s.find("IF(COLLATION(") {
            let rest = &s[a + 13..];
            let Some(z) = rest.find(") IN (") else { break };
            let t = rest[..z].to_string();
            let known: Vec<String> = crate::exec::collation::KNOWN.iter().map(|n| format!("'{n}'")).collect();
            let w = format!(
                "IF(COLLATION({t}) IN ({}) AND CHARSET({t}) = @@character_set_results, NULL, WEIGHT_STRING({t}))",
                known.join(", ")
            );
            s = s.replace(&w, &format!("W({t})")).replace(&format!("COLLATION({t})"), &format!("C({t})"));
        }
        s
    }

    fn p(sql: &str) -> Result<MergePlan> {
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        let Statement::Query(q) = &stmt else { panic!() };
        plan(sql, q, &Binder::new(&stmt, &[]))
    }

    #[test]
    fn ordered_scans_get_weights_and_hidden_keys() {
        let m = p("SELECT id, name FROM t ORDER BY name DESC, 1 LIMIT 5, 10").unwrap();
        assert_eq!(short(&m.shard_sql), "SELECT id, name, C(name) AS `__sc_0`, W(name) AS `__sc_1`, C(id) AS `__sc_2`, W(id) AS `__sc_3` FROM t ORDER BY name DESC, 1 LIMIT 15");
        assert_eq!(m.collation_of, vec![None, Some(0), None, Some(2)]);
        // a last item whose span stops inside it: the helpers go after the whole item
        let sql = "SELECT id, CAST(amount AS CHAR) AS a FROM t ORDER BY id";
        assert_eq!(super::select_list_end(sql, 11), Some(sql.find(" FROM").unwrap()));
        assert_eq!(super::select_list_end("SELECT a, b FROMAGE", 10), None);
        let inner = "SELECT id, CAST(amount AS CHAR) FROM t";
        assert_eq!(super::select_list_end(inner, 16), Some(inner.find(" FROM").unwrap()), "from inside the CAST");
        assert_eq!(super::select_list_end("SELECT x, 'FROM' FROM t", 10), Some(16));
        assert_eq!(m.order[0], SortKey { col: ColRef::Visible(1), weight: ColRef::Hidden(1), desc: true });
        assert_eq!(m.order[1].col, ColRef::Visible(0));
        assert_eq!(m.limit, Some((5, 10)));
        let m = p("SELECT id FROM t ORDER BY created").unwrap();
        assert_eq!(
            short(&m.shard_sql),
            "SELECT id, created AS `__sc_0`, C(created) AS `__sc_1`, W(created) AS `__sc_2` FROM t ORDER BY created"
        );
        assert_eq!(m.order[0].col, ColRef::Hidden(0));
        // the lean text: NULL where the collation and weight were, every other helper kept
        assert_eq!(
            m.lean_sql.as_deref(),
            Some("SELECT id, created AS `__sc_0`, NULL AS `__sc_1`, NULL AS `__sc_2` FROM t ORDER BY created")
        );
        assert_eq!(m.weighed(), vec![(2, ColRef::Hidden(0))]);
        let m = p("SELECT g, MIN(v), COUNT(DISTINCT d) FROM t GROUP BY g").unwrap();
        let lean = m.lean_sql.clone().unwrap();
        assert!(!lean.contains("COLLATION(") && !lean.contains("WEIGHT_STRING("), "{lean}");
        let weights: Vec<usize> =
            m.collation_of.iter().enumerate().filter(|(_, c)| c.is_some()).map(|(j, _)| j).collect();
        let mut weighed: Vec<usize> = m.weighed().iter().map(|(j, _)| *j).collect();
        weighed.sort();
        assert_eq!(weighed, weights, "every weight column belongs to a key a run learns from");
        assert_eq!(p("SELECT COUNT(*) FROM t").unwrap().lean_sql, None, "no string key, nothing to learn");
        // a streamed DISTINCT lets each shard stop at LIMIT m+n; a held one reads every row
        let m = p("SELECT DISTINCT a FROM t ORDER BY a LIMIT 2, 3").unwrap();
        assert!(m.distinct_sorted && m.shard_sql.ends_with("ORDER BY a LIMIT 5"), "{}", m.shard_sql);
        assert_eq!(m.limit, Some((2, 3)));
        let m = p("SELECT DISTINCT a, b FROM t ORDER BY a LIMIT 3").unwrap();
        assert!(!m.distinct_sorted && !m.shard_sql.contains("LIMIT"), "{}", m.shard_sql);
    }

    #[test]
    fn aggregates_and_groups() {
        let m = p("SELECT g, COUNT(*), AVG(x) AS a FROM t GROUP BY g ORDER BY g LIMIT 3").unwrap();
        assert_eq!(
            short(&m.shard_sql),
            "SELECT g, COUNT(*), AVG(x) AS a, SUM(x) AS `__sc_0`, COUNT(x) AS `__sc_1`, C(g) AS `__sc_2`, W(g) AS `__sc_3` FROM t GROUP BY g ORDER BY g "
        );
        assert_eq!(m.aggs[0], AggSpec { col: 1, kind: AggKind::Count });
        assert_eq!(
            m.aggs[1],
            AggSpec { col: 2, kind: AggKind::Avg { sum: ColRef::Hidden(0), count: ColRef::Hidden(1) } }
        );
        assert_eq!(m.group, Some(vec![GroupKey { col: ColRef::Visible(0), weight: ColRef::Hidden(3) }]));
        assert_eq!(m.limit, Some((0, 3)));
        assert_eq!(p("SELECT COUNT(*) FROM t").unwrap().group, Some(vec![]));
        let h = p("SELECT g, COUNT(*) FROM t GROUP BY g HAVING COUNT(*) > 1 AND SUM(x) < 10 ORDER BY g").unwrap();
        assert_eq!(
            short(&h.shard_sql),
            "SELECT g, COUNT(*), C(g) AS `__sc_0`, W(g) AS `__sc_1`, SUM(x) AS `__sc_2` FROM t GROUP BY g ORDER BY g"
        );
        let refs = h.having.unwrap().refs;
        assert_eq!(refs, vec![("count(*)".to_string(), 1), ("sum(x)".to_string(), 4)]);
        let d = p("SELECT DISTINCT a, b FROM t").unwrap();
        assert_eq!(d.group.map(|g| g.len()), Some(2));
    }

    #[test]
    fn distinct_aggregates_group_the_shards_by_their_arguments() {
        let m = p("SELECT COUNT(DISTINCT city), COUNT(*) FROM t WHERE id > 3 LIMIT 1").unwrap();
        assert_eq!(
            short(&m.shard_sql),
            "SELECT COUNT(DISTINCT city), COUNT(*), city AS `__sc_0`, C(city) AS `__sc_1`, W(city) AS `__sc_2` FROM t WHERE id > 3 GROUP BY city ORDER BY city"
        );
        let arg = GroupKey { col: ColRef::Hidden(0), weight: ColRef::Hidden(2) };
        assert_eq!(m.aggs[0].kind, AggKind::Distinct { func: DistinctFn::Count, args: vec![arg], sorted: true });
        assert_eq!(m.feed, vec![SortKey { col: ColRef::Hidden(0), weight: ColRef::Hidden(2), desc: false }]);
        assert_eq!(m.group, Some(vec![]));
        let m = p("SELECT g, SUM(DISTINCT x), COUNT(DISTINCT y, z) FROM t GROUP BY g HAVING SUM(DISTINCT x) > 2 ORDER BY 2 DESC LIMIT 3")
            .unwrap();
        assert_eq!(
            short(&m.shard_sql),
            "SELECT g, SUM(DISTINCT x), COUNT(DISTINCT y, z), x AS `__sc_0`, C(x) AS `__sc_1`, W(x) AS `__sc_2`, y AS `__sc_3`, C(y) AS `__sc_4`, W(y) AS `__sc_5`, z AS `__sc_6`, C(z) AS `__sc_7`, W(z) AS `__sc_8`, C(g) AS `__sc_9`, W(g) AS `__sc_10`, C(SUM(DISTINCT x)) AS `__sc_11`, W(SUM(DISTINCT x)) AS `__sc_12` FROM t GROUP BY g, x, y, z ORDER BY g, x"
        );
        assert!(matches!(m.aggs[1].kind, AggKind::Distinct { sorted: false, .. }));
        assert_eq!(m.feed.len(), 2);
        assert_eq!(m.limit, Some((0, 3)));
        assert!(m.having.is_some());
    }

    #[test]
    fn group_concat_orders_the_merge() {
        let m = p(
            "SELECT g, GROUP_CONCAT(DISTINCT a, b ORDER BY c DESC SEPARATOR '|'), COUNT(DISTINCT d) FROM t GROUP BY g",
        )
        .unwrap();
        assert_eq!(
            short(&m.shard_sql),
            "SELECT g, GROUP_CONCAT(DISTINCT a, b ORDER BY c DESC SEPARATOR '|'), COUNT(DISTINCT d), a AS `__sc_0`, C(a) AS `__sc_1`, W(a) AS `__sc_2`, b AS `__sc_3`, C(b) AS `__sc_4`, W(b) AS `__sc_5`, c AS `__sc_6`, C(c) AS `__sc_7`, W(c) AS `__sc_8`, '|' AS `__sc_9`, @@group_concat_max_len AS `__sc_10`, d AS `__sc_11`, C(d) AS `__sc_12`, W(d) AS `__sc_13`, C(g) AS `__sc_14`, W(g) AS `__sc_15` FROM t GROUP BY g, a, b, c, d ORDER BY g, c DESC, a, b"
        );
        let AggKind::Concat { distinct, sep, times, .. } = &m.aggs[0].kind else { panic!("{:?}", m.aggs) };
        assert!(*distinct && sep.is_some() && times.is_none());
        assert!(matches!(m.aggs[1].kind, AggKind::Distinct { sorted: false, .. }), "the concat orders the merge");
        assert_eq!(m.feed.iter().map(|k| k.desc).collect::<Vec<_>>(), [false, true, false, false]);
        let m = p("SELECT GROUP_CONCAT(a ORDER BY a LIMIT 2) FROM t").unwrap();
        assert!(matches!(m.aggs[0].kind, AggKind::Concat { limit: Some(2), times: Some(_), .. }));
    }

    #[test]
    fn refusals() {
        for sql in [
            "SELECT SUM(DISTINCT a, b) FROM t",
            "SELECT COUNT(DISTINCT a) + 1 FROM t",
            "SELECT GROUP_CONCAT(a ORDER BY 1) FROM t",
            "SELECT GROUP_CONCAT(a ORDER BY a), GROUP_CONCAT(b ORDER BY b) FROM t",
            "SELECT g, GROUP_CONCAT(a) AS x FROM t GROUP BY g ORDER BY x",
            "SELECT SUM(a) + 1 FROM t",
            "SELECT a FROM t UNION SELECT a FROM u",
            "SELECT * FROM t ORDER BY 1",
            "SELECT a FROM t ORDER BY COUNT(*)",
        ] {
            assert!(p(sql).is_err(), "{sql}");
        }
    }
}
