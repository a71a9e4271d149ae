//! Single `Range: bytes=…` requests on downloads (RFC 9110 §14): `start-end`, `start-` and
//! `-suffix`. Multi-range requests and other units are answered with the whole file, which
//! the RFC allows; a range that starts past the end is unsatisfiable (416).

/// What to send for a `Range` header and a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send everything with 200.
    Full,
    /// Send bytes `start..=end` with 206.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

impl RangeRequest {
    pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return RangeRequest::Full;
        };
        if spec.contains(',') {
            return RangeRequest::Full;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return RangeRequest::Full;
        };
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        match (first.trim().is_empty(), number(first), number(last)) {
            // `-suffix`: the last `suffix` bytes.
            (true, _, Some(0)) => RangeRequest::Unsatisfiable,
            (true, _, Some(_)) if size == 0 => RangeRequest::Unsatisfiable,
            (true, _, Some(suffix)) => RangeRequest::Partial {
                start: size.saturating_sub(suffix),
                end: size - 1,
            },
            (false, Some(start), _) if start >= size => RangeRequest::Unsatisfiable,
            (false, Some(start), None) if last.trim().is_empty() => RangeRequest::Partial {
                start,
                end: size - 1,
            },
            (false, Some(start), Some(end)) if end >= start => RangeRequest::Partial {
                start,
                end: end.min(size - 1),
            },
            // Malformed (`5-2`, `x-`, …): ignored, as the RFC asks.
            _ => RangeRequest::Full,
        }
    }
}

/// Whether an `If-None-Match` header matches the entity tag `etag` (quoted, strong or weak).
pub fn if_none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(header) = header else { return false };
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn ranges() {
        let cases: &[(Option<&str>, u64, RangeRequest)] = &[
            (None, 10, Full),
            (Some("bytes=0-4"), 10, Partial { start: 0, end: 4 }),
            (Some("bytes=5-"), 10, Partial { start: 5, end: 9 }),
            (Some("bytes=-3"), 10, Partial { start: 7, end: 9 }),
            (Some("bytes=-30"), 10, Partial { start: 0, end: 9 }),
            (Some("bytes=8-100"), 10, Partial { start: 8, end: 9 }),
            (Some("bytes=9-9"), 10, Partial { start: 9, end: 9 }),
            (Some("bytes=10-"), 10, Unsatisfiable),
            (Some("bytes=10-20"), 10, Unsatisfiable),
            (Some("bytes=-0"), 10, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=-5"), 0, Unsatisfiable),
            (Some("bytes=5-2"), 10, Full),
            (Some("bytes=0-1,4-5"), 10, Full),
            (Some("items=0-1"), 10, Full),
            (Some("bytes=x-"), 10, Full),
            (Some("bytes=+1-2"), 10, Full),
            (Some("bytes=99999999999999999999-"), 10, Full),
        ];
        for (header, size, want) in cases {
            assert_eq!(
                RangeRequest::parse(*header, *size),
                *want,
                "{header:?} of {size}"
            );
        }
    }

    #[test]
    fn etags() {
        let tag = "\"abc\"";
        assert!(if_none_match(Some("\"abc\""), tag));
        assert!(if_none_match(Some("\"x\", W/\"abc\""), tag));
        assert!(if_none_match(Some("*"), tag));
        assert!(!if_none_match(Some("\"abd\""), tag));
        assert!(!if_none_match(None, tag));
    }
}
