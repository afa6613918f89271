//! The `wq-test-host` binary: the ready line, CLI flags, `SPIN_VARIABLE_*`
//! environment overrides; also reports startup time and request latency.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture_manifest, get};

/// The host process, killed on drop.
struct HostProcess {
    child: Child,
    url: String,
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_host(args: &[&str], envs: &[(&str, &str)]) -> (HostProcess, Duration) {
    let manifest = fixture_manifest();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wq-test-host"))
        .arg("--manifest")
        .arg(manifest)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn wq-test-host");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read ready line");
    let elapsed = started.elapsed();
    let url = line
        .trim()
        .strip_prefix("wq-test-host listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (HostProcess { child, url }, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_with_env_overrides() {
    let (host, startup) = spawn_host(
        &["--env", "SPIN_VARIABLE_GREETING=hey"],
        &[
            ("SPIN_VARIABLE_TOKEN", "from-env"),
            ("SPIN_VARIABLE_GREETING", "ignored"),
        ],
    );
    println!("wq-test-host startup (process start to ready line): {startup:?}");
    // --env wins over the environment, the environment over defaults.
    assert_eq!(
        get(&host.url, "/probe/config?key=message").await.1,
        "hey, world"
    );
    assert_eq!(
        get(&host.url, "/probe/config?key=token").await.1,
        "from-env"
    );

    // Rough per-request latency of a fresh component instance.
    for (path, n) in [("/probe/whoami", 50), ("/probe/kv/get?key=x", 50)] {
        let t = Instant::now();
        for _ in 0..n {
            assert!(get(&host.url, path).await.0 < 500);
        }
        println!(
            "GET {path}: {:?} per request (new connection each)",
            t.elapsed() / n
        );
    }
}

#[test]
fn binary_fails_without_required_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_wq-test-host"))
        .arg("--manifest")
        .arg(fixture_manifest())
        .env_remove("SPIN_VARIABLE_TOKEN")
        .output()
        .expect("run wq-test-host");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token"), "{stderr}");
    assert!(out.stdout.is_empty());
}
