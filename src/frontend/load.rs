//! LOAD DATA [LOCAL] INFILE: sent to the one node that holds the table; for LOCAL, the file exchange
//! is relayed both ways packet by packet (the proxy holds one packet of the file at a time).

use bytes::Bytes;
use std::sync::Arc;

use super::session::Session;
use crate::config::model::TableKind;
use crate::error::{Error, Result};
use crate::proto::packets::LOCAL_INFILE_HEADER;
use crate::proto::CapabilityFlags;
use crate::sql::classify::{skip_space_and_comments, word_at};

/// The words of a LOAD DATA statement up to its table: (LOCAL given, table name, schema if qualified).
fn target(sql: &str) -> Option<(bool, String, Option<String>)> {
    let mut pos = 0;
    let mut local = false;
    let mut prev_into = false;
    loop {
        pos = skip_space_and_comments(sql, pos);
        let rest = sql.get(pos..)?;
        let c = rest.chars().next()?;
        if c == '\'' || c == '"' {
            // the file name
            let end = rest[1..].find(c)? + 2;
            pos += end;
            continue;
        }
        let (w, end) = word_at(sql, pos);
        if w.is_empty() {
            pos += c.len_utf8();
            continue;
        }
        let up = w.to_ascii_uppercase();
        if up == "LOCAL" {
            local = true;
        }
        if prev_into && up == "TABLE" {
            let p = skip_space_and_comments(sql, end);
            let name = read_name(sql, p)?;
            return Some(match name.split_once('.') {
                Some((s, t)) => (local, t.to_string(), Some(s.to_string())),
                None => (local, name, None),
            });
        }
        prev_into = up == "INTO";
        pos = end;
    }
}

/// A table name at `pos`, `schema.table` and backquotes allowed (returned without them).
fn read_name(sql: &str, pos: usize) -> Option<String> {
    let mut out = String::new();
    let mut chars = sql[pos..].chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == '`' {
            chars.next();
            for c in chars.by_ref() {
                if c == '`' {
                    break;
                }
                out.push(c);
            }
        } else if c.is_alphanumeric() || c == '_' || c == '$' || c == '.' {
            out.push(c);
            chars.next();
        } else {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

impl Session {
    pub async fn load_data(&mut self, sql: &str, raw: &Bytes) -> Result<()> {
        let (local, table, qualified) = target(sql).ok_or_else(|| {
            Error::sql(1064, "42000", "You have an error in your SQL syntax near LOAD DATA: no INTO TABLE")
        })?;
        if self.user.read_only {
            return Err(Error::sql(
                1142,
                "42000",
                format!(
                    "INSERT command denied to user '{}'@'{}' for table '{table}' (user is readOnly)",
                    self.user.name,
                    self.peer.ip()
                ),
            ));
        }
        if local && !self.caps.contains(CapabilityFlags::CLIENT_LOCAL_FILES) {
            return Err(Error::sql(
                4166,
                "HY000",
                "The used command is not allowed because the MariaDB server or client has disabled the local infile capability",
            ));
        }
        // a sharded table: the proxy reads the client's file and sends each line to its shard
        let cfg = self.rt.config.clone();
        let sharded = qualified
            .as_deref()
            .or(self.schema.as_deref())
            .and_then(|s| cfg.schema(s))
            .and_then(|s| s.table(&table).map(|t| (s, t)))
            .filter(|(_, t)| {
                t.data_nodes.len() > 1 && matches!(t.kind, TableKind::Sharded { .. } | TableKind::Child { .. })
            });
        if let Some((schema, t)) = sharded {
            if !self.user.may_use(&schema.name) {
                return Err(Error::sql(
                    1044,
                    "42000",
                    format!("Access denied for user '{}' to database '{}'", self.user.name, schema.name),
                ));
            }
            if !local {
                return Err(Error::unsupported(format!(
                    "LOAD DATA INFILE (a file on the server) into sharded table '{}': the file is on one MariaDB server; use LOAD DATA LOCAL INFILE",
                    t.name
                )));
            }
            return self.load_sharded(sql, schema, t).await;
        }
        let node = self.load_node(&table, qualified.as_deref())?;
        let nodes = vec![node];
        let mut conns = self.acquire(&nodes).await?;
        let fmt = self.stmt_fmt();
        let res = self.load_on(&mut conns[0], raw, &fmt).await;
        if let Ok(rep) = &res {
            self.note_diagnostics(&nodes, rep.warnings > 0, rep.failed.is_some());
        }
        self.release(nodes, conns, &res).await;
        let reply = res?;
        self.out.flush().await?;
        self.after_reply(crate::sql::classify::Kind::LoadData, &reply, sql);
        Ok(())
    }

    /// The node of the table a LOAD DATA fills: one node, or a refusal naming the table.
    fn load_node(&self, table: &str, qualified: Option<&str>) -> Result<Arc<str>> {
        let cfg = self.rt.config.clone();
        let schema = match qualified.or(self.schema.as_deref()) {
            Some(s) => cfg.schema(s).ok_or_else(|| Error::sql(1049, "42000", format!("Unknown database '{s}'")))?,
            None => return Err(Error::sql(1046, "3D000", "No database selected")),
        };
        if !self.user.may_use(&schema.name) {
            return Err(Error::sql(
                1044,
                "42000",
                format!("Access denied for user '{}' to database '{}'", self.user.name, schema.name),
            ));
        }
        match schema.table(table) {
            Some(t) if t.data_nodes.len() == 1 => Ok(Arc::from(t.data_nodes[0].as_str())),
            Some(t) => Err(Error::unsupported(format!(
                "LOAD DATA into {} table '{}' ({} dataNodes) is not supported by shardcat; load each dataNode's rows there",
                if t.kind == TableKind::Global { "global" } else { "sharded" },
                t.name,
                t.data_nodes.len()
            ))),
            None => schema
                .data_node
                .as_deref()
                .map(Arc::from)
                .ok_or_else(|| Error::sql(1146, "42S02", format!("Table '{}.{}' doesn't exist", schema.name, table))),
        }
    }

    /// Sends the statement; when the server asks for the client's file, relays the request to the
    /// client and the file's packets back to the server as they come, then the server's answer.
    async fn load_on(
        &mut self,
        c: &mut crate::backend::Pooled,
        raw: &Bytes,
        fmt: &crate::exec::ClientFmt,
    ) -> Result<crate::exec::Reply> {
        c.send(raw).await?;
        let first = c.read().await?;
        if first.first() != Some(&LOCAL_INFILE_HEADER) {
            return crate::exec::relay::relay_from(c, Some(first), &mut self.out, fmt).await;
        }
        self.out.push(&first);
        self.out.flush().await?;
        // the server's request came with sequence id 1: the file's packets follow from 2
        let mut seq: u8 = 2;
        loop {
            let (cseq, data) = match self.reader.next().await {
                Ok(Some(p)) => p,
                Ok(None) | Err(_) => {
                    // the client left mid-file: the backend connection is in the middle of it too
                    return Err(Error::Client(std::io::Error::other("client left during LOAD DATA LOCAL")));
                }
            };
            c.queue_seq(&data, seq);
            seq = seq.wrapping_add(1);
            if data.is_empty() {
                c.flush().await?;
                self.out.set_seq(cseq.wrapping_add(1));
                if let Some(cs) = self.reader.comp_seq() {
                    self.out.set_comp_seq(cs.wrapping_add(1));
                }
                break;
            }
            c.flush_if_large().await?;
        }
        crate::exec::relay::relay(c, &mut self.out, fmt).await
    }
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn reads_the_target_table() {
        assert_eq!(
            target("LOAD DATA LOCAL INFILE '/tmp/x into table y' INTO TABLE t FIELDS TERMINATED BY ','"),
            Some((true, "t".into(), None))
        );
        assert_eq!(
            target("load data infile \"a\" replace into table `s`.`t2`"),
            Some((false, "t2".into(), Some("s".into())))
        );
        assert_eq!(
            target("LOAD DATA LOW_PRIORITY LOCAL INFILE 'f' IGNORE INTO TABLE db.t"),
            Some((true, "t".into(), Some("db".into())))
        );
        assert_eq!(target("LOAD DATA INFILE 'f'"), None);
    }
}
