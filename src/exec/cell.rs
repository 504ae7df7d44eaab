//! Values inside text-protocol rows, for the operators that must look at them: decoding a row into
//! cells, encoding it back, reading a column definition's type, and comparing two cells the way MySQL
//! orders them (numbers numerically, strings by their collation weights, NULL first).

use bytes::{BufMut, BytesMut};
use std::cmp::Ordering;

use crate::proto::packets;

/// One cell of a text row; `None` is SQL NULL.
pub type Cell = Option<Vec<u8>>;
pub type Row = Vec<Cell>;

/// Decodes a text-protocol row of `n` cells.
pub fn decode_row(p: &[u8], n: usize) -> Option<Row> {
    let mut pos = 0;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(packets::read_lenenc_str(p, &mut pos)?.map(<[u8]>::to_vec));
    }
    Some(out)
}

/// Encodes the first `n` cells of a row as a text-protocol row packet.
pub fn encode_row(buf: &mut BytesMut, row: &[Cell], n: usize) {
    for c in row.iter().take(n) {
        match c {
            Some(v) => packets::put_lenenc_str(buf, v),
            None => buf.put_u8(0xFB),
        }
    }
}

/// The parts of a column definition the operators need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: u8,
    pub flags: u16,
    pub decimals: u8,
    pub charset: u16,
}

impl ColumnInfo {
    pub fn parse(p: &[u8]) -> Option<ColumnInfo> {
        let mut pos = 0;
        for _ in 0..4 {
            packets::read_lenenc_str(p, &mut pos)?;
        }
        let name = String::from_utf8_lossy(packets::read_lenenc_str(p, &mut pos)??).into_owned();
        packets::read_lenenc_str(p, &mut pos)?;
        packets::read_lenenc_int(p, &mut pos)?;
        let b = p.get(pos..pos + 10)?;
        Some(ColumnInfo {
            name,
            charset: u16::from_le_bytes([b[0], b[1]]),
            ty: b[6],
            flags: u16::from_le_bytes([b[7], b[8]]),
            decimals: b[9],
        })
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self.ty, 0x00 | 0x01 | 0x02 | 0x03 | 0x04 | 0x05 | 0x08 | 0x09 | 0x0D | 0xF6)
    }

    pub fn is_decimal(&self) -> bool {
        matches!(self.ty, 0x00 | 0xF6)
    }

    pub fn is_float(&self) -> bool {
        matches!(self.ty, 0x04 | 0x05)
    }
}

/// How two cells of a column compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Numbers by value.
    Numeric,
    /// Bytes as they are (binary strings, dates in canonical text, collation weight strings).
    Bytes,
}

impl Compare {
    pub fn of(c: &ColumnInfo) -> Compare {
        if c.is_numeric() {
            Compare::Numeric
        } else {
            Compare::Bytes
        }
    }
}

/// Orders two cells: NULL first, then by `how`.
pub fn compare(a: &Cell, b: &Cell, how: Compare) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => match how {
            Compare::Bytes => x.cmp(y),
            Compare::Numeric => compare_numbers(x, y),
        },
    }
}

/// Compares two decimal numbers written as text, exactly (any length); exponent forms via f64.
pub fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let (sa, sb) = (std::str::from_utf8(a).unwrap_or("0").trim(), std::str::from_utf8(b).unwrap_or("0").trim());
    if sa.contains(['e', 'E']) || sb.contains(['e', 'E']) {
        let (x, y) = (sa.parse::<f64>().unwrap_or(0.0), sb.parse::<f64>().unwrap_or(0.0));
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    let split = |s: &str| -> (bool, String, String) {
        let (neg, body) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (i, f) = body.split_once('.').unwrap_or((body, ""));
        let i = i.trim_start_matches('0').to_string();
        let f = f.trim_end_matches('0').to_string();
        let zero = i.is_empty() && f.is_empty();
        (neg && !zero, i, f)
    };
    let (na, ia, fa) = split(sa);
    let (nb, ib, fb) = split(sb);
    let magnitude = ia.len().cmp(&ib.len()).then_with(|| ia.cmp(&ib)).then_with(|| fa.cmp(&fb));
    match (na, nb) {
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value() {
        let c = |a: &str, b: &str| compare_numbers(a.as_bytes(), b.as_bytes());
        assert_eq!(c("9", "10"), Ordering::Less);
        assert_eq!(c("-9", "-10"), Ordering::Greater);
        assert_eq!(c("1.50", "1.5"), Ordering::Equal);
        assert_eq!(c("-0.00", "0"), Ordering::Equal);
        assert_eq!(c("0.001", "0.01"), Ordering::Less);
        assert_eq!(c("123456789012345678901234567890", "123456789012345678901234567891"), Ordering::Less);
        assert_eq!(c("1e3", "999"), Ordering::Greater);
        assert_eq!(c("-1", "0.5"), Ordering::Less);
    }

    #[test]
    fn rows_round_trip_and_nulls_sort_first() {
        let row: Row = vec![Some(b"a".to_vec()), None, Some(vec![])];
        let mut b = BytesMut::new();
        encode_row(&mut b, &row, 3);
        assert_eq!(decode_row(&b, 3).unwrap(), row);
        assert_eq!(compare(&None, &Some(b"0".to_vec()), Compare::Numeric), Ordering::Less);
    }
}
