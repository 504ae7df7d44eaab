//! Malformed input never takes the proxy down: every broken command gets an error (or, for commands
//! without a reply, nothing), the session stays usable, and new clients still connect.

mod common;
#[path = "common/raw.rs"]
mod raw;

use common::*;
use mysql_async::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn malformed_commands_get_errors_and_the_session_survives() {
    let port = demo().port;
    let (mut c, _) = raw::login(port, "app", "app", Some("passthru"), "mysql_native_password").await;
    let with_reply: Vec<Vec<u8>> = vec![
        vec![0x17],
        vec![0x17, 1, 0, 0, 0],
        vec![0x17, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 0, 0, 0, 0xFF],
        vec![0x16],
        vec![0x04],
        vec![0x04, b'x', b'y'],
        vec![0x0C, 1],
        vec![0x1B],
        vec![0x1C, 9],
        vec![0x1A],
        vec![0x03, 0xFF, 0xFE, 0x00, b'x'],
        vec![0x03, b'S', b'E', b'L', b'E', b'C', b'T', b' ', b'\'', b'x'],
        vec![0x02, b'n', b'o', 0xC3],
        vec![0x03, b'/', b'*', b'!', b'm', b'y', b'c', b'a', b't', b':'],
        vec![0x03, b'S', b'E', b'T', b' ', b'@', b'@'],
        vec![0x03, b'K', b'I', b'L', b'L'],
        vec![
            0x03, b'S', b'H', b'O', b'W', b' ', b'C', b'R', b'E', b'A', b'T', b'E', b' ', b'T', b'A', b'B', b'L', b'E',
        ],
        vec![0xFF],
    ];
    for cmd in &with_reply {
        c.queue_command(cmd);
        c.flush().await;
        let reply = c.read_reply().await;
        assert_eq!(reply.last().unwrap()[0], 0xFF, "command {cmd:?} should fail, got {reply:?}");
    }
    for cmd in [vec![0x19], vec![0x19, 7, 0, 0, 0], vec![0x18], vec![0x18, 1, 0, 0, 0, 0]] {
        c.queue_command(&cmd); // no reply by protocol
    }
    c.queue_command(&[0x0E]);
    c.flush().await;
    assert_eq!(c.read_reply().await[0][0], 0x00, "ping after the garbage");
}

#[tokio::test]
async fn garbage_instead_of_a_login_is_refused_and_others_still_connect() {
    let port = demo().port;
    for junk in [vec![1u8, 0, 0, 1, 0xFF], vec![5, 0, 0, 1, 0, 0, 0, 0, 0], vec![0xFF; 64]] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut greeting = [0u8; 256];
        let _ = s.read(&mut greeting).await.unwrap();
        s.write_all(&junk).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    }
    let mut c = proxy_conn("passthru").await;
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
}

/// Pooled connections the server closed while they were idle (a restart, a KILL, wait_timeout) are
/// never handed to a statement: every statement after the close succeeds.
#[tokio::test]
async fn idle_connections_the_server_closed_are_not_handed_out() {
    let port = demo().port;
    // several connections of the pool in use at once, then idle
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(mysql_async::Conn::new(opts(port, "app", "app", Some("passthru"))).await.unwrap());
    }
    let runs: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { c.query_drop("SELECT SLEEP(0.2)").await.map(|_| c) }))
        .collect();
    let mut clients = Vec::new();
    for r in runs {
        clients.push(r.await.unwrap().unwrap());
    }
    // the server closes every idle connection of the proxy to that database
    let ids = root_sql(
        PRIMARY1,
        "SELECT GROUP_CONCAT(ID) FROM information_schema.PROCESSLIST WHERE USER = 'proxy' AND DB = 'passthru' AND COMMAND = 'Sleep'",
    )
    .unwrap();
    let ids: Vec<&str> = ids.split(',').filter(|s| !s.trim().is_empty() && *s != "NULL").collect();
    assert!(ids.len() >= 2, "idle pooled connections on the server: {ids:?}");
    for id in &ids {
        let _ = root_sql(PRIMARY1, &format!("KILL CONNECTION {}", id.trim()));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let runs: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { c.query_first::<i64, _>("SELECT 7").await }))
        .collect();
    for r in runs {
        assert_eq!(r.await.unwrap().unwrap(), Some(7), "a statement after the server closed idle connections");
    }
}
