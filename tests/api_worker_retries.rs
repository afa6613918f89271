//! The worker's drain waiting for the retries it schedules, with a
//! scripted executor, on a manual clock whose sleeps move it, against every queue
//! implementation in `api_support::implementations`.

mod api_support;
mod worker_support;

use serde_json::json;
use spin_work_queue::worker::{drain, DrainRequest, HEADER_ATTEMPT};
use spin_work_queue::{Clock, TaskStatus};
use worker_support::{answer, flaky, header, node, setup, Step};

#[tokio::test]
async fn a_drain_waits_for_the_retries_it_schedules_within_its_budget() {
    for fx in setup() {
        let ids = fx.enqueue(&["flaky", "steady"]).await;
        let exec = fx.executor(|req| match node(req) {
            "flaky" => flaky(req),
            _ => answer(200, json!("fine")),
        });
        let started = fx.clock.now_ms();
        let report = fx
            .drain_awaiting_retries(&exec, &DrainRequest::default())
            .await;
        assert_eq!(
            (
                report.processed,
                report.succeeded,
                report.failed,
                report.more
            ),
            (3, 2, 1, false)
        );
        assert_eq!(
            fx.status(&ids[0]).await,
            TaskStatus::Completed {
                output: json!("second works")
            }
        );
        // One sleep: until the retry is due (backoff 1 s, no jitter) plus
        // one maintenance period, and no longer.
        let ready = fx.config.retry.backoff_ms(&ids[0], 0) + fx.config.maintenance_period_ms;
        assert_eq!(fx.sleeps(), vec![ready]);
        assert_eq!(fx.clock.now_ms() - started, ready);
    }
}

#[tokio::test]
async fn a_drain_waits_for_each_of_its_retries_in_turn() {
    for fx in setup() {
        let ids = fx.enqueue(&["quick", "slow"]).await;
        // "slow" fails 1.5 s after "quick": its retry falls due after that
        // of "quick" was delivered.
        let exec = fx.executor(|req| Step {
            takes_ms: if node(req) == "slow" && header(req, HEADER_ATTEMPT) == "0" {
                1_500
            } else {
                0
            },
            ..flaky(req)
        });
        let started = fx.clock.now_ms();
        let report = fx
            .drain_awaiting_retries(&exec, &DrainRequest::default())
            .await;
        assert_eq!(
            (report.processed, report.succeeded, report.failed),
            (4, 2, 2)
        );
        for id in &ids {
            assert!(matches!(fx.status(id).await, TaskStatus::Completed { .. }));
        }
        // Two sleeps: until the retry of "quick" is deliverable, then until
        // that of "slow" is.
        let period = fx.config.maintenance_period_ms;
        let quick_ready = started + fx.config.retry.backoff_ms(&ids[0], 0) + period;
        let slow_ready = started + 1_500 + fx.config.retry.backoff_ms(&ids[1], 0) + period;
        assert_eq!(
            fx.sleeps(),
            vec![quick_ready - (started + 1_500), slow_ready - quick_ready]
        );
        assert_eq!(fx.clock.now_ms(), slow_ready);
    }
}

#[tokio::test]
async fn a_drain_does_not_wait_past_its_budget_or_without_the_setting() {
    for fx in setup() {
        let ids = fx.enqueue(&["flaky"]).await;
        let exec = fx.executor(flaky);
        // The retry is deliverable after 2 s: beyond a 1.5 s budget.
        let short = DrainRequest {
            budget_ms: 1_500,
            ..DrainRequest::default()
        };
        let report = fx.drain_awaiting_retries(&exec, &short).await;
        assert_eq!((report.processed, report.failed), (1, 1));
        assert!(fx.sleeps().is_empty());
        assert!(matches!(
            fx.status(&ids[0]).await,
            TaskStatus::Failed { attempt: 0, .. }
        ));
    }
    for fx in setup() {
        fx.enqueue(&["flaky"]).await;
        let exec = fx.executor(flaky);
        let report = drain(&*fx.queue, &exec, &fx.settings, &DrainRequest::default())
            .await
            .unwrap();
        assert_eq!((report.processed, report.failed), (1, 1));
        assert!(fx.sleeps().is_empty(), "settings without retries");
    }
}

#[tokio::test]
async fn a_drain_whose_clock_cannot_sleep_ends() {
    for fx in setup() {
        fx.enqueue(&["flaky"]).await;
        fx.without_sleeping();
        let exec = fx.executor(flaky);
        let started = fx.clock.now_ms();
        let report = fx
            .drain_awaiting_retries(&exec, &DrainRequest::default())
            .await;
        assert_eq!(
            (report.processed, report.failed, report.more),
            (1, 1, false)
        );
        assert_eq!(fx.clock.now_ms(), started, "no time passed");
    }
}
