//! Sending a pushed drain: the push waits only for the worker's `202`, is
//! tried again when refused ([`dispatch::PUSH_TRIES`]), and gives its place
//! at the gate back when no try was accepted.

use crate::outbound::{send, Limits};
use spin_work_queue::dispatch::{self, DrainGate, Ticket};
use spin_work_queue::http::Request;

/// Time allowed to the worker to accept a pushed drain.
const PUSH_TIMEOUT_MS: u64 = 10_000;
/// Most bytes of the worker's answer read.
const ANSWER_BYTES: usize = 4 * 1024;

/// Push `request` (a drain under `ticket`); `what` names it in the logs.
/// Returns whether the worker accepted it.
pub async fn push_drain<G: DrainGate + ?Sized>(
    gate: &G,
    request: &Request,
    ticket: Ticket,
    what: &str,
) -> bool {
    let mut accepted = false;
    for attempt in 0..dispatch::PUSH_TRIES {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(dispatch::push_pause_ms(
                attempt,
            )));
        }
        match send(request, Limits::within(PUSH_TIMEOUT_MS, ANSWER_BYTES)).await {
            Ok(got) if (200..300).contains(&got.response.status) => {
                accepted = true;
                break;
            }
            Ok(got) => eprintln!(
                "spin-work-queue: {what} to {} answered {}",
                request.url, got.response.status
            ),
            Err(e) => eprintln!("spin-work-queue: {what} to {} failed: {e}", request.url),
        }
    }
    if let Err(e) = dispatch::pushed(gate, ticket, accepted).await {
        eprintln!("spin-work-queue: drain gate: {e}");
    }
    accepted
}
