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
fn colocated(ctx: &Ctx<'_>, schema: &Schema, s: &sqlparser::ast::Select, top: &[(TableRef, Vec<String>)]) -> bool {
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
    for (a, b) in equalities(s) {
        let ([.., qa, ca], [.., qb, cb]) = (a, b) else { continue };
        let (Some(ia), Some(ib)) = (find(&qa.value), find(&qb.value)) else { continue };
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
                    && col_a.eq_ignore_ascii_case(&ca.value)
                    && col_b.eq_ignore_ascii_case(&cb.value)
            }
            _ => false,
        };
        if linked(ta, &ca.value, tb, &cb.value) || linked(tb, &cb.value, ta, &ca.value) || same_rule {
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

pub fn route(ctx: &Ctx<'_>, schema: &Schema, q: &Query, a: &Analysis, sql: &str, params: &[Param]) -> Result<Route> {
    if let Some(stmt) = a.stmts.first() {
        if let Some(r) = union(ctx, schema, q, a, sql, &Binder::new(stmt, params))? {
            return Ok(r);
        }
    }
    let Some(stmt) = a.stmts.first() else { return Ok(Route::single(super::any_node(schema, &|n| ctx.alive(n))?)) };
    let binder = Binder::new(stmt, params);
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
    let joined = matches!(q.body.as_ref(), SetExpr::Select(sel)
        if top.len() > 1 && sets.iter().filter(|s| s.2).count() > 1 && colocated(ctx, schema, sel, &top));
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
            "SELECT COUNT(DISTINCT v) FROM t_mod",
            "SELECT v FROM t_mod GROUP BY v HAVING GROUP_CONCAT(v) > 1",
            "SELECT * FROM t_mod a JOIN t_range b ON a.id = b.id",
        ] {
            assert_eq!(nodes_of(refused, &[]).unwrap_err().code_and_state().0, 1105, "{refused}");
        }
    }
}
