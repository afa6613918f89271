//! Results.
use super::KvWorkQueue;
use crate::{kv::KeyValue, Result};
use serde_json::Value;
pub(crate) fn run<K: KeyValue>(_q: &KvWorkQueue<K>, _pid: &str) -> Result<Vec<(String, Value)>> { todo!() }
