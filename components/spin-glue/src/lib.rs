//! Spin glue shared by the components: `wasi:http` requests in and out as
//! the root crate's plain [`ApiRequest`] / [`ApiResponse`], outbound calls
//! with timeouts, and opening the queue on Spin's key-value store.
//!
//! Everything here is conversion; the behaviour lives in the root crate
//! (`spin_work_queue::api`, `spin_work_queue::worker`). `wasm32` only.

#![cfg(target_arch = "wasm32")]
#![deny(missing_docs)]

use futures::{SinkExt, StreamExt};
use spin_sdk::http::{
    ErrorCode, Fields, IncomingRequest, IncomingResponse, Method, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types::RequestOptions};
use spin_work_queue::api::{ApiConfig, ApiError, ApiRequest, ApiResponse};
use spin_work_queue::kv::{GetMany, WasiKv};
use spin_work_queue::{KvWorkQueue, QueueError, SystemClock};
use std::sync::Arc;
use wasi::clocks::monotonic_clock;
use wasi::io::poll;

pub use spin_work_queue::spin_config::variable;

/// The label of the key-value store the queue lives in.
pub const STORE_LABEL: &str = "default";

/// The queue engine on this component's `default` store, configured by
/// `config`; `kv_get_many` (`batch` | `single`) picks how several keys are
/// read.
pub fn open_queue(config: &ApiConfig) -> Result<KvWorkQueue<WasiKv>, ApiError> {
    let mode = GetMany::parse(&variable("kv_get_many").unwrap_or_default())
        .map_err(|e| ApiError::Config(e.to_string()))?;
    let kv = WasiKv::open(STORE_LABEL, mode).map_err(|e| ApiError::Queue(QueueError::Store(e)))?;
    KvWorkQueue::with_config(kv, config.queue_config(), Arc::new(SystemClock))
        .map_err(|e| ApiError::Config(e.to_string()))
}

/// Read an incoming request; the body is read up to `max_body + 1` bytes
/// (so an oversized body is seen as such without reading all of it).
pub async fn read_request(req: IncomingRequest, max_body: usize) -> Result<ApiRequest, ApiError> {
    let method = req.method().to_string().to_ascii_uppercase();
    let path_and_query = req.path_with_query().unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e:?}")))?;
        body.extend_from_slice(&chunk);
        if body.len() > max_body {
            body.truncate(max_body + 1);
            break;
        }
    }
    let mut api = ApiRequest::new(&method, &path_and_query);
    api.headers = headers;
    api.body = body;
    Ok(api)
}

/// Send `resp` as the answer and finish its body, so the client has the
/// complete response before the component does anything else.
pub async fn respond(out: ResponseOutparam, resp: &ApiResponse) {
    let pairs: Vec<(String, Vec<u8>)> = resp
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let headers = Fields::from_list(&pairs).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    if response.set_status_code(resp.status).is_err() {
        let _ = response.set_status_code(500);
    }
    if let Err(e) = out.set_with_body(response, resp.body.clone()).await {
        eprintln!("spin-work-queue: could not send the response: {e:?}");
    }
}

/// An outbound HTTP request.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Method (`GET`, `POST`, …).
    pub method: String,
    /// Absolute `http(s)://` URL, or a path: a Spin self request.
    pub url: String,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// Body to send (none when empty).
    pub body: Vec<u8>,
    /// Connect, first-byte and between-bytes timeout; Spin's default when
    /// `None`.
    pub timeout_ms: Option<u64>,
    /// Bytes of the answer's body kept in [`Reply::body`].
    pub keep_bytes: usize,
    /// Bytes of the answer's body read at most (counted in
    /// [`Reply::total_bytes`]).
    pub max_read_bytes: u64,
}

impl Outbound {
    /// `POST` of the plain request `req` (its path and query as the URL
    /// unless `url` is given).
    pub fn from_api(req: &ApiRequest, url: Option<&str>) -> Self {
        let target = match url {
            Some(u) => u.to_string(),
            None if req.query.is_empty() => req.path.clone(),
            None => format!("{}?{}", req.path, req.query),
        };
        Self {
            method: req.method.clone(),
            url: target,
            headers: req.headers.clone(),
            body: req.body.clone(),
            timeout_ms: None,
            keep_bytes: 64 * 1024,
            max_read_bytes: 64 * 1024,
        }
    }
}

/// An answer to an [`Outbound`] request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The first [`Outbound::keep_bytes`] bytes of the body.
    pub body: Vec<u8>,
    /// Body bytes read (at most [`Outbound::max_read_bytes`]).
    pub total_bytes: u64,
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why an [`Outbound`] request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// No answer in time.
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

/// Send `req` and read its answer.
pub async fn send(req: Outbound) -> Result<Reply, SendFailure> {
    let outgoing = build(&req)?;
    let options = req.timeout_ms.map(|ms| {
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
    // The host enforces the timeouts too (request options); racing a timer
    // here keeps the first-byte deadline on any host.
    let ready = future.subscribe();
    match req.timeout_ms {
        Some(ms) => {
            let timer = monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000));
            if !poll::poll(&[&ready, &timer]).contains(&0) {
                return Err(SendFailure::Timeout);
            }
        }
        None => ready.block(),
    }
    drop(ready);
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(failure(code)),
        Some(Err(())) | None => return Err(SendFailure::Failed("response already taken".into())),
    };
    read_reply(response, req.keep_bytes, req.max_read_bytes).await
}

fn build(req: &Outbound) -> Result<OutgoingRequest, SendFailure> {
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

async fn read_reply(
    response: IncomingResponse,
    keep: usize,
    max_read: u64,
) -> Result<Reply, SendFailure> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let mut body = Vec::new();
    let mut total: u64 = 0;
    {
        let mut stream = response.take_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| SendFailure::Failed(format!("reading the body: {e:?}")))?;
            total += chunk.len() as u64;
            let room = keep.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if total >= max_read {
                break;
            }
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
        total_bytes: total,
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
