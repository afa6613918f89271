//! The fetch executor's logic: input `{"url"}`, output
//! `{status, content_type, bytes, title}` of a `GET` of that URL.
//!
//! Whoever can enqueue a task chooses the URL, so by default the executor
//! refuses hosts that name this machine or a private network by address
//! (`localhost`, loopback, RFC 1918, link-local — cloud metadata services
//! live there —, shared and unique-local ranges, in any IPv4 spelling).
//! Names that *resolve* to such addresses are not caught here: block those
//! with the platform's outbound network policy, and narrow the fetch
//! component's `allowed_outbound_hosts`.

use super::echo::error;
use crate::api::{ApiError, ApiRequest, ApiResponse};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    /// use spin_work_queue::worker::FetchConfig;
    /// let allow = FetchConfig::from_lookup(|_| Some("allow".into())).unwrap();
    /// assert!(allow.allow_private_hosts);
    /// assert!(!FetchConfig::from_lookup(|_| None).unwrap().allow_private_hosts);
    /// assert!(FetchConfig::from_lookup(|_| Some("maybe".into())).is_err());
    /// ```
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let value = var("fetch_private_hosts").unwrap_or_default();
        let allow_private_hosts = match value.trim() {
            "" | "deny" => false,
            "allow" => true,
            other => {
                return Err(ApiError::Config(format!(
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
/// answer when it is missing or not an absolute http(s) URL, a 403 when its
/// host is a private address `config` does not allow.
///
/// ```
/// use spin_work_queue::api::ApiRequest;
/// use spin_work_queue::worker::{fetch_target, FetchConfig};
/// use serde_json::json;
/// let config = FetchConfig::default();
/// let req = |url: &str| ApiRequest::json("POST", "/executors/fetch", &json!({"url": url}));
/// assert_eq!(fetch_target(&req("https://example.com/"), &config).unwrap(), "https://example.com/");
/// assert_eq!(fetch_target(&req("ftp://x"), &config).unwrap_err().status, 400);
/// assert_eq!(fetch_target(&req("http://169.254.169.254/"), &config).unwrap_err().status, 403);
/// ```
pub fn fetch_target(req: &ApiRequest, config: &FetchConfig) -> Result<String, ApiResponse> {
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
    if !config.allow_private_hosts && host.is_private() {
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

/// The host of a URL, as far as [`fetch_target`] cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// An IP address literal (IPv4 in any spelling a resolver accepts).
    Ip(IpAddr),
    /// A domain name.
    Name(String),
}

impl Host {
    fn is_private(&self) -> bool {
        match self {
            Host::Name(name) => name == "localhost" || name.ends_with(".localhost"),
            Host::Ip(IpAddr::V4(ip)) => private_v4(*ip),
            Host::Ip(IpAddr::V6(ip)) => private_v6(ip),
        }
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (a == 100 && (b & 0xc0) == 64) // shared address space 100.64/10
}

fn private_v6(ip: &Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || ip.to_ipv4_mapped().is_some_and(private_v4)
}

/// The host of `rest`, a lower-case URL without its `scheme://`.
fn url_host(rest: &str) -> Result<Host, String> {
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(bracketed) = authority.strip_prefix('[') {
        let inside = bracketed.split(']').next().unwrap_or_default();
        let address = inside.split('%').next().unwrap_or_default();
        return address
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("[{inside}] is not an IPv6 address"));
    }
    let host = authority.split(':').next().unwrap_or_default();
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return Err("has no host".into());
    }
    // As resolvers do: a host whose last label is a number is an IPv4
    // address, possibly in decimal, octal or hex parts (`2130706433`,
    // `0x7f.1`).
    let last = host.rsplit('.').next().unwrap_or_default();
    if parse_ipv4_part(last).is_some() {
        return parse_ipv4(host)
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .ok_or_else(|| format!("{host} is not an IPv4 address"));
    }
    Ok(Host::Name(host.to_string()))
}

/// `inet_aton`'s IPv4 forms: `a.b.c.d`, `a.b.c`, `a.b`, `a`, each part
/// decimal, octal (`0` prefix) or hex (`0x` prefix), the last part filling
/// the remaining bytes.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u64> = host
        .split('.')
        .map(parse_ipv4_part)
        .collect::<Option<_>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|p| *p > 255) {
        return None;
    }
    let room = 8 * (4 - leading.len() as u32);
    if *last >= 1u64 << room {
        return None;
    }
    let value = leading
        .iter()
        .fold(0u64, |acc, p| (acc << 8) | p)
        .checked_shl(room)?
        | last;
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_ipv4_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if part.is_empty() || (digits.is_empty() && radix != 16) {
        return None;
    }
    if digits.is_empty() {
        return Some(0); // "0x"
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|v| *v <= u64::from(u32::MAX))
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
            r#"{"url": "http://:80/"}"#,
            r#"{"url": "http://[::zz]/"}"#,
            r#"{"url": "http://1.2.3.4.5/"}"#,
            r#"{"url": "http://256.1.1.1/"}"#,
            "{",
        ] {
            let req =
                ApiRequest::new("POST", "/executors/fetch").with_body(body.as_bytes().to_vec());
            let got = fetch_target(&req, &FetchConfig::default());
            assert_eq!(got.unwrap_err().status, 400, "{body}");
        }
    }

    fn target(url: &str, allow_private_hosts: bool) -> Result<String, u16> {
        let req = ApiRequest::json("POST", "/executors/fetch", &json!({ "url": url }));
        fetch_target(
            &req,
            &FetchConfig {
                allow_private_hosts,
            },
        )
        .map_err(|r| r.status)
    }

    #[test]
    fn private_and_loopback_hosts_are_refused_in_every_spelling() {
        for url in [
            "http://localhost/",
            "http://LOCALHOST:8080/x",
            "http://app.localhost/",
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://0/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1./",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://user:pw@127.0.0.1:80/",
            "http://example.com@127.0.0.1/",
            "http://[::1]/",
            "http://[::]/",
            "http://[fd00::1]/",
            "http://[fe80::1%25eth0]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]:8080/",
        ] {
            assert_eq!(target(url, false), Err(403), "{url}");
            assert_eq!(target(url, true).as_deref(), Ok(url), "{url} when allowed");
        }
    }

    #[test]
    fn public_hosts_pass() {
        for url in [
            "https://example.com/",
            "https://example.com:8443/path?q=127.0.0.1#x",
            "http://8.8.8.8/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2001:db8::1]/",
            "http://localhost.example.com/",
            "http://127.0.0.1.nip.io/",
            "http://example.com/@127.0.0.1",
        ] {
            assert_eq!(target(url, false).as_deref(), Ok(url), "{url}");
        }
    }

    #[test]
    fn ipv4_forms_parse_like_inet_aton() {
        let ip = |s: &str| parse_ipv4(s).map(|ip| ip.to_string());
        assert_eq!(ip("1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip("1.2.772").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip("1.131844").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip("16909060").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip("0x1.0x2.0x3.0x4").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip("01.02.03.04").as_deref(), Some("1.2.3.4"));
        assert_eq!(ip("4294967295").as_deref(), Some("255.255.255.255"));
        assert_eq!(ip("4294967296"), None);
        assert_eq!(ip("1.2.65536"), None);
        assert_eq!(ip("08.1.1.1"), None);
        assert_eq!(ip("1..2"), None);
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
