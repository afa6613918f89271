//! [`SqliteKv`]: SQLite laid out and committed like Spin's default
//! key-value store (crate `key-value-spin`), for native tests and
//! benchmarks that must pay the same write-commit cost as `spin up`.

use super::{KeyValue, KvError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// One SQLite connection behind a mutex, as Spin has it: every operation of
/// every caller is serialised; `set`, `delete` and `increment` each commit
/// their own transaction, `set_many` commits one transaction for all pairs,
/// and counters are stored as 8 little-endian bytes. SQLite's default
/// settings (rollback journal, `synchronous=FULL`), as Spin uses them.
#[derive(Debug)]
pub struct SqliteKv {
    conn: Mutex<Connection>,
    store: String,
}

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                      ON CONFLICT(store, key) DO UPDATE SET value = excluded.value";

impl SqliteKv {
    /// Open (or create) the database file at `path`, store label `default`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, KvError> {
        Self::from_connection(Connection::open(path).map_err(unavailable)?, "default")
    }

    /// A private in-memory database (no disk commits; for fast tests).
    pub fn in_memory() -> Result<Self, KvError> {
        Self::from_connection(
            Connection::open_in_memory().map_err(unavailable)?,
            "default",
        )
    }

    /// Use `conn`, storing under the store label `store`.
    pub fn from_connection(conn: Connection, store: &str) -> Result<Self, KvError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                 store TEXT NOT NULL,
                 key   TEXT NOT NULL,
                 value BLOB NOT NULL,
                 PRIMARY KEY (store, key)
             )",
        )
        .map_err(unavailable)?;
        Ok(Self {
            conn: Mutex::new(conn),
            store: store.to_string(),
        })
    }

    /// Every key of this store, in order (an O(all keys) scan, for tests
    /// and inspection — never on a queue's path).
    pub fn keys(&self) -> Result<Vec<String>, KvError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(params![self.store], |r| r.get::<_, String>(0))
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unavailable(e: rusqlite::Error) -> KvError {
    KvError::Unavailable(e.to_string())
}

impl KeyValue for SqliteKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.lock()
            .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")
            .and_then(|mut s| {
                s.query_row(params![self.store, key], |r| r.get(0))
                    .optional()
            })
            .map_err(unavailable)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.lock()
            .prepare_cached(UPSERT)
            .and_then(|mut s| s.execute(params![self.store, key, value]))
            .map(drop)
            .map_err(unavailable)
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.lock()
            .prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")
            .and_then(|mut s| s.execute(params![self.store, key]))
            .map(drop)
            .map_err(unavailable)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        let conn = self.lock();
        let mut out = Vec::with_capacity(keys.len());
        // One statement per chunk, bounded by SQLite's parameter limit.
        for chunk in keys.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT key, value FROM spin_key_value WHERE store = ? AND key IN ({marks})"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
            let params = std::iter::once(&self.store).chain(chunk.iter());
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(unavailable)?;
            for row in rows {
                out.push(row.map_err(unavailable)?);
            }
        }
        Ok(out)
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        {
            let mut stmt = tx.prepare_cached(UPSERT).map_err(unavailable)?;
            for (k, v) in pairs {
                stmt.execute(params![self.store, k, v])
                    .map_err(unavailable)?;
            }
        }
        tx.commit().map_err(unavailable)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")
                .map_err(unavailable)?;
            for k in keys {
                stmt.execute(params![self.store, k]).map_err(unavailable)?;
            }
        }
        tx.commit().map_err(unavailable)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        let current: Option<Vec<u8>> = tx
            .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")
            .and_then(|mut s| {
                s.query_row(params![self.store, key], |r| r.get(0))
                    .optional()
            })
            .map_err(unavailable)?;
        let current = match current {
            None => 0,
            // Spin panics here (poisoning the store); we refuse instead.
            Some(bytes) => i64::from_le_bytes(bytes.try_into().map_err(|_| {
                KvError::Rejected(format!("increment of {key}: value is not a counter"))
            })?),
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::Rejected(format!("increment of {key} overflows")))?;
        tx.prepare_cached(UPSERT)
            .and_then(|mut s| s.execute(params![self.store, key, next.to_le_bytes().to_vec()]))
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(next)
    }
}

impl super::ListKeys for SqliteKv {
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(params![self.store], |r| r.get::<_, String>(0))
            .map_err(unavailable)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_store() {
        let kv = SqliteKv::in_memory().unwrap();
        assert_eq!(kv.get("a").unwrap(), None);
        kv.set_many(&[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())])
            .unwrap();
        let mut got = kv.get_many(&["a".into(), "b".into(), "c".into()]).unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]
        );
        kv.delete("a").unwrap();
        assert_eq!(kv.get("a").unwrap(), None);
        assert_eq!(kv.increment("n", 5).unwrap(), 5);
        assert_eq!(kv.get("n").unwrap().unwrap(), 5i64.to_le_bytes().to_vec());
        assert!(kv.increment("b", 1).is_err());
    }

    #[test]
    fn data_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        SqliteKv::open(&path).unwrap().set("k", b"v").unwrap();
        assert_eq!(
            SqliteKv::open(&path).unwrap().get("k").unwrap(),
            Some(b"v".to_vec())
        );
    }
}
