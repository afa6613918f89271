//! Enqueue.
use super::KvWorkQueue;
use crate::{kv::KeyValue, Enqueued, NewTask, Result};
pub(crate) fn run<K: KeyValue>(_q: &KvWorkQueue<K>, _tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> { todo!() }
