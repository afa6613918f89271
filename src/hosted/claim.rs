//! Claims without an atomic primitive: a timed write-then-read-back, in
//! the manner of Fischer's mutual exclusion.
//!
//! Every write the engine makes to a record nobody owns — a task to lease,
//! a retry to promote, an expired lease to rescue, a dead letter to redrive
//! — is decided from a read of that record and **lands within the claim
//! window `W` of that read**: the engine checks its clock right before the
//! write (at most `P` after the read) and the store call lands within `P`
//! (the same assumption as the default engine's). A claim then waits the
//! settle time `D > W + 2L` (`L`: the store's replication lag) and reads
//! the record back: it owns the record only if its own version is still
//! there.
//!
//! Why one claimant at most: a competitor that read the record before this
//! claim's write landed lands within `W` of that read, so before this
//! claim reads back (`D` after its own landing) — and is seen then, since
//! the last write wins. A competitor that read it after the landing sees
//! the claim and does not write. So after the read-back no write decided
//! from an older read can still land, and the version read back is final:
//! whoever finds its own version there owns the record until its lease
//! ends. Writes by an owner (ack, fail, heartbeat) need no claim.

use super::record::Record;
use super::HostedWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::StoreKv;

impl<S: StoreKv> HostedWorkQueue<S> {
    /// Re-read the open records of `ids`, let `decide` give each one's new
    /// version (or `None` to leave it), write those within the claim window
    /// and — when `confirm` — wait the settle time and keep the ones still
    /// holding this claim's version. Returns the versions written (and, when
    /// confirmed, still there).
    pub(crate) fn claim(
        &self,
        ids: &[String],
        confirm: bool,
        mut decide: impl FnMut(&Record, u64) -> Option<Record>,
    ) -> Result<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.open(id)).collect();
        let read_at = self.now();
        let (current, _) = self.read_records(&keys)?;
        let token = ulid::Ulid::generate().to_string();
        let mut written = Vec::new();
        for id in ids {
            let Some(r) = current.get(id) else { continue };
            if let Some(mut next) = decide(r, read_at) {
                next.claim = Some(token.clone());
                written.push(next);
            }
        }
        if written.is_empty() {
            return Ok(written);
        }
        let now = self.now();
        if now > read_at + self.timing.base.store_call_ms {
            return Err(QueueError::TooSlow(format!(
                "a claim read its records {} ms before writing (at most {}); nothing was written, retry",
                now - read_at,
                self.timing.base.store_call_ms
            )));
        }
        let pairs: Vec<(String, Vec<u8>)> = written
            .iter()
            .map(|r| (self.keys.open(&r.task.id), r.encode()))
            .collect();
        self.kv.set_many(&pairs)?;
        if !confirm {
            return Ok(written);
        }
        self.clock.sleep_ms(self.timing.settle_ms);
        let keys: Vec<String> = pairs.into_iter().map(|(k, _)| k).collect();
        let (back, _) = self.read_records(&keys)?;
        Ok(written
            .into_iter()
            .filter(|w| back.get(&w.task.id).is_some_and(|b| b.claim == w.claim))
            .collect())
    }
}
