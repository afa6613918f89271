//! Example executor: answers with its input (see
//! [`wq_executors::echo::echo_plan`] for the `sleep_ms`, `fail_times` and
//! `fail_status` knobs).

#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_work_queue::api::{ApiError, MAX_BODY_BYTES_DEFAULT};
use wq_executors::echo::echo_plan;
use wq_executors::ExecutorAuth;
use wq_spin_glue::{read_request, respond, variable};

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let request = match read_request(req, MAX_BODY_BYTES_DEFAULT).await {
        Ok(r) if r.body.len() > MAX_BODY_BYTES_DEFAULT => {
            let too_large = ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES_DEFAULT,
            };
            return respond(out, &too_large.to_response()).await;
        }
        Ok(r) => r,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    if let Err(refused) = ExecutorAuth::from_lookup(variable).check(&request) {
        return respond(out, &refused).await;
    }
    let plan = echo_plan(&request);
    if plan.sleep_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(plan.sleep_ms));
    }
    respond(out, &plan.response).await;
}
