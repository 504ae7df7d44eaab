//! Loading a Mycat conf dir: finds schema.xml, server.xml and rule.xml, reads them into the typed model,
//! checks cross-references, and reports every problem as `file:line: message`.

pub mod cdc;
pub mod diff;
pub mod expand;
pub mod model;
pub mod placement;
pub mod rules;
pub mod schema;
pub mod server;
pub mod summary;
pub mod xml;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::Config;
use model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// One problem found in a config file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub level: Level,
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Diagnostic { level: Level::Error, file: file.to_path_buf(), line, message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = if self.level == Level::Warning { "warning: " } else { "" };
        write!(f, "{}:{}: {}{}", self.file.display(), self.line, tag, self.message)
    }
}

#[derive(Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn error(&mut self, file: &Path, line: usize, msg: impl Into<String>) {
        self.0.push(Diagnostic::error(file, line, msg));
    }
    pub fn warn(&mut self, file: &Path, line: usize, msg: impl Into<String>) {
        self.0.push(Diagnostic { level: Level::Warning, file: file.to_path_buf(), line, message: msg.into() });
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.level == Level::Error)
    }
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.level == Level::Error)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.level == Level::Warning)
    }
}

/// Attribute access that remembers what was read, so unread (unknown) attributes can be warned about.
pub struct Attrs<'a> {
    path: &'a Path,
    el: &'a xml::Element,
    used: Vec<&'a str>,
}

impl<'a> Attrs<'a> {
    pub fn new(path: &'a Path, el: &'a xml::Element) -> Self {
        Attrs { path, el, used: Vec::new() }
    }
    pub fn get(&mut self, name: &'a str) -> Option<&'a str> {
        self.used.push(name);
        self.el.attr(name)
    }
    pub fn known(&mut self, names: &[&'a str]) {
        self.used.extend_from_slice(names);
    }
    pub fn required(&mut self, name: &'a str, d: &mut Diagnostics) -> String {
        match self.get(name) {
            Some(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => {
                d.error(self.path, self.el.line, format!("<{}> needs attribute {name}", self.el.name));
                String::new()
            }
        }
    }
    pub fn int(&mut self, name: &'a str, default: i64, d: &mut Diagnostics) -> i64 {
        match self.get(name) {
            None => default,
            Some(v) => v.trim().parse().unwrap_or_else(|_| {
                d.error(self.path, self.el.line, format!("<{}> {name}=\"{v}\" is not a number", self.el.name));
                default
            }),
        }
    }
    pub fn bool(&mut self, name: &'a str, default: bool) -> bool {
        self.get(name).map(|v| v.trim().eq_ignore_ascii_case("true")).unwrap_or(default)
    }
    pub fn finish(self, d: &mut Diagnostics) {
        for (k, _) in &self.el.attrs {
            if !self.used.contains(&k.as_str()) {
                d.warn(self.path, self.el.line, format!("unknown attribute {k} of <{}> ignored", self.el.name));
            }
        }
    }
}

/// Where rule.xml lives: `--rules`, else the conf dir, else `<conf dir>/../rules`.
pub fn rules_dir(config_dir: &Path, rules: Option<&Path>) -> PathBuf {
    if let Some(r) = rules {
        return r.to_path_buf();
    }
    if config_dir.join("rule.xml").exists() {
        return config_dir.to_path_buf();
    }
    let sibling = config_dir.join("..").join("rules");
    if sibling.join("rule.xml").exists() {
        return sibling;
    }
    config_dir.to_path_buf()
}

fn read_xml(path: &Path, d: &mut Diagnostics) -> Option<xml::Element> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            d.error(path, 0, format!("cannot read: {e}"));
            return None;
        }
    };
    match xml::parse(path, &text) {
        Ok(root) => Some(root),
        Err(e) => {
            d.0.push(e);
            None
        }
    }
}

/// Only server.xml's users (for tools that log in with them, such as `shardcat reload --config`).
pub fn load_users(config_dir: &Path) -> Option<Vec<User>> {
    let mut d = Diagnostics::default();
    let path = config_dir.join("server.xml");
    read_xml(&path, &mut d).map(|r| server::read(&path, &r, &mut d).users)
}

/// Loads and validates a conf dir. `Err` carries every diagnostic when any is an error; `Ok` carries
/// the config with its warnings.
pub fn load(config_dir: &Path, rules: Option<&Path>) -> Result<(Config, Diagnostics), Diagnostics> {
    let mut d = Diagnostics::default();
    let rules_dir = rules_dir(config_dir, rules);
    let schema_path = config_dir.join("schema.xml");
    let server_path = config_dir.join("server.xml");
    let rule_path = rules_dir.join("rule.xml");
    let sx = read_xml(&schema_path, &mut d).map(|r| schema::read(&schema_path, &r, &mut d));
    let sv = read_xml(&server_path, &mut d).map(|r| server::read(&server_path, &r, &mut d));
    let rx = read_xml(&rule_path, &mut d).map(|r| rules::read(&rule_path, &r, &mut d));
    let cdc_path = config_dir.join("cdc.xml");
    let cdc = if cdc_path.exists() {
        read_xml(&cdc_path, &mut d).map(|r| cdc::read(&cdc_path, &r, &mut d))
    } else {
        Some(Cdc::default())
    };
    let (Some(sx), Some(sv), Some((table_rules, functions)), Some(cdc)) = (sx, sv, rx, cdc) else {
        return Err(d);
    };
    let mut cfg = Config {
        schemas: sx.schemas,
        data_nodes: sx.data_nodes,
        data_hosts: sx.data_hosts,
        system: sv.system,
        users: sv.users,
        firewall: sv.firewall,
        table_rules,
        functions,
        config_dir: config_dir.to_path_buf(),
        rules_dir,
        cdc,
    };
    resolve_distribute(&mut cfg);
    validate(&cfg, &schema_path, &server_path, &rule_path, &mut d);
    cdc::validate(&cfg, &cdc_path, &mut d);
    if d.has_errors() {
        Err(d)
    } else {
        Ok((cfg, d))
    }
}

/// `distribute(dn…)` lists: reorder round-robin across dataHosts (dn1@h1, dnX@h2, dn2@h1, …).
fn resolve_distribute(cfg: &mut Config) {
    let host_of: std::collections::HashMap<String, String> =
        cfg.data_nodes.iter().map(|n| (n.name.clone(), n.data_host.clone())).collect();
    fn fix(ts: &mut [Table], host_of: &std::collections::HashMap<String, String>) {
        for t in ts {
            if t.data_nodes.first().map(String::as_str) == Some(schema::DISTRIBUTE_MARK) {
                t.data_nodes.remove(0);
                let mut groups: Vec<(String, std::collections::VecDeque<String>)> = Vec::new();
                for dn in &t.data_nodes {
                    let h = host_of.get(dn).cloned().unwrap_or_default();
                    match groups.iter_mut().find(|(g, _)| *g == h) {
                        Some((_, q)) => q.push_back(dn.clone()),
                        None => groups.push((h, std::collections::VecDeque::from([dn.clone()]))),
                    }
                }
                let mut out = Vec::new();
                while groups.iter().any(|(_, q)| !q.is_empty()) {
                    for (_, q) in groups.iter_mut() {
                        if let Some(dn) = q.pop_front() {
                            out.push(dn);
                        }
                    }
                }
                t.data_nodes = out.clone();
                for c in t.children.iter_mut() {
                    c.data_nodes = out.clone();
                }
            }
            fix(&mut t.children, host_of);
        }
    }
    for s in cfg.schemas.iter_mut() {
        fix(&mut s.tables, &host_of);
    }
}

fn validate(cfg: &Config, schema_path: &Path, server_path: &Path, rule_path: &Path, d: &mut Diagnostics) {
    let mut seen = std::collections::HashMap::new();
    for s in &cfg.schemas {
        if seen.insert(s.name.to_ascii_uppercase(), s.line).is_some() {
            d.error(schema_path, s.line, format!("duplicate <schema name=\"{}\">", s.name));
        }
        if s.tables.is_empty() && s.data_node.is_none() {
            d.error(schema_path, s.line, format!("<schema name=\"{}\"> has no tables and no default dataNode", s.name));
        }
        for dn in s.data_node.iter().chain(s.random_data_node.iter()) {
            if cfg.data_node(dn).is_none() {
                d.error(schema_path, s.line, format!("<schema name=\"{}\"> uses unknown dataNode '{dn}'", s.name));
            }
        }
        let mut tnames = std::collections::HashSet::new();
        for t in s.all_tables() {
            if !tnames.insert(t.name.to_ascii_uppercase()) {
                d.error(schema_path, t.line, format!("duplicate table '{}' in schema '{}'", t.name, s.name));
            }
            for dn in &t.data_nodes {
                if cfg.data_node(dn).is_none() {
                    d.error(schema_path, t.line, format!("table '{}' uses unknown dataNode '{dn}'", t.name));
                }
            }
            if let TableKind::Sharded { rule } = &t.kind {
                validate_rule(cfg, t, rule, schema_path, rule_path, d);
            }
        }
    }
    let mut dn_seen = std::collections::HashSet::new();
    for n in &cfg.data_nodes {
        if !dn_seen.insert(n.name.clone()) {
            d.error(schema_path, n.line, format!("duplicate dataNode '{}'", n.name));
        }
        if cfg.data_host(&n.data_host).is_none() {
            d.error(schema_path, n.line, format!("dataNode '{}' uses unknown dataHost '{}'", n.name, n.data_host));
        }
    }
    let mut dh_seen = std::collections::HashSet::new();
    for h in &cfg.data_hosts {
        if !dh_seen.insert(h.name.clone()) {
            d.error(schema_path, h.line, format!("duplicate dataHost '{}'", h.name));
        }
        if h.db_type != "mysql" || h.db_driver != "native" {
            d.error(
                schema_path,
                h.line,
                format!(
                    "dataHost '{}': dbType '{}' / dbDriver '{}' — shardcat speaks to MySQL/MariaDB natively only",
                    h.name, h.db_type, h.db_driver
                ),
            );
        }
        for w in &h.write_hosts {
            for (url, line) in std::iter::once((&w.url, w.line)).chain(w.read_hosts.iter().map(|r| (&r.url, r.line))) {
                if url.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
                    d.error(schema_path, line, format!("url '{url}' must be host:port"));
                }
            }
        }
    }
    for u in &cfg.users {
        for s in &u.schemas {
            if cfg.schema(s).is_none() {
                d.error(server_path, u.line, format!("user '{}' lists unknown schema '{s}'", u.name));
            }
        }
    }
    if cfg.users.is_empty() {
        d.error(server_path, 1, "no <user> defined");
    }
    for f in &cfg.functions {
        match crate::rule::class_name(&f.class) {
            None => d.error(rule_path, f.line, format!("function '{}': unknown class '{}'", f.name, f.class)),
            Some(c) => {
                for p in f.properties.keys() {
                    if !crate::rule::known_properties(c).contains(&p.as_str()) {
                        d.warn(
                            rule_path,
                            f.line,
                            format!("function '{}' ({c}): unknown property '{p}' ignored", f.name),
                        );
                    }
                }
            }
        }
    }
    for r in &cfg.table_rules {
        if !r.algorithm.is_empty() && cfg.function(&r.algorithm).is_none() {
            d.error(rule_path, r.line, format!("tableRule '{}' uses unknown function '{}'", r.name, r.algorithm));
        }
    }
}

fn validate_rule(cfg: &Config, t: &Table, rule: &str, schema_path: &Path, rule_path: &Path, d: &mut Diagnostics) {
    let Some(r) = cfg.table_rule(rule) else {
        d.error(schema_path, t.line, format!("table '{}' uses unknown rule '{rule}'", t.name));
        return;
    };
    let Some(f) = cfg.function(&r.algorithm) else { return };
    if crate::rule::class_name(&f.class).is_none() {
        return; // reported once for the function
    }
    let ctx =
        crate::rule::BuildCtx { rules_dir: cfg.rules_dir.clone(), table_nodes: t.data_nodes.len(), ruledata: None };
    match crate::rule::build(f, &ctx).map(|func| func.partition_count()) {
        Ok(Some(n)) if n > t.data_nodes.len() => d.error(
            schema_path,
            t.line,
            format!(
                "table '{}': rule '{rule}' (function '{}') yields {n} partitions but the table has {} dataNodes",
                t.name,
                f.name,
                t.data_nodes.len()
            ),
        ),
        Ok(_) => {}
        Err(e) => match &e.map_file {
            Some((file, line)) if *line > 0 => d.error(file, *line, e.message),
            _ => d.error(rule_path, f.line, e.message),
        },
    }
}
