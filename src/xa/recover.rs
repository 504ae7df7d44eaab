//! Recovery of two-phase commits: `XA RECOVER` on a dataHost's current writeHost, this proxy's
//! in-doubt branches committed when the log decided so and rolled back otherwise, foreign ones reported.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Coordinator, Foreign};
use crate::backend::datahost::DataHostSet;

use super::ER_XAER_NOTA;

/// What one recovery of a host did.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    pub committed: usize,
    pub rolled_back: usize,
    pub foreign: usize,
}

/// One row of `XA RECOVER`: formatID, then gtrid and bqual cut from `data` by their lengths.
pub fn split_row(row: &[Option<Vec<u8>>]) -> Option<(i64, Vec<u8>, Vec<u8>)> {
    let num = |i: usize| -> Option<usize> { std::str::from_utf8(row.get(i)?.as_ref()?).ok()?.parse().ok() };
    let format: i64 = std::str::from_utf8(row.first()?.as_ref()?).ok()?.parse().ok()?;
    let (g, b) = (num(1)?, num(2)?);
    let data = row.get(3)?.as_ref()?;
    if data.len() < g.checked_add(b)? {
        return None;
    }
    Some((format, data[..g].to_vec(), data[g..g + b].to_vec()))
}

/// Recovers the dataHost's current writeHost: every in-doubt branch of this proxy is finished as the
/// log says (a branch a session is still working on is left to it); decided branches of the
/// dataHost's dataNodes that the server no longer holds were committed before.
pub async fn host(xa: &Coordinator, set: &DataHostSet, nodes: &[Arc<str>]) -> Result<Report, String> {
    let w = set.writer();
    let mut c = w.pool.get(Default::default()).await.map_err(|e| e.to_string())?;
    let rows = c.query_rows("XA RECOVER").await.map_err(|e| e.to_string())?;
    let mut report = Report::default();
    let mut foreign = Vec::new();
    let mut held = Vec::new();
    let mut finished = Vec::new();
    for row in &rows {
        let Some((format, gtrid, bqual)) = split_row(row) else { continue };
        let (g, b) = (String::from_utf8_lossy(&gtrid).into_owned(), String::from_utf8_lossy(&bqual).into_owned());
        if !xa.ours(format, &g) {
            foreign.push(Foreign { host: w.name.clone(), format, gtrid: g, bqual: b });
            continue;
        }
        held.push((g.clone(), b.clone()));
        if xa.in_flight(&g) {
            continue;
        }
        let xid = crate::backend::binlog::xid_text(super::FORMAT_ID, &gtrid, &bqual);
        if xa.decided(&g) {
            match c.exec_simple(&format!("XA COMMIT {xid}")).await {
                Ok(()) => {}
                // gone meanwhile — or not this user's to finish: the second XA RECOVER tells
                Err(crate::error::Error::Sql { code: ER_XAER_NOTA, .. }) => {}
                Err(e) => return Err(format!("XA COMMIT {xid}: {e}")),
            }
            finished.push((g, b));
        } else {
            match c.exec_simple(&format!("XA ROLLBACK {xid}")).await {
                Ok(()) => {}
                Err(crate::error::Error::Sql { code: ER_XAER_NOTA, .. }) => {}
                Err(e) => return Err(format!("XA ROLLBACK {xid}: {e}")),
            }
            crate::stats::xa("recovered_rollback");
            report.rolled_back += 1;
            tracing::info!(host = %w.name, xid = %g, node = %b, "XA recovery: rolled back (no commit decision logged)");
        }
    }
    // a branch still listed after its XA COMMIT was not finished: a replica applied its prepare (after
    // a failover), and only a user with SUPER may finish another's XID
    let still: Vec<(String, String)> = if finished.is_empty() {
        Vec::new()
    } else {
        let rows = c.query_rows("XA RECOVER").await.map_err(|e| e.to_string())?;
        rows.iter()
            .filter_map(|r| split_row(r))
            .map(|(_, g, b)| (String::from_utf8_lossy(&g).into_owned(), String::from_utf8_lossy(&b).into_owned()))
            .collect()
    };
    let mut refused = Vec::new();
    for (g, b) in finished {
        if still.contains(&(g.clone(), b.clone())) {
            refused.push(format!("{g} on dataNode {b}"));
            continue;
        }
        xa.committed(&g, &[b.as_str()]);
        crate::stats::xa("recovered_commit");
        report.committed += 1;
        tracing::info!(host = %w.name, xid = %g, node = %b, "XA recovery: committed (the log decided commit)");
    }
    // decided branches this server does not hold (any more): their XA COMMIT was done
    for (g, owed) in xa.pending() {
        if xa.in_flight(&g) {
            continue;
        }
        let here: Vec<&str> = owed
            .iter()
            .map(String::as_str)
            .filter(|n| nodes.iter().any(|x| &**x == *n) && !held.iter().any(|(hg, hb)| *hg == g && hb == n))
            .collect();
        if !here.is_empty() {
            xa.committed(&g, &here);
        }
    }
    if !foreign.is_empty() {
        tracing::warn!(host = %w.name, count = foreign.len(), "XA RECOVER lists transactions that are not this proxy's: left alone");
    }
    report.foreign = foreign.len();
    xa.foreign.lock().insert(w.name.clone(), foreign);
    if !refused.is_empty() {
        return Err(format!(
            "XA COMMIT left {} prepared (XAER_NOTA: not this backend user's transaction — give it SUPER to finish what a failover carried to a replica)",
            refused.join(", ")
        ));
    }
    Ok(report)
}

/// Recovery for as long as the proxy runs: at start, whenever a dataHost's writeHost comes back or
/// changes (failover), and while a decided commit is owed on one of its dataNodes.
pub async fn run(xa: Arc<Coordinator>, backends: Arc<dyn Fn() -> Arc<crate::backend::Backends> + Send + Sync>) {
    // per dataHost: the writeHost last recovered and whether it was up; after failures, when to try
    // again (1 s, doubling up to 30 s)
    let mut seen: HashMap<String, (String, bool)> = HashMap::new();
    let mut retry: HashMap<String, (tokio::time::Instant, Duration, (String, bool))> = HashMap::new();
    loop {
        let notified = xa.changed.notified();
        let b = backends();
        let owed = xa.pending();
        for set in &b.hosts {
            let w = set.writer();
            // the heartbeat's word: a pool marked down by a failed statement is tried again by this
            let alive = w.health.alive();
            let key = (w.pool.endpoint.addr.clone(), alive);
            let nodes = b.nodes_of(&set.cfg.name);
            let owes = owed.values().flatten().any(|n| nodes.iter().any(|x| &**x == n));
            let fresh = seen.get(&set.cfg.name) != Some(&key);
            if !alive {
                // when it comes back it is tried at once
                retry.remove(&set.cfg.name);
                seen.insert(set.cfg.name.clone(), key);
                continue;
            }
            // a writeHost that changed (or came back) since the last failure is tried at once
            let backing_off =
                retry.get(&set.cfg.name).is_some_and(|(at, _, k)| *k == key && tokio::time::Instant::now() < *at);
            if !(fresh || owes) || backing_off {
                continue;
            }
            let failed = match tokio::time::timeout(Duration::from_secs(10), host(&xa, set, &nodes)).await {
                Ok(Ok(r)) => {
                    if r != Report::default() {
                        tracing::info!(data_host = %set.cfg.name, committed = r.committed, rolled_back = r.rolled_back, foreign = r.foreign, "XA recovery");
                    }
                    seen.insert(set.cfg.name.clone(), key.clone());
                    retry.remove(&set.cfg.name);
                    None
                }
                Ok(Err(e)) => Some(e),
                Err(_) => Some("timed out".to_string()),
            };
            if let Some(e) = failed {
                let wait = retry
                    .get(&set.cfg.name)
                    .filter(|(_, _, k)| *k == key)
                    .map_or(Duration::from_secs(1), |(_, w, _)| (*w * 2).min(Duration::from_secs(30)));
                tracing::warn!(data_host = %set.cfg.name, error = %e, retry_in_ms = wait.as_millis() as u64, "XA recovery failed");
                retry.insert(set.cfg.name.clone(), (tokio::time::Instant::now() + wait, wait, key));
            }
        }
        drop(b);
        let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xa_recover_rows_split_into_gtrid_and_bqual() {
        let row = vec![Some(b"1396916564".to_vec()), Some(b"3".to_vec()), Some(b"2".to_vec()), Some(b"abcdn".to_vec())];
        assert_eq!(split_row(&row), Some((1396916564, b"abc".to_vec(), b"dn".to_vec())));
        let short = vec![Some(b"1".to_vec()), Some(b"3".to_vec()), Some(b"2".to_vec()), Some(b"ab".to_vec())];
        assert_eq!(split_row(&short), None);
        assert_eq!(split_row(&[None]), None);
    }
}
