//! Heartbeat.
use super::KvWorkQueue;
use crate::{kv::KeyValue, Result};
pub(crate) fn run<K: KeyValue>(_q: &KvWorkQueue<K>, _id: &str, _lease: &str, _ms: Option<u64>) -> Result<u64> { todo!() }
