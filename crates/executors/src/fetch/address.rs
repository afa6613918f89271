//! Whether the host of a URL is public, decided by address: the host is
//! read the way URL parsers and resolvers read it, every IP literal is
//! classified by [`is_public_v4`] or [`is_public_v6`] (IPv6 addresses that
//! embed an IPv4 address are judged by that address), and names are public
//! except the ones this machine's resolver answers itself
//! ([`is_local_name`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host of a URL, as far as [`super::fetch_target`] cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    /// An IP address literal: IPv4 in any spelling `inet_aton` accepts,
    /// IPv6 in brackets (its zone id dropped).
    Ip(IpAddr),
    /// A domain name: percent-decoded, lower case, without trailing dot.
    Name(String),
}

impl Host {
    /// The host part of a URL's authority (without user info and port):
    /// `[IPv6]`, or an IPv4 address or name; why not when it is neither.
    pub(crate) fn parse(host: &str) -> Result<Self, String> {
        match host.strip_prefix('[') {
            Some(bracketed) => bracketed
                .strip_suffix(']')
                .ok_or_else(|| format!("host {host:?} is not a bracketed IPv6 address"))
                .and_then(parse_v6_literal)
                .map(|ip| Host::Ip(IpAddr::V6(ip))),
            None => parse_name_or_v4(host),
        }
    }

    /// Whether the host may be fetched without `fetch_private_hosts = "allow"`.
    pub(crate) fn is_public(&self) -> bool {
        match self {
            Host::Ip(IpAddr::V4(ip)) => is_public_v4(*ip),
            Host::Ip(IpAddr::V6(ip)) => is_public_v6(*ip),
            Host::Name(name) => !is_local_name(name),
        }
    }
}

/// The inside of `[…]`: an IPv6 address (any case, `::`, dotted IPv4
/// tail), optionally followed by a zone id (`%25eth0`).
fn parse_v6_literal(inside: &str) -> Result<Ipv6Addr, String> {
    let (address, zone) = match inside.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (inside, None),
    };
    if matches!(zone, Some("" | "25")) {
        return Err(format!("[{inside}] has an empty zone id"));
    }
    address
        .parse()
        .map_err(|_| format!("[{inside}] is not an IPv6 address"))
}

/// A host that is not in brackets: an IPv4 address when its last label is
/// a number (as URL parsers and resolvers read it), a name otherwise.
fn parse_name_or_v4(host: &str) -> Result<Host, String> {
    let decoded = percent_decode(host)
        .ok_or_else(|| format!("host {host:?} has bad percent-encoding"))?
        .to_ascii_lowercase();
    let name = decoded.strip_suffix('.').unwrap_or(&decoded);
    if name.is_empty() {
        return Err("has no host".into());
    }
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if let Some(bad) = name.chars().find(|c| !name_char(*c)) {
        return Err(format!("host {name:?} has {bad:?} (write names in ASCII)"));
    }
    if name.split('.').any(str::is_empty) {
        return Err(format!("host {name:?} has an empty label"));
    }
    let last = name.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) || parse_ipv4_part(last).is_some() {
        return parse_ipv4(name)
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .ok_or_else(|| format!("{name} is not an IPv4 address"));
    }
    Ok(Host::Name(name.to_string()))
}

/// `%XX` escapes decoded; `None` when one is malformed or the result is
/// not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail
                .get(..2)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// `inet_aton`'s IPv4 forms: `a.b.c.d`, `a.b.c`, `a.b`, `a`, each part
/// decimal, octal (`0` prefix) or hex (`0x` prefix), the last part filling
/// the remaining bytes.
pub(crate) fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
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
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None; // from_str_radix would take a sign
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|v| *v <= u64::from(u32::MAX))
}

/// Names the resolver of this machine answers itself (RFC 6761 `localhost`,
/// and the aliases Debian and Red Hat put in `/etc/hosts`).
const LOCAL_NAMES: &str = "localhost localhost4 localhost6 ip6-localhost ip6-loopback \
    ip6-localnet ip6-mcastprefix ip6-allnodes ip6-allrouters";

/// Domains whose every name is this machine (`app.localhost`,
/// `localhost.localdomain`, `localhost6.localdomain6`).
const LOCAL_DOMAINS: [&str; 4] = ["localhost", "localdomain", "localdomain4", "localdomain6"];

/// Whether `name` (lower case, no trailing dot) names this machine.
pub(crate) fn is_local_name(name: &str) -> bool {
    LOCAL_NAMES.split_whitespace().any(|local| local == name)
        || LOCAL_DOMAINS.iter().any(|domain| {
            name.strip_suffix(domain)
                .is_some_and(|head| head.ends_with('.'))
        })
}

/// IPv4 ranges that are not public: the IANA special-purpose registry's
/// entries that are not globally reachable, and multicast.
const NOT_PUBLIC_V4: [(Ipv4Addr, u32); 16] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),          // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),         // private (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10),      // shared address space (CGNAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),        // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),     // link-local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),      // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),       // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),       // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),     // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),     // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),      // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24),    // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),     // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),        // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),        // reserved
    (Ipv4Addr::new(255, 255, 255, 255), 32), // limited broadcast
];

/// Whether `ip` is a public IPv4 address: outside every range of
/// [`NOT_PUBLIC_V4`].
pub(crate) fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !NOT_PUBLIC_V4
        .iter()
        .any(|&(net, len)| (bits ^ u32::from(net)).checked_shr(32 - len).unwrap_or(0) == 0)
}

/// Ranges of global unicast 2000::/3 that are not public (IANA IPv6
/// special-purpose registry).
const NOT_PUBLIC_V6: [(Ipv6Addr, u32); 5] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32), // Teredo (obfuscated IPv4)
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48), // benchmarking
    (Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28), // ORCHID (deprecated)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

/// Whether `ip` is a public IPv6 address.
///
/// One that embeds an IPv4 address ([`embedded_v4`]) is public when that
/// address is. Otherwise only global unicast 2000::/3 can be public — which
/// refuses `::`, `::1`, 64:ff9b:1::/48 (local-use NAT64), 100::/64
/// (discard), fc00::/7 (unique local), fe80::/10 (link-local), fec0::/10
/// (site-local), ff00::/8 (multicast) and all unallocated space — and
/// within it not the ranges of [`NOT_PUBLIC_V6`].
pub(crate) fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let bits = u128::from(ip);
    let within =
        |net: Ipv6Addr, len: u32| (bits ^ u128::from(net)).checked_shr(128 - len).unwrap_or(0) == 0;
    within(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
        && !NOT_PUBLIC_V6.iter().any(|&(net, len)| within(net, len))
}

/// The IPv4 address an IPv6 address stands for: IPv4-compatible ::/96
/// (`::` and `::1` included), IPv4-mapped ::ffff:0:0/96, IPv4-translated
/// ::ffff:0:0:0/96, NAT64 64:ff9b::/96 (last 32 bits) and 6to4 2002::/16
/// (bits 16..48).
pub(crate) fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [.., a, b, c, d] = ip.octets();
    let low = Ipv4Addr::new(a, b, c, d);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0 | 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, high, low16, ..] => {
            Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low16)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::{fetch_target, FetchConfig};
    use serde_json::json;
    use spin_work_queue::http::Request;

    fn target(url: &str, allow_private_hosts: bool) -> Result<String, u16> {
        let req = Request::json("POST", "/executors/fetch", &json!({ "url": url }));
        let config = FetchConfig {
            allow_private_hosts,
        };
        fetch_target(&req, &config).map_err(|r| r.status)
    }

    /// URLs `http://{host}/` for each whitespace-separated host.
    fn urls(hosts: &str) -> impl Iterator<Item = String> + '_ {
        hosts.split_whitespace().map(|h| format!("http://{h}/"))
    }

    #[test]
    fn every_non_public_spelling_is_refused() {
        let names = "localhost LOCALHOST:8080 localhost. LocalHost. app.localhost a.b.localhost.
            ip6-localhost IP6-LOOPBACK ip6-localhost. localhost.localdomain LOCALHOST.LOCALDOMAIN.
            db.localdomain localhost4 localhost6 localhost6.localdomain6 ip6-allnodes
            %6c%6fcalhost user:pw@localhost:80";
        let v4 = "127.0.0.1 127.1 2130706433 0x7f000001 0X7F.1 0177.0.0.1 127.0.0.%31 0 0.0.0.0
            0.255.255.255 10.1.2.3 100.64.0.1 100.127.255.255 127.255.255.254 169.254.169.254
            172.16.0.1 172.31.255.255 192.0.0.1 192.0.0.255 192.0.2.1 192.88.99.1 192.168.1.1.
            198.18.0.1 198.19.255.255 198.51.100.7 203.0.113.9 224.0.0.1 239.255.255.250
            240.0.0.1 254.255.255.255 255.255.255.255 4294967295 user:pw@127.0.0.1:80
            example.com@127.0.0.1 a@b@10.0.0.1";
        let v6 = "[::1] [::] [0:0:0:0:0:0:0:1] [0000::0001]:80 [::ffff:127.0.0.1] [::ffff:7f00:1]
            [::FFFF:A9FE:A9FE] [::ffff:10.0.0.1]:8080 [::ffff:0:a9fe:a9fe] [::ffff:0:127.0.0.1]
            [::a9fe:a9fe] [::169.254.169.254] [::127.0.0.1] [64:ff9b::a9fe:a9fe]
            [64:ff9b::169.254.169.254] [64:FF9B::7F00:1] [64:ff9b:1::808:808] [64:ff9b:1::1]
            [2002:a9fe:a9fe::1] [2002:7f00:1::] [2002:c0a8:101::1] [2001::1]
            [2001:0:4136:e378:8000:63bf:3fff:fdd2] [100::1] [100::ffff:ffff:ffff:ffff] [ff02::1]
            [FF05::1:3] [ff0e::1] [2001:db8::1] [2001:DB8:ffff::1] [3fff::1] [2001:2::1]
            [2001:10::1] [fc00::1] [fd00::1] [fdff:ffff::1] [fe80::1] [fe80::1%25eth0]
            [FE80::1%25en0]:443 [febf::1] [fec0::1] [feff::1] [5f00::1] [4000::1] [1fff::1]";
        let paths = [
            "http://169.254.169.254/latest/meta-data",
            "https://[::1]:8443/x?y#z",
        ];
        let all = urls(names).chain(urls(v4)).chain(urls(v6));
        for url in all.chain(paths.map(String::from)) {
            assert_eq!(target(&url, false), Err(403), "{url}");
            assert_eq!(
                target(&url, true).as_deref(),
                Ok(url.as_str()),
                "{url} when allowed"
            );
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        let hosts = "8.8.8.8 1.1.1.1 172.32.0.1 172.15.255.255 100.128.0.1 100.63.255.255
            169.253.255.255 192.0.1.1 192.0.3.1 198.20.0.1 223.255.255.255 134744072
            [2606:4700::1111] [2001:4860:4860::8888] [2001:4860:4860::8888]:443 [64:ff9b::808:808]
            [64:ff9b::8.8.8.8] [::ffff:8.8.8.8] [::FFFF:808:808] [2002:808:808::1]
            [2a00:1450:4001::200e] example.com EXAMPLE.COM. localhost.example.com 127.0.0.1.nip.io
            mylocalhost localhostx.com example.localdomain.com 0x7g.example";
        let paths = [
            "https://example.com:8443/path?q=127.0.0.1#x",
            "http://example.com/@127.0.0.1",
            "http://example.com?@127.0.0.1",
        ];
        for url in urls(hosts).chain(paths.map(String::from)) {
            assert_eq!(target(&url, false).as_deref(), Ok(url.as_str()), "{url}");
        }
    }

    #[test]
    fn ipv4_ranges_end_where_the_registry_says() {
        let public = |s: &str| is_public_v4(s.parse().unwrap());
        for (last_before, first, last, first_after) in [
            ("9.255.255.255", "10.0.0.0", "10.255.255.255", "11.0.0.0"),
            (
                "100.63.255.255",
                "100.64.0.0",
                "100.127.255.255",
                "100.128.0.0",
            ),
            (
                "169.253.255.255",
                "169.254.0.0",
                "169.254.255.255",
                "169.255.0.0",
            ),
            (
                "172.15.255.255",
                "172.16.0.0",
                "172.31.255.255",
                "172.32.0.0",
            ),
            ("191.255.255.255", "192.0.0.0", "192.0.0.255", "192.0.1.0"),
            ("192.0.1.255", "192.0.2.0", "192.0.2.255", "192.0.3.0"),
            (
                "192.88.98.255",
                "192.88.99.0",
                "192.88.99.255",
                "192.88.100.0",
            ),
            (
                "192.167.255.255",
                "192.168.0.0",
                "192.168.255.255",
                "192.169.0.0",
            ),
            (
                "198.17.255.255",
                "198.18.0.0",
                "198.19.255.255",
                "198.20.0.0",
            ),
            (
                "198.51.99.255",
                "198.51.100.0",
                "198.51.100.255",
                "198.51.101.0",
            ),
            (
                "203.0.112.255",
                "203.0.113.0",
                "203.0.113.255",
                "203.0.114.0",
            ),
            ("223.255.255.255", "224.0.0.0", "255.255.255.255", "1.0.0.0"),
        ] {
            assert!(
                public(last_before) && public(first_after),
                "{first}..{last}"
            );
            assert!(!public(first) && !public(last), "{first}..{last}");
        }
    }

    #[test]
    fn embedded_ipv4_addresses_are_extracted() {
        let v4 = |s: &str| embedded_v4(s.parse().unwrap()).map(|ip| ip.to_string());
        for (v6, inside) in [
            ("::a9fe:a9fe", "169.254.169.254"),
            ("::ffff:7f00:1", "127.0.0.1"),
            ("::ffff:0:808:808", "8.8.8.8"),
            ("64:ff9b::a00:1", "10.0.0.1"),
            ("2002:c0a8:101:5::1", "192.168.1.1"),
        ] {
            assert_eq!(v4(v6).as_deref(), Some(inside), "{v6}");
        }
        assert_eq!(v4("64:ff9b:1::a00:1"), None);
        assert_eq!(v4("2001:db8::a00:1"), None);
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
        assert_eq!(ip("+1.2.3.4"), None);
    }
}
