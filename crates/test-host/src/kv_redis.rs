//! The Redis key-value backend, behaving like Spin's `key-value-redis` crate.
//!
//! Faithful to Spin 4.1, including its defects, because the project must
//! survive them:
//! - keys are not namespaced by store label: every label on one URL shares
//!   the keyspace (and so do several hosts on one Redis);
//! - `get`/`set`/`delete`/`exists` are `GET`/`SET`/`DEL`/`EXISTS`,
//!   `set-many` is `MSET`, `delete-many` one `DEL`, `list-keys` is `KEYS *`,
//!   `increment` is `INCRBY` (the value is a decimal string);
//! - `get-many` sends the keys to `KEYS` as Spin 4.1 does: with several keys
//!   Redis rejects the command, and with one key that exists the reply cannot
//!   be decoded and Spin's host panics (here the call traps: the request
//!   fails, the component cannot recover); one missing key yields an empty
//!   list;
//! - CAS: `cas.new` opens a dedicated connection, `current` is
//!   `WATCH key` + `GET key`, `swap` is `MULTI`/`SET`/`EXEC` followed by
//!   `UNWATCH key` — which Redis rejects (UNWATCH takes no argument), so every
//!   `swap` reports `cas-failed` even when the `SET` was applied, exactly the
//!   behaviour of Spin 4.1.

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::AsyncCommands;

use crate::HostError;

/// How a Redis `get-many` fails.
#[derive(Debug)]
pub enum GetManyFailure {
    /// An error the component receives.
    Error(String),
    /// A host panic in Spin: the call traps.
    Panic(String),
}

/// A Redis-backed store shared by all components and requests of a host.
pub struct RedisKv {
    client: redis::Client,
    conn: ConnectionManager,
}

fn redis_err(e: redis::RedisError) -> String {
    format!("redis: {e}")
}

impl RedisKv {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`).
    pub async fn connect(url: &str) -> Result<Self, HostError> {
        let client = redis::Client::open(url)
            .map_err(|e| HostError::Kv(format!("invalid Redis URL {url}: {e}")))?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(|e| HostError::Kv(format!("cannot connect to Redis at {url}: {e}")))?;
        Ok(RedisKv { client, conn })
    }

    /// `get` = `GET`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.conn.clone().get(key).await.map_err(redis_err)
    }

    /// `set` = `SET`.
    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.conn.clone().set(key, value).await.map_err(redis_err)
    }

    /// `delete` = `DEL`.
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        self.conn.clone().del(key).await.map_err(redis_err)
    }

    /// `exists` = `EXISTS`.
    pub async fn exists(&self, key: &str) -> Result<bool, String> {
        self.conn.clone().exists(key).await.map_err(redis_err)
    }

    /// `list-keys` = `KEYS *` (every key on the server, whatever the label).
    pub async fn keys(&self) -> Result<Vec<String>, String> {
        self.conn.clone().keys("*").await.map_err(redis_err)
    }

    /// `get-many` the Spin 4.1 way (see the module docs).
    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, GetManyFailure> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Spin sends `KEYS k1 k2 ...`; Redis answers with an error for more
        // than one argument.
        let reply: Vec<String> = redis::cmd("KEYS")
            .arg(&keys)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| GetManyFailure::Error(redis_err(e)))?;
        if reply.is_empty() {
            Ok(Vec::new())
        } else {
            Err(GetManyFailure::Panic(format!(
                "get-many on Redis: `KEYS {}` returned key names that cannot be decoded as \
                 (key, value) pairs (Spin 4.1's host panics here)",
                keys[0]
            )))
        }
    }

    /// `set-many` = `MSET`.
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        if pairs.is_empty() {
            return Ok(());
        }
        self.conn.clone().mset(&pairs).await.map_err(redis_err)
    }

    /// `delete-many` = one `DEL`.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), String> {
        if keys.is_empty() {
            return Ok(());
        }
        self.conn.clone().del(keys).await.map_err(redis_err)
    }

    /// `increment` = `INCRBY`.
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        self.conn.clone().incr(key, delta).await.map_err(redis_err)
    }

    /// A dedicated connection for one CAS (WATCH is per connection).
    pub async fn cas_connection(&self) -> Result<MultiplexedConnection, String> {
        self.client
            .get_multiplexed_async_connection()
            .await
            .map_err(redis_err)
    }

    /// CAS `current` = `WATCH key` then `GET key` on the CAS connection.
    pub async fn cas_current(
        conn: &mut MultiplexedConnection,
        key: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        redis::cmd("WATCH")
            .arg(key)
            .exec_async(conn)
            .await
            .map_err(redis_err)?;
        conn.get(key).await.map_err(redis_err)
    }

    /// CAS `swap` = `MULTI`/`SET`/`EXEC`, then `UNWATCH key`. Returns whether
    /// Spin would report success (never, with a real Redis: see module docs).
    pub async fn cas_swap(
        conn: &mut MultiplexedConnection,
        key: &str,
        value: Vec<u8>,
    ) -> Result<bool, String> {
        let exec: Result<(), redis::RedisError> = redis::pipe()
            .atomic()
            .set(key, value)
            .query_async(conn)
            .await;
        if redis::cmd("UNWATCH")
            .arg(key)
            .exec_async(conn)
            .await
            .is_err()
        {
            return Ok(false);
        }
        Ok(exec.is_ok())
    }
}
