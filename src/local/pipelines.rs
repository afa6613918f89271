//! Pipelines in process: the [`PipelineStore`] primitives on a map behind
//! its own lock (taken before the state's, never after), so creating a
//! node and marking it created are one step.

use super::LocalWorkQueue;
use crate::error::Result;
use crate::model::{generate_id, NewTask, TaskInfo};
use crate::pipeline::{
    self, Cancelled, NewPipeline, PipelineMarks, PipelineQueue, PipelineRecord, PipelineStore,
    PipelineView, Submitted,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};

/// Every pipeline of a [`LocalWorkQueue`].
#[derive(Debug, Default)]
pub(crate) struct Pipelines {
    by_id: BTreeMap<String, Entry>,
    /// When dequeues last reconciled.
    reconciled_at: u64,
}

#[derive(Debug)]
struct Entry {
    record: PipelineRecord,
    cancelled_at: Option<u64>,
    /// When it was last seen settled (`None` while running).
    settled_at: Option<u64>,
    /// Nodes whose task was created.
    created: BTreeSet<usize>,
}

impl Pipelines {
    /// Forget pipelines settled `retention_ms` ago, as their tasks are.
    pub(crate) fn sweep(&mut self, now: u64, retention_ms: u64) {
        if retention_ms == 0 {
            return;
        }
        self.by_id
            .retain(|_, e| e.settled_at.is_none_or(|at| at + retention_ms > now));
    }
}

impl LocalWorkQueue {
    /// True (and noted) when a grace period passed since dequeues last
    /// reconciled: they reconcile that often, so that settled pipelines
    /// are found and forgotten after the retention period.
    pub(super) fn reconcile_due(&self, now: u64) -> bool {
        let mut p = self.pipelines();
        if p.by_id.is_empty() || now < p.reconciled_at + self.timing.grace_ms {
            return false;
        }
        p.reconciled_at = now;
        true
    }

    pub(super) fn pipelines(&self) -> std::sync::MutexGuard<'_, Pipelines> {
        self.pipelines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl PipelineStore for LocalWorkQueue {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn new_run(&self) -> String {
        generate_id()
    }

    async fn insert_pipeline(&self, record: &PipelineRecord) -> Result<Option<PipelineRecord>> {
        let mut p = self.pipelines();
        if let Some(e) = p.by_id.get(&record.id) {
            return Ok(Some(e.record.clone()));
        }
        p.by_id.insert(
            record.id.clone(),
            Entry {
                record: record.clone(),
                cancelled_at: None,
                settled_at: None,
                created: BTreeSet::new(),
            },
        );
        Ok(None)
    }

    async fn load_pipeline(&self, id: &str) -> Result<Option<(PipelineRecord, PipelineMarks)>> {
        Ok(self.pipelines().by_id.get(id).map(|e| {
            let marks = PipelineMarks {
                cancelled_at: e.cancelled_at,
            };
            (e.record.clone(), marks)
        }))
    }

    async fn cancelled_at(&self, id: &str) -> Result<Option<u64>> {
        Ok(self.pipelines().by_id.get(id).and_then(|e| e.cancelled_at))
    }

    async fn mark_cancelled(&self, id: &str, at: u64) -> Result<u64> {
        let mut p = self.pipelines();
        Ok(match p.by_id.get_mut(id) {
            Some(e) => *e.cancelled_at.get_or_insert(at),
            None => at,
        })
    }

    async fn tasks_of(&self, ids: &[String]) -> Result<Vec<Option<TaskInfo>>> {
        let state = self.lock();
        Ok(ids.iter().map(|id| state.info(id)).collect())
    }

    async fn create_nodes(
        &self,
        record: &PipelineRecord,
        nodes: Vec<(usize, NewTask)>,
    ) -> Result<()> {
        let mut p = self.pipelines();
        let Some(entry) = p.by_id.get_mut(&record.id) else {
            return Ok(());
        };
        let fresh: Vec<NewTask> = nodes
            .into_iter()
            .filter(|(i, _)| entry.created.insert(*i))
            .map(|(_, t)| t)
            .collect();
        if !fresh.is_empty() {
            let env = self.env();
            self.lock().insert(fresh, &env);
        }
        Ok(())
    }

    async fn running_pipelines(&self) -> Result<Vec<String>> {
        let p = self.pipelines();
        Ok(p.by_id
            .iter()
            .filter(|(_, e)| e.settled_at.is_none())
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn settle_pipeline(&self, id: &str, at: u64) -> Result<()> {
        if let Some(e) = self.pipelines().by_id.get_mut(id) {
            e.settled_at.get_or_insert(at);
        }
        Ok(())
    }

    async fn reopen_pipeline(&self, id: &str) -> Result<()> {
        if let Some(e) = self.pipelines().by_id.get_mut(id) {
            e.settled_at = None;
        }
        Ok(())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl PipelineQueue for LocalWorkQueue {
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
