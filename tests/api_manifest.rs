//! `spin.toml` matches the code: every variable a component reads is an
//! application variable with a default and is mapped into that component;
//! the routes reach the right components; only the queue and the worker
//! get the key-value store.

use spin_work_queue::api::ApiConfig;
use spin_work_queue::worker::WorkerConfig;
use std::cell::RefCell;
use std::collections::BTreeSet;
use toml::Value;
use wq_executors::fetch::FetchConfig;
use wq_executors::ExecutorAuth;

/// Read by the components' glue besides the configs: the `get-many` mode.
const GLUE_VARIABLES: &[&str] = &["kv_get_many"];

fn manifest() -> Value {
    let text = include_str!("../spin.toml");
    Value::Table(toml::from_str(text).expect("spin.toml parses"))
}

/// The variable names a config constructor asks for.
fn names_read(read: impl Fn(&dyn Fn(&str) -> Option<String>)) -> BTreeSet<String> {
    let seen = RefCell::new(BTreeSet::new());
    read(&|name: &str| {
        seen.borrow_mut().insert(name.to_string());
        None
    });
    let mut names = seen.into_inner();
    names.extend(GLUE_VARIABLES.iter().map(|s| s.to_string()));
    names
}

fn component<'a>(m: &'a Value, id: &str) -> &'a Value {
    &m["component"][id]
}

fn table_keys(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn every_variable_read_is_declared_with_a_default_and_mapped() {
    let m = manifest();
    let app = m["variables"].as_table().expect("[variables]");
    let queue_reads = names_read(|var| {
        ApiConfig::from_lookup(var).expect("defaults are valid");
    });
    let worker_reads = names_read(|var| {
        WorkerConfig::from_lookup(var).expect("defaults are valid");
    });
    let mut fetch_reads = names_read(|var| {
        FetchConfig::from_lookup(var).expect("defaults are valid");
        ExecutorAuth::from_lookup(var);
    });
    fetch_reads.retain(|name| !GLUE_VARIABLES.contains(&name.as_str())); // no store
    let mut echo_reads = names_read(|var| {
        ExecutorAuth::from_lookup(var);
    });
    echo_reads.retain(|name| !GLUE_VARIABLES.contains(&name.as_str()));
    assert!(echo_reads.contains("api_token") && fetch_reads.contains("api_token"));
    assert!(queue_reads.contains("api_token") && queue_reads.contains("worker_url"));
    assert!(worker_reads.contains("executors") && worker_reads.contains("executor_timeout_ms"));
    assert!(fetch_reads.contains("fetch_private_hosts"));
    for (id, reads) in [
        ("queue", &queue_reads),
        ("worker", &worker_reads),
        ("fetch", &fetch_reads),
        ("echo", &echo_reads),
    ] {
        let mapped = table_keys(component(&m, id).get("variables"));
        for name in reads {
            let decl = app
                .get(name)
                .unwrap_or_else(|| panic!("{name} is not an app variable"));
            assert!(decl.get("default").is_some(), "{name} has no default");
            assert!(mapped.contains(name), "{id} does not map {name}");
        }
    }
}

#[test]
fn variable_defaults_are_the_code_defaults() {
    let m = manifest();
    let vars = &m["variables"];
    let default = |name: &str| {
        vars[name]["default"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let from_manifest = WorkerConfig::from_lookup(|name| vars.get(name).map(|_| default(name)))
        .expect("the manifest's defaults are valid");
    assert_eq!(from_manifest, WorkerConfig::default());
    let fetch = FetchConfig::from_lookup(|name| vars.get(name).map(|_| default(name)))
        .expect("the manifest's defaults are valid");
    assert_eq!(fetch, FetchConfig::default());
}

#[test]
fn public_routes_reach_the_api_and_the_worker_and_executors_are_private() {
    let m = manifest();
    let mut public = BTreeSet::new();
    let mut private = BTreeSet::new();
    for t in m["trigger"]["http"].as_array().expect("[[trigger.http]]") {
        let id = t["component"].as_str().unwrap_or_default().to_string();
        match &t["route"] {
            Value::String(route) => public.insert((route.clone(), id)),
            route => {
                assert_eq!(route["private"].as_bool(), Some(true), "{id}: {route}");
                private.insert(id)
            }
        };
    }
    let expected: BTreeSet<(String, String)> = [
        ("/v1/...", "queue"),
        ("/healthz", "queue"),
        ("/worker/...", "worker"),
    ]
    .iter()
    .map(|(r, id)| (r.to_string(), id.to_string()))
    .collect();
    assert_eq!(public, expected, "no executor is public");
    assert_eq!(private, BTreeSet::from(["echo".into(), "fetch".into()]));
    // The worker reaches each bundled executor by service chaining.
    let routes = WorkerConfig::default().routes;
    let hosts = component(&m, "worker")["allowed_outbound_hosts"]
        .as_array()
        .expect("worker hosts")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect::<BTreeSet<_>>();
    for id in ["echo", "fetch"] {
        assert_eq!(routes.url_for(id), format!("http://{id}.spin.internal/"));
        assert!(
            hosts.contains(&format!("http://{id}.spin.internal")),
            "{hosts:?}"
        );
    }
}

#[test]
fn only_the_queue_and_the_worker_open_the_store() {
    let m = manifest();
    for (id, wants_kv) in [
        ("queue", true),
        ("worker", true),
        ("echo", false),
        ("fetch", false),
    ] {
        let c = component(&m, id);
        let stores: Vec<&str> = c
            .get("key_value_stores")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let expected: &[&str] = if wants_kv { &["default"] } else { &[] };
        assert_eq!(stores, expected, "{id}");
        let build = c["build"]["command"].as_str().unwrap_or_default();
        assert_eq!(
            build,
            format!("cargo build --target wasm32-wasip2 --release -p wq-{id}")
        );
        let source = c["source"].as_str().unwrap_or_default();
        assert_eq!(source, format!("target/wasm32-wasip2/release/wq_{id}.wasm"));
    }
    let hosts = &component(&m, "queue")["allowed_outbound_hosts"];
    assert_eq!(hosts.as_array().map(Vec::len), Some(1), "queue: {hosts}");
    assert_eq!(hosts[0].as_str(), Some("http://self"), "queue");
}
