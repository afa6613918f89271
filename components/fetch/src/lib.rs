//! Example executor: input `{"url"}` → `GET` it → output
//! `{status, content_type, bytes, title}` (see
//! [`wq_executors::fetch::fetch_output`]). A target that cannot be
//! reached is a 502 (retryable); a host outside `allowed_outbound_hosts`, or
//! a private address while `fetch_private_hosts` is `deny`, a 403.

#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use wq_executors::ExecutorAuth;
use wq_spin_glue::{read_request, respond, variable};

/// Largest input accepted.
const MAX_INPUT_BYTES: usize = 64 * 1024;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let request = match read_request(req, MAX_INPUT_BYTES).await {
        Ok(r) => r,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    if let Err(refused) = ExecutorAuth::from_lookup(variable).check(&request) {
        return respond(out, &refused).await;
    }
    let answer = wq_spin_glue::bundled::fetch(&request).await;
    respond(out, &answer).await;
}
