//! The worker's drain (`POST /worker/drain`) with a scripted executor and
//! a manual clock, against every queue implementation in
//! `api_support::implementations`.

mod api_support;
mod worker_support;

use serde_json::{json, Value};
use spin_work_queue::api::ApiConfig;
use spin_work_queue::http::Request;
use spin_work_queue::worker::{
    drain, handle_drain, DrainRequest, DrainSettings, ExecutorReply, ExecutorRoutes,
    HEADER_ATTEMPT, HEADER_TASK_ID, HEADER_TIMEOUT_MS,
};
use spin_work_queue::{dispatch, ManualClock, TaskStatus};
use std::sync::Arc;
use worker_support::{answer, header, node, setup, Step, TIMEOUT_MS};

#[tokio::test]
async fn successes_are_acked_with_the_executor_output() {
    for fx in setup() {
        let ids = fx.enqueue(&["a", "b", "remote"]).await;
        let exec = fx.executor(|req| answer(200, json!({"echo": node(req)})));
        let report = drain(&*fx.queue, &exec, &fx.settings, &DrainRequest::default())
            .await
            .expect("drained");
        assert_eq!(
            (report.processed, report.succeeded, report.failed),
            (3, 3, 0)
        );
        assert!(!report.more);
        assert_eq!(
            fx.status(&ids[0]).await,
            TaskStatus::Completed {
                output: json!({"echo": "a"})
            }
        );
        let calls = exec.calls.borrow();
        let urls: Vec<&str> = calls.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(
            urls,
            ["/executors/a", "/executors/b", "https://exec.example/run"]
        );
        assert_eq!(header(&calls[0], HEADER_TASK_ID), ids[0]);
        assert_eq!(header(&calls[0], HEADER_ATTEMPT), "0");
        assert_eq!(calls[0].body, br#"{"node":"a"}"#);
        assert_eq!(header(&calls[0], HEADER_TIMEOUT_MS), TIMEOUT_MS.to_string());
    }
}

#[tokio::test]
async fn client_errors_dead_letter_and_the_rest_retry() {
    for fx in setup() {
        let ids = fx.enqueue(&["bad", "boom", "slow", "down"]).await;
        let exec = fx.executor(|req| match node(req) {
            "bad" => answer(422, json!({"error": "no"})),
            "boom" => answer(503, json!({})),
            "slow" => Step {
                reply: ExecutorReply::Timeout,
                ..answer(0, Value::Null)
            },
            _ => Step {
                reply: ExecutorReply::Unreachable("refused".into()),
                ..answer(0, Value::Null)
            },
        });
        let report = drain(&*fx.queue, &exec, &fx.settings, &DrainRequest::default())
            .await
            .expect("drained");
        assert_eq!(
            (report.processed, report.succeeded, report.failed),
            (4, 0, 4)
        );
        assert!(matches!(
            fx.status(&ids[0]).await,
            TaskStatus::DeadLetter { .. }
        ));
        for id in &ids[1..] {
            assert!(
                matches!(fx.status(id).await, TaskStatus::Failed { attempt: 0, .. }),
                "{id} should wait for a retry"
            );
        }
    }
}

#[tokio::test]
async fn a_retried_task_is_delivered_as_its_next_attempt() {
    for fx in setup() {
        let ids = fx.enqueue(&["flaky"]).await;
        let exec = fx.executor(|req| match header(req, HEADER_ATTEMPT) {
            "0" => answer(500, json!("first try fails")),
            _ => answer(200, json!("second works")),
        });
        drain(&*fx.queue, &exec, &fx.settings, &DrainRequest::default())
            .await
            .unwrap();
        fx.clock.advance(5_000);
        fx.queue.rescue().await.unwrap();
        let report = drain(&*fx.queue, &exec, &fx.settings, &DrainRequest::default())
            .await
            .unwrap();
        assert_eq!(report.succeeded, 1);
        assert_eq!(
            fx.status(&ids[0]).await,
            TaskStatus::Completed {
                output: json!("second works")
            }
        );
    }
}

#[tokio::test]
async fn the_drain_stops_at_max_tasks_and_asks_for_more() {
    for fx in setup() {
        fx.enqueue(&["a", "b", "c", "d", "e"]).await;
        let exec = fx.executor(|_| answer(200, json!(1)));
        let req = DrainRequest {
            max_tasks: 4,
            batch: 2,
            ..DrainRequest::default()
        };
        let report = drain(&*fx.queue, &exec, &fx.settings, &req).await.unwrap();
        assert_eq!((report.processed, report.succeeded), (4, 4));
        assert!(report.more);
        let report = drain(&*fx.queue, &exec, &fx.settings, &req).await.unwrap();
        assert_eq!((report.processed, report.more), (1, false));
    }
}

#[tokio::test]
async fn the_drain_stops_when_its_budget_is_spent() {
    for fx in setup() {
        fx.enqueue(&["a", "b", "c", "d"]).await;
        let exec = fx.executor(|_| Step {
            takes_ms: 600,
            ..answer(200, json!(1))
        });
        let req = DrainRequest {
            batch: 1,
            budget_ms: 1_000,
            ..DrainRequest::default()
        };
        let report = drain(&*fx.queue, &exec, &fx.settings, &req).await.unwrap();
        assert_eq!(
            (report.processed, report.succeeded, report.more),
            (2, 2, true)
        );
    }
}

#[tokio::test]
async fn slow_batches_keep_their_leases_alive() {
    for fx in setup() {
        let ids = fx.enqueue(&["a", "b", "c", "d"]).await;
        // Each call takes 60 % of the lease and a rescuer runs after each one:
        // without heartbeats the later tasks of the batch would be rescued.
        let exec = fx.executor(|_| Step {
            takes_ms: fx.settings.lease_ms * 6 / 10,
            then_rescue: true,
            ..answer(200, json!("done"))
        });
        let report = drain(&*fx.queue, &exec, &fx.settings, &DrainRequest::default())
            .await
            .unwrap();
        assert_eq!((report.succeeded, report.lease_lost), (4, 0));
        for id in &ids {
            assert!(matches!(fx.status(id).await, TaskStatus::Completed { .. }));
        }
    }
}

#[tokio::test]
async fn a_lease_lost_during_a_call_is_counted_not_acked() {
    for fx in setup() {
        let ids = fx.enqueue(&["stuck"]).await;
        // The call outlives the lease by long enough to be rescued.
        let rescue_after = fx.config.timing().rescue_after_ms;
        let exec = fx.executor(|_| Step {
            takes_ms: fx.settings.lease_ms + rescue_after,
            then_rescue: true,
            ..answer(200, json!("too late"))
        });
        let report = drain(&*fx.queue, &exec, &fx.settings, &DrainRequest::default())
            .await
            .unwrap();
        assert_eq!(
            (report.processed, report.succeeded, report.lease_lost),
            (1, 0, 1)
        );
        assert!(!matches!(
            fx.status(&ids[0]).await,
            TaskStatus::Completed { .. }
        ));
    }
}

#[tokio::test]
async fn an_empty_queue_drains_nothing() {
    for fx in setup() {
        let exec = fx.executor(|_| answer(200, json!(1)));
        let report = drain(&*fx.queue, &exec, &fx.settings, &DrainRequest::default())
            .await
            .unwrap();
        assert_eq!(report, Default::default());
        assert!(exec.calls.borrow().is_empty());
    }
}

#[tokio::test]
async fn the_drain_endpoint_answers_counts_and_prepares_the_follow_up() {
    for fx in setup() {
        fx.enqueue(&["a", "b"]).await;
        let exec = fx.executor(|_| answer(200, json!(1)));
        let req = Request::json("POST", "/worker/drain", &json!({"max_tasks": 1}))
            .with_header("authorization", "Bearer tok");
        let out = handle_drain(&*fx.queue, &exec, &fx.settings, Some("tok"), 1 << 20, &req).await;
        assert_eq!(out.response.status, 200);
        assert_eq!(
            out.response.json_body(),
            json!({"processed": 1, "succeeded": 1, "failed": 0, "lease_lost": 0, "more": true})
        );
        let next = out.follow_up.expect("work remains");
        assert_eq!(
            (next.request.method.as_str(), next.request.path()),
            ("POST", "/worker/drain")
        );
        assert_eq!(next.request.header("authorization"), Some("Bearer tok"));
        let body = next.request.json_body_for_test();
        assert_eq!(
            (body["max_tasks"].as_u64(), body["background"].as_bool()),
            (Some(1), Some(true))
        );
        assert_eq!(body["ticket"], json!(next.ticket));
        assert_eq!(
            fx.queue.drains_in_flight().await.unwrap(),
            1,
            "the drain released its place and took one for the next"
        );
        let bare = Request::new("POST", "/worker/drain");
        let out = handle_drain(&*fx.queue, &exec, &fx.settings, None, 1 << 20, &bare).await;
        assert_eq!(
            out.response.json_body()["processed"],
            1,
            "an empty body takes the defaults"
        );
        assert!(out.follow_up.is_none());
        dispatch::pushed(&*fx.queue, next.ticket, false)
            .await
            .unwrap();
        assert_eq!(
            fx.queue.drains_in_flight().await.unwrap(),
            0,
            "a failed push gives its place back"
        );
    }
}

#[tokio::test]
async fn the_drain_endpoint_checks_route_method_auth_and_parameters() {
    for fx in setup() {
        let exec = fx.executor(|_| answer(200, json!(1)));
        let cases = [
            (
                Request::new("POST", "/worker/other"),
                None,
                404,
                "not_found",
            ),
            (
                Request::new("GET", "/worker/drain"),
                None,
                405,
                "method_not_allowed",
            ),
            (
                Request::new("POST", "/worker/drain"),
                Some("tok"),
                401,
                "unauthorized",
            ),
            (
                Request::json("POST", "/worker/drain", &json!({"batch": 0})),
                None,
                422,
                "invalid_request",
            ),
            (
                Request::json("POST", "/worker/drain", &json!({"batch": "ten"})),
                None,
                400,
                "bad_request",
            ),
        ];
        for (req, token, status, code) in cases {
            let out = handle_drain(&*fx.queue, &exec, &fx.settings, token, 1 << 20, &req).await;
            assert_eq!(out.response.status, status, "{req:?}");
            assert_eq!(out.response.json_body()["error"]["code"], code);
        }
    }
}

/// Test-only view of a request body as JSON.
trait JsonBody {
    fn json_body_for_test(&self) -> Value;
}

impl JsonBody for Request {
    fn json_body_for_test(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[test]
fn worker_leases_outlast_one_executor_call() {
    let settings = DrainSettings::new(
        "w",
        ExecutorRoutes::default(),
        25_000,
        ApiConfig::default().queue.default_lease_ms,
        Arc::new(ManualClock::new(0)),
    );
    assert!(settings.lease_ms >= 25_000 + spin_work_queue::worker::LEASE_MARGIN_MS);
}
