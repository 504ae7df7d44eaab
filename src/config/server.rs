//! Reads server.xml: `<system>` properties (typed where shardcat uses them, warned about when unknown),
//! users with schemas, readOnly and privileges, and the firewall.

use std::path::Path;

use super::model::*;
use super::xml::Element;
use super::{Attrs, Diagnostics};

pub struct ServerXml {
    pub system: System,
    pub users: Vec<User>,
    pub firewall: Firewall,
}

/// Properties Mycat 1.6 accepts in `<system>` (both spellings of the sequence handler).
const KNOWN_SYSTEM: &[&str] = &[
    "serverPort",
    "managerPort",
    "httpPort",
    "sqlSlowTime",
    "bindIp",
    "charset",
    "processors",
    "processorExecutor",
    "idleTimeout",
    "authTimeout",
    "dataNodeIdleCheckPeriod",
    "dataNodeHeartbeatPeriod",
    "sequenceHandlerType",
    "sequnceHandlerType",
    "sequnceHandlerPattern",
    "sequenceHanlderClass",
    "defaultSqlParser",
    "useSqlStat",
    "useGlobleTableCheck",
    "handleDistributedTransactions",
    "useOffHeapForMerge",
    "memoryPageSize",
    "spillsFileBufferSize",
    "systemReserveMemorySize",
    "useStreamOutput",
    "maxStringLiteralLength",
    "sqlExecuteTimeout",
    "txIsolation",
    "strictTxIsolation",
    "subqueryRelationshipCheck",
    "parallExecute",
    "nonePasswordLogin",
    "ignoreUnknownCommand",
    "useHandshakeV10",
    "removeGraveAccent",
    "fakeMySQLVersion",
    "useZKSwitch",
    "maxPreparedStmtCount",
    "processorBufferPoolType",
    "checkTableConsistency",
    "checkTableConsistencyPeriod",
    "XARecoveryLogBaseDir",
    "XARecoveryLogBaseName",
    "clusterHeartbeatUser",
    "clusterHeartbeatPass",
    "clusterHeartbeatPeriod",
    "clusterHeartbeatTimeout",
    "clusterHeartbeatRetry",
    "clusterHeartbeatLog",
    "mutiNodeLimitType",
    "mutiNodePatchSize",
    "frontWriteQueueSize",
    "serverBacklog",
    "enableFlowControl",
    "flowControlStartThreshold",
    "flowControlStopThreshold",
    "frontSocketSoRcvbuf",
    "frontSocketSoSndbuf",
    "frontSocketNoDelay",
    "backSocketSoRcvbuf",
    "backSocketSoSndbuf",
    "backSocketNoDelay",
    "processorBufferChunk",
    "processorBufferPool",
    "processorBufferLocalPercent",
    "bufferPoolPageSize",
    "bufferPoolChunkSize",
    "bufferPoolPageNumber",
    "packetHeaderSize",
    "maxPacketSize",
    "catletClassCheckSeconds",
    "sqlRecordCount",
    "sqlInterceptor",
    "sqlInterceptorType",
    "sqlInterceptorFile",
    "dataNodeSortedTempDir",
    "mycatNodeId",
    "defaultMaxLimit",
    "charsetIndex",
    "timerExecutor",
    "managerExecutor",
    "backendProcessors",
    "backendProcessorExecutor",
    "useCompression",
    "recordTxn",
    "transactionLogBaseDir",
    "transactionLogBaseName",
    "transactionRatateSize",
    "checkTableConsistencyRestrict",
    "useCostTimeStat",
    "maxCostStatSize",
    "costSamplePercent",
    "useThreadUsageStat",
    "dataNodeHeartbeatTimeout",
    "idleTimeoutOfSqlStat",
    "sqlStatMaxSize",
    "orderBySql",
    "strictTxIsolationSelect",
    "mergeMemoryLimit",
    "readYourWrites",
    "tlsCert",
    "tlsKey",
    "deadlockCheckPeriod",
    "shutdownTimeout",
    "resultCacheSize",
    "resultCacheMaxEntry",
    "resultCacheMaxLag",
    "binlogServerId",
    "stateDir",
    "transactionMode",
];

/// A size with an optional K, M or G suffix (powers of 1024), as `resultCacheSize` takes it.
pub fn size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, unit) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c.to_ascii_uppercase()),
        _ => (v, ' '),
    };
    let n: u64 = digits.trim().parse().ok()?;
    let mult = match unit {
        ' ' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub fn read(path: &Path, root: &Element, d: &mut Diagnostics) -> ServerXml {
    let mut out = ServerXml { system: System::default(), users: vec![], firewall: Firewall::default() };
    if root.name != "server" {
        d.error(path, root.line, format!("root element is <{}>, expected <mycat:server>", root.name));
        return out;
    }
    for el in &root.children {
        match el.name.as_str() {
            "system" => read_system(path, el, &mut out.system, d),
            "user" => out.users.push(read_user(path, el, d)),
            "firewall" => out.firewall = read_firewall(path, el, d),
            "cluster" => {}
            other => d.warn(path, el.line, format!("unknown element <{other}> ignored")),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for u in &out.users {
        if !seen.insert(u.name.clone()) {
            d.error(path, u.line, format!("duplicate <user name=\"{}\">", u.name));
        }
    }
    out
}

fn read_system(path: &Path, el: &Element, sys: &mut System, d: &mut Diagnostics) {
    for p in &el.children {
        if p.name != "property" {
            d.warn(path, p.line, format!("unknown element <{}> in <system> ignored", p.name));
            continue;
        }
        let Some(name) = p.attr("name") else {
            d.error(path, p.line, "<property> without a name");
            continue;
        };
        let v = p.text.trim();
        if !KNOWN_SYSTEM.contains(&name) {
            d.warn(path, p.line, format!("unknown system property '{name}' ignored"));
        }
        let num = |d: &mut Diagnostics| -> Option<u64> {
            match v.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    d.error(path, p.line, format!("system property '{name}': '{v}' is not a number"));
                    None
                }
            }
        };
        match name {
            "serverPort" => sys.server_port = num(d).unwrap_or(8066).min(65535) as u16,
            "managerPort" => sys.manager_port = num(d).unwrap_or(9066).min(65535) as u16,
            "httpPort" => sys.http_port = num(d).unwrap_or(9067).min(65535) as u16,
            "sqlSlowTime" => sys.sql_slow_time_ms = num(d).unwrap_or(100),
            "bindIp" => sys.bind_ip = v.to_string(),
            "charset" => sys.charset = v.to_string(),
            "idleTimeout" => sys.idle_timeout_ms = num(d).unwrap_or(sys.idle_timeout_ms),
            "authTimeout" => sys.auth_timeout_ms = num(d).unwrap_or(sys.auth_timeout_ms),
            "dataNodeHeartbeatPeriod" => {
                sys.data_node_heartbeat_period_ms = num(d).unwrap_or(sys.data_node_heartbeat_period_ms)
            }
            "dataNodeIdleCheckPeriod" => {
                sys.data_node_idle_check_period_ms = num(d).unwrap_or(sys.data_node_idle_check_period_ms)
            }
            "sqlExecuteTimeout" => sys.sql_execute_timeout_s = num(d).unwrap_or(sys.sql_execute_timeout_s),
            "txIsolation" => sys.tx_isolation = num(d).unwrap_or(3).min(8) as u8,
            "fakeMySQLVersion" => sys.fake_mysql_version = Some(v.to_string()).filter(|s| !s.is_empty()),
            "maxPreparedStmtCount" => {
                sys.max_prepared_stmt_count = num(d).unwrap_or(16_382).min(u32::MAX as u64) as u32
            }
            "nonePasswordLogin" => sys.non_password_login = v == "1",
            "mergeMemoryLimit" => sys.merge_memory_limit = num(d).unwrap_or(256 << 20).max(1024) as usize,
            "sequenceHandlerType" | "sequnceHandlerType" => {
                sys.sequence_handler_type = num(d).unwrap_or(0).min(u64::from(u8::MAX)) as u8
            }
            "maxPacketSize" => sys.max_packet_size = num(d).unwrap_or(64 << 20).clamp(1024, 1 << 30) as usize,
            "readYourWrites" => sys.read_your_writes = flag(v),
            "tlsCert" => sys.tls_cert = Some(v.to_string()).filter(|s| !s.is_empty()),
            "tlsKey" => sys.tls_key = Some(v.to_string()).filter(|s| !s.is_empty()),
            "deadlockCheckPeriod" => sys.deadlock_check_period_ms = num(d).unwrap_or(100),
            "shutdownTimeout" => sys.shutdown_timeout_ms = num(d).unwrap_or(30_000),
            "processors" => sys.processors = num(d).map(|n| n.clamp(1, 1024) as usize),
            "resultCacheSize" | "resultCacheMaxEntry" => match size(v) {
                Some(n) if name == "resultCacheSize" => sys.result_cache_size = n,
                Some(n) => sys.result_cache_max_entry = n.max(1),
                None => d.error(
                    path,
                    p.line,
                    format!("system property '{name}': '{v}' is not a size (a number, K, M or G)"),
                ),
            },
            "resultCacheMaxLag" => sys.result_cache_max_lag_ms = num(d).unwrap_or(1000),
            "binlogServerId" => match num(d) {
                Some(n) if (1..=u32::MAX as u64).contains(&n) => sys.binlog_server_id = Some(n as u32),
                Some(_) => d.error(
                    path,
                    p.line,
                    format!("system property '{name}': '{v}' is not a server id (1 to 4294967295)"),
                ),
                None => {}
            },
            "stateDir" => sys.state_dir = Some(std::path::PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty()),
            "transactionMode" => match v.to_ascii_lowercase().as_str() {
                "xa" => sys.xa = true,
                "local" => sys.xa = false,
                _ => d.error(path, p.line, format!("system property '{name}': '{v}' is not xa or local")),
            },
            "XARecoveryLogBaseDir" => {
                sys.xa_log_dir = Some(std::path::PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty())
            }
            "XARecoveryLogBaseName" => {
                if v.is_empty() || v.contains(['/', '\\']) {
                    d.error(path, p.line, format!("system property '{name}': '{v}' is not a file name"));
                } else {
                    sys.xa_log_name = Some(v.to_string());
                }
            }
            "handleDistributedTransactions" => sys.handle_distributed_transactions = num(d).unwrap_or(0).min(2) as u8,
            _ => {}
        }
        sys.properties.insert(name.to_string(), v.to_string());
    }
}

/// A boolean property: `true`/`1` (any case) is on.
fn flag(v: &str) -> bool {
    v.eq_ignore_ascii_case("true") || v == "1"
}

fn read_user(path: &Path, el: &Element, d: &mut Diagnostics) -> User {
    let mut a = Attrs::new(path, el);
    let mut u = User { name: a.required("name", d), line: el.line, ..Default::default() };
    u.default_account = a.bool("defaultAccount", false);
    a.finish(d);
    for p in &el.children {
        match p.name.as_str() {
            "property" => {
                let name = p.attr("name").unwrap_or_default();
                let v = p.text.trim();
                match name {
                    "password" => u.password = v.to_string(),
                    "schemas" => {
                        u.schemas = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
                    }
                    "defaultSchema" => u.default_schema = Some(v.to_string()).filter(|s| !s.is_empty()),
                    "readOnly" => u.read_only = v.eq_ignore_ascii_case("true"),
                    "readYourWrites" => u.read_your_writes = Some(flag(v)),
                    "requireSecureTransport" => u.require_secure_transport = flag(v),
                    "benchmark" => u.benchmark = v.parse().unwrap_or(0),
                    "usingDecrypt" => u.using_decrypt = v == "1",
                    "manager" => u.manager = flag(v),
                    other => d.warn(path, p.line, format!("unknown property '{other}' of user '{}' ignored", u.name)),
                }
            }
            "privileges" => u.privileges = Some(read_privileges(path, p, d)),
            other => d.warn(path, p.line, format!("unknown element <{other}> in <user> ignored")),
        }
    }
    if u.using_decrypt {
        d.error(path, el.line, format!("user '{}': usingDecrypt=1 (Mycat-encrypted passwords) is not supported; write the password in plain text", u.name));
    }
    u
}

fn dml_bits(path: &Path, line: usize, s: Option<&str>, d: &mut Diagnostics) -> [bool; 4] {
    let s = s.unwrap_or("1111");
    if s.len() != 4 || !s.chars().all(|c| c == '0' || c == '1') {
        d.error(path, line, format!("dml=\"{s}\" must be four 0/1 digits (insert, update, select, delete)"));
        return [true; 4];
    }
    let b: Vec<bool> = s.chars().map(|c| c == '1').collect();
    [b[0], b[1], b[2], b[3]]
}

fn read_privileges(path: &Path, el: &Element, d: &mut Diagnostics) -> Privileges {
    let mut p = Privileges { check: el.attr("check").is_some_and(|v| v.eq_ignore_ascii_case("true")), schemas: vec![] };
    for s in el.children_named("schema") {
        let mut sp = SchemaPrivilege {
            name: s.attr("name").unwrap_or_default().to_string(),
            dml: dml_bits(path, s.line, s.attr("dml"), d),
            tables: vec![],
        };
        for t in s.children_named("table") {
            sp.tables.push((t.attr("name").unwrap_or_default().to_string(), dml_bits(path, t.line, t.attr("dml"), d)));
        }
        p.schemas.push(sp);
    }
    p
}

fn read_firewall(path: &Path, el: &Element, d: &mut Diagnostics) -> Firewall {
    let mut f = Firewall::default();
    for c in &el.children {
        match c.name.as_str() {
            "whitehost" => {
                for h in c.children_named("host") {
                    let users = h
                        .attr("user")
                        .unwrap_or_default()
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    f.white_hosts.push((h.attr("host").unwrap_or_default().to_string(), users));
                }
            }
            "blacklist" => {
                f.blacklist_check = c.attr("check").is_some_and(|v| v.eq_ignore_ascii_case("true"));
                for p in c.children_named("property") {
                    f.blacklist.insert(p.attr("name").unwrap_or_default().to_string(), p.text.clone());
                }
                if f.blacklist_check {
                    d.warn(path, c.line, "the SQL blacklist (Druid WallFilter) is not enforced by shardcat");
                }
            }
            other => d.warn(path, c.line, format!("unknown element <{other}> in <firewall> ignored")),
        }
    }
    f
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_take_k_m_g() {
        assert_eq!(super::size("512"), Some(512));
        assert_eq!(super::size("64K"), Some(64 << 10));
        assert_eq!(super::size("256m"), Some(256 << 20));
        assert_eq!(super::size("2G"), Some(2 << 30));
        assert_eq!(super::size("2T"), None);
        assert_eq!(super::size("x"), None);
    }
}
