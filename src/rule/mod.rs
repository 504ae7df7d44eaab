//! Sharding rule functions: the Mycat 1.6 class names shardcat knows, their properties, and how many
//! partitions each yields (the config check). The functions' placement arithmetic lands with routing.

pub mod mapfile;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::model::Function;

/// The built-in Mycat 1.6 functions (class names without the `io.mycat.route.function.` prefix).
pub const KNOWN_CLASSES: &[&str] = &[
    "PartitionByLong",
    "PartitionByString",
    "PartitionByMod",
    "PartitionByHashMod",
    "AutoPartitionByLong",
    "PartitionByFileMap",
    "PartitionByMurmurHash",
    "PartitionByCRC32PreSlot",
    "PartitionByJumpConsistentHash",
    "PartitionByDate",
    "PartitionByMonth",
    "PartitionByMonthAndHistory",
    "LatestMonthPartion",
    "PartitionByHotDate",
    "PartitionByRangeDateHash",
    "PartitionByPattern",
    "PartitionByPrefixPattern",
    "PartitionByRangeMod",
    "PartitionDirectBySubString",
];

/// The short class name if `class` is a known built-in.
pub fn class_name(class: &str) -> Option<&'static str> {
    let short = class.strip_prefix("io.mycat.route.function.").unwrap_or(class);
    KNOWN_CLASSES.iter().copied().find(|c| *c == short)
}

/// Properties each function reads (anything else is warned about).
pub fn known_properties(class: &str) -> &'static [&'static str] {
    match class {
        "PartitionByLong" => &["partitionCount", "partitionLength"],
        "PartitionByString" => &["partitionCount", "partitionLength", "hashSlice", "hashLength"],
        "PartitionByMod" | "PartitionByHashMod" => &["count"],
        "AutoPartitionByLong" | "PartitionByRangeMod" => &["mapFile", "defaultNode"],
        "PartitionByFileMap" => &["mapFile", "type", "defaultNode"],
        "PartitionByMurmurHash" => &["seed", "count", "virtualBucketTimes", "weightMapFile", "bucketMapPath"],
        "PartitionByCRC32PreSlot" => &["count"],
        "PartitionByJumpConsistentHash" => &["totalBuckets"],
        "PartitionByDate" => &["dateFormat", "sBeginDate", "sEndDate", "sPartionDay", "sNaturalDay", "timeZone"],
        "PartitionByMonth" | "PartitionByMonthAndHistory" => &["dateFormat", "sBeginDate", "sEndDate", "timeZone"],
        "LatestMonthPartion" => &["splitOneDay"],
        "PartitionByHotDate" => &["dateFormat", "sLastDay", "sPartionDay", "timeZone"],
        "PartitionByRangeDateHash" => &["dateFormat", "sBeginDate", "sPartionDay", "groupPartionSize", "timeZone"],
        "PartitionByPattern" => &["patternValue", "mapFile", "defaultNode"],
        "PartitionByPrefixPattern" => &["patternValue", "prefixLength", "mapFile"],
        "PartitionDirectBySubString" => &["startIndex", "size", "partitionCount", "defaultPartition"],
        _ => &[],
    }
}

fn int_list(f: &Function, prop: &str) -> Result<Vec<i64>, RuleError> {
    let raw = f
        .properties
        .get(prop)
        .ok_or_else(|| RuleError::from(format!("function '{}' needs property {prop}", f.name)))?;
    raw.split(',')
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| format!("function '{}': {prop}='{raw}' is not a list of integers", f.name).into())
        })
        .collect()
}

fn int_prop(f: &Function, prop: &str, default: Option<i64>) -> Result<i64, RuleError> {
    match f.properties.get(prop) {
        Some(v) => {
            v.trim().parse().map_err(|_| format!("function '{}': {prop}='{v}' is not an integer", f.name).into())
        }
        None => default.ok_or_else(|| format!("function '{}' needs property {prop}", f.name).into()),
    }
}

/// A problem with a function: in its map file (file and line given) or in rule.xml itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub map_file: Option<(PathBuf, usize)>,
    pub message: String,
}

impl From<String> for RuleError {
    fn from(message: String) -> Self {
        RuleError { map_file: None, message }
    }
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A map file's entries and its path.
fn map_entries(f: &Function, dir: &Path, default_file: &str) -> Result<(PathBuf, Vec<mapfile::Entry>), RuleError> {
    let name = f.properties.get("mapFile").map(String::as_str).unwrap_or(default_file);
    let path = dir.join(name);
    match mapfile::read(&path) {
        Ok(e) => Ok((path, e)),
        Err(m) => Err(RuleError { map_file: Some((path, 0)), message: format!("function '{}': {m}", f.name) }),
    }
}

fn map_err(f: &Function, path: &Path, line: usize, m: String) -> RuleError {
    RuleError {
        map_file: Some((path.to_path_buf(), line)),
        message: format!("{m} (map file of function '{}')", f.name),
    }
}

/// Checks a function's properties and map files; returns how many partitions it yields
/// (`None` when the count is open-ended or depends on the table, as Mycat's check does).
pub fn partition_count(f: &Function, rules_dir: &Path) -> Result<Option<usize>, RuleError> {
    let class = class_name(&f.class).ok_or_else(|| format!("function '{}': unknown class '{}'", f.name, f.class))?;
    let positive = |v: i64, what: &str| -> Result<usize, RuleError> {
        if v > 0 {
            Ok(v as usize)
        } else {
            Err(format!("function '{}': {what} must be positive", f.name).into())
        }
    };
    match class {
        "PartitionByLong" | "PartitionByString" => {
            let counts = int_list(f, "partitionCount")?;
            let lengths = int_list(f, "partitionLength")?;
            if counts.len() != lengths.len() {
                return Err(
                    format!("function '{}': partitionCount and partitionLength differ in length", f.name).into()
                );
            }
            let total: i64 = counts.iter().zip(&lengths).map(|(c, l)| c.saturating_mul(*l)).sum();
            if total != 1024 || counts.iter().chain(&lengths).any(|v| *v <= 0) {
                return Err(format!(
                    "function '{}': sum of partitionCount × partitionLength must be 1024, is {total}",
                    f.name
                )
                .into());
            }
            Ok(if class == "PartitionByString" { Some(counts.iter().sum::<i64>() as usize) } else { None })
        }
        "PartitionByMod" | "PartitionByHashMod" => Ok(Some(positive(int_prop(f, "count", None)?, "count")?)),
        "PartitionByMurmurHash" => Ok(Some(positive(int_prop(f, "count", None)?, "count")?)),
        "PartitionByJumpConsistentHash" => Ok(Some(positive(int_prop(f, "totalBuckets", None)?, "totalBuckets")?)),
        "PartitionByCRC32PreSlot" => Ok(None),
        "AutoPartitionByLong" | "PartitionByPattern" | "PartitionByPrefixPattern" => {
            let default = match class {
                "AutoPartitionByLong" => "autopartition-long.txt",
                "PartitionByPattern" => "partition-pattern.txt",
                _ => "partition_prefix_pattern.txt",
            };
            let (path, entries) = map_entries(f, rules_dir, default)?;
            let mut nodes = BTreeSet::new();
            for e in &entries {
                mapfile::parse_range(&e.key).map_err(|m| map_err(f, &path, e.line, m))?;
                let n: i64 = e
                    .value
                    .parse()
                    .map_err(|_| map_err(f, &path, e.line, format!("node '{}' is not a number", e.value)))?;
                nodes.insert(n);
            }
            Ok(Some(nodes.len()))
        }
        "PartitionByFileMap" => {
            let (path, entries) = map_entries(f, rules_dir, "partition-hash-int.txt")?;
            let numeric_keys = int_prop(f, "type", Some(0))? == 0;
            let mut nodes = BTreeSet::new();
            for e in &entries {
                if numeric_keys && e.key.parse::<i64>().is_err() {
                    return Err(map_err(f, &path, e.line, format!("key '{}' is not an integer (type=0)", e.key)));
                }
                let n: i64 = e
                    .value
                    .parse()
                    .map_err(|_| map_err(f, &path, e.line, format!("node '{}' is not a number", e.value)))?;
                nodes.insert(n);
            }
            Ok(Some(nodes.len()))
        }
        "PartitionByRangeMod" => {
            let (path, entries) = map_entries(f, rules_dir, "partition-range-mod.txt")?;
            let mut total = 0usize;
            for e in &entries {
                mapfile::parse_range(&e.key).map_err(|m| map_err(f, &path, e.line, m))?;
                total += e
                    .value
                    .parse::<usize>()
                    .map_err(|_| map_err(f, &path, e.line, format!("group size '{}' is not a number", e.value)))?;
            }
            Ok(Some(total))
        }
        "PartitionDirectBySubString" => {
            let n = int_prop(f, "partitionCount", Some(0))?;
            Ok(if n > 0 { Some(n as usize) } else { None })
        }
        "LatestMonthPartion" => {
            let split = int_prop(f, "splitOneDay", Some(24))?;
            if split <= 0 || 24 % split != 0 {
                return Err(format!("function '{}': splitOneDay must divide 24", f.name).into());
            }
            Ok(None)
        }
        // date functions: counts depend on begin/end dates; validated when routing builds them
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn func(class: &str, props: &[(&str, &str)]) -> Function {
        Function {
            name: "f".into(),
            class: class.into(),
            properties: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            line: 1,
        }
    }

    #[test]
    fn counts_and_class_prefixes() {
        let dir = Path::new("/nonexistent");
        assert_eq!(
            partition_count(&func("io.mycat.route.function.PartitionByMod", &[("count", "3")]), dir),
            Ok(Some(3))
        );
        assert_eq!(
            partition_count(&func("PartitionByLong", &[("partitionCount", "8"), ("partitionLength", "128")]), dir),
            Ok(None)
        );
        assert!(partition_count(&func("PartitionByLong", &[("partitionCount", "8"), ("partitionLength", "100")]), dir)
            .is_err());
        assert!(partition_count(&func("com.example.Custom", &[]), dir).unwrap_err().message.contains("unknown class"));
        let e = partition_count(&func("AutoPartitionByLong", &[("mapFile", "missing.txt")]), dir).unwrap_err();
        assert!(e.message.contains("cannot read") && e.map_file.is_some(), "{e}");
    }
}
