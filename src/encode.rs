//! Percent-encoding of free-form names, for URL path segments and store
//! keys alike.

/// Percent-encode every byte but RFC 3986's unreserved characters
/// (`A–Z a–z 0–9 - . _ ~`): the result never contains `/`, and two
/// different inputs never encode alike.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
