//! [`HookKv`]: a store handle that, at a chosen operation of its own,
//! runs something else first — another host's whole request, time passing
//! — so that a test can place one interleaving exactly.

use spin_work_queue::kv::{KeyValue, KvError};
use std::sync::Mutex;

/// Which operation triggers the hook.
#[derive(Clone)]
pub struct When {
    /// The operation's name (`get`, `get_many`, `set`, `set_many`,
    /// `delete`, `delete_many`, `increment`).
    pub op: &'static str,
    /// A key the operation touches must start with this.
    pub key_prefix: String,
    /// Run before the operation (else after it applied).
    pub before: bool,
    /// Then fail the operation (it does not apply), as a request that died
    /// at it (only with `before`).
    pub fail: bool,
}

type Hook = Box<dyn FnOnce() + Send>;

/// Forwards to `inner`; the first operation matching `when` runs the hook
/// (once).
pub struct HookKv<K> {
    inner: K,
    armed: Mutex<Option<(When, Hook)>>,
}

impl<K> HookKv<K> {
    pub fn new(inner: K) -> Self {
        Self {
            inner,
            armed: Mutex::new(None),
        }
    }

    /// Run `hook` at the next operation matching `when`.
    pub fn arm(&self, when: When, hook: impl FnOnce() + Send + 'static) {
        *self.armed.lock().unwrap() = Some((when, Box::new(hook)));
    }

    /// Whether the hook has not run yet.
    pub fn armed(&self) -> bool {
        self.armed.lock().unwrap().is_some()
    }

    /// Run the hook if `op` matches; `true` when the operation must fail.
    fn fire(&self, op: &str, keys: &[&str], before: bool) -> bool {
        let hook = {
            let mut armed = self.armed.lock().unwrap();
            let matches = armed.as_ref().is_some_and(|(w, _)| {
                w.op == op
                    && w.before == before
                    && keys.iter().any(|k| k.starts_with(&w.key_prefix))
            });
            if !matches {
                return false;
            }
            armed.take()
        };
        match hook {
            Some((w, h)) => {
                h();
                w.fail
            }
            None => false,
        }
    }

    fn around<T>(
        &self,
        op: &str,
        keys: &[&str],
        f: impl FnOnce() -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        if self.fire(op, keys, true) {
            return Err(KvError::Injected(0));
        }
        let r = f();
        self.fire(op, keys, false);
        r
    }
}

impl<K: KeyValue> KeyValue for HookKv<K> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.around("get", &[key], || self.inner.get(key))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.around("set", &[key], || self.inner.set(key, value))
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.around("delete", &[key], || self.inner.delete(key))
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.around("get_many", &refs, || self.inner.get_many(keys))
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        let refs: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        self.around("set_many", &refs, || self.inner.set_many(pairs))
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.around("delete_many", &refs, || self.inner.delete_many(keys))
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.around("increment", &[key], || self.inner.increment(key, delta))
    }
}

/// The operation `op` on a key starting with `key_prefix`, before it
/// applies (`before`) or after.
pub fn when(op: &'static str, key_prefix: &str, before: bool) -> When {
    When {
        op,
        key_prefix: key_prefix.to_string(),
        before,
        fail: false,
    }
}

/// The same, and the operation then fails without applying.
pub fn failing(op: &'static str, key_prefix: &str) -> When {
    When {
        fail: true,
        ..when(op, key_prefix, true)
    }
}
