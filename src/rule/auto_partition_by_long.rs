//! AutoPartitionByLong ("range sharding"): `start-end=node` lines (K/M units, inclusive, first match
//! wins), `defaultNode` for values outside every range. Ranges: the exact nodes whose ranges intersect.

use super::java::parse_long;
use super::mapfile;
use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

#[derive(Debug)]
pub struct AutoPartitionByLong {
    ranges: Vec<(i64, i64, usize)>,
    default_node: Option<usize>,
}

impl AutoPartitionByLong {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        let (path, entries) = ctx.map_file(p, "autopartition-long.txt")?;
        let mut ranges = Vec::new();
        for e in entries {
            let (a, b) = mapfile::parse_range(&e.key).map_err(|m| RuleError::at(&path, e.line, m))?;
            let n = e
                .value
                .parse::<usize>()
                .map_err(|_| RuleError::at(&path, e.line, format!("node '{}' is not a number", e.value)))?;
            ranges.push((a, b, n));
        }
        let d = p.int("defaultNode", Some(-1))?;
        Ok(AutoPartitionByLong { ranges, default_node: usize::try_from(d).ok() })
    }
}

impl PartitionFunction for AutoPartitionByLong {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let n = parse_long(v)
            .ok_or_else(|| format!("columnValue:{v} Please eliminate any quote and non number within it."))?;
        Ok(self.ranges.iter().find(|(a, b, _)| *a <= n && n <= *b).map(|r| r.2).or(self.default_node))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        let lo = match lo {
            Some(s) => parse_long(s)?,
            None => i64::MIN,
        };
        let hi = match hi {
            Some(s) => parse_long(s)?,
            None => i64::MAX,
        };
        if hi < lo {
            return Some(Vec::new());
        }
        let mut out: Vec<usize> = self.ranges.iter().filter(|(a, b, _)| *a <= hi && lo <= *b).map(|r| r.2).collect();
        if let Some(d) = self.default_node {
            // values of [lo, hi] outside every range live on the default node
            let mut covered: Vec<(i64, i64)> = self.ranges.iter().map(|r| (r.0, r.1)).collect();
            covered.sort();
            let mut next = lo;
            let mut gap = false;
            for (a, b) in covered {
                if b < next {
                    continue;
                }
                if a > next {
                    gap = true;
                    break;
                }
                match b.checked_add(1) {
                    Some(n) => next = n,
                    None => {
                        next = i64::MAX;
                        break;
                    }
                }
                if next > hi {
                    break;
                }
            }
            if gap || next <= hi {
                out.push(d);
            }
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    fn partition_count(&self) -> Option<usize> {
        let mut nodes: Vec<usize> = self.ranges.iter().map(|r| r.2).collect();
        nodes.sort_unstable();
        nodes.dedup();
        Some(nodes.len())
    }

    fn default_node(&self) -> Option<usize> {
        self.default_node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str, default_node: Option<usize>) -> AutoPartitionByLong {
        let ranges = mapfile::parse(text)
            .into_iter()
            .map(|e| {
                let (a, b) = mapfile::parse_range(&e.key).unwrap();
                (a, b, e.value.parse().unwrap())
            })
            .collect();
        AutoPartitionByLong { ranges, default_node }
    }

    #[test]
    fn mycat_vectors() {
        let t = f("0-200M=0\n200M1-400M=1\n400M1-600M=2\n", None);
        for (v, p) in [
            ("0", Some(0)),
            ("2000000", Some(0)),
            ("2000001", Some(1)),
            ("4000000", Some(1)),
            ("4000001", Some(2)),
            ("6000000", Some(2)),
            ("6000001", None),
        ] {
            assert_eq!(t.calculate(v).unwrap(), p, "{v}");
        }
        assert!(t.calculate("-1").unwrap().is_none());
        assert!(t.calculate("abc").is_err());
        let d = f("0-200M=0\n200M1-400M=1\n400M1-600M=2\n", Some(0));
        assert_eq!(d.calculate("6000001").unwrap(), Some(0));
        let def = f("0-500M=0\n500M-1000M=1\n1000M-1500M=2\n", None);
        assert_eq!(def.calculate("5000000").unwrap(), Some(0), "first match wins on the shared bound");
        assert_eq!(def.calculate("5000001").unwrap(), Some(1));
        assert_eq!(def.partition_count(), Some(3));
    }

    #[test]
    fn ranges_are_exact_even_when_the_map_is_not_monotonic() {
        let t = f("0-1000=0\n1001-2000=1\n2001-3000=0\n3001-4000=1\n", None);
        assert_eq!(t.calculate("3000").unwrap(), Some(0));
        assert_eq!(t.calculate("3001").unwrap(), Some(1));
        assert_eq!(t.calculate_range(Some("500"), Some("2500")), Some(vec![0, 1]), "Mycat says node 0 only");
        assert_eq!(t.calculate_range(Some("1500"), Some("1600")), Some(vec![1]));
        assert_eq!(t.calculate_range(Some("5000"), Some("6000")), Some(vec![]));
        assert_eq!(t.calculate_range(None, Some("10")), Some(vec![0]));
        let d = f("0-10=0\n20-30=1\n", Some(2));
        assert_eq!(d.calculate_range(Some("5"), Some("8")), Some(vec![0]));
        assert_eq!(d.calculate_range(Some("5"), Some("15")), Some(vec![0, 2]), "the gap goes to the default node");
    }
}
