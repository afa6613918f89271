//! Shared helpers of the wq-test-host integration tests: building the
//! `wq-kv-probe` fixture component, starting hosts, and a small HTTP client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use wq_test_host::{HostConfig, RunningHost};

/// The target directory these tests were built into.
pub fn target_dir() -> PathBuf {
    // <target>/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Writes `bytes` to `path` unless it already holds them, atomically (tests
/// may run in several processes at once).
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Builds (once per test process) the probe component and lays out the
/// fixture application: `<dir>/spin.toml` next to `<dir>/kv_probe.wasm`.
///
/// `WQ_KV_PROBE_WASM=/path/to/wq_kv_probe.wasm` skips the build and uses that
/// file. Otherwise the probe is built with
/// `cargo build -p wq-kv-probe --target wasm32-wasip2 --release` in the same
/// target directory as the tests (cargo does not hold its lock while tests
/// run), which is a no-op when the components' build already made it.
pub fn fixture_manifest() -> PathBuf {
    static MANIFEST: OnceLock<PathBuf> = OnceLock::new();
    MANIFEST
        .get_or_init(|| {
            let dir = target_dir().join("wq-fixtures");
            std::fs::create_dir_all(&dir).expect("create fixture dir");
            let wasm = match std::env::var_os("WQ_KV_PROBE_WASM") {
                Some(p) => PathBuf::from(p),
                None => {
                    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                    let status = Command::new(cargo)
                        .current_dir(workspace_root())
                        .args([
                            "build",
                            "-p",
                            "wq-kv-probe",
                            "--target",
                            "wasm32-wasip2",
                            "--release",
                        ])
                        .status()
                        .expect("run cargo to build wq-kv-probe");
                    assert!(status.success(), "building wq-kv-probe failed");
                    target_dir().join("wasm32-wasip2/release/wq_kv_probe.wasm")
                }
            };
            let probe = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
            write_if_changed(&dir.join("kv_probe.wasm"), &probe);
            let text = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spin.toml"),
            )
            .expect("read fixture manifest");
            let manifest = dir.join("spin.toml");
            write_if_changed(&manifest, &text);
            manifest
        })
        .clone()
}

/// A config for the fixture app with the required `token` variable set.
pub fn fixture_config() -> HostConfig {
    let mut config = HostConfig::new(fixture_manifest());
    config.variables.insert("token".into(), "t0ken".into());
    config
}

/// Starts the fixture app in process with `config`.
pub async fn start(config: HostConfig) -> RunningHost {
    wq_test_host::serve(config)
        .await
        .expect("start wq-test-host")
}

/// Sends one request; returns the status and the body as text.
pub async fn request(method: &str, url: &str, body: &[u8]) -> (u16, String) {
    let uri: http::Uri = url.parse().expect("url");
    let authority = uri.authority().expect("authority").to_string();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(http::header::HOST, authority)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let resp = sender.send_request(req).await.expect("send");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// `GET base + path`.
pub async fn get(base: &str, path: &str) -> (u16, String) {
    request("GET", &format!("{base}{path}"), b"").await
}

/// `POST base + path` with `body`.
pub async fn post(base: &str, path: &str, body: &str) -> (u16, String) {
    request("POST", &format!("{base}{path}"), body.as_bytes()).await
}
