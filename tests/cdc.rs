//! The change queue against the real brokers: writes through the proxy and directly on the shards, on
//! sharded, ER and global tables, arrive in NATS JetStream, RabbitMQ and Redis exactly as committed.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use mysql_async::prelude::*;
use serde_json::Value as Json;

/// Shards of the fixture: dataNode → (port, database).
const NODES: [(&str, u16, &str); 4] =
    [("sdn1", 3307, "sc_a"), ("sdn2", 3307, "sc_b"), ("sdn3", 3309, "sc_a"), ("sdn4", 3309, "sc_b")];

/// The sharding fixture plus a schema `tag` (sharded `tag`_customer, its ER child `tag`_orders, global
/// `tag`_region, all on sdn1-4: each test's tables are its own) and a cdc.xml of the given sinks and feeds.
fn conf(tag: &str, cdc_xml: &str) -> tempfile::TempDir {
    let conf = fixture_copy("sharding");
    let dir = conf.path();
    let schema = std::fs::read_to_string(dir.join("schema.xml")).unwrap().replacen(
        "<schema name=\"limited\"",
        &format!(
            "<schema name=\"{tag}\">\n\
             <table name=\"{tag}_customer\" primaryKey=\"id\" dataNode=\"sdn$1-4\" rule=\"mod4\">\n\
             <childTable name=\"{tag}_orders\" primaryKey=\"id\" joinKey=\"customer_id\" parentKey=\"id\"/>\n\
             </table>\n\
             <table name=\"{tag}_region\" primaryKey=\"id\" type=\"global\" dataNode=\"sdn$1-4\"/>\n\
             </schema>\n<schema name=\"limited\""
        ),
        1,
    );
    std::fs::write(dir.join("schema.xml"), schema).unwrap();
    let server = std::fs::read_to_string(dir.join("server.xml"))
        .unwrap()
        .replace("<property name=\"schemas\">shard,limited</property>", &format!("<property name=\"schemas\">shard,limited,{tag}</property>"))
        .replace("</mycat:server>", "<user name=\"admin\"><property name=\"password\">admin</property><property name=\"manager\">true</property></user>\n</mycat:server>")
        .replace("<system>", &format!("<system>\n\t\t<property name=\"stateDir\">{}</property>", dir.join("state").display()));
    std::fs::write(dir.join("server.xml"), server).unwrap();
    std::fs::write(dir.join("cdc.xml"), cdc_xml).unwrap();
    conf
}

fn start(dir: &Path) -> Proxy {
    stack();
    for port in [3307, 3309] {
        root_sql(port, "CREATE DATABASE IF NOT EXISTS sc_a; CREATE DATABASE IF NOT EXISTS sc_b").unwrap();
    }
    Proxy::start(dir, Some(dir))
}

async fn app(p: &Proxy, db: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(p.port, "app", "app", Some(db))).await.expect("connect through shardcat")
}

/// The test's tables made afresh.
async fn tables(c: &mut mysql_async::Conn, t: &str) {
    for sql in [
        format!("DROP TABLE IF EXISTS {t}_orders"),
        format!("DROP TABLE IF EXISTS {t}_customer"),
        format!("DROP TABLE IF EXISTS {t}_region"),
        format!("CREATE TABLE {t}_customer (id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2), created DATETIME, note TEXT)"),
        format!("CREATE TABLE {t}_orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(10,2))"),
        format!("CREATE TABLE {t}_region (id INT PRIMARY KEY, name VARCHAR(20))"),
    ] {
        exec(c, &sql).await;
    }
}

/// The feed's state rebuilt from its events: (dataNode, logical table, key) → row.
type State = BTreeMap<(String, String, String), Json>;

fn apply(state: &mut State, ev: &Json) {
    let src = &ev["source"];
    let node = src["dataNode"].as_str().unwrap_or_default().to_string();
    let table = src["table"].as_str().unwrap_or_default().to_string();
    let key = ev["key"].to_string();
    match ev["op"].as_str() {
        Some("c") | Some("r") | Some("u") => {
            if ev["op"] == "u" {
                // the key may change: the before image's key goes
                if let Some(b) = ev["before"].as_object() {
                    let old: serde_json::Map<String, Json> =
                        ev["key"].as_object().into_iter().flatten().map(|(k, _)| (k.clone(), b[k].clone())).collect();
                    state.remove(&(node.clone(), table.clone(), Json::Object(old).to_string()));
                }
            }
            state.insert((node, table, key), ev["after"].clone());
        }
        Some("d") => {
            state.remove(&(node, table, key));
        }
        Some("t") => state.retain(|(n, t, _), _| !(n == &node && t == &table)),
        _ => {}
    }
}

/// What every shard holds of the feed's tables, as the events write rows (the global table: its first
/// node only, which speaks for it).
async fn shards(t: &str) -> State {
    let mut state = State::new();
    for (node, port, db) in NODES {
        let mut c = direct_conn(port, db).await;
        let mut selects = vec![
            (
                format!("{t}_customer"),
                format!("SELECT id, JSON_OBJECT('id', id, 'name', name, 'amount', CAST(amount AS CHAR), 'created', DATE_FORMAT(created, '%Y-%m-%dT%H:%i:%s'), 'note', note) FROM {t}_customer"),
            ),
            (format!("{t}_orders"), format!("SELECT id, JSON_OBJECT('id', id, 'customer_id', customer_id, 'total', CAST(total AS CHAR)) FROM {t}_orders")),
        ];
        if node == "sdn1" {
            selects.push((
                format!("{t}_region"),
                format!("SELECT id, JSON_OBJECT('id', id, 'name', name) FROM {t}_region"),
            ));
        }
        for (table, sql) in selects {
            let rows: Vec<(i64, String)> = c.query(sql).await.unwrap();
            for (id, j) in rows {
                let v: Json = serde_json::from_str(&j).unwrap();
                state.insert((node.to_string(), table.clone(), serde_json::json!({ "id": id }).to_string()), v);
            }
        }
    }
    state
}

/// Writes through the proxy and directly on the shards; returns how many row changes were committed
/// on the feed's tables (rolled back ones excluded).
async fn workload(p: &Proxy, schema: &str, t: &str) -> usize {
    let mut c = app(p, schema).await;
    let mut n = 0;
    for id in 1..=12 {
        exec(&mut c, &format!("INSERT INTO {t}_customer (id, name, amount, created, note) VALUES ({id}, 'c{id}', {id}.25, '2026-12-0{} 10:00:0{}', NULL)", id % 9 + 1, id % 10)).await;
        n += 1;
    }
    exec(&mut c, &format!("INSERT INTO {t}_orders (id, customer_id, total) VALUES (100, 1, 9.99), (101, 2, 19.99), (102, 3, 0.01), (103, 1, 5.00)")).await;
    n += 4;
    // a global table: one logical change per row
    exec(&mut c, &format!("INSERT INTO {t}_region (id, name) VALUES (1, 'north'), (2, 'south')")).await;
    n += 2;
    exec(&mut c, &format!("UPDATE {t}_customer SET name = CONCAT(name, '-x'), note = 'é 🙂' WHERE id IN (2, 5, 7)"))
        .await;
    n += 3;
    exec(&mut c, &format!("DELETE FROM {t}_customer WHERE id = 4")).await;
    n += 1;
    // a transaction over shards, committed; and one rolled back
    exec(&mut c, "BEGIN").await;
    exec(&mut c, &format!("UPDATE {t}_orders SET total = total + 1 WHERE customer_id = 1")).await;
    exec(&mut c, &format!("INSERT INTO {t}_customer (id, name, amount, created, note) VALUES (20, 'tx', 1, NULL, 'in a transaction'), (21, 'tx', 2, NULL, NULL)")).await;
    exec(&mut c, "COMMIT").await;
    n += 4;
    exec(&mut c, "BEGIN").await;
    exec(
        &mut c,
        &format!("INSERT INTO {t}_customer (id, name, amount, created, note) VALUES (30, 'gone', 0, NULL, NULL)"),
    )
    .await;
    exec(&mut c, &format!("UPDATE {t}_region SET name = 'never' WHERE id = 1")).await;
    exec(&mut c, "ROLLBACK").await;
    exec(&mut c, &format!("UPDATE {t}_region SET name = 'north-2' WHERE id = 1")).await;
    n += 1;
    // directly on the shards, bypassing the proxy: id 40 is sdn1's (40 % 4 = 0), 43 is sdn4's
    let mut d1 = direct_conn(3307, "sc_a").await;
    exec(&mut d1, &format!("INSERT INTO {t}_customer (id, name, amount, created, note) VALUES (40, 'direct', 4.5, '2026-01-01 00:00:00', 'bypass')")).await;
    exec(&mut d1, &format!("UPDATE {t}_customer SET amount = 99.99 WHERE id = 8")).await;
    let mut d4 = direct_conn(3309, "sc_b").await;
    exec(
        &mut d4,
        &format!("INSERT INTO {t}_customer (id, name, amount, created, note) VALUES (43, 'direct', 4.75, NULL, NULL)"),
    )
    .await;
    exec(&mut d4, &format!("DELETE FROM {t}_orders WHERE id = 102")).await;
    n += 4;
    n
}

fn cdc_row(p: &Proxy, feed: &str) -> Vec<String> {
    manager_rows(p, "show @@cdc").into_iter().find(|r| r.first().map(String::as_str) == Some(feed)).unwrap_or_default()
}

fn wait_streaming(p: &Proxy, feed: &str) {
    let t0 = Instant::now();
    loop {
        let row = cdc_row(p, feed);
        if row.get(2).map(String::as_str) == Some("streaming") {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "feed {feed} not streaming: {row:?}\n{}", p.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Events of the feed's row changes (DDL left out), de-duplicated by id, in arrival order.
fn changes(events: &[Json]) -> Vec<Json> {
    let mut seen = HashSet::new();
    events.iter().filter(|e| e["op"] != "ddl" && seen.insert(e["id"].to_string())).cloned().collect()
}

fn check(events: &[Json], expect_rows: usize, shards: &State, what: &str) {
    let rows = changes(events);
    let mut state = State::new();
    for e in &rows {
        apply(&mut state, e);
    }
    assert_eq!(rows.len(), expect_rows, "{what}: row changes received");
    let a: Vec<_> = state.iter().collect();
    let b: Vec<_> = shards.iter().collect();
    assert_eq!(a, b, "{what}: the events rebuild exactly what the shards hold");
    // ids are {dataHost}:{gtid}:{row}
    for e in &rows {
        let id = e["id"].as_str().unwrap();
        assert_eq!(id.split(':').count(), 3, "{id}");
        assert!(id.starts_with(e["source"]["dataHost"].as_str().unwrap()), "{id}");
    }
}

async fn nats_events(stream: &str, want: usize) -> Vec<Json> {
    let client = async_nats::connect("nats://127.0.0.1:4222").await.expect("NATS on 4222");
    let js = async_nats::jetstream::new(client);
    let t0 = Instant::now();
    loop {
        let s = js.get_stream(stream).await;
        if let Ok(mut s) = s {
            let messages = s.info().await.unwrap().state.messages as usize;
            if messages >= want || t0.elapsed() > Duration::from_secs(20) {
                let consumer = s
                    .create_consumer(async_nats::jetstream::consumer::pull::Config {
                        ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let n = messages;
                let mut msgs =
                    consumer.fetch().max_messages(n.max(1)).expires(Duration::from_secs(2)).messages().await.unwrap();
                let mut out = Vec::new();
                while out.len() < n {
                    match tokio::time::timeout(Duration::from_secs(5), msgs.next()).await {
                        Ok(Some(Ok(m))) => {
                            let v: Json = serde_json::from_slice(&m.payload).unwrap();
                            assert_eq!(
                                m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_string()),
                                v["id"].as_str().map(str::to_string),
                                "Nats-Msg-Id is the event's id"
                            );
                            out.push(v);
                        }
                        _ => break,
                    }
                }
                return out;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no NATS stream {stream}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_the_proxy_and_on_the_shards_arrive_in_nats_as_committed() {
    let tag = format!("cdcn{}", std::process::id());
    let stream = format!("SCTEST_{}", std::process::id());
    let xml = format!(
        "<cdc>\n<sink name=\"n\" type=\"nats\" url=\"nats://127.0.0.1:4222\" subject=\"{tag}.{{schema}}.{{table}}\" stream=\"{stream}\"/>\n\
         <feed name=\"f\" schema=\"{tag}\" tables=\"*\" sink=\"n\"/>\n</cdc>\n"
    );
    let dir = conf(&tag, &xml);
    let p = start(dir.path());
    let mut c = app(&p, &tag).await;
    tables(&mut c, &tag).await;
    wait_streaming(&p, "f");
    let n = workload(&p, &tag, &tag).await;
    let events = nats_events(&stream, n).await;
    check(&events, n, &shards(&tag).await, "NATS");
    // every change in order per key: the state check above fails otherwise; and the rows of one
    // transaction are consecutive per dataHost
    let row = cdc_row(&p, "f");
    assert_eq!(row.get(6).map(String::as_str), Some("0"), "no errors: {row:?}");
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(&stream).await;
}

/// The SSE endpoint: a client that reconnects with Last-Event-ID gets exactly the events after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_client_resumes_after_the_last_event_it_got() {
    let tag = format!("cdcs{}", std::process::id());
    let xml = format!("<cdc>\n<feed name=\"s\" schema=\"{tag}\" tables=\"{tag}_customer\"/>\n</cdc>\n");
    let dir = conf(&tag, &xml);
    let p = start(dir.path());
    let mut c = app(&p, &tag).await;
    tables(&mut c, &tag).await;
    let mut sse = Sse::open(p.http_port, "/changes/s", None).await;
    for id in 1..=6 {
        exec(&mut c, &format!("INSERT INTO {tag}_customer (id, name) VALUES ({id}, 'n{id}')")).await;
    }
    let first: Vec<(String, Json)> = sse.take(6).await;
    let id_of = |e: &Json| e["after"]["id"].as_i64().unwrap();
    let mut ids: Vec<i64> = first.iter().map(|(_, e)| id_of(e)).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6]);
    drop(sse);
    // resume after the third event: the events after it, then the rows written since — each
    // dataHost's in its commit order (the shards' streams interleave as they come)
    for id in 7..=8 {
        exec(&mut c, &format!("INSERT INTO {tag}_customer (id, name) VALUES ({id}, 'n{id}')")).await;
    }
    let mut again = Sse::open(p.http_port, "/changes/s", Some(&first[2].0)).await;
    let rest = again.take(5).await;
    let mut expect: Vec<String> = first[3..].iter().map(|(_, e)| e["id"].to_string()).collect();
    let mut got: Vec<String> = rest.iter().filter(|(_, e)| id_of(e) <= 6).map(|(_, e)| e["id"].to_string()).collect();
    let mut new: Vec<i64> = rest.iter().map(|(_, e)| id_of(e)).filter(|i| *i > 6).collect();
    new.sort();
    assert_eq!(new, vec![7, 8], "the rows written since");
    expect.sort();
    got.sort();
    assert_eq!(got, expect, "exactly the events after the token, with the same ids");
    // each dataHost's rows in the order they were inserted, across the reconnect
    for host in ["sh1", "sh2"] {
        let seq: Vec<i64> = first[..3]
            .iter()
            .chain(rest.iter())
            .filter(|(_, e)| e["source"]["dataHost"] == host)
            .map(|(_, e)| id_of(e))
            .collect();
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "{host}: {seq:?}");
    }
    drop(again);
    // a token that is not one: 400, naming it
    let (status, body) = http_get(p.http_port, "/changes/s?from=garbage!").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = http_get(p.http_port, "/changes/nope").await;
    assert_eq!(status, 404);
}

/// A raw SSE reader over one HTTP connection.
struct Sse {
    r: tokio::io::BufReader<tokio::net::TcpStream>,
}

impl Sse {
    async fn open(port: u16, path: &str, last: Option<&str>) -> Sse {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let last = last.map(|l| format!("Last-Event-ID: {l}\r\n")).unwrap_or_default();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n{last}\r\n").as_bytes())
            .await
            .unwrap();
        let mut r = tokio::io::BufReader::new(s);
        // the status line and headers
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert!(line.contains(" 200 "), "{line}");
        loop {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Sse { r }
    }

    /// The next `n` events: (id, data).
    async fn take(&mut self, n: usize) -> Vec<(String, Json)> {
        use tokio::io::AsyncBufReadExt;
        let mut out = Vec::new();
        let (mut id, mut data) = (String::new(), String::new());
        let mut line = String::new();
        while out.len() < n {
            line.clear();
            let read = tokio::time::timeout(Duration::from_secs(20), self.r.read_line(&mut line)).await;
            assert!(matches!(read, Ok(Ok(k)) if k > 0), "the SSE stream ended after {} events", out.len());
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("id:") {
                id = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if l.is_empty() && !data.is_empty() {
                out.push((std::mem::take(&mut id), serde_json::from_str(&std::mem::take(&mut data)).unwrap()));
            }
        }
        out
    }
}
