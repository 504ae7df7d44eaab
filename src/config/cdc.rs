//! Reads cdc.xml, the change queue's contract: `<sink>`s (nats, rabbitmq, redis) and `<feed>`s (a schema's
//! tables, a sink, a format), each problem reported as `cdc.xml:line`; checked against schema.xml in `validate`.

use std::path::Path;

use super::model::*;
use super::xml::Element;
use super::{Attrs, Diagnostics};

/// The placeholders a sink's names may hold.
const PLACEHOLDERS: &[&str] = &["{schema}", "{table}"];

pub fn read(path: &Path, root: &Element, d: &mut Diagnostics) -> Cdc {
    let mut cdc = Cdc::default();
    if root.name != "cdc" {
        d.error(path, root.line, format!("the root element is <{}>, not <cdc>", root.name));
        return cdc;
    }
    for el in &root.children {
        match el.name.as_str() {
            "sink" => {
                if let Some(s) = read_sink(path, el, d) {
                    cdc.sinks.push(s);
                }
            }
            "feed" => {
                if let Some(f) = read_feed(path, el, d) {
                    cdc.feeds.push(f);
                }
            }
            other => d.warn(path, el.line, format!("unknown element <{other}> ignored")),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in &cdc.sinks {
        if !seen.insert(s.name.clone()) {
            d.error(path, s.line, format!("duplicate sink '{}'", s.name));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for f in &cdc.feeds {
        if !seen.insert(f.name.clone()) {
            d.error(path, f.line, format!("duplicate feed '{}'", f.name));
        }
        if let Some(s) = &f.sink {
            if cdc.sink(s).is_none() {
                d.error(path, f.line, format!("feed '{}' uses unknown sink '{s}'", f.name));
            }
        }
    }
    cdc
}

/// A name with placeholders: only `{schema}` and `{table}` may appear in braces.
fn template(path: &Path, line: usize, what: &str, v: &str, d: &mut Diagnostics) {
    let mut rest = v;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
            Some(p) => rest = &tail[p.len()..],
            None => {
                d.error(path, line, format!("{what}=\"{v}\": only {{schema}} and {{table}} may be substituted"));
                return;
            }
        }
    }
}

fn read_sink(path: &Path, el: &Element, d: &mut Diagnostics) -> Option<CdcSink> {
    let mut a = Attrs::new(path, el);
    let name = a.required("name", d);
    let kind = a.required("type", d);
    let url = a.required("url", d);
    let kind = match kind.to_ascii_lowercase().as_str() {
        "nats" => {
            let subject = a.get("subject").unwrap_or("shardcat.{schema}.{table}").to_string();
            template(path, el.line, "subject", &subject, d);
            let stream = a.get("stream").map(str::to_string).filter(|s| !s.is_empty());
            if !url.is_empty() && !url.starts_with("nats://") {
                d.error(path, el.line, format!("sink '{name}': url '{url}' is not nats://host:port"));
            }
            SinkKind::Nats { url, subject, stream }
        }
        "rabbitmq" => {
            let exchange = a.get("exchange").unwrap_or("shardcat").to_string();
            let routing_key = a.get("routingKey").unwrap_or("{schema}.{table}").to_string();
            template(path, el.line, "routingKey", &routing_key, d);
            if !url.is_empty() && !url.starts_with("amqp://") {
                d.error(
                    path,
                    el.line,
                    format!("sink '{name}': url '{url}' is not amqp://user:password@host:port/vhost"),
                );
            }
            SinkKind::RabbitMq { url, exchange, routing_key }
        }
        "redis" => {
            let stream = a.get("stream").unwrap_or("shardcat:{schema}:{table}").to_string();
            template(path, el.line, "stream", &stream, d);
            let max_len = match a.get("maxLen") {
                None => None,
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        d.error(path, el.line, format!("sink '{name}': maxLen=\"{v}\" is not a positive number"));
                        None
                    }
                },
            };
            if !url.is_empty() && !url.starts_with("redis://") {
                d.error(path, el.line, format!("sink '{name}': url '{url}' is not redis://host:port"));
            }
            SinkKind::Redis { url, stream, max_len }
        }
        "" => return None,
        other => {
            d.error(path, el.line, format!("sink '{name}': unknown type '{other}' (nats, rabbitmq or redis)"));
            return None;
        }
    };
    a.finish(d);
    (!name.is_empty()).then_some(CdcSink { name, kind, line: el.line })
}

fn read_feed(path: &Path, el: &Element, d: &mut Diagnostics) -> Option<Feed> {
    let mut a = Attrs::new(path, el);
    let name = a.required("name", d);
    let schema = a.required("schema", d);
    let tables = match a.get("tables").map(str::trim) {
        None | Some("*") => None,
        Some(list) => {
            let ts: Vec<String> = list.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
            if ts.is_empty() {
                d.error(
                    path,
                    el.line,
                    format!("feed '{name}': tables=\"{list}\" names no table (\"*\" means every one)"),
                );
            }
            Some(ts)
        }
    };
    let sink = a.get("sink").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let format = match a.get("format").map(|f| f.trim().to_ascii_lowercase()) {
        None => FeedFormat::Debezium,
        Some(f) if f == "debezium" => FeedFormat::Debezium,
        Some(f) if f == "canal" => FeedFormat::Canal,
        Some(f) => {
            d.error(path, el.line, format!("feed '{name}': unknown format '{f}' (debezium or canal)"));
            FeedFormat::Debezium
        }
    };
    let snapshot = a.bool("snapshot", false);
    a.finish(d);
    if name.contains('/') || name.contains(' ') {
        d.error(path, el.line, format!("feed '{name}': a name may not hold '/' or spaces (it is a URL path)"));
    }
    (!name.is_empty() && !schema.is_empty()).then_some(Feed {
        name,
        schema,
        tables,
        sink,
        format,
        snapshot,
        line: el.line,
    })
}

/// The feeds' schemas and tables exist in schema.xml.
pub fn validate(cfg: &Config, path: &Path, d: &mut Diagnostics) {
    for f in &cfg.cdc.feeds {
        let Some(s) = cfg.schema(&f.schema) else {
            d.error(path, f.line, format!("feed '{}' uses unknown schema '{}'", f.name, f.schema));
            continue;
        };
        for t in f.tables.iter().flatten() {
            if s.table(t).is_none() && s.data_node.is_none() {
                d.error(path, f.line, format!("feed '{}': schema '{}' has no table '{t}'", f.name, s.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Cdc, Diagnostics) {
        let path = Path::new("cdc.xml");
        let root = crate::config::xml::parse(path, text).unwrap();
        let mut d = Diagnostics::default();
        (read(path, &root, &mut d), d)
    }

    #[test]
    fn the_issues_example_reads_whole() {
        let (cdc, d) = parse(
            r#"<cdc>
  <sink name="nats" type="nats" url="nats://127.0.0.1:4222" subject="shardcat.{schema}.{table}" stream="SHARDCAT"/>
  <sink name="mq" type="rabbitmq" url="amqp://guest:guest@127.0.0.1:5672/%2f" exchange="shardcat" routingKey="{schema}.{table}"/>
  <sink name="rs" type="redis" url="redis://127.0.0.1:6379" stream="shardcat:{schema}:{table}" maxLen="1000000"/>
  <feed name="orders" schema="shop" tables="customer,orders" sink="nats" format="debezium" snapshot="false"/>
  <feed name="all" schema="shop" tables="*" format="canal"/>
</cdc>"#,
        );
        assert!(d.0.is_empty(), "{:?}", d.0);
        assert_eq!(cdc.sinks.len(), 3);
        assert_eq!(
            cdc.sinks[2].kind,
            SinkKind::Redis {
                url: "redis://127.0.0.1:6379".into(),
                stream: "shardcat:{schema}:{table}".into(),
                max_len: Some(1_000_000)
            }
        );
        let f = &cdc.feeds[0];
        assert_eq!(f.tables, Some(vec!["customer".to_string(), "orders".to_string()]));
        assert!(f.covers("ORDERS") && !f.covers("region"));
        assert_eq!(cdc.feeds[1].tables, None);
        assert_eq!(cdc.feeds[1].format, FeedFormat::Canal);
        assert_eq!(cdc.feeds[1].sink, None);
    }

    #[test]
    fn mistakes_name_their_line() {
        let (_, d) = parse(
            "<cdc>\n<sink name=\"a\" type=\"kafka\" url=\"x\"/>\n<sink name=\"n\" type=\"nats\" url=\"nats://h:1\" subject=\"s.{db}\"/>\n<feed name=\"f\" schema=\"s\" sink=\"nope\" format=\"avro\"/>\n</cdc>",
        );
        let msgs: Vec<String> = d.errors().map(|e| e.to_string()).collect();
        assert!(msgs.iter().any(|m| m.starts_with("cdc.xml:2:") && m.contains("unknown type 'kafka'")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("cdc.xml:3:") && m.contains("{schema}")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("cdc.xml:4:") && m.contains("unknown sink 'nope'")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("cdc.xml:4:") && m.contains("unknown format 'avro'")), "{msgs:?}");
    }
}
