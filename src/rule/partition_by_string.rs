//! PartitionByString: a 64-bit Java-style polynomial hash over a slice of the value's UTF-16 units
//! (`hashSlice`), looked up in the 1024-slot segment table. Ranges → all partitions.

use super::util::{Props, Segments, SLOTS};
use super::{PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByString {
    segments: Segments,
    start: i64,
    end: i64,
}

/// Mycat's slice syntax: `"2"`→(0,2), `"1:2"`, `"1:"`→(1,0), `"-1:"`, `":-1"`, `":"`, `"-4"`→(−4,0).
fn parse_slice(s: &str) -> Option<(i64, i64)> {
    let s = s.trim();
    match s.split_once(':') {
        None => {
            let v: i64 = s.parse().ok()?;
            Some(if v >= 0 { (0, v) } else { (v, 0) })
        }
        Some((a, b)) => {
            let a = if a.trim().is_empty() { 0 } else { a.trim().parse().ok()? };
            let b = if b.trim().is_empty() { 0 } else { b.trim().parse().ok()? };
            Some((a, b))
        }
    }
}

impl PartitionByString {
    pub fn new(p: &Props) -> Result<Self, RuleError> {
        let segments = Segments::new(&p.int_list("partitionCount")?, &p.int_list("partitionLength")?)
            .map_err(|e| format!("function '{}': {e}", p.name))?;
        let slice = match (p.get("hashSlice"), p.get("hashLength")) {
            (Some(s), _) => s.to_string(),
            (None, Some(n)) => format!("0:{n}"),
            (None, None) => "0:8".to_string(),
        };
        let (start, end) = parse_slice(&slice)
            .ok_or_else(|| format!("function '{}': hashSlice '{slice}' is not start:end", p.name))?;
        Ok(PartitionByString { segments, start, end })
    }

    fn hash(&self, v: &str) -> i64 {
        let units: Vec<u16> = v.encode_utf16().collect();
        let len = units.len() as i64;
        let mut s = if self.start < 0 { len + self.start } else { self.start };
        let mut e = if self.end > 0 { self.end } else { len + self.end };
        s = s.max(0);
        e = e.min(len);
        let mut h: i64 = 0;
        let mut i = s;
        while i < e {
            h = h.wrapping_mul(31).wrapping_add(i64::from(units[i as usize]));
            i += 1;
        }
        h
    }
}

impl PartitionFunction for PartitionByString {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        Ok(Some(self.segments.partition((self.hash(v) as u64 & (SLOTS as u64 - 1)) as usize)))
    }

    fn partition_count(&self) -> Option<usize> {
        Some(self.segments.partitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn f(counts: &str, lengths: &str, slice: &str) -> PartitionByString {
        let map: BTreeMap<String, String> = [
            ("partitionCount".to_string(), counts.to_string()),
            ("partitionLength".to_string(), lengths.to_string()),
            ("hashSlice".to_string(), slice.to_string()),
        ]
        .into();
        PartitionByString::new(&Props { name: "f", map: &map }).unwrap()
    }

    #[test]
    fn mycat_vectors() {
        assert_eq!(f("2,1", "256,512", "0:8").calculate("qiushuo").unwrap(), Some(2));
        assert_eq!(f("128", "8", ":8").calculate("abc").unwrap(), Some(12));
        let tail = f("2", "512", "-4:0");
        assert_eq!(tail.calculate("aaaabbb0000").unwrap(), Some(0));
        assert_eq!(tail.calculate("aaaabbb2359").unwrap(), Some(0));
        // edge cases: empty, non-ASCII, slices past the end
        assert_eq!(f("128", "8", ":8").calculate("").unwrap(), Some(0));
        assert!(f("128", "8", "2:100").calculate("日本語テキスト").unwrap().is_some());
        assert_eq!(parse_slice("2"), Some((0, 2)));
        assert_eq!(parse_slice("-4"), Some((-4, 0)));
        assert_eq!(parse_slice(":-1"), Some((0, -1)));
        assert_eq!(parse_slice("1:"), Some((1, 0)));
    }
}
