//! A replicated store, emulated: every write a host makes is also logged
//! with its time and writer, and a host reads the newest version that is
//! its own or at least `lag` old — so two hosts sharing one SQLite file
//! see each other's writes `lag` late, as readers in different regions of a
//! globally replicated store do (Akamai Functions). A host always reads its
//! own writes.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::params;

use crate::kv_sqlite::{sql_err, SqliteKv};

/// This host's view of the replicated store.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Who writes (unique per host process).
    pub writer: String,
    /// How late another writer's writes are seen, in milliseconds.
    pub lag_ms: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS wq_replica_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL, key TEXT NOT NULL, value BLOB,
    written_at INTEGER NOT NULL, writer TEXT NOT NULL)";

const VISIBLE: &str = "SELECT value FROM wq_replica_log
    WHERE store=$1 AND key=$2 AND (writer=$3 OR written_at<=$4)
    ORDER BY seq DESC LIMIT 1";

impl Replica {
    /// Log writes (`None`: a delete) of `store`.
    pub async fn log(
        &self,
        kv: &SqliteKv,
        store: &str,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), String> {
        let (store, writer) = (store.to_string(), self.writer.clone());
        kv.run(move |c| {
            c.execute(CREATE, []).map_err(sql_err)?;
            let tx = c.transaction().map_err(sql_err)?;
            let at = now_ms();
            for (key, value) in writes {
                tx.execute(
                    "INSERT INTO wq_replica_log (store, key, value, written_at, writer)
                     VALUES ($1, $2, $3, $4, $5)",
                    params![store, key, value, at, writer],
                )
                .map_err(sql_err)?;
            }
            tx.commit().map_err(sql_err)
        })
        .await
    }

    /// The value of `key` as this host sees it.
    pub async fn get(
        &self,
        kv: &SqliteKv,
        store: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        let mut found = self.get_many(kv, store, vec![key.to_string()]).await?;
        Ok(found.pop().and_then(|(_, v)| v))
    }

    /// The values of `keys` as this host sees them.
    pub async fn get_many(
        &self,
        kv: &SqliteKv,
        store: &str,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, String> {
        let (store, writer, seen) = (
            store.to_string(),
            self.writer.clone(),
            now_ms() - self.lag_ms as i64,
        );
        kv.run(move |c| {
            c.execute(CREATE, []).map_err(sql_err)?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let value: Option<Option<Vec<u8>>> = c
                    .prepare_cached(VISIBLE)
                    .and_then(|mut s| {
                        use rusqlite::OptionalExtension;
                        s.query_row(params![store, key, writer, seen], |r| r.get(0))
                            .optional()
                    })
                    .map_err(sql_err)?;
                out.push((key, value.flatten()));
            }
            Ok(out)
        })
        .await
    }

    /// The keys of `store` as this host sees them.
    pub async fn keys(&self, kv: &SqliteKv, store: &str) -> Result<Vec<String>, String> {
        let (store, writer, seen) = (
            store.to_string(),
            self.writer.clone(),
            now_ms() - self.lag_ms as i64,
        );
        kv.run(move |c| {
            c.execute(CREATE, []).map_err(sql_err)?;
            let mut s = c
                .prepare_cached(
                    "SELECT key FROM wq_replica_log l WHERE store=$1 AND value IS NOT NULL
                     AND seq = (SELECT max(seq) FROM wq_replica_log
                                WHERE store=l.store AND key=l.key AND (writer=$2 OR written_at<=$3))",
                )
                .map_err(sql_err)?;
            let rows = s
                .query_map(params![store, writer, seen], |r| r.get::<_, String>(0))
                .map_err(sql_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
        })
        .await
    }
}
