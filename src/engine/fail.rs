//! Fail.
use super::KvWorkQueue;
use crate::{kv::KeyValue, Result, TaskStatus};
pub(crate) fn run<K: KeyValue>(_q: &KvWorkQueue<K>, _id: &str, _lease: &str, _error: &str, _retryable: bool) -> Result<TaskStatus> { todo!() }
