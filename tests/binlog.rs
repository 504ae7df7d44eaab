//! The binlog readers on the real stack: writes made directly on the shards (bypassing the proxy) reach
//! the result cache's epochs of the right logical tables — sharded, ER child, global, default-node —
//! once the reader passed their GTID; a killed replication connection resumes where it stopped.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

/// `show @@binlog`'s row of a dataHost: (gtid, state, transactions).
fn reader(p: &Proxy, data_host: &str) -> (String, String, u64) {
    let rows = manager_rows(p, "show @@binlog");
    let r = rows.iter().find(|r| r[0] == data_host).unwrap_or_else(|| panic!("no reader for {data_host}: {rows:?}"));
    (r[2].clone(), r[6].clone(), r[7].parse().unwrap_or(0))
}

/// The binlog invalidations of a logical table so far.
fn moved(p: &Proxy, schema: &str, table: &str) -> u64 {
    manager_rows(p, "show @@cache.tables")
        .iter()
        .find(|r| r[0] == schema && r[1] == table)
        .map(|r| r[4].parse().unwrap_or(0))
        .unwrap_or(0)
}

async fn direct(port: u16, db: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(port, "proxy", "proxy", Some(db))).await.unwrap()
}

async fn server_pos(c: &mut mysql_async::Conn) -> String {
    c.query_first::<String, _>("SELECT @@gtid_binlog_pos").await.unwrap().unwrap_or_default()
}

/// Waits until the reader of `data_host` has processed `gtid` (a whole position); how long that took.
async fn passes(p: &Proxy, data_host: &str, gtid: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        let (have, state, _) = reader(p, data_host);
        if state == "streaming" && shardcat::registry::gtid::covers(&have, gtid) {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{data_host}: reader at {have} ({state}), server at {gtid}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until both readers passed what p1 (host1) and p2 (host2) hold now.
async fn both_passed(p: &Proxy, p1: &mut mysql_async::Conn, p2: &mut mysql_async::Conn) {
    let (g1, g2) = (server_pos(p1).await, server_pos(p2).await);
    passes(p, "host1", &g1).await;
    passes(p, "host2", &g2).await;
}

#[tokio::test]
async fn direct_writes_on_the_shards_move_their_logical_tables() {
    stack();
    let p = Proxy::start(&cache_conf("binlog", "64M"), Some(&root().join("rules")));
    let mut p1 = direct(PRIMARY1, "shardcat_1").await;
    let mut p2 = direct(PRIMARY2, "shardcat_2").await;
    let pos = server_pos(&mut p1).await;
    passes(&p, "host1", &pos).await;
    p1.query_drop("CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await.unwrap();
    p2.query_drop("CREATE TABLE IF NOT EXISTS orders (id INT PRIMARY KEY, customer_id INT, amount DECIMAL(10,2))")
        .await
        .unwrap();
    p2.query_drop("CREATE TABLE IF NOT EXISTS region (id INT PRIMARY KEY, name VARCHAR(10))").await.unwrap();
    // rows a failed run left would make the REPLACEs below no-ops (no row event)
    p1.query_drop("DELETE FROM customer WHERE id >= 9001").await.unwrap();
    p2.query_drop("DELETE FROM orders WHERE id >= 9001").await.unwrap();
    p2.query_drop("DELETE FROM region WHERE id >= 9001").await.unwrap();
    // what this setup binlogged moves the tables before `before`
    both_passed(&p, &mut p1, &mut p2).await;

    let before = [moved(&p, "demo", "customer"), moved(&p, "demo", "orders"), moved(&p, "demo", "region")];
    // a sharded table on p1, its ER child on p2 (in one transaction with the global table), row events
    p1.query_drop("REPLACE INTO customer VALUES (9001, 'direct')").await.unwrap();
    p2.query_drop("BEGIN").await.unwrap();
    p2.query_drop("REPLACE INTO orders VALUES (9001, 9002, 1.00)").await.unwrap();
    p2.query_drop("REPLACE INTO region VALUES (9001, 'x')").await.unwrap();
    p2.query_drop("COMMIT").await.unwrap();
    both_passed(&p, &mut p1, &mut p2).await;
    let after = [moved(&p, "demo", "customer"), moved(&p, "demo", "orders"), moved(&p, "demo", "region")];
    assert_eq!(
        after,
        [before[0] + 1, before[1] + 1, before[2] + 1],
        "one move per table and transaction: {:?}",
        manager_rows(&p, "show @@cache.tables"),
    );

    // DDL and TRUNCATE count; an unconfigured table of demo's default node maps to demo
    let mut dflt = direct(PRIMARY1, "shardcat_default").await;
    dflt.query_drop("CREATE OR REPLACE TABLE binlog_notes (id INT)").await.unwrap();
    dflt.query_drop("INSERT INTO binlog_notes VALUES (1)").await.unwrap();
    p2.query_drop("TRUNCATE TABLE orders").await.unwrap();
    passes(&p, "host1", &server_pos(&mut p1).await).await;
    passes(&p, "host2", &server_pos(&mut p2).await).await;
    assert!(moved(&p, "demo", "binlog_notes") >= 2, "{:?}", manager_rows(&p, "show @@cache.tables"));
    assert_eq!(moved(&p, "demo", "orders"), after[1] + 1, "TRUNCATE");
    dflt.query_drop("DROP TABLE binlog_notes").await.unwrap();

    // the replication connection killed on the server: the reader comes back where it was, and what
    // was committed meanwhile is not missed
    let dumps: Vec<u64> = p1
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' AND USER = 'proxy'")
        .await
        .unwrap();
    assert!(!dumps.is_empty(), "the reader's dump thread is on p1");
    let before = moved(&p, "demo", "customer");
    for id in &dumps {
        p1.query_drop(format!("KILL {id}")).await.unwrap();
    }
    p1.query_drop("REPLACE INTO customer VALUES (9003, 'while down')").await.unwrap();
    passes(&p, "host1", &server_pos(&mut p1).await).await;
    let after = moved(&p, "demo", "customer");
    assert!(after > before, "the write made while the reader was down moved customer ({before} → {after})");
    let reset: u64 = manager_rows(&p, "show @@cache.tables")
        .iter()
        .find(|r| r[0] == "demo" && r[1] == "customer")
        .map(|r| r[5].parse().unwrap_or(0))
        .unwrap_or(0);
    assert!(reset >= 1, "losing the stream moved everything on host1");
    p1.query_drop("DELETE FROM customer WHERE id >= 9001").await.unwrap();
    p2.query_drop("DELETE FROM region WHERE id = 9001").await.unwrap();
    assert!(!p.exited());
}

#[tokio::test]
async fn after_a_writehost_switch_the_reader_follows_the_new_writehost() {
    stack();
    // a pass-through schema `sw` on a dataHost whose two writeHosts are the stack's two primaries
    let dir = cache_conf("binlog-switch", "16M");
    let schema = with_switch_host(&std::fs::read_to_string(dir.join("schema.xml")).unwrap());
    std::fs::write(dir.join("schema.xml"), schema).unwrap();
    let p = Proxy::start(&dir, Some(&root().join("rules")));
    let mut d1 = direct(PRIMARY1, "shardcat_default").await;
    let mut d2 = direct(PRIMARY2, "shardcat_default").await;
    d2.query_drop("CREATE DATABASE IF NOT EXISTS shardcat_default").await.unwrap();
    passes(&p, "host_sw", &server_pos(&mut d1).await).await;
    assert_eq!(reader(&p, "host_sw").1, "streaming");
    manager_rows(&p, "switch @@datasource host_sw:1");
    // the reader moves to sw2 (3309): its writes reach the cache's epochs
    let t0 = Instant::now();
    while manager_rows(&p, "show @@binlog").iter().all(|r| !(r[0] == "host_sw" && r[1] == "sw2" && r[6] == "streaming"))
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", manager_rows(&p, "show @@binlog"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = moved(&p, "sw", "binlog_sw");
    d2.query_drop("CREATE OR REPLACE TABLE binlog_sw (id INT)").await.unwrap();
    d2.query_drop("INSERT INTO binlog_sw VALUES (1)").await.unwrap();
    passes(&p, "host_sw", &server_pos(&mut d2).await).await;
    assert!(moved(&p, "sw", "binlog_sw") >= before + 2, "{:?}", manager_rows(&p, "show @@cache.tables"));
    d2.query_drop("DROP TABLE binlog_sw").await.unwrap();
}
