//! PartitionByDate: ⌊(t − sBeginDate) / sPartionDay days⌋, wrapped modulo the partition count when
//! sEndDate is set; natural-day mode uses the day of the month. Ranges: every period in between.

use super::java::{DateFormat, Zone};
use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

const DAY: i64 = 86_400_000;

#[derive(Debug)]
pub struct PartitionByDate {
    fmt: DateFormat,
    zone: Zone,
    begin: i64,
    period: i64,
    count: Option<i64>,
    natural_day: bool,
}

impl PartitionByDate {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        let fmt = DateFormat::new(p.required("dateFormat")?).map_err(|e| format!("function '{}': {e}", p.name))?;
        let zone = ctx.zone(p)?;
        let parse = |k: &str, v: &str| {
            fmt.parse_millis(v, &zone)
                .ok_or_else(|| format!("function '{}': {k}='{v}' does not match dateFormat '{}'", p.name, fmt.pattern))
        };
        let begin = parse("sBeginDate", p.required("sBeginDate")?)?;
        let days = p.positive("sPartionDay", None)? as i64;
        let period = days * DAY;
        let count = match p.get("sEndDate").filter(|s| !s.is_empty()) {
            Some(e) => Some((parse("sEndDate", e)? - begin) / period + 1),
            None => None,
        };
        let natural_day = p.get("sNaturalDay") == Some("1") && count.is_none_or(|n| n * days >= 28);
        Ok(PartitionByDate { fmt, zone, begin, period, count, natural_day })
    }

    fn index(&self, t: i64) -> Result<Option<usize>, String> {
        if self.natural_day {
            use chrono::Datelike;
            let d = self.zone.local(t).ok_or("date out of range")?.day();
            return Ok(Some(d as usize - 1));
        }
        let mut i = (t - self.begin) / self.period; // Java division truncates toward zero
        if let Some(n) = self.count {
            if i >= n {
                i %= n;
            }
        }
        if i < 0 {
            return Err(format!("date is before sBeginDate: partition {i} does not exist"));
        }
        Ok(Some(i as usize))
    }

    fn millis(&self, v: &str) -> Result<i64, String> {
        self.fmt
            .parse_millis(v, &self.zone)
            .ok_or_else(|| format!("columnValue:{v} Please check if the format satisfied."))
    }
}

impl PartitionFunction for PartitionByDate {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        self.index(self.millis(v)?)
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        let (a, b) = (self.millis(lo?).ok()?, self.millis(hi?).ok()?);
        if b < a {
            return Some(Vec::new());
        }
        let step = if self.natural_day { DAY } else { self.period.min(DAY) };
        if (b - a) / step > 4096 {
            return None;
        }
        let mut out = std::collections::BTreeSet::new();
        let mut t = a;
        while t <= b {
            out.insert(self.index(t).ok()??);
            t += step;
        }
        out.insert(self.index(b).ok()??);
        Some(out.into_iter().collect())
    }

    fn partition_count(&self) -> Option<usize> {
        if self.natural_day {
            return Some(31);
        }
        self.count.map(|n| n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn f(props: &[(&str, &str)]) -> PartitionByDate {
        let mut map: BTreeMap<String, String> = props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("timeZone".into(), "GMT+8".into());
        PartitionByDate::new(&Props { name: "partbyday", map: &map }, &BuildCtx::for_tests()).unwrap()
    }

    fn at(f: &PartitionByDate, v: &str) -> usize {
        f.calculate(v).unwrap().unwrap()
    }

    #[test]
    fn mycat_vectors() {
        let base = [("dateFormat", "yyyy-MM-dd"), ("sBeginDate", "2014-01-01"), ("sPartionDay", "10")];
        let open = f(&base);
        for (v, p) in [("2014-01-01", 0), ("2014-01-10", 0), ("2014-01-11", 1), ("2014-05-01", 12)] {
            assert_eq!(at(&open, v), p, "{v}");
        }
        let mut with_end = base.to_vec();
        with_end.push(("sEndDate", "2014-01-31"));
        let ended = f(&with_end);
        for (v, p) in [
            ("2014-01-01", 0),
            ("2014-01-10", 0),
            ("2014-01-11", 1),
            ("2014-01-31", 3),
            ("2014-02-01", 3),
            ("2014-02-19", 0),
            ("2014-02-20", 1),
            ("2014-03-01", 1),
            ("2014-03-02", 2),
            ("2014-03-11", 2),
            ("2014-03-20", 3),
            ("2014-03-24", 0),
        ] {
            assert_eq!(at(&ended, v), p, "{v}");
        }
        let daily = f(&[
            ("dateFormat", "yyyy-MM-dd"),
            ("sBeginDate", "2014-01-01"),
            ("sEndDate", "2014-01-31"),
            ("sPartionDay", "1"),
        ]);
        for (v, p) in [("2014-01-10", 9), ("2014-01-11", 10), ("2014-02-01", 0)] {
            assert_eq!(at(&daily, v), p, "{v}");
        }
        let natural = f(&[
            ("dateFormat", "yyyy-MM-dd"),
            ("sBeginDate", "2014-01-01"),
            ("sPartionDay", "1"),
            ("sNaturalDay", "1"),
        ]);
        for (v, p) in [("2014-01-20", 19), ("2014-03-01", 0), ("2018-03-31", 30)] {
            assert_eq!(at(&natural, v), p, "{v}");
        }
        let short = f(&[
            ("dateFormat", "yyyy-MM-dd"),
            ("sBeginDate", "2014-01-02"),
            ("sEndDate", "2014-01-20"),
            ("sPartionDay", "1"),
            ("sNaturalDay", "1"),
        ]);
        for (v, p) in [
            ("2014-01-02", 0),
            ("2014-01-03", 1),
            ("2014-01-04", 2),
            ("2014-01-08", 6),
            ("2014-01-10", 8),
            ("2014-01-14", 12),
            ("2014-01-20", 18),
        ] {
            assert_eq!(at(&short, v), p, "short natural {v}");
        }
        assert!(open.calculate("2013-01-01").is_err(), "before the beginning");
        assert!(open.calculate("not a date").is_err());
        assert_eq!(ended.calculate_range(Some("2014-01-05"), Some("2014-01-25")), Some(vec![0, 1, 2]));
        assert_eq!(ended.calculate_range(Some("2014-01-25"), Some("2014-02-25")), Some(vec![0, 1, 2, 3]));
    }
}
