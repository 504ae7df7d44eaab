//! Splitting a multi-statement text into its statements: at `;` outside quotes, identifiers and
//! comments, so that each can be handled (session statements by the proxy, the rest routed) in turn.

/// The byte ranges of the non-empty statements of `sql` (without their `;`). A stored program
/// (CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT) or a compound statement (BEGIN NOT ATOMIC, IF, CASE,
/// LOOP, WHILE, REPEAT, a label) is one statement whatever `;` its body holds.
pub fn statements(sql: &str) -> Vec<(usize, usize)> {
    if is_compound(sql) {
        return vec![(0, sql.trim_end().trim_end_matches(';').len())];
    }
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut quote: Option<u8> = None;
    let push = |s: usize, e: usize, out: &mut Vec<(usize, usize)>| {
        if !sql[s..e].trim().is_empty() {
            out.push((s, e));
        }
    };
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' && q != b'`' {
                i += 2;
                continue;
            }
            if c == q {
                if b.get(i + 1) == Some(&q) {
                    i += 2; // doubled quote
                    continue;
                }
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' | b'`' => quote = Some(c),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map(|p| i + 2 + p + 2).unwrap_or(b.len());
                continue;
            }
            b'#' => {
                i = sql[i..].find('\n').map(|p| i + p).unwrap_or(b.len());
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_none_or(|n| n.is_ascii_whitespace()) => {
                i = sql[i..].find('\n').map(|p| i + p).unwrap_or(b.len());
                continue;
            }
            b';' => {
                push(start, i, &mut out);
                start = i + 1;
                if is_compound(&sql[start..]) {
                    // a stored program from here on: the rest is its body
                    let end = start + sql[start..].trim_end().trim_end_matches(';').len();
                    push(start, end, &mut out);
                    return out;
                }
            }
            _ => {}
        }
        i += 1;
    }
    push(start, b.len().max(start), &mut out);
    out
}

/// Whether `sql` opens a stored program or a compound statement, whose body has `;` of its own.
fn is_compound(sql: &str) -> bool {
    use super::classify::{skip_space_and_comments, word_at};
    let mut pos = skip_space_and_comments(sql, 0);
    let (first, end) = word_at(sql, pos);
    let first = first.to_ascii_uppercase();
    if sql[end..].starts_with(':') && !first.is_empty() {
        return true; // label: BEGIN … END
    }
    match first.as_str() {
        "IF" | "CASE" | "LOOP" | "WHILE" | "REPEAT" | "DECLARE" => return true,
        "BEGIN" => {
            let p = skip_space_and_comments(sql, end);
            return word_at(sql, p).0.eq_ignore_ascii_case("NOT");
        }
        "CREATE" => {}
        _ => return false,
    }
    pos = end;
    // CREATE [OR REPLACE] [DEFINER = user] [AGGREGATE] PROCEDURE|FUNCTION|TRIGGER|EVENT
    for _ in 0..12 {
        pos = skip_space_and_comments(sql, pos);
        let (w, e) = word_at(sql, pos);
        if w.is_empty() {
            // DEFINER = `u`@`h` and the like: step over one character
            match sql[pos..].chars().next() {
                Some(c) => pos += c.len_utf8(),
                None => return false,
            }
            continue;
        }
        match w.to_ascii_uppercase().as_str() {
            "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT" => return true,
            "TABLE" | "VIEW" | "INDEX" | "DATABASE" | "SCHEMA" | "USER" | "SEQUENCE" | "ROLE" | "SERVER" => {
                return false
            }
            _ => pos = e,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::statements;

    fn texts(sql: &str) -> Vec<&str> {
        statements(sql).into_iter().map(|(s, e)| sql[s..e].trim()).collect()
    }

    #[test]
    fn splits_at_top_level_semicolons() {
        assert_eq!(texts("set @a=1; set @b=2"), vec!["set @a=1", "set @b=2"]);
        assert_eq!(texts("kill 5; select sleep(0.05);"), vec!["kill 5", "select sleep(0.05)"]);
        assert_eq!(texts("SELECT ';', \"a;b\", `c;d` FROM t"), vec!["SELECT ';', \"a;b\", `c;d` FROM t"]);
        assert_eq!(texts("SELECT 'it''s;' ; SELECT 'a\\';'"), vec!["SELECT 'it''s;'", "SELECT 'a\\';'"]);
        assert_eq!(texts("SELECT 1 /* ; */; -- x;\nSELECT 2 # y;\n"), vec!["SELECT 1 /* ; */", "-- x;\nSELECT 2 # y;"]);
        assert_eq!(texts("SELECT 1"), vec!["SELECT 1"]);
        assert!(texts(" ; ").is_empty());
        let p = "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END";
        assert_eq!(texts(p), vec![p]);
        let p = "create definer=`a`@`%` procedure p() begin select 1; end;";
        assert_eq!(texts(p), vec!["create definer=`a`@`%` procedure p() begin select 1; end"]);
        let p = "CREATE OR REPLACE FUNCTION f() RETURNS INT BEGIN RETURN 1; END";
        assert_eq!(texts(p), vec![p]);
        assert_eq!(texts("BEGIN NOT ATOMIC SELECT 1; SELECT 2; END"), vec!["BEGIN NOT ATOMIC SELECT 1; SELECT 2; END"]);
        assert_eq!(texts("BEGIN; SELECT 1"), vec!["BEGIN", "SELECT 1"]);
        assert_eq!(texts("CREATE TABLE t (a INT); SELECT 1"), vec!["CREATE TABLE t (a INT)", "SELECT 1"]);
        assert_eq!(
            texts("DROP PROCEDURE IF EXISTS p;\nCREATE PROCEDURE p()\nBEGIN\nSET @a=1; SELECT 2;\nEND;"),
            vec!["DROP PROCEDURE IF EXISTS p", "CREATE PROCEDURE p()\nBEGIN\nSET @a=1; SELECT 2;\nEND"]
        );
    }
}
