//! `RangeRequest::parse`.
//!
//! Checks: no panic; `Partial` ranges satisfy `start <= end < size`; without a `bytes=` unit the
//! answer is `Full`; a well-formed `bytes=a-b` / `bytes=a-` / `bytes=-n` agrees with a
//! straightforward model of RFC 9110.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use registry_core::range::RangeRequest;

#[derive(Arbitrary, Debug)]
enum Bound {
    None,
    Small(u8),
    Any(u64),
    Text(String),
}

impl Bound {
    fn render(&self) -> String {
        match self {
            Bound::None => String::new(),
            Bound::Small(n) => n.to_string(),
            Bound::Any(n) => n.to_string(),
            Bound::Text(s) => s.clone(),
        }
    }

    fn value(&self) -> Option<Option<u64>> {
        match self {
            Bound::None => Some(None),
            Bound::Small(n) => Some(Some(u64::from(*n))),
            Bound::Any(n) => Some(Some(*n)),
            Bound::Text(_) => None,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Header {
    Absent,
    Raw(String),
    Bytes { first: Bound, last: Bound },
}

#[derive(Arbitrary, Debug)]
enum Size {
    Small(u8),
    Any(u64),
}

/// RFC 9110 §14.1.2 for one well-formed range.
fn model(first: Option<u64>, last: Option<u64>, size: u64) -> RangeRequest {
    use RangeRequest::*;
    match (first, last) {
        (None, None) => Full,
        (None, Some(0)) => Unsatisfiable,
        (None, Some(_)) if size == 0 => Unsatisfiable,
        (None, Some(n)) => Partial {
            start: size - n.min(size),
            end: size - 1,
        },
        (Some(a), _) if a >= size => Unsatisfiable,
        (Some(a), None) => Partial {
            start: a,
            end: size - 1,
        },
        (Some(a), Some(b)) if b < a => Full,
        (Some(a), Some(b)) => Partial {
            start: a,
            end: b.min(size - 1),
        },
    }
}

fuzz_target!(|input: (Header, Size)| {
    let (header, size) = input;
    let size = match size {
        Size::Small(n) => u64::from(n),
        Size::Any(n) => n,
    };
    let text = match &header {
        Header::Absent => None,
        Header::Raw(s) => Some(s.clone()),
        Header::Bytes { first, last } => {
            Some(format!("bytes={}-{}", first.render(), last.render()))
        }
    };
    let got = RangeRequest::parse(text.as_deref(), size);
    if let RangeRequest::Partial { start, end } = got {
        assert!(start <= end && end < size, "{text:?} of {size}: {got:?}");
    }
    if !text
        .as_deref()
        .is_some_and(|t| t.trim().starts_with("bytes="))
    {
        assert_eq!(got, RangeRequest::Full, "{text:?}");
    }
    if let Header::Bytes { first, last } = &header {
        if let (Some(a), Some(b)) = (first.value(), last.value()) {
            assert_eq!(got, model(a, b, size), "{text:?} of {size}");
        }
    }
});
