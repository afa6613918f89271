//! Pipelines on the key-value store: the [`PipelineStore`] primitives.
//!
//! | key | holds |
//! | --- | --- |
//! | `p/{pipeline}` | the record (spec, run id, submission time) |
//! | `p/{pipeline}/x`, `…/s` | when it was cancelled; when reconciliation found it settled |
//! | `p/{pipeline}/l/…` | the lock of writing the record (one submission wins) |
//! | `p/{pipeline}/n/{node}/…` | the lock of creating node `node`'s task |
//! | `r/tail`, `r/{n}` | the pipeline log: every submission and reopening |
//! | `r/cursor`, `r/at` | how far reconciliation and retention got; when it last ran |
//!
//! A node's task is created by the winner of its lock (`lock.rs`), within
//! the deadline of its increment, in one commit that also marks the lock
//! [`DONE`] — so no takeover ever creates it again, even after retention
//! deleted the task. A creator that died before that commit is taken over
//! by the next reconciliation once `takeover_after` has passed.

use super::enqueue;
use super::keys::{CounterKey, Keys, Log};
use super::lock::{self, Acquired, LockKeys, DONE};
use super::status::of_record;
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::{generate_id, NewTask, TaskInfo};
use crate::pipeline::{
    self, Cancelled, NewPipeline, PipelineMarks, PipelineQueue, PipelineRecord, PipelineStore,
    PipelineView, Submitted,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Pipelines of the log one reconciliation looks at.
const WINDOW: u64 = 16;
/// Settled pipelines one retention pass looks at.
const SWEEP: u64 = 64;
/// Task ids per read.
const READ_CHUNK: usize = 500;

/// A pipeline's lock: of its record (`node: None`) or of a node's task.
struct PipelineLock<'a> {
    keys: &'a Keys,
    id: &'a str,
    node: Option<usize>,
}

impl LockKeys for PipelineLock<'_> {
    fn counter(&self, attempt: u32) -> CounterKey {
        self.keys.pipeline_lock(self.id, self.node, attempt)
    }
    fn seen(&self, attempt: u32) -> String {
        self.keys.pipeline_lock_seen(self.id, self.node, attempt)
    }
    fn next(&self) -> String {
        self.keys.pipeline_lock_next(self.id, self.node)
    }
}

/// How far the pipeline log was consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Entries before this one are settled (or gone).
    open: u64,
    /// Entries before this one are deleted.
    swept: u64,
    /// Where the next window starts (`0`: at `open`).
    #[serde(default)]
    scan: u64,
    /// An entry at `open` that was never written, and when that was
    /// first seen: skipped once a grace period has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hole: Option<(u64, u64)>,
}

impl<K: KeyValue> KvWorkQueue<K> {
    fn pipeline_lock<'a>(&'a self, id: &'a str, node: Option<usize>) -> PipelineLock<'a> {
        PipelineLock {
            keys: &self.keys,
            id,
            node,
        }
    }

    /// True (and noted) when a grace period passed since the last
    /// reconciliation: dequeues reconcile that often.
    pub(crate) fn reconcile_due(&self) -> Result<bool> {
        let key = self.keys.pipelines_reconciled();
        let last: u64 = self.get_json(&key).unwrap_or(None).unwrap_or(0);
        let now = self.now();
        if now < last + self.timing.grace_ms {
            return Ok(false);
        }
        if self.read_counter(&self.keys.tail(Log::Pipelines))? == 0 {
            return Ok(false); // no pipeline was ever submitted
        }
        self.kv.set(&key, &super::store::encode(&now))?;
        Ok(true)
    }

    /// Delete the keys of pipelines settled a retention period ago.
    pub(crate) fn sweep_pipelines(&self) -> Result<()> {
        let retention = self.config.retention_ms;
        if retention == 0 {
            return Ok(());
        }
        let mut cursor: Cursor = self
            .get_json(&self.keys.pipelines_cursor())?
            .unwrap_or_default();
        let end = cursor.open.min(cursor.swept + SWEEP);
        if cursor.swept >= end {
            return Ok(());
        }
        let (entry_keys, found) = self.read_entries::<String>(Log::Pipelines, cursor.swept..end)?;
        let now = self.now();
        let mut garbage = Vec::new();
        for (n, key) in (cursor.swept..end).zip(&entry_keys) {
            if let Some(id) = found.values.get(key) {
                let settled: Option<u64> = self.get_json(&self.keys.pipeline_settled(id))?;
                match settled {
                    Some(at) if at + retention > now => break,
                    Some(_) => garbage.extend(self.pipeline_keys(id)?),
                    None => {} // running again: a later entry stands for it
                }
            }
            garbage.push(key.clone());
            cursor.swept = n + 1;
        }
        if !garbage.is_empty() {
            self.kv.delete_many(&garbage)?;
        }
        self.kv.set(
            &self.keys.pipelines_cursor(),
            &super::store::encode(&cursor),
        )?;
        Ok(())
    }

    /// Create the tasks of the node locks `won` (node, attempt, task),
    /// whose earliest increment was at `earliest`, and mark the locks
    /// done — or give them up when that cannot be written in time.
    fn create_won(
        &self,
        record: &PipelineRecord,
        won: Vec<(usize, u32, NewTask)>,
        earliest: u64,
    ) -> Result<()> {
        // As the holders: a takeover of a creation that landed does nothing.
        let ids: Vec<String> = won.iter().map(|(i, _, _)| record.task_id(*i)).collect();
        let existing = self.load_tasks(ids.iter().map(String::as_str))?;
        let mut marks = Writes::default();
        let mut fresh = Vec::new();
        for (i, attempt, task) in won.iter().cloned() {
            marks.put(self.pipeline_lock(&record.id, Some(i)).seen(attempt), &DONE);
            if !existing.records.contains_key(&record.task_id(i)) {
                fresh.push(task);
            }
        }
        let deadline = self.deadline_from(earliest);
        let created = if fresh.is_empty() {
            self.commit_checked("pipeline", marks, |now| {
                self.within(deadline, now, "pipeline")
            })
        } else {
            enqueue::insert(self, fresh, marks, deadline)
        };
        if created.is_err() {
            for (i, attempt, _) in &won {
                lock::release(self, &self.pipeline_lock(&record.id, Some(*i)), *attempt);
            }
        }
        created
    }

    /// Every key of pipeline `id` (its tasks are swept on their own).
    fn pipeline_keys(&self, id: &str) -> Result<Vec<String>> {
        let nodes = self
            .get_json::<PipelineRecord>(&self.keys.pipeline(id))
            .ok()
            .flatten()
            .map_or(0, |r| r.spec.nodes.len());
        let mut keys = vec![
            self.keys.pipeline(id),
            self.keys.pipeline_cancelled(id),
            self.keys.pipeline_settled(id),
        ];
        for node in std::iter::once(None).chain((0..nodes).map(Some)) {
            let lock = self.pipeline_lock(id, node);
            let last: u32 = self.get_json(&lock.next()).ok().flatten().unwrap_or(0);
            keys.extend(lock::keys_up_to(&lock, last));
        }
        Ok(keys)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<K: KeyValue + crate::MaybeSendSync> PipelineStore for KvWorkQueue<K> {
    fn now_ms(&self) -> u64 {
        self.now()
    }

    fn new_run(&self) -> String {
        generate_id()
    }

    async fn insert_pipeline(&self, record: &PipelineRecord) -> Result<Option<PipelineRecord>> {
        let key = self.keys.pipeline(&record.id);
        if let Some(existing) = self.get_json(&key)? {
            return Ok(Some(existing));
        }
        let lock = self.pipeline_lock(&record.id, None);
        let Acquired::Won { attempt, start } = lock::acquire(self, &lock, true)? else {
            return match self.get_json(&key)? {
                Some(existing) => Ok(Some(existing)),
                None => Err(QueueError::TooSlow(format!(
                    "pipeline {} is being submitted by another request; retry",
                    record.id
                ))),
            };
        };
        let written = (|| {
            if let Some(existing) = self.get_json(&key)? {
                return Ok(Some(existing)); // a takeover of a finished write
            }
            let n = self.reserve(Log::Pipelines, 1)?;
            let mut writes = Writes::default();
            writes.put(self.keys.entry(Log::Pipelines, n), &record.id);
            writes.put(key.clone(), record);
            writes.put(lock.seen(attempt), &DONE);
            let deadline = self.deadline_from(start);
            self.commit_checked("submit", writes, |now| self.within(deadline, now, "submit"))?;
            Ok(None)
        })();
        if written.is_err() {
            lock::release(self, &lock, attempt);
        }
        written
    }

    async fn load_pipeline(&self, id: &str) -> Result<Option<(PipelineRecord, PipelineMarks)>> {
        let Some(record) = self.get_json::<PipelineRecord>(&self.keys.pipeline(id))? else {
            return Ok(None);
        };
        let marks = PipelineMarks {
            cancelled_at: self.cancelled_at(id).await?,
        };
        Ok(Some((record, marks)))
    }

    async fn cancelled_at(&self, id: &str) -> Result<Option<u64>> {
        self.get_json(&self.keys.pipeline_cancelled(id))
    }

    async fn mark_cancelled(&self, id: &str, at: u64) -> Result<u64> {
        if let Some(before) = self.cancelled_at(id).await? {
            return Ok(before);
        }
        self.kv.set(
            &self.keys.pipeline_cancelled(id),
            &super::store::encode(&at),
        )?;
        Ok(at)
    }

    async fn tasks_of(&self, ids: &[String]) -> Result<Vec<Option<TaskInfo>>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(READ_CHUNK) {
            let mut loaded = self.load_tasks(chunk.iter().map(String::as_str))?;
            self.report_poison(&loaded.poison);
            for id in chunk {
                out.push(
                    loaded
                        .records
                        .remove(id)
                        .map(|r| of_record(r, loaded.heartbeats.get(id))),
                );
            }
        }
        Ok(out)
    }

    async fn create_nodes(
        &self,
        record: &PipelineRecord,
        nodes: Vec<(usize, NewTask)>,
    ) -> Result<()> {
        // Locks won are written in batches, each before the deadline of
        // its first lock: a batch is flushed once half of that has gone.
        let mut won = Vec::new();
        let mut earliest = u64::MAX;
        for (i, task) in nodes {
            let lock = self.pipeline_lock(&record.id, Some(i));
            if let Acquired::Won { attempt, start } = lock::acquire(self, &lock, true)? {
                earliest = earliest.min(start);
                won.push((i, attempt, task));
            }
            if !won.is_empty() && self.now() >= earliest + self.timing.deadline_ms / 2 {
                self.create_won(record, std::mem::take(&mut won), earliest)?;
                earliest = u64::MAX;
            }
        }
        if won.is_empty() {
            return Ok(());
        }
        self.create_won(record, won, earliest)
    }

    async fn running_pipelines(&self) -> Result<Vec<String>> {
        let cursor_key = self.keys.pipelines_cursor();
        let before: Cursor = self.get_json(&cursor_key)?.unwrap_or_default();
        let mut cursor = before;
        let tail = self.read_counter(&self.keys.tail(Log::Pipelines))?;
        // Windows in turn from `open` to the tail, so that more running
        // pipelines than one window holds are all looked at.
        let from = match cursor.scan.max(cursor.open) {
            n if n < tail => n,
            _ => cursor.open,
        };
        let end = tail.min(from + WINDOW);
        cursor.scan = if end >= tail { 0 } else { end };
        let (entry_keys, found) = self.read_entries::<String>(Log::Pipelines, from..end)?;
        let ids: Vec<Option<&String>> = entry_keys.iter().map(|k| found.values.get(k)).collect();
        let settled_keys: Vec<String> = ids
            .iter()
            .flatten()
            .map(|id| self.keys.pipeline_settled(id))
            .collect();
        let settled = self.read_many::<u64>(&settled_keys)?;
        let now = self.now();
        let mut running = Vec::new();
        let mut leading = from == cursor.open;
        for (n, id) in (from..end).zip(ids) {
            let done = match id {
                Some(id) => settled.values.contains_key(&self.keys.pipeline_settled(id)),
                // Never written: its submission is in flight or died.
                None => match cursor.hole {
                    Some((at, seen)) if at == n => now >= seen + self.timing.grace_ms,
                    _ => {
                        if leading {
                            cursor.hole = Some((n, now));
                        }
                        false
                    }
                },
            };
            if leading && done {
                cursor.open = n + 1;
                cursor.hole = None;
                continue;
            }
            leading = false;
            if let (Some(id), false) = (id, done) {
                if !running.contains(id) {
                    running.push(id.clone());
                }
            }
        }
        if cursor != before {
            self.kv.set(&cursor_key, &super::store::encode(&cursor))?;
        }
        Ok(running)
    }

    async fn settle_pipeline(&self, id: &str, at: u64) -> Result<()> {
        let key = self.keys.pipeline_settled(id);
        if self.get_json::<u64>(&key)?.is_none() {
            self.kv.set(&key, &super::store::encode(&at))?;
        }
        Ok(())
    }

    async fn reopen_pipeline(&self, id: &str) -> Result<()> {
        self.kv.delete(&self.keys.pipeline_settled(id))?;
        let n = self.reserve(Log::Pipelines, 1)?;
        self.kv.set(
            &self.keys.entry(Log::Pipelines, n),
            &super::store::encode(&id.to_string()),
        )?;
        Ok(())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<K: KeyValue + crate::MaybeSendSync> PipelineQueue for KvWorkQueue<K> {
    async fn submit_pipeline(&self, pipeline: NewPipeline) -> Result<Submitted> {
        pipeline::submit(self, pipeline).await
    }

    async fn pipeline(&self, id: &str) -> Result<Option<PipelineView>> {
        pipeline::view(self, id).await
    }

    async fn cancel_pipeline(&self, id: &str) -> Result<Cancelled> {
        pipeline::cancel(self, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;
    use crate::pipeline::NodeSpec;
    use crate::{ManualClock, QueueConfig};
    use serde_json::Value;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    #[tokio::test]
    async fn reconciliation_looks_at_every_running_pipeline_in_turn() {
        let clock = ManualClock::new(1_700_000_000_000);
        let q = KvWorkQueue::with_config(MemoryKv::new(), QueueConfig::default(), Arc::new(clock))
            .unwrap();
        let ids: BTreeSet<String> = (0..40).map(|i| format!("p{i}")).collect();
        for id in &ids {
            let p = NewPipeline::new(vec![NodeSpec::new("a", Value::Null, &[])]).with_id(id);
            q.submit_pipeline(p).await.unwrap();
        }
        let mut seen = BTreeSet::new();
        for _ in 0..3 {
            seen.extend(q.running_pipelines().await.unwrap());
        }
        assert_eq!(seen, ids, "three windows of 16 cover 40 pipelines");
    }
}
