//! Reads schema.xml: schemas with their tables and ER children, dataNodes (with host × database range
//! expansion) and dataHosts with heartbeat, writeHosts and readHosts.

use std::path::Path;

use super::expand::{expand_item, expand_list};
use super::model::*;
use super::xml::Element;
use super::{Attrs, Diagnostics};

pub struct SchemaXml {
    pub schemas: Vec<Schema>,
    pub data_nodes: Vec<DataNode>,
    pub data_hosts: Vec<DataHost>,
}

pub fn read(path: &Path, root: &Element, d: &mut Diagnostics) -> SchemaXml {
    let mut out = SchemaXml { schemas: vec![], data_nodes: vec![], data_hosts: vec![] };
    if root.name != "schema" {
        d.error(path, root.line, format!("root element is <{}>, expected <mycat:schema>", root.name));
        return out;
    }
    for el in &root.children {
        match el.name.as_str() {
            "schema" => out.schemas.push(read_schema(path, el, d)),
            "dataNode" => out.data_nodes.extend(read_data_node(path, el, d)),
            "dataHost" => out.data_hosts.push(read_data_host(path, el, d)),
            other => d.warn(path, el.line, format!("unknown element <{other}> ignored")),
        }
    }
    out
}

fn read_schema(path: &Path, el: &Element, d: &mut Diagnostics) -> Schema {
    let mut a = Attrs::new(path, el);
    let name = a.required("name", d);
    let check_sql_schema = a.get("checkSQLschema").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let sql_max_limit = a.int("sqlMaxLimit", -1, d);
    let data_node = a.get("dataNode").filter(|s| !s.is_empty()).map(str::to_string);
    let random_data_node = a.get("randomDataNode").filter(|s| !s.is_empty()).map(str::to_string);
    a.known(&["needSupportMultiDBType"]);
    let cache = cache_attr(&mut a, path, el.line, d);
    a.finish(d);
    let mut tables = Vec::new();
    for t in &el.children {
        match t.name.as_str() {
            "table" => tables.extend(read_table(path, t, d)),
            other => d.warn(path, t.line, format!("unknown element <{other}> in <schema> ignored")),
        }
    }
    Schema { name, check_sql_schema, sql_max_limit, data_node, random_data_node, tables, cache, line: el.line }
}

/// `cache="true|false"`, shardcat's attribute on `<schema>`, `<table>` and `<childTable>`.
fn cache_attr(a: &mut Attrs<'_>, path: &Path, line: usize, d: &mut Diagnostics) -> Option<bool> {
    match a.get("cache") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            d.error(path, line, format!("cache=\"{v}\": expected true or false"));
            None
        }
    }
}

fn read_table(path: &Path, el: &Element, d: &mut Diagnostics) -> Vec<Table> {
    let mut a = Attrs::new(path, el);
    let names = a.required("name", d);
    let split = a.get("splitTableNames").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let dn_raw = a.required("dataNode", d);
    let data_nodes = parse_node_list(path, el.line, &dn_raw, d);
    let rule = a.get("rule").filter(|s| !s.is_empty()).map(str::to_string);
    let global = a.get("type").is_some_and(|v| v.eq_ignore_ascii_case("global"));
    let primary_key = a.get("primaryKey").filter(|s| !s.is_empty()).map(str::to_string);
    let auto_increment = a.bool("autoIncrement", false);
    let need_add_limit = a.bool("needAddLimit", true);
    let rule_required = a.bool("ruleRequired", false);
    let sub_tables = match a.get("subTables") {
        Some(s) if !s.is_empty() => expand_list(s).unwrap_or_else(|e| {
            d.error(path, el.line, format!("<table> subTables: {e}"));
            vec![]
        }),
        _ => vec![],
    };
    a.known(&["nameSuffix", "fetchStoreNodeByJdbc", "distribute"]);
    let cache = cache_attr(&mut a, path, el.line, d);
    a.finish(d);
    if rule_required && rule.is_none() {
        d.error(path, el.line, format!("<table name=\"{names}\"> has ruleRequired=\"true\" but no rule"));
    }
    if global && rule.is_some() {
        d.error(path, el.line, format!("<table name=\"{names}\"> is global and also has a rule"));
    }
    let kind = match (&rule, global) {
        (Some(r), _) => TableKind::Sharded { rule: r.clone() },
        (None, true) => TableKind::Global,
        (None, false) => TableKind::Unsharded,
    };
    let name_list: Vec<String> = if split {
        names.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    } else {
        vec![names.trim().to_string()]
    };
    name_list
        .into_iter()
        .map(|name| {
            let children =
                el.children_named("childTable").map(|c| read_child(path, c, &name, &data_nodes, cache, d)).collect();
            for other in el.children.iter().filter(|c| c.name != "childTable") {
                d.warn(path, other.line, format!("unknown element <{}> in <table> ignored", other.name));
            }
            Table {
                name,
                kind: kind.clone(),
                data_nodes: data_nodes.clone(),
                primary_key: primary_key.clone(),
                auto_increment,
                need_add_limit,
                rule_required,
                sub_tables: sub_tables.clone(),
                children,
                cache,
                line: el.line,
            }
        })
        .collect()
}

fn read_child(
    path: &Path,
    el: &Element,
    parent: &str,
    nodes: &[String],
    parent_cache: Option<bool>,
    d: &mut Diagnostics,
) -> Table {
    let mut a = Attrs::new(path, el);
    let name = a.required("name", d);
    let join_key = a.get("joinKey").unwrap_or_default().to_string();
    let parent_key = a.get("parentKey").unwrap_or_default().to_string();
    if join_key.is_empty() || parent_key.is_empty() {
        d.error(
            path,
            el.line,
            format!("<childTable name=\"{name}\"> needs both joinKey and parentKey (parent table {parent})"),
        );
    }
    let primary_key = a.get("primaryKey").filter(|s| !s.is_empty()).map(str::to_string);
    let auto_increment = a.bool("autoIncrement", false);
    let need_add_limit = a.bool("needAddLimit", true);
    let sub_tables = a.get("subTables").and_then(|s| expand_list(s).ok()).unwrap_or_default();
    let cache = cache_attr(&mut a, path, el.line, d).or(parent_cache);
    a.finish(d);
    let children = el.children_named("childTable").map(|c| read_child(path, c, &name, nodes, cache, d)).collect();
    Table {
        kind: TableKind::Child { parent: parent.to_string(), join_key, parent_key },
        name,
        data_nodes: nodes.to_vec(),
        primary_key,
        auto_increment,
        need_add_limit,
        rule_required: false,
        sub_tables,
        children,
        cache,
        line: el.line,
    }
}

/// A table's dataNode list; `distribute(...)` is kept as a marker entry resolved after dataNodes load.
fn parse_node_list(path: &Path, line: usize, raw: &str, d: &mut Diagnostics) -> Vec<String> {
    let trimmed = raw.trim();
    let (inner, distribute) = match trimmed.strip_prefix("distribute(").and_then(|s| s.strip_suffix(')')) {
        Some(inner) => (inner, true),
        None => (trimmed, false),
    };
    match expand_list(inner) {
        Ok(mut v) => {
            if distribute {
                v.insert(0, DISTRIBUTE_MARK.to_string());
            }
            v
        }
        Err(e) => {
            d.error(path, line, format!("<table> dataNode: {e}"));
            vec![]
        }
    }
}

pub const DISTRIBUTE_MARK: &str = "\u{0}distribute";

fn read_data_node(path: &Path, el: &Element, d: &mut Diagnostics) -> Vec<DataNode> {
    let mut a = Attrs::new(path, el);
    let name = a.required("name", d);
    let host = a.required("dataHost", d);
    let db = a.required("database", d);
    a.finish(d);
    let (names, hosts, dbs) = match (expand_item(&name), expand_list(&host), expand_list(&db)) {
        (Ok(n), Ok(h), Ok(b)) => (n, h, b),
        (n, h, b) => {
            for e in [n.err(), h.err(), b.err()].into_iter().flatten() {
                d.error(path, el.line, format!("<dataNode name=\"{name}\">: {e}"));
            }
            return vec![];
        }
    };
    if names.len() != hosts.len() * dbs.len() {
        d.error(
            path,
            el.line,
            format!(
                "<dataNode name=\"{name}\">: {} names for {} dataHosts × {} databases",
                names.len(),
                hosts.len(),
                dbs.len()
            ),
        );
        return vec![];
    }
    let mut out = Vec::new();
    let mut it = names.into_iter();
    for h in &hosts {
        for b in &dbs {
            if let Some(n) = it.next() {
                out.push(DataNode { name: n, data_host: h.clone(), database: b.clone(), line: el.line });
            }
        }
    }
    out
}

fn read_data_host(path: &Path, el: &Element, d: &mut Diagnostics) -> DataHost {
    let mut a = Attrs::new(path, el);
    let name = a.required("name", d);
    let max_con = a.int("maxCon", 128, d).max(1) as u32;
    let min_con = a.int("minCon", 10, d).max(0) as u32;
    let balance = a.int("balance", 0, d);
    if !(0..=3).contains(&balance) {
        d.error(path, el.line, format!("<dataHost name=\"{name}\"> balance must be 0-3, not {balance}"));
    }
    let balance_type = a.int("balanceType", 0, d).clamp(0, 2) as u8;
    let write_type = a.int("writeType", 0, d).clamp(0, 2) as u8;
    let switch_type = a.int("switchType", -1, d).clamp(-1, 3) as i8;
    let slave_threshold = a.int("slaveThreshold", -1, d);
    let temp_read_host_available = a.int("tempReadHostAvailable", 0, d) > 0;
    let db_type = a.get("dbType").unwrap_or("mysql").to_string();
    let db_driver = a.get("dbDriver").unwrap_or("native").to_string();
    let max_retry_count = a.int("maxRetryCount", 3, d).max(1) as u32;
    let not_switch = a.int("notSwitch", 0, d) == 1;
    let promote_replica = a.bool("promoteReplica", false);
    a.known(&["filters", "logTime", "slaveIDs"]);
    a.finish(d);
    if min_con > max_con {
        d.warn(path, el.line, format!("<dataHost name=\"{name}\"> minCon {min_con} > maxCon {max_con}"));
    }
    let mut heartbeat = String::new();
    let mut connection_init_sql = None;
    let mut write_hosts = Vec::new();
    for c in &el.children {
        match c.name.as_str() {
            "heartbeat" => heartbeat = c.text.clone(),
            "connectionInitSql" => connection_init_sql = Some(c.text.clone()).filter(|s| !s.is_empty()),
            "writeHost" => write_hosts.push(read_write_host(path, c, d)),
            other => d.warn(path, c.line, format!("unknown element <{other}> in <dataHost> ignored")),
        }
    }
    if write_hosts.is_empty() {
        d.error(path, el.line, format!("<dataHost name=\"{name}\"> has no <writeHost>"));
    }
    if heartbeat.is_empty() && db_driver == "native" {
        d.error(path, el.line, format!("<dataHost name=\"{name}\"> needs a <heartbeat> query"));
    }
    DataHost {
        name,
        max_con,
        min_con: min_con.min(max_con),
        balance: balance.clamp(0, 3) as u8,
        balance_type,
        write_type,
        switch_type,
        slave_threshold,
        temp_read_host_available,
        db_type,
        db_driver,
        max_retry_count,
        not_switch,
        heartbeat,
        connection_init_sql,
        promote_replica,
        write_hosts,
        line: el.line,
    }
}

fn read_write_host(path: &Path, el: &Element, d: &mut Diagnostics) -> WriteHost {
    let mut a = Attrs::new(path, el);
    let host = a.required("host", d);
    let url = a.required("url", d);
    let user = a.required("user", d);
    let password = a.get("password").unwrap_or_default().to_string();
    let weight = a.int("weight", 0, d).max(0) as u32;
    let tls = host_tls(path, el, &mut a, d);
    a.known(&["usingDecrypt", "checkAlive", "dbType"]);
    a.finish(d);
    let mut read_hosts = Vec::new();
    for c in &el.children {
        if c.name != "readHost" {
            d.warn(path, c.line, format!("unknown element <{}> in <writeHost> ignored", c.name));
            continue;
        }
        let mut a = Attrs::new(path, c);
        let rh = ReadHost {
            host: a.required("host", d),
            url: a.required("url", d),
            user: a.required("user", d),
            password: a.get("password").unwrap_or_default().to_string(),
            tls: host_tls(path, c, &mut a, d),
            weight: a.int("weight", 0, d).max(0) as u32,
            line: c.line,
        };
        a.known(&["usingDecrypt"]);
        a.finish(d);
        read_hosts.push(rh);
    }
    WriteHost { host, url, user, password, tls, weight, read_hosts, line: el.line }
}

/// A host's `ssl` and `sslCa`: with ssl="true" the CA file (relative to the conf dir) is read now and
/// must hold at least one PEM certificate.
fn host_tls(path: &Path, el: &Element, a: &mut Attrs, d: &mut Diagnostics) -> Option<HostTls> {
    let ssl = a.get("ssl").map(str::to_string);
    let ca = a.get("sslCa").map(str::to_string);
    match ssl.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => {
            if ca.is_some() {
                d.warn(path, el.line, "sslCa without ssl=\"true\" is ignored");
            }
            return None;
        }
        Some("true") => {}
        Some(other) => {
            d.error(path, el.line, format!("ssl=\"{other}\": expected true or false"));
            return None;
        }
    }
    let Some(ca) = ca.filter(|c| !c.is_empty()) else {
        d.error(
            path,
            el.line,
            "ssl=\"true\" needs sslCa: the CA certificate (PEM) that signed the server's certificate",
        );
        return None;
    };
    let file = path.parent().unwrap_or(Path::new(".")).join(&ca);
    let pem = match std::fs::read(&file) {
        Ok(p) => p,
        Err(e) => {
            d.error(path, el.line, format!("sslCa {}: {e}", file.display()));
            return None;
        }
    };
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer};
    let certs = CertificateDer::pem_slice_iter(&pem).filter(|c| c.is_ok()).count();
    if certs == 0 {
        d.error(path, el.line, format!("sslCa {}: no PEM certificate in it", file.display()));
        return None;
    }
    Some(HostTls { ca, ca_pem: pem })
}
