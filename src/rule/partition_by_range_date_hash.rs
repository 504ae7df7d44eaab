//! PartitionByRangeDateHash: ⌊(t − sBeginDate) / sPartionDay days⌋ picks a group of
//! `groupPartionSize` partitions; Guava's consistentHash of the timestamp picks one inside it.
//! Ranges: every partition of every group between the bounds.

use super::java::{guava_consistent_hash, DateFormat, Zone};
use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

const DAY: i64 = 86_400_000;

#[derive(Debug)]
pub struct PartitionByRangeDateHash {
    fmt: DateFormat,
    zone: Zone,
    begin: i64,
    period: i64,
    group: i64,
}

impl PartitionByRangeDateHash {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        let fmt = DateFormat::new(p.required("dateFormat")?).map_err(|e| format!("function '{}': {e}", p.name))?;
        let zone = ctx.zone(p)?;
        let b = p.required("sBeginDate")?;
        let begin = fmt
            .parse_millis(b, &zone)
            .ok_or_else(|| format!("function '{}': sBeginDate='{b}' does not match dateFormat", p.name))?;
        Ok(PartitionByRangeDateHash {
            fmt,
            zone,
            begin,
            period: p.positive("sPartionDay", None)? as i64 * DAY,
            group: p.positive("groupPartionSize", None)? as i64,
        })
    }

    fn millis(&self, v: &str) -> Result<i64, String> {
        self.fmt
            .parse_millis(v, &self.zone)
            .ok_or_else(|| format!("columnValue:{v} Please check if the format satisfied."))
    }

    fn group_of(&self, t: i64) -> Result<i64, String> {
        let g = (t - self.begin) / self.period;
        if g < 0 {
            return Err("date is before sBeginDate".into());
        }
        Ok(g)
    }
}

impl PartitionFunction for PartitionByRangeDateHash {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let t = self.millis(v)?;
        let inner = guava_consistent_hash(t, self.group as i32) as i64;
        Ok(Some((self.group_of(t)? * self.group + inner) as usize))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        let (a, b) = (self.group_of(self.millis(lo?).ok()?).ok()?, self.group_of(self.millis(hi?).ok()?).ok()?);
        if b < a {
            return Some(Vec::new());
        }
        if (b - a + 1) * self.group > 65_536 {
            return None;
        }
        Some(((a * self.group) as usize..((b + 1) * self.group) as usize).collect())
    }

    fn partition_count(&self) -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn mycat_vectors() {
        let map: BTreeMap<String, String> = [
            ("dateFormat", "yyyy-MM-dd HH:mm:ss"),
            ("sBeginDate", "2014-01-01 00:00:00"),
            ("sPartionDay", "3"),
            ("groupPartionSize", "6"),
            ("timeZone", "GMT+8"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let f = PartitionByRangeDateHash::new(&Props { name: "rdh", map: &map }, &BuildCtx::for_tests()).unwrap();
        for (v, p) in [
            ("2014-01-01 00:00:00", 3),
            ("2014-01-01 00:00:01", 1),
            ("2014-01-04 00:00:00", 7),
            ("2014-01-04 00:00:01", 11),
        ] {
            assert_eq!(f.calculate(v).unwrap(), Some(p), "{v}");
        }
        for s in (0..3 * 86_400).step_by(3_607) {
            let v = f.fmt.format(f.begin + s * 1000, &f.zone).unwrap();
            assert!(f.calculate(&v).unwrap().unwrap() < 6, "{v}");
        }
        assert_eq!(
            f.calculate_range(Some("2014-01-02 00:00:00"), Some("2014-01-05 00:00:00")),
            Some((0..12).collect())
        );
    }
}
