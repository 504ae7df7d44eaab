//! Two-phase commit on a private stack (primaries 3341 and 3343, one shard each): 8 clients move money
//! between accounts on different shards while the proxy is killed (-9) 20 times — mostly while
//! transactions sit between their logged decision and XA COMMIT (the test-only
//! SHARDCAT_XA_COMMIT_DELAY_MS) — and a primary is killed and restarted in phase two. After each
//! restart and recovery: the total is exact, every transfer is on both shards or on neither, every
//! COMMIT a client saw succeed is applied, and no XA transaction is left in doubt.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

const DIR: &str = "/tmp/shardcat-xa-stack";
const PORTS: &str = "3341 3342 3343 3344";
const P1: u16 = 3341;
const P2: u16 = 3343;
const ACCOUNTS: i64 = 20;
const START: i64 = 1000;
const CLIENTS: usize = 8;

fn stack() {
    private_stack(DIR, PORTS, "xa", false);
}

/// Rolls back what an earlier, failed run of this test left prepared (another coordinator's: the
/// proxies of this run leave it alone, and its locks would hold the setup's DROP TABLE).
fn forget_earlier_runs() {
    for port in [P1, P2] {
        let xids = root_sql(port, "XA RECOVER FORMAT='SQL'").unwrap();
        for line in xids.lines() {
            if let Some(xid) = line.split('\t').nth(3) {
                root_sql(port, &format!("XA ROLLBACK {xid}")).unwrap();
            }
        }
    }
}

fn start(conf: &std::path::Path, delay_ms: u64) -> Proxy {
    let d = delay_ms.to_string();
    Proxy::start_env(conf, None, &[], &[("SHARDCAT_XA_COMMIT_DELAY_MS", d.as_str())])
}

async fn conn(p: &Proxy) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(p.port, "app", "app", Some("xa"))).await.unwrap()
}

/// What the clients saw: transfers whose COMMIT succeeded, whose COMMIT failed with an error, and
/// whose outcome they could not learn (the connection went with the proxy).
#[derive(Default)]
struct Seen {
    acked: Vec<i64>,
    failed: Vec<i64>,
    unknown: Vec<i64>,
}

/// One client: transfers from an even account (shard 1) to an odd one (shard 2), each with its two
/// ledger rows (ids 2t and 2t+1), until `stop` or until its connection is gone.
async fn client(port: u16, next: Arc<AtomicI64>, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let Ok(mut c) = mysql_async::Conn::new(opts(port, "app", "app", Some("xa"))).await else { return seen };
    while !stop.load(Ordering::Relaxed) {
        let t = next.fetch_add(1, Ordering::Relaxed);
        let a = 2 * rand::random_range(0..ACCOUNTS / 2);
        let b = 2 * rand::random_range(0..ACCOUNTS / 2) + 1;
        let amt = rand::random_range(1..50i64);
        let body = async {
            c.query_drop("BEGIN").await?;
            c.exec_drop("UPDATE account SET balance = balance - ? WHERE id = ?", (amt, a)).await?;
            c.exec_drop("UPDATE account SET balance = balance + ? WHERE id = ?", (amt, b)).await?;
            c.query_drop(format!(
                "INSERT INTO ledger (id, account, amount) VALUES ({}, {a}, {}), ({}, {b}, {amt})",
                2 * t,
                -amt,
                2 * t + 1
            ))
            .await
        }
        .await;
        if let Err(e) = body {
            if server_error(&e).is_none() {
                return seen; // the proxy is gone: nothing of this transaction was committed
            }
            if c.query_drop("ROLLBACK").await.is_err() {
                return seen;
            }
            continue;
        }
        match c.query_drop("COMMIT").await {
            Ok(()) => seen.acked.push(t),
            Err(e) if server_error(&e).is_some() => seen.failed.push(t),
            Err(_) => {
                seen.unknown.push(t);
                return seen;
            }
        }
    }
    seen
}

/// Every row of `sql` on both primaries, read directly.
async fn both(sql: &str) -> Vec<(i64, i64, i64)> {
    let mut out = Vec::new();
    for port in [P1, P2] {
        let mut c = mysql_async::Conn::new(opts(port, "root", "", Some("xa"))).await.unwrap();
        let rows: Vec<(i64, i64, i64)> = c.query(sql).await.unwrap();
        out.extend(rows);
        c.disconnect().await.unwrap();
    }
    out
}

/// XIDs prepared on either primary.
fn in_doubt() -> Vec<String> {
    [P1, P2]
        .iter()
        .flat_map(|p| {
            root_sql(*p, "XA RECOVER")
                .unwrap_or_else(|e| format!("unreachable: {e}"))
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// Waits for recovery: nothing prepared on the primaries, nothing owed in `show @@xa`.
async fn recovered(p: &Proxy) {
    let t0 = Instant::now();
    loop {
        let owed = manager_rows(p, "show @@xa");
        let doubt = in_doubt();
        if owed.is_empty() && doubt.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "recovery did not finish: show @@xa {owed:?}, XA RECOVER {doubt:?}; log: {}",
            p.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The invariants, read on the shards themselves: the total, both-or-neither per transfer, each
/// balance equal to its ledger, acknowledged transfers applied, refused ones not.
async fn check(seen: &Seen, round: &str) -> usize {
    let accounts = both("SELECT id, balance, 0 FROM account").await;
    let total: i64 = accounts.iter().map(|r| r.1).sum();
    assert_eq!(total, ACCOUNTS * START, "{round}: the total moved");
    let ledger = both("SELECT id, account, amount FROM ledger").await;
    let ids: HashSet<i64> = ledger.iter().map(|r| r.0).collect();
    for id in &ids {
        assert!(ids.contains(&(id ^ 1)), "{round}: transfer {} is on one shard only (row {id})", id / 2);
    }
    for (id, balance, _) in &accounts {
        let moved: i64 = ledger.iter().filter(|r| r.1 == *id).map(|r| r.2).sum();
        assert_eq!(*balance, START + moved, "{round}: account {id} differs from its ledger");
    }
    for t in &seen.acked {
        assert!(ids.contains(&(2 * t)), "{round}: transfer {t} was acknowledged but is not applied");
    }
    for t in &seen.failed {
        assert!(!ids.contains(&(2 * t)), "{round}: transfer {t} failed but is applied");
    }
    ids.len() / 2
}

async fn workload(
    p: &Proxy,
    next: &Arc<AtomicI64>,
    run_for: Duration,
    during: impl std::future::Future<Output = ()>,
) -> Seen {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(client(p.port, next.clone(), stop.clone()))).collect();
    tokio::time::sleep(run_for).await;
    during.await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Seen::default();
    for h in handles {
        let s = h.await.unwrap();
        seen.acked.extend(s.acked);
        seen.failed.extend(s.failed);
        seen.unknown.extend(s.unknown);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_stay_whole_through_proxy_and_primary_kills() {
    stack();
    forget_earlier_runs();
    let conf = fixture_copy("xa");
    let next = Arc::new(AtomicI64::new(1));
    {
        let p = start(conf.path(), 0);
        let mut c = conn(&p).await;
        exec(&mut c, "DROP TABLE IF EXISTS account").await;
        exec(&mut c, "DROP TABLE IF EXISTS ledger").await;
        exec(&mut c, "CREATE TABLE account (id INT PRIMARY KEY, balance BIGINT NOT NULL)").await;
        exec(&mut c, "CREATE TABLE ledger (id BIGINT PRIMARY KEY, account INT NOT NULL, amount BIGINT NOT NULL)").await;
        let values: Vec<String> = (0..ACCOUNTS).map(|i| format!("({i}, {START})")).collect();
        exec(&mut c, &format!("INSERT INTO account (id, balance) VALUES {}", values.join(", "))).await;
        c.disconnect().await.unwrap();
    }
    // a branch that cannot prepare (its connection killed on the server) rolls back every branch, and
    // the client gets that node's error
    {
        let p = start(conf.path(), 0);
        let mut c = conn(&p).await;
        c.query_drop("BEGIN").await.unwrap();
        c.exec_drop("UPDATE account SET balance = balance - 5 WHERE id = ?", (0,)).await.unwrap();
        c.exec_drop("UPDATE account SET balance = balance + 5 WHERE id = ?", (1,)).await.unwrap();
        let victim = root_sql(P2, "SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX").unwrap();
        assert!(!victim.is_empty() && !victim.contains('\n'), "one transaction on {P2}: {victim:?}");
        root_sql(P2, &format!("KILL CONNECTION {victim}")).unwrap();
        let e = c.query_drop("COMMIT").await.expect_err("a COMMIT whose branch could not prepare");
        let msg = e.to_string();
        assert!(msg.contains("XA PREPARE on dataNode xdn2; rolled back on every dataNode"), "{msg}");
        assert_eq!(in_doubt(), Vec::<String>::new());
        check(&Seen::default(), "after a failed prepare").await;
        let b0: i64 = root_sql(P1, "SELECT balance FROM xa.account WHERE id = 0").unwrap().parse().unwrap();
        assert_eq!(b0, START, "the prepared branch on xdn1 was not rolled back");
    }
    // autocommit=0 (JDBC's setAutoCommit(false)): a statement that reads no table joins nothing, the
    // first that reads a node's table opens its branch, and COMMIT is two-phase
    {
        let p = start(conf.path(), 0);
        let mut c = conn(&p).await;
        let commits = |text: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with("shardcat_xa_transactions_total{outcome=\"commit\"}"))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0.0)
        };
        let before = commits(&http_get(p.http_port, "/metrics").await.1);
        c.query_drop("SET autocommit = 0").await.unwrap();
        c.query_drop("SELECT 1").await.unwrap();
        let b1: Option<i64> = c.exec_first("SELECT balance FROM account WHERE id = ?", (1,)).await.unwrap();
        c.exec_drop("UPDATE account SET balance = balance - 7 WHERE id = ?", (0,)).await.unwrap();
        c.exec_drop("UPDATE account SET balance = balance + 7 WHERE id = ?", (1,)).await.unwrap();
        c.query_drop("COMMIT").await.unwrap();
        let after = commits(&http_get(p.http_port, "/metrics").await.1);
        assert_eq!(after - before, 1.0, "an autocommit=0 transaction over two nodes did not commit by XA");
        let b1_now: Option<i64> = c.exec_first("SELECT balance FROM account WHERE id = ?", (1,)).await.unwrap();
        assert_eq!(b1_now, b1.map(|b| b + 7));
        // undo it (the ledger has no row for it)
        c.exec_drop("UPDATE account SET balance = balance + 7 WHERE id = ?", (0,)).await.unwrap();
        c.exec_drop("UPDATE account SET balance = balance - 7 WHERE id = ?", (1,)).await.unwrap();
        c.query_drop("COMMIT").await.unwrap();
        check(&Seen::default(), "after the autocommit=0 transactions").await;
    }
    let mut all = Seen::default();
    let mut transfers = 0;
    // the proxy killed 20 times at random moments; most rounds hold each commit 30 ms between its
    // logged decision and XA COMMIT, so that many kills land there
    let mut recoveries = 0;
    for round in 0..20 {
        let delay = if round % 4 == 3 { 0 } else { 30 };
        let p = start(conf.path(), delay);
        recovered(&p).await;
        // what the previous kill left prepared with its decision logged, this start committed
        recoveries += usize::from(p.log_text().contains("XA recovery: committed"));
        transfers = check(&all, &format!("before round {round}")).await;
        let run_for = Duration::from_millis(rand::random_range(300..1200));
        let seen = workload(&p, &next, run_for, async { p.signal("KILL") }).await;
        let t0 = Instant::now();
        while !p.exited() {
            assert!(t0.elapsed() < Duration::from_secs(5), "the proxy did not die");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        all.acked.extend(seen.acked);
        all.failed.extend(seen.failed);
        all.unknown.extend(seen.unknown);
    }
    let p = start(conf.path(), 0);
    recovered(&p).await;
    recoveries += usize::from(p.log_text().contains("XA recovery: committed"));
    let after_kills = check(&all, "after 20 proxy kills").await;
    assert!(recoveries >= 5, "only {recoveries} of 20 kills left a decided transaction to recovery");
    eprintln!(
        "20 proxy kills: {after_kills} transfers applied, {} acknowledged, {} with the outcome unknown to their client, {} refused; {recoveries} restarts committed decided transactions",
        all.acked.len(),
        all.unknown.len(),
        all.failed.len()
    );
    assert!(after_kills > transfers || after_kills > 100, "the workload moved too little: {after_kills} transfers");
    assert!(
        !all.acked.is_empty() && !all.unknown.is_empty(),
        "acked {}, unknown {}",
        all.acked.len(),
        all.unknown.len()
    );
    // a recovery committed what the kills left decided, and rolled back what they left undecided
    drop(p);

    // a primary killed in phase two: its branches' XA COMMIT fails, the decision stands (the clients
    // get OK), and recovery commits them once it is back; a read meanwhile waits or reports it
    let p = start(conf.path(), 300);
    let pid = std::fs::read_to_string(format!("{DIR}/p2/mariadbd.pid")).unwrap();
    let seen = workload(&p, &next, Duration::from_millis(600), async {
        let st = std::process::Command::new("kill").args(["-9", pid.trim()]).status().unwrap();
        assert!(st.success());
        tokio::time::sleep(Duration::from_millis(400)).await;
    })
    .await;
    let owed = manager_rows(&p, "show @@xa");
    stack();
    // reads through the proxy never see half a transfer: exact, or the owed commit reported
    let mut c = conn(&p).await;
    let t0 = Instant::now();
    loop {
        match c.query_first::<i64, _>("SELECT SUM(balance) FROM account").await {
            Ok(Some(total)) => {
                assert_eq!(total, ACCOUNTS * START, "a read through the proxy saw half a transaction");
                break;
            }
            Ok(None) => panic!("no total"),
            Err(e) => {
                let code = server_error(&e).map(|(c, _, _)| c);
                assert!(matches!(code, Some(1399 | 1429 | 1430)), "{e}");
                assert!(t0.elapsed() < Duration::from_secs(30), "the owed commit was never finished: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    recovered(&p).await;
    all.acked.extend(seen.acked.iter().copied());
    all.failed.extend(seen.failed);
    check(&all, "after the primary's kill").await;
    assert!(
        !owed.is_empty()
            && seen.acked.iter().any(|t| owed.iter().any(|r| r.len() > 1 && r[1] == "COMMIT OWED") && *t > 0),
        "no commit was left owed by the primary's kill (show @@xa: {owed:?}; acked {})",
        seen.acked.len()
    );
    let log = p.log_text();
    assert!(log.contains("XA recovery: committed"), "{log}");
    eprintln!(
        "primary killed in phase two: {} acknowledged ({} commits left owed: {owed:?})",
        seen.acked.len(),
        owed.len()
    );
}
