//! SELECT routing: each table's nodes from the WHERE conditions on its sharding column, combined
//! across the statement's tables; one node passes through, several stream concatenated rows when no
//! merge is needed (LIMIT without ORDER BY included), anything else waits for cross-shard merges.

use std::sync::Arc;

use sqlparser::ast::{Query, SetExpr, TableFactor, TableWithJoins};

use super::condition::Binder;
use super::{combine, limit, needs_merge, place, table_nodes, Ctx, Mode, NodeSet, Param, Rewrite, Route};
use crate::config::model::Schema;
use crate::error::Result;
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

pub fn route(ctx: &Ctx<'_>, schema: &Schema, q: &Query, a: &Analysis, sql: &str, params: &[Param]) -> Result<Route> {
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
    let mut nodes = combine(ctx, &sets, a.locking_read)?;
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
            "SELECT v FROM t_mod GROUP BY v HAVING COUNT(*) > 1",
            "SELECT * FROM t_mod a JOIN t_range b ON a.id = b.id",
        ] {
            assert_eq!(nodes_of(refused, &[]).unwrap_err().code_and_state().0, 1105, "{refused}");
        }
    }
}
