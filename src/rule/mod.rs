//! Sharding rule functions: every Mycat 1.6 built-in behind one trait, one file per function, built
//! from rule.xml's `<function>` for a table; bit-exact placement, exact-or-all range answers.

pub mod auto_partition_by_long;
pub mod java;
pub mod latest_month_partion;
pub mod mapfile;
pub mod partition_by_crc32_pre_slot;
pub mod partition_by_date;
pub mod partition_by_file_map;
pub mod partition_by_hash_mod;
pub mod partition_by_hot_date;
pub mod partition_by_jump_consistent_hash;
pub mod partition_by_long;
pub mod partition_by_mod;
pub mod partition_by_month;
pub mod partition_by_murmur_hash;
pub mod partition_by_pattern;
pub mod partition_by_prefix_pattern;
pub mod partition_by_range_date_hash;
pub mod partition_by_range_mod;
pub mod partition_by_string;
pub mod partition_direct_by_sub_string;
pub mod util;

use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// A problem with a function: in its map file (file and line given) or in rule.xml itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub map_file: Option<(PathBuf, usize)>,
    pub message: String,
}

impl RuleError {
    pub fn at(path: &Path, line: usize, message: impl Into<String>) -> Self {
        RuleError { map_file: Some((path.to_path_buf(), line)), message: message.into() }
    }
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

/// One sharding function, configured. Values are the text Mycat would see: numbers as written,
/// strings without their quotes. NULL never reaches a function (the router decides about NULL).
pub trait PartitionFunction: Send + Sync + std::fmt::Debug {
    /// The partition index of a value; `Ok(None)` when the value has no partition; `Err` when the
    /// function cannot read the value (the message says why).
    fn calculate(&self, value: &str) -> Result<Option<usize>, String>;

    /// The partitions rows with `lo <= value <= hi` may be on (either end open). `None` = all.
    /// Never a subset of the truth: when it cannot be computed exactly, the answer is `None`.
    fn calculate_range(&self, _lo: Option<&str>, _hi: Option<&str>) -> Option<Vec<usize>> {
        None
    }

    /// How many partitions the function yields, when that is fixed (the config check uses it).
    fn partition_count(&self) -> Option<usize>;

    /// Where a value without a home goes, if the function has a default node.
    fn default_node(&self) -> Option<usize> {
        None
    }
}

/// What a function needs from its surroundings when it is built for one table.
pub struct BuildCtx {
    pub rules_dir: PathBuf,
    pub table_nodes: usize,
    /// `ruledata/<rule>_<SCHEMA>_<TABLE>.properties` for functions that persist state (crc32slot).
    pub ruledata: Option<PathBuf>,
}

impl BuildCtx {
    /// A map file named by `mapFile` (or the function's default), with its path.
    pub fn map_file(&self, p: &util::Props, default_file: &str) -> Result<(PathBuf, Vec<mapfile::Entry>), RuleError> {
        let name = p.get("mapFile").filter(|s| !s.is_empty()).unwrap_or(default_file);
        let path = self.rules_dir.join(name);
        match mapfile::read(&path) {
            Ok(e) => Ok((path, e)),
            Err(m) => Err(RuleError { map_file: Some((path, 0)), message: format!("function '{}': {m}", p.name) }),
        }
    }

    /// The `timeZone` property, default the host's zone.
    pub fn zone(&self, p: &util::Props) -> Result<java::Zone, RuleError> {
        match p.get("timeZone").filter(|s| !s.is_empty()) {
            Some(z) => java::Zone::parse(z).map_err(|e| RuleError::from(format!("function '{}': {e}", p.name))),
            None => Ok(java::Zone::Local),
        }
    }

    #[cfg(test)]
    pub fn for_tests() -> BuildCtx {
        BuildCtx { rules_dir: PathBuf::from("/nonexistent"), table_nodes: 2, ruledata: None }
    }
}

/// Builds rule.xml's `<function>` `f` for a table with `ctx.table_nodes` dataNodes.
pub fn build(f: &Function, ctx: &BuildCtx) -> Result<Arc<dyn PartitionFunction>, RuleError> {
    let class = class_name(&f.class)
        .ok_or_else(|| RuleError::from(format!("function '{}': unknown class '{}'", f.name, f.class)))?;
    let p = util::Props { name: &f.name, map: &f.properties };
    let built: Arc<dyn PartitionFunction> = match class {
        "PartitionByLong" => Arc::new(partition_by_long::PartitionByLong::new(&p)?),
        "PartitionByString" => Arc::new(partition_by_string::PartitionByString::new(&p)?),
        "PartitionByMod" => Arc::new(partition_by_mod::PartitionByMod::new(&p)?),
        "PartitionByHashMod" => Arc::new(partition_by_hash_mod::PartitionByHashMod::new(&p)?),
        "AutoPartitionByLong" => Arc::new(auto_partition_by_long::AutoPartitionByLong::new(&p, ctx)?),
        "PartitionByFileMap" => Arc::new(partition_by_file_map::PartitionByFileMap::new(&p, ctx)?),
        "PartitionByMurmurHash" => Arc::new(partition_by_murmur_hash::PartitionByMurmurHash::new(&p, ctx)?),
        "PartitionByCRC32PreSlot" => Arc::new(partition_by_crc32_pre_slot::PartitionByCRC32PreSlot::new(&p, ctx)?),
        "PartitionByJumpConsistentHash" => {
            Arc::new(partition_by_jump_consistent_hash::PartitionByJumpConsistentHash::new(&p)?)
        }
        "PartitionByDate" => Arc::new(partition_by_date::PartitionByDate::new(&p, ctx)?),
        "PartitionByMonth" => Arc::new(partition_by_month::PartitionByMonth::new(&p, ctx, false)?),
        "PartitionByMonthAndHistory" => Arc::new(partition_by_month::PartitionByMonth::new(&p, ctx, true)?),
        "LatestMonthPartion" => Arc::new(latest_month_partion::LatestMonthPartion::new(&p)?),
        "PartitionByHotDate" => Arc::new(partition_by_hot_date::PartitionByHotDate::new(&p, ctx)?),
        "PartitionByRangeDateHash" => Arc::new(partition_by_range_date_hash::PartitionByRangeDateHash::new(&p, ctx)?),
        "PartitionByPattern" => Arc::new(partition_by_pattern::PartitionByPattern::new(&p, ctx)?),
        "PartitionByPrefixPattern" => Arc::new(partition_by_prefix_pattern::PartitionByPrefixPattern::new(&p, ctx)?),
        "PartitionByRangeMod" => Arc::new(partition_by_range_mod::PartitionByRangeMod::new(&p, ctx)?),
        "PartitionDirectBySubString" => Arc::new(partition_direct_by_sub_string::PartitionDirectBySubString::new(&p)?),
        other => return Err(format!("function '{}': class {other} is not implemented", f.name).into()),
    };
    Ok(built)
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
    fn builds_by_class_name_with_or_without_prefix() {
        let ctx = BuildCtx::for_tests();
        let m = build(&func("io.mycat.route.function.PartitionByMod", &[("count", "3")]), &ctx).unwrap();
        assert_eq!(m.partition_count(), Some(3));
        let long =
            build(&func("PartitionByLong", &[("partitionCount", "8"), ("partitionLength", "128")]), &ctx).unwrap();
        assert_eq!(long.partition_count(), None);
        assert!(build(&func("PartitionByLong", &[("partitionCount", "8"), ("partitionLength", "100")]), &ctx).is_err());
        assert!(build(&func("com.example.Custom", &[]), &ctx).unwrap_err().message.contains("unknown class"));
        let e = build(&func("AutoPartitionByLong", &[("mapFile", "missing.txt")]), &ctx).unwrap_err();
        assert!(e.message.contains("cannot read") && e.map_file.is_some(), "{e}");
        for class in KNOWN_CLASSES {
            assert!(class_name(&format!("io.mycat.route.function.{class}")).is_some());
        }
    }
}
