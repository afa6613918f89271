//! [`FaultyKv`]: a wrapper that makes a chosen operation fail, to crash a
//! request at every step of its work.

use super::{KeyValue, KvError};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::SeqCst};

/// What happens at the faulty operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The operation is not applied and returns an error (the request died
    /// before the store saw it).
    Before,
    /// The operation is applied, then returns an error (the request died
    /// after the store committed, before it heard back).
    After,
}

/// Forwards operations to `inner` and, once armed, fails the k-th
/// operation (1-based, counting every call) and — like a dead process —
/// every operation after it, until [`heal`](FaultyKv::heal)ed.
#[derive(Debug)]
pub struct FaultyKv<K> {
    inner: K,
    ops: AtomicU64,
    fail_at: AtomicU64,
    mode: AtomicU8,
    tripped: AtomicBool,
}

impl<K> FaultyKv<K> {
    /// A wrapper that fails nothing until armed.
    pub fn new(inner: K) -> Self {
        Self {
            inner,
            ops: AtomicU64::new(0),
            fail_at: AtomicU64::new(u64::MAX),
            mode: AtomicU8::new(0),
            tripped: AtomicBool::new(false),
        }
    }

    /// Fail the `k`-th operation from now (1-based) and all after it.
    pub fn arm(&self, k: u64, mode: FaultMode) {
        self.mode.store(mode as u8, SeqCst);
        self.tripped.store(false, SeqCst);
        self.ops.store(0, SeqCst);
        self.fail_at.store(k.max(1), SeqCst);
    }

    /// Stop failing and reset the operation count.
    pub fn heal(&self) {
        self.fail_at.store(u64::MAX, SeqCst);
        self.ops.store(0, SeqCst);
    }

    /// Operations seen since the last [`arm`](Self::arm) or [`heal`](Self::heal).
    pub fn ops(&self) -> u64 {
        self.ops.load(SeqCst)
    }

    /// True once the armed fault has fired.
    pub fn tripped(&self) -> bool {
        self.tripped.load(SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    pub(super) fn call<T>(&self, op: impl FnOnce() -> Result<T, KvError>) -> Result<T, KvError> {
        let n = self.ops.fetch_add(1, SeqCst) + 1;
        let k = self.fail_at.load(SeqCst);
        if n < k {
            return op();
        }
        self.tripped.store(true, SeqCst);
        if n == k && self.mode.load(SeqCst) == FaultMode::After as u8 {
            op()?;
        }
        Err(KvError::Injected(n))
    }
}

impl<K: KeyValue> KeyValue for FaultyKv<K> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.call(|| self.inner.get(key))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.call(|| self.inner.set(key, value))
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.call(|| self.inner.delete(key))
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        self.call(|| self.inner.get_many(keys))
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.call(|| self.inner.set_many(pairs))
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        self.call(|| self.inner.delete_many(keys))
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.call(|| self.inner.increment(key, delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    #[test]
    fn fails_the_kth_operation_and_every_one_after() {
        let kv = FaultyKv::new(MemoryKv::new());
        kv.arm(2, FaultMode::Before);
        kv.set("a", b"1").unwrap();
        assert_eq!(kv.set("b", b"2"), Err(KvError::Injected(2)));
        assert!(kv.get("a").is_err());
        kv.heal();
        assert_eq!(kv.get("b").unwrap(), None);
        assert_eq!(kv.get("a").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn after_mode_applies_the_operation_before_failing() {
        let kv = FaultyKv::new(MemoryKv::new());
        kv.arm(1, FaultMode::After);
        assert!(kv.increment("c", 3).is_err());
        kv.heal();
        assert_eq!(kv.increment("c", 0).unwrap(), 3);
    }
}
