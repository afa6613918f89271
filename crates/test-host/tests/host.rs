//! End-to-end tests of wq-test-host serving the `wq-kv-probe` fixture
//! component in process, on the default SQLite key-value store.

mod common;

use common::{fixture_config, get, post, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routing_most_specific_wins() {
    let host = start(fixture_config()).await;
    let base = host.url();

    let (s, body) = get(&base, "/probe/exact").await;
    assert_eq!(s, 200);
    assert!(
        body.starts_with("component=exact path_info= matched=/probe/exact"),
        "{body}"
    );

    let (_, body) = get(&base, "/probe/exact/whoami").await;
    assert!(
        body.starts_with("component=probe path_info=/exact/whoami"),
        "{body}"
    );

    let (_, body) = get(&base, "/probe/deep/whoami").await;
    assert_eq!(
        body,
        "component=deep path_info=/whoami matched=/probe/deep/... component_route=/probe/deep"
    );

    let (_, body) = get(&base, "/probe/whoami").await;
    assert_eq!(
        body,
        "component=probe path_info=/whoami matched=/probe/... component_route=/probe"
    );

    let (_, body) = get(&base, "/whoami").await;
    assert!(
        body.starts_with("component=root path_info=/whoami matched=/..."),
        "{body}"
    );

    // A private route is not reachable from outside: the root wildcard answers.
    let (_, body) = get(&base, "/hidden/whoami").await;
    assert!(body.contains("path_info=/hidden/whoami"), "{body}");
    assert!(body.starts_with("component=root"), "{body}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv_semantics_on_sqlite() {
    let host = start(fixture_config()).await;
    let base = host.url();

    // set / get / exists / delete
    assert_eq!(
        post(&base, "/probe/kv/set?key=a", "alpha").await,
        (200, "ok".into())
    );
    assert_eq!(
        get(&base, "/probe/kv/get?key=a").await,
        (200, "alpha".into())
    );
    assert_eq!(get(&base, "/probe/kv/exists?key=a").await.1, "true");
    assert_eq!(get(&base, "/probe/kv/get?key=nope").await.0, 404);
    assert_eq!(get(&base, "/probe/kv/delete?key=a").await.0, 200);
    assert_eq!(get(&base, "/probe/kv/exists?key=a").await.1, "false");

    // increment stores an i64 as 8 little-endian bytes, visible through get
    assert_eq!(
        get(&base, "/probe/kv/incr?key=n&delta=5").await,
        (200, "5".into())
    );
    assert_eq!(
        get(&base, "/probe/kv/incr?key=n&delta=-7").await,
        (200, "-2".into())
    );
    assert_eq!(
        get(&base, "/probe/kv/get-hex?key=n").await,
        (200, "feffffffffffffff".into())
    );
    assert_eq!(get(&base, "/probe/kv/incr?key=n&delta=258").await.1, "256");
    assert_eq!(
        get(&base, "/probe/kv/get-hex?key=n").await.1,
        "0001000000000000"
    );

    // increment of a value that is not 8 bytes is an error (Spin panics)
    post(&base, "/probe/kv/set?key=text", "abc").await;
    let (s, body) = get(&base, "/probe/kv/incr?key=text").await;
    assert_eq!(s, 500, "{body}");
    assert!(body.contains("8-byte"), "{body}");

    // set-many, then get-many leaves missing keys out of the list
    assert_eq!(
        post(&base, "/probe/kv/set-many", "b1=x\nb2=y\nb3=z")
            .await
            .0,
        200
    );
    let (s, body) = get(&base, "/probe/kv/get-many?keys=b1,missing,b3").await;
    assert_eq!(s, 200);
    let mut lines: Vec<&str> = body.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["b1=x", "b3=z"]);

    // delete-many and list-keys (every key of the label, other labels apart)
    assert_eq!(get(&base, "/probe/kv/delete-many?keys=b1,b2").await.0, 200);
    post(&base, "/probe/kv/set?store=other&key=elsewhere", "1").await;
    let (_, keys) = get(&base, "/probe/kv/list").await;
    assert_eq!(keys.lines().collect::<Vec<_>>(), vec!["b3", "n", "text"]);
    let (_, keys) = get(&base, "/probe/kv/list?store=other").await;
    assert_eq!(keys, "elsewhere");

    // CAS: on an absent key a plain upsert; after `current` a conditional update
    assert_eq!(
        get(&base, "/probe/kv/cas?key=c&value=one").await.1,
        "swapped"
    );
    assert_eq!(
        get(&base, "/probe/kv/cas?key=c&value=two&read=1").await.1,
        "swapped"
    );
    assert_eq!(get(&base, "/probe/kv/get?key=c").await.1, "two");

    // components share one store: `deep` sees what `probe` wrote
    assert_eq!(get(&base, "/probe/deep/kv/get?key=c").await.1, "two");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_never_lose_an_update() {
    let host = start(fixture_config()).await;
    let base = host.url();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let (s, body) = get(&base, "/probe/kv/incr?key=counter").await;
                assert_eq!(s, 200, "{body}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        get(&base, "/probe/kv/incr?key=counter&delta=0").await.1,
        "80"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_is_shared_and_persistent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let mut config = fixture_config();
    config.kv_sqlite = Some(db.clone());
    let a = start(config.clone()).await;
    post(&a.url(), "/probe/kv/set?key=persist", "yes").await;
    a.shutdown().await;
    let b = start(config).await;
    assert_eq!(get(&b.url(), "/probe/kv/get?key=persist").await.1, "yes");
    b.shutdown().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let value: Vec<u8> = conn
        .query_row(
            "SELECT value FROM spin_key_value WHERE store='default' AND key='persist'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(value, b"yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undeclared_store_label_is_access_denied() {
    let host = start(fixture_config()).await;
    let base = host.url();
    let (s, body) = get(&base, "/probe/kv/get?store=undeclared&key=a").await;
    assert_eq!(s, 500);
    assert!(body.contains("AccessDenied"), "{body}");
    let (s, body) = get(&base, "/locked/kv/get?key=a").await;
    assert_eq!(s, 500);
    assert!(body.contains("AccessDenied"), "{body}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn variables_defaults_templates_and_overrides() {
    let host = start(fixture_config()).await;
    let base = host.url();
    assert_eq!(
        get(&base, "/probe/config?key=message").await,
        (200, "hello, world".into())
    );
    assert_eq!(get(&base, "/probe/config?key=token").await.1, "t0ken");
    assert_eq!(get(&base, "/probe/config?key=undeclared").await.0, 404);
    let (_, all) = get(&base, "/probe/config-all").await;
    assert_eq!(
        all,
        "component_name=probe\nmessage=hello, world\ntoken=t0ken"
    );
    // Each component sees only its own variables.
    assert_eq!(get(&base, "/probe/deep/config?key=message").await.0, 404);
    host.shutdown().await;

    let mut config = fixture_config();
    config.variables.insert("greeting".into(), "hi".into());
    let host = start(config).await;
    assert_eq!(
        get(&host.url(), "/probe/config?key=message").await.1,
        "hi, world"
    );
    host.shutdown().await;

    // A required variable without a value stops the start.
    let config = wq_test_host::HostConfig::new(common::fixture_manifest());
    let err = wq_test_host::serve(config).await.err().expect("must fail");
    assert!(err.to_string().contains("token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbound_rules() {
    // A second host plays an external executor on 127.0.0.1:<port>.
    let other = start(fixture_config()).await;
    let port = other.addr().port();
    let mut config = fixture_config();
    config
        .variables
        .insert("executor_port".into(), port.to_string());
    let host = start(config).await;
    let base = host.url();

    // relative URL = self request, allowed by "http://self"
    let (s, body) = post(
        &base,
        "/probe/outbound?url=/probe/echo&method=POST",
        "payload",
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body,
        "status=200\nmethod=Method::Post path_info=/echo body=payload"
    );

    // self.alt is the same thing with an authority
    let (s, body) = get(
        &base,
        "/probe/outbound?url=http://self.alt/probe/deep/whoami",
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("component=deep path_info=/whoami"), "{body}");

    // a literal http://self URL is denied, as in Spin 4.1
    let (s, body) = get(&base, "/probe/outbound?url=http://self/probe/echo").await;
    assert_eq!(s, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");

    // service chaining to a component with a private route
    let (s, body) = get(
        &base,
        "/probe/outbound?url=http://hidden.spin.internal/whoami",
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("component=hidden path_info=/whoami"),
        "{body}"
    );

    // an allowed external host:port
    let url = format!("http://127.0.0.1:{port}/probe/whoami");
    let (s, body) = get(&base, &format!("/probe/outbound?url={url}")).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("status=200\ncomponent=probe"), "{body}");

    // another port is denied
    let url = format!("http://127.0.0.1:{}/probe/whoami", port.wrapping_add(1));
    let (s, body) = get(&base, &format!("/probe/outbound?url={url}")).await;
    assert_eq!(s, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");

    // a component without allowed_outbound_hosts may not even call itself
    let (s, body) = get(&base, "/locked/outbound?url=/probe/echo").await;
    assert_eq!(s, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    host.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clock_file_shifts_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock-offset");
    let mut config = fixture_config();
    config.clock_file = Some(clock.clone());
    let host = start(config).await;
    let base = host.url();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let component_ms = || async { get(&base, "/probe/clock").await.1.parse::<i64>().unwrap() };

    // no file: no offset
    let before = now_ms();
    let t = component_ms().await;
    assert!(t >= before && t <= now_ms(), "{t}");

    std::fs::write(&clock, "3600000").unwrap();
    let before = now_ms();
    let t = component_ms().await;
    assert!(t >= before + 3_600_000 && t <= now_ms() + 3_600_000, "{t}");

    std::fs::write(&clock, "-5000\n").unwrap();
    let before = now_ms();
    let t = component_ms().await;
    assert!(t >= before - 5000 && t <= now_ms() - 5000, "{t}");
    host.shutdown().await;
}
