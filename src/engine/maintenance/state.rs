//! What maintenance remembers between runs, at `m/state`: a few hundred
//! bytes whatever the queue holds (timers live in their own buckets).

use serde::{Deserialize, Serialize};

/// The log counters at one instant (`at`, read after the counters), or
/// as one run read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Counters {
    pub at: u64,
    pub ring_head: u64,
    pub ring_tail: u64,
    pub delayed_tail: u64,
    pub retries_tail: u64,
    pub completions_tail: u64,
    pub dead_tail: u64,
    pub set_aside_tail: u64,
}

/// How far each phase has got: entries below a cursor are done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Cursors {
    /// Ring slots walked.
    pub walk: u64,
    /// Delay and retry inbox entries filed.
    pub delayed: u64,
    pub retries: u64,
    /// Completion entries indexed per pipeline.
    pub completions: u64,
    /// Dead-letter entries checked for holes.
    pub dead: u64,
    /// Entries the retention sweep has passed, per log.
    pub retained_completions: u64,
    pub retained_dead: u64,
    pub retained_set_aside: u64,
    /// Consumed entries deleted, per log.
    pub swept_ring: u64,
    /// Drain-gate epochs whose counter was deleted (those below).
    pub swept_drain_epochs: u64,
    pub swept_delayed: u64,
    pub swept_retries: u64,
}

/// The timer wheel's cursors (see `timers.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct WheelCursors {
    /// Second buckets below this are done; this one is the current second.
    pub second: u64,
    /// Hour buckets below this were moved into second buckets.
    pub hour: u64,
    /// Second buckets hold nothing at or past this second.
    pub horizon: u64,
}

/// Running totals of what maintenance saw and did (stats read them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Totals {
    /// Ring slots taken that delivered nothing (padding, holes, stale
    /// entries, tasks re-queued because their taker died).
    pub undelivered: u64,
    /// Expired leases re-queued.
    pub rescued: u64,
    /// Expired leases dead-lettered.
    pub rescued_dead: u64,
    /// Leased tasks whose record became unreadable (set aside).
    pub set_aside_leased: u64,
    /// Delayed tasks made due.
    pub delayed_promoted: u64,
    /// Retries made due.
    pub retries_promoted: u64,
    /// Entries reserved but never written (or stale), per log.
    pub delayed_holes: u64,
    pub retry_holes: u64,
    pub completion_holes: u64,
    pub dead_holes: u64,
    /// Completion entries of a task completed twice (two acks of one
    /// lease raced): the record names the other one.
    pub completion_superseded: u64,
    /// Finished tasks deleted by the retention sweep.
    pub retained_completed: u64,
    pub retained_dead: u64,
    /// Set-aside entries deleted by the retention sweep.
    pub retained_set_aside: u64,
}

/// A maintenance lock whose keys are deleted once it is old enough that
/// no contender can still touch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpentLock {
    pub generation: u64,
    pub attempt: u32,
    pub released_at: u64,
}

/// The whole state, one JSON value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MaintenanceState {
    /// Completed runs so far; the next run's lock is keyed by it.
    pub generation: u64,
    /// When the last run committed.
    pub committed_at: u64,
    /// Locks of recent runs, deleted after an abandonment period.
    pub spent_locks: Vec<SpentLock>,
    pub cursors: Cursors,
    pub wheel: WheelCursors,
    /// The latest mark, and the newest one at least an abandonment period
    /// old: a reservation below a graced counter that is still unwritten
    /// belongs to a request that died.
    pub mark: Counters,
    pub graced: Counters,
    pub totals: Totals,
}
