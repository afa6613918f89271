//! The [`Executor`] seam: how the worker calls the HTTP endpoint that
//! executes a node, and how the answer becomes an [`Execution`]
//! (2xx → success, 4xx → permanent failure, 5xx / timeout / connection
//! error → retryable failure).

use crate::http::{Request, Response};
use crate::port::WorkTask;
use async_trait::async_trait;
use serde_json::Value;

/// Header carrying the task id.
pub const HEADER_TASK_ID: &str = "x-wq-task-id";
/// Header carrying the pipeline id.
pub const HEADER_PIPELINE_ID: &str = "x-wq-pipeline-id";
/// Header carrying the node name.
pub const HEADER_NODE_NAME: &str = "x-wq-node-name";
/// Header carrying the attempt being delivered (0 first).
pub const HEADER_ATTEMPT: &str = "x-wq-attempt";
/// Header carrying the task's idempotency key.
pub const HEADER_IDEMPOTENCY_KEY: &str = "x-wq-idempotency-key";
/// Longest part of an executor's error body kept in the task's error.
pub const ERROR_EXCERPT_CHARS: usize = 500;

/// Header carrying the time the executor has to answer, in ms: the
/// worker gives up on the call after it (an executor doing slow work of
/// its own should stop by then, or the task may run twice at once).
pub const HEADER_TIMEOUT_MS: &str = "x-wq-timeout-ms";

/// The request executing `task` at `url` within `timeout_ms`: `POST` of
/// the task's input as JSON, with the `x-wq-*` headers.
pub fn task_request(task: &WorkTask, url: String, timeout_ms: u64) -> Request {
    Request {
        method: "POST".into(),
        url,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (HEADER_TASK_ID.into(), task.id.clone()),
            (HEADER_PIPELINE_ID.into(), task.pipeline_id.clone()),
            (HEADER_NODE_NAME.into(), task.node_name.clone()),
            (HEADER_ATTEMPT.into(), task.attempt.to_string()),
            (HEADER_IDEMPOTENCY_KEY.into(), task.idempotency_key.clone()),
            (HEADER_TIMEOUT_MS.into(), timeout_ms.to_string()),
        ],
        body: task.input.to_string().into_bytes(),
    }
}

/// What came back from an executor call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorReply {
    /// A complete HTTP answer within the deadline.
    Answered(Response),
    /// No complete answer (headers and body) within the deadline.
    Timeout,
    /// The executor could not be reached (connection refused, DNS, a
    /// host not allowed by the app…).
    Unreachable(String),
}

/// The drain's outside world: calls executors. The worker component
/// implements it with Spin's outbound HTTP; tests with a fake.
#[async_trait(?Send)]
pub trait Executor {
    /// Send `req` and wait for the whole answer, headers and body, for at
    /// most `timeout_ms`: past it the call is a [`ExecutorReply::Timeout`].
    async fn call(&self, req: Request, timeout_ms: u64) -> ExecutorReply;
}

/// The outcome of executing a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Execution {
    /// The node's output: ack the task with it.
    Succeeded(Value),
    /// Fail the task with `error`; retried when `retryable`.
    Failed {
        /// Why.
        error: String,
        /// Whether the queue should retry.
        retryable: bool,
    },
}

/// Classify an executor's reply.
///
/// ```
/// use spin_work_queue::http::Response;
/// use spin_work_queue::worker::{classify, Execution, ExecutorReply};
/// use serde_json::json;
/// let answer = |status, body: &[u8]| ExecutorReply::Answered(Response { status, headers: vec![], body: body.to_vec() });
/// assert_eq!(classify(answer(200, b"{\"a\":1}")), Execution::Succeeded(json!({"a": 1})));
/// assert_eq!(classify(answer(201, b"done")), Execution::Succeeded(json!("done")));
/// let gone = answer(404, b"");
/// assert!(matches!(classify(gone), Execution::Failed { retryable: false, .. }));
/// assert!(matches!(classify(ExecutorReply::Timeout), Execution::Failed { retryable: true, .. }));
/// ```
pub fn classify(reply: ExecutorReply) -> Execution {
    match reply {
        ExecutorReply::Answered(r) if (200..300).contains(&r.status) => {
            Execution::Succeeded(output_of(&r.body))
        }
        ExecutorReply::Answered(r) => Execution::Failed {
            error: format!("executor answered {}: {}", r.status, excerpt(&r.body)),
            retryable: !(400..500).contains(&r.status),
        },
        ExecutorReply::Timeout => Execution::Failed {
            error: "executor timed out".into(),
            retryable: true,
        },
        ExecutorReply::Unreachable(why) => Execution::Failed {
            error: format!("executor unreachable: {why}"),
            retryable: true,
        },
    }
}

/// A 2xx body as the task's output: its JSON, else its text as a JSON
/// string (`null` for an empty body).
fn output_of(body: &[u8]) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The start of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut cut: String = text.chars().take(ERROR_EXCERPT_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: &str) -> Execution {
        classify(ExecutorReply::Answered(Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }))
    }

    #[test]
    fn two_hundreds_succeed_with_json_text_or_null() {
        assert_eq!(reply(200, "[1,2]"), Execution::Succeeded(json!([1, 2])));
        assert_eq!(reply(204, ""), Execution::Succeeded(Value::Null));
        assert_eq!(reply(299, "plain"), Execution::Succeeded(json!("plain")));
    }

    #[test]
    fn four_hundreds_are_permanent_and_the_rest_retryable() {
        assert!(matches!(
            reply(422, "no"),
            Execution::Failed {
                retryable: false,
                ..
            }
        ));
        assert!(matches!(
            reply(500, "boom"),
            Execution::Failed {
                retryable: true,
                ..
            }
        ));
        assert!(matches!(
            reply(302, ""),
            Execution::Failed {
                retryable: true,
                ..
            }
        ));
        let unreachable = classify(ExecutorReply::Unreachable("refused".into()));
        assert!(matches!(
            unreachable,
            Execution::Failed {
                retryable: true,
                ..
            }
        ));
    }

    #[test]
    fn long_error_bodies_are_cut() {
        let Execution::Failed { error, .. } = reply(500, &"x".repeat(2000)) else {
            panic!("expected a failure");
        };
        assert!(error.len() < 600);
        assert!(error.ends_with('…'));
    }

    #[test]
    fn a_task_becomes_a_post_with_the_wq_headers() {
        let task = WorkTask {
            id: "t1".into(),
            pipeline_id: "p".into(),
            node_name: "n".into(),
            input: json!({"k": 1}),
            wave: 0,
            attempt: 2,
            idempotency_key: "ik".into(),
        };
        let req = task_request(&task, "/executors/n".into(), 1000);
        let h = |n: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h(HEADER_TASK_ID), Some("t1"));
        assert_eq!(h(HEADER_ATTEMPT), Some("2"));
        assert_eq!(h(HEADER_IDEMPOTENCY_KEY), Some("ik"));
        assert_eq!(h(HEADER_TIMEOUT_MS), Some("1000"));
        assert_eq!(
            (req.method.as_str(), req.url.as_str()),
            ("POST", "/executors/n")
        );
        assert_eq!(req.body, br#"{"k":1}"#);
    }
}
