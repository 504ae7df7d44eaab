//! Session state a statement leaves on a backend connection (user variables set by any statement,
//! temporary tables, named locks, SQL PREPARE, cursors) stays with its client session, and the next
//! client never sees any of it — with busy clients beside it shuffling the pooled connections.

mod common;
#[path = "common/raw.rs"]
mod raw;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

/// Four clients running short statements on `db` until `stop` is set.
fn busy(db: &'static str, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|i| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut c = proxy_conn(db).await;
                while !stop.load(Ordering::Relaxed) {
                    let _: Option<i64> = c.query_first(format!("SELECT {i}")).await.unwrap();
                    c.query_drop("SELECT SLEEP(0.002)").await.unwrap();
                }
            })
        })
        .collect()
}

async fn one<T: FromRow + Send + 'static>(c: &mut mysql_async::Conn, sql: &str) -> T {
    match c.query_first::<T, _>(sql).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("{sql}: no row"),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// Client A builds state without any SET statement, keeps seeing it while others are busy, and
/// disconnects; then new clients see none of it and the lock is free.
/// SQL PREPARE is tested on the pass-through schema only: a sharded schema routes the prepared text,
/// which only the backend reads, to no node in particular.
async fn state_is_kept_and_never_leaks(db: &'static str, tag: &str, sql_prepare: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let others = busy(db, stop.clone());
    let lock = format!("shardcat_state_{tag}");
    let tt = format!("tt_{tag}");
    let mut a = proxy_conn(db).await;
    assert_eq!(one::<i64>(&mut a, "SELECT @x := 41").await, 41);
    assert_eq!(one::<i64>(&mut a, &format!("SELECT GET_LOCK('{lock}', 0)")).await, 1);
    exec(&mut a, &format!("CREATE TEMPORARY TABLE {tt} (v INT)")).await;
    exec(&mut a, &format!("INSERT INTO {tt} VALUES (1), (2)")).await;
    if sql_prepare {
        exec(&mut a, "PREPARE s FROM 'SELECT ? + 1'").await;
    }
    exec(&mut a, "SELECT 7 INTO @y").await;
    for _ in 0..15 {
        assert_eq!(one::<Option<i64>>(&mut a, "SELECT @x").await, Some(41), "A's @x");
        assert_eq!(one::<Option<i64>>(&mut a, "SELECT @y").await, Some(7), "A's @y");
        assert_eq!(one::<i64>(&mut a, &format!("SELECT COUNT(*) FROM {tt}")).await, 2, "A's temporary table");
        if sql_prepare {
            assert_eq!(one::<i64>(&mut a, "EXECUTE s USING 5").await, 6, "A's SQL prepared statement");
        }
        assert_eq!(one::<i64>(&mut a, &format!("SELECT IS_FREE_LOCK('{lock}')")).await, 0, "A's lock");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(a);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // new clients, several at once so that every pooled connection is handed out
    let mut bs = Vec::new();
    for _ in 0..6 {
        bs.push(proxy_conn(db).await);
    }
    for b in bs.iter_mut() {
        assert_eq!(one::<Option<i64>>(b, "SELECT @x").await, None, "another client's @x is visible");
        assert_eq!(one::<Option<i64>>(b, "SELECT @y").await, None, "another client's @y is visible");
        let e = b.query_drop(format!("SELECT COUNT(*) FROM {tt}")).await.expect_err("temporary table leaked");
        assert_eq!(server_error(&e).map(|s| s.0), Some(1146), "{e}");
        if sql_prepare {
            let e = b.query_drop("EXECUTE s USING 1").await.expect_err("SQL prepared statement leaked");
            assert_eq!(server_error(&e).map(|s| s.0), Some(1243), "{e}");
        }
    }
    // the lock was released when A left (the proxy resets A's connections as the session ends)
    let t0 = Instant::now();
    loop {
        let free = one::<i64>(&mut bs[0], &format!("SELECT IS_FREE_LOCK('{lock}')")).await;
        if free == 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "A's named lock is still held after it disconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for o in others {
        o.await.unwrap();
    }
}

#[tokio::test]
async fn pass_through_session_state_is_kept_and_never_leaks() {
    state_is_kept_and_never_leaks("passthru", "pass", true).await;
}

#[tokio::test]
async fn sharded_schema_session_state_is_kept_and_never_leaks() {
    state_is_kept_and_never_leaks("demo", "demo", false).await;
}

/// COM_RESET_CONNECTION forgets the session's state, as on MariaDB.
#[tokio::test]
async fn reset_connection_forgets_state() {
    let mut a = proxy_conn("passthru").await;
    assert_eq!(one::<i64>(&mut a, "SELECT @r := 3").await, 3);
    exec(&mut a, "CREATE TEMPORARY TABLE tt_reset (v INT)").await;
    a.reset().await.unwrap();
    assert_eq!(one::<Option<i64>>(&mut a, "SELECT @r").await, None);
    let e = a.query_drop("SELECT * FROM tt_reset").await.expect_err("temporary table survived a reset");
    assert_eq!(server_error(&e).map(|s| s.0), Some(1146), "{e}");
}

async fn raw_ok(r: &mut raw::Raw, sql: &str) {
    r.queue_query(sql);
    r.flush().await;
    let reply = r.read_reply().await;
    assert_eq!(reply[0][0], 0x00, "{sql}: {:?}", shardcat::proto::packets::parse_err(&reply[0]));
}

/// A cursor opened inside a transaction stays part of it: its rows include the transaction's own
/// uncommitted row, and COMMIT keeps / ROLLBACK undoes what the transaction wrote.
#[tokio::test]
async fn cursor_inside_a_transaction() {
    use bytes::BufMut;
    let port = demo().port;
    let mut check = proxy_conn("passthru").await;
    exec(&mut check, "CREATE TABLE IF NOT EXISTS cur_tx (id INT PRIMARY KEY)").await;
    exec(&mut check, "DELETE FROM cur_tx").await;
    for (verb, id, kept) in [("COMMIT", 1, 1), ("ROLLBACK", 2, 0)] {
        let (mut r, _) = raw::login(port, "app", "app", Some("passthru"), "mysql_native_password").await;
        let run = async {
            raw_ok(&mut r, "BEGIN").await;
            raw_ok(&mut r, &format!("INSERT INTO cur_tx VALUES ({id})")).await;
            let mut p = vec![0x16];
            p.extend_from_slice(format!("SELECT id FROM cur_tx WHERE id = {id}").as_bytes());
            r.queue_command(&p);
            r.flush().await;
            let (_, ok) = r.r.expect().await.unwrap();
            assert_eq!(ok[0], 0x00);
            let stmt = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
            let cols = u16::from_le_bytes([ok[5], ok[6]]);
            for _ in 0..cols {
                r.r.expect().await.unwrap();
            }
            let mut ex = bytes::BytesMut::new();
            ex.put_u8(0x17);
            ex.put_u32_le(stmt);
            ex.put_u8(0x01); // CURSOR_TYPE_READ_ONLY
            ex.put_u32_le(1);
            r.queue_command(&ex);
            r.flush().await;
            let head = r.read_reply().await;
            let st = shardcat::proto::packets::parse_ok(head.last().unwrap()).unwrap().status;
            assert!(st & 0x0040 != 0, "SERVER_STATUS_CURSOR_EXISTS");
            let mut f = bytes::BytesMut::new();
            f.put_u8(0x1C);
            f.put_u32_le(stmt);
            f.put_u32_le(10);
            r.queue_command(&f);
            r.flush().await;
            let mut rows = 0;
            loop {
                let (_, p) = r.r.expect().await.unwrap();
                if shardcat::proto::packets::is_eof_packet(&p) {
                    break;
                }
                assert_eq!(p[0], 0x00, "binary row");
                rows += 1;
            }
            assert_eq!(rows, 1, "the cursor sees the transaction's own row");
            raw_ok(&mut r, verb).await;
        };
        tokio::time::timeout(Duration::from_secs(10), run).await.unwrap_or_else(|_| panic!("{verb}: no answer"));
        let n: i64 = one(&mut check, &format!("SELECT COUNT(*) FROM cur_tx WHERE id = {id}")).await;
        assert_eq!(n, kept, "after {verb}");
    }
}

/// A SET inside a transaction reaches the connections the transaction holds; a SET refused part-way
/// leaves no later SET skipped.
#[tokio::test]
async fn sets_reach_held_connections_and_none_is_skipped() {
    let mut c = proxy_conn("passthru").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS set_tx (id INT PRIMARY KEY)").await;
    exec(&mut c, "INSERT IGNORE INTO set_tx VALUES (1)").await;
    exec(&mut c, "BEGIN").await;
    exec(&mut c, "UPDATE set_tx SET id = 1 WHERE id = 1").await;
    exec(&mut c, "SET NAMES latin1").await;
    exec(&mut c, "SET @in_tx = 'seen'").await;
    let row: (String, String) = one(&mut c, "SELECT @@character_set_client, @in_tx FROM set_tx").await;
    assert_eq!(row, ("latin1".to_string(), "seen".to_string()));
    exec(&mut c, "COMMIT").await;
    let e = c.query_drop("SET @part1 = 1, @@session.no_such_variable_x = 1").await.expect_err("unknown variable");
    assert_eq!(server_error(&e).map(|s| s.0), Some(1193), "{e}");
    exec(&mut c, "SET @after = 2").await;
    for _ in 0..3 {
        let v: Option<i64> = one(&mut c, "SELECT @after FROM set_tx").await;
        assert_eq!(v, Some(2), "a SET after a refused one was skipped");
    }
    // the last value per variable is what the session keeps
    for i in 0..50 {
        exec(&mut c, &format!("SET @loop = {i}")).await;
    }
    let v: Option<i64> = one(&mut c, "SELECT @loop FROM set_tx").await;
    assert_eq!(v, Some(49));
}

/// DDL commits a transaction opened by autocommit=0 on every node it touched, as on MariaDB;
/// CREATE TEMPORARY TABLE does not commit.
#[tokio::test]
async fn ddl_commits_an_autocommit_off_transaction() {
    let mut c = proxy_conn("passthru").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS ddl_ac (id INT PRIMARY KEY)").await;
    exec(&mut c, "DELETE FROM ddl_ac").await;
    exec(&mut c, "SET autocommit = 0").await;
    exec(&mut c, "INSERT INTO ddl_ac VALUES (1)").await;
    exec(&mut c, "CREATE TEMPORARY TABLE ddl_tmp (a INT)").await;
    exec(&mut c, "INSERT INTO ddl_ac VALUES (2)").await;
    exec(&mut c, "ROLLBACK").await;
    exec(&mut c, "INSERT INTO ddl_ac VALUES (3)").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS ddl_ac_other (a INT)").await;
    exec(&mut c, "ROLLBACK").await;
    let mut other = proxy_conn("passthru").await;
    let ids: Vec<i64> = other.query("SELECT id FROM ddl_ac ORDER BY id").await.unwrap();
    assert_eq!(ids, vec![3], "1 and 2 rolled back (a temporary table commits nothing), 3 committed by the DDL");
}

/// Prepared SET statements run on the backend; what they change (as the server reports it) becomes the
/// session's, on every connection it uses, and a later SET NAMES overrides it — as direct.
#[tokio::test]
async fn prepared_set_statements_change_the_session() {
    let mut seen = Vec::new();
    for (port, user, pass) in [(demo().port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let mut c = mysql_async::Conn::new(opts(port, user, pass, Some("passthru"))).await.unwrap();
        c.exec_drop("SET character_set_results = ?", ("latin1",)).await.unwrap();
        c.exec_drop("SET @prepared_v = ?", (42,)).await.unwrap();
        let mut row: Vec<(String, Option<i64>)> = Vec::new();
        for _ in 0..3 {
            row.push(one(&mut c, "SELECT @@character_set_results, @prepared_v").await);
        }
        exec(&mut c, "SET NAMES utf8mb4").await;
        row.push(one(&mut c, "SELECT @@character_set_results, @prepared_v").await);
        let mut other = mysql_async::Conn::new(opts(port, user, pass, Some("passthru"))).await.unwrap();
        row.push(one(&mut other, "SELECT @@character_set_results, @prepared_v").await);
        seen.push(row);
    }
    assert_eq!(seen[0], seen[1], "through shardcat vs direct");
    assert_eq!(seen[1][0], ("latin1".to_string(), Some(42)));
}

/// Transaction control and USE prepared (COM_STMT_PREPARE/EXECUTE, as sysbench and JDBC with server
/// statements send them) do what they do as text, through shardcat as direct; an empty text is 1065.
#[tokio::test]
async fn prepared_transaction_statements_and_use_work_as_direct() {
    let mut seen = Vec::new();
    for (port, user, pass, db, other) in
        [(demo().port, "app", "app", "passthru", "demo"), (PRIMARY1, "proxy", "proxy", "passthru", "shardcat_1")]
    {
        let mut c = mysql_async::Conn::new(opts(port, user, pass, Some(db))).await.unwrap();
        exec(&mut c, "CREATE TABLE IF NOT EXISTS ps_tx (id INT PRIMARY KEY)").await;
        exec(&mut c, "DELETE FROM ps_tx").await;
        let begin = c.prep("BEGIN").await.unwrap();
        let rollback = c.prep("ROLLBACK").await.unwrap();
        let commit = c.prep("COMMIT").await.unwrap();
        c.exec_drop(&begin, ()).await.unwrap();
        exec(&mut c, "INSERT INTO ps_tx VALUES (1)").await;
        c.exec_drop("SAVEPOINT sp1", ()).await.unwrap();
        exec(&mut c, "INSERT INTO ps_tx VALUES (2)").await;
        c.exec_drop("ROLLBACK TO SAVEPOINT sp1", ()).await.unwrap();
        let in_tx: i64 = one(&mut c, "SELECT @@in_transaction").await;
        c.exec_drop(&commit, ()).await.unwrap();
        c.exec_drop(&begin, ()).await.unwrap();
        exec(&mut c, "INSERT INTO ps_tx VALUES (3)").await;
        c.exec_drop(&rollback, ()).await.unwrap();
        let rows: Vec<i64> = c.query("SELECT id FROM ps_tx ORDER BY id").await.unwrap();
        let after: i64 = one(&mut c, "SELECT @@in_transaction").await;
        let empty = c.prep("").await.unwrap_err();
        c.exec_drop(format!("USE {other}"), ()).await.unwrap_or_else(|e| panic!("prepared USE: {e}"));
        let db_now: Option<String> = one(&mut c, "SELECT DATABASE()").await;
        seen.push((in_tx, rows, after, server_error(&empty).map(|e| e.0), db_now.as_deref() == Some(other)));
        exec(&mut c, "DROP TABLE IF EXISTS passthru.ps_tx").await;
    }
    assert_eq!(seen[0], seen[1], "through shardcat vs direct");
    assert_eq!(seen[1], (1, vec![1], 0, Some(1065), true));
}

/// LAST_INSERT_ID() anywhere in a statement reads the session's own value, whichever backend
/// connection runs it, with other clients inserting beside it.
#[tokio::test]
async fn last_insert_id_in_expressions_is_the_sessions() {
    let mut setup = proxy_conn("passthru").await;
    exec(&mut setup, "CREATE TABLE IF NOT EXISTS lid_a (id INT PRIMARY KEY AUTO_INCREMENT, v INT)").await;
    exec(&mut setup, "CREATE TABLE IF NOT EXISTS lid_b (a_id INT, tag INT)").await;
    let stop = Arc::new(AtomicBool::new(false));
    let others: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut c = proxy_conn("passthru").await;
                while !stop.load(Ordering::Relaxed) {
                    c.query_drop("INSERT INTO lid_a (v) VALUES (0)").await.unwrap();
                }
            })
        })
        .collect();
    let mut c = proxy_conn("passthru").await;
    for tag in 0..20 {
        c.query_drop("INSERT INTO lid_a (v) VALUES (1)").await.unwrap();
        let id = c.last_insert_id().unwrap() as i64;
        tokio::time::sleep(Duration::from_millis(2)).await;
        exec(&mut c, &format!("INSERT INTO lid_b VALUES (LAST_INSERT_ID(), {tag})")).await;
        let got: i64 =
            one(&mut c, &format!("SELECT a_id FROM lid_b WHERE tag = {tag} ORDER BY a_id DESC LIMIT 1")).await;
        assert_eq!(got, id, "LAST_INSERT_ID() inside an INSERT");
        let v: i64 = one(&mut c, "SELECT LAST_INSERT_ID() + 0").await;
        assert_eq!(v, id, "LAST_INSERT_ID() inside an expression");
        exec(&mut c, &format!("DELETE FROM lid_b WHERE tag = {tag}")).await;
    }
    stop.store(true, Ordering::Relaxed);
    for o in others {
        o.await.unwrap();
    }
}

/// SHOW WARNINGS / SHOW ERRORS / SHOW COUNT(*) WARNINGS answer for the session's previous statement,
/// as direct — with busy clients beside it, whose warnings never show.
#[tokio::test]
async fn show_warnings_is_about_the_previous_statement() {
    let stop = Arc::new(AtomicBool::new(false));
    let others: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut c = proxy_conn("passthru").await;
                while !stop.load(Ordering::Relaxed) {
                    // leaves a warning on whatever connection runs it
                    let _: Option<i64> = c.query_first("SELECT CAST('x9' AS SIGNED)").await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    for (port, user, pass) in [(demo().port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let mut c = mysql_async::Conn::new(opts(port, user, pass, Some("passthru"))).await.unwrap();
        exec(&mut c, "CREATE TABLE IF NOT EXISTS diag_t (id INT)").await;
        let mut got: Vec<String> = Vec::new();
        let _: Option<i64> = c.query_first("SELECT CAST('12abc' AS SIGNED)").await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let w: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
        got.push(format!("{w:?}"));
        let w: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
        got.push(format!("again {w:?}"));
        let n: Option<u64> = c.query_first("SHOW COUNT(*) WARNINGS").await.unwrap();
        got.push(format!("count {n:?}"));
        let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
        let w: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
        got.push(format!("after a statement without tables {w:?}"));
        let _: Option<i64> = c.query_first("SELECT COUNT(*) FROM diag_t").await.unwrap();
        let w: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
        got.push(format!("after a statement on a table {w:?}"));
        let _ = c.query_drop("SELECT * FROM no_such_diag_table").await.unwrap_err();
        let e: Vec<(String, u32, String)> = c.query("SHOW ERRORS").await.unwrap();
        got.push(format!("errors {e:?}"));
        exec(&mut c, "GET DIAGNOSTICS @dn = NUMBER").await;
        exec(&mut c, "GET DIAGNOSTICS CONDITION 1 @de = MYSQL_ERRNO, @ds = RETURNED_SQLSTATE").await;
        let d: (i64, i64, String) = one(&mut c, "SELECT @dn, @de, @ds").await;
        got.push(format!("get diagnostics {d:?}"));
        seen.push(got);
    }
    stop.store(true, Ordering::Relaxed);
    for o in others {
        o.await.unwrap();
    }
    assert_eq!(seen[0], seen[1], "through shardcat vs direct");
    assert!(seen[1][0].contains("12abc"), "{:?}", seen[1]);
}

/// A session's own wait_timeout closes it when idle that long, as MariaDB does.
#[tokio::test]
async fn session_wait_timeout_closes_an_idle_session() {
    let mut outcomes = Vec::new();
    for (port, user, pass) in [(demo().port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let mut c = mysql_async::Conn::new(opts(port, user, pass, Some("passthru"))).await.unwrap();
        exec(&mut c, "SET wait_timeout = 1").await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        outcomes.push(c.query_drop("SELECT 1").await.is_err());
    }
    assert_eq!(outcomes, vec![true, true], "closed after wait_timeout, through shardcat and direct");
    // the session's wait_timeout is the proxy's: the pooled backend connection it used lives on
    let mut a = proxy_conn("passthru").await;
    exec(&mut a, "SET wait_timeout = 1").await;
    let _: Option<i64> = a.query_first("SELECT 1 FROM DUAL WHERE 1 = 1").await.unwrap();
    drop(a);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut b = proxy_conn("passthru").await;
    for _ in 0..4 {
        let v: Option<i64> = b.query_first("SELECT 2").await.unwrap();
        assert_eq!(v, Some(2), "the next client gets a live backend connection");
    }
}

/// SQL_CALC_FOUND_ROWS … LIMIT: FOUND_ROWS() is the server's total, as direct; a sequence's PREVIOUS
/// VALUE FOR is the session's own, with busy clients beside it.
#[tokio::test]
async fn found_rows_and_sequence_values_are_the_sessions() {
    let stop = Arc::new(AtomicBool::new(false));
    let others = busy("passthru", stop.clone());
    let mut setup = proxy_conn("passthru").await;
    exec(&mut setup, "CREATE TABLE IF NOT EXISTS fr_t (id INT PRIMARY KEY)").await;
    exec(&mut setup, "INSERT IGNORE INTO fr_t SELECT seq FROM seq_1_to_50").await;
    exec(&mut setup, "CREATE SEQUENCE IF NOT EXISTS fr_seq").await;
    let mut seen = Vec::new();
    for (port, user, pass) in [(demo().port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let mut c = mysql_async::Conn::new(opts(port, user, pass, Some("passthru"))).await.unwrap();
        let ids: Vec<i64> =
            c.query("SELECT SQL_CALC_FOUND_ROWS id FROM fr_t WHERE id > 10 ORDER BY id LIMIT 3").await.unwrap();
        let total: i64 = one(&mut c, "SELECT FOUND_ROWS()").await;
        exec(&mut c, "UPDATE fr_t SET id = id WHERE id <= 3").await;
        c.query_drop("UPDATE fr_t SET id = id + 1000 WHERE id > 48").await.unwrap();
        // in the select list, named as MariaDB names them, typed as the functions are
        let r = c.query_iter("SELECT ROW_COUNT(), ROW_COUNT()  +  1, FOUND_ROWS() * 10 AS f").await.unwrap();
        let cols: Vec<(String, u32)> =
            r.columns_ref().iter().map(|c| (c.name_str().into_owned(), c.column_length())).collect();
        let (changed, plus, found): (i64, i64, i64) = r.collect_and_drop().await.unwrap().remove(0);
        // FOUND_ROWS() is 1 here: `SELECT FOUND_ROWS()` returned one row, and UPDATEs leave it
        assert_eq!((plus, found), (changed + 1, 10), "via {port}");
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ROW_COUNT()", "ROW_COUNT()  +  1", "f"], "via {port}");
        assert_eq!(cols[0].1, 21, "via {port}: ROW_COUNT()'s BIGINT length");
        exec(&mut c, "UPDATE fr_t SET id = id - 1000 WHERE id > 1000").await;
        let _: Vec<i64> = c.query("SELECT id FROM fr_t LIMIT 1").await.unwrap();
        let after_select: i64 = one(&mut c, "SELECT ROW_COUNT()").await;
        // inside larger statements too
        exec(&mut c, "CREATE TABLE IF NOT EXISTS fr_log (port INT, n BIGINT)").await;
        exec(&mut c, &format!("DELETE FROM fr_log WHERE port = {port}")).await;
        exec(&mut c, "UPDATE fr_t SET id = id WHERE id <= 3").await;
        c.query_drop("UPDATE fr_t SET id = id + 1000 WHERE id > 47").await.unwrap();
        exec(&mut c, &format!("INSERT INTO fr_log VALUES ({port}, ROW_COUNT())")).await;
        let _: Vec<i64> = c.query("SELECT SQL_CALC_FOUND_ROWS id FROM fr_t LIMIT 2").await.unwrap();
        let below: i64 = one(&mut c, "SELECT COUNT(*) FROM fr_t WHERE id <= FOUND_ROWS()").await;
        exec(&mut c, "UPDATE fr_t SET id = id - 1000 WHERE id > 1000").await;
        let logged: i64 = one(&mut c, &format!("SELECT n FROM fr_log WHERE port = {port}")).await;
        assert_eq!((logged, below), (3, 47), "via {port}: ROW_COUNT() 3, FOUND_ROWS() 50 (ids 1..47 are <= 50)");
        seen.push((ids, total * 1000 + changed * 10 + after_select));
    }
    assert_eq!(seen[0], seen[1], "through shardcat vs direct");
    assert_eq!(seen[1].1, 40 * 1000 + 2 * 10 - 1, "FOUND_ROWS() 40, ROW_COUNT() 2, then -1 after a SELECT");
    let mut c = proxy_conn("passthru").await;
    let next: i64 = one(&mut c, "SELECT NEXT VALUE FOR fr_seq").await;
    for _ in 0..10 {
        let prev: i64 = one(&mut c, "SELECT PREVIOUS VALUE FOR fr_seq").await;
        assert_eq!(prev, next, "the session's own PREVIOUS VALUE FOR");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for o in others {
        o.await.unwrap();
    }
}
