//! PartitionDirectBySubString: the partition number is written in the value: the decimal substring at
//! `startIndex` of length `size`; numbers ≥ partitionCount go to `defaultPartition`. Ranges → all.

use super::util::Props;
use super::{PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionDirectBySubString {
    start: usize,
    size: usize,
    count: i64,
    default: usize,
}

impl PartitionDirectBySubString {
    pub fn new(p: &Props) -> Result<Self, RuleError> {
        Ok(PartitionDirectBySubString {
            start: p.int("startIndex", Some(0))?.max(0) as usize,
            size: p.positive("size", None)?,
            count: p.int("partitionCount", Some(0))?,
            default: p.int("defaultPartition", Some(0))?.max(0) as usize,
        })
    }
}

impl PartitionFunction for PartitionDirectBySubString {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let units: Vec<u16> = v.encode_utf16().collect();
        let sub = units
            .get(self.start..self.start + self.size)
            .map(String::from_utf16_lossy)
            .ok_or_else(|| format!("columnValue:{v} is shorter than startIndex+size"))?;
        let n = super::java::parse_int(&sub).ok_or_else(|| format!("columnValue:{v}: '{sub}' is not a number"))?;
        if n < 0 {
            return Err(format!("columnValue:{v}: partition {n} does not exist"));
        }
        Ok(Some(if self.count > 0 && i64::from(n) >= self.count { self.default } else { n as usize }))
    }

    fn partition_count(&self) -> Option<usize> {
        if self.count > 0 {
            Some(self.count as usize)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_written_partition() {
        let f = PartitionDirectBySubString { start: 9, size: 2, count: 8, default: 0 };
        assert_eq!(f.calculate("201508190051234").unwrap(), Some(5));
        assert_eq!(f.calculate("201508190091234").unwrap(), Some(0), "9 ≥ 8: default partition");
        assert!(f.calculate("2015").is_err());
        assert!(f.calculate("201508190x51234").is_err());
    }
}
