//! Backend session state is replayed only when it differs, and the client's CLIENT_FOUND_ROWS choice
//! reaches the backend. Alone in its binary: it reads the primaries' global statement counters.

mod common;

use common::*;
use mysql_async::prelude::*;

async fn counters(port: u16) -> (i64, i64) {
    let mut d = direct_conn(port, "passthru").await;
    let rows: Vec<(String, i64)> =
        d.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_set_option', 'Com_change_db')").await.unwrap();
    let get = |n: &str| rows.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| *v).unwrap_or(0);
    (get("Com_set_option"), get("Com_change_db"))
}

/// The counters are global: the tests of this file run one at a time.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn statements_do_not_replay_unchanged_session_state() {
    let _g = LOCK.lock().await;
    let mut c = proxy_conn("passthru").await;
    exec(&mut c, "SET NAMES latin1").await;
    exec(&mut c, "SET @v = 1").await;
    let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    let before = counters(PRIMARY1).await;
    for i in 0..30 {
        let v: Option<i64> = c.query_first(format!("SELECT {i} + @v")).await.unwrap();
        assert_eq!(v, Some(i + 1));
    }
    let after = counters(PRIMARY1).await;
    assert!(after.0 - before.0 == 0, "SET statements replayed: {} for 30 queries", after.0 - before.0);
    assert!(after.1 - before.1 == 0, "COM_INIT_DB replayed: {} for 30 queries", after.1 - before.1);
}

#[tokio::test]
async fn client_found_rows_flag_reaches_the_backend() {
    let _g = LOCK.lock().await;
    let port = demo().port;
    let mut seen = Vec::new();
    for found_rows in [false, true] {
        for (p, u, pw) in [(port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
            let opts =
                mysql_async::OptsBuilder::from_opts(opts(p, u, pw, Some("passthru"))).client_found_rows(found_rows);
            let mut c = mysql_async::Conn::new(opts).await.unwrap();
            exec(&mut c, "CREATE TABLE IF NOT EXISTS fr (id INT PRIMARY KEY, v INT)").await;
            exec(&mut c, "REPLACE INTO fr VALUES (1, 5)").await;
            c.query_drop("UPDATE fr SET v = 5 WHERE id = 1").await.unwrap();
            seen.push((found_rows, p == port, c.affected_rows()));
        }
    }
    assert_eq!(seen, vec![(false, true, 0), (false, false, 0), (true, true, 1), (true, false, 1)]);
}

/// Backend connections keep at most max_prepared_stmt_count × 3/4 / maxCon statements each (least
/// recently used closed first), so many client statements cannot exhaust the server's limit; the
/// client never notices (evicted statements are prepared again).
#[tokio::test]
async fn backend_statement_cache_stays_under_the_servers_limit() {
    let _g = LOCK.lock().await;
    stack();
    let dir = tempfile::tempdir().unwrap();
    let schema = std::fs::read_to_string(root().join("config/schema.xml"))
        .unwrap()
        .replace("maxCon=\"100\" minCon=\"2\"", "maxCon=\"6000\" minCon=\"1\"");
    std::fs::write(dir.path().join("schema.xml"), schema).unwrap();
    std::fs::copy(root().join("config/server.xml"), dir.path().join("server.xml")).unwrap();
    let proxy = Proxy::start(dir.path(), Some(&root().join("rules")));
    let mut c = mysql_async::Conn::new(opts(proxy.port, "app", "app", Some("passthru"))).await.unwrap();
    let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    let count = || async {
        let mut d = direct_conn(PRIMARY1, "passthru").await;
        let v: Option<(String, i64)> = d.query_first("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").await.unwrap();
        v.map(|(_, n)| n).unwrap_or(0)
    };
    let before = count().await;
    for round in 0..3 {
        for k in 0..10i64 {
            let v: Option<i64> = c.exec_first(format!("SELECT ? + {k}"), (round,)).await.unwrap();
            assert_eq!(v, Some(round + k));
        }
    }
    let after = count().await;
    // 16382 * 3 / 4 / 6000 = 2 per connection; the proxy has at most a few connections to this server
    assert!(after - before <= 6, "backend statements grew by {} for 10 client statements", after - before);
}
