//! Query strings (`a=1&b=x+y`): percent-decoding and looking parameters up, as HTML forms
//! encode them.

/// Decodes `%XX` and `+`; `None` for malformed escapes or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A query value percent-encoded: letters, digits and `-._~` stay, everything else is `%XX`.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Each `name=value` pair, in order, decoded (`None` for a pair that does not decode); a pair
/// without `=` has an empty value.
pub fn pairs(query: &str) -> impl Iterator<Item = Option<(String, String)>> + '_ {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
}

/// Every value of parameter `name`, in order, decoded; pairs that do not decode are skipped.
pub fn all(query: &str, name: &str) -> Vec<String> {
    pairs(query)
        .flatten()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect()
}

/// The first value of parameter `name`, decoded.
pub fn first(query: &str, name: &str) -> Option<String> {
    all(query, name).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_encode_and_decode_back() {
        let path = "opsml-root:/OPSML_MODEL_REGISTRY/a b/ü+%/x.bin";
        let encoded = encode(path);
        assert_eq!(&encoded[..15], "opsml-root%3A%2");
        assert_eq!(percent_decode(&encoded).as_deref(), Some(path));
        // As the opsml client (httpx) encodes a query value: a space is %20, `/` and `:` escaped.
        assert_eq!(encode("opsml-root:/A/b c"), "opsml-root%3A%2FA%2Fb%20c");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c").unwrap(), "a/b c");
        assert_eq!(percent_decode("%2e%2E").unwrap(), "..");
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn parameters_by_name() {
        let query = "run_uid=a&x=%zz&run_uid=b+c&flag&name=m%2B1";
        assert_eq!(all(query, "run_uid"), ["a", "b c"]);
        assert_eq!(first(query, "name").as_deref(), Some("m+1"));
        assert_eq!(first(query, "flag").as_deref(), Some(""));
        assert_eq!(first(query, "x"), None);
        assert_eq!(first(query, "missing"), None);
    }
}
