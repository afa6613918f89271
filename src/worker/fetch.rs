//! The fetch executor's logic: input `{"url"}`, output
//! `{status, content_type, bytes, title}` of a `GET` of that URL.

use super::echo::error;
use crate::api::{ApiRequest, ApiResponse};
use serde_json::{json, Value};

/// How much of a page is kept to look for its `<title>`.
pub const FETCH_TITLE_SCAN_BYTES: usize = 256 * 1024;
/// Longest title reported (characters).
pub const FETCH_TITLE_MAX_CHARS: usize = 1_000;

/// The URL to fetch, from the request body `{"url": "http(s)://…"}`; a 400
/// answer when it is missing or not an absolute http(s) URL.
///
/// ```
/// use spin_work_queue::api::ApiRequest;
/// use spin_work_queue::worker::fetch_target;
/// use serde_json::json;
/// let req = ApiRequest::json("POST", "/executors/fetch", &json!({"url": "https://example.com/"}));
/// assert_eq!(fetch_target(&req).unwrap(), "https://example.com/");
/// let bad = ApiRequest::json("POST", "/executors/fetch", &json!({"url": "ftp://x"}));
/// assert_eq!(fetch_target(&bad).unwrap_err().status, 400);
/// ```
pub fn fetch_target(req: &ApiRequest) -> Result<String, ApiResponse> {
    let input: Value = serde_json::from_slice(&req.body)
        .map_err(|e| error(400, "bad_request", &format!("malformed JSON: {e}")))?;
    let url = input
        .get("url")
        .and_then(Value::as_str)
        .map(str::trim)
        .ok_or_else(|| error(400, "invalid_input", "input needs a \"url\" string"))?;
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .filter(|rest| !rest.is_empty() && !rest.starts_with('/'));
    match rest {
        Some(_) => Ok(url.to_string()),
        None => Err(error(
            400,
            "invalid_input",
            &format!("url must be an absolute http(s) URL, got {url:?}"),
        )),
    }
}

/// The executor's answer for a page that came back: always a 200 whose body
/// describes the target's answer (its status may be 4xx or 5xx).
///
/// ```
/// use spin_work_queue::worker::fetch_output;
/// let resp = fetch_output(404, Some("text/html"), 30, b"<title>Not here</title>");
/// let out = resp.json_body();
/// assert_eq!(out["status"], 404);
/// assert_eq!(out["title"], "Not here");
/// ```
pub fn fetch_output(
    status: u16,
    content_type: Option<&str>,
    bytes: u64,
    head: &[u8],
) -> ApiResponse {
    let title = html_title(&String::from_utf8_lossy(head));
    ApiResponse::json(
        200,
        &json!({
            "status": status,
            "content_type": content_type,
            "bytes": bytes,
            "title": title,
        }),
    )
}

/// The answer when the target could not be reached (502, retryable).
pub fn fetch_unreachable(url: &str, why: &str) -> ApiResponse {
    error(502, "unreachable", &format!("could not fetch {url}: {why}"))
}

/// The answer when the app may not reach the target's host (403, not
/// retryable): the fetch component's `allowed_outbound_hosts` excludes it.
pub fn fetch_denied(url: &str) -> ApiResponse {
    error(
        403,
        "host_not_allowed",
        &format!("{url} is not in the fetch component's allowed_outbound_hosts"),
    )
}

/// The text of the first `<title>` element: entities `&amp; &lt; &gt;
/// &quot; &#39;` decoded, whitespace collapsed; `None` when absent or
/// empty.
///
/// ```
/// use spin_work_queue::worker::html_title;
/// assert_eq!(html_title("<html><TITLE lang=en>\n A &amp; B </TITLE>").as_deref(), Some("A & B"));
/// assert_eq!(html_title("<p>no title</p>"), None);
/// ```
pub fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    let open = loop {
        let at = from + lower[from..].find("<title")?;
        let after = lower.as_bytes().get(at + 6).copied();
        if matches!(after, Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/')) {
            break at;
        }
        from = at + 6;
    };
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let text = decode_entities(&html[start..end]);
    let collapsed: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(FETCH_TITLE_MAX_CHARS)
        .collect();
    (!collapsed.is_empty()).then_some(collapsed)
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_found_case_insensitively_and_cleaned() {
        assert_eq!(html_title("<title>Hi</title>").as_deref(), Some("Hi"));
        assert_eq!(
            html_title("<titlex>no</titlex><title>yes</title>").as_deref(),
            Some("yes")
        );
        assert_eq!(html_title("<title>  </title>"), None);
        assert_eq!(html_title("<title>unterminated"), None);
        assert_eq!(
            html_title("<title>&lt;b&gt; &amp;amp;</title>").as_deref(),
            Some("<b> &amp;")
        );
    }

    #[test]
    fn multibyte_text_around_the_title_is_fine() {
        assert_eq!(html_title("é<title>日本</title>é").as_deref(), Some("日本"));
    }

    #[test]
    fn inputs_without_an_http_url_are_400() {
        for body in [
            r#"{}"#,
            r#"{"url": 3}"#,
            r#"{"url": "https://"}"#,
            r#"{"url": "/x"}"#,
            "{",
        ] {
            let req =
                ApiRequest::new("POST", "/executors/fetch").with_body(body.as_bytes().to_vec());
            assert_eq!(fetch_target(&req).unwrap_err().status, 400, "{body}");
        }
    }

    #[test]
    fn failures_to_reach_are_502_and_denials_403() {
        assert_eq!(fetch_unreachable("https://x", "refused").status, 502);
        assert_eq!(fetch_denied("https://x").status, 403);
    }
}
