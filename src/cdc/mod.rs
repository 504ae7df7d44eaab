//! The change queue, beside the trip: for each cdc.xml feed with a sink, its stream published in order,
//! the position moved and persisted only after the broker acknowledged; stats for `show @@cdc`.

pub mod decode;
pub mod event;
pub mod feed;
pub mod position;
pub mod reader;
pub mod sink;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use parking_lot::Mutex;

use crate::config::model::Feed;
use crate::runtime::Runtime;
use feed::Stream;
use position::Token;
use sink::{Addressed, Publisher};

/// Events sent and not yet acknowledged, at most.
const IN_FLIGHT: usize = 512;
/// How often an acknowledged position is written to the state dir.
const PERSIST_EVERY: Duration = Duration::from_millis(200);

/// What `show @@cdc` and the metrics say of one feed.
#[derive(Default)]
pub struct FeedStats {
    pub sink: String,
    pub state: Mutex<&'static str>,
    /// The acknowledged position (its token).
    pub position: Mutex<String>,
    pub last_error: Mutex<String>,
    pub events: AtomicU64,
    pub errors: AtomicU64,
    /// Commit on the server → acknowledged, for the last event (ms; the binlog's timestamps are seconds).
    pub lag_ms: AtomicU64,
}

struct Running {
    stats: Arc<FeedStats>,
    task: tokio::task::JoinHandle<()>,
}

/// The feeds that publish to a sink, as the current configuration names them.
#[derive(Default)]
pub struct Cdc {
    feeds: Mutex<HashMap<String, Running>>,
}

impl Cdc {
    pub fn new() -> Arc<Cdc> {
        Arc::new(Cdc::default())
    }

    /// Starts the feeds of `rt` (at start, after every reload): each running feed stops, and every feed
    /// with a sink starts again from its persisted position — what was sent and not acknowledged is
    /// sent again, and the brokers' de-duplication by id drops it.
    pub fn configure(&self, rt: Arc<Runtime>) {
        let mut feeds = self.feeds.lock();
        for (_, r) in feeds.drain() {
            r.task.abort();
        }
        for f in &rt.config.cdc.feeds {
            let Some(sink) = f.sink.as_deref().and_then(|s| rt.config.cdc.sink(s)).cloned() else { continue };
            let stats = Arc::new(FeedStats { sink: sink.name.clone(), ..Default::default() });
            *stats.state.lock() = "starting";
            let task = tokio::spawn(run(rt.clone(), f.clone(), sink.kind.clone(), stats.clone()));
            feeds.insert(f.name.clone(), Running { stats, task });
        }
    }

    /// Every feed of the configuration: name, sink, state, position, lag_ms, events, errors, last error.
    pub fn rows(&self, rt: &Runtime) -> Vec<Vec<String>> {
        let feeds = self.feeds.lock();
        rt.config
            .cdc
            .feeds
            .iter()
            .map(|f| match feeds.get(&f.name) {
                Some(r) => {
                    let s = &r.stats;
                    vec![
                        f.name.clone(),
                        s.sink.clone(),
                        s.state.lock().to_string(),
                        s.position.lock().clone(),
                        s.lag_ms.load(Ordering::Relaxed).to_string(),
                        s.events.load(Ordering::Relaxed).to_string(),
                        s.errors.load(Ordering::Relaxed).to_string(),
                        s.last_error.lock().clone(),
                    ]
                }
                None => vec![
                    f.name.clone(),
                    String::new(),
                    "endpoint".into(),
                    String::new(),
                    "0".into(),
                    "0".into(),
                    "0".into(),
                    String::new(),
                ],
            })
            .collect()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A feed's life: connect, stream, publish, persist; after any failure, again from the persisted
/// position (a purged binlog or missing GTID stops it until the next reload).
async fn run(rt: Arc<Runtime>, feed: Feed, kind: crate::config::model::SinkKind, stats: Arc<FeedStats>) {
    let path = position::file(&rt.config.state_dir(), &feed.name);
    let mut backoff = Duration::from_millis(200);
    loop {
        let began = std::time::Instant::now();
        let outcome = once(&rt, &feed, &kind, &path, &stats).await;
        if began.elapsed() > Duration::from_secs(30) {
            // it ran a while: this failure is a new one, retried soon
            backoff = Duration::from_millis(200);
        }
        let Err((why, fatal)) = outcome else { return };
        stats.errors.fetch_add(1, Ordering::Relaxed);
        crate::stats::cdc_error(&feed.name);
        *stats.last_error.lock() = why.clone();
        if fatal {
            *stats.state.lock() = "stopped";
            tracing::error!(feed = %feed.name, error = %why, "change queue stopped: it cannot go on without skipping changes");
            return;
        }
        *stats.state.lock() = "retrying";
        tracing::warn!(feed = %feed.name, error = %why, "change queue paused; retrying from the acknowledged position");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One connection's worth of a feed. `Err((why, fatal))`.
async fn once(
    rt: &Arc<Runtime>,
    feed: &Feed,
    kind: &crate::config::model::SinkKind,
    path: &std::path::Path,
    stats: &FeedStats,
) -> Result<(), (String, bool)> {
    let from = position::load(path).await.map_err(|e| (e, true))?;
    let mut publisher = Publisher::connect(kind).await.map_err(|e| (e, false))?;
    let mut stream = Stream::open(rt, feed, from.clone(), feed.snapshot).await.map_err(|e| (e.to_string(), false))?;
    let mut acked: Token = stream.token().clone();
    // a new feed starts now (or at its snapshot's position): a restart goes on from there, not from a
    // later now; a feed stopped while reading its snapshot has no position and takes it again
    let mut unsaved = from.is_none();
    if unsaved && stream.snapshotting() == 0 {
        position::store(path, &acked).await.map_err(|e| (format!("{}: {e}", path.display()), false))?;
        unsaved = false;
    }
    *stats.position.lock() = acked.encode();
    *stats.state.lock() = "streaming";
    // the position is written off the publishing path: an fsync under load takes tens of ms, and the
    // events would wait for it
    let (keep, kept) = tokio::sync::watch::channel(None::<Token>);
    let persister = tokio::spawn(persist(path.to_path_buf(), kept));
    let mut inflight = FuturesOrdered::new();
    let mut dirty = false;
    let mut tick = tokio::time::interval(PERSIST_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            next = stream.next(), if inflight.len() < IN_FLIGHT => {
                let out = match next {
                    None => break Err(("the binlog readers ended".to_string(), false)),
                    Some(Err(e)) => break Err((e.to_string(), matches!(e, feed::StreamError::Failed { fatal: true, .. }))),
                    Some(Ok(out)) => out,
                };
                let token = out.token;
                let id = out.change.id();
                let payload = out.change.render(feed.format, &token.encode());
                let (ts, snapshot) = (out.change.source.ts_ms, out.change.source.snapshot);
                let ev = Addressed { schema: &out.change.source.schema, table: &out.change.source.table, id: &id, payload };
                match publisher.send(ev).await {
                    Ok(ack) => inflight.push_back(async move { ack.await.map(|_| (token, ts, snapshot)) }),
                    Err(e) => break Err((e, false)),
                }
            }
            Some(done) = inflight.next() => {
                match done {
                    Ok((token, ts, snapshot)) => {
                        // until a first position is kept (a snapshot still being read or acknowledged),
                        // an event's token may lack a dataHost: it is not one to keep
                        if !unsaved {
                            acked = token;
                            dirty = true;
                        }
                        stats.events.fetch_add(1, Ordering::Relaxed);
                        crate::stats::cdc_event(&feed.name);
                        if !snapshot {
                            let lag = now_ms().saturating_sub(ts);
                            stats.lag_ms.store(lag, Ordering::Relaxed);
                            crate::stats::cdc_lag(&feed.name, lag);
                        }
                    }
                    Err(e) => break Err((e, false)),
                }
            }
            _ = tick.tick() => {
                if stream.snapshotting() > 0 {
                    // no position until every snapshot is read and acknowledged
                    continue;
                }
                // nothing in flight: every change read is acknowledged, and the transactions read since
                // (of other tables) are done too
                if inflight.is_empty() && (*stream.token() != acked || unsaved) {
                    unsaved = false;
                    acked = stream.token().clone();
                    dirty = true;
                }
                if dirty {
                    if persister.is_finished() {
                        break Err((format!("{}: the position cannot be written", path.display()), false));
                    }
                    keep.send_replace(Some(acked.clone()));
                    *stats.position.lock() = acked.encode();
                    dirty = false;
                }
            }
        }
    };
    if dirty {
        keep.send_replace(Some(acked.clone()));
        *stats.position.lock() = acked.encode();
    }
    // the last position written before the feed starts again
    drop(keep);
    match persister.await {
        Ok(Err(e)) if result.is_ok() => Err((e, false)),
        _ => result,
    }
}

/// Writes the newest position it is given, one write at a time, until the sender goes (then the last
/// one given is written); stops at the first write that fails.
async fn persist(
    path: std::path::PathBuf,
    mut kept: tokio::sync::watch::Receiver<Option<Token>>,
) -> Result<(), String> {
    loop {
        let more = kept.changed().await.is_ok();
        let token = kept.borrow_and_update().clone();
        if let Some(t) = token {
            position::store(&path, &t).await.map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if !more {
            return Ok(());
        }
    }
}
