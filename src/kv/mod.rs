//! The storage seam: a tiny [`KeyValue`] trait with the seven operations of
//! `wasi:keyvalue` the engine uses, and its implementations.
//!
//! | implementation | what it is for |
//! | --- | --- |
//! | [`MemoryKv`] | in-memory, thread-safe; tests and the in-process engine |
//! | [`SqliteKv`] | native SQLite laid out and committed exactly like Spin's default store (not on `wasm32`) |
//! | [`CountingKv`] | wrapper counting reads and write commits (benchmarks, cost tests) |
//! | [`FaultyKv`] | wrapper failing the k-th operation (crash tests) |

mod counting;
mod faulty;
mod list;
mod memory;
#[cfg(not(target_arch = "wasm32"))]
mod sqlite;

pub use counting::{CountingKv, KvCounts};
pub use faulty::{FaultMode, FaultyKv};
pub use list::{ListKeys, StoreKv};
pub use memory::{CounterEncoding, MemoryKv};
#[cfg(not(target_arch = "wasm32"))]
pub use sqlite::SqliteKv;

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The store could not be reached or failed; the operation may be retried.
    #[error("key-value store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the operation (value too large, key not allowed,
    /// `increment` on a value that is not a counter…).
    #[error("key-value store rejected the operation: {0}")]
    Rejected(String),
    /// A fault injected by [`FaultyKv`].
    #[error("injected fault at key-value operation #{0}")]
    Injected(u64),
}

/// A key-value store with the semantics of Spin's `wasi:keyvalue`
/// (`store`, `atomics`, `batch`).
///
/// # Atomicity contract
///
/// - Each call is atomic on its own: it happens entirely or not at all.
///   `set`, `delete` and `increment` are each one write commit; `set_many`
///   is one write commit for all its pairs.
/// - [`increment`](KeyValue::increment) is the **only** read-modify-write
///   primitive: concurrent increments of one key never lose an update, and
///   each caller sees the value its own delta produced. An absent key counts
///   as 0. Counter keys are never written with `set`, and value keys are
///   never incremented; read a counter with [`read_counter`].
/// - Nothing else orders concurrent callers: two `set`s of one key race and
///   the last one wins. There is no compare-and-swap.
/// - `get_many` returns only the keys that exist, in any order.
/// - `delete_many` removes every listed key in one commit (absent keys are
///   fine), like `set_many`.
///
/// Implementations are synchronous: every backend the queue targets
/// (Spin's host calls, SQLite, an in-memory map) answers without awaiting.
pub trait KeyValue {
    /// The value of `key`, `None` when absent.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Write `value` at `key` (one commit).
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Remove `key`; removing an absent key succeeds (one commit).
    fn delete(&self, key: &str) -> Result<(), KvError>;
    /// The existing keys among `keys` with their values; absent keys are
    /// left out.
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError>;
    /// Write every pair in one commit.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError>;
    /// Remove every key in one commit; absent keys are skipped.
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError>;
    /// Atomically add `delta` to the counter at `key` and return the new
    /// value (one commit).
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError>;
}

impl<K: KeyValue + ?Sized> KeyValue for std::sync::Arc<K> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        (**self).set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        (**self).delete(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        (**self).get_many(keys)
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        (**self).set_many(pairs)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        (**self).delete_many(keys)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        (**self).increment(key, delta)
    }
}

/// Decode a counter as Spin's backends store it: 8 little-endian bytes
/// (the default SQLite store) or a decimal string (Redis `INCRBY`).
///
/// A value that is all ASCII digits reads as decimal: as little-endian bytes
/// it would exceed 3·10¹⁸, which no counter of this queue reaches.
///
/// ```
/// use spin_work_queue::kv::decode_counter;
/// assert_eq!(decode_counter(&42i64.to_le_bytes()), Some(42));
/// assert_eq!(decode_counter(b"42"), Some(42));
/// assert_eq!(decode_counter(b"12345678"), Some(12_345_678));
/// assert_eq!(decode_counter(b"{}"), None);
/// ```
pub fn decode_counter(bytes: &[u8]) -> Option<i64> {
    let digits = match bytes.split_first() {
        Some((b'-', rest)) => rest,
        _ => bytes,
    };
    if !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(bytes).ok()?.parse().ok();
    }
    let le: [u8; 8] = bytes.try_into().ok()?;
    Some(i64::from_le_bytes(le))
}

/// Read a counter without writing: one `get`, decoded with
/// [`decode_counter`]. Only a value in an unknown encoding costs an
/// `increment(key, 0)`, which every backend answers correctly.
///
/// This keeps counter reads (the queue's cursors) at read cost — about
/// 12 µs on Spin's SQLite store instead of a ~1 ms write commit.
pub fn read_counter<K: KeyValue + ?Sized>(kv: &K, key: &str) -> Result<i64, KvError> {
    match kv.get(key)? {
        None => Ok(0),
        Some(bytes) => match decode_counter(&bytes) {
            Some(n) => Ok(n),
            None => kv.increment(key, 0),
        },
    }
}

/// Split `len` keys into the fewest chunks of at most `max` keys, as even
/// as possible: `[0..250, 250..501]` for 501 keys in chunks of 500 or
/// fewer. With `max >= 4`, no chunk of two or more keys is ever cut
/// down to a single key — the shape of `get-many` that crashes Spin's
/// Redis backend.
///
/// ```
/// use spin_work_queue::kv::even_chunks;
/// let sizes: Vec<usize> = even_chunks(501, 500).map(|r| r.len()).collect();
/// assert_eq!(sizes, [250, 251]);
/// assert_eq!(even_chunks(0, 500).count(), 0);
/// ```
pub fn even_chunks(len: usize, max: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let max = max.max(1);
    let count = len.div_ceil(max);
    (0..count).map(move |i| (len * i / count)..(len * (i + 1) / count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_read_back_in_both_encodings() {
        for kv in [
            MemoryKv::new(),
            MemoryKv::with_counters(CounterEncoding::Decimal),
        ] {
            assert_eq!(read_counter(&kv, "c").unwrap(), 0);
            kv.increment("c", 41).unwrap();
            kv.increment("c", 1).unwrap();
            assert_eq!(read_counter(&kv, "c").unwrap(), 42);
        }
    }

    #[test]
    fn negative_and_large_counters_decode() {
        assert_eq!(decode_counter(b"-7"), Some(-7));
        assert_eq!(decode_counter(&(-7i64).to_le_bytes()), Some(-7));
        assert_eq!(decode_counter(&(1i64 << 40).to_le_bytes()), Some(1 << 40));
        assert_eq!(decode_counter(b""), None);
    }

    #[test]
    fn even_chunks_cover_every_key_once_and_never_leave_one_alone() {
        for max in [4, 5, 64, 500] {
            for len in 0..=(3 * max + 2) {
                let chunks: Vec<_> = even_chunks(len, max).collect();
                assert_eq!(chunks.len(), len.div_ceil(max), "len {len} max {max}");
                let mut next = 0;
                for c in &chunks {
                    assert_eq!(c.start, next, "contiguous: len {len} max {max}");
                    assert!(c.len() <= max, "too big: len {len} max {max}");
                    assert!(len < 2 || c.len() >= 2, "lone key: len {len} max {max}");
                    next = c.end;
                }
                assert_eq!(next, len);
            }
        }
    }
}
