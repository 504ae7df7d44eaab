//! String comparison under the collations the proxy knows as MariaDB compares them (PAD SPACE included):
//! binary, the `_bin` and `_general_ci` ones of utf8mb4/utf8mb3, latin1's swedish_ci and bin, and their NOPAD twins.

use std::cmp::Ordering;
use std::sync::OnceLock;

use super::cell::{compare, Cell, Compare};
use super::collation_tables::{GENERAL_CI, LATIN1_SWEDISH_CI};
use crate::route::merge::ColRef;

/// The names a merge's shards are told the proxy compares itself (their WEIGHT_STRING is then not sent).
pub const KNOWN: &[&str] = &[
    "binary",
    "utf8mb4_general_ci",
    "utf8mb4_bin",
    "utf8mb4_general_nopad_ci",
    "utf8mb4_nopad_bin",
    "utf8mb3_general_ci",
    "utf8mb3_bin",
    "utf8mb3_general_nopad_ci",
    "utf8mb3_nopad_bin",
    "utf8_general_ci",
    "utf8_bin",
    "utf8_general_nopad_ci",
    "utf8_nopad_bin",
    "latin1_swedish_ci",
    "latin1_bin",
    "latin1_swedish_nopad_ci",
    "latin1_nopad_bin",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weights {
    /// Every byte weighs itself (binary, `_bin`: UTF-8's byte order is its code points' order).
    Bytes,
    /// One weight per UTF-8 character from the general_ci table.
    GeneralCi,
    /// One weight per latin1 byte.
    Latin1Swedish,
}

/// A collation the proxy compares itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collation {
    weights: Weights,
    /// PAD SPACE: the shorter string compares as if padded with spaces.
    pad: bool,
    /// Bytes per character in its WEIGHT_STRING (a space weighs 0x20 in each).
    unit: usize,
}

impl Collation {
    /// The collation of a name COLLATION() gives, when the proxy knows it.
    pub fn by_name(name: &[u8]) -> Option<Collation> {
        let name = *KNOWN.iter().find(|k| k.as_bytes().eq_ignore_ascii_case(name))?;
        let pad = !name.contains("nopad") && name != "binary";
        let weights = if name.ends_with("general_ci") || name.ends_with("general_nopad_ci") {
            Weights::GeneralCi
        } else if name.starts_with("latin1_swedish") {
            Weights::Latin1Swedish
        } else {
            Weights::Bytes
        };
        let unit = match (weights, name) {
            (Weights::GeneralCi, _) => 2,
            (_, n) if n.starts_with("utf8mb4") => 3,
            (_, n) if n.starts_with("utf8") => 2,
            _ => 1,
        };
        Some(Collation { weights, pad, unit })
    }

    /// The weight units of a WEIGHT_STRING of this collation.
    fn units<'a>(&self, w: &'a [u8]) -> impl Iterator<Item = Option<u32>> + 'a {
        w.chunks(self.unit).map(|c| Some(c.iter().fold(0u32, |n, b| n << 8 | u32::from(*b))))
    }

    /// How two WEIGHT_STRINGs of this collation compare as their values do (PAD SPACE: the shorter
    /// padded with the space's weight) — for values that arrived converted to another character set.
    pub fn cmp_weights(&self, a: &[u8], b: &[u8]) -> Ordering {
        let (mut x, mut y) = (self.units(a), self.units(b));
        loop {
            match (x.next(), y.next()) {
                (Some(p), Some(q)) if p == q => {}
                (Some(p), Some(q)) => return p.cmp(&q),
                (None, None) => return Ordering::Equal,
                (Some(p), None) => return if self.pad { against_space(p, &mut x) } else { Ordering::Greater },
                (None, Some(q)) => return if self.pad { against_space(q, &mut y).reverse() } else { Ordering::Less },
            }
        }
    }

    /// A WEIGHT_STRING without the trailing spaces PAD SPACE ignores: what groups merge by.
    pub fn weights_key(&self, w: &[u8]) -> Vec<u8> {
        let mut w = w;
        if self.pad {
            // a space weighs 0x20 in the unit's last byte, zeros before it
            let is_space =
                |u: &[u8]| u.split_last().is_some_and(|(last, rest)| *last == 0x20 && rest.iter().all(|b| *b == 0));
            while w.len() >= self.unit && w.len().is_multiple_of(self.unit) && is_space(&w[w.len() - self.unit..]) {
                w = &w[..w.len() - self.unit];
            }
        }
        w.to_vec()
    }

    /// The weights of `v`, one per character; `None` where a character is not valid UTF-8 (compared
    /// byte by byte from there, as MariaDB does).
    fn weigh<'a>(&self, v: &'a [u8]) -> Weigh<'a> {
        let table = if self.weights == Weights::GeneralCi { general_ci() } else { &[] };
        Weigh { v, pos: 0, how: self.weights, table }
    }

    /// How `a` and `b` compare.
    pub fn cmp(&self, a: &[u8], b: &[u8]) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let (mut x, mut y) = (self.weigh(a), self.weigh(b));
        loop {
            match (x.next(), y.next()) {
                (Some(Some(p)), Some(Some(q))) if p == q => {}
                (Some(Some(p)), Some(Some(q))) => return p.cmp(&q),
                (None, None) => return Ordering::Equal,
                (Some(None), _) | (_, Some(None)) => return x.rest().cmp(y.rest()),
                (Some(Some(p)), None) => {
                    return if self.pad { against_space(Some(p), &mut x) } else { Ordering::Greater };
                }
                (None, Some(Some(q))) => {
                    return if self.pad { against_space(Some(q), &mut y).reverse() } else { Ordering::Less };
                }
            }
        }
    }

    /// A key equal for exactly the values this collation calls equal (its weights, trailing spaces
    /// dropped under PAD SPACE): what groups and DISTINCT merge by. Each weight is written as the
    /// UTF-8 of that code point (a weight is one), so an ASCII value's key is its ASCII weights.
    pub fn key(&self, v: &[u8]) -> Vec<u8> {
        let mut out = match self.weights {
            Weights::Bytes => v.to_vec(),
            Weights::Latin1Swedish => v.iter().map(|b| LATIN1_SWEDISH_CI[*b as usize]).collect(),
            Weights::GeneralCi if v.is_ascii() => v.to_ascii_uppercase(),
            Weights::GeneralCi => {
                let mut out = Vec::with_capacity(v.len());
                let mut w = self.weigh(v);
                while let Some(c) = w.next() {
                    match c.and_then(char::from_u32) {
                        Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                        None => {
                            // not valid UTF-8: the rest as it is, after a byte UTF-8 never holds
                            out.push(0xFF);
                            out.extend_from_slice(w.rest());
                            return out;
                        }
                    }
                }
                out
            }
        };
        if self.pad {
            while out.last() == Some(&b' ') {
                out.pop();
            }
        }
        out
    }
}

/// How two string values compare: by their collation `c` when the shards sent no weight — the proxy
/// knows it —, by their weights otherwise (with `c`'s padding when known); NULL first.
pub fn order(a: (&Cell, &Cell), b: (&Cell, &Cell), c: Option<Collation>) -> Ordering {
    let ((av, aw), (bv, bw)) = (a, b);
    match (av, bv) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Less,
        (Some(_), None) => return Ordering::Greater,
        (Some(x), Some(y)) if aw.is_none() && bw.is_none() => {
            return c.map_or_else(|| x.cmp(y), |c| c.cmp(x, y));
        }
        _ => {}
    }
    match (aw, bw, c) {
        (Some(x), Some(y), Some(c)) => c.cmp_weights(x, y),
        _ => compare(aw, bw, Compare::Bytes),
    }
}

/// What a string value groups by: its weight when the shards sent one, else its key under its
/// collation `c`; NULL stays NULL.
pub fn group_cell(v: &Cell, w: &Cell, c: Option<Collation>) -> Cell {
    let v = v.as_ref()?;
    Some(match (w, c) {
        (Some(w), Some(coll)) => coll.weights_key(w),
        (Some(w), None) => w.clone(),
        (None, Some(coll)) => coll.key(v),
        (None, None) => v.clone(),
    })
}

/// The collation each weight column of a merge compares by: told beforehand (a lean run, whose
/// shards send neither COLLATION nor WEIGHT_STRING: `exec::learned`), or read off the first row that
/// names it — every row of a result names the same one, so it is looked up once per merge.
pub struct Collations<'a> {
    /// Per hidden weight column, the hidden column naming its collation (`MergePlan::collation_of`).
    of: &'a [Option<usize>],
    known: Vec<OnceLock<Option<Collation>>>,
    /// Where the hidden columns begin.
    visible: usize,
}

impl<'a> Collations<'a> {
    pub fn new(of: &'a [Option<usize>], visible: usize, told: Option<&[Option<Collation>]>) -> Collations<'a> {
        let known = (0..of.len())
            .map(|j| match told {
                Some(t) => OnceLock::from(t.get(j).copied().flatten()),
                None => OnceLock::new(),
            })
            .collect();
        Collations { of, known, visible }
    }

    /// The collation of weight column `weight`, as `row` (or an earlier one) names it.
    pub fn get(&self, weight: ColRef, row: &[Cell]) -> Option<Collation> {
        let ColRef::Hidden(j) = weight else { return None };
        let slot = self.known.get(j)?;
        if let Some(c) = slot.get() {
            return *c;
        }
        let name = row.get(self.visible + self.of.get(j).copied().flatten()?)?.as_deref()?;
        let c = Collation::by_name(name);
        let _ = slot.set(c);
        c
    }
}

/// The rest of a longer string against the spaces the shorter one is padded with: the first weight
/// that is not a space's decides.
fn against_space(first: Option<u32>, rest: &mut impl Iterator<Item = Option<u32>>) -> Ordering {
    let mut w = Some(first);
    while let Some(c) = w {
        match c {
            Some(0x20) => {}
            Some(c) => return c.cmp(&0x20),
            None => return Ordering::Greater,
        }
        w = rest.next();
    }
    Ordering::Equal
}

/// The general_ci weight of every BMP code point.
fn general_ci() -> &'static [u16] {
    static T: OnceLock<Vec<u16>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t: Vec<u16> = (0..=u16::MAX).collect();
        for (c, w) in GENERAL_CI {
            t[c as usize] = w;
        }
        t
    })
}

struct Weigh<'a> {
    v: &'a [u8],
    pos: usize,
    how: Weights,
    /// The general_ci weights (empty for the others).
    table: &'static [u16],
}

impl Weigh<'_> {
    /// What is left from the character that could not be read.
    fn rest(&self) -> &[u8] {
        self.v.get(self.pos..).unwrap_or(&[])
    }
}

impl Iterator for Weigh<'_> {
    /// A character's weight (`None`: not valid UTF-8 here).
    type Item = Option<u32>;

    fn next(&mut self) -> Option<Option<u32>> {
        let b = *self.v.get(self.pos)?;
        match self.how {
            Weights::Bytes => {
                self.pos += 1;
                Some(Some(u32::from(b)))
            }
            Weights::Latin1Swedish => {
                self.pos += 1;
                Some(Some(u32::from(LATIN1_SWEDISH_CI[b as usize])))
            }
            Weights::GeneralCi => {
                let weight = |c: u32| match u16::try_from(c) {
                    Ok(c) => self.table.get(c as usize).map_or(c as u32, |w| u32::from(*w)),
                    Err(_) => 0xFFFD,
                };
                if b < 0x80 {
                    self.pos += 1;
                    return Some(Some(weight(u32::from(b))));
                }
                let len = match b {
                    0xC2..=0xDF => 2,
                    0xE0..=0xEF => 3,
                    0xF0..=0xF4 => 4,
                    _ => return Some(None),
                };
                let Some(s) = self.v.get(self.pos..self.pos + len).and_then(|s| std::str::from_utf8(s).ok()) else {
                    return Some(None);
                };
                let c = s.chars().next().map_or(0xFFFD, u32::from);
                self.pos += len;
                Some(Some(weight(c)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> Collation {
        Collation::by_name(name.as_bytes()).unwrap()
    }

    /// What MariaDB 10.11 answers for these pairs (`SELECT a < b`, `a = b` under each collation).
    #[test]
    fn compares_as_mariadb() {
        let g = c("utf8mb4_general_ci");
        assert_eq!(g.cmp(b"a", b"A"), Ordering::Equal);
        assert_eq!(g.cmp(b"a\t", b"a"), Ordering::Less, "a tab sorts below the space the shorter is padded with");
        assert_eq!(g.cmp(b"a ", b"a"), Ordering::Equal);
        assert_eq!(g.cmp("é".as_bytes(), b"E"), Ordering::Equal);
        assert_eq!(
            g.cmp("😀".as_bytes(), "🙂".as_bytes()),
            Ordering::Equal,
            "every supplementary character weighs FFFD"
        );
        assert_eq!(g.cmp(b"Bob", b"alice"), Ordering::Greater);
        assert_eq!(g.key(b"ab  "), g.key(b"AB"));
        assert_ne!(g.key(b"ab\t"), g.key(b"AB"));
        let n = c("utf8mb4_general_nopad_ci");
        assert_eq!(n.cmp(b"a ", b"a"), Ordering::Greater);
        let b = c("utf8mb4_bin");
        assert_eq!(b.cmp(b"a", b"A"), Ordering::Greater);
        assert_eq!(b.cmp(b"a ", b"a"), Ordering::Equal);
        assert_eq!(b.cmp("é".as_bytes(), b"z"), Ordering::Greater);
        let bin = c("binary");
        assert_eq!(bin.cmp(b"a ", b"a"), Ordering::Greater);
        let l = c("latin1_swedish_ci");
        assert_eq!(l.cmp(&[0xE4], &[0xC4]), Ordering::Equal, "ä = Ä");
        assert_eq!(l.cmp(&[0xE4], b"z"), Ordering::Greater, "ä after z, as in Swedish");
        assert!(Collation::by_name(b"utf8mb4_unicode_ci").is_none());
        // their weight strings, as MariaDB writes them: 'a' 0041, 'a\t' 00410009, 'a ' 00410020
        assert_eq!(g.cmp_weights(&[0, 0x41, 0, 0x09], &[0, 0x41]), Ordering::Less);
        assert_eq!(g.cmp_weights(&[0, 0x41, 0, 0x20], &[0, 0x41]), Ordering::Equal);
        assert_eq!(g.weights_key(&[0, 0x41, 0, 0x20, 0, 0x20]), vec![0, 0x41]);
        assert_eq!(c("utf8mb4_bin").weights_key(&[0, 0, 0x61, 0, 0, 0x20]), vec![0, 0, 0x61]);
        assert_eq!(c("latin1_swedish_ci").cmp_weights(b"A\t", b"A"), Ordering::Less);
        assert_eq!(c("binary").cmp_weights(b"a ", b"a"), Ordering::Greater);
        // not valid UTF-8: byte by byte from there, never a panic
        assert_eq!(g.cmp(&[b'a', 0xFF], &[b'a', 0xFE]), Ordering::Greater);
        assert_eq!(g.cmp(&[0xF0, 0x9F], b"a"), Ordering::Greater);
    }
}
