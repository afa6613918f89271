//! What maintenance remembers between runs, at `m/state`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Log positions observed at one instant. Anything reserved below a mark
/// that is at least one grace period old and still unwritten belongs to a
/// request that died (or is too slow to be trusted and will redo its work).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Mark {
    pub at: u64,
    pub ring_head: u64,
    pub ring_tail: u64,
    pub delayed_tail: u64,
    pub retries_tail: u64,
    pub completions_tail: u64,
    pub orphans_tail: u64,
}

/// Timer entries waiting, by kind (for the stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Waiting {
    pub delayed: u64,
    pub retries: u64,
}

/// Running totals of what maintenance saw and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Totals {
    /// Ring slots that delivered nothing (stale entries, holes, slots
    /// re-queued because their taker died).
    pub ring_undelivered: u64,
    /// Expired leases re-queued.
    pub rescued: u64,
    /// Expired leases dead-lettered.
    pub rescued_dead: u64,
    /// Delayed tasks made due.
    pub delayed_promoted: u64,
    /// Retries made due.
    pub retries_promoted: u64,
    /// Reserved but never written entries, per log.
    pub delayed_holes: u64,
    pub retry_holes: u64,
    pub completion_holes: u64,
    pub orphan_holes: u64,
    /// Completion entries superseded by a redone ack (see
    /// `KvWorkQueue::guarded`): the task's result names a later entry.
    pub completion_superseded: u64,
}

/// The whole state, one JSON value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MaintenanceState {
    /// Completed runs so far; the next run's lock is keyed by it.
    pub generation: u64,
    /// When the last run completed.
    pub last_run_at: u64,
    /// Lock of the last completed run (generation, slot), deleted by the
    /// next one.
    pub last_lock: Option<(u64, u64)>,
    /// Ring slots below this are settled.
    pub walk: u64,
    /// Inbox and log cursors: entries below are processed.
    pub delayed: u64,
    pub retries: u64,
    pub completions: u64,
    pub orphans: u64,
    /// The latest mark, and the newest one at least a grace period old.
    pub mark: Mark,
    pub graced: Mark,
    /// Timer directory: due second → number of chunks stored.
    pub timers: BTreeMap<u64, u32>,
    pub waiting: Waiting,
    pub totals: Totals,
}
