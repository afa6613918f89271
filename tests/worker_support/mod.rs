//! The worker tests' fixture: every queue implementation of
//! `api_support::implementations` on a manual clock, with drain settings
//! and a scripted executor.
#![allow(dead_code)]

use crate::api_support::implementations;
use async_trait::async_trait;
use serde_json::{json, Value};
use spin_work_queue::config::QueueConfig;
use spin_work_queue::http::{Request, Response};
use spin_work_queue::model::NewTask;
use spin_work_queue::worker::{
    drain, DrainReport, DrainRequest, DrainSettings, Executor, ExecutorReply, ExecutorRoutes,
    HEADER_ATTEMPT, HEADER_NODE_NAME,
};
use spin_work_queue::{
    Clock, DrainQueue, LeasedQueue, ManualClock, RetryPolicy, TaskStatus, WorkQueuePort,
};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub const START_MS: u64 = 1_700_000_000_000;
pub const TIMEOUT_MS: u64 = 1_000;
pub const LEASE_MS: u64 = 10_000;

/// The drain's clock: the fixture's manual clock, whose sleeps are
/// recorded and move the time (unless sleeping is switched off).
#[derive(Debug)]
pub struct SleepingClock {
    clock: ManualClock,
    sleeps: Mutex<Vec<u64>>,
    can_sleep: AtomicBool,
}

impl Clock for SleepingClock {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn sleep_ms(&self, ms: u64) -> bool {
        let can = self.can_sleep.load(Ordering::SeqCst);
        if can {
            self.sleeps.lock().unwrap().push(ms);
            self.clock.advance(ms);
        }
        can
    }
}

/// A queue, drain settings and a manual clock.
pub struct Fixture {
    pub name: &'static str,
    pub queue: Box<dyn DrainQueue>,
    pub clock: ManualClock,
    pub sleeper: Arc<SleepingClock>,
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
            let sleeper = Arc::new(SleepingClock {
                clock: clock.clone(),
                sleeps: Mutex::default(),
                can_sleep: AtomicBool::new(true),
            });
            let settings =
                DrainSettings::new("w-test", routes, TIMEOUT_MS, LEASE_MS, sleeper.clone());
            Fixture {
                name,
                queue: make(config.clone(), Arc::new(clock.clone())),
                clock,
                sleeper,
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

    pub fn executor<F: Fn(&Request) -> Step>(&self, script: F) -> Scripted<'_, F> {
        Scripted {
            queue: &*self.queue,
            clock: &self.clock,
            script,
            calls: RefCell::new(Vec::new()),
        }
    }

    /// The sleeps drains took on the clock so far (ms), in order.
    pub fn sleeps(&self) -> Vec<u64> {
        self.sleeper.sleeps.lock().unwrap().clone()
    }

    /// From now on, the drain's clock cannot sleep.
    pub fn without_sleeping(&self) {
        self.sleeper.can_sleep.store(false, Ordering::SeqCst);
    }

    /// One drain with [`Fixture::awaiting_retries`] settings.
    pub async fn drain_awaiting_retries<F: Fn(&Request) -> Step>(
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
            .awaiting_retries(self.config.maintenance_period_ms)
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

/// A step answering `status` with `body` at once.
pub fn answer(status: u16, body: Value) -> Step {
    Step {
        reply: ExecutorReply::Answered(Response {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }),
        takes_ms: 0,
        then_rescue: false,
    }
}

/// An executor that follows a script, records its calls, moves the clock
/// and can rescue behind the worker's back.
pub struct Scripted<'a, F> {
    queue: &'a dyn LeasedQueue,
    clock: &'a ManualClock,
    script: F,
    /// The calls made, in order.
    pub calls: RefCell<Vec<Request>>,
}

#[async_trait(?Send)]
impl<F: Fn(&Request) -> Step> Executor for Scripted<'_, F> {
    async fn call(&self, req: Request, _timeout_ms: u64) -> ExecutorReply {
        let step = (self.script)(&req);
        self.calls.borrow_mut().push(req);
        self.clock.advance(step.takes_ms);
        if step.then_rescue {
            self.queue.rescue().await.expect("rescue");
        }
        step.reply
    }
}

pub fn header<'a>(req: &'a Request, name: &str) -> &'a str {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

pub fn node(req: &Request) -> &str {
    header(req, HEADER_NODE_NAME)
}

/// Fails attempt 0 with a 500, answers 200 afterwards.
pub fn flaky(req: &Request) -> Step {
    match header(req, HEADER_ATTEMPT) {
        "0" => answer(500, json!("first try fails")),
        _ => answer(200, json!("second works")),
    }
}
