//! End to end through the `fetch` executor (the seed's "fetch-homepage"
//! node): a page served on loopback is fetched and described when the app
//! allows it, and refused — dead-lettered, not retried — when the URL names
//! a private address or a host outside the component's
//! `allowed_outbound_hosts`.

mod e2e_support;

use e2e_support::{eventually, external, serve_page, App, Options, PAGE};
use serde_json::json;
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{LeasedQueue, NewTask, TaskStatus, WorkQueuePort};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

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

/// A server that answers headers at once, then one body byte every
/// `every`, for as long as the client reads. It counts connections, and
/// the most open at once.
struct Trickle {
    port: u16,
    open: Arc<AtomicUsize>,
    most_open: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

fn serve_trickle(every: Duration) -> Trickle {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let t = Trickle {
        port,
        open: Arc::default(),
        most_open: Arc::default(),
        connections: Arc::default(),
    };
    let (open, most_open, connections) =
        (t.open.clone(), t.most_open.clone(), t.connections.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (open, most_open) = (open.clone(), most_open.clone());
            connections.fetch_add(1, SeqCst);
            std::thread::spawn(move || {
                let now_open = open.fetch_add(1, SeqCst) + 1;
                most_open.fetch_max(now_open, SeqCst);
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n\
                            content-length: 100000\r\n\r\n<title>slow</title>";
                // A reader that left is seen at once (end of stream), not
                // only when a later write fails.
                let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
                let mut alive = stream.write_all(head.as_bytes()).is_ok();
                let mut last = std::time::Instant::now();
                while alive {
                    match stream.read(&mut buf) {
                        Ok(0) => alive = false,
                        Ok(_) => {}
                        Err(e) => {
                            alive = matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            )
                        }
                    }
                    if alive && last.elapsed() >= every {
                        alive = stream.write_all(b" ").and_then(|()| stream.flush()).is_ok();
                        last = std::time::Instant::now();
                    }
                }
                open.fetch_sub(1, SeqCst);
            });
        }
    });
    t
}

/// A target that trickles its body forever: each attempt is cut off at the
/// worker's deadline (headers arrived long before), fails retryably, and
/// the fetch executor has stopped reading by then — the attempts never
/// overlap, and there are as many as `max_attempts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_off_at_the_deadline_once_per_attempt() {
    if external().is_some() {
        eprintln!("SKIPPED: needs its own settings and a local server");
        return;
    }
    let server = serve_trickle(Duration::from_millis(200));
    let app = App::start(
        allowing_local(server.port)
            .var("fetch_private_hosts", "allow")
            .var("executor_timeout_ms", "1500")
            .var("retry_base_ms", "100")
            .var("retry_jitter", "0"),
    )
    .await;
    let q = app.client();
    let pipeline = format!("trickle-{}", ulid::Ulid::generate());
    let url = format!("http://127.0.0.1:{}/", server.port);
    let task = NewTask {
        max_attempts: Some(2),
        ..NewTask::new(&pipeline, "fetch", json!({ "url": url }))
    };
    let id = q.enqueue_batch(vec![task]).await.expect("enqueue")[0]
        .id
        .clone();
    let status = eventually("both attempts", Duration::from_secs(60), || async {
        q.rescue().await.ok();
        match q.status(&id).await.ok().flatten()? {
            s @ TaskStatus::DeadLetter { .. } => Some(s),
            _ => None,
        }
    })
    .await;
    let error = dead_letter_error(status);
    assert!(
        error.starts_with("executor answered 502") && error.contains("timed out"),
        "{error}"
    );
    // Connections close once the fetch stops reading.
    eventually(
        "the server to see every reader leave",
        Duration::from_secs(10),
        || async { (server.open.load(SeqCst) == 0).then_some(()) },
    )
    .await;
    assert_eq!(server.connections.load(SeqCst), 2, "one fetch per attempt");
    assert_eq!(server.most_open.load(SeqCst), 1, "attempts never overlap");
}
