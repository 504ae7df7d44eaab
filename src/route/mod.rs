//! Routing: which dataNodes a statement goes to, from the schema's table configuration. This issue's
//! scope: default nodes, global tables, single-node tables, statements without tables; sharded tables
//! are routed to all their nodes (value-based pruning arrives with the rule functions).

use std::sync::Arc;

use rand::Rng;

use crate::backend::Backends;
use crate::config::model::{Config, Schema, Table, TableKind, User};
use crate::error::{Error, Result};
use crate::sql::analyze::{Analysis, TableRef};
use crate::sql::classify::Kind;

/// How the executor combines the nodes' replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One node: the reply is forwarded untouched.
    Single,
    /// Rows from every node, concatenated (no ordering or aggregation needed).
    Concat,
    /// The same write on every node of a global table: every node must succeed; one node's counts
    /// are reported, as one MySQL server holding the table would.
    WriteAllReportOne,
    /// A write spread over shards: affected rows are summed.
    WriteAllSum,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub nodes: Vec<Arc<str>>,
    pub mode: Mode,
}

impl Route {
    fn single(node: &str) -> Route {
        Route { nodes: vec![node.into()], mode: Mode::Single }
    }
}

/// Schemas that live on every MySQL server: statements naming them go to any node of the schema.
pub fn is_system_schema(s: &str) -> bool {
    ["information_schema", "mysql", "performance_schema", "sys"].iter().any(|x| x.eq_ignore_ascii_case(s))
}

/// What routing needs besides the statement: the config, the user (schema rights), node liveness.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub user: &'a User,
    pub backends: &'a Backends,
}

impl Ctx<'_> {
    fn alive(&self, node: &str) -> bool {
        self.backends.node_alive(node)
    }
}

/// The node for statements without tables: `randomDataNode`, else the default node, else the first
/// node of the schema — the first of those that is alive (the first one if none is).
pub fn any_node(schema: &Schema, alive: &dyn Fn(&str) -> bool) -> Result<Arc<str>> {
    let mut candidates: Vec<&str> =
        schema.random_data_node.iter().chain(schema.data_node.iter()).map(String::as_str).collect();
    candidates.extend(schema.all_data_nodes());
    candidates
        .iter()
        .find(|n| alive(n))
        .or(candidates.first())
        .map(|n| Arc::from(*n))
        .ok_or_else(|| Error::unsupported(format!("schema '{}' has no dataNode", schema.name)))
}

/// What one table contributes to a route.
enum Placement<'a> {
    /// Every listed node holds every row (global table): reads may use any one of them.
    Everywhere(&'a [String]),
    /// Rows live on these nodes (a subset for sharded tables once values are routed).
    Exactly(Vec<&'a str>),
}

fn placement<'a>(
    cfg: &'a Config,
    schema: &'a Schema,
    t: &TableRef,
    user_schemas: &dyn Fn(&str) -> bool,
) -> Result<(Option<&'a Table>, Placement<'a>)> {
    let sch = match &t.schema {
        Some(s) if !s.eq_ignore_ascii_case(&schema.name) => {
            if !user_schemas(s) {
                return Err(Error::sql(1044, "42000", format!("Access denied to database '{s}'")));
            }
            cfg.schema(s).ok_or_else(|| Error::sql(1146, "42S02", format!("Table '{}.{}' doesn't exist", s, t.name)))?
        }
        _ => schema,
    };
    match sch.table(&t.name) {
        Some(tab) => {
            let p = match tab.kind {
                TableKind::Global => Placement::Everywhere(&tab.data_nodes),
                _ => Placement::Exactly(tab.data_nodes.iter().map(String::as_str).collect()),
            };
            Ok((Some(tab), p))
        }
        None => match &sch.data_node {
            Some(dn) => Ok((None, Placement::Exactly(vec![dn.as_str()]))),
            None => Err(Error::sql(
                1146,
                "42S02",
                format!(
                    "Table '{}.{}' doesn't exist (not configured in schema '{}', which has no default dataNode)",
                    sch.name, t.name, sch.name
                ),
            )),
        },
    }
}

/// Routes an analysed statement of `kind` in `schema` (global reads pick a live node).
pub fn route(ctx: &Ctx<'_>, schema: &Schema, kind: Kind, a: &Analysis) -> Result<Route> {
    let cfg = ctx.cfg;
    let user_schemas = &|s: &str| ctx.user.may_use(s);
    let tables: Vec<&TableRef> =
        a.tables.iter().filter(|t| !t.schema.as_deref().is_some_and(is_system_schema)).collect();
    if tables.is_empty() {
        return Ok(Route { nodes: vec![any_node(schema, &|n| ctx.alive(n))?], mode: Mode::Single });
    }
    let is_write = kind.is_write() || a.locking_read;
    let mut exact: Option<(Vec<&str>, &TableRef)> = None;
    let mut everywhere: Vec<(&[String], &TableRef)> = Vec::new();
    let mut sharded: Vec<&Table> = Vec::new();
    for t in &tables {
        let (tab, p) = placement(cfg, schema, t, user_schemas)?;
        if let Some(tab) = tab {
            if matches!(tab.kind, TableKind::Sharded { .. } | TableKind::Child { .. }) && tab.data_nodes.len() > 1 {
                sharded.push(tab);
            }
        }
        match p {
            Placement::Everywhere(nodes) => everywhere.push((nodes, t)),
            Placement::Exactly(nodes) => match &exact {
                None => exact = Some((nodes, t)),
                Some((prev, prev_t)) => {
                    if *prev != nodes {
                        return Err(Error::unsupported(format!(
                            "tables '{}' and '{}' live on different dataNodes; cross-node joins are not supported yet",
                            prev_t.name, t.name
                        )));
                    }
                }
            },
        }
    }
    if sharded.len() > 1 {
        let names: Vec<&str> = sharded.iter().map(|t| t.name.as_str()).collect();
        return Err(Error::unsupported(format!(
            "statement joins sharded tables {}; co-located joins arrive with shard routing",
            names.join(", ")
        )));
    }
    let nodes: Vec<Arc<str>> = match exact {
        Some((nodes, _)) => {
            for (g, gt) in &everywhere {
                if let Some(missing) = nodes.iter().find(|n| !g.iter().any(|x| x == *n)) {
                    return Err(Error::unsupported(format!(
                        "global table '{}' is not on dataNode '{missing}', which this statement also needs",
                        gt.name
                    )));
                }
            }
            nodes.into_iter().map(Arc::from).collect()
        }
        None => {
            // only global tables: nodes common to all of them
            let (first, _) = everywhere[0];
            let common: Vec<&String> = first.iter().filter(|n| everywhere.iter().all(|(g, _)| g.contains(n))).collect();
            if common.is_empty() {
                return Err(Error::unsupported("the global tables of this statement share no dataNode"));
            }
            if is_write {
                if everywhere.len() > 1 && everywhere.iter().any(|(g, _)| g.len() != common.len()) {
                    return Err(Error::unsupported("a write naming global tables with different dataNodes"));
                }
                let nodes: Vec<Arc<str>> = common.iter().map(|n| Arc::from(n.as_str())).collect();
                let mode = if nodes.len() == 1 { Mode::Single } else { Mode::WriteAllReportOne };
                return Ok(Route { nodes, mode });
            }
            let live: Vec<&&String> = common.iter().filter(|n| ctx.alive(n)).collect();
            let pick = match live.len() {
                0 => common[rand::rng().random_range(0..common.len())],
                n => live[rand::rng().random_range(0..n)],
            };
            return Ok(Route::single(pick));
        }
    };
    if nodes.len() == 1 {
        return Ok(Route { nodes, mode: Mode::Single });
    }
    let table = sharded.first().map(|t| t.name.as_str()).unwrap_or_else(|| tables[0].name.as_str());
    match kind {
        Kind::Select if !a.locking_read => match a.needs_merge {
            None => Ok(Route { nodes, mode: Mode::Concat }),
            Some(what) => Err(Error::unsupported(format!(
                "SELECT with {what} on '{table}' spans {} dataNodes and needs a cross-shard merge, which shardcat does not run yet",
                nodes.len()
            ))),
        },
        Kind::Update | Kind::Delete => Ok(Route { nodes, mode: Mode::WriteAllSum }),
        Kind::Ddl => Ok(Route { nodes, mode: Mode::WriteAllReportOne }),
        Kind::Insert | Kind::Replace => Err(Error::unsupported(format!(
            "{} into sharded table '{table}' needs shard routing by its rule, which arrives with the routing work",
            kind.verb()
        ))),
        _ => Err(Error::unsupported(format!(
            "this {} on '{table}' spans {} dataNodes; shardcat cannot run it exactly as one server would",
            kind.verb(),
            nodes.len()
        ))),
    }
}
