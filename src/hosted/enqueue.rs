//! Enqueue: one look at the keys (ids and idempotency keys known, keys
//! used), then one `set_many` of the new records and of the idempotency
//! keys that differ from their id.

use super::record::{next_seq, Record};
use super::HostedWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::StoreKv;
use crate::model::{generate_id, validate_batch, Enqueued, NewTask};
use crate::port::{TaskStatus, WorkTask};
use std::collections::BTreeMap;

impl<S: StoreKv> HostedWorkQueue<S> {
    pub(crate) fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        validate_batch(&tasks)?;
        let view = self.view(false, false)?;
        let now = view.read_at;
        // Keys of the batch itself: key → id.
        let mut batch: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::with_capacity(tasks.len());
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        let known_id = |id: &str| view.open_ids.contains(id) || view.done_ids.contains(id);
        for t in tasks {
            let id = t.id.clone().unwrap_or_else(generate_id);
            let key = t.idempotency_key.clone().unwrap_or_else(|| id.clone());
            // An id or key already known — as an id, or as someone's key.
            let existing = [&id, &key].into_iter().find_map(|name| {
                if let Some(other) = batch.get(name.as_str()) {
                    return Some(Ok(other.clone()));
                }
                if known_id(name) {
                    return Some(Ok(name.clone()));
                }
                view.idem_keys
                    .contains(name.as_str())
                    .then(|| self.owner_of(name))
            });
            if let Some(existing) = existing {
                out.push(Enqueued {
                    id: existing?,
                    duplicate: true,
                });
                continue;
            }
            batch.insert(key.clone(), id.clone());
            batch.insert(id.clone(), id.clone());
            let record = Record {
                task: WorkTask {
                    id: id.clone(),
                    pipeline_id: t.pipeline_id,
                    node_name: t.node_name,
                    input: t.input,
                    wave: t.wave,
                    attempt: 0,
                    idempotency_key: key.clone(),
                },
                status: TaskStatus::Pending,
                max_attempts: t
                    .max_attempts
                    .unwrap_or(self.config.queue.default_max_attempts),
                created_at: now,
                updated_at: now,
                ready_at: now.saturating_add(t.delay_ms),
                seq: next_seq(now),
                lease: None,
                finished_at: None,
                promoted: false,
                claim: None,
                executor: t.executor,
            };
            pairs.push((self.keys.open(&id), record.encode()));
            if key != id {
                pairs.push((self.keys.idempotency(&key), id.clone().into_bytes()));
            }
            out.push(Enqueued {
                id,
                duplicate: false,
            });
        }
        if pairs.is_empty() {
            return Ok(out);
        }
        if let Some(max) = self.config.max_keys {
            let after = view.total_keys + pairs.len() as u64;
            if after + super::RESERVED_KEYS > max {
                return Err(QueueError::StoreFull(format!(
                    "the store holds {} of its {max} keys and this batch needs {} more \
                     ({} are kept free); finished tasks free theirs after retention_ms",
                    view.total_keys,
                    pairs.len(),
                    super::RESERVED_KEYS
                )));
            }
        }
        self.kv.set_many(&pairs)?;
        Ok(out)
    }

    /// The task id an idempotency key's own key names.
    fn owner_of(&self, key: &str) -> Result<String> {
        let bytes = self.kv.get(&self.keys.idempotency(key))?;
        bytes
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| QueueError::Corrupt {
                key: self.keys.idempotency(key),
                reason: "an idempotency key that names no task id".to_string(),
            })
    }
}
