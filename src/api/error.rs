//! [`ApiError`]: why the HTTP layer refused or failed a request, and its
//! mapping to a status code and an error body.

use crate::config::ConfigError;
use crate::error::QueueError;
use crate::http::Response;

/// Why a request did not succeed, at the HTTP layer.
///
/// Every variant has one status code ([`ApiError::status`]) and one
/// snake_case code ([`ApiError::code`]) for the error body
/// `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A token is configured and the request carries no bearer token or a
    /// wrong one (401).
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// No route matches the path (404).
    #[error("no route for {0}")]
    NoRoute(String),
    /// The route exists but not for this method (405).
    #[error("method {method} not allowed; allowed: {allow}")]
    MethodNotAllowed {
        /// The method that was used.
        method: String,
        /// The methods the route accepts, for the `allow` header.
        allow: &'static str,
    },
    /// The body is larger than the configured limit (413).
    #[error("body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A body was sent with a content type that is not JSON (415).
    #[error("content type {0:?} is not application/json")]
    UnsupportedMediaType(String),
    /// Malformed JSON, or a field of the wrong type (400).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed JSON that breaks a rule of the contract (422).
    #[error("{message}")]
    Unprocessable {
        /// The snake_case code (`invalid_task`, `invalid_batch`, …).
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The component's configuration (Spin variables) is invalid (500).
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The queue refused or failed the operation.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl ApiError {
    /// A 422 with the given code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status code of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::NoRoute(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::BadRequest(_) => 400,
            Self::Unprocessable { .. } => 422,
            Self::Config(_) => 500,
            Self::Queue(e) => queue_status(e),
        }
    }

    /// The snake_case code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NoRoute(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::BadRequest(_) => "bad_request",
            Self::Unprocessable { code, .. } => code,
            Self::Config(_) => "invalid_config",
            Self::Queue(e) => e.code(),
        }
    }

    /// The JSON error value `{"code","message"}` (without the outer
    /// `"error"` key), as used in batch results.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code(), "message": self.to_string() })
    }

    /// The complete error response: status, `content-type`, the `allow`
    /// header for a 405 and `www-authenticate` for a 401.
    pub fn to_response(&self) -> Response {
        let mut resp = Response::json(
            self.status(),
            &serde_json::json!({ "error": self.to_json() }),
        );
        match self {
            Self::MethodNotAllowed { allow, .. } => {
                resp.headers.push(("allow".into(), (*allow).into()))
            }
            Self::Unauthorized => resp
                .headers
                .push(("www-authenticate".into(), "Bearer".into())),
            _ => {}
        }
        resp
    }
}

/// The status code for a queue error.
///
/// `Invalid` is a 422, `NotFound` a 404, the fencing errors 409, store
/// failures (unavailable, corrupt data, too slow) 500 and a remote queue's
/// transport failure 502.
pub fn queue_status(e: &QueueError) -> u16 {
    match e {
        QueueError::NotFound { .. } | QueueError::UnknownPipeline { .. } => 404,
        QueueError::LeaseLost { .. }
        | QueueError::WrongState { .. }
        | QueueError::PipelineConflict { .. } => 409,
        QueueError::Unsupported(_) => 501,
        QueueError::Invalid(_) => 422,
        QueueError::Transport(_) => 502,
        QueueError::StoreFull(_) => 507,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvError;

    #[test]
    fn every_queue_error_has_a_contract_status() {
        let cases = [
            (QueueError::NotFound { id: "t".into() }, 404, "not_found"),
            (QueueError::LeaseLost { id: "t".into() }, 409, "lease_lost"),
            (
                QueueError::UnknownPipeline { id: "p".into() },
                404,
                "not_found",
            ),
            (
                QueueError::PipelineConflict { id: "p".into() },
                409,
                "pipeline_conflict",
            ),
            (QueueError::Unsupported("x".into()), 501, "not_supported"),
            (
                QueueError::WrongState {
                    id: "t".into(),
                    state: "Pending".into(),
                    reason: "x".into(),
                },
                409,
                "wrong_state",
            ),
            (
                QueueError::invalid(crate::InvalidKind::Task, "x"),
                422,
                "invalid_task",
            ),
            (
                QueueError::Store(KvError::Unavailable("down".into())),
                500,
                "store_unavailable",
            ),
            (QueueError::StoreFull("1024 keys".into()), 507, "store_full"),
        ];
        for (err, status, code) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.status(), status);
            assert_eq!(api.code(), code);
        }
    }

    #[test]
    fn method_not_allowed_carries_an_allow_header() {
        let resp = ApiError::MethodNotAllowed {
            method: "GET".into(),
            allow: "POST",
        }
        .to_response();
        assert_eq!(resp.status, 405);
        assert_eq!(resp.header("allow"), Some("POST"));
    }
}
