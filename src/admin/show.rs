//! The manager port's `show @@…` answers: one table per command, with Mycat 1.6's column names, built
//! from the runtime snapshot, the registry, the session registry and the counters.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::command::{Show, HELP};
use crate::backend::{DataHostSet, Member};
use crate::frontend::Shared;

/// A result: column names (true: numeric) and rows of text cells.
pub struct Table {
    pub cols: Vec<(std::borrow::Cow<'static, str>, bool)>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    fn new(cols: &[(&'static str, bool)]) -> Self {
        Table { cols: cols.iter().map(|(n, b)| (std::borrow::Cow::Borrowed(*n), *b)).collect(), rows: Vec::new() }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(Some).collect());
    }
}

const T: bool = false;
const N: bool = true;

pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `host:port` of a JDBC-less Mycat url (`127.0.0.1:3307`).
fn host_port(url: &str) -> (String, String) {
    match url.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (url.to_string(), "3306".to_string()),
    }
}

/// Every host of a dataHost: (member, is a writeHost).
fn members(set: &DataHostSet) -> impl Iterator<Item = (&Member, bool)> {
    set.writers.iter().map(|m| (m, true)).chain(set.readers.iter().flatten().map(|m| (m, false)))
}

fn uptime(secs: u64) -> String {
    format!("{}d {}h {}m {}s", secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60)
}

/// Resident memory of this process (bytes), from /proc.
async fn rss() -> u64 {
    let statm = tokio::fs::read_to_string("/proc/self/statm").await.unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

async fn mem_total() -> u64 {
    let info = tokio::fs::read_to_string("/proc/meminfo").await.unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// The answer to `show`; `Err`: a message naming what does not exist.
pub async fn show(shared: &Shared, what: &Show) -> Result<Table, String> {
    let rt = shared.rt();
    let cfg = &rt.config;
    let mut t;
    match what {
        Show::Help => {
            t = Table::new(&[("STATEMENT", T), ("DESCRIPTION", T)]);
            for (s, d) in HELP {
                t.row(vec![s.to_string(), d.to_string()]);
            }
        }
        Show::Version => {
            t = Table::new(&[("VERSION", T)]);
            t.row(vec![shared.server_version.clone()]);
        }
        Show::Server => {
            t = Table::new(&[
                ("UPTIME", T),
                ("USED_MEMORY", N),
                ("TOTAL_MEMORY", N),
                ("MAX_MEMORY", N),
                ("RELOAD_TIME", N),
                ("ROLLBACK_TIME", N),
                ("CHARSET", T),
                ("STATUS", T),
            ]);
            let h = shared.history.lock().clone();
            let used = rss().await;
            t.row(vec![
                uptime(shared.started.elapsed().as_secs()),
                used.to_string(),
                used.to_string(),
                mem_total().await.to_string(),
                h.reloaded.map(millis).unwrap_or(0).to_string(),
                h.rolled_back.map(millis).unwrap_or(0).to_string(),
                cfg.system.charset.clone(),
                if shared.online.load(Ordering::Relaxed) { "ON" } else { "OFF" }.to_string(),
            ]);
        }
        Show::Database => {
            t = Table::new(&[("DATABASE", T)]);
            for s in &cfg.schemas {
                t.row(vec![s.name.clone()]);
            }
        }
        Show::DataNode(schema) => {
            let names: Vec<String> = match schema {
                Some(s) => {
                    let sc = cfg.schema(s).ok_or_else(|| format!("Unknown schema '{s}'"))?;
                    let mut v: Vec<String> = sc.all_data_nodes().into_iter().map(str::to_string).collect();
                    v.sort();
                    v.dedup();
                    v
                }
                None => cfg.data_nodes.iter().map(|n| n.name.clone()).collect(),
            };
            t = Table::new(&[
                ("NAME", T),
                ("DATHOST", T),
                ("INDEX", N),
                ("TYPE", T),
                ("ACTIVE", N),
                ("IDLE", N),
                ("SIZE", N),
                ("EXECUTE", N),
                ("TOTAL_TIME", N),
                ("MAX_TIME", N),
                ("MAX_SQL", N),
                ("RECOVERY_TIME", N),
            ]);
            for name in names {
                let Ok(target) = rt.backends.node(&name) else { continue };
                let w = target.host.writer();
                t.row(vec![
                    name.clone(),
                    format!("{}/{}", target.data_host, target.database),
                    target.host.current_index().to_string(),
                    target.host.cfg.db_type.clone(),
                    w.pool.in_use().to_string(),
                    w.pool.idle_count().to_string(),
                    w.pool.max_con.to_string(),
                    target.meter.executed().to_string(),
                    target.meter.total_ms().to_string(),
                    target.meter.max_ms().to_string(),
                    "0".into(),
                    "-1".into(),
                ]);
            }
        }
        Show::DataSource(node) => {
            let nodes: Vec<&str> = match node {
                Some(n) => {
                    let dn = cfg.data_node(n).ok_or_else(|| format!("Unknown dataNode '{n}'"))?;
                    vec![dn.name.as_str()]
                }
                None => cfg.data_nodes.iter().map(|n| n.name.as_str()).collect(),
            };
            t = Table::new(&[
                ("DATANODE", T),
                ("NAME", T),
                ("TYPE", T),
                ("HOST", T),
                ("PORT", N),
                ("W/R", T),
                ("ACTIVE", N),
                ("IDLE", N),
                ("SIZE", N),
                ("EXECUTE", N),
                ("READ_LOAD", N),
                ("WRITE_LOAD", N),
            ]);
            for n in nodes {
                let Ok(target) = rt.backends.node(n) else { continue };
                for (m, writer) in members(&target.host) {
                    let (host, port) = host_port(&m.pool.endpoint.addr);
                    let execs = m.pool.checkouts.load(Ordering::Relaxed);
                    t.row(vec![
                        n.to_string(),
                        m.name.clone(),
                        target.host.cfg.db_type.clone(),
                        host,
                        port,
                        if writer { "W" } else { "R" }.into(),
                        m.pool.in_use().to_string(),
                        m.pool.idle_count().to_string(),
                        m.pool.max_con.to_string(),
                        execs.to_string(),
                        if writer { 0 } else { execs }.to_string(),
                        if writer { execs } else { 0 }.to_string(),
                    ]);
                }
            }
        }
        Show::SynStatus => {
            t = Table::new(&[
                ("name", T),
                ("host", T),
                ("port", N),
                ("Master_Host", T),
                ("Master_Port", N),
                ("Master_Use", T),
                ("Seconds_Behind_Master", N),
                ("Slave_IO_Running", T),
                ("Slave_SQL_Running", T),
                ("Slave_IO_State", T),
                ("Connect_Retry", N),
                ("Last_IO_Error", T),
                ("Last_SQL_Error", T),
                ("Last_SQL_Errno", N),
            ]);
            for set in &rt.backends.hosts {
                for (m, _) in members(set) {
                    let f = m.health.snapshot();
                    let Some(src) = f.source.clone() else { continue };
                    let (host, port) = host_port(&m.pool.endpoint.addr);
                    let yes = |b: bool| if b { "Yes" } else { "No" }.to_string();
                    t.rows.push(vec![
                        Some(m.name.clone()),
                        Some(host),
                        Some(port),
                        Some(src.host),
                        Some(src.port),
                        Some(src.user),
                        f.lag.map(|l| l.to_string()),
                        Some(yes(f.io_running)),
                        Some(yes(f.sql_running)),
                        Some(src.io_state),
                        Some(src.connect_retry),
                        Some(src.last_io_error),
                        Some(src.last_sql_error),
                        Some(src.last_sql_errno),
                    ]);
                }
            }
        }
        Show::Heartbeat => {
            t = Table::new(&[
                ("NAME", T),
                ("TYPE", T),
                ("HOST", T),
                ("PORT", N),
                ("RS_CODE", N),
                ("RETRY", N),
                ("STATUS", T),
                ("TIMEOUT", N),
                ("EXECUTE_TIME", T),
                ("LAST_ACTIVE_TIME", T),
                ("STOP", T),
            ]);
            let period = std::time::Duration::from_millis(cfg.system.data_node_heartbeat_period_ms);
            let timeout = crate::backend::heartbeat::probe_timeout(period).as_millis();
            for set in &rt.backends.hosts {
                let stopped = set.heartbeat_paused().is_some();
                for (m, _) in members(set) {
                    let f = m.health.snapshot();
                    let (host, port) = host_port(&m.pool.endpoint.addr);
                    // Mycat's codes: 1 ok, -1 error, 0 not checked yet
                    let code = match (f.checked, f.alive && f.failures == 0) {
                        (None, _) => 0,
                        (Some(_), true) => 1,
                        (Some(_), false) => -1,
                    };
                    let last = f
                        .checked_at
                        .map(|t| chrono::DateTime::<chrono::Local>::from(t).format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    let ms = f.probe_ms.to_string();
                    t.row(vec![
                        m.name.clone(),
                        set.cfg.db_type.clone(),
                        host,
                        port,
                        code.to_string(),
                        f.failures.to_string(),
                        "idle".into(),
                        timeout.to_string(),
                        format!("{ms},{ms},{ms}"),
                        last,
                        stopped.to_string(),
                    ]);
                }
            }
        }
        Show::Binlog => {
            t = Table::new(&[
                ("DATAHOST", T),
                ("HOST", T),
                ("GTID", T),
                ("FILE", T),
                ("POS", N),
                ("LAG_MS", N),
                ("STATE", T),
                ("TRANSACTIONS", N),
                ("LAST_ERROR", T),
            ]);
            let now = std::time::Instant::now();
            for set in &rt.backends.hosts {
                let f = set.binlog.snapshot();
                // unknown lag (not streaming, no recent poll) shows as -1
                let lag = set
                    .binlog
                    .lag(now, crate::backend::binlog::POLL_STALE)
                    .map_or(-1, |l| l.as_millis().min(i64::MAX as u128) as i64);
                t.row(vec![
                    set.cfg.name.clone(),
                    f.host,
                    f.gtid,
                    f.file,
                    f.pos.to_string(),
                    lag.to_string(),
                    f.state.name().to_string(),
                    f.transactions.to_string(),
                    f.last_error,
                ]);
            }
        }
        Show::Connection => {
            t = Table::new(&[
                ("PROCESSOR", T),
                ("ID", N),
                ("HOST", T),
                ("PORT", N),
                ("LOCAL_PORT", N),
                ("USER", T),
                ("SCHEMA", T),
                ("CHARSET", T),
                ("NET_IN", N),
                ("NET_OUT", N),
                ("ALIVE_TIME(S)", N),
                ("RECV_BUFFER", N),
                ("SEND_QUEUE", N),
                ("txlevel", T),
                ("autocommit", T),
            ]);
            for (id, a) in shared.sessions() {
                let (host, port) = host_port(&a.host);
                let alive = SystemTime::now().duration_since(a.connected).map(|d| d.as_secs()).unwrap_or(0);
                t.row(vec![
                    "Processor0".into(),
                    id.to_string(),
                    host,
                    port,
                    a.local_port.to_string(),
                    a.user.clone(),
                    a.db.clone().unwrap_or_default(),
                    a.charset.clone(),
                    a.net_in.to_string(),
                    a.net_out.to_string(),
                    alive.to_string(),
                    "0".into(),
                    "0".into(),
                    a.isolation.clone(),
                    a.autocommit.to_string(),
                ]);
            }
        }
        Show::ConnectionSql => {
            t = Table::new(&[
                ("ID", N),
                ("HOST", T),
                ("USER", T),
                ("SCHEMA", T),
                ("START_TIME", N),
                ("EXECUTE_TIME", N),
                ("SQL", T),
            ]);
            for (id, a) in shared.sessions() {
                let (host, _) = host_port(&a.host);
                let running = a.command.as_ref().filter(|c| c.first() == Some(&0x03));
                let sql = running.map(|c| String::from_utf8_lossy(&c[1..]).into_owned()).unwrap_or_default();
                let took = if a.command.is_some() { a.since.elapsed().as_millis() as u64 } else { 0 };
                t.row(vec![
                    id.to_string(),
                    host,
                    a.user.clone(),
                    a.db.clone().unwrap_or_default(),
                    millis(SystemTime::now() - a.since.elapsed()).to_string(),
                    took.to_string(),
                    sql,
                ]);
            }
        }
        Show::Backend => {
            t = Table::new(&[
                ("processor", T),
                ("id", N),
                ("mysqlId", N),
                ("host", T),
                ("port", N),
                ("l_port", N),
                ("net_in", N),
                ("net_out", N),
                ("life", N),
                ("closed", T),
                ("run", T),
                ("borrowed", T),
                ("SEND_QUEUE", N),
                ("schema", T),
                ("charset", T),
                ("txlevel", T),
                ("autocommit", T),
                ("tx_readonly", T),
            ]);
            let mut n = 0u64;
            for set in &rt.backends.hosts {
                for (m, _) in members(set) {
                    let (host, port) = host_port(&m.pool.endpoint.addr);
                    for c in m.pool.idle_snapshot() {
                        n += 1;
                        t.row(vec![
                            "Processor0".into(),
                            n.to_string(),
                            c.thread_id.to_string(),
                            host.clone(),
                            port.clone(),
                            c.local_port.to_string(),
                            "0".into(),
                            "0".into(),
                            c.life_secs.to_string(),
                            "false".into(),
                            "false".into(),
                            "false".into(),
                            "0".into(),
                            c.schema,
                            c.charset,
                            String::new(),
                            c.autocommit.to_string(),
                            "false".into(),
                        ]);
                    }
                }
            }
        }
        Show::Session => {
            t = Table::new(&[("SESSION", N), ("DN_COUNT", N), ("DN_LIST", T)]);
            for (id, a) in shared.sessions() {
                t.row(vec![id.to_string(), a.held.len().to_string(), a.held.join(",")]);
            }
        }
        Show::Processor => {
            t = Table::new(&[
                ("NAME", T),
                ("NET_IN", N),
                ("NET_OUT", N),
                ("REACT_COUNT", N),
                ("R_QUEUE", N),
                ("W_QUEUE", N),
                ("FREE_BUFFER", N),
                ("TOTAL_BUFFER", N),
                ("BU_PERCENT", N),
                ("BU_WARNS", N),
                ("FC_COUNT", N),
                ("BC_COUNT", N),
            ]);
            let m = tokio::runtime::Handle::current().metrics();
            let sessions = shared.sessions();
            let (net_in, net_out) = sessions.iter().fold((0, 0), |(i, o), (_, a)| (i + a.net_in, o + a.net_out));
            let backends: usize = rt.backends.pools().map(|p| p.in_use() + p.idle_count()).sum();
            for w in 0..m.num_workers() {
                // the sessions' traffic and connections are the runtime's, not one worker's: on the first row
                let first = w == 0;
                t.row(vec![
                    format!("Processor{w}"),
                    if first { net_in } else { 0 }.to_string(),
                    if first { net_out } else { 0 }.to_string(),
                    m.worker_park_unpark_count(w).to_string(),
                    "0".into(),
                    "0".into(),
                    "0".into(),
                    "0".into(),
                    "0".into(),
                    "0".into(),
                    if first { sessions.len() } else { 0 }.to_string(),
                    if first { backends } else { 0 }.to_string(),
                ]);
            }
        }
        Show::ThreadPool => {
            t = Table::new(&[
                ("NAME", T),
                ("POOL_SIZE", N),
                ("ACTIVE_COUNT", N),
                ("TASK_QUEUE_SIZE", N),
                ("COMPLETED_TASK", N),
                ("TOTAL_TASK", N),
            ]);
            let m = tokio::runtime::Handle::current().metrics();
            let total = shared.questions.load(Ordering::Relaxed);
            let running = shared.sessions().iter().filter(|(_, a)| a.command.is_some()).count() as u64;
            t.row(vec![
                "Workers".into(),
                m.num_workers().to_string(),
                m.num_alive_tasks().to_string(),
                m.global_queue_depth().to_string(),
                total.saturating_sub(running).to_string(),
                total.to_string(),
            ]);
        }
        Show::Command => {
            let values = shared.stats.commands.values();
            t = Table::new(&[("PROCESSOR", T)]);
            t.cols.extend(values.iter().map(|(name, _)| (std::borrow::Cow::Borrowed(*name), N)));
            let mut row = vec!["Processor0".to_string()];
            row.extend(values.iter().map(|(_, v)| v.to_string()));
            t.row(row);
        }
        Show::SysParam => {
            t = Table::new(&[("PARAM_NAME", T), ("PARAM_VALUE", T), ("PARAM_DESCR", T)]);
            let s = &cfg.system;
            let params: Vec<(&str, String, &str)> = vec![
                ("serverPort", s.server_port.to_string(), "Service port of shardcat"),
                ("managerPort", s.manager_port.to_string(), "Manager port of shardcat"),
                ("httpPort", s.http_port.to_string(), "HTTP port: /metrics, /health, /registry"),
                ("bindIp", s.bind_ip.clone(), "Address the ports listen on"),
                ("charset", s.charset.clone(), "Default character set"),
                ("processors", s.processors.map(|p| p.to_string()).unwrap_or_default(), "Worker threads"),
                ("idleTimeout", s.idle_timeout_ms.to_string(), "Idle client connections close after (ms)"),
                ("authTimeout", s.auth_timeout_ms.to_string(), "Login must finish within (ms)"),
                ("dataNodeHeartbeatPeriod", s.data_node_heartbeat_period_ms.to_string(), "Heartbeat period (ms)"),
                ("dataNodeIdleCheckPeriod", s.data_node_idle_check_period_ms.to_string(), "Backend idle check (ms)"),
                ("sqlExecuteTimeout", s.sql_execute_timeout_s.to_string(), "Backend statement timeout (s)"),
                ("txIsolation", s.tx_isolation.to_string(), "Default transaction isolation"),
                ("maxPreparedStmtCount", s.max_prepared_stmt_count.to_string(), "Prepared statements per session"),
                ("sqlSlowTime", shared.stats.slow.threshold().as_millis().to_string(), "Slow statement threshold (ms)"),
                ("mergeMemoryLimit", s.merge_memory_limit.to_string(), "Memory of one cross-shard merge (bytes)"),
                ("maxPacketSize", s.max_packet_size.to_string(), "Largest client packet (bytes)"),
                ("shutdownTimeout", s.shutdown_timeout_ms.to_string(), "Drain time at shutdown (ms)"),
            ];
            for (n, v, d) in params {
                t.row(vec![n.to_string(), v, d.to_string()]);
            }
        }
        Show::White => {
            t = Table::new(&[("IP", T), ("USER", T)]);
            for (ip, users) in &cfg.firewall.white_hosts {
                t.row(vec![ip.clone(), users.join(",")]);
            }
        }
        Show::Cdc => {
            t = Table::new(&[
                ("FEED", T),
                ("SINK", T),
                ("STATE", T),
                ("POSITION", T),
                ("LAG_MS", N),
                ("EVENTS", N),
                ("ERRORS", N),
                ("LAST_ERROR", T),
            ]);
            for row in shared.cdc.rows(&shared.rt()) {
                t.row(row);
            }
        }
        Show::Xa => {
            t = Table::new(&[("XID", T), ("STATE", T), ("DATANODE", T), ("HOST", T)]);
            let rt = shared.rt();
            for (gtrid, nodes) in shared.xa.pending() {
                for n in nodes {
                    let host = rt.backends.node(&n).map(|t| t.host.writer().name.clone()).unwrap_or_default();
                    t.row(vec![gtrid.clone(), "COMMIT OWED".into(), n, host]);
                }
            }
            let foreign = shared.xa.foreign.lock().clone();
            for f in foreign.into_values().flatten() {
                let xid = format!("{}:{}:{}", f.format, f.gtrid, f.bqual);
                t.row(vec![xid, "PREPARED, NOT OURS".into(), String::new(), f.host]);
            }
        }
        Show::CacheTables => {
            t = Table::new(&[("SCHEMA", T), ("TABLE", T), ("EPOCH", N), ("PROXY", N), ("BINLOG", N), ("RESET", N)]);
            for (l, m) in shared.cache.moves() {
                let (schema, table) = match l {
                    crate::config::placement::Logical::Table { schema, table } => (schema, table),
                    crate::config::placement::Logical::Schema(s) => (s, "*".to_string()),
                };
                t.row(vec![
                    schema,
                    table,
                    m.epoch.to_string(),
                    m.proxy.to_string(),
                    m.binlog.to_string(),
                    m.reset.to_string(),
                ]);
            }
        }
        Show::Cache => {
            t = Table::new(&[
                ("CACHE", T),
                ("MAX", N),
                ("CUR", N),
                ("ACCESS", N),
                ("HIT", N),
                ("PUT", N),
                ("LAST_ACCESS", N),
                ("LAST_PUT", N),
            ]);
            let (cur, max) = shared.parse_cache.size();
            let st = &shared.parse_cache.stats;
            t.row(vec![
                "SQLParseCache".into(),
                max.to_string(),
                cur.to_string(),
                st.access.load(Ordering::Relaxed).to_string(),
                st.hit.load(Ordering::Relaxed).to_string(),
                st.put.load(Ordering::Relaxed).to_string(),
                "0".into(),
                "0".into(),
            ]);
            let (cur, max) = {
                let c = shared.parent_cache.lock();
                (c.len(), c.cap().get())
            };
            t.row(vec![
                "ER_SQL2PARENTID".into(),
                max.to_string(),
                cur.to_string(),
                "0".into(),
                "0".into(),
                "0".into(),
                "0".into(),
                "0".into(),
            ]);
            // the result cache in bytes (MAX: resultCacheSize, CUR: held now)
            let store = &shared.cache.store;
            let (_, bytes) = store.usage();
            let (hits, misses) = (store.hits.load(Ordering::Relaxed), store.misses.load(Ordering::Relaxed));
            t.row(vec![
                "ResultCache".into(),
                store.max_size.to_string(),
                bytes.to_string(),
                (hits + misses).to_string(),
                hits.to_string(),
                store.puts.load(Ordering::Relaxed).to_string(),
                store.last_access.load(Ordering::Relaxed).to_string(),
                store.last_put.load(Ordering::Relaxed).to_string(),
            ]);
        }
        Show::SqlSlow => {
            t = Table::new(&[
                ("USER", T),
                ("DATASOURCE", T),
                ("START_TIME", N),
                ("EXECUTE_TIME", N),
                ("SQL", T),
                ("IP", T),
                ("SCHEMA", T),
            ]);
            for s in shared.stats.slow.entries() {
                t.row(vec![
                    s.user,
                    String::new(),
                    millis(s.start).to_string(),
                    s.took.as_millis().to_string(),
                    s.sql,
                    s.ip,
                    s.schema,
                ]);
            }
        }
        Show::TimeCurrent => {
            t = Table::new(&[("TIMESTAMP", N)]);
            t.row(vec![millis(SystemTime::now()).to_string()]);
        }
        Show::TimeStartup => {
            t = Table::new(&[("TIMESTAMP", N)]);
            let up = shared.started.elapsed();
            t.row(vec![millis(SystemTime::now() - up).to_string()]);
        }
    }
    Ok(t)
}
