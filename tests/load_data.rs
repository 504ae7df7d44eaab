//! LOAD DATA LOCAL INFILE through shardcat: the file travels client → proxy → MariaDB packet by
//! packet; the rows are those MariaDB loads direct. Sharded targets are refused by name.

mod common;

use std::io::Write;
use std::process::Command;

use common::*;
use mysql_async::prelude::*;

fn cli(port: u16, user: &str, pass: &str, db: &str, local: bool, sql: &str) -> (bool, String, String) {
    let out = Command::new("mariadb")
        .args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}"), &format!("-p{pass}")])
        .arg(format!("--local-infile={}", u8::from(local)))
        .args(["-N", "-B", "-e", sql, db])
        .output()
        .expect("mariadb client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn load_data_local_of_50_mib_as_direct() {
    let proxy = demo();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    {
        let mut w = std::io::BufWriter::new(file.as_file_mut());
        let mut size = 0usize;
        let mut i = 0u64;
        while size < 50 << 20 {
            let line = format!("{i}\t{}\n", "x".repeat((i % 97) as usize + 20));
            size += line.len();
            w.write_all(line.as_bytes()).unwrap();
            i += 1;
        }
        w.flush().unwrap();
    }
    let path = file.path().display().to_string();
    let mut results = Vec::new();
    for (port, user, pass, table) in [(proxy.port, "app", "app", "ld_proxy"), (PRIMARY1, "proxy", "proxy", "ld_direct")]
    {
        let mut c = mysql_async::Conn::new(opts(port, user, pass, Some("passthru"))).await.unwrap();
        exec(&mut c, &format!("DROP TABLE IF EXISTS {table}")).await;
        exec(&mut c, &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, v VARCHAR(200))")).await;
        let (ok, out, err) = cli(
            port,
            user,
            pass,
            "passthru",
            true,
            &format!("LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table}; SELECT ROW_COUNT()"),
        );
        assert!(ok, "LOAD DATA LOCAL via {port}: {err}");
        let sums: Option<(i64, i64, i64)> =
            c.query_first(format!("SELECT COUNT(*), SUM(id), SUM(CRC32(v)) FROM {table}")).await.unwrap();
        results.push((out.trim().to_string(), sums));
    }
    assert_eq!(results[0], results[1], "through shardcat vs direct");
    assert!(results[0].1.is_some_and(|(n, _, _)| n > 500_000));
    // the session goes on after the exchange
    let (ok, out, err) = cli(
        proxy.port,
        "app",
        "app",
        "passthru",
        true,
        &format!("LOAD DATA LOCAL INFILE '{path}' IGNORE INTO TABLE ld_proxy; SELECT 42"),
    );
    assert!(ok && out.trim().ends_with("42"), "{out} {err}");
}

#[tokio::test]
async fn load_data_refusals_name_what_is_wrong() {
    let proxy = demo();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "1\ta").unwrap();
    let path = file.path().display().to_string();
    // a client that disabled local infile gets MariaDB's own refusal
    let mut seen = Vec::new();
    for (port, user, pass) in [(proxy.port, "app", "app"), (PRIMARY1, "proxy", "proxy")] {
        let (ok, _, err) =
            cli(port, user, pass, "passthru", false, &format!("LOAD DATA LOCAL INFILE '{path}' INTO TABLE ld_x"));
        assert!(!ok);
        seen.push(err.split(" at line").next().unwrap_or("").to_string());
    }
    assert_eq!(seen[0], seen[1]);
    assert!(seen[0].contains("4166"), "{}", seen[0]);
    // a sharded table: refused, naming it
    let (ok, _, err) =
        cli(proxy.port, "app", "app", "demo", true, &format!("LOAD DATA LOCAL INFILE '{path}' INTO TABLE customer"));
    assert!(!ok && err.contains("1105") && err.contains("customer"), "{err}");
}
