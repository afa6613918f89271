//! Outbound HTTP: a plain [`Request`] sent within [`Limits`] (one deadline
//! for the whole exchange), its answer [`Received`].

use futures::SinkExt;
use spin_sdk::http::{ErrorCode, Fields, IncomingResponse, Method, OutgoingRequest, Scheme};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types::RequestOptions};
use spin_work_queue::http::{Request, Response};
use wasi::clocks::monotonic_clock;
use wasi::io::poll;
use wasi::io::streams::StreamError;

/// How long an outbound request may take and how much of its answer is
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deadline of the whole exchange (connecting, sending, the answer's
    /// headers and all of its body), from the call; `None`: Spin's own
    /// timeouts.
    pub deadline_ms: Option<u64>,
    /// Bytes of the answer's body kept in its [`Response::body`].
    pub keep_bytes: usize,
    /// Bytes of the answer's body read at most (counted in
    /// [`Received::body_bytes`]); the rest is not read.
    pub max_read_bytes: u64,
}

impl Limits {
    /// A deadline of `ms`, keeping and reading up to `max_bytes`.
    pub fn within(ms: u64, max_bytes: usize) -> Self {
        Self {
            deadline_ms: Some(ms),
            keep_bytes: max_bytes,
            max_read_bytes: max_bytes as u64,
        }
    }
}

/// An answer to an outbound request.
#[derive(Debug, Clone)]
pub struct Received {
    /// Status, headers and the first [`Limits::keep_bytes`] of the body.
    pub response: Response,
    /// Body bytes read (at most [`Limits::max_read_bytes`]).
    pub body_bytes: u64,
}

/// Why an outbound request got no (complete) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// No complete answer before the deadline.
    Timeout,
    /// The host is not in the component's `allowed_outbound_hosts`.
    Denied,
    /// Anything else (connection refused, DNS, TLS, a malformed URL…).
    Failed(String),
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out"),
            Self::Denied => f.write_str("host not allowed"),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

/// Send `req` (`url`: an absolute `http(s)://` URL, or a path: a Spin
/// self request) and read its answer within `limits`.
pub async fn send(req: &Request, limits: Limits) -> Result<Received, SendFailure> {
    let deadline = limits
        .deadline_ms
        .map(|ms| monotonic_clock::now().saturating_add(ms.saturating_mul(1_000_000)));
    let outgoing = build(req)?;
    let options = limits.deadline_ms.map(|ms| {
        // Spin's own timeouts, as a second line behind the deadline.
        let options = RequestOptions::new();
        let ns = Some(ms.saturating_mul(1_000_000));
        let _ = options.set_connect_timeout(ns);
        let _ = options.set_first_byte_timeout(ns);
        let _ = options.set_between_bytes_timeout(ns);
        options
    });
    let mut sink = outgoing.take_body();
    let future = outgoing_handler::handle(outgoing, options).map_err(failure)?;
    if !req.body.is_empty() {
        sink.send(req.body.clone())
            .await
            .map_err(|e| SendFailure::Failed(format!("cannot send the body: {e:?}")))?;
    }
    // Dropping the sink finishes the request body.
    drop(sink);
    let ready = future.subscribe();
    if !wait(&ready, deadline) {
        return Err(SendFailure::Timeout);
    }
    drop(ready);
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(failure(code)),
        Some(Err(())) | None => return Err(SendFailure::Failed("response already taken".into())),
    };
    read_reply(response, limits, deadline)
}

/// Block until `ready` is, or until `deadline` (monotonic ns) passes:
/// whether `ready` is.
fn wait(ready: &poll::Pollable, deadline: Option<u64>) -> bool {
    match deadline {
        Some(at) => {
            let timer = monotonic_clock::subscribe_instant(at);
            poll::poll(&[ready, &timer]).contains(&0)
        }
        None => {
            ready.block();
            true
        }
    }
}

fn build(req: &Request) -> Result<OutgoingRequest, SendFailure> {
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let fields = Fields::from_list(&headers)
        .map_err(|e| SendFailure::Failed(format!("bad header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match req.method.as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let bad = |what: &str| SendFailure::Failed(format!("bad {what} in {:?}", req.url));
    outgoing.set_method(&method).map_err(|()| bad("method"))?;
    let (scheme, authority, path) = split_url(&req.url).ok_or_else(|| bad("URL"))?;
    outgoing
        .set_scheme(scheme.as_ref())
        .map_err(|()| bad("scheme"))?;
    outgoing
        .set_authority(authority)
        .map_err(|()| bad("authority"))?;
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|()| bad("path"))?;
    Ok(outgoing)
}

/// Authority of a self request: no host. `wasi:http` hosts need an
/// authority to build a URI; Spin (like spin-sdk's own `Request`) treats an
/// authority without a host as a request to the app itself.
const SELF_AUTHORITY: &str = ":80";

/// Scheme, authority and path-with-query of `url`; a path alone is a self
/// request (`http`, [`SELF_AUTHORITY`]).
fn split_url(url: &str) -> Option<(Option<Scheme>, Option<&str>, &str)> {
    if url.starts_with('/') {
        return Some((Some(Scheme::Http), Some(SELF_AUTHORITY), url));
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return None;
    }
    let path = if path.is_empty() { "/" } else { path };
    Some((Some(scheme), Some(authority), path))
}

/// Read the answer's body up to the limits, and before the deadline: a
/// body that trickles in past it is a timeout, whatever its pace.
fn read_reply(
    response: IncomingResponse,
    limits: Limits,
    deadline: Option<u64>,
) -> Result<Received, SendFailure> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let reading = |e| SendFailure::Failed(format!("reading the body: {e:?}"));
    let incoming = response.consume().map_err(reading)?;
    let stream = incoming.stream().map_err(reading)?;
    let mut body = Vec::new();
    let mut total: u64 = 0;
    while total < limits.max_read_bytes {
        let ready = stream.subscribe();
        if !wait(&ready, deadline) {
            return Err(SendFailure::Timeout);
        }
        drop(ready);
        match stream.read(limits.max_read_bytes - total) {
            Ok(chunk) => {
                total += chunk.len() as u64;
                let room = limits.keep_bytes.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(SendFailure::Failed(format!(
                    "reading the body: {}",
                    e.to_debug_string()
                )))
            }
        }
    }
    drop(stream);
    drop(incoming);
    Ok(Received {
        response: Response {
            status,
            headers,
            body,
        },
        body_bytes: total,
    })
}

fn failure(code: ErrorCode) -> SendFailure {
    match code {
        ErrorCode::HttpRequestDenied => SendFailure::Denied,
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => SendFailure::Timeout,
        other => SendFailure::Failed(format!("{other:?}")),
    }
}
