//! `wq-test-host`: a small wasmtime-based host that serves a Spin application
//! from its `spin.toml` the way `spin up` does, for tests and benchmarks on
//! machines where Spin itself cannot be installed.
//!
//! What it provides to components:
//! - `wasi:http/incoming-handler` over HTTP/1.1 on a local listener, one fresh
//!   instance per request (pre-instantiated per component at startup), with
//!   Spin's routing (exact and `/...` wildcard routes, most specific wins) and
//!   request headers (`spin-path-info`, `spin-full-url`, …);
//! - `wasi:keyvalue@0.2.0-draft2` (`store`, `atomics`, `batch`) backed by one
//!   SQLite file with exactly Spin's default-store semantics
//!   ([`kv_sqlite`]), or by Redis the way Spin's Redis store behaves
//!   ([`kv_redis`]);
//! - `wasi:config/store` with the component's resolved variables;
//! - outbound HTTP with Spin's `allowed_outbound_hosts` rules, self requests
//!   and `*.spin.internal` service chaining ([`outbound`]);
//! - an optionally shifted wall clock ([`clock`]).
//!
//! Start it in process with [`serve`], or run the `wq-test-host` binary.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub mod clock;
pub mod compile;
pub mod kv_redis;
pub mod kv_sqlite;
pub mod manifest;
pub mod outbound;
pub mod platform;
pub mod replica;
pub mod router;
pub mod server;
pub mod storage;

use storage::KvBackend;

/// Errors starting the host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The manifest could not be read or is not supported.
    #[error("manifest {path}: {message}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A component could not be compiled or linked.
    #[error("wasm: {0}")]
    Wasm(String),
    /// The key-value backend could not be opened.
    #[error("key-value store: {0}")]
    Kv(String),
    /// The listener could not be bound.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The requested address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Conflicting settings.
    #[error("configuration: {0}")]
    Config(String),
}

/// How to run the host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Path of the application's `spin.toml`.
    pub manifest: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// SQLite file for the key-value store (created if missing); `None` with
    /// no `kv_redis` uses a temporary file deleted when the host stops.
    pub kv_sqlite: Option<PathBuf>,
    /// Redis URL: use Redis instead of SQLite for the key-value store.
    pub kv_redis: Option<String>,
    /// File holding a millisecond offset added to the components' wall clock.
    pub clock_file: Option<PathBuf>,
    /// Application variable values (`name` → value), winning over
    /// `SPIN_VARIABLE_<NAME>` environment variables and defaults.
    pub variables: HashMap<String, String>,
    /// The platform emulated (default: `spin up`).
    pub platform: platform::Platform,
    /// Emulate replication: another host's writes to the SQLite store are
    /// seen this many milliseconds late (hosts sharing one file).
    pub replication_lag_ms: Option<u64>,
}

impl HostConfig {
    /// Defaults for `manifest`: `127.0.0.1:0`, a temporary SQLite store, no
    /// clock offset, no variable overrides.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        HostConfig {
            manifest: manifest.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kv_sqlite: None,
            kv_redis: None,
            clock_file: None,
            variables: HashMap::new(),
            platform: platform::Platform::Spin,
            replication_lag_ms: None,
        }
    }
}

/// A running host. Dropping it stops accepting connections.
pub struct RunningHost {
    app: Arc<server::App>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningHost {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Outbound requests the app's components sent so far.
    pub fn outbound_requests(&self) -> u64 {
        self.app.outbound_requests()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    /// Requests in flight on open connections may still complete.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the host stops (it runs until [`RunningHost::shutdown`]
    /// or drop, so this is for binaries that serve forever).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }
}

/// Loads the manifest, compiles every component, binds the listener and
/// starts serving on the current tokio runtime (which must be multi-threaded
/// for concurrent requests).
pub async fn serve(config: HostConfig) -> Result<RunningHost, HostError> {
    let manifest = manifest::load(&config.manifest, &config.variables)?;
    let kv = match (&config.kv_redis, &config.kv_sqlite) {
        (Some(_), Some(_)) => {
            return Err(HostError::Config(
                "give either kv_sqlite or kv_redis, not both".into(),
            ))
        }
        (Some(url), None) => KvBackend::Redis(kv_redis::RedisKv::connect(url).await?),
        (None, path) => KvBackend::Sqlite(kv_sqlite::SqliteKv::open(path.as_deref())?),
    };
    let clock = config
        .clock_file
        .clone()
        .map(|p| Arc::new(clock::ClockFile::new(p)));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| HostError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| HostError::Listen {
        addr: config.listen,
        source,
    })?;
    let kv = Arc::new(kv);
    // Compiling components is CPU-bound: keep it off the async workers.
    let limits = config.platform.limits();
    let emulation = storage::Emulation {
        replica: config.replication_lag_ms.map(|lag_ms| replica::Replica {
            writer: format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ),
            lag_ms,
        }),
        writes: limits.writes_per_s.map(storage::WriteRate::new),
    };
    let app = tokio::task::spawn_blocking(move || {
        server::App::new(&manifest, kv, clock, addr, limits, emulation)
    })
    .await
    .map_err(|e| HostError::Wasm(format!("startup task failed: {e}")))??;
    let app = Arc::new(app);
    let served = app.clone();
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let (stream, client) = tokio::select! {
                _ = rx.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("wq-test-host: accept failed: {e}");
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(app.handle_external(req, client).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(RunningHost {
        app: served,
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}
