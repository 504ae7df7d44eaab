//! SHOW statements: DATABASES answered from the user's schemas, TABLES from the logical tables plus the
//! default node's physical ones, table metadata (COLUMNS, CREATE TABLE, INDEX) from one node holding the
//! table, everything else from any node of the schema.

use std::sync::Arc;

use super::local::Col;
use super::session::Session;
use crate::error::{Error, Result};
use crate::route::{self, Route};
use crate::sql::classify::Kind;
use crate::sql::classify::{skip_space_and_comments, word_at};

/// The words of a SHOW statement, upper-cased, with their byte ranges.
fn words(sql: &str, from: usize) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = from;
    loop {
        pos = skip_space_and_comments(sql, pos);
        if pos >= sql.len() {
            return out;
        }
        let b = sql.as_bytes()[pos];
        if b == b'`' {
            let end = sql[pos + 1..].find('`').map(|e| pos + 1 + e + 1).unwrap_or(sql.len());
            out.push((sql[pos..end].to_string(), pos, end));
            pos = end;
        } else if b == b'\'' || b == b'"' {
            let end = sql[pos + 1..].find(b as char).map(|e| pos + 1 + e + 1).unwrap_or(sql.len());
            out.push((sql[pos..end].to_string(), pos, end));
            pos = end;
        } else {
            let (w, end) = word_at(sql, pos);
            if w.is_empty() {
                let ch_len = sql[pos..].chars().next().map(char::len_utf8).unwrap_or(1);
                out.push((sql[pos..pos + ch_len].to_string(), pos, pos + ch_len));
                pos += ch_len;
            } else {
                out.push((w.to_ascii_uppercase(), pos, end));
                pos = end;
            }
        }
    }
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '`' || c == '\'' || c == '"').to_string()
}

/// SQL LIKE matching (`%`, `_`), case-insensitive as for identifiers.
fn like(pattern: &str, s: &str) -> bool {
    fn m(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('%'), _) => m(&p[1..], s) || (!s.is_empty() && m(p, &s[1..])),
            (Some('_'), Some(_)) => m(&p[1..], &s[1..]),
            (Some('\\'), Some(c)) if p.len() > 1 && p[1] == *c => m(&p[2..], &s[1..]),
            (Some(a), Some(b)) if a.to_lowercase().eq(b.to_lowercase()) => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    m(&p, &s)
}

impl Session {
    pub async fn show(&mut self, sql: &str, start: usize) -> Result<()> {
        let w = words(sql, start);
        let kw: Vec<&str> = w.iter().map(|(s, _, _)| s.as_str()).collect();
        let like_of = |i: usize| -> Option<String> {
            kw.iter()
                .position(|k| *k == "LIKE")
                .and_then(|p| w.get(p + 1))
                .map(|(s, _, _)| unquote(s))
                .filter(|_| i < kw.len())
        };
        match kw.get(1).copied() {
            Some("DATABASES") | Some("SCHEMAS") => {
                let cfg = self.rt.config.clone();
                let pat = like_of(0);
                let rows: Vec<Vec<Option<String>>> = cfg
                    .schemas
                    .iter()
                    .filter(|s| self.user.may_use(&s.name))
                    .filter(|s| pat.as_deref().is_none_or(|p| like(p, &s.name)))
                    .map(|s| vec![Some(s.name.clone())])
                    .collect();
                let name = match &pat {
                    Some(p) => format!("Database ({p})"),
                    None => "Database".into(),
                };
                self.send_result("SCHEMATA", &[Col { name: &name, numeric: false }], &rows).await
            }
            Some("PROCESSLIST") => self.show_processlist(false).await,
            // Mycat's health check for L4 balancers: an error while the manager port set it offline
            Some("MYCAT_STATUS") if kw.len() == 2 => {
                if self.shared.online.load(std::sync::atomic::Ordering::Relaxed) {
                    self.send_ok(0, 0, b"").await
                } else {
                    self.send_error(&Error::sql(1105, "HY000", "The server has been shutdown")).await
                }
            }
            Some("FULL") if kw.get(2) == Some(&"PROCESSLIST") => self.show_processlist(true).await,
            Some("TABLES") | Some("FULL") if kw.contains(&"TABLES") && !kw.contains(&"STATUS") => {
                self.show_tables(sql, &w).await
            }
            Some("CREATE") if kw.get(2) == Some(&"TABLE") => {
                let t = w.get(3).ok_or_else(|| Error::sql(1064, "42000", "SHOW CREATE TABLE needs a table"))?;
                let (table, qualified) = Self::table_arg(sql, &w, 3);
                let _ = t;
                let rewritten = if qualified { format!("SHOW CREATE TABLE `{table}`") } else { sql.to_string() };
                self.on_table_node(&table, &rewritten).await
            }
            Some("COLUMNS") | Some("FIELDS") | Some("INDEX") | Some("INDEXES") | Some("KEYS") | Some("FULL") => {
                let from = kw.iter().position(|k| *k == "FROM" || *k == "IN").ok_or_else(|| {
                    Error::sql(1064, "42000", "You have an error in your SQL syntax near SHOW … FROM")
                })?;
                let (table, _) = Self::table_arg(sql, &w, from + 1);
                // drop a `FROM db` naming the logical schema; the backend knows its own database
                let mut text = sql[..w[from].1].to_string();
                text.push_str(&format!("FROM `{table}`"));
                let mut rest_at = from + 2;
                if matches!(kw.get(from + 2).copied(), Some("FROM") | Some("IN")) {
                    rest_at = from + 4;
                }
                if let Some((_, s, _)) = w.get(rest_at) {
                    text.push(' ');
                    text.push_str(&sql[*s..]);
                }
                self.on_table_node(&table, &text).await
            }
            _ => {
                let cfg = self.rt.config.clone();
                let node = match self.pinned.first() {
                    Some(h) => h.node.clone(),
                    None => route::any_node(self.current_or_first_schema(&cfg)?, &|n| self.rt.backends.node_alive(n))?,
                };
                self.forward_to(node, sql).await
            }
        }
    }

    /// `DESC t [col]` goes to a node holding `t`; `DESC SELECT …` is an EXPLAIN and routes as one.
    pub async fn describe(&mut self, sql: &str, start: usize, raw: &bytes::Bytes) -> Result<()> {
        let w = words(sql, start);
        let next = w.get(1).map(|(s, _, _)| s.as_str()).unwrap_or("");
        if matches!(
            next,
            "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "WITH" | "FORMAT" | "EXTENDED" | "PARTITIONS"
        ) {
            return self.explain(sql, start, raw).await;
        }
        let (table, qualified) = Self::table_arg(sql, &w, 1);
        if table.is_empty() {
            return Err(Error::sql(1064, "42000", "You have an error in your SQL syntax: DESC needs a table"));
        }
        let text = if qualified {
            let col_at = 4;
            let rest = w.get(col_at).map(|(_, s, _)| &sql[*s..]).unwrap_or("");
            format!("DESC `{table}` {rest}")
        } else {
            sql.to_string()
        };
        self.on_table_node(&table, &text).await
    }

    /// SHOW [FULL] PROCESSLIST: the proxy's own sessions — their ids are those KILL takes — of the
    /// session's user (as MariaDB shows a user without the PROCESS privilege).
    async fn show_processlist(&mut self, full: bool) -> Result<()> {
        let rows: Vec<Vec<Option<String>>> = self
            .shared
            .sessions()
            .into_iter()
            .filter(|(_, a)| a.user == self.user.name)
            .map(|(id, a)| {
                let (command, info) = match a.command.as_ref().and_then(|p| p.first().map(|c| (*c, p))) {
                    Some((0x03, p)) => {
                        let text = String::from_utf8_lossy(&p[1..]);
                        let text: String = if full { text.into_owned() } else { text.chars().take(100).collect() };
                        ("Query", Some(text))
                    }
                    Some((0x16, _)) => ("Prepare", None),
                    Some((0x17, _)) => ("Execute", None),
                    Some((0x1C, _)) => ("Fetch", None),
                    Some((0x02, _)) => ("Init DB", None),
                    Some(_) => ("Query", None),
                    None => ("Sleep", None),
                };
                vec![
                    Some(id.to_string()),
                    Some(a.user),
                    Some(a.host),
                    a.db,
                    Some(command.to_string()),
                    Some(a.since.elapsed().as_secs().to_string()),
                    Some(if command == "Sleep" { String::new() } else { "executing".into() }),
                    info,
                    Some("0.000".into()),
                ]
            })
            .collect();
        let cols = [
            Col { name: "Id", numeric: true },
            Col { name: "User", numeric: false },
            Col { name: "Host", numeric: false },
            Col { name: "db", numeric: false },
            Col { name: "Command", numeric: false },
            Col { name: "Time", numeric: true },
            Col { name: "State", numeric: false },
            Col { name: "Info", numeric: false },
            Col { name: "Progress", numeric: false },
        ];
        self.send_result("", &cols, &rows).await
    }

    /// The table named at word `i` (`t` or `db.t`); whether it was qualified.
    fn table_arg(sql: &str, w: &[(String, usize, usize)], i: usize) -> (String, bool) {
        let raw = |j: usize| w.get(j).map(|(_, a, b)| unquote(&sql[*a..*b])).unwrap_or_default();
        if w.get(i + 1).map(|(s, _, _)| s.as_str()) == Some(".") {
            return (raw(i + 2), true);
        }
        (raw(i), false)
    }

    async fn on_table_node(&mut self, table: &str, sql: &str) -> Result<()> {
        let node = self.node_of_table(table)?;
        self.forward_to(node, sql).await
    }

    pub async fn forward_to(&mut self, node: Arc<str>, sql: &str) -> Result<()> {
        let r = Route::single(node);
        let reply = self.execute(&r, &[crate::proto::packets::com_query(sql.as_bytes())]).await?;
        self.after_reply(Kind::Show, &reply, sql);
        Ok(())
    }

    async fn show_tables(&mut self, _sql: &str, w: &[(String, usize, usize)]) -> Result<()> {
        let cfg = self.rt.config.clone();
        let kw: Vec<&str> = w.iter().map(|(s, _, _)| s.as_str()).collect();
        let full = kw.get(1) == Some(&"FULL");
        let schema_name = match kw.iter().position(|k| *k == "FROM" || *k == "IN") {
            Some(p) => w.get(p + 1).map(|(s, _, _)| unquote(s)),
            None => self.schema.clone(),
        }
        .ok_or_else(|| Error::sql(1046, "3D000", "No database selected"))?;
        let schema = cfg
            .schema(&schema_name)
            .filter(|s| self.user.may_use(&s.name))
            .ok_or_else(|| Error::sql(1049, "42000", format!("Unknown database '{schema_name}'")))?;
        let pattern = kw.iter().position(|k| *k == "LIKE").and_then(|p| w.get(p + 1)).map(|(s, _, _)| unquote(s));
        let mut names: Vec<(String, String)> =
            schema.all_tables().iter().map(|t| (t.name.to_ascii_lowercase(), "BASE TABLE".to_string())).collect();
        if let Some(dn) = &schema.data_node {
            let nodes = vec![Arc::from(dn.as_str())];
            let mut conns = self.acquire(&nodes).await?;
            let res = conns[0].query_rows("SHOW FULL TABLES").await;
            self.release(nodes, conns, &res).await;
            for r in res? {
                let n =
                    r.first().cloned().flatten().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                let t =
                    r.get(1).cloned().flatten().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                if !names.iter().any(|(x, _)| x.eq_ignore_ascii_case(&n)) {
                    names.push((n, t));
                }
            }
        }
        names.retain(|(n, _)| pattern.as_deref().is_none_or(|p| like(p, n)));
        names.sort();
        let col = match &pattern {
            Some(p) => format!("Tables_in_{} ({p})", schema.name),
            None => format!("Tables_in_{}", schema.name),
        };
        let mut cols = vec![Col { name: &col, numeric: false }];
        if full {
            cols.push(Col { name: "Table_type", numeric: false });
        }
        let rows: Vec<Vec<Option<String>>> =
            names.into_iter().map(|(n, t)| if full { vec![Some(n), Some(t)] } else { vec![Some(n)] }).collect();
        self.send_result("TABLE_NAMES", &cols, &rows).await
    }
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_patterns() {
        assert!(like("cust%", "customer"));
        assert!(like("%", ""));
        assert!(like("t_", "t1"));
        assert!(!like("t_", "t12"));
        assert!(like("CUST%", "customer"));
    }
}
