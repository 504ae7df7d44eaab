//! The readable summary `shardcat check` prints: schemas and their tables, dataNodes, dataHosts.

use std::fmt::Write;

use super::model::*;

pub fn render(cfg: &Config) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "config: {}  rules: {}", cfg.config_dir.display(), cfg.rules_dir.display());
    for s in &cfg.schemas {
        let _ = writeln!(
            o,
            "schema {}{}{}",
            s.name,
            s.data_node.as_ref().map(|d| format!(" (default dataNode {d})")).unwrap_or_default(),
            if s.sql_max_limit > 0 { format!(" sqlMaxLimit={}", s.sql_max_limit) } else { String::new() }
        );
        fn tables(o: &mut String, cfg: &Config, ts: &[Table], depth: usize) {
            for t in ts {
                let indent = "  ".repeat(depth + 1);
                let detail = match &t.kind {
                    TableKind::Sharded { rule } => {
                        let (col, func) = cfg
                            .table_rule(rule)
                            .map(|r| {
                                let class = cfg.function(&r.algorithm).map(|f| f.class.clone()).unwrap_or_default();
                                (
                                    r.column.clone(),
                                    format!("{} ({})", r.algorithm, class.rsplit('.').next().unwrap_or("")),
                                )
                            })
                            .unwrap_or_default();
                        format!(" rule={rule} column={col} function={func}")
                    }
                    TableKind::Child { parent, join_key, parent_key } => {
                        format!(" parent={parent} joinKey={join_key} parentKey={parent_key}")
                    }
                    _ => String::new(),
                };
                let _ = writeln!(
                    o,
                    "{indent}table {} [{}]{detail} dataNodes={}",
                    t.name,
                    t.kind_name(),
                    t.data_nodes.join(",")
                );
                tables(o, cfg, &t.children, depth + 1);
            }
        }
        tables(&mut o, cfg, &s.tables, 0);
    }
    for n in &cfg.data_nodes {
        let _ = writeln!(o, "dataNode {} -> {}/{}", n.name, n.data_host, n.database);
    }
    for h in &cfg.data_hosts {
        let _ = writeln!(
            o,
            "dataHost {} balance={} writeType={} switchType={} maxCon={} minCon={} heartbeat=\"{}\"",
            h.name, h.balance, h.write_type, h.switch_type, h.max_con, h.min_con, h.heartbeat
        );
        for w in &h.write_hosts {
            let _ = writeln!(o, "  writeHost {} {} user={}", w.host, w.url, w.user);
            for r in &w.read_hosts {
                let _ = writeln!(o, "    readHost {} {} user={}", r.host, r.url, r.user);
            }
        }
    }
    for k in &cfg.cdc.sinks {
        let detail = match &k.kind {
            SinkKind::Nats { url, subject, stream } => {
                format!(
                    "{url} subject={subject}{}",
                    stream.as_ref().map(|s| format!(" stream={s}")).unwrap_or_default()
                )
            }
            SinkKind::RabbitMq { url, exchange, routing_key } => {
                format!("{} exchange={exchange} routingKey={routing_key}", redact(url))
            }
            SinkKind::Redis { url, stream, max_len } => {
                format!("{url} stream={stream}{}", max_len.map(|n| format!(" maxLen={n}")).unwrap_or_default())
            }
        };
        let _ = writeln!(o, "cdc sink {} [{}] {detail}", k.name, k.kind.type_name());
    }
    for f in &cfg.cdc.feeds {
        let _ = writeln!(
            o,
            "cdc feed {} schema={} tables={} sink={} format={} snapshot={}",
            f.name,
            f.schema,
            f.tables.as_ref().map_or("*".to_string(), |t| t.join(",")),
            f.sink.as_deref().unwrap_or("(HTTP endpoint only)"),
            if f.format == FeedFormat::Canal { "canal" } else { "debezium" },
            f.snapshot
        );
    }
    if !cfg.cdc.feeds.is_empty() {
        let _ = writeln!(o, "state dir: {}", cfg.state_dir().display());
    }
    let users: Vec<String> =
        cfg.users.iter().map(|u| format!("{}{}", u.name, if u.read_only { " (readOnly)" } else { "" })).collect();
    let _ = writeln!(o, "users: {}", users.join(", "));
    o
}

/// A URL with its password hidden (what logs and `shardcat check` may print of a sink's URL).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(i), Some(at)) if at > i => match url[i + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..i + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}
