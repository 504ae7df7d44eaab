//! PartitionByHotDate: the last `sLastDay` days (relative to now) are partition 0; older dates go to
//! 1 + ⌊(now − sLastDay days − t) / sPartionDay days⌋. Ranges: partition 0 plus the cold periods.

use super::java::{DateFormat, Zone};
use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

const DAY: i64 = 86_400_000;

#[derive(Debug)]
pub struct PartitionByHotDate {
    fmt: DateFormat,
    zone: Zone,
    last_days: i64,
    period: i64,
}

impl PartitionByHotDate {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        let fmt = DateFormat::new(p.required("dateFormat")?).map_err(|e| format!("function '{}': {e}", p.name))?;
        Ok(PartitionByHotDate {
            fmt,
            zone: ctx.zone(p)?,
            last_days: p.int("sLastDay", None)?,
            period: p.positive("sPartionDay", None)? as i64 * DAY,
        })
    }

    fn index_at(&self, t: i64, now: i64) -> usize {
        let diff_days = (now - t) / DAY + 1;
        if diff_days - self.last_days <= 0 || diff_days < 0 {
            0
        } else {
            (((now - self.last_days * DAY - t) / self.period) + 1).max(0) as usize
        }
    }

    fn millis(&self, v: &str) -> Result<i64, String> {
        self.fmt
            .parse_millis(v, &self.zone)
            .ok_or_else(|| format!("columnValue:{v} Please check if the format satisfied."))
    }
}

impl PartitionFunction for PartitionByHotDate {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        Ok(Some(self.index_at(self.millis(v)?, chrono::Utc::now().timestamp_millis())))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        let (a, b) = (self.millis(lo?).ok()?, self.millis(hi?).ok()?);
        if b < a {
            return Some(Vec::new());
        }
        let now = chrono::Utc::now().timestamp_millis();
        let (p_hi, p_lo) = (self.index_at(a, now), self.index_at(b, now));
        let mut out: Vec<usize> = (p_lo..=p_hi).collect();
        if p_lo > 0 && b >= now - self.last_days * DAY {
            out.insert(0, 0);
        }
        Some(out)
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
    fn relative_to_today() {
        let map: BTreeMap<String, String> =
            [("dateFormat", "yyyy-MM-dd"), ("sLastDay", "10"), ("sPartionDay", "1"), ("timeZone", "UTC")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let f = PartitionByHotDate::new(&Props { name: "hot", map: &map }, &BuildCtx::for_tests()).unwrap();
        let day = |back: i64| f.fmt.format(chrono::Utc::now().timestamp_millis() - back * DAY, &f.zone).unwrap();
        assert_eq!(f.calculate(&day(0)).unwrap(), Some(0));
        assert_eq!(f.calculate(&day(5)).unwrap(), Some(0));
        assert_eq!(f.calculate(&day(11)).unwrap(), Some(2));
        assert_eq!(f.calculate(&day(21)).unwrap(), Some(12));
        let r = f.calculate_range(Some(&day(21)), Some(&day(0))).unwrap();
        assert_eq!(r.len(), 13);
        assert_eq!(&r[..3], &[0, 1, 2]);
    }
}
