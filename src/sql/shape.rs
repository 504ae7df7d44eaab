//! A text statement's shape: its plain number and string literals replaced by `?`, so statements that
//! differ only in their values share one cached parse (text-protocol point selects, sysbench's text mode).

/// A literal taken out of a statement, in textual order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A decimal number as written (`42`, `3.50`).
    Number(String),
    /// A single-quoted string's contents (only strings without escapes are taken out).
    Text(String),
}

/// The statement with its literals replaced by `?`, and the literals; `None` when the text holds
/// anything this scanner does not read exactly as the parser would (comments, escapes, doubled quotes,
/// double-quoted strings, introducers, placeholders already present, no literal at all): the caller
/// then parses the text itself.
pub fn shape(sql: &str) -> Option<(String, Vec<Literal>)> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut lits = Vec::new();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut copied = 0; // bytes of `sql` before this index are in `out` or replaced
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'`' => {
                // a quoted identifier, copied as it is (`` `` `` is a backtick inside)
                i += 1;
                loop {
                    match b.get(i) {
                        None => return None,
                        Some(b'`') if b.get(i + 1) == Some(&b'`') => i += 2,
                        Some(b'`') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            b'\'' => {
                let before = sql[..i].trim_end().as_bytes().last().copied();
                if i > 0 && word(b[i - 1]) || before == Some(b'\'') {
                    return None; // an introducer (_utf8'…', X'…', N'…') or adjacent strings ('a' 'b')
                }
                let start = i + 1;
                let mut j = start;
                loop {
                    match b.get(j) {
                        // a backslash, or a masked one (sql::escapes): read by the full parse
                        None | Some(b'\\') | Some(0x01) => return None,
                        Some(b'\'') if b.get(j + 1) == Some(&b'\'') => return None,
                        Some(b'\'') => break,
                        Some(_) => j += 1,
                    }
                }
                out.push_str(&sql[copied..i]);
                out.push('?');
                lits.push(Literal::Text(sql[start..j].to_string()));
                i = j + 1;
                copied = i;
            }
            b'"' | b'?' | b'#' => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            c if word(c) => {
                let start = i;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                if !b[start..i].iter().all(u8::is_ascii_digit) {
                    continue; // an identifier, keyword or a literal like 1e5 / 0x1F: part of the shape
                }
                if start > 0 && matches!(b[start - 1], b'.' | b'@') {
                    return None;
                }
                if b.get(i) == Some(&b'.') {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    if i < b.len() && (word(b[i]) || b[i] == b'.') {
                        return None; // 1.5e3, 1.2.3
                    }
                }
                out.push_str(&sql[copied..start]);
                out.push('?');
                lits.push(Literal::Number(sql[start..i].to_string()));
                copied = i;
            }
            _ => i += 1,
        }
    }
    if lits.is_empty() {
        return None;
    }
    out.push_str(&sql[copied..]);
    Some((out, lits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Literal {
        Literal::Number(s.into())
    }
    fn t(s: &str) -> Literal {
        Literal::Text(s.into())
    }

    #[test]
    fn numbers_and_strings_become_placeholders() {
        let (s, l) = shape("SELECT c FROM sbtest1 WHERE id=5016").unwrap();
        assert_eq!(s, "SELECT c FROM sbtest1 WHERE id=?");
        assert_eq!(l, vec![n("5016")]);
        let (s, l) = shape("select * from `t 1` where a in (1, -2.50) and b = 'x y' and c>=3").unwrap();
        assert_eq!(s, "select * from `t 1` where a in (?, -?) and b = ? and c>=?");
        assert_eq!(l, vec![n("1"), n("2.50"), t("x y"), n("3")]);
        let (s, l) = shape("INSERT INTO t2 (id, c) VALUES (7, '')").unwrap();
        assert_eq!(s, "INSERT INTO t2 (id, c) VALUES (?, ?)");
        assert_eq!(l, vec![n("7"), t("")]);
    }

    #[test]
    fn identifiers_with_digits_and_unusual_literals_stay() {
        let (s, l) = shape("select t1.c2 from db1.t1 where x = 1e5 and y = 0x1F and z = 9").unwrap();
        assert_eq!(s, "select t1.c2 from db1.t1 where x = 1e5 and y = 0x1F and z = ?");
        assert_eq!(l, vec![n("9")]);
        let (s, _) = shape("select `a``1` from t where `5` = 5").unwrap();
        assert_eq!(s, "select `a``1` from t where `5` = ?");
    }

    /// Puts the literals back: the statement the shape came from.
    fn unshape(text: &str, lits: &[Literal]) -> String {
        let mut out = String::new();
        let mut it = lits.iter();
        for c in text.chars() {
            match (c, it.as_slice().is_empty()) {
                ('?', false) => match it.next() {
                    Some(Literal::Number(n)) => out.push_str(n),
                    Some(Literal::Text(t)) => out.push_str(&format!("'{t}'")),
                    None => {}
                },
                _ => out.push(c),
            }
        }
        out
    }

    #[test]
    fn any_text_is_shaped_without_panicking_and_losslessly() {
        // a deterministic stream of statements from an alphabet of the characters that matter
        let alphabet: Vec<&str> =
            vec!["1", "23", ".", "'", "`", "\"", "a", "é", "€", "_", " ", "-", "e", "x", "=", "(", ")", ",", "\\"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let sql: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            if let Some((text, lits)) = shape(&sql) {
                // the placeholders are exactly the ones shape put in (the alphabet has no `?`)
                assert_eq!(text.matches('?').count(), lits.len(), "{sql:?} -> {text:?}");
                assert_eq!(unshape(&text, &lits), sql, "{sql:?} -> {text:?} {lits:?}");
            }
        }
    }

    #[test]
    fn anything_not_read_exactly_is_left_to_the_parser() {
        for sql in [
            "select 1 /* c */",
            "select 1 -- c",
            "select 1 # c",
            "select 'a\\'b'",
            "select 'it''s'",
            "select \"x\" from t where id = 1",
            "select _utf8mb4'x' from t where id = 1",
            "select X'41' from t where id = 1",
            "select * from t where id = ?",
            "select 'a' 'b' from t",
            "select 'unterminated",
            "select 1.5e3",
            "select @1 from t where id = 2",
            "select c from t",
        ] {
            assert_eq!(shape(sql), None, "{sql}");
        }
    }
}
