//! PartitionByFileMap ("enumeration"): `key=node` lines; integer keys (type 0) or exact string keys;
//! `defaultNode` for unknown keys. Integer ranges: exact for small spans, else all.

use std::collections::HashMap;

use super::java::parse_int;
use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

#[derive(Debug)]
pub struct PartitionByFileMap {
    numeric: bool,
    map: HashMap<String, usize>,
    default_node: Option<usize>,
    nodes: usize,
}

impl PartitionByFileMap {
    pub fn new(p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        let (path, entries) = ctx.map_file(p, "partition-hash-int.txt")?;
        let numeric = p.int("type", Some(0))? == 0;
        let mut map = HashMap::new();
        let mut distinct = std::collections::BTreeSet::new();
        for e in entries {
            let key = if numeric {
                parse_int(&e.key)
                    .ok_or_else(|| RuleError::at(&path, e.line, format!("key '{}' is not an integer (type=0)", e.key)))?
                    .to_string()
            } else {
                e.key.clone()
            };
            let n = e
                .value
                .parse::<usize>()
                .map_err(|_| RuleError::at(&path, e.line, format!("node '{}' is not a number", e.value)))?;
            distinct.insert(n);
            map.entry(key).or_insert(n);
        }
        let d = p.int("defaultNode", Some(-1))?;
        Ok(PartitionByFileMap { numeric, map, default_node: usize::try_from(d).ok(), nodes: distinct.len() })
    }
}

impl PartitionFunction for PartitionByFileMap {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let key = if self.numeric {
            parse_int(v).ok_or_else(|| format!("columnValue:{v} Please check if the format satisfied."))?.to_string()
        } else {
            v.to_string()
        };
        Ok(self.map.get(&key).copied().or(self.default_node))
    }

    fn calculate_range(&self, lo: Option<&str>, hi: Option<&str>) -> Option<Vec<usize>> {
        if !self.numeric {
            return None;
        }
        super::util::enumerate_ints(lo, hi, |v| self.calculate(v))
    }

    fn partition_count(&self) -> Option<usize> {
        Some(self.nodes)
    }

    fn default_node(&self) -> Option<usize> {
        self.default_node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycat_vectors() {
        let map: HashMap<String, usize> = [("10000".to_string(), 0), ("10010".to_string(), 1)].into();
        let f = PartitionByFileMap { numeric: true, map: map.clone(), default_node: None, nodes: 2 };
        assert_eq!(f.calculate("10000").unwrap(), Some(0));
        assert_eq!(f.calculate("10010").unwrap(), Some(1));
        assert_eq!(f.calculate("10020").unwrap(), None);
        assert!(f.calculate("xx").is_err());
        let d = PartitionByFileMap { numeric: true, map, default_node: Some(1), nodes: 2 };
        assert_eq!(d.calculate("10020").unwrap(), Some(1));
        assert_eq!(d.calculate_range(Some("9999"), Some("10000")), Some(vec![0, 1]));
        let s = PartitionByFileMap {
            numeric: false,
            map: [("Beijing".to_string(), 1)].into(),
            default_node: None,
            nodes: 1,
        };
        assert_eq!(s.calculate("Beijing").unwrap(), Some(1));
        assert_eq!(s.calculate("beijing").unwrap(), None, "string keys are case-sensitive");
    }
}
