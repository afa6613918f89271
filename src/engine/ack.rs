//! Ack: check each lease against its record, then one reservation in the
//! completion log and one `set_many` of results, records and completion
//! entries for the whole batch.
//!
//! Cost: 2 write commits per batch.

use super::keys::Log;
use super::record::{CompletionEntry, ResultRecord, State, TaskRecord};
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::Ack;
use crate::port::TaskStatus;
use serde_json::Value;
use std::collections::HashMap;

pub(crate) fn run_one<K: KeyValue>(
    q: &KvWorkQueue<K>,
    task_id: &str,
    lease_id: &str,
    output: Value,
) -> Result<TaskStatus> {
    let ack = Ack {
        id: task_id.to_string(),
        lease_id: lease_id.to_string(),
        output,
    };
    run(q, vec![ack])?.remove(0)
}

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    acks: Vec<Ack>,
) -> Result<Vec<Result<TaskStatus>>> {
    let read_at = q.now();
    let records = q.load_tasks(acks.iter().map(|a| a.id.as_str()))?;
    let results = q.load_results(records.values())?;
    let mut outcomes: Vec<Option<Result<TaskStatus>>> = Vec::with_capacity(acks.len());
    // Index into `acks` of each ack that completes its task.
    let mut completing: Vec<usize> = Vec::new();
    let mut completed_by: HashMap<String, usize> = HashMap::new();
    for (i, ack) in acks.iter().enumerate() {
        let Some(record) = records.get(&ack.id) else {
            outcomes.push(Some(Err(QueueError::NotFound { id: ack.id.clone() })));
            continue;
        };
        if let Some(&first) = completed_by.get(&ack.id) {
            // The same task twice in one batch: only its first ack counts.
            let same_lease = acks[first].lease_id == ack.lease_id;
            outcomes.push(Some(if same_lease {
                Ok(TaskStatus::Completed {
                    output: acks[first].output.clone(),
                })
            } else {
                Err(lease_lost(&ack.id))
            }));
            continue;
        }
        if let Some(result) = results.get(&ack.id) {
            // Already completed: a repeated ack by the completing lease is
            // answered with the recorded output; anyone else lost the lease.
            outcomes.push(Some(if result.lease_id == ack.lease_id {
                Ok(record.status(Some(result)))
            } else {
                Err(lease_lost(&ack.id))
            }));
            continue;
        }
        match &record.state {
            State::InProgress { lease } if lease.id == ack.lease_id => {
                completed_by.insert(ack.id.clone(), i);
                completing.push(i);
                outcomes.push(None);
            }
            _ => outcomes.push(Some(Err(lease_lost(&ack.id)))),
        }
    }
    if !completing.is_empty() {
        q.guarded(|| {
            q.still_fresh(read_at)?;
            complete(q, &acks, &completing, &records)
        })?;
        for &i in &completing {
            outcomes[i] = Some(Ok(TaskStatus::Completed {
                output: acks[i].output.clone(),
            }));
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every ack has an outcome"))
        .collect())
}

fn lease_lost(id: &str) -> QueueError {
    QueueError::LeaseLost { id: id.to_string() }
}

/// Write the results, completed records and completion entries.
fn complete<K: KeyValue>(
    q: &KvWorkQueue<K>,
    acks: &[Ack],
    completing: &[usize],
    records: &HashMap<String, TaskRecord>,
) -> Result<()> {
    let now = q.now();
    let first = q.reserve(&q.keys.tail(Log::Completions), completing.len() as u64)?;
    let mut writes = Writes::default();
    for (n, &i) in completing.iter().enumerate() {
        let ack = &acks[i];
        let seq = first + n as u64;
        let record = records.get(&ack.id).expect("checked above");
        writes.put(
            q.keys.result(&ack.id, record.gen),
            &ResultRecord {
                output: ack.output.clone(),
                seq,
                completed_at: now,
                lease_id: ack.lease_id.clone(),
            },
        );
        writes.put(
            q.keys.entry(Log::Completions, seq),
            &CompletionEntry {
                id: ack.id.clone(),
                pipeline_id: record.task.pipeline_id.clone(),
                node_name: record.task.node_name.clone(),
                gen: record.gen,
                seq,
            },
        );
        let mut done = record.clone();
        done.state = State::Completed {
            lease_id: ack.lease_id.clone(),
            seq,
        };
        done.updated_at = now;
        writes.put(q.keys.task(&ack.id), &done);
    }
    writes.commit(&q.kv)
}
