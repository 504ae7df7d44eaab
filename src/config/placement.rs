//! Where the logical tables live physically, read backwards: which (schema, table) a table in a
//! database on a dataHost is — sharded, global, ER child or an unconfigured table of a default node.

use std::collections::HashMap;

use super::model::Config;

/// A logical table, or every table of a schema (a change the reader could not narrow down).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Logical {
    Table { schema: String, table: String },
    Schema(String),
}

/// The reverse map of one configuration. Names compare case-insensitively, as MariaDB's on Linux do
/// not but Mycat's routing does: a miss here would be a stale cache entry, a false hit only an extra
/// invalidation.
#[derive(Debug, Default)]
pub struct Placement {
    /// (dataHost, database, table) → the configured logical tables stored there.
    tables: HashMap<(String, String, String), Vec<Logical>>,
    /// (dataHost, database) → schemas whose default dataNode it is, and every configured table there.
    databases: HashMap<(String, String), (Vec<String>, Vec<Logical>)>,
    /// dataHost → everything on it.
    hosts: HashMap<String, Vec<Logical>>,
}

fn key(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl Placement {
    pub fn of(cfg: &Config) -> Self {
        let mut p = Placement::default();
        let node = |name: &str| cfg.data_node(name).map(|n| (n.data_host.clone(), key(&n.database)));
        for s in &cfg.schemas {
            for t in s.all_tables() {
                let logical = Logical::Table { schema: s.name.clone(), table: t.name.clone() };
                for dn in &t.data_nodes {
                    let Some((dh, db)) = node(dn) else { continue };
                    let e = p.tables.entry((dh.clone(), db.clone(), key(&t.name))).or_default();
                    if !e.contains(&logical) {
                        e.push(logical.clone());
                    }
                    let d = p.databases.entry((dh.clone(), db)).or_default();
                    if !d.1.contains(&logical) {
                        d.1.push(logical.clone());
                    }
                    let h = p.hosts.entry(dh).or_default();
                    if !h.contains(&logical) {
                        h.push(logical.clone());
                    }
                }
            }
            if let Some((dh, db)) = s.data_node.as_deref().and_then(node) {
                p.databases.entry((dh.clone(), db)).or_default().0.push(s.name.clone());
                p.hosts.entry(dh).or_default().push(Logical::Schema(s.name.clone()));
            }
        }
        p
    }

    /// The logical tables a change to `table` in `database` on `data_host` changes: the configured ones
    /// stored there, and the table of that name in each schema whose default node it is (unless the
    /// schema configures that name elsewhere).
    pub fn table(&self, cfg: &Config, data_host: &str, database: &str, table: &str) -> Vec<Logical> {
        let mut out = self.tables.get(&(data_host.to_string(), key(database), key(table))).cloned().unwrap_or_default();
        if let Some((schemas, _)) = self.databases.get(&(data_host.to_string(), key(database))) {
            for s in schemas {
                let configured = cfg.schema(s).is_some_and(|sc| sc.table(table).is_some());
                if !configured {
                    out.push(Logical::Table { schema: s.clone(), table: table.to_ascii_lowercase() });
                }
            }
        }
        out
    }

    /// Everything stored in `database` on `data_host`.
    pub fn database(&self, data_host: &str, database: &str) -> Vec<Logical> {
        match self.databases.get(&(data_host.to_string(), key(database))) {
            Some((schemas, tables)) => {
                tables.iter().cloned().chain(schemas.iter().map(|s| Logical::Schema(s.clone()))).collect()
            }
            None => Vec::new(),
        }
    }

    /// Everything stored on `data_host`.
    pub fn host(&self, data_host: &str) -> Vec<Logical> {
        self.hosts.get(data_host).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Config {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::config::load(&root.join("config"), Some(&root.join("rules"))).map(|(c, _)| c).expect("config/")
    }

    fn t(schema: &str, table: &str) -> Logical {
        Logical::Table { schema: schema.into(), table: table.into() }
    }

    #[test]
    fn physical_tables_map_back_to_sharded_global_child_and_default_node_tables() {
        let cfg = demo();
        let p = Placement::of(&cfg);
        // config/: customer mod-2 on dn1 (host1/shardcat_1), dn2; orders its ER child; region global
        assert_eq!(p.table(&cfg, "host1", "shardcat_1", "customer"), vec![t("demo", "customer")]);
        assert_eq!(p.table(&cfg, "host2", "SHARDCAT_2", "Orders"), vec![t("demo", "orders")]);
        assert_eq!(p.table(&cfg, "host2", "shardcat_2", "region"), vec![t("demo", "region")]);
        // an unconfigured table of demo's default node, and of the pass-through schema
        assert_eq!(p.table(&cfg, "host1", "shardcat_default", "notes"), vec![t("demo", "notes")]);
        assert_eq!(p.table(&cfg, "host1", "passthru", "x"), vec![t("passthru", "x")]);
        // a configured name in the default node's database is not the configured table
        assert_eq!(p.table(&cfg, "host1", "shardcat_default", "customer"), vec![]);
        assert_eq!(p.table(&cfg, "host1", "elsewhere", "customer"), vec![]);
        let db = p.database("host1", "shardcat_1");
        assert!(db.contains(&t("demo", "customer")) && db.contains(&t("demo", "orders")), "{db:?}");
        let all = p.host("host1");
        assert!(all.contains(&Logical::Schema("demo".into())) && all.contains(&Logical::Schema("passthru".into())));
    }
}
