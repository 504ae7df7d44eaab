//! PartitionByMurmurHash ("consistent hash"): a ring of murmur3_32 hashes of cumulative virtual-node
//! names (`SHARD-i-NODE-0-NODE-1…`, weighted), looked up with Guava's hashUnencodedChars. Ranges → all.

use std::collections::BTreeMap;

use super::java::murmur3_32_chars;
use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByMurmurHash {
    seed: u32,
    count: usize,
    ring: BTreeMap<i32, usize>,
}

impl PartitionByMurmurHash {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        let seed = p.int("seed", Some(0))? as u32;
        let count = p.positive("count", None)?;
        let times = p.positive("virtualBucketTimes", Some(160))?;
        let mut weights = vec![1usize; count];
        if let Some(file) = p.get("weightMapFile").filter(|s| !s.is_empty()) {
            let path = ctx.rules_dir.join(file);
            for e in super::mapfile::read(&path).map_err(|m| RuleError::at(&path, 0, m))? {
                let i: usize = e
                    .key
                    .parse()
                    .map_err(|_| RuleError::at(&path, e.line, format!("node '{}' is not a number", e.key)))?;
                let w: i64 = e
                    .value
                    .parse()
                    .map_err(|_| RuleError::at(&path, e.line, format!("weight '{}' is not a number", e.value)))?;
                if let Some(slot) = weights.get_mut(i) {
                    *slot = if w > 0 { w as usize } else { 1 };
                }
            }
        }
        let mut ring = BTreeMap::new();
        for (i, w) in weights.iter().enumerate() {
            let mut name = format!("SHARD-{i}");
            for n in 0..times * w {
                name.push_str(&format!("-NODE-{n}"));
                ring.insert(murmur3_32_chars(seed, &name), i);
            }
        }
        Ok(PartitionByMurmurHash { seed, count, ring })
    }
}

impl PartitionFunction for PartitionByMurmurHash {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let h = murmur3_32_chars(self.seed, v);
        Ok(self.ring.range(h..).next().or_else(|| self.ring.iter().next()).map(|(_, n)| *n))
    }

    fn partition_count(&self) -> Option<usize> {
        Some(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(count: &str) -> PartitionByMurmurHash {
        let map: BTreeMap<String, String> = [("count".to_string(), count.to_string())].into();
        let ctx = BuildCtx::for_tests();
        PartitionByMurmurHash::new(&Props { name: "murmur", map: &map }, &ctx).unwrap()
    }

    #[test]
    fn derived_vectors() {
        let two = f("2");
        let want2 = [1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1];
        for (i, w) in want2.iter().enumerate() {
            assert_eq!(two.calculate(&(i + 1).to_string()).unwrap(), Some(*w), "count 2, {}", i + 1);
        }
        for v in ["100", "10000", "abc"] {
            assert_eq!(two.calculate(v).unwrap(), Some(0), "{v}");
        }
        let three = f("3");
        let want3 = [1, 1, 1, 2, 0, 0, 2, 0, 1, 1, 2, 2, 2, 0, 1, 0, 0, 0, 1, 1];
        for (i, w) in want3.iter().enumerate() {
            assert_eq!(three.calculate(&(i + 1).to_string()).unwrap(), Some(*w), "count 3, {}", i + 1);
        }
    }
}
