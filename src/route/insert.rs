//! INSERT/REPLACE routing: every VALUES row goes to the shard its sharding value (or, for an ER child,
//! its parent row) lives on; rows for several shards are split into one INSERT per shard, rows in order,
//! spliced from the client's own text.

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast::{Expr, OnInsert, SetExpr, Statement, TableObject};

use super::condition::{Binder, Lit};
use super::{place, Ctx, Mode, Rewrite, Route};
use crate::config::model::{Schema, Table, TableKind};
use crate::error::{Error, Result};
use crate::rule::PartitionFunction;
use crate::sql::analyze::{expr_byte_span, last_ident, table_ref, TableRef};

/// Parent rows a child-table INSERT must find first (the joinKey does not reference the root's
/// sharding column, so the parent's location has to be looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLookup {
    pub parent: String,
    pub parent_key: String,
    pub nodes: Vec<Arc<str>>,
    pub values: Vec<String>,
}

fn name_parts(t: &TableObject) -> Option<TableRef> {
    match t {
        TableObject::TableName(n) => table_ref(n),
        _ => None,
    }
}

/// The (columns, rows) an INSERT writes: VALUES rows, or the single row of `INSERT … SET`.
fn rows(ins: &sqlparser::ast::Insert) -> Option<(Vec<String>, Vec<&[Expr]>)> {
    if !ins.assignments.is_empty() {
        let cols = ins
            .assignments
            .iter()
            .map(|a| match &a.target {
                sqlparser::ast::AssignmentTarget::ColumnName(n) => last_ident(n),
                sqlparser::ast::AssignmentTarget::Tuple(_) => String::new(),
            })
            .collect();
        // INSERT … SET has no VALUES rows to split: it is one row
        return Some((cols, Vec::new()));
    }
    let SetExpr::Values(v) = ins.source.as_ref()?.body.as_ref() else { return None };
    Some((ins.columns.iter().map(last_ident).collect(), v.rows.iter().map(|r| r.as_slice()).collect()))
}

/// How a table's rows are placed by one column.
enum Placer<'a> {
    Func(&'a dyn PartitionFunction),
    Lookup(&'a HashMap<String, Arc<str>>),
}

struct Sharding<'a> {
    table: &'a Table,
    column: String,
    placer: Placer<'a>,
    parent: Option<(String, String)>,
}

fn sharding<'a>(ctx: &Ctx<'a>, schema: &'a Schema, t: &'a Table) -> Option<Sharding<'a>> {
    match &t.kind {
        TableKind::Sharded { .. } => {
            let r = ctx.rules.sharded(&schema.name, &t.name)?;
            Some(Sharding { table: t, column: r.column.clone(), placer: Placer::Func(r.func.as_ref()), parent: None })
        }
        TableKind::Child { parent, join_key, parent_key } => {
            let p = schema.table(parent)?;
            if let (TableKind::Sharded { .. }, Some(r)) = (&p.kind, ctx.rules.sharded(&schema.name, parent)) {
                if r.column.eq_ignore_ascii_case(parent_key) {
                    return Some(Sharding {
                        table: t,
                        column: join_key.clone(),
                        placer: Placer::Func(r.func.as_ref()),
                        parent: None,
                    });
                }
            }
            static EMPTY: std::sync::OnceLock<HashMap<String, Arc<str>>> = std::sync::OnceLock::new();
            let found = ctx.parents.unwrap_or_else(|| EMPTY.get_or_init(HashMap::new));
            Some(Sharding {
                table: t,
                column: join_key.clone(),
                placer: Placer::Lookup(found),
                parent: Some((parent.clone(), parent_key.clone())),
            })
        }
        _ => None,
    }
}

/// Where the rows of a sharded table go by the value of its sharding column (LOAD DATA's rows): the
/// column, and the dataNode index of a value.
pub struct ValuePlacer<'a>(Sharding<'a>);

impl ValuePlacer<'_> {
    pub fn column(&self) -> &str {
        &self.0.column
    }

    /// The index in the table's dataNodes of row `row` whose sharding column is `v` (`None`: NULL).
    pub fn place(&self, v: Option<&str>, row: usize) -> Result<usize> {
        place_row(&self.0, Some(v.map_or(Lit::Null, |s| Lit::Text(s.to_string()))), row)
    }
}

/// The placer of `t`'s rows by their own values: sharded tables, and ER children whose parent is
/// sharded by the join key (`None` for other tables, and for children placed by their parent rows).
pub fn value_placer<'a>(ctx: &Ctx<'a>, schema: &'a Schema, t: &'a Table) -> Option<ValuePlacer<'a>> {
    let s = sharding(ctx, schema, t)?;
    matches!(s.placer, Placer::Func(_)).then_some(ValuePlacer(s))
}

/// The parent lookups an INSERT into an ER child needs before it can be routed, if any.
pub fn parent_lookups(
    ctx: &Ctx<'_>,
    schema: &Schema,
    stmt: &Statement,
    binder: &Binder<'_>,
) -> Result<Option<ParentLookup>> {
    let Statement::Insert(ins) = stmt else { return Ok(None) };
    let Some(tref) = name_parts(&ins.table) else { return Ok(None) };
    let p = place(ctx, schema, &tref)?;
    let Some(t) = p.table else { return Ok(None) };
    let Some(s) = sharding(ctx, p.schema, t) else { return Ok(None) };
    let (Placer::Lookup(_), Some((parent, parent_key))) = (&s.placer, &s.parent) else { return Ok(None) };
    let (cols, rows) = rows(ins).ok_or_else(|| {
        Error::unsupported(format!("INSERT … SELECT into ER child table '{}' is not supported", t.name))
    })?;
    let idx = cols
        .iter()
        .position(|c| c.eq_ignore_ascii_case(&s.column))
        .ok_or_else(|| Error::sql(1064, "42000", format!("joinKey not provided :{}", s.column.to_ascii_uppercase())))?;
    let mut values = Vec::new();
    for row in rows {
        if let Some(Lit::Text(v)) = row.get(idx).and_then(|e| binder.literal(e)) {
            if !values.contains(&v) {
                values.push(v);
            }
        }
    }
    Ok(Some(ParentLookup {
        parent: parent.clone(),
        parent_key: parent_key.clone(),
        nodes: t.data_nodes.iter().map(|n| Arc::from(n.as_str())).collect(),
        values,
    }))
}

pub fn route(ctx: &Ctx<'_>, schema: &Schema, stmt: &Statement, sql: &str, binder: &Binder<'_>) -> Result<Route> {
    let Statement::Insert(ins) = stmt else { return Err(Error::unsupported("not an INSERT")) };
    let tref = name_parts(&ins.table).ok_or_else(|| Error::unsupported("INSERT into a table function"))?;
    let p = place(ctx, schema, &tref)?;
    let Some(t) = p.table else {
        let dn = p.schema.data_node.as_deref().unwrap_or_default();
        return Ok(Route::single(dn));
    };
    let all: Vec<Arc<str>> = t.data_nodes.iter().map(|n| Arc::from(n.as_str())).collect();
    match t.kind {
        TableKind::Global => {
            let mode = if all.len() == 1 { Mode::Single } else { Mode::WriteAllReportOne };
            return Ok(Route { nodes: all, mode, sql: Rewrite::Original, limit: None });
        }
        TableKind::Unsharded if all.len() == 1 => return Ok(Route::single(all[0].clone())),
        TableKind::Unsharded => {
            return Err(Error::unsupported(format!(
                "table '{}' has several dataNodes but no rule: an INSERT would duplicate its rows",
                t.name
            )))
        }
        _ => {}
    }
    let s = sharding(ctx, p.schema, t)
        .ok_or_else(|| Error::unsupported(format!("table '{}' has no usable rule", t.name)))?;
    let verb = if ins.replace_into { "REPLACE" } else { "INSERT" };
    if ins.replace_into {
        let pk_is_shard_key = t.primary_key.as_deref().is_some_and(|pk| pk.eq_ignore_ascii_case(&s.column));
        if !pk_is_shard_key || s.parent.is_some() {
            return Err(Error::unsupported(format!(
                "REPLACE into sharded table '{}' could leave a conflicting row on another shard; use INSERT … ON DUPLICATE KEY UPDATE",
                t.name
            )));
        }
    }
    if let Some(OnInsert::DuplicateKeyUpdate(assignments)) = &ins.on {
        for a in assignments {
            if let sqlparser::ast::AssignmentTarget::ColumnName(n) = &a.target {
                if last_ident(n).eq_ignore_ascii_case(&s.column) {
                    return Err(Error::unsupported(format!(
                        "Sharding column can't be updated: {} -> {}",
                        t.name.to_ascii_uppercase(),
                        s.column.to_ascii_uppercase()
                    )));
                }
            }
        }
    }
    let Some((cols, rows)) = rows(ins) else {
        return Err(Error::unsupported(format!(
            "{verb} … SELECT into sharded table '{}' is not supported: its rows could belong to several shards",
            t.name
        )));
    };
    if cols.is_empty() {
        return Err(Error::sql(1064, "42000", format!("partition table, insert must provide ColumnList: {}", t.name)));
    }
    let idx = cols.iter().position(|c| c.eq_ignore_ascii_case(&s.column)).ok_or_else(|| {
        let what = if s.parent.is_some() { "joinKey not provided" } else { "bad insert sql (sharding column" };
        Error::sql(
            1064,
            "42000",
            format!("{what}:{} not provided in {verb} into {}", s.column.to_ascii_uppercase(), t.name),
        )
    })?;
    // INSERT … SET: the single row's values are the assignments'
    let set_row: Vec<Expr>;
    let rows: Vec<&[Expr]> = if rows.is_empty() {
        set_row = ins.assignments.iter().map(|a| a.value.clone()).collect();
        vec![set_row.as_slice()]
    } else {
        rows
    };
    let mut targets: Vec<usize> = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if row.len() != cols.len() {
            return Err(Error::sql(1136, "21S01", format!("Column count doesn't match value count at row {}", i + 1)));
        }
        let node = place_row(&s, binder.literal(&row[idx]), i)?;
        targets.push(node);
    }
    let mut order: Vec<usize> = Vec::new();
    for n in &targets {
        if !order.contains(n) {
            order.push(*n);
        }
    }
    let node_name = |i: usize| -> Result<Arc<str>> {
        t.data_nodes.get(i).map(|n| Arc::from(n.as_str())).ok_or_else(|| {
            Error::sql(
                1064,
                "42000",
                format!("Can't find a valid data node for specified node index :{} -> {} -> {i}", t.name, s.column),
            )
        })
    };
    if order.len() == 1 {
        return Ok(Route::single(node_name(order[0])?));
    }
    let nodes: Vec<Arc<str>> = order.iter().map(|i| node_name(*i)).collect::<Result<_>>()?;
    let texts = split_rows(sql, &rows, &targets, &order)?;
    Ok(Route { nodes, mode: Mode::WriteAllSum, sql: Rewrite::PerNode(texts), limit: None })
}

/// The partition index a row goes to, from its sharding value.
fn place_row(s: &Sharding<'_>, v: Option<Lit>, row: usize) -> Result<usize> {
    let t = s.table;
    let col = s.column.to_ascii_uppercase();
    let Some(v) = v else {
        return Err(Error::unsupported(format!(
            "the value of sharding column {col} in row {} of the INSERT into {} must be a literal or a parameter",
            row + 1,
            t.name
        )));
    };
    match (&s.placer, v) {
        (Placer::Func(f), Lit::Null) => f.default_node().ok_or_else(|| {
            Error::sql(
                1064,
                "42000",
                format!("can't find any valid datanode :{} -> {col} -> NULL", t.name.to_ascii_uppercase()),
            )
        }),
        (Placer::Func(f), Lit::Text(v)) => match f.calculate(&v) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(Error::sql(
                1064,
                "42000",
                format!("can't find any valid datanode :{} -> {col} -> {v}", t.name.to_ascii_uppercase()),
            )),
            Err(m) => Err(Error::sql(1064, "42000", m)),
        },
        (Placer::Lookup(_), Lit::Null) => {
            Err(Error::sql(1064, "42000", format!("joinKey {col} of {} is NULL: no parent row", t.name)))
        }
        (Placer::Lookup(found), Lit::Text(v)) => {
            let node = found.get(&v).ok_or_else(|| {
                let (parent, key) = s.parent.clone().unwrap_or_default();
                Error::sql(
                    1064,
                    "42000",
                    format!("can't find (root) parent sharding node: no row of {parent} with {key} = {v}"),
                )
            })?;
            t.data_nodes
                .iter()
                .position(|n| n.as_str() == &**node)
                .ok_or_else(|| Error::unsupported("parent row found on a node the child table does not use"))
        }
    }
}

/// The `)` closing the `(` at `open`, skipping quoted strings and identifiers.
fn matching_paren(sql: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quotes = crate::sql::analyze::Quotes::default();
    for (i, c) in sql.get(open..)?.char_indices().filter(|&(_, c)| quotes.outside(c)) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// One INSERT text per node: the client's statement with only that node's VALUES rows, in order.
fn split_rows(sql: &str, rows: &[&[Expr]], targets: &[usize], order: &[usize]) -> Result<Vec<String>> {
    let cannot = || Error::unsupported("cannot locate the VALUES rows in the statement text to split them");
    let mut spans = Vec::with_capacity(rows.len());
    for row in rows {
        let first = row.first().ok_or_else(cannot)?;
        let (a, _) = expr_byte_span(sql, first).ok_or_else(cannot)?;
        let open = sql[..a].rfind('(').filter(|o| sql[o + 1..a].trim().is_empty()).ok_or_else(cannot)?;
        let close = matching_paren(sql, open).ok_or_else(cannot)?;
        spans.push((open, close + 1));
    }
    let prefix = &sql[..spans[0].0];
    let suffix = &sql[spans[spans.len() - 1].1..];
    Ok(order
        .iter()
        .map(|n| {
            let rows: Vec<&str> =
                spans.iter().zip(targets).filter(|(_, t)| *t == n).map(|((a, b), _)| &sql[*a..*b]).collect();
            format!("{prefix}{}{suffix}", rows.join(", "))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::testing::route_sql;
    use super::super::Param;

    #[test]
    fn insert_routing_table() {
        let r = route_sql("INSERT INTO t_mod (id, v) VALUES (1, 'a'), (2, 'b'), (5, 'c'), (6, 'd')", &[]).unwrap();
        assert_eq!(
            r,
            vec![
                ("sdn2".into(), "INSERT INTO t_mod (id, v) VALUES (1, 'a'), (5, 'c')".into()),
                ("sdn3".into(), "INSERT INTO t_mod (id, v) VALUES (2, 'b'), (6, 'd')".into())
            ]
        );
        assert_eq!(route_sql("insert into t_mod(v, id) values ('x', 3)", &[]).unwrap()[0].0, "sdn4");
        assert_eq!(route_sql("INSERT INTO t_mod SET id = 4, v = 'x'", &[]).unwrap()[0].0, "sdn1");
        assert_eq!(route_sql("INSERT INTO orders (id, customer_id) VALUES (9, 3)", &[]).unwrap()[0].0, "sdn4");
        assert_eq!(route_sql("INSERT INTO region (id) VALUES (1)", &[]).unwrap().len(), 4);
        assert_eq!(
            route_sql("INSERT INTO t_enum (code) VALUES (NULL)", &[]).unwrap()[0].0,
            "sdn4",
            "NULL → default node"
        );
        assert_eq!(
            route_sql("REPLACE INTO t_enum (code, v) VALUES (20, 'a')", &[]).unwrap()[0].0,
            "sdn2",
            "primary key = sharding column"
        );
        // prepared: bound parameters route; rows for several shards become plain statements
        let p = [Param::Number("1".into()), Param::Bytes(b"x".to_vec()), Param::Number("2".into()), Param::Null];
        let r = route_sql("INSERT INTO t_mod (id, v) VALUES (?, ?), (?, ?)", &p).unwrap();
        assert_eq!(r[0], ("sdn2".into(), "INSERT INTO t_mod (id, v) VALUES (1, CONVERT(X'78' USING utf8mb4))".into()));
        assert_eq!(r[1], ("sdn3".into(), "INSERT INTO t_mod (id, v) VALUES (2, NULL)".into()));
        let one = route_sql("INSERT INTO t_mod (id, v) VALUES (?, ?)", &p[..2]).unwrap();
        assert_eq!(
            one,
            vec![("sdn2".into(), "INSERT INTO t_mod (id, v) VALUES (?, ?)".into())],
            "one shard: unchanged"
        );
        for (sql, code) in [
            ("INSERT INTO t_mod VALUES (1, 'a')", 1064),
            ("INSERT INTO t_mod (v) VALUES ('a')", 1064),
            ("INSERT INTO t_mod (id, v) VALUES (NULL, 'a')", 1064),
            ("INSERT INTO t_range (id, v) VALUES (-1, 'a')", 1064),
            ("INSERT INTO t_range (id, v) VALUES ('abc', 'a')", 1064),
            ("INSERT INTO t_mod (id, v) VALUES (1, 'a') ON DUPLICATE KEY UPDATE id = 5", 1105),
            ("INSERT INTO t_mod (id, v) SELECT 1, 'a'", 1105),
            ("INSERT INTO t_mod (id, v) VALUES (1)", 1136),
            ("REPLACE INTO order_items (id, order_id) VALUES (1, 1)", 1105),
        ] {
            assert_eq!(route_sql(sql, &[]).unwrap_err().code_and_state().0, code, "{sql}");
        }
    }
}
