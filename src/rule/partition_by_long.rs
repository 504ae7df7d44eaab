//! PartitionByLong ("fixed hash"): a signed 64-bit value folded `(k >>> 32) ^ k`, its low 10 bits
//! looked up in the 1024-slot segment table. Ranges: exact for spans under 1024, else all partitions.

use super::java::parse_long;
use super::util::{Props, Segments, SLOTS};
use super::{PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByLong {
    segments: Segments,
}

impl PartitionByLong {
    pub fn new(p: &Props) -> Result<Self, RuleError> {
        let segments = Segments::new(&p.int_list("partitionCount")?, &p.int_list("partitionLength")?)
            .map_err(|e| format!("function '{}': {e}", p.name))?;
        Ok(PartitionByLong { segments })
    }

    fn slot(v: i64) -> usize {
        let k = v as u64;
        (((k >> 32) ^ k) & (SLOTS as u64 - 1)) as usize
    }
}

impl PartitionFunction for PartitionByLong {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let n = parse_long(v)
            .ok_or_else(|| format!("columnValue:{v} Please eliminate any quote and non number within it."))?;
        Ok(Some(self.segments.partition(Self::slot(n))))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        // the mapping repeats every 1024 values: a wider span touches every slot (Mycat wraps wrongly)
        let (a, b) = (parse_long(lo?)?, parse_long(hi?)?);
        if b.checked_sub(a)? >= SLOTS as i64 {
            return None;
        }
        super::util::enumerate_ints(lo, hi, |v| self.calculate(v))
    }

    fn partition_count(&self) -> Option<usize> {
        None // Mycat disables the count check for this function
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn f(counts: &str, lengths: &str) -> PartitionByLong {
        let map: BTreeMap<String, String> =
            [("partitionCount".to_string(), counts.to_string()), ("partitionLength".to_string(), lengths.to_string())]
                .into();
        PartitionByLong::new(&Props { name: "f", map: &map }).unwrap()
    }

    fn at(f: &PartitionByLong, v: i64) -> usize {
        f.calculate(&v.to_string()).unwrap().unwrap()
    }

    #[test]
    fn mycat_vectors() {
        let two = f("2", "512");
        for (v, p) in [(0, 0), (511, 0), (512, 1), (1023, 1), (1024, 0), (1535, 0), (1536, 1)] {
            assert_eq!(at(&two, v), p, "2x512 {v}");
        }
        let mixed = f("2,1", "256,512");
        for (v, p) in [(0, 0), (255, 0), (256, 1), (511, 1), (512, 2), (1023, 2), (1024, 0), (1280, 1), (12345, 0)] {
            assert_eq!(at(&mixed, v), p, "2,1 {v}");
        }
        let func1 = f("8", "128");
        for (v, p) in [
            (0, 0),
            (127, 0),
            (128, 1),
            (256, 2),
            (1000, 7),
            (1023, 7),
            (1024, 0),
            (2000, 7),
            (9999, 6),
            (123456789, 2),
        ] {
            assert_eq!(at(&func1, v), p, "8x128 {v}");
        }
        assert_eq!(at(&func1, -1), 0);
        assert_eq!(at(&func1, -2), 0, "-2 folds to slot 1, still partition 0 of 8x128");
        assert_eq!(at(&f("1024", "1"), -2), 1, "-2 → slot 1");
        assert_eq!(at(&func1, i64::MAX), at(&func1, i64::MAX));
        assert!(func1.calculate("'12'").is_err());
        assert!(func1.calculate("1.5").is_err());
    }

    #[test]
    fn ranges_do_not_wrap() {
        let func1 = f("8", "128");
        assert_eq!(func1.calculate_range(Some("1"), Some("2000")), None, "wider than 1024 → all");
        assert_eq!(func1.calculate_range(Some("100"), Some("300")), Some(vec![0, 1, 2]));
        assert_eq!(func1.calculate_range(Some("1000"), Some("1030")), Some(vec![0, 7]), "wraps inside the span");
    }
}
