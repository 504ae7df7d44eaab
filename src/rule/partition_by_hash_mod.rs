//! PartitionByHashMod: Java hashCode of the value, mixed with Wang/Jenkins' 32-bit hash, absolute value,
//! then `& (count-1)` for a power-of-two count or `mod count`. Ranges → all partitions.

use super::java::string_hash_code;
use super::util::Props;
use super::{PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByHashMod {
    count: u64,
}

fn wang_jenkins(mut k: i32) -> i32 {
    k = (!k).wrapping_add(k.wrapping_shl(21));
    k ^= k >> 24;
    k = k.wrapping_add(k.wrapping_shl(3)).wrapping_add(k.wrapping_shl(8));
    k ^= k >> 14;
    k = k.wrapping_add(k.wrapping_shl(2)).wrapping_add(k.wrapping_shl(4));
    k ^= k >> 28;
    k.wrapping_add(k.wrapping_shl(31))
}

impl PartitionByHashMod {
    pub fn new(p: &Props) -> Result<Self, RuleError> {
        Ok(PartitionByHashMod { count: p.positive("count", None)? as u64 })
    }
}

impl PartitionFunction for PartitionByHashMod {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let cleaned = v.replace('\'', " ");
        let h = i64::from(wang_jenkins(string_hash_code(cleaned.trim()))).unsigned_abs();
        let p = if self.count.is_power_of_two() { h & (self.count - 1) } else { h % self.count };
        Ok(Some(p as usize))
    }

    fn partition_count(&self) -> Option<usize> {
        Some(self.count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed by running Mycat's algorithm (Java int arithmetic, BigInteger abs/mod) on a JVM.
    #[test]
    fn jvm_vectors() {
        let values = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "abc", "", "hello", "-99999999999", "日本"];
        let want3 = [2, 1, 1, 1, 2, 1, 1, 0, 0, 1, 1, 0, 1, 2, 2];
        let want4 = [3, 3, 1, 3, 0, 0, 2, 3, 3, 2, 3, 0, 2, 3, 2];
        for (count, want) in [(3u64, want3), (4, want4)] {
            let f = PartitionByHashMod { count };
            for (v, w) in values.iter().zip(want) {
                assert_eq!(f.calculate(v).unwrap(), Some(w), "count {count}, {v:?}");
            }
        }
        assert_eq!(
            PartitionByHashMod { count: 3 }.calculate("'7'").unwrap(),
            Some(1),
            "quotes become spaces, then trimmed"
        );
    }
}
