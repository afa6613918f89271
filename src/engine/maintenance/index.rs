//! Completion index: the completion log, in completion order, copied into
//! one index per pipeline (`m/p/{pipeline}/…`), so collecting a pipeline's
//! results reads that pipeline only.

use super::{MaintenanceState, Run, BUDGET};
use crate::engine::keys::Log;
use crate::engine::record::{CompletionEntry, ResultRecord};
use crate::engine::store::Writes;
use crate::engine::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use std::collections::{BTreeMap, HashMap};

/// Most entries per stored chunk of a pipeline index.
const INDEX_CHUNK: u64 = 256;
/// Keys per read when scanning the not yet indexed end of the log.
const READ_CHUNK: u64 = 1000;

impl<K: KeyValue> Run<'_, K> {
    pub(super) fn completions(&mut self) -> Result<()> {
        let start = self.state.completions;
        let end = self.completions_tail.min(start + BUDGET);
        if start >= end {
            return Ok(());
        }
        let keys: Vec<String> = (start..end)
            .map(|n| self.q.keys.entry(Log::Completions, n))
            .collect();
        let entries: HashMap<String, CompletionEntry> = self.q.get_many_json(&keys)?;
        // The result names the completion entry that counts; an ack redone
        // after slow writes leaves an earlier one behind, and a marker
        // keeps a generation from being indexed twice.
        let ids: Vec<(String, String)> = entries
            .values()
            .map(|e| {
                (
                    self.q.keys.result(&e.id, e.gen),
                    self.q.keys.indexed(&e.id, e.gen),
                )
            })
            .collect();
        let result_keys: Vec<String> = ids.iter().map(|(r, _)| r.clone()).collect();
        let marker_keys: Vec<String> = ids.into_iter().map(|(_, m)| m).collect();
        let results: HashMap<String, ResultRecord> = self.q.get_many_json(&result_keys)?;
        let mut markers: HashMap<String, u64> = self.q.get_many_json(&marker_keys)?;
        let mut n = start;
        while n < end {
            match entries.get(&keys[(n - start) as usize]) {
                Some(e) => {
                    let marker = self.q.keys.indexed(&e.id, e.gen);
                    let current = results
                        .get(&self.q.keys.result(&e.id, e.gen))
                        .is_some_and(|r| r.seq == e.seq);
                    if current && !markers.contains_key(&marker) {
                        markers.insert(marker.clone(), e.seq);
                        self.markers.push((marker, e.seq));
                        self.indexed.push(e.clone());
                    } else {
                        self.state.totals.completion_superseded += 1;
                    }
                }
                None if n < self.state.graced.completions_tail => {
                    self.state.totals.completion_holes += 1;
                }
                None => break,
            }
            n += 1;
        }
        self.state.completions = n;
        Ok(())
    }

    /// Append this run's completions to their pipelines' indexes.
    pub(super) fn write_index(&mut self, writes: &mut Writes) -> Result<()> {
        for (marker, seq) in self.markers.drain(..) {
            writes.put(marker, &seq);
        }
        let mut by_pipeline: BTreeMap<String, Vec<CompletionEntry>> = BTreeMap::new();
        for e in self.indexed.drain(..) {
            by_pipeline
                .entry(e.pipeline_id.clone())
                .or_default()
                .push(e);
        }
        for (pipeline, new) in by_pipeline {
            let keys = &self.q.keys;
            let mut count: u64 = self.q.get_json(&keys.pipeline_len(&pipeline))?.unwrap_or(0);
            let mut chunk = count / INDEX_CHUNK;
            let mut current: Vec<CompletionEntry> = if count % INDEX_CHUNK > 0 {
                self.q
                    .get_json(&keys.pipeline_chunk(&pipeline, chunk))?
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            for e in new {
                if current.len() as u64 >= INDEX_CHUNK {
                    writes.put(keys.pipeline_chunk(&pipeline, chunk), &current);
                    chunk += 1;
                    current = Vec::new();
                }
                current.push(e);
                count += 1;
            }
            writes.put(keys.pipeline_chunk(&pipeline, chunk), &current);
            writes.put(keys.pipeline_len(&pipeline), &count);
        }
        Ok(())
    }
}

/// Every completion entry of a pipeline: its index, plus the end of the
/// completion log that maintenance has not indexed yet (reads only).
pub(crate) fn pipeline_completions<K: KeyValue>(
    q: &KvWorkQueue<K>,
    pipeline_id: &str,
) -> Result<Vec<CompletionEntry>> {
    let state: MaintenanceState = q.get_json(&q.keys.maintenance_state())?.unwrap_or_default();
    let count: u64 = q.get_json(&q.keys.pipeline_len(pipeline_id))?.unwrap_or(0);
    let chunk_keys: Vec<String> = (0..count.div_ceil(INDEX_CHUNK))
        .map(|c| q.keys.pipeline_chunk(pipeline_id, c))
        .collect();
    let chunks: HashMap<String, Vec<CompletionEntry>> = q.get_many_json(&chunk_keys)?;
    let mut out: Vec<CompletionEntry> = chunk_keys
        .iter()
        .filter_map(|k| chunks.get(k))
        .flatten()
        .cloned()
        .collect();
    let tail = q.read_counters(&[&q.keys.tail(Log::Completions)])?[0];
    let mut start = state.completions;
    while start < tail {
        let end = tail.min(start + READ_CHUNK);
        let keys: Vec<String> = (start..end)
            .map(|n| q.keys.entry(Log::Completions, n))
            .collect();
        let entries: HashMap<String, CompletionEntry> = q.get_many_json(&keys)?;
        out.extend(
            entries
                .into_values()
                .filter(|e| e.pipeline_id == pipeline_id),
        );
        start = end;
    }
    Ok(out)
}
