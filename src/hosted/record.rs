//! The one record a task has in the store-only engine, and its encoding.

use crate::model::{Lease, TaskInfo};
use crate::port::{TaskStatus, WorkTask};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's record, at `o/{id}` while open and `d/{id}` once finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The task; `attempt` is the attempt delivered last or to deliver next.
    pub task: WorkTask,
    pub status: TaskStatus,
    pub max_attempts: u32,
    pub created_at: u64,
    pub updated_at: u64,
    /// When it is (or became) due: enqueue plus delay, its retry time, the
    /// time its lease could be rescued.
    pub ready_at: u64,
    /// Order among records due at the same time (and, for finished ones,
    /// finishing order).
    pub seq: String,
    /// The running lease; once completed, the lease that completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// When it finished (completed or dead-lettered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// A delayed task whose delay's end a rescue has counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promoted: bool,
    /// The claim that wrote this version (see `claim.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// The executor's route key when it is not the node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
}

impl Record {
    pub(crate) fn info(&self) -> TaskInfo {
        TaskInfo {
            task: self.task.clone(),
            status: self.status.clone(),
            max_attempts: self.max_attempts,
            created_at: self.created_at,
            updated_at: self.updated_at,
            lease: match self.status {
                TaskStatus::InProgress { .. } => self.lease.clone(),
                _ => None,
            },
            executor: self.executor.clone(),
        }
    }

    /// The expiry of `lease_id` if it is the running delivery's lease.
    pub(crate) fn holds(&self, lease_id: &str) -> Option<u64> {
        match (&self.status, &self.lease) {
            (TaskStatus::InProgress { .. }, Some(l)) if l.id == lease_id => Some(l.expires_at),
            _ => None,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always encodes")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// A new order key at `now` (the queue's clock): that time first, then the
/// host's wall clock in nanoseconds (which orders requests of the same
/// millisecond, one component instance each), then a per-process sequence
/// and randomness — unique, and increasing along one host's calls.
pub(crate) fn next_seq(now: u64) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{now:015}{wall:020}{n:012}{}",
        &ulid::Ulid::generate().to_string()[16..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_increase_within_a_process() {
        let a = next_seq(5);
        let b = next_seq(5);
        assert!(a < b);
        assert!(b < next_seq(6));
    }
}
