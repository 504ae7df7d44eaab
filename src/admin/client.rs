//! `shardcat reload` and `shardcat status`: the command-line client of a running proxy's manager
//! port (mysql_async), with the exit codes tools rely on (0 done, 1 config refused, 2 unreachable).

use mysql_async::prelude::Queryable;
use std::path::Path;

/// Where and as whom to connect.
pub struct Target {
    pub manager: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// A conf dir whose server.xml supplies the user and password when they are not given.
    pub config: Option<std::path::PathBuf>,
}

/// An outcome: the text to print and the process exit code.
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

fn unreachable(msg: String) -> Outcome {
    Outcome { code: 2, stdout: String::new(), stderr: msg }
}

/// The first manager user of `dir`'s server.xml (the first user when none is a manager).
fn user_of(dir: &Path) -> Option<(String, String)> {
    let users = crate::config::load_users(dir)?;
    let u = users.iter().find(|u| u.manager).or_else(|| users.first())?;
    Some((u.name.clone(), u.password.clone()))
}

async fn connect(t: &Target) -> Result<mysql_async::Conn, Outcome> {
    let (host, port) = match t.manager.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(p) => (h.to_string(), p),
            Err(_) => return Err(unreachable(format!("--manager {}: the port is not a number", t.manager))),
        },
        None => (t.manager.clone(), 9066),
    };
    let from_config = match &t.config {
        Some(dir) if t.user.is_none() || t.password.is_none() => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || user_of(&dir)).await.ok().flatten()
        }
        _ => None,
    };
    let user = t.user.clone().or_else(|| from_config.as_ref().map(|u| u.0.clone())).unwrap_or_else(|| "root".into());
    let password = t.password.clone().or_else(|| from_config.map(|u| u.1)).unwrap_or_default();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.clone())
        .tcp_port(port)
        .user(Some(user.clone()))
        .pass(Some(password))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .wait_timeout(Some(28_800))
        .max_allowed_packet(Some(16 << 20));
    let conn = tokio::time::timeout(std::time::Duration::from_secs(10), mysql_async::Conn::new(opts)).await;
    match conn {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(unreachable(format!("cannot log in on the manager port {host}:{port} as {user}: {e}"))),
        Err(_) => Err(unreachable(format!("the manager port {host}:{port} did not answer within 10 s"))),
    }
}

/// `shardcat reload [--all]`: 0 with the changes, 1 with the refused config's `file:line` lines, 2
/// when the manager port cannot be reached or refuses the login.
pub async fn reload(t: &Target, all: bool) -> Outcome {
    let mut conn = match connect(t).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let cmd = if all { "reload @@config_all" } else { "reload @@config" };
    let r = conn.query_drop(cmd).await;
    let info = conn.info().into_owned();
    let _ = conn.disconnect().await;
    match r {
        Ok(()) => Outcome { code: 0, stdout: format!("{info}\n"), stderr: String::new() },
        Err(mysql_async::Error::Server(e)) if e.code == 1003 => {
            Outcome { code: 1, stdout: format!("{}\n", e.message), stderr: String::new() }
        }
        Err(e) => unreachable(format!("{cmd} failed: {e}")),
    }
}

/// `shardcat status`: `show @@datasource` and `show @@heartbeat`, as aligned text tables.
pub async fn status(t: &Target) -> Outcome {
    let mut conn = match connect(t).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let mut stdout = String::new();
    for cmd in ["show @@datasource", "show @@heartbeat"] {
        let r: Result<(Vec<String>, Vec<Vec<String>>), mysql_async::Error> = async {
            let mut res = conn.query_iter(cmd).await?;
            let names: Vec<String> = res.columns_ref().iter().map(|c| c.name_str().into_owned()).collect();
            let rows: Vec<mysql_async::Row> = res.collect().await?;
            let cells = rows
                .into_iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| match r.as_ref(i) {
                            Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                            Some(mysql_async::Value::NULL) | None => "NULL".into(),
                            Some(v) => v.as_sql(true),
                        })
                        .collect()
                })
                .collect();
            Ok((names, cells))
        }
        .await;
        match r {
            Ok((names, rows)) => {
                stdout.push_str(&format!("{cmd}\n{}\n", render(&names, &rows)));
            }
            Err(e) => return unreachable(format!("{cmd} failed: {e}")),
        }
    }
    let _ = conn.disconnect().await;
    Outcome { code: 0, stdout, stderr: String::new() }
}

/// Columns padded to their widest cell.
fn render(names: &[String], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = width[i])).collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(names);
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_are_aligned() {
        let t = super::render(&["A".into(), "LONGER".into()], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONGER\nxyz  1\n");
    }
}
