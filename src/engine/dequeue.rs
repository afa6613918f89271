//! Dequeue.
use super::KvWorkQueue;
use crate::{kv::KeyValue, DequeueRequest, LeasedTask, Result};
pub(crate) fn run<K: KeyValue>(_q: &KvWorkQueue<K>, _req: &DequeueRequest) -> Result<Vec<LeasedTask>> { todo!() }
