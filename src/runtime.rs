//! The runtime snapshot a statement runs on — config, compiled rules, backends — and how the next one
//! is built from a reloaded config (dataHosts kept, started or retired); swapped whole, never in part.

use std::sync::Arc;
use std::time::SystemTime;

use crate::backend::{Backends, DataHostSet};
use crate::config::Config;
use crate::route::Rules;

/// One generation of the proxy's configuration, immutable once built. Sessions take it once per
/// statement (a transaction keeps the one it started on), so nothing ever sees half of two configs.
pub struct Runtime {
    pub config: Arc<Config>,
    pub rules: Arc<Rules>,
    pub backends: Arc<Backends>,
    /// When this generation was loaded.
    pub loaded: SystemTime,
    /// What merges learned of their shards' string keys (a reload starts it afresh).
    pub learned: Arc<crate::exec::learned::Learned>,
}

/// What a reload does to the dataHosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `reload @@config`: users, schemas, tables, rules; the dataHosts stay as they run.
    Config,
    /// `reload @@config_all`: the dataHosts too (unchanged ones are kept).
    All,
}

/// A built next generation, not yet swapped in.
pub struct Next {
    pub runtime: Runtime,
    /// dataHosts of the new generation that did not run before (their heartbeats must start).
    pub started: Vec<Arc<DataHostSet>>,
    /// dataHosts of the old generation the new one drops (to retire once it is swapped in).
    pub retired: Vec<Arc<DataHostSet>>,
}

impl Runtime {
    /// The first generation, at start.
    pub fn first(cfg: Config) -> Result<Runtime, String> {
        let rules = Rules::build(&cfg)?;
        let backends = Backends::build(&cfg);
        Ok(Runtime {
            config: Arc::new(cfg),
            rules: Arc::new(rules),
            backends: Arc::new(backends),
            loaded: SystemTime::now(),
            learned: Arc::default(),
        })
    }

    /// The generation after `self` for a newly loaded `cfg`. With `Scope::Config` the dataHosts of
    /// `self` are kept as they are (a dataNode naming a dataHost that does not run yet is refused:
    /// that needs `reload @@config_all`).
    pub fn next(&self, mut cfg: Config, scope: Scope) -> Result<Next, String> {
        if scope == Scope::Config {
            cfg.data_hosts = self.config.data_hosts.clone();
            if let Some(n) = cfg.data_nodes.iter().find(|n| cfg.data_host(&n.data_host).is_none()) {
                return Err(format!(
                    "dataNode {} names dataHost {}, which does not run yet: use reload @@config_all",
                    n.name, n.data_host
                ));
            }
        }
        let rules = Rules::build(&cfg)?;
        let backends = Backends::next(&cfg, Some(&self.backends));
        let started = backends.hosts_not_in(&self.backends);
        let retired = self.backends.hosts_not_in(&backends);
        let runtime = Runtime {
            config: Arc::new(cfg),
            rules: Arc::new(rules),
            backends: Arc::new(backends),
            loaded: SystemTime::now(),
            learned: Arc::default(),
        };
        Ok(Next { runtime, started, retired })
    }
}

/// When the last reload and rollback happened, and how many reloads were done and refused.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub reloaded: Option<SystemTime>,
    pub rolled_back: Option<SystemTime>,
    pub done: u64,
    pub refused: u64,
}
