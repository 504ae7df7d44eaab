//! Protocol conformance through shardcat, each case compared with the same exchange direct to MariaDB:
//! pipelining, big packets, unknown commands, caching_sha2 login, status flags, errors.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::*;
use mysql_async::prelude::*;

/// 50 INSERTs written in one go: every one executes and gets its own OK, as on MariaDB.
#[tokio::test]
async fn fifty_pipelined_statements_all_execute() {
    let proxy = demo();
    for (port, user, pass) in [(proxy.port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let mut setup = direct_conn(PRIMARY1, "passthru").await;
        exec(&mut setup, "CREATE TABLE IF NOT EXISTS pipelined (id INT PRIMARY KEY, port INT)").await;
        exec(&mut setup, &format!("DELETE FROM pipelined WHERE port={port}")).await;
        let (mut c, login) = raw::login(port, user, pass, Some("passthru"), "mysql_native_password").await;
        assert_eq!(login.last().unwrap()[0], 0x00, "login via {port}");
        for i in 0..50 {
            c.queue_query(&format!("INSERT INTO pipelined VALUES ({}, {port})", port as i64 * 1000 + i));
        }
        c.flush().await;
        for i in 0..50 {
            let reply = c.read_reply().await;
            assert_eq!(reply.len(), 1, "reply {i} via {port}");
            let ok = shardcat::proto::packets::parse_ok(&reply[0]).expect("an OK packet");
            assert_eq!(ok.affected_rows, 1, "reply {i} via {port}");
        }
        let n: Option<i64> =
            setup.query_first(format!("SELECT COUNT(*) FROM pipelined WHERE port={port}")).await.unwrap();
        assert_eq!(n, Some(50), "rows stored via {port}");
    }
}

#[tokio::test]
async fn twenty_mib_blob_round_trips_text_and_prepared() {
    let mut c = proxy_conn("passthru").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS blobs (id INT PRIMARY KEY, b LONGBLOB)").await;
    exec(&mut c, "DELETE FROM blobs").await;
    let blob: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    c.exec_drop("INSERT INTO blobs VALUES (?, ?)", (1, blob.clone())).await.unwrap();
    let text: Option<Vec<u8>> = c.query_first("SELECT b FROM blobs WHERE id=1").await.unwrap();
    assert_eq!(text.as_deref().map(<[u8]>::len), Some(blob.len()));
    assert!(text.unwrap() == blob, "text protocol returns the same bytes");
    let bin: Option<Vec<u8>> = c.exec_first("SELECT b FROM blobs WHERE id=?", (1,)).await.unwrap();
    assert!(bin.unwrap() == blob, "binary protocol returns the same bytes");
}

#[tokio::test]
async fn unknown_command_gets_1047_like_mariadb() {
    let proxy = demo();
    for (port, user, pass) in [(proxy.port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let (mut c, _) = raw::login(port, user, pass, None, "mysql_native_password").await;
        c.queue_command(&[0x1D]); // COM_DAEMON: internal to the server, never valid from a client
        c.flush().await;
        let reply = c.read_reply().await;
        let e = shardcat::proto::packets::parse_err(&reply[0]);
        assert_eq!((reply[0][0], e.code, e.state.as_str()), (0xFF, 1047, "08S01"), "via {port}: {e:?}");
        // the connection stays usable
        c.queue_command(&[0x0E]);
        c.flush().await;
        assert_eq!(c.read_reply().await[0][0], 0x00);
    }
}

#[tokio::test]
async fn caching_sha2_password_client_logs_in() {
    let proxy = demo();
    let (mut c, replies) = raw::login(proxy.port, "app", "app", Some("demo"), "caching_sha2_password").await;
    assert_eq!(replies.first().map(|p| p.to_vec()), Some(vec![0x01, 0x03]), "fast auth success first");
    assert_eq!(replies.last().unwrap()[0], 0x00, "then OK");
    c.queue_query("SELECT DATABASE()");
    c.flush().await;
    let reply = c.read_reply().await;
    assert!(reply.iter().any(|p| p.ends_with(b"demo")), "{reply:?}");
    let (_, bad) = raw::login(proxy.port, "app", "wrong", None, "caching_sha2_password").await;
    let e = shardcat::proto::packets::parse_err(bad.last().unwrap());
    assert_eq!((e.code, e.state.as_str()), (1045, "28000"));
}

#[tokio::test]
async fn login_errors_match_mysql() {
    let port = demo().port;
    let e = mysql_async::Conn::new(opts(port, "app", "nope", None)).await.unwrap_err();
    let (code, state, msg) = server_error(&e).unwrap();
    assert_eq!((code, state.as_str()), (1045, "28000"));
    assert!(msg.contains("'app'") && msg.contains("using password: YES"), "{msg}");
    let e = mysql_async::Conn::new(opts(port, "ghost", "x", None)).await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1045));
    let e = mysql_async::Conn::new(opts(port, "app", "app", Some("nosuch"))).await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| (s.0, s.1)), Some((1049, "42000".to_string())));
    // a schema the user may not use: 1044 at connect and at USE
    let limited = common::limited_proxy();
    let e = mysql_async::Conn::new(opts(limited.port, "limited", "limited", Some("passthru"))).await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| (s.0, s.1)), Some((1044, "42000".to_string())));
    let mut c = mysql_async::Conn::new(opts(limited.port, "limited", "limited", Some("demo"))).await.unwrap();
    let e = c.query_drop("USE passthru").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1044));
    let dbs: Vec<String> = c.query("SHOW DATABASES").await.unwrap();
    assert_eq!(dbs, vec!["demo".to_string()]);
}

const IN_TRANS: u16 = 0x0001;
const AUTOCOMMIT: u16 = 0x0002;

async fn status_after(c: &mut raw::Raw, sql: &str) -> u16 {
    c.queue_query(sql);
    c.flush().await;
    let reply = c.read_reply().await;
    let last = reply.last().unwrap();
    assert_ne!(last[0], 0xFF, "{sql}: {:?}", shardcat::proto::packets::parse_err(last));
    shardcat::proto::packets::parse_ok(last).unwrap().status
}

/// The status flags a driver relies on (PyMySQL and JDBC decide autocommit from them) match MariaDB's.
#[tokio::test]
async fn status_flags_follow_the_transaction() {
    let proxy = demo();
    let mut seen = Vec::new();
    for (port, user, pass) in [(proxy.port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let (mut c, _) = raw::login(port, user, pass, Some("passthru"), "mysql_native_password").await;
        let mut flags = Vec::new();
        for sql in [
            "CREATE TABLE IF NOT EXISTS flags (id INT PRIMARY KEY)",
            "BEGIN",
            "INSERT INTO flags VALUES (1)",
            "ROLLBACK",
            "SET autocommit=0",
            "SELECT 1",
            "SELECT COUNT(*) FROM flags",
            "INSERT INTO flags VALUES (7)",
            "ROLLBACK",
            "SELECT 1",
            "COMMIT",
            "SET autocommit=1",
        ] {
            flags.push(status_after(&mut c, sql).await & (IN_TRANS | AUTOCOMMIT));
        }
        seen.push(flags);
    }
    assert_eq!(seen[0], seen[1], "proxy vs MariaDB status flags");
    assert_eq!(seen[0][1], IN_TRANS | AUTOCOMMIT, "BEGIN sets IN_TRANS");
}

#[tokio::test]
async fn rollback_really_rolls_back() {
    let mut c = proxy_conn("passthru").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS rb (id INT PRIMARY KEY)").await;
    exec(&mut c, "DELETE FROM rb").await;
    exec(&mut c, "BEGIN").await;
    exec(&mut c, "INSERT INTO rb VALUES (1)").await;
    exec(&mut c, "ROLLBACK").await;
    exec(&mut c, "SET autocommit=0").await;
    exec(&mut c, "INSERT INTO rb VALUES (2)").await;
    exec(&mut c, "COMMIT").await;
    exec(&mut c, "INSERT INTO rb VALUES (3)").await;
    exec(&mut c, "ROLLBACK").await;
    exec(&mut c, "SET autocommit=1").await;
    let ids: Vec<i64> = c.query("SELECT id FROM rb ORDER BY id").await.unwrap();
    assert_eq!(ids, vec![2]);
}

/// A client that disconnects inside a transaction leaves nothing behind.
#[tokio::test]
async fn disconnect_mid_transaction_rolls_back() {
    let mut c = proxy_conn("passthru").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS gone (id INT PRIMARY KEY)").await;
    exec(&mut c, "DELETE FROM gone").await;
    exec(&mut c, "BEGIN").await;
    exec(&mut c, "INSERT INTO gone VALUES (1)").await;
    drop(c);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut d = direct_conn(PRIMARY1, "passthru").await;
    let n: Option<i64> = d.query_first("SELECT COUNT(*) FROM gone").await.unwrap();
    assert_eq!(n, Some(0));
}

#[tokio::test]
async fn warnings_and_multi_results_pass_through() {
    let mut c = proxy_conn("passthru").await;
    let mut d = direct_conn(PRIMARY1, "passthru").await;
    for conn in [&mut c, &mut d] {
        conn.query_drop("SELECT CAST('abc' AS SIGNED)").await.unwrap();
        assert_eq!(conn.get_warnings(), 1);
    }
    exec(&mut c, "DROP PROCEDURE IF EXISTS two_results").await;
    exec(&mut c, "CREATE PROCEDURE two_results() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END").await;
    let mut r = c.query_iter("CALL two_results()").await.unwrap();
    let first: Vec<i64> = r.collect().await.unwrap();
    let second: Vec<(i64, i64)> = r.collect().await.unwrap();
    assert_eq!((first, second), (vec![1], vec![(2, 3)]));
    drop(r);
    let v: Option<i64> = c.query_first("SELECT 41 + 1").await.unwrap();
    assert_eq!(v, Some(42), "connection still in sync after a multi-result CALL");
}

/// As on MySQL, a failed statement inside a transaction does not end it.
#[tokio::test]
async fn an_error_inside_a_transaction_leaves_it_usable() {
    let mut c = proxy_conn("passthru").await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS txerr (id INT PRIMARY KEY)").await;
    exec(&mut c, "DELETE FROM txerr").await;
    exec(&mut c, "BEGIN").await;
    exec(&mut c, "INSERT INTO txerr VALUES (1)").await;
    let e = c.query_drop("INSERT INTO txerr VALUES (1)").await.unwrap_err();
    assert_eq!(server_error(&e).map(|s| s.0), Some(1062));
    exec(&mut c, "INSERT INTO txerr VALUES (2)").await;
    exec(&mut c, "COMMIT").await;
    let ids: Vec<i64> = c.query("SELECT id FROM txerr ORDER BY id").await.unwrap();
    assert_eq!(ids, vec![1, 2]);
}

/// Failed statements are logged, one line each, and a password in a statement never is.
#[tokio::test]
async fn failed_statements_are_logged_without_passwords() {
    let mut c = proxy_conn("passthru").await;
    let _ = c.query_drop("SELECT * FROM log_probe_missing_table").await.unwrap_err();
    let _ = c.query_drop("ALTER USER 'nobody_here'@'%' IDENTIFIED BY 'sekrit-pw-123'").await.unwrap_err();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let log = demo().log_text();
    assert!(log.lines().any(|l| l.contains("statement failed") && l.contains("log_probe_missing_table")), "{log}");
    assert!(!log.contains("sekrit-pw-123"), "a password reached the log");
    assert!(log.contains("connected"), "connection events are logged");
}

/// A latin1 client's bytes reach the backend as sent (not re-encoded), so non-UTF-8 text survives.
#[tokio::test]
async fn non_utf8_client_bytes_pass_through_unchanged() {
    let port = demo().port;
    let mut d = direct_conn(PRIMARY1, "passthru").await;
    exec(&mut d, "CREATE TABLE IF NOT EXISTS l1 (id INT PRIMARY KEY, s VARCHAR(10)) DEFAULT CHARSET=utf8mb4").await;
    exec(&mut d, "DELETE FROM l1").await;
    let (mut c, _) = raw::login(port, "app", "app", Some("passthru"), "mysql_native_password").await;
    assert_eq!(status_after(&mut c, "SET NAMES latin1").await & AUTOCOMMIT, AUTOCOMMIT);
    let mut q = vec![0x03];
    q.extend_from_slice(b"INSERT INTO l1 VALUES (1, 'caf\xe9')");
    c.queue_command(&q);
    c.flush().await;
    let reply = c.read_reply().await;
    assert_eq!(reply[0][0], 0x00, "{:?}", shardcat::proto::packets::parse_err(&reply[0]));
    let s: Option<String> = d.query_first("SELECT s FROM l1 WHERE id = 1").await.unwrap();
    assert_eq!(s.as_deref(), Some("café"));
}

/// Replies through the proxy are byte-for-byte MariaDB's (column definitions, text and binary rows,
/// OK/EOF framing, status flags), for clients with and without CLIENT_DEPRECATE_EOF. Only statement
/// ids differ.
#[tokio::test]
async fn replies_are_byte_identical_to_mariadb_in_both_eof_framings() {
    let port = demo().port;
    let mut d = direct_conn(PRIMARY1, "passthru").await;
    exec(&mut d, "CREATE TABLE IF NOT EXISTS bytes_t (id INT PRIMARY KEY, s VARCHAR(20), n DECIMAL(9,3), t DATETIME)")
        .await;
    exec(&mut d, "REPLACE INTO bytes_t VALUES (1, 'x', 1.5, '2024-01-01 10:00:00'), (2, NULL, -3.25, NULL)").await;
    for deprecate in [true, false] {
        let mut transcripts = Vec::new();
        for (p, u, pw) in [(port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
            let (mut c, _) = raw::login_with(p, u, pw, Some("passthru"), "mysql_native_password", deprecate).await;
            let mut t: Vec<Vec<u8>> = Vec::new();
            for q in [
                "SELECT * FROM bytes_t ORDER BY id",
                "SELECT COUNT(*), SUM(n) FROM bytes_t",
                "UPDATE bytes_t SET s = s WHERE id = 1",
                "SELECT nope FROM bytes_t",
            ] {
                c.queue_query(q);
                c.flush().await;
                t.extend(c.read_reply().await.into_iter().map(|b| b.to_vec()));
            }
            // prepare: OK (statement id zeroed), parameter and column definitions, EOFs if any
            let mut prep = vec![0x16];
            prep.extend_from_slice(b"SELECT id, s, n, t FROM bytes_t WHERE id >= ?");
            c.queue_command(&prep);
            c.flush().await;
            let (_, mut ok) = c.r.expect().await.unwrap();
            let stmt = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
            let mut okv = ok.to_vec();
            okv[1..5].copy_from_slice(&[0, 0, 0, 0]);
            t.push(okv);
            let expected = 1 + 4 + if deprecate { 0 } else { 2 };
            for _ in 0..expected {
                ok = c.r.expect().await.unwrap().1;
                t.push(ok.to_vec());
            }
            // execute with one INT parameter = 1
            let mut ex = vec![0x17];
            ex.extend_from_slice(&stmt.to_le_bytes());
            ex.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 3, 0, 1, 0, 0, 0]);
            c.queue_command(&ex);
            c.flush().await;
            t.extend(c.read_reply().await.into_iter().map(|b| b.to_vec()));
            transcripts.push(t);
        }
        assert_eq!(transcripts[0].len(), transcripts[1].len(), "packet count, deprecate_eof={deprecate}");
        for (i, (a, b)) in transcripts[0].iter().zip(&transcripts[1]).enumerate() {
            assert_eq!(a, b, "packet {i}, deprecate_eof={deprecate}");
        }
    }
}

/// In front of MariaDB the proxy presents MariaDB: the handshake carries `5.5.5-<the backend's
/// version>-shardcat` (drivers pick their dialect by it) and VERSION() is the backend's, marked.
#[tokio::test]
async fn the_handshake_presents_the_backends_mariadb_version() {
    let mut p = proxy_conn("passthru").await;
    let mut d = direct_conn(PRIMARY1, "passthru").await;
    assert_eq!(p.server_version(), d.server_version(), "version as drivers parse it");
    let pv: String = p.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let dv: String = d.query_first("SELECT VERSION()").await.unwrap().unwrap();
    assert!(dv.contains("MariaDB"), "the stack runs MariaDB: {dv}");
    assert_eq!(pv, format!("{dv}-shardcat"));
    let s = tokio::net::TcpStream::connect(("127.0.0.1", demo().port)).await.unwrap();
    let mut r = shardcat::proto::codec::PacketReader::new(s);
    let (_, hs) = r.expect().await.unwrap();
    let end = hs[1..].iter().position(|b| *b == 0).unwrap() + 1;
    assert_eq!(String::from_utf8_lossy(&hs[1..end]), format!("5.5.5-{dv}-shardcat"));
}

/// A client that negotiates the compressed protocol gets every reply compressed, as from MariaDB:
/// many rows, a 20 MiB value (several compressed packets), prepared statements; the mariadb CLI's
/// --compress too.
#[tokio::test]
async fn compressed_protocol_as_direct() {
    let proxy = demo();
    let mut seen = Vec::new();
    for (port, user, pass) in [(proxy.port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let o = mysql_async::OptsBuilder::from_opts(opts(port, user, pass, Some("passthru")))
            .compression(Some(mysql_async::Compression::default()))
            .max_allowed_packet(Some(64 << 20));
        let mut c = mysql_async::Conn::new(o).await.unwrap_or_else(|e| panic!("compressed login via {port}: {e}"));
        let rows: Vec<(i64, String)> =
            c.query("SELECT seq, REPEAT(CHAR(65 + seq % 26), seq % 300) FROM seq_1_to_20000").await.unwrap();
        let n: Option<i64> = c.exec_first("SELECT ? + 1", (41,)).await.unwrap();
        exec(&mut c, "CREATE TABLE IF NOT EXISTS comp_blob (id INT PRIMARY KEY, b LONGBLOB)").await;
        let big: Vec<u8> = (0..20 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
        c.exec_drop("REPLACE INTO comp_blob VALUES (?, ?)", (port, big.clone())).await.unwrap();
        let back: Option<Vec<u8>> = c.exec_first("SELECT b FROM comp_blob WHERE id = ?", (port,)).await.unwrap();
        assert!(back.as_ref() == Some(&big), "20 MiB value via {port}");
        seen.push((rows, n));
    }
    assert_eq!(seen[0], seen[1]);
    let out = std::process::Command::new("mariadb")
        .args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{}", proxy.port), "-uapp", "-papp", "--compress"])
        .args(["-N", "-B", "-e", "SELECT COUNT(*), SUM(seq) FROM seq_1_to_1000", "passthru"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1000\t500500", "{}", String::from_utf8_lossy(&out.stderr));
}

/// A MariaDB client asking for extended column metadata gets it, as direct: a JSON column's
/// definition says `json` (drivers parse JSON by it), in text and prepared results.
#[tokio::test]
async fn mariadb_extended_metadata_as_direct() {
    let mut setup = direct_conn(PRIMARY1, "passthru").await;
    exec(&mut setup, "CREATE TABLE IF NOT EXISTS ext_meta (id INT PRIMARY KEY, j JSON)").await;
    exec(&mut setup, "REPLACE INTO ext_meta VALUES (1, '{\"a\": 1}')").await;
    let mut seen = Vec::new();
    for (port, user, pass) in [(demo().port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let (mut r, login) =
            raw::login_ext(port, user, pass, Some("passthru"), "mysql_native_password", true, Some(1 << 3), 0).await;
        assert_eq!(login.last().unwrap()[0], 0x00, "login via {port}");
        r.queue_query("SELECT id, j FROM ext_meta");
        r.flush().await;
        let text = r.read_reply().await;
        seen.push(text[1..3].to_vec());
    }
    assert_eq!(seen[0], seen[1], "column definitions through shardcat vs direct");
    assert!(seen[0][1].windows(4).any(|w| w == b"json"), "the JSON column says so: {:?}", seen[0][1]);
}

/// A client that negotiates CLIENT_SESSION_TRACK is told what MariaDB's trackers would tell it: the
/// OKs of SET NAMES, SET character_set_client and USE carry the same entries as direct.
#[tokio::test]
async fn session_tracking_reaches_a_client_that_asks() {
    let track = shardcat::proto::CapabilityFlags::CLIENT_SESSION_TRACK.bits();
    let mut seen = Vec::new();
    for (port, user, pass) in [(demo().port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let (mut r, _) =
            raw::login_ext(port, user, pass, Some("passthru"), "mysql_native_password", true, None, track).await;
        let mut oks = Vec::new();
        for sql in ["SET NAMES latin1", "SET character_set_client = koi8r", "SET @plain = 1", "USE passthru"] {
            r.queue_query(sql);
            r.flush().await;
            oks.push(tracked_ok(&r.read_reply().await[0]));
        }
        seen.push(oks);
    }
    assert_eq!(seen[0], seen[1], "OK packets through shardcat vs direct");
    assert!(seen[1][0].1.iter().any(|e| e.windows(20).any(|w| w == b"character_set_client")), "MariaDB reports it");
}

/// An OK packet as (its bytes up to the tracking block, the block's entries in sorted order): the
/// order of the entries follows the server's own hashing and means nothing.
fn tracked_ok(p: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    use shardcat::proto::packets::{read_lenenc_int, read_lenenc_str};
    let mut pos = 1;
    read_lenenc_int(p, &mut pos).unwrap();
    read_lenenc_int(p, &mut pos).unwrap();
    pos += 4;
    if pos >= p.len() {
        return (p.to_vec(), Vec::new());
    }
    read_lenenc_str(p, &mut pos).unwrap();
    let head = p[..pos].to_vec();
    let block = read_lenenc_str(p, &mut pos).unwrap().unwrap_or(&[]);
    let mut entries = Vec::new();
    let mut i = 0;
    while i < block.len() {
        let start = i;
        i += 1;
        read_lenenc_str(block, &mut i).unwrap();
        entries.push(block[start..i].to_vec());
    }
    entries.sort();
    (head, entries)
}

/// A client that prepares, runs and closes the same statement again and again (no client-side cache)
/// leaves one statement per backend connection, not one per PREPARE (the server's
/// max_prepared_stmt_count is shared by every client).
#[tokio::test]
async fn preparing_one_text_again_and_again_leaves_one_backend_statement() {
    let mut c = proxy_conn("passthru").await; // stmt_cache_size(0): every exec prepares and closes
    let mut d = direct_conn(PRIMARY1, "passthru").await;
    let count = |row: Option<(String, u64)>| row.map(|r| r.1).unwrap_or(0);
    let before = count(d.query_first("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").await.unwrap());
    for i in 0..300 {
        let v: Option<i64> = c.exec_first("SELECT ? + 1 AS leak_check", (i,)).await.unwrap();
        assert_eq!(v, Some(i + 1));
    }
    let after = count(d.query_first("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").await.unwrap());
    assert!(after < before + 100, "300 prepares of one text left {} statements on the server", after - before);
}
