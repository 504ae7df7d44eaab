//! The result cache on the real stack: hits answer what a miss answered (text and prepared, one shard
//! and merged), a write made directly on a shard is seen once the binlog reader passed its GTID, a write
//! through the proxy is seen by the next read at once — with other clients filling the cache beside it —,
//! a transaction's writes are seen once it commits, and what may not be cached never is.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

fn proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        stack();
        let dir = cache_conf("cache", "32M");
        let schema = std::fs::read_to_string(dir.join("schema.xml")).unwrap();
        let schema = schema.replace("<table name=\"region\"", "<table name=\"region\" cache=\"false\"");
        std::fs::write(dir.join("schema.xml"), schema).unwrap();
        Proxy::start(&dir, Some(&root().join("rules")))
    })
}

/// The tests share one proxy and its counters: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// (hits, stores) of the result cache.
fn counts(p: &Proxy) -> (u64, u64) {
    let rows = manager_rows(p, "show @@cache");
    let r = rows.iter().find(|r| r[0] == "ResultCache").expect("ResultCache row");
    (r[4].parse().unwrap(), r[5].parse().unwrap())
}

async fn app(p: &Proxy) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo"))).await.unwrap()
}

async fn direct(port: u16, db: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(port, "proxy", "proxy", Some(db))).await.unwrap()
}

/// Waits until every reader passed what p1 and p2 hold now; how long that took.
async fn readers_caught_up(p: &Proxy) -> Duration {
    let mut need = Vec::new();
    for port in [PRIMARY1, PRIMARY2] {
        let mut d = direct(port, "mysql").await;
        need.push(d.query_first::<String, _>("SELECT @@gtid_binlog_pos").await.unwrap().unwrap_or_default());
    }
    // the manager port through mysql_async: polling costs a round trip, not a process
    let mut m = mysql_async::Conn::new(opts(p.manager_port, "admin", "admin", None)).await.unwrap();
    let t0 = Instant::now();
    loop {
        let rows: Vec<Vec<String>> = m
            .query_iter("show @@binlog")
            .await
            .unwrap()
            .map_and_drop(|r: mysql_async::Row| {
                (0..r.len()).map(|i| r.get::<String, _>(i).unwrap_or_default()).collect()
            })
            .await
            .unwrap();
        let ok = ["host1", "host2"].iter().zip(&need).all(|(h, g)| {
            rows.iter().any(|r| r[0] == *h && r[6] == "streaming" && shardcat::registry::gtid::covers(&r[2], g))
        });
        if ok {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "readers did not catch up: {rows:?}");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

async fn setup(c: &mut mysql_async::Conn) {
    c.query_drop("CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await.unwrap();
    c.query_drop("DELETE FROM customer WHERE id BETWEEN 7000 AND 7999").await.unwrap();
    c.query_drop("INSERT INTO customer (id, name) VALUES (7001, 'a'), (7002, 'b'), (7003, 'c'), (7004, 'd')")
        .await
        .unwrap();
}

type Rows = Vec<(i64, String)>;

const RANGE: &str = "SELECT id, name FROM customer WHERE id BETWEEN 7000 AND 7999 ORDER BY id";

/// One test at a time on the shared proxy, with an app connection, the rows set up and the readers
/// past them.
async fn ready() -> (tokio::sync::MutexGuard<'static, ()>, &'static Proxy, mysql_async::Conn) {
    let one = SERIAL.lock().await;
    let p = proxy();
    let mut c = app(p).await;
    setup(&mut c).await;
    readers_caught_up(p).await;
    (one, p, c)
}

#[tokio::test]
async fn hits_answer_what_the_miss_answered_and_uncacheable_reads_are_never_hits() {
    let (_one, p, mut c) = ready().await;
    // a merged read over both shards, text and prepared, a one-shard point read
    c.query_drop("CREATE TABLE IF NOT EXISTS region (id INT PRIMARY KEY, name VARCHAR(10))").await.unwrap();
    let (h0, _) = counts(p);
    let mut seen: Vec<(Rows, Vec<String>)> = Vec::new();
    for _ in 0..3 {
        let r = c.query_iter(RANGE).await.unwrap();
        let cols: Vec<String> =
            r.columns_ref().iter().map(|c| format!("{} {:?}", c.name_str(), c.column_type())).collect();
        let rows: Rows = r.collect_and_drop().await.unwrap();
        seen.push((rows, cols));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    assert_eq!(seen[0].0.len(), 4);
    let (h1, _) = counts(p);
    assert_eq!(h1 - h0, 2, "the 2nd and 3rd text reads were hits");
    let stmt = c.prep("SELECT name FROM customer WHERE id = ?").await.unwrap();
    let mut names = Vec::new();
    for id in [7001, 7002, 7001, 7002] {
        let n: Option<String> = c.exec_first(&stmt, (id,)).await.unwrap();
        names.push(n.unwrap_or_default());
    }
    assert_eq!(names, ["a", "b", "a", "b"], "parameters are part of the key");
    let (h2, _) = counts(p);
    assert_eq!(h2 - h1, 2, "the repeated executes were hits");
    // never cached: time, variables, locking reads, opt-outs
    for sql in [
        "SELECT id, NOW() FROM customer WHERE id = 7001",
        "SELECT id, @@sql_mode FROM customer WHERE id = 7001",
        "SELECT SQL_NO_CACHE id FROM customer WHERE id = 7001",
        "SELECT id FROM customer WHERE id = 7001 FOR UPDATE",
        // schema.xml: <table name="region" cache="false">
        "SELECT id, name FROM region ORDER BY id",
    ] {
        for _ in 0..2 {
            c.query_drop(sql).await.unwrap();
        }
    }
    assert_eq!(counts(p).0, h2, "none of those was answered from the cache");
    // clear @@cache: the next read is a miss again
    let _: Rows = c.query(RANGE).await.unwrap();
    let h3 = counts(p).0;
    manager_rows(p, "clear @@cache");
    let _: Rows = c.query(RANGE).await.unwrap();
    let _: Rows = c.query(RANGE).await.unwrap();
    assert_eq!(counts(p).0 - h3, 1, "after clear @@cache only the second read hits");
}

#[tokio::test]
async fn direct_writes_are_seen_once_the_reader_passed_them() {
    let _one = SERIAL.lock().await;
    let p = proxy();
    let mut c = app(p).await;
    setup(&mut c).await;
    let mut d1 = direct(PRIMARY1, "shardcat_1").await;
    let mut d2 = direct(PRIMARY2, "shardcat_2").await;
    let mut lags = Vec::new();
    for i in 0..100 {
        // fill the cache, then change a row on a shard behind the proxy's back
        let _: Rows = c.query(RANGE).await.unwrap();
        let _: Rows = c.query(RANGE).await.unwrap();
        // mod-2: even ids on dn1 (p1), odd ones on dn2 (p2)
        let (d, id) = if i % 2 == 0 { (&mut d1, 7002) } else { (&mut d2, 7001) };
        let v = format!("direct-{i}");
        d.query_drop(format!("UPDATE customer SET name = '{v}' WHERE id = {id}")).await.unwrap();
        lags.push(readers_caught_up(p).await);
        let rows: Rows = c.query(RANGE).await.unwrap();
        assert!(rows.contains(&(id, v.clone())), "round {i}: {rows:?} lacks ({id}, {v})");
    }
    lags.sort();
    eprintln!(
        "direct write → reader passed its GTID: p50 {:?}, p99 {:?}, max {:?} (100 writes)",
        lags[49], lags[98], lags[99]
    );
}

#[tokio::test]
async fn writes_through_the_proxy_are_seen_by_the_next_read_with_readers_filling_beside_it() {
    let (_one, p, mut c) = ready().await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut fillers = Vec::new();
    for _ in 0..3 {
        let stop = stop.clone();
        let port = p.port;
        fillers.push(tokio::spawn(async move {
            let mut f = mysql_async::Conn::new(opts(port, "app", "app", Some("demo"))).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let _: Rows = f.query(RANGE).await.unwrap();
            }
        }));
    }
    let (h0, _) = counts(p);
    for i in 0..300 {
        let id = 7001 + (i % 4);
        let v = format!("proxy-{i}");
        c.query_drop(format!("UPDATE customer SET name = '{v}' WHERE id = {id}")).await.unwrap();
        let rows: Rows = c.query(RANGE).await.unwrap();
        assert!(rows.contains(&(id, v.clone())), "round {i}: own write not seen: {rows:?}");
    }
    // a transaction's writes: not seen by others before COMMIT, seen right after it
    let mut other = app(p).await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE customer SET name = 'in-tx' WHERE id = 7003").await.unwrap();
    let before: Rows = other.query(RANGE).await.unwrap();
    assert!(!before.contains(&(7003, "in-tx".into())));
    c.query_drop("COMMIT").await.unwrap();
    let after: Rows = other.query(RANGE).await.unwrap();
    assert!(after.contains(&(7003, "in-tx".into())), "{after:?}");
    stop.store(true, Ordering::Relaxed);
    for f in fillers {
        f.await.unwrap();
    }
    assert!(counts(p).0 > h0, "the fillers were answered from the cache meanwhile");
}

#[tokio::test]
async fn concurrent_misses_of_one_statement_run_it_once() {
    let _one = SERIAL.lock().await;
    let p = proxy();
    let statements = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix("shardcat_datanode_statements_total{datanode=\"dn_default\"} "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // a statement on demo's default node, new to the cache, held back by a lock taken directly on the
    // server: the first miss waits there (not on the CPU, whatever the machine's load), the others behind it
    let table = format!("cache_held_{}", std::process::id());
    let mut setup = app(p).await;
    setup.query_drop(format!("CREATE TABLE IF NOT EXISTS {table} (id INT PRIMARY KEY)")).await.unwrap();
    setup.query_drop(format!("INSERT IGNORE INTO {table} VALUES (1), (2), (3)")).await.unwrap();
    readers_caught_up(p).await;
    let sql = format!("SELECT COUNT(*) FROM {table}");
    // connected first: a connect runs statements of its own
    let mut conns = Vec::new();
    for _ in 0..6 {
        conns.push(app(p).await);
    }
    let mut lock = direct(PRIMARY1, "shardcat_default").await;
    lock.query_drop(format!("LOCK TABLES {table} WRITE")).await.unwrap();
    let before = statements(&http_get(p.http_port, "/metrics").await.1);
    let mut runs = Vec::new();
    for mut c in conns {
        let sql = sql.clone();
        runs.push(tokio::spawn(async move { c.query_first::<i64, _>(sql).await.unwrap() }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    lock.query_drop("UNLOCK TABLES").await.unwrap();
    let mut answers = Vec::new();
    for r in runs {
        answers.push(r.await.unwrap());
    }
    let after = statements(&http_get(p.http_port, "/metrics").await.1);
    assert!(answers.iter().all(|a| *a == Some(3)), "{answers:?}");
    assert_eq!(after - before, 1.0, "one backend run for 6 concurrent misses");
}

#[tokio::test]
async fn a_repeatable_read_transaction_is_served_only_what_its_snapshot_would_show() {
    let (_one, p, mut c) = ready().await;
    let v0: Rows = c.query(RANGE).await.unwrap(); // stored
    let mut t = app(p).await;
    // XA (the default): each node joins by XA START, its snapshot taken by a read at once
    t.query_drop("BEGIN").await.unwrap();
    let (h0, _) = counts(p);
    let first: Rows = t.query(RANGE).await.unwrap();
    assert_eq!(first, v0);
    assert_eq!(counts(p).0, h0 + 1, "served from the cache: its nodes joined the transaction, each with a snapshot");
    let again: Rows = t.query(RANGE).await.unwrap();
    assert_eq!(again, v0);
    assert_eq!(counts(p).0, h0 + 2, "nothing moved since its snapshot: served from the cache");
    // another session commits a change, and a third stores the new rows
    c.query_drop("UPDATE customer SET name = 'after-snapshot' WHERE id = 7001").await.unwrap();
    let mut other = app(p).await;
    let v1: Rows = other.query(RANGE).await.unwrap();
    let _: Rows = other.query(RANGE).await.unwrap();
    assert!(v1.contains(&(7001, "after-snapshot".into())));
    // the transaction still sees its snapshot, not the newer stored rows
    let inside: Rows = t.query(RANGE).await.unwrap();
    assert_eq!(inside, v0, "REPEATABLE READ inside the transaction");
    // the servers' snapshots were taken when the cache first answered, before the change
    let server: Rows = t.query(RANGE.replacen("SELECT", "SELECT SQL_NO_CACHE", 1)).await.unwrap();
    assert_eq!(server, v0, "the transaction's snapshot on the servers is the one the cache answered from");
    t.query_drop("COMMIT").await.unwrap();
    let after: Rows = t.query(RANGE).await.unwrap();
    assert_eq!(after, v1);
    // a transaction that wrote is never served from the cache
    t.query_drop("BEGIN").await.unwrap();
    let _: Rows = t.query(RANGE).await.unwrap();
    t.query_drop("UPDATE customer SET name = 'in-own-tx' WHERE id = 7002").await.unwrap();
    let h = counts(p).0;
    let own: Rows = t.query(RANGE).await.unwrap();
    assert!(own.contains(&(7002, "in-own-tx".into())));
    assert_eq!(counts(p).0, h);
    t.query_drop("ROLLBACK").await.unwrap();
    // with XA off the nodes join by START TRANSACTION WITH CONSISTENT SNAPSHOT: served alike (the
    // rolled-back write moved the epochs: stored again first)
    let _: Rows = c.query(RANGE).await.unwrap();
    let _: Rows = c.query(RANGE).await.unwrap();
    t.query_drop("SET xa = off").await.unwrap();
    t.query_drop("BEGIN").await.unwrap();
    let h = counts(p).0;
    let local_read: Rows = t.query(RANGE).await.unwrap();
    assert_eq!(local_read, after);
    assert_eq!(counts(p).0, h + 1, "a local transaction was not served from the cache");
    t.query_drop("COMMIT").await.unwrap();
}
