//! PartitionByMonth: months since sBeginDate; rotated into the begin..end span when sEndDate is set,
//! month of year when neither is set. Ranges: every month in between.

use chrono::Datelike;

use super::java::DateFormat;
use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByMonth {
    fmt: DateFormat,
    /// (year, month) of sBeginDate; `None` = month-of-year mode.
    begin: Option<(i64, i64)>,
    count: Option<i64>,
    /// PartitionByMonthAndHistory: negative indexes are not clamped.
    clamp: bool,
}

impl PartitionByMonth {
    pub fn new(p: &Props, ctx: &BuildCtx, history: bool) -> Result<Self, RuleError> {
        let fmt = DateFormat::new(p.get("dateFormat").unwrap_or("yyyy-MM-dd"))
            .map_err(|e| format!("function '{}': {e}", p.name))?;
        ctx.zone(p)?; // accepted for symmetry; months are read from the written date itself
        let ym = |k: &str, v: &str| -> Result<(i64, i64), String> {
            let t = fmt.parse_local(v).ok_or_else(|| {
                format!("function '{}': {k}='{v}' does not match dateFormat '{}'", p.name, fmt.pattern)
            })?;
            Ok((i64::from(t.year()), i64::from(t.month())))
        };
        let begin_raw = p.get("sBeginDate").filter(|s| !s.is_empty());
        let end_raw = p.get("sEndDate").filter(|s| !s.is_empty());
        if history && begin_raw.is_none() {
            return Err(format!("function '{}' needs property sBeginDate", p.name).into());
        }
        let begin = match begin_raw {
            Some(b) => Some(ym("sBeginDate", b)?),
            None if end_raw.is_some() => Some((2015, 1)),
            None => None,
        };
        let count = match (begin, end_raw) {
            (Some((by, bm)), Some(e)) => {
                let (ey, em) = ym("sEndDate", e)?;
                Some((ey - by) * 12 + (em - bm) + 1)
            }
            (None, _) => Some(12),
            _ => None,
        };
        if count.is_some_and(|n| n <= 0) {
            return Err(format!("function '{}': sEndDate is before sBeginDate", p.name).into());
        }
        Ok(PartitionByMonth { fmt, begin, count, clamp: !history })
    }

    fn index_of(&self, year: i64, month: i64) -> Option<usize> {
        let Some((by, bm)) = self.begin else { return Some((month - 1) as usize) };
        let i = (year - by) * 12 + (month - bm);
        match self.count {
            Some(n) => Some(i.rem_euclid(n) as usize),
            None if i < 0 && self.clamp => Some(0),
            None => usize::try_from(i).ok(),
        }
    }

    fn year_month(&self, v: &str) -> Result<(i64, i64), String> {
        let t =
            self.fmt.parse_local(v).ok_or_else(|| format!("columnValue:{v} Please check if the format satisfied."))?;
        Ok((i64::from(t.year()), i64::from(t.month())))
    }
}

impl PartitionFunction for PartitionByMonth {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let (y, m) = self.year_month(v)?;
        self.index_of(y, m).map(Some).ok_or_else(|| format!("columnValue:{v} is before sBeginDate"))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        let (a, b) = (self.year_month(lo?).ok()?, self.year_month(hi?).ok()?);
        let (from, to) = (a.0 * 12 + a.1 - 1, b.0 * 12 + b.1 - 1);
        if to < from {
            return Some(Vec::new());
        }
        if to - from > 4096 {
            return None;
        }
        let mut out = std::collections::BTreeSet::new();
        for k in from..=to {
            out.insert(self.index_of(k / 12, k % 12 + 1)?);
        }
        Some(out.into_iter().collect())
    }

    fn partition_count(&self) -> Option<usize> {
        self.count.map(|n| n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn f(props: &[(&str, &str)], history: bool) -> PartitionByMonth {
        let map: BTreeMap<String, String> = props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        PartitionByMonth::new(&Props { name: "partbymonth", map: &map }, &BuildCtx::for_tests(), history).unwrap()
    }

    fn at(f: &PartitionByMonth, v: &str) -> usize {
        f.calculate(v).unwrap().unwrap()
    }

    #[test]
    fn mycat_vectors() {
        let open = f(&[("dateFormat", "yyyy-MM-dd"), ("sBeginDate", "2014-01-01")], false);
        for (v, p) in [
            ("2014-01-01", 0),
            ("2014-01-31", 0),
            ("2014-02-01", 1),
            ("2014-02-28", 1),
            ("2014-03-1", 2),
            ("2014-12-31", 11),
            ("2015-01-31", 12),
            ("2015-12-31", 23),
        ] {
            assert_eq!(at(&open, v), p, "{v}");
        }
        assert_eq!(at(&open, "2013-05-01"), 0, "before the beginning: clamped");
        let cyclic =
            f(&[("dateFormat", "yyyy-MM-dd"), ("sBeginDate", "2015-01-01"), ("sEndDate", "2015-12-01")], false);
        for (v, p) in [
            ("2013-01-02", 0),
            ("2014-01-01", 0),
            ("2016-01-20", 0),
            ("2013-02-02", 1),
            ("2016-02-20", 1),
            ("2013-06-01", 5),
            ("2016-06-20", 5),
            ("2013-12-28", 11),
            ("2016-12-31", 11),
        ] {
            assert_eq!(at(&cyclic, v), p, "{v}");
        }
        let moy = f(&[("dateFormat", "yyyy-MM-dd")], false);
        for (v, p) in [("2014-01-01", 0), ("2015-01-31", 0), ("2014-02-28", 1), ("2015-12-31", 11)] {
            assert_eq!(at(&moy, v), p, "{v}");
        }
        assert_eq!(moy.calculate_range(Some("2015-01-01"), Some("2014-04-03")), Some(vec![]));
        assert_eq!(cyclic.calculate_range(Some("2015-11-01"), Some("2016-02-01")), Some(vec![0, 1, 10, 11]));
        let hist = f(&[("dateFormat", "yyyy-MM-dd"), ("sBeginDate", "2014-01-01")], true);
        assert!(hist.calculate("2013-12-01").is_err(), "history mode does not clamp");
        assert_eq!(at(&hist, "2015-02-01"), 13);
    }
}
