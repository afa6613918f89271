//! The README's promises on a real `spin up`: the quick start, a batch
//! drained by the worker component, retries, and the Redis runtime config.
//!
//! These run only when `spin` is on PATH (`WQ_SPIN` names another binary);
//! otherwise each test prints `SKIPPED` and passes. Build machines without
//! Spin cover the same flows on `wq-test-host` in `tests/e2e.rs`.

mod e2e_support;

use e2e_support::{assert_each_once, eventually, manifest_in, numbered, unique, Redis};
use serde_json::{json, Value};
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{LeasedQueue, NewTask, TaskStatus, WorkQueuePort};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long Spin may take to compile the components and listen.
const STARTUP: Duration = Duration::from_secs(180);

/// The `spin` binary, or `None` (after saying so) when it is not installed.
fn spin_binary() -> Option<PathBuf> {
    let name = std::env::var("WQ_SPIN").unwrap_or_else(|_| "spin".into());
    let found = if name.contains('/') {
        Some(PathBuf::from(&name)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(&name))
                .find(|p| p.is_file())
        })
    };
    if found.is_none() {
        eprintln!(
            "SKIPPED: `{name}` is not on PATH; install Spin (https://spinframework.dev) \
             to run this test against `spin up`"
        );
    }
    found
}

/// A `spin up` of the repository's app on a free loopback port, with its
/// own state directory; stopped on drop.
struct SpinUp {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl SpinUp {
    /// Start `spin up` with Spin variables `vars` (and a runtime config
    /// file with `runtime_config` as its text), and wait until it answers.
    async fn start(spin: &Path, vars: &[(&str, &str)], runtime_config: Option<String>) -> SpinUp {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = manifest_in(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.path().join("spin.log")).expect("log file");
        let mut cmd = Command::new(spin);
        cmd.arg("up")
            .arg("--from")
            .arg(&manifest)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            // `spin up` runs the app in a child (`spin trigger http`): one
            // process group, so that dropping the fixture stops both.
            .process_group(0);
        if let Some(text) = runtime_config {
            let path = dir.path().join("runtime-config.toml");
            std::fs::write(&path, text).expect("write runtime config");
            cmd.arg("--runtime-config-file").arg(path);
        }
        for (name, value) in vars {
            cmd.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        let child = cmd.spawn().expect("start spin up");
        let mut up = SpinUp {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let http = reqwest::Client::new();
        let health = format!("{}/healthz", up.url);
        let started = std::time::Instant::now();
        loop {
            if let Ok(r) = http.get(&health).send().await {
                if r.status().is_success() {
                    return up;
                }
            }
            if let Ok(Some(status)) = up.child.try_wait() {
                panic!("spin up exited with {status}:\n{}", up.log());
            }
            assert!(
                started.elapsed() < STARTUP,
                "spin up did not answer /healthz within {STARTUP:?}:\n{}",
                up.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What `spin up` printed so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("spin.log")).unwrap_or_default()
    }

    fn client(&self) -> HttpWorkQueue {
        HttpWorkQueue::builder(&self.url)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    }
}

impl Drop for SpinUp {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Enqueue `count` echo tasks of a fresh pipeline and wait until every
/// result is there, exactly once.
async fn drain_batch(q: &HttpWorkQueue, count: usize) {
    let pipeline = unique("batch");
    for chunk in numbered(&pipeline, count).chunks(50) {
        q.enqueue_batch(chunk.to_vec()).await.expect("enqueue");
    }
    let results = eventually("every result", Duration::from_secs(120), || async {
        q.rescue().await.ok();
        let r = q.collect_results(&pipeline).await.ok()?;
        (r.len() >= count).then_some(r)
    })
    .await;
    assert_each_once("the batch", &results, count);
}

/// README "Quick start": one `curl` enqueues an `echo` task, the queue
/// pushes it to the worker, and a second `curl` reads the result.
#[tokio::test]
async fn readme_quick_start() {
    let Some(spin) = spin_binary() else { return };
    let app = SpinUp::start(&spin, &[], None).await;
    let http = reqwest::Client::new();
    let pipeline = unique("demo");
    let resp = http
        .post(format!("{}/v1/tasks", app.url))
        .header("content-type", "application/json")
        .body(
            json!({ "pipeline_id": pipeline, "node_name": "echo", "input": { "hello": "spin" } })
                .to_string(),
        )
        .send()
        .await
        .expect("enqueue");
    assert_eq!(resp.status().as_u16(), 201, "{}", app.log());
    let body: Value = resp.json().await.expect("enqueue answer");
    assert_eq!(body["tasks"][0]["duplicate"], false, "{body}");
    let url = format!("{}/v1/pipelines/{pipeline}/results", app.url);
    let results = eventually("the echo result", Duration::from_secs(60), || async {
        let r: Value = http.get(&url).send().await.ok()?.json().await.ok()?;
        r["results"].as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    assert_eq!(
        Value::Array(results),
        json!([{ "node_name": "echo", "output": { "hello": "spin" } }])
    );
}

/// Push dispatch through the worker component drains a batch, each task
/// once; a task whose executor fails twice completes on its third attempt.
#[tokio::test]
async fn batch_and_retries() {
    let Some(spin) = spin_binary() else { return };
    let app = SpinUp::start(
        &spin,
        &[("retry_base_ms", "100"), ("retry_jitter", "0")],
        None,
    )
    .await;
    let q = app.client();
    drain_batch(&q, 200).await;

    let enqueued = q
        .enqueue_batch(vec![NewTask::new(
            unique("retry"),
            "echo",
            json!({ "fail_times": 2 }),
        )])
        .await
        .expect("enqueue");
    let id = enqueued[0].id.clone();
    let status = eventually("the retried task", Duration::from_secs(60), || async {
        q.rescue().await.ok();
        match q.status(&id).await.ok().flatten()? {
            s @ (TaskStatus::Completed { .. } | TaskStatus::DeadLetter { .. }) => Some(s),
            _ => None,
        }
    })
    .await;
    assert_eq!(
        status,
        TaskStatus::Completed {
            output: json!({ "fail_times": 2 })
        },
        "{}",
        app.log()
    );
    let stats = q.stats().await.expect("stats");
    assert_eq!((stats.pending, stats.in_progress), (0, 0), "{stats:?}");
}

/// `runtime-config/redis.toml` with the store pointed at a local
/// `redis-server`: the queue works on Spin's Redis backend.
#[tokio::test]
async fn redis_runtime_config() {
    let Some(spin) = spin_binary() else { return };
    let Some(redis) = Redis::start().await else {
        return;
    };
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime-config/redis.toml"),
    )
    .expect("read runtime-config/redis.toml");
    let config = shipped.replace("redis://127.0.0.1:6379", &redis.url);
    assert_ne!(
        config, shipped,
        "runtime-config/redis.toml names another URL"
    );
    let app = SpinUp::start(&spin, &[("kv_get_many", "single")], Some(config)).await;
    drain_batch(&app.client(), 100).await;
}
