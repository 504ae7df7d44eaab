//! A feed's stream: a reader per dataHost holding its tables, merged into one sequence of changes, each
//! with the position token after it (resuming from that token yields exactly the changes after it).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::event::Change;
use super::position::{HostPos, Token};
use super::reader::{self, Item, Scope, Target};
use crate::backend::binlog;
use crate::config::model::{Config, Feed, TableKind};
use crate::runtime::Runtime;

/// How many items the readers may hold ahead of the consumer: beyond it they stop reading the binlog
/// (back-pressure on the server's dump thread), so a paused consumer holds bounded memory.
const AHEAD: usize = 1024;

/// A change and the feed's position once it is given.
pub struct Out {
    pub change: Change,
    pub token: Token,
}

/// The feed's tables, per dataHost.
pub fn scopes(cfg: &Config, feed: &Feed) -> HashMap<String, Scope> {
    let mut out: HashMap<String, Scope> = HashMap::new();
    let Some(schema) = cfg.schema(&feed.schema) else { return out };
    for t in schema.all_tables() {
        if !feed.covers(&t.name) {
            continue;
        }
        // a global table's rows are the same on every node: its first node speaks for it
        let nodes: Vec<&String> = if matches!(t.kind, TableKind::Global) {
            t.data_nodes.iter().take(1).collect()
        } else {
            t.data_nodes.iter().collect()
        };
        for dn in nodes {
            let Some(node) = cfg.data_node(dn) else { continue };
            let target = Target { schema: schema.name.clone(), table: t.name.clone(), data_node: dn.clone() };
            out.entry(node.data_host.clone())
                .or_default()
                .tables
                .insert((node.database.to_ascii_lowercase(), t.name.to_ascii_lowercase()), target);
        }
    }
    if let Some(node) = schema.data_node.as_deref().and_then(|dn| cfg.data_node(dn)) {
        // a default node's tables not configured elsewhere belong to the schema
        let scope = out.entry(node.data_host.clone()).or_default();
        if feed.tables.is_none() {
            scope.any.insert(node.database.to_ascii_lowercase(), (schema.name.clone(), node.name.clone()));
        } else {
            for t in feed.tables.iter().flatten() {
                if schema.table(t).is_none() {
                    scope.tables.insert(
                        (node.database.to_ascii_lowercase(), t.to_ascii_lowercase()),
                        Target { schema: schema.name.clone(), table: t.clone(), data_node: node.name.clone() },
                    );
                }
            }
        }
    }
    out
}

/// The merged stream of a feed.
pub struct Stream {
    rx: mpsc::Receiver<Item>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    token: Token,
    /// dataHosts still reading their first snapshot.
    snapshotting: usize,
}

impl Drop for Stream {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("dataHost {data_host}: {why}")]
    Failed { data_host: String, why: String, fatal: bool },
    #[error("feed '{0}' names no table this configuration places anywhere")]
    Empty(String),
}

impl Stream {
    /// Starts reading `feed` from `from`; a dataHost the token does not know (or every one, without
    /// a token) starts where its server is now, asked before anything is read, so every token the
    /// stream gives names every dataHost.
    ///
    /// With `snapshot` (and no token: a feed's first start) each dataHost first gives its tables'
    /// current rows from a consistent snapshot, then its stream from that snapshot's position; the
    /// token names it once its snapshot is read (`snapshotting` counts the ones still reading).
    pub async fn open(rt: &Runtime, feed: &Feed, from: Option<Token>, snapshot: bool) -> Result<Stream, StreamError> {
        let scopes = scopes(&rt.config, feed);
        if scopes.is_empty() {
            return Err(StreamError::Empty(feed.name.clone()));
        }
        let (tx, rx) = mpsc::channel(AHEAD);
        let base_id = rt.config.system.binlog_server_id;
        if snapshot && from.is_none() {
            let mut readers = Vec::new();
            for (host, scope) in scopes {
                let Some(set) = rt.backends.hosts.iter().find(|h| h.cfg.name == host).cloned() else { continue };
                let tx = tx.clone();
                readers.push(tokio::spawn(async move {
                    let name: Arc<str> = set.cfg.name.as_str().into();
                    match super::snapshot::take(&set, &scope, &tx).await {
                        Ok(done) => {
                            let pos = HostPos { done, inside: None };
                            let done = Item::SnapshotDone { data_host: name, pos: pos.clone() };
                            if tx.send(done).await.is_ok() {
                                reader::run(set, Arc::new(scope), pos, base_id, tx).await;
                            }
                        }
                        Err(f) => {
                            let why = format!("snapshot: {}", f.reason());
                            let _ = tx.send(Item::Failed { data_host: name, why, fatal: false }).await;
                        }
                    }
                }));
            }
            let snapshotting = readers.len();
            return Ok(Stream { rx, readers, token: Token::default(), snapshotting });
        }
        let mut token = from.unwrap_or_default();
        let mut starts = Vec::new();
        for (host, scope) in scopes {
            let Some(set) = rt.backends.hosts.iter().find(|h| h.cfg.name == host).cloned() else { continue };
            let pos = match token.0.get(&host) {
                Some(p) => p.clone(),
                None => {
                    let done = binlog::server_position(&set).await.map_err(|why| StreamError::Failed {
                        data_host: host.clone(),
                        why,
                        fatal: false,
                    })?;
                    HostPos { done, inside: None }
                }
            };
            token.0.insert(host, pos.clone());
            starts.push((set, Arc::new(scope), pos));
        }
        let readers = starts
            .into_iter()
            .map(|(set, scope, pos)| tokio::spawn(reader::run(set, scope, pos, base_id, tx.clone())))
            .collect();
        Ok(Stream { rx, readers, token, snapshotting: 0 })
    }

    /// The next change, with the token after it.
    pub async fn next(&mut self) -> Option<Result<Out, StreamError>> {
        loop {
            let item = self.rx.recv().await?;
            match self.apply(item) {
                Ok(Some(out)) => return Some(Ok(out)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The token as it stands (after the last change or finished transaction given). While a
    /// snapshot is read it names only the dataHosts done with theirs: it is not a position to keep.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// dataHosts still reading their first snapshot.
    pub fn snapshotting(&self) -> usize {
        self.snapshotting
    }

    fn apply(&mut self, item: Item) -> Result<Option<Out>, StreamError> {
        match item {
            Item::Done { data_host, gtid } => {
                reader::advance(self.token.0.entry(data_host.to_string()).or_default(), gtid);
                Ok(None)
            }
            Item::Change { data_host, gtid, change } => {
                reader::inside(self.token.0.entry(data_host.to_string()).or_default(), gtid, change.source.row + 1);
                Ok(Some(Out { change: *change, token: self.token.clone() }))
            }
            Item::Snapshot { change } => Ok(Some(Out { change: *change, token: self.token.clone() })),
            Item::SnapshotDone { data_host, pos } => {
                self.token.0.insert(data_host.to_string(), pos);
                self.snapshotting = self.snapshotting.saturating_sub(1);
                Ok(None)
            }
            Item::Failed { data_host, why, fatal } => {
                Err(StreamError::Failed { data_host: data_host.to_string(), why, fatal })
            }
        }
    }
}
