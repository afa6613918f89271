//! End to end through the `fetch` executor (the seed's "fetch-homepage"
//! node): a page served on loopback is fetched and described when the app
//! allows it, and refused — dead-lettered, not retried — when the URL names
//! a private address or a host outside the component's
//! `allowed_outbound_hosts`.

mod e2e_support;

use e2e_support::{eventually, external, App, Options};
use serde_json::json;
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{LeasedQueue, NewTask, TaskStatus, WorkQueuePort};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// The page the local server answers every request with.
const PAGE: &str = "<!doctype html><html><head><title>\n  Local &amp; page </title></head></html>";

/// A tiny HTTP/1.1 server on a free loopback port answering [`PAGE`]; it
/// lives as long as the test process.
fn serve_page() -> u16 {
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

/// The fetch component's host list with the local server's origin added.
fn allowing_local(port: u16) -> Options {
    Options::default().edit(
        r#"allowed_outbound_hosts = ["https://*:443", "http://*:80"]"#,
        format!(r#"allowed_outbound_hosts = ["https://*:443", "http://*:80", "http://127.0.0.1:{port}"]"#),
    )
}

/// Enqueue one `fetch` task for `url` and wait until it is finished.
async fn fetch(q: &HttpWorkQueue, url: &str) -> TaskStatus {
    let pipeline = format!("fetch-{}", ulid::Ulid::generate());
    let task = NewTask::new(&pipeline, "fetch", json!({ "url": url }));
    let id = q.enqueue_batch(vec![task]).await.expect("enqueue")[0]
        .id
        .clone();
    eventually(
        &format!("the fetch of {url}"),
        Duration::from_secs(60),
        || async {
            q.rescue().await.ok();
            match q.status(&id).await.ok().flatten()? {
                s @ (TaskStatus::Completed { .. } | TaskStatus::DeadLetter { .. }) => Some(s),
                _ => None,
            }
        },
    )
    .await
}

fn dead_letter_error(status: TaskStatus) -> String {
    match status {
        TaskStatus::DeadLetter { error } => error,
        other => panic!("expected a dead letter, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_page_is_fetched_and_described_when_allowed() {
    if external().is_some() {
        eprintln!("SKIPPED: needs its own settings and a local page server");
        return;
    }
    let port = serve_page();
    let app = App::start(allowing_local(port).var("fetch_private_hosts", "allow")).await;
    let status = fetch(&app.client(), &format!("http://127.0.0.1:{port}/home")).await;
    assert_eq!(
        status,
        TaskStatus::Completed {
            output: json!({
                "status": 200,
                "content_type": "text/html; charset=utf-8",
                "bytes": PAGE.len(),
                "title": "Local & page",
            })
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_by_default_without_retries() {
    if external().is_some() {
        eprintln!("SKIPPED: needs its own settings and a local page server");
        return;
    }
    let port = serve_page();
    let app = App::start(allowing_local(port)).await;
    let q = app.client();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://2130706433:{port}/"),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let error = dead_letter_error(fetch(&q, &url).await);
        assert!(error.starts_with("executor answered 403"), "{url}: {error}");
        assert!(error.contains("host_not_allowed"), "{url}: {error}");
        assert!(error.contains("private network"), "{url}: {error}");
    }
    let stats = q.stats().await.expect("stats");
    assert_eq!(stats.dead_letter, 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_outside_allowed_outbound_hosts_are_refused() {
    if external().is_some() {
        eprintln!("SKIPPED: needs its own settings and a local page server");
        return;
    }
    let port = serve_page();
    // The private-address check is lifted; the manifest still leaves the
    // server's port out, so Spin's outbound policy refuses the request.
    let app = App::start(Options::default().var("fetch_private_hosts", "allow")).await;
    let url = format!("http://127.0.0.1:{port}/");
    let error = dead_letter_error(fetch(&app.client(), &url).await);
    assert!(error.starts_with("executor answered 403"), "{error}");
    assert!(error.contains("allowed_outbound_hosts"), "{error}");
}
