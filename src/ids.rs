//! Where new ids come from: an injected [`IdSource`], so that a simulation
//! replays exactly (lease ids and generated task ids included).

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of unique ids (task ids the queue generates, lease ids).
pub trait IdSource: Send + Sync {
    /// A new id, `[0-9A-Za-z_-]{1,128}`, never returned before.
    fn next_id(&self) -> String;
}

/// ULIDs: time-ordered, 26 characters, random in their low bits.
#[derive(Debug, Clone, Copy, Default)]
pub struct UlidIds;

impl IdSource for UlidIds {
    fn next_id(&self) -> String {
        ulid::Ulid::generate().to_string()
    }
}

/// `{prefix}{n}` for n = 1, 2, 3, …: deterministic ids for tests and
/// simulations.
///
/// ```
/// use spin_work_queue::ids::{IdSource, SequentialIds};
/// let ids = SequentialIds::new("L");
/// assert_eq!((ids.next_id(), ids.next_id()), ("L1".to_string(), "L2".to_string()));
/// ```
#[derive(Debug, Default)]
pub struct SequentialIds {
    prefix: String,
    next: AtomicU64,
}

impl SequentialIds {
    /// Ids `{prefix}1`, `{prefix}2`, …
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            next: AtomicU64::new(1),
        }
    }
}

impl IdSource for SequentialIds {
    fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        format!("{}{n}", self.prefix)
    }
}
