//! `allowed_outbound_hosts`: which URLs a component may call over `wasi:http`.
//! Entries are `scheme://host[:port]`; `*` may stand for the scheme, the host, a leading
//! subdomain (`*.example.com`) or the port. With no port, the scheme's default port applies.
//! Templates (`{{ endpoint }}`) are expanded with the app's variables before parsing.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
    any_port: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Subdomains(String),
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        _ => None,
    }
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self> {
        if entry.contains("{{") {
            // Checked after expansion, when the variables are known.
            return Ok(Self {
                scheme: None,
                host: HostPattern::Any,
                port: None,
                any_port: false,
            });
        }
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("{entry:?} must look like scheme://host[:port]");
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            bail!("{entry:?}: paths are not allowed, only scheme://host[:port]");
        }
        let scheme = match scheme {
            "*" => None,
            "http" | "https" | "postgres" | "mysql" => Some(scheme.to_string()),
            other => bail!("{entry:?}: unsupported scheme {other:?}"),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
        };
        let (port, any_port) = match port {
            None => (None, false),
            Some("*") => (None, true),
            Some(p) => match p.parse::<u16>() {
                Ok(p) => (Some(p), false),
                Err(_) => bail!("{entry:?}: invalid port {p:?}"),
            },
        };
        if host.is_empty() {
            bail!("{entry:?}: missing host");
        }
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            HostPattern::Subdomains(domain.to_ascii_lowercase())
        } else if host.contains('*') {
            bail!("{entry:?}: '*' is only allowed as the whole host or a leading '*.'");
        } else {
            HostPattern::Exact(host.to_ascii_lowercase())
        };
        Ok(Self {
            scheme,
            host,
            port,
            any_port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != scheme) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomains(d) => host
                .strip_suffix(d.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
        };
        let port_ok = self.any_port
            || match self.port {
                Some(p) => p == port,
                None => match &self.scheme {
                    Some(s) => default_port(s) == Some(port),
                    None => default_port(scheme) == Some(port),
                },
            };
        host_ok && port_ok
    }
}

/// A component's whole list; an empty list allows nothing.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    hosts: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn new(hosts: Vec<AllowedHost>) -> Self {
        Self { hosts }
    }

    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else {
            return false;
        };
        let Some(port) = uri.port_u16().or_else(|| default_port(scheme)) else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allows_host(scheme, host, port)
    }

    /// Whether a connection to `scheme://host:port` is allowed (e.g. `postgres`).
    pub fn allows_host(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.hosts.iter().any(|h| h.allows(scheme, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], url: &str) -> bool {
        OutboundPolicy::new(
            entries
                .iter()
                .map(|e| AllowedHost::parse(e).unwrap())
                .collect(),
        )
        .allows(&url.parse().unwrap())
    }

    #[test]
    fn matching_rules() {
        let cases: &[(&[&str], &str, bool)] = &[
            (
                &["https://s3.amazonaws.com"],
                "https://s3.amazonaws.com/b/k",
                true,
            ),
            (
                &["https://s3.amazonaws.com"],
                "http://s3.amazonaws.com/b/k",
                false,
            ),
            (
                &["https://s3.amazonaws.com"],
                "https://s3.amazonaws.com:8443/",
                false,
            ),
            (&["http://127.0.0.1:9000"], "http://127.0.0.1:9000/x", true),
            (&["http://127.0.0.1:9000"], "http://127.0.0.1:9001/x", false),
            (&["http://127.0.0.1:*"], "http://127.0.0.1:9001/x", true),
            (&["https://*.example.com"], "https://a.example.com/", true),
            (&["https://*.example.com"], "https://example.com/", false),
            (&["https://*.example.com"], "https://badexample.com/", false),
            (&["*://localhost:*"], "http://localhost:1/", true),
            (&["*://*:*"], "https://anything.test:5/", true),
            (&[], "https://example.com/", false),
        ];
        for (entries, url, want) in cases {
            assert_eq!(allows(entries, url), *want, "{entries:?} {url}");
        }
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "example.com",
            "ftp://x",
            "https://x:port",
            "https://a*b.com",
            "https://x/path",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
