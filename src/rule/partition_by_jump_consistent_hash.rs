//! PartitionByJumpConsistentHash: Lamping/Veach jump hash of the value's Java hashCode over
//! `totalBuckets`. Ranges → all partitions.

use super::java::string_hash_code;
use super::util::Props;
use super::{PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByJumpConsistentHash {
    buckets: i64,
}

pub fn jump(key: i64, buckets: i64) -> i64 {
    let mut k = key as u64;
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets {
        b = j;
        k = k.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = (((b + 1) as f64 * 2_147_483_648.0) / (((k >> 33) + 1) as f64)) as i64;
    }
    b
}

impl PartitionByJumpConsistentHash {
    pub fn new(p: &Props) -> Result<Self, RuleError> {
        Ok(PartitionByJumpConsistentHash { buckets: p.positive("totalBuckets", Some(3))? as i64 })
    }
}

impl PartitionFunction for PartitionByJumpConsistentHash {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        Ok(Some(jump(i64::from(string_hash_code(v)), self.buckets) as usize))
    }

    fn partition_count(&self) -> Option<usize> {
        Some(self.buckets as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycat_vectors() {
        let f = PartitionByJumpConsistentHash { buckets: 3 };
        let want = [1, 2, 1, 0, 0, 2, 1, 1, 1, 0, 2, 1, 1, 2, 1, 0, 0, 2, 1, 0, 0, 0, 2, 1];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(f.calculate(&(i + 1).to_string()).unwrap(), Some(*w), "{}", i + 1);
        }
    }
}
