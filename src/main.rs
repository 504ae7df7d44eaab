//! The `shardcat` command line: `serve` runs the proxy, `check` validates a Mycat conf dir, `reload` and
//! `status` talk to a running proxy's manager port.
//! Logging goes to stderr through tracing, level from RUST_LOG (default info), text or JSON lines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "shardcat", version, about = "MySQL-protocol sharding proxy with Mycat configuration")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log lines as text (default) or as one JSON object per line, for machines
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the proxy.
    Serve {
        /// Mycat conf dir (schema.xml, server.xml; rule.xml unless --rules)
        #[arg(long)]
        config: PathBuf,
        /// Folder holding rule.xml and its map files
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Service port (default: server.xml serverPort, then 8066)
        #[arg(long)]
        port: Option<u16>,
        /// Manager port (default: server.xml managerPort, then 9066)
        #[arg(long)]
        manager_port: Option<u16>,
        /// HTTP port for /metrics, /health, /registry (default: server.xml httpPort, then 9067)
        #[arg(long)]
        http_port: Option<u16>,
        /// Address to bind (default: server.xml bindIp, then 0.0.0.0)
        #[arg(long)]
        bind: Option<String>,
        /// Exit when standard input reaches end of file (lets a test harness own the process).
        #[arg(long, hide = true)]
        exit_on_stdin_eof: bool,
    },
    /// Reload a running proxy's configuration through its manager port: exit 0 with what changed, 1 when
    /// the new config is refused (its file:line lines printed), 2 when the manager port is unreachable.
    Reload {
        #[command(flatten)]
        manager: Manager,
        /// Also the dataHosts (reload @@config_all)
        #[arg(long)]
        all: bool,
    },
    /// Show a running proxy's dataSources and heartbeats (show @@datasource, show @@heartbeat).
    Status {
        #[command(flatten)]
        manager: Manager,
    },
    /// Load and validate a conf dir, print a summary; exit 1 with file:line errors on problems.
    Check {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        rules: Option<PathBuf>,
    },
}

/// How `reload` and `status` reach a running proxy.
#[derive(clap::Args)]
struct Manager {
    /// Manager port to talk to
    #[arg(long, default_value = "127.0.0.1:9066")]
    manager: String,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    password: Option<String>,
    /// Conf dir whose server.xml gives the user and password when they are not given
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Manager {
    fn target(self) -> shardcat::admin::client::Target {
        shardcat::admin::client::Target {
            manager: self.manager,
            user: self.user,
            password: self.password,
            config: self.config,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    match cli.cmd {
        Cmd::Check { config, rules } => match shardcat::config::load(&config, rules.as_deref()) {
            Ok((cfg, diags)) => {
                for w in diags.warnings() {
                    eprintln!("{w}");
                }
                print!("{}", shardcat::config::summary::render(&cfg));
                ExitCode::SUCCESS
            }
            Err(diags) => {
                for e in diags.errors() {
                    println!("{e}");
                }
                for w in diags.warnings() {
                    eprintln!("{w}");
                }
                ExitCode::from(1)
            }
        },
        Cmd::Reload { manager, all } => {
            let target = manager.target();
            client(|| async move { shardcat::admin::client::reload(&target, all).await })
        }
        Cmd::Status { manager } => {
            let target = manager.target();
            client(|| async move { shardcat::admin::client::status(&target).await })
        }
        Cmd::Serve { config, rules, port, manager_port, http_port, bind, exit_on_stdin_eof } => {
            let opts =
                shardcat::server::Options { config, rules, port, manager_port, http_port, bind, exit_on_stdin_eof };
            // server.xml's `processors` sizes the runtime, which exists before the server loads its config
            let workers =
                shardcat::config::load(&opts.config, opts.rules.as_deref()).ok().and_then(|(c, _)| c.system.processors);
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = workers {
                builder.worker_threads(n);
            }
            let rt = match builder.enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match rt.block_on(shardcat::server::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shardcat: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Runs a manager-port client command on a small runtime and prints its outcome.
fn client<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = shardcat::admin::client::Outcome>,
{
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let o = rt.block_on(f());
    print!("{}", o.stdout);
    if !o.stderr.is_empty() {
        eprintln!("{}", o.stderr);
    }
    ExitCode::from(o.code)
}
