//! EXPLAIN's operator tree of a route, as vtgate prints its plans: what the proxy does with the
//! shards' rows (Limit, Sort, Filter, Aggregate, MergeSort, Concat, WriteAll) above the Route to the
//! dataNodes, one line per operator, each describing itself.

use super::merge::{AggKind, DistinctFn, MergePlan, SortKey};
use super::{Mode, Route};

fn keys(plan: &MergePlan, keys: &[SortKey]) -> String {
    let k: Vec<String> =
        keys.iter().map(|k| if k.desc { format!("{} DESC", plan.label(k.col)) } else { plan.label(k.col) }).collect();
    k.join(", ")
}

/// One line per aggregate of `plan`: its column and how the proxy finishes it.
fn aggregates(plan: &MergePlan) -> String {
    let a: Vec<String> = plan
        .aggs
        .iter()
        .map(|a| {
            let col = plan.label(super::merge::ColRef::Visible(a.col));
            let how = match &a.kind {
                AggKind::Count => "counts added".to_string(),
                AggKind::Sum => "sums added".to_string(),
                AggKind::Min { .. } => "least of the shards'".to_string(),
                AggKind::Max { .. } => "greatest of the shards'".to_string(),
                AggKind::Avg { .. } => "added SUM / added COUNT".to_string(),
                AggKind::Distinct { func, sorted, .. } => {
                    let f = match func {
                        DistinctFn::Count => "counted",
                        DistinctFn::Sum => "added",
                        DistinctFn::Avg => "averaged",
                    };
                    let held = if *sorted { "arriving sorted, one held" } else { "a set per group" };
                    format!("distinct values {f} ({held})")
                }
                AggKind::Concat { distinct, .. } => {
                    format!("values joined in order{}", if *distinct { ", each once" } else { "" })
                }
            };
            format!("{col}: {how}")
        })
        .collect();
    a.join("; ")
}

impl Route {
    /// The operators, outermost first.
    pub fn describe(&self) -> Vec<String> {
        let mut ops: Vec<String> = Vec::new();
        let route = match self.nodes.as_slice() {
            [one] => format!("Route to dataNode {one}"),
            many => format!(
                "Route to {} dataNodes ({})",
                many.len(),
                many.iter().map(|n| n.as_ref()).collect::<Vec<_>>().join(", ")
            ),
        };
        match &self.mode {
            Mode::Single => {}
            Mode::Concat => {
                if let Some((m, n)) = self.limit {
                    ops.push(format!("Limit offset={m} count={n}"));
                }
                ops.push("Concat (rows of every node as they come)".into());
            }
            Mode::WriteAllSum => ops.push("WriteAll (one transaction on every node, affected rows added)".into()),
            Mode::WriteAllReportOne => {
                ops.push("WriteAll (one transaction on every node, one node's counts reported)".into())
            }
            Mode::Merge(plan) => {
                if let Some((m, n)) = plan.limit {
                    ops.push(format!("Limit offset={m} count={n}"));
                }
                if plan.group.is_some() && !plan.order.is_empty() && !plan.distinct_sorted {
                    ops.push(format!("Sort by {}", keys(plan, &plan.order)));
                }
                if let Some(h) = &plan.having {
                    ops.push(format!("Filter HAVING {}", h.expr));
                }
                match &plan.group {
                    Some(g) if plan.aggs.is_empty() => {
                        let labels: Vec<String> = g.iter().map(|k| plan.label(k.col)).collect();
                        let how = if plan.distinct_sorted { " (neighbours compared, one row held)" } else { "" };
                        ops.push(format!("Distinct by {}{how}", labels.join(", ")));
                    }
                    Some(g) => {
                        let by = if g.is_empty() {
                            "all rows".to_string()
                        } else {
                            g.iter().map(|k| plan.label(k.col)).collect::<Vec<_>>().join(", ")
                        };
                        ops.push(format!("Aggregate by {by}: {}", aggregates(plan)));
                    }
                    None => {}
                }
                if !plan.feed.is_empty() {
                    ops.push(format!("MergeSort by {}", keys(plan, &plan.feed)));
                } else if (plan.group.is_none() || plan.distinct_sorted) && !plan.order.is_empty() {
                    ops.push(format!("MergeSort by {} (one row held per node)", keys(plan, &plan.order)));
                } else {
                    ops.push("Concat (rows of every node as they come)".into());
                }
            }
        }
        ops.push(route);
        ops.iter()
            .enumerate()
            .map(|(depth, op)| if depth == 0 { op.clone() } else { format!("{}└─ {op}", "   ".repeat(depth - 1)) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::condition::Binder;
    use sqlparser::ast::Statement;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    fn merged(sql: &str) -> Route {
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        let Statement::Query(q) = &stmt else { panic!() };
        let plan = crate::route::merge::plan(sql, q, &Binder::new(&stmt, &[])).unwrap();
        Route {
            nodes: vec!["dn1".into(), "dn2".into()],
            mode: Mode::Merge(Box::new(plan)),
            sql: super::super::Rewrite::Original,
            limit: None,
        }
    }

    #[test]
    fn merges_describe_their_operators() {
        let r = merged(
            "SELECT g, COUNT(*), COUNT(DISTINCT x) FROM t GROUP BY g HAVING COUNT(*) > 1 ORDER BY 2 DESC LIMIT 5",
        );
        assert_eq!(
            r.describe(),
            vec![
                "Limit offset=0 count=5".to_string(),
                "└─ Sort by COUNT(*) DESC".into(),
                "   └─ Filter HAVING COUNT(*) > 1".into(),
                "      └─ Aggregate by g: COUNT(*): counts added; COUNT(DISTINCT x): distinct values counted (arriving sorted, one held)".into(),
                "         └─ MergeSort by g, x".into(),
                "            └─ Route to 2 dataNodes (dn1, dn2)".into(),
            ]
        );
        let r = merged("SELECT id FROM t ORDER BY name DESC");
        assert_eq!(r.describe()[0], "MergeSort by name DESC (one row held per node)");
        // DISTINCT ordered by exactly its columns streams; otherwise its rows are held, then sorted
        assert_eq!(
            merged("SELECT DISTINCT a, b FROM t ORDER BY b DESC, a LIMIT 3").describe(),
            vec![
                "Limit offset=0 count=3".to_string(),
                "└─ Distinct by a, b (neighbours compared, one row held)".into(),
                "   └─ MergeSort by b DESC, a (one row held per node)".into(),
                "      └─ Route to 2 dataNodes (dn1, dn2)".into(),
            ]
        );
        assert_eq!(merged("SELECT DISTINCT a, b FROM t ORDER BY a").describe()[0], "Sort by a");
        let single = Route::single("dn1");
        assert_eq!(single.describe(), vec!["Route to dataNode dn1".to_string()]);
    }
}
