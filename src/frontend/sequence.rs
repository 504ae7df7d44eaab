//! The session's side of Mycat's global sequences: before a statement is parsed and routed, an
//! `autoIncrement` table's INSERT gets its missing or NULL key as `next value for MYCATSEQ_<TABLE>`,
//! and every such expression becomes the sequence's next id.

use sqlparser::ast::{Expr, SetExpr, Statement, TableObject, Value};

use super::session::Session;
use crate::config::model::Schema;
use crate::error::Result;
use crate::sql::analyze::expr_byte_span;
use crate::sql::classify::Kind;

impl Session {
    /// `sql` with its sequence expressions replaced by ids (an autoIncrement INSERT given its key
    /// first), and the first id, which the statement's OK and LAST_INSERT_ID() report; `None` when
    /// there is nothing to replace.
    pub async fn with_sequences(&mut self, sql: &str, kind: Kind, schema: &Schema) -> Result<Option<(String, u64)>> {
        let mut text = None;
        if matches!(kind, Kind::Insert | Kind::Replace) && schema.tables.iter().any(|t| t.auto_increment) {
            text = self.auto_increment_keys(sql, schema);
        }
        let base = text.as_deref().unwrap_or(sql);
        let found = crate::sequence::find(base);
        if found.is_empty() {
            return Ok(None);
        }
        let db = self.rt.backends.clone();
        let mut out = String::with_capacity(base.len());
        let mut at = 0;
        let mut first = None;
        for f in &found {
            let id = self.shared.sequences.next(&f.name, db.as_ref()).await?;
            first.get_or_insert(id);
            out.push_str(&base[at..f.span.0]);
            out.push_str(&id.to_string());
            at = f.span.1;
        }
        out.push_str(&base[at..]);
        Ok(first.map(|id| (out, id)))
    }

    /// Whether INSERT `sql` into the session's schema leaves an `autoIncrement` table's key to the
    /// sequence.
    pub fn needs_auto_increment_key(&self, sql: &str, kind: Kind) -> bool {
        if !matches!(kind, Kind::Insert | Kind::Replace) {
            return false;
        }
        let cfg = self.rt.config.clone();
        let Some(schema) = self.schema.as_deref().and_then(|s| cfg.schema(s)) else { return false };
        schema.tables.iter().any(|t| t.auto_increment) && self.auto_increment_keys(sql, schema).is_some()
    }

    /// An INSERT into an `autoIncrement` table whose column list leaves out its primary key, or gives
    /// it NULL: the key from `MYCATSEQ_<TABLE>` in every row (Mycat 1.6's rewrite). `None` otherwise.
    fn auto_increment_keys(&self, sql: &str, schema: &Schema) -> Option<String> {
        let a = self.shared.parse_cache.get(sql).ok()?;
        let [Statement::Insert(ins)] = a.stmts.as_slice() else { return None };
        let TableObject::TableName(name) = &ins.table else { return None };
        let table_name = name.0.last()?.as_ident()?.value.clone();
        let t = schema.table(&table_name).filter(|t| t.auto_increment)?;
        let pk = t.primary_key.as_deref()?;
        if ins.columns.is_empty() {
            return None; // which value is the key is the server's table definition's to say
        }
        let SetExpr::Values(values) = ins.source.as_ref()?.body.as_ref() else { return None };
        let next = format!("next value for MYCATSEQ_{}", t.name.to_ascii_uppercase());
        let at = ins
            .columns
            .iter()
            .position(|c| c.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case(pk)));
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        match at {
            Some(k) => {
                for row in &values.rows {
                    let cell = row.get(k)?;
                    if matches!(cell, Expr::Value(v) if matches!(v.value, Value::Null)) {
                        let (s, e) = expr_byte_span(sql, cell)?;
                        edits.push((s, e, next.clone()));
                    }
                }
            }
            None => {
                // the key first in the column list and in every row
                let first_col = ins.columns.first()?;
                let last_col = ins.columns.last()?;
                let (c0, _) = crate::sql::analyze::byte_span(sql, sqlparser::ast::Spanned::span(first_col))?;
                let (_, c1) = crate::sql::analyze::byte_span(sql, sqlparser::ast::Spanned::span(last_col))?;
                let open = sql[..c0].rfind('(')?;
                edits.push((open + 1, open + 1, format!("`{}`, ", pk.replace('`', "``"))));
                for open in row_opens(sql, c1, values.rows.len())? {
                    edits.push((open + 1, open + 1, format!("{next}, ")));
                }
            }
        }
        if edits.is_empty() {
            return None;
        }
        let mut out = sql.to_string();
        edits.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (s, e, t) in edits {
            out.replace_range(s..e, &t);
        }
        Some(out)
    }
}

/// The `(` of each of the `rows` rows of the VALUES list that follows byte `from` (after the column
/// list), found by matching parentheses outside quotes (a row's first value may itself be a call).
fn row_opens(sql: &str, from: usize, rows: usize) -> Option<Vec<usize>> {
    let upper = sql.to_ascii_uppercase();
    let mut i = from + upper.get(from..)?.find("VALUE")? + 5;
    if upper.as_bytes().get(i) == Some(&b'S') {
        i += 1;
    }
    let bytes = sql.as_bytes();
    let mut out = Vec::with_capacity(rows);
    while out.len() < rows {
        while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace() || *b == b',') {
            i += 1;
        }
        if bytes.get(i) != Some(&b'(') {
            return None;
        }
        out.push(i);
        let mut quotes = crate::sql::analyze::Quotes::default();
        let mut depth = 0i32;
        let mut end = None;
        for (k, c) in sql[i..].char_indices() {
            if !quotes.outside(c) {
                continue;
            }
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + k + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        i = end?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_open_where_their_parentheses_do() {
        let sql = "INSERT INTO t (v, w) VALUES (CONVERT(X'41' USING utf8mb4), ')'), ( f(1), 2)";
        let at = sql.find(") VALUES").unwrap();
        let opens = super::row_opens(sql, at, 2).unwrap();
        assert_eq!(opens.iter().map(|i| &sql[*i..*i + 2]).collect::<Vec<_>>(), ["(C", "( "]);
        assert_eq!(super::row_opens(sql, at, 3), None);
    }
}
