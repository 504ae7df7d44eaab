//! The HTTP port (9067): `/metrics` (Prometheus text, counters then state read at scrape time), `/health`
//! (200 / 503), `/registry` (every dataHost's hosts as JSON), `/changes/{feed}` (the change queue as SSE).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::backend::datahost::{DataHostSet, Member};
use crate::frontend::Shared;

/// Installs the process's metrics recorder (once; `None` when one is installed already).
pub fn recorder() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &crate::stats::SECONDS_BUCKETS)
        .ok()?
        .install_recorder()
        .ok()?;
    crate::stats::describe();
    Some(handle)
}

#[derive(Clone)]
struct Http {
    shared: Arc<Shared>,
    prom: Option<PrometheusHandle>,
}

/// Serves the HTTP port until the listener fails.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, prom: Option<PrometheusHandle>) -> std::io::Result<()> {
    if let Some(p) = prom.clone() {
        // histograms keep their samples until upkeep folds them in
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                p.run_upkeep();
            }
        });
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/registry", get(registry))
        .route("/changes/{feed}", get(changes))
        .with_state(Http { shared, prom });
    axum::serve(listener, app).await
}

async fn metrics(State(h): State<Http>) -> Response {
    let mut text = h.prom.as_ref().map(|p| p.render()).unwrap_or_default();
    scrape_time(&h.shared, &mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn health(State(h): State<Http>) -> Response {
    let (code, body) = health_of(&h.shared);
    (code, body).into_response()
}

/// 200 while online with a dataNode reachable, 503 otherwise (the body says why).
fn health_of(shared: &Shared) -> (StatusCode, String) {
    if !shared.online.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "offline\n".into());
    }
    let rt = shared.rt();
    let nodes: Vec<&String> = rt.config.data_nodes.iter().map(|n| &n.name).collect();
    if nodes.is_empty() || nodes.iter().any(|n| rt.backends.node_alive(n)) {
        (StatusCode::OK, "ok\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no dataNode is reachable\n".into())
    }
}

async fn registry(State(h): State<Http>) -> Response {
    let rt = h.shared.rt();
    let hosts: Vec<serde_json::Value> = rt.backends.hosts.iter().map(|set| data_host_json(set)).collect();
    let body = serde_json::json!({ "online": h.shared.online.load(Ordering::Relaxed), "dataHosts": hosts });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `GET /changes/{feed}`: the feed as Server-Sent Events, each event's `id` its position token, so a
/// client reconnecting with `Last-Event-ID` (or `?from=token`) resumes after the last event it got;
/// without either it starts now. A reader that cannot go on ends the stream with an `error` event.
async fn changes(
    State(h): State<Http>,
    axum::extract::Path(name): axum::extract::Path<String>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let rt = h.shared.rt();
    let Some(feed) = rt.config.cdc.feed(&name).cloned() else {
        return (StatusCode::NOT_FOUND, format!("no feed '{name}' in cdc.xml\n")).into_response();
    };
    let query_from = uri.query().and_then(|q| {
        q.split('&').find_map(|kv| kv.strip_prefix("from=")).map(str::to_string).filter(|v| !v.is_empty())
    });
    let from = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string).or(query_from);
    let token = match from.as_deref().map(crate::cdc::position::Token::decode) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let stream = match crate::cdc::feed::Stream::open(&rt, &feed, token, false).await {
        Ok(s) => s,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    };
    let format = feed.format;
    let events = futures_util::stream::unfold(Some(stream), move |s| async move {
        let mut s = s?;
        match s.next().await {
            Some(Ok(out)) => {
                let token = out.token.encode();
                let data = String::from_utf8_lossy(&out.change.render(format, &token)).into_owned();
                Some((Ok::<_, std::convert::Infallible>(Event::default().id(token).data(data)), Some(s)))
            }
            Some(Err(e)) => Some((Ok(Event::default().event("error").data(e.to_string())), None)),
            None => None,
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// Every host of a dataHost with its role (writeHost/readHost), index and health.
fn members(set: &DataHostSet) -> Vec<(&Member, &'static str, usize)> {
    let mut out = Vec::new();
    for (i, w) in set.writers.iter().enumerate() {
        out.push((w, "writeHost", i));
        for r in set.readers.get(i).into_iter().flatten() {
            out.push((r, "readHost", i));
        }
    }
    out
}

fn state(m: &Member) -> &'static str {
    let f = m.health.facts.read();
    if f.fenced {
        "fenced"
    } else if f.alive && !m.pool.is_down() {
        "up"
    } else {
        "down"
    }
}

fn data_host_json(set: &DataHostSet) -> serde_json::Value {
    let current = set.current_index();
    let hosts: Vec<serde_json::Value> = members(set)
        .into_iter()
        .map(|(m, role, i)| {
            let f = m.health.snapshot();
            serde_json::json!({
                "name": m.name,
                "url": m.pool.endpoint.addr,
                "role": role,
                "writeHostIndex": i,
                "current": role == "writeHost" && i == current,
                "health": state(m),
                "failures": f.failures,
                "readOnly": f.read_only,
                "replicating": f.replicating,
                "lagSeconds": f.lag,
                "lastError": f.last_error,
                "gtid": f.gtid,
                "lastProbeMs": f.probe_ms,
                "pool": {
                    "active": m.pool.in_use(),
                    "idle": m.pool.idle_count(),
                    "waiting": m.pool.waiting(),
                    "maxCon": m.pool.max_con,
                },
            })
        })
        .collect();
    serde_json::json!({
        "name": set.cfg.name,
        "balance": set.cfg.balance,
        "switchType": set.cfg.switch_type,
        "currentWriteHost": set.writers.get(current).map(|w| w.name.as_str()),
        "heartbeatPaused": set.heartbeat_paused().is_some(),
        "hosts": hosts,
    })
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One gauge family: its HELP and TYPE lines, then one sample per (labels, value).
fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// What is read at scrape time rather than counted: sessions, and per host its pool, heartbeat and
/// replication lag (hosts of the current configuration only, so a reload never leaves stale ones).
fn scrape_time(shared: &Shared, out: &mut String) {
    let rt = shared.rt();
    gauge(out, "shardcat_sessions", "Client sessions connected", &[(String::new(), shared.session_count() as f64)]);
    let online = shared.online.load(Ordering::Relaxed) as u8 as f64;
    gauge(out, "shardcat_online", "1 when online, 0 after offline on the manager port", &[(String::new(), online)]);
    let uptime = shared.started.elapsed().as_secs_f64();
    gauge(out, "shardcat_uptime_seconds", "Seconds since the proxy started", &[(String::new(), uptime)]);
    let (mut active, mut idle, mut waiting, mut up, mut lag, mut current) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for set in &rt.backends.hosts {
        let cur = set.current_index();
        for (m, role, i) in members(set) {
            let l = format!("datahost=\"{}\",host=\"{}\",role=\"{role}\"", label(&set.cfg.name), label(&m.name));
            active.push((l.clone(), m.pool.in_use() as f64));
            idle.push((l.clone(), m.pool.idle_count() as f64));
            waiting.push((l.clone(), m.pool.waiting() as f64));
            up.push((l.clone(), if state(m) == "up" { 1.0 } else { 0.0 }));
            if let Some(s) = m.health.facts.read().lag {
                lag.push((l.clone(), s as f64));
            }
            if role == "writeHost" {
                current.push((l, if i == cur { 1.0 } else { 0.0 }));
            }
        }
    }
    gauge(out, "shardcat_pool_active_connections", "Backend connections lent out", &active);
    gauge(out, "shardcat_pool_idle_connections", "Backend connections idle in the pool", &idle);
    gauge(out, "shardcat_pool_waiting_sessions", "Sessions waiting for a backend connection", &waiting);
    gauge(out, "shardcat_host_up", "1 when the heartbeat finds the host up (0: down or fenced)", &up);
    gauge(out, "shardcat_replication_lag_seconds", "Seconds_Behind_Master of a replicating host", &lag);
    gauge(out, "shardcat_current_write_host", "1 for the writeHost a dataHost writes to", &current);
    let (mut streaming, mut behind) = (Vec::new(), Vec::new());
    let now = std::time::Instant::now();
    for set in &rt.backends.hosts {
        let f = set.binlog.snapshot();
        if f.state == crate::registry::binlog::State::Off {
            continue;
        }
        let l = format!("datahost=\"{}\"", label(&set.cfg.name));
        let up = f.state == crate::registry::binlog::State::Streaming;
        streaming.push((l.clone(), if up { 1.0 } else { 0.0 }));
        if let Some(lag) = set.binlog.lag(now, crate::backend::binlog::POLL_STALE) {
            behind.push((l, lag.as_secs_f64()));
        }
    }
    let (entries, bytes) = shared.cache.store.usage();
    gauge(out, "shardcat_cache_entries", "Replies held by the result cache", &[(String::new(), entries as f64)]);
    gauge(out, "shardcat_cache_bytes", "Bytes held by the result cache", &[(String::new(), bytes as f64)]);
    gauge(out, "shardcat_binlog_streaming", "1 while a dataHost's binlog reader streams", &streaming);
    gauge(out, "shardcat_binlog_lag_seconds", "How far a dataHost's binlog reader is known to be behind", &behind);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_gauge_family_has_help_type_and_samples() {
        let mut s = String::new();
        gauge(&mut s, "x_y", "what", &[(String::new(), 2.0), ("a=\"b\"".into(), 1.5)]);
        assert_eq!(s, "# HELP x_y what\n# TYPE x_y gauge\nx_y 2\nx_y{a=\"b\"} 1.5\n");
    }
}
