//! PartitionByPrefixPattern: sum of the first `prefixLength` UTF-16 units mod `patternValue`, looked up
//! in `start-end=node` lines (K/M units allowed). Ranges → all partitions.

use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByPrefixPattern {
    pattern: i64,
    prefix: usize,
    ranges: Vec<(i64, i64, usize)>,
}

impl PartitionByPrefixPattern {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        Ok(PartitionByPrefixPattern {
            pattern: p.positive("patternValue", Some(1024))? as i64,
            prefix: p.positive("prefixLength", None)?,
            ranges: super::partition_by_pattern::plain_ranges(ctx, p, "partition_prefix_pattern.txt", true)?,
        })
    }
}

impl PartitionFunction for PartitionByPrefixPattern {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let sum: i64 = v.encode_utf16().take(self.prefix).map(i64::from).sum();
        let h = sum % self.pattern;
        Ok(self.ranges.iter().find(|(a, b, _)| *a <= h && h <= *b).map(|r| r.2))
    }

    fn partition_count(&self) -> Option<usize> {
        let mut n: Vec<usize> = self.ranges.iter().map(|r| r.2).collect();
        n.sort_unstable();
        n.dedup();
        Some(n.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycat_vectors() {
        let mut ranges: Vec<(i64, i64, usize)> = (0..8).map(|i| (i * 4 + 1, i * 4 + 4, i as usize)).collect();
        ranges.push((0, 0, 7));
        let f = PartitionByPrefixPattern { pattern: 32, prefix: 5, ranges };
        assert_eq!(f.calculate("gf89f9a").unwrap(), Some(0));
        assert_eq!(f.calculate("8df99a").unwrap(), Some(4));
        assert_eq!(f.calculate("8dhdf99a").unwrap(), Some(3));
        assert_eq!(f.calculate("").unwrap(), Some(7), "empty: sum 0");
    }
}
