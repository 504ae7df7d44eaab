//! What a reload changes: two loaded configs compared item by item (schemas, tables, rules, functions and
//! their map files, users, dataNodes, dataHosts and their hosts, cdc sinks and feeds), as operator lines.

use super::model::*;

/// Debug text with every `line` field zeroed: two items equal by it are configured alike wherever they
/// stand in their files.
fn plain(item: &impl std::fmt::Debug) -> String {
    let text = format!("{item:?}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("line: ") {
        out.push_str(&rest[..at + 6]);
        rest = rest[at + 6..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('0');
    }
    out.push_str(rest);
    out
}

/// Whether two dataHosts are configured alike (same hosts, URLs, users, pool sizes, balance, switch…).
pub fn same_data_host(a: &DataHost, b: &DataHost) -> bool {
    plain(a) == plain(b)
}

/// A map file's bytes, when a function names one (`mapFile`), for comparing two generations.
fn map_file(cfg: &Config, f: &Function) -> Option<Vec<u8>> {
    let name = f.properties.get("mapFile")?;
    std::fs::read(cfg.rules_dir.join(name)).ok()
}

/// Adds "`what` `name` added/removed/changed" lines for two lists of named items.
fn compare<T: std::fmt::Debug>(
    out: &mut Vec<String>,
    what: &str,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &str,
    same: impl Fn(&T, &T) -> bool,
) {
    for n in new {
        match old.iter().find(|o| name(o) == name(n)) {
            None => out.push(format!("{what} {} added", name(n))),
            Some(o) if !same(o, n) => out.push(format!("{what} {} changed", name(n))),
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| name(n) == name(o)) {
            out.push(format!("{what} {} removed", name(o)));
        }
    }
}

/// Every difference between `old` and `new`, one line each, in a stable order. Reads map files
/// (call it off the runtime's workers).
pub fn diff(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for s in &new.schemas {
        match old.schema(&s.name) {
            None => out.push(format!("schema {} added", s.name)),
            Some(o) => {
                let (ot, nt): (Vec<&Table>, Vec<&Table>) = (o.all_tables(), s.all_tables());
                let mut tables = Vec::new();
                compare(&mut tables, "table", &ot, &nt, |t| t.name.as_str(), |a, b| plain(a) == plain(b));
                out.extend(tables.into_iter().map(|l| format!("schema {}: {l}", s.name)));
                let (mut a, mut b) = (o.clone(), s.clone());
                (a.tables, b.tables) = (Vec::new(), Vec::new());
                if plain(&a) != plain(&b) {
                    out.push(format!("schema {} changed", s.name));
                }
            }
        }
    }
    for o in &old.schemas {
        if new.schema(&o.name).is_none() {
            out.push(format!("schema {} removed", o.name));
        }
    }
    compare(&mut out, "rule", &old.table_rules, &new.table_rules, |r| r.name.as_str(), |a, b| plain(a) == plain(b));
    compare(
        &mut out,
        "function",
        &old.functions,
        &new.functions,
        |f| f.name.as_str(),
        |a, b| plain(a) == plain(b) && map_file(old, a) == map_file(new, b),
    );
    compare(&mut out, "dataNode", &old.data_nodes, &new.data_nodes, |n| n.name.as_str(), |a, b| plain(a) == plain(b));
    compare(&mut out, "dataHost", &old.data_hosts, &new.data_hosts, |h| h.name.as_str(), same_data_host);
    compare(&mut out, "user", &old.users, &new.users, |u| u.name.as_str(), |a, b| plain(a) == plain(b));
    compare(&mut out, "cdc sink", &old.cdc.sinks, &new.cdc.sinks, |k| k.name.as_str(), |a, b| plain(a) == plain(b));
    compare(&mut out, "cdc feed", &old.cdc.feeds, &new.cdc.feeds, |f| f.name.as_str(), |a, b| plain(a) == plain(b));
    if plain(&old.system) != plain(&new.system) {
        out.push("system properties changed".into());
    }
    if plain(&old.firewall) != plain(&new.firewall) {
        out.push("firewall changed".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &std::path::Path) -> Config {
        crate::config::load(dir, None).unwrap_or_else(|d| panic!("{:?}", d.0)).0
    }

    #[test]
    fn line_numbers_do_not_count_but_values_do() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sharding");
        let a = load(&dir);
        let mut b = a.clone();
        assert!(diff(&a, &b).is_empty(), "{:?}", diff(&a, &b));
        b.data_hosts[0].line += 7;
        b.schemas[0].tables[0].line += 3;
        assert!(diff(&a, &b).is_empty(), "moved lines are no change: {:?}", diff(&a, &b));
        b.data_hosts[0].max_con += 1;
        let t = b.schemas[0].tables.remove(0);
        b.users.push(User { name: "new_user".into(), ..Default::default() });
        let d = diff(&a, &b);
        assert!(d.contains(&format!("dataHost {} changed", a.data_hosts[0].name)), "{d:?}");
        assert!(d.contains(&format!("schema {}: table {} removed", a.schemas[0].name, t.name)), "{d:?}");
        assert!(d.contains(&"user new_user added".to_string()), "{d:?}");
        assert!(!same_data_host(&a.data_hosts[0], &b.data_hosts[0]));
    }
}
