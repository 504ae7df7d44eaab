//! The oracle: one data set loaded through shardcat into the sharded schema (tests/fixtures/sharding)
//! and, identically, into one unsharded MariaDB database; every query of the corpus runs on both and
//! must give the same columns (names, types, decimals) and rows — in order when the query orders them
//! completely, as multisets otherwise — or, for a shape shardcat refuses, an error (never other rows).

mod common;
#[path = "common/raw.rs"]
mod raw;

use std::sync::OnceLock;

use common::*;
use mysql_async::prelude::*;
use mysql_async::{Row, Value};

const ORACLE_DB: &str = "oracle_shard";

fn proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        stack();
        for port in [PRIMARY1, PRIMARY2] {
            let out = std::process::Command::new("mariadb")
                .args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), "-uproxy", "-pproxy", "-e"])
                .arg(format!("CREATE DATABASE IF NOT EXISTS sc_a; CREATE DATABASE IF NOT EXISTS sc_b; CREATE DATABASE IF NOT EXISTS {ORACLE_DB}"))
                .output()
                .expect("mariadb client");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        Proxy::start(&root().join("tests/fixtures/sharding"), None)
    })
}

const TABLES: &[(&str, &str)] = &[
    ("customer", "id BIGINT PRIMARY KEY, name VARCHAR(20), city VARCHAR(20) NULL, amt DECIMAL(10,2) NULL, born DATE NULL, score INT NULL"),
    ("orders", "id BIGINT PRIMARY KEY, customer_id BIGINT, total DECIMAL(12,3), status VARCHAR(10), created DATETIME"),
    ("region", "id INT PRIMARY KEY, name VARCHAR(20)"),
    ("t_range", "id BIGINT PRIMARY KEY, v VARCHAR(20)"),
];

/// The data set: deterministic, with NULLs, duplicates, mixed-case strings, decimals and dates.
fn rows() -> Vec<(&'static str, String)> {
    let names = ["alice", "Bob", "bob", "CARL", "dora", "Émile", "eve", "Alice", "zed", "Yann"];
    let cities = ["Paris", "paris", "Berlin", "", "Oslo"];
    let mut out = Vec::new();
    let mut vals = Vec::new();
    for i in 1..=60i64 {
        let city = if i % 7 == 0 { "NULL".to_string() } else { format!("'{}'", cities[(i % 5) as usize]) };
        let amt = if i % 11 == 0 { "NULL".to_string() } else { format!("{}.{:02}", (i * 37) % 500, (i * 13) % 100) };
        let born = if i % 9 == 0 {
            "NULL".to_string()
        } else {
            format!("'19{:02}-{:02}-{:02}'", 50 + i % 50, 1 + i % 12, 1 + i % 28)
        };
        let score = if i % 8 == 0 { "NULL".to_string() } else { ((i * 7919) % 101 - 50).to_string() };
        vals.push(format!("({i}, '{}', {city}, {amt}, {born}, {score})", names[(i % 10) as usize]));
    }
    out.push((
        "customer",
        format!("INSERT INTO customer (id, name, city, amt, born, score) VALUES {}", vals.join(", ")),
    ));
    let mut vals = Vec::new();
    for i in 1..=150i64 {
        let status = ["new", "paid", "PAID", "shipped"][(i % 4) as usize];
        vals.push(format!(
            "({}, {}, {}.{:03}, '{status}', '2024-{:02}-{:02} {:02}:{:02}:00')",
            1000 + i,
            1 + (i * 17) % 60,
            (i * 29) % 1000,
            (i * 7) % 1000,
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60
        ));
    }
    out.push((
        "orders",
        format!("INSERT INTO orders (id, customer_id, total, status, created) VALUES {}", vals.join(", ")),
    ));
    out.push((
        "region",
        "INSERT INTO region VALUES (1, 'eu'), (2, 'us'), (3, 'EU'), (4, 'apac'), (5, 'latam')".to_string(),
    ));
    let vals: Vec<String> = (0..80i64).map(|i| format!("({}, 'r{}')", (i * 1237) % 99_000, i % 13)).collect();
    out.push(("t_range", format!("INSERT IGNORE INTO t_range (id, v) VALUES {}", vals.join(", "))));
    // strings equal under utf8mb4_general_ci on different shards (case, trailing spaces — PAD SPACE —,
    // accents, characters beyond the BMP), and a tab that sorts below the space a shorter string is
    // padded with; each group's first row by id is its plainest spelling, where both sides show it
    // (ids that are multiples of 60 and 1237's: no join of the corpus meets them)
    out.push((
        "t_range",
        "INSERT INTO t_range (id, v) VALUES (25020, 'R1'), (40020, 'r1 '), (25080, 'r1\\t'), (1320, 'e '), \
         (26040, 'é'), (50040, 'E'), (1380, '🙂'), (27000, '😀'), (28020, NULL), (540, ' r1')"
            .to_string(),
    ));
    out
}

async fn load() {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let mut p = mysql_async::Conn::new(opts(proxy().port, "app", "app", Some("shard"))).await.unwrap();
        let mut o = direct_conn(PRIMARY1, ORACLE_DB).await;
        for (t, cols) in TABLES {
            for c in [&mut p, &mut o] {
                exec(c, &format!("DROP TABLE IF EXISTS {t}")).await;
                exec(c, &format!("CREATE TABLE {t} ({cols}) DEFAULT CHARSET=utf8mb4")).await;
            }
        }
        for (_, sql) in rows() {
            exec(&mut p, &sql).await;
            exec(&mut o, &sql).await;
        }
    })
    .await;
}

/// What a query answered: column (name, type, decimals) and rows as text.
type Answer = (Vec<(String, u8, u8)>, Vec<Vec<Option<String>>>);

fn text(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

async fn run(c: &mut mysql_async::Conn, sql: &str, prepared: bool) -> Result<Answer, String> {
    let rows: Vec<Row> =
        if prepared { c.exec(sql, ()).await } else { c.query(sql).await }.map_err(|e| e.to_string())?;
    Ok(answer(&rows))
}

/// A query with its literals as `?` parameters (sql::shape), when it has any, no LIMIT (`LIMIT ?`
/// over several shards is refused) and no positional ORDER/GROUP BY: the parameterised text and its
/// answer.
async fn run_with_params(c: &mut mysql_async::Conn, sql: &str) -> Option<(String, Result<Answer, String>)> {
    if sql.to_ascii_uppercase().contains("LIMIT") {
        return None;
    }
    let (text, lits) = shardcat::sql::shape::shape(sql)?;
    if text.to_ascii_uppercase().contains("BY ?") || text.to_ascii_uppercase().contains("SEPARATOR ?") {
        return None; // ORDER BY 1 is a position; ORDER BY ? a constant
    }
    let params: Vec<Value> = lits
        .into_iter()
        .map(|l| match l {
            shardcat::sql::shape::Literal::Number(n) => match n.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Bytes(n.into_bytes()),
            },
            shardcat::sql::shape::Literal::Text(t) => Value::Bytes(t.into_bytes()),
        })
        .collect();
    let rows: Result<Vec<Row>, String> = c.exec(text.as_str(), params).await.map_err(|e| e.to_string());
    // a column named after an expression holding `?` is named by the server that prepared it; the
    // shards of a merge run the statement with the values written in, so only rows and types compare
    let strip =
        |(cols, data): Answer| -> Answer { (cols.into_iter().map(|(_, t, d)| (String::new(), t, d)).collect(), data) };
    Some((text, rows.map(|r| strip(answer(&r)))))
}

fn answer(rows: &[Row]) -> Answer {
    let cols = match rows.first() {
        Some(r) => {
            r.columns_ref().iter().map(|c| (c.name_str().into_owned(), c.column_type() as u8, c.decimals())).collect()
        }
        None => Vec::new(),
    };
    let data = rows.iter().map(|r| (0..r.len()).map(|i| r.as_ref(i).and_then(text)).collect()).collect();
    (cols, data)
}

/// Corpus entries: (flags, SQL). Flags: `o` the query orders its rows completely (compare in order);
/// `c` values equal under the column's case-insensitive collation are equivalent (which of several
/// collation-equal values a server returns — MIN('Alice','alice'), a group's name — is unspecified).
const CORPUS: &[(&str, &str)] = &[
    // ordered scans
    ("o", "SELECT id, name FROM customer ORDER BY id"),
    ("o", "SELECT id, name FROM customer ORDER BY id DESC"),
    // DISTINCT ordered by exactly its columns: streamed, each shard stopping at LIMIT m+n
    ("o", "SELECT DISTINCT score FROM customer ORDER BY score DESC LIMIT 2, 3"),
    ("o", "SELECT DISTINCT born, score FROM customer ORDER BY born DESC, score LIMIT 1, 4"),
    ("o", "SELECT DISTINCT total FROM orders WHERE total > 10 ORDER BY total LIMIT 6"),
    ("o", "SELECT id, name, city FROM customer ORDER BY name, id"),
    ("o", "SELECT id, name FROM customer ORDER BY name DESC, id DESC"),
    ("o", "SELECT id, city FROM customer ORDER BY city, id"),
    ("o", "SELECT id, city FROM customer ORDER BY city DESC, id"),
    ("o", "SELECT id, amt FROM customer ORDER BY amt, id"),
    ("o", "SELECT id, amt FROM customer ORDER BY amt DESC, id"),
    ("o", "SELECT id, born FROM customer ORDER BY born, id"),
    ("o", "SELECT id, score FROM customer ORDER BY score DESC, id"),
    ("o", "SELECT id FROM customer ORDER BY name, id"),
    ("o", "SELECT id, name AS n FROM customer ORDER BY n, id"),
    ("o", "SELECT id, name FROM customer ORDER BY 2, 1"),
    ("o", "SELECT id, name FROM customer ORDER BY LOWER(name), id"),
    ("o", "SELECT id, amt FROM customer ORDER BY amt * -1, id"),
    ("o", "SELECT id, name FROM customer WHERE city = 'paris' ORDER BY id"),
    ("o", "SELECT id, name FROM customer WHERE amt > 100 ORDER BY amt, id"),
    ("o", "SELECT id, total, status FROM orders ORDER BY total DESC, id"),
    ("o", "SELECT id, created FROM orders ORDER BY created, id"),
    ("o", "SELECT id, v FROM t_range ORDER BY v, id"),
    ("o", "SELECT * FROM customer ORDER BY id"),
    // limits
    ("o", "SELECT id, name FROM customer ORDER BY id LIMIT 5"),
    ("o", "SELECT id, name FROM customer ORDER BY id LIMIT 10, 5"),
    ("o", "SELECT id, name FROM customer ORDER BY id LIMIT 5 OFFSET 50"),
    ("o", "SELECT id, name FROM customer ORDER BY id LIMIT 100, 5"),
    ("o", "SELECT id FROM customer ORDER BY id LIMIT 0"),
    ("o", "SELECT id, name FROM customer ORDER BY name, id LIMIT 7, 9"),
    ("o", "SELECT id, total FROM orders ORDER BY total DESC, id LIMIT 3"),
    // aggregates without GROUP BY
    ("o", "SELECT COUNT(*) FROM customer"),
    // aggregates and grouping with a LIMIT: merged first, then limited (a LIMIT is no reason to concatenate)
    ("o", "SELECT COUNT(*) FROM customer LIMIT 1"),
    ("o", "SELECT SUM(amt), COUNT(*) FROM customer WHERE id > 10 LIMIT 5"),
    ("oc", "SELECT name, COUNT(*) FROM customer GROUP BY name ORDER BY name LIMIT 3"),
    ("c", "SELECT name, COUNT(*) FROM customer GROUP BY name HAVING COUNT(*) > 0 LIMIT 100"),
    ("c", "SELECT DISTINCT city FROM customer LIMIT 100"),
    ("o", "SELECT COUNT(city), COUNT(amt), COUNT(born) FROM customer"),
    ("o", "SELECT SUM(amt), MIN(amt), MAX(amt) FROM customer"),
    ("o", "SELECT AVG(amt) FROM customer"),
    ("o", "SELECT AVG(id), SUM(id) FROM customer"),
    ("oc", "SELECT MIN(name), MAX(name) FROM customer"),
    ("o", "SELECT MIN(born), MAX(born) FROM customer"),
    ("o", "SELECT MIN(city), MAX(city) FROM customer"),
    ("o", "SELECT SUM(score), AVG(score), MIN(score), MAX(score) FROM customer"),
    ("o", "SELECT COUNT(*), SUM(amt), AVG(amt) FROM customer WHERE id < 0"),
    ("o", "SELECT COUNT(*) AS n, SUM(total) AS s FROM orders WHERE status = 'paid'"),
    ("o", "SELECT SUM(total), AVG(total) FROM orders"),
    ("o", "SELECT MAX(created), MIN(created) FROM orders"),
    ("o", "SELECT COUNT(*) FROM t_range WHERE id > 50000"),
    // GROUP BY
    ("", "SELECT city, COUNT(*) FROM customer GROUP BY city"),
    ("o", "SELECT city, COUNT(*) FROM customer GROUP BY city ORDER BY city"),
    ("c", "SELECT name, COUNT(*), SUM(amt) FROM customer GROUP BY name"),
    ("o", "SELECT status, COUNT(*) AS n, SUM(total), AVG(total), MIN(id), MAX(created) FROM orders GROUP BY status ORDER BY status"),
    ("o", "SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id ORDER BY n DESC, customer_id LIMIT 5"),
    ("o", "SELECT YEAR(born) AS y, COUNT(*) FROM customer GROUP BY YEAR(born) ORDER BY y"),
    ("o", "SELECT city, name, COUNT(*) FROM customer GROUP BY city, name ORDER BY city, name"),
    ("", "SELECT score, COUNT(*) FROM customer GROUP BY score"),
    ("o", "SELECT city, AVG(amt) FROM customer GROUP BY city ORDER BY 2, 1"),
    ("o", "SELECT v, COUNT(*) FROM t_range GROUP BY v ORDER BY COUNT(*) DESC, v LIMIT 4"),
    ("", "SELECT status, MIN(total), MAX(total) FROM orders WHERE total > 100 GROUP BY status"),
    // HAVING, evaluated on the merged groups
    ("", "SELECT city, COUNT(*) FROM customer GROUP BY city HAVING COUNT(*) > 3"),
    ("o", "SELECT status, SUM(total) AS s FROM orders GROUP BY status HAVING s > 10000 ORDER BY status"),
    ("o", "SELECT customer_id, COUNT(*) FROM orders GROUP BY customer_id HAVING COUNT(*) >= 3 AND MAX(total) > 500 ORDER BY customer_id"),
    ("c", "SELECT name, AVG(amt) FROM customer GROUP BY name HAVING AVG(amt) BETWEEN 100 AND 300"),
    ("", "SELECT city FROM customer GROUP BY city HAVING city IS NOT NULL AND MIN(id) < 10"),
    ("o", "SELECT COUNT(*) FROM customer HAVING COUNT(*) > 100"),
    ("o", "SELECT score % 3 AS m, COUNT(*) FROM customer GROUP BY score % 3 HAVING m IS NOT NULL ORDER BY m"),
    // DISTINCT
    ("", "SELECT DISTINCT city FROM customer"),
    ("oc", "SELECT DISTINCT name FROM customer ORDER BY name"),
    ("", "SELECT DISTINCT status FROM orders"),
    ("", "SELECT DISTINCT city, name FROM customer"),
    // DISTINCT aggregates: the shards group by the arguments too, the proxy counts or adds each value once
    ("o", "SELECT COUNT(DISTINCT city) FROM customer"),
    ("o", "SELECT COUNT(DISTINCT name) FROM customer"),
    ("o", "SELECT COUNT(DISTINCT city, name) FROM customer"),
    ("o", "SELECT COUNT(DISTINCT score), SUM(DISTINCT score), AVG(DISTINCT score) FROM customer"),
    ("o", "SELECT SUM(DISTINCT amt), AVG(DISTINCT amt), COUNT(DISTINCT amt) FROM customer"),
    ("o", "SELECT COUNT(DISTINCT born), COUNT(*), SUM(amt) FROM customer WHERE id > 10"),
    ("o", "SELECT COUNT(DISTINCT city), COUNT(DISTINCT name), MIN(id), MAX(amt), AVG(score) FROM customer"),
    ("o", "SELECT COUNT(DISTINCT city) FROM customer WHERE id < 0"),
    ("o", "SELECT COUNT(DISTINCT city), SUM(DISTINCT amt), AVG(DISTINCT score), COUNT(*), MAX(id) FROM customer WHERE id < 0"),
    ("o", "SELECT COUNT(DISTINCT LOWER(name)), COUNT(DISTINCT YEAR(born)) FROM customer"),
    ("o", "SELECT AVG(DISTINCT total), SUM(DISTINCT total) FROM orders"),
    ("o", "SELECT COUNT(DISTINCT v) FROM t_range"),
    ("o", "SELECT MIN(DISTINCT amt), MAX(DISTINCT score), COUNT(DISTINCT amt) FROM customer"),
    ("o", "SELECT COUNT(DISTINCT city) AS n FROM customer HAVING n > 2"),
    ("o", "SELECT status, COUNT(DISTINCT customer_id), COUNT(*) FROM orders GROUP BY status ORDER BY status"),
    ("oc", "SELECT city, COUNT(DISTINCT name), SUM(DISTINCT score) FROM customer GROUP BY city ORDER BY city"),
    ("o", "SELECT customer_id % 5 AS m, COUNT(DISTINCT status), SUM(DISTINCT total) FROM orders GROUP BY m ORDER BY m"),
    ("o", "SELECT customer_id, COUNT(DISTINCT status) FROM orders GROUP BY customer_id HAVING COUNT(DISTINCT status) > 2 ORDER BY customer_id"),
    ("o", "SELECT customer_id, COUNT(DISTINCT status) AS n FROM orders GROUP BY customer_id ORDER BY n DESC, customer_id LIMIT 5"),
    ("", "SELECT status, AVG(DISTINCT total), COUNT(DISTINCT customer_id % 3) FROM orders GROUP BY status"),
    ("o", "SELECT COUNT(DISTINCT c.city), COUNT(DISTINCT o.status) FROM customer c JOIN orders o ON o.customer_id = c.id"),
    // GROUP_CONCAT: the shards group by its arguments and ORDER BY too; the proxy joins each group's
    // values in that order (without ORDER BY MariaDB's order is the scan's: only DISTINCT, sorted, or
    // single values are compared)
    ("o", "SELECT GROUP_CONCAT(id ORDER BY id) FROM customer"),
    ("o", "SELECT GROUP_CONCAT(id ORDER BY id DESC SEPARATOR '|') FROM customer WHERE id < 30"),
    ("oc", "SELECT GROUP_CONCAT(DISTINCT name ORDER BY name) FROM customer"),
    ("oc", "SELECT GROUP_CONCAT(DISTINCT city) FROM customer"),
    ("oc", "SELECT GROUP_CONCAT(DISTINCT name ORDER BY name DESC SEPARATOR '') FROM customer WHERE id > 20"),
    ("oc", "SELECT city, GROUP_CONCAT(id ORDER BY id) FROM customer GROUP BY city ORDER BY city"),
    ("oc", "SELECT status, GROUP_CONCAT(id ORDER BY total DESC, id), COUNT(*) FROM orders GROUP BY status ORDER BY status"),
    ("o", "SELECT customer_id, GROUP_CONCAT(status, ':', id ORDER BY id SEPARATOR ' ') FROM orders GROUP BY customer_id ORDER BY customer_id"),
    ("o", "SELECT GROUP_CONCAT(name ORDER BY id LIMIT 3) FROM customer"),
    ("o", "SELECT GROUP_CONCAT(amt ORDER BY amt, id) FROM customer"),
    ("o", "SELECT GROUP_CONCAT(born ORDER BY born DESC, id), COUNT(DISTINCT born) FROM customer"),
    ("o", "SELECT GROUP_CONCAT(id ORDER BY id), SUM(amt), COUNT(*) FROM customer WHERE id < 0"),
    ("oc", "SELECT customer_id % 4 AS m, GROUP_CONCAT(DISTINCT status ORDER BY status), COUNT(DISTINCT status) FROM orders GROUP BY m ORDER BY m"),
    ("o", "SELECT GROUP_CONCAT(id ORDER BY id), GROUP_CONCAT(name ORDER BY id), MAX(score) FROM customer WHERE id < 20"),
    ("oc", "SELECT city, GROUP_CONCAT(id ORDER BY id) AS ids FROM customer GROUP BY city HAVING COUNT(*) > 8 ORDER BY city"),
    ("o", "SELECT score, GROUP_CONCAT(id ORDER BY id) FROM customer WHERE score > 20 GROUP BY score ORDER BY score"),
    // subqueries the shards cannot run (not co-located, or over no table) run first, as reads of
    // their own; their values are written into the statement
    ("o", "SELECT * FROM region WHERE id IN (SELECT customer_id FROM orders) ORDER BY id"),
    ("o", "SELECT id FROM customer WHERE id IN (SELECT id FROM t_range) ORDER BY id"),
    ("o", "SELECT id, name FROM customer WHERE id NOT IN (SELECT customer_id FROM orders WHERE total > 500) ORDER BY id"),
    ("o", "SELECT id FROM customer WHERE score > (SELECT AVG(score) FROM customer) ORDER BY id"),
    ("", "SELECT id, amt FROM customer WHERE amt = (SELECT MAX(amt) FROM customer)"),
    ("o", "SELECT COUNT(*) FROM customer WHERE EXISTS (SELECT 1 FROM orders WHERE total > 990)"),
    ("o", "SELECT COUNT(*) FROM customer WHERE NOT EXISTS (SELECT 1 FROM orders WHERE total > 5000)"),
    ("o", "SELECT id FROM customer WHERE city = (SELECT 'paris') ORDER BY id"),
    ("", "SELECT id, name FROM customer WHERE id = (SELECT 7)"),
    ("o", "SELECT id FROM customer WHERE score NOT IN (SELECT score FROM customer WHERE id < 5) ORDER BY id"),
    ("o", "SELECT id FROM customer WHERE score NOT IN (SELECT score FROM customer WHERE id < 9) ORDER BY id"),
    ("oc", "SELECT status, COUNT(*) FROM orders GROUP BY status HAVING COUNT(*) > (SELECT MIN(id) FROM orders) - 980 ORDER BY status"),
    ("o", "SELECT id FROM customer WHERE id IN (SELECT id FROM customer WHERE name = 'bob') ORDER BY id"),
    ("o", "SELECT c.id, o.id FROM customer c JOIN orders o ON o.customer_id = c.id AND o.total > (SELECT AVG(total) FROM orders) ORDER BY o.id"),
    ("o", "SELECT id FROM customer WHERE id IN (SELECT customer_id FROM orders WHERE status IN (SELECT name FROM region)) ORDER BY id"),
    ("o", "SELECT id FROM customer WHERE id IN (SELECT customer_id FROM orders WHERE customer_id IN (SELECT id FROM t_range)) ORDER BY id"),
    ("o", "SELECT id FROM customer WHERE born < (SELECT MIN(born) FROM customer WHERE id > 30) ORDER BY id"),
    ("o", "SELECT id FROM customer WHERE name IN (SELECT name FROM customer WHERE id < 3) ORDER BY id"),
    ("o", "SELECT id FROM customer WHERE id IN (SELECT customer_id FROM orders WHERE total > 2000) ORDER BY id"),
    ("o", "SELECT COUNT(*), SUM(amt) FROM customer WHERE id IN (SELECT customer_id FROM orders WHERE status = 'paid')"),
    // select-list subqueries: their values typed as their columns, the columns named as the server names them
    ("", "SELECT id, (SELECT COUNT(*) FROM orders) FROM customer"),
    ("o", "SELECT id, (SELECT MAX(total) FROM orders) AS m, (SELECT MIN(born) FROM customer) FROM customer ORDER BY id LIMIT 5"),
    ("o", "SELECT (SELECT COUNT(*) FROM customer) + (SELECT COUNT(*) FROM orders)"),
    ("o", "SELECT name, (SELECT AVG(score) FROM customer) AS a FROM customer WHERE id < 4 ORDER BY id"),
    // derived tables the shards cannot compute: merged first, their rows a derived table of literals
    ("o", "SELECT COUNT(*) FROM (SELECT city, COUNT(*) FROM customer GROUP BY city) d"),
    ("oc", "SELECT d.city, d.n FROM (SELECT city, COUNT(*) AS n FROM customer GROUP BY city) d WHERE d.n > 5 ORDER BY d.city"),
    ("o", "SELECT MAX(n), MIN(n), SUM(n) FROM (SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id) d"),
    ("o", "SELECT d.id FROM (SELECT id FROM customer ORDER BY id DESC LIMIT 5) d ORDER BY d.id"),
    ("o", "SELECT c.id, d.n FROM customer c JOIN (SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id) d ON d.customer_id = c.id ORDER BY c.id"),
    ("o", "SELECT COUNT(*) FROM (SELECT DISTINCT city FROM customer) d"),
    ("", "SELECT * FROM (SELECT status, AVG(total) AS a, MAX(created) AS m FROM orders GROUP BY status) d"),
    ("o", "SELECT COUNT(*) FROM (SELECT id FROM customer WHERE id < 0 GROUP BY id) d"),
    // joins of tables sharded otherwise: the joined tables read first, joined on the first one's shards
    ("o", "SELECT c.id, t.v FROM customer c JOIN t_range t ON t.id = c.id ORDER BY c.id"),
    ("o", "SELECT o.id, c.name FROM orders o JOIN customer c ON c.score = o.customer_id ORDER BY o.id"),
    ("o", "SELECT c.id, t.id FROM customer c LEFT JOIN t_range t ON t.id = c.id * 1237 ORDER BY c.id"),
    ("o", "SELECT c.id, t.id FROM customer c JOIN t_range t ON t.id > c.id * 1000 AND t.id < c.id * 1100 ORDER BY c.id, t.id"),
    ("o", "SELECT t.v, COUNT(*), SUM(c.amt) FROM customer c JOIN t_range t ON t.id % 60 = c.id GROUP BY t.v ORDER BY t.v"),
    ("o", "SELECT COUNT(*) FROM customer c JOIN orders o ON o.customer_id = c.id JOIN t_range t ON t.id % 60 = o.customer_id"),
    ("o", "SELECT c.id, t.v FROM customer c JOIN t_range t ON t.id = c.id WHERE t.v = 'r1' OR c.city = 'paris' ORDER BY c.id"),
    ("o", "SELECT id, name FROM customer WHERE amt IN (SELECT amt FROM customer WHERE born IS NOT NULL) ORDER BY id"),
    // strings compared as the collation does across shards (PAD SPACE, case, accents, beyond the BMP)
    ("o", "SELECT id, CONCAT('[', v, ']') FROM t_range ORDER BY v, id"),
    ("o", "SELECT id, CONCAT('[', v, ']') FROM t_range ORDER BY v DESC, id LIMIT 20"),
    ("o", "SELECT CONCAT('[', v, ']'), COUNT(*) FROM t_range GROUP BY v ORDER BY v"),
    ("o", "SELECT CONCAT('[', v, ']') FROM t_range WHERE v LIKE 'r1%' OR v < 'f' GROUP BY v ORDER BY v"),
    ("o", "SELECT COUNT(DISTINCT v), COUNT(*) FROM t_range"),
    ("o", "SELECT MIN(v), MAX(v) FROM t_range WHERE id > 1000"),
    ("o", "SELECT id % 3, MIN(v), COUNT(DISTINCT v) FROM t_range GROUP BY id % 3 ORDER BY id % 3"),
    // … by the shards' weights where the proxy does not know the collation, or the values arrive converted
    // (values ending in a space or a tab are left out: under a collation the proxy does not know, the
    // weights of a longer value do not compare as the collation pads the shorter — docs/CROSS_SHARD.md)
    ("o", "SELECT id, v FROM t_range WHERE v NOT LIKE '% ' AND v NOT LIKE '%\t' ORDER BY v COLLATE utf8mb4_unicode_ci, id"),
    ("o", "SELECT id, v FROM t_range ORDER BY CONVERT(v USING latin1), id"),
    ("o", "SELECT id, v FROM t_range ORDER BY CAST(v AS BINARY) DESC, id"),
    ("o", "SELECT COUNT(DISTINCT v COLLATE utf8mb4_bin), COUNT(DISTINCT CONVERT(v USING latin1)) FROM t_range"),
    ("o", "SELECT id FROM customer WHERE score NOT IN (SELECT score FROM customer WHERE city IS NULL AND score IS NOT NULL) ORDER BY id"),
    // … and read for the first table's keys only when the WHERE narrows the first table
    ("o", "SELECT t.id, c.name FROM t_range t JOIN customer c ON c.id = t.id % 60 WHERE t.id < 20000 ORDER BY t.id"),
    ("o", "SELECT c.id, t.v FROM customer c JOIN t_range t ON t.id = c.id * 1237 WHERE c.city = 'Paris' ORDER BY c.id"),
    ("o", "SELECT c.id, t.id FROM customer c LEFT JOIN t_range t ON t.id = c.id * 1237 WHERE c.id BETWEEN 3 AND 20 ORDER BY c.id"),
    ("o", "SELECT c.id, t.v FROM customer c JOIN t_range t ON c.id * 1237 = t.id AND t.v <> 'r3' WHERE c.id > 10 AND t.v <> 'r5' AND c.name LIKE 'a%' ORDER BY c.id"),
    ("o", "SELECT t.id, c.id FROM t_range t LEFT JOIN customer c ON c.score = t.id % 101 - 50 WHERE t.v IN ('r1', 'r2') ORDER BY t.id, c.id"),
    ("o", "SELECT t.v, COUNT(*), SUM(c.amt) FROM t_range t JOIN customer c ON c.id = t.id % 60 WHERE (t.id > 100 OR t.v = 'r0') GROUP BY t.v ORDER BY t.v"),
    ("o", "SELECT t.id, c.name FROM t_range t JOIN customer c ON c.id = t.id % 60 WHERE t.id < 0 ORDER BY t.id"),
    // a page of LEFT joins ordered by the first table: the page of it first, then its joined rows in
    // batches (frontend::join); keys that are columns or expressions, joined rows that are all NULL
    ("o", "SELECT t.id, t.v, c.name, c.score FROM t_range t LEFT JOIN customer c ON c.id = t.id % 60 WHERE t.id > 100 ORDER BY t.id LIMIT 5, 10"),
    ("o", "SELECT c.id, c.name, c.score, c.amt, c.born, t.v FROM customer c LEFT JOIN t_range t ON t.id = c.id * 1237 ORDER BY c.id DESC LIMIT 12"),
    ("o", "SELECT o.id, o.created, o.total, r.name, c.name, c.city FROM orders o LEFT JOIN customer c ON c.id = o.customer_id % 9 LEFT JOIN region r ON r.id = o.customer_id % 5 ORDER BY o.created DESC, o.id LIMIT 3 OFFSET 4"),
    ("o", "SELECT t.id, c.name, c.amt, c.born FROM t_range t LEFT JOIN customer c ON c.id = t.id ORDER BY t.id LIMIT 20"),
    ("o", "SELECT * FROM t_range t LEFT JOIN customer c ON c.id = t.id % 60 LEFT JOIN orders o ON o.id = t.id % 150 + 1001 WHERE t.v LIKE 'r1%' ORDER BY t.v, t.id LIMIT 100"),
    ("o", "SELECT c.name, t.id FROM customer c LEFT JOIN t_range t ON t.id = c.id * 1237 WHERE c.id > 100 ORDER BY c.id LIMIT 3"),
    ("o", "SELECT t.id, c.name FROM t_range t LEFT JOIN customer c ON c.id = t.id % 60 ORDER BY t.id LIMIT 0"),
    ("o", "SELECT t.id, c.name FROM t_range t LEFT JOIN customer c ON c.id = t.id % 60 ORDER BY t.v, t.id LIMIT 3, 0"),
    // concatenation (no merge needed)
    ("", "SELECT id, name FROM customer"),
    ("", "SELECT id, name FROM customer WHERE born IS NULL"),
    ("", "SELECT * FROM orders WHERE customer_id IN (3, 4, 5)"),
    // co-located joins: ER parent ⋈ child, any table ⋈ global table
    ("o", "SELECT c.id, c.name, o.id, o.total FROM customer c JOIN orders o ON o.customer_id = c.id ORDER BY o.id"),
    ("", "SELECT c.id, o.id FROM customer c JOIN orders o ON o.customer_id = c.id WHERE o.status = 'paid'"),
    ("o", "SELECT o.id FROM customer c JOIN orders o ON o.customer_id = c.id WHERE c.id = 7 ORDER BY o.id"),
    ("c", "SELECT c.name, COUNT(*), SUM(o.total) FROM customer c JOIN orders o ON o.customer_id = c.id GROUP BY c.name"),
    ("o", "SELECT c.id, COUNT(o.id) FROM customer c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id ORDER BY c.id"),
    ("o", "SELECT c.id, r.name FROM customer c JOIN region r ON r.id = c.id % 5 + 1 ORDER BY c.id"),
    ("o", "SELECT r.name, COUNT(*) FROM customer c JOIN region r ON r.id = c.id % 5 + 1 GROUP BY r.name ORDER BY r.name"),
    ("o", "SELECT c.id, o.total FROM customer c, orders o WHERE o.customer_id = c.id AND o.total > 900 ORDER BY c.id, o.total"),
    // subqueries and derived tables that stay on their shard
    ("o", "SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customer WHERE city = 'paris') ORDER BY id"),
    ("o", "SELECT id, name FROM customer WHERE id IN (SELECT customer_id FROM orders WHERE total > 900) ORDER BY id"),
    ("o", "SELECT d.id, d.name FROM (SELECT id, name FROM customer WHERE amt > 100) d ORDER BY d.id"),
    ("o", "SELECT COUNT(*), SUM(d.amt) FROM (SELECT id, amt FROM customer WHERE city = 'paris') d"),
    ("", "SELECT id FROM customer WHERE city IN (SELECT name FROM region)"),
    // UNION ALL over tables sharded alike
    ("", "SELECT id, name FROM customer WHERE id < 20 UNION ALL SELECT customer_id, status FROM orders WHERE id < 1010"),
    ("", "SELECT city FROM customer UNION ALL SELECT status FROM orders"),
    ("c", "SELECT name FROM customer UNION SELECT status FROM orders"),
    ("", "SELECT id FROM customer UNION SELECT customer_id FROM orders"),
    ("o", "SELECT id FROM customer WHERE id < 10 UNION ALL SELECT customer_id FROM orders WHERE id < 1010 ORDER BY 1"),
    ("oc", "SELECT id, name FROM customer UNION SELECT customer_id, status FROM orders ORDER BY 1, 2 LIMIT 10"),
    ("oc", "SELECT city AS x FROM customer UNION SELECT status FROM orders ORDER BY x"),
    ("o", "SELECT id FROM customer UNION ALL SELECT id FROM orders ORDER BY id DESC LIMIT 5, 5"),
    // global table
    ("o", "SELECT id, name FROM region ORDER BY id"),
    ("o", "SELECT COUNT(*) FROM region"),
];

/// Shapes refused for now (each must error, never answer differently).
const REFUSED: &[&str] = &[
    "SELECT city, GROUP_CONCAT(name) AS g FROM customer GROUP BY city ORDER BY g",
    "SELECT GROUP_CONCAT(id ORDER BY id), GROUP_CONCAT(name ORDER BY name) FROM customer",
    "SELECT id FROM customer UNION SELECT id FROM region",
    "SELECT id FROM customer INTERSECT SELECT customer_id FROM orders",
    "SELECT id, (SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id) FROM customer c",
    "SELECT id FROM customer c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)",
    "SELECT id FROM customer c WHERE c.score > (SELECT AVG(o.total) FROM orders o WHERE o.customer_id = c.id)",
    "SELECT id FROM customer WHERE amt = (SELECT amt FROM customer)",
    "SELECT SUM(amt) + 1 FROM customer",
    "SELECT c.id FROM t_range t RIGHT JOIN customer c ON t.id = c.id",
];

/// Template-generated corpus entries: every column ordered both ways with and without limits,
/// aggregates per column under several filters, groupings with several aggregates.
fn templated() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let cols = ["id", "name", "city", "amt", "born", "score"];
    for c in cols {
        for dir in ["ASC", "DESC"] {
            for limit in ["", " LIMIT 7", " LIMIT 5, 10", " LIMIT 55, 10"] {
                out.push(("o".into(), format!("SELECT id, {c} FROM customer ORDER BY {c} {dir}, id {dir}{limit}")));
            }
        }
    }
    let filters =
        ["", " WHERE id > 30", " WHERE city = 'paris'", " WHERE amt BETWEEN 50 AND 300", " WHERE born IS NULL"];
    for w in filters {
        for c in cols {
            let flags = if c == "name" || c == "city" { "oc" } else { "o" };
            out.push((flags.into(), format!("SELECT COUNT({c}), MIN({c}), MAX({c}) FROM customer{w}")));
        }
        for c in ["amt", "score", "id"] {
            out.push(("o".into(), format!("SELECT SUM({c}), AVG({c}) FROM customer{w}")));
        }
    }
    for g in ["city", "name", "YEAR(born)", "score > 0"] {
        for agg in ["COUNT(*)", "SUM(amt)", "AVG(amt)", "MAX(born)", "MIN(score)", "COUNT(city)"] {
            out.push(("c".into(), format!("SELECT {g}, {agg} FROM customer GROUP BY {g}")));
        }
    }
    for g in ["status", "customer_id % 5"] {
        for agg in ["COUNT(*)", "SUM(total)", "AVG(total)", "MIN(created)", "MAX(id)"] {
            out.push(("o".into(), format!("SELECT {g}, {agg} FROM orders GROUP BY {g} ORDER BY 1")));
        }
    }
    out
}

/// Seeded random queries over the same tables: select lists, predicates, groupings, orders, limits.
fn generated(seed: u64, count: usize) -> Vec<(String, String)> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cols = ["id", "name", "city", "amt", "born", "score"];
    let preds = [
        "id > {n}",
        "id < {n}",
        "amt > {n}",
        "score < {s}",
        "city = 'paris'",
        "name = 'bob'",
        "born IS NOT NULL",
        "id BETWEEN {n} AND {m}",
        "id IN ({n}, {m}, 7)",
    ];
    let mut out = Vec::new();
    for _ in 0..count {
        let n = rng.random_range(1..60);
        let m = n + rng.random_range(0..30);
        let s = rng.random_range(-50..50);
        let pred = |rng: &mut rand::rngs::StdRng| {
            let p = preds[rng.random_range(0..preds.len())];
            p.replace("{n}", &n.to_string()).replace("{m}", &m.to_string()).replace("{s}", &s.to_string())
        };
        let mut w = String::new();
        if rng.random_bool(0.6) {
            w = format!(" WHERE {}", pred(&mut rng));
            if rng.random_bool(0.3) {
                let op = if rng.random_bool(0.5) { "AND" } else { "OR" };
                w.push_str(&format!(" {op} {}", pred(&mut rng)));
            }
        }
        let limit = match rng.random_range(0..4) {
            0 => format!(" LIMIT {}", rng.random_range(0..20)),
            1 => format!(" LIMIT {}, {}", rng.random_range(0..40), rng.random_range(1..15)),
            _ => String::new(),
        };
        if rng.random_bool(0.4) {
            // grouped
            let g = cols[rng.random_range(1..cols.len())];
            let a = [
                "COUNT(*)",
                "SUM(amt)",
                "AVG(score)",
                "MIN(id)",
                "MAX(amt)",
                "COUNT(born)",
                "COUNT(DISTINCT city)",
                "SUM(DISTINCT score)",
                "AVG(DISTINCT amt), COUNT(DISTINCT name)",
                "COUNT(DISTINCT born, score)",
            ];
            let a = a[rng.random_range(0..a.len())];
            let flags = if g == "name" || g == "city" { "oc" } else { "o" };
            out.push((flags.to_string(), format!("SELECT {g}, {a} FROM customer{w} GROUP BY {g} ORDER BY {g}{limit}")));
        } else if rng.random_bool(0.25) {
            // subqueries the proxy runs first, and co-located joins
            let join = rng.random_bool(0.3);
            let q = if join { "c." } else { "" };
            let sub = match rng.random_range(0..5) {
                0 => {
                    let c = ["name", "city", "score", "amt"][rng.random_range(0..4)];
                    format!("{q}{c} IN (SELECT {c} FROM customer WHERE {})", pred(&mut rng))
                }
                1 => {
                    format!("{q}id NOT IN (SELECT customer_id FROM orders WHERE total > {})", rng.random_range(0..1000))
                }
                2 => format!("{q}score > (SELECT AVG(score) FROM customer WHERE {})", pred(&mut rng)),
                3 => format!("EXISTS (SELECT 1 FROM orders WHERE total > {})", rng.random_range(900..1100)),
                _ => format!(
                    "{q}id IN (SELECT customer_id FROM orders WHERE status = 'paid' AND total > {})",
                    rng.random_range(0..1000)
                ),
            };
            let sql = if join && rng.random_bool(0.4) {
                // tables sharded otherwise: the joined one read for the keys the WHERE leaves
                let mut p = pred(&mut rng);
                for col in ["id", "amt", "score", "city", "name", "born"] {
                    p = p.replace(&format!("{col} "), &format!("c.{col} "));
                }
                let (on, left) =
                    if rng.random_bool(0.5) { ("t.id = c.id * 1237", "") } else { ("t.id % 60 = c.id", "LEFT ") };
                format!("SELECT c.id, t.id, t.v FROM customer c {left}JOIN t_range t ON {on} WHERE {p} ORDER BY c.id, t.id{limit}")
            } else if join && rng.random_bool(0.8) {
                // ordered by the first table alone (each customer meets one t_range row at most): a page
                // of LEFT joins is joined in batches by the proxy, the rest by the shards
                let mut p = pred(&mut rng);
                for col in ["id", "amt", "score", "city", "name", "born"] {
                    p = p.replace(&format!("{col} "), &format!("c.{col} "));
                }
                let on = ["t.id = c.id * 1237", "t.id = c.id", "t.id = c.score * 1237"][rng.random_range(0..3)];
                let left = if rng.random_bool(0.7) { "LEFT " } else { "" };
                let order = ["c.id", "c.id DESC", "c.name, c.id", "c.born DESC, c.id"][rng.random_range(0..4)];
                let limit = if limit.is_empty() && rng.random_bool(0.7) {
                    format!(" LIMIT {}, {}", rng.random_range(0..10), rng.random_range(1..30))
                } else {
                    limit.clone()
                };
                format!("SELECT c.id, c.name, c.score, t.id, t.v FROM customer c {left}JOIN t_range t ON {on} WHERE {p} ORDER BY {order}{limit}")
            } else if join {
                format!("SELECT c.id, o.id, o.total FROM customer c JOIN orders o ON o.customer_id = c.id WHERE {sub} ORDER BY o.id{limit}")
            } else {
                format!("SELECT id, name FROM customer WHERE {sub} ORDER BY id{limit}")
            };
            out.push(("o".to_string(), sql));
        } else if rng.random_bool(0.2) {
            // DISTINCT aggregates over the whole table
            let d = cols[rng.random_range(0..cols.len())];
            let e = cols[rng.random_range(0..cols.len())];
            let f = ["COUNT", "SUM", "AVG"][rng.random_range(0..3)];
            out.push((
                "o".to_string(),
                format!("SELECT COUNT(DISTINCT {d}), {f}(DISTINCT {e}), COUNT(*) FROM customer{w}{limit}"),
            ));
        } else {
            let c = cols[rng.random_range(1..cols.len())];
            let dir = if rng.random_bool(0.5) { "DESC" } else { "ASC" };
            out.push(("o".to_string(), format!("SELECT id, {c} FROM customer{w} ORDER BY {c} {dir}, id{limit}")));
        }
    }
    out
}

fn normalise(mut a: Answer, flags: &str) -> Answer {
    if flags.contains('c') {
        for row in a.1.iter_mut() {
            for cell in row.iter_mut().flatten() {
                *cell = cell.to_lowercase();
            }
        }
    }
    if !flags.contains('o') {
        a.1.sort();
    }
    a
}

#[tokio::test]
async fn corpus_matches_one_server() {
    load().await;
    let mut p = mysql_async::Conn::new(opts(proxy().port, "app", "app", Some("shard"))).await.unwrap();
    let mut o = direct_conn(PRIMARY1, ORACLE_DB).await;
    let mut failures = Vec::new();
    let seed: u64 = std::env::var("SHARDCAT_ORACLE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261125);
    let mut corpus: Vec<(String, String)> = CORPUS.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect();
    corpus.extend(templated());
    let explicit = corpus.len();
    corpus.extend(generated(seed, 300));
    assert!(explicit >= 200, "the corpus has {explicit} queries");
    for (flags, sql) in &corpus {
        let (flags, sql) = (flags.as_str(), sql.as_str());
        // text twice: a merge's first run learns its string keys' collations, the second runs lean
        // (exec::learned)
        for (prepared, how) in [(false, "text"), (false, "text, again"), (true, "prepared")] {
            let want = run(&mut o, sql, prepared).await.map(|a| normalise(a, flags));
            let got = run(&mut p, sql, prepared).await.map(|a| normalise(a, flags));
            match (&want, &got) {
                (Ok(w), Ok(g)) if w == g => {}
                (w, g) => failures.push(format!("{sql} ({how})\n  oracle: {w:?}\n  proxy:  {g:?}")),
            }
        }
        // and prepared with its literals as parameters (bound on every shard, or written in for merges)
        if let (Some((text, want)), Some((_, got))) =
            (run_with_params(&mut o, sql).await, run_with_params(&mut p, sql).await)
        {
            let (want, got) = (want.map(|a| normalise(a, flags)), got.map(|a| normalise(a, flags)));
            match (&want, &got) {
                (Ok(w), Ok(g)) if w == g => {}
                // a shape refused as text is refused with parameters too
                (_, Err(_)) if REFUSED.contains(&sql) => {}
                (w, g) => failures.push(format!("{text} (parameters)\n  oracle: {w:?}\n  proxy:  {g:?}")),
            }
        }
    }
    for sql in REFUSED {
        for prepared in [false, true] {
            if let Ok(a) = run(&mut p, sql, prepared).await {
                failures.push(format!("{sql} (prepared: {prepared}): expected a refusal, got {a:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ (seed {seed}; add failing generated queries to CORPUS):\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
}

/// A GROUP_CONCAT longer than the session's `group_concat_max_len` is cut there, with MariaDB's
/// warning 1260 once per cut value — what one server answers, SHOW WARNINGS included.
#[tokio::test]
async fn group_concat_is_cut_at_the_sessions_max_len() {
    load().await;
    let mut p = mysql_async::Conn::new(opts(proxy().port, "app", "app", Some("shard"))).await.unwrap();
    let mut o = direct_conn(PRIMARY1, ORACLE_DB).await;
    let sql = "SELECT city, GROUP_CONCAT(name, id ORDER BY id SEPARATOR '·') FROM customer GROUP BY city ORDER BY city";
    let mut answers = Vec::new();
    for c in [&mut o, &mut p] {
        exec(c, "SET SESSION group_concat_max_len = 25").await;
        let a = normalise(run(c, sql, false).await.unwrap(), "oc");
        let warnings = c.get_warnings();
        let shown: Vec<(String, u16, String)> = c.query("SHOW WARNINGS").await.unwrap();
        let codes: Vec<(String, u16)> = shown.into_iter().map(|(l, n, _)| (l, n)).collect();
        let prepared = normalise(run(c, sql, true).await.unwrap(), "oc");
        answers.push((a, warnings, codes, prepared));
    }
    let (want, got) = (&answers[0], &answers[1]);
    assert_eq!(got.0, want.0, "cut where the server cuts (a two-byte separator is never split)");
    assert!(want.1 > 0, "the data set is long enough to be cut");
    assert_eq!(got.1, want.1, "one warning per cut value");
    assert_eq!(got.2, want.2, "SHOW WARNINGS: Warning 1260 per cut value");
    assert_eq!(got.3, want.3, "prepared");
}

/// A merge that would hold more than `mergeMemoryLimit` ends with a clear error; an ordered scan holds
/// one row per shard and is not affected.
#[tokio::test]
async fn the_merge_memory_cap_turns_into_an_error() {
    load().await;
    let conf = fixture_copy("sharding");
    let dir = conf.path();
    let server = std::fs::read_to_string(dir.join("server.xml")).unwrap().replace(
        "<property name=\"charset\">",
        "<property name=\"mergeMemoryLimit\">2048</property>\n\t\t<property name=\"charset\">",
    );
    std::fs::write(dir.join("server.xml"), server).unwrap();
    let p = Proxy::start(dir, None);
    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("shard"))).await.unwrap();
    let e = c.query_drop("SELECT id, COUNT(*) FROM customer GROUP BY id").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap_or_else(|| panic!("{e}"));
    assert_eq!(code, 1105);
    assert!(msg.contains("mergeMemoryLimit"), "{msg}");
    let ids: Vec<i64> = c.query("SELECT id FROM customer ORDER BY id").await.unwrap();
    assert_eq!(ids.len(), 60);
    // a second DISTINCT aggregate keeps its values in a set, which the cap ends; the first one's
    // values arrive sorted and are counted holding one
    let e = c.query_drop("SELECT COUNT(DISTINCT city), COUNT(DISTINCT id) FROM customer").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap_or_else(|| panic!("{e}"));
    assert_eq!(code, 1105);
    assert!(msg.contains("mergeMemoryLimit") && msg.contains("DISTINCT"), "{msg}");
    let n: Option<i64> = c.query_first("SELECT COUNT(DISTINCT id) FROM customer").await.unwrap();
    assert_eq!(n, Some(60));
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM customer").await.unwrap();
    assert_eq!(n, Some(60), "the connection is still usable");
    // DISTINCT ordered by exactly its columns streams (neighbours compared, one row held per shard): no
    // cap; without that ORDER BY its rows are held, and the cap ends it
    let mut o = direct_conn(PRIMARY1, ORACLE_DB).await;
    for q in [
        "SELECT DISTINCT score, id FROM customer ORDER BY id, score",
        "SELECT DISTINCT born FROM customer ORDER BY born DESC",
    ] {
        let want: Vec<mysql_async::Row> = o.query(q).await.unwrap();
        let got: Vec<mysql_async::Row> = c.query(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(answer(&got), answer(&want), "{q}");
    }
    let e = c.query_drop("SELECT DISTINCT score, id FROM customer").await.unwrap_err();
    assert_eq!(server_error(&e).map(|(code, _, msg)| (code, msg.contains("mergeMemoryLimit"))), Some((1105, true)));
    // a joined table bigger than the cap is read for the keys of the first table's rows: those the
    // WHERE leaves, or (without one) all of them when they are few; the same answer as one server
    for q in [
        "SELECT t.id, c.name FROM t_range t JOIN customer c ON c.id = t.id % 60 WHERE t.id < 5000 ORDER BY t.id",
        "SELECT t.id, c.name FROM t_range t JOIN customer c ON c.id = t.id % 7 ORDER BY t.id",
    ] {
        let want: Vec<(i64, Option<String>)> = o.query(q).await.unwrap();
        let got: Vec<(i64, Option<String>)> = c.query(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(got, want, "{q}");
        assert!(!want.is_empty(), "{q}");
    }
    // the joined rows the shards' join needs outgrow the cap, the first table's rows do not: the proxy
    // joins in batches (frontend::join), halving a batch whose joined rows outgrow it — one server's rows
    for q in [
        "SELECT c.id, c.name, o.id, o.total FROM customer c JOIN orders o ON o.customer_id = c.id + 0 WHERE c.id <= 20 ORDER BY c.id",
        "SELECT c.id, o.id, o.status FROM customer c LEFT JOIN orders o ON o.customer_id = c.id + 0 WHERE c.id BETWEEN 5 AND 30",
        "SELECT t.id, c.name FROM t_range t JOIN customer c ON c.id = t.id % 61 - 1",
        // the whole first table is more than the cap holds: read a page at a time by its primary key
        "SELECT c.id, o.id FROM customer c JOIN orders o ON o.customer_id = c.id + 0",
        "SELECT c.id, c.city, o.id FROM customer c LEFT JOIN orders o ON o.customer_id = c.id + 0 ORDER BY c.id DESC",
    ] {
        let want: Vec<Row> = o.query(q).await.unwrap();
        let got: Vec<Row> = c.query(q).await.unwrap_or_else(|e| panic!("{q}: {e}"));
        let (mut want, mut got) = (answer(&want), answer(&got));
        assert!(want.1.len() > 30, "{q}: the joined rows are more than the cap holds");
        want.1.sort();
        got.1.sort();
        assert_eq!(got, want, "{q}");
    }
    // joined rows too big for the shards' join and a first table too big to hold for the batches (its
    // order is not its key's, so it is read whole): still the error naming the cap, and what outgrew it
    let e = c
        .query_drop("SELECT c.id, o.id FROM customer c JOIN orders o ON o.customer_id = c.id + 0 ORDER BY c.name")
        .await
        .unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap_or_else(|| panic!("{e}"));
    assert_eq!(code, 1105);
    assert!(msg.contains("mergeMemoryLimit") && msg.contains("first table"), "{msg}");
}

/// EXPLAIN of a page of a join the shards cannot run together: the proxy's join in batches, the first
/// table's page read first (with the LIMIT), the joined table per batch of its keys.
#[tokio::test]
async fn explain_shows_a_join_in_batches() {
    load().await;
    let mut c = mysql_async::Conn::new(opts(proxy().port, "app", "app", Some("shard"))).await.unwrap();
    let q = "SELECT t.id, c.name FROM t_range t LEFT JOIN customer c ON c.id = t.id % 60 WHERE t.id > 100 ORDER BY t.id LIMIT 5, 10";
    let rows: Vec<(String, String, String)> = c.query(format!("EXPLAIN {q}")).await.unwrap();
    let plan: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert!(
        plan[0].starts_with("Join in batches of up to") && plan[0].ends_with("Limit 5, 10 over the joined rows"),
        "{plan:?}"
    );
    assert_eq!(
        plan[1],
        "├─ First, in pages by t.id: SELECT * FROM t_range AS t WHERE (t.id > 100) AND t.`id` > <the last page's last> ORDER BY t.`id` LIMIT 15",
        "{plan:?}"
    );
    assert_eq!(
        plan[2], "├─ Per batch: SELECT * FROM customer WHERE customer.`id` IN (the batch's t.id % 60)",
        "{plan:?}"
    );
    // an INNER join may drop rows: the shards' join, with the batches only if what it reads outgrows the cap
    let rows: Vec<(String, String, String)> = c.query(format!("EXPLAIN {}", q.replace("LEFT ", ""))).await.unwrap();
    let plan: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert!(plan[0].starts_with("Then the statement"), "{plan:?}");
    assert!(plan.contains(&"If what runs first outgrows mergeMemoryLimit:"), "{plan:?}");
}

/// With autocommit off, a join in batches opens the transaction as one server's SELECT does, and its
/// reply's status says so (drivers decide COMMIT/ROLLBACK on IN_TRANS).
#[tokio::test]
async fn a_join_in_batches_reports_the_transaction_it_opened() {
    load().await;
    const IN_TRANS: u16 = 0x0001;
    let q = "SELECT t.id, c.name FROM t_range t LEFT JOIN customer c ON c.id = t.id % 60 ORDER BY t.id LIMIT 3";
    let mut seen = Vec::new();
    for (port, user, pass, db) in [(proxy().port, "app", "app", "shard"), (PRIMARY1, "proxy", "proxy", ORACLE_DB)] {
        let (mut c, _) = raw::login(port, user, pass, Some(db), "mysql_native_password").await;
        let mut flags = Vec::new();
        for sql in ["SET autocommit=0", q, "COMMIT", q, "ROLLBACK", "SET autocommit=1", q] {
            c.queue_query(sql);
            c.flush().await;
            let reply = c.read_reply().await;
            let last = reply.last().unwrap();
            assert_ne!(last[0], 0xFF, "{sql}: {:?}", shardcat::proto::packets::parse_err(last));
            flags.push(shardcat::proto::packets::parse_ok(last).unwrap().status & IN_TRANS);
        }
        seen.push(flags);
    }
    assert_eq!(seen[0], seen[1], "the proxy's IN_TRANS after each statement, and one server's");
    assert_eq!(seen[1][1], IN_TRANS, "the SELECT opened the transaction");
}
