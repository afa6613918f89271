//! What a lease holder does: ack (the finished record written, the open
//! one removed), fail (a retry scheduled in the record, or a dead letter),
//! heartbeat (the record's lease extended). The holder owns the record
//! until its lease's expiry plus the late window; each write is checked
//! against that right before it, so it lands before any rescue.

use super::record::{next_seq, Record};
use super::HostedWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::StoreKv;
use crate::model::{validate_lease_ms, validate_output, Ack, FailOutcome};
use crate::port::TaskStatus;
use std::collections::BTreeMap;

fn lease_lost(id: &str) -> QueueError {
    QueueError::LeaseLost { id: id.to_string() }
}

fn not_found(id: &str) -> QueueError {
    QueueError::NotFound { id: id.to_string() }
}

impl<S: StoreKv> HostedWorkQueue<S> {
    /// The open record of `id` if `lease_id` may still finish it at `now`.
    fn held(&self, open: Option<&Record>, id: &str, lease_id: &str, now: u64) -> Result<Record> {
        let r = open.ok_or_else(|| not_found(id))?;
        match r.holds(lease_id) {
            Some(expiry) if now < expiry + self.timing.base.late_finish_ms => Ok(r.clone()),
            _ => Err(lease_lost(id)),
        }
    }

    /// Ack a batch: one read of the open and finished records, one
    /// `set_many` of the completed records, one `delete_many` of the open
    /// ones.
    pub(crate) fn complete(&self, acks: Vec<Ack>) -> Result<Vec<Result<TaskStatus>>> {
        let mut keys = Vec::new();
        for a in &acks {
            keys.push(self.keys.open(&a.id));
            keys.push(self.keys.done(&a.id));
        }
        let now = self.now();
        let mut open = BTreeMap::new();
        let mut done = BTreeMap::new();
        for chunk in keys.chunks(100) {
            for (key, bytes) in self.kv.get_many(chunk)? {
                let Ok(r) = Record::decode(&bytes) else {
                    continue;
                };
                if key.starts_with(&self.keys.done("")) {
                    done.insert(r.task.id.clone(), r);
                } else {
                    open.insert(r.task.id.clone(), r);
                }
            }
        }
        let mut results = Vec::with_capacity(acks.len());
        let mut finished: BTreeMap<String, Record> = BTreeMap::new();
        for a in acks {
            results.push(self.complete_one(&a, now, &open, &done, &mut finished));
        }
        let records: Vec<Record> = finished.into_values().collect();
        if !records.is_empty() {
            let earliest = records
                .iter()
                .filter_map(|r| r.lease.as_ref().map(|l| l.expires_at))
                .min()
                .unwrap_or(0);
            if self.now() >= earliest + self.timing.base.late_finish_ms {
                return Err(QueueError::TooSlow(
                    "an ack reached the end of its lease's late window before writing; \
                     nothing was written"
                        .to_string(),
                ));
            }
            self.finish_records(&records)?;
        }
        Ok(results)
    }

    fn complete_one(
        &self,
        a: &Ack,
        now: u64,
        open: &BTreeMap<String, Record>,
        done: &BTreeMap<String, Record>,
        finished: &mut BTreeMap<String, Record>,
    ) -> Result<TaskStatus> {
        validate_output(&a.output)?;
        let same_lease = |r: &Record| r.lease.as_ref().is_some_and(|l| l.id == a.lease_id);
        if let Some(r) = finished.get(&a.id).or_else(|| done.get(&a.id)) {
            return match &r.status {
                TaskStatus::Completed { .. } if same_lease(r) => Ok(r.status.clone()),
                _ => Err(lease_lost(&a.id)),
            };
        }
        let mut r = self.held(open.get(&a.id), &a.id, &a.lease_id, now)?;
        r.status = TaskStatus::Completed {
            output: a.output.clone(),
        };
        r.updated_at = now;
        r.finished_at = Some(now);
        r.seq = next_seq(now);
        let status = r.status.clone();
        finished.insert(a.id.clone(), r);
        Ok(status)
    }

    pub(crate) fn fail(
        &self,
        id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
    ) -> Result<FailOutcome> {
        let now = self.now();
        let open = self.read_one(&self.keys.open(id))?;
        if open.is_none() && self.kv.get(&self.keys.done(id))?.is_some() {
            return Err(lease_lost(id));
        }
        let mut r = self.held(open.as_ref(), id, lease_id, now)?;
        let expiry = r.lease.as_ref().map_or(0, |l| l.expires_at);
        r.updated_at = now;
        r.lease = None;
        r.seq = next_seq(now);
        let attempt = r.task.attempt;
        let outcome = if retryable && attempt + 1 < r.max_attempts {
            let due = now.saturating_add(self.config.queue.retry.backoff_ms(id, attempt));
            r.status = TaskStatus::Failed {
                error: error.to_string(),
                attempt,
            };
            r.ready_at = due;
            FailOutcome {
                status: r.status.clone(),
                retry_at: Some(due),
            }
        } else {
            r.status = TaskStatus::DeadLetter {
                error: error.to_string(),
            };
            r.finished_at = Some(now);
            FailOutcome {
                status: r.status.clone(),
                retry_at: None,
            }
        };
        if self.now() >= expiry + self.timing.base.late_finish_ms {
            return Err(QueueError::TooSlow(
                "a fail reached the end of its lease's late window before writing; nothing was written"
                    .to_string(),
            ));
        }
        match outcome.retry_at {
            Some(_) => self.kv.set(&self.keys.open(id), &r.encode())?,
            None => self.finish_records(std::slice::from_ref(&r))?,
        }
        Ok(outcome)
    }

    pub(crate) fn beat(&self, id: &str, lease_id: &str, lease_ms: Option<u64>) -> Result<u64> {
        let lease_ms = lease_ms.unwrap_or(self.config.queue.default_lease_ms);
        validate_lease_ms(lease_ms)?;
        let now = self.now();
        let open = self.read_one(&self.keys.open(id))?;
        if open.is_none() && self.kv.get(&self.keys.done(id))?.is_some() {
            return Err(lease_lost(id));
        }
        let mut r = open.ok_or_else(|| not_found(id))?;
        let Some(old) = r.holds(lease_id).filter(|&e| now < e) else {
            return Err(lease_lost(id));
        };
        let new = old.max(now.saturating_add(lease_ms));
        if let Some(l) = r.lease.as_mut() {
            l.expires_at = new;
        }
        if self.now() >= old {
            return Err(lease_lost(id));
        }
        self.kv.set(&self.keys.open(id), &r.encode())?;
        Ok(new)
    }
}
