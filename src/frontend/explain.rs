//! `EXPLAIN <statement>` on the service port, as Mycat answers it: without executing anything, one row
//! per target dataNode with the statement that node would receive (columns DATA_NODE, SQL), and beside
//! them (column PLAN) the proxy's operator tree, one operator per row (`route::describe`).

use super::local::Col;
use super::session::Session;
use crate::error::{Error, Result};
use crate::sql::classify::{classify, word_at, Kind};

impl Session {
    /// `sql` is the whole EXPLAIN statement; `start` the offset of its first keyword.
    pub async fn explain(&mut self, sql: &str, start: usize, raw: &bytes::Bytes) -> Result<()> {
        let (_, after) = word_at(sql, start);
        let inner = sql[after..].trim_start();
        let (kind, _) = classify(inner);
        if !matches!(kind, Kind::Select | Kind::Insert | Kind::Replace | Kind::Update | Kind::Delete) {
            // EXPLAIN t / EXPLAIN FORMAT=…: MySQL's meaning, answered by a node holding the table
            return self.routed(sql, Kind::Explain, raw).await;
        }
        let cfg = self.rt.config.clone();
        let schema = self.current_or_first_schema(&cfg)?;
        let (targets, plan): (Vec<(String, String)>, Vec<String>) = if schema.tables.is_empty() {
            let node = crate::route::any_node(schema, &|n| self.rt.backends.node_alive(n))?;
            let plan = vec![format!("Route to dataNode {node}")];
            (vec![(node.to_string(), inner.to_string())], plan)
        } else {
            let a = self.shared.parse_cache.get(inner).map_err(|m| {
                Error::sql(
                    1064,
                    "42000",
                    format!("You have an error in your SQL syntax, or shardcat cannot parse it to route it: {m}"),
                )
            })?;
            let r = match self.route_with_lookups(&cfg, schema, kind, &a, inner, &[]).await {
                Ok(r) => r,
                // what runs first (frontend::subquery): named, not run — EXPLAIN executes nothing
                Err(e) if kind == Kind::Select && e.code_and_state().0 == 1105 => {
                    let batched = self.batch_plan(inner, &a);
                    let first = self.runs_first(inner, &a);
                    let mut plan = match &batched {
                        Some(b) if b.left_limited => b.describe(),
                        _ if first.is_empty() => return Err(e),
                        _ => {
                            let mut plan =
                                vec!["Then the statement with their values written in, routed as written".to_string()];
                            plan.extend(first.iter().map(|q| format!("└─ Runs first: {q}")));
                            plan
                        }
                    };
                    if let Some(b) = batched.filter(|b| !b.left_limited) {
                        plan.push("If what runs first outgrows mergeMemoryLimit:".into());
                        plan.extend(b.describe());
                    }
                    let rows: Vec<Vec<Option<String>>> =
                        plan.into_iter().map(|p| vec![Some(String::new()), Some(String::new()), Some(p)]).collect();
                    return self.send_result("", &explain_cols(), &rows).await;
                }
                Err(e) => return Err(e),
            };
            let targets =
                r.nodes.iter().enumerate().map(|(i, n)| (n.to_string(), r.sql_for(i, inner).to_string())).collect();
            (targets, r.describe())
        };
        // the longer of the two lists sets the rows; the other's cells are empty there
        let rows: Vec<Vec<Option<String>>> = (0..targets.len().max(plan.len()))
            .map(|i| {
                let (node, sql) = targets.get(i).cloned().unwrap_or_default();
                vec![Some(node), Some(sql), Some(plan.get(i).cloned().unwrap_or_default())]
            })
            .collect();
        self.send_result("", &explain_cols(), &rows).await
    }
}

fn explain_cols() -> [Col<'static>; 3] {
    [
        Col { name: "DATA_NODE", numeric: false },
        Col { name: "SQL", numeric: false },
        Col { name: "PLAN", numeric: false },
    ]
}
