//! `EXPLAIN <statement>` on the service port, as Mycat answers it: without executing anything, one row
//! per target dataNode with the statement that node would receive (columns DATA_NODE, SQL).

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
        let rows: Vec<Vec<Option<String>>> = if schema.tables.is_empty() {
            let node = crate::route::any_node(schema, &|n| self.rt.backends.node_alive(n))?;
            vec![vec![Some(node.to_string()), Some(inner.to_string())]]
        } else {
            let a = self.shared.parse_cache.get(inner).map_err(|m| {
                Error::sql(
                    1064,
                    "42000",
                    format!("You have an error in your SQL syntax, or shardcat cannot parse it to route it: {m}"),
                )
            })?;
            let r = self.route_with_lookups(&cfg, schema, kind, &a, inner, &[]).await?;
            r.nodes
                .iter()
                .enumerate()
                .map(|(i, n)| vec![Some(n.to_string()), Some(r.sql_for(i, inner).to_string())])
                .collect()
        };
        self.send_result("", &[Col { name: "DATA_NODE", numeric: false }, Col { name: "SQL", numeric: false }], &rows)
            .await
    }
}
