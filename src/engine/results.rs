//! Collect a pipeline's results in completion order (reads only): the
//! pipeline's index and the end of the completion log maintenance has not
//! indexed yet name the completed tasks; their records hold the outputs —
//! the same records `status` reads, so the two always agree.

use super::maintenance;
use super::record::State;
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use serde_json::Value;
use std::collections::BTreeSet;

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    pipeline_id: &str,
) -> Result<Vec<(String, Value)>> {
    let mut entries = maintenance::pipeline_completions(q, pipeline_id)?;
    entries.sort_by_key(|e| e.seq);
    let mut seen = BTreeSet::new();
    entries.retain(|e| seen.insert(e.id.clone()));
    let loaded = q.load_tasks(entries.iter().map(|e| e.id.as_str()))?;
    Ok(entries
        .iter()
        .filter_map(|e| match &loaded.records.get(&e.id)?.state {
            State::Completed { output, .. } => Some((e.node_name.clone(), output.clone())),
            _ => None,
        })
        .collect())
}
