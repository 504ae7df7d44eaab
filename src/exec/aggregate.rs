//! Final aggregation of partial results from shards: COUNT sums counts, SUM adds (exact for DECIMAL),
//! MIN/MAX compare by value or collation weight, AVG divides the summed SUM by the summed COUNT with
//! the scale MySQL gave the AVG column. Groups are keyed by their normalised key values.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::cell::{compare, Cell, ColumnInfo, Compare, Row};
use super::collation::Collations;
use crate::error::{Error, Result};
use crate::route::merge::{AggKind, AggSpec, ColRef, DistinctFn, GroupKey};

/// An exact decimal: value × 10^-scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec {
    pub v: i128,
    pub scale: u32,
}

impl Dec {
    pub fn parse(s: &[u8], scale: u32) -> Option<Dec> {
        let s = std::str::from_utf8(s).ok()?.trim();
        let (neg, body) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (i, f) = body.split_once('.').unwrap_or((body, ""));
        if !i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit()) || f.len() > scale as usize {
            return None;
        }
        let mut digits = String::from(i);
        digits.push_str(f);
        for _ in f.len()..scale as usize {
            digits.push('0');
        }
        let v: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
        Some(Dec { v: if neg { -v } else { v }, scale })
    }

    pub fn to_text(self) -> String {
        let neg = self.v < 0;
        let mut digits = self.v.unsigned_abs().to_string();
        let scale = self.scale as usize;
        if scale > 0 {
            while digits.len() <= scale {
                digits.insert(0, '0');
            }
            digits.insert(digits.len() - scale, '.');
        }
        if neg {
            digits.insert(0, '-');
        }
        digits
    }

    /// self / n rounded half away from zero to `scale` digits.
    pub fn div(self, n: i128, scale: u32) -> Option<Dec> {
        if n == 0 {
            return None;
        }
        let shift = 10i128.checked_pow(scale.saturating_sub(self.scale))?;
        let num = self.v.checked_mul(shift)?;
        let den = if scale < self.scale { n.checked_mul(10i128.checked_pow(self.scale - scale)?)? } else { n };
        let q = num / den;
        let r = num % den;
        let q = if r.abs() * 2 >= den.abs() { q + num.signum() * den.signum() } else { q };
        Some(Dec { v: q, scale })
    }
}

fn number_text(f: f64) -> String {
    if f == f.trunc() && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Running state of one aggregate in one group.
#[derive(Debug, Clone)]
enum Acc {
    Count(i128),
    SumDec(Option<Dec>),
    SumF(Option<f64>),
    /// The current best value and its weight.
    Extreme(Cell, Cell),
    Avg {
        sum_dec: Option<Dec>,
        sum_f: Option<f64>,
        count: i128,
    },
    /// A DISTINCT aggregate: the last argument tuple seen (sorted input) or every one seen, and the
    /// count and sum of the distinct values.
    Distinct {
        last: Option<Vec<u8>>,
        seen: std::collections::HashSet<Vec<u8>, foldhash::quality::RandomState>,
        count: i128,
        sum_dec: Option<Dec>,
        sum_f: Option<f64>,
    },
    /// GROUP_CONCAT: the joined values so far (`None` before the first), the values seen (DISTINCT),
    /// how many were joined (its LIMIT), whether it was cut at `group_concat_max_len`.
    Concat {
        out: Option<Vec<u8>>,
        seen: std::collections::HashSet<Vec<u8>, foldhash::quality::RandomState>,
        joined: u64,
        cut: bool,
    },
}

/// MariaDB's default `group_concat_max_len`, when a shard's row does not say.
const GROUP_CONCAT_MAX_LEN: usize = 1 << 20;

/// The longest prefix of `v` of at most `max` bytes that does not split a UTF-8 character (any
/// prefix of bytes that are not UTF-8).
fn cut_at(v: &[u8], max: usize) -> usize {
    if v.len() <= max {
        return v.len();
    }
    if std::str::from_utf8(v).is_err() {
        return max;
    }
    let mut n = max;
    while n > 0 && (v[n] & 0xC0) == 0x80 {
        n -= 1;
    }
    n
}

/// Adds value text `v` to a running sum: exactly at scale `exact` (a DECIMAL result), else as a
/// double; `what` names the aggregate in the error.
fn add(sum_dec: &mut Option<Dec>, sum_f: &mut Option<f64>, v: &[u8], exact: Option<u32>, what: &str) -> Result<()> {
    match exact {
        Some(scale) => {
            let d = Dec::parse(v, scale)
                .ok_or_else(|| Error::unsupported(format!("{what} value shardcat cannot add exactly")))?;
            *sum_dec = Some(match sum_dec {
                Some(x) => Dec {
                    v: x.v.checked_add(d.v).ok_or_else(|| Error::unsupported(format!("{what} sum overflows")))?,
                    scale,
                },
                None => d,
            });
        }
        None => {
            let f: f64 = std::str::from_utf8(v).ok().and_then(|x| x.parse().ok()).unwrap_or(0.0);
            *sum_f = Some(sum_f.unwrap_or(0.0) + f);
        }
    }
    Ok(())
}

/// The normalised values of `keys` in `row` (numbers by value, other values by their weight), one
/// comparable byte string; `None` when one is NULL and `nulls` is false.
fn normalised(
    cols: &[ColumnInfo],
    visible: usize,
    collations: &Collations<'_>,
    keys: &[GroupKey],
    row: &Row,
    nulls: bool,
) -> Option<Vec<u8>> {
    let idx = |c: ColRef| match c {
        ColRef::Visible(i) => i,
        ColRef::Hidden(j) => visible + j,
    };
    let none: Cell = None;
    let mut k = Vec::new();
    for g in keys {
        let i = idx(g.col);
        let numeric = cols.get(i).is_some_and(ColumnInfo::is_numeric);
        // a NULL value is NULL whatever its weight says
        let value = row.get(i).unwrap_or(&none);
        let cell = if numeric {
            value.clone()
        } else {
            let c = collations.get(g.weight, row);
            super::collation::group_cell(value, row.get(idx(g.weight)).unwrap_or(&none), c)
        };
        match cell {
            None if !nulls => return None,
            None => k.push(0),
            Some(v) => {
                k.push(1);
                let v = if numeric { normalise_number(&v) } else { v };
                k.extend_from_slice(&(v.len() as u32).to_le_bytes());
                k.extend_from_slice(&v);
            }
        }
    }
    Some(k)
}

pub struct Aggregator<'a> {
    aggs: &'a [AggSpec],
    keys: &'a [GroupKey],
    cols: &'a [ColumnInfo],
    visible: usize,
    collations: &'a Collations<'a>,
    /// Keyed by values from the shards' rows: foldhash's keyed quality hasher (fast, seeded per process).
    groups: HashMap<Vec<u8>, (Row, Vec<Acc>), foldhash::quality::RandomState>,
    order: Vec<Vec<u8>>,
    bytes: usize,
    limit_bytes: usize,
    /// Rows pushed so far (what a cut GROUP_CONCAT's warning counts by).
    rows: u64,
    /// The row numbers at which a GROUP_CONCAT was cut (MariaDB's warning 1260 for each).
    pub cuts: Vec<u64>,
}

impl<'a> Aggregator<'a> {
    pub fn new(
        aggs: &'a [AggSpec],
        keys: &'a [GroupKey],
        cols: &'a [ColumnInfo],
        visible: usize,
        collations: &'a Collations<'a>,
        limit_bytes: usize,
    ) -> Self {
        Aggregator {
            aggs,
            keys,
            cols,
            visible,
            collations,
            groups: HashMap::default(),
            order: Vec::new(),
            bytes: 0,
            limit_bytes,
            rows: 0,
            cuts: Vec::new(),
        }
    }

    pub fn index(&self, c: ColRef) -> usize {
        match c {
            ColRef::Visible(i) => i,
            ColRef::Hidden(j) => self.visible + j,
        }
    }

    /// The group a row belongs to: key values normalised (numbers by value, strings by weight).
    fn key(&self, row: &Row) -> Vec<u8> {
        normalised(self.cols, self.visible, self.collations, self.keys, row, true).unwrap_or_default()
    }

    /// Fresh accumulators for a new group.
    fn start(aggs: &[AggSpec], cols: &[ColumnInfo]) -> Vec<Acc> {
        let mut out = Vec::with_capacity(aggs.len());
        for a in aggs {
            let col = cols.get(a.col);
            out.push(match &a.kind {
                AggKind::Count => Acc::Count(0),
                AggKind::Sum if col.is_some_and(ColumnInfo::is_decimal) => Acc::SumDec(None),
                AggKind::Sum => Acc::SumF(None),
                AggKind::Min { .. } | AggKind::Max { .. } => Acc::Extreme(None, None),
                AggKind::Avg { .. } => Acc::Avg { sum_dec: None, sum_f: None, count: 0 },
                AggKind::Concat { .. } => Acc::Concat { out: None, seen: Default::default(), joined: 0, cut: false },
                AggKind::Distinct { .. } => {
                    Acc::Distinct { last: None, seen: Default::default(), count: 0, sum_dec: None, sum_f: None }
                }
            });
        }
        out
    }

    pub fn push(&mut self, row: Row) -> Result<()> {
        let key = self.key(&row);
        let accs = match self.groups.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => &mut e.into_mut().1,
            std::collections::hash_map::Entry::Vacant(e) => {
                self.bytes += e.key().len() + row.iter().map(|c| c.as_ref().map_or(1, Vec::len) + 24).sum::<usize>();
                if self.bytes > self.limit_bytes {
                    return Err(Error::MemoryLimit {
                        what: "the cross-shard GROUP BY".into(),
                        limit: self.limit_bytes,
                    });
                }
                self.order.push(e.key().clone());
                let accs = Self::start(self.aggs, self.cols);
                &mut e.insert((row.clone(), accs)).1
            }
        };
        let visible = self.visible;
        for (a, acc) in self.aggs.iter().zip(accs.iter_mut()) {
            let idx = |c: ColRef| match c {
                ColRef::Visible(i) => i,
                ColRef::Hidden(j) => visible + j,
            };
            let cell = row.get(a.col).cloned().flatten();
            let col = self.cols.get(a.col);
            match (acc, &a.kind) {
                (Acc::Count(n), _) => {
                    if let Some(v) = cell {
                        *n += std::str::from_utf8(&v).ok().and_then(|s| s.parse::<i128>().ok()).unwrap_or(0);
                    }
                }
                (Acc::SumDec(s), _) => {
                    if let Some(v) = cell {
                        let scale = u32::from(col.map_or(0, |c| c.decimals));
                        let d = Dec::parse(&v, scale)
                            .ok_or_else(|| Error::unsupported("a SUM value shardcat cannot add exactly"))?;
                        *s = Some(match s {
                            Some(x) => Dec {
                                v: x.v.checked_add(d.v).ok_or_else(|| Error::unsupported("SUM overflow"))?,
                                scale,
                            },
                            None => d,
                        });
                    }
                }
                (Acc::SumF(s), _) => {
                    if let Some(v) = cell {
                        let f: f64 = std::str::from_utf8(&v).ok().and_then(|x| x.parse().ok()).unwrap_or(0.0);
                        *s = Some(s.unwrap_or(0.0) + f);
                    }
                }
                (Acc::Extreme(best, best_w), AggKind::Min { weight } | AggKind::Max { weight }) => {
                    let is_min = matches!(a.kind, AggKind::Min { .. });
                    if cell.is_none() {
                        continue;
                    }
                    let w = row.get(idx(*weight)).cloned().flatten();
                    let how = col.map(Compare::of).unwrap_or(Compare::Bytes);
                    let ord = if best.is_none() {
                        Ordering::Less
                    } else if how == Compare::Numeric {
                        compare(&cell, best, how)
                    } else {
                        let c = self.collations.get(*weight, &row);
                        super::collation::order((&cell, &w), (best, best_w), c)
                    };
                    let better = if is_min { ord == Ordering::Less } else { ord == Ordering::Greater };
                    if better || best.is_none() {
                        *best = cell;
                        *best_w = w;
                    }
                }
                (Acc::Avg { sum_dec, sum_f, count }, AggKind::Avg { sum, count: count_col }) => {
                    let s = row.get(idx(*sum)).cloned().flatten();
                    let n = row.get(idx(*count_col)).cloned().flatten();
                    *count +=
                        n.and_then(|v| std::str::from_utf8(&v).ok().and_then(|x| x.parse::<i128>().ok())).unwrap_or(0);
                    if let Some(v) = s {
                        let sum_info = self.cols.get(idx(*sum));
                        let exact = sum_info.filter(|c| c.is_decimal()).map(|c| u32::from(c.decimals));
                        add(sum_dec, sum_f, &v, exact, "AVG")?;
                    }
                }
                (Acc::Distinct { last, seen, count, sum_dec, sum_f }, AggKind::Distinct { func, args, sorted }) => {
                    let Some(k) = normalised(self.cols, visible, self.collations, args, &row, false) else { continue };
                    if *sorted {
                        if last.as_ref() == Some(&k) {
                            continue;
                        }
                        *last = Some(k);
                    } else {
                        if seen.contains(&k) {
                            continue;
                        }
                        self.bytes += k.len() + 32;
                        if self.bytes > self.limit_bytes {
                            return Err(Error::MemoryLimit {
                                what: "the cross-shard DISTINCT aggregate".into(),
                                limit: self.limit_bytes,
                            });
                        }
                        seen.insert(k);
                    }
                    *count += 1;
                    if *func == DistinctFn::Count {
                        continue;
                    }
                    let Some(arg) = args.first() else { continue };
                    let Some(v) = row.get(idx(arg.col)).cloned().flatten() else { continue };
                    let v = as_number(&v, self.cols.get(idx(arg.col)).map_or(0xFD, |c| c.ty));
                    // SUM adds at its own scale; AVG adds at the argument's and divides at its own
                    let exact = col.filter(|c| c.is_decimal()).map(|c| match func {
                        DistinctFn::Sum => u32::from(c.decimals),
                        _ => u32::from(self.cols.get(idx(arg.col)).map_or(0, |a| a.decimals)),
                    });
                    add(sum_dec, sum_f, &v, exact, "a DISTINCT")?;
                }
                (
                    Acc::Concat { out, seen, joined, cut },
                    AggKind::Concat { distinct, args, times, sep, max_len, limit },
                ) => {
                    if *cut || limit.is_some_and(|l| *joined >= l) {
                        continue;
                    }
                    // the arguments' values one after the other; a NULL one leaves the row out
                    let mut value = Vec::new();
                    let mut null = false;
                    for a in args {
                        match row.get(idx(a.col)).and_then(|c| c.as_deref()) {
                            Some(v) => value.extend_from_slice(v),
                            None => null = true,
                        }
                    }
                    if null {
                        continue;
                    }
                    if *distinct {
                        let Some(k) = normalised(self.cols, visible, self.collations, args, &row, false) else {
                            continue;
                        };
                        if seen.contains(&k) {
                            continue;
                        }
                        self.bytes += k.len() + 32;
                        seen.insert(k);
                    }
                    let n: u64 = match times {
                        Some(t) => row
                            .get(idx(*t))
                            .and_then(|c| c.as_deref())
                            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                            .unwrap_or(1),
                        None => 1,
                    };
                    let max: usize = row
                        .get(idx(*max_len))
                        .and_then(|c| c.as_deref())
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                        .unwrap_or(GROUP_CONCAT_MAX_LEN);
                    let sep: &[u8] = match sep {
                        Some(c) => row.get(idx(*c)).and_then(|c| c.as_deref()).unwrap_or_default(),
                        None => b",",
                    };
                    let o = out.get_or_insert_with(Vec::new);
                    let before = o.len();
                    for i in 0..n {
                        if limit.is_some_and(|l| *joined >= l) {
                            break;
                        }
                        if *joined > 0 {
                            o.extend_from_slice(sep);
                        }
                        o.extend_from_slice(&value);
                        *joined += 1;
                        if o.len() > max {
                            let keep = cut_at(o, max);
                            o.truncate(keep);
                            *cut = true;
                            self.cuts.push(self.rows + i + 1);
                            break;
                        }
                        if value.is_empty() && sep.is_empty() {
                            break; // nothing more to add, however often it repeats
                        }
                    }
                    self.bytes += o.len() - before;
                    if self.bytes > self.limit_bytes {
                        return Err(Error::MemoryLimit {
                            what: "the cross-shard GROUP_CONCAT".into(),
                            limit: self.limit_bytes,
                        });
                    }
                }
                _ => {}
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The groups' rows, in first-seen order, aggregates replaced by their final values.
    pub fn finish(mut self) -> Vec<Row> {
        let mut out = Vec::with_capacity(self.order.len());
        if self.order.is_empty() && self.keys.is_empty() {
            return out; // no shard answered a row at all
        }
        for k in std::mem::take(&mut self.order) {
            let Some((mut row, accs)) = self.groups.remove(&k) else { continue };
            for (a, acc) in self.aggs.iter().zip(accs) {
                let col = self.cols.get(a.col);
                let v: Cell = match acc {
                    Acc::Count(n) => Some(n.to_string().into_bytes()),
                    Acc::SumDec(s) => s.map(|d| d.to_text().into_bytes()),
                    Acc::SumF(s) => s.map(|f| number_text(f).into_bytes()),
                    Acc::Extreme(best, w) => {
                        if let AggKind::Min { weight } | AggKind::Max { weight } = a.kind {
                            let wi = self.index(weight);
                            if let Some(slot) = row.get_mut(wi) {
                                *slot = w;
                            }
                        }
                        best
                    }
                    Acc::Concat { out, .. } => out,
                    Acc::Distinct { count, sum_dec, sum_f, .. } => {
                        let func = match &a.kind {
                            AggKind::Distinct { func, .. } => *func,
                            _ => DistinctFn::Count,
                        };
                        let scale = u32::from(col.map_or(4, |c| c.decimals));
                        match func {
                            DistinctFn::Count => Some(count.to_string().into_bytes()),
                            _ if count == 0 => None,
                            DistinctFn::Sum => match (sum_dec, sum_f) {
                                (Some(d), _) => Some(d.to_text().into_bytes()),
                                (None, f) => f.map(|f| number_text(f).into_bytes()),
                            },
                            DistinctFn::Avg => match (sum_dec, sum_f) {
                                (Some(d), _) => d.div(count, scale).map(|x| x.to_text().into_bytes()),
                                (None, Some(f)) => Some(number_text(f / count as f64).into_bytes()),
                                (None, None) => None,
                            },
                        }
                    }
                    Acc::Avg { sum_dec, sum_f, count } => {
                        let scale = u32::from(col.map_or(4, |c| c.decimals));
                        match (sum_dec, sum_f) {
                            _ if count == 0 => None,
                            (Some(d), _) => d.div(count, scale).map(|x| x.to_text().into_bytes()),
                            (None, Some(f)) => Some(number_text(f / count as f64).into_bytes()),
                            (None, None) => None,
                        }
                    }
                };
                if let Some(slot) = row.get_mut(a.col) {
                    *slot = v;
                }
            }
            out.push(row);
        }
        out
    }
}

/// A value's text as the number MariaDB adds for it: a temporal value as its digits
/// (`2024-01-02` → `20240102`, `10:20:30` → `102030`), any other value as it is.
fn as_number(v: &[u8], ty: u8) -> Vec<u8> {
    // DATE, DATETIME, TIMESTAMP, TIME and their older forms
    if matches!(ty, 0x07 | 0x0A | 0x0B | 0x0C | 0x0E | 0x11 | 0x12 | 0x13) {
        let mut out = Vec::with_capacity(v.len());
        for (i, &b) in v.iter().enumerate() {
            if b.is_ascii_digit() || b == b'.' || (i == 0 && b == b'-') {
                out.push(b);
            }
        }
        return out;
    }
    v.to_vec()
}

/// A number's text without insignificant zeros (`1.50` and `1.5` group together).
fn normalise_number(v: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(v);
    let s = s.trim();
    if s.contains(['e', 'E']) {
        return s.parse::<f64>().map(|f| f.to_string().into_bytes()).unwrap_or_else(|_| v.to_vec());
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (i, f) = body.split_once('.').unwrap_or((body, ""));
    let i = i.trim_start_matches('0');
    let f = f.trim_end_matches('0');
    let mut out = String::new();
    if neg && !(i.is_empty() && f.is_empty()) {
        out.push('-');
    }
    out.push_str(if i.is_empty() { "0" } else { i });
    if !f.is_empty() {
        out.push('.');
        out.push_str(f);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        let a = Dec::parse(b"12.5", 2).unwrap();
        assert_eq!(a, Dec { v: 1250, scale: 2 });
        assert_eq!(a.to_text(), "12.50");
        assert_eq!(Dec { v: -5, scale: 3 }.to_text(), "-0.005");
        assert_eq!(Dec { v: 1000, scale: 0 }.div(3, 4).unwrap().to_text(), "333.3333");
        assert_eq!(Dec { v: 2, scale: 0 }.div(3, 4).unwrap().to_text(), "0.6667");
        assert_eq!(Dec { v: -2, scale: 0 }.div(3, 4).unwrap().to_text(), "-0.6667");
        assert_eq!(Dec { v: 1250, scale: 2 }.div(2, 6).unwrap().to_text(), "6.250000");
        assert!(Dec::parse(b"1.234", 2).is_none());
        assert_eq!(normalise_number(b"001.500"), b"1.5");
        assert_eq!(normalise_number(b"-0.0"), b"0");
        assert_eq!(as_number(b"2024-01-02", 0x0A), b"20240102");
        assert_eq!(as_number(b"2024-01-02 03:04:05.5", 0x0C), b"20240102030405.5");
        assert_eq!(as_number(b"-01:02:03", 0x0B), b"-010203");
        assert_eq!(as_number(b"-1.5", 0xF6), b"-1.5");
    }

    fn col(ty: u8, decimals: u8) -> ColumnInfo {
        ColumnInfo { name: String::new(), ty, flags: 0, decimals, charset: 63 }
    }

    #[test]
    fn groups_merge_partials() {
        // columns: g (varchar), COUNT(*), SUM(dec), AVG(int) | hidden: weight(g), sum, count
        let cols =
            vec![col(0xFD, 0), col(0x08, 0), col(0xF6, 2), col(0xF6, 4), col(0xFD, 0), col(0xF6, 0), col(0x08, 0)];
        let aggs = vec![
            AggSpec { col: 1, kind: AggKind::Count },
            AggSpec { col: 2, kind: AggKind::Sum },
            AggSpec { col: 3, kind: AggKind::Avg { sum: ColRef::Hidden(1), count: ColRef::Hidden(2) } },
        ];
        let keys = vec![GroupKey { col: ColRef::Visible(0), weight: ColRef::Hidden(0) }];
        let none = Collations::new(&[], 4, None);
        let mut a = Aggregator::new(&aggs, &keys, &cols, 4, &none, 1 << 20);
        let r = |g: &str, w: &str, c: &str, s: Option<&str>, avg: &str, sum: &str, n: &str| -> Row {
            vec![
                Some(g.into()),
                Some(c.into()),
                s.map(|x| x.into()),
                Some(avg.into()),
                Some(w.into()),
                Some(sum.into()),
                Some(n.into()),
            ]
        };
        a.push(r("a", "A", "2", Some("1.50"), "x", "3", "2")).unwrap();
        a.push(r("A", "A", "1", None, "x", "4", "1")).unwrap();
        a.push(r("b", "B", "1", Some("2.25"), "x", "5", "1")).unwrap();
        let out = a.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0][..4].to_vec(),
            vec![Some(b"a".to_vec()), Some(b"3".to_vec()), Some(b"1.50".to_vec()), Some(b"2.3333".to_vec())]
        );
        assert_eq!(out[1][2], Some(b"2.25".to_vec()));
    }
}
