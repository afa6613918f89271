//! Exclusive work by `increment` alone, with takeover when the holder
//! dies: used by maintenance (one run per generation) and by redrive (one
//! redrive per dead-lettering).
//!
//! A lock is a series of counters, attempt 0, 1, 2…: whoever increments
//! an attempt's counter to 1 holds the work and must issue its last write
//! within the request deadline of the clock reading taken just before that
//! increment. A contender that finds the attempt held writes down when it
//! saw that (`seen`, its clock read after its increment, so after the
//! holder's start); once `seen + takeover_after` has passed, the holder's
//! last write has landed or never will (`Timing::check`), and the next
//! contender moves on to the next attempt. A holder that fails without
//! dying releases its attempt (`seen` = [`RELEASED`]) so the next
//! contender moves on at once, and a contender that moves on leaves a hint
//! (`next`) so later ones start at the newest attempt. Holders re-read
//! what they are about to change after winning, so a takeover of work
//! already done does nothing.
//!
//! Cost: one increment for the winner; a contender also reads `seen`, and
//! writes it once when it is absent.

use super::keys::CounterKey;
use super::store::encode;
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;

/// Most attempts one contender tries in a row.
const MAX_STEPS: u32 = 4;
/// The `seen` of an attempt whose holder gave up without writing.
pub(crate) const RELEASED: u64 = 0;
/// The `seen` a holder writes with its work when that work must never be
/// taken over (a pipeline node's task, created once).
pub(crate) const DONE: u64 = u64::MAX;

/// The outcome of [`acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// This caller holds attempt `attempt`; its deadline counts from
    /// `start`.
    Won { attempt: u32, start: u64 },
    /// Someone else holds it (or may still be writing).
    Held,
}

/// Where a lock lives.
pub(crate) trait LockKeys {
    /// The counter of attempt `attempt`.
    fn counter(&self, attempt: u32) -> CounterKey;
    /// When a contender first saw attempt `attempt` held.
    fn seen(&self, attempt: u32) -> String;
    /// The newest attempt a contender moved on to.
    fn next(&self) -> String;
}

/// Try to take the lock. `note_seen`: whether a contender that finds the
/// lock held writes down when (always safe; skipping it only delays a
/// takeover, and saves a write when the holder is surely alive).
pub(crate) fn acquire<K: KeyValue>(
    q: &KvWorkQueue<K>,
    keys: &impl LockKeys,
    note_seen: bool,
) -> Result<Acquired> {
    let mut attempt = 0;
    for step in 0..MAX_STEPS {
        let start = q.now();
        if q.increment(&keys.counter(attempt), 1)? == 1 {
            return Ok(Acquired::Won { attempt, start });
        }
        let seen_key = keys.seen(attempt);
        match lenient::<K, u64>(q, &seen_key)? {
            None => {
                if note_seen {
                    let now = q.now();
                    q.kv.set(&seen_key, &encode(&now))?;
                }
                return Ok(Acquired::Held);
            }
            Some(DONE) => return Ok(Acquired::Held),
            Some(seen) if seen != RELEASED && q.now() < seen + q.timing.takeover_after_ms => {
                return Ok(Acquired::Held);
            }
            Some(_) => {} // its holder is gone
        }
        let hint: u32 = if step == 0 {
            lenient(q, &keys.next())?.unwrap_or(0)
        } else {
            0
        };
        attempt = hint.max(attempt + 1);
        q.kv.set(&keys.next(), &encode(&attempt))?;
    }
    Ok(Acquired::Held)
}

/// A value of the lock: `None` when absent or unreadable (a lock must not
/// wedge on a bad value: an absent `seen` only delays a takeover).
fn lenient<K: KeyValue, T: serde::de::DeserializeOwned>(
    q: &KvWorkQueue<K>,
    key: &str,
) -> Result<Option<T>> {
    let mut found = q.read_many::<T>(&[key.to_string()])?;
    q.report_poison(&found.poison);
    Ok(found.values.remove(key))
}

/// Give up a held attempt without having written anything: the next
/// contender takes over at once.
pub(crate) fn release<K: KeyValue>(q: &KvWorkQueue<K>, keys: &impl LockKeys, attempt: u32) {
    let _ = q.kv.set(&keys.seen(attempt), &encode(&RELEASED));
}

/// Every key of attempts `0..=last`, for deletion once the work is done.
pub(crate) fn keys_up_to(keys: &impl LockKeys, last: u32) -> Vec<String> {
    let mut out: Vec<String> = (0..=last)
        .flat_map(|a| [keys.counter(a).0, keys.seen(a)])
        .collect();
    out.push(keys.next());
    out
}
