//! Routing as this stage defines it, seen by a client: default node, global tables (read one node,
//! write all), sharded tables (reads concatenated, writes summed, refusals with clear errors),
//! statements without tables, SHOW/DESC, read-only users, parse failures.

mod common;

use common::*;
use mysql_async::prelude::*;

async fn setup_demo_tables() -> mysql_async::Conn {
    let mut c = proxy_conn("demo").await;
    for sql in [
        "DROP TABLE IF EXISTS region",
        "CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(10))",
        "DROP TABLE IF EXISTS customer",
        "CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(20))",
        "DROP TABLE IF EXISTS notes",
        "CREATE TABLE notes (id INT PRIMARY KEY AUTO_INCREMENT, txt VARCHAR(20))",
    ] {
        exec(&mut c, sql).await;
    }
    c
}

/// Serialises the tests of this file: they share the demo tables.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn global_table_writes_reach_every_node_and_report_one() {
    let _g = LOCK.lock().await;
    let mut c = setup_demo_tables().await;
    c.query_drop("INSERT INTO region VALUES (1,'eu'),(2,'us')").await.unwrap();
    assert_eq!(c.affected_rows(), 2, "affected rows of one node, as one server reports");
    c.query_drop("UPDATE region SET name='EU' WHERE id=1").await.unwrap();
    assert_eq!(c.affected_rows(), 1);
    for (port, db) in [(PRIMARY1, "shardcat_1"), (PRIMARY2, "shardcat_2")] {
        let mut d = direct_conn(port, db).await;
        let rows: Vec<(i64, String)> = d.query("SELECT id, name FROM region ORDER BY id").await.unwrap();
        assert_eq!(rows, vec![(1, "EU".into()), (2, "us".into())], "node on {port}");
    }
    let rows: Vec<(i64, String)> = c.query("SELECT id, name FROM region ORDER BY id").await.unwrap();
    assert_eq!(rows, vec![(1, "EU".into()), (2, "us".into())]);
    // outside a transaction a write on several nodes is one transaction: a failure on one node
    // rolls it back on every node, and the error names the node that refused it
    let mut d2 = direct_conn(PRIMARY2, "shardcat_2").await;
    exec(&mut d2, "INSERT INTO region VALUES (3,'only-on-2')").await;
    let e = c.query_drop("INSERT INTO region VALUES (3,'x')").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap();
    assert_eq!(code, 1062, "{msg}");
    assert!(msg.contains("dn2") && msg.contains("rolled back on every dataNode"), "{msg}");
    let mut d1 = direct_conn(PRIMARY1, "shardcat_1").await;
    let n: Option<i64> = d1.query_first("SELECT COUNT(*) FROM region WHERE id = 3").await.unwrap();
    assert_eq!(n, Some(0), "the node that applied the INSERT rolled it back");
    let n: Option<i64> =
        d2.query_first("SELECT COUNT(*) FROM region WHERE id = 3 AND name = 'only-on-2'").await.unwrap();
    assert_eq!(n, Some(1));
}

#[tokio::test]
async fn sharded_reads_concatenate_and_writes_sum() {
    let _g = LOCK.lock().await;
    let mut c = setup_demo_tables().await;
    // rows placed directly on the shards (INSERT routing arrives with the rule functions)
    let mut d1 = direct_conn(PRIMARY1, "shardcat_1").await;
    let mut d2 = direct_conn(PRIMARY2, "shardcat_2").await;
    exec(&mut d1, "INSERT INTO customer VALUES (2,'b'),(4,'d')").await;
    exec(&mut d2, "INSERT INTO customer VALUES (1,'a'),(3,'c'),(5,'e')").await;
    let mut rows: Vec<(i64, String)> = c.query("SELECT id, name FROM customer").await.unwrap();
    rows.sort();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0], (1, "a".into()));
    let rows: Vec<(i64, String)> = c.exec("SELECT id, name FROM customer WHERE id > ?", (2,)).await.unwrap();
    assert_eq!(rows.len(), 3, "prepared multi-node read");
    c.query_drop("UPDATE customer SET name = UPPER(name) WHERE id <> 3").await.unwrap();
    assert_eq!(c.affected_rows(), 4, "affected rows summed over shards");
    c.query_drop("DELETE FROM customer WHERE id >= 4").await.unwrap();
    assert_eq!(c.affected_rows(), 2);
    for (sql, what) in [
        ("SELECT VARIANCE(id) FROM customer", "VARIANCE"),
        ("SELECT GROUP_CONCAT(name ORDER BY 1) FROM customer", "GROUP_CONCAT"),
    ] {
        let e = c.query_drop(sql).await.unwrap_err();
        let (code, state, msg) = server_error(&e).unwrap();
        assert_eq!((code, state.as_str()), (1105, "HY000"), "{sql}");
        assert!(msg.contains(what), "{sql}: {msg}");
    }
    let ids: Vec<i64> = c.query("SELECT id FROM customer ORDER BY id DESC").await.unwrap();
    assert_eq!(ids, vec![3, 2, 1], "ORDER BY merged across shards");
    exec(&mut d1, "INSERT INTO customer VALUES (6,'c')").await;
    let n: Option<(i64, i64)> = c.query_first("SELECT COUNT(DISTINCT name), COUNT(*) FROM customer").await.unwrap();
    assert_eq!(n, Some((3, 4)), "COUNT(DISTINCT) over two shards counts 'c' once");
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1), "the session survives refused statements");
}

#[tokio::test]
async fn default_node_tables_and_statements_without_tables() {
    let _g = LOCK.lock().await;
    let mut c = setup_demo_tables().await;
    c.query_drop("INSERT INTO notes (txt) VALUES ('a'), ('b')").await.unwrap();
    let first_id = c.last_insert_id();
    let v: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(v, first_id, "LAST_INSERT_ID() answers the session's last insert");
    let mut d = direct_conn(PRIMARY1, "shardcat_default").await;
    let n: Option<i64> = d.query_first("SELECT COUNT(*) FROM notes").await.unwrap();
    assert_eq!(n, Some(2), "unconfigured tables live on the default dataNode");
    let v: Option<i64> = c.query_first("SELECT 6 * 7").await.unwrap();
    assert_eq!(v, Some(42));
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("demo"), "the logical schema, not the physical database");
    let tables: Vec<String> = c.query("SHOW TABLES").await.unwrap();
    for t in ["customer", "notes", "orders", "region"] {
        assert!(tables.contains(&t.to_string()), "{t} in {tables:?}");
    }
    let cols: Vec<mysql_async::Row> = c.query("DESC customer").await.unwrap();
    assert_eq!(cols.len(), 2);
    let create: Option<(String, String)> = c.query_first("SHOW CREATE TABLE region").await.unwrap();
    assert!(create.unwrap().1.contains("CREATE TABLE `region`"));
    let cols: Vec<mysql_async::Row> = c.query("SHOW COLUMNS FROM notes FROM demo").await.unwrap();
    assert_eq!(cols.len(), 2);
}

#[tokio::test]
async fn unknown_tables_read_only_users_and_parse_errors() {
    let _g = LOCK.lock().await;
    let port = demo().port;
    let mut ro = mysql_async::Conn::new(opts(port, "reader", "reader", Some("demo"))).await.unwrap();
    let _: Vec<mysql_async::Row> = ro.query("SELECT * FROM region").await.unwrap();
    let e = ro.query_drop("INSERT INTO notes (txt) VALUES ('x')").await.unwrap_err();
    let (code, state, msg) = server_error(&e).unwrap();
    assert_eq!((code, state.as_str()), (1142, "42000"), "{msg}");
    assert!(msg.contains("notes"), "{msg}");
    let e = ro.query_drop("DROP TABLE notes").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1142));
    // a schema without default node: unknown tables are 1146
    let mut c = proxy_conn("demo").await;
    let e = c.query_drop("SELECT * FROM demo.nosuch_table_xyz").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1146), "{e}");
    let e = c.query_drop("SELEC oops FROM customer").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| (s.0, s.1)), Some((1064, "42000".into())));
    let e = c.query_drop("SELECT * FROM customer c JOIN notes n ON c.id = n.id").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap();
    assert_eq!(code, 1105);
    assert!(msg.contains("customer") && msg.contains("notes"), "{msg}");
    let e = c.query_drop("").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1065));
}

/// A backend that is down at startup: the proxy starts, says which dataHost, and recovers later.
#[tokio::test]
async fn backend_down_at_startup_gives_1429_naming_the_data_host() {
    let _g = LOCK.lock().await;
    stack();
    let dir = std::env::temp_dir().join(format!("shardcat-down-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schema =
        std::fs::read_to_string(root().join("config/schema.xml")).unwrap().replace("127.0.0.1:3309", "127.0.0.1:1");
    std::fs::write(dir.join("schema.xml"), schema).unwrap();
    std::fs::copy(root().join("config/server.xml"), dir.join("server.xml")).unwrap();
    let p = Proxy::start(&dir, Some(&root().join("rules")));
    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("demo")))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\nproxy log:\n{}", p.log_text()));
    let e = c.query_drop("SELECT * FROM customer").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap();
    assert_eq!(code, 1429, "{msg}");
    assert!(msg.contains("host2"), "{msg}");
    // what the mariadb CLI (libmariadb) shows: the error itself, not "2027 Received malformed packet"
    let cli = std::process::Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{}", p.port), "-uapp", "-papp", "demo", "-e", "SELECT * FROM customer"])
        .output()
        .expect("run mariadb");
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(stderr.contains("ERROR 1429") && stderr.contains("host2"), "{stderr}");
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1), "nodes on the live host still work");
    assert!(p.log_text().contains("backend is down"), "the log names the down host");
}

/// Mycat hints steer a statement to chosen nodes; the statement runs without the comment.
#[tokio::test]
async fn mycat_hints_choose_the_nodes() {
    let _g = LOCK.lock().await;
    let mut c = setup_demo_tables().await;
    exec(&mut c, "/*!mycat:dataNode=dn2*/ INSERT INTO customer VALUES (1, 'one'), (3, 'three')").await;
    exec(&mut c, "/*#mycat:dataNode=dn1*/ INSERT INTO customer VALUES (2, 'two')").await;
    let n: Option<i64> = c.query_first("/*#mycat:dataNode=dn2*/ SELECT COUNT(*) FROM customer").await.unwrap();
    assert_eq!(n, Some(2));
    let mut d1 = direct_conn(PRIMARY1, "shardcat_1").await;
    let ids: Vec<i64> = d1.query("SELECT id FROM customer").await.unwrap();
    assert_eq!(ids, vec![2]);
    // checkSQLschema holds for hinted statements: demo.customer is the node's own table
    let n: Option<i64> = c.query_first("/*#mycat:dataNode=dn2*/ SELECT COUNT(*) FROM demo.customer").await.unwrap();
    assert_eq!(n, Some(2));
    let e = c.query_drop("/*#mycat:dataNode=dn9*/ SELECT 1").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap();
    assert_eq!(code, 1064);
    assert!(msg.contains("dn9"), "{msg}");
    let e = c.query_drop("/*#mycat:bogus*/ SELECT 1").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1064));
    let v: Option<String> = c.query_first("/*#mycat:schema=passthru*/ SELECT DATABASE()").await.unwrap();
    assert_eq!(v.as_deref(), Some("demo"), "DATABASE() stays the session's schema");
}
