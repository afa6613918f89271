//! [`DrainSettings`]: what a drain needs besides the queue and the
//! executor — who it is, where nodes run, its leases, the gate's bound,
//! and whether it waits for its own retries and for what maintenance
//! recovers.

use super::drain::LEASE_MARGIN_MS;
use super::routes::ExecutorRoutes;
use crate::api::MAX_DRAINS_DEFAULT;
use crate::clock::Clock;
use crate::config::{Timing, MAX_LEASE_MS, MIN_LEASE_MS};
use std::sync::Arc;

/// Everything a drain needs besides the queue and the executor.
#[derive(Clone)]
pub struct DrainSettings {
    /// Recorded as the tasks' `InProgress { worker_id }`.
    pub worker_id: String,
    /// Where each node executes.
    pub routes: ExecutorRoutes,
    /// Time allowed to one executor call.
    pub executor_timeout_ms: u64,
    /// Lease asked for on dequeue and heartbeat.
    pub lease_ms: u64,
    /// Time source (the same as the queue's).
    pub clock: Arc<dyn Clock>,
    /// Wait for the retries this drain schedules (see
    /// [`DrainSettings::awaiting_retries`]); `None`: end without waiting.
    pub retries: Option<AwaitRetries>,
    /// Most drains in flight at once for the whole app (the gate's `max`).
    pub max_drains: u32,
    /// Bearer token sent to executors this app serves itself
    /// ([`ExecutorRoutes::is_in_app`]), never to others.
    pub executor_token: Option<String>,
    /// Time after a too-slow answer by which maintenance has recovered its
    /// leftovers ([`DrainSettings::recovering`]); `None`: a too-slow
    /// answer stops the drain.
    pub recovery_ms: Option<u64>,
}

/// What a drain needs to know to wait for its own retries: when a task it
/// failed becomes due, and how long maintenance may take to promote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwaitRetries {
    /// The queue's `maintenance_period_ms`.
    pub maintenance_period_ms: u64,
}

impl DrainSettings {
    /// Settings whose lease outlasts one executor call by
    /// [`LEASE_MARGIN_MS`]: `max(default_lease_ms, timeout + margin)`.
    pub fn new(
        worker_id: impl Into<String>,
        routes: ExecutorRoutes,
        executor_timeout_ms: u64,
        default_lease_ms: u64,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let lease_ms = default_lease_ms
            .max(executor_timeout_ms.saturating_add(LEASE_MARGIN_MS))
            .clamp(MIN_LEASE_MS, MAX_LEASE_MS);
        Self {
            worker_id: worker_id.into(),
            routes,
            executor_timeout_ms,
            lease_ms,
            clock,
            retries: None,
            max_drains: MAX_DRAINS_DEFAULT,
            executor_token: None,
            recovery_ms: None,
        }
    }

    /// The same settings, sending `token` to the app's own executors.
    pub fn with_executor_token(mut self, token: Option<String>) -> Self {
        self.executor_token = token;
        self
    }

    /// The same settings with at most `max` drains in flight.
    pub fn with_max_drains(mut self, max: u32) -> Self {
        self.max_drains = max;
        self
    }

    /// The same settings, with drains that wait for the retries they
    /// schedule: when a dequeue comes back short and a task this drain
    /// failed will be due (and promoted by maintenance) before the budget
    /// ends, the drain sleeps on its clock until then and dequeues again —
    /// so quick retries run without a scheduler calling
    /// `POST /v1/maintenance/rescue`.
    pub fn awaiting_retries(mut self, maintenance_period_ms: u64) -> Self {
        self.retries = Some(AwaitRetries {
            maintenance_period_ms,
        });
        self
    }

    /// The same settings, with drains that outlive a too-slow store and
    /// lost leases: a dequeue the store answered too slowly wrote nothing,
    /// so the slots it took come back through maintenance, as do the tasks
    /// of leases lost or left — after two abandonment periods or the
    /// lease's expiry plus the rescue delay, and two maintenance periods,
    /// on any clock. The drain goes on, waits for that time when the queue
    /// runs dry within its budget (dequeuing every maintenance period) and
    /// notes it at the gate for the drains after it: the work is not left
    /// for traffic that may never come.
    pub fn recovering(mut self, timing: &Timing, maintenance_period_ms: u64) -> Self {
        // A taken slot is abandoned once a mark taken after it (marks are
        // taken an abandonment period apart) is an abandonment period old.
        let recovered =
            (2 * timing.abandon_after_ms).max(self.lease_ms.saturating_add(timing.rescue_after_ms));
        self.recovery_ms = Some(
            recovered
                .saturating_add(2 * maintenance_period_ms)
                .saturating_add(timing.clock_skew_ms),
        );
        self
    }

    /// Whether leases expiring at `expiry` must be renewed before starting
    /// a call at `now`: half the lease has passed, or the call could
    /// outlive the lease.
    pub(super) fn needs_renewal(&self, now: u64, expiry: u64) -> bool {
        let remaining = expiry.saturating_sub(now);
        remaining < self.lease_ms / 2
            || remaining < self.executor_timeout_ms.saturating_add(LEASE_MARGIN_MS / 5)
    }
}
