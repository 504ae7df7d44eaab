//! INSERT … SELECT whose shards cannot run it themselves: the SELECT runs first as a read of its own
//! (routed, merged), its rows become the statement's VALUES, and that INSERT is routed per row and run
//! as one transaction on every node it writes (a write on several nodes always is).

use sqlparser::ast::{SetExpr, Statement};

use super::session::Session;
use crate::error::{Error, Result};
use crate::sql::analyze::Analysis;

impl Session {
    /// `sql` with its SELECT's rows written in as VALUES; `Ok(None)` when it is no INSERT … SELECT,
    /// `Ok(Some(None))` when the SELECT found no row (nothing to insert).
    pub async fn insert_select_values(&mut self, sql: &str, a: &Analysis) -> Result<Option<Option<String>>> {
        let [Statement::Insert(ins)] = a.stmts.as_slice() else { return Ok(None) };
        let Some(q) = ins.source.as_deref() else { return Ok(None) };
        if matches!(q.body.as_ref(), SetExpr::Values(_)) {
            return Ok(None);
        }
        // (the query's span may stop inside its last call's argument list: what it opened is closed)
        let Some((start, end)) = crate::sql::analyze::expr_byte_span(sql, q) else { return Ok(None) };
        let select = &sql[start..end];
        let (cols, rows) = self.subquery_rows(select).await?;
        if rows.is_empty() {
            return Ok(Some(None));
        }
        let mut values = String::with_capacity(rows.len() * 16 * cols.len().max(1));
        values.push_str("VALUES ");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                values.push_str(", ");
            }
            values.push('(');
            for (j, col) in cols.iter().enumerate() {
                if j > 0 {
                    values.push_str(", ");
                }
                values.push_str(&super::subquery::literal(&r.get(j).cloned().flatten(), col));
            }
            values.push(')');
        }
        let limit = self.rt.config.system.merge_memory_limit;
        if values.len() > limit {
            return Err(Error::MemoryLimit { what: "INSERT … SELECT".into(), limit });
        }
        // a SELECT in parentheses keeps them around the VALUES list otherwise
        let (start, end) = match (sql[..start].trim_end().strip_suffix('('), sql[end..].trim_start().strip_prefix(')'))
        {
            (Some(before), Some(after)) => (before.len(), sql.len() - after.len()),
            _ => (start, end),
        };
        Ok(Some(Some(format!("{}{values}{}", &sql[..start], &sql[end..]))))
    }
}
