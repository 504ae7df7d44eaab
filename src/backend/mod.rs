//! The backend side: connections to MariaDB servers (`conn`), pools per host (`pool`), and the map from
//! each dataNode to the pool and physical database that serve it.

pub mod conn;
pub mod pool;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
pub use conn::{BackendConn, SessionSync};
pub use pool::{HostPool, Pooled};

/// Where a dataNode's statements go.
#[derive(Clone)]
pub struct NodeTarget {
    pub name: Arc<str>,
    pub data_host: Arc<str>,
    pub database: Arc<str>,
    /// The current writeHost's pool (read/write splitting arrives with the HA work).
    pub writer: Arc<HostPool>,
}

pub struct Backends {
    nodes: HashMap<String, NodeTarget>,
    /// Every pool, writeHosts and readHosts, by dataHost.
    pub pools: Vec<(String, Arc<HostPool>)>,
}

impl Backends {
    pub fn build(cfg: &Config) -> Self {
        let idle_check = Duration::from_millis(cfg.system.data_node_idle_check_period_ms.clamp(1000, 300_000) / 10);
        let mut writers: HashMap<String, Arc<HostPool>> = HashMap::new();
        let mut pools = Vec::new();
        for h in &cfg.data_hosts {
            for (i, w) in h.write_hosts.iter().enumerate() {
                let pool = HostPool::new(
                    conn::Endpoint {
                        addr: w.url.clone(),
                        user: w.user.clone(),
                        password: w.password.clone(),
                        data_host: h.name.clone(),
                        host_name: w.host.clone(),
                    },
                    h.max_con,
                    h.min_con,
                    idle_check,
                );
                if i == 0 {
                    writers.insert(h.name.clone(), pool.clone());
                }
                pools.push((h.name.clone(), pool));
                for r in &w.read_hosts {
                    let pool = HostPool::new(
                        conn::Endpoint {
                            addr: r.url.clone(),
                            user: r.user.clone(),
                            password: r.password.clone(),
                            data_host: h.name.clone(),
                            host_name: r.host.clone(),
                        },
                        h.max_con,
                        h.min_con,
                        idle_check,
                    );
                    pools.push((h.name.clone(), pool));
                }
            }
        }
        let mut nodes = HashMap::new();
        for n in &cfg.data_nodes {
            if let Some(w) = writers.get(&n.data_host) {
                nodes.insert(
                    n.name.clone(),
                    NodeTarget {
                        name: n.name.as_str().into(),
                        data_host: n.data_host.as_str().into(),
                        database: n.database.as_str().into(),
                        writer: w.clone(),
                    },
                );
            }
        }
        Backends { nodes, pools }
    }

    pub fn node(&self, name: &str) -> Result<&NodeTarget> {
        self.nodes.get(name).ok_or_else(|| Error::unsupported(format!("dataNode '{name}' is not configured")))
    }

    /// Whether a dataNode's host answered the last connection attempt.
    pub fn node_alive(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|t| !t.writer.is_down())
    }

    /// Opens minCon connections on every pool in the background.
    pub fn warm_up(&self) {
        for (_, p) in &self.pools {
            let p = p.clone();
            tokio::spawn(async move { p.warm_up().await });
        }
    }
}
