//! Dequeue: look at every open record, pick the due ones in order (pending
//! tasks whose delay is over, retries whose time came, leases past their
//! rescue time), claim up to `max` in one write, wait the settle time once,
//! keep what is still this claim's. An expired lease on its last attempt is
//! claimed as a dead letter and moved to the finished records.

use super::record::{next_seq, Record};
use super::view::View;
use super::HostedWorkQueue;
use crate::error::Result;
use crate::kv::StoreKv;
use crate::model::{generate_id, DequeueRequest, Lease, LeasedTask};
use crate::port::TaskStatus;

/// The error of a task whose last lease expired.
pub(crate) const LEASE_EXPIRED: &str = "lease expired";

/// What a due record becomes when claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Due {
    /// Pending and its delay is over: this attempt.
    Pending,
    /// Failed, its retry due: the next attempt.
    Retry,
    /// Leased past its rescue time with attempts left: the next attempt.
    Rescue,
    /// Leased past its rescue time on its last attempt: a dead letter.
    Expired,
}

impl<S: StoreKv> HostedWorkQueue<S> {
    /// Whether `r` is due at `now`, and how; with the time it became due.
    pub(crate) fn due(&self, r: &Record, now: u64) -> Option<(Due, u64)> {
        match &r.status {
            TaskStatus::Pending if r.ready_at <= now => Some((Due::Pending, r.ready_at)),
            TaskStatus::Failed { .. } if r.ready_at <= now => Some((Due::Retry, r.ready_at)),
            TaskStatus::InProgress { .. } => {
                let expiry = r.lease.as_ref().map_or(0, |l| l.expires_at);
                let at = expiry + self.timing.base.rescue_after_ms;
                match (now >= at, r.task.attempt + 1 < r.max_attempts) {
                    (false, _) => None,
                    (true, true) => Some((Due::Rescue, at)),
                    (true, false) => Some((Due::Expired, at)),
                }
            }
            _ => None,
        }
    }

    /// The due open records of `view` that are not stale copies of finished
    /// tasks, in the order they became due.
    pub(crate) fn due_in(&self, view: &View, now: u64) -> Vec<(String, Due)> {
        let mut due: Vec<(u64, &str, &str, Due)> = view
            .open
            .values()
            .filter(|r| !view.done_ids.contains(&r.task.id))
            .filter_map(|r| {
                self.due(r, now)
                    .map(|(how, at)| (at, r.seq.as_str(), r.task.id.as_str(), how))
            })
            .collect();
        due.sort();
        due.into_iter()
            .map(|(_, _, id, how)| (id.to_string(), how))
            .collect()
    }

    pub(crate) fn take(&self, req: &DequeueRequest) -> Result<Vec<LeasedTask>> {
        req.validate()?;
        let lease_ms = req.lease_ms.unwrap_or(self.config.queue.default_lease_ms);
        let view = self.view(true, false)?;
        let due = self.due_in(&view, view.read_at);
        let (expired, live): (Vec<_>, Vec<_>) =
            due.into_iter().partition(|(_, how)| *how == Due::Expired);
        let ids: Vec<String> = live
            .into_iter()
            .take(req.max as usize)
            .map(|(id, _)| id)
            .chain(expired.into_iter().map(|(id, _)| id))
            .collect();
        let worker = req.worker_id.clone();
        let claimed = self.claim(&ids, true, |r, now| {
            let (how, _) = self.due(r, now)?;
            let mut next = r.clone();
            next.updated_at = now;
            next.promoted = false;
            match how {
                Due::Pending => {}
                Due::Retry | Due::Rescue => next.task.attempt += 1,
                Due::Expired => {
                    next.status = TaskStatus::DeadLetter {
                        error: LEASE_EXPIRED.to_string(),
                    };
                    next.lease = None;
                    next.finished_at = Some(now);
                    next.seq = next_seq(now);
                    return Some(next);
                }
            }
            next.status = TaskStatus::InProgress {
                worker_id: worker.clone(),
            };
            // The lease runs from the claim's write: its holder gets it the
            // settle time later.
            next.lease = Some(Lease {
                id: generate_id(),
                expires_at: now + lease_ms,
            });
            Some(next)
        })?;
        let (dead, leased): (Vec<Record>, Vec<Record>) = claimed
            .into_iter()
            .partition(|r| matches!(r.status, TaskStatus::DeadLetter { .. }));
        self.finish_records(&dead)?;
        let mut leased: Vec<LeasedTask> = leased
            .into_iter()
            .filter_map(|r| {
                let lease = r.lease.clone()?;
                Some((
                    r.ready_at,
                    r.seq.clone(),
                    LeasedTask {
                        task: r.task,
                        lease,
                        executor: r.executor,
                    },
                ))
            })
            .map(|(_, _, l)| l)
            .collect();
        leased.truncate(req.max as usize);
        Ok(leased)
    }

    /// Move records this request owns to the finished records: write them
    /// at `d/{id}`, then remove `o/{id}`.
    pub(crate) fn finish_records(&self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(String, Vec<u8>)> = records
            .iter()
            .map(|r| (self.keys.done(&r.task.id), r.encode()))
            .collect();
        self.kv.set_many(&pairs)?;
        let open: Vec<String> = records.iter().map(|r| self.keys.open(&r.task.id)).collect();
        self.kv.delete_many(&open)?;
        Ok(())
    }
}
