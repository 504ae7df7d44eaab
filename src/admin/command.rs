//! The manager port's command language (Mycat 1.6): keyword-parsed, case-insensitive, never SQL.
//! `parse` turns a text into a `Command` or an error that names what it did not understand.

/// A `show @@…` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    Help,
    Version,
    Server,
    Database,
    DataNode(Option<String>),
    DataSource(Option<String>),
    SynStatus,
    Heartbeat,
    /// shardcat's: every dataHost's binlog reader.
    Binlog,
    /// shardcat's: the change queue's feeds.
    Cdc,
    /// shardcat's: in-doubt XA transactions (this proxy's owed commits, foreign prepared ones).
    Xa,
    Connection,
    ConnectionSql,
    Backend,
    Session,
    Processor,
    ThreadPool,
    Command,
    SysParam,
    White,
    Cache,
    /// shardcat's: the result cache's invalidations per logical table.
    CacheTables,
    SqlSlow,
    TimeCurrent,
    TimeStartup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Show(Show),
    /// `reload @@config` (false) or `reload @@config_all` (true).
    Reload {
        all: bool,
    },
    Rollback,
    /// `reload @@sqlslow=ms`.
    SlowThreshold(u64),
    /// `switch @@datasource dh[,dh…][:index]`.
    Switch {
        hosts: Vec<String>,
        index: Option<usize>,
    },
    /// `stop @@heartbeat dh:seconds`.
    StopHeartbeat {
        host: String,
        seconds: u64,
    },
    Kill(Vec<u32>),
    Offline,
    Online,
    /// `clear @@slow where schema = s`.
    ClearSlow(String),
    /// `clear @@cache` (shardcat's): every reply the result cache holds goes.
    ClearCache,
    /// `select @@var[, @@var…]` (what client libraries ask at connect).
    Variables(Vec<String>),
    /// `SET …` sent by client libraries at connect (autocommit, names): accepted, changes nothing.
    Set,
}

/// The help text of `show @@help`: (STATEMENT, DESCRIPTION).
pub const HELP: &[(&str, &str)] = &[
    ("show @@time.current", "Report current timestamp"),
    ("show @@time.startup", "Report startup timestamp"),
    ("show @@version", "Report Mycat Server version"),
    ("show @@server", "Report server status"),
    ("show @@threadpool", "Report threadPool status"),
    ("show @@database", "Report databases"),
    ("show @@datanode", "Report dataNodes"),
    ("show @@datanode where schema = ?", "Report dataNodes"),
    ("show @@datasource", "Report dataSources"),
    ("show @@datasource where dataNode = ?", "Report dataSources"),
    ("show @@datasource.synstatus", "Report datasource data synchronous"),
    ("show @@heartbeat", "Report heartbeat status"),
    ("show @@binlog", "Report binlog readers (result cache invalidation)"),
    ("show @@processor", "Report processor status"),
    ("show @@command", "Report commands status"),
    ("show @@connection", "Report connection status"),
    ("show @@connection.sql", "Report connection sql"),
    ("show @@backend", "Report backend connection status"),
    ("show @@session", "Report front session details"),
    ("show @@cache", "Report system cache usage"),
    ("show @@cdc", "Report change queue feeds (position, lag, events, errors)"),
    ("show @@xa", "Report in-doubt XA transactions (commits owed by a dataNode, other coordinators' prepared ones)"),
    ("show @@cache.tables", "Report result cache invalidations per table"),
    ("show @@sql.slow", "Report slow SQL"),
    ("show @@sysparam", "Report system param"),
    ("show @@white", "show mycat white host"),
    ("switch @@datasource name:index", "Switch dataSource"),
    ("kill @@connection id1,id2,...", "Kill the specified connections"),
    ("stop @@heartbeat name:time", "Pause dataNode heartbeat"),
    ("reload @@config", "Reload basic config from file"),
    ("reload @@config_all", "Reload all config from file"),
    ("reload @@sqlslow=time", "Set Slow SQL Time(ms)"),
    ("rollback @@config", "Rollback all config from memory"),
    ("clear @@slow where schema = ?", "Clear slow sql by schema"),
    ("clear @@cache", "Clear the result cache"),
    ("offline", "Change MyCat status to OFF"),
    ("online", "Change MyCat status to ON"),
];

/// Why a text is no command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unknown(pub String);

fn unknown(text: &str) -> Unknown {
    Unknown(format!("Unsupported statement on the manager port: '{}' (show @@help lists the commands)", text.trim()))
}

/// `where <key> = <value>` (spaces optional, value quoted or not): the value, when `key` matches.
fn where_value(rest: &str, key: &str) -> Result<Option<String>, ()> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    let lower = rest.to_ascii_lowercase();
    let Some(cond) = lower.strip_prefix("where") else { return Err(()) };
    let cond_at = rest.len() - cond.len();
    let Some((k, _)) = cond.split_once('=') else { return Err(()) };
    if k.trim() != key {
        return Err(());
    }
    let v = rest[cond_at + k.len() + 1..].trim().trim_matches(|c| c == '\'' || c == '"' || c == '`');
    if v.is_empty() {
        return Err(());
    }
    Ok(Some(v.to_string()))
}

pub fn parse(text: &str) -> Result<Command, Unknown> {
    let t = text.trim().trim_end_matches(';').trim();
    let lower = t.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let bad = || unknown(t);
    match words.first().copied() {
        Some("show") => {
            let what = words.get(1).copied().ok_or_else(bad)?;
            let rest_at = lower.find(what).map(|i| i + what.len()).unwrap_or(lower.len());
            let rest = &t[rest_at..];
            let none = |s: Show| if rest.trim().is_empty() { Ok(Command::Show(s)) } else { Err(bad()) };
            match what {
                "@@help" => none(Show::Help),
                "@@version" => none(Show::Version),
                "@@server" => none(Show::Server),
                "@@database" => none(Show::Database),
                "@@datanode" => Ok(Command::Show(Show::DataNode(where_value(rest, "schema").map_err(|_| bad())?))),
                "@@datasource" => {
                    Ok(Command::Show(Show::DataSource(where_value(rest, "datanode").map_err(|_| bad())?)))
                }
                "@@datasource.synstatus" => none(Show::SynStatus),
                "@@heartbeat" => none(Show::Heartbeat),
                "@@binlog" => none(Show::Binlog),
                "@@connection" => none(Show::Connection),
                "@@connection.sql" => none(Show::ConnectionSql),
                "@@backend" => none(Show::Backend),
                "@@session" => none(Show::Session),
                "@@processor" => none(Show::Processor),
                "@@threadpool" => none(Show::ThreadPool),
                "@@command" => none(Show::Command),
                "@@sysparam" => none(Show::SysParam),
                "@@white" => none(Show::White),
                "@@cache" => none(Show::Cache),
                "@@cdc" => none(Show::Cdc),
                "@@xa" => none(Show::Xa),
                "@@cache.tables" => none(Show::CacheTables),
                "@@sql.slow" => none(Show::SqlSlow),
                "@@time.current" => none(Show::TimeCurrent),
                "@@time.startup" => none(Show::TimeStartup),
                _ => Err(bad()),
            }
        }
        Some("reload") => {
            let arg: String = words[1..].concat();
            match arg.as_str() {
                "@@config" => Ok(Command::Reload { all: false }),
                "@@config_all" => Ok(Command::Reload { all: true }),
                _ => match arg.strip_prefix("@@sqlslow=") {
                    Some(ms) => ms.parse().map(Command::SlowThreshold).map_err(|_| bad()),
                    None => Err(bad()),
                },
            }
        }
        Some("rollback") if words[1..] == ["@@config"] => Ok(Command::Rollback),
        Some("switch") if words.get(1) == Some(&"@@datasource") && words.len() == 3 => {
            let arg = t.split_whitespace().nth(2).ok_or_else(bad)?;
            let (names, index) = match arg.rsplit_once(':') {
                Some((n, i)) => (n, Some(i.parse::<usize>().map_err(|_| bad())?)),
                None => (arg, None),
            };
            let hosts: Vec<String> = names.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
            if hosts.is_empty() {
                return Err(bad());
            }
            Ok(Command::Switch { hosts, index })
        }
        Some("stop") if words.get(1) == Some(&"@@heartbeat") && words.len() == 3 => {
            let arg = t.split_whitespace().nth(2).ok_or_else(bad)?;
            let (host, secs) = arg.rsplit_once(':').ok_or_else(bad)?;
            let seconds = secs.parse().map_err(|_| bad())?;
            Ok(Command::StopHeartbeat { host: host.to_string(), seconds })
        }
        Some("kill") if words.get(1) == Some(&"@@connection") => {
            let ids: Result<Vec<u32>, _> =
                words[2..].concat().split(',').filter(|s| !s.is_empty()).map(str::parse::<u32>).collect();
            match ids {
                Ok(ids) if !ids.is_empty() => Ok(Command::Kill(ids)),
                _ => Err(bad()),
            }
        }
        Some("offline") if words.len() == 1 => Ok(Command::Offline),
        Some("online") if words.len() == 1 => Ok(Command::Online),
        Some("clear") if words.get(1) == Some(&"@@cache") && words.len() == 2 => Ok(Command::ClearCache),
        Some("clear") if words.get(1) == Some(&"@@slow") => {
            let rest = &t[lower.find("@@slow").map(|i| i + 6).unwrap_or(t.len())..];
            match where_value(rest, "schema") {
                Ok(Some(s)) => Ok(Command::ClearSlow(s)),
                _ => Err(bad()),
            }
        }
        Some("select") => {
            // `select @@a, @@session.b limit 1`, as client libraries send at connect
            let body = lower["select".len()..].trim();
            let body = body.split(" limit ").next().unwrap_or(body);
            let vars: Option<Vec<String>> = body
                .split(',')
                .map(|v| {
                    let v = v.trim();
                    let v = v.strip_prefix("@@")?;
                    let v = v.strip_prefix("session.").unwrap_or(v);
                    (!v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then(|| v.to_string())
                })
                .collect();
            vars.filter(|v| !v.is_empty()).map(Command::Variables).ok_or_else(bad)
        }
        Some("set") => Ok(Command::Set),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_as_mycat_writes_them() {
        assert_eq!(parse("SHOW @@HELP;"), Ok(Command::Show(Show::Help)));
        assert_eq!(
            parse("show @@datanode where schema = shop"),
            Ok(Command::Show(Show::DataNode(Some("shop".into()))))
        );
        assert_eq!(
            parse("show @@datanode WHERE schema='shop'"),
            Ok(Command::Show(Show::DataNode(Some("shop".into()))))
        );
        assert_eq!(
            parse("show @@datasource where dataNode = dn1"),
            Ok(Command::Show(Show::DataSource(Some("dn1".into()))))
        );
        assert_eq!(parse("reload @@config_all"), Ok(Command::Reload { all: true }));
        assert_eq!(parse("reload @@sqlslow=250"), Ok(Command::SlowThreshold(250)));
        assert_eq!(
            parse("switch @@datasource dh1,dh2:1"),
            Ok(Command::Switch { hosts: vec!["dh1".into(), "dh2".into()], index: Some(1) })
        );
        assert_eq!(parse("switch @@datasource dh1"), Ok(Command::Switch { hosts: vec!["dh1".into()], index: None }));
        assert_eq!(parse("stop @@heartbeat dh1:60"), Ok(Command::StopHeartbeat { host: "dh1".into(), seconds: 60 }));
        assert_eq!(parse("kill @@connection 3, 4"), Ok(Command::Kill(vec![3, 4])));
        assert_eq!(parse("clear @@slow where schema = shop"), Ok(Command::ClearSlow("shop".into())));
        assert_eq!(parse("CLEAR @@cache"), Ok(Command::ClearCache));
        assert_eq!(parse("select @@version_comment limit 1"), Ok(Command::Variables(vec!["version_comment".into()])));
        for bad in
            ["show @@nothing", "show @@help me", "drop table t", "kill @@connection x", "switch @@datasource", ""]
        {
            let e = parse(bad).unwrap_err();
            assert!(e.0.contains(bad.trim()), "{e}");
        }
    }
}
