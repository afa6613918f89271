//! Every key the engine reads or writes is built here, under the configured
//! prefix. Counter keys (only ever `increment`ed) and value keys (only ever
//! `set`) are distinct types, so the two can never be mixed up: Spin's
//! SQLite store poisons itself on an `increment` of a value that is not a
//! counter.

use crate::encode::percent_encode;

/// A key only ever written with `increment` and read with
/// [`read_counter`](crate::kv::read_counter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CounterKey(pub(crate) String);

/// The append logs of the store. Each is a counter `{log}/tail` plus
/// entries `{log}/{n}`; some also have a consumer cursor `{log}/head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Log {
    /// The pending ring: ids of due tasks, consumed by dequeuers (`head`).
    Ring,
    /// Ring slots dequeuers took while still empty, for maintenance to settle.
    Orphans,
    /// Tasks enqueued with a delay, consumed by maintenance.
    Delayed,
    /// Failed tasks waiting for their retry, consumed by maintenance.
    Retries,
    /// Completions in completion order, indexed by maintenance.
    Completions,
    /// Dead-lettered tasks, newest last.
    DeadLetters,
}

impl Log {
    fn dir(self) -> &'static str {
        match self {
            Log::Ring => "q",
            Log::Orphans => "o",
            Log::Delayed => "d",
            Log::Retries => "f",
            Log::Completions => "c",
            Log::DeadLetters => "x",
        }
    }
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

    /// `{p}/k/{key}`: idempotency key → task id (only when key ≠ id).
    pub(crate) fn idempotency(&self, key: &str) -> String {
        format!("{}/k/{}", self.prefix, percent_encode(key))
    }

    /// `{p}/r/{id}/{gen}`: the result of generation `gen` of a task.
    pub(crate) fn result(&self, id: &str, gen: u32) -> String {
        format!("{}/r/{id}/{gen}", self.prefix)
    }

    /// `{p}/{log}/tail`: number of entries ever appended to `log`.
    pub(crate) fn tail(&self, log: Log) -> CounterKey {
        CounterKey(format!("{}/{}/tail", self.prefix, log.dir()))
    }

    /// `{p}/{log}/head`: consumer cursor of `log`.
    pub(crate) fn head(&self, log: Log) -> CounterKey {
        CounterKey(format!("{}/{}/head", self.prefix, log.dir()))
    }

    /// `{p}/{log}/{n}`: the n-th entry of `log`.
    pub(crate) fn entry(&self, log: Log, n: u64) -> String {
        format!("{}/{}/{n}", self.prefix, log.dir())
    }

    /// `{p}/x/redriven`: dead-lettered tasks put back in the queue.
    pub(crate) fn redriven(&self) -> CounterKey {
        CounterKey(format!("{}/x/redriven", self.prefix))
    }

    /// `{p}/m/state`: maintenance cursors, marks and timer directory.
    pub(crate) fn maintenance_state(&self) -> String {
        format!("{}/m/state", self.prefix)
    }

    /// `{p}/m/lock/{generation}/{slot}`: who runs maintenance after run
    /// `generation`, during time slot `slot`.
    pub(crate) fn maintenance_lock(&self, generation: u64, slot: u64) -> CounterKey {
        CounterKey(format!("{}/m/lock/{generation}/{slot}", self.prefix))
    }

    /// `{p}/m/t/{second}/{chunk}`: timers due in that second.
    pub(crate) fn timer_chunk(&self, second: u64, chunk: u32) -> String {
        format!("{}/m/t/{second}/{chunk}", self.prefix)
    }

    /// `{p}/m/ix/{id}/{gen}`: the completion entry indexed for a task's
    /// generation (so a redone ack is never indexed twice).
    pub(crate) fn indexed(&self, id: &str, gen: u32) -> String {
        format!("{}/m/ix/{id}/{gen}", self.prefix)
    }

    /// `{p}/m/p/{pipeline}/n`: completions indexed for a pipeline.
    pub(crate) fn pipeline_len(&self, pipeline_id: &str) -> String {
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
        assert_eq!(k.pipeline_len("x/n"), "wq/m/p/x%2Fn/n");
        assert_ne!(k.pipeline_len("a%2F"), k.pipeline_len("a/"));
    }

    #[test]
    fn counters_and_entries_never_share_a_key() {
        let k = Keys::new("wq");
        for log in [
            Log::Ring,
            Log::Orphans,
            Log::Delayed,
            Log::Retries,
            Log::Completions,
            Log::DeadLetters,
        ] {
            let entries: Vec<String> = (0..3).map(|n| k.entry(log, n)).collect();
            assert!(!entries.contains(&k.tail(log).0));
            assert!(!entries.contains(&k.head(log).0));
        }
        assert_ne!(k.redriven().0, k.entry(Log::DeadLetters, 0));
    }
}
