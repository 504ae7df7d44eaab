//! The sharding rules compiled for routing: for every sharded table of every schema, its sharding
//! column and its built partition function; for ER children, the chain up to the root.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::model::{Config, TableKind};
use crate::rule::{self, BuildCtx, PartitionFunction};

pub struct ShardedTable {
    pub rule: String,
    /// Sharding column, as written in rule.xml.
    pub column: String,
    pub func: Arc<dyn PartitionFunction>,
}

impl std::fmt::Debug for ShardedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShardedTable({} by {})", self.rule, self.column)
    }
}

/// Compiled rules, keyed by (schema, table) upper-cased.
#[derive(Default, Debug)]
pub struct Rules {
    tables: HashMap<(String, String), ShardedTable>,
}

fn key(schema: &str, table: &str) -> (String, String) {
    (schema.to_ascii_uppercase(), table.to_ascii_uppercase())
}

impl Rules {
    pub fn build(cfg: &Config) -> Result<Rules, String> {
        let mut tables = HashMap::new();
        for s in &cfg.schemas {
            for t in s.all_tables() {
                let TableKind::Sharded { rule } = &t.kind else { continue };
                let r = cfg.table_rule(rule).ok_or_else(|| format!("table '{}': unknown rule '{rule}'", t.name))?;
                let f = cfg
                    .function(&r.algorithm)
                    .ok_or_else(|| format!("rule '{rule}': unknown function '{}'", r.algorithm))?;
                let ctx = BuildCtx {
                    rules_dir: cfg.rules_dir.clone(),
                    table_nodes: t.data_nodes.len(),
                    ruledata: Some(cfg.config_dir.join("ruledata").join(format!(
                        "{rule}_{}_{}.properties",
                        s.name.to_ascii_uppercase(),
                        t.name.to_ascii_uppercase()
                    ))),
                };
                let func = rule::build(f, &ctx).map_err(|e| format!("table '{}': {e}", t.name))?;
                tables
                    .insert(key(&s.name, &t.name), ShardedTable { rule: rule.clone(), column: r.column.clone(), func });
            }
        }
        Ok(Rules { tables })
    }

    pub fn sharded(&self, schema: &str, table: &str) -> Option<&ShardedTable> {
        self.tables.get(&key(schema, table))
    }
}
