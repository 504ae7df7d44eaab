//! Reloading the conf dir while the proxy serves: load → validate (refused with `file:line` lines,
//! nothing changes) → diff → build the next runtime → swap it in whole; and `rollback @@config`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::frontend::Shared;
use crate::runtime::{Next, Runtime, Scope};

/// One reload or rollback at a time.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Why a reload did not happen: the lines to show (`file:line: message`, or the reason).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct Refused(pub Vec<String>);

/// Re-reads the conf dir the proxy was started with. `Ok`: what changed (one line each; empty when
/// nothing did — the reload still happened).
pub async fn reload(shared: &Arc<Shared>, scope: Scope) -> Result<Vec<String>, Refused> {
    let _one = LOCK.lock().await;
    let current = shared.rt();
    let (dir, rules) = (current.config.config_dir.clone(), current.config.rules_dir.clone());
    let cur = current.clone();
    // reading files and map files: off the runtime's workers
    let built = tokio::task::spawn_blocking(move || -> Result<(Next, Vec<String>, Vec<String>), Refused> {
        let (cfg, diags) = crate::config::load(&dir, Some(&rules))
            .map_err(|d| Refused(d.errors().map(|e| e.to_string()).collect()))?;
        let warnings: Vec<String> = diags.warnings().map(|w| w.to_string()).collect();
        let mut changes = crate::config::diff::diff(&cur.config, &cfg);
        if scope == Scope::Config {
            changes.retain(|c| !c.starts_with("dataHost "));
        }
        let next = cur.next(cfg, scope).map_err(|e| Refused(vec![e]))?;
        Ok((next, changes, warnings))
    })
    .await
    .map_err(|e| Refused(vec![format!("reload failed: {e}")]))?;
    let (next, changes, warnings) = match built {
        Ok(b) => b,
        Err(r) => {
            shared.history.lock().refused += 1;
            crate::stats::reload(false);
            tracing::warn!(scope = ?scope, problems = %r, "reload refused: the running configuration stays");
            return Err(r);
        }
    };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    install(shared, next);
    {
        let mut h = shared.history.lock();
        h.reloaded = Some(SystemTime::now());
        h.done += 1;
    }
    crate::stats::reload(true);
    tracing::info!(scope = ?scope, changes = changes.len(), "configuration reloaded: {}", changes.join("; "));
    Ok(changes)
}

/// Swaps `next` in, starts what is new, retires what it dropped.
fn install(shared: &Arc<Shared>, next: Next) {
    let Next { runtime, started, retired } = next;
    let period = Duration::from_millis(runtime.config.system.data_node_heartbeat_period_ms.max(100));
    shared.stats.slow.set_threshold(runtime.config.system.sql_slow_time_ms);
    shared.swap(Arc::new(runtime));
    crate::backend::heartbeat::start(&started, period);
    shared.cache.follow(&shared.rt());
    for h in &started {
        for m in h.writers.iter().chain(h.readers.iter().flatten()) {
            let pool = m.pool.clone();
            tokio::spawn(async move { pool.warm_up().await });
        }
    }
    for h in &retired {
        h.retire();
        tracing::info!(data_host = %h.cfg.name, "dataHost retired: its connections close as they are released");
    }
}

/// `rollback @@config`: the configuration from before the last reload, once. Its dataHosts are
/// rebuilt where the reload retired them (the ones both configs share keep running).
pub async fn rollback(shared: &Arc<Shared>) -> Result<Vec<String>, Refused> {
    let _one = LOCK.lock().await;
    let Some(previous) = shared.previous.lock().clone() else {
        return Err(Refused(vec![
            "there is no configuration to roll back to (no reload since start, or rolled back already)".into(),
        ]));
    };
    let current = shared.rt();
    let prev: Arc<Runtime> = previous;
    let cur = current.clone();
    let built = tokio::task::spawn_blocking(move || {
        let changes = crate::config::diff::diff(&cur.config, &prev.config);
        cur.next((*prev.config).clone(), Scope::All).map(|n| (n, changes))
    })
    .await
    .map_err(|e| Refused(vec![format!("rollback failed: {e}")]))?
    .map_err(|e| Refused(vec![e]))?;
    let (next, changes) = built;
    install(shared, next);
    // a rollback is not undone by another rollback
    *shared.previous.lock() = None;
    shared.history.lock().rolled_back = Some(SystemTime::now());
    tracing::info!(changes = changes.len(), "configuration rolled back: {}", changes.join("; "));
    Ok(changes)
}
