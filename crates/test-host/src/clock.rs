//! A wall clock that tests can move forward without sleeping.
//!
//! With `--clock-file PATH` the host reads a signed millisecond offset (one
//! integer, surrounding whitespace allowed) from `PATH` and adds it to the
//! system wall clock that components see through `wasi:clocks/wall-clock`.
//! A value written as `=MS` instead *freezes* the wall clock at `MS` Unix
//! milliseconds, so a test decides exactly when time passes (within that
//! millisecond the clock still moves by a nanosecond per read, so two reads
//! are never equal).
//! The file is re-read on every clock call (a few microseconds), so a test can
//! change it at any time; a missing file means offset 0, and a file that is
//! being rewritten (empty or not a number) keeps the last good offset. The
//! monotonic clock is not affected.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds a frozen clock has moved within its millisecond.
static TICK: AtomicU64 = AtomicU64::new(0);

use wasmtime_wasi::HostWallClock;

/// The offset source shared by all requests of one host.
#[derive(Debug)]
pub struct ClockFile {
    path: PathBuf,
    last_good: std::sync::Mutex<Reading>,
}

/// What the clock file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Add this many milliseconds to the system clock.
    Offset(i64),
    /// The wall clock stands at this many Unix milliseconds.
    Frozen(u64),
}

impl ClockFile {
    /// Creates a clock offset source reading `path`.
    pub fn new(path: PathBuf) -> Self {
        ClockFile {
            path,
            last_good: std::sync::Mutex::new(Reading::Offset(0)),
        }
    }

    /// The current offset in milliseconds (0 when the clock is frozen).
    pub fn offset_ms(&self) -> i64 {
        match self.reading() {
            Reading::Offset(ms) => ms,
            Reading::Frozen(_) => 0,
        }
    }

    /// What the file says now (the last good value while it is rewritten).
    pub fn reading(&self) -> Reading {
        let mut last = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        let parsed = match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let text = text.trim();
                match text.strip_prefix('=') {
                    Some(abs) => abs.trim().parse().ok().map(Reading::Frozen),
                    None => text.parse().ok().map(Reading::Offset),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Reading::Offset(0)),
            Err(_) => None,
        };
        if let Some(r) = parsed {
            *last = r;
        }
        *last
    }
}

/// The wall clock given to components: system time plus the file's offset.
pub struct OffsetWallClock {
    file: Option<Arc<ClockFile>>,
}

impl OffsetWallClock {
    /// A clock shifted by the offset in `file` (unshifted when `None`).
    pub fn new(file: Option<Arc<ClockFile>>) -> Self {
        OffsetWallClock { file }
    }

    /// Time since the Unix epoch as this clock reports it.
    pub fn since_epoch(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let reading = self.file.as_ref().map(|f| f.reading());
        let offset = match reading {
            // Frozen, but never twice the same instant: a nanosecond more
            // on every read (well under a millisecond), as time passes
            // between one request and the next on a real host.
            Some(Reading::Frozen(ms)) => {
                let tick = TICK.fetch_add(1, Ordering::Relaxed) % 999_999;
                return Duration::from_millis(ms) + Duration::from_nanos(tick);
            }
            Some(Reading::Offset(ms)) => ms,
            None => 0,
        };
        if offset >= 0 {
            now + Duration::from_millis(offset as u64)
        } else {
            now.saturating_sub(Duration::from_millis(offset.unsigned_abs()))
        }
    }
}

impl HostWallClock for OffsetWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.since_epoch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        let clock = OffsetWallClock::new(Some(Arc::new(ClockFile::new(path.clone()))));
        let base = clock.since_epoch();
        std::fs::write(&path, "3600000\n").unwrap();
        let later = clock.since_epoch();
        assert!(later >= base + Duration::from_secs(3599));
        std::fs::write(&path, "").unwrap();
        assert!(clock.since_epoch() >= base + Duration::from_secs(3599));
        std::fs::write(&path, "-60000").unwrap();
        assert!(clock.since_epoch() < base);
        std::fs::remove_file(&path).unwrap();
        assert!(clock.since_epoch() >= base);
    }

    #[test]
    fn an_equals_sign_freezes_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        let clock = OffsetWallClock::new(Some(Arc::new(ClockFile::new(path.clone()))));
        let ms = |d: Duration| d.as_millis();
        std::fs::write(&path, "=1700000000000").unwrap();
        let (a, b) = (clock.since_epoch(), clock.since_epoch());
        assert_eq!((ms(a), ms(b)), (1_700_000_000_000, 1_700_000_000_000));
        assert!(
            b > a,
            "two reads of a frozen clock still differ: {a:?} {b:?}"
        );
        std::fs::write(&path, "= 1700000000500\n").unwrap();
        assert_eq!(ms(clock.since_epoch()), 1_700_000_000_500);
    }
}
