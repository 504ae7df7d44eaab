//! Mycat map files: `start-end=node` or `key=node` lines, `#`/`//` comments, and the K/M number syntax
//! (K = ×1000, M = ×10000, trailing digits added: `200M1` = 2000001).

use std::path::Path;

/// Parses a map-file number with Mycat's K/M units.
pub fn parse_number(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || format!("'{s}' is not a number (K=1000, M=10000 units allowed)");
    let (head, unit, tail) = match s.find(['K', 'k', 'M', 'm']) {
        Some(i) => {
            let unit = if s[i..].starts_with(['K', 'k']) { 1_000i64 } else { 10_000i64 };
            (&s[..i], unit, &s[i + 1..])
        }
        None => return s.parse::<i64>().map_err(|_| bad()),
    };
    let h: i64 = head.trim().parse().map_err(|_| bad())?;
    let t: i64 = if tail.trim().is_empty() { 0 } else { tail.trim().parse().map_err(|_| bad())? };
    h.checked_mul(unit).and_then(|v| v.checked_add(t)).ok_or_else(bad)
}

/// One meaningful line: its number in the file, the key (left of `=`) and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// Reads a map file. Lines without `=` are skipped, as Mycat does.
pub fn read(path: &Path) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read map file {}: {e}", path.display()))?;
    Ok(parse(&text))
}

pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with("//") {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            Some(Entry { line: i + 1, key: k.trim().to_string(), value: v.trim().to_string() })
        })
        .collect()
}

/// Splits a `start-end` range key (negative numbers are not supported by Mycat's syntax either).
pub fn parse_range(key: &str) -> Result<(i64, i64), String> {
    let (a, b) = key.split_once('-').ok_or_else(|| format!("'{key}' is not a start-end range"))?;
    Ok((parse_number(a)?, parse_number(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycat_number_vectors() {
        for (s, v) in [
            ("2000", 2000),
            ("2M", 20000),
            ("2M1", 20001),
            ("1000M", 10_000_000),
            ("30K", 30000),
            ("30K1", 30001),
            ("30K09", 30009),
            ("200M1", 2_000_001),
        ] {
            assert_eq!(parse_number(s), Ok(v), "{s}");
        }
        assert!(parse_number("x1").is_err());
        assert!(parse_number("").is_err());
        assert!(parse_number("9999999999999999M").is_err());
    }

    #[test]
    fn comments_and_lines() {
        let e = parse("# range start-end ,data node index\n// c\n\n0-500M=0\nnoequals\n500M-1000M=1\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0], Entry { line: 4, key: "0-500M".into(), value: "0".into() });
        assert_eq!(parse_range(&e[1].key), Ok((5_000_000, 10_000_000)));
    }
}
