//! The manager port's actions (reload, rollback, switch, stop heartbeat, kill, offline/online, clear
//! slow) and its answers to what client libraries send at connect (`select @@…`, `SET …`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::command::Command;
use super::show::{show, Table};
use crate::frontend::Shared;
use crate::runtime::Scope;

/// What the manager port answers to one command.
pub enum Reply {
    Table(Table),
    Ok { affected: u64, message: String },
    Err { code: u16, state: &'static str, message: String },
}

/// Mycat answers failed actions with ER_YES (1003).
fn failed(message: impl Into<String>) -> Reply {
    Reply::Err { code: 1003, state: "HY000", message: message.into() }
}

fn ok(affected: u64, message: impl Into<String>) -> Reply {
    Reply::Ok { affected, message: message.into() }
}

pub async fn run(shared: &Arc<Shared>, cmd: Command) -> Reply {
    match cmd {
        Command::Show(what) => match show(shared, &what).await {
            Ok(t) => Reply::Table(t),
            Err(m) => failed(m),
        },
        Command::Reload { all } => {
            let scope = if all { Scope::All } else { Scope::Config };
            match super::reload::reload(shared, scope).await {
                Ok(changes) => ok(changes.len() as u64, reload_message("Reload config success", &changes)),
                Err(r) => failed(format!("Reload config failure:\n{r}")),
            }
        }
        Command::Rollback => match super::reload::rollback(shared).await {
            Ok(changes) => ok(changes.len() as u64, reload_message("Rollback config success", &changes)),
            Err(r) => failed(format!("Rollback config failure: {r}")),
        },
        Command::SlowThreshold(ms) => {
            shared.stats.slow.set_threshold(ms);
            ok(1, format!("sqlSlowTime is {ms} ms"))
        }
        Command::Switch { hosts, index } => {
            let rt = shared.rt();
            let mut switched = Vec::new();
            for name in &hosts {
                let Some(set) = rt.backends.hosts.iter().find(|h| h.cfg.name == *name) else {
                    return failed(format!("Unknown dataHost '{name}'"));
                };
                match crate::backend::heartbeat::switch_manually(set, index).await {
                    Ok(j) => switched.push(format!("{name} → writeHost {j} ({})", set.writers[j].name)),
                    Err(e) => return failed(format!("switch @@datasource {name} refused: {e}")),
                }
            }
            ok(switched.len() as u64, format!("switched: {}", switched.join(", ")))
        }
        Command::StopHeartbeat { host, seconds } => {
            let rt = shared.rt();
            match rt.backends.hosts.iter().find(|h| h.cfg.name == host) {
                Some(set) => {
                    set.pause_heartbeat(std::time::Duration::from_secs(seconds));
                    tracing::warn!(data_host = %host, seconds, "heartbeat stopped from the manager port");
                    ok(1, format!("heartbeat of {host} stopped for {seconds} s"))
                }
                None => failed(format!("Unknown dataHost '{host}'")),
            }
        }
        Command::Kill(ids) => {
            let killed = ids.iter().filter(|id| shared.kill(**id)).count();
            ok(killed as u64, format!("{killed} of {} connections killed", ids.len()))
        }
        Command::Offline => {
            shared.online.store(false, Ordering::Relaxed);
            tracing::warn!("offline: health checks on the service port fail from now on");
            ok(1, "server is OFF")
        }
        Command::Online => {
            shared.online.store(true, Ordering::Relaxed);
            tracing::info!("online again");
            ok(1, "server is ON")
        }
        Command::ClearSlow(schema) => {
            if shared.rt().config.schema(&schema).is_none() {
                return failed(format!("Unknown schema '{schema}'"));
            }
            let n = shared.stats.slow.clear(Some(&schema));
            ok(n as u64, format!("{n} slow statements of {schema} cleared"))
        }
        Command::ClearCache => {
            let (n, _) = shared.cache.store.usage();
            shared.cache.clear();
            ok(n, format!("{n} cached replies cleared"))
        }
        Command::Variables(names) => variables(shared, &names),
        Command::Set => ok(0, ""),
    }
}

/// The OK message of a reload: the verdict, then one line per change.
fn reload_message(verdict: &str, changes: &[String]) -> String {
    if changes.is_empty() {
        format!("{verdict}: nothing changed")
    } else {
        format!("{verdict}:\n{}", changes.join("\n"))
    }
}

/// `select @@x, @@y`: the few variables client libraries read at connect.
fn variables(shared: &Shared, names: &[String]) -> Reply {
    let rt = shared.rt();
    let mut t = Table { cols: Vec::new(), rows: vec![Vec::new()] };
    for n in names {
        let v = match n.as_str() {
            "version_comment" => "shardcat manager port (Mycat 1.6 commands)".to_string(),
            "version" => crate::frontend::version_function(&shared.server_version).to_string(),
            "max_allowed_packet" => rt.config.system.max_packet_size.to_string(),
            "wait_timeout" | "interactive_timeout" => "28800".into(),
            "net_write_timeout" => "60".into(),
            "autocommit" => "1".into(),
            "sql_mode" => String::new(),
            "time_zone" | "system_time_zone" => "SYSTEM".into(),
            "lower_case_table_names" => "0".into(),
            "character_set_client" | "character_set_connection" | "character_set_results" | "character_set_server" => {
                rt.config.system.charset.clone()
            }
            "tx_isolation" | "transaction_isolation" => "REPEATABLE-READ".into(),
            _ => return Reply::Err { code: 1193, state: "HY000", message: format!("Unknown system variable '{n}'") },
        };
        let numeric = v.parse::<i64>().is_ok();
        t.cols.push((format!("@@{n}").into(), numeric));
        t.rows[0].push(Some(v));
    }
    Reply::Table(t)
}
