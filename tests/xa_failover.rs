//! Two-phase commit across a failover, on a private semi-synchronous stack (ports 3361–3364): a
//! transfer between xdn1 (primary 3361, its replica 3362 the standby writeHost) and xdn2 (3363) is
//! decided, then xdn1's primary is killed before its XA COMMIT. The client still gets OK; the replica is
//! promoted with the prepared branch (MariaDB replicates XA PREPARE), and recovery commits it there: the
//! transfer is whole on the new primary and on xdn2, and nothing is left in doubt.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

const DIR: &str = "/tmp/shardcat-xa-failover-stack";
const PORTS: &str = "3361 3362 3363 3364";

fn stack_cmd(args: &[&str]) {
    stack_at(DIR, PORTS, "xf", true, args);
}

fn balance(port: u16, id: i64) -> Result<String, String> {
    root_sql(port, &format!("SELECT balance FROM xf.account WHERE id = {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decided_branch_survives_its_primarys_death_on_the_promoted_replica() {
    // a fresh stack: a previous run left it failed over
    stack_cmd(&["down"]);
    let _ = std::fs::remove_dir_all(DIR);
    stack_cmd(&["up"]);
    let conf = fixture_copy("xa_failover");
    // every commit's decision held 2 s before its XA COMMIT: the primary dies in that window
    let p = Proxy::start_env(conf.path(), None, &[], &[("SHARDCAT_XA_COMMIT_DELAY_MS", "2000")]);
    let mut c = mysql_async::Conn::new(opts(p.port, "app", "app", Some("xf"))).await.unwrap();
    exec(&mut c, "CREATE TABLE account (id INT PRIMARY KEY, balance BIGINT NOT NULL)").await;
    exec(&mut c, "INSERT INTO account (id, balance) VALUES (0, 1000), (1, 1000)").await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // heartbeats have seen every host

    let port = p.port;
    let transfer = tokio::spawn(async move {
        let mut t = mysql_async::Conn::new(opts(port, "app", "app", Some("xf"))).await.unwrap();
        t.query_drop("BEGIN").await.unwrap();
        t.query_drop("UPDATE account SET balance = balance - 100 WHERE id = 0").await.unwrap();
        t.query_drop("UPDATE account SET balance = balance + 100 WHERE id = 1").await.unwrap();
        t.query_drop("COMMIT").await
    });
    // both branches prepared (and the prepare replicated: semi-sync), the decision on disk
    let t0 = Instant::now();
    loop {
        let prepared = root_sql(3361, "XA RECOVER").unwrap_or_default();
        let replicated = root_sql(3362, "XA RECOVER").unwrap_or_default();
        if !prepared.is_empty() && !replicated.is_empty() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "the branch was not prepared on 3361 and 3362");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = std::fs::read_to_string(format!("{DIR}/p1/mariadbd.pid")).unwrap();
    let st = std::process::Command::new("kill").args(["-9", pid.trim()]).status().unwrap();
    assert!(st.success());

    // the decision stands: the client gets OK although xdn1's primary is gone
    transfer.await.unwrap().expect("a COMMIT whose decision was logged");
    // the replica is promoted, and recovery commits the branch it holds
    let t0 = Instant::now();
    loop {
        let owed = manager_rows(&p, "show @@xa");
        let doubt = root_sql(3362, "XA RECOVER").unwrap_or_else(|e| e);
        if owed.is_empty() && doubt.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not recovered: show @@xa {owed:?}, XA RECOVER on 3362 {doubt:?}; log: {}",
            p.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(balance(3362, 0).unwrap(), "900", "the promoted replica lacks the committed branch");
    assert_eq!(balance(3363, 1).unwrap(), "1100");
    let total: Option<i64> = c.query_first("SELECT SUM(balance) FROM account").await.unwrap();
    assert_eq!(total, Some(2000));
    let log = p.log_text();
    assert!(log.contains("XA recovery: committed"), "{log}");
    drop(p);
    stack_cmd(&["down"]);
}
