//! The HTTP contract (`docs/api.md`) through `api::handle`: every endpoint, its
//! bodies and its status codes, against every queue implementation in
//! `api_support::implementations`.

mod api_support;

use api_support::{assert_error, setup, task, LEASE_MS, START_MS};
use serde_json::{json, Value};
use spin_work_queue::config::QueueConfig;
use spin_work_queue::http::Request;

#[tokio::test]
async fn healthz_answers_ok() {
    for fx in setup() {
        assert_eq!(fx.get("/healthz").await, (200, json!({"ok": true})));
    }
}

#[tokio::test]
async fn a_single_task_is_enqueued_with_a_generated_id() {
    for fx in setup() {
        let (status, out) = fx.post("/v1/tasks", task("a")).await;
        assert_eq!(status, 201);
        let entry = &out["tasks"][0];
        assert_eq!(entry["duplicate"], false);
        let id = entry["id"].as_str().unwrap();
        let (status, info) = fx.get(&format!("/v1/tasks/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(info["status"], "Pending");
        assert_eq!(info["task"]["idempotency_key"], id);
        assert_eq!(info["task"]["input"], json!({"n": "a"}));
        assert_eq!(info["max_attempts"], 3);
    }
}

#[tokio::test]
async fn a_batch_returns_one_entry_per_task_in_order() {
    for fx in setup() {
        let body = json!({"tasks": [
            {"id": "t1", "pipeline_id": "p", "node_name": "a"},
            {"id": "t2", "pipeline_id": "p", "node_name": "b", "wave": 1, "max_attempts": 5},
        ]});
        let (status, out) = fx.post("/v1/tasks", body).await;
        assert_eq!(status, 201);
        assert_eq!(
            out,
            json!({"tasks": [{"id": "t1", "duplicate": false}, {"id": "t2", "duplicate": false}]})
        );
        assert_eq!(fx.get("/v1/tasks/t2").await.1["max_attempts"], 5);
    }
}

#[tokio::test]
async fn an_enqueue_of_only_duplicates_is_200_and_a_mixed_one_201() {
    for fx in setup() {
        let first =
            json!({"id": "t1", "pipeline_id": "p", "node_name": "a", "idempotency_key": "k"});
        fx.enqueue(first).await;
        let again =
            json!({"id": "t9", "pipeline_id": "p", "node_name": "a", "idempotency_key": "k"});
        let (status, out) = fx.post("/v1/tasks", again.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(out, json!({"tasks": [{"id": "t1", "duplicate": true}]}));
        let (status, out) = fx
            .post("/v1/tasks", json!({"tasks": [again, task("fresh")]}))
            .await;
        assert_eq!(status, 201);
        assert_eq!(out["tasks"][0], json!({"id": "t1", "duplicate": true}));
        assert_eq!(out["tasks"][1]["duplicate"], false);
    }
}

#[tokio::test]
async fn tasks_that_break_rules_are_422_invalid_task() {
    for fx in setup() {
        for body in [
            json!({"node_name": "a"}),
            json!({"pipeline_id": "p", "node_name": ""}),
            json!({"id": "not valid!", "pipeline_id": "p", "node_name": "a"}),
            json!({"pipeline_id": "p", "node_name": "a", "max_attempts": 0}),
            json!({"tasks": [task("a"), {"pipeline_id": "p"}]}),
        ] {
            let (status, out) = fx.post("/v1/tasks", body.clone()).await;
            assert_error(status, &out, 422, "invalid_task");
        }
        assert_eq!(
            fx.get("/v1/stats").await.1["pending"],
            0,
            "nothing was enqueued"
        );
    }
}

#[tokio::test]
async fn empty_and_oversized_batches_are_422_invalid_batch() {
    for fx in setup() {
        let (status, out) = fx.post("/v1/tasks", json!({"tasks": []})).await;
        assert_error(status, &out, 422, "invalid_batch");
        let many: Vec<Value> = (0..1001).map(|i| task(&format!("n{i}"))).collect();
        let (status, out) = fx.post("/v1/tasks", json!({ "tasks": many })).await;
        assert_error(status, &out, 422, "invalid_batch");
    }
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    for fx in setup() {
        let malformed = Request::new("POST", "/v1/tasks")
            .with_header("content-type", "application/json")
            .with_body(b"{\"pipeline_id\":".to_vec());
        let resp = fx.call(malformed).await;
        assert_error(resp.status, &resp.json_body(), 400, "bad_request");
        for body in [
            json!({"pipeline_id": "p", "node_name": "a", "wave": "first"}),
            json!({"tasks": "all"}),
            json!({"tasks": [3]}),
            json!([task("a")]),
        ] {
            let (status, out) = fx.post("/v1/tasks", body).await;
            assert_error(status, &out, 400, "bad_request");
        }
        let (status, out) = fx
            .post("/v1/dequeue", json!({"worker_id": "w", "max": "ten"}))
            .await;
        assert_error(status, &out, 400, "bad_request");
    }
}

#[tokio::test]
async fn dequeue_leases_due_tasks_as_attempt_zero() {
    for fx in setup() {
        fx.enqueue(json!({"tasks": [task("a"), task("b")]})).await;
        let (status, out) = fx
            .post(
                "/v1/dequeue",
                json!({"worker_id": "w1", "max": 5, "lease_ms": 5000}),
            )
            .await;
        assert_eq!(status, 200);
        let tasks = out["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 2);
        for t in tasks {
            assert_eq!(t["task"]["attempt"], 0);
            assert_eq!(t["lease"]["expires_at"], START_MS + 5000);
        }
        let id = tasks[0]["task"]["id"].as_str().unwrap();
        let info = fx.get(&format!("/v1/tasks/{id}")).await.1;
        assert_eq!(info["status"], json!({"InProgress": {"worker_id": "w1"}}));
        assert_eq!(fx.dequeue(5).await, vec![], "nothing left is due");
    }
}

#[tokio::test]
async fn bad_dequeue_requests_are_422() {
    for fx in setup() {
        for body in [
            json!({"max": 1}),
            json!({"worker_id": "w", "max": 0}),
            json!({"worker_id": "w", "max": 101}),
            json!({"worker_id": "w", "lease_ms": 1}),
        ] {
            let (status, out) = fx.post("/v1/dequeue", body).await;
            assert_error(status, &out, 422, "invalid_request");
        }
    }
}

#[tokio::test]
async fn ack_completes_a_task_and_results_list_it() {
    for fx in setup() {
        fx.enqueue(json!({"id": "t1", "pipeline_id": "p/1", "node_name": "a"}))
            .await;
        let (id, lease) = fx.dequeue(1).await.remove(0);
        let (status, out) = fx
            .post(
                &format!("/v1/tasks/{id}/ack"),
                json!({"lease_id": lease, "output": {"ok": 1}}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(out, json!({"status": {"Completed": {"output": {"ok": 1}}}}));
        let (status, out) = fx.get("/v1/pipelines/p%2F1/results").await;
        assert_eq!(status, 200);
        assert_eq!(
            out,
            json!({"results": [{"node_name": "a", "output": {"ok": 1}}]})
        );
        assert_eq!(
            fx.get("/v1/pipelines/other/results").await,
            (200, json!({"results": []}))
        );
    }
}

#[tokio::test]
async fn a_stale_lease_is_409_lease_lost() {
    for fx in setup() {
        fx.enqueue(task("a")).await;
        let (id, _lease) = fx.dequeue(1).await.remove(0);
        for action in ["ack", "fail", "heartbeat"] {
            let (status, out) = fx
                .post(
                    &format!("/v1/tasks/{id}/{action}"),
                    json!({"lease_id": "not-the-lease", "error": "x"}),
                )
                .await;
            assert_error(status, &out, 409, "lease_lost");
        }
    }
}

#[tokio::test]
async fn an_expired_and_rescued_lease_is_409_lease_lost() {
    for fx in setup() {
        fx.enqueue(task("a")).await;
        let (id, lease) = fx.dequeue(1).await.remove(0);
        let rescue_after = QueueConfig::default().timing().rescue_after_ms;
        fx.clock.advance(LEASE_MS + rescue_after);
        let (status, report) = fx.post("/v1/maintenance/rescue", json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(report["rescued"], 1);
        let (status, out) = fx
            .post(&format!("/v1/tasks/{id}/ack"), json!({"lease_id": lease}))
            .await;
        assert_error(status, &out, 409, "lease_lost");
    }
}

#[tokio::test]
async fn unknown_or_malformed_task_ids_are_404() {
    for fx in setup() {
        for path in ["/v1/tasks/nope", "/v1/tasks/has%20space"] {
            let (status, out) = fx.get(path).await;
            assert_error(status, &out, 404, "not_found");
        }
        let (status, out) = fx
            .post("/v1/tasks/nope/ack", json!({"lease_id": "l"}))
            .await;
        assert_error(status, &out, 404, "not_found");
        let (status, out) = fx.post("/v1/dead-letter/nope/redrive", json!({})).await;
        assert_error(status, &out, 404, "not_found");
    }
}

#[tokio::test]
async fn finishing_calls_without_required_fields_are_422() {
    for fx in setup() {
        fx.enqueue(json!({"id": "t1", "pipeline_id": "p", "node_name": "a"}))
            .await;
        for (action, body) in [
            ("ack", json!({"output": 1})),
            ("fail", json!({"lease_id": "l"})),
            ("heartbeat", json!({})),
        ] {
            let (status, out) = fx.post(&format!("/v1/tasks/t1/{action}"), body).await;
            assert_error(status, &out, 422, "invalid_request");
        }
    }
}

#[tokio::test]
async fn fail_schedules_a_retry_or_dead_letters() {
    for fx in setup() {
        fx.enqueue(json!({"tasks": [
            {"id": "retry", "pipeline_id": "p", "node_name": "a"},
            {"id": "final", "pipeline_id": "p", "node_name": "b"},
        ]}))
        .await;
        let leases = fx.dequeue(2).await;
        let lease_of = |id: &str| leases.iter().find(|(t, _)| t == id).unwrap().1.clone();
        let (status, out) = fx
            .post(
                "/v1/tasks/retry/fail",
                json!({"lease_id": lease_of("retry"), "error": "flaky"}),
            )
            .await;
        assert_eq!(status, 200);
        // The retry time is the queue's: its 1 s backoff after attempt 0.
        let retry_at = START_MS + 1_000;
        assert_eq!(
            out,
            json!({"status": {"Failed": {"error": "flaky", "attempt": 0}}, "retry_at": retry_at})
        );
        let (status, out) = fx
            .post(
                "/v1/tasks/final/fail",
                json!({"lease_id": lease_of("final"), "error": "bad input", "retryable": false}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            out,
            json!({"status": {"DeadLetter": {"error": "bad input"}}})
        );
        let stats = fx.get("/v1/stats").await.1;
        assert_eq!(stats["dead_letter"], 1);
        assert_eq!(stats["failed"], 1);
    }
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_redriven() {
    for fx in setup() {
        fx.enqueue(json!({"id": "t1", "pipeline_id": "p", "node_name": "a"}))
            .await;
        let (_, lease) = fx.dequeue(1).await.remove(0);
        fx.post(
            "/v1/tasks/t1/fail",
            json!({"lease_id": lease, "error": "no", "retryable": false}),
        )
        .await;
        let (status, out) = fx.get("/v1/dead-letter?limit=10").await;
        assert_eq!(status, 200);
        assert_eq!(out["tasks"][0]["task"]["id"], "t1");
        assert_eq!(out["tasks"][0]["error"], "no");
        assert!(out["tasks"][0]["failed_at"].is_u64());
        let (status, out) = fx.post("/v1/dead-letter/t1/redrive", json!({})).await;
        assert_eq!((status, out), (200, json!({"status": "Pending"})));
        let (status, out) = fx.post("/v1/dead-letter/t1/redrive", json!({})).await;
        assert_error(status, &out, 409, "wrong_state");
        assert_eq!(
            fx.dequeue(1).await.len(),
            1,
            "the redriven task is due again"
        );
    }
}

#[tokio::test]
async fn dead_letter_limits_are_checked() {
    for fx in setup() {
        let (status, out) = fx.get("/v1/dead-letter?limit=many").await;
        assert_error(status, &out, 400, "bad_request");
        let (status, out) = fx.get("/v1/dead-letter?limit=1001").await;
        assert_error(status, &out, 422, "invalid_request");
        assert_eq!(
            fx.get("/v1/dead-letter?limit=0").await,
            (200, json!({"tasks": []}))
        );
        assert_eq!(fx.get("/v1/dead-letter").await, (200, json!({"tasks": []})));
    }
}

#[tokio::test]
async fn heartbeat_extends_a_live_lease() {
    for fx in setup() {
        fx.enqueue(task("a")).await;
        let (id, lease) = fx.dequeue(1).await.remove(0);
        fx.clock.advance(4_000);
        let (status, out) = fx
            .post(
                &format!("/v1/tasks/{id}/heartbeat"),
                json!({"lease_id": lease, "lease_ms": 20000}),
            )
            .await;
        assert_eq!(
            (status, out),
            (200, json!({"expires_at": START_MS + 24_000}))
        );
        let (status, out) = fx
            .post(
                &format!("/v1/tasks/{id}/heartbeat"),
                json!({"lease_id": lease, "lease_ms": 5}),
            )
            .await;
        assert_error(status, &out, 422, "invalid_request");
    }
}

#[tokio::test]
async fn a_batch_ack_reports_each_item() {
    for fx in setup() {
        fx.enqueue(json!({"tasks": [task("a"), task("b")]})).await;
        let leases = fx.dequeue(2).await;
        let acks = json!({"acks": [
            {"id": leases[0].0, "lease_id": leases[0].1, "output": 1},
            {"id": leases[1].0, "lease_id": "stale", "output": 2},
        ]});
        let (status, out) = fx.post("/v1/ack", acks).await;
        assert_eq!(status, 200);
        assert_eq!(
            out["results"][0],
            json!({"id": leases[0].0, "ok": true, "status": {"Completed": {"output": 1}}})
        );
        assert_eq!(out["results"][1]["ok"], false);
        assert_eq!(out["results"][1]["error"]["code"], "lease_lost");
        let (status, out) = fx.post("/v1/ack", json!({})).await;
        assert_error(status, &out, 422, "invalid_batch");
        let (status, out) = fx.post("/v1/ack", json!({"acks": [{"id": "x"}]})).await;
        assert_error(status, &out, 422, "invalid_batch");
        let (status, out) = fx.post("/v1/ack", json!({"acks": {"id": "x"}})).await;
        assert_error(status, &out, 400, "bad_request");
    }
}

#[tokio::test]
async fn stats_count_every_state() {
    for fx in setup() {
        fx.enqueue(json!({"tasks": [task("a"), task("b"), task("c")]}))
            .await;
        let (id, lease) = fx.dequeue(1).await.remove(0);
        fx.post(&format!("/v1/tasks/{id}/ack"), json!({"lease_id": lease}))
            .await;
        fx.dequeue(1).await;
        let (status, stats) = fx.get("/v1/stats").await;
        assert_eq!(status, 200);
        assert_eq!(
            stats,
            json!({"pending": 1, "due": 1, "in_progress": 1, "completed": 1, "failed": 0, "dead_letter": 0, "set_aside": 0})
        );
    }
}

#[tokio::test]
async fn rescue_promotes_due_delayed_tasks() {
    for fx in setup() {
        fx.enqueue(json!({"pipeline_id": "p", "node_name": "a", "delay_ms": 5000}))
            .await;
        assert!(fx.dequeue(1).await.is_empty(), "not due yet");
        fx.clock.advance(6_000);
        let (status, report) = fx.post("/v1/maintenance/rescue", json!({})).await;
        assert_eq!(status, 200);
        for key in ["rescued", "dead_lettered", "promoted"] {
            assert!(report[key].is_u64(), "{report}");
        }
        assert_eq!(fx.dequeue(1).await.len(), 1);
        let bare = fx
            .call(Request::new("POST", "/v1/maintenance/rescue"))
            .await;
        assert_eq!(bare.status, 200, "rescue needs no body");
    }
}

/// `depth` arrays, one inside the other, as JSON text.
fn nested_text(depth: usize) -> String {
    format!("{}0{}", "[".repeat(depth), "]".repeat(depth))
}

/// An input nested 126 levels deep used to be accepted, then stored one
/// level deeper than the store's decoder reads: every later read of it
/// failed and wedged maintenance. Now it is a 422 naming the field.
#[tokio::test]
async fn an_input_nested_too_deep_is_422_and_nothing_is_enqueued() {
    for fx in setup() {
        let body = format!(
            r#"{{"pipeline_id":"p","node_name":"deep","input":{}}}"#,
            nested_text(126)
        );
        let req = Request::new("POST", "/v1/tasks")
            .with_header("content-type", "application/json")
            .with_body(body.into_bytes());
        let resp = fx.call(req).await;
        let out = resp.json_body();
        assert_error(resp.status, &out, 422, "invalid_task");
        assert!(
            out["error"]["message"]
                .as_str()
                .unwrap()
                .contains("input nests"),
            "{out}"
        );
        assert_eq!(fx.get("/v1/stats").await.1["pending"], 0);
        // As deep as allowed is fine.
        let ok = format!(
            r#"{{"pipeline_id":"p","node_name":"deep","input":{}}}"#,
            nested_text(spin_work_queue::config::MAX_JSON_DEPTH)
        );
        let req = Request::new("POST", "/v1/tasks")
            .with_header("content-type", "application/json")
            .with_body(ok.into_bytes());
        assert_eq!(fx.call(req).await.status, 201);
    }
}

/// An output nested too deep is `invalid_output`; the lease stays usable.
#[tokio::test]
async fn an_output_nested_too_deep_is_422_invalid_output() {
    for fx in setup() {
        fx.enqueue(task("a")).await;
        let (id, lease) = fx.dequeue(1).await.remove(0);
        let body = format!(
            r#"{{"lease_id":"{lease}","output":{}}}"#,
            nested_text(spin_work_queue::config::MAX_JSON_DEPTH + 1)
        );
        let req = Request::new("POST", &format!("/v1/tasks/{id}/ack"))
            .with_header("content-type", "application/json")
            .with_body(body.into_bytes());
        let resp = fx.call(req).await;
        assert_error(resp.status, &resp.json_body(), 422, "invalid_output");
        let (status, _) = fx
            .post(
                &format!("/v1/tasks/{id}/ack"),
                json!({"lease_id": lease, "output": 1}),
            )
            .await;
        assert_eq!(status, 200);
    }
}

/// `GET /v1/set-aside` lists values the queue could not decode (none
/// here); its `limit` is checked like the dead-letter list's.
#[tokio::test]
async fn the_set_aside_list_is_readable_and_bounded() {
    for fx in setup() {
        assert_eq!(fx.get("/v1/set-aside").await, (200, json!({"entries": []})));
        let (status, out) = fx.get("/v1/set-aside?limit=1001").await;
        assert_error(status, &out, 422, "invalid_request");
        assert_eq!(fx.get("/v1/stats").await.1["set_aside"], 0);
    }
}
