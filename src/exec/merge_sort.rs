//! The k-way merge step: among the head rows of the shards' sorted streams, which comes next. The
//! merge holds one row per shard, so an ordered scan of any size stays in bounded memory.

use std::cmp::Ordering;

use super::cell::{compare, Cell, ColumnInfo, Compare, Row};
use super::collation::Collations;
use crate::route::merge::{ColRef, SortKey};

/// How rows compare under ORDER BY keys: numbers by value, strings by their collation weight column.
pub struct Keys<'a> {
    pub keys: &'a [SortKey],
    pub cols: &'a [ColumnInfo],
    /// Number of client columns (hidden helper columns follow).
    pub visible: usize,
    /// The collation each weight column compares by.
    pub collations: &'a Collations<'a>,
}

/// A row's value and weight cells for a string key (missing ones NULL).
fn side<'r>(r: &'r Row, value: usize, weight: usize, none: &'r Cell) -> (&'r Cell, &'r Cell) {
    let get = |i: usize| r.get(i).unwrap_or(none);
    (get(value), get(weight))
}

impl Keys<'_> {
    fn idx(&self, c: ColRef) -> usize {
        match c {
            ColRef::Visible(i) => i,
            ColRef::Hidden(j) => self.visible + j,
        }
    }

    pub fn cmp(&self, a: &Row, b: &Row) -> Ordering {
        for k in self.keys {
            let i = self.idx(k.col);
            let numeric = self.cols.get(i).is_some_and(ColumnInfo::is_numeric);
            let none = None;
            let o = if numeric {
                compare(a.get(i).unwrap_or(&none), b.get(i).unwrap_or(&none), Compare::Numeric)
            } else {
                let w = self.idx(k.weight);
                let c = self.collations.get(k.weight, a).or_else(|| self.collations.get(k.weight, b));
                super::collation::order(side(a, i, w, &none), side(b, i, w, &none), c)
            };
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// The shard whose head row comes next (the first one among equals, so ties keep shard order).
    pub fn next(&self, heads: &[Option<Row>]) -> Option<usize> {
        let mut best: Option<(usize, &Row)> = None;
        for (i, h) in heads.iter().enumerate() {
            if let Some(r) = h {
                match best {
                    Some((_, b)) if self.cmp(r, b) != Ordering::Less => {}
                    _ => best = Some((i, r)),
                }
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: u8) -> ColumnInfo {
        ColumnInfo { name: String::new(), ty, flags: 0, decimals: 0, charset: 45 }
    }

    fn row(n: &str, s: &str) -> Option<Row> {
        Some(vec![Some(n.as_bytes().to_vec()), Some(s.as_bytes().to_vec()), Some(s.to_uppercase().into_bytes())])
    }

    /// Merging in-memory sorted streams gives one sorted stream.
    #[test]
    fn merges_sorted_streams() {
        let cols = [col(0x08), col(0xFD), col(0xFD)];
        let keys = [
            SortKey { col: ColRef::Visible(1), weight: ColRef::Hidden(0), desc: false },
            SortKey { col: ColRef::Visible(0), weight: ColRef::Visible(0), desc: true },
        ];
        let none = Collations::new(&[], 2, None);
        let k = Keys { keys: &keys, cols: &cols, visible: 2, collations: &none };
        let mut streams: Vec<std::vec::IntoIter<Option<Row>>> = vec![
            vec![row("9", "a"), row("2", "B"), row("10", "c")].into_iter(),
            vec![row("3", "A"), row("1", "b"), row("4", "d")].into_iter(),
            vec![].into_iter(),
        ];
        let mut heads: Vec<Option<Row>> = streams.iter_mut().map(|s| s.next().flatten()).collect();
        let mut out = Vec::new();
        while let Some(i) = k.next(&heads) {
            let r = heads[i].take().unwrap();
            out.push(format!(
                "{}{}",
                String::from_utf8_lossy(r[1].as_ref().unwrap()),
                String::from_utf8_lossy(r[0].as_ref().unwrap())
            ));
            heads[i] = streams[i].next().flatten();
        }
        // by name case-insensitively, then id descending (numerically: 10 > 4)
        assert_eq!(out, vec!["a9", "A3", "B2", "b1", "c10", "d4"]);
    }
}
