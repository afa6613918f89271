//! The bundled executors' logic, independent of Spin, so that it is tested
//! natively: [`echo`] answers with its input (with knobs for delays and
//! failures), [`fetch`] reports what a `GET` of a public URL returned. The
//! `echo` and `fetch` components are thin adapters over these functions.

#![deny(missing_docs)]

pub mod echo;
pub mod fetch;

use spin_work_queue::http::Response;

/// An error answer `{"error":{"code","message"}}`.
pub(crate) fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}
