//! Startup: load and validate the conf dir, build the backend pools, listen on the service, manager
//! and HTTP ports and hand each client to a session. On SIGINT/SIGTERM: stop accepting, drain the sessions, exit (or at
//! stdin EOF when a harness asks).

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::frontend::{self, Shared};

pub struct Options {
    pub config: PathBuf,
    pub rules: Option<PathBuf>,
    pub port: Option<u16>,
    pub manager_port: Option<u16>,
    pub http_port: Option<u16>,
    pub bind: Option<String>,
    pub exit_on_stdin_eof: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration has errors:\n{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

pub async fn run(opts: Options) -> Result<(), StartError> {
    // before anything registers a counter (the pools do, as they are built)
    let prom = crate::admin::http::recorder();
    let (cfg, diags) = crate::config::load(&opts.config, opts.rules.as_deref())
        .map_err(|d| StartError::Config(d.errors().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")))?;
    for w in diags.warnings() {
        tracing::warn!("{w}");
    }
    let port = opts.port.unwrap_or(cfg.system.server_port);
    let manager_port = opts.manager_port.unwrap_or(cfg.system.manager_port);
    let http_port = opts.http_port.unwrap_or(cfg.system.http_port);
    let bind = opts.bind.clone().unwrap_or_else(|| cfg.system.bind_ip.clone());
    // the manager and HTTP ports listen before the service port: once a client can connect to the
    // service, health checks and the manager can too (they are served once the runtime is up)
    let manager_addr = format!("{bind}:{manager_port}");
    let manager = TcpListener::bind(&manager_addr)
        .await
        .map_err(|source| StartError::Listen { addr: manager_addr.clone(), source })?;
    let http_addr = format!("{bind}:{http_port}");
    let http =
        TcpListener::bind(&http_addr).await.map_err(|source| StartError::Listen { addr: http_addr.clone(), source })?;
    let addr = format!("{bind}:{port}");
    let listener =
        TcpListener::bind(&addr).await.map_err(|source| StartError::Listen { addr: addr.clone(), source })?;
    let local: Option<SocketAddr> = listener.local_addr().ok();
    let runtime = crate::runtime::Runtime::first(cfg).map_err(StartError::Config)?;
    let backends = runtime.backends.clone();
    backends.warm_up();
    let heartbeat = std::time::Duration::from_millis(runtime.config.system.data_node_heartbeat_period_ms.max(100));
    crate::backend::heartbeat::start(&backends.hosts, heartbeat);
    if runtime.config.system.deadlock_check_period_ms > 0 {
        crate::backend::deadlock::start(
            backends.deadlocks.clone(),
            std::time::Duration::from_millis(runtime.config.system.deadlock_check_period_ms.max(10)),
        );
    }
    // the version clients see is the backends' (learned once, at start)
    let backend_version = backends.first_server_version(std::time::Duration::from_secs(2)).await;
    let tls = match (&runtime.config.system.tls_cert, &runtime.config.system.tls_key) {
        (Some(c), Some(k)) => {
            let dir = &runtime.config.config_dir;
            Some(
                crate::proto::stream::acceptor(&dir.join(c), &dir.join(k))
                    .await
                    .map_err(|e| StartError::Config(format!("TLS: {e}")))?,
            )
        }
        (None, None) => None,
        _ => return Err(StartError::Config("TLS: server.xml sets one of tlsCert and tlsKey without the other".into())),
    };
    // the coordinator log before any client: what an earlier run decided is owed from the start
    let xa_name = runtime.config.system.xa_log_name.clone().unwrap_or_else(|| format!("tmlog-{port}"));
    let xa = crate::xa::Coordinator::open(runtime.config.xa_log_dir(), xa_name)
        .await
        .map_err(|e| StartError::Config(format!("XA coordinator log: {e}")))?;
    let shared = Shared::new(runtime, backend_version.as_deref(), tls, xa.clone());
    let rsh = shared.clone();
    tokio::spawn(crate::xa::recover::run(xa, std::sync::Arc::new(move || rsh.rt().backends.clone())));
    shared.cache.follow(&shared.rt());
    shared.cdc.configure(shared.rt());
    crate::admin::announce(&shared);
    let msh = shared.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::admin::serve(manager, msh).await {
            tracing::error!(error = %e, "manager port: accept failed");
        }
    });
    let hsh = shared.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::admin::http::serve(http, hsh, prom).await {
            tracing::error!(error = %e, "HTTP port: accept failed");
        }
    });
    spawn_sighup(shared.clone());
    tracing::info!(
        addr = %local.map(|a| a.to_string()).unwrap_or(addr),
        version = %shared.server_version,
        manager = %manager_addr,
        http = %http_addr,
        "shardcat listening"
    );
    if opts.exit_on_stdin_eof {
        std::thread::spawn(|| {
            let mut buf = [0u8; 64];
            loop {
                match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                    Ok(0) | Err(_) => std::process::exit(0),
                    Ok(_) => {}
                }
            }
        });
    }
    let grace = std::time::Duration::from_millis(shared.rt().config.system.shutdown_timeout_ms);
    let serve = frontend::serve(listener, shared.clone());
    tokio::select! {
        r = serve => {
            if let Err(e) = r {
                tracing::error!(error = %e, "accept failed");
            }
        }
        _ = shutdown_signal() => {
            // no new clients; running statements finish (up to shutdownTimeout), open transactions
            // are rolled back by their sessions as they end
            tracing::info!(sessions = shared.session_count(), "shutting down: draining sessions");
            shared.drain(grace).await;
            tracing::info!(sessions = shared.session_count(), "shut down");
        }
    }
    Ok(())
}

/// SIGHUP reloads everything, as `reload @@config_all` on the manager port.
fn spawn_sighup(shared: std::sync::Arc<Shared>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reload @@config_all");
            let _ = crate::admin::reload::reload(&shared, crate::runtime::Scope::All).await;
        }
    });
    #[cfg(not(unix))]
    let _ = shared;
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
