//! Dead letters.
use super::KvWorkQueue;
use crate::{kv::KeyValue, DeadLetterEntry, Result, TaskStatus};
pub(crate) fn list<K: KeyValue>(_q: &KvWorkQueue<K>, _limit: usize) -> Result<Vec<DeadLetterEntry>> { todo!() }
pub(crate) fn redrive<K: KeyValue>(_q: &KvWorkQueue<K>, _id: &str) -> Result<TaskStatus> { todo!() }
