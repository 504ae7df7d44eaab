//! PartitionByRangeMod ("range then mod"): `start-end=groupSize` lines; a value in range r goes to node
//! (Σ earlier group sizes) + |v| mod groupSize_r. Ranges: every node of every group the span touches.

use super::java::parse_long;
use super::mapfile;
use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByRangeMod {
    /// (start, end, first node, group size)
    groups: Vec<(i64, i64, usize, usize)>,
    default_node: Option<usize>,
}

impl PartitionByRangeMod {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        let (path, entries) = ctx.map_file(p, "partition-range-mod.txt")?;
        let mut groups = Vec::new();
        let mut first = 0usize;
        for e in entries {
            let (a, b) = mapfile::parse_range(&e.key).map_err(|m| RuleError::at(&path, e.line, m))?;
            let size = e.value.parse::<usize>().ok().filter(|s| *s > 0).ok_or_else(|| {
                RuleError::at(&path, e.line, format!("group size '{}' is not a positive number", e.value))
            })?;
            groups.push((a, b, first, size));
            first += size;
        }
        let d = p.int("defaultNode", Some(-1))?;
        Ok(PartitionByRangeMod { groups, default_node: usize::try_from(d).ok() })
    }
}

impl PartitionFunction for PartitionByRangeMod {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let n = parse_long(v)
            .ok_or_else(|| format!("columnValue:{v} Please eliminate any quote and non number within it."))?;
        Ok(self
            .groups
            .iter()
            .find(|(a, b, _, _)| *a <= n && n <= *b)
            .map(|(_, _, first, size)| first + (n.unsigned_abs() % *size as u64) as usize)
            .or(self.default_node))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        let lo = lo.map(parse_long).unwrap_or(Some(i64::MIN))?;
        let hi = hi.map(parse_long).unwrap_or(Some(i64::MAX))?;
        if hi < lo {
            return Some(Vec::new());
        }
        if self.default_node.is_some() {
            return None; // gaps between groups: not worth computing exactly
        }
        let mut out = Vec::new();
        for (a, b, first, size) in &self.groups {
            if *a <= hi && lo <= *b {
                out.extend(*first..first + size);
            }
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    fn partition_count(&self) -> Option<usize> {
        Some(self.groups.iter().map(|g| g.3).sum())
    }

    fn default_node(&self) -> Option<usize> {
        self.default_node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycat_vectors() {
        let mut groups = Vec::new();
        let mut first = 0;
        for e in mapfile::parse("0-200M=5\n200M1-400M=1\n400M1-600M=4\n600M1-800M=4\n800M1-1000M=6\n") {
            let (a, b) = mapfile::parse_range(&e.key).unwrap();
            let size: usize = e.value.parse().unwrap();
            groups.push((a, b, first, size));
            first += size;
        }
        let f = PartitionByRangeMod { groups, default_node: None };
        for (v, p) in
            [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 0), (2000000, 0), (2000001, 5), (4000000, 5), (4000001, 7)]
        {
            assert_eq!(f.calculate(&v.to_string()).unwrap(), Some(p), "{v}");
        }
        assert_eq!(f.partition_count(), Some(20));
        assert_eq!(f.calculate_range(Some("1999999"), Some("2000001")), Some(vec![0, 1, 2, 3, 4, 5]));
        assert_eq!(f.calculate("10000001").unwrap(), None);
    }
}
