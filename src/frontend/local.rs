//! Result sets the proxy builds itself: SELECTs over session state (`@@version_comment`, DATABASE(),
//! USER(), LAST_INSERT_ID(), …) and lists like SHOW DATABASES, with MySQL's column names and types.

use super::session::Session;
use crate::error::Result;
use crate::sql::analyze::LocalExpr;

pub use crate::proto::result::Col;

impl Session {
    /// Sends a text result set built from `rows`.
    pub async fn send_result(&mut self, table: &str, cols: &[Col<'_>], rows: &[Vec<Option<String>>]) -> Result<()> {
        let fmt = self.fmt();
        let framing = crate::proto::result::Framing {
            deprecate_eof: fmt.deprecate_eof,
            extended_metadata: self.extended_metadata,
            status: fmt.status,
        };
        crate::proto::result::write(&mut self.out, framing, table, cols, rows).await?;
        self.found_rows = rows.len() as u64;
        self.row_count = -1;
        Ok(())
    }

    pub async fn answer_local(&mut self, items: &[(String, LocalExpr)]) -> Result<()> {
        let host = self.peer.ip().to_string();
        let mut cols = Vec::with_capacity(items.len());
        let mut row = Vec::with_capacity(items.len());
        for (name, e) in items {
            let (numeric, v) = match e {
                LocalExpr::SysVar(v) => match v.as_str() {
                    "version_comment" => (false, Some("shardcat — MySQL-protocol sharding proxy".to_string())),
                    "version" => (false, Some(super::version_function(&self.shared.server_version).to_string())),
                    "autocommit" => (true, Some(u8::from(self.autocommit).to_string())),
                    "tx_isolation" | "transaction_isolation" => (false, Some(self.isolation.clone())),
                    "last_insert_id" | "identity" => (true, Some(self.last_insert_id.to_string())),
                    "tx_read_only" | "transaction_read_only" => (true, Some("0".to_string())),
                    _ => (false, None),
                },
                LocalExpr::Database => (false, self.schema.clone()),
                LocalExpr::User => (false, Some(format!("{}@{host}", self.user.name))),
                LocalExpr::CurrentUser => (false, Some(format!("{}@%", self.user.name))),
                LocalExpr::Version => (false, Some(super::version_function(&self.shared.server_version).to_string())),
                LocalExpr::LastInsertId => (true, Some(self.last_insert_id.to_string())),
                LocalExpr::ConnectionId => (true, Some(self.id.to_string())),
                LocalExpr::FoundRows => (true, Some(self.found_rows.to_string())),
                LocalExpr::RowCount => (true, Some(self.row_count.to_string())),
            };
            cols.push((name.clone(), numeric));
            row.push(v);
        }
        let cols: Vec<Col<'_>> = cols.iter().map(|(n, num)| Col { name: n, numeric: *num }).collect();
        self.send_result("", &cols, &[row]).await
    }
}
