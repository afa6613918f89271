//! Maintenance.
use super::KvWorkQueue;
use crate::{kv::KeyValue, RescueReport, Result};
pub(crate) fn run<K: KeyValue>(_q: &KvWorkQueue<K>, _forced: bool) -> Result<RescueReport> { todo!() }
