//! SHOW WARNINGS / SHOW ERRORS / SHOW COUNT(*) …: the diagnostics of the session's last statements.
//! A backend statement that left warnings or an error keeps its connection (its diagnostics live
//! there, and the server decides what later statements on it clear); the proxy's own errors are
//! answered by the proxy; a statement on another node leaves none.

use std::sync::Arc;

use super::local::Col;
use super::session::Session;
use crate::error::Result;
use crate::sql::classify::{skip_space_and_comments, word_at, Kind};

/// Where the previous statement's diagnostics are.
#[derive(Debug, Clone, Default)]
pub enum Diagnostics {
    /// It left none.
    #[default]
    Clean,
    /// On the session's held connection to this node.
    Node(Arc<str>),
    /// The proxy answered it with this error (code, SQLSTATE, message).
    Local(u16, String, String),
    /// The proxy's own warnings (code, message) on a reply it merged.
    Warnings(Vec<(u16, String)>),
}

/// `GET [CURRENT] DIAGNOSTICS …`: reads the diagnostics into user variables without clearing them.
pub fn is_get_diagnostics(sql: &str, start: usize) -> bool {
    let (w, end) = word_at(sql, start);
    if !w.eq_ignore_ascii_case("GET") {
        return false;
    }
    let mut p = skip_space_and_comments(sql, end);
    let (mut w, mut e) = word_at(sql, p);
    if w.eq_ignore_ascii_case("CURRENT") {
        p = skip_space_and_comments(sql, e);
        (w, e) = word_at(sql, p);
    }
    let _ = e;
    w.eq_ignore_ascii_case("DIAGNOSTICS")
}

/// SHOW WARNINGS, SHOW ERRORS, SHOW COUNT(*) WARNINGS|ERRORS: statements that read the diagnostics
/// without clearing them.
pub fn is_diagnostics_statement(kind: Kind, sql: &str, start: usize) -> bool {
    if kind != Kind::Show {
        return false;
    }
    let (_, end) = word_at(sql, start);
    let p = skip_space_and_comments(sql, end);
    let (w, _) = word_at(sql, p);
    w.eq_ignore_ascii_case("WARNINGS") || w.eq_ignore_ascii_case("ERRORS") || w.eq_ignore_ascii_case("COUNT")
}

impl Session {
    /// Records where a statement that ran on backend `nodes` left the session's diagnostics: on its
    /// one node when it left warnings or an error, or when that node's connection already held them
    /// (the server knows what the statement cleared); none otherwise — and a connection held only for
    /// older diagnostics goes back to its pool.
    pub fn note_diagnostics(&mut self, nodes: &[Arc<str>], warnings: bool, failed: bool) {
        if self.reading_diagnostics {
            return;
        }
        let new = match nodes {
            [one] if warnings || failed => Diagnostics::Node(one.clone()),
            [one] if matches!(&self.diag, Diagnostics::Node(n) if n == one) => Diagnostics::Node(one.clone()),
            _ => Diagnostics::Clean,
        };
        let released =
            matches!(&self.diag, Diagnostics::Node(old) if !matches!(&new, Diagnostics::Node(n) if n == old));
        self.diag = new;
        if released {
            let held = std::mem::take(&mut self.pinned);
            for h in held {
                if h.joined || self.keeps(&h.node, &h.conn) {
                    self.pinned.push(h);
                }
            }
        }
    }

    /// `note_diagnostics` for a reply: the proxy's own warnings on it, when it raised any, are the
    /// session's diagnostics.
    pub fn note_reply(&mut self, nodes: &[Arc<str>], rep: &crate::exec::Reply) {
        self.note_diagnostics(nodes, rep.warnings > 0, rep.failed.is_some());
        if !rep.notes.is_empty() && !self.reading_diagnostics {
            self.diag = Diagnostics::Warnings(rep.notes.clone());
        }
    }

    pub async fn show_diagnostics(&mut self, sql: &str) -> Result<()> {
        match self.diag.clone() {
            Diagnostics::Node(node) => {
                self.reading_diagnostics = true;
                let r = self.forward_to(node, sql).await;
                self.reading_diagnostics = false;
                r
            }
            Diagnostics::Local(code, _, msg) => self.local_diagnostics(sql, &[("Error", code, msg)]).await,
            Diagnostics::Warnings(list) => {
                let list: Vec<(&str, u16, String)> = list.into_iter().map(|(c, m)| ("Warning", c, m)).collect();
                self.local_diagnostics(sql, &list).await
            }
            Diagnostics::Clean => self.local_diagnostics(sql, &[]).await,
        }
    }

    /// GET DIAGNOSTICS: on the connection that holds the diagnostics (the variables it sets stay
    /// there, with the session); from the proxy's own error or none, as SETs of the session's.
    pub async fn get_diagnostics(&mut self, sql: &str, raw: &bytes::Bytes) -> Result<()> {
        let diag = self.diag.clone();
        if let Diagnostics::Node(node) = diag {
            self.reading_diagnostics = true;
            let r = crate::route::Route::single(node);
            let res = self.execute_as(&r, std::slice::from_ref(raw), super::query::Access::Stateful).await;
            self.reading_diagnostics = false;
            return res.map(|_| ());
        }
        let err = match &diag {
            Diagnostics::Local(code, state, msg) => Some((*code, state.clone(), msg.clone())),
            _ => None,
        };
        let upper = sql.to_ascii_uppercase();
        let after = upper.find("DIAGNOSTICS").map(|i| i + "DIAGNOSTICS".len()).unwrap_or(sql.len());
        let mut rest = sql[after..].trim();
        let condition = rest.get(..9).is_some_and(|w| w.eq_ignore_ascii_case("CONDITION"));
        if condition {
            // CONDITION n: only condition 1 exists, and only after an error
            let tail = rest.get(9..).unwrap_or("").trim_start();
            let n_end = tail.find(|c: char| c.is_whitespace()).unwrap_or(tail.len());
            if tail[..n_end] != *"1" || err.is_none() {
                return Err(crate::error::Error::sql(1758, "35000", "Invalid condition number"));
            }
            rest = tail[n_end..].trim_start();
        }
        let mut sets = Vec::new();
        for part in rest.trim_end_matches(';').split(',') {
            let Some((target, item)) = part.split_once('=') else {
                return Err(crate::error::Error::sql(
                    1064,
                    "42000",
                    "You have an error in your SQL syntax near GET DIAGNOSTICS",
                ));
            };
            let target = target.trim();
            if !target.starts_with('@') {
                return Err(crate::error::Error::sql(
                    1064,
                    "42000",
                    format!("GET DIAGNOSTICS outside a stored program takes @variables, not '{target}'"),
                ));
            }
            let item = item.trim().to_ascii_uppercase();
            let value = match (condition, item.as_str(), &err) {
                (false, "NUMBER", e) => match &diag {
                    Diagnostics::Warnings(list) => list.len().to_string(),
                    _ => u8::from(e.is_some()).to_string(),
                },
                (false, "ROW_COUNT", _) => self.row_count.to_string(),
                (true, "MYSQL_ERRNO", Some((c, _, _))) => c.to_string(),
                (true, "RETURNED_SQLSTATE", Some((_, st, _))) => format!("'{st}'"),
                (true, "MESSAGE_TEXT", Some((_, _, m))) => format!("'{}'", m.replace('\\', "\\\\").replace('\'', "''")),
                (true, "CLASS_ORIGIN" | "SUBCLASS_ORIGIN", Some((_, st, _))) => {
                    if st.starts_with("HY") || st.starts_with("XA") {
                        "'MySQL'".into()
                    } else {
                        "'ISO 9075'".into()
                    }
                }
                (true, _, _) => "''".into(),
                _ => {
                    return Err(crate::error::Error::sql(
                        1064,
                        "42000",
                        format!("Unknown GET DIAGNOSTICS item '{item}'"),
                    ))
                }
            };
            sets.push(format!("SET {target} = {value}"));
        }
        for s in sets {
            self.push_set(s);
        }
        self.send_ok(0, 0, b"").await
    }

    /// SHOW WARNINGS / ERRORS / COUNT(*) over the proxy's own conditions (level, code, message).
    async fn local_diagnostics(&mut self, sql: &str, conditions: &[(&str, u16, String)]) -> Result<()> {
        let up = sql.to_ascii_uppercase();
        let errors_only = up.contains("ERRORS");
        let shown = conditions.iter().filter(|(level, _, _)| !errors_only || *level == "Error");
        if up.contains("COUNT") {
            let name = if errors_only { "@@session.error_count" } else { "@@session.warning_count" };
            let n = shown.count().to_string();
            return self.send_result("", &[Col { name, numeric: true }], &[vec![Some(n)]]).await;
        }
        let rows: Vec<Vec<Option<String>>> = shown
            .map(|(level, code, msg)| vec![Some(level.to_string()), Some(code.to_string()), Some(msg.clone())])
            .collect();
        let cols = [
            Col { name: "Level", numeric: false },
            Col { name: "Code", numeric: true },
            Col { name: "Message", numeric: false },
        ];
        self.send_result("", &cols, &rows).await
    }
}
