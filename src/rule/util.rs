//! Pieces several functions share: Mycat's 1024-slot segment table (PartitionUtil), property readers,
//! and exact range answers by enumerating small integer ranges.

use std::collections::BTreeMap;

use super::java::parse_long;

/// Mycat's PartitionUtil: `count[i]` partitions of `length[i]` slots each, laid out over 1024 slots.
#[derive(Debug, Clone)]
pub struct Segments {
    slot_to_partition: Vec<usize>,
    pub partitions: usize,
}

pub const SLOTS: usize = 1024;

impl Segments {
    pub fn new(counts: &[i64], lengths: &[i64]) -> Result<Segments, String> {
        if counts.len() != lengths.len() || counts.is_empty() {
            return Err("partitionCount and partitionLength need the same number of entries".into());
        }
        if counts.iter().chain(lengths).any(|v| *v <= 0) {
            return Err("partitionCount and partitionLength must be positive".into());
        }
        let total: i64 = counts.iter().zip(lengths).map(|(c, l)| c.saturating_mul(*l)).sum();
        if total != SLOTS as i64 {
            return Err(format!("sum of partitionCount × partitionLength must be 1024, is {total}"));
        }
        let mut slot_to_partition = Vec::with_capacity(SLOTS);
        let mut p = 0usize;
        for (c, l) in counts.iter().zip(lengths) {
            for _ in 0..*c {
                for _ in 0..*l {
                    slot_to_partition.push(p);
                }
                p += 1;
            }
        }
        Ok(Segments { slot_to_partition, partitions: p })
    }

    pub fn partition(&self, slot: usize) -> usize {
        self.slot_to_partition[slot & (SLOTS - 1)]
    }
}

/// Function properties with typed access and errors that name the function and property.
pub struct Props<'a> {
    pub name: &'a str,
    pub map: &'a BTreeMap<String, String>,
}

impl Props<'_> {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(|s| s.trim())
    }

    pub fn required(&self, k: &str) -> Result<&str, String> {
        self.get(k).filter(|v| !v.is_empty()).ok_or_else(|| format!("function '{}' needs property {k}", self.name))
    }

    pub fn int(&self, k: &str, default: Option<i64>) -> Result<i64, String> {
        match self.get(k) {
            Some(v) => parse_long(v).ok_or_else(|| format!("function '{}': {k}='{v}' is not an integer", self.name)),
            None => default.ok_or_else(|| format!("function '{}' needs property {k}", self.name)),
        }
    }

    pub fn int_list(&self, k: &str) -> Result<Vec<i64>, String> {
        let raw = self.required(k)?;
        raw.split(',')
            .map(|s| {
                parse_long(s.trim())
                    .ok_or_else(|| format!("function '{}': {k}='{raw}' is not a list of integers", self.name))
            })
            .collect()
    }

    pub fn positive(&self, k: &str, default: Option<i64>) -> Result<usize, String> {
        let v = self.int(k, default)?;
        if v > 0 {
            Ok(v as usize)
        } else {
            Err(format!("function '{}': {k} must be positive, is {v}", self.name))
        }
    }
}

/// Largest integer range answered by trying every value (beyond it: all partitions).
pub const ENUMERATE_LIMIT: i64 = 4096;

/// The partitions of every integer in `lo..=hi`, when both ends are integers and the span is small.
/// Values without a partition hold no rows and are skipped; a value the function rejects → `None`.
pub fn enumerate_ints(
    lo: Option<&str>,
    hi: Option<&str>,
    f: impl Fn(&str) -> Result<Option<usize>, String>,
) -> Option<Vec<usize>> {
    let (lo, hi) = (parse_long(lo?)?, parse_long(hi?)?);
    if hi < lo {
        return Some(Vec::new());
    }
    if hi.checked_sub(lo)? >= ENUMERATE_LIMIT {
        return None;
    }
    let mut out = std::collections::BTreeSet::new();
    for v in lo..=hi {
        if let Some(p) = f(&v.to_string()).ok()? {
            out.insert(p);
        }
    }
    Some(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_layouts() {
        let s = Segments::new(&[2, 1], &[256, 512]).unwrap();
        assert_eq!(
            (s.partition(0), s.partition(255), s.partition(256), s.partition(511), s.partition(512), s.partition(1023)),
            (0, 0, 1, 1, 2, 2)
        );
        assert_eq!(s.partitions, 3);
        assert!(Segments::new(&[8], &[100]).is_err());
        assert!(Segments::new(&[2, 1], &[512]).is_err());
    }

    #[test]
    fn enumeration() {
        let f = |v: &str| Ok(Some(parse_long(v).unwrap_or(0) as usize % 3));
        assert_eq!(enumerate_ints(Some("1"), Some("2"), f), Some(vec![1, 2]));
        assert_eq!(enumerate_ints(Some("5"), Some("1"), f), Some(vec![]));
        assert_eq!(enumerate_ints(Some("1"), None, f), None);
        assert_eq!(enumerate_ints(Some("0"), Some("100000"), f), None);
    }
}
