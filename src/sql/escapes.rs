//! NO_BACKSLASH_ESCAPES: under it a backslash in a string literal is an ordinary character, while the
//! proxy's scanners and parser read backslash escapes. A session in that mode has its text *masked*
//! for reading — each backslash inside a literal replaced by a 0x01 byte, same length, so every span
//! still points into the client's text — and what reaches a backend is unmasked again.

use std::borrow::Cow;

/// The byte that stands for a literal backslash in a masked text.
pub const MASK: char = '\u{1}';

/// `sql` as the proxy reads it under NO_BACKSLASH_ESCAPES; `None` when the text already holds the
/// mask byte (it could not be told apart: the caller refuses what it would have to rewrite).
pub fn mask(sql: &str) -> Option<Cow<'_, str>> {
    if !sql.contains('\\') {
        return Some(Cow::Borrowed(sql));
    }
    if sql.contains(MASK) {
        return None;
    }
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None; // a doubled quote closes and reopens: the same text
                    out.push(c);
                } else if c == '\\' && q != '`' {
                    out.push(MASK);
                } else {
                    out.push(c);
                }
            }
            None => {
                if matches!(c, '\'' | '"' | '`') {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    Some(Cow::Owned(out))
}

/// A masked text or literal as it really is.
pub fn unmask(s: &str) -> Cow<'_, str> {
    if s.contains(MASK) {
        Cow::Owned(s.replace(MASK, "\\"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_backslashes_inside_literals_only() {
        let sql = r"SELECT 'C:\', `a\b`, x FROM t WHERE v = 'it''s \n' AND w = a\b";
        let m = mask(sql).unwrap();
        assert_eq!(m.len(), sql.len(), "spans stay valid");
        assert_eq!(m, "SELECT 'C:\u{1}', `a\\b`, x FROM t WHERE v = 'it''s \u{1}n' AND w = a\\b");
        assert_eq!(unmask(&m), sql);
        assert_eq!(mask("SELECT 1").unwrap(), "SELECT 1");
        assert!(mask("SELECT '\u{1}\\'").is_none());
    }
}
