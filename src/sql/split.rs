//! Splitting a multi-statement text into its statements: at `;` outside quotes, identifiers and
//! comments, so that each can be handled (session statements by the proxy, the rest routed) in turn.

/// The byte ranges of the non-empty statements of `sql` (without their `;`).
pub fn statements(sql: &str) -> Vec<(usize, usize)> {
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
            }
            _ => {}
        }
        i += 1;
    }
    push(start, b.len().max(start), &mut out);
    out
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
    }
}
