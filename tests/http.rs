//! The HTTP port: /metrics read by prometheus_client's own parser, its counters moving as statements
//! run; /health (200, 503 when offline or no dataNode is reachable); /registry; JSON log lines.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

struct Scrape {
    families: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    content_type: String,
}

impl Scrape {
    /// The sum of the samples named `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| v)
            .sum()
    }
}

/// /metrics through prometheus_client's parser (tests/clients/metrics_check.py).
fn scrape(port: u16) -> Scrape {
    let out = Command::new("python3")
        .arg(root().join("tests/clients/metrics_check.py"))
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .expect("run python3");
    assert!(out.status.success(), "prometheus_client refused /metrics: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from metrics_check.py");
    let families = v["families"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap_or_default().to_string()))
        .collect();
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels =
                s[1].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
            (s[0].as_str().unwrap().to_string(), labels, s[2].as_f64().unwrap())
        })
        .collect();
    Scrape { families, samples, content_type: v["content_type"].as_str().unwrap_or_default().to_string() }
}

fn manager(p: &Proxy, cmd: &str) -> String {
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{}", p.manager_port), "-uadmin", "-padmin", "-N", "-B", "-e", cmd])
        .output()
        .expect("run mariadb");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn metrics_parse_and_move_as_statements_run() {
    let p = demo();
    let mut c = proxy_conn("demo").await;
    c.query_drop("CREATE TABLE IF NOT EXISTS customer (id INT PRIMARY KEY, name VARCHAR(40))").await.unwrap();
    let before = scrape(p.http_port);
    assert!(before.content_type.starts_with("text/plain"), "{}", before.content_type);
    for f in [
        "shardcat_statements",
        "shardcat_statement_duration_seconds",
        "shardcat_sessions",
        "shardcat_client_received_bytes",
        "shardcat_datanode_statements",
        "shardcat_host_statements",
        "shardcat_pool_wait_duration_seconds",
        "shardcat_pool_active_connections",
        "shardcat_pool_idle_connections",
        "shardcat_pool_waiting_sessions",
        "shardcat_host_up",
    ] {
        assert!(before.families.contains_key(f), "no family {f} in {:?}", before.families.keys());
    }
    assert_eq!(before.families["shardcat_statement_duration_seconds"], "histogram");
    assert_eq!(before.families["shardcat_statements"], "counter");

    for _ in 0..5 {
        let _: Option<i64> = c.query_first("SELECT COUNT(*) FROM customer").await.unwrap();
    }
    let e = c.query_drop("SELECT * FROM metrics_no_such_table").await.unwrap_err();
    assert_eq!(server_error(&e).map(|x| x.0), Some(1146));
    let stmt = c.prep("SELECT name FROM customer WHERE id = ?").await.unwrap();
    let _: Vec<String> = c.exec(&stmt, (1,)).await.unwrap();
    let second = proxy_conn("demo").await;

    let after = scrape(p.http_port);
    let d = |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);
    let sel_ok = [("kind", "select"), ("result", "ok")];
    // 5 queries + 1 execute (other tests of this binary may add more, never less)
    assert!(
        d("shardcat_statements_total", &sel_ok) >= 6.0,
        "select ok moved by {}",
        d("shardcat_statements_total", &sel_ok)
    );
    assert!(d("shardcat_statements_total", &[("kind", "select"), ("result", "error")]) >= 1.0);
    assert_eq!(after.families["shardcat_errors"], "counter");
    assert!(d("shardcat_errors_total", &[("code", "1146")]) >= 1.0);
    assert!(d("shardcat_statement_duration_seconds_count", &[("kind", "select")]) >= 7.0);
    assert!(d("shardcat_statement_duration_seconds_sum", &[("kind", "select")]) > 0.0);
    assert!(d("shardcat_commands_total", &[("command", "stmt_execute")]) >= 1.0);
    // the COUNT(*)s ran on both shards, the point select on one
    assert!(d("shardcat_datanode_statements_total", &[("datanode", "dn1")]) >= 5.0);
    assert!(d("shardcat_datanode_statements_total", &[("datanode", "dn2")]) >= 5.0);
    assert!(d("shardcat_host_statements_total", &[]) >= 11.0);
    assert!(d("shardcat_client_received_bytes_total", &[]) > 0.0);
    assert!(d("shardcat_client_sent_bytes_total", &[]) > 0.0);
    assert!(after.value("shardcat_sessions", &[]) >= 2.0);
    assert_eq!(after.value("shardcat_host_up", &[("host", "p1")]), 1.0);
    assert_eq!(after.value("shardcat_current_write_host", &[("host", "p1")]), 1.0);
    assert!(after.value("shardcat_pool_wait_duration_seconds_count", &[("host", "p1")]) >= 1.0);
    drop(second);
}

#[tokio::test]
async fn health_follows_offline_and_registry_lists_every_host() {
    let p = demo();
    let (code, body) = http_get(p.http_port, "/health").await;
    assert_eq!((code, body.trim()), (200, "ok"));
    manager(p, "offline");
    let (code, body) = http_get(p.http_port, "/health").await;
    manager(p, "online");
    assert_eq!((code, body.trim()), (503, "offline"));
    assert_eq!(http_get(p.http_port, "/health").await.0, 200);

    let (code, body) = http_get(p.http_port, "/registry").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let hosts = v["dataHosts"].as_array().unwrap();
    let names: Vec<&str> = hosts.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["host1", "host2"]);
    let h1 = &hosts[0];
    assert_eq!(h1["currentWriteHost"], "p1");
    let members: Vec<(&str, &str, bool)> = h1["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["role"].as_str().unwrap(), m["current"].as_bool().unwrap()))
        .collect();
    assert_eq!(members, [("p1", "writeHost", true), ("r1", "readHost", false)]);
    assert_eq!(h1["hosts"][0]["url"], "127.0.0.1:3307");
    assert_eq!(h1["hosts"][0]["health"], "up");

    assert_eq!(http_get(p.http_port, "/nothing").await.0, 404);
}

/// A conf dir like config/ whose backends listen nowhere.
fn unreachable_conf(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["schema.xml", "server.xml"] {
        let mut text = std::fs::read_to_string(root().join("config").join(f)).unwrap();
        for port in ["3307", "3308", "3309", "3310"] {
            text = text.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:1");
        }
        std::fs::write(dir.join(f), text).unwrap();
    }
}

#[tokio::test]
async fn health_is_503_when_no_datanode_is_reachable_and_logs_are_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    unreachable_conf(dir.path());
    let p = Proxy::start_with(dir.path(), Some(&root().join("rules")), &["--log-format", "json"]);
    let t0 = Instant::now();
    let (code, body) = loop {
        let r = http_get(p.http_port, "/health").await;
        if r.0 == 503 || t0.elapsed() > Duration::from_secs(20) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((code, body.trim()), (503, "no dataNode is reachable"));
    let reg: serde_json::Value = serde_json::from_str(&http_get(p.http_port, "/registry").await.1).unwrap();
    assert_eq!(reg["dataHosts"][0]["hosts"][0]["health"], "down");
    let m = scrape(p.http_port);
    assert_eq!(m.value("shardcat_host_up", &[("host", "p1")]), 0.0);

    // a slow statement is one JSON log line (threshold 0: every statement is slow)
    manager(&p, "reload @@sqlslow=0");
    // answered by the proxy itself: the backends are unreachable
    let out = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", p.port),
            "-uapp",
            "-papp",
            "-N",
            "-B",
            "demo",
            "-e",
            "SELECT DATABASE()",
        ])
        .output()
        .expect("run mariadb");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "demo", "{}", String::from_utf8_lossy(&out.stderr));
    let t0 = Instant::now();
    let slow = loop {
        let log = p.log_text();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect();
        let slow: Vec<_> = lines.into_iter().filter(|j| j["message"] == "slow statement").collect();
        if !slow.is_empty() || t0.elapsed() > Duration::from_secs(5) {
            break slow;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(slow[0]["sql"], "SELECT DATABASE()");
    assert_eq!(slow[0]["user"], "app");
    assert_eq!(slow[0]["level"], "WARN");
}
