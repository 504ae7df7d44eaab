//! PartitionByCRC32PreSlot: CRC-32 of the value's UTF-8 bytes mod 102400 slots, slots mapped to the
//! table's nodes by `ruledata/<rule>_<SCHEMA>_<TABLE>.properties` (generated and persisted when absent).

use std::path::{Path, PathBuf};

use super::util::Props;
use super::{BuildCtx, PartitionFunction, RuleError};

pub const SLOTS: u32 = 102_400;

#[derive(Debug)]
pub struct PartitionByCRC32PreSlot {
    /// (first slot, last slot, node), sorted by first slot.
    ranges: Vec<(u32, u32, usize)>,
    nodes: usize,
}

/// Even split: node i gets `i·size .. (i+1)·size-1`, the last node everything up to 102399.
fn default_ranges(n: usize) -> Vec<(u32, u32, usize)> {
    let n = n.max(1) as u32;
    let size = SLOTS / n;
    (0..n).map(|i| (i * size, if i == n - 1 { SLOTS - 1 } else { (i + 1) * size - 1 }, i as usize)).collect()
}

fn read_ruledata(path: &Path) -> Result<Vec<(u32, u32, usize)>, RuleError> {
    let mut out = Vec::new();
    for e in super::mapfile::read(path).map_err(|m| RuleError::at(path, 0, m))? {
        let node: usize =
            e.key.parse().map_err(|_| RuleError::at(path, e.line, format!("node '{}' is not a number", e.key)))?;
        for part in e.value.split(',').filter(|s| !s.trim().is_empty()) {
            let (a, b) = part
                .trim()
                .split_once('-')
                .ok_or_else(|| RuleError::at(path, e.line, format!("'{part}' is not start-end")))?;
            let a: u32 = a.trim().parse().map_err(|_| RuleError::at(path, e.line, format!("'{a}' is not a slot")))?;
            let b: u32 = b.trim().parse().map_err(|_| RuleError::at(path, e.line, format!("'{b}' is not a slot")))?;
            out.push((a, b, node));
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn write_ruledata(path: &PathBuf, ranges: &[(u32, u32, usize)]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::from("#auto-generated slot map, do not modify\n");
    for (a, b, n) in ranges {
        text.push_str(&format!("{n}={a}-{b}\n"));
    }
    std::fs::write(path, text)
}

impl PartitionByCRC32PreSlot {
    pub fn new(_p: &Props, ctx: &BuildCtx) -> Result<Self, RuleError> {
        let nodes = ctx.table_nodes.max(1);
        let ranges = match &ctx.ruledata {
            Some(path) if path.exists() => read_ruledata(path)?,
            Some(path) => {
                let r = default_ranges(nodes);
                if let Err(e) = write_ruledata(path, &r) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot persist the crc32slot map");
                }
                r
            }
            None => default_ranges(nodes),
        };
        Ok(PartitionByCRC32PreSlot { ranges, nodes })
    }

    pub fn slot(v: &str) -> u32 {
        crc32fast::hash(v.as_bytes()) % SLOTS
    }
}

impl PartitionFunction for PartitionByCRC32PreSlot {
    fn calculate(&self, v: &str) -> Result<Option<usize>, String> {
        let s = Self::slot(v);
        Ok(self.ranges.iter().find(|(a, b, _)| *a <= s && s <= *b).map(|r| r.2))
    }

    fn partition_count(&self) -> Option<usize> {
        Some(self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: usize) -> PartitionByCRC32PreSlot {
        PartitionByCRC32PreSlot { ranges: default_ranges(n), nodes: n }
    }

    #[test]
    fn mycat_vectors() {
        let t = f(1000);
        assert_eq!(t.calculate("1000316").unwrap(), Some(521));
        assert_eq!(t.calculate("2").unwrap(), Some(637));
        let two = f(2);
        for (v, p) in [
            (1, 0),
            (2, 1),
            (3, 0),
            (4, 1),
            (5, 0),
            (6, 0),
            (7, 0),
            (8, 0),
            (9, 0),
            (9999, 0),
            (123456789, 1),
            (35565, 1),
        ] {
            assert_eq!(two.calculate(&v.to_string()).unwrap(), Some(p), "2 nodes, {v}");
        }
        let three = f(3);
        for (v, p) in [
            (1, 1),
            (2, 1),
            (3, 0),
            (4, 2),
            (5, 0),
            (6, 1),
            (7, 1),
            (8, 0),
            (9, 0),
            (9999, 0),
            (123456789, 2),
            (35565, 2),
        ] {
            assert_eq!(three.calculate(&v.to_string()).unwrap(), Some(p), "3 nodes, {v}");
        }
    }

    #[test]
    fn ruledata_round_trips() {
        let dir = std::env::temp_dir().join(format!("crc32slot-{}", std::process::id()));
        let path = dir.join("ruledata/crc32slot_TESTDB_T.properties");
        write_ruledata(&path, &default_ranges(3)).unwrap();
        assert_eq!(read_ruledata(&path).unwrap(), default_ranges(3));
        let _ = std::fs::remove_dir_all(dir);
    }
}
