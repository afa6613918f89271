//! Values the engine cannot decode are set aside, never fatal: a reader
//! that meets one (a dequeue, a maintenance phase) records it in the
//! set-aside log and goes on without it. The value stays where it is for
//! an operator to inspect; the log is listed newest first and its entries
//! expire with the retention sweep.
//!
//! Cost: nothing until a value is undecodable; then one reservation in the
//! set-aside log, written with the caller's `set_many`.

use super::keys::Log;
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::{validate_limit, SetAside};
use std::collections::BTreeSet;

/// Add an entry per undecodable `(key, reason)` to `writes`.
pub(crate) fn record<K: KeyValue>(
    q: &KvWorkQueue<K>,
    poison: &[(String, String)],
    writes: &mut Writes,
) -> Result<()> {
    if poison.is_empty() {
        return Ok(());
    }
    q.report_poison(poison);
    let first = q.reserve(Log::SetAside, poison.len() as u64)?;
    let now = q.now();
    for (i, (key, reason)) in poison.iter().enumerate() {
        writes.put(
            q.keys.entry(Log::SetAside, first + i as u64),
            &SetAside {
                key: key.clone(),
                reason: reason.clone(),
                seen_at: now,
            },
        );
    }
    Ok(())
}

/// The most recently set-aside values, newest first, each key once.
pub(crate) fn list<K: KeyValue>(q: &KvWorkQueue<K>, limit: usize) -> Result<Vec<SetAside>> {
    validate_limit(limit)?;
    let tail = q.read_counter(&q.keys.tail(Log::SetAside))?;
    let start = tail.saturating_sub((limit as u64 * 2).max(16));
    let keys: Vec<String> = (start..tail)
        .rev()
        .map(|n| q.keys.entry(Log::SetAside, n))
        .collect();
    let found = q.read_many::<SetAside>(&keys)?;
    let mut seen = BTreeSet::new();
    Ok(keys
        .iter()
        .filter_map(|k| found.values.get(k))
        .filter(|e| seen.insert(e.key.clone()))
        .take(limit)
        .cloned()
        .collect())
}
