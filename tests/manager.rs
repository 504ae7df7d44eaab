//! The manager port with real clients (the mariadb CLI, PyMySQL, mysql_async): every command's
//! columns as Mycat 1.6 names them, reload through `shardcat reload` (added table routable, broken
//! config refused with file:line while the old one serves), SIGHUP, rollback, switch, kill, offline.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use mysql_async::prelude::*;

const DATANODE: &[&str] = &[
    "NAME",
    "DATHOST",
    "INDEX",
    "TYPE",
    "ACTIVE",
    "IDLE",
    "SIZE",
    "EXECUTE",
    "TOTAL_TIME",
    "MAX_TIME",
    "MAX_SQL",
    "RECOVERY_TIME",
];

const DATASOURCE: &[&str] = &[
    "DATANODE",
    "NAME",
    "TYPE",
    "HOST",
    "PORT",
    "W/R",
    "ACTIVE",
    "IDLE",
    "SIZE",
    "EXECUTE",
    "READ_LOAD",
    "WRITE_LOAD",
];

/// Columns of every `show` command, exactly as ../shared/reference/mycat.md §5 lists them.
const COLUMNS: &[(&str, &[&str])] = &[
    ("show @@help", &["STATEMENT", "DESCRIPTION"]),
    ("show @@version", &["VERSION"]),
    (
        "show @@server",
        &["UPTIME", "USED_MEMORY", "TOTAL_MEMORY", "MAX_MEMORY", "RELOAD_TIME", "ROLLBACK_TIME", "CHARSET", "STATUS"],
    ),
    ("show @@database", &["DATABASE"]),
    ("show @@datanode", DATANODE),
    ("show @@datanode where schema = demo", DATANODE),
    ("show @@datasource", DATASOURCE),
    ("show @@datasource where dataNode = dn1", DATASOURCE),
    (
        "show @@datasource.synstatus",
        &[
            "name",
            "host",
            "port",
            "Master_Host",
            "Master_Port",
            "Master_Use",
            "Seconds_Behind_Master",
            "Slave_IO_Running",
            "Slave_SQL_Running",
            "Slave_IO_State",
            "Connect_Retry",
            "Last_IO_Error",
            "Last_SQL_Error",
            "Last_SQL_Errno",
        ],
    ),
    (
        "show @@heartbeat",
        &[
            "NAME",
            "TYPE",
            "HOST",
            "PORT",
            "RS_CODE",
            "RETRY",
            "STATUS",
            "TIMEOUT",
            "EXECUTE_TIME",
            "LAST_ACTIVE_TIME",
            "STOP",
        ],
    ),
    (
        "show @@connection",
        &[
            "PROCESSOR",
            "ID",
            "HOST",
            "PORT",
            "LOCAL_PORT",
            "USER",
            "SCHEMA",
            "CHARSET",
            "NET_IN",
            "NET_OUT",
            "ALIVE_TIME(S)",
            "RECV_BUFFER",
            "SEND_QUEUE",
            "txlevel",
            "autocommit",
        ],
    ),
    ("show @@connection.sql", &["ID", "HOST", "USER", "SCHEMA", "START_TIME", "EXECUTE_TIME", "SQL"]),
    (
        "show @@backend",
        &[
            "processor",
            "id",
            "mysqlId",
            "host",
            "port",
            "l_port",
            "net_in",
            "net_out",
            "life",
            "closed",
            "run",
            "borrowed",
            "SEND_QUEUE",
            "schema",
            "charset",
            "txlevel",
            "autocommit",
            "tx_readonly",
        ],
    ),
    ("show @@session", &["SESSION", "DN_COUNT", "DN_LIST"]),
    (
        "show @@processor",
        &[
            "NAME",
            "NET_IN",
            "NET_OUT",
            "REACT_COUNT",
            "R_QUEUE",
            "W_QUEUE",
            "FREE_BUFFER",
            "TOTAL_BUFFER",
            "BU_PERCENT",
            "BU_WARNS",
            "FC_COUNT",
            "BC_COUNT",
        ],
    ),
    ("show @@threadpool", &["NAME", "POOL_SIZE", "ACTIVE_COUNT", "TASK_QUEUE_SIZE", "COMPLETED_TASK", "TOTAL_TASK"]),
    (
        "show @@command",
        &[
            "PROCESSOR",
            "INIT_DB",
            "QUERY",
            "STMT_PREPARE",
            "STMT_EXECUTE",
            "STMT_CLOSE",
            "PING",
            "KILL",
            "QUIT",
            "OTHER",
        ],
    ),
    ("show @@sysparam", &["PARAM_NAME", "PARAM_VALUE", "PARAM_DESCR"]),
    ("show @@white", &["IP", "USER"]),
    ("show @@cache", &["CACHE", "MAX", "CUR", "ACCESS", "HIT", "PUT", "LAST_ACCESS", "LAST_PUT"]),
    ("show @@sql.slow", &["USER", "DATASOURCE", "START_TIME", "EXECUTE_TIME", "SQL", "IP", "SCHEMA"]),
    // shardcat's own (show @@cache.tables has rows only with the cache on: tests/cache.rs reads it)
    ("show @@binlog", &["DATAHOST", "HOST", "GTID", "FILE", "POS", "LAG_MS", "STATE", "TRANSACTIONS", "LAST_ERROR"]),
    ("show @@time.current", &["TIMESTAMP"]),
    ("show @@time.startup", &["TIMESTAMP"]),
];

/// The demo config plus a passthrough schema `sw` on a dataHost with two writeHosts (the stack's two
/// independent primaries), in a folder of its own that tests rewrite.
fn conf_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shardcat-manager-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schema = with_switch_host(&std::fs::read_to_string(root().join("config/schema.xml")).unwrap());
    std::fs::write(dir.join("schema.xml"), schema).unwrap();
    let server = std::fs::read_to_string(root().join("config/server.xml"))
        .unwrap()
        .replace(
            "<property name=\"schemas\">demo,passthru</property>",
            "<property name=\"schemas\">demo,passthru,sw</property>",
        )
        .replace(
            "<property name=\"dataNodeHeartbeatPeriod\">10000</property>",
            "<property name=\"dataNodeHeartbeatPeriod\">500</property>",
        )
        .replace(
            "\t<user name=\"app\"",
            "\t<firewall><whitehost><host host=\"127.0.0.*\" user=\"app,admin,reader\"/></whitehost></firewall>\n\t<user name=\"app\"",
        );
    std::fs::write(dir.join("server.xml"), server).unwrap();
    dir
}

/// The tests share one proxy and change its state (slow threshold, offline): one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn proxy() -> &'static (Proxy, PathBuf) {
    static P: OnceLock<(Proxy, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        stack();
        let dir = conf_dir("main");
        (Proxy::start(&dir, Some(&root().join("rules"))), dir)
    })
}

/// `mariadb` on the manager port: (header, rows) of a batch result, or the client's error text.
fn cli(port: u16, user: &str, pass: &str, cmd: &str) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let out = Command::new("mariadb")
        .args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}"), &format!("-p{pass}")])
        .args(["--batch", "-e", cmd])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>());
    let header = lines.next().unwrap_or_default();
    Ok((header, lines.collect()))
}

fn admin(cmd: &str) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    cli(proxy().0.manager_port, "admin", "admin", cmd)
}

fn shardcat(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shardcat")).args(args).output().expect("run shardcat");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn col(header: &[String], rows: &[Vec<String>], row: usize, name: &str) -> String {
    let i = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    rows[row][i].clone()
}

#[test]
fn every_show_command_has_mycats_columns_in_the_cli_and_pymysql() {
    let _one = SERIAL.blocking_lock();
    let (p, _) = proxy();
    // rows in every table (the CLI prints no header for an empty result): a client session running
    // a statement, a slow statement
    let mut busy = Command::new("mariadb")
        .args([
            "--protocol=TCP",
            "-h127.0.0.1",
            &format!("-P{}", p.port),
            "-uapp",
            "-papp",
            "demo",
            "-e",
            "SELECT SLEEP(3)",
        ])
        .spawn()
        .expect("mariadb");
    std::thread::sleep(Duration::from_millis(500));
    admin("reload @@sqlslow=0").unwrap();
    cli(p.port, "app", "app", "SELECT 1").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for (cmd, cols) in COLUMNS {
        let (header, _) = admin(cmd).unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert_eq!(header, *cols, "mariadb CLI: {cmd}");
    }
    let mut args: Vec<String> =
        vec![root().join("tests/clients/manager_check.py").display().to_string(), p.manager_port.to_string()];
    args.extend(["admin".to_string(), "admin".to_string()]);
    args.extend(COLUMNS.iter().map(|(c, _)| c.to_string()));
    args.push("show @@nothing".into());
    let out = Command::new("python3").args(&args).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for (cmd, cols) in COLUMNS {
        let got: Vec<String> = v[cmd]["columns"]
            .as_array()
            .unwrap_or_else(|| panic!("{cmd}: {}", v[cmd]))
            .iter()
            .map(|c| c.as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(got, *cols, "PyMySQL: {cmd}");
    }
    assert_eq!(
        v["show @@nothing"]["error"][0], 1064,
        "an unknown command is an error naming it: {}",
        v["show @@nothing"]
    );
    assert!(v["show @@nothing"]["error"][1].as_str().unwrap_or_default().contains("show @@nothing"));
    // the rows say what runs: both schemas, every dataNode, the two replicas' replication
    let (_, dbs) = admin("show @@database").unwrap();
    assert_eq!(dbs, vec![vec!["demo".to_string()], vec!["passthru".to_string()], vec!["sw".to_string()]]);
    let (h, rows) = admin("show @@datasource where dataNode = dn1").unwrap();
    assert_eq!(rows.len(), 2, "p1 and its replica r1");
    assert_eq!(
        (col(&h, &rows, 0, "HOST"), col(&h, &rows, 0, "PORT"), col(&h, &rows, 0, "W/R")),
        ("127.0.0.1".into(), "3307".into(), "W".into())
    );
    let (h, rows) = admin("show @@datasource.synstatus").unwrap();
    assert!(!rows.is_empty() && col(&h, &rows, 0, "Master_Port") == "3307", "{rows:?}");
    // manager commands are not SQL on the service port, and SQL is no manager command
    assert!(admin("select 1").is_err());
    let _ = busy.wait();
}

#[tokio::test]
async fn login_is_for_manager_users_and_the_service_port_ignores_manager_commands() {
    let _one = SERIAL.lock().await;
    let (p, _) = proxy();
    let refused = cli(p.manager_port, "app", "app", "show @@version").unwrap_err();
    assert!(refused.contains("1045"), "app is no manager user: {refused}");
    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo"))).await.unwrap();
    let e = c.query_drop("show @@datasource").await.unwrap_err();
    assert!(server_error(&e).is_some(), "the service port answers manager commands with an error: {e}");
}

#[tokio::test]
async fn connections_sessions_kill_slow_log_and_offline() {
    let _one = SERIAL.lock().await;
    let (p, _) = proxy();
    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo"))).await.unwrap();
    let id = c.id();
    c.query_drop("CREATE TABLE IF NOT EXISTS mgr_t (id INT)").await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    let _: Vec<i64> = c.query("SELECT id FROM mgr_t").await.unwrap();
    let (h, rows) = admin("show @@connection").unwrap();
    let me = rows.iter().position(|r| r[1] == id.to_string()).unwrap_or_else(|| panic!("{id} in {rows:?}"));
    assert_eq!((col(&h, &rows, me, "USER"), col(&h, &rows, me, "SCHEMA")), ("app".into(), "demo".into()));
    assert!(col(&h, &rows, me, "NET_IN").parse::<u64>().unwrap() > 0);
    let (_, sessions) = admin("show @@session").unwrap();
    let s = sessions.iter().find(|r| r[0] == id.to_string()).expect("the session");
    assert_eq!(s[1], "1", "one dataNode held by the open transaction: {s:?}");
    // slow statements: threshold from the manager port, cleared per schema
    admin("reload @@sqlslow=0").unwrap();
    c.query_drop("SELECT SLEEP(0.01)").await.unwrap_or_else(|e| panic!("SLEEP: {e}"));
    let (h, slow) = admin("show @@sql.slow").unwrap();
    assert!((0..slow.len()).any(|i| col(&h, &slow, i, "SQL") == "SELECT SLEEP(0.01)"), "{slow:?}");
    admin("reload @@sqlslow=100000").unwrap();
    admin("clear @@slow where schema = demo").unwrap();
    let (_, slow) = admin("show @@sql.slow").unwrap();
    assert!(slow.iter().all(|r| r[6] != "demo"), "{slow:?}");
    // kill @@connection ends the session (its transaction rolled back)
    admin(&format!("kill @@connection {id}")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.query_drop("SELECT 1").await.is_err(), "killed");
    // offline: health checks fail, statements still run; online again
    let mut d = mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo"))).await.unwrap();
    d.query_drop("show mycat_status").await.unwrap();
    admin("offline").unwrap();
    assert!(d.query_drop("show mycat_status").await.is_err(), "an HAProxy check drains the node");
    assert!(d.ping().await.is_err(), "COM_PING fails while offline");
    let v: Option<i64> = d.query_first("SELECT 7").await.unwrap();
    assert_eq!(v, Some(7), "work goes on while offline");
    let (h, rows) = admin("show @@server").unwrap();
    assert_eq!(col(&h, &rows, 0, "STATUS"), "OFF");
    admin("online").unwrap();
    d.query_drop("show mycat_status").await.unwrap();
    d.ping().await.unwrap();
}

#[tokio::test]
async fn switch_datasource_moves_writes_and_stop_heartbeat_pauses_it() {
    let _one = SERIAL.lock().await;
    let (p, dir) = proxy();
    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("sw"))).await.unwrap();
    assert_eq!(port_of(&mut c).await, 3307);
    let e = admin("switch @@datasource nosuch:1").unwrap_err();
    assert!(e.contains("nosuch"), "{e}");
    let e = admin("switch @@datasource host1:1").unwrap_err();
    assert!(e.contains("host1"), "one writeHost: refused by name: {e}");
    let failovers = |text: &str| {
        text.lines().find_map(|l| l.strip_prefix("shardcat_failovers_total{datahost=\"host_sw\"} ")).map(str::to_string)
    };
    let before = failovers(&http_get(p.http_port, "/metrics").await.1);
    admin("switch @@datasource host_sw:1").unwrap();
    assert_eq!(port_of(&mut c).await, 3309, "writes moved to writeHost 1");
    let after = failovers(&http_get(p.http_port, "/metrics").await.1);
    assert_eq!((before.as_deref(), after.as_deref()), (Some("0"), Some("1")), "failovers on /metrics");
    let (h, rows) = admin("show @@datanode where schema = sw").unwrap();
    assert_eq!(col(&h, &rows, 0, "INDEX"), "1");
    // persisted as a failover is
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(dir.join("dnindex.properties")).unwrap_or_default().contains("host_sw=1") {
        assert!(t0.elapsed() < Duration::from_secs(5), "dnindex.properties not written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the old writeHost is fenced: switching back to it is refused until it replicates again
    let e = admin("switch @@datasource host_sw:0").unwrap_err();
    assert!(e.contains("fenced"), "{e}");
    admin("stop @@heartbeat host_sw:30").unwrap();
    let (h, rows) = admin("show @@heartbeat").unwrap();
    let sw = (0..rows.len()).filter(|i| col(&h, &rows, *i, "NAME").starts_with("sw")).collect::<Vec<_>>();
    assert!(!sw.is_empty() && sw.iter().all(|i| col(&h, &rows, *i, "STOP") == "true"), "{rows:?}");
    assert!(sw.iter().all(|i| col(&h, &rows, *i, "RS_CODE") == "1"));
}

async fn port_of(c: &mut mysql_async::Conn) -> i64 {
    c.query_first::<i64, _>("SELECT @@port").await.unwrap().unwrap_or(0)
}

/// Writes `schema.xml` of `dir` with `f` applied to the current text.
fn edit(dir: &Path, f: impl Fn(String) -> String) {
    let p = dir.join("schema.xml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, f(text)).unwrap();
}

#[tokio::test]
async fn reload_adds_a_table_refuses_a_broken_config_and_rolls_back() {
    stack();
    let dir = conf_dir("reload");
    let p = Proxy::start(&dir, Some(&root().join("rules")));
    let manager = format!("127.0.0.1:{}", p.manager_port);
    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo"))).await.unwrap();
    c.query_drop("DROP TABLE IF EXISTS reload_g").await.unwrap();
    // a global table added to schema.xml: routable right after `shardcat reload` returns
    edit(&dir, |s| {
        s.replace("<table name=\"region\"", "<table name=\"reload_g\" primaryKey=\"id\" type=\"global\" dataNode=\"dn1,dn2\"/>\n\t\t<table name=\"region\"")
    });
    let (code, out) = shardcat(&["reload", "--manager", &manager, "--config", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("schema demo: table reload_g added"), "{out}");
    c.query_drop("CREATE TABLE reload_g (id INT PRIMARY KEY)").await.unwrap();
    c.query_drop("INSERT INTO reload_g VALUES (1), (2)").await.unwrap();
    for port in [PRIMARY1, PRIMARY2] {
        let mut d = mysql_async::Conn::new(opts(
            port,
            "proxy",
            "proxy",
            Some(if port == PRIMARY1 { "shardcat_1" } else { "shardcat_2" }),
        ))
        .await
        .unwrap();
        let n: Option<i64> = d.query_first("SELECT COUNT(*) FROM reload_g").await.unwrap();
        assert_eq!(n, Some(2), "a global table is written on every node ({port})");
    }
    // a broken schema.xml: exit 1 with file:line, and the running config keeps serving
    edit(&dir, |s| {
        s.replace(
            "dataNode=\"dn1,dn2\"/>\n\t\t<table name=\"region\"",
            "dataNode=\"dn1,dn9\"/>\n\t\t<table name=\"region\"",
        )
    });
    let (code, out) = shardcat(&["reload", "--all", "--manager", &manager, "--user", "admin", "--password", "admin"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("schema.xml:") && out.contains("dn9"), "file:line naming the problem: {out}");
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM reload_g").await.unwrap();
    assert_eq!(n, Some(2), "the old config serves on");
    // unreachable manager port: exit 2
    let (code, _) = shardcat(&["reload", "--manager", "127.0.0.1:1"]);
    assert_eq!(code, 2);
    // SIGHUP reloads everything: the table is gone from the config again
    edit(&dir, |s| {
        s.replace("\t\t<table name=\"reload_g\" primaryKey=\"id\" type=\"global\" dataNode=\"dn1,dn9\"/>\n", "")
    });
    p.signal("HUP");
    let t0 = std::time::Instant::now();
    loop {
        let (_, rows) = cli(p.manager_port, "admin", "admin", "show @@server").unwrap();
        if rows[0][4] != "0"
            && p.log_text().contains("SIGHUP")
            && p.log_text().matches("configuration reloaded").count() >= 2
        {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "SIGHUP did not reload: {}", p.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // rollback @@config brings back the config from before the last reload (with reload_g)
    let (code, out) = shardcat(&["status", "--manager", &manager, "--config", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("show @@datasource") && out.contains("show @@heartbeat") && out.contains("3307"), "{out}");
    cli(p.manager_port, "admin", "admin", "rollback @@config").unwrap();
    let e = cli(p.manager_port, "admin", "admin", "rollback @@config").unwrap_err();
    assert!(e.contains("no configuration to roll back to"), "only once: {e}");
    c.query_drop("DROP TABLE reload_g").await.unwrap();
}

/// Rows of `ps_t` in one physical database.
async fn rows_in(port: u16, db: &str) -> Vec<i64> {
    let mut d = mysql_async::Conn::new(opts(port, "proxy", "proxy", Some(db))).await.unwrap();
    let r = d.query("SELECT id FROM ps_t ORDER BY id").await;
    r.unwrap_or_default()
}

#[tokio::test]
async fn after_a_reload_prepared_statements_route_by_the_new_config_and_transactions_finish_on_theirs() {
    stack();
    let dir = conf_dir("reload-ps");
    let p = Proxy::start(&dir, Some(&root().join("rules")));
    let manager = format!("127.0.0.1:{}", p.manager_port);
    for (port, db) in [(PRIMARY1, "shardcat_1"), (PRIMARY2, "shardcat_2")] {
        let mut d = mysql_async::Conn::new(opts(port, "proxy", "proxy", Some(db))).await.unwrap();
        d.query_drop("CREATE OR REPLACE TABLE ps_t (id BIGINT PRIMARY KEY)").await.unwrap();
    }
    let table = |node: &str| {
        format!("<table name=\"ps_t\" primaryKey=\"id\" dataNode=\"{node}\"/>\n\t\t<table name=\"region\"")
    };
    let original = std::fs::read_to_string(dir.join("schema.xml")).unwrap();
    edit(&dir, |s| s.replace("<table name=\"region\"", &table("dn1")));
    let (code, out) = shardcat(&["reload", "--manager", &manager, "--config", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");

    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo"))).await.unwrap();
    let mut tx = mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo"))).await.unwrap();
    let insert = c.prep("INSERT INTO ps_t (id) VALUES (?)").await.unwrap();
    c.exec_drop(&insert, (1,)).await.unwrap();
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop("INSERT INTO ps_t (id) VALUES (10)").await.unwrap();

    // ps_t moves from dn1 to dn2
    edit(&dir, |s| s.replace(&table("dn1"), &table("dn2")));
    let (code, out) = shardcat(&["reload", "--manager", &manager, "--config", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ps_t"), "{out}");
    // the statement prepared before the reload routes by the new config
    c.exec_drop(&insert, (2,)).await.unwrap();
    // the open transaction finishes on the config (and connections) it began with
    tx.query_drop("INSERT INTO ps_t (id) VALUES (11)").await.unwrap();
    tx.query_drop("COMMIT").await.unwrap();
    tx.query_drop("INSERT INTO ps_t (id) VALUES (12)").await.unwrap();
    assert_eq!(rows_in(PRIMARY1, "shardcat_1").await, [1, 10, 11]);
    assert_eq!(rows_in(PRIMARY2, "shardcat_2").await, [2, 12]);

    // ps_t leaves the config: it is an unconfigured table of the default node now, which has none
    std::fs::write(dir.join("schema.xml"), &original).unwrap();
    let (code, out) = shardcat(&["reload", "--manager", &manager, "--config", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let e = c.exec_drop(&insert, (3,)).await.unwrap_err();
    assert_eq!(server_error(&e).map(|x| x.0), Some(1146), "{e}");
    assert_eq!(rows_in(PRIMARY2, "shardcat_2").await, [2, 12]);
    assert!(!p.exited(), "the proxy serves on");
}
