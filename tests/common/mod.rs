//! Test harness: makes sure the MariaDB stack (scripts/stack) is up, starts shardcat on a free port
//! with a given conf dir, and hands out mysql_async connections through the proxy or direct.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

pub const PRIMARY1: u16 = 3307;
pub const REPLICA1: u16 = 3308;
pub const PRIMARY2: u16 = 3309;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Starts the backend stack once per test binary (idempotent, fast when already up).
pub fn stack() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        let out = Command::new(root().join("scripts/stack")).arg("up").output().expect("run scripts/stack up");
        assert!(out.status.success(), "scripts/stack up failed: {}", String::from_utf8_lossy(&out.stderr));
    });
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A running proxy. It exits when the test process ends (its stdin closes).
pub struct Proxy {
    pub port: u16,
    pub manager_port: u16,
    pub http_port: u16,
    child: Mutex<Child>,
    pub log: PathBuf,
}

impl Proxy {
    pub fn start(config: &Path, rules: Option<&Path>) -> Proxy {
        Self::start_with(config, rules, &[])
    }

    /// `start`, with more arguments for `shardcat` (`--log-format json`…).
    pub fn start_with(config: &Path, rules: Option<&Path>, extra: &[&str]) -> Proxy {
        Self::start_env(config, rules, extra, &[])
    }

    /// `start_with`, with environment variables for the proxy (test-only switches).
    pub fn start_env(config: &Path, rules: Option<&Path>, extra: &[&str], env: &[(&str, &str)]) -> Proxy {
        let port = free_port();
        let manager_port = free_port();
        let http_port = free_port();
        let log = std::env::temp_dir().join(format!("shardcat-test-{port}.log"));
        let logf = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardcat"));
        cmd.args(["serve", "--config"]).arg(config).args([
            "--port",
            &port.to_string(),
            "--manager-port",
            &manager_port.to_string(),
            "--http-port",
            &http_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--exit-on-stdin-eof",
        ]);
        if let Some(r) = rules {
            cmd.arg("--rules").arg(r);
        }
        cmd.args(extra);
        cmd.envs(env.iter().copied());
        let child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(logf))
            .spawn()
            .expect("start shardcat");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "shardcat did not start; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Proxy { port, manager_port, http_port, child: Mutex::new(child), log }
    }

    /// The proxy's peak resident memory so far (VmHWM), in KiB.
    #[allow(dead_code)]
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.lock().map(|c| c.id()).unwrap_or(0);
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
            })
            .unwrap_or(0)
    }

    /// Sends a signal to the proxy process (`TERM`, `HUP`, …).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.lock().map(|c| c.id()).expect("proxy child");
        let st = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().expect("run kill");
        assert!(st.success(), "kill -{sig} {pid}");
    }

    /// Whether the proxy process has exited (without waiting).
    pub fn exited(&self) -> bool {
        self.child.lock().map(|mut c| matches!(c.try_wait(), Ok(Some(_)))).unwrap_or(true)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            if let Some(mut stdin) = c.stdin.take() {
                let _ = stdin.flush();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The demo proxy (config/ + rules/), shared by the tests of one binary.
pub fn demo() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        stack();
        Proxy::start(&root().join("config"), None)
    })
}

pub fn opts(port: u16, user: &str, pass: &str, db: Option<&str>) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(pass))
        .db_name(db)
        .prefer_socket(false)
        .stmt_cache_size(0)
        .into()
}

pub async fn proxy_conn(db: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(demo().port, "app", "app", Some(db))).await.expect("connect through shardcat")
}

/// Direct to the first primary as the proxy's backend user.
pub async fn direct_conn(port: u16, db: &str) -> mysql_async::Conn {
    stack();
    mysql_async::Conn::new(opts(port, "proxy", "proxy", Some(db))).await.expect("connect to MariaDB")
}

/// The (code, sqlstate) of a server error.
pub fn server_error(e: &mysql_async::Error) -> Option<(u16, String, String)> {
    match e {
        mysql_async::Error::Server(s) => Some((s.code, s.state.clone(), s.message.clone())),
        _ => None,
    }
}

pub async fn exec(c: &mut mysql_async::Conn, sql: &str) {
    c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A proxy whose server.xml has a user limited to the demo schema.
pub fn limited_proxy() -> &'static Proxy {
    static P: OnceLock<Proxy> = OnceLock::new();
    P.get_or_init(|| {
        stack();
        let dir = std::env::temp_dir().join(format!("shardcat-limited-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(root().join("config/schema.xml"), dir.join("schema.xml")).unwrap();
        let server = std::fs::read_to_string(root().join("config/server.xml")).unwrap().replace(
            "</mycat:server>",
            "<user name=\"limited\"><property name=\"password\">limited</property><property name=\"schemas\">demo</property></user>\n</mycat:server>",
        );
        std::fs::write(dir.join("server.xml"), server).unwrap();
        Proxy::start(&dir, Some(&root().join("rules")))
    })
}

/// A stack of its own (other ports, other folder) for tests that stop or kill servers.
pub fn private_stack(dir: &str, ports: &str, dbs: &str, semisync: bool) {
    stack_at(dir, ports, dbs, semisync, &["up"]);
}

/// `scripts/stack <args>` on a private stack.
pub fn stack_at(dir: &str, ports: &str, dbs: &str, semisync: bool, args: &[&str]) {
    let out = Command::new(root().join("scripts/stack"))
        .args(args)
        .env("STACK_DIR", dir)
        .env("STACK_PORTS", ports)
        .env("STACK_DATABASES", dbs)
        .env("STACK_SEMISYNC", if semisync { "1" } else { "0" })
        .output()
        .expect("run scripts/stack");
    assert!(out.status.success(), "scripts/stack {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs SQL as root on a port of a private stack; Err with the client's message.
pub fn root_sql(port: u16, sql: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .args(["--protocol=TCP", "-h127.0.0.1", &format!("-P{port}"), "-uroot", "-N", "-B", "-e", sql])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A temporary copy of conf dir `tests/fixtures/<fixture>` (removed when dropped), for a test that
/// changes its files.
#[allow(dead_code)]
pub fn fixture_copy(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary dir");
    for e in std::fs::read_dir(root().join("tests/fixtures").join(fixture)).expect("fixture dir") {
        let e = e.expect("fixture file");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy a fixture file");
    }
    dir
}

/// GET `path` on the proxy's HTTP port: (status, body).
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect to the HTTP port");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read_to_end(&mut s, &mut raw))
        .await
        .expect("reply in time")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// config/ with the result cache on (`resultCacheSize`), in a folder of its own.
pub fn cache_conf(name: &str, size: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shardcat-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root().join("config/schema.xml"), dir.join("schema.xml")).unwrap();
    let server = std::fs::read_to_string(root().join("config/server.xml")).unwrap().replace(
        "<property name=\"httpPort\">9067</property>",
        &format!(
            "<property name=\"httpPort\">9067</property>\n\t\t<property name=\"resultCacheSize\">{size}</property>"
        ),
    );
    std::fs::write(dir.join("server.xml"), server).unwrap();
    dir
}

/// A manager command's rows through the mariadb CLI (tab-separated, no header), as admin/admin.
pub fn manager_rows(p: &Proxy, cmd: &str) -> Vec<Vec<String>> {
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", &format!("-P{}", p.manager_port), "-uadmin", "-padmin", "-N", "-B", "-e", cmd])
        .output()
        .expect("run mariadb");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

/// A schema.xml text plus a pass-through schema `sw` on dataHost `host_sw`, whose two writeHosts are
/// the stack's two independent primaries (switch @@datasource moves it from 3307 to 3309).
pub fn with_switch_host(schema: &str) -> String {
    let schema = schema.replace(
        "\t<dataNode name=\"dn1\"",
        "\t<schema name=\"sw\" dataNode=\"dn_sw\"/>\n\t<dataNode name=\"dn_sw\" dataHost=\"host_sw\" database=\"shardcat_default\"/>\n\t<dataNode name=\"dn1\"",
    );
    schema.replace(
        "</mycat:schema>",
        "\t<dataHost name=\"host_sw\" maxCon=\"10\" minCon=\"1\" balance=\"0\" writeType=\"0\" dbType=\"mysql\" dbDriver=\"native\" switchType=\"1\">\n\t\t<heartbeat>select user()</heartbeat>\n\t\t<writeHost host=\"sw1\" url=\"127.0.0.1:3307\" user=\"proxy\" password=\"proxy\"/>\n\t\t<writeHost host=\"sw2\" url=\"127.0.0.1:3309\" user=\"proxy\" password=\"proxy\"/>\n\t</dataHost>\n</mycat:schema>",
    )
}

/// Every message of a JetStream stream, in stream order: (its Nats-Msg-Id header, its payload). None
/// when the stream or a consumer of it cannot be had.
pub async fn jetstream_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Option<Vec<(Option<String>, Vec<u8>)>> {
    use futures_util::StreamExt;
    let mut s = js.get_stream(stream).await.ok()?;
    let n = s.info().await.ok()?.state.messages as usize;
    let cfg = async_nats::jetstream::consumer::pull::Config {
        ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
        ..Default::default()
    };
    let consumer = s.create_consumer(cfg).await.ok()?;
    let mut msgs = consumer.fetch().max_messages(n.max(1)).expires(Duration::from_secs(2)).messages().await.ok()?;
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), msgs.next()).await {
            Ok(Some(Ok(m))) => {
                let id = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_string());
                out.push((id, m.payload.to_vec()));
            }
            _ => break,
        }
    }
    let name = consumer.cached_info().name.clone();
    let _ = s.delete_consumer(&name).await;
    Some(out)
}

/// Compiles `tests/clients/<class>.java` against Debian's Connector/J and runs it with `args`.
pub fn run_java(class: &str, args: &[&str]) -> std::process::Output {
    let classes = root().join("target/java-tests");
    std::fs::create_dir_all(&classes).unwrap();
    let jar = "/usr/share/java/mariadb-java-client.jar";
    assert!(Path::new(jar).exists(), "install Debian's libmariadb-java");
    let javac = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(root().join(format!("tests/clients/{class}.java")))
        .output()
        .expect("javac");
    assert!(javac.status.success(), "{}", String::from_utf8_lossy(&javac.stderr));
    Command::new("java")
        .args(["-cp", &format!("{jar}:{}", classes.display()), class])
        .args(args)
        .output()
        .expect("java")
}
