//! Shard routing on the stack: rows inserted through the proxy land on exactly the shard their rule
//! says (checked by direct queries to each MariaDB), queries reach only the shards they must (checked
//! with EXPLAIN and with stray rows planted on the wrong shard), and what cannot be routed is refused.

mod common;
#[path = "common/raw.rs"]
mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use common::*;
use mysql_async::prelude::*;

/// dataNode → (port, database), as tests/fixtures/sharding/schema.xml lays them out.
fn node(n: usize) -> (u16, &'static str) {
    match n {
        0 => (PRIMARY1, "sc_a"),
        1 => (PRIMARY1, "sc_b"),
        2 => (PRIMARY2, "sc_a"),
        _ => (PRIMARY2, "sc_b"),
    }
}

fn proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        stack();
        for port in [PRIMARY1, PRIMARY2] {
            let out = std::process::Command::new("mariadb")
                .args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), "-uproxy", "-pproxy", "-e"])
                .arg("CREATE DATABASE IF NOT EXISTS sc_a; CREATE DATABASE IF NOT EXISTS sc_b")
                .output()
                .expect("mariadb client");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        Proxy::start(&root().join("tests/fixtures/sharding"), None)
    })
}

async fn conn(schema: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(proxy().port, "app", "app", Some(schema))).await.expect("connect")
}

/// The tests of this file share tables: one at a time.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn fresh_tables(c: &mut mysql_async::Conn) {
    for (t, cols) in [
        ("t_mod", "id BIGINT PRIMARY KEY, v VARCHAR(20)"),
        ("t_range", "id BIGINT PRIMARY KEY, v VARCHAR(20)"),
        ("t_murmur", "id BIGINT PRIMARY KEY, v VARCHAR(20)"),
        ("t_enum", "code INT NULL, v VARCHAR(20)"),
        ("t_long", "id BIGINT PRIMARY KEY, v VARCHAR(20)"),
        ("t_date", "d DATE PRIMARY KEY, v VARCHAR(20)"),
        ("customer", "id BIGINT PRIMARY KEY, name VARCHAR(20)"),
        ("orders", "id BIGINT PRIMARY KEY, customer_id BIGINT"),
        ("order_items", "id BIGINT PRIMARY KEY, order_id BIGINT"),
        ("region", "id INT PRIMARY KEY, name VARCHAR(20)"),
    ] {
        exec(c, &format!("DROP TABLE IF EXISTS {t}")).await;
        exec(c, &format!("CREATE TABLE {t} ({cols})")).await;
    }
}

/// The values of `col` on each of the four shards, read directly from MariaDB.
async fn placement(table: &str, col: &str) -> Vec<BTreeSet<String>> {
    let mut out = Vec::new();
    for n in 0..4 {
        let (port, db) = node(n);
        let mut d = direct_conn(port, db).await;
        let vals: Vec<Option<String>> =
            d.query(format!("SELECT CAST({col} AS CHAR) FROM {table}")).await.unwrap_or_default();
        out.push(vals.into_iter().map(|v| v.unwrap_or_else(|| "NULL".into())).collect());
    }
    out
}

fn expect(values: &[(&str, usize)]) -> Vec<BTreeSet<String>> {
    let mut out = vec![BTreeSet::new(); 4];
    for (v, n) in values {
        out[*n].insert(v.to_string());
    }
    out
}

/// INSERT … SELECT from tables sharded otherwise: the SELECT runs first, every row goes to the shard
/// its id names, all of them in one transaction (a duplicate on one shard leaves none inserted).
#[tokio::test]
async fn insert_select_across_shards_routes_every_row_atomically() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    exec(&mut c, "INSERT INTO t_range (id, v) VALUES (1, 'a'), (2, 'b'), (30000, 'c'), (45001, 'd'), (7, 'e')").await;
    c.query_drop("INSERT INTO t_mod (id, v) SELECT id, UPPER(v) FROM t_range WHERE id > 1").await.unwrap();
    assert_eq!(c.affected_rows(), 4);
    // mod4: id % 4 is the shard
    assert_eq!(placement("t_mod", "id").await, expect(&[("30000", 0), ("45001", 1), ("2", 2), ("7", 3)]));
    let v: Option<String> = c.query_first("SELECT v FROM t_mod WHERE id = 45001").await.unwrap();
    assert_eq!(v.as_deref(), Some("D"));
    // id 2 is there already: its shard refuses, every shard rolls back (id 1 is not inserted)
    let e = c.query_drop("INSERT INTO t_mod (id, v) SELECT id, v FROM t_range").await.unwrap_err();
    assert_eq!(server_error(&e).map(|(code, _, _)| code), Some(1062), "{e}");
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM t_mod").await.unwrap();
    assert_eq!(n, Some(4), "nothing of the failed INSERT … SELECT is left");
    c.query_drop("INSERT INTO t_mod (id, v) SELECT id, v FROM t_range WHERE id < 0").await.unwrap();
    assert_eq!(c.affected_rows(), 0, "no rows: nothing to insert");
    // inside a transaction: it reads the transaction's own rows, and goes with its ROLLBACK
    exec(&mut c, "BEGIN").await;
    exec(&mut c, "INSERT INTO t_range (id, v) VALUES (9, 'tx')").await;
    c.query_drop("INSERT INTO t_mod (id, v) SELECT id, v FROM t_range WHERE id = 9").await.unwrap();
    let v: Option<String> = c.query_first("SELECT v FROM t_mod WHERE id = 9").await.unwrap();
    assert_eq!(v.as_deref(), Some("tx"));
    exec(&mut c, "ROLLBACK").await;
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM t_mod WHERE id = 9").await.unwrap();
    assert_eq!(n, Some(0));
}

/// The dataNodes EXPLAIN names for a statement.
async fn explain(c: &mut mysql_async::Conn, sql: &str) -> BTreeMap<String, String> {
    let rows: Vec<(String, String, String)> =
        c.query(format!("EXPLAIN {sql}")).await.unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    rows.into_iter().filter(|(n, _, _)| !n.is_empty()).map(|(n, s, _)| (n, s)).collect()
}

/// EXPLAIN's PLAN column: the proxy's operators over the Route, outermost first.
#[tokio::test]
async fn explain_prints_the_operator_tree_beside_the_nodes() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    let rows: Vec<(String, String, String)> =
        c.query("EXPLAIN SELECT v, COUNT(DISTINCT id) FROM t_mod GROUP BY v ORDER BY v LIMIT 3").await.unwrap();
    let plan: Vec<&str> = rows.iter().map(|r| r.2.as_str()).filter(|p| !p.is_empty()).collect();
    assert_eq!(
        plan,
        [
            "Limit offset=0 count=3",
            "└─ Sort by v",
            "   └─ Aggregate by v: COUNT(DISTINCT id): distinct values counted (arriving sorted, one held)",
            "      └─ MergeSort by v, id",
            "         └─ Route to 4 dataNodes (sdn1, sdn2, sdn3, sdn4)",
        ]
    );
    assert_eq!(rows.iter().filter(|r| !r.0.is_empty()).count(), 4, "one row per dataNode beside it");
    // a statement whose subquery runs first: EXPLAIN names it and runs nothing
    let rows: Vec<(String, String, String)> =
        c.query("EXPLAIN SELECT * FROM t_mod WHERE id IN (SELECT id FROM t_range WHERE v = 'x')").await.unwrap();
    let plan: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        plan,
        [
            "Then the statement with their values written in, routed as written",
            "└─ Runs first: SELECT id FROM t_range WHERE v = 'x'"
        ]
    );
    let rows: Vec<(String, String, String)> = c.query("EXPLAIN SELECT * FROM t_mod WHERE id = 6").await.unwrap();
    assert_eq!(
        rows,
        vec![(
            "sdn3".to_string(),
            "SELECT * FROM t_mod WHERE id = 6".to_string(),
            "Route to dataNode sdn3".to_string()
        )]
    );
}

fn nodes(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn rows_land_on_the_shard_their_rule_names() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;

    // mod: id % 4
    let ids: Vec<i64> = (0..20).collect();
    let values: Vec<String> = ids.iter().map(|i| format!("({i}, 'v{i}')")).collect();
    c.query_drop(format!("INSERT INTO t_mod (id, v) VALUES {}", values.join(", "))).await.unwrap();
    assert_eq!(c.affected_rows(), 20, "affected rows of a split INSERT are summed");
    let want: Vec<(String, usize)> = ids.iter().map(|i| (i.to_string(), (i % 4) as usize)).collect();
    let want: Vec<(&str, usize)> = want.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    assert_eq!(placement("t_mod", "id").await, expect(&want));

    // range map with K/M units: 0-1K, 1K1-2M (=20000), 2M1-3M, 3M1-10M
    let range_ids = [0i64, 1000, 1001, 20000, 20001, 30000, 30001, 99999];
    let bound = |v: i64| match v {
        0..=1000 => 0,
        1001..=20000 => 1,
        20001..=30000 => 2,
        _ => 3,
    };
    let vals: Vec<String> = range_ids.iter().map(|i| format!("({i}, 'r')")).collect();
    exec(&mut c, &format!("INSERT INTO t_range (id, v) VALUES {}", vals.join(","))).await;
    let want: Vec<(String, usize)> = range_ids.iter().map(|i| (i.to_string(), bound(*i))).collect();
    let want: Vec<(&str, usize)> = want.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    assert_eq!(placement("t_range", "id").await, expect(&want));
    let e = c.query_drop("INSERT INTO t_range (id, v) VALUES (100001, 'out')").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap();
    assert_eq!(code, 1064);
    assert!(msg.contains("can't find any valid datanode") && msg.contains("100001"), "{msg}");

    // murmur (count 2): the reference vectors for "1".."20"
    let murmur = [1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1];
    let vals: Vec<String> = (1..=20).map(|i| format!("({i}, 'm')")).collect();
    exec(&mut c, &format!("INSERT INTO t_murmur (id, v) VALUES {}", vals.join(","))).await;
    let want: Vec<(String, usize)> = (1..=20).map(|i| (i.to_string(), murmur[i - 1])).collect();
    let want: Vec<(&str, usize)> = want.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    assert_eq!(placement("t_murmur", "id").await, expect(&want));

    // enumeration with a default node, NULL included (goes to the default node)
    exec(
        &mut c,
        "INSERT INTO t_enum (code, v) VALUES (10, 'a'), (20, 'b'), (30, 'c'), (40, 'd'), (50, 'e'), (NULL, 'n')",
    )
    .await;
    assert_eq!(
        placement("t_enum", "code").await,
        expect(&[("10", 0), ("20", 1), ("30", 2), ("40", 3), ("50", 3), ("NULL", 3)])
    );

    // PartitionByLong 4×256: ((v >>> 32) ^ v) & 1023, 256 slots per partition
    let long_ids = [0i64, 255, 256, 600, 1023, 1024, 5000, 4_294_967_296];
    let slot = |v: i64| ((((v as u64) >> 32) ^ (v as u64)) & 1023) as usize / 256;
    let vals: Vec<String> = long_ids.iter().map(|i| format!("({i}, 'l')")).collect();
    exec(&mut c, &format!("INSERT INTO t_long (id, v) VALUES {}", vals.join(","))).await;
    let want: Vec<(String, usize)> = long_ids.iter().map(|i| (i.to_string(), slot(*i))).collect();
    let want: Vec<(&str, usize)> = want.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    assert_eq!(placement("t_long", "id").await, expect(&want));

    // dates: 92-day periods from 2024-01-01, wrapping after the 4 periods up to 2024-12-31
    let dates = ["2024-01-01", "2024-04-01", "2024-04-02", "2024-07-05", "2024-12-31", "2025-01-02", "2025-04-05"];
    let period = |d: &str| {
        let day = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let n = (day - chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()).num_days() / 92;
        (if n >= 4 { n % 4 } else { n }) as usize
    };
    let vals: Vec<String> = dates.iter().map(|d| format!("('{d}', 'd')")).collect();
    exec(&mut c, &format!("INSERT INTO t_date (d, v) VALUES {}", vals.join(","))).await;
    let want: Vec<(&str, usize)> = dates.iter().map(|d| (*d, period(d))).collect();
    assert_eq!(placement("t_date", "d").await, expect(&want));

    // global: every node
    exec(&mut c, "INSERT INTO region VALUES (1, 'eu')").await;
    assert_eq!(placement("region", "id").await, expect(&[("1", 0), ("1", 1), ("1", 2), ("1", 3)]));
}

#[tokio::test]
async fn er_children_follow_their_parents() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    exec(&mut c, "INSERT INTO customer (id, name) VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e')").await;
    // joinKey references the root's sharding column: the fast path, multi-row
    exec(&mut c, "INSERT INTO orders (id, customer_id) VALUES (101, 1), (102, 2), (103, 3), (104, 4), (105, 5)").await;
    let want: Vec<(String, usize)> = (1..=5).map(|i: i64| ((100 + i).to_string(), (i % 4) as usize)).collect();
    let want: Vec<(&str, usize)> = want.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    assert_eq!(placement("orders", "id").await, expect(&want));
    // second level: located by looking the parent order up; several parents in one statement
    exec(&mut c, "INSERT INTO order_items (id, order_id) VALUES (1001, 101), (1002, 102), (1003, 103), (1004, 101)")
        .await;
    assert_eq!(placement("order_items", "id").await, expect(&[("1001", 1), ("1004", 1), ("1002", 2), ("1003", 3)]));
    // inside a transaction the uncommitted parent is found
    exec(&mut c, "BEGIN").await;
    exec(&mut c, "INSERT INTO customer (id, name) VALUES (6, 'f')").await;
    exec(&mut c, "INSERT INTO orders (id, customer_id) VALUES (106, 6)").await;
    exec(&mut c, "INSERT INTO order_items (id, order_id) VALUES (1006, 106)").await;
    exec(&mut c, "COMMIT").await;
    assert!(placement("order_items", "id").await[2].contains("1006"));
    let e = c.query_drop("INSERT INTO order_items (id, order_id) VALUES (1999, 999)").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap();
    assert_eq!(code, 1064);
    assert!(msg.contains("parent") && msg.contains("999"), "{msg}");
    // reads on a child by joinKey go to the parent's shard
    let r = explain(&mut c, "SELECT * FROM orders WHERE customer_id = 3").await;
    assert_eq!(r.keys().cloned().collect::<BTreeSet<_>>(), nodes(&["sdn4"]));
    let e = c.query_drop("UPDATE orders SET customer_id = 2 WHERE id = 101").await.unwrap_err();
    assert!(server_error(&e).unwrap().2.contains("Parent relevant column can't be updated"));
}

#[tokio::test]
async fn queries_reach_only_the_shards_they_must() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    let cases: &[(&str, &[&str])] = &[
        ("SELECT * FROM t_mod WHERE id = 5", &["sdn2"]),
        ("SELECT * FROM t_mod WHERE id IN (1, 2, 6)", &["sdn2", "sdn3"]),
        ("SELECT * FROM t_mod WHERE id = 1 OR id = 4", &["sdn1", "sdn2"]),
        ("SELECT * FROM t_mod m WHERE m.id = 7 AND v = 'x'", &["sdn4"]),
        ("SELECT * FROM t_mod WHERE v = 'x'", &["sdn1", "sdn2", "sdn3", "sdn4"]),
        ("SELECT * FROM t_mod WHERE id = 1 AND id = 2", &["sdn1"]),
        ("SELECT * FROM t_range WHERE id BETWEEN 500 AND 1500", &["sdn1", "sdn2"]),
        ("SELECT * FROM t_range WHERE id > 25000", &["sdn3", "sdn4"]),
        ("SELECT * FROM t_range WHERE id < 1001", &["sdn1"]),
        ("SELECT * FROM t_range WHERE id >= 1001 AND id <= 1001", &["sdn2"]),
        ("SELECT * FROM t_long WHERE id BETWEEN 1 AND 5000", &["sdn1", "sdn2", "sdn3", "sdn4"]),
        ("SELECT * FROM t_date WHERE d BETWEEN '2024-02-01' AND '2024-05-01'", &["sdn1", "sdn2"]),
        ("SELECT * FROM t_enum WHERE code IN (10, 40)", &["sdn1", "sdn4"]),
        ("UPDATE t_mod SET v = 'y' WHERE id = 6", &["sdn3"]),
        ("DELETE FROM t_mod WHERE id IN (8, 9)", &["sdn1", "sdn2"]),
        ("SELECT * FROM shard.t_mod WHERE id = 3", &["sdn4"]),
    ];
    for (sql, want) in cases {
        let got: BTreeSet<String> = explain(&mut c, sql).await.keys().cloned().collect();
        assert_eq!(got, nodes(want), "{sql}");
    }
    // what each shard receives: only its rows; the schema prefix stripped (checkSQLschema)
    let r = explain(&mut c, "INSERT INTO t_mod (id, v) VALUES (1, 'a'), (2, 'b'), (5, 'c')").await;
    assert_eq!(r.get("sdn2").map(String::as_str), Some("INSERT INTO t_mod (id, v) VALUES (1, 'a'), (5, 'c')"));
    assert_eq!(r.get("sdn3").map(String::as_str), Some("INSERT INTO t_mod (id, v) VALUES (2, 'b')"));
    // a name qualified by the logical schema names the node's own database on a single node
    let r = explain(&mut c, "SELECT * FROM shard.t_mod WHERE id = 3").await;
    let (_, db4) = node(3);
    assert_eq!(r.get("sdn4").cloned(), Some(format!("SELECT * FROM `{db4}`.t_mod WHERE id = 3")));
    // and the statements really run only there: a stray row planted on a wrong shard stays unseen
    exec(&mut c, "INSERT INTO t_mod (id, v) VALUES (5, 'right')").await;
    let (port, db) = node(0);
    exec(&mut direct_conn(port, db).await, "INSERT INTO t_mod (id, v) VALUES (5, 'stray')").await;
    let v: Vec<String> = c.query("SELECT v FROM t_mod WHERE id = 5").await.unwrap();
    assert_eq!(v, vec!["right".to_string()]);
    let v: Vec<String> = c.exec("SELECT v FROM t_mod WHERE id = ?", (5,)).await.unwrap();
    assert_eq!(v, vec!["right".to_string()], "a prepared point select routes by its parameter");
    let v: Vec<String> = c.exec("SELECT v FROM shard.t_mod WHERE id = ?", (5,)).await.unwrap();
    assert_eq!(v, vec!["right".to_string()], "prepared with the schema's name on the table");
    let mut all: Vec<String> = c.query("SELECT v FROM t_mod").await.unwrap();
    all.sort();
    assert_eq!(all, vec!["right".to_string(), "stray".to_string()], "a full scan reaches every shard");
}

#[tokio::test]
async fn writes_that_cannot_be_routed_exactly_are_refused() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    exec(&mut c, "INSERT INTO t_mod (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')").await;
    let cases: &[(&str, u16, &str)] = &[
        ("INSERT INTO t_mod VALUES (9, 'x')", 1064, "ColumnList"),
        ("INSERT INTO t_mod (v) VALUES ('x')", 1064, "sharding column"),
        (
            "INSERT INTO t_mod (id, v) VALUES (1, 'a') ON DUPLICATE KEY UPDATE id = 2",
            1105,
            "Sharding column can't be updated",
        ),
        ("INSERT INTO t_mod (id, v) VALUES (NULL, 'x')", 1064, "NULL"),
        ("INSERT INTO t_mod (id, v) VALUES (NOW(), 'x')", 1105, "literal"),
        ("REPLACE INTO orders (id, customer_id) VALUES (1, 1)", 1105, "REPLACE"),
        ("UPDATE t_mod SET id = 4 WHERE id = 1", 1105, "Sharding column can't be updated"),
        ("UPDATE t_mod SET id = 1 WHERE id = 1 OR v = 'a'", 1105, "Sharding column can't be updated"),
        ("DELETE FROM t_mod ORDER BY id LIMIT 1", 1105, "ORDER BY or LIMIT"),
        ("SELECT STDDEV(v) FROM t_mod", 1105, "STDDEV"),
    ];
    for (sql, code, text) in cases {
        let e = c.query_drop(*sql).await.unwrap_err();
        let (got, _, msg) = server_error(&e).unwrap_or_else(|| panic!("{sql}: {e}"));
        assert_eq!(got, *code, "{sql}: {msg}");
        assert!(msg.contains(text), "{sql}: {msg}");
    }
    // the provable no-op update of the sharding column is allowed; counts are summed over shards
    c.query_drop("UPDATE t_mod SET id = 1, v = 'z' WHERE id = 1 AND v = 'a'").await.unwrap();
    assert_eq!(c.affected_rows(), 1);
    c.query_drop("UPDATE t_mod SET v = 'all'").await.unwrap();
    assert_eq!(c.affected_rows(), 3);
    exec(&mut c, "REPLACE INTO t_mod (id, v) VALUES (2, 'replaced')").await;
    let v: Option<String> = c.query_first("SELECT v FROM t_mod WHERE id = 2").await.unwrap();
    assert_eq!(v.as_deref(), Some("replaced"), "REPLACE where the primary key is the sharding column");
    let n: Option<i64> = c.query_first("SELECT 1 FROM t_mod WHERE id = 1").await.unwrap();
    assert_eq!(n, Some(1), "the session is fine after the refusals");
}

#[tokio::test]
async fn limits_and_prepared_inserts_across_shards() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    let vals: Vec<String> = (0..20).map(|i| format!("({i}, 'v')")).collect();
    exec(&mut c, &format!("INSERT INTO t_mod (id, v) VALUES {}", vals.join(","))).await;
    let ids: Vec<i64> = c.query("SELECT id FROM t_mod LIMIT 3").await.unwrap();
    assert_eq!(ids.len(), 3);
    let ids: Vec<i64> = c.query("SELECT id FROM t_mod LIMIT 18, 5").await.unwrap();
    assert_eq!(ids.len(), 2, "20 rows, offset 18");
    let ids: Vec<i64> = c.query("SELECT id FROM t_mod LIMIT 5 OFFSET 2").await.unwrap();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 5);
    // sqlMaxLimit=3 on schema `limited`: a plain scan is capped, a primary-key lookup is not
    let mut l = conn("limited").await;
    let ids: Vec<i64> = l.query("SELECT id FROM t_mod").await.unwrap();
    assert_eq!(ids.len(), 3);
    let ids: Vec<i64> = l.query("SELECT id FROM t_mod WHERE id IN (1, 2, 3, 4, 5)").await.unwrap();
    assert_eq!(ids.len(), 5);
    // a prepared multi-row INSERT whose rows belong to different shards
    c.exec_drop("INSERT INTO t_mod (id, v) VALUES (?, ?), (?, ?)", (101, "it's", 102, "b\\c")).await.unwrap();
    let got = placement("t_mod", "v").await;
    assert!(got[1].contains("it's") && got[2].contains("b\\c"), "{got:?}");
    let v: Vec<(i64, String)> = c.exec("SELECT id, v FROM t_mod WHERE id IN (?, ?)", (101, 102)).await.unwrap();
    assert_eq!(v.len(), 2);
}

/// The Mycat 1.6 sample routes its tables as Mycat does (EXPLAIN needs no backend).
#[tokio::test]
async fn the_mycat_sample_routes_like_mycat() {
    let dir = std::env::temp_dir().join(format!("shardcat-mycat16-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(root().join("tests/fixtures/mycat16")).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        // never touch the machine's own MariaDB: point the sample's hosts at a closed port
        let text = text
            .replace("localhost:3306", "127.0.0.1:1")
            .replace("localhost:3316", "127.0.0.1:1")
            .replace("192.168.1.200:3306", "127.0.0.1:1");
        std::fs::write(dir.join(e.file_name()), text).unwrap();
    }
    let p = Proxy::start(&dir, None);
    // every backend is down: tell the driver the settings it would otherwise ask a backend for
    let o = mysql_async::OptsBuilder::from_opts(opts(p.port, "root", "123456", Some("TESTDB")))
        .max_allowed_packet(Some(16 << 20))
        .wait_timeout(Some(28800));
    let mut c = mysql_async::Conn::new(o).await.unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("SELECT * FROM travelrecord WHERE id = 5000000", &["dn1"]),
        ("SELECT * FROM travelrecord WHERE id = 5000001", &["dn2"]),
        ("SELECT * FROM travelrecord WHERE id = 10000001", &["dn3"]),
        ("SELECT * FROM hotnews WHERE id = 5", &["dn3"]),
        ("SELECT * FROM employee WHERE sharding_id = 10010", &["dn2"]),
        ("SELECT * FROM customer WHERE sharding_id = 10000", &["dn1"]),
        ("SELECT * FROM orders WHERE customer_id = 1", &["dn1", "dn2"]),
        ("INSERT INTO travelrecord (id, v) VALUES (1, 'a'), (6000000, 'b')", &["dn1", "dn2"]),
        ("INSERT INTO employee (id, sharding_id) VALUES (1, 10000)", &["dn1"]),
        ("INSERT INTO company (id) VALUES (1)", &["dn1", "dn2", "dn3"]),
    ];
    for (sql, want) in cases {
        let got: BTreeSet<String> = explain(&mut c, sql).await.keys().cloned().collect();
        assert_eq!(got, nodes(want), "{sql}");
    }
    let global: BTreeMap<String, String> = explain(&mut c, "SELECT * FROM company").await;
    assert_eq!(global.len(), 1, "a global read goes to one node");
    // sqlMaxLimit=100 on TESTDB: appended to a plain single-table SELECT, as Mycat does
    let r = explain(&mut c, "SELECT * FROM travelrecord WHERE id = 1").await;
    assert_eq!(r.get("dn1").map(String::as_str), Some("SELECT * FROM travelrecord WHERE id = 1 LIMIT 100"));
}

/// Text statements that differ only in their values share one cached parse (their shape); each must
/// still reach the shard of its own value. Every other shard holds a stray row with the same key.
#[tokio::test]
async fn statements_of_one_shape_route_by_their_own_values() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    for id in 0..8 {
        exec(&mut c, &format!("INSERT INTO t_mod (id, v) VALUES ({id}, 'right{id}')")).await;
    }
    let dates = ["2024-01-01", "2024-04-02", "2024-07-05", "2024-12-31"];
    for (i, d) in dates.iter().enumerate() {
        exec(&mut c, &format!("INSERT INTO t_date (d, v) VALUES ('{d}', 'right{i}')")).await;
    }
    let ids: Vec<String> = (0..8).map(|i| i.to_string()).collect();
    let want: Vec<(&str, usize)> = ids.iter().enumerate().map(|(i, s)| (s.as_str(), i % 4)).collect();
    assert_eq!(placement("t_mod", "id").await, expect(&want), "each INSERT on its own shard");
    let want: Vec<(&str, usize)> = dates.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    assert_eq!(placement("t_date", "d").await, expect(&want), "each INSERT on its own shard");
    for n in 0..4 {
        let (port, db) = node(n);
        let mut d = direct_conn(port, db).await;
        exec(&mut d, "INSERT IGNORE INTO t_mod (id, v) SELECT seq, 'stray' FROM seq_0_to_7").await;
        exec(&mut d, "INSERT IGNORE INTO t_date (d, v) VALUES ('2024-01-01', 'stray'), ('2024-04-02', 'stray'), ('2024-07-05', 'stray'), ('2024-12-31', 'stray')").await;
    }
    for id in 0..8 {
        let v: Vec<String> = c.query(format!("SELECT v FROM t_mod WHERE id = {id}")).await.unwrap();
        assert_eq!(v, vec![format!("right{id}")], "SELECT … id = {id}");
        let v: Vec<String> = c.query(format!("select v from t_mod where id in ({id}) and v like 'r%'")).await.unwrap();
        assert_eq!(v, vec![format!("right{id}")], "IN ({id})");
    }
    for (i, d) in dates.iter().enumerate() {
        let v: Vec<String> = c.query(format!("SELECT v FROM t_date WHERE d = '{d}'")).await.unwrap();
        assert_eq!(v, vec![format!("right{i}")], "SELECT … d = '{d}'");
    }
    for id in 0..8 {
        c.query_drop(format!("UPDATE t_mod SET v = 'upd{id}' WHERE id = {id}")).await.unwrap();
        assert_eq!(c.affected_rows(), 1, "UPDATE … id = {id}");
    }
    let mut seen: Vec<String> = c.query("SELECT v FROM t_mod WHERE v LIKE 'upd%'").await.unwrap();
    seen.sort();
    assert_eq!(seen, (0..8).map(|i| format!("upd{i}")).collect::<Vec<_>>());
    for id in 0..8 {
        c.query_drop(format!("DELETE FROM t_mod WHERE id = {id}")).await.unwrap();
        assert_eq!(c.affected_rows(), 1, "DELETE … id = {id}");
    }
    let left: Vec<String> = c.query("SELECT DISTINCT v FROM t_mod").await.unwrap();
    assert_eq!(left, vec!["stray".to_string()], "only the stray rows are left");
}

type Outcome = (mysql_async::Conn, Option<(u16, String)>);

/// Two transactions, each having locked rows of `locks` (id → letter), then each updating `waits`
/// (the second 100 ms after the first): each connection with its server error (code, SQLSTATE), if any.
async fn collide(locks: [&[i64]; 2], waits: [i64; 2]) -> [Outcome; 2] {
    let mut handles = Vec::new();
    let mut conns = Vec::new();
    for (letter, ids) in ["A", "B"].iter().zip(locks) {
        let mut c = conn("shard").await;
        exec(&mut c, "BEGIN").await;
        for id in ids {
            exec(&mut c, &format!("UPDATE t_mod SET v = '{letter}' WHERE id = {id}")).await;
        }
        conns.push(c);
    }
    for ((mut c, letter), id) in conns.into_iter().zip(["A", "B"]).zip(waits) {
        handles.push(tokio::spawn(async move {
            let r = c.query_drop(format!("UPDATE t_mod SET v = '{letter}' WHERE id = {id}")).await;
            let err =
                r.err().map(|e| server_error(&e).map(|(code, state, _)| (code, state)).unwrap_or((0, e.to_string())));
            (c, err)
        }));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let joined = tokio::time::timeout(std::time::Duration::from_secs(10), join_all(handles))
        .await
        .expect("the deadlock is broken within seconds, not after innodb_lock_wait_timeout");
    let mut it = joined.into_iter();
    match (it.next(), it.next()) {
        (Some(a), Some(b)) => [a, b],
        _ => panic!("statement task failed"),
    }
}

async fn join_all(hs: Vec<tokio::task::JoinHandle<Outcome>>) -> Vec<Outcome> {
    let mut out = Vec::new();
    for h in hs {
        out.push(h.await.expect("statement task"));
    }
    out
}

async fn values(c: &mut mysql_async::Conn, ids: &str) -> Vec<(i64, String)> {
    c.query(format!("SELECT id, v FROM t_mod WHERE id IN ({ids}) ORDER BY id")).await.unwrap()
}

/// Two transactions that each lock a row on one server and then wait for the other's row on the other
/// server: neither MariaDB sees the cycle. As on one server, one of them gets 1213 (40001) at once, its
/// whole transaction rolled back on both servers, and the other goes on.
#[tokio::test]
async fn a_deadlock_across_servers_is_broken_like_one_servers() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    exec(&mut c, "INSERT INTO t_mod (id, v) VALUES (0, 'x'), (2, 'x')").await; // 0: primary 1, 2: primary 2
    let [(mut a, ea), (mut b, eb)] = collide([&[0], &[2]], [2, 0]).await;
    let deadlock = Some((1213, "40001".to_string()));
    let (winner, mut loser, letter) = match (&ea, &eb) {
        (None, d) if *d == deadlock => (&mut a, b, "A"),
        (d, None) if *d == deadlock => (&mut b, a, "B"),
        other => panic!("expected one 1213 and one success, got {other:?}"),
    };
    exec(winner, "COMMIT").await;
    assert_eq!(values(&mut c, "0, 2").await, vec![(0, letter.to_string()), (2, letter.to_string())]);
    // the loser's transaction is over: a retry runs as a new transaction and commits
    exec(&mut loser, "BEGIN").await;
    exec(&mut loser, "UPDATE t_mod SET v = 'R' WHERE id = 0").await;
    exec(&mut loser, "UPDATE t_mod SET v = 'R' WHERE id = 2").await;
    exec(&mut loser, "COMMIT").await;
    assert_eq!(values(&mut c, "0, 2").await, vec![(0, "R".to_string()), (2, "R".to_string())]);
}

/// A deadlock one MariaDB detects (both waits on primary 1) between transactions that also wrote on
/// primary 2: the victim's write there is rolled back too, its lock released, not left open.
#[tokio::test]
async fn a_deadlock_on_one_server_ends_the_transaction_on_every_server() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    // ids 0 and 1 live on primary 1, 2 and 3 on primary 2
    exec(&mut c, "INSERT INTO t_mod (id, v) VALUES (0, 'x'), (1, 'x'), (2, 'x'), (3, 'x')").await;
    let [(mut a, ea), (mut b, eb)] = collide([&[0, 2], &[1, 3]], [1, 0]).await;
    let deadlock = Some((1213, "40001".to_string()));
    let (winner, letter, victim_row) = match (&ea, &eb) {
        (None, d) if *d == deadlock => (&mut a, "A", 3),
        (d, None) if *d == deadlock => (&mut b, "B", 2),
        other => panic!("expected one 1213 and one success, got {other:?}"),
    };
    // the victim's write on primary 2 is gone and its lock released: a direct writer is not kept waiting
    let (port, db) = node(victim_row as usize);
    let mut d = direct_conn(port, db).await;
    exec(&mut d, "SET SESSION innodb_lock_wait_timeout = 2").await;
    exec(&mut d, &format!("UPDATE t_mod SET v = 'D' WHERE id = {victim_row}")).await;
    exec(winner, "COMMIT").await;
    let w = letter.to_string();
    let winner_row = 5 - victim_row;
    let mut want = vec![(0, w.clone()), (1, w.clone()), (victim_row, "D".to_string()), (winner_row, w)];
    want.sort();
    assert_eq!(values(&mut c, "0, 1, 2, 3").await, want);
}

/// A transaction whose first statement on a node is a read (its BEGIN travels with that read): the
/// read already belongs to the transaction (REPEATABLE READ keeps its snapshot), and ROLLBACK undoes
/// the writes on every node.
#[tokio::test]
async fn a_transaction_starting_with_reads_is_one_transaction_on_every_node() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    exec(&mut c, "INSERT INTO t_mod (id, v) VALUES (0, 'x'), (2, 'x')").await; // primary 1, primary 2
    let mut t = conn("shard").await;
    exec(&mut t, "BEGIN").await;
    assert_eq!(values(&mut t, "0").await, vec![(0, "x".to_string())]);
    let v: Vec<String> = t.exec("SELECT v FROM t_mod WHERE id = ?", (2,)).await.unwrap();
    assert_eq!(v, vec!["x".to_string()]);
    for (n, id) in [(0, 0), (2, 2)] {
        let (port, db) = node(n);
        exec(&mut direct_conn(port, db).await, &format!("UPDATE t_mod SET v = 'outside' WHERE id = {id}")).await;
    }
    assert_eq!(values(&mut t, "0, 2").await, vec![(0, "x".into()), (2, "x".into())], "the snapshot of the first reads");
    exec(&mut t, "UPDATE t_mod SET v = 'T' WHERE id IN (0, 2)").await;
    exec(&mut t, "ROLLBACK").await;
    assert_eq!(values(&mut c, "0, 2").await, vec![(0, "outside".into()), (2, "outside".into())]);
}

/// Under NO_BACKSLASH_ESCAPES a backslash in a literal is an ordinary character for every scanner
/// and rewrite of the proxy: an INSERT split over shards, a schema prefix stripped next to 'C:\',
/// a prepared statement — the rows are those one MariaDB would hold.
#[tokio::test]
async fn no_backslash_escapes_reaches_every_rewrite() {
    let mut c = proxy_conn("demo").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await;
    exec(&mut c, "DELETE FROM customer WHERE id IN (9101, 9102, 9103)").await;
    exec(&mut c, "SET sql_mode = 'NO_BACKSLASH_ESCAPES'").await;
    exec(&mut c, r"INSERT INTO customer (id, name) VALUES (9101, 'C:\'), (9102, 'a\''b')").await;
    let rows: Vec<(i64, String)> =
        c.query(r"SELECT id, name FROM demo.customer WHERE name = 'C:\' OR name = 'a\''b' ORDER BY id").await.unwrap();
    assert_eq!(rows, vec![(9101, r"C:\".to_string()), (9102, r"a\'b".to_string())]);
    let n: Option<i64> =
        c.exec_first(r"SELECT COUNT(*) FROM demo.customer WHERE name = 'C:\' AND id = ?", (9101,)).await.unwrap();
    assert_eq!(n, Some(1), "prepared, with a literal backslash in its text");
    exec(&mut c, r"UPDATE customer SET name = '\' WHERE id IN (9101, 9102)").await;
    let mut d1 = direct_conn(PRIMARY1, "shardcat_1").await;
    let mut d2 = direct_conn(PRIMARY2, "shardcat_2").await;
    let mut names: Vec<String> = Vec::new();
    for d in [&mut d1, &mut d2] {
        names.extend(d.query::<String, _>("SELECT name FROM customer WHERE id IN (9101, 9102)").await.unwrap());
    }
    assert_eq!(names, vec![r"\".to_string(), r"\".to_string()], "each shard holds a single backslash");
}

/// A GBK client: a character whose second byte is 0x5C is one character for every scanner and
/// rewrite of the proxy (not a backslash escaping the quote after it), and rewritten statements reach
/// the shards in GBK — the rows are those one MariaDB holds.
#[tokio::test]
async fn a_gbk_client_is_read_in_gbk() {
    let mut c = proxy_conn("demo").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await;
    exec(&mut c, "DELETE FROM customer WHERE id IN (9201, 9202)").await;
    let (mut r, _) = raw::login(demo().port, "app", "app", Some("demo"), "mysql_native_password").await;
    let mut run = |stmt: Vec<u8>| {
        let mut p = vec![0x03];
        p.extend_from_slice(&stmt);
        r.queue_command(&p);
    };
    run(b"SET NAMES gbk".to_vec());
    // 0x95 0x5C: one GBK character; a schema prefix to strip and an INSERT split over both shards
    let mut stmt = b"INSERT INTO demo.customer (id, name) VALUES (9201, '".to_vec();
    stmt.extend_from_slice(b"\x95\x5C");
    stmt.extend_from_slice(b"'), (9202, 'x')");
    run(stmt);
    r.flush().await;
    for what in ["SET NAMES", "INSERT"] {
        let reply = r.read_reply().await;
        assert_eq!(reply[0][0], 0x00, "{what}: {:?}", shardcat::proto::packets::parse_err(&reply[0]));
    }
    let names: Vec<(i64, String)> =
        c.query("SELECT id, name FROM customer WHERE id IN (9201, 9202) ORDER BY id").await.unwrap();
    let gbk_char = encoding_rs::GBK.decode_without_bom_handling(b"\x95\x5C").0.into_owned();
    assert_eq!(names, vec![(9201, gbk_char), (9202, "x".to_string())]);
}

/// SQL_CALC_FOUND_ROWS … LIMIT over shards: FOUND_ROWS() is the total over every shard; with GROUP BY
/// it is refused by name rather than answered wrong.
#[tokio::test]
async fn found_rows_over_shards_is_the_total() {
    let mut c = proxy_conn("demo").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await;
    exec(&mut c, "DELETE FROM customer WHERE id BETWEEN 9300 AND 9399").await;
    let rows: Vec<String> = (0..30).map(|i| format!("({}, 'f')", 9300 + i)).collect();
    exec(&mut c, &format!("INSERT INTO customer (id, name) VALUES {}", rows.join(", "))).await;
    let ids: Vec<i64> = c
        .query("SELECT SQL_CALC_FOUND_ROWS id FROM customer WHERE id BETWEEN 9300 AND 9399 ORDER BY id LIMIT 3")
        .await
        .unwrap();
    assert_eq!(ids, vec![9300, 9301, 9302]);
    let total: Option<i64> = c.query_first("SELECT FOUND_ROWS()").await.unwrap();
    assert_eq!(total, Some(30));
    let e = c
        .query_drop("SELECT SQL_CALC_FOUND_ROWS name, COUNT(*) FROM customer WHERE id BETWEEN 9300 AND 9399 GROUP BY name LIMIT 1")
        .await
        .unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1105), "{e}");
}

/// A merge's shards say once what its string keys' collations are; the statement then runs lean
/// (EXPLAIN shows the shards' text with NULL where COLLATION/WEIGHT_STRING were) and orders as one
/// server would. A collation changed by ALTER TABLE through the proxy orders the very next merge; one
/// changed on the shards directly, behind the proxy's back, within `exec::learned::TRUST` (1 s).
#[tokio::test]
async fn merges_follow_a_collation_changed_by_ddl() {
    let _g = LOCK.lock().await;
    let mut c = conn("shard").await;
    fresh_tables(&mut c).await;
    let rows = "(1, 'a'), (2, 'B'), (3, 'A'), (4, 'b'), (5, 'a '), (6, 'á'), (7, 'C'), (8, 'c')";
    exec(&mut c, &format!("INSERT INTO t_mod (id, v) VALUES {rows}")).await;
    // the oracle: the same rows in one server's table, its collation changed alike
    let mut o = direct_conn(PRIMARY1, "sc_a").await;
    exec(&mut o, "CREATE TEMPORARY TABLE coll_oracle (id BIGINT PRIMARY KEY, v VARCHAR(20))").await;
    exec(&mut o, &format!("INSERT INTO coll_oracle (id, v) VALUES {rows}")).await;
    let queries = ["SELECT v, id FROM t_mod ORDER BY v, id", "SELECT COUNT(DISTINCT v) FROM t_mod"];
    async fn answers(c: &mut mysql_async::Conn, queries: &[&str], table: &str) -> Vec<Vec<Vec<Option<String>>>> {
        let mut out = Vec::new();
        for q in queries {
            let rows: Vec<mysql_async::Row> =
                c.query(q.replace("t_mod", table)).await.unwrap_or_else(|e| panic!("{q}: {e}"));
            let text = |v: mysql_async::Value| match v {
                mysql_async::Value::NULL => None,
                mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                other => Some(format!("{other:?}")),
            };
            out.push(rows.into_iter().map(|r| r.unwrap().into_iter().map(text).collect()).collect());
        }
        out
    }
    let lean =
        |e: &BTreeMap<String, String>| e.values().all(|s| s.contains("NULL AS `__sc_") && !s.contains("COLLATION("));
    for collation in ["utf8mb4_general_ci", "utf8mb4_bin"] {
        // through the proxy: the next merge already knows
        exec(&mut c, &format!("ALTER TABLE t_mod MODIFY v VARCHAR(20) COLLATE {collation}")).await;
        exec(&mut o, &format!("ALTER TABLE coll_oracle MODIFY v VARCHAR(20) COLLATE {collation}")).await;
        assert!(!lean(&explain(&mut c, queries[0]).await), "DDL through the proxy: learned again");
        let want = answers(&mut o, &queries, "coll_oracle").await;
        assert_eq!(answers(&mut c, &queries, "t_mod").await, want, "{collation}, learning");
        assert!(lean(&explain(&mut c, queries[0]).await), "{collation}: the shards were asked once");
        assert_eq!(answers(&mut c, &queries, "t_mod").await, want, "{collation}, lean");
    }
    // behind the proxy's back, on every shard: trusted for TRUST at most
    for n in 0..4 {
        let (port, db) = node(n);
        let mut d = direct_conn(port, db).await;
        exec(&mut d, "ALTER TABLE t_mod MODIFY v VARCHAR(20) COLLATE utf8mb4_general_ci").await;
    }
    exec(&mut o, "ALTER TABLE coll_oracle MODIFY v VARCHAR(20) COLLATE utf8mb4_general_ci").await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let want = answers(&mut o, &queries, "coll_oracle").await;
    assert_eq!(answers(&mut c, &queries, "t_mod").await, want, "changed on the shards directly");
    assert_eq!(answers(&mut c, &queries, "t_mod").await, want, "and lean again");
}
