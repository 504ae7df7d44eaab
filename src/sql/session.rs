//! Reading the statements that change session state — SET (NAMES, autocommit, isolation, variables),
//! USE, KILL — from the raw text, and the state other statements leave where the server's session
//! trackers are silent. SET is never regenerated from an AST (sqlparser drops SESSION).

use super::classify::{skip_space_and_comments, word_at};

/// One assignment of a SET statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetItem {
    /// `NAMES x [COLLATE y]` or `CHARACTER SET x`: the argument as `SET NAMES` takes it.
    Names(String),
    Autocommit(bool),
    /// Session isolation, in `tx_isolation` form (`READ-COMMITTED`).
    Isolation(String),
    /// `SET TRANSACTION …` without a scope: applies to the next transaction only (the clause text).
    NextTransaction(String),
    /// `GLOBAL`/`PERSIST` assignments: refused (they would reach one backend only).
    Global(String),
    /// Anything else (user variables, sql_mode, time_zone, …), as a replayable `SET …` statement.
    Other(String),
}

/// Splits at top-level commas (outside quotes and parentheses).
fn split_top_level(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let (mut depth, mut quote, mut start) = (0i32, 0u8, 0usize);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if quote != 0 {
            if c == b'\\' {
                i += 1;
            } else if c == quote {
                quote = 0;
            }
        } else {
            match c {
                b'\'' | b'"' | b'`' => quote = c,
                b'(' => depth += 1,
                b')' => depth -= 1,
                b',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = v
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
        .or_else(|| v.strip_prefix('`').and_then(|x| x.strip_suffix('`')))
        .unwrap_or(v);
    inner.to_string()
}

fn bool_value(v: &str) -> Option<bool> {
    match unquote(v).to_ascii_uppercase().as_str() {
        "1" | "ON" | "TRUE" => Some(true),
        "0" | "OFF" | "FALSE" => Some(false),
        _ => None,
    }
}

fn isolation_words(words: &str) -> Option<String> {
    let norm = words.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
    let norm = norm.replace('-', " ");
    match norm.as_str() {
        "READ UNCOMMITTED" | "READ COMMITTED" | "REPEATABLE READ" | "SERIALIZABLE" => Some(norm.replace(' ', "-")),
        _ => None,
    }
}

/// Parses a SET statement (`sql` starts with SET after `start`).
pub fn parse_set(sql: &str, start: usize) -> Result<Vec<SetItem>, String> {
    let (_, after_set) = word_at(sql, start);
    let body = sql[after_set..].trim().trim_end_matches(';').trim();
    let upper = body.to_ascii_uppercase();
    // SET [SESSION|GLOBAL] TRANSACTION …
    for (prefix, scope) in
        [("SESSION TRANSACTION", 1), ("LOCAL TRANSACTION", 1), ("GLOBAL TRANSACTION", 2), ("TRANSACTION", 0)]
    {
        if let Some(rest) = upper.strip_prefix(prefix) {
            if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                continue;
            }
            let clause = body[prefix.len()..].trim().to_string();
            return Ok(vec![match scope {
                2 => SetItem::Global(format!("SET {body}")),
                1 => match clause.to_ascii_uppercase().strip_prefix("ISOLATION LEVEL").and_then(isolation_words) {
                    Some(level) => SetItem::Isolation(level),
                    None => SetItem::Other(format!("SET SESSION TRANSACTION {clause}")),
                },
                _ => SetItem::NextTransaction(clause),
            }]);
        }
    }
    let mut items = Vec::new();
    for part in split_top_level(body) {
        let p = part.trim();
        if p.is_empty() {
            return Err("empty assignment in SET".into());
        }
        let up = p.to_ascii_uppercase();
        if let Some(rest) = up.strip_prefix("NAMES").filter(|r| r.starts_with(char::is_whitespace)) {
            let _ = rest;
            items.push(SetItem::Names(p[5..].trim().to_string()));
            continue;
        }
        if let Some(arg) = up.strip_prefix("CHARACTER SET").or_else(|| up.strip_prefix("CHARSET")) {
            let n = p.len() - arg.len();
            items.push(SetItem::Names(p[n..].trim().to_string()));
            continue;
        }
        let (lhs, rhs) = match p.split_once(":=").or_else(|| p.split_once('=')) {
            Some(x) => x,
            None => return Err(format!("cannot read SET assignment '{p}'")),
        };
        let name = lhs.trim();
        let lname = name.to_ascii_lowercase().replace('`', "");
        let (scope, var) = if let Some(v) = lname.strip_prefix("@@global.").or_else(|| lname.strip_prefix("global ")) {
            ("global", v.trim().to_string())
        } else if let Some(v) = lname.strip_prefix("@@persist.").or_else(|| lname.strip_prefix("persist ")) {
            ("global", v.trim().to_string())
        } else if let Some(v) = lname
            .strip_prefix("@@session.")
            .or_else(|| lname.strip_prefix("@@local."))
            .or_else(|| lname.strip_prefix("session "))
            .or_else(|| lname.strip_prefix("local "))
            .or_else(|| lname.strip_prefix("@@"))
        {
            ("session", v.trim().to_string())
        } else if lname.starts_with('@') {
            ("user", lname.clone())
        } else {
            ("session", lname.clone())
        };
        match (scope, var.as_str()) {
            ("global", _) => items.push(SetItem::Global(format!("SET {p}"))),
            ("session", "autocommit") => match bool_value(rhs) {
                Some(b) => items.push(SetItem::Autocommit(b)),
                None => return Err(format!("Variable 'autocommit' can't be set to the value of '{}'", unquote(rhs))),
            },
            ("session", "tx_isolation") | ("session", "transaction_isolation") => {
                match isolation_words(&unquote(rhs)) {
                    Some(level) => items.push(SetItem::Isolation(level)),
                    None => return Err(format!("Variable '{var}' can't be set to the value of '{}'", unquote(rhs))),
                }
            }
            _ => items.push(SetItem::Other(format!("SET {p}"))),
        }
    }
    Ok(items)
}

/// `USE db` → db (backticks removed).
pub fn parse_use(sql: &str, start: usize) -> Option<String> {
    let (_, end) = word_at(sql, start);
    let rest = sql[end..].trim().trim_end_matches(';').trim();
    let db = unquote(rest);
    if db.is_empty() {
        None
    } else {
        Some(db)
    }
}

/// `KILL [CONNECTION|QUERY] id` → (is_query, id).
pub fn parse_kill(sql: &str, start: usize) -> Option<(bool, u32)> {
    let (_, mut end) = word_at(sql, start);
    let mut query = false;
    let p = skip_space_and_comments(sql, end);
    let (w, e) = word_at(sql, p);
    match w.to_ascii_uppercase().as_str() {
        "QUERY" => {
            query = true;
            end = e;
        }
        "CONNECTION" => end = e,
        _ => {}
    }
    let id = sql[end..].trim().trim_end_matches(';').trim().parse().ok()?;
    Some((query, id))
}

/// The variable a replayable `SET x = v` item (from `parse_set`) assigns, when its value stands alone
/// (no variable, no function call): a later assignment of the same variable replaces it in the
/// session's list. `None` when the value may depend on what ran before (`@@sql_mode`, `@x + 1`).
pub fn set_key(item: &str) -> Option<String> {
    let body = item.strip_prefix("SET ")?;
    let (lhs, rhs) = body.split_once(":=").or_else(|| body.split_once('='))?;
    if rhs.contains('@') || rhs.contains('(') {
        return None;
    }
    let l = lhs.trim().to_ascii_lowercase().replace('`', "");
    let var = l
        .strip_prefix("@@session.")
        .or_else(|| l.strip_prefix("@@local."))
        .or_else(|| l.strip_prefix("session "))
        .or_else(|| l.strip_prefix("local "))
        .or_else(|| l.strip_prefix("@@"))
        .unwrap_or(&l);
    Some(var.trim().to_string())
}

/// `sql` with `ROW_COUNT()` and `FOUND_ROWS()` written as the session's values (`row_count`,
/// `found_rows`), so that they are the session's whichever connection runs the statement. Each call
/// becomes `IF(0, ROW_COUNT(), v)`, whose type and length are the function's (BIGINT, 21), and an
/// unnamed item of a SELECT's select list that holds one is named by its own text, as MariaDB names
/// it (`SELECT ROW_COUNT() + 1` keeps that column name). `None`: unchanged.
pub fn substitute_counters(sql: &str, is_select: bool, row_count: i64, found_rows: u64) -> Option<String> {
    let b = sql.as_bytes();
    if !contains_ci(b, b"ROW_COUNT") && !contains_ci(b, b"FOUND_ROWS") {
        return None;
    }
    // (start, end, replacement), in text order
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut quotes = super::analyze::Quotes::default();
    for (at, c) in sql.char_indices() {
        if !quotes.outside(c) {
            continue;
        }
        let word_start = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_' || b[at - 1] == b'.');
        let name = [("ROW_COUNT", row_count.to_string()), ("FOUND_ROWS", found_rows.to_string())]
            .into_iter()
            .find(|(n, _)| word_start && b.get(at..at + n.len()).is_some_and(|w| w.eq_ignore_ascii_case(n.as_bytes())));
        let Some((n, value)) = name else { continue };
        let mut j = at + n.len();
        while b.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
            j += 1;
        }
        let mut k = j + 1;
        while b.get(k).is_some_and(|c| c.is_ascii_whitespace()) {
            k += 1;
        }
        if b.get(j) == Some(&b'(') && b.get(k) == Some(&b')') && edits.last().is_none_or(|e| e.1 <= at) {
            edits.push((at, k + 1, format!("IF(0, {n}(), {value})")));
        }
    }
    if edits.is_empty() {
        return None;
    }
    if is_select {
        match unnamed_items(sql) {
            Some(items) => {
                for (start, end) in items {
                    if edits.iter().any(|e| e.0 >= start && e.1 <= end) {
                        let name: String = sql[start..end].chars().take(255).collect();
                        edits.push((end, end, format!(" AS `{}`", name.replace('`', "``"))));
                    }
                }
                edits.sort_by_key(|e| (e.0, e.1));
            }
            // the items cannot be told apart: the select list keeps its text (and the connection's values)
            None => {
                let end = select_list_end(sql);
                edits.retain(|e| e.0 >= end);
            }
        }
    }
    let mut out = String::with_capacity(sql.len() + 32 * edits.len());
    let mut copied = 0;
    for (start, end, text) in &edits {
        out.push_str(&sql[copied..*start]);
        out.push_str(text);
        copied = *end;
    }
    out.push_str(&sql[copied..]);
    (!edits.is_empty()).then_some(out)
}

/// The byte ranges of the unnamed items (no alias) of a SELECT's first select list, the one that
/// names its columns; `None` when the text does not parse or an item's range is not known.
fn unnamed_items(sql: &str) -> Option<Vec<(usize, usize)>> {
    use sqlparser::ast::{SelectItem, SetExpr, Statement};
    let stmts = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::MySqlDialect {}, sql).ok()?;
    let Some(Statement::Query(q)) = stmts.first() else { return None };
    let mut body = q.body.as_ref();
    let select = loop {
        match body {
            SetExpr::Select(s) => break s,
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(q) => body = q.body.as_ref(),
            _ => return None,
        }
    };
    select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(super::analyze::expr_byte_span(sql, e)),
            _ => None,
        })
        .collect()
}

/// Where a SELECT's select list ends: its first FROM outside quotes and parentheses, else the end.
fn select_list_end(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut quotes = super::analyze::Quotes::default();
    let mut depth = 0i32;
    for (at, c) in sql.char_indices() {
        if !quotes.outside(c) {
            continue;
        }
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            'F' | 'f' if depth == 0 => {
                let before = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
                let after = b.get(at + 4).is_none_or(|n| !(n.is_ascii_alphanumeric() || *n == b'_'));
                if before && after && b.get(at..at + 4).is_some_and(|w| w.eq_ignore_ascii_case(b"FROM")) {
                    return at;
                }
            }
            _ => {}
        }
    }
    sql.len()
}

/// The value of a `SET x = v` item (from `parse_set`), unquoted.
pub fn set_value(item: &str) -> String {
    let rhs = item.split_once(":=").or_else(|| item.split_once('=')).map(|(_, v)| v.trim()).unwrap_or("");
    rhs.trim_matches(|c| c == '\'' || c == '"').to_string()
}

/// Whether a statement leaves session state on its connection that MariaDB's session trackers do
/// not report (measured on 10.11: user variables assigned by `SELECT @v := …`, `DO @v := …` or
/// `… INTO @v`, named locks taken by GET_LOCK, HANDLER … OPEN, a sequence's session value after
/// NEXTVAL / NEXT VALUE FOR / SETVAL). Conservative: an `:=` or GET_LOCK anywhere outside quotes counts.
pub fn leaves_state(sql: &str) -> bool {
    let b = sql.as_bytes();
    let prefilter = memchr_any(b, b':')
        || memchr_any(b, b'@')
        || contains_ci(b, b"GET_LOCK")
        || contains_ci(b, b"HANDLER")
        || contains_ci(b, b"NEXT")
        || contains_ci(b, b"SETVAL");
    if !prefilter {
        return false;
    }
    let mut quotes = super::analyze::Quotes::default();
    let mut prev = ' ';
    let mut word = String::new();
    let mut last_word = String::new();
    for c in sql.chars() {
        if !quotes.outside(c) {
            prev = ' ';
            continue;
        }
        if prev == ':' && c == '=' {
            return true;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c.to_ascii_uppercase());
        } else {
            if !word.is_empty() {
                if word == "HANDLER" && last_word.is_empty() {
                    return true;
                }
                if word == "VALUE" && last_word == "NEXT" {
                    return true; // NEXT VALUE FOR seq: the session's PREVIOUS VALUE FOR it
                }
                last_word = std::mem::take(&mut word);
            }
            if c == '(' && matches!(last_word.as_str(), "GET_LOCK" | "NEXTVAL" | "SETVAL") {
                return true;
            }
            if c == '@' && last_word == "INTO" && prev != '@' {
                return true;
            }
            if !c.is_whitespace() && c != '@' {
                last_word.clear();
                last_word.push(c);
            }
        }
        prev = c;
    }
    word == "HANDLER" && last_word.is_empty()
}

fn memchr_any(b: &[u8], c: u8) -> bool {
    b.contains(&c)
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> Result<Vec<SetItem>, String> {
        parse_set(s, 0)
    }

    #[test]
    fn set_forms() {
        assert_eq!(set("SET NAMES utf8mb4").unwrap(), vec![SetItem::Names("utf8mb4".into())]);
        assert_eq!(
            set("set names 'utf8mb4' collate 'utf8mb4_bin', autocommit=0").unwrap(),
            vec![SetItem::Names("'utf8mb4' collate 'utf8mb4_bin'".into()), SetItem::Autocommit(false)]
        );
        assert_eq!(set("SET @@session.autocommit = ON").unwrap(), vec![SetItem::Autocommit(true)]);
        assert_eq!(set("SET autocommit=1").unwrap(), vec![SetItem::Autocommit(true)]);
        assert!(set("SET autocommit=5").is_err());
        assert_eq!(
            set("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").unwrap(),
            vec![SetItem::Isolation("READ-COMMITTED".into())]
        );
        assert_eq!(set("SET tx_isolation='serializable'").unwrap(), vec![SetItem::Isolation("SERIALIZABLE".into())]);
        assert_eq!(
            set("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").unwrap(),
            vec![SetItem::NextTransaction("ISOLATION LEVEL SERIALIZABLE".into())]
        );
        assert_eq!(
            set("SET GLOBAL max_connections=10").unwrap(),
            vec![SetItem::Global("SET GLOBAL max_connections=10".into())]
        );
        assert_eq!(
            set("SET @a = 'x,y', sql_mode=concat(@@sql_mode, ',STRICT')").unwrap(),
            vec![
                SetItem::Other("SET @a = 'x,y'".into()),
                SetItem::Other("SET sql_mode=concat(@@sql_mode, ',STRICT')".into())
            ]
        );
        assert_eq!(set("SET character set utf8").unwrap(), vec![SetItem::Names("utf8".into())]);
    }

    #[test]
    fn use_and_kill() {
        assert_eq!(parse_use("use `demo`;", 0), Some("demo".into()));
        assert_eq!(parse_use("use", 0), None);
        assert_eq!(parse_kill("KILL 12", 0), Some((false, 12)));
        assert_eq!(parse_kill("kill query 7", 0), Some((true, 7)));
        assert_eq!(parse_kill("kill connection x", 0), None);
    }
}

#[cfg(test)]
mod state_tests {
    use super::{leaves_state, set_key};

    #[test]
    fn counters_are_written_where_they_rename_nothing() {
        use super::{select_list_end, substitute_counters};
        let sql = "INSERT INTO log VALUES (ROW_COUNT(), found_rows ( ), 'ROW_COUNT()')";
        assert_eq!(
            substitute_counters(sql, false, 3, 40).as_deref(),
            Some("INSERT INTO log VALUES (IF(0, ROW_COUNT(), 3), IF(0, FOUND_ROWS(), 40), 'ROW_COUNT()')")
        );
        let sel = "SELECT ROW_COUNT() FROM t WHERE n = ROW_COUNT()";
        assert_eq!(
            substitute_counters(sel, true, -1, 0).as_deref(),
            Some("SELECT IF(0, ROW_COUNT(), -1) AS `ROW_COUNT()` FROM t WHERE n = IF(0, ROW_COUNT(), -1)")
        );
        let expr = "SELECT  row_count()  +  1 /* c */, FOUND_ROWS() AS `n`, (SELECT ROW_COUNT()) x UNION SELECT ROW_COUNT(), 1, 2";
        assert_eq!(
            substitute_counters(expr, true, 5, 7).as_deref(),
            Some(
                "SELECT  IF(0, ROW_COUNT(), 5)  +  1 AS `row_count()  +  1` /* c */, IF(0, FOUND_ROWS(), 7) AS `n`, \
                 (SELECT IF(0, ROW_COUNT(), 5)) x UNION SELECT IF(0, ROW_COUNT(), 5), 1, 2"
            )
        );
        let quoted = "SELECT CONCAT('`', ROW_COUNT(), '`')";
        assert_eq!(
            substitute_counters(quoted, true, 1, 0).as_deref(),
            Some("SELECT CONCAT('`', IF(0, ROW_COUNT(), 1), '`') AS `CONCAT('``', ROW_COUNT(), '``')`")
        );
        assert_eq!(substitute_counters("SELECT my_row_count() FROM t", true, 1, 1), None);
        // not parsed: the select list keeps the connection's value, the rest is the session's
        let odd = "SELECT ROW_COUNT() FROM t WHERE n = ROW_COUNT() PROCEDURE ANALYSE(";
        assert_eq!(
            substitute_counters(odd, true, 4, 0).as_deref(),
            Some("SELECT ROW_COUNT() FROM t WHERE n = IF(0, ROW_COUNT(), 4) PROCEDURE ANALYSE(")
        );
        assert_eq!(select_list_end("SELECT (SELECT 1 FROM u) FROM t"), 25, "the FROM of the outer SELECT");
    }

    #[test]
    fn set_keys() {
        assert_eq!(set_key("SET @x = 1").as_deref(), Some("@x"));
        assert_eq!(set_key("SET @@session.sql_mode = 'ANSI'").as_deref(), Some("sql_mode"));
        assert_eq!(set_key("SET SESSION sql_mode='ANSI'").as_deref(), Some("sql_mode"));
        assert_eq!(set_key("SET sql_mode = concat(@@sql_mode, ',X')"), None);
        assert_eq!(set_key("SET @x = @x + 1"), None);
    }

    #[test]
    fn statements_that_leave_untracked_state() {
        for sql in [
            "SELECT @x := 41",
            "select @x:=1, 2",
            "DO @z := 3",
            "SELECT 1 INTO @v",
            "SELECT a FROM t WHERE id = 1 INTO @a",
            "SELECT GET_LOCK('l', 0)",
            "select get_lock ('l', 0)",
            "HANDLER t OPEN",
            "handler t read first",
            "SELECT NEXTVAL(s)",
            "select next value for s",
            "INSERT INTO t VALUES (NEXT VALUE FOR s)",
        ] {
            assert!(leaves_state(sql), "{sql}");
        }
    }

    #[test]
    fn statements_that_do_not() {
        for sql in [
            "SELECT 1",
            "SELECT @x",
            "SELECT @@version",
            "SELECT ':=' , 'GET_LOCK('",
            "SELECT * FROM t WHERE a = '@x := 1'",
            "INSERT INTO t VALUES (@x)",
            "SELECT * INTO OUTFILE '/tmp/x' FROM t",
            "SELECT `handler` FROM t",
            "SELECT IS_FREE_LOCK('l')",
            "SELECT name FROM handlers",
            "SELECT interval_val FROM t",
            "SELECT next FROM t WHERE value = 1",
        ] {
            assert!(!leaves_state(sql), "{sql}");
        }
    }
}
