//! Reads rule.xml: tableRules (one sharding column each) and functions with their properties.

use std::path::Path;

use super::model::*;
use super::xml::Element;
use super::{Attrs, Diagnostics};

pub fn read(path: &Path, root: &Element, d: &mut Diagnostics) -> (Vec<TableRule>, Vec<Function>) {
    let (mut rules, mut funcs) = (Vec::new(), Vec::new());
    if root.name != "rule" {
        d.error(path, root.line, format!("root element is <{}>, expected <mycat:rule>", root.name));
        return (rules, funcs);
    }
    for el in &root.children {
        match el.name.as_str() {
            "tableRule" => {
                let mut a = Attrs::new(path, el);
                let name = a.required("name", d);
                a.finish(d);
                let mut column = String::new();
                let mut algorithm = String::new();
                match el.children_named("rule").next() {
                    Some(r) => {
                        for c in &r.children {
                            match c.name.as_str() {
                                "columns" => column = c.text.trim().to_string(),
                                "algorithm" => algorithm = c.text.trim().to_string(),
                                other => d.warn(path, c.line, format!("unknown element <{other}> in <rule> ignored")),
                            }
                        }
                    }
                    None => d.error(path, el.line, format!("<tableRule name=\"{name}\"> has no <rule>")),
                }
                if column.contains(',') {
                    d.error(
                        path,
                        el.line,
                        format!("<tableRule name=\"{name}\">: columns '{column}' must be a single column"),
                    );
                }
                if column.is_empty() || algorithm.is_empty() {
                    d.error(path, el.line, format!("<tableRule name=\"{name}\"> needs <columns> and <algorithm>"));
                }
                if rules.iter().any(|r: &TableRule| r.name == name) {
                    d.error(path, el.line, format!("duplicate <tableRule name=\"{name}\">"));
                }
                rules.push(TableRule { name, column, algorithm, line: el.line });
            }
            "function" => {
                let mut a = Attrs::new(path, el);
                let name = a.required("name", d);
                let class = a.required("class", d);
                a.finish(d);
                let mut properties = std::collections::BTreeMap::new();
                for p in &el.children {
                    match (p.name.as_str(), p.attr("name")) {
                        ("property", Some(n)) => {
                            properties.insert(n.to_string(), p.text.trim().to_string());
                        }
                        _ => d.warn(path, p.line, format!("unexpected <{}> in <function> ignored", p.name)),
                    }
                }
                if funcs.iter().any(|f: &Function| f.name == name) {
                    d.error(path, el.line, format!("duplicate <function name=\"{name}\">"));
                }
                funcs.push(Function { name, class, properties, line: el.line });
            }
            other => d.warn(path, el.line, format!("unknown element <{other}> ignored")),
        }
    }
    (rules, funcs)
}
