//! The less common commands and session behaviours: COM_CHANGE_USER, COM_RESET_CONNECTION, KILL,
//! COM_STATISTICS, COM_FIELD_LIST, COM_SET_OPTION, cursors with COM_STMT_FETCH, multi-statements,
//! session variables that follow the session onto every backend connection.

mod common;
#[path = "common/raw.rs"]
mod raw;

use bytes::{BufMut, BytesMut};
use common::*;
use mysql_async::prelude::*;
use shardcat::proto::packets;

#[tokio::test]
async fn change_user_and_reset_connection() {
    let mut c = proxy_conn("demo").await;
    exec(&mut c, "SET @keep = 'x'").await;
    assert!(c.reset().await.unwrap(), "COM_RESET_CONNECTION supported");
    let v: Option<Option<String>> = c.query_first("SELECT @keep").await.unwrap();
    assert_eq!(v, Some(None), "user variables are gone after a reset");
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("demo"), "the schema survives a reset");
    c.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some("reader".into()))
            .with_pass(Some("reader".into()))
            .with_db_name(Some("passthru".into())),
    )
    .await
    .unwrap();
    let who: Option<String> = c.query_first("SELECT USER()").await.unwrap();
    assert!(who.unwrap().starts_with("reader@"));
    let e = c.query_drop("CREATE TABLE ro_nope (a INT)").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1142), "the new user's readOnly applies");
    let bad = c
        .change_user(
            mysql_async::ChangeUserOpts::default().with_user(Some("app".into())).with_pass(Some("wrong".into())),
        )
        .await;
    assert_eq!(bad.err().as_ref().and_then(server_error).map(|s| s.0), Some(1045));
}

#[tokio::test]
async fn kill_ends_another_session() {
    let mut victim = proxy_conn("passthru").await;
    let mut killer = proxy_conn("passthru").await;
    let id = victim.id();
    killer.query_drop(format!("KILL {id}")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(victim.query_drop("SELECT 1").await.is_err(), "the killed connection is closed");
    let e = killer.query_drop("KILL 987654").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1094));
}

#[tokio::test]
async fn statistics_field_list_and_set_option() {
    let port = demo().port;
    let mut c = proxy_conn("passthru").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS fl (id INT PRIMARY KEY, name VARCHAR(10))").await;
    let (mut r, _) = raw::login(port, "app", "app", Some("passthru"), "mysql_native_password").await;
    r.queue_command(&[0x09]);
    r.flush().await;
    let (_, stats) = r.r.expect().await.unwrap();
    assert!(stats.starts_with(b"Uptime: "), "{stats:?}");
    r.queue_command(b"\x04fl\x00");
    r.flush().await;
    let mut names = Vec::new();
    loop {
        let (_, p) = r.r.expect().await.unwrap();
        if packets::is_eof_packet(&p) || p[0] == 0xFF {
            assert_ne!(p[0], 0xFF, "{:?}", packets::parse_err(&p));
            break;
        }
        let mut pos = 0;
        for _ in 0..4 {
            packets::read_lenenc_str(&p, &mut pos);
        }
        names.push(String::from_utf8_lossy(packets::read_lenenc_str(&p, &mut pos).unwrap().unwrap()).into_owned());
    }
    assert_eq!(names, vec!["id", "name"]);
    r.queue_command(&[0x1B, 0x01, 0x00]); // multi statements off
    r.flush().await;
    let reply = r.read_reply().await;
    assert_eq!(reply[0][0], 0xFE, "COM_SET_OPTION answers EOF/OK, as MariaDB does");
}

/// A read-only cursor: EXECUTE opens it, COM_STMT_FETCH pulls rows in batches.
#[tokio::test]
async fn cursor_fetch() {
    let port = demo().port;
    let (mut r, _) = raw::login(port, "app", "app", Some("passthru"), "mysql_native_password").await;
    let mut p = vec![0x16];
    p.extend_from_slice(b"SELECT seq FROM seq_1_to_5");
    r.queue_command(&p);
    r.flush().await;
    let (_, ok) = r.r.expect().await.unwrap();
    assert_eq!(ok[0], 0x00, "{:?}", packets::parse_err(&ok));
    let stmt = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let cols = u16::from_le_bytes([ok[5], ok[6]]);
    for _ in 0..cols {
        r.r.expect().await.unwrap();
    }
    let mut ex = BytesMut::new();
    ex.put_u8(0x17);
    ex.put_u32_le(stmt);
    ex.put_u8(0x01); // CURSOR_TYPE_READ_ONLY
    ex.put_u32_le(1);
    r.queue_command(&ex);
    r.flush().await;
    let (_, count) = r.r.expect().await.unwrap();
    assert_eq!(count[0], 1);
    r.r.expect().await.unwrap(); // column definition
    let (_, end) = r.r.expect().await.unwrap();
    let st = packets::parse_ok(&end).unwrap().status;
    assert!(st & 0x0040 != 0, "SERVER_STATUS_CURSOR_EXISTS");
    let mut got = 0;
    for _ in 0..3 {
        let mut f = BytesMut::new();
        f.put_u8(0x1C);
        f.put_u32_le(stmt);
        f.put_u32_le(2);
        r.queue_command(&f);
        r.flush().await;
        loop {
            let (_, p) = r.r.expect().await.unwrap();
            if packets::is_eof_packet(&p) {
                break;
            }
            assert_eq!(p[0], 0x00, "binary row");
            got += 1;
        }
    }
    assert_eq!(got, 5);
}

#[tokio::test]
async fn multi_statements_pass_through_where_unambiguous() {
    let mut c = proxy_conn("passthru").await;
    let mut r = c.query_iter("SELECT 1; SELECT 2, 3").await.unwrap();
    let a: Vec<i64> = r.collect().await.unwrap();
    let b: Vec<(i64, i64)> = r.collect().await.unwrap();
    assert_eq!((a, b), (vec![1], vec![(2, 3)]));
    drop(r);
    // on a sharded schema each statement is routed on its own; session statements are the proxy's
    let mut d = proxy_conn("demo").await;
    exec(&mut d, "CREATE TABLE IF NOT EXISTS region (id INT PRIMARY KEY, name VARCHAR(10))").await;
    exec(&mut d, "INSERT IGNORE INTO region VALUES (1, 'eu')").await;
    let mut r = d.query_iter("SET @m = 5; SELECT @m + 1; SELECT COUNT(*) > 0 FROM region").await.unwrap();
    let set: Vec<i64> = r.collect().await.unwrap();
    let a: Vec<i64> = r.collect().await.unwrap();
    let b: Vec<i64> = r.collect().await.unwrap();
    assert_eq!((set, a, b), (vec![], vec![6], vec![1]));
    drop(r);
    // the first failing statement ends the text
    let e = d.query_drop("SELECT 1; SELECT * FROM no_such_multi_t; SET @after_error = 1").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1146));
    let v: Option<Option<i64>> = d.query_first("SELECT @after_error").await.unwrap();
    assert_eq!(v, Some(None), "statements after the failing one do not run");
    // a client that did not ask for multi-statements (the raw client does not set
    // CLIENT_MULTI_STATEMENTS) gets MariaDB's syntax error, though the backends would run them
    let (mut r, _) = raw::login(demo().port, "app", "app", Some("passthru"), "mysql_native_password").await;
    r.queue_query("SELECT 1; SELECT 2");
    r.flush().await;
    let reply = r.read_reply().await;
    assert_eq!(packets::parse_err(&reply[0]).code, 1064, "several statements without CLIENT_MULTI_STATEMENTS");
    // a stored program's body is one statement, whatever `;` it holds
    r.queue_query("CREATE OR REPLACE PROCEDURE multi_p() BEGIN SELECT 1; SELECT 2; END");
    r.flush().await;
    let reply = r.read_reply().await;
    assert_eq!(reply[0][0], 0x00, "{:?}", packets::parse_err(&reply[0]));
}

/// User variables, SET NAMES and sql_mode follow the session to whichever node serves it.
#[tokio::test]
async fn session_variables_follow_the_session_to_every_node() {
    let mut c = proxy_conn("demo").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS region (id INT PRIMARY KEY, name VARCHAR(10))").await;
    exec(&mut c, "INSERT IGNORE INTO region VALUES (1, 'eu')").await;
    exec(&mut c, "SET @who = 'me', sql_mode = 'ANSI_QUOTES'").await;
    exec(&mut c, "SET NAMES latin1").await;
    for _ in 0..6 {
        // a global table read lands on a random node of dn1/dn2, i.e. on either primary
        let row: Option<(String, String, String)> =
            c.query_first("SELECT @who, @@session.sql_mode, @@character_set_client FROM region LIMIT 1").await.unwrap();
        let (who, mode, cs) = row.expect("region has a row on every node");
        assert_eq!((who.as_str(), mode.as_str(), cs.as_str()), ("me", "ANSI_QUOTES", "latin1"));
        let v: Option<(String, String)> = c.query_first("SELECT @who, @@character_set_client").await.unwrap();
        assert_eq!(v, Some(("me".into(), "latin1".into())));
    }
    let e = c.query_drop("SET @@session.no_such_variable = 1").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1193), "unknown variables are refused when set");
    let v: Option<String> = c.query_first("SELECT @who").await.unwrap();
    assert_eq!(v.as_deref(), Some("me"), "a refused SET leaves the session usable");
    // another session never sees them
    let mut other = proxy_conn("demo").await;
    let v: Option<Option<String>> = other.query_first("SELECT @who").await.unwrap();
    assert_eq!(v, Some(None));
    let e = other.query_drop("SET GLOBAL max_connections = 10").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1227), "as MariaDB answers a user without SUPER");
}

/// Long data past max_allowed_packet (server.xml maxPacketSize) is not held: the EXECUTE answers
/// MariaDB's error, and the statement works again afterwards.
#[tokio::test]
async fn long_data_is_capped_at_max_allowed_packet() {
    stack();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("config/schema.xml"), dir.path().join("schema.xml")).unwrap();
    let server = std::fs::read_to_string(root().join("config/server.xml"))
        .unwrap()
        .replace("<system>", "<system>\n\t\t<property name=\"maxPacketSize\">1048576</property>");
    std::fs::write(dir.path().join("server.xml"), server).unwrap();
    let proxy = Proxy::start(dir.path(), Some(&root().join("rules")));
    let (mut r, _) = raw::login(proxy.port, "app", "app", Some("passthru"), "mysql_native_password").await;
    let mut p = vec![0x16];
    p.extend_from_slice(b"SELECT LENGTH(?)");
    r.queue_command(&p);
    r.flush().await;
    let reply = r.read_reply().await;
    let ok = &reply[0];
    assert_eq!(ok[0], 0x00);
    let stmt = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let params = u16::from_le_bytes([ok[7], ok[8]]);
    let cols = u16::from_le_bytes([ok[5], ok[6]]);
    for _ in 0..(params + cols) {
        r.r.expect().await.unwrap();
    }
    let execute = |stmt: u32| {
        let mut ex = BytesMut::new();
        ex.put_u8(0x17);
        ex.put_u32_le(stmt);
        ex.put_u8(0);
        ex.put_u32_le(1);
        ex.put_u8(0); // null bitmap
        ex.put_u8(1); // types follow
        ex.put_u16_le(0xFC); // BLOB
        ex
    };
    for round in 0..2 {
        let chunks = if round == 0 { 2 } else { 1 };
        for _ in 0..chunks {
            let mut ld = BytesMut::new();
            ld.put_u8(0x18);
            ld.put_u32_le(stmt);
            ld.put_u16_le(0);
            ld.extend_from_slice(&vec![b'z'; 600 * 1024]);
            r.queue_command(&ld);
        }
        r.queue_command(&execute(stmt));
        r.flush().await;
        let reply = r.read_reply().await;
        if round == 0 {
            let e = packets::parse_err(&reply[0]);
            assert_eq!(e.code, 1105, "{}", e.message);
            assert!(e.message.contains("max_allowed_packet"), "{}", e.message);
        } else {
            assert_ne!(reply[0][0], 0xFF, "{:?}", packets::parse_err(&reply[0]));
            // [count, definition, binary row, end]: the row is 0x00, a null bitmap byte, then LENGTH (INT)
            let row = &reply[2];
            let n = i32::from_le_bytes(row[2..6].try_into().unwrap());
            assert_eq!(n, 600 * 1024, "LENGTH of the long data sent after the refused one");
        }
    }
}
