//! Stats.
use super::KvWorkQueue;
use crate::{kv::KeyValue, QueueStats, Result};
pub(crate) fn run<K: KeyValue>(_q: &KvWorkQueue<K>) -> Result<QueueStats> { todo!() }
