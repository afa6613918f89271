//! The drain gate (see [`crate::dispatch`]) on the store: the drains of
//! each epoch — the grace period `G`, so a drain that dies without
//! releasing its place holds it at most until its epoch ends — are one
//! counter, `w/{epoch}`.
//!
//! - **admit**: `increment(w/e, 1)`; a result above `max` is undone
//!   (`increment(w/e, -1)`) and the drain not admitted.
//! - **renew** (between a drain's batches): nothing within its epoch; in a
//!   new one, an admission there.
//! - **release**: `increment(w/e, -1)` when the ticket's epoch is the
//!   current one (an older epoch no longer counts).
//!
//! - **recovery**: a drain the store answered too slowly (it wrote nothing,
//!   so maintenance re-queues the slots it took and rescues the leases it
//!   held, by time `at`) counts it in `w/{epoch(at)}/r`; a drain ending
//!   reads the counters from now to its horizon and waits, or hands over,
//!   until the last of those epochs has passed.
//!
//! Around an epoch boundary, drains admitted before it run on until their
//! next batch while new ones are admitted after it: at most `2 × max` in
//! flight for the length of one batch. Maintenance deletes the counters of
//! epochs before the previous one.

use super::keys::Log;
use super::record::RingEntry;
use super::KvWorkQueue;
use crate::dispatch::Ticket;
use crate::error::Result;
use crate::kv::KeyValue;

/// Ring slots a [`work_due`] check peeks after the head.
const PEEK: u64 = 100;

/// The gate's epoch at time `now`.
pub(crate) fn epoch<K: KeyValue>(q: &KvWorkQueue<K>, now: u64) -> u64 {
    now / q.timing.grace_ms
}

pub(crate) fn in_flight<K: KeyValue>(q: &KvWorkQueue<K>) -> Result<u32> {
    let e = epoch(q, q.now());
    Ok(u32::try_from(q.read_counter(&q.keys.drains(e))?).unwrap_or(u32::MAX))
}

/// A place in the current epoch, if fewer than `max` are taken.
pub(crate) fn admit<K: KeyValue>(q: &KvWorkQueue<K>, max: u32) -> Result<Option<Ticket>> {
    let e = epoch(q, q.now());
    let key = q.keys.drains(e);
    let n = q.kv.increment(&key.0, 1)?;
    if n <= i64::from(max) {
        return Ok(Some(Ticket { epoch: e }));
    }
    q.kv.increment(&key.0, -1)?;
    Ok(None)
}

pub(crate) fn renew<K: KeyValue>(
    q: &KvWorkQueue<K>,
    ticket: Ticket,
    max: u32,
) -> Result<Option<Ticket>> {
    if epoch(q, q.now()) <= ticket.epoch {
        return Ok(Some(ticket));
    }
    admit(q, max)
}

pub(crate) fn release<K: KeyValue>(q: &KvWorkQueue<K>, ticket: Ticket) -> Result<()> {
    if epoch(q, q.now()) == ticket.epoch {
        q.kv.increment(&q.keys.drains(ticket.epoch).0, -1)?;
    }
    Ok(())
}

pub(crate) fn expect_recovery<K: KeyValue>(q: &KvWorkQueue<K>, at: u64) -> Result<()> {
    q.kv.increment(&q.keys.recovery(epoch(q, at)).0, 1)?;
    Ok(())
}

/// The end of the last epoch within `within_ms` from now in which a
/// recovery is expected.
pub(crate) fn recovery_pending<K: KeyValue>(
    q: &KvWorkQueue<K>,
    within_ms: u64,
) -> Result<Option<u64>> {
    let now = q.now();
    let (first, last) = (epoch(q, now), epoch(q, now.saturating_add(within_ms)));
    let keys: Vec<_> = (first..=last).map(|e| q.keys.recovery(e)).collect();
    let counts = q.read_counters(&keys.iter().collect::<Vec<_>>())?;
    let latest = (first..=last).zip(counts).filter(|(_, n)| *n > 0).last();
    Ok(latest.map(|(e, _)| (e + 1) * q.timing.grace_ms))
}

/// Whether a task waits in the slots after the ring's head (as a dequeue
/// would find it: padding and holes are not work), or in a slot taken
/// before it whose taker never leased it (maintenance re-queues it once
/// the slot is abandoned).
pub(crate) fn work_due<K: KeyValue>(q: &KvWorkQueue<K>) -> Result<bool> {
    let c = q.read_counters(&[&q.keys.ring_head(), &q.keys.tail(Log::Ring)])?;
    let (head, tail) = (c[0], c[1]);
    if head < tail {
        let (_, found) = q.read_entries::<RingEntry>(Log::Ring, head..tail.min(head + PEEK))?;
        if found.values.values().any(Option::is_some) || !found.poison.is_empty() {
            return Ok(true);
        }
    }
    let walk = super::maintenance::state(q)?.cursors.walk;
    Ok(super::stats::unwalked(q, walk, head.min(tail))?.1 > 0)
}
