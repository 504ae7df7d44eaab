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
    /// The proxy answered it with this error (code, message).
    Local(u16, String),
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

    pub async fn show_diagnostics(&mut self, sql: &str) -> Result<()> {
        match self.diag.clone() {
            Diagnostics::Node(node) => {
                self.reading_diagnostics = true;
                let r = self.forward_to(node, sql).await;
                self.reading_diagnostics = false;
                r
            }
            Diagnostics::Local(code, msg) => self.local_diagnostics(sql, Some((code, msg))).await,
            Diagnostics::Clean => self.local_diagnostics(sql, None).await,
        }
    }

    async fn local_diagnostics(&mut self, sql: &str, err: Option<(u16, String)>) -> Result<()> {
        let up = sql.to_ascii_uppercase();
        if up.contains("COUNT") {
            let name = if up.contains("ERRORS") { "@@session.error_count" } else { "@@session.warning_count" };
            let n = u8::from(err.is_some()).to_string();
            return self.send_result("", &[Col { name, numeric: true }], &[vec![Some(n)]]).await;
        }
        let rows: Vec<Vec<Option<String>>> =
            err.into_iter().map(|(code, msg)| vec![Some("Error".into()), Some(code.to_string()), Some(msg)]).collect();
        let cols = [
            Col { name: "Level", numeric: false },
            Col { name: "Code", numeric: true },
            Col { name: "Message", numeric: false },
        ];
        self.send_result("", &cols, &rows).await
    }
}
