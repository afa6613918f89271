//! The ring of due tasks: how tasks are published into it and taken from
//! it, with only `increment` to arbitrate.
//!
//! Writers reserve slots with `increment(q/tail, n)` and write them in
//! one `set_many`; dequeuers take a range of slots with
//! `increment(q/head, n)`. Each slot is taken once, but a taker may find
//! its slot still empty — its writer is in flight, dead, or has not even
//! reserved it (two dequeuers that read the same head both took slots,
//! the second one past the tail). Three rules keep every task deliverable
//! and the ring unstalled:
//!
//! 1. **Never stop at a hole.** A dequeuer takes up to the last task it
//!    saw (its `max`-th at most), holes and padding before it included; a
//!    hole reserved before the graced mark is known dead and skipped.
//! 2. **Settle each live hole once, by `increment(q/{n}/x)`.** A taker that
//!    finds slot `n` empty and a writer that finds `n` taken after writing
//!    it both increment the slot's settle counter. Whoever gets 1 moved
//!    first: a taker that got 1 gave the slot up, so the writer (getting 2)
//!    publishes its task again; a writer that got 1 wrote before the taker
//!    looked again, so the taker (getting 2) reads the slot and delivers it.
//! 3. **Pad, never leave the head past the tail.** A dequeuer that took
//!    slots nobody had reserved reserves them itself and writes padding
//!    (`null`) there; a writer that finds the head past the tail reserves
//!    the gap too. No task is ever written into a slot already given away.
//!
//! Cost: nothing on the common path beyond the one reservation and the
//! one `set_many` each side already pays; increments of settle counters
//! only for slots that were taken while empty.

use super::keys::Log;
use super::record::{Place, RingEntry, TaskRecord};
use super::store::{Deadline, Decoded, Writes};
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use std::collections::BTreeMap;

/// Peeks a take may redo when the head moved meanwhile.
const PLAN_ROUNDS: usize = 3;

/// How long a taker waits (in turn) for the writers of empty slots it took
/// before giving those slots up; no wait where the clock cannot sleep.
const HOLE_PAUSES_MS: [u64; 4] = [0, 5, 20, 50];

/// Slots a dequeuer looks further when the next `want` hold no task.
const LOOKAHEAD: u64 = 1_000;

/// How many times a writer publishes tasks whose slots were given up by
/// their takers before leaving them to maintenance.
const PUBLISH_ROUNDS: usize = 3;

/// Reserve ring slots for `n` tasks, padding over slots dequeuers took
/// beyond the tail. Returns the `n` slots; the padding is added to
/// `writes`.
fn reserve<K: KeyValue>(q: &KvWorkQueue<K>, n: u64, writes: &mut Writes) -> Result<Vec<u64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let c = q.read_counters(&[&q.keys.ring_head(), &q.keys.tail(Log::Ring)])?;
    let gap = c[0].saturating_sub(c[1]);
    let first = q.reserve(Log::Ring, gap + n)?;
    for s in first..first + gap {
        writes.put(q.keys.entry(Log::Ring, s), &RingEntry::None);
    }
    Ok((first + gap..first + gap + n).collect())
}

/// Put `records` in the ring: each gets a fresh slot (its `at`), its
/// entry and its record written in one `set_many` with `extra`, under
/// `deadline` and `check`. Tasks whose slot a dequeuer took while it was
/// still empty and gave up are published again (rule 2), a few times, then
/// handed to maintenance through the delay inbox.
pub(crate) fn publish<K: KeyValue>(
    q: &KvWorkQueue<K>,
    op: &'static str,
    mut records: Vec<TaskRecord>,
    extra: Writes,
    deadline: Deadline,
    check: impl Fn(u64) -> Result<()>,
) -> Result<()> {
    let mut writes = extra;
    for _ in 0..PUBLISH_ROUNDS {
        let slots = reserve(q, records.len() as u64, &mut writes)?;
        for (r, &slot) in records.iter_mut().zip(&slots) {
            r.at = Place::ring(slot);
            writes.put(q.keys.entry(Log::Ring, slot), &Some(r.task.id.clone()));
            writes.put(q.keys.task(&r.task.id), &*r);
        }
        q.commit_checked(op, std::mem::take(&mut writes), |now| {
            q.within(deadline, now, op)?;
            check(now)
        })?;
        let given_up = settle_written(q, &slots)?;
        records = records
            .into_iter()
            .zip(slots)
            .filter(|(_, s)| given_up.contains(s))
            .map(|(r, _)| r)
            .collect();
        if records.is_empty() {
            return Ok(());
        }
    }
    // Given up in every round (a burst of takers racing past the tail):
    // the delay inbox, which only maintenance reads, takes them due now,
    // and the next maintenance run puts them back in the ring.
    let first = q.reserve(Log::Delayed, records.len() as u64)?;
    let mut writes = Writes::default();
    for (i, r) in records.iter_mut().enumerate() {
        let n = first + i as u64;
        r.at = Place::delayed(n);
        writes.put(q.keys.entry(Log::Delayed, n), &r.task.id);
        writes.put(q.keys.task(&r.task.id), &*r);
    }
    q.commit_checked(op, writes, |now| {
        q.within(deadline, now, op)?;
        check(now)
    })
}

/// After writing `slots`: the slots a dequeuer took and gave up before
/// the write (rule 2, the writer's side).
fn settle_written<K: KeyValue>(q: &KvWorkQueue<K>, slots: &[u64]) -> Result<Vec<u64>> {
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    let head = q.read_counter(&q.keys.ring_head())?;
    let mut given_up = Vec::new();
    for &s in slots.iter().filter(|&&s| s < head) {
        if q.increment(&q.keys.settle(s), 1)? >= 2 {
            given_up.push(s);
        }
    }
    Ok(given_up)
}

/// Reserve the slots dequeuers took beyond the tail, writing padding
/// there (rule 3) with `writes`: maintenance's repair when nobody enqueues
/// after a burst.
pub(crate) fn pad<K: KeyValue>(q: &KvWorkQueue<K>, writes: &mut Writes) -> Result<()> {
    reserve(q, 0, writes).map(drop)
}

/// How much [`take`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Up to the last written (or dead) slot of the window: a dequeuer.
    LastWritten,
    /// Only the dead holes at the head: maintenance unblocking a head that
    /// no dequeuer moved for an abandonment period.
    LeadingDead,
}

/// Slots taken by one [`take`].
#[derive(Debug, Default)]
pub(crate) struct Taken {
    /// When the take began (before the head moved): the taker's deadline
    /// counts from here.
    pub start: u64,
    /// The taken slots that hold a task id, in slot order.
    pub tasks: Vec<(u64, String)>,
    /// Entries that could not be decoded: `(key, reason)`.
    pub poison: Vec<(String, String)>,
}

/// Take up to `want` slots from the head as far as `reach` says (rules 1
/// to 3, the taker's side);
/// `None` when nothing worth taking is there. Slots below `dead_tail`
/// (the ring tail of the graced mark) that are still empty are dead.
pub(crate) fn take<K: KeyValue>(
    q: &KvWorkQueue<K>,
    want: u64,
    reach: Reach,
    dead_tail: u64,
) -> Result<Option<Taken>> {
    // Plan from a peek, then take only if the head has not moved since:
    // takers that read the same head would otherwise run past the tail.
    let mut planned = None;
    for _ in 0..PLAN_ROUNDS {
        let Some(plan) = plan(q, want, reach, dead_tail)? else {
            return Ok(None);
        };
        let fresh = q.read_counter(&q.keys.ring_head())? == plan.head;
        planned = Some(plan);
        if fresh {
            break;
        }
    }
    let Some(Plan { n, peeked, .. }) = planned else {
        return Ok(None);
    };
    let start = q.now();
    let end = q.increment(&q.keys.ring_head(), n)?;
    let slots: Vec<u64> = (end - n..end).collect();

    // What the taken slots hold: what was peeked where it was written
    // (entries never change once written), a fresh read for the rest.
    let mut entries: BTreeMap<u64, RingEntry> = BTreeMap::new();
    let mut poison = Vec::new();
    let mut unknown = Vec::new();
    for &s in &slots {
        let key = q.keys.entry(Log::Ring, s);
        match peeked.values.get(&key) {
            Some(e) => {
                entries.insert(s, e.clone());
            }
            None => unknown.push(s),
        }
    }
    if !unknown.is_empty() {
        let keys: Vec<String> = unknown
            .iter()
            .map(|&s| q.keys.entry(Log::Ring, s))
            .collect();
        let fresh = q.read_many::<RingEntry>(&keys)?;
        for (&s, key) in unknown.iter().zip(&keys) {
            if let Some(e) = fresh.values.get(key) {
                entries.insert(s, e.clone());
            }
        }
        poison.extend(fresh.poison);
    }
    let empty: Vec<u64> = slots
        .iter()
        .copied()
        .filter(|s| !entries.contains_key(s))
        .filter(|&s| !poison.iter().any(|(k, _)| *k == q.keys.entry(Log::Ring, s)))
        .collect();
    let mut holes = holes_to_settle(q, &empty, dead_tail)?;
    // Writers in flight usually land within milliseconds: look again a few
    // times (sleeping on the clock where it can) before giving a slot up.
    for pause in HOLE_PAUSES_MS {
        if holes.is_empty() || (pause > 0 && !q.clock.sleep_ms(pause)) {
            break;
        }
        let keys: Vec<String> = holes.iter().map(|&s| q.keys.entry(Log::Ring, s)).collect();
        let landed = q.read_many::<RingEntry>(&keys)?;
        poison.extend(landed.poison);
        holes.retain(|s| match landed.values.get(&q.keys.entry(Log::Ring, *s)) {
            Some(e) => {
                entries.insert(*s, e.clone());
                false
            }
            None => true,
        });
    }
    for s in holes {
        if q.increment(&q.keys.settle(s), 1)? >= 2 {
            // Its writer wrote before we gave up: the slot is ours to deliver.
            if let Some(e) = q.get_json::<RingEntry>(&q.keys.entry(Log::Ring, s))? {
                entries.insert(s, e);
            }
        }
    }
    let tasks = entries
        .into_iter()
        .filter_map(|(s, e)| e.map(|id| (s, id)))
        .collect();
    Ok(Some(Taken {
        start,
        tasks,
        poison,
    }))
}

/// What a take means to take: `n` slots from `head`, as peeked.
struct Plan {
    head: u64,
    n: u64,
    peeked: Decoded<RingEntry>,
}

/// Read the head, the tail and the slots after the head; how many slots
/// a take should take (`None`: nothing worth taking).
fn plan<K: KeyValue>(
    q: &KvWorkQueue<K>,
    want: u64,
    reach: Reach,
    dead_tail: u64,
) -> Result<Option<Plan>> {
    let c = q.read_counters(&[&q.keys.ring_head(), &q.keys.tail(Log::Ring)])?;
    let (head, tail) = (c[0], c[1]);
    if head >= tail || want == 0 {
        return Ok(None);
    }
    // Look `want` slots ahead, further when those hold no task (padding
    // and dead holes are taken in passing, in the same increment).
    let mut window: Vec<u64> = (head..tail.min(head + want)).collect();
    let mut keys: Vec<String> = window.iter().map(|&s| q.keys.entry(Log::Ring, s)).collect();
    let mut peeked = q.read_many::<RingEntry>(&keys)?;
    let holds_task = |p: &Decoded<RingEntry>| p.values.values().any(Option::is_some);
    if reach == Reach::LastWritten && !holds_task(&peeked) && tail > head + want {
        let more: Vec<u64> = (head + want..tail.min(head + want + LOOKAHEAD)).collect();
        let more_keys: Vec<String> = more.iter().map(|&s| q.keys.entry(Log::Ring, s)).collect();
        let extra = q.read_many::<RingEntry>(&more_keys)?;
        peeked.values.extend(extra.values);
        peeked.poison.extend(extra.poison);
        window.extend(more);
        keys.extend(more_keys);
    }
    let poisoned: Vec<&String> = peeked.poison.iter().map(|(k, _)| k).collect();
    let written = |i: usize| peeked.values.contains_key(&keys[i]) || poisoned.contains(&&keys[i]);
    let n = match reach {
        Reach::LastWritten => {
            // Through the `want`-th task (padding and holes before it taken
            // in passing); nothing when the window holds no task, so that
            // takers never chase each other's padding.
            let mut tasks = 0;
            let mut last = None;
            for (i, key) in keys.iter().enumerate() {
                let task =
                    matches!(peeked.values.get(key), Some(Some(_))) || poisoned.contains(&key);
                if task {
                    tasks += 1;
                    last = Some(i);
                }
                if tasks == want {
                    break;
                }
            }
            match last {
                Some(last) => last as u64 + 1,
                None => return Ok(None), // only padding and holes
            }
        }
        Reach::LeadingDead => (0..window.len())
            .take_while(|&i| !written(i) && window[i] < dead_tail)
            .count() as u64,
    };
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(Plan { head, n, peeked }))
}

/// Of the taken slots found empty, those whose writer may still write
/// them: slots nobody had reserved are padded (rule 3) and dead ones
/// skipped.
fn holes_to_settle<K: KeyValue>(
    q: &KvWorkQueue<K>,
    empty: &[u64],
    dead_tail: u64,
) -> Result<Vec<u64>> {
    if empty.is_empty() {
        return Ok(Vec::new());
    }
    let tail = q.read_counter(&q.keys.tail(Log::Ring))?;
    let mut padded = 0..0;
    // As many slots as this take got beyond the tail: concurrent takers
    // pad for each other, and the tail catches up with the head without
    // running ahead of it.
    // The padding is written at once: other takers that reach it find it
    // written, not a hole to wait for and settle.
    let beyond = empty.iter().filter(|&&s| s >= tail).count() as u64;
    if beyond > 0 {
        let d = beyond;
        let v = q.increment(&q.keys.tail(Log::Ring), d)?;
        padded = v - d..v;
        let mut padding = Writes::default();
        for s in padded.clone() {
            padding.put(q.keys.entry(Log::Ring, s), &RingEntry::None);
        }
        q.commit_checked("padding", padding, |_| Ok(()))?;
    }
    Ok(empty
        .iter()
        .copied()
        .filter(|s| !padded.contains(s) && *s >= dead_tail)
        .collect())
}
