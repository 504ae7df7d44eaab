//! KILL QUERY / KILL CONNECTION as statements for shardcat's connection ids, and SIGTERM draining:
//! what a client sees is what it sees from one MariaDB.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

/// KILL QUERY interrupts a `SELECT SLEEP(30)` at once; the client gets the same error as direct, and
/// its session goes on.
#[tokio::test]
async fn kill_query_interrupts_the_running_statement() {
    let proxy = demo();
    let mut seen = Vec::new();
    for (port, user, pass) in [(proxy.port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let mut a = mysql_async::Conn::new(opts(port, user, pass, Some("passthru"))).await.unwrap();
        let mut b = mysql_async::Conn::new(opts(port, user, pass, Some("passthru"))).await.unwrap();
        let id: u64 = a.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
        let t0 = Instant::now();
        let sleeper = tokio::spawn(async move {
            let r = a.query_first::<i64, _>("SELECT SLEEP(30)").await;
            (r, a)
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.query_drop(format!("KILL QUERY {id}")).await.unwrap();
        let (r, mut a) = sleeper.await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10), "KILL QUERY did not interrupt SLEEP(30) via {port}");
        let outcome = match &r {
            Ok(v) => format!("row {v:?}"),
            Err(e) => format!("error {:?}", server_error(e).map(|s| (s.0, s.1))),
        };
        let after: Option<i64> = a.query_first("SELECT 7").await.unwrap();
        assert_eq!(after, Some(7), "the session goes on after KILL QUERY");
        seen.push(outcome);
    }
    assert_eq!(seen[0], seen[1], "through shardcat vs direct");
    let mut b = proxy_conn("passthru").await;
    let e = b.query_drop("KILL QUERY 999999").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1094));
}

/// KILL CONNECTION ends another session: its open transaction is rolled back on every node.
#[tokio::test]
async fn kill_connection_rolls_back_the_sessions_transaction() {
    // it writes on the second primary inside a transaction, which the autocommit=0 test could take for its victim
    let _g = COMMIT_LOCK.lock().await;
    let mut setup = proxy_conn("demo").await;
    exec(&mut setup, "CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await;
    exec(&mut setup, "DELETE FROM customer WHERE id IN (7701, 7702)").await;
    let mut a = proxy_conn("demo").await;
    let id: u64 = a.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    exec(&mut a, "BEGIN").await;
    exec(&mut a, "INSERT INTO customer (id, name) VALUES (7701, 'k1'), (7702, 'k2')").await;
    exec(&mut setup, &format!("KILL {id}")).await;
    let t0 = Instant::now();
    let gone = loop {
        match a.query_drop("SELECT 1").await {
            Err(_) => break true,
            Ok(()) if t0.elapsed() > Duration::from_secs(5) => break false,
            Ok(()) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(gone, "the killed session still answers");
    let n: Option<i64> = setup.query_first("SELECT COUNT(*) FROM customer WHERE id IN (7701, 7702)").await.unwrap();
    assert_eq!(n, Some(0), "the killed session's transaction is rolled back on both shards");
}

/// SIGTERM: no new clients; a running statement finishes and its client gets the answer; an open
/// transaction is rolled back; the proxy exits.
#[tokio::test]
async fn sigterm_drains_sessions() {
    stack();
    let proxy = Proxy::start(&root().join("config"), None);
    let mut setup = mysql_async::Conn::new(opts(proxy.port, "app", "app", Some("passthru"))).await.unwrap();
    exec(&mut setup, "CREATE TABLE IF NOT EXISTS drain_t (id INT PRIMARY KEY)").await;
    exec(&mut setup, "DELETE FROM drain_t").await;
    let mut tx = mysql_async::Conn::new(opts(proxy.port, "app", "app", Some("passthru"))).await.unwrap();
    exec(&mut tx, "BEGIN").await;
    exec(&mut tx, "INSERT INTO drain_t VALUES (1)").await;
    let mut slow = mysql_async::Conn::new(opts(proxy.port, "app", "app", Some("passthru"))).await.unwrap();
    let running = tokio::spawn(async move { slow.query_first::<i64, _>("SELECT SLEEP(1.5) + 5").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.signal("TERM");
    let r = running.await.unwrap();
    assert_eq!(r.ok().flatten(), Some(5), "the running statement finished and was answered");
    let t0 = Instant::now();
    while !proxy.exited() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the proxy did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mysql_async::Conn::new(opts(proxy.port, "app", "app", Some("passthru"))).await.is_err());
    let mut d = direct_conn(PRIMARY1, "passthru").await;
    let n: Option<i64> = d.query_first("SELECT COUNT(*) FROM drain_t").await.unwrap();
    assert_eq!(n, Some(0), "the open transaction was rolled back");
}

/// Under autocommit=0, a node lost mid-transaction ends the transaction on every node: the surviving
/// node's write is rolled back, not committed by the client's next COMMIT.
#[tokio::test]
async fn a_lost_node_under_autocommit_off_rolls_back_every_node() {
    // its victim is the newest writing transaction on the second primary: not another test's
    let _g = COMMIT_LOCK.lock().await;
    let mut setup = proxy_conn("demo").await;
    exec(&mut setup, "CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await;
    exec(&mut setup, "DELETE FROM customer WHERE id IN (7801, 7802)").await;
    let mut a = proxy_conn("demo").await;
    exec(&mut a, "SET autocommit = 0").await;
    exec(&mut a, "INSERT INTO customer (id, name) VALUES (7801, 'l1'), (7802, 'l2')").await;
    // the proxy's connection on the second primary goes away (as when its server dies)
    let victim = root_sql(
        PRIMARY2,
        "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0 ORDER BY trx_started DESC LIMIT 1",
    )
    .unwrap();
    assert!(!victim.is_empty(), "the transaction is open on the second primary");
    root_sql(PRIMARY2, &format!("KILL CONNECTION {victim}")).unwrap();
    let e = a.query_drop("UPDATE customer SET name = 'x' WHERE id IN (7801, 7802)").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1430), "{e}");
    let _ = a.query_drop("COMMIT").await;
    let n: Option<i64> = setup.query_first("SELECT COUNT(*) FROM customer WHERE id IN (7801, 7802)").await.unwrap();
    assert_eq!(n, Some(0), "the surviving node's insert was rolled back");
}

/// SHOW PROCESSLIST shows the proxy's sessions of the user, with the ids KILL takes and what they run.
#[tokio::test]
async fn show_processlist_shows_the_proxys_sessions() {
    let mut a = proxy_conn("passthru").await;
    let mut b = proxy_conn("passthru").await;
    let a_id: u64 = a.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    let b_id: u64 = b.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    let rows: Vec<mysql_async::Row> = a.query("show processlist").await.unwrap();
    let list: Vec<(u64, String, Option<String>)> = rows
        .into_iter()
        .map(|r| (r.get::<u64, _>(0).unwrap(), r.get::<String, _>(4).unwrap(), r.get::<Option<String>, _>(7).unwrap()))
        .collect();
    assert!(list.contains(&(a_id, "Query".into(), Some("show processlist".into()))), "{list:?}");
    assert!(list.iter().any(|(id, cmd, _)| *id == b_id && cmd == "Sleep"), "{list:?}");
    exec(&mut a, &format!("KILL {b_id}")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ids: Vec<u64> = a
        .query("SHOW PROCESSLIST")
        .await
        .unwrap()
        .into_iter()
        .map(|r: mysql_async::Row| r.get::<u64, _>(0).unwrap())
        .collect();
    assert!(!ids.contains(&b_id), "a killed session is gone: {ids:?}");
}

/// Makes the next COMMITs on the second primary wait `ms` for a semi-sync acknowledgement its replica
/// never sends (then MariaDB falls back to asynchronous replication): a COMMIT that is slow on one node.
fn slow_commits_on_primary2(ms: u32) {
    root_sql(
        PRIMARY2,
        &format!("SET GLOBAL rpl_semi_sync_master_timeout = {ms}, GLOBAL rpl_semi_sync_master_enabled = 1"),
    )
    .unwrap();
}

fn normal_commits_on_primary2() {
    let _ = root_sql(PRIMARY2, "SET GLOBAL rpl_semi_sync_master_enabled = 0");
}

async fn two_node_transaction(port: u16, ids: (i64, i64)) -> (mysql_async::Conn, u64) {
    let mut a = mysql_async::Conn::new(opts(port, "app", "app", Some("demo"))).await.unwrap();
    exec(&mut a, "CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await;
    exec(&mut a, &format!("DELETE FROM customer WHERE id IN ({}, {})", ids.0, ids.1)).await;
    let id: u64 = a.query_first("SELECT CONNECTION_ID()").await.unwrap().unwrap();
    exec(&mut a, "BEGIN").await;
    exec(&mut a, &format!("INSERT INTO customer (id, name) VALUES ({}, 'c1'), ({}, 'c2')", ids.0, ids.1)).await;
    (a, id)
}

async fn committed(port: u16, ids: (i64, i64)) -> i64 {
    let mut c = mysql_async::Conn::new(opts(port, "app", "app", Some("demo"))).await.unwrap();
    let q = format!("SELECT COUNT(*) FROM customer WHERE id IN ({}, {})", ids.0, ids.1);
    c.query_first(q).await.unwrap().unwrap()
}

/// KILL of a session whose COMMIT is under way on two nodes (slow on one): the COMMIT finishes on
/// every node first — the transaction is never half-applied.
#[tokio::test]
async fn kill_during_a_multi_node_commit_waits_for_it() {
    let _g = COMMIT_LOCK.lock().await;
    let port = demo().port;
    let ids = (7911, 7912);
    let (mut a, id) = two_node_transaction(port, ids).await;
    slow_commits_on_primary2(1500);
    let commit = tokio::spawn(async move { a.query_drop("COMMIT").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut b = proxy_conn("demo").await;
    exec(&mut b, &format!("KILL {id}")).await;
    let _ = commit.await.unwrap();
    normal_commits_on_primary2();
    assert_eq!(committed(port, ids).await, 2, "both nodes committed");
}

/// SIGTERM during a multi-node COMMIT: it finishes on every node, then the proxy exits.
#[tokio::test]
async fn sigterm_during_a_multi_node_commit_waits_for_it() {
    let _g = COMMIT_LOCK.lock().await;
    stack();
    let proxy = Proxy::start(&root().join("config"), None);
    let ids = (7921, 7922);
    let (mut a, _) = two_node_transaction(proxy.port, ids).await;
    slow_commits_on_primary2(1500);
    let commit = tokio::spawn(async move { a.query_drop("COMMIT").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.signal("TERM");
    let r = commit.await.unwrap();
    normal_commits_on_primary2();
    assert!(r.is_ok(), "the COMMIT in flight was answered: {r:?}");
    assert_eq!(committed(demo().port, ids).await, 2, "both nodes committed");
    let t0 = Instant::now();
    while !proxy.exited() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the proxy did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The two-node commit tests change a global of the second primary, and the autocommit=0 test kills
/// the newest writing transaction there: every test with a writing transaction there, one at a time.
static COMMIT_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
