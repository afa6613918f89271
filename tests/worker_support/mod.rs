//! The worker tests' fixture: every queue implementation of
//! `api_support::implementations` on a manual clock, with drain settings
//! and a scripted executor.
#![allow(dead_code)]

use crate::api_support::implementations;
use async_trait::async_trait;
use serde_json::{json, Value};
use spin_work_queue::config::QueueConfig;
use spin_work_queue::model::NewTask;
use spin_work_queue::worker::{
    drain, DrainReport, DrainRequest, DrainSettings, Executor, ExecutorReply, ExecutorRequest,
    ExecutorRoutes, HEADER_ATTEMPT, HEADER_NODE_NAME,
};
use spin_work_queue::{LeasedQueue, ManualClock, RetryPolicy, TaskStatus};
use std::cell::RefCell;
use std::sync::Arc;

pub const START_MS: u64 = 1_700_000_000_000;
pub const TIMEOUT_MS: u64 = 1_000;
pub const LEASE_MS: u64 = 10_000;

/// A queue, drain settings and a manual clock.
pub struct Fixture {
    pub name: &'static str,
    pub queue: Box<dyn LeasedQueue>,
    pub clock: ManualClock,
    pub settings: DrainSettings,
    pub config: QueueConfig,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failed against {}", self.name);
        }
    }
}

/// One fixture per implementation.
pub fn setup() -> Vec<Fixture> {
    implementations()
        .into_iter()
        .map(|(name, make)| {
            let clock = ManualClock::new(START_MS);
            let config = QueueConfig {
                default_lease_ms: LEASE_MS,
                retry: RetryPolicy {
                    base_ms: 1_000,
                    max_ms: 1_000,
                    jitter: 0.0,
                },
                ..QueueConfig::default()
            };
            let routes =
                ExecutorRoutes::parse(r#"{"remote": "https://exec.example/run"}"#, "/executors")
                    .expect("valid routes");
            let settings = DrainSettings::new(
                "w-test",
                routes,
                TIMEOUT_MS,
                LEASE_MS,
                Arc::new(clock.clone()),
            );
            Fixture {
                name,
                queue: make(config.clone(), Arc::new(clock.clone())),
                clock,
                settings,
                config,
            }
        })
        .collect()
}

impl Fixture {
    pub async fn enqueue(&self, nodes: &[&str]) -> Vec<String> {
        let tasks = nodes
            .iter()
            .map(|n| NewTask::new("p", *n, json!({"node": n})))
            .collect();
        let out = self.queue.enqueue_batch(tasks).await.expect("enqueued");
        out.into_iter().map(|e| e.id).collect()
    }

    pub async fn status(&self, id: &str) -> TaskStatus {
        self.queue
            .status(id)
            .await
            .expect("status")
            .expect("known task")
    }

    pub fn executor<F: Fn(&ExecutorRequest) -> Step>(&self, script: F) -> Scripted<'_, F> {
        Scripted {
            queue: &*self.queue,
            clock: &self.clock,
            script,
            calls: RefCell::new(Vec::new()),
            pauses: RefCell::new(Vec::new()),
            can_pause: true,
        }
    }

    /// One drain with [`Fixture::awaiting_retries`] settings.
    pub async fn drain_awaiting_retries<F: Fn(&ExecutorRequest) -> Step>(
        &self,
        exec: &Scripted<'_, F>,
        req: &DrainRequest,
    ) -> DrainReport {
        drain(&*self.queue, exec, &self.awaiting_retries(), req)
            .await
            .expect("drained")
    }

    /// The drain settings, waiting for the retries a drain schedules.
    pub fn awaiting_retries(&self) -> DrainSettings {
        self.settings
            .clone()
            .awaiting_retries(self.config.retry.clone(), self.config.maintenance_period_ms)
    }
}

/// What the scripted executor does for one call.
pub struct Step {
    /// The answer.
    pub reply: ExecutorReply,
    /// Time the call takes.
    pub takes_ms: u64,
    /// Run the queue's maintenance after the call (a concurrent rescuer).
    pub then_rescue: bool,
}

impl<F> Scripted<'_, F> {
    /// The same executor, refusing to pause.
    pub fn without_pauses(mut self) -> Self {
        self.can_pause = false;
        self
    }
}

/// A step answering `status` with `body` at once.
pub fn answer(status: u16, body: Value) -> Step {
    Step {
        reply: ExecutorReply::Response {
            status,
            body: body.to_string().into_bytes(),
        },
        takes_ms: 0,
        then_rescue: false,
    }
}

/// An executor that follows a script, records its calls, moves the clock
/// and can rescue behind the worker's back; its pauses move the clock.
pub struct Scripted<'a, F> {
    queue: &'a dyn LeasedQueue,
    clock: &'a ManualClock,
    script: F,
    /// The calls made, in order.
    pub calls: RefCell<Vec<ExecutorRequest>>,
    /// The pauses asked for (ms), in order.
    pub pauses: RefCell<Vec<u64>>,
    can_pause: bool,
}

#[async_trait(?Send)]
impl<F: Fn(&ExecutorRequest) -> Step> Executor for Scripted<'_, F> {
    async fn call(&self, req: ExecutorRequest) -> ExecutorReply {
        let step = (self.script)(&req);
        self.calls.borrow_mut().push(req);
        self.clock.advance(step.takes_ms);
        if step.then_rescue {
            self.queue.rescue().await.expect("rescue");
        }
        step.reply
    }

    async fn pause(&self, ms: u64) -> bool {
        if self.can_pause {
            self.pauses.borrow_mut().push(ms);
            self.clock.advance(ms);
        }
        self.can_pause
    }
}

pub fn header<'a>(req: &'a ExecutorRequest, name: &str) -> &'a str {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

pub fn node(req: &ExecutorRequest) -> &str {
    header(req, HEADER_NODE_NAME)
}

/// Fails attempt 0 with a 500, answers 200 afterwards.
pub fn flaky(req: &ExecutorRequest) -> Step {
    match header(req, HEADER_ATTEMPT) {
        "0" => answer(500, json!("first try fails")),
        _ => answer(200, json!("second works")),
    }
}
