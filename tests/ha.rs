//! Read/write splitting and replica health on a private stack (ports 3321–3324, heartbeat 1 s):
//! reads reach the replica and writes the primary (per-table read counters on each server), a stopped
//! replica stops getting reads and gets them back, a replica whose SQL thread stopped is excluded, and a
//! session reads its own write at once even from a lagging replica set.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use mysql_async::prelude::*;

const DIR: &str = "/tmp/shardcat-ha-stack";
const PORTS: &str = "3321 3322 3323 3324";
const PRIMARY: u16 = 3321;
const REPLICA: u16 = 3322;

fn proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        private_stack(DIR, PORTS, "ha", false);
        for port in [PRIMARY, REPLICA] {
            root_sql(port, "SET GLOBAL userstat = 1").unwrap();
        }
        Proxy::start(&root().join("tests/fixtures/ha"), None)
    })
}

static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn conn() -> mysql_async::Conn {
    mysql_async::Conn::new(opts(proxy().port, "app", "app", Some("ha"))).await.unwrap()
}

/// Rows read from table ha.t on a server since the last reset.
fn rows_read(port: u16) -> i64 {
    root_sql(port, "SELECT IFNULL(SUM(ROWS_READ), 0) FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA = 'ha' AND TABLE_NAME = 't'")
        .unwrap()
        .parse()
        .unwrap_or(0)
}

fn reset_stats() {
    for port in [PRIMARY, REPLICA] {
        root_sql(port, "FLUSH TABLE_STATISTICS").unwrap();
    }
}

async fn setup(c: &mut mysql_async::Conn) {
    exec(c, "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, v VARCHAR(10))").await;
    exec(c, "DELETE FROM t").await;
    exec(c, "INSERT INTO t VALUES (1, 'a'), (2, 'b')").await;
    for _ in 0..50 {
        if root_sql(REPLICA, "SELECT COUNT(*) FROM ha.t").ok().as_deref() == Some("2") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replica did not catch up");
}

async fn reads(c: &mut mysql_async::Conn, n: usize) {
    for _ in 0..n {
        let _: Vec<(i64, String)> = c.query("SELECT id, v FROM t WHERE id = 1").await.unwrap();
    }
}

#[tokio::test]
async fn reads_go_to_the_replica_and_writes_to_the_primary() {
    let _g = LOCK.lock().await;
    let mut c = conn().await;
    setup(&mut c).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // let the heartbeat see the replica
    let mut fresh = conn().await; // a session that wrote nothing
    reset_stats();
    reads(&mut fresh, 20).await;
    assert!(rows_read(REPLICA) >= 20, "replica rows read: {}", rows_read(REPLICA));
    assert_eq!(rows_read(PRIMARY), 0, "the primary served reads");
    // writes go to the primary (the replica is read_only: a write there would fail)
    exec(&mut fresh, "UPDATE t SET v = 'w' WHERE id = 2").await;
    // inside a transaction, reads stay on the primary
    reset_stats();
    exec(&mut fresh, "BEGIN").await;
    reads(&mut fresh, 5).await;
    exec(&mut fresh, "COMMIT").await;
    assert!(
        rows_read(PRIMARY) >= 5 && rows_read(REPLICA) == 0,
        "transaction reads: primary {} replica {}",
        rows_read(PRIMARY),
        rows_read(REPLICA)
    );
}

#[tokio::test]
async fn a_replica_with_stopped_replication_gets_no_reads() {
    let _g = LOCK.lock().await;
    let mut c = conn().await;
    setup(&mut c).await;
    root_sql(REPLICA, "STOP SLAVE SQL_THREAD").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut fresh = conn().await;
    reset_stats();
    reads(&mut fresh, 10).await;
    let (p, r) = (rows_read(PRIMARY), rows_read(REPLICA));
    root_sql(REPLICA, "START SLAVE SQL_THREAD").unwrap();
    assert!(p >= 10 && r == 0, "with the SQL thread stopped: primary {p} replica {r}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    reset_stats();
    reads(&mut fresh, 10).await;
    assert!(rows_read(REPLICA) >= 10, "reads come back to the replica");
}

#[tokio::test]
async fn a_session_reads_its_own_write_immediately_unless_configured_off() {
    let _g = LOCK.lock().await;
    let mut c = conn().await;
    setup(&mut c).await;
    // the replica applies events 2 s late, while staying within slaveThreshold (10 s)
    root_sql(REPLICA, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 2; START SLAVE").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..5 {
        let id = 100 + i;
        c.query_drop(format!("INSERT INTO t VALUES ({id}, 'mine')")).await.unwrap();
        let v: Option<String> = c.query_first(format!("SELECT v FROM t WHERE id = {id}")).await.unwrap();
        assert_eq!(v.as_deref(), Some("mine"), "write {i} not visible to its own session");
    }
    // a user with readYourWrites=false reads from the lagging replica right after its write
    let mut fast = mysql_async::Conn::new(opts(proxy().port, "fast", "fast", Some("ha"))).await.unwrap();
    fast.query_drop("INSERT INTO t VALUES (200, 'fast')").await.unwrap();
    let v: Option<String> = fast.query_first("SELECT v FROM t WHERE id = 200").await.unwrap();
    assert_eq!(v, None, "readYourWrites=false: the read went to the replica, 2 s behind");
    root_sql(REPLICA, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE").unwrap();
}

#[tokio::test]
async fn a_stopped_replica_stops_getting_reads_and_comes_back() {
    let _g = LOCK.lock().await;
    let mut c = conn().await;
    setup(&mut c).await;
    root_sql(REPLICA, "SHUTDOWN").unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await; // three heartbeats
    let mut fresh = conn().await;
    for _ in 0..10 {
        let v: Option<String> = fresh.query_first("SELECT v FROM t WHERE id = 1").await.unwrap();
        assert_eq!(v.as_deref(), Some("a"), "reads are served while the replica is down");
    }
    private_stack(DIR, PORTS, "ha", false);
    root_sql(REPLICA, "SET GLOBAL userstat = 1").unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    reset_stats();
    reads(&mut fresh, 10).await;
    assert!(rows_read(REPLICA) >= 10, "reads return to the recovered replica: {}", rows_read(REPLICA));
}

/// Reads on a server since the last reset, after running `sql` `n` times on `c`.
async fn reads_of(c: &mut mysql_async::Conn, sql: &str, n: usize) -> (i64, i64) {
    reset_stats();
    for _ in 0..n {
        let _: Vec<(i64, String)> = c.query(sql).await.unwrap();
    }
    (rows_read(PRIMARY), rows_read(REPLICA))
}

#[tokio::test]
async fn locking_reads_autocommit_off_and_hints_choose_the_host() {
    let _g = LOCK.lock().await;
    let mut c = conn().await;
    setup(&mut c).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut s = conn().await;
    let (p, r) = reads_of(&mut s, "SELECT id, v FROM t WHERE id = 1 FOR UPDATE", 5).await;
    assert!(p >= 5 && r == 0, "FOR UPDATE: primary {p} replica {r}");
    let (p, r) = reads_of(&mut s, "SELECT id, v FROM t WHERE id = 1 LOCK IN SHARE MODE", 5).await;
    assert!(p >= 5 && r == 0, "LOCK IN SHARE MODE: primary {p} replica {r}");
    let (p, r) = reads_of(&mut s, "/*#mycat:db_type=master*/ SELECT id, v FROM t WHERE id = 1", 5).await;
    assert!(p >= 5 && r == 0, "db_type=master: primary {p} replica {r}");
    let (p, r) = reads_of(&mut s, "/*#mycat:db_type=slave*/ SELECT id, v FROM t WHERE id = 1", 5).await;
    assert!(p == 0 && r >= 5, "db_type=slave: primary {p} replica {r}");

    exec(&mut s, "SET autocommit = 0").await;
    let (p, r) = reads_of(&mut s, "SELECT id, v FROM t WHERE id = 1", 5).await;
    assert!(p >= 5 && r == 0, "autocommit=0: primary {p} replica {r}");
    // /*balance*/ lets a read leave the transaction for a replica; the transaction goes on
    exec(&mut s, "UPDATE t SET v = 'tx' WHERE id = 2").await;
    let (p, r) = reads_of(&mut s, "/*balance*/ SELECT id, v FROM t WHERE id = 1", 5).await;
    assert!(p == 0 && r >= 5, "/*balance*/ in a transaction: primary {p} replica {r}");
    let v: Option<String> = s.query_first("SELECT v FROM t WHERE id = 2").await.unwrap();
    assert_eq!(v.as_deref(), Some("tx"), "the transaction still sees its own write");
    exec(&mut s, "ROLLBACK").await;
    exec(&mut s, "SET autocommit = 1").await;
    let v: Option<String> = s.query_first("/*#mycat:db_type=master*/ SELECT v FROM t WHERE id = 2").await.unwrap();
    assert_eq!(v.as_deref(), Some("b"), "the rolled back write is gone");
}

#[tokio::test]
async fn a_read_host_whose_user_may_not_see_replication_status_still_reads() {
    let _g = LOCK.lock().await;
    let mut c = conn().await;
    setup(&mut c).await;
    // a user with SELECT only: SHOW SLAVE STATUS is refused to it (1227), the heartbeat SQL is not
    root_sql(
        REPLICA,
        "SET SESSION sql_log_bin = 0; CREATE USER IF NOT EXISTS 'weak'@'%' IDENTIFIED BY 'weak'; \
         GRANT SELECT ON ha.* TO 'weak'@'%'",
    )
    .unwrap();
    let conf = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(root().join("tests/fixtures/ha")).unwrap() {
        let e = e.unwrap();
        // both hosts on the replica (readHost hr, standby writeHost hs) log in as weak
        let text = std::fs::read_to_string(e.path()).unwrap().replace(
            r#"url="127.0.0.1:3322" user="proxy" password="proxy""#,
            r#"url="127.0.0.1:3322" user="weak" password="weak""#,
        );
        std::fs::write(conf.path().join(e.file_name()), text).unwrap();
    }
    let weak = Proxy::start(conf.path(), None);
    tokio::time::sleep(Duration::from_millis(2500)).await; // several heartbeats
    let mut s = mysql_async::Conn::new(opts(weak.port, "app", "app", Some("ha"))).await.unwrap();
    let (p, r) = reads_of(&mut s, "SELECT id, v FROM t WHERE id = 1", 10).await;
    assert!(r >= 10 && p == 0, "primary {p} replica {r}");
}
