//! Every key the engine reads or writes is built here, under the configured
//! prefix. Counter keys (only ever `increment`ed) and value keys (only ever
//! `set`) are distinct types, so the two can never be mixed up: Spin's
//! SQLite store poisons itself on an `increment` of a value that is not a
//! counter.

use crate::encode::percent_encode;

/// A key only ever written with `increment` and read with
/// [`read_counter`](crate::kv::read_counter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CounterKey(pub(crate) String);

/// The append logs of the store. Each is a counter `{log}/tail` plus
/// entries `{log}/{n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Log {
    /// The pending ring: ids of due tasks, taken by dequeuers (`q/head`).
    Ring,
    /// Tasks enqueued with a delay, consumed by maintenance.
    Delayed,
    /// Failed tasks waiting for their retry, consumed by maintenance.
    Retries,
    /// Completions in completion order: indexed per pipeline, then the
    /// retention sweep's list of completed tasks.
    Completions,
    /// Dead-lettered tasks, oldest first.
    DeadLetters,
    /// Stored values that could not be decoded, set aside.
    SetAside,
    /// Submitted pipelines, in submission order (and again when one runs
    /// again after a redrive), consumed by reconciliation and retention.
    Pipelines,
}

impl Log {
    /// Every log.
    #[cfg(test)]
    pub(crate) const ALL: [Log; 7] = [
        Log::Ring,
        Log::Delayed,
        Log::Retries,
        Log::Completions,
        Log::DeadLetters,
        Log::SetAside,
        Log::Pipelines,
    ];

    fn dir(self) -> &'static str {
        match self {
            Log::Ring => "q",
            Log::Delayed => "d",
            Log::Retries => "f",
            Log::Completions => "c",
            Log::DeadLetters => "x",
            Log::SetAside => "z",
            Log::Pipelines => "r",
        }
    }
}

/// The timer wheel's two levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Wheel {
    /// Buckets of one second, for timers due within about two hours.
    Seconds,
    /// Buckets of one hour, for timers due later.
    Hours,
}

/// The key builder.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// `{p}/t/{id}`: the task record.
    pub(crate) fn task(&self, id: &str) -> String {
        format!("{}/t/{id}", self.prefix)
    }

    /// `{p}/h/{id}`: the latest heartbeat of a task's running delivery.
    pub(crate) fn heartbeat(&self, id: &str) -> String {
        format!("{}/h/{id}", self.prefix)
    }

    /// `{p}/k/{key}`: idempotency key → task id (only when key ≠ id).
    pub(crate) fn idempotency(&self, key: &str) -> String {
        format!("{}/k/{}", self.prefix, percent_encode(key))
    }

    /// `{p}/{log}/tail`: number of entries ever reserved in `log`.
    pub(crate) fn tail(&self, log: Log) -> CounterKey {
        CounterKey(format!("{}/{}/tail", self.prefix, log.dir()))
    }

    /// `{p}/q/head`: ring slots ever taken by dequeuers.
    pub(crate) fn ring_head(&self) -> CounterKey {
        CounterKey(format!("{}/q/head", self.prefix))
    }

    /// `{p}/{log}/{n}`: the n-th entry of `log`.
    pub(crate) fn entry(&self, log: Log, n: u64) -> String {
        format!("{}/{}/{n}", self.prefix, log.dir())
    }

    /// `{p}/q/{n}/x`: who gave up on ring slot `n` first, its taker or its
    /// writer (see `ring.rs`).
    pub(crate) fn settle(&self, n: u64) -> CounterKey {
        CounterKey(format!("{}/q/{n}/x", self.prefix))
    }

    /// `{p}/x/{n}/r/{attempt}`: the redrive lock of dead-letter entry `n`.
    pub(crate) fn redrive_lock(&self, n: u64, attempt: u32) -> CounterKey {
        CounterKey(format!("{}/x/{n}/r/{attempt}", self.prefix))
    }

    /// `{p}/x/{n}/r/{attempt}/seen`: when a redrive found that lock held.
    pub(crate) fn redrive_seen(&self, n: u64, attempt: u32) -> String {
        format!("{}/x/{n}/r/{attempt}/seen", self.prefix)
    }

    /// `{p}/x/{n}/r/next`: the newest attempt of that redrive lock.
    pub(crate) fn redrive_next(&self, n: u64) -> String {
        format!("{}/x/{n}/r/next", self.prefix)
    }

    /// `{p}/x/redriven`: dead-lettered tasks put back in the queue.
    pub(crate) fn redriven(&self) -> CounterKey {
        CounterKey(format!("{}/x/redriven", self.prefix))
    }

    /// `{p}/w/{epoch}`: drains admitted in an epoch of the drain gate,
    /// minus those that ended in it.
    pub(crate) fn drains(&self, epoch: u64) -> CounterKey {
        CounterKey(format!("{}/w/{epoch}", self.prefix))
    }

    /// `{p}/w/{epoch}/r`: answers the store gave too slowly whose leftovers
    /// maintenance recovers by the end of that epoch.
    pub(crate) fn recovery(&self, epoch: u64) -> CounterKey {
        CounterKey(format!("{}/w/{epoch}/r", self.prefix))
    }

    /// `{p}/m/state`: maintenance cursors, marks and totals.
    pub(crate) fn maintenance_state(&self) -> String {
        format!("{}/m/state", self.prefix)
    }

    /// `{p}/m/garbage`: keys the next maintenance run deletes.
    pub(crate) fn garbage(&self) -> String {
        format!("{}/m/garbage", self.prefix)
    }

    /// `{p}/m/l/{generation}/{attempt}`: who runs maintenance after run
    /// `generation` (attempt 0, then takeovers).
    pub(crate) fn lock(&self, generation: u64, attempt: u32) -> CounterKey {
        CounterKey(format!("{}/m/l/{generation}/{attempt}", self.prefix))
    }

    /// `{p}/m/l/{generation}/{attempt}/seen`: when a contender first found
    /// that lock held.
    pub(crate) fn lock_seen(&self, generation: u64, attempt: u32) -> String {
        format!("{}/m/l/{generation}/{attempt}/seen", self.prefix)
    }

    /// `{p}/m/l/{generation}/next`: the newest attempt of that lock.
    pub(crate) fn lock_next(&self, generation: u64) -> String {
        format!("{}/m/l/{generation}/next", self.prefix)
    }

    /// `{p}/m/t/{second}` or `{p}/m/w/{hour}` (chunk 0), then `…/{chunk}`:
    /// a bucket of the timer wheel.
    pub(crate) fn timer_chunk(&self, wheel: Wheel, bucket: u64, chunk: u32) -> String {
        let dir = match wheel {
            Wheel::Seconds => "t",
            Wheel::Hours => "w",
        };
        match chunk {
            0 => format!("{}/m/{dir}/{bucket}", self.prefix),
            c => format!("{}/m/{dir}/{bucket}/{c}", self.prefix),
        }
    }

    /// `{p}/p/{pipeline}`: a submitted pipeline's record.
    pub(crate) fn pipeline(&self, id: &str) -> String {
        format!("{}/p/{}", self.prefix, percent_encode(id))
    }

    /// `{p}/p/{pipeline}/x`: when the pipeline was cancelled.
    pub(crate) fn pipeline_cancelled(&self, id: &str) -> String {
        format!("{}/x", self.pipeline(id))
    }

    /// `{p}/p/{pipeline}/s`: when reconciliation found it settled.
    pub(crate) fn pipeline_settled(&self, id: &str) -> String {
        format!("{}/s", self.pipeline(id))
    }

    /// `{p}/p/{pipeline}/l/…`: the lock of writing the pipeline's record
    /// (`node = None`) or of creating node `node`'s task, attempt
    /// `attempt`.
    pub(crate) fn pipeline_lock(&self, id: &str, node: Option<usize>, attempt: u32) -> CounterKey {
        CounterKey(format!("{}/{attempt}", self.pipeline_lock_dir(id, node)))
    }

    /// When a contender saw that lock held.
    pub(crate) fn pipeline_lock_seen(&self, id: &str, node: Option<usize>, attempt: u32) -> String {
        format!("{}/{attempt}/seen", self.pipeline_lock_dir(id, node))
    }

    /// The newest attempt of that lock.
    pub(crate) fn pipeline_lock_next(&self, id: &str, node: Option<usize>) -> String {
        format!("{}/next", self.pipeline_lock_dir(id, node))
    }

    fn pipeline_lock_dir(&self, id: &str, node: Option<usize>) -> String {
        match node {
            None => format!("{}/l", self.pipeline(id)),
            Some(n) => format!("{}/n/{n}", self.pipeline(id)),
        }
    }

    /// `{p}/r/cursor`: how far reconciliation and retention got in the
    /// pipeline log.
    pub(crate) fn pipelines_cursor(&self) -> String {
        format!("{}/r/cursor", self.prefix)
    }

    /// `{p}/r/at`: when reconciliation last ran.
    pub(crate) fn pipelines_reconciled(&self) -> String {
        format!("{}/r/at", self.prefix)
    }

    /// `{p}/m/p/{pipeline}/n`: how many completions a pipeline's index
    /// holds, and how many of them expired.
    pub(crate) fn pipeline_meta(&self, pipeline_id: &str) -> String {
        format!("{}/m/p/{}/n", self.prefix, percent_encode(pipeline_id))
    }

    /// `{p}/m/p/{pipeline}/{chunk}`: a chunk of a pipeline's completions.
    pub(crate) fn pipeline_chunk(&self, pipeline_id: &str, chunk: u64) -> String {
        format!(
            "{}/m/p/{}/{chunk}",
            self.prefix,
            percent_encode(pipeline_id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_form_names_cannot_escape_their_segment() {
        let k = Keys::new("wq");
        assert_eq!(k.idempotency("a/b c"), "wq/k/a%2Fb%20c");
        assert_eq!(k.pipeline_meta("x/n"), "wq/m/p/x%2Fn/n");
        assert_ne!(k.pipeline_meta("a%2F"), k.pipeline_meta("a/"));
    }

    #[test]
    fn counters_and_values_never_share_a_key() {
        let k = Keys::new("wq");
        let mut counters = vec![k.ring_head(), k.redriven(), k.drains(3)];
        let mut values = vec![k.maintenance_state(), k.garbage()];
        for log in Log::ALL {
            counters.push(k.tail(log));
            values.extend((0..3).map(|n| k.entry(log, n)));
        }
        counters.extend((0..3).map(|n| k.settle(n)));
        counters.extend((0..3).map(|n| k.redrive_lock(n, 0)));
        values.extend((0..3).map(|n| k.redrive_seen(n, 0)));
        counters.push(k.lock(3, 0));
        for node in [None, Some(0), Some(1)] {
            counters.push(k.pipeline_lock("a", node, 0));
            values.push(k.pipeline_lock_seen("a", node, 0));
            values.push(k.pipeline_lock_next("a", node));
        }
        values.extend([
            k.pipeline("a"),
            k.pipeline_cancelled("a"),
            k.pipeline_settled("a"),
            k.pipelines_cursor(),
            k.pipelines_reconciled(),
        ]);
        values.push(k.lock_seen(3, 0));
        values.push(k.lock_next(3));
        values.push(k.redrive_next(3));
        for wheel in [Wheel::Seconds, Wheel::Hours] {
            values.extend((0..3).map(|c| k.timer_chunk(wheel, 7, c)));
        }
        for c in &counters {
            assert!(!values.contains(&c.0), "{} is both", c.0);
        }
        let unique: std::collections::BTreeSet<_> = values.iter().collect();
        assert_eq!(unique.len(), values.len());
    }
}
