//! Enqueue: validate the batch, drop duplicates, then one reservation per
//! log used (the ring for due tasks, the delay inbox for delayed ones) and
//! one `set_many` of records, log entries and idempotency mappings.
//!
//! Cost: 2 write commits per batch (3 when it mixes due and delayed tasks),
//! whatever its size; reads only when ids or idempotency keys are given,
//! plus the ring's counters. A slot a dequeuer took while it was being
//! written costs one settle increment (see `ring.rs`).

use super::keys::Log;
use super::record::{Place, State, TaskRecord, UNPLACED};
use super::ring;
use super::store::{Deadline, Writes};
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::{validate_batch, validate_task_id, Enqueued, NewTask};
use crate::port::WorkTask;
use std::collections::{BTreeMap, BTreeSet};

/// A task of the batch with its id and idempotency key settled.
struct Named {
    index: usize,
    task: NewTask,
    id: String,
    key: String,
}

/// Each task with its id (generated when absent) and idempotency key
/// (the id when absent).
fn name<K: KeyValue>(q: &KvWorkQueue<K>, tasks: Vec<NewTask>) -> Vec<Named> {
    tasks
        .into_iter()
        .enumerate()
        .map(|(index, task)| {
            let id = task.id.clone().unwrap_or_else(|| q.ids.next_id());
            let key = task.idempotency_key.clone().unwrap_or_else(|| id.clone());
            Named {
                index,
                task,
                id,
                key,
            }
        })
        .collect()
}

pub(crate) fn run<K: KeyValue>(q: &KvWorkQueue<K>, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
    validate_batch(&tasks)?;
    let named = name(q, tasks);

    // Drop duplicates: of stored tasks first, then of tasks earlier in
    // the batch (by key, and by id).
    let known = lookup(q, &named)?;
    let mut outcomes: Vec<Option<Enqueued>> = vec![None; named.len()];
    let mut fresh = Vec::new();
    let mut batch_keys: BTreeMap<String, String> = BTreeMap::new();
    let mut batch_ids: BTreeSet<String> = BTreeSet::new();
    for n in named {
        let existing = known
            .get(&n.index)
            .or_else(|| batch_keys.get(&n.key))
            .or_else(|| batch_ids.get(&n.id))
            .cloned();
        match existing {
            Some(id) => outcomes[n.index] = Some(duplicate(id)),
            None => {
                batch_keys.insert(n.key.clone(), n.id.clone());
                batch_ids.insert(n.id.clone());
                fresh.push(n);
            }
        }
    }
    if !fresh.is_empty() {
        let deadline = q.deadline_from(q.now());
        write(q, &fresh, Writes::default(), deadline)?;
    }
    for n in fresh {
        outcomes[n.index] = Some(Enqueued {
            id: n.id,
            duplicate: false,
        });
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every task has an outcome"))
        .collect())
}

fn duplicate(id: String) -> Enqueued {
    Enqueued {
        id,
        duplicate: true,
    }
}

/// For each task that may collide with a stored one, the id of the stored
/// task it duplicates.
///
/// A task is known by its record (`t/{id}`) and, when its key differs from
/// its id, by a mapping `k/{key}`; a key that is itself a valid id may name
/// a task whose key equals its id. A task collides when its id is taken,
/// or its key is any stored task's key.
fn lookup<K: KeyValue>(q: &KvWorkQueue<K>, named: &[Named]) -> Result<BTreeMap<usize, String>> {
    let mut keys = BTreeSet::new();
    for n in named {
        if n.task.id.is_none() && n.task.idempotency_key.is_none() {
            continue; // a new id with its own id as key cannot collide
        }
        keys.insert(q.keys.task(&n.id));
        keys.insert(q.keys.idempotency(&n.key));
        if validate_task_id(&n.key).is_ok() {
            keys.insert(q.keys.task(&n.key));
        }
    }
    let keys: Vec<String> = keys.into_iter().collect();
    let found = q.read_many::<serde_json::Value>(&keys)?;
    let record = |key: &str| -> Option<TaskRecord> {
        found
            .values
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    };
    let mut known = BTreeMap::new();
    for n in named {
        let by_mapping = found
            .values
            .get(&q.keys.idempotency(&n.key))
            .and_then(|v| v.as_str().map(str::to_string));
        // A task whose id is the key owns it when that is its key; one
        // that cannot be read is assumed to (nothing runs twice).
        let key_record = q.keys.task(&n.key);
        let by_key_record = record(&key_record)
            .filter(|r| r.task.idempotency_key == n.key)
            .map(|r| r.task.id)
            .or_else(|| {
                found
                    .poison
                    .iter()
                    .any(|(k, _)| *k == key_record)
                    .then(|| n.key.clone())
            });
        // A stored record at this id, readable or not, takes the id.
        let id_key = q.keys.task(&n.id);
        let by_id = (found.values.contains_key(&id_key)
            || found.poison.iter().any(|(k, _)| *k == id_key))
        .then(|| n.id.clone());
        if let Some(existing) = by_mapping.or(by_key_record).or(by_id) {
            known.insert(n.index, existing);
        }
    }
    Ok(known)
}

/// Enqueue tasks the queue built itself (pipeline nodes, with ids that no
/// stored task has), skipping the batch rules their parts were checked
/// against on the way in, with `extra` writes in the same commit, before
/// `deadline`.
pub(crate) fn insert<K: KeyValue>(
    q: &KvWorkQueue<K>,
    tasks: Vec<NewTask>,
    extra: Writes,
    deadline: Deadline,
) -> Result<()> {
    write(q, &name(q, tasks), extra, deadline)
}

/// Write every record, entry and mapping: due tasks through the ring,
/// delayed ones into the delay inbox, in the same `set_many`.
fn write<K: KeyValue>(
    q: &KvWorkQueue<K>,
    fresh: &[Named],
    mut writes: Writes,
    deadline: Deadline,
) -> Result<()> {
    let start = q.now();
    let record = |n: &Named, at: Place| TaskRecord {
        task: WorkTask {
            id: n.id.clone(),
            pipeline_id: n.task.pipeline_id.clone(),
            node_name: n.task.node_name.clone(),
            input: n.task.input.clone(),
            wave: n.task.wave,
            attempt: 0,
            idempotency_key: n.key.clone(),
        },
        max_attempts: n.task.max_attempts.unwrap_or(q.config.default_max_attempts),
        state: State::Pending,
        at,
        not_before: start + n.task.delay_ms,
        created_at: start,
        updated_at: start,
        deliveries: Vec::new(),
        executor: n.task.executor.clone(),
    };
    for n in fresh.iter().filter(|n| n.key != n.id) {
        writes.put(q.keys.idempotency(&n.key), &n.id);
    }
    let delayed: Vec<&Named> = fresh.iter().filter(|n| n.task.delay_ms > 0).collect();
    if !delayed.is_empty() {
        let first = q.reserve(Log::Delayed, delayed.len() as u64)?;
        for (i, n) in delayed.iter().enumerate() {
            let slot = first + i as u64;
            writes.put(q.keys.entry(Log::Delayed, slot), &n.id);
            writes.put(q.keys.task(&n.id), &record(n, Place::delayed(slot)));
        }
    }
    let due: Vec<TaskRecord> = fresh
        .iter()
        .filter(|n| n.task.delay_ms == 0)
        .map(|n| record(n, Place::ring(UNPLACED)))
        .collect();
    ring::publish(q, "enqueue", due, writes, deadline, |_| Ok(()))
}
