//! Ack.
use super::KvWorkQueue;
use crate::{kv::KeyValue, Ack, Result, TaskStatus};
use serde_json::Value;
pub(crate) fn run_one<K: KeyValue>(_q: &KvWorkQueue<K>, _id: &str, _lease: &str, _output: Value) -> Result<TaskStatus> { todo!() }
pub(crate) fn run<K: KeyValue>(_q: &KvWorkQueue<K>, _acks: Vec<Ack>) -> Result<Vec<Result<TaskStatus>>> { todo!() }
