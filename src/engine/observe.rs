//! What the engine tells its host about: failures it swallowed to keep a
//! request going, stored values it set aside, and store calls slower than
//! the bound its safety assumes.

use crate::error::QueueError;

/// Something worth logging that did not fail the request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An opportunistic maintenance run (inside a dequeue) failed; the
    /// dequeue went on and the next run decides again.
    MaintenanceFailed(QueueError),
    /// A value could not be decoded and was set aside.
    SetAside {
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A fenced write took `ms` from the clock check before it to its
    /// return, more than the assumed
    /// [`store_call_ms`](crate::config::Timing::store_call_ms): the
    /// timing assumptions may not hold on this store.
    SlowWrite {
        /// The operation.
        op: &'static str,
        /// Milliseconds from the check to the return.
        ms: u64,
    },
    /// Starting a pipeline's next nodes after a task finished, or a
    /// reconciliation, failed; the next reconciliation starts them.
    PipelineStepFailed(QueueError),
}

/// Receives [`Event`]s. The default, [`StderrObserver`], prints them.
pub trait Observer: Send + Sync {
    /// Handle one event.
    fn event(&self, event: &Event);
}

/// Prints each event on standard error (a Spin component's log).
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrObserver;

impl Observer for StderrObserver {
    fn event(&self, event: &Event) {
        match event {
            Event::MaintenanceFailed(e) => eprintln!("spin-work-queue: maintenance failed: {e}"),
            Event::PipelineStepFailed(e) => {
                eprintln!("spin-work-queue: pipeline step failed (reconciliation retries): {e}")
            }
            Event::SetAside { key, reason } => {
                eprintln!("spin-work-queue: set aside {key}: {reason}")
            }
            Event::SlowWrite { op, ms } => eprintln!(
                "spin-work-queue: {op} write took {ms} ms, above the assumed store-call bound"
            ),
        }
    }
}
