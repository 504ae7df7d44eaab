//! LIMIT on multi-node reads without ORDER BY (shards get LIMIT offset+count, the concatenation skips
//! offset rows) and Mycat's `sqlMaxLimit` auto-LIMIT for single-table SELECTs.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, LimitClause, Query, Spanned};

use super::condition::{Binder, Lit};
use super::Place;
use crate::config::model::{Schema, TableKind};
use crate::error::{Error, Result};
use crate::sql::analyze::byte_span;

/// A literal integer (a placeholder does not count: rewriting it would shift the parameters).
fn int(binder: &Binder, e: &Expr) -> Option<u64> {
    if matches!(e, Expr::Value(v) if matches!(v.value, sqlparser::ast::Value::Placeholder(_))) {
        return None;
    }
    match binder.literal(e)? {
        Lit::Text(t) => t.parse().ok(),
        Lit::Null => None,
    }
}

/// For a multi-node `LIMIT`: the statement each node gets (`None` = unchanged), offset and count.
/// `Ok(None)` when the LIMIT is not made of literals.
pub fn concat_limit(sql: &str, q: &Query, binder: &Binder) -> Result<Option<(Option<String>, u64, u64)>> {
    let (offset, count) = match &q.limit_clause {
        Some(LimitClause::LimitOffset { limit: Some(l), offset, .. }) => (offset.as_ref().map(|o| &o.value), l),
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => (Some(offset), limit),
        _ => return Ok(None),
    };
    let Some(n) = int(binder, count) else { return Ok(None) };
    let m = match offset {
        Some(o) => match int(binder, o) {
            Some(m) => m,
            None => return Ok(None),
        },
        None => 0,
    };
    if m == 0 {
        return Ok(Some((None, 0, n)));
    }
    // replace the text from the first to the last LIMIT number with offset+count
    let spans = [offset.map(|o| o.span()), Some(count.span())];
    let ranges: Option<Vec<(usize, usize)>> = spans.iter().flatten().map(|s| byte_span(sql, *s)).collect();
    let ranges = ranges.ok_or_else(|| Error::unsupported("cannot locate the LIMIT clause to rewrite it"))?;
    let start = ranges.iter().map(|r| r.0).min().unwrap_or(0);
    let end = ranges.iter().map(|r| r.1).max().unwrap_or(0);
    let total = m.checked_add(n).ok_or_else(|| Error::unsupported("LIMIT offset + count overflows"))?;
    let text = format!("{}{}{}", &sql[..start], total, &sql[end..]);
    Ok(Some((Some(text), m, n)))
}

/// `sqlMaxLimit`: the LIMIT Mycat appends to a single-table SELECT without one (reference §3.6).
pub fn auto_limit(schema: &Schema, q: &Query, places: &[Place<'_>], selection: Option<&Expr>) -> Option<u64> {
    if schema.sql_max_limit <= 0 || q.limit_clause.is_some() || q.fetch.is_some() || places.len() != 1 {
        return None;
    }
    let p = &places[0];
    let add = match p.table {
        None => true,
        Some(t) if !t.need_add_limit => false,
        Some(t) if t.kind == TableKind::Global => true,
        Some(t) => match (selection, &t.primary_key) {
            (None, _) => true,
            (Some(_), None) => true,
            (Some(e), Some(pk)) => !mentions(e, pk),
        },
    };
    add.then_some(schema.sql_max_limit as u64)
}

fn mentions(e: &Expr, column: &str) -> bool {
    sqlparser::ast::visit_expressions(e, |x: &Expr| {
        let hit = match x {
            Expr::Identifier(i) => i.value.eq_ignore_ascii_case(column),
            Expr::CompoundIdentifier(p) => p.last().is_some_and(|i| i.value.eq_ignore_ascii_case(column)),
            _ => false,
        };
        if hit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// `sql` with ` LIMIT n` appended (a trailing `;` removed).
pub fn append_limit(sql: &str, n: u64) -> String {
    format!("{} LIMIT {n}", sql.trim_end().trim_end_matches(';').trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::Statement;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    fn rewrite(sql: &str) -> Option<(Option<String>, u64, u64)> {
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        let Statement::Query(q) = &stmt else { panic!() };
        let binder = Binder::new(&stmt, &[]);
        concat_limit(sql, q, &binder).unwrap()
    }

    #[test]
    fn limit_rewrites() {
        assert_eq!(rewrite("select * from t limit 5"), Some((None, 0, 5)));
        assert_eq!(rewrite("select * from t limit 10, 5"), Some((Some("select * from t limit 15".into()), 10, 5)));
        assert_eq!(
            rewrite("select * from t LIMIT 5 OFFSET 10"),
            Some((Some("select * from t LIMIT 15".into()), 10, 5))
        );
        assert_eq!(rewrite("select * from t"), None);
        assert_eq!(append_limit("select 1;", 100), "select 1 LIMIT 100");
    }
}
