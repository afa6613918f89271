//! [`Request`] and [`Response`]: plain HTTP messages, independent of Spin.
//! The API answers them, the worker sends them to executors, and the Spin
//! glue converts them to and from `wasi:http`, so everything above the glue
//! runs and is tested natively.

use serde::Serialize;

/// An HTTP request: one that came in, or one to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Upper-case method (`GET`, `POST`, …).
    pub method: String,
    /// Where it goes: the path and query of a request that came in
    /// (`/v1/tasks?limit=5`, not percent-decoded); for one to send, an
    /// absolute `http(s)://` URL or a path (a request to the app itself).
    pub url: String,
    /// Header names and values; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body (possibly cut one byte past the body limit by the caller).
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The path, without the query (`/v1/tasks`); `/` for an absolute URL
    /// without one.
    pub fn path(&self) -> &str {
        self.path_and_query().0
    }

    /// The raw query string without the `?` (empty when none).
    pub fn query(&self) -> &str {
        self.path_and_query().1
    }

    fn path_and_query(&self) -> (&str, &str) {
        let rest = match self.url.split_once("://") {
            Some((_, after)) => match after.find(['/', '?']) {
                Some(at) => &after[at..],
                None => "",
            },
            None => self.url.as_str(),
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        (if path.is_empty() { "/" } else { path }, query)
    }

    /// A request with a JSON body and `content-type: application/json`.
    pub fn json(method: &str, path_and_query: &str, body: &serde_json::Value) -> Self {
        Self::new(method, path_and_query)
            .with_header("content-type", "application/json")
            .with_body(body.to_string().into_bytes())
    }

    /// The same request with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The same request with `body`.
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The percent-decoded value of query parameter `name`, if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()
            .split('&')
            .filter(|p| !p.is_empty())
            .find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k)? == name).then(|| percent_decode(v))?
            })
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            },
            Err(e) => Self {
                status: 500,
                headers: vec![("content-type".into(), "application/json".into())],
                body: serde_json::json!({"error": {"code": "internal", "message": e.to_string()}})
                    .to_string()
                    .into_bytes(),
            },
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Decode `%XX` escapes (a `+` stays a `+`). `None` when an escape is
/// malformed or the result is not UTF-8.
///
/// ```
/// use spin_work_queue::http::percent_decode;
/// assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
/// assert_eq!(percent_decode("%zz"), None);
/// ```
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_found_and_decoded() {
        let req = Request::new("get", "/v1/dead-letter?x=1&limit=2%30");
        assert_eq!(req.method, "GET");
        assert_eq!(req.path(), "/v1/dead-letter");
        assert_eq!(req.query(), "x=1&limit=2%30");
        assert_eq!(req.query_param("limit").as_deref(), Some("20"));
        assert_eq!(req.query_param("y"), None);
    }

    #[test]
    fn absolute_urls_have_a_path_and_a_query() {
        let at = |url: &str| {
            let req = Request::new("GET", url);
            (req.path().to_string(), req.query().to_string())
        };
        assert_eq!(at("http://h:80/a/b?c=d"), ("/a/b".into(), "c=d".into()));
        assert_eq!(at("https://h"), ("/".into(), "".into()));
        assert_eq!(at("http://h?q"), ("/".into(), "q".into()));
        assert_eq!(at("/x"), ("/x".into(), "".into()));
    }

    #[test]
    fn headers_compare_case_insensitively() {
        let req = Request::new("GET", "/").with_header("Content-Type", "text/plain");
        assert_eq!(req.header("content-type"), Some("text/plain"));
    }
}
