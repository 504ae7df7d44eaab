//! The result cache under a randomized load: 4 writers (2 through the proxy, 2 directly on the shards)
//! and 4 readers through the proxy over a sharded table, its ER child and a global table, 100 000
//! operations, the binlog connections killed twice meanwhile. Every read is checked against what must
//! be visible when it started: a write whose OK came back through the proxy, a direct write whose GTID
//! shardcat's reader had passed. 0 stale reads.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;
use parking_lot::Mutex;

const ROWS: u64 = 40;
const BASE: u64 = 8000;
const OPS: u64 = 100_000;

/// A direct write: the version it wrote and the GTID (domain, seq) that committed it.
type DirectWrite = (u64, u64, u64);

/// What a read must see: per table and id, the newest version known committed, and for direct writes
/// the GTID (domain, seq) that committed it.
#[derive(Default)]
struct Known {
    /// (table, id) → version whose OK came back through the proxy.
    proxy: HashMap<(&'static str, u64), u64>,
    /// (table, id) → (version, domain, seq) of direct writes, newest last.
    direct: HashMap<(&'static str, u64), Vec<DirectWrite>>,
}

fn gtid_seqs(pos: &str) -> Vec<(u64, u64)> {
    pos.split(',')
        .filter_map(|g| {
            let v: Vec<u64> = g.trim().split('-').filter_map(|x| x.parse().ok()).collect();
            (v.len() == 3).then(|| (v[0], v[2]))
        })
        .collect()
}

async fn reader_positions(m: &mut mysql_async::Conn) -> Vec<(u64, u64)> {
    let rows: Vec<(String, String)> = m
        .query_iter("show @@binlog")
        .await
        .unwrap()
        .map_and_drop(|r: mysql_async::Row| {
            (r.get::<String, _>(2).unwrap_or_default(), r.get::<String, _>(6).unwrap_or_default())
        })
        .await
        .unwrap();
    rows.into_iter().filter(|(_, state)| state == "streaming").flat_map(|(g, _)| gtid_seqs(&g)).collect()
}

impl Known {
    /// The version a read of (table, id) starting now must at least show.
    fn floor(&self, table: &'static str, id: u64, passed: &[(u64, u64)]) -> u64 {
        let p = self.proxy.get(&(table, id)).copied().unwrap_or(0);
        let d = self
            .direct
            .get(&(table, id))
            .and_then(|v| {
                v.iter().rev().find(|(_, dom, seq)| passed.iter().any(|(pd, ps)| pd == dom && ps >= seq)).map(|x| x.0)
            })
            .unwrap_or(0);
        p.max(d)
    }
}

#[tokio::test]
async fn no_read_through_the_cache_is_ever_stale() {
    stack();
    let p = Proxy::start(&cache_conf("cache-random", "16M"), Some(&root().join("rules")));
    let mut setup = mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo"))).await.unwrap();
    for ddl in [
        "CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))",
        "CREATE TABLE IF NOT EXISTS orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2) NOT NULL, KEY (customer_id))",
        "CREATE TABLE IF NOT EXISTS region (id INT PRIMARY KEY, name VARCHAR(10))",
    ] {
        setup.query_drop(ddl).await.unwrap();
    }
    setup.query_drop(format!("DELETE FROM orders WHERE customer_id BETWEEN {BASE} AND {}", BASE + ROWS)).await.unwrap();
    setup.query_drop(format!("DELETE FROM customer WHERE id BETWEEN {BASE} AND {}", BASE + ROWS)).await.unwrap();
    setup.query_drop(format!("DELETE FROM region WHERE id BETWEEN {BASE} AND {}", BASE + ROWS)).await.unwrap();
    for id in BASE..BASE + ROWS {
        setup.query_drop(format!("INSERT INTO customer (id, name) VALUES ({id}, '0')")).await.unwrap();
        setup.query_drop(format!("INSERT INTO orders (id, customer_id, amount) VALUES ({id}, {id}, 0)")).await.unwrap();
        setup.query_drop(format!("INSERT INTO region (id, name) VALUES ({id}, '0')")).await.unwrap();
    }
    // every reader streaming before the run
    let mut m = mysql_async::Conn::new(opts(p.manager_port, "admin", "admin", None)).await.unwrap();
    let t0 = Instant::now();
    while reader_positions(&mut m).await.len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(10), "binlog readers did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let known = Arc::new(Mutex::new(Known::default()));
    let done = Arc::new(AtomicU64::new(0));
    let stale = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // writers: k owns the ids ≡ k (mod 4); 0 and 1 write through the proxy, 2 (even ids: p1) and
    // 3 (odd ids: p2) write the shards directly
    for k in 0..4u64 {
        let (known, done, stale, port) = (known.clone(), done.clone(), stale.clone(), p.port);
        tasks.push(tokio::spawn(async move {
            let through_proxy = k < 2;
            let mut c = if through_proxy {
                mysql_async::Conn::new(opts(port, "app", "app", Some("demo"))).await.unwrap()
            } else {
                let (port, db) = if k == 2 { (PRIMARY1, "shardcat_1") } else { (PRIMARY2, "shardcat_2") };
                mysql_async::Conn::new(opts(port, "proxy", "proxy", Some(db))).await.unwrap()
            };
            let ids: Vec<u64> = (BASE..BASE + ROWS).filter(|i| i % 4 == k).collect();
            let mut version = 0u64;
            let mut n = 0u64;
            while done.fetch_add(1, Ordering::Relaxed) < OPS {
                version += 1;
                n += 1;
                let id = ids[(n as usize * 7) % ids.len()];
                let tables: &[&'static str] =
                    if through_proxy { &["customer", "orders", "region"] } else { &["customer", "orders"] };
                let table = tables[(n as usize) % tables.len()];
                let sql = match table {
                    "customer" => format!("UPDATE customer SET name = '{version}' WHERE id = {id}"),
                    "orders" => format!("UPDATE orders SET amount = {version} WHERE id = {id}"),
                    _ => format!("UPDATE region SET name = '{version}' WHERE id = {id}"),
                };
                c.query_drop(&sql).await.unwrap();
                if through_proxy {
                    known.lock().proxy.insert((table, id), version);
                    // the writer's own read right after its OK
                    let got = read(&mut c, table, id).await;
                    if got < version {
                        stale.lock().push(format!("own write {table} {id}: wrote {version}, read {got}"));
                    }
                } else {
                    let pos: String = c.query_first("SELECT @@gtid_binlog_pos").await.unwrap().unwrap_or_default();
                    let dom = if k == 2 { 1 } else { 2 };
                    if let Some((_, seq)) = gtid_seqs(&pos).into_iter().find(|(d, _)| *d == dom) {
                        known.lock().direct.entry((table, id)).or_default().push((version, dom, seq));
                    }
                }
            }
        }));
    }
    // readers: take what must be visible, then read through the proxy (point reads prepared, ranges
    // merged over both shards, the global table)
    for r in 0..4u64 {
        let (known, done, stale, port, mport) = (known.clone(), done.clone(), stale.clone(), p.port, p.manager_port);
        tasks.push(tokio::spawn(async move {
            let mut c = mysql_async::Conn::new(opts(port, "app", "app", Some("demo"))).await.unwrap();
            let mut m = mysql_async::Conn::new(opts(mport, "admin", "admin", None)).await.unwrap();
            let mut n = r;
            while done.fetch_add(1, Ordering::Relaxed) < OPS {
                n += 1;
                let passed = reader_positions(&mut m).await;
                let table = ["customer", "orders", "region"][(n % 3) as usize];
                if n % 5 == 0 {
                    let floors: Vec<(u64, u64)> = {
                        let k = known.lock();
                        (BASE..BASE + ROWS).map(|id| (id, k.floor(table, id, &passed))).collect()
                    };
                    for (id, got) in read_all(&mut c, table).await {
                        let need = floors.iter().find(|(i, _)| *i == id).map(|x| x.1).unwrap_or(0);
                        if got < need {
                            stale.lock().push(format!("range {table} {id}: needed {need}, read {got}"));
                        }
                    }
                } else {
                    let id = BASE + (n * 13) % ROWS;
                    let need = known.lock().floor(table, id, &passed);
                    let got = read(&mut c, table, id).await;
                    if got < need {
                        stale.lock().push(format!("point {table} {id}: needed {need}, read {got}"));
                    }
                }
            }
        }));
    }
    // the binlog connections killed twice during the run
    let killer = {
        let (done, stop) = (done.clone(), stop.clone());
        tokio::spawn(async move {
            let mut kills = 0;
            for at in [OPS / 3, 2 * OPS / 3] {
                while done.load(Ordering::Relaxed) < at && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                for port in [PRIMARY1, PRIMARY2] {
                    let mut d = mysql_async::Conn::new(opts(port, "proxy", "proxy", None)).await.unwrap();
                    let ids: Vec<u64> = d
                        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' AND USER = 'proxy'")
                        .await
                        .unwrap();
                    for id in ids {
                        if d.query_drop(format!("KILL {id}")).await.is_ok() {
                            kills += 1;
                        }
                    }
                }
            }
            kills
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let kills = killer.await.unwrap();
    let stale = stale.lock().clone();
    let hits = manager_rows(&p, "show @@cache").into_iter().find(|r| r[0] == "ResultCache").map(|r| r[4].clone());
    eprintln!("{OPS} operations, {kills} binlog connections killed, cache hits {hits:?}, stale reads {}", stale.len());
    assert!(kills >= 2, "the binlog connections were killed during the run");
    assert!(stale.is_empty(), "stale reads: {:?}", &stale[..stale.len().min(10)]);
    assert!(hits.and_then(|h| h.parse::<u64>().ok()).unwrap_or(0) > 0, "the cache served reads");
}

/// The version a row shows through the proxy.
async fn read(c: &mut mysql_async::Conn, table: &str, id: u64) -> u64 {
    let v: Option<String> = match table {
        "customer" => c.exec_first("SELECT name FROM customer WHERE id = ?", (id,)).await.unwrap(),
        "orders" => c.exec_first("SELECT CAST(amount AS CHAR) FROM orders WHERE customer_id = ?", (id,)).await.unwrap(),
        _ => c.exec_first("SELECT name FROM region WHERE id = ?", (id,)).await.unwrap(),
    };
    v.and_then(|s| s.split('.').next().and_then(|x| x.parse().ok())).unwrap_or(0)
}

/// Every row's version through the proxy, by a merged range read.
async fn read_all(c: &mut mysql_async::Conn, table: &str) -> Vec<(u64, u64)> {
    let sql = match table {
        "customer" => format!("SELECT id, name FROM customer WHERE id BETWEEN {BASE} AND {} ORDER BY id", BASE + ROWS),
        "orders" => format!(
            "SELECT customer_id, CAST(amount AS CHAR) FROM orders WHERE customer_id BETWEEN {BASE} AND {} ORDER BY customer_id",
            BASE + ROWS
        ),
        _ => format!("SELECT id, name FROM region WHERE id BETWEEN {BASE} AND {} ORDER BY id", BASE + ROWS),
    };
    let rows: Vec<(u64, String)> = c.query(sql).await.unwrap();
    rows.into_iter().map(|(id, v)| (id, v.split('.').next().and_then(|x| x.parse().ok()).unwrap_or(0))).collect()
}
