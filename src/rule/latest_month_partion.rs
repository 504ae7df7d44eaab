//! LatestMonthPartion: values ending in `DDHH`; index = (DD−1)·splitOneDay + HH / (24/splitOneDay).
//! Ranges: every hour slot between the bounds when both are in the same month, else all.

use super::util::Props;
use super::{PartitionFunction, RuleError};

#[derive(Debug)]
pub struct LatestMonthPartion {
    split: i64,
}

impl LatestMonthPartion {
    pub fn new(p: &Props) -> Result<Self, RuleError> {
        let split = p.positive("splitOneDay", Some(24))? as i64;
        if 24 % split != 0 {
            return Err(format!("function '{}': splitOneDay must divide 24", p.name).into());
        }
        Ok(LatestMonthPartion { split })
    }

    fn day_hour(v: &str) -> Result<(i64, i64), String> {
        let bad = || format!("columnValue:{v} must end with DDHH");
        let n = v.len();
        if n < 4 || !v.is_char_boundary(n - 4) {
            return Err(bad());
        }
        let day: i64 = v[n - 4..n - 2].parse().map_err(|_| bad())?;
        let hour: i64 = v[n - 2..].parse().map_err(|_| bad())?;
        Ok((day, hour))
    }
}

impl PartitionFunction for LatestMonthPartion {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let (day, hour) = Self::day_hour(v)?;
        let i = (day - 1) * self.split + hour / (24 / self.split);
        usize::try_from(i).map(Some).map_err(|_| format!("columnValue:{v} has day 00"))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        let (lo, hi) = (lo?, hi?);
        // only comparable within one month: same prefix before DDHH
        if lo.len() != hi.len() || lo.len() < 4 || lo.get(..lo.len() - 4)? != hi.get(..hi.len() - 4)? {
            return None;
        }
        let (a, b) = (self.calculate(lo).ok()??, self.calculate(hi).ok()??);
        Some(if b >= a { (a..=b).collect() } else { Vec::new() })
    }

    fn partition_count(&self) -> Option<usize> {
        Some((31 * self.split) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycat_vectors() {
        let f = LatestMonthPartion { split: 24 };
        assert_eq!(f.calculate("2015020100").unwrap(), Some(0));
        assert_eq!(f.calculate("2015020216").unwrap(), Some(40));
        assert_eq!(f.calculate("2015022823").unwrap(), Some(671));
        assert_eq!(f.calculate_range(Some("2015020100"), Some("2015022823")).map(|v| v.len()), Some(672));
        assert_eq!(f.calculate_range(Some("2015020100"), Some("2015020123")), Some((0..24).collect()));
        assert!(f.calculate("12").is_err());
        assert!(f.calculate("2015020000").is_err());
    }
}
