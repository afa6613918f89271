//! Time as the queue sees it: an injected [`Clock`] so tests move time
//! forward instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A source of wall-clock time in Unix milliseconds, and of waiting.
pub trait Clock: Send + Sync {
    /// The current time in Unix milliseconds.
    fn now_ms(&self) -> u64;

    /// Wait `ms` milliseconds, blocking the caller; `false` when this
    /// clock cannot wait (the default), and the caller does without.
    fn sleep_ms(&self, ms: u64) -> bool {
        let _ = ms;
        false
    }
}

/// The system's wall clock (`std::time::SystemTime`; on `wasm32-wasip2` the
/// host's `wasi:clocks/wall-clock`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// `std::thread::sleep` (on `wasm32-wasip2`, a `wasi:clocks`
    /// monotonic pollable): the calling request has nothing else to do.
    fn sleep_ms(&self, ms: u64) -> bool {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        true
    }
}

/// A clock that only moves when told to, or when someone sleeps on it
/// (sleeping advances it). Clones share the same time.
///
/// ```
/// use spin_work_queue::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance(500);
/// assert_eq!(clock.now_ms(), 1_500);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock that reads `start_ms` until advanced.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// Move time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// Set the time to `ms` (may move backwards, to model skewed clocks).
    pub fn set(&self, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// Advance the clock by `ms` at once.
    fn sleep_ms(&self, ms: u64) -> bool {
        self.advance(ms);
        true
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn sleep_ms(&self, ms: u64) -> bool {
        (**self).sleep_ms(ms)
    }
}
