//! The cheap pre-classifier: the statement kind from its first keywords, without a full parse, so
//! COMMIT, BEGIN, SET NAMES, USE and the like never pay for sqlparser.

/// What a statement is, by its leading keyword(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Select,
    Insert,
    Replace,
    Update,
    Delete,
    /// CREATE/ALTER/DROP/TRUNCATE/RENAME: implicit commit in MySQL.
    Ddl,
    Begin,
    Commit,
    Rollback,
    Savepoint,
    Set,
    Use,
    Show,
    Describe,
    Explain,
    Call,
    Lock,
    Unlock,
    Kill,
    Xa,
    LoadData,
    Do,
    Other,
    Empty,
}

impl Kind {
    /// Statements a readOnly user may not run.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Kind::Insert | Kind::Replace | Kind::Update | Kind::Delete | Kind::Ddl | Kind::LoadData | Kind::Call
        )
    }

    /// The kind as a metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Select => "select",
            Kind::Insert => "insert",
            Kind::Replace => "replace",
            Kind::Update => "update",
            Kind::Delete => "delete",
            Kind::Ddl => "ddl",
            Kind::Begin => "begin",
            Kind::Commit => "commit",
            Kind::Rollback => "rollback",
            Kind::Savepoint => "savepoint",
            Kind::Set => "set",
            Kind::Use => "use",
            Kind::Show => "show",
            Kind::Describe => "describe",
            Kind::Explain => "explain",
            Kind::Call => "call",
            Kind::Lock => "lock",
            Kind::Unlock => "unlock",
            Kind::Kill => "kill",
            Kind::Xa => "xa",
            Kind::LoadData => "load_data",
            Kind::Do => "do",
            Kind::Other => "other",
            Kind::Empty => "empty",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Kind::Insert => "INSERT",
            Kind::Replace => "REPLACE",
            Kind::Update => "UPDATE",
            Kind::Delete => "DELETE",
            Kind::Ddl => "DDL",
            Kind::LoadData => "LOAD DATA",
            Kind::Call => "CALL",
            Kind::Select => "SELECT",
            _ => "statement",
        }
    }
}

/// Skips whitespace and comments (`/* */`, `-- `, `#`) from `pos`. Executable comments `/*! … */`
/// and Mycat hints are skipped too: the parser sees them as comments.
pub fn skip_space_and_comments(s: &str, mut pos: usize) -> usize {
    let b = s.as_bytes();
    loop {
        while pos < b.len() && (b[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if b[pos..].starts_with(b"/*") {
            match s[pos + 2..].find("*/") {
                Some(end) => pos = pos + 2 + end + 2,
                None => return b.len(),
            }
        } else if b[pos..].starts_with(b"#")
            || b[pos..].starts_with(b"-- ")
            || b[pos..].starts_with(b"--\t")
            || &b[pos..] == b"--"
        {
            match s[pos..].find('\n') {
                Some(end) => pos += end + 1,
                None => return b.len(),
            }
        } else {
            return pos;
        }
    }
}

/// The next word (letters, digits, `_`) starting at `pos`, and where it ends.
pub fn word_at(s: &str, pos: usize) -> (&str, usize) {
    let b = s.as_bytes();
    let mut end = pos;
    while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
        end += 1;
    }
    (&s[pos..end], end)
}

/// Classifies `sql`; also returns the byte offset of the first keyword.
pub fn classify(sql: &str) -> (Kind, usize) {
    let start = skip_space_and_comments(sql, 0);
    if start >= sql.len() {
        return (Kind::Empty, start);
    }
    if sql.as_bytes()[start] == b'(' {
        return (Kind::Select, start); // (SELECT …) UNION …
    }
    let (w, end) = word_at(sql, start);
    let next = || {
        let p = skip_space_and_comments(sql, end);
        word_at(sql, p).0.to_ascii_uppercase()
    };
    let kind = match w.to_ascii_uppercase().as_str() {
        "SELECT" | "WITH" | "VALUES" | "TABLE" => Kind::Select,
        "INSERT" => Kind::Insert,
        "REPLACE" => Kind::Replace,
        "UPDATE" => Kind::Update,
        "DELETE" => Kind::Delete,
        "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "RENAME" => Kind::Ddl,
        "BEGIN" => {
            if next() == "WORK" || next().is_empty() {
                Kind::Begin
            } else {
                Kind::Other
            }
        }
        "START" => {
            if next() == "TRANSACTION" {
                Kind::Begin
            } else {
                Kind::Other
            }
        }
        "COMMIT" => Kind::Commit,
        "ROLLBACK" => {
            if next() == "TO" || next() == "WORK" && sql.to_ascii_uppercase().contains(" TO ") {
                Kind::Savepoint
            } else {
                Kind::Rollback
            }
        }
        "SAVEPOINT" | "RELEASE" => Kind::Savepoint,
        "SET" => {
            if next() == "STATEMENT" {
                // SET STATEMENT var = v [, …] FOR stmt: the variables last for that one statement,
                // which is what routing and the session see
                if let Some(at) = statement_after_for(sql, end) {
                    let (k, s) = classify(&sql[at..]);
                    return (k, at + s);
                }
            }
            Kind::Set
        }
        "USE" => Kind::Use,
        "SHOW" => Kind::Show,
        "DESC" | "DESCRIBE" => Kind::Describe,
        "EXPLAIN" => Kind::Explain,
        "CALL" => Kind::Call,
        "LOCK" => Kind::Lock,
        "UNLOCK" => Kind::Unlock,
        "KILL" => Kind::Kill,
        "XA" => Kind::Xa,
        "LOAD" => Kind::LoadData,
        "DO" => Kind::Do,
        _ => Kind::Other,
    };
    (kind, start)
}

/// A statement written as one executable comment (`/*!40101 SET … */`, `/*M!100100 … */`, as dump
/// tools and drivers send them): MariaDB runs its body, so the proxy handles the body. Mycat hints
/// (`/*!mycat:…*/`) are not executable comments.
pub fn executable_comment_body(sql: &str) -> Option<&str> {
    let t = sql.trim();
    let rest = t.strip_prefix("/*!").or_else(|| t.strip_prefix("/*M!"))?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let body = rest[digits..].strip_suffix("*/")?;
    // one comment: the body holds no end of comment of its own
    (!body.contains("*/")).then_some(body.trim())
}

/// Where the statement of `SET STATEMENT … FOR stmt` starts: after the first `FOR` outside quotes
/// and parentheses.
fn statement_after_for(sql: &str, from: usize) -> Option<usize> {
    let mut quotes = super::analyze::Quotes::default();
    let mut depth = 0i32;
    let b = sql.as_bytes();
    let mut prev_word_end = true;
    for (i, c) in sql.char_indices().skip_while(|(i, _)| *i < from) {
        if !quotes.outside(c) {
            prev_word_end = false;
            continue;
        }
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0
            && prev_word_end
            && b.get(i..i + 3).is_some_and(|w| w.eq_ignore_ascii_case(b"FOR"))
            && b.get(i + 3).is_none_or(|n| !n.is_ascii_alphanumeric() && *n != b'_')
        {
            return Some(i + 3);
        }
        prev_word_end = !(c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.');
    }
    None
}

/// `CREATE TEMPORARY TABLE` / `DROP TEMPORARY TABLE`: DDL without an implicit commit.
pub fn is_temporary_ddl(sql: &str) -> bool {
    let (_, start) = classify(sql);
    let mut pos = start;
    let mut words = 0;
    // CREATE [OR REPLACE] TEMPORARY …, DROP TEMPORARY …
    while words < 4 {
        pos = skip_space_and_comments(sql, pos);
        let (w, end) = word_at(sql, pos);
        if w.is_empty() {
            return false;
        }
        if w.eq_ignore_ascii_case("TEMPORARY") {
            return true;
        }
        pos = end;
        words += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_keywords() {
        assert_eq!(classify("  select 1").0, Kind::Select);
        assert_eq!(classify("/* x */ -- y\n# z\nSELECT 1").0, Kind::Select);
        assert_eq!(classify("/*#mycat:db_type=master*/ update t set a=1").0, Kind::Update);
        assert_eq!(classify("start transaction read only").0, Kind::Begin);
        assert_eq!(classify("BEGIN").0, Kind::Begin);
        assert_eq!(classify("begin work").0, Kind::Begin);
        assert_eq!(classify("rollback").0, Kind::Rollback);
        assert_eq!(classify("ROLLBACK TO SAVEPOINT a").0, Kind::Savepoint);
        assert_eq!(classify("truncate table t").0, Kind::Ddl);
        assert!(is_temporary_ddl("CREATE TEMPORARY TABLE t (a INT)"));
        let s = "SET STATEMENT max_statement_time=2 FOR SELECT data FROM test";
        let (k, at) = classify(s);
        assert_eq!((k, &s[at..]), (Kind::Select, "SELECT data FROM test"));
        let s = "set statement sql_mode='FOR', x=(SELECT 1 FOR UPDATE) for update t set a=1";
        let (k, at) = classify(s);
        assert_eq!((k, &s[at..]), (Kind::Update, "update t set a=1"));
        assert_eq!(classify("SET STATEMENT x=1").0, Kind::Set);
        assert_eq!(executable_comment_body("/*!40101 SET @A=@@B */"), Some("SET @A=@@B"));
        assert_eq!(executable_comment_body(" /*M!100100 SELECT 1*/ "), Some("SELECT 1"));
        assert_eq!(executable_comment_body("/*! SELECT 2 */"), Some("SELECT 2"));
        assert_eq!(executable_comment_body("/*!mycat:sql=select 1*/ SELECT 3"), None);
        assert_eq!(executable_comment_body("/*!40101 SET @A=1 */ SELECT /* x */ 1"), None);
        assert!(is_temporary_ddl("create or replace temporary table t (a int)"));
        assert!(is_temporary_ddl("DROP TEMPORARY TABLE IF EXISTS t"));
        assert!(!is_temporary_ddl("CREATE TABLE temporary_x (a INT)"));
        assert!(!is_temporary_ddl("DROP TABLE t"));
        assert_eq!(classify("set names utf8mb4").0, Kind::Set);
        assert_eq!(classify("").0, Kind::Empty);
        assert_eq!(classify("/* unterminated").0, Kind::Empty);
        assert_eq!(classify("(select 1) union (select 2)").0, Kind::Select);
        assert_eq!(classify("héllo").0, Kind::Other);
    }
}
