//! Failover with promotion, on a private semi-synchronous stack (ports 3331–3334): a client writes and
//! reads in a loop through shardcat; the primary is killed with SIGKILL; writes resume on the promoted replica
//! within 5 s, no acknowledged write is missing there, dnindex.properties holds the new index (kept by
//! a restarted proxy), and the old primary, restarted, is fenced (read_only) and not written to.
//! The result cache is on: after the promotion its binlog reader follows the new primary, so a write
//! made directly there (bypassing the proxy) is seen by the next reads through the proxy; and the change
//! queue goes on there from its GTID position, every row once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

const DIR: &str = "/tmp/shardcat-failover-stack";
const PORTS: &str = "3331 3332 3333 3334";
const PRIMARY: u16 = 3331;
const REPLICA: u16 = 3332;

fn stack_cmd(args: &[&str]) {
    stack_at(DIR, PORTS, "fo", true, args);
}

/// One step of the client loop, on a fresh connection: write a row, then read it back.
async fn insert(port: u16, id: i64) -> Result<(), String> {
    let mut c = mysql_async::Conn::new(opts(port, "app", "app", Some("fo"))).await.map_err(|e| e.to_string())?;
    c.query_drop(format!("INSERT INTO t VALUES ({id})")).await.map_err(|e| e.to_string())?;
    let n: Option<i64> =
        c.query_first(format!("SELECT COUNT(*) FROM t WHERE id = {id}")).await.map_err(|e| e.to_string())?;
    assert_eq!(n, Some(1), "write {id} acknowledged but not read back");
    Ok(())
}

#[tokio::test]
async fn killed_primary_fails_over_to_the_promoted_replica() {
    // a fresh stack: a previous run left it failed over
    stack_cmd(&["down"]);
    let _ = std::fs::remove_dir_all(DIR);
    stack_cmd(&["up"]);
    let conf = fixture_copy("failover");
    // the change queue follows the failover too: every row of fo.t to a NATS stream of this run
    let stream = format!("SCFO_{}", std::process::id());
    std::fs::write(
        conf.path().join("cdc.xml"),
        format!(
            "<cdc><sink name=\"n\" type=\"nats\" url=\"nats://127.0.0.1:4222\" subject=\"{stream}.{{schema}}.{{table}}\" stream=\"{stream}\"/>\n\
             <feed name=\"fo\" schema=\"fo\" tables=\"t\" sink=\"n\"/></cdc>\n"
        ),
    )
    .unwrap();
    let server = std::fs::read_to_string(conf.path().join("server.xml")).unwrap().replacen(
        "<system>",
        &format!("<system>\n\t\t<property name=\"stateDir\">{}</property>", conf.path().join("state").display()),
        1,
    );
    std::fs::write(conf.path().join("server.xml"), server).unwrap();
    let proxy = Proxy::start(conf.path(), None);
    let mut c = mysql_async::Conn::new(opts(proxy.port, "app", "app", Some("fo"))).await.unwrap();
    exec(&mut c, "CREATE TABLE IF NOT EXISTS t (id BIGINT PRIMARY KEY)").await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // heartbeats have seen both hosts

    // a transaction is open on the primary when it dies
    let mut tx = mysql_async::Conn::new(opts(proxy.port, "app", "app", Some("fo"))).await.unwrap();
    exec(&mut tx, "BEGIN").await;
    exec(&mut tx, "INSERT INTO t VALUES (900001)").await;

    // write in a loop; kill the primary after a while
    let mut acked = Vec::new();
    let mut id = 0i64;
    let start = Instant::now();
    let mut killed_at: Option<Instant> = None;
    let mut first_ok_after_kill: Option<Duration> = None;
    while start.elapsed() < Duration::from_secs(20) {
        if killed_at.is_none() && acked.len() >= 50 {
            let pid = std::fs::read_to_string(format!("{DIR}/p1/mariadbd.pid")).unwrap();
            std::process::Command::new("kill").args(["-9", pid.trim()]).status().unwrap();
            killed_at = Some(Instant::now());
        }
        id += 1;
        if insert(proxy.port, id).await.is_ok() {
            acked.push(id);
            if let (Some(k), None) = (killed_at, first_ok_after_kill) {
                first_ok_after_kill = Some(k.elapsed());
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if first_ok_after_kill.is_some() && acked.len() >= 100 {
            break;
        }
    }
    let gap = first_ok_after_kill.expect("writes never resumed after the primary was killed");
    eprintln!("failover: first acknowledged write {} ms after kill -9", gap.as_millis());
    assert!(gap < Duration::from_secs(5), "writes resumed only after {gap:?}");

    // the open transaction gets a clear error on its next statement, and a retry succeeds
    match tx.query_drop("INSERT INTO t VALUES (900002)").await {
        Err(mysql_async::Error::Server(e)) => {
            assert!(e.code == 1430 || e.code == 2006, "{e:?}");
            assert!(e.message.contains("'hh'"), "the error names the dataHost: {}", e.message);
        }
        other => panic!("a statement of a transaction on the dead primary: {other:?}"),
    }
    exec(&mut tx, "BEGIN").await;
    exec(&mut tx, "INSERT INTO t VALUES (900001), (900002)").await;
    exec(&mut tx, "COMMIT").await;
    assert_eq!(root_sql(REPLICA, "SELECT COUNT(*) FROM fo.t WHERE id >= 900001").unwrap(), "2");

    // every acknowledged write is on the promoted replica
    let have = root_sql(REPLICA, "SELECT GROUP_CONCAT(id ORDER BY id) FROM fo.t").unwrap();
    let have: std::collections::BTreeSet<i64> = have.split(',').filter_map(|s| s.parse().ok()).collect();
    let missing: Vec<&i64> = acked.iter().filter(|i| !have.contains(i)).collect();
    assert!(missing.is_empty(), "acknowledged writes missing after failover: {missing:?}");
    assert_eq!(root_sql(REPLICA, "SELECT @@read_only").unwrap(), "0", "the replica was promoted");

    // the new index is persisted and a restarted proxy keeps it
    let dn = std::fs::read_to_string(conf.path().join("dnindex.properties")).unwrap();
    assert!(dn.lines().any(|l| l.trim() == "hh=1"), "{dn}");
    drop(c);
    drop(tx);
    drop(proxy);
    let proxy = Proxy::start(conf.path(), None);
    insert(proxy.port, 1_000_001).await.unwrap();
    assert_eq!(root_sql(REPLICA, "SELECT COUNT(*) FROM fo.t WHERE id = 1000001").unwrap(), "1");

    // the old primary comes back: fenced read-only, never written to
    stack_cmd(&["start", "p1"]);
    let mut fenced = false;
    for _ in 0..50 {
        if root_sql(PRIMARY, "SELECT @@read_only").ok().as_deref() == Some("1") {
            fenced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(fenced, "the former primary was not set read_only");
    insert(proxy.port, 1_000_002).await.unwrap();
    assert_eq!(root_sql(PRIMARY, "SELECT COUNT(*) FROM fo.t WHERE id = 1000002").unwrap(), "0");
    assert_eq!(root_sql(REPLICA, "SELECT COUNT(*) FROM fo.t WHERE id = 1000002").unwrap(), "1");
    assert!(proxy.log_text().contains("re-attach"), "the log tells the operator to re-attach the old primary");

    // the result cache on the promoted replica: a stored count, then a write made directly there
    let mut c = mysql_async::Conn::new(opts(proxy.port, "app", "app", Some("fo"))).await.unwrap();
    let count = "SELECT COUNT(*) FROM t WHERE id > 0";
    let t0 = Instant::now();
    let before = loop {
        // until the reader streams from the new primary, reads are not stored (fail closed)
        let h0 = cache_hits(&proxy).await;
        let n: i64 = c.query_first(count).await.unwrap().unwrap();
        let _: Option<i64> = c.query_first(count).await.unwrap();
        if cache_hits(&proxy).await > h0 {
            break n;
        }
        let log = proxy.log_text();
        let binlog: Vec<&str> = log.lines().filter(|l| l.contains("binlog")).collect();
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no read was served from the cache after the failover: {binlog:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    root_sql(REPLICA, "INSERT INTO fo.t VALUES (3000001)").unwrap();
    let t1 = Instant::now();
    loop {
        let n: i64 = c.query_first(count).await.unwrap().unwrap();
        if n == before + 1 {
            break;
        }
        assert_eq!(n, before, "a count between the two");
        assert!(t1.elapsed() < Duration::from_secs(2), "a direct write on the new primary was not seen in 2 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("failover: a direct write on the new primary seen through the cache after {:?}", t1.elapsed());

    // the change queue went on on the promoted replica from its GTID position: every row the new
    // primary holds arrived once, none it does not hold
    let have = root_sql(REPLICA, "SELECT GROUP_CONCAT(id ORDER BY id) FROM fo.t").unwrap();
    let have: std::collections::BTreeSet<i64> = have.split(',').filter_map(|s| s.parse().ok()).collect();
    let client = async_nats::connect("nats://127.0.0.1:4222").await.expect("NATS on 4222");
    let js = async_nats::jetstream::new(client);
    let t2 = Instant::now();
    let (inserted, ids) = loop {
        let events: Vec<serde_json::Value> = jetstream_messages(&js, &stream)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(_, payload)| serde_json::from_slice(&payload).unwrap_or_default())
            .collect();
        let rows: Vec<&serde_json::Value> = events.iter().filter(|e| e["op"] == "c").collect();
        let ids: std::collections::HashSet<String> = rows.iter().map(|e| e["id"].to_string()).collect();
        let inserted: Vec<i64> = rows.iter().filter_map(|e| e["after"]["id"].as_i64()).collect();
        if inserted.len() >= have.len() || t2.elapsed() > Duration::from_secs(20) {
            break (inserted, ids);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ids.len(), inserted.len(), "no change twice in the stream");
    let got: std::collections::BTreeSet<i64> = inserted.iter().copied().collect();
    assert_eq!(got.len(), inserted.len(), "no row inserted twice in the stream");
    assert_eq!(got, have, "the stream holds exactly the rows of the promoted primary");
    eprintln!("failover: the change queue delivered all {} rows once across the promotion", got.len());
    let _ = js.delete_stream(&stream).await;
    stack_cmd(&["down"]);
}

/// The result cache's hits so far, read off /metrics.
async fn cache_hits(p: &Proxy) -> u64 {
    let (_, body) = http_get(p.http_port, "/metrics").await;
    body.lines()
        .find(|l| l.starts_with("shardcat_cache_lookups_total{result=\"hit\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}
