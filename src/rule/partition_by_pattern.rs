//! PartitionByPattern: digits-only values, `value mod patternValue` looked up in `start-end=node` lines
//! (plain numbers); anything else goes to `defaultNode` (0 unless set). Ranges: exact for small spans.

use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByPattern {
    pattern: i64,
    ranges: Vec<(i64, i64, usize)>,
    default_node: usize,
}

pub(super) fn plain_ranges(
    ctx: &BuildCtx,
    p: &Props,
    default_file: &str,
    units: bool,
) -> Result<Vec<(i64, i64, usize)>, RuleError> {
    let (path, entries) = ctx.map_file(p, default_file)?;
    let mut out = Vec::new();
    for e in entries {
        let (a, b) = if units {
            super::mapfile::parse_range(&e.key).map_err(|m| RuleError::at(&path, e.line, m))?
        } else {
            let (a, b) = e
                .key
                .split_once('-')
                .ok_or_else(|| RuleError::at(&path, e.line, format!("'{}' is not a start-end range", e.key)))?;
            let num = |s: &str| {
                super::java::parse_long(s.trim())
                    .ok_or_else(|| RuleError::at(&path, e.line, format!("'{s}' is not a number")))
            };
            (num(a)?, num(b)?)
        };
        let n = e
            .value
            .parse::<usize>()
            .map_err(|_| RuleError::at(&path, e.line, format!("node '{}' is not a number", e.value)))?;
        out.push((a, b, n));
    }
    Ok(out)
}

impl PartitionByPattern {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        Ok(PartitionByPattern {
            pattern: p.positive("patternValue", Some(1024))? as i64,
            ranges: plain_ranges(ctx, p, "partition-pattern.txt", false)?,
            default_node: p.int("defaultNode", Some(0))?.max(0) as usize,
        })
    }
}

impl PartitionFunction for PartitionByPattern {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        if !v.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Some(self.default_node));
        }
        let n: i64 = v.parse().map_err(|_| format!("columnValue:{v} is not a number"))?;
        let h = n % self.pattern;
        Ok(self.ranges.iter().find(|(a, b, _)| *a <= h && h <= *b).map(|r| r.2))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        if lo?.starts_with('-') {
            return None; // negative numbers are "non-numeric" here: default node
        }
        super::util::enumerate_ints(lo, hi, |v| self.calculate(v))
    }

    fn partition_count(&self) -> Option<usize> {
        let mut n: Vec<usize> = self.ranges.iter().map(|r| r.2).collect();
        n.sort_unstable();
        n.dedup();
        Some(n.len())
    }

    fn default_node(&self) -> Option<usize> {
        Some(self.default_node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycat_vectors() {
        let mut ranges: Vec<(i64, i64, usize)> = (0..8).map(|i| (i * 32 + 1, i * 32 + 32, i as usize)).collect();
        ranges.push((0, 0, 7));
        let f = PartitionByPattern { pattern: 256, ranges, default_node: 2 };
        assert_eq!(f.calculate("0").unwrap(), Some(7));
        assert_eq!(f.calculate("45a").unwrap(), Some(2));
        assert_eq!(f.calculate("33").unwrap(), Some(1));
        assert_eq!(f.calculate("289").unwrap(), Some(1), "289 mod 256 = 33");
        assert_eq!(f.calculate("-5").unwrap(), Some(2), "not digits only: default node");
        assert!(f.calculate("").is_err(), "Long.valueOf(\"\") fails in Mycat too");
    }
}
