//! Enqueue: validate the batch, drop duplicates, then one reservation per
//! log used (the ring for due tasks, the delay inbox for delayed ones) and
//! one `set_many` of records, log entries and idempotency mappings.
//!
//! Cost: 2 write commits per batch (3 when it mixes due and delayed tasks),
//! whatever its size; reads only when ids or idempotency keys are given.

use super::keys::Log;
use super::record::{Place, State, TaskRecord};
use super::store::Writes;
use super::KvWorkQueue;
use crate::config::MAX_ENQUEUE_BATCH;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::{validate_task_id, Enqueued, NewTask};
use crate::port::WorkTask;
use std::collections::{HashMap, HashSet};

/// A task of the batch that will be written.
struct Fresh {
    index: usize,
    task: NewTask,
    id: String,
    key: String,
}

pub(crate) fn run<K: KeyValue>(q: &KvWorkQueue<K>, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
    if tasks.is_empty() || tasks.len() > MAX_ENQUEUE_BATCH {
        return Err(QueueError::Invalid(format!(
            "a batch holds 1..={MAX_ENQUEUE_BATCH} tasks, got {}",
            tasks.len()
        )));
    }
    for (i, t) in tasks.iter().enumerate() {
        t.validate()
            .map_err(|e| QueueError::Invalid(format!("task {i}: {}", strip(&e))))?;
    }

    // Name every task, then drop duplicates: of stored tasks first, then
    // of tasks earlier in the batch.
    let named: Vec<Fresh> = tasks
        .into_iter()
        .enumerate()
        .map(|(index, task)| {
            let id = task.id.clone().unwrap_or_else(crate::model::generate_id);
            let key = task.idempotency_key.clone().unwrap_or_else(|| id.clone());
            Fresh {
                index,
                task,
                id,
                key,
            }
        })
        .collect();
    let known = lookup(q, &named)?;
    let mut outcomes: Vec<Option<Enqueued>> = vec![None; named.len()];
    let mut fresh = Vec::new();
    let mut batch_keys: HashMap<String, String> = HashMap::new();
    let mut batch_ids: HashSet<String> = HashSet::new();
    for f in named {
        if let Some(existing) = known.get(&f.index) {
            outcomes[f.index] = Some(duplicate(existing));
        } else if let Some(existing) = batch_keys.get(&f.key) {
            outcomes[f.index] = Some(duplicate(existing));
        } else if batch_ids.contains(&f.id) {
            outcomes[f.index] = Some(duplicate(&f.id));
        } else {
            batch_keys.insert(f.key.clone(), f.id.clone());
            batch_ids.insert(f.id.clone());
            fresh.push(f);
        }
    }

    if !fresh.is_empty() {
        q.guarded(|| write(q, &fresh))?;
        for f in &fresh {
            outcomes[f.index] = Some(Enqueued {
                id: f.id.clone(),
                duplicate: false,
            });
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every task has an outcome"))
        .collect())
}

fn duplicate(id: &str) -> Enqueued {
    Enqueued {
        id: id.to_string(),
        duplicate: true,
    }
}

fn strip(e: &QueueError) -> String {
    match e {
        QueueError::Invalid(m) => m.clone(),
        other => other.to_string(),
    }
}

/// For each fresh task that may collide with a stored one, the id of the
/// stored task it duplicates.
///
/// A task is known by its record (`t/{id}`) and, when its key differs from
/// its id, by a mapping `k/{key}`; a key that is itself a valid id may name a
/// task whose key equals its id, so both places are looked at.
fn lookup<K: KeyValue>(q: &KvWorkQueue<K>, fresh: &[Fresh]) -> Result<HashMap<usize, String>> {
    let mut keys = Vec::new();
    for f in fresh {
        let generated = f.task.id.is_none() && f.task.idempotency_key.is_none();
        if generated {
            continue; // a new ULID with its own id as key cannot collide
        }
        keys.push(q.keys.task(&f.id));
        if f.key != f.id {
            keys.push(q.keys.idempotency(&f.key));
            if validate_task_id(&f.key).is_ok() {
                keys.push(q.keys.task(&f.key));
            }
        }
    }
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let found: HashMap<String, Vec<u8>> = q.kv.get_many(&keys)?.into_iter().collect();
    let record_key = |key: &str| -> Result<Option<TaskRecord>> {
        found
            .get(key)
            .map(|b| {
                serde_json::from_slice(b).map_err(|e| QueueError::Corrupt {
                    key: key.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    };
    let mut known = HashMap::new();
    for f in fresh {
        let by_mapping = found
            .get(&q.keys.idempotency(&f.key))
            .and_then(|b| serde_json::from_slice::<String>(b).ok());
        let by_key_record = record_key(&q.keys.task(&f.key))?
            .filter(|r| r.task.idempotency_key == f.key)
            .map(|r| r.task.id);
        let by_id = record_key(&q.keys.task(&f.id))?.map(|r| r.task.id);
        if let Some(existing) = by_mapping.or(by_key_record).or(by_id) {
            known.insert(f.index, existing);
        }
    }
    Ok(known)
}

/// Reserve log slots and write every record, entry and mapping at once.
fn write<K: KeyValue>(q: &KvWorkQueue<K>, fresh: &[Fresh]) -> Result<()> {
    let now = q.now();
    let (due, delayed): (Vec<&Fresh>, Vec<&Fresh>) =
        fresh.iter().partition(|f| f.task.delay_ms == 0);
    let ids = |tasks: &[&Fresh]| tasks.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
    let mut writes = Writes::default();
    let first_due = q.append(Log::Ring, &ids(&due), &mut writes)?;
    let first_delayed = q.append(Log::Delayed, &ids(&delayed), &mut writes)?;
    let due = due
        .into_iter()
        .enumerate()
        .map(|(i, f)| (f, Place::ring(first_due + i as u64)));
    let delayed = delayed
        .into_iter()
        .enumerate()
        .map(|(i, f)| (f, Place::delayed(first_delayed + i as u64)));
    for (f, at) in due.chain(delayed) {
        if f.key != f.id {
            writes.put(q.keys.idempotency(&f.key), &f.id);
        }
        let record = TaskRecord {
            task: WorkTask {
                id: f.id.clone(),
                pipeline_id: f.task.pipeline_id.clone(),
                node_name: f.task.node_name.clone(),
                input: f.task.input.clone(),
                wave: f.task.wave,
                attempt: 0,
                idempotency_key: f.key.clone(),
            },
            max_attempts: f.task.max_attempts.unwrap_or(q.config.default_max_attempts),
            state: State::Pending,
            at,
            gen: 0,
            not_before: now + f.task.delay_ms,
            created_at: now,
            updated_at: now,
            deliveries: Vec::new(),
        };
        writes.put(q.keys.task(&f.id), &record);
    }
    writes.commit(&q.kv)
}
