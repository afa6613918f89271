//! Bearer-token authentication with a constant-time comparison.

use super::error::ApiError;
use crate::http::Request;

/// Check the request's `authorization: Bearer <token>` header against
/// `expected`; `None` (no token configured) lets every request through.
pub fn authorize(req: &Request, expected: Option<&str>) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = req
        .header("authorization")
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Compare two byte strings in time that depends only on their lengths,
/// not on where they first differ.
///
/// ```
/// use spin_work_queue::api::constant_time_eq;
/// assert!(constant_time_eq(b"token", b"token"));
/// assert!(!constant_time_eq(b"token", b"tokem"));
/// assert!(!constant_time_eq(b"token", b"token2"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    // Lengths are compared as data too, so a prefix never matches.
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configured_token_allows_everything() {
        assert!(authorize(&Request::new("GET", "/v1/stats"), None).is_ok());
    }

    #[test]
    fn the_right_bearer_token_is_accepted_in_any_scheme_case() {
        let req = Request::new("GET", "/v1/stats").with_header("Authorization", "bearer s3cret");
        assert!(authorize(&req, Some("s3cret")).is_ok());
    }

    #[test]
    fn missing_wrong_or_non_bearer_tokens_are_rejected() {
        for header in [
            None,
            Some("Bearer nope"),
            Some("Basic s3cret"),
            Some("Bearer"),
            Some("Bearer s3cre"),
        ] {
            let mut req = Request::new("GET", "/v1/stats");
            if let Some(h) = header {
                req = req.with_header("authorization", h);
            }
            assert_eq!(
                authorize(&req, Some("s3cret")),
                Err(ApiError::Unauthorized),
                "{header:?}"
            );
        }
    }
}
