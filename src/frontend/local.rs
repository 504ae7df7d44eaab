//! Result sets the proxy builds itself: SELECTs over session state (`@@version_comment`, DATABASE(),
//! USER(), LAST_INSERT_ID(), …) and lists like SHOW DATABASES, with MySQL's column names and types.

use bytes::BytesMut;

use super::session::Session;
use crate::error::Result;
use crate::exec::relay::write_terminator;
use crate::proto::packets::{self, coltype, BINARY_COLLATION, UTF8MB4_GENERAL_CI};
use crate::sql::analyze::LocalExpr;

/// A column of a locally built result.
pub struct Col<'a> {
    pub name: &'a str,
    pub numeric: bool,
}

impl Session {
    /// Sends a text result set built from `rows`.
    pub async fn send_result(&mut self, table: &str, cols: &[Col<'_>], rows: &[Vec<Option<String>>]) -> Result<()> {
        let fmt = self.fmt();
        let mut b = BytesMut::with_capacity(64);
        packets::put_lenenc_int(&mut b, cols.len() as u64);
        self.out.push(&b);
        for c in cols {
            b.clear();
            let t = if c.numeric {
                packets::ColType {
                    ty: coltype::LONGLONG,
                    charset: BINARY_COLLATION,
                    length: 21,
                    flags: 0x0001 | 0x0080,
                }
            } else {
                packets::ColType { ty: coltype::VAR_STRING, charset: UTF8MB4_GENERAL_CI, length: 1024, flags: 0 }
            };
            packets::column_def(&mut b, table, c.name, t, self.extended_metadata);
            self.out.push(&b);
        }
        if !fmt.deprecate_eof {
            write_terminator(&mut self.out, &fmt, 0, fmt.status);
        }
        for r in rows {
            b.clear();
            let cells: Vec<Option<&[u8]>> = r.iter().map(|c| c.as_deref().map(str::as_bytes)).collect();
            packets::text_row(&mut b, &cells);
            self.out.push_stream(&b).await?;
        }
        write_terminator(&mut self.out, &fmt, 0, fmt.status);
        self.out.flush().await?;
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
