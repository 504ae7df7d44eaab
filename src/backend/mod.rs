//! The backend side: connections to MariaDB servers (`conn`), pools per host (`pool`), dataHosts with
//! their writeHost/readHost choice (`datahost`), their health probes and failover (`heartbeat`), and
//! the map from each dataNode to its dataHost and physical database.

pub mod binlog;
pub mod conn;
pub mod datahost;
pub mod deadlock;
pub mod heartbeat;
pub mod pool;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
pub use conn::{BackendConn, SessionSync};
pub use datahost::{DataHostSet, Member};
pub use pool::{HostPool, Pooled};

use crate::registry::Health;

/// Where a dataNode's statements go.
#[derive(Clone)]
pub struct NodeTarget {
    pub name: Arc<str>,
    pub data_host: Arc<str>,
    pub database: Arc<str>,
    /// The dataHost: its current writeHost, and the hosts that may serve reads.
    pub host: Arc<DataHostSet>,
    /// Statements run on it (kept by name across reloads).
    pub meter: Arc<crate::stats::Meter>,
}

pub struct Backends {
    nodes: HashMap<String, NodeTarget>,
    /// Every dataHost.
    pub hosts: Vec<Arc<DataHostSet>>,
    /// Statements in flight inside transactions, for the distributed deadlock detector.
    pub deadlocks: Arc<deadlock::Deadlocks>,
    /// dnindex.properties, one writer for every dataHost of every generation.
    pub dnindex: Arc<datahost::DnIndex>,
}

impl Backends {
    pub fn build(cfg: &Config) -> Self {
        Self::next(cfg, None)
    }

    /// The backends of `cfg`; a dataHost configured exactly as in `previous` is the same one (its
    /// pools, heartbeats and current writeHost go on), the others are new.
    pub fn next(cfg: &Config, previous: Option<&Backends>) -> Self {
        let idle_check = Duration::from_millis(cfg.system.data_node_idle_check_period_ms.clamp(1000, 300_000) / 10);
        let dnindex = match previous {
            Some(p) => p.dnindex.clone(),
            None => datahost::DnIndex::open(cfg.config_dir.join("dnindex.properties")),
        };
        let member = |h: &crate::config::model::DataHost,
                      host: &str,
                      url: &str,
                      user: &str,
                      password: &str,
                      weight: u32,
                      tls: &Option<crate::config::model::HostTls>| {
            let pool = HostPool::new(
                conn::Endpoint {
                    addr: url.to_string(),
                    user: user.to_string(),
                    password: password.to_string(),
                    data_host: h.name.clone(),
                    host_name: host.to_string(),
                    max_con: h.max_con,
                    // a connector that cannot be built fails every connection with its reason
                    tls: tls.as_ref().map(|t| Arc::new(crate::proto::stream::connector(&t.ca_pem, url))),
                },
                h.max_con,
                h.min_con,
                idle_check,
            );
            Member { name: host.to_string(), pool, health: Arc::new(Health::default()), weight }
        };
        let mut hosts = Vec::new();
        for h in &cfg.data_hosts {
            let kept = previous.and_then(|p| {
                p.hosts.iter().find(|o| o.cfg.name == h.name && crate::config::diff::same_data_host(&o.cfg, h))
            });
            if let Some(o) = kept {
                hosts.push(o.clone());
                continue;
            }
            let writers: Vec<Member> = h
                .write_hosts
                .iter()
                .map(|w| member(h, &w.host, &w.url, &w.user, &w.password, w.weight, &w.tls))
                .collect();
            let readers: Vec<Vec<Member>> = h
                .write_hosts
                .iter()
                .map(|w| {
                    w.read_hosts
                        .iter()
                        .map(|r| member(h, &r.host, &r.url, &r.user, &r.password, r.weight, &r.tls))
                        .collect()
                })
                .collect();
            let current = dnindex.get(&h.name).unwrap_or(0);
            hosts.push(Arc::new(DataHostSet::new(h.clone(), writers, readers, current, Some(dnindex.clone()))));
        }
        let mut nodes = HashMap::new();
        for n in &cfg.data_nodes {
            if let Some(h) = hosts.iter().find(|h| h.cfg.name == n.data_host) {
                nodes.insert(
                    n.name.clone(),
                    NodeTarget {
                        name: n.name.as_str().into(),
                        data_host: n.data_host.as_str().into(),
                        database: n.database.as_str().into(),
                        host: h.clone(),
                        meter: previous
                            .and_then(|p| p.nodes.get(&n.name))
                            .map(|t| t.meter.clone())
                            .unwrap_or_else(|| Arc::new(crate::stats::Meter::datanode(&n.name))),
                    },
                );
            }
        }
        let deadlocks = previous.map(|p| p.deadlocks.clone()).unwrap_or_default();
        Backends { nodes, hosts, deadlocks, dnindex }
    }

    /// The dataHosts of `self` that `other` does not have (by identity: a changed one is another).
    pub fn hosts_not_in(&self, other: &Backends) -> Vec<Arc<DataHostSet>> {
        self.hosts.iter().filter(|h| !other.hosts.iter().any(|o| Arc::ptr_eq(h, o))).cloned().collect()
    }

    pub fn node(&self, name: &str) -> Result<&NodeTarget> {
        self.nodes.get(name).ok_or_else(|| Error::unsupported(format!("dataNode '{name}' is not configured")))
    }

    /// The dataNodes that live on a dataHost.
    pub fn nodes_of(&self, data_host: &str) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> =
            self.nodes.values().filter(|t| &*t.data_host == data_host).map(|t| t.name.clone()).collect();
        v.sort();
        v
    }

    /// Whether a dataNode's current writeHost is up (heartbeat and last connection attempt).
    pub fn node_alive(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|t| {
            let w = t.host.writer();
            w.health.alive() && !w.pool.is_down()
        })
    }

    /// Every pool: writeHosts and readHosts of every dataHost.
    pub fn pools(&self) -> impl Iterator<Item = &Arc<HostPool>> {
        self.hosts.iter().flat_map(|h| h.writers.iter().chain(h.readers.iter().flatten()).map(|m| &m.pool))
    }

    /// Opens minCon connections on every pool in the background.
    /// The handshake version of the first writeHost that answers (each tried for at most `wait`).
    pub async fn first_server_version(&self, wait: Duration) -> Option<String> {
        for h in &self.hosts {
            let pool = h.writer().pool.clone();
            let variant = conn::Variant { found_rows: false, deprecate_eof: true, extended_metadata: false };
            if let Ok(Ok(c)) = tokio::time::timeout(wait, pool.get(variant)).await {
                return Some(c.server_version.clone());
            }
        }
        None
    }

    pub fn warm_up(&self) {
        for p in self.pools() {
            let p = p.clone();
            tokio::spawn(async move { p.warm_up().await });
        }
    }
}
