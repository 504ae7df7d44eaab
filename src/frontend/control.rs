//! What other tasks may do to, and see of, a running session: KILL QUERY interrupts the statements it
//! runs on backends, KILL CONNECTION and a draining shutdown stop it between statements (never
//! mid-COMMIT), SHOW PROCESSLIST reads what it is doing.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::conn::{BackendConn, Endpoint, Variant};

/// How long an interruption may take (connect + `KILL QUERY`).
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct SessionControl {
    /// The backend threads of the statement being run (empty between statements and during COMMIT).
    running: Mutex<Vec<(Arc<Endpoint>, u32)>>,
    /// `KILL QUERY`s issued for the running statement: awaited before its connections are reused.
    kills: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The session is to end at its next chance (KILL CONNECTION, shutdown).
    stop: AtomicBool,
    /// Wakes a session waiting for its client's next command.
    pub wake: tokio::sync::Notify,
    /// What the session does, for SHOW PROCESSLIST.
    activity: Mutex<Activity>,
}

/// A session as SHOW PROCESSLIST shows it.
#[derive(Debug, Clone)]
pub struct Activity {
    pub user: String,
    pub host: String,
    pub db: Option<String>,
    /// The command being run (its packet: the statement's text is read only when shown), or none.
    pub command: Option<bytes::Bytes>,
    pub since: std::time::Instant,
    /// Wall-clock start of the session.
    pub connected: std::time::SystemTime,
    /// The session's state after its last command (the manager port's `show @@connection`).
    pub charset: String,
    pub autocommit: bool,
    pub isolation: String,
    pub net_in: u64,
    pub net_out: u64,
    /// dataNodes whose connections the session holds (transaction, state, cursor).
    pub held: Vec<String>,
    /// The service port the client connected to.
    pub local_port: u16,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            user: String::new(),
            host: String::new(),
            db: None,
            command: None,
            since: std::time::Instant::now(),
            connected: std::time::SystemTime::now(),
            charset: String::new(),
            autocommit: true,
            isolation: String::new(),
            net_in: 0,
            net_out: 0,
            held: Vec::new(),
            local_port: 0,
        }
    }
}

impl SessionControl {
    pub fn new() -> Arc<Self> {
        Arc::new(SessionControl::default())
    }

    /// A statement starts on these connections.
    pub fn start<'a>(&self, conns: impl Iterator<Item = &'a BackendConn>) {
        let mut r = self.running.lock();
        r.clear();
        r.extend(conns.map(|c| (c.endpoint.clone(), c.thread_id)));
    }

    /// The statement is over: after this, no interruption can reach its connections (an interruption
    /// already under way is waited for, so it cannot hit the connection's next statement).
    pub async fn finish(&self) {
        self.running.lock().clear();
        let kills = std::mem::take(&mut *self.kills.lock());
        for k in kills {
            let _ = tokio::time::timeout(KILL_TIMEOUT, k).await;
        }
    }

    /// KILL QUERY: interrupts the running statement on every backend it runs on (the client gets
    /// the server's 1317, as from MariaDB). Nothing happens between statements.
    pub fn interrupt(&self) {
        let running = self.running.lock();
        let mut kills = self.kills.lock();
        for (ep, thread) in running.iter() {
            let (ep, thread) = (ep.clone(), *thread);
            kills.push(tokio::spawn(async move {
                let r = async {
                    let mut c = BackendConn::connect(ep.clone(), Variant::default(), KILL_TIMEOUT).await?;
                    c.exec_simple(&format!("KILL QUERY {thread}")).await
                };
                match tokio::time::timeout(KILL_TIMEOUT, r).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(server = %ep.addr, thread, error = %e, "KILL QUERY failed"),
                    Err(_) => tracing::warn!(server = %ep.addr, thread, "KILL QUERY timed out"),
                }
            }));
        }
    }

    /// Asks the session to end once its current command is done (and at once when it is idle).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Who the session is (after login).
    pub fn identify(&self, user: &str, host: &str, db: Option<&str>) {
        let mut a = self.activity.lock();
        a.user = user.to_string();
        a.host = host.to_string();
        a.db = db.map(str::to_string);
    }

    pub fn set_db(&self, db: Option<&str>) {
        self.activity.lock().db = db.map(str::to_string);
    }

    /// A command starts (`Some(packet)`) or is over (`None`).
    pub fn doing(&self, command: Option<bytes::Bytes>) {
        let mut a = self.activity.lock();
        a.command = command;
        a.since = std::time::Instant::now();
    }

    /// The session records its state after a command.
    pub fn report(&self, f: impl FnOnce(&mut Activity)) {
        f(&mut self.activity.lock());
    }

    pub fn user(&self) -> String {
        self.activity.lock().user.clone()
    }

    pub fn activity(&self) -> Activity {
        self.activity.lock().clone()
    }
}
