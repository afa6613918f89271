//! The echo executor's logic: answer with the input, after optional knobs
//! read from the input (`sleep_ms`, `fail_times`, `fail_status`) that let
//! tests exercise timeouts and retries.

use crate::error;
use serde_json::Value;
use spin_work_queue::http::{Request, Response};
use spin_work_queue::worker::HEADER_ATTEMPT;

/// Longest `sleep_ms` honoured (longer ones are cut to it): under the
/// worker's default executor timeout, so the knob cannot hold an instance
/// for long.
pub const ECHO_MAX_SLEEP_MS: u64 = 30_000;
/// Largest `fail_times` honoured (more is cut to it).
pub const ECHO_MAX_FAIL_TIMES: u64 = 100;
/// Default of `fail_status`.
pub const ECHO_FAIL_STATUS_DEFAULT: u16 = 500;

/// What the echo executor does for one request: sleep, then answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoPlan {
    /// Milliseconds to wait before answering.
    pub sleep_ms: u64,
    /// The answer.
    pub response: Response,
}

/// Plan the answer to `req`.
///
/// The body must be JSON (400 otherwise). When it is an object (for a
/// pipeline node with parents, `{"input", "parents"}`: its `input`):
/// `sleep_ms` delays the answer (at most [`ECHO_MAX_SLEEP_MS`], and never
/// past the worker's deadline, see [`crate::work_budget_ms`]); while the
/// `x-wq-attempt` header is below `fail_times` (at most
/// [`ECHO_MAX_FAIL_TIMES`]) the answer is `fail_status` (default 500, any
/// 400..=599).
/// Otherwise the answer is 200 with the body as it came.
///
/// ```
/// use spin_work_queue::http::Request;
/// use wq_executors::echo::echo_plan;
/// use serde_json::json;
/// let input = json!({"fail_times": 1});
/// let first = Request::json("POST", "/executors/echo", &input).with_header("x-wq-attempt", "0");
/// assert_eq!(echo_plan(&first).response.status, 500);
/// let second = Request::json("POST", "/executors/echo", &input).with_header("x-wq-attempt", "1");
/// assert_eq!(echo_plan(&second).response.status, 200);
/// ```
pub fn echo_plan(req: &Request) -> EchoPlan {
    let input: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                return EchoPlan {
                    sleep_ms: 0,
                    response: error(400, "bad_request", &format!("malformed JSON: {e}")),
                }
            }
        }
    };
    // A pipeline node with parents gets `{"input", "parents"}`: its knobs
    // are in its own input.
    let own = match (input.get("input"), input.get("parents")) {
        (Some(own @ Value::Object(_)), Some(Value::Object(_))) => own,
        _ => &input,
    };
    let knob = |name: &str| own.get(name).and_then(Value::as_u64);
    let sleep_ms = knob("sleep_ms")
        .unwrap_or(0)
        .min(crate::work_budget_ms(req, ECHO_MAX_SLEEP_MS));
    let attempt = req
        .header(HEADER_ATTEMPT)
        .and_then(|a| a.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let fail_times = knob("fail_times").unwrap_or(0).min(ECHO_MAX_FAIL_TIMES);
    let fail_status = knob("fail_status")
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (400..=599).contains(s))
        .unwrap_or(ECHO_FAIL_STATUS_DEFAULT);
    let response = if attempt < fail_times {
        error(
            fail_status,
            "echo_fail",
            &format!("attempt {attempt} fails (fail_times = {fail_times})"),
        )
    } else {
        Response::json(200, &input)
    };
    EchoPlan { sleep_ms, response }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(input: Value, attempt: Option<&str>) -> EchoPlan {
        let mut req = Request::json("POST", "/executors/echo", &input);
        if let Some(a) = attempt {
            req = req.with_header(HEADER_ATTEMPT, a);
        }
        echo_plan(&req)
    }

    #[test]
    fn the_input_comes_back_as_the_output() {
        let p = plan(json!({"a": [1, 2]}), None);
        assert_eq!(p.sleep_ms, 0);
        assert_eq!(p.response.status, 200);
        assert_eq!(p.response.json_body(), json!({"a": [1, 2]}));
        assert_eq!(
            plan(json!("text"), None).response.json_body(),
            json!("text")
        );
    }

    #[test]
    fn fail_times_fails_the_first_attempts_with_fail_status() {
        let input = json!({"fail_times": 2, "fail_status": 503});
        assert_eq!(plan(input.clone(), Some("0")).response.status, 503);
        assert_eq!(plan(input.clone(), Some("1")).response.status, 503);
        assert_eq!(plan(input.clone(), Some("2")).response.status, 200);
        let odd_status = json!({"fail_times": 1, "fail_status": 200});
        assert_eq!(plan(odd_status, None).response.status, 500);
    }

    #[test]
    fn a_pipeline_nodes_knobs_are_read_from_its_own_input() {
        let input = json!({"input": {"fail_times": 1}, "parents": {"a": 1}});
        assert_eq!(plan(input.clone(), Some("0")).response.status, 500);
        assert_eq!(plan(input.clone(), Some("1")).response.json_body(), input);
    }

    #[test]
    fn sleep_is_read_and_capped() {
        assert_eq!(plan(json!({"sleep_ms": 5}), None).sleep_ms, 5);
        assert_eq!(
            plan(json!({"sleep_ms": u64::MAX}), None).sleep_ms,
            ECHO_MAX_SLEEP_MS
        );
    }

    #[test]
    fn malformed_json_is_a_400() {
        let req = Request::new("POST", "/executors/echo").with_body(b"{".to_vec());
        assert_eq!(echo_plan(&req).response.status, 400);
    }
}
