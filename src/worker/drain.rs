//! [`drain`]: dequeue batches, execute each task, ack (in batch) or fail
//! it, keep the leases alive, stop on `max_tasks`, the time budget or an
//! empty queue — after waiting for the retries it scheduled when they fall
//! due within the budget.

use super::executor::{classify, task_request, Execution, Executor};
use super::routes::ExecutorRoutes;
use super::settings::DrainSettings;
use crate::config::MAX_DEQUEUE_BATCH;
use crate::dispatch::{DrainQueue, Ticket};
use crate::error::QueueError;
use crate::model::{Ack, DequeueRequest, FailOutcome, LeasedTask};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default of `max_tasks`.
pub const MAX_TASKS_DEFAULT: u32 = 100;
/// Largest accepted `max_tasks`.
pub const MAX_TASKS_LIMIT: u32 = 10_000;
/// Default of `batch`.
pub const BATCH_DEFAULT: u32 = 10;
/// Default of `budget_ms`.
pub const BUDGET_MS_DEFAULT: u64 = 20_000;
/// Largest accepted `budget_ms` (10 minutes).
pub const BUDGET_MS_LIMIT: u64 = 600_000;
/// Default time allowed to one executor call.
pub const EXECUTOR_TIMEOUT_MS_DEFAULT: u64 = 25_000;
/// Times a batch ack the store answered too slowly is sent again.
const ACK_TRIES: u32 = 2;
/// Slack kept between a lease's expiry and the end of an executor call.
pub const LEASE_MARGIN_MS: u64 = 5_000;

/// The body of `POST /worker/drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRequest {
    /// Most tasks to process in this drain.
    #[serde(default = "max_tasks_default")]
    pub max_tasks: u32,
    /// Tasks taken per dequeue (1..=100).
    #[serde(default = "batch_default")]
    pub batch: u32,
    /// Time after which no new batch is taken.
    #[serde(default = "budget_default")]
    pub budget_ms: u64,
    /// Answer `202` at once and drain after the answer (push dispatch)
    /// instead of answering with the report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
    /// The drain's place at the gate, when whoever pushed it was admitted
    /// for it (see [`crate::dispatch`]); without one the drain asks the
    /// gate itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
}

fn max_tasks_default() -> u32 {
    MAX_TASKS_DEFAULT
}
fn batch_default() -> u32 {
    BATCH_DEFAULT
}
fn budget_default() -> u64 {
    BUDGET_MS_DEFAULT
}

impl Default for DrainRequest {
    fn default() -> Self {
        Self {
            max_tasks: MAX_TASKS_DEFAULT,
            batch: BATCH_DEFAULT,
            budget_ms: BUDGET_MS_DEFAULT,
            background: false,
            ticket: None,
        }
    }
}

impl DrainRequest {
    /// Check the ranges; the error is a message for a 422.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_TASKS_LIMIT).contains(&self.max_tasks) {
            return Err(format!(
                "max_tasks must be 1..={MAX_TASKS_LIMIT}, got {}",
                self.max_tasks
            ));
        }
        if !(1..=MAX_DEQUEUE_BATCH).contains(&self.batch) {
            return Err(format!(
                "batch must be 1..={MAX_DEQUEUE_BATCH}, got {}",
                self.batch
            ));
        }
        if !(1..=BUDGET_MS_LIMIT).contains(&self.budget_ms) {
            return Err(format!(
                "budget_ms must be 1..={BUDGET_MS_LIMIT}, got {}",
                self.budget_ms
            ));
        }
        Ok(())
    }
}

/// What a drain did: the response body of `POST /worker/drain`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainReport {
    /// Tasks taken from the queue.
    pub processed: u64,
    /// Tasks executed and acknowledged.
    pub succeeded: u64,
    /// Tasks failed (retry scheduled or dead-lettered).
    pub failed: u64,
    /// Tasks whose lease was lost before they could be finished.
    pub lease_lost: u64,
    /// True when the drain stopped on `max_tasks` or its budget while the
    /// queue still had work: the caller should drain again.
    pub more: bool,
    /// True when `max_drains` drains were in flight already: this one
    /// drained nothing (they do the work).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub busy: bool,
}

/// A drain stopped by a store failure; the leases it held expire and their
/// tasks are rescued.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("drain stopped after {} tasks: {source}", partial.processed)]
pub struct DrainError {
    /// What was done before the failure.
    pub partial: DrainReport,
    /// The failure.
    #[source]
    pub source: QueueError,
}

/// Drain the queue: dequeue batches of `req.batch`, execute each task
/// through `executor`, ack the successes in one batch per dequeue, fail
/// the failures, until `max_tasks` tasks were taken, the budget is spent
/// (checked between batches) or a dequeue comes back short.
///
/// Leases: before each call, when half the lease has passed (or the call
/// could outlive it), the pending acks are flushed and the batch's
/// remaining leases are heartbeated; a task whose lease was lost is
/// skipped and counted in `lease_lost`.
///
/// This drain does not go through the gate; [`drain_admitted`] does.
pub async fn drain<Q, E>(
    queue: &Q,
    executor: &E,
    settings: &DrainSettings,
    req: &DrainRequest,
) -> Result<DrainReport, DrainError>
where
    Q: DrainQueue + ?Sized,
    E: Executor + ?Sized,
{
    drain_admitted(queue, executor, settings, req, None)
        .await
        .result
}

/// What an admitted drain did, and its place at the gate when it ended
/// (`None`: it lost it at an epoch's start, to drains that go on).
#[derive(Debug, Clone, PartialEq)]
pub struct Drained {
    /// The report, or the store failure that stopped the drain.
    pub result: Result<DrainReport, DrainError>,
    /// The ticket to release.
    pub ticket: Option<Ticket>,
}

/// [`drain`] under `ticket`: renewed between batches, and when the gate
/// gives the drain's place in a new epoch to others, the drain stops.
pub async fn drain_admitted<Q, E>(
    queue: &Q,
    executor: &E,
    settings: &DrainSettings,
    req: &DrainRequest,
    ticket: Option<Ticket>,
) -> Drained
where
    Q: DrainQueue + ?Sized,
    E: Executor + ?Sized,
{
    let mut run = Run {
        queue,
        executor,
        settings,
        report: DrainReport::default(),
        retries_due: BTreeMap::new(),
        ticket,
        recover_at: None,
        unnoted: false,
    };
    let outcome = run.all(req).await;
    run.note_recovery().await;
    let result = match outcome {
        Ok(()) => Ok(run.report),
        Err(source) => Err(DrainError {
            partial: run.report,
            source,
        }),
    };
    Drained {
        result,
        ticket: run.ticket,
    }
}

struct Run<'a, Q: ?Sized, E: ?Sized> {
    queue: &'a Q,
    executor: &'a E,
    settings: &'a DrainSettings,
    report: DrainReport,
    /// When maintenance has recovered what this drain left.
    recover_at: Option<u64>,
    /// Whether `recover_at` is still to be written at the gate.
    unnoted: bool,
    /// The retries this drain scheduled and has not seen again: task id →
    /// when it falls due.
    retries_due: BTreeMap<String, u64>,
    /// The drain's place at the gate, renewed between batches.
    ticket: Option<Ticket>,
}

impl<Q: DrainQueue + ?Sized, E: Executor + ?Sized> Run<'_, Q, E> {
    async fn all(&mut self, req: &DrainRequest) -> Result<(), QueueError> {
        let start = self.settings.clock.now_ms();
        let max_tasks = u64::from(req.max_tasks);
        loop {
            let left = max_tasks.saturating_sub(self.report.processed);
            let spent = self.settings.clock.now_ms().saturating_sub(start) >= req.budget_ms;
            if left == 0 || spent {
                self.report.more = true;
                return Ok(());
            }
            if let Some(ticket) = self.ticket {
                self.ticket = self.queue.renew(ticket, self.settings.max_drains).await?;
                if self.ticket.is_none() {
                    return Ok(()); // the drains of the new epoch go on
                }
            }
            let want = left.min(u64::from(req.batch)) as u32;
            let dequeue = DequeueRequest {
                worker_id: self.settings.worker_id.clone(),
                max: want,
                lease_ms: Some(self.settings.lease_ms),
            };
            let batch = match self.queue.dequeue(&dequeue).await {
                Err(e) if self.outlived(&e) => continue,
                other => other?,
            };
            for leased in &batch {
                self.retries_due.remove(&leased.task.id);
            }
            let short = batch.len() < want as usize;
            // Finishing pipeline nodes may have started their children:
            // look again at once rather than after a wait.
            let nodes = batch
                .iter()
                .any(|l| crate::pipeline::split_task_id(&l.task.id).is_some());
            self.report.processed += batch.len() as u64;
            match self.batch(batch).await {
                Err(e) if self.outlived(&e) => continue,
                other => other?,
            }
            if short && nodes {
                continue;
            }
            let deadline = start.saturating_add(req.budget_ms);
            if short
                && !self.await_retries(deadline).await
                && !self.await_recovery(deadline).await?
            {
                return Ok(());
            }
        }
    }

    /// Whether the drain goes on after `e`: the store answered too slowly
    /// (nothing was written) and drains recover.
    fn outlived(&mut self, e: &QueueError) -> bool {
        let outlives = matches!(e, QueueError::TooSlow(_)) && self.settings.recovery_ms.is_some();
        if outlives {
            self.expect_recovery();
        }
        outlives
    }

    /// Note that maintenance recovers something this drain left (slots it
    /// took, leases it held or lost) within the recovery time; the time is
    /// written at the gate before the drain waits or ends, for the drains
    /// that end after this one.
    fn expect_recovery(&mut self) {
        let Some(recovery) = self.settings.recovery_ms else {
            return;
        };
        let at = self.settings.clock.now_ms().saturating_add(recovery);
        self.recover_at = Some(self.recover_at.map_or(at, |t| t.max(at)));
        self.unnoted = true;
    }

    /// Write the recovery this drain expects at the gate (best effort: when
    /// the store refuses this too, this drain still waits, or says `more`).
    async fn note_recovery(&mut self) {
        if let (true, Some(at)) = (self.unnoted, self.recover_at) {
            self.unnoted = self.queue.expect_recovery(at).await.is_err();
        }
    }

    /// After a short dequeue with no retry to wait for: while a recovery
    /// is pending (this drain's, one noted at the gate, or a taken slot
    /// whose task was not leased — [`DrainGate::work_due`]), sleep one
    /// maintenance period and dequeue again — new work is served
    /// meanwhile; when the next look falls after `deadline`, end with
    /// `more`, so that the next drain goes on waiting.
    ///
    /// [`DrainGate::work_due`]: crate::dispatch::DrainGate::work_due
    async fn await_recovery(&mut self, deadline: u64) -> Result<bool, QueueError> {
        let Some(recovery) = self.settings.recovery_ms else {
            return Ok(false);
        };
        self.note_recovery().await;
        let now = self.settings.clock.now_ms();
        let step = self
            .settings
            .retries
            .map_or(1_000, |r| r.maintenance_period_ms.max(100));
        let noted = self.queue.recovery_pending(recovery).await?;
        let pending = match noted.max(self.recover_at).filter(|at| *at > now) {
            Some(at) => Some(at),
            None if self.queue.work_due().await? => Some(now.saturating_add(step)),
            None => None,
        };
        let Some(at) = pending else {
            return Ok(false);
        };
        let wake = at.min(now.saturating_add(step));
        if wake > deadline {
            self.report.more = true;
            return Ok(false);
        }
        Ok(self.settings.clock.sleep_ms(wake - now))
    }

    /// After a short dequeue: wait for the earliest retry this drain
    /// scheduled and has not seen again, when it will be deliverable before
    /// `deadline` — due, plus one maintenance period, after which some
    /// dequeue has promoted it. `false`: the drain ends.
    async fn await_retries(&mut self, deadline: u64) -> bool {
        let Some(wait) = &self.settings.retries else {
            return false;
        };
        // Taken out, so that a retry another worker took is waited for once.
        let Some((id, due)) = self
            .retries_due
            .iter()
            .min_by_key(|(_, due)| **due)
            .map(|(id, due)| (id.clone(), *due))
        else {
            return false;
        };
        self.retries_due.remove(&id);
        let ready = due.saturating_add(wait.maintenance_period_ms);
        if ready > deadline {
            return false;
        }
        let now = self.settings.clock.now_ms();
        ready <= now || self.settings.clock.sleep_ms(ready - now)
    }

    async fn batch(&mut self, batch: Vec<LeasedTask>) -> Result<(), QueueError> {
        let mut live: Vec<Option<LeasedTask>> = batch.into_iter().map(Some).collect();
        let mut expiry = min_expiry(live.iter().flatten());
        let mut acks: Vec<Ack> = Vec::new();
        for i in 0..live.len() {
            if live[i].is_none() {
                continue;
            }
            let now = self.settings.clock.now_ms();
            if self.settings.needs_renewal(now, expiry) {
                self.flush(&mut acks).await?;
                expiry = self.renew(&mut live[i..]).await?;
            }
            let Some(leased) = live[i].take() else {
                continue;
            };
            let url = self.settings.routes.url_for(leased.route_key());
            let timeout_ms = self.settings.executor_timeout_ms;
            let mut call = task_request(&leased.task, url, timeout_ms);
            if let Some(token) = &self.settings.executor_token {
                if ExecutorRoutes::is_in_app(&call.url) {
                    call.headers
                        .push(("authorization".into(), format!("Bearer {token}")));
                }
            }
            match classify(self.executor.call(call, timeout_ms).await) {
                Execution::Succeeded(output) => acks.push(Ack {
                    id: leased.task.id,
                    lease_id: leased.lease.id,
                    output,
                }),
                Execution::Failed { error, retryable } => {
                    let outcome = self
                        .queue
                        .fail_leased(&leased.task.id, &leased.lease.id, &error, retryable)
                        .await;
                    if let Ok(FailOutcome {
                        retry_at: Some(due),
                        ..
                    }) = &outcome
                    {
                        if self.settings.retries.is_some() {
                            self.retries_due.insert(leased.task.id.clone(), *due);
                        }
                    }
                    self.count(outcome.map(drop), Counter::Failed)?;
                }
            }
        }
        self.flush(&mut acks).await
    }

    /// Ack the collected successes in one call.
    async fn flush(&mut self, acks: &mut Vec<Ack>) -> Result<(), QueueError> {
        if acks.is_empty() {
            return Ok(());
        }
        let acks = std::mem::take(acks);
        // A too-slow answer wrote nothing and the leases still hold: again.
        let mut tries = 0;
        let results = loop {
            match self.queue.ack_batch(acks.clone()).await {
                Err(QueueError::TooSlow(_)) if tries < ACK_TRIES => tries += 1,
                other => break other?,
            }
        };
        for result in results {
            self.count(result.map(drop), Counter::Succeeded)?;
        }
        Ok(())
    }

    /// Heartbeat every live lease; drop the lost ones. Returns the earliest
    /// new expiry.
    async fn renew(&mut self, live: &mut [Option<LeasedTask>]) -> Result<u64, QueueError> {
        let mut expiry = u64::MAX;
        for slot in live.iter_mut() {
            let Some(leased) = slot else { continue };
            let beat = self
                .queue
                .heartbeat(
                    &leased.task.id,
                    &leased.lease.id,
                    Some(self.settings.lease_ms),
                )
                .await;
            match beat {
                Ok(at) => {
                    leased.lease.expires_at = at;
                    expiry = expiry.min(at);
                }
                Err(e) if is_lost(&e) => {
                    *slot = None;
                    self.report.lease_lost += 1;
                    self.expect_recovery();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(expiry)
    }

    /// Count one finished task, or a lost lease; other errors stop the
    /// drain.
    fn count(
        &mut self,
        outcome: Result<(), QueueError>,
        counter: Counter,
    ) -> Result<(), QueueError> {
        match outcome {
            Ok(()) => {
                match counter {
                    Counter::Succeeded => self.report.succeeded += 1,
                    Counter::Failed => self.report.failed += 1,
                }
                Ok(())
            }
            Err(e) if is_lost(&e) => {
                self.report.lease_lost += 1;
                self.expect_recovery();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[derive(Clone, Copy)]
enum Counter {
    Succeeded,
    Failed,
}

/// Errors meaning "this delivery is no longer ours to finish".
fn is_lost(e: &QueueError) -> bool {
    matches!(
        e,
        QueueError::LeaseLost { .. } | QueueError::WrongState { .. } | QueueError::NotFound { .. }
    )
}

fn min_expiry<'a>(tasks: impl Iterator<Item = &'a LeasedTask>) -> u64 {
    tasks.map(|t| t.lease.expires_at).min().unwrap_or(u64::MAX)
}
