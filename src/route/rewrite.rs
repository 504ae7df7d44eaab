//! Text rewrites of statements: stripping the logical schema prefix (`checkSQLschema`), inlining bound
//! parameters as literals, splicing VALUES rows — always on the client's own text, never regenerated.

use sqlparser::ast::{Expr, Statement, Value};
use std::ops::ControlFlow;

use super::condition::Param;
use crate::sql::analyze::byte_span;

/// `sql` without `schema.` / `` `schema`. `` prefixes outside quoted strings (case-insensitive);
/// `None` when there is none.
pub fn strip_schema(sql: &str, schema: &str) -> Option<String> {
    replace_schema(sql, schema, "")
}

/// `sql` with `schema.` / `` `schema`. `` prefixes outside quoted strings replaced by `with` (a
/// physical database as `` `db`. ``, or nothing); `None` when there is none.
pub fn replace_schema(sql: &str, schema: &str, with: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let pats = [format!("`{}`.", schema.to_ascii_lowercase()), format!("{}.", schema.to_ascii_lowercase())];
    if !pats.iter().any(|p| lower.contains(p.as_str())) {
        return None;
    }
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut changed = false;
    let mut prev: Option<char> = None;
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '`' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                let boundary = prev.is_none_or(|p| !(p.is_ascii_alphanumeric() || p == '_' || p == '.' || p == '`'));
                if let Some(pat) = pats.iter().find(|p| boundary && lower[i..].starts_with(p.as_str())) {
                    // skip the prefix: its remaining characters are ASCII
                    for _ in 1..pat.len() {
                        chars.next();
                    }
                    out.push_str(with);
                    changed = true;
                    prev = Some('.');
                    continue;
                }
                if c == '\'' || c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
        out.push(c);
        prev = Some(c);
    }
    changed.then_some(out)
}

/// A parameter as a SQL literal. Strings go as `CONVERT(X'…' USING utf8mb4)`: no escaping rules
/// (sql_mode may disable backslash escapes) and a string, not a number, in numeric context.
pub fn literal(p: &Param) -> String {
    match p {
        Param::Null => "NULL".into(),
        Param::Number(n) => n.clone(),
        Param::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
            format!("CONVERT(X'{hex}' USING utf8mb4)")
        }
    }
}

/// `sql` with its `?` placeholders, found by a quote-aware scan of the text, replaced in order by the
/// bound parameters; `None` when their count differs from the parameters' or the text has comments
/// (a `?` there is no placeholder). Serves statements derived from a prepared one (a merge's shard
/// statement) without parsing them again.
pub fn fill_placeholders(sql: &str, params: &[Param]) -> Option<String> {
    if sql.contains("/*") || sql.contains("--") || sql.contains('#') {
        return None;
    }
    let mut quotes = crate::sql::analyze::Quotes::default();
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    let mut next = params.iter();
    for c in sql.chars() {
        if quotes.outside(c) && c == '?' {
            out.push_str(&literal(next.next()?));
        } else {
            out.push(c);
        }
    }
    next.next().is_none().then_some(out)
}

/// Whether `sql` has a `?` outside quotes (one inside a comment counts: the scan does not know
/// comments, so the answer errs towards yes).
pub fn has_placeholder(sql: &str) -> bool {
    let mut quotes = crate::sql::analyze::Quotes::default();
    sql.chars().any(|c| quotes.outside(c) && c == '?')
}

/// `sql` with every `?` placeholder of `stmt` replaced by its bound parameter.
pub fn inline_params(sql: &str, stmt: &Statement, params: &[Param]) -> Option<String> {
    let mut spans = Vec::new();
    let _ = sqlparser::ast::visit_expressions(stmt, |e: &Expr| {
        if let Expr::Value(v) = e {
            if matches!(v.value, Value::Placeholder(_)) {
                spans.push(byte_span(sql, v.span));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if spans.len() != params.len() {
        return None;
    }
    let mut out = sql.to_string();
    for (span, p) in spans.iter().zip(params).rev() {
        let (a, b) = (*span)?;
        let b = if b == a { a + 1 } else { b };
        out.replace_range(a..b, &literal(p));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    #[test]
    fn placeholders_are_found_outside_quotes_only() {
        assert!(!has_placeholder("XA START 'a?b'"));
        assert!(has_placeholder("KILL ?"));
        assert!(!has_placeholder("BEGIN"));
    }

    #[test]
    fn placeholders_are_filled_outside_quotes_only() {
        let p = [Param::Number("7".into()), Param::Bytes(b"a?".to_vec())];
        assert_eq!(
            fill_placeholders("SELECT '?', `?` FROM t WHERE a = ? AND b = ?", &p).as_deref(),
            Some("SELECT '?', `?` FROM t WHERE a = 7 AND b = CONVERT(X'613F' USING utf8mb4)")
        );
        assert_eq!(fill_placeholders("SELECT ? FROM t", &p), None, "fewer placeholders than parameters");
        assert_eq!(fill_placeholders("SELECT ?, ?, ? FROM t", &p), None, "more placeholders");
        assert_eq!(fill_placeholders("SELECT ? /* ? */, ? FROM t", &p), None, "comments");
    }

    #[test]
    fn schema_prefixes_go_outside_quotes_only() {
        assert_eq!(
            strip_schema("select * from TESTDB.t where a='testdb.x'", "TESTDB").as_deref(),
            Some("select * from t where a='testdb.x'")
        );
        assert_eq!(strip_schema("select * from `testdb`.`t`", "TESTDB").as_deref(), Some("select * from `t`"));
        assert_eq!(strip_schema("select * from mytestdb.t", "testdb"), None, "only whole names");
        assert_eq!(strip_schema("select 1", "testdb"), None);
        assert_eq!(
            replace_schema("select * from shop.product p join `shop`.t on 'shop.x' = 1", "shop", "`shop_1`.")
                .as_deref(),
            Some("select * from `shop_1`.product p join `shop_1`.t on 'shop.x' = 1")
        );
    }

    #[test]
    fn parameters_inline_as_literals() {
        let sql = "insert into t (id, name) values (?, ?), (?, ?)";
        let stmt = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
        let p = [Param::Number("1".into()), Param::Bytes(b"a'b".to_vec()), Param::Number("-2".into()), Param::Null];
        assert_eq!(
            inline_params(sql, &stmt, &p).as_deref(),
            Some("insert into t (id, name) values (1, CONVERT(X'612762' USING utf8mb4)), (-2, NULL)")
        );
        assert_eq!(inline_params(sql, &stmt, &p[..2]), None, "count mismatch");
    }
}
