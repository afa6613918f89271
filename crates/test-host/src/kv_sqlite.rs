//! The default key-value store: one SQLite file, with Spin's semantics.
//!
//! Mirrors Spin's `key-value-spin` crate on purpose, no stronger: one
//! process-wide connection behind a mutex (every KV call of every request is
//! serialised), SQLite's default settings, one table
//! `spin_key_value(store, key, value)` holding every store label, each
//! `set`/`delete`/`increment` its own commit, `set-many` one transaction,
//! `get-many` leaving missing keys out, `increment` storing i64 little-endian.

use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use rusqlite::{named_params, params, Connection, OptionalExtension};

use crate::HostError;

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
                      ON CONFLICT(store, key) DO UPDATE SET value=$3";
const SELECT_ONE: &str = "SELECT value FROM spin_key_value WHERE store=$1 AND key=$2";

/// The SQLite-backed store shared by all components and requests of a host.
pub struct SqliteKv {
    conn: Arc<Mutex<Connection>>,
    _temp: Option<tempfile::TempPath>,
}

impl SqliteKv {
    /// Opens (creating if needed) the store at `path`, or a fresh temporary
    /// file (deleted when the host stops) when `path` is `None`.
    pub fn open(path: Option<&Path>) -> Result<Self, HostError> {
        let (temp, path) = match path {
            Some(p) => (None, p.to_path_buf()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("wq-test-host-kv-")
                    .suffix(".db")
                    .tempfile()
                    .map_err(|e| HostError::Kv(format!("cannot create temp file: {e}")))?
                    .into_temp_path();
                let p = t.to_path_buf();
                (Some(t), p)
            }
        };
        let conn = Connection::open(&path)
            .map_err(|e| HostError::Kv(format!("cannot open {}: {e}", path.display())))?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
            [],
        )
        .map_err(|e| HostError::Kv(format!("cannot create table: {e}")))?;
        rusqlite::vtab::array::load_module(&conn)
            .map_err(|e| HostError::Kv(format!("cannot load array module: {e}")))?;
        Ok(SqliteKv {
            conn: Arc::new(Mutex::new(conn)),
            _temp: temp,
        })
    }

    /// Runs `f` on the connection in the blocking thread pool.
    pub(crate) async fn run<R, F>(&self, f: F) -> Result<R, String>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, String> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| format!("sqlite task failed: {e}"))?
    }

    /// `get`.
    pub async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let (store, key) = (store.to_string(), key.to_string());
        self.run(move |c| {
            c.prepare_cached(SELECT_ONE)
                .and_then(|mut s| s.query_row(params![store, key], |r| r.get(0)).optional())
                .map_err(sql_err)
        })
        .await
    }

    /// `set`: one autocommit upsert.
    pub async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<(), String> {
        let (store, key) = (store.to_string(), key.to_string());
        self.run(move |c| {
            c.prepare_cached(UPSERT)
                .and_then(|mut s| s.execute(params![store, key, value]))
                .map(drop)
                .map_err(sql_err)
        })
        .await
    }

    /// `delete`: one autocommit delete.
    pub async fn delete(&self, store: &str, key: &str) -> Result<(), String> {
        let (store, key) = (store.to_string(), key.to_string());
        self.run(move |c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store=$1 AND key=$2")
                .and_then(|mut s| s.execute(params![store, key]))
                .map(drop)
                .map_err(sql_err)
        })
        .await
    }

    /// `exists`.
    pub async fn exists(&self, store: &str, key: &str) -> Result<bool, String> {
        let (store, key) = (store.to_string(), key.to_string());
        self.run(move |c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store=$1 AND key=$2 LIMIT 1")
                .and_then(|mut s| s.exists(params![store, key]))
                .map_err(sql_err)
        })
        .await
    }

    /// `list-keys`: every key of the store label.
    pub async fn keys(&self, store: &str) -> Result<Vec<String>, String> {
        let store = store.to_string();
        self.run(move |c| {
            let mut s = c
                .prepare_cached("SELECT key FROM spin_key_value WHERE store=$1")
                .map_err(sql_err)?;
            let rows = s
                .query_map(params![store], |r| r.get::<_, String>(0))
                .map_err(sql_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
        })
        .await
    }

    /// `get-many`: only the keys that exist, in the order SQLite returns them.
    pub async fn get_many(
        &self,
        store: &str,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, String> {
        let store = store.to_string();
        self.run(move |c| {
            let keys = Rc::new(
                keys.into_iter()
                    .map(rusqlite::types::Value::from)
                    .collect::<Vec<_>>(),
            );
            let mut s = c
                .prepare_cached(
                    "SELECT key, value FROM spin_key_value WHERE store=:store AND key IN rarray(:keys)",
                )
                .map_err(sql_err)?;
            let rows = s
                .query_map(named_params! {":store": store, ":keys": keys}, |r| {
                    Ok((r.get::<_, String>(0)?, Some(r.get::<_, Vec<u8>>(1)?)))
                })
                .map_err(sql_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
        })
        .await
    }

    /// `set-many`: one transaction for all pairs.
    pub async fn set_many(&self, store: &str, pairs: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        let store = store.to_string();
        self.run(move |c| {
            let tx = c.transaction().map_err(sql_err)?;
            {
                let mut s = tx.prepare_cached(UPSERT).map_err(sql_err)?;
                for (k, v) in pairs {
                    s.execute(params![store, k, v]).map_err(sql_err)?;
                }
            }
            tx.commit().map_err(sql_err)
        })
        .await
    }

    /// `delete-many`: one statement.
    pub async fn delete_many(&self, store: &str, keys: Vec<String>) -> Result<(), String> {
        let store = store.to_string();
        self.run(move |c| {
            let keys = Rc::new(
                keys.into_iter()
                    .map(rusqlite::types::Value::from)
                    .collect::<Vec<_>>(),
            );
            c.prepare_cached(
                "DELETE FROM spin_key_value WHERE store=:store AND key IN rarray(:keys)",
            )
            .and_then(|mut s| s.execute(named_params! {":store": store, ":keys": keys}))
            .map(drop)
            .map_err(sql_err)
        })
        .await
    }

    /// `increment`: read and write in one transaction; the value is an i64
    /// stored as 8 little-endian bytes. A value of another length is an error
    /// (Spin panics there).
    pub async fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, String> {
        let (store, key) = (store.to_string(), key.to_string());
        self.run(move |c| {
            let tx = c.transaction().map_err(sql_err)?;
            let current: Option<Vec<u8>> = tx
                .prepare_cached(SELECT_ONE)
                .and_then(|mut s| s.query_row(params![store, key], |r| r.get(0)).optional())
                .map_err(sql_err)?;
            let current = match current {
                None => 0,
                Some(bytes) => {
                    let arr: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                        format!(
                            "increment: value of `{key}` is {} bytes, not an 8-byte little-endian i64 \
                             (Spin panics here)",
                            bytes.len()
                        )
                    })?;
                    i64::from_le_bytes(arr)
                }
            };
            let new = current.wrapping_add(delta);
            tx.prepare_cached(UPSERT)
                .and_then(|mut s| s.execute(params![store, key, new.to_le_bytes().to_vec()]))
                .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
            Ok(new)
        })
        .await
    }

    /// CAS `swap`. With `expected = Some(old)` (the value `current` read) it is
    /// a conditional autocommit UPDATE that succeeds only if the value is still
    /// `old`; with `None` it is a plain upsert that always succeeds, like Spin.
    /// Returns whether the swap took effect.
    pub async fn swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, String> {
        let (store, key) = (store.to_string(), key.to_string());
        self.run(move |c| {
            let changed = match expected {
                Some(old) => c
                    .prepare_cached(
                        "UPDATE spin_key_value SET value=:new WHERE store=:store AND key=:key AND value=:old",
                    )
                    .and_then(|mut s| {
                        s.execute(named_params! {":new": value, ":store": store, ":key": key, ":old": old})
                    })
                    .map_err(sql_err)?,
                None => {
                    let tx = c.transaction().map_err(sql_err)?;
                    let n = tx
                        .prepare_cached(UPSERT)
                        .and_then(|mut s| s.execute(params![store, key, value]))
                        .map_err(sql_err)?;
                    tx.commit().map_err(sql_err)?;
                    n
                }
            };
            Ok(changed == 1)
        })
        .await
    }
}

pub(crate) fn sql_err(e: rusqlite::Error) -> String {
    format!("sqlite: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cas_is_conditional_only_after_a_read() {
        let kv = SqliteKv::open(None).unwrap();
        // absent key, nothing read: blind upsert, always succeeds
        assert!(kv.swap("s", "k", None, b"a".to_vec()).await.unwrap());
        assert!(kv.swap("s", "k", None, b"b".to_vec()).await.unwrap());
        // conditional on the value read
        assert!(!kv
            .swap("s", "k", Some(b"a".to_vec()), b"c".to_vec())
            .await
            .unwrap());
        assert!(kv
            .swap("s", "k", Some(b"b".to_vec()), b"c".to_vec())
            .await
            .unwrap());
        assert_eq!(kv.get("s", "k").await.unwrap(), Some(b"c".to_vec()));
        // labels are separate
        assert_eq!(kv.get("t", "k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn increment_and_batches() {
        let kv = SqliteKv::open(None).unwrap();
        assert_eq!(kv.increment("s", "n", 3).await.unwrap(), 3);
        assert_eq!(
            kv.get("s", "n").await.unwrap(),
            Some(3i64.to_le_bytes().to_vec())
        );
        kv.set_many(
            "s",
            vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())],
        )
        .await
        .unwrap();
        let mut got = kv
            .get_many("s", vec!["a".into(), "zz".into(), "b".into()])
            .await
            .unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("a".into(), Some(b"1".to_vec())),
                ("b".into(), Some(b"2".to_vec()))
            ]
        );
        kv.delete_many("s", vec!["a".into(), "n".into()])
            .await
            .unwrap();
        assert_eq!(kv.keys("s").await.unwrap(), vec!["b".to_string()]);
        assert!(kv.increment("s", "b", 1).await.is_err());
    }
}
