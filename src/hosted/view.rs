//! One look at the store: list every key, then read the records asked for
//! — the open ones for a dequeue or a rescue, the finished ones for the
//! queries that need them. A value that cannot be decoded is set aside
//! (listed, counted, skipped), never fatal.

use super::keys::Listed;
use super::record::Record;
use super::HostedWorkQueue;
use crate::error::Result;
use crate::kv::StoreKv;
use std::collections::{BTreeMap, BTreeSet};

/// Records read, by task id, and the keys whose value could not be
/// decoded (with why).
pub(crate) type Read = (BTreeMap<String, Record>, Vec<(String, String)>);

/// Keys read per `get_many`.
const READ_CHUNK: usize = 100;

/// What the store held when it was looked at.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Ids with an open record.
    pub open_ids: BTreeSet<String>,
    /// Ids with a finished record.
    pub done_ids: BTreeSet<String>,
    /// Idempotency keys with a key of their own.
    pub idem_keys: BTreeSet<String>,
    /// Keys in the store.
    pub total_keys: u64,
    /// Open records read (by id).
    pub open: BTreeMap<String, Record>,
    /// Finished records read (by id).
    pub done: BTreeMap<String, Record>,
    /// Keys whose value could not be decoded, and why.
    pub poison: Vec<(String, String)>,
    /// The clock reading taken after listing, before any record was read:
    /// writes decided from this view must land within the claim window of
    /// it.
    pub read_at: u64,
}

impl<S: StoreKv> HostedWorkQueue<S> {
    /// List the keys, then read the open records (`open`) and the finished
    /// ones (`done`).
    pub(crate) fn view(&self, open: bool, done: bool) -> Result<View> {
        let listed = self.kv.list_keys()?;
        let read_at = self.now();
        let mut v = View {
            total_keys: listed.len() as u64,
            read_at,
            ..View::default()
        };
        for key in &listed {
            match self.keys.parse(key) {
                Listed::Open(id) => {
                    v.open_ids.insert(id);
                }
                Listed::Done(id) => {
                    v.done_ids.insert(id);
                }
                Listed::Key(k) => {
                    v.idem_keys.insert(k);
                }
                Listed::Other => {}
            }
        }
        if open {
            let keys: Vec<String> = v.open_ids.iter().map(|id| self.keys.open(id)).collect();
            let (found, poison) = self.read_records(&keys)?;
            v.poison.extend(poison);
            v.open = found;
        }
        if done {
            let keys: Vec<String> = v.done_ids.iter().map(|id| self.keys.done(id)).collect();
            let (found, poison) = self.read_records(&keys)?;
            v.poison.extend(poison);
            v.done = found;
        }
        Ok(v)
    }

    /// Read `keys` (records), by task id; undecodable values apart.
    pub(crate) fn read_records(&self, keys: &[String]) -> Result<Read> {
        let mut found = BTreeMap::new();
        let mut poison = Vec::new();
        for chunk in keys.chunks(READ_CHUNK) {
            for (key, bytes) in self.kv.get_many(chunk)? {
                match Record::decode(&bytes) {
                    Ok(r) => {
                        found.insert(r.task.id.clone(), r);
                    }
                    Err(reason) => poison.push((key, reason)),
                }
            }
        }
        Ok((found, poison))
    }

    /// The record at `key`, if it exists and decodes.
    pub(crate) fn read_one(&self, key: &str) -> Result<Option<Record>> {
        let (mut found, _) = self.read_records(&[key.to_string()])?;
        Ok(found.pop_first().map(|(_, r)| r))
    }
}
