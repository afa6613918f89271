//! Helpers shared by the scenarios: a per-test context with unique ids and
//! a pipeline of its own, and dequeue helpers that ignore other tests'
//! tasks on a shared store.

use super::Fixture;
use serde_json::{json, Value};
use spin_work_queue::{
    DequeueRequest, Enqueued, LeasedQueue, LeasedTask, NewTask, QueueError, RescueReport, TaskInfo,
    TaskStatus, WorkQueuePort, WorkTask,
};

/// A fresh unique suffix (a ULID).
pub fn unique() -> String {
    ulid::Ulid::generate().to_string()
}

/// Assert that `result` failed with `LeaseLost` for `id`.
#[track_caller]
pub fn assert_lease_lost<T: std::fmt::Debug>(result: Result<T, QueueError>, id: &str) {
    match result {
        Err(QueueError::LeaseLost { id: got }) => assert_eq!(got, id),
        other => panic!("expected LeaseLost for {id}, got {other:?}"),
    }
}

/// Assert that `result` failed with `NotFound` for `id`.
#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, QueueError>, id: &str) {
    match result {
        Err(QueueError::NotFound { id: got }) => assert_eq!(got, id),
        other => panic!("expected NotFound for {id}, got {other:?}"),
    }
}

/// Assert that `result` failed with `Invalid`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, QueueError>, what: &str) {
    assert!(
        matches!(result, Err(QueueError::Invalid(_))),
        "{what}: expected Invalid, got {result:?}"
    );
}

/// One test's view of the fixture: its own pipeline and id namespace.
pub struct Ctx<'a, F: Fixture> {
    /// The fixture.
    pub fx: &'a F,
    /// The test's pipeline id (unique).
    pub pipeline: String,
}

impl<'a, F: Fixture> Ctx<'a, F> {
    /// A context for the test called `name`.
    pub fn new(fx: &'a F, name: &str) -> Self {
        Self {
            fx,
            pipeline: format!("{name}-{}", unique()),
        }
    }

    /// The queue under test.
    pub fn q(&self) -> &F::Queue {
        self.fx.queue()
    }

    /// Whether store-wide counts may be asserted.
    pub fn exclusive(&self) -> bool {
        self.fx.exclusive_store()
    }

    /// Move time forward.
    pub fn advance(&self, ms: u64) {
        self.fx.advance(ms);
    }

    /// A unique id (task id or idempotency key) starting with `label`.
    pub fn id(&self, label: &str) -> String {
        format!("{label}-{}", unique())
    }

    /// A task of this test's pipeline with a fresh explicit id.
    pub fn task(&self, node: &str) -> NewTask {
        NewTask {
            id: Some(self.id(node)),
            ..NewTask::new(self.pipeline.clone(), node, json!({ "node": node }))
        }
    }

    /// A port-level task of this test's pipeline with a fresh id.
    pub fn work_task(&self, node: &str) -> WorkTask {
        WorkTask {
            id: self.id(node),
            pipeline_id: self.pipeline.clone(),
            node_name: node.to_string(),
            input: json!({ "node": node }),
            wave: 0,
            attempt: 0,
            idempotency_key: String::new(),
        }
    }

    /// Enqueue `tasks` in one batch; every one must be new. Returns the ids.
    pub async fn enqueue(&self, tasks: Vec<NewTask>) -> Vec<String> {
        let out: Vec<Enqueued> = self.q().enqueue_batch(tasks).await.expect("enqueue_batch");
        assert!(
            out.iter().all(|e| !e.duplicate),
            "unexpected duplicate in {out:?}"
        );
        out.into_iter().map(|e| e.id).collect()
    }

    /// Enqueue one task (must be new); returns its id.
    pub async fn enqueue_one(&self, task: NewTask) -> String {
        self.enqueue(vec![task]).await.remove(0)
    }

    /// Dequeue up to `max` of this test's tasks for `worker`. On an
    /// exclusive store this is exactly one `dequeue` call and no foreign
    /// task may appear; on a shared store other tests' tasks are skipped.
    pub async fn dequeue(&self, worker: &str, max: u32, lease_ms: Option<u64>) -> Vec<LeasedTask> {
        let req = |n: u32| DequeueRequest {
            worker_id: worker.to_string(),
            max: n,
            lease_ms,
        };
        let mut own = Vec::new();
        loop {
            let got = self
                .q()
                .dequeue(&req(max - own.len() as u32))
                .await
                .expect("dequeue");
            assert!(got.len() <= max as usize, "dequeue returned more than max");
            let raw = got.len();
            own.extend(
                got.into_iter()
                    .filter(|l| l.task.pipeline_id == self.pipeline),
            );
            if self.exclusive() {
                assert_eq!(own.len(), raw, "a task of another pipeline was delivered");
                return own;
            }
            if raw == 0 || own.len() == max as usize {
                return own;
            }
        }
    }

    /// Dequeue exactly one of this test's tasks; it must be `id`.
    pub async fn take(&self, id: &str, worker: &str, lease_ms: Option<u64>) -> LeasedTask {
        let mut got = self.dequeue(worker, 1, lease_ms).await;
        assert_eq!(got.len(), 1, "expected {id} to be delivered");
        let leased = got.remove(0);
        assert_eq!(leased.task.id, id, "expected {id} to be delivered next");
        leased
    }

    /// Dequeue everything of this test's that is due, in delivery order.
    pub async fn drain(&self, worker: &str) -> Vec<LeasedTask> {
        let mut all = Vec::new();
        loop {
            let got = self.dequeue(worker, 100, None).await;
            if got.is_empty() {
                return all;
            }
            all.extend(got);
        }
    }

    /// Ids of [`drain`](Self::drain).
    pub async fn drain_ids(&self, worker: &str) -> Vec<String> {
        self.drain(worker)
            .await
            .into_iter()
            .map(|l| l.task.id)
            .collect()
    }

    /// Assert that none of this test's tasks is due.
    pub async fn assert_nothing_due(&self) {
        let got = self.dequeue("nothing-due", 100, None).await;
        let ids: Vec<_> = got.iter().map(|l| &l.task.id).collect();
        assert!(ids.is_empty(), "expected nothing due, got {ids:?}");
    }

    /// Dequeue through the port until one of this test's tasks comes.
    pub async fn try_dequeue_own(&self) -> Option<WorkTask> {
        loop {
            let task = self.q().try_dequeue().await.expect("try_dequeue")?;
            if task.pipeline_id == self.pipeline {
                return Some(task);
            }
            assert!(
                !self.exclusive(),
                "a task of another pipeline was delivered"
            );
        }
    }

    /// Run maintenance.
    pub async fn rescue(&self) -> RescueReport {
        self.q().rescue().await.expect("rescue")
    }

    /// Run maintenance and, on an exclusive store, check its report.
    pub async fn rescue_expecting(&self, rescued: u64, dead_lettered: u64, promoted: u64) {
        let report = self.rescue().await;
        if self.exclusive() {
            let want = RescueReport {
                rescued,
                dead_lettered,
                promoted,
            };
            assert_eq!(report, want, "rescue report");
        }
    }

    /// Everything about `id`, which must exist.
    pub async fn info(&self, id: &str) -> TaskInfo {
        self.q()
            .task(id)
            .await
            .expect("task")
            .unwrap_or_else(|| panic!("task {id} unknown"))
    }

    /// The status of `id`, which must exist.
    pub async fn status(&self, id: &str) -> TaskStatus {
        let status = self.q().status(id).await.expect("status");
        status.unwrap_or_else(|| panic!("status of {id} unknown"))
    }

    /// Whether `id` exists.
    pub async fn exists(&self, id: &str) -> bool {
        self.q().task(id).await.expect("task").is_some()
    }

    /// This test's results.
    pub async fn results(&self) -> Vec<(String, Value)> {
        self.q()
            .collect_results(&self.pipeline)
            .await
            .expect("collect_results")
    }

    /// The dead-letter entries of this test's tasks, newest first.
    pub async fn dead_letter_ids(&self) -> Vec<String> {
        let all = self.q().dead_letters(1_000).await.expect("dead_letters");
        all.into_iter()
            .filter(|d| d.task.pipeline_id == self.pipeline)
            .map(|d| d.task.id)
            .collect()
    }
}

/// `InProgress` for `worker`.
pub fn in_progress(worker: &str) -> TaskStatus {
    TaskStatus::InProgress {
        worker_id: worker.to_string(),
    }
}

/// `Completed` with `output`.
pub fn completed(output: Value) -> TaskStatus {
    TaskStatus::Completed { output }
}
