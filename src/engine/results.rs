//! Collect a pipeline's results in completion order (reads only, plus the
//! opportunistic maintenance run that keeps the unindexed log end short).

use super::maintenance;
use super::record::ResultRecord;
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    pipeline_id: &str,
) -> Result<Vec<(String, Value)>> {
    maintenance::run_if_due(q);
    let mut entries = maintenance::pipeline_completions(q, pipeline_id)?;
    entries.sort_by_key(|e| e.seq);
    // A task completes once; should a race ever record it twice, its first
    // completion is the one that counts (as for its status).
    let mut seen = HashSet::new();
    entries.retain(|e| seen.insert(e.id.clone()));
    let keys: Vec<String> = entries
        .iter()
        .map(|e| q.keys.result(&e.id, e.gen))
        .collect();
    let results: HashMap<String, ResultRecord> = q.get_many_json(&keys)?;
    Ok(entries
        .iter()
        .zip(&keys)
        .filter_map(|(e, k)| {
            results
                .get(k)
                .map(|r| (e.node_name.clone(), r.output.clone()))
        })
        .collect())
}
