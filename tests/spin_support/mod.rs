//! A real `spin up` of the repository's app for the tests that need one:
//! found on PATH (or `WQ_SPIN`), started in its own process group on a
//! free port with its own state, killed — the whole group — on drop or on
//! demand, and restarted on the same state.
//!
//! Without Spin a test prints `SKIPPED` and passes, unless
//! `WQ_REQUIRE_SPIN=1` (CI), where a missing Spin is a failure.
#![allow(dead_code)]

use crate::e2e_support::manifest_in;
use spin_work_queue::client::HttpWorkQueue;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long Spin may take to compile the components and listen.
const STARTUP: Duration = Duration::from_secs(180);

/// The `spin` binary, or `None` (after saying so) when it is not installed.
///
/// # Panics
/// When it is not installed and `WQ_REQUIRE_SPIN` is set.
pub fn spin_binary() -> Option<PathBuf> {
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
        let required = std::env::var("WQ_REQUIRE_SPIN").is_ok_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "WQ_REQUIRE_SPIN is set but `{name}` is not on PATH (set WQ_SPIN to the binary)"
        );
        eprintln!(
            "SKIPPED: `{name}` is not on PATH; install Spin (https://spinframework.dev) \
             to run this test against `spin up`"
        );
    }
    found
}

/// A copy of the project's manifest at `path` in `dir`, its hosted builds
/// named by absolute path.
fn hosted_manifest_in(dir: &Path, path: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(path)).expect("read the manifest");
    let hosted = root.join("target/hosted").display().to_string();
    let text = text.replace("\"../../target/hosted", &format!("\"{hosted}"));
    let copy = dir.join("spin.toml");
    std::fs::write(&copy, text).expect("write manifest");
    copy
}

/// How to start the app.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Spin variables (`name`, value).
    pub vars: Vec<(String, String)>,
    /// A runtime config file's text.
    pub runtime_config: Option<String>,
    /// Text replacements applied to the copy of `spin.toml` served.
    pub edits: Vec<(String, String)>,
    /// Another manifest of the project to serve (`deploy/…/spin.toml`,
    /// whose components are the hosted builds in `target/hosted`).
    pub manifest: Option<String>,
}

impl Setup {
    /// Set a Spin variable.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    /// Serve the project's manifest at `path` instead of `spin.toml`.
    pub fn manifest(mut self, path: &str) -> Self {
        self.manifest = Some(path.into());
        self
    }

    /// Serve `spin.toml` with `from` (which must occur) replaced by `to`.
    pub fn edit(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.edits.push((from.into(), to.into()));
        self
    }
}

/// A `spin up` of the app; stopped (its process group) on drop.
pub struct SpinUp {
    child: Option<Child>,
    spin: PathBuf,
    setup: Setup,
    port: u16,
    /// `http://127.0.0.1:{port}`.
    pub url: String,
    /// The state, manifest copy and logs.
    pub dir: tempfile::TempDir,
}

impl SpinUp {
    /// Start `spin up` and wait until it answers `/healthz`.
    pub async fn start(spin: &Path, setup: Setup) -> SpinUp {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = match &setup.manifest {
            None => manifest_in(dir.path()),
            Some(path) => hosted_manifest_in(dir.path(), path),
        };
        if !setup.edits.is_empty() {
            let mut text = std::fs::read_to_string(&manifest).expect("read manifest copy");
            for (from, to) in &setup.edits {
                assert!(text.contains(from.as_str()), "spin.toml has no {from:?}");
                text = text.replace(from.as_str(), to);
            }
            std::fs::write(&manifest, text).expect("write manifest copy");
        }
        if let Some(text) = &setup.runtime_config {
            std::fs::write(dir.path().join("runtime-config.toml"), text)
                .expect("write runtime config");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut up = SpinUp {
            child: None,
            spin: spin.to_path_buf(),
            setup,
            port,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        up.launch().await;
        up
    }

    /// Spawn `spin up` (on the state left by an earlier run, if any) and
    /// wait until it answers.
    async fn launch(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("spin.log"))
            .expect("log file");
        let mut cmd = Command::new(&self.spin);
        cmd.arg("up")
            .arg("--from")
            .arg(d.join("spin.toml"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--state-dir")
            .arg(d.join("state"))
            .arg("--log-dir")
            .arg(d.join("logs"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            // `spin up` runs the app in a child (`spin trigger http`): one
            // process group, so that stopping it stops both.
            .process_group(0);
        if self.setup.runtime_config.is_some() {
            cmd.arg("--runtime-config-file")
                .arg(d.join("runtime-config.toml"));
        }
        for (name, value) in &self.setup.vars {
            cmd.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        self.child = Some(cmd.spawn().expect("start spin up"));
        let http = reqwest::Client::new();
        let health = format!("{}/healthz", self.url);
        let started = std::time::Instant::now();
        loop {
            if let Ok(r) = http.get(&health).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("spin up exited with {status}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < STARTUP,
                "spin up did not answer /healthz within {STARTUP:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `kill -9` of the whole process group: `spin up` and the trigger
    /// that serves the app, mid-request if any.
    pub fn kill9(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.kill();
        let _ = child.wait();
        // The trigger is gone once nothing listens on the port any more.
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "something still serves port {} after the kill",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start again, on the same state and port.
    pub async fn restart(&mut self) {
        self.kill9();
        self.launch().await;
    }

    /// What `spin up` printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("spin.log")).unwrap_or_default()
    }

    /// What component `id` printed to its standard output (Spin's log
    /// directory).
    pub fn component_stdout(&self, id: &str) -> String {
        let path = self
            .dir
            .path()
            .join("logs")
            .join(format!("{id}_stdout.txt"));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// A client of the app (`token` when the app requires one).
    pub fn client_with(&self, token: Option<&str>) -> HttpWorkQueue {
        let mut b = HttpWorkQueue::builder(&self.url).timeout(Duration::from_secs(60));
        if let Some(t) = token {
            b = b.token(t.to_string());
        }
        b.build().expect("client")
    }

    /// A client of the app.
    pub fn client(&self) -> HttpWorkQueue {
        self.client_with(None)
    }
}

impl Drop for SpinUp {
    fn drop(&mut self) {
        self.kill9();
    }
}
