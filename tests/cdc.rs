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
    // XA directly on a shard (MariaDB logs the rows at XA PREPARE, the outcome later): one prepared
    // then rolled back never happened — no event; one prepared then committed, with another write
    // logged between its prepare and its commit — both given
    for sql in [
        format!("XA START '{t}-rb'"),
        format!("INSERT INTO {t}_customer (id, name, amount, created, note) VALUES (44, 'xa', 1, NULL, 'rolled back')"),
        format!("XA END '{t}-rb'"),
        format!("XA PREPARE '{t}-rb'"),
        format!("XA ROLLBACK '{t}-rb'"),
        format!("XA START '{t}-c'"),
        format!("INSERT INTO {t}_customer (id, name, amount, created, note) VALUES (48, 'xa', 2, NULL, 'committed')"),
        format!("XA END '{t}-c'"),
        format!("XA PREPARE '{t}-c'"),
    ] {
        exec(&mut d1, &sql).await;
    }
    let mut between = direct_conn(3307, "sc_a").await;
    exec(
        &mut between,
        &format!("INSERT INTO {t}_customer (id, name, amount, created, note) VALUES (52, 'between', 3, NULL, NULL)"),
    )
    .await;
    exec(&mut d1, &format!("XA COMMIT '{t}-c'")).await;
    n += 2;
    // TRUNCATE through the proxy: one `t` event per node the table is on
    exec(&mut c, &format!("INSERT INTO {t}_orders (id, customer_id, total) VALUES (200, 5, 1.00)")).await;
    exec(&mut c, &format!("TRUNCATE TABLE {t}_orders")).await;
    exec(&mut c, &format!("INSERT INTO {t}_orders (id, customer_id, total) VALUES (201, 6, 2.00)")).await;
    n += 1 + 4 + 1;
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

/// Every message of a JetStream stream, in stream order.
async fn nats_all(js: &async_nats::jetstream::Context, stream: &str) -> Option<Vec<Json>> {
    let msgs = jetstream_messages(js, stream).await?;
    let mut out = Vec::new();
    for (id, payload) in msgs {
        let v: Json = serde_json::from_slice(&payload).unwrap();
        assert_eq!(id, v["id"].as_str().map(str::to_string), "Nats-Msg-Id is the event's id");
        out.push(v);
    }
    Some(out)
}

/// The stream's messages once `enough` says so (or after 30 s, as they are then).
async fn nats_events(stream: &str, enough: impl Fn(&[Json]) -> bool) -> Vec<Json> {
    let client = async_nats::connect("nats://127.0.0.1:4222").await.expect("NATS on 4222");
    let js = async_nats::jetstream::new(client);
    let t0 = Instant::now();
    loop {
        let events = nats_all(&js, stream).await.unwrap_or_default();
        if enough(&events) || t0.elapsed() > Duration::from_secs(30) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
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
    let events = nats_events(&stream, |e| changes(e).len() >= n).await;
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

/// The same changes through RabbitMQ (a queue bound to the feed's exchange) and Redis streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_in_rabbitmq_and_redis_as_committed() {
    use lapin::options::{BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let tag = format!("cdcr{}", std::process::id());
    let xml = format!(
        "<cdc>\n<sink name=\"mq\" type=\"rabbitmq\" url=\"amqp://guest:guest@127.0.0.1:5672/%2f\" exchange=\"{tag}\" routingKey=\"{{schema}}.{{table}}\"/>\n\
         <sink name=\"rs\" type=\"redis\" url=\"redis://127.0.0.1:6379\" stream=\"{tag}:{{schema}}:{{table}}\" maxLen=\"100000\"/>\n\
         <feed name=\"fm\" schema=\"{tag}\" tables=\"*\" sink=\"mq\" format=\"debezium\"/>\n\
         <feed name=\"fr\" schema=\"{tag}\" tables=\"*\" sink=\"rs\"/>\n</cdc>\n"
    );
    let dir = conf(&tag, &xml);
    // the queue is bound before anything is published (RabbitMQ drops what no queue is bound to)
    let mq =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", lapin::ConnectionProperties::default())
            .await
            .expect("RabbitMQ on 5672");
    let ch = mq.create_channel().await.unwrap();
    let exchange_options = ExchangeDeclareOptions { durable: true, ..Default::default() };
    ch.exchange_declare(tag.as_str().into(), lapin::ExchangeKind::Topic, exchange_options, FieldTable::default())
        .await
        .unwrap();
    let q = ch
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    let qname = q.name().as_str().to_string();
    ch.queue_bind(
        qname.as_str().into(),
        tag.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            qname.as_str().into(),
            "t".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let redis = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut rc = redis.get_multiplexed_async_connection().await.expect("Redis on 6379");
    let p = start(dir.path());
    let mut c = app(&p, &tag).await;
    tables(&mut c, &tag).await;
    wait_streaming(&p, "fm");
    wait_streaming(&p, "fr");
    let n = workload(&p, &tag, &tag).await;
    let want = shards(&tag).await;
    // RabbitMQ: until the row changes are all there (DDL events come too)
    let mut events = Vec::new();
    let t0 = Instant::now();
    while changes(&events).len() < n && t0.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await {
            let v: Json = serde_json::from_slice(&d.data).unwrap();
            let message_id = d.properties.message_id().as_ref().map(|m| m.as_str().to_string());
            assert_eq!(message_id.as_deref(), v["id"].as_str(), "message_id is the event's id");
            assert_eq!(d.routing_key.as_str(), format!("{tag}.{}", v["source"]["table"].as_str().unwrap()));
            events.push(v);
        }
    }
    check(&events, n, &want, "RabbitMQ");
    // Redis: one stream per logical table, read whole
    let t0 = Instant::now();
    let events = loop {
        let mut events = Vec::new();
        for table in ["customer", "orders", "region"] {
            let key = format!("{tag}:{tag}:{tag}_{table}");
            let reply: redis::streams::StreamRangeReply =
                redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(&mut rc).await.unwrap();
            for e in reply.ids {
                let field = |k: &str| match e.map.get(k) {
                    Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                    other => panic!("{key} {k}: {other:?}"),
                };
                let v: Json = serde_json::from_str(&field("event")).unwrap();
                assert_eq!(field("id"), v["id"].as_str().unwrap());
                events.push(v);
            }
        }
        if changes(&events).len() >= n || t0.elapsed() > Duration::from_secs(30) {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // per table the streams keep each key's order; across tables, apply in each dataHost's commit order
    let mut events = events;
    events.sort_by_key(|e| {
        let g = e["source"]["gtid"].as_str().unwrap_or_default().to_string();
        let seq: u64 = g.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
        (
            e["source"]["dataHost"].as_str().unwrap_or_default().to_string(),
            seq,
            e["source"]["row"].as_u64().unwrap_or(0),
        )
    });
    check(&events, n, &want, "Redis");
    for k in ["customer", "orders", "region"] {
        let _: Result<i64, _> = redis::cmd("DEL").arg(format!("{tag}:{tag}:{tag}_{k}")).query_async(&mut rc).await;
    }
    let _ = ch.exchange_delete(tag.as_str().into(), Default::default()).await;
}

/// `kill -9` of the proxy 20 times at random moments while rows are written on the shards: every
/// restart goes on from the persisted position, and the stream (JetStream drops a repeated
/// Nats-Msg-Id) holds every committed change exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_proxy_loses_and_doubles_nothing() {
    use rand::Rng;
    let tag = format!("cdck{}", std::process::id());
    let stream = format!("SCKILL_{}", std::process::id());
    let xml = format!(
        "<cdc>\n<sink name=\"n\" type=\"nats\" url=\"nats://127.0.0.1:4222\" subject=\"{tag}.{{schema}}.{{table}}\" stream=\"{stream}\"/>\n\
         <feed name=\"k\" schema=\"{tag}\" tables=\"{tag}_customer\" sink=\"n\"/>\n</cdc>\n"
    );
    let dir = conf(&tag, &xml);
    let mut p = start(dir.path());
    let mut c = app(&p, &tag).await;
    tables(&mut c, &tag).await;
    drop(c);
    wait_streaming(&p, "k");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = shard_writers(&tag, &stop);
    let mut rng = rand::rng();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1200))).await;
        p.signal("KILL");
        let t0 = Instant::now();
        while !p.exited() && t0.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        p = start(dir.path());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    let want: usize = committed.iter().map(|(_, n)| n).sum();
    let events = nats_events(&stream, |e| e.iter().filter(|e| e["op"] != "ddl").count() >= want).await;
    exactly_once(&events, &committed);
    eprintln!("{} transactions, {want} changes, 20 kill -9s: each once, in order", committed.len());
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(&stream).await;
}

/// A NATS server of the test's own (a port and store of its own), so it can be stopped.
struct PrivateNats {
    port: u16,
    store: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateNats {
    fn start() -> PrivateNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut n = PrivateNats { port, store: tempfile::tempdir().unwrap(), child: None };
        n.up();
        n
    }

    fn up(&mut self) {
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(10), "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.down();
    }
}

/// Writes straight to the four shards (id % 4 names the node, as mod4 does) until `stop`; every
/// fifth transaction inserts and updates a row. Returns (id, changes) of each committed transaction.
fn shard_writers(
    tag: &str,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<(i64, usize)>>> {
    let mut writers = Vec::new();
    for (i, (_, port, db)) in NODES.iter().enumerate() {
        let (stop, tag) = (stop.clone(), tag.to_string());
        let (port, db) = (*port, *db);
        writers.push(tokio::spawn(async move {
            let mut c = direct_conn(port, db).await;
            let mut committed = Vec::new();
            let mut k = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = (k * 4 + i) as i64;
                k += 1;
                if k % 5 == 0 {
                    exec(&mut c, "BEGIN").await;
                    exec(&mut c, &format!("INSERT INTO {tag}_customer (id, name) VALUES ({id}, 'w')")).await;
                    exec(&mut c, &format!("UPDATE {tag}_customer SET name = 'w2' WHERE id = {id}")).await;
                    exec(&mut c, "COMMIT").await;
                    committed.push((id, 2));
                } else {
                    exec(&mut c, &format!("INSERT INTO {tag}_customer (id, name) VALUES ({id}, 'w')")).await;
                    committed.push((id, 1));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            committed
        }));
    }
    writers
}

/// Every committed change once, in each row's order (insert, then its update).
fn exactly_once(events: &[Json], committed: &[(i64, usize)]) {
    let rows: Vec<&Json> = events.iter().filter(|e| e["op"] != "ddl").collect();
    let ids: HashSet<String> = rows.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(ids.len(), rows.len(), "the stream holds no change twice");
    let want: usize = committed.iter().map(|(_, n)| n).sum();
    assert_eq!(rows.len(), want, "every committed change is there ({} transactions)", committed.len());
    let mut per_id: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for e in &rows {
        per_id.entry(e["key"]["id"].as_i64().unwrap()).or_default().push(e["op"].as_str().unwrap().to_string());
    }
    for (id, n) in committed {
        let expect: Vec<String> = if *n == 2 { vec!["c".into(), "u".into()] } else { vec!["c".into()] };
        assert_eq!(per_id.get(id).cloned().unwrap_or_default(), expect, "row {id}");
    }
}

/// The broker stopped for 30 s under a write load: the feed pauses (its memory bounded) and, once the
/// broker is back, delivers everything once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_of_30_s_loses_nothing() {
    let tag = format!("cdco{}", std::process::id());
    let stream = format!("SCOUT_{}", std::process::id());
    let mut nats = PrivateNats::start();
    let xml = format!(
        "<cdc>\n<sink name=\"n\" type=\"nats\" url=\"nats://127.0.0.1:{}\" subject=\"{tag}.{{schema}}.{{table}}\" stream=\"{stream}\"/>\n\
         <feed name=\"o\" schema=\"{tag}\" tables=\"{tag}_customer\" sink=\"n\"/>\n</cdc>\n",
        nats.port
    );
    let dir = conf(&tag, &xml);
    let p = start(dir.path());
    let mut c = app(&p, &tag).await;
    tables(&mut c, &tag).await;
    drop(c);
    wait_streaming(&p, "o");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = shard_writers(&tag, &stop);
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.down();
    let rss_before = p.peak_rss_kib();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let row = cdc_row(&p, "o");
    assert_eq!(row.get(2).map(String::as_str), Some("retrying"), "paused while the broker is away: {row:?}");
    let rss_during = p.peak_rss_kib();
    nats.up();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    let want: usize = committed.iter().map(|(_, n)| n).sum();
    let client = async_nats::connect(format!("nats://127.0.0.1:{}", nats.port)).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let t0 = Instant::now();
    let events = loop {
        let events = nats_all(&js, &stream).await.unwrap_or_default();
        if events.iter().filter(|e| e["op"] != "ddl").count() >= want || t0.elapsed() > Duration::from_secs(60) {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    exactly_once(&events, &committed);
    eprintln!(
        "{} transactions, {want} changes across a 30 s broker outage; proxy peak RSS {rss_before} → {rss_during} KiB during it",
        committed.len()
    );
    assert!(rss_during < rss_before + 64 * 1024, "memory stays bounded while paused: {rss_before} → {rss_during} KiB");
}

/// Resets binlog_row_metadata to FULL on both primaries when dropped.
struct FullMetadata;

impl Drop for FullMetadata {
    fn drop(&mut self) {
        for port in [3307, 3309] {
            let _ = root_sql(port, "SET GLOBAL binlog_row_metadata = FULL");
        }
    }
}

/// `ALTER TABLE … ADD COLUMN` mid-stream: the events name the columns right before and after it, with
/// the binlog's own column names (FULL) and, with binlog_row_metadata=MINIMAL, from the definition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_names_stay_right_across_alter_table() {
    let tag = format!("cdca{}", std::process::id());
    let xml = format!("<cdc>\n<feed name=\"a\" schema=\"{tag}\" tables=\"{tag}_customer\"/>\n</cdc>\n");
    let dir = conf(&tag, &xml);
    let p = start(dir.path());
    let mut c = app(&p, &tag).await;
    tables(&mut c, &tag).await;
    let mut sse = Sse::open(p.http_port, "/changes/a", None).await;
    let t = format!("{tag}_customer");
    exec(&mut c, &format!("INSERT INTO {t} (id, name) VALUES (1, 'a')")).await;
    exec(&mut c, &format!("ALTER TABLE {t} ADD COLUMN extra INT DEFAULT 7")).await;
    exec(&mut c, &format!("INSERT INTO {t} (id, name, extra) VALUES (2, 'b', 9)")).await;
    exec(&mut c, &format!("UPDATE {t} SET name = 'a2' WHERE id = 1")).await;
    let guard = FullMetadata;
    for port in [3307, 3309] {
        root_sql(port, "SET GLOBAL binlog_row_metadata = MINIMAL").unwrap();
    }
    exec(&mut c, &format!("INSERT INTO {t} (id, name, extra) VALUES (3, 'c', 11)")).await;
    // the reader reads the definition when it meets the row: it must not be behind the next ALTER
    // (the definition would be newer than the row; its columns then go by position)
    let mut events = sse.take(4 + 4).await;
    exec(&mut c, &format!("ALTER TABLE {t} ADD COLUMN more VARCHAR(5)")).await;
    exec(&mut c, &format!("INSERT INTO {t} (id, name, more) VALUES (5, 'e', 'm')")).await;
    events.extend(sse.take(1 + 4).await);
    drop(guard);
    let rows: Vec<&Json> = events.iter().map(|(_, e)| e).filter(|e| e["op"] != "ddl").collect();
    let ddl = events.iter().filter(|(_, e)| e["op"] == "ddl").count();
    assert_eq!(ddl, 8, "each ALTER is an event on each node: {events:?}");
    assert!(events.iter().any(|(_, e)| e["ddl"].as_str().is_some_and(|d| d.contains("ADD COLUMN extra"))));
    let by = |id: i64, op: &str| -> Json {
        rows.iter()
            .find(|e| e["key"]["id"] == id && e["op"] == op)
            .map(|e| (*e).clone())
            .unwrap_or_else(|| panic!("no {op} of {id}: {rows:?}"))
    };
    let keys = |v: &Json| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let before_alter = ["amount", "created", "id", "name", "note"];
    assert_eq!(keys(&by(1, "c")["after"]), before_alter, "before the ALTER");
    assert_eq!(by(2, "c")["after"]["extra"], 9, "after it");
    let u = by(1, "u");
    assert_eq!(u["before"]["name"], "a");
    assert_eq!(u["after"]["name"], "a2");
    assert_eq!(u["after"]["extra"], 7);
    // binlog_row_metadata=MINIMAL: names and key from the table's definition
    let c3 = by(3, "c");
    assert_eq!(c3["after"]["extra"], 11, "{c3}");
    assert_eq!(c3["key"], serde_json::json!({"id": 3}));
    let c5 = by(5, "c");
    assert_eq!(c5["after"]["more"], "m", "{c5}");
    assert_eq!(c5["after"]["extra"], 7);
}

/// `snapshot="true"`: the rows already there first (`op: r`, one per row), then the changes made
/// while and after the snapshot is read — together exactly what the shards hold, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_then_the_stream_without_a_gap_or_a_double() {
    let tag = format!("cdcp{}", std::process::id());
    let stream = format!("SCSNAP_{}", std::process::id());
    let dir = conf(&tag, "<cdc/>\n");
    let writer = start(dir.path());
    let mut c = app(&writer, &tag).await;
    tables(&mut c, &tag).await;
    let before = 400;
    for chunk in 0..(before / 100) {
        let values: Vec<String> = (0..100)
            .map(|i| chunk * 100 + i)
            .map(|id| format!("({id}, 'old{id}', {id}.5, '2026-12-01 00:00:00', NULL)"))
            .collect();
        exec(
            &mut c,
            &format!("INSERT INTO {tag}_customer (id, name, amount, created, note) VALUES {}", values.join(",")),
        )
        .await;
    }
    exec(&mut c, &format!("INSERT INTO {tag}_region (id, name) VALUES (1, 'r1'), (2, 'r2')")).await;
    std::fs::write(
        dir.path().join("cdc.xml"),
        format!(
            "<cdc>\n<sink name=\"n\" type=\"nats\" url=\"nats://127.0.0.1:4222\" subject=\"{tag}.{{schema}}.{{table}}\" stream=\"{stream}\"/>\n\
             <feed name=\"p\" schema=\"{tag}\" tables=\"{tag}_customer,{tag}_region\" sink=\"n\" snapshot=\"true\"/>\n</cdc>\n"
        ),
    )
    .unwrap();
    let p = start(dir.path());
    // changes while the snapshot is read, and after
    let mut changed = 0;
    for id in 0..60 {
        exec(&mut c, &format!("UPDATE {tag}_customer SET name = 'new{id}' WHERE id = {id}")).await;
        exec(&mut c, &format!("INSERT INTO {tag}_customer (id, name) VALUES ({}, 'added')", 1000 + id)).await;
        changed += 2;
    }
    exec(&mut c, &format!("DELETE FROM {tag}_customer WHERE id >= 390 AND id < 400")).await;
    changed += 10;
    wait_streaming(&p, "p");
    let want = shards(&tag).await;
    let want: State = want.into_iter().filter(|((_, t, _), _)| !t.ends_with("_orders")).collect();
    let events = nats_events(&stream, |e| {
        let mut s = State::new();
        changes(e).iter().for_each(|e| apply(&mut s, e));
        s == want
    })
    .await;
    let rows = changes(&events);
    // the snapshot holds what was there when it was taken: the rows from before, and the rows added
    // before it began
    let reads = rows.iter().filter(|e| e["op"] == "r").count();
    assert!((before as usize + 2..=before as usize + 2 + 60).contains(&reads), "{reads} snapshot rows");
    let of = |id: i64, op: &str| -> Vec<&Json> {
        rows.iter()
            .filter(|e| e["key"]["id"] == id && e["op"] == op && e["source"]["table"] == format!("{tag}_customer"))
            .collect()
    };
    for id in 0..60 {
        // an update is in the snapshot's row or after it as an event, never both, never neither
        let r = of(id, "r");
        assert_eq!(r.len(), 1, "row {id}: one snapshot row");
        let updated_in_snapshot = r[0]["after"]["name"] == format!("new{id}");
        assert_eq!(of(id, "u").len(), usize::from(!updated_in_snapshot), "row {id}: its update once");
        let added = 1000 + id;
        assert_eq!(of(added, "r").len() + of(added, "c").len(), 1, "row {added}: its insert once");
    }
    let ids: HashSet<String> = rows.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(ids.len(), events.iter().filter(|e| e["op"] != "ddl").count(), "nothing twice");
    let mut state = State::new();
    for e in &rows {
        apply(&mut state, e);
    }
    assert_eq!(state, want, "the snapshot and the stream after it rebuild what the shards hold");
    // a change made while the snapshot was read is either in it or after it, never both, never neither
    let after: usize = rows.iter().filter(|e| e["op"] != "r").count();
    assert!(after <= changed, "{after} stream changes for {changed} made");
    assert!(rows.iter().all(|e| e["op"] != "r" || e["source"]["snapshot"] == true));
    // a position is kept once the snapshot is read and acknowledged (at the next write, ≤ 200 ms on)
    let t0 = Instant::now();
    let row = loop {
        let row = cdc_row(&p, "p");
        if !row.get(3).map(String::is_empty).unwrap_or(true) || t0.elapsed() > Duration::from_secs(10) {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!row.get(3).map(String::is_empty).unwrap_or(true), "a position is kept once the snapshot is read: {row:?}");
    let kept = std::fs::read_to_string(dir.path().join("state/cdc/p.position")).unwrap_or_default();
    assert!(kept.contains("sh1=") && kept.contains("sh2="), "the kept position names both dataHosts: {kept}");
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(&stream).await;
}

/// cdc.xml is hot-reloaded: a broken one is refused with `cdc.xml:line` (the feeds run on), a new
/// feed starts at `shardcat reload`; `shardcat check` prints the feeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_xml_reloads_and_is_checked() {
    let tag = format!("cdcl{}", std::process::id());
    let sse_only = |names: &[&str]| -> String {
        let feeds: Vec<String> =
            names.iter().map(|n| format!("<feed name=\"{n}\" schema=\"{tag}\" tables=\"{tag}_customer\"/>")).collect();
        format!("<cdc>\n{}\n</cdc>\n", feeds.join("\n"))
    };
    let dir = conf(&tag, &sse_only(&["one"]));
    let p = start(dir.path());
    let run = |args: &[&str]| -> (i32, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardcat")).args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let d = dir.path().to_str().unwrap().to_string();
    let (code, out) = run(&["check", "--config", &d, "--rules", &d]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("cdc feed one schema={tag} tables={tag}_customer sink=(HTTP endpoint only)")),
        "{out}"
    );
    let manager = format!("127.0.0.1:{}", p.manager_port);
    std::fs::write(dir.path().join("cdc.xml"), "<cdc>\n<feed name=\"x\" schema=\"nope\"/>\n</cdc>\n").unwrap();
    let (code, out) = run(&["reload", "--manager", &manager, "--config", &d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cdc.xml:2:") && out.contains("unknown schema 'nope'"), "{out}");
    let feeds: Vec<String> = manager_rows(&p, "show @@cdc").into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(feeds, vec!["one".to_string()], "the running config's feeds");
    std::fs::write(dir.path().join("cdc.xml"), sse_only(&["one", "two"])).unwrap();
    let (code, out) = run(&["reload", "--manager", &manager, "--config", &d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cdc feed two added"), "{out}");
    let feeds: Vec<String> = manager_rows(&p, "show @@cdc").into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(feeds, vec!["one".to_string(), "two".to_string()]);
    // the new feed is served (Sse::open checks the 200)
    drop(Sse::open(p.http_port, "/changes/two", None).await);
}

/// A position the server's binlog lacks (purged, or another history): the feed stops with the
/// server's error in `show @@cdc` and a metric — it never skips to where the server is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_the_server_lacks_stops_the_feed() {
    let tag = format!("cdcg{}", std::process::id());
    let stream = format!("SCGAP_{}", std::process::id());
    let xml = format!(
        "<cdc>\n<sink name=\"n\" type=\"nats\" url=\"nats://127.0.0.1:4222\" subject=\"{tag}.{{schema}}.{{table}}\" stream=\"{stream}\"/>\n\
         <feed name=\"g\" schema=\"{tag}\" tables=\"*\" sink=\"n\"/>\n</cdc>\n"
    );
    let dir = conf(&tag, &xml);
    // GTIDs no server of the stack ever wrote (server id 9999) in the stack's domains
    std::fs::create_dir_all(dir.path().join("state/cdc")).unwrap();
    std::fs::write(dir.path().join("state/cdc/g.position"), "sh1=1-9999-5;sh2=2-9999-5").unwrap();
    let p = start(dir.path());
    let t0 = Instant::now();
    let row = loop {
        let row = cdc_row(&p, "g");
        if row.get(2).map(String::as_str) == Some("stopped") || t0.elapsed() > Duration::from_secs(20) {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.get(2).map(String::as_str), Some("stopped"), "{row:?}\n{}", p.log_text());
    let error = row.get(7).cloned().unwrap_or_default();
    assert!(error.contains("1236") || error.to_lowercase().contains("gtid"), "the server's reason: {error}");
    let (_, metrics) = http_get(p.http_port, "/metrics").await;
    assert!(metrics.lines().any(|l| l.starts_with("shardcat_cdc_errors_total{feed=\"g\"}")), "a metric says so");
    // and the position is the one it had: nothing skipped
    let kept = std::fs::read_to_string(dir.path().join("state/cdc/g.position")).unwrap();
    assert_eq!(kept, "sh1=1-9999-5;sh2=2-9999-5");
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let _ = async_nats::jetstream::new(client).delete_stream(&stream).await;
}
