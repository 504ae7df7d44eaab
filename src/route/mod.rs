//! Routing: which dataNodes a statement goes to, what each of them receives, and how the replies
//! combine. One file per statement kind (select, dml, insert) and per concern (condition, limit,
//! rewrite); decisions are pure functions of (statement, bound parameters, config, node liveness).

pub mod condition;
pub mod describe;
pub mod dml;
pub mod insert;
pub mod limit;
pub mod merge;
pub mod rewrite;
pub mod rules;
pub mod select;

use std::sync::Arc;

use rand::Rng;
use sqlparser::ast::Statement;

use crate::backend::Backends;
use crate::config::model::{Config, Schema, Table, TableKind, User};
use crate::error::{Error, Result};
use crate::sql::analyze::{Analysis, TableRef};
use crate::sql::classify::Kind;
pub use condition::Binder;
pub use condition::Param;
use condition::{Parts, Router, Target};
pub use rules::Rules;

/// How the executor combines the nodes' replies.
#[derive(Debug, Clone, PartialEq)]
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
    /// Rows from every node merged by the plan (ORDER BY, GROUP BY, aggregates, DISTINCT, LIMIT).
    Merge(Box<merge::MergePlan>),
}

/// What each node receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// The client's statement as sent.
    Original,
    /// One rewritten statement for every node.
    Shared(String),
    /// A statement per node, in `nodes` order.
    PerNode(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Route {
    pub nodes: Vec<Arc<str>>,
    pub mode: Mode,
    pub sql: Rewrite,
    /// For `Concat`: skip this many rows, then forward at most this many (`LIMIT` without ORDER BY).
    pub limit: Option<(u64, u64)>,
}

impl Route {
    pub fn single(node: impl Into<Arc<str>>) -> Route {
        Route { nodes: vec![node.into()], mode: Mode::Single, sql: Rewrite::Original, limit: None }
    }

    fn new(nodes: Vec<Arc<str>>, mode: Mode) -> Route {
        Route { nodes, mode, sql: Rewrite::Original, limit: None }
    }

    /// This route with a merge plan: every node runs the plan's statement, the proxy merges.
    pub fn merged(mut self, plan: merge::MergePlan) -> Route {
        self.sql = Rewrite::Shared(plan.shard_sql.clone());
        self.mode = Mode::Merge(Box::new(plan));
        self
    }

    /// The statement node `i` receives.
    pub fn sql_for<'a>(&'a self, i: usize, original: &'a str) -> &'a str {
        match &self.sql {
            Rewrite::Original => original,
            Rewrite::Shared(s) => s,
            Rewrite::PerNode(v) => v.get(i).map(String::as_str).unwrap_or(original),
        }
    }
}

/// What routing needs besides the statement: the config, compiled rules, the user, node liveness.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub rules: &'a Rules,
    pub user: &'a User,
    pub backends: &'a Backends,
    /// Parent rows found by an ER lookup (joinKey value → node), for child-table INSERTs.
    pub parents: Option<&'a std::collections::HashMap<String, Arc<str>>>,
    /// What merges learned of their shards' string keys under this session's character sets: a
    /// merge whose every node told runs its lean text.
    pub learned: Option<crate::exec::learned::Ask<'a>>,
}

impl Ctx<'_> {
    fn alive(&self, node: &str) -> bool {
        self.backends.node_alive(node)
    }
}

/// Schemas that live on every MySQL server: statements naming them go to any node of the schema.
pub fn is_system_schema(s: &str) -> bool {
    ["information_schema", "mysql", "performance_schema", "sys"].iter().any(|x| x.eq_ignore_ascii_case(s))
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

/// A table reference resolved against the configuration.
pub struct Place<'a> {
    pub schema: &'a Schema,
    pub table: Option<&'a Table>,
    pub name: String,
}

impl Place<'_> {
    /// Rows of this table may be on several nodes (sharded or ER child over more than one node).
    pub fn partitioned(&self) -> bool {
        self.table.is_some_and(|t| {
            matches!(t.kind, TableKind::Sharded { .. } | TableKind::Child { .. }) && t.data_nodes.len() > 1
        })
    }
}

/// Resolves a table reference: the schema it names (access checked), its configuration if any.
pub fn place<'a>(ctx: &Ctx<'a>, schema: &'a Schema, t: &TableRef) -> Result<Place<'a>> {
    let sch = match &t.schema {
        Some(s) if !s.eq_ignore_ascii_case(&schema.name) => {
            let other = ctx
                .cfg
                .schema(s)
                .ok_or_else(|| Error::sql(1146, "42S02", format!("Table '{}.{}' doesn't exist", s, t.name)))?;
            if !ctx.user.may_use(&other.name) {
                return Err(Error::sql(
                    1044,
                    "42000",
                    format!("Access denied for user '{}' to database '{s}'", ctx.user.name),
                ));
            }
            other
        }
        _ => schema,
    };
    let table = sch.table(&t.name);
    if table.is_none() && sch.data_node.is_none() {
        return Err(Error::sql(
            1146,
            "42S02",
            format!(
                "Table '{}.{}' doesn't exist (not configured in schema '{}', which has no default dataNode)",
                sch.name, t.name, sch.name
            ),
        ));
    }
    Ok(Place { schema: sch, table, name: t.name.clone() })
}

/// Where a table's rows are, for one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSet {
    /// Every listed node holds every row (global table): any one will do for reads.
    Any(Vec<Arc<str>>),
    /// Rows are on exactly these nodes (possibly none: a condition no row can satisfy).
    Exact(Vec<Arc<str>>),
}

fn nodes_of(t: &Table) -> Vec<Arc<str>> {
    t.data_nodes.iter().map(|n| Arc::from(n.as_str())).collect()
}

fn pick(t: &Table, parts: Parts) -> Result<Vec<Arc<str>>> {
    match parts {
        Parts::All => Ok(nodes_of(t)),
        Parts::Only(set) => set
            .into_iter()
            .map(|i| {
                t.data_nodes.get(i).map(|n| Arc::from(n.as_str())).ok_or_else(|| {
                    Error::sql(
                        1064,
                        "42000",
                        format!("Can't find a valid data node for specified node index :{} -> {i}", t.name),
                    )
                })
            })
            .collect(),
    }
}

/// The nodes a table's rows matching `selection` are on.
pub fn table_nodes(
    ctx: &Ctx<'_>,
    p: &Place<'_>,
    selection: Option<&sqlparser::ast::Expr>,
    qualifiers: Vec<String>,
    unqualified: bool,
    binder: &Binder<'_>,
) -> Result<NodeSet> {
    let Some(t) = p.table else {
        // unconfigured: the schema's default node (place() checked there is one)
        return Ok(NodeSet::Exact(p.schema.data_node.iter().map(|n| Arc::from(n.as_str())).collect()));
    };
    match &t.kind {
        TableKind::Global => Ok(NodeSet::Any(nodes_of(t))),
        TableKind::Unsharded => Ok(NodeSet::Exact(nodes_of(t))),
        TableKind::Sharded { .. } => {
            let Some(r) = ctx.rules.sharded(&p.schema.name, &t.name) else { return Ok(NodeSet::Exact(nodes_of(t))) };
            let target = Target { column: &r.column, qualifiers, unqualified };
            let parts = Router { target: &target, func: r.func.as_ref(), binder }.parts(selection);
            if t.rule_required && parts == Parts::All {
                return Err(Error::sql(
                    1064,
                    "42000",
                    format!(
                        "route rule for table {} is required: a condition on {} (=, IN, BETWEEN) must narrow it",
                        t.name.to_ascii_uppercase(),
                        r.column
                    ),
                ));
            }
            Ok(NodeSet::Exact(pick(t, parts)?))
        }
        TableKind::Child { parent, join_key, parent_key } => {
            // fast path: the joinKey references the root's sharding column
            let Some(parent_t) = p.schema.table(parent) else { return Ok(NodeSet::Exact(nodes_of(t))) };
            if let (TableKind::Sharded { .. }, Some(r)) = (&parent_t.kind, ctx.rules.sharded(&p.schema.name, parent)) {
                if r.column.eq_ignore_ascii_case(parent_key) {
                    let target = Target { column: join_key, qualifiers, unqualified };
                    let parts = Router { target: &target, func: r.func.as_ref(), binder }.parts(selection);
                    return Ok(NodeSet::Exact(pick(t, parts)?));
                }
            }
            Ok(NodeSet::Exact(nodes_of(t)))
        }
    }
}

/// Combines the node sets of every table of a statement. `Err` names the tables that cannot meet.
/// `colocated`: the partitioned tables were proven to join on co-located rows.
pub fn combine(
    ctx: &Ctx<'_>,
    sets: &[(String, NodeSet, bool)],
    for_write: bool,
    colocated: bool,
) -> Result<Vec<Arc<str>>> {
    let mut exact: Option<(&Vec<Arc<str>>, &str)> = None;
    for (name, set, _) in sets {
        if let NodeSet::Exact(nodes) = set {
            match exact {
                None => exact = Some((nodes, name)),
                Some((prev, prev_name)) => {
                    let (mut a, mut b) = (prev.clone(), nodes.clone());
                    a.sort();
                    b.sort();
                    if a != b {
                        return Err(Error::unsupported(format!(
                            "tables '{prev_name}' and '{name}' live on different dataNodes for this statement; cross-node joins are not supported yet"
                        )));
                    }
                }
            }
        }
    }
    let partitioned: Vec<&str> = sets.iter().filter(|s| s.2).map(|s| s.0.as_str()).collect();
    if let Some((nodes, _)) = exact {
        if partitioned.len() > 1 && nodes.len() > 1 && !colocated {
            return Err(Error::unsupported(format!(
                "statement joins sharded tables {} across {} dataNodes without a co-locating condition (ER joinKey = parentKey, or equal sharding columns under the same rule); cross-node joins are not supported yet",
                partitioned.join(", "),
                nodes.len()
            )));
        }
        for (name, set, _) in sets {
            if let NodeSet::Any(g) = set {
                if let Some(missing) = nodes.iter().find(|n| !g.contains(n)) {
                    return Err(Error::unsupported(format!(
                        "global table '{name}' is not on dataNode '{missing}', which this statement also needs"
                    )));
                }
            }
        }
        return Ok(nodes.clone());
    }
    // only global tables: nodes common to all of them
    let mut common: Vec<Arc<str>> = match sets.first() {
        Some((_, NodeSet::Any(g), _)) => g.clone(),
        _ => Vec::new(),
    };
    for (_, set, _) in sets {
        if let NodeSet::Any(g) = set {
            common.retain(|n| g.contains(n));
        }
    }
    if common.is_empty() {
        return Err(Error::unsupported("the global tables of this statement share no dataNode"));
    }
    if for_write {
        if sets.iter().any(|(_, s, _)| matches!(s, NodeSet::Any(g) if g.len() != common.len())) {
            return Err(Error::unsupported("a write naming global tables with different dataNodes"));
        }
        return Ok(common);
    }
    let live: Vec<&Arc<str>> = common.iter().filter(|n| ctx.alive(n)).collect();
    let chosen = match live.len() {
        0 => common[rand::rng().random_range(0..common.len())].clone(),
        n => live[rand::rng().random_range(0..n)].clone(),
    };
    Ok(vec![chosen])
}

/// Routes an analysed statement of `kind` in `schema`. `params` are the bound parameters of a
/// prepared statement, empty for plain queries.
pub fn route(ctx: &Ctx<'_>, schema: &Schema, kind: Kind, a: &Analysis, sql: &str, params: &[Param]) -> Result<Route> {
    let tables: Vec<&TableRef> =
        a.tables.iter().filter(|t| !t.schema.as_deref().is_some_and(is_system_schema)).collect();
    if tables.is_empty() {
        return Ok(Route::single(any_node(schema, &|n| ctx.alive(n))?));
    }
    let mut r = match a.stmts.as_slice() {
        [Statement::Query(q)] => select::route(ctx, schema, q, a, sql, params)?,
        [stmt @ Statement::Insert(_)] => {
            let r = insert::route(ctx, schema, stmt, sql, &Binder::of(a, stmt, params))?;
            if matches!(r.sql, Rewrite::PerNode(_)) && !params.is_empty() {
                // rows of a prepared INSERT for several shards: split the statement with its
                // parameters written in (each node gets a plain statement)
                let text = rewrite::inline_params(sql, stmt, params).ok_or_else(|| {
                    Error::unsupported("cannot bind the parameters of this INSERT to split it over shards")
                })?;
                let stmts = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::MySqlDialect {}, &text)
                    .map_err(|e| Error::unsupported(format!("cannot re-read the INSERT with its parameters: {e}")))?;
                match stmts.first() {
                    Some(s) => insert::route(ctx, schema, s, &text, &Binder::new(s, &[]))?,
                    None => return Err(Error::unsupported("empty INSERT")),
                }
            } else {
                r
            }
        }
        [stmt @ (Statement::Update(_) | Statement::Delete(_))] => {
            dml::route(ctx, schema, stmt, &Binder::of(a, stmt, params))?
        }
        _ => generic(ctx, schema, kind, a, &tables)?,
    };
    let mut logical: Vec<&str> = a
        .tables
        .iter()
        .filter_map(|t| t.schema.as_deref())
        .filter_map(|s| ctx.cfg.schema(s).map(|c| c.name.as_str()))
        .collect();
    if schema.check_sql_schema {
        logical.push(&schema.name);
    }
    logical.sort_unstable();
    logical.dedup();
    qualify(ctx, &mut r, sql, &logical)?;
    Ok(r)
}

/// Qualified names of logical schemas (`schema.t`, checkSQLschema's and any other schema the user may
/// use) in the texts a route sends: on one node, the node's physical database (exact whichever
/// database the connection is in); on several, stripped (each connection is in its node's database).
pub fn qualify(ctx: &Ctx<'_>, r: &mut Route, sql: &str, logical: &[&str]) -> Result<()> {
    if logical.is_empty() {
        return Ok(());
    }
    let quick = |text: &str| {
        let lower = text.to_ascii_lowercase();
        logical.iter().any(|s| {
            lower.contains(&format!("{}.", s.to_ascii_lowercase()))
                || lower.contains(&format!("`{}`.", s.to_ascii_lowercase()))
        })
    };
    let any = match &r.sql {
        Rewrite::Original => quick(sql),
        Rewrite::Shared(s) => quick(s),
        Rewrite::PerNode(v) => v.iter().any(|s| quick(s)),
    };
    if !any {
        return Ok(());
    }
    let with = match r.nodes.as_slice() {
        [one] => format!("`{}`.", ctx.backends.node(one)?.database.replace('`', "``")),
        _ => String::new(),
    };
    let apply = |text: &str| {
        let mut out: Option<String> = None;
        for s in logical {
            if let Some(t) = rewrite::replace_schema(out.as_deref().unwrap_or(text), s, &with) {
                out = Some(t);
            }
        }
        out
    };
    r.sql = match std::mem::replace(&mut r.sql, Rewrite::Original) {
        Rewrite::Original => apply(sql).map(Rewrite::Shared).unwrap_or(Rewrite::Original),
        Rewrite::Shared(s) => Rewrite::Shared(apply(&s).unwrap_or(s)),
        Rewrite::PerNode(v) => Rewrite::PerNode(v.into_iter().map(|s| apply(&s).unwrap_or(s)).collect()),
    };
    Ok(())
}

/// Statements routed by their tables alone (DDL, locking reads, EXPLAIN, …).
fn generic(ctx: &Ctx<'_>, schema: &Schema, kind: Kind, a: &Analysis, tables: &[&TableRef]) -> Result<Route> {
    let mut sets = Vec::new();
    for t in tables {
        let p = place(ctx, schema, t)?;
        let set = match p.table {
            Some(tab) if tab.kind == TableKind::Global => NodeSet::Any(nodes_of(tab)),
            Some(tab) => NodeSet::Exact(nodes_of(tab)),
            None => NodeSet::Exact(p.schema.data_node.iter().map(|n| Arc::from(n.as_str())).collect()),
        };
        sets.push((t.name.clone(), set, p.partitioned()));
    }
    let is_write = kind.is_write() || a.locking_read || kind == Kind::Ddl;
    let nodes = combine(ctx, &sets, is_write, false)?;
    if nodes.len() == 1 {
        return Ok(Route::new(nodes, Mode::Single));
    }
    let table = sets.iter().find(|s| s.2).map(|s| s.0.clone()).unwrap_or_else(|| tables[0].name.clone());
    match kind {
        Kind::Ddl => Ok(Route::new(nodes, Mode::WriteAllReportOne)),
        Kind::Update | Kind::Delete | Kind::Insert | Kind::Replace
            if sets.iter().all(|s| matches!(s.1, NodeSet::Any(_))) =>
        {
            Ok(Route::new(nodes, Mode::WriteAllReportOne))
        }
        _ => Err(Error::unsupported(format!(
            "this {} on '{table}' spans {} dataNodes; shardcat cannot run it exactly as one server would",
            kind.verb(),
            nodes.len()
        ))),
    }
}

/// A node that can describe a statement (prepare it, report its columns): the first node of its first
/// table, or any node when it names none. Used before parameters are known.
pub fn metadata_node(ctx: &Ctx<'_>, schema: &Schema, a: &Analysis) -> Result<Arc<str>> {
    for t in a.tables.iter().filter(|t| !t.schema.as_deref().is_some_and(is_system_schema)) {
        let p = place(ctx, schema, t)?;
        let node = match p.table {
            Some(tab) => tab.data_nodes.first().cloned(),
            None => p.schema.data_node.clone(),
        };
        if let Some(n) = node {
            return Ok(Arc::from(n.as_str()));
        }
    }
    any_node(schema, &|n| ctx.alive(n))
}

/// A 1105 naming what a multi-node statement would need.
pub fn needs_merge(what: &str, table: &str, nodes: usize) -> Error {
    Error::unsupported(format!(
        "SELECT with {what} on '{table}' spans {nodes} dataNodes and needs a cross-shard merge, which shardcat does not run yet"
    ))
}

#[cfg(test)]
pub mod testing {
    //! Routing without a network: the tests/fixtures/sharding deployment, routed in memory.
    use super::*;
    use std::sync::OnceLock;

    pub struct Fixture {
        pub cfg: Config,
        pub rules: Rules,
        pub backends: Backends,
    }

    pub fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sharding");
            let (cfg, _) = crate::config::load(&dir, None).unwrap_or_else(|d| panic!("{:?}", d.0));
            let rules = Rules::build(&cfg).unwrap();
            let backends = Backends::build(&cfg);
            Fixture { cfg, rules, backends }
        })
    }

    /// Routes `sql` in schema `shard` with `params`; nodes and what each receives.
    pub fn route_sql(sql: &str, params: &[Param]) -> Result<Vec<(String, String)>> {
        let f = fixture();
        let user = f.cfg.users[0].clone();
        let ctx =
            Ctx { cfg: &f.cfg, rules: &f.rules, user: &user, backends: &f.backends, parents: None, learned: None };
        let schema = f.cfg.schema("shard").unwrap();
        let a = crate::sql::analyze::analyze(sql).map_err(Error::unsupported)?;
        let (kind, _) = crate::sql::classify::classify(sql);
        let r = route(&ctx, schema, kind, &a, sql, params)?;
        Ok(r.nodes.iter().enumerate().map(|(i, n)| (n.to_string(), r.sql_for(i, sql).to_string())).collect())
    }

    /// Just the node names of a route, sorted.
    pub fn nodes_of(sql: &str, params: &[Param]) -> Result<Vec<String>> {
        let mut v: Vec<String> = route_sql(sql, params)?.into_iter().map(|(n, _)| n).collect();
        v.sort();
        Ok(v)
    }
}
