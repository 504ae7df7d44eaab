//! Real clients against the demo proxy, each compared with the same client direct to MariaDB: the
//! `mariadb` CLI (-e and a script on stdin), PyMySQL, and JDBC (MariaDB Connector/J).

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn cli(port: u16, user: &str, pass: &str, db: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new("mariadb");
    cmd.args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), &format!("-u{user}"), &format!("-p{pass}"), db]);
    cmd.args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the mariadb client is installed");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn mariadb_cli_dash_e_matches_direct() {
    let port = demo().port;
    stack();
    let setup = "DROP TABLE IF EXISTS cli_t; CREATE TABLE cli_t (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(8,2), d DATE); \
                 INSERT INTO cli_t VALUES (1,'apple',1.50,'2024-01-01'),(2,'pear',NULL,NULL),(3,'naïve ☃',10,'1999-12-31')";
    let (ok, _, err) = cli(port, "app", "app", "passthru", &["-e", setup], None);
    assert!(ok, "{err}");
    let q =
        "SELECT * FROM cli_t ORDER BY id; SELECT COUNT(*), SUM(price) FROM cli_t; SELECT name FROM cli_t WHERE id=3";
    let via_proxy = cli(port, "app", "app", "passthru", &["-e", q], None);
    let direct = cli(PRIMARY1, "proxy", "proxy", "passthru", &["-e", q], None);
    assert!(via_proxy.0, "{}", via_proxy.2);
    assert_eq!(via_proxy.1, direct.1);
    assert!(via_proxy.1.contains("naïve ☃"));
    // errors look like MariaDB's
    let (ok, _, err) = cli(port, "app", "app", "passthru", &["-e", "SELECT * FROM no_such_cli_table"], None);
    assert!(!ok);
    assert!(err.contains("ERROR 1146 (42S02)"), "{err}");
    let (_, out, _) =
        cli(port, "app", "app", "demo", &["-e", "SELECT @@version_comment LIMIT 1; SELECT DATABASE()"], None);
    assert!(out.contains("shardcat") && out.contains("demo"), "{out}");
}

#[test]
fn mariadb_cli_script_on_stdin() {
    let port = demo().port;
    let script = "DROP TABLE IF EXISTS cli_s;\nCREATE TABLE cli_s (id INT PRIMARY KEY);\nBEGIN;\nINSERT INTO cli_s VALUES (1);\nROLLBACK;\n\
                  START TRANSACTION;\nINSERT INTO cli_s VALUES (2);\nCOMMIT;\nSELECT id FROM cli_s;\nUSE demo;\nSELECT DATABASE();\n";
    let (ok, out, err) = cli(port, "app", "app", "passthru", &["-N", "-B"], Some(script));
    assert!(ok, "{err}");
    assert_eq!(out, "2\ndemo\n");
}

#[test]
fn pymysql_sees_what_mariadb_sends() {
    let port = demo().port;
    let out = Command::new("python3")
        .arg(root().join("tests/clients/pymysql_check.py"))
        .args([port.to_string(), PRIMARY1.to_string()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn jdbc_connector_j_sees_what_mariadb_sends() {
    let port = demo().port;
    let out = run_java("JdbcCheck", &[&port.to_string(), &PRIMARY1.to_string()]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
