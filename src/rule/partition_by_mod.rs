//! PartitionByMod: |value| mod count for integers of any size; other values by |String.hashCode()|
//! mod count (Mycat 1.6.7.6). Ranges: exact for spans shorter than `count`, else all.

use super::java::string_hash_code;
use super::util::Props;
use super::{PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByMod {
    count: u64,
}

/// |v| mod m for a decimal integer of any length (BigInteger semantics); `None` if not an integer.
fn big_mod(v: &str, m: u64) -> Option<u64> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u128, |r, d| (r * 10 + u128::from(d - b'0')) % u128::from(m)) as u64)
}

impl PartitionByMod {
    pub fn new(p: &Props) -> Result<Self, RuleError> {
        Ok(PartitionByMod { count: p.positive("count", None)? as u64 })
    }
}

impl PartitionFunction for PartitionByMod {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let r = match big_mod(v, self.count) {
            Some(r) => r,
            None => i64::from(string_hash_code(v)).unsigned_abs() % self.count,
        };
        Ok(Some(r as usize))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        let (a, b) = (super::java::parse_long(lo?)?, super::java::parse_long(hi?)?);
        if b.checked_sub(a)? >= self.count as i64 {
            return None;
        }
        super::util::enumerate_ints(lo, hi, |v| self.calculate(v))
    }

    fn partition_count(&self) -> Option<usize> {
        Some(self.count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycat_vectors() {
        let f = PartitionByMod { count: 3 };
        for (v, p) in [("1", 1), ("2", 2), ("3", 0), ("100", 1), ("-5", 2), ("abc", 0), ("NULL", 0)] {
            assert_eq!(f.calculate(v).unwrap(), Some(p), "{v}");
        }
        assert_eq!(f.calculate("123456789012345678901234567890").unwrap(), Some(0));
        assert_eq!(f.calculate("1.5").unwrap(), Some((i64::from(string_hash_code("1.5")).unsigned_abs() % 3) as usize));
        assert_eq!(f.calculate_range(Some("4"), Some("5")), Some(vec![1, 2]));
        assert_eq!(f.calculate_range(Some("4"), Some("10")), None);
    }
}
