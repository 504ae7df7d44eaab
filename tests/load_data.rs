//! LOAD DATA LOCAL INFILE through shardcat: the file travels client → proxy → MariaDB packet by
//! packet; the rows are those MariaDB loads direct. Into a sharded table every line goes to the shard
//! its sharding field names, the counts are MariaDB's, and the proxy's memory stays flat.

mod common;

use std::io::Write;
use std::process::Command;

use common::*;
use mysql_async::prelude::*;

fn cli(port: u16, user: &str, pass: &str, db: &str, local: bool, sql: &str) -> (bool, String, String) {
    cli_with(port, user, pass, db, &[&format!("--local-infile={}", u8::from(local)), "-N", "-B"], sql)
}

/// The mariadb client with `flags`, running `sql` in `db`: (success, stdout, stderr).
fn cli_with(port: u16, user: &str, pass: &str, db: &str, flags: &[&str], sql: &str) -> (bool, String, String) {
    let out = Command::new("mariadb")
        .args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}"), &format!("-p{pass}")])
        .args(flags)
        .args(["-e", sql, db])
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
    // a server-side file into a sharded table: refused, naming it
    let (ok, _, err) =
        cli(proxy.port, "app", "app", "demo", true, &format!("LOAD DATA INFILE '{path}' INTO TABLE customer"));
    assert!(!ok && err.contains("1105") && err.contains("customer") && err.contains("LOCAL"), "{err}");
}

/// The Records/Deleted/Skipped/Warnings line `mariadb -vvv` prints for a LOAD DATA.
fn records(out: &str) -> String {
    out.lines().find(|l| l.starts_with("Records:")).unwrap_or("").to_string()
}

fn cli_verbose(port: u16, user: &str, pass: &str, db: &str, sql: &str) -> (bool, String, String) {
    cli_with(port, user, pass, db, &["--local-infile=1", "-vvv"], sql)
}

/// A million lines into a table sharded over 4 dataNodes: each row on the shard mod4 names, the
/// rows and counts those of one MariaDB loading the same file (loaded twice: the duplicates skipped),
/// the proxy's memory flat.
#[tokio::test]
async fn load_data_local_into_a_sharded_table_routes_every_line() {
    stack();
    for port in [PRIMARY1, PRIMARY2] {
        root_sql(port, "CREATE DATABASE IF NOT EXISTS sc_a; CREATE DATABASE IF NOT EXISTS sc_b; CREATE DATABASE IF NOT EXISTS ld_oracle").unwrap();
    }
    let p = Proxy::start(&root().join("tests/fixtures/sharding"), None);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    {
        let mut w = std::io::BufWriter::new(file.as_file_mut());
        writeln!(w, "id,name,city").unwrap();
        for i in 0..1_000_000u64 {
            // quoted names with the separator and an escaped quote in some, NULL cities in others
            let name = if i % 1000 == 7 { format!("\"a, \"\"{i}\"\"\"") } else { format!("n{i}") };
            let city = if i % 9 == 0 { "\\N".to_string() } else { format!("c{}", i % 13) };
            writeln!(w, "{},{name},{city}", i * 3 + 1).unwrap();
        }
        w.flush().unwrap();
    }
    let path = file.path().display().to_string();
    let load = |table: &str| {
        format!("LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' IGNORE 1 LINES (id, name, city)")
    };
    let create = "(id BIGINT PRIMARY KEY, name VARCHAR(40), city VARCHAR(20) NULL)";
    let mut px = mysql_async::Conn::new(opts(p.port, "app", "app", Some("shard"))).await.unwrap();
    exec(&mut px, "DROP TABLE IF EXISTS customer").await;
    exec(&mut px, &format!("CREATE TABLE customer {create}")).await;
    let mut direct = direct_conn(PRIMARY1, "ld_oracle").await;
    exec(&mut direct, "DROP TABLE IF EXISTS ld_one").await;
    exec(&mut direct, &format!("CREATE TABLE ld_one {create}")).await;
    let rss_before = p.peak_rss_kib();
    let (ok, via_proxy, err) = cli_verbose(p.port, "app", "app", "shard", &load("customer"));
    assert!(ok, "{err}");
    let rss_after = p.peak_rss_kib();
    let (ok, one, err) = cli_verbose(PRIMARY1, "proxy", "proxy", "ld_oracle", &load("ld_one"));
    assert!(ok, "{err}");
    assert_eq!(records(&via_proxy), records(&one), "MariaDB's counts");
    assert!(records(&one).starts_with("Records: 1000000"), "{one}");
    let q = "SELECT COUNT(*), SUM(id), SUM(CRC32(name)), COUNT(city), SUM(CRC32(city))";
    let got: Option<(i64, i64, i64, i64, i64)> = px.query_first(format!("{q} FROM customer")).await.unwrap();
    let want: Option<(i64, i64, i64, i64, i64)> = direct.query_first(format!("{q} FROM ld_one")).await.unwrap();
    assert_eq!(got, want, "the rows one server loads");
    // every shard holds its own rows only
    for (n, (port, db)) in
        [(PRIMARY1, "sc_a"), (PRIMARY1, "sc_b"), (PRIMARY2, "sc_a"), (PRIMARY2, "sc_b")].into_iter().enumerate()
    {
        let mut d = direct_conn(port, db).await;
        let (all, stray): (i64, i64) = d
            .query_first(format!("SELECT COUNT(*), SUM(id % 4 <> {n}) FROM customer"))
            .await
            .unwrap()
            .unwrap_or((0, 1));
        assert!(all > 200_000 && stray == 0, "shard {n}: {all} rows, {stray} elsewhere's");
    }
    eprintln!(
        "proxy peak RSS before {rss_before} KiB, after {rss_after} KiB; file {} bytes",
        std::fs::metadata(file.path()).unwrap().len()
    );
    assert!(rss_after < rss_before + 16 * 1024, "the proxy held the file: {rss_before} → {rss_after} KiB");
    // loading it again: with LOCAL, MariaDB skips the duplicates with a warning each (its default
    // IGNORE): the same counts through the proxy, summed over the shards
    let (ok, again_proxy, err) = cli_verbose(p.port, "app", "app", "shard", &load("customer"));
    assert!(ok, "{err}");
    let (ok, again_one, err) = cli_verbose(PRIMARY1, "proxy", "proxy", "ld_oracle", &load("ld_one"));
    assert!(ok, "{err}");
    assert_eq!(records(&again_proxy), records(&again_one));
    assert!(records(&again_one).contains("Skipped: 1000000"), "{again_one}");
    let n: Option<i64> = px.query_first("SELECT COUNT(*) FROM customer").await.unwrap();
    assert_eq!(n, Some(1_000_000));
    exec(&mut direct, "DROP TABLE ld_one").await;
}
