//! What routing needs to know about a statement, read once from sqlparser's AST: the tables it names,
//! whether it needs a cross-shard merge, and whether it is a SELECT the proxy answers from session state.

use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{
    visit_expressions, visit_relations, Expr, GroupByExpr, ObjectName, ObjectNamePart, ObjectType, Query, SelectItem,
    SetExpr, Spanned, Statement,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// A table reference as written: optional schema qualifier and table name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub schema: Option<String>,
    pub name: String,
}

/// A value the proxy computes from its own session state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalExpr {
    /// `@@[session.|global.|local.]name` for a variable the proxy owns.
    SysVar(String),
    Database,
    User,
    CurrentUser,
    Version,
    LastInsertId,
    ConnectionId,
    FoundRows,
    RowCount,
}

#[derive(Debug, Clone)]
pub struct Analysis {
    /// The parsed statements (routing reads conditions, VALUES rows and LIMITs from them).
    pub stmts: Vec<Statement>,
    pub statements: usize,
    pub tables: Vec<TableRef>,
    /// Why a multi-node SELECT would need a merge (ORDER BY, LIMIT, …); `None` when rows can be concatenated.
    pub needs_merge: Option<&'static str>,
    /// `SELECT …` without FROM whose every column is local: (column name, value).
    pub local: Option<Vec<(String, LocalExpr)>>,
    /// SELECT … FOR UPDATE / LOCK IN SHARE MODE.
    pub locking_read: bool,
    /// The first statement's `?` placeholders, computed once per parse so routing a prepared EXECUTE
    /// does not walk the tree: (address of the placeholder's `Expr`, its parameter index), by address.
    pub placeholders: Vec<(usize, usize)>,
    /// How many subquery expressions (scalar, EXISTS, IN (SELECT …)) the first statement holds.
    pub subquery_exprs: usize,
}

/// Whether an expression is a subquery: scalar, EXISTS or IN (SELECT …).
pub fn is_subquery_expr(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::In { target: sqlparser::ast::InTarget::Subquery(_), .. }
    )
}

/// The `?` placeholders of a statement in the order parameters bind to them (address, index), sorted
/// by address, and the number of subquery expressions in it. Addresses identify nodes of this tree
/// only while it lives; they are never dereferenced.
pub fn placeholders_and_subqueries(stmt: &Statement) -> (Vec<(usize, usize)>, usize) {
    let mut ph = Vec::new();
    let mut subs = 0usize;
    let _ = sqlparser::ast::visit_expressions(stmt, |e: &Expr| {
        if matches!(e, Expr::Value(v) if matches!(v.value, sqlparser::ast::Value::Placeholder(_))) {
            ph.push((e as *const Expr as usize, ph.len()));
        } else if is_subquery_expr(e) {
            subs += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    ph.sort_unstable();
    (ph, subs)
}

/// Variables answered from the proxy's session (everything else is a backend's business).
const LOCAL_VARS: &[&str] = &[
    "version_comment",
    "version",
    "autocommit",
    "tx_isolation",
    "transaction_isolation",
    "session.autocommit",
    "last_insert_id",
    "identity",
    "tx_read_only",
    "transaction_read_only",
];

pub fn analyze(sql: &str) -> Result<Arc<Analysis>, String> {
    let stmts = Parser::parse_sql(&MySqlDialect {}, sql).map_err(|e| e.to_string())?;
    let mut tables = Vec::new();
    for s in &stmts {
        let _ = visit_relations(s, |name| {
            add_table(&mut tables, name);
            ControlFlow::<()>::Continue(())
        });
        // names the visitor does not treat as relations
        match s {
            Statement::Drop { object_type: ObjectType::Table | ObjectType::View, names, .. } => {
                names.iter().for_each(|n| add_table(&mut tables, n))
            }
            Statement::Drop { table: Some(t), .. } => add_table(&mut tables, t),
            Statement::RenameTable(r) => r.iter().for_each(|r| {
                add_table(&mut tables, &r.old_name);
                add_table(&mut tables, &r.new_name);
            }),
            _ => {}
        }
    }
    // CTE names are not tables
    for s in &stmts {
        if let Statement::Query(q) = s {
            if let Some(with) = &q.with {
                for cte in &with.cte_tables {
                    tables.retain(|t| !(t.schema.is_none() && t.name.eq_ignore_ascii_case(&cte.alias.name.value)));
                }
            }
        }
    }
    let (needs_merge, local, locking_read) = match stmts.as_slice() {
        [Statement::Query(q)] => (merge_need(q), local_select(sql, q), !q.locks.is_empty()),
        _ => (None, None, false),
    };
    // the statements' nodes stay where they are from here on: the Vec is moved, never grown
    let (placeholders, subquery_exprs) = stmts.first().map(placeholders_and_subqueries).unwrap_or_default();
    Ok(Arc::new(Analysis {
        statements: stmts.len(),
        stmts,
        tables,
        needs_merge,
        local,
        locking_read,
        placeholders,
        subquery_exprs,
    }))
}

/// The last identifier of a (possibly qualified) name: the column of `t.col`, the table of `db.t`.
/// A read that takes row locks (`FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`), by its text: the
/// parser does not read every form, and a false positive only keeps a read on the writeHost.
pub fn locking_text(sql: &str) -> bool {
    // the hot path: most reads name neither word, and this scan allocates nothing
    let has = |w: &[u8]| sql.as_bytes().windows(w.len()).any(|x| x.eq_ignore_ascii_case(w));
    if !has(b"UPDATE") && !has(b"SHARE") {
        return false;
    }
    let up = sql.to_ascii_uppercase();
    let words: Vec<&str> = up.split(|c: char| c.is_ascii_whitespace() || c == ';').filter(|w| !w.is_empty()).collect();
    words.windows(2).any(|w| w == ["FOR", "UPDATE"] || w == ["FOR", "SHARE"])
        || words.windows(4).any(|w| w == ["LOCK", "IN", "SHARE", "MODE"])
}

pub fn last_ident(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            ObjectNamePart::Function(f) => f.name.value.clone(),
        })
        .unwrap_or_default()
}

/// A table name as schema qualifier and table.
pub fn table_ref(name: &ObjectName) -> Option<TableRef> {
    let parts: Vec<&str> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.as_str(),
            ObjectNamePart::Function(f) => f.name.value.as_str(),
        })
        .collect();
    match parts.as_slice() {
        [n] => Some(TableRef { schema: None, name: n.to_string() }),
        [.., s, n] => Some(TableRef { schema: Some(s.to_string()), name: n.to_string() }),
        [] => None,
    }
}

fn add_table(tables: &mut Vec<TableRef>, name: &ObjectName) {
    if let Some(t) = table_ref(name) {
        if !tables.contains(&t) {
            tables.push(t);
        }
    }
}

/// What a query over several nodes needs the proxy to do. A LIMIT alone is cut from concatenated
/// rows; with grouping or aggregates the query needs the merge, LIMIT included.
pub fn merge_need(q: &Query) -> Option<&'static str> {
    if q.order_by.is_some() {
        return Some("ORDER BY");
    }
    let body = body_merge_need(q);
    if body.is_none() && (q.limit_clause.is_some() || q.fetch.is_some()) {
        return Some("LIMIT");
    }
    body
}

fn body_merge_need(q: &Query) -> Option<&'static str> {
    match q.body.as_ref() {
        SetExpr::Select(s) => {
            if s.distinct.is_some() {
                return Some("DISTINCT");
            }
            if !matches!(&s.group_by, GroupByExpr::Expressions(e, _) if e.is_empty()) {
                return Some("GROUP BY");
            }
            if s.having.is_some() {
                return Some("HAVING");
            }
            let mut agg = false;
            for item in &s.projection {
                let _ = visit_expressions(item, |e| {
                    if let Expr::Function(f) = e {
                        let n = f.name.to_string().to_ascii_uppercase();
                        if matches!(
                            n.as_str(),
                            "COUNT"
                                | "SUM"
                                | "MIN"
                                | "MAX"
                                | "AVG"
                                | "GROUP_CONCAT"
                                | "BIT_AND"
                                | "BIT_OR"
                                | "BIT_XOR"
                                | "STD"
                                | "STDDEV"
                                | "STDDEV_POP"
                                | "STDDEV_SAMP"
                                | "VARIANCE"
                                | "VAR_POP"
                                | "VAR_SAMP"
                                | "JSON_ARRAYAGG"
                                | "JSON_OBJECTAGG"
                        ) && f.over.is_none()
                        {
                            agg = true;
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                });
            }
            if agg {
                return Some("aggregate functions");
            }
            None
        }
        SetExpr::SetOperation { .. } => Some("UNION"),
        SetExpr::Query(_) => Some("a parenthesized query"),
        _ => None,
    }
}

/// The byte offset in `sql` of a sqlparser location (1-based line and character column).
pub fn byte_offset(sql: &str, loc: sqlparser::tokenizer::Location) -> Option<usize> {
    if loc.line == 0 {
        return None;
    }
    let mut pos = 0usize;
    for (i, l) in sql.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == loc.line {
            let chars = l.char_indices().nth(loc.column.saturating_sub(1) as usize).map(|(b, _)| b).unwrap_or(l.len());
            return Some(pos + chars);
        }
        pos += l.len();
    }
    None
}

/// The byte range of a span in `sql`.
pub fn byte_span(sql: &str, span: sqlparser::tokenizer::Span) -> Option<(usize, usize)> {
    let (a, b) = (byte_offset(sql, span.start)?, byte_offset(sql, span.end)?);
    (a <= b).then_some((a, b))
}

/// Whether a scan of SQL text is inside a quoted string or identifier (backslash escapes in strings).
#[derive(Default)]
pub struct Quotes {
    quote: Option<char>,
    escaped: bool,
}

impl Quotes {
    /// Feeds the next character; true when it is SQL outside every quote (an opening quote is not).
    pub fn outside(&mut self, c: char) -> bool {
        match self.quote {
            Some(q) => {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' && q != '`' {
                    self.escaped = true;
                } else if c == q {
                    self.quote = None;
                }
                false
            }
            None if matches!(c, '\'' | '"' | '`') => {
                self.quote = Some(c);
                false
            }
            None => true,
        }
    }
}

/// Depth change of `text` in parentheses, quote-aware.
fn paren_balance(text: &str) -> i64 {
    let mut quotes = Quotes::default();
    text.chars().filter(|&c| quotes.outside(c)).fold(0, |d, c| match c {
        '(' => d + 1,
        ')' => d - 1,
        _ => d,
    })
}

/// The byte range of an expression in `sql`, function arguments included (sqlparser's span of a
/// function call ends at its name or at its last argument).
pub fn expr_byte_span(sql: &str, e: &impl Spanned) -> Option<(usize, usize)> {
    let (a, mut b) = byte_span(sql, e.span())?;
    // a span ending at a function's name: take its argument list
    let rest = sql.get(b..)?;
    let trimmed = rest.trim_start();
    let mut depth = paren_balance(&sql[a..b]);
    let call = depth == 0
        && trimmed.starts_with('(')
        && sql[a..b].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_');
    if call {
        b += rest.len() - trimmed.len();
    }
    // close every parenthesis the span opened (or the call's argument list)
    if depth > 0 || call {
        let mut quotes = Quotes::default();
        for (i, c) in sql[b..].char_indices().filter(|&(_, c)| quotes.outside(c)) {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth <= 0 {
                        b = b + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    Some((a, b))
}

/// `expr_byte_span` of an expression, CAST(…) and CONVERT(…) whole (sqlparser spans only what is
/// inside them: `CAST(x AS CHAR)` spans `x`).
pub fn expr_text_span(sql: &str, e: &sqlparser::ast::Expr) -> Option<(usize, usize)> {
    let (a, b) = expr_byte_span(sql, e)?;
    if !matches!(e, sqlparser::ast::Expr::Cast { .. } | sqlparser::ast::Expr::Convert { .. }) {
        return Some((a, b));
    }
    let Some(before) = sql[..a].trim_end().strip_suffix('(').map(str::trim_end) else { return Some((a, b)) };
    let word = before.len() - before.bytes().rev().take_while(|c| c.is_ascii_alphabetic() || *c == b'_').count();
    if !["CAST", "CONVERT", "TRY_CAST", "SAFE_CAST"].iter().any(|k| before[word..].eq_ignore_ascii_case(k)) {
        return Some((a, b));
    }
    // from the keyword to the parenthesis that closes the one after it
    match close_of(sql, sql[..a].trim_end().len() - 1) {
        Some(z) => Some((word, z)),
        None => Some((a, b)),
    }
}

/// The byte just past the `)` that closes the `(` at byte `open` (quote-aware).
pub fn close_of(sql: &str, open: usize) -> Option<usize> {
    let mut depth = 0i64;
    let mut quotes = Quotes::default();
    for (i, c) in sql.get(open..)?.char_indices().filter(|&(_, c)| quotes.outside(c)) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The original text of an AST node (MySQL names result columns after it).
fn source_text(sql: &str, node: &impl Spanned) -> Option<String> {
    let (a, b) = expr_byte_span(sql, node)?;
    sql.get(a..b).map(str::to_string)
}

fn local_select(sql: &str, q: &Query) -> Option<Vec<(String, LocalExpr)>> {
    let SetExpr::Select(s) = q.body.as_ref() else { return None };
    if !s.from.is_empty() || s.selection.is_some() || q.order_by.is_some() || q.with.is_some() {
        return None;
    }
    let mut out = Vec::new();
    for item in &s.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            _ => return None,
        };
        let value = local_expr(expr)?;
        let name = alias.or_else(|| source_text(sql, expr)).unwrap_or_else(|| expr.to_string());
        out.push((name, value));
    }
    Some(out)
}

fn local_expr(e: &Expr) -> Option<LocalExpr> {
    match e {
        Expr::Identifier(i) => sysvar(&i.value),
        Expr::CompoundIdentifier(parts) => {
            let joined = parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join(".");
            sysvar(&joined)
        }
        Expr::Function(f) => {
            let no_args = match &f.args {
                sqlparser::ast::FunctionArguments::None => true,
                sqlparser::ast::FunctionArguments::List(l) => l.args.is_empty(),
                _ => false,
            };
            if !no_args {
                return None;
            }
            match f.name.to_string().to_ascii_uppercase().as_str() {
                "DATABASE" | "SCHEMA" => Some(LocalExpr::Database),
                "USER" | "SESSION_USER" | "SYSTEM_USER" => Some(LocalExpr::User),
                "CURRENT_USER" => Some(LocalExpr::CurrentUser),
                "VERSION" => Some(LocalExpr::Version),
                "LAST_INSERT_ID" => Some(LocalExpr::LastInsertId),
                "CONNECTION_ID" => Some(LocalExpr::ConnectionId),
                "FOUND_ROWS" => Some(LocalExpr::FoundRows),
                "ROW_COUNT" => Some(LocalExpr::RowCount),
                _ => None,
            }
        }
        _ => None,
    }
}

fn sysvar(raw: &str) -> Option<LocalExpr> {
    let v = raw.strip_prefix("@@")?;
    let lower = v.to_ascii_lowercase();
    let bare = lower.strip_prefix("session.").or_else(|| lower.strip_prefix("local.")).unwrap_or(&lower);
    if lower.starts_with("global.") {
        return None;
    }
    if LOCAL_VARS.contains(&bare) {
        Some(LocalExpr::SysVar(bare.to_string()))
    } else {
        None
    }
}

#[cfg(test)]
mod text_span_tests {
    use super::*;

    #[test]
    fn casts_and_converts_span_their_call() {
        for (sql, want) in [
            ("SELECT a FROM t ORDER BY CAST(v AS BINARY) DESC", "CAST(v AS BINARY)"),
            ("SELECT a FROM t ORDER BY cast( f(v, ')') AS CHAR(10) ), a", "cast( f(v, ')') AS CHAR(10) )"),
            ("SELECT a FROM t ORDER BY CONVERT(v USING latin1)", "CONVERT(v USING latin1)"),
            ("SELECT a FROM t ORDER BY v + 1", "v + 1"),
        ] {
            let stmt =
                sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::MySqlDialect {}, sql).unwrap().remove(0);
            let sqlparser::ast::Statement::Query(q) = stmt else { panic!() };
            let Some(sqlparser::ast::OrderBy { kind: sqlparser::ast::OrderByKind::Expressions(list), .. }) =
                &q.order_by
            else {
                panic!()
            };
            let (a, b) = expr_text_span(sql, &list[0].expr).unwrap();
            assert_eq!(&sql[a..b], want);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locking_reads() {
        assert!(analyze("select a from t where id = 1 for update").unwrap().locking_read);
        assert!(!analyze("select a from t").unwrap().locking_read);
        for sql in
            ["select a from t where id = 1 for update", "SELECT a FROM t LOCK IN SHARE MODE;", "select 1 for share"]
        {
            assert!(locking_text(sql), "{sql}");
        }
        assert!(!locking_text("select `for`, updated from t"));
    }

    #[test]
    fn tables_with_schemas_and_ctes() {
        let a = analyze("select * from db1.t1 a join t2 on a.x=t2.x where t2.y in (select y from t3)").unwrap();
        let names: Vec<_> = a.tables.iter().map(|t| (t.schema.as_deref(), t.name.as_str())).collect();
        assert_eq!(names, vec![(Some("db1"), "t1"), (None, "t2"), (None, "t3")]);
        let a = analyze("with c as (select 1) select * from c, t").unwrap();
        assert_eq!(a.tables, vec![TableRef { schema: None, name: "t".into() }]);
        let a = analyze("insert into `T` (a) values (1)").unwrap();
        assert_eq!(a.tables[0].name, "T");
        let a = analyze("update t set a=1 where b=2").unwrap();
        assert_eq!(a.tables.len(), 1);
        let a = analyze("create table x (a int)").unwrap();
        assert_eq!(a.tables[0].name, "x");
        for ddl in ["drop table if exists x", "drop index i on x", "truncate table x", "rename table x to y"] {
            assert_eq!(analyze(ddl).unwrap().tables[0].name, "x", "{ddl}");
        }
    }

    #[test]
    fn merge_needs() {
        assert_eq!(analyze("select a from t").unwrap().needs_merge, None);
        assert_eq!(analyze("select a from t order by a").unwrap().needs_merge, Some("ORDER BY"));
        assert_eq!(analyze("select a from t limit 3").unwrap().needs_merge, Some("LIMIT"));
        assert_eq!(analyze("select count(*) from t").unwrap().needs_merge, Some("aggregate functions"));
        assert_eq!(analyze("select distinct a from t").unwrap().needs_merge, Some("DISTINCT"));
        assert_eq!(analyze("select a from t group by a").unwrap().needs_merge, Some("GROUP BY"));
        assert_eq!(analyze("select a from t union select a from u").unwrap().needs_merge, Some("UNION"));
        assert_eq!(analyze("select count(*) from t limit 1").unwrap().needs_merge, Some("aggregate functions"));
        assert_eq!(analyze("select a, count(*) from t group by a limit 1").unwrap().needs_merge, Some("GROUP BY"));
        assert_eq!(analyze("select distinct a from t limit 2").unwrap().needs_merge, Some("DISTINCT"));
    }

    #[test]
    fn local_selects_keep_the_written_column_names() {
        let a = analyze("select @@version_comment limit 1").unwrap();
        assert_eq!(a.local, Some(vec![("@@version_comment".into(), LocalExpr::SysVar("version_comment".into()))]));
        let a = analyze("SELECT DATABASE(), user(), @@session.autocommit AS ac").unwrap();
        assert_eq!(
            a.local,
            Some(vec![
                ("DATABASE()".into(), LocalExpr::Database),
                ("user()".into(), LocalExpr::User),
                ("ac".into(), LocalExpr::SysVar("autocommit".into()))
            ])
        );
        assert!(analyze("select @@max_allowed_packet").unwrap().local.is_none());
        assert!(analyze("select 1").unwrap().local.is_none());
        assert!(analyze("select @@global.autocommit").unwrap().local.is_none());
    }
}
