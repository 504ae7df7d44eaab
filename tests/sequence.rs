//! Mycat's global sequences through the proxy: `next value for MYCATSEQ_…` in SELECT and INSERT, an
//! `autoIncrement` table's missing or NULL key, LAST_INSERT_ID() and the OK packet's insert id, for
//! handler types 0 (a local file that survives `kill -9`), 1 (a MYCAT_SEQUENCE table shared by two
//! proxies) and 2 (snowflake).

mod common;

use std::collections::HashSet;

use common::*;
use mysql_async::prelude::*;

/// A conf dir: tests/fixtures/sharding with table `seq_t` (autoIncrement, mod4 over 4 shards),
/// `sequenceHandlerType` set and the given extra files.
fn conf(handler: u8, files: &[(&str, &str)]) -> tempfile::TempDir {
    stack();
    let conf = fixture_copy("sharding");
    let dir = conf.path();
    let schema = std::fs::read_to_string(dir.join("schema.xml")).unwrap().replacen(
        "<table name=\"customer\"",
        "<table name=\"seq_t\" primaryKey=\"id\" autoIncrement=\"true\" dataNode=\"sdn$1-4\" rule=\"mod4\"/>\n\t\t<table name=\"customer\"",
        1,
    );
    std::fs::write(dir.join("schema.xml"), schema).unwrap();
    let server = std::fs::read_to_string(dir.join("server.xml"))
        .unwrap()
        .replace("<system>", &format!("<system>\n\t\t<property name=\"sequenceHandlerType\">{handler}</property>"));
    std::fs::write(dir.join("server.xml"), server).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    for port in [PRIMARY1, PRIMARY2] {
        root_sql(port, "CREATE DATABASE IF NOT EXISTS sc_a; CREATE DATABASE IF NOT EXISTS sc_b").unwrap();
    }
    conf
}

async fn session(p: &Proxy) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(p.port, "app", "app", Some("shard"))).await.unwrap()
}

async fn fresh_table(c: &mut mysql_async::Conn) {
    exec(c, "DROP TABLE IF EXISTS seq_t").await;
    exec(c, "CREATE TABLE seq_t (id BIGINT PRIMARY KEY, v VARCHAR(20))").await;
}

#[tokio::test]
async fn file_sequences_fill_keys_and_never_reuse_an_id_after_kill_9() {
    let seqs = "GLOBAL.HISIDS=\nGLOBAL.MINID=10001\nGLOBAL.MAXID=20000\nGLOBAL.CURID=10000\nSEQ_T.HISIDS=\nSEQ_T.MINID=1\nSEQ_T.MAXID=1500\nSEQ_T.CURID=0\n";
    let conf = conf(0, &[("sequence_conf.properties", seqs)]);
    let dir = conf.path();
    let p = Proxy::start(dir, None);
    let mut c = session(&p).await;
    fresh_table(&mut c).await;
    let a: Option<u64> = c.query_first("SELECT next value for MYCATSEQ_GLOBAL").await.unwrap();
    let b: Option<u64> = c.query_first("select NEXT VALUE FOR mycatseq_global").await.unwrap();
    assert_eq!((a, b), (Some(10001), Some(10002)));
    // an INSERT without the key, one with NULL, and an explicit one
    c.query_drop("INSERT INTO seq_t (v) VALUES ('a'), ('b'), ('c')").await.unwrap();
    assert_eq!(c.last_insert_id(), Some(1), "the OK's insert id is the first id given");
    let last: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(last, Some(1));
    c.query_drop("INSERT INTO seq_t (id, v) VALUES (NULL, 'd')").await.unwrap();
    assert_eq!(c.last_insert_id(), Some(4));
    c.query_drop("INSERT INTO seq_t (id, v) VALUES (next value for MYCATSEQ_SEQ_T, 'e'), (1000, 'f')").await.unwrap();
    let rows: Vec<(u64, String)> = c.query("SELECT id, v FROM seq_t ORDER BY id").await.unwrap();
    assert_eq!(
        rows,
        vec![(1, "a".into()), (2, "b".into()), (3, "c".into()), (4, "d".into()), (5, "e".into()), (1000, "f".into())]
    );
    // the rows are on the shards their ids name
    let n: Option<u64> = c.query_first("SELECT COUNT(*) FROM seq_t WHERE id = 2").await.unwrap();
    assert_eq!(n, Some(1));
    let e = c.query_drop("SELECT next value for MYCATSEQ_NOPE").await.unwrap_err();
    let (code, _, msg) = server_error(&e).unwrap_or_else(|| panic!("{e}"));
    assert!(code == 1105 && msg.contains("MYCATSEQ_NOPE"), "{code} {msg}");
    // prepared: the key is written in at each execution
    c.exec_drop("INSERT INTO seq_t (v) VALUES (?)", ("p1",)).await.unwrap();
    assert_eq!(c.last_insert_id(), Some(6));
    c.exec_drop("INSERT INTO seq_t (v) VALUES (?)", ("p2",)).await.unwrap();
    assert_eq!(c.last_insert_id(), Some(7));
    let v: Option<String> = c.exec_first("SELECT v FROM seq_t WHERE id = ?", (7,)).await.unwrap();
    assert_eq!(v.as_deref(), Some("p2"));
    let e = c.exec_drop("SELECT next value for MYCATSEQ_GLOBAL", ()).await.unwrap_err();
    assert!(server_error(&e).is_some_and(|(_, _, m)| m.contains("prepared")), "{e}");
    // kill -9 and start again: ids continue after every one handed out
    drop(c);
    drop(p);
    let p = Proxy::start(dir, None);
    let mut c = session(&p).await;
    c.query_drop("INSERT INTO seq_t (v) VALUES ('after')").await.unwrap();
    let id = c.last_insert_id().unwrap_or(0);
    assert!(id > 7 && id != 1000, "after the restart: {id}");
    let g: Option<u64> = c.query_first("SELECT next value for MYCATSEQ_GLOBAL").await.unwrap();
    assert!(g.is_some_and(|g| g > 10002), "{g:?}");
    let file = std::fs::read_to_string(dir.join("sequence_conf.properties")).unwrap();
    assert!(file.contains("SEQ_T.CURID="), "{file}");
}

/// Creates MYCAT_SEQUENCE and mycat_seq_nextval (docs/dbseq.sql, as a user would run it) in `db` on
/// `port`, with sequences SEQ_T (blocks of `increment`) and GLOBAL (blocks of 1, from 101).
fn db_sequence(port: u16, db: &str, increment: u32) {
    use std::io::Write;
    let script = std::fs::read_to_string(root().join("docs/dbseq.sql")).unwrap();
    let mut child = std::process::Command::new("mariadb")
        .args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), "-uroot", db])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!(
        "{script}\nDELETE FROM MYCAT_SEQUENCE;\nINSERT INTO MYCAT_SEQUENCE VALUES ('SEQ_T', 0, {increment}), ('GLOBAL', 100, 1);\n"
    );
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn two_proxies_sharing_a_sequence_table_give_distinct_ids() {
    let conf = conf(1, &[("sequence_db_conf.properties", "SEQ_T=sdn1\nGLOBAL=sdn1\n")]);
    let p1 = Proxy::start(conf.path(), None);
    let p2 = Proxy::start(conf.path(), None);
    let mut c = session(&p1).await;
    fresh_table(&mut c).await;
    // the replicas apply CREATE FUNCTION from the binlog as well (scripts/stack sets this at start)
    for port in [PRIMARY1, REPLICA1, PRIMARY2, PRIMARY2 + 1] {
        root_sql(port, "SET GLOBAL log_bin_trust_function_creators = 1").unwrap();
    }
    // wherever the fixture puts sdn1: every database of both primaries has the sequence
    for port in [PRIMARY1, PRIMARY2] {
        for db in ["sc_a", "sc_b"] {
            db_sequence(port, db, 50);
        }
    }
    let g: Option<u64> = c.query_first("SELECT next value for MYCATSEQ_GLOBAL").await.unwrap();
    assert_eq!(g, Some(101), "a block of 1 after current_value 100");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let port = if i % 2 == 0 { p1.port } else { p2.port };
        tasks.push(tokio::spawn(async move {
            let mut c = mysql_async::Conn::new(opts(port, "app", "app", Some("shard"))).await.unwrap();
            let mut ids = Vec::with_capacity(10_000);
            for j in 0..10_000 {
                c.query_drop(format!("INSERT INTO seq_t (v) VALUES ('{i}-{j}')")).await.unwrap();
                ids.push(c.last_insert_id().unwrap_or(0));
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(all.insert(id), "id {id} given twice");
        }
    }
    assert_eq!(all.len(), 80_000);
    let n: Option<u64> = c.query_first("SELECT COUNT(DISTINCT id) FROM seq_t").await.unwrap();
    assert_eq!(n, Some(80_000), "every row has its own id");
    exec(&mut c, "DROP TABLE seq_t").await;
}

#[tokio::test]
async fn snowflake_ids_grow_and_never_repeat() {
    let conf = conf(2, &[("sequence_time_conf.properties", "WORKID=3\nDATAACENTERID=1\n")]);
    let p = Proxy::start(conf.path(), None);
    let mut c = session(&p).await;
    let mut last = 0u64;
    for _ in 0..2000 {
        let id: Option<u64> = c.query_first("SELECT next value for MYCATSEQ_ANY").await.unwrap();
        let id = id.unwrap_or(0);
        assert!(id > last, "{id} after {last}");
        assert_eq!((id >> 12) & 0x1F, 3, "WORKID");
        assert_eq!((id >> 17) & 0x1F, 1, "DATAACENTERID");
        last = id;
    }
}
