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
    /// `extended`: the connection negotiated MariaDB's extended metadata (one more field after
    /// the original column name).
    pub fn parse(p: &[u8], extended: bool) -> Option<ColumnInfo> {
        let mut pos = 0;
        for _ in 0..4 {
            packets::read_lenenc_str(p, &mut pos)?;
        }
        let name = String::from_utf8_lossy(packets::read_lenenc_str(p, &mut pos)??).into_owned();
        packets::read_lenenc_str(p, &mut pos)?;
        if extended {
            packets::read_lenenc_str(p, &mut pos)?;
        }
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

/// Column flag: the integer is unsigned.
const UNSIGNED: u16 = 0x0020;

fn push_datetime(buf: &mut BytesMut, text: &str) -> Option<()> {
    // YYYY-MM-DD[ HH:MM:SS[.ffffff]]
    let (date, time) = text.split_once(' ').unwrap_or((text, ""));
    let mut d = date.split('-');
    let (y, mo, da): (u16, u8, u8) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    if time.is_empty() {
        if y == 0 && mo == 0 && da == 0 {
            buf.put_u8(0);
        } else {
            buf.put_u8(4);
            buf.put_u16_le(y);
            buf.put_u8(mo);
            buf.put_u8(da);
        }
        return Some(());
    }
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':');
    let (h, mi, s): (u8, u8, u8) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let micro: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<6}")[..6].parse().ok()? };
    buf.put_u8(if micro > 0 { 11 } else { 7 });
    buf.put_u16_le(y);
    buf.put_u8(mo);
    buf.put_u8(da);
    buf.put_u8(h);
    buf.put_u8(mi);
    buf.put_u8(s);
    if micro > 0 {
        buf.put_u32_le(micro);
    }
    Some(())
}

fn push_time(buf: &mut BytesMut, text: &str) -> Option<()> {
    // [-]HHH:MM:SS[.ffffff]
    let (neg, body) = match text.strip_prefix('-') {
        Some(r) => (1u8, r),
        None => (0u8, text),
    };
    let (hms, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut t = hms.split(':');
    let (h, mi, s): (u32, u8, u8) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let micro: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<6}")[..6].parse().ok()? };
    buf.put_u8(if micro > 0 { 12 } else { 8 });
    buf.put_u8(neg);
    buf.put_u32_le(h / 24);
    buf.put_u8((h % 24) as u8);
    buf.put_u8(mi);
    buf.put_u8(s);
    if micro > 0 {
        buf.put_u32_le(micro);
    }
    Some(())
}

/// Encodes the first `n` cells of a text row as a binary-protocol row (COM_STMT_EXECUTE results).
pub fn encode_binary_row(buf: &mut BytesMut, row: &[Cell], cols: &[ColumnInfo], n: usize) -> Option<()> {
    buf.put_u8(0x00);
    let start = buf.len();
    buf.put_bytes(0, (n + 7 + 2) / 8);
    for (i, cell) in row.iter().take(n).enumerate() {
        let Some(v) = cell else {
            let bit = i + 2;
            buf[start + bit / 8] |= 1 << (bit % 8);
            continue;
        };
        let c = cols.get(i)?;
        let s = std::str::from_utf8(v).ok();
        let unsigned = c.flags & UNSIGNED != 0;
        match c.ty {
            0x01 => {
                let s = s?;
                buf.put_u8(if unsigned { s.parse::<u8>().ok()? } else { s.parse::<i8>().ok()? as u8 });
            }
            0x02 | 0x0D => {
                let s = s?;
                buf.put_u16_le(if unsigned { s.parse::<u16>().ok()? } else { s.parse::<i16>().ok()? as u16 });
            }
            0x03 | 0x09 => {
                let s = s?;
                buf.put_u32_le(if unsigned { s.parse::<u32>().ok()? } else { s.parse::<i32>().ok()? as u32 });
            }
            0x08 => {
                let s = s?;
                buf.put_u64_le(if unsigned { s.parse::<u64>().ok()? } else { s.parse::<i64>().ok()? as u64 });
            }
            0x04 => buf.put_f32_le(s?.parse().ok()?),
            0x05 => buf.put_f64_le(s?.parse().ok()?),
            0x07 | 0x0A | 0x0C => push_datetime(buf, s?)?,
            0x0B => push_time(buf, s?)?,
            _ => packets::put_lenenc_str(buf, v),
        }
    }
    Some(())
}

#[cfg(test)]
mod binary_tests {
    use super::*;

    fn col(ty: u8, flags: u16) -> ColumnInfo {
        ColumnInfo { name: String::new(), ty, flags, decimals: 0, charset: 63 }
    }

    #[test]
    fn binary_rows() {
        let cols = [col(0x08, 0), col(0xFD, 0), col(0x0C, 0), col(0x05, 0), col(0x0A, 0)];
        let row: Row = vec![
            Some(b"-2".to_vec()),
            None,
            Some(b"2024-01-02 03:04:05".to_vec()),
            Some(b"1.5".to_vec()),
            Some(b"2024-02-29".to_vec()),
        ];
        let mut b = BytesMut::new();
        encode_binary_row(&mut b, &row, &cols, 5).unwrap();
        let mut want = vec![0x00, 0b0000_1000];
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.extend_from_slice(&[7, 0xE8, 0x07, 1, 2, 3, 4, 5]);
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[4, 0xE8, 0x07, 2, 29]);
        assert_eq!(b.to_vec(), want);
        assert!(encode_binary_row(&mut BytesMut::new(), &[Some(b"x".to_vec())], &[col(0x03, 0)], 1).is_none());
    }
}
