//! wq-test-host with `--kv-redis`: Spin 4.1's Redis key-value behaviour.
//! Runs only when `redis-server` is on PATH (each test starts its own on a
//! free port); otherwise it prints `SKIPPED: redis-server not found`.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture_config, get, post, start};

/// A `redis-server` child process, killed on drop.
struct RedisServer {
    child: Child,
    url: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Option<RedisServer> {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        println!("SKIPPED: redis-server not found");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let server = RedisServer {
        child,
        url: format!("redis://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

fn redis_config(redis: &RedisServer) -> wq_test_host::HostConfig {
    let mut config = fixture_config();
    config.kv_redis = Some(redis.url.clone());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_counters_are_decimal_and_labels_share_the_keyspace() {
    let Some(redis) = start_redis() else { return };
    let host = start(redis_config(&redis)).await;
    let base = host.url();

    assert_eq!(
        get(&base, "/probe/kv/incr?key=n&delta=5").await,
        (200, "5".into())
    );
    assert_eq!(get(&base, "/probe/kv/incr?key=n&delta=37").await.1, "42");
    // INCRBY stores a decimal string, not 8 little-endian bytes
    assert_eq!(get(&base, "/probe/kv/get?key=n").await, (200, "42".into()));

    // labels are not namespaced
    post(&base, "/probe/kv/set?store=other&key=shared", "v").await;
    assert_eq!(
        get(&base, "/probe/kv/get?store=default&key=shared").await.1,
        "v"
    );
    let (_, keys) = get(&base, "/probe/kv/list").await;
    assert_eq!(keys, "n\nshared");

    // set-many (MSET), delete, delete-many, exists
    assert_eq!(post(&base, "/probe/kv/set-many", "a=1\nb=2").await.0, 200);
    assert_eq!(get(&base, "/probe/kv/get?key=b").await.1, "2");
    assert_eq!(get(&base, "/probe/kv/delete-many?keys=a,b").await.0, 200);
    assert_eq!(get(&base, "/probe/kv/exists?key=a").await.1, "false");
    get(&base, "/probe/kv/delete?key=shared").await;
    assert_eq!(get(&base, "/probe/kv/get?key=shared").await.0, 404);

    // increment of a non-numeric value fails
    post(&base, "/probe/kv/set?key=text", "abc").await;
    assert_eq!(get(&base, "/probe/kv/incr?key=text").await.0, 500);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_get_many_fails_like_spin_4_1() {
    let Some(redis) = start_redis() else { return };
    let host = start(redis_config(&redis)).await;
    let base = host.url();
    post(&base, "/probe/kv/set-many", "a=1\nb=2").await;

    // several keys: an error the component sees (the probe answers it)
    let (s, body) = get(&base, "/probe/kv/get-many?keys=a,b").await;
    assert_eq!(s, 500, "{body}");
    assert!(body.starts_with("error: "), "{body}");
    // one existing key: Spin's host panics, so the component never answers
    let (s, body) = get(&base, "/probe/kv/get-many?keys=a").await;
    assert_eq!(s, 500, "{body}");
    assert!(
        !body.starts_with("error: "),
        "the component saw an error: {body}"
    );
    // one missing key: an empty list
    assert_eq!(
        get(&base, "/probe/kv/get-many?keys=missing").await,
        (200, String::new())
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_shared_by_two_hosts_with_atomic_increments() {
    let Some(redis) = start_redis() else { return };
    let a = start(redis_config(&redis)).await;
    let b = start(redis_config(&redis)).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let base = if i % 2 == 0 { a.url() } else { b.url() };
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                assert_eq!(get(&base, "/probe/kv/incr?key=counter").await.0, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        get(&b.url(), "/probe/kv/incr?key=counter&delta=0").await.1,
        "80"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cas_reports_failure_like_spin_4_1() {
    let Some(redis) = start_redis() else { return };
    let host = start(redis_config(&redis)).await;
    let base = host.url();
    post(&base, "/probe/kv/set?key=c", "old").await;
    // Spin 4.1 ends every swap with `UNWATCH key`, which Redis rejects: the
    // swap is reported as failed although the SET was applied.
    let (s, body) = get(&base, "/probe/kv/cas?key=c&value=new&read=1").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body, "cas-failed current=new");
    assert_eq!(get(&base, "/probe/kv/get?key=c").await.1, "new");
    host.shutdown().await;
}
