//! The simulated store as each host sees it: every operation parks at the
//! scheduler first, then meets the fault it was granted; a store that
//! refuses new keys past a cap; each host's skewed clock.

use super::sched::{Fault, Sched};
use super::trace::Trace;
use spin_work_queue::kv::{CounterEncoding, KeyValue, KvError, ListKeys, MemoryKv, SqliteKv};
use spin_work_queue::Clock;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// Which store a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In memory, counters as 8 little-endian bytes (Spin's SQLite store).
    MemoryLe,
    /// In memory, counters as decimal text (Spin's Redis store).
    MemoryDecimal,
    /// SQLite laid out like Spin's default store.
    Sqlite,
}

impl StoreKind {
    /// Every kind.
    pub const ALL: [StoreKind; 3] = [Self::MemoryLe, Self::MemoryDecimal, Self::Sqlite];

    /// Parse `memory`, `memory-decimal` or `sqlite`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "memory" => Some(Self::MemoryLe),
            "memory-decimal" => Some(Self::MemoryDecimal),
            "sqlite" => Some(Self::Sqlite),
            _ => None,
        }
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::MemoryLe => "memory",
            Self::MemoryDecimal => "memory-decimal",
            Self::Sqlite => "sqlite",
        }
    }

    /// A fresh, empty store.
    pub fn open(self) -> Arc<dyn Inspect> {
        match self {
            Self::MemoryLe => Arc::new(MemoryKv::new()),
            Self::MemoryDecimal => Arc::new(MemoryKv::with_counters(CounterEncoding::Decimal)),
            Self::Sqlite => Arc::new(SqliteKv::in_memory().expect("sqlite")),
        }
    }
}

/// A store whose keys the checker can list.
pub trait Inspect: KeyValue + Send + Sync {
    /// Every key.
    fn all_keys(&self) -> Vec<String>;
}

impl ListKeys for dyn Inspect {
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        Ok(self.all_keys())
    }
}

impl Inspect for MemoryKv {
    fn all_keys(&self) -> Vec<String> {
        self.snapshot().into_keys().collect()
    }
}

impl Inspect for SqliteKv {
    fn all_keys(&self) -> Vec<String> {
        self.keys().expect("keys")
    }
}

/// What every host shares: the scheduler, the store, the trace.
pub struct Shared {
    pub sched: Sched,
    pub store: Arc<dyn Inspect>,
    /// Most keys the store accepts (0: no cap).
    pub key_cap: AtomicUsize,
    pub trace: Mutex<Trace>,
    /// Task ids whose record or heartbeat was written since the checker
    /// last looked.
    pub touched: Mutex<BTreeSet<String>>,
}

impl Shared {
    /// `store` under `sched`, with no key cap and nothing traced yet.
    pub fn new(sched: Sched, store: Arc<dyn Inspect>) -> Arc<Self> {
        Arc::new(Self {
            sched,
            store,
            key_cap: Default::default(),
            trace: Mutex::new(Trace::default()),
            touched: Mutex::default(),
        })
    }

    fn note_written(&self, keys: &[&str]) {
        let mut touched = self.touched.lock().unwrap();
        for k in keys {
            let id = k.strip_prefix("wq/t/").or_else(|| k.strip_prefix("wq/h/"));
            if let Some(id) = id {
                touched.insert(id.to_string());
            }
        }
    }

    /// Refuse writes that would make the store hold more than the cap.
    fn within_cap(&self, keys: &[&str]) -> Result<(), KvError> {
        let cap = self.key_cap.load(SeqCst);
        if cap == 0 {
            return Ok(());
        }
        let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let existing = self.store.get_many(&owned)?.len();
        let fresh = owned.iter().collect::<BTreeSet<_>>().len() - existing;
        if fresh > 0 && self.store.all_keys().len() + fresh > cap {
            return Err(KvError::Rejected(format!("store full ({cap} keys)")));
        }
        Ok(())
    }
}

/// Host `host`'s handle on the store.
pub struct SimKv {
    pub host: usize,
    pub shared: Arc<Shared>,
    /// The current request died: its operations fail until it ends.
    pub tripped: AtomicBool,
}

impl SimKv {
    /// One operation: `writes` are the keys it changes, `creates` those
    /// it may add (checked against the cap).
    fn op<T>(
        &self,
        desc: String,
        writes: &[&str],
        creates: &[&str],
        apply: impl FnOnce(&dyn Inspect) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        if self.tripped.load(SeqCst) {
            return Err(KvError::Unavailable("the request died".into()));
        }
        let s = &self.shared;
        let fault = s.sched.park(self.host, desc.clone(), !writes.is_empty());
        let run = |apply: Box<dyn FnOnce() -> Result<T, KvError> + '_>| {
            s.within_cap(creates)?;
            let r = apply();
            if r.is_ok() {
                s.note_written(writes);
            }
            r
        };
        let apply = Box::new(|| apply(&*s.store));
        let injected = || KvError::Unavailable("injected fault".into());
        let result = match fault {
            Fault::None => run(apply),
            Fault::Before => Err(injected()),
            Fault::After => run(apply).and(Err(injected())),
            Fault::Crash { applied } => {
                self.tripped.store(true, SeqCst);
                if applied {
                    let _ = run(apply);
                }
                Err(injected())
            }
        };
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("err: {e}"),
        };
        s.trace.lock().unwrap().op(
            s.sched.steps(),
            s.sched.now(),
            self.host,
            &desc,
            fault,
            &outcome,
        );
        result
    }
}

fn short(keys: &[String]) -> String {
    match keys {
        [] => "[]".into(),
        [k] => k.clone(),
        [k, ..] => format!("{k} +{}", keys.len() - 1),
    }
}

impl KeyValue for SimKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.op(format!("get {key}"), &[], &[], |s| s.get(key))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.op(format!("set {key}"), &[key], &[key], |s| s.set(key, value))
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.op(format!("delete {key}"), &[key], &[], |s| s.delete(key))
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        self.op(format!("get_many {}", short(keys)), &[], &[], |s| {
            s.get_many(keys)
        })
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let desc = if std::env::var_os("SIM_FULL_KEYS").is_some() {
            format!("set_many {keys:?}")
        } else {
            format!("set_many {}", short(&keys))
        };
        self.op(desc, &refs, &refs, |s| s.set_many(pairs))
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let desc = if std::env::var_os("SIM_FULL_KEYS").is_some() {
            format!("delete_many {keys:?}")
        } else {
            format!("delete_many {}", short(keys))
        };
        self.op(desc, &refs, &[], |s| s.delete_many(keys))
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.op(format!("increment {key} {delta}"), &[key], &[key], |s| {
            s.increment(key, delta)
        })
    }
}

impl ListKeys for SimKv {
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        self.op("list_keys".to_string(), &[], &[], |s| Ok(s.all_keys()))
    }
}

/// Host `host`'s clock: the global virtual time plus its skew.
pub struct SimClock {
    pub host: usize,
    pub shared: Arc<Shared>,
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.shared.sched.clock(self.host)
    }

    /// Sleeping is virtual time passing while the others run.
    fn sleep_ms(&self, ms: u64) -> bool {
        self.shared.sched.sleep(self.host, ms);
        true
    }
}
