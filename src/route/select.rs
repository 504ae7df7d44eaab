//! SELECT routing: each table's nodes from the WHERE conditions on its sharding column, combined
//! across the statement's tables; one node passes through, several stream concatenated rows when no
//! merge is needed (LIMIT without ORDER BY included), anything else waits for cross-shard merges.

use std::sync::Arc;

use sqlparser::ast::{BinaryOperator, Expr, Query, SetExpr, TableFactor, TableWithJoins};

use super::condition::Binder;
use super::{combine, limit, needs_merge, place, table_nodes, Ctx, Mode, NodeSet, Param, Rewrite, Route};
use crate::config::model::{Schema, TableKind};
use crate::error::{Error, Result};
use crate::sql::analyze::{table_ref, Analysis, TableRef};

/// The tables of a FROM list with the names their columns may be qualified with.
pub fn from_tables(from: &[TableWithJoins]) -> Vec<(TableRef, Vec<String>)> {
    let mut out = Vec::new();
    let mut add = |f: &TableFactor| {
        if let TableFactor::Table { name, alias, .. } = f {
            let Some(tref) = table_ref(name) else { return };
            let table = tref.name.clone();
            let mut quals = vec![table.clone()];
            if let Some(a) = alias {
                quals.push(a.name.value.clone());
            }
            out.push((tref, quals));
        }
    };
    for twj in from {
        add(&twj.relation);
        for j in &twj.joins {
            add(&j.relation);
        }
    }
    out
}

/// Column equalities `a.x = b.y` of the WHERE clause (AND-ed) and of the JOIN … ON conditions.
/// The identifier paths of both sides of each equality.
type Equality<'q> = (&'q [sqlparser::ast::Ident], &'q [sqlparser::ast::Ident]);

fn equalities(s: &sqlparser::ast::Select) -> Vec<Equality<'_>> {
    fn walk<'q>(e: &'q Expr, out: &mut Vec<Equality<'q>>) {
        match e {
            Expr::Nested(inner) => walk(inner, out),
            Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                walk(left, out);
                walk(right, out);
            }
            Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
                if let (Expr::CompoundIdentifier(a), Expr::CompoundIdentifier(b)) = (left.as_ref(), right.as_ref()) {
                    out.push((a.as_slice(), b.as_slice()));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(w) = &s.selection {
        walk(w, &mut out);
    }
    for twj in &s.from {
        for j in &twj.joins {
            use sqlparser::ast::{JoinConstraint, JoinOperator as J};
            let c = match &j.join_operator {
                J::Join(c) | J::Inner(c) | J::Left(c) | J::LeftOuter(c) | J::Right(c) | J::RightOuter(c) => Some(c),
                _ => None,
            };
            if let Some(JoinConstraint::On(e)) = c {
                walk(e, &mut out);
            }
        }
    }
    out
}

/// Whether the partitioned tables of the FROM list are co-located: linked by equalities between an ER
/// child's joinKey and its parent's parentKey, or between the sharding columns of two tables with the
/// same function and dataNodes.
fn colocated(
    ctx: &Ctx<'_>,
    schema: &Schema,
    s: &sqlparser::ast::Select,
    top: &[(TableRef, Vec<String>)],
    in_links: &[(Option<String>, String, String, String)],
) -> bool {
    // the tables of IN-subqueries join the FROM list, linked by their IN equality
    let mut top: Vec<(TableRef, Vec<String>)> = top.to_vec();
    let mut extra: Vec<(usize, String, usize, String)> = Vec::new();
    for (q, c, t, ic) in in_links {
        let outer = match q {
            Some(q) => top.iter().position(|(_, quals)| quals.iter().any(|n| n.eq_ignore_ascii_case(q))),
            None if top.len() == 1 => Some(0),
            None => None,
        };
        let Some(o) = outer else { return false };
        let n = top.len();
        top.push((TableRef { schema: None, name: t.clone() }, vec![format!("__in_{n}")]));
        extra.push((o, c.clone(), n, ic.clone()));
    }
    let top = top.as_slice();
    let tables: Vec<Option<&crate::config::model::Table>> =
        top.iter().map(|(t, _)| if t.schema.is_none() { schema.table(&t.name) } else { None }).collect();
    let partitioned: Vec<usize> = (0..top.len())
        .filter(|i| {
            tables[*i].is_some_and(|t| {
                matches!(t.kind, TableKind::Sharded { .. } | TableKind::Child { .. }) && t.data_nodes.len() > 1
            })
        })
        .collect();
    if partitioned.len() < 2 {
        return true;
    }
    let find = |q: &str| top.iter().position(|(_, quals)| quals.iter().any(|n| n.eq_ignore_ascii_case(q)));
    let mut parent: Vec<usize> = (0..top.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let rule_of = |t: &crate::config::model::Table| -> Option<(String, String)> {
        let TableKind::Sharded { rule } = &t.kind else { return None };
        let r = ctx.cfg.table_rule(rule)?;
        Some((r.algorithm.clone(), r.column.clone()))
    };
    let mut pairs: Vec<(usize, String, usize, String)> = extra;
    for (a, b) in equalities(s) {
        let ([.., qa, ca], [.., qb, cb]) = (a, b) else { continue };
        let (Some(ia), Some(ib)) = (find(&qa.value), find(&qb.value)) else { continue };
        pairs.push((ia, ca.value.clone(), ib, cb.value.clone()));
    }
    for (ia, ca, ib, cb) in pairs {
        let (Some(ta), Some(tb)) = (tables[ia], tables[ib]) else { continue };
        let linked = |x: &crate::config::model::Table, cx: &str, y: &crate::config::model::Table, cy: &str| -> bool {
            // x is y's ER child, joined on joinKey = parentKey
            if let TableKind::Child { parent, join_key, parent_key } = &x.kind {
                if parent.eq_ignore_ascii_case(&y.name)
                    && join_key.eq_ignore_ascii_case(cx)
                    && parent_key.eq_ignore_ascii_case(cy)
                {
                    return true;
                }
            }
            false
        };
        let same_rule = match (rule_of(ta), rule_of(tb)) {
            (Some((fa, col_a)), Some((fb, col_b))) => {
                fa == fb
                    && ta.data_nodes == tb.data_nodes
                    && col_a.eq_ignore_ascii_case(&ca)
                    && col_b.eq_ignore_ascii_case(&cb)
            }
            _ => false,
        };
        if linked(ta, &ca, tb, &cb) || linked(tb, &cb, ta, &ca) || same_rule {
            let (ra, rb) = (root(&mut parent, ia), root(&mut parent, ib));
            parent[ra] = rb;
        }
    }
    let r0 = root(&mut parent, partitioned[0]);
    partitioned.iter().all(|i| root(&mut parent, *i) == r0)
}

/// Whether a set expression is made only of `UNION ALL` of plain SELECTs.
fn union_all_only(e: &SetExpr) -> bool {
    use sqlparser::ast::{SetOperator, SetQuantifier};
    match e {
        SetExpr::Select(_) => true,
        SetExpr::SetOperation { left, op: SetOperator::Union, set_quantifier: SetQuantifier::All, right } => {
            union_all_only(left) && union_all_only(right)
        }
        _ => false,
    }
}

/// UNION [ALL] over tables partitioned on the same dataNodes: every shard answers its part of each
/// branch; UNION ALL without ORDER BY/LIMIT is their concatenation, anything else a merge.
fn union(ctx: &Ctx<'_>, schema: &Schema, q: &Query, a: &Analysis, sql: &str, binder: &Binder) -> Result<Option<Route>> {
    if !matches!(q.body.as_ref(), SetExpr::SetOperation { .. }) {
        return Ok(None);
    }
    let mut nodes: Option<Vec<String>> = None;
    for t in a.tables.iter().filter(|t| !t.schema.as_deref().is_some_and(super::is_system_schema)) {
        let p = place(ctx, schema, t)?;
        let tab = p.table.filter(|_| p.partitioned()).ok_or_else(|| {
            Error::unsupported(format!(
                "UNION ALL over several dataNodes with table '{}', which is not sharded: its rows would repeat or be missing",
                t.name
            ))
        })?;
        match &nodes {
            None => nodes = Some(tab.data_nodes.clone()),
            Some(n) if *n == tab.data_nodes => {}
            Some(_) => return Err(Error::unsupported("UNION ALL over tables sharded on different dataNodes")),
        }
    }
    let nodes: Vec<Arc<str>> = nodes.unwrap_or_default().iter().map(|n| Arc::from(n.as_str())).collect();
    if nodes.is_empty() {
        return Ok(None);
    }
    if union_all_only(&q.body) && q.order_by.is_none() && q.limit_clause.is_none() {
        return Ok(Some(Route { nodes, mode: Mode::Concat, sql: Rewrite::Original, limit: None }));
    }
    let plan = super::merge::plan_union(sql, q, binder)?;
    Ok(Some(
        Route { nodes, mode: Mode::Concat, sql: Rewrite::Shared(plan.shard_sql.clone()), limit: None }.merged(plan),
    ))
}

/// Subqueries of a statement, as far as routing over several shards is concerned.
struct Subqueries {
    /// `outer.col IN (SELECT col FROM t …)` in the top-level WHERE (AND-ed): (outer qualifier or
    /// None, outer column, inner table, inner column).
    in_links: Vec<(Option<String>, String, String, String)>,
    /// Derived tables of the top-level FROM that need no merge of their own.
    plain_derived: usize,
    /// Anything else: scalar subqueries, EXISTS, IN under OR/NOT, derived tables that aggregate…
    other: bool,
}

/// `total`: the number of subquery expressions in `q` (the analysis counted them at parse time).
fn subqueries(q: &Query, total: usize) -> Subqueries {
    let mut s = Subqueries { in_links: Vec::new(), plain_derived: 0, other: q.with.is_some() };
    let SetExpr::Select(sel) = q.body.as_ref() else { return s };
    for twj in &sel.from {
        for f in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            if let TableFactor::Derived { subquery, .. } = f {
                // one that reads no table (literals: a derived table the proxy computed first) is the
                // same on every shard
                if !sqlparser::ast::visit_relations(subquery.as_ref(), |_| std::ops::ControlFlow::Break(())).is_break()
                {
                    continue;
                }
                let nested = contains_subquery_expr(subquery);
                if crate::sql::analyze::merge_need(subquery).is_none() && !nested && subquery.with.is_none() {
                    s.plain_derived += 1;
                } else {
                    s.other = true;
                }
            }
        }
    }
    // IN (SELECT …) on an AND path of WHERE
    fn and_terms<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
        match e {
            Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                and_terms(left, out);
                and_terms(right, out);
            }
            Expr::Nested(inner) => and_terms(inner, out),
            other => out.push(other),
        }
    }
    let mut terms = Vec::new();
    if let Some(w) = &sel.selection {
        and_terms(w, &mut terms);
    }
    let mut counted = 0usize;
    for t in terms {
        if let Expr::In { expr, target: sqlparser::ast::InTarget::Subquery(sq), negated: false, .. } = t {
            counted += 1;
            let outer = match expr.as_ref() {
                Expr::Identifier(i) => Some((None, i.value.clone())),
                Expr::CompoundIdentifier(p) if p.len() >= 2 => {
                    Some((Some(p[p.len() - 2].value.clone()), p[p.len() - 1].value.clone()))
                }
                _ => None,
            };
            let inner = match sq.body.as_ref() {
                SetExpr::Select(is)
                    if is.from.len() == 1 && is.from[0].joins.is_empty() && is.projection.len() == 1 =>
                {
                    let table = match &is.from[0].relation {
                        TableFactor::Table { name, .. } => crate::sql::analyze::table_ref(name),
                        _ => None,
                    };
                    let col = match &is.projection[0] {
                        sqlparser::ast::SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
                        sqlparser::ast::SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
                            p.last().map(|i| i.value.clone())
                        }
                        _ => None,
                    };
                    let plain = crate::sql::analyze::merge_need(sq).is_none() && !contains_subquery_expr(sq);
                    match (table, col, plain) {
                        (Some(t), Some(c), true) if t.schema.is_none() => Some((t.name, c)),
                        _ => None,
                    }
                }
                _ => None,
            };
            match (outer, inner) {
                (Some((q, c)), Some((t, ic))) => s.in_links.push((q, c, t, ic)),
                _ => s.other = true,
            }
        }
    }
    // any other subquery expression anywhere
    if total > counted {
        s.other = true;
    }
    s
}

fn contains_subquery_expr(q: &Query) -> bool {
    count_subquery_exprs(q) > 0
}

fn count_subquery_exprs(q: &Query) -> usize {
    let mut n = 0;
    let _ = sqlparser::ast::visit_expressions(q, |e: &Expr| {
        if crate::sql::analyze::is_subquery_expr(e) {
            n += 1;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    n
}

pub fn route(ctx: &Ctx<'_>, schema: &Schema, q: &Query, a: &Analysis, sql: &str, params: &[Param]) -> Result<Route> {
    let Some(stmt) = a.stmts.first() else { return Ok(Route::single(super::any_node(schema, &|n| ctx.alive(n))?)) };
    let binder = Binder::of(a, stmt, params);
    if let Some(r) = union(ctx, schema, q, a, sql, &binder)? {
        return Ok(r);
    }
    let (top, selection) = match q.body.as_ref() {
        SetExpr::Select(s) => (from_tables(&s.from), s.selection.as_ref()),
        _ => (Vec::new(), None),
    };
    let unqualified = top.len() == 1;
    let mut sets = Vec::new();
    let mut places = Vec::new();
    for t in a.tables.iter().filter(|t| !t.schema.as_deref().is_some_and(super::is_system_schema)) {
        let p = place(ctx, schema, t)?;
        let set = match top.iter().find(|(r, _)| r == t) {
            Some((_, quals)) => table_nodes(ctx, &p, selection, quals.clone(), unqualified, &binder)?,
            None => table_nodes(ctx, &p, None, Vec::new(), false, &binder)?,
        };
        sets.push((t.name.clone(), set, p.partitioned()));
        places.push(p);
    }
    // co-located joins: the rows that meet are on the same node; run on the nodes all sides share
    let subs = subqueries(q, a.subquery_exprs);
    let partitioned_count = sets.iter().filter(|s| s.2).count();
    let joined = partitioned_count > 1
        && matches!(q.body.as_ref(), SetExpr::Select(sel) if colocated(ctx, schema, sel, &top, &subs.in_links));
    // an IN-subquery over a sharded table filtering an unsharded outer table would repeat the outer
    // rows on every shard where the subquery finds a match
    let partitioned_name = |name: &str| sets.iter().any(|(n, _, part)| *part && n.eq_ignore_ascii_case(name));
    let outer_unsharded_in = subs.in_links.iter().any(|(q, _, inner, _)| {
        let outer = match q {
            Some(q) => top.iter().find(|(_, quals)| quals.iter().any(|n| n.eq_ignore_ascii_case(q))),
            None if top.len() == 1 => top.first(),
            None => None,
        };
        partitioned_name(inner) && !outer.is_some_and(|(t, _)| partitioned_name(&t.name))
    });
    // IN (SELECT …) over a sharded table runs on the shards only on co-located keys — the same table
    // included (`name IN (SELECT name FROM t …)` on t's shards would see one shard's names each)
    let in_colocated = subs.in_links.is_empty()
        || matches!(q.body.as_ref(), SetExpr::Select(sel) if colocated(ctx, schema, sel, &top, &subs.in_links));
    if subs.other || outer_unsharded_in || !in_colocated || (subs.plain_derived > 0 && partitioned_count > 1) {
        // a subquery over sharded rows could see only one shard's part: run it only on one node
        let spans_nodes = sets.iter().any(|(_, set, part)| *part && matches!(set, NodeSet::Exact(n) if n.len() > 1));
        if spans_nodes {
            let names: Vec<&str> = sets.iter().map(|s| s.0.as_str()).collect();
            return Err(Error::unsupported(format!(
                "a subquery or derived table over sharded tables ({}) that spans several dataNodes; only derived tables without aggregation and IN (SELECT …) on co-located keys run across shards",
                names.join(", ")
            )));
        }
    }
    if joined {
        let mut common: Option<Vec<Arc<str>>> = None;
        for (_, set, part) in &sets {
            if let (NodeSet::Exact(n), true) = (set, part) {
                common = Some(match common {
                    None => n.clone(),
                    Some(c) => c.into_iter().filter(|x| n.contains(x)).collect(),
                });
            }
        }
        let common = common.unwrap_or_default();
        for (_, set, part) in sets.iter_mut() {
            if *part {
                *set = NodeSet::Exact(common.clone());
            }
        }
    }
    let mut nodes = combine(ctx, &sets, a.locking_read, joined)?;
    if nodes.is_empty() {
        // no row can match: any node of the table answers with the right (empty) result
        if let Some(NodeSet::Exact(_)) = sets.first().map(|s| &s.1) {
            if let Some(first) = places.first().and_then(|p| p.table).and_then(|t| t.data_nodes.first()) {
                nodes = vec![Arc::from(first.as_str())];
            }
        }
        if nodes.is_empty() {
            nodes = vec![super::any_node(schema, &|n| ctx.alive(n))?];
        }
    }
    let auto = if a.locking_read { None } else { limit::auto_limit(schema, q, &places, selection) };
    let mut route = Route { nodes, mode: Mode::Single, sql: Rewrite::Original, limit: None };
    if let Some(n) = auto {
        route.sql = Rewrite::Shared(limit::append_limit(sql, n));
    }
    if route.nodes.len() == 1 {
        return Ok(route);
    }
    let table = sets.iter().find(|s| s.2).map(|s| s.0.clone()).unwrap_or_default();
    match (a.needs_merge, auto) {
        (None, None) => route.mode = Mode::Concat,
        (None, Some(n)) => {
            route.mode = Mode::Concat;
            route.limit = Some((0, n));
        }
        (Some("LIMIT"), _) => match limit::concat_limit(sql, q, &binder)? {
            Some((rewritten, offset, count)) => {
                route.mode = Mode::Concat;
                route.limit = Some((offset, count));
                if let Some(text) = rewritten {
                    route.sql = Rewrite::Shared(text);
                }
            }
            None => return Err(needs_merge("a LIMIT that is not a literal", &table, route.nodes.len())),
        },
        (Some(_), _) => {
            let mut plan = super::merge::plan(sql, q, &binder)?;
            if let (Some(ask), Some(lean)) = (ctx.learned, plan.lean_sql.as_deref()) {
                // every node told what its string keys' COLLATION/WEIGHT_STRING columns say
                if let Some(told) = ask.learned.told(lean, &route.nodes, ask.session) {
                    plan.shard_sql = lean.to_string();
                    plan.told = Some(told);
                }
            }
            if let (None, Some(n)) = (plan.limit, auto) {
                // sqlMaxLimit: the proxy keeps n rows of the merged result; plain merges let shards stop at n
                plan.limit = Some((0, n));
                if plan.group.is_none() {
                    plan.shard_sql = limit::append_limit(&plan.shard_sql, n);
                }
            }
            route.sql = Rewrite::Shared(plan.shard_sql.clone());
            route.mode = Mode::Merge(Box::new(plan));
        }
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::super::testing::nodes_of;
    use super::super::Param;

    #[test]
    fn select_routing_table() {
        let all = ["sdn1", "sdn2", "sdn3", "sdn4"];
        let cases: &[(&str, &[&str])] = &[
            ("SELECT * FROM t_mod WHERE id = 6", &["sdn3"]),
            ("SELECT * FROM t_mod t WHERE t.id IN (4, 5) AND t.v > 'a'", &["sdn1", "sdn2"]),
            ("SELECT * FROM t_mod WHERE id = 1 OR v = 'x'", &all),
            ("SELECT * FROM t_mod WHERE id BETWEEN 10 AND 11", &["sdn3", "sdn4"]),
            ("SELECT * FROM t_range WHERE id > 30000", &["sdn4"]),
            ("SELECT * FROM t_range WHERE id <= 20000", &["sdn1", "sdn2"]),
            ("SELECT * FROM t_enum WHERE code = 99", &["sdn4"]),
            ("SELECT * FROM orders WHERE customer_id IN (1, 2)", &["sdn2", "sdn3"]),
            ("SELECT * FROM order_items WHERE order_id = 1", &all),
            ("SELECT * FROM t_mod WHERE id IN (SELECT id FROM t_mod WHERE id = 1)", &all),
            ("SELECT * FROM t_mod m JOIN region r ON m.id = r.id WHERE m.id = 2", &["sdn3"]),
            ("SELECT * FROM t_mod WHERE id = 1 FOR UPDATE", &["sdn2"]),
            ("SELECT 1", &["sdn1"]),
        ];
        for (sql, want) in cases {
            assert_eq!(nodes_of(sql, &[]).unwrap(), *want, "{sql}");
        }
        assert_eq!(nodes_of("SELECT * FROM region", &[]).unwrap().len(), 1, "a global read: one node");
        assert_eq!(nodes_of("SELECT id FROM t_mod ORDER BY id", &[]).unwrap(), all, "merged over every shard");
        assert_eq!(nodes_of("SELECT * FROM t_req WHERE id = 1", &[]).unwrap(), ["sdn2"]);
        let e = nodes_of("SELECT * FROM t_req WHERE v = 'x'", &[]).unwrap_err();
        assert!(
            e.code_and_state().0 == 1064 && e.to_string().contains("route rule for table T_REQ is required"),
            "{e}"
        );
        let p = [Param::Number("7".into())];
        assert_eq!(nodes_of("SELECT * FROM t_mod WHERE id = ?", &p).unwrap(), ["sdn4"]);
        for refused in [
            "SELECT STD(v) FROM t_mod",
            "SELECT v FROM t_mod GROUP BY v HAVING VARIANCE(id) > 1",
            "SELECT * FROM t_mod a JOIN t_range b ON a.id = b.id",
        ] {
            assert_eq!(nodes_of(refused, &[]).unwrap_err().code_and_state().0, 1105, "{refused}");
        }
    }
}
