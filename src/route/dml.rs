//! UPDATE and DELETE routing: nodes from the WHERE conditions like SELECT; affected rows summed over
//! shards; the sharding column (or an ER joinKey) may not change unless provably a no-op; ORDER BY or
//! LIMIT over several shards is refused (it cannot mean what it means on one server).

use std::sync::Arc;

use sqlparser::ast::{AssignmentTarget, FromTable, Statement};

use super::condition::{and_equalities, Binder, Target};
use super::select::from_tables;
use super::{combine, place, table_nodes, Ctx, Mode, NodeSet, Rewrite, Route};
use crate::config::model::{Schema, TableKind};
use crate::error::{Error, Result};
use crate::sql::analyze::last_ident;

fn assigned_column(t: &AssignmentTarget) -> Option<String> {
    match t {
        AssignmentTarget::ColumnName(n) => Some(last_ident(n)),
        AssignmentTarget::Tuple(_) => None,
    }
}

pub fn route(ctx: &Ctx<'_>, schema: &Schema, stmt: &Statement, binder: &Binder<'_>) -> Result<Route> {
    let (tables, selection, assignments, ordered_or_limited) = match stmt {
        Statement::Update(u) => {
            let mut t = from_tables(std::slice::from_ref(&u.table));
            if let Some(
                sqlparser::ast::UpdateTableFromKind::AfterSet(f) | sqlparser::ast::UpdateTableFromKind::BeforeSet(f),
            ) = &u.from
            {
                t.extend(from_tables(f));
            }
            (t, u.selection.as_ref(), u.assignments.as_slice(), !u.order_by.is_empty() || u.limit.is_some())
        }
        Statement::Delete(d) => {
            let from = match &d.from {
                FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
            };
            let mut t = from_tables(from);
            if let Some(using) = &d.using {
                t.extend(from_tables(using));
            }
            (t, d.selection.as_ref(), &[][..], !d.order_by.is_empty() || d.limit.is_some())
        }
        _ => return Err(Error::unsupported("not an UPDATE or DELETE")),
    };
    let unqualified = tables.len() == 1;
    let mut sets = Vec::new();
    let mut all_global = true;
    for (tref, quals) in &tables {
        let p = place(ctx, schema, tref)?;
        if let Some(t) = p.table {
            // the sharding column (or ER joinKey) may only be "changed" to the value it already has
            let guarded: Option<(String, &str)> = match &t.kind {
                TableKind::Sharded { .. } => ctx
                    .rules
                    .sharded(&p.schema.name, &t.name)
                    .map(|r| (r.column.clone(), "Sharding column can't be updated")),
                TableKind::Child { join_key, .. } => {
                    Some((join_key.clone(), "Parent relevant column can't be updated"))
                }
                _ => None,
            };
            if let Some((col, msg)) = guarded {
                for a in assignments {
                    if assigned_column(&a.target).is_some_and(|c| c.eq_ignore_ascii_case(&col)) {
                        let tg = Target { column: &col, qualifiers: quals.clone(), unqualified };
                        let same = binder
                            .literal(&a.value)
                            .is_some_and(|v| and_equalities(selection, &tg, binder).contains(&v));
                        if !same {
                            return Err(Error::unsupported(format!("{msg}: {} -> {col}", t.name)));
                        }
                    }
                }
            }
        }
        let set = table_nodes(ctx, &p, selection, quals.clone(), unqualified, binder)?;
        all_global &= matches!(set, NodeSet::Any(_));
        sets.push((tref.name.clone(), set, p.partitioned()));
    }
    if tables.is_empty() {
        return Err(Error::unsupported("an UPDATE/DELETE without a table"));
    }
    let mut nodes = combine(ctx, &sets, true, false)?;
    if nodes.is_empty() {
        // no row can match: run it on one node so the client still gets MySQL's answer (0 rows)
        let p = place(ctx, schema, &tables[0].0)?;
        let first = p.table.and_then(|t| t.data_nodes.first().cloned()).or(p.schema.data_node.clone());
        nodes = first.map(|n| vec![Arc::from(n.as_str())]).unwrap_or_default();
    }
    if nodes.len() <= 1 {
        return Ok(Route { nodes, mode: Mode::Single, sql: Rewrite::Original, limit: None });
    }
    if tables.len() > 1 && !all_global {
        let names: Vec<&str> = tables.iter().map(|t| t.0.name.as_str()).collect();
        return Err(Error::unsupported(format!(
            "multi table related update not supported, tables:[{}] span several dataNodes",
            names.join(", ")
        )));
    }
    if ordered_or_limited && !all_global {
        return Err(Error::unsupported(format!(
            "UPDATE/DELETE with ORDER BY or LIMIT on '{}' spans {} dataNodes: the rows it picks would differ from one server's",
            tables[0].0.name,
            nodes.len()
        )));
    }
    let mode = if all_global { Mode::WriteAllReportOne } else { Mode::WriteAllSum };
    Ok(Route { nodes, mode, sql: Rewrite::Original, limit: None })
}

#[cfg(test)]
mod tests {
    use super::super::testing::nodes_of;

    #[test]
    fn update_and_delete_routing_table() {
        let cases: &[(&str, &[&str])] = &[
            ("UPDATE t_mod SET v = 'a' WHERE id = 5", &["sdn2"]),
            ("UPDATE t_mod SET v = 'a'", &["sdn1", "sdn2", "sdn3", "sdn4"]),
            ("UPDATE t_mod SET id = 5, v = 'a' WHERE id = 5 AND v = 'b'", &["sdn2"]),
            ("DELETE FROM t_mod WHERE id IN (2, 6)", &["sdn3"]),
            ("DELETE FROM orders WHERE customer_id = 8", &["sdn1"]),
            ("UPDATE region SET name = 'x'", &["sdn1", "sdn2", "sdn3", "sdn4"]),
            ("DELETE FROM t_mod WHERE id = 1 LIMIT 1", &["sdn2"]),
        ];
        for (sql, want) in cases {
            assert_eq!(nodes_of(sql, &[]).unwrap(), *want, "{sql}");
        }
        for refused in [
            "UPDATE t_mod SET id = 6 WHERE id = 5",
            "UPDATE t_mod SET id = 5 WHERE id = 5 OR v = 'a'",
            "UPDATE t_mod SET id = 5 WHERE id BETWEEN 5 AND 5",
            "UPDATE orders SET customer_id = 1 WHERE id = 1",
            "DELETE FROM t_mod ORDER BY id LIMIT 1",
            "UPDATE t_mod SET v = 'a' LIMIT 2",
        ] {
            assert_eq!(nodes_of(refused, &[]).unwrap_err().code_and_state().0, 1105, "{refused}");
        }
    }
}
