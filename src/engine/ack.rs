//! Ack: check each lease against its record, then one reservation in the
//! completion log and one `set_many` of the completed records (output
//! included) and their completion entries for the whole batch.
//!
//! Cost: 2 write commits per batch.
//!
//! A holder may ack until its lease's expiry (the latest heartbeat's)
//! plus [`late_finish_ms`](crate::config::Timing::late_finish_ms); after
//! that maintenance may rescue the task, so the ack is `LeaseLost`.

use super::keys::Log;
use super::record::{CompletionEntry, State, TaskRecord};
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::{validate_ack_batch, validate_output, Ack};
use crate::port::TaskStatus;
use std::collections::BTreeMap;

pub(crate) fn run_one<K: KeyValue>(q: &KvWorkQueue<K>, ack: Ack) -> Result<TaskStatus> {
    run(q, vec![ack])?.remove(0)
}

/// An ack that completes its task, once its lease is checked.
struct Completing {
    index: usize,
    expiry: u64,
}

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    acks: Vec<Ack>,
) -> Result<Vec<Result<TaskStatus>>> {
    validate_ack_batch(&acks)?;
    let loaded = q.load_tasks(acks.iter().map(|a| a.id.as_str()))?;
    let late = q.timing.late_finish_ms;
    let now = q.now();
    let mut outcomes: Vec<Option<Result<TaskStatus>>> = Vec::with_capacity(acks.len());
    let mut completing: Vec<Completing> = Vec::new();
    let mut completed_by: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, ack) in acks.iter().enumerate() {
        if let Err(e) = validate_output(&ack.output) {
            outcomes.push(Some(Err(e)));
            continue;
        }
        let Some(record) = loaded.records.get(&ack.id) else {
            let corrupt = loaded
                .poison
                .iter()
                .find(|(k, _)| *k == q.keys.task(&ack.id));
            outcomes.push(Some(Err(match corrupt {
                Some((key, reason)) => QueueError::Corrupt {
                    key: key.clone(),
                    reason: reason.clone(),
                },
                None => QueueError::NotFound { id: ack.id.clone() },
            })));
            continue;
        };
        if let Some(&first) = completed_by.get(ack.id.as_str()) {
            // Completed earlier in this batch: as if the acks ran in turn.
            outcomes.push(Some(if acks[first].lease_id == ack.lease_id {
                Ok(TaskStatus::Completed {
                    output: acks[first].output.clone(),
                })
            } else {
                Err(lease_lost(&ack.id))
            }));
            continue;
        }
        let outcome = match &record.state {
            // A repeated ack by the completing lease gets the recorded output.
            State::Completed { lease_id, .. } if *lease_id == ack.lease_id => Ok(record.status()),
            State::InProgress { .. } => match record.lease(loaded.heartbeats.get(&ack.id)) {
                Some((lease, expiry)) if lease.id == ack.lease_id && now < expiry + late => {
                    completed_by.insert(&ack.id, i);
                    completing.push(Completing { index: i, expiry });
                    outcomes.push(None);
                    continue;
                }
                _ => Err(lease_lost(&ack.id)),
            },
            _ => Err(lease_lost(&ack.id)),
        };
        outcomes.push(Some(outcome));
    }
    if !completing.is_empty() {
        complete(q, &acks, &mut completing, &loaded.records, &mut outcomes)?;
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every ack has an outcome"))
        .collect())
}

fn lease_lost(id: &str) -> QueueError {
    QueueError::LeaseLost { id: id.to_string() }
}

/// Reserve completion entries and write the completed records.
fn complete<K: KeyValue>(
    q: &KvWorkQueue<K>,
    acks: &[Ack],
    completing: &mut Vec<Completing>,
    records: &BTreeMap<String, TaskRecord>,
    outcomes: &mut [Option<Result<TaskStatus>>],
) -> Result<()> {
    let start = q.now();
    let deadline = q.deadline_from(start);
    let first = q.reserve(Log::Completions, completing.len() as u64)?;
    // Leases that ran out while the entries were reserved lose; their
    // entries stay empty (holes the index skips).
    let now = q.now();
    let late = q.timing.late_finish_ms;
    let mut writes = Writes::default();
    for (n, c) in completing.iter().enumerate() {
        let ack = &acks[c.index];
        if now >= c.expiry + late {
            outcomes[c.index] = Some(Err(lease_lost(&ack.id)));
            continue;
        }
        let seq = first + n as u64;
        let record = &records[&ack.id];
        writes.put(
            q.keys.entry(Log::Completions, seq),
            &CompletionEntry {
                id: ack.id.clone(),
                pipeline_id: record.task.pipeline_id.clone(),
                node_name: record.task.node_name.clone(),
                seq,
                completed_at: now,
            },
        );
        let mut done = record.clone();
        done.state = State::Completed {
            output: ack.output.clone(),
            lease_id: ack.lease_id.clone(),
            seq,
            completed_at: now,
        };
        done.updated_at = now;
        writes.put(q.keys.task(&ack.id), &done);
    }
    completing.retain(|c| outcomes[c.index].is_none());
    let min_expiry = completing.iter().map(|c| c.expiry).min();
    q.commit_checked("ack", writes, |now| {
        q.within(deadline, now, "ack")?;
        match min_expiry {
            Some(e) if now >= e + late => Err(QueueError::TooSlow(
                "a lease ran out while the ack was written; nothing was written".into(),
            )),
            _ => Ok(()),
        }
    })?;
    for c in completing.iter() {
        outcomes[c.index] = Some(Ok(TaskStatus::Completed {
            output: acks[c.index].output.clone(),
        }));
    }
    Ok(())
}
