//! Heartbeats: every `dataNodeHeartbeatPeriod` each writeHost and readHost runs its dataHost's heartbeat
//! SQL and reports `@@read_only`, its GTID position and replication state; `maxRetryCount` failures in a
//! row mark it down. A down current writeHost triggers the switch (`switchType`), with promotion of a
//! read-only replica when `promoteReplica` is on, and fencing of the old writeHost when it returns.

use std::sync::Arc;
use std::time::Duration;

use super::conn::{BackendConn, Variant};
use super::{DataHostSet, Member};
use crate::error::Result;

const VARIANT: Variant = Variant { found_rows: false, deprecate_eof: true, extended_metadata: false };

fn cell(row: &[Option<Vec<u8>>], names: &[String], name: &str) -> String {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .and_then(|i| row.get(i).cloned().flatten())
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

/// A fact query's result: `None` when the server refused it (a MySQL without MariaDB's variables, a
/// user without the privilege); a broken connection is still an error.
fn soft<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(crate::error::Error::Sql { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first column among `names` that the row has (MariaDB/MySQL spellings of one field).
fn cell_any(row: &[Option<Vec<u8>>], cols: &[String], names: &[&str]) -> String {
    names.iter().map(|n| cell(row, cols, n)).find(|v| !v.is_empty()).unwrap_or_default()
}

/// One probe: the heartbeat SQL (its failure is the host's), then the facts routing needs, as far as
/// the server answers them: MariaDB's GTID variables, or MySQL's `gtid_executed`; SHOW SLAVE STATUS,
/// or SHOW REPLICA STATUS where the former is gone.
async fn probe(conn: &mut BackendConn, sql: &str, m: &Member) -> Result<()> {
    if !sql.trim().is_empty() {
        conn.exec_simple(sql).await?;
    }
    let first = |rows: Vec<Vec<Option<Vec<u8>>>>| -> Vec<String> {
        let row = rows.into_iter().next().unwrap_or_default();
        row.into_iter().map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default()).collect()
    };
    let read_only = soft(conn.query_named("SELECT @@read_only").await)?.map(|(_, rows)| first(rows));
    let mut gtids = soft(conn.query_named("SELECT @@gtid_slave_pos, @@gtid_binlog_pos").await)?.map(|(_, r)| first(r));
    if gtids.is_none() {
        gtids = soft(conn.query_named("SELECT @@gtid_executed, @@gtid_executed").await)?.map(|(_, r)| first(r));
    }
    let mut status = soft(conn.query_named("SHOW SLAVE STATUS").await)?;
    if status.is_none() {
        status = soft(conn.query_named("SHOW REPLICA STATUS").await)?;
    }
    let gtid = |i: usize| gtids.as_ref().and_then(|g| g.get(i).cloned()).unwrap_or_default();
    let mut f = m.health.facts.write();
    f.read_only = read_only.and_then(|v| v.first().map(|v| v == "1"));
    match status.as_ref().and_then(|(names, rows)| rows.first().map(|s| (names, s))) {
        Some((names, s)) => {
            f.replicating = true;
            f.io_running = cell_any(s, names, &["Slave_IO_Running", "Replica_IO_Running"]) == "Yes";
            f.sql_running = cell_any(s, names, &["Slave_SQL_Running", "Replica_SQL_Running"]) == "Yes";
            f.lag = cell_any(s, names, &["Seconds_Behind_Master", "Seconds_Behind_Source"]).parse().ok();
            let (sql_err, io_err) = (cell(s, names, "Last_SQL_Error"), cell(s, names, "Last_IO_Error"));
            f.last_error = if sql_err.is_empty() { io_err.clone() } else { sql_err.clone() };
            f.gtid = gtid(0);
            f.source = Some(crate::registry::Source {
                host: cell(s, names, "Master_Host"),
                port: cell(s, names, "Master_Port"),
                user: cell(s, names, "Master_User"),
                io_state: cell(s, names, "Slave_IO_State"),
                connect_retry: cell(s, names, "Connect_Retry"),
                last_io_error: io_err,
                last_sql_error: sql_err,
                last_sql_errno: cell(s, names, "Last_SQL_Errno"),
            });
        }
        None => {
            f.replicating = false;
            f.io_running = false;
            f.sql_running = false;
            f.lag = None;
            f.last_error.clear();
            f.gtid = gtid(1);
            f.source = None;
        }
    }
    Ok(())
}

/// Runs the heartbeat of every host of every dataHost until the process ends or a reload retires it.
pub fn start(hosts: &[Arc<DataHostSet>], period: Duration) {
    for set in hosts {
        let members: Vec<(bool, usize)> = (0..set.writers.len())
            .map(|i| (true, i))
            .chain(set.readers.iter().enumerate().flat_map(|(w, rs)| (0..rs.len()).map(move |r| (false, w * 1000 + r))))
            .collect();
        for (is_writer, idx) in members {
            let set = set.clone();
            tokio::spawn(async move { run(set, is_writer, idx, period).await });
        }
    }
}

fn member(set: &DataHostSet, is_writer: bool, idx: usize) -> Option<&Member> {
    if is_writer {
        set.writers.get(idx)
    } else {
        set.readers.get(idx / 1000)?.get(idx % 1000)
    }
}

/// How long one probe may take, for a heartbeat period.
pub fn probe_timeout(period: Duration) -> Duration {
    period.clamp(Duration::from_millis(500), Duration::from_secs(5))
}

async fn run(set: Arc<DataHostSet>, is_writer: bool, idx: usize, period: Duration) {
    let mut conn: Option<BackendConn> = None;
    let timeout = probe_timeout(period);
    loop {
        if set.retired() {
            return;
        }
        let Some(m) = member(&set, is_writer, idx) else { return };
        if let Some(left) = set.heartbeat_paused() {
            tokio::time::sleep(left.min(period)).await;
            continue;
        }
        let t0 = std::time::Instant::now();
        let result = tokio::time::timeout(timeout, async {
            if conn.is_none() {
                conn = Some(BackendConn::connect(m.pool.endpoint.clone(), VARIANT, timeout).await?);
            }
            match conn.as_mut() {
                Some(c) => probe(c, &set.cfg.heartbeat, m).await,
                None => Ok(()),
            }
        })
        .await;
        let ok = matches!(result, Ok(Ok(())));
        if !ok {
            conn = None;
        }
        let (was_alive, now_alive, fenced) = {
            let mut f = m.health.facts.write();
            let was = f.alive;
            if ok {
                f.failures = 0;
                f.alive = true;
            } else {
                f.failures += 1;
                if f.failures >= set.cfg.max_retry_count {
                    f.alive = false;
                }
            }
            f.checked = Some(std::time::Instant::now());
            f.checked_at = Some(std::time::SystemTime::now());
            f.probe_ms = t0.elapsed().as_millis() as u64;
            (was, f.alive, f.fenced)
        };
        if was_alive && !now_alive {
            m.pool.clear_idle();
            tracing::warn!(data_host = %set.cfg.name, host = %m.name, "host is down (heartbeat)");
        } else if !was_alive && now_alive {
            tracing::info!(data_host = %set.cfg.name, host = %m.name, "host is up again (heartbeat)");
        }
        if is_writer {
            let current = set.current_index() == idx;
            if !now_alive && current {
                switch(&set, idx).await;
            }
            if now_alive && !current && (fenced || writable_standby(&set, m)) {
                fence(&set, m, conn.as_mut()).await;
            }
        }
        // a host that just failed is probed again at once, to confirm quickly
        let wait = if !ok && now_alive { Duration::from_millis(200) } else { period };
        tokio::time::sleep(wait).await;
    }
}

/// The current writeHost `from` is down: move writes to the next healthy writeHost.
async fn switch(set: &DataHostSet, from: usize) {
    if set.cfg.switch_type == -1 || set.cfg.not_switch || set.cfg.write_type != 0 || set.writers.len() < 2 {
        return;
    }
    if let Err(e) = move_writes(set, from, None).await {
        tracing::error!(data_host = %set.cfg.name, "the writeHost is down and no other writeHost can take over: {e}");
    }
}

/// `switch @@datasource dh[:index]`: moves writes from the current writeHost to writeHost `to` (the
/// next fit one when `None`) by the path an automatic failover takes — promotion, fencing, dnindex.
/// The index switched to, or why not.
pub async fn switch_manually(set: &DataHostSet, to: Option<usize>) -> std::result::Result<usize, String> {
    let from = set.current_index();
    if to == Some(from) {
        return Err(format!("writeHost {to} is already the current writeHost of dataHost {}", set.cfg.name, to = from));
    }
    move_writes(set, from, to).await
}

async fn move_writes(set: &DataHostSet, from: usize, to: Option<usize>) -> std::result::Result<usize, String> {
    // writeType 1 spreads writes over every alive writeHost: nothing to switch
    if set.cfg.write_type != 0 {
        return Err(format!("dataHost {} has writeType={}: writes are not switched", set.cfg.name, set.cfg.write_type));
    }
    let n = set.writers.len();
    if n < 2 {
        return Err(format!("dataHost {} has one writeHost: there is nothing to switch to", set.cfg.name));
    }
    if to.is_some_and(|j| j >= n) {
        return Err(format!("dataHost {} has no writeHost {} (it has {n})", set.cfg.name, to.unwrap_or(0)));
    }
    let guard = set.switching.lock();
    if set.current_index() != from {
        return Err(format!("dataHost {}: another switch moved the writeHost meanwhile", set.cfg.name));
    }
    let candidates: Vec<usize> = match to {
        Some(j) => vec![j],
        None => (1..n).map(|step| (from + step) % n).collect(),
    };
    let mut why = Vec::new();
    for j in candidates {
        let cand = &set.writers[j];
        let f = cand.health.snapshot();
        if !f.alive || f.fenced {
            why.push(format!("{} is {}", cand.name, if f.fenced { "fenced" } else { "down" }));
            continue;
        }
        if set.cfg.switch_type == 2 && f.replicating && !(f.sql_running && f.lag == Some(0)) {
            // switchType 2: only a candidate that has applied what it received
            why.push(format!("{} has not applied everything it received", cand.name));
            continue;
        }
        drop(guard);
        if set.cfg.promote_replica && f.read_only == Some(true) {
            // bounded as a whole: a candidate that hangs mid-promotion must not stall this heartbeat
            let promoted = tokio::time::timeout(Duration::from_secs(20), promote(cand)).await.unwrap_or_else(|_| {
                Err(crate::error::Error::BackendLost {
                    addr: cand.pool.endpoint.addr.clone(),
                    data_host: set.cfg.name.clone(),
                    reason: "promotion did not finish within 20 s".into(),
                })
            });
            match promoted {
                Ok(()) => {
                    tracing::warn!(data_host = %set.cfg.name, host = %cand.name, "promoted the replica: replication stopped, read_only=0")
                }
                Err(e) => {
                    tracing::error!(data_host = %set.cfg.name, host = %cand.name, error = %e, "promotion failed");
                    return Err(format!("promotion of {} failed: {e}", cand.name));
                }
            }
        }
        set.writers[from].health.facts.write().fenced = true;
        set.set_current(j);
        crate::stats::failover(&set.cfg.name);
        tracing::warn!(data_host = %set.cfg.name, from = %set.writers[from].name, to = %cand.name, index = j, "writeHost switched");
        return Ok(j);
    }
    Err(why.join(", "))
}

/// Waits (bounded) until the replica applied its relay log, stops replication, turns read_only off.
async fn promote(m: &Member) -> Result<()> {
    let mut c = BackendConn::connect(m.pool.endpoint.clone(), VARIANT, Duration::from_secs(5)).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (names, rows) = c.query_named("SHOW SLAVE STATUS").await?;
        let Some(s) = rows.first() else { break };
        let read = (cell(s, &names, "Master_Log_File"), cell(s, &names, "Read_Master_Log_Pos"));
        let exec = (cell(s, &names, "Relay_Master_Log_File"), cell(s, &names, "Exec_Master_Log_Pos"));
        if read == exec || std::time::Instant::now() > deadline || cell(s, &names, "Slave_SQL_Running") != "Yes" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.exec_simple("STOP SLAVE").await?;
    c.exec_simple("SET GLOBAL read_only = 0").await?;
    let mut f = m.health.facts.write();
    f.read_only = Some(false);
    f.replicating = false;
    Ok(())
}

/// With promotion on, a standby writeHost is a read-only replica; one that is writable and replicates
/// from nobody is a former primary (this proxy, or an earlier run of it, switched away from it).
fn writable_standby(set: &DataHostSet, m: &Member) -> bool {
    let f = m.health.facts.read();
    set.cfg.promote_replica && f.read_only == Some(false) && !f.replicating
}

/// A former writeHost is back: it is never written to again; with promotion on it is made read-only,
/// and once the operator re-attached it as a replica of the new writeHost it is a candidate again.
async fn fence(set: &DataHostSet, m: &Member, conn: Option<&mut BackendConn>) {
    let read_only = {
        let mut f = m.health.facts.write();
        let reattached = f.replicating && f.io_running && f.sql_running && f.read_only == Some(true);
        if reattached {
            f.fenced = false;
            drop(f);
            tracing::info!(data_host = %set.cfg.name, host = %m.name, "former writeHost replicates again: it is a standby writeHost again");
            return;
        }
        f.fenced = true;
        f.read_only
    };
    if !set.cfg.promote_replica || read_only == Some(true) {
        return;
    }
    if let Some(c) = conn {
        let fenced = tokio::time::timeout(Duration::from_secs(5), c.exec_simple("SET GLOBAL read_only = 1")).await;
        match fenced.unwrap_or_else(|_| Err(crate::error::Error::unsupported("SET GLOBAL read_only timed out"))) {
            Ok(()) => {
                m.health.facts.write().read_only = Some(true);
                tracing::warn!(data_host = %set.cfg.name, host = %m.name, "former writeHost is back: set read_only=1; re-attach it as a replica of the new writeHost");
            }
            Err(e) => {
                tracing::error!(data_host = %set.cfg.name, host = %m.name, error = %e, "cannot fence the former writeHost")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::datahost::tests::set;

    fn with(switch_type: i8, write_type: u8) -> DataHostSet {
        let mut s = set(0, 0, write_type, false);
        s.cfg.switch_type = switch_type;
        s.writers[0].health.facts.write().alive = false;
        s
    }

    #[tokio::test]
    async fn switch_type_one_moves_to_the_next_alive_write_host_and_fences_the_old_one() {
        let s = with(1, 0);
        switch(&s, 0).await;
        assert_eq!(s.current_index(), 1);
        assert!(s.writers[0].health.facts.read().fenced);
        // no fail-back: the old one is fenced, and it is not current any more
        switch(&s, 0).await;
        assert_eq!(s.current_index(), 1);
    }

    #[tokio::test]
    async fn switch_type_two_waits_for_a_candidate_that_applied_everything() {
        let s = with(2, 0);
        {
            let mut f = s.writers[1].health.facts.write();
            (f.replicating, f.io_running, f.sql_running, f.lag) = (true, true, true, Some(3));
        }
        switch(&s, 0).await;
        assert_eq!(s.current_index(), 0, "a lagging candidate is skipped");
        s.writers[1].health.facts.write().lag = Some(0);
        switch(&s, 0).await;
        assert_eq!(s.current_index(), 1);
    }

    #[tokio::test]
    async fn no_switch_with_switch_type_minus_one_write_type_one_or_no_candidate() {
        for s in [with(-1, 0), with(1, 1)] {
            switch(&s, 0).await;
            assert_eq!(s.current_index(), 0);
        }
        let s = with(1, 0);
        s.writers[1].health.facts.write().alive = false;
        switch(&s, 0).await;
        assert_eq!(s.current_index(), 0);
    }
}
