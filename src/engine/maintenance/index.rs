//! Completion index: the completion log, in completion order, copied into
//! one index per pipeline (`m/p/{pipeline}/…`), so collecting a pipeline's
//! results reads that pipeline only. Each index is a meta value (how many
//! entries, how many of them expired) and chunks of [`INDEX_CHUNK`]
//! entries; chunks whose entries all expired are deleted.

use super::{MaintenanceState, Run, BUDGET};
use crate::engine::keys::Log;
use crate::engine::record::CompletionEntry;
use crate::engine::store::Writes;
use crate::engine::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most entries per stored chunk of a pipeline index.
const INDEX_CHUNK: u64 = 256;
/// Keys per read when reading the not yet indexed end of the log.
const READ_CHUNK: u64 = 1000;

/// A pipeline index's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IndexMeta {
    /// Entries ever appended.
    pub count: u64,
    /// Leading entries that expired (their chunks are deleted).
    pub expired: u64,
}

impl<K: KeyValue> Run<'_, K> {
    pub(super) fn completions(&mut self) -> Result<()> {
        let start = self.state.cursors.completions;
        let end = self.counters.completions_tail.min(start + BUDGET);
        if start >= end {
            return Ok(());
        }
        let (keys, found) = self
            .q
            .read_entries::<CompletionEntry>(Log::Completions, start..end)?;
        self.poison.extend(found.poison.iter().cloned());
        let mut n = start;
        while n < end {
            let key = &keys[(n - start) as usize];
            match found.values.get(key) {
                Some(e) => self.indexed.push(e.clone()),
                None if n < self.state.graced.completions_tail
                    || found.poison.iter().any(|(k, _)| k == key) =>
                {
                    self.state.totals.completion_holes += 1;
                }
                None => break, // its ack may still be writing it
            }
            n += 1;
        }
        self.state.cursors.completions = n;
        Ok(())
    }

    /// Append this run's completions to their pipelines' indexes and
    /// account for the entries that expired.
    pub(super) fn write_index(&mut self, writes: &mut Writes) -> Result<()> {
        let mut by_pipeline: BTreeMap<String, Vec<CompletionEntry>> = BTreeMap::new();
        for e in std::mem::take(&mut self.indexed) {
            by_pipeline
                .entry(e.pipeline_id.clone())
                .or_default()
                .push(e);
        }
        for p in self.expired.keys() {
            by_pipeline.entry(p.clone()).or_default();
        }
        let metas = self.q.read_many::<IndexMeta>(
            &by_pipeline
                .keys()
                .map(|p| self.q.keys.pipeline_meta(p))
                .collect::<Vec<_>>(),
        )?;
        self.poison.extend(metas.poison.iter().cloned());
        for (pipeline, new) in by_pipeline {
            let keys = &self.q.keys;
            let meta_key = keys.pipeline_meta(&pipeline);
            let mut meta = metas.values.get(&meta_key).copied().unwrap_or_default();
            let mut chunk = meta.count / INDEX_CHUNK;
            let mut current: Vec<CompletionEntry> =
                if meta.count % INDEX_CHUNK > 0 && !new.is_empty() {
                    self.q
                        .get_json(&keys.pipeline_chunk(&pipeline, chunk))?
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
            let appended = !new.is_empty();
            for e in new {
                if current.len() as u64 >= INDEX_CHUNK {
                    writes.put(keys.pipeline_chunk(&pipeline, chunk), &current);
                    chunk += 1;
                    current = Vec::new();
                }
                current.push(e);
                meta.count += 1;
            }
            if appended {
                writes.put(keys.pipeline_chunk(&pipeline, chunk), &current);
            }
            let gone = self.expired.get(&pipeline).copied().unwrap_or(0);
            let before = meta.expired;
            meta.expired = (meta.expired + gone).min(meta.count);
            for c in before / INDEX_CHUNK..meta.expired / INDEX_CHUNK {
                self.doomed.push(keys.pipeline_chunk(&pipeline, c));
            }
            if meta.expired == meta.count {
                // Nothing left: the index goes with the records of its last
                // entries (in the next run), and a later completion of this
                // pipeline starts a fresh one.
                for c in meta.expired / INDEX_CHUNK..meta.count.div_ceil(INDEX_CHUNK) {
                    self.doomed.push(keys.pipeline_chunk(&pipeline, c));
                }
                self.doomed.push(meta_key.clone());
            }
            writes.put(meta_key, &meta);
        }
        Ok(())
    }
}

/// Every completion entry of a pipeline not yet deleted: its index,
/// plus the end of the completion log that maintenance has not indexed yet
/// (reads only). The state is read first, so whatever maintenance indexes
/// meanwhile is found in the index or in the log.
pub(crate) fn pipeline_completions<K: KeyValue>(
    q: &KvWorkQueue<K>,
    pipeline_id: &str,
) -> Result<Vec<CompletionEntry>> {
    let state: MaintenanceState = super::state(q)?;
    let meta: IndexMeta = q
        .get_json(&q.keys.pipeline_meta(pipeline_id))?
        .unwrap_or_default();
    let first_chunk = meta.expired / INDEX_CHUNK;
    let chunk_keys: Vec<String> = (first_chunk..meta.count.div_ceil(INDEX_CHUNK))
        .map(|c| q.keys.pipeline_chunk(pipeline_id, c))
        .collect();
    // Entries that expired stay listed until their records are deleted
    // (by the next run): the caller reads the records, like `status`.
    let chunks = q.read_many::<Vec<CompletionEntry>>(&chunk_keys)?;
    let mut out: Vec<CompletionEntry> = chunk_keys
        .iter()
        .filter_map(|k| chunks.values.get(k))
        .flatten()
        .cloned()
        .collect();
    let tail = q.read_counter(&q.keys.tail(Log::Completions))?;
    let mut start = state.cursors.completions;
    while start < tail {
        let end = tail.min(start + READ_CHUNK);
        let (_, entries) = q.read_entries::<CompletionEntry>(Log::Completions, start..end)?;
        out.extend(
            entries
                .values
                .into_values()
                .filter(|e| e.pipeline_id == pipeline_id),
        );
        start = end;
    }
    Ok(out)
}
