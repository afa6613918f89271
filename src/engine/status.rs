//! Status.
use super::KvWorkQueue;
use crate::{kv::KeyValue, Result, TaskInfo};
pub(crate) fn info<K: KeyValue>(_q: &KvWorkQueue<K>, _id: &str) -> Result<Option<TaskInfo>> { todo!() }
pub(crate) fn current_lease<K: KeyValue>(_q: &KvWorkQueue<K>, _id: &str) -> Result<String> { todo!() }
