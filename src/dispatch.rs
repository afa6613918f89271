//! Coalesced push dispatch: at most `max_drains` drains in flight for the
//! whole app, whatever the number of requests that add work.
//!
//! A [`DrainGate`] admits drains. Whoever is about to start one — the queue
//! component after accepting work, a drain handing over to the next — first
//! asks the gate ([`admit_for_push`]): when enough drains are in flight it
//! starts nothing, else it takes a [`Ticket`] and pushes a drain carrying
//! it. A drain keeps its ticket across the gate's epochs
//! ([`DrainGate::renew`]), and when it ends it releases the ticket and then
//! looks for due work once more ([`DrainGate::work_due`]): work added while
//! it was ending, by a request that found it still in flight and so pushed
//! nothing, is then picked up (by it, or by another drain it starts).
//!
//! The store-backed gate ([`KvWorkQueue`](crate::KvWorkQueue)) counts the
//! drains of each epoch (the grace period `G`) with `increment`, so a drain
//! that dies holds its place at most until its epoch ends.

use crate::error::Result;
use crate::http::Request;
use crate::MaybeSendSync;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// An admitted drain's place at the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ticket {
    /// The epoch the drain was admitted (or last renewed) in.
    pub epoch: u64,
}

/// Admission of drains: at most `max` in flight for the whole app.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait DrainGate: MaybeSendSync {
    /// How many drains are in flight now (a drain that died without
    /// releasing counts until its epoch ends).
    async fn drains_in_flight(&self) -> Result<u32>;

    /// Admit one more drain when fewer than `max` are in flight: its
    /// ticket, or `None`.
    async fn admit(&self, max: u32) -> Result<Option<Ticket>>;

    /// Keep an admitted drain admitted (called between its batches): the
    /// ticket for now, or `None` when `max` drains took the places of a new
    /// epoch first — the drain then stops, they do the work.
    async fn renew(&self, ticket: Ticket, max: u32) -> Result<Option<Ticket>>;

    /// An admitted drain ends.
    async fn release(&self, ticket: Ticket) -> Result<()>;

    /// Whether a dequeue would deliver a task now (a few reads).
    async fn work_due(&self) -> Result<bool>;

    /// Note that what an answer the store gave too slowly left behind
    /// (slots taken, leases held) is recovered by maintenance by `at`.
    /// Queues whose answers are never too slow ignore it.
    async fn expect_recovery(&self, _at: u64) -> Result<()> {
        Ok(())
    }

    /// When the last recovery expected within `within_ms` from now is
    /// done, if one is: drains wait for it rather than leave its work for
    /// traffic that may never come.
    async fn recovery_pending(&self, _within_ms: u64) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// A queue that workers drain: the contract (pipelines included) and the
/// gate.
pub trait DrainQueue: crate::pipeline::PipelineQueue + DrainGate {}

impl<Q: crate::pipeline::PipelineQueue + DrainGate + ?Sized> DrainQueue for Q {}

/// Admit a drain to push, unless `max` are in flight already: one read
/// when enough are, an `increment` (two when it loses a race) otherwise.
pub async fn admit_for_push<G: DrainGate + ?Sized>(gate: &G, max: u32) -> Result<Option<Ticket>> {
    if gate.drains_in_flight().await? >= max {
        return Ok(None);
    }
    gate.admit(max).await
}

/// The request that starts a drain under `ticket` in the background:
/// `POST {url}` with `{"background": true, "ticket": …}` (and the bearer
/// token when one is configured). The worker answers it with `202` at once
/// and drains after its answer.
pub fn push_request(url: &str, ticket: Ticket, token: Option<&str>) -> Request {
    let body = serde_json::json!({ "background": true, "ticket": ticket });
    let push = Request::json("POST", url, &body);
    match token {
        Some(token) => push.with_header("authorization", &format!("Bearer {token}")),
        None => push,
    }
}

/// Times a push is sent before its ticket is given back: a worker that
/// refused one (overloaded, restarting) usually takes the next.
pub const PUSH_TRIES: u32 = 3;

/// The pause before try `attempt` (1, 2, …) of a push: 100 ms, then 400 ms.
pub fn push_pause_ms(attempt: u32) -> u64 {
    100 * 4u64.pow(attempt.saturating_sub(1).min(4))
}

/// What to do after sending a push: a push that was not accepted (no 2xx,
/// no answer) releases its ticket, so that the place is free again.
pub async fn pushed<G: DrainGate + ?Sized>(gate: &G, ticket: Ticket, accepted: bool) -> Result<()> {
    if accepted {
        return Ok(());
    }
    gate.release(ticket).await
}
