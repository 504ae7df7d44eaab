//! The typed configuration model: what schema.xml, server.xml and rule.xml say, with Mycat's defaults
//! applied and `$a-b` ranges expanded. Built by the loaders in this module, read by everything else.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    pub schemas: Vec<Schema>,
    pub data_nodes: Vec<DataNode>,
    pub data_hosts: Vec<DataHost>,
    pub system: System,
    pub users: Vec<User>,
    pub firewall: Firewall,
    pub table_rules: Vec<TableRule>,
    pub functions: Vec<Function>,
    /// The folder holding schema.xml and server.xml.
    pub config_dir: PathBuf,
    /// The folder holding rule.xml and its map files.
    pub rules_dir: PathBuf,
    /// cdc.xml: the change queue's sinks and feeds (empty when the file is absent).
    pub cdc: Cdc,
}

impl Config {
    /// Where state that outlives the process is kept: server.xml `stateDir` (relative to the conf
    /// dir), else `state` beside the conf dir.
    pub fn state_dir(&self) -> PathBuf {
        match &self.system.state_dir {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => self.config_dir.join(p),
            None => self.config_dir.join("..").join("state"),
        }
    }
    /// Where the XA coordinator log lives (`XARecoveryLogBaseDir`, else the state dir).
    pub fn xa_log_dir(&self) -> PathBuf {
        match &self.system.xa_log_dir {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => self.config_dir.join(p),
            None => self.state_dir(),
        }
    }
    pub fn schema(&self, name: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }
    pub fn data_node(&self, name: &str) -> Option<&DataNode> {
        self.data_nodes.iter().find(|d| d.name == name)
    }
    pub fn data_host(&self, name: &str) -> Option<&DataHost> {
        self.data_hosts.iter().find(|d| d.name == name)
    }
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
    pub fn table_rule(&self, name: &str) -> Option<&TableRule> {
        self.table_rules.iter().find(|r| r.name == name)
    }
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub name: String,
    pub check_sql_schema: bool,
    pub sql_max_limit: i64,
    /// Default dataNode: unconfigured tables (or everything, when there are no tables) go here.
    pub data_node: Option<String>,
    pub random_data_node: Option<String>,
    /// Top-level tables; ER children hang below their parents.
    pub tables: Vec<Table>,
    /// `cache="true|false"` (shardcat's): whether the result cache keeps reads of this schema's tables
    /// (a table's own setting wins; default: yes, when the cache is on).
    pub cache: Option<bool>,
    pub line: usize,
}

impl Schema {
    /// Whether the result cache may keep reads of `table` here (its setting, else the schema's).
    pub fn cacheable(&self, table: &str) -> bool {
        self.table(table).and_then(|t| t.cache).or(self.cache).unwrap_or(true)
    }

    /// Finds a configured table (top-level or child at any depth), case-insensitively.
    pub fn table(&self, name: &str) -> Option<&Table> {
        fn find<'a>(ts: &'a [Table], name: &str) -> Option<&'a Table> {
            for t in ts {
                if t.name.eq_ignore_ascii_case(name) {
                    return Some(t);
                }
                if let Some(c) = find(&t.children, name) {
                    return Some(c);
                }
            }
            None
        }
        find(&self.tables, name)
    }

    /// Every table, parents before their children.
    pub fn all_tables(&self) -> Vec<&Table> {
        fn walk<'a>(ts: &'a [Table], out: &mut Vec<&'a Table>) {
            for t in ts {
                out.push(t);
                walk(&t.children, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.tables, &mut out);
        out
    }

    /// Every dataNode this schema can touch, in first-seen order.
    pub fn all_data_nodes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for dn in self.data_node.iter().chain(self.random_data_node.iter()) {
            out.push(dn);
        }
        for t in self.all_tables() {
            for dn in &t.data_nodes {
                if !out.contains(&dn.as_str()) {
                    out.push(dn);
                }
            }
        }
        out.dedup();
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKind {
    /// Rows spread over the dataNodes by a tableRule.
    Sharded { rule: String },
    /// Every dataNode holds every row.
    Global,
    /// ER child: rows live with the parent row that `join_key` references (`parent_key` in the parent).
    Child { parent: String, join_key: String, parent_key: String },
    /// No rule, not global: one dataNode (or, as Mycat does, all listed nodes).
    Unsharded,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub kind: TableKind,
    pub data_nodes: Vec<String>,
    pub primary_key: Option<String>,
    pub auto_increment: bool,
    pub need_add_limit: bool,
    pub rule_required: bool,
    pub sub_tables: Vec<String>,
    pub children: Vec<Table>,
    /// `cache="true|false"` on `<table>`/`<childTable>` (a child without one takes its parent's).
    pub cache: Option<bool>,
    pub line: usize,
}

impl Table {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            TableKind::Sharded { .. } => "sharded",
            TableKind::Global => "global",
            TableKind::Child { .. } => "child",
            TableKind::Unsharded => "default",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DataNode {
    pub name: String,
    pub data_host: String,
    pub database: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct DataHost {
    pub name: String,
    pub max_con: u32,
    pub min_con: u32,
    pub balance: u8,
    pub balance_type: u8,
    pub write_type: u8,
    pub switch_type: i8,
    pub slave_threshold: i64,
    pub temp_read_host_available: bool,
    pub db_type: String,
    pub db_driver: String,
    pub max_retry_count: u32,
    pub not_switch: bool,
    pub heartbeat: String,
    pub connection_init_sql: Option<String>,
    /// shardcat extension: promote a read-only replica when it becomes the writeHost.
    pub promote_replica: bool,
    pub write_hosts: Vec<WriteHost>,
    pub line: usize,
}

/// TLS to a backend host (`ssl="true"` and `sslCa`, shardcat's): the connection is encrypted and the
/// server's certificate must be signed by one of these CA certificates and name the url's host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTls {
    /// `sslCa` as written.
    pub ca: String,
    /// The file's PEM text, read when the configuration is loaded (a reload reads it again).
    pub ca_pem: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct WriteHost {
    pub host: String,
    pub url: String,
    pub user: String,
    pub password: String,
    pub tls: Option<HostTls>,
    pub weight: u32,
    pub read_hosts: Vec<ReadHost>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct ReadHost {
    pub host: String,
    pub url: String,
    pub user: String,
    pub password: String,
    pub tls: Option<HostTls>,
    pub weight: u32,
    pub line: usize,
}

/// server.xml `<system>`: the properties shardcat uses, typed, plus every property as written.
#[derive(Debug, Clone)]
pub struct System {
    pub server_port: u16,
    pub manager_port: u16,
    /// HTTP port: /metrics, /health, /registry (server.xml `httpPort`, shardcat's own).
    pub http_port: u16,
    /// Statements slower than this (ms) are kept for `show @@sql.slow` and logged (`sqlSlowTime`).
    pub sql_slow_time_ms: u64,
    pub bind_ip: String,
    pub charset: String,
    pub idle_timeout_ms: u64,
    pub auth_timeout_ms: u64,
    pub data_node_heartbeat_period_ms: u64,
    pub data_node_idle_check_period_ms: u64,
    pub sql_execute_timeout_s: u64,
    pub tx_isolation: u8,
    pub fake_mysql_version: Option<String>,
    pub max_prepared_stmt_count: u32,
    pub non_password_login: bool,
    pub handle_distributed_transactions: u8,
    /// Bytes a cross-shard merge may hold in memory (`mergeMemoryLimit`, shardcat's; 256 MiB).
    pub merge_memory_limit: usize,
    /// Mycat's global sequences (`sequenceHandlerType`, or 1.6's `sequnceHandlerType`): 0 local file,
    /// 1 a MYCAT_SEQUENCE table, 2 local snowflake.
    pub sequence_handler_type: u8,
    /// Largest client packet accepted (`maxPacketSize`; shardcat's default 64 MiB).
    pub max_packet_size: usize,
    /// After a session writes, its reads wait for replicas that applied the write (`readYourWrites`,
    /// shardcat's; on by default; a user's own `readYourWrites` property overrides it).
    pub read_your_writes: bool,
    /// TLS for clients (`tlsCert`, `tlsKey`: PEM files, relative to the conf dir): CLIENT_SSL is
    /// offered when both are set.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Worker threads of the runtime (`processors`, Mycat's name; default: one per core).
    pub processors: Option<usize>,
    /// How long a statement inside a transaction may wait before the distributed deadlock detector
    /// looks for a cycle across servers, and how often it looks (`deadlockCheckPeriod`, shardcat's;
    /// ms, default 100; 0 turns it off).
    pub deadlock_check_period_ms: u64,
    /// On SIGTERM, how long statements may run to their end before they are interrupted
    /// (`shutdownTimeout`, shardcat's; ms, default 30 s).
    pub shutdown_timeout_ms: u64,
    /// The result cache's memory (`resultCacheSize`, bytes, K/M/G accepted; 0 = off, the default),
    /// its largest entry (`resultCacheMaxEntry`, default 1 MiB) and how far behind a dataHost's binlog
    /// reader may be for its tables to be served from it (`resultCacheMaxLag`, ms, default 1000).
    pub result_cache_size: u64,
    pub result_cache_max_entry: u64,
    pub result_cache_max_lag_ms: u64,
    /// Server id of the first binlog reader (`binlogServerId`; the next dataHosts' readers count up
    /// from it; default 1 000 000 + a per-process offset).
    pub binlog_server_id: Option<u32>,
    /// Where the proxy keeps what must survive a restart: the change queue's positions (`stateDir`,
    /// shardcat's; default `state` beside the conf dir, see `Config::state_dir`).
    pub state_dir: Option<std::path::PathBuf>,
    /// How a transaction that wrote on several dataNodes commits (`transactionMode`, shardcat's):
    /// two-phase by XA (the default) or one node after the other (`local`). `SET xa=on|off` (Mycat)
    /// chooses per session.
    pub xa: bool,
    /// The XA coordinator log: `XARecoveryLogBaseDir` (relative to the conf dir; default the state
    /// dir) and `XARecoveryLogBaseName` (Mycat's names; default `tmlog-<service port>`, so that two
    /// proxies beside one conf dir never share one).
    pub xa_log_dir: Option<std::path::PathBuf>,
    pub xa_log_name: Option<String>,
    pub properties: BTreeMap<String, String>,
}

impl Default for System {
    fn default() -> Self {
        System {
            server_port: 8066,
            manager_port: 9066,
            http_port: 9067,
            sql_slow_time_ms: 100,
            bind_ip: "0.0.0.0".into(),
            charset: "utf8".into(),
            idle_timeout_ms: 1_800_000,
            auth_timeout_ms: 15_000,
            data_node_heartbeat_period_ms: 10_000,
            data_node_idle_check_period_ms: 300_000,
            sql_execute_timeout_s: 300,
            tx_isolation: 3,
            fake_mysql_version: None,
            max_prepared_stmt_count: 16_382,
            non_password_login: false,
            handle_distributed_transactions: 0,
            max_packet_size: 64 << 20,
            deadlock_check_period_ms: 100,
            shutdown_timeout_ms: 30_000,
            result_cache_size: 0,
            result_cache_max_entry: 1 << 20,
            result_cache_max_lag_ms: 1000,
            binlog_server_id: None,
            state_dir: None,
            xa: true,
            xa_log_dir: None,
            xa_log_name: None,
            merge_memory_limit: 256 << 20,
            sequence_handler_type: 0,
            read_your_writes: true,
            tls_cert: None,
            tls_key: None,
            processors: None,
            properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct User {
    pub name: String,
    pub password: String,
    pub using_decrypt: bool,
    /// Logical schemas the user may use; empty means every schema.
    pub schemas: Vec<String>,
    pub default_schema: Option<String>,
    pub read_only: bool,
    /// The user's own `readYourWrites` (overrides the system property).
    pub read_your_writes: Option<bool>,
    /// Logs in only over TLS (`requireSecureTransport`).
    pub require_secure_transport: bool,
    pub benchmark: u32,
    pub default_account: bool,
    /// May log in on the manager port (`<property name="manager">true</property>`).
    pub manager: bool,
    pub privileges: Option<Privileges>,
    pub line: usize,
}

impl User {
    pub fn may_use(&self, schema: &str) -> bool {
        self.schemas.is_empty() || self.schemas.iter().any(|s| s.eq_ignore_ascii_case(schema))
    }
}

/// `<privileges check="true">`: dml bits per schema and table (INSERT, UPDATE, SELECT, DELETE).
#[derive(Debug, Clone, Default)]
pub struct Privileges {
    pub check: bool,
    pub schemas: Vec<SchemaPrivilege>,
}

#[derive(Debug, Clone, Default)]
pub struct SchemaPrivilege {
    pub name: String,
    pub dml: [bool; 4],
    pub tables: Vec<(String, [bool; 4])>,
}

#[derive(Debug, Clone, Default)]
pub struct Firewall {
    /// (host pattern, users) pairs; empty = every host may connect.
    pub white_hosts: Vec<(String, Vec<String>)>,
    pub blacklist_check: bool,
    pub blacklist: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct TableRule {
    pub name: String,
    pub column: String,
    pub algorithm: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub class: String,
    pub properties: BTreeMap<String, String>,
    pub line: usize,
}

/// cdc.xml: where changes go (sinks) and which tables' changes go there (feeds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cdc {
    pub sinks: Vec<CdcSink>,
    pub feeds: Vec<Feed>,
}

impl Cdc {
    pub fn feed(&self, name: &str) -> Option<&Feed> {
        self.feeds.iter().find(|f| f.name == name)
    }
    pub fn sink(&self, name: &str) -> Option<&CdcSink> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CdcSink {
    pub name: String,
    pub kind: SinkKind,
    pub line: usize,
}

/// A broker and where in it each event goes; `{schema}` and `{table}` in the names are the event's
/// logical schema and table.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    /// NATS JetStream: `subject`, in stream `stream` (created when missing, over `subject`'s pattern).
    Nats { url: String, subject: String, stream: Option<String> },
    /// RabbitMQ: `exchange` (a durable topic exchange, declared) with `routing_key`.
    RabbitMq { url: String, exchange: String, routing_key: String },
    /// Redis streams: XADD to `stream`, trimmed to about `max_len` entries.
    Redis { url: String, stream: String, max_len: Option<u64> },
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Nats { .. } => "nats",
            SinkKind::RabbitMq { .. } => "rabbitmq",
            SinkKind::Redis { .. } => "redis",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// A Debezium-style envelope: op, before, after, key, source, ts_ms, id, position.
    Debezium,
    /// Canal's flatMessage JSON.
    Canal,
}

/// One stream of changes: the rows of `tables` (None = every table) of `schema`.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub name: String,
    pub schema: String,
    pub tables: Option<Vec<String>>,
    /// None: served only by the HTTP endpoint.
    pub sink: Option<String>,
    pub format: FeedFormat,
    pub snapshot: bool,
    pub line: usize,
}

impl Feed {
    /// Whether the feed carries `table`'s changes (names compare as Mycat's routing does).
    pub fn covers(&self, table: &str) -> bool {
        self.tables.as_ref().is_none_or(|ts| ts.iter().any(|t| t.eq_ignore_ascii_case(table)))
    }
}
