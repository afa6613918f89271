//! Plumbing for the end-to-end suite: build the components if needed, serve
//! the app from `spin.toml` with `wq-test-host` (or use `WQ_BASE_URL`), a
//! frozen clock the tests move, and waiting for asynchronous work.
#![allow(dead_code)]

use spin_work_queue::client::HttpWorkQueue;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wq_test_host::{HostConfig, RunningHost};

/// The components of the app, by package and wasm file.
const COMPONENTS: [(&str, &str); 4] = [
    ("wq-queue", "wq_queue.wasm"),
    ("wq-worker", "wq_worker.wasm"),
    ("wq-echo", "wq_echo.wasm"),
    ("wq-fetch", "wq_fetch.wasm"),
];

/// A running app: the test host, or the server named by `WQ_BASE_URL`.
pub struct App {
    /// Base URL, no trailing slash.
    pub url: String,
    /// The bearer token the app requires, if any.
    pub token: Option<String>,
    clock: Option<FrozenClock>,
    host: Option<RunningHost>,
    _dir: Option<tempfile::TempDir>,
}

/// How to start the test host.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Spin variables (`name`, value).
    pub variables: Vec<(&'static str, String)>,
    /// Freeze the components' wall clock at this time (Unix ms); tests move
    /// it with [`App::advance`].
    pub frozen_at: Option<u64>,
    /// Back the key-value store with this Redis URL instead of SQLite.
    pub redis: Option<String>,
    /// Text replacements applied to the copy of `spin.toml` served.
    pub manifest_edits: Vec<(String, String)>,
    /// Emulate this hosted platform (`fermyon-cloud`, `akamai-functions`)
    /// and serve its manifest (`deploy/<platform>/spin.toml`, the hosted
    /// builds).
    pub platform: Option<&'static str>,
    /// A SQLite file shared with other hosts, and the replication lag
    /// between them.
    pub shared: Option<(PathBuf, u64)>,
}

impl Options {
    /// Set a Spin variable.
    pub fn var(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.variables.push((name, value.into()));
        self
    }

    /// Serve `spin.toml` with `from` (which must occur in it) replaced by
    /// `to`.
    pub fn edit(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.manifest_edits.push((from.into(), to.into()));
        self
    }
}

/// The external server to test instead of the test host (`WQ_BASE_URL`).
pub fn external() -> Option<String> {
    std::env::var("WQ_BASE_URL")
        .ok()
        .map(|u| u.trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
}

/// The runtime hosts run on: it outlives every test's own runtime.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("host runtime")
    })
}

impl App {
    /// Start the app on the test host with `options`.
    pub async fn start(options: Options) -> App {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = match options.platform {
            None => manifest_in(dir.path()),
            Some(platform) => hosted_manifest_in(dir.path(), platform),
        };
        if !options.manifest_edits.is_empty() {
            let mut text = std::fs::read_to_string(&manifest).expect("read manifest copy");
            for (from, to) in &options.manifest_edits {
                assert!(text.contains(from.as_str()), "spin.toml has no {from:?}");
                text = text.replace(from.as_str(), to);
            }
            std::fs::write(&manifest, text).expect("write manifest copy");
        }
        let mut config = HostConfig::new(manifest);
        if let Some(platform) = options.platform {
            config.platform =
                wq_test_host::platform::Platform::parse(platform).expect("a known platform");
        }
        config.kv_sqlite = Some(dir.path().join("kv.db"));
        if let Some((db, lag)) = &options.shared {
            config.kv_sqlite = Some(db.clone());
            config.replication_lag_ms = Some(*lag);
        }
        config.kv_redis = options.redis.clone();
        if config.kv_redis.is_some() {
            config.kv_sqlite = None;
        }
        let token = options
            .variables
            .iter()
            .find(|(k, _)| *k == "api_token")
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty());
        config.variables = options
            .variables
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let clock = options.frozen_at.map(|at| {
            let clock = FrozenClock::new(dir.path().join("clock"), at);
            config.clock_file = Some(clock.path.clone());
            clock
        });
        let host = runtime()
            .spawn(wq_test_host::serve(config))
            .await
            .expect("host task")
            .expect("the test host starts");
        App {
            url: host.url(),
            token,
            clock,
            host: Some(host),
            _dir: Some(dir),
        }
    }

    /// Outbound requests the app's components sent (test host only).
    pub fn outbound_requests(&self) -> u64 {
        self.host.as_ref().map_or(0, RunningHost::outbound_requests)
    }

    /// Start the app with `options` on the SQLite file `db`, which other
    /// hosts may share, seeing their writes `lag_ms` late.
    pub async fn start_shared(options: Options, db: &Path, lag_ms: u64) -> App {
        let mut options = options;
        options.shared = Some((db.to_path_buf(), lag_ms));
        App::start(options).await
    }

    /// The server named by `WQ_BASE_URL` (token from `WQ_API_TOKEN`).
    pub fn external(url: String) -> App {
        App {
            url,
            token: std::env::var("WQ_API_TOKEN").ok().filter(|t| !t.is_empty()),
            clock: None,
            host: None,
            _dir: None,
        }
    }

    /// A client of this app.
    pub fn client(&self) -> HttpWorkQueue {
        let mut b = HttpWorkQueue::builder(&self.url).timeout(Duration::from_secs(60));
        if let Some(t) = &self.token {
            b = b.token(t.clone());
        }
        b.build().expect("client")
    }

    /// Move the frozen clock forward.
    pub fn advance(&self, ms: u64) {
        self.clock
            .as_ref()
            .expect("this app was started without a frozen clock")
            .advance(ms);
    }

    /// A raw request builder (for contract checks the client cannot make).
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client")
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(host) = self.host.take() {
            // Stop accepting; requests in flight finish on the host runtime.
            drop(host);
        }
    }
}

/// The components' wall clock, frozen at a value the test moves.
struct FrozenClock {
    path: PathBuf,
    now: AtomicU64,
}

impl FrozenClock {
    fn new(path: PathBuf, at: u64) -> Self {
        let c = FrozenClock {
            path,
            now: AtomicU64::new(at),
        };
        c.write(at);
        c
    }

    fn advance(&self, ms: u64) {
        let now = self.now.fetch_add(ms, SeqCst) + ms;
        self.write(now);
    }

    fn write(&self, at: u64) {
        // Write then rename, so the host never reads half a value.
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, format!("={at}\n")).expect("write clock");
        std::fs::rename(&tmp, &self.path).expect("move clock");
    }
}

/// The target directory of this build (the test binary is in
/// `<target>/<profile>/deps/`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}

/// The built components, built now if any is missing.
fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("wasm32-wasip2").join("release");
        if COMPONENTS.iter().any(|(_, f)| !dir.join(f).exists()) {
            let mut cmd = std::process::Command::new(env!("CARGO"));
            cmd.args(["build", "--target", "wasm32-wasip2", "--release"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            for (package, _) in COMPONENTS {
                cmd.args(["-p", package]);
            }
            let status = cmd.status().expect("run cargo build for the components");
            assert!(status.success(), "building the components failed");
        }
        dir
    })
}

/// A copy of the repository's `spin.toml` in `dir` whose component sources
/// point at the built files, wherever the target directory is.
pub fn manifest_in(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("spin.toml")).expect("read spin.toml");
    for (_, file) in COMPONENTS {
        let built = wasm_dir().join(file);
        text = text.replace(
            &format!("\"target/wasm32-wasip2/release/{file}\""),
            &format!("{:?}", built.display().to_string()),
        );
    }
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).expect("write manifest");
    path
}

/// The hosted builds (`make build-hosted`; built now if missing).
pub fn hosted_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target/hosted/wasm32-wasip2/release");
        if ["wq_queue.wasm", "wq_worker.wasm"]
            .iter()
            .any(|f| !dir.join(f).exists())
        {
            let status = std::process::Command::new(env!("CARGO"))
                .args(["build", "--target", "wasm32-wasip2", "--release"])
                .args(["--target-dir", "target/hosted", "--features", "hosted"])
                .args(["-p", "wq-queue", "-p", "wq-worker"])
                .current_dir(root)
                .status()
                .expect("run cargo build for the hosted builds");
            assert!(status.success(), "building the hosted builds failed");
        }
        dir
    })
}

/// A copy of `deploy/<platform>/spin.toml` in `dir` whose sources point at
/// the hosted builds.
pub fn hosted_manifest_in(dir: &Path, platform: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("deploy").join(platform).join("spin.toml");
    let text = std::fs::read_to_string(&path).expect("read the platform's manifest");
    let built = hosted_dir().display().to_string();
    let text = text.replace(
        "\"../../target/hosted/wasm32-wasip2/release",
        &format!("\"{built}"),
    );
    let copy = dir.join("spin.toml");
    std::fs::write(&copy, text).expect("write manifest");
    copy
}

/// Poll `check` until it answers `Some`, failing after `limit`. For work
/// that happens on its own inside the app (pushed drains, executors): there
/// is no clock to move, only something to wait for.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `redis-server` on a free port for one test, stopped on drop.
pub struct Redis {
    child: std::process::Child,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
}

impl Redis {
    /// Start one, or `None` (after printing why) when `redis-server` is not
    /// installed.
    pub async fn start() -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = match std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(_) => {
                eprintln!("SKIPPED: redis-server not found (apt-get install redis-server)");
                return None;
            }
        };
        let addr = format!("127.0.0.1:{port}");
        eventually(
            "redis-server to accept connections",
            Duration::from_secs(10),
            || {
                let addr = addr.clone();
                async move { tokio::net::TcpStream::connect(addr).await.ok().map(drop) }
            },
        )
        .await;
        Some(Redis {
            child,
            url: format!("redis://{addr}"),
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Echo inputs numbered `{"n": 0}` … `{"n": count - 1}`, for `pipeline`.
pub fn numbered(pipeline: &str, count: usize) -> Vec<spin_work_queue::NewTask> {
    (0..count)
        .map(|n| spin_work_queue::NewTask::new(pipeline, "echo", serde_json::json!({ "n": n })))
        .collect()
}

/// Assert that `results` are the echoed outputs of [`numbered`] inputs,
/// each exactly once (`what` names them in the failure).
pub fn assert_each_once(what: &str, results: &[(String, serde_json::Value)], count: usize) {
    let seen: std::collections::BTreeSet<u64> = results
        .iter()
        .map(|(_, out)| out["n"].as_u64().expect("an echoed `n`"))
        .collect();
    assert_eq!(results.len(), count, "{what}: a result is duplicated");
    assert_eq!(
        seen,
        (0..count as u64).collect(),
        "{what}: a result is missing"
    );
}

/// `prefix` made unique (pipelines of tests that share a server).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::generate())
}

/// The page the local server answers every request with.
pub const PAGE: &str =
    "<!doctype html><html><head><title>\n  Local &amp; page </title></head></html>";

/// A tiny HTTP/1.1 server on a free loopback port answering [`PAGE`]; it
/// lives as long as the test process.
pub fn serve_page() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    PAGE.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(PAGE.as_bytes());
            });
        }
    });
    port
}

/// A pipeline node run by the echo executor (its output is its input).
pub fn echo_node(name: &str, input: serde_json::Value, deps: &[&str]) -> spin_work_queue::NodeSpec {
    spin_work_queue::NodeSpec::new(name, input, deps).with_executor("echo")
}

/// Wait until pipeline `id` stops running (calling
/// `POST /v1/maintenance/rescue` at each look when `rescue`); its view.
pub async fn pipeline_finished(
    q: &HttpWorkQueue,
    id: &str,
    limit: Duration,
    rescue: bool,
) -> spin_work_queue::PipelineView {
    use spin_work_queue::pipeline::PipelineQueue;
    use spin_work_queue::LeasedQueue;
    eventually(&format!("pipeline {id} to finish"), limit, || async {
        if rescue {
            q.rescue().await.ok();
        }
        q.pipeline(id)
            .await
            .ok()
            .flatten()
            .filter(|v| v.state != spin_work_queue::PipelineState::Running)
    })
    .await
}
