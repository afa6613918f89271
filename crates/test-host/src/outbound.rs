//! Outbound HTTP from components, with Spin's `allowed_outbound_hosts` rules.
//!
//! - A URL without a host (a relative URL such as `/worker/drain`, which
//!   spin-sdk sends with the authority `:80`) or with the host `self.alt` is a
//!   *self request*: allowed when the component lists `"http://self"`, and
//!   dispatched in process through this host's router.
//! - `http://<component>.spin.internal/...` invokes that component directly
//!   (service chaining), when a pattern such as `"http://*.spin.internal"`
//!   allows the host.
//! - Anything else must match an allowed pattern (`scheme://host:port`, with
//!   `*` for the scheme, the host, a leading `*.` subdomain wildcard, or the
//!   port, and port ranges `a-b`); a literal `http://self/...` is therefore
//!   denied, as in Spin 4.1. Denied requests fail with
//!   `ErrorCode::HttpRequestDenied`.
//!
//! External requests are sent over plain HTTP/1.1 (no TLS: `https` URLs fail
//! with a TLS error; the test host is meant for loopback traffic).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::server::App;

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    scheme: Option<String>,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Subdomains(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortMatch {
    Any,
    /// The scheme's default port (80 for http, 443 for https).
    Default,
    Range(u16, u16),
}

/// A component's parsed `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    allow_all: bool,
    allow_self: bool,
    patterns: Vec<HostPattern>,
}

impl AllowedHosts {
    /// Parses the manifest entries; an entry that cannot be parsed is an error.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut out = AllowedHosts::default();
        for entry in entries {
            if entry == "insecure:allow-all" {
                out.allow_all = true;
                continue;
            }
            let (scheme, rest) = entry
                .split_once("://")
                .ok_or_else(|| format!("`{entry}`: expected scheme://host[:port]"))?;
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.contains('/') {
                return Err(format!("`{entry}`: paths are not allowed"));
            }
            if rest == "self" && (scheme == "http" || scheme == "https" || scheme == "*") {
                out.allow_self = true;
                continue;
            }
            let (host, port) = split_host_port(rest);
            let host = match host {
                "*" => HostMatch::Any,
                h if h.starts_with("*.") => HostMatch::Subdomains(h[1..].to_ascii_lowercase()),
                "" => return Err(format!("`{entry}`: missing host")),
                h if h.contains('*') => {
                    return Err(format!("`{entry}`: unsupported host wildcard"))
                }
                h => HostMatch::Exact(h.to_ascii_lowercase()),
            };
            let port = match port {
                None => PortMatch::Default,
                Some("*") => PortMatch::Any,
                Some(p) => match p.split_once('-') {
                    Some((a, b)) => PortMatch::Range(parse_port(entry, a)?, parse_port(entry, b)?),
                    None => {
                        let p = parse_port(entry, p)?;
                        PortMatch::Range(p, p)
                    }
                },
            };
            let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
            out.patterns.push(HostPattern { scheme, host, port });
        }
        Ok(out)
    }

    /// Whether relative URLs (self requests) are allowed (`"http://self"`).
    pub fn allows_self(&self) -> bool {
        self.allow_all || self.allow_self
    }

    /// Whether a request to `scheme://host:port` is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.allow_all {
            return true;
        }
        let host = host.to_ascii_lowercase();
        self.patterns.iter().any(|p| {
            let scheme_ok = p.scheme.as_deref().is_none_or(|s| s == scheme);
            let host_ok = match &p.host {
                HostMatch::Any => true,
                HostMatch::Subdomains(suffix) => host.ends_with(suffix.as_str()),
                HostMatch::Exact(h) => *h == host,
            };
            let port_ok = match p.port {
                PortMatch::Any => true,
                PortMatch::Default => Some(port) == default_port(scheme),
                PortMatch::Range(a, b) => (a..=b).contains(&port),
            };
            scheme_ok && host_ok && port_ok
        })
    }
}

fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        // [ipv6]:port
        if let Some((h, after)) = rest.split_once(']') {
            return (h, after.strip_prefix(':'));
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

fn parse_port(entry: &str, p: &str) -> Result<u16, String> {
    p.parse()
        .map_err(|_| format!("`{entry}`: invalid port `{p}`"))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Where an outbound request goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    SelfApp,
    Component(String),
    External,
}

fn classify(uri: &http::Uri) -> Target {
    let host = uri.host().unwrap_or("");
    if host.is_empty() || host.eq_ignore_ascii_case("self.alt") {
        Target::SelfApp
    } else if let Some(name) = host.to_ascii_lowercase().strip_suffix(".spin.internal") {
        Target::Component(name.to_string())
    } else {
        Target::External
    }
}

/// The `wasi:http` hooks of one component instance.
pub struct OutboundHooks {
    app: Arc<App>,
    component: usize,
}

impl OutboundHooks {
    /// Hooks for an instance of component number `component` of `app`.
    pub fn new(app: Arc<App>, component: usize) -> Self {
        OutboundHooks { app, component }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        let app = self.app.clone();
        let component = self.component;
        Box::new(async move {
            let response = send(app, component, request, options).await?;
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

async fn send(
    app: Arc<App>,
    component: usize,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, HttpError> {
    let allowed = app.allowed_hosts(component);
    let uri = request.uri().clone();
    if !app.count_outbound() {
        return Err(HttpError::HttpRequestDenied);
    }
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    match classify(&uri) {
        Target::SelfApp => {
            if !allowed.allows_self() {
                return Err(HttpError::HttpRequestDenied);
            }
            app.dispatch_self(request).await
        }
        Target::Component(_) if !app.limits().service_chaining => {
            Err(HttpError::DestinationNotFound)
        }
        Target::Component(name) => {
            let port = uri.port_u16().or(default_port(&scheme)).unwrap_or(80);
            let host = uri.host().unwrap_or("");
            if !allowed.allows(&scheme, host, port) {
                return Err(HttpError::HttpRequestDenied);
            }
            app.dispatch_component(&name, request).await
        }
        Target::External => {
            let host = uri.host().unwrap_or("").to_string();
            let port = uri
                .port_u16()
                .or(default_port(&scheme))
                .ok_or(HttpError::HttpRequestUriInvalid)?;
            if !allowed.allows(&scheme, &host, port) {
                return Err(HttpError::HttpRequestDenied);
            }
            if scheme != "http" {
                return Err(HttpError::InternalError(Some(format!(
                    "wq-test-host sends plain http only, not {scheme}"
                ))));
            }
            send_plain_http(request, &host, port, options.unwrap_or_default()).await
        }
    }
}

async fn send_plain_http(
    mut request: http::Request<WasiBody>,
    host: &str,
    port: u16,
    options: RequestOptions,
) -> Result<http::Response<WasiBody>, HttpError> {
    let long = Duration::from_secs(600);
    let connect_timeout = options.connect_timeout.unwrap_or(long);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(long);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::time::timeout(
        connect_timeout,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)?
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
        _ => HttpError::Connect(e),
    })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(HttpError::from)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    Ok(response.map(|b| b.map_err(HttpError::from).boxed_unsync()))
}

/// A body made of one buffer.
pub(crate) fn full_body(bytes: impl Into<Bytes>) -> WasiBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns() {
        let h = hosts(&[
            "http://self",
            "http://127.0.0.1:*",
            "https://*:443",
            "http://*.spin.internal",
        ]);
        assert!(h.allows_self());
        assert!(h.allows("http", "127.0.0.1", 8080));
        assert!(!h.allows("https", "127.0.0.1", 8080));
        assert!(h.allows("https", "example.com", 443));
        assert!(!h.allows("https", "example.com", 8443));
        assert!(h.allows("http", "queue.spin.internal", 80));
        assert!(!h.allows("http", "self", 80));
        let any = hosts(&["*://*:*"]);
        assert!(any.allows("http", "x", 1) && !any.allows_self());
        let exact = hosts(&["http://localhost:3000", "http://a.example"]);
        assert!(exact.allows("http", "LOCALHOST", 3000));
        assert!(!exact.allows("http", "localhost", 3001));
        assert!(exact.allows("http", "a.example", 80));
        let range = hosts(&["http://h:8000-8002"]);
        assert!(range.allows("http", "h", 8001) && !range.allows("http", "h", 8003));
        assert!(AllowedHosts::parse(&["nonsense".to_string()]).is_err());
    }

    #[test]
    fn targets() {
        let t = |s: &str| classify(&s.parse().unwrap());
        assert_eq!(t("http://:80/worker/drain"), Target::SelfApp);
        assert_eq!(t("/worker/drain"), Target::SelfApp);
        assert_eq!(t("http://self.alt/x"), Target::SelfApp);
        assert_eq!(t("http://self/x"), Target::External);
        assert_eq!(
            t("http://queue.spin.internal/x"),
            Target::Component("queue".into())
        );
        assert_eq!(t("http://127.0.0.1:9/x"), Target::External);
    }
}
