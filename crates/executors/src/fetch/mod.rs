//! The fetch executor's logic: input `{"url"}`, output
//! `{status, content_type, bytes, title}` of a `GET` of that URL.
//!
//! # Which hosts are refused
//!
//! Whoever can enqueue a task chooses the URL, so unless
//! `fetch_private_hosts = "allow"`, [`fetch_target`] refuses (403
//! `host_not_allowed`) a URL whose host is not public. It decides by
//! address, on the host as written in the URL:
//!
//! - **IP literals, in every spelling**: IPv4 in all the forms `inet_aton`
//!   and URL parsers accept (`127.0.0.1`, `127.1`, `2130706433`, `0x7f.1`,
//!   `0177.0.0.1`, a trailing dot, percent-encoded digits); IPv6 in
//!   brackets in any case and compression, with a dotted IPv4 tail
//!   (`[::ffff:127.0.0.1]`) or a zone id (`[fe80::1%25eth0]`). An IPv4
//!   address is public unless it is in a special-purpose range of the IANA
//!   registry (this network, RFC 1918, shared 100.64/10, loopback,
//!   link-local 169.254/16 where cloud metadata services live, IETF
//!   protocol assignments, documentation, 6to4 relay, benchmarking), or
//!   multicast, reserved or broadcast. An IPv6 address that embeds an IPv4
//!   address (IPv4-compatible, -mapped and -translated, NAT64 64:ff9b::/96,
//!   6to4 2002::/16) is judged by that IPv4 address; any other is public
//!   only in global unicast 2000::/3 outside Teredo, benchmarking, ORCHID
//!   and documentation space — so `::`, `::1`, unique-local, link-local,
//!   site-local, multicast, discard-only and local-use NAT64 are refused.
//! - **Names** are public, except those this machine's resolver answers
//!   itself: `localhost`, `localhost4`, `localhost6`, `ip6-localhost`,
//!   `ip6-loopback` and the other `ip6-*` aliases of `/etc/hosts`, and
//!   every name under `.localhost`, `.localdomain`, `.localdomain4` or
//!   `.localdomain6` — in any case, with or without a trailing dot.
//! - A host that parsers could read differently (a `#`, `\`, space or
//!   non-ASCII character before the path, an empty label, a last label
//!   that is a number but not an IPv4 address) is a 400.
//!
//! # What cannot be checked here
//!
//! A component does not see which addresses a name resolves to: Spin
//! resolves it when it connects. A DNS name that resolves to a private
//! address (`127.0.0.1.nip.io`, a rebinding domain, an internal zone)
//! passes this check, and so does an IPv6 address under a network-specific
//! NAT64 prefix. For those, the operator narrows the fetch component's
//! `allowed_outbound_hosts` to the hosts it needs, and blocks private
//! networks (loopback, RFC 1918, link-local and metadata addresses,
//! unique-local) at the platform: egress firewall, network policy or proxy.

mod address;

use crate::error;
use address::Host;
use serde_json::{json, Value};
use spin_work_queue::config::ConfigError;
use spin_work_queue::http::{Request, Response};

/// How much of a page is kept to look for its `<title>`.
pub const FETCH_TITLE_SCAN_BYTES: usize = 256 * 1024;
/// Longest title reported (characters).
pub const FETCH_TITLE_MAX_CHARS: usize = 1_000;

/// The fetch executor's settings, from Spin variables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchConfig {
    /// Whether URLs naming loopback or private addresses are fetched
    /// (`fetch_private_hosts = "allow"`; default `"deny"`).
    pub allow_private_hosts: bool,
}

impl FetchConfig {
    /// Read the settings through `var` (a Spin variable lookup).
    ///
    /// ```
    /// use wq_executors::fetch::FetchConfig;
    /// let allow = FetchConfig::from_lookup(|_| Some("allow".into())).unwrap();
    /// assert!(allow.allow_private_hosts);
    /// assert!(!FetchConfig::from_lookup(|_| None).unwrap().allow_private_hosts);
    /// assert!(FetchConfig::from_lookup(|_| Some("maybe".into())).is_err());
    /// ```
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let value = var("fetch_private_hosts").unwrap_or_default();
        let allow_private_hosts = match value.trim() {
            "" | "deny" => false,
            "allow" => true,
            other => {
                return Err(ConfigError::Rule(format!(
                    "fetch_private_hosts must be \"deny\" or \"allow\", got {other:?}"
                )))
            }
        };
        Ok(Self {
            allow_private_hosts,
        })
    }
}

/// The URL to fetch, from the request body `{"url": "http(s)://…"}`: a 400
/// answer when it is missing, not an absolute http(s) URL or has a host that
/// parsers could read differently, a 403 when its host is not public (see
/// the [module docs](self)) and `config` does not allow private hosts.
///
/// ```
/// use spin_work_queue::http::Request;
/// use wq_executors::fetch::{fetch_target, FetchConfig};
/// use serde_json::json;
/// let config = FetchConfig::default();
/// let req = |url: &str| Request::json("POST", "/executors/fetch", &json!({"url": url}));
/// assert_eq!(fetch_target(&req("https://example.com/"), &config).unwrap(), "https://example.com/");
/// assert_eq!(fetch_target(&req("ftp://x"), &config).unwrap_err().status, 400);
/// assert_eq!(fetch_target(&req("http://169.254.169.254/"), &config).unwrap_err().status, 403);
/// ```
pub fn fetch_target(req: &Request, config: &FetchConfig) -> Result<String, Response> {
    let input: Value = serde_json::from_slice(&req.body)
        .map_err(|e| error(400, "bad_request", &format!("malformed JSON: {e}")))?;
    let url = input
        .get("url")
        .and_then(Value::as_str)
        .map(str::trim)
        .ok_or_else(|| error(400, "invalid_input", "input needs a \"url\" string"))?;
    let invalid = |why: &str| error(400, "invalid_input", &format!("url {url:?}: {why}"));
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .filter(|rest| !rest.is_empty() && !rest.starts_with('/'))
        .ok_or_else(|| invalid("must be an absolute http(s) URL"))?;
    let host = url_host(rest).map_err(|why| invalid(&why))?;
    if !config.allow_private_hosts && !host.is_public() {
        return Err(error(
            403,
            "host_not_allowed",
            &format!(
                "{url} names this machine or a private network; the fetch executor only \
                 reaches public hosts (fetch_private_hosts = \"allow\" lifts this)"
            ),
        ));
    }
    Ok(url.to_string())
}

/// The host of `rest`, a URL without its `scheme://`, or why it has none
/// that URL parsers would agree on.
///
/// The authority ends at the first `/` or `?`; a `#`, `\\`, space or
/// non-ASCII character before that is refused rather than guessed at, since
/// URL parsers disagree on where such an authority ends.
fn url_host(rest: &str) -> Result<Host, String> {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority_char = |c: char| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:@[]".contains(c);
    if let Some(bad) = authority.chars().find(|c| !authority_char(*c)) {
        return Err(format!("{bad:?} is not allowed before the path"));
    }
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    // The port follows the last `:` that is not inside brackets.
    let (host, port) = match host_port.rfind([':', ']']) {
        Some(at) if host_port[at..].starts_with(':') => (&host_port[..at], &host_port[at + 1..]),
        _ => (host_port, ""),
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    Host::parse(host)
}

/// The executor's answer for a page that came back: always a 200 whose body
/// describes the target's answer (its status may be 4xx or 5xx).
///
/// ```
/// use wq_executors::fetch::fetch_output;
/// let resp = fetch_output(404, Some("text/html"), 30, b"<title>Not here</title>");
/// let out = resp.json_body();
/// assert_eq!(out["status"], 404);
/// assert_eq!(out["title"], "Not here");
/// ```
pub fn fetch_output(status: u16, content_type: Option<&str>, bytes: u64, head: &[u8]) -> Response {
    let title = html_title(&String::from_utf8_lossy(head));
    Response::json(
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
pub fn fetch_unreachable(url: &str, why: &str) -> Response {
    error(502, "unreachable", &format!("could not fetch {url}: {why}"))
}

/// The answer when the app may not reach the target's host (403, not
/// retryable): the fetch component's `allowed_outbound_hosts` excludes it.
pub fn fetch_denied(url: &str) -> Response {
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
/// use wq_executors::fetch::html_title;
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
            r#"{"url": "http://:80/"}"#,
            r#"{"url": "http://[::zz]/"}"#,
            r#"{"url": "http://1.2.3.4.5/"}"#,
            r#"{"url": "http://256.1.1.1/"}"#,
            "{",
        ] {
            let req = Request::new("POST", "/executors/fetch").with_body(body.as_bytes().to_vec());
            let got = fetch_target(&req, &FetchConfig::default());
            assert_eq!(got.unwrap_err().status, 400, "{body}");
        }
    }

    fn status(url: &str) -> u16 {
        let req = Request::json("POST", "/executors/fetch", &json!({ "url": url }));
        let config = FetchConfig {
            allow_private_hosts: true,
        };
        fetch_target(&req, &config).map_or_else(|r| r.status, |_| 200)
    }

    #[test]
    fn hosts_parsers_could_read_differently_are_400() {
        let hosts = "[::1]x [::1 [fe80::1%25] [fe80::1%] [v1.x] [::ffff:0177.0.0.1] 127.0.0.08
            a..b 127.0.0.1.. %zz 127.0.0.%+1 127.0.0.1%00 example.com:8o [::1]:x 1:2:3
            example.com#@127.0.0.1 example.com\\@127.0.0.1 ｌｏｃａｌｈｏｓｔ";
        for url in hosts.split_whitespace().map(|h| format!("http://{h}/")) {
            assert_eq!(status(&url), 400, "{url}");
        }
    }

    #[test]
    fn the_setting_reads_deny_or_allow() {
        let read = |v: &str| FetchConfig::from_lookup(|_| Some(v.to_string()));
        assert!(!read("").unwrap().allow_private_hosts);
        assert!(!read("deny").unwrap().allow_private_hosts);
        assert!(read(" allow ").unwrap().allow_private_hosts);
        assert!(read("yes").is_err());
    }

    #[test]
    fn failures_to_reach_are_502_and_denials_403() {
        assert_eq!(fetch_unreachable("https://x", "refused").status, 502);
        assert_eq!(fetch_denied("https://x").status, 403);
    }
}
