//! The Docker stack, checked offline (no Docker engine runs here): docker-compose.yml validates with
//! the compose tool, every host of config/schema.xml is a service on its url's port with a health
//! check, replicas replicate from their writeHost, and the Dockerfile builds from what the repo has.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::root;
use serde_json::Value;

fn resolved() -> Value {
    let out = Command::new("python3")
        .arg(root().join("tests/clients/compose_check.py"))
        .arg(root().join("docker-compose.yml"))
        .output()
        .expect("run python3");
    assert!(out.status.success(), "the compose file does not validate: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["quiet_rc"], 0, "{} config -q", v["tool"]);
    v["config"].clone()
}

/// `--name=value` of a service's command.
fn flag<'a>(svc: &'a Value, name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    svc["command"].as_array()?.iter().filter_map(Value::as_str).find_map(|a| a.strip_prefix(prefix.as_str()))
}

fn env<'a>(svc: &'a Value, name: &str) -> Option<&'a str> {
    match &svc["environment"] {
        Value::Object(m) => m.get(name).and_then(Value::as_str),
        Value::Array(a) => a.iter().filter_map(Value::as_str).find_map(|kv| kv.strip_prefix(&format!("{name}="))),
        _ => None,
    }
}

/// (source, target) of a volume, in the long syntax (`docker compose`) or the short one (`docker-compose`).
fn mount(v: &Value) -> (&str, &str) {
    match v.as_str() {
        Some(s) => {
            let mut parts = s.split(':');
            (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
        }
        None => (v["source"].as_str().unwrap_or_default(), v["target"].as_str().unwrap_or_default()),
    }
}

#[test]
fn the_compose_stack_is_the_demo_topology_with_health_checks() {
    let c = resolved();
    let services = c["services"].as_object().expect("services");
    for (name, svc) in services {
        assert!(svc["healthcheck"]["test"].is_array(), "service {name} has no health check");
    }
    let (cfg, _) = shardcat::config::load(&root().join("config"), None).expect("config/ loads");
    let mut hosts = BTreeMap::new();
    for dh in &cfg.data_hosts {
        for w in &dh.write_hosts {
            hosts.insert(w.host.clone(), (w.url.clone(), None));
            for r in &w.read_hosts {
                hosts.insert(r.host.clone(), (r.url.clone(), Some(w.url.clone())));
            }
        }
    }
    assert_eq!(hosts.len(), 4, "two primaries and their replicas in config/schema.xml");
    for (host, (url, primary)) in &hosts {
        let svc = services.get(host).unwrap_or_else(|| panic!("no service for host {host} of schema.xml"));
        assert!(svc["image"].as_str().is_some_and(|i| i.starts_with("mariadb:")), "{host}: the official image");
        let port = url.rsplit(':').next().unwrap();
        assert_eq!(flag(svc, "port"), Some(port), "{host} listens on {url}");
        assert_eq!(svc["network_mode"], "service:net", "{host} shares the stack's namespace (127.0.0.1 urls)");
        let mounts: Vec<&str> = svc["volumes"].as_array().unwrap().iter().map(|v| mount(v).1).collect();
        assert!(mounts.iter().any(|m| m.contains("/docker-entrypoint-initdb.d")), "{host}: init scripts {mounts:?}");
        match primary {
            Some(p) => {
                assert_eq!(env(svc, "PRIMARY_PORT"), p.rsplit(':').next(), "{host} replicates from {p}");
                assert_eq!(flag(svc, "read-only"), Some("ON"), "{host} is read-only");
            }
            None => assert_eq!(env(svc, "PRIMARY_PORT"), None, "{host} is a primary"),
        }
    }
    let sc = &services["shardcat"];
    assert!(sc["build"]["dockerfile"].as_str().is_some_and(|d| d.ends_with("Dockerfile")));
    let mounts: Vec<(&str, &str)> = sc["volumes"].as_array().unwrap().iter().map(mount).collect();
    for dir in ["config", "rules"] {
        let src = root().join(dir);
        assert!(
            mounts.iter().any(|(s, t)| std::path::Path::new(s) == src && t.ends_with(dir)),
            "{dir}/ is mounted into shardcat: {mounts:?}"
        );
    }
    let published: Vec<String> = services["net"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["published"].as_str().map(str::to_string).unwrap_or_else(|| p["published"].to_string()))
        .collect();
    for port in [cfg.system.server_port, cfg.system.manager_port, cfg.system.http_port] {
        assert!(published.contains(&port.to_string()), "port {port} published: {published:?}");
    }
}

#[test]
fn the_dockerfile_is_multi_stage_and_copies_what_exists() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(text.lines().filter(|l| l.starts_with("FROM ")).count() >= 2, "a build stage and a run stage");
    for line in text.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for src in &words[1..words.len() - 1] {
            assert!(root().join(src).exists(), "Dockerfile copies {src}, which the repo does not have");
        }
    }
    for script in ["docker/initdb/init.sh", "docker/healthcheck.sh"] {
        let st = Command::new("bash").arg("-n").arg(root().join(script)).status().unwrap();
        assert!(st.success(), "{script} does not parse");
    }
}
