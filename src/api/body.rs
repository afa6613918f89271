//! Request bodies: the size limit (413), the content type (415), and JSON
//! parsing that tells malformed JSON or wrong types (400) from missing or
//! out-of-range fields (422).

use super::error::ApiError;
use crate::http::Request;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Check the body's size against `limit` and, when there is a body, that
/// its content type (if given) is JSON.
pub fn check_body(req: &Request, limit: usize) -> Result<(), ApiError> {
    let declared = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if req.body.len() > limit || declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    if req.body.is_empty() {
        return Ok(());
    }
    match req.header("content-type") {
        None => Ok(()),
        Some(ct) if is_json_content_type(ct) => Ok(()),
        Some(ct) => Err(ApiError::UnsupportedMediaType(ct.to_string())),
    }
}

/// True for `application/json` and `application/*+json`, with or without
/// parameters (`; charset=utf-8`).
///
/// ```
/// use spin_work_queue::api::is_json_content_type;
/// assert!(is_json_content_type("application/json; charset=utf-8"));
/// assert!(is_json_content_type("application/problem+json"));
/// assert!(!is_json_content_type("text/plain"));
/// ```
pub fn is_json_content_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body as a JSON object: 400 when it is empty, not JSON or not an
/// object.
pub fn json_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "a JSON object body is required".into(),
        ));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::BadRequest(format!(
            "the body must be a JSON object, got {}",
            kind(&other)
        ))),
        Err(e) => Err(ApiError::BadRequest(format!("malformed JSON: {e}"))),
    }
}

/// The body as a JSON object, `{}` when there is no body.
pub fn optional_json_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        Ok(Map::new())
    } else {
        json_object(req)
    }
}

/// 422 with `code` when one of `fields` is missing (or `null`) in `obj`;
/// `what` names the object in the message (`"task"`, `"tasks[3]"`).
pub fn require(
    obj: &Map<String, Value>,
    fields: &[&str],
    code: &'static str,
    what: &str,
) -> Result<(), ApiError> {
    match fields
        .iter()
        .find(|f| obj.get(**f).is_none_or(Value::is_null))
    {
        Some(f) => Err(ApiError::unprocessable(
            code,
            format!("{what}: field {f} is required"),
        )),
        None => Ok(()),
    }
}

/// Deserialize `obj` into `T`: wrong types are a 400; `what` names the
/// object in the message.
pub fn decode<T: DeserializeOwned>(obj: Map<String, Value>, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(obj))
        .map_err(|e| ApiError::BadRequest(format!("{what}: {e}")))
}

/// A word for the JSON type of `v`, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(ct: Option<&str>, body: &str) -> Request {
        let mut req = Request::new("POST", "/v1/tasks").with_body(body.as_bytes().to_vec());
        if let Some(ct) = ct {
            req = req.with_header("content-type", ct);
        }
        req
    }

    #[test]
    fn oversized_bodies_are_413_even_when_only_declared() {
        let big = "x".repeat(2000);
        assert_eq!(
            check_body(&post(None, &big), 1024).unwrap_err().status(),
            413
        );
        let declared = post(None, "{}").with_header("content-length", "5000");
        assert_eq!(check_body(&declared, 1024).unwrap_err().status(), 413);
    }

    #[test]
    fn a_body_with_a_non_json_type_is_415_and_without_a_type_is_accepted() {
        assert_eq!(
            check_body(&post(Some("text/plain"), "{}"), 1024)
                .unwrap_err()
                .status(),
            415
        );
        assert!(check_body(&post(None, "{}"), 1024).is_ok());
        assert!(check_body(&post(Some("text/plain"), ""), 1024).is_ok());
    }

    #[test]
    fn malformed_or_non_object_json_is_400() {
        for body in ["", "{", "[1]", "3"] {
            assert_eq!(
                json_object(&post(None, body)).unwrap_err().status(),
                400,
                "{body}"
            );
        }
    }

    #[test]
    fn missing_fields_are_422_and_wrong_types_400() {
        let obj = json_object(&post(None, r#"{"a":1,"b":null}"#)).unwrap();
        assert_eq!(
            require(&obj, &["a", "b"], "invalid_task", "task")
                .unwrap_err()
                .status(),
            422
        );
        let err = decode::<std::collections::HashMap<String, String>>(obj, "task").unwrap_err();
        assert_eq!(err.status(), 400);
    }
}
